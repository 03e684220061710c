/*
 * Nack with release: a consumer gives a leased item back unrun (its
 * definitions are not ready yet). The attempt its lease counted is taken
 * back, no history entry is added, and the item is ready again after the
 * delay; over the real service and store.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "qclient.h"
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

TestSuite(release, .init = setup, .fini = teardown, .timeout = 60);

/* Releases one lease for delay_ms; returns the call's status, and the
 * reply in *out when OK (the caller frees it). */
static int qrelease(const Noetl__Leased *l, uint32_t delay_ms, Noetl__AckReply **out)
{
	Noetl__NackEntry e = NOETL__NACK_ENTRY__INIT;
	e.lease = l->lease;
	e.release = true;
	e.delay_ms = delay_ms;
	return qnack_entry(fx.cli, &e, out);
}

/* Releases one lease and asserts it was released; returns when the item
 * is ready again. */
static int64_t release_ok(const Noetl__Leased *l, uint32_t delay_ms)
{
	Noetl__AckReply *r = NULL;
	cr_assert_eq(qrelease(l, delay_ms, &r), NOETL__STATUS__OK);
	cr_assert_eq(r->n_results, 1);
	cr_assert_eq(r->results[0]->status, NOETL__STATUS__OK);
	cr_assert_str_eq(r->results[0]->outcome, "released");
	int64_t at = r->results[0]->retry_at_ms;
	noetl__ack_reply__free_unpacked(r, NULL);
	return at;
}

static void put_one_attempt(const char *id)
{
	struct qitem it = {.tenant = "acme", .queue = "q", .id = id, .max_attempts = 1};
	cr_assert_eq(qenqueue(fx.cli, &it, 1, NULL), 0);
}

Test(release, a_released_item_comes_back_after_its_delay_with_the_same_attempt_and_no_history)
{
	put_one_attempt("r1");
	/* With max_attempts 1, a nack would dead-letter it at once; releases
	 * cost no attempt, so it survives any number of them. */
	for (int round = 0; round < 4; round++) {
		Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 10000, NULL);
		cr_assert_eq(a->n_items, 1, "round %d: the released item did not come back", round);
		Noetl__Item *it = a->items[0]->item;
		cr_assert_str_eq(it->id, "r1");
		cr_assert_eq(it->attempt, 1, "round %d: attempt %u", round, it->attempt);
		cr_assert_eq(it->n_history, 0, "round %d: a release added history", round);
		int64_t before = util_now_ms();
		int64_t at = release_ok(a->items[0], 300);
		cr_assert_geq(at, before + 300);
		Noetl__QueueStats st;
		cr_assert(qstats(fx.cli, "acme", "q", &st));
		cr_assert_eq(st.leased, 0);
		cr_assert_eq(st.failed, 0, "a release counted as a failure");
		cr_assert_eq(st.ready + st.delayed, 1);
		noetl__lease_reply__free_unpacked(a, NULL);
		/* The next lease waits for it; it must not come before its time. */
		Noetl__LeaseReply *b = qlease(fx.cli, 1, 30000, 10000, NULL);
		cr_assert_eq(b->n_items, 1);
		cr_assert_geq(util_now_ms(), at, "a released item was leased before its delay");
		cr_assert_eq(b->items[0]->item->attempt, 1);
		if (round < 3) {
			release_ok(b->items[0], 0); /* ready again at once */
		} else {
			/* Its one real attempt fails: dead, with that attempt alone. */
			Noetl__AckReply *r = qnack(fx.cli, b->items[0], "boom", false);
			cr_assert_str_eq(r->results[0]->outcome, "dead");
			noetl__ack_reply__free_unpacked(r, NULL);
		}
		noetl__lease_reply__free_unpacked(b, NULL);
	}
	Noetl__DeadListRequest req = NOETL__DEAD_LIST_REQUEST__INIT;
	req.tenant = "acme";
	ProtobufCMessage *m = NULL;
	cr_assert_eq(qcall(fx.cli, "DeadList", &req.base, NULL, &m, NULL), 0);
	Noetl__DeadListReply *dl = (Noetl__DeadListReply *)m;
	cr_assert_eq(dl->n_items, 1);
	cr_assert_eq(dl->items[0]->attempt, 1);
	cr_assert_eq(dl->items[0]->n_history, 1);
	cr_assert_eq(dl->items[0]->history[0]->number, 1);
	cr_assert_str_eq(dl->items[0]->history[0]->reason, "boom");
	noetl__dead_list_reply__free_unpacked(dl, NULL);
}

Test(release, a_release_keeps_the_history_of_earlier_failed_attempts)
{
	struct qitem it = {
	        .tenant = "acme", .queue = "q", .id = "h1", .max_attempts = 5, .base_ms = 1};
	cr_assert_eq(qenqueue(fx.cli, &it, 1, NULL), 0);
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 10000, NULL);
	Noetl__AckReply *r = qnack(fx.cli, a->items[0], "first failure", false);
	noetl__ack_reply__free_unpacked(r, NULL);
	noetl__lease_reply__free_unpacked(a, NULL);
	Noetl__LeaseReply *b = qlease(fx.cli, 1, 30000, 10000, NULL);
	cr_assert_eq(b->n_items, 1);
	cr_assert_eq(b->items[0]->item->attempt, 2);
	release_ok(b->items[0], 0);
	noetl__lease_reply__free_unpacked(b, NULL);
	Noetl__LeaseReply *c = qlease(fx.cli, 1, 30000, 10000, NULL);
	cr_assert_eq(c->n_items, 1);
	cr_assert_eq(c->items[0]->item->attempt, 2, "the release did not take its attempt back");
	cr_assert_eq(c->items[0]->item->n_history, 1);
	cr_assert_str_eq(c->items[0]->item->history[0]->reason, "first failure");
	cr_assert_eq(qack(fx.cli, c->items[0]), NOETL__STATUS__OK);
	noetl__lease_reply__free_unpacked(c, NULL);
}

Test(release, releasing_an_expired_lease_is_not_found_and_changes_nothing)
{
	put_one_attempt("x1");
	struct qitem more = {.tenant = "acme", .queue = "q", .id = "x1b", .max_attempts = 3};
	cr_assert_eq(qenqueue(fx.cli, &more, 1, NULL), 0);
	Noetl__LeaseReply *a = qlease(fx.cli, 2, 200, 0, NULL);
	cr_assert_eq(a->n_items, 2);
	/* Not settled in time: x1 (one attempt) is dead, x1b ready again. */
	Noetl__LeaseReply *b = qlease(fx.cli, 1, 30000, 10000, NULL);
	cr_assert_eq(b->n_items, 1);
	cr_assert_str_eq(b->items[0]->item->id, "x1b");
	Noetl__AckReply *r = NULL;
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(qrelease(a->items[i], 0, &r), NOETL__STATUS__OK);
		cr_assert_eq(r->results[0]->status, NOETL__STATUS__NOT_FOUND);
		noetl__ack_reply__free_unpacked(r, NULL);
	}
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.leased, 1);
	cr_assert_eq(st.dead, 1);
	cr_assert_eq(st.ready + st.delayed, 0, "a release of an expired lease added an item");
	cr_assert_eq(qack(fx.cli, b->items[0]), NOETL__STATUS__OK);
	noetl__lease_reply__free_unpacked(a, NULL);
	noetl__lease_reply__free_unpacked(b, NULL);
}

Test(release, released_items_are_not_lost_across_a_restart)
{
	put_one_attempt("later");
	put_one_attempt("now");
	Noetl__LeaseReply *a = qlease(fx.cli, 2, 30000, 0, NULL);
	cr_assert_eq(a->n_items, 2);
	int64_t at = release_ok(a->items[0], 800); /* delayed */
	release_ok(a->items[1], 0);                /* ready */
	noetl__lease_reply__free_unpacked(a, NULL);

	qfx_stop(&fx);
	qfx_start(&fx);
	Noetl__QueueStats st;
	cr_assert(qstats(fx.cli, "acme", "q", &st));
	cr_assert_eq(st.leased, 0);
	cr_assert_eq(st.ready + st.delayed, 2);
	int seen = 0;
	while (seen < 2) {
		Noetl__LeaseReply *b = qlease(fx.cli, 2, 30000, 10000, NULL);
		cr_assert_gt(b->n_items, 0, "a released item was lost in the restart");
		for (size_t i = 0; i < b->n_items; i++) {
			Noetl__Item *it = b->items[i]->item;
			cr_assert_eq(it->attempt, 1);
			cr_assert_eq(it->n_history, 0);
			if (strcmp(it->id, "later") == 0)
				cr_assert_geq(util_now_ms(), at);
			seen++;
		}
		qack_all(fx.cli, b);
		noetl__lease_reply__free_unpacked(b, NULL);
	}
}

Test(release, a_release_delay_over_an_hour_is_refused_and_the_lease_stays)
{
	put_one_attempt("d1");
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 0, NULL);
	Noetl__AckReply *r = NULL;
	cr_assert_eq(qrelease(a->items[0], 3600001, &r), NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert_eq(qack(fx.cli, a->items[0]), NOETL__STATUS__OK);
	noetl__lease_reply__free_unpacked(a, NULL);
}

Test(release, releases_are_counted_in_a_metric)
{
	struct metrics *reg = NULL;
	cr_assert_eq(metrics_create(0, &reg), 0);
	qfx_stop(&fx);
	fx.cfg.metrics = reg;
	qfx_start(&fx);
	put_one_attempt("m1");
	Noetl__LeaseReply *a = qlease(fx.cli, 1, 30000, 0, NULL);
	release_ok(a->items[0], 0);
	noetl__lease_reply__free_unpacked(a, NULL);
	char *text = NULL;
	size_t len = 0;
	cr_assert_eq(metrics_render(reg, &text, &len), 0);
	cr_assert(strstr(text, "noetl_queue_released_total 1") != NULL, "%s", text);
	free(text);
	qfx_stop(&fx);
	metrics_destroy(reg);
	fx.cfg.metrics = NULL;
	qfx_start(&fx);
}
