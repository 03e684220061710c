/*
 * service: one request is one struct lreq, allocated when the request
 * arrives and freed right after its reply was handed back. Most requests run
 * start to finish on the calling thread until they are queued for the
 * Queue; the batcher's sender thread then finishes them. A request whose
 * schema is being (re)loaded parks on the schema cache and is continued by
 * the loader thread. Log lines go to a small work queue for their Record
 * call. Whatever the path, exactly one reply leaves through finish().
 *
 * Replies are JSON: 202 {"accepted":N,"ids":[...]}, and for errors
 * {"error":"what went wrong and what to do"}, plus "errors":[{"instance",
 * "schema","message"}...] for schema failures.
 */
#include "service.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "listener_int.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_ERRORS     100  /* validation errors reported per request */
#define MAX_IDEM_KEY   200  /* bytes of an Idempotency-Key header */
#define MAX_TOKEN      1024 /* bytes of a bearer token */
#define MAX_LOG_TEXT   16384
#define MAX_REQUEST_ID 64

enum kind {
	K_EVENTS,  /* /events/{tenant}/{event} */
	K_WEBHOOK, /* /webhooks/{tenant}/{event} */
	K_LOGS,    /* /logs/{tenant} */
};

static const char *const kind_names[] = {"events", "webhooks", "logs"};

struct lreq {
	struct listener *l;
	const struct listener_service_request *in; /* borrowed until finish */
	listener_service_done_fn done;
	void *arg;
	enum kind kind;
	char tenant[65];
	char event[129];
	char trace[MAX_REQUEST_ID + 1];
	int64_t t0_ms;

	struct listener_defs_event ev; /* the event (secret owned) */
	bool have_ev;
	json_t *doc;                    /* the parsed body, or NULL */
	json_t *elems;                  /* K_EVENTS: the "data" array (borrowed from doc) */
	size_t n;                       /* events in the request */
	struct listener_schema *schema; /* reference while validating, or NULL */

	/* the items for the Queue */
	Noetl__Item *items;
	Noetl__Item **ptrs;
	char (*ids)[UTIL_ID_SIZE];
	char *keys; /* n idempotency keys of key_size bytes, or NULL */
	size_t key_size;
	char *payloads; /* compacted payloads, or NULL */
	Noetl__RetryPolicy retry;
	struct listener_batch_job job;

	/* /logs */
	Noetl__LogLine *lines;
	Noetl__Record *recs;
	Noetl__Record **recptrs;
};

/* --- replies ------------------------------------------------------------- */

static void count_events(struct listener *l, const char *outcome, size_t n)
{
	if (l->m_events != NULL && n > 0)
		metric_add(l->m_events, (const char *[]){outcome}, (double)n);
}

static void lreq_free(struct lreq *q)
{
	if (q->doc != NULL)
		json_decref(q->doc);
	listener_schema_unref(q->schema);
	free(q->ev.secret);
	free(q->items);
	free(q->ptrs);
	free(q->ids);
	free(q->keys);
	free(q->payloads);
	free(q->lines);
	free(q->recs);
	free(q->recptrs);
	free(q);
}

/* Hands the reply back and frees the request; body is owned (freed here). */
static void finish(struct lreq *q, int status, char *body, int retry_after, const char *www)
{
	struct listener *l = q->l;
	char trace[sizeof(q->trace)];
	memcpy(trace, q->trace, sizeof(trace));
	struct listener_service_reply rep = {
	        .status = status,
	        .content_type = "application/json",
	        .body = body != NULL ? body : "{}",
	        .len = body != NULL ? strlen(body) : 2,
	        .retry_after = retry_after,
	        .www_authenticate = www,
	        .trace_id = trace[0] != '\0' ? trace : NULL,
	};
	if (l->m_requests != NULL) {
		char code[8];
		snprintf(code, sizeof(code), "%d", status);
		metric_add(l->m_requests, (const char *[]){kind_names[q->kind], code}, 1);
	}
	listener_service_done_fn done = q->done;
	void *arg = q->arg;
	lreq_free(q);
	/* Before done: once the reply is out the listener may be destroyed. */
	atomic_fetch_sub(&l->inflight, 1);
	done(arg, &rep);
	free(body);
}

static char *dump(json_t *obj)
{
	char *s = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	if (obj != NULL)
		json_decref(obj);
	return s;
}

static char *error_body(const char *fmt, va_list ap)
{
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		return NULL;
	char *s = dump(json_pack("{s:s}", "error", msg));
	free(msg);
	return s;
}

/* Replies status with {"error": message}. */
static void fail(struct lreq *q, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void fail(struct lreq *q, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *body = error_body(fmt, ap);
	va_end(ap);
	int retry = (status == 429 || status == 503) ? q->l->retry_after_s : 0;
	const char *www = NULL;
	if (status == 401)
		www = "Bearer realm=\"noetl\"";
	finish(q, status, body, retry, www);
}

/* --- routing and checks ---------------------------------------------------- */

/* Splits "a/b" (two segments) or "a" (one) after prefix. */
static bool split_path(const char *rest, bool two, char *a, size_t acap, char *b, size_t bcap)
{
	const char *slash = strchr(rest, '/');
	if (!two) {
		if (slash != NULL && slash[1] != '\0')
			return false;
		size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
		if (n == 0 || n >= acap)
			return false;
		memcpy(a, rest, n);
		a[n] = '\0';
		return true;
	}
	if (slash == NULL || strchr(slash + 1, '/') != NULL)
		return false;
	size_t n = (size_t)(slash - rest), m = strlen(slash + 1);
	if (n == 0 || n >= acap || m == 0 || m >= bcap)
		return false;
	memcpy(a, rest, n);
	a[n] = '\0';
	memcpy(b, slash + 1, m + 1);
	return true;
}

/* 0, or an HTTP status (the reply is sent). */
static int route(struct lreq *q)
{
	const char *p = q->in->path != NULL ? q->in->path : "";
	bool ok;
	if (strncmp(p, "/events/", 8) == 0) {
		q->kind = K_EVENTS;
		ok = split_path(p + 8, true, q->tenant, sizeof(q->tenant), q->event,
		                sizeof(q->event));
	} else if (strncmp(p, "/webhooks/", 10) == 0) {
		q->kind = K_WEBHOOK;
		ok = split_path(p + 10, true, q->tenant, sizeof(q->tenant), q->event,
		                sizeof(q->event));
	} else if (strncmp(p, "/logs/", 6) == 0) {
		q->kind = K_LOGS;
		ok = split_path(p + 6, false, q->tenant, sizeof(q->tenant), NULL, 0);
	} else {
		fail(q, 404, "no such path: '%s'", p);
		return 404;
	}
	if (!ok) {
		fail(q, 404,
		     "no such path: '%s' (use /events/{tenant}/{event}, "
		     "/webhooks/{tenant}/{event} or /logs/{tenant})",
		     p);
		return 404;
	}
	if (q->in->method == NULL || strcmp(q->in->method, "POST") != 0) {
		fail(q, 405, "method %s not allowed on '%s': use POST",
		     q->in->method != NULL ? q->in->method : "?", p);
		return 405;
	}
	if (!util_valid_name(q->tenant, 64)) {
		fail(q, 404, "unknown tenant '%s'", q->tenant);
		return 404;
	}
	if (q->kind != K_LOGS && !util_valid_name(q->event, 128)) {
		fail(q, 404, "tenant '%s' has no event '%s'", q->tenant, q->event);
		return 404;
	}
	return 0;
}

/* The presented bearer token, or NULL (*bad set if the header is there but
 * not a bearer token). */
static const char *bearer(const char *h, size_t *len, bool *bad)
{
	*bad = false;
	if (h == NULL)
		return NULL;
	while (*h == ' ')
		h++;
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		*bad = true;
		return NULL;
	}
	h += 7;
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 0 || n > MAX_TOKEN) {
		*bad = true;
		return NULL;
	}
	*len = n;
	return h;
}

/*
 * Checks credentials. For a webhook whose event has a secret, a signature
 * header authenticates the request; a present but wrong signature is
 * refused even with a token. Otherwise a bearer token of the tenant is
 * required. 0 or an HTTP status (the reply is sent).
 */
static int authenticate(struct lreq *q)
{
	struct listener *l = q->l;
	if (l->dev_mode)
		return 0;
	if (q->kind == K_WEBHOOK && q->in->signature != NULL) {
		if (!q->have_ev || q->ev.secret == NULL) {
			if (q->in->authorization == NULL) {
				fail(q, 401,
				     "event '%s' of tenant '%s' has no webhook secret to check "
				     "X-Noetl-Signature against: set one, or send a bearer token",
				     q->event, q->tenant);
				return 401;
			}
		} else if (listener_body_signature_ok(q->ev.secret, q->in->body, q->in->body_len,
		                                      q->in->signature)) {
			return 0;
		} else {
			fail(q, 401,
			     "X-Noetl-Signature does not match the body: sign the raw body with "
			     "HMAC-SHA256 and the event's webhook secret (\"sha256=<hex>\")");
			return 401;
		}
	}
	size_t len = 0;
	bool bad = false;
	const char *tok = bearer(q->in->authorization, &len, &bad);
	if (tok == NULL) {
		if (bad)
			fail(q, 401, "the Authorization header must be \"Bearer <token>\"");
		else if (q->kind == K_WEBHOOK && q->have_ev && q->ev.secret != NULL)
			fail(q, 401,
			     "missing credentials: send X-Noetl-Signature (HMAC-SHA256 of the body "
			     "with the event's webhook secret) or \"Authorization: Bearer "
			     "<token>\"");
		else
			fail(q, 401,
			     "missing credentials: send \"Authorization: Bearer <token>\" with a "
			     "token of tenant '%s' (noetlctl token create %s)",
			     q->tenant, q->tenant);
		return 401;
	}
	switch (listener_defs_check_token(l->defs, q->tenant, tok, len)) {
	case LISTENER_AUTH_OK:
		return 0;
	case LISTENER_AUTH_OTHER_TENANT:
		fail(q, 403, "the token is not valid for tenant '%s'", q->tenant);
		return 403;
	default:
		fail(q, 401, "the token is not valid (unknown or revoked)");
		return 401;
	}
}

static bool valid_request_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_REQUEST_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

/* --- the Queue's answer ----------------------------------------------------- */

static void enqueued(struct listener_batch_job *job, int status, const char *msg,
                     Noetl__EnqueueResult *const *results)
{
	struct lreq *q = (struct lreq *)((char *)job - offsetof(struct lreq, job));
	struct listener *l = q->l;
	if (status == NOETL__STATUS__OK) {
		json_t *ids = json_array();
		size_t dups = 0;
		int64_t now = util_now_ms();
		for (size_t i = 0; i < q->n; i++) {
			const char *id = results[i]->id != NULL && results[i]->id[0] != '\0'
			                         ? results[i]->id
			                         : q->ids[i];
			json_array_append_new(ids, json_string(id));
			if (results[i]->duplicate)
				dups++;
			else if (l->reporter != NULL)
				listener_reporter_add(l->reporter, q->tenant, id, q->event,
				                      NOETL__TIMELINE_KIND__TL_ACCEPTED, now,
				                      q->ev.queue);
		}
		count_events(l, "accepted", q->n - dups);
		count_events(l, "duplicate", dups);
		size_t n = q->n;
		finish(q, 202, dump(json_pack("{s:I,s:o}", "accepted", (json_int_t)n, "ids", ids)),
		       0, NULL);
		return;
	}
	count_events(l, "failed", q->n);
	switch (status) {
	case NOETL__STATUS__RESOURCE_EXHAUSTED:
		fail(q, 429, "tenant '%s' is over its queue limit: %s; retry later", q->tenant,
		     msg != NULL ? msg : "queue full");
		break;
	case NOETL__STATUS__UNAVAILABLE:
	case NOETL__STATUS__DEADLINE_EXCEEDED:
	case NOETL__STATUS__CANCELLED:
	case NOETL__STATUS__ABORTED:
		fail(q, 503,
		     "the queue did not confirm the events (%s: %s); retry later, with the same "
		     "Idempotency-Key to avoid duplicates",
		     rpc_status_name(status), msg != NULL ? msg : "");
		break;
	case NOETL__STATUS__INVALID_ARGUMENT:
		fail(q, 400, "the queue refused the events: %s", msg != NULL ? msg : "");
		break;
	default:
		log_error("listener: the queue answered %s to an enqueue of tenant '%s': %s",
		          rpc_status_name(status), q->tenant, msg != NULL ? msg : "");
		fail(q, 500, "the queue failed (%s): %s", rpc_status_name(status),
		     msg != NULL ? msg : "");
		break;
	}
}

/* --- building items ---------------------------------------------------------- */

static bool retry_set(const Noetl__RetryPolicy *r)
{
	return r->max_attempts != 0 || r->backoff_base_ms != 0 || r->backoff_max_ms != 0 ||
	       r->jitter_percent != 0;
}

/* Fills the items (payloads already in place) and queues them. */
static void submit(struct lreq *q)
{
	struct listener *l = q->l;
	const char *key = q->in->idempotency_key;
	if (key != NULL) {
		q->key_size = strlen(q->event) + strlen(key) + 24;
		if ((q->keys = malloc(q->n * q->key_size)) == NULL) {
			fail(q, 503, "out of memory; retry later");
			return;
		}
	}
	noetl__retry_policy__init(&q->retry);
	q->retry.max_attempts = q->ev.retry.max_attempts;
	q->retry.backoff_base_ms = q->ev.retry.backoff_base_ms;
	q->retry.backoff_max_ms = q->ev.retry.backoff_max_ms;
	q->retry.jitter_percent = q->ev.retry.jitter_percent;
	int64_t now = util_now_ms();
	for (size_t i = 0; i < q->n; i++) {
		Noetl__Item *it = &q->items[i];
		util_new_id(q->ids[i]);
		it->tenant = q->tenant;
		it->queue = q->ev.queue;
		it->id = q->ids[i];
		it->event = q->event;
		it->package = q->ev.package;
		it->retry = retry_set(&q->retry) ? &q->retry : NULL;
		it->trace_id = q->trace;
		it->enqueued_ms = now;
		it->definition_revision = q->ev.revision;
		if (q->keys != NULL) {
			char *k = q->keys + i * q->key_size;
			snprintf(k, q->key_size, "%s/%s/%zu", q->event, key, i);
			it->idempotency_key = k;
		}
		q->ptrs[i] = it;
		if (l->reporter != NULL)
			listener_reporter_add(l->reporter, q->tenant, q->ids[i], q->event,
			                      NOETL__TIMELINE_KIND__TL_RECEIVED, q->t0_ms,
			                      kind_names[q->kind]);
	}
	q->job.items = q->ptrs;
	q->job.n = q->n;
	q->job.tenant = q->tenant;
	q->job.done = enqueued;
	int rv = listener_batcher_submit(l->batcher, &q->job);
	if (rv != 0) {
		count_events(l, "shed", q->n);
		fail(q, 503, "%s; retry later",
		     rv == -EAGAIN ? "the listener is overloaded"
		                   : "the listener is shutting down");
	}
}

static int alloc_items(struct lreq *q)
{
	q->items = calloc(q->n, sizeof(*q->items));
	q->ptrs = calloc(q->n, sizeof(*q->ptrs));
	q->ids = calloc(q->n, sizeof(*q->ids));
	if (q->items == NULL || q->ptrs == NULL || q->ids == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < q->n; i++)
		noetl__item__init(&q->items[i]);
	return 0;
}

/* Payloads of a {"data":[...]} request: each element's own text,
 * compacted; falls back to re-encoding if the text cannot be split. */
static int events_payloads(struct lreq *q)
{
	const char *text = q->in->body;
	size_t len = q->in->body_len;
	if (q->ev.data_type == NOETL__DATA_TYPE__DATA_BINARY) {
		for (size_t i = 0; i < q->n; i++) {
			json_t *e = json_array_get(q->elems, i);
			q->items[i].payload.data = (uint8_t *)json_string_value(e);
			q->items[i].payload.len = json_string_length(e);
		}
		return 0;
	}
	struct listener_body_span *spans = malloc(q->n * sizeof(*spans));
	if (spans == NULL || (q->payloads = malloc(len > 0 ? len : 1)) == NULL) {
		free(spans);
		return -ENOMEM;
	}
	if (listener_body_data_spans(text, len, spans, q->n)) {
		size_t off = 0;
		for (size_t i = 0; i < q->n; i++) {
			size_t m = listener_body_compact(text + spans[i].off, spans[i].len,
			                                 q->payloads + off);
			q->items[i].payload.data = (uint8_t *)q->payloads + off;
			q->items[i].payload.len = m;
			off += m;
		}
		free(spans);
		return 0;
	}
	free(spans);
	/* Cannot happen for a body jansson accepted; kept as a safe path. */
	free(q->payloads);
	size_t total = 0;
	char **enc = calloc(q->n, sizeof(char *));
	if (enc == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < q->n; i++) {
		enc[i] = json_dumps(json_array_get(q->elems, i), JSON_COMPACT | JSON_ENCODE_ANY);
		total += enc[i] != NULL ? strlen(enc[i]) : 0;
	}
	q->payloads = malloc(total + 1);
	size_t off = 0;
	for (size_t i = 0; i < q->n; i++) {
		size_t m = enc[i] != NULL ? strlen(enc[i]) : 0;
		if (q->payloads != NULL && m > 0) {
			memcpy(q->payloads + off, enc[i], m);
			q->items[i].payload.data = (uint8_t *)q->payloads + off;
			q->items[i].payload.len = m;
			off += m;
		}
		free(enc[i]);
	}
	free(enc);
	return q->payloads != NULL ? 0 : -ENOMEM;
}

/* --- validation ------------------------------------------------------------------ */

/* Validates every event; replies 400 with all errors, or submits. */
static void validate_and_submit(struct lreq *q)
{
	if (q->schema != NULL) {
		const struct jsonschema *js = q->schema->js;
		json_t *errors = NULL;
		size_t nerr = 0, failed = 0;
		for (size_t i = 0; i < q->n; i++) {
			json_t *inst = q->kind == K_EVENTS ? json_array_get(q->elems, i) : q->doc;
			if (jsonschema_validate(js, inst, NULL))
				continue;
			failed++;
			if (nerr >= MAX_ERRORS)
				continue;
			struct jsonschema_errors errs;
			jsonschema_errors_init(&errs, MAX_ERRORS - nerr);
			jsonschema_validate(js, inst, &errs);
			char prefix[40] = "";
			if (q->kind == K_EVENTS)
				snprintf(prefix, sizeof(prefix), "/data/%zu", i);
			json_t *arr = jsonschema_errors_to_json(&errs, prefix);
			jsonschema_errors_release(&errs);
			if (errors == NULL)
				errors = json_array();
			if (arr != NULL) {
				nerr += json_array_size(arr);
				json_array_extend(errors, arr);
				json_decref(arr);
			}
		}
		if (failed > 0) {
			count_events(q->l, "invalid", q->n);
			char msg[400];
			if (q->kind == K_EVENTS)
				snprintf(msg, sizeof(msg),
				         "%zu of %zu events do not match the schema of event '%s'; "
				         "none was accepted",
				         failed, q->n, q->event);
			else
				snprintf(msg, sizeof(msg),
				         "the event does not match the schema of '%s'", q->event);
			finish(q, 400, dump(json_pack("{s:s,s:o}", "error", msg, "errors", errors)),
			       0, NULL);
			return;
		}
		listener_schema_unref(q->schema);
		q->schema = NULL;
	}
	submit(q);
}

static void schema_ready(void *arg, struct listener_schema *s, int status, const char *msg)
{
	struct lreq *q = arg;
	if (status == 0) {
		q->schema = s;
		validate_and_submit(q);
		return;
	}
	if (status == -ENOENT || status == -EINVAL) {
		fail(q, 500, "event '%s' cannot be validated: %s", q->event, msg);
		return;
	}
	fail(q, 503, "the schema of event '%s' cannot be loaded now (%s); retry later", q->event,
	     msg != NULL ? msg : "repository unreachable");
}

/* Gets the compiled schema (maybe later) and goes on. */
static void with_schema(struct lreq *q)
{
	if (q->ev.data_type == NOETL__DATA_TYPE__DATA_BINARY || q->ev.schema[0] == '\0') {
		submit(q);
		return;
	}
	char *msg = NULL;
	struct listener_schema *s = NULL;
	int rv = listener_schemas_get(q->l->schemas, q->tenant, q->ev.schema, &s, &msg,
	                              schema_ready, q);
	if (rv == -EINPROGRESS)
		return; /* schema_ready continues */
	if (rv == 0) {
		q->schema = s;
		validate_and_submit(q);
		return;
	}
	if (rv == -ENOENT || rv == -EINVAL)
		fail(q, 500, "event '%s' cannot be validated: %s", q->event,
		     msg != NULL ? msg : "its schema is not usable");
	else
		fail(q, 503, "too many requests wait for schemas to load; retry later");
	free(msg);
}

/* --- the three routes ------------------------------------------------------------------ */

static void parse_error(struct lreq *q, const char *what, char *err)
{
	fail(q, 400, "the body is not valid JSON: %s%s", err != NULL ? err : "", what);
	free(err);
}

static void handle_events(struct lreq *q)
{
	struct listener *l = q->l;
	if (!listener_body_is_json_type(q->in->content_type)) {
		fail(q, 415, "send the events as JSON (Content-Type: application/json), not '%s'",
		     q->in->content_type != NULL ? q->in->content_type : "no Content-Type");
		return;
	}
	char *err = NULL;
	if (q->in->body_len == 0) {
		fail(q, 400, "the body is empty: send {\"data\":[event, ...]}");
		return;
	}
	if (jsonschema_parse(q->in->body, q->in->body_len, &q->doc, &err) != 0) {
		parse_error(q, "", err);
		return;
	}
	const char *key;
	json_t *val;
	json_object_foreach(q->doc, key, val)
	{
		if (strcmp(key, "data") != 0) {
			fail(q, 400,
			     "unknown member '%s' in the body: send {\"data\":[event, ...]}", key);
			return;
		}
	}
	q->elems = json_object_get(q->doc, "data");
	if (!json_is_object(q->doc) || !json_is_array(q->elems)) {
		fail(q, 400, "the body must be {\"data\":[event, ...]}");
		return;
	}
	q->n = json_array_size(q->elems);
	if (q->n == 0) {
		fail(q, 400, "\"data\" is empty: send at least one event");
		return;
	}
	if (q->n > l->max_elements) {
		fail(q, 413, "%zu events in one request is over the limit of %zu: split them", q->n,
		     l->max_elements);
		return;
	}
	if (q->ev.data_type == NOETL__DATA_TYPE__DATA_BINARY) {
		for (size_t i = 0; i < q->n; i++) {
			if (!json_is_string(json_array_get(q->elems, i))) {
				fail(q, 400,
				     "/data/%zu: event '%s' carries binary data: each event must "
				     "be "
				     "a JSON string",
				     i, q->event);
				return;
			}
		}
	}
	if (alloc_items(q) != 0 || events_payloads(q) != 0) {
		fail(q, 503, "out of memory; retry later");
		return;
	}
	with_schema(q);
}

static void handle_webhook(struct lreq *q)
{
	q->n = 1;
	if (alloc_items(q) != 0) {
		fail(q, 503, "out of memory; retry later");
		return;
	}
	if (q->ev.data_type == NOETL__DATA_TYPE__DATA_BINARY) {
		q->items[0].payload.data = (uint8_t *)q->in->body;
		q->items[0].payload.len = q->in->body_len;
		submit(q);
		return;
	}
	if (!listener_body_is_json_type(q->in->content_type)) {
		fail(q, 415, "send the event as JSON (Content-Type: application/json), not '%s'",
		     q->in->content_type != NULL ? q->in->content_type : "no Content-Type");
		return;
	}
	char *err = NULL;
	if (q->in->body_len == 0) {
		fail(q, 400, "the body is empty: send the event as JSON");
		return;
	}
	if (jsonschema_parse(q->in->body, q->in->body_len, &q->doc, &err) != 0) {
		parse_error(q, "", err);
		return;
	}
	/* The payload is the body as sent: a signature over it stays valid. */
	q->items[0].payload.data = (uint8_t *)q->in->body;
	q->items[0].payload.len = q->in->body_len;
	with_schema(q);
}

/* --- /logs ------------------------------------------------------------------------ */

static bool parse_level(json_t *v, Noetl__LogLevel *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || i > 3)
			return false;
		*out = (Noetl__LogLevel)i;
		return true;
	}
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*out = (Noetl__LogLevel)i;
			return true;
		}
	if (strcasecmp(s, "warning") == 0) {
		*out = NOETL__LOG_LEVEL__LOG_WARN;
		return true;
	}
	return false;
}

/* Fills line i from element v; 0 or replies 400. */
static int log_line(struct lreq *q, size_t i, json_t *v, int64_t now)
{
	Noetl__LogLine *ln = &q->lines[i];
	noetl__log_line__init(ln);
	ln->tenant = q->tenant;
	ln->time_ms = now;
	ln->level = NOETL__LOG_LEVEL__LOG_INFO;
	ln->source = "external";
	if (json_is_string(v)) {
		ln->text = (char *)json_string_value(v);
	} else if (json_is_object(v)) {
		const char *key;
		json_t *f;
		json_object_foreach(v, key, f)
		{
			if (strcmp(key, "text") == 0 && json_is_string(f)) {
				ln->text = (char *)json_string_value(f);
			} else if (strcmp(key, "level") == 0) {
				if (!parse_level(f, &ln->level)) {
					fail(q, 400,
					     "/%zu/level: use \"debug\", \"info\", \"warn\", "
					     "\"error\" "
					     "or 0..3",
					     i);
					return -1;
				}
			} else if (strcmp(key, "time_ms") == 0 && json_is_integer(f)) {
				ln->time_ms = json_integer_value(f);
			} else if (strcmp(key, "event_id") == 0 && json_is_string(f) &&
			           json_string_length(f) <= 128) {
				ln->event_id = (char *)json_string_value(f);
			} else if (strcmp(key, "source") == 0 && json_is_string(f) &&
			           json_string_length(f) >= 1 && json_string_length(f) <= 64) {
				ln->source = (char *)json_string_value(f);
			} else if (strcmp(key, "attempt") == 0 && json_is_integer(f) &&
			           json_integer_value(f) >= 0 &&
			           json_integer_value(f) <= UINT32_MAX) {
				ln->attempt = (uint32_t)json_integer_value(f);
			} else {
				fail(q, 400,
				     "/%zu/%s: unknown member or wrong type (a line has text: "
				     "string, "
				     "level, time_ms: integer, event_id: string, source: string, "
				     "attempt: integer)",
				     i, key);
				return -1;
			}
		}
	}
	if (ln->text == NULL) {
		fail(q, 400, "/%zu: a log line is a string or an object with \"text\"", i);
		return -1;
	}
	if (strlen(ln->text) > MAX_LOG_TEXT) {
		fail(q, 413, "/%zu/text: a log line is limited to %d bytes", i, MAX_LOG_TEXT);
		return -1;
	}
	return 0;
}

static void record_logs(void *arg, int cancelled)
{
	struct lreq *q = arg;
	struct listener *l = q->l;
	if (cancelled) {
		fail(q, 503, "the listener is shutting down; retry later");
		return;
	}
	Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
	req.n_records = q->n;
	req.records = q->recptrs;
	struct rpc_call_options o = {.timeout_ms = l->call_timeout_ms,
	                             .tenant = q->tenant,
	                             .token = l->token,
	                             .trace_id = q->trace};
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = rpc_call(l->recorder, &noetl__recorder__descriptor, "Record", &req.base, &o, &out,
	                  &err);
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	if (st == NOETL__STATUS__OK) {
		size_t n = q->n;
		finish(q, 202, dump(json_pack("{s:I}", "accepted", (json_int_t)n)), 0, NULL);
	} else if (st == NOETL__STATUS__INVALID_ARGUMENT) {
		fail(q, 400, "the recorder refused the lines: %s", err != NULL ? err : "");
	} else if (st == NOETL__STATUS__RESOURCE_EXHAUSTED) {
		fail(q, 429, "the recorder is over a limit: %s; retry later",
		     err != NULL ? err : "");
	} else {
		fail(q, 503, "the recorder did not store the lines (%s: %s); retry later",
		     rpc_status_name(st), err != NULL ? err : "");
	}
	free(err);
}

static void handle_logs(struct lreq *q)
{
	struct listener *l = q->l;
	if (l->recorder == NULL) {
		fail(q, 503, "this listener has no recorder configured to store log lines");
		return;
	}
	if (!listener_body_is_json_type(q->in->content_type)) {
		fail(q, 415,
		     "send the log lines as JSON (Content-Type: application/json), not '%s'",
		     q->in->content_type != NULL ? q->in->content_type : "no Content-Type");
		return;
	}
	char *err = NULL;
	if (q->in->body_len == 0 ||
	    jsonschema_parse(q->in->body, q->in->body_len, &q->doc, &err) != 0) {
		if (q->in->body_len == 0)
			fail(q, 400, "the body is empty: send a JSON array of log lines");
		else
			parse_error(q, "", err);
		return;
	}
	if (!json_is_array(q->doc) || json_array_size(q->doc) == 0) {
		fail(q, 400, "send a non-empty JSON array of log lines");
		return;
	}
	q->n = json_array_size(q->doc);
	if (q->n > l->max_elements) {
		fail(q, 413, "%zu log lines in one request is over the limit of %zu", q->n,
		     l->max_elements);
		return;
	}
	q->lines = calloc(q->n, sizeof(*q->lines));
	q->recs = calloc(q->n, sizeof(*q->recs));
	q->recptrs = calloc(q->n, sizeof(*q->recptrs));
	if (q->lines == NULL || q->recs == NULL || q->recptrs == NULL) {
		fail(q, 503, "out of memory; retry later");
		return;
	}
	int64_t now = util_now_ms();
	for (size_t i = 0; i < q->n; i++) {
		if (log_line(q, i, json_array_get(q->doc, i), now) != 0)
			return;
		noetl__record__init(&q->recs[i]);
		q->recs[i].kind_case = NOETL__RECORD__KIND_LOG;
		q->recs[i].log = &q->lines[i];
		q->recptrs[i] = &q->recs[i];
	}
	int rv = listener_workq_submit(l->logq, record_logs, q);
	if (rv != 0)
		fail(q, 503, "too many log requests in progress; retry later");
}

/* --- entry ------------------------------------------------------------------------- */

void listener_service_handle(struct listener *l, const struct listener_service_request *in,
                             listener_service_done_fn done, void *arg)
{
	atomic_fetch_add(&l->inflight, 1);
	struct lreq *q = calloc(1, sizeof(*q));
	if (q == NULL) {
		static const char oom[] = "{\"error\":\"out of memory; retry later\"}";
		struct listener_service_reply rep = {.status = 503,
		                                     .content_type = "application/json",
		                                     .body = oom,
		                                     .len = sizeof(oom) - 1,
		                                     .retry_after = l->retry_after_s};
		atomic_fetch_sub(&l->inflight, 1);
		done(arg, &rep);
		return;
	}
	q->l = l;
	q->in = in;
	q->done = done;
	q->arg = arg;
	q->t0_ms = util_now_ms();
	if (in->request_id != NULL && valid_request_id(in->request_id))
		snprintf(q->trace, sizeof(q->trace), "%s", in->request_id);
	else
		util_new_id(q->trace);

	if (route(q) != 0)
		return;
	if (atomic_load(&l->inflight) > l->max_inflight) {
		fail(q, 503, "the listener is overloaded (%d requests in progress); retry later",
		     l->max_inflight);
		return;
	}
	if (!listener_defs_loaded(l->defs)) {
		fail(q, 503,
		     "the listener has not loaded the definitions from control yet; retry "
		     "later");
		return;
	}
	if (!listener_defs_has_tenant(l->defs, q->tenant)) {
		fail(q, 404, "unknown tenant '%s'", q->tenant);
		return;
	}
	const char *key = in->idempotency_key;
	if (key != NULL) {
		size_t kl = strlen(key);
		bool ok = kl > 0 && kl <= MAX_IDEM_KEY;
		for (size_t i = 0; i < kl && ok; i++)
			ok = key[i] > 0x20 && key[i] < 0x7f;
		if (!ok) {
			fail(q, 400,
			     "Idempotency-Key must be 1..%d printable ASCII characters without "
			     "spaces",
			     MAX_IDEM_KEY);
			return;
		}
	}
	if (q->kind == K_LOGS) {
		if (authenticate(q) == 0)
			handle_logs(q);
		return;
	}
	int rv = listener_defs_lookup_event(l->defs, q->tenant, q->event, &q->ev);
	if (rv == -ENOMEM) {
		fail(q, 503, "out of memory; retry later");
		return;
	}
	q->have_ev = rv == 0;
	/* Credentials before the event's existence: no probing without them. */
	if (authenticate(q) != 0)
		return;
	if (!q->have_ev) {
		fail(q, 404, "tenant '%s' has no event '%s' (is its package deployed?)", q->tenant,
		     q->event);
		return;
	}
	if (q->kind == K_EVENTS)
		handle_events(q);
	else
		handle_webhook(q);
}
