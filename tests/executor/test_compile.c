/*
 * Ahead-of-time compilation and its cache: a second start compiles nothing,
 * a damaged cache file is rebuilt, tool failures and hangs come back as
 * reasons, and the glue's name mangling matches wasm2c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile.h"
#include "engine.h"
#include "helpers.h"
#include "shimgen.h"
#include "testutil.h"

static char dir[256];
static char cache[512];

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	snprintf(cache, sizeof(cache), "%s/cache", dir);
}

static void teardown(void)
{
	testutil_rmtree(dir);
}

/* The one .so in the cache directory: its path and mtime. */
static int cached_object(char *path, size_t cap, struct timespec *mtime)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "ls '%s'/*.so", cache);
	char *out = NULL;
	int st = testutil_run(cmd, &out);
	int n = 0;
	if (st == 0 && out != NULL) {
		char *nl = strchr(out, '\n');
		if (nl != NULL)
			*nl = 0;
		snprintf(path, cap, "%s", out);
		struct stat sb;
		if (stat(path, &sb) == 0) {
			*mtime = sb.st_mtim;
			n = 1;
		}
	}
	free(out);
	return n;
}

Test(compile, a_second_start_compiles_nothing, .init = setup, .fini = teardown)
{
	struct engine_config cfg = {.cache_dir = cache, .pool_size = 1};
	struct engine *e = helper_engine_cfg(&cfg);
	size_t len;
	char *wasm = helper_read_built("tests/executor/trap.wasm", &len);
	struct engine_module *m;
	struct engine_prepare_info info;
	char *err = NULL;
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, &info, &err), 0, "%s", err);
	cr_assert(info.compiled);
	cr_assert_gt(info.compile_ms, 0);
	engine_module_release(e, m);
	engine_destroy(e);

	char so[1024];
	struct timespec t1, t2;
	cr_assert_eq(cached_object(so, sizeof(so), &t1), 1, "one object in %s", cache);
	cr_assert(strstr(so, "-") != NULL);

	e = helper_engine_cfg(&cfg);
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, &info, &err), 0, "%s", err);
	cr_assert_not(info.compiled, "the second start found the module in the cache");
	cr_assert_eq(info.compile_ms, 0);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.compiles, 0);
	cr_assert_eq(cached_object(so, sizeof(so), &t2), 1);
	cr_assert(t1.tv_sec == t2.tv_sec && t1.tv_nsec == t2.tv_nsec, "the object was rewritten");
	engine_module_release(e, m);
	engine_destroy(e);
	free(wasm);
}

Test(compile, a_damaged_cache_file_is_rebuilt, .init = setup, .fini = teardown)
{
	struct engine_config cfg = {.cache_dir = cache, .pool_size = 1};
	struct engine *e = helper_engine_cfg(&cfg);
	size_t len;
	char *wasm = helper_read_built("tests/executor/trap.wasm", &len);
	struct engine_module *m;
	struct engine_prepare_info info;
	char *err = NULL;
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, &info, &err), 0, "%s", err);
	engine_module_release(e, m);
	engine_destroy(e);
	char so[1024];
	struct timespec t;
	cr_assert_eq(cached_object(so, sizeof(so), &t), 1);
	cr_assert(testutil_write_file(so, "garbage", 7));

	e = helper_engine_cfg(&cfg);
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, &info, &err), 0, "%s", err);
	cr_assert(info.compiled, "the damaged object was compiled again");
	const char *p[] = {"x"};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_TRAP, "%s", r[0].reason);
	engine_results_free(r, 1);
	engine_module_release(e, m);
	engine_destroy(e);
	free(wasm);
}

/* Writes an executable shell script. */
static void script(const char *path, const char *body)
{
	cr_assert(testutil_write_file(path, body, strlen(body)));
	cr_assert_eq(chmod(path, 0755), 0);
}

Test(compile, a_compiler_failure_returns_its_stderr, .init = setup, .fini = teardown)
{
	char cc[512];
	snprintf(cc, sizeof(cc), "%s/fakecc", dir);
	script(cc, "#!/bin/sh\n"
	           "if [ \"$1\" = --version ]; then echo fakecc 1.0; exit 0; fi\n"
	           "echo 'fakecc: internal error: boom' >&2\nexit 1\n");
	struct engine_config cfg = {.cache_dir = cache, .pool_size = 1, .cc = cc};
	struct engine *e = helper_engine_cfg(&cfg);
	char *err = NULL;
	int rc = helper_prepare_rc(e, "tests/executor/trap.wasm", &err);
	cr_assert_eq(rc, -EIO);
	cr_assert(strstr(err, "failed with exit status 1: fakecc: internal error: boom") != NULL,
	          "%s", err);
	free(err);
	/* nothing half-made is left in the cache */
	char so[1024];
	struct timespec t;
	cr_assert_eq(cached_object(so, sizeof(so), &t), 0);
	engine_destroy(e);
}

Test(compile, a_compiler_that_hangs_is_killed_at_its_time_limit, .init = setup, .fini = teardown)
{
	char cc[512];
	snprintf(cc, sizeof(cc), "%s/slowcc", dir);
	script(cc, "#!/bin/sh\n"
	           "if [ \"$1\" = --version ]; then echo slowcc 1.0; exit 0; fi\n"
	           "sleep 30\n");
	struct engine_config cfg = {
	        .cache_dir = cache, .pool_size = 1, .cc = cc, .compile_timeout_ms = 300};
	struct engine *e = helper_engine_cfg(&cfg);
	char *err = NULL;
	int rc = helper_prepare_rc(e, "tests/executor/trap.wasm", &err);
	cr_assert_eq(rc, -EIO);
	cr_assert(strstr(err, "did not finish within 300 ms") != NULL, "%s", err);
	free(err);
	engine_destroy(e);
}

Test(compile, another_wasm2c_version_is_refused_at_start, .init = setup, .fini = teardown)
{
	char w2c[512];
	snprintf(w2c, sizeof(w2c), "%s/wasm2c", dir);
	script(w2c, "#!/bin/sh\necho 1.0.34\n");
	struct engine_config cfg = {
	        .cache_dir = cache, .wasm2c = w2c, .runner_path = helper_runner_path()};
	struct engine *e = NULL;
	char *err = NULL;
	cr_assert_eq(engine_create(&cfg, &e, &err), -EINVAL);
	cr_assert(strstr(err, "is wabt 1.0.34") != NULL, "%s", err);
	free(err);
	cfg.wasm2c = NULL;
	cfg.runner_path = "/nonexistent/noetl-runner";
	err = NULL;
	cr_assert_eq(engine_create(&cfg, &e, &err), -ENOENT);
	cr_assert(strstr(err, "'/nonexistent/noetl-runner'") != NULL, "%s", err);
	free(err);
}

Test(compile, names_are_mangled_as_wasm2c_1_0_32_does)
{
	char buf[128];
	shimgen_mangle("event", buf, sizeof(buf));
	cr_assert_str_eq(buf, "Z_event");
	shimgen_mangle("Zed-x_y", buf, sizeof(buf));
	cr_assert_str_eq(buf, "Z_Z5AedZ2Dx_y");
	shimgen_mangle("a.b", buf, sizeof(buf));
	cr_assert_str_eq(buf, "Z_aZ2Eb");
}

Test(compile, imports_are_checked_against_what_the_host_provides)
{
	size_t len;
	char *wasm = helper_wat(
	        "(module (import \"env\" \"log\" (func (param i32 i32 i32)))\n"
	        "(import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) "
	        "(result i32)))\n"
	        "(import \"env\" \"memory2\" (memory 1))\n"
	        "(import \"os\" \"exec\" (func))\n"
	        "(func (export \"malloc\") (param i32) (result i32) i32.const 0)\n"
	        "(func (export \"free\") (param i32)))",
	        &len);
	struct wasmbin *m;
	cr_assert_eq(wasmbin_parse(wasm, len, &m, NULL), 0);
	char *err = NULL;
	cr_assert_eq(compile_check(m, &err), -EINVAL);
	cr_assert(strstr(err, "'env.memory2' (memory)") != NULL, "%s", err);
	cr_assert(strstr(err, "'os.exec' (function () -> ())") != NULL, "%s", err);
	cr_assert(strstr(err, "env.log'") == NULL, "env.log is fine: %s", err);
	free(err);
	wasmbin_destroy(m);
	free(wasm);
}
