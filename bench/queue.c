/*
 * bench/queue: what the Queue service costs over raw RocksDB, and whether
 * dequeueing stays cheap after many items have passed through a queue.
 *
 * In one run it measures
 *   raw:      synced RocksDB write batches of the producers' batch size, with
 *             the same kv options the service uses (through src/lib/kv.h, the
 *             thin wrapper every service writes through, so the ratio is the
 *             service's own overhead: RPC, encoding, bookkeeping; the wrapper
 *             adds one function call per operation), from one thread and from
 *             as many threads as there are producers (RocksDB then groups
 *             concurrent writers itself);
 *   enqueue:  the service over RPC (ipc://) with 32 producers sending batches,
 *             items/s and per-call latency p50/p99;
 *   lease+ack: consumers leasing 100 items and acking them, items/s;
 *   churn:    the store's cost to take an item at the head of a queue (read
 *             plus lease bookkeeping, without the synced write), before and
 *             after N items have churned through that queue.
 * Target (issue 2/7): service enqueue items/s >= 0.7x the raw baseline, the
 * loop of synced batches of the producers' batch size. The run with as many
 * raw writers as producers is the stricter comparison: RocksDB then does its
 * own group commit with no RPC, encoding or bookkeeping at all.
 *
 * usage: bench_queue [--seconds S] [--churn N] [--producers P] [--batch B]
 *                    [--payload BYTES]
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"
#include "lat.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "rpc.h"
#include "store.h"
#include "util.h"

static double seconds = 5.0;
static long churn = 1000000;
static int producers = 32;
static int batch = 20;
static size_t payload = 200;
static char dir[256];
static char *blob; /* payload bytes */

/* --- raw RocksDB ----------------------------------------------------------------- */

struct raw_arg {
	struct kv *kv;
	int index;
	int64_t deadline_us;
	long items;
	struct lat lat;
};

static void *raw_writer(void *arg)
{
	struct raw_arg *a = arg;
	struct kv_batch *b = kv_batch_create();
	uint8_t key[32];
	/* the service stores about this much per item: payload, ids, names */
	size_t vlen = payload + 60;
	char *val = calloc(1, vlen);
	uint64_t seq = 0;
	while (util_mono_us() < a->deadline_us) {
		kv_batch_clear(b);
		for (int i = 0; i < batch; i++) {
			key[0] = 'R';
			memcpy(key + 1, "bench\0q\0", 8);
			key[9] = (uint8_t)a->index;
			util_put_be64(key + 10, seq++);
			kv_batch_put(b, key, 18, val, vlen);
		}
		int64_t t0 = util_mono_us();
		if (kv_write(a->kv, b, true) != 0)
			break;
		lat_add(&a->lat, (double)(util_mono_us() - t0) / 1000.0);
		a->items += batch;
	}
	free(val);
	kv_batch_destroy(b);
	return NULL;
}

/* Items/s of synced batches from `threads` writers; latency into *lat. */
static double raw_run(int threads, struct lat *lat)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/raw%d", dir, threads);
	struct kv *kv;
	if (kv_open(path, NULL, &kv) != 0)
		exit(1);
	struct raw_arg *a = calloc((size_t)threads, sizeof(*a));
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	int64_t start = util_mono_us();
	for (int i = 0; i < threads; i++) {
		a[i] = (struct raw_arg){
		        .kv = kv, .index = i, .deadline_us = start + (int64_t)(seconds * 1e6)};
		pthread_create(&t[i], NULL, raw_writer, &a[i]);
	}
	long items = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		items += a[i].items;
		for (size_t j = 0; j < a[i].lat.n; j++)
			lat_add(lat, a[i].lat.v[j]);
		free(a[i].lat.v);
	}
	double el = (double)(util_mono_us() - start) / 1e6;
	free(a);
	free(t);
	kv_close(kv);
	return (double)items / el;
}

/* --- the service ----------------------------------------------------------------- */

static char url[300];

static struct rpc_client *client(void)
{
	struct rpc_client_options co = {.caller = "bench", .connect_wait_ms = 5000};
	struct rpc_client *c;
	if (rpc_client_create(url, &co, &c) != 0)
		exit(1);
	return c;
}

struct prod_arg {
	int index;
	int64_t deadline_us;
	long items;
	long failed;
	struct lat lat;
};

static void *producer(void *arg)
{
	struct prod_arg *a = arg;
	struct rpc_client *c = client();
	Noetl__Item *it = calloc((size_t)batch, sizeof(*it));
	Noetl__Item **ip = calloc((size_t)batch, sizeof(*ip));
	char(*ids)[32] = calloc((size_t)batch, 32);
	char queue[16];
	snprintf(queue, sizeof(queue), "q%d", a->index % 8);
	long n = 0;
	while (util_mono_us() < a->deadline_us) {
		for (int i = 0; i < batch; i++) {
			noetl__item__init(&it[i]);
			snprintf(ids[i], 32, "p%d-%ld", a->index, n++);
			it[i].tenant = "bench";
			it[i].queue = queue;
			it[i].id = ids[i];
			it[i].payload.data = (uint8_t *)blob;
			it[i].payload.len = payload;
			ip[i] = &it[i];
		}
		Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
		req.n_items = (size_t)batch;
		req.items = ip;
		ProtobufCMessage *m = NULL;
		int64_t t0 = util_mono_us();
		int st = rpc_call(c, &noetl__queue__descriptor, "Enqueue", &req.base, NULL, &m,
		                  NULL);
		if (st == 0) {
			lat_add(&a->lat, (double)(util_mono_us() - t0) / 1000.0);
			a->items += batch;
			protobuf_c_message_free_unpacked(m, NULL);
		} else {
			a->failed++;
		}
	}
	free(it);
	free(ip);
	free(ids);
	rpc_client_destroy(c);
	return NULL;
}

struct cons_arg {
	int64_t deadline_us;
	long items;
};

static void *consumer(void *arg)
{
	struct cons_arg *a = arg;
	struct rpc_client *c = client();
	while (util_mono_us() < a->deadline_us) {
		Noetl__LeaseRequest lr = NOETL__LEASE_REQUEST__INIT;
		lr.max_items = 100;
		lr.lease_ms = 60000;
		ProtobufCMessage *m = NULL;
		if (rpc_call(c, &noetl__queue__descriptor, "Lease", &lr.base, NULL, &m, NULL) != 0)
			break;
		Noetl__LeaseReply *r = (Noetl__LeaseReply *)m;
		size_t n = r->n_items;
		if (n == 0) {
			protobuf_c_message_free_unpacked(m, NULL);
			break; /* drained */
		}
		Noetl__AckEntry *e = calloc(n, sizeof(*e));
		Noetl__AckEntry **ep = calloc(n, sizeof(*ep));
		for (size_t i = 0; i < n; i++) {
			noetl__ack_entry__init(&e[i]);
			e[i].lease = r->items[i]->lease;
			ep[i] = &e[i];
		}
		Noetl__AckRequest ar = NOETL__ACK_REQUEST__INIT;
		ar.n_entries = n;
		ar.entries = ep;
		ProtobufCMessage *am = NULL;
		if (rpc_call(c, &noetl__queue__descriptor, "Ack", &ar.base, NULL, &am, NULL) == 0) {
			a->items += (long)n;
			protobuf_c_message_free_unpacked(am, NULL);
		}
		free(e);
		free(ep);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	rpc_client_destroy(c);
	return NULL;
}

/* --- churn ---------------------------------------------------------------------- */

/* Enqueues n items into the bench queue of s (store API, one call). */
static void store_fill(struct queue_store *s, int n)
{
	Noetl__Item *it = calloc((size_t)n, sizeof(*it));
	Noetl__Item **ip = calloc((size_t)n, sizeof(*ip));
	struct queue_store_enqueued *res = calloc((size_t)n, sizeof(*res));
	char(*ids)[UTIL_ID_SIZE] = calloc((size_t)n, UTIL_ID_SIZE);
	for (int i = 0; i < n; i++) {
		noetl__item__init(&it[i]);
		util_new_id(ids[i]);
		it[i].tenant = "bench";
		it[i].queue = "churn";
		it[i].id = ids[i];
		it[i].payload.data = (uint8_t *)blob;
		it[i].payload.len = payload;
		ip[i] = &it[i];
	}
	if (queue_store_enqueue(s, ip, (size_t)n, res, NULL, 0) != 0)
		exit(1);
	for (int i = 0; i < n; i++)
		free(res[i].id);
	free(res);
	free(ids);
	free(ip);
	free(it);
}

/* Leases and acks n items in leases of `per`; returns the store's take
 * cost in microseconds per item over them. */
static double store_drain(struct queue_store *s, int n, int per)
{
	struct queue_store_totals t0, t1;
	queue_store_totals(s, &t0);
	for (int done = 0; done < n;) {
		struct queue_store_lease_req req = {.max_items = (uint32_t)per, .lease_ms = 60000};
		struct queue_store_leased *v = NULL;
		size_t got = 0;
		if (queue_store_lease(s, &req, &v, &got) != 0 || got == 0)
			exit(1);
		struct queue_store_ack *e = calloc(got, sizeof(*e));
		for (size_t i = 0; i < got; i++) {
			e[i].token = v[i].token;
			e[i].token_len = QUEUE_TOKEN_LEN;
		}
		if (queue_store_ack(s, NULL, e, got) != 0)
			exit(1);
		free(e);
		queue_store_leased_free(v, got);
		done += (int)got;
	}
	queue_store_totals(s, &t1);
	uint64_t items = t1.read_items - t0.read_items;
	return items ? (double)(t1.read_us - t0.read_us) / (double)items : 0;
}

/* The value of an unlabelled series in the registry's rendering. */
static double metric_total(struct metrics *reg, const char *name)
{
	char *text = NULL;
	size_t len = 0;
	double v = 0;
	if (metrics_render(reg, &text, &len) != 0)
		return 0;
	char pat[128];
	snprintf(pat, sizeof(pat), "\n%s ", name);
	const char *p = strstr(text, pat);
	if (p != NULL)
		v = atof(p + strlen(pat));
	free(text);
	return v;
}

/* --- main ------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: bench_queue [--seconds S] [--churn N] [--producers P] "
	                "[--batch B] [--payload BYTES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--churn") == 0)
			churn = atol(argv[++i]);
		else if (strcmp(argv[i], "--producers") == 0)
			producers = atoi(argv[++i]);
		else if (strcmp(argv[i], "--batch") == 0)
			batch = atoi(argv[++i]);
		else if (strcmp(argv[i], "--payload") == 0)
			payload = (size_t)atol(argv[++i]);
		else
			usage();
	}
	if (seconds <= 0 || churn < 0 || producers < 1 || batch < 1 || batch > 10000 ||
	    payload > (1u << 20))
		usage();
	log_setup("bench", LOG_LEVEL_WARN, false);
	blob = malloc(payload + 1);
	memset(blob, 'x', payload);
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/noetl-bench-queue-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	printf("queue benchmark: %.0f s per phase, %d producers, batches of %d items of %zu "
	       "bytes, churn %ld\n\n",
	       seconds, producers, batch, payload, churn);

	struct lat raw1 = {0}, rawn = {0}, svc = {0};
	double r1 = raw_run(1, &raw1);
	double rn = raw_run(producers, &rawn);

	char db[300];
	snprintf(db, sizeof(db), "%s/svc", dir);
	snprintf(url, sizeof(url), "ipc://%s/q.sock", dir);
	struct metrics *reg = NULL;
	if (metrics_create(0, &reg) != 0)
		return 1;
	struct queue_config qc = {.data_dir = db,
	                          .max_depth_tenant = 100000000,
	                          .max_depth_total = 100000000,
	                          .metrics = reg};
	struct queue *q;
	struct rpc_server *srv;
	struct rpc_server_options so = {.name = "queue", .workers = producers + 8};
	if (queue_create(&qc, &q) != 0 || rpc_server_create(&so, &srv) != 0 ||
	    rpc_server_add(srv, queue_service(q)) != 0 || rpc_server_listen(srv, url) != 0 ||
	    rpc_server_start(srv) != 0)
		return 1;

	struct prod_arg *pa = calloc((size_t)producers, sizeof(*pa));
	pthread_t *pt = calloc((size_t)producers, sizeof(*pt));
	int64_t start = util_mono_us();
	for (int i = 0; i < producers; i++) {
		pa[i] = (struct prod_arg){.index = i,
		                          .deadline_us = start + (int64_t)(seconds * 1e6)};
		pthread_create(&pt[i], NULL, producer, &pa[i]);
	}
	long enq = 0, failed = 0;
	for (int i = 0; i < producers; i++) {
		pthread_join(pt[i], NULL);
		enq += pa[i].items;
		failed += pa[i].failed;
		for (size_t j = 0; j < pa[i].lat.n; j++)
			lat_add(&svc, pa[i].lat.v[j]);
		free(pa[i].lat.v);
	}
	double se = (double)enq / ((double)(util_mono_us() - start) / 1e6);
	double writes = metric_total(reg, "noetl_queue_synced_writes_total");
	double wops = metric_total(reg, "noetl_queue_synced_write_ops_total");
	double wsec = metric_total(reg, "noetl_queue_synced_write_seconds_total");
	double el_enq = (double)(util_mono_us() - start) / 1e6;

	enum { CONSUMERS = 4 };
	struct cons_arg ca[CONSUMERS];
	pthread_t ct[CONSUMERS];
	start = util_mono_us();
	for (int i = 0; i < CONSUMERS; i++) {
		ca[i] = (struct cons_arg){.deadline_us = start + (int64_t)(seconds * 1e6)};
		pthread_create(&ct[i], NULL, consumer, &ca[i]);
	}
	long leased = 0;
	for (int i = 0; i < CONSUMERS; i++) {
		pthread_join(ct[i], NULL);
		leased += ca[i].items;
	}
	double sl = (double)leased / ((double)(util_mono_us() - start) / 1e6);
	rpc_server_destroy(srv);
	queue_destroy(q);
	metrics_destroy(reg);

	/* Churn, at the store level: the cost of taking items at a queue's head
	 * before and after `churn` items went through it. */
	snprintf(db, sizeof(db), "%s/churn", dir);
	struct queue_store_options sopt = {
	        .dir = db, .max_depth_tenant = 100000000, .max_depth_total = 100000000};
	struct queue_store *st;
	if (queue_store_open(&sopt, &st) != 0)
		return 1;
	store_fill(st, 2000);
	double before = store_drain(st, 2000, 100);
	int64_t c0 = util_mono_us();
	for (long done = 0; done < churn; done += 1000) {
		store_fill(st, 1000);
		store_drain(st, 1000, 1000);
	}
	double churn_s = (double)(util_mono_us() - c0) / 1e6;
	store_fill(st, 2000);
	double after = store_drain(st, 2000, 100);
	queue_store_close(st);

	printf("%-44s %12s %9s %9s\n", "", "items/s", "p50 ms", "p99 ms");
	printf("%-44s %12.0f %9.2f %9.2f\n", "raw RocksDB synced batches, 1 writer", r1,
	       lat_pct(&raw1, 0.5), lat_pct(&raw1, 0.99));
	char label[64];
	snprintf(label, sizeof(label), "raw RocksDB synced batches, %d writers", producers);
	printf("%-44s %12.0f %9.2f %9.2f\n", label, rn, lat_pct(&rawn, 0.5), lat_pct(&rawn, 0.99));
	snprintf(label, sizeof(label), "service Enqueue, %d producers (RPC)", producers);
	printf("%-44s %12.0f %9.2f %9.2f\n", label, se, lat_pct(&svc, 0.5), lat_pct(&svc, 0.99));
	printf("%-44s %12.0f\n", "service Lease(100)+Ack, 4 consumers (RPC)", sl);
	printf("\nservice enqueue / raw synced batches (1 writer): %.2fx  (target >= 0.70x: %s)\n",
	       r1 > 0 ? se / r1 : 0, r1 > 0 && se / r1 >= 0.7 ? "met" : "NOT MET");
	printf("service enqueue / raw with %d concurrent writers (RocksDB's own group commit): "
	       "%.2fx\n",
	       producers, rn > 0 ? se / rn : 0);
	if (failed > 0)
		printf("enqueue calls failed: %ld\n", failed);
	if (writes > 0)
		printf("service group commit: %.0f synced writes, %.0f items each, %.2f ms each, "
		       "writer busy %.0f%% of the time\n",
		       writes, wops / writes, 1000.0 * wsec / writes, 100.0 * wsec / el_enq);
	printf("\ndequeue cost (store take: read + lease bookkeeping, per item, excluding the "
	       "synced write)\n");
	printf("  before churn: %8.2f us\n", before);
	printf("  after %ld items churned (%.1f s, %.0f items/s): %8.2f us  (%.2fx)\n", churn,
	       churn_s, churn_s > 0 ? (double)churn / churn_s : 0, after,
	       before > 0 ? after / before : 0);

	free(raw1.v);
	free(rawn.v);
	free(svc.v);
	free(pa);
	free(pt);
	free(blob);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return 0;
}
