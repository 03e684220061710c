/*
 * batcher: coalesces the enqueues of concurrent requests into few Enqueue
 * calls to the Queue.
 *
 * A request hands over all its items as one job. Sender threads (one per
 * concurrent call to the Queue) take whatever jobs are waiting, up to
 * max_batch items, make one Enqueue call of all their items and hand each
 * job its slice of the results. A job is never split: the items of one
 * request are made durable together or not at all. While a call is in
 * flight new jobs collect, so batches grow with the load and a lone request
 * does not wait for company (unless linger_us asks for it).
 *
 * An Enqueue fails as a whole. When a batch of several jobs fails with a
 * status that may be the fault of one request (a tenant over its depth
 * limit, an item the Queue refuses), the jobs are retried per tenant, and
 * for a non-quota error per job, so one tenant's 429 never becomes
 * another's. Unreachable Queue or timeout: every job gets that status (the
 * listener answers 503; with an Idempotency-Key the client's retry cannot
 * duplicate what may have been stored).
 *
 * Memory is bounded: at most max_pending items wait; beyond that submit
 * refuses at once (the listener answers 503) instead of queueing more.
 *
 * Threads: submit from any thread; done callbacks run on sender threads and
 * must not block for long.
 */
#ifndef NOETL_LISTENER_BATCHER_H
#define NOETL_LISTENER_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "queue.pb-c.h"
#include "rpc.h"

struct metric;

struct listener_batcher;
struct listener_batch_job;

/* Outcome of a job: status OK with one result per item (borrowed for the
 * call), or a failure status and message. */
typedef void (*listener_batch_done_fn)(struct listener_batch_job *job, int status, const char *msg,
                                       Noetl__EnqueueResult *const *results);

/* A request's items; embedded in the caller's request state. The items and
 * the job are borrowed until done is called. */
struct listener_batch_job {
	Noetl__Item **items; /* n items, all of tenant */
	size_t n;
	const char *tenant;              /* for per-tenant retries */
	listener_batch_done_fn done;     /* called once, on a sender thread */
	struct listener_batch_job *next; /* internal */
};

struct listener_batcher_options {
	struct rpc_client *queue; /* borrowed; must outlive the batcher */
	const char *token;        /* credentials for the Queue; NULL = none */
	int senders;              /* concurrent Enqueue calls; 0 = 2 */
	size_t max_batch;         /* items per call (a bigger job goes alone); 0 = 1000 */
	int linger_us;            /* wait this long for more jobs when a batch is small; 0 = none */
	size_t max_pending;       /* items waiting for a sender; 0 = 100000 */
	int call_timeout_ms;      /* per Enqueue; 0 = 5000 */
	struct metric *call_seconds; /* histogram of Enqueue call times (borrowed); NULL = none */
};

struct listener_batcher_stats {
	uint64_t calls;    /* Enqueue calls made */
	uint64_t items;    /* items sent */
	uint64_t jobs;     /* jobs completed */
	uint64_t failures; /* calls that failed */
	uint64_t refused;  /* jobs refused by submit (full) */
	size_t pending;    /* items waiting now */
};

int listener_batcher_create(const struct listener_batcher_options *opt,
                            struct listener_batcher **out);

/* Completes the jobs in flight, fails the waiting ones with UNAVAILABLE
 * ("shutting down"), joins the senders and frees. Accepts NULL. */
void listener_batcher_destroy(struct listener_batcher *b);

/* Queues a job. 0, or -EAGAIN when max_pending items wait already, or
 * -ESHUTDOWN; done is not called when submit fails. */
int listener_batcher_submit(struct listener_batcher *b, struct listener_batch_job *job);

void listener_batcher_stats(struct listener_batcher *b, struct listener_batcher_stats *out);

#endif
