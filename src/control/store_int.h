/*
 * store_int: what store.c and store_pkg.c share: the store struct, key
 * construction and the change log helpers. Nobody else includes it.
 */
#ifndef NOETL_CONTROL_STORE_INT_H
#define NOETL_CONTROL_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kv.h"
#include "store.h"

#define KEY_MAX 512 /* kind + tenant(64) + package(128) + name(128) + be64 + separators */

struct control_store {
	struct kv *kv;         /* the RocksDB store */
	struct changelog *log; /* change log under prefix 'L' */
	pthread_mutex_t write; /* serialises changes and consistent reads */
};

/* A key under construction: a kind byte, then parts. */
struct key {
	uint8_t b[KEY_MAX]; /* bytes */
	size_t n;           /* length */
};

static inline void key_init(struct key *k, char kind)
{
	k->b[0] = (uint8_t)kind;
	k->n = 1;
}

/* Appends s and, if sep, a NUL. Callers validated the names; an overlong
 * part is cut rather than overflowing, and then matches nothing. */
static inline void key_str(struct key *k, const char *s, bool sep)
{
	size_t len = strlen(s);
	if (len > KEY_MAX - k->n - 10)
		len = KEY_MAX - k->n - 10;
	memcpy(k->b + k->n, s, len);
	k->n += len;
	if (sep)
		k->b[k->n++] = 0;
}

static inline void key_u64(struct key *k, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		k->b[k->n++] = (uint8_t)(v >> (8 * i));
}

/* kind a [\0 b] */
static inline void key_2(struct key *k, char kind, const char *a, const char *b)
{
	key_init(k, kind);
	key_str(k, a, b != NULL);
	if (b != NULL)
		key_str(k, b, false);
}

/* The exclusive upper bound of every key that starts with k (k ends in a
 * NUL separator or a name character, never 0xff). */
static inline void key_upper(const struct key *k, struct key *up)
{
	*up = *k;
	up->b[up->n - 1]++;
}

/* Packs m into a malloc'ed buffer; NULL when out of memory. */
void *control_store_pack(const ProtobufCMessage *m, size_t *len);

/* Reads key k and unpacks it with desc. -ENOENT, -EIO (undecodable values
 * are logged as corruption), -ENOMEM. */
int control_store_read(struct control_store *s, const struct key *k,
                       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* Adds dc to b as the change with revision expect (head + 1 under the
 * lock); -EIO if the change log disagrees. */
int control_store_add_change(struct control_store *s, struct kv_batch *b, const char *tenant,
                             const Noetl__DefinitionChange *dc, int64_t now_ms, uint64_t expect);

/* Every value of kind under tenant (NULL: of every tenant), unpacked with
 * desc, into a malloc'ed array (free each, then the array). No locking. */
int control_store_collect(struct control_store *s, char kind, const char *tenant,
                          const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***arr,
                          size_t *n);

/* The key of a schedule's last fire time: 's' tenant \0 pkg \0 sched. */
void control_store_schedule_key(struct key *k, const char *tenant, const char *pkg,
                                const char *sched);

/* Writes b synced; commits the change log if it succeeded, else aborts it. */
int control_store_write(struct control_store *s, struct kv_batch *b);

#endif
