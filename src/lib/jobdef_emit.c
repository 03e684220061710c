/*
 * jobdef_emit: a package as canonical YAML, for `noetlctl show deploy` and
 * for round trips.
 *
 * Canonical means: Jobico's lowercase key names, one fixed key order,
 * absent and zero fields left out (except datatype and type, which Jobico
 * files always spell out), durations and sizes in their largest exact unit,
 * and each string plain only when a YAML reader cannot mistake it for
 * something else (a number, a boolean, null, YAML 1.1's yes/no); otherwise
 * double-quoted. A schedule's JSON payload becomes YAML again, so what is
 * shown is what was written.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "jobdef.h"
#include "jobdef_int.h"

struct em {
	yaml_emitter_t e; /* libyaml's emitter */
	char *buf;        /* the output so far */
	size_t len;       /* bytes in buf */
	size_t cap;       /* bytes allocated in buf */
	bool failed;      /* out of memory or an emitter error */
};

static int on_write(void *data, unsigned char *bytes, size_t size)
{
	struct em *m = data;
	if (m->len + size + 1 > m->cap) {
		size_t cap = m->cap ? m->cap : 1024;
		while (cap < m->len + size + 1)
			cap *= 2;
		char *b = realloc(m->buf, cap);
		if (b == NULL)
			return 0;
		m->buf = b;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, bytes, size);
	m->len += size;
	m->buf[m->len] = '\0';
	return 1;
}

/* yaml_emitter_emit owns the event whether or not it succeeds. */
static void emit(struct em *m, yaml_event_t *ev, int made)
{
	if (!made) {
		m->failed = true;
		return;
	}
	if (m->failed) {
		yaml_event_delete(ev);
		return;
	}
	if (!yaml_emitter_emit(&m->e, ev))
		m->failed = true;
}

static void raw(struct em *m, const char *s, size_t len, yaml_scalar_style_t style)
{
	yaml_event_t ev;
	emit(m, &ev,
	     yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1,
	                                  style));
}

/* True if s reads back as the same string when written plain. */
static bool plain_ok(const char *s, size_t len)
{
	static const char *const yaml11[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
	                                     "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
	if (len == 0 || s[len - 1] == ' ' || jobdef__resolve(s, len, NULL, NULL) != JOBDEF__STRING)
		return false;
	for (size_t i = 0; i < sizeof(yaml11) / sizeof(yaml11[0]); i++)
		if (strlen(yaml11[i]) == len && memcmp(s, yaml11[i], len) == 0)
			return false;
	/* A leading digit, sign or dot is quoted even when the core schema
	 * reads a string: YAML 1.1 readers take 1_000, 012 or 1:30 for numbers. */
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		            c == '/' || (i > 0 && c >= '0' && c <= '9');
		if (!word && (i == 0 || c == '\0' || strchr(".-+ '()", c) == NULL))
			return false;
	}
	return true;
}

static void strn(struct em *m, const char *s, size_t len)
{
	raw(m, s, len,
	    plain_ok(s, len) ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

static void str(struct em *m, const char *s)
{
	strn(m, s, strlen(s));
}

static void word(struct em *m, const char *s)
{
	raw(m, s, strlen(s), YAML_PLAIN_SCALAR_STYLE);
}

static void map_start(struct em *m)
{
	yaml_event_t ev;
	emit(m, &ev,
	     yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static void map_end(struct em *m)
{
	yaml_event_t ev;
	emit(m, &ev, yaml_mapping_end_event_initialize(&ev));
}

static void seq_start(struct em *m)
{
	yaml_event_t ev;
	emit(m, &ev,
	     yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

static void seq_end(struct em *m)
{
	yaml_event_t ev;
	emit(m, &ev, yaml_sequence_end_event_initialize(&ev));
}

/* key: "value", left out when the value is empty. */
static void kv_str(struct em *m, const char *key, const char *v)
{
	if (v == NULL || v[0] == '\0')
		return;
	word(m, key);
	str(m, v);
}

static void kv_uint(struct em *m, const char *key, unsigned long long v)
{
	char b[32];
	snprintf(b, sizeof(b), "%llu", v);
	word(m, key);
	word(m, b);
}

static void kv_duration(struct em *m, const char *key, uint32_t ms)
{
	char b[32];
	if (ms == 0)
		return;
	jobdef__format_duration(ms, b, sizeof(b));
	word(m, key);
	word(m, b);
}

static void retry(struct em *m, const Noetl__RetryPolicy *r)
{
	if (r == NULL)
		return;
	word(m, "retry");
	map_start(m);
	if (r->max_attempts != 0)
		kv_uint(m, "maxattempts", r->max_attempts);
	kv_duration(m, "backoffbase", r->backoff_base_ms);
	kv_duration(m, "backoffmax", r->backoff_max_ms);
	if (r->jitter_percent != 0)
		kv_uint(m, "jitter", r->jitter_percent);
	map_end(m);
}

static void event(struct em *m, const char *key, const Noetl__EventDef *ev)
{
	if (ev == NULL)
		return;
	word(m, key);
	map_start(m);
	kv_str(m, "id", ev->id);
	kv_str(m, "name", ev->name);
	kv_uint(m, "datatype", (unsigned)ev->data_type);
	if (ev->schema != NULL) {
		word(m, "schema");
		map_start(m);
		kv_str(m, "id", ev->schema->id);
		kv_str(m, "name", ev->schema->name);
		kv_str(m, "schemaref", ev->schema->schema_ref);
		map_end(m);
	}
	kv_str(m, "supplierqueue", ev->supplier_queue);
	kv_str(m, "runtime", ev->runtime);
	retry(m, ev->retry);
	kv_duration(m, "timeout", ev->timeout_ms);
	map_end(m);
}

static void json(struct em *m, json_t *j)
{
	char b[64];
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		map_start(m);
		json_object_foreach(j, key, v)
		{
			str(m, key);
			json(m, v);
		}
		map_end(m);
		break;
	case JSON_ARRAY:
		seq_start(m);
		json_array_foreach(j, i, v)
		{
			json(m, v);
		}
		seq_end(m);
		break;
	case JSON_STRING:
		strn(m, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		snprintf(b, sizeof(b), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		word(m, b);
		break;
	case JSON_REAL:
		/* Like jansson: %.17g, with ".0" so that it stays a float. */
		snprintf(b, sizeof(b), "%.17g", json_real_value(j));
		if (strpbrk(b, ".eE") == NULL)
			strcat(b, ".0");
		word(m, b);
		break;
	case JSON_TRUE:
		word(m, "true");
		break;
	case JSON_FALSE:
		word(m, "false");
		break;
	case JSON_NULL:
		word(m, "null");
		break;
	}
}

static void package(struct em *m, const Noetl__Package *p)
{
	char b[32];
	map_start(m);
	kv_str(m, "id", p->id);
	kv_str(m, "name", p->name);
	kv_str(m, "tenant", p->tenant);
	if (p->n_queues > 0) {
		word(m, "queues");
		seq_start(m);
		for (size_t i = 0; i < p->n_queues; i++) {
			map_start(m);
			kv_str(m, "id", p->queues[i]->id);
			kv_str(m, "name", p->queues[i]->name);
			map_end(m);
		}
		seq_end(m);
	}
	if (p->n_jobs > 0) {
		word(m, "jobs");
		seq_start(m);
		for (size_t i = 0; i < p->n_jobs; i++) {
			const Noetl__JobDef *j = p->jobs[i];
			map_start(m);
			event(m, "event", j->event);
			if (j->result != NULL) {
				word(m, "result");
				map_start(m);
				event(m, "ok", j->result->ok);
				event(m, "error", j->result->error);
				map_end(m);
			}
			map_end(m);
		}
		seq_end(m);
	}
	if (p->n_runtimes > 0) {
		word(m, "runtimes");
		seq_start(m);
		for (size_t i = 0; i < p->n_runtimes; i++) {
			const Noetl__RuntimeDef *rt = p->runtimes[i];
			map_start(m);
			kv_str(m, "id", rt->id);
			kv_str(m, "name", rt->name);
			kv_str(m, "moduleref", rt->module_ref);
			kv_str(m, "mainfuncname",
			       rt->main_func_name && rt->main_func_name[0] ? rt->main_func_name
			                                                   : "event");
			kv_uint(m, "type", (unsigned)rt->type);
			if (rt->platform != 0)
				kv_uint(m, "platform", rt->platform);
			retry(m, rt->retry);
			kv_duration(m, "timeout", rt->timeout_ms);
			if (rt->memory_limit != 0) {
				jobdef__format_size(rt->memory_limit, b, sizeof(b));
				word(m, "memorylimit");
				word(m, b);
			}
			map_end(m);
		}
		seq_end(m);
	}
	if (p->n_schedules > 0) {
		word(m, "schedules");
		seq_start(m);
		for (size_t i = 0; i < p->n_schedules && !m->failed; i++) {
			const Noetl__ScheduleDef *s = p->schedules[i];
			map_start(m);
			kv_str(m, "id", s->id);
			kv_str(m, "cron", s->cron);
			kv_str(m, "event", s->event);
			if (s->payload != NULL && s->payload[0] != '\0') {
				json_t *j = json_loads(s->payload, JSON_DECODE_ANY | JSON_ALLOW_NUL,
				                       NULL);
				if (j == NULL) {
					m->failed = true;
					break;
				}
				word(m, "payload");
				json(m, j);
				json_decref(j);
			}
			map_end(m);
		}
		seq_end(m);
	}
	map_end(m);
}

char *jobdef_to_yaml(const Noetl__Package *p)
{
	struct em m = {0};
	yaml_event_t ev;

	if (p == NULL || !yaml_emitter_initialize(&m.e))
		return NULL;
	yaml_emitter_set_output(&m.e, on_write, &m);
	yaml_emitter_set_unicode(&m.e, 1);
	yaml_emitter_set_indent(&m.e, 2);
	yaml_emitter_set_width(&m.e, -1);
	emit(&m, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	emit(&m, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
	package(&m, p);
	emit(&m, &ev, yaml_document_end_event_initialize(&ev, 1));
	emit(&m, &ev, yaml_stream_end_event_initialize(&ev));
	if (!m.failed && !yaml_emitter_flush(&m.e))
		m.failed = true;
	yaml_emitter_delete(&m.e);
	if (m.failed || m.buf == NULL) {
		free(m.buf);
		return NULL;
	}
	return m.buf;
}
