/*
 * noetl-listener: the ingest service as a process. Arguments and
 * configuration, building the listener, and waiting for SIGINT/SIGTERM;
 * everything else is in listener.c and service.c.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "defaults.h"
#include "listener.h"
#include "log.h"
#include "rpc.h"
#include "svcmain.h"

static char *http_url;
static char *control_url, *control_stream, *repository_url, *repository_stream;
static char *queue_url, *recorder_url;
static char *token;
static bool dev_mode, no_timeline;
static size_t max_body;
static int max_events, enqueue_batch, enqueue_pending;
static int max_inflight, enqueue_senders, enqueue_linger_us, retry_after;
static int64_t call_timeout;
static struct svcmain_common common;

static const struct config_option options[] = {
        {"listener.http", CONFIG_URL, &http_url, NOETL_DEFAULT_LISTENER_URL,
         "where the HTTP API listens (http://host:port)", "http", NULL},
        {"listener.dev", CONFIG_BOOL, &dev_mode, "false",
         "development mode: accept requests WITHOUT credentials (never in production)", "dev",
         NULL},
        {"control.url", CONFIG_URL, &control_url, NOETL_DEFAULT_CONTROL_URL,
         "the Control service (definitions, tokens, secrets)", "control", NULL},
        {"control.stream", CONFIG_URL, &control_stream, NOETL_DEFAULT_CONTROL_STREAM_URL,
         "Control's change stream", NULL, NULL},
        {"repository.url", CONFIG_URL, &repository_url, NOETL_DEFAULT_REPOSITORY_URL,
         "the Repository (JSON Schemas)", "repository", NULL},
        {"repository.stream", CONFIG_URL, &repository_stream, NOETL_DEFAULT_REPOSITORY_STREAM_URL,
         "the Repository's change stream", NULL, NULL},
        {"queue.url", CONFIG_URL, &queue_url, NOETL_DEFAULT_QUEUE_URL,
         "the Queue events are made durable in", "queue", NULL},
        {"recorder.url", CONFIG_STRING, &recorder_url, NOETL_DEFAULT_RECORDER_URL,
         "the Recorder (timelines, /logs); empty = none", "recorder", NULL},
        {"listener.token", CONFIG_STRING, &token, NULL,
         "credentials presented to the services, if they require any", NULL, NULL},
        {"listener.max-body", CONFIG_SIZE, &max_body, "1MiB",
         "largest request body; larger ones get 413", NULL, NULL},
        {"listener.max-events", CONFIG_INT, &max_events, "1000",
         "events (or log lines) in one request; more get 413", NULL, NULL},
        {"listener.max-inflight", CONFIG_INT, &max_inflight, "1024",
         "requests processed at once; beyond, 503 with Retry-After", NULL, NULL},
        {"listener.enqueue.senders", CONFIG_INT, &enqueue_senders, "2",
         "Enqueue calls in flight at once", NULL, NULL},
        {"listener.enqueue.batch", CONFIG_INT, &enqueue_batch, "1000",
         "events per Enqueue call at most", NULL, NULL},
        {"listener.enqueue.linger-us", CONFIG_INT, &enqueue_linger_us, "0",
         "microseconds to wait for a fuller batch (0: send at once)", NULL, NULL},
        {"listener.enqueue.max-pending", CONFIG_INT, &enqueue_pending, "100000",
         "events waiting for the Queue at most; beyond, 503", NULL, NULL},
        {"listener.call-timeout", CONFIG_DURATION, &call_timeout, "5s",
         "deadline of calls to the services", NULL, NULL},
        {"listener.retry-after", CONFIG_INT, &retry_after, "1",
         "seconds in the Retry-After header of 429 and 503 replies", NULL, NULL},
        {"listener.no-timeline", CONFIG_BOOL, &no_timeline, "false",
         "do not report received/accepted timeline entries to the Recorder", NULL, NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        SVCMAIN_TLS_OPTIONS(&common, "PEM client certificate for tls+tcp:// URLs",
                            "PEM CA the services' certificates chain to"),
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_spec spec = {
        .program = "noetl-listener",
        .usage = "[options]",
        .summary = "Takes events over HTTP, checks credentials and JSON Schemas, and answers "
                   "202 once the Queue has them durable.",
        .options = options,
        .default_file = NULL,
};

int main(int argc, char **argv)
{
	int status;
	if (!svcmain_configure(&spec, &common, "listener", argc, argv, &status))
		return status;
	sigset_t sigs;
	svcmain_block_signals(&sigs, false, true);

	struct listener_config cfg = {
	        .http_url = http_url,
	        .control_url = control_url,
	        .control_stream_url = control_stream,
	        .repository_url = repository_url,
	        .repository_stream_url = repository_stream,
	        .queue_url = queue_url,
	        .recorder_url = recorder_url,
	        .tls = &common.tls,
	        .token = token,
	        .dev_mode = dev_mode,
	        .max_body = max_body,
	        .max_elements = max_events > 0 ? (size_t)max_events : 0,
	        .max_inflight = max_inflight,
	        .enqueue_senders = enqueue_senders,
	        .enqueue_batch = enqueue_batch > 0 ? (size_t)enqueue_batch : 0,
	        .enqueue_linger_us = enqueue_linger_us,
	        .enqueue_max_pending = enqueue_pending > 0 ? (size_t)enqueue_pending : 0,
	        .call_timeout_ms = (int)call_timeout,
	        .retry_after_s = retry_after,
	        .no_timeline = no_timeline,
	};
	struct listener *l = NULL;
	status = 1;
	if (listener_create(&cfg, &l) == 0) {
		svcmain_wait(&sigs);
		status = 0;
	}
	listener_destroy(l);
	config_free(options);
	return status;
}
