/*
 * rpc: protoc-c services over nng req/rep. See rpc.h for the contract.
 *
 * Server. Each worker thread owns one nng context on the rep socket and runs
 * the loop recv → dispatch → send synchronously. Handlers may block (a synced
 * write, a call to another service) without stalling nng's task threads,
 * which only ever complete our aios. Dispatch is table-free: the request
 * names the service and method as protoc-c's descriptors spell them, the
 * descriptor finds the method index and the message descriptors, and
 * protobuf-c's generic invoke calls the handler with a closure that packs
 * the output into the reply.
 *
 * Client. One req socket with one dialer, shared by every thread; each call
 * opens its own context (cheap in nng) so replies are matched to callers by
 * nng's request ids. Resend is disabled: a lost connection moves the pending
 * request to the next pipe, and a dead server means DEADLINE_EXCEEDED, not a
 * storm of duplicates. A pipe counter kept by pipe notifications lets a call
 * fail fast with UNAVAILABLE when no server is connected at all.
 */
#include "rpc.h"

#include <errno.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const char *const status_names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
};

const char *rpc_status_name(int status)
{
	if (status < 0 || status >= (int)(sizeof(status_names) / sizeof(status_names[0])))
		return "UNKNOWN";
	return status_names[status];
}

bool rpc_status_retryable(int status)
{
	return status == NOETL__STATUS__UNAVAILABLE || status == NOETL__STATUS__DEADLINE_EXCEEDED ||
	       status == NOETL__STATUS__ABORTED || status == NOETL__STATUS__RESOURCE_EXHAUSTED;
}

int rpc_nng_errno(int e)
{
	switch (e) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return -EINVAL;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_ETIMEDOUT:
		return -ETIMEDOUT;
	case NNG_ECONNREFUSED:
		return -ECONNREFUSED;
	case NNG_ECLOSED:
		return -EBADF;
	case NNG_ENOTSUP:
		return -ENOTSUP;
	case NNG_EPERM:
		return -EPERM;
	case NNG_ENOENT:
		return -ENOENT;
	case NNG_EMSGSIZE:
		return -EMSGSIZE;
	default:
		return -EIO;
	}
}

void rpc_nng_close(nng_socket sock)
{
	if (nng_socket_id(sock) <= 0)
		return;
	nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 1);
	nng_close(sock);
}

int rpc_tls_config(const struct rpc_tls *tls, bool server, const char *url, nng_tls_config **out)
{
	nng_tls_config *cfg = NULL;
	int rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (rv != 0)
		goto fail;
	if (tls != NULL && tls->cert_file != NULL) {
		/* nng wants the certificate and key in one file unless given
		 * as PEM text; load both and hand them over as text. */
		rv = nng_tls_config_cert_key_file(cfg, tls->cert_file, NULL);
		if (rv != 0 && tls->key_file != NULL) {
			FILE *cf = fopen(tls->cert_file, "r"), *kf = fopen(tls->key_file, "r");
			char cert[16384] = {0}, key[16384] = {0};
			if (cf != NULL && kf != NULL && fread(cert, 1, sizeof(cert) - 1, cf) > 0 &&
			    fread(key, 1, sizeof(key) - 1, kf) > 0)
				rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
			if (cf != NULL)
				fclose(cf);
			if (kf != NULL)
				fclose(kf);
		}
		if (rv != 0)
			goto fail;
	}
	if (tls != NULL && tls->ca_file != NULL) {
		if ((rv = nng_tls_config_ca_file(cfg, tls->ca_file)) != 0)
			goto fail;
		rv = nng_tls_config_auth_mode(cfg, server ? NNG_TLS_AUTH_MODE_OPTIONAL
		                                          : NNG_TLS_AUTH_MODE_REQUIRED);
	} else {
		rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	}
	if (rv != 0)
		goto fail;
	if (!server && tls != NULL && tls->server_name != NULL)
		rv = nng_tls_config_server_name(cfg, tls->server_name);
	if (rv != 0)
		goto fail;
	*out = cfg;
	return 0;
fail:
	log_error("rpc: tls configuration for '%s' failed: %s", url, nng_strerror(rv));
	if (cfg != NULL)
		nng_tls_config_free(cfg);
	return rpc_nng_errno(rv);
}

static bool is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

/* --- calls ---------------------------------------------------------------- */

/* What a handler sees as `void *call`: the caller's metadata and the reply
 * being built. */
struct rpc_call {
	const Noetl__Metadata *md; /* borrowed from the request envelope */
	int64_t deadline_ms;       /* monotonic */
	size_t max_reply;          /* largest packed output accepted */
	bool done;                 /* the closure ran */
	int status;                /* set by rpc_fail, or by the closure */
	char *message;             /* rpc_fail's message (malloc'ed) */
	uint8_t *body;             /* packed output (malloc'ed) */
	size_t body_len;
};

static const char *md_str(const struct rpc_call *c, int which)
{
	if (c == NULL || c->md == NULL)
		return "";
	const char *s = which == 0   ? c->md->tenant
	                : which == 1 ? c->md->token
	                : which == 2 ? c->md->trace_id
	                             : c->md->caller;
	return s != NULL ? s : "";
}

const char *rpc_tenant(const void *call)
{
	return md_str(call, 0);
}

const char *rpc_token(const void *call)
{
	return md_str(call, 1);
}

const char *rpc_trace_id(const void *call)
{
	return md_str(call, 2);
}

const char *rpc_caller(const void *call)
{
	return md_str(call, 3);
}

int64_t rpc_remaining_ms(const void *call)
{
	const struct rpc_call *c = call;
	int64_t left = c->deadline_ms - util_mono_ms();
	return left > 0 ? left : 0;
}

void rpc_fail(void *call, Noetl__Status status, const char *fmt, ...)
{
	struct rpc_call *c = call;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(c->message);
	c->message = util_xstrdup(buf);
	c->status = status != NOETL__STATUS__OK ? (int)status : NOETL__STATUS__UNKNOWN;
}

/* The closure protobuf-c's invoke hands to handlers. */
static void reply_closure(const ProtobufCMessage *msg, void *data)
{
	struct rpc_call *c = data;
	if (c->done) {
		log_error("rpc: a handler replied twice; the second reply is dropped");
		return;
	}
	c->done = true;
	if (msg == NULL) {
		if (c->status == NOETL__STATUS__OK)
			rpc_fail(c, NOETL__STATUS__INTERNAL, "the handler failed without a status");
		return;
	}
	if (c->status != NOETL__STATUS__OK)
		return; /* rpc_fail then a reply: the failure wins */
	size_t n = protobuf_c_message_get_packed_size(msg);
	if (n > c->max_reply) {
		rpc_fail(c, NOETL__STATUS__RESOURCE_EXHAUSTED,
		         "the reply of %zu bytes is over the %zu-byte message limit; ask for a "
		         "smaller page",
		         n, c->max_reply);
		return;
	}
	c->body = malloc(n > 0 ? n : 1);
	if (c->body == NULL) {
		rpc_fail(c, NOETL__STATUS__RESOURCE_EXHAUSTED, "out of memory packing the reply");
		return;
	}
	c->body_len = protobuf_c_message_pack(msg, c->body);
}

static void call_release(struct rpc_call *c)
{
	free(c->message);
	free(c->body);
}

/* Runs one method of svc on input bytes, filling c. */
static void dispatch(ProtobufCService *svc, const ProtobufCMethodDescriptor *m,
                     const ProtobufCMessage *in, struct rpc_call *c)
{
	unsigned index = (unsigned)(m - svc->descriptor->methods);
	svc->invoke(svc, index, in, reply_closure, c);
	if (!c->done)
		rpc_fail(c, NOETL__STATUS__INTERNAL,
		         "the handler of '%s' returned without replying", m->name);
}

int rpc_invoke_local(ProtobufCService *svc, const char *method, const ProtobufCMessage *in,
                     const Noetl__Metadata *md, ProtobufCMessage **out, char **errmsg)
{
	const ProtobufCMethodDescriptor *m =
	        protobuf_c_service_descriptor_get_method_by_name(svc->descriptor, method);
	if (m == NULL || in->descriptor != m->input) {
		if (errmsg != NULL)
			*errmsg = util_xstrdup(m == NULL ? "unknown method" : "wrong input type");
		return m == NULL ? NOETL__STATUS__UNIMPLEMENTED : NOETL__STATUS__INVALID_ARGUMENT;
	}
	struct rpc_call c = {
	        .md = md,
	        .deadline_ms = util_mono_ms() + RPC_DEFAULT_TIMEOUT_MS,
	        .max_reply = RPC_DEFAULT_MAX_MSG,
	};
	dispatch(svc, m, in, &c);
	int status = c.status;
	if (status == NOETL__STATUS__OK) {
		ProtobufCMessage *r =
		        protobuf_c_message_unpack(m->output, NULL, c.body_len, c.body);
		if (r == NULL) {
			status = NOETL__STATUS__INTERNAL;
			rpc_fail(&c, NOETL__STATUS__INTERNAL, "the reply does not unpack");
		} else {
			*out = r;
		}
	}
	if (status != NOETL__STATUS__OK && errmsg != NULL)
		*errmsg = util_xstrdup(c.message);
	call_release(&c);
	return status;
}

/* --- server --------------------------------------------------------------- */

static size_t transport_limit(size_t max_msg)
{
	return max_msg * 2 + 65536;
}

#define MAX_SERVICES 8

/* A worker: its thread and its receive aio, which destroy cancels. */
struct rpc_worker {
	struct rpc_server *s;
	pthread_t thread;
	nng_aio *rx; /* receives requests; no timeout (see worker) */
	nng_aio *tx; /* sends replies; never cancelled */
};

struct rpc_server {
	nng_socket sock;                          /* rep0 */
	struct rpc_server_options opt;            /* copied; strings borrowed */
	char name[32];                            /* for logs */
	ProtobufCService *services[MAX_SERVICES]; /* registered, borrowed */
	int nservices;
	struct rpc_worker *workers; /* opt.workers of them */
	int nthreads;               /* started */
	nng_listener listeners[8];  /* for TLS configs' lifetime */
	nng_tls_config *tls[8];
	int nlisteners;
	atomic_bool stopping; /* workers leave their loop when set */
};

int rpc_server_create(const struct rpc_server_options *opt, struct rpc_server **out)
{
	struct rpc_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	if (opt != NULL)
		s->opt = *opt;
	if (s->opt.workers <= 0)
		s->opt.workers = 16;
	if (s->opt.max_msg == 0)
		s->opt.max_msg = RPC_DEFAULT_MAX_MSG;
	snprintf(s->name, sizeof(s->name), "%s", s->opt.name != NULL ? s->opt.name : "rpc");
	int rv = nng_rep0_open(&s->sock);
	if (rv != 0) {
		free(s);
		return rpc_nng_errno(rv);
	}
	/* The transport limit is twice the application limit: a request
	 * somewhat over the limit still arrives and gets a RESOURCE_EXHAUSTED
	 * reply that says so, while a far bigger one is cut by nng (which
	 * drops the connection) before it costs more memory. */
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, transport_limit(s->opt.max_msg));
	*out = s;
	return 0;
}

int rpc_server_add(struct rpc_server *s, ProtobufCService *svc)
{
	for (int i = 0; i < s->nservices; i++)
		if (strcmp(s->services[i]->descriptor->name, svc->descriptor->name) == 0)
			return -EEXIST;
	if (s->nservices == MAX_SERVICES)
		return -ENOSPC;
	s->services[s->nservices++] = svc;
	return 0;
}

int rpc_server_listen(struct rpc_server *s, const char *url)
{
	if (s->nlisteners == 8)
		return -ENOSPC;
	nng_listener l;
	int rv = nng_listener_create(&l, s->sock, url);
	if (rv != 0) {
		log_error("%s: cannot listen on '%s': %s", s->name, url, nng_strerror(rv));
		return rpc_nng_errno(rv);
	}
	nng_tls_config *cfg = NULL;
	if (is_tls(url)) {
		int err = rpc_tls_config(&s->opt.tls, true, url, &cfg);
		if (err != 0) {
			nng_listener_close(l);
			return err;
		}
		nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
	}
	nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, transport_limit(s->opt.max_msg));
	if ((rv = nng_listener_start(l, 0)) != 0) {
		log_error("%s: cannot listen on '%s': %s", s->name, url, nng_strerror(rv));
		nng_listener_close(l);
		if (cfg != NULL)
			nng_tls_config_free(cfg);
		return rpc_nng_errno(rv);
	}
	s->listeners[s->nlisteners] = l;
	s->tls[s->nlisteners++] = cfg;
	log_debug("%s: listening on %s", s->name, url);
	return 0;
}

/* Builds the reply envelope for c into a new message. */
static nng_msg *reply_msg(const struct rpc_call *c)
{
	Noetl__Reply r = NOETL__REPLY__INIT;
	r.status = (Noetl__Status)c->status;
	r.message = c->message != NULL ? c->message : (char *)"";
	if (c->status == NOETL__STATUS__OK) {
		r.body.data = c->body;
		r.body.len = c->body_len;
	}
	size_t n = noetl__reply__get_packed_size(&r);
	nng_msg *msg;
	if (nng_msg_alloc(&msg, n) != 0)
		return NULL;
	noetl__reply__pack(&r, nng_msg_body(msg));
	return msg;
}

/* Handles one request message, returning the reply message. */
static nng_msg *handle(struct rpc_server *s, nng_msg *req)
{
	struct rpc_call c = {.max_reply = s->opt.max_msg};
	Noetl__Request *env = NULL;
	ProtobufCMessage *in = NULL;
	size_t len = nng_msg_len(req);

	if (len > s->opt.max_msg) {
		rpc_fail(&c, NOETL__STATUS__RESOURCE_EXHAUSTED,
		         "the request of %zu bytes is over the %zu-byte message limit", len,
		         s->opt.max_msg);
		goto reply;
	}
	env = noetl__request__unpack(NULL, len, nng_msg_body(req));
	if (env == NULL) {
		rpc_fail(&c, NOETL__STATUS__INVALID_ARGUMENT,
		         "the request envelope does not decode (%zu bytes)", len);
		goto reply;
	}
	ProtobufCService *svc = NULL;
	for (int i = 0; i < s->nservices; i++)
		if (strcmp(s->services[i]->descriptor->name, env->service) == 0)
			svc = s->services[i];
	if (svc == NULL) {
		rpc_fail(&c, NOETL__STATUS__UNIMPLEMENTED, "no service '%s' here", env->service);
		goto reply;
	}
	const ProtobufCMethodDescriptor *m =
	        protobuf_c_service_descriptor_get_method_by_name(svc->descriptor, env->method);
	if (m == NULL) {
		rpc_fail(&c, NOETL__STATUS__UNIMPLEMENTED, "service '%s' has no method '%s'",
		         env->service, env->method);
		goto reply;
	}
	in = protobuf_c_message_unpack(m->input, NULL, env->body.len, env->body.data);
	if (in == NULL) {
		rpc_fail(&c, NOETL__STATUS__INVALID_ARGUMENT,
		         "the input of '%s.%s' does not decode as '%s'", env->service, env->method,
		         m->input->name);
		goto reply;
	}
	c.md = env->metadata;
	c.deadline_ms = util_mono_ms() +
	                (env->timeout_ms > 0 ? (int64_t)env->timeout_ms : RPC_DEFAULT_TIMEOUT_MS);
	dispatch(svc, m, in, &c);
reply:;
	nng_msg *rep = reply_msg(&c);
	if (in != NULL)
		protobuf_c_message_free_unpacked(in, NULL);
	if (env != NULL)
		noetl__request__free_unpacked(env, NULL);
	call_release(&c);
	return rep;
}

/*
 * Receives with no timeout: an idle worker sleeps until a request comes or
 * destroy cancels its receive. (Waking every 200 ms to look for a stop cost
 * each server 80 wake-ups a second of 16 workers, nng's expire thread a
 * wake-up each, and kept nng's expire list busy under load.) Replies go out
 * on a second aio that destroy never cancels, so a handler still running at
 * destroy can always send its reply; the socket is closed only after every
 * worker has left.
 */
static void *worker(void *arg)
{
	struct rpc_worker *w = arg;
	struct rpc_server *s = w->s;
	nng_ctx ctx;
	if (nng_ctx_open(&ctx, s->sock) != 0)
		return NULL;
	while (!atomic_load(&s->stopping)) {
		nng_ctx_recv(ctx, w->rx);
		nng_aio_wait(w->rx);
		int rv = nng_aio_result(w->rx);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue; /* cancelled (destroy), or a failed receive */
		nng_msg *req = nng_aio_get_msg(w->rx);
		nng_msg *rep = handle(s, req);
		nng_msg_free(req);
		if (rep == NULL)
			continue; /* out of memory: the client will time out */
		nng_aio_set_msg(w->tx, rep);
		nng_ctx_send(ctx, w->tx);
		nng_aio_wait(w->tx);
		rv = nng_aio_result(w->tx);
		if (rv != 0) {
			nng_msg_free(rep);
			if (rv == NNG_ECLOSED)
				break;
		}
	}
	nng_ctx_close(ctx);
	return NULL;
}

int rpc_server_start(struct rpc_server *s)
{
	s->workers = calloc((size_t)s->opt.workers, sizeof(*s->workers));
	if (s->workers == NULL)
		return -ENOMEM;
	for (int i = 0; i < s->opt.workers; i++) {
		struct rpc_worker *w = &s->workers[i];
		w->s = s;
		if (nng_aio_alloc(&w->rx, NULL, NULL) != 0 ||
		    nng_aio_alloc(&w->tx, NULL, NULL) != 0)
			return -ENOMEM;
		int rv = pthread_create(&w->thread, NULL, worker, w);
		if (rv != 0)
			return -rv;
		s->nthreads++;
	}
	return 0;
}

void rpc_server_destroy(struct rpc_server *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stopping, true);
	/* A worker that checked stopping just before it was set may start its
	 * receive after the cancel: cancel again until it has left. */
	for (int i = 0; i < s->nthreads; i++) {
		struct rpc_worker *w = &s->workers[i];
		nng_aio_cancel(w->rx);
		while (pthread_tryjoin_np(w->thread, NULL) == EBUSY) {
			util_sleep_ms(1);
			nng_aio_cancel(w->rx);
		}
	}
	rpc_nng_close(s->sock);
	for (int i = 0; s->workers != NULL && i < s->opt.workers; i++) {
		if (s->workers[i].rx != NULL)
			nng_aio_free(s->workers[i].rx);
		if (s->workers[i].tx != NULL)
			nng_aio_free(s->workers[i].tx);
	}
	free(s->workers);
	for (int i = 0; i < s->nlisteners; i++)
		if (s->tls[i] != NULL)
			nng_tls_config_free(s->tls[i]);
	free(s);
}

/* --- client --------------------------------------------------------------- */

struct rpc_client {
	nng_socket sock;     /* req0 */
	nng_dialer dialer;   /* the one dialer */
	nng_tls_config *tls; /* for tls+tcp */
	struct rpc_client_options opt;
	char *url;
	char *caller;
	pthread_mutex_t mu; /* protects pipes */
	pthread_cond_t cv;  /* signalled when a pipe is added */
	int pipes;          /* connected pipes */
	/* Idle contexts with their aio, reused by later calls: opening a
	 * context takes the socket's lock, so a busy client keeps a few. */
	struct slot {
		nng_ctx ctx;
		nng_aio *aio;
	} idle[64];
	atomic_int connected; /* copy of pipes, read without the lock */
	int nidle;            /* protected by mu */
};

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	struct rpc_client *c = arg;
	pthread_mutex_lock(&c->mu);
	if (ev == NNG_PIPE_EV_ADD_POST)
		c->pipes++;
	else if (ev == NNG_PIPE_EV_REM_POST && c->pipes > 0)
		c->pipes--;
	atomic_store_explicit(&c->connected, c->pipes, memory_order_release);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int rpc_client_create(const char *url, const struct rpc_client_options *opt,
                      struct rpc_client **out)
{
	struct rpc_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	if (opt != NULL)
		c->opt = *opt;
	if (c->opt.max_msg == 0)
		c->opt.max_msg = RPC_DEFAULT_MAX_MSG;
	if (c->opt.connect_wait_ms <= 0)
		c->opt.connect_wait_ms = 1000;
	c->url = util_xstrdup(url);
	c->caller = util_xstrdup(c->opt.caller != NULL ? c->opt.caller : "");
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	int rv = nng_req0_open(&c->sock);
	if (rv != 0)
		goto fail;
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, c->opt.max_msg + 4096);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c);
	if ((rv = nng_dialer_create(&c->dialer, c->sock, url)) != 0)
		goto fail;
	if (is_tls(url)) {
		int err = rpc_tls_config(&c->opt.tls, false, url, &c->tls);
		if (err != 0) {
			rpc_client_destroy(c);
			return err;
		}
		nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG, c->tls);
	}
	nng_dialer_set_size(c->dialer, NNG_OPT_RECVMAXSZ, c->opt.max_msg + 4096);
	if ((rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK)) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	log_error("rpc: cannot dial '%s': %s", url, nng_strerror(rv));
	rpc_client_destroy(c);
	return rpc_nng_errno(rv);
}

void rpc_client_destroy(struct rpc_client *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < c->nidle; i++) {
		nng_aio_free(c->idle[i].aio);
		nng_ctx_close(c->idle[i].ctx);
	}
	rpc_nng_close(c->sock);
	/* nng tears pipes down asynchronously and calls pipe_event for each
	 * one: wait until they are all gone, so that no callback touches the
	 * client after it is freed (and nng has released them by exit). */
	pthread_mutex_lock(&c->mu);
	int64_t until = util_mono_ms() + 2000;
	while (c->pipes > 0 && util_mono_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	pthread_mutex_unlock(&c->mu);
	if (c->tls != NULL)
		nng_tls_config_free(c->tls);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->url);
	free(c->caller);
	free(c);
}

const char *rpc_client_url(const struct rpc_client *c)
{
	return c->url;
}

static int call_fail(char **errmsg, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int call_fail(char **errmsg, int status, const char *fmt, ...)
{
	if (errmsg != NULL) {
		char buf[1024];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		*errmsg = util_xstrdup(buf);
	}
	return status;
}

/* Waits until a pipe is connected or wait_ms passed; true if connected. */
static bool wait_connected(struct rpc_client *c, int64_t wait_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (atomic_load_explicit(&c->connected, memory_order_acquire) > 0)
		return true; /* the common case: no lock */
	pthread_mutex_lock(&c->mu);
	while (c->pipes == 0) {
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
			break;
	}
	bool ok = c->pipes > 0;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

/* Takes an idle context, or opens one. 0 or an nng error. */
static int slot_get(struct rpc_client *c, struct slot *out)
{
	pthread_mutex_lock(&c->mu);
	if (c->nidle > 0) {
		*out = c->idle[--c->nidle];
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	pthread_mutex_unlock(&c->mu);
	int rv = nng_ctx_open(&out->ctx, c->sock);
	if (rv != 0)
		return rv;
	if ((rv = nng_aio_alloc(&out->aio, NULL, NULL)) != 0)
		nng_ctx_close(out->ctx);
	return rv;
}

/* Returns a context after a completed exchange, or closes it if the pool is
 * full or the exchange failed (a failed context may hold a stale request). */
static void slot_put(struct rpc_client *c, struct slot *sl, bool reuse)
{
	pthread_mutex_lock(&c->mu);
	if (reuse && c->nidle < (int)(sizeof(c->idle) / sizeof(c->idle[0]))) {
		c->idle[c->nidle++] = *sl;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);
	nng_aio_free(sl->aio);
	nng_ctx_close(sl->ctx);
}

/* Sends req on a context and waits for the answer until deadline. */
static int exchange(struct rpc_client *c, nng_msg *req, int64_t deadline, nng_msg **rep,
                    char **errmsg, const char *what)
{
	struct slot sl;
	int rv = slot_get(c, &sl);
	if (rv != 0) {
		nng_msg_free(req);
		return call_fail(errmsg,
		                 rv == NNG_ECLOSED ? NOETL__STATUS__CANCELLED
		                                   : NOETL__STATUS__RESOURCE_EXHAUSTED,
		                 "%s: %s", what, nng_strerror(rv));
	}
	nng_aio *aio = sl.aio;
	int status = NOETL__STATUS__OK;
	int64_t left = deadline - util_mono_ms();
	nng_aio_set_timeout(aio, left > 0 ? (nng_duration)left : 1);
	nng_aio_set_msg(aio, req);
	nng_ctx_send(sl.ctx, aio);
	nng_aio_wait(aio);
	rv = nng_aio_result(aio);
	if (rv == 0) {
		left = deadline - util_mono_ms();
		nng_aio_set_timeout(aio, left > 0 ? (nng_duration)left : 1);
		nng_ctx_recv(sl.ctx, aio);
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
		if (rv == 0)
			*rep = nng_aio_get_msg(aio);
	} else {
		nng_msg_free(req);
	}
	if (rv == NNG_ETIMEDOUT)
		status = call_fail(errmsg, NOETL__STATUS__DEADLINE_EXCEEDED,
		                   "%s: no reply from %s before the deadline", what, c->url);
	else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		status = call_fail(errmsg, NOETL__STATUS__CANCELLED, "%s: the client was closed",
		                   what);
	else if (rv != 0)
		status = call_fail(errmsg, NOETL__STATUS__UNAVAILABLE, "%s: %s: %s", what, c->url,
		                   nng_strerror(rv));
	slot_put(c, &sl, rv == 0);
	return status;
}

static uint64_t trace_prefix;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

static void trace_init(void)
{
	trace_prefix = util_random_below(UINT64_MAX);
}

/* A trace id unique within the process and very likely across processes:
 * a random per-process prefix and a counter, without a system call per
 * call. */
static void new_trace_id(char *out, size_t cap)
{
	static atomic_ullong counter;
	pthread_once(&trace_once, trace_init);
	snprintf(out, cap, "%016llx%08llx", (unsigned long long)trace_prefix,
	         (unsigned long long)atomic_fetch_add(&counter, 1));
}

int rpc_call(struct rpc_client *c, const ProtobufCServiceDescriptor *svc, const char *method,
             const ProtobufCMessage *in, const struct rpc_call_options *o, ProtobufCMessage **out,
             char **errmsg)
{
	struct rpc_call_options opts = {0};
	if (o != NULL)
		opts = *o;
	if (opts.timeout_ms <= 0)
		opts.timeout_ms = RPC_DEFAULT_TIMEOUT_MS;
	int64_t deadline = util_mono_ms() + opts.timeout_ms;
	char what[160];
	snprintf(what, sizeof(what), "%s.%s", svc->name, method);

	const ProtobufCMethodDescriptor *m =
	        protobuf_c_service_descriptor_get_method_by_name(svc, method);
	if (m == NULL)
		return call_fail(errmsg, NOETL__STATUS__UNIMPLEMENTED, "'%s' has no method '%s'",
		                 svc->name, method);
	if (in->descriptor != m->input)
		return call_fail(errmsg, NOETL__STATUS__INVALID_ARGUMENT, "%s takes '%s', not '%s'",
		                 what, m->input->name, in->descriptor->name);

	char trace[40];
	if (opts.trace_id == NULL) {
		new_trace_id(trace, sizeof(trace));
		opts.trace_id = trace;
	}
	Noetl__Metadata md = NOETL__METADATA__INIT;
	md.tenant = (char *)(opts.tenant != NULL ? opts.tenant : "");
	md.token = (char *)(opts.token != NULL ? opts.token : "");
	md.trace_id = (char *)opts.trace_id;
	md.caller = c->caller;
	Noetl__Request env = NOETL__REQUEST__INIT;
	env.service = (char *)svc->name;
	env.method = (char *)method;
	env.timeout_ms = (uint32_t)opts.timeout_ms;
	env.metadata = &md;

	size_t body_len = protobuf_c_message_get_packed_size(in);
	if (body_len > c->opt.max_msg)
		return call_fail(errmsg, NOETL__STATUS__RESOURCE_EXHAUSTED,
		                 "%s: the request of %zu bytes is over the %zu-byte message limit",
		                 what, body_len, c->opt.max_msg);
	uint8_t stackbuf[4096];
	uint8_t *body = body_len <= sizeof(stackbuf) ? stackbuf : malloc(body_len);
	if (body == NULL)
		return call_fail(errmsg, NOETL__STATUS__RESOURCE_EXHAUSTED, "%s: out of memory",
		                 what);
	protobuf_c_message_pack(in, body);
	env.body.data = body;
	env.body.len = body_len;
	nng_msg *req;
	size_t env_len = noetl__request__get_packed_size(&env);
	if (nng_msg_alloc(&req, env_len) != 0) {
		if (body != stackbuf)
			free(body);
		return call_fail(errmsg, NOETL__STATUS__RESOURCE_EXHAUSTED, "%s: out of memory",
		                 what);
	}
	noetl__request__pack(&env, nng_msg_body(req));
	if (body != stackbuf)
		free(body);

	int64_t wait = deadline - util_mono_ms();
	if (wait > c->opt.connect_wait_ms)
		wait = c->opt.connect_wait_ms;
	if (!wait_connected(c, wait)) {
		nng_msg_free(req);
		return call_fail(errmsg, NOETL__STATUS__UNAVAILABLE,
		                 "%s: cannot reach %s (is the service running?)", what, c->url);
	}

	nng_msg *rep = NULL;
	int status = exchange(c, req, deadline, &rep, errmsg, what);
	if (status != NOETL__STATUS__OK)
		return status;
	Noetl__Reply *r = noetl__reply__unpack(NULL, nng_msg_len(rep), nng_msg_body(rep));
	nng_msg_free(rep);
	if (r == NULL)
		return call_fail(errmsg, NOETL__STATUS__INTERNAL, "%s: the reply does not decode",
		                 what);
	status = (int)r->status;
	if (status != NOETL__STATUS__OK) {
		if (errmsg != NULL)
			*errmsg = util_xstrdup(r->message != NULL && r->message[0] != '\0'
			                               ? r->message
			                               : rpc_status_name(status));
		noetl__reply__free_unpacked(r, NULL);
		return status;
	}
	ProtobufCMessage *msg =
	        protobuf_c_message_unpack(m->output, NULL, r->body.len, r->body.data);
	noetl__reply__free_unpacked(r, NULL);
	if (msg == NULL)
		return call_fail(errmsg, NOETL__STATUS__INTERNAL,
		                 "%s: the reply body does not decode as '%s'", what,
		                 m->output->name);
	*out = msg;
	return NOETL__STATUS__OK;
}
