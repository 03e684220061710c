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
 *                 It runs after noetl has stopped and its data is deleted,
 *                 so that no write-back of noetl's files competes with it.
 * Then it checks a sample of the accepted ids: each must have an execution
 * recorded with status OK. e2e_report.c prints the figures.
 *
 * Targets (issue 8): drain >= 0.7x ingest; idle RSS <= 50 MiB; RSS with 1M
 * events queued <= 1.5x idle. The default run queues fewer events so that
 * `make bench` stays short; --full queues 1,000,000.
 *
 * usage: bench_e2e [--quick | --full] [--events N] [--conns C] [--rate R]
 *                  [--open-seconds S] [--floor-seconds S] [--dir DIR] [--keep]
 *                  [--noetl PATH] [--noetlctl PATH] [--wasm PATH]
 *                  [--noetl-arg ARG]...
 * --noetl-arg passes one more argument to noetl (at most 8), to measure a
 * setting: --noetl-arg --noetl.store-cache=8MiB.
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

#include "e2e.h"
#include "floor.h"
#include "kv.h"
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

static struct load_result floor_http(void)
{
	struct floor_server *fs;
	int port;
	if (floor_start(&fs, &port) != 0)
		fail("cannot start the empty HTTP handler");
	char req[1024];
	size_t len;
	request(req, sizeof(req), "x", &len);
	struct load_options o = {.port = port,
	                         .request = req,
	                         .request_len = len,
	                         .conns = conns,
	                         .seconds = floor_seconds};
	struct load_result r;
	if (load_run(&o, &r) != 0)
		fail("cannot connect to the empty HTTP handler");
	floor_stop(fs);
	return r;
}

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

/*
 * Every 100 ms: noetl's RSS and the queue's depth, and the times and RSS at
 * which a phase's progress (items enqueued or acked since it began) passed
 * a tenth, half and nine tenths of its total, to tell a rate that holds
 * from one that sinks as the queue or the stores grow.
 */
enum { M_10, M_50, M_90, M_N };
static const double marks[M_N] = {0.1, 0.5, 0.9};

struct sampler {
	pthread_t thread;
	atomic_bool stop;
	bool acked;         /* progress is acked items (else enqueued) */
	uint64_t base;      /* progress counter when the phase began */
	uint64_t total;     /* the phase's items; 0: no marks */
	double start;       /* now_s() when the phase began */
	long max_rss_kb;    /* highest RSS seen */
	uint64_t max_depth; /* deepest queue seen */
	double at[M_N];     /* seconds into the phase each mark was passed; 0 if not */
	long rss[M_N];      /* RSS then */
};

static void *sample(void *arg)
{
	struct sampler *s = arg;
	while (!atomic_load(&s->stop)) {
		long kb = platform_rss_kb(plat.pid);
		struct qstats q;
		if (kb > s->max_rss_kb)
			s->max_rss_kb = kb;
		if (platform_queue_stats(&plat, &q) == 0) {
			if (q.ready + q.leased + q.delayed > s->max_depth)
				s->max_depth = q.ready + q.leased + q.delayed;
			uint64_t done = (s->acked ? q.acked : q.enqueued) - s->base;
			for (int m = 0; m < M_N && s->total > 0; m++)
				if (s->at[m] == 0 && (double)done >= marks[m] * (double)s->total) {
					s->at[m] = now_s() - s->start;
					s->rss[m] = kb;
				}
		}
		util_sleep_ms(100);
	}
	return NULL;
}

static void sampler_start(struct sampler *s, bool acked, uint64_t base, uint64_t total)
{
	memset(s, 0, sizeof(*s));
	s->acked = acked;
	s->base = base;
	s->total = total;
	s->start = now_s();
	if (pthread_create(&s->thread, NULL, sample, s) != 0)
		fail("cannot start a thread");
}

static void sampler_stop(struct sampler *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
}

/* Events/s over the first and the last tenth of a phase of total items that
 * took secs; 0 where the sampler missed a mark (a phase under 100 ms). */
static void tenths(const struct sampler *s, double secs, double *first, double *last)
{
	double tenth = (double)s->total / 10;
	*first = s->at[M_10] > 0 ? tenth / s->at[M_10] : 0;
	*last = s->at[M_90] > 0 && secs > s->at[M_90] ? tenth / (secs - s->at[M_90]) : 0;
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

const char *const e2e_stores[S_STORES] = {"control", "repository", "queue", "recorder"};

/* noetl's memory by part, from its /metrics. */
static void memsnap(struct memsnap *m)
{
	memset(m, 0, sizeof(*m));
	char *text = platform_metrics(&plat);
	if (text == NULL)
		return;
	char series[160];
	m->valid = platform_metric_in(text, "noetl_process_resident_bytes") >= 0;
	for (int i = 0; i < S_STORES; i++) {
		const char *kinds[] = {"memtables", "block_cache", "table_readers"};
		double v[3];
		for (int k = 0; k < 3; k++) {
			snprintf(series, sizeof(series),
			         "noetl_store_memory_bytes{store=\"%s\",kind=\"%s\"}",
			         e2e_stores[i], kinds[k]);
			v[k] = platform_metric_in(text, series);
			if (v[k] < 0)
				v[k] = 0;
		}
		m->memtables[i] = v[0];
		m->cache[i] = v[1];
		m->readers += v[2];
	}
	m->heap_used = platform_metric_in(text, "noetl_process_heap_bytes{state=\"in_use\"}");
	m->heap_free = platform_metric_in(text, "noetl_process_heap_bytes{state=\"free\"}");
	m->rss = platform_metric_in(text, "noetl_process_resident_bytes");
	free(text);
}

/*
 * Posts one event at a time until one is accepted and executed: the
 * listener accepts the event once it has seen the deploy on Control's
 * stream, and the executor runs it once it has compiled the module. An
 * event leased before that fails ("unknown event") and is retried, or
 * dead-lettered if the compile outlasts its attempts; then another is sent.
 */
static void warm_up(struct figures *f, const char *req, size_t len)
{
	struct load_options o = {.port = plat.http_port,
	                         .request = req,
	                         .request_len = len,
	                         .conns = 1,
	                         .max_requests = 1};
	double t0 = now_s();
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
		do {
			util_sleep_ms(50);
			e = qstats();
			if (now_s() - t0 > 300)
				fail("the warm-up event was neither executed nor dead after 5 "
				     "minutes");
		} while (e.acked == q.acked && e.dead == q.dead);
		if (e.acked > q.acked)
			break;
		if (tries == 5)
			fail("five warm-up events in a row went to the dead-letter queue");
	}
	f->first_s = now_s() - t0;
	struct qstats e = qstats();
	wait_drained(e.acked, 60);
	e = qstats();
	f->warm_failed = e.failed;
	f->warm_dead = e.dead;
}

/* --- the phases ------------------------------------------------------------------------- */

/* Durable ingest with the executor paused, and the memory it leaves. */
static void ingest(struct figures *f, const char *req, size_t len)
{
	platform_signal(&plat, SIGUSR1);
	util_sleep_ms(1000); /* a lease already waiting returns within 500 ms */
	fprintf(stderr, "bench_e2e: ingest: %llu events, executor paused\n",
	        (unsigned long long)events);
	double writes0 = platform_metric(&plat, "noetl_queue_synced_writes_total");
	double ops0 = platform_metric(&plat, "noetl_queue_synced_write_ops_total");
	struct sampler smp;
	sampler_start(&smp, false, qstats().enqueued, events);
	struct load_options lo = {.port = plat.http_port,
	                          .request = req,
	                          .request_len = len,
	                          .conns = conns,
	                          .max_requests = events,
	                          .keep_id_every = events >= 100 ? (unsigned)(events / 100) : 1};
	if (load_run(&lo, &f->ingest) != 0)
		fail("cannot connect to the listener");
	sampler_stop(&smp);
	tenths(&smp, f->ingest.elapsed, &f->ingest_first, &f->ingest_last);
	f->rss_ingest_max = smp.max_rss_kb;
	f->rss_tenth = smp.rss[M_10];
	f->rss_half = smp.rss[M_50];
	f->group = (platform_metric(&plat, "noetl_queue_synced_write_ops_total") - ops0) /
	           (platform_metric(&plat, "noetl_queue_synced_writes_total") - writes0);
	if (!(f->group >= 1)) /* also NaN: no metrics */
		f->group = 1;
	struct qstats q = qstats();
	f->queued = depth(&q);
	util_sleep_ms(2000); /* let flushes in progress finish */
	f->rss_queued = platform_rss_kb(plat.pid);
	f->rss_queued_children = platform_children_rss_kb(plat.pid);
	memsnap(&f->mem_queued);
}

/* The executor resumed until the backlog is executed, acked and recorded. */
static void drain(struct figures *f)
{
	fprintf(stderr, "bench_e2e: drain: %llu events queued, executor resumed\n",
	        (unsigned long long)f->queued);
	struct qstats q = qstats();
	struct sampler smp;
	sampler_start(&smp, true, q.acked, f->queued);
	platform_signal(&plat, SIGUSR2);
	double end = wait_drained(q.acked + f->queued, 60);
	sampler_stop(&smp);
	if (end < 0)
		fail("the drain stalled: no ack for 60 s with events left");
	f->drained = qstats().acked - q.acked;
	f->drain_s = end - smp.start;
	f->drain_rate = (double)f->drained / f->drain_s;
	tenths(&smp, f->drain_s, &f->drain_first, &f->drain_last);
	util_sleep_ms(1000);
	f->rss_drained = platform_rss_kb(plat.pid);
	memsnap(&f->mem_drained);
}

/* A fixed offered rate with the executor running. */
static void open_loop(struct figures *f, const char *req, size_t len)
{
	fprintf(stderr, "bench_e2e: open loop: %.0f events/s for %.0f s\n", rate, open_seconds);
	struct sampler smp;
	sampler_start(&smp, false, 0, 0);
	struct load_options oo = {.port = plat.http_port,
	                          .request = req,
	                          .request_len = len,
	                          .conns = conns,
	                          .open = true,
	                          .rate = rate,
	                          .seconds = open_seconds,
	                          .keep_id_every = (unsigned)(rate * open_seconds / 20) + 1};
	if (load_run(&oo, &f->open) != 0)
		fail("cannot connect to the listener");
	sampler_stop(&smp);
	f->open_max_depth = smp.max_depth;
	struct qstats q = qstats();
	if (wait_drained(q.acked + depth(&q), 60) < 0)
		fail("the open loop's events were not all executed");
}

/* Every sampled accepted id has an execution recorded with status OK. */
static void check(struct figures *f)
{
	struct load_result *sets[] = {&f->ingest, &f->open};
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < sets[s]->nids; i++, f->checked++)
			if (platform_executed_ok(&plat, sets[s]->ids[i]) == 1)
				f->ok++;
	f->end = qstats();
	platform_records(&plat, &f->records);
}

/* --- main ------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench_e2e [--quick | --full] [--events N] [--conns C] [--rate R]\n"
	        "                 [--open-seconds S] [--floor-seconds S] [--dir DIR] [--keep]\n"
	        "                 [--noetl PATH] [--noetlctl PATH] [--wasm PATH]\n"
	        "                 [--noetl-arg ARG]... (an argument for noetl, at most 8)\n"
	        "  default: 50000 events queued (about 2 minutes); --quick: 5000 (about 30 s);\n"
	        "  --full: 1,000,000, the size the RSS target is set for (half an hour)\n");
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

static void rmtree(const char *path)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_e2e: could not remove '%s'\n", path);
}

int main(int argc, char **argv)
{
	const char *dir_opt = NULL, *noetl = NULL, *noetlctl = NULL, *wasm = NULL;
	bool events_set = false, quick = false, full = false;
	const char *extra[8];
	int nextra = 0;
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
		else if (strcmp(a, "--noetl-arg") == 0 && more && nextra < 8)
			extra[nextra++] = argv[++i];
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
	plat.extra = extra;
	plat.nextra = nextra;
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
	struct figures f = {.events = events,
	                    .conns = conns,
	                    .rate = rate,
	                    .open_seconds = open_seconds,
	                    .cpus = sysconf(_SC_NPROCESSORS_ONLN)};
	printf("bench_e2e: the all-in-one noetl with the echo module; %d connections, 1 event "
	       "per POST; %llu events queued; %ld CPUs; data in %s\n",
	       conns, (unsigned long long)events, f.cpus, plat.dir);
	for (int i = 0; i < nextra; i++)
		printf("%s%s%s", i == 0 ? "bench_e2e: noetl runs with" : "", " ", extra[i]);
	if (nextra > 0)
		printf("\n");
	fflush(stdout);

	fprintf(stderr, "bench_e2e: floor: empty nng HTTP handler, %.0f s\n", floor_seconds);
	f.floor_http = floor_http();

	fprintf(stderr, "bench_e2e: starting noetl and setting it up with noetlctl\n");
	double t = now_s();
	platform_start(&plat);
	f.start_s = now_s() - t;
	f.rss_started = platform_rss_kb(plat.pid);
	platform_setup(&plat);
	char req[1024];
	size_t len;
	request(req, sizeof(req), plat.token, &len);
	warm_up(&f, req, len);
	util_sleep_ms(2000);
	f.rss_idle = platform_rss_kb(plat.pid);
	f.rss_idle_children = platform_children_rss_kb(plat.pid);
	memsnap(&f.mem_idle);

	ingest(&f, req, len);
	drain(&f);
	open_loop(&f, req, len);
	check(&f);
	f.rss_end = platform_rss_kb(plat.pid);
	f.stop_s = platform_stop(&plat);

	/* The disk floor on a quiet disk: noetl's files deleted (so that their
	 * dirty pages are dropped, not written back; --keep keeps them) and the
	 * rest synced. */
	char data[700];
	snprintf(data, sizeof(data), "%s/data", plat.dir);
	if (!keep)
		rmtree(data);
	sync();
	fprintf(stderr, "bench_e2e: floor: synced RocksDB batches of %.0f, %.0f s\n", f.group,
	        floor_seconds);
	f.floor_disk = floor_disk(plat.dir, f.group);

	e2e_report(&f);
	load_result_free(&f.floor_http);
	load_result_free(&f.ingest);
	load_result_free(&f.open);
	if (!keep)
		rmtree(plat.dir);
	return 0;
}
