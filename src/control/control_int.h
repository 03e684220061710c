/*
 * control_int: what the files of the Control service share: its state and
 * the handlers and scheduler entry points that service.c wires together.
 * Nobody outside src/control/ includes it.
 */
#ifndef NOETL_CONTROL_INT_H
#define NOETL_CONTROL_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "control.h"
#include "control.pb-c.h"
#include "store.h"
#include "stream.h"

struct schedule_entry;

struct control {
	Noetl__Control_Service svc;  /* first: handlers cast the service back */
	struct control_store *store; /* state and change log */
	struct stream_pub *pub;      /* change stream; NULL if none */
	struct rpc_client *repo;     /* the Repository, for SetReferences */
	struct rpc_client *queue;    /* the Queue, for schedules; NULL if none */
	char *repo_url;              /* for messages */
	int call_timeout_ms;         /* calls to Repository and Queue */
	control_clock_fn clock;      /* wall clock */
	void *clock_arg;             /* its argument */
	int64_t started_ms;          /* for GetHealth uptime */
	pthread_mutex_t packages;    /* serialises package changes, which span a
	                                Repository call and a store write */

	/* scheduler (scheduler.c) */
	pthread_mutex_t sched_mu;       /* serialises passes; guards the fields below */
	pthread_cond_t sched_cv;        /* wakes the thread to stop */
	pthread_t sched_thread;         /* the pass loop */
	bool sched_running;             /* the thread exists */
	bool sched_stop;                /* asks it to end */
	int sched_interval_ms;          /* period of the loop */
	struct schedule_entry *entries; /* schedules of deployed packages (cache) */
	size_t nentries;                /* count */
	uint64_t entries_rev;           /* change log head the cache was built at */
	bool entries_valid;             /* the cache was built */
	struct metric *fires;           /* ticks enqueued; NULL until control_metrics */
	struct metric *fire_failures;   /* ticks the Queue did not take */
};

static inline int64_t control_now(struct control *c)
{
	return c->clock(c->clock_arg);
}

/* package.c: the package handlers. */
void package_deploy(Noetl__Control_Service *svc, const Noetl__DeployRequest *in,
                    Noetl__DeployReply_Closure done, void *call);
void package_delete(Noetl__Control_Service *svc, const Noetl__PackageRef *in,
                    Noetl__DeployReply_Closure done, void *call);
void package_rollback(Noetl__Control_Service *svc, const Noetl__RollbackRequest *in,
                      Noetl__DeployReply_Closure done, void *call);
void package_get(Noetl__Control_Service *svc, const Noetl__PackageRef *in,
                 Noetl__GetPackageReply_Closure done, void *call);
void package_list(Noetl__Control_Service *svc, const Noetl__ListPackagesRequest *in,
                  Noetl__ListPackagesReply_Closure done, void *call);
void package_history(Noetl__Control_Service *svc, const Noetl__PackageRef *in,
                     Noetl__HistoryReply_Closure done, void *call);

/* service.c: shared checks that answer the call themselves on failure. */
bool control_check_tenant(void *call, const char *tenant);
bool control_check_id(void *call, const char *what, const char *id);
/* Answers a store error in words; rv is the store's code. */
void control_fail_store(void *call, int rv, const char *what);
/* Frees arr, an array of n protobuf messages (NULL entries skipped) that a
 * store listing returned, and the messages. */
void control_free_messages(void *arr, size_t n);

/* scheduler.c */
int scheduler_start(struct control *c, int interval_ms);
void scheduler_stop(struct control *c);

#endif
