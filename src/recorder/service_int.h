/*
 * service_int: the Recorder object the handlers work on. Private to
 * src/recorder/.
 */
#ifndef NOETL_RECORDER_SERVICE_INT_H
#define NOETL_RECORDER_SERVICE_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "recorder.h"
#include "recorder.pb-c.h"
#include "store.h"
#include "validate.h"
#include "writer.h"

struct recorder {
	Noetl__Recorder_Service svc;    /* first: handlers cast the service back */
	struct stream_pub *pub;         /* owned; NULL without a stream */
	struct recorder_store *store;   /* owned */
	struct recorder_writer *writer; /* owned */
	struct recorder_limits limits;  /* bounds on incoming records */
	struct recorder_policy def;     /* retention of tenants without their own */
	int64_t started_ms;             /* monotonic start time, for uptime */
	int64_t retain_every_ms;        /* background pass period; < 0 = none */
	pthread_t retainer;             /* the background retention thread */
	bool retainer_started;
	pthread_mutex_t mu; /* guards stop, with cv: wakes the retainer to stop */
	pthread_cond_t cv;
	bool stop;
	_Atomic uint64_t retained; /* records deleted by retention, for metrics */
};

/* Fills r->svc with the handlers. */
void recorder_service_init(struct recorder *r);

#endif
