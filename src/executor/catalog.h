/*
 * catalog: what the executor knows about job definitions, kept live.
 *
 * At start it reads the Repository's head revision, loads Control's snapshot
 * (every tenant's packages at one revision), prepares (compiles) the module
 * of every runtime, and then follows both change streams from those
 * revisions, so no change falls in between. A deployed or updated package
 * prepares its modules before it is ready: compilation happens at deploy
 * time, not on the first event. A new version of a module file is
 * prepared and swapped in; events that already started keep the module they
 * started with (handles are reference counted). A module no package uses
 * any more is released.
 *
 * A deploy lists the package at once, not ready, with empty slots for the
 * modules not seen before, and compiles them next; catalog_lookup reports
 * its events as -EAGAIN meanwhile, so they wait instead of failing as
 * unknown. An update keeps the old version listed (ready) beside the new
 * one until the new one's modules are prepared: items accepted before the
 * update (Item.definition_revision below the update's revision, or 0) run
 * on the old version, items accepted under the new definitions wait for
 * them. An event no version declares, of an item accepted at a revision
 * the catalog has not applied yet, is -ESTALE (wait), not unknown.
 * catalog_revision() counts a deploy as applied once it is ready, so a
 * caller that waits for a revision waits for its compile too.
 *
 * A module that fails to fetch or compile is remembered with the reason, so
 * its events fail with that reason instead of waiting; it is tried again
 * when its file or package changes, and a fetch that failed because the
 * Repository was unreachable is retried by catalog_retry_failed().
 *
 * Threads: lookups from any thread; the stream callbacks run on the stream
 * threads. One mutex protects the tables; compiles run outside it.
 */
#ifndef NOETL_EXECUTOR_CATALOG_H
#define NOETL_EXECUTOR_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "engine.h"
#include "rpc.h"

struct catalog;

/* A prepared module, held by the events running on it. */
struct catalog_module {
	struct engine_module *mod; /* NULL if it could not be prepared */
	char *error;               /* why not, when mod is NULL */
	char sha[65];              /* content hash, "" when mod is NULL */
};

/* Everything needed to run one event and route its result. */
struct catalog_event {
	char *package;             /* package id */
	char *function;            /* exported handler name */
	uint64_t memory_limit;     /* bytes; 0 = engine default */
	uint32_t timeout_ms;       /* per execution; 0 = engine default */
	Noetl__EventDef *ok;       /* follow-up event for code 0, or NULL */
	Noetl__EventDef *error;    /* follow-up event for non-zero codes, or NULL */
	Noetl__RetryPolicy *retry; /* policy of the follow-ups (event's, else runtime's) */
	Noetl__RetryPolicy *ok_retry, *error_retry;
	struct catalog_module *module; /* held: release with catalog_event_free */
	uint64_t revision;             /* Control revision of the catalog at the lookup */
};

struct catalog_config {
	struct rpc_client *control;    /* borrowed */
	struct rpc_client *repository; /* borrowed */
	const char *control_stream;    /* pub URL of Control's change stream */
	const char *repository_stream; /* pub URL of the Repository's change stream */
	struct engine *engine;         /* borrowed */
	const char *token;             /* platform credential for calls, may be NULL */
};

/*
 * Loads the definitions and starts following the streams. Fails (-EAGAIN,
 * *err set) if Control or the Repository cannot be reached: the caller
 * retries.
 */
int catalog_create(const struct catalog_config *cfg, struct catalog **out, char **err);
void catalog_destroy(struct catalog *d);

/*
 * Finds the definition of tenant's event (a job's event, or a result event
 * declared under a job's result) for an item accepted under Control
 * revision `revision` (Item.definition_revision; 0: unknown). On success
 * *out is a copy the caller owns (free with catalog_event_free), holding a
 * reference on the module. Errors:
 *   -EAGAIN: the event's package version is still preparing (compiling) its
 *            modules: the item should wait, not run or fail;
 *   -ESTALE: no package declares it, but the item was accepted at a
 *            revision this catalog has not applied yet: it should wait;
 *   -ENOENT: no deployed package declares it at a revision at least the
 *            item's: the event is unknown.
 * On -EAGAIN and -ESTALE *why (if why is not NULL) gets a malloc'ed
 * sentence saying what is waited for; on other results it is untouched.
 */
int catalog_lookup(struct catalog *d, const char *tenant, const char *event, uint64_t revision,
                   struct catalog_event **out, char **why);
void catalog_event_free(struct catalog *d, struct catalog_event *e);

/* Re-fetches modules whose fetch failed for a transient reason. */
void catalog_retry_failed(struct catalog *d);

/* Control revision applied so far, and the number of modules loaded. */
uint64_t catalog_revision(struct catalog *d);
unsigned catalog_modules(struct catalog *d);

#endif
