#include "qclient.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testrpc.h"
#include "testutil.h"
#include "util.h"

void qfx_start(struct qfx *f)
{
	char db[300];
	snprintf(db, sizeof(db), "%s/db", f->dir);
	f->cfg.data_dir = db;
	cr_assert_eq(queue_create(&f->cfg, &f->q), 0);
	f->cfg.data_dir = NULL;
	struct rpc_server_options so = {.name = "queue", .workers = 8};
	cr_assert_eq(rpc_server_create(&so, &f->srv), 0);
	cr_assert_eq(rpc_server_add(f->srv, queue_service(f->q)), 0);
	cr_assert_eq(rpc_server_listen(f->srv, f->url), 0);
	cr_assert_eq(rpc_server_start(f->srv), 0);
	struct rpc_client_options co = {.caller = "test", .connect_wait_ms = 5000};
	cr_assert_eq(rpc_client_create(f->url, &co, &f->cli), 0);
}

void qfx_setup(struct qfx *f, const struct queue_config *cfg)
{
	memset(f, 0, sizeof(*f));
	testutil_tempdir(f->dir, sizeof(f->dir));
	snprintf(f->url, sizeof(f->url), "ipc://%s/q.sock", f->dir);
	if (cfg != NULL)
		f->cfg = *cfg;
	qfx_start(f);
}

void qfx_stop(struct qfx *f)
{
	rpc_client_destroy(f->cli);
	rpc_server_destroy(f->srv);
	queue_destroy(f->q);
	f->cli = NULL;
	f->srv = NULL;
	f->q = NULL;
}

void qfx_teardown(struct qfx *f)
{
	qfx_stop(f);
	testutil_rmtree(f->dir);
	/* nng frees closed listeners, dialers and pipes on its reaper thread
	 * after nng_close returned; a test process that exits at once can beat
	 * it, and LeakSanitizer then reports them (rarely). nng_fini would wait,
	 * but it also closes Criterion's own nng pipe. A moment for the reaper
	 * makes the report rarer; it does not rule it out. */
	util_sleep_ms(50);
}

int qcall(struct rpc_client *c, const char *method, const ProtobufCMessage *in, const char *tenant,
          ProtobufCMessage **out, char **err)
{
	struct rpc_call_options o = {.tenant = tenant};
	return testrpc_call(c, &noetl__queue__descriptor, method, in, &o, out, err);
}

int qenqueue(struct rpc_client *c, const struct qitem *items, size_t n, Noetl__EnqueueReply **out)
{
	Noetl__Item *it = calloc(n + 1, sizeof(*it));
	Noetl__Item **pt = calloc(n + 1, sizeof(*pt));
	Noetl__RetryPolicy *rp = calloc(n + 1, sizeof(*rp));
	for (size_t i = 0; i < n; i++) {
		noetl__item__init(&it[i]);
		it[i].tenant = (char *)(items[i].tenant ? items[i].tenant : "");
		it[i].queue = (char *)(items[i].queue ? items[i].queue : "q");
		it[i].id = (char *)(items[i].id ? items[i].id : "");
		it[i].idempotency_key = (char *)(items[i].idem ? items[i].idem : "");
		it[i].not_before_ms = items[i].not_before_ms;
		const char *p = items[i].payload ? items[i].payload : "payload";
		it[i].payload.data = (uint8_t *)p;
		it[i].payload.len = strlen(p);
		if (items[i].max_attempts || items[i].base_ms || items[i].max_ms ||
		    items[i].jitter) {
			noetl__retry_policy__init(&rp[i]);
			rp[i].max_attempts = items[i].max_attempts;
			rp[i].backoff_base_ms = items[i].base_ms;
			rp[i].backoff_max_ms = items[i].max_ms;
			rp[i].jitter_percent = items[i].jitter;
			it[i].retry = &rp[i];
		}
		pt[i] = &it[i];
	}
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.n_items = n;
	req.items = pt;
	ProtobufCMessage *m = NULL;
	int st = qcall(c, "Enqueue", &req.base, NULL, &m, NULL);
	if (out != NULL)
		*out = (Noetl__EnqueueReply *)m;
	else if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	free(it);
	free(pt);
	free(rp);
	return st;
}

void qput(struct rpc_client *c, const char *tenant, const char *queue, const char *id)
{
	struct qitem it = {.tenant = tenant, .queue = queue, .id = id};
	cr_assert_eq(qenqueue(c, &it, 1, NULL), 0, "enqueue of '%s' failed", id);
}

Noetl__LeaseReply *qlease(struct rpc_client *c, uint32_t max, uint32_t lease_ms, uint32_t wait_ms,
                          const char *tenant)
{
	Noetl__LeaseRequest req = NOETL__LEASE_REQUEST__INIT;
	req.max_items = max;
	req.lease_ms = lease_ms;
	req.wait_ms = wait_ms;
	req.tenant = (char *)(tenant ? tenant : "");
	ProtobufCMessage *m = NULL;
	char *err = NULL;
	int st = qcall(c, "Lease", &req.base, NULL, &m, &err);
	cr_assert_eq(st, 0, "lease failed: %s", err ? err : "");
	free(err);
	return (Noetl__LeaseReply *)m;
}

int qack(struct rpc_client *c, const Noetl__Leased *l)
{
	Noetl__AckEntry e = NOETL__ACK_ENTRY__INIT;
	e.lease = l->lease;
	Noetl__AckEntry *ep = &e;
	Noetl__AckRequest req = NOETL__ACK_REQUEST__INIT;
	req.n_entries = 1;
	req.entries = &ep;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(c, "Ack", &req.base, NULL, &m, NULL), 0);
	Noetl__AckReply *r = (Noetl__AckReply *)m;
	cr_assert_eq(r->n_results, 1);
	int st = r->results[0]->status;
	noetl__ack_reply__free_unpacked(r, NULL);
	return st;
}

void qack_all(struct rpc_client *c, const Noetl__LeaseReply *r)
{
	for (size_t i = 0; i < r->n_items; i++)
		cr_assert_eq(qack(c, r->items[i]), 0);
}

int qnack_entry(struct rpc_client *c, Noetl__NackEntry *e, Noetl__AckReply **out)
{
	Noetl__NackRequest req = NOETL__NACK_REQUEST__INIT;
	req.n_entries = 1;
	req.entries = &e;
	ProtobufCMessage *m = NULL;
	int st = qcall(c, "Nack", &req.base, NULL, &m, NULL);
	if (st == NOETL__STATUS__OK)
		*out = (Noetl__AckReply *)m;
	return st;
}

Noetl__AckReply *qnack(struct rpc_client *c, const Noetl__Leased *l, const char *reason, bool dead)
{
	Noetl__NackEntry e = NOETL__NACK_ENTRY__INIT;
	e.lease = l->lease;
	e.reason = (char *)reason;
	e.dead = dead;
	Noetl__AckReply *r = NULL;
	cr_assert_eq(qnack_entry(c, &e, &r), 0);
	return r;
}

bool qstats(struct rpc_client *c, const char *tenant, const char *queue, Noetl__QueueStats *out)
{
	Noetl__StatsRequest req = NOETL__STATS_REQUEST__INIT;
	req.tenant = (char *)tenant;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(c, "Stats", &req.base, NULL, &m, NULL), 0);
	Noetl__StatsReply *r = (Noetl__StatsReply *)m;
	bool found = false;
	for (size_t i = 0; i < r->n_queues; i++) {
		if (strcmp(r->queues[i]->queue, queue) == 0 &&
		    strcmp(r->queues[i]->tenant, tenant) == 0) {
			*out = *r->queues[i];
			out->tenant = NULL;
			out->queue = NULL;
			found = true;
		}
	}
	noetl__stats_reply__free_unpacked(r, NULL);
	return found;
}
