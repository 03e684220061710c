/*
 * noetl-repository: the File Repository as a process. Arguments and
 * configuration, wiring of the service to its rpc server, and waiting for
 * SIGINT/SIGTERM; everything else is in service.c and store.c.
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
#include "log.h"
#include "repository.h"
#include "rpc.h"
#include "svcmain.h"

static char *data_dir;
static struct config_list rpc_listen;
static char *stream_listen;
static int workers;
static size_t max_file;
static char *http_listen;
static struct svcmain_common common;

static const struct config_option options[] = {
        {"repository.data-dir", CONFIG_STRING, &data_dir, "noetl-data/repository",
         "directory of the repository's RocksDB store (created if missing)", "data-dir", NULL},
        {"repository.listen", CONFIG_URLS, &rpc_listen, NOETL_DEFAULT_REPOSITORY_URL,
         "where the noetl.Repository RPC API listens (one or more URLs)", "listen", NULL},
        {"repository.stream", CONFIG_URL, &stream_listen, NOETL_DEFAULT_REPOSITORY_STREAM_URL,
         "where file changes are published (pub/sub)", "stream", NULL},
        {"repository.workers", CONFIG_INT, &workers, "16", "RPC calls served at once", "workers",
         NULL},
        {"repository.max-file-size", CONFIG_SIZE, &max_file, "8MiB",
         "largest file accepted; larger uploads get RESOURCE_EXHAUSTED", "max-file-size", NULL},
        {"repository.http", CONFIG_STRING, &http_listen, NOETL_DEFAULT_REPOSITORY_HTTP_URL,
         "where /healthz, /readyz and /metrics are served (HTTP); empty: nowhere", "http", NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        SVCMAIN_TLS_SERVER_OPTIONS(&common),
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_spec spec = {
        .program = "noetl-repository",
        .usage = "[options]",
        .summary = "Stores tenants' WebAssembly modules and JSON Schemas, versioned and "
                   "content-hashed, and publishes every change.",
        .options = options,
        .default_file = NULL,
};

int main(int argc, char **argv)
{
	int status;
	if (!svcmain_configure(&spec, &common, "repository", argc, argv, &status))
		return status;
	sigset_t sigs;
	svcmain_block_signals(&sigs, false, true);

	status = 1;
	struct repository_config rc = {
	        .data_dir = data_dir,
	        .stream_url = stream_listen,
	        .tls = &common.tls,
	        .max_file_bytes = max_file,
	};
	struct repository *repo = NULL;
	struct svcmain_server sv = {0};
	if (metrics_create(0, &sv.metrics) != 0 || repository_create(&rc, &repo) != 0 ||
	    repository_metrics(repo, sv.metrics) != 0)
		goto out;
	/* Room for the largest file plus the envelope. */
	struct rpc_server_options so = {
	        .workers = workers,
	        .max_msg = max_file + (1u << 20),
	        .tls = common.tls,
	        .name = "repository",
	};
	struct httpd_options ho = {.name = "repository"};
	if (svcmain_server_start(&sv, &so, repository_service(repo), &rpc_listen, http_listen,
	                         &ho) != 0)
		goto out;
	log_info("serving noetl.Repository on %s, changes on %s, data in %s",
	         rpc_listen.count > 0 ? rpc_listen.items[0] : "(nothing)", stream_listen, data_dir);
	svcmain_wait(&sigs);
	status = 0;
out:
	svcmain_server_stop(&sv);
	repository_destroy(repo);
	metrics_destroy(sv.metrics);
	config_free(options);
	return status;
}
