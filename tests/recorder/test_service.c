/*
 * The Recorder service over real sockets: an rpc server on ipc:// in front
 * of a recorder on a real RocksDB, called through an rpc client; followers
 * through stream_sub on the recorder's publisher.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "recorder.h"
#include "recorder.pb-c.h"
#include "recutil.h"
#include "rpc.h"
#include "stream.h"
#include "testrpc.h"
#include "testutil.h"
#include "util.h"

static char dir[256], rpc_url[300], pub_url[300];
static struct recorder *rec;
static struct rpc_server *server;
static struct rpc_client *client;

static void setup(void)
{
	log_setup("test", LOG_LEVEL_WARN, false);
	testutil_tempdir(dir, sizeof(dir));
	snprintf(rpc_url, sizeof(rpc_url), "ipc://%s/rpc.sock", dir);
	snprintf(pub_url, sizeof(pub_url), "ipc://%s/pub.sock", dir);
	char data[300];
	snprintf(data, sizeof(data), "%s/db", dir);
	struct recorder_config cfg = {
	        .data_dir = data,
	        .stream_url = pub_url,
	        .heartbeat_ms = 100,
	        .retain_every_ms = -1,
	        .max_text = 100,
	        .max_result = 10,
	        .max_records = 500,
	};
	cr_assert_eq(recorder_create(&cfg, &rec), 0);
	struct rpc_server_options so = {.workers = 8, .name = "recorder"};
	cr_assert_eq(rpc_server_create(&so, &server), 0);
	cr_assert_eq(rpc_server_add(server, recorder_service(rec)), 0);
	cr_assert_eq(rpc_server_listen(server, rpc_url), 0);
	cr_assert_eq(rpc_server_start(server), 0);
	cr_assert_eq(rpc_client_create(rpc_url, NULL, &client), 0);
}

static void teardown(void)
{
	rpc_client_destroy(client);
	rpc_server_destroy(server);
	recorder_destroy(rec);
	testutil_rmtree(dir);
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 120);

/* Calls method with the caller acting for tenant (NULL: a platform caller).
 * Returns the status; *out the reply on OK (the caller frees it), *msg the
 * error message (freed here unless msg is not NULL). */
static int call(const char *method, const ProtobufCMessage *in, const char *tenant,
                ProtobufCMessage **out, char **msg)
{
	struct rpc_call_options o = {.tenant = tenant};
	return testrpc_call(client, &noetl__recorder__descriptor, method, in, &o, out, msg);
}

/* Sends recs[0..n) in one Record call (and frees them); returns the status
 * and the last revision in *rev. */
static int send(Noetl__Record **recs, size_t n, const char *tenant, uint64_t *rev, char **msg)
{
	Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
	req.records = recs;
	req.n_records = n;
	ProtobufCMessage *out = NULL;
	int st = call("Record", &req.base, tenant, &out, msg);
	if (st == 0 && rev != NULL)
		*rev = ((Noetl__RecordReply *)out)->revision;
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	recutil_free(recs, n);
	return st;
}

static uint64_t send_ok(Noetl__Record **recs, size_t n)
{
	uint64_t rev = 0;
	char *msg = NULL;
	int st = send(recs, n, NULL, &rev, &msg);
	cr_assert_eq(st, 0, "Record: %s %s", rpc_status_name(st), msg ? msg : "");
	free(msg);
	return rev;
}

static uint64_t send1(Noetl__Record *r)
{
	return send_ok(&r, 1);
}

static Noetl__ExecutionsReply *query_execs(Noetl__ExecutionQuery *q, const char *caller)
{
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	int st = call("QueryExecutions", &q->base, caller, &out, &msg);
	cr_assert_eq(st, 0, "QueryExecutions: %s %s", rpc_status_name(st), msg ? msg : "");
	return (Noetl__ExecutionsReply *)out;
}

static Noetl__LogsReply *query_logs(Noetl__LogQuery *q, const char *caller)
{
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	int st = call("QueryLogs", &q->base, caller, &out, &msg);
	cr_assert_eq(st, 0, "QueryLogs: %s %s", rpc_status_name(st), msg ? msg : "");
	return (Noetl__LogsReply *)out;
}

static void freem(void *m)
{
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(service, records_sent_over_the_socket_are_found_by_tenant_event_and_status)
{
	int64_t now = util_now_ms();
	Noetl__Record *recs[] = {
	        recutil_exec("acme", "ev1", 1, now - 3000, NOETL__EXEC_STATUS__EXEC_ERROR),
	        recutil_exec("acme", "ev1", 2, now - 2000, NOETL__EXEC_STATUS__EXEC_DEAD),
	        recutil_exec("acme", "ev2", 1, now - 1000, NOETL__EXEC_STATUS__EXEC_OK),
	        recutil_log("acme", "ev1", NOETL__LOG_LEVEL__LOG_ERROR, now - 2500, "boom"),
	};
	cr_assert_eq(send_ok(recs, 4), 4);

	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.tenant = "acme";
	Noetl__ExecutionsReply *r = query_execs(&q, NULL);
	cr_assert_eq(r->n_executions, 3);
	cr_assert_str_eq(r->executions[0]->event_id, "ev2");
	cr_assert_eq(r->revision, 4);
	freem(r);

	q.only_dead = true;
	r = query_execs(&q, NULL);
	cr_assert_eq(r->n_executions, 1);
	cr_assert_eq(r->executions[0]->attempt, 2);
	freem(r);

	/* by event id alone: the tenant is found from the event */
	Noetl__ExecutionQuery qe = NOETL__EXECUTION_QUERY__INIT;
	qe.event_id = "ev1";
	r = query_execs(&qe, NULL);
	cr_assert_eq(r->n_executions, 2);
	freem(r);

	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	lq.tenant = "acme";
	lq.event_id = "ev1";
	Noetl__LogsReply *l = query_logs(&lq, NULL);
	cr_assert_eq(l->n_lines, 1);
	cr_assert_str_eq(l->lines[0]->text, "boom");
	freem(l);

	ProtobufCMessage *out = NULL;
	Noetl__Empty e = NOETL__EMPTY__INIT;
	cr_assert_eq(call("GetHealth", &e.base, NULL, &out, NULL), 0);
	Noetl__Health *h = (Noetl__Health *)out;
	cr_assert_str_eq(h->service, "recorder");
	cr_assert(h->ready);
	cr_assert_eq(h->revision, 4);
	freem(h);
}

Test(service, a_record_without_a_tenant_is_refused_and_nothing_of_its_batch_is_stored)
{
	int64_t now = util_now_ms();
	Noetl__Record *recs[] = {
	        recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, now, "fine"),
	        recutil_log("", NULL, NOETL__LOG_LEVEL__LOG_INFO, now, "whose?"),
	};
	char *msg = NULL;
	cr_assert_eq(send(recs, 2, NULL, NULL, &msg), NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert(strstr(msg, "record 1") != NULL && strstr(msg, "tenant") != NULL, "%s", msg);
	free(msg);
	cr_assert_eq(recorder_revision(rec), 0, "the batch is all or nothing");
}

Test(service, garbage_records_are_refused_with_a_message_naming_the_record_and_field)
{
	int64_t now = util_now_ms();
	struct {
		Noetl__Record *r;
		const char *says;
	} cases[] = {
	        {recutil_log("acme", NULL, (Noetl__LogLevel)9, now, "x"), "level"},
	        {recutil_log("ac me", NULL, NOETL__LOG_LEVEL__LOG_INFO, now, "x"), "tenant"},
	        {recutil_log("acme", "../etc", NOETL__LOG_LEVEL__LOG_INFO, now, "x"), "event_id"},
	        {recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, -5, "x"), "time_ms"},
	        {recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, now + 7LL * 86400000, "x"),
	         "future"},
	        {recutil_exec("acme", "e", 0, now, NOETL__EXEC_STATUS__EXEC_OK), "attempt"},
	        {recutil_exec("acme", "", 1, now, NOETL__EXEC_STATUS__EXEC_OK), "event_id"},
	        {recutil_exec("acme", "e", 1, now, (Noetl__ExecStatus)42), "status"},
	        {recutil_exec("acme", "e", 1, now, NOETL__EXEC_STATUS__EXEC_OK), "leased_ms"},
	        {recutil_exec("acme", "e", 1, now, NOETL__EXEC_STATUS__EXEC_OK), "retry_at_ms"},
	        {recutil_exec("acme", "e", 1, now, NOETL__EXEC_STATUS__EXEC_OK), "outcome"},
	        {recutil_timeline("acme", "e", NOETL__TIMELINE_KIND__TL_ROUTED, now, NULL),
	         "related_id"},
	        {recutil_timeline("acme", "e", NOETL__TIMELINE_KIND__TL_ROUTED, now, "e"),
	         "itself"},
	        {recutil_timeline("acme", "e", (Noetl__TimelineKind)77, now, NULL), "kind"},
	};
	/* how an execution was settled: an outcome that is none, times before 1970 */
	size_t nc = sizeof(cases) / sizeof(cases[0]);
	for (size_t i = 0; i < nc; i++) {
		Noetl__Execution *x = cases[i].r->execution;
		if (strcmp(cases[i].says, "leased_ms") == 0)
			x->leased_ms = -3;
		else if (strcmp(cases[i].says, "retry_at_ms") == 0)
			x->retry_at_ms = -1;
		else if (strcmp(cases[i].says, "outcome") == 0)
			x->outcome = (Noetl__ExecOutcome)7;
	}
	for (size_t i = 0; i < nc; i++) {
		char *msg = NULL;
		int st = send(&cases[i].r, 1, NULL, NULL, &msg);
		cr_assert_eq(st, NOETL__STATUS__INVALID_ARGUMENT, "case %zu: %s", i,
		             rpc_status_name(st));
		cr_assert(strstr(msg, "record 0") != NULL && strstr(msg, cases[i].says) != NULL,
		          "case %zu: %s", i, msg);
		free(msg);
	}
	/* an empty record and an empty request */
	Noetl__Record empty = NOETL__RECORD__INIT;
	Noetl__Record *pe = &empty;
	Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
	req.records = &pe;
	req.n_records = 1;
	cr_assert_eq(call("Record", &req.base, NULL, NULL, NULL), NOETL__STATUS__INVALID_ARGUMENT);
	req.n_records = 0;
	cr_assert_eq(call("Record", &req.base, NULL, NULL, NULL), NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert_eq(recorder_revision(rec), 0);

	/* garbage queries */
	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	cr_assert_eq(call("QueryLogs", &lq.base, NULL, NULL, NULL), NOETL__STATUS__INVALID_ARGUMENT,
	             "logs without a tenant");
	lq.tenant = "acme";
	lq.min_level = (Noetl__LogLevel)8;
	cr_assert_eq(call("QueryLogs", &lq.base, NULL, NULL, NULL),
	             NOETL__STATUS__INVALID_ARGUMENT);
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	cr_assert_eq(call("QueryExecutions", &q.base, NULL, NULL, NULL),
	             NOETL__STATUS__INVALID_ARGUMENT, "executions without tenant, event or all");
	q.tenant = "acme";
	q.from_ms = -1;
	cr_assert_eq(call("QueryExecutions", &q.base, NULL, NULL, NULL),
	             NOETL__STATUS__INVALID_ARGUMENT);
	Noetl__TimelineRequest tr = NOETL__TIMELINE_REQUEST__INIT;
	tr.tenant = "acme";
	cr_assert_eq(call("Timeline", &tr.base, NULL, NULL, NULL), NOETL__STATUS__INVALID_ARGUMENT);
	tr.event_id = "nope";
	cr_assert_eq(call("Timeline", &tr.base, NULL, NULL, NULL), NOETL__STATUS__NOT_FOUND);
}

Test(service, oversized_text_and_results_are_cut_and_flagged)
{
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* a multi-byte character across the cut must not be split */
	memcpy(big + 99, "\xc3\xa9", 2);
	Noetl__Record *recs[] = {
	        recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, util_now_ms(), big),
	        recutil_exec("acme", "e", 1, util_now_ms(), NOETL__EXEC_STATUS__EXEC_OK),
	};
	send_ok(recs, 2);
	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	lq.tenant = "acme";
	Noetl__LogsReply *l = query_logs(&lq, NULL);
	cr_assert_eq(l->n_lines, 1);
	cr_assert_eq(strlen(l->lines[0]->text), 99, "cut before the 2-byte character at 99");
	cr_assert(l->lines[0]->truncated);
	freem(l);
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.tenant = "acme";
	Noetl__ExecutionsReply *r = query_execs(&q, NULL);
	cr_assert_eq(r->executions[0]->result.len, 10);
	cr_assert(r->executions[0]->result_truncated);
	freem(r);
}

Test(service, a_batch_over_the_record_limit_is_refused)
{
	Noetl__Record *recs[501];
	for (int i = 0; i < 501; i++)
		recs[i] = recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, util_now_ms(), "x");
	char *msg = NULL;
	cr_assert_eq(send(recs, 501, NULL, NULL, &msg), NOETL__STATUS__INVALID_ARGUMENT);
	cr_assert(strstr(msg, "split") != NULL, "%s", msg);
	free(msg);
}

Test(service, a_caller_acting_for_one_tenant_cannot_write_read_or_follow_another)
{
	send1(recutil_log("beta", NULL, NOETL__LOG_LEVEL__LOG_INFO, util_now_ms(), "beta's"));
	Noetl__Record *r = recutil_log("beta", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, "forged");
	cr_assert_eq(send(&r, 1, "acme", NULL, NULL), NOETL__STATUS__PERMISSION_DENIED);
	r = recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, "own");
	cr_assert_eq(send(&r, 1, "acme", NULL, NULL), 0);

	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	lq.tenant = "beta";
	cr_assert_eq(call("QueryLogs", &lq.base, "acme", NULL, NULL),
	             NOETL__STATUS__PERMISSION_DENIED);
	lq.tenant = ""; /* the caller's own tenant */
	Noetl__LogsReply *l = query_logs(&lq, "acme");
	cr_assert_eq(l->n_lines, 1);
	cr_assert_str_eq(l->lines[0]->text, "own");
	freem(l);

	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.all_tenants = true;
	cr_assert_eq(call("QueryExecutions", &q.base, "acme", NULL, NULL),
	             NOETL__STATUS__PERMISSION_DENIED);

	Noetl__ChangesRequest cq = NOETL__CHANGES_REQUEST__INIT;
	cq.topic = "beta";
	cr_assert_eq(call("Changes", &cq.base, "acme", NULL, NULL),
	             NOETL__STATUS__PERMISSION_DENIED);
	cq.topic = ""; /* every topic, asked by a tenant: its own only */
	ProtobufCMessage *out = NULL;
	cr_assert_eq(call("Changes", &cq.base, "acme", &out, NULL), 0);
	Noetl__ChangesReply *cr = (Noetl__ChangesReply *)out;
	cr_assert_eq(cr->n_changes, 1);
	cr_assert_str_eq(cr->changes[0]->topic, "acme");
	freem(cr);

	Noetl__Retention ret = NOETL__RETENTION__INIT;
	ret.tenant = "beta";
	ret.max_bytes = 1;
	cr_assert_eq(call("SetRetention", &ret.base, "acme", NULL, NULL),
	             NOETL__STATUS__PERMISSION_DENIED);
}

Test(service, tenant_a_never_sees_tenant_b_in_queries_timelines_or_changes)
{
	int64_t now = util_now_ms();
	/* the same event id in both tenants, interleaved */
	for (int i = 0; i < 20; i++) {
		const char *t = i % 2 ? "beta" : "acme";
		Noetl__Record *recs[] = {
		        recutil_exec(t, "shared", (uint32_t)i + 1, now - 100 + i,
		                     NOETL__EXEC_STATUS__EXEC_FAILED),
		        recutil_log(t, "shared", NOETL__LOG_LEVEL__LOG_INFO, now - 100 + i, t),
		        recutil_timeline(t, "shared", NOETL__TIMELINE_KIND__TL_LEASED,
		                         now - 100 + i, NULL),
		};
		send_ok(recs, 3);
	}
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.tenant = "acme";
	q.only_failed = true;
	Noetl__ExecutionsReply *r = query_execs(&q, NULL);
	cr_assert_eq(r->n_executions, 10);
	for (size_t i = 0; i < r->n_executions; i++)
		cr_assert_str_eq(r->executions[i]->tenant, "acme");
	freem(r);
	q.event_id = "shared";
	r = query_execs(&q, "acme");
	cr_assert_eq(r->n_executions, 10);
	for (size_t i = 0; i < r->n_executions; i++)
		cr_assert_str_eq(r->executions[i]->tenant, "acme");
	freem(r);

	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	lq.tenant = "acme";
	lq.event_id = "shared";
	Noetl__LogsReply *l = query_logs(&lq, NULL);
	cr_assert_eq(l->n_lines, 10);
	for (size_t i = 0; i < l->n_lines; i++)
		cr_assert_str_eq(l->lines[i]->text, "acme");
	freem(l);

	Noetl__TimelineRequest tr = NOETL__TIMELINE_REQUEST__INIT;
	tr.event_id = "shared";
	char *msg = NULL;
	cr_assert_eq(call("Timeline", &tr.base, NULL, NULL, &msg),
	             NOETL__STATUS__FAILED_PRECONDITION, "ambiguous without a tenant");
	cr_assert(strstr(msg, "name the tenant") != NULL, "%s", msg);
	free(msg);
	ProtobufCMessage *out = NULL;
	cr_assert_eq(call("Timeline", &tr.base, "beta", &out, NULL), 0);
	Noetl__TimelineReply *t = (Noetl__TimelineReply *)out;
	cr_assert_str_eq(t->tenant, "beta");
	for (size_t i = 0; i < t->n_entries; i++)
		cr_assert_str_eq(t->entries[i]->tenant, "beta");
	cr_assert_eq(t->n_entries, 20, "10 leased + 10 attempts made from executions");
	freem(t);

	Noetl__ChangesRequest cq = NOETL__CHANGES_REQUEST__INIT;
	cq.topic = "acme";
	cr_assert_eq(call("Changes", &cq.base, NULL, &out, NULL), 0);
	Noetl__ChangesReply *cr = (Noetl__ChangesReply *)out;
	cr_assert_eq(cr->n_changes, 30);
	for (size_t i = 0; i < cr->n_changes; i++) {
		Noetl__Record *rec1 = noetl__record__unpack(NULL, cr->changes[i]->body.len,
		                                            cr->changes[i]->body.data);
		cr_assert_not_null(rec1);
		const char *tenant = rec1->kind_case == NOETL__RECORD__KIND_LOG ? rec1->log->tenant
		                     : rec1->kind_case == NOETL__RECORD__KIND_EXECUTION
		                             ? rec1->execution->tenant
		                             : rec1->timeline->tenant;
		cr_assert_str_eq(tenant, "acme");
		cr_assert_str_eq(cr->changes[i]->topic, "acme");
		cr_assert_eq(rec1->revision, cr->changes[i]->revision);
		noetl__record__free_unpacked(rec1, NULL);
	}
	freem(cr);
}

/* A follower that keeps what it was given. */
struct follower {
	pthread_mutex_t mu;
	size_t n;
	uint64_t revs[256];
	char texts[256][64];
	char tenants[256][16];
};

static int follow_apply(void *arg, const Noetl__Change *chg)
{
	struct follower *f = arg;
	Noetl__Record *r = noetl__record__unpack(NULL, chg->body.len, chg->body.data);
	if (r == NULL)
		return -1;
	pthread_mutex_lock(&f->mu);
	if (f->n < 256) {
		f->revs[f->n] = chg->revision;
		const char *text = "", *tenant = "";
		if (r->kind_case == NOETL__RECORD__KIND_LOG) {
			text = r->log->text;
			tenant = r->log->tenant;
		} else if (r->kind_case == NOETL__RECORD__KIND_EXECUTION) {
			text = r->execution->event_id;
			tenant = r->execution->tenant;
		}
		snprintf(f->texts[f->n], sizeof(f->texts[0]), "%s", text);
		snprintf(f->tenants[f->n], sizeof(f->tenants[0]), "%s", tenant);
		f->n++;
	}
	pthread_mutex_unlock(&f->mu);
	noetl__record__free_unpacked(r, NULL);
	return 0;
}

Test(service, a_follower_of_one_tenant_gets_its_records_and_none_of_another_tenants)
{
	struct follower *f = calloc(1, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	struct stream_sub_options so = {.topic = "acme", .heartbeat_timeout_ms = 500};
	struct stream_sub *sub = NULL;
	cr_assert_eq(stream_sub_create(client, &noetl__recorder__descriptor, pub_url, &so,
	                               follow_apply, f, &sub),
	             0);
	uint64_t last_acme = 0;
	for (int i = 0; i < 60; i++) {
		const char *t = i % 3 == 0 ? "acme" : "beta";
		char text[32];
		snprintf(text, sizeof(text), "%s %d", t, i);
		uint64_t rev = send1(recutil_log(t, NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, text));
		if (i % 3 == 0)
			last_acme = rev;
	}
	cr_assert(stream_sub_wait(sub, last_acme, 20000));
	stream_sub_destroy(sub);
	cr_assert_eq(f->n, 20);
	for (size_t i = 0; i < f->n; i++) {
		cr_assert_str_eq(f->tenants[i], "acme");
		char want[32];
		snprintf(want, sizeof(want), "acme %zu", i * 3);
		cr_assert_str_eq(f->texts[i], want, "in order");
		if (i > 0)
			cr_assert_gt(f->revs[i], f->revs[i - 1]);
	}
	pthread_mutex_destroy(&f->mu);
	free(f);
}

Test(service, a_log_line_from_an_external_worker_is_stored_and_streamed_like_a_guest_log)
{
	struct follower *f = calloc(1, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	struct stream_sub_options so = {.topic = "acme", .heartbeat_timeout_ms = 500};
	struct stream_sub *sub = NULL;
	cr_assert_eq(stream_sub_create(client, &noetl__recorder__descriptor, pub_url, &so,
	                               follow_apply, f, &sub),
	             0);
	/* the worker acts for its tenant, without an event or attempt */
	Noetl__Record *r =
	        recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_WARN, 0, "disk 91% full");
	free(r->log->source);
	r->log->source = util_xstrdup("billing-worker");
	r->log->attempt = 0;
	uint64_t rev = 0;
	cr_assert_eq(send(&r, 1, "acme", &rev, NULL), 0);
	cr_assert(stream_sub_wait(sub, rev, 20000));
	stream_sub_destroy(sub);
	cr_assert_eq(f->n, 1);
	cr_assert_str_eq(f->texts[0], "disk 91% full");
	pthread_mutex_destroy(&f->mu);
	free(f);

	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	lq.min_level = NOETL__LOG_LEVEL__LOG_WARN;
	Noetl__LogsReply *l = query_logs(&lq, "acme");
	cr_assert_eq(l->n_lines, 1);
	cr_assert_str_eq(l->lines[0]->source, "billing-worker");
	cr_assert_str_eq(l->lines[0]->event_id, "");
	cr_assert_gt(l->lines[0]->time_ms, 0, "a zero time became the time it arrived");
	freem(l);
}

Test(service, the_timeline_rpc_returns_a_chain_linked_both_ways)
{
	int64_t now = util_now_ms() - 10000;
	Noetl__Record *recs[] = {
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_RECEIVED, now, NULL),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_ACCEPTED, now + 1, NULL),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_LEASED, now + 2, NULL),
	        recutil_exec("acme", "root", 1, now + 3, NOETL__EXEC_STATUS__EXEC_ERROR),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_RETRIED, now + 9, NULL),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_LEASED, now + 20, NULL),
	        recutil_exec("acme", "root", 2, now + 21, NOETL__EXEC_STATUS__EXEC_OK),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_ROUTED, now + 30, "kid"),
	        recutil_timeline("acme", "root", NOETL__TIMELINE_KIND__TL_DONE, now + 31, NULL),
	        recutil_timeline("acme", "kid", NOETL__TIMELINE_KIND__TL_CAUSED_BY, now + 30,
	                         "root"),
	        recutil_timeline("acme", "kid", NOETL__TIMELINE_KIND__TL_ACCEPTED, now + 30, NULL),
	        recutil_timeline("acme", "kid", NOETL__TIMELINE_KIND__TL_ROUTED, now + 50,
	                         "grandkid"),
	        recutil_timeline("acme", "grandkid", NOETL__TIMELINE_KIND__TL_DEAD, now + 90, NULL),
	        recutil_timeline("acme", "grandkid", NOETL__TIMELINE_KIND__TL_REPLAYED, now + 99,
	                         NULL),
	};
	send_ok(recs, sizeof(recs) / sizeof(recs[0]));

	Noetl__TimelineRequest tr = NOETL__TIMELINE_REQUEST__INIT;
	tr.event_id = "kid"; /* no tenant: found by the event id */
	ProtobufCMessage *out = NULL;
	cr_assert_eq(call("Timeline", &tr.base, NULL, &out, NULL), 0);
	Noetl__TimelineReply *t = (Noetl__TimelineReply *)out;
	cr_assert_str_eq(t->tenant, "acme");
	cr_assert_eq(t->n_parents, 1);
	cr_assert_str_eq(t->parents[0], "root");
	cr_assert_eq(t->n_children, 1);
	cr_assert_str_eq(t->children[0], "grandkid");
	freem(t);

	tr.event_id = "root";
	cr_assert_eq(call("Timeline", &tr.base, NULL, &out, NULL), 0);
	t = (Noetl__TimelineReply *)out;
	Noetl__TimelineKind want[] = {
	        NOETL__TIMELINE_KIND__TL_RECEIVED, NOETL__TIMELINE_KIND__TL_ACCEPTED,
	        NOETL__TIMELINE_KIND__TL_LEASED,   NOETL__TIMELINE_KIND__TL_ATTEMPT,
	        NOETL__TIMELINE_KIND__TL_RETRIED,  NOETL__TIMELINE_KIND__TL_LEASED,
	        NOETL__TIMELINE_KIND__TL_ATTEMPT,  NOETL__TIMELINE_KIND__TL_ROUTED,
	        NOETL__TIMELINE_KIND__TL_DONE,
	};
	cr_assert_eq(t->n_entries, 9);
	for (size_t i = 0; i < 9; i++)
		cr_assert_eq(t->entries[i]->kind, want[i], "entry %zu", i);
	cr_assert(strstr(t->entries[3]->detail, "error") != NULL, "%s", t->entries[3]->detail);
	cr_assert_eq(t->entries[6]->attempt, 2);
	cr_assert_str_eq(t->entries[7]->related_id, "kid");
	cr_assert_eq(t->n_children, 1);
	freem(t);

	tr.event_id = "grandkid";
	cr_assert_eq(call("Timeline", &tr.base, NULL, &out, NULL), 0);
	t = (Noetl__TimelineReply *)out;
	cr_assert_eq(t->n_parents, 1, "known only from kid's ROUTED entry");
	cr_assert_str_eq(t->parents[0], "kid");
	freem(t);
}

Test(service, retention_is_set_read_back_applied_and_reset)
{
	int64_t now = util_now_ms();
	for (int i = 0; i < 10; i++)
		send1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, now - 100000 + i,
		                  "old"));
	send1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, now, "new"));

	Noetl__Retention get = NOETL__RETENTION__INIT;
	get.tenant = "acme";
	ProtobufCMessage *out = NULL;
	cr_assert_eq(call("GetRetention", &get.base, NULL, &out, NULL), 0);
	Noetl__Retention *r = (Noetl__Retention *)out;
	cr_assert(r->use_default);
	cr_assert_eq(r->max_age_ms, 0, "this recorder has no default");
	cr_assert_eq(r->records, 11);
	freem(r);

	Noetl__Retention set = NOETL__RETENTION__INIT;
	set.tenant = "acme";
	set.max_age_ms = 50000;
	cr_assert_eq(call("SetRetention", &set.base, NULL, NULL, NULL), 0);
	set.max_age_ms = -1;
	cr_assert_eq(call("SetRetention", &set.base, NULL, NULL, NULL),
	             NOETL__STATUS__INVALID_ARGUMENT);

	uint64_t deleted = 0;
	cr_assert_eq(recorder_retain_now(rec, now, &deleted), 0);
	cr_assert_eq(deleted, 10);
	cr_assert_eq(call("GetRetention", &get.base, "acme", &out, NULL), 0);
	r = (Noetl__Retention *)out;
	cr_assert(!r->use_default);
	cr_assert_eq(r->max_age_ms, 50000);
	cr_assert_eq(r->records, 1);
	freem(r);
	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	lq.tenant = "acme";
	Noetl__LogsReply *l = query_logs(&lq, NULL);
	cr_assert_eq(l->n_lines, 1);
	cr_assert_str_eq(l->lines[0]->text, "new");
	freem(l);

	set.use_default = true;
	set.max_age_ms = 0;
	cr_assert_eq(call("SetRetention", &set.base, NULL, NULL, NULL), 0);
	cr_assert_eq(call("GetRetention", &get.base, NULL, &out, NULL), 0);
	r = (Noetl__Retention *)out;
	cr_assert(r->use_default);
	freem(r);
}

/* Sends calls of 10 records from one thread; keeps the revisions. */
struct sender {
	int id;
	uint64_t revs[50];
	int failures;
};

static void *send_many(void *arg)
{
	struct sender *s = arg;
	for (int c = 0; c < 50; c++) {
		Noetl__Record *recs[10];
		for (int i = 0; i < 10; i++) {
			char text[48];
			snprintf(text, sizeof(text), "%d/%d/%d", s->id, c, i);
			recs[i] = recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, text);
		}
		Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
		req.records = recs;
		req.n_records = 10;
		struct rpc_call_options o = {.timeout_ms = 30000};
		ProtobufCMessage *out = NULL;
		if (testrpc_call(client, &noetl__recorder__descriptor, "Record", &req.base, &o,
		                 &out, NULL) == 0) {
			s->revs[c] = ((Noetl__RecordReply *)out)->revision;
			protobuf_c_message_free_unpacked(out, NULL);
		} else {
			s->failures++;
		}
		recutil_free(recs, 10);
	}
	return NULL;
}

Test(service, concurrent_record_calls_each_get_their_records_stored_once_and_together)
{
	enum { THREADS = 8 };
	struct sender s[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].id = i;
		cr_assert_eq(pthread_create(&th[i], NULL, send_many, &s[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	/* every call got its own range of 10 consecutive revisions: the last
	 * revisions are distinct and 10 apart at least */
	uint64_t all[THREADS * 50];
	size_t n = 0;
	for (int i = 0; i < THREADS; i++) {
		cr_assert_eq(s[i].failures, 0);
		for (int c = 0; c < 50; c++)
			all[n++] = s[i].revs[c];
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			uint64_t d = all[i] > all[j] ? all[i] - all[j] : all[j] - all[i];
			cr_assert_geq(d, 10, "calls' revision ranges overlap");
		}
	cr_assert_eq(recorder_revision(rec), THREADS * 50 * 10);

	/* and each call's records sit together, in its order */
	for (int i = 0; i < THREADS; i += 3) {
		Noetl__ChangesRequest cq = NOETL__CHANGES_REQUEST__INIT;
		cq.since = s[i].revs[7] - 10;
		cq.limit = 10;
		ProtobufCMessage *out = NULL;
		cr_assert_eq(call("Changes", &cq.base, NULL, &out, NULL), 0);
		Noetl__ChangesReply *cr = (Noetl__ChangesReply *)out;
		cr_assert_eq(cr->n_changes, 10);
		for (size_t k = 0; k < 10; k++) {
			Noetl__Record *r1 = noetl__record__unpack(NULL, cr->changes[k]->body.len,
			                                          cr->changes[k]->body.data);
			char want[48];
			snprintf(want, sizeof(want), "%d/7/%zu", i, k);
			cr_assert_str_eq(r1->log->text, want);
			noetl__record__free_unpacked(r1, NULL);
		}
		freem(cr);
	}
}

Test(service, metrics_report_the_head_records_writes_and_each_tenants_usage)
{
	Noetl__Record *recs[] = {
	        recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, "a"),
	        recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, "b"),
	        recutil_log("beta", NULL, NOETL__LOG_LEVEL__LOG_INFO, 0, "c"),
	};
	send_ok(recs, 3);
	struct metrics *m;
	cr_assert_eq(metrics_create(0, &m), 0);
	cr_assert_eq(recorder_metrics(rec, m), 0);
	char *text;
	size_t len;
	cr_assert_eq(metrics_render(m, &text, &len), 0);
	cr_assert(strstr(text, "noetl_recorder_revision 3") != NULL, "%s", text);
	cr_assert(strstr(text, "noetl_recorder_records_total 3") != NULL, "%s", text);
	cr_assert(strstr(text, "noetl_recorder_synced_writes_total 1") != NULL, "%s", text);
	cr_assert(strstr(text, "noetl_recorder_tenant_records{tenant=\"acme\"} 2") != NULL, "%s",
	          text);
	cr_assert(strstr(text, "noetl_recorder_tenant_records{tenant=\"beta\"} 1") != NULL, "%s",
	          text);
	free(text);
	metrics_destroy(m);
}
