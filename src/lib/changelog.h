/*
 * changelog: a service's ordered log of changes, in its own kv store, and
 * the bridge from that log to its stream.
 *
 * Key layout under a caller-chosen prefix P (one byte or more):
 *   P 'c' rev(be64)                    -> packed noetl.Change
 *   P 't' topic '\0' rev(be64)         -> empty (index of a topic's changes)
 *   P 'h'                              -> head revision (be64)
 *
 * A change is added to the caller's write batch, so the change and the state
 * it describes are stored in one atomic write. Revisions are handed out in
 * order by changelog_add; the caller holds its own write lock around
 * add → kv_write → commit/abort, which makes store order = revision order =
 * publish order. After the write succeeds, changelog_commit publishes the
 * changes on the stream; after it fails, changelog_abort forgets them and
 * gives their revisions back.
 *
 * Threads: add/commit/abort under the caller's write lock; read and head from
 * any thread.
 */
#ifndef NOETL_CHANGELOG_H
#define NOETL_CHANGELOG_H

#include <stdbool.h>
#include <stdint.h>

#include "kv.h"
#include "rpc.pb-c.h"
#include "stream.h"

struct changelog;

/* Opens the log in kv (borrowed) under prefix (copied; plen bytes). pub may be
 * NULL (no stream). Loads the head revision. 0 or -errno. */
int changelog_open(struct kv *kv, const void *prefix, size_t plen, struct stream_pub *pub,
                   struct changelog **out);
void changelog_close(struct changelog *cl);

/*
 * Opens the store of a service that publishes its changes: the kv store in
 * dir and the log under prefix in it, as changelog_open. 0 with *kv and *log
 * (close both with changelog_close_store), or -errno with nothing open.
 */
int changelog_open_store(const char *dir, const void *prefix, size_t plen, struct stream_pub *pub,
                         struct kv **kv, struct changelog **log);
/* Closes the log, then its store; either may be NULL. */
void changelog_close_store(struct kv *kv, struct changelog *log);

/* Adds a change of topic with body (copied) to b and returns its revision. */
uint64_t changelog_add(struct changelog *cl, struct kv_batch *b, const char *topic,
                       const void *body, size_t blen, int64_t time_ms);

/* After kv_write of b succeeded: makes the added changes visible and
 * publishes them, in order. */
void changelog_commit(struct changelog *cl);

/* After kv_write of b failed: forgets the added changes. */
void changelog_abort(struct changelog *cl);

/* Newest committed revision. */
uint64_t changelog_head(struct changelog *cl);

/*
 * Reads committed changes with revision > since, of topic (NULL or "" = all),
 * at most limit (0 = 500), into a freshly allocated reply (free with
 * changelog_reply_free). Fills head and more. 0 or -EIO.
 */
int changelog_read(struct changelog *cl, uint64_t since, const char *topic, uint32_t limit,
                   Noetl__ChangesReply **out);
void changelog_reply_free(Noetl__ChangesReply *r);

/* Reads the committed change of revision rev into *out (free with
 * noetl__change__free_unpacked): for services whose change log entry is the
 * stored record itself. -ENOENT if there is none (not committed yet, trimmed
 * or forgotten), -EIO. Any thread. */
int changelog_get(struct changelog *cl, uint64_t rev, Noetl__Change **out);

/*
 * Adds to b the deletion of the committed changes revs[0..n) (ascending) of
 * topic, for retention of one topic while the others keep theirs. Runs of
 * consecutive revisions become one range delete, in the log and in the
 * topic's index. The newest change is never deleted (the head is read from
 * it at open): it is skipped. Under the caller's write lock; the caller
 * writes b.
 */
void changelog_forget(struct changelog *cl, struct kv_batch *b, const char *topic,
                      const uint64_t *revs, size_t n);

/* Deletes changes with revision < before (range deletes; the head stays).
 * For retention. 0 or -EIO. */
int changelog_trim(struct changelog *cl, uint64_t before);

#endif
