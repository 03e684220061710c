/*
 * report: ships execution records, guest logs and timeline entries to the
 * Recorder in batches, off the execution path.
 *
 * Records are packed when added and kept in a bounded buffer; one thread
 * sends them in Record calls of up to a few hundred. When the Recorder is
 * unreachable the thread retries with backoff and the buffer fills; a full
 * buffer makes report_add wait (back-pressure on the executor) rather than
 * drop: every attempt is recorded. Nothing here is durable: records still in
 * the buffer when the process is killed are lost, while the events they
 * describe are safe in the Queue.
 *
 * Threads: report_add from any thread.
 */
#ifndef NOETL_EXECUTOR_REPORT_H
#define NOETL_EXECUTOR_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "recorder.pb-c.h"
#include "rpc.h"

struct report;

/* client is borrowed. max_bytes bounds the buffer (0: 32 MiB). */
int report_create(struct rpc_client *client, const char *token, size_t max_bytes,
                  struct report **out);

/* Adds one record (packed here; rec is borrowed). Waits while the buffer is
 * full. */
void report_add(struct report *r, const Noetl__Record *rec);

/* Records sent, and records waiting. */
void report_counts(struct report *r, uint64_t *sent, uint64_t *pending);

/* Sends what is buffered (waiting up to flush_ms) and stops; accepts NULL. */
void report_destroy(struct report *r, int flush_ms);

#endif
