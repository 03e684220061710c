/*
 * queue_store: the Queue service's durable state, in its own kv store.
 *
 * The store keeps per-tenant named queues of noetl.Item. An item is ready
 * (leasable now), delayed (until its not_before time or a retry backoff),
 * leased (invisible until acked, nacked or its lease expires) or dead (in the
 * tenant's dead-letter queue). Every call that changes state returns only
 * after the change is on disk (synced write); concurrent calls share one
 * sync (group commit, see store.c).
 *
 * The service (service.c) validates requests and fills defaults; the store
 * trusts what it is given (valid names, bounded sizes).
 *
 * Errors: 0 or negative errno codes. -EIO: the store failed a write and is
 * unusable until the process restarts (it reports not ready). -EDQUOT: a
 * depth limit; -EMLINK: the queue or tenant count limit; -ENOENT: an unknown
 * or expired lease; -EINVAL: a bad token or a follow-up of another tenant.
 *
 * Threads: every function may be called from any number of threads at once.
 */
#ifndef NOETL_QUEUE_STORE_H
#define NOETL_QUEUE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.pb-c.h"

#define QUEUE_NAME_MAX     64   /* tenant and queue names */
#define QUEUE_ID_MAX       128  /* item ids */
#define QUEUE_IDEM_MAX     256  /* idempotency keys */
#define QUEUE_TOKEN_LEN    16   /* lease tokens: lease id + nonce */
#define QUEUE_REASON_MAX   1024 /* a failure reason kept in the history */
#define QUEUE_HISTORY_MAX  100  /* attempts kept in an item's history */
#define QUEUE_ATTEMPTS_MAX 100  /* largest max_attempts a policy may ask for */

/* Retry policy defaults, used where an item's policy leaves a field 0. */
struct queue_retry {
	uint32_t max_attempts;   /* total attempts; default 3 */
	uint32_t base_ms;        /* delay before the 2nd attempt; default 1000 */
	uint32_t max_ms;         /* cap of the delay; default 60000 */
	uint32_t jitter_percent; /* +/- random part of each delay; default 20 */
};

struct queue_store_options {
	const char *dir;            /* kv directory; created if missing */
	size_t cache_bytes;         /* kv block cache; 0: kv default */
	uint64_t max_depth_tenant;  /* ready+leased+delayed per tenant; 0: 1,000,000 */
	uint64_t max_depth_total;   /* the same over all tenants; 0: 10,000,000 */
	uint32_t max_queues_tenant; /* queues per tenant; 0: 1024 */
	uint32_t max_tenants;       /* tenants; 0: 10,000 */
	int64_t idem_retention_ms;  /* idempotency keys are kept this long; 0: 24 h */
	struct queue_retry retry;   /* defaults for items without a policy */
	int tick_ms;                /* maintenance period (delays, expiry); 0: 50 */
};

struct queue_store;

/* Opens the store and recovers its in-memory index (queue positions and
 * counters; never the items). Starts the writer and maintenance threads. */
int queue_store_open(const struct queue_store_options *opt, struct queue_store **out);

/* Stops the threads (pending writes finish first) and closes; accepts NULL.
 * No call may be in progress. */
void queue_store_close(struct queue_store *s);

/* False once a write failed: the process must restart. */
bool queue_store_healthy(struct queue_store *s);

/* The options in effect, defaults filled in (borrowed). */
const struct queue_store_options *queue_store_options(const struct queue_store *s);

/* The delay before attempt `attempt + 1` after attempt `attempt` (>= 1)
 * failed, under policy p (defaults filled), with random jitter in [0, 1)
 * given by r. Exposed for tests. */
int64_t queue_store_backoff_ms(const struct queue_retry *p, uint32_t attempt, double r);

/* --- enqueue ------------------------------------------------------------ */

/* Fate of one enqueued item. */
struct queue_store_enqueued {
	bool duplicate; /* its idempotency key was seen within the retention window */
	char *id;       /* malloc'ed: the item's id, or the original one for a duplicate */
};

/*
 * Makes items durable, all or none. Each item has tenant, queue and id set
 * and valid (borrowed). res has n entries; on success each gets its fate
 * (the caller frees res[i].id). On -EDQUOT or -EMLINK, err (if not NULL)
 * gets a message naming the tenant and the limit.
 */
int queue_store_enqueue(struct queue_store *s, Noetl__Item *const *items, size_t n,
                        struct queue_store_enqueued *res, char *err, size_t errlen);

/* --- lease, ack, nack, extend ------------------------------------------- */

struct queue_store_lease_req {
	uint32_t max_items;      /* at most this many (>= 1) */
	uint32_t lease_ms;       /* lease time (>= 1) */
	uint32_t wait_ms;        /* wait this long for an item if none is ready */
	uint32_t per_tenant_max; /* at most this many of one tenant; 0: no cap */
	const char *tenant;      /* only this tenant; NULL or "": all, fairly */
};

struct queue_store_leased {
	Noetl__Item *item;              /* unpacked; attempt already counted */
	uint8_t token[QUEUE_TOKEN_LEN]; /* for ack, nack, extend */
	int64_t expires_ms;             /* Unix time the lease runs out */
};

/*
 * Leases up to req->max_items ready items, round robin over tenants and,
 * within a tenant, over its queues. On success *out (malloc'ed, free with
 * queue_store_leased_free) has *n entries, possibly none.
 */
int queue_store_lease(struct queue_store *s, const struct queue_store_lease_req *req,
                      struct queue_store_leased **out, size_t *n);
void queue_store_leased_free(struct queue_store_leased *v, size_t n);

/* One entry of an ack; status is written by queue_store_ack. */
struct queue_store_ack {
	const uint8_t *token; /* lease token (borrowed) */
	size_t token_len;
	Noetl__Item *const *follow_ups; /* validated items; tenant "" means the parent's */
	size_t n_follow_ups;
	int status; /* out: 0, -ENOENT, -EINVAL, -EMLINK */
};

/* Acks every entry and enqueues its follow-ups, all in one atomic write.
 * tenant: if not empty, leases of other tenants are -ENOENT. Returns 0 when
 * the write succeeded (entries carry their own status) or -EIO. */
int queue_store_ack(struct queue_store *s, const char *tenant, struct queue_store_ack *e, size_t n);

struct queue_store_nack {
	const uint8_t *token; /* lease token (borrowed) */
	size_t token_len;
	const char *reason;  /* kept in the history (borrowed; truncated) */
	bool dead;           /* dead-letter now */
	bool release;        /* give it back unrun: no attempt counted, no history */
	uint32_t delay_ms;   /* release: ready again after this long */
	int status;          /* out: 0, -ENOENT, -EINVAL */
	bool dead_lettered;  /* out: moved to the dead-letter queue */
	int64_t retry_at_ms; /* out: when it is ready again (retry, release) */
};

/* Fails (or releases) every entry, all in one atomic write. A failed entry
 * gets a history entry and is retried after its backoff, or dead-lettered
 * after its last attempt or when dead is set. A released entry takes back
 * the attempt its lease counted and is ready again after delay_ms with its
 * history unchanged: for items the consumer could not run yet. tenant: if
 * not empty, leases of other tenants are -ENOENT. Returns 0 when the write
 * succeeded (entries carry their own status) or -EIO. */
int queue_store_nack(struct queue_store *s, const char *tenant, struct queue_store_nack *e,
                     size_t n);

struct queue_store_extend {
	const uint8_t *token; /* lease token (borrowed) */
	size_t token_len;
	int status;         /* out: 0, -ENOENT, -EINVAL */
	int64_t expires_ms; /* out: the new expiry */
};

int queue_store_extend(struct queue_store *s, const char *tenant, uint32_t lease_ms,
                       struct queue_store_extend *e, size_t n);

/* --- stats ---------------------------------------------------------------- */

struct queue_store_stat {
	char tenant[QUEUE_NAME_MAX + 1];
	char queue[QUEUE_NAME_MAX + 1];
	uint64_t ready, leased, delayed, dead;
	int64_t oldest_age_ms;
	uint64_t enqueued, acked, failed, expired;
};

/* Stats of every queue of tenant (NULL or "": all), sorted by tenant and
 * queue. *out is malloc'ed (free()), *n entries. */
int queue_store_stats(struct queue_store *s, const char *tenant, struct queue_store_stat **out,
                      size_t *n);

/* Store-wide figures for metrics. */
struct queue_store_totals {
	uint64_t depth;      /* ready + leased + delayed, all tenants */
	uint64_t groups;     /* synced writes made */
	uint64_t group_ops;  /* operations in them (items, leases, acks ...) */
	uint64_t write_us;   /* time spent in synced writes */
	uint64_t read_us;    /* time leases spent reading ready items */
	uint64_t read_items; /* items they read */
	uint64_t released;   /* leases given back unrun (Nack with release) since start */
};
void queue_store_totals(struct queue_store *s, struct queue_store_totals *out);

/* --- dead letters ----------------------------------------------------------- */

/*
 * Lists dead items of tenant (and queue, if not NULL/""), oldest first within
 * a queue, at most limit, starting after cursor (NULL/0: from the start).
 * *items is a malloc'ed array of unpacked items (free with
 * queue_store_items_free); *next (malloc'ed, NULL on the last page) is the
 * cursor of the next page. -EINVAL: a cursor not from this listing.
 */
int queue_store_dead_list(struct queue_store *s, const char *tenant, const char *queue,
                          uint32_t limit, const uint8_t *cursor, size_t clen, Noetl__Item ***items,
                          size_t *n, uint8_t **next, size_t *nlen);
void queue_store_items_free(Noetl__Item **items, size_t n);

/*
 * Moves dead items of tenant (queue: NULL/"" for all) back to their queues
 * with fresh attempts (replay) or deletes them (purge). ids: only these item
 * ids (n_ids 0: all). *count gets how many were moved or deleted, also when
 * a replay stops at a depth limit (-EDQUOT, after moving what fitted).
 */
int queue_store_dead_replay(struct queue_store *s, const char *tenant, const char *queue,
                            char *const *ids, size_t n_ids, uint64_t *count);
int queue_store_dead_purge(struct queue_store *s, const char *tenant, const char *queue,
                           char *const *ids, size_t n_ids, uint64_t *count);

#endif
