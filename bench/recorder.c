/*
 * bench/recorder: how fast the Recorder takes records in, and how fast it
 * answers "the latest 100" with many records stored.
 *
 * Ingest, in one run, the same records (packed log lines and executions of
 * realistic size) from the same number of concurrent writers in batches of
 * the same size:
 *   raw:   RocksDB (through kv, the thin wrapper) writing each batch as one
 *          synced write batch of one key per record: the floor of the
 *          platform's durability cost;
 *   local: the Recorder's Record handler through rpc_invoke_local: checks,
 *          group commit, change log, indexes, usage, publish;
 *   rpc:   the same over the Record RPC on ipc://.
 * It prints records/s for each, the ratios to raw, and how many records
 * each synced write of the Recorder carried on average.
 *
 * Queries: fills a store with --records records (default 10,000,000: a
 * fifth executions, the rest log lines, over 16 tenants), then times the
 * latest 100 executions of a tenant, the latest 100 failed ones and the last
 * 100 log lines, over RPC and directly on the store, and prints p50/p99.
 *
 * usage: bench_recorder [--records N] [--ingest N] [--batch B] [--threads C]
 *                       [--queries Q] [--dir DIR]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"
#include "log.h"
#include "recorder.h"
#include "rpc.h"
#include "service_int.h"
#include "store.h"
#include "util.h"

static long records = 10000000;
static long ingest = 200000;
static int batch = 100;
static int threads = 8;
static int queries = 1000;
static const char *base_dir;
#define TENANTS 16

/* --- records ---------------------------------------------------------------- */

static const char *tenant_name(long i)
{
	static char names[TENANTS][16];
	int t = (int)(i % TENANTS);
	if (names[t][0] == '\0')
		snprintf(names[t], sizeof(names[t]), "tenant%02d", t);
	return names[t];
}

/* Fills rec (and its storage s) as record number i: every fifth an
 * execution, else a log line of about 100 characters. */
struct recbuf {
	Noetl__Record rec;
	Noetl__Execution exec;
	Noetl__LogLine log;
	char event_id[32];
	char text[160];
};

static void make_record(struct recbuf *b, long i, int64_t now)
{
	noetl__record__init(&b->rec);
	snprintf(b->event_id, sizeof(b->event_id), "01HZX%010ld", i / 5);
	if (i % 5 == 0) {
		noetl__execution__init(&b->exec);
		b->exec.tenant = (char *)tenant_name(i / 5);
		b->exec.event_id = b->event_id;
		b->exec.event = "greet";
		b->exec.package = "hello";
		b->exec.queue = "default";
		b->exec.attempt = 1;
		b->exec.start_ms = now - 10;
		b->exec.end_ms = now;
		b->exec.duration_us = 9500;
		b->exec.status =
		        i % 35 == 0 ? NOETL__EXEC_STATUS__EXEC_ERROR : NOETL__EXEC_STATUS__EXEC_OK;
		b->exec.code = b->exec.status;
		b->exec.result.data = (uint8_t *)"{\"message\":\"hello, world\",\"count\":42}";
		b->exec.result.len = strlen((char *)b->exec.result.data);
		b->exec.host = "executor-1";
		b->exec.module_sha256 =
		        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
		b->rec.kind_case = NOETL__RECORD__KIND_EXECUTION;
		b->rec.execution = &b->exec;
	} else {
		noetl__log_line__init(&b->log);
		b->log.tenant = (char *)tenant_name(i / 5);
		b->log.event_id = b->event_id;
		b->log.level = (Noetl__LogLevel)(i % 4);
		b->log.time_ms = now;
		snprintf(b->text, sizeof(b->text),
		         "step %ld of the greeting: looked up the customer, rendered the "
		         "template, queued the e-mail",
		         i);
		b->log.text = b->text;
		b->log.source = "guest";
		b->log.attempt = 1;
		b->rec.kind_case = NOETL__RECORD__KIND_LOG;
		b->rec.log = &b->log;
	}
}

/* --- ingest ----------------------------------------------------------------- */

enum mode { RAW, LOCAL, RPC };

struct writer {
	enum mode mode;
	int id;
	long count; /* records to write */
	struct kv *kv;
	struct recorder *rec;
	struct rpc_client *client;
	int failures;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	struct recbuf *bufs = calloc((size_t)batch, sizeof(*bufs));
	Noetl__Record **recs = calloc((size_t)batch, sizeof(*recs));
	struct kv_batch *kb = kv_batch_create();
	uint8_t packed[1024];
	long done = 0;
	while (done < w->count) {
		int n = (int)(w->count - done < batch ? w->count - done : batch);
		int64_t now = util_now_ms();
		for (int i = 0; i < n; i++) {
			make_record(&bufs[i], done + i + (long)w->id * 1000003, now);
			recs[i] = &bufs[i].rec;
		}
		if (w->mode == RAW) {
			kv_batch_clear(kb);
			for (int i = 0; i < n; i++) {
				uint8_t key[16];
				util_put_be64(key, (uint64_t)w->id);
				util_put_be64(key + 8, (uint64_t)(done + i));
				size_t len = noetl__record__pack(recs[i], packed);
				kv_batch_put(kb, key, sizeof(key), packed, len);
			}
			if (kv_write(w->kv, kb, true) != 0)
				w->failures++;
		} else {
			Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
			req.records = recs;
			req.n_records = (size_t)n;
			ProtobufCMessage *out = NULL;
			int st;
			if (w->mode == LOCAL) {
				st = rpc_invoke_local(recorder_service(w->rec), "Record", &req.base,
				                      NULL, &out, NULL);
			} else {
				struct rpc_call_options o = {.timeout_ms = 60000};
				st = rpc_call(w->client, &noetl__recorder__descriptor, "Record",
				              &req.base, &o, &out, NULL);
			}
			if (st != 0)
				w->failures++;
			if (out != NULL)
				protobuf_c_message_free_unpacked(out, NULL);
		}
		done += n;
	}
	kv_batch_destroy(kb);
	free(recs);
	free(bufs);
	return NULL;
}

/* Runs the writers; returns records/s. */
static double run_writers(enum mode mode, struct kv *kv, struct recorder *rec,
                          struct rpc_client *client)
{
	struct writer *w = calloc((size_t)threads, sizeof(*w));
	pthread_t *th = calloc((size_t)threads, sizeof(*th));
	int64_t t0 = util_mono_us();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct writer){.mode = mode,
		                       .id = i,
		                       .count = ingest / threads,
		                       .kv = kv,
		                       .rec = rec,
		                       .client = client};
		pthread_create(&th[i], NULL, write_loop, &w[i]);
	}
	int failures = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		failures += w[i].failures;
	}
	double secs = (double)(util_mono_us() - t0) / 1e6;
	if (failures > 0)
		fprintf(stderr, "bench_recorder: %d calls failed\n", failures);
	free(w);
	free(th);
	return (double)(ingest / threads * threads) / secs;
}

static void bench_ingest(void)
{
	char path[512];
	printf("ingest: %ld records, %d writers, %d records per call, every call synced\n", ingest,
	       threads, batch);

	snprintf(path, sizeof(path), "%s/raw", base_dir);
	struct kv *kv;
	if (kv_open(path, NULL, &kv) != 0)
		exit(1);
	double raw = run_writers(RAW, kv, NULL, NULL);
	kv_close(kv);

	snprintf(path, sizeof(path), "%s/local", base_dir);
	char pub[600];
	snprintf(pub, sizeof(pub), "ipc://%s/local.pub", base_dir);
	struct recorder_config cfg = {.data_dir = path, .stream_url = pub, .retain_every_ms = -1};
	struct recorder *rec;
	if (recorder_create(&cfg, &rec) != 0)
		exit(1);
	double local = run_writers(LOCAL, NULL, rec, NULL);
	uint64_t writes, stored;
	recorder_writer_stats(rec->writer, &writes, &stored);
	double per_local = writes ? (double)stored / (double)writes : 0;
	recorder_destroy(rec);

	snprintf(path, sizeof(path), "%s/rpc", base_dir);
	snprintf(pub, sizeof(pub), "ipc://%s/rpc.pub", base_dir);
	char url[600];
	snprintf(url, sizeof(url), "ipc://%s/rpc.sock", base_dir);
	cfg.data_dir = path;
	cfg.stream_url = pub;
	struct rpc_server *srv;
	struct rpc_server_options so = {.workers = threads * 2, .name = "recorder"};
	struct rpc_client *client;
	if (recorder_create(&cfg, &rec) != 0 || rpc_server_create(&so, &srv) != 0 ||
	    rpc_server_add(srv, recorder_service(rec)) != 0 || rpc_server_listen(srv, url) != 0 ||
	    rpc_server_start(srv) != 0 || rpc_client_create(url, NULL, &client) != 0)
		exit(1);
	double viarpc = run_writers(RPC, NULL, NULL, client);
	recorder_writer_stats(rec->writer, &writes, &stored);
	double per_rpc = writes ? (double)stored / (double)writes : 0;
	rpc_client_destroy(client);
	rpc_server_destroy(srv);
	recorder_destroy(rec);

	printf("  %-44s %12s %8s %14s\n", "", "records/s", "vs raw", "records/sync");
	printf("  %-44s %12.0f %8s %14s\n", "raw RocksDB, synced batch per call", raw, "1.00",
	       "(per call)");
	printf("  %-44s %12.0f %8.2f %14.1f\n", "recorder, Record handler (rpc_invoke_local)",
	       local, local / raw, per_local);
	printf("  %-44s %12.0f %8.2f %14.1f\n", "recorder, Record RPC over ipc://", viarpc,
	       viarpc / raw, per_rpc);
}

/* --- queries ---------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *lat, int n, size_t got)
{
	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	printf("  %-44s p50 %7.3f ms  p99 %7.3f ms  (%zu rows)\n", what, (double)lat[n / 2] / 1000,
	       (double)lat[n * 99 / 100] / 1000, got);
}

static void fill(struct recorder_store *st)
{
	enum { FILL_BATCH = 10000 };
	struct recbuf *bufs = calloc(FILL_BATCH, sizeof(*bufs));
	Noetl__Record **recs = calloc(FILL_BATCH, sizeof(*recs));
	int64_t t0 = util_mono_us(), now = util_now_ms() - records / 1000;
	for (long done = 0; done < records;) {
		int n = (int)(records - done < FILL_BATCH ? records - done : FILL_BATCH);
		for (int i = 0; i < n; i++) {
			/* a thousand records per millisecond of record time */
			make_record(&bufs[i], done + i, now + (done + i) / 1000);
			recs[i] = &bufs[i].rec;
		}
		uint64_t last;
		if (recorder_store_append(st, recs, (size_t)n, util_now_ms(), &last) != 0)
			exit(1);
		done += n;
		if (done % 1000000 == 0 || done == records)
			fprintf(stderr, "  filled %ld records (%.0f records/s)\n", done,
			        (double)done / ((double)(util_mono_us() - t0) / 1e6));
	}
	free(recs);
	free(bufs);
}

static void bench_queries(void)
{
	char path[512], url[600];
	snprintf(path, sizeof(path), "%s/big", base_dir);
	snprintf(url, sizeof(url), "ipc://%s/big.sock", base_dir);
	printf("\nqueries: %ld records stored (%d tenants; a fifth executions), %d queries each\n",
	       records, TENANTS, queries);
	struct recorder_config cfg = {.data_dir = path, .retain_every_ms = -1};
	struct recorder *rec;
	if (recorder_create(&cfg, &rec) != 0)
		exit(1);
	fill(rec->store);
	struct kv *kv = recorder_store_kv(rec->store);
	printf("  store: %.1f MiB on disk (estimate) for %ld records\n",
	       (double)kv_approximate_size(kv, "\x01", 1, "\xff", 1) / (1 << 20), records);

	struct rpc_server *srv;
	struct rpc_server_options so = {.workers = 4, .name = "recorder"};
	struct rpc_client *client;
	if (rpc_server_create(&so, &srv) != 0 || rpc_server_add(srv, recorder_service(rec)) != 0 ||
	    rpc_server_listen(srv, url) != 0 || rpc_server_start(srv) != 0 ||
	    rpc_client_create(url, NULL, &client) != 0)
		exit(1);

	int64_t *lat = calloc((size_t)queries, sizeof(*lat));
	Noetl__Page page = NOETL__PAGE__INIT;
	page.limit = 100;
	const char *names[] = {"latest 100 executions of a tenant, rpc",
	                       "latest 100 failed executions, rpc", "last 100 log lines, rpc",
	                       "latest 100 executions of a tenant, store"};
	for (int kind = 0; kind < 4; kind++) {
		size_t rows = 0;
		for (int i = 0; i < queries; i++) {
			Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
			Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
			q.tenant = lq.tenant = (char *)tenant_name(i);
			q.page = lq.page = &page;
			q.only_failed = kind == 1;
			lq.newest_first = true;
			ProtobufCMessage *out = NULL;
			struct rpc_call_options o = {.timeout_ms = 30000};
			int64_t t0 = util_mono_us();
			if (kind == 3) {
				Noetl__ExecutionsReply *r = NULL;
				if (recorder_store_executions(rec->store, &q, q.tenant, &r, NULL) !=
				    0)
					exit(1);
				out = &r->base;
			} else if (rpc_call(client, &noetl__recorder__descriptor,
			                    kind == 2 ? "QueryLogs" : "QueryExecutions",
			                    kind == 2 ? &lq.base : &q.base, &o, &out, NULL) != 0) {
				exit(1);
			}
			lat[i] = util_mono_us() - t0;
			rows = kind == 2 ? ((Noetl__LogsReply *)out)->n_lines
			                 : ((Noetl__ExecutionsReply *)out)->n_executions;
			protobuf_c_message_free_unpacked(out, NULL);
		}
		report(names[kind], lat, queries, rows);
	}
	free(lat);
	rpc_client_destroy(client);
	rpc_server_destroy(srv);
	recorder_destroy(rec);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v != NULL && strcmp(a, "--records") == 0)
			records = atol(argv[++i]);
		else if (v != NULL && strcmp(a, "--ingest") == 0)
			ingest = atol(argv[++i]);
		else if (v != NULL && strcmp(a, "--batch") == 0)
			batch = atoi(argv[++i]);
		else if (v != NULL && strcmp(a, "--threads") == 0)
			threads = atoi(argv[++i]);
		else if (v != NULL && strcmp(a, "--queries") == 0)
			queries = atoi(argv[++i]);
		else if (v != NULL && strcmp(a, "--dir") == 0)
			base_dir = argv[++i];
		else {
			fprintf(stderr,
			        "usage: bench_recorder [--records N] [--ingest N] [--batch B] "
			        "[--threads C] [--queries Q] [--dir DIR]\n");
			return 2;
		}
	}
	if (records < 1000 || ingest < threads || batch < 1 || batch > 10000 || threads < 1 ||
	    queries < 1) {
		fprintf(stderr, "bench_recorder: --records >= 1000, --ingest >= --threads, "
		                "1 <= --batch <= 10000, --threads and --queries >= 1\n");
		return 2;
	}
	log_setup("bench", LOG_LEVEL_WARN, false);
	char tmp[] = "/tmp/noetl-bench-recorder-XXXXXX";
	if (base_dir == NULL) {
		if (mkdtemp(tmp) == NULL) {
			perror("bench_recorder: mkdtemp");
			return 1;
		}
		base_dir = tmp;
	}
	bench_ingest();
	bench_queries();
	if (base_dir == tmp)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
