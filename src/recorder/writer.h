/*
 * writer: group commit for the Recorder.
 *
 * Record calls arrive on many RPC worker threads at once, and each must
 * return only after its records are synced. Syncing each call on its own
 * would make the disk's sync latency the ceiling of the whole service. So
 * calls hand their records to one writer thread and wait; the writer takes
 * every call that is waiting (up to a group size), stores all their records
 * in one synced write, and wakes them all with their revisions. While a sync
 * is in progress the next group gathers, so the more concurrent callers, the
 * more records share each sync.
 *
 * Threads: submit from any number of threads; destroy after the last submit
 * returned.
 */
#ifndef NOETL_RECORDER_WRITER_H
#define NOETL_RECORDER_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct recorder_writer;

/* Starts the writer thread over store s (borrowed). group_records bounds the
 * records of one write (a single larger call still goes alone); 0 = 8192.
 * 0 or -errno. */
int recorder_writer_create(struct recorder_store *s, size_t group_records,
                           struct recorder_writer **out);

/* Waits for calls in flight, stops the thread and frees; accepts NULL. */
void recorder_writer_destroy(struct recorder_writer *w);

/*
 * Stores recs[0..n) (borrowed until return; validated; their revision fields
 * are written) in the next group write and waits until it is synced. On
 * success *last is the revision of recs[n-1]. Errors: those of
 * recorder_store_append (the whole group failed), -ESHUTDOWN after destroy
 * began.
 */
int recorder_writer_submit(struct recorder_writer *w, Noetl__Record *const *recs, size_t n,
                           uint64_t *last);

/* Synced writes done and records stored through them, for metrics and the
 * benchmark. */
void recorder_writer_stats(struct recorder_writer *w, uint64_t *writes, uint64_t *records);

#endif
