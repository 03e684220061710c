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

/* Deletes changes with revision < before (range deletes; the head stays).
 * For retention. 0 or -EIO. */
int changelog_trim(struct changelog *cl, uint64_t before);

#endif
