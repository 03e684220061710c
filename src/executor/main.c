/*
 * noetl-executor: the Executor as a process. Configuration, the health and
 * metrics endpoint, start-up retries until Control and the Repository
 * answer, and a clean stop on SIGINT/SIGTERM (batches in progress are
 * settled; anything still leased is redelivered after its lease).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "defaults.h"
#include "executor.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "svcmain.h"
#include "util.h"

static char *control_url, *repository_url, *queue_url, *recorder_url;
static char *control_stream, *repository_stream, *http_url, *cache_dir, *runner, *token;
static int pool, workers, batch, per_tenant, runner_min;
static int64_t lease, timeout, runner_idle;
static size_t memory, cache_max;
static struct svcmain_common common;

static const struct config_option options[] = {
        {"executor.control", CONFIG_URL, &control_url, NOETL_DEFAULT_CONTROL_URL,
         "RPC URL of Control", "control", NULL},
        {"executor.repository", CONFIG_URL, &repository_url, NOETL_DEFAULT_REPOSITORY_URL,
         "RPC URL of the Repository", "repository", NULL},
        {"executor.queue", CONFIG_URL, &queue_url, NOETL_DEFAULT_QUEUE_URL, "RPC URL of the Queue",
         "queue", NULL},
        {"executor.recorder", CONFIG_URL, &recorder_url, NOETL_DEFAULT_RECORDER_URL,
         "RPC URL of the Recorder", "recorder", NULL},
        {"executor.control-stream", CONFIG_URL, &control_stream, NOETL_DEFAULT_CONTROL_STREAM_URL,
         "change stream of Control", NULL, NULL},
        {"executor.repository-stream", CONFIG_URL, &repository_stream,
         NOETL_DEFAULT_REPOSITORY_STREAM_URL, "change stream of the Repository", NULL, NULL},
        {"executor.http", CONFIG_URL, &http_url, NOETL_DEFAULT_EXECUTOR_HTTP_URL,
         "where /healthz, /readyz and /metrics are served", "http", NULL},
        {"executor.cache-dir", CONFIG_STRING, &cache_dir, "noetl-data/executor/cache",
         "compiled modules, by content hash and toolchain (kept across restarts)", "cache-dir",
         NULL},
        {"executor.cache-max-bytes", CONFIG_SIZE, &cache_max, "1GiB",
         "compile cache bound: least recently used modules go first (loaded ones stay); 0: no "
         "bound",
         NULL, NULL},
        {"executor.runner", CONFIG_STRING, &runner, NULL,
         "the noetl-runner program; default: next to this program", NULL, NULL},
        {"executor.runner-idle", CONFIG_DURATION, &runner_idle, "60s",
         "a runner process without work this long is stopped; 0: never", NULL, NULL},
        {"executor.runner-min", CONFIG_INT, &runner_min, "0",
         "runner processes that stay however long they are idle", NULL, NULL},
        {"executor.pool", CONFIG_INT, &pool, "0", "runner processes at most; 0: one per core",
         "pool", NULL},
        {"executor.workers", CONFIG_INT, &workers, "0",
         "leasing threads; 0: as many as runner processes", NULL, NULL},
        {"executor.batch", CONFIG_INT, &batch, "16", "events leased at once by a worker", NULL,
         NULL},
        {"executor.per-tenant", CONFIG_INT, &per_tenant, "0",
         "events of one tenant per lease (its concurrency is workers x this); 0: batch / 2", NULL,
         NULL},
        {"executor.lease", CONFIG_DURATION, &lease, "30s",
         "lease time, extended every third of it while a batch runs: a killed executor's "
         "events return after it",
         NULL, NULL},
        {"executor.timeout", CONFIG_DURATION, &timeout, "10s",
         "wall-clock limit per event unless the job says otherwise", NULL, NULL},
        {"executor.memory", CONFIG_SIZE, &memory, "64MiB",
         "linear memory limit per module unless the runtime says otherwise", NULL, NULL},
        {"executor.token", CONFIG_STRING, &token, NULL, "platform credential for service calls",
         NULL, NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_spec spec = {
        .program = "noetl-executor",
        .usage = "[options]",
        .summary = "Leases events from the Queue and runs them with their tenant's WebAssembly "
                   "module in sandboxed runner processes; routes results to follow-up events "
                   "and records every attempt.",
        .options = options,
};

static struct executor_metrics_slot metrics_slot;

static bool ready(void *arg, char *why, size_t cap)
{
	(void)arg;
	if (atomic_load(&metrics_slot.running) == NULL) {
		snprintf(why, cap, "waiting for control and the repository to load definitions");
		return false;
	}
	return true;
}

/* executor.runner-idle as the engine takes it: 0 is "never". */
static uint32_t runner_idle_ms(int64_t ms)
{
	return ms <= 0 || ms >= UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

int main(int argc, char **argv)
{
	int status;
	if (!svcmain_configure(&spec, &common, "executor", argc, argv, &status))
		return status;
	if (runner_min < 0 || runner_idle < 0)
		return svcmain_refuse(&spec, "'%s' must not be negative",
		                      runner_min < 0 ? "executor.runner-min"
		                                     : "executor.runner-idle");
	/* SIGPIPE keeps its default: the runners inherit it (they talk to the
	 * executor with MSG_NOSIGNAL anyway) */
	sigset_t set;
	svcmain_block_signals(&set, false, false);

	struct metrics *m = NULL;
	metrics_create(0, &m);
	executor_metrics(m, &metrics_slot);
	struct httpd *h = NULL;
	struct httpd_options ho = {.name = "executor", .metrics = m, .ready = ready};
	if (svcmain_http(http_url, &ho, &h) != 0) {
		metrics_destroy(m);
		config_free(options);
		return 1;
	}

	struct executor_config cfg = {
	        .control_url = control_url,
	        .repository_url = repository_url,
	        .queue_url = queue_url,
	        .recorder_url = recorder_url,
	        .control_stream = control_stream,
	        .repository_stream = repository_stream,
	        .token = token,
	        .engine = {.cache_dir = cache_dir,
	                   .runner_path = runner,
	                   .pool_size = (unsigned)pool,
	                   .limits = {.memory_bytes = memory, .timeout_ms = (uint32_t)timeout},
	                   .cache_max_bytes = cache_max ? (uint64_t)cache_max : UINT64_MAX,
	                   .runner_idle_ms = runner_idle_ms(runner_idle),
	                   .runner_min = (unsigned)runner_min},
	        .workers = (unsigned)workers,
	        .batch = (unsigned)batch,
	        .per_tenant = (unsigned)per_tenant,
	        .lease_ms = (int)lease,
	};
	struct executor *ex = NULL;
	char *err = NULL;
	int rc;
	for (;;) {
		rc = executor_create(&cfg, 3000, &ex, &err);
		if (rc == 0)
			break;
		if (rc != -EAGAIN) { /* not worth retrying: a bad config or host */
			log_error("%s", err != NULL ? err : "cannot start");
			free(err);
			break;
		}
		log_warn("%s", err != NULL ? err : "cannot start");
		free(err);
		err = NULL;
		struct timespec ts = {.tv_sec = 1};
		if (sigtimedwait(&set, NULL, &ts) > 0)
			break; /* asked to stop while waiting */
	}
	status = 0;
	if (ex != NULL) {
		atomic_store(&metrics_slot.running, ex);
		log_info("executor ready");
		svcmain_wait(&set);
		log_info("settling batches in progress");
		atomic_store(&metrics_slot.running, NULL);
		httpd_destroy(h);
		h = NULL;
		executor_destroy(ex);
	} else {
		status = 1;
	}
	httpd_destroy(h);
	metrics_destroy(m);
	config_free(options);
	return status;
}
