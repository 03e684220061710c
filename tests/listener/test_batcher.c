/*
 * The batcher against the real Queue (its own RocksDB in a temporary
 * directory, served by a real rpc server): batched jobs each get their own
 * fate, a tenant over its depth limit fails alone, an item the Queue refuses
 * fails only its own request, and an unreachable Queue fails everything with
 * UNAVAILABLE.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batcher.h"
#include "queue.h"
#include "queue.pb-c.h"
#include "rpc.h"
#include "testutil.h"
#include "util.h"

/* Items one tenant may hold; tenant "full" is filled to it in setup. */
#define DEPTH 32

static char dir[256], url[300];
static struct queue *queue;
static struct rpc_server *server;
static struct rpc_client *client;

/* Fills tenant "full" to its depth limit, so that the Queue refuses it
 * with RESOURCE_EXHAUSTED. */
static void fill(void)
{
	Noetl__Item items[DEPTH], *ptrs[DEPTH];
	for (int i = 0; i < DEPTH; i++) {
		noetl__item__init(&items[i]);
		items[i].tenant = "full";
		items[i].queue = "q";
		ptrs[i] = &items[i];
	}
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.items = ptrs;
	req.n_items = DEPTH;
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = rpc_invoke_local(queue_service(queue), "Enqueue", &req.base, NULL, &out, &err);
	cr_assert_eq(st, 0, "Enqueue: %s", err != NULL ? err : "");
	free(err);
	protobuf_c_message_free_unpacked(out, NULL);
}

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	char path[300];
	snprintf(path, sizeof(path), "%s/queue", dir);
	struct queue_config qc = {.data_dir = path, .max_depth_tenant = DEPTH};
	cr_assert_eq(queue_create(&qc, &queue), 0);
	fill();
	snprintf(url, sizeof(url), "inproc://batcher-queue-%d", (int)getpid());
	struct rpc_server_options o = {.workers = 4, .name = "queue"};
	cr_assert_eq(rpc_server_create(&o, &server), 0);
	cr_assert_eq(rpc_server_add(server, queue_service(queue)), 0);
	cr_assert_eq(rpc_server_listen(server, url), 0);
	cr_assert_eq(rpc_server_start(server), 0);
	struct rpc_client_options co = {.connect_wait_ms = 500};
	cr_assert_eq(rpc_client_create(url, &co, &client), 0);
}

static void teardown(void)
{
	rpc_client_destroy(client);
	rpc_server_destroy(server);
	queue_destroy(queue);
	testutil_rmtree(dir);
}

TestSuite(batcher, .init = setup, .fini = teardown, .timeout = 60);

/* One request: its items, and what the batcher said. */
struct req {
	struct listener_batch_job job; /* first */
	Noetl__Item items[3];
	Noetl__Item *ptrs[3];
	char ids[3][UTIL_ID_SIZE];
	char tenant[16];
	int status; /* -1 until done */
	char got[3][UTIL_ID_SIZE];
};

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

static void on_done(struct listener_batch_job *job, int status, const char *msg,
                    Noetl__EnqueueResult *const *results)
{
	(void)msg;
	struct req *r = (struct req *)job;
	pthread_mutex_lock(&done_mu);
	for (size_t i = 0; status == 0 && i < r->job.n; i++)
		snprintf(r->got[i], sizeof(r->got[i]), "%s", results[i]->id);
	r->status = status;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&done_mu);
}

static void make(struct req *r, const char *tenant, size_t n, const char *payload)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
	for (size_t i = 0; i < n; i++) {
		noetl__item__init(&r->items[i]);
		util_new_id(r->ids[i]);
		r->items[i].tenant = r->tenant;
		/* the Queue refuses a bad queue name with INVALID_ARGUMENT */
		r->items[i].queue = strcmp(payload, "bad") == 0 ? "not a queue name!" : "q";
		r->items[i].id = r->ids[i];
		r->items[i].payload.data = (uint8_t *)payload;
		r->items[i].payload.len = strlen(payload);
		r->ptrs[i] = &r->items[i];
	}
	r->job.items = r->ptrs;
	r->job.n = n;
	r->job.tenant = r->tenant;
	r->job.done = on_done;
	r->status = -1;
}

static void wait_all(struct req *v, size_t n)
{
	pthread_mutex_lock(&done_mu);
	for (size_t i = 0; i < n; i++)
		while (v[i].status < 0)
			pthread_cond_wait(&done_cv, &done_mu);
	pthread_mutex_unlock(&done_mu);
}

Test(batcher, each_request_of_a_batch_gets_its_own_fate)
{
	struct listener_batcher *b;
	/* one sender that waits for company: the jobs go in few calls */
	struct listener_batcher_options o = {.queue = client, .senders = 1, .linger_us = 200000};
	cr_assert_eq(listener_batcher_create(&o, &b), 0);
	static struct req v[6];
	const char *tenants[] = {"a", "full", "b", "a", "b", "full"};
	const char *payloads[] = {"x", "x", "bad", "y", "z", "x"};
	for (int i = 0; i < 6; i++) {
		make(&v[i], tenants[i], i % 3 + 1, payloads[i]);
		cr_assert_eq(listener_batcher_submit(b, &v[i].job), 0);
	}
	wait_all(v, 6);
	int want[] = {0, NOETL__STATUS__RESOURCE_EXHAUSTED, NOETL__STATUS__INVALID_ARGUMENT, 0,
	              0, NOETL__STATUS__RESOURCE_EXHAUSTED};
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(v[i].status, want[i], "request %d: %s", i,
		             rpc_status_name(v[i].status));
		for (size_t k = 0; want[i] == 0 && k < v[i].job.n; k++)
			cr_assert_str_eq(v[i].got[k], v[i].ids[k], "request %d item %zu", i, k);
	}
	struct listener_batcher_stats st;
	listener_batcher_stats(b, &st);
	cr_assert_eq(st.pending, 0);
	listener_batcher_destroy(b);
}

Test(batcher, concurrent_jobs_share_calls)
{
	struct listener_batcher *b;
	struct listener_batcher_options o = {.queue = client, .senders = 1, .linger_us = 200000};
	cr_assert_eq(listener_batcher_create(&o, &b), 0);
	static struct req v[20];
	for (int i = 0; i < 20; i++) {
		make(&v[i], "a", 1, "x");
		cr_assert_eq(listener_batcher_submit(b, &v[i].job), 0);
	}
	wait_all(v, 20);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(v[i].status, 0);
	/* fewer calls than items: some call carried several jobs */
	struct listener_batcher_stats st;
	listener_batcher_stats(b, &st);
	cr_assert_eq(st.items, 20);
	cr_assert_lt(st.calls, 20, "20 jobs took %llu calls", (unsigned long long)st.calls);
	listener_batcher_destroy(b);
}

Test(batcher, an_unreachable_queue_fails_every_job_with_unavailable)
{
	rpc_server_destroy(server);
	server = NULL;
	struct listener_batcher *b;
	struct listener_batcher_options o = {.queue = client, .call_timeout_ms = 2000};
	cr_assert_eq(listener_batcher_create(&o, &b), 0);
	static struct req v[3];
	for (int i = 0; i < 3; i++) {
		make(&v[i], i == 1 ? "full" : "a", 1, "x");
		cr_assert_eq(listener_batcher_submit(b, &v[i].job), 0);
	}
	wait_all(v, 3);
	for (int i = 0; i < 3; i++)
		cr_assert(v[i].status == NOETL__STATUS__UNAVAILABLE ||
		                  v[i].status == NOETL__STATUS__DEADLINE_EXCEEDED,
		          "%s", rpc_status_name(v[i].status));
	listener_batcher_destroy(b);
}

Test(batcher, a_full_backlog_refuses_instead_of_growing)
{
	rpc_server_destroy(server);
	server = NULL;
	struct listener_batcher *b;
	/* nothing answers, so submitted items stay pending */
	struct listener_batcher_options o = {
	        .queue = client, .senders = 1, .max_pending = 4, .call_timeout_ms = 2000};
	cr_assert_eq(listener_batcher_create(&o, &b), 0);
	static struct req v[8];
	int accepted = 0, refused = 0;
	for (int i = 0; i < 8; i++) {
		make(&v[i], "a", 3, "x");
		int rv = listener_batcher_submit(b, &v[i].job);
		if (rv == 0)
			accepted++;
		else {
			cr_assert_eq(rv, -EAGAIN);
			v[i].status = 0; /* never submitted */
			refused++;
		}
	}
	cr_assert_gt(refused, 0);
	wait_all(v, 8);
	struct listener_batcher_stats st;
	listener_batcher_stats(b, &st);
	cr_assert_eq(st.refused, (uint64_t)refused);
	cr_assert_gt(accepted, 0);
	listener_batcher_destroy(b);
}
