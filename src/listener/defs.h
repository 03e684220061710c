/*
 * defs: the listener's copy of what Control knows that ingest needs:
 * tenants, the events of their deployed packages (with the queue each goes
 * to and its retry policy), API token hashes and webhook secrets.
 *
 * It is filled from a Control Snapshot and kept current by applying the
 * DefinitionChanges of Control's stream in revision order (listener.c does
 * the wiring). Nothing here does I/O, so a Control outage leaves the last
 * applied state in force: requests for cached definitions keep working.
 *
 * Lookups copy what a request needs out of the cache under a read lock, so
 * a request never holds a pointer into state that a change may free.
 *
 * Threads: every function may be called from any thread; changes take the
 * write lock, lookups the read lock.
 */
#ifndef NOETL_LISTENER_DEFS_H
#define NOETL_LISTENER_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"

#define LISTENER_NAME_MAX 128 /* event, package, queue and schema file ids */

struct listener_defs;

/* What a request needs to know about one event; plain values, owned by the
 * caller (secret is malloc'ed, free it). */
struct listener_defs_event {
	char package[LISTENER_NAME_MAX + 1]; /* package id */
	char queue[LISTENER_NAME_MAX + 1];   /* supplier queue id: the Queue's queue name */
	char schema[LISTENER_NAME_MAX + 1];  /* repository file of its JSON Schema; "" = none */
	Noetl__DataType data_type;           /* JSON or binary payload */
	Noetl__RetryPolicy retry; /* the event's policy, else its runtime's (all 0 = default) */
	char *secret;             /* webhook HMAC key, or NULL when none is set */
	uint64_t revision;        /* Control revision of the cache at the lookup */
};

/* How a bearer token relates to a tenant. */
enum listener_defs_auth {
	LISTENER_AUTH_OK = 0,           /* a current token of the tenant */
	LISTENER_AUTH_UNKNOWN = 1,      /* not a current token of any tenant */
	LISTENER_AUTH_OTHER_TENANT = 2, /* a current token, but of another tenant */
};

/* Creates an empty cache (not loaded). 0 or -ENOMEM. */
int listener_defs_create(struct listener_defs **out);

/* Frees the cache; accepts NULL. */
void listener_defs_destroy(struct listener_defs *d);

/* Replaces the whole state by the snapshot (borrowed) and marks the cache
 * loaded at s->revision. 0 or -ENOMEM (the old state stays then). */
int listener_defs_load_snapshot(struct listener_defs *d, const Noetl__Snapshot *s);

/*
 * Applies one change (borrowed) of Control revision rev. Changes at or
 * below the current revision are ignored (already in the snapshot). 0 or
 * -ENOMEM (the change may be partly applied: the caller retries it, and
 * applying a change twice gives the same state).
 */
int listener_defs_apply(struct listener_defs *d, uint64_t rev, const Noetl__DefinitionChange *c);

/* True once a snapshot was loaded. */
bool listener_defs_loaded(struct listener_defs *d);

/* Revision of the last snapshot or change applied (0 before any). */
uint64_t listener_defs_revision(struct listener_defs *d);

/* True if tenant exists. */
bool listener_defs_has_tenant(struct listener_defs *d, const char *tenant);

/* Checks a presented bearer token (token[0..len), the secret as given)
 * against the tenant's token hashes: SHA-256 of the secret, compared in
 * constant time. */
enum listener_defs_auth listener_defs_check_token(struct listener_defs *d, const char *tenant,
                                                  const char *token, size_t len);

/* Copies event `event` of tenant into *out. 0, or -ENOENT if the tenant has
 * no such event, or -ENOMEM (copying the secret). */
int listener_defs_lookup_event(struct listener_defs *d, const char *tenant, const char *event,
                               struct listener_defs_event *out);

/* Counts for metrics: tenants, events and tokens in the cache. */
void listener_defs_counts(struct listener_defs *d, size_t *tenants, size_t *events, size_t *tokens);

#endif
