/*
 * store_priv: what the files of the queue store share (store.c: group
 * commit, open and close; store_index.c: keys and the in-memory index;
 * store_enqueue.c; store_lease.c; store_dead.c; store_maint.c). Not for the
 * service.
 *
 * Key layout (one kv store; the first byte names the key space):
 *
 *   'Q' tenant 0 queue 0              -> queue state: positions and counters
 *   'R' tenant 0 queue 0 seq          -> packed Item, ready (seq: be64)
 *   'l' lease_id                      -> lease: expiry, nonce, queue, packed Item
 *   'x' expiry_ms lease_id            -> (empty) leases by expiry time
 *   'd' ready_ms id                   -> queue, packed Item: delayed items by time
 *   'D' tenant 0 queue 0 id           -> packed Item with history: dead letters
 *   'i' tenant 0 key                  -> created_ms, item id: idempotency keys
 *   'j' created_ms tenant 0 key       -> (empty) idempotency keys by age
 *   'M' "gseq"                        -> the next store-wide id (be64)
 *
 * Numbers in keys are big-endian so keys sort by them. Names never hold a NUL
 * (util_valid_name), so "tenant 0 queue 0" is unambiguous and a tenant's keys
 * form one contiguous range.
 */
#ifndef NOETL_QUEUE_STORE_PRIV_H
#define NOETL_QUEUE_STORE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kv.h"
#include "qmap.h"
#include "store.h"

#define KEY_MAX        600 /* longest key: 'j' + 8 + tenant + 0 + idempotency key */
#define QKEY_MAX       (2 * QUEUE_NAME_MAX + 2)
#define RETIRE_BATCH   1024  /* consumed ready keys are deleted this many at a time */
#define RETIRE_IDLE_MS 10000 /* ... or after this long, whatever their number */
#define SCAN_CHUNK     512   /* maintenance moves at most this many items per write */

/* An intrusive circular doubly-linked list node (or head). */
struct qlink {
	struct qlink *prev, *next;
};

struct qtenant {
	char *name;                 /* tenant name */
	struct qlink active;        /* in store.active while some queue has visible ready items */
	struct qlink active_queues; /* its queues with visible ready items, round-robin order */
	struct qqueue *queues;      /* all its queues (singly linked by next) */
	uint32_t nqueues;           /* length of queues */
	uint64_t depth;             /* ready + leased + delayed over its queues */
	uint64_t plan_epoch;        /* lease call that last planned on it */
	uint32_t plan_taken;        /* items planned from it in that call */
};

struct qqueue {
	struct qtenant *t;              /* owning tenant */
	char *name;                     /* queue name */
	uint8_t *key;                   /* "tenant 0 queue 0": prefix of its keys */
	size_t klen;                    /* length of key */
	struct qqueue *next;            /* next queue of the tenant */
	struct qlink active;            /* in t->active_queues while visible > head */
	uint64_t head;                  /* seq of the oldest ready item */
	uint64_t tail;                  /* seq the next ready item gets */
	uint64_t visible;               /* ready items below this seq are on disk (written) */
	uint64_t retired;               /* keys below this seq are deleted */
	int64_t retired_ms;             /* when retired last moved */
	uint64_t leased, delayed, dead; /* current counts */
	uint64_t enqueued, acked, failed, expired; /* counters since creation */
	uint64_t dirty_gid;  /* the pending group holds its state, if == pending gid */
	uint64_t plan_epoch; /* lease call that last planned on it */
	uint32_t plan_count; /* items planned from it in that call */
};

/* A group: the operations of many calls, written with one synced write. */
struct qgroup {
	struct kv_batch *b;    /* the operations */
	uint64_t gid;          /* its id; groups are written in gid order */
	size_t nops;           /* operations other than state bookkeeping */
	struct qqueue **dirty; /* queues whose state it carries */
	uint64_t *dirty_tail;  /* their tail when sealed: visible once written */
	size_t ndirty, capdirty;
	uint64_t *leases; /* lease ids finished or extended in it */
	size_t nleases, capleases;
	char **idem; /* idempotency map keys added in it (length-prefixed) */
	size_t nidem, capidem;
	bool gseq; /* it must carry the store-wide id */
};

/* An idempotency key accepted in a group that is not written yet. */
struct qidem {
	uint64_t gid; /* group that writes it */
	char id[];    /* the item id it maps to */
};

struct queue_store {
	struct queue_store_options opt; /* options, defaults filled in */
	struct kv *kv;                  /* the store */

	pthread_mutex_t mu;           /* everything below, and the order of operations */
	pthread_cond_t writer_cv;     /* the writer waits for work */
	pthread_cond_t applied_cv[2]; /* callers wait for their group: [gid % 2], so a
	                                 written group wakes only its own callers */
	pthread_cond_t ready_cv;      /* leases wait for items (CLOCK_MONOTONIC) */
	pthread_cond_t maint_cv;      /* the maintenance thread sleeps (CLOCK_MONOTONIC) */
	struct qgroup groups[2];      /* the pending one and the one being written */
	struct qgroup *pending;       /* where operations go */
	uint64_t applied_gid;         /* groups up to this one are written */
	uint64_t failed_gid;          /* the first group whose write failed (0: none) */
	bool writing;                 /* the other group is being written (by the writer
	                                 thread or a caller, see store_commit) */
	bool stopping;                /* close has begun */

	struct qmap *tenants; /* name -> struct qtenant */
	struct qmap *queues;  /* "tenant 0 queue 0" -> struct qqueue */
	uint32_t ntenants;
	struct qlink active; /* tenants with visible ready items, round-robin order */
	uint64_t depth;      /* ready + leased + delayed, all tenants */
	uint64_t gseq;       /* next store-wide id (lease ids, delayed and dead keys) */
	uint64_t plan_epoch; /* lease calls so far */

	struct qmap *leases; /* lease id -> (gid << 1 | finished), unwritten changes */
	struct qmap *idem;   /* 'i' key -> struct qidem, unwritten keys */

	pthread_mutex_t dead_mu; /* one dead-letter replay or purge at a time */
	pthread_t writer;
	pthread_t maint;
	bool threads; /* the threads were started */

	uint64_t stat_groups, stat_group_ops, stat_write_us; /* for metrics */
	uint64_t stat_read_us, stat_read_items;              /* time leases spent reading items */
	uint64_t stat_released; /* leases given back unrun (Nack with release) */
};

/* --- lists --- */
void qlink_init(struct qlink *l);
bool qlink_linked(const struct qlink *l);
void qlink_remove(struct qlink *l);
void qlink_push_back(struct qlink *head, struct qlink *l);
#define QLINK_ENTRY(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* --- queue state records: version, then head, tail, retired, leased,
 * delayed, dead, enqueued, acked, failed, expired (be64 each) --- */
#define QSTATE_VERSION 1
#define QSTATE_FIELDS  10
#define QSTATE_LEN     (1 + 8 * QSTATE_FIELDS)
void store_qstate_encode(uint8_t *v, const struct qqueue *q);
/* False if the record is not a valid one (the queue is then untouched in
 * part). */
bool store_qstate_decode(const uint8_t *v, size_t len, struct qqueue *q);

/* A new tenant or queue in the index (no limits checked: recovery and
 * store_get_queue use them). */
struct qtenant *store_tenant_new(struct queue_store *s, const char *name);
struct qqueue *store_queue_new(struct queue_store *s, struct qtenant *t, const char *name);

/* --- keys --- */
size_t key_queue(uint8_t *k, const struct qqueue *q);
size_t key_ready(uint8_t *k, const struct qqueue *q, uint64_t seq);
size_t key_dead(uint8_t *k, const struct qqueue *q, uint64_t id);
size_t key_lease(uint8_t *k, uint64_t lease_id);
size_t key_expiry(uint8_t *k, int64_t ms, uint64_t lease_id);
size_t key_delayed(uint8_t *k, int64_t ms, uint64_t id);
size_t key_idem(uint8_t *k, const char *tenant, const char *ikey);

/* --- under mu --- */

/* The queue named tenant/queue, or NULL. */
struct qqueue *store_find_queue(struct queue_store *s, const char *tenant, const char *queue);
struct qqueue *store_find_qkey(struct queue_store *s, const uint8_t *qkey, size_t klen);

/* The queue, created if missing. -EMLINK at the tenant or queue limit
 * (err gets why). */
int store_get_queue(struct queue_store *s, const char *tenant, const char *queue,
                    struct qqueue **out, char *err, size_t errlen);

/* Records that q's state changed in the pending group. */
void store_dirty(struct queue_store *s, struct qqueue *q);

/* Adds delta to q's depth and its tenant's and the store's. */
void store_depth(struct queue_store *s, struct qqueue *q, int64_t delta);

/* Puts q in (or out of) the active lists after head or visible moved. */
void store_update_active(struct queue_store *s, struct qqueue *q);

/* A new store-wide id. */
uint64_t store_next_id(struct queue_store *s);

/* Packs item into a malloc'ed buffer (aborts on allocation failure). */
uint8_t *store_pack(const Noetl__Item *item, size_t *len);

/* Appends an item to q: ready at its tail, or delayed if not_before_ms is
 * after now. packed/plen is the packed item. Counts it in depth. */
void store_append(struct queue_store *s, struct qqueue *q, const uint8_t *packed, size_t plen,
                  int64_t not_before_ms, int64_t now);

/* Puts a packed item into q's dead-letter queue. */
void store_bury(struct queue_store *s, struct qqueue *q, const uint8_t *packed, size_t plen);

/* Adds a follow-up item of an ack (tenant set, names valid) to the pending
 * group, unless its idempotency key was seen. Follow-ups skip the depth
 * limits: the ack removes their parent, and refusing them would stall a
 * chain. 0 or -EMLINK. */
int store_add_follow_up(struct queue_store *s, const Noetl__Item *it, int64_t now, char *err,
                        size_t errlen);

/* Idempotency: true if ikey of tenant was accepted within the retention
 * window; *id (malloc'ed) the original item id, *gid the group that must be
 * written before saying so (0: written). */
bool store_idem_seen(struct queue_store *s, const char *tenant, const char *ikey, int64_t now,
                     char **id, uint64_t *gid);
/* Records ikey -> id in the pending group. */
void store_idem_add(struct queue_store *s, const char *tenant, const char *ikey, const char *id,
                    int64_t now);

/* Marks lease_id as finished (or only changed) in the pending group. */
void store_lease_touch(struct queue_store *s, uint64_t lease_id, bool finished);
/* 1 finished, 0 changed, -1 untouched in unwritten groups. */
int store_lease_state(struct queue_store *s, uint64_t lease_id);

/* Waits until group gid is written; if it is the pending group and no write
 * is in progress, writes it on the calling thread. Returns 0 or -EIO.
 * Releases and retakes mu while writing or waiting. */
int store_commit(struct queue_store *s, uint64_t gid);

/* Fails with -EIO when the store is broken. */
int store_check(struct queue_store *s);

/* --- lease records (store_lease.c) --- */

/* A lease record parsed from its value. */
struct qlease {
	int64_t expires_ms;
	uint8_t nonce[8];
	const uint8_t *qkey; /* borrowed from the value */
	size_t qklen;
	const uint8_t *item; /* packed item, borrowed from the value */
	size_t ilen;
};
bool store_parse_lease(const uint8_t *v, size_t len, struct qlease *out);

/* Moves expired leases back to ready (or dead); returns items moved, or
 * -EIO. Called by the maintenance thread without mu. */
int store_expire_leases(struct queue_store *s, int64_t now);

/* --- maintenance (store_maint.c) --- */
int store_maint_start(struct queue_store *s);

/* The retry policy of an item: its own fields, the store defaults for 0. */
void store_retry_fill(const struct queue_store *s, const Noetl__RetryPolicy *p,
                      struct queue_retry *out);

/* Packs item (borrowed, unchanged) with attempt set and one more failed
 * attempt {number, now, reason} at the end of its history (the oldest are
 * dropped beyond QUEUE_HISTORY_MAX). Malloc'ed; aborts if out of memory. */
uint8_t *store_pack_failed(const Noetl__Item *item, uint32_t attempt, uint32_t number, int64_t now,
                           const char *reason, size_t *len);

#endif
