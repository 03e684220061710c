/*
 * schemas: the listener's cache of compiled JSON Schemas, kept current by
 * the Repository's change stream.
 *
 * An entry is one schema file of one tenant. It is compiled once (with its
 * "$ref"s to other files of the same tenant resolved through the
 * Repository) and then shared by every request that validates against it,
 * by reference count, so an update can swap it while requests still use the
 * old one.
 *
 * Freshness. The Repository stream is followed from the Repository's head at
 * the time the cache started loading, so every put or delete after that is
 * seen; each one invalidates the entries that use the file (as root or as a
 * "$ref" target) and reloads them at once. A request that finds its entry
 * invalid waits for the reload instead of using the old schema: once the
 * stream has delivered a change, the next request validates against the new
 * schema.
 *
 * Failures never poison the cache. A load that failed because the
 * Repository could not be reached is not remembered: the waiting requests
 * get a transient error (the listener answers 503) and the next request, or
 * a background retry with backoff, tries again. A file that does not exist
 * or does not compile is remembered only briefly and only until the stream
 * reports a change of the file.
 *
 * Threads: one loader thread does the Repository calls and compiles; it
 * also calls the waiters' callbacks. Every public function may be called
 * from any thread.
 */
#ifndef NOETL_LISTENER_SCHEMAS_H
#define NOETL_LISTENER_SCHEMAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonschema.h"
#include "repository.pb-c.h"
#include "rpc.h"

struct listener_schemas;

/* A compiled schema, shared by reference. */
struct listener_schema {
	const struct jsonschema *js; /* what to validate with */
	uint32_t version;            /* repository version of the root file */
};

/* Takes one more reference / drops one (the last frees it). unref accepts
 * NULL. */
struct listener_schema *listener_schema_ref(struct listener_schema *s);
void listener_schema_unref(struct listener_schema *s);

/*
 * Result of a wait: status 0 and a schema (one reference, passed to the
 * callee), or a negative code and a message (borrowed for the call):
 *   -EAGAIN  the Repository could not be reached or answered an error: retry
 *   -ENOENT  the file does not exist
 *   -EINVAL  the file is not a usable schema (the message says why)
 *   -ECANCELED the cache is being destroyed
 */
typedef void (*listener_schemas_ready_fn)(void *arg, struct listener_schema *s, int status,
                                          const char *msg);

struct listener_schemas_options {
	struct rpc_client *repository; /* borrowed; must outlive the cache */
	const char *stream_url;        /* the Repository's pub/sub URL */
	const struct rpc_tls *tls;     /* for a tls+tcp:// stream_url; NULL otherwise */
	const char *token;             /* credentials for Repository calls; NULL = none */
	int call_timeout_ms;           /* per Repository call; 0 = 3000 */
	size_t max_waiters;            /* requests waiting for loads at once; 0 = 4096 */
	int error_ttl_ms;              /* how long "missing"/"invalid" is remembered; 0 = 2000 */
};

/* Creates the cache and starts its loader thread (which first finds the
 * Repository's head and subscribes to its stream). 0 or -errno. */
int listener_schemas_create(const struct listener_schemas_options *opt,
                            struct listener_schemas **out);

/* Stops the loader (waiters get -ECANCELED) and the stream; frees the cache.
 * Accepts NULL. */
void listener_schemas_destroy(struct listener_schemas *c);

/*
 * Gets the current compiled schema of file `name` of tenant.
 *   0            *out is a reference (release with schema_unref)
 *   -EINPROGRESS it is being (re)loaded: fn(arg, ...) will be called exactly
 *                once, from the loader thread, with the outcome
 *   -ENOENT, -EINVAL  a failure remembered from a recent load; *msg (if not
 *                NULL) is a malloc'ed message
 *   -EAGAIN      too many requests are waiting for loads already
 * fn is not called unless -EINPROGRESS is returned.
 */
int listener_schemas_get(struct listener_schemas *c, const char *tenant, const char *name,
                         struct listener_schema **out, char **msg, listener_schemas_ready_fn fn,
                         void *arg);

/* Starts loading a file if it is not cached, so the first request does not
 * wait (called when a package that uses it is deployed). */
void listener_schemas_prefetch(struct listener_schemas *c, const char *tenant, const char *name);

/* Drops the cached schemas of a removed tenant (those not being loaded or
 * waited for; those go when they are done and the tenant is removed again,
 * or with the cache). */
void listener_schemas_forget_tenant(struct listener_schemas *c, const char *tenant);

/* Applies one Repository change (the stream calls this; public for tests).
 * 0, or -ENOMEM to have it delivered again. */
int listener_schemas_apply(struct listener_schemas *c, uint64_t revision,
                           const Noetl__FileChange *fc);

/* True once the stream subscription exists (loads happen only after). */
bool listener_schemas_subscribed(struct listener_schemas *c);

/* Revision of the last Repository change applied (the head at subscription
 * before any). */
uint64_t listener_schemas_revision(struct listener_schemas *c);

/* Blocks until a change with revision >= rev was applied or timeout_ms
 * passed; true if it was. */
bool listener_schemas_wait_revision(struct listener_schemas *c, uint64_t rev, int timeout_ms);

/* Counters for metrics. */
struct listener_schemas_stats {
	uint64_t loads;         /* successful compiles */
	uint64_t load_errors;   /* failed loads (any reason) */
	uint64_t invalidations; /* entries invalidated by stream changes */
	size_t entries;         /* files cached */
	size_t waiting;         /* requests waiting for a load now */
};
void listener_schemas_stats(struct listener_schemas *c, struct listener_schemas_stats *out);

#endif
