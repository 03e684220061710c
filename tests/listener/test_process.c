/*
 * noetl-listener as a process, in front of noetl-control, noetl-repository,
 * noetl-queue and noetl-recorder processes: what main.c wires, over ipc://
 * and HTTP, started and stopped the way an operator would.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "control.pb-c.h"
#include "httpc.h"
#include "jobdef.h"
#include "repository.pb-c.h"
#include "rpc.h"
#include "testrpc.h"
#include "testutil.h"
#include "util.h"

static char dir[256];

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
}

static void teardown(void)
{
	testutil_rmtree(dir);
}

TestSuite(process, .init = setup, .fini = teardown, .timeout = 180);

static void url(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "ipc://%s/%s.sock", dir, name);
}

/* Spawns build program prog with args (NULL-terminated after prog), its
 * output in dir/<log>.log. */
static pid_t spawn(const char *prog, const char *log, const char *const *args)
{
	char path[512], logpath[512];
	testutil_build_path(prog, path, sizeof(path));
	snprintf(logpath, sizeof(logpath), "%s/%s.log", dir, log);
	char *argv[32];
	int n = 0;
	argv[n++] = path;
	for (; args[n - 1] != NULL && n < 31; n++)
		argv[n] = (char *)args[n - 1];
	argv[n] = NULL;
	return testutil_spawn(argv, logpath);
}

/* Stops pid with SIGTERM and checks it exited 0 and logged no sanitizer
 * report. */
static void stop(pid_t pid, const char *log)
{
	int st = testutil_kill(pid, SIGTERM);
	char logpath[512];
	snprintf(logpath, sizeof(logpath), "%s/%s.log", dir, log);
	char *text = testutil_read_file(logpath, NULL);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s did not exit 0 (status %d): %s", log,
	          st, text != NULL ? text : "");
	if (text != NULL) {
		cr_assert_null(strstr(text, "Sanitizer"), "%s: %s", log, text);
		cr_assert_null(strstr(text, "runtime error"), "%s: %s", log, text);
	}
	free(text);
}

static int get_status(int port, const char *path, char **body)
{
	struct httpc_reply r;
	if (httpc_request(port, "GET", path, NULL, NULL, 0, &r) != 0)
		return 0;
	int st = r.status;
	if (body != NULL)
		*body = strdup(r.body);
	httpc_reply_free(&r);
	return st;
}

static int post(int port, const char *path, const char *token, const char *body, char **out)
{
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\n%s%s%s",
	         token != NULL ? "Authorization: Bearer " : "", token != NULL ? token : "",
	         token != NULL ? "\r\n" : "");
	struct httpc_reply r;
	cr_assert_eq(httpc_request(port, "POST", path, hdr, body, strlen(body), &r), 0);
	int st = r.status;
	if (out != NULL)
		*out = strdup(r.body);
	httpc_reply_free(&r);
	return st;
}

Test(process, the_listener_process_takes_events_for_the_other_processes)
{
	char control[300], control_pub[300], repo[300], repo_pub[300], queue[300], rec[300],
	        rec_pub[300], data[4][300], http[64];
	url(control, sizeof(control), "control");
	url(control_pub, sizeof(control_pub), "control-pub");
	url(repo, sizeof(repo), "repo");
	url(repo_pub, sizeof(repo_pub), "repo-pub");
	url(queue, sizeof(queue), "queue");
	url(rec, sizeof(rec), "rec");
	url(rec_pub, sizeof(rec_pub), "rec-pub");
	const char *names[] = {"control", "repository", "queue", "recorder"};
	for (int i = 0; i < 4; i++)
		snprintf(data[i], sizeof(data[i]), "%s/%s", dir, names[i]);
	const char *eph = "http://127.0.0.1:0";

	pid_t prepo = spawn("src/repository/noetl-repository", "repository",
	                    (const char *[]){"--repository.data-dir", data[1],
	                                     "--repository.listen", repo, "--repository.stream",
	                                     repo_pub, "--repository.http", eph, NULL});
	pid_t pqueue = spawn("src/queue/noetl-queue", "queue",
	                     (const char *[]){"--queue.data-dir", data[2], "--queue.listen", queue,
	                                      "--queue.http", eph, NULL});
	pid_t prec =
	        spawn("src/recorder/noetl-recorder", "recorder",
	              (const char *[]){"--recorder.data-dir", data[3], "--recorder.listen", rec,
	                               "--recorder.stream", rec_pub, "--recorder.http", eph, NULL});
	pid_t pcontrol =
	        spawn("src/control/noetl-control", "control",
	              (const char *[]){"--control.data-dir", data[0], "--control.listen", control,
	                               "--control.stream", control_pub, "--repository.url", repo,
	                               "--queue.url", queue, "--control.http", eph, NULL});

	struct rpc_client *cc, *rc;
	struct rpc_client_options co = {.connect_wait_ms = 20000};
	cr_assert_eq(rpc_client_create(control, &co, &cc), 0);
	cr_assert_eq(rpc_client_create(repo, &co, &rc), 0);
	Noetl__AddTenantRequest at = NOETL__ADD_TENANT_REQUEST__INIT;
	at.id = "acme";
	protobuf_c_message_free_unpacked(
	        testrpc_ok(cc, &noetl__control__descriptor, "AddTenant", &at.base, NULL), NULL);
	static const char wasm[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
	static const char schema[] = "{\"type\":\"object\",\"required\":[\"name\"]}";
	Noetl__PutFileRequest pf =
	        testrpc_put_file("acme", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm));
	protobuf_c_message_free_unpacked(
	        testrpc_ok(rc, &noetl__repository__descriptor, "PutFile", &pf.base, NULL), NULL);
	pf = testrpc_put_file("acme", "person.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema,
	                      sizeof(schema) - 1);
	protobuf_c_message_free_unpacked(
	        testrpc_ok(rc, &noetl__repository__descriptor, "PutFile", &pf.base, NULL), NULL);
	static const char yaml[] =
	        "id: p1\ntenant: acme\nqueues:\n  - id: inbox\njobs:\n"
	        "  - event:\n      id: greet\n      schema:\n        id: s\n"
	        "        schemaref: person.json\n      supplierqueue: inbox\n"
	        "      runtime: rt\nruntimes:\n  - id: rt\n    moduleref: m.wasm\n";
	Noetl__Package *pkg = NULL;
	cr_assert_eq(jobdef_parse(yaml, sizeof(yaml) - 1, "p1.yml", &pkg, NULL), 0);
	Noetl__DeployRequest dr = NOETL__DEPLOY_REQUEST__INIT;
	dr.package = pkg;
	protobuf_c_message_free_unpacked(
	        testrpc_ok(cc, &noetl__control__descriptor, "Deploy", &dr.base, NULL), NULL);
	jobdef_free(pkg);
	Noetl__CreateTokenRequest ct = NOETL__CREATE_TOKEN_REQUEST__INIT;
	ct.tenant = "acme";
	Noetl__CreateTokenReply *tr = (Noetl__CreateTokenReply *)testrpc_ok(
	        cc, &noetl__control__descriptor, "CreateToken", &ct.base, NULL);
	char token[128];
	snprintf(token, sizeof(token), "%s", tr->secret);
	protobuf_c_message_free_unpacked(&tr->base, NULL);

	int port = testutil_free_port();
	snprintf(http, sizeof(http), "http://127.0.0.1:%d", port);
	pid_t plistener =
	        spawn("src/listener/noetl-listener", "listener",
	              (const char *[]){"--http", http, "--control", control, "--control.stream",
	                               control_pub, "--repository", repo, "--repository.stream",
	                               repo_pub, "--queue", queue, "--recorder", rec, NULL});
	int st = 0;
	for (int i = 0; i < 3000 && st != 200; i++) {
		st = get_status(port, "/readyz", NULL);
		if (st != 200)
			util_sleep_ms(10);
	}
	cr_assert_eq(st, 200, "the listener did not become ready");

	char *body = NULL;
	st = post(port, "/events/acme/greet", token, "{\"data\":[{\"name\":\"Ada\"}]}", &body);
	cr_assert_eq(st, 202, "%s", body);
	json_t *j = json_loads(body, 0, NULL);
	cr_assert_eq(json_integer_value(json_object_get(j, "accepted")), 1);
	json_decref(j);
	free(body);
	st = post(port, "/events/acme/greet", token, "{\"data\":[{\"age\":1}]}", &body);
	cr_assert_eq(st, 400, "%s", body);
	free(body);
	cr_assert_eq(post(port, "/events/acme/greet", NULL, "{\"data\":[{}]}", NULL), 401);

	rpc_client_destroy(cc);
	rpc_client_destroy(rc);
	stop(plistener, "listener");
	stop(pcontrol, "control");
	stop(prec, "recorder");
	stop(pqueue, "queue");
	stop(prepo, "repository");
}

Test(process, development_mode_is_announced_and_unloaded_definitions_are_503)
{
	char control[300], control_pub[300], repo[300], repo_pub[300], queue[300], http[64];
	url(control, sizeof(control), "control");
	url(control_pub, sizeof(control_pub), "control-pub");
	url(repo, sizeof(repo), "repo");
	url(repo_pub, sizeof(repo_pub), "repo-pub");
	url(queue, sizeof(queue), "queue");
	int port = testutil_free_port();
	snprintf(http, sizeof(http), "http://127.0.0.1:%d", port);
	/* nothing else runs: the listener serves health, and 503 for events */
	pid_t pl = spawn("src/listener/noetl-listener", "listener",
	                 (const char *[]){"--http", http, "--dev", "--control", control,
	                                  "--control.stream", control_pub, "--repository", repo,
	                                  "--repository.stream", repo_pub, "--queue", queue,
	                                  "--recorder", "", NULL});
	int st = 0;
	for (int i = 0; i < 3000 && st != 200; i++) {
		st = get_status(port, "/healthz", NULL);
		if (st != 200)
			util_sleep_ms(10);
	}
	cr_assert_eq(st, 200);
	char *body = NULL;
	cr_assert_eq(get_status(port, "/readyz", &body), 503);
	cr_assert_not_null(strstr(body, "control"), "%s", body);
	free(body);
	st = post(port, "/events/acme/greet", NULL, "{\"data\":[{}]}", &body);
	cr_assert_eq(st, 503, "%s", body);
	cr_assert_not_null(strstr(body, "definitions"), "%s", body);
	free(body);
	char logpath[512];
	snprintf(logpath, sizeof(logpath), "%s/listener.log", dir);
	stop(pl, "listener");
	char *log = testutil_read_file(logpath, NULL);
	cr_assert_not_null(log);
	cr_assert_not_null(strstr(log, "DEVELOPMENT MODE"), "%s", log);
	free(log);
}

Test(process, a_bad_flag_is_refused_with_exit_2)
{
	pid_t pl = spawn("src/listener/noetl-listener", "listener",
	                 (const char *[]){"--listener.max-body", "lots", NULL});
	int st = testutil_wait(pl, 30000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
}
