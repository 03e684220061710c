/*
 * engine_impl: what engine.c (modules, the pool) and engine_run.c (running
 * batches) share. Not for other files.
 */
#ifndef NOETL_ENGINE_IMPL_H
#define NOETL_ENGINE_IMPL_H

#include <pthread.h>

#include "engine.h"
#include "rtconfig.h"
#include "runner_proc.h"
#include "wasmbin.h"

#define DEFAULT_MEMORY      (64ull << 20)
#define DEFAULT_TIMEOUT_MS  10000u
#define DEFAULT_MAX_RESULT  (1u << 20)
#define DEFAULT_MAX_LOG     (64u << 10)
#define START_GRACE_MS      10000 /* loading a module may take this long beyond a timeout */
#define MIN_EVENTS_PER_LANE 8     /* smaller shares are not worth another runner */
#define SPAWN_FOR_BATCH     32    /* batches this large may start new runners */
#define MAX_FUNCTION_NAME   255
#define DEFAULT_CACHE_MAX   (1ull << 30)
#define DEFAULT_IDLE_MS     60000u

enum slot_state { SLOT_EMPTY, SLOT_IDLE, SLOT_BUSY };

struct engine_module {
	char sha[65];               /* content hash, hex */
	char *so_path;              /* the compiled object in the cache */
	struct wasmbin *info;       /* imports, exports, types */
	unsigned refs;              /* handles + slots holding it */
	unsigned user_refs;         /* handles */
	struct engine_module *next; /* in engine.modules while user_refs > 0 */
};

struct slot {
	enum slot_state state;
	struct runner_proc *proc;  /* the runner, or NULL */
	struct engine_module *mod; /* what proc loaded (a ref), or NULL */
	uint32_t pages;            /* its memory limit */
	int64_t last_used_ms;      /* for choosing whom to evict */
};

struct engine {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a slot became available */
	struct compile *comp;
	char *runner_path;
	struct engine_limits lim; /* defaults, all fields set */
	unsigned nslots;
	struct slot *slots;
	struct engine_module *modules;
	struct engine_stats stats;
	uint64_t cache_max;          /* compile cache bound, bytes (UINT64_MAX: none) */
	uint32_t idle_ms;            /* idle runners live this long (UINT32_MAX: for ever) */
	unsigned runner_min;         /* expiry keeps this many runners */
	bool reaper_on;              /* the reaper thread runs */
	int64_t touched_ms;          /* when the reaper last touched the loaded objects */
	bool stopping;               /* engine_destroy asks the reaper to end */
	pthread_t reaper;            /* expires idle runners, touches loaded objects */
	pthread_cond_t reaper_cv;    /* wakes the reaper (CLOCK_MONOTONIC) */
	struct runner_proc **reaped; /* nslots runners the reaper stops, outside the lock */
};

/* Frees m when its last reference goes. Call with e->mu held (or alone). */
void engine_module_unref_locked(struct engine_module *m);

/* A memory limit in bytes as pages (at least 1, at most RT_MAX_PAGES). */
uint32_t engine_pages_of(uint64_t bytes);

/* Starts a runner for module m under pages; counts it. */
int engine_spawn(struct engine *e, const struct engine_module *m, uint32_t pages,
                 struct runner_proc **out, char *err, size_t cap);

/* Waits for a new runner's first frame: ENGINE_OK if READY, else an
 * engine_status with the reason in why (the runner is then finished). */
int engine_await_ready(struct runner_proc *p, uint32_t timeout_ms, char *why, size_t cap);

/* What engine_acquire may lend. */
enum acquire_mode {
	ACQUIRE_WARM,     /* only an idle runner of the same module and pages */
	ACQUIRE_NO_EVICT, /* that, or an empty slot */
	ACQUIRE_ANY,      /* that, or the least recently used idle runner, killed */
};

/* Lends a slot for (m, pages) as mode allows. The slot may have no process
 * yet. Waits for one if block, else returns NULL. */
struct slot *engine_acquire(struct engine *e, struct engine_module *m, uint32_t pages, bool block,
                            enum acquire_mode mode);

/* Gives a slot back; its runner stays warm unless the module was released. */
void engine_release_slot(struct engine *e, struct slot *s);

/* Counts a runner that died on its own or was killed. */
void engine_count(struct engine *e, bool crashed);

#endif
