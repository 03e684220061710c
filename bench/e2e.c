/*
 * bench/e2e: the all-in-one `noetl` under HTTP load with the echo module,
 * against floors measured in the same run.
 *
 * It starts the real `noetl` program as a child process on free loopback
 * ports with its data in a temporary directory, sets it up with `noetlctl`
 * (tenant, echo.wasm, a JSON Schema, a job whose event runs echo and routes
 * nothing, a token) and then measures, in this order:
 *
 *   floor, HTTP   an empty nng HTTP handler in this process answering 202
 *                 with a fixed body, same client and concurrency: the most
 *                 any handler on this HTTP stack can answer;
 *   idle RSS      noetl's resident memory after the setup and one executed
 *                 event (module compiled and loaded, runner started);
 *   ingest        POSTs of 1 event each on C keep-alive connections (closed
 *                 loop) until N events were accepted: events/s answered
 *                 202, each one validated and made durable (synced RocksDB
 *                 write) before its reply. The executor is paused (SIGUSR1)
 *                 so that the events stay queued;
 *   RSS queued    noetl's resident memory holding those N events;
 *   drain         the executor resumed (SIGUSR2) until every queued event
 *                 was executed by echo, acked and recorded (the Recorder's
 *                 head stops moving): events/s over that time;
 *   open loop     a fixed offered rate with the executor running, latency
 *                 from each request's scheduled time (loadgen.h: no
 *                 coordinated omission), p50/p99/p99.9;
 *   floor, disk   synced RocksDB write batches through src/lib/kv.h, of the
 *                 batch size the queue's group commit reached during the
 *                 ingest (its own metrics: ops per synced write): the most
 *                 events/s durable enqueue can reach with that batching.
 * Then it checks a sample of the accepted ids: each must have an execution
 * recorded with status OK.
 *
 * Targets (issue 8): drain >= 0.7x ingest; idle RSS <= 50 MiB; RSS with 1M
 * events queued <= 1.5x idle. The default run queues fewer events so that
 * `make bench` stays short; --full queues 1,000,000.
 *
 * usage: bench_e2e [--quick | --full] [--events N] [--conns C] [--rate R]
 *                  [--open-seconds S] [--floor-seconds S] [--dir DIR] [--keep]
 *                  [--noetl PATH] [--noetlctl PATH] [--wasm PATH]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_platform.h"
#include "kv.h"
#include "loadgen.h"
#include "log.h"
#include "util.h"

static uint64_t events = 50000;
static int conns = 32;
static double rate = 1000;
static double open_seconds = 10;
static double floor_seconds = 5;
static bool keep;

static const char body[] = "{\"data\":[{\"firstName\":\"Ada\",\"age\":36}]}";

static struct platform plat;

static void on_signal(int sig)
{
	if (plat.pid > 0)
		kill(plat.pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void fail(const char *what)
{
	fprintf(stderr, "bench_e2e: %s\n", what);
	if (plat.pid > 0) {
		fprintf(stderr, "bench_e2e: noetl's log is '%s' (kept)\n", plat.log);
		platform_stop(&plat);
	}
	exit(1);
}

static double now_s(void)
{
	return (double)util_mono_us() / 1e6;
}

static void request(char *buf, size_t cap, const char *token, size_t *len)
{
	int n = snprintf(buf, cap,
	                 "POST /events/bench/greet HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                 "Content-Type: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
	                 token != NULL ? "Authorization: Bearer " : "", token != NULL ? token : "",
	                 token != NULL ? "\r\n" : "", sizeof(body) - 1, body);
	*len = (size_t)n;
}

/* --- floors ----------------------------------------------------------------------------- */

static void empty_handler(nng_aio *aio)
{
	static const char reply[] = "{\"accepted\":1,\"ids\":[\"01M83WPN5AVQ98GKD3WAYDV55R\"]}";
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, 202);
	nng_http_res_set_header(res, "Content-Type", "application/json");
	nng_http_res_copy_data(res, reply, sizeof(reply) - 1);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static struct load_result floor_http(void)
{
	nng_url *u;
	nng_http_server *s;
	nng_http_handler *h;
	if (nng_url_parse(&u, "http://127.0.0.1:0") != 0 || nng_http_server_hold(&s, u) != 0 ||
	    nng_http_handler_alloc(&h, "/events", empty_handler) != 0 ||
	    nng_http_handler_set_method(h, "POST") != 0 || nng_http_handler_set_tree(h) != 0 ||
	    nng_http_handler_collect_body(h, true, 1 << 20) != 0 ||
	    nng_http_server_add_handler(s, h) != 0 || nng_http_server_start(s) != 0)
		fail("cannot start the empty HTTP handler");
	nng_sockaddr sa;
	nng_http_server_get_addr(s, &sa);
	char req[1024];
	size_t len;
	request(req, sizeof(req), "x", &len);
	struct load_options o = {.port = ntohs(sa.s_in.sa_port),
	                         .request = req,
	                         .request_len = len,
	                         .conns = conns,
	                         .seconds = floor_seconds};
	struct load_result r;
	if (load_run(&o, &r) != 0)
		fail("cannot connect to the empty HTTP handler");
	nng_http_server_stop(s);
	nng_http_server_release(s);
	nng_url_free(u);
	return r;
}

struct disk_floor {
	double batch;  /* operations per synced write */
	double writes; /* synced writes per second */
	double rate;   /* batch x writes: events per second */
};

/* Synced kv writes of batch puts, one writer like the queue's, value size
 * about an encoded queue item. */
static struct disk_floor floor_disk(const char *dir, double batch)
{
	struct disk_floor f = {.batch = batch};
	char path[700];
	snprintf(path, sizeof(path), "%s/floor-kv", dir);
	struct kv *kv;
	if (kv_open(path, NULL, &kv) != 0)
		fail("cannot open the RocksDB floor store");
	int n = (int)(batch + 0.5) > 0 ? (int)(batch + 0.5) : 1;
	char val[200];
	memset(val, 'v', sizeof(val));
	struct kv_batch *b = kv_batch_create();
	uint64_t seq = 0, writes = 0;
	double t0 = now_s(), t = t0;
	while (t - t0 < floor_seconds) {
		kv_batch_clear(b);
		for (int i = 0; i < n; i++) {
			char key[9] = {'i'};
			util_put_be64((uint8_t *)key + 1, seq++);
			kv_batch_put(b, key, sizeof(key), val, sizeof(val));
		}
		if (kv_write(kv, b, true) != 0)
			fail("a synced RocksDB write failed");
		writes++;
		t = now_s();
	}
	kv_batch_destroy(b);
	kv_close(kv);
	f.batch = n;
	f.writes = (double)writes / (t - t0);
	f.rate = (double)seq / (t - t0);
	return f;
}

/* --- sampling while a phase runs ------------------------------------------------------ */

struct sampler {
	pthread_t thread;
	atomic_bool stop;
	long max_rss_kb;
	uint64_t max_depth;
};

static void *sample(void *arg)
{
	struct sampler *s = arg;
	while (!atomic_load(&s->stop)) {
		long kb = platform_rss_kb(plat.pid);
		struct qstats q;
		if (kb > s->max_rss_kb)
			s->max_rss_kb = kb;
		if (platform_queue_stats(&plat, &q) == 0 &&
		    q.ready + q.leased + q.delayed > s->max_depth)
			s->max_depth = q.ready + q.leased + q.delayed;
		util_sleep_ms(100);
	}
	return NULL;
}

static void sampler_start(struct sampler *s)
{
	memset(s, 0, sizeof(*s));
	if (pthread_create(&s->thread, NULL, sample, s) != 0)
		fail("cannot start a thread");
}

static void sampler_stop(struct sampler *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
}

/* --- waiting on the platform ------------------------------------------------------------ */

static struct qstats qstats(void)
{
	struct qstats q;
	for (int i = 0; platform_queue_stats(&plat, &q) != 0; i++) {
		if (i == 50)
			fail("the queue does not answer Stats");
		util_sleep_ms(100);
	}
	return q;
}

static uint64_t depth(const struct qstats *q)
{
	return q->ready + q->leased + q->delayed;
}

/*
 * Waits until the tenant's queues are empty with at least `acked` items
 * acked, then until the Recorder's head has not moved for 1 s. Returns the
 * time (now_s) of the last change seen, ack or record, or a negative value
 * if nothing moved for stall_s seconds while work was left.
 */
static double wait_drained(uint64_t acked, double stall_s)
{
	struct qstats q = qstats();
	uint64_t last_acked = q.acked, head = 0, h;
	double last = now_s();
	while (depth(&q) > 0 || q.acked < acked) {
		util_sleep_ms(20);
		q = qstats();
		if (q.acked != last_acked) {
			last_acked = q.acked;
			last = now_s();
		} else if (now_s() - last > stall_s) {
			return -1;
		}
	}
	double done = now_s();
	platform_recorder_head(&plat, &head);
	double moved = done;
	while (now_s() - moved < 1.0) {
		util_sleep_ms(20);
		if (platform_recorder_head(&plat, &h) == 0 && h != head) {
			head = h;
			moved = now_s();
		}
	}
	return moved > done ? moved : done;
}

/*
 * Posts one event at a time until one is accepted and executed: the
 * listener accepts the event once it has seen the deploy on Control's
 * stream, and the executor runs it once it has compiled the module. An
 * event leased before that fails ("unknown event") and is retried, or
 * dead-lettered if the compile outlasts its attempts; then another is sent.
 * Returns the attempts that failed on the way.
 */
static uint64_t warm_up(const char *req, size_t len)
{
	struct load_options o = {.port = plat.http_port,
	                         .request = req,
	                         .request_len = len,
	                         .conns = 1,
	                         .max_requests = 1};
	for (int tries = 0;; tries++) {
		struct qstats q = qstats();
		for (int i = 0;; i++) {
			struct load_result r;
			if (load_run(&o, &r) != 0)
				fail("cannot connect to the listener");
			load_result_free(&r);
			if (r.accepted == 1)
				break;
			if (i == 200)
				fail("the listener did not accept the deployed event within 20 s");
			util_sleep_ms(100);
		}
		struct qstats e;
		double t0 = now_s();
		do {
			util_sleep_ms(50);
			e = qstats();
			if (now_s() - t0 > 300)
				fail("the warm-up event was neither executed nor dead after 5 "
				     "minutes");
		} while (e.acked == q.acked && e.dead == q.dead);
		if (e.acked > q.acked) {
			wait_drained(e.acked, 60);
			return qstats().failed;
		}
		if (tries == 5)
			fail("five warm-up events in a row went to the dead-letter queue");
	}
}

/* --- main ------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench_e2e [--quick | --full] [--events N] [--conns C] [--rate R]\n"
	        "                 [--open-seconds S] [--floor-seconds S] [--dir DIR] [--keep]\n"
	        "                 [--noetl PATH] [--noetlctl PATH] [--wasm PATH]\n"
	        "  default: %llu events queued; --quick: 5000 (about 20 s);\n"
	        "  --full: 1,000,000 (the RSS target's size; many minutes)\n",
	        (unsigned long long)events);
}

/* path of a build product relative to this program (build/bench/...). */
static const char *built(const char *opt, const char *rel, char *buf, size_t cap)
{
	if (opt != NULL)
		return opt;
	char self[PATH_MAX - 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return rel;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(buf, cap, "%s/../%s", self, rel);
	return buf;
}

static double mib(long kb)
{
	return (double)kb / 1024.0;
}

static void row(const char *name, double evs, const struct load_result *r)
{
	printf("%-44s %10.0f", name, evs);
	if (r != NULL)
		printf(" %8.2f %8.2f %8.2f %8.2f %7llu", r->p50, r->p99, r->p999, r->max,
		       (unsigned long long)(r->rejected + r->failures));
	printf("\n");
}

static const char *verdict(bool ok)
{
	return ok ? "met" : "NOT met";
}

int main(int argc, char **argv)
{
	const char *dir_opt = NULL, *noetl = NULL, *noetlctl = NULL, *wasm = NULL;
	bool events_set = false, quick = false, full = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (strcmp(a, "--quick") == 0)
			quick = true;
		else if (strcmp(a, "--full") == 0)
			full = true;
		else if (strcmp(a, "--keep") == 0)
			keep = true;
		else if (strcmp(a, "--events") == 0 && more)
			events = strtoull(argv[++i], NULL, 10), events_set = true;
		else if (strcmp(a, "--conns") == 0 && more)
			conns = atoi(argv[++i]);
		else if (strcmp(a, "--rate") == 0 && more)
			rate = atof(argv[++i]);
		else if (strcmp(a, "--open-seconds") == 0 && more)
			open_seconds = atof(argv[++i]);
		else if (strcmp(a, "--floor-seconds") == 0 && more)
			floor_seconds = atof(argv[++i]);
		else if (strcmp(a, "--dir") == 0 && more)
			dir_opt = argv[++i];
		else if (strcmp(a, "--noetl") == 0 && more)
			noetl = argv[++i];
		else if (strcmp(a, "--noetlctl") == 0 && more)
			noetlctl = argv[++i];
		else if (strcmp(a, "--wasm") == 0 && more)
			wasm = argv[++i];
		else {
			usage();
			return 2;
		}
	}
	if (quick && full) {
		fprintf(stderr, "bench_e2e: --quick and --full exclude each other\n");
		return 2;
	}
	if (quick) {
		events = events_set ? events : 5000;
		open_seconds = 3;
		floor_seconds = 2;
	} else if (full) {
		events = events_set ? events : 1000000;
		open_seconds = 30;
		floor_seconds = 10;
	}
	if (events < 1 || conns < 1 || conns > 4096 || rate <= 0 || open_seconds <= 0 ||
	    floor_seconds <= 0) {
		fprintf(stderr, "bench_e2e: events, connections (at most 4096), rate and "
		                "durations must be positive\n");
		return 2;
	}
	/* The children take their settings from the flags given here only. */
	for (char **e = environ; *e != NULL;) {
		if (strncmp(*e, "NOETL_", 6) == 0) {
			char name[256];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
			unsetenv(name);
		} else {
			e++;
		}
	}
	log_setup("bench", LOG_LEVEL_WARN, false);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	char b1[PATH_MAX], b2[PATH_MAX], b3[PATH_MAX];
	plat.noetl = built(noetl, "src/noetl/noetl", b1, sizeof(b1));
	plat.noetlctl = built(noetlctl, "src/cli/noetlctl", b2, sizeof(b2));
	plat.echo_wasm = built(wasm, "sdk/examples/echo.wasm", b3, sizeof(b3));
	const char *need[] = {plat.noetl, plat.noetlctl, plat.echo_wasm};
	for (int i = 0; i < 3; i++)
		if (access(need[i], R_OK) != 0) {
			fprintf(stderr,
			        "bench_e2e: '%s' is missing: build the project first "
			        "(meson compile -C <builddir>) or pass --noetl, --noetlctl, "
			        "--wasm\n",
			        need[i]);
			return 1;
		}
	const char *tmp = getenv("TMPDIR");
	snprintf(plat.dir, sizeof(plat.dir), "%s/bench-e2e-XXXXXX",
	         dir_opt != NULL ? dir_opt
	         : tmp != NULL   ? tmp
	                         : "/tmp");
	if (mkdtemp(plat.dir) == NULL) {
		fprintf(stderr, "bench_e2e: cannot create a directory like '%s'\n", plat.dir);
		return 1;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	printf("bench_e2e: the all-in-one noetl with the echo module; %d connections, 1 event "
	       "per POST; %llu events queued; %ld CPUs; data in %s\n",
	       conns, (unsigned long long)events, cpus, plat.dir);
	fflush(stdout);

	/* 1. the HTTP floor, before noetl runs */
	fprintf(stderr, "bench_e2e: floor: empty nng HTTP handler, %.0f s\n", floor_seconds);
	struct load_result fh = floor_http();

	/* 2. start, set up, one event through, idle */
	fprintf(stderr, "bench_e2e: starting noetl and setting it up with noetlctl\n");
	double t = now_s();
	platform_start(&plat);
	double start_s = now_s() - t;
	long rss_started = platform_rss_kb(plat.pid);
	platform_setup(&plat);
	char req[1024];
	size_t len;
	request(req, sizeof(req), plat.token, &len);
	t = now_s();
	uint64_t warm_failed = warm_up(req, len);
	double first_s = now_s() - t;
	util_sleep_ms(2000);
	long rss_idle = platform_rss_kb(plat.pid);
	long rss_idle_children = platform_children_rss_kb(plat.pid);

	/* 3. ingest with the executor paused */
	platform_signal(&plat, SIGUSR1);
	util_sleep_ms(1000); /* a lease already waiting returns within 500 ms */
	fprintf(stderr, "bench_e2e: ingest: %llu events, executor paused\n",
	        (unsigned long long)events);
	double writes0 = platform_metric(&plat, "noetl_queue_synced_writes_total");
	double ops0 = platform_metric(&plat, "noetl_queue_synced_write_ops_total");
	struct sampler smp;
	sampler_start(&smp);
	struct load_options lo = {.port = plat.http_port,
	                          .request = req,
	                          .request_len = len,
	                          .conns = conns,
	                          .max_requests = events,
	                          .keep_id_every = events >= 100 ? (unsigned)(events / 100) : 1};
	struct load_result in;
	if (load_run(&lo, &in) != 0)
		fail("cannot connect to the listener");
	sampler_stop(&smp);
	long rss_ingest_max = smp.max_rss_kb;
	double group = (platform_metric(&plat, "noetl_queue_synced_write_ops_total") - ops0) /
	               (platform_metric(&plat, "noetl_queue_synced_writes_total") - writes0);
	struct qstats q1 = qstats();
	uint64_t queued = depth(&q1);
	util_sleep_ms(2000); /* let background flushes settle */
	long rss_queued = platform_rss_kb(plat.pid);
	long rss_queued_children = platform_children_rss_kb(plat.pid);

	/* 4. drain */
	fprintf(stderr, "bench_e2e: drain: %llu events queued, executor resumed\n",
	        (unsigned long long)queued);
	struct qstats q2 = qstats();
	t = now_s();
	platform_signal(&plat, SIGUSR2);
	double end = wait_drained(q2.acked + queued, 60);
	if (end < 0)
		fail("the drain stalled: no ack for 60 s with events left");
	struct qstats q3 = qstats();
	uint64_t drained = q3.acked - q2.acked;
	double drain_s = end - t;
	double drain_rate = (double)drained / drain_s;
	util_sleep_ms(1000);
	long rss_drained = platform_rss_kb(plat.pid);

	/* 5. open loop with the executor running */
	fprintf(stderr, "bench_e2e: open loop: %.0f events/s for %.0f s\n", rate, open_seconds);
	sampler_start(&smp);
	struct load_options oo = {.port = plat.http_port,
	                          .request = req,
	                          .request_len = len,
	                          .conns = conns,
	                          .open = true,
	                          .rate = rate,
	                          .seconds = open_seconds,
	                          .keep_id_every = (unsigned)(rate * open_seconds / 20) + 1};
	struct load_result op;
	if (load_run(&oo, &op) != 0)
		fail("cannot connect to the listener");
	sampler_stop(&smp);
	struct qstats q4 = qstats();
	if (wait_drained(q4.acked + depth(&q4), 60) < 0)
		fail("the open loop's events were not all executed");

	/* 6. every sampled id executed and recorded */
	size_t checked = 0, ok = 0;
	struct load_result *sets[] = {&in, &op};
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < sets[s]->nids; i++, checked++)
			if (platform_executed_ok(&plat, sets[s]->ids[i]) == 1)
				ok++;
	struct qstats qe = qstats();
	uint64_t records = 0;
	platform_records(&plat, &records);
	long rss_end = platform_rss_kb(plat.pid);
	double stop_s = platform_stop(&plat);

	/* 7. the disk floor at the queue's batch size */
	if (!(group >= 1))
		group = 1;
	fprintf(stderr, "bench_e2e: floor: synced RocksDB batches of %.0f, %.0f s\n", group,
	        floor_seconds);
	struct disk_floor fd = floor_disk(plat.dir, group);

	/* the report */
	printf("\n%-44s %10s %8s %8s %8s %8s %7s\n", "run", "events/s", "p50 ms", "p99 ms",
	       "p99.9 ms", "max ms", "errors");
	row("floor: empty nng HTTP handler", fh.rate, &fh);
	char name[128];
	snprintf(name, sizeof(name), "floor: RocksDB synced batches of %.0f", fd.batch);
	row(name, fd.rate, NULL);
	snprintf(name, sizeof(name), "ingest: durable 202s (%llu events)",
	         (unsigned long long)in.accepted);
	row(name, in.rate, &in);
	snprintf(name, sizeof(name), "drain: executed+recorded+acked (%llu)",
	         (unsigned long long)drained);
	row(name, drain_rate, NULL);
	snprintf(name, sizeof(name), "open loop: %.0f/s offered, %.0f s", rate, open_seconds);
	row(name, op.rate, &op);

	printf("\ningest: %.2fx the HTTP floor, %.2fx the RocksDB floor (%.0f synced writes/s "
	       "of %.1f events each in the queue, %.0f/s on the raw store)\n",
	       fh.rate > 0 ? in.rate / fh.rate : 0, fd.rate > 0 ? in.rate / fd.rate : 0,
	       in.elapsed > 0 ? (double)in.accepted / group / in.elapsed : 0, group, fd.writes);
	printf("drain: %llu events in %.2f s; after the warm-up: %llu acked, %llu failed "
	       "attempts, %llu dead; %llu records at the Recorder (%.1f per event)\n",
	       (unsigned long long)drained, drain_s, (unsigned long long)qe.acked,
	       (unsigned long long)(qe.failed - warm_failed), (unsigned long long)qe.dead,
	       (unsigned long long)records, qe.acked > 0 ? (double)records / (double)qe.acked : 0);
	printf("open loop: %llu sent, %llu accepted, most waiting in the client %zu, queue "
	       "depth at most %llu\n",
	       (unsigned long long)op.sent, (unsigned long long)op.accepted, op.max_backlog,
	       (unsigned long long)smp.max_depth);
	printf("checked %zu sampled accepted ids: %zu executed OK and recorded\n", checked, ok);
	printf("start %.2f s, first event through %.2f s (compiles echo.wasm; %llu attempts "
	       "failed as 'unknown event' meanwhile), stop %.2f s\n",
	       start_s, first_s, (unsigned long long)warm_failed, stop_s);

	printf("\n%-44s %10s %14s\n", "noetl resident memory (RSS)", "process", "+ runners");
	printf("%-44s %8.1f MiB\n", "just started", mib(rss_started));
	printf("%-44s %8.1f MiB %10.1f MiB\n", "idle (set up, one event run)", mib(rss_idle),
	       mib(rss_idle + rss_idle_children));
	printf("%-44s %8.1f MiB\n", "most during the ingest", mib(rss_ingest_max));
	snprintf(name, sizeof(name), "with %llu events queued", (unsigned long long)queued);
	printf("%-44s %8.1f MiB %10.1f MiB\n", name, mib(rss_queued),
	       mib(rss_queued + rss_queued_children));
	printf("%-44s %8.1f MiB\n", "after the drain", mib(rss_drained));
	printf("%-44s %8.1f MiB\n", "at the end", mib(rss_end));

	double ratio = in.rate > 0 ? drain_rate / in.rate : 0;
	double rss_ratio = rss_idle > 0 ? (double)rss_queued / (double)rss_idle : 0;
	printf("\ntargets\n");
	printf("  drain / ingest            %6.2fx  (>= 0.7x)   %s\n", ratio,
	       verdict(ratio >= 0.7));
	printf("  idle RSS                  %6.1f MiB (<= 50)  %s\n", mib(rss_idle),
	       verdict(mib(rss_idle) <= 50));
	printf("  RSS queued / idle         %6.2fx  (<= 1.5x)  %s%s\n", rss_ratio,
	       verdict(rss_ratio <= 1.5),
	       queued >= 1000000 ? "" : " (with fewer than 1M queued; --full queues 1M)");
	if (in.rejected + in.failures + op.rejected + op.failures > 0 || ok != checked)
		printf("  WARNING: %llu requests failed or were refused (last status %d); "
		       "%zu of %zu sampled ids not recorded OK\n",
		       (unsigned long long)(in.rejected + in.failures + op.rejected + op.failures),
		       in.last_status != 0 ? in.last_status : op.last_status, checked - ok,
		       checked);

	load_result_free(&fh);
	load_result_free(&in);
	load_result_free(&op);
	if (!keep) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", plat.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_e2e: could not remove '%s'\n", plat.dir);
	}
	return 0;
}
