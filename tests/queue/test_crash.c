/*
 * The crash test: a load client enqueues, leases and acks against the real
 * noetl-queue process while it is killed with SIGKILL at random moments and
 * restarted. At the end every enqueue that was acknowledged is either acked
 * or still in the queue, and no item whose ack was acknowledged comes back.
 *
 * Items carry their id as idempotency key, so the client can retry an
 * enqueue whose reply was lost without creating a second item.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "qclient.h"
#include "testutil.h"
#include "util.h"

#define RUN_MS    20000 /* of load with kills */
#define BATCH     20    /* items per enqueue */
#define MAX_ITEMS 400000

enum { UNSENT, UNKNOWN, ACCEPTED };

static char dir[256], url[320], bin[512], db[300], logf[300];
static pid_t server;
static uint8_t *state; /* per item id: UNSENT, UNKNOWN, ACCEPTED */
static uint8_t *acked; /* per item id: its ack was acknowledged */
static uint8_t *maybe; /* per item id: an ack whose outcome is unknown (the call
                          failed, or said NOT_FOUND: a resent ack of a lease the
                          killed server had already ended, or an expired lease) */
static atomic_bool stop_load;
static atomic_int violations; /* acked items leased again */
static int first_violation = -1;

static void start_server(void)
{
	char *argv[] = {bin, "--data-dir",  db,     "--listen", url, "--http",
	                "",  "--log.level", "warn", NULL};
	server = testutil_spawn(argv, logf);
}

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	snprintf(url, sizeof(url), "ipc://%s/q.sock", dir);
	snprintf(db, sizeof(db), "%s/db", dir);
	snprintf(logf, sizeof(logf), "%s/queue.log", dir);
	testutil_build_path("src/queue/noetl-queue", bin, sizeof(bin));
	state = calloc(MAX_ITEMS, 1);
	acked = calloc(MAX_ITEMS, 1);
	maybe = calloc(MAX_ITEMS, 1);
	start_server();
}

static void teardown(void)
{
	if (server > 0)
		testutil_kill(server, SIGKILL);
	free(state);
	free(acked);
	free(maybe);
	testutil_rmtree(dir);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 240);

static int item_index(const char *id)
{
	int n = -1;
	if (sscanf(id, "c%d", &n) != 1 || n < 0 || n >= MAX_ITEMS)
		return -1;
	return n;
}

/* Enqueues items [first, first+BATCH) until acknowledged or told to stop. */
static void enqueue_batch(struct rpc_client *c, int first)
{
	struct qitem items[BATCH];
	char ids[BATCH][16];
	for (int i = 0; i < BATCH; i++) {
		snprintf(ids[i], sizeof(ids[i]), "c%d", first + i);
		items[i] = (struct qitem){.tenant = "acme",
		                          .queue = i % 3 ? "a" : "b",
		                          .id = ids[i],
		                          .idem = ids[i],
		                          .max_attempts = 100};
		state[first + i] = UNKNOWN;
	}
	while (!atomic_load(&stop_load)) {
		if (qenqueue(c, items, BATCH, NULL) == 0) {
			for (int i = 0; i < BATCH; i++)
				state[first + i] = ACCEPTED;
			return;
		}
		util_sleep_ms(20);
	}
}

/* Leases up to 30 items and acks them in one call. */
static void lease_and_ack(struct rpc_client *c)
{
	Noetl__LeaseRequest lr = NOETL__LEASE_REQUEST__INIT;
	lr.max_items = 30;
	lr.lease_ms = 1000;
	ProtobufCMessage *m = NULL;
	if (qcall(c, "Lease", &lr.base, NULL, &m, NULL) != 0)
		return;
	Noetl__LeaseReply *r = (Noetl__LeaseReply *)m;
	size_t n = r->n_items;
	Noetl__AckEntry *e = calloc(n + 1, sizeof(*e));
	Noetl__AckEntry **ep = calloc(n + 1, sizeof(*ep));
	for (size_t i = 0; i < n; i++) {
		int k = item_index(r->items[i]->item->id);
		if (k >= 0 && acked[k]) {
			if (atomic_fetch_add(&violations, 1) == 0)
				first_violation = k;
		}
		noetl__ack_entry__init(&e[i]);
		e[i].lease = r->items[i]->lease;
		ep[i] = &e[i];
	}
	Noetl__AckRequest ar = NOETL__ACK_REQUEST__INIT;
	ar.n_entries = n;
	ar.entries = ep;
	if (n > 0 && qcall(c, "Ack", &ar.base, NULL, &m, NULL) == 0) {
		Noetl__AckReply *a = (Noetl__AckReply *)m;
		for (size_t i = 0; i < a->n_results && i < n; i++) {
			int k = item_index(r->items[i]->item->id);
			if (k >= 0 && a->results[i]->status == NOETL__STATUS__OK)
				acked[k] = 1;
			else if (k >= 0)
				maybe[k] = 1;
		}
		noetl__ack_reply__free_unpacked(a, NULL);
	} else {
		for (size_t i = 0; i < n; i++) {
			int k = item_index(r->items[i]->item->id);
			if (k >= 0)
				maybe[k] = 1;
		}
	}
	free(e);
	free(ep);
	noetl__lease_reply__free_unpacked(r, NULL);
}

struct load {
	int next; /* next item id */
	int rounds;
};

static void *load_main(void *arg)
{
	struct load *l = arg;
	struct rpc_client_options co = {.caller = "crash-test", .connect_wait_ms = 3000};
	struct rpc_client *c = NULL;
	cr_assert_eq(rpc_client_create(url, &co, &c), 0);
	while (!atomic_load(&stop_load) && l->next + BATCH <= MAX_ITEMS) {
		enqueue_batch(c, l->next);
		l->next += BATCH;
		lease_and_ack(c);
		l->rounds++;
	}
	rpc_client_destroy(c);
	return NULL;
}

Test(crash, acknowledged_work_survives_sigkill_and_acked_items_never_come_back)
{
	struct load l = {0, 0};
	pthread_t t;
	pthread_create(&t, NULL, load_main, &l);
	int kills = 0;
	int64_t end = util_mono_ms() + RUN_MS;
	while (util_mono_ms() < end) {
		util_sleep_ms(300 + (int64_t)util_random_below(1200));
		testutil_kill(server, SIGKILL);
		kills++;
		util_sleep_ms((int64_t)util_random_below(200));
		start_server();
	}
	atomic_store(&stop_load, true);
	pthread_join(t, NULL);

	/* Drain: once the last leases (1 s) ran out, everything left is ready. */
	struct rpc_client_options co = {.caller = "crash-test", .connect_wait_ms = 5000};
	struct rpc_client *c = NULL;
	cr_assert_eq(rpc_client_create(url, &co, &c), 0);
	uint8_t *present = calloc(MAX_ITEMS, 1);
	int empty = 0, drained = 0, came_back = 0, unknown_ids = 0;
	while (empty < 3) {
		Noetl__LeaseRequest lr = NOETL__LEASE_REQUEST__INIT;
		lr.max_items = 500;
		lr.lease_ms = 120000;
		lr.wait_ms = 1500;
		ProtobufCMessage *m = NULL;
		cr_assert_eq(qcall(c, "Lease", &lr.base, NULL, &m, NULL), 0);
		Noetl__LeaseReply *r = (Noetl__LeaseReply *)m;
		empty = r->n_items == 0 ? empty + 1 : 0;
		for (size_t i = 0; i < r->n_items; i++) {
			int k = item_index(r->items[i]->item->id);
			if (k < 0 || k >= l.next) {
				unknown_ids++;
				continue;
			}
			came_back += acked[k];
			present[k] = 1;
			drained++;
		}
		noetl__lease_reply__free_unpacked(r, NULL);
	}
	/* Dead letters count as present (none are expected: 100 attempts). */
	Noetl__DeadListRequest dl = NOETL__DEAD_LIST_REQUEST__INIT;
	dl.tenant = "acme";
	Noetl__Page page = NOETL__PAGE__INIT;
	page.limit = 1000;
	dl.page = &page;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(c, "DeadList", &dl.base, NULL, &m, NULL), 0);
	Noetl__DeadListReply *d = (Noetl__DeadListReply *)m;
	for (size_t i = 0; i < d->n_items; i++) {
		int k = item_index(d->items[i]->id);
		if (k >= 0)
			present[k] = 1;
	}
	size_t dead = d->n_items;
	noetl__dead_list_reply__free_unpacked(d, NULL);
	rpc_client_destroy(c);

	int accepted = 0, nacked = 0, nmaybe = 0, lost = 0, first_lost = -1;
	for (int k = 0; k < l.next; k++) {
		accepted += state[k] == ACCEPTED;
		nacked += acked[k];
		nmaybe += maybe[k] && !acked[k];
		if (state[k] == ACCEPTED && !acked[k] && !maybe[k] && !present[k]) {
			if (lost++ == 0)
				first_lost = k;
		}
	}
	fprintf(stderr,
	        "crash: %d kills, %d rounds, %d items sent, %d accepted, %d acked, %d acks "
	        "unknown, %d left, %zu dead\n",
	        kills, l.rounds, l.next, accepted, nacked, nmaybe, drained, dead);
	free(present);

	/* A clean stop exits 0 (under ASan: no leaks). */
	int st = testutil_kill(server, SIGTERM);
	server = 0;
	char *log = testutil_read_file(logf, NULL);
	if (lost > 0 || came_back > 0 || violations > 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "--- noetl-queue log ---\n%s\n", log != NULL ? log : "(none)");
	free(log);

	cr_assert_gt(kills, 5);
	cr_assert_gt(nacked, 100, "the load made no progress");
	cr_assert_eq(lost, 0, "%d acknowledged enqueues are gone (first: c%d)", lost, first_lost);
	cr_assert_eq(came_back, 0, "%d acked items were still in the queue", came_back);
	cr_assert_eq(violations, 0, "%d acked items were leased again (first: c%d)",
	             (int)violations, first_violation);
	cr_assert_eq(unknown_ids, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "noetl-queue did not stop cleanly: %d",
	          st);
}
