#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "echo.h"
#include "kv.h"
#include "rpc.h"
#include "stream.h"
#include "testutil.h"
#include "util.h"

static char dir[256], rpc_url[300], pub_url[300];
static struct kv *kv;
static struct changelog *cl;
static struct stream_pub *pub;
static struct echo echo;
static struct rpc_server *server;
static struct rpc_client *client;

static void open_source(void)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/db", dir);
	cr_assert_eq(kv_open(path, NULL, &kv), 0);
	cr_assert_eq(stream_pub_create(pub_url, 200, NULL, &pub), 0);
	cr_assert_eq(changelog_open(kv, "S", 1, pub, &cl), 0);
	echo_init(&echo);
	echo.log = cl;
	struct rpc_server_options o = {.workers = 2};
	cr_assert_eq(rpc_server_create(&o, &server), 0);
	cr_assert_eq(rpc_server_add(server, &echo.svc.base), 0);
	cr_assert_eq(rpc_server_listen(server, rpc_url), 0);
	cr_assert_eq(rpc_server_start(server), 0);
}

static void close_source(void)
{
	rpc_server_destroy(server);
	changelog_close(cl);
	stream_pub_destroy(pub);
	kv_close(kv);
}

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	snprintf(rpc_url, sizeof(rpc_url), "ipc://%s/rpc.sock", dir);
	snprintf(pub_url, sizeof(pub_url), "ipc://%s/pub.sock", dir);
	open_source();
	cr_assert_eq(rpc_client_create(rpc_url, NULL, &client), 0);
}

static void teardown(void)
{
	rpc_client_destroy(client);
	close_source();
	testutil_rmtree(dir);
}

TestSuite(stream, .init = setup, .fini = teardown, .timeout = 120);

/* What a subscriber saw. */
struct seen {
	pthread_mutex_t mu;
	uint64_t revs[20000];
	size_t n;
	char topics[20000][2];
};

static int record(void *arg, const Noetl__Change *chg)
{
	struct seen *s = arg;
	pthread_mutex_lock(&s->mu);
	if (s->n < 20000) {
		s->topics[s->n][0] = chg->topic[0];
		s->revs[s->n++] = chg->revision;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static uint64_t publish(const char *topic)
{
	struct kv_batch *b = kv_batch_create();
	uint64_t rev = changelog_add(cl, b, topic, "x", 1, util_now_ms());
	cr_assert_eq(kv_write(kv, b, false), 0);
	changelog_commit(cl);
	kv_batch_destroy(b);
	return rev;
}

static struct stream_sub *subscribe(const char *topic, uint64_t since, struct seen *s)
{
	pthread_mutex_init(&s->mu, NULL);
	struct stream_sub_options o = {
	        .topic = topic, .since = since, .heartbeat_timeout_ms = 1000};
	struct stream_sub *sub;
	cr_assert_eq(
	        stream_sub_create(client, &noetl__echo__descriptor, pub_url, &o, record, s, &sub),
	        0);
	return sub;
}

/* Every revision in (from, to] exactly once and in order. */
static void assert_exact(const struct seen *s, uint64_t from, uint64_t to)
{
	cr_assert_eq(s->n, to - from, "saw %zu changes, expected %llu", s->n,
	             (unsigned long long)(to - from));
	for (size_t i = 0; i < s->n; i++)
		cr_assert_eq(s->revs[i], from + 1 + i, "position %zu: revision %llu", i,
		             (unsigned long long)s->revs[i]);
}

static atomic_bool flooding;

static void *flood(void *arg)
{
	(void)arg;
	struct kv_batch *b = kv_batch_create();
	while (atomic_load(&flooding)) { /* publish() without its assert: not the test's thread */
		changelog_add(cl, b, "a", "x", 1, util_now_ms());
		if (kv_write(kv, b, false) == 0)
			changelog_commit(cl);
		else
			changelog_abort(cl);
		kv_batch_clear(b);
	}
	kv_batch_destroy(b);
	return NULL;
}

/* nng 1.5.2 hung closing a subscriber while a message arrived (see
 * stream_sub_destroy); under a flood, a few hundred closes found it. */
Test(stream, subscribers_close_while_their_publisher_floods_them, .timeout = 240)
{
	testutil_watchdog_start("subscribers_close_while_their_publisher_floods_them", 60);
	struct seen *s = calloc(1, sizeof(*s));
	atomic_store(&flooding, true);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, flood, NULL), 0);
	for (int i = 0; i < 250; i++) {
		s->n = 0;
		struct stream_sub *sub = subscribe(NULL, changelog_head(cl), s);
		/* connected and receiving: it applied a change published live */
		uint64_t want = changelog_head(cl) + 1;
		cr_assert(stream_sub_wait(sub, want, 20000), "round %d: stuck at %llu", i,
		          (unsigned long long)stream_sub_revision(sub));
		stream_sub_destroy(sub);
		pthread_mutex_destroy(&s->mu);
	}
	atomic_store(&flooding, false);
	pthread_join(t, NULL);
	free(s);
	testutil_watchdog_stop();
}

Test(stream, a_subscriber_gets_every_change_once_and_in_order)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct stream_sub *sub = subscribe(NULL, 0, s);
	uint64_t last = 0;
	for (int i = 0; i < 3000; i++)
		last = publish("a");
	cr_assert(stream_sub_wait(sub, last, 20000), "stuck at %llu",
	          (unsigned long long)stream_sub_revision(sub));
	stream_sub_destroy(sub);
	assert_exact(s, 0, last);
	free(s);
}

Test(stream, a_subscriber_that_misses_messages_ends_with_exactly_the_publishers_sequence)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct stream_sub *sub = subscribe(NULL, 0, s);
	/* connected and caught up first, so the drops below hit live traffic */
	uint64_t last = publish("a");
	cr_assert(stream_sub_wait(sub, last, 10000));
	uint64_t before = stream_sub_resyncs(sub);
	stream_pub_drop_every(pub, 7);
	for (int i = 0; i < 3000; i++)
		last = publish(i % 2 ? "a" : "b");
	cr_assert(stream_sub_wait(sub, last, 20000));
	cr_assert_gt(stream_sub_resyncs(sub), before, "drops must have caused resyncs");
	stream_sub_destroy(sub);
	assert_exact(s, 0, last);
	free(s);
}

Test(stream, a_change_dropped_at_the_end_of_a_burst_arrives_through_the_heartbeat)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct stream_sub *sub = subscribe(NULL, 0, s);
	uint64_t last = publish("a");
	cr_assert(stream_sub_wait(sub, last, 10000));
	stream_pub_drop_every(pub, 1); /* every message from now on is lost */
	last = publish("a");
	cr_assert(stream_sub_wait(sub, last, 10000), "the heartbeat must reveal the gap");
	stream_sub_destroy(sub);
	assert_exact(s, 0, last);
	free(s);
}

Test(stream, a_tenant_subscriber_sees_only_its_tenant_in_order_even_with_drops)
{
	stream_pub_drop_every(pub, 5);
	struct seen *s = calloc(1, sizeof(*s));
	struct stream_sub *sub = subscribe("t1", 0, s);
	uint64_t last_t1 = 0;
	for (int i = 0; i < 2000; i++) {
		uint64_t r = publish(i % 3 == 0 ? "t1" : "t2");
		if (i % 3 == 0)
			last_t1 = r;
	}
	cr_assert(stream_sub_wait(sub, last_t1, 20000));
	stream_sub_destroy(sub);
	cr_assert_eq(s->n, 667);
	for (size_t i = 0; i < s->n; i++) {
		cr_assert_eq(s->topics[i][0], 't');
		cr_assert_eq(s->revs[i], 1 + 3 * i, "position %zu", i);
	}
	free(s);
}

Test(stream, a_late_subscriber_gets_the_history_then_live_changes)
{
	for (int i = 0; i < 1200; i++)
		publish("a");
	struct seen *s = calloc(1, sizeof(*s));
	struct stream_sub *sub = subscribe(NULL, 100, s);
	uint64_t last = 0;
	for (int i = 0; i < 500; i++)
		last = publish("a");
	cr_assert(stream_sub_wait(sub, last, 20000));
	stream_sub_destroy(sub);
	assert_exact(s, 100, last);
	free(s);
}

Test(stream, a_subscriber_misses_nothing_across_a_restart_of_the_source)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct stream_sub *sub = subscribe(NULL, 0, s);
	for (int i = 0; i < 500; i++)
		publish("a");
	close_source();
	open_source();
	uint64_t last = 0;
	for (int i = 0; i < 500; i++)
		last = publish("a");
	cr_assert_eq(last, 1000);
	cr_assert(stream_sub_wait(sub, last, 20000), "stuck at %llu",
	          (unsigned long long)stream_sub_revision(sub));
	stream_sub_destroy(sub);
	assert_exact(s, 0, last);
	free(s);
}
