/*
 * Jobico's ten end-to-end scenarios, against the real noetl processes, with
 * noetl's answers (docs/jobico.md):
 *
 *   start/stop            every service answers, stops cleanly on SIGTERM and
 *                         comes back with its data
 *   echo ok               202, executed, result recorded
 *   wasm error            the module's non-zero code is recorded and routes
 *                         the job's result.error event
 *   schema updated live   a new schema version applies without a restart
 *   package deleted live  its events get 404 from then on
 *   unknown event/tenant  404 naming what is unknown
 *   bad body              400 saying where (JSON pointer)
 *   queue down            503 with Retry-After, never a hang; 202 once it is back
 *   control down          cached definitions keep working
 *   repository down       cached schemas and modules keep working; deploys
 *                         are refused, naming the repository
 *
 * Each test has its own cluster: tenant "acme" with the SDK's echo and error
 * modules, the Jobico schema (compat/jobico/schema.json) as person.json, and
 * the package below.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cluster.h"
#include "flow.h"
#include "testutil.h"

#define WAIT_MS 30000

/* Jobico's demo shapes, plus a retry policy patient enough for a
 * freshly started executor that is still compiling a module. */
static const char *const job_yaml =
        "id: jobs\n"
        "name: Jobico scenarios\n"
        "tenant: acme\n"
        "queues:\n"
        "  - id: queue-default\n"
        "    name: Q.Default\n"
        "jobs:\n"
        "  - event:\n"
        "      id: greet\n"
        "      name: Greet event\n"
        "      datatype: 0\n"
        "      schema:\n"
        "        id: greet-event-schema\n"
        "        schemaref: person.json\n"
        "      supplierqueue: queue-default\n"
        "      runtime: echo\n"
        "  - event:\n"
        "      id: fail\n"
        "      supplierqueue: queue-default\n"
        "      runtime: error\n"
        "    result:\n"
        "      error:\n"
        "        id: failed\n"
        "        supplierqueue: queue-default\n"
        "        runtime: echo\n"
        "runtimes:\n"
        "  - id: echo\n"
        "    moduleref: echo.wasm\n"
        "    mainfuncname: event\n"
        "    retry: {maxattempts: 30, backoffbase: 200ms, backoffmax: 1s}\n"
        "  - id: error\n"
        "    moduleref: error.wasm\n"
        "    retry: {maxattempts: 30, backoffbase: 200ms, backoffmax: 1s}\n";

static const char *const ada = "{\"data\":[{\"firstName\":\"Ada\",\"lastName\":\"Lovelace\"}]}";

static struct cluster C;

static void compat_path(const char *name, char *out, size_t cap)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "tests/e2e/compat/%s", name);
	testutil_source_path(rel, out, cap);
}

static void setup(void)
{
	cluster_create(&C, NULL);
	static const char *const modules[] = {"echo", "error", NULL};
	cluster_tenant(&C, "acme", modules);
	char schema[512];
	compat_path("schema.json", schema, sizeof(schema));
	free(cluster_ctl_ok(&C, "upload json acme person.json '%s'", schema));
	cluster_deploy(&C, job_yaml, false);
}

static void teardown(void)
{
	cluster_destroy(&C);
}

TestSuite(jobico, .init = setup, .fini = teardown, .timeout = 180);

/* Posts Ada and waits until she is done; returns her id in out. */
static void ada_done(char *out, size_t cap)
{
	flow_post(&C, "/events/acme/greet", ada, out, cap);
	json_decref(flow_wait_step(&C, out, "done", WAIT_MS));
}

/* Posts until the status is want (a change the services learn of over
 * their streams applies a moment later); returns the last reply. */
static int post_until(const char *path, const char *body, int want, struct httpc_reply *out)
{
	long long end = cluster_now_ms() + WAIT_MS;
	for (;;) {
		struct httpc_reply r;
		int st = cluster_post(&C, path, NULL, body, &r);
		if (st == want || cluster_now_ms() > end) {
			*out = r;
			return st;
		}
		httpc_reply_free(&r);
		cluster_sleep_ms(100);
	}
}

Test(jobico, every_service_starts_stops_cleanly_and_restarts_with_its_data)
{
	char *out = cluster_ctl_ok(&C, "status -o json");
	json_t *doc = flow_parse(out, "status -o json");
	json_t *rows = json_is_array(doc) ? doc : json_object_get(doc, "services");
	cr_assert_eq(json_array_size(rows), 5, "status lists 5 services:\n%s", out);
	for (size_t i = 0; i < json_array_size(rows); i++)
		cr_expect_str_eq(flow_str(json_array_get(rows, i), "state"), "ready", "%s", out);
	json_decref(doc);
	free(out);

	char id[64];
	ada_done(id, sizeof(id));

	for (int s = SVC_COUNT - 1; s >= 0; s--) {
		int status = cluster_stop(&C, s, SIGTERM);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		          "%s did not exit 0 on SIGTERM (status %d)", cluster_svc_name(s), status);
	}
	cr_assert_neq(cluster_ctl(&C, &out, "tenant list"), 0, "tenant list with control down");
	cr_expect(strstr(out, "cannot reach the control") != NULL, "%s", out);
	free(out);

	for (int s = 0; s < SVC_COUNT; s++)
		cluster_start(&C, s);
	free(cluster_ctl_until(&C, "acme", WAIT_MS, "tenant list"));
	free(cluster_ctl_until(&C, "jobs", WAIT_MS, "list acme"));
	json_decref(flow_wait_step(&C, id, "done", WAIT_MS)); /* the recorder kept it */
	char id2[64];
	ada_done(id2, sizeof(id2));
}

Test(jobico, an_echo_event_is_accepted_executed_and_its_result_recorded)
{
	char id[64];
	ada_done(id, sizeof(id));
	/* The last attempt succeeded (an executor that is still
	 * compiling the module when the first attempt comes fails it with
	 * "unknown event"; the retry policy covers that). */
	json_t *ex = flow_executions(&C, "acme", id);
	cr_assert_geq(json_array_size(ex), 1, "an attempt was recorded");
	json_t *e = flow_last(ex);
	cr_expect_str_eq(flow_str(e, "status"), "ok");
	cr_expect_str_eq(flow_str(e, "event"), "greet");
	char *text = json_dumps(e, 0);
	cr_expect(strstr(text, "Lovelace") != NULL, "the result echoes the payload: %s", text);
	free(text);
	json_decref(ex);
}

Test(jobico, a_module_error_is_recorded_and_routes_the_result_error_event)
{
	char id[64];
	flow_post(&C, "/events/acme/fail", "{\"data\":[{\"why\":\"no\"}]}", id, sizeof(id));
	json_t *doc = flow_wait_step(&C, id, "routed", WAIT_MS);
	json_t *children = json_object_get(doc, "children");
	cr_assert_eq(json_array_size(children), 1, "one result.error follow-up");
	char child[64];
	snprintf(child, sizeof(child), "%s", json_string_value(json_array_get(children, 0)));
	json_decref(doc);

	json_t *ex = flow_executions(&C, "acme", id);
	cr_assert_geq(json_array_size(ex), 1);
	json_t *e = flow_last(ex);
	cr_expect_str_eq(flow_str(e, "status"), "error");
	cr_expect_eq(json_integer_value(json_object_get(e, "code")), 1);
	char *text = json_dumps(e, 0);
	cr_expect(strstr(text, "cannot handle") != NULL, "the module's message: %s", text);
	free(text);
	json_decref(ex);

	/* The follow-up ran (echo) with the documented payload. */
	doc = flow_wait_step(&C, child, "done", WAIT_MS);
	cr_expect_str_eq(flow_str(json_array_get(json_object_get(doc, "entries"), 0), "event"),
	                 "failed");
	json_decref(doc);
	ex = flow_executions(&C, "acme", child);
	text = json_dumps(ex, 0);
	cr_expect(strstr(text, "\\\"parent\\\"") != NULL || strstr(text, "parent") != NULL,
	          "the follow-up's payload names its parent: %s", text);
	free(text);
	json_decref(ex);

	/* The guest's log line is kept. */
	char *out = cluster_ctl_until(&C, "refusing an event", WAIT_MS, "logs acme --event %s", id);
	free(out);
}

Test(jobico, a_new_schema_version_applies_live)
{
	char id[64];
	ada_done(id, sizeof(id));

	char updated[512];
	compat_path("schema_updated.json", updated, sizeof(updated));
	free(cluster_ctl_ok(&C, "upload json acme person.json '%s'", updated));

	struct httpc_reply r;
	int st = post_until("/events/acme/greet", ada, 400, &r);
	cr_assert_eq(st, 400, "Ada without dob is refused under the new schema: %d %s", st, r.body);
	cr_expect(strstr(r.body, "dob") != NULL, "the 400 names the missing property: %s", r.body);
	httpc_reply_free(&r);

	st = cluster_post(&C, "/events/acme/greet", NULL,
	                  "{\"data\":[{\"name\":\"Ada\",\"dob\":\"1815-12-10\"}]}", &r);
	cr_assert_eq(st, 202, "%d %s", st, r.body);
	cr_assert(cluster_first_id(&r, id, sizeof(id)));
	httpc_reply_free(&r);
	json_decref(flow_wait_step(&C, id, "done", WAIT_MS));
}

Test(jobico, a_deleted_package_refuses_its_events_live)
{
	char id[64];
	ada_done(id, sizeof(id));
	free(cluster_ctl_ok(&C, "delete acme jobs"));

	struct httpc_reply r;
	int st = post_until("/events/acme/greet", ada, 404, &r);
	cr_assert_eq(st, 404, "%d %s", st, r.body);
	cr_expect(strstr(r.body, "greet") != NULL, "the 404 names the event: %s", r.body);
	httpc_reply_free(&r);
	char *out = cluster_ctl_ok(&C, "list acme");
	cr_expect(strstr(out, "jobs") == NULL, "the package is gone:\n%s", out);
	free(out);

	/* Deploying it again brings the event back. */
	cluster_deploy(&C, job_yaml, false);
	ada_done(id, sizeof(id));
}

Test(jobico, an_unknown_event_or_tenant_gets_404)
{
	char id[64];
	ada_done(id, sizeof(id)); /* the listener knows the package */
	struct httpc_reply r;
	int st = cluster_post(&C, "/events/acme/nosuch", NULL, ada, &r);
	cr_expect_eq(st, 404, "%d %s", st, r.body);
	cr_expect(r.body != NULL && strstr(r.body, "nosuch") != NULL, "%s", r.body);
	httpc_reply_free(&r);

	st = cluster_post(&C, "/events/ghost/greet", NULL, ada, &r);
	cr_expect_eq(st, 404, "an unknown tenant: %d %s", st, r.body);
	cr_expect(r.body != NULL && strstr(r.body, "ghost") != NULL, "%s", r.body);
	httpc_reply_free(&r);

	st = cluster_post(&C, "/nothing/here", NULL, ada, &r);
	cr_expect_eq(st, 404, "an unknown path: %d %s", st, r.body);
	httpc_reply_free(&r);

	/* No token, a wrong token. */
	st = cluster_post(&C, "/events/acme/greet", "", ada, &r);
	cr_expect_eq(st, 401, "no token: %d %s", st, r.body);
	httpc_reply_free(&r);
	st = cluster_post(&C, "/events/acme/greet", "not-a-token", ada, &r);
	cr_expect(st == 401 || st == 403, "a wrong token: %d %s", st, r.body);
	httpc_reply_free(&r);
}

Test(jobico, a_bad_body_gets_400_saying_where)
{
	char id[64];
	ada_done(id, sizeof(id));
	static const struct {
		const char *body;
		const char *says; /* in the reply */
	} cases[] = {
	        {"this is not json", ""},
	        {"{\"data\":5}", "data"},
	        {"{\"nodata\":[]}", "data"},
	        {"{\"data\":[{\"firstName\":\"Ada\"}]}", "lastName"},
	        {"{\"data\":[{\"firstName\":\"Ada\",\"lastName\":\"L\",\"age\":\"old\"}]}",
	         "/data/0/age"},
	        {"{\"data\":[{\"firstName\":\"A\",\"lastName\":\"B\"},{\"firstName\":7,"
	         "\"lastName\":\"C\"}]}",
	         "/data/1/firstName"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct httpc_reply r;
		int st = cluster_post(&C, "/events/acme/greet", NULL, cases[i].body, &r);
		cr_expect_eq(st, 400, "%s -> %d %s", cases[i].body, st, r.body);
		cr_expect(r.body != NULL && strstr(r.body, cases[i].says) != NULL,
		          "%s -> %s (wanted '%s' in it)", cases[i].body, r.body, cases[i].says);
		httpc_reply_free(&r);
	}
	/* All-or-nothing: the batch with one bad element left nothing behind. */
	char *out = cluster_ctl_ok(&C, "recorder --tenant acme -o json");
	json_t *doc = flow_parse(out, "recorder -o json");
	json_t *arr = json_is_array(doc) ? doc : json_object_get(doc, "executions");
	cr_expect_eq(json_array_size(arr), 1, "only Ada's execution:\n%s", out);
	json_decref(doc);
	free(out);
}

Test(jobico, a_queue_outage_answers_503_with_retry_after_and_recovers)
{
	char id[64];
	ada_done(id, sizeof(id));
	cluster_stop(&C, SVC_QUEUE, SIGKILL);

	long long t0 = cluster_now_ms();
	struct httpc_reply r;
	int st = cluster_post(&C, "/events/acme/greet", NULL, ada, &r);
	cr_expect_eq(st, 503, "%d %s", st, r.body);
	char ra[32];
	cr_expect_not_null(httpc_header(&r, "Retry-After", ra, sizeof(ra)), "%s", r.head);
	httpc_reply_free(&r);
	cr_log_info("503 after %lld ms", cluster_now_ms() - t0);

	cluster_start(&C, SVC_QUEUE);
	st = post_until("/events/acme/greet", ada, 202, &r);
	cr_assert_eq(st, 202, "%d %s", st, r.body);
	cr_assert(cluster_first_id(&r, id, sizeof(id)));
	httpc_reply_free(&r);
	json_decref(flow_wait_step(&C, id, "done", WAIT_MS));
}

Test(jobico, a_control_outage_keeps_cached_definitions_working)
{
	char id[64];
	ada_done(id, sizeof(id));
	cluster_stop(&C, SVC_CONTROL, SIGKILL);

	ada_done(id, sizeof(id));
	char *out = NULL;
	char path[400];
	cluster_file(&C, "job2.yml", job_yaml, path, sizeof(path));
	int st = cluster_ctl(&C, &out, "deploy --update '%s'", path);
	cr_expect_eq(st, 1, "deploy with control down: exit %d\n%s", st, out);
	cr_expect(strstr(out, "control") != NULL, "the error names control:\n%s", out);
	free(out);

	cluster_start(&C, SVC_CONTROL);
	free(cluster_ctl_ok(&C, "deploy --update '%s'", path));
	ada_done(id, sizeof(id));
}

Test(jobico, a_repository_outage_keeps_cached_schemas_and_modules_working)
{
	char id[64];
	ada_done(id, sizeof(id));
	cluster_stop(&C, SVC_REPOSITORY, SIGKILL);

	ada_done(id, sizeof(id));
	char *out = NULL;
	char path[400];
	cluster_file(&C, "job2.yml", job_yaml, path, sizeof(path));
	int st = cluster_ctl(&C, &out, "deploy --update '%s'", path);
	cr_expect_eq(st, 1, "deploy with the repository down: exit %d\n%s", st, out);
	cr_expect(strstr(out, "repository") != NULL, "the error names the repository:\n%s", out);
	free(out);
	st = cluster_ctl(&C, &out, "files list acme");
	cr_expect_eq(st, 1, "files list with the repository down: exit %d\n%s", st, out);
	free(out);

	cluster_start(&C, SVC_REPOSITORY);
	free(cluster_ctl_ok(&C, "deploy --update '%s'", path));
	ada_done(id, sizeof(id));
}
