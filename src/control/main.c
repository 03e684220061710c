/*
 * noetl-control: Control as a process. Arguments and configuration, wiring
 * of the service to its rpc server, and waiting for SIGINT/SIGTERM;
 * everything else is in service.c, package.c, scheduler.c and the store.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "defaults.h"
#include "httpd.h"
#include "metrics.h"
#include "control.h"
#include "log.h"
#include "rpc.h"
#include "svcmain.h"
#include "util.h"

static char *data_dir;
static struct config_list rpc_listen;
static char *stream_listen;
static char *repository_url;
static char *queue_url;
static int workers;
static int64_t call_timeout;
static int64_t schedule_interval;
static int clock_rate;
static char *http_listen;
static struct svcmain_common common;

static const struct config_option options[] = {
        {"control.data-dir", CONFIG_STRING, &data_dir, "noetl-data/control",
         "directory of Control's RocksDB store (created if missing)", "data-dir", NULL},
        {"control.listen", CONFIG_URLS, &rpc_listen, NOETL_DEFAULT_CONTROL_URL,
         "where the noetl.Control RPC API listens (one or more URLs)", "listen", NULL},
        {"control.stream", CONFIG_URL, &stream_listen, NOETL_DEFAULT_CONTROL_STREAM_URL,
         "where definition changes are published (pub/sub)", "stream", NULL},
        {"repository.url", CONFIG_URL, &repository_url, NOETL_DEFAULT_REPOSITORY_URL,
         "the File Repository's RPC URL: deploys check the package's files there", "repository",
         NULL},
        {"queue.url", CONFIG_STRING, &queue_url, NOETL_DEFAULT_QUEUE_URL,
         "the Queue's RPC URL, where cron schedules fire; empty: schedules do not fire", "queue",
         NULL},
        {"control.workers", CONFIG_INT, &workers, "16", "RPC calls served at once", "workers",
         NULL},
        {"control.call-timeout", CONFIG_DURATION, &call_timeout, "5s",
         "deadline of each call to the Repository and the Queue", "call-timeout", NULL},
        {"control.schedule-interval", CONFIG_DURATION, &schedule_interval, "1s",
         "how often the scheduler looks for due cron ticks", "schedule-interval", NULL},
        {"control.debug.clock-rate", CONFIG_INT, &clock_rate, "1",
         "TESTING ONLY: Control's clock runs this many times faster than real time from "
         "the start (60: a minute per second), so cron schedules fire sooner; 1 = real time",
         NULL, NULL},
        {"control.http", CONFIG_STRING, &http_listen, NOETL_DEFAULT_CONTROL_HTTP_URL,
         "where /healthz, /readyz and /metrics are served (HTTP); empty: nowhere", "http", NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        SVCMAIN_TLS_OPTIONS(&common, "PEM certificate for tls+tcp:// listeners and dialers",
                            "PEM CA to verify peers with"),
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_spec spec = {
        .program = "noetl-control",
        .usage = "[options]",
        .summary = "Keeps tenants, job packages with their revision history, tokens and "
                   "webhook secrets, publishes every change, and fires cron schedules.",
        .options = options,
        .default_file = NULL,
};

/* --control.debug.clock-rate: real time from the start, sped up. */
static int64_t clock_origin;

static int64_t fast_clock(void *arg)
{
	(void)arg;
	return clock_origin + (util_now_ms() - clock_origin) * clock_rate;
}

int main(int argc, char **argv)
{
	int status;
	if (!svcmain_configure(&spec, &common, "control", argc, argv, &status))
		return status;
	if (clock_rate < 1 || clock_rate > 3600)
		return svcmain_refuse(&spec, "control.debug.clock-rate must be 1 to 3600");
	sigset_t sigs;
	svcmain_block_signals(&sigs, false, true);

	status = 1;
	struct control_config cc = {
	        .data_dir = data_dir,
	        .stream_url = stream_listen,
	        .tls = &common.tls,
	        .repository_url = repository_url,
	        .queue_url = queue_url,
	        .client_tls = &common.tls,
	        .call_timeout_ms = (int)call_timeout,
	        .schedule_interval_ms = schedule_interval > 0 ? (int)schedule_interval : 1000,
	};
	if (clock_rate > 1) {
		clock_origin = util_now_ms();
		cc.clock = fast_clock;
		log_warn(
		        "the clock runs %d times faster than real time (control.debug.clock-rate): "
		        "for tests only",
		        clock_rate);
	}
	struct control *ctl = NULL;
	struct svcmain_server sv = {0};
	if (metrics_create(0, &sv.metrics) != 0 || control_create(&cc, &ctl) != 0 ||
	    control_metrics(ctl, sv.metrics) != 0)
		goto out;
	struct rpc_server_options so = {.workers = workers, .tls = common.tls, .name = "control"};
	struct httpd_options ho = {.name = "control"};
	if (svcmain_server_start(&sv, &so, control_service(ctl), &rpc_listen, http_listen, &ho) !=
	    0)
		goto out;
	log_info("serving noetl.Control on %s, changes on %s, data in %s",
	         rpc_listen.count > 0 ? rpc_listen.items[0] : "(nothing)", stream_listen, data_dir);
	svcmain_wait(&sigs);
	status = 0;
out:
	svcmain_server_stop(&sv);
	control_destroy(ctl);
	metrics_destroy(sv.metrics);
	config_free(options);
	return status;
}
