/*
 * helpers: what the executor tests share: an engine over a compile cache in
 * the build tree (compiling a module takes seconds, and the cache is
 * content-addressed, so tests and runs share it safely), fixture loading and
 * batch running.
 */
#ifndef NOETL_TEST_EXECUTOR_HELPERS_H
#define NOETL_TEST_EXECUTOR_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

/* Creates an engine with pool runners, the shared cache and these limits
 * (NULL: defaults). Aborts the test on failure. */
struct engine *helper_engine(unsigned pool, const struct engine_limits *lim);

/* Same with a given cache directory and config tweaks applied by the caller. */
struct engine *helper_engine_cfg(struct engine_config *cfg);

/* The runner program in the build tree (static buffer). */
const char *helper_runner_path(void);

/* Reads a built file, e.g. "tests/executor/trap.wasm"; aborts if missing. */
char *helper_read_built(const char *rel, size_t *len);

/* Prepares a built fixture; aborts the test with the reason on failure. */
struct engine_module *helper_prepare(struct engine *e, const char *rel);

/* Prepares a built fixture and returns the code; *err as engine_prepare. */
int helper_prepare_rc(struct engine *e, const char *rel, char **err);

/* Runs NUL-terminated payloads with fn (NULL: "event"), timeout_ms and
 * memory_bytes (0: defaults). Returns the results (free with
 * engine_results_free(r, n)). */
struct engine_result *helper_run(struct engine *e, struct engine_module *m, const char *fn,
                                 const char *const *payloads, size_t n, uint32_t timeout_ms,
                                 uint64_t memory_bytes);

/* The pids of this process's runner children. Returns the count. */
size_t helper_runner_pids(pid_t *out, size_t cap);

/* CPU time (user + system) of pid in clock ticks, or -1. */
long helper_cpu_ticks(pid_t pid);

/* Assembles WAT text into a module with wat2wasm; returns the bytes. */
char *helper_wat(const char *wat, size_t *len);

#endif
