/*
 * queue: the Queue service (noetl.Queue), without a process around it.
 * noetl-queue's main.c and the all-in-one noetl build one with queue_create
 * and register queue_service() with their rpc server.
 *
 * The Queue holds durable per-tenant named queues in its own RocksDB: items
 * are accepted only once they are on disk, leased by executors for a time,
 * acked (optionally enqueueing follow-ups in the same write), nacked (retried
 * with exponential backoff, then dead-lettered) or left to expire (ready
 * again). See docs/queue.md for the guarantees, the retry policy, the
 * dead-letter operations, the key layout and the limits.
 */
#ifndef NOETL_QUEUE_H
#define NOETL_QUEUE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;

#define QUEUE_DEFAULT_MAX_PAYLOAD (1u << 20) /* 1 MiB per item */
#define QUEUE_DEFAULT_MAX_BATCH   10000      /* items per Enqueue, entries per Ack ... */
#define QUEUE_DEFAULT_LEASE_MS    30000      /* Lease and Extend with lease_ms 0 */
#define QUEUE_MAX_LEASE_ITEMS     1000       /* items per Lease call */

struct queue_config {
	const char *data_dir;             /* RocksDB directory; created if missing */
	size_t cache_bytes;               /* RocksDB block cache; 0 = 8 MiB */
	uint64_t max_depth_tenant;        /* ready+leased+delayed items per tenant; 0 = 1,000,000 */
	uint64_t max_depth_total;         /* the same over all tenants; 0 = 10,000,000 */
	uint32_t max_queues_tenant;       /* queues per tenant; 0 = 1024 */
	uint32_t max_tenants;             /* tenants; 0 = 10,000 */
	int64_t idempotency_retention_ms; /* how long an idempotency key is kept; 0 = 24 h */
	uint32_t max_payload_bytes;       /* largest item payload; 0 = QUEUE_DEFAULT_MAX_PAYLOAD */
	uint32_t max_batch;            /* items or entries per call; 0 = QUEUE_DEFAULT_MAX_BATCH */
	uint32_t retry_max_attempts;   /* defaults for items without a retry policy: 0 = 3, */
	uint32_t retry_base_ms;        /*   0 = 1000 (doubling per attempt), */
	uint32_t retry_max_ms;         /*   0 = 60000, */
	uint32_t retry_jitter_percent; /*   0 = 20 (+/- 20 %) */
	int tick_ms;                   /* how often delays and lease expiry are checked; 0 = 50 */
	struct metrics *metrics;       /* registry for the queue's metrics (borrowed, must
	                                  outlive the queue); NULL = none */
};

struct queue;

/* Opens the store (recovering positions and counters, never the items) and
 * starts its writer and maintenance threads. cfg is borrowed for the call.
 * 0 or -errno (the cause is logged). */
int queue_create(const struct queue_config *cfg, struct queue **out);

/* The noetl.Queue service to pass to rpc_server_add; owned by q and valid
 * until queue_destroy. */
ProtobufCService *queue_service(struct queue *q);

/* Readiness for httpd (arg is the struct queue): false with a reason once a
 * write to the store failed (the process must restart). Thread-safe. */
bool queue_ready(void *arg, char *why, size_t cap);

/* Stops the threads (pending writes finish) and closes the store. The rpc
 * server serving q must be destroyed first. Accepts NULL. */
void queue_destroy(struct queue *q);

#endif
