/*
 * stream: change streams over nng pub/sub that never miss a change.
 *
 * A service that changes state appends each change to its change log
 * (changelog.h), which gives it the next revision of the service and
 * publishes it here as a noetl.Change after the store write succeeded. Every
 * Change names the revision before it overall (prev_revision) and within its
 * topic (prev_topic_revision); the topic is the tenant. On the wire a message
 * is the topic, a NUL byte, then the packed Change, so subscribers filter by
 * tenant with nng's prefix subscriptions. A heartbeat (topic "", heartbeat
 * set, revision = the head) goes out every heartbeat interval, so a
 * subscriber also notices a change it missed at the end of a burst.
 *
 * pub/sub drops messages when a subscriber is slow or reconnecting. The
 * subscriber therefore applies a live change only if it directly follows
 * the last one it applied (prev_topic_revision for a tenant subscription,
 * prev_revision for an all-topics one). Anything else, and every start or
 * reconnect, makes it resync: it calls the service's `Changes` method
 * ("everything since revision N") over req/rep, page by page, applies those,
 * and goes back to live messages, skipping the ones it already has. The
 * application callback therefore sees every change exactly once, in
 * revision order, whatever the network did. See docs/rpc.md.
 *
 * Threads: a publisher may be used from any thread. A subscriber runs its
 * own thread, from which the callback is called.
 */
#ifndef NOETL_STREAM_H
#define NOETL_STREAM_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"

/* --- publisher ----------------------------------------------------------- */

struct stream_pub;

/* Creates a publisher listening on url (pub socket). heartbeat_ms <= 0 means
 * the default (1000). tls is used for tls+tcp:// URLs and may be NULL. */
int stream_pub_create(const char *url, int heartbeat_ms, const struct rpc_tls *tls,
                      struct stream_pub **out);

/* Listens on one more URL. */
int stream_pub_listen(struct stream_pub *p, const char *url);

/* Publishes one change (borrowed; packed here). Callers publish in revision
 * order; the changelog module does this for them. Best effort: errors are
 * logged, since subscribers recover through resync anyway. */
void stream_pub_publish(struct stream_pub *p, const Noetl__Change *chg);

/* Sets the revision carried by heartbeats. */
void stream_pub_set_head(struct stream_pub *p, uint64_t head);

/* Test hook: drop every n-th message instead of sending it (0 = none), to
 * prove that subscribers recover. Not for production use. */
void stream_pub_drop_every(struct stream_pub *p, unsigned n);

/* Stops the heartbeat thread and closes; accepts NULL. */
void stream_pub_destroy(struct stream_pub *p);

/* --- subscriber ---------------------------------------------------------- */

struct stream_sub;

/* Called for each change, in revision order, exactly once. chg is borrowed
 * for the call. Return 0; a non-zero return is logged and the change is
 * delivered again after a short pause (the application could not apply it). */
typedef int (*stream_apply_fn)(void *arg, const Noetl__Change *chg);

struct stream_sub_options {
	const char *topic;         /* tenant to follow; NULL or "" for every topic */
	uint64_t since;            /* deliver changes with revision > since */
	uint32_t page;             /* resync page size; default 500 */
	int heartbeat_timeout_ms;  /* no message for this long = resync; default 3000 */
	int call_timeout_ms;       /* timeout of each Changes call; default 5000 */
	const char *token;         /* credentials for the Changes calls */
	const struct rpc_tls *tls; /* for a tls+tcp:// pub_url; NULL otherwise */
	const char *name;          /* for logs, e.g. "listener: control stream" */
};

/*
 * Subscribes to pub_url and keeps the application in sync with the service
 * whose descriptor is svc (it must have a `Changes` method taking
 * ChangesRequest and returning ChangesReply), called through client
 * (borrowed, must outlive the subscriber). The first resync starts at once.
 */
int stream_sub_create(struct rpc_client *client, const ProtobufCServiceDescriptor *svc,
                      const char *pub_url, const struct stream_sub_options *opt, stream_apply_fn fn,
                      void *arg, struct stream_sub **out);

/* The revision of the last change applied (opt->since before any). */
uint64_t stream_sub_revision(struct stream_sub *s);

/* The number of resyncs done (for tests and metrics). */
uint64_t stream_sub_resyncs(struct stream_sub *s);

/* Blocks until a change with revision >= rev was applied or timeout_ms
 * passed; true if it was. */
bool stream_sub_wait(struct stream_sub *s, uint64_t rev, int timeout_ms);

/* Stops the thread (the callback is not called after this returns) and frees;
 * accepts NULL. */
void stream_sub_destroy(struct stream_sub *s);

#endif
