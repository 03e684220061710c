/*
 * qmap: chained hash table with power-of-two buckets (FNV-1a hashes). It
 * grows when the load passes one entry per bucket and never shrinks: the
 * in-flight sets it serves drain to empty between bursts, and keeping the
 * bucket array avoids regrowing on the next burst.
 */
#include "qmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct qmap_entry {
	struct qmap_entry *next; /* next entry of the bucket */
	uint64_t hash;           /* hash of key */
	void *val;               /* borrowed value */
	size_t klen;             /* key length */
	unsigned char key[];     /* copied key */
};

struct qmap {
	struct qmap_entry **buckets; /* nbuckets chains */
	size_t nbuckets;             /* a power of two */
	size_t count;                /* entries */
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (p == NULL)
		abort();
	return p;
}

static uint64_t hash(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < klen; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

struct qmap *qmap_create(void)
{
	struct qmap *m = xcalloc(1, sizeof(*m));
	m->nbuckets = 16;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	return m;
}

void qmap_destroy(struct qmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct qmap_entry *e = m->buckets[i];
		while (e != NULL) {
			struct qmap_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	free(m);
}

static struct qmap_entry **find(const struct qmap *m, const void *key, size_t klen, uint64_t h)
{
	struct qmap_entry **pp = &m->buckets[h & (m->nbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->next) {
		struct qmap_entry *e = *pp;
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			break;
	}
	return pp;
}

void *qmap_get(const struct qmap *m, const void *key, size_t klen)
{
	struct qmap_entry **pp = find(m, key, klen, hash(key, klen));
	return *pp != NULL ? (*pp)->val : NULL;
}

static void grow(struct qmap *m)
{
	size_t n = m->nbuckets * 2;
	struct qmap_entry **b = xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct qmap_entry *e = m->buckets[i];
		while (e != NULL) {
			struct qmap_entry *next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void qmap_put(struct qmap *m, const void *key, size_t klen, void *val, void **old)
{
	uint64_t h = hash(key, klen);
	struct qmap_entry **pp = find(m, key, klen, h);
	if (*pp != NULL) {
		if (old != NULL)
			*old = (*pp)->val;
		(*pp)->val = val;
		return;
	}
	if (old != NULL)
		*old = NULL;
	struct qmap_entry *e = malloc(sizeof(*e) + klen);
	if (e == NULL)
		abort();
	e->hash = h;
	e->val = val;
	e->klen = klen;
	memcpy(e->key, key, klen);
	e->next = NULL;
	*pp = e;
	if (++m->count > m->nbuckets)
		grow(m);
}

void *qmap_remove(struct qmap *m, const void *key, size_t klen)
{
	struct qmap_entry **pp = find(m, key, klen, hash(key, klen));
	struct qmap_entry *e = *pp;
	if (e == NULL)
		return NULL;
	void *val = e->val;
	*pp = e->next;
	free(e);
	m->count--;
	return val;
}

size_t qmap_count(const struct qmap *m)
{
	return m->count;
}

void qmap_each(const struct qmap *m, void (*fn)(const void *key, size_t klen, void *val, void *arg),
               void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct qmap_entry *e = m->buckets[i]; e != NULL; e = e->next)
			fn(e->key, e->klen, e->val, arg);
}
