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
static char *log_level;
static bool log_json;
static char *tls_cert, *tls_key, *tls_ca;

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
        {"log.level", CONFIG_ENUM, &log_level, "info", "least severe level logged", NULL,
         "debug|info|warn|error"},
        {"log.json", CONFIG_BOOL, &log_json, "false", "log one JSON object per line", NULL, NULL},
        {"tls.cert", CONFIG_STRING, &tls_cert, NULL,
         "PEM certificate for tls+tcp:// listeners and dialers", NULL, NULL},
        {"tls.key", CONFIG_STRING, &tls_key, NULL, "PEM private key of tls.cert", NULL, NULL},
        {"tls.ca", CONFIG_STRING, &tls_ca, NULL, "PEM CA to verify peers with", NULL, NULL},
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
	int next;
	bool help = false;
	char *err = NULL;
	if (config_load(&spec, argc, argv, &next, &help, &err) != 0) {
		fprintf(stderr, "noetl-control: %s\n", err != NULL ? err : "bad configuration");
		free(err);
		config_free(options);
		return 2;
	}
	if (help) {
		config_usage(&spec, stdout);
		config_free(options);
		return 0;
	}
	if (next < argc) {
		fprintf(stderr, "noetl-control: unexpected argument '%s'; see --help\n",
		        argv[next]);
		config_free(options);
		return 2;
	}
	enum log_level lvl = LOG_LEVEL_INFO;
	log_level_parse(log_level, &lvl);
	log_setup("control", lvl, log_json);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	int status = 1;
	struct rpc_tls tls = {.cert_file = tls_cert, .key_file = tls_key, .ca_file = tls_ca};
	struct control_config cc = {
	        .data_dir = data_dir,
	        .stream_url = stream_listen,
	        .tls = &tls,
	        .repository_url = repository_url,
	        .queue_url = queue_url,
	        .client_tls = &tls,
	        .call_timeout_ms = (int)call_timeout,
	        .schedule_interval_ms = schedule_interval > 0 ? (int)schedule_interval : 1000,
	};
	if (clock_rate < 1 || clock_rate > 3600) {
		fprintf(stderr, "noetl-control: control.debug.clock-rate must be 1 to 3600\n");
		config_free(options);
		return 2;
	}
	if (clock_rate > 1) {
		clock_origin = util_now_ms();
		cc.clock = fast_clock;
		log_warn(
		        "the clock runs %d times faster than real time (control.debug.clock-rate): "
		        "for tests only",
		        clock_rate);
	}
	struct control *ctl = NULL;
	struct rpc_server *srv = NULL;
	struct metrics *metrics = NULL;
	struct httpd *http = NULL;
	if (control_create(&cc, &ctl) != 0)
		goto out;
	struct rpc_server_options so = {.workers = workers, .tls = tls, .name = "control"};
	if (rpc_server_create(&so, &srv) != 0 || rpc_server_add(srv, control_service(ctl)) != 0)
		goto out;
	for (size_t i = 0; i < rpc_listen.count; i++)
		if (rpc_server_listen(srv, rpc_listen.items[i]) != 0)
			goto out;
	if (rpc_server_start(srv) != 0)
		goto out;
	if (metrics_create(0, &metrics) != 0 || control_metrics(ctl, metrics) != 0)
		goto out;
	if (http_listen != NULL && http_listen[0] != '\0') {
		struct httpd_options ho = {.name = "control", .metrics = metrics};
		int rv = httpd_create(http_listen, &ho, &http);
		if (rv == 0)
			rv = httpd_start(http);
		if (rv != 0) {
			log_error("cannot serve HTTP on '%s': %s; pick another --http address",
			          http_listen, strerror(-rv));
			goto out;
		}
	}
	log_info("serving noetl.Control on %s, changes on %s, data in %s",
	         rpc_listen.count > 0 ? rpc_listen.items[0] : "(nothing)", stream_listen, data_dir);

	int sig;
	sigwait(&sigs, &sig);
	log_info("stopping on signal %d", sig);
	status = 0;
out:
	httpd_destroy(http);
	rpc_server_destroy(srv);
	control_destroy(ctl);
	metrics_destroy(metrics);
	config_free(options);
	return status;
}
