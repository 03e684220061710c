/*
 * bench/rpc: what the RPC layer costs over raw nng.
 *
 * In one run, for each concurrency level (requests in flight), it measures
 *   raw: an nng rep server whose workers each own a context and echo the
 *        message back (recv → send), called through req contexts; and
 *   rpc: the noetl.Echo service through rpc_server / rpc_call,
 * with the same payload, transport and number of server workers, and prints
 * round-trip p50/p99 and calls/s for both, and the ratios. Targets (issue
 * 1/7): rpc p50 <= 1.2x raw, rpc calls/s >= 0.9x raw.
 *
 * usage: bench_rpc [--seconds S] [--payload BYTES] [--transport ipc|tcp]
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo.h"
#include "log.h"
#include "rpc.h"
#include "util.h"

#define WORKERS 16

static double seconds = 2.0;
static size_t payload = 100;
static char url_raw[256], url_rpc[256];

/* --- raw nng echo ---------------------------------------------------------- */

static nng_socket raw_srv;

static void *raw_worker(void *arg)
{
	(void)arg;
	nng_ctx ctx;
	nng_aio *aio;
	nng_ctx_open(&ctx, raw_srv);
	nng_aio_alloc(&aio, NULL, NULL);
	for (;;) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			break;
		nng_ctx_send(ctx, aio); /* the same message goes back */
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			nng_msg_free(nng_aio_get_msg(aio));
			break;
		}
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

/* --- load ------------------------------------------------------------------ */

struct load {
	bool raw;
	nng_socket raw_cli;
	struct rpc_client *cli;
	int64_t end_us;
	int64_t *lat; /* per thread samples */
	size_t n, cap;
};

static void *load_thread(void *arg)
{
	struct load *l = arg;
	char *data = malloc(payload);
	memset(data, 'p', payload);
	nng_ctx ctx;
	nng_aio *aio = NULL;
	if (l->raw) {
		nng_ctx_open(&ctx, l->raw_cli);
		nng_aio_alloc(&aio, NULL, NULL);
	}
	Noetl__EchoRequest req = NOETL__ECHO_REQUEST__INIT;
	req.data.data = (uint8_t *)data;
	req.data.len = payload;
	struct rpc_call_options o = {.timeout_ms = 5000, .trace_id = "bench"};
	while (util_mono_us() < l->end_us) {
		int64_t t0 = util_mono_us();
		bool ok;
		if (l->raw) {
			nng_msg *m;
			nng_msg_alloc(&m, payload);
			memcpy(nng_msg_body(m), data, payload);
			nng_aio_set_msg(aio, m);
			nng_ctx_send(ctx, aio);
			nng_aio_wait(aio);
			ok = nng_aio_result(aio) == 0;
			if (ok) {
				nng_ctx_recv(ctx, aio);
				nng_aio_wait(aio);
				ok = nng_aio_result(aio) == 0;
				if (ok)
					nng_msg_free(nng_aio_get_msg(aio));
			}
		} else {
			ProtobufCMessage *out = NULL;
			ok = rpc_call(l->cli, &noetl__echo__descriptor, "Echo", &req.base, &o, &out,
			              NULL) == 0;
			if (ok)
				protobuf_c_message_free_unpacked(out, NULL);
		}
		if (!ok)
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 65536;
			l->lat = realloc(l->lat, l->cap * sizeof(*l->lat));
		}
		l->lat[l->n++] = util_mono_us() - t0;
	}
	if (aio != NULL) {
		nng_aio_free(aio);
		nng_ctx_close(ctx);
	}
	free(data);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double p50, p99, rate;
};

static struct result run(bool raw, int inflight, nng_socket raw_cli, struct rpc_client *cli)
{
	pthread_t t[256];
	struct load l[256];
	int64_t start = util_mono_us();
	for (int i = 0; i < inflight; i++) {
		l[i] = (struct load){.raw = raw,
		                     .raw_cli = raw_cli,
		                     .cli = cli,
		                     .end_us = start + (int64_t)(seconds * 1e6)};
		pthread_create(&t[i], NULL, load_thread, &l[i]);
	}
	size_t total = 0;
	for (int i = 0; i < inflight; i++) {
		pthread_join(t[i], NULL);
		total += l[i].n;
	}
	double elapsed = (double)(util_mono_us() - start) / 1e6;
	int64_t *all = malloc((total > 0 ? total : 1) * sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < inflight; i++) {
		memcpy(all + k, l[i].lat, l[i].n * sizeof(*all));
		k += l[i].n;
		free(l[i].lat);
	}
	qsort(all, total, sizeof(*all), cmp64);
	struct result r = {0};
	if (total > 0) {
		r.p50 = (double)all[total / 2];
		r.p99 = (double)all[(size_t)((double)total * 0.99)];
		r.rate = (double)total / elapsed;
	}
	free(all);
	return r;
}

int main(int argc, char **argv)
{
	const char *transport = "ipc";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--payload") == 0 && i + 1 < argc)
			payload = (size_t)atol(argv[++i]);
		else if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc)
			transport = argv[++i];
		else {
			fprintf(stderr, "usage: bench_rpc [--seconds S] [--payload BYTES] "
			                "[--transport ipc|tcp]\n");
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
	}
	log_setup("bench", LOG_LEVEL_WARN, false);
	if (strcmp(transport, "tcp") == 0) {
		snprintf(url_raw, sizeof(url_raw), "tcp://127.0.0.1:%d", 20000 + getpid() % 20000);
		snprintf(url_rpc, sizeof(url_rpc), "tcp://127.0.0.1:%d", 20001 + getpid() % 20000);
	} else {
		snprintf(url_raw, sizeof(url_raw), "ipc:///tmp/noetl-bench-raw-%d.sock", getpid());
		snprintf(url_rpc, sizeof(url_rpc), "ipc:///tmp/noetl-bench-rpc-%d.sock", getpid());
	}

	nng_rep0_open(&raw_srv);
	if (nng_listen(raw_srv, url_raw, NULL, 0) != 0) {
		fprintf(stderr, "cannot listen on %s\n", url_raw);
		return 1;
	}
	pthread_t rw[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&rw[i], NULL, raw_worker, NULL);
	nng_socket raw_cli;
	nng_req0_open(&raw_cli);
	nng_socket_set_ms(raw_cli, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_dial(raw_cli, url_raw, NULL, 0);

	struct echo e;
	echo_init(&e);
	struct rpc_server *srv;
	struct rpc_server_options so = {.workers = WORKERS, .name = "bench"};
	if (rpc_server_create(&so, &srv) != 0 || rpc_server_add(srv, &e.svc.base) != 0 ||
	    rpc_server_listen(srv, url_rpc) != 0 || rpc_server_start(srv) != 0)
		return 1;
	struct rpc_client *cli;
	rpc_client_create(url_rpc, NULL, &cli);

	printf("bench/rpc: %s, payload %zu bytes, %d server workers, %.1f s per cell\n", transport,
	       payload, WORKERS, seconds);
	printf("%-9s | %-29s | %-29s | %-15s\n", "", "raw nng", "rpc layer", "rpc / raw");
	printf("%-9s | %9s %9s %9s | %9s %9s %9s | %7s %7s\n", "in flight", "p50 us", "p99 us",
	       "calls/s", "p50 us", "p99 us", "calls/s", "p50", "rate");
	int levels[] = {1, 16, 64};
	int fails = 0;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		/* alternate the order so neither side always runs on a warmer
		 * machine */
		struct result raw, rpc;
		if (i % 2 == 0) {
			raw = run(true, levels[i], raw_cli, NULL);
			rpc = run(false, levels[i], raw_cli, cli);
		} else {
			rpc = run(false, levels[i], raw_cli, cli);
			raw = run(true, levels[i], raw_cli, NULL);
		}
		double p50r = raw.p50 > 0 ? rpc.p50 / raw.p50 : 0;
		double rater = raw.rate > 0 ? rpc.rate / raw.rate : 0;
		printf("%-9d | %9.0f %9.0f %9.0f | %9.0f %9.0f %9.0f | %6.2fx %6.2fx\n", levels[i],
		       raw.p50, raw.p99, raw.rate, rpc.p50, rpc.p99, rpc.rate, p50r, rater);
		if (p50r > 1.2 || rater < 0.9)
			fails++;
	}
	printf("targets: p50 <= 1.20x raw, calls/s >= 0.90x raw: %s\n",
	       fails == 0 ? "met" : "NOT met at every level");
	rpc_client_destroy(cli);
	rpc_server_destroy(srv);
	nng_close(raw_cli);
	nng_close(raw_srv);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(rw[i], NULL);
	return 0;
}
