/*
 * listener: wiring. It builds the clients of the four services, the caches
 * (defs.c, schemas.c), the enqueue batcher, the timeline reporter and the
 * HTTP server, and keeps the definition cache in sync with Control:
 *
 *   GetSnapshot (retried with backoff until Control answers) gives every
 *   tenant, package, token hash and secret at revision R; the Control
 *   stream is then followed from R, so no change between the two is lost.
 *
 * The schema cache follows the Repository's stream the same way (from the
 * Repository's head, before loading anything). Until the snapshot is in,
 * event requests get 503 and /readyz says why; afterwards a Control outage
 * only stops changes from arriving.
 *
 * HTTP: the routes are HTTPD_INLINE: the handler runs on the nng thread that
 * read the request, hands it to service.c and defers the reply
 * (httpd_defer), which the batcher's sender completes once the Queue
 * answered. No thread waits per request, so the number of requests that
 * wait together, and are enqueued together, is bounded only by
 * max_inflight.
 */
#include "listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "httpd.h"
#include "listener_int.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "util.h"

/* --- Control sync ---------------------------------------------------------- */

static void prefetch_package(struct listener *l, const Noetl__Package *p)
{
	if (p == NULL || p->tenant == NULL)
		return;
	for (size_t i = 0; i < p->n_jobs; i++) {
		const Noetl__EventDef *ev = p->jobs[i] != NULL ? p->jobs[i]->event : NULL;
		if (ev != NULL && ev->data_type == NOETL__DATA_TYPE__DATA_JSON &&
		    ev->schema != NULL && ev->schema->schema_ref != NULL &&
		    ev->schema->schema_ref[0] != '\0')
			listener_schemas_prefetch(l->schemas, p->tenant, ev->schema->schema_ref);
	}
}

static int on_control_change(void *arg, const Noetl__Change *chg)
{
	struct listener *l = arg;
	Noetl__DefinitionChange *dc =
	        noetl__definition_change__unpack(NULL, chg->body.len, chg->body.data);
	if (dc == NULL) {
		log_warn("listener: control change %llu does not decode; skipped",
		         (unsigned long long)chg->revision);
		return 0;
	}
	int rv = listener_defs_apply(l->defs, chg->revision, dc);
	if (rv == 0 && dc->kind == NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED)
		prefetch_package(l, dc->package);
	if (rv == 0 && dc->kind == NOETL__DEFINITION_CHANGE__KIND__TENANT_REMOVED &&
	    dc->tenant != NULL)
		listener_schemas_forget_tenant(l->schemas, dc->tenant);
	noetl__definition_change__free_unpacked(dc, NULL);
	return rv;
}

/* Waits ms or until stop; true if stopping. */
static bool pause_or_stop(struct listener *l, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&l->mu);
	if (!l->stop)
		pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	bool stop = l->stop;
	pthread_mutex_unlock(&l->mu);
	return stop;
}

static void *sync_main(void *arg)
{
	struct listener *l = arg;
	int backoff = 250;
	unsigned failures = 0;
	for (;;) {
		pthread_mutex_lock(&l->mu);
		bool stop = l->stop;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			return NULL;
		Noetl__Empty in = NOETL__EMPTY__INIT;
		struct rpc_call_options o = {.timeout_ms = l->call_timeout_ms, .token = l->token};
		ProtobufCMessage *out = NULL;
		char *err = NULL;
		int st = rpc_call(l->control, &noetl__control__descriptor, "GetSnapshot", &in.base,
		                  &o, &out, &err);
		if (st == NOETL__STATUS__OK) {
			Noetl__Snapshot *snap = (Noetl__Snapshot *)out;
			int rv = listener_defs_load_snapshot(l->defs, snap);
			uint64_t rev = snap->revision;
			if (rv == 0)
				for (size_t i = 0; i < snap->n_packages; i++)
					prefetch_package(l, snap->packages[i]);
			protobuf_c_message_free_unpacked(out, NULL);
			if (rv == 0) {
				struct stream_sub_options so = {
				        .since = rev,
				        .token = l->token,
				        .tls = l->tls,
				        .name = "listener: control stream",
				};
				struct stream_sub *sub = NULL;
				rv = stream_sub_create(l->control, &noetl__control__descriptor,
				                       l->control_stream_url, &so,
				                       on_control_change, l, &sub);
				if (rv == 0) {
					pthread_mutex_lock(&l->mu);
					l->control_sub = sub;
					pthread_mutex_unlock(&l->mu);
					size_t t, e, k;
					listener_defs_counts(l->defs, &t, &e, &k);
					log_info("listener: definitions loaded at control revision "
					         "%llu: "
					         "%zu tenants, %zu events, %zu tokens",
					         (unsigned long long)rev, t, e, k);
					return NULL;
				}
			}
			log_error("listener: cannot apply the control snapshot (%d); retrying", rv);
		} else {
			if ((failures & (failures - 1)) == 0)
				log_warn("listener: control '%s' cannot be reached (%s); event "
				         "requests "
				         "are answered 503 until it is",
				         rpc_client_url(l->control),
				         err != NULL ? err : rpc_status_name(st));
			free(err);
		}
		failures++;
		if (pause_or_stop(l, backoff))
			return NULL;
		backoff = backoff < 5000 ? backoff * 2 : 5000;
	}
}

/* --- readiness and revisions ------------------------------------------------- */

bool listener_ready(struct listener *l, char *why, size_t cap)
{
	if (!listener_defs_loaded(l->defs)) {
		snprintf(why, cap, "definitions not loaded from control '%s' yet",
		         rpc_client_url(l->control));
		return false;
	}
	if (!listener_schemas_subscribed(l->schemas)) {
		snprintf(why, cap, "not subscribed to the repository '%s' yet",
		         rpc_client_url(l->repository));
		return false;
	}
	return true;
}

static bool ready_cb(void *arg, char *why, size_t cap)
{
	return listener_ready(arg, why, cap);
}

uint64_t listener_control_revision(struct listener *l)
{
	return listener_defs_revision(l->defs);
}

uint64_t listener_repository_revision(struct listener *l)
{
	return listener_schemas_revision(l->schemas);
}

bool listener_wait_synced(struct listener *l, uint64_t control_rev, uint64_t repository_rev,
                          int timeout_ms)
{
	int64_t end = util_mono_ms() + timeout_ms;
	while (!(listener_defs_loaded(l->defs) && listener_defs_revision(l->defs) >= control_rev)) {
		if (util_mono_ms() >= end)
			return false;
		util_sleep_ms(5);
	}
	if (repository_rev == 0)
		return true;
	int64_t left = end - util_mono_ms();
	return listener_schemas_wait_revision(l->schemas, repository_rev, left > 0 ? (int)left : 0);
}

int listener_http_port(struct listener *l)
{
	return httpd_port(l->httpd);
}

/* --- HTTP glue ------------------------------------------------------------------ */

/* One request between httpd and the pipeline: the decoded request must stay
 * valid until the reply, which may come from another thread. */
struct http_call {
	struct listener_service_request in;
	struct httpd_req *r;
};

static void http_done(void *arg, const struct listener_service_reply *rep)
{
	struct http_call *c = arg;
	struct httpd_req *r = c->r;
	char buf[24];
	if (rep->retry_after > 0) {
		snprintf(buf, sizeof(buf), "%d", rep->retry_after);
		httpd_reply_header(r, "Retry-After", buf);
	}
	if (rep->www_authenticate != NULL)
		httpd_reply_header(r, "WWW-Authenticate", rep->www_authenticate);
	if (rep->trace_id != NULL)
		httpd_reply_header(r, "X-Trace-Id", rep->trace_id);
	httpd_reply(r, (uint16_t)rep->status, rep->content_type, rep->body, rep->len);
	free(c);
	httpd_complete(r);
}

/* Runs on the nng thread that read the request (HTTPD_INLINE): the
 * pipeline never blocks; what waits (the Queue, a schema load, a Record
 * call) completes the deferred request from its own thread. */
static void h_ingest(struct httpd_req *r, void *arg)
{
	struct listener *l = arg;
	struct http_call *c = malloc(sizeof(*c));
	if (c == NULL) {
		httpd_reply_header(r, "Retry-After", "1");
		httpd_replyf(r, 503, "out of memory; retry later");
		return;
	}
	size_t len = 0;
	const void *body = httpd_req_body(r, &len);
	c->r = r;
	c->in = (struct listener_service_request){
	        .method = httpd_req_method(r),
	        .path = httpd_req_path(r),
	        .content_type = httpd_req_header(r, "Content-Type"),
	        .authorization = httpd_req_header(r, "Authorization"),
	        .idempotency_key = httpd_req_header(r, "Idempotency-Key"),
	        .signature = httpd_req_header(r, "X-Noetl-Signature"),
	        .request_id = httpd_req_header(r, "X-Request-Id"),
	        .body = body,
	        .body_len = len,
	};
	httpd_defer(r);
	listener_service_handle(l, &c->in, http_done, c);
}

/* --- metrics --------------------------------------------------------------------- */

static void m_inflight(struct metrics_emitter *e, void *arg)
{
	struct listener *l = arg;
	metrics_emit(e, NULL, (double)atomic_load(&l->inflight));
}

static void m_definitions(struct metrics_emitter *e, void *arg)
{
	struct listener *l = arg;
	size_t t, ev, k;
	listener_defs_counts(l->defs, &t, &ev, &k);
	metrics_emit(e, (const char *[]){"tenants"}, (double)t);
	metrics_emit(e, (const char *[]){"events"}, (double)ev);
	metrics_emit(e, (const char *[]){"tokens"}, (double)k);
}

static void m_revisions(struct metrics_emitter *e, void *arg)
{
	struct listener *l = arg;
	metrics_emit(e, (const char *[]){"control"}, (double)listener_defs_revision(l->defs));
	metrics_emit(e, (const char *[]){"repository"},
	             (double)listener_schemas_revision(l->schemas));
}

static void m_enqueue(struct metrics_emitter *e, void *arg)
{
	struct listener *l = arg;
	struct listener_batcher_stats s;
	listener_batcher_stats(l->batcher, &s);
	metrics_emit(e, (const char *[]){"calls"}, (double)s.calls);
	metrics_emit(e, (const char *[]){"items"}, (double)s.items);
	metrics_emit(e, (const char *[]){"failed_calls"}, (double)s.failures);
	metrics_emit(e, (const char *[]){"refused_requests"}, (double)s.refused);
}

static void m_pending(struct metrics_emitter *e, void *arg)
{
	struct listener *l = arg;
	struct listener_batcher_stats s;
	listener_batcher_stats(l->batcher, &s);
	metrics_emit(e, NULL, (double)s.pending);
}

static void m_timeline(struct metrics_emitter *e, void *arg)
{
	struct listener *l = arg;
	struct listener_reporter_stats s = {0};
	if (l->reporter != NULL)
		listener_reporter_stats(l->reporter, &s);
	metrics_emit(e, (const char *[]){"sent"}, (double)s.sent);
	metrics_emit(e, (const char *[]){"dropped"}, (double)s.dropped);
}

static void m_schemas(struct metrics_emitter *e, void *arg)
{
	struct listener *l = arg;
	struct listener_schemas_stats s;
	listener_schemas_stats(l->schemas, &s);
	metrics_emit(e, (const char *[]){"loads"}, (double)s.loads);
	metrics_emit(e, (const char *[]){"load_errors"}, (double)s.load_errors);
	metrics_emit(e, (const char *[]){"invalidations"}, (double)s.invalidations);
}

static const struct {
	const char *name;
	const char *help;
	const char *labels;
	enum metrics_kind kind;
	metrics_fn fn;
} callbacks[] = {
        {"noetl_listener_inflight_requests", "Requests being processed.", NULL, METRICS_GAUGE,
         m_inflight},
        {"noetl_listener_definitions", "Cached definitions, by kind.", "kind", METRICS_GAUGE,
         m_definitions},
        {"noetl_listener_revision", "Revision of each source the caches applied.", "source",
         METRICS_GAUGE, m_revisions},
        {"noetl_listener_enqueue_total",
         "Enqueue calls, items sent, failed calls, refused "
         "requests.",
         "what", METRICS_COUNTER, m_enqueue},
        {"noetl_listener_enqueue_pending_items", "Items waiting for an Enqueue call.", NULL,
         METRICS_GAUGE, m_pending},
        {"noetl_listener_timeline_entries_total",
         "Timeline entries sent to the recorder or dropped (best effort).", "outcome",
         METRICS_COUNTER, m_timeline},
        {"noetl_listener_schema_total", "Schema loads, failed loads and invalidations.", "what",
         METRICS_COUNTER, m_schemas},
};

static int register_metrics(struct listener *l)
{
	int rv;
	if ((rv = metrics_counter(l->metrics, "noetl_listener_events_total",
	                          "Events by outcome: accepted, duplicate, invalid, failed, shed.",
	                          "outcome", &l->m_events)) != 0 ||
	    (rv = metrics_counter(l->metrics, "noetl_listener_requests_total",
	                          "Ingest requests by route and HTTP status.", "route,code",
	                          &l->m_requests)) != 0 ||
	    (rv = metrics_histogram(l->metrics, "noetl_listener_enqueue_seconds",
	                            "Time of each Enqueue call to the Queue.", NULL,
	                            metrics_latency_buckets, metrics_latency_buckets_count,
	                            &l->m_enqueue)) != 0)
		return rv;
	return 0;
}

static int register_callbacks(struct listener *l)
{
	for (size_t i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++) {
		int rv = metrics_callback(l->metrics, callbacks[i].name, callbacks[i].help,
		                          callbacks[i].labels, callbacks[i].kind, callbacks[i].fn,
		                          l);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static void unregister_metrics(struct listener *l)
{
	for (size_t i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++)
		metrics_unregister(l->metrics, callbacks[i].name);
}

/* --- life cycle ------------------------------------------------------------------- */

static int client(const char *url, const struct listener_config *cfg, const char *what,
                  struct rpc_client **out)
{
	struct rpc_client_options o = {.caller = "noetl-listener"};
	if (cfg->tls != NULL)
		o.tls = *cfg->tls;
	int rv = rpc_client_create(url, &o, out);
	if (rv != 0)
		log_error("listener: bad %s URL '%s'", what, url);
	return rv;
}

int listener_create(const struct listener_config *cfg, struct listener **out)
{
	const char *need[][2] = {
	        {"http_url", cfg->http_url},
	        {"control_url", cfg->control_url},
	        {"control_stream_url", cfg->control_stream_url},
	        {"repository_url", cfg->repository_url},
	        {"repository_stream_url", cfg->repository_stream_url},
	        {"queue_url", cfg->queue_url},
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (need[i][1] == NULL || need[i][1][0] == '\0') {
			log_error("listener: '%s' is required", need[i][0]);
			return -EINVAL;
		}
	}
	struct listener *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	atomic_init(&l->inflight, 0);
	l->dev_mode = cfg->dev_mode;
	l->max_body = cfg->max_body > 0 ? cfg->max_body : (1u << 20);
	l->max_elements = cfg->max_elements > 0 ? cfg->max_elements : 1000;
	l->max_inflight = cfg->max_inflight > 0 ? cfg->max_inflight : 1024;
	l->retry_after_s = cfg->retry_after_s > 0 ? cfg->retry_after_s : 1;
	l->call_timeout_ms = cfg->call_timeout_ms > 0 ? cfg->call_timeout_ms : 5000;
	l->tls = cfg->tls;
	int rv = -ENOMEM;
	if (cfg->token != NULL && (l->token = strdup(cfg->token)) == NULL)
		goto fail;
	if ((l->control_stream_url = strdup(cfg->control_stream_url)) == NULL)
		goto fail;
	if ((rv = client(cfg->control_url, cfg, "control", &l->control)) != 0 ||
	    (rv = client(cfg->repository_url, cfg, "repository", &l->repository)) != 0 ||
	    (rv = client(cfg->queue_url, cfg, "queue", &l->queue)) != 0)
		goto fail;
	if (cfg->recorder_url != NULL && cfg->recorder_url[0] != '\0' &&
	    (rv = client(cfg->recorder_url, cfg, "recorder", &l->recorder)) != 0)
		goto fail;
	if (cfg->metrics != NULL) {
		l->metrics = cfg->metrics;
	} else {
		if ((rv = metrics_create(0, &l->metrics)) != 0)
			goto fail;
		l->own_metrics = true;
	}
	if ((rv = register_metrics(l)) != 0) {
		log_error("listener: cannot register metrics (%d)", rv);
		goto fail;
	}
	if ((rv = listener_defs_create(&l->defs)) != 0)
		goto fail;
	struct listener_schemas_options so = {
	        .repository = l->repository,
	        .stream_url = cfg->repository_stream_url,
	        .tls = cfg->tls,
	        .token = l->token,
	        .call_timeout_ms = l->call_timeout_ms < 3000 ? l->call_timeout_ms : 3000,
	        .max_waiters = (size_t)l->max_inflight,
	};
	if ((rv = listener_schemas_create(&so, &l->schemas)) != 0)
		goto fail;
	struct listener_batcher_options bo = {
	        .queue = l->queue,
	        .token = l->token,
	        .senders = cfg->enqueue_senders,
	        .max_batch = cfg->enqueue_batch,
	        .linger_us = cfg->enqueue_linger_us,
	        .max_pending = cfg->enqueue_max_pending,
	        .call_timeout_ms = l->call_timeout_ms,
	        .call_seconds = l->m_enqueue,
	};
	if ((rv = listener_batcher_create(&bo, &l->batcher)) != 0)
		goto fail;
	if (l->recorder != NULL && !cfg->no_timeline) {
		struct listener_reporter_options ro = {
		        .recorder = l->recorder,
		        .token = l->token,
		        .capacity = cfg->timeline_capacity,
		};
		if ((rv = listener_reporter_create(&ro, &l->reporter)) != 0)
			goto fail;
	}
	if ((rv = listener_workq_create(2, 64, &l->logq)) != 0)
		goto fail;

	/* Callbacks last: a shared registry may render at any time, and they
	 * read the parts built above. */
	if ((rv = register_callbacks(l)) != 0) {
		log_error("listener: cannot register metrics (%d)", rv);
		goto fail;
	}

	if (pthread_create(&l->sync_thread, NULL, sync_main, l) != 0) {
		rv = -EAGAIN;
		goto fail;
	}
	l->sync_started = true;

	struct httpd_options ho = {
	        .name = "listener",
	        .metrics = l->metrics,
	        .ready = ready_cb,
	        .ready_arg = l,
	        .workers = 1, /* every route of ours is inline */
	        .queue_max = l->max_inflight,
	        .max_outstanding = l->max_inflight,
	        .max_body = l->max_body,
	        .tls = cfg->http_tls,
	};
	if ((rv = httpd_create(cfg->http_url, &ho, &l->httpd)) != 0) {
		log_error("listener: bad http URL '%s'", cfg->http_url);
		goto fail;
	}
	if ((rv = httpd_add_handler(l->httpd, "POST", "/events/", 0, HTTPD_INLINE, h_ingest, l)) !=
	            0 ||
	    (rv = httpd_add_handler(l->httpd, "POST", "/webhooks/", 0, HTTPD_INLINE, h_ingest,
	                            l)) != 0 ||
	    (rv = httpd_add_handler(l->httpd, "POST", "/logs/", 0, HTTPD_INLINE, h_ingest, l)) !=
	            0 ||
	    (rv = httpd_start(l->httpd)) != 0)
		goto fail;

	if (l->dev_mode) {
		log_warn("listener: ************************************************************");
		log_warn("listener: DEVELOPMENT MODE: requests are accepted WITHOUT CREDENTIALS.");
		log_warn("listener: Anyone who reaches %s can post events for any tenant.",
		         cfg->http_url);
		log_warn("listener: Never run this way in production (drop --dev).");
		log_warn("listener: ************************************************************");
	}
	log_info("listener: serving on port %d; control %s, repository %s, queue %s%s%s",
	         httpd_port(l->httpd), cfg->control_url, cfg->repository_url, cfg->queue_url,
	         l->recorder != NULL ? ", recorder " : "",
	         l->recorder != NULL ? cfg->recorder_url : "");
	*out = l;
	return 0;
fail:
	listener_destroy(l);
	return rv;
}

void listener_destroy(struct listener *l)
{
	if (l == NULL)
		return;
	/* HTTP first: requests in progress finish with everything still up. */
	httpd_destroy(l->httpd);
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (l->sync_started)
		pthread_join(l->sync_thread, NULL);
	stream_sub_destroy(l->control_sub);
	listener_workq_destroy(l->logq);
	listener_batcher_destroy(l->batcher);
	listener_schemas_destroy(l->schemas);
	listener_reporter_destroy(l->reporter);
	if (l->metrics != NULL) {
		if (l->own_metrics)
			metrics_destroy(l->metrics);
		else
			unregister_metrics(l);
	}
	rpc_client_destroy(l->recorder);
	rpc_client_destroy(l->queue);
	rpc_client_destroy(l->repository);
	rpc_client_destroy(l->control);
	listener_defs_destroy(l->defs);
	free(l->control_stream_url);
	free(l->token);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
