#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobdef.h"
#include "testutil.h"

/* ---- helpers ---- */

static char *fixture(const char *name, size_t *len)
{
	char rel[256], path[1024];
	snprintf(rel, sizeof(rel), "tests/fixtures/jobdef/%s", name);
	testutil_source_path(rel, path, sizeof(path));
	char *text = testutil_read_file(path, len);
	cr_assert_not_null(text, "cannot read %s", path);
	return text;
}

/* Jobico's own files: CI clones main with shared/ beside it. */
static char *jobico(const char *name, size_t *len)
{
	char rel[256], path[1024];
	snprintf(rel, sizeof(rel), "../shared/compat/jobico/%s", name);
	testutil_source_path(rel, path, sizeof(path));
	char *text = testutil_read_file(path, len);
	cr_assert_not_null(text, "cannot read %s", path);
	return text;
}

static Noetl__Package *parse_ok(const char *text, size_t len, const char *name)
{
	Noetl__Package *p = NULL;
	char *err = NULL;
	int rc = jobdef_parse(text, len, name, &p, &err);
	cr_assert_eq(rc, 0, "%s: rc %d: %s", name, rc, err ? err : "(no message)");
	cr_assert_null(err);
	cr_assert_not_null(p);
	return p;
}

static Noetl__Package *parse_fixture(const char *name)
{
	size_t len;
	char *text = fixture(name, &len);
	Noetl__Package *p = parse_ok(text, len, name);
	free(text);
	return p;
}

/* Parses text expecting failure; returns the message (caller frees). */
static char *parse_err(const char *text, size_t len, const char *name)
{
	Noetl__Package *p = NULL;
	char *err = NULL;
	int rc = jobdef_parse(text, len, name, &p, &err);
	cr_assert_eq(rc, -EINVAL, "%s: expected -EINVAL, got %d", name, rc);
	cr_assert_null(p);
	cr_assert_not_null(err, "%s: no message", name);
	return err;
}

static void expect_parse_err(const char *text, const char *name, const char *want)
{
	char *err = parse_err(text, strlen(text), name);
	cr_expect_str_eq(err, want, "%s:\n got: %s\nwant: %s", name, err, want);
	free(err);
}

/* A minimal valid package with `extra` appended under the runtime (4
 * spaces of indent) or the package (no indent). */
static char *with_runtime(const char *runtime_lines, const char *package_lines)
{
	char *text;
	cr_assert(asprintf(&text,
	                   "id: pkg\n"
	                   "tenant: acme\n"
	                   "queues: [{id: q}]\n"
	                   "jobs:\n"
	                   "  - event: {id: ev, supplierqueue: q, runtime: rt}\n"
	                   "runtimes:\n"
	                   "  - id: rt\n"
	                   "    moduleref: m.wasm\n"
	                   "%s%s",
	                   runtime_lines, package_lines) > 0);
	return text;
}

/* EventDef.line says where the text was parsed; equality ignores it. */
static void clear_line(Noetl__EventDef *ev)
{
	if (ev == NULL)
		return;
	if (ev->line != protobuf_c_empty_string)
		free(ev->line);
	ev->line = (char *)protobuf_c_empty_string;
}

static void clear_lines(Noetl__Package *p)
{
	for (size_t i = 0; i < p->n_jobs; i++) {
		clear_line(p->jobs[i]->event);
		if (p->jobs[i]->result != NULL) {
			clear_line(p->jobs[i]->result->ok);
			clear_line(p->jobs[i]->result->error);
		}
	}
}

static void assert_same(Noetl__Package *a, Noetl__Package *b)
{
	clear_lines(a);
	clear_lines(b);
	size_t na = noetl__package__get_packed_size(a), nb = noetl__package__get_packed_size(b);
	cr_assert_eq(na, nb, "packed sizes differ: %zu and %zu", na, nb);
	uint8_t *ba = malloc(na + 1), *bb = malloc(nb + 1);
	noetl__package__pack(a, ba);
	noetl__package__pack(b, bb);
	cr_assert_eq(memcmp(ba, bb, na), 0, "packages differ");
	free(ba);
	free(bb);
}

/* parse -> to_yaml -> parse gives the same package, and the canonical text
 * is a fixed point. Consumes p. */
static void assert_round_trip(Noetl__Package *p)
{
	char *y1 = jobdef_to_yaml(p);
	cr_assert_not_null(y1);
	Noetl__Package *q = parse_ok(y1, strlen(y1), "canonical.yml");
	char *y2 = jobdef_to_yaml(q);
	cr_assert_not_null(y2);
	cr_assert_str_eq(y1, y2);
	assert_same(p, q);
	free(y1);
	free(y2);
	jobdef_free(q);
	jobdef_free(p);
}

/* ---- the Jobico files ---- */

Test(jobdef, jobico_go_greet_file_parses_to_its_fields)
{
	size_t len;
	char *text = jobico("job-go-greet.yml", &len);
	Noetl__Package *p = parse_ok(text, len, "job-go-greet.yml");
	free(text);

	cr_assert_str_eq(p->id, "go-demo-job");
	cr_assert_str_eq(p->name, "Demo JOB");
	cr_assert_str_eq(p->tenant, "demogo");
	cr_assert_eq(p->n_queues, 1);
	cr_assert_str_eq(p->queues[0]->id, "queue-default");
	cr_assert_str_eq(p->queues[0]->name, "Q.Default");
	cr_assert_eq(p->n_jobs, 1);
	const Noetl__EventDef *ev = p->jobs[0]->event;
	cr_assert_str_eq(ev->id, "evgo");
	cr_assert_str_eq(ev->name, "Greet event");
	cr_assert_eq(ev->data_type, NOETL__DATA_TYPE__DATA_JSON);
	cr_assert_not_null(ev->schema);
	cr_assert_str_eq(ev->schema->id, "greet-event-schema");
	cr_assert_str_eq(ev->schema->name, "Greet's schema");
	cr_assert_str_eq(ev->schema->schema_ref, "greet-schema-go.json");
	cr_assert_str_eq(ev->supplier_queue, "queue-default");
	cr_assert_str_eq(ev->runtime, "greet-event-go");
	cr_assert_null(ev->retry);
	cr_assert_eq(ev->timeout_ms, 0);
	cr_assert_str_eq(ev->line, "job-go-greet.yml:9:7");
	cr_assert_null(p->jobs[0]->result);
	cr_assert_eq(p->n_runtimes, 1);
	const Noetl__RuntimeDef *rt = p->runtimes[0];
	cr_assert_str_eq(rt->id, "greet-event-go");
	cr_assert_str_eq(rt->name, "Greet Evenent Func");
	cr_assert_str_eq(rt->module_ref, "greet-wasm-go.wasm");
	cr_assert_str_eq(rt->main_func_name, "event");
	cr_assert_eq(rt->type, NOETL__RUNTIME_TYPE__RUNTIME_WASM);
	cr_assert_eq(rt->platform, 0);
	cr_assert_null(rt->retry);
	cr_assert_eq(rt->memory_limit, 0);
	cr_assert_eq(p->n_schedules, 0);
	jobdef_free(p);
}

Test(jobdef, jobico_protojson_shape_parses_with_its_wrapper_spellings_and_nulls)
{
	size_t len;
	char *text = jobico("job-protojson-shape.yml", &len);
	Noetl__Package *p = parse_ok(text, len, "shape.yml");
	free(text);

	cr_assert_str_eq(p->id, "job_id_1");
	cr_assert_str_eq(p->name, "job_name_1");
	cr_assert_str_eq(p->tenant, "tenant_1");
	cr_assert_eq(p->n_queues, 3);
	cr_assert_str_eq(p->queues[2]->id, "queue_id_1_error");
	cr_assert_str_eq(p->queues[2]->name, "queue_name_1_error");
	cr_assert_eq(p->n_jobs, 1);
	const Noetl__EventDef *ev = p->jobs[0]->event;
	cr_assert_str_eq(ev->id, "event_id_1");
	cr_assert_str_eq(ev->supplier_queue, "queue_id_1");
	cr_assert_str_eq(ev->runtime, "runtime_id_1");
	cr_assert_not_null(ev->schema); /* ID: "" and name: null are absent fields */
	cr_assert_str_eq(ev->schema->id, "");
	cr_assert_str_eq(ev->schema->name, "");
	cr_assert_str_eq(ev->schema->schema_ref, "sch1");
	cr_assert_str_eq(ev->line, "shape.yml:14:7");
	const Noetl__ResultDef *r = p->jobs[0]->result;
	cr_assert_not_null(r);
	cr_assert_str_eq(r->ok->id, "event_id_1_ok");
	cr_assert_null(r->ok->schema); /* schema: null */
	cr_assert_str_eq(r->ok->supplier_queue, "queue_id_1_ok");
	cr_assert_str_eq(r->ok->runtime, "runtime_id_1");
	cr_assert_str_eq(r->error->id, "event_id_1_error");
	cr_assert_null(r->error->schema);
	cr_assert_str_eq(r->error->supplier_queue, "queue_id_1_error");
	cr_assert_eq(p->n_runtimes, 1);
	cr_assert_str_eq(p->runtimes[0]->module_ref, "run1");
	cr_assert_str_eq(p->runtimes[0]->main_func_name, "event");
	cr_assert_eq(p->runtimes[0]->platform, 0);
	jobdef_free(p);
}

/* ---- extensions ---- */

Test(jobdef, extensions_parse_into_retry_timeout_memory_and_schedules)
{
	Noetl__Package *p = parse_fixture("good-extensions.yml");

	const Noetl__EventDef *ev = p->jobs[0]->event;
	cr_assert_str_eq(ev->schema->schema_ref, "report.json");
	cr_assert_not_null(ev->retry);
	cr_assert_eq(ev->retry->max_attempts, 5);
	cr_assert_eq(ev->retry->backoff_base_ms, 500);
	cr_assert_eq(ev->retry->backoff_max_ms, 90000);
	cr_assert_eq(ev->retry->jitter_percent, 20);
	cr_assert_eq(ev->timeout_ms, 2000);
	const Noetl__EventDef *ok = p->jobs[0]->result->ok;
	cr_assert_str_eq(ok->id, "send-report");
	cr_assert_eq(ok->data_type, NOETL__DATA_TYPE__DATA_BINARY);
	cr_assert_eq(ok->timeout_ms, 1500);
	cr_assert_null(p->jobs[0]->result->error);
	/* The result event names the second job's event, declared the same way. */
	cr_assert_eq(p->jobs[1]->event->data_type, NOETL__DATA_TYPE__DATA_BINARY);
	cr_assert_eq(p->jobs[1]->event->timeout_ms, 1500);

	const Noetl__RuntimeDef *rep = p->runtimes[0], *mail = p->runtimes[1];
	cr_assert_str_eq(rep->main_func_name, "run_report");
	cr_assert_eq(rep->retry->max_attempts, 3);
	cr_assert_eq(rep->retry->backoff_base_ms, 100);
	cr_assert_eq(rep->retry->backoff_max_ms, 2000);
	cr_assert_eq(rep->retry->jitter_percent, 0);
	cr_assert_eq(rep->timeout_ms, 3600000);
	cr_assert_eq(rep->memory_limit, 64ULL << 20);
	cr_assert_str_eq(mail->module_ref, "mailer.wasm");
	cr_assert_str_eq(mail->main_func_name, "event");
	cr_assert_eq(mail->platform, 2);
	cr_assert_eq(mail->memory_limit, 1048576);

	cr_assert_eq(p->n_schedules, 2);
	cr_assert_str_eq(p->schedules[0]->id, "every-night");
	cr_assert_str_eq(p->schedules[0]->cron, "30 2 * * MON-FRI");
	cr_assert_str_eq(p->schedules[0]->event, "build-report");
	cr_assert_str_eq(p->schedules[0]->payload,
	                 "{\"report\":\"daily\",\"pages\":[1,2,3],\"ratio\":0.5,\"draft\":false,"
	                 "\"owner\":null,\"quoted\":\"42\"}");
	cr_assert_str_eq(p->schedules[1]->cron, "@hourly");
	cr_assert_str_eq(p->schedules[1]->payload, "\"ping\"");
	jobdef_free(p);
}

Test(jobdef, keys_match_ignoring_case_and_underscores)
{
	const char *text = "ID: pkg\n"
	                   "TENANT: acme\n"
	                   "Queues: [{Id: q}]\n"
	                   "jobs:\n"
	                   "  - EVENT: {id: ev, Supplier_Queue: q, RunTime: rt, Data_Type: 0}\n"
	                   "runtimes: [{id: rt, MODULE_REF: m.wasm, main_func_name: go}]\n";
	Noetl__Package *p = parse_ok(text, strlen(text), "case.yml");
	cr_assert_str_eq(p->jobs[0]->event->supplier_queue, "q");
	cr_assert_str_eq(p->runtimes[0]->module_ref, "m.wasm");
	cr_assert_str_eq(p->runtimes[0]->main_func_name, "go");
	jobdef_free(p);
}

Test(jobdef, durations_are_milliseconds_or_unit_strings)
{
	static const struct {
		const char *value;
		uint32_t ms;
	} good[] = {{"1500", 1500},     {"\"1500\"", 1500},
	            {"500ms", 500},     {"2s", 2000},
	            {"1m30s", 90000},   {"1.5s", 1500},
	            {"0.5m", 30000},    {"1h", 3600000},
	            {"1h1ms", 3600001}, {"4294967295", 4294967295U}};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "    timeout: %s\n", good[i].value);
		char *text = with_runtime(line, "");
		Noetl__Package *p = parse_ok(text, strlen(text), "t.yml");
		cr_expect_eq(p->runtimes[0]->timeout_ms, good[i].ms, "%s gave %u", good[i].value,
		             p->runtimes[0]->timeout_ms);
		jobdef_free(p);
		free(text);
	}
	static const struct {
		const char *value;
		const char *err;
	} bad[] = {
	        {"2d", "t.yml:9:14: 'timeout' must be milliseconds or a duration like 500ms, 2s, "
	               "1m30s or 1h, got '2d'"},
	        {"-1", "t.yml:9:14: 'timeout' must be milliseconds or a duration like 500ms, 2s, "
	               "1m30s or 1h, got '-1'"},
	        {"s", "t.yml:9:14: 'timeout' must be milliseconds or a duration like 500ms, 2s, "
	              "1m30s or 1h, got 's'"},
	        {"1.0001s", "t.yml:9:14: 'timeout' must be a whole number of milliseconds up to "
	                    "4294967295 (about 49 days), got '1.0001s'"},
	        {"4294967296", "t.yml:9:14: 'timeout' must be a whole number of milliseconds up to "
	                       "4294967295 (about 49 days), got '4294967296'"},
	        {"50d", "t.yml:9:14: 'timeout' must be milliseconds or a duration like 500ms, 2s, "
	                "1m30s or 1h, got '50d'"},
	        {"1200h", "t.yml:9:14: 'timeout' must be a whole number of milliseconds up to "
	                  "4294967295 (about 49 days), got '1200h'"},
	        {"[1]",
	         "t.yml:9:14: 'timeout' must be a duration like 500ms or 2s, got a sequence"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "    timeout: %s\n", bad[i].value);
		char *text = with_runtime(line, "");
		expect_parse_err(text, "t.yml", bad[i].err);
		free(text);
	}
}

Test(jobdef, memory_limits_are_whole_wasm_pages_up_to_4gib)
{
	static const struct {
		const char *value;
		uint64_t bytes;
	} good[] = {{"65536", 65536},         {"64MiB", 64ULL << 20}, {"64Mi", 64ULL << 20},
	            {"512kib", 512ULL << 10}, {"1 GiB", 1ULL << 30},  {"4GiB", 4ULL << 30},
	            {"131072B", 131072}};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "    memorylimit: %s\n", good[i].value);
		char *text = with_runtime(line, "");
		Noetl__Package *p = parse_ok(text, strlen(text), "m.yml");
		cr_expect_eq(p->runtimes[0]->memory_limit, good[i].bytes, "%s", good[i].value);
		jobdef_free(p);
		free(text);
	}
	static const struct {
		const char *value;
		const char *err;
	} bad[] = {
	        {"64MB", "m.yml:9:18: 'memorylimit' must be bytes or a size like 512KiB, 64MiB or "
	                 "1GiB, got '64MB'"},
	        {"-1", "m.yml:9:18: 'memorylimit' must be bytes or a size like 512KiB, 64MiB or "
	               "1GiB, got '-1'"},
	        {"1000", "m.yml:9:18: memorylimit 1000 bytes is not a whole number of 64KiB wasm "
	                 "pages up to 4GiB: use e.g. 64MiB"},
	        {"5GiB", "m.yml:9:18: memorylimit 5368709120 bytes is not a whole number of 64KiB "
	                 "wasm pages up to 4GiB: use e.g. 64MiB"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "    memorylimit: %s\n", bad[i].value);
		char *text = with_runtime(line, "");
		expect_parse_err(text, "m.yml", bad[i].err);
		free(text);
	}
}

Test(jobdef, payload_scalars_resolve_like_yaml_1_2_core_schema)
{
	char *text = with_runtime("", "schedules:\n"
	                              "  - id: s\n"
	                              "    cron: '* * * * *'\n"
	                              "    event: ev\n"
	                              "    payload:\n"
	                              "      hex: 0x1F\n"
	                              "      oct: 0o17\n"
	                              "      neg: -5\n"
	                              "      exp: 1e3\n"
	                              "      yes11: yes\n"
	                              "      tilde: ~\n"
	                              "      qtrue: \"true\"\n"
	                              "      single: 'x'\n"
	                              "      block: |\n"
	                              "        multi\n"
	                              "      empty: {}\n"
	                              "      nested: [[], [a, {b: 1.25}]]\n");
	Noetl__Package *p = parse_ok(text, strlen(text), "p.yml");
	cr_assert_str_eq(
	        p->schedules[0]->payload,
	        "{\"hex\":31,\"oct\":15,\"neg\":-5,\"exp\":1000.0,\"yes11\":\"yes\","
	        "\"tilde\":null,\"qtrue\":\"true\",\"single\":\"x\",\"block\":\"multi\\n\","
	        "\"empty\":{},\"nested\":[[],[\"a\",{\"b\":1.25}]]}");
	free(text);
	assert_round_trip(p);
}

Test(jobdef, payload_numbers_json_cannot_hold_are_refused)
{
	char *text = with_runtime("", "schedules:\n"
	                              "  - id: s\n"
	                              "    cron: '* * * * *'\n"
	                              "    event: ev\n"
	                              "    payload: [1, .inf]\n");
	expect_parse_err(text, "p.yml",
	                 "p.yml:13:18: '.inf' is a number JSON cannot hold (out of range, infinite "
	                 "or not a number): quote it to send a string");
	free(text);
	text = with_runtime("", "schedules:\n"
	                        "  - id: s\n"
	                        "    cron: '* * * * *'\n"
	                        "    event: ev\n"
	                        "    payload: {n: 99999999999999999999}\n");
	expect_parse_err(text, "p.yml",
	                 "p.yml:13:18: '99999999999999999999' is a number JSON cannot hold (out of "
	                 "range, infinite or not a number): quote it to send a string");
	free(text);
}

Test(jobdef, a_result_may_name_an_event_declared_the_same_way_elsewhere)
{
	/* Job event first, then results naming it (twice), then a job whose
	 * result names an event declared by a later job. */
	const char *text = "id: chain\n"
	                   "tenant: acme\n"
	                   "queues: [{id: q}]\n"
	                   "jobs:\n"
	                   "  - event: {id: a, supplierqueue: q, runtime: rt}\n"
	                   "  - event: {id: b, supplierqueue: q, runtime: rt}\n"
	                   "    result:\n"
	                   "      ok: {id: a, name: again, supplierqueue: q, runtime: rt}\n"
	                   "      error: {id: a, supplierqueue: q, runtime: rt}\n"
	                   "  - event: {id: c, supplierqueue: q, runtime: rt}\n"
	                   "    result: {ok: {id: d, supplierqueue: q, runtime: rt}}\n"
	                   "  - event: {id: d, supplierqueue: q, runtime: rt}\n"
	                   "runtimes: [{id: rt, moduleref: m.wasm}]\n"
	                   "schedules: [{id: s, cron: '@daily', event: d}]\n";
	Noetl__Package *p = parse_ok(text, strlen(text), "chain.yml");
	cr_assert_str_eq(p->jobs[1]->result->ok->name, "again");
	cr_assert_str_eq(p->schedules[0]->payload, "");
	assert_round_trip(p);
}

Test(jobdef, empty_retry_and_result_mappings_are_kept_and_round_trip)
{
	char *text = with_runtime("    retry: {}\n", "");
	Noetl__Package *p = parse_ok(text, strlen(text), "e.yml");
	free(text);
	cr_assert_not_null(p->runtimes[0]->retry);
	cr_assert_eq(p->runtimes[0]->retry->max_attempts, 0);
	assert_round_trip(p);

	const char *t2 = "id: pkg\ntenant: acme\nqueues: [{id: q}]\n"
	                 "jobs: [{event: {id: ev, supplierqueue: q, runtime: rt}, result: {}}]\n"
	                 "runtimes: [{id: rt, moduleref: m.wasm, retry: null}]\n";
	p = parse_ok(t2, strlen(t2), "e.yml");
	cr_assert_not_null(p->jobs[0]->result);
	cr_assert_null(p->jobs[0]->result->ok);
	cr_assert_null(p->runtimes[0]->retry);
	assert_round_trip(p);
}

Test(jobdef, a_key_that_is_not_a_scalar_is_refused)
{
	expect_parse_err("id: pkg\n? [a, b]\n: c\n", "k.yml",
	                 "k.yml:2:3: a key in package must be a word, got a sequence");
	expect_parse_err("id: pkg\nqueues:\n  - {id: q, {x: 1}: 2}\n", "k.yml",
	                 "k.yml:3:13: a key in queue must be a word, got a mapping");
}

/* ---- malformed definitions ---- */

Test(jobdef, every_malformed_fixture_is_refused_with_its_exact_position)
{
	static const struct {
		const char *file;
		const char *err;
	} cases[] = {
	        {"bad-unknown-key.yml",
	         "bad-unknown-key.yml:8:7: unknown key 'supplierqeue' in event: expected one of "
	         "id, name, datatype, schema, supplierqueue, runtime, retry, timeout"},
	        {"bad-duplicate-key.yml",
	         "bad-duplicate-key.yml:6:5: duplicate key 'ID' in queue (given as 'id' at line 4 "
	         "column 5): remove one"},
	        {"bad-mapping-for-scalar.yml",
	         "bad-mapping-for-scalar.yml:3:3: 'tenant' must be a string, got a mapping"},
	        {"bad-datatype-word.yml",
	         "bad-datatype-word.yml:7:17: 'datatype' must be 0 (JSON) or 1 (binary), got "
	         "'json'"},
	        {"bad-datatype-range.yml",
	         "bad-datatype-range.yml:7:17: datatype 2 is unknown: use 0 (JSON) or 1 (binary)"},
	        {"bad-missing-tenant.yml",
	         "bad-missing-tenant.yml:1:1: the tenant is missing: add 'tenant: <tenant id>'"},
	        {"bad-missing-event-id.yml",
	         "bad-missing-event-id.yml:6:7: the event id is missing: add 'id: <event name>'"},
	        {"bad-missing-moduleref.yml",
	         "bad-missing-moduleref.yml:7:5: the runtime's module file is missing: add "
	         "'moduleref: <wasm file>'"},
	        {"bad-null-event.yml",
	         "bad-null-event.yml:5:12: the job has no event: add 'event:' with id, "
	         "supplierqueue and runtime"},
	        {"bad-no-jobs.yml",
	         "bad-no-jobs.yml:4:7: the package declares no jobs: add a 'jobs' list with at "
	         "least one event"},
	        {"bad-duplicate-queue.yml",
	         "bad-duplicate-queue.yml:6:9: queue id 'q' is already declared at "
	         "bad-duplicate-queue.yml:4:9: ids must be unique"},
	        {"bad-duplicate-event.yml",
	         "bad-duplicate-event.yml:6:17: event id 'ev' is already declared at "
	         "bad-duplicate-event.yml:5:17: each job needs its own event id"},
	        {"bad-result-differs.yml",
	         "bad-result-differs.yml:8:17: event 'second' is declared at "
	         "bad-result-differs.yml:7:16 with a different runtime: an event named twice (by a "
	         "job and a result) must be declared the same way, or use another id"},
	        {"bad-duplicate-runtime.yml",
	         "bad-duplicate-runtime.yml:9:9: runtime id 'rt' is already declared at "
	         "bad-duplicate-runtime.yml:7:9: ids must be unique"},
	        {"bad-duplicate-schedule.yml",
	         "bad-duplicate-schedule.yml:9:10: schedule id 'tick' is already declared at "
	         "bad-duplicate-schedule.yml:8:10: ids must be unique"},
	        {"bad-schema-id-differs.yml",
	         "bad-schema-id-differs.yml:12:20: schema id 's' is declared at "
	         "bad-schema-id-differs.yml:7:20 with schemaref 'a.json': give this schema another "
	         "id or the same schemaref"},
	        {"bad-dangling-queue.yml",
	         "bad-dangling-queue.yml:7:22: event 'ev' goes to queue 'nowhere', which is not "
	         "declared: add it under 'queues' or fix the name"},
	        {"bad-dangling-runtime.yml",
	         "bad-dangling-runtime.yml:8:16: event 'ev' runs on runtime 'greet', which is not "
	         "declared: add it under 'runtimes' or fix the name"},
	        {"bad-dangling-result.yml",
	         "bad-dangling-result.yml:10:18: event 'ev-failed' runs on runtime 'on-error', "
	         "which is not declared: add it under 'runtimes' or fix the name"},
	        {"bad-dangling-schedule.yml",
	         "bad-dangling-schedule.yml:10:12: schedule 'tick' fires event 'evv', which is not "
	         "declared: name an event of this package"},
	        {"bad-invalid-id.yml",
	         "bad-invalid-id.yml:4:9: the queue id 'my queue' is not a valid name: use 1 to "
	         "128 "
	         "characters of A-Z a-z 0-9 _ . - that do not start with '.' or contain '..'"},
	        {"bad-runtime-type.yml",
	         "bad-runtime-type.yml:9:11: runtime type 1 is not supported: use 0 (wasm); 1 "
	         "(python) is reserved by Jobico"},
	        {"bad-mainfuncname.yml",
	         "bad-mainfuncname.yml:9:19: mainfuncname 'do it' is not an export name: use "
	         "letters, digits and '_', not starting with a digit"},
	        {"bad-cron-range.yml",
	         "bad-cron-range.yml:9:11: invalid cron expression '0 24 * * *': hour field: 24 is "
	         "out of range 0-23"},
	        {"bad-cron-never.yml", "bad-cron-never.yml:9:11: cron expression '0 0 30 2 *' "
	                               "never fires: no day matches "
	                               "its day-of-month, month and day-of-week"},
	        {"bad-jitter.yml",
	         "bad-jitter.yml:11:17: jitter is 150%: use a percentage from 0 to 100"},
	        {"bad-backoff.yml",
	         "bad-backoff.yml:9:26: backoffbase (10000ms) is longer than backoffmax (1000ms): "
	         "lower backoffbase or raise backoffmax"},
	        {"bad-duration.yml",
	         "bad-duration.yml:9:16: 'timeout' must be milliseconds or a duration like 500ms, "
	         "2s, 1m30s or 1h, got '2 days'"},
	        {"bad-memory.yml", "bad-memory.yml:9:18: memorylimit 100000 bytes is not a whole "
	                           "number of 64KiB wasm "
	                           "pages up to 4GiB: use e.g. 64MiB"},
	        {"bad-binary-schema.yml",
	         "bad-binary-schema.yml:8:15: a binary event (datatype 1) has no JSON to validate: "
	         "remove 'schema' or use datatype 0"},
	        {"bad-payload-duplicate.yml",
	         "bad-payload-duplicate.yml:14:7: duplicate key 'a' in the payload: remove one"},
	        {"bad-list-item.yml",
	         "bad-list-item.yml:4:5: each item of 'queues' must be a queue mapping, got a "
	         "scalar"},
	        {"bad-wrapper-extra-key.yml",
	         "bad-wrapper-extra-key.yml:4:1: 'tenant' beside 'package': the 'package' wrapper "
	         "must be the only top-level key; move 'tenant' inside it or drop the wrapper"},
	        {"bad-yaml-syntax.yml",
	         "bad-yaml-syntax.yml:5:3: invalid YAML: did not find expected node content while "
	         "parsing a flow node"},
	        {"bad-anchor.yml",
	         "bad-anchor.yml:3:9: anchors ('&queues') and aliases are not supported: write the "
	         "value out"},
	        {"bad-alias.yml",
	         "bad-alias.yml:7:11: aliases ('*rts') are not supported: write the value out"},
	        {"bad-tag.yml", "bad-tag.yml:2:9: tags ('tag:yaml.org,2002:str') are not "
	                        "supported: remove the tag"},
	        {"bad-two-documents.yml",
	         "bad-two-documents.yml:7:1: a second YAML document: a job definition is one "
	         "document; put each package in its own file"},
	        {"bad-empty.yml",
	         "bad-empty.yml:1:1: the document is empty: a job definition is a mapping with at "
	         "least 'id', 'tenant', 'queues', 'jobs' and 'runtimes'"},
	        {"bad-sequence-root.yml",
	         "bad-sequence-root.yml:1:1: a job definition must be a mapping with 'id', "
	         "'tenant', 'queues', 'jobs' and 'runtimes', got a sequence"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *text = fixture(cases[i].file, &len);
		char *err = parse_err(text, len, cases[i].file);
		cr_expect_str_eq(err, cases[i].err, "%s:\n got: %s\nwant: %s", cases[i].file, err,
		                 cases[i].err);
		free(err);
		free(text);
	}
}

Test(jobdef, a_nul_character_in_a_string_is_refused)
{
	expect_parse_err("id: \"pk\\0g\"\n", "n.yml",
	                 "n.yml:1:5: 'id' contains a NUL character: remove it");
}

Test(jobdef, text_that_is_not_utf8_is_refused_at_the_bad_byte)
{
	expect_parse_err("id: pkg\ntenant: ac\xffme\n", "u.yml",
	                 "u.yml:2:11: invalid YAML: invalid leading UTF-8 octet (byte 0xff): the "
	                 "file must be UTF-8 text");
}

Test(jobdef, a_null_err_pointer_is_allowed)
{
	Noetl__Package *p = NULL;
	cr_assert_eq(jobdef_parse("id: [", 5, NULL, &p, NULL), -EINVAL);
	cr_assert_null(p);
}

Test(jobdef, no_text_is_an_empty_document)
{
	char *err = parse_err(NULL, 0, "none.yml");
	cr_assert_str_eq(err, "none.yml:1:1: the document is empty: a job definition is a mapping "
	                      "with at least 'id', 'tenant', 'queues', 'jobs' and 'runtimes'");
	free(err);
}

Test(jobdef, errors_without_a_filename_say_input)
{
	char *err = parse_err("tenant: x\n", 10, NULL);
	cr_assert_str_eq(err, "<input>:1:1: the package id is missing: add 'id: <package name>'");
	free(err);
}

/* ---- hostile input ---- */

Test(jobdef, an_alias_bomb_is_refused_at_its_first_anchor)
{
	/* Nine levels of ten aliases: 10^9 strings if anything expanded it. */
	char text[4096];
	size_t n = (size_t)snprintf(text, sizeof(text),
	                            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\","
	                            "\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
	                            "\"lol\"]\n");
	for (char c = 'b'; c <= 'j'; c++) {
		char p = (char)(c - 1);
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		                      "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", c, c,
		                      p, p, p, p, p, p, p, p, p, p);
	}
	char *err = parse_err(text, n, "bomb.yml");
	cr_assert_str_eq(err, "bomb.yml:1:4: anchors ('&a') and aliases are not supported: write "
	                      "the value out");
	free(err);
}

Test(jobdef, nesting_deeper_than_the_limit_is_refused)
{
	char text[128];
	size_t n = (size_t)snprintf(text, sizeof(text), "id: ");
	for (int i = 0; i < 40; i++)
		text[n++] = '[';
	for (int i = 0; i < 40; i++)
		text[n++] = ']';
	text[n++] = '\n';
	/* The root mapping is level 1, so the 32nd '[' (column 36) is level 33. */
	char *err = parse_err(text, n, "deep.yml");
	cr_assert_str_eq(err, "deep.yml:1:36: nesting deeper than 32 levels: flatten the value");
	free(err);
}

/* A payload of `levels` nested one-key mappings: {"a":{"a":...{"a":1}}}. */
static char *nested_payload(int levels)
{
	char buf[1024];
	size_t n = 0;
	for (int i = 0; i < levels; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{a: ");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "1");
	for (int i = 0; i < levels; i++)
		buf[n++] = '}';
	buf[n] = '\0';
	char *pkg;
	cr_assert(asprintf(&pkg,
	                   "schedules:\n  - {id: s, cron: '@daily', event: ev, payload: %s}\n",
	                   buf) > 0);
	char *text = with_runtime("", pkg);
	free(pkg);
	return text;
}

Test(jobdef, payloads_nest_up_to_the_limit_and_round_trip)
{
	char *text = nested_payload(28);
	Noetl__Package *p = parse_ok(text, strlen(text), "n.yml");
	free(text);
	assert_round_trip(p);

	text = nested_payload(29);
	expect_parse_err(text, "n.yml",
	                 "n.yml:10:49: the payload nests 29 levels; the limit is 28: flatten it");
	free(text);
}

Test(jobdef, a_huge_scalar_is_refused)
{
	size_t big = JOBDEF_MAX_SCALAR + 1;
	char *text = malloc(big + 32);
	size_t n = (size_t)sprintf(text, "id: pkg\nname: ");
	memset(text + n, 'x', big);
	n += big;
	text[n++] = '\n';
	char *err = parse_err(text, n, "big.yml");
	cr_assert_str_eq(err, "big.yml:2:7: a value of 65537 bytes; the limit is 65536 bytes");
	free(err);
	free(text);
}

Test(jobdef, a_document_over_the_size_limit_is_refused_before_parsing)
{
	size_t n = JOBDEF_MAX_SIZE + 1;
	char *text = malloc(n);
	memset(text, '#', n);
	char *err = parse_err(text, n, "huge.yml");
	cr_assert_str_eq(err, "huge.yml: the definition is 1048577 bytes; the limit is 1048576 "
	                      "bytes: split the package");
	free(err);
	free(text);
}

Test(jobdef, too_many_values_are_refused)
{
	/* Nodes: the root mapping, the key, the sequence, then the items, so
	 * item 99997 is node 100001; it sits at column 6 + 2 * 99997. */
	size_t n = 0, cap = 2 * JOBDEF_MAX_NODES + 16;
	char *text = malloc(cap);
	n += (size_t)sprintf(text, "id: [");
	for (int i = 0; i < JOBDEF_MAX_NODES; i++) {
		text[n++] = '1';
		text[n++] = ',';
	}
	text[n - 1] = ']';
	char *err = parse_err(text, n, "many.yml");
	cr_assert_str_eq(err, "many.yml:1:200000: more than 100000 values in one definition: "
	                      "split the package");
	free(err);
	free(text);
}

/* ---- round trips ---- */

Test(jobdef, jobico_files_round_trip_through_canonical_yaml)
{
	size_t len;
	char *text = jobico("job-go-greet.yml", &len);
	assert_round_trip(parse_ok(text, len, "greet.yml"));
	free(text);
	text = jobico("job-protojson-shape.yml", &len);
	assert_round_trip(parse_ok(text, len, "shape.yml"));
	free(text);
}

Test(jobdef, extensions_round_trip_through_canonical_yaml)
{
	assert_round_trip(parse_fixture("good-extensions.yml"));
}

Test(jobdef, strings_a_yaml_reader_could_misread_are_quoted)
{
	char *text = with_runtime(
	        "",
	        "schedules:\n"
	        "  - id: s\n"
	        "    cron: '@daily'\n"
	        "    event: ev\n"
	        "    payload: [\"yes\", \"123\", \"null\", \"\", \"a: b\", \"#x\", \" lead\", "
	        "\"trail \", \"multi\\nline\", \"\xc3\xbcn\xc3\xaf\", \"-dash\", \"0x10\", "
	        "\"1e3\", "
	        "\"~\", \"true\", \"Off\", \"nul\\0byte\", \"plain words\", \"it's\", \"1_000\", "
	        "\"012\", \"1:30\"]\n");
	Noetl__Package *p = parse_ok(text, strlen(text), "q.yml");
	free(text);
	cr_assert_str_eq(p->schedules[0]->payload,
	                 "[\"yes\",\"123\",\"null\",\"\",\"a: b\",\"#x\",\" lead\",\"trail \","
	                 "\"multi\\nline\",\"\xc3\xbcn\xc3\xaf\",\"-dash\",\"0x10\",\"1e3\",\"~\","
	                 "\"true\",\"Off\",\"nul\\u0000byte\",\"plain words\",\"it's\",\"1_000\","
	                 "\"012\",\"1:30\"]");
	char *y = jobdef_to_yaml(p);
	cr_assert_not_null(strstr(y, "  - \"yes\"\n  - \"123\"\n  - \"null\"\n  - \"\"\n"), "%s",
	                   y);
	cr_assert_not_null(strstr(y, "  - plain words\n  - it's\n  - \"1_000\"\n  - \"012\"\n"),
	                   "%s", y);
	free(y);
	assert_round_trip(p);
}

Test(jobdef, to_yaml_refuses_a_payload_that_is_not_json)
{
	Noetl__Package *p = parse_fixture("good-extensions.yml");
	free(p->schedules[1]->payload);
	p->schedules[1]->payload = strdup("{not json");
	cr_assert_null(jobdef_to_yaml(p));
	jobdef_free(p);
}

/* ---- validate ---- */

Test(jobdef, validate_accepts_what_parse_accepts_and_unpacked_copies)
{
	Noetl__Package *p = parse_fixture("good-extensions.yml");
	char *err = NULL;
	cr_assert_eq(jobdef_validate(p, &err), 0, "%s", err);
	cr_assert_null(err);

	size_t n = noetl__package__get_packed_size(p);
	uint8_t *buf = malloc(n);
	noetl__package__pack(p, buf);
	Noetl__Package *q = noetl__package__unpack(NULL, n, buf);
	free(buf);
	cr_assert_not_null(q);
	cr_assert_eq(jobdef_validate(q, &err), 0, "%s", err);
	jobdef_free(q);
	jobdef_free(p);
}

Test(jobdef, validate_names_the_field_path_of_a_dangling_reference)
{
	Noetl__Package *p = parse_fixture("good-extensions.yml");
	char *err = NULL;
	free(p->jobs[0]->result->ok->runtime);
	p->jobs[0]->result->ok->runtime = strdup("nope");
	/* The result now differs from the job event of the same id... */
	cr_assert_eq(jobdef_validate(p, &err), -EINVAL);
	cr_assert_str_eq(err, "jobs[1].event.id: event 'send-report' is declared at "
	                      "jobs[0].result.ok.id with a different runtime: an event named twice "
	                      "(by a job and a result) must be declared the same way, or use "
	                      "another id");
	free(err);
	err = NULL;
	/* ...and once it is alone, its reference dangles. */
	free(p->jobs[1]->event->id);
	p->jobs[1]->event->id = strdup("send-report-2");
	free(p->schedules[1]->event);
	p->schedules[1]->event = strdup("send-report-2");
	cr_assert_eq(jobdef_validate(p, &err), -EINVAL);
	cr_assert_str_eq(err, "jobs[0].result.ok.runtime: event 'send-report' runs on runtime "
	                      "'nope', which is not declared: add it under 'runtimes' or fix the "
	                      "name");
	free(err);
	jobdef_free(p);
}

Test(jobdef, validate_copes_with_a_hand_built_package_with_null_strings)
{
	Noetl__Package p = NOETL__PACKAGE__INIT;
	char *err = NULL;
	p.id = NULL;
	cr_assert_eq(jobdef_validate(&p, &err), -EINVAL);
	cr_assert_str_eq(err, "id: the package id is missing: add 'id: <package name>'");
	free(err);

	Noetl__JobDef job = NOETL__JOB_DEF__INIT, *jobs[] = {&job};
	p.id = "pkg";
	p.tenant = "acme";
	p.n_jobs = 1;
	p.jobs = jobs;
	cr_assert_eq(jobdef_validate(&p, &err), -EINVAL);
	cr_assert_str_eq(err, "jobs[0].event: the job has no event: add 'event:' with id, "
	                      "supplierqueue and runtime");
	free(err);
	cr_assert_eq(jobdef_validate(NULL, &err), -EINVAL);
	cr_assert_str_eq(err, "package: the package is missing");
	free(err);
}

Test(jobdef, validate_checks_what_rpc_can_send_but_yaml_cannot)
{
	Noetl__Package *p = parse_fixture("good-extensions.yml");
	char *err = NULL;

	p->runtimes[1]->type = 7;
	cr_assert_eq(jobdef_validate(p, &err), -EINVAL);
	cr_assert_str_eq(err, "runtimes[1].type: runtime type 7 is not supported: use 0 (wasm)");
	free(err);
	err = NULL;
	p->runtimes[1]->type = NOETL__RUNTIME_TYPE__RUNTIME_WASM;

	free(p->schedules[0]->payload);
	p->schedules[0]->payload = strdup("{\"a\":1,\"a\":2}");
	cr_assert_eq(jobdef_validate(p, &err), -EINVAL);
	cr_assert_eq(strncmp(err, "schedules[0].payload: the payload is not JSON: ", 47), 0, "%s",
	             err);
	free(err);
	err = NULL;

	free(p->name);
	p->name = strdup("two\nlines");
	cr_assert_eq(jobdef_validate(p, &err), -EINVAL);
	cr_assert_str_eq(err, "name: 'name' contains a control character: use plain text");
	free(err);
	jobdef_free(p);
}

/* ---- files ---- */

Test(jobdef, parse_file_reads_a_file_and_names_it_in_errors)
{
	char path[1024];
	Noetl__Package *p = NULL;
	char *err = NULL;
	testutil_source_path("tests/fixtures/jobdef/good-extensions.yml", path, sizeof(path));
	cr_assert_eq(jobdef_parse_file(path, &p, &err), 0, "%s", err);
	cr_assert_str_eq(p->id, "nightly-report");
	cr_assert_eq(strncmp(p->jobs[0]->event->line, path, strlen(path)), 0);
	jobdef_free(p);

	p = NULL;
	cr_assert_eq(jobdef_parse_file("/nonexistent/job.yml", &p, &err), -ENOENT);
	cr_assert_null(p);
	cr_assert_str_eq(err, "/nonexistent/job.yml: cannot read the job definition: No such file "
	                      "or directory");
	free(err);

	testutil_source_path("tests/fixtures/jobdef", path, sizeof(path));
	cr_assert_eq(jobdef_parse_file(path, &p, &err), -EINVAL);
	cr_assert_not_null(
	        strstr(err, ": cannot read the job definition: it is not a regular file"));
	free(err);
}
