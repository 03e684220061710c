/*
 * scheduler: fires the cron schedules of deployed packages into the Queue.
 *
 * State. Each deployed schedule has a last fire time in the store ('s'
 * keys, store.h). It starts at the time of the deploy (or of the update or
 * rollback that added the schedule), so a tick from before the schedule
 * existed never fires, and it goes away with the schedule.
 *
 * A pass at time now, for each schedule: next = the first tick after last.
 * If next > now, nothing is due. Otherwise the schedule fires once, for
 * T = the most recent tick <= now, and then last = T is recorded.
 *
 * The catch-up rule follows from that: ticks missed while Control was down
 * (or the Queue was unreachable) are not replayed one by one; the schedule
 * fires exactly once, for the most recent missed tick, and continues from
 * there. A schedule that was due once fires once.
 *
 * No tick fires twice. The enqueued item carries the idempotency key
 * "<tenant>/<package>/<schedule>/<T in Unix ms>". The fire time is recorded
 * only after the Queue accepted the item; if Control dies in between, the
 * next pass computes the same T (unless a newer tick is due by then, in
 * which case T is simply one of the skipped ones) and enqueues it again
 * with the same key, which the Queue recognises as a duplicate. If the Queue
 * refuses or cannot be reached, nothing is recorded and the tick stays due
 * for the next pass.
 *
 * Finding T without walking every missed minute: cron_next(x) is
 * monotonic in x, so T = cron_next(x*) for the largest x in [last, now)
 * with cron_next(x) <= now, found by bisection in ~40 steps even after a
 * year of downtime.
 *
 * The list of schedules is cached and rebuilt when Control's revision
 * changes, so an idle pass reads only the fire times. The clock is
 * Control's (injectable), and control_schedule_tick runs a pass at any
 * time a test chooses.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control_int.h"
#include "jobdef.h"
#include "log.h"
#include "metrics.h"
#include "queue.pb-c.h"
#include "util.h"

/* One schedule of a deployed package, with what its items need. */
struct schedule_entry {
	char *tenant;             /* owning tenant */
	char *package;            /* package id */
	char *id;                 /* schedule id */
	char *cron;               /* expression */
	char *event;              /* event id emitted */
	char *queue;              /* the event's supplier queue */
	char *payload;            /* JSON payload of each item */
	Noetl__RetryPolicy retry; /* the event's policy, else its runtime's */
	bool has_retry;           /* retry was set by the package */
};

static void entries_free(struct control *c)
{
	for (size_t i = 0; i < c->nentries; i++) {
		struct schedule_entry *e = &c->entries[i];
		free(e->tenant);
		free(e->package);
		free(e->id);
		free(e->cron);
		free(e->event);
		free(e->queue);
		free(e->payload);
	}
	free(c->entries);
	c->entries = NULL;
	c->nentries = 0;
	c->entries_valid = false;
}

/* The event a schedule emits: a job's event, or a result's follow-up. */
static const Noetl__EventDef *find_event(const Noetl__Package *p, const char *id)
{
	for (size_t i = 0; i < p->n_jobs; i++) {
		const Noetl__JobDef *j = p->jobs[i];
		if (j->event != NULL && strcmp(j->event->id, id) == 0)
			return j->event;
	}
	for (size_t i = 0; i < p->n_jobs; i++) {
		const Noetl__ResultDef *r = p->jobs[i]->result;
		if (r != NULL && r->ok != NULL && strcmp(r->ok->id, id) == 0)
			return r->ok;
		if (r != NULL && r->error != NULL && strcmp(r->error->id, id) == 0)
			return r->error;
	}
	return NULL;
}

static const Noetl__RuntimeDef *find_runtime(const Noetl__Package *p, const char *id)
{
	for (size_t i = 0; i < p->n_runtimes; i++)
		if (strcmp(p->runtimes[i]->id, id) == 0)
			return p->runtimes[i];
	return NULL;
}

static int collect_entry(void *arg, const Noetl__PackageRevision *pr)
{
	struct control *c = arg;
	const Noetl__Package *p = pr->package;
	if (p == NULL || p->n_schedules == 0)
		return 0;
	struct schedule_entry *na =
	        realloc(c->entries, (c->nentries + p->n_schedules) * sizeof(*na));
	if (na == NULL)
		return -ENOMEM;
	c->entries = na;
	for (size_t i = 0; i < p->n_schedules; i++) {
		const Noetl__ScheduleDef *s = p->schedules[i];
		const Noetl__EventDef *ev = find_event(p, s->event);
		if (ev == NULL) {
			/* jobdef_validate refuses this at deploy; be safe anyway. */
			log_warn("schedule %s/%s/%s names unknown event '%s'; it does not fire",
			         p->tenant, p->id, s->id, s->event);
			continue;
		}
		const Noetl__RuntimeDef *rt = find_runtime(p, ev->runtime);
		struct schedule_entry *e = &c->entries[c->nentries++];
		memset(e, 0, sizeof(*e));
		e->tenant = util_xstrdup(p->tenant);
		e->package = util_xstrdup(p->id);
		e->id = util_xstrdup(s->id);
		e->cron = util_xstrdup(s->cron);
		e->event = util_xstrdup(ev->id);
		e->queue = util_xstrdup(ev->supplier_queue);
		e->payload = util_xstrdup(s->payload[0] != '\0' ? s->payload : "{}");
		noetl__retry_policy__init(&e->retry);
		const Noetl__RetryPolicy *rp = ev->retry != NULL ? ev->retry
		                               : rt != NULL      ? rt->retry
		                                                 : NULL;
		if (rp != NULL) {
			e->retry.max_attempts = rp->max_attempts;
			e->retry.backoff_base_ms = rp->backoff_base_ms;
			e->retry.backoff_max_ms = rp->backoff_max_ms;
			e->retry.jitter_percent = rp->jitter_percent;
			e->has_retry = true;
		}
	}
	return 0;
}

/* Rebuilds the cache if Control changed since it was built. */
static int refresh(struct control *c)
{
	uint64_t head = changelog_head(control_store_changelog(c->store));
	if (c->entries_valid && c->entries_rev == head)
		return 0;
	entries_free(c);
	int rv = control_store_each_package(c->store, collect_entry, c);
	if (rv != 0) {
		entries_free(c);
		return rv;
	}
	c->entries_rev = head;
	c->entries_valid = true;
	return 0;
}

/* The most recent tick <= now, given that cron_next(last) <= now. */
static int64_t latest_tick(const char *cron, int64_t last, int64_t now)
{
	int64_t lo = last, hi = now, t;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (jobdef_cron_next(cron, mid, &t) == 0 && t <= now)
			lo = mid;
		else
			hi = mid;
	}
	if (jobdef_cron_next(cron, lo, &t) != 0)
		return -1;
	return t;
}

static void fmt_time(int64_t ms, char *buf, size_t cap)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Enqueues the item of one tick. 0 or the failed call's status. */
static int fire(struct control *c, const struct schedule_entry *e, int64_t tick, int64_t now)
{
	char id[UTIL_ID_SIZE], trace[UTIL_ID_SIZE];
	util_new_id(id);
	util_new_id(trace);
	char key[512];
	snprintf(key, sizeof(key), "%s/%s/%s/%" PRId64, e->tenant, e->package, e->id, tick);

	Noetl__Item it = NOETL__ITEM__INIT;
	it.tenant = e->tenant;
	it.queue = e->queue;
	it.id = id;
	it.payload.data = (uint8_t *)e->payload;
	it.payload.len = strlen(e->payload);
	it.idempotency_key = key;
	it.event = e->event;
	it.package = e->package;
	it.retry = e->has_retry ? (Noetl__RetryPolicy *)&e->retry : NULL;
	it.trace_id = trace;
	it.enqueued_ms = now;
	/* The head is at least the revision that declared the schedule: an
	 * executor behind it waits for its definitions instead of failing. */
	it.definition_revision = control_revision(c);
	Noetl__Item *items[1] = {&it};
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.items = items;
	req.n_items = 1;
	struct rpc_call_options o = {
	        .timeout_ms = c->call_timeout_ms, .tenant = e->tenant, .trace_id = trace};
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st =
	        rpc_call(c->queue, &noetl__queue__descriptor, "Enqueue", &req.base, &o, &out, &err);
	if (st != NOETL__STATUS__OK) {
		log_warn("schedule %s/%s/%s: cannot enqueue the tick of %" PRId64
		         " into queue '%s': %s: %s; it stays due",
		         e->tenant, e->package, e->id, tick, e->queue, rpc_status_name(st),
		         err != NULL ? err : "");
		free(err);
		return st;
	}
	const Noetl__EnqueueReply *rep = (const Noetl__EnqueueReply *)out;
	bool dup = rep->n_results > 0 && rep->results[0]->duplicate;
	protobuf_c_message_free_unpacked(out, NULL);
	char when[32];
	fmt_time(tick, when, sizeof(when));
	log_info("schedule %s/%s/%s fired for %s (event %s, item %s%s)", e->tenant, e->package,
	         e->id, when, e->event, id, dup ? ", already enqueued before a restart" : "");
	return 0;
}

int control_schedule_tick(struct control *c, int64_t now_ms, unsigned *fired)
{
	unsigned n = 0;
	int first_err = 0;
	if (c->queue == NULL) {
		if (fired != NULL)
			*fired = 0;
		return 0;
	}
	pthread_mutex_lock(&c->sched_mu);
	int rv = refresh(c);
	if (rv != 0) {
		pthread_mutex_unlock(&c->sched_mu);
		log_error("scheduler: cannot read the deployed schedules: %s", strerror(-rv));
		return rv;
	}
	for (size_t i = 0; i < c->nentries; i++) {
		const struct schedule_entry *e = &c->entries[i];
		int64_t last, next;
		rv = control_store_schedule_last(c->store, e->tenant, e->package, e->id, &last);
		if (rv == -ENOENT)
			continue; /* deleted or replaced since the cache was built */
		if (rv == 0 && jobdef_cron_next(e->cron, last, &next) != 0)
			continue; /* never fires again */
		if (rv != 0 || next > now_ms) {
			if (rv != 0 && first_err == 0)
				first_err = rv;
			continue;
		}
		int64_t tick = latest_tick(e->cron, last, now_ms);
		if (tick < 0)
			continue;
		if (tick != next) {
			char from[32], to[32];
			fmt_time(next, from, sizeof(from));
			fmt_time(tick, to, sizeof(to));
			log_warn("schedule %s/%s/%s missed its ticks from %s; firing once for %s",
			         e->tenant, e->package, e->id, from, to);
		}
		int st = fire(c, e, tick, now_ms);
		metric_inc(st == 0 ? c->fires : c->fire_failures);
		if (st != 0) {
			if (first_err == 0)
				first_err = -EAGAIN;
			continue;
		}
		n++;
		rv = control_store_schedule_fired(c->store, e->tenant, e->package, e->id, tick);
		if (rv != 0 && rv != -ENOENT && first_err == 0)
			first_err = rv;
	}
	pthread_mutex_unlock(&c->sched_mu);
	if (fired != NULL)
		*fired = n;
	return first_err;
}

static void *loop(void *arg)
{
	struct control *c = arg;
	pthread_mutex_lock(&c->sched_mu);
	while (!c->sched_stop) {
		pthread_mutex_unlock(&c->sched_mu);
		control_schedule_tick(c, control_now(c), NULL);
		pthread_mutex_lock(&c->sched_mu);
		if (c->sched_stop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (int64_t)c->sched_interval_ms % 1000 * 1000000;
		ts.tv_sec += c->sched_interval_ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&c->sched_cv, &c->sched_mu, &ts);
	}
	pthread_mutex_unlock(&c->sched_mu);
	return NULL;
}

int scheduler_start(struct control *c, int interval_ms)
{
	c->sched_interval_ms = interval_ms;
	int rv = pthread_create(&c->sched_thread, NULL, loop, c);
	if (rv != 0) {
		log_error("control: cannot start the scheduler thread: %s", strerror(rv));
		return -rv;
	}
	c->sched_running = true;
	return 0;
}

void scheduler_stop(struct control *c)
{
	if (c->sched_running) {
		pthread_mutex_lock(&c->sched_mu);
		c->sched_stop = true;
		pthread_cond_signal(&c->sched_cv);
		pthread_mutex_unlock(&c->sched_mu);
		pthread_join(c->sched_thread, NULL);
		c->sched_running = false;
	}
	pthread_mutex_lock(&c->sched_mu);
	entries_free(c);
	pthread_mutex_unlock(&c->sched_mu);
}
