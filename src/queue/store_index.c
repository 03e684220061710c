/*
 * store_index: the queue store's in-memory index and the pieces every store
 * file uses: key encoding, queue state records, tenants and queues by name,
 * the round-robin lists of queues with leasable items, appending items to a
 * queue, and the in-flight maps of unwritten leases and idempotency keys.
 * Everything here runs under the store's mutex.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

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

void store_qstate_encode(uint8_t *v, const struct qqueue *q)
{
	const uint64_t f[QSTATE_FIELDS] = {q->head, q->tail,     q->retired, q->leased, q->delayed,
	                                   q->dead, q->enqueued, q->acked,   q->failed, q->expired};
	v[0] = QSTATE_VERSION;
	for (int i = 0; i < QSTATE_FIELDS; i++)
		util_put_be64(v + 1 + 8 * i, f[i]);
}

bool store_qstate_decode(const uint8_t *v, size_t len, struct qqueue *q)
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

struct qtenant *store_tenant_new(struct queue_store *s, const char *name)
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

struct qqueue *store_queue_new(struct queue_store *s, struct qtenant *t, const char *name)
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
		t = store_tenant_new(s, tenant);
	*out = store_queue_new(s, t, queue);
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
