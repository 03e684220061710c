/*
 * store: the queue store's key layout, recovery, group commit and enqueue.
 *
 * Memory. The store never keeps items in memory. What it keeps is O(queues):
 * per queue its positions (head, tail) and counters, per tenant its depth and
 * list of queues; plus the operations of at most two groups (the one being
 * written and the one filling up), whose size is bounded by the number of
 * server workers times the request size.
 *
 * Ready items of a queue live at consecutive sequence numbers [head, tail):
 * they enter only at the tail (enqueue, a retry or a delay coming due, an
 * expired lease, a replay) and leave only at the head (lease). So the number
 * of ready items is tail - head, and a lease reads exactly the keys it takes
 * with an iterator bounded to [head, head + n): it never walks over deleted
 * keys. Keys behind the head are deleted later, in ranges (seal below), so
 * tombstones stay few and never lie in front of a read.
 *
 * Group commit. Every state change is made under one mutex: the in-memory
 * state moves and the matching kv operations are added to the pending group.
 * A writer takes the pending group, adds the state records of the queues it
 * touched (so positions and items are always written together), and writes
 * it with one synced write while the next group fills up. Callers wait until
 * their group is written and only then reply. Groups are written one at a
 * time and in order, so the store on disk is always a prefix of the order in
 * which changes were made. The writer is the calling thread when no write is
 * in progress (a lone call then costs no thread switch), else the writer
 * thread, which takes every group that filled up during a write: under load
 * one group syncs while the next fills, and the two alternate.
 *
 * Reads see only written groups. A lease may take ready items only below a
 * queue's `visible` position (what written groups hold). Keys that unwritten
 * groups delete are still on disk, so the in-flight maps (leases, idem)
 * remember which leases and idempotency keys unwritten groups changed; they
 * are cleared as groups are written and stay as small as the groups.
 *
 * A failed write leaves memory ahead of the disk with no way back: the store
 * then fails every call with -EIO and reports itself unhealthy; a restart
 * recovers from the disk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

/* --- the writer ------------------------------------------------------------------- */

static bool group_empty(const struct qgroup *g)
{
	return g->nops == 0 && g->ndirty == 0 && !g->gseq;
}

static void group_reset(struct qgroup *g)
{
	kv_batch_clear(g->b);
	g->nops = 0;
	g->ndirty = 0;
	g->nleases = 0;
	for (size_t i = 0; i < g->nidem; i++)
		free(g->idem[i]);
	g->nidem = 0;
	g->gseq = false;
}

static void group_release(struct qgroup *g)
{
	group_reset(g);
	kv_batch_destroy(g->b);
	free(g->dirty);
	free(g->dirty_tail);
	free(g->leases);
	free(g->idem);
}

/* Retires q's consumed ready keys [retired, head) into g. A few are deleted
 * one by one (point tombstones behind the head are never read); more take
 * one range deletion. */
static void retire(struct queue_store *s, struct qgroup *g, struct qqueue *q, int64_t now)
{
	uint64_t n = q->head - q->retired;
	if (n == 0 || (n < RETIRE_BATCH && now - q->retired_ms < RETIRE_IDLE_MS))
		return;
	uint8_t a[KEY_MAX], b[KEY_MAX];
	if (n <= 32) {
		for (uint64_t seq = q->retired; seq < q->head; seq++)
			kv_batch_delete(g->b, a, key_ready(a, q, seq));
	} else {
		size_t al = key_ready(a, q, q->retired);
		size_t bl = key_ready(b, q, q->head);
		kv_batch_delete_range(g->b, a, al, b, bl);
	}
	(void)s;
	q->retired = q->head;
	q->retired_ms = now;
}

/* Adds the state records of the queues g touched, and the store-wide id. */
static void seal(struct queue_store *s, struct qgroup *g)
{
	int64_t now = util_now_ms();
	uint8_t k[KEY_MAX], v[QSTATE_LEN];
	for (size_t i = 0; i < g->ndirty; i++) {
		struct qqueue *q = g->dirty[i];
		retire(s, g, q, now);
		store_qstate_encode(v, q);
		kv_batch_put(g->b, k, key_queue(k, q), v, sizeof(v));
		g->dirty_tail[i] = q->tail;
	}
	if (g->gseq) {
		util_put_be64(v, s->gseq);
		kv_batch_put(g->b, "Mgseq", 5, v, 8);
	}
}

/* Makes what g wrote visible and forgets its in-flight entries. */
static void apply(struct queue_store *s, struct qgroup *g, int rc)
{
	if (rc != 0 && s->failed_gid == 0) {
		s->failed_gid = g->gid;
		log_error("queue: a synced write failed; the store refuses every call until "
		          "the service restarts");
	}
	bool more = false;
	for (size_t i = 0; rc == 0 && i < g->ndirty; i++) {
		struct qqueue *q = g->dirty[i];
		if (g->dirty_tail[i] > q->visible) {
			q->visible = g->dirty_tail[i];
			store_update_active(s, q);
			more = true;
		}
	}
	for (size_t i = 0; i < g->nleases; i++) {
		uintptr_t v = (uintptr_t)qmap_get(s->leases, &g->leases[i], sizeof(uint64_t));
		if (v != 0 && (v >> 1) == g->gid)
			qmap_remove(s->leases, &g->leases[i], sizeof(uint64_t));
	}
	for (size_t i = 0; i < g->nidem; i++) {
		size_t kl;
		memcpy(&kl, g->idem[i], sizeof(size_t));
		const char *k = g->idem[i] + sizeof(size_t);
		struct qidem *e = qmap_get(s->idem, k, kl);
		if (e != NULL && e->gid == g->gid)
			free(qmap_remove(s->idem, k, kl));
	}
	if (more)
		pthread_cond_broadcast(&s->ready_cv);
}

/*
 * Writes the pending group (not empty; no write in progress) with one synced
 * write. Called with mu held, on the writer thread or on a caller's; mu is
 * released during the write, while the next group fills up.
 */
static void write_pending(struct queue_store *s)
{
	struct qgroup *g = s->pending;
	seal(s, g);
	struct qgroup *next = g == &s->groups[0] ? &s->groups[1] : &s->groups[0];
	next->gid = g->gid + 1;
	s->pending = next;
	s->writing = true;
	bool failed = s->failed_gid != 0;
	pthread_mutex_unlock(&s->mu);

	if (!failed)
		kv_batch_sort(g->b); /* items and their index entries, in key order */
	int64_t t0 = util_mono_us(); /* the synced write alone (stat_write_us) */
	int rc = failed ? -EIO : kv_write(s->kv, g->b, true);
	int64_t dt = util_mono_us() - t0;

	pthread_mutex_lock(&s->mu);
	apply(s, g, rc);
	s->stat_groups++;
	s->stat_group_ops += g->nops;
	s->stat_write_us += (uint64_t)dt;
	s->applied_gid = g->gid;
	group_reset(g);
	s->writing = false;
	pthread_cond_broadcast(&s->applied_cv[g->gid % 2]);
	/* Calls that joined the next group meanwhile did not wake the writer
	 * (a write was in progress): hand it over now. On the writer thread
	 * itself this finds no waiter and costs nothing. */
	if (!group_empty(s->pending) || s->stopping)
		pthread_cond_signal(&s->writer_cv);
}

static void *writer_main(void *arg)
{
	struct queue_store *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->writing || group_empty(s->pending)) {
			if (s->stopping && !s->writing && group_empty(s->pending))
				break;
			pthread_cond_wait(&s->writer_cv, &s->mu);
			continue;
		}
		write_pending(s);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int store_commit(struct queue_store *s, uint64_t gid)
{
	if (s->pending->gid == gid) {
		if (group_empty(s->pending))
			return 0;
		/* Nothing being written: write the group on this thread. A
		 * hand-over to the writer thread costs two thread switches
		 * (wake it, be woken by it), which is what a lone call at low
		 * load mostly waits for. When a write is in progress, its
		 * writer hands the group on once done (write_pending). */
		if (!s->writing)
			write_pending(s);
	}
	while (s->applied_gid < gid)
		pthread_cond_wait(&s->applied_cv[gid % 2], &s->mu);
	return s->failed_gid != 0 && s->failed_gid <= gid ? -EIO : 0;
}

int store_check(struct queue_store *s)
{
	return s->failed_gid != 0 || s->stopping ? -EIO : 0;
}

/* --- open and close --------------------------------------------------------------- */

static int recover(struct queue_store *s)
{
	struct kv_iter *it;
	int rc = kv_iter_create(s->kv, "Q", 1, "R", 1, &it);
	if (rc != 0)
		return rc;
	size_t nq = 0;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = kv_iter_key(it, &kl);
		const uint8_t *v = kv_iter_value(it, &vl);
		/* 'Q' tenant 0 queue 0 */
		const uint8_t *z = kl > 1 ? memchr(k + 1, 0, kl - 1) : NULL;
		if (z == NULL || k[kl - 1] != 0 || (size_t)(z - k) + 1 >= kl - 1) {
			log_error("queue: skipping a malformed queue record in the store");
			continue;
		}
		const char *tenant = (const char *)k + 1;
		const char *queue = (const char *)z + 1;
		struct qtenant *t = qmap_get(s->tenants, tenant, strlen(tenant));
		if (t == NULL)
			t = store_tenant_new(s, tenant);
		struct qqueue *q = store_queue_new(s, t, queue);
		if (!store_qstate_decode(v, vl, q)) {
			log_error("queue: the state of queue '%s' of tenant '%s' is unreadable; "
			          "it starts empty",
			          queue, tenant);
			q->head = q->tail = q->retired = 0;
			q->leased = q->delayed = q->dead = 0;
		}
		q->visible = q->tail;
		store_depth(s, q, (int64_t)(q->tail - q->head + q->leased + q->delayed));
		store_update_active(s, q);
		nq++;
	}
	rc = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rc != 0)
		return rc;

	void *v = NULL;
	size_t vl = 0;
	rc = kv_get(s->kv, "Mgseq", 5, &v, &vl);
	if (rc == 0 && vl == 8)
		s->gseq = util_get_be64(v);
	free(v);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	if (s->gseq == 0)
		s->gseq = 1;
	log_info("queue: recovered %zu queues of %u tenants, %llu items in flight", nq, s->ntenants,
	         (unsigned long long)s->depth);
	return 0;
}

static void fill_defaults(struct queue_store_options *o)
{
	if (o->max_depth_tenant == 0)
		o->max_depth_tenant = 1000000;
	if (o->max_depth_total == 0)
		o->max_depth_total = 10000000;
	if (o->max_queues_tenant == 0)
		o->max_queues_tenant = 1024;
	if (o->max_tenants == 0)
		o->max_tenants = 10000;
	if (o->idem_retention_ms <= 0)
		o->idem_retention_ms = 24 * 3600 * 1000;
	if (o->retry.max_attempts == 0)
		o->retry.max_attempts = 3;
	if (o->retry.max_attempts > QUEUE_ATTEMPTS_MAX)
		o->retry.max_attempts = QUEUE_ATTEMPTS_MAX;
	if (o->retry.base_ms == 0)
		o->retry.base_ms = 1000;
	if (o->retry.max_ms == 0)
		o->retry.max_ms = 60000;
	if (o->retry.max_ms < o->retry.base_ms)
		o->retry.max_ms = o->retry.base_ms;
	if (o->retry.jitter_percent == 0)
		o->retry.jitter_percent = 20;
	if (o->retry.jitter_percent > 100)
		o->retry.jitter_percent = 100;
	if (o->tick_ms <= 0)
		o->tick_ms = 50;
}

static void free_tenant(const void *k, size_t kl, void *v, void *arg)
{
	(void)k;
	(void)kl;
	(void)arg;
	struct qtenant *t = v;
	struct qqueue *q = t->queues;
	while (q != NULL) {
		struct qqueue *next = q->next;
		free(q->name);
		free(q->key);
		free(q);
		q = next;
	}
	free(t->name);
	free(t);
}

static void free_idem(const void *k, size_t kl, void *v, void *arg)
{
	(void)k;
	(void)kl;
	(void)arg;
	free(v);
}

int queue_store_open(const struct queue_store_options *opt, struct queue_store **out)
{
	struct queue_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->opt = *opt;
	fill_defaults(&s->opt);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->dead_mu, NULL);
	pthread_cond_init(&s->writer_cv, NULL);
	pthread_cond_init(&s->applied_cv[0], NULL);
	pthread_cond_init(&s->applied_cv[1], NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->ready_cv, &ca);
	pthread_cond_init(&s->maint_cv, &ca);
	pthread_condattr_destroy(&ca);
	s->tenants = qmap_create();
	s->queues = qmap_create();
	s->leases = qmap_create();
	s->idem = qmap_create();
	qlink_init(&s->active);
	for (int i = 0; i < 2; i++)
		s->groups[i].b = kv_batch_create();
	s->pending = &s->groups[0];
	s->pending->gid = 1;

	struct kv_options ko = {.cache_bytes = s->opt.cache_bytes};
	int rc = kv_open(s->opt.dir, &ko, &s->kv);
	if (rc == 0)
		rc = recover(s);
	if (rc == 0 && pthread_create(&s->writer, NULL, writer_main, s) != 0)
		rc = -EAGAIN;
	if (rc == 0)
		pthread_setname_np(s->writer, "queue:writer"); /* for perf and top */
	if (rc == 0) {
		rc = store_maint_start(s);
		if (rc != 0) {
			pthread_mutex_lock(&s->mu);
			s->stopping = true;
			pthread_cond_broadcast(&s->writer_cv);
			pthread_mutex_unlock(&s->mu);
			pthread_join(s->writer, NULL);
		}
	}
	if (rc != 0) {
		queue_store_close(s);
		return rc;
	}
	s->threads = true;
	*out = s;
	return 0;
}

void queue_store_close(struct queue_store *s)
{
	if (s == NULL)
		return;
	if (s->threads) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_broadcast(&s->maint_cv);
		pthread_cond_broadcast(&s->ready_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->maint, NULL);
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->writer_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
	}
	kv_close(s->kv);
	qmap_each(s->tenants, free_tenant, NULL);
	qmap_destroy(s->tenants);
	qmap_destroy(s->queues);
	qmap_destroy(s->leases);
	qmap_each(s->idem, free_idem, NULL);
	qmap_destroy(s->idem);
	for (int i = 0; i < 2; i++)
		group_release(&s->groups[i]);
	pthread_cond_destroy(&s->writer_cv);
	pthread_cond_destroy(&s->applied_cv[0]);
	pthread_cond_destroy(&s->applied_cv[1]);
	pthread_cond_destroy(&s->ready_cv);
	pthread_cond_destroy(&s->maint_cv);
	pthread_mutex_destroy(&s->dead_mu);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

bool queue_store_healthy(struct queue_store *s)
{
	pthread_mutex_lock(&s->mu);
	bool ok = s->failed_gid == 0;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

const struct queue_store_options *queue_store_options(const struct queue_store *s)
{
	return &s->opt;
}
