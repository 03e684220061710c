/*
 * Control's scheduler against the real Queue (queue_lib, its own RocksDB,
 * served over inproc:// behind the fixture's relay): a tick becomes exactly one leasable item with
 * the event's routing, a restart does not add a second one, and an item the Queue already holds is
 * recognised by its idempotency key.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "queue.h"
#include "queue.pb-c.h"
#include "testrpc.h"

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define MINUTE 60000LL

static struct fx fx;
static struct rpc_client *qcli;

static const char *yaml = "id: ticker\n"
                          "tenant: acme\n"
                          "queues:\n"
                          "  - id: q\n"
                          "jobs:\n"
                          "  - event:\n"
                          "      id: tick\n"
                          "      supplierqueue: q\n"
                          "      runtime: rt\n"
                          "runtimes:\n"
                          "  - id: rt\n"
                          "    moduleref: m.wasm\n"
                          "    retry:\n"
                          "      maxattempts: 2\n"
                          "schedules:\n"
                          "  - id: every-minute\n"
                          "    cron: \"* * * * *\"\n"
                          "    event: tick\n"
                          "    payload: {n: 1}\n";

static void start(void)
{
	fx_start(&fx, true);
	cr_assert_eq(rpc_client_create(fx.queue_url, NULL, &qcli), 0);
	fx.now = T0 + 30000;
	fx_tenant(&fx, "acme");
	cr_assert_eq(
	        fx_put(&fx, "acme", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, fx_wasm, fx_wasm_len),
	        0);
	char *err = NULL;
	cr_assert_eq(fx_deploy_yaml(&fx, yaml, false, NULL, &err), 0, "%s", err ? err : "");
}

static void stop(void)
{
	rpc_client_destroy(qcli);
	fx_stop(&fx);
}

TestSuite(schedule_queue, .init = start, .fini = stop);

static unsigned tick(int64_t now)
{
	unsigned fired = 0;
	fx.now = now;
	cr_expect_eq(control_schedule_tick(fx.ctl, now, &fired), 0);
	return fired;
}

Test(schedule_queue, a_tick_becomes_one_item_in_the_queue_even_across_a_restart)
{
	cr_expect_eq(tick(T0 + MINUTE + 5), 1);
	fx_control_stop(&fx);
	fx_control_start(&fx, false);
	cr_expect_eq(tick(T0 + MINUTE + 6), 0);

	cr_assert_eq(fx_queue_items(&fx), 1);
	const struct fx_item *it = &fx.items[0];
	cr_expect_str_eq(it->tenant, "acme");
	cr_expect_str_eq(it->queue, "q");
	cr_expect_str_eq(it->event, "tick");
	cr_expect_str_eq(it->package, "ticker");
	char key[128];
	snprintf(key, sizeof(key), "acme/ticker/every-minute/%lld", (long long)(T0 + MINUTE));
	cr_expect_str_eq(it->key, key);
	cr_expect_str_eq(it->payload, "{\"n\":1}");
	cr_expect_eq(it->max_attempts, 2, "the runtime's policy when the event has none");
}

Test(schedule_queue, the_queue_drops_a_tick_enqueued_again_with_its_key)
{
	cr_expect_eq(tick(T0 + MINUTE), 1);
	/* What Control sends again if it dies before recording the fire: */
	Noetl__Item it = NOETL__ITEM__INIT;
	it.tenant = "acme";
	it.queue = "q";
	it.id = "01J000000000000000000000AA";
	it.event = "tick";
	char key[128];
	snprintf(key, sizeof(key), "acme/ticker/every-minute/%lld", (long long)(T0 + MINUTE));
	it.idempotency_key = key;
	Noetl__Item *items[] = {&it};
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.items = items;
	req.n_items = 1;
	ProtobufCMessage *out =
	        testrpc_ok(qcli, &noetl__queue__descriptor, "Enqueue", &req.base, NULL);
	Noetl__EnqueueReply *er = (Noetl__EnqueueReply *)out;
	cr_assert_eq(er->n_results, 1);
	cr_expect(er->results[0]->duplicate);
	protobuf_c_message_free_unpacked(out, NULL);

	cr_expect_eq(fx_queue_items(&fx), 1);
}
