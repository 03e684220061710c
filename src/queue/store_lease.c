/*
 * store_lease: leasing ready items, and what ends a lease: ack, nack, expiry
 * (and extend, which moves its end).
 *
 * A lease is a record 'l' lease_id holding the item (attempt counted) and the
 * lease's expiry, plus an index key 'x' expiry lease_id that the maintenance
 * thread scans for leases that ran out. Both are written in the same group as
 * the head move that took the item from the ready range, so a crash either
 * keeps the item ready or keeps the lease; after a restart an unexpired lease
 * simply runs out and the item becomes ready again (at-least-once).
 *
 * The lease token is the lease id (store-wide, never reused: the next id is
 * written with every group that takes one) and a random nonce, so a token of
 * a finished lease, or a made-up one, finds nothing.
 *
 * Fairness: a lease call plans how many items to take from each queue before
 * reading any. Tenants with leasable items form a round-robin list; each
 * round gives every tenant an equal share of what is still wanted, and
 * within a tenant each queue an equal share of the tenant's; every tenant or
 * queue served moves to the back of its list, so the next call starts with
 * the next one. One tenant's backlog therefore cannot starve another.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

#define LEASE_HDR 18 /* expiry(8) nonce(8) qklen(2) */

bool store_parse_lease(const uint8_t *v, size_t len, struct qlease *out)
{
	if (len < LEASE_HDR)
		return false;
	size_t qkl = ((size_t)v[16] << 8) | v[17];
	if (len < LEASE_HDR + qkl || qkl < 4)
		return false;
	out->expires_ms = (int64_t)util_get_be64(v);
	memcpy(out->nonce, v + 8, 8);
	out->qkey = v + LEASE_HDR;
	out->qklen = qkl;
	out->item = v + LEASE_HDR + qkl;
	out->ilen = len - LEASE_HDR - qkl;
	return true;
}

/* Builds a lease value; malloc'ed. */
static uint8_t *lease_value(int64_t expires_ms, const uint8_t nonce[8], const struct qqueue *q,
                            const uint8_t *item, size_t ilen, size_t *len)
{
	size_t n = LEASE_HDR + q->klen + ilen;
	uint8_t *v = malloc(n);
	if (v == NULL)
		abort();
	util_put_be64(v, (uint64_t)expires_ms);
	memcpy(v + 8, nonce, 8);
	v[16] = (uint8_t)(q->klen >> 8);
	v[17] = (uint8_t)q->klen;
	memcpy(v + LEASE_HDR, q->key, q->klen);
	memcpy(v + LEASE_HDR + q->klen, item, ilen);
	*len = n;
	return v;
}

void store_retry_fill(const struct queue_store *s, const Noetl__RetryPolicy *p,
                      struct queue_retry *out)
{
	*out = s->opt.retry;
	if (p == NULL)
		return;
	if (p->max_attempts > 0)
		out->max_attempts = p->max_attempts;
	if (p->backoff_base_ms > 0)
		out->base_ms = p->backoff_base_ms;
	if (p->backoff_max_ms > 0)
		out->max_ms = p->backoff_max_ms;
	if (p->jitter_percent > 0)
		out->jitter_percent = p->jitter_percent;
	if (out->max_attempts > QUEUE_ATTEMPTS_MAX)
		out->max_attempts = QUEUE_ATTEMPTS_MAX;
	if (out->max_ms < out->base_ms)
		out->max_ms = out->base_ms;
	if (out->jitter_percent > 100)
		out->jitter_percent = 100;
}

int64_t queue_store_backoff_ms(const struct queue_retry *p, uint32_t attempt, double r)
{
	double d = p->base_ms;
	for (uint32_t i = 1; i < attempt && d < p->max_ms; i++)
		d *= 2;
	if (d > p->max_ms)
		d = p->max_ms;
	d *= 1.0 + (double)p->jitter_percent / 100.0 * (2.0 * r - 1.0);
	if (d > p->max_ms)
		d = p->max_ms;
	return d < 1 ? 1 : (int64_t)d;
}

/* Cuts a reason to QUEUE_REASON_MAX bytes without splitting a UTF-8
 * character; returns its length. */
static size_t reason_len(const char *r)
{
	size_t n = strlen(r);
	if (n <= QUEUE_REASON_MAX)
		return n;
	n = QUEUE_REASON_MAX;
	while (n > 0 && ((unsigned char)r[n] & 0xC0) == 0x80)
		n--;
	return n;
}

uint8_t *store_pack_failed(const Noetl__Item *item, uint32_t attempt, uint32_t number, int64_t now,
                           const char *reason, size_t *len)
{
	Noetl__Item it = *item;
	size_t keep = item->n_history;
	if (keep > QUEUE_HISTORY_MAX - 1)
		keep = QUEUE_HISTORY_MAX - 1;
	Noetl__Attempt **h = malloc((keep + 1) * sizeof(*h));
	size_t rl = reason_len(reason != NULL ? reason : "");
	char *r = malloc(rl + 1);
	if (h == NULL || r == NULL)
		abort();
	memcpy(r, reason != NULL ? reason : "", rl);
	r[rl] = '\0';
	if (keep > 0) /* history is NULL when empty */
		memcpy(h, item->history + (item->n_history - keep), keep * sizeof(*h));
	Noetl__Attempt a = NOETL__ATTEMPT__INIT;
	a.number = number;
	a.time_ms = now;
	a.reason = r;
	h[keep] = &a;
	it.history = h;
	it.n_history = keep + 1;
	it.attempt = attempt;
	uint8_t *packed = store_pack(&it, len);
	free(h);
	free(r);
	return packed;
}

/* --- lease ------------------------------------------------------------------------ */

static size_t list_len(const struct qlink *head)
{
	size_t n = 0;
	for (const struct qlink *l = head->next; l != head; l = l->next)
		n++;
	return n;
}

/* Plans up to want items from t's queues, adding newly planned queues to
 * plan[]. Returns the number planned. */
static uint32_t plan_tenant(struct queue_store *s, struct qtenant *t, uint32_t want, uint32_t cap,
                            struct qqueue **plan, size_t *nplan)
{
	uint64_t epoch = s->plan_epoch;
	if (t->plan_epoch != epoch) {
		t->plan_epoch = epoch;
		t->plan_taken = 0;
	}
	if (t->plan_taken >= cap)
		return 0;
	if (want > cap - t->plan_taken)
		want = cap - t->plan_taken;
	uint32_t got = 0;
	while (got < want && qlink_linked(&t->active_queues)) {
		size_t kq = list_len(&t->active_queues);
		uint32_t share = (uint32_t)((want - got) / kq);
		if (share == 0)
			share = 1;
		for (size_t j = 0; j < kq && got < want; j++) {
			struct qqueue *q =
			        QLINK_ENTRY(t->active_queues.next, struct qqueue, active);
			qlink_remove(&q->active);
			if (q->plan_epoch != epoch) {
				q->plan_epoch = epoch;
				q->plan_count = 0;
				plan[(*nplan)++] = q;
			}
			uint64_t avail = q->visible - q->head - q->plan_count;
			uint32_t take = share;
			if (take > avail)
				take = (uint32_t)avail;
			if (take > want - got)
				take = want - got;
			q->plan_count += take;
			got += take;
			if (avail > take) /* still leasable: to the back of the round */
				qlink_push_back(&t->active_queues, &q->active);
		}
	}
	if (!qlink_linked(&t->active_queues) && qlink_linked(&t->active))
		qlink_remove(&t->active);
	t->plan_taken += got;
	return got;
}

/* Plans a lease call: how many items each queue gives. */
static uint32_t plan(struct queue_store *s, const struct queue_store_lease_req *req,
                     struct qqueue **plan, size_t *nplan)
{
	s->plan_epoch++;
	*nplan = 0;
	uint32_t cap = req->per_tenant_max > 0 ? req->per_tenant_max : UINT32_MAX;
	uint32_t remaining = req->max_items;
	if (req->tenant != NULL && req->tenant[0] != '\0') {
		struct qtenant *t = qmap_get(s->tenants, req->tenant, strlen(req->tenant));
		if (t == NULL)
			return 0;
		if (qlink_linked(&t->active)) { /* keep the global round-robin order */
			qlink_remove(&t->active);
			qlink_push_back(&s->active, &t->active);
		}
		return plan_tenant(s, t, remaining, cap, plan, nplan);
	}
	while (remaining > 0 && qlink_linked(&s->active)) {
		size_t k = list_len(&s->active);
		uint32_t share = (uint32_t)(remaining / k);
		if (share == 0)
			share = 1;
		uint32_t round = 0;
		for (size_t i = 0; i < k && remaining > 0; i++) {
			struct qtenant *t = QLINK_ENTRY(s->active.next, struct qtenant, active);
			qlink_remove(&t->active);
			qlink_push_back(&s->active, &t->active);
			uint32_t want = share < remaining ? share : remaining;
			uint32_t got = plan_tenant(s, t, want, cap, plan, nplan);
			remaining -= got;
			round += got;
		}
		if (round == 0)
			break; /* every active tenant is at its cap */
	}
	return req->max_items - remaining;
}

/* Leases what the plan says from q: moves its head, writes the leases. */
static void take(struct queue_store *s, struct qqueue *q, uint32_t count, uint32_t lease_ms,
                 int64_t now, const uint8_t *nonces, struct queue_store_leased *out, size_t *n)
{
	uint8_t lo[KEY_MAX], hi[KEY_MAX], k[KEY_MAX];
	size_t ll = key_ready(lo, q, q->head), hl = key_ready(hi, q, q->head + count);
	struct kv_iter *it = NULL;
	uint32_t found = 0;
	int64_t t0 = util_mono_us();
	if (kv_iter_create(s->kv, lo, ll, hi, hl, &it) == 0) {
		for (kv_iter_seek_first(it); kv_iter_valid(it) && found < count;
		     kv_iter_next(it), found++) {
			size_t kl, vl;
			const uint8_t *key = kv_iter_key(it, &kl);
			const uint8_t *val = kv_iter_value(it, &vl);
			Noetl__Item *item = noetl__item__unpack(NULL, vl, val);
			if (item == NULL) {
				log_error("queue: dropping an unreadable item of queue '%s' of "
				          "tenant "
				          "'%s'",
				          q->name, q->t->name);
				store_depth(s, q, -1);
				continue;
			}
			item->attempt++;
			item->seq = util_get_be64(key + kl - 8);
			struct queue_store_leased *l = &out[(*n)++];
			uint64_t id = store_next_id(s);
			l->item = item;
			l->expires_ms = now + lease_ms;
			util_put_be64(l->token, id);
			memcpy(l->token + 8, nonces + 8 * (*n - 1), 8);
			size_t plen, lvl;
			uint8_t *packed = store_pack(item, &plen);
			uint8_t *lv =
			        lease_value(l->expires_ms, l->token + 8, q, packed, plen, &lvl);
			kv_batch_put(s->pending->b, k, key_lease(k, id), lv, lvl);
			kv_batch_put(s->pending->b, k, key_expiry(k, l->expires_ms, id), "", 0);
			free(lv);
			free(packed);
			q->leased++;
			s->pending->nops++;
		}
		kv_iter_destroy(it);
	}
	s->stat_read_us += (uint64_t)(util_mono_us() - t0);
	s->stat_read_items += found;
	if (found < count) {
		log_error("queue: %u ready items of queue '%s' of tenant '%s' are missing from "
		          "the store",
		          count - found, q->name, q->t->name);
		store_depth(s, q, -(int64_t)(count - found));
	}
	q->head += count;
	store_dirty(s, q);
	store_update_active(s, q);
}

/* Waits on ready_cv until the monotonic deadline (ms); false when it passed. */
static bool wait_ready(struct queue_store *s, int64_t deadline)
{
	int64_t left = deadline - util_mono_ms();
	if (left <= 0 || s->stopping)
		return false;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&s->ready_cv, &s->mu, &ts);
	return true;
}

void queue_store_leased_free(struct queue_store_leased *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		noetl__item__free_unpacked(v[i].item, NULL);
	free(v);
}

int queue_store_lease(struct queue_store *s, const struct queue_store_lease_req *req,
                      struct queue_store_leased **out, size_t *n)
{
	uint32_t max = req->max_items > 0 ? req->max_items : 1;
	struct qqueue **plans = malloc(max * sizeof(*plans));
	struct queue_store_leased *v = calloc(max, sizeof(*v));
	uint8_t *nonces = malloc(8 * (size_t)max);
	if (plans == NULL || v == NULL || nonces == NULL) {
		free(plans);
		free(v);
		free(nonces);
		return -ENOMEM;
	}
	util_random(nonces, 8 * (size_t)max);
	struct queue_store_lease_req r = *req;
	r.max_items = max;
	int64_t deadline = util_mono_ms() + req->wait_ms;
	size_t nplan = 0, got = 0;
	pthread_mutex_lock(&s->mu);
	int rc;
	uint32_t planned = 0;
	while ((rc = store_check(s)) == 0) {
		planned = plan(s, &r, plans, &nplan);
		if (planned > 0 || !wait_ready(s, deadline))
			break;
	}
	if (rc == 0 && planned > 0) {
		int64_t now = util_now_ms();
		for (size_t i = 0; i < nplan; i++)
			if (plans[i]->plan_count > 0)
				take(s, plans[i], plans[i]->plan_count, req->lease_ms, now, nonces,
				     v, &got);
		rc = store_commit(s, s->pending->gid);
	}
	pthread_mutex_unlock(&s->mu);
	free(plans);
	free(nonces);
	if (rc != 0) {
		queue_store_leased_free(v, got);
		return rc;
	}
	*out = v;
	*n = got;
	return 0;
}

/* --- ack, nack, extend --------------------------------------------------------------------- */

/* A lease looked up by its token: the record (malloc'ed value) and queue. */
struct found {
	uint64_t id;
	void *val;
	struct qlease l;
	struct qqueue *q;
};

static int find_lease(struct queue_store *s, const uint8_t *token, size_t tlen, const char *tenant,
                      struct found *f)
{
	if (token == NULL || tlen != QUEUE_TOKEN_LEN)
		return -EINVAL;
	f->id = util_get_be64(token);
	if (store_lease_state(s, f->id) == 1)
		return -ENOENT; /* finished by a group not written yet */
	uint8_t k[KEY_MAX];
	size_t vl = 0;
	f->val = NULL;
	int rc = kv_get(s->kv, k, key_lease(k, f->id), &f->val, &vl);
	if (rc != 0)
		return rc; /* -ENOENT: no such lease (any more) */
	rc = -ENOENT;
	if (!store_parse_lease(f->val, vl, &f->l)) {
		log_error("queue: lease %llu has an unreadable record", (unsigned long long)f->id);
		goto fail;
	}
	if (!util_ct_equal(f->l.nonce, token + 8, 8))
		goto fail;
	f->q = store_find_qkey(s, f->l.qkey, f->l.qklen);
	if (f->q == NULL) {
		log_error("queue: lease %llu names a queue that does not exist",
		          (unsigned long long)f->id);
		goto fail;
	}
	if (tenant != NULL && tenant[0] != '\0' && strcmp(tenant, f->q->t->name) != 0)
		goto fail;
	return 0;
fail:
	free(f->val);
	f->val = NULL;
	return rc;
}

/* Ends a lease in the pending group: deletes its record and index key. */
static void end_lease(struct queue_store *s, struct found *f)
{
	uint8_t k[KEY_MAX];
	kv_batch_delete(s->pending->b, k, key_lease(k, f->id));
	kv_batch_delete(s->pending->b, k, key_expiry(k, f->l.expires_ms, f->id));
	store_lease_touch(s, f->id, true);
	f->q->leased--;
	s->pending->nops++;
	store_dirty(s, f->q);
}

/* Checks the follow-ups of an ack before anything changes: same tenant, and
 * room for the queues they create. */
static int check_follow_ups(struct queue_store *s, struct qqueue *parent,
                            const struct queue_store_ack *e)
{
	uint32_t newq = 0;
	for (size_t i = 0; i < e->n_follow_ups; i++) {
		const Noetl__Item *f = e->follow_ups[i];
		if (f->tenant[0] != '\0' && strcmp(f->tenant, parent->t->name) != 0)
			return -EINVAL;
		if (store_find_queue(s, parent->t->name, f->queue) == NULL)
			newq++; /* may count a queue twice: errs on the safe side */
	}
	return parent->t->nqueues + newq > s->opt.max_queues_tenant ? -EMLINK : 0;
}

static void add_follow_ups(struct queue_store *s, struct found *f, const struct queue_store_ack *e,
                           int64_t now)
{
	if (e->n_follow_ups == 0)
		return;
	Noetl__Item *parent = noetl__item__unpack(NULL, f->l.ilen, f->l.item);
	for (size_t i = 0; i < e->n_follow_ups; i++) {
		Noetl__Item it = *e->follow_ups[i];
		it.tenant = f->q->t->name;
		if (parent != NULL && it.parent_id[0] == '\0')
			it.parent_id = parent->id;
		if (parent != NULL && it.trace_id[0] == '\0')
			it.trace_id = parent->trace_id;
		store_add_follow_up(s, &it, now, NULL, 0);
	}
	if (parent != NULL)
		noetl__item__free_unpacked(parent, NULL);
}

int queue_store_ack(struct queue_store *s, const char *tenant, struct queue_store_ack *e, size_t n)
{
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	bool changed = false;
	int64_t now = util_now_ms();
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct found f;
		e[i].status = find_lease(s, e[i].token, e[i].token_len, tenant, &f);
		if (e[i].status == -EIO) {
			rc = -EIO;
			break;
		}
		if (e[i].status != 0)
			continue;
		e[i].status = check_follow_ups(s, f.q, &e[i]);
		if (e[i].status == 0) {
			add_follow_ups(s, &f, &e[i], now);
			end_lease(s, &f);
			f.q->acked++;
			store_depth(s, f.q, -1);
			changed = true;
		}
		free(f.val);
	}
	if (rc == 0 && changed)
		rc = store_commit(s, s->pending->gid);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Gives a leased item back unrun: the attempt its lease counted is taken
 * back and nothing is added to its history, so a consumer that cannot run
 * an item yet (its definitions are still being prepared) costs it nothing.
 * It is ready again after delay_ms, at the tail of its queue. */
static void release_one(struct queue_store *s, struct found *f, Noetl__Item *item,
                        uint32_t delay_ms, int64_t now, int64_t *ready_at)
{
	if (item->attempt > 0)
		item->attempt--;
	size_t plen;
	uint8_t *packed = store_pack(item, &plen);
	int64_t at = now + delay_ms;
	store_append(s, f->q, packed, plen, at, now);
	free(packed);
	end_lease(s, f);
	s->stat_released++;
	*ready_at = at;
}

int queue_store_nack(struct queue_store *s, const char *tenant, struct queue_store_nack *e,
                     size_t n)
{
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	bool changed = false;
	int64_t now = util_now_ms();
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct found f;
		e[i].dead_lettered = false;
		e[i].retry_at_ms = 0;
		e[i].status = find_lease(s, e[i].token, e[i].token_len, tenant, &f);
		if (e[i].status == -EIO) {
			rc = -EIO;
			break;
		}
		if (e[i].status != 0)
			continue;
		Noetl__Item *item = noetl__item__unpack(NULL, f.l.ilen, f.l.item);
		if (item == NULL) {
			log_error("queue: lease %llu holds an unreadable item; dropping it",
			          (unsigned long long)f.id);
			end_lease(s, &f);
			store_depth(s, f.q, -1);
			free(f.val);
			changed = true;
			continue;
		}
		if (e[i].release) {
			release_one(s, &f, item, e[i].delay_ms, now, &e[i].retry_at_ms);
			noetl__item__free_unpacked(item, NULL);
			free(f.val);
			changed = true;
			continue;
		}
		struct queue_retry p;
		store_retry_fill(s, item->retry, &p);
		size_t plen;
		uint8_t *packed = store_pack_failed(item, item->attempt, item->attempt, now,
		                                    e[i].reason, &plen);
		if (e[i].dead || item->attempt >= p.max_attempts) {
			store_bury(s, f.q, packed, plen);
			store_depth(s, f.q, -1);
			e[i].dead_lettered = true;
		} else {
			double r = (double)util_random_below(1000000) / 1e6;
			int64_t at = now + queue_store_backoff_ms(&p, item->attempt, r);
			store_append(s, f.q, packed, plen, at, now);
			e[i].retry_at_ms = at;
		}
		free(packed);
		end_lease(s, &f);
		f.q->failed++;
		noetl__item__free_unpacked(item, NULL);
		free(f.val);
		changed = true;
	}
	if (rc == 0 && changed)
		rc = store_commit(s, s->pending->gid);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int queue_store_extend(struct queue_store *s, const char *tenant, uint32_t lease_ms,
                       struct queue_store_extend *e, size_t n)
{
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	bool changed = false;
	int64_t now = util_now_ms();
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct found f;
		e[i].status = find_lease(s, e[i].token, e[i].token_len, tenant, &f);
		if (e[i].status == -EIO) {
			rc = -EIO;
			break;
		}
		if (e[i].status != 0)
			continue;
		/* Rewrite the record with the new expiry and move its index key.
		 * The record read may predate an unwritten extend of the same
		 * lease; its index key then stays behind as an orphan, which
		 * the expiry scan recognises (expiry differs) and deletes. */
		int64_t exp = now + lease_ms;
		size_t vl = LEASE_HDR + f.l.qklen + f.l.ilen;
		util_put_be64(f.val, (uint64_t)exp);
		uint8_t k[KEY_MAX];
		kv_batch_put(s->pending->b, k, key_lease(k, f.id), f.val, vl);
		kv_batch_delete(s->pending->b, k, key_expiry(k, f.l.expires_ms, f.id));
		kv_batch_put(s->pending->b, k, key_expiry(k, exp, f.id), "", 0);
		store_lease_touch(s, f.id, false);
		s->pending->nops++;
		e[i].expires_ms = exp;
		free(f.val);
		changed = true;
	}
	if (rc == 0 && changed)
		rc = store_commit(s, s->pending->gid);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* --- expiry ------------------------------------------------------------------------------ */

/* Ends one expired lease found at index key (exp, id). */
static void expire_one(struct queue_store *s, uint64_t id, int64_t exp, int64_t now)
{
	struct found f = {.id = id};
	uint8_t k[KEY_MAX];
	size_t vl = 0;
	if (kv_get(s->kv, k, key_lease(k, id), &f.val, &vl) != 0 ||
	    !store_parse_lease(f.val, vl, &f.l) || f.l.expires_ms != exp) {
		/* an orphan index key: the lease ended or was extended */
		kv_batch_delete(s->pending->b, k, key_expiry(k, exp, id));
		s->pending->nops++;
		free(f.val);
		return;
	}
	f.q = store_find_qkey(s, f.l.qkey, f.l.qklen);
	Noetl__Item *item = noetl__item__unpack(NULL, f.l.ilen, f.l.item);
	if (f.q == NULL || item == NULL) {
		log_error("queue: lease %llu is unreadable; dropping it", (unsigned long long)id);
		kv_batch_delete(s->pending->b, k, key_lease(k, id));
		kv_batch_delete(s->pending->b, k, key_expiry(k, exp, id));
		s->pending->nops++;
		if (f.q != NULL) {
			f.q->leased--;
			store_depth(s, f.q, -1);
			store_dirty(s, f.q);
		}
		free(f.val);
		return;
	}
	struct queue_retry p;
	store_retry_fill(s, item->retry, &p);
	size_t plen;
	uint8_t *packed =
	        store_pack_failed(item, item->attempt, item->attempt, now, "lease expired", &plen);
	if (item->attempt >= p.max_attempts) {
		store_bury(s, f.q, packed, plen);
		store_depth(s, f.q, -1);
	} else {
		store_append(s, f.q, packed, plen, 0, now);
	}
	free(packed);
	end_lease(s, &f);
	f.q->expired++;
	noetl__item__free_unpacked(item, NULL);
	free(f.val);
}

int store_expire_leases(struct queue_store *s, int64_t now)
{
	uint8_t lo[1] = {'x'}, hi[KEY_MAX];
	size_t hl = key_expiry(hi, now + 1, 0);
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	struct kv_iter *it = NULL;
	if (rc == 0)
		rc = kv_iter_create(s->kv, lo, 1, hi, hl, &it);
	int moved = 0;
	if (rc == 0) {
		for (kv_iter_seek_first(it); kv_iter_valid(it) && moved < SCAN_CHUNK;
		     kv_iter_next(it)) {
			size_t kl;
			const uint8_t *k = kv_iter_key(it, &kl);
			if (kl != 17)
				continue;
			int64_t exp = (int64_t)util_get_be64(k + 1);
			uint64_t id = util_get_be64(k + 9);
			if (store_lease_state(s, id) != -1)
				continue; /* changed by a group not written yet */
			expire_one(s, id, exp, now);
			moved++;
		}
		rc = kv_iter_status(it);
		kv_iter_destroy(it);
	}
	if (rc == 0 && moved > 0)
		rc = store_commit(s, s->pending->gid);
	pthread_mutex_unlock(&s->mu);
	return rc != 0 ? rc : moved;
}
