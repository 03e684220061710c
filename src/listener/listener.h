/*
 * listener: the ingest service (noetl-listener), without a process around
 * it. noetl-listener's main.c and the all-in-one noetl build one with
 * listener_create.
 *
 * The listener is the platform's HTTP front door: it takes events over
 * POST /events/{tenant}/{event} ({"data":[...]}) and POST
 * /webhooks/{tenant}/{event} (the raw body is one event), checks the
 * caller's credentials (a bearer token of the tenant, or the event's webhook
 * signature), validates every event against the event's JSON Schema, and
 * answers 202 only once the Queue has made the events durable. It also takes
 * log lines of external workers on POST /logs/{tenant} for the Recorder, and
 * serves /healthz, /readyz and /metrics. docs/http-api.md is the reference.
 *
 * It keeps nothing durable. Definitions (tenants, events, tokens, secrets)
 * come from a Control snapshot and Control's change stream; compiled schemas
 * from the Repository and its change stream. While either is unreachable
 * the listener keeps serving what it has cached.
 */
#ifndef NOETL_LISTENER_H
#define NOETL_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

struct metrics;

struct listener_config {
	const char *http_url;              /* "http://0.0.0.0:7480"; port 0 = ephemeral */
	nng_tls_config *http_tls;          /* for an https:// http_url (borrowed); NULL = none */
	const char *control_url;           /* Control's RPC URL (required) */
	const char *control_stream_url;    /* Control's change stream (required) */
	const char *repository_url;        /* Repository's RPC URL (required) */
	const char *repository_stream_url; /* Repository's change stream (required) */
	const char *queue_url;             /* Queue's RPC URL (required) */
	const char *recorder_url;          /* Recorder's RPC URL; NULL = no timeline, no /logs */
	const struct rpc_tls *tls;         /* for tls+tcp:// service URLs; NULL = none */
	const char *token;                 /* credentials for calls to the services; NULL = none */
	bool dev_mode;              /* accept requests without credentials: development only */
	size_t max_body;            /* bytes per request body; 0 = 1 MiB */
	size_t max_elements;        /* events per request (and log lines); 0 = 1000 */
	int max_inflight;           /* requests being processed at once; 0 = 1024 */
	int enqueue_senders;        /* concurrent Enqueue calls; 0 = 2 */
	size_t enqueue_batch;       /* items per Enqueue call; 0 = 1000 */
	int enqueue_linger_us;      /* wait for fuller batches; 0 = no wait */
	size_t enqueue_max_pending; /* items waiting for the Queue; 0 = 100000 */
	int call_timeout_ms;        /* calls to the services; 0 = 5000 */
	int retry_after_s;          /* Retry-After of 429 and 503 replies; 0 = 1 */
	bool no_timeline;           /* do not report TL_RECEIVED/TL_ACCEPTED */
	size_t timeline_capacity;   /* timeline entries buffered; 0 = 16384 */
	struct metrics *metrics;    /* registry for /metrics (borrowed); NULL = own one */
};

struct listener;

/*
 * Creates the listener and starts it: the HTTP server listens at once, and
 * definitions and schemas load in the background (until they have, event
 * requests are answered 503 and /readyz says why). cfg is borrowed for the
 * call. 0, -EINVAL (a required URL is missing or bad), -EADDRINUSE (the
 * HTTP port is taken) or another -errno; the cause is logged.
 */
int listener_create(const struct listener_config *cfg, struct listener **out);

/* Stops serving HTTP (requests in progress finish), then the streams and
 * threads; frees. Accepts NULL. */
void listener_destroy(struct listener *l);

/* The TCP port the HTTP server listens on. */
int listener_http_port(struct listener *l);

/* True when definitions are loaded and the schema stream is followed; else
 * false with the reason in why. */
bool listener_ready(struct listener *l, char *why, size_t cap);

/* Revisions of Control and of the Repository the caches have applied. */
uint64_t listener_control_revision(struct listener *l);
uint64_t listener_repository_revision(struct listener *l);

/*
 * Blocks until the caches have applied Control revision control_rev and
 * Repository revision repository_rev (0 = no condition), or timeout_ms
 * passed; true if they have. For tests and tools that change a definition
 * and then want the next request to see it.
 */
bool listener_wait_synced(struct listener *l, uint64_t control_rev, uint64_t repository_rev,
                          int timeout_ms);

#endif
