/*
 * executor: lease, run, settle, report. See executor.h.
 */
#include "executor.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "keeper.h"
#include "log.h"
#include "queue.pb-c.h"
#include "recorder.pb-c.h"
#include "report.h"
#include "rpc.h"
#include "util.h"

struct executor {
	struct executor_config cfg;
	char host[256];
	struct rpc_client *control, *repository, *queue, *recorder;
	struct engine *engine;
	struct catalog *defs;
	struct report *report;
	struct keeper *keeper; /* extends the leases of running batches */
	pthread_t *threads;
	unsigned nthreads;
	atomic_bool stop;
	atomic_bool paused;          /* executor_pause: lease nothing new */
	atomic_llong release_logged; /* monotonic ms of the last "released" log line */
	atomic_ullong leased, succeeded, routed, failed, dead, settle_errors, released;
};

/*
 * An item whose definitions are not ready here yet (its package is still
 * compiling, or it was accepted under definitions this executor has not
 * applied) is given back unrun with a Nack release: no attempt is counted
 * and it is leased again after RELEASE_DELAY_MS. Only a revision gap that
 * lasts RELEASE_STALE_MAX_MS after the item was accepted ends the wait (a
 * Control whose revisions went back, or a stream that never catches up):
 * the item then fails as unknown and its retry policy applies.
 */
#define RELEASE_DELAY_MS     250
#define RELEASE_STALE_MAX_MS (10 * 60 * 1000)

/* One leased item on its way through a batch. */
struct job {
	Noetl__Leased *l;          /* borrowed from the lease reply */
	struct catalog_event *def; /* NULL if the event is unknown */
	char *reason;              /* failure before running (owned) */
	char *wait;                /* why it is released unrun, or NULL (owned) */
	struct engine_result *res; /* borrowed from a results array */
	bool ran;
	bool ack;            /* settle by ack (else nack) */
	Noetl__Item *follow; /* follow-up to enqueue with the ack (owned) */
	const char *route;   /* "ok" or "error" for the follow-up */
	int64_t leased_ms, start_ms, end_ms, settled_ms;
	Noetl__AckResult *outcome; /* borrowed from the settle reply */
};

/* Reports one timeline step of it, at time_ms (0: now). */
static void timeline(struct executor *ex, const Noetl__Item *it, Noetl__TimelineKind kind,
                     int64_t time_ms, uint32_t attempt, const char *detail, const char *related)
{
	Noetl__TimelineEntry t = NOETL__TIMELINE_ENTRY__INIT;
	t.tenant = it->tenant;
	t.event_id = it->id;
	t.kind = kind;
	t.time_ms = time_ms != 0 ? time_ms : util_now_ms();
	t.attempt = attempt;
	t.detail = (char *)(detail != NULL ? detail : "");
	t.related_id = (char *)(related != NULL ? related : "");
	t.event = it->event;
	Noetl__Record r = NOETL__RECORD__INIT;
	r.kind_case = NOETL__RECORD__KIND_TIMELINE;
	r.timeline = &t;
	report_add(ex->report, &r);
}

/* The follow-up payload: {"code", "result", "parent", "event"}. */
static char *followup_payload(const Noetl__Item *it, const struct engine_result *res)
{
	json_t *o = json_object();
	json_object_set_new(o, "code", json_integer((json_int_t)res->code));
	json_error_t jerr;
	json_t *r = res->len > 0 ? json_loadb((const char *)res->data, res->len,
	                                      JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)
	                         : json_null();
	if (r == NULL)
		r = json_stringn((const char *)res->data, res->len);
	if (r != NULL) {
		json_object_set_new(o, "result", r);
	} else {
		/* not UTF-8: carry the bytes in base64 */
		size_t cap = 4 * ((res->len + 2) / 3) + 1;
		unsigned char *b64 = malloc(cap);
		if (b64 == NULL)
			abort();
		EVP_EncodeBlock(b64, res->data, (int)res->len);
		json_object_set_new(o, "result", json_null());
		json_object_set_new(o, "result_base64", json_string((char *)b64));
		free(b64);
	}
	json_object_set_new(o, "parent", json_string(it->id));
	json_object_set_new(o, "event", json_string(it->event));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static Noetl__Item *make_followup(const Noetl__Item *it, const struct catalog_event *def,
                                  const Noetl__EventDef *ev, const Noetl__RetryPolicy *retry,
                                  const struct engine_result *res, const char *route)
{
	Noetl__Item *f = malloc(sizeof(*f));
	if (f == NULL)
		abort();
	noetl__item__init(f);
	char id[UTIL_ID_SIZE];
	util_new_id(id);
	char key[160];
	snprintf(key, sizeof(key), "%s/%s", it->id, route);
	f->tenant = util_xstrdup(it->tenant);
	f->queue = util_xstrdup(ev->supplier_queue);
	f->id = util_xstrdup(id);
	char *payload = followup_payload(it, res);
	f->payload.data = (uint8_t *)payload;
	f->payload.len = strlen(payload);
	f->idempotency_key = util_xstrdup(key);
	f->event = util_xstrdup(ev->id);
	f->package = util_xstrdup(def->package);
	if (retry != NULL) {
		f->retry = malloc(sizeof(*f->retry));
		if (f->retry == NULL)
			abort();
		*f->retry = *retry;
	}
	f->parent_id = util_xstrdup(it->id);
	f->trace_id = util_xstrdup(it->trace_id);
	f->enqueued_ms = util_now_ms();
	f->definition_revision = def->revision;
	return f;
}

static void free_followup(Noetl__Item *f)
{
	if (f == NULL)
		return;
	free(f->tenant);
	free(f->queue);
	free(f->id);
	free(f->payload.data);
	free(f->idempotency_key);
	free(f->event);
	free(f->package);
	free(f->retry);
	free(f->parent_id);
	free(f->trace_id);
	free(f);
}

/* Decides how job j is settled, from its result. */
static void decide(struct job *j)
{
	const Noetl__Item *it = j->l->item;
	if (j->reason != NULL || j->wait != NULL)
		return; /* failed or released before running: nack */
	const struct engine_result *res = j->res;
	if (res->status == ENGINE_OK) {
		j->ack = true;
		if (j->def->ok != NULL) {
			j->follow =
			        make_followup(it, j->def, j->def->ok, j->def->ok_retry, res, "ok");
			j->route = "ok";
		}
		return;
	}
	if (res->status == ENGINE_ERROR && j->def->error != NULL) {
		j->ack = true;
		j->follow =
		        make_followup(it, j->def, j->def->error, j->def->error_retry, res, "error");
		j->route = "error";
		return;
	}
	char buf[1024];
	if (res->status == ENGINE_ERROR)
		snprintf(buf, sizeof(buf), "exit code %llu: %.*s", (unsigned long long)res->code,
		         (int)(res->len < 400 ? res->len : 400),
		         res->data != NULL ? (char *)res->data : "");
	else
		snprintf(buf, sizeof(buf), "%s",
		         res->reason != NULL ? res->reason : engine_status_name(res->status));
	j->reason = util_xstrdup(buf);
}

/* One engine_run's results, freed after the batch is settled. */
struct run {
	struct engine_result *res;
	size_t n;
};

/* Runs every job whose module is ready, grouped by module and limits; at
 * most n runs are written to runs[], their number to *nruns. */
static void run_jobs(struct executor *ex, struct job *jobs, size_t n, struct run *runs,
                     size_t *nruns)
{
	struct engine_event *evs = calloc(n, sizeof(*evs));
	size_t *idx = calloc(n, sizeof(*idx));
	if (evs == NULL || idx == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct job *a = &jobs[i];
		if (a->ran || a->reason != NULL || a->wait != NULL)
			continue;
		size_t k = 0;
		for (size_t m = i; m < n; m++) {
			struct job *b = &jobs[m];
			if (b->ran || b->reason != NULL || b->wait != NULL ||
			    b->def->module != a->def->module ||
			    strcmp(b->def->function, a->def->function) != 0 ||
			    b->def->memory_limit != a->def->memory_limit ||
			    b->def->timeout_ms != a->def->timeout_ms)
				continue;
			evs[k].data = b->l->item->payload.data;
			evs[k].len = b->l->item->payload.len;
			idx[k++] = m;
			b->ran = true;
		}
		struct engine_run_opts o = {.function = a->def->function,
		                            .memory_bytes = a->def->memory_limit,
		                            .timeout_ms = a->def->timeout_ms};
		struct engine_result *res = NULL;
		int64_t start = util_now_ms();
		int rc = engine_run(ex->engine, a->def->module->mod, &o, evs, k, &res);
		int64_t end = util_now_ms();
		for (size_t q = 0; q < k; q++) {
			struct job *b = &jobs[idx[q]];
			b->start_ms = start;
			if (rc != 0) {
				char buf[128];
				snprintf(buf, sizeof(buf), "executor: engine_run failed (%d)", rc);
				b->reason = util_xstrdup(buf);
				continue;
			}
			b->res = &res[q];
			b->end_ms = start + res[q].duration_us / 1000;
			if (b->end_ms > end)
				b->end_ms = end;
		}
		if (rc == 0)
			runs[(*nruns)++] = (struct run){res, k};
	}
	free(evs);
	free(idx);
}

static int settle_call(struct executor *ex, const char *method, const ProtobufCMessage *req,
                       Noetl__AckReply **out)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		ProtobufCMessage *o = NULL;
		char *err = NULL;
		struct rpc_call_options opts = {.timeout_ms = 10000, .token = ex->cfg.token};
		int st = rpc_call(ex->queue, &noetl__queue__descriptor, method, req, &opts, &o,
		                  &err);
		if (st == NOETL__STATUS__OK) {
			*out = (Noetl__AckReply *)o;
			return 0;
		}
		log_warn("executor: %s failed: %s", method,
		         err != NULL ? err : rpc_status_name(st));
		free(err);
		if (!rpc_status_retryable(st))
			break;
		util_sleep_ms(200 << attempt);
	}
	atomic_fetch_add(&ex->settle_errors, 1);
	return -EIO;
}

static bool settled(const struct job *j)
{
	return j->outcome != NULL && j->outcome->status == NOETL__STATUS__OK;
}

/* How the Queue settled the job (OUTCOME_UNSETTLED if it did not). */
static Noetl__ExecOutcome exec_outcome(const struct job *j)
{
	if (!settled(j))
		return NOETL__EXEC_OUTCOME__OUTCOME_UNSETTLED;
	if (j->ack)
		return NOETL__EXEC_OUTCOME__OUTCOME_DONE;
	return strcmp(j->outcome->outcome, "dead") == 0 ? NOETL__EXEC_OUTCOME__OUTCOME_DEAD
	                                                : NOETL__EXEC_OUTCOME__OUTCOME_RETRY;
}

static Noetl__ExecStatus exec_status(const struct job *j)
{
	if (settled(j) && strcmp(j->outcome->outcome, "dead") == 0)
		return NOETL__EXEC_STATUS__EXEC_DEAD;
	if (j->res != NULL && j->res->status == ENGINE_OK)
		return NOETL__EXEC_STATUS__EXEC_OK;
	if (j->res != NULL && j->res->status == ENGINE_ERROR)
		return NOETL__EXEC_STATUS__EXEC_ERROR;
	return NOETL__EXEC_STATUS__EXEC_FAILED;
}

/* A released job: no execution, one timeline step saying why it waits. */
static void record_release(struct executor *ex, struct job *j)
{
	const Noetl__Item *it = j->l->item;
	if (!settled(j))
		return; /* not settled: the lease will expire and it comes back */
	char detail[1200];
	snprintf(detail, sizeof(detail), "not run, attempt not counted: %s; ready again at %lld",
	         j->wait, (long long)j->outcome->retry_at_ms);
	timeline(ex, it, NOETL__TIMELINE_KIND__TL_RETRIED, j->settled_ms, it->attempt, detail,
	         NULL);
}

static void record_job(struct executor *ex, struct job *j)
{
	const Noetl__Item *it = j->l->item;
	if (j->wait != NULL) {
		record_release(ex, j);
		return;
	}
	Noetl__Execution e = NOETL__EXECUTION__INIT;
	e.tenant = it->tenant;
	e.package = j->def != NULL ? j->def->package : it->package;
	e.event_id = it->id;
	e.event = it->event;
	e.queue = it->queue;
	e.attempt = it->attempt;
	e.start_ms = j->start_ms;
	e.end_ms = j->end_ms > 0 ? j->end_ms : j->start_ms;
	e.duration_us = j->res != NULL ? j->res->duration_us : 0;
	e.code = j->res != NULL ? (int64_t)j->res->code : 0;
	if (j->res != NULL) {
		e.result.data = j->res->data;
		e.result.len = j->res->len;
	}
	e.status = exec_status(j);
	e.reason = j->reason != NULL ? j->reason : "";
	e.host = ex->host;
	e.module_sha256 = j->def != NULL && j->def->module != NULL ? j->def->module->sha : "";
	/* The leased and done / retried / dead steps ride on the execution
	 * record (the Recorder shows them as timeline steps): one record an
	 * attempt instead of three, which the drain of a deep queue is bound
	 * by. The price: an event shows as leased only once its attempt has
	 * ended. */
	e.leased_ms = j->leased_ms;
	e.outcome = exec_outcome(j);
	e.settled_ms = settled(j) ? j->settled_ms : 0;
	if (e.outcome == NOETL__EXEC_OUTCOME__OUTCOME_RETRY)
		e.retry_at_ms = j->outcome->retry_at_ms;
	Noetl__Record r = NOETL__RECORD__INIT;
	r.kind_case = NOETL__RECORD__KIND_EXECUTION;
	r.execution = &e;
	report_add(ex->report, &r);

	for (size_t i = 0; j->res != NULL && i < j->res->nlogs; i++) {
		const struct engine_log *g = &j->res->logs[i];
		Noetl__LogLine ll = NOETL__LOG_LINE__INIT;
		ll.tenant = it->tenant;
		ll.event_id = it->id;
		ll.level = g->level <= 3 ? (Noetl__LogLevel)g->level : NOETL__LOG_LEVEL__LOG_ERROR;
		ll.time_ms = g->time_ms;
		ll.text = g->text;
		ll.attempt = it->attempt;
		ll.source = "guest";
		Noetl__Record lr = NOETL__RECORD__INIT;
		lr.kind_case = NOETL__RECORD__KIND_LOG;
		lr.log = &ll;
		report_add(ex->report, &lr);
	}

	/* No ATTEMPT step of its own either: the Recorder makes one from the
	 * execution record (status, code, duration, reason, host). What stays
	 * a step of its own is a routed follow-up, which links two events. */
	if (settled(j) && j->ack && j->follow != NULL) {
		int64_t t = j->settled_ms;
		timeline(ex, it, NOETL__TIMELINE_KIND__TL_ROUTED, t, it->attempt, j->route,
		         j->follow->id);
		timeline(ex, j->follow, NOETL__TIMELINE_KIND__TL_CAUSED_BY, t, 0, j->route, it->id);
		timeline(ex, j->follow, NOETL__TIMELINE_KIND__TL_ACCEPTED, t, 0, j->follow->queue,
		         NULL);
	}
}

static void settle(struct executor *ex, struct job *jobs, size_t n)
{
	Noetl__AckEntry *acks = calloc(n, sizeof(*acks));
	Noetl__AckEntry **ackp = calloc(n, sizeof(*ackp));
	Noetl__NackEntry *nacks = calloc(n, sizeof(*nacks));
	Noetl__NackEntry **nackp = calloc(n, sizeof(*nackp));
	size_t *ackj = calloc(n, sizeof(*ackj)), *nackj = calloc(n, sizeof(*nackj));
	if (!acks || !ackp || !nacks || !nackp || !ackj || !nackj)
		abort();
	size_t na = 0, nn = 0;
	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		if (j->ack) {
			noetl__ack_entry__init(&acks[na]);
			acks[na].lease = j->l->lease;
			if (j->follow != NULL) {
				acks[na].n_follow_ups = 1;
				acks[na].follow_ups = &j->follow;
			}
			ackp[na] = &acks[na];
			ackj[na++] = i;
		} else {
			noetl__nack_entry__init(&nacks[nn]);
			nacks[nn].lease = j->l->lease;
			nacks[nn].reason = j->reason != NULL ? j->reason : "failed";
			if (j->wait != NULL) {
				nacks[nn].reason = j->wait;
				nacks[nn].release = true;
				nacks[nn].delay_ms = RELEASE_DELAY_MS;
			}
			nackp[nn] = &nacks[nn];
			nackj[nn++] = i;
		}
	}
	Noetl__AckReply *ar = NULL, *nr = NULL;
	if (na > 0) {
		Noetl__AckRequest req = NOETL__ACK_REQUEST__INIT;
		req.entries = ackp;
		req.n_entries = na;
		if (settle_call(ex, "Ack", &req.base, &ar) == 0)
			for (size_t k = 0; k < na && k < ar->n_results; k++)
				jobs[ackj[k]].outcome = ar->results[k];
	}
	if (nn > 0) {
		Noetl__NackRequest req = NOETL__NACK_REQUEST__INIT;
		req.entries = nackp;
		req.n_entries = nn;
		if (settle_call(ex, "Nack", &req.base, &nr) == 0)
			for (size_t k = 0; k < nn && k < nr->n_results; k++)
				jobs[nackj[k]].outcome = nr->results[k];
	}
	int64_t now = util_now_ms();
	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		j->settled_ms = now;
		if (settled(j)) {
			if (j->wait != NULL) {
				atomic_fetch_add(&ex->released, 1);
			} else if (j->ack) {
				atomic_fetch_add(&ex->succeeded, 1);
				if (j->follow != NULL)
					atomic_fetch_add(&ex->routed, 1);
			} else {
				atomic_fetch_add(&ex->failed, 1);
				if (strcmp(j->outcome->outcome, "dead") == 0)
					atomic_fetch_add(&ex->dead, 1);
			}
		}
		record_job(ex, j);
	}
	if (ar != NULL)
		noetl__ack_reply__free_unpacked(ar, NULL);
	if (nr != NULL)
		noetl__ack_reply__free_unpacked(nr, NULL);
	free(acks);
	free(ackp);
	free(nacks);
	free(nackp);
	free(ackj);
	free(nackj);
}

static void process(struct executor *ex, Noetl__LeaseReply *lr)
{
	size_t n = lr->n_items;
	struct job *jobs = calloc(n, sizeof(*jobs));
	struct run *runs = calloc(n, sizeof(*runs));
	if (jobs == NULL || runs == NULL)
		abort();
	struct keeper_batch *held = keeper_hold(ex->keeper, lr->items, n);
	size_t nwait = 0;
	struct job *first_wait = NULL;
	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		j->l = lr->items[i];
		const Noetl__Item *it = j->l->item;
		j->leased_ms = util_now_ms();
		char buf[1024];
		char *why = NULL;
		int rc = catalog_lookup(ex->defs, it->tenant, it->event, it->definition_revision,
		                        &j->def, &why);
		if (rc == -ESTALE && util_now_ms() - it->enqueued_ms > RELEASE_STALE_MAX_MS) {
			snprintf(buf, sizeof(buf),
			         "unknown event '%s' of tenant '%s': %s, and it was accepted more "
			         "than %d minutes ago",
			         it->event, it->tenant, why, RELEASE_STALE_MAX_MS / 60000);
			j->reason = util_xstrdup(buf);
			free(why);
		} else if (rc == -EAGAIN || rc == -ESTALE) {
			j->wait = why;
			nwait++;
			if (first_wait == NULL)
				first_wait = j;
		} else if (rc != 0) {
			snprintf(buf, sizeof(buf),
			         "unknown event '%s' of tenant '%s': no deployed package declares "
			         "it",
			         it->event, it->tenant);
			j->reason = util_xstrdup(buf);
		} else if (j->def->module == NULL) {
			snprintf(buf, sizeof(buf), "the runtime of event '%s' has no module",
			         it->event);
			j->reason = util_xstrdup(buf);
		} else if (j->def->module->mod == NULL) {
			j->reason = util_xstrdup(j->def->module->error);
		}
		j->start_ms = util_now_ms();
	}
	/* One line a second at most: a deploy window releases the same
	 * events every RELEASE_DELAY_MS until their package is ready. */
	long long now = util_mono_ms(), last = atomic_load(&ex->release_logged);
	if (nwait > 0 && now - last >= 1000 &&
	    atomic_compare_exchange_strong(&ex->release_logged, &last, now))
		log_info("executor: %zu of %zu events released unrun for %d ms; the first, '%s' "
		         "of tenant '%s': %s",
		         nwait, n, RELEASE_DELAY_MS, first_wait->l->item->event,
		         first_wait->l->item->tenant, first_wait->wait);
	size_t nruns = 0;
	run_jobs(ex, jobs, n, runs, &nruns);
	for (size_t i = 0; i < n; i++)
		decide(&jobs[i]);
	keeper_release(ex->keeper, held); /* before the Ack: no Extend races it */
	settle(ex, jobs, n);
	for (size_t r = 0; r < nruns; r++)
		engine_results_free(runs[r].res, runs[r].n);
	for (size_t i = 0; i < n; i++) {
		catalog_event_free(ex->defs, jobs[i].def);
		free(jobs[i].reason);
		free(jobs[i].wait);
		free_followup(jobs[i].follow);
	}
	free(runs);
	free(jobs);
}

static void *worker(void *arg)
{
	struct executor *ex = arg;
	int backoff = 100;
	int64_t next_retry = util_mono_ms() + 5000;
	unsigned per_tenant = ex->cfg.per_tenant;
	int64_t failing_since = 0, warned = 0; /* Lease calls failing (monotonic ms) */
	while (!atomic_load(&ex->stop)) {
		if (util_mono_ms() > next_retry) {
			catalog_retry_failed(ex->defs);
			next_retry = util_mono_ms() + 5000;
		}
		if (atomic_load(&ex->paused)) {
			util_sleep_ms(50);
			continue;
		}
		Noetl__LeaseRequest req = NOETL__LEASE_REQUEST__INIT;
		req.max_items = ex->cfg.batch;
		req.lease_ms = (uint32_t)ex->cfg.lease_ms;
		req.consumer = ex->host;
		req.wait_ms = 500;
		req.per_tenant_max = per_tenant;
		struct rpc_call_options o = {.timeout_ms = 5000, .token = ex->cfg.token};
		ProtobufCMessage *out = NULL;
		char *err = NULL;
		int st = rpc_call(ex->queue, &noetl__queue__descriptor, "Lease", &req.base, &o,
		                  &out, &err);
		if (st != NOETL__STATUS__OK) {
			/* say so once the Queue has been away for a while, then every
			 * minute: a silent executor that leases nothing is a mystery */
			failing_since = failing_since != 0 ? failing_since : util_mono_ms();
			if (util_mono_ms() - failing_since >= 5000 &&
			    util_mono_ms() - warned >= 60000) {
				log_warn("executor: cannot lease from the queue for %lld s: %s",
				         (long long)(util_mono_ms() - failing_since) / 1000,
				         err != NULL ? err : rpc_status_name(st));
				warned = util_mono_ms();
			} else {
				log_debug("executor: lease failed: %s", err != NULL ? err : "");
			}
			free(err);
			util_sleep_ms(backoff);
			backoff = backoff < 2000 ? backoff * 2 : 2000;
			continue;
		}
		backoff = 100;
		if (warned != 0)
			log_info("executor: leasing from the queue again");
		failing_since = warned = 0;
		Noetl__LeaseReply *lr = (Noetl__LeaseReply *)out;
		if (lr->n_items > 0) {
			atomic_fetch_add(&ex->leased, lr->n_items);
			process(ex, lr);
		}
		protobuf_c_message_free_unpacked(out, NULL);
	}
	return NULL;
}

static void free_config(struct executor_config *c)
{
	free((char *)c->control_url);
	free((char *)c->repository_url);
	free((char *)c->queue_url);
	free((char *)c->recorder_url);
	free((char *)c->control_stream);
	free((char *)c->repository_stream);
	free((char *)c->token);
}

int executor_create(const struct executor_config *cfg, int start_wait_ms, struct executor **out,
                    char **err)
{
	struct executor *ex = calloc(1, sizeof(*ex));
	if (ex == NULL)
		return -ENOMEM;
	ex->cfg = *cfg;
	ex->cfg.control_url = util_xstrdup(cfg->control_url);
	ex->cfg.repository_url = util_xstrdup(cfg->repository_url);
	ex->cfg.queue_url = util_xstrdup(cfg->queue_url);
	ex->cfg.recorder_url = util_xstrdup(cfg->recorder_url);
	ex->cfg.control_stream = util_xstrdup(cfg->control_stream);
	ex->cfg.repository_stream = util_xstrdup(cfg->repository_stream);
	ex->cfg.token = util_xstrdup(cfg->token);
	if (cfg->host != NULL)
		snprintf(ex->host, sizeof(ex->host), "%s", cfg->host);
	else if (gethostname(ex->host, sizeof(ex->host) - 1) != 0)
		snprintf(ex->host, sizeof(ex->host), "executor");
	if (ex->cfg.batch == 0)
		ex->cfg.batch = 16;
	if (ex->cfg.per_tenant == 0)
		ex->cfg.per_tenant = ex->cfg.batch / 2 > 0 ? ex->cfg.batch / 2 : 1;
	if (ex->cfg.lease_ms <= 0)
		ex->cfg.lease_ms = EXECUTOR_DEFAULT_LEASE_MS;

	struct rpc_client_options co = {.caller = "noetl-executor", .connect_wait_ms = 2000};
	int rc = 0;
	if ((rc = rpc_client_create(ex->cfg.control_url, &co, &ex->control)) != 0 ||
	    (rc = rpc_client_create(ex->cfg.repository_url, &co, &ex->repository)) != 0 ||
	    (rc = rpc_client_create(ex->cfg.queue_url, &co, &ex->queue)) != 0 ||
	    (rc = rpc_client_create(ex->cfg.recorder_url, &co, &ex->recorder)) != 0) {
		if (err != NULL)
			*err = util_xstrdup("a service URL is not valid");
		goto fail;
	}
	if ((rc = keeper_create(ex->queue, ex->cfg.token, (uint32_t)ex->cfg.lease_ms,
	                        &ex->keeper)) != 0) {
		if (err != NULL)
			*err = util_xstrdup(rc == -EINVAL ? "the lease time is too short"
			                                  : "cannot start the lease keeper");
		goto fail;
	}
	if (cfg->engine.cache_dir != NULL && (rc = util_mkdir_p(cfg->engine.cache_dir)) != 0) {
		if (err != NULL) {
			char buf[600];
			snprintf(buf, sizeof(buf), "cannot create the compile cache '%s': %s",
			         cfg->engine.cache_dir, strerror(-rc));
			*err = util_xstrdup(buf);
		}
		goto fail;
	}
	if ((rc = engine_create(&cfg->engine, &ex->engine, err)) != 0)
		goto fail;
	if (ex->cfg.workers == 0) {
		unsigned pool = cfg->engine.pool_size;
		if (pool == 0) {
			long cpus = sysconf(_SC_NPROCESSORS_ONLN);
			pool = cpus > 0 ? (unsigned)cpus : 1;
		}
		ex->cfg.workers = pool;
	}
	if ((rc = report_create(ex->recorder, ex->cfg.token, cfg->report_bytes, &ex->report)) != 0)
		goto fail;
	struct catalog_config dc = {.control = ex->control,
	                            .repository = ex->repository,
	                            .control_stream = ex->cfg.control_stream,
	                            .repository_stream = ex->cfg.repository_stream,
	                            .engine = ex->engine,
	                            .token = ex->cfg.token};
	int64_t deadline = util_mono_ms() + start_wait_ms;
	for (;;) {
		char *derr = NULL;
		rc = catalog_create(&dc, &ex->defs, &derr);
		if (rc == 0 || rc != -EAGAIN || util_mono_ms() >= deadline) {
			if (rc != 0 && err != NULL) {
				char buf[1200];
				snprintf(buf, sizeof(buf), "cannot load the definitions: %s",
				         derr != NULL ? derr : "control or repository unreachable");
				*err = util_xstrdup(buf);
			}
			free(derr);
			break;
		}
		free(derr);
		util_sleep_ms(200);
	}
	if (rc != 0)
		goto fail;
	ex->threads = calloc(ex->cfg.workers, sizeof(*ex->threads));
	if (ex->threads == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < ex->cfg.workers; i++) {
		if (pthread_create(&ex->threads[i], NULL, worker, ex) != 0) {
			rc = -EAGAIN;
			goto fail;
		}
		ex->nthreads++;
	}
	log_info("executor: %u workers, batch %u, lease %d ms, host '%s'", ex->cfg.workers,
	         ex->cfg.batch, ex->cfg.lease_ms, ex->host);
	*out = ex;
	return 0;
fail:
	executor_destroy(ex);
	return rc;
}

void executor_stop(struct executor *ex)
{
	atomic_store(&ex->stop, true);
	for (unsigned i = 0; i < ex->nthreads; i++)
		pthread_join(ex->threads[i], NULL);
	ex->nthreads = 0;
}

void executor_pause(struct executor *ex, bool paused)
{
	atomic_store(&ex->paused, paused);
}

void executor_destroy(struct executor *ex)
{
	if (ex == NULL)
		return;
	executor_stop(ex);
	keeper_destroy(ex->keeper);
	free(ex->threads);
	catalog_destroy(ex->defs);
	report_destroy(ex->report, 3000);
	engine_destroy(ex->engine);
	rpc_client_destroy(ex->control);
	rpc_client_destroy(ex->repository);
	rpc_client_destroy(ex->queue);
	rpc_client_destroy(ex->recorder);
	free_config(&ex->cfg);
	free(ex);
}

void executor_stats(struct executor *ex, struct executor_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->leased = atomic_load(&ex->leased);
	out->succeeded = atomic_load(&ex->succeeded);
	out->routed = atomic_load(&ex->routed);
	out->failed = atomic_load(&ex->failed);
	out->dead = atomic_load(&ex->dead);
	out->settle_errors = atomic_load(&ex->settle_errors);
	out->released = atomic_load(&ex->released);
	if (ex->keeper != NULL)
		keeper_stats(ex->keeper, &out->leases_extended, &out->leases_lost);
	if (ex->defs != NULL) {
		out->control_revision = catalog_revision(ex->defs);
		out->modules = catalog_modules(ex->defs);
	}
}

struct engine *executor_engine(struct executor *ex)
{
	return ex->engine;
}
