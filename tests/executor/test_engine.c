/*
 * The engine's happy paths, through real runner processes: the SDK
 * examples, batches spread over runners, concurrent callers, WASI, and the
 * module life cycle.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "helpers.h"
#include "util.h"

Test(engine, echo_returns_each_payload_with_code_zero)
{
	struct engine *e = helper_engine(2, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	cr_assert_eq(strlen(engine_module_sha256(m)), 64);
	static char big[300000];
	memset(big, 'b', sizeof(big) - 1);
	const char *p[] = {"hello", "", "{\"a\":1}", big};
	struct engine_result *r = helper_run(e, m, NULL, p, 4, 0, 0);
	for (size_t i = 0; i < 4; i++) {
		cr_assert_eq(r[i].status, ENGINE_OK, "event %zu: %s", i, r[i].reason);
		cr_assert_eq(r[i].code, 0);
		cr_assert_null(r[i].reason);
		cr_assert_eq(r[i].len, strlen(p[i]));
		cr_assert(r[i].len == 0 || memcmp(r[i].data, p[i], r[i].len) == 0);
	}
	engine_results_free(r, 4);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(engine, binary_payloads_pass_through_unchanged)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	uint8_t bin[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (uint8_t)i;
	struct engine_event ev = {bin, sizeof(bin)};
	struct engine_result *r;
	cr_assert_eq(engine_run(e, m, NULL, &ev, 1, &r), 0);
	cr_assert_eq(r[0].status, ENGINE_OK);
	cr_assert_eq(r[0].len, sizeof(bin));
	cr_assert_eq(memcmp(r[0].data, bin, sizeof(bin)), 0);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(engine, error_returns_code_one_with_its_message)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/error.wasm");
	const char *p[] = {"bad input"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_ERROR);
	cr_assert_eq(r[0].code, 1);
	cr_assert_str_eq(r[0].reason, "'event' returned code 1");
	cr_assert_eq(r[0].len, strlen("cannot handle 'bad input'"));
	cr_assert_eq(memcmp(r[0].data, "cannot handle 'bad input'", r[0].len), 0);
	cr_assert_eq(r[0].nlogs, 1);
	cr_assert_eq(r[0].logs[0].level, 3);
	cr_assert_str_eq(r[0].logs[0].text, "refusing an event of 9 bytes");
	engine_results_free(r, 1);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(engine, log_lines_keep_their_levels_and_stdio_becomes_lines)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/log.wasm");
	const char *p[] = {"abc", "second"};
	int64_t before = util_now_ms();
	struct engine_result *r = helper_run(e, m, NULL, p, 2, 0, 0);
	for (int k = 0; k < 2; k++) {
		cr_assert_eq(r[k].status, ENGINE_OK, "%s", r[k].reason);
		cr_assert_eq(r[k].len, 6);
		cr_assert_eq(memcmp(r[k].data, "logged", 6), 0);
		/* each event has its own lines: none of the first event's in the second */
		cr_assert_eq(r[k].nlogs, 6, "event %d has %zu lines", k, r[k].nlogs);
		int want_level[] = {0, 1, 2, 3, 1, 3};
		for (int i = 0; i < 6; i++) {
			cr_assert_eq(r[k].logs[i].level, want_level[i], "line %d", i);
			cr_assert_geq(r[k].logs[i].time_ms, before);
		}
	}
	cr_assert_str_eq(r[0].logs[0].text, "debug: 3 bytes");
	cr_assert_str_eq(r[0].logs[1].text, "info: abc");
	cr_assert_str_eq(r[1].logs[1].text, "info: second");
	cr_assert_str_eq(r[0].logs[2].text, "warn: careful");
	cr_assert_str_eq(r[0].logs[3].text, "error: not really");
	cr_assert_str_eq(r[0].logs[4].text, "stdout: hello");
	cr_assert_str_eq(r[0].logs[5].text, "stderr: oops");
	engine_results_free(r, 2);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(engine, greet_reads_name_or_first_name_from_json)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/greet.wasm");
	const char *p[] = {
	        "{\"name\": \"Ada\"}",
	        "{\"id\": 7, \"tags\": [\"x\", {\"name\": \"inner\"}], \"firstName\": \"Grace\"}",
	        "{\"name\": \"B\\u00e9a \\\"B\\\"\"}",
	        "{\"age\": 3}",
	        "not json",
	};
	struct engine_result *r = helper_run(e, m, NULL, p, 5, 0, 0);
	const char *want[] = {"Hello, Ada", "Hello, Grace",
	                      "Hello, B\xc3\xa9"
	                      "a \"B\""};
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(r[i].status, ENGINE_OK, "event %d: %s", i, r[i].reason);
		cr_assert_eq(r[i].len, strlen(want[i]), "event %d", i);
		cr_assert_eq(memcmp(r[i].data, want[i], r[i].len), 0, "event %d", i);
	}
	for (int i = 3; i < 5; i++) {
		cr_assert_eq(r[i].status, ENGINE_ERROR, "event %d", i);
		cr_assert_eq(r[i].code, 1);
	}
	/* init ran once for this runner: the call counter goes on */
	cr_assert_str_eq(r[1].logs[0].text, "greeting Grace (call 2)");
	engine_results_free(r, 5);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(engine, a_large_batch_is_spread_over_runners_and_keeps_its_order)
{
	struct engine *e = helper_engine(2, NULL);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	enum { N = 64 };
	char bufs[N][16];
	const char *p[N];
	for (int i = 0; i < N; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "event-%d", i);
		p[i] = bufs[i];
	}
	struct engine_result *r = helper_run(e, m, NULL, p, N, 0, 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(r[i].status, ENGINE_OK);
		cr_assert_eq(r[i].len, strlen(p[i]));
		cr_assert_eq(memcmp(r[i].data, p[i], r[i].len), 0, "event %d", i);
	}
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.runners_alive, 2, "both slots should hold a warm runner");
	cr_assert_eq(st.runners_crashed, 0);
	engine_results_free(r, N);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(engine, multi_value_handlers_and_custom_names_are_called)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/multivalue.wasm");
	const char *p[] = {"mv"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_OK, "%s", r[0].reason);
	cr_assert_eq(r[0].len, 2);
	engine_results_free(r, 1);
	/* an export the module does not have is a compile status naming it */
	r = helper_run(e, m, "nosuch", p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_COMPILE);
	cr_assert(strstr(r[0].reason, "'nosuch'") != NULL, "%s", r[0].reason);
	engine_results_free(r, 1);
	/* malloc exists but is no event handler */
	r = helper_run(e, m, "malloc", p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_COMPILE);
	cr_assert(strstr(r[0].reason, "(i32) -> (i32)") != NULL, "%s", r[0].reason);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(engine, exports_with_unusual_names_are_mangled_like_wasm2c_does)
{
	struct engine *e = helper_engine(1, NULL);
	size_t len;
	char *wasm = helper_wat("(module (memory (export \"memory\") 1)\n"
	                        "(func (export \"malloc\") (param i32) (result i32) i32.const 64)\n"
	                        "(func (export \"free\") (param i32))\n"
	                        "(func (export \"on-Zap.event\") (param i32 i32 i32)\n"
	                        "  (i64.store (local.get 0) (i64.const 5))))",
	                        &len);
	struct engine_module *m;
	char *err = NULL;
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, NULL, &err), 0, "%s", err);
	const char *p[] = {""};
	struct engine_result *r = helper_run(e, m, "on-Zap.event", p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_ERROR, "%s", r[0].reason);
	cr_assert_eq(r[0].code, 5);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	free(wasm);
	engine_destroy(e);
}

Test(engine, every_wasi_function_wasi_libc_declares_links_and_answers)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *m = helper_prepare(e, "tests/executor/wasi_probe.wasm");
	const char *p[] = {""};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_OK, "%s", r[0].reason);
	char *text = strndup((const char *)r[0].data, r[0].len);
	const char *want[] = {
	        "args_sizes_get=0",
	        "environ_sizes_get=0",
	        "clock_res_get=0",
	        "clock_time_get=0",
	        "clock_time_get_bad=28",
	        "fd_fdstat_get=0",
	        "fd_filestat_get=0",
	        "fd_prestat_get=8",
	        "fd_read=0",
	        "fd_seek=70",
	        "fd_write=0",
	        "path_open=76",
	        "poll_oneoff=0",
	        "sched_yield=0",
	        "random_get=0",
	        "sock_accept=76",
	        "fd_close=8",
	        "fd_pwrite=8",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert(strstr(text, want[i]) != NULL, "missing %s in: %s", want[i], text);
	cr_assert_eq(r[0].nlogs, 1);
	cr_assert_str_eq(r[0].logs[0].text, "probe");
	free(text);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	engine_destroy(e);
}

struct caller {
	struct engine *e;
	struct engine_module *m;
	const char *tag;
	int ok; /* events that came back right */
};

static void *call(void *arg)
{
	struct caller *c = arg;
	enum { N = 24 };
	char bufs[N][32];
	struct engine_event ev[N];
	for (int i = 0; i < N; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "{\"name\":\"%s%d\"}", c->tag, i);
		ev[i] = (struct engine_event){bufs[i], strlen(bufs[i])};
	}
	for (int round = 0; round < 3; round++) {
		struct engine_result *r;
		if (engine_run(c->e, c->m, NULL, ev, N, &r) != 0)
			continue;
		for (int i = 0; i < N; i++)
			c->ok += r[i].status == ENGINE_OK && r[i].len > 7 &&
			         memcmp(r[i].data, "Hello, ", 7) == 0;
		engine_results_free(r, N);
	}
	return NULL;
}

Test(engine, several_threads_run_batches_at_once)
{
	struct engine *e = helper_engine(2, NULL);
	struct engine_module *greet = helper_prepare(e, "sdk/examples/greet.wasm");
	struct engine_module *echo = helper_prepare(e, "sdk/examples/echo.wasm");
	struct caller c[3] = {{e, greet, "a", 0}, {e, greet, "b", 0}, {e, echo, "c", 0}};
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, call, &c[i]);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(c[0].ok, 72);
	cr_assert_eq(c[1].ok, 72);
	cr_assert_eq(c[2].ok, 0, "echo answers the payload itself, not a greeting");
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_leq(st.runners_alive, 2);
	cr_assert_eq(st.runners_crashed, 0);
	engine_module_release(e, greet);
	engine_module_release(e, echo);
	engine_destroy(e);
}

Test(engine, preparing_the_same_bytes_again_shares_the_module)
{
	struct engine *e = helper_engine(1, NULL);
	struct engine_module *a = helper_prepare(e, "sdk/examples/echo.wasm");
	size_t len;
	char *b = helper_read_built("sdk/examples/echo.wasm", &len);
	struct engine_module *m2;
	struct engine_prepare_info info = {.compiled = true};
	cr_assert_eq(engine_prepare(e, b, len, engine_module_sha256(a), &m2, &info, NULL), 0);
	cr_assert_eq(a, m2);
	cr_assert_not(info.compiled);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.modules_loaded, 1);
	engine_module_release(e, m2);
	/* still usable through the first handle */
	const char *p[] = {"x"};
	struct engine_result *r = helper_run(e, a, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_OK);
	engine_results_free(r, 1);
	engine_module_release(e, a);
	engine_stats(e, &st);
	cr_assert_eq(st.modules_loaded, 0);
	cr_assert_eq(st.runners_alive, 0, "releasing the module stops its runners");
	free(b);
	engine_destroy(e);
}

Test(engine, a_wrong_hash_or_bytes_that_are_not_wasm_are_refused)
{
	struct engine *e = helper_engine(1, NULL);
	size_t len;
	char *b = helper_read_built("sdk/examples/echo.wasm", &len);
	struct engine_module *m = NULL;
	char *err = NULL;
	cr_assert_eq(engine_prepare(e, b, len, "00", &m, NULL, &err), -EINVAL);
	cr_assert(strstr(err, "not the expected '00'") != NULL, "%s", err);
	free(err);
	err = NULL;
	cr_assert_eq(engine_prepare(e, "#!/bin/sh\n", 10, NULL, &m, NULL, &err), -EINVAL);
	cr_assert(strstr(err, "not a WebAssembly module") != NULL, "%s", err);
	free(err);
	cr_assert_null(m);
	free(b);
	engine_destroy(e);
}

Test(engine, a_module_without_the_abi_exports_is_refused_at_prepare)
{
	struct engine *e = helper_engine(1, NULL);
	size_t len;
	char *wasm = helper_wat("(module (memory (export \"memory\") 1)\n"
	                        "(func (export \"event\") (param i32 i32 i32)))",
	                        &len);
	struct engine_module *m = NULL;
	char *err = NULL;
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, NULL, &err), -EINVAL);
	cr_assert(strstr(err, "malloc") != NULL, "%s", err);
	free(err);
	free(wasm);
	wasm = helper_wat("(module (import \"env\" \"log\" (func (param i32 i32)))\n"
	                  "(memory (export \"memory\") 1))",
	                  &len);
	err = NULL;
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, NULL, &err), -EINVAL);
	cr_assert(strstr(err, "'env.log' (function (i32, i32) -> ()), but the host's has a "
	                      "different type") != NULL,
	          "%s", err);
	free(err);
	free(wasm);
	engine_destroy(e);
}

Test(engine, a_command_module_whose_start_calls_proc_exit_zero_runs_its_events)
{
	struct engine *e = helper_engine(1, NULL);
	size_t len;
	/* _start sets the global to 40 and exits 0 (as TinyGo's does); init adds 2;
	 * the handler answers the global as its code */
	char *wasm = helper_wat(
	        "(module (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param "
	        "i32)))\n"
	        "(memory (export \"memory\") 1) (global $g (mut i32) (i32.const 0))\n"
	        "(func (export \"malloc\") (param i32) (result i32) i32.const 64)\n"
	        "(func (export \"free\") (param i32))\n"
	        "(func (export \"_start\") (global.set $g (i32.const 40)) (call $exit (i32.const "
	        "0)))\n"
	        "(func (export \"init\") (global.set $g (i32.add (global.get $g) (i32.const 2))))\n"
	        "(func (export \"event\") (param i32 i32 i32)\n"
	        "  (i64.store (local.get 0) (i64.extend_i32_u (global.get $g)))))",
	        &len);
	struct engine_module *m;
	char *err = NULL;
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, NULL, &err), 0, "%s", err);
	const char *p[] = {""};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_ERROR, "%s", r[0].reason);
	cr_assert_eq(r[0].code, 42);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	free(wasm);
	engine_destroy(e);
}
