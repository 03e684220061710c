/*
 * The Executor service against the real Control, Repository, Queue and
 * Recorder (in this process, over ipc://, each with its RocksDB in a temp
 * directory) and the real engine with its runner processes. Events are
 * enqueued straight into the Queue, as the listener would, and the outcome is
 * read back from the Recorder and the Queue.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "control.pb-c.h"
#include "executor.h"
#include "jobdef.h"
#include "queue.h"
#include "queue.pb-c.h"
#include "recorder.h"
#include "recorder.pb-c.h"
#include "repository.h"
#include "repository.pb-c.h"
#include "rpc.h"
#include "testrpc.h"
#include "testutil.h"
#include "util.h"

static char dir[256];
static char url_ctl[300], url_repo[300], url_q[300], url_rec[300];
static char st_ctl[300], st_repo[300], st_rec[300];
static struct repository *repo;
static struct recorder *rec;
static struct queue *q;
static struct control *ctl;
static struct rpc_server *s_repo, *s_rec, *s_q, *s_ctl;
static struct rpc_client *c_ctl, *c_repo, *c_q, *c_rec;
static struct executor *ex;
static int lease_ms = 20000; /* of the next start_executor */

static struct rpc_server *serve(ProtobufCService *svc, const char *url)
{
	struct rpc_server *s;
	struct rpc_server_options o = {.workers = 8};
	cr_assert_eq(rpc_server_create(&o, &s), 0);
	cr_assert_eq(rpc_server_add(s, svc), 0);
	cr_assert_eq(rpc_server_listen(s, url), 0);
	cr_assert_eq(rpc_server_start(s), 0);
	return s;
}

static void start_executor(void)
{
	char cache[300], runner[512];
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	testutil_build_path("src/executor/noetl-runner", runner, sizeof(runner));
	struct executor_config ec = {
	        .control_url = url_ctl,
	        .repository_url = url_repo,
	        .queue_url = url_q,
	        .recorder_url = url_rec,
	        .control_stream = st_ctl,
	        .repository_stream = st_repo,
	        .host = "test-executor",
	        .engine = {.cache_dir = cache,
	                   .runner_path = runner,
	                   .pool_size = 2,
	                   .limits = {.timeout_ms = 2000, .memory_bytes = 16u << 20}},
	        .workers = 2,
	        .batch = 8,
	        .lease_ms = lease_ms,
	};
	char *err = NULL;
	int rc = executor_create(&ec, 10000, &ex, &err);
	cr_assert_eq(rc, 0, "executor_create: %s", err != NULL ? err : "");
}

static void setup(void)
{
	/* well before the suite's timeout, so that a hang says where it is */
	testutil_watchdog_start(criterion_current_test->name, 200);
	testutil_tempdir(dir, sizeof(dir));
	/* tcp, not ipc: nng 1.5.2's ipc listener can be wedged by a client that
	 * goes away mid-handshake (nng#1518), which a loaded machine provokes */
	char *urls[] = {url_ctl, url_repo, url_q, url_rec, st_ctl, st_repo, st_rec};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		snprintf(urls[i], sizeof(url_ctl), "tcp://127.0.0.1:%d", testutil_free_port());
	char d[300];
	snprintf(d, sizeof(d), "%s/repo", dir);
	struct repository_config rc = {.data_dir = d, .stream_url = st_repo, .heartbeat_ms = 200};
	cr_assert_eq(repository_create(&rc, &repo), 0);
	s_repo = serve(repository_service(repo), url_repo);
	snprintf(d, sizeof(d), "%s/rec", dir);
	struct recorder_config recc = {.data_dir = d, .stream_url = st_rec, .retain_every_ms = -1};
	cr_assert_eq(recorder_create(&recc, &rec), 0);
	s_rec = serve(recorder_service(rec), url_rec);
	snprintf(d, sizeof(d), "%s/q", dir);
	struct queue_config qc = {.data_dir = d, .tick_ms = 20};
	cr_assert_eq(queue_create(&qc, &q), 0);
	s_q = serve(queue_service(q), url_q);
	snprintf(d, sizeof(d), "%s/ctl", dir);
	struct control_config cc = {.data_dir = d,
	                            .stream_url = st_ctl,
	                            .heartbeat_ms = 200,
	                            .repository_url = url_repo,
	                            .queue_url = url_q,
	                            .schedule_interval_ms = -1};
	cr_assert_eq(control_create(&cc, &ctl), 0);
	s_ctl = serve(control_service(ctl), url_ctl);
	cr_assert_eq(rpc_client_create(url_ctl, NULL, &c_ctl), 0);
	cr_assert_eq(rpc_client_create(url_repo, NULL, &c_repo), 0);
	cr_assert_eq(rpc_client_create(url_q, NULL, &c_q), 0);
	cr_assert_eq(rpc_client_create(url_rec, NULL, &c_rec), 0);
	start_executor();
}

static void teardown(void)
{
	executor_destroy(ex);
	rpc_client_destroy(c_ctl);
	rpc_client_destroy(c_repo);
	rpc_client_destroy(c_q);
	rpc_client_destroy(c_rec);
	rpc_server_destroy(s_ctl);
	control_destroy(ctl);
	rpc_server_destroy(s_q);
	queue_destroy(q);
	rpc_server_destroy(s_rec);
	recorder_destroy(rec);
	rpc_server_destroy(s_repo);
	repository_destroy(repo);
	testutil_rmtree(dir);
	testutil_watchdog_stop();
}

/* Each test compiles its modules into a cache of its own (wasm2c and cc);
 * under ASan on a loaded 2-core machine one test once needed more than
 * 120 s for that alone. */
TestSuite(executor_service, .init = setup, .fini = teardown, .timeout = 300);

/* Uploads a built module (path relative to the build root) as name. */
static void put_module(const char *tenant, const char *name, const char *built)
{
	char path[512];
	testutil_build_path(built, path, sizeof(path));
	size_t len;
	char *bytes = testutil_read_file(path, &len);
	cr_assert_not_null(bytes, "cannot read %s", path);
	Noetl__PutFileRequest req =
	        testrpc_put_file(tenant, name, NOETL__FILE_TYPE__FILE_WASM, bytes, len);
	protobuf_c_message_free_unpacked(
	        testrpc_ok(c_repo, &noetl__repository__descriptor, "PutFile", &req.base, NULL),
	        NULL);
	free(bytes);
}

static void add_tenant(const char *tenant)
{
	Noetl__AddTenantRequest req = NOETL__ADD_TENANT_REQUEST__INIT;
	req.id = (char *)tenant;
	protobuf_c_message_free_unpacked(
	        testrpc_ok(c_ctl, &noetl__control__descriptor, "AddTenant", &req.base, NULL), NULL);
}

/* Deploys (update: replaces) YAML; returns its Control revision without
 * waiting. */
static uint64_t deploy_as(const char *yaml, bool update)
{
	Noetl__Package *p = NULL;
	char *err = NULL;
	cr_assert_eq(jobdef_parse(yaml, strlen(yaml), "test.yml", &p, &err), 0, "%s", err);
	Noetl__DeployRequest req = NOETL__DEPLOY_REQUEST__INIT;
	req.package = p;
	req.source = (char *)yaml;
	req.update = update;
	Noetl__DeployReply *r = (Noetl__DeployReply *)testrpc_ok(c_ctl, &noetl__control__descriptor,
	                                                         "Deploy", &req.base, NULL);
	uint64_t rev = r->revision;
	noetl__deploy_reply__free_unpacked(r, NULL);
	jobdef_free(p);
	return rev;
}

/* Waits until the executor has applied Control revision rev. */
static void wait_applied(uint64_t rev)
{
	struct executor_stats s;
	/* compiling happens at deploy time and can take seconds on a busy machine */
	for (int i = 0; i < 3000; i++) {
		executor_stats(ex, &s);
		if (s.control_revision >= rev)
			return;
		util_sleep_ms(20);
	}
	cr_assert_fail("the executor did not apply revision %llu", (unsigned long long)rev);
}

/* Deploys YAML and waits until the executor has applied it. */
static void deploy(const char *yaml)
{
	wait_applied(deploy_as(yaml, false));
}

/* Enqueues an event as the listener would, with the event's retry policy
 * (NULL: the Queue's default). */
static void enqueue_retry(const char *tenant, const char *queue, const char *event,
                          const char *payload, Noetl__RetryPolicy *retry, char id[UTIL_ID_SIZE])
{
	util_new_id(id);
	Noetl__Item it = NOETL__ITEM__INIT;
	it.tenant = (char *)tenant;
	it.queue = (char *)queue;
	it.id = id;
	it.event = (char *)event;
	it.payload.data = (uint8_t *)payload;
	it.payload.len = strlen(payload);
	it.retry = retry;
	Noetl__Item *items[] = {&it};
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.items = items;
	req.n_items = 1;
	protobuf_c_message_free_unpacked(
	        testrpc_ok(c_q, &noetl__queue__descriptor, "Enqueue", &req.base, NULL), NULL);
}

static void enqueue(const char *tenant, const char *queue, const char *event, const char *payload,
                    char id[UTIL_ID_SIZE])
{
	enqueue_retry(tenant, queue, event, payload, NULL, id);
}

/* Waits for an execution of event_id with the given status (or any final
 * one when want < 0); returns it (free with protobuf_c_message_free_unpacked
 * on the reply, kept in *hold). */
static Noetl__Execution *wait_exec(const char *tenant, const char *event_id, int want,
                                   Noetl__ExecutionsReply **hold)
{
	char seen[2048] = "";
	for (int i = 0; i < 1500; i++) {
		Noetl__ExecutionQuery qy = NOETL__EXECUTION_QUERY__INIT;
		qy.tenant = (char *)tenant;
		qy.event_id = (char *)event_id;
		Noetl__ExecutionsReply *r = (Noetl__ExecutionsReply *)testrpc_ok(
		        c_rec, &noetl__recorder__descriptor, "QueryExecutions", &qy.base, NULL);
		seen[0] = '\0';
		for (size_t k = 0; k < r->n_executions; k++) {
			const Noetl__Execution *x = r->executions[k];
			if (want < 0 || (int)x->status == want) {
				*hold = r;
				return r->executions[k];
			}
			size_t l = strlen(seen);
			snprintf(seen + l, sizeof(seen) - l, " [attempt %u status %d '%s']",
			         x->attempt, (int)x->status, x->reason);
		}
		noetl__executions_reply__free_unpacked(r, NULL);
		util_sleep_ms(20);
	}
	cr_assert_fail("no execution of %s with status %d was recorded; seen:%s", event_id, want,
	               seen);
	return NULL;
}

/* The ids of the follow-ups event_id produced, from its timeline. */
static char *wait_child(const char *tenant, const char *event_id)
{
	for (int i = 0; i < 500; i++) {
		Noetl__TimelineRequest req = NOETL__TIMELINE_REQUEST__INIT;
		req.tenant = (char *)tenant;
		req.event_id = (char *)event_id;
		Noetl__TimelineReply *r = (Noetl__TimelineReply *)testrpc_ok(
		        c_rec, &noetl__recorder__descriptor, "Timeline", &req.base, NULL);
		char *child = r->n_children > 0 ? util_xstrdup(r->children[0]) : NULL;
		noetl__timeline_reply__free_unpacked(r, NULL);
		if (child != NULL)
			return child;
		util_sleep_ms(20);
	}
	cr_assert_fail("%s produced no follow-up", event_id);
	return NULL;
}

static const char *chain_yaml = "id: chain\n"
                                "tenant: acme\n"
                                "queues:\n"
                                "  - id: main\n"
                                "  - id: done\n"
                                "jobs:\n"
                                "  - event:\n"
                                "      id: greet\n"
                                "      supplierqueue: main\n"
                                "      runtime: echo\n"
                                "    result:\n"
                                "      ok:\n"
                                "        id: greeted\n"
                                "        supplierqueue: done\n"
                                "        runtime: echo\n"
                                "  - event:\n"
                                "      id: refuse\n"
                                "      supplierqueue: main\n"
                                "      runtime: error\n"
                                "    result:\n"
                                "      error:\n"
                                "        id: refused\n"
                                "        supplierqueue: done\n"
                                "        runtime: echo\n"
                                "runtimes:\n"
                                "  - id: echo\n"
                                "    moduleref: echo.wasm\n"
                                "  - id: error\n"
                                "    moduleref: error.wasm\n";

static void deploy_chain(void)
{
	add_tenant("acme");
	put_module("acme", "echo.wasm", "sdk/examples/echo.wasm");
	put_module("acme", "error.wasm", "sdk/examples/error.wasm");
	deploy(chain_yaml);
}

Test(executor_service, an_echo_event_is_recorded_and_its_ok_follow_up_runs)
{
	deploy_chain();
	char id[UTIL_ID_SIZE];
	enqueue("acme", "main", "greet", "{\"firstName\":\"Ada\"}", id);
	Noetl__ExecutionsReply *hold;
	Noetl__Execution *e = wait_exec("acme", id, NOETL__EXEC_STATUS__EXEC_OK, &hold);
	cr_assert_eq(e->result.len, strlen("{\"firstName\":\"Ada\"}"));
	cr_assert_eq(memcmp(e->result.data, "{\"firstName\":\"Ada\"}", e->result.len), 0);
	cr_assert_eq(e->attempt, 1);
	cr_assert_str_eq(e->host, "test-executor");
	cr_assert_eq(strlen(e->module_sha256), 64);
	noetl__executions_reply__free_unpacked(hold, NULL);

	char *child = wait_child("acme", id);
	e = wait_exec("acme", child, NOETL__EXEC_STATUS__EXEC_OK, &hold);
	/* the follow-up's payload (echoed back as its result) names its parent */
	char *result = strndup((const char *)e->result.data, e->result.len);
	cr_assert_not_null(strstr(result, id), "follow-up payload %s lacks the parent id", result);
	cr_assert_not_null(strstr(result, "\"code\":0"), "payload %s", result);
	cr_assert_not_null(strstr(result, "\"firstName\":\"Ada\""), "payload %s", result);
	cr_assert_str_eq(e->event, "greeted");
	free(result);
	free(child);
	noetl__executions_reply__free_unpacked(hold, NULL);
}

Test(executor_service, a_non_zero_code_routes_to_the_error_event)
{
	deploy_chain();
	char id[UTIL_ID_SIZE];
	enqueue("acme", "main", "refuse", "{\"x\":1}", id);
	Noetl__ExecutionsReply *hold;
	Noetl__Execution *e = wait_exec("acme", id, NOETL__EXEC_STATUS__EXEC_ERROR, &hold);
	cr_assert_eq(e->code, 1);
	noetl__executions_reply__free_unpacked(hold, NULL);
	char *child = wait_child("acme", id);
	e = wait_exec("acme", child, NOETL__EXEC_STATUS__EXEC_OK, &hold);
	char *result = strndup((const char *)e->result.data, e->result.len);
	cr_assert_not_null(strstr(result, "\"code\":1"), "payload %s", result);
	cr_assert_not_null(strstr(result, "cannot handle"), "payload %s", result);
	free(result);
	free(child);
	noetl__executions_reply__free_unpacked(hold, NULL);
}

/* The first page of tenant's dead letters (free with
 * noetl__dead_list_reply__free_unpacked). */
static Noetl__DeadListReply *dead_list(const char *tenant)
{
	Noetl__DeadListRequest dl = NOETL__DEAD_LIST_REQUEST__INIT;
	dl.tenant = (char *)tenant;
	return (Noetl__DeadListReply *)testrpc_ok(c_q, &noetl__queue__descriptor, "DeadList",
	                                          &dl.base, NULL);
}

/* A module that fails in the platform: retried, then dead with the reason. */
static void failing_module(const char *fixture, const char *payload, const char *reason_part)
{
	add_tenant("bad");
	char built[256];
	snprintf(built, sizeof(built), "tests/executor/%s.wasm", fixture);
	put_module("bad", "bad.wasm", built);
	deploy("id: bad\ntenant: bad\nqueues:\n  - id: q\njobs:\n  - event:\n      id: ev\n"
	       "      supplierqueue: q\n      runtime: rt\n      timeout: 500ms\n"
	       "      retry: {maxattempts: 2, backoffbase: 50ms, backoffmax: 100ms}\n"
	       "runtimes:\n  - id: rt\n    moduleref: bad.wasm\n    memorylimit: 1MiB\n");
	char id[UTIL_ID_SIZE];
	Noetl__RetryPolicy retry = NOETL__RETRY_POLICY__INIT;
	retry.max_attempts = 2;
	retry.backoff_base_ms = 50;
	retry.backoff_max_ms = 100;
	enqueue_retry("bad", "q", "ev", payload, &retry, id);
	Noetl__ExecutionsReply *hold;
	Noetl__Execution *e = wait_exec("bad", id, NOETL__EXEC_STATUS__EXEC_DEAD, &hold);
	cr_assert_eq(e->attempt, 2, "the last attempt is the second, not %u (%s)", e->attempt,
	             e->reason);
	cr_assert_not_null(strstr(e->reason, reason_part), "%s: reason was '%s'", fixture,
	                   e->reason);
	noetl__executions_reply__free_unpacked(hold, NULL);

	Noetl__DeadListReply *r = dead_list("bad");
	cr_assert_eq(r->n_items, 1);
	cr_assert_str_eq(r->items[0]->id, id);
	cr_assert_eq(r->items[0]->n_history, 2);
	cr_assert_not_null(strstr(r->items[0]->history[1]->reason, reason_part));
	noetl__dead_list_reply__free_unpacked(r, NULL);
}

Test(executor_service, a_trapping_module_is_retried_then_dead_lettered_with_the_trap)
{
	failing_module("trap", "{}", "trap");
}

Test(executor_service, a_looping_module_is_stopped_at_its_deadline_and_dead_lettered)
{
	failing_module("loop", "loop forever", "timeout");
}

Test(executor_service, unbounded_recursion_is_a_trap_not_a_crash)
{
	failing_module("recursion", "{}", "stack");
}

Test(executor_service, a_second_tenant_is_served_while_another_tenant_loops)
{
	deploy_chain();
	add_tenant("slow");
	put_module("slow", "sleeper.wasm", "sdk/examples/sleeper.wasm");
	deploy("id: slow\ntenant: slow\nqueues:\n  - id: q\njobs:\n  - event:\n      id: spin\n"
	       "      supplierqueue: q\n      runtime: rt\n      timeout: 1s\n"
	       "      retry: {maxattempts: 1}\n"
	       "runtimes:\n  - id: rt\n    moduleref: sleeper.wasm\n");
	char spin[6][UTIL_ID_SIZE], ok[6][UTIL_ID_SIZE];
	Noetl__RetryPolicy once = NOETL__RETRY_POLICY__INIT;
	once.max_attempts = 1;
	for (int i = 0; i < 6; i++)
		enqueue_retry("slow", "q", "spin", "{}", &once, spin[i]);
	for (int i = 0; i < 6; i++)
		enqueue("acme", "main", "greet", "{\"firstName\":\"B\"}", ok[i]);
	for (int i = 0; i < 6; i++) {
		Noetl__ExecutionsReply *hold;
		wait_exec("acme", ok[i], NOETL__EXEC_STATUS__EXEC_OK, &hold);
		noetl__executions_reply__free_unpacked(hold, NULL);
	}
	for (int i = 0; i < 6; i++) {
		Noetl__ExecutionsReply *hold;
		Noetl__Execution *e =
		        wait_exec("slow", spin[i], NOETL__EXEC_STATUS__EXEC_DEAD, &hold);
		cr_assert_not_null(strstr(e->reason, "timeout"), "reason %s", e->reason);
		noetl__executions_reply__free_unpacked(hold, NULL);
	}
}

Test(executor_service, a_batch_that_runs_longer_than_its_lease_keeps_it)
{
	/* Leases of 900 ms, an event that runs 2.5 s: only extending the lease
	 * while it runs keeps it, else the Queue would take it back ("lease
	 * expired") and the executor's Nack would find no lease. */
	executor_destroy(ex);
	ex = NULL;
	lease_ms = 900;
	start_executor();
	lease_ms = 20000;
	add_tenant("slow");
	put_module("slow", "sleeper.wasm", "sdk/examples/sleeper.wasm");
	deploy("id: slow\ntenant: slow\nqueues:\n  - id: q\njobs:\n  - event:\n      id: spin\n"
	       "      supplierqueue: q\n      runtime: rt\n      timeout: 2500ms\n"
	       "      retry: {maxattempts: 1}\n"
	       "runtimes:\n  - id: rt\n    moduleref: sleeper.wasm\n");
	char id[UTIL_ID_SIZE];
	Noetl__RetryPolicy once = NOETL__RETRY_POLICY__INIT;
	once.max_attempts = 1;
	enqueue_retry("slow", "q", "spin", "{}", &once, id);
	Noetl__ExecutionsReply *hold;
	Noetl__Execution *e = wait_exec("slow", id, NOETL__EXEC_STATUS__EXEC_DEAD, &hold);
	cr_assert_not_null(strstr(e->reason, "timeout"), "reason %s", e->reason);
	noetl__executions_reply__free_unpacked(hold, NULL);

	Noetl__DeadListReply *r = dead_list("slow");
	cr_assert_eq(r->n_items, 1);
	cr_assert_eq(r->items[0]->n_history, 1);
	bool timed_out = strstr(r->items[0]->history[0]->reason, "timeout") != NULL;
	noetl__dead_list_reply__free_unpacked(r, NULL);
	cr_assert(timed_out, "the attempt ended as the executor said, not by the lease");

	Noetl__StatsRequest sr = NOETL__STATS_REQUEST__INIT;
	sr.tenant = "slow";
	Noetl__StatsReply *st = (Noetl__StatsReply *)testrpc_ok(c_q, &noetl__queue__descriptor,
	                                                        "Stats", &sr.base, NULL);
	cr_assert_eq(st->n_queues, 1);
	uint64_t expired = st->queues[0]->expired;
	noetl__stats_reply__free_unpacked(st, NULL);
	cr_assert_eq(expired, 0, "no lease ran out");
	struct executor_stats es;
	executor_stats(ex, &es);
	cr_assert_geq(es.leases_extended, 2);
	cr_assert_eq(es.leases_lost, 0);
}

Test(executor_service, a_new_module_version_applies_to_later_events)
{
	add_tenant("live");
	put_module("live", "mod.wasm", "sdk/examples/echo.wasm");
	deploy("id: live\ntenant: live\nqueues:\n  - id: q\njobs:\n  - event:\n      id: ev\n"
	       "      supplierqueue: q\n      runtime: rt\n      retry: {maxattempts: 1}\n"
	       "runtimes:\n  - id: rt\n    moduleref: mod.wasm\n");
	char id[UTIL_ID_SIZE];
	enqueue("live", "q", "ev", "{}", id);
	Noetl__ExecutionsReply *hold;
	wait_exec("live", id, NOETL__EXEC_STATUS__EXEC_OK, &hold);
	noetl__executions_reply__free_unpacked(hold, NULL);

	put_module("live", "mod.wasm", "sdk/examples/error.wasm");
	/* the swap happens when the repository change arrives: keep sending
	 * until an event runs on the new module */
	bool switched = false;
	int64_t until = util_mono_ms() + 60000;
	while (!switched && util_mono_ms() < until) {
		enqueue("live", "q", "ev", "{}", id);
		Noetl__Execution *e = wait_exec("live", id, -1, &hold);
		switched = e->status != NOETL__EXEC_STATUS__EXEC_OK;
		noetl__executions_reply__free_unpacked(hold, NULL);
	}
	cr_assert(switched, "events never ran on the new version of the module");
}

/* --- the deploy window: events that arrive before the package is ready --- */

/* Enqueues n events of tenant's event "ev" in queue "q" in one call, each
 * with payload {"name":"<id>"}, one attempt, accepted under Control revision
 * rev (as the listener stamps them); their ids go to ids[]. */
static void enqueue_stamped(const char *tenant, const char *event, uint64_t rev, size_t n,
                            char (*ids)[UTIL_ID_SIZE])
{
	Noetl__Item *items = calloc(n, sizeof(*items));
	Noetl__Item **ptrs = calloc(n, sizeof(*ptrs));
	char(*payloads)[UTIL_ID_SIZE + 16] = calloc(n, UTIL_ID_SIZE + 16);
	cr_assert(items != NULL && ptrs != NULL && payloads != NULL);
	Noetl__RetryPolicy retry = NOETL__RETRY_POLICY__INIT;
	retry.max_attempts = 1; /* a failure would dead-letter at once */
	for (size_t i = 0; i < n; i++) {
		util_new_id(ids[i]);
		snprintf(payloads[i], sizeof(payloads[i]), "{\"name\":\"%.*s\"}", UTIL_ID_SIZE - 1,
		         ids[i]);
		noetl__item__init(&items[i]);
		items[i].tenant = (char *)tenant;
		items[i].queue = "q";
		items[i].id = ids[i];
		items[i].event = (char *)event;
		items[i].payload.data = (uint8_t *)payloads[i];
		items[i].payload.len = strlen(payloads[i]);
		items[i].retry = &retry;
		items[i].definition_revision = rev;
		ptrs[i] = &items[i];
	}
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.items = ptrs;
	req.n_items = n;
	protobuf_c_message_free_unpacked(
	        testrpc_ok(c_q, &noetl__queue__descriptor, "Enqueue", &req.base, NULL), NULL);
	free(items);
	free(ptrs);
	free(payloads);
}

/* Asserts event_id has exactly one execution recorded, a successful first
 * attempt; returns its result (malloc'ed). */
static char *only_success(const char *tenant, const char *event_id)
{
	Noetl__ExecutionsReply *hold;
	wait_exec(tenant, event_id, NOETL__EXEC_STATUS__EXEC_OK, &hold);
	cr_assert_eq(hold->n_executions, 1, "event %s has %zu executions, the first: '%s'",
	             event_id, hold->n_executions, hold->executions[0]->reason);
	Noetl__Execution *e = hold->executions[0];
	cr_assert_eq(e->attempt, 1);
	char *result = strndup((const char *)e->result.data, e->result.len);
	noetl__executions_reply__free_unpacked(hold, NULL);
	return result;
}

static void assert_no_dead_letters(const char *tenant)
{
	Noetl__DeadListReply *r = dead_list(tenant);
	cr_assert_eq(r->n_items, 0, "%zu dead letters, the first: '%s'", r->n_items,
	             r->n_items > 0 && r->items[0]->n_history > 0 ? r->items[0]->history[0]->reason
	                                                          : "");
	noetl__dead_list_reply__free_unpacked(r, NULL);
}

static const char *window_yaml = "id: win\ntenant: win\nqueues:\n  - id: q\njobs:\n"
                                 "  - event:\n      id: ev\n      supplierqueue: q\n"
                                 "      runtime: rt\n"
                                 "runtimes:\n  - id: rt\n    moduleref: %s\n";

static uint64_t deploy_window(const char *module, bool update, bool wait)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml), window_yaml, module);
	uint64_t rev = deploy_as(yaml, update);
	if (wait)
		wait_applied(rev);
	return rev;
}

Test(executor_service, an_event_enqueued_while_its_package_compiles_runs_once_on_its_first_attempt)
{
	add_tenant("win");
	put_module("win", "echo.wasm", "sdk/examples/echo.wasm");
	/* The compile cache is empty: the executor compiles echo.wasm now, for
	 * seconds, while the events are already in the queue. */
	uint64_t rev = deploy_window("echo.wasm", false, false);
	char ids[4][UTIL_ID_SIZE];
	enqueue_stamped("win", "ev", rev, 4, ids);
	for (int i = 0; i < 4; i++) {
		char *result = only_success("win", ids[i]);
		cr_assert_not_null(strstr(result, ids[i]), "result %s", result);
		free(result);
	}
	assert_no_dead_letters("win");
	struct executor_stats s;
	executor_stats(ex, &s);
	cr_assert_eq(s.failed, 0);
}

Test(executor_service,
     an_event_accepted_at_a_revision_ahead_of_the_executor_waits_until_it_catches_up)
{
	add_tenant("win");
	put_module("win", "echo.wasm", "sdk/examples/echo.wasm");
	put_module("win", "greet.wasm", "sdk/examples/greet.wasm");
	deploy("id: other\ntenant: win\nqueues:\n  - id: q\njobs:\n  - event:\n      id: other\n"
	       "      supplierqueue: q\n      runtime: rt\n"
	       "runtimes:\n  - id: rt\n    moduleref: greet.wasm\n");
	uint64_t now = control_revision(ctl);
	/* Accepted under the next revision, which deploys its package: the
	 * executor has not seen it and must wait, not fail it as unknown. */
	char ids[1][UTIL_ID_SIZE];
	enqueue_stamped("win", "ev", now + 1, 1, ids);
	struct executor_stats s;
	for (int i = 0; i < 3000; i++) {
		executor_stats(ex, &s);
		if (s.released > 0)
			break;
		util_sleep_ms(20);
	}
	cr_assert_gt(s.released, 0, "the event was not released while it waited");
	cr_assert_eq(s.failed, 0, "the event failed instead of waiting");
	cr_assert_geq(deploy_window("echo.wasm", false, false), now + 1);
	char *result = only_success("win", ids[0]);
	free(result);

	/* Unknown at a revision the executor has applied: fails as before. */
	char unknown[1][UTIL_ID_SIZE];
	enqueue_stamped("win", "nope", control_revision(ctl), 1, unknown);
	Noetl__ExecutionsReply *hold;
	Noetl__Execution *e = wait_exec("win", unknown[0], NOETL__EXEC_STATUS__EXEC_DEAD, &hold);
	cr_assert_not_null(strstr(e->reason, "unknown event 'nope'"), "%s", e->reason);
	noetl__executions_reply__free_unpacked(hold, NULL);
}

/* Issue #7 item 6: a package update mid-load switches modules without losing
 * or double-running events. */
Test(executor_service,
     a_package_update_mid_load_switches_modules_without_losing_or_repeating_events, .timeout = 300)
{
	enum { PART = 100, N = 3 * PART };
	add_tenant("win");
	put_module("win", "echo.wasm", "sdk/examples/echo.wasm");
	put_module("win", "greet.wasm", "sdk/examples/greet.wasm");
	uint64_t r0 = deploy_window("echo.wasm", false, true);
	char(*ids)[UTIL_ID_SIZE] = calloc(N, UTIL_ID_SIZE);
	cr_assert_not_null(ids);
	/* Accepted before the update; the update is deployed while they run
	 * and while the next part is accepted under it and its module
	 * compiles; the last part comes once the executor applied it. */
	for (int b = 0; b < PART; b += 25)
		enqueue_stamped("win", "ev", r0, 25, ids + b);
	uint64_t r1 = deploy_window("greet.wasm", true, false);
	for (int b = PART; b < 2 * PART; b += 25)
		enqueue_stamped("win", "ev", r1, 25, ids + b);
	wait_applied(r1);
	for (int b = 2 * PART; b < N; b += 25)
		enqueue_stamped("win", "ev", r1, 25, ids + b);

	int on_b = 0;
	for (int i = 0; i < N; i++) {
		char *result = only_success("win", ids[i]);
		bool greeted = strncmp(result, "Hello, ", 7) == 0;
		if (i >= PART)
			cr_assert(greeted,
			          "event %d, accepted under the update, ran on the old "
			          "module: %s",
			          i, result);
		else if (!greeted)
			cr_assert_not_null(strstr(result, ids[i]), "result %s", result);
		on_b += greeted;
		free(result);
	}
	cr_assert_geq(on_b, 2 * PART);
	assert_no_dead_letters("win");
	Noetl__StatsRequest sr = NOETL__STATS_REQUEST__INIT;
	sr.tenant = "win";
	Noetl__StatsReply *st = (Noetl__StatsReply *)testrpc_ok(c_q, &noetl__queue__descriptor,
	                                                        "Stats", &sr.base, NULL);
	cr_assert_eq(st->n_queues, 1);
	cr_assert_eq(st->queues[0]->acked, N);
	cr_assert_eq(st->queues[0]->failed, 0);
	cr_assert_eq(st->queues[0]->ready + st->queues[0]->leased + st->queues[0]->delayed, 0);
	noetl__stats_reply__free_unpacked(st, NULL);
	free(ids);
}
