/*
 * `make run` as a newcomer uses it: tools/run.sh starts the all-in-one
 * noetl, sets up the demo tenant and prints a curl and a noetlctl command;
 * pasting the curl gets 202, and the noetlctl command (without --follow)
 * shows the execution and its 'greeted' follow-up. Ctrl-C (here SIGTERM, as
 * a background job ignores SIGINT) stops everything cleanly.
 *
 * The state goes to a temporary directory (NOETL_RUN_DIR) and the webhooks
 * to a free port (NOETL_RUN_HTTP), but the all-in-one serves its RPC APIs
 * on the fixed default addresses that the printed noetlctl command dials:
 * this test must not run in parallel with anything else using them (meson:
 * is_parallel false), and it is skipped when one of them is taken.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "testutil.h"

#define WAIT_MS 120000

static char dir[256];
static pid_t run_pid;

static void cleanup(void)
{
	if (run_pid > 0) {
		testutil_kill(run_pid, SIGTERM);
		run_pid = 0;
	}
	if (dir[0] != '\0')
		testutil_rmtree(dir);
}

static bool port_taken(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bool taken = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0;
	close(fd);
	return taken;
}

/* The text between two markers of s (malloc'ed), or NULL. */
static char *between(const char *s, const char *from, const char *to)
{
	const char *a = strstr(s, from);
	if (a == NULL)
		return NULL;
	a += strlen(from);
	const char *b = strstr(a, to);
	if (b == NULL)
		return NULL;
	return strndup(a, (size_t)(b - a));
}

Test(make_run, gets_a_newcomer_from_start_to_a_recorded_execution, .fini = cleanup, .timeout = 300)
{
	static const int defaults[] = {7401, 7402, 7403, 7404, 7411, 7412,
	                               7414, 7421, 7422, 7423, 7424, 7425};
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (port_taken(defaults[i]))
			cr_skip_test("port %d is taken: another noetl runs on the default "
			             "addresses, which make run uses",
			             defaults[i]);

	cluster_clean_env();
	testutil_tempdir(dir, sizeof(dir));
	char state[320], http[64], home[320], out_path[320];
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(http, sizeof(http), "127.0.0.1:%d", testutil_free_port());
	snprintf(home, sizeof(home), "%s/home", dir);
	snprintf(out_path, sizeof(out_path), "%s/run.out", dir);
	setenv("NOETL_RUN_DIR", state, 1);
	setenv("NOETL_RUN_HTTP", http, 1);
	setenv("HOME", home, 1); /* no noetlctl.yaml of the user's */

	char script[512], build[512];
	testutil_source_path("tools/run.sh", script, sizeof(script));
	testutil_build_path("", build, sizeof(build));
	char *argv[] = {"/bin/sh", script, build, NULL};
	run_pid = testutil_spawn(argv, out_path);

	/* Wait for the instructions. */
	char *out = NULL;
	long long end = cluster_now_ms() + WAIT_MS;
	for (;;) {
		free(out);
		out = testutil_read_file(out_path, NULL);
		if (out != NULL && strstr(out, "stops the platform") != NULL)
			break;
		int status;
		if (waitpid(run_pid, &status, WNOHANG) == run_pid) {
			run_pid = 0;
			cr_assert_fail("make run exited (status %d):\n%s", status, out ? out : "");
		}
		cr_assert_lt(cluster_now_ms(), end, "make run printed no instructions:\n%s",
		             out ? out : "");
		cluster_sleep_ms(200);
	}
	cr_expect(strstr(out, "make run:") == NULL, "no step failed:\n%s", out);

	/* Paste the curl. */
	char *curl = between(out, "Post an event:\n", "\n\n");
	cr_assert_not_null(curl, "no curl command in:\n%s", out);
	char *reply = NULL, paste[2048];
	snprintf(paste, sizeof(paste), "%s 2>&1", curl);
	int rc = testutil_run(paste, &reply);
	cr_assert_eq(rc, 0, "curl failed (%d): %s\n%s", rc, curl, reply);
	cr_expect(strstr(reply, " 202 ") != NULL, "the curl gets 202:\n%s", reply);
	free(reply);
	free(curl);

	/* Paste the noetlctl command, without --follow, until it shows both. */
	char *ctl = between(out, "follow-up it triggers):\n", "\n\n");
	cr_assert_not_null(ctl, "no noetlctl command in:\n%s", out);
	char *follow = strstr(ctl, " --follow");
	cr_assert_not_null(follow, "%s", ctl);
	*follow = '\0';
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s 2>&1", ctl);
	end = cluster_now_ms() + WAIT_MS;
	char *rec = NULL;
	for (;;) {
		free(rec);
		rec = NULL;
		testutil_run(cmd, &rec);
		if (rec != NULL && strstr(rec, "greeted") != NULL &&
		    cluster_count(rec, " ok ") >= 2)
			break;
		cr_assert_lt(cluster_now_ms(), end, "%s shows no execution:\n%s", ctl,
		             rec ? rec : "");
		cluster_sleep_ms(300);
	}
	cr_expect(strstr(rec, "greet ") != NULL, "%s", rec);
	free(rec);
	free(ctl);

	/* The all-in-one's /metrics carries the executor's families too: the
	 * event and the follow-up it triggered both succeeded. */
	char *metrics = NULL;
	snprintf(cmd, sizeof(cmd), "curl -sS http://%s/metrics 2>&1", http);
	cr_assert_eq(testutil_run(cmd, &metrics), 0, "%s", metrics ? metrics : "");
	const char *succeeded =
	        strstr(metrics, "noetl_executor_events_total{outcome=\"succeeded\"} ");
	cr_assert_not_null(succeeded, "no executor metrics in:\n%s", metrics);
	cr_expect_geq(atof(strchr(succeeded, ' ') + 1), 2.0, "%.200s", succeeded);
	cr_expect(strstr(metrics, "noetl_executor_runners{state=\"alive\"} ") != NULL, "%s",
	          metrics);
	free(metrics);

	/* Ctrl-C. */
	kill(run_pid, SIGTERM);
	int status = testutil_wait(run_pid, 60000);
	cr_expect(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "make run stops cleanly (status %d)", status);
	if (status != -1)
		run_pid = 0;
	free(out);
	out = testutil_read_file(out_path, NULL);
	cr_expect(out != NULL && strstr(out, "stopping noetl") != NULL, "%s", out ? out : "");
	free(out);

	/* In the ASan build noetl runs sanitized: its reports are failures. */
	char logf[400];
	snprintf(logf, sizeof(logf), "%s/noetl.log", state);
	char *log = testutil_read_file(logf, NULL);
	cr_assert_not_null(log, "no %s", logf);
	int reports = cluster_count(log, "ERROR: AddressSanitizer") +
	              cluster_count(log, "ERROR: LeakSanitizer") +
	              cluster_count(log, "runtime error: ");
	cr_expect_eq(reports, 0, "sanitizer reports in noetl's log:\n%s", log);
	free(log);
}
