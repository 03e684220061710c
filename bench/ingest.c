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
 * 32), reporting events/s and latency p50/p99/p99.9; and then
 *   open loop: the listener at a fixed offered rate (default 1000 events/s),
 *             each request's latency counted from when it was due, so a
 *             stall is not hidden by the client waiting (no coordinated
 *             omission);
 *   disk:     synced RocksDB writes of one key, one after the other: what
 *             one durable write costs on this disk, the latency floor of
 *             any durable reply, to read the percentiles above against.
 * Targets (issue 5/7): listener >= 0.75x the floor; p99 <= 5 ms at
 * 1,000 events/s offered.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "control.pb-c.h"
#include "httpc.h"
#include "jobdef.h"
#include "kv.h"
#include "listener.h"
#include "log.h"
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

/* --- latencies ---------------------------------------------------------- */

struct lat {
	double *v; /* milliseconds */
	size_t n, cap;
};

static void lat_add(struct lat *l, double ms)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4096;
		l->v = realloc(l->v, l->cap * sizeof(double));
		if (l->v == NULL)
			abort();
	}
	l->v[l->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(struct lat *l, double p)
{
	if (l->n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
	return l->v[i];
}

/* --- load generators -------------------------------------------------------- */

struct worker {
	int port;
	const char *path;
	const char *headers;
	int index;        /* connection number */
	bool open;        /* open loop: send on schedule */
	double interval;  /* open loop: seconds between this worker's sends */
	int64_t start_us; /* shared start */
	int64_t end_us;   /* stop sending after */
	struct lat lat;
	uint64_t ok, bad;
	pthread_t thread;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct httpc *c = NULL;
	if (httpc_connect(w->port, 30000, &c) != 0) {
		w->bad++;
		return NULL;
	}
	int64_t due = w->start_us + (int64_t)(w->interval * 1e6 * w->index / conns);
	for (uint64_t k = 0;; k++) {
		int64_t now = util_mono_us();
		if (w->open) {
			due = w->start_us + (int64_t)((double)k * w->interval * 1e6) +
			      (int64_t)(w->interval * 1e6 * w->index / conns);
			if (due >= w->end_us)
				break;
			if (due > now) {
				struct timespec ts = {.tv_sec = (due - now) / 1000000,
				                      .tv_nsec = ((due - now) % 1000000) * 1000};
				nanosleep(&ts, NULL);
			}
		} else {
			if (now >= w->end_us)
				break;
			due = now;
		}
		struct httpc_reply r;
		if (httpc_send(c, "POST", w->path, w->headers, event_body,
		               sizeof(event_body) - 1) != 0 ||
		    httpc_recv(c, &r) != 0) {
			w->bad++;
			httpc_close(c);
			if (httpc_connect(w->port, 30000, &c) != 0)
				return NULL;
			continue;
		}
		lat_add(&w->lat, (double)(util_mono_us() - due) / 1000.0);
		if (r.status == 202)
			w->ok++;
		else
			w->bad++;
		httpc_reply_free(&r);
	}
	httpc_close(c);
	return NULL;
}

struct result {
	double rate; /* events/s answered 202 */
	double p50, p99, p999;
	uint64_t ok, bad;
};

static struct result run_load(int port, const char *headers, bool open, double secs)
{
	struct worker *w = calloc((size_t)conns, sizeof(*w));
	int64_t start = util_mono_us() + 50000;
	for (int i = 0; i < conns; i++) {
		w[i].port = port;
		w[i].path = "/events/bench/greet";
		w[i].headers = headers;
		w[i].index = i;
		w[i].open = open;
		w[i].interval = open ? (double)conns / rate : 0;
		w[i].start_us = start;
		w[i].end_us = start + (int64_t)(secs * 1e6);
		pthread_create(&w[i].thread, NULL, work, &w[i]);
	}
	struct lat all = {0};
	struct result r = {0};
	for (int i = 0; i < conns; i++) {
		pthread_join(w[i].thread, NULL);
		for (size_t k = 0; k < w[i].lat.n; k++)
			lat_add(&all, w[i].lat.v[k]);
		r.ok += w[i].ok;
		r.bad += w[i].bad;
		free(w[i].lat.v);
	}
	double elapsed = (double)(util_mono_us() - start) / 1e6;
	qsort(all.v, all.n, sizeof(double), cmp_double);
	r.rate = (double)r.ok / elapsed;
	r.p50 = pct(&all, 50);
	r.p99 = pct(&all, 99);
	r.p999 = pct(&all, 99.9);
	free(all.v);
	free(w);
	return r;
}

/* --- the floor: an empty nng HTTP handler --------------------------------------- */

static void empty_handler(nng_aio *aio)
{
	static const char body[] = "{\"accepted\":1,\"ids\":[\"01M83WPN5AVQ98GKD3WAYDV55R\"]}";
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, 202);
	nng_http_res_set_header(res, "Content-Type", "application/json");
	nng_http_res_copy_data(res, body, sizeof(body) - 1);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static struct result run_floor(void)
{
	nng_url *u;
	nng_http_server *s;
	nng_http_handler *h;
	if (nng_url_parse(&u, "http://127.0.0.1:0") != 0 || nng_http_server_hold(&s, u) != 0 ||
	    nng_http_handler_alloc(&h, "/events", empty_handler) != 0 ||
	    nng_http_handler_set_method(h, "POST") != 0 || nng_http_handler_set_tree(h) != 0 ||
	    nng_http_handler_collect_body(h, true, 1 << 20) != 0 ||
	    nng_http_server_add_handler(s, h) != 0 || nng_http_server_start(s) != 0) {
		fprintf(stderr, "bench_ingest: cannot start the floor server\n");
		exit(1);
	}
	nng_sockaddr sa;
	nng_http_server_get_addr(s, &sa);
	int port = ntohs(sa.s_in.sa_port);
	struct result r = run_load(port, "Content-Type: application/json\r\n", false, seconds);
	nng_http_server_stop(s);
	nng_http_server_release(s);
	nng_url_free(u);
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
	qsort(l.v, l.n, sizeof(double), cmp_double);
	r.rate = (double)r.ok / ((double)(util_mono_us() - start) / 1e6);
	r.p50 = pct(&l, 50);
	r.p99 = pct(&l, 99);
	r.p999 = pct(&l, 99.9);
	free(l.v);
	kv_close(kv);
	return r;
}

/* --- the platform --------------------------------------------------------------------- */

struct platform {
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
	snprintf(path, sizeof(path), "%s/queue", dir);
	struct queue_config qc = {.data_dir = path};
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
}

/* The value of one series on the listener's /metrics (0 if absent). */
static double metric(int port, const char *series)
{
	struct httpc_reply r;
	double v = 0;
	if (httpc_request(port, "GET", "/metrics", NULL, NULL, 0, &r) != 0)
		return 0;
	const char *p = strstr(r.body, series);
	if (p != NULL)
		v = atof(p + strlen(series));
	httpc_reply_free(&r);
	return v;
}

/* --- main ----------------------------------------------------------------------------- */

static void print(const char *name, const struct result *r)
{
	printf("%-34s %10.0f %9.2f %9.2f %9.2f %8llu\n", name, r->rate, r->p50, r->p99, r->p999,
	       (unsigned long long)r->bad);
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

	printf("bench_ingest: %d connections, 1 event per POST, %.0f s per closed-loop run; "
	       "stores in %s\n\n",
	       conns, seconds, dir);
	printf("%-34s %10s %9s %9s %9s %8s\n", "run", "events/s", "p50 ms", "p99 ms", "p99.9 ms",
	       "errors");
	struct result floor = run_floor();
	print("floor: empty nng HTTP handler", &floor);

	struct platform p = {0};
	platform_start(&p);
	char headers[256];
	snprintf(headers, sizeof(headers),
	         "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n", p.token);
	int port = listener_http_port(p.listener);
	double sum0 = metric(port, "noetl_listener_enqueue_seconds_sum ");
	double calls0 = metric(port, "noetl_listener_enqueue_total{what=\"calls\"}");
	double items0 = metric(port, "noetl_listener_enqueue_total{what=\"items\"}");
	struct result lst = run_load(port, headers, false, seconds);
	print("listener: durable enqueue", &lst);
	double calls = metric(port, "noetl_listener_enqueue_total{what=\"calls\"}") - calls0;
	double items = metric(port, "noetl_listener_enqueue_total{what=\"items\"}") - items0;
	double secs = metric(port, "noetl_listener_enqueue_seconds_sum ") - sum0;
	struct result open = run_load(port, headers, true, open_seconds);
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

	printf("\nclosed loop: %.0f Enqueue calls, %.1f events and %.2f ms per call on average\n",
	       calls, calls > 0 ? items / calls : 0, calls > 0 ? secs * 1000 / calls : 0);
	double ratio = floor.rate > 0 ? lst.rate / floor.rate : 0;
	printf("\nlistener / floor throughput: %.2fx (target >= 0.75x): %s\n", ratio,
	       ratio >= 0.75 ? "met" : "NOT met");
	printf("open loop p99 at %.0f/s: %.2f ms (target <= 5 ms): %s; one synced write alone: "
	       "p99 %.2f ms\n",
	       rate, open.p99, open.p99 <= 5.0 ? "met" : "NOT met", disk.p99);
	return 0;
}
