/*
 * reporter: best-effort timeline entries (TL_RECEIVED, TL_ACCEPTED) to the
 * Recorder, in batches, off the request path.
 *
 * Requests drop entries into a fixed ring; a thread sends what collected as
 * one Record call every interval (or sooner when a batch is full). The
 * timeline is an aid, not a promise: when the ring is full (the Recorder is
 * slow or down) new entries are dropped and counted, and a failed call
 * drops its batch and is counted; ingest never waits for the Recorder.
 *
 * Threads: listener_reporter_add from any thread (one short mutex hold); the sender
 * is the reporter's own thread.
 */
#ifndef NOETL_LISTENER_REPORTER_H
#define NOETL_LISTENER_REPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recorder.pb-c.h"
#include "rpc.h"

struct listener_reporter;

struct listener_reporter_options {
	struct rpc_client *recorder; /* borrowed; must outlive the reporter */
	const char *token;           /* credentials; NULL = none */
	size_t capacity;             /* entries buffered at most; 0 = 16384 */
	size_t batch;                /* entries per Record call at most; 0 = 1000 */
	int interval_ms;             /* send at least this often; 0 = 100 */
	int call_timeout_ms;         /* per Record call; 0 = 2000 */
};

struct listener_reporter_stats {
	uint64_t sent;     /* entries the Recorder stored */
	uint64_t dropped;  /* entries lost: ring full, or their call failed */
	uint64_t calls;    /* Record calls made */
	uint64_t failed;   /* of which failed */
	uint64_t released; /* times the emptied ring gave pages back to the system */
};

int listener_reporter_create(const struct listener_reporter_options *opt,
                             struct listener_reporter **out);

/* Sends what is buffered (one last try, bounded by the call timeout), stops
 * the thread and frees. Accepts NULL. */
void listener_reporter_destroy(struct listener_reporter *r);

/* Buffers one timeline entry (strings copied, truncated to the fields'
 * limits). False when it was dropped because the ring is full. */
bool listener_reporter_add(struct listener_reporter *r, const char *tenant, const char *event_id,
                           const char *event, Noetl__TimelineKind kind, int64_t time_ms,
                           const char *detail);

void listener_reporter_stats(struct listener_reporter *r, struct listener_reporter_stats *out);

#endif
