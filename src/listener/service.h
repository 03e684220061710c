/*
 * service: the listener's request pipeline, free of sockets: a decoded HTTP
 * request in, a reply out (possibly later, from another thread, once the
 * Queue answered). listener.c feeds it from httpd; tests may call it
 * directly.
 *
 * The order of checks, and so which error a bad request gets first:
 * route (404) -> load shedding (503) -> definitions loaded (503) ->
 * tenant (404) -> credentials (401/403) -> event (404) -> element count and
 * Content-Type (413/415) -> JSON (400) -> schema (400) -> Queue
 * (202/429/503).
 */
#ifndef NOETL_LISTENER_SERVICE_H
#define NOETL_LISTENER_SERVICE_H

#include <stddef.h>

struct listener;

/* A request; every pointer is borrowed until done has been called. */
struct listener_service_request {
	const char *method;          /* "POST" */
	const char *path;            /* "/events/acme/greet", without the query */
	const char *content_type;    /* header value or NULL */
	const char *authorization;   /* header value or NULL */
	const char *idempotency_key; /* header value or NULL */
	const char *signature;       /* X-Noetl-Signature or NULL */
	const char *request_id;      /* X-Request-Id, used as the trace id; NULL = new */
	const void *body;            /* body bytes (not NUL-terminated) */
	size_t body_len;
};

/* A reply; borrowed for the callback. */
struct listener_service_reply {
	int status;               /* HTTP status */
	const char *content_type; /* of body */
	const char *body;         /* JSON text */
	size_t len;
	int retry_after;              /* seconds for Retry-After; 0 = no header */
	const char *www_authenticate; /* WWW-Authenticate value or NULL */
	const char *trace_id;         /* for an X-Trace-Id header, or NULL */
};

typedef void (*listener_service_done_fn)(void *arg, const struct listener_service_reply *rep);

/* Handles one request; done(arg, reply) is called exactly once, either
 * before this returns or later from a listener thread. */
void listener_service_handle(struct listener *l, const struct listener_service_request *req,
                             listener_service_done_fn done, void *arg);

#endif
