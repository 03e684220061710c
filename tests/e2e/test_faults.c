/*
 * Durability under faults: while a load client posts events and keeps every
 * id that got 202, the Queue, the Executor, the Listener and the Recorder
 * are killed with SIGKILL at random moments and started again. At the end
 * every accepted id must have been executed or be in the dead-letter queue
 * with a reason: zero lost. Duplicates are counted and printed.
 *
 * Proof of execution that survives the kills: the job's result.ok event
 * "proof" is enqueued atomically with the ack of the executed "work" event
 * (with the idempotency key "<id>/ok", so at most one per work event), and
 * runs a module that always fails with a single attempt, so every proof
 * ends in the dead-letter queue naming its parent. An accepted id is
 * executed when a dead proof names it, dead when it is in the work queue's
 * dead letters; anything else is lost. The Recorder's executions only count
 * duplicates (records an executor had not shipped when it was killed are
 * gone, as report.h says).
 *
 * Variants:
 *   - the services as they are (SIGKILL keeps the page cache: nothing
 *     written is lost);
 *   - the Queue and the Recorder under the unsynced shim (unsynced.c):
 *     a kill also drops every byte they wrote and did not fsync, as a
 *     power cut would;
 *   - the same with the Queue's write-ahead log not synced (the shim
 *     ignores fsync on *.log files): this run must LOSE accepted events,
 *     which proves that the check above can fail.
 *
 * RPC runs over loopback TCP: with nng 1.5.2 a peer killed during the SP
 * handshake wedges an ipc:// listener (nanomsg/nng#1518).
 *
 * These tests are long (a minute or so each); meson runs them in the plain
 * build only.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cluster.h"
#include "flow.h"
#include "testutil.h"

#define BATCH    5      /* events per POST */
#define PAUSE_MS 20     /* between POSTs */
#define DRAIN_MS 240000 /* for the queues to empty after the load */

static const char *const job_yaml =
        "id: load\n"
        "tenant: acme\n"
        "queues:\n"
        "  - id: work\n"
        "  - id: proof\n"
        "jobs:\n"
        "  - event: {id: work, supplierqueue: work, runtime: echo}\n"
        "    result:\n"
        "      ok: {id: proof, supplierqueue: proof, runtime: reject}\n"
        "runtimes:\n"
        "  - id: echo\n"
        "    moduleref: echo.wasm\n"
        "    retry: {maxattempts: 20, backoffbase: 100ms, backoffmax: 1s}\n"
        "  - id: reject\n"
        "    moduleref: error.wasm\n"
        "    retry: {maxattempts: 1}\n";

static struct cluster C;

/* What the load client saw. */
static struct {
	pthread_mutex_t mu;
	char (*ids)[32];
	size_t n, cap;
	atomic_bool stop;
	atomic_long posts, refused, failed;
} load;

static void add_ids(const char *body)
{
	const char *p = body != NULL ? strstr(body, "\"ids\"") : NULL;
	if (p == NULL)
		return;
	p = strchr(p, '[');
	pthread_mutex_lock(&load.mu);
	while (p != NULL && (p = strchr(p, '"')) != NULL) {
		const char *e = strchr(p + 1, '"');
		if (e == NULL || e - p - 1 >= 32)
			break;
		if (load.n == load.cap) {
			load.cap = load.cap ? load.cap * 2 : 4096;
			load.ids = realloc(load.ids, load.cap * sizeof(*load.ids));
			cr_assert_not_null(load.ids);
		}
		snprintf(load.ids[load.n++], 32, "%.*s", (int)(e - p - 1), p + 1);
		p = e + 1;
		if (*p == ']')
			break;
	}
	pthread_mutex_unlock(&load.mu);
}

static void *load_client(void *arg)
{
	(void)arg;
	long k = 0;
	while (!atomic_load(&load.stop)) {
		char body[BATCH * 32 + 32] = "{\"data\":[";
		for (int i = 0; i < BATCH; i++)
			snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s{\"n\":%ld}",
			         i ? "," : "", k++);
		strcat(body, "]}");
		struct httpc_reply r;
		int st = cluster_post(&C, "/events/acme/work", NULL, body, &r);
		atomic_fetch_add(&load.posts, 1);
		if (st == 202)
			add_ids(r.body);
		else if (st > 0)
			atomic_fetch_add(&load.refused, 1); /* 503 while the queue is down */
		else
			atomic_fetch_add(&load.failed, 1); /* the listener was killed */
		if (st > 0)
			httpc_reply_free(&r);
		cluster_sleep_ms(PAUSE_MS);
	}
	return NULL;
}

/* Restarts what is not running and waits for every service to answer. */
static void heal(void)
{
	for (int s = 0; s < SVC_COUNT; s++)
		if (!cluster_alive(&C, s)) {
			fprintf(stderr, "restarting %s\n", cluster_svc_name(s));
			cluster_start(&C, s);
		}
	for (int s = 0; s < SVC_COUNT; s++) {
		long long end = cluster_now_ms() + 60000;
		while (!cluster_ready(&C, s)) {
			if (!cluster_alive(&C, s))
				cluster_spawn(&C, s);
			if (cluster_now_ms() > end) {
				cluster_dump_logs(&C);
				cr_assert_fail("%s is not ready after the faults",
				               cluster_svc_name(s));
			}
			cluster_sleep_ms(100);
		}
	}
}

static long long rnd(long long lo, long long hi)
{
	return lo + (long long)(random() % (hi - lo + 1));
}

/* Kills the victims at random moments for load_ms (and at least min_kills
 * times), restarting each after a random pause. Returns the kill count. */
static int kill_loop(const enum svc *victims, int nvictims, int load_ms, int min_kills)
{
	long long end = cluster_now_ms() + load_ms;
	int kills = 0, per[SVC_COUNT] = {0};
	enum svc order[SVC_COUNT];
	int next = nvictims;
	while (cluster_now_ms() < end || kills < min_kills) {
		cluster_sleep_ms((int)rnd(1500, 4000));
		/* every victim once per round, in a random order */
		if (next == nvictims) {
			memcpy(order, victims, (size_t)nvictims * sizeof(*order));
			for (int i = nvictims - 1; i > 0; i--) {
				int j = (int)rnd(0, i);
				enum svc t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
			next = 0;
		}
		enum svc s = order[next++];
		if (cluster_alive(&C, s)) {
			cluster_stop(&C, s, SIGKILL);
			kills++;
			per[s]++;
		}
		cluster_sleep_ms((int)rnd(0, 1500));
		cluster_spawn(&C, s);
		/* a restart that failed (its port still taken ...) is tried again */
		for (int v = 0; v < nvictims; v++)
			if (victims[v] != s && !cluster_alive(&C, victims[v]))
				cluster_spawn(&C, victims[v]);
	}
	char what[256] = "";
	for (int v = 0; v < SVC_COUNT; v++)
		if (per[v] > 0)
			snprintf(what + strlen(what), sizeof(what) - strlen(what), " %s x%d",
			         cluster_svc_name(v), per[v]);
	cr_log_info("%d kills:%s", kills, what);
	fprintf(stderr, "%d kills:%s\n", kills, what);
	return kills;
}

/* ready + leased + delayed of the tenant's queues, or -1 if unknown. */
static long backlog(void)
{
	char *out = NULL;
	if (cluster_ctl(&C, &out, "queue stats acme -o json") != 0) {
		free(out);
		return -1;
	}
	json_t *rows = flow_parse(out, "queue stats -o json");
	free(out);
	long n = 0;
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *r = json_array_get(rows, i);
		n += (long)json_integer_value(json_object_get(r, "ready")) +
		     (long)json_integer_value(json_object_get(r, "leased")) +
		     (long)json_integer_value(json_object_get(r, "delayed"));
	}
	json_decref(rows);
	return n;
}

static void drain(void)
{
	long long end = cluster_now_ms() + DRAIN_MS;
	int zeros = 0;
	while (zeros < 3) {
		long n = backlog();
		zeros = n == 0 ? zeros + 1 : 0;
		if (cluster_now_ms() > end) {
			cluster_dump_logs(&C);
			cr_assert_fail("the queues did not drain: %ld items left", n);
		}
		cluster_sleep_ms(500);
	}
}

/* The dead items of a queue, as an object id -> item. With by_parent, keyed
 * by parent id, and each parent's count in counts. */
static json_t *dead_items(const char *queue, bool by_parent, json_t *counts)
{
	char *out = cluster_ctl_ok(&C, "dlq list acme %s --limit 10000000 -o json", queue);
	json_t *rows = flow_parse(out, "dlq list -o json");
	free(out);
	json_t *map = json_object();
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *r = json_array_get(rows, i);
		const char *key = flow_str(r, by_parent ? "parent_id" : "id");
		if (counts != NULL) {
			json_int_t n = json_integer_value(json_object_get(counts, key));
			json_object_set_new(counts, key, json_integer(n + 1));
		}
		json_object_set(map, key, r);
	}
	json_decref(rows);
	return map;
}

/* The Recorder's executions as followed during the whole run (one JSON
 * object per line): successful runs of work events, per id. */
static pid_t follower;
static char follow_path[400];

static void follow_start(void)
{
	snprintf(follow_path, sizeof(follow_path), "%s/follow.jsonl", C.dir);
	follower = cluster_ctl_spawn(&C, follow_path,
	                             "recorder --tenant acme -n 1 --follow -o json "
	                             "--stream '%s'",
	                             C.stream[SVC_RECORDER]);
}

static json_t *ok_runs(void)
{
	/* Let the follower catch up: its file stops growing. */
	size_t last = (size_t)-1, len = 0;
	char *text = NULL;
	for (int quiet = 0; quiet < 4; cluster_sleep_ms(500)) {
		free(text);
		text = testutil_read_file(follow_path, &len);
		quiet = len == last ? quiet + 1 : 0;
		last = len;
	}
	bool alive = waitpid(follower, NULL, WNOHANG) == 0;
	cr_expect(alive, "noetlctl recorder --follow ended during the run:\n%.2000s",
	          text != NULL ? text : "");
	/* Once reaped (by the waitpid above if it had ended), its pid is free
	 * for any process on the machine: it is signalled only while alive, and
	 * stop() must not signal it again. */
	if (alive)
		testutil_kill(follower, SIGTERM);
	follower = 0;
	json_t *counts = json_object();
	for (char *line = text, *nl; line != NULL && *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;
		*nl = '\0';
		json_t *e = json_loads(line, 0, NULL);
		if (e != NULL && strcmp(flow_str(e, "event"), "work") == 0 &&
		    strcmp(flow_str(e, "status"), "ok") == 0) {
			const char *id = flow_str(e, "event_id");
			json_int_t n = json_integer_value(json_object_get(counts, id));
			json_object_set_new(counts, id, json_integer(n + 1));
		}
		json_decref(e);
	}
	free(text);
	return counts;
}

struct verdict {
	size_t accepted, executed, dead, lost;
	size_t doubled_proofs;       /* follow-ups enqueued twice for one event */
	size_t dup_events, dup_runs; /* events run more than once, extra runs */
};

static struct verdict judge(void)
{
	struct verdict v = {0};
	json_t *proof_counts = json_object();
	json_t *proofs = dead_items("proof", true, proof_counts);
	json_t *dead = dead_items("work", false, NULL);
	json_t *runs = ok_runs();
	v.accepted = load.n;
	int shown = 0;
	for (size_t i = 0; i < load.n; i++) {
		const char *id = load.ids[i];
		json_t *d = json_object_get(dead, id);
		if (json_object_get(proofs, id) != NULL) {
			v.executed++;
		} else if (d != NULL) {
			v.dead++;
			cr_expect(flow_str(d, "reason")[0] != '\0', "dead item %s has a reason",
			          id);
		} else {
			v.lost++;
			if (shown++ < 5) {
				char *out = NULL;
				cluster_ctl(&C, &out, "events show %s", id);
				fprintf(stderr, "LOST %s:\n%s\n", id, out);
				free(out);
			}
		}
		json_int_t n = json_integer_value(json_object_get(runs, id));
		if (n > 1) {
			v.dup_events++;
			v.dup_runs += (size_t)(n - 1);
		}
	}
	const char *key;
	json_t *n;
	json_object_foreach(proof_counts, key, n) if (json_integer_value(n) > 1) v.doubled_proofs++;
	json_decref(proof_counts);
	json_decref(proofs);
	json_decref(dead);
	json_decref(runs);
	char line[512];
	snprintf(line, sizeof(line),
	         "accepted %zu (of %ld posts: %ld refused, %ld without a reply): executed %zu, "
	         "dead-lettered %zu, LOST %zu; duplicates: %zu events ran more than once "
	         "(%zu extra runs seen by the recorder), %zu follow-ups doubled",
	         v.accepted, atomic_load(&load.posts), atomic_load(&load.refused),
	         atomic_load(&load.failed), v.executed, v.dead, v.lost, v.dup_events, v.dup_runs,
	         v.doubled_proofs);
	cr_log_info("%s", line);
	fprintf(stderr, "%s\n", line);
	printf("# %s\n", line);
	fflush(stdout);
	return v;
}

/* The cluster; with shim, the Queue and the Recorder run under the
 * unsynced shim (ignore: NOETL_UNSYNCED_IGNORE), restarted under it once
 * the cluster's directory is known. */
static char shim_env[2][3][512];
static const char *shim_envp[2][4];

static void start(bool shim, const char *ignore)
{
	srandom((unsigned)cluster_now_ms());
	struct cluster_options o = {.tcp = true, .exec_timeout = "1s", .exec_lease = "4s"};
	cluster_create(&C, &o);
	if (shim) {
		char lib[400];
		testutil_build_path("tests/e2e/libunsynced.so", lib, sizeof(lib));
		const enum svc which[2] = {SVC_QUEUE, SVC_RECORDER};
		for (int k = 0; k < 2; k++) {
			snprintf(shim_env[k][0], sizeof(shim_env[k][0]), "LD_PRELOAD=%s", lib);
			snprintf(shim_env[k][1], sizeof(shim_env[k][1]), "NOETL_UNSYNCED_DIR=%s/%s",
			         C.dir, cluster_svc_name(which[k]));
			snprintf(shim_env[k][2], sizeof(shim_env[k][2]), "NOETL_UNSYNCED_IGNORE=%s",
			         ignore != NULL ? ignore : "");
			for (int e = 0; e < 3; e++)
				shim_envp[k][e] = shim_env[k][e];
			shim_envp[k][3] = NULL;
			C.opt.env[which[k]] = shim_envp[k];
			cluster_stop(&C, which[k], SIGTERM);
			cluster_start(&C, which[k]);
		}
	}
	static const char *const modules[] = {"echo", "error", NULL};
	cluster_tenant(&C, "acme", modules);
	cluster_deploy(&C, job_yaml, false);
	follow_start();
	pthread_mutex_init(&load.mu, NULL);
	load.n = 0;
	atomic_store(&load.stop, false);
}

static void stop(void)
{
	if (follower > 0) {
		kill(follower, SIGKILL);
		testutil_wait(follower, 5000);
		follower = 0;
	}
	cluster_destroy(&C);
	free(load.ids);
	load.ids = NULL;
	load.cap = load.n = 0;
}

/* Load with kills, heal, drain, judge. */
static struct verdict run(const enum svc *victims, int nvictims, int load_ms, int min_kills)
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, load_client, NULL), 0);
	int kills = kill_loop(victims, nvictims, load_ms, min_kills);
	atomic_store(&load.stop, true);
	pthread_join(t, NULL);
	cr_expect_geq(kills, min_kills);
	heal();
	drain();
	struct verdict v = judge();
	cr_assert_gt(v.accepted, 0, "the load client got no 202 at all");
	return v;
}

static const enum svc all_victims[] = {SVC_QUEUE, SVC_EXECUTOR, SVC_LISTENER, SVC_RECORDER};

TestSuite(faults, .fini = stop, .timeout = 600);

Test(faults, no_accepted_event_is_lost_when_services_are_killed)
{
	start(false, NULL);
	struct verdict v = run(all_victims, 4, 60000, 12);
	cr_expect_eq(v.lost, 0, "%zu accepted events were lost", v.lost);
	cr_expect_eq(v.doubled_proofs, 0, "a follow-up was enqueued twice");
	cr_expect_gt(v.executed, 0);
}

Test(faults, no_accepted_event_is_lost_when_kills_drop_unsynced_data)
{
	start(true, NULL);
	struct verdict v = run(all_victims, 4, 40000, 10);
	cr_expect_eq(v.lost, 0, "%zu accepted events were lost", v.lost);
	cr_expect_eq(v.doubled_proofs, 0, "a follow-up was enqueued twice");
	cr_expect_gt(v.executed, 0);
}

/* The control experiment: the same kills with the Queue's write-ahead log
 * never synced must lose accepted events, or the tests above prove nothing. */
Test(faults, the_check_finds_losses_when_the_queue_does_not_sync)
{
	start(true, ".log");
	static const enum svc queue_only[] = {SVC_QUEUE};
	struct verdict v = run(queue_only, 1, 15000, 3);
	cr_expect_gt(v.lost, 0, "a queue that does not sync lost nothing: the check is blind");
}
