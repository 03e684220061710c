/*
 * qmap: a small hash map from byte-string keys to pointers, for the Queue
 * service's in-memory indexes (queues by name, tenants by name, in-flight
 * leases and idempotency keys). Keys are copied; values are borrowed.
 *
 * Threads: none of its own; the caller serialises access.
 */
#ifndef NOETL_QUEUE_QMAP_H
#define NOETL_QUEUE_QMAP_H

#include <stdbool.h>
#include <stddef.h>

struct qmap;

/* Creates an empty map; aborts if memory is exhausted (the indexes are small
 * and a service without them cannot run). */
struct qmap *qmap_create(void);

/* Frees the map and its copied keys, not the values; accepts NULL. */
void qmap_destroy(struct qmap *m);

/* The value stored under key, or NULL. */
void *qmap_get(const struct qmap *m, const void *key, size_t klen);

/* Stores val under key, replacing (and returning through old, if not NULL)
 * a previous value. val must not be NULL. */
void qmap_put(struct qmap *m, const void *key, size_t klen, void *val, void **old);

/* Removes key; returns its value or NULL if it was absent. */
void *qmap_remove(struct qmap *m, const void *key, size_t klen);

/* Number of keys. */
size_t qmap_count(const struct qmap *m);

/* Calls fn for every entry, in no particular order; fn must not change the
 * map. */
void qmap_each(const struct qmap *m, void (*fn)(const void *key, size_t klen, void *val, void *arg),
               void *arg);

#endif
