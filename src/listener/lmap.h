/*
 * lmap: a small hash map from NUL-terminated string keys to pointers, for
 * the listener's caches (tenants, events, tokens, schemas). Keys are copied;
 * values are borrowed (the caller frees them, typically from listener_map_each
 * before listener_map_destroy).
 *
 * Threads: none of its own; the caller serialises access (the caches hold a
 * read-write lock around it).
 */
#ifndef NOETL_LISTENER_LMAP_H
#define NOETL_LISTENER_LMAP_H

#include <stdbool.h>
#include <stddef.h>

struct listener_map;

/* Creates an empty map, or NULL when memory ran out. */
struct listener_map *listener_map_create(void);

/* Frees the map and its copied keys, not the values; accepts NULL. */
void listener_map_destroy(struct listener_map *m);

/* The value stored under key, or NULL. m may be NULL (an empty map). */
void *listener_map_get(const struct listener_map *m, const char *key);

/* Stores val (not NULL) under key. A previous value is replaced and
 * returned through old (if not NULL; else it is simply forgotten).
 * 0 or -ENOMEM (the map is unchanged then). */
int listener_map_put(struct listener_map *m, const char *key, void *val, void **old);

/* Removes key; returns its value or NULL if it was absent. */
void *listener_map_remove(struct listener_map *m, const char *key);

/* Number of keys. */
size_t listener_map_count(const struct listener_map *m);

/* Calls fn for every entry, in no particular order. fn may not change the
 * map, except that returning true removes the entry just visited. */
void listener_map_each(struct listener_map *m, bool (*fn)(const char *key, void *val, void *arg),
                       void *arg);

#endif
