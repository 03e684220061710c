/*
 * The all-in-one `noetl` takes the settings its services take on their own:
 * here, the Recorder's default retention (recorder.retention.*), which it
 * once left unset, so that a laptop's Recorder kept everything for ever.
 * noetl runs on free loopback ports with its data in a temporary directory;
 * the test reads the retention back the way an operator would, with
 * `noetlctl retention show`.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

static char dir[256];
static pid_t pid;

static void cleanup(void)
{
	if (pid > 0) {
		testutil_kill(pid, SIGTERM);
		pid = 0;
	}
	if (dir[0] != '\0')
		testutil_rmtree(dir);
}

/* Starts noetl with extra[] after its addresses; *recorder gets the
 * Recorder's RPC URL. */
static void start(const char *const extra[], char *recorder, size_t cap)
{
	testutil_tempdir(dir, sizeof(dir));
	char exe[512], data[300], log[300], http[64];
	testutil_build_path("src/noetl/noetl", exe, sizeof(exe));
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(log, sizeof(log), "%s/noetl.log", dir);
	snprintf(http, sizeof(http), "127.0.0.1:%d", testutil_free_port());
	static const char *const names[] = {"control",        "repository",     "queue",
	                                    "recorder",       "control-stream", "repository-stream",
	                                    "recorder-stream"};
	char flags[7][40], urls[7][64];
	char *argv[40];
	int n = 0;
	argv[n++] = exe;
	argv[n++] = "--data";
	argv[n++] = data;
	argv[n++] = "--http";
	argv[n++] = http;
	for (int i = 0; i < 7; i++) {
		snprintf(flags[i], sizeof(flags[i]), "--noetl.%s", names[i]);
		snprintf(urls[i], sizeof(urls[i]), "tcp://127.0.0.1:%d", testutil_free_port());
		argv[n++] = flags[i];
		argv[n++] = urls[i];
	}
	for (int i = 0; extra[i] != NULL; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	pid = testutil_spawn(argv, log);
	cr_assert_gt(pid, 0, "cannot start %s", exe);
	snprintf(recorder, cap, "%s", urls[3]);
}

/* `noetlctl --recorder URL retention show TENANT` once the Recorder answers. */
static char *retention_show(const char *recorder, const char *tenant)
{
	char ctl[512], cmd[1024];
	testutil_build_path("src/cli/noetlctl", ctl, sizeof(ctl));
	snprintf(cmd, sizeof(cmd), "'%s' --recorder %s retention show %s", ctl, recorder, tenant);
	char *out = NULL;
	for (int i = 0; i < 300; i++) { /* up to 30 s for noetl to start */
		free(out);
		out = NULL;
		if (testutil_run(cmd, &out) == 0)
			return out;
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("noetlctl retention show never succeeded: %s", out != NULL ? out : "");
	return NULL;
}

Test(allinone, applies_the_default_retention_it_is_given, .fini = cleanup, .timeout = 120)
{
	char recorder[64];
	start((const char *[]){"--recorder.retention.max-age", "3h",
	                       "--recorder.retention.max-bytes", "5MiB", NULL},
	      recorder, sizeof(recorder));
	char *out = retention_show(recorder, "acme");
	cr_assert(strstr(out, "default") != NULL, "%s", out);
	cr_assert(strstr(out, "3h") != NULL, "max-age 3h missing: %s", out);
	cr_assert(strstr(out, "5.0 MiB") != NULL, "max-bytes 5MiB missing: %s", out);
	free(out);
}

Test(allinone, keeps_a_week_and_a_gibibyte_by_default, .fini = cleanup, .timeout = 120)
{
	char recorder[64];
	start((const char *[]){NULL}, recorder, sizeof(recorder));
	char *out = retention_show(recorder, "acme");
	cr_assert(strstr(out, "7d") != NULL, "max-age 7d missing: %s", out);
	cr_assert(strstr(out, "1.0 GiB") != NULL, "max-bytes 1GiB missing: %s", out);
	free(out);
}

Test(allinone, refuses_a_retention_interval_that_is_not_positive, .fini = cleanup, .timeout = 60)
{
	char recorder[64];
	start((const char *[]){"--recorder.retention.interval", "0", NULL}, recorder,
	      sizeof(recorder));
	int st = testutil_wait(pid, 30000);
	pid = 0;
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2,
	          "noetl ended with wait status %d, not exit status 2 (bad configuration)", st);
	char log[300];
	snprintf(log, sizeof(log), "%s/noetl.log", dir);
	char *text = testutil_read_file(log, NULL);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "recorder.retention.interval must be positive") != NULL, "%s", text);
	free(text);
}
