/*
 * bench/wasm: what WebAssembly costs in the executor, against baselines
 * measured in the same run.
 *
 *   (a) per-event overhead: the echo example through a warm runner in
 *       batches of 64 (engine_run), against calling the same compiled
 *       module in this process (the runner's own host code, guest.c,
 *       without the process and the socket around it);
 *   (b) compute: one C kernel built natively and to WebAssembly (AOT via
 *       wasm2c), run in this process; the ratio is native time / wasm time;
 *   (c) cold compile time per module (wasm2c + cc into an empty cache).
 *
 * Usage: bench_wasm [--seconds S]    (default 1 second per measurement)
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compile.h"
#include "engine.h"
#include "guest.h"
#include "util.h"
#include "wasmbin.h"

uint32_t wasm_kernel(uint32_t rounds);

static char here[PATH_MAX]; /* the directory of this program */

static void path_of(const char *rel, char *out, size_t cap)
{
	if (snprintf(out, cap, "%s/%s", here, rel) >= (int)cap)
		out[0] = 0; /* too long: the open that follows fails and says so */
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *b = malloc(n > 0 ? (size_t)n : 1);
	if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

struct compiled {
	const char *name;
	char *so;
	double ms;
	size_t bytes;
};

/* (c): compiles into the empty cache c; returns the object path. */
static int cold_compile(struct compile *c, const char *rel, struct compiled *out)
{
	char path[PATH_MAX];
	path_of(rel, path, sizeof(path));
	size_t len;
	char *wasm = read_all(path, &len);
	if (wasm == NULL) {
		fprintf(stderr, "bench_wasm: cannot read %s\n", path);
		return -ENOENT;
	}
	struct wasmbin *m;
	char *err = NULL, sha[65];
	util_sha256_hex(wasm, len, sha);
	int rc = wasmbin_parse(wasm, len, &m, &err);
	if (rc == 0) {
		bool compiled;
		int64_t t0 = util_mono_us();
		rc = compile_module(c, m, wasm, len, sha, &out->so, &compiled, &err);
		out->ms = (double)(util_mono_us() - t0) / 1000.0;
		wasmbin_destroy(m);
	}
	if (rc != 0)
		fprintf(stderr, "bench_wasm: %s: %s\n", rel, err ? err : "failed");
	out->bytes = len;
	free(err);
	free(wasm);
	return rc;
}

/* (a), through runners: µs per event, the best of five windows (the
 * machine is shared; the best window is the cost without interference). */
static double runner_per_event(struct engine *e, struct engine_module *m, double seconds)
{
	enum { BATCH = 64 };
	char payload[64];
	memset(payload, 'p', sizeof(payload));
	struct engine_event ev[BATCH];
	for (int i = 0; i < BATCH; i++)
		ev[i] = (struct engine_event){payload, sizeof(payload)};
	double best = 1e18;
	for (int w = -1; w < 5; w++) { /* window -1 warms up */
		long events = 0;
		int64_t t0 = util_mono_us();
		while (util_mono_us() - t0 < (int64_t)(seconds * 1e6 / 5)) {
			struct engine_result *r;
			if (engine_run(e, m, NULL, ev, BATCH, &r) != 0)
				return -1;
			for (int i = 0; i < BATCH; i++)
				if (r[i].status != ENGINE_OK)
					return -1;
			engine_results_free(r, BATCH);
			events += BATCH;
		}
		double us = (double)(util_mono_us() - t0) / (double)events;
		if (w >= 0 && us < best)
			best = us;
	}
	return best;
}

/* (a), in this process: µs per event, the best of five windows. */
static double inproc_per_event(const char *so, double seconds)
{
	struct guest_limits lim = {1024, 1u << 20, 64u << 10};
	struct guest *g;
	int st;
	char err[640];
	if (guest_open(so, &lim, &g, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_wasm: in-process load: %s\n", err);
		return -1;
	}
	char payload[64];
	memset(payload, 'p', sizeof(payload));
	struct guest_result res;
	double us = 1e18;
	for (int w = -1; w < 5; w++) {
		long events = 0;
		int64_t t0 = util_mono_us();
		while (util_mono_us() - t0 < (int64_t)(seconds * 1e6 / 5)) {
			for (int i = 0; i < 1024; i++) {
				guest_event(g, "event", (const uint8_t *)payload, sizeof(payload),
				            &res);
				if (res.status != ENGINE_OK)
					return -1;
			}
			events += 1024;
		}
		double w_us = (double)(util_mono_us() - t0) / (double)events;
		if (w >= 0 && w_us < us)
			us = w_us;
	}
	guest_close(g);
	return us;
}

/* Thread CPU time in microseconds: time this thread ran, so other load on
 * the machine does not count against either side of the comparison. */
static int64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* (b): rounds of the kernel natively and in wasm (in this process),
 * alternating, seven times each; the best CPU time of each, in ms. The
 * answers of both must agree. Returns false if the module does not run. */
static bool kernel_compare(const char *so, uint32_t rounds, double *nat_ms, double *wasm_ms,
                           bool *agree)
{
	struct guest_limits lim = {1024, 1u << 20, 64u << 10};
	struct guest *g;
	int st;
	char err[640], arg[16];
	if (guest_open(so, &lim, &g, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_wasm: kernel load: %s\n", err);
		return false;
	}
	snprintf(arg, sizeof(arg), "%u", rounds);
	*nat_ms = *wasm_ms = 1e18;
	*agree = true;
	for (int i = 0; i < 7; i++) {
		int64_t t0 = cpu_us();
		uint32_t h = wasm_kernel(rounds);
		double ms = (double)(cpu_us() - t0) / 1000.0;
		*nat_ms = ms < *nat_ms ? ms : *nat_ms;
		struct guest_result res;
		t0 = cpu_us();
		guest_event(g, "event", (const uint8_t *)arg, (uint32_t)strlen(arg), &res);
		ms = (double)(cpu_us() - t0) / 1000.0;
		if (res.status != ENGINE_OK) {
			fprintf(stderr, "bench_wasm: kernel: %s\n", res.reason);
			guest_close(g);
			return false;
		}
		*wasm_ms = ms < *wasm_ms ? ms : *wasm_ms;
		char num[16] = "";
		snprintf(num, sizeof(num), "%.*s", (int)res.len, (const char *)res.data);
		*agree = *agree && (uint32_t)strtoul(num, NULL, 10) == h;
	}
	guest_close(g);
	return true;
}

int main(int argc, char **argv)
{
	double seconds = 1.0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench_wasm [--seconds S]\n");
			return 2;
		}
	}
	ssize_t n = readlink("/proc/self/exe", here, sizeof(here) - 1);
	if (n <= 0)
		return 1;
	here[n] = 0;
	*strrchr(here, '/') = 0;

	char cache[] = "/tmp/noetl-bench-wasm-XXXXXX", runner[PATH_MAX];
	if (mkdtemp(cache) == NULL)
		return 1;
	path_of("../src/executor/noetl-runner", runner, sizeof(runner));
	struct compile *c = NULL;
	char *err = NULL;
	if (compile_create(cache, NULL, NULL, 0, &c, &err) != 0) {
		fprintf(stderr, "bench_wasm: %s\n", err);
		return 1;
	}
	struct compiled mods[] = {{"echo", NULL, 0, 0},
	                          {"greet", NULL, 0, 0},
	                          {"kernel", NULL, 0, 0},
	                          {"trap (wat)", NULL, 0, 0}};
	const char *rel[] = {"../sdk/examples/echo.wasm", "../sdk/examples/greet.wasm",
	                     "wasm_kernel.wasm", "../tests/executor/trap.wasm"};
	int status = 0;
	for (size_t i = 0; i < 4; i++)
		if (cold_compile(c, rel[i], &mods[i]) != 0 && i < 3)
			status = 1;
	compile_destroy(c);

	double run_us = -1, in_us = -1, nat_ms = -1, wasm_ms = -1;
	uint32_t rounds = 40;
	bool agree = false;
	if (status == 0) {
		struct engine_config cfg = {
		        .cache_dir = cache, .runner_path = runner, .pool_size = 1};
		struct engine *e;
		struct engine_module *m;
		size_t len;
		char path[PATH_MAX];
		path_of(rel[0], path, sizeof(path));
		char *wasm = read_all(path, &len);
		if (wasm != NULL && engine_create(&cfg, &e, &err) == 0) {
			if (engine_prepare(e, wasm, len, NULL, &m, NULL, &err) == 0) {
				run_us = runner_per_event(e, m, seconds);
				engine_module_release(e, m);
			}
			engine_destroy(e);
		}
		free(wasm);
		in_us = inproc_per_event(mods[0].so, seconds);
		/* size the kernel to about 100 ms of CPU natively */
		for (;;) {
			int64_t t0 = cpu_us();
			(void)wasm_kernel(rounds);
			if (cpu_us() - t0 >= 100000 || rounds >= 1u << 20)
				break;
			rounds *= 2;
		}
		if (!kernel_compare(mods[2].so, rounds, &nat_ms, &wasm_ms, &agree))
			wasm_ms = -1;
	}
	if (err != NULL)
		fprintf(stderr, "bench_wasm: %s\n", err);

	printf("bench/wasm: echo module, batches of 64 events of 64 bytes, %.1f s per cell\n",
	       seconds);
	printf("%-34s | %12s | %12s\n", "", "measured", "baseline");
	printf("%-34s | %9.2f us | %9.2f us   (in-process call)\n", "per event through a runner",
	       run_us, in_us);
	printf("%-34s | %9.2f us |                (target <= 5 us)\n", "overhead per event",
	       run_us - in_us);
	printf("%-34s | %9.1f ms | %9.1f ms   (native; CPU time, %u rounds)\n",
	       "compute kernel in wasm", wasm_ms, nat_ms, rounds);
	printf("%-34s | %9.2fx   |                (target >= 0.80x; results %s)\n",
	       "kernel speed, native / wasm time", wasm_ms > 0 ? nat_ms / wasm_ms : 0,
	       agree ? "agree" : "DIFFER");
	for (size_t i = 0; i < 4; i++) {
		char label[64];
		snprintf(label, sizeof(label), "cold compile: %s (%zu KiB)", mods[i].name,
		         mods[i].bytes / 1024);
		printf("%-34s | %9.0f ms |\n", label, mods[i].ms);
		free(mods[i].so);
	}
	bool ok = run_us > 0 && in_us > 0 && run_us - in_us <= 5.0 && wasm_ms > 0 &&
	          nat_ms / wasm_ms >= 0.8 && agree;
	printf("targets: overhead <= 5 us, kernel >= 0.80x native: %s\n", ok ? "met" : "NOT met");
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cache);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_wasm: could not remove %s\n", cache);
	return status;
}
