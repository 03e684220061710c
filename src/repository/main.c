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

static char *data_dir;
static struct config_list rpc_listen;
static char *stream_listen;
static int workers;
static size_t max_file;
static char *http_listen;
static char *log_level;
static bool log_json;
static char *tls_cert, *tls_key, *tls_ca;

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
        .program = "noetl-repository",
        .usage = "[options]",
        .summary = "Stores tenants' WebAssembly modules and JSON Schemas, versioned and "
                   "content-hashed, and publishes every change.",
        .options = options,
        .default_file = NULL,
};

int main(int argc, char **argv)
{
	int next;
	bool help = false;
	char *err = NULL;
	if (config_load(&spec, argc, argv, &next, &help, &err) != 0) {
		fprintf(stderr, "noetl-repository: %s\n", err != NULL ? err : "bad configuration");
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
		fprintf(stderr, "noetl-repository: unexpected argument '%s'; see --help\n",
		        argv[next]);
		config_free(options);
		return 2;
	}
	enum log_level lvl = LOG_LEVEL_INFO;
	log_level_parse(log_level, &lvl);
	log_setup("repository", lvl, log_json);

	/* Signals are taken by sigwait below, in this thread only. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	int status = 1;
	struct rpc_tls tls = {.cert_file = tls_cert, .key_file = tls_key, .ca_file = tls_ca};
	struct repository_config rc = {
	        .data_dir = data_dir,
	        .stream_url = stream_listen,
	        .tls = &tls,
	        .max_file_bytes = max_file,
	};
	struct repository *repo = NULL;
	struct rpc_server *srv = NULL;
	struct metrics *metrics = NULL;
	struct httpd *http = NULL;
	if (repository_create(&rc, &repo) != 0)
		goto out;
	/* Room for the largest file plus the envelope. */
	struct rpc_server_options so = {
	        .workers = workers,
	        .max_msg = max_file + (1u << 20),
	        .tls = tls,
	        .name = "repository",
	};
	if (rpc_server_create(&so, &srv) != 0 || rpc_server_add(srv, repository_service(repo)) != 0)
		goto out;
	for (size_t i = 0; i < rpc_listen.count; i++)
		if (rpc_server_listen(srv, rpc_listen.items[i]) != 0)
			goto out;
	if (rpc_server_start(srv) != 0)
		goto out;
	if (metrics_create(0, &metrics) != 0 || repository_metrics(repo, metrics) != 0)
		goto out;
	if (http_listen != NULL && http_listen[0] != '\0') {
		struct httpd_options ho = {.name = "repository", .metrics = metrics};
		int rv = httpd_create(http_listen, &ho, &http);
		if (rv == 0)
			rv = httpd_start(http);
		if (rv != 0) {
			log_error("cannot serve HTTP on '%s': %s; pick another --http address",
			          http_listen, strerror(-rv));
			goto out;
		}
	}
	log_info("serving noetl.Repository on %s, changes on %s, data in %s",
	         rpc_listen.count > 0 ? rpc_listen.items[0] : "(nothing)", stream_listen, data_dir);

	int sig;
	sigwait(&sigs, &sig);
	log_info("stopping on signal %d", sig);
	status = 0;
out:
	httpd_destroy(http);
	rpc_server_destroy(srv);
	repository_destroy(repo);
	metrics_destroy(metrics);
	config_free(options);
	return status;
}
