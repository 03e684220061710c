/*
 * The timeline reporter is best effort: with the Recorder down, entries are
 * dropped and counted (a full ring refuses at once), never queued without
 * bound; with it up, they arrive.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "recorder.h"
#include "reporter.h"
#include "rpc.h"
#include "testutil.h"
#include "util.h"

static char dir[256], url[300];

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	snprintf(url, sizeof(url), "ipc://%s/rec.sock", dir);
}

static void teardown(void)
{
	testutil_rmtree(dir);
}

TestSuite(reporter, .init = setup, .fini = teardown, .timeout = 60);

static void add_n(struct listener_reporter *r, int n, int *kept)
{
	for (int i = 0; i < n; i++) {
		char id[UTIL_ID_SIZE];
		util_new_id(id);
		if (listener_reporter_add(r, "acme", id, "greet", NOETL__TIMELINE_KIND__TL_RECEIVED,
		                          util_now_ms(), "events"))
			(*kept)++;
	}
}

Test(reporter, entries_for_a_recorder_that_is_down_are_dropped_and_counted)
{
	struct rpc_client *c;
	struct rpc_client_options co = {.connect_wait_ms = 100};
	cr_assert_eq(rpc_client_create(url, &co, &c), 0);
	struct listener_reporter *r;
	struct listener_reporter_options o = {.recorder = c,
	                                      .capacity = 10,
	                                      .batch = 5,
	                                      .interval_ms = 10,
	                                      .call_timeout_ms = 500};
	cr_assert_eq(listener_reporter_create(&o, &r), 0);
	int kept = 0;
	add_n(r, 50, &kept);
	cr_assert_lt(kept, 50, "a ring of 10 kept %d of 50 at once", kept);
	struct listener_reporter_stats st = {0};
	for (int i = 0; i < 1000 && st.dropped < 50; i++) {
		listener_reporter_stats(r, &st);
		util_sleep_ms(10);
	}
	cr_assert_eq(st.dropped, 50);
	cr_assert_eq(st.sent, 0);
	listener_reporter_destroy(r);
	rpc_client_destroy(c);
}

Test(reporter, entries_reach_a_recorder_that_is_up)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/recorder", dir);
	struct recorder_config rc = {.data_dir = path, .retain_every_ms = -1};
	struct recorder *rec;
	cr_assert_eq(recorder_create(&rc, &rec), 0);
	struct rpc_server_options so = {.workers = 2};
	struct rpc_server *srv;
	cr_assert_eq(rpc_server_create(&so, &srv), 0);
	cr_assert_eq(rpc_server_add(srv, recorder_service(rec)), 0);
	cr_assert_eq(rpc_server_listen(srv, url), 0);
	cr_assert_eq(rpc_server_start(srv), 0);
	struct rpc_client *c;
	cr_assert_eq(rpc_client_create(url, NULL, &c), 0);
	struct listener_reporter *r;
	struct listener_reporter_options o = {.recorder = c, .interval_ms = 10};
	cr_assert_eq(listener_reporter_create(&o, &r), 0);
	int kept = 0;
	add_n(r, 30, &kept);
	cr_assert_eq(kept, 30);
	struct listener_reporter_stats st = {0};
	for (int i = 0; i < 1000 && st.sent < 30; i++) {
		listener_reporter_stats(r, &st);
		util_sleep_ms(10);
	}
	cr_assert_eq(st.sent, 30);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(st.released, 0, "a shallow ring keeps its pages");

	/* a burst fills the ring deep: once empty, it gives its pages back */
	add_n(r, 3000, &kept);
	cr_assert_eq(kept, 3030);
	for (int i = 0; i < 1000 && (st.sent < 3030 || st.released == 0); i++) {
		listener_reporter_stats(r, &st);
		util_sleep_ms(10);
	}
	cr_assert_eq(st.sent, 3030);
	cr_assert_geq(st.released, 1, "the emptied ring did not give its pages back");
	/* and works on after that, from the start of the ring */
	add_n(r, 500, &kept);
	for (int i = 0; i < 1000 && st.sent < 3530; i++) {
		listener_reporter_stats(r, &st);
		util_sleep_ms(10);
	}
	cr_assert_eq(st.sent, 3530);
	cr_assert_eq(st.dropped, 0);
	listener_reporter_destroy(r);
	rpc_client_destroy(c);
	rpc_server_destroy(srv);
	recorder_destroy(rec);
}
