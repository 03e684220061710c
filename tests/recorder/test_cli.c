/*
 * noetlctl's recorder commands (recorder, logs, events show) run as users
 * run them: the built noetlctl against the real noetl-recorder process, both
 * over ipc:// sockets in a temporary directory.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "recorder.pb-c.h"
#include "recutil.h"
#include "rpc.h"
#include "testrpc.h"
#include "testutil.h"
#include "util.h"

static char dir[256], rpc_url[300], pub_url[300], data[300], ctl[512];
static pid_t recorder_pid;
static struct rpc_client *client;

/* Fails the test if a sanitizer reported anything in text (the output of
 * a child process, which Criterion does not see). */
static void assert_clean(const char *text, const char *what)
{
	const char *marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
	                       "runtime error: "};
	for (size_t i = 0; text != NULL && i < sizeof(marks) / sizeof(marks[0]); i++)
		cr_assert(strstr(text, marks[i]) == NULL, "%s: %s", what, text);
}

static void assert_log_clean(void)
{
	char log[300];
	snprintf(log, sizeof(log), "%s/recorder.log", dir);
	char *text = testutil_read_file(log, NULL);
	assert_clean(text, "noetl-recorder");
	free(text);
}

static pid_t start_recorder(void)
{
	char bin[512], log[300];
	testutil_build_path("src/recorder/noetl-recorder", bin, sizeof(bin));
	snprintf(log, sizeof(log), "%s/recorder.log", dir);
	char *argv[] = {bin,     "--data-dir",  data,   "--listen", rpc_url, "--stream",
	                pub_url, "--log.level", "warn", "--http",   "",      NULL};
	return testutil_spawn(argv, log);
}

static void setup(void)
{
	log_setup("test", LOG_LEVEL_WARN, false);
	testutil_tempdir(dir, sizeof(dir));
	snprintf(rpc_url, sizeof(rpc_url), "ipc://%s/rpc.sock", dir);
	snprintf(pub_url, sizeof(pub_url), "ipc://%s/pub.sock", dir);
	snprintf(data, sizeof(data), "%s/db", dir);
	testutil_build_path("src/cli/noetlctl", ctl, sizeof(ctl));
	recorder_pid = start_recorder();
	struct rpc_client_options co = {.connect_wait_ms = 5000};
	cr_assert_eq(rpc_client_create(rpc_url, &co, &client), 0);
}

static void teardown(void)
{
	rpc_client_destroy(client);
	if (recorder_pid > 0) {
		int status = testutil_kill(recorder_pid, SIGTERM);
		assert_log_clean();
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "noetl-recorder: %d",
		          status);
	}
	testutil_rmtree(dir);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 180);

static void send(Noetl__Record **recs, size_t n)
{
	Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
	req.records = recs;
	req.n_records = n;
	char *err = NULL;
	int st;
	/* a recorder just restarted may take a while to answer on a busy machine */
	int64_t deadline = util_mono_ms() + 60000;
	while ((st = testrpc_call(client, &noetl__recorder__descriptor, "Record", &req.base, NULL,
	                          NULL, &err)) == NOETL__STATUS__UNAVAILABLE &&
	       util_mono_ms() < deadline) {
		free(err);
		err = NULL;
		util_sleep_ms(100);
	}
	cr_assert_eq(st, 0, "Record: %s", err ? err : "");
	recutil_free(recs, n);
}

static void send1_log(void)
{
	Noetl__Record *r = recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, "x");
	send(&r, 1);
}

/* Runs noetlctl with args (a shell fragment) against the recorder, with a
 * HOME of its own; returns the exit status, *out what it printed (stdout and
 * stderr; malloc'ed). */
static int ctl_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl_run(char **out, const char *fmt, ...)
{
	char args[1024], cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "HOME=%s %s --recorder %s --timeout 20s %s 2>&1", dir, ctl,
	         rpc_url, args);
	int rc = testutil_run(cmd, out);
	assert_clean(*out, "noetlctl");
	return rc;
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	cr_assert_not_null(j, "not JSON (%s): %s", e.text, text);
	return j;
}

Test(cli, recorder_shows_the_newest_executions_oldest_first_and_json_for_machines)
{
	int64_t now = util_now_ms() - 60000;
	Noetl__Record *recs[35];
	for (int i = 0; i < 35; i++) {
		char ev[16];
		snprintf(ev, sizeof(ev), "ev%02d", i);
		recs[i] = recutil_exec(i < 30 ? "acme" : "beta", ev, 1, now + i * 10,
		                       i % 7 == 0 ? NOETL__EXEC_STATUS__EXEC_DEAD
		                                  : NOETL__EXEC_STATUS__EXEC_OK);
	}
	send(recs, 35);

	char *out = NULL;
	int rc = ctl_run(&out, "recorder --tenant acme --lines 10 -o json");
	cr_assert_eq(rc, 0, "%s", out);
	json_t *j = parse(out);
	cr_assert_eq(json_array_size(j), 10);
	for (size_t i = 0; i < 10; i++) {
		json_t *e = json_array_get(j, i);
		cr_assert_str_eq(json_string_value(json_object_get(e, "tenant")), "acme");
		char want[16];
		snprintf(want, sizeof(want), "ev%02zu", 20 + i);
		cr_assert_str_eq(json_string_value(json_object_get(e, "event_id")), want);
		cr_assert_str_eq(json_string_value(json_object_get(e, "result")), "{\"ok\":true}");
	}
	json_decref(j);
	free(out);

	/* every tenant, as a table */
	rc = ctl_run(&out, "recorder -n 8");
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "STARTED") != NULL && strstr(out, "STATUS") != NULL, "%s", out);
	cr_assert(strstr(out, "beta") != NULL && strstr(out, "acme") != NULL, "%s", out);
	cr_assert(strstr(out, "ev26") == NULL && strstr(out, "ev27") != NULL, "the newest 8: %s",
	          out);
	free(out);

	rc = ctl_run(&out, "recorder --tenant acme --dead -o json");
	cr_assert_eq(rc, 0, "%s", out);
	j = parse(out);
	cr_assert_eq(json_array_size(j), 5, "ev00, ev07, ev14, ev21, ev28");
	json_decref(j);
	free(out);
}

Test(cli, recorder_pages_through_the_recorder_for_more_than_one_page_of_executions)
{
	/* the Recorder answers at most 1000 a call (paging.h); --lines used to
	 * be capped there */
	enum { N = 2500, BATCH = 500 }; /* N a multiple of BATCH */
	int64_t now = util_now_ms() - 600000;
	for (int b = 0; b < N; b += BATCH) {
		Noetl__Record *recs[BATCH];
		for (int i = 0; i < BATCH; i++) {
			char ev[16];
			snprintf(ev, sizeof(ev), "ev%04d", b + i);
			recs[i] = recutil_exec("acme", ev, 1, now + (b + i) * 10,
			                       NOETL__EXEC_STATUS__EXEC_OK);
		}
		send(recs, BATCH);
	}
	const int want[] = {2100, N};
	const char *ask[] = {"2100", "5000"};
	for (int k = 0; k < 2; k++) {
		char *out = NULL;
		int rc = ctl_run(&out, "recorder --tenant acme -n %s -o json", ask[k]);
		cr_assert_eq(rc, 0, "%s", out);
		json_t *j = parse(out);
		cr_assert_eq(json_array_size(j), (size_t)want[k], "-n %s", ask[k]);
		/* the newest, oldest first, each once: no gap or repeat where the
		 * pages meet */
		for (int i = 0; i < want[k]; i++) {
			char ev[16];
			snprintf(ev, sizeof(ev), "ev%04d", N - want[k] + i);
			const char *got = json_string_value(
			        json_object_get(json_array_get(j, (size_t)i), "event_id"));
			cr_assert_str_eq(got, ev, "-n %s, row %d: %s", ask[k], i, got);
		}
		json_decref(j);
		free(out);
	}
}

/* Runs "args" (which follows) and asserts it failed naming addr: an address
 * no transport knows makes following fail at once and say which it used. */
static void assert_follows(const char *addr, const char *args)
{
	char *out = NULL;
	int rc = ctl_run(&out, "%s", args);
	cr_assert_eq(rc, 1, "%s: %s", args, out);
	cr_assert(strstr(out, addr) != NULL, "%s: wanted %s in: %s", args, addr, out);
	free(out);
}

Test(cli, the_stream_address_comes_from_the_flag_then_the_environment_then_the_file)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/ctl.yaml", dir);
	const char *yaml = "recorder:\n  stream: bogus://from-file\n";
	cr_assert(testutil_write_file(path, yaml, strlen(yaml)));
	setenv("NOETL_CONFIG", path, 1);
	assert_follows("bogus://from-file", "logs acme --follow");
	assert_follows("bogus://from-file", "recorder --tenant acme --follow");

	setenv("NOETL_RECORDER_STREAM", "bogus://from-env", 1);
	assert_follows("bogus://from-env", "logs acme --follow");
	assert_follows("bogus://from-env", "recorder --tenant acme --follow");
	assert_follows("bogus://from-flag", "logs acme --follow --stream bogus://from-flag");
	assert_follows("bogus://from-flag", "--recorder.stream bogus://from-flag logs acme -f");
	unsetenv("NOETL_RECORDER_STREAM");
	unsetenv("NOETL_CONFIG");
}

Test(cli, logs_filter_by_event_level_time_and_count)
{
	int64_t now = util_now_ms() - 60000;
	Noetl__Record *recs[40];
	for (int i = 0; i < 40; i++) {
		char text[16];
		snprintf(text, sizeof(text), "line %d", i);
		recs[i] = recutil_log("acme", i % 2 ? "odd" : "even", (Noetl__LogLevel)(i % 4),
		                      now + i * 1000, text);
	}
	send(recs, 40);
	char *out = NULL;
	int rc = ctl_run(&out, "logs acme --event odd --level error -o json");
	cr_assert_eq(rc, 0, "%s", out);
	json_t *j = parse(out);
	cr_assert_eq(json_array_size(j), 10, "3, 7, 11, ...");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "text")),
	                 "line 3");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "level")),
	                 "error");
	json_decref(j);
	free(out);

	rc = ctl_run(&out, "logs acme --lines 3 -o json");
	cr_assert_eq(rc, 0, "%s", out);
	j = parse(out);
	cr_assert_eq(json_array_size(j), 3);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "text")),
	                 "line 37", "the newest 3, oldest first");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 2), "text")),
	                 "line 39");
	json_decref(j);
	free(out);

	rc = ctl_run(&out, "logs acme --since %lld", (long long)(now + 35000));
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "line 34") == NULL && strstr(out, "line 35") != NULL &&
	                  strstr(out, "line 39") != NULL,
	          "%s", out);
	cr_assert(strstr(out, "[odd] guest: line 35") != NULL, "the log file format: %s", out);
	free(out);

	rc = ctl_run(&out, "logs acme --since 1m -o json");
	cr_assert_eq(rc, 0, "%s", out);
	j = parse(out);
	cr_assert_geq(json_array_size(j), 1);
	json_decref(j);
	free(out);
}

Test(cli, bad_command_lines_exit_2_and_a_missing_event_exits_1)
{
	char *out = NULL;
	cr_assert_eq(ctl_run(&out, "logs"), 2, "%s", out);
	free(out);
	cr_assert_eq(ctl_run(&out, "logs acme --since yesterdayish"), 2, "%s", out);
	cr_assert(strstr(out, "--since") != NULL, "%s", out);
	free(out);
	cr_assert_eq(ctl_run(&out, "recorder --lines 0"), 2, "%s", out);
	free(out);
	cr_assert_eq(ctl_run(&out, "events show"), 2, "%s", out);
	free(out);
	cr_assert_eq(ctl_run(&out, "events show nope"), 1, "%s", out);
	cr_assert(strstr(out, "not found") != NULL, "%s", out);
	free(out);
	cr_assert_eq(ctl_run(&out, "logs 'bad tenant'"), 1, "%s", out);
	cr_assert(strstr(out, "invalid request") != NULL, "%s", out);
	free(out);
}

Test(cli, events_show_prints_the_timeline_and_the_whole_chain)
{
	int64_t t = util_now_ms() - 60000;
	Noetl__Record *recs[] = {
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_RECEIVED, t, NULL),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_ACCEPTED, t + 1, NULL),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_LEASED, t + 2, NULL),
	        recutil_exec("acme", "root", 1, t + 3, NOETL__EXEC_STATUS__EXEC_OK),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_ROUTED, t + 9, "kid1"),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_ROUTED, t + 9, "kid2"),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_DONE, t + 10, NULL),
	        recutil_timeline("acme", "kid1", NOETL__TIMELINE_KIND__TL_CAUSED_BY, t + 9, "root"),
	        recutil_timeline("acme", "kid1", NOETL__TIMELINE_KIND__TL_DEAD, t + 20, NULL),
	        recutil_timeline("acme", "kid2", NOETL__TIMELINE_KIND__TL_ROUTED, t + 30, "leaf"),
	        recutil_timeline("acme", "leaf", NOETL__TIMELINE_KIND__TL_DONE, t + 40, NULL),
	};
	send(recs, sizeof(recs) / sizeof(recs[0]));

	char *out = NULL;
	int rc = ctl_run(&out, "events show kid2");
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "event kid2 of tenant acme") != NULL, "%s", out);
	cr_assert(strstr(out, "routed") != NULL && strstr(out, "to leaf") != NULL, "%s", out);
	cr_assert(strstr(out, "root (done)") != NULL, "%s", out);
	cr_assert(strstr(out, "kid1 (dead)") != NULL, "%s", out);
	cr_assert(strstr(out, "kid2 (routed)  <- this event") != NULL, "%s", out);
	cr_assert(strstr(out, "leaf (done)") != NULL, "%s", out);
	free(out);

	rc = ctl_run(&out, "events show root --tenant acme -o json");
	cr_assert_eq(rc, 0, "%s", out);
	json_t *j = parse(out);
	json_t *entries = json_object_get(j, "entries");
	cr_assert_eq(json_array_size(entries), 7, "6 steps and the attempt from its execution");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(entries, 3), "step")),
	                 "attempt");
	json_t *chain = json_object_get(j, "chain");
	cr_assert_str_eq(json_string_value(json_object_get(chain, "event_id")), "root");
	json_t *kids = json_object_get(chain, "children");
	cr_assert_eq(json_array_size(kids), 2);
	json_t *kid2 = json_array_get(kids, 1);
	cr_assert_str_eq(json_string_value(json_object_get(kid2, "event_id")), "kid2");
	cr_assert_str_eq(json_string_value(json_object_get(
	                         json_array_get(json_object_get(kid2, "children"), 0), "event_id")),
	                 "leaf");
	json_decref(j);
	free(out);
}

/* Reads the NDJSON lines noetlctl printed so far into texts; returns the
 * count of lines (complete ones). */
static size_t read_lines(const char *path, char texts[][16], size_t cap, bool *bad)
{
	char *all = testutil_read_file(path, NULL);
	size_t n = 0;
	if (all == NULL)
		return 0;
	char *save = NULL;
	for (char *line = strtok_r(all, "\n", &save); line != NULL && n < cap;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t e;
		json_t *j = json_loads(line, 0, &e);
		if (j == NULL) {
			*bad = true; /* a partial last line, or noise */
			continue;
		}
		snprintf(texts[n++], 16, "%s", json_string_value(json_object_get(j, "text")));
		json_decref(j);
	}
	free(all);
	return n;
}

static void send_lines(int from, int to)
{
	for (int i = from; i < to; i += 10) {
		Noetl__Record *recs[10];
		for (int k = 0; k < 10; k++) {
			char text[16];
			snprintf(text, sizeof(text), "%d", i + k);
			recs[k] = recutil_log(k % 3 ? "acme" : "beta", NULL,
			                      NOETL__LOG_LEVEL__LOG_INFO, 0, text);
		}
		send(recs, 10);
	}
}

Test(cli, logs_follow_prints_every_new_line_once_across_a_recorder_restart)
{
	send_lines(0, 30); /* before: shown by the query, not again by the stream */
	char out_path[300], stream_arg[400];
	snprintf(out_path, sizeof(out_path), "%s/follow.out", dir);
	snprintf(stream_arg, sizeof(stream_arg), "--stream=%s", pub_url);
	char recorder_arg[400];
	snprintf(recorder_arg, sizeof(recorder_arg), "--recorder=%s", rpc_url);
	char *argv[] = {ctl,  recorder_arg, "logs",     "acme", "--follow",
	                "-o", "json",       stream_arg, NULL};
	char home[300];
	snprintf(home, sizeof(home), "HOME=%s", dir);
	putenv(home);
	pid_t follower = testutil_spawn(argv, out_path);

	/* the query part: the 18 acme lines stored before (k = 1, 2, 4, 5, 7, 8 of
	 * every ten) */
	char(*texts)[16] = calloc(1000, 16);
	bool bad = false;
	int64_t deadline = util_mono_ms() + 60000;
	while (read_lines(out_path, texts, 1000, &bad) < 18 && util_mono_ms() < deadline)
		util_sleep_ms(20);
	send_lines(30, 150);
	testutil_kill(recorder_pid, SIGKILL);
	recorder_pid = start_recorder();
	send_lines(150, 300);

	size_t want = 180; /* six of every ten of 300 */
	size_t n = 0;
	while ((n = read_lines(out_path, texts, 1000, &bad)) < want && util_mono_ms() < deadline)
		util_sleep_ms(50);
	util_sleep_ms(300); /* a duplicate, if one were coming, would come now */
	bad = false;
	n = read_lines(out_path, texts, 1000, &bad);
	int status = testutil_kill(follower, SIGTERM);
	char *all = testutil_read_file(out_path, NULL);
	assert_clean(all, "noetlctl --follow");
	free(all);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "noetlctl ended with %d", status);
	cr_assert(!bad, "every line is one JSON object");
	cr_assert_eq(n, want, "%zu lines", n);
	size_t k = 0;
	for (int i = 0; i < 300; i++) {
		if (i % 10 % 3 == 0)
			continue; /* beta's */
		char w[16];
		snprintf(w, sizeof(w), "%d", i);
		cr_assert_str_eq(texts[k], w, "line %zu", k);
		k++;
	}
	free(texts);
}

Test(cli, retention_is_shown_set_and_reset)
{
	send1_log();
	char *out = NULL;
	int rc = ctl_run(&out, "retention set acme --max-age 1h --max-bytes 64MiB");
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "own") != NULL && strstr(out, "1h") != NULL, "%s", out);
	free(out);
	rc = ctl_run(&out, "retention show acme -o json");
	cr_assert_eq(rc, 0, "%s", out);
	json_t *j = parse(out);
	cr_assert_eq(json_integer_value(json_object_get(j, "max_age_ms")), 3600000);
	cr_assert_eq(json_integer_value(json_object_get(j, "max_bytes")), 64 << 20);
	cr_assert_eq(json_integer_value(json_object_get(j, "records")), 1);
	json_decref(j);
	free(out);
	rc = ctl_run(&out, "retention set acme --default -o json");
	cr_assert_eq(rc, 0, "%s", out);
	j = parse(out);
	cr_assert_str_eq(json_string_value(json_object_get(j, "policy")), "default");
	cr_assert_eq(json_integer_value(json_object_get(j, "max_age_ms")), 7LL * 86400000,
	             "the recorder's default: 7 days");
	json_decref(j);
	free(out);
	cr_assert_eq(ctl_run(&out, "retention set acme"), 2, "%s", out);
	free(out);
	cr_assert_eq(ctl_run(&out, "retention set acme --default --max-age 1h"), 2, "%s", out);
	free(out);
}

/* Counts the complete lines of path. */
static size_t count_lines(const char *path)
{
	char *all = testutil_read_file(path, NULL);
	size_t n = 0;
	for (char *p = all; p != NULL && *p != '\0'; p++)
		n += *p == '\n';
	free(all);
	return n;
}

Test(cli, recorder_follow_prints_a_tenants_new_executions_and_no_others)
{
	int64_t t = util_now_ms() - 1000;
	Noetl__Record *before[] = {
	        recutil_exec("acme", "old1", 1, t, NOETL__EXEC_STATUS__EXEC_OK),
	        recutil_exec("acme", "old2", 1, t + 1, NOETL__EXEC_STATUS__EXEC_OK),
	};
	send(before, 2);
	char out_path[300], stream_arg[400], recorder_arg[400], home[300];
	snprintf(out_path, sizeof(out_path), "%s/follow.out", dir);
	snprintf(stream_arg, sizeof(stream_arg), "--stream=%s", pub_url);
	snprintf(recorder_arg, sizeof(recorder_arg), "--recorder=%s", rpc_url);
	snprintf(home, sizeof(home), "HOME=%s", dir);
	putenv(home);
	char *argv[] = {ctl,        recorder_arg, "recorder", "--tenant", "acme",
	                "--follow", "-o",         "json",     stream_arg, NULL};
	pid_t follower = testutil_spawn(argv, out_path);
	int64_t deadline = util_mono_ms() + 60000;
	while (count_lines(out_path) < 2 && util_mono_ms() < deadline)
		util_sleep_ms(20);
	Noetl__Record *after[] = {
	        recutil_exec("beta", "b1", 1, t + 2, NOETL__EXEC_STATUS__EXEC_OK),
	        recutil_exec("acme", "new1", 1, t + 3, NOETL__EXEC_STATUS__EXEC_DEAD),
	        recutil_log("acme", "new1", NOETL__LOG_LEVEL__LOG_INFO, t + 3, "not an execution"),
	        recutil_exec("acme", "new2", 2, t + 4, NOETL__EXEC_STATUS__EXEC_OK),
	};
	send(after, 4);
	while (count_lines(out_path) < 4 && util_mono_ms() < deadline)
		util_sleep_ms(20);
	util_sleep_ms(300); /* anything extra would come now */
	int status = testutil_kill(follower, SIGTERM);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "noetlctl ended with %d", status);
	char *all = testutil_read_file(out_path, NULL);
	assert_clean(all, "noetlctl recorder --follow");
	const char *want[] = {"old1", "old2", "new1", "new2"};
	char *save = NULL;
	size_t n = 0;
	for (char *line = strtok_r(all, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		cr_assert_lt(n, 4, "an extra line: %s", line);
		json_t *j = parse(line);
		cr_assert_str_eq(json_string_value(json_object_get(j, "event_id")), want[n]);
		cr_assert_str_eq(json_string_value(json_object_get(j, "tenant")), "acme");
		json_decref(j);
	}
	cr_assert_eq(n, 4);
	free(all);
}
