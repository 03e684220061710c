#include "metrics.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_SERIES 1000
#define MAX_LABELS         8
#define MAX_BUCKETS        32
#define HASH_SLOTS         256

const double metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_latency_buckets_count =
        sizeof(metrics_latency_buckets) / sizeof(metrics_latency_buckets[0]);

enum family {
	FAMILY_COUNTER,
	FAMILY_GAUGE,
	FAMILY_HISTOGRAM,
	FAMILY_CALLBACK,
};

/* One tuple of label values and its value. */
struct series {
	struct series *hash_next; /* chain in the metric's hash table */
	struct series *next;      /* insertion order, for rendering */
	char *key;                /* label values, each NUL-terminated, back to back */
	size_t key_len;           /* bytes of key including the NULs */
	uint64_t hash;            /* FNV-1a of key */
	double value;             /* counter/gauge value; histogram sum */
	uint64_t count;           /* histogram: observations */
	uint64_t *buckets;        /* histogram: observations per bucket (not cumulative) */
};

struct metric {
	struct metric *next;       /* registration order */
	struct metrics *reg;       /* owner, for max_series */
	enum family family;        /* what the series hold */
	enum metrics_kind cb_kind; /* FAMILY_CALLBACK: reported type */
	char *name;                /* e.g. "noetl_queue_enqueued_total" */
	char *help;                /* one line */
	char *labels_text;         /* normalized "a,b", for re-registration checks */
	size_t nlabels;            /* label names */
	char *labels[MAX_LABELS];
	double bounds[MAX_BUCKETS]; /* histogram upper bounds */
	size_t nbounds;
	pthread_mutex_t mu; /* guards everything below */
	struct series *slots[HASH_SLOTS];
	struct series *first, *last;
	size_t nseries;
	uint64_t dropped; /* updates refused by the series cap */
	metrics_fn fn;    /* FAMILY_CALLBACK */
	void *arg;
};

struct metrics {
	pthread_mutex_t mu;   /* guards the list; held while rendering */
	struct metric *first; /* registration order */
	struct metric *last;
	size_t max_series;
};

/* --- text buffer --------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		buf_add(b, tmp, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (big == NULL) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, (size_t)n);
	free(big);
}

/* Shortest of %.15g and %.17g that reads back as v; Prometheus spellings
 * for the non-finite values. */
static void fmt_value(double v, char out[40])
{
	if (isnan(v)) {
		strcpy(out, "NaN");
	} else if (isinf(v)) {
		strcpy(out, v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(out, 40, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, 40, "%.17g", v);
	}
}

/* Label values: backslash, double quote and newline are escaped. */
static void buf_label_value(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_add(b, "\\\\", 2);
		else if (*s == '"')
			buf_add(b, "\\\"", 2);
		else if (*s == '\n')
			buf_add(b, "\\n", 2);
		else
			buf_add(b, s, 1);
	}
}

/* HELP text: backslash and newline are escaped. */
static void buf_help(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_add(b, "\\\\", 2);
		else if (*s == '\n')
			buf_add(b, "\\n", 2);
		else
			buf_add(b, s, 1);
	}
}

/* --- names ------------------------------------------------------------------ */

static bool valid_metric_name(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          c == ':' || (p != s && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static bool valid_label_name(const char *s, size_t n)
{
	if (n == 0 || (n >= 2 && s[0] == '_' && s[1] == '_') ||
	    (n == 2 && strncmp(s, "le", 2) == 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

/* Splits "a, b" into m->labels and m->labels_text. */
static int parse_labels(struct metric *m, const char *labels)
{
	struct buf norm = {0};
	const char *p = labels != NULL ? labels : "";
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		size_t t = n;
		while (t > 0 && p[t - 1] == ' ')
			t--;
		if (!valid_label_name(p, t) || m->nlabels == MAX_LABELS) {
			free(norm.p);
			return -EINVAL;
		}
		for (size_t i = 0; i < m->nlabels; i++) {
			if (strlen(m->labels[i]) == t && strncmp(m->labels[i], p, t) == 0) {
				free(norm.p);
				return -EINVAL;
			}
		}
		if ((m->labels[m->nlabels] = strndup(p, t)) == NULL) {
			free(norm.p);
			return -ENOMEM;
		}
		m->nlabels++;
		if (norm.len > 0)
			buf_add(&norm, ",", 1);
		buf_add(&norm, p, t);
		p += n;
		if (*p == ',')
			p++;
	}
	if (norm.oom) {
		free(norm.p);
		return -ENOMEM;
	}
	m->labels_text = norm.p != NULL ? norm.p : strdup("");
	return m->labels_text != NULL ? 0 : -ENOMEM;
}

/* --- registry ---------------------------------------------------------------- */

int metrics_create(size_t max_series, struct metrics **out)
{
	struct metrics *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	r->max_series = max_series != 0 ? max_series : DEFAULT_MAX_SERIES;
	*out = r;
	return 0;
}

static void series_free(struct series *s)
{
	free(s->key);
	free(s->buckets);
	free(s);
}

static void metric_free(struct metric *m)
{
	if (m == NULL)
		return;
	struct series *s = m->first;
	while (s != NULL) {
		struct series *next = s->next;
		series_free(s);
		s = next;
	}
	for (size_t i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	free(m->labels_text);
	free(m->name);
	free(m->help);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void metrics_destroy(struct metrics *r)
{
	if (r == NULL)
		return;
	struct metric *m = r->first;
	while (m != NULL) {
		struct metric *next = m->next;
		metric_free(m);
		m = next;
	}
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static struct metric *find_locked(struct metrics *r, const char *name)
{
	for (struct metric *m = r->first; m != NULL; m = m->next) {
		if (strcmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

static int add(struct metrics *r, enum family family, enum metrics_kind kind, const char *name,
               const char *help, const char *labels, const double *bounds, size_t nbounds,
               metrics_fn fn, void *arg, struct metric **out)
{
	if (!valid_metric_name(name) || nbounds > MAX_BUCKETS)
		return -EINVAL;
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
			return -EINVAL;
	}
	struct metric *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	m->reg = r;
	m->family = family;
	m->cb_kind = kind;
	m->fn = fn;
	m->arg = arg;
	m->nbounds = nbounds;
	if (nbounds > 0)
		memcpy(m->bounds, bounds, nbounds * sizeof(double));
	int rv = parse_labels(m, labels);
	if (rv != 0)
		goto fail;
	m->name = strdup(name);
	m->help = strdup(help != NULL ? help : "");
	if (m->name == NULL || m->help == NULL) {
		rv = -ENOMEM;
		goto fail;
	}

	pthread_mutex_lock(&r->mu);
	struct metric *old = find_locked(r, name);
	if (old != NULL) {
		/* The same definition again is the same metric: services that are
		 * created more than once in one process share their metrics. */
		bool same = family != FAMILY_CALLBACK && old->family == family &&
		            strcmp(old->labels_text, m->labels_text) == 0 &&
		            old->nbounds == nbounds &&
		            (nbounds == 0 ||
		             memcmp(old->bounds, bounds, nbounds * sizeof(double)) == 0);
		pthread_mutex_unlock(&r->mu);
		metric_free(m);
		if (!same)
			return -EEXIST;
		if (out != NULL)
			*out = old;
		return 0;
	}
	if (r->last != NULL)
		r->last->next = m;
	else
		r->first = m;
	r->last = m;
	pthread_mutex_unlock(&r->mu);
	if (out != NULL)
		*out = m;
	return 0;
fail:
	metric_free(m);
	return rv;
}

int metrics_counter(struct metrics *r, const char *name, const char *help, const char *labels,
                    struct metric **out)
{
	return add(r, FAMILY_COUNTER, METRICS_COUNTER, name, help, labels, NULL, 0, NULL, NULL,
	           out);
}

int metrics_gauge(struct metrics *r, const char *name, const char *help, const char *labels,
                  struct metric **out)
{
	return add(r, FAMILY_GAUGE, METRICS_GAUGE, name, help, labels, NULL, 0, NULL, NULL, out);
}

int metrics_histogram(struct metrics *r, const char *name, const char *help, const char *labels,
                      const double *buckets, size_t count, struct metric **out)
{
	if (count == 0 || buckets == NULL)
		return -EINVAL;
	return add(r, FAMILY_HISTOGRAM, METRICS_COUNTER, name, help, labels, buckets, count, NULL,
	           NULL, out);
}

int metrics_callback(struct metrics *r, const char *name, const char *help, const char *labels,
                     enum metrics_kind kind, metrics_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	return add(r, FAMILY_CALLBACK, kind, name, help, labels, NULL, 0, fn, arg, NULL);
}

int metrics_unregister(struct metrics *r, const char *name)
{
	pthread_mutex_lock(&r->mu);
	struct metric *prev = NULL, *m;
	for (m = r->first; m != NULL; prev = m, m = m->next) {
		if (strcmp(m->name, name) == 0)
			break;
	}
	if (m == NULL) {
		pthread_mutex_unlock(&r->mu);
		return -ENOENT;
	}
	if (prev != NULL)
		prev->next = m->next;
	else
		r->first = m->next;
	if (r->last == m)
		r->last = prev;
	pthread_mutex_unlock(&r->mu);
	metric_free(m);
	return 0;
}

/* --- series ------------------------------------------------------------------ */

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/*
 * Finds or creates the series of values; called with m->mu held. NULL when
 * the cap is reached (counted as dropped) or memory ran out.
 */
static struct series *series_get(struct metric *m, const char *const *values)
{
	char stack[512];
	size_t len = 0;
	for (size_t i = 0; i < m->nlabels; i++)
		len += strlen(values[i] != NULL ? values[i] : "") + 1;
	char *key = len <= sizeof(stack) ? stack : malloc(len);
	if (key == NULL)
		return NULL;
	size_t off = 0;
	for (size_t i = 0; i < m->nlabels; i++) {
		const char *v = values[i] != NULL ? values[i] : "";
		size_t n = strlen(v) + 1;
		memcpy(key + off, v, n);
		off += n;
	}
	uint64_t h = fnv1a(key, len);
	struct series **slot = &m->slots[h % HASH_SLOTS];
	struct series *s;
	for (s = *slot; s != NULL; s = s->hash_next) {
		if (s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0)
			goto out;
	}
	if (m->nseries >= m->reg->max_series) {
		m->dropped++;
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto out;
	s->key = malloc(len > 0 ? len : 1);
	if (m->nbounds > 0)
		s->buckets = calloc(m->nbounds, sizeof(uint64_t));
	if (s->key == NULL || (m->nbounds > 0 && s->buckets == NULL)) {
		series_free(s);
		s = NULL;
		goto out;
	}
	memcpy(s->key, key, len);
	s->key_len = len;
	s->hash = h;
	s->hash_next = *slot;
	*slot = s;
	if (m->last != NULL)
		m->last->next = s;
	else
		m->first = s;
	m->last = s;
	m->nseries++;
out:
	if (key != stack)
		free(key);
	return s;
}

void metric_add(struct metric *m, const char *const *values, double v)
{
	if (m == NULL || (m->family != FAMILY_COUNTER && m->family != FAMILY_GAUGE))
		return;
	if (m->family == FAMILY_COUNTER && !(v >= 0))
		return;
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, values);
	if (s != NULL)
		s->value += v;
	pthread_mutex_unlock(&m->mu);
}

void metric_set(struct metric *m, const char *const *values, double v)
{
	if (m == NULL || m->family != FAMILY_GAUGE)
		return;
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, values);
	if (s != NULL)
		s->value = v;
	pthread_mutex_unlock(&m->mu);
}

void metric_observe(struct metric *m, const char *const *values, double v)
{
	if (m == NULL || m->family != FAMILY_HISTOGRAM || isnan(v))
		return;
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, values);
	if (s != NULL) {
		for (size_t i = 0; i < m->nbounds; i++) {
			if (v <= m->bounds[i]) {
				s->buckets[i]++;
				break;
			}
		}
		s->count++;
		s->value += v;
	}
	pthread_mutex_unlock(&m->mu);
}

double metric_value(struct metric *m, const char *const *values)
{
	if (m == NULL || m->family == FAMILY_CALLBACK)
		return 0;
	double v = 0;
	pthread_mutex_lock(&m->mu);
	/* Look up without creating: a read must not use up the cap. */
	struct series *s = NULL;
	size_t len = 0;
	for (size_t i = 0; i < m->nlabels; i++)
		len += strlen(values[i] != NULL ? values[i] : "") + 1;
	for (struct series *t = m->first; t != NULL; t = t->next) {
		if (t->key_len != len)
			continue;
		size_t off = 0;
		bool eq = true;
		for (size_t i = 0; i < m->nlabels && eq; i++) {
			const char *val = values[i] != NULL ? values[i] : "";
			eq = strcmp(t->key + off, val) == 0;
			off += strlen(val) + 1;
		}
		if (eq) {
			s = t;
			break;
		}
	}
	if (s != NULL)
		v = m->family == FAMILY_HISTOGRAM ? (double)s->count : s->value;
	pthread_mutex_unlock(&m->mu);
	return v;
}

/* --- rendering --------------------------------------------------------------- */

struct metrics_emitter {
	struct metric *m;
	struct buf *b;
	size_t emitted;
	uint64_t dropped;
};

/* Writes {a="x",b="y"[,le="..."]} for the label values in key. */
static void buf_labels(struct buf *b, const struct metric *m, const char *key, const char *le)
{
	if (m->nlabels == 0 && le == NULL)
		return;
	buf_add(b, "{", 1);
	const char *v = key;
	for (size_t i = 0; i < m->nlabels; i++) {
		if (i > 0)
			buf_add(b, ",", 1);
		buf_str(b, m->labels[i]);
		buf_add(b, "=\"", 2);
		buf_label_value(b, v);
		buf_add(b, "\"", 1);
		v += strlen(v) + 1;
	}
	if (le != NULL) {
		if (m->nlabels > 0)
			buf_add(b, ",", 1);
		buf_add(b, "le=\"", 4);
		buf_str(b, le);
		buf_add(b, "\"", 1);
	}
	buf_add(b, "}", 1);
}

static void buf_sample(struct buf *b, const struct metric *m, const char *suffix, const char *key,
                       const char *le, double v)
{
	char num[40];
	fmt_value(v, num);
	buf_str(b, m->name);
	buf_str(b, suffix);
	buf_labels(b, m, key, le);
	buf_add(b, " ", 1);
	buf_str(b, num);
	buf_add(b, "\n", 1);
}

void metrics_emit(struct metrics_emitter *e, const char *const *values, double v)
{
	if (e->emitted >= e->m->reg->max_series) {
		e->dropped++;
		return;
	}
	e->emitted++;
	/* Build the key form buf_labels reads: values back to back. */
	struct buf key = {0};
	for (size_t i = 0; i < e->m->nlabels; i++) {
		const char *val = values[i] != NULL ? values[i] : "";
		buf_add(&key, val, strlen(val) + 1);
	}
	if (key.oom) {
		e->b->oom = true;
	} else {
		buf_sample(e->b, e->m, "", key.p != NULL ? key.p : "", NULL, v);
	}
	free(key.p);
}

static const char *type_name(const struct metric *m)
{
	switch (m->family) {
	case FAMILY_COUNTER:
		return "counter";
	case FAMILY_GAUGE:
		return "gauge";
	case FAMILY_HISTOGRAM:
		return "histogram";
	case FAMILY_CALLBACK:
		return m->cb_kind == METRICS_COUNTER ? "counter" : "gauge";
	}
	return "untyped";
}

static void render_metric(struct buf *b, struct metric *m)
{
	buf_str(b, "# HELP ");
	buf_str(b, m->name);
	buf_add(b, " ", 1);
	buf_help(b, m->help);
	buf_str(b, "\n# TYPE ");
	buf_str(b, m->name);
	buf_add(b, " ", 1);
	buf_str(b, type_name(m));
	buf_add(b, "\n", 1);

	if (m->family == FAMILY_CALLBACK) {
		struct metrics_emitter e = {.m = m, .b = b};
		m->fn(&e, m->arg);
		pthread_mutex_lock(&m->mu);
		m->dropped += e.dropped;
		pthread_mutex_unlock(&m->mu);
		return;
	}
	pthread_mutex_lock(&m->mu);
	for (struct series *s = m->first; s != NULL; s = s->next) {
		if (m->family != FAMILY_HISTOGRAM) {
			buf_sample(b, m, "", s->key, NULL, s->value);
			continue;
		}
		uint64_t cum = 0;
		for (size_t i = 0; i < m->nbounds; i++) {
			char le[40];
			cum += s->buckets[i];
			fmt_value(m->bounds[i], le);
			buf_sample(b, m, "_bucket", s->key, le, (double)cum);
		}
		buf_sample(b, m, "_bucket", s->key, "+Inf", (double)s->count);
		buf_sample(b, m, "_sum", s->key, NULL, s->value);
		buf_sample(b, m, "_count", s->key, NULL, (double)s->count);
	}
	pthread_mutex_unlock(&m->mu);
}

int metrics_render(struct metrics *r, char **out, size_t *len)
{
	struct buf b = {0};
	bool any_dropped = false;

	pthread_mutex_lock(&r->mu);
	for (struct metric *m = r->first; m != NULL; m = m->next)
		render_metric(&b, m);
	for (struct metric *m = r->first; m != NULL; m = m->next) {
		pthread_mutex_lock(&m->mu);
		uint64_t d = m->dropped;
		pthread_mutex_unlock(&m->mu);
		if (d == 0)
			continue;
		if (!any_dropped) {
			buf_str(&b, "# HELP noetl_metrics_dropped_series_total Updates dropped "
			            "because a metric reached its cap on label sets.\n"
			            "# TYPE noetl_metrics_dropped_series_total counter\n");
			any_dropped = true;
		}
		buf_printf(&b, "noetl_metrics_dropped_series_total{metric=\"%s\"} %llu\n", m->name,
		           (unsigned long long)d);
	}
	pthread_mutex_unlock(&r->mu);
	if (b.p == NULL)
		buf_add(&b, "", 0);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*len = b.len;
	*out = b.p;
	return 0;
}

/* --- the process ---------------------------------------------------------------------- */

static void m_resident(struct metrics_emitter *e, void *arg)
{
	(void)arg;
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return;
	if (fscanf(f, "%lu %lu", &size, &resident) == 2)
		metrics_emit(e, NULL, (double)resident * (double)sysconf(_SC_PAGESIZE));
	fclose(f);
}

static void m_heap(struct metrics_emitter *e, void *arg)
{
	(void)arg;
	struct mallinfo2 mi = mallinfo2();
	metrics_emit(e, (const char *[]){"in_use"}, (double)(mi.uordblks + mi.hblkhd));
	metrics_emit(e, (const char *[]){"free"}, (double)mi.fordblks);
}

int metrics_register_process(struct metrics *r)
{
	int rc = metrics_callback(r, "noetl_process_resident_bytes",
	                          "Resident memory of the process (RSS).", NULL, METRICS_GAUGE,
	                          m_resident, NULL);
	if (rc != 0 && rc != -EEXIST)
		return rc;
	rc = metrics_callback(r, "noetl_process_heap_bytes",
	                      "malloc's heap: bytes in use, and bytes free but kept by the "
	                      "allocator (counted in the resident memory while touched).",
	                      "state", METRICS_GAUGE, m_heap, NULL);
	return rc == -EEXIST ? 0 : rc;
}
