#include "httpd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"
#include "rpc.h"
#include "util.h"

#define DEFAULT_WORKERS      4
#define DEFAULT_QUEUE_MAX    256
#define DEFAULT_MAX_BODY     (1u << 20)
#define DEFAULT_BODY_TIMEOUT 30000
#define MAX_ROUTES           64

struct route {
	char *method;        /* "GET", "POST", ... */
	char *path;          /* "/healthz", or a prefix ending in '/' */
	size_t path_len;     /* strlen(path) */
	bool prefix;         /* path ends in '/' */
	size_t max_body;     /* bytes */
	unsigned flags;      /* HTTPD_INLINE */
	httpd_handler_fn fn; /* the handler */
	void *arg;           /* its argument (borrowed) */
};

/*
 * An aio for reading bodies, with the request it reads for. Kept on a free
 * list and reused: in nng 1.5.2 allocating an aio costs a getrandom(2), and
 * one cannot be freed in its own callback (where a request often finishes),
 * so freeing it cost a wake-up of nng's reaper thread, per request.
 */
struct rdslot {
	nng_aio *aio;
	struct httpd_req *r; /* the request it reads for, while in use */
	struct rdslot *next; /* in httpd.free_rd */
};

struct httpd {
	char *name;              /* for logs */
	char *url;               /* as given */
	nng_http_server *server; /* held from start to destroy */
	struct route routes[MAX_ROUTES];
	size_t nroutes;
	struct metrics *metrics; /* borrowed */
	struct metric *m_requests;
	struct metric *m_seconds;
	httpd_ready_fn ready;
	void *ready_arg;
	nng_tls_config *tls;
	int nworkers;
	int queue_max;
	int max_outstanding; /* 0 = no limit */
	size_t max_body;
	int body_timeout_ms;
	pthread_t *threads;
	int nthreads; /* started */
	int port;     /* after start */

	pthread_mutex_t mu;     /* guards everything below */
	pthread_cond_t work;    /* a request was queued, or stopping */
	pthread_cond_t idle;    /* outstanding reached 0 */
	struct httpd_req *head; /* queue for the workers */
	struct httpd_req *tail;
	int queued;
	int outstanding; /* requests accepted and not yet finished */
	int bodies;      /* of those, the ones with a body: what max_outstanding bounds */
	bool started;
	bool stopping;
	int refs;               /* the caller's and nng's handler data */
	struct rdslot *free_rd; /* body-read aios not in use */
};

/* One request in flight: ours from on_request until finish. */
struct httpd_req {
	struct httpd *h;
	struct httpd_req *next; /* in the work queue */
	const struct route *route;
	nng_aio *cbaio;      /* nng's: finished with the reply */
	nng_http_req *req;   /* nng's, valid until cbaio finishes */
	nng_http_conn *conn; /* nng's */
	struct rdslot *rd;   /* ours: 100-continue and body reads (rd->aio) */
	bool continue_sent;  /* rd has written "100 Continue" */
	char *uri;           /* our copy, cut into path and query */
	const char *path;
	const char *query;
	const char *method;
	void *body;
	size_t body_len;
	nng_http_res *res; /* the reply, handed to nng at finish */
	bool replied;      /* httpd_reply was called */
	atomic_int holds;  /* the running handler, plus one for httpd_defer */
	int64_t start_us;
	bool with_body; /* counted in httpd.bodies */
};

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void httpd_unref(struct httpd *h)
{
	pthread_mutex_lock(&h->mu);
	int left = --h->refs;
	pthread_mutex_unlock(&h->mu);
	if (left > 0)
		return;
	for (size_t i = 0; i < h->nroutes; i++) {
		free(h->routes[i].method);
		free(h->routes[i].path);
	}
	pthread_cond_destroy(&h->work);
	pthread_cond_destroy(&h->idle);
	pthread_mutex_destroy(&h->mu);
	free(h->threads);
	free(h->name);
	free(h->url);
	free(h);
}

/* nng calls this when it frees our handler, possibly after httpd_destroy
 * returned: that is why the httpd is reference counted. */
static void handler_data_free(void *arg)
{
	httpd_unref(arg);
}

/* --- replies ------------------------------------------------------------- */

int httpd_reply_header(struct httpd_req *r, const char *name, const char *value)
{
	if (r->res == NULL && nng_http_res_alloc(&r->res) != 0)
		return -ENOMEM;
	return nng_http_res_set_header(r->res, name, value) == 0 ? 0 : -ENOMEM;
}

int httpd_reply(struct httpd_req *r, uint16_t status, const char *content_type, const void *body,
                size_t len)
{
	if (r->res == NULL && nng_http_res_alloc(&r->res) != 0)
		return -ENOMEM;
	if (nng_http_res_set_status(r->res, status) != 0)
		return -ENOMEM;
	r->replied = true;
	if (content_type != NULL &&
	    nng_http_res_set_header(r->res, "Content-Type", content_type) != 0)
		return -ENOMEM;
	if (len > 0) {
		if (nng_http_res_copy_data(r->res, body, len) != 0)
			return -ENOMEM;
	} else if (status == 204 || status == 304) {
		/* no body and, by RFC 9110 8.6, no Content-Length */
		nng_http_res_set_data(r->res, NULL, 0);
		nng_http_res_del_header(r->res, "Content-Length");
	} else {
		/* A fresh nng reply has no Content-Length; setting empty data
		 * writes "Content-Length: 0", without which a keep-alive client
		 * cannot tell where the reply ends. Set it explicitly as well. */
		nng_http_res_set_data(r->res, NULL, 0);
		if (nng_http_res_set_header(r->res, "Content-Length", "0") != 0)
			return -ENOMEM;
	}
	return 0;
}

int httpd_replyf(struct httpd_req *r, uint16_t status, const char *fmt, ...)
{
	char *text;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	char *line = realloc(text, (size_t)n + 2);
	if (line == NULL) {
		free(text);
		return -ENOMEM;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	int rv = httpd_reply(r, status, "text/plain; charset=utf-8", line, (size_t)n + 1);
	free(line);
	return rv;
}

/* --- request accessors --------------------------------------------------- */

const char *httpd_req_method(const struct httpd_req *r)
{
	return r->method;
}

const char *httpd_req_path(const struct httpd_req *r)
{
	return r->path;
}

const char *httpd_req_rest(const struct httpd_req *r)
{
	if (r->route == NULL || !r->route->prefix)
		return "";
	return r->path + r->route->path_len;
}

const char *httpd_req_query(const struct httpd_req *r)
{
	return r->query;
}

const char *httpd_req_header(const struct httpd_req *r, const char *name)
{
	return nng_http_req_get_header(r->req, name);
}

const void *httpd_req_body(const struct httpd_req *r, size_t *len)
{
	*len = r->body_len;
	return r->body != NULL ? r->body : "";
}

/* --- request life cycle ---------------------------------------------------- */

static void count(struct httpd *h, const struct httpd_req *r, uint16_t code)
{
	if (h->m_requests == NULL)
		return;
	char codebuf[8];
	snprintf(codebuf, sizeof(codebuf), "%u", code);
	/* The route's path, never the request's: label values stay bounded. */
	const char *route = r->route != NULL ? r->route->path : "none";
	metric_add(h->m_requests, (const char *[]){r->method, route, codebuf}, 1);
	if (r->route != NULL)
		metric_observe(h->m_seconds, (const char *[]){route},
		               (double)(util_mono_us() - r->start_us) / 1e6);
}

/* Hands the reply to nng (or, with err, has nng close the connection) and
 * frees the request. */
static void finish(struct httpd_req *r, int err)
{
	struct httpd *h = r->h;
	if (err == 0 && !r->replied) {
		log_error("http: handler for %s %s gave no reply", r->method, r->path);
		if (httpd_replyf(r, 500, "internal error: the handler gave no reply") != 0)
			err = NNG_ENOMEM;
	}
	if (err == 0) {
		count(h, r, nng_http_res_get_status(r->res));
		nng_aio_set_output(r->cbaio, 0, r->res);
		nng_aio_finish(r->cbaio, 0);
	} else {
		if (r->res != NULL)
			nng_http_res_free(r->res);
		nng_aio_set_output(r->cbaio, 0, NULL);
		nng_aio_finish(r->cbaio, err);
	}
	/* rd may be the aio whose callback we are in: the callback touches
	 * nothing after this, and nng lets the next request start a read on it
	 * at once (nng_aio_free in httpd_destroy waits for the callback). */
	struct rdslot *rd = r->rd;
	bool with_body = r->with_body;
	free(r->body);
	free(r->uri);
	free(r);

	pthread_mutex_lock(&h->mu);
	if (rd != NULL) {
		rd->r = NULL;
		rd->next = h->free_rd;
		h->free_rd = rd;
	}
	if (with_body)
		h->bodies--;
	if (--h->outstanding == 0)
		pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->mu);
}

static void run(struct httpd_req *r)
{
	atomic_store(&r->holds, 1);
	r->route->fn(r, r->route->arg);
	/* A deferred request is finished by httpd_complete, here only if that
	 * came before the handler returned: whoever lets go last finishes. */
	if (atomic_fetch_sub(&r->holds, 1) == 1)
		finish(r, 0);
}

void httpd_defer(struct httpd_req *r)
{
	atomic_fetch_add(&r->holds, 1);
}

void httpd_complete(struct httpd_req *r)
{
	if (atomic_fetch_sub(&r->holds, 1) == 1)
		finish(r, 0);
}

/* Queues r for a worker, runs it here if inline, or sheds it. */
static void dispatch(struct httpd_req *r)
{
	struct httpd *h = r->h;
	if (r->route->flags & HTTPD_INLINE) {
		run(r);
		return;
	}
	pthread_mutex_lock(&h->mu);
	if (h->stopping || h->queued >= h->queue_max) {
		bool stopping = h->stopping;
		pthread_mutex_unlock(&h->mu);
		httpd_reply_header(r, "Retry-After", "1");
		if (stopping)
			httpd_reply_header(r, "Connection", "close");
		httpd_replyf(r, 503, "%s",
		             stopping ? "shutting down" : "overloaded: try again later");
		finish(r, 0);
		return;
	}
	r->next = NULL;
	if (h->tail != NULL)
		h->tail->next = r;
	else
		h->head = r;
	h->tail = r;
	h->queued++;
	pthread_cond_signal(&h->work);
	pthread_mutex_unlock(&h->mu);
}

static void *worker(void *arg)
{
	struct httpd *h = arg;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		while (h->head == NULL && !h->stopping)
			pthread_cond_wait(&h->work, &h->mu);
		struct httpd_req *r = h->head;
		if (r == NULL) {
			/* stopping, and the queue is drained */
			pthread_mutex_unlock(&h->mu);
			return NULL;
		}
		h->head = r->next;
		if (h->head == NULL)
			h->tail = NULL;
		h->queued--;
		pthread_mutex_unlock(&h->mu);
		run(r);
	}
}

static void on_read(void *arg);

/* A body-read aio for r, reused or new; NULL if out of memory. */
static struct rdslot *rd_get(struct httpd *h, struct httpd_req *r)
{
	pthread_mutex_lock(&h->mu);
	struct rdslot *rd = h->free_rd;
	if (rd != NULL)
		h->free_rd = rd->next;
	pthread_mutex_unlock(&h->mu);
	if (rd == NULL) {
		if ((rd = calloc(1, sizeof(*rd))) == NULL)
			return NULL;
		if (nng_aio_alloc(&rd->aio, on_read, rd) != 0) {
			free(rd);
			return NULL;
		}
	}
	rd->r = r;
	return rd;
}

/* rd's callback: "100 Continue" written, or the body read. */
static void on_read(void *arg)
{
	struct rdslot *rd = arg;
	struct httpd_req *r = rd->r;
	int rv = nng_aio_result(rd->aio);
	if (rv != 0) {
		/* client gone or too slow: nothing to answer, close */
		finish(r, rv);
		return;
	}
	if (r->continue_sent) {
		r->continue_sent = false;
		nng_iov iov = {.iov_buf = r->body, .iov_len = r->body_len};
		nng_aio_set_iov(rd->aio, 1, &iov);
		nng_http_conn_read_all(r->conn, rd->aio);
		return;
	}
	dispatch(r);
}

/* Answers from the nng thread without a request object (errors before
 * routing); close when a body was left unread. */
static void quick_reply(struct httpd *h, nng_aio *aio, const char *method, uint16_t code,
                        const char *allow, bool close, const char *fmt, ...)
        __attribute__((format(printf, 7, 8)));

static void quick_reply(struct httpd *h, nng_aio *aio, const char *method, uint16_t code,
                        const char *allow, bool close, const char *fmt, ...)
{
	struct httpd_req tmp = {.h = h, .method = method};
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (allow != NULL)
		httpd_reply_header(&tmp, "Allow", allow);
	if (close)
		httpd_reply_header(&tmp, "Connection", "close");
	if (httpd_replyf(&tmp, code, "%s", msg) != 0) {
		if (tmp.res != NULL)
			nng_http_res_free(tmp.res);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	count(h, &tmp, code);
	nng_aio_set_output(aio, 0, tmp.res);
	nng_aio_finish(aio, 0);
}

static bool path_matches(const struct route *rt, const char *path)
{
	if (rt->prefix)
		return strncmp(path, rt->path, rt->path_len) == 0;
	return strcmp(path, rt->path) == 0;
}

/* The route for method and path; NULL with *allow filled when the path is
 * known but not the method (allow empty when the path is unknown). */
static const struct route *route_find(struct httpd *h, const char *method, const char *path,
                                      char *allow, size_t cap)
{
	size_t longest = 0;
	bool any = false;
	allow[0] = '\0';
	for (size_t i = 0; i < h->nroutes; i++) {
		const struct route *rt = &h->routes[i];
		if (path_matches(rt, path) && (!any || rt->path_len > longest)) {
			longest = rt->path_len;
			any = true;
		}
	}
	if (!any)
		return NULL;
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	for (size_t i = 0; i < h->nroutes; i++) {
		const struct route *rt = &h->routes[i];
		if (rt->path_len != longest || !path_matches(rt, path))
			continue;
		if (strcmp(rt->method, want) == 0)
			return rt;
		size_t n = strlen(allow);
		snprintf(allow + n, cap - n, "%s%s", n > 0 ? ", " : "", rt->method);
		if (strcmp(rt->method, "GET") == 0) {
			n = strlen(allow);
			snprintf(allow + n, cap - n, ", HEAD");
		}
	}
	return NULL;
}

/* nng's callback for every request. */
static void on_request(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *nh = nng_aio_get_input(aio, 1);
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	struct httpd *h = nng_http_handler_get_data(nh);
	const char *method = nng_http_req_get_method(req);
	const char *cl = nng_http_req_get_header(req, "Content-Length");
	const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
	bool has_body = (cl != NULL && strcmp(cl, "0") != 0) || te != NULL;

	struct httpd_req *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->uri = strdup(nng_http_req_get_uri(req))) == NULL) {
		free(r);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	r->h = h;
	r->cbaio = aio;
	r->req = req;
	r->conn = conn;
	r->method = method;
	r->start_us = util_mono_us();
	/* absolute-form "http://host/path" → "/path" */
	char *p = r->uri;
	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		p = strchr(strstr(p, "://") + 3, '/');
		if (p == NULL)
			p = "/";
	}
	char *q = strchr(p, '?');
	r->query = "";
	if (q != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	r->path = p;

	char allow[128];
	r->route = route_find(h, method, r->path, allow, sizeof(allow));
	if (r->route == NULL) {
		bool known = allow[0] != '\0';
		quick_reply(h, aio, method, known ? 405 : 404, known ? allow : NULL, has_body,
		            known ? "method %s not allowed on '%s' (allowed: %s)"
		                  : "no such path: '%s%s%s'",
		            known ? method : r->path, known ? r->path : "", known ? allow : "");
		free(r->uri);
		free(r);
		return;
	}

	uint64_t len = 0;
	if (te != NULL && strcasecmp(te, "identity") != 0) {
		quick_reply(h, aio, method, 411, NULL, true,
		            "send the body with a Content-Length, not Transfer-Encoding '%s'", te);
		goto reject;
	}
	if (cl != NULL) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(cl, &end, 10);
		if (!isdigit((unsigned char)cl[0]) || *end != '\0' || errno == ERANGE) {
			quick_reply(h, aio, method, 400, NULL, true, "bad Content-Length '%s'", cl);
			goto reject;
		}
		len = v;
	}
	if (len > r->route->max_body) {
		quick_reply(h, aio, method, 413, NULL, true,
		            "body of %llu bytes is over the limit of %zu bytes",
		            (unsigned long long)len, r->route->max_body);
		goto reject;
	}

	pthread_mutex_lock(&h->mu);
	bool stopping = h->stopping;
	/* Only requests with a body count against the limit: health checks
	 * and metrics scrapes stay answered, and never crowd out an event. */
	bool full = has_body && h->max_outstanding > 0 && h->bodies >= h->max_outstanding;
	if (!stopping && !full) {
		h->outstanding++;
		if (has_body)
			h->bodies++;
		r->with_body = has_body;
	}
	pthread_mutex_unlock(&h->mu);
	if (full && !stopping) {
		/* Shed before reading the body: what is in flight, bodies
		 * included, stays bounded. */
		struct httpd_req tmp = {.h = h, .method = method};
		httpd_reply_header(&tmp, "Retry-After", "1");
		if (has_body)
			httpd_reply_header(&tmp, "Connection", "close");
		if (httpd_replyf(&tmp, 503, "overloaded: %d requests in progress; retry later",
		                 h->max_outstanding) != 0) {
			if (tmp.res != NULL)
				nng_http_res_free(tmp.res);
			nng_aio_finish(aio, NNG_ENOMEM);
		} else {
			count(h, &tmp, 503);
			nng_aio_set_output(aio, 0, tmp.res);
			nng_aio_finish(aio, 0);
		}
		goto reject;
	}
	if (stopping) {
		nng_aio_finish(aio, NNG_ECLOSED);
		free(r->uri);
		free(r);
		return;
	}
	/* from here on r is counted, and finish() releases it */
	if (len == 0) {
		dispatch(r);
		return;
	}
	r->body_len = (size_t)len;
	if ((r->body = malloc(r->body_len)) == NULL || (r->rd = rd_get(h, r)) == NULL) {
		finish(r, NNG_ENOMEM);
		return;
	}
	nng_aio *rdaio = r->rd->aio;
	nng_aio_set_timeout(rdaio, h->body_timeout_ms);
	const char *expect = nng_http_req_get_header(req, "Expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
		/* curl and others wait for this before sending a large body */
		nng_iov iov = {.iov_buf = (void *)continue_line,
		               .iov_len = sizeof(continue_line) - 1};
		r->continue_sent = true;
		nng_aio_set_iov(rdaio, 1, &iov);
		nng_http_conn_write_all(conn, rdaio);
		return;
	}
	nng_iov iov = {.iov_buf = r->body, .iov_len = r->body_len};
	nng_aio_set_iov(rdaio, 1, &iov);
	nng_http_conn_read_all(conn, rdaio);
	return;
reject:
	free(r->uri);
	free(r);
}

/* --- standard routes -------------------------------------------------------- */

static void h_healthz(struct httpd_req *r, void *arg)
{
	(void)arg;
	httpd_replyf(r, 200, "ok");
}

static void h_readyz(struct httpd_req *r, void *arg)
{
	struct httpd *h = arg;
	char why[256] = "";
	if (h->ready == NULL || h->ready(h->ready_arg, why, sizeof(why))) {
		httpd_replyf(r, 200, "ready");
		return;
	}
	httpd_replyf(r, 503, "not ready: %s", why[0] != '\0' ? why : "no reason given");
}

static void h_metrics(struct httpd_req *r, void *arg)
{
	struct httpd *h = arg;
	char *text = NULL;
	size_t len = 0;
	if (h->metrics != NULL && metrics_render(h->metrics, &text, &len) != 0) {
		httpd_replyf(r, 500, "out of memory rendering metrics");
		return;
	}
	httpd_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* --- public life cycle ------------------------------------------------------- */

static bool valid_method(const char *m)
{
	if (m == NULL || *m == '\0' || strlen(m) > 16 || strcmp(m, "HEAD") == 0)
		return false;
	for (const char *p = m; *p != '\0'; p++) {
		if (*p < 'A' || *p > 'Z')
			return false;
	}
	return true;
}

int httpd_add_handler(struct httpd *h, const char *method, const char *path, size_t max_body,
                      unsigned flags, httpd_handler_fn fn, void *arg)
{
	if (h->started)
		return -EBUSY;
	if (!valid_method(method) || path == NULL || path[0] != '/' || fn == NULL ||
	    strchr(path, '?') != NULL)
		return -EINVAL;
	for (size_t i = 0; i < h->nroutes; i++) {
		if (strcmp(h->routes[i].method, method) == 0 &&
		    strcmp(h->routes[i].path, path) == 0)
			return -EEXIST;
	}
	if (h->nroutes == MAX_ROUTES)
		return -ENOSPC;
	struct route *rt = &h->routes[h->nroutes];
	rt->method = strdup(method);
	rt->path = strdup(path);
	if (rt->method == NULL || rt->path == NULL) {
		free(rt->method);
		free(rt->path);
		return -ENOMEM;
	}
	rt->path_len = strlen(path);
	rt->prefix = path[rt->path_len - 1] == '/';
	rt->max_body = max_body != 0 ? max_body : h->max_body;
	rt->flags = flags;
	rt->fn = fn;
	rt->arg = arg;
	h->nroutes++;
	return 0;
}

int httpd_create(const char *url, const struct httpd_options *opt, struct httpd **out)
{
	struct httpd_options none = {0};
	if (opt == NULL)
		opt = &none;
	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		return -EINVAL;
	nng_url *u;
	if (nng_url_parse(&u, url) != 0)
		return -EINVAL;
	nng_url_free(u);

	struct httpd *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->work, NULL);
	pthread_cond_init(&h->idle, NULL);
	h->refs = 1;
	h->port = -1;
	h->name = strdup(opt->name != NULL ? opt->name : "noetl");
	h->url = strdup(url);
	h->metrics = opt->metrics;
	h->ready = opt->ready;
	h->ready_arg = opt->ready_arg;
	h->tls = opt->tls;
	h->nworkers = opt->workers > 0 ? opt->workers : DEFAULT_WORKERS;
	h->queue_max = opt->queue_max > 0 ? opt->queue_max : DEFAULT_QUEUE_MAX;
	h->max_outstanding = opt->max_outstanding > 0 ? opt->max_outstanding : 0;
	h->max_body = opt->max_body > 0 ? opt->max_body : DEFAULT_MAX_BODY;
	h->body_timeout_ms = opt->body_timeout_ms > 0 ? opt->body_timeout_ms : DEFAULT_BODY_TIMEOUT;
	int rv = -ENOMEM;
	if (h->name == NULL || h->url == NULL)
		goto fail;
	if ((rv = httpd_add_handler(h, "GET", "/healthz", 0, HTTPD_INLINE, h_healthz, h)) != 0 ||
	    (rv = httpd_add_handler(h, "GET", "/readyz", 0, HTTPD_INLINE, h_readyz, h)) != 0 ||
	    (rv = httpd_add_handler(h, "GET", "/metrics", 0, HTTPD_INLINE, h_metrics, h)) != 0)
		goto fail;
	if (h->metrics != NULL) {
		if ((rv = metrics_counter(h->metrics, "noetl_http_requests_total",
		                          "HTTP requests answered, by method, route and status.",
		                          "method,route,code", &h->m_requests)) != 0 ||
		    (rv = metrics_histogram(h->metrics, "noetl_http_request_seconds",
		                            "Time from request to reply, by route.", "route",
		                            metrics_latency_buckets, metrics_latency_buckets_count,
		                            &h->m_seconds)) != 0)
			goto fail;
	}
	*out = h;
	return 0;
fail:
	httpd_unref(h);
	return rv;
}

int httpd_start(struct httpd *h)
{
	nng_url *u = NULL;
	nng_http_handler *nh = NULL;
	int rv;

	if (h->started)
		return -EBUSY;
	if ((rv = nng_url_parse(&u, h->url)) != 0)
		return -EINVAL;
	/* The server is held here, not in httpd_create: nng shares servers by
	 * host and port, and before it listens an ephemeral port is 0 for
	 * every httpd. */
	if ((rv = nng_http_server_hold(&h->server, u)) != 0)
		goto fail;
	if ((rv = nng_http_handler_alloc(&nh, "/", on_request)) != 0 ||
	    (rv = nng_http_handler_set_method(nh, NULL)) != 0 ||
	    (rv = nng_http_handler_set_tree(nh)) != 0 ||
	    (rv = nng_http_handler_collect_body(nh, false, 0)) != 0)
		goto fail;
	pthread_mutex_lock(&h->mu);
	h->refs++;
	pthread_mutex_unlock(&h->mu);
	if ((rv = nng_http_handler_set_data(nh, h, handler_data_free)) != 0) {
		httpd_unref(h);
		goto fail;
	}
	if ((rv = nng_http_server_add_handler(h->server, nh)) != 0)
		goto fail;
	nh = NULL; /* the server owns it now */
	if (h->tls != NULL && (rv = nng_http_server_set_tls(h->server, h->tls)) != 0)
		goto fail;

	h->threads = calloc((size_t)h->nworkers, sizeof(pthread_t));
	if (h->threads == NULL) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	for (; h->nthreads < h->nworkers; h->nthreads++) {
		if (pthread_create(&h->threads[h->nthreads], NULL, worker, h) != 0) {
			rv = NNG_ENOMEM;
			goto fail;
		}
	}
	if ((rv = nng_http_server_start(h->server)) != 0)
		goto fail;
	nng_sockaddr sa;
	if (nng_http_server_get_addr(h->server, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET)
			h->port = ntohs(sa.s_in.sa_port);
		else if (sa.s_family == NNG_AF_INET6)
			h->port = ntohs(sa.s_in6.sa_port);
	}
	h->started = true;
	nng_url_free(u);
	log_info("http: %s listening on %s (port %d)", h->name, h->url, h->port);
	return 0;
fail:
	log_error("http: cannot listen on %s: %s", h->url, nng_strerror(rv));
	if (nh != NULL)
		nng_http_handler_free(nh);
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_cond_broadcast(&h->work);
	pthread_mutex_unlock(&h->mu);
	for (int i = 0; i < h->nthreads; i++)
		pthread_join(h->threads[i], NULL);
	h->nthreads = 0;
	if (h->server != NULL) {
		nng_http_server_release(h->server);
		h->server = NULL;
	}
	nng_url_free(u);
	return rpc_nng_errno(rv);
}

int httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_destroy(struct httpd *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_cond_broadcast(&h->work);
	pthread_mutex_unlock(&h->mu);
	if (h->server != NULL && h->started)
		nng_http_server_stop(h->server);
	/* Workers drain the queue, then exit. */
	for (int i = 0; i < h->nthreads; i++)
		pthread_join(h->threads[i], NULL);
	/* Requests still reading their bodies fail as their connections close;
	 * once none is left no handler can run again. */
	pthread_mutex_lock(&h->mu);
	while (h->outstanding > 0)
		pthread_cond_wait(&h->idle, &h->mu);
	struct rdslot *rd = h->free_rd;
	h->free_rd = NULL;
	pthread_mutex_unlock(&h->mu);
	while (rd != NULL) {
		struct rdslot *next = rd->next;
		nng_aio_free(rd->aio); /* waits for a callback still returning */
		free(rd);
		rd = next;
	}
	if (h->server != NULL)
		nng_http_server_release(h->server);
	/* Our metrics stay in the registry, which may outlive us. */
	httpd_unref(h);
}
