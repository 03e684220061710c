/*
 * jobdef_check: the semantic check of a package, shared by jobdef_parse
 * (which names positions in the text) and jobdef_validate (which names
 * field paths).
 *
 * It works on the protobuf alone, because Control receives packages over
 * RPC, and so repeats every rule the YAML layer cannot express: required
 * fields, id syntax, enum ranges, retry and memory limits, cron expressions
 * and JSON payloads. Then come the rules between objects: ids unique per
 * kind, and every reference (event -> queue, event -> runtime, schedule ->
 * event) naming something declared.
 *
 * Checks run in document order (package, queues, jobs, runtimes,
 * schedules), references last, and stop at the first error. Id lookups use
 * a small hash table, so a package with many thousands of entries costs
 * linear time.
 *
 * Event ids. A job's event id must be unique among job events. A result
 * event (result.ok / result.error) may repeat the id of a job event or of
 * another result event: that is how a workflow chains to the next job. The
 * two declarations must then agree on everything that decides where and
 * how the event runs (datatype, schema file, supplierqueue, runtime,
 * retry, timeout); the display name may differ.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobdef.h"
#include "jobdef_int.h"
#include "util.h"

struct entry {
	const char *key; /* the id, borrowed from the package */
	char *path;      /* where it was first declared */
	const void *obj; /* what declared it */
	bool job;        /* events: a job event (not only a result event) has this id */
};

struct idmap {
	struct entry *e; /* open addressing, linear probing */
	size_t cap;      /* a power of two, or 0 */
	size_t n;        /* entries used */
};

struct ck {
	jobdef__where_fn where; /* names a path for messages */
	void *arg;              /* its argument */
	char **err;             /* where the first message goes */
	int rc;                 /* first failure */
	struct idmap queues, runtimes, events, schemas, schedules;
};

#define PATH_SIZE  256
#define WHERE_SIZE 512

/* A payload sits under the package mapping, the schedules sequence and a
 * schedule mapping (and maybe Jobico's package wrapper): this much nesting
 * of its own keeps jobdef_to_yaml's output within JOBDEF_MAX_DEPTH. */
#define PAYLOAD_DEPTH (JOBDEF_MAX_DEPTH - 4)

static const char *S(const char *s)
{
	return s != NULL ? s : "";
}

/* ---- id maps ---- */

static size_t hash(const char *s)
{
	size_t h = 14695981039346656037ULL;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct entry *idmap_find(const struct idmap *m, const char *key)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->e[i].key == NULL)
			return NULL;
		if (strcmp(m->e[i].key, key) == 0)
			return &m->e[i];
	}
}

static int idmap_add(struct idmap *m, const char *key, const char *path, const void *obj, bool job)
{
	if (2 * (m->n + 1) > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct entry *e = calloc(cap, sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (m->e[i].key == NULL)
				continue;
			size_t j = hash(m->e[i].key) & (cap - 1);
			while (e[j].key != NULL)
				j = (j + 1) & (cap - 1);
			e[j] = m->e[i];
		}
		free(m->e);
		m->e = e;
		m->cap = cap;
	}
	char *p = strdup(path);
	if (p == NULL)
		return -ENOMEM;
	size_t i = hash(key) & (m->cap - 1);
	while (m->e[i].key != NULL)
		i = (i + 1) & (m->cap - 1);
	m->e[i] = (struct entry){key, p, obj, job};
	m->n++;
	return 0;
}

static void idmap_release(struct idmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->e[i].path);
	free(m->e);
}

/* ---- messages ---- */

static int fail(struct ck *k, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct ck *k, const char *path, const char *fmt, ...)
{
	char where[WHERE_SIZE], msg[1024];
	va_list ap;
	if (k->rc != 0)
		return k->rc;
	k->where(k->arg, path, where, sizeof(where));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (k->err != NULL && *k->err == NULL && asprintf(k->err, "%s: %s", where, msg) < 0) {
		*k->err = NULL;
		k->rc = -ENOMEM;
		return k->rc;
	}
	k->rc = -EINVAL;
	return k->rc;
}

static int add(struct ck *k, struct idmap *m, const char *key, const char *path, const void *obj,
               bool job)
{
	if (k->rc == 0 && idmap_add(m, key, path, obj, job) != 0)
		k->rc = -ENOMEM;
	return k->rc;
}

/* A printable, bounded copy of s for messages: values from RPC may hold
 * anything. */
static const char *shown(const char *s, char *buf, size_t n)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 4 < n; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i] != '\0')
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = '\0';
	return buf;
}

/* Field paths are short ("jobs[12].result.ok.retry.backoffmax"); one that
 * did not fit would only name a coarser position. */
static void pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, PATH_SIZE, fmt, ap);
	va_end(ap);
}

static void subpath(char *buf, const char *path, const char *field)
{
	pathf(buf, "%s%s%s", path, path[0] ? "." : "", field);
}

/* ---- field rules ---- */

/* A required id or file name. */
static int need_name(struct ck *k, const char *path, const char *field, const char *v, size_t max,
                     const char *what, const char *hint)
{
	char p[PATH_SIZE], b[96];
	subpath(p, path, field);
	if (S(v)[0] == '\0')
		return fail(k, p, "%s is missing: add '%s: %s'", what, field, hint);
	if (!util_valid_name(v, max))
		return fail(k, p,
		            "%s '%s' is not a valid name: use 1 to %zu characters of A-Z a-z 0-9 "
		            "_ . - that do not start with '.' or contain '..'",
		            what, shown(v, b, sizeof(b)), max);
	return 0;
}

/* An optional display name. */
static int check_text(struct ck *k, const char *path, const char *field, const char *v)
{
	char p[PATH_SIZE];
	size_t len = strlen(S(v));
	subpath(p, path, field);
	if (len > JOBDEF_TEXT_MAX)
		return fail(k, p, "'%s' is %zu bytes long; the limit is %d", field, len,
		            JOBDEF_TEXT_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return fail(k, p, "'%s' contains a control character: use plain text",
			            field);
	return 0;
}

static int check_retry(struct ck *k, const char *owner, const Noetl__RetryPolicy *r)
{
	char path[PATH_SIZE], p[PATH_SIZE];
	if (r == NULL)
		return 0;
	subpath(path, owner, "retry");
	if (r->jitter_percent > 100) {
		subpath(p, path, "jitter");
		return fail(k, p, "jitter is %u%%: use a percentage from 0 to 100",
		            r->jitter_percent);
	}
	if (r->backoff_max_ms != 0 && r->backoff_base_ms > r->backoff_max_ms) {
		subpath(p, path, "backoffbase");
		return fail(k, p,
		            "backoffbase (%ums) is longer than backoffmax (%ums): lower "
		            "backoffbase or raise backoffmax",
		            r->backoff_base_ms, r->backoff_max_ms);
	}
	return 0;
}

/* The name of the first field that decides how an event runs on which a
 * and b differ, or NULL. */
static const char *event_difference(const Noetl__EventDef *a, const Noetl__EventDef *b)
{
	const Noetl__RetryPolicy *ra = a->retry, *rb = b->retry;
	if (a->data_type != b->data_type)
		return "datatype";
	if (strcmp(a->schema ? S(a->schema->schema_ref) : "",
	           b->schema ? S(b->schema->schema_ref) : ""))
		return "schema";
	if (strcmp(S(a->supplier_queue), S(b->supplier_queue)) != 0)
		return "supplierqueue";
	if (strcmp(S(a->runtime), S(b->runtime)) != 0)
		return "runtime";
	if ((ra == NULL) != (rb == NULL) ||
	    (ra != NULL &&
	     (ra->max_attempts != rb->max_attempts || ra->backoff_base_ms != rb->backoff_base_ms ||
	      ra->backoff_max_ms != rb->backoff_max_ms ||
	      ra->jitter_percent != rb->jitter_percent)))
		return "retry";
	if (a->timeout_ms != b->timeout_ms)
		return "timeout";
	return NULL;
}

static int check_schema(struct ck *k, const char *path, const Noetl__EventDef *ev)
{
	const Noetl__SchemaDef *s = ev->schema;
	char sp[PATH_SIZE], p[PATH_SIZE], w[WHERE_SIZE], b1[96], b2[96];
	subpath(sp, path, "schema");
	if (ev->data_type == NOETL__DATA_TYPE__DATA_BINARY)
		return fail(k, sp,
		            "a binary event (datatype 1) has no JSON to validate: remove 'schema' "
		            "or use datatype 0");
	if (need_name(k, sp, "schemaref", s->schema_ref, JOBDEF_ID_MAX, "the schema's file name",
	              "<json-schema file>") != 0 ||
	    check_text(k, sp, "name", s->name) != 0)
		return k->rc;
	if (S(s->id)[0] == '\0')
		return 0; /* Jobico's protojson leaves it empty */
	if (need_name(k, sp, "id", s->id, JOBDEF_ID_MAX, "schema id", "") != 0)
		return k->rc;
	const struct entry *e = idmap_find(&k->schemas, s->id);
	subpath(p, sp, "id");
	if (e == NULL)
		return add(k, &k->schemas, s->id, p, s, false);
	const Noetl__SchemaDef *first = e->obj;
	if (strcmp(S(first->schema_ref), S(s->schema_ref)) == 0)
		return 0;
	k->where(k->arg, e->path, w, sizeof(w));
	return fail(k, p,
	            "schema id '%s' is declared at %s with schemaref '%s': give this schema "
	            "another id or the same schemaref",
	            shown(s->id, b1, sizeof(b1)), w, shown(S(first->schema_ref), b2, sizeof(b2)));
}

static int check_event(struct ck *k, const char *path, const Noetl__EventDef *ev, bool job)
{
	char p[PATH_SIZE], w[WHERE_SIZE], b[96];
	if (need_name(k, path, "id", ev->id, JOBDEF_ID_MAX, "the event id", "<event name>") != 0 ||
	    check_text(k, path, "name", ev->name) != 0)
		return k->rc;
	if (ev->data_type != NOETL__DATA_TYPE__DATA_JSON &&
	    ev->data_type != NOETL__DATA_TYPE__DATA_BINARY) {
		subpath(p, path, "datatype");
		return fail(k, p, "datatype %d is unknown: use 0 (JSON) or 1 (binary)",
		            (int)ev->data_type);
	}
	if (ev->schema != NULL && check_schema(k, path, ev) != 0)
		return k->rc;
	if (need_name(k, path, "supplierqueue", ev->supplier_queue, JOBDEF_ID_MAX,
	              "the event's supplierqueue", "<queue id>") != 0 ||
	    need_name(k, path, "runtime", ev->runtime, JOBDEF_ID_MAX, "the event's runtime",
	              "<runtime id>") != 0 ||
	    check_retry(k, path, ev->retry) != 0)
		return k->rc;

	struct entry *e = idmap_find(&k->events, ev->id);
	subpath(p, path, "id");
	if (e == NULL)
		return add(k, &k->events, ev->id, p, ev, job);
	k->where(k->arg, e->path, w, sizeof(w));
	if (job && e->job)
		return fail(k, p,
		            "event id '%s' is already declared at %s: each job needs its own event "
		            "id",
		            shown(ev->id, b, sizeof(b)), w);
	const char *diff = event_difference(e->obj, ev);
	if (diff != NULL)
		return fail(k, p,
		            "event '%s' is declared at %s with a different %s: an event named "
		            "twice (by a job and a result) must be declared the same way, or use "
		            "another id",
		            shown(ev->id, b, sizeof(b)), w, diff);
	e->job = e->job || job;
	return 0;
}

static int check_runtime(struct ck *k, const char *path, const Noetl__RuntimeDef *rt)
{
	char p[PATH_SIZE], w[WHERE_SIZE], b[96];
	const char *fn = S(rt->main_func_name);
	if (need_name(k, path, "id", rt->id, JOBDEF_ID_MAX, "the runtime id", "<runtime name>") !=
	            0 ||
	    check_text(k, path, "name", rt->name) != 0 ||
	    need_name(k, path, "moduleref", rt->module_ref, JOBDEF_ID_MAX,
	              "the runtime's module file", "<wasm file>") != 0)
		return k->rc;
	/* An exported function name; empty means Jobico's default, "event". */
	bool ok = strlen(fn) <= JOBDEF_ID_MAX && !(fn[0] >= '0' && fn[0] <= '9');
	for (size_t i = 0; ok && fn[i] != '\0'; i++)
		ok = (fn[i] >= 'a' && fn[i] <= 'z') || (fn[i] >= 'A' && fn[i] <= 'Z') ||
		     (fn[i] >= '0' && fn[i] <= '9') || fn[i] == '_';
	if (!ok) {
		subpath(p, path, "mainfuncname");
		return fail(k, p,
		            "mainfuncname '%s' is not an export name: use letters, digits and '_', "
		            "not starting with a digit",
		            shown(fn, b, sizeof(b)));
	}
	if (rt->type != NOETL__RUNTIME_TYPE__RUNTIME_WASM) {
		subpath(p, path, "type");
		return fail(k, p, "runtime type %d is not supported: use 0 (wasm)%s", (int)rt->type,
		            rt->type == NOETL__RUNTIME_TYPE__RUNTIME_PYTHON
		                    ? "; 1 (python) is reserved by Jobico"
		                    : "");
	}
	if (check_retry(k, path, rt->retry) != 0)
		return k->rc;
	if (rt->memory_limit != 0 &&
	    (rt->memory_limit % JOBDEF_MEMORY_PAGE != 0 || rt->memory_limit > (4ULL << 30))) {
		subpath(p, path, "memorylimit");
		return fail(k, p,
		            "memorylimit %llu bytes is not a whole number of 64KiB wasm pages up "
		            "to 4GiB: use e.g. 64MiB",
		            (unsigned long long)rt->memory_limit);
	}
	const struct entry *e = idmap_find(&k->runtimes, rt->id);
	subpath(p, path, "id");
	if (e == NULL)
		return add(k, &k->runtimes, rt->id, p, rt, false);
	k->where(k->arg, e->path, w, sizeof(w));
	return fail(k, p, "runtime id '%s' is already declared at %s: ids must be unique",
	            shown(rt->id, b, sizeof(b)), w);
}

/* Nesting of arrays and objects in j (a scalar is 0). */
static size_t json_depth(json_t *j)
{
	size_t max = 0, i;
	const char *key;
	json_t *v;
	if (json_is_object(j)) {
		json_object_foreach(j, key, v)
		{
			size_t d = json_depth(v);
			max = d > max ? d : max;
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
		{
			size_t d = json_depth(v);
			max = d > max ? d : max;
		}
	} else {
		return 0;
	}
	return max + 1;
}

static int check_schedule(struct ck *k, const char *path, const Noetl__ScheduleDef *s)
{
	char p[PATH_SIZE], w[WHERE_SIZE], msg[256], b[96];
	struct jobdef__cron cron;
	int64_t next;

	if (need_name(k, path, "id", s->id, JOBDEF_ID_MAX, "the schedule id", "<schedule name>") !=
	    0)
		return k->rc;
	subpath(p, path, "cron");
	if (S(s->cron)[0] == '\0')
		return fail(k, p, "the schedule's cron is missing: add e.g. 'cron: \"0 * * * *\"'");
	if (jobdef__cron_compile(s->cron, &cron, msg, sizeof(msg)) != 0)
		return fail(k, p, "invalid cron expression '%s': %s", shown(s->cron, b, sizeof(b)),
		            msg);
	if (jobdef__cron_next(&cron, 0, &next) == -ENOENT)
		return fail(k, p,
		            "cron expression '%s' never fires: no day matches its day-of-month, "
		            "month and day-of-week",
		            shown(s->cron, b, sizeof(b)));
	if (need_name(k, path, "event", s->event, JOBDEF_ID_MAX, "the schedule's event",
	              "<event id>") != 0)
		return k->rc;
	if (S(s->payload)[0] != '\0') {
		json_error_t je;
		json_t *j = NULL;
		subpath(p, path, "payload");
		if (strlen(s->payload) > JOBDEF_MAX_PAYLOAD)
			return fail(k, p, "the payload is %zu bytes of JSON; the limit is %d",
			            strlen(s->payload), JOBDEF_MAX_PAYLOAD);
		j = json_loads(s->payload,
		               JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
		if (j == NULL)
			return fail(k, p, "the payload is not JSON: %s", je.text);
		size_t depth = json_depth(j);
		json_decref(j);
		if (depth > PAYLOAD_DEPTH)
			return fail(k, p,
			            "the payload nests %zu levels; the limit is %d: flatten it",
			            depth, PAYLOAD_DEPTH);
	}
	const struct entry *e = idmap_find(&k->schedules, s->id);
	subpath(p, path, "id");
	if (e == NULL)
		return add(k, &k->schedules, s->id, p, s, false);
	k->where(k->arg, e->path, w, sizeof(w));
	return fail(k, p, "schedule id '%s' is already declared at %s: ids must be unique",
	            shown(s->id, b, sizeof(b)), w);
}

static int check_refs(struct ck *k, const char *path, const Noetl__EventDef *ev)
{
	char p[PATH_SIZE], b1[96], b2[96];
	if (idmap_find(&k->queues, ev->supplier_queue) == NULL) {
		subpath(p, path, "supplierqueue");
		return fail(k, p,
		            "event '%s' goes to queue '%s', which is not declared: add it under "
		            "'queues' or fix the name",
		            shown(ev->id, b1, sizeof(b1)),
		            shown(ev->supplier_queue, b2, sizeof(b2)));
	}
	if (idmap_find(&k->runtimes, ev->runtime) == NULL) {
		subpath(p, path, "runtime");
		return fail(k, p,
		            "event '%s' runs on runtime '%s', which is not declared: add it under "
		            "'runtimes' or fix the name",
		            shown(ev->id, b1, sizeof(b1)), shown(ev->runtime, b2, sizeof(b2)));
	}
	return 0;
}

static int check_queues(struct ck *k, const Noetl__Package *p)
{
	char path[PATH_SIZE], ip[PATH_SIZE], w[WHERE_SIZE], b[96];
	for (size_t i = 0; i < p->n_queues && k->rc == 0; i++) {
		const Noetl__QueueDef *q = p->queues[i];
		pathf(path, "queues[%zu]", i);
		if (q == NULL)
			return fail(k, path, "the queue is empty: give it an id");
		if (need_name(k, path, "id", q->id, JOBDEF_ID_MAX, "the queue id",
		              "<queue name>") != 0 ||
		    check_text(k, path, "name", q->name) != 0)
			return k->rc;
		const struct entry *e = idmap_find(&k->queues, q->id);
		subpath(ip, path, "id");
		if (e == NULL) {
			add(k, &k->queues, q->id, ip, q, false);
			continue;
		}
		k->where(k->arg, e->path, w, sizeof(w));
		return fail(k, ip, "queue id '%s' is already declared at %s: ids must be unique",
		            shown(q->id, b, sizeof(b)), w);
	}
	return k->rc;
}

/* Calls fn on each job event and result event with its path. */
static int each_event(struct ck *k, const Noetl__Package *p,
                      int (*fn)(struct ck *, const char *, const Noetl__EventDef *, bool))
{
	char path[PATH_SIZE], ep[PATH_SIZE];
	for (size_t i = 0; i < p->n_jobs && k->rc == 0; i++) {
		const Noetl__JobDef *j = p->jobs[i];
		pathf(path, "jobs[%zu]", i);
		pathf(ep, "%s.event", path);
		if (j == NULL || j->event == NULL)
			return fail(k, ep,
			            "the job has no event: add 'event:' with id, supplierqueue and "
			            "runtime");
		if (fn(k, ep, j->event, true) != 0 || j->result == NULL)
			continue;
		pathf(ep, "%s.result.ok", path);
		if (j->result->ok != NULL && fn(k, ep, j->result->ok, false) != 0)
			continue;
		pathf(ep, "%s.result.error", path);
		if (j->result->error != NULL)
			fn(k, ep, j->result->error, false);
	}
	return k->rc;
}

static int refs_of(struct ck *k, const char *path, const Noetl__EventDef *ev, bool job)
{
	(void)job;
	return check_refs(k, path, ev);
}

int jobdef__check(const Noetl__Package *p, jobdef__where_fn where, void *arg, char **err)
{
	struct ck k = {.where = where, .arg = arg, .err = err};
	char path[PATH_SIZE], b1[96], b2[96];

	if (need_name(&k, "", "id", p->id, JOBDEF_ID_MAX, "the package id", "<package name>") ||
	    check_text(&k, "", "name", p->name) ||
	    need_name(&k, "", "tenant", p->tenant, JOBDEF_TENANT_MAX, "the tenant",
	              "<tenant id>") ||
	    check_queues(&k, p))
		goto out;
	if (p->n_jobs == 0) {
		fail(&k, "jobs",
		     "the package declares no jobs: add a 'jobs' list with at least one event");
		goto out;
	}
	if (each_event(&k, p, check_event) != 0)
		goto out;
	for (size_t i = 0; i < p->n_runtimes && k.rc == 0; i++) {
		pathf(path, "runtimes[%zu]", i);
		if (p->runtimes[i] == NULL)
			fail(&k, path, "the runtime is empty: give it an id and a moduleref");
		else
			check_runtime(&k, path, p->runtimes[i]);
	}
	for (size_t i = 0; i < p->n_schedules && k.rc == 0; i++) {
		pathf(path, "schedules[%zu]", i);
		if (p->schedules[i] == NULL)
			fail(&k, path, "the schedule is empty: give it an id, a cron and an event");
		else
			check_schedule(&k, path, p->schedules[i]);
	}
	if (k.rc != 0 || each_event(&k, p, refs_of) != 0)
		goto out;
	for (size_t i = 0; i < p->n_schedules && k.rc == 0; i++) {
		const Noetl__ScheduleDef *s = p->schedules[i];
		if (idmap_find(&k.events, s->event) != NULL)
			continue;
		pathf(path, "schedules[%zu].event", i);
		fail(&k, path,
		     "schedule '%s' fires event '%s', which is not declared: name an event of this "
		     "package",
		     shown(s->id, b1, sizeof(b1)), shown(s->event, b2, sizeof(b2)));
	}
out:
	idmap_release(&k.queues);
	idmap_release(&k.runtimes);
	idmap_release(&k.events);
	idmap_release(&k.schemas);
	idmap_release(&k.schedules);
	return k.rc;
}

static void where_path(void *arg, const char *path, char *buf, size_t n)
{
	(void)arg;
	snprintf(buf, n, "%s", path[0] != '\0' ? path : "package");
}

int jobdef_validate(const Noetl__Package *p, char **err)
{
	if (err != NULL)
		*err = NULL;
	if (p == NULL) {
		if (err != NULL)
			*err = strdup("package: the package is missing");
		return -EINVAL;
	}
	return jobdef__check(p, where_path, NULL, err);
}
