/*
 * store_maint: the maintenance thread. Every tick it moves delayed items
 * whose time has come to the tail of their queue, and ends leases that ran
 * out (store_lease.c); every second it also deletes idempotency keys older
 * than the retention window and retires the consumed keys of idle queues.
 *
 * Each step works in chunks of SCAN_CHUNK items, one synced write per chunk,
 * and waits for its write before reading again: the delayed and idempotency
 * ranges are changed only by this thread (plus enqueues, which add keys the
 * scans may see later), so a scan never sees a key its own unwritten group
 * deletes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

/* Moves up to SCAN_CHUNK due delayed items to ready; items moved or -EIO. */
static int promote_due(struct queue_store *s, int64_t now)
{
	uint8_t lo[1] = {'d'}, hi[KEY_MAX];
	size_t hl = key_delayed(hi, now + 1, 0);
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	struct kv_iter *it = NULL;
	if (rc == 0)
		rc = kv_iter_create(s->kv, lo, 1, hi, hl, &it);
	int moved = 0;
	if (rc == 0) {
		for (kv_iter_seek_first(it); kv_iter_valid(it) && moved < SCAN_CHUNK;
		     kv_iter_next(it), moved++) {
			size_t kl, vl;
			const uint8_t *key = kv_iter_key(it, &kl);
			const uint8_t *v = kv_iter_value(it, &vl);
			kv_batch_delete(s->pending->b, key, kl);
			s->pending->nops++;
			size_t qkl = vl >= 2 ? ((size_t)v[0] << 8 | v[1]) : 0;
			struct qqueue *q = NULL;
			if (vl >= 2 + qkl)
				q = store_find_qkey(s, v + 2, qkl);
			if (q == NULL) {
				log_error("queue: dropping a delayed item of an unknown queue");
				continue;
			}
			q->delayed--;
			store_append(s, q, v + 2 + qkl, vl - 2 - qkl, 0, now);
		}
		rc = kv_iter_status(it);
		kv_iter_destroy(it);
	}
	if (rc == 0 && moved > 0)
		rc = store_commit(s, s->pending->gid);
	pthread_mutex_unlock(&s->mu);
	return rc != 0 ? rc : moved;
}

/* Deletes up to SCAN_CHUNK idempotency keys older than the retention. */
static int forget_idem(struct queue_store *s, int64_t now)
{
	uint8_t lo[1] = {'j'}, hi[9], ik[KEY_MAX];
	hi[0] = 'j';
	util_put_be64(hi + 1, (uint64_t)(now - s->opt.idem_retention_ms));
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	struct kv_iter *it = NULL;
	if (rc == 0)
		rc = kv_iter_create(s->kv, lo, 1, hi, sizeof(hi), &it);
	int done = 0;
	if (rc == 0) {
		for (kv_iter_seek_first(it); kv_iter_valid(it) && done < SCAN_CHUNK;
		     kv_iter_next(it), done++) {
			size_t kl;
			const uint8_t *k = kv_iter_key(it, &kl);
			kv_batch_delete(s->pending->b, k, kl);
			s->pending->nops++;
			if (kl < 10 || kl - 8 > KEY_MAX)
				continue;
			/* 'j' created tenant 0 key -> 'i' tenant 0 key */
			ik[0] = 'i';
			memcpy(ik + 1, k + 9, kl - 9);
			size_t il = kl - 8;
			if (qmap_get(s->idem, ik, il) != NULL)
				continue; /* accepted again; its new record is not written yet */
			void *v = NULL;
			size_t vl = 0;
			if (kv_get(s->kv, ik, il, &v, &vl) == 0 && vl >= 8 &&
			    memcmp(v, k + 1, 8) == 0)
				kv_batch_delete(s->pending->b, ik, il);
			free(v);
		}
		rc = kv_iter_status(it);
		kv_iter_destroy(it);
	}
	if (rc == 0 && done > 0)
		rc = store_commit(s, s->pending->gid);
	pthread_mutex_unlock(&s->mu);
	return rc != 0 ? rc : done;
}

struct idle_arg {
	struct queue_store *s;
	int64_t now;
	bool any;
};

static void mark_idle(const void *k, size_t kl, void *val, void *arg)
{
	(void)k;
	(void)kl;
	struct idle_arg *a = arg;
	struct qqueue *q = val;
	if (q->head > q->retired && a->now - q->retired_ms >= RETIRE_IDLE_MS) {
		store_dirty(a->s, q); /* sealing the group retires its consumed keys */
		a->any = true;
	}
}

/* Retires the consumed keys of queues nothing has touched for a while. */
static int retire_idle(struct queue_store *s, int64_t now)
{
	pthread_mutex_lock(&s->mu);
	int rc = store_check(s);
	struct idle_arg a = {s, now, false};
	if (rc == 0)
		qmap_each(s->queues, mark_idle, &a);
	if (rc == 0 && a.any)
		rc = store_commit(s, s->pending->gid);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Runs step until it does less than a full chunk; false on -EIO. */
static bool drain(struct queue_store *s, int (*step)(struct queue_store *, int64_t), int64_t now)
{
	int rc;
	while ((rc = step(s, now)) == SCAN_CHUNK)
		;
	return rc >= 0;
}

static void *maint_main(void *arg)
{
	struct queue_store *s = arg;
	int64_t last_slow = 0;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		bool stop = s->stopping;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		int64_t now = util_now_ms();
		bool ok = drain(s, promote_due, now) && drain(s, store_expire_leases, now);
		if (ok && now - last_slow >= 1000) {
			last_slow = now;
			ok = drain(s, forget_idem, now) && retire_idle(s, now) == 0;
		}
		(void)ok; /* a failed write is logged and makes every call fail */

		pthread_mutex_lock(&s->mu);
		if (!s->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += (long)s->opt.tick_ms * 1000000;
			ts.tv_sec += ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&s->maint_cv, &s->mu, &ts);
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

int store_maint_start(struct queue_store *s)
{
	return pthread_create(&s->maint, NULL, maint_main, s) == 0 ? 0 : -EAGAIN;
}
