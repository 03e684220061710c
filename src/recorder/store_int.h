/*
 * store_int: what the store's files (store.c, store_query.c, store_retain.c)
 * share: the store itself, record facts and the meta value. Private.
 */
#ifndef NOETL_RECORDER_STORE_INT_H
#define NOETL_RECORDER_STORE_INT_H

#include <pthread.h>

#include "keys.h"
#include "kv.h"
#include "store.h"

/* One tenant's usage; a node of the usage table. */
struct usage {
	char *tenant;      /* owned */
	uint64_t records;  /* records stored */
	uint64_t bytes;    /* their charge */
	int64_t d_records; /* change made by the write in progress */
	int64_t d_bytes;
	bool dirty;         /* on the dirty list of the write in progress */
	struct usage *next; /* hash chain */
	struct usage *next_dirty;
};

struct recorder_store {
	struct kv *kv;          /* owned */
	struct changelog *cl;   /* owned; prefix KP_LOG */
	pthread_mutex_t lock;   /* the write mutex: appends, retention steps, usage */
	struct usage **buckets; /* usage table, by tenant; under lock */
	size_t nbuckets;        /* a power of two */
	size_t ntenants;        /* entries in the table */
	struct usage *dirty;    /* entries the write in progress changes */
	struct kv_batch *batch; /* reused by appends; under lock */
	uint8_t *buf;           /* packing buffer; under lock */
	size_t bufcap;
};

/* The facts of a record the indexes need, borrowed from the record. */
struct recinfo {
	const char *tenant;  /* owning tenant */
	const char *event;   /* event id; "" if none */
	const char *related; /* timeline ROUTED / CAUSED_BY: the other event; else "" */
	char kind;           /* RK_EXEC, RK_LOG, RK_TIMELINE */
	uint8_t aux;         /* status, level or timeline kind */
	int64_t time;        /* start_ms or time_ms */
};

/* Fills *ri from rec; false if rec holds no record. */
bool store_recinfo(const Noetl__Record *rec, struct recinfo *ri);

/* The meta value of an 'r' key. */
struct meta {
	uint8_t aux;                          /* status, level or timeline kind */
	uint32_t charge;                      /* bytes charged */
	char event[RECORDER_EVENT_MAX + 1];   /* "" if none */
	char related[RECORDER_EVENT_MAX + 1]; /* "" if none */
};

/* Encodes meta into buf (at least meta_max() bytes); returns the length. */
size_t store_meta_encode(const struct recinfo *ri, uint32_t charge, uint8_t *buf);
#define META_MAX (1 + 4 + 1 + RECORDER_EVENT_MAX + 1 + RECORDER_EVENT_MAX)

/* Decodes a meta value; false if it is malformed. */
bool store_meta_decode(const void *v, size_t len, struct meta *m);

/* Key builders for a record's keys. */
void store_key_record(struct key *k, const char *tenant, char kind, int64_t time, uint64_t rev);
void store_key_time(struct key *k, char prefix, const char *tenant, int64_t time, uint64_t rev);
void store_key_all(struct key *k, int64_t time, uint64_t rev);
void store_key_event(struct key *k, const char *event, const char *tenant, uint64_t rev);

/* Reads the record stored as revision rev. -ENOENT if it is gone, -EIO,
 * -EBADMSG if it does not decode. *out: protobuf_c_message_free_unpacked. */
int store_read_record(struct recorder_store *s, uint64_t rev, Noetl__Record **out);

/* The usage entry of tenant, created if missing (NULL on ENOMEM); under lock. */
struct usage *store_usage_get(struct recorder_store *s, const char *tenant, bool create);

/* Adds the usage change to the write in progress; under lock. */
void store_usage_add(struct recorder_store *s, struct usage *u, int64_t records, int64_t bytes);

/* Puts the dirty usage entries into b; under lock. */
void store_usage_put(struct recorder_store *s, struct kv_batch *b);

/* After the write: keeps (ok) or reverts the dirty changes; under lock. */
void store_usage_end(struct recorder_store *s, bool ok);

#endif
