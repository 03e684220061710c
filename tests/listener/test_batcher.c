/*
 * The batcher against a scripted Queue over a real rpc server: batched jobs
 * each get their own fate, a tenant over its limit fails alone, an item the
 * Queue refuses fails only its own request, and an unreachable Queue fails
 * everything with UNAVAILABLE.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "rpc.h"
#include "testutil.h"
#include "util.h"

/* A Queue that refuses tenant "full" with RESOURCE_EXHAUSTED and payload
 * "bad" with INVALID_ARGUMENT, else answers each item with its id. */
struct fakeq {
	Noetl__Queue_Service svc; /* first */
	pthread_mutex_t mu;
	int calls;
	int max_items; /* largest call seen */
};

static void h_enqueue(Noetl__Queue_Service *svc, const Noetl__EnqueueRequest *in,
                      Noetl__EnqueueReply_Closure done, void *call)
{
	struct fakeq *q = (struct fakeq *)svc;
	pthread_mutex_lock(&q->mu);
	q->calls++;
	if ((int)in->n_items > q->max_items)
		q->max_items = (int)in->n_items;
	pthread_mutex_unlock(&q->mu);
	for (size_t i = 0; i < in->n_items; i++) {
		if (strcmp(in->items[i]->tenant, "full") == 0) {
			rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "tenant 'full' is full");
			done(NULL, call);
			return;
		}
		if (in->items[i]->payload.len == 3 &&
		    memcmp(in->items[i]->payload.data, "bad", 3) == 0) {
			rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "items[%zu]: bad payload",
			         i);
			done(NULL, call);
			return;
		}
	}
	Noetl__EnqueueResult *res = calloc(in->n_items, sizeof(*res));
	Noetl__EnqueueResult **rp = calloc(in->n_items, sizeof(*rp));
	for (size_t i = 0; i < in->n_items; i++) {
		noetl__enqueue_result__init(&res[i]);
		res[i].id = in->items[i]->id;
		rp[i] = &res[i];
	}
	Noetl__EnqueueReply rep = NOETL__ENQUEUE_REPLY__INIT;
	rep.results = rp;
	rep.n_results = in->n_items;
	done(&rep, call);
	free(res);
	free(rp);
}

#define UNIMPL(name, In, Closure)                                                                  \
	static void h_##name(Noetl__Queue_Service *svc, const In *in, Closure done, void *call)    \
	{                                                                                          \
		(void)svc;                                                                         \
		(void)in;                                                                          \
		rpc_fail(call, NOETL__STATUS__UNIMPLEMENTED, "not in this fake");                  \
		done(NULL, call);                                                                  \
	}
UNIMPL(lease, Noetl__LeaseRequest, Noetl__LeaseReply_Closure)
UNIMPL(ack, Noetl__AckRequest, Noetl__AckReply_Closure)
UNIMPL(nack, Noetl__NackRequest, Noetl__AckReply_Closure)
UNIMPL(extend, Noetl__ExtendRequest, Noetl__AckReply_Closure)
UNIMPL(stats, Noetl__StatsRequest, Noetl__StatsReply_Closure)
UNIMPL(dead_list, Noetl__DeadListRequest, Noetl__DeadListReply_Closure)
UNIMPL(dead_replay, Noetl__DeadRequest, Noetl__DeadReply_Closure)
UNIMPL(dead_purge, Noetl__DeadRequest, Noetl__DeadReply_Closure)
UNIMPL(get_health, Noetl__Empty, Noetl__Health_Closure)

static char dir[256], url[300];
static struct fakeq fq = {.svc = NOETL__QUEUE__INIT(h_)};
static struct rpc_server *server;
static struct rpc_client *client;

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	snprintf(url, sizeof(url), "ipc://%s/q.sock", dir);
	pthread_mutex_init(&fq.mu, NULL);
	fq.calls = fq.max_items = 0;
	struct rpc_server_options o = {.workers = 4};
	cr_assert_eq(rpc_server_create(&o, &server), 0);
	cr_assert_eq(rpc_server_add(server, &fq.svc.base), 0);
	cr_assert_eq(rpc_server_listen(server, url), 0);
	cr_assert_eq(rpc_server_start(server), 0);
	struct rpc_client_options co = {.connect_wait_ms = 500};
	cr_assert_eq(rpc_client_create(url, &co, &client), 0);
}

static void teardown(void)
{
	rpc_client_destroy(client);
	rpc_server_destroy(server);
	pthread_mutex_destroy(&fq.mu);
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
		r->items[i].queue = "q";
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
	pthread_mutex_lock(&fq.mu);
	int calls = fq.calls, max = fq.max_items;
	pthread_mutex_unlock(&fq.mu);
	cr_assert_lt(calls, 20, "20 jobs took %d calls", calls);
	cr_assert_gt(max, 1);
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
