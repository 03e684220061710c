/*
 * recorder: creating and destroying the service, and its background
 * retention thread. See recorder.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "service_int.h"
#include "util.h"

#define DEFAULT_RETAIN_EVERY_MS 60000

/* Waits up to ms for stop; true if stop was asked. Under r->mu. */
static bool wait_stop(struct recorder *r, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
		;
	return r->stop;
}

static void *retainer(void *arg)
{
	struct recorder *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!wait_stop(r, r->retain_every_ms)) {
		pthread_mutex_unlock(&r->mu);
		uint64_t deleted = 0;
		int rc = recorder_retain_now(r, util_now_ms(), &deleted);
		if (rc != 0)
			log_warn("recorder: retention pass failed (%s); retrying in %lld ms",
			         strerror(-rc), (long long)r->retain_every_ms);
		else if (deleted > 0)
			log_info("recorder: retention deleted %llu records",
			         (unsigned long long)deleted);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int recorder_create(const struct recorder_config *cfg, struct recorder **out)
{
	struct recorder *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	recorder_service_init(r);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->started_ms = util_mono_ms();
	r->limits.max_text = cfg->max_text;
	r->limits.max_result = cfg->max_result;
	r->limits.max_records = cfg->max_records;
	recorder_limits_defaults(&r->limits);
	r->def.max_age_ms = cfg->max_age_ms;
	r->def.max_bytes = cfg->max_bytes;
	r->retain_every_ms =
	        cfg->retain_every_ms != 0 ? cfg->retain_every_ms : DEFAULT_RETAIN_EVERY_MS;

	int rc = 0;
	if (cfg->stream_url != NULL) {
		rc = stream_pub_create(cfg->stream_url, cfg->heartbeat_ms, cfg->tls, &r->pub);
		if (rc != 0) {
			log_error("recorder: cannot publish on '%s': %s", cfg->stream_url,
			          strerror(-rc));
			goto fail;
		}
	}
	rc = recorder_store_open(cfg->data_dir, r->pub, &r->store);
	if (rc != 0) {
		log_error("recorder: cannot open the store in '%s': %s", cfg->data_dir,
		          strerror(-rc));
		goto fail;
	}
	rc = recorder_writer_create(r->store, cfg->group_records, &r->writer);
	if (rc != 0)
		goto fail;
	if (r->retain_every_ms > 0) {
		int e = pthread_create(&r->retainer, NULL, retainer, r);
		if (e != 0) {
			log_error("recorder: cannot start the retention thread: %s", strerror(e));
			rc = -e;
			goto fail;
		}
		r->retainer_started = true;
	}
	log_info("recorder: store '%s' open at revision %llu", cfg->data_dir,
	         (unsigned long long)recorder_store_head(r->store));
	*out = r;
	return 0;
fail:
	recorder_destroy(r);
	return rc;
}

ProtobufCService *recorder_service(struct recorder *r)
{
	return &r->svc.base;
}

struct stream_pub *recorder_pub(struct recorder *r)
{
	return r->pub;
}

uint64_t recorder_revision(struct recorder *r)
{
	return recorder_store_head(r->store);
}

int recorder_retain_now(struct recorder *r, int64_t now_ms, uint64_t *deleted)
{
	struct recorder_retain_result res = {0};
	bool any = r->def.max_age_ms > 0 || r->def.max_bytes > 0;
	int rc = recorder_store_retain(r->store, now_ms, any ? &r->def : NULL, &res);
	atomic_fetch_add(&r->retained, res.records);
	if (deleted != NULL)
		*deleted = res.records;
	return rc;
}

/* --- metrics ------------------------------------------------------------------ */

static void emit_revision(struct metrics_emitter *e, void *arg)
{
	metrics_emit(e, NULL, (double)recorder_revision(arg));
}

static void emit_records(struct metrics_emitter *e, void *arg)
{
	struct recorder *r = arg;
	uint64_t writes, records;
	recorder_writer_stats(r->writer, &writes, &records);
	metrics_emit(e, NULL, (double)records);
}

static void emit_writes(struct metrics_emitter *e, void *arg)
{
	struct recorder *r = arg;
	uint64_t writes, records;
	recorder_writer_stats(r->writer, &writes, &records);
	metrics_emit(e, NULL, (double)writes);
}

static void emit_retained(struct metrics_emitter *e, void *arg)
{
	struct recorder *r = arg;
	metrics_emit(e, NULL, (double)atomic_load(&r->retained));
}

struct usage_emit {
	struct metrics_emitter *e;
	bool bytes;
};

static void emit_one_usage(void *arg, const char *tenant, uint64_t records, uint64_t bytes)
{
	struct usage_emit *u = arg;
	const char *values[] = {tenant};
	metrics_emit(u->e, values, (double)(u->bytes ? bytes : records));
}

static void emit_tenant_records(struct metrics_emitter *e, void *arg)
{
	struct recorder *r = arg;
	struct usage_emit u = {e, false};
	recorder_store_each_usage(r->store, emit_one_usage, &u);
}

static void emit_tenant_bytes(struct metrics_emitter *e, void *arg)
{
	struct recorder *r = arg;
	struct usage_emit u = {e, true};
	recorder_store_each_usage(r->store, emit_one_usage, &u);
}

int recorder_metrics(struct recorder *r, struct metrics *m)
{
	int rc = metrics_callback(m, "noetl_recorder_revision",
	                          "newest revision of the recorder's record stream", NULL,
	                          METRICS_GAUGE, emit_revision, r);
	if (rc == 0)
		rc = metrics_callback(m, "noetl_recorder_records_total",
		                      "records stored since the process started", NULL,
		                      METRICS_COUNTER, emit_records, r);
	if (rc == 0)
		rc = metrics_callback(m, "noetl_recorder_synced_writes_total",
		                      "synced writes (each carries a group of Record calls)", NULL,
		                      METRICS_COUNTER, emit_writes, r);
	if (rc == 0)
		rc = metrics_callback(m, "noetl_recorder_retention_deleted_total",
		                      "records deleted by retention since the process started",
		                      NULL, METRICS_COUNTER, emit_retained, r);
	if (rc == 0)
		rc = metrics_callback(m, "noetl_recorder_tenant_records",
		                      "records stored for the tenant", "tenant", METRICS_GAUGE,
		                      emit_tenant_records, r);
	if (rc == 0)
		rc = metrics_callback(m, "noetl_recorder_tenant_bytes",
		                      "bytes charged against the tenant's retention (record size "
		                      "plus a fixed allowance for its keys)",
		                      "tenant", METRICS_GAUGE, emit_tenant_bytes, r);
	return rc;
}

void recorder_destroy(struct recorder *r)
{
	if (r == NULL)
		return;
	if (r->retainer_started) {
		pthread_mutex_lock(&r->mu);
		r->stop = true;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->retainer, NULL);
	}
	recorder_writer_destroy(r->writer);
	recorder_store_close(r->store);
	stream_pub_destroy(r->pub);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

const char *recorder_check_retention(int64_t every)
{
	return every > 0 ? NULL : "recorder.retention.interval must be positive";
}
