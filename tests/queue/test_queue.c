/*
 * The Queue service over a real socket (ipc://) with a real RocksDB: order,
 * leases, acks with follow-ups, retries, dead letters, idempotency,
 * fairness, limits, delays and restarts.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "metrics.h"
#include "qclient.h"
#include "store.h"
#include "testutil.h"
#include "util.h"

static struct qfx fx;

static void setup(void)
{
	qfx_setup(&fx, NULL);
}

static void teardown(void)
{
	qfx_teardown(&fx);
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 60);

/* Starts the fixture with a configuration (the suite's default one is
 * replaced). */
static void restart_with(const struct queue_config *cfg)
{
	qfx_stop(&fx);
	fx.cfg = *cfg;
	qfx_start(&fx);
}

static void free_lease(Noetl__LeaseReply *r)
{
	noetl__lease_reply__free_unpacked(r, NULL);
}

Test(queue, items_of_one_queue_are_leased_in_the_order_they_were_enqueued)
{
	char id[32];
	for (int b = 0; b < 5; b++) {
		struct qitem items[10];
		char ids[10][32];
		for (int i = 0; i < 10; i++) {
			snprintf(ids[i], sizeof(ids[i]), "e%03d", b * 10 + i);
			items[i] =
			        (struct qitem){.tenant = "acme", .queue = "orders", .id = ids[i]};
		}
		cr_assert_eq(qenqueue(fx.cli, items, 10, NULL), 0);
	}
	int next = 0;
	while (next < 50) {
		Noetl__LeaseReply *r = qlease(fx.cli, 7, 10000, 0, NULL);
		cr_assert_gt(r->n_items, 0, "only %d of 50 items were leased", next);
		for (size_t i = 0; i < r->n_items; i++) {
			snprintf(id, sizeof(id), "e%03d", next++);
			cr_assert_str_eq(r->items[i]->item->id, id);
			cr_assert_str_eq(r->items[i]->item->tenant, "acme");
			cr_assert_str_eq(r->items[i]->item->queue, "orders");
			cr_assert_eq(r->items[i]->item->attempt, 1);
		}
		qack_all(fx.cli, r);
		free_lease(r);
	}
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "orders", &st));
	cr_assert_eq(st.ready, 0);
	cr_assert_eq(st.leased, 0);
	cr_assert_eq(st.enqueued, 50);
	cr_assert_eq(st.acked, 50);
}

Test(queue, a_leased_item_is_invisible_to_other_leases)
{
	qput(fx.cli, "acme", "q", "only");
	Noetl__LeaseReply *a = qlease(fx.cli, 10, 30000, 0, NULL);
	cr_assert_eq(a->n_items, 1);
	Noetl__LeaseReply *b = qlease(fx.cli, 10, 30000, 0, NULL);
	cr_assert_eq(b->n_items, 0);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.ready, 0);
	cr_assert_eq(st.leased, 1);
	free_lease(a);
	free_lease(b);
}

Test(queue, an_expired_lease_makes_the_item_ready_again_with_the_expiry_in_its_history)
{
	qput(fx.cli, "acme", "q", "x1");
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 200, 0, NULL);
	cr_assert_eq(a->n_items, 1);
	/* Not acked: after 200 ms it is delivered again. */
	Noetl__LeaseReply *b = qlease(fx.cli, 1, 30000, 10000, NULL);
	cr_assert_eq(b->n_items, 1, "the item did not come back after its lease expired");
	Noetl__Item *it = b->items[0]->item;
	cr_assert_str_eq(it->id, "x1");
	cr_assert_eq(it->attempt, 2);
	cr_assert_eq(it->n_history, 1);
	cr_assert_str_eq(it->history[0]->reason, "lease expired");
	cr_assert_eq(it->history[0]->number, 1);
	/* The first lease is over: its ack finds nothing; the second one's works. */
	cr_assert_eq(qack(fx.cli, a->items[0]), NOETL__STATUS__NOT_FOUND);
	cr_assert_eq(qack(fx.cli, b->items[0]), NOETL__STATUS__OK);
	cr_assert_eq(qack(fx.cli, b->items[0]), NOETL__STATUS__NOT_FOUND);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.expired, 1);
	cr_assert_eq(st.acked, 1);
	cr_assert_eq(st.ready + st.leased + st.delayed, 0);
	free_lease(a);
	free_lease(b);
}

Test(queue, extend_keeps_a_lease_past_its_first_expiry)
{
	qput(fx.cli, "acme", "q", "long");
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 300, 0, NULL);
	cr_assert_eq(a->n_items, 1);
	Noetl__ExtendRequest req = NOETL__EXTEND_REQUEST__INIT;
	req.n_leases = 1;
	req.leases = &a->items[0]->lease;
	req.lease_ms = 60000;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "Extend", &req.base, NULL, &m, NULL), 0);
	Noetl__AckReply *r = (Noetl__AckReply *)m;
	cr_assert_eq(r->results[0]->status, NOETL__STATUS__OK);
	cr_assert_gt(r->results[0]->expires_ms, a->items[0]->expires_ms);
	noetl__ack_reply__free_unpacked(r, NULL);
	/* Past the original expiry nothing is redelivered. */
	Noetl__LeaseReply *b = qlease(fx.cli, 1, 1000, 800, NULL);
	cr_assert_eq(b->n_items, 0);
	cr_assert_eq(qack(fx.cli, a->items[0]), NOETL__STATUS__OK);
	free_lease(a);
	free_lease(b);
}

Test(queue, ack_removes_the_item_and_enqueues_its_follow_ups_in_the_same_write)
{
	qput(fx.cli, "acme", "first", "parent");
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 0, NULL);
	cr_assert_eq(a->n_items, 1);

	Noetl__Item f1 = NOETL__ITEM__INIT, f2 = NOETL__ITEM__INIT;
	f1.queue = "second";
	f1.id = "child-1";
	f2.queue = "third";
	f2.id = "child-2";
	Noetl__Item *fs[2] = {&f1, &f2};
	Noetl__AckEntry e = NOETL__ACK_ENTRY__INIT;
	e.lease = a->items[0]->lease;
	e.n_follow_ups = 2;
	e.follow_ups = fs;
	Noetl__AckEntry *ep = &e;
	Noetl__AckRequest req = NOETL__ACK_REQUEST__INIT;
	req.n_entries = 1;
	req.entries = &ep;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "Ack", &req.base, NULL, &m, NULL), 0);
	cr_assert_eq(((Noetl__AckReply *)m)->results[0]->status, NOETL__STATUS__OK);
	protobuf_c_message_free_unpacked(m, NULL);
	free_lease(a);

	/* Both survive a restart, with their parent gone. */
	qfx_stop(&fx);
	qfx_start(&fx);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "first", &st));
	cr_assert_eq(st.ready + st.leased, 0);
	cr_assert_eq(st.acked, 1);
	Noetl__LeaseReply *b = qlease(fx.cli, 10, 30000, 0, NULL);
	cr_assert_eq(b->n_items, 2);
	for (size_t i = 0; i < 2; i++) {
		cr_assert_str_eq(b->items[i]->item->tenant, "acme");
		cr_assert_str_eq(b->items[i]->item->parent_id, "parent");
	}
	free_lease(b);
}

Test(queue, a_failed_ack_enqueues_none_of_its_follow_ups)
{
	qput(fx.cli, "acme", "first", "parent");
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 0, NULL);
	cr_assert_eq(a->n_items, 1);

	/* A follow-up for another tenant: the whole entry is refused. */
	Noetl__Item f1 = NOETL__ITEM__INIT, f2 = NOETL__ITEM__INIT;
	f1.queue = "second";
	f2.queue = "second";
	f2.tenant = "other";
	Noetl__Item *fs[2] = {&f1, &f2};
	Noetl__AckEntry e = NOETL__ACK_ENTRY__INIT;
	e.lease = a->items[0]->lease;
	e.n_follow_ups = 2;
	e.follow_ups = fs;
	Noetl__AckEntry *ep = &e;
	Noetl__AckRequest req = NOETL__ACK_REQUEST__INIT;
	req.n_entries = 1;
	req.entries = &ep;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "Ack", &req.base, NULL, &m, NULL), 0);
	cr_assert_eq(((Noetl__AckReply *)m)->results[0]->status, NOETL__STATUS__INVALID_ARGUMENT);
	protobuf_c_message_free_unpacked(m, NULL);

	/* An unknown lease: nothing either. */
	uint8_t junk[16] = {0};
	e.lease.data = junk;
	e.n_follow_ups = 1;
	cr_assert_eq(qcall(fx.cli, "Ack", &req.base, NULL, &m, NULL), 0);
	cr_assert_eq(((Noetl__AckReply *)m)->results[0]->status, NOETL__STATUS__NOT_FOUND);
	protobuf_c_message_free_unpacked(m, NULL);

	Noetl__QueueStats st;
	cr_assert_not(qstats(fx.cli, "acme", "second", &st), "a follow-up queue appeared");
	cr_assert(qstats(fx.cli, "acme", "first", &st));
	cr_assert_eq(st.leased, 1);
	cr_assert_eq(st.acked, 0);
	free_lease(a);
}

Test(queue, a_nacked_item_is_retried_after_its_backoff_and_dead_lettered_after_the_last_attempt)
{
	struct qitem it = {.tenant = "acme",
	                   .queue = "q",
	                   .id = "flaky",
	                   .max_attempts = 3,
	                   .base_ms = 300,
	                   .max_ms = 1000,
	                   .jitter = 10};
	cr_assert_eq(qenqueue(fx.cli, &it, 1, NULL), 0);
	int64_t expect[2] = {300, 600}; /* doubling from the base */
	for (uint32_t attempt = 1; attempt <= 3; attempt++) {
		Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 10000, NULL);
		cr_assert_eq(a->n_items, 1, "attempt %u was not delivered", attempt);
		cr_assert_eq(a->items[0]->item->attempt, attempt);
		char reason[32];
		snprintf(reason, sizeof(reason), "trap %u", attempt);
		int64_t before = util_now_ms();
		Noetl__AckReply *r = qnack(fx.cli, a->items[0], reason, false);
		int64_t after = util_now_ms();
		cr_assert_eq(r->results[0]->status, NOETL__STATUS__OK);
		if (attempt < 3) {
			cr_assert_str_eq(r->results[0]->outcome, "retry");
			int64_t at = r->results[0]->retry_at_ms;
			int64_t lo = expect[attempt - 1] * 9 / 10,
			        hi = expect[attempt - 1] * 11 / 10;
			cr_assert(at - before >= lo && at - after <= hi,
			          "retry %u at +%lld ms, expected %lld..%lld", attempt,
			          (long long)(at - before), (long long)lo, (long long)hi);
			/* Not leasable before its time. */
			Noetl__LeaseReply *early = qlease(fx.cli, 1, 30000, 0, NULL);
			if (util_now_ms() < at - 50)
				cr_assert_eq(early->n_items, 0,
				             "a retry came back before its time");
			free_lease(early);
			Noetl__QueueStats st;
			cr_assert(qstats(fx.cli, "acme", "q", &st));
			cr_assert_eq(st.delayed + st.ready, 1);
		} else {
			cr_assert_str_eq(r->results[0]->outcome, "dead");
		}
		noetl__ack_reply__free_unpacked(r, NULL);
		free_lease(a);
	}
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.dead, 1);
	cr_assert_eq(st.failed, 3);
	cr_assert_eq(st.ready + st.leased + st.delayed, 0);

	Noetl__DeadListRequest req = NOETL__DEAD_LIST_REQUEST__INIT;
	req.tenant = "acme";
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "DeadList", &req.base, NULL, &m, NULL), 0);
	Noetl__DeadListReply *d = (Noetl__DeadListReply *)m;
	cr_assert_eq(d->n_items, 1);
	cr_assert_str_eq(d->items[0]->id, "flaky");
	cr_assert_eq(d->items[0]->n_history, 3);
	for (size_t i = 0; i < 3; i++) {
		char reason[32];
		snprintf(reason, sizeof(reason), "trap %zu", i + 1);
		cr_assert_str_eq(d->items[0]->history[i]->reason, reason);
		cr_assert_eq(d->items[0]->history[i]->number, i + 1);
	}
	noetl__dead_list_reply__free_unpacked(d, NULL);
}

Test(queue, backoff_doubles_per_attempt_up_to_its_cap_with_bounded_jitter)
{
	struct queue_retry p = {
	        .max_attempts = 10, .base_ms = 1000, .max_ms = 60000, .jitter_percent = 20};
	cr_assert_eq(queue_store_backoff_ms(&p, 1, 0.5), 1000);
	cr_assert_eq(queue_store_backoff_ms(&p, 2, 0.5), 2000);
	cr_assert_eq(queue_store_backoff_ms(&p, 3, 0.5), 4000);
	cr_assert_eq(queue_store_backoff_ms(&p, 7, 0.5), 60000);
	cr_assert_eq(queue_store_backoff_ms(&p, 50, 0.5), 60000);
	cr_assert_eq(queue_store_backoff_ms(&p, 1, 0.0), 800);
	cr_assert_eq(queue_store_backoff_ms(&p, 1, 0.999999), 1199);
	cr_assert_eq(queue_store_backoff_ms(&p, 60, 1.0), 60000);
}

Test(queue, nack_with_dead_set_dead_letters_at_once)
{
	qput(fx.cli, "acme", "q", "poison");
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 0, NULL);
	Noetl__AckReply *r = qnack(fx.cli, a->items[0], "schema mismatch", true);
	cr_assert_str_eq(r->results[0]->outcome, "dead");
	noetl__ack_reply__free_unpacked(r, NULL);
	/* A second nack of the same lease finds nothing. */
	r = qnack(fx.cli, a->items[0], "again", false);
	cr_assert_eq(r->results[0]->status, NOETL__STATUS__NOT_FOUND);
	noetl__ack_reply__free_unpacked(r, NULL);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.dead, 1);
	free_lease(a);
}

/* Dead-letters n items of tenant/queue with ids prefix0..prefix(n-1). */
static void make_dead(const char *tenant, const char *queue, const char *prefix, int n)
{
	for (int i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof(id), "%s%d", prefix, i);
		qput(fx.cli, tenant, queue, id);
	}
	Noetl__LeaseReply *a = qlease(fx.cli, (uint32_t)n, 30000, 0, tenant);
	cr_assert_eq(a->n_items, (size_t)n);
	for (int i = 0; i < n; i++) {
		Noetl__AckReply *r = qnack(fx.cli, a->items[i], "boom", true);
		noetl__ack_reply__free_unpacked(r, NULL);
	}
	free_lease(a);
}

Test(queue, dead_letters_are_listed_in_pages_replayed_with_fresh_attempts_and_purged)
{
	make_dead("acme", "a", "d", 5);
	make_dead("other", "a", "o", 1);

	/* Pages of two: 2 + 2 + 1, each item once. */
	Noetl__Page page = NOETL__PAGE__INIT;
	page.limit = 2;
	Noetl__DeadListRequest lr = NOETL__DEAD_LIST_REQUEST__INIT;
	lr.tenant = "acme";
	lr.page = &page;
	int seen = 0, pages = 0;
	uint8_t cur[512];
	for (;;) {
		ProtobufCMessage *m = NULL;
		cr_assert_eq(qcall(fx.cli, "DeadList", &lr.base, NULL, &m, NULL), 0);
		Noetl__DeadListReply *d = (Noetl__DeadListReply *)m;
		pages++;
		for (size_t i = 0; i < d->n_items; i++) {
			char id[16];
			snprintf(id, sizeof(id), "d%d", seen++);
			cr_assert_str_eq(d->items[i]->id, id);
			cr_assert_str_eq(d->items[i]->tenant, "acme");
		}
		bool last = d->next_cursor.len == 0;
		cr_assert_leq(d->next_cursor.len, sizeof(cur));
		if (!last)
			memcpy(cur, d->next_cursor.data, d->next_cursor.len);
		page.cursor.data = cur;
		page.cursor.len = d->next_cursor.len;
		noetl__dead_list_reply__free_unpacked(d, NULL);
		if (last)
			break;
	}
	cr_assert_eq(seen, 5);
	cr_assert_eq(pages, 3);

	/* Replay one by id: it is ready again with attempt counting anew. */
	char *ids[1] = {"d3"};
	Noetl__DeadRequest dr = NOETL__DEAD_REQUEST__INIT;
	dr.tenant = "acme";
	dr.n_ids = 1;
	dr.ids = ids;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "DeadReplay", &dr.base, NULL, &m, NULL), 0);
	cr_assert_eq(((Noetl__DeadReply *)m)->count, 1);
	protobuf_c_message_free_unpacked(m, NULL);
	Noetl__LeaseReply *a = qlease(fx.cli, 10, 30000, 0, "acme");
	cr_assert_eq(a->n_items, 1);
	cr_assert_str_eq(a->items[0]->item->id, "d3");
	cr_assert_eq(a->items[0]->item->attempt, 1);
	cr_assert_eq(a->items[0]->item->n_history, 1, "the history is kept");
	qack_all(fx.cli, a);
	free_lease(a);

	/* Purge the rest of acme; the other tenant's stay. */
	dr.n_ids = 0;
	cr_assert_eq(qcall(fx.cli, "DeadPurge", &dr.base, NULL, &m, NULL), 0);
	cr_assert_eq(((Noetl__DeadReply *)m)->count, 4);
	protobuf_c_message_free_unpacked(m, NULL);
	page.cursor.len = 0;
	cr_assert_eq(qcall(fx.cli, "DeadList", &lr.base, NULL, &m, NULL), 0);
	cr_assert_eq(((Noetl__DeadListReply *)m)->n_items, 0);
	protobuf_c_message_free_unpacked(m, NULL);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "other", "a", &st));
	cr_assert_eq(st.dead, 1);
	cr_assert(qstats(fx.cli, "acme", "a", &st));
	cr_assert_eq(st.dead, 0);

	/* A cursor from elsewhere is refused. */
	page.cursor.data = (uint8_t *)"Dother";
	page.cursor.len = 6;
	char *err = NULL;
	cr_assert_eq(qcall(fx.cli, "DeadList", &lr.base, NULL, NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert(strstr(err, "cursor") != NULL, "%s", err);
	free(err);
}

Test(queue, an_enqueue_with_a_seen_idempotency_key_is_a_duplicate_and_adds_nothing)
{
	struct qitem a = {.tenant = "acme", .queue = "q", .id = "first", .idem = "K1"};
	struct qitem b = {.tenant = "acme", .queue = "q", .id = "second", .idem = "K1"};
	Noetl__EnqueueReply *r = NULL;
	cr_assert_eq(qenqueue(fx.cli, &a, 1, &r), 0);
	cr_assert_not(r->results[0]->duplicate);
	noetl__enqueue_reply__free_unpacked(r, NULL);
	cr_assert_eq(qenqueue(fx.cli, &b, 1, &r), 0);
	cr_assert(r->results[0]->duplicate);
	cr_assert_str_eq(r->results[0]->id, "first");
	noetl__enqueue_reply__free_unpacked(r, NULL);

	/* Within one request, and across a restart. */
	struct qitem two[2] = {{.tenant = "acme", .queue = "q", .id = "x", .idem = "K2"},
	                       {.tenant = "acme", .queue = "q", .id = "y", .idem = "K2"}};
	cr_assert_eq(qenqueue(fx.cli, two, 2, &r), 0);
	cr_assert_not(r->results[0]->duplicate);
	cr_assert(r->results[1]->duplicate);
	cr_assert_str_eq(r->results[1]->id, "x");
	noetl__enqueue_reply__free_unpacked(r, NULL);
	qfx_stop(&fx);
	qfx_start(&fx);
	cr_assert_eq(qenqueue(fx.cli, &b, 1, &r), 0);
	cr_assert(r->results[0]->duplicate);
	noetl__enqueue_reply__free_unpacked(r, NULL);

	/* The same key of another tenant is another key. */
	struct qitem c = {.tenant = "other", .queue = "q", .id = "third", .idem = "K1"};
	cr_assert_eq(qenqueue(fx.cli, &c, 1, &r), 0);
	cr_assert_not(r->results[0]->duplicate);
	noetl__enqueue_reply__free_unpacked(r, NULL);

	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.enqueued, 2);
	cr_assert_eq(st.ready, 2);
}

Test(queue, an_idempotency_key_is_forgotten_after_the_retention_window)
{
	struct queue_config cfg = {.idempotency_retention_ms = 1000};
	restart_with(&cfg);
	struct qitem a = {.tenant = "acme", .queue = "q", .id = "first", .idem = "K"};
	Noetl__EnqueueReply *r = NULL;
	cr_assert_eq(qenqueue(fx.cli, &a, 1, NULL), 0);
	util_sleep_ms(2500); /* the retention passes and the cleanup runs (every second) */
	a.id = "again";
	cr_assert_eq(qenqueue(fx.cli, &a, 1, &r), 0);
	cr_assert_not(r->results[0]->duplicate);
	noetl__enqueue_reply__free_unpacked(r, NULL);
}

Test(queue, leases_are_shared_fairly_between_a_busy_tenant_and_a_quiet_one)
{
	/* The busy tenant's backlog was there first. */
	struct qitem items[100];
	for (int b = 0; b < 5; b++) {
		for (int i = 0; i < 100; i++)
			items[i] = (struct qitem){.tenant = "busy", .queue = i % 2 ? "a" : "b"};
		cr_assert_eq(qenqueue(fx.cli, items, 100, NULL), 0);
	}
	for (int i = 0; i < 20; i++)
		items[i] = (struct qitem){.tenant = "quiet", .queue = "q"};
	cr_assert_eq(qenqueue(fx.cli, items, 20, NULL), 0);

	int quiet = 0, leases = 0;
	while (quiet < 20) {
		Noetl__LeaseReply *r = qlease(fx.cli, 10, 30000, 0, NULL);
		int q_here = 0;
		for (size_t i = 0; i < r->n_items; i++)
			q_here += strcmp(r->items[i]->item->tenant, "quiet") == 0;
		cr_assert_eq(r->n_items, 10);
		cr_assert_eq(q_here, 5, "lease %d gave the quiet tenant %d of 10", leases, q_here);
		quiet += q_here;
		leases++;
		free_lease(r);
	}
	cr_assert_eq(leases, 4);
	/* The busy tenant's two queues shared its part. */
	Noetl__QueueStats a, b;
	cr_assert(qstats(fx.cli, "busy", "a", &a));
	cr_assert(qstats(fx.cli, "busy", "b", &b));
	cr_assert_eq(a.leased, 10);
	cr_assert_eq(b.leased, 10);
}

Test(queue, per_tenant_max_caps_one_tenant_in_a_lease)
{
	struct qitem items[20];
	for (int i = 0; i < 20; i++)
		items[i] = (struct qitem){.tenant = i < 15 ? "a" : "b", .queue = "q"};
	cr_assert_eq(qenqueue(fx.cli, items, 20, NULL), 0);
	Noetl__LeaseRequest req = NOETL__LEASE_REQUEST__INIT;
	req.max_items = 20;
	req.per_tenant_max = 3;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "Lease", &req.base, NULL, &m, NULL), 0);
	Noetl__LeaseReply *r = (Noetl__LeaseReply *)m;
	cr_assert_eq(r->n_items, 6);
	free_lease(r);
}

Test(queue, an_enqueue_over_a_depth_limit_fails_with_resource_exhausted_and_adds_nothing)
{
	struct queue_config cfg = {.max_depth_tenant = 10, .max_depth_total = 15};
	restart_with(&cfg);
	struct qitem items[8];
	for (int i = 0; i < 8; i++)
		items[i] = (struct qitem){.tenant = "acme", .queue = "q"};
	cr_assert_eq(qenqueue(fx.cli, items, 8, NULL), 0);
	char *err = NULL;
	cr_assert_eq(qenqueue(fx.cli, items, 3, NULL), NOETL__STATUS__RESOURCE_EXHAUSTED);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.ready, 8, "a refused batch added items");

	/* Another tenant still has room, up to the global limit. */
	for (int i = 0; i < 8; i++)
		items[i].tenant = "other";
	cr_assert_eq(qenqueue(fx.cli, items, 7, NULL), 0);
	cr_assert_eq(qenqueue(fx.cli, items, 1, NULL), NOETL__STATUS__RESOURCE_EXHAUSTED);

	/* Leased items still count; acked ones make room. */
	Noetl__LeaseReply *r = qlease(fx.cli, 2, 30000, 0, "acme");
	for (int i = 0; i < 2; i++)
		items[i].tenant = "acme";
	cr_assert_eq(qenqueue(fx.cli, items, 1, NULL), NOETL__STATUS__RESOURCE_EXHAUSTED);
	qack_all(fx.cli, r);
	free_lease(r);
	cr_assert_eq(qenqueue(fx.cli, items, 2, NULL), 0);

	/* The message names the limit. */
	Noetl__Item it = NOETL__ITEM__INIT;
	it.tenant = "acme";
	it.queue = "q";
	Noetl__Item *ip = &it;
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.n_items = 1;
	req.items = &ip;
	cr_assert_eq(qcall(fx.cli, "Enqueue", &req.base, NULL, NULL, &err),
	             NOETL__STATUS__RESOURCE_EXHAUSTED);
	cr_assert(strstr(err, "limit") != NULL, "%s", err);
	free(err);
}

Test(queue, a_tenant_cannot_create_more_queues_than_its_limit)
{
	struct queue_config cfg = {.max_queues_tenant = 2};
	restart_with(&cfg);
	qput(fx.cli, "acme", "one", "1");
	qput(fx.cli, "acme", "two", "2");
	struct qitem it = {.tenant = "acme", .queue = "three"};
	cr_assert_eq(qenqueue(fx.cli, &it, 1, NULL), NOETL__STATUS__RESOURCE_EXHAUSTED);
	it.queue = "two";
	cr_assert_eq(qenqueue(fx.cli, &it, 1, NULL), 0);
}

Test(queue, delayed_items_become_ready_at_their_time)
{
	int64_t at = util_now_ms() + 500;
	struct qitem it = {.tenant = "acme", .queue = "q", .id = "later", .not_before_ms = at};
	cr_assert_eq(qenqueue(fx.cli, &it, 1, NULL), 0);
	qput(fx.cli, "acme", "q", "now");
	Noetl__LeaseReply *a = qlease(fx.cli, 10, 30000, 0, NULL);
	cr_assert_eq(a->n_items, 1);
	cr_assert_str_eq(a->items[0]->item->id, "now");
	free_lease(a);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	if (util_now_ms() < at)
		cr_assert_eq(st.delayed, 1);
	Noetl__LeaseReply *b = qlease(fx.cli, 10, 30000, 10000, NULL);
	cr_assert_eq(b->n_items, 1);
	cr_assert_str_eq(b->items[0]->item->id, "later");
	cr_assert_geq(util_now_ms(), at, "a delayed item was leased before its time");
	free_lease(b);
}

struct late {
	struct rpc_client *cli;
};

static void *enqueue_later(void *arg)
{
	struct late *l = arg;
	util_sleep_ms(300);
	struct qitem it = {.tenant = "acme", .queue = "q", .id = "late"};
	qenqueue(l->cli, &it, 1, NULL);
	return NULL;
}

Test(queue, a_waiting_lease_gets_an_item_enqueued_while_it_waits)
{
	struct late l = {fx.cli};
	pthread_t t;
	pthread_create(&t, NULL, enqueue_later, &l);
	Noetl__LeaseReply *r = qlease(fx.cli, 5, 30000, 15000, NULL);
	pthread_join(t, NULL);
	cr_assert_eq(r->n_items, 1);
	cr_assert_str_eq(r->items[0]->item->id, "late");
	free_lease(r);
}

Test(queue, everything_written_is_there_after_a_restart_and_leases_in_flight_expire)
{
	for (int i = 0; i < 6; i++) {
		char id[8];
		snprintf(id, sizeof(id), "i%d", i);
		qput(fx.cli, "acme", "q", id);
	}
	Noetl__LeaseReply *a = qlease(fx.cli, 3, 2000, 0, NULL); /* i0..i2 */
	cr_assert_eq(qack(fx.cli, a->items[0]), 0);
	Noetl__AckReply *r = qnack(fx.cli, a->items[1], "dead", true);
	noetl__ack_reply__free_unpacked(r, NULL);
	free_lease(a); /* i2 stays leased */

	qfx_stop(&fx);
	qfx_start(&fx);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	/* i2's lease usually outlives the restart; on a loaded machine it may
	 * have run out already, and then i2 is ready again, behind i5. */
	cr_assert_eq(st.ready + st.leased, 4);
	cr_assert_leq(st.leased, 1);
	cr_assert_eq(st.dead, 1);
	cr_assert_eq(st.acked, 1);
	cr_assert_eq(st.enqueued, 6);

	/* i3..i5 first, then i2 once its lease (from before the restart) ran out. */
	const char *order[4] = {"i3", "i4", "i5", "i2"};
	for (int i = 0; i < 4; i++) {
		Noetl__LeaseReply *b = qlease(fx.cli, 1, 30000, 10000, NULL);
		cr_assert_eq(b->n_items, 1);
		cr_assert_str_eq(b->items[0]->item->id, order[i]);
		qack_all(fx.cli, b);
		free_lease(b);
	}
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.ready + st.leased + st.delayed, 0);
	cr_assert_eq(st.expired, 1);
}

Test(queue, consumed_items_are_deleted_from_the_store_in_ranges)
{
	struct qitem items[500];
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 500; i++)
			items[i] = (struct qitem){.tenant = "acme", .queue = "churn"};
		cr_assert_eq(qenqueue(fx.cli, items, 500, NULL), 0);
		for (int k = 0; k < 5; k++) {
			Noetl__LeaseReply *r = qlease(fx.cli, 100, 30000, 0, NULL);
			cr_assert_eq(r->n_items, 100);
			Noetl__AckEntry *e = calloc(100, sizeof(*e));
			Noetl__AckEntry **ep = calloc(100, sizeof(*ep));
			for (int i = 0; i < 100; i++) {
				noetl__ack_entry__init(&e[i]);
				e[i].lease = r->items[i]->lease;
				ep[i] = &e[i];
			}
			Noetl__AckRequest req = NOETL__ACK_REQUEST__INIT;
			req.n_entries = 100;
			req.entries = ep;
			cr_assert_eq(qcall(fx.cli, "Ack", &req.base, NULL, NULL, NULL), 0);
			free(e);
			free(ep);
			free_lease(r);
		}
	}
	qfx_stop(&fx);
	/* 3000 items went through: at most one retire batch of ready keys is
	 * left, and no lease records. */
	char db[300];
	snprintf(db, sizeof(db), "%s/db", fx.dir);
	struct kv *kv;
	cr_assert_eq(kv_open(db, NULL, &kv), 0);
	struct kv_iter *it;
	cr_assert_eq(kv_iter_create(kv, NULL, 0, NULL, 0, &it), 0);
	int ready = 0, leases = 0;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl;
		const char *k = kv_iter_key(it, &kl);
		ready += k[0] == 'R';
		leases += k[0] == 'l' || k[0] == 'x';
	}
	kv_iter_destroy(it);
	kv_close(kv);
	cr_assert_leq(ready, 1024, "%d consumed ready keys are left", ready);
	cr_assert_eq(leases, 0);
	qfx_start(&fx);
}

struct producer {
	struct rpc_client *cli;
	int index;
	int ok;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	for (int b = 0; b < 20; b++) {
		struct qitem items[10];
		char ids[10][32];
		for (int i = 0; i < 10; i++) {
			snprintf(ids[i], sizeof(ids[i]), "p%d-%d", p->index, b * 10 + i);
			items[i] = (struct qitem){.tenant = "acme", .queue = "q", .id = ids[i]};
		}
		if (qenqueue(p->cli, items, 10, NULL) == 0)
			p->ok += 10;
	}
	return NULL;
}

Test(queue, concurrent_enqueues_are_all_delivered_exactly_once)
{
	struct producer p[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		p[i] = (struct producer){fx.cli, i, 0};
		pthread_create(&t[i], NULL, produce, &p[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(p[i].ok, 200);
	}
	/* Every id once, and in each producer's order. */
	int next[8] = {0};
	int total = 0;
	for (;;) {
		Noetl__LeaseReply *r = qlease(fx.cli, 100, 30000, 0, NULL);
		if (r->n_items == 0) {
			free_lease(r);
			break;
		}
		for (size_t i = 0; i < r->n_items; i++) {
			int pi, seq;
			cr_assert_eq(sscanf(r->items[i]->item->id, "p%d-%d", &pi, &seq), 2);
			cr_assert_eq(seq, next[pi], "producer %d: got %d, expected %d", pi, seq,
			             next[pi]);
			next[pi]++;
			total++;
		}
		qack_all(fx.cli, r);
		free_lease(r);
	}
	cr_assert_eq(total, 1600);
}

Test(queue, requests_with_bad_names_sizes_or_tokens_are_refused_with_clear_errors)
{
	struct queue_config cfg = {.max_payload_bytes = 16};
	restart_with(&cfg);
	Noetl__Item it = NOETL__ITEM__INIT;
	it.tenant = "acme";
	it.queue = "bad name";
	Noetl__Item *ip = &it;
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.n_items = 1;
	req.items = &ip;
	char *err = NULL;
	cr_assert_eq(qcall(fx.cli, "Enqueue", &req.base, NULL, NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert(strstr(err, "items[0].queue") && strstr(err, "'bad name'"), "%s", err);
	free(err);

	it.queue = "q";
	it.tenant = "";
	cr_assert_eq(qcall(fx.cli, "Enqueue", &req.base, NULL, NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert(strstr(err, "items[0].tenant") != NULL, "%s", err);
	free(err);

	it.tenant = "acme";
	it.payload.data = (uint8_t *)"0123456789abcdefX";
	it.payload.len = 17;
	cr_assert_eq(qcall(fx.cli, "Enqueue", &req.base, NULL, NULL, &err),
	             NOETL__STATUS__RESOURCE_EXHAUSTED);
	cr_assert(strstr(err, "items[0].payload") != NULL, "%s", err);
	free(err);

	Noetl__RetryPolicy rp = NOETL__RETRY_POLICY__INIT;
	rp.max_attempts = 1000;
	it.payload.len = 1;
	it.retry = &rp;
	cr_assert_eq(qcall(fx.cli, "Enqueue", &req.base, NULL, NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert(strstr(err, "items[0].retry") != NULL, "%s", err);
	free(err);

	/* Tokens: a short one is invalid, a made-up one unknown. */
	uint8_t tok[16] = {1, 2, 3};
	Noetl__Leased l = NOETL__LEASED__INIT;
	l.lease.data = tok;
	l.lease.len = 3;
	cr_assert_eq(qack(fx.cli, &l), NOETL__STATUS__INVALID_ARGUMENT);
	l.lease.len = 16;
	cr_assert_eq(qack(fx.cli, &l), NOETL__STATUS__NOT_FOUND);

	/* Dead letters need a tenant. */
	Noetl__DeadListRequest dl = NOETL__DEAD_LIST_REQUEST__INIT;
	cr_assert_eq(qcall(fx.cli, "DeadList", &dl.base, NULL, NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert(strstr(err, "tenant") != NULL, "%s", err);
	free(err);
}

Test(queue, a_caller_with_a_tenant_acts_for_that_tenant_only)
{
	qput(fx.cli, "a", "q", "a1");
	qput(fx.cli, "b", "q", "b1");
	/* Enqueue for another tenant is denied; an empty tenant means the caller's. */
	Noetl__Item it = NOETL__ITEM__INIT;
	it.tenant = "b";
	it.queue = "q";
	Noetl__Item *ip = &it;
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.n_items = 1;
	req.items = &ip;
	cr_assert_eq(qcall(fx.cli, "Enqueue", &req.base, "a", NULL, NULL),
	             NOETL__STATUS__PERMISSION_DENIED);
	it.tenant = "";
	cr_assert_eq(qcall(fx.cli, "Enqueue", &req.base, "a", NULL, NULL), 0);

	/* Lease and stats see only the caller's tenant. */
	Noetl__LeaseRequest lr = NOETL__LEASE_REQUEST__INIT;
	lr.max_items = 10;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "Lease", &lr.base, "a", &m, NULL), 0);
	Noetl__LeaseReply *r = (Noetl__LeaseReply *)m;
	cr_assert_eq(r->n_items, 2);
	for (size_t i = 0; i < r->n_items; i++)
		cr_assert_str_eq(r->items[i]->item->tenant, "a");
	free_lease(r);
	Noetl__StatsRequest sr = NOETL__STATS_REQUEST__INIT;
	cr_assert_eq(qcall(fx.cli, "Stats", &sr.base, "a", &m, NULL), 0);
	Noetl__StatsReply *s = (Noetl__StatsReply *)m;
	cr_assert_eq(s->n_queues, 1);
	cr_assert_str_eq(s->queues[0]->tenant, "a");
	noetl__stats_reply__free_unpacked(s, NULL);

	/* Tenant b's lease cannot be acked by tenant a. */
	Noetl__LeaseReply *rb = qlease(fx.cli, 1, 30000, 0, "b");
	cr_assert_eq(rb->n_items, 1);
	Noetl__AckEntry e = NOETL__ACK_ENTRY__INIT;
	e.lease = rb->items[0]->lease;
	Noetl__AckEntry *ep = &e;
	Noetl__AckRequest ar = NOETL__ACK_REQUEST__INIT;
	ar.n_entries = 1;
	ar.entries = &ep;
	cr_assert_eq(qcall(fx.cli, "Ack", &ar.base, "a", &m, NULL), 0);
	cr_assert_eq(((Noetl__AckReply *)m)->results[0]->status, NOETL__STATUS__NOT_FOUND);
	protobuf_c_message_free_unpacked(m, NULL);
	free_lease(rb);
}

Test(queue, stats_are_exported_as_prometheus_metrics)
{
	struct metrics *reg = NULL;
	cr_assert_eq(metrics_create(0, &reg), 0);
	struct queue_config cfg = {.metrics = reg};
	restart_with(&cfg);
	qput(fx.cli, "acme", "orders", "1");
	qput(fx.cli, "acme", "orders", "2");
	char *text = NULL;
	size_t len = 0;
	cr_assert_eq(metrics_render(reg, &text, &len), 0);
	cr_assert(strstr(text, "noetl_queue_ready{tenant=\"acme\",queue=\"orders\"} 2") != NULL,
	          "%s", text);
	cr_assert(strstr(text, "noetl_queue_enqueued_total{tenant=\"acme\",queue=\"orders\"} 2") !=
	                  NULL,
	          "%s", text);
	cr_assert(strstr(text, "noetl_queue_enqueue_seconds_count 2") != NULL, "%s", text);
	free(text);
	qfx_stop(&fx);
	metrics_destroy(reg);
	fx.cfg.metrics = NULL;
	qfx_start(&fx);
}

Test(queue, health_reports_the_service_ready)
{
	Noetl__Empty e = NOETL__EMPTY__INIT;
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "GetHealth", &e.base, NULL, &m, NULL), 0);
	Noetl__Health *h = (Noetl__Health *)m;
	cr_assert_str_eq(h->service, "queue");
	cr_assert(h->ready);
	noetl__health__free_unpacked(h, NULL);
	char why[64];
	cr_assert(queue_ready(fx.q, why, sizeof(why)));
}
