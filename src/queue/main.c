/*
 * noetl-queue: the Queue service as a process. Arguments and configuration,
 * wiring of the service to its rpc server, and waiting for SIGINT/SIGTERM;
 * everything else is in service.c and store*.c.
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
#include "queue.h"
#include "rpc.h"
#include "svcmain.h"

static char *data_dir;
static struct config_list rpc_listen;
static char *http_listen;
static int workers;
static int max_depth_tenant, max_depth_total, max_queues, max_tenants;
static int64_t idem_retention;
static size_t max_payload, cache;
static int retry_attempts, retry_jitter;
static int64_t retry_base, retry_max;
static struct svcmain_common common;

static const struct config_option options[] = {
        {"queue.data-dir", CONFIG_STRING, &data_dir, "noetl-data/queue",
         "directory of the queue's RocksDB store (created if missing)", "data-dir", NULL},
        {"queue.listen", CONFIG_URLS, &rpc_listen, NOETL_DEFAULT_QUEUE_URL,
         "where the noetl.Queue RPC API listens (one or more URLs)", "listen", NULL},
        {"queue.http", CONFIG_STRING, &http_listen, NOETL_DEFAULT_QUEUE_HTTP_URL,
         "where /healthz, /readyz and /metrics are served (HTTP); empty: nowhere", "http", NULL},
        {"queue.workers", CONFIG_INT, &workers, "32",
         "RPC calls served at once (leases waiting for items hold one each)", "workers", NULL},
        {"queue.max-depth-per-tenant", CONFIG_INT, &max_depth_tenant, "1000000",
         "ready+leased+delayed items one tenant may have; over it Enqueue gets "
         "RESOURCE_EXHAUSTED",
         NULL, NULL},
        {"queue.max-depth", CONFIG_INT, &max_depth_total, "10000000",
         "the same limit over all tenants", NULL, NULL},
        {"queue.max-queues-per-tenant", CONFIG_INT, &max_queues, "1024",
         "queues one tenant may have", NULL, NULL},
        {"queue.max-tenants", CONFIG_INT, &max_tenants, "10000", "tenants the queue holds", NULL,
         NULL},
        {"queue.idempotency-retention", CONFIG_DURATION, &idem_retention, "24h",
         "how long an idempotency key makes a repeated enqueue a no-op", NULL, NULL},
        {"queue.max-payload", CONFIG_SIZE, &max_payload, "1MiB", "largest item payload accepted",
         NULL, NULL},
        {"queue.cache", CONFIG_SIZE, &cache, "8MiB", "RocksDB block cache", NULL, NULL},
        {"queue.retry.max-attempts", CONFIG_INT, &retry_attempts, "3",
         "attempts of an item whose retry policy does not say (1-100)", NULL, NULL},
        {"queue.retry.base", CONFIG_DURATION, &retry_base, "1s",
         "delay before the second attempt; doubles each attempt", NULL, NULL},
        {"queue.retry.max", CONFIG_DURATION, &retry_max, "60s", "longest retry delay", NULL, NULL},
        {"queue.retry.jitter-percent", CONFIG_INT, &retry_jitter, "20",
         "random +/- part of each retry delay, in percent (1-100)", NULL, NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        SVCMAIN_TLS_SERVER_OPTIONS(&common),
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_spec spec = {
        .program = "noetl-queue",
        .usage = "[options]",
        .summary = "Holds durable per-tenant queues: accepts events once they are on disk, "
                   "leases them to executors, retries failures and keeps dead letters.",
        .options = options,
        .default_file = NULL,
};

/* Checks the numbers config cannot: NULL, or what is wrong. */
static const char *check_limits(void)
{
	const char *bad = NULL;
	if (max_depth_tenant < 1 || max_depth_total < 1)
		bad = "queue.max-depth and queue.max-depth-per-tenant must be at least 1";
	else if (max_queues < 1 || max_tenants < 1)
		bad = "queue.max-queues-per-tenant and queue.max-tenants must be at least 1";
	else if (retry_attempts < 1 || retry_attempts > 100)
		bad = "queue.retry.max-attempts must be between 1 and 100";
	else if (retry_jitter < 1 || retry_jitter > 100)
		bad = "queue.retry.jitter-percent must be between 1 and 100";
	else if (retry_base < 1 || retry_max < retry_base || retry_max > 24 * 3600 * 1000)
		bad = "queue.retry.base must be positive and at most queue.retry.max (<= 24h)";
	else if (idem_retention < 1000)
		bad = "queue.idempotency-retention must be at least 1s";
	else if (max_payload < 1 || max_payload > (64u << 20))
		bad = "queue.max-payload must be between 1 byte and 64MiB";
	else if (workers < 1)
		bad = "queue.workers must be at least 1";
	return bad;
}

int main(int argc, char **argv)
{
	int status;
	if (!svcmain_configure(&spec, &common, "queue", argc, argv, &status))
		return status;
	const char *bad = check_limits();
	if (bad != NULL)
		return svcmain_refuse(&spec, "%s", bad);
	sigset_t sigs;
	svcmain_block_signals(&sigs, false, true);

	status = 1;
	struct svcmain_server sv = {0};
	struct queue *q = NULL;
	if (metrics_create(0, &sv.metrics) != 0)
		goto out;
	struct queue_config qc = {
	        .data_dir = data_dir,
	        .cache_bytes = cache,
	        .max_depth_tenant = (uint64_t)max_depth_tenant,
	        .max_depth_total = (uint64_t)max_depth_total,
	        .max_queues_tenant = (uint32_t)max_queues,
	        .max_tenants = (uint32_t)max_tenants,
	        .idempotency_retention_ms = idem_retention,
	        .max_payload_bytes = (uint32_t)max_payload,
	        .retry_max_attempts = (uint32_t)retry_attempts,
	        .retry_base_ms = (uint32_t)retry_base,
	        .retry_max_ms = (uint32_t)retry_max,
	        .retry_jitter_percent = (uint32_t)retry_jitter,
	        .metrics = sv.metrics,
	};
	if (queue_create(&qc, &q) != 0)
		goto out;
	size_t max_msg = RPC_DEFAULT_MAX_MSG;
	if (max_msg < max_payload + (1u << 20))
		max_msg = max_payload + (1u << 20);
	struct rpc_server_options so = {
	        .workers = workers, .max_msg = max_msg, .tls = common.tls, .name = "queue"};
	struct httpd_options ho = {.name = "queue", .ready = queue_ready, .ready_arg = q};
	if (svcmain_server_start(&sv, &so, queue_service(q), &rpc_listen, http_listen, &ho) != 0)
		goto out;
	log_info("serving noetl.Queue on %s, data in %s",
	         rpc_listen.count > 0 ? rpc_listen.items[0] : "(nothing)", data_dir);
	svcmain_wait(&sigs);
	status = 0;
out:
	svcmain_server_stop(&sv);
	queue_destroy(q);
	metrics_destroy(sv.metrics);
	config_free(options);
	return status;
}
