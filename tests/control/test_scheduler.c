/*
 * Control's cron scheduler, driven through control_schedule_tick with an
 * injected clock, against the real Queue behind a relay that can lose its
 * replies or turn Control away: one item per tick, the idempotency key, no
 * double fire across a restart, the catch-up rule, and what happens when
 * the Queue is away.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define MINUTE 60000LL

static struct fx fx;

static const char *yaml = "id: ticker\n"
                          "tenant: acme\n"
                          "queues:\n"
                          "  - id: q\n"
                          "jobs:\n"
                          "  - event:\n"
                          "      id: tick\n"
                          "      supplierqueue: q\n"
                          "      runtime: rt\n"
                          "      retry:\n"
                          "        maxattempts: 4\n"
                          "runtimes:\n"
                          "  - id: rt\n"
                          "    moduleref: m.wasm\n"
                          "schedules:\n"
                          "  - id: every-minute\n"
                          "    cron: \"* * * * *\"\n"
                          "    event: tick\n"
                          "    payload:\n"
                          "      hello: world\n";

static void start(void)
{
	fx_start(&fx, true);
	fx.now = T0 + 30000; /* deployed at 00:00:30 */
	fx_tenant(&fx, "acme");
	cr_assert_eq(
	        fx_put(&fx, "acme", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, fx_wasm, fx_wasm_len),
	        0);
	char *err = NULL;
	cr_assert_eq(fx_deploy_yaml(&fx, yaml, false, NULL, &err), 0, "%s", err ? err : "");
}

static void stop(void)
{
	fx_stop(&fx);
}

TestSuite(scheduler, .init = start, .fini = stop);

static unsigned tick(int64_t now)
{
	unsigned fired = 0;
	fx.now = now;
	cr_expect_eq(control_schedule_tick(fx.ctl, now, &fired), 0);
	return fired;
}

static void expect_key(size_t i, int64_t fire_ms)
{
	char key[128];
	snprintf(key, sizeof(key), "acme/ticker/every-minute/%lld", (long long)fire_ms);
	cr_assert_lt(i, fx_queue_items(&fx));
	cr_expect_str_eq(fx.items[i].key, key);
}

Test(scheduler, a_schedule_fires_once_per_tick_with_its_event)
{
	cr_expect_eq(tick(T0 + 30000), 0, "nothing before the first tick after the deploy");
	cr_expect_eq(tick(T0 + 59999), 0);
	cr_expect_eq(tick(T0 + MINUTE), 1);
	cr_expect_eq(tick(T0 + MINUTE + 500), 0, "the 00:01 tick fired already");
	cr_expect_eq(tick(T0 + 2 * MINUTE + 10), 1);
	cr_assert_eq(fx_queue_items(&fx), 2);
	expect_key(0, T0 + MINUTE);
	expect_key(1, T0 + 2 * MINUTE);
	const struct fx_item *it = &fx.items[0];
	cr_expect_str_eq(it->tenant, "acme");
	cr_expect_str_eq(it->queue, "q");
	cr_expect_str_eq(it->event, "tick");
	cr_expect_str_eq(it->package, "ticker");
	cr_expect_str_eq(it->payload, "{\"hello\":\"world\"}");
	cr_expect_eq(it->max_attempts, 4, "the event's retry policy travels with the item");
	cr_expect_eq(strlen(it->id), 26);
	cr_expect_str_neq(fx.items[0].id, fx.items[1].id);
}

Test(scheduler, a_restart_does_not_fire_a_tick_twice)
{
	cr_expect_eq(tick(T0 + MINUTE + 1), 1);
	fx_control_stop(&fx);
	fx_control_start(&fx, false);
	cr_expect_eq(tick(T0 + MINUTE + 2), 0);
	cr_expect_eq(tick(T0 + 2 * MINUTE), 1);
	cr_expect_eq(relay_requests(fx.relay, "Enqueue"), 2, "nothing sent again");
	cr_expect_eq(fx_queue_items(&fx), 2);
}

Test(scheduler, ticks_missed_while_down_fire_once_for_the_latest)
{
	cr_expect_eq(tick(T0 + MINUTE), 1);
	fx_control_stop(&fx);
	/* Down from 00:01 to 00:07:30: the 00:02 .. 00:07 ticks were missed. */
	fx_control_start(&fx, false);
	cr_expect_eq(tick(T0 + 7 * MINUTE + 30000), 1);
	cr_assert_eq(fx_queue_items(&fx), 2);
	expect_key(1, T0 + 7 * MINUTE);
	cr_expect_eq(tick(T0 + 7 * MINUTE + 40000), 0);
	cr_expect_eq(tick(T0 + 8 * MINUTE), 1);
	/* and after a year away, still one */
	cr_expect_eq(tick(T0 + 365 * 24 * 60 * MINUTE + 5), 1);
	expect_key(3, T0 + 365 * 24 * 60 * MINUTE);
}

Test(scheduler, a_lost_queue_reply_is_retried_with_the_same_key)
{
	/* The Queue stores the item but Control never hears back: as if
	 * Control died between the two writes. */
	relay_set_mode(fx.relay, RELAY_LOSE_REPLY);
	unsigned fired = 0;
	fx.now = T0 + MINUTE;
	cr_expect_neq(control_schedule_tick(fx.ctl, fx.now, &fired), 0);
	cr_expect_eq(fired, 0);
	cr_expect_eq(fx_queue_items(&fx), 1, "the Queue has the item");
	relay_set_mode(fx.relay, RELAY_PASS);
	fx_control_stop(&fx);
	fx_control_start(&fx, false);
	cr_expect_eq(tick(T0 + MINUTE + 10), 1);
	cr_expect_eq(relay_requests(fx.relay, "Enqueue"), 2, "sent again after the restart");
	cr_expect_eq(fx_queue_items(&fx), 1, "the Queue sees the same key and drops it");
	expect_key(0, T0 + MINUTE);
}

Test(scheduler, a_queue_call_that_runs_out_of_time_is_retried_with_the_same_key)
{
	/* The Queue stalls: Control's call runs out of time, then the Queue
	 * takes the held item after all, before Control's retry. */
	relay_set_mode(fx.relay, RELAY_HOLD);
	unsigned fired = 0;
	cr_expect_neq(control_schedule_tick(fx.ctl, T0 + MINUTE, &fired), 0);
	cr_expect_eq(fired, 0);
	relay_set_mode(fx.relay, RELAY_PASS);
	cr_expect_eq(tick(T0 + MINUTE + 10), 1);
	cr_expect_eq(relay_requests(fx.relay, "Enqueue"), 2);
	cr_expect_eq(fx_queue_items(&fx), 1, "the late item and the retry are one");
	expect_key(0, T0 + MINUTE);
}

Test(scheduler, an_unreachable_queue_leaves_the_tick_due)
{
	relay_set_mode(fx.relay, RELAY_REFUSE);
	unsigned fired = 0;
	cr_expect_neq(control_schedule_tick(fx.ctl, T0 + MINUTE, &fired), 0);
	cr_expect_eq(fired, 0);
	cr_expect_eq(fx_queue_items(&fx), 0);
	relay_set_mode(fx.relay, RELAY_PASS);
	cr_expect_eq(tick(T0 + MINUTE + 1000), 1);
	expect_key(0, T0 + MINUTE);
}

Test(scheduler, deleting_or_changing_a_package_changes_what_fires)
{
	cr_expect_eq(tick(T0 + MINUTE), 1);
	/* An update that adds an hourly schedule: it starts from the update's
	 * time, so the 01:00 tick is its first. */
	fx.now = T0 + MINUTE + 5;
	char *y2;
	cr_assert(asprintf(&y2, "%s  - id: hourly\n    cron: \"0 * * * *\"\n    event: tick\n",
	                   yaml) > 0);
	cr_assert_eq(fx_deploy_yaml(&fx, y2, true, NULL, NULL), 0);
	free(y2);
	cr_expect_eq(tick(T0 + 59 * MINUTE + 1), 1, "every-minute catches up; hourly not due");
	cr_expect_eq(tick(T0 + 60 * MINUTE), 2, "both at 01:00");

	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = "acme";
	ref.id = "ticker";
	cr_assert_eq(fx_call(&fx, "Delete", &ref.base, NULL, NULL), 0);
	cr_expect_eq(tick(T0 + 120 * MINUTE), 0, "a deleted package fires nothing");

	/* Rolled back after the delete, it starts again from now: the ticks
	 * while it was deleted never fire. */
	fx.now = T0 + 121 * MINUTE + 30000;
	Noetl__RollbackRequest rb = NOETL__ROLLBACK_REQUEST__INIT;
	rb.tenant = "acme";
	rb.id = "ticker";
	cr_assert_eq(fx_call(&fx, "Rollback", &rb.base, NULL, NULL), 0);
	cr_expect_eq(tick(T0 + 121 * MINUTE + 40000), 0);
	cr_expect_eq(tick(T0 + 122 * MINUTE), 1, "every-minute; hourly waits for 03:00");
	cr_expect_eq(tick(T0 + 180 * MINUTE), 2);
}

Test(scheduler, the_scheduler_thread_fires_on_its_own)
{
	/* With the system clock and a thread, a schedule deployed now fires
	 * at the next minute boundary; only check that the thread starts and
	 * stops cleanly and fires nothing early. */
	fx_control_stop(&fx);
	char path[320];
	snprintf(path, sizeof(path), "%s/control", fx.dir);
	struct control_config cc = {
	        .data_dir = path,
	        .repository_url = fx.repo_url,
	        .queue_url = fx.queue_url,
	        .schedule_interval_ms = 20,
	};
	cr_assert_eq(control_create(&cc, &fx.ctl), 0);
	/* Deployed (in start) at 2026-01-01T00:00:30Z: the real clock is long
	 * past that, so the thread's first pass catches up exactly once. */
	for (int i = 0; i < 500 && fx_queue_items(&fx) == 0; i++)
		usleep(10000);
	cr_expect_eq(fx_queue_items(&fx), 1);
}
