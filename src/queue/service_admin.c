/*
 * service_admin: the operator side of noetl.Queue: per-queue stats, the
 * dead-letter list, replay and purge, health, and the Prometheus metrics
 * (computed from one stats snapshot per scrape).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "paging.h"
#include "rpc.h"
#include "service_priv.h"
#include "util.h"

/* --- Stats -------------------------------------------------------------------------------- */

void queue_admin_stats(Noetl__Queue_Service *svc, const Noetl__StatsRequest *in,
                       Noetl__StatsReply_Closure done, void *call)
{
	struct queue *q = queue_of(svc);
	const char *tenant = queue_scope(call, in->tenant, "tenant");
	if (tenant == NULL) {
		done(NULL, call);
		return;
	}
	struct queue_store_stat *v = NULL;
	size_t n = 0;
	int rc = queue_store_stats(q->store, tenant, &v, &n);
	if (rc != 0) {
		queue_fail(call, rc, "stats", "");
		done(NULL, call);
		return;
	}
	Noetl__QueueStats *sv = calloc(n + 1, sizeof(*sv));
	Noetl__QueueStats **sp = calloc(n + 1, sizeof(*sp));
	if (sv == NULL || sp == NULL) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "stats: out of memory");
		done(NULL, call);
	} else {
		for (size_t i = 0; i < n; i++) {
			noetl__queue_stats__init(&sv[i]);
			sv[i].tenant = v[i].tenant;
			sv[i].queue = v[i].queue;
			sv[i].ready = v[i].ready;
			sv[i].leased = v[i].leased;
			sv[i].delayed = v[i].delayed;
			sv[i].dead = v[i].dead;
			sv[i].oldest_age_ms = v[i].oldest_age_ms;
			sv[i].enqueued = v[i].enqueued;
			sv[i].acked = v[i].acked;
			sv[i].failed = v[i].failed;
			sv[i].expired = v[i].expired;
			sp[i] = &sv[i];
		}
		Noetl__StatsReply r = NOETL__STATS_REPLY__INIT;
		r.n_queues = n;
		r.queues = sp;
		done(&r, call);
	}
	free(sv);
	free(sp);
	free(v);
}

/* --- dead letters ---------------------------------------------------------------------------- */

/* Checks the tenant and queue of a dead-letter call; NULL after rpc_fail. */
static const char *dead_scope(void *call, const char *tenant, const char *queue)
{
	const char *t = queue_scope(call, tenant, "tenant");
	if (t == NULL)
		return NULL;
	if (!util_valid_name(t, QUEUE_NAME_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         t[0] == '\0' ? "tenant: missing; dead letters are listed per tenant%.0s"
		                      : "tenant: '%.80s' is not a valid name",
		         t);
		return NULL;
	}
	if (queue[0] != '\0' && !util_valid_name(queue, QUEUE_NAME_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "queue: '%.80s' is not a valid name", queue);
		return NULL;
	}
	return t;
}

void queue_admin_dead_list(Noetl__Queue_Service *svc, const Noetl__DeadListRequest *in,
                           Noetl__DeadListReply_Closure done, void *call)
{
	struct queue *q = queue_of(svc);
	const char *tenant = dead_scope(call, in->tenant, in->queue);
	if (tenant == NULL) {
		done(NULL, call);
		return;
	}
	uint32_t limit = paging_limit(in->page);
	const uint8_t *cursor = in->page != NULL ? in->page->cursor.data : NULL;
	size_t clen = in->page != NULL ? in->page->cursor.len : 0;
	Noetl__Item **items = NULL;
	size_t n = 0, nlen = 0;
	uint8_t *next = NULL;
	int rc = queue_store_dead_list(q->store, tenant, in->queue, limit, cursor, clen, &items, &n,
	                               &next, &nlen);
	if (rc != 0) {
		queue_fail(call, rc, "dead list",
		           "page.cursor: not a cursor of this listing; start from an empty cursor");
		done(NULL, call);
		return;
	}
	Noetl__DeadListReply r = NOETL__DEAD_LIST_REPLY__INIT;
	r.n_items = n;
	r.items = items;
	r.next_cursor.data = next;
	r.next_cursor.len = nlen;
	done(&r, call);
	queue_store_items_free(items, n);
	free(next);
}

static void dead_op(struct queue *q, const Noetl__DeadRequest *in, bool replay,
                    Noetl__DeadReply_Closure done, void *call)
{
	const char *tenant = dead_scope(call, in->tenant, in->queue);
	if (tenant == NULL) {
		done(NULL, call);
		return;
	}
	if (in->n_ids > q->cfg.max_batch) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "ids: %zu, at most %u per call",
		         in->n_ids, q->cfg.max_batch);
		done(NULL, call);
		return;
	}
	uint64_t count = 0;
	int rc = replay ? queue_store_dead_replay(q->store, tenant, in->queue, in->ids, in->n_ids,
	                                          &count)
	                : queue_store_dead_purge(q->store, tenant, in->queue, in->ids, in->n_ids,
	                                         &count);
	if (rc != 0) {
		char msg[200];
		snprintf(msg, sizeof(msg),
		         "replayed %llu dead items of tenant '%s', then reached its depth limit; "
		         "retry when the queues have drained",
		         (unsigned long long)count, tenant);
		queue_fail(call, rc, replay ? "dead replay" : "dead purge", msg);
		done(NULL, call);
		return;
	}
	Noetl__DeadReply r = NOETL__DEAD_REPLY__INIT;
	r.count = count;
	done(&r, call);
}

void queue_admin_dead_replay(Noetl__Queue_Service *svc, const Noetl__DeadRequest *in,
                             Noetl__DeadReply_Closure done, void *call)
{
	dead_op(queue_of(svc), in, true, done, call);
}

void queue_admin_dead_purge(Noetl__Queue_Service *svc, const Noetl__DeadRequest *in,
                            Noetl__DeadReply_Closure done, void *call)
{
	dead_op(queue_of(svc), in, false, done, call);
}

/* --- health ----------------------------------------------------------------------------------- */

void queue_admin_get_health(Noetl__Queue_Service *svc, const Noetl__Empty *in,
                            Noetl__Health_Closure done, void *call)
{
	(void)in;
	struct queue *q = queue_of(svc);
	Noetl__Health r = NOETL__HEALTH__INIT;
	r.service = "queue";
	r.version = NOETL_VERSION;
	r.ready = queue_store_healthy(q->store);
	r.detail = r.ready ? "" : "a write to the queue store failed; restart the service";
	r.uptime_ms = util_now_ms() - q->started_ms;
	done(&r, call);
}

bool queue_ready(void *arg, char *why, size_t cap)
{
	struct queue *q = arg;
	if (queue_store_healthy(q->store))
		return true;
	snprintf(why, cap, "a write to the queue store failed; restart the service");
	return false;
}

/* One per-queue metric family: which field of queue_store_stat it reports. */
struct family {
	const char *name;
	const char *help;
	enum metrics_kind kind;
	size_t offset; /* of a uint64_t field, or SIZE_MAX for oldest_age_ms */
};

#define F(field) offsetof(struct queue_store_stat, field)
static const struct family families[] = {
        {"noetl_queue_ready", "Items ready to lease.", METRICS_GAUGE, F(ready)},
        {"noetl_queue_leased", "Items leased and not yet acked, nacked or expired.", METRICS_GAUGE,
         F(leased)},
        {"noetl_queue_delayed", "Items waiting for their time or a retry backoff.", METRICS_GAUGE,
         F(delayed)},
        {"noetl_queue_dead", "Items in the dead-letter queue.", METRICS_GAUGE, F(dead)},
        {"noetl_queue_oldest_age_seconds", "Age of the oldest ready item.", METRICS_GAUGE,
         SIZE_MAX},
        {"noetl_queue_enqueued_total", "Items accepted.", METRICS_COUNTER, F(enqueued)},
        {"noetl_queue_acked_total", "Items acked.", METRICS_COUNTER, F(acked)},
        {"noetl_queue_failed_total", "Nacks.", METRICS_COUNTER, F(failed)},
        {"noetl_queue_expired_total", "Leases that ran out.", METRICS_COUNTER, F(expired)},
};
#undef F
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

_Static_assert(NFAMILIES == QUEUE_FAMILIES, "QUEUE_FAMILIES is the number of families");

/* --- metrics ---------------------------------------------------------------------------------- */

/* Takes a stats snapshot at most every 500 ms: one scrape renders every
 * family from one snapshot. Called with snap_mu held. */
static void refresh_snapshot(struct queue *q)
{
	int64_t now = util_mono_ms();
	if (q->snap != NULL && now - q->snap_ms < 500)
		return;
	struct queue_store_stat *v = NULL;
	size_t n = 0;
	if (queue_store_stats(q->store, NULL, &v, &n) != 0)
		return;
	free(q->snap);
	q->snap = v;
	q->nsnap = n;
	q->snap_ms = now;
}

static void emit_family(struct metrics_emitter *e, void *arg)
{
	struct family_arg *a = arg;
	struct queue *q = a->q;
	pthread_mutex_lock(&q->snap_mu);
	refresh_snapshot(q);
	for (size_t i = 0; i < q->nsnap; i++) {
		const struct queue_store_stat *st = &q->snap[i];
		const char *labels[2] = {st->tenant, st->queue};
		double v = a->f->offset == SIZE_MAX
		                   ? (double)st->oldest_age_ms / 1000.0
		                   : (double)*(const uint64_t *)((const char *)st + a->f->offset);
		metrics_emit(e, labels, v);
	}
	pthread_mutex_unlock(&q->snap_mu);
}

/* Store-wide totals: which one a callback reports. */
enum total { T_WRITES, T_WRITE_OPS, T_WRITE_SECONDS, T_DEPTH, T_RELEASED };

static const struct {
	const char *name, *help;
	enum metrics_kind kind;
} totals[] = {
        [T_WRITES] = {"noetl_queue_synced_writes_total",
                      "Synced writes of the queue store (each a group of calls).", METRICS_COUNTER},
        [T_WRITE_OPS] = {"noetl_queue_synced_write_ops_total",
                         "Operations (items, leases, acks ...) in those writes; divided by the "
                         "writes, the group-commit batch size.",
                         METRICS_COUNTER},
        [T_WRITE_SECONDS] = {"noetl_queue_synced_write_seconds_total",
                             "Time spent in synced writes.", METRICS_COUNTER},
        [T_DEPTH] = {"noetl_queue_depth", "Ready, leased and delayed items of all tenants.",
                     METRICS_GAUGE},
        [T_RELEASED] = {"noetl_queue_released_total",
                        "Leased items given back unrun (Nack with release: their definitions "
                        "were not ready), no attempt counted.",
                        METRICS_COUNTER},
};

_Static_assert(sizeof(totals) / sizeof(totals[0]) == QUEUE_TOTALS, "QUEUE_TOTALS is their number");

static void emit_total(struct metrics_emitter *e, void *arg)
{
	struct total_arg *a = arg;
	struct queue_store_totals t;
	queue_store_totals(a->q->store, &t);
	double v = a->which == T_WRITES          ? (double)t.groups
	           : a->which == T_WRITE_OPS     ? (double)t.group_ops
	           : a->which == T_WRITE_SECONDS ? (double)t.write_us / 1e6
	           : a->which == T_RELEASED      ? (double)t.released
	                                         : (double)t.depth;
	metrics_emit(e, NULL, v);
}

void queue_metrics_register(struct queue *q)
{
	struct metrics *m = q->cfg.metrics;
	if (m == NULL)
		return;
	for (size_t i = 0; i < NFAMILIES; i++) {
		q->fam[i].q = q;
		q->fam[i].f = &families[i];
		if (metrics_callback(m, families[i].name, families[i].help, "tenant,queue",
		                     families[i].kind, emit_family, &q->fam[i]) != 0) {
			log_warn("queue: metric '%s' is registered already; not exported",
			         families[i].name);
			q->fam[i].q = NULL; /* not ours to unregister */
		}
	}
	for (int i = 0; i < QUEUE_TOTALS; i++) {
		q->tot[i].q = q;
		q->tot[i].which = i;
		if (metrics_callback(m, totals[i].name, totals[i].help, NULL, totals[i].kind,
		                     emit_total, &q->tot[i]) != 0)
			log_warn("queue: metric '%s' is registered already; not exported",
			         totals[i].name);
		else
			q->tot[i].registered = true;
	}
	metrics_histogram(m, "noetl_queue_enqueue_seconds",
	                  "Time from an Enqueue call's arrival to its durable reply.", NULL,
	                  metrics_latency_buckets, metrics_latency_buckets_count, &q->m_enqueue);
	metrics_counter(m, "noetl_queue_enqueue_rejected_total",
	                "Enqueue calls refused at a depth or count limit.", NULL, &q->m_rejected);
}

void queue_metrics_unregister(struct queue *q)
{
	struct metrics *m = q->cfg.metrics;
	if (m == NULL)
		return;
	for (size_t i = 0; i < NFAMILIES; i++)
		if (q->fam[i].q == q)
			metrics_unregister(m, families[i].name);
	for (int i = 0; i < QUEUE_TOTALS; i++)
		if (q->tot[i].registered)
			metrics_unregister(m, totals[i].name);
}
