/*
 * engine: the WebAssembly execution core of the executor. It turns a module
 * (the bytes of a Jobicolet), a function name, limits and a batch of event
 * payloads into one result per event, and nothing a module does can hurt the
 * process that calls it.
 *
 * The life of a module:
 *
 *   engine_prepare   at deploy time: checks the bytes (wasmbin), refuses
 *                    imports the host does not provide, compiles the module
 *                    ahead of time (wasm2c, then the C compiler) into a
 *                    shared object in the compile cache (keyed by the
 *                    content's SHA-256 and the toolchain's versions, so a
 *                    restart compiles nothing), and test-loads it in a runner
 *                    process. Returns a handle, or why the module cannot run.
 *   engine_run       per batch of leased events: runs them in runner
 *                    processes (sandboxed, one wall-clock deadline per event)
 *                    and returns per-event status, code, result bytes, log
 *                    lines and reason.
 *   engine_module_release   when no definition uses the module any more:
 *                    its runners are stopped; the cache file stays for the
 *                    next start.
 *
 * Runners. A pool of at most pool_size runner processes (noetl-runner) does
 * the work; each holds one module instantiated under one memory limit and
 * stays warm for the next batch of the same module. A batch goes to one or
 * more runners (an idle warm runner of the same module is always used; more
 * are spawned for large batches while slots are free). A runner that passes
 * an event's deadline is killed with SIGKILL, that event fails with
 * ENGINE_TIMEOUT, and the rest of its share of the batch runs on a fresh
 * runner. A runner that dies (trap-free crash, sandbox violation) costs the
 * event it was running, never the others and never the caller.
 *
 * Idle runners. A runner without work for runner_idle_ms is stopped (by a
 * thread of the engine), down to runner_min runners, and started again when
 * its module has events; so an idle executor gives the memory back.
 *
 * Threads. engine_prepare, engine_run, engine_module_release, engine_stats
 * and engine_sandbox_probe may be called from any number of threads at
 * once; engine_run blocks its thread until every event has a result (at
 * most about n * timeout), waiting for a free runner if the pool is busy,
 * and engine_prepare blocks while compiling. Calling engine_run from as many
 * threads as there are runners keeps the pool busy. engine_create and
 * engine_destroy must not race with anything.
 *
 * Signals. The engine never changes process-wide signal dispositions: it
 * talks to runners over socketpairs with MSG_NOSIGNAL (no SIGPIPE), reaps
 * only its own children by pid, and does not touch SIGCHLD.
 */
#ifndef NOETL_ENGINE_H
#define NOETL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What happened to one event. The numbers travel between processes. */
enum engine_status {
	ENGINE_OK = 0,      /* the handler returned code 0 */
	ENGINE_ERROR = 1,   /* non-zero code (in code; the result is its message), a
	                     * non-zero proc_exit, or a result over the size limit */
	ENGINE_TRAP = 2,    /* the guest trapped: "trap: unreachable instruction executed
	                     * in 'event'", "trap: call stack exhausted ...", a bad pointer
	                     * given to a host function, or an ABI violation */
	ENGINE_TIMEOUT = 3, /* "timeout after N ms": the runner was killed */
	ENGINE_OOM = 4,     /* out of memory under the limit: memory.grow refused and the
	                     * guest then failed, or malloc returned 0 for the payload */
	ENGINE_CRASH = 5,   /* the runner process died: "crash: runner killed by signal 11
	                     * (Segmentation fault)", "crash: sandbox violation (syscall 2
	                     * open)" */
	ENGINE_COMPILE = 6, /* the module cannot be compiled, loaded or started, or lacks the
	                     * function asked for; reason says why */
};

/* "ok", "error", "trap", "timeout", "oom", "crash", "compile". */
const char *engine_status_name(enum engine_status s);

/* Limits for running events. A zero field means "the default". */
struct engine_limits {
	uint64_t memory_bytes;     /* linear memory cap, rounded down to 64 KiB pages;
	                            * default 64 MiB, at most 65535 pages (4 GiB - 64 KiB) */
	uint32_t timeout_ms;       /* wall clock per event; default 10000 */
	uint32_t max_result_bytes; /* larger results fail the event; default 1 MiB */
	uint32_t max_log_bytes;    /* log text kept per event; default 64 KiB */
};

struct engine_config {
	const char *cache_dir;       /* compile cache directory (created if missing); required */
	const char *runner_path;     /* the noetl-runner program; NULL: "noetl-runner" in the
	                              * directory of the running executable */
	unsigned pool_size;          /* most runner processes at once; 0: online CPUs */
	struct engine_limits limits; /* defaults for engine_run */
	uint32_t compile_timeout_ms; /* per tool run (wasm2c, cc); default 300000 */
	const char *cc;              /* C compiler; NULL: "cc" */
	const char *wasm2c;          /* NULL: "wasm2c" (wabt 1.0.32 exactly) */
	uint64_t cache_max_bytes;    /* compile cache bound (see compile_prune); 0: 1 GiB,
	                              * UINT64_MAX: unbounded */
	uint32_t runner_idle_ms;     /* a runner idle this long is stopped; 0: 60000,
	                              * UINT32_MAX: never */
	unsigned runner_min;         /* expiry stops no runner below this many alive (it
	                              * starts none to reach it); 0: all may go */
};

struct engine;
struct engine_module;

/*
 * Creates an engine: checks the runner program and that its sandbox works
 * on this host (engine_sandbox_probe "open": a runner that cannot install
 * its seccomp filter, no_new_privs or rlimits could run no module, and there
 * is deliberately no way to run one without them), checks the toolchain
 * (wasm2c must be wabt 1.0.32, since the runtime implements its
 * wasm-rt.h), creates the cache directory, removes stale temporary files in
 * it and prunes it to its bound. Starts no runner beyond the probe's, and
 * the thread that expires idle runners. Returns 0, -EINVAL (bad config),
 * -ENOENT (a tool or the runner is missing), -EPERM (the sandbox does not
 * work here) or another -errno, with *err a malloc'ed message (caller frees;
 * err may be NULL). cfg and its strings are copied.
 */
int engine_create(const struct engine_config *cfg, struct engine **out, char **err);

/* Stops every runner and frees the engine. Every module handle must have
 * been released and no call may be running. Accepts NULL. */
void engine_destroy(struct engine *e);

struct engine_prepare_info {
	bool compiled;     /* this call ran the compiler (false: cache hit or already loaded) */
	double compile_ms; /* time spent compiling, 0 on a hit */
};

/*
 * Makes a module runnable. wasm[0..len) is borrowed for the call; expect_sha,
 * if not NULL, is the lowercase hex SHA-256 the caller believes the bytes
 * have (refused with -EINVAL if they differ). Preparing bytes that are
 * already prepared returns the same handle with one more reference.
 *
 * Errors (with *err a malloc'ed, user-facing message; caller frees):
 *   -EINVAL   not a valid module, or it imports something the host does not
 *             provide ("module imports 'env.fetch' ..."), or lacks the ABI's
 *             exports (memory, malloc, free)
 *   -EIO      wasm2c or the C compiler failed or timed out: the message holds
 *             the tool's stderr (bounded)
 *   -ENOEXEC  compiled, but it does not load or its start-up (init) fails
 *   -ENOMEM, -errno  resources
 * info may be NULL. On success *out holds a reference; release it with
 * engine_module_release.
 */
int engine_prepare(struct engine *e, const void *wasm, size_t len, const char *expect_sha,
                   struct engine_module **out, struct engine_prepare_info *info, char **err);

/* The module's content hash (lowercase hex, 64 characters); valid while the
 * handle is held. */
const char *engine_module_sha256(const struct engine_module *m);

/* Drops one reference. When the last one goes, the module's idle runners
 * are stopped at once and busy ones when their batch ends. Accepts NULL. */
void engine_module_release(struct engine *e, struct engine_module *m);

/* The largest payload an event may have; larger ones fail with
 * ENGINE_ERROR without running. */
#define ENGINE_MAX_PAYLOAD (64u << 20)

struct engine_event {
	const void *data; /* payload, borrowed for the call */
	size_t len;
};

struct engine_run_opts {
	const char *function;  /* exported handler; NULL: "event" */
	uint64_t memory_bytes; /* 0: the engine's default */
	uint32_t timeout_ms;   /* per event; 0: the engine's default */
};

struct engine_log {
	int level;       /* Jobico levels: 0 debug, 1 info, 2 warn, 3 error, 4 fatal, 5 panic;
	                  * guest stdout lines are 1, stderr lines 3 */
	int64_t time_ms; /* Unix milliseconds when the guest logged it */
	char *text;      /* UTF-8, NUL-terminated; owned by the result array */
};

struct engine_result {
	enum engine_status status;
	uint64_t code; /* the handler's code (ENGINE_OK: 0) */
	uint8_t *data; /* result bytes (malloc'ed, may be NULL when len is 0) */
	size_t len;
	char *reason;            /* NULL when ENGINE_OK, else why, user-facing */
	struct engine_log *logs; /* the event's log lines, in order */
	size_t nlogs;
	int64_t duration_us; /* inside the guest (timeouts: until the kill) */
};

/*
 * Runs events[0..n) with module m and writes a malloc'ed array of n results,
 * in the same order, to *out (free with engine_results_free). Every event
 * gets a result: failures of the guest, the runner or the module are
 * statuses, not errors of the call. Returns 0, or -EINVAL (n == 0, a NULL
 * argument) or -ENOMEM without writing *out. Blocks; see Threads above.
 */
int engine_run(struct engine *e, struct engine_module *m, const struct engine_run_opts *opts,
               const struct engine_event *events, size_t n, struct engine_result **out);

/* Frees a result array from engine_run; accepts NULL. */
void engine_results_free(struct engine_result *results, size_t n);

struct engine_stats {
	uint64_t runners_spawned; /* runner processes started, ever */
	uint64_t runners_killed;  /* killed for a deadline, eviction or unloading */
	uint64_t runners_crashed; /* died on their own */
	uint64_t runners_expired; /* stopped after runner_idle_ms without work */
	unsigned runners_alive;   /* running now (idle or busy) */
	unsigned modules_loaded;  /* prepared and not released */
	uint64_t compiles;        /* compiler runs (cache misses), ever */
	uint64_t cache_bytes;     /* compile cache size, as of its last pruning */
	uint64_t cache_entries;   /* compiled objects in it, likewise */
	uint64_t cache_evicted;   /* objects pruned from it, ever */
};

/* A snapshot of the counters, for /metrics and tests. */
void engine_stats(struct engine *e, struct engine_stats *out);

/*
 * Health check of the sandbox: starts a runner that applies the sandbox and
 * then attempts a forbidden operation (what: "open", "socket", "exec" or
 * "fork"). Returns 0 if the sandbox stopped it, with *reason (malloc'ed)
 * saying how ("crash: sandbox violation (syscall 257 openat)"); -EPERM if the
 * operation was NOT stopped (the sandbox does not work here), -EINVAL for an
 * unknown what, or another -errno. Call it at start-up.
 */
int engine_sandbox_probe(struct engine *e, const char *what, char **reason);

#endif
