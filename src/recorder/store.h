/*
 * recorder store: the key layout of the Recorder and every kv call it makes.
 * Private to src/recorder/.
 *
 * Storing once. Every record (an execution attempt, a log line, a timeline
 * entry) is one change of the Recorder's change log: the change's body is
 * the packed Record, carrying its revision. The change log entry IS the
 * stored record; everything else is a small index entry that names the
 * revision, so a record costs its packed size once plus a few keys of a few
 * dozen bytes (which RocksDB's prefix compression shrinks further).
 *
 * Keys (tenants and event ids are util_valid_name strings, so they hold no
 * NUL and '\0' is a safe separator that also keeps prefix order; times are
 * Unix milliseconds >= 0 and revisions are be64, so keys sort by time):
 *
 *   'C' ...                              the change log (changelog.h): the records
 *   'r' tenant \0 kind time rev          -> meta (below): one per record; kind
 *                                           'x' execution (time = start_ms),
 *                                           'l' log line, 'm' timeline entry
 *                                           (time = time_ms). Latest N, time
 *                                           ranges, and the retention walk.
 *   'f' tenant \0 time rev               -> empty: failed executions (ERROR,
 *                                           FAILED, DEAD)
 *   'd' tenant \0 time rev               -> empty: dead executions
 *   'a' time rev                         -> status byte: every tenant's
 *                                           executions, for the platform view
 *   'e' event \0 tenant \0 rev           -> kind byte, aux byte: an event's
 *                                           records; kind 'L' marks a timeline
 *                                           entry of another event that links
 *                                           here (ROUTED to / CAUSED_BY this one)
 *   'z' tenant                           -> usage: records(be64) bytes(be64)
 *   'p' tenant                           -> packed Retention of the tenant
 *
 * meta = aux(1: status, level or timeline kind) charge(be32) evlen(1) event
 *        rellen(1) related: what retention needs to delete the record's other
 *        keys without reading the record.
 *
 * Retention walks a tenant's 'r' ranges oldest first (merging the three
 * kinds by time) and deletes a prefix of each: one range delete per kind in
 * 'r', 'f' and 'd' (the keys sort by the same time and revision), point
 * deletes for the 'e' and 'a' entries, and changelog_forget for the changes,
 * which turns runs of consecutive revisions into range deletes. Under a
 * steady load the oldest revisions expire together, so the runs are long.
 *
 * Consistency. Appends (one synced write per group, see writer.c) and
 * retention steps (bounded, unsynced) take the one write mutex, which is also
 * what the change log asks for. Queries take no lock: they read the head
 * revision first and skip index entries with a newer revision, so a query
 * and a stream that continues from its revision neither miss nor repeat a
 * record. Paged queries carry that revision in their cursor.
 */
#ifndef NOETL_RECORDER_STORE_H
#define NOETL_RECORDER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "changelog.h"
#include "recorder.pb-c.h"
#include "stream.h"

/* Longest tenant and event id accepted (util_valid_name bounds). */
#define RECORDER_TENANT_MAX 64
#define RECORDER_EVENT_MAX  128

/* Bytes charged per record on top of its packed size, for its keys. */
#define RECORDER_KEY_CHARGE 64

struct recorder_store;

/* A retention policy; 0 disables a bound. */
struct recorder_policy {
	int64_t max_age_ms; /* delete records older than this (by their own time) */
	uint64_t max_bytes; /* delete the oldest records beyond this charge */
};

/* What a retention pass deleted. */
struct recorder_retain_result {
	uint64_t records; /* records deleted */
	uint64_t bytes;   /* their charge */
	uint32_t tenants; /* tenants that lost records */
};

/* Opens the store in directory dir (created if missing); pub (borrowed, may
 * be NULL) receives every stored record as a change. 0 or -errno. */
int recorder_store_open(const char *dir, struct stream_pub *pub, struct recorder_store **out);

/* Closes the store; accepts NULL. No call may be in progress. */
void recorder_store_close(struct recorder_store *s);

/* The change log (borrowed), for the Changes method. */
struct changelog *recorder_store_changelog(struct recorder_store *s);

/* Newest stored revision. */
uint64_t recorder_store_head(struct recorder_store *s);

/*
 * Stores recs[0..n) in one synced write, in order, each as the next revision
 * (written into recs[i]->revision before packing). The records must have
 * passed recorder_validate. On success *last is the revision of the last one
 * (they are consecutive). now_ms is the time of the changes. Errors: -EIO
 * (nothing stored), -ENOMEM, -EINVAL for n == 0. Thread-safe (serialized).
 */
int recorder_store_append(struct recorder_store *s, Noetl__Record *const *recs, size_t n,
                          int64_t now_ms, uint64_t *last);

/*
 * Executions matching q (see recorder.proto) of tenant, newest first, or of
 * every tenant when tenant is NULL (only without event_id). On success *out
 * is a reply to free with protobuf_c_message_free_unpacked. Errors: -EINVAL
 * for a cursor that is not one of this query's (*why says so, malloc'ed),
 * -EIO, -ENOMEM.
 */
int recorder_store_executions(struct recorder_store *s, const Noetl__ExecutionQuery *q,
                              const char *tenant, Noetl__ExecutionsReply **out, char **why);

/* Log lines matching q of tenant, oldest first; like recorder_store_executions. */
int recorder_store_logs(struct recorder_store *s, const Noetl__LogQuery *q, const char *tenant,
                        Noetl__LogsReply **out, char **why);

/*
 * The timeline of tenant/event: its entries in time order (an attempt that
 * has an execution record but no ATTEMPT entry gets one made from the
 * execution), and the events that produced it and that it produced, whichever
 * side recorded the link. *out as above. -ENOENT if nothing of the event is
 * stored, -EIO, -ENOMEM.
 */
int recorder_store_timeline(struct recorder_store *s, const char *tenant, const char *event,
                            Noetl__TimelineReply **out);

/*
 * The tenants under which event has records, up to cap of them, into names
 * (malloc'ed each; the caller frees them); *n the count. 0 or -EIO.
 */
int recorder_store_event_tenants(struct recorder_store *s, const char *event, char **names,
                                 size_t cap, size_t *n);

/* Sets (or, with r->use_default, removes) the tenant's own policy. 0, -EIO. */
int recorder_store_set_retention(struct recorder_store *s, const Noetl__Retention *r);

/* The tenant's own policy into *out, or -ENOENT if it has none. -EIO. */
int recorder_store_get_retention(struct recorder_store *s, const char *tenant,
                                 struct recorder_policy *out);

/* Records stored for tenant and their charge in bytes (0 for an unknown one). */
void recorder_store_usage(struct recorder_store *s, const char *tenant, uint64_t *records,
                          uint64_t *bytes);

/* Calls fn(arg, tenant, records, bytes) for every tenant with records, under
 * the write mutex (fn must not call the store). */
void recorder_store_each_usage(struct recorder_store *s,
                               void (*fn)(void *arg, const char *tenant, uint64_t records,
                                          uint64_t bytes),
                               void *arg);

/*
 * One retention pass over every tenant at time now_ms: each tenant's own
 * policy, else def (borrowed; NULL = keep everything). Works in bounded steps
 * that each hold the write mutex briefly, so appends continue meanwhile.
 * Adds what it deleted to *res (may be NULL). 0 or -EIO.
 */
int recorder_store_retain(struct recorder_store *s, int64_t now_ms,
                          const struct recorder_policy *def, struct recorder_retain_result *res);

/* The kv store (borrowed), for tests and benchmarks that measure it. */
struct kv *recorder_store_kv(struct recorder_store *s);

#endif
