/*
 * engine_run: one batch through the pool (see engine.c's file comment for
 * lanes and deadlines), and the sandbox probe.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "engine.h"
#include "engine_impl.h"
#include "log.h"
#include "util.h"

enum lane_state { LANE_STARTING, LANE_RUNNING, LANE_DONE };

struct lane {
	struct slot *slot; /* borrowed; slot->proc is this lane's runner */
	size_t next;       /* first event without a result */
	size_t end;        /* one past the lane's last event */
	enum lane_state state;
	int64_t started_us; /* start of the event in flight, or of start-up */
	int64_t deadline_us;
};

struct run {
	struct engine *e;
	struct engine_module *m;
	const char *fn;              /* handler name */
	uint32_t pages;              /* memory limit */
	uint32_t timeout_ms;         /* per event */
	struct engine_event *events; /* the events that run (lanes index these) */
	size_t *map;                 /* their index in the caller's batch */
	struct engine_result *res;   /* the caller's n results */
};

/* The result slot of running event k. */
static struct engine_result *result_of(struct run *run, size_t k)
{
	return &run->res[run->map[k]];
}

static void set_reason(struct engine_result *r, enum engine_status st, int64_t dur_us,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_reason(struct engine_result *r, enum engine_status st, int64_t dur_us,
                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(r->reason);
	if (vasprintf(&r->reason, fmt, ap) < 0)
		r->reason = NULL;
	va_end(ap);
	r->status = st;
	r->duration_us = dur_us;
}

/* Fails every event the lane has not finished with the same status. */
static void fail_rest(struct run *run, struct lane *l, enum engine_status st, const char *why)
{
	for (; l->next < l->end; l->next++)
		set_reason(result_of(run, l->next), st, 0, "%s", why);
	l->state = LANE_DONE;
}

static void drop_runner(struct lane *l)
{
	runner_proc_destroy(l->slot->proc);
	l->slot->proc = NULL;
}

static void send_batch(struct run *run, struct lane *l)
{
	struct runner_proc *p = l->slot->proc;
	if (runner_proc_queue_batch(p, run->fn, run->events + l->next, l->end - l->next) != 0) {
		drop_runner(l);
		fail_rest(run, l, ENGINE_CRASH, "crash: the executor ran out of memory");
		return;
	}
	l->state = LANE_RUNNING;
	l->started_us = util_mono_us();
	l->deadline_us = l->started_us + (int64_t)run->timeout_ms * 1000;
	runner_proc_flush(p); /* errors show up as end of stream when reading */
}

/* Starts (or restarts) the lane: a fresh runner if the slot has none, or
 * straight to the batch with a warm one. */
static void start_lane(struct run *run, struct lane *l)
{
	if (l->next >= l->end) {
		l->state = LANE_DONE;
		return;
	}
	if (l->slot->proc != NULL) {
		struct pollfd pfd = {.fd = l->slot->proc->fd, .events = POLLIN};
		if (poll(&pfd, 1, 0) != 0) { /* an idle runner has nothing to say: it died */
			drop_runner(l);
			engine_count(run->e, true);
		}
	}
	if (l->slot->proc != NULL) {
		send_batch(run, l);
		return;
	}
	char why[512];
	if (engine_spawn(run->e, run->m, run->pages, &l->slot->proc, why, sizeof(why)) != 0) {
		l->slot->proc = NULL;
		char msg[600];
		snprintf(msg, sizeof(msg), "crash: cannot start a runner: %s", why);
		fail_rest(run, l, ENGINE_CRASH, msg);
		return;
	}
	l->state = LANE_STARTING;
	l->started_us = util_mono_us();
	l->deadline_us = l->started_us + ((int64_t)run->timeout_ms + 10000) * 1000;
}

/* The runner is gone (or killed): the event in flight gets st/why, the rest
 * of the share goes to a fresh runner. During start-up the whole rest fails,
 * since a module that cannot start will not start on a retry either. */
static void runner_lost(struct run *run, struct lane *l, enum engine_status st, const char *why)
{
	drop_runner(l);
	if (l->state == LANE_STARTING) {
		fail_rest(run, l, st, why);
		return;
	}
	set_reason(result_of(run, l->next), st, util_mono_us() - l->started_us, "%s", why);
	l->next++;
	start_lane(run, l);
}

static bool decode_result(struct fin *in, struct engine_result *r)
{
	uint8_t st = fin_u8(in);
	uint64_t code = fin_u64(in);
	uint64_t dur = fin_u64(in);
	uint32_t rlen, dlen;
	const uint8_t *reason = fin_bytes(in, &rlen);
	const uint8_t *data = fin_bytes(in, &dlen);
	uint32_t nlogs = fin_u32(in);
	if (in->bad || st > ENGINE_COMPILE || nlogs > (in->len - in->pos) / 13)
		return false;
	struct engine_result x = {.status = st, .code = code, .duration_us = (int64_t)(dur / 1000)};
	if (st != ENGINE_OK)
		x.reason =
		        rlen ? strndup((const char *)reason, rlen) : strdup(engine_status_name(st));
	if (dlen > 0 && (x.data = malloc(dlen)) != NULL) {
		memcpy(x.data, data, dlen);
		x.len = dlen;
	}
	if (nlogs > 0)
		x.logs = calloc(nlogs, sizeof(*x.logs));
	bool ok = (st == ENGINE_OK || x.reason != NULL) && (dlen == 0 || x.data != NULL) &&
	          (nlogs == 0 || x.logs != NULL);
	for (uint32_t i = 0; ok && i < nlogs; i++) {
		struct engine_log *lg = &x.logs[i];
		uint32_t tlen;
		lg->level = fin_u8(in);
		lg->time_ms = (int64_t)fin_u64(in);
		const uint8_t *t = fin_bytes(in, &tlen);
		ok = !in->bad && (lg->text = strndup(t ? (const char *)t : "", tlen)) != NULL;
		x.nlogs = i + ok;
	}
	if (!ok || in->pos != in->len) {
		free(x.reason);
		free(x.data);
		for (size_t i = 0; i < x.nlogs; i++)
			free(x.logs[i].text);
		free(x.logs);
		return false;
	}
	free(r->reason);
	*r = x;
	return true;
}

/* Handles every complete frame the lane's runner sent; a runner that breaks
 * the protocol is dropped and charged with a crash of the event in flight. */
static void take_frames(struct run *run, struct lane *l)
{
	struct runner_proc *p = l->slot->proc;
	uint8_t type;
	struct fin in;
	int rc;
	while (l->state != LANE_DONE && l->slot->proc == p &&
	       (rc = runner_proc_frame(p, &type, &in)) != 0) {
		if (rc < 0)
			goto protocol;
		if (l->state == LANE_STARTING && type == FRAME_READY) {
			send_batch(run, l);
		} else if (l->state == LANE_STARTING && type == FRAME_LOADERR) {
			uint8_t st = fin_u8(&in);
			uint32_t n;
			const uint8_t *why = fin_bytes(&in, &n);
			char msg[700];
			snprintf(msg, sizeof(msg), "%.*s", (int)n, why ? (const char *)why : "");
			if (in.bad || st == ENGINE_OK || st > ENGINE_COMPILE)
				goto protocol;
			drop_runner(l);
			fail_rest(run, l, st, msg);
		} else if (l->state == LANE_RUNNING && type == FRAME_RESULT) {
			if (!decode_result(&in, result_of(run, l->next)))
				goto protocol;
			l->next++;
			l->started_us = util_mono_us();
			l->deadline_us = l->started_us + (int64_t)run->timeout_ms * 1000;
			if (l->next == l->end)
				l->state = LANE_DONE;
		} else if (type == FRAME_CRASH) {
			uint32_t n;
			const uint8_t *why = fin_bytes(&in, &n);
			char msg[400];
			snprintf(msg, sizeof(msg), "crash: %.*s", (int)n,
			         why ? (const char *)why : "");
			engine_count(run->e, true);
			runner_lost(run, l, ENGINE_CRASH, msg);
		} else {
			goto protocol;
		}
	}
	return;
protocol:
	engine_count(run->e, true);
	runner_lost(run, l, ENGINE_CRASH, "crash: the runner broke the frame protocol");
}

/* The runner closed its end: take what it sent, then say how it ended. */
static void runner_ended(struct run *run, struct lane *l)
{
	struct runner_proc *p = l->slot->proc;
	take_frames(run, l);
	if (l->state == LANE_DONE || l->slot->proc != p)
		return;
	char how[160], msg[300];
	runner_proc_describe_exit(runner_proc_kill(p), how, sizeof(how));
	snprintf(msg, sizeof(msg), "crash: %s%s", how,
	         l->state == LANE_STARTING ? " while starting the module" : "");
	engine_count(run->e, true);
	runner_lost(run, l, ENGINE_CRASH, msg);
}

static void deadline_passed(struct run *run, struct lane *l)
{
	char msg[160];
	int64_t ms = (util_mono_us() - l->started_us) / 1000;
	if (l->state == LANE_STARTING)
		snprintf(msg, sizeof(msg),
		         "timeout after %lld ms while starting the module (init did not return)",
		         (long long)ms);
	else
		snprintf(msg, sizeof(msg), "timeout after %u ms", run->timeout_ms);
	engine_count(run->e, false);
	runner_lost(run, l, ENGINE_TIMEOUT, msg);
}

static void drive(struct run *run, struct lane *lanes, size_t nl)
{
	struct pollfd pfd[nl];
	struct lane *who[nl];
	for (;;) {
		size_t k = 0;
		int64_t now = util_mono_us(), soonest = INT64_MAX;
		for (size_t i = 0; i < nl; i++) {
			struct lane *l = &lanes[i];
			if (l->state == LANE_DONE)
				continue;
			if (l->deadline_us <= now) {
				deadline_passed(run, l);
				if (l->state == LANE_DONE)
					continue;
			}
			if (l->deadline_us < soonest)
				soonest = l->deadline_us;
			pfd[k] = (struct pollfd){.fd = l->slot->proc->fd, .events = POLLIN};
			if (runner_proc_wants_write(l->slot->proc))
				pfd[k].events |= POLLOUT;
			who[k++] = l;
		}
		if (k == 0)
			return;
		int64_t wait_ms = (soonest - now + 999) / 1000;
		int rc = poll(pfd, k, wait_ms > 60000 ? 60000 : (int)wait_ms);
		if (rc <= 0)
			continue; /* timeouts are handled at the top */
		for (size_t i = 0; i < k; i++) {
			struct lane *l = who[i];
			struct runner_proc *p = l->slot->proc;
			if (l->state == LANE_DONE || p == NULL || pfd[i].fd != p->fd ||
			    !pfd[i].revents)
				continue;
			if (pfd[i].revents & POLLOUT)
				runner_proc_flush(p);
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			for (;;) {
				int got = runner_proc_fill(p);
				if (got == 0 || (got < 0 && got != -EAGAIN)) {
					runner_ended(run, l);
					break;
				}
				take_frames(run, l);
				if (got == -EAGAIN || l->state == LANE_DONE || l->slot->proc != p)
					break;
			}
		}
	}
}

/* Checks the handler against the module's exports before any runner works. */
static bool check_function(const struct engine_module *m, const char *fn, char *why, size_t cap)
{
	const struct wasmbin_export *x = wasmbin_find_export(m->info, fn, WASMBIN_FUNC);
	if (strlen(fn) > MAX_FUNCTION_NAME || x == NULL) {
		snprintf(why, cap, "the module does not export a function '%.300s'", fn);
		return false;
	}
	const struct wasmbin_functype *t = wasmbin_func_type(m->info, x->index);
	if (wasmbin_type_is(t, "iii", "") || wasmbin_type_is(t, "ii", "II"))
		return true;
	char have[256];
	wasmbin_type_string(t, have, sizeof(have));
	snprintf(why, cap,
	         "the module's export '%s' has type %s; an event handler needs (i32, i32, i32) -> "
	         "() or (i32, i32) -> (i64, i64)",
	         fn, have);
	return false;
}

/* Splits n running events over lanes and drives them to the end. */
static void run_lanes(struct run *run, size_t n)
{
	struct engine *e = run->e;
	size_t max_lanes = n / MIN_EVENTS_PER_LANE;
	if (max_lanes > e->nslots)
		max_lanes = e->nslots;
	if (max_lanes == 0)
		max_lanes = 1;
	struct lane lanes[max_lanes];
	size_t nl = 0;
	lanes[nl++].slot = engine_acquire(e, run->m, run->pages, true, ACQUIRE_ANY);
	while (nl < max_lanes) {
		struct slot *s =
		        engine_acquire(e, run->m, run->pages, false,
		                       n >= SPAWN_FOR_BATCH ? ACQUIRE_NO_EVICT : ACQUIRE_WARM);
		if (s == NULL)
			break;
		lanes[nl++].slot = s;
	}
	for (size_t i = 0, at = 0; i < nl; i++) {
		size_t share = n / nl + (i < n % nl);
		lanes[i].next = at;
		lanes[i].end = at + share;
		at += share;
		start_lane(run, &lanes[i]);
	}
	drive(run, lanes, nl);
	for (size_t i = 0; i < nl; i++)
		engine_release_slot(e, lanes[i].slot);
}

int engine_run(struct engine *e, struct engine_module *m, const struct engine_run_opts *opts,
               const struct engine_event *events, size_t n, struct engine_result **out)
{
	if (e == NULL || m == NULL || events == NULL || n == 0 || out == NULL)
		return -EINVAL;
	struct engine_run_opts o = opts ? *opts : (struct engine_run_opts){0};
	struct run run = {
	        .e = e,
	        .m = m,
	        .fn = o.function ? o.function : "event",
	        .pages = engine_pages_of(o.memory_bytes ? o.memory_bytes : e->lim.memory_bytes),
	        .timeout_ms = o.timeout_ms ? o.timeout_ms : e->lim.timeout_ms,
	        .events = calloc(n, sizeof(struct engine_event)),
	        .map = calloc(n, sizeof(size_t)),
	        .res = calloc(n, sizeof(struct engine_result)),
	};
	if (run.events == NULL || run.map == NULL || run.res == NULL) {
		free(run.events);
		free(run.map);
		free(run.res);
		return -ENOMEM;
	}
	char why[512];
	bool runnable = check_function(m, run.fn, why, sizeof(why));
	size_t nrun = 0;
	for (size_t i = 0; i < n; i++) {
		if (!runnable) {
			set_reason(&run.res[i], ENGINE_COMPILE, 0, "%s", why);
		} else if (events[i].len > ENGINE_MAX_PAYLOAD) {
			set_reason(&run.res[i], ENGINE_ERROR, 0,
			           "the event payload of %zu bytes is larger than the limit of %u "
			           "bytes",
			           events[i].len, ENGINE_MAX_PAYLOAD);
		} else {
			run.events[nrun] = events[i];
			run.map[nrun++] = i;
		}
	}
	if (nrun > 0)
		run_lanes(&run, nrun);
	free(run.events);
	free(run.map);
	*out = run.res;
	return 0;
}

int engine_sandbox_probe(struct engine *e, const char *what, char **reason)
{
	static const char *ok[] = {"open", "socket", "exec", "fork"};
	bool known = false;
	for (size_t i = 0; what != NULL && i < sizeof(ok) / sizeof(ok[0]); i++)
		known |= strcmp(what, ok[i]) == 0;
	if (!known)
		return -EINVAL;
	char *argv[] = {"noetl-runner", "--probe", (char *)what, NULL};
	struct runner_proc *p;
	char why[512];
	int rc = runner_proc_spawn(e->runner_path, argv, &p, why, sizeof(why));
	if (rc != 0) {
		if (reason != NULL)
			*reason = strdup(why);
		return rc;
	}
	uint8_t type;
	struct fin in;
	int64_t deadline = util_mono_ms() + 10000;
	rc = runner_proc_wait_frame(p, deadline, &type, &in);
	if (rc == 1 && type == FRAME_READY)
		rc = runner_proc_wait_frame(p, deadline, &type, &in);
	char msg[600];
	int result;
	if (rc == 1 && (type == FRAME_CRASH || type == FRAME_LOADERR)) {
		if (type == FRAME_LOADERR)
			fin_u8(&in);
		uint32_t n;
		const uint8_t *t = fin_bytes(&in, &n);
		snprintf(msg, sizeof(msg), "%s%.*s", type == FRAME_CRASH ? "crash: " : "", (int)n,
		         t ? (const char *)t : "");
		result = type == FRAME_CRASH ? 0 : -EPERM;
	} else if (rc == 0) {
		int st = runner_proc_kill(p);
		char how[160];
		runner_proc_describe_exit(st, how, sizeof(how));
		snprintf(msg, sizeof(msg), "crash: %s", how);
		result = st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS ? 0 : -EPERM;
	} else {
		snprintf(msg, sizeof(msg), "the probe runner did not answer: %s",
		         rc < 0 ? strerror(-rc) : "unexpected frame");
		result = rc < 0 ? rc : -EPROTO;
	}
	runner_proc_destroy(p);
	if (reason != NULL)
		*reason = strdup(msg);
	return result;
}
