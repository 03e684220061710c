/*
 * httpd: the HTTP endpoint of a service, on nng's HTTP server.
 *
 * Every service serves
 *   GET /healthz  200 "ok" while the process runs;
 *   GET /readyz   200 "ready" when the readiness callback says so, else 503
 *                 with the callback's reason;
 *   GET /metrics  the service's metrics registry in Prometheus text format;
 * and a service with an HTTP API of its own (the listener's webhooks) adds
 * its routes to the same server with httpd_add_handler.
 *
 * Routing is ours, not nng's: one nng handler takes every request, and httpd
 * picks the route whose method matches and whose path matches exactly, or,
 * for a route path ending in '/', as a prefix ("/events/" takes
 * "/events/acme/greet"). The longest matching path wins; HEAD is served by
 * the GET route. No route: 404; a route for the path but not the method: 405
 * with an Allow header. Replies made by httpd are short text/plain lines.
 *
 * Bodies: httpd reads a request body itself (Content-Length only) so that it
 * can answer 413 for a body over the route's limit without reading it (and
 * close, since the body is still on its way), 411 for a chunked body, and
 * "100 Continue" to a client that waits for it. A body that does not arrive
 * within body_timeout_ms closes the connection without a reply. The body
 * limit per route is the listener's 413; nng's own collection (which would
 * answer 400) is off.
 *
 * Threads: nng's threads do the I/O; handlers run on httpd's own workers so
 * that one may block (on a synced queue write, say) without stalling nng.
 * Requests wait in a bounded queue; when it is full httpd answers 503 with
 * Retry-After instead of building an unbounded backlog. Handlers flagged
 * HTTPD_INLINE (they never block: health, metrics) skip the queue and run on
 * the nng thread that read the request, so /healthz answers even when every
 * worker is busy.
 *
 * Every reply carries Content-Length, 0 for an empty body, so keep-alive
 * clients know where it ends; connections persist (HTTP/1.1) unless the
 * client or the reply says "Connection: close".
 */
#ifndef NOETL_HTTPD_H
#define NOETL_HTTPD_H

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;
struct httpd;
struct httpd_req;

/* Readiness: return true when ready; otherwise write why into why (at most
 * cap bytes, NUL-terminated), e.g. "queue store is opening". Called on nng
 * threads; must be quick and thread-safe. */
typedef bool (*httpd_ready_fn)(void *arg, char *why, size_t cap);

/* A route's handler: reads the request and calls httpd_reply (or
 * httpd_replyf) once. Returning without a reply answers 500. req is valid
 * until the handler returns. */
typedef void (*httpd_handler_fn)(struct httpd_req *req, void *arg);

struct httpd_options {
	const char *name;        /* service name for logs; default "noetl" */
	struct metrics *metrics; /* served on /metrics (borrowed); NULL = empty */
	httpd_ready_fn ready;    /* NULL = always ready */
	void *ready_arg;         /* passed to ready (borrowed) */
	int workers;             /* handler threads; default 4 */
	int queue_max;           /* requests waiting for a worker before 503; default 256 */
	int max_outstanding;     /* requests with a body accepted and not yet answered
	                            (reading their body, queued, running or deferred);
	                            beyond, a request with a body gets 503 with
	                            Retry-After before the body is read; bodiless ones,
	                            like /healthz, neither count nor are refused;
	                            0 = no limit */
	size_t max_body;         /* default body limit of routes; default 1 MiB */
	int body_timeout_ms;     /* a body must arrive within this; default 30000 */
	nng_tls_config *tls;     /* for https:// URLs (borrowed; held by nng) */
};

/* Handler flags. */
#define HTTPD_INLINE 0x1u /* never blocks: run on the nng thread, not a worker */

/*
 * Creates a server for url ("http://127.0.0.1:7423", "http://0.0.0.0:0" for
 * an ephemeral port, "https://..." with opt->tls) with the three standard
 * routes. Nothing listens until httpd_start. opt may be NULL. 0, -EINVAL
 * (bad URL), -ENOMEM, or another -errno from nng.
 *
 * nng shares one HTTP server between all holders of the same host and port
 * in a process; two httpd on the same explicit address therefore clash on
 * their routes (-EADDRINUSE from httpd_start). Use one httpd per address.
 */
int httpd_create(const char *url, const struct httpd_options *opt, struct httpd **out);

/*
 * Adds a route before httpd_start. method: "GET", "POST", ... (HEAD is
 * implied by GET). path: starts with '/'; ending in '/' makes it a prefix.
 * max_body: 0 = the server's default. fn and arg are borrowed until
 * httpd_destroy. -EINVAL for a bad method or path, -EEXIST for a duplicate,
 * -EBUSY after start.
 */
int httpd_add_handler(struct httpd *h, const char *method, const char *path, size_t max_body,
                      unsigned flags, httpd_handler_fn fn, void *arg);

/* Starts the workers and listens. 0 or -errno (-EADDRINUSE: port taken). */
int httpd_start(struct httpd *h);

/* The TCP port listened on (useful after port 0), or -1 before start. */
int httpd_port(const struct httpd *h);

/*
 * Stops listening, closes connections, lets queued requests finish (their
 * handlers run), joins the workers and frees everything. Accepts NULL.
 * Must not be called from a handler.
 */
void httpd_destroy(struct httpd *h);

/* --- inside a handler: the request (strings borrowed for the call) ---- */

const char *httpd_req_method(const struct httpd_req *r); /* "POST" */
/* The path as sent, without the query, not percent-decoded: "/events/a/b". */
const char *httpd_req_path(const struct httpd_req *r);
/* After the route's path: for route "/events/" and path "/events/a/b",
 * "a/b"; "" for exact routes. */
const char *httpd_req_rest(const struct httpd_req *r);
/* The text after '?', "" if none. */
const char *httpd_req_query(const struct httpd_req *r);
/* A request header (name case-insensitive), NULL if absent. */
const char *httpd_req_header(const struct httpd_req *r, const char *name);
/* The body; *len = 0 and a non-NULL pointer when there is none. */
const void *httpd_req_body(const struct httpd_req *r, size_t *len);

/*
 * Deferring: a handler that waits for something (a batched write, say)
 * without blocking its thread calls httpd_defer(r) and returns; the request
 * (method, path, headers, body) stays valid, and the reply is sent when
 * httpd_complete(r) is called, from any thread, after httpd_reply. Every
 * httpd_defer needs exactly one httpd_complete; r must not be touched after
 * it. This lets HTTPD_INLINE handlers wait without holding an nng thread or
 * a worker. httpd_destroy waits for deferred requests to complete.
 */
void httpd_defer(struct httpd_req *r);
void httpd_complete(struct httpd_req *r);

/* --- inside a handler: the reply ---------------------------------------- */

/* Adds a reply header (copied); call before httpd_reply. 0 or -ENOMEM. */
int httpd_reply_header(struct httpd_req *r, const char *name, const char *value);

/*
 * Sets the reply: status, Content-Type (NULL = none, for an empty body) and
 * body (copied; len 0 gives Content-Length: 0). A second call replaces the
 * first. 0 or -ENOMEM (the client then gets 500).
 */
int httpd_reply(struct httpd_req *r, uint16_t status, const char *content_type, const void *body,
                size_t len);

/* Replies with a text/plain body formatted like printf, plus a newline. */
int httpd_replyf(struct httpd_req *r, uint16_t status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
