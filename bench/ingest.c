/*
 * bench/ingest: what the listener costs over a bare HTTP endpoint, and its
 * latency at a steady load.
 *
 * In one run it measures
 *   floor:    an empty nng HTTP handler (nng's server reads the request and
 *             answers 202 with a fixed body): the most any handler on this
 *             HTTP stack can do;
 *   listener: the listener in front of the real Control, Repository, Queue
 *             (RocksDB, synced writes) and Recorder, each on its own ipc://
 *             rpc server in this process: credentials checked, the event
 *             validated against its JSON Schema, made durable, timeline
 *             entries reported;
 * both closed-loop, 1 event per POST on C keep-alive connections (default
 * 32) from one epoll thread (loadgen.c), reporting events/s, latency
 * p50/p99/p99.9, and the process's CPU time and context switches per
 * request (getrusage: every thread, the client's included); and then
 *   open loop: the listener at a fixed offered rate (default 1000 events/s),
 *             each request's latency counted from when it was due, so a
 *             stall is not hidden by the client waiting (no coordinated
 *             omission);
 *   disk:     synced RocksDB writes of one key, one after the other: what
 *             one durable write costs on this disk, the latency floor of
 *             any durable reply, to read the percentiles above against.
 * For both listener runs it then splits a request's time by stage, from the
 * shared /metrics: the listener's handling, the Enqueue call it waited for,
 * that call inside the Queue, the Queue's synced write.
 * Targets (issue 5/7): listener >= 0.75x the floor; p99 <= 5 ms at
 * 1,000 events/s offered. The CPU column says how far apart the two are in
 * work per request, whatever else the machine runs.
 *
 * usage: bench_ingest [--seconds S] [--conns C] [--rate R] [--open-seconds S]
 *                     [--senders N] [--linger-us U] [--no-timeline] [--dir DIR]
 * --senders, --linger-us and --no-timeline set the listener's options of
 * those names (listener.enqueue.senders, ...), to see what each costs.
 * DIR holds the stores (default: a new directory under $TMPDIR or /tmp); put
 * it on the disk you want to measure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "control.pb-c.h"
#include "floor.h"
#include "httpc.h"
#include "jobdef.h"
#include "kv.h"
#include "lat.h"
#include "listener.h"
#include "loadgen.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "recorder.h"
#include "repository.h"
#include "repository.pb-c.h"
#include "rpc.h"
#include "util.h"

static double seconds = 5.0;
static double open_seconds = 5.0;
static int conns = 32;
static double rate = 1000.0;
static char dir[512];
static bool no_timeline;
static int senders;
static int linger_us;

static const char event_body[] = "{\"data\":[{\"name\":\"Ada\",\"age\":36}]}";

/* --- load ------------------------------------------------------------------------ */

struct result {
	double rate; /* events/s answered 202 */
	double p50, p99, p999;
	uint64_t ok, bad;
	double cpu_us;   /* process CPU time (user + system) per answered request */
	double switches; /* context switches (voluntary + involuntary) per request */
};

/* Process CPU seconds and context switches so far (every thread: the load
 * client, the HTTP server and, for the listener, the services). */
static void usage_now(double *cpu, double *switches)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	*switches = (double)ru.ru_nvcsw + (double)ru.ru_nivcsw;
}

/* 1 event per POST on conns keep-alive connections from loadgen's one
 * epoll thread (so the client's cost is the same small one in every run). */
static struct result run_load(int port, const char *headers, bool open, double secs)
{
	char req[1024];
	int len = snprintf(req, sizeof(req),
	                   "POST /events/bench/greet HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
	                   "Content-Length: %zu\r\n\r\n%s",
	                   headers, sizeof(event_body) - 1, event_body);
	struct load_options o = {.port = port,
	                         .request = req,
	                         .request_len = (size_t)len,
	                         .conns = conns,
	                         .open = open,
	                         .rate = rate,
	                         .seconds = secs};
	struct load_result lr;
	struct result r = {0};
	double cpu0, sw0, cpu1, sw1;
	usage_now(&cpu0, &sw0);
	if (load_run(&o, &lr) != 0) {
		fprintf(stderr, "bench_ingest: cannot connect to port %d\n", port);
		exit(1);
	}
	usage_now(&cpu1, &sw1);
	r.rate = lr.rate;
	r.p50 = lr.p50;
	r.p99 = lr.p99;
	r.p999 = lr.p999;
	r.ok = lr.accepted;
	r.bad = lr.rejected + lr.failures;
	double reqs = (double)(lr.accepted + lr.rejected);
	r.cpu_us = reqs > 0 ? (cpu1 - cpu0) * 1e6 / reqs : 0;
	r.switches = reqs > 0 ? (sw1 - sw0) / reqs : 0;
	load_result_free(&lr);
	return r;
}

/* --- the floor: an empty nng HTTP handler --------------------------------------- */

static struct result run_floor(void)
{
	struct floor_server *fs;
	int port;
	if (floor_start(&fs, &port) != 0) {
		fprintf(stderr, "bench_ingest: cannot start the floor server\n");
		exit(1);
	}
	struct result r = run_load(port, "Content-Type: application/json\r\n", false, seconds);
	floor_stop(fs);
	return r;
}

/* --- the disk: what one synced write costs ---------------------------------------- */

/* Synced single-key RocksDB writes, one after the other, for secs: what one
 * durable write costs on this disk, the floor of any durable reply. */
static struct result run_disk(double secs)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/disk", dir);
	struct kv *kv = NULL;
	struct result r = {0};
	if (kv_open(path, NULL, &kv) != 0)
		return r;
	char val[200];
	memset(val, 'x', sizeof(val));
	struct lat l = {0};
	int64_t start = util_mono_us();
	int64_t end = start + (int64_t)(secs * 1e6);
	for (uint64_t k = 0; util_mono_us() < end; k++) {
		uint8_t key[8];
		util_put_be64(key, k);
		int64_t t0 = util_mono_us();
		if (kv_put(kv, key, sizeof(key), val, sizeof(val), true) == 0)
			r.ok++;
		else
			r.bad++;
		lat_add(&l, (double)(util_mono_us() - t0) / 1000.0);
	}
	r.rate = (double)r.ok / ((double)(util_mono_us() - start) / 1e6);
	r.p50 = lat_pct(&l, 0.50);
	r.p99 = lat_pct(&l, 0.99);
	r.p999 = lat_pct(&l, 0.999);
	free(l.v);
	kv_close(kv);
	return r;
}

/* --- the platform --------------------------------------------------------------------- */

struct platform {
	struct metrics *metrics; /* shared by the queue and the listener: one /metrics */
	struct control *control;
	struct repository *repository;
	struct queue *queue;
	struct recorder *recorder;
	struct rpc_server *srv[4];
	struct rpc_client *cc, *rc;
	struct listener *listener;
	char token[128];
};

static struct rpc_server *serve(ProtobufCService *svc, const char *url)
{
	struct rpc_server_options o = {.workers = 16};
	struct rpc_server *s;
	if (rpc_server_create(&o, &s) != 0 || rpc_server_add(s, svc) != 0 ||
	    rpc_server_listen(s, url) != 0 || rpc_server_start(s) != 0) {
		fprintf(stderr, "bench_ingest: cannot serve on %s\n", url);
		exit(1);
	}
	return s;
}

static ProtobufCMessage *call(struct rpc_client *c, const ProtobufCServiceDescriptor *d,
                              const char *method, const ProtobufCMessage *in)
{
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	if (rpc_call(c, d, method, in, NULL, &out, &err) != 0) {
		fprintf(stderr, "bench_ingest: %s failed: %s\n", method, err != NULL ? err : "");
		exit(1);
	}
	return out;
}

static void put_file(struct platform *p, const char *name, Noetl__FileType type, const void *data,
                     size_t len)
{
	Noetl__PutFileRequest r = NOETL__PUT_FILE_REQUEST__INIT;
	r.tenant = "bench";
	r.name = (char *)name;
	r.type = type;
	r.content.data = (uint8_t *)data;
	r.content.len = len;
	protobuf_c_message_free_unpacked(
	        call(p->rc, &noetl__repository__descriptor, "PutFile", &r.base), NULL);
}

static void platform_start(struct platform *p)
{
	char path[700], url[8][700];
	const char *names[] = {"control", "control-pub", "repo",   "repo-pub",
	                       "queue",   "rec",         "rec-pub"};
	for (int i = 0; i < 7; i++)
		snprintf(url[i], sizeof(url[i]), "ipc://%s/%s.sock", dir, names[i]);

	snprintf(path, sizeof(path), "%s/repository", dir);
	struct repository_config rc = {.data_dir = path, .stream_url = url[3]};
	if (repository_create(&rc, &p->repository) != 0)
		exit(1);
	p->srv[0] = serve(repository_service(p->repository), url[2]);
	if (metrics_create(0, &p->metrics) != 0)
		exit(1);
	snprintf(path, sizeof(path), "%s/queue", dir);
	struct queue_config qc = {.data_dir = path, .metrics = p->metrics};
	if (queue_create(&qc, &p->queue) != 0)
		exit(1);
	p->srv[1] = serve(queue_service(p->queue), url[4]);
	snprintf(path, sizeof(path), "%s/recorder", dir);
	struct recorder_config rec = {.data_dir = path, .stream_url = url[6]};
	if (recorder_create(&rec, &p->recorder) != 0)
		exit(1);
	p->srv[2] = serve(recorder_service(p->recorder), url[5]);
	snprintf(path, sizeof(path), "%s/control", dir);
	struct control_config cc = {.data_dir = path,
	                            .stream_url = url[1],
	                            .repository_url = url[2],
	                            .schedule_interval_ms = -1};
	if (control_create(&cc, &p->control) != 0)
		exit(1);
	p->srv[3] = serve(control_service(p->control), url[0]);
	rpc_client_create(url[0], NULL, &p->cc);
	rpc_client_create(url[2], NULL, &p->rc);

	Noetl__AddTenantRequest at = NOETL__ADD_TENANT_REQUEST__INIT;
	at.id = "bench";
	protobuf_c_message_free_unpacked(
	        call(p->cc, &noetl__control__descriptor, "AddTenant", &at.base), NULL);
	static const char wasm[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
	put_file(p, "m.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm));
	static const char schema[] =
	        "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{"
	        "\"type\":\"string\",\"minLength\":1},\"age\":{\"type\":\"integer\",\"minimum\":0}}"
	        "}";
	put_file(p, "person.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema, sizeof(schema) - 1);
	static const char yaml[] =
	        "id: pkg\ntenant: bench\nqueues:\n  - id: inbox\njobs:\n"
	        "  - event:\n      id: greet\n      schema:\n        id: s\n"
	        "        schemaref: person.json\n      supplierqueue: inbox\n"
	        "      runtime: rt\nruntimes:\n  - id: rt\n    moduleref: m.wasm\n";
	Noetl__Package *pkg = NULL;
	char *err = NULL;
	if (jobdef_parse(yaml, sizeof(yaml) - 1, "bench.yml", &pkg, &err) != 0) {
		fprintf(stderr, "bench_ingest: %s\n", err);
		exit(1);
	}
	Noetl__DeployRequest dr = NOETL__DEPLOY_REQUEST__INIT;
	dr.package = pkg;
	protobuf_c_message_free_unpacked(
	        call(p->cc, &noetl__control__descriptor, "Deploy", &dr.base), NULL);
	jobdef_free(pkg);
	Noetl__CreateTokenRequest ct = NOETL__CREATE_TOKEN_REQUEST__INIT;
	ct.tenant = "bench";
	Noetl__CreateTokenReply *tr = (Noetl__CreateTokenReply *)call(
	        p->cc, &noetl__control__descriptor, "CreateToken", &ct.base);
	snprintf(p->token, sizeof(p->token), "%s", tr->secret);
	protobuf_c_message_free_unpacked(&tr->base, NULL);

	struct listener_config lc = {
	        .http_url = "http://127.0.0.1:0",
	        .control_url = url[0],
	        .control_stream_url = url[1],
	        .repository_url = url[2],
	        .repository_stream_url = url[3],
	        .queue_url = url[4],
	        .recorder_url = url[5],
	        .no_timeline = no_timeline,
	        .enqueue_senders = senders,
	        .enqueue_linger_us = linger_us,
	        .metrics = p->metrics,
	};
	if (listener_create(&lc, &p->listener) != 0)
		exit(1);
	char why[256];
	for (int i = 0; i < 1000 && !listener_ready(p->listener, why, sizeof(why)); i++)
		util_sleep_ms(10);
	Noetl__Empty e = NOETL__EMPTY__INIT;
	Noetl__Health *h =
	        (Noetl__Health *)call(p->cc, &noetl__control__descriptor, "GetHealth", &e.base);
	if (!listener_wait_synced(p->listener, h->revision, 0, 20000)) {
		fprintf(stderr, "bench_ingest: the listener did not sync\n");
		exit(1);
	}
	protobuf_c_message_free_unpacked(&h->base, NULL);
}

static void platform_stop(struct platform *p)
{
	listener_destroy(p->listener);
	rpc_client_destroy(p->cc);
	rpc_client_destroy(p->rc);
	for (int i = 3; i >= 0; i--)
		rpc_server_destroy(p->srv[i]);
	control_destroy(p->control);
	recorder_destroy(p->recorder);
	queue_destroy(p->queue);
	repository_destroy(p->repository);
	metrics_destroy(p->metrics);
}

/* --- where the time goes ------------------------------------------------------------ */

/* Counters read from the listener's /metrics (which also carries the
 * Queue's: the registry is shared), to split a run's time by stage. */
struct stages {
	double http_sum, http_n;   /* the listener's HTTP handling, arrival to reply */
	double call_sum, call_n;   /* Enqueue calls as the listener's batcher sees them */
	double items;              /* events those calls carried */
	double queue_sum, queue_n; /* the same calls inside the Queue's handler */
	double writes, write_ops;  /* the Queue's synced writes (groups) and their operations */
	double write_sum;          /* time in those writes */
};

/* The value of a series: name (with its labels and a space) at the start of
 * a line, not in a "# HELP" line. */
static double series(const char *text, const char *name)
{
	for (const char *p = strstr(text, name); p != NULL; p = strstr(p + 1, name))
		if (p == text || p[-1] == '\n')
			return atof(p + strlen(name));
	return 0;
}

static void stages_read(int port, struct stages *st)
{
	struct httpc_reply r;
	memset(st, 0, sizeof(*st));
	if (httpc_request(port, "GET", "/metrics", NULL, NULL, 0, &r) != 0)
		return;
	st->http_sum = series(r.body, "noetl_http_request_seconds_sum{route=\"/events/\"} ");
	st->http_n = series(r.body, "noetl_http_request_seconds_count{route=\"/events/\"} ");
	st->call_sum = series(r.body, "noetl_listener_enqueue_seconds_sum ");
	st->call_n = series(r.body, "noetl_listener_enqueue_seconds_count ");
	st->items = series(r.body, "noetl_listener_enqueue_total{what=\"items\"} ");
	st->queue_sum = series(r.body, "noetl_queue_enqueue_seconds_sum ");
	st->queue_n = series(r.body, "noetl_queue_enqueue_seconds_count ");
	st->writes = series(r.body, "noetl_queue_synced_writes_total ");
	st->write_ops = series(r.body, "noetl_queue_synced_write_ops_total ");
	st->write_sum = series(r.body, "noetl_queue_synced_write_seconds_total ");
	httpc_reply_free(&r);
}

static double per(double a, double b)
{
	return b > 0 ? a / b : 0;
}

/* Prints the averages between two readings: request, Enqueue call as sent
 * and as served, synced write. Each contains the next; the differences are
 * the stages between (HTTP and pipeline; RPC transport and thread hand-offs;
 * waiting for a group and the store's bookkeeping). */
static void stages_print(const char *name, const struct stages *a, const struct stages *b)
{
	double calls = b->call_n - a->call_n, writes = b->writes - a->writes;
	double http = per(b->http_sum - a->http_sum, b->http_n - a->http_n) * 1e3;
	double call = per(b->call_sum - a->call_sum, calls) * 1e3;
	double queue = per(b->queue_sum - a->queue_sum, b->queue_n - a->queue_n) * 1e3;
	double write = per(b->write_sum - a->write_sum, writes) * 1e3;
	printf("%-11s %7.2f ms request in the listener; %7.2f ms Enqueue call (%.1f events), "
	       "%7.2f ms of it in the Queue; %7.2f ms per synced write (%.0f writes, %.1f "
	       "calls and %.1f operations each)\n",
	       name, http, call, per(b->items - a->items, calls), queue, write, writes,
	       per(b->queue_n - a->queue_n, writes), per(b->write_ops - a->write_ops, writes));
}

/* The 1, 5 and 15 minute load averages: how busy the machine was, which
 * every figure here depends on (the server shares the CPUs with all else). */
static const char *loadavg(char *buf, size_t cap)
{
	snprintf(buf, cap, "?");
	FILE *f = fopen("/proc/loadavg", "r");
	if (f == NULL)
		return buf;
	double a, b, c;
	if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
		snprintf(buf, cap, "%.2f %.2f %.2f", a, b, c);
	fclose(f);
	return buf;
}

/* --- main ----------------------------------------------------------------------------- */

static void print(const char *name, const struct result *r)
{
	printf("%-34s %10.0f %9.2f %9.2f %9.2f %8llu", name, r->rate, r->p50, r->p99, r->p999,
	       (unsigned long long)r->bad);
	if (r->cpu_us > 0)
		printf(" %8.0f %8.1f\n", r->cpu_us, r->switches);
	else
		printf(" %8s %8s\n", "-", "-");
}

int main(int argc, char **argv)
{
	const char *dir_opt = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--open-seconds") == 0 && i + 1 < argc)
			open_seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
			conns = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
			rate = atof(argv[++i]);
		else if (strcmp(argv[i], "--no-timeline") == 0)
			no_timeline = true;
		else if (strcmp(argv[i], "--senders") == 0 && i + 1 < argc)
			senders = atoi(argv[++i]);
		else if (strcmp(argv[i], "--linger-us") == 0 && i + 1 < argc)
			linger_us = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir_opt = argv[++i];
		else {
			fprintf(stderr, "usage: bench_ingest [--seconds S] [--conns C] [--rate R] "
			                "[--open-seconds S] [--dir DIR]\n");
			return 2;
		}
	}
	if (seconds <= 0 || open_seconds <= 0 || conns < 1 || rate <= 0) {
		fprintf(stderr, "bench_ingest: durations, connections and rate must be positive\n");
		return 2;
	}
	log_setup("bench", LOG_LEVEL_WARN, false);
	if (dir_opt != NULL) {
		snprintf(dir, sizeof(dir), "%s/bench-ingest-XXXXXX", dir_opt);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/bench-ingest-XXXXXX", tmp != NULL ? tmp : "/tmp");
	}
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench_ingest: cannot create a directory under %s\n", dir);
		return 1;
	}

	char load[64];
	printf("bench_ingest: %d connections, 1 event per POST, %.0f s per closed-loop run; "
	       "stores in %s; %ld CPUs, load average %s\n\n",
	       conns, seconds, dir, sysconf(_SC_NPROCESSORS_ONLN), loadavg(load, sizeof(load)));
	printf("%-34s %10s %9s %9s %9s %8s %8s %8s\n", "run", "events/s", "p50 ms", "p99 ms",
	       "p99.9 ms", "errors", "CPU us", "switches");
	struct result floor = run_floor();
	print("floor: empty nng HTTP handler", &floor);

	struct platform p = {0};
	platform_start(&p);
	char headers[256];
	snprintf(headers, sizeof(headers),
	         "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n", p.token);
	int port = listener_http_port(p.listener);
	/* What the platform costs with no load: its timers and heartbeats, part
	 * of every per-request figure below (most of all at a low rate). */
	double cpu0, sw0, cpu1, sw1;
	usage_now(&cpu0, &sw0);
	util_sleep_ms(2000);
	usage_now(&cpu1, &sw1);
	printf("%-34s %10s %9s %9s %9s %8s %7.0f%% %5.0f/s\n", "listener: idle, 2 s", "-", "-", "-",
	       "-", "-", (cpu1 - cpu0) * 100 / 2, (sw1 - sw0) / 2);
	struct stages s0, s1, s2;
	stages_read(port, &s0);
	struct result lst = run_load(port, headers, false, seconds);
	print("listener: durable enqueue", &lst);
	stages_read(port, &s1);
	struct result open = run_load(port, headers, true, open_seconds);
	stages_read(port, &s2);
	char name[64];
	snprintf(name, sizeof(name), "listener: open loop %.0f/s offered", rate);
	print(name, &open);
	platform_stop(&p);
	struct result disk = run_disk(open_seconds);
	snprintf(name, sizeof(name), "disk: synced writes, one at a time");
	print(name, &disk);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_ingest: could not remove %s\n", dir);

	printf("\nwhere the time goes (averages):\n");
	stages_print("closed loop", &s0, &s1);
	stages_print("open loop", &s1, &s2);
	printf("load average at the end: %s\n", loadavg(load, sizeof(load)));
	double ratio = floor.rate > 0 ? lst.rate / floor.rate : 0;
	printf("\nlistener / floor throughput: %.2fx (target >= 0.75x): %s\n", ratio,
	       ratio >= 0.75 ? "met" : "NOT met");
	printf("open loop p99 at %.0f/s: %.2f ms (target <= 5 ms): %s; one synced write alone: "
	       "p99 %.2f ms\n",
	       rate, open.p99, open.p99 <= 5.0 ? "met" : "NOT met", disk.p99);
	return 0;
}
