/*
 * The runner's host code (guest.c, wasi.c, wasmrt.c) in this process, so
 * that in the sanitizer build AddressSanitizer watches every access the host
 * makes on behalf of a guest. (The runner program itself is never
 * sanitized; see runner_main.c.) One guest per test: the runtime's state is
 * per process, and Criterion runs each test in its own.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "engine.h"
#include "guest.h"
#include "helpers.h"
#include "testutil.h"
#include "util.h"
#include "wasmbin.h"

static struct guest *g;

/* Compiles a built fixture (through the shared cache) and opens it here. */
static void open_fixture(const char *rel, uint32_t pages)
{
	char cache[4096];
	testutil_build_path("tests/executor/cache", cache, sizeof(cache));
	struct compile *c = NULL;
	char *err = NULL;
	cr_assert_eq(compile_create(cache, NULL, NULL, 0, &c, &err), 0, "%s", err);
	size_t len;
	char *wasm = helper_read_built(rel, &len);
	struct wasmbin *m;
	cr_assert_eq(wasmbin_parse(wasm, len, &m, &err), 0, "%s", err);
	char sha[65], *so = NULL;
	bool compiled;
	util_sha256_hex(wasm, len, sha);
	cr_assert_eq(compile_module(c, m, wasm, len, sha, &so, &compiled, &err), 0, "%s", err);
	struct guest_limits lim = {pages, 1u << 20, 64u << 10};
	char why[640];
	int st;
	cr_assert_eq(guest_open(so, &lim, &g, &st, why, sizeof(why)), 0, "%s", why);
	free(so);
	wasmbin_destroy(m);
	free(wasm);
	compile_destroy(c);
}

static void close_guest(void)
{
	guest_close(g);
	g = NULL;
}

static struct guest_result call(const char *payload)
{
	struct guest_result r;
	cr_assert_eq(
	        guest_event(g, "event", (const uint8_t *)payload, (uint32_t)strlen(payload), &r),
	        0);
	return r;
}

Test(guest, host_functions_check_every_pointer_the_guest_gives, .fini = close_guest)
{
	open_fixture("tests/executor/badptr.wasm", 16);
	struct guest_result r = call("log");
	cr_assert_eq(r.status, ENGINE_TRAP);
	cr_assert(strstr(r.reason, "reaches outside the guest's 65536 bytes") != NULL, "%s",
	          r.reason);
	r = call("write");
	cr_assert_eq(r.status, ENGINE_ERROR);
	cr_assert_eq(r.code, 21);
	r = call("nwritten");
	cr_assert_eq(r.code, 21);
	r = call("result");
	cr_assert_eq(r.status, ENGINE_TRAP);
	cr_assert(strstr(r.reason, "abi violation") != NULL, "%s", r.reason);
	r = call("fine");
	cr_assert_eq(r.status, ENGINE_OK, "%s", r.reason);
}

Test(guest, every_wasi_call_answers_in_process, .fini = close_guest)
{
	open_fixture("tests/executor/wasi_probe.wasm", 64);
	struct guest_result r = call("");
	cr_assert_eq(r.status, ENGINE_OK, "%s", r.reason);
	char *text = strndup((const char *)r.data, r.len);
	cr_assert(strstr(text, "path_open=76") != NULL, "%s", text);
	cr_assert(strstr(text, "random_get=0") != NULL, "%s", text);
	const struct guest_log *logs;
	cr_assert_eq(guest_logs(g, &logs), 1);
	cr_assert_str_eq(logs[0].text, "probe");
	free(text);
}

Test(guest, traps_unwind_and_the_next_event_gets_a_fresh_instance, .fini = close_guest)
{
	open_fixture("tests/executor/recursion.wasm", 16);
	for (int i = 0; i < 3; i++) {
		struct guest_result r = call("down");
		cr_assert_eq(r.status, ENGINE_TRAP);
		cr_assert_str_eq(r.reason, "trap: call stack exhausted in 'event'");
	}
}

Test(guest, memory_grows_up_to_the_cap_and_no_further, .fini = close_guest)
{
	open_fixture("tests/executor/grow.wasm", 48);
	struct guest_result r = call("grow");
	cr_assert_eq(r.status, ENGINE_OOM);
	cr_assert(strstr(r.reason, "memory.grow by 16 pages refused at 33 pages: the memory "
	                           "limit is 48 pages (3 MiB)") != NULL,
	          "%s", r.reason);
}

Test(guest, proc_exit_and_stdio_lines_in_process, .fini = close_guest)
{
	open_fixture("tests/executor/exit.wasm", 16);
	struct guest_result r = call("x");
	cr_assert_eq(r.status, ENGINE_ERROR);
	cr_assert_eq(r.code, 7);
	r = call("echo me");
	cr_assert_eq(r.status, ENGINE_OK);
	cr_assert_eq(r.len, 7);
	cr_assert_eq(memcmp(r.data, "echo me", 7), 0);
}
