/*
 * store_dead: a tenant's dead-letter queue: list (paged), replay, purge.
 *
 * Dead items live at 'D' tenant 0 queue 0 id, so a tenant's (or one queue's)
 * dead letters are one key range, oldest first within a queue. A listing
 * cursor is the last key returned. Replay and purge walk the range in chunks,
 * one synced write per chunk, under dead_mu so that two of them never move
 * the same item twice; nacks and expiries add new dead keys concurrently,
 * which is harmless (they sort after what was read, or are seen next time).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

/* The key range of tenant's (and queue's) dead letters: [lo, hi). */
static void dead_range(const char *tenant, const char *queue, uint8_t *lo, size_t *ll, uint8_t *hi,
                       size_t *hl)
{
	size_t tl = strlen(tenant);
	lo[0] = 'D';
	memcpy(lo + 1, tenant, tl + 1);
	*ll = tl + 2;
	if (queue != NULL && queue[0] != '\0') {
		size_t ql = strlen(queue);
		memcpy(lo + *ll, queue, ql + 1);
		*ll += ql + 1;
	}
	memcpy(hi, lo, *ll);
	hi[*ll - 1] = 1; /* just past every key that starts with lo */
	*hl = *ll;
}

void queue_store_items_free(Noetl__Item **items, size_t n)
{
	for (size_t i = 0; items != NULL && i < n; i++)
		noetl__item__free_unpacked(items[i], NULL);
	free(items);
}

int queue_store_dead_list(struct queue_store *s, const char *tenant, const char *queue,
                          uint32_t limit, const uint8_t *cursor, size_t clen, Noetl__Item ***items,
                          size_t *n, uint8_t **next, size_t *nlen)
{
	uint8_t lo[KEY_MAX], hi[KEY_MAX];
	size_t ll, hl;
	dead_range(tenant, queue, lo, &ll, hi, &hl);
	if (clen > 0 && (clen <= ll || clen > KEY_MAX || memcmp(cursor, lo, ll) != 0))
		return -EINVAL;
	if (limit == 0)
		limit = 1;
	Noetl__Item **v = calloc(limit, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	struct kv_iter *it;
	int rc = kv_iter_create(s->kv, lo, ll, hi, hl, &it);
	if (rc != 0) {
		free(v);
		return rc;
	}
	if (clen > 0) {
		kv_iter_seek(it, cursor, clen);
		size_t kl;
		const void *k = kv_iter_valid(it) ? kv_iter_key(it, &kl) : NULL;
		if (k != NULL && kl == clen && memcmp(k, cursor, clen) == 0)
			kv_iter_next(it);
	} else {
		kv_iter_seek_first(it);
	}
	size_t got = 0;
	uint8_t *last = NULL;
	size_t lastlen = 0;
	for (; kv_iter_valid(it) && got < limit; kv_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = kv_iter_key(it, &kl);
		const uint8_t *val = kv_iter_value(it, &vl);
		Noetl__Item *item = noetl__item__unpack(NULL, vl, val);
		if (item == NULL) {
			log_error("queue: skipping an unreadable dead letter of tenant '%s'",
			          tenant);
			continue;
		}
		v[got++] = item;
		free(last);
		last = malloc(kl);
		if (last == NULL)
			abort();
		memcpy(last, k, kl);
		lastlen = kl;
	}
	bool more = kv_iter_valid(it);
	rc = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rc != 0) {
		queue_store_items_free(v, got);
		free(last);
		return rc;
	}
	if (!more) {
		free(last);
		last = NULL;
		lastlen = 0;
	}
	*items = v;
	*n = got;
	*next = last;
	*nlen = lastlen;
	return 0;
}

/* Replays or purges one chunk after *cursor; sets *done at the end of the
 * range. Returns 0, -EDQUOT (replay at a depth limit) or -EIO. */
static int dead_chunk(struct queue_store *s, const uint8_t *lo, size_t ll, const uint8_t *hi,
                      size_t hl, struct qmap *ids, bool replay, uint8_t *cursor, size_t *clen,
                      uint64_t *count, bool *done)
{
	int64_t now = util_now_ms();
	struct kv_iter *it;
	int rc = kv_iter_create(s->kv, lo, ll, hi, hl, &it);
	if (rc != 0)
		return rc;
	if (*clen > 0) {
		kv_iter_seek(it, cursor, *clen);
		size_t kl;
		const void *k = kv_iter_valid(it) ? kv_iter_key(it, &kl) : NULL;
		if (k != NULL && kl == *clen && memcmp(k, cursor, kl) == 0)
			kv_iter_next(it);
	} else {
		kv_iter_seek_first(it);
	}
	int scanned = 0, changed = 0;
	for (; kv_iter_valid(it) && scanned < 4 * SCAN_CHUNK && changed < SCAN_CHUNK;
	     kv_iter_next(it), scanned++) {
		size_t kl, vl;
		const uint8_t *k = kv_iter_key(it, &kl);
		const uint8_t *val = kv_iter_value(it, &vl);
		if (kl > KEY_MAX || kl < 10)
			continue;
		Noetl__Item *item = noetl__item__unpack(NULL, vl, val);
		bool match = ids == NULL ||
		             (item != NULL && qmap_get(ids, item->id, strlen(item->id)) != NULL);
		struct qqueue *q = store_find_qkey(s, k + 1, kl - 9);
		if (q == NULL || (item == NULL && replay))
			log_error("queue: skipping an unreadable dead letter (%s)",
			          q == NULL ? "unknown queue" : "undecodable item");
		if (!match || q == NULL || (item == NULL && replay)) {
			if (item != NULL)
				noetl__item__free_unpacked(item, NULL);
			memcpy(cursor, k, kl);
			*clen = kl;
			continue;
		}
		if (replay) {
			if (q->t->depth + 1 > s->opt.max_depth_tenant ||
			    s->depth + 1 > s->opt.max_depth_total) {
				noetl__item__free_unpacked(item, NULL);
				rc = -EDQUOT;
				break;
			}
			item->attempt = 0;
			size_t plen;
			uint8_t *packed = store_pack(item, &plen);
			store_append(s, q, packed, plen, 0, now);
			free(packed);
			store_depth(s, q, 1);
		}
		if (item != NULL)
			noetl__item__free_unpacked(item, NULL);
		kv_batch_delete(s->pending->b, k, kl);
		s->pending->nops++;
		q->dead--;
		store_dirty(s, q);
		memcpy(cursor, k, kl);
		*clen = kl;
		changed++;
		(*count)++;
	}
	*done = !kv_iter_valid(it);
	int st = kv_iter_status(it);
	kv_iter_destroy(it);
	if (st != 0)
		return st;
	if (changed > 0) {
		int wrc = store_commit(s, s->pending->gid);
		if (wrc != 0)
			return wrc;
	}
	return rc;
}

static int dead_apply(struct queue_store *s, const char *tenant, const char *queue,
                      char *const *ids, size_t n_ids, bool replay, uint64_t *count)
{
	uint8_t lo[KEY_MAX], hi[KEY_MAX], cursor[KEY_MAX];
	size_t ll, hl, clen = 0;
	dead_range(tenant, queue, lo, &ll, hi, &hl);
	struct qmap *want = NULL;
	if (n_ids > 0) {
		want = qmap_create();
		for (size_t i = 0; i < n_ids; i++)
			qmap_put(want, ids[i], strlen(ids[i]), (void *)1, NULL);
	}
	uint64_t c = 0;
	int rc = 0;
	bool done = false;
	pthread_mutex_lock(&s->dead_mu);
	while (rc == 0 && !done) {
		pthread_mutex_lock(&s->mu);
		rc = store_check(s);
		if (rc == 0)
			rc = dead_chunk(s, lo, ll, hi, hl, want, replay, cursor, &clen, &c, &done);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&s->dead_mu);
	qmap_destroy(want);
	*count = c;
	return rc;
}

int queue_store_dead_replay(struct queue_store *s, const char *tenant, const char *queue,
                            char *const *ids, size_t n_ids, uint64_t *count)
{
	return dead_apply(s, tenant, queue, ids, n_ids, true, count);
}

int queue_store_dead_purge(struct queue_store *s, const char *tenant, const char *queue,
                           char *const *ids, size_t n_ids, uint64_t *count)
{
	return dead_apply(s, tenant, queue, ids, n_ids, false, count);
}
