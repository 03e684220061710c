/*
 * Followers of the Recorder's stream under load and across a restart: a
 * follower attached during a burst of 10,000 records gets every one exactly
 * once and in order, whether it is slow (so pub/sub drops and it resyncs) or
 * the noetl-recorder process is killed and started again in the middle.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "recorder.h"
#include "recorder.pb-c.h"
#include "recutil.h"
#include "rpc.h"
#include "stream.h"
#include "testrpc.h"
#include "testutil.h"
#include "util.h"

#define BURST 10000
#define BATCH 20

static char dir[256], rpc_url[300], pub_url[300], data[300];

static void setup(void)
{
	log_setup("test", LOG_LEVEL_WARN, false);
	testutil_tempdir(dir, sizeof(dir));
	snprintf(rpc_url, sizeof(rpc_url), "ipc://%s/rpc.sock", dir);
	snprintf(pub_url, sizeof(pub_url), "ipc://%s/pub.sock", dir);
	snprintf(data, sizeof(data), "%s/db", dir);
}

static void teardown(void)
{
	testutil_rmtree(dir);
}

TestSuite(follow, .init = setup, .fini = teardown, .timeout = 600);

/* What a follower saw: the revision and sequence number of each record. */
struct seen {
	pthread_mutex_t mu;
	size_t n, cap;
	uint64_t *revs;
	int *seqs;
	unsigned slow_every; /* sleep a little every this many changes (0 = never) */
	bool bad;            /* a change that was not one of ours */
};

static int on_change(void *arg, const Noetl__Change *chg)
{
	struct seen *s = arg;
	Noetl__Record *r = noetl__record__unpack(NULL, chg->body.len, chg->body.data);
	int seq = -1;
	if (r != NULL && r->kind_case == NOETL__RECORD__KIND_LOG &&
	    strcmp(r->log->tenant, "acme") == 0)
		seq = atoi(r->log->text);
	if (r != NULL)
		noetl__record__free_unpacked(r, NULL);
	pthread_mutex_lock(&s->mu);
	if (seq < 0)
		s->bad = true;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->revs = realloc(s->revs, s->cap * sizeof(*s->revs));
		s->seqs = realloc(s->seqs, s->cap * sizeof(*s->seqs));
	}
	s->revs[s->n] = chg->revision;
	s->seqs[s->n] = seq;
	s->n++;
	size_t n = s->n;
	pthread_mutex_unlock(&s->mu);
	if (s->slow_every != 0 && n % s->slow_every == 0)
		util_sleep_ms(150); /* a slow follower: the publisher drops meanwhile */
	return 0;
}

static size_t seen_count(struct seen *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void seen_free(struct seen *s)
{
	free(s->revs);
	free(s->seqs);
	pthread_mutex_destroy(&s->mu);
}

/* The writer of the burst: BURST log lines of tenant acme, "seq" as text, in
 * calls of BATCH, retrying a call that fails (the recorder may be down). Some
 * records of tenant other are mixed in, which acme's follower must not see. */
struct writer {
	struct rpc_client *client;
	atomic_int sent;    /* acme records acknowledged */
	atomic_ullong last; /* last revision acknowledged */
	int retries;
	bool gave_up;
};

static void *write_burst(void *arg)
{
	struct writer *w = arg;
	for (int seq = 0; seq < BURST; seq += BATCH) {
		Noetl__Record *recs[BATCH + 1];
		for (int i = 0; i < BATCH; i++) {
			char text[16];
			snprintf(text, sizeof(text), "%d", seq + i);
			recs[i] = recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, text);
		}
		recs[BATCH] = recutil_log("other", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, "noise");
		Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
		req.records = recs;
		req.n_records = BATCH + 1;
		for (;;) {
			struct rpc_call_options o = {.timeout_ms = 5000};
			ProtobufCMessage *out = NULL;
			int st = testrpc_call(w->client, &noetl__recorder__descriptor, "Record",
			                      &req.base, &o, &out, NULL);
			if (st == 0) {
				atomic_store(&w->last, ((Noetl__RecordReply *)out)->revision);
				protobuf_c_message_free_unpacked(out, NULL);
				break;
			}
			if (++w->retries > 3000) {
				w->gave_up = true; /* the recorder is not coming back */
				recutil_free(recs, BATCH + 1);
				return NULL;
			}
			util_sleep_ms(20);
		}
		recutil_free(recs, BATCH + 1);
		atomic_fetch_add(&w->sent, BATCH);
	}
	return NULL;
}

/* Reads every acme change from the recorder, as the truth to compare with. */
static void read_all(struct rpc_client *c, struct seen *out)
{
	uint64_t since = 0;
	for (;;) {
		Noetl__ChangesRequest req = NOETL__CHANGES_REQUEST__INIT;
		req.since = since;
		req.topic = "acme";
		req.limit = 5000;
		ProtobufCMessage *o =
		        testrpc_ok(c, &noetl__recorder__descriptor, "Changes", &req.base, NULL);
		Noetl__ChangesReply *r = (Noetl__ChangesReply *)o;
		for (size_t i = 0; i < r->n_changes; i++) {
			on_change(out, r->changes[i]);
			since = r->changes[i]->revision;
		}
		bool more = r->more;
		protobuf_c_message_free_unpacked(o, NULL);
		if (!more)
			break;
	}
}

/* The follower saw exactly what the recorder stored, in order, and that
 * covers every sequence number. */
static void check(struct seen *f, struct seen *truth)
{
	cr_assert(!f->bad, "the follower got a record that is not acme's");
	cr_assert_eq(f->n, truth->n, "follower %zu records, recorder %zu", f->n, truth->n);
	for (size_t i = 0; i < f->n; i++) {
		cr_assert_eq(f->revs[i], truth->revs[i], "record %zu", i);
		cr_assert_eq(f->seqs[i], truth->seqs[i], "record %zu", i);
		if (i > 0)
			cr_assert_gt(f->revs[i], f->revs[i - 1], "in revision order");
	}
	char *have = calloc(BURST, 1);
	for (size_t i = 0; i < f->n; i++) {
		cr_assert(f->seqs[i] >= 0 && f->seqs[i] < BURST);
		have[f->seqs[i]] = 1;
	}
	for (int i = 0; i < BURST; i++)
		cr_assert(have[i], "sequence %d is missing", i);
	free(have);
}

/* Runs the burst against an in-process recorder with a follower attached
 * after a fifth of it; slow_every makes the follower slow, drop_every makes
 * the publisher drop messages. */
static void burst_in_process(unsigned slow_every, unsigned drop_every)
{
	struct recorder_config cfg = {
	        .data_dir = data,
	        .stream_url = pub_url,
	        .heartbeat_ms = 100,
	        .retain_every_ms = -1,
	};
	struct recorder *rec;
	cr_assert_eq(recorder_create(&cfg, &rec), 0);
	stream_pub_drop_every(recorder_pub(rec), drop_every);
	struct rpc_server *server;
	struct rpc_server_options so = {.workers = 4, .name = "recorder"};
	cr_assert_eq(rpc_server_create(&so, &server), 0);
	cr_assert_eq(rpc_server_add(server, recorder_service(rec)), 0);
	cr_assert_eq(rpc_server_listen(server, rpc_url), 0);
	cr_assert_eq(rpc_server_start(server), 0);
	struct rpc_client *client;
	cr_assert_eq(rpc_client_create(rpc_url, NULL, &client), 0);

	struct writer w = {.client = client};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, write_burst, &w), 0);
	while (atomic_load(&w.sent) < BURST / 5 && !w.gave_up)
		util_sleep_ms(5);

	/* attached in the middle, from the beginning of the stream */
	struct seen f = {.slow_every = slow_every};
	pthread_mutex_init(&f.mu, NULL);
	struct stream_sub *sub;
	struct stream_sub_options o = {.topic = "acme", .heartbeat_timeout_ms = 500};
	cr_assert_eq(stream_sub_create(client, &noetl__recorder__descriptor, pub_url, &o, on_change,
	                               &f, &sub),
	             0);
	pthread_join(th, NULL);
	cr_assert(!w.gave_up, "the recorder stopped answering");
	uint64_t last = atomic_load(&w.last);
	/* the last acme record is the one before the last "other" record */
	cr_assert(stream_sub_wait(sub, last - 1, 120000), "follower at %llu of %llu",
	          (unsigned long long)stream_sub_revision(sub), (unsigned long long)last);
	cr_log_info("%s: %llu resyncs, %d calls retried", criterion_current_test->name,
	            (unsigned long long)stream_sub_resyncs(sub), w.retries);
	stream_sub_destroy(sub);

	struct seen truth = {0};
	pthread_mutex_init(&truth.mu, NULL);
	read_all(client, &truth);
	cr_assert_eq(truth.n, BURST, "no retries here, so no duplicates either");
	check(&f, &truth);
	seen_free(&f);
	seen_free(&truth);

	rpc_client_destroy(client);
	rpc_server_destroy(server);
	recorder_destroy(rec);
}

Test(follow, a_slow_follower_attached_during_a_burst_gets_every_record_once_and_in_order)
{
	burst_in_process(200, 0);
}

Test(follow, a_follower_whose_messages_are_dropped_gets_every_record_once_and_in_order)
{
	burst_in_process(0, 7);
}

static pid_t start_recorder(void)
{
	char bin[512], log[300];
	testutil_build_path("src/recorder/noetl-recorder", bin, sizeof(bin));
	snprintf(log, sizeof(log), "%s/recorder.log", dir);
	char *argv[] = {bin,     "--data-dir",  data,    "--listen",
	                rpc_url, "--stream",    pub_url, "--retention-interval",
	                "1h",    "--log.level", "warn",  "--http",
	                "",      NULL};
	return testutil_spawn(argv, log);
}

Test(follow, a_follower_gets_every_record_once_and_in_order_across_a_recorder_restart)
{
	pid_t pid = start_recorder();
	struct rpc_client *client;
	struct rpc_client_options co = {.connect_wait_ms = 2000};
	cr_assert_eq(rpc_client_create(rpc_url, &co, &client), 0);

	struct seen f = {0};
	pthread_mutex_init(&f.mu, NULL);
	struct stream_sub *sub;
	struct stream_sub_options o = {.topic = "acme", .heartbeat_timeout_ms = 500};
	cr_assert_eq(stream_sub_create(client, &noetl__recorder__descriptor, pub_url, &o, on_change,
	                               &f, &sub),
	             0);

	struct writer w = {.client = client};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, write_burst, &w), 0);
	int64_t deadline = util_mono_ms() + 120000;
	while (seen_count(&f) < BURST / 3 && util_mono_ms() < deadline)
		util_sleep_ms(5);
	cr_assert_geq(seen_count(&f), BURST / 3, "the follower got nothing: see recorder.log");
	/* kill it hard in the middle of the burst, then start it again */
	testutil_kill(pid, SIGKILL);
	util_sleep_ms(200);
	pid = start_recorder();
	pthread_join(th, NULL);
	cr_assert(!w.gave_up, "the recorder stopped answering");
	uint64_t last = atomic_load(&w.last);
	cr_assert(stream_sub_wait(sub, last - 1, 120000), "follower at %llu of %llu",
	          (unsigned long long)stream_sub_revision(sub), (unsigned long long)last);
	cr_log_info("%s: %llu resyncs, %d calls retried", criterion_current_test->name,
	            (unsigned long long)stream_sub_resyncs(sub), w.retries);
	stream_sub_destroy(sub);

	struct seen truth = {0};
	pthread_mutex_init(&truth.mu, NULL);
	read_all(client, &truth);
	/* a call in flight at the kill may have been stored and then retried, so
	 * the recorder may hold a batch twice: the follower must match it all */
	cr_assert_geq(truth.n, BURST);
	check(&f, &truth);
	seen_free(&f);
	seen_free(&truth);

	rpc_client_destroy(client);
	int status = testutil_kill(pid, SIGTERM);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "clean stop: status %d", status);
	char log[300];
	snprintf(log, sizeof(log), "%s/recorder.log", dir);
	char *text = testutil_read_file(log, NULL);
	cr_assert(text == NULL || (strstr(text, "Sanitizer") == NULL &&
	                           strstr(text, "runtime error: ") == NULL),
	          "noetl-recorder: %s", text);
	free(text);
}
