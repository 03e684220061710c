/*
 * The listener end to end: real Control, Repository, Queue and Recorder in
 * this process (fixture.c), requests over real TCP sockets, and what they
 * leave in the Queue and the Recorder checked through those services' APIs.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "body.h"
#include "control.pb-c.h"
#include "fixture.h"
#include "recorder.pb-c.h"
#include "testrpc.h"
#include "util.h"

static struct fx fx;

static void setup(void)
{
	struct listener_config cfg = {.max_body = 64 * 1024, .max_elements = 50};
	fx_start(&fx, &cfg);
}

static void teardown(void)
{
	fx_stop(&fx);
}

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 120);

static json_t *reply_json(const struct httpc_reply *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body, r->body_len, 0, &e);
	cr_assert_not_null(j, "reply is not JSON: %s", r->body);
	return j;
}

/* POSTs and checks the status; returns the parsed reply (decref it). */
static json_t *post_expect(const char *path, const char *token, const char *extra, const char *body,
                           int status)
{
	struct httpc_reply r;
	cr_assert_eq(fx_post(&fx, path, token, extra, body, &r), 0, "POST %s", path);
	cr_assert_eq(r.status, status, "POST %s %s: want %d, got %d: %s", path, body, status,
	             r.status, r.body);
	json_t *j = reply_json(&r);
	httpc_reply_free(&r);
	return j;
}

static void expect_error(const char *path, const char *token, const char *extra, const char *body,
                         int status, const char *needle)
{
	json_t *j = post_expect(path, token, extra, body, status);
	const char *msg = json_string_value(json_object_get(j, "error"));
	cr_assert_not_null(msg, "no error message for %d", status);
	if (needle != NULL)
		cr_assert_not_null(strstr(msg, needle), "'%s' not in '%s'", needle, msg);
	json_decref(j);
}

/* Leases everything of tenant and returns the payload of item i (copied). */
static char *leased_payload(const char *tenant, size_t want, size_t i, Noetl__Item *copy)
{
	Noetl__LeaseReply *lr = fx_lease(&fx, tenant, 100);
	cr_assert_eq(lr->n_items, want, "leased %zu items, want %zu", lr->n_items, want);
	const Noetl__Item *it = lr->items[i]->item;
	char *p = strndup((const char *)it->payload.data, it->payload.len);
	if (copy != NULL) {
		noetl__item__init(copy);
		copy->queue = strdup(it->queue);
		copy->event = strdup(it->event);
		copy->package = strdup(it->package);
		copy->id = strdup(it->id);
		copy->trace_id = strdup(it->trace_id);
		copy->definition_revision = it->definition_revision;
	}
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	return p;
}

static void item_release(Noetl__Item *it)
{
	free(it->queue);
	free(it->event);
	free(it->package);
	free(it->id);
	free(it->trace_id);
}

Test(ingest, a_valid_event_is_accepted_and_in_the_queue_as_sent)
{
	json_t *j =
	        post_expect("/events/acme/greet", fx.token_a, NULL,
	                    "{\"data\":[{\"name\":\"Ada\", \"age\": 36, \"price\": 0.10}]}", 202);
	cr_assert_eq(json_integer_value(json_object_get(j, "accepted")), 1);
	json_t *ids = json_object_get(j, "ids");
	cr_assert_eq(json_array_size(ids), 1);
	Noetl__Item it;
	char *payload = leased_payload("acme", 1, 0, &it);
	cr_assert_str_eq(payload, "{\"name\":\"Ada\",\"age\":36,\"price\":0.10}");
	cr_assert_str_eq(it.id, json_string_value(json_array_get(ids, 0)));
	cr_assert_str_eq(it.queue, "inbox");
	cr_assert_str_eq(it.event, "greet");
	cr_assert_str_eq(it.package, "p1");
	cr_assert_neq(it.trace_id[0], '\0');
	/* the revision of the definitions it was accepted under, for the
	 * executor to wait for if it is behind (docs/execution.md) */
	cr_assert_gt(it.definition_revision, 0);
	cr_assert_leq(it.definition_revision, listener_control_revision(fx.listener));
	item_release(&it);
	free(payload);
	json_decref(j);
}

Test(ingest, many_events_of_one_request_are_accepted_together)
{
	json_t *j =
	        post_expect("/events/acme/greet", fx.token_a, NULL,
	                    "{\"data\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]}", 202);
	cr_assert_eq(json_integer_value(json_object_get(j, "accepted")), 3);
	cr_assert_eq(json_array_size(json_object_get(j, "ids")), 3);
	cr_assert_eq(fx_depth(&fx, "acme"), 3);
	json_decref(j);
}

Test(ingest, a_schema_failure_is_400_with_every_error_and_nothing_is_queued)
{
	json_t *j =
	        post_expect("/events/acme/greet", fx.token_a, NULL,
	                    "{\"data\":[{\"name\":\"ok\"},{\"name\":\"\",\"age\":-1},{}]}", 400);
	json_t *errs = json_object_get(j, "errors");
	cr_assert_geq(json_array_size(errs), 3, "%s", json_dumps(j, 0));
	bool age = false, missing = false;
	size_t i;
	json_t *e;
	json_array_foreach(errs, i, e)
	{
		const char *inst = json_string_value(json_object_get(e, "instance"));
		const char *schema = json_string_value(json_object_get(e, "schema"));
		cr_assert_not_null(json_string_value(json_object_get(e, "message")));
		if (strcmp(inst, "/data/1/age") == 0 && strstr(schema, "minimum") != NULL)
			age = true;
		if (strcmp(inst, "/data/2") == 0 && strstr(schema, "required") != NULL)
			missing = true;
	}
	cr_assert(age && missing, "errors: %s", json_dumps(errs, 0));
	cr_assert_eq(fx_depth(&fx, "acme"), 0);
	json_decref(j);
}

Test(ingest, an_unknown_tenant_or_event_is_404)
{
	expect_error("/events/nosuch/greet", fx.token_a, NULL, "{\"data\":[{}]}", 404,
	             "unknown tenant");
	expect_error("/events/acme/nosuch", fx.token_a, NULL, "{\"data\":[{}]}", 404, "no event");
	expect_error("/webhooks/acme/nosuch", fx.token_a, NULL, "{}", 404, "no event");
	expect_error("/events/acme", fx.token_a, NULL, "{\"data\":[{}]}", 404, "no such path");
	expect_error("/events/acme/greet/x", fx.token_a, NULL, "{\"data\":[{}]}", 404, NULL);
	expect_error("/logs/nosuch", fx.token_a, NULL, "[\"x\"]", 404, "unknown tenant");
}

Test(ingest, other_methods_are_405_with_allow)
{
	struct httpc_reply r;
	cr_assert_eq(httpc_request(fx.port, "GET", "/events/acme/greet", NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 405);
	char allow[64];
	cr_assert_not_null(httpc_header(&r, "Allow", allow, sizeof(allow)));
	cr_assert_not_null(strstr(allow, "POST"));
	httpc_reply_free(&r);
	cr_assert_eq(httpc_request(fx.port, "DELETE", "/webhooks/acme/raw", NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 405);
	httpc_reply_free(&r);
	cr_assert_eq(httpc_request(fx.port, "GET", "/nowhere", NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 404);
	httpc_reply_free(&r);
}

Test(ingest, missing_or_wrong_credentials_are_401_with_www_authenticate)
{
	struct httpc_reply r;
	cr_assert_eq(
	        fx_post(&fx, "/events/acme/greet", NULL, NULL, "{\"data\":[{\"name\":\"x\"}]}", &r),
	        0);
	cr_assert_eq(r.status, 401);
	char www[64];
	cr_assert_not_null(httpc_header(&r, "WWW-Authenticate", www, sizeof(www)));
	cr_assert_not_null(strstr(www, "Bearer"));
	httpc_reply_free(&r);
	expect_error("/events/acme/greet", "not-a-token", NULL, "{\"data\":[{\"name\":\"x\"}]}",
	             401, "not valid");
	expect_error("/events/acme/greet", NULL, "Authorization: Basic YTpi\r\n",
	             "{\"data\":[{\"name\":\"x\"}]}", 401, "Bearer");
	/* no probing of events without credentials */
	expect_error("/events/acme/nosuch", NULL, NULL, "{\"data\":[{}]}", 401, NULL);
	cr_assert_eq(fx_depth(&fx, "acme"), 0);
}

Test(ingest, a_token_of_one_tenant_never_works_for_another)
{
	expect_error("/events/acme/greet", fx.token_b, NULL, "{\"data\":[{\"name\":\"x\"}]}", 403,
	             "not valid for tenant 'acme'");
	expect_error("/events/beta/greet", fx.token_a, NULL, "{\"data\":[{\"name\":\"x\"}]}", 403,
	             "not valid for tenant 'beta'");
	expect_error("/logs/beta", fx.token_a, NULL, "[\"x\"]", 403, NULL);
	json_t *j = post_expect("/events/beta/greet", fx.token_b, NULL, "{\"data\":[{\"any\":1}]}",
	                        202);
	json_decref(j);
	cr_assert_eq(fx_depth(&fx, "acme"), 0);
	cr_assert_eq(fx_depth(&fx, "beta"), 1);
}

Test(ingest, a_revoked_token_is_refused_at_once)
{
	char tok[128];
	fx_create_token(&fx, "acme", tok, sizeof(tok));
	json_decref(post_expect("/events/acme/raw", tok, NULL, "{\"data\":[1]}", 202));
	/* revoke: find its id by listing */
	Noetl__ListTokensRequest lr = NOETL__LIST_TOKENS_REQUEST__INIT;
	lr.tenant = "acme";
	ProtobufCMessage *out =
	        testrpc_ok(fx.cc, &noetl__control__descriptor, "ListTokens", &lr.base, NULL);
	Noetl__ListTokensReply *l = (Noetl__ListTokensReply *)out;
	char hash[65];
	util_sha256_hex(tok, strlen(tok), hash);
	const char *id = NULL;
	for (size_t i = 0; i < l->n_tokens; i++)
		if (strcmp(l->tokens[i]->hash, hash) == 0)
			id = l->tokens[i]->id;
	cr_assert_not_null(id);
	Noetl__RevokeTokenRequest rr = NOETL__REVOKE_TOKEN_REQUEST__INIT;
	rr.tenant = "acme";
	rr.id = (char *)id;
	protobuf_c_message_free_unpacked(
	        testrpc_ok(fx.cc, &noetl__control__descriptor, "RevokeToken", &rr.base, NULL),
	        NULL);
	protobuf_c_message_free_unpacked(out, NULL);
	fx_sync_control(&fx);
	expect_error("/events/acme/raw", tok, NULL, "{\"data\":[1]}", 401, NULL);
}

Test(ingest, a_body_that_is_not_json_is_415_or_400)
{
	struct httpc_reply r;
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: text/plain\r\n",
	         fx.token_a);
	cr_assert_eq(
	        httpc_request(fx.port, "POST", "/events/acme/greet", hdr, "{\"data\":[]}", 11, &r),
	        0);
	cr_assert_eq(r.status, 415, "%s", r.body);
	httpc_reply_free(&r);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", fx.token_a);
	cr_assert_eq(
	        httpc_request(fx.port, "POST", "/events/acme/greet", hdr, "{\"data\":[]}", 11, &r),
	        0);
	cr_assert_eq(r.status, 415, "%s", r.body);
	httpc_reply_free(&r);

	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":[{\"name\":", 400,
	             "not valid JSON");
	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":[{\"a\":1,\"a\":2}]}", 400,
	             "not valid JSON");
	expect_error("/events/acme/greet", fx.token_a, NULL, "\xff\xfe", 400, "not valid JSON");
	expect_error("/events/acme/greet", fx.token_a, NULL, "", 400, "empty");
	expect_error("/events/acme/greet", fx.token_a, NULL, "[{\"name\":\"x\"}]", 400, "data");
	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":{}}", 400, "data");
	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":[]}", 400, "empty");
	expect_error("/events/acme/greet", fx.token_a, NULL,
	             "{\"data\":[{\"name\":\"x\"}],\"extra\":1}", 400, "extra");
	cr_assert_eq(fx_depth(&fx, "acme"), 0);
}

Test(ingest, an_oversized_body_or_too_many_events_is_413)
{
	size_t n = 70 * 1024;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"data\":[1]}", 12);
	big[n] = '\0';
	struct httpc_reply r;
	cr_assert_eq(fx_post(&fx, "/events/acme/raw", fx.token_a, NULL, big, &r), 0);
	cr_assert_eq(r.status, 413, "%s", r.body);
	httpc_reply_free(&r);
	free(big);

	char body[1024] = "{\"data\":[0";
	for (int i = 1; i < 51; i++)
		snprintf(body + strlen(body), sizeof(body) - strlen(body), ",%d", i);
	strcat(body, "]}");
	expect_error("/events/acme/raw", fx.token_a, NULL, body, 413, "over the limit");
	cr_assert_eq(fx_depth(&fx, "acme"), 0);
}

Test(ingest, a_retry_with_the_same_idempotency_key_returns_the_original_ids)
{
	const char *hdr = "Idempotency-Key: order-42\r\n";
	const char *body = "{\"data\":[{\"name\":\"a\"},{\"name\":\"b\"}]}";
	json_t *a = post_expect("/events/acme/greet", fx.token_a, hdr, body, 202);
	json_t *b = post_expect("/events/acme/greet", fx.token_a, hdr, body, 202);
	cr_assert(json_equal(json_object_get(a, "ids"), json_object_get(b, "ids")), "%s vs %s",
	          json_dumps(a, 0), json_dumps(b, 0));
	cr_assert_eq(fx_depth(&fx, "acme"), 2);
	/* another key is another request */
	json_t *c = post_expect("/events/acme/greet", fx.token_a, "Idempotency-Key: order-43\r\n",
	                        body, 202);
	cr_assert(!json_equal(json_object_get(a, "ids"), json_object_get(c, "ids")));
	cr_assert_eq(fx_depth(&fx, "acme"), 4);
	expect_error("/events/acme/greet", fx.token_a, "Idempotency-Key: a b\r\n", body, 400,
	             "Idempotency-Key");
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

Test(ingest, a_schema_update_applies_to_the_next_request)
{
	const char *body = "{\"data\":[{\"name\":\"Ada\"}]}";
	json_decref(post_expect("/events/acme/greet", fx.token_a, NULL, body, 202));
	fx_put_schema(&fx, "acme", "person.json",
	              "{\"type\":\"object\",\"required\":[\"name\",\"email\"]}");
	expect_error("/events/acme/greet", fx.token_a, NULL, body, 400, "schema");
	json_decref(post_expect("/events/acme/greet", fx.token_a, NULL,
	                        "{\"data\":[{\"name\":\"Ada\",\"email\":\"a@b.c\"}]}", 202));
}

Test(ingest, a_schema_change_of_a_referenced_file_applies_too)
{
	fx_put_schema(&fx, "acme", "name.json", "{\"type\":\"string\"}");
	fx_put_schema(&fx, "acme", "person.json",
	              "{\"type\":\"object\",\"properties\":{\"name\":{\"$ref\":\"name.json\"}}}");
	json_decref(post_expect("/events/acme/greet", fx.token_a, NULL,
	                        "{\"data\":[{\"name\":\"Ada\"}]}", 202));
	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":[{\"name\":5}]}", 400,
	             "schema");
	fx_put_schema(&fx, "acme", "name.json", "{\"type\":\"integer\"}");
	json_decref(post_expect("/events/acme/greet", fx.token_a, NULL, "{\"data\":[{\"name\":5}]}",
	                        202));
}

Test(ingest, an_event_whose_schema_does_not_compile_is_500_until_it_is_fixed)
{
	/* The Repository checks each file alone; a reference to a file that
	 * does not exist only shows when the listener compiles the whole. */
	fx_put_schema(&fx, "acme", "person.json", "{\"$ref\":\"nowhere.json\"}");
	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":[{\"name\":\"Ada\"}]}", 500,
	             "nowhere.json");
	fx_put_schema(&fx, "acme", "person.json", "{\"type\":\"object\"}");
	json_decref(post_expect("/events/acme/greet", fx.token_a, NULL,
	                        "{\"data\":[{\"name\":\"Ada\"}]}", 202));
}

Test(ingest, a_chunked_body_is_411)
{
	struct httpc *c;
	cr_assert_eq(httpc_connect(fx.port, 20000, &c), 0);
	char req[512];
	snprintf(req, sizeof(req),
	         "POST /events/acme/raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
	         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	         "c\r\n{\"data\":[1]}\r\n0\r\n\r\n",
	         fx.token_a);
	cr_assert_eq(send(httpc_fd(c), req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	struct httpc_reply r;
	cr_assert_eq(httpc_recv(c, &r), 0);
	cr_assert_eq(r.status, 411, "%s", r.body);
	httpc_reply_free(&r);
	httpc_close(c);
	cr_assert_eq(fx_depth(&fx, "acme"), 0);
}

Test(ingest, a_deleted_package_answers_404_at_once)
{
	json_decref(post_expect("/events/beta/greet", fx.token_b, NULL, "{\"data\":[1]}", 202));
	fx_delete_package(&fx, "beta", "p2");
	expect_error("/events/beta/greet", fx.token_b, NULL, "{\"data\":[1]}", 404, "no event");
}

Test(ingest, a_removed_tenant_answers_404_at_once)
{
	json_decref(post_expect("/events/acme/greet", fx.token_a, NULL,
	                        "{\"data\":[{\"name\":\"Ada\"}]}", 202));
	fx_delete_package(&fx, "acme", "p1");
	Noetl__RemoveTenantRequest rr = NOETL__REMOVE_TENANT_REQUEST__INIT;
	rr.id = "acme";
	protobuf_c_message_free_unpacked(
	        testrpc_ok(fx.cc, &noetl__control__descriptor, "RemoveTenant", &rr.base, NULL),
	        NULL);
	fx_sync_control(&fx);
	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":[{\"name\":\"Ada\"}]}", 404,
	             "unknown tenant");
	/* the other tenant is untouched */
	json_decref(post_expect("/events/beta/greet", fx.token_b, NULL, "{\"data\":[1]}", 202));
}

Test(ingest, a_queue_that_is_down_gives_503_with_retry_after_and_then_recovers)
{
	fx_queue_down(&fx);
	struct httpc_reply r;
	cr_assert_eq(fx_post(&fx, "/events/acme/raw", fx.token_a, "Idempotency-Key: k1\r\n",
	                     "{\"data\":[1]}", &r),
	             0);
	cr_assert_eq(r.status, 503, "%s", r.body);
	char ra[16];
	cr_assert_not_null(httpc_header(&r, "Retry-After", ra, sizeof(ra)));
	cr_assert_gt(atoi(ra), 0);
	httpc_reply_free(&r);
	fx_queue_up(&fx);
	json_decref(post_expect("/events/acme/raw", fx.token_a, "Idempotency-Key: k1\r\n",
	                        "{\"data\":[1]}", 202));
	cr_assert_eq(fx_depth(&fx, "acme"), 1);
}

Test(ingest, cached_definitions_keep_working_while_control_and_repository_are_down)
{
	rpc_server_destroy(fx.control_srv);
	fx.control_srv = NULL;
	fx_repository_down(&fx);
	json_decref(post_expect("/events/acme/greet", fx.token_a, NULL,
	                        "{\"data\":[{\"name\":\"Ada\"}]}", 202));
	expect_error("/events/acme/greet", fx.token_a, NULL, "{\"data\":[{\"age\":1}]}", 400, NULL);
	fx_repository_up(&fx);
}

Test(ingest, a_schema_that_failed_to_load_is_retried_not_remembered)
{
	/* A fresh listener while the Repository is down: definitions come from
	 * Control, the schema cannot load. */
	fx_repository_down(&fx);
	fx_restart_listener(&fx);
	cr_assert(listener_wait_synced(fx.listener, 1, 0, 20000));
	const char *body = "{\"data\":[{\"name\":\"Ada\"}]}";
	struct httpc_reply r;
	cr_assert_eq(fx_post(&fx, "/events/acme/greet", fx.token_a, NULL, body, &r), 0);
	cr_assert_eq(r.status, 503, "%s", r.body);
	httpc_reply_free(&r);
	/* events without a schema do not need the Repository */
	json_decref(post_expect("/events/acme/raw", fx.token_a, NULL, "{\"data\":[1]}", 202));
	fx_repository_up(&fx);
	int status = 0;
	for (int i = 0; i < 1000 && status != 202; i++) {
		cr_assert_eq(fx_post(&fx, "/events/acme/greet", fx.token_a, NULL, body, &r), 0);
		status = r.status;
		cr_assert(status == 202 || status == 503, "%d %s", status, r.body);
		httpc_reply_free(&r);
		if (status != 202)
			util_sleep_ms(50);
	}
	cr_assert_eq(status, 202);
}

Test(ingest, a_webhook_signature_good_bad_and_missing)
{
	fx_set_secret(&fx, "acme", "raw", "whsec_test");
	const char *body = "{\"id\": \"evt_1\",\n \"amount\": 1.50}";
	char sig[72], hdr[128];
	listener_body_signature("whsec_test", body, strlen(body), sig);
	snprintf(hdr, sizeof(hdr), "X-Noetl-Signature: %s\r\n", sig);
	json_t *j = post_expect("/webhooks/acme/raw", NULL, hdr, body, 202);
	cr_assert_eq(json_integer_value(json_object_get(j, "accepted")), 1);
	json_decref(j);
	char *payload = leased_payload("acme", 1, 0, NULL);
	cr_assert_str_eq(payload, body, "the webhook payload is the raw body");
	free(payload);

	char bad[72];
	listener_body_signature("other", body, strlen(body), bad);
	snprintf(hdr, sizeof(hdr), "X-Noetl-Signature: %s\r\n", bad);
	expect_error("/webhooks/acme/raw", NULL, hdr, body, 401, "does not match");
	/* a wrong signature is refused even with a valid token */
	expect_error("/webhooks/acme/raw", fx.token_a, hdr, body, 401, "does not match");
	expect_error("/webhooks/acme/raw", NULL, "X-Noetl-Signature: md5=abc\r\n", body, 401, NULL);
	expect_error("/webhooks/acme/raw", NULL, NULL, body, 401, "X-Noetl-Signature");
	/* a token of the tenant works instead of a signature */
	json_decref(post_expect("/webhooks/acme/raw", fx.token_a, NULL, body, 202));
	cr_assert_eq(fx_depth(&fx, "acme"), 2);
}

Test(ingest, a_webhook_event_is_validated_against_its_schema)
{
	json_decref(
	        post_expect("/webhooks/acme/greet", fx.token_a, NULL, "{\"name\":\"Ada\"}", 202));
	json_t *j = post_expect("/webhooks/acme/greet", fx.token_a, NULL, "{\"age\":\"x\"}", 400);
	json_t *e = json_array_get(json_object_get(j, "errors"), 0);
	cr_assert_not_null(e);
	const char *inst = json_string_value(json_object_get(e, "instance"));
	cr_assert_not_null(inst);
	cr_assert_neq(strncmp(inst, "/data", 5), 0, "a webhook's pointers start at its body");
	json_decref(j);
}

Test(ingest, log_lines_of_external_workers_reach_the_recorder)
{
	json_t *j = post_expect("/logs/acme", fx.token_a, NULL,
	                        "[\"plain line\",{\"text\":\"with level\",\"level\":\"error\","
	                        "\"source\":\"worker-7\"}]",
	                        202);
	cr_assert_eq(json_integer_value(json_object_get(j, "accepted")), 2);
	json_decref(j);
	expect_error("/logs/acme", fx.token_a, NULL, "[{\"txt\":\"x\"}]", 400, "txt");
	expect_error("/logs/acme", NULL, NULL, "[\"x\"]", 401, NULL);
	Noetl__LogQuery q = NOETL__LOG_QUERY__INIT;
	q.tenant = "acme";
	ProtobufCMessage *out =
	        testrpc_ok(fx.recc, &noetl__recorder__descriptor, "QueryLogs", &q.base, NULL);
	Noetl__LogsReply *lr = (Noetl__LogsReply *)out;
	cr_assert_eq(lr->n_lines, 2);
	cr_assert_str_eq(lr->lines[0]->text, "plain line");
	cr_assert_str_eq(lr->lines[1]->source, "worker-7");
	cr_assert_eq(lr->lines[1]->level, NOETL__LOG_LEVEL__LOG_ERROR);
	protobuf_c_message_free_unpacked(out, NULL);
}

Test(ingest, an_accepted_event_gets_received_and_accepted_timeline_entries)
{
	json_t *j = post_expect("/events/acme/raw", fx.token_a, NULL, "{\"data\":[7]}", 202);
	const char *id = json_string_value(json_array_get(json_object_get(j, "ids"), 0));
	bool received = false, accepted = false;
	for (int i = 0; i < 1000 && !(received && accepted); i++) {
		Noetl__TimelineRequest q = NOETL__TIMELINE_REQUEST__INIT;
		q.tenant = "acme";
		q.event_id = (char *)id;
		ProtobufCMessage *out = NULL;
		if (testrpc_call(fx.recc, &noetl__recorder__descriptor, "Timeline", &q.base, NULL,
		                 &out, NULL) == 0) {
			Noetl__TimelineReply *t = (Noetl__TimelineReply *)out;
			for (size_t k = 0; k < t->n_entries; k++) {
				received |=
				        t->entries[k]->kind == NOETL__TIMELINE_KIND__TL_RECEIVED;
				accepted |=
				        t->entries[k]->kind == NOETL__TIMELINE_KIND__TL_ACCEPTED;
			}
			protobuf_c_message_free_unpacked(out, NULL);
		}
		if (!(received && accepted))
			util_sleep_ms(25);
	}
	cr_assert(received && accepted);
	json_decref(j);
}

Test(ingest, health_readiness_and_metrics_are_served)
{
	struct httpc_reply r;
	cr_assert_eq(httpc_request(fx.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 200);
	httpc_reply_free(&r);
	cr_assert_eq(httpc_request(fx.port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.body);
	httpc_reply_free(&r);
	json_decref(post_expect("/events/acme/raw", fx.token_a, NULL, "{\"data\":[1,2]}", 202));
	cr_assert_eq(httpc_request(fx.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 200);
	cr_assert_not_null(strstr(r.body, "noetl_listener_events_total{outcome=\"accepted\"} 2"),
	                   "%s", r.body);
	cr_assert_not_null(strstr(r.body, "noetl_listener_definitions{kind=\"tenants\"} 2"));
	httpc_reply_free(&r);
}

/* Sends data one byte at a time with a pause between. */
static void trickle(int fd, const char *data, int pause_ms)
{
	for (const char *p = data; *p != '\0'; p++) {
		cr_assert_eq(send(fd, p, 1, MSG_NOSIGNAL), 1);
		util_sleep_ms(pause_ms);
	}
}

Test(ingest, a_slowloris_client_does_not_block_others)
{
	struct httpc *slow[4];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(httpc_connect(fx.port, 20000, &slow[i]), 0);
		trickle(httpc_fd(slow[i]), "POST /events/acme/raw HTTP/1.1\r\nHo", 2);
	}
	/* others are served while the slow ones dawdle mid-header */
	for (int i = 0; i < 20; i++)
		json_decref(
		        post_expect("/events/acme/raw", fx.token_a, NULL, "{\"data\":[1]}", 202));
	for (int i = 0; i < 4; i++)
		trickle(httpc_fd(slow[i]), "st: x\r\nX-Slow: 1\r\n", 5);
	for (int i = 0; i < 20; i++)
		json_decref(
		        post_expect("/events/acme/raw", fx.token_a, NULL, "{\"data\":[1]}", 202));
	/* and a slow client is still answered once it is done */
	char rest[256];
	snprintf(rest, sizeof(rest),
	         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	         "Content-Length: 12\r\n\r\n{\"data\":[2]}",
	         fx.token_a);
	trickle(httpc_fd(slow[0]), rest, 0);
	struct httpc_reply r;
	cr_assert_eq(httpc_recv(slow[0], &r), 0);
	cr_assert_eq(r.status, 202, "%s", r.body);
	httpc_reply_free(&r);
	for (int i = 0; i < 4; i++)
		httpc_close(slow[i]);
	cr_assert_eq(fx_depth(&fx, "acme"), 41);
}

Test(ingest, concurrent_requests_on_keep_alive_connections_are_all_accepted)
{
	enum { CONNS = 8, PER = 25 };
	struct httpc *c[CONNS];
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
	         fx.token_a);
	for (int i = 0; i < CONNS; i++)
		cr_assert_eq(httpc_connect(fx.port, 20000, &c[i]), 0);
	for (int k = 0; k < PER; k++) {
		for (int i = 0; i < CONNS; i++)
			cr_assert_eq(httpc_send(c[i], "POST", "/events/acme/raw", hdr,
			                        "{\"data\":[1]}", 12),
			             0);
		for (int i = 0; i < CONNS; i++) {
			struct httpc_reply r;
			cr_assert_eq(httpc_recv(c[i], &r), 0);
			cr_assert_eq(r.status, 202, "%s", r.body);
			httpc_reply_free(&r);
		}
	}
	for (int i = 0; i < CONNS; i++)
		httpc_close(c[i]);
	cr_assert_eq(fx_depth(&fx, "acme"), CONNS * PER);
}

/* --- a tenant over its queue limit ---------------------------------------- */

static void setup_small_queue(void)
{
	fx.max_depth_tenant = 3;
	fx_start(&fx, NULL);
}

TestSuite(ingest_limits, .init = setup_small_queue, .fini = teardown, .timeout = 120);

Test(ingest_limits, a_tenant_over_its_queue_limit_gets_429_with_retry_after)
{
	json_decref(post_expect("/events/acme/raw", fx.token_a, NULL, "{\"data\":[1,2,3]}", 202));
	struct httpc_reply r;
	cr_assert_eq(fx_post(&fx, "/events/acme/raw", fx.token_a, NULL, "{\"data\":[4]}", &r), 0);
	cr_assert_eq(r.status, 429, "%s", r.body);
	char ra[16];
	cr_assert_not_null(httpc_header(&r, "Retry-After", ra, sizeof(ra)));
	httpc_reply_free(&r);
	/* another tenant is not affected */
	json_decref(post_expect("/events/beta/greet", fx.token_b, NULL, "{\"data\":[1]}", 202));
}

/* --- development mode ----------------------------------------------------- */

static void setup_dev(void)
{
	struct listener_config cfg = {.dev_mode = true};
	fx_start(&fx, &cfg);
}

TestSuite(ingest_dev, .init = setup_dev, .fini = teardown, .timeout = 120);

Test(ingest_dev, development_mode_accepts_requests_without_credentials)
{
	json_decref(post_expect("/events/acme/raw", NULL, NULL, "{\"data\":[1]}", 202));
	expect_error("/events/acme/greet", NULL, NULL, "{\"data\":[{}]}", 400, NULL);
	expect_error("/events/nosuch/raw", NULL, NULL, "{\"data\":[1]}", 404, NULL);
}

/* --- shedding ---------------------------------------------------------------- */

static void setup_shed(void)
{
	struct listener_config cfg = {.max_inflight = 2, .call_timeout_ms = 100000};
	fx_start(&fx, &cfg);
}

TestSuite(ingest_shed, .init = setup_shed, .fini = teardown, .timeout = 120);

static double inflight(void)
{
	struct httpc_reply r;
	cr_assert_eq(httpc_request(fx.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	const char *p = strstr(r.body, "\nnoetl_listener_inflight_requests ");
	double v = p != NULL ? atof(p + strlen("\nnoetl_listener_inflight_requests ")) : -1;
	httpc_reply_free(&r);
	return v;
}

static void count_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)ev;
	atomic_fetch_add((atomic_int *)arg, 1);
}

Test(ingest_shed, requests_over_the_in_flight_limit_get_503_before_their_body_is_read)
{
	/* A Queue that takes requests and never answers holds them in flight. */
	fx_queue_down(&fx);
	nng_socket hole;
	cr_assert_eq(nng_rep0_open(&hole), 0);
	static atomic_int hole_pipes;
	atomic_store(&hole_pipes, 0);
	cr_assert_eq(nng_pipe_notify(hole, NNG_PIPE_EV_ADD_POST, count_pipe, &hole_pipes), 0);
	cr_assert_eq(nng_listen(hole, fx.queue_url, NULL, 0), 0);
	/* The listener fails a call at once while it has no Queue connected
	 * (503, never in flight): wait for its dialer to reach the hole. */
	for (int i = 0; i < 6000 && atomic_load(&hole_pipes) == 0; i++)
		util_sleep_ms(10);
	cr_assert_gt(atomic_load(&hole_pipes), 0, "the listener never dialled the Queue again");
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
	         fx.token_a);
	struct httpc *c[2];
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(httpc_connect(fx.port, 60000, &c[i]), 0);
		cr_assert_eq(
		        httpc_send(c[i], "POST", "/events/acme/raw", hdr, "{\"data\":[1]}", 12), 0);
	}
	for (int i = 0; i < 6000 && inflight() < 2; i++)
		util_sleep_ms(10);
	/* (the scrapes of /metrics above never count against the limit) */
	cr_assert_eq(inflight(), 2);
	struct httpc_reply r;
	cr_assert_eq(fx_post(&fx, "/events/acme/raw", fx.token_a, NULL, "{\"data\":[2]}", &r), 0);
	cr_assert_eq(r.status, 503, "%s", r.body);
	cr_assert_not_null(strstr(r.body, "overloaded"), "%s", r.body);
	char ra[16];
	cr_assert_not_null(httpc_header(&r, "Retry-After", ra, sizeof(ra)));
	httpc_reply_free(&r);
	/* health is still answered */
	cr_assert_eq(httpc_request(fx.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 200);
	httpc_reply_free(&r);
	/* The hole answers the held calls UNAVAILABLE: their clients get 503.
	 * The two requests may have gone as one Enqueue call or as two. */
	nng_socket_set_ms(hole, NNG_OPT_RECVTIMEO, 100);
	while (inflight() > 0) {
		nng_msg *m;
		if (nng_recvmsg(hole, &m, 0) != 0)
			continue;
		nng_msg_clear(m);
		Noetl__Reply rep = NOETL__REPLY__INIT;
		rep.status = NOETL__STATUS__UNAVAILABLE;
		rep.message = "held by the test";
		uint8_t buf[64];
		size_t n = noetl__reply__pack(&rep, buf);
		cr_assert_eq(nng_msg_append(m, buf, n), 0);
		cr_assert_eq(nng_sendmsg(hole, m, 0), 0);
	}
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(httpc_recv(c[i], &r), 0);
		cr_assert_eq(r.status, 503, "%s", r.body);
		httpc_reply_free(&r);
		httpc_close(c[i]);
	}
	/* and with the real Queue back, requests go through again */
	nng_close(hole);
	fx_queue_up(&fx);
	json_decref(post_expect("/events/acme/raw", fx.token_a, NULL, "{\"data\":[3]}", 202));
}
