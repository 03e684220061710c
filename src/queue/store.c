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
 * The writer thread takes the pending group, adds the state records of the
 * queues it touched (so positions and items are always written together),
 * and writes it with one synced write while the next group fills up. Callers
 * wait until their group is written and only then reply. Groups are written
 * in order, so the store on disk is always a prefix of the order in which
 * changes were made.
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

#define QSTATE_VERSION 1
#define QSTATE_FIELDS  10
#define QSTATE_LEN     (1 + 8 * QSTATE_FIELDS)

/* --- lists ------------------------------------------------------------------ */

void qlink_init(struct qlink *l)
{
	l->prev = l->next = l;
}

bool qlink_linked(const struct qlink *l)
{
	return l->next != l;
}

void qlink_remove(struct qlink *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	qlink_init(l);
}

void qlink_push_back(struct qlink *head, struct qlink *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

/* --- keys --------------------------------------------------------------------- */

size_t key_queue(uint8_t *k, const struct qqueue *q)
{
	k[0] = 'Q';
	memcpy(k + 1, q->key, q->klen);
	return 1 + q->klen;
}

size_t key_ready(uint8_t *k, const struct qqueue *q, uint64_t seq)
{
	k[0] = 'R';
	memcpy(k + 1, q->key, q->klen);
	util_put_be64(k + 1 + q->klen, seq);
	return 1 + q->klen + 8;
}

size_t key_dead(uint8_t *k, const struct qqueue *q, uint64_t id)
{
	k[0] = 'D';
	memcpy(k + 1, q->key, q->klen);
	util_put_be64(k + 1 + q->klen, id);
	return 1 + q->klen + 8;
}

size_t key_lease(uint8_t *k, uint64_t lease_id)
{
	k[0] = 'l';
	util_put_be64(k + 1, lease_id);
	return 9;
}

size_t key_expiry(uint8_t *k, int64_t ms, uint64_t lease_id)
{
	k[0] = 'x';
	util_put_be64(k + 1, (uint64_t)(ms < 0 ? 0 : ms));
	util_put_be64(k + 9, lease_id);
	return 17;
}

size_t key_delayed(uint8_t *k, int64_t ms, uint64_t id)
{
	k[0] = 'd';
	util_put_be64(k + 1, (uint64_t)(ms < 0 ? 0 : ms));
	util_put_be64(k + 9, id);
	return 17;
}

size_t key_idem(uint8_t *k, const char *tenant, const char *ikey)
{
	size_t tl = strlen(tenant), il = strlen(ikey);
	k[0] = 'i';
	memcpy(k + 1, tenant, tl);
	k[1 + tl] = 0;
	memcpy(k + 2 + tl, ikey, il);
	return 2 + tl + il;
}

/* --- queue state records ------------------------------------------------------ */

static void qstate_encode(uint8_t *v, const struct qqueue *q)
{
	const uint64_t f[QSTATE_FIELDS] = {q->head, q->tail,     q->retired, q->leased, q->delayed,
	                                   q->dead, q->enqueued, q->acked,   q->failed, q->expired};
	v[0] = QSTATE_VERSION;
	for (int i = 0; i < QSTATE_FIELDS; i++)
		util_put_be64(v + 1 + 8 * i, f[i]);
}

static bool qstate_decode(const uint8_t *v, size_t len, struct qqueue *q)
{
	if (len < QSTATE_LEN || v[0] != QSTATE_VERSION)
		return false;
	uint64_t *f[QSTATE_FIELDS] = {&q->head, &q->tail,     &q->retired, &q->leased, &q->delayed,
	                              &q->dead, &q->enqueued, &q->acked,   &q->failed, &q->expired};
	for (int i = 0; i < QSTATE_FIELDS; i++)
		*f[i] = util_get_be64(v + 1 + 8 * i);
	return q->head <= q->tail && q->retired <= q->head;
}

/* --- the in-memory index --------------------------------------------------------- */

static struct qtenant *tenant_new(struct queue_store *s, const char *name)
{
	struct qtenant *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	t->name = util_xstrdup(name);
	qlink_init(&t->active);
	qlink_init(&t->active_queues);
	qmap_put(s->tenants, name, strlen(name), t, NULL);
	s->ntenants++;
	return t;
}

static struct qqueue *queue_new(struct queue_store *s, struct qtenant *t, const char *name)
{
	struct qqueue *q = calloc(1, sizeof(*q));
	if (q == NULL)
		abort();
	size_t tl = strlen(t->name), nl = strlen(name);
	q->t = t;
	q->name = util_xstrdup(name);
	q->klen = tl + nl + 2;
	q->key = malloc(q->klen);
	if (q->key == NULL)
		abort();
	memcpy(q->key, t->name, tl + 1);
	memcpy(q->key + tl + 1, name, nl + 1);
	q->retired_ms = util_now_ms();
	qlink_init(&q->active);
	q->next = t->queues;
	t->queues = q;
	t->nqueues++;
	qmap_put(s->queues, q->key, q->klen, q, NULL);
	return q;
}

struct qqueue *store_find_qkey(struct queue_store *s, const uint8_t *qkey, size_t klen)
{
	return qmap_get(s->queues, qkey, klen);
}

struct qqueue *store_find_queue(struct queue_store *s, const char *tenant, const char *queue)
{
	uint8_t k[QKEY_MAX];
	size_t tl = strlen(tenant), ql = strlen(queue);
	if (tl > QUEUE_NAME_MAX || ql > QUEUE_NAME_MAX)
		return NULL;
	memcpy(k, tenant, tl + 1);
	memcpy(k + tl + 1, queue, ql + 1);
	return store_find_qkey(s, k, tl + ql + 2);
}

int store_get_queue(struct queue_store *s, const char *tenant, const char *queue,
                    struct qqueue **out, char *err, size_t errlen)
{
	struct qqueue *q = store_find_queue(s, tenant, queue);
	if (q != NULL) {
		*out = q;
		return 0;
	}
	struct qtenant *t = qmap_get(s->tenants, tenant, strlen(tenant));
	if (t == NULL && s->ntenants >= s->opt.max_tenants) {
		if (err != NULL)
			snprintf(err, errlen,
			         "the queue service holds %u tenants, its limit; "
			         "tenant '%s' cannot be added",
			         s->opt.max_tenants, tenant);
		return -EMLINK;
	}
	if (t != NULL && t->nqueues >= s->opt.max_queues_tenant) {
		if (err != NULL)
			snprintf(err, errlen,
			         "tenant '%s' has %u queues, its limit; queue '%s' "
			         "cannot be added",
			         tenant, s->opt.max_queues_tenant, queue);
		return -EMLINK;
	}
	if (t == NULL)
		t = tenant_new(s, tenant);
	*out = queue_new(s, t, queue);
	return 0;
}

void store_dirty(struct queue_store *s, struct qqueue *q)
{
	struct qgroup *g = s->pending;
	if (q->dirty_gid == g->gid)
		return;
	if (g->ndirty == g->capdirty) {
		g->capdirty = g->capdirty ? 2 * g->capdirty : 16;
		g->dirty = realloc(g->dirty, g->capdirty * sizeof(*g->dirty));
		g->dirty_tail = realloc(g->dirty_tail, g->capdirty * sizeof(*g->dirty_tail));
		if (g->dirty == NULL || g->dirty_tail == NULL)
			abort();
	}
	g->dirty[g->ndirty++] = q;
	q->dirty_gid = g->gid;
}

void store_depth(struct queue_store *s, struct qqueue *q, int64_t delta)
{
	q->t->depth += (uint64_t)delta;
	s->depth += (uint64_t)delta;
}

void store_update_active(struct queue_store *s, struct qqueue *q)
{
	struct qtenant *t = q->t;
	if (q->visible > q->head) {
		if (!qlink_linked(&q->active))
			qlink_push_back(&t->active_queues, &q->active);
		if (!qlink_linked(&t->active))
			qlink_push_back(&s->active, &t->active);
	} else {
		if (qlink_linked(&q->active))
			qlink_remove(&q->active);
		if (!qlink_linked(&t->active_queues) && qlink_linked(&t->active))
			qlink_remove(&t->active);
	}
}

uint64_t store_next_id(struct queue_store *s)
{
	s->pending->gseq = true;
	return s->gseq++;
}

uint8_t *store_pack(const Noetl__Item *item, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(&item->base);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		abort();
	*len = protobuf_c_message_pack(&item->base, buf);
	return buf;
}

void store_append(struct queue_store *s, struct qqueue *q, const uint8_t *packed, size_t plen,
                  int64_t not_before_ms, int64_t now)
{
	uint8_t k[KEY_MAX];
	if (not_before_ms > now) {
		size_t vlen = 2 + q->klen + plen;
		uint8_t *v = malloc(vlen);
		if (v == NULL)
			abort();
		v[0] = (uint8_t)(q->klen >> 8);
		v[1] = (uint8_t)q->klen;
		memcpy(v + 2, q->key, q->klen);
		memcpy(v + 2 + q->klen, packed, plen);
		size_t kl = key_delayed(k, not_before_ms, store_next_id(s));
		kv_batch_put(s->pending->b, k, kl, v, vlen);
		free(v);
		q->delayed++;
	} else {
		size_t kl = key_ready(k, q, q->tail++);
		kv_batch_put(s->pending->b, k, kl, packed, plen);
	}
	s->pending->nops++;
	store_dirty(s, q);
}

void store_bury(struct queue_store *s, struct qqueue *q, const uint8_t *packed, size_t plen)
{
	uint8_t k[KEY_MAX];
	size_t kl = key_dead(k, q, store_next_id(s));
	kv_batch_put(s->pending->b, k, kl, packed, plen);
	q->dead++;
	s->pending->nops++;
	store_dirty(s, q);
}

/* --- in-flight maps ------------------------------------------------------------- */

bool store_idem_seen(struct queue_store *s, const char *tenant, const char *ikey, int64_t now,
                     char **id, uint64_t *gid)
{
	uint8_t k[KEY_MAX];
	size_t kl = key_idem(k, tenant, ikey);
	struct qidem *e = qmap_get(s->idem, k, kl);
	if (e != NULL) {
		*id = util_xstrdup(e->id);
		*gid = e->gid;
		return true;
	}
	void *v = NULL;
	size_t vlen = 0;
	if (kv_get(s->kv, k, kl, &v, &vlen) != 0)
		return false;
	bool seen = vlen >= 8 && (int64_t)util_get_be64(v) + s->opt.idem_retention_ms > now;
	if (seen) {
		*id = util_xstrdup((char *)v + 8); /* kv_get NUL-terminates */
		*gid = 0;
	}
	free(v);
	return seen;
}

void store_idem_add(struct queue_store *s, const char *tenant, const char *ikey, const char *id,
                    int64_t now)
{
	struct qgroup *g = s->pending;
	uint8_t k[KEY_MAX], j[KEY_MAX];
	size_t kl = key_idem(k, tenant, ikey);
	size_t idl = strlen(id);
	uint8_t *v = malloc(8 + idl);
	if (v == NULL)
		abort();
	util_put_be64(v, (uint64_t)now);
	memcpy(v + 8, id, idl);
	kv_batch_put(g->b, k, kl, v, 8 + idl);
	free(v);
	/* the index by age: 'j' created tenant 0 key */
	j[0] = 'j';
	util_put_be64(j + 1, (uint64_t)now);
	memcpy(j + 9, k + 1, kl - 1);
	kv_batch_put(g->b, j, kl + 8, "", 0);

	struct qidem *e = malloc(sizeof(*e) + idl + 1);
	if (e == NULL)
		abort();
	e->gid = g->gid;
	memcpy(e->id, id, idl + 1);
	void *old = NULL;
	qmap_put(s->idem, k, kl, e, &old);
	free(old);
	if (g->nidem == g->capidem) {
		g->capidem = g->capidem ? 2 * g->capidem : 16;
		g->idem = realloc(g->idem, g->capidem * sizeof(*g->idem));
		if (g->idem == NULL)
			abort();
	}
	char *copy = malloc(sizeof(size_t) + kl);
	if (copy == NULL)
		abort();
	memcpy(copy, &kl, sizeof(size_t));
	memcpy(copy + sizeof(size_t), k, kl);
	g->idem[g->nidem++] = copy;
}

void store_lease_touch(struct queue_store *s, uint64_t lease_id, bool finished)
{
	struct qgroup *g = s->pending;
	uintptr_t old = (uintptr_t)qmap_get(s->leases, &lease_id, sizeof(lease_id));
	bool fin = finished || (old & 1);
	qmap_put(s->leases, &lease_id, sizeof(lease_id), (void *)(uintptr_t)((g->gid << 1) | fin),
	         NULL);
	if (g->nleases == g->capleases) {
		g->capleases = g->capleases ? 2 * g->capleases : 64;
		g->leases = realloc(g->leases, g->capleases * sizeof(*g->leases));
		if (g->leases == NULL)
			abort();
	}
	g->leases[g->nleases++] = lease_id;
}

int store_lease_state(struct queue_store *s, uint64_t lease_id)
{
	uintptr_t v = (uintptr_t)qmap_get(s->leases, &lease_id, sizeof(lease_id));
	return v == 0 ? -1 : (int)(v & 1);
}

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
		qstate_encode(v, q);
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

static void *writer_main(void *arg)
{
	struct queue_store *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct qgroup *g = s->pending;
		if (group_empty(g)) {
			if (s->stopping)
				break;
			pthread_cond_wait(&s->writer_cv, &s->mu);
			continue;
		}
		seal(s, g);
		struct qgroup *next = g == &s->groups[0] ? &s->groups[1] : &s->groups[0];
		next->gid = g->gid + 1;
		s->pending = next;
		s->writing = true;
		bool failed = s->failed_gid != 0;
		pthread_mutex_unlock(&s->mu);

		int64_t t0 = util_mono_us();
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
		pthread_cond_broadcast(&s->applied_cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int store_commit(struct queue_store *s, uint64_t gid)
{
	if (s->pending->gid == gid) {
		if (group_empty(s->pending))
			return 0;
		pthread_cond_signal(&s->writer_cv);
	}
	while (s->applied_gid < gid)
		pthread_cond_wait(&s->applied_cv, &s->mu);
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
			t = tenant_new(s, tenant);
		struct qqueue *q = queue_new(s, t, queue);
		if (!qstate_decode(v, vl, q)) {
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
	pthread_cond_init(&s->applied_cv, NULL);
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
	pthread_cond_destroy(&s->applied_cv);
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

/* --- enqueue ------------------------------------------------------------------------ */

/* What an enqueue adds to one tenant, counted before anything changes. */
struct enq_plan {
	uint64_t items;  /* new items */
	uint32_t queues; /* new queues */
	bool new_tenant; /* the tenant does not exist yet */
};

static void free_plan(const void *k, size_t kl, void *v, void *arg)
{
	(void)k;
	(void)kl;
	(void)arg;
	free(v);
}

/* Checks the limits for the planned additions; 0, -EDQUOT or -EMLINK. */
static int check_limits(struct queue_store *s, struct qmap *plans, Noetl__Item *const *items,
                        size_t n, const struct queue_store_enqueued *res, char *err, size_t errlen)
{
	uint64_t total = 0;
	uint32_t new_tenants = 0;
	for (size_t i = 0; i < n; i++) {
		if (res[i].duplicate)
			continue;
		const char *tn = items[i]->tenant;
		struct enq_plan *p = qmap_get(plans, tn, strlen(tn));
		if (p == NULL)
			continue; /* counted */
		struct qtenant *t = qmap_get(s->tenants, tn, strlen(tn));
		uint64_t depth = t != NULL ? t->depth : 0;
		uint32_t nq = t != NULL ? t->nqueues : 0;
		if (depth + p->items > s->opt.max_depth_tenant) {
			snprintf(err, errlen,
			         "tenant '%s' has %llu items queued and its limit is "
			         "%llu; retry later",
			         tn, (unsigned long long)depth,
			         (unsigned long long)s->opt.max_depth_tenant);
			return -EDQUOT;
		}
		if (nq + p->queues > s->opt.max_queues_tenant) {
			snprintf(err, errlen,
			         "tenant '%s' would have more than %u queues, its limit", tn,
			         s->opt.max_queues_tenant);
			return -EMLINK;
		}
		total += p->items;
		new_tenants += p->new_tenant;
		free(qmap_remove(plans, tn, strlen(tn)));
	}
	if (s->depth + total > s->opt.max_depth_total) {
		snprintf(err, errlen,
		         "the queue service holds %llu items and its limit is %llu; "
		         "retry later",
		         (unsigned long long)s->depth, (unsigned long long)s->opt.max_depth_total);
		return -EDQUOT;
	}
	if (s->ntenants + new_tenants > s->opt.max_tenants) {
		snprintf(err, errlen,
		         "the queue service would hold more than %u tenants, its limit",
		         s->opt.max_tenants);
		return -EMLINK;
	}
	return 0;
}

/* Decides duplicates and counts what the request adds. Returns the group
 * that must be written before duplicates may be reported. */
static uint64_t plan_enqueue(struct queue_store *s, Noetl__Item *const *items, size_t n,
                             struct queue_store_enqueued *res, struct qmap *plans, int64_t now)
{
	struct qmap *keys = qmap_create(); /* idempotency keys of this request -> index+1 */
	struct qmap *newq = qmap_create(); /* queues this request creates */
	uint64_t wait = 0;
	for (size_t i = 0; i < n; i++) {
		const Noetl__Item *it = items[i];
		const char *ik = it->idempotency_key;
		if (ik != NULL && ik[0] != '\0') {
			uint8_t k[KEY_MAX];
			size_t kl = key_idem(k, it->tenant, ik);
			uintptr_t first = (uintptr_t)qmap_get(keys, k, kl);
			uint64_t gid = 0;
			if (first != 0) {
				res[i].duplicate = true;
				res[i].id = util_xstrdup(items[first - 1]->id);
				continue;
			}
			if (store_idem_seen(s, it->tenant, ik, now, &res[i].id, &gid)) {
				res[i].duplicate = true;
				wait = gid > wait ? gid : wait;
				continue;
			}
			qmap_put(keys, k, kl, (void *)(uintptr_t)(i + 1), NULL);
		}
		struct enq_plan *p = qmap_get(plans, it->tenant, strlen(it->tenant));
		if (p == NULL) {
			p = calloc(1, sizeof(*p));
			if (p == NULL)
				abort();
			p->new_tenant =
			        qmap_get(s->tenants, it->tenant, strlen(it->tenant)) == NULL;
			qmap_put(plans, it->tenant, strlen(it->tenant), p, NULL);
		}
		p->items++;
		if (store_find_queue(s, it->tenant, it->queue) == NULL) {
			uint8_t qk[QKEY_MAX];
			size_t tl = strlen(it->tenant), ql = strlen(it->queue);
			memcpy(qk, it->tenant, tl + 1);
			memcpy(qk + tl + 1, it->queue, ql + 1);
			if (qmap_get(newq, qk, tl + ql + 2) == NULL) {
				qmap_put(newq, qk, tl + ql + 2, p, NULL);
				p->queues++;
			}
		}
	}
	qmap_destroy(keys);
	qmap_destroy(newq);
	return wait;
}

/* Adds one new item (not a duplicate) to the pending group. */
static void add_item(struct queue_store *s, struct qqueue *q, const Noetl__Item *in, int64_t now)
{
	Noetl__Item it = *in;
	it.attempt = 0;
	it.n_history = 0;
	it.history = NULL;
	it.seq = 0;
	it.enqueued_ms = now;
	size_t plen;
	uint8_t *packed = store_pack(&it, &plen);
	store_append(s, q, packed, plen, it.not_before_ms, now);
	free(packed);
	q->enqueued++;
	store_depth(s, q, 1);
	if (it.idempotency_key != NULL && it.idempotency_key[0] != '\0')
		store_idem_add(s, it.tenant, it.idempotency_key, it.id, now);
}

int queue_store_enqueue(struct queue_store *s, Noetl__Item *const *items, size_t n,
                        struct queue_store_enqueued *res, char *err, size_t errlen)
{
	char ebuf[256];
	if (err == NULL) {
		err = ebuf;
		errlen = sizeof(ebuf);
	}
	memset(res, 0, n * sizeof(*res));
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	if (rc != 0)
		goto out;
	int64_t now = util_now_ms();
	struct qmap *plans = qmap_create();
	uint64_t wait = plan_enqueue(s, items, n, res, plans, now);
	rc = check_limits(s, plans, items, n, res, err, errlen);
	qmap_each(plans, free_plan, NULL);
	qmap_destroy(plans);
	if (rc != 0)
		goto out;
	bool added = false;
	for (size_t i = 0; i < n; i++) {
		if (res[i].duplicate)
			continue;
		struct qqueue *q;
		rc = store_get_queue(s, items[i]->tenant, items[i]->queue, &q, err, errlen);
		if (rc != 0) /* checked above; cannot happen */
			goto out;
		add_item(s, q, items[i], now);
		res[i].id = util_xstrdup(items[i]->id);
		added = true;
	}
	uint64_t gid = added ? s->pending->gid : wait;
	if (gid != 0)
		rc = store_commit(s, gid > wait ? gid : wait);
out:
	pthread_mutex_unlock(&s->mu);
	if (rc != 0) {
		for (size_t i = 0; i < n; i++) {
			free(res[i].id);
			res[i].id = NULL;
			res[i].duplicate = false;
		}
	}
	return rc;
}

int store_add_follow_up(struct queue_store *s, const Noetl__Item *it, int64_t now, char *err,
                        size_t errlen)
{
	const char *ik = it->idempotency_key;
	if (ik != NULL && ik[0] != '\0') {
		char *id = NULL;
		uint64_t gid = 0;
		if (store_idem_seen(s, it->tenant, ik, now, &id, &gid)) {
			free(id);
			return 0;
		}
	}
	struct qqueue *q;
	int rc = store_get_queue(s, it->tenant, it->queue, &q, err, errlen);
	if (rc == 0)
		add_item(s, q, it, now);
	return rc;
}

/* --- stats ----------------------------------------------------------------------------- */

static int cmp_stat(const void *a, const void *b)
{
	const struct queue_store_stat *x = a, *y = b;
	int c = strcmp(x->tenant, y->tenant);
	return c != 0 ? c : strcmp(x->queue, y->queue);
}

/* Age of q's oldest ready item (its first acceptance). */
static int64_t oldest_age(struct queue_store *s, struct qqueue *q, int64_t now)
{
	if (q->head >= q->visible)
		return 0;
	uint8_t k[KEY_MAX];
	void *v = NULL;
	size_t vl = 0;
	if (kv_get(s->kv, k, key_ready(k, q, q->head), &v, &vl) != 0)
		return 0;
	int64_t age = 0;
	Noetl__Item *it = noetl__item__unpack(NULL, vl, v);
	if (it != NULL && it->enqueued_ms > 0 && it->enqueued_ms < now)
		age = now - it->enqueued_ms;
	if (it != NULL)
		noetl__item__free_unpacked(it, NULL);
	free(v);
	return age;
}

struct collect {
	struct qqueue **qs; /* room for every queue */
	size_t len;         /* filled */
};

static void collect_queue(const void *k, size_t kl, void *val, void *arg)
{
	(void)k;
	(void)kl;
	struct collect *c = arg;
	c->qs[c->len++] = val;
}

int queue_store_stats(struct queue_store *s, const char *tenant, struct queue_store_stat **out,
                      size_t *n)
{
	pthread_mutex_lock(&s->mu);
	size_t cap = 0, len = 0;
	struct queue_store_stat *v = NULL;
	int64_t now = util_now_ms();
	bool all = tenant == NULL || tenant[0] == '\0';
	cap = all ? qmap_count(s->queues) : 0;
	struct qtenant *only = all ? NULL : qmap_get(s->tenants, tenant, strlen(tenant));
	if (only != NULL)
		cap = only->nqueues;
	v = calloc(cap > 0 ? cap : 1, sizeof(*v));
	if (v == NULL) {
		pthread_mutex_unlock(&s->mu);
		return -ENOMEM;
	}
	struct qqueue **qs = calloc(cap > 0 ? cap : 1, sizeof(*qs));
	if (qs == NULL) {
		free(v);
		pthread_mutex_unlock(&s->mu);
		return -ENOMEM;
	}
	if (only != NULL) {
		for (struct qqueue *q = only->queues; q != NULL; q = q->next)
			qs[len++] = q;
	} else if (all) {
		struct collect c = {qs, 0};
		qmap_each(s->queues, collect_queue, &c);
		len = c.len;
	}
	for (size_t i = 0; i < len; i++) {
		struct qqueue *q = qs[i];
		struct queue_store_stat *st = &v[i];
		snprintf(st->tenant, sizeof(st->tenant), "%s", q->t->name);
		snprintf(st->queue, sizeof(st->queue), "%s", q->name);
		st->ready = q->tail - q->head;
		st->leased = q->leased;
		st->delayed = q->delayed;
		st->dead = q->dead;
		st->oldest_age_ms = oldest_age(s, q, now);
		st->enqueued = q->enqueued;
		st->acked = q->acked;
		st->failed = q->failed;
		st->expired = q->expired;
	}
	pthread_mutex_unlock(&s->mu);
	free(qs);
	qsort(v, len, sizeof(*v), cmp_stat);
	*out = v;
	*n = len;
	return 0;
}

void queue_store_totals(struct queue_store *s, struct queue_store_totals *out)
{
	pthread_mutex_lock(&s->mu);
	out->depth = s->depth;
	out->groups = s->stat_groups;
	out->group_ops = s->stat_group_ops;
	out->write_us = s->stat_write_us;
	pthread_mutex_unlock(&s->mu);
}
