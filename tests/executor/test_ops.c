/*
 * The engine's housekeeping: the sandbox probe at start, the bounded compile
 * cache and idle runners that expire. Real runners, a real compiler, a
 * private cache directory per test (pruning must not touch the shared one).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compile.h"
#include "engine.h"
#include "helpers.h"
#include "testutil.h"
#include "util.h"

static char dir[256];
static char cache[512];

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	cr_assert_eq(mkdir(cache, 0700), 0);
}

static void teardown(void)
{
	testutil_rmtree(dir);
}

/* A fake compiled object named by a hex digit repeated: 1000 bytes, last used age seconds ago. */
static void object(const char *sha_char, const char *toolchain, time_t age)
{
	char sha[65], path[700], body[1000];
	memset(sha, sha_char[0], 64);
	sha[64] = 0;
	snprintf(path, sizeof(path), "%s/%s-%s.so", cache, sha, toolchain);
	memset(body, 'x', sizeof(body));
	cr_assert(testutil_write_file(path, body, sizeof(body)));
	struct timespec t[2] = {{.tv_sec = time(NULL) - age}, {.tv_sec = time(NULL) - age}};
	cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

static bool has_object(const char *sha_char, const char *toolchain)
{
	char sha[65], path[700];
	memset(sha, sha_char[0], 64);
	sha[64] = 0;
	snprintf(path, sizeof(path), "%s/%s-%s.so", cache, sha, toolchain);
	return access(path, F_OK) == 0;
}

Test(ops, the_sandbox_probe_stops_an_open_on_this_machine)
{
	struct engine *e = helper_engine(1, NULL);
	char *reason = NULL;
	cr_assert_eq(engine_sandbox_probe(e, "open", &reason), 0, "%s", reason);
	cr_assert(strstr(reason, "sandbox violation") != NULL, "%s", reason);
	cr_assert(strstr(reason, "openat") != NULL, "%s", reason);
	free(reason);
	reason = NULL;
	cr_assert_eq(engine_sandbox_probe(e, "socket", &reason), 0, "%s", reason);
	free(reason);
	cr_assert_eq(engine_sandbox_probe(e, "reboot", NULL), -EINVAL);
	engine_destroy(e);
}

Test(ops, engine_create_refuses_a_runner_whose_sandbox_does_not_work, .init = setup,
     .fini = teardown)
{
	/* /bin/true exits at once without stopping anything: the probe's open
	 * was never refused */
	struct engine_config cfg = {.cache_dir = cache, .runner_path = "/bin/true", .pool_size = 1};
	struct engine *e = NULL;
	char *err = NULL;
	cr_assert_eq(engine_create(&cfg, &e, &err), -EPERM, "%s", err);
	cr_assert_null(e);
	cr_assert(strstr(err, "the runner sandbox does not work on this host") != NULL, "%s", err);
	cr_assert(strstr(err, "runner exited with status 0") != NULL, "%s", err);
	cr_assert(strstr(err, "seccomp") != NULL, "%s", err);
	free(err);

	/* a runner whose sandbox fails to install says why, and that is quoted */
	char fake[600];
	snprintf(fake, sizeof(fake), "%s/fake-runner", dir);
	const char *sh = "#!/bin/sh\n"
	                 "printf '\\045\\000\\000\\000\\013\\005\\037\\000\\000\\000"
	                 "sandbox: seccomp filter: EINVAL' >&3\n";
	cr_assert(testutil_write_file(fake, sh, strlen(sh)));
	cr_assert_eq(chmod(fake, 0755), 0);
	cfg.runner_path = fake;
	err = NULL;
	cr_assert_eq(engine_create(&cfg, &e, &err), -EPERM, "%s", err);
	cr_assert(strstr(err, "(sandbox: seccomp filter: EINVAL)") != NULL, "%s", err);
	free(err);
}

Test(ops, pruning_removes_least_recently_used_objects_but_not_loaded_or_recent_ones, .init = setup,
     .fini = teardown)
{
	struct compile *c = NULL;
	char *err = NULL;
	cr_assert_eq(compile_create(cache, NULL, NULL, 0, &c, &err), 0, "%s", err);
	const char *tc = compile_toolchain_id(c);
	object("c", tc, 50000);                 /* oldest, but loaded */
	object("d", "0123456789abcdef", 40000); /* another toolchain's */
	object("b", tc, 30000);
	object("a", tc, 20000);
	object("e", tc, 0); /* used just now */
	char other[700];
	snprintf(other, sizeof(other), "%s/notes.txt", cache);
	cr_assert(testutil_write_file(other, "not an object", 13));
	char keep[1][65];
	memset(keep[0], 'c', 64);
	keep[0][64] = 0;

	cr_assert_eq(compile_prune(c, 2500, (const char(*)[65])keep, 1), 0);
	cr_assert(has_object("c", tc), "a loaded module's object stays");
	cr_assert_not(has_object("d", "0123456789abcdef"));
	cr_assert_not(has_object("b", tc));
	cr_assert_not(has_object("a", tc));
	cr_assert(has_object("e", tc), "an object used within the grace time stays");
	cr_assert_eq(access(other, F_OK), 0, "files that are not objects are left alone");
	struct compile_cache_stats st;
	compile_cache_stats(c, &st);
	cr_assert_eq(st.bytes, 2000);
	cr_assert_eq(st.entries, 2);
	cr_assert_eq(st.evicted, 3);

	/* under the bound nothing goes, however old */
	object("f", tc, 90000);
	cr_assert_eq(compile_prune(c, 1 << 20, NULL, 0), 0);
	cr_assert(has_object("f", tc));
	compile_cache_stats(c, &st);
	cr_assert_eq(st.entries, 3);
	cr_assert_eq(st.evicted, 3);

	/* a touched object is the most recently used: the older one goes first */
	object("9", tc, 80000);
	char path[700], sha[65];
	memset(sha, '9', 64);
	sha[64] = 0;
	snprintf(path, sizeof(path), "%s/%s-%s.so", cache, sha, tc);
	compile_touch(path);
	cr_assert_eq(compile_prune(c, 3000, NULL, 0), 0);
	cr_assert(has_object("9", tc));
	cr_assert_not(has_object("f", tc));
	compile_destroy(c);
}

Test(ops, the_engine_prunes_its_cache_at_start_and_after_a_compile, .init = setup, .fini = teardown)
{
	struct compile *c = NULL;
	char *err = NULL;
	cr_assert_eq(compile_create(cache, NULL, NULL, 0, &c, &err), 0, "%s", err);
	char tc[17];
	snprintf(tc, sizeof(tc), "%s", compile_toolchain_id(c));
	compile_destroy(c);
	object("a", tc, 30000);
	object("b", tc, 30000);

	struct engine_config cfg = {.cache_dir = cache, .pool_size = 1, .cache_max_bytes = 1};
	struct engine *e = helper_engine_cfg(&cfg);
	cr_assert_not(has_object("a", tc));
	cr_assert_not(has_object("b", tc));
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.cache_entries, 0);
	cr_assert_eq(st.cache_bytes, 0);
	cr_assert_eq(st.cache_evicted, 2);

	object("c", tc, 30000); /* left by another process meanwhile */
	size_t len;
	char *wasm = helper_wat("(module (memory (export \"memory\") 1)\n"
	                        "(func (export \"malloc\") (param i32) (result i32) i32.const 64)\n"
	                        "(func (export \"free\") (param i32))\n"
	                        "(func (export \"event\") (param i32 i32 i32)\n"
	                        "  (i64.store (local.get 0) (i64.const 3))))",
	                        &len);
	struct engine_module *m;
	struct engine_prepare_info info;
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, &info, &err), 0, "%s", err);
	cr_assert(info.compiled);
	cr_assert_not(has_object("c", tc), "the compile pruned the cache");
	engine_stats(e, &st);
	cr_assert_eq(st.cache_entries, 1, "the loaded module's object stays, over the bound");
	cr_assert_gt(st.cache_bytes, 1);
	cr_assert_eq(st.cache_evicted, 3);
	const char *p[] = {""};
	struct engine_result *r = helper_run(e, m, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_ERROR, "%s", r[0].reason);
	cr_assert_eq(r[0].code, 3);
	engine_results_free(r, 1);
	char so[700];
	snprintf(so, sizeof(so), "%s/%s-%s.so", cache, engine_module_sha256(m), tc);
	engine_module_release(e, m);
	engine_destroy(e);

	/* a cache hit marks the object as used (its atime), not rewritten */
	time_t old = time(NULL) - 30000;
	struct timespec t[2] = {{.tv_sec = old}, {.tv_sec = old}};
	cr_assert_eq(utimensat(AT_FDCWD, so, t, 0), 0);
	cfg.cache_max_bytes = UINT64_MAX; /* (an old object would go at start) */
	e = helper_engine_cfg(&cfg);
	cr_assert_eq(engine_prepare(e, wasm, len, NULL, &m, &info, &err), 0, "%s", err);
	cr_assert_not(info.compiled);
	struct stat sb;
	cr_assert_eq(stat(so, &sb), 0);
	cr_assert_gt(sb.st_atime, old + 20000);
	cr_assert_eq(sb.st_mtime, old);
	engine_module_release(e, m);
	engine_destroy(e);
	free(wasm);
}

/* Waits (boundedly) until f(stats) holds; returns the last stats. */
static struct engine_stats wait_stats(struct engine *e, bool (*f)(const struct engine_stats *))
{
	struct engine_stats st;
	for (int i = 0; i < 6000; i++) {
		engine_stats(e, &st);
		if (f(&st))
			break;
		util_sleep_ms(10);
	}
	return st;
}

static bool none_alive(const struct engine_stats *s)
{
	return s->runners_alive == 0;
}

static bool one_expired(const struct engine_stats *s)
{
	return s->runners_expired >= 1;
}

static struct engine_result *run_many(struct engine *e, struct engine_module *m, size_t n)
{
	const char **p = calloc(n, sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p[i] = "idle";
	struct engine_result *r = helper_run(e, m, NULL, p, n, 0, 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(r[i].status, ENGINE_OK, "%s", r[i].reason);
	free(p);
	return r;
}

Test(ops, idle_runners_expire_and_the_next_event_starts_one_again)
{
	struct engine_config cfg = {.pool_size = 2, .runner_idle_ms = 100};
	struct engine *e = helper_engine_cfg(&cfg);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	engine_results_free(run_many(e, m, 64), 64);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_geq(st.runners_spawned, 2);

	st = wait_stats(e, none_alive);
	cr_assert_eq(st.runners_alive, 0, "idle runners were not stopped");
	cr_assert_geq(st.runners_expired, 2);
	cr_assert_eq(st.runners_crashed, 0);
	pid_t pids[8];
	size_t left = helper_runner_pids(pids, 8);
	for (int i = 0; i < 6000 && left > 0; i++) { /* stopped just after being counted */
		util_sleep_ms(10);
		left = helper_runner_pids(pids, 8);
	}
	cr_assert_eq(left, 0, "the processes are gone");
	cr_assert_eq(st.modules_loaded, 1, "the module stays prepared");

	uint64_t spawned = st.runners_spawned;
	engine_results_free(run_many(e, m, 1), 1);
	engine_stats(e, &st);
	cr_assert_eq(st.runners_spawned, spawned + 1, "the event started a runner again");
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(ops, expiry_keeps_runner_min_runners)
{
	struct engine_config cfg = {.pool_size = 2, .runner_idle_ms = 50, .runner_min = 1};
	struct engine *e = helper_engine_cfg(&cfg);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	engine_results_free(run_many(e, m, 64), 64);
	struct engine_stats st = wait_stats(e, one_expired);
	cr_assert_eq(st.runners_expired, 1);
	/* several idle times later the last runner is still there */
	util_sleep_ms(500);
	engine_stats(e, &st);
	cr_assert_eq(st.runners_alive, 1);
	cr_assert_eq(st.runners_expired, 1);
	engine_results_free(run_many(e, m, 1), 1);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(ops, a_never_expiring_engine_keeps_its_runners)
{
	struct engine_config cfg = {.pool_size = 1, .runner_idle_ms = UINT32_MAX};
	struct engine *e = helper_engine_cfg(&cfg);
	struct engine_module *m = helper_prepare(e, "sdk/examples/echo.wasm");
	engine_results_free(run_many(e, m, 1), 1);
	util_sleep_ms(200);
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.runners_alive, 1);
	cr_assert_eq(st.runners_expired, 0);
	engine_module_release(e, m);
	engine_destroy(e);
}

Test(ops, releasing_a_module_stops_its_runners_and_keeps_the_others)
{
	/* what the catalog does when a package is removed: its module goes, and
	 * with it the runners holding it, while other modules' runners stay */
	struct engine_config cfg = {.pool_size = 2, .runner_idle_ms = UINT32_MAX};
	struct engine *e = helper_engine_cfg(&cfg);
	struct engine_module *gone = helper_prepare(e, "sdk/examples/echo.wasm");
	struct engine_module *stays = helper_prepare(e, "sdk/examples/greet.wasm");
	struct engine_stats st;
	engine_stats(e, &st);
	cr_assert_eq(st.runners_alive, 2);
	uint64_t killed = st.runners_killed;
	engine_module_release(e, gone);
	engine_stats(e, &st);
	cr_assert_eq(st.runners_alive, 1);
	cr_assert_eq(st.runners_killed, killed + 1);
	cr_assert_eq(st.modules_loaded, 1);
	const char *p[] = {"{\"name\":\"Ada\"}"};
	struct engine_result *r = helper_run(e, stays, NULL, p, 1, 0, 0);
	cr_assert_eq(r[0].status, ENGINE_OK, "%s", r[0].reason);
	engine_results_free(r, 1);
	engine_stats(e, &st);
	cr_assert_eq(st.runners_spawned, 2, "the other module's runner stayed warm");
	engine_module_release(e, stays);
	engine_destroy(e);
}
