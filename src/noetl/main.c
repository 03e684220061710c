/*
 * noetl: the whole platform in one process, for a laptop, CI and the quick
 * start.
 *
 * Every service runs here with its own RocksDB under the data directory
 * (control/, repository/, queue/, recorder/, executor/cache/). They call
 * each other over inproc:// and also serve their RPC APIs and change streams
 * on the default local addresses (src/lib/defaults.h), so that noetlctl
 * works with no flags, and the listener takes webhooks on --http (default
 * 127.0.0.1:8080). The change streams are published on loopback TCP only:
 * the same socket serves the internal subscribers and `noetlctl watch`.
 *
 * Start order follows the dependencies (stores first, the executor and the
 * listener last); SIGINT or SIGTERM stops in the reverse order: the listener
 * stops taking requests, the executor settles the batches it is running
 * (anything still leased is redelivered after its lease), and the stores
 * close. Nothing accepted is lost: the queue made it durable before the
 * listener answered 202.
 *
 * SIGUSR1 pauses the executor's leasing and SIGUSR2 resumes it: webhooks are
 * still accepted and wait in the queue meanwhile. It is for maintenance and
 * for bench/e2e, which builds a backlog this way to measure the memory it
 * costs and how fast the executor drains it.
 *
 * Memory. The separate services size their RocksDB stores for a host of
 * their own (the Recorder 32 MiB of memtable and 32 MiB of cache, the others
 * 8 and 8); four of them in one process on a laptop would hold up to 150 MiB
 * once a backlog has passed through, so the all-in-one bounds each store's
 * cache and memtable (noetl.store-cache, noetl.store-write-buffer: 2 MiB
 * each by default, kv_limit_memory). Smaller memtables mean more, smaller
 * flushes and a little more compaction, which bench/e2e measures.
 * glibc's malloc, left alone, keeps what the many threads here free in up
 * to 8 arenas per core and raises its mmap threshold as big blocks (RocksDB's
 * memtable arenas, large RPC messages) come and go, so the freed memory
 * stays resident: 50 MiB of it after a million events (bench/e2e). Here it
 * gets one arena per core, a fixed mmap threshold (blocks of 256 KiB and up
 * go back to the kernel when freed) and, every few seconds, malloc_trim,
 * which returns the free pages inside the arenas.
 *
 * Batches. The executor leases 64 events at a time here (noetl-executor:
 * 16), half of them of one tenant: in one process on a small machine every
 * Lease, Ack and Record call is a hand-off between threads, and bench/e2e
 * drained 1.5x faster with the larger batch. The lease stays 30 s whatever
 * the batch (the executor extends the leases of running batches), so events
 * leased when noetl is killed come back 30 s after it.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "defaults.h"
#include "executor.h"
#include "kv.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "recorder.h"
#include "repository.h"
#include "rpc.h"
#include "svcmain.h"
#include "util.h"

static char *data_dir, *http_url, *runner, *token;
static char *control_rpc, *repository_rpc, *queue_rpc, *recorder_rpc;
static char *control_stream, *repository_stream, *recorder_stream;
static int pool, rpc_workers, workers, batch, runner_min;
static int64_t timeout, runner_idle, retain_age, retain_every;
static size_t retain_bytes;
static size_t memory, store_cache, store_write_buffer, cache_max;
static bool dev_mode;
static struct svcmain_common common;

static const struct config_option options[] = {
        {"noetl.data", CONFIG_STRING, &data_dir, "noetl-data",
         "directory holding every service's store (created if missing)", "data", NULL},
        {"noetl.http", CONFIG_STRING, &http_url, "127.0.0.1:8080",
         "where the listener takes webhooks (host:port or http://host:port)", "http", NULL},
        {"noetl.control", CONFIG_URL, &control_rpc, NOETL_DEFAULT_CONTROL_URL,
         "Control's RPC API for noetlctl (besides inproc)", NULL, NULL},
        {"noetl.repository", CONFIG_URL, &repository_rpc, NOETL_DEFAULT_REPOSITORY_URL,
         "the Repository's RPC API", NULL, NULL},
        {"noetl.queue", CONFIG_URL, &queue_rpc, NOETL_DEFAULT_QUEUE_URL, "the Queue's RPC API",
         NULL, NULL},
        {"noetl.recorder", CONFIG_URL, &recorder_rpc, NOETL_DEFAULT_RECORDER_URL,
         "the Recorder's RPC API", NULL, NULL},
        {"noetl.control-stream", CONFIG_URL, &control_stream, NOETL_DEFAULT_CONTROL_STREAM_URL,
         "Control's change stream", NULL, NULL},
        {"noetl.repository-stream", CONFIG_URL, &repository_stream,
         NOETL_DEFAULT_REPOSITORY_STREAM_URL, "the Repository's change stream", NULL, NULL},
        {"noetl.recorder-stream", CONFIG_URL, &recorder_stream, NOETL_DEFAULT_RECORDER_STREAM_URL,
         "the Recorder's record stream (noetlctl --follow)", NULL, NULL},
        {"noetl.rpc-workers", CONFIG_INT, &rpc_workers, "16",
         "RPC calls served at once per service", NULL, NULL},
        {"noetl.store-cache", CONFIG_SIZE, &store_cache, "2MiB",
         "RocksDB block cache of each of the four stores, at most", NULL, NULL},
        {"noetl.store-write-buffer", CONFIG_SIZE, &store_write_buffer, "2MiB",
         "RocksDB memtable of each store, at most (up to 3 while one is flushed)", NULL, NULL},
        {"executor.pool", CONFIG_INT, &pool, "0", "WebAssembly runner processes; 0: one per core",
         "pool", NULL},
        {"executor.workers", CONFIG_INT, &workers, "0",
         "leasing threads; 0: as many as runner processes", NULL, NULL},
        {"executor.batch", CONFIG_INT, &batch, "64", "events leased at once by a worker", NULL,
         NULL},
        {"executor.timeout", CONFIG_DURATION, &timeout, "10s",
         "wall-clock limit per event unless the job says otherwise", NULL, NULL},
        {"executor.memory", CONFIG_SIZE, &memory, "64MiB",
         "linear memory limit per module unless the runtime says otherwise", NULL, NULL},
        {"executor.runner", CONFIG_STRING, &runner, NULL,
         "the noetl-runner program; default: found next to noetl or in the build tree", NULL, NULL},
        {"executor.runner-idle", CONFIG_DURATION, &runner_idle, "60s",
         "a runner process without work this long is stopped; 0: never", NULL, NULL},
        {"executor.runner-min", CONFIG_INT, &runner_min, "0",
         "runner processes that stay however long they are idle", NULL, NULL},
        {"executor.cache-max-bytes", CONFIG_SIZE, &cache_max, "1GiB",
         "compile cache bound: least recently used modules go first (loaded ones stay); 0: no "
         "bound",
         NULL, NULL},
        RECORDER_RETENTION_OPTIONS(&retain_age, &retain_bytes, &retain_every),
        {"listener.dev", CONFIG_BOOL, &dev_mode, "false",
         "accept webhooks without a token (development only; logged loudly)", "dev", NULL},
        {"noetl.token", CONFIG_STRING, &token, NULL, "platform credential between services", NULL,
         NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_spec spec = {
        .program = "noetl",
        .usage = "[--data DIR] [--http ADDR] [--config FILE] [options]",
        .summary = "Runs the whole noetl platform in one process: control, repository, queue, "
                   "recorder, executor and the webhook listener. SIGUSR1 pauses the executor "
                   "(events queue up), SIGUSR2 resumes it; SIGINT or SIGTERM stops.",
        .options = options,
};

/* The running platform, in start order. */
struct platform {
	struct metrics *metrics;
	struct repository *repository;
	struct recorder *recorder;
	struct queue *queue;
	struct control *control;
	struct rpc_server *srv_repository, *srv_recorder, *srv_queue, *srv_control;
	struct executor *executor;
	struct executor_metrics_slot executor_metrics; /* its /metrics families */
	struct listener *listener;
};

static void sub(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", data_dir, name);
}

/* Serves svc on its inproc URL and its public one. */
static int serve(const char *name, ProtobufCService *svc, const char *public_url,
                 struct rpc_server **out)
{
	char inproc[64];
	snprintf(inproc, sizeof(inproc), "inproc://noetl-%s", name);
	char *urls[] = {inproc, (char *)public_url};
	struct config_list list = {.count = 2, .items = urls};
	struct rpc_server_options o = {.name = name, .workers = rpc_workers};
	return svcmain_serve(&o, svc, &list, out);
}

/* Where noetl-runner is: next to us (installed), or in the build tree. */
static const char *find_runner(char *buf, size_t cap)
{
	if (runner != NULL)
		return runner;
	char self[PATH_MAX - 64]; /* room for the suffixes below in a PATH_MAX buffer */
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	const char *cands[] = {"%s/noetl-runner", "%s/../executor/noetl-runner"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(buf, cap, cands[i], self);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

/* --- malloc (see "Memory" above) ------------------------------------------------------- */

#define TRIM_INTERVAL_MS 5000

static struct {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	bool stop, running;
} trimmer = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void *trim_loop(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&trimmer.mu);
	while (!trimmer.stop) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_sec += TRIM_INTERVAL_MS / 1000;
		if (pthread_cond_timedwait(&trimmer.wake, &trimmer.mu, &t) != ETIMEDOUT)
			continue; /* woken to stop (or spuriously) */
		pthread_mutex_unlock(&trimmer.mu);
		malloc_trim(0);
		pthread_mutex_lock(&trimmer.mu);
	}
	pthread_mutex_unlock(&trimmer.mu);
	return NULL;
}

/* Before any other thread starts: mallopt's settings apply to arenas made
 * afterwards. An operator's GLIBC_TUNABLES (glibc.malloc.*) win over them.
 * A trimmer that cannot start is logged and done without. */
static void malloc_start(void)
{
	if (getenv("GLIBC_TUNABLES") == NULL) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		mallopt(M_ARENA_MAX, cpus > 0 ? (int)cpus : 2);
		mallopt(M_MMAP_THRESHOLD, 256 << 10);
	}
	if (pthread_create(&trimmer.thread, NULL, trim_loop, NULL) == 0)
		trimmer.running = true;
	else
		log_warn("noetl: no malloc trimmer thread: freed memory stays resident longer");
}

static void malloc_stop(void)
{
	if (!trimmer.running)
		return;
	pthread_mutex_lock(&trimmer.mu);
	trimmer.stop = true;
	pthread_cond_signal(&trimmer.wake);
	pthread_mutex_unlock(&trimmer.mu);
	pthread_join(trimmer.thread, NULL);
}

/* --- start and stop --------------------------------------------------------------------- */

static void stop(struct platform *p)
{
	/* the listener serves /metrics: it goes first, so nothing renders the
	 * services' metrics after they are gone */
	listener_destroy(p->listener);
	atomic_store(&p->executor_metrics.running, NULL);
	executor_destroy(p->executor);
	rpc_server_destroy(p->srv_control);
	control_destroy(p->control);
	rpc_server_destroy(p->srv_queue);
	queue_destroy(p->queue);
	rpc_server_destroy(p->srv_recorder);
	recorder_destroy(p->recorder);
	rpc_server_destroy(p->srv_repository);
	repository_destroy(p->repository);
	metrics_destroy(p->metrics);
}

static int start(struct platform *p)
{
	char dir[PATH_MAX], cache[PATH_MAX];
	if (pool < 0 || workers < 0 || batch < 0 || runner_min < 0 || runner_idle < 0) {
		log_error(
		        "executor.pool, executor.workers, executor.batch, executor.runner-min and "
		        "executor.runner-idle must not be negative");
		return -EINVAL;
	}
	int rc = util_mkdir_p(data_dir);
	if (rc != 0) {
		log_error("cannot create the data directory '%s': %s", data_dir, strerror(-rc));
		return rc;
	}
	/* before any store opens (see "Memory" above) */
	kv_limit_memory(store_cache, store_write_buffer);
	metrics_create(0, &p->metrics);
	/* what the process's memory is made of: the stores' RocksDB memory and
	 * malloc's heap, besides the RSS */
	kv_register_metrics(p->metrics);
	metrics_register_process(p->metrics);
	executor_metrics(p->metrics, &p->executor_metrics);

	sub(dir, sizeof(dir), "repository");
	struct repository_config rc_ = {.data_dir = dir, .stream_url = repository_stream};
	if ((rc = repository_create(&rc_, &p->repository)) != 0 ||
	    (rc = serve("repository", repository_service(p->repository), repository_rpc,
	                &p->srv_repository)) != 0) {
		log_error("cannot start the repository (%d)", rc);
		return rc;
	}
	repository_metrics(p->repository, p->metrics);
	sub(dir, sizeof(dir), "recorder");
	struct recorder_config rec = {.data_dir = dir,
	                              .stream_url = recorder_stream,
	                              .max_age_ms = retain_age,
	                              .max_bytes = retain_bytes,
	                              .retain_every_ms = retain_every};
	if ((rc = recorder_create(&rec, &p->recorder)) != 0 ||
	    (rc = serve("recorder", recorder_service(p->recorder), recorder_rpc,
	                &p->srv_recorder)) != 0) {
		log_error("cannot start the recorder (%d)", rc);
		return rc;
	}
	recorder_metrics(p->recorder, p->metrics);
	sub(dir, sizeof(dir), "queue");
	struct queue_config qc = {.data_dir = dir, .metrics = p->metrics};
	if ((rc = queue_create(&qc, &p->queue)) != 0 ||
	    (rc = serve("queue", queue_service(p->queue), queue_rpc, &p->srv_queue)) != 0) {
		log_error("cannot start the queue (%d)", rc);
		return rc;
	}
	sub(dir, sizeof(dir), "control");
	struct control_config cc = {.data_dir = dir,
	                            .stream_url = control_stream,
	                            .repository_url = "inproc://noetl-repository",
	                            .queue_url = "inproc://noetl-queue"};
	if ((rc = control_create(&cc, &p->control)) != 0 ||
	    (rc = serve("control", control_service(p->control), control_rpc, &p->srv_control)) !=
	            0) {
		log_error("cannot start control (%d)", rc);
		return rc;
	}
	control_metrics(p->control, p->metrics);

	sub(cache, sizeof(cache), "executor/cache");
	char runner_buf[PATH_MAX];
	struct executor_config ec = {
	        .control_url = "inproc://noetl-control",
	        .repository_url = "inproc://noetl-repository",
	        .queue_url = "inproc://noetl-queue",
	        .recorder_url = "inproc://noetl-recorder",
	        .control_stream = control_stream,
	        .repository_stream = repository_stream,
	        .token = token,
	        .engine = {.cache_dir = cache,
	                   .runner_path = find_runner(runner_buf, sizeof(runner_buf)),
	                   .pool_size = (unsigned)pool,
	                   .limits = {.memory_bytes = memory, .timeout_ms = (uint32_t)timeout},
	                   .cache_max_bytes = cache_max ? (uint64_t)cache_max : UINT64_MAX,
	                   .runner_idle_ms = runner_idle > 0 && runner_idle < UINT32_MAX
	                                             ? (uint32_t)runner_idle
	                                             : UINT32_MAX,
	                   .runner_min = (unsigned)runner_min},
	        .workers = (unsigned)workers,
	        .batch = (unsigned)batch,
	        /* records waiting for the Recorder: noetl-executor keeps up to
	         * 32 MiB to ride out a Recorder that is away; here it is in the
	         * same process, and a drain filled all 32 (bench/e2e) */
	        .report_bytes = 4u << 20,
	};
	char *err = NULL;
	if ((rc = executor_create(&ec, 10000, &p->executor, &err)) != 0) {
		log_error("cannot start the executor: %s", err != NULL ? err : "");
		free(err);
		return rc;
	}
	atomic_store(&p->executor_metrics.running, p->executor);

	char http[256];
	if (strncmp(http_url, "http://", 7) == 0 || strncmp(http_url, "https://", 8) == 0)
		snprintf(http, sizeof(http), "%s", http_url);
	else
		snprintf(http, sizeof(http), "http://%s", http_url);
	struct listener_config lc = {.http_url = http,
	                             .control_url = "inproc://noetl-control",
	                             .control_stream_url = control_stream,
	                             .repository_url = "inproc://noetl-repository",
	                             .repository_stream_url = repository_stream,
	                             .queue_url = "inproc://noetl-queue",
	                             .recorder_url = "inproc://noetl-recorder",
	                             .token = token,
	                             .dev_mode = dev_mode,
	                             .metrics = p->metrics};
	if ((rc = listener_create(&lc, &p->listener)) != 0) {
		log_error("cannot start the listener on '%s' (%d)", http, rc);
		return rc;
	}
	log_info("noetl is up: webhooks on %s, data in '%s'", http, data_dir);
	return 0;
}

int main(int argc, char **argv)
{
	int status;
	if (!svcmain_configure(&spec, &common, "noetl", argc, argv, &status))
		return status;
	const char *bad = recorder_check_retention(retain_every);
	if (bad != NULL)
		return svcmain_refuse(&spec, bad);
	sigset_t set;
	svcmain_block_signals(&set, true, true);
	malloc_start();

	struct platform p = {0};
	status = 0;
	if (start(&p) != 0) {
		status = 1;
	} else {
		int sig;
		while ((sig = svcmain_wait(&set)) == SIGUSR1 || sig == SIGUSR2) {
			executor_pause(p.executor, sig == SIGUSR1);
			log_info("executor %s on signal %d", sig == SIGUSR1 ? "paused" : "resumed",
			         sig);
		}
	}
	stop(&p);
	malloc_stop();
	config_free(options);
	return status;
}
