/*
 * service: the noetl.Queue handlers. Each checks its request (names, sizes,
 * the caller's tenant), calls the store, and turns the result into a reply;
 * no sockets here, so tests can call the handlers through rpc_invoke_local.
 *
 * Tenancy: a call whose metadata names a tenant acts for that tenant only:
 * its items must belong to it (or leave the tenant empty), and leases, acks,
 * stats and dead letters of other tenants are invisible to it. Platform
 * callers (the listener, executors, noetlctl with an operator token) leave
 * the metadata tenant empty and name tenants in the requests.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc.h"
#include "service_priv.h"
#include "util.h"

void queue_fail(void *call, int rc, const char *what, const char *msg)
{
	switch (rc) {
	case -EDQUOT:
	case -EMLINK:
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "%s", msg);
		break;
	case -EIO:
		rpc_fail(call, NOETL__STATUS__UNAVAILABLE,
		         "%s: the queue store failed a write and refuses calls until the service "
		         "restarts",
		         what);
		break;
	case -EINVAL:
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "%s: %s", what, msg);
		break;
	default:
		rpc_fail(call, NOETL__STATUS__INTERNAL, "%s failed: %s", what, strerror(-rc));
	}
}

static Noetl__Status entry_status(int rc)
{
	switch (rc) {
	case 0:
		return NOETL__STATUS__OK;
	case -ENOENT:
		return NOETL__STATUS__NOT_FOUND;
	case -EINVAL:
		return NOETL__STATUS__INVALID_ARGUMENT;
	case -EMLINK:
	case -EDQUOT:
		return NOETL__STATUS__RESOURCE_EXHAUSTED;
	default:
		return NOETL__STATUS__INTERNAL;
	}
}

/* True if s is 1..max bytes without control characters. */
static bool plain_text(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

const char *queue_scope(void *call, const char *requested, const char *field)
{
	const char *md = rpc_tenant(call);
	if (md[0] == '\0')
		return requested != NULL ? requested : "";
	if (requested != NULL && requested[0] != '\0' && strcmp(requested, md) != 0) {
		rpc_fail(call, NOETL__STATUS__PERMISSION_DENIED,
		         "%s: tenant '%s' is not the caller's tenant '%s'", field, requested, md);
		return NULL;
	}
	return md;
}

/*
 * Checks item `in` (at field path where) and fills *out, a shallow copy with
 * the tenant and id settled. idbuf receives a generated id. parent_tenant:
 * follow-ups may leave the tenant empty (the store uses the parent's).
 * Returns false after rpc_fail.
 */
static bool check_item(struct queue *q, void *call, const char *where, const Noetl__Item *in,
                       bool follow_up, Noetl__Item *out, char idbuf[UTIL_ID_SIZE])
{
	*out = *in;
	const char *md = rpc_tenant(call);
	if (md[0] != '\0' && in->tenant[0] != '\0' && strcmp(in->tenant, md) != 0) {
		rpc_fail(call, NOETL__STATUS__PERMISSION_DENIED,
		         "%s.tenant: '%s' is not the caller's tenant '%s'", where, in->tenant, md);
		return false;
	}
	if (out->tenant[0] == '\0')
		out->tenant = (char *)md;
	if (out->tenant[0] == '\0' && !follow_up) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s.tenant: missing; name the tenant in the item or call with one", where);
		return false;
	}
	if (out->tenant[0] != '\0' && !util_valid_name(out->tenant, QUEUE_NAME_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s.tenant: '%.80s' is not a valid name; use 1-%d characters of "
		         "A-Z a-z 0-9 _ . - (not starting with '.')",
		         where, out->tenant, QUEUE_NAME_MAX);
		return false;
	}
	if (!util_valid_name(in->queue, QUEUE_NAME_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s.queue: '%.80s' is not a valid queue name; use 1-%d characters of "
		         "A-Z a-z 0-9 _ . - (not starting with '.')",
		         where, in->queue, QUEUE_NAME_MAX);
		return false;
	}
	if (in->id[0] == '\0') {
		util_new_id(idbuf);
		out->id = idbuf;
	} else if (!plain_text(in->id, QUEUE_ID_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s.id: must be 1-%d characters without control characters", where,
		         QUEUE_ID_MAX);
		return false;
	}
	if (in->idempotency_key[0] != '\0' && !plain_text(in->idempotency_key, QUEUE_IDEM_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s.idempotency_key: must be 1-%d characters without control characters",
		         where, QUEUE_IDEM_MAX);
		return false;
	}
	if (in->payload.len > q->cfg.max_payload_bytes) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED,
		         "%s.payload: %zu bytes, over the limit of %u; send smaller events", where,
		         in->payload.len, q->cfg.max_payload_bytes);
		return false;
	}
	if (in->not_before_ms < 0) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s.not_before_ms: %lld is negative; use a Unix time in milliseconds or 0",
		         where, (long long)in->not_before_ms);
		return false;
	}
	if (in->retry != NULL &&
	    (in->retry->max_attempts > QUEUE_ATTEMPTS_MAX || in->retry->jitter_percent > 100)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s.retry: max_attempts must be at most %d and jitter_percent at most 100",
		         where, QUEUE_ATTEMPTS_MAX);
		return false;
	}
	return true;
}

/* --- Enqueue --------------------------------------------------------------------- */

static void h_enqueue(Noetl__Queue_Service *svc, const Noetl__EnqueueRequest *in,
                      Noetl__EnqueueReply_Closure done, void *call)
{
	struct queue *q = queue_of(svc);
	size_t n = in->n_items;
	if (n > q->cfg.max_batch) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "items: %zu in one call, at most %u; split the batch", n,
		         q->cfg.max_batch);
		done(NULL, call);
		return;
	}
	int64_t t0 = util_mono_us();
	Noetl__Item *copies = calloc(n + 1, sizeof(*copies));
	Noetl__Item **ptrs = calloc(n + 1, sizeof(*ptrs));
	char(*ids)[UTIL_ID_SIZE] = calloc(n + 1, UTIL_ID_SIZE);
	struct queue_store_enqueued *res = calloc(n + 1, sizeof(*res));
	Noetl__EnqueueResult *rv = calloc(n + 1, sizeof(*rv));
	Noetl__EnqueueResult **rp = calloc(n + 1, sizeof(*rp));
	if (copies == NULL || ptrs == NULL || ids == NULL || res == NULL || rv == NULL ||
	    rp == NULL) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "enqueue: out of memory");
		done(NULL, call);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char where[32];
		snprintf(where, sizeof(where), "items[%zu]", i);
		if (!check_item(q, call, where, in->items[i], false, &copies[i], ids[i])) {
			done(NULL, call);
			goto out;
		}
		ptrs[i] = &copies[i];
	}
	char err[256] = "";
	int rc = n > 0 ? queue_store_enqueue(q->store, ptrs, n, res, err, sizeof(err)) : 0;
	if (rc != 0) {
		if (rc == -EDQUOT || rc == -EMLINK)
			metric_inc(q->m_rejected);
		queue_fail(call, rc, "enqueue", err);
		done(NULL, call);
		goto out;
	}
	Noetl__EnqueueReply r = NOETL__ENQUEUE_REPLY__INIT;
	for (size_t i = 0; i < n; i++) {
		noetl__enqueue_result__init(&rv[i]);
		rv[i].id = res[i].id;
		rv[i].duplicate = res[i].duplicate;
		rp[i] = &rv[i];
	}
	r.n_results = n;
	r.results = rp;
	metric_observe(q->m_enqueue, NULL, (double)(util_mono_us() - t0) / 1e6);
	done(&r, call);
out:
	for (size_t i = 0; res != NULL && i < n; i++)
		free(res[i].id);
	free(copies);
	free(ptrs);
	free(ids);
	free(res);
	free(rv);
	free(rp);
}

/* --- Lease --------------------------------------------------------------------------- */

static void h_lease(Noetl__Queue_Service *svc, const Noetl__LeaseRequest *in,
                    Noetl__LeaseReply_Closure done, void *call)
{
	struct queue *q = queue_of(svc);
	const char *tenant = queue_scope(call, in->tenant, "tenant");
	if (tenant == NULL) {
		done(NULL, call);
		return;
	}
	if (tenant[0] != '\0' && !util_valid_name(tenant, QUEUE_NAME_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "tenant: '%.80s' is not a valid name", tenant);
		done(NULL, call);
		return;
	}
	if (in->lease_ms > 12u * 3600 * 1000) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "lease_ms: %u is over 12 hours; lease for less and extend", in->lease_ms);
		done(NULL, call);
		return;
	}
	struct queue_store_lease_req req = {
	        .max_items = in->max_items == 0 ? 1 : in->max_items,
	        .lease_ms = in->lease_ms == 0 ? QUEUE_DEFAULT_LEASE_MS : in->lease_ms,
	        .per_tenant_max = in->per_tenant_max,
	        .tenant = tenant,
	};
	if (req.max_items > QUEUE_MAX_LEASE_ITEMS)
		req.max_items = QUEUE_MAX_LEASE_ITEMS;
	/* Wait no longer than the caller does, keeping time for the reply. */
	int64_t wait = in->wait_ms;
	int64_t left = rpc_remaining_ms(call) - 200;
	if (wait > left)
		wait = left > 0 ? left : 0;
	req.wait_ms = (uint32_t)wait;

	struct queue_store_leased *v = NULL;
	size_t n = 0;
	int rc = queue_store_lease(q->store, &req, &v, &n);
	if (rc != 0) {
		queue_fail(call, rc, "lease", "");
		done(NULL, call);
		return;
	}
	Noetl__Leased *lv = calloc(n + 1, sizeof(*lv));
	Noetl__Leased **lp = calloc(n + 1, sizeof(*lp));
	if (lv == NULL || lp == NULL) {
		/* The leases stand and will expire: at-least-once holds. */
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "lease: out of memory");
		done(NULL, call);
	} else {
		for (size_t i = 0; i < n; i++) {
			noetl__leased__init(&lv[i]);
			lv[i].item = v[i].item;
			lv[i].lease.data = v[i].token;
			lv[i].lease.len = QUEUE_TOKEN_LEN;
			lv[i].expires_ms = v[i].expires_ms;
			lp[i] = &lv[i];
		}
		Noetl__LeaseReply r = NOETL__LEASE_REPLY__INIT;
		r.n_items = n;
		r.items = lp;
		done(&r, call);
	}
	free(lv);
	free(lp);
	queue_store_leased_free(v, n);
}

/* --- Ack, Nack, Extend ------------------------------------------------------------------ */

/* Replies with n results and frees them. */
static void reply_results(Noetl__AckResult *rv, size_t n, Noetl__AckReply_Closure done, void *call)
{
	Noetl__AckResult **rp = calloc(n + 1, sizeof(*rp));
	if (rp == NULL) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "out of memory");
		done(NULL, call);
		return;
	}
	for (size_t i = 0; i < n; i++)
		rp[i] = &rv[i];
	Noetl__AckReply r = NOETL__ACK_REPLY__INIT;
	r.n_results = n;
	r.results = rp;
	done(&r, call);
	free(rp);
}

static void h_ack(Noetl__Queue_Service *svc, const Noetl__AckRequest *in,
                  Noetl__AckReply_Closure done, void *call)
{
	struct queue *q = queue_of(svc);
	size_t n = in->n_entries, nf = 0;
	for (size_t i = 0; i < n; i++)
		nf += in->entries[i]->n_follow_ups;
	if (n > q->cfg.max_batch || nf > q->cfg.max_batch) {
		rpc_fail(
		        call, NOETL__STATUS__INVALID_ARGUMENT,
		        "entries: %zu entries with %zu follow-ups in one call, at most %u of each; "
		        "split the batch",
		        n, nf, q->cfg.max_batch);
		done(NULL, call);
		return;
	}
	struct queue_store_ack *e = calloc(n + 1, sizeof(*e));
	Noetl__Item *copies = calloc(nf + 1, sizeof(*copies));
	Noetl__Item **ptrs = calloc(nf + 1, sizeof(*ptrs));
	char(*ids)[UTIL_ID_SIZE] = calloc(nf + 1, UTIL_ID_SIZE);
	Noetl__AckResult *rv = calloc(n + 1, sizeof(*rv));
	if (e == NULL || copies == NULL || ptrs == NULL || ids == NULL || rv == NULL) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "ack: out of memory");
		done(NULL, call);
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const Noetl__AckEntry *a = in->entries[i];
		e[i].token = a->lease.data;
		e[i].token_len = a->lease.len;
		e[i].follow_ups = ptrs + k;
		e[i].n_follow_ups = a->n_follow_ups;
		for (size_t j = 0; j < a->n_follow_ups; j++, k++) {
			char where[64];
			snprintf(where, sizeof(where), "entries[%zu].follow_ups[%zu]", i, j);
			if (!check_item(q, call, where, a->follow_ups[j], true, &copies[k],
			                ids[k])) {
				done(NULL, call);
				goto out;
			}
			ptrs[k] = &copies[k];
		}
	}
	int rc = queue_store_ack(q->store, rpc_tenant(call), e, n);
	if (rc != 0) {
		queue_fail(call, rc, "ack", "");
		done(NULL, call);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		noetl__ack_result__init(&rv[i]);
		rv[i].status = entry_status(e[i].status);
	}
	reply_results(rv, n, done, call);
out:
	free(e);
	free(copies);
	free(ptrs);
	free(ids);
	free(rv);
}

static void h_nack(Noetl__Queue_Service *svc, const Noetl__NackRequest *in,
                   Noetl__AckReply_Closure done, void *call)
{
	struct queue *q = queue_of(svc);
	size_t n = in->n_entries;
	if (n > q->cfg.max_batch) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "entries: %zu in one call, at most %u; split the batch", n,
		         q->cfg.max_batch);
		done(NULL, call);
		return;
	}
	struct queue_store_nack *e = calloc(n + 1, sizeof(*e));
	Noetl__AckResult *rv = calloc(n + 1, sizeof(*rv));
	if (e == NULL || rv == NULL) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "nack: out of memory");
		done(NULL, call);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const Noetl__NackEntry *ne = in->entries[i];
		if (ne->release && ne->delay_ms > QUEUE_RELEASE_DELAY_MAX) {
			rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
			         "entries[%zu].delay_ms: %u ms, at most %u (one hour)", i,
			         ne->delay_ms, QUEUE_RELEASE_DELAY_MAX);
			done(NULL, call);
			goto out;
		}
		e[i].token = ne->lease.data;
		e[i].token_len = ne->lease.len;
		e[i].reason = ne->reason;
		e[i].dead = ne->dead;
		e[i].release = ne->release;
		e[i].delay_ms = ne->delay_ms;
	}
	int rc = queue_store_nack(q->store, rpc_tenant(call), e, n);
	if (rc != 0) {
		queue_fail(call, rc, "nack", "");
		done(NULL, call);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		noetl__ack_result__init(&rv[i]);
		rv[i].status = entry_status(e[i].status);
		if (e[i].status == 0) {
			rv[i].outcome = e[i].release         ? "released"
			                : e[i].dead_lettered ? "dead"
			                                     : "retry";
			rv[i].retry_at_ms = e[i].retry_at_ms;
		}
	}
	reply_results(rv, n, done, call);
out:
	free(e);
	free(rv);
}

static void h_extend(Noetl__Queue_Service *svc, const Noetl__ExtendRequest *in,
                     Noetl__AckReply_Closure done, void *call)
{
	struct queue *q = queue_of(svc);
	size_t n = in->n_leases;
	if (n > q->cfg.max_batch || in->lease_ms > 12u * 3600 * 1000) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "extend: %zu leases (at most %u) for %u ms (at most 12 hours)", n,
		         q->cfg.max_batch, in->lease_ms);
		done(NULL, call);
		return;
	}
	struct queue_store_extend *e = calloc(n + 1, sizeof(*e));
	Noetl__AckResult *rv = calloc(n + 1, sizeof(*rv));
	if (e == NULL || rv == NULL) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "extend: out of memory");
		done(NULL, call);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		e[i].token = in->leases[i].data;
		e[i].token_len = in->leases[i].len;
	}
	uint32_t ms = in->lease_ms == 0 ? QUEUE_DEFAULT_LEASE_MS : in->lease_ms;
	int rc = queue_store_extend(q->store, rpc_tenant(call), ms, e, n);
	if (rc != 0) {
		queue_fail(call, rc, "extend", "");
		done(NULL, call);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		noetl__ack_result__init(&rv[i]);
		rv[i].status = entry_status(e[i].status);
		rv[i].expires_ms = e[i].status == 0 ? e[i].expires_ms : 0;
	}
	reply_results(rv, n, done, call);
out:
	free(e);
	free(rv);
}

/* --- life cycle --- */

int queue_create(const struct queue_config *cfg, struct queue **out)
{
	if (cfg == NULL || cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
		log_error("queue: no data directory configured");
		return -EINVAL;
	}
	struct queue *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
/* The admin handlers live in service_admin.c under their module names. */
#define h_stats       queue_admin_stats
#define h_dead_list   queue_admin_dead_list
#define h_dead_replay queue_admin_dead_replay
#define h_dead_purge  queue_admin_dead_purge
#define h_get_health  queue_admin_get_health
	static const Noetl__Queue_Service init = NOETL__QUEUE__INIT(h_);
	q->svc = init;
	q->cfg = *cfg;
	if (q->cfg.max_payload_bytes == 0)
		q->cfg.max_payload_bytes = QUEUE_DEFAULT_MAX_PAYLOAD;
	if (q->cfg.max_batch == 0)
		q->cfg.max_batch = QUEUE_DEFAULT_MAX_BATCH;
	q->started_ms = util_now_ms();
	pthread_mutex_init(&q->snap_mu, NULL);
	struct queue_store_options so = {
	        .dir = cfg->data_dir,
	        .cache_bytes = cfg->cache_bytes,
	        .max_depth_tenant = cfg->max_depth_tenant,
	        .max_depth_total = cfg->max_depth_total,
	        .max_queues_tenant = cfg->max_queues_tenant,
	        .max_tenants = cfg->max_tenants,
	        .idem_retention_ms = cfg->idempotency_retention_ms,
	        .retry = {cfg->retry_max_attempts, cfg->retry_base_ms, cfg->retry_max_ms,
	                  cfg->retry_jitter_percent},
	        .tick_ms = cfg->tick_ms,
	};
	int rc = queue_store_open(&so, &q->store);
	if (rc != 0) {
		log_error("queue: cannot open the store in '%s': %s", cfg->data_dir, strerror(-rc));
		pthread_mutex_destroy(&q->snap_mu);
		free(q);
		return rc;
	}
	queue_metrics_register(q);
	*out = q;
	return 0;
}

ProtobufCService *queue_service(struct queue *q)
{
	return (ProtobufCService *)&q->svc;
}

void queue_destroy(struct queue *q)
{
	if (q == NULL)
		return;
	queue_metrics_unregister(q);
	queue_store_close(q->store);
	free(q->snap);
	pthread_mutex_destroy(&q->snap_mu);
	free(q);
}
