/*
 * listener_int: the listener's state, shared by listener.c (wiring, streams,
 * HTTP glue) and service.c (the request pipeline). Not for other folders.
 */
#ifndef NOETL_LISTENER_INT_H
#define NOETL_LISTENER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batcher.h"
#include "defs.h"
#include "listener.h"
#include "reporter.h"
#include "rpc.h"
#include "schemas.h"
#include "stream.h"
#include "workq.h"

struct httpd;
struct metric;

struct listener {
	/* limits and switches, defaults filled in */
	bool dev_mode;
	size_t max_body;
	size_t max_elements;
	int max_inflight;
	int retry_after_s;
	int call_timeout_ms;
	char *token; /* for calls to the services, or NULL */

	struct rpc_client *control;
	struct rpc_client *repository;
	struct rpc_client *queue;
	struct rpc_client *recorder; /* NULL: no timeline, /logs answers 503 */
	char *control_stream_url;
	const struct rpc_tls *tls; /* borrowed from the config */

	struct listener_defs *defs;
	struct listener_schemas *schemas;
	struct listener_batcher *batcher;
	struct listener_reporter *reporter; /* NULL: timeline off */
	struct listener_workq *logq;        /* Record calls of /logs */

	/* Control sync: snapshot, then the stream */
	pthread_t sync_thread;
	bool sync_started;
	pthread_mutex_t mu; /* stop, control_sub */
	pthread_cond_t cv;
	bool stop;
	struct stream_sub *control_sub;

	struct httpd *httpd;
	struct metrics *metrics;
	bool own_metrics;
	struct metric *m_events;   /* events by outcome */
	struct metric *m_requests; /* requests by route kind and status */
	struct metric *m_enqueue;  /* Enqueue call seconds */

	atomic_int inflight; /* requests between listener_service_handle and done */
};

#endif
