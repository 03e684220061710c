#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

const char *helper_runner_path(void)
{
	static char path[4096];
	testutil_build_path("src/executor/noetl-runner", path, sizeof(path));
	return path;
}

struct engine *helper_engine_cfg(struct engine_config *cfg)
{
	static char cache[4096];
	if (cfg->cache_dir == NULL) {
		testutil_build_path("tests/executor/cache", cache, sizeof(cache));
		cfg->cache_dir = cache;
	}
	if (cfg->runner_path == NULL)
		cfg->runner_path = helper_runner_path();
	struct engine *e = NULL;
	char *err = NULL;
	int rc = engine_create(cfg, &e, &err);
	cr_assert_eq(rc, 0, "engine_create: %d %s", rc, err ? err : "");
	return e;
}

struct engine *helper_engine(unsigned pool, const struct engine_limits *lim)
{
	struct engine_config cfg = {.pool_size = pool};
	if (lim != NULL)
		cfg.limits = *lim;
	return helper_engine_cfg(&cfg);
}

char *helper_read_built(const char *rel, size_t *len)
{
	char path[4096];
	testutil_build_path(rel, path, sizeof(path));
	char *b = testutil_read_file(path, len);
	cr_assert_not_null(b, "cannot read %s (is it built?)", path);
	return b;
}

int helper_prepare_rc(struct engine *e, const char *rel, char **err)
{
	size_t len;
	char *b = helper_read_built(rel, &len);
	struct engine_module *m = NULL;
	int rc = engine_prepare(e, b, len, NULL, &m, NULL, err);
	free(b);
	if (rc == 0)
		engine_module_release(e, m);
	return rc;
}

struct engine_module *helper_prepare(struct engine *e, const char *rel)
{
	size_t len;
	char *b = helper_read_built(rel, &len);
	struct engine_module *m = NULL;
	char *err = NULL;
	int rc = engine_prepare(e, b, len, NULL, &m, NULL, &err);
	free(b);
	cr_assert_eq(rc, 0, "prepare %s: %d %s", rel, rc, err ? err : "");
	return m;
}

struct engine_result *helper_run(struct engine *e, struct engine_module *m, const char *fn,
                                 const char *const *payloads, size_t n, uint32_t timeout_ms,
                                 uint64_t memory_bytes)
{
	struct engine_event *ev = calloc(n, sizeof(*ev));
	cr_assert_not_null(ev);
	for (size_t i = 0; i < n; i++) {
		ev[i].data = payloads[i];
		ev[i].len = strlen(payloads[i]);
	}
	struct engine_run_opts o = {
	        .function = fn, .timeout_ms = timeout_ms, .memory_bytes = memory_bytes};
	struct engine_result *r = NULL;
	int rc = engine_run(e, m, &o, ev, n, &r);
	free(ev);
	cr_assert_eq(rc, 0, "engine_run: %d", rc);
	return r;
}

/* Reads /proc/<pid>/stat fields: comm (without parentheses), ppid and
 * utime + stime. */
static int read_stat(pid_t pid, char *comm, size_t cap, pid_t *ppid, long *ticks)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (open == NULL || close == NULL)
		return -1;
	snprintf(comm, cap, "%.*s", (int)(close - open - 1), open + 1);
	char state;
	int pp;
	unsigned long ut, st;
	if (sscanf(close + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &pp, &ut,
	           &st) != 4)
		return -1;
	*ppid = pp;
	*ticks = (long)(ut + st);
	return 0;
}

size_t helper_runner_pids(pid_t *out, size_t cap)
{
	DIR *d = opendir("/proc");
	size_t n = 0;
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);
		char comm[64];
		pid_t ppid;
		long ticks;
		if (pid <= 0 || read_stat(pid, comm, sizeof(comm), &ppid, &ticks) != 0)
			continue;
		if (ppid == getpid() && strcmp(comm, "noetl-runner") == 0 && n < cap)
			out[n++] = pid;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

long helper_cpu_ticks(pid_t pid)
{
	char comm[64];
	pid_t ppid;
	long ticks;
	return read_stat(pid, comm, sizeof(comm), &ppid, &ticks) == 0 ? ticks : -1;
}

char *helper_wat(const char *wat, size_t *len)
{
	char dir[256], in[512], out[512], cmd[1200];
	testutil_tempdir(dir, sizeof(dir));
	snprintf(in, sizeof(in), "%s/m.wat", dir);
	snprintf(out, sizeof(out), "%s/m.wasm", dir);
	cr_assert(testutil_write_file(in, wat, strlen(wat)));
	snprintf(cmd, sizeof(cmd), "wat2wasm '%s' -o '%s'", in, out);
	char *log = NULL;
	int st = testutil_run(cmd, &log);
	cr_assert_eq(st, 0, "wat2wasm: %s", log ? log : "");
	free(log);
	char *b = testutil_read_file(out, len);
	cr_assert_not_null(b);
	testutil_rmtree(dir);
	return b;
}
