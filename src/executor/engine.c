/*
 * engine: modules, the runner pool, and running batches. See engine.h for
 * the contract; this is how it is kept.
 *
 * The pool is an array of slots. A slot is EMPTY (no process), IDLE (a
 * runner that has loaded module `mod` under `pages` of memory and waits) or
 * BUSY (lent to one engine_run). Slots change state only under the engine's
 * mutex; a BUSY slot and its process belong to the borrowing thread alone,
 * which does all I/O with it outside the lock. Lending prefers a warm runner
 * of the same (module, pages); otherwise an empty slot; otherwise the least
 * recently used idle runner of another module, which is killed.
 *
 * One engine_run splits its batch into contiguous shares ("lanes"), one per
 * borrowed slot: always one (waiting if the pool is busy), plus any idle
 * warm runners of the module, plus empty slots when the batch is large. It
 * then drives all lanes from a single poll() loop. A lane sends its share as
 * one BATCH and receives one RESULT per event; the deadline of the event in
 * flight starts when the previous result (or the batch) went out/arrived, so
 * a kill always charges the event that was running. After a kill or crash
 * the lane starts a fresh runner in the same slot and sends what is left of
 * its share; every failure consumes an event, so a lane always ends.
 *
 * Idle runners expire: a thread (reaper_main) sleeps until the least
 * recently used idle runner has been idle for idle_ms, then empties its slot
 * under the lock and kills the process outside it, while more than
 * runner_min runners are alive. An EMPTY slot is what engine_acquire takes
 * first, so the next batch of that module simply starts a fresh runner.
 * The same thread marks the cache objects of the loaded modules as used
 * every COMPILE_TOUCH_EVERY_S, so that another process pruning a shared
 * cache never takes them away from this one (see compile_prune).
 *
 * At start the engine runs the sandbox probe (a runner that enters the
 * sandbox and tries an open) and refuses to start if the open is not
 * stopped: every runner would fail the same way, one event at a time.
 * After a compile (and at start) the compile cache is pruned to its bound,
 * keeping the objects of the modules in the table.
 *
 * Modules are shared by content hash. A module's memory is counted by refs
 * (handles from engine_prepare plus slots holding it); user_refs counts the
 * handles alone, and when it reaches zero the module leaves the table and
 * its runners are stopped.
 */
#include "engine.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compile.h"
#include "engine_impl.h"
#include "log.h"
#include "runner_proc.h"
#include "util.h"
#include "wasmbin.h"

const char *engine_status_name(enum engine_status s)
{
	static const char *names[] = {"ok", "error", "trap", "timeout", "oom", "crash", "compile"};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

static int errf(char **err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int errf(char **err, int rc, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(err, fmt, ap) < 0)
			*err = NULL;
		va_end(ap);
	}
	return rc;
}

static char *default_runner_path(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return strdup("noetl-runner");
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = 0;
	char *p = NULL;
	if (asprintf(&p, "%s/noetl-runner", exe) < 0)
		return NULL;
	return p;
}

/* Checks, once at start, what runners would otherwise find out one by one
 * by dying: that the sandbox can be installed here. */
static int check_sandbox(struct engine *e, char **err)
{
	char *reason = NULL;
	int rc = engine_sandbox_probe(e, "open", &reason);
	if (rc == 0) {
		log_debug("executor: the runner sandbox works (%s)", reason ? reason : "");
		free(reason);
		return 0;
	}
	rc = errf(err, rc,
	          "the runner sandbox does not work on this host (%s); noetl runs modules only "
	          "inside it and has no option to run them without it: use a Linux kernel with "
	          "seccomp filters (CONFIG_SECCOMP_FILTER, 3.17 or later) and a container "
	          "runtime that lets processes call prctl(PR_SET_NO_NEW_PRIVS), "
	          "prctl(PR_SET_SECCOMP) and setrlimit",
	          reason != NULL ? reason : strerror(-rc));
	free(reason);
	return rc;
}

/* Prunes the compile cache, keeping the objects of the loaded modules. */
static void prune_cache(struct engine *e)
{
	size_t n = 0, cap = 0;
	char(*keep)[65] = NULL;
	pthread_mutex_lock(&e->mu);
	for (struct engine_module *m = e->modules; m != NULL; m = m->next)
		cap++;
	if (cap > 0 && (keep = calloc(cap, sizeof(*keep))) != NULL)
		for (struct engine_module *m = e->modules; m != NULL; m = m->next)
			memcpy(keep[n++], m->sha, sizeof(keep[0]));
	pthread_mutex_unlock(&e->mu);
	if (cap > 0 && keep == NULL)
		return; /* out of memory: prune next time rather than blindly */
	compile_prune(e->comp, e->cache_max, (const char(*)[65])keep, n);
	free(keep);
}

/*
 * Stops the idle runners whose time is up, least recently used first, while
 * more than runner_min are alive; returns when the next one (or the next
 * touch of the loaded objects) is due. Called
 * with e->mu held; the processes to stop go to e->reaped[0..*n).
 */
static int64_t expire_locked(struct engine *e, int64_t now, size_t *n)
{
	int64_t next = e->touched_ms + COMPILE_TOUCH_EVERY_S * 1000ll;
	if (e->idle_ms == UINT32_MAX)
		return next;
	if (now + e->idle_ms < next)
		next = now + e->idle_ms;
	unsigned alive = 0;
	for (unsigned i = 0; i < e->nslots; i++)
		alive += e->slots[i].proc != NULL;
	for (;;) {
		struct slot *oldest = NULL;
		for (unsigned i = 0; i < e->nslots; i++) {
			struct slot *s = &e->slots[i];
			if (s->state == SLOT_IDLE && s->proc != NULL &&
			    (oldest == NULL || s->last_used_ms < oldest->last_used_ms))
				oldest = s;
		}
		if (oldest == NULL || alive <= e->runner_min)
			return next;
		int64_t due = oldest->last_used_ms + e->idle_ms;
		if (due > now)
			return due < next ? due : next;
		e->reaped[(*n)++] = oldest->proc;
		oldest->proc = NULL;
		oldest->state = SLOT_EMPTY;
		engine_module_unref_locked(oldest->mod);
		oldest->mod = NULL;
		alive--;
		e->stats.runners_expired++;
	}
}

static void *reaper_main(void *arg)
{
	struct engine *e = arg;
	pthread_mutex_lock(&e->mu);
	while (!e->stopping) {
		size_t n = 0;
		int64_t now = util_mono_ms();
		if (now - e->touched_ms >= COMPILE_TOUCH_EVERY_S * 1000ll) {
			/* a utimensat per loaded module, once an hour: not worth
			 * copying the paths out of the lock */
			for (struct engine_module *m = e->modules; m != NULL; m = m->next)
				compile_touch(m->so_path);
			e->touched_ms = now;
		}
		int64_t next = expire_locked(e, now, &n);
		if (n > 0) {
			pthread_cond_broadcast(&e->cv); /* empty slots for waiting callers */
			pthread_mutex_unlock(&e->mu);
			for (size_t i = 0; i < n; i++)
				runner_proc_destroy(e->reaped[i]);
			log_debug("executor: stopped %zu idle runner(s)", n);
			pthread_mutex_lock(&e->mu);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t wait_ms = next - util_mono_ms();
		if (wait_ms < 1)
			wait_ms = 1;
		ts.tv_sec += (time_t)(wait_ms / 1000);
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&e->reaper_cv, &e->mu, &ts);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int engine_create(const struct engine_config *cfg, struct engine **out, char **err)
{
	if (cfg == NULL || cfg->cache_dir == NULL)
		return errf(err, -EINVAL, "the engine needs a compile cache directory");
	struct engine *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->reaper_cv, &ca);
	pthread_condattr_destroy(&ca);
	e->lim = cfg->limits;
	if (e->lim.memory_bytes == 0)
		e->lim.memory_bytes = DEFAULT_MEMORY;
	if (e->lim.timeout_ms == 0)
		e->lim.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (e->lim.max_result_bytes == 0)
		e->lim.max_result_bytes = DEFAULT_MAX_RESULT;
	if (e->lim.max_log_bytes == 0)
		e->lim.max_log_bytes = DEFAULT_MAX_LOG;
	e->cache_max = cfg->cache_max_bytes ? cfg->cache_max_bytes : DEFAULT_CACHE_MAX;
	e->idle_ms = cfg->runner_idle_ms ? cfg->runner_idle_ms : DEFAULT_IDLE_MS;
	e->runner_min = cfg->runner_min;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	e->nslots = cfg->pool_size ? cfg->pool_size : (unsigned)(cpus > 0 ? cpus : 1);
	e->slots = calloc(e->nslots, sizeof(*e->slots));
	e->reaped = calloc(e->nslots, sizeof(*e->reaped));
	e->runner_path = cfg->runner_path ? strdup(cfg->runner_path) : default_runner_path();
	int rc = -ENOMEM;
	if (e->slots == NULL || e->reaped == NULL || e->runner_path == NULL)
		goto fail;
	if (access(e->runner_path, X_OK) != 0) {
		rc = errf(err, -ENOENT, "the runner program '%s' is missing or not executable",
		          e->runner_path);
		goto fail;
	}
	if ((rc = check_sandbox(e, err)) != 0)
		goto fail;
	rc = compile_create(cfg->cache_dir, cfg->cc, cfg->wasm2c, cfg->compile_timeout_ms, &e->comp,
	                    err);
	if (rc != 0)
		goto fail;
	prune_cache(e);
	e->touched_ms = util_mono_ms();
	if ((rc = pthread_create(&e->reaper, NULL, reaper_main, e)) != 0) {
		rc = errf(err, -rc, "cannot start the engine's thread: %s", strerror(rc));
		goto fail;
	}
	e->reaper_on = true;
	*out = e;
	return 0;
fail:
	compile_destroy(e->comp);
	free(e->slots);
	free(e->reaped);
	free(e->runner_path);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	pthread_cond_destroy(&e->reaper_cv);
	free(e);
	return rc;
}

void engine_module_unref_locked(struct engine_module *m)
{
	if (m == NULL || --m->refs > 0)
		return;
	wasmbin_destroy(m->info);
	free(m->so_path);
	free(m);
}

void engine_destroy(struct engine *e)
{
	if (e == NULL)
		return;
	if (e->reaper_on) {
		pthread_mutex_lock(&e->mu);
		e->stopping = true;
		pthread_cond_signal(&e->reaper_cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->reaper, NULL);
	}
	for (unsigned i = 0; i < e->nslots; i++) {
		runner_proc_destroy(e->slots[i].proc);
		engine_module_unref_locked(e->slots[i].mod);
	}
	while (e->modules != NULL) {
		struct engine_module *m = e->modules;
		log_warn("executor: module %.12s was not released before engine_destroy", m->sha);
		e->modules = m->next;
		m->refs = 1;
		engine_module_unref_locked(m);
	}
	compile_destroy(e->comp);
	free(e->slots);
	free(e->reaped);
	free(e->runner_path);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	pthread_cond_destroy(&e->reaper_cv);
	free(e);
}

uint32_t engine_pages_of(uint64_t bytes)
{
	uint64_t p = bytes / RT_PAGE_SIZE;
	return p == 0 ? 1 : p > RT_MAX_PAGES ? RT_MAX_PAGES : (uint32_t)p;
}

int engine_spawn(struct engine *e, const struct engine_module *m, uint32_t pages,
                 struct runner_proc **out, char *err, size_t cap)
{
	char a_pages[16], a_res[16], a_log[16];
	snprintf(a_pages, sizeof(a_pages), "%u", pages);
	snprintf(a_res, sizeof(a_res), "%u", e->lim.max_result_bytes);
	snprintf(a_log, sizeof(a_log), "%u", e->lim.max_log_bytes);
	char *argv[] = {"noetl-runner", m->so_path, a_pages, a_res, a_log, NULL};
	compile_touch(m->so_path); /* in use: the last thing the cache prunes */
	int rc = runner_proc_spawn(e->runner_path, argv, out, err, cap);
	if (rc == 0) /* a result frame: bytes, log text and per-line overhead, reason */
		(*out)->max_frame =
		        (size_t)e->lim.max_result_bytes + e->lim.max_log_bytes + 4097 * 13 + 65536;
	pthread_mutex_lock(&e->mu);
	if (rc == 0)
		e->stats.runners_spawned++;
	pthread_mutex_unlock(&e->mu);
	return rc;
}

int engine_await_ready(struct runner_proc *p, uint32_t timeout_ms, char *why, size_t cap)
{
	uint8_t type;
	struct fin in;
	int rc =
	        runner_proc_wait_frame(p, util_mono_ms() + timeout_ms + START_GRACE_MS, &type, &in);
	if (rc == 1 && type == FRAME_READY)
		return ENGINE_OK;
	if (rc == 1 && type == FRAME_LOADERR) {
		uint8_t st = fin_u8(&in);
		uint32_t n;
		const uint8_t *r = fin_bytes(&in, &n);
		snprintf(why, cap, "%.*s", (int)n, r ? (const char *)r : "");
		return !in.bad && st <= ENGINE_COMPILE && st != ENGINE_OK ? st : ENGINE_CRASH;
	}
	if (rc == -ETIMEDOUT) {
		snprintf(why, cap, "timeout after %u ms while starting the module",
		         timeout_ms + START_GRACE_MS);
		return ENGINE_TIMEOUT;
	}
	char how[128];
	runner_proc_describe_exit(runner_proc_kill(p), how, sizeof(how));
	snprintf(why, cap, "crash: %s while starting the module", how);
	return ENGINE_CRASH;
}

int engine_prepare(struct engine *e, const void *wasm, size_t len, const char *expect_sha,
                   struct engine_module **out, struct engine_prepare_info *info, char **err)
{
	if (e == NULL || (wasm == NULL && len > 0) || out == NULL)
		return errf(err, -EINVAL, "engine_prepare: missing argument");
	struct engine_prepare_info pi = {0};
	char sha[65];
	util_sha256_hex(wasm, len, sha);
	if (expect_sha != NULL && strcmp(expect_sha, sha) != 0)
		return errf(err, -EINVAL, "the module's SHA-256 is %s, not the expected '%s'", sha,
		            expect_sha);
	pthread_mutex_lock(&e->mu);
	for (struct engine_module *m = e->modules; m != NULL; m = m->next) {
		if (strcmp(m->sha, sha) == 0) {
			m->refs++;
			m->user_refs++;
			pthread_mutex_unlock(&e->mu);
			if (info != NULL)
				*info = pi;
			*out = m;
			return 0;
		}
	}
	pthread_mutex_unlock(&e->mu);

	struct engine_module *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	memcpy(m->sha, sha, sizeof(sha));
	m->refs = m->user_refs = 1;
	struct runner_proc *trial = NULL;
	int rc = wasmbin_parse(wasm, len, &m->info, err);
	if (rc != 0 || (rc = compile_check(m->info, err)) != 0)
		goto fail;
	uint32_t pages = engine_pages_of(e->lim.memory_bytes);
	if (m->info->memory_min > pages)
		pages = m->info->memory_min;
	for (int attempt = 0;; attempt++) {
		int64_t t0 = util_mono_us();
		bool compiled = false;
		rc = compile_module(e->comp, m->info, wasm, len, sha, &m->so_path, &compiled, err);
		if (rc != 0)
			goto fail;
		if (compiled) {
			pi.compiled = true;
			pi.compile_ms = (double)(util_mono_us() - t0) / 1000.0;
			pthread_mutex_lock(&e->mu);
			e->stats.compiles++;
			pthread_mutex_unlock(&e->mu);
		}
		char why[700];
		rc = engine_spawn(e, m, pages, &trial, why, sizeof(why));
		if (rc != 0) {
			rc = errf(err, rc, "%s", why);
			goto fail;
		}
		int st = engine_await_ready(trial, e->lim.timeout_ms, why, sizeof(why));
		if (st == ENGINE_OK)
			break;
		runner_proc_destroy(trial);
		trial = NULL;
		if (st == ENGINE_COMPILE && !compiled && attempt == 0 &&
		    strstr(why, "cannot load the compiled module") != NULL) {
			/* a damaged cache file: build it again once */
			log_warn("executor: cached module %.12s does not load (%s); recompiling",
			         sha, why);
			compile_evict(e->comp, sha);
			free(m->so_path);
			m->so_path = NULL;
			continue;
		}
		rc = errf(err, -ENOEXEC, "the module compiled but cannot start: %s", why);
		goto fail;
	}

	pthread_mutex_lock(&e->mu);
	struct engine_module *found = NULL;
	for (struct engine_module *x = e->modules; x != NULL; x = x->next)
		if (strcmp(x->sha, sha) == 0)
			found = x;
	if (found != NULL) { /* another thread prepared it meanwhile */
		found->refs++;
		found->user_refs++;
		engine_module_unref_locked(m);
		m = found;
	} else {
		m->next = e->modules;
		e->modules = m;
		e->stats.modules_loaded++;
	}
	/* keep the test-loaded runner warm if it fits the default limits */
	struct slot *home = NULL;
	if (pages == engine_pages_of(e->lim.memory_bytes))
		for (unsigned i = 0; i < e->nslots && home == NULL; i++)
			if (e->slots[i].state == SLOT_EMPTY)
				home = &e->slots[i];
	if (home != NULL) {
		home->state = SLOT_IDLE;
		home->proc = trial;
		home->mod = m;
		m->refs++;
		home->pages = pages;
		home->last_used_ms = util_mono_ms();
		trial = NULL;
		pthread_cond_broadcast(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	runner_proc_destroy(trial);
	if (pi.compiled)
		prune_cache(e);
	if (info != NULL)
		*info = pi;
	*out = m;
	return 0;
fail:
	runner_proc_destroy(trial);
	wasmbin_destroy(m->info);
	free(m->so_path);
	free(m);
	return rc;
}

const char *engine_module_sha256(const struct engine_module *m)
{
	return m->sha;
}

void engine_module_release(struct engine *e, struct engine_module *m)
{
	if (m == NULL)
		return;
	struct runner_proc *stop[64];
	size_t nstop = 0;
	pthread_mutex_lock(&e->mu);
	if (--m->user_refs == 0) {
		for (struct engine_module **pp = &e->modules; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == m) {
				*pp = m->next;
				break;
			}
		}
		e->stats.modules_loaded--;
		for (unsigned i = 0; i < e->nslots; i++) {
			struct slot *s = &e->slots[i];
			if (s->state != SLOT_IDLE || s->mod != m)
				continue;
			if (nstop < sizeof(stop) / sizeof(stop[0]))
				stop[nstop++] = s->proc;
			else
				runner_proc_destroy(s->proc);
			s->proc = NULL;
			s->state = SLOT_EMPTY;
			s->mod = NULL;
			engine_module_unref_locked(m);
			e->stats.runners_killed++;
		}
		pthread_cond_broadcast(&e->cv);
	}
	engine_module_unref_locked(m);
	pthread_mutex_unlock(&e->mu);
	for (size_t i = 0; i < nstop; i++)
		runner_proc_destroy(stop[i]);
}

struct slot *engine_acquire(struct engine *e, struct engine_module *m, uint32_t pages, bool block,
                            enum acquire_mode mode)
{
	struct runner_proc *evicted = NULL;
	struct slot *got = NULL;
	pthread_mutex_lock(&e->mu);
	for (;;) {
		struct slot *empty = NULL, *lru = NULL;
		for (unsigned i = 0; i < e->nslots && got == NULL; i++) {
			struct slot *s = &e->slots[i];
			if (s->state == SLOT_IDLE && s->mod == m && s->pages == pages)
				got = s;
			else if (s->state == SLOT_EMPTY && empty == NULL)
				empty = s;
			else if (s->state == SLOT_IDLE &&
			         (lru == NULL || s->last_used_ms < lru->last_used_ms))
				lru = s;
		}
		if (mode == ACQUIRE_NO_EVICT)
			lru = NULL;
		if (got == NULL && mode != ACQUIRE_WARM && (empty != NULL || lru != NULL)) {
			got = empty != NULL ? empty : lru;
			if (got->proc != NULL) {
				evicted = got->proc;
				got->proc = NULL;
				e->stats.runners_killed++;
			}
			engine_module_unref_locked(got->mod);
			got->mod = m;
			m->refs++;
			got->pages = pages;
		}
		if (got != NULL || !block)
			break;
		pthread_cond_wait(&e->cv, &e->mu);
	}
	if (got != NULL)
		got->state = SLOT_BUSY;
	pthread_mutex_unlock(&e->mu);
	runner_proc_destroy(evicted);
	return got;
}

void engine_release_slot(struct engine *e, struct slot *s)
{
	struct runner_proc *stop = NULL;
	pthread_mutex_lock(&e->mu);
	if (s->proc != NULL && s->mod->user_refs == 0) {
		stop = s->proc;
		s->proc = NULL;
		e->stats.runners_killed++;
	}
	if (s->proc == NULL) {
		engine_module_unref_locked(s->mod);
		s->mod = NULL;
	}
	s->state = s->proc != NULL ? SLOT_IDLE : SLOT_EMPTY;
	s->last_used_ms = util_mono_ms();
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	runner_proc_destroy(stop);
}

void engine_stats(struct engine *e, struct engine_stats *out)
{
	pthread_mutex_lock(&e->mu);
	*out = e->stats;
	out->runners_alive = 0;
	for (unsigned i = 0; i < e->nslots; i++)
		out->runners_alive += e->slots[i].proc != NULL;
	pthread_mutex_unlock(&e->mu);
	struct compile_cache_stats cs;
	compile_cache_stats(e->comp, &cs);
	out->cache_bytes = cs.bytes;
	out->cache_entries = cs.entries;
	out->cache_evicted = cs.evicted;
}

void engine_results_free(struct engine_result *results, size_t n)
{
	if (results == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(results[i].data);
		free(results[i].reason);
		for (size_t k = 0; k < results[i].nlogs; k++)
			free(results[i].logs[k].text);
		free(results[i].logs);
	}
	free(results);
}

void engine_count(struct engine *e, bool crashed)
{
	pthread_mutex_lock(&e->mu);
	if (crashed)
		e->stats.runners_crashed++;
	else
		e->stats.runners_killed++;
	pthread_mutex_unlock(&e->mu);
}
