/*
 * lmap: separate chaining over a power-of-two bucket array that doubles when
 * the load passes 1. FNV-1a is enough: keys are ids chosen by tenants, and a
 * tenant who makes its own lookups slow only slows itself (each tenant's
 * events and packages live in the tenant's own maps).
 */
#include "lmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *next; /* chain */
	uint64_t hash;     /* of key */
	void *val;         /* borrowed */
	char key[];        /* copied, NUL-terminated */
};

struct listener_map {
	struct node **buckets; /* nbuckets chains */
	size_t nbuckets;       /* a power of two */
	size_t count;          /* entries */
};

static uint64_t hash_key(const char *k)
{
	uint64_t h = 14695981039346656037ull;
	for (; *k != '\0'; k++) {
		h ^= (unsigned char)*k;
		h *= 1099511628211ull;
	}
	return h;
}

struct listener_map *listener_map_create(void)
{
	struct listener_map *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->nbuckets = 16;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (m->buckets == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void listener_map_destroy(struct listener_map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct node *n = m->buckets[i];
		while (n != NULL) {
			struct node *next = n->next;
			free(n);
			n = next;
		}
	}
	free(m->buckets);
	free(m);
}

static struct node **find(const struct listener_map *m, const char *key, uint64_t h)
{
	struct node **pp = &m->buckets[h & (m->nbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			return pp;
	return pp;
}

void *listener_map_get(const struct listener_map *m, const char *key)
{
	if (m == NULL)
		return NULL;
	struct node **pp = find(m, key, hash_key(key));
	return *pp != NULL ? (*pp)->val : NULL;
}

/* Doubles the bucket array; on allocation failure the map stays as it is
 * (only slower). */
static void grow(struct listener_map *m)
{
	size_t nb = m->nbuckets * 2;
	struct node **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct node *n = m->buckets[i];
		while (n != NULL) {
			struct node *next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

int listener_map_put(struct listener_map *m, const char *key, void *val, void **old)
{
	uint64_t h = hash_key(key);
	struct node **pp = find(m, key, h);
	if (*pp != NULL) {
		if (old != NULL)
			*old = (*pp)->val;
		(*pp)->val = val;
		return 0;
	}
	size_t klen = strlen(key);
	struct node *n = malloc(sizeof(*n) + klen + 1);
	if (n == NULL)
		return -ENOMEM;
	n->hash = h;
	n->val = val;
	memcpy(n->key, key, klen + 1);
	n->next = NULL;
	*pp = n;
	m->count++;
	if (old != NULL)
		*old = NULL;
	if (m->count > m->nbuckets)
		grow(m);
	return 0;
}

void *listener_map_remove(struct listener_map *m, const char *key)
{
	if (m == NULL)
		return NULL;
	struct node **pp = find(m, key, hash_key(key));
	struct node *n = *pp;
	if (n == NULL)
		return NULL;
	void *val = n->val;
	*pp = n->next;
	free(n);
	m->count--;
	return val;
}

size_t listener_map_count(const struct listener_map *m)
{
	return m != NULL ? m->count : 0;
}

void listener_map_each(struct listener_map *m, bool (*fn)(const char *key, void *val, void *arg),
                       void *arg)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct node **pp = &m->buckets[i];
		while (*pp != NULL) {
			struct node *n = *pp;
			if (fn(n->key, n->val, arg)) {
				*pp = n->next;
				free(n);
				m->count--;
			} else {
				pp = &n->next;
			}
		}
	}
}
