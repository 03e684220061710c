#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo.h"
#include "queue.pb-c.h"
#include "rpc.h"
#include "testutil.h"
#include "util.h"

static char dir[256];
static char url[300];
static struct echo echo;
static struct rpc_server *server;
static struct rpc_client *client;

static void start_server(const char *u, size_t max_msg)
{
	struct rpc_server_options o = {.name = "echo", .workers = 8, .max_msg = max_msg};
	cr_assert_eq(rpc_server_create(&o, &server), 0);
	cr_assert_eq(rpc_server_add(server, &echo.svc.base), 0);
	cr_assert_eq(rpc_server_listen(server, u), 0);
	cr_assert_eq(rpc_server_start(server), 0);
}

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	snprintf(url, sizeof(url), "ipc://%s/echo.sock", dir);
	echo_init(&echo);
	start_server(url, 0);
	struct rpc_client_options co = {.caller = "test"};
	cr_assert_eq(rpc_client_create(url, &co, &client), 0);
}

static void teardown(void)
{
	rpc_client_destroy(client);
	rpc_server_destroy(server);
	testutil_rmtree(dir);
}

TestSuite(rpc, .init = setup, .fini = teardown, .timeout = 60);

static int echo_call(struct rpc_client *c, const char *data, uint32_t sleep_ms, int timeout_ms,
                     Noetl__Status fail, Noetl__EchoReply **out, char **err)
{
	Noetl__EchoRequest req = NOETL__ECHO_REQUEST__INIT;
	req.data.data = (uint8_t *)data;
	req.data.len = strlen(data);
	req.sleep_ms = sleep_ms;
	req.fail = fail;
	struct rpc_call_options o = {.timeout_ms = timeout_ms, .tenant = "acme", .trace_id = "t-1"};
	ProtobufCMessage *m = NULL;
	int st = rpc_call(c, &noetl__echo__descriptor, "Echo", &req.base, &o, &m, err);
	if (st == 0)
		*out = (Noetl__EchoReply *)m;
	return st;
}

Test(rpc, a_call_gets_its_data_back_with_the_callers_metadata)
{
	Noetl__EchoReply *r = NULL;
	cr_assert_eq(echo_call(client, "hello", 0, 2000, 0, &r, NULL), 0);
	cr_assert_eq(r->data.len, 5);
	cr_assert_eq(memcmp(r->data.data, "hello", 5), 0);
	cr_assert_str_eq(r->tenant, "acme");
	cr_assert_str_eq(r->trace_id, "t-1");
	noetl__echo_reply__free_unpacked(r, NULL);
}

Test(rpc, a_handler_failure_reaches_the_caller_with_status_and_message)
{
	Noetl__EchoReply *r = NULL;
	char *err = NULL;
	cr_assert_eq(echo_call(client, "x", 0, 2000, NOETL__STATUS__NOT_FOUND, &r, &err),
	             NOETL__STATUS__NOT_FOUND);
	cr_assert_not_null(strstr(err, "NOT_FOUND"), "message was: %s", err);
	free(err);
}

struct worker_arg {
	int id;
	int calls;
	int ok;
};

static void *hammer(void *p)
{
	struct worker_arg *a = p;
	for (int i = 0; i < a->calls; i++) {
		char data[64];
		snprintf(data, sizeof(data), "thread %d call %d", a->id, i);
		Noetl__EchoReply *r = NULL;
		if (echo_call(client, data, 0, 5000, 0, &r, NULL) == 0) {
			if (r->data.len == strlen(data) &&
			    memcmp(r->data.data, data, r->data.len) == 0)
				a->ok++;
			noetl__echo_reply__free_unpacked(r, NULL);
		}
	}
	return NULL;
}

static void many_threads(void)
{
	enum { THREADS = 8, CALLS = 250 };
	pthread_t t[THREADS];
	struct worker_arg a[THREADS];
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct worker_arg){.id = i, .calls = CALLS};
		pthread_create(&t[i], NULL, hammer, &a[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].ok, CALLS, "thread %d: %d of %d calls got their own answer", i,
		             a[i].ok, CALLS);
	}
}

Test(rpc, many_concurrent_calls_from_several_threads_each_get_their_own_answer)
{
	many_threads();
}

Test(rpc, many_concurrent_calls_over_tcp_each_get_their_own_answer)
{
	rpc_client_destroy(client);
	char tcp[64];
	snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", testutil_free_port());
	cr_assert_eq(rpc_server_listen(server, tcp), 0);
	cr_assert_eq(rpc_client_create(tcp, NULL, &client), 0);
	many_threads();
}

Test(rpc, a_call_past_its_deadline_fails_with_deadline_exceeded)
{
	Noetl__EchoReply *r = NULL;
	char *err = NULL;
	cr_assert_eq(echo_call(client, "slow", 600, 100, 0, &r, &err),
	             NOETL__STATUS__DEADLINE_EXCEEDED);
	cr_assert_not_null(strstr(err, "deadline"), "message was: %s", err);
	free(err);
	/* the server is still fine afterwards */
	cr_assert_eq(echo_call(client, "fast", 0, 2000, 0, &r, NULL), 0);
	noetl__echo_reply__free_unpacked(r, NULL);
}

Test(rpc, an_unknown_service_answers_unimplemented)
{
	Noetl__StatsRequest req = NOETL__STATS_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = rpc_call(client, &noetl__queue__descriptor, "Stats", &req.base, NULL, &out, &err);
	cr_assert_eq(st, NOETL__STATUS__UNIMPLEMENTED);
	cr_assert_not_null(strstr(err, "noetl.Queue"), "message was: %s", err);
	free(err);
}

/* Sends raw bytes as a request and decodes the reply envelope. */
static Noetl__Reply *raw_call(const void *bytes, size_t len)
{
	nng_socket s;
	cr_assert_eq(nng_req0_open(&s), 0);
	cr_assert_eq(nng_dial(s, url, NULL, 0), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	cr_assert_eq(nng_send(s, (void *)bytes, len, 0), 0);
	nng_msg *m;
	cr_assert_eq(nng_recvmsg(s, &m, 0), 0);
	Noetl__Reply *r = noetl__reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	nng_close(s);
	cr_assert_not_null(r, "the server's reply must decode");
	return r;
}

static size_t pack_request(const char *method, const void *body, size_t blen, uint8_t *buf)
{
	Noetl__Request env = NOETL__REQUEST__INIT;
	env.service = "noetl.Echo";
	env.method = (char *)method;
	env.body.data = (uint8_t *)body;
	env.body.len = blen;
	return noetl__request__pack(&env, buf);
}

Test(rpc, an_unknown_method_answers_unimplemented)
{
	uint8_t buf[256];
	size_t n = pack_request("Nope", NULL, 0, buf);
	Noetl__Reply *r = raw_call(buf, n);
	cr_assert_eq(r->status, NOETL__STATUS__UNIMPLEMENTED);
	cr_assert_not_null(strstr(r->message, "'Nope'"), "message was: %s", r->message);
	noetl__reply__free_unpacked(r, NULL);
}

Test(rpc, garbage_and_truncated_envelopes_answer_invalid_argument)
{
	uint8_t garbage[64];
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(0xff - i * 7);
	Noetl__Reply *r = raw_call(garbage, sizeof(garbage));
	cr_assert_eq(r->status, NOETL__STATUS__INVALID_ARGUMENT);
	noetl__reply__free_unpacked(r, NULL);

	uint8_t buf[256];
	size_t n = pack_request("Echo", "\x0a\x05hello", 7, buf);
	for (size_t cut = 1; cut < n; cut += 3) {
		r = raw_call(buf, n - cut);
		cr_assert_neq(r->status, NOETL__STATUS__OK, "a request cut by %zu bytes", cut);
		noetl__reply__free_unpacked(r, NULL);
	}

	/* a whole envelope whose body is not an EchoRequest */
	n = pack_request("Echo", "\xff\xff\xff\xff", 4, buf);
	r = raw_call(buf, n);
	cr_assert_eq(r->status, NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert_not_null(strstr(r->message, "does not decode"), "message was: %s", r->message);
	noetl__reply__free_unpacked(r, NULL);
}

Test(rpc, an_oversized_request_is_refused_and_the_server_keeps_serving)
{
	rpc_client_destroy(client);
	rpc_server_destroy(server);
	start_server(url, 64 * 1024);
	cr_assert_eq(rpc_client_create(url, NULL, &client), 0);

	size_t big = 100 * 1024;
	char *data = malloc(big + 1);
	memset(data, 'x', big);
	data[big] = '\0';
	Noetl__EchoReply *r = NULL;
	char *err = NULL;
	cr_assert_eq(echo_call(client, data, 0, 3000, 0, &r, &err),
	             NOETL__STATUS__RESOURCE_EXHAUSTED);
	cr_assert_not_null(strstr(err, "limit"), "message was: %s", err);
	free(err);
	err = NULL;

	/* a client with a small limit refuses to send at all */
	struct rpc_client *small;
	struct rpc_client_options o = {.max_msg = 1024};
	cr_assert_eq(rpc_client_create(url, &o, &small), 0);
	cr_assert_eq(echo_call(small, data, 0, 3000, 0, &r, &err),
	             NOETL__STATUS__RESOURCE_EXHAUSTED);
	free(err);
	rpc_client_destroy(small);
	free(data);

	cr_assert_eq(echo_call(client, "still here", 0, 3000, 0, &r, NULL), 0);
	noetl__echo_reply__free_unpacked(r, NULL);
}

Test(rpc, a_call_with_no_server_running_fails_with_unavailable)
{
	char nowhere[300];
	snprintf(nowhere, sizeof(nowhere), "ipc://%s/nobody.sock", dir);
	struct rpc_client *c;
	struct rpc_client_options o = {.connect_wait_ms = 200};
	cr_assert_eq(rpc_client_create(nowhere, &o, &c), 0);
	Noetl__EchoReply *r = NULL;
	char *err = NULL;
	cr_assert_eq(echo_call(c, "x", 0, 5000, 0, &r, &err), NOETL__STATUS__UNAVAILABLE);
	cr_assert_not_null(strstr(err, "cannot reach"), "message was: %s", err);
	free(err);
	rpc_client_destroy(c);
}

Test(rpc, a_client_keeps_working_across_a_server_kill_and_restart)
{
	char bin[512], purl[300];
	testutil_build_path("tests/support/echo_server", bin, sizeof(bin));
	snprintf(purl, sizeof(purl), "ipc://%s/proc.sock", dir);
	char *argv[] = {bin, purl, NULL};
	pid_t pid = testutil_spawn(argv, NULL);
	struct rpc_client *c;
	struct rpc_client_options o = {.connect_wait_ms = 3000};
	cr_assert_eq(rpc_client_create(purl, &o, &c), 0);
	Noetl__EchoReply *r = NULL;
	cr_assert_eq(echo_call(c, "before", 0, 5000, 0, &r, NULL), 0);
	noetl__echo_reply__free_unpacked(r, NULL);

	testutil_kill(pid, SIGKILL);
	char *err = NULL;
	int st = echo_call(c, "while down", 0, 300, 0, &r, &err);
	cr_assert(st == NOETL__STATUS__UNAVAILABLE || st == NOETL__STATUS__DEADLINE_EXCEEDED,
	          "status %s", rpc_status_name(st));
	free(err);

	pid = testutil_spawn(argv, NULL);
	int ok = 0;
	for (int i = 0; i < 100 && ok < 10; i++) {
		if (echo_call(c, "after", 0, 1000, 0, &r, NULL) == 0) {
			ok++;
			noetl__echo_reply__free_unpacked(r, NULL);
		}
	}
	cr_assert_eq(ok, 10, "calls after the restart must succeed");
	rpc_client_destroy(c);
	testutil_kill(pid, SIGKILL);
}

static atomic_bool calling;
static atomic_long answered;

/* Calls the server at url until told to stop, whether it is up or not. */
static void *caller(void *arg)
{
	struct rpc_client *c = arg;
	while (atomic_load(&calling)) {
		Noetl__EchoReply *r = NULL;
		if (echo_call(c, "flood", 0, 50, 0, &r, NULL) == 0) {
			noetl__echo_reply__free_unpacked(r, NULL);
			atomic_fetch_add(&answered, 1);
		}
	}
	return NULL;
}

/* nng 1.5.2 hung closing a socket while a message arrived on it (see
 * rpc_nng_close): servers go away and come back under a flood of calls. */
Test(rpc, servers_close_while_clients_flood_them_with_calls, .timeout = 240)
{
	rpc_server_destroy(server);
	server = NULL;
	enum { CALLERS = 3 };
	struct rpc_client *c[CALLERS];
	pthread_t t[CALLERS];
	atomic_store(&calling, true);
	for (int i = 0; i < CALLERS; i++) {
		cr_assert_eq(rpc_client_create(url, NULL, &c[i]), 0);
		cr_assert_eq(pthread_create(&t[i], NULL, caller, c[i]), 0);
	}
	for (int round = 0; round < 250; round++) {
		start_server(url, 0);
		/* closed while the callers are connected and calling */
		long from = atomic_load(&answered);
		for (int i = 0; i < 5000 && atomic_load(&answered) < from + 1 + round % 20; i++)
			util_sleep_ms(1);
		rpc_server_destroy(server);
	}
	server = NULL;
	atomic_store(&calling, false);
	for (int i = 0; i < CALLERS; i++) {
		pthread_join(t[i], NULL);
		rpc_client_destroy(c[i]);
	}
	start_server(url, 0); /* for the teardown, and it still serves */
	/* A fresh client: the setup's own one, idle through the rounds, once
	 * did not reconnect at all in CI (ASan build; see the session notes). */
	struct rpc_client *fresh;
	struct rpc_client_options fo = {.connect_wait_ms = 5000};
	cr_assert_eq(rpc_client_create(url, &fo, &fresh), 0);
	Noetl__EchoReply *r = NULL;
	char *err = NULL;
	int st = echo_call(fresh, "after", 0, 10000, 0, &r, &err);
	cr_assert_eq(st, 0, "%s: %s", rpc_status_name(st), err != NULL ? err : "");
	rpc_client_destroy(fresh);
	noetl__echo_reply__free_unpacked(r, NULL);
}

Test(rpc, tls_over_tcp_carries_calls_with_a_verified_certificate)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/cert.pem "
	         "-subj /CN=localhost -days 1 -addext subjectAltName=DNS:localhost 2>&1",
	         dir, dir);
	char *out = NULL;
	int rc = testutil_run(cmd, &out);
	cr_assert_eq(rc, 0, "openssl failed: %s", out);
	free(out);
	char cert[300], key[300], turl[80];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(turl, sizeof(turl), "tls+tcp://127.0.0.1:%d", testutil_free_port());

	struct rpc_server *ts;
	struct rpc_server_options so = {.workers = 2, .tls = {.cert_file = cert, .key_file = key}};
	cr_assert_eq(rpc_server_create(&so, &ts), 0);
	cr_assert_eq(rpc_server_add(ts, &echo.svc.base), 0);
	cr_assert_eq(rpc_server_listen(ts, turl), 0);
	cr_assert_eq(rpc_server_start(ts), 0);

	struct rpc_client *tc;
	struct rpc_client_options co = {.tls = {.ca_file = cert, .server_name = "localhost"}};
	cr_assert_eq(rpc_client_create(turl, &co, &tc), 0);
	Noetl__EchoReply *r = NULL;
	char *err = NULL;
	int st = echo_call(tc, "secret", 0, 5000, 0, &r, &err);
	cr_assert_eq(st, 0, "tls call failed: %s", err ? err : "");
	cr_assert_eq(memcmp(r->data.data, "secret", 6), 0);
	noetl__echo_reply__free_unpacked(r, NULL);
	rpc_client_destroy(tc);
	rpc_server_destroy(ts);
}

Test(rpc, invoke_local_runs_a_handler_without_sockets)
{
	Noetl__EchoRequest req = NOETL__ECHO_REQUEST__INIT;
	req.data.data = (uint8_t *)"abc";
	req.data.len = 3;
	Noetl__Metadata md = NOETL__METADATA__INIT;
	md.tenant = "t1";
	ProtobufCMessage *out = NULL;
	cr_assert_eq(rpc_invoke_local(&echo.svc.base, "Echo", &req.base, &md, &out, NULL), 0);
	Noetl__EchoReply *r = (Noetl__EchoReply *)out;
	cr_assert_str_eq(r->tenant, "t1");
	cr_assert_eq(r->data.len, 3);
	protobuf_c_message_free_unpacked(out, NULL);

	req.fail = NOETL__STATUS__PERMISSION_DENIED;
	char *err = NULL;
	cr_assert_eq(rpc_invoke_local(&echo.svc.base, "Echo", &req.base, NULL, &out, &err),
	             NOETL__STATUS__PERMISSION_DENIED);
	free(err);
}

struct slow_call {
	int status;
	Noetl__EchoReply *reply;
};

static void *call_slowly(void *arg)
{
	struct slow_call *sc = arg;
	sc->status = echo_call(client, "slow", 400, 5000, 0, &sc->reply, NULL);
	return NULL;
}

Test(rpc, destroying_a_server_while_a_handler_runs_lets_the_handler_reply)
{
	struct slow_call sc = {.status = -1};
	pthread_t t;
	pthread_create(&t, NULL, call_slowly, &sc);
	util_sleep_ms(100); /* the handler is sleeping now */
	rpc_server_destroy(server);
	server = NULL;
	pthread_join(t, NULL);
	cr_assert_eq(sc.status, 0, "the call in progress got its reply (status %s)",
	             rpc_status_name(sc.status));
	noetl__echo_reply__free_unpacked(sc.reply, NULL);
}

Test(rpc, clients_torn_down_while_connected_leave_nothing_behind)
{
	for (int i = 0; i < 30; i++) {
		struct rpc_client *c;
		cr_assert_eq(rpc_client_create(url, NULL, &c), 0);
		Noetl__EchoReply *r = NULL;
		cr_assert_eq(echo_call(c, "x", 0, 3000, 0, &r, NULL), 0);
		noetl__echo_reply__free_unpacked(r, NULL);
		rpc_client_destroy(c); /* with its pipe still up */
	}
}
