/*
 * jobdef: a YAML tree to Noetl__Package, and the entry points (the design
 * is in jobdef.h).
 *
 * Each message has a table (struct mdef) of the keys it accepts and how
 * each value is read, so unknown keys, duplicate keys and values of the
 * wrong kind are refused in one place. Messages are allocated whole and
 * attached to their parent before they are filled, so a failure anywhere
 * is cleaned up by freeing the root with protobuf-c's free_unpacked.
 *
 * Every value's position is remembered under its field path
 * ("jobs[0].event.runtime"); the semantic check (jobdef_check.c), which
 * sees only the protobuf, names positions through where_in_text().
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobdef.h"
#include "jobdef_int.h"

typedef struct jobdef__node node;

struct pos {
	char *path;    /* field path, "" for the package */
	int line, col; /* where its value starts */
};

struct pctx {
	const char *file; /* for messages */
	int rc;           /* first failure, 0 if none */
	char *err;        /* its message */
	struct pos *pos;  /* remembered positions */
	size_t npos;      /* entries used in pos */
	size_t cappos;    /* entries allocated in pos */
};

#define PATH_SIZE 256

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

static int perr(struct pctx *c, const node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int perr(struct pctx *c, const node *n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	if (c->rc != 0)
		return c->rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->rc = jobdef__errorf(&c->err, c->file, n != NULL ? n->line : 1, n != NULL ? n->col : 1,
	                       "%s", msg);
	return c->rc;
}

static int oom(struct pctx *c)
{
	if (c->rc == 0)
		c->rc = -ENOMEM;
	return c->rc;
}

static const char *kind_name(const node *n)
{
	if (n->kind == JOBDEF__MAP)
		return "a mapping";
	if (n->kind == JOBDEF__SEQ)
		return "a sequence";
	return jobdef__tree_is_null(n) ? "nothing" : "a scalar";
}

/* ---- positions ---- */

static void remember(struct pctx *c, const char *path, const node *n)
{
	if (c->npos == c->cappos) {
		size_t cap = c->cappos ? c->cappos * 2 : 64;
		struct pos *p = realloc(c->pos, cap * sizeof(*p));
		if (p == NULL) {
			oom(c);
			return;
		}
		c->pos = p;
		c->cappos = cap;
	}
	char *dup = strdup(path);
	if (dup == NULL) {
		oom(c);
		return;
	}
	c->pos[c->npos++] = (struct pos){dup, n->line, n->col};
}

/* The jobdef__where_fn of parsing: the remembered position of path, else of
 * the nearest enclosing path that has one. */
static void where_in_text(void *arg, const char *path, char *buf, size_t n)
{
	struct pctx *c = arg;
	char p[PATH_SIZE];
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		for (size_t i = 0; i < c->npos; i++) {
			if (strcmp(c->pos[i].path, p) == 0) {
				snprintf(buf, n, "%s:%d:%d", c->file, c->pos[i].line,
				         c->pos[i].col);
				return;
			}
		}
		if (p[0] == '\0')
			break;
		char *dot = strrchr(p, '.'), *br = strrchr(p, '[');
		char *cut = dot > br ? dot : br;
		*(cut != NULL ? cut : p) = '\0';
	}
	snprintf(buf, n, "%s:1:1", c->file);
}

/* ---- payloads: YAML to JSON ---- */

static json_t *scalar_json(struct pctx *c, const node *n)
{
	int64_t iv = 0;
	double dv = 0;
	json_t *j;
	switch (n->plain ? jobdef__resolve(n->text, n->len, &iv, &dv) : JOBDEF__STRING) {
	case JOBDEF__NULL:
		return json_null();
	case JOBDEF__TRUE:
		return json_true();
	case JOBDEF__FALSE:
		return json_false();
	case JOBDEF__INT:
		return json_integer(iv);
	case JOBDEF__FLOAT:
		return json_real(dv);
	case JOBDEF__BAD:
		perr(c, n,
		     "'%.80s' is a number JSON cannot hold (out of range, infinite or not a "
		     "number): quote it to send a string",
		     n->text);
		return NULL;
	case JOBDEF__STRING:
		break;
	}
	j = json_stringn(n->text, n->len);
	if (j == NULL)
		perr(c, n, "the value is not valid UTF-8");
	return j;
}

static json_t *to_json(struct pctx *c, const node *n)
{
	json_t *j = NULL;
	if (n->kind == JOBDEF__SCALAR) {
		j = scalar_json(c, n);
	} else if (n->kind == JOBDEF__SEQ) {
		j = json_array();
		for (size_t i = 0; j != NULL && i < n->n; i++) {
			json_t *item = to_json(c, n->kids[i]);
			if (item == NULL || json_array_append_new(j, item) != 0) {
				json_decref(j);
				j = NULL;
			}
		}
	} else {
		j = json_object();
		for (size_t i = 0; j != NULL && i + 1 < n->n; i += 2) {
			const node *k = n->kids[i];
			json_t *val;
			if (k->kind != JOBDEF__SCALAR || memchr(k->text, '\0', k->len) != NULL)
				perr(c, k, "a payload key must be a string, got %s: quote the key",
				     k->kind == JOBDEF__SCALAR ? "a string with a NUL"
				                               : kind_name(k));
			else if (json_object_get(j, k->text) != NULL)
				perr(c, k, "duplicate key '%.80s' in the payload: remove one",
				     k->text);
			else if ((val = to_json(c, n->kids[i + 1])) != NULL &&
			         json_object_set_new(j, k->text, val) != 0)
				perr(c, k, "the key '%.80s' is not valid UTF-8", k->text);
			if (c->rc != 0) {
				json_decref(j);
				j = NULL;
			}
		}
	}
	if (j == NULL)
		oom(c); /* no-op when an error was reported */
	return j;
}

static int payload_of(struct pctx *c, const node *v, char **out)
{
	json_t *j = to_json(c, v);
	size_t size;
	char *s;
	if (j == NULL)
		return c->rc;
	/* json_dumpb into our own buffer, so the string is plain malloc'ed
	 * memory whatever allocator jansson was given. */
	size = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	s = size > 0 ? malloc(size + 1) : NULL;
	if (s == NULL || json_dumpb(j, s, size, JSON_COMPACT | JSON_ENCODE_ANY) != size) {
		free(s);
		json_decref(j);
		return oom(c);
	}
	s[size] = '\0';
	json_decref(j);
	*out = s;
	return 0;
}

/* ---- the tables ---- */

enum fkind {
	F_STR,      /* a string */
	F_UINT32,   /* a whole number */
	F_DATATYPE, /* 0, 1, DATA_JSON, DATA_BINARY */
	F_RTTYPE,   /* 0, 1, RUNTIME_WASM, RUNTIME_PYTHON */
	F_DURATION, /* milliseconds or "2s" */
	F_SIZE,     /* bytes or "64MiB" */
	F_PERCENT,  /* 0..100, "%" allowed */
	F_PAYLOAD,  /* any YAML, stored as JSON text */
	F_MSG,      /* a mapping: the message msg */
	F_LIST,     /* a sequence of mappings: repeated msg */
};

struct mdef;

struct fdef {
	const char *key;        /* canonical spelling: lowercase, no '_' */
	const char *alias;      /* another accepted spelling, or NULL */
	enum fkind kind;        /* how the value is read */
	size_t off;             /* offset of the member in the message */
	size_t noff;            /* F_LIST: offset of the n_ member */
	const struct mdef *msg; /* F_MSG, F_LIST: the message of the value or items */
};

struct mdef {
	const char *what;                       /* the message in messages: "event" */
	const ProtobufCMessageDescriptor *desc; /* its descriptor */
	const struct fdef *fields;              /* the keys it accepts */
	size_t nfields;                         /* entries in fields */
	int (*post)(struct pctx *c, const node *n, void *msg); /* after its keys, or NULL */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define VAL(T, key, alias, k, m)                                                                   \
	{                                                                                          \
		key, alias, k, offsetof(T, m), 0, NULL                                             \
	}
#define SUB(T, key, m, def)                                                                        \
	{                                                                                          \
		key, NULL, F_MSG, offsetof(T, m), 0, &def                                          \
	}
#define LIST(T, key, m, def)                                                                       \
	{                                                                                          \
		key, NULL, F_LIST, offsetof(T, m), offsetof(T, n_##m), &def                        \
	}

_Static_assert(sizeof(Noetl__DataType) == sizeof(int), "protobuf-c enums are int-sized");
_Static_assert(sizeof(Noetl__RuntimeType) == sizeof(int), "protobuf-c enums are int-sized");

static int post_event(struct pctx *c, const node *n, void *msg)
{
	Noetl__EventDef *ev = msg;
	if (asprintf(&ev->line, "%s:%d:%d", c->file, n->line, n->col) < 0) {
		ev->line = (char *)protobuf_c_empty_string;
		return oom(c);
	}
	return 0;
}

static int post_runtime(struct pctx *c, const node *n, void *msg)
{
	Noetl__RuntimeDef *rt = msg;
	(void)n;
	if (rt->main_func_name[0] == '\0') {
		char *s = strdup("event"); /* Jobico's default */
		if (s == NULL)
			return oom(c);
		rt->main_func_name = s;
	}
	return 0;
}

static const struct fdef retry_fields[] = {
        VAL(Noetl__RetryPolicy, "maxattempts", NULL, F_UINT32, max_attempts),
        VAL(Noetl__RetryPolicy, "backoffbase", "backoffbasems", F_DURATION, backoff_base_ms),
        VAL(Noetl__RetryPolicy, "backoffmax", "backoffmaxms", F_DURATION, backoff_max_ms),
        VAL(Noetl__RetryPolicy, "jitter", "jitterpercent", F_PERCENT, jitter_percent),
};
static const struct mdef retry_def = {"retry", &noetl__retry_policy__descriptor, retry_fields,
                                      N(retry_fields), NULL};

static const struct fdef schema_fields[] = {
        VAL(Noetl__SchemaDef, "id", NULL, F_STR, id),
        VAL(Noetl__SchemaDef, "name", NULL, F_STR, name),
        VAL(Noetl__SchemaDef, "schemaref", NULL, F_STR, schema_ref),
};
static const struct mdef schema_def = {"schema", &noetl__schema_def__descriptor, schema_fields,
                                       N(schema_fields), NULL};

static const struct fdef event_fields[] = {
        VAL(Noetl__EventDef, "id", NULL, F_STR, id),
        VAL(Noetl__EventDef, "name", NULL, F_STR, name),
        VAL(Noetl__EventDef, "datatype", NULL, F_DATATYPE, data_type),
        SUB(Noetl__EventDef, "schema", schema, schema_def),
        VAL(Noetl__EventDef, "supplierqueue", NULL, F_STR, supplier_queue),
        VAL(Noetl__EventDef, "runtime", NULL, F_STR, runtime),
        SUB(Noetl__EventDef, "retry", retry, retry_def),
        VAL(Noetl__EventDef, "timeout", "timeoutms", F_DURATION, timeout_ms),
};
static const struct mdef event_def = {"event", &noetl__event_def__descriptor, event_fields,
                                      N(event_fields), post_event};

static const struct fdef result_fields[] = {
        SUB(Noetl__ResultDef, "ok", ok, event_def),
        SUB(Noetl__ResultDef, "error", error, event_def),
};
static const struct mdef result_def = {"result", &noetl__result_def__descriptor, result_fields,
                                       N(result_fields), NULL};

static const struct fdef job_fields[] = {
        SUB(Noetl__JobDef, "event", event, event_def),
        SUB(Noetl__JobDef, "result", result, result_def),
};
static const struct mdef job_def = {"job", &noetl__job_def__descriptor, job_fields, N(job_fields),
                                    NULL};

static const struct fdef queue_fields[] = {
        VAL(Noetl__QueueDef, "id", NULL, F_STR, id),
        VAL(Noetl__QueueDef, "name", NULL, F_STR, name),
};
static const struct mdef queue_def = {"queue", &noetl__queue_def__descriptor, queue_fields,
                                      N(queue_fields), NULL};

static const struct fdef runtime_fields[] = {
        VAL(Noetl__RuntimeDef, "id", NULL, F_STR, id),
        VAL(Noetl__RuntimeDef, "name", NULL, F_STR, name),
        VAL(Noetl__RuntimeDef, "moduleref", NULL, F_STR, module_ref),
        VAL(Noetl__RuntimeDef, "mainfuncname", NULL, F_STR, main_func_name),
        VAL(Noetl__RuntimeDef, "type", NULL, F_RTTYPE, type),
        VAL(Noetl__RuntimeDef, "platform", NULL, F_UINT32, platform),
        SUB(Noetl__RuntimeDef, "retry", retry, retry_def),
        VAL(Noetl__RuntimeDef, "timeout", "timeoutms", F_DURATION, timeout_ms),
        VAL(Noetl__RuntimeDef, "memorylimit", NULL, F_SIZE, memory_limit),
};
static const struct mdef runtime_def = {"runtime", &noetl__runtime_def__descriptor, runtime_fields,
                                        N(runtime_fields), post_runtime};

static const struct fdef schedule_fields[] = {
        VAL(Noetl__ScheduleDef, "id", NULL, F_STR, id),
        VAL(Noetl__ScheduleDef, "cron", NULL, F_STR, cron),
        VAL(Noetl__ScheduleDef, "event", NULL, F_STR, event),
        VAL(Noetl__ScheduleDef, "payload", NULL, F_PAYLOAD, payload),
};
static const struct mdef schedule_def = {"schedule", &noetl__schedule_def__descriptor,
                                         schedule_fields, N(schedule_fields), NULL};

static const struct fdef package_fields[] = {
        VAL(Noetl__Package, "id", NULL, F_STR, id),
        VAL(Noetl__Package, "name", NULL, F_STR, name),
        VAL(Noetl__Package, "tenant", NULL, F_STR, tenant),
        LIST(Noetl__Package, "queues", queues, queue_def),
        LIST(Noetl__Package, "jobs", jobs, job_def),
        LIST(Noetl__Package, "runtimes", runtimes, runtime_def),
        LIST(Noetl__Package, "schedules", schedules, schedule_def),
};
static const struct mdef package_def = {"package", &noetl__package__descriptor, package_fields,
                                        N(package_fields), NULL};

/* ---- mapping ---- */

/* True if key k spells canon (lowercase, no '_') ignoring case and '_'. */
static bool key_is(const node *k, const char *canon)
{
	size_t j = 0;
	if (canon == NULL)
		return false;
	for (size_t i = 0; i < k->len; i++) {
		char ch = k->text[i];
		if (ch == '_')
			continue;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (canon[j] == '\0' || ch != canon[j])
			return false;
		j++;
	}
	return canon[j] == '\0';
}

static const char *expects(enum fkind k)
{
	switch (k) {
	case F_STR:
		return "a string";
	case F_UINT32:
	case F_PERCENT:
		return "a whole number";
	case F_DATATYPE:
		return "0 (JSON) or 1 (binary)";
	case F_RTTYPE:
		return "0 (wasm)";
	case F_DURATION:
		return "a duration like 500ms or 2s";
	case F_SIZE:
		return "a size like 64MiB";
	default:
		return "a value";
	}
}

static int set_enum(struct pctx *c, const node *v, const char *key, const struct fdef *f,
                    char *base)
{
	static const char *const names[2][2] = {{"data_json", "data_binary"},
	                                        {"runtime_wasm", "runtime_python"}};
	const char *const *nm = names[f->kind == F_RTTYPE];
	uint64_t x;
	int iv;
	if (jobdef__parse_uint(v->text, v->len, INT32_MAX, &x)) {
		iv = (int)x;
	} else if (strcasecmp(v->text, nm[0]) == 0) {
		iv = 0;
	} else if (strcasecmp(v->text, nm[1]) == 0) {
		iv = 1;
	} else {
		return perr(c, v, "'%s' must be %s, got '%.80s'", key, expects(f->kind), v->text);
	}
	memcpy(base + f->off, &iv, sizeof(iv));
	return 0;
}

static int set_scalar(struct pctx *c, const node *v, const char *key, const struct fdef *f,
                      char *base)
{
	uint64_t x;
	uint32_t ms;
	int rc;

	if (v->kind != JOBDEF__SCALAR)
		return perr(c, v, "'%s' must be %s, got %s", key, expects(f->kind), kind_name(v));
	switch (f->kind) {
	case F_STR: {
		char *s;
		if (memchr(v->text, '\0', v->len) != NULL)
			return perr(c, v, "'%s' contains a NUL character: remove it", key);
		s = strdup(v->text);
		if (s == NULL)
			return oom(c);
		*(char **)(base + f->off) = s;
		return 0;
	}
	case F_UINT32:
	case F_PERCENT: {
		size_t len = v->len;
		if (f->kind == F_PERCENT && len > 1 && v->text[len - 1] == '%')
			len--;
		if (!jobdef__parse_uint(v->text, len, UINT32_MAX, &x))
			return perr(c, v, "'%s' must be a whole number from 0 to %s, got '%.80s'",
			            key, f->kind == F_PERCENT ? "100" : "4294967295", v->text);
		*(uint32_t *)(base + f->off) = (uint32_t)x;
		return 0;
	}
	case F_DATATYPE:
	case F_RTTYPE:
		return set_enum(c, v, key, f, base);
	case F_DURATION:
		rc = jobdef__parse_duration(v->text, v->len, &ms);
		if (rc == -ERANGE)
			return perr(c, v,
			            "'%s' must be a whole number of milliseconds up to 4294967295 "
			            "(about 49 days), got '%.80s'",
			            key, v->text);
		if (rc != 0)
			return perr(c, v,
			            "'%s' must be milliseconds or a duration like 500ms, 2s, 1m30s "
			            "or 1h, got '%.80s'",
			            key, v->text);
		*(uint32_t *)(base + f->off) = ms;
		return 0;
	case F_SIZE:
		if (jobdef__parse_size(v->text, v->len, &x) != 0)
			return perr(c, v,
			            "'%s' must be bytes or a size like 512KiB, 64MiB or 1GiB, got "
			            "'%.80s'",
			            key, v->text);
		*(uint64_t *)(base + f->off) = x;
		return 0;
	default:
		return perr(c, v, "internal error: field '%s' has no reader", key);
	}
}

static int map_msg(struct pctx *c, const node *n, const char *path, const struct mdef *def,
                   ProtobufCMessage **slot);

static int set_list(struct pctx *c, const node *v, const char *key, const char *path,
                    const struct fdef *f, char *base)
{
	ProtobufCMessage **arr;
	size_t *count = (size_t *)(base + f->noff);

	if (v->kind != JOBDEF__SEQ)
		return perr(c, v, "'%s' must be a sequence of %s mappings ('- id: ...'), got %s",
		            key, f->msg->what, kind_name(v));
	if (v->n == 0)
		return 0;
	arr = calloc(v->n, sizeof(*arr));
	if (arr == NULL)
		return oom(c);
	*(ProtobufCMessage ***)(base + f->off) = arr;
	for (size_t i = 0; i < v->n && c->rc == 0; i++) {
		const node *item = v->kids[i];
		char ipath[PATH_SIZE];
		pathf(ipath, "%s[%zu]", path, i);
		if (item->kind != JOBDEF__MAP)
			return perr(c, item, "each item of '%s' must be a %s mapping, got %s", key,
			            f->msg->what, kind_name(item));
		map_msg(c, item, ipath, f->msg, &arr[i]);
		if (arr[i] != NULL)
			*count = i + 1; /* so that freeing the root frees it */
	}
	return c->rc;
}

static int set_field(struct pctx *c, ProtobufCMessage *m, const struct fdef *f, const node *k,
                     const node *v, const char *path)
{
	char *base = (char *)m;
	switch (f->kind) {
	case F_MSG:
		if (v->kind != JOBDEF__MAP)
			return perr(c, v, "'%s' must be a mapping of %s keys, got %s", k->text,
			            f->msg->what, kind_name(v));
		return map_msg(c, v, path, f->msg, (ProtobufCMessage **)(base + f->off));
	case F_LIST:
		return set_list(c, v, k->text, path, f, base);
	case F_PAYLOAD:
		return payload_of(c, v, (char **)(base + f->off));
	default:
		return set_scalar(c, v, k->text, f, base);
	}
}

static int unknown_key(struct pctx *c, const node *k, const struct mdef *def)
{
	char list[256] = "";
	size_t used = 0;
	for (size_t i = 0; i < def->nfields && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
		                         def->fields[i].key);
	return perr(c, k, "unknown key '%.80s' in %s: expected one of %s", k->text, def->what,
	            list);
}

/* Builds the message def from mapping n into *slot (set before it is
 * filled, so the caller's cleanup frees a half-built one). */
static int map_msg(struct pctx *c, const node *n, const char *path, const struct mdef *def,
                   ProtobufCMessage **slot)
{
	const node *seen[16] = {0};
	ProtobufCMessage *m = calloc(1, def->desc->sizeof_message);
	if (m == NULL)
		return oom(c);
	protobuf_c_message_init(def->desc, m);
	*slot = m;
	remember(c, path, n);
	for (size_t i = 0; i + 1 < n->n && c->rc == 0; i += 2) {
		const node *k = n->kids[i], *v = n->kids[i + 1];
		char fpath[PATH_SIZE];
		size_t fi = 0;
		if (k->kind != JOBDEF__SCALAR)
			return perr(c, k, "a key in %s must be a word, got %s", def->what,
			            kind_name(k));
		while (fi < def->nfields && !key_is(k, def->fields[fi].key) &&
		       !key_is(k, def->fields[fi].alias))
			fi++;
		if (fi == def->nfields)
			return unknown_key(c, k, def);
		if (seen[fi] != NULL)
			return perr(c, k,
			            "duplicate key '%.80s' in %s (given as '%.80s' at line %d "
			            "column %d): remove one",
			            k->text, def->what, seen[fi]->text, seen[fi]->line,
			            seen[fi]->col);
		seen[fi] = k;
		pathf(fpath, "%s%s%s", path, path[0] ? "." : "", def->fields[fi].key);
		remember(c, fpath, v);
		if (!jobdef__tree_is_null(v))
			set_field(c, m, &def->fields[fi], k, v, fpath);
	}
	if (c->rc == 0 && def->post != NULL)
		def->post(c, n, m);
	return c->rc;
}

static int map_package(struct pctx *c, const node *root, ProtobufCMessage **out)
{
	if (root == NULL || jobdef__tree_is_null(root))
		return perr(c, root,
		            "the document is empty: a job definition is a mapping with at least "
		            "'id', 'tenant', 'queues', 'jobs' and 'runtimes'");
	if (root->kind != JOBDEF__MAP)
		return perr(c, root,
		            "a job definition must be a mapping with 'id', 'tenant', 'queues', "
		            "'jobs' and 'runtimes', got %s",
		            kind_name(root));
	/* Jobico's protojson shape wraps the package: {package: {...}}. */
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		const node *k = root->kids[i], *v = root->kids[i + 1];
		if (k->kind != JOBDEF__SCALAR || !key_is(k, "package"))
			continue;
		if (root->n != 2) {
			const node *other = root->kids[i == 0 ? 2 : 0];
			return perr(c, other,
			            "'%.80s' beside '%s': the 'package' wrapper must be the only "
			            "top-level key; move '%.80s' inside it or drop the wrapper",
			            other->kind == JOBDEF__SCALAR ? other->text : "?", k->text,
			            other->kind == JOBDEF__SCALAR ? other->text : "?");
		}
		if (v->kind != JOBDEF__MAP)
			return perr(c, v, "'%s' must be a mapping with the package's keys, got %s",
			            k->text, kind_name(v));
		root = v;
		break;
	}
	return map_msg(c, root, "", &package_def, out);
}

/* ---- entry points ---- */

int jobdef_parse(const char *text, size_t len, const char *filename, Noetl__Package **out,
                 char **err)
{
	struct pctx c = {.file = filename ? filename : "<input>"};
	node *root = NULL;
	ProtobufCMessage *pkg = NULL;

	if (text == NULL && len > 0)
		c.rc = jobdef__errorf(&c.err, c.file, 0, 0, "no text to parse");
	else if (len > JOBDEF_MAX_SIZE)
		c.rc = jobdef__errorf(&c.err, c.file, 0, 0,
		                      "the definition is %zu bytes; the limit is %d bytes: split "
		                      "the package",
		                      len, JOBDEF_MAX_SIZE);
	else
		c.rc = jobdef__tree_build(text ? text : "", len, c.file, &root, &c.err);
	if (c.rc == 0)
		map_package(&c, root, &pkg);
	if (c.rc == 0)
		c.rc = jobdef__check((Noetl__Package *)pkg, where_in_text, &c, &c.err);

	jobdef__tree_free(root);
	for (size_t i = 0; i < c.npos; i++)
		free(c.pos[i].path);
	free(c.pos);
	if (c.rc != 0) {
		if (pkg != NULL)
			protobuf_c_message_free_unpacked(pkg, NULL);
		if (err != NULL)
			*err = c.err;
		else
			free(c.err);
		return c.rc;
	}
	free(c.err);
	*out = (Noetl__Package *)pkg;
	return 0;
}

int jobdef_parse_file(const char *path, Noetl__Package **out, char **err)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if (st.st_size > JOBDEF_MAX_SIZE)
		rc = -EFBIG;
	else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		rc = -ENOMEM;
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = r < 0 ? -errno : -EIO;
		else
			got += (size_t)r;
	}
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		rc = jobdef_parse(buf, got, path, out, err);
	} else if (err != NULL) {
		const char *why = rc == -EFBIG    ? "it is larger than the 1048576-byte limit"
		                  : rc == -EINVAL ? "it is not a regular file"
		                                  : strerror(-rc);
		if (asprintf(err, "%s: cannot read the job definition: %s", path, why) < 0)
			*err = NULL;
	}
	free(buf);
	return rc;
}

void jobdef_free(Noetl__Package *p)
{
	if (p != NULL)
		noetl__package__free_unpacked(p, NULL);
}
