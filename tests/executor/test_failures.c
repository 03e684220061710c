/*
 * Everything that can go wrong with a guest, each through a real runner:
 * the event gets the right status and reason, and the pool keeps serving
 * (another module's events succeed afterwards). Timing is never asserted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "helpers.h"
#include "testutil.h"
#include "util.h"

/* The pool still serves: echo events on the same engine succeed. */
static void pool_still_serves(struct engine *e)
{
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	const char *p[] = {"after", "the", "failure"};
	struct engine_result *r = helper_run(e, m, NULL, p, 3, 0, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(r[i].status, ENGINE_OK, "echo after a failure: %s", r[i].reason);
	engine_results_free(r, 3);
	engine_module_release(e, m);
}

static void assert_reason(const struct engine_result *r, enum engine_status st, const char *part)
{
	cr_assert_eq(r->status, st, "status %s, want %s (%s)", engine_status_name(r->status),
	             engine_status_name(st), r->reason ? r->reason : "");
	cr_assert_not_null(r->reason);
	cr_assert(strstr(r->reason, part) != NULL, "reason '%s' lacks '%s'", r->reason, part);
}

Test(failures, a_trap_fails_its_event_and_the_next_event_runs_on_a_fresh_instance)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/trap.wasm");
	const char *p[] = {"a", "b"};
	struct engine_result *r = helper_run(e, m, NULL, p, 2, 0, 0);
	assert_reason(&r[0], ENGINE_TRAP, "trap: unreachable instruction executed in 'event'");
	assert_reason(&r[1], ENGINE_TRAP, "unreachable");
	engine_results_free(r, 2);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.runners_crashed, 0, "a trap costs no runner");
	engine_module_release(e, m);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, a_loop_times_out_and_the_rest_of_the_batch_runs_on_a_fresh_runner)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/loop.wasm");
	const char *p[] = {"a", "loop", "b", "c"};
	struct engine_result *r = helper_run(e, m, NULL, p, 4, 300, 0);
	cr_assert_eq(r[0].status, ENGINE_OK);
	assert_reason(&r[1], ENGINE_TIMEOUT, "timeout after 300 ms");
	for (int i = 2; i < 4; i++) {
		cr_assert_eq(r[i].status, ENGINE_OK, "event %d: %s", i, r[i].reason);
		cr_assert_eq(r[i].len, 1);
		cr_assert_eq(r[i].data[0], p[i][0]);
	}
	engine_results_free(r, 4);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_geq(st.runners_killed, 1);
	engine_module_release(e, m);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, the_sleeper_example_is_stopped_by_its_deadline)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/sleeper.wasm");
	const char *p[] = {"zzz"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 250, 0);
	assert_reason(&r[0], ENGINE_TIMEOUT, "timeout after 250 ms");
	cr_assert_geq(r[0].duration_us, 250000);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, growing_memory_past_the_limit_is_out_of_memory)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/grow.wasm");
	const char *p[] = {"grow"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 1u << 20);
	assert_reason(&r[0], ENGINE_OOM, "the memory limit is 16 pages (1 MiB)");
	engine_results_free(r, 1);
	engine_module_release(e, m);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, a_module_needing_more_initial_memory_than_the_limit_cannot_start)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	const char *p[] = {"a", "b"};
	struct engine_result *r = helper_run(e, m, NULL, p, 2, 0, 65536);
	for (int i = 0; i < 2; i++)
		assert_reason(&r[i], ENGINE_OOM, "more than its limit of 1 pages");
	engine_results_free(r, 2);
	engine_module_release(e, m);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, unbounded_recursion_is_a_call_stack_trap)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/recursion.wasm");
	const char *p[] = {"down"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	assert_reason(&r[0], ENGINE_TRAP, "call stack exhausted");
	engine_results_free(r, 1);
	engine_module_release(e, m);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, opening_a_file_gets_an_error_not_the_file)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/fileopen.wasm");
	const char *p[] = {"open"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	/* path_open: ENOTCAPABLE (76); fd_write to fd 3: EBADF (8) */
	cr_assert_eq(r[0].status, ENGINE_ERROR);
	cr_assert_eq(r[0].code, 76 * 1000 + 8);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(failures, an_unknown_import_is_refused_at_load_naming_it)
{
	struct engine *e = helper_engine(1, NULL);
	char *err = NULL;
	int rc = helper_prepare_rc(e, "tests/executor/unknown_import.wasm", &err);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(err, "'env.fetch'") != NULL, "%s", err);
	free(err);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.modules_loaded, 0);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, proc_exit_ends_the_event_with_its_code_and_the_runner_recovers)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/exit.wasm");
	const char *p[] = {"a", "x", "b"};
	struct engine_result *r = helper_run(e, m, NULL, p, 3, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_OK);
	assert_reason(&r[1], ENGINE_ERROR, "proc_exit(7)");
	cr_assert_eq(r[1].code, 7);
	cr_assert_eq(r[2].status, ENGINE_OK, "%s", r[2].reason);
	cr_assert_eq(r[2].len, 1);
	engine_results_free(r, 3);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.runners_crashed + st.runners_killed, 0, "proc_exit costs no runner");
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(failures, bad_pointers_from_the_guest_are_refused_without_harm)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/badptr.wasm");
	const char *p[] = {"log", "write", "nwritten", "result", "ok"};
	struct engine_result *r = helper_run(e, m, NULL, p, 5, 0, 0);
	assert_reason(&r[0], ENGINE_TRAP, "env.log(level 1, pointer 65000, length 1000)");
	cr_assert_eq(r[1].status, ENGINE_ERROR);
	cr_assert_eq(r[1].code, 21, "fd_write with a bad iovec is EFAULT");
	cr_assert_eq(r[2].status, ENGINE_ERROR);
	cr_assert_eq(r[2].code, 21, "fd_write with a bad nwritten pointer is EFAULT");
	assert_reason(&r[3], ENGINE_TRAP, "abi violation");
	cr_assert_eq(r[4].status, ENGINE_OK, "%s", r[4].reason);
	engine_results_free(r, 5);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.runners_crashed, 0);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(failures, a_module_whose_init_traps_is_refused_at_prepare)
{
	struct engine *e = helper_engine(1, NULL);
	char *err = NULL;
	int rc = helper_prepare_rc(e, "tests/executor/initfail.wasm", &err);
	cr_assert_eq(rc, -ENOEXEC);
	cr_assert(strstr(err, "trap: unreachable instruction executed in 'init'") != NULL, "%s",
	          err);
	free(err);
	pool_still_serves(e);
	engine_destroy(e);
}

struct bg {
	struct engine *e;
	struct engine_module *m;
	struct engine_result *r;
};

static void *run_bg(void *arg)
{
	struct bg *b = arg;
	const char *p[] = {"a", "loop", "b"};
	b->r = helper_run(b->e, b->m, NULL, p, 3, 60000, 0);
	return NULL;
}

Test(failures, a_runner_that_crashes_costs_only_the_event_it_was_running)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/loop.wasm");
	struct bg b = {e, m, NULL};
	pthread_t t;
	pthread_create(&t, NULL, run_bg, &b);
	/* wait until the runner is spinning in the looping event, then crash it */
	pid_t pid = 0;
	for (int i = 0; i < 3000 && pid == 0; i++) {
		pid_t pids[4];
		if (helper_runner_pids(pids, 4) == 1 && helper_cpu_ticks(pids[0]) >= 20)
			pid = pids[0];
		else
			util_sleep_ms(10);
	}
	cr_assert_neq(pid, 0, "the runner never got busy");
	kill(pid, SIGSEGV);
	pthread_join(t, NULL);
	cr_assert_eq(b.r[0].status, ENGINE_OK);
	cr_assert_eq(b.r[1].status, ENGINE_CRASH);
	cr_assert_str_eq(b.r[1].reason, "crash: runner killed by signal 11 (Segmentation fault)");
	cr_assert_eq(b.r[2].status, ENGINE_OK, "%s", b.r[2].reason);
	engine_results_free(b.r, 3);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.runners_crashed, 1);
	engine_module_release(e, m);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, the_sandbox_stops_files_sockets_exec_and_fork)
{
	struct engine *e = helper_engine(1, NULL);
	const char *what[] = {"open", "socket", "exec", "fork"};
	const char *call[] = {"openat", "socket", "execve", "clone"};
	for (int i = 0; i < 4; i++) {
		char *reason = NULL;
		int rc = engine_sandbox_probe(e, what[i], &reason);
		cr_assert_eq(rc, 0, "%s: %d %s", what[i], rc, reason ? reason : "");
		cr_assert(strstr(reason, "crash: sandbox violation (syscall ") != NULL, "%s",
		          reason);
		cr_assert(strstr(reason, call[i]) != NULL, "%s: %s", what[i], reason);
		free(reason);
	}
	cr_assert_eq(engine_sandbox_probe(e, "reboot", NULL), -EINVAL);
	pool_still_serves(e);
	engine_destroy(e);
}

Test(failures, results_over_the_size_limit_fail_the_event)
{
	struct engine_limits lim = {.max_result_bytes = 100};
	struct engine *e = helper_engine(1, &lim);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	static char big[200];
	memset(big, 'x', sizeof(big) - 1);
	const char *p[] = {big, "small"};
	struct engine_result *r = helper_run(e, m, NULL, p, 2, 0, 0);
	assert_reason(&r[0], ENGINE_ERROR,
	              "the result of 199 bytes is larger than the limit of "
	              "100 bytes");
	cr_assert_eq(r[0].len, 0);
	cr_assert_eq(r[1].status, ENGINE_OK);
	engine_results_free(r, 2);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(failures, log_text_over_the_limit_is_dropped_with_a_notice)
{
	struct engine_limits lim = {.max_log_bytes = 30};
	struct engine *e = helper_engine(1, &lim);
	struct engine_module *m = helper_prepare(e, "sdk/examples/log.wasm");
	const char *p[] = {"abc"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_OK);
	cr_assert_lt(r[0].nlogs, 6);
	const char *last = r[0].logs[r[0].nlogs - 1].text;
	cr_assert(strstr(last, "log truncated") != NULL, "%s", last);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(failures, an_oversized_payload_fails_alone_without_running)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	size_t big = ENGINE_MAX_PAYLOAD + 1;
	char *huge = calloc(1, big);
	cr_assert_not_null(huge);
	struct engine_event ev[3] = {{"a", 1}, {huge, big}, {"c", 1}};
	struct engine_result *r;
	cr_assert_eq(engine_run(e, m, NULL, ev, 3, &r), 0);
	cr_assert_eq(r[0].status, ENGINE_OK);
	assert_reason(&r[1], ENGINE_ERROR, "larger than the limit");
	cr_assert_eq(r[2].status, ENGINE_OK);
	cr_assert_eq(r[2].len, 1);
	cr_assert_eq(r[2].data[0], 'c');
	engine_results_free(r, 3);
	free(huge);
	engine_module_release(e, m);
	engine_destroy(e);
}

/* A stand-in runner (a shell script) that says READY, reads a little of its
 * batch and answers with the given bytes: the engine must not trust it. It
 * answers engine_create's sandbox probe as a real runner does (READY, then
 * the CRASH frame of the SIGSYS handler). */
static struct engine *fake_runner_engine(const char *dir, const char *answer)
{
	char path[512], body[1024];
	snprintf(path, sizeof(path), "%s/fake-runner", dir);
	snprintf(body, sizeof(body),
	         "#!/bin/sh\n"
	         "printf '\\011\\000\\000\\000\\012\\000\\000\\000\\000\\000\\000\\000\\000' >&3\n"
	         "if [ \"$1\" = --probe ]; then\n"
	         "  printf '\\053\\000\\000\\000\\015\\046\\000\\000\\000' >&3\n"
	         "  printf 'sandbox violation (syscall 257 openat)' >&3\n"
	         "  exit 111\n"
	         "fi\n"
	         "head -c 5 <&3 >/dev/null\n"
	         "printf '%s' >&3\n"
	         "exec sleep 5\n",
	         answer);
	cr_assert(testutil_write_file(path, body, strlen(body)));
	cr_assert_eq(chmod(path, 0755), 0);
	struct engine_config cfg = {.pool_size = 1, .runner_path = path};
	return helper_engine_cfg(&cfg);
}

static void assert_protocol_crash(struct engine *e)
{
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	const char *p[] = {"a", "b"};
	struct engine_result *r = helper_run(e, m, NULL, p, 2, 2000, 0);
	for (int i = 0; i < 2; i++)
		assert_reason(&r[i], ENGINE_CRASH, "crash: the runner broke the frame protocol");
	engine_results_free(r, 2);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(failures, a_result_with_an_impossible_status_is_a_crash_not_a_result)
{
	char dir[256];
	testutil_tempdir(dir, sizeof(dir));
	/* RESULT (type 12), status 99, then zeros for the rest of the fields */
	struct engine *e = fake_runner_engine(dir, "\\036\\000\\000\\000\\014\\143"
	                                           "\\000\\000\\000\\000\\000\\000\\000\\000"
	                                           "\\000\\000\\000\\000\\000\\000\\000\\000"
	                                           "\\000\\000\\000\\000\\000\\000\\000\\000"
	                                           "\\000\\000\\000\\000");
	assert_protocol_crash(e);
	testutil_rmtree(dir);
}

Test(failures, a_frame_longer_than_any_result_is_refused_before_it_is_buffered)
{
	char dir[256];
	testutil_tempdir(dir, sizeof(dir));
	struct engine *e = fake_runner_engine(dir, "\\377\\377\\377\\017\\014");
	assert_protocol_crash(e);
	testutil_rmtree(dir);
}
