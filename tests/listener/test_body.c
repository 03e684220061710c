#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"

static void spans_are(const char *text, size_t n, const char *const *want)
{
	struct listener_body_span sp[8];
	cr_assert(listener_body_data_spans(text, strlen(text), sp, n), "spans of %s", text);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(sp[i].len, strlen(want[i]), "element %zu of %s", i, text);
		cr_assert(memcmp(text + sp[i].off, want[i], sp[i].len) == 0, "element %zu of %s", i,
		          text);
	}
}

Test(body, finds_each_event_of_a_data_array_as_sent)
{
	const char *w1[] = {"{\"a\":1}", "2.50", "\"x,]\\\"y\"", "[1,[2,{}]]", "null"};
	spans_are("{\"data\":[{\"a\":1},2.50,\"x,]\\\"y\",[1,[2,{}]],null]}", 5, w1);
	const char *w2[] = {"{ \"n\" : 1e400 }", "true"};
	spans_are(" {\n \"data\" :\t[ { \"n\" : 1e400 } ,\n true ] }\n", 2, w2);
	const char *w3[] = {"123456789012345678901234567890"};
	spans_are("{\"d\\u0061ta\":[123456789012345678901234567890]}", 1, w3);
}

Test(body, refuses_a_count_that_does_not_match)
{
	struct listener_body_span sp[4];
	const char *t = "{\"data\":[1,2,3]}";
	cr_assert(!listener_body_data_spans(t, strlen(t), sp, 2));
	cr_assert(!listener_body_data_spans(t, strlen(t), sp, 4));
	cr_assert(!listener_body_data_spans("[1,2]", 5, sp, 2));
	cr_assert(listener_body_data_spans("{\"data\":[]}", 11, sp, 0));
}

Test(body, compacts_whitespace_outside_strings_only)
{
	const char *src = "{ \"a b\" : [ 1 , \"c\\\" d\" ],\n\t\"e\": 0.10 }";
	char out[64];
	size_t n = listener_body_compact(src, strlen(src), out);
	out[n] = '\0';
	cr_assert_str_eq(out, "{\"a b\":[1,\"c\\\" d\"],\"e\":0.10}");
}

Test(body, checks_a_webhook_signature_in_either_case)
{
	const char *body = "{\"hello\":\"world\"}";
	char sig[72];
	listener_body_signature("whsec", body, strlen(body), sig);
	cr_assert_eq(strncmp(sig, "sha256=", 7), 0);
	cr_assert_eq(strlen(sig), 71);
	cr_assert(listener_body_signature_ok("whsec", body, strlen(body), sig));
	char upper[72];
	strcpy(upper, sig);
	for (char *p = upper + 7; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	cr_assert(listener_body_signature_ok("whsec", body, strlen(body), upper));
	cr_assert(!listener_body_signature_ok("other", body, strlen(body), sig));
	cr_assert(!listener_body_signature_ok("whsec", body, strlen(body) - 1, sig));
	cr_assert(!listener_body_signature_ok("whsec", body, strlen(body), "sha256=abc"));
	cr_assert(!listener_body_signature_ok("whsec", body, strlen(body), sig + 7));
	cr_assert(!listener_body_signature_ok("whsec", body, strlen(body), NULL));
}

Test(body, knows_json_media_types)
{
	cr_assert(listener_body_is_json_type("application/json"));
	cr_assert(listener_body_is_json_type("Application/JSON; charset=utf-8"));
	cr_assert(listener_body_is_json_type("application/cloudevents+json"));
	cr_assert(!listener_body_is_json_type("text/plain"));
	cr_assert(!listener_body_is_json_type("application/x-www-form-urlencoded"));
	cr_assert(!listener_body_is_json_type("+json"));
	cr_assert(!listener_body_is_json_type(NULL));
}
