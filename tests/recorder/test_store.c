/*
 * The Recorder's store: queries, paging, timelines and retention, on a real
 * RocksDB in a temporary directory.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "kv.h"
#include "recutil.h"
#include "store.h"
#include "testutil.h"

#define T0 1700000000000LL /* a fixed base time, Unix ms */

static char dir[256];
static struct recorder_store *st;

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	cr_assert_eq(recorder_store_open(dir, NULL, &st), 0);
}

static void teardown(void)
{
	recorder_store_close(st);
	testutil_rmtree(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* Appends and frees recs[0..n). */
static uint64_t put(Noetl__Record **recs, size_t n)
{
	uint64_t last = 0;
	cr_assert_eq(recorder_store_append(st, recs, n, T0, &last), 0);
	recutil_free(recs, n);
	return last;
}

static uint64_t put1(Noetl__Record *r)
{
	return put(&r, 1);
}

static Noetl__ExecutionsReply *execs(Noetl__ExecutionQuery *q, const char *tenant)
{
	Noetl__ExecutionsReply *r = NULL;
	char *why = NULL;
	int rc = recorder_store_executions(st, q, tenant, &r, &why);
	cr_assert_eq(rc, 0, "executions: %d %s", rc, why ? why : "");
	return r;
}

static Noetl__LogsReply *logs(Noetl__LogQuery *q, const char *tenant)
{
	Noetl__LogsReply *r = NULL;
	char *why = NULL;
	int rc = recorder_store_logs(st, q, tenant, &r, &why);
	cr_assert_eq(rc, 0, "logs: %d %s", rc, why ? why : "");
	return r;
}

static void reply_free(void *m)
{
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(store, the_latest_executions_of_a_tenant_come_newest_first_and_page_with_cursors)
{
	Noetl__Record *recs[250];
	for (int i = 0; i < 250; i++) {
		char ev[32];
		snprintf(ev, sizeof(ev), "ev%03d", i);
		recs[i] = recutil_exec("acme", ev, 1, T0 + i, NOETL__EXEC_STATUS__EXEC_OK);
	}
	cr_assert_eq(put(recs, 250), 250);
	put1(recutil_exec("other", "x", 1, T0 + 1000, NOETL__EXEC_STATUS__EXEC_OK));

	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	Noetl__Page page = NOETL__PAGE__INIT;
	page.limit = 100;
	q.page = &page;
	int seen = 0;
	int64_t expect = T0 + 249;
	uint8_t cursor[64];
	for (int p = 0; p < 3; p++) {
		Noetl__ExecutionsReply *r = execs(&q, "acme");
		cr_assert_eq(r->revision, 251);
		for (size_t i = 0; i < r->n_executions; i++, seen++, expect--) {
			cr_assert_eq(r->executions[i]->start_ms, expect);
			cr_assert_str_eq(r->executions[i]->tenant, "acme");
		}
		if (p < 2) {
			cr_assert_eq(r->n_executions, 100);
			cr_assert_gt(r->next_cursor.len, 0);
			cr_assert_leq(r->next_cursor.len, sizeof(cursor));
			memcpy(cursor, r->next_cursor.data, r->next_cursor.len);
			page.cursor.data = cursor;
			page.cursor.len = r->next_cursor.len;
		} else {
			cr_assert_eq(r->n_executions, 50);
			cr_assert_eq(r->next_cursor.len, 0, "the last page has no cursor");
		}
		reply_free(r);
	}
	cr_assert_eq(seen, 250);
}

Test(store, a_time_range_returns_only_executions_that_started_inside_it)
{
	Noetl__Record *recs[100];
	for (int i = 0; i < 100; i++)
		recs[i] = recutil_exec("acme", "e", 1, T0 + i * 1000, NOETL__EXEC_STATUS__EXEC_OK);
	put(recs, 100);
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.from_ms = T0 + 10000;
	q.to_ms = T0 + 20000;
	Noetl__ExecutionsReply *r = execs(&q, "acme");
	cr_assert_eq(r->n_executions, 10);
	for (size_t i = 0; i < r->n_executions; i++) {
		cr_assert_geq(r->executions[i]->start_ms, q.from_ms);
		cr_assert_lt(r->executions[i]->start_ms, q.to_ms);
	}
	cr_assert_eq(r->executions[0]->start_ms, T0 + 19000);
	reply_free(r);
}

Test(store, executions_by_event_id_are_every_attempt_of_that_event_only)
{
	put1(recutil_exec("acme", "e1", 1, T0, NOETL__EXEC_STATUS__EXEC_ERROR));
	put1(recutil_exec("acme", "e2", 1, T0 + 1, NOETL__EXEC_STATUS__EXEC_OK));
	put1(recutil_log("acme", "e1", NOETL__LOG_LEVEL__LOG_INFO, T0 + 2, "hello"));
	put1(recutil_exec("acme", "e1", 2, T0 + 3, NOETL__EXEC_STATUS__EXEC_OK));
	put1(recutil_exec("beta", "e1", 1, T0 + 4, NOETL__EXEC_STATUS__EXEC_OK));
	put1(recutil_exec("acme", "e10", 1, T0 + 5, NOETL__EXEC_STATUS__EXEC_OK));
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.event_id = "e1";
	Noetl__ExecutionsReply *r = execs(&q, "acme");
	cr_assert_eq(r->n_executions, 2);
	cr_assert_eq(r->executions[0]->attempt, 2, "newest first");
	cr_assert_eq(r->executions[1]->attempt, 1);
	cr_assert_str_eq(r->executions[1]->reason, "exit code 1");
	reply_free(r);

	char *names[4];
	size_t n = 0;
	cr_assert_eq(recorder_store_event_tenants(st, "e1", names, 4, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(names[0], "acme");
	cr_assert_str_eq(names[1], "beta");
	free(names[0]);
	free(names[1]);
}

Test(store, only_failed_and_only_dead_select_executions_by_status)
{
	Noetl__ExecStatus sts[] = {NOETL__EXEC_STATUS__EXEC_OK, NOETL__EXEC_STATUS__EXEC_ERROR,
	                           NOETL__EXEC_STATUS__EXEC_FAILED, NOETL__EXEC_STATUS__EXEC_DEAD};
	Noetl__Record *recs[40];
	for (int i = 0; i < 40; i++)
		recs[i] = recutil_exec("acme", "e", 1, T0 + i, sts[i % 4]);
	put(recs, 40);
	put1(recutil_exec("beta", "e", 1, T0, NOETL__EXEC_STATUS__EXEC_DEAD));

	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.only_failed = true;
	Noetl__ExecutionsReply *r = execs(&q, "acme");
	cr_assert_eq(r->n_executions, 30);
	for (size_t i = 0; i < r->n_executions; i++)
		cr_assert_neq(r->executions[i]->status, NOETL__EXEC_STATUS__EXEC_OK);
	reply_free(r);
	q.only_dead = true;
	r = execs(&q, "acme");
	cr_assert_eq(r->n_executions, 10);
	for (size_t i = 0; i < r->n_executions; i++)
		cr_assert_eq(r->executions[i]->status, NOETL__EXEC_STATUS__EXEC_DEAD);
	reply_free(r);

	/* the platform view: every tenant's dead executions */
	r = execs(&q, NULL);
	cr_assert_eq(r->n_executions, 11);
	reply_free(r);
}

Test(store, log_lines_come_oldest_first_filtered_by_level_event_and_time)
{
	Noetl__Record *recs[60];
	for (int i = 0; i < 60; i++) {
		char text[32];
		snprintf(text, sizeof(text), "line %d", i);
		recs[i] = recutil_log("acme", i % 2 ? "odd" : "even", (Noetl__LogLevel)(i % 4),
		                      T0 + i, text);
	}
	put(recs, 60);
	put1(recutil_log("beta", "odd", NOETL__LOG_LEVEL__LOG_ERROR, T0, "not acme's"));

	Noetl__LogQuery q = NOETL__LOG_QUERY__INIT;
	Noetl__LogsReply *r = logs(&q, "acme");
	cr_assert_eq(r->n_lines, 60);
	cr_assert_str_eq(r->lines[0]->text, "line 0");
	cr_assert_str_eq(r->lines[59]->text, "line 59");
	reply_free(r);

	q.min_level = NOETL__LOG_LEVEL__LOG_WARN;
	q.since_ms = T0 + 30;
	r = logs(&q, "acme");
	cr_assert_eq(r->n_lines, 16, "30, 31, 34, 35, ..., 58, 59: %zu lines", r->n_lines);
	for (size_t i = 0; i < r->n_lines; i++) {
		cr_assert_geq(r->lines[i]->level, NOETL__LOG_LEVEL__LOG_WARN);
		cr_assert_geq(r->lines[i]->time_ms, T0 + 30);
	}
	reply_free(r);

	q.event_id = "odd";
	r = logs(&q, "acme");
	cr_assert_eq(r->n_lines, 8, "odd lines from 30 at warn or above: 31, 35, ..., 59");
	for (size_t i = 0; i < r->n_lines; i++) {
		cr_assert_str_eq(r->lines[i]->event_id, "odd");
		cr_assert_str_eq(r->lines[i]->tenant, "acme");
	}
	reply_free(r);
}

Test(store, the_last_n_log_lines_are_read_newest_first_and_page_backwards)
{
	Noetl__Record *recs[30];
	for (int i = 0; i < 30; i++) {
		char text[32];
		snprintf(text, sizeof(text), "line %d", i);
		recs[i] = recutil_log("acme", "ev", NOETL__LOG_LEVEL__LOG_INFO, T0 + i, text);
	}
	put(recs, 30);
	for (int by_event = 0; by_event < 2; by_event++) {
		Noetl__LogQuery q = NOETL__LOG_QUERY__INIT;
		Noetl__Page page = NOETL__PAGE__INIT;
		page.limit = 5;
		q.page = &page;
		q.newest_first = true;
		q.event_id = by_event ? "ev" : "";
		uint8_t cursor[64];
		int want = 29;
		for (int p = 0; p < 2; p++) {
			Noetl__LogsReply *r = logs(&q, "acme");
			cr_assert_eq(r->n_lines, 5);
			for (size_t i = 0; i < 5; i++, want--) {
				char text[32];
				snprintf(text, sizeof(text), "line %d", want);
				cr_assert_str_eq(r->lines[i]->text, text);
			}
			memcpy(cursor, r->next_cursor.data, r->next_cursor.len);
			page.cursor.data = cursor;
			page.cursor.len = r->next_cursor.len;
			reply_free(r);
		}
		/* an oldest-first query refuses a newest-first cursor */
		q.newest_first = false;
		Noetl__LogsReply *r = NULL;
		char *why = NULL;
		cr_assert_eq(recorder_store_logs(st, &q, "acme", &r, &why), -EINVAL);
		free(why);
	}
}

Test(store, a_cursor_of_another_query_or_a_garbled_one_is_refused)
{
	for (int i = 0; i < 5; i++)
		put1(recutil_exec("acme", "e", 1, T0 + i, NOETL__EXEC_STATUS__EXEC_OK));
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	Noetl__Page page = NOETL__PAGE__INIT;
	page.limit = 2;
	q.page = &page;
	Noetl__ExecutionsReply *r = execs(&q, "acme");
	cr_assert_gt(r->next_cursor.len, 0);

	Noetl__LogQuery lq = NOETL__LOG_QUERY__INIT;
	Noetl__Page lpage = NOETL__PAGE__INIT;
	lpage.cursor = r->next_cursor;
	lq.page = &lpage;
	Noetl__LogsReply *lr = NULL;
	char *why = NULL;
	cr_assert_eq(recorder_store_logs(st, &lq, "acme", &lr, &why), -EINVAL);
	cr_assert(why != NULL && strstr(why, "cursor") != NULL);
	free(why);
	reply_free(r);

	uint8_t junk[3] = {1, 2, 3};
	page.cursor.data = junk;
	page.cursor.len = sizeof(junk);
	why = NULL;
	cr_assert_eq(recorder_store_executions(st, &q, "acme", &r, &why), -EINVAL);
	free(why);
}

Test(store, later_pages_skip_records_stored_after_the_first_page_was_read)
{
	for (int i = 0; i < 10; i++)
		put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + i, "old"));
	Noetl__LogQuery q = NOETL__LOG_QUERY__INIT;
	Noetl__Page page = NOETL__PAGE__INIT;
	page.limit = 5;
	q.page = &page;
	Noetl__LogsReply *r = logs(&q, "acme");
	cr_assert_eq(r->n_lines, 5);
	cr_assert_eq(r->revision, 10);
	uint8_t cursor[64];
	memcpy(cursor, r->next_cursor.data, r->next_cursor.len);
	page.cursor.data = cursor;
	page.cursor.len = r->next_cursor.len;
	reply_free(r);

	/* newer records, some with times inside the range still to page over */
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + 7, "new"));
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + 100, "new"));
	r = logs(&q, "acme");
	cr_assert_eq(r->revision, 10, "the page keeps the first page's revision");
	cr_assert_eq(r->n_lines, 5);
	for (size_t i = 0; i < r->n_lines; i++)
		cr_assert_str_eq(r->lines[i]->text, "old");
	reply_free(r);
}

/* Stores recs, then reads event's timeline and checks its steps' kinds. */
static Noetl__TimelineReply *put_then_timeline(Noetl__Record **recs, size_t n, const char *event,
                                               const Noetl__TimelineKind *want, size_t nwant)
{
	put(recs, n);
	Noetl__TimelineReply *r = NULL;
	cr_assert_eq(recorder_store_timeline(st, "acme", event, &r), 0);
	cr_assert_eq(r->n_entries, nwant, "%zu steps, not %zu", r->n_entries, nwant);
	for (size_t i = 0; i < nwant; i++)
		cr_assert_eq(r->entries[i]->kind, want[i], "entry %zu is %d", i,
		             (int)r->entries[i]->kind);
	return r;
}

/* An execution record from an executor that reports how it settled the
 * event (leased_ms, outcome, settled_ms). */
static Noetl__Record *settled_exec(const char *event_id, uint32_t attempt, int64_t leased_ms,
                                   Noetl__ExecStatus status, Noetl__ExecOutcome outcome,
                                   int64_t retry_at_ms)
{
	Noetl__Record *r = recutil_exec("acme", event_id, attempt, leased_ms + 1, status);
	r->execution->leased_ms = leased_ms;
	r->execution->outcome = outcome;
	r->execution->settled_ms = r->execution->end_ms;
	r->execution->retry_at_ms = retry_at_ms;
	return r;
}

Test(store, an_execution_record_stands_for_its_leased_attempt_and_settled_steps)
{
	Noetl__Record *recs[] = {
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_RECEIVED, T0, NULL),
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_ACCEPTED, T0 + 1, NULL),
	        settled_exec("p", 1, T0 + 2, NOETL__EXEC_STATUS__EXEC_FAILED,
	                     NOETL__EXEC_OUTCOME__OUTCOME_RETRY, T0 + 50),
	        settled_exec("p", 2, T0 + 50, NOETL__EXEC_STATUS__EXEC_OK,
	                     NOETL__EXEC_OUTCOME__OUTCOME_DONE, 0),
	        /* recorded after the execution, in the millisecond it was settled */
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_ROUTED, T0 + 56, "c1"),
	        settled_exec("d", 1, T0 + 2, NOETL__EXEC_STATUS__EXEC_DEAD,
	                     NOETL__EXEC_OUTCOME__OUTCOME_DEAD, 0),
	        /* not settled: the lease expires and the event runs again */
	        settled_exec("u", 1, T0 + 2, NOETL__EXEC_STATUS__EXEC_FAILED,
	                     NOETL__EXEC_OUTCOME__OUTCOME_UNSETTLED, 0),
	};
	Noetl__TimelineKind want[] = {
	        NOETL__TIMELINE_KIND__TL_RECEIVED, NOETL__TIMELINE_KIND__TL_ACCEPTED,
	        NOETL__TIMELINE_KIND__TL_LEASED,   NOETL__TIMELINE_KIND__TL_ATTEMPT,
	        NOETL__TIMELINE_KIND__TL_RETRIED,  NOETL__TIMELINE_KIND__TL_LEASED,
	        NOETL__TIMELINE_KIND__TL_ATTEMPT,  NOETL__TIMELINE_KIND__TL_ROUTED,
	        NOETL__TIMELINE_KIND__TL_DONE,
	};
	Noetl__TimelineReply *r = put_then_timeline(recs, sizeof(recs) / sizeof(recs[0]), "p", want,
	                                            sizeof(want) / sizeof(want[0]));
	uint32_t attempt[] = {0, 0, 1, 1, 1, 2, 2, 0, 2};
	for (size_t i = 0; i < 9; i++)
		if (want[i] != NOETL__TIMELINE_KIND__TL_ROUTED)
			cr_assert_eq(r->entries[i]->attempt, attempt[i], "entry %zu", i);
	cr_assert_eq(r->entries[2]->time_ms, T0 + 2);
	cr_assert_str_eq(r->entries[2]->detail, "host-1", "leased names the executor's host");
	char retry[64];
	snprintf(retry, sizeof(retry), "retry at %lld", T0 + 50);
	cr_assert_str_eq(r->entries[4]->detail, retry);
	cr_assert_eq(r->entries[8]->time_ms, T0 + 56);
	cr_assert_str_eq(r->entries[8]->detail, "code 0");
	cr_assert_eq(r->n_children, 1);
	reply_free(r);

	cr_assert_eq(recorder_store_timeline(st, "acme", "d", &r), 0);
	cr_assert_eq(r->n_entries, 3);
	cr_assert_eq(r->entries[2]->kind, NOETL__TIMELINE_KIND__TL_DEAD);
	cr_assert_str_eq(r->entries[2]->detail, "exit code 1", "the dead step says why");
	reply_free(r);

	cr_assert_eq(recorder_store_timeline(st, "acme", "u", &r), 0);
	cr_assert_eq(r->n_entries, 2, "leased and the attempt, nothing settled");
	cr_assert_eq(r->entries[1]->kind, NOETL__TIMELINE_KIND__TL_ATTEMPT);
	reply_free(r);
}

Test(store, a_timeline_links_parent_and_child_whichever_side_recorded_the_link)
{
	Noetl__Record *recs[] = {
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_RECEIVED, T0, NULL),
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_ACCEPTED, T0 + 1, NULL),
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_LEASED, T0 + 2, NULL),
	        recutil_exec("acme", "p", 1, T0 + 3, NOETL__EXEC_STATUS__EXEC_OK),
	        /* the parent records the routing to c1 only; c2 records its cause only */
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_ROUTED, T0 + 9, "c1"),
	        recutil_timeline("acme", "c2", NOETL__TIMELINE_KIND__TL_CAUSED_BY, T0 + 10, "p"),
	        recutil_timeline("acme", "p", NOETL__TIMELINE_KIND__TL_DONE, T0 + 11, NULL),
	        recutil_timeline("acme", "c1", NOETL__TIMELINE_KIND__TL_ACCEPTED, T0 + 12, NULL),
	        recutil_log("acme", "p", NOETL__LOG_LEVEL__LOG_INFO, T0 + 4, "logs are not steps"),
	};
	Noetl__TimelineKind want[] = {
	        NOETL__TIMELINE_KIND__TL_RECEIVED, NOETL__TIMELINE_KIND__TL_ACCEPTED,
	        NOETL__TIMELINE_KIND__TL_LEASED,   NOETL__TIMELINE_KIND__TL_ATTEMPT,
	        NOETL__TIMELINE_KIND__TL_ROUTED,   NOETL__TIMELINE_KIND__TL_DONE,
	};
	Noetl__TimelineReply *r = put_then_timeline(recs, sizeof(recs) / sizeof(recs[0]), "p", want,
	                                            sizeof(want) / sizeof(want[0]));
	cr_assert_eq(r->entries[3]->attempt, 1);
	cr_assert(strstr(r->entries[3]->detail, "ok, code 0") != NULL, "%s", r->entries[3]->detail);
	cr_assert_eq(r->n_parents, 0);
	cr_assert_eq(r->n_children, 2);
	cr_assert_str_eq(r->children[0], "c1");
	cr_assert_str_eq(r->children[1], "c2");
	cr_assert_str_eq(r->tenant, "acme");
	reply_free(r);

	cr_assert_eq(recorder_store_timeline(st, "acme", "c1", &r), 0);
	cr_assert_eq(r->n_parents, 1);
	cr_assert_str_eq(r->parents[0], "p");
	cr_assert_eq(r->n_entries, 1, "c1's own entry only");
	reply_free(r);
	cr_assert_eq(recorder_store_timeline(st, "acme", "c2", &r), 0);
	cr_assert_eq(r->n_parents, 1);
	cr_assert_str_eq(r->parents[0], "p");
	reply_free(r);

	cr_assert_eq(recorder_store_timeline(st, "beta", "p", &r), -ENOENT,
	             "another tenant's event of the same id does not exist");
	cr_assert_eq(recorder_store_timeline(st, "acme", "nope", &r), -ENOENT);
}

Test(store, revisions_continue_after_the_store_is_reopened)
{
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0, "a"));
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0, "b"));
	recorder_store_close(st);
	cr_assert_eq(recorder_store_open(dir, NULL, &st), 0);
	cr_assert_eq(recorder_store_head(st), 2);
	cr_assert_eq(put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0, "c")), 3);
	uint64_t records, bytes;
	recorder_store_usage(st, "acme", &records, &bytes);
	cr_assert_eq(records, 3, "usage survives the reopen");
	cr_assert_gt(bytes, 3 * RECORDER_KEY_CHARGE);

	Noetl__ChangesReply *cr = NULL;
	cr_assert_eq(changelog_read(recorder_store_changelog(st), 0, "acme", 0, &cr), 0);
	cr_assert_eq(cr->n_changes, 3);
	Noetl__Record *rec =
	        noetl__record__unpack(NULL, cr->changes[2]->body.len, cr->changes[2]->body.data);
	cr_assert_not_null(rec);
	cr_assert_eq(rec->revision, 3, "the stored record carries its revision");
	cr_assert_str_eq(rec->log->text, "c");
	noetl__record__free_unpacked(rec, NULL);
	changelog_reply_free(cr);
}

/* Counts the changes of topic still in the log. */
static size_t count_changes(const char *topic)
{
	size_t n = 0;
	uint64_t since = 0;
	for (;;) {
		Noetl__ChangesReply *cr = NULL;
		cr_assert_eq(changelog_read(recorder_store_changelog(st), since, topic, 5000, &cr),
		             0);
		n += cr->n_changes;
		if (cr->n_changes > 0)
			since = cr->changes[cr->n_changes - 1]->revision;
		bool more = cr->more;
		changelog_reply_free(cr);
		if (!more)
			return n;
	}
}

Test(store, retention_by_age_removes_old_records_with_their_index_entries_and_keeps_new_ones)
{
	/* old: 100 s before the cut; new: after it. Mixed kinds and tenants. */
	for (int i = 0; i < 50; i++) {
		char ev[16];
		snprintf(ev, sizeof(ev), "old%d", i);
		Noetl__Record *recs[] = {
		        recutil_exec("acme", ev, 1, T0 + i, NOETL__EXEC_STATUS__EXEC_DEAD),
		        recutil_log("acme", ev, NOETL__LOG_LEVEL__LOG_INFO, T0 + i, "old"),
		        recutil_timeline("acme", ev, NOETL__TIMELINE_KIND__TL_ROUTED, T0 + i,
		                         "kid"),
		        recutil_log("beta", ev, NOETL__LOG_LEVEL__LOG_INFO, T0 + i, "beta old"),
		};
		put(recs, 4);
	}
	for (int i = 0; i < 20; i++) {
		Noetl__Record *recs[] = {
		        recutil_exec("acme", "new", 1, T0 + 200000 + i,
		                     NOETL__EXEC_STATUS__EXEC_DEAD),
		        recutil_log("acme", "new", NOETL__LOG_LEVEL__LOG_INFO, T0 + 200000 + i,
		                    "new"),
		};
		put(recs, 2);
	}
	struct recorder_policy pol = {.max_age_ms = 100000};
	Noetl__Retention own = NOETL__RETENTION__INIT;
	own.tenant = "acme";
	own.max_age_ms = pol.max_age_ms;
	cr_assert_eq(recorder_store_set_retention(st, &own), 0);

	struct recorder_retain_result res = {0};
	/* beta has no policy and there is no default: it keeps everything */
	cr_assert_eq(recorder_store_retain(st, T0 + 200000, NULL, &res), 0);
	cr_assert_eq(res.records, 150);
	cr_assert_eq(res.tenants, 1);

	uint64_t records, bytes;
	recorder_store_usage(st, "acme", &records, &bytes);
	cr_assert_eq(records, 40);
	recorder_store_usage(st, "beta", &records, &bytes);
	cr_assert_eq(records, 50);
	cr_assert_eq(count_changes("acme"), 40);
	cr_assert_eq(count_changes("beta"), 50);

	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.only_dead = true;
	Noetl__ExecutionsReply *r = execs(&q, "acme");
	cr_assert_eq(r->n_executions, 20);
	reply_free(r);
	r = execs(&q, NULL);
	cr_assert_eq(r->n_executions, 20, "the platform index lost the old ones too");
	reply_free(r);
	Noetl__TimelineReply *t = NULL;
	cr_assert_eq(recorder_store_timeline(st, "acme", "kid", &t), -ENOENT,
	             "the link entries went with the routing entries");
	cr_assert_eq(recorder_store_timeline(st, "acme", "old3", &t), -ENOENT);

	/* nothing of acme's is left under its old keys */
	struct kv *kv = recorder_store_kv(st);
	struct kv_iter *it;
	cr_assert_eq(kv_iter_create(kv, "e", 1, "f", 1, &it), 0);
	size_t event_keys = 0;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
		event_keys++;
	kv_iter_destroy(it);
	cr_assert_eq(event_keys, 40 + 50, "acme's 'new' entries and beta's");

	/* a second pass finds nothing more */
	memset(&res, 0, sizeof(res));
	cr_assert_eq(recorder_store_retain(st, T0 + 200000, NULL, &res), 0);
	cr_assert_eq(res.records, 0);
}

Test(store, retention_by_size_keeps_a_tenant_under_its_bound_and_drops_the_oldest_first)
{
	char text[1000];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (int i = 0; i < 200; i++)
		put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + i, text));
	struct recorder_policy def = {.max_bytes = 50000};
	cr_assert_eq(recorder_store_retain(st, T0 + 1000, &def, NULL), 0);
	uint64_t records, bytes;
	recorder_store_usage(st, "acme", &records, &bytes);
	cr_assert_leq(bytes, 50000);
	cr_assert_gt(bytes, 50000 - 1200, "no more than needed is deleted");

	Noetl__LogQuery q = NOETL__LOG_QUERY__INIT;
	Noetl__Page page = NOETL__PAGE__INIT;
	page.limit = 1000;
	q.page = &page;
	Noetl__LogsReply *r = logs(&q, "acme");
	cr_assert_eq(r->n_lines, records);
	cr_assert_eq(r->lines[r->n_lines - 1]->time_ms, T0 + 199, "the newest stays");
	cr_assert_eq(r->lines[0]->time_ms, T0 + 200 - (int64_t)records, "the oldest went");
	reply_free(r);
}

Test(store, disk_use_stays_bounded_under_a_steady_load_with_a_size_bound)
{
	char text[200];
	memset(text, 'y', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	struct recorder_policy def = {.max_bytes = 200000};
	uint64_t max_records = 0;
	uint64_t sizes[6];
	int64_t t = T0;
	for (int round = 0; round < 30; round++) {
		Noetl__Record *recs[500];
		for (int i = 0; i < 500; i++) {
			char ev[32];
			snprintf(ev, sizeof(ev), "r%d-%d", round, i % 50);
			recs[i] = i % 10 == 0 ? recutil_exec("acme", ev, 1, t++,
			                                     NOETL__EXEC_STATUS__EXEC_ERROR)
			                      : recutil_log("acme", ev, NOETL__LOG_LEVEL__LOG_INFO,
			                                    t++, text);
		}
		put(recs, 500);
		cr_assert_eq(recorder_store_retain(st, t, &def, NULL), 0);
		uint64_t records, bytes;
		recorder_store_usage(st, "acme", &records, &bytes);
		cr_assert_leq(bytes, def.max_bytes);
		if (records > max_records)
			max_records = records;
		if (round % 5 == 4) {
			struct kv *kv = recorder_store_kv(st);
			cr_assert_eq(kv_compact_range(kv, NULL, 0, NULL, 0), 0);
			sizes[round / 5] = kv_approximate_size(kv, "\x01", 1, "\xff", 1);
		}
	}
	/* 15,000 records written of ~300 bytes charged: about 670 fit the bound */
	cr_assert_leq(max_records, 200000 / 200);
	cr_assert_leq(count_changes("acme"), max_records);
	/* the store does not grow round after round once the bound is reached */
	for (int i = 2; i < 6; i++)
		cr_assert_leq(sizes[i], sizes[1] * 2 + 65536, "round %d: %llu bytes vs %llu", i * 5,
		              (unsigned long long)sizes[i], (unsigned long long)sizes[1]);
	cr_assert_leq(sizes[5], 4u * def.max_bytes, "%llu bytes on disk",
	              (unsigned long long)sizes[5]);
}

Test(store, the_newest_record_of_the_store_waits_for_a_later_pass)
{
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0, "a"));
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + 1, "b"));
	struct recorder_policy def = {.max_age_ms = 1000};
	struct recorder_retain_result res = {0};
	cr_assert_eq(recorder_store_retain(st, T0 + 100000, &def, &res), 0);
	cr_assert_eq(res.records, 1, "the head revision stays: the log's head is read from it");
	put1(recutil_log("beta", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + 100000, "c"));
	cr_assert_eq(recorder_store_retain(st, T0 + 100000, &def, &res), 0);
	cr_assert_eq(res.records, 2);
	recorder_store_close(st);
	cr_assert_eq(recorder_store_open(dir, NULL, &st), 0);
	cr_assert_eq(recorder_store_head(st), 3, "the head survived the retention");
}

Test(store, a_tenants_own_policy_overrides_the_default_and_can_be_dropped)
{
	struct recorder_policy p;
	cr_assert_eq(recorder_store_get_retention(st, "acme", &p), -ENOENT);
	Noetl__Retention r = NOETL__RETENTION__INIT;
	r.tenant = "acme";
	r.max_bytes = 12345;
	cr_assert_eq(recorder_store_set_retention(st, &r), 0);
	cr_assert_eq(recorder_store_get_retention(st, "acme", &p), 0);
	cr_assert_eq(p.max_bytes, 12345);
	cr_assert_eq(p.max_age_ms, 0);

	/* own policy: keep by size only; the default's age bound does not apply */
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0, "a"));
	put1(recutil_log("acme", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + 1, "b"));
	struct recorder_policy def = {.max_age_ms = 1};
	struct recorder_retain_result res = {0};
	cr_assert_eq(recorder_store_retain(st, T0 + 100000, &def, &res), 0);
	cr_assert_eq(res.records, 0);

	r.use_default = true;
	cr_assert_eq(recorder_store_set_retention(st, &r), 0);
	cr_assert_eq(recorder_store_get_retention(st, "acme", &p), -ENOENT);
	put1(recutil_log("beta", NULL, NOETL__LOG_LEVEL__LOG_INFO, T0 + 100000, "c"));
	cr_assert_eq(recorder_store_retain(st, T0 + 100000, &def, &res), 0);
	cr_assert_eq(res.records, 2);
}
