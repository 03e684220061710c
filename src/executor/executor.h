/*
 * executor: leases events from the Queue, runs them with the engine, and
 * settles each one: ack (enqueuing its follow-up in the same atomic call),
 * or nack with the reason (the Queue retries with backoff, then
 * dead-letters). Every attempt, its guest logs and its timeline steps go to
 * the Recorder.
 *
 * Result routing (docs/jobicolets.md):
 *   code 0        -> ack; the job's result.ok event is enqueued, if defined
 *   code != 0     -> ack with the result.error event, if defined; else nack
 *                    ("exit code N: <result>") and the retry policy applies
 *   trap, timeout, out of memory, crash, compile error, unknown event
 *                 -> nack with the reason; retry policy, then the DLQ
 * A follow-up's payload is the JSON object
 *   {"code": N, "result": <the module's result>, "parent": "<event id>",
 *    "event": "<event name>"}
 * where result is the module's result embedded as JSON if it is valid JSON,
 * else as a string (or "result_base64" if it is not UTF-8). The follow-up's
 * idempotency key is "<parent id>/ok" or "<parent id>/error", so an event
 * that runs twice (at-least-once) still produces one follow-up.
 *
 * Workers. `workers` threads each lease up to `batch` items, at most
 * `per_tenant` of one tenant per lease (the per-tenant concurrency limit is
 * workers x per_tenant), so one busy tenant cannot fill every runner.
 *
 * Threads: create/stop/destroy from one thread; stats from any.
 */
#ifndef NOETL_EXECUTOR_H
#define NOETL_EXECUTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* A lease is this long unless configured: the keeper extends it while its
 * batch runs, so it bounds how long a killed executor's events wait, not how
 * long a batch may run. */
#define EXECUTOR_DEFAULT_LEASE_MS 30000

struct executor_config {
	const char *control_url; /* RPC URLs of the services */
	const char *repository_url;
	const char *queue_url;
	const char *recorder_url;
	const char *control_stream; /* change stream URLs */
	const char *repository_stream;
	const char *token;           /* platform credential, may be NULL */
	const char *host;            /* recorded as the executor host; NULL: hostname */
	struct engine_config engine; /* cache dir, pool size, default limits */
	unsigned workers;            /* leasing threads; 0: the engine's pool size */
	unsigned batch;              /* items per lease; 0: 16 */
	unsigned per_tenant;         /* items of one tenant per lease; 0: batch / 2 (>= 1) */
	int lease_ms;                /* lease time, extended while a batch runs (keeper.c);
	                                0: EXECUTOR_DEFAULT_LEASE_MS */
	size_t report_bytes;         /* recorder buffer; 0: 32 MiB */
};

struct executor;

/*
 * Connects, loads the definitions (compiling their modules) and starts the
 * workers. Waits up to start_wait_ms for Control and the Repository to
 * answer; -EAGAIN (with *err) if they did not. Other -errno with *err.
 */
int executor_create(const struct executor_config *cfg, int start_wait_ms, struct executor **out,
                    char **err);

/* Stops leasing and waits for the batches in progress to be settled. */
void executor_stop(struct executor *ex);

/*
 * Pauses (true) or resumes (false) leasing: while paused the workers lease
 * nothing new, so events accepted meanwhile wait in the Queue (for
 * maintenance, or to build a backlog on purpose as bench/e2e does). Batches
 * already leased run and settle as usual, and a lease call already waiting
 * for items (up to 500 ms) may still return some. Any thread.
 */
void executor_pause(struct executor *ex, bool paused);

/* Stops (if not stopped) and frees; accepts NULL. */
void executor_destroy(struct executor *ex);

struct executor_stats {
	uint64_t leased;           /* items leased */
	uint64_t succeeded;        /* acked after code 0 */
	uint64_t routed;           /* follow-ups enqueued */
	uint64_t failed;           /* nacked */
	uint64_t dead;             /* nacked into the DLQ */
	uint64_t settle_errors;    /* ack/nack calls that failed (the lease will expire) */
	uint64_t released;         /* given back unrun: definitions not ready here yet */
	uint64_t leases_extended;  /* leases of running batches extended */
	uint64_t leases_lost;      /* leases found run out when extended */
	uint64_t control_revision; /* definitions applied up to */
	unsigned modules;          /* modules loaded */
};
void executor_stats(struct executor *ex, struct executor_stats *out);

/* The engine, for /metrics. */
struct engine *executor_engine(struct executor *ex);

/*
 * The executor's /metrics families (noetl_executor_events_total{outcome},
 * noetl_executor_runners{state}, noetl_executor_compile_cache_*), for
 * noetl-executor and the all-in-one alike. They may be registered before the
 * executor exists: they read it from slot->running, which the caller sets
 * once the executor runs and clears before destroying it (NULL: no samples).
 * The slot must outlive the registry m.
 */
struct executor_metrics_slot;
struct executor_metrics_family {
	struct executor_metrics_slot *slot;
	int kind;
};
struct executor_metrics_slot {
	_Atomic(struct executor *) running;
	struct executor_metrics_family families[6]; /* the callbacks' arguments */
};
struct metrics;
void executor_metrics(struct metrics *m, struct executor_metrics_slot *slot);

#endif
