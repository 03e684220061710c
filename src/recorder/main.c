/*
 * noetl-recorder: the Recorder as a process. Arguments and configuration,
 * wiring of the service to its rpc server, and waiting for SIGINT/SIGTERM;
 * everything else is in recorder.c, service.c and the store.
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
#include "log.h"
#include "metrics.h"
#include "recorder.h"
#include "rpc.h"

static char *data_dir;
static struct config_list rpc_listen;
static char *stream_listen;
static char *http_listen;
static int workers;
static int64_t max_age;
static size_t max_bytes;
static int64_t retain_every;
static size_t max_text;
static size_t max_result;
static char *log_level;
static bool log_json;
static char *tls_cert, *tls_key, *tls_ca;

static const struct config_option options[] = {
        {"recorder.data-dir", CONFIG_STRING, &data_dir, "noetl-data/recorder",
         "directory of the recorder's RocksDB store (created if missing)", "data-dir", NULL},
        {"recorder.listen", CONFIG_URLS, &rpc_listen, NOETL_DEFAULT_RECORDER_URL,
         "where the noetl.Recorder RPC API listens (one or more URLs)", "listen", NULL},
        {"recorder.stream", CONFIG_URL, &stream_listen, NOETL_DEFAULT_RECORDER_STREAM_URL,
         "where every stored record is published (pub/sub), for --follow", "stream", NULL},
        {"recorder.http", CONFIG_STRING, &http_listen, NOETL_DEFAULT_RECORDER_HTTP_URL,
         "where /healthz, /readyz and /metrics are served (HTTP); empty: nowhere", "http", NULL},
        {"recorder.workers", CONFIG_INT, &workers, "16", "RPC calls served at once", "workers",
         NULL},
        {"recorder.retention.max-age", CONFIG_DURATION, &max_age, "7d",
         "delete records older than this, for tenants without their own retention (0 = keep)",
         "max-age", NULL},
        {"recorder.retention.max-bytes", CONFIG_SIZE, &max_bytes, "1GiB",
         "delete a tenant's oldest records beyond this size, for tenants without their own "
         "retention (0 = no bound)",
         "max-bytes", NULL},
        {"recorder.retention.interval", CONFIG_DURATION, &retain_every, "1m",
         "how often the background retention pass runs", "retention-interval", NULL},
        {"recorder.max-text", CONFIG_SIZE, &max_text, "16KiB",
         "log lines, reasons and details longer than this are cut (and flagged)", "max-text", NULL},
        {"recorder.max-result", CONFIG_SIZE, &max_result, "64KiB",
         "execution results longer than this are cut (and flagged)", "max-result", NULL},
        {"log.level", CONFIG_ENUM, &log_level, "info", "least severe level logged", NULL,
         "debug|info|warn|error"},
        {"log.json", CONFIG_BOOL, &log_json, "false", "log one JSON object per line", NULL, NULL},
        {"tls.cert", CONFIG_STRING, &tls_cert, NULL, "PEM certificate for tls+tcp:// listeners",
         NULL, NULL},
        {"tls.key", CONFIG_STRING, &tls_key, NULL, "PEM private key of tls.cert", NULL, NULL},
        {"tls.ca", CONFIG_STRING, &tls_ca, NULL, "PEM CA that client certificates must chain to",
         NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_spec spec = {
        .program = "noetl-recorder",
        .usage = "[options]",
        .summary = "Records every execution attempt, log line and event timeline step, answers "
                   "queries over them, streams them to followers and applies retention.",
        .options = options,
        .default_file = NULL,
};

int main(int argc, char **argv)
{
	int next;
	bool help = false;
	char *err = NULL;
	if (config_load(&spec, argc, argv, &next, &help, &err) != 0) {
		fprintf(stderr, "noetl-recorder: %s\n", err != NULL ? err : "bad configuration");
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
		fprintf(stderr, "noetl-recorder: unexpected argument '%s'; see --help\n",
		        argv[next]);
		config_free(options);
		return 2;
	}
	if (retain_every <= 0) {
		fprintf(stderr, "noetl-recorder: recorder.retention.interval must be positive\n");
		config_free(options);
		return 2;
	}
	enum log_level lvl = LOG_LEVEL_INFO;
	log_level_parse(log_level, &lvl);
	log_setup("recorder", lvl, log_json);

	/* Signals are taken by sigwait below, in this thread only. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	int status = 1;
	struct rpc_tls tls = {.cert_file = tls_cert, .key_file = tls_key, .ca_file = tls_ca};
	struct recorder_config rc = {
	        .data_dir = data_dir,
	        .stream_url = stream_listen,
	        .tls = &tls,
	        .max_age_ms = max_age,
	        .max_bytes = max_bytes,
	        .retain_every_ms = retain_every,
	        .max_text = max_text,
	        .max_result = max_result,
	};
	struct recorder *rec = NULL;
	struct rpc_server *srv = NULL;
	struct metrics *metrics = NULL;
	struct httpd *http = NULL;
	if (recorder_create(&rc, &rec) != 0)
		goto out;
	struct rpc_server_options so = {.workers = workers, .tls = tls, .name = "recorder"};
	if (rpc_server_create(&so, &srv) != 0 || rpc_server_add(srv, recorder_service(rec)) != 0)
		goto out;
	for (size_t i = 0; i < rpc_listen.count; i++)
		if (rpc_server_listen(srv, rpc_listen.items[i]) != 0)
			goto out;
	if (rpc_server_start(srv) != 0)
		goto out;
	if (metrics_create(0, &metrics) != 0 || recorder_metrics(rec, metrics) != 0)
		goto out;
	if (http_listen != NULL && http_listen[0] != '\0') {
		struct httpd_options ho = {.name = "recorder", .metrics = metrics};
		int rv = httpd_create(http_listen, &ho, &http);
		if (rv == 0)
			rv = httpd_start(http);
		if (rv != 0) {
			log_error("cannot serve HTTP on '%s': %s; pick another --http address",
			          http_listen, strerror(-rv));
			goto out;
		}
	}
	log_info("serving noetl.Recorder on %s, records on %s, data in %s",
	         rpc_listen.count > 0 ? rpc_listen.items[0] : "(nothing)", stream_listen, data_dir);

	int sig;
	sigwait(&sigs, &sig);
	log_info("stopping on signal %d", sig);
	status = 0;
out:
	httpd_destroy(http);
	rpc_server_destroy(srv);
	recorder_destroy(rec);
	metrics_destroy(metrics);
	config_free(options);
	return status;
}
