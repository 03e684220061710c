/*
 * store_enqueue: accepting items (all or none, after the duplicate and limit
 * checks), follow-ups of acks, and the per-queue stats.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

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

/* Packs a new item for storage: its attempts and history start empty and
 * it is stamped with the time it was accepted. Malloc'ed. */
static uint8_t *pack_new(const Noetl__Item *in, int64_t now, size_t *len)
{
	Noetl__Item it = *in;
	it.attempt = 0;
	it.n_history = 0;
	it.history = NULL;
	it.seq = 0;
	it.enqueued_ms = now;
	return store_pack(&it, len);
}

/* Adds one new item (not a duplicate), packed, to the pending group. */
static void add_item(struct queue_store *s, struct qqueue *q, const Noetl__Item *it,
                     const uint8_t *packed, size_t plen, int64_t now)
{
	store_append(s, q, packed, plen, it->not_before_ms, now);
	q->enqueued++;
	store_depth(s, q, 1);
	if (it->idempotency_key != NULL && it->idempotency_key[0] != '\0')
		store_idem_add(s, it->tenant, it->idempotency_key, it->id, now);
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
	/* Encode before taking the lock: every caller waits on it. */
	int64_t now = util_now_ms();
	uint8_t **packed = calloc(n + 1, sizeof(*packed));
	size_t *plen = calloc(n + 1, sizeof(*plen));
	if (packed == NULL || plen == NULL) {
		free(packed);
		free(plen);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		packed[i] = pack_new(items[i], now, &plen[i]);

	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	if (rc != 0)
		goto out;
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
		add_item(s, q, items[i], packed[i], plen[i], now);
		added = true;
	}
	uint64_t gid = added ? s->pending->gid : wait;
	if (gid != 0)
		rc = store_commit(s, gid > wait ? gid : wait);
out:
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		free(packed[i]);
		if (rc == 0 && !res[i].duplicate)
			res[i].id = util_xstrdup(items[i]->id);
		if (rc != 0) {
			free(res[i].id);
			res[i].id = NULL;
			res[i].duplicate = false;
		}
	}
	free(packed);
	free(plen);
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
	if (rc == 0) {
		size_t plen;
		uint8_t *packed = pack_new(it, now, &plen);
		add_item(s, q, it, packed, plen, now);
		free(packed);
	}
	return rc;
}

/* --- stats ----------------------------------------------------------------------------- */

static int cmp_stat(const void *a, const void *b)
{
	const struct queue_store_stat *x = a, *y = b;
	int c = strcmp(x->tenant, y->tenant);
	return c != 0 ? c : strcmp(x->queue, y->queue);
}

/* Age of the oldest ready item of tenant/queue, the one at seq head (when
 * it was first accepted). Read without the store's lock: if a lease takes it
 * meanwhile, the age is merely a moment old. */
static int64_t oldest_age(struct queue_store *s, const char *tenant, const char *queue,
                          uint64_t head, int64_t now)
{
	uint8_t k[KEY_MAX];
	size_t tl = strlen(tenant), ql = strlen(queue);
	k[0] = 'R';
	memcpy(k + 1, tenant, tl + 1);
	memcpy(k + 2 + tl, queue, ql + 1);
	util_put_be64(k + 3 + tl + ql, head);
	void *v = NULL;
	size_t vl = 0;
	if (kv_get(s->kv, k, 11 + tl + ql, &v, &vl) != 0)
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
	v = calloc(cap + 1, sizeof(*v));
	struct qqueue **qs = calloc(cap + 1, sizeof(*qs));
	uint64_t *heads = calloc(cap + 1, sizeof(*heads)); /* head seq, if items are ready */
	if (v == NULL || qs == NULL || heads == NULL) {
		pthread_mutex_unlock(&s->mu);
		free(v);
		free(qs);
		free(heads);
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
		heads[i] = q->head < q->visible ? q->head : UINT64_MAX; /* age: below */
		st->enqueued = q->enqueued;
		st->acked = q->acked;
		st->failed = q->failed;
		st->expired = q->expired;
	}
	pthread_mutex_unlock(&s->mu);
	free(qs);
	for (size_t i = 0; i < len; i++)
		if (heads[i] != UINT64_MAX)
			v[i].oldest_age_ms = oldest_age(s, v[i].tenant, v[i].queue, heads[i], now);
	free(heads);
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
	out->read_us = s->stat_read_us;
	out->read_items = s->stat_read_items;
	out->released = s->stat_released;
	pthread_mutex_unlock(&s->mu);
}
