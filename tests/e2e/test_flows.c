/*
 * Workflows across the real processes, driven through noetlctl and HTTP:
 *
 *   a three-step chain (step1 ok -> step2 ok -> step3), walked with
 *   `noetlctl events show` from either end;
 *   retries ending in the dead-letter queue (`noetlctl dlq list`), a fixed
 *   module uploaded, and `noetlctl dlq replay` that then succeeds;
 *   a cron schedule firing once per tick, with Control's clock sped up
 *   (--control.debug.clock-rate) so that a minute passes every second.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "flow.h"
#include "testutil.h"

#define WAIT_MS 30000

static struct cluster C;

static void teardown(void)
{
	cluster_destroy(&C);
}

static void setup_default(void)
{
	cluster_create(&C, NULL);
	static const char *const modules[] = {"echo", "error", NULL};
	cluster_tenant(&C, "acme", modules);
}

TestSuite(flows, .fini = teardown, .timeout = 180);

static const char *const chain_yaml =
        "id: chain\n"
        "tenant: acme\n"
        "queues:\n"
        "  - id: q\n"
        "jobs:\n"
        "  - event: {id: step1, supplierqueue: q, runtime: echo}\n"
        "    result:\n"
        "      ok: {id: step2, supplierqueue: q, runtime: echo}\n"
        "  - event: {id: step2, supplierqueue: q, runtime: echo}\n"
        "    result:\n"
        "      ok: {id: step3, supplierqueue: q, runtime: echo}\n"
        "runtimes:\n"
        "  - id: echo\n"
        "    moduleref: echo.wasm\n"
        "    retry: {maxattempts: 30, backoffbase: 200ms, backoffmax: 1s}\n";

/* The only child of an event's document, into out. */
static void only_child(json_t *doc, char *out, size_t cap)
{
	json_t *kids = json_object_get(doc, "children");
	cr_assert_eq(json_array_size(kids), 1, "one follow-up");
	snprintf(out, cap, "%s", json_string_value(json_array_get(kids, 0)));
}

/* Checks a chain tree node: its id, state and number of children. */
static json_t *chain_node(json_t *node, const char *id, size_t kids)
{
	cr_expect_str_eq(flow_str(node, "event_id"), id);
	cr_expect_str_eq(flow_str(node, "state"), "done", "event %s", id);
	json_t *children = json_object_get(node, "children");
	cr_assert_eq(json_array_size(children), kids, "event %s has %zu children", id, kids);
	return kids > 0 ? json_array_get(children, 0) : NULL;
}

Test(flows, a_three_step_chain_runs_and_is_walked_from_either_end, .init = setup_default)
{
	cluster_deploy(&C, chain_yaml, false);
	char id1[64], id2[64], id3[64];
	flow_post(&C, "/events/acme/step1", "{\"data\":[{\"name\":\"Ada\"}]}", id1, sizeof(id1));

	json_t *doc = flow_wait_step(&C, id1, "done", WAIT_MS);
	cr_expect(flow_has_step(doc, "routed"), "step1 routed its follow-up");
	/* the executor's steps came with its 'done' (leased, attempt and done
	 * are made from one execution record); the listener's come on their
	 * own schedule */
	cr_expect(flow_has_step(doc, "leased"), "step1's timeline has no 'leased' step");
	cr_expect(flow_has_step(doc, "attempt"), "step1's timeline has no 'attempt' step");
	json_decref(flow_wait_step(&C, id1, "received", WAIT_MS));
	only_child(doc, id2, sizeof(id2));
	json_decref(doc);
	doc = flow_wait_step(&C, id2, "done", WAIT_MS);
	only_child(doc, id3, sizeof(id3));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(doc, "parents"), 0)),
	                 id1);
	json_decref(doc);
	doc = flow_wait_step(&C, id3, "done", WAIT_MS);
	cr_expect(flow_has_step(doc, "caused by"), "step3 knows its parent");
	cr_expect_eq(json_array_size(json_object_get(doc, "children")), 0, "step3 is the last");
	json_decref(doc);

	/* The same chain whichever end is shown. */
	const char *ends[] = {id1, id3};
	for (int i = 0; i < 2; i++) {
		doc = flow_event(&C, ends[i]);
		cr_assert_not_null(doc);
		json_t *n = chain_node(json_object_get(doc, "chain"), id1, 1);
		n = chain_node(n, id2, 1);
		chain_node(n, id3, 0);
		json_decref(doc);
	}
	char *out = cluster_ctl_ok(&C, "events show %s", id3);
	cr_expect(strstr(out, "<- this event") != NULL, "%s", out);
	cr_expect_eq(cluster_count(out, "(done)"), 3, "three done events in the chain:\n%s", out);
	free(out);

	/* step3 ran with step2's result, which carried step1's. */
	json_t *ex = flow_executions(&C, "acme", id3);
	cr_assert_eq(json_array_size(ex), 1);
	char *text = json_dumps(ex, 0);
	cr_expect(strstr(text, "Ada") != NULL && strstr(text, "step2") != NULL,
	          "step3's result nests the chain's payloads: %s", text);
	free(text);
	json_decref(ex);
}

/* "work" fails fast (three quick attempts). "warm" runs the same module
 * patiently and routes its failure to "warmed": it tells the test when the
 * executor has compiled the module, so that no "work" attempt is spent on
 * an executor that does not know the package yet. */
static const char *const dlq_yaml =
        "id: dlq\n"
        "tenant: acme\n"
        "queues:\n"
        "  - id: work-q\n"
        "  - id: warm-q\n"
        "jobs:\n"
        "  - event: {id: work, supplierqueue: work-q, runtime: worker}\n"
        "  - event:\n"
        "      id: warm\n"
        "      supplierqueue: warm-q\n"
        "      runtime: worker\n"
        "      retry: {maxattempts: 50, backoffbase: 200ms, backoffmax: 1s}\n"
        "    result:\n"
        "      error: {id: warmed, supplierqueue: warm-q, runtime: echo}\n"
        "runtimes:\n"
        "  - id: worker\n"
        "    moduleref: worker.wasm\n"
        "    retry: {maxattempts: 3, backoffbase: 100ms, backoffmax: 200ms}\n"
        "  - id: echo\n"
        "    moduleref: echo.wasm\n"
        "    retry: {maxattempts: 50, backoffbase: 200ms, backoffmax: 1s}\n";

/* Posts a work event and waits until it is done or dead; returns true when
 * done. */
static bool work_done(const char *body, char *id, size_t cap)
{
	flow_post(&C, "/events/acme/work", body, id, cap);
	long long end = cluster_now_ms() + WAIT_MS;
	for (;;) {
		json_t *doc = flow_event(&C, id);
		bool done = doc != NULL && flow_has_step(doc, "done");
		bool dead = doc != NULL && flow_has_step(doc, "dead");
		json_decref(doc);
		if (done || dead)
			return done;
		cr_assert_lt(cluster_now_ms(), end, "event %s is neither done nor dead", id);
		cluster_sleep_ms(100);
	}
}

Test(flows, retries_end_in_the_dlq_and_a_replay_after_a_fix_succeeds, .init = setup_default)
{
	char error_wasm[512], echo_wasm[512];
	testutil_build_path("sdk/examples/error.wasm", error_wasm, sizeof(error_wasm));
	testutil_build_path("sdk/examples/echo.wasm", echo_wasm, sizeof(echo_wasm));
	free(cluster_ctl_ok(&C, "upload wasm acme worker.wasm '%s'", error_wasm));
	cluster_deploy(&C, dlq_yaml, false);
	char warm[64];
	flow_post(&C, "/events/acme/warm", "{\"data\":[1]}", warm, sizeof(warm));
	json_decref(flow_wait_step(&C, warm, "routed", WAIT_MS));

	/* The module fails every attempt: three, then the dead-letter queue. */
	char id[64];
	cr_assert_not(work_done("{\"data\":[{\"job\":\"payroll\"}]}", id, sizeof(id)));
	json_t *ex = flow_executions(&C, "acme", id);
	cr_expect_eq(json_array_size(ex), 3, "three attempts");
	json_decref(ex);

	char *out = cluster_ctl_ok(&C, "dlq list acme -o json");
	json_t *dead = flow_parse(out, "dlq list -o json");
	cr_assert_eq(json_array_size(dead), 1, "one dead item:\n%s", out);
	json_t *item = json_array_get(dead, 0);
	cr_expect_str_eq(flow_str(item, "id"), id);
	cr_expect_str_eq(flow_str(item, "queue"), "work-q");
	cr_expect_eq(json_integer_value(json_object_get(item, "attempts")), 3, "%s", out);
	cr_expect(strstr(flow_str(item, "reason"), "cannot handle") != NULL,
	          "the reason is the module's: %s", out);
	json_decref(dead);
	free(out);

	/* The fix: a new version of the module. Probe until the executor runs
	 * it (it applies the new version when the Repository's change arrives). */
	free(cluster_ctl_ok(&C, "upload wasm acme worker.wasm '%s'", echo_wasm));
	char probe[64];
	int probes = 0;
	while (!work_done("{\"data\":[{\"probe\":true}]}", probe, sizeof(probe)))
		cr_assert_lt(++probes, 20, "the fixed module never ran");

	out = cluster_ctl_ok(&C, "dlq replay acme work-q --id %s -o json", id);
	cr_expect(strstr(out, "\"replayed\": 1") != NULL, "%s", out);
	free(out);
	json_t *doc = flow_wait_step(&C, id, "done", WAIT_MS);
	json_decref(doc);
	ex = flow_executions(&C, "acme", id);
	cr_expect_eq(json_array_size(ex), 4, "three failures and the replayed success");
	cr_expect_str_eq(flow_str(flow_last(ex), "status"), "ok");
	json_decref(ex);

	out = cluster_ctl_ok(&C, "dlq list acme -o json");
	cr_expect(strstr(out, id) == NULL, "the replayed item left the DLQ:\n%s", out);
	free(out);
	/* Probes that died before the fix are still there: purge them. */
	free(cluster_ctl_ok(&C, "dlq purge acme"));
	out = cluster_ctl_ok(&C, "dlq list acme -o json");
	json_t *left = flow_parse(out, "dlq list -o json");
	cr_expect_eq(json_array_size(left), 0, "%s", out);
	json_decref(left);
	free(out);
}

/* A minute per second of real time; the scheduler looks every 100 ms. */
static void setup_cron(void)
{
	struct cluster_options o = {.schedule_interval = "100ms", .clock_rate = 60};
	cluster_create(&C, &o);
	static const char *const modules[] = {"echo", NULL};
	cluster_tenant(&C, "acme", modules);
}

static const char *const cron_yaml =
        "id: cron\n"
        "tenant: acme\n"
        "queues:\n"
        "  - id: q\n"
        "jobs:\n"
        "  - event: {id: tick, supplierqueue: q, runtime: echo}\n"
        "runtimes:\n"
        "  - id: echo\n"
        "    moduleref: echo.wasm\n"
        "    retry: {maxattempts: 30, backoffbase: 200ms, backoffmax: 1s}\n"
        "schedules:\n"
        "  - id: every-minute\n"
        "    cron: \"* * * * *\"\n"
        "    event: tick\n"
        "    payload: {report: daily}\n";

/* The ids of the "tick" events that ran successfully, with how many of
 * their attempts succeeded: {"id": n, ...}. */
static json_t *tick_oks(void)
{
	char *out = cluster_ctl_ok(&C, "recorder --tenant acme -n 1000 -o json");
	json_t *all = flow_parse(out, "recorder -o json");
	free(out);
	json_t *oks = json_object();
	for (size_t i = 0; i < json_array_size(all); i++) {
		json_t *e = json_array_get(all, i);
		if (strcmp(flow_str(e, "event"), "tick") != 0 ||
		    strcmp(flow_str(e, "status"), "ok") != 0)
			continue;
		const char *id = flow_str(e, "event_id");
		json_int_t n = json_integer_value(json_object_get(oks, id));
		json_object_set_new(oks, id, json_integer(n + 1));
		char *text = json_dumps(e, 0);
		cr_expect(strstr(text, "daily") != NULL, "the schedule's payload: %s", text);
		free(text);
	}
	json_decref(all);
	return oks;
}

/* Control's counter of fired ticks, from its /metrics. */
static long metric_fires(void)
{
	struct httpc_reply r;
	int st = cluster_get(&C, SVC_CONTROL, "/metrics", &r);
	cr_assert_eq(st, 200);
	const char *p = strstr(r.body, "\nnoetl_control_schedule_fires_total ");
	cr_assert_not_null(p, "%s", r.body);
	long n = strtol(p + strlen("\nnoetl_control_schedule_fires_total "), NULL, 10);
	httpc_reply_free(&r);
	return n;
}

Test(flows, a_cron_schedule_fires_once_per_tick, .init = setup_cron)
{
	cluster_deploy(&C, cron_yaml, false);
	/* Wait for three ticks to have run. */
	long long end = cluster_now_ms() + WAIT_MS;
	json_t *oks;
	while (json_object_size(oks = tick_oks()) < 3) {
		json_decref(oks);
		cr_assert_lt(cluster_now_ms(), end, "three ticks did not run");
		cluster_sleep_ms(200);
	}
	json_decref(oks);
	/* An update without the schedule stops it; the event stays deployed, so
	 * ticks already fired still run (deleting the package would make them
	 * "unknown events"). */
	char *unscheduled = strdup(cron_yaml);
	*strstr(unscheduled, "schedules:") = '\0';
	cluster_deploy(&C, unscheduled, true);
	free(unscheduled);
	/* A pass that began before the delete may still fire: wait until the
	 * counter stays put across a few passes. */
	long fires = metric_fires(), again;
	while (cluster_sleep_ms(500), (again = metric_fires()) != fires)
		fires = again;

	/* What Control says it fired: one line per tick, with the tick's time. */
	char logf[400];
	snprintf(logf, sizeof(logf), "%s/control.log", C.dir);
	char *log = testutil_read_file(logf, NULL);
	cr_assert_not_null(log);
	int64_t prev = 0;
	int lines = 0;
	for (const char *p = log; (p = strstr(p, "every-minute fired for ")) != NULL; p++) {
		struct tm tm = {0};
		const char *t = p + strlen("every-minute fired for ");
		cr_assert_not_null(strptime(t, "%Y-%m-%dT%H:%M:%SZ", &tm), "%.40s", t);
		int64_t at = (int64_t)timegm(&tm);
		cr_expect_eq(at % 60, 0, "a tick is on a minute: %.40s", t);
		if (prev != 0)
			cr_expect(at == prev + 60 || (at > prev && strstr(log, "missed its ticks")),
			          "ticks are consecutive minutes, each once: %" PRId64
			          " after %" PRId64,
			          at, prev);
		prev = at;
		lines++;
	}
	free(log);
	cr_expect_eq(lines, fires, "the fires counter (%ld) matches the log (%d)", fires, lines);
	cr_expect_geq(fires, 3);

	/* Every fired tick ran, and succeeded exactly once. */
	end = cluster_now_ms() + WAIT_MS;
	while (json_object_size(oks = tick_oks()) < (size_t)fires) {
		json_decref(oks);
		if (cluster_now_ms() > end)
			cluster_dump_logs(&C);
		cr_assert_lt(cluster_now_ms(), end, "not every fired tick ran");
		cluster_sleep_ms(200);
	}
	cr_expect_eq(json_object_size(oks), (size_t)fires, "one event per tick");
	const char *id;
	json_t *n;
	json_object_foreach(oks, id, n)
	        cr_expect_eq(json_integer_value(n), 1, "tick event %s succeeded once", id);
	json_decref(oks);
}

static const char *const greet_yaml = "id: p\n"
                                      "tenant: acme\n"
                                      "queues:\n"
                                      "  - id: q\n"
                                      "jobs:\n"
                                      "  - event: {id: greet, supplierqueue: q, runtime: rt}\n"
                                      "runtimes:\n"
                                      "  - id: rt\n"
                                      "    moduleref: %s.wasm\n"
                                      "    retry: {maxattempts: 2, backoffbase: 100ms}\n";

static void deploy_greet(const char *module, bool update)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml), greet_yaml, module);
	cluster_deploy(&C, yaml, update);
}

static void setup_no_executor(void)
{
	struct cluster_options o = {.no_executor = true};
	cluster_create(&C, &o);
	static const char *const modules[] = {"echo", NULL};
	cluster_tenant(&C, "acme", modules);
}

Test(flows, accepted_events_wait_in_the_queue_until_an_executor_starts, .init = setup_no_executor)
{
	deploy_greet("echo", false);
	char id[64];
	flow_post(&C, "/events/acme/greet", "{\"data\":[{\"n\":1}]}", id, sizeof(id));
	char *out = cluster_ctl_until(&C, "\"ready\": 1", WAIT_MS, "queue stats acme -o json");
	free(out);
	json_t *doc = flow_wait_step(&C, id, "accepted", WAIT_MS);
	cr_expect(!flow_has_step(doc, "leased"), "accepted, not leased yet");
	json_decref(doc);

	cluster_start(&C, SVC_EXECUTOR);
	json_decref(flow_wait_step(&C, id, "done", WAIT_MS));
	out = cluster_ctl_until(&C, "\"ready\": 0", WAIT_MS, "queue stats acme -o json");
	free(out);
}

Test(flows, an_idempotency_key_makes_a_repeated_post_a_no_op, .init = setup_default)
{
	deploy_greet("echo", false);
	const char *key = "Idempotency-Key: order-42\r\n";
	const char *body = "{\"data\":[{\"order\":42},{\"order\":43}]}";
	struct httpc_reply r1, r2;
	cr_assert_eq(cluster_post_with(&C, "/events/acme/greet", NULL, key, body, &r1), 202);
	cr_assert_eq(cluster_post_with(&C, "/events/acme/greet", NULL, key, body, &r2), 202, "%s",
	             r2.body);
	json_t *a = flow_parse(r1.body, "202 reply"), *b = flow_parse(r2.body, "202 reply");
	cr_assert(json_equal(json_object_get(a, "ids"), json_object_get(b, "ids")),
	          "the repeated post names the same events: %s vs %s", r1.body, r2.body);
	for (size_t i = 0; i < 2; i++) {
		const char *id = json_string_value(json_array_get(json_object_get(a, "ids"), i));
		json_decref(flow_wait_step(&C, id, "done", WAIT_MS));
		json_t *ex = flow_executions(&C, "acme", id);
		cr_expect_eq(json_array_size(ex), 1, "event %s ran once", id);
		json_decref(ex);
	}
	/* Another key is another submission. */
	char id[64];
	struct httpc_reply r3;
	cr_assert_eq(cluster_post_with(&C, "/events/acme/greet", NULL,
	                               "Idempotency-Key: order-44\r\n", body, &r3),
	             202);
	cr_assert(cluster_first_id(&r3, id, sizeof(id)));
	cr_expect(strstr(r1.body, id) == NULL, "%s is a new event", id);
	httpc_reply_free(&r3);
	json_decref(flow_wait_step(&C, id, "done", WAIT_MS));
	json_decref(a);
	json_decref(b);
	httpc_reply_free(&r1);
	httpc_reply_free(&r2);
}

Test(flows, a_rollback_brings_the_previous_definition_back_live, .init = setup_default)
{
	deploy_greet("echo", false);
	char id[64];
	flow_post(&C, "/events/acme/greet", "{\"data\":[1]}", id, sizeof(id));
	json_decref(flow_wait_step(&C, id, "done", WAIT_MS));

	/* Revision 2 runs the failing module: events die. */
	deploy_greet("error", true);
	flow_post(&C, "/events/acme/greet", "{\"data\":[2]}", id, sizeof(id));
	json_decref(flow_wait_step(&C, id, "dead", WAIT_MS));

	/* Back to revision 1. */
	int before = cluster_live_count(&C, "acme", "p");
	free(cluster_ctl_ok(&C, "rollback acme p"));
	cluster_wait_live(&C, "acme", "p", before);
	char *out = cluster_ctl_ok(&C, "history acme p");
	cr_expect_geq(cluster_count(out, "\n"), 4, "three revisions and a header:\n%s", out);
	free(out);
	flow_post(&C, "/events/acme/greet", "{\"data\":[3]}", id, sizeof(id));
	json_decref(flow_wait_step(&C, id, "done", WAIT_MS));
	json_t *ex = flow_executions(&C, "acme", id);
	cr_expect_str_eq(flow_str(flow_last(ex), "status"), "ok");
	json_decref(ex);
}
