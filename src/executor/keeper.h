/*
 * keeper: keeps the leases of running batches alive (see keeper.c).
 */
#ifndef NOETL_KEEPER_H
#define NOETL_KEEPER_H

#include <stddef.h>
#include <stdint.h>

#include "queue.pb-c.h"
#include "rpc.h"

struct keeper;
struct keeper_batch;

/*
 * Starts the thread that extends held leases to lease_ms from now, every
 * lease_ms / 3, over queue (borrowed; must outlive the keeper) with the
 * credentials token (copied; may be NULL). -EINVAL if lease_ms < 3,
 * -ENOMEM, -EAGAIN (no thread).
 */
int keeper_create(struct rpc_client *queue, const char *token, uint32_t lease_ms,
                  struct keeper **out);

/* Stops the thread and forgets every batch still held. NULL is fine. */
void keeper_destroy(struct keeper *k);

/* Holds the leases of items[0..n) (tokens copied) until keeper_release.
 * Thread-safe. */
struct keeper_batch *keeper_hold(struct keeper *k, Noetl__Leased *const *items, size_t n);

/* Stops extending b's leases and frees b. Call it before settling the
 * batch, so no Extend races its Ack. NULL is fine. Thread-safe. */
void keeper_release(struct keeper *k, struct keeper_batch *b);

/* Leases extended, and leases found run out when extended, since creation. */
void keeper_stats(struct keeper *k, uint64_t *extended, uint64_t *lost);

#endif
