/*
 * service_priv: what service.c (the data path: Enqueue, Lease, Ack, Nack,
 * Extend, and the life cycle) and service_admin.c (Stats, dead letters,
 * health, metrics) share. Not for other modules.
 */
#ifndef NOETL_QUEUE_SERVICE_PRIV_H
#define NOETL_QUEUE_SERVICE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "queue.h"
#include "queue.pb-c.h"
#include "store.h"

#define QUEUE_FAMILIES          9        /* per-queue metric families (service_admin.c) */
#define QUEUE_TOTALS            5        /* store-wide metrics (service_admin.c) */
#define QUEUE_RELEASE_DELAY_MAX 3600000u /* Nack release: longest delay (ms) */

/* The argument of a store-wide metric's callback. */
struct total_arg {
	struct queue *q; /* whose store */
	int which;       /* enum total in service_admin.c */
	bool registered; /* its callback is registered */
};

struct family;

struct family_arg {
	struct queue *q;        /* whose stats */
	const struct family *f; /* which field */
};
struct queue {
	Noetl__Queue_Service svc;  /* first, so handlers can cast back */
	struct queue_store *store; /* the durable state */
	struct queue_config cfg;   /* configuration, defaults filled in */
	int64_t started_ms;        /* for Health.uptime_ms */
	struct metric *m_enqueue;  /* enqueue latency histogram */
	struct metric *m_rejected; /* enqueues refused at a limit */

	pthread_mutex_t snap_mu; /* the stats snapshot shared by one scrape */
	struct queue_store_stat *snap;
	size_t nsnap;
	int64_t snap_ms;                       /* monotonic time it was taken */
	struct family_arg fam[QUEUE_FAMILIES]; /* arguments of the metric callbacks */
	struct total_arg tot[QUEUE_TOTALS];
};

/* The queue of a handler's service argument. */
static inline struct queue *queue_of(Noetl__Queue_Service *svc)
{
	return (struct queue *)svc;
}

/* Fails the call for a store error rc of operation what; msg says why for
 * the limit and argument errors. */
void queue_fail(void *call, int rc, const char *what, const char *msg);

/* The tenant a call may act for: the metadata's, or the requested one if
 * the metadata names none. NULL after rpc_fail when they disagree; "" means
 * any tenant. field names the request field for the message. */
const char *queue_scope(void *call, const char *requested, const char *field);

/* The handlers of service_admin.c. */
void queue_admin_stats(Noetl__Queue_Service *svc, const Noetl__StatsRequest *in,
                       Noetl__StatsReply_Closure done, void *call);
void queue_admin_dead_list(Noetl__Queue_Service *svc, const Noetl__DeadListRequest *in,
                           Noetl__DeadListReply_Closure done, void *call);
void queue_admin_dead_replay(Noetl__Queue_Service *svc, const Noetl__DeadRequest *in,
                             Noetl__DeadReply_Closure done, void *call);
void queue_admin_dead_purge(Noetl__Queue_Service *svc, const Noetl__DeadRequest *in,
                            Noetl__DeadReply_Closure done, void *call);
void queue_admin_get_health(Noetl__Queue_Service *svc, const Noetl__Empty *in,
                            Noetl__Health_Closure done, void *call);

/* Registers the queue's metrics with q->cfg.metrics (if any), and removes
 * the families whose callbacks point at q. */
void queue_metrics_register(struct queue *q);
void queue_metrics_unregister(struct queue *q);

#endif
