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
#include "svcmain.h"

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
static struct svcmain_common common;

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
        RECORDER_RETENTION_OPTIONS(&max_age, &max_bytes, &retain_every),
        {"recorder.max-text", CONFIG_SIZE, &max_text, "16KiB",
         "log lines, reasons and details longer than this are cut (and flagged)", "max-text", NULL},
        {"recorder.max-result", CONFIG_SIZE, &max_result, "64KiB",
         "execution results longer than this are cut (and flagged)", "max-result", NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        SVCMAIN_TLS_SERVER_OPTIONS(&common),
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
	int status;
	if (!svcmain_configure(&spec, &common, "recorder", argc, argv, &status))
		return status;
	const char *bad = recorder_check_retention(retain_every);
	if (bad != NULL)
		return svcmain_refuse(&spec, bad);
	sigset_t sigs;
	svcmain_block_signals(&sigs, false, true);

	status = 1;
	struct recorder_config rc = {
	        .data_dir = data_dir,
	        .stream_url = stream_listen,
	        .tls = &common.tls,
	        .max_age_ms = max_age,
	        .max_bytes = max_bytes,
	        .retain_every_ms = retain_every,
	        .max_text = max_text,
	        .max_result = max_result,
	};
	struct recorder *rec = NULL;
	struct svcmain_server sv = {0};
	if (metrics_create(0, &sv.metrics) != 0 || recorder_create(&rc, &rec) != 0 ||
	    recorder_metrics(rec, sv.metrics) != 0)
		goto out;
	struct rpc_server_options so = {.workers = workers, .tls = common.tls, .name = "recorder"};
	struct httpd_options ho = {.name = "recorder"};
	if (svcmain_server_start(&sv, &so, recorder_service(rec), &rpc_listen, http_listen, &ho) !=
	    0)
		goto out;
	log_info("serving noetl.Recorder on %s, records on %s, data in %s",
	         rpc_listen.count > 0 ? rpc_listen.items[0] : "(nothing)", stream_listen, data_dir);
	svcmain_wait(&sigs);
	status = 0;
out:
	svcmain_server_stop(&sv);
	recorder_destroy(rec);
	metrics_destroy(sv.metrics);
	config_free(options);
	return status;
}
