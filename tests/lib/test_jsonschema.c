/*
 * Unit tests for src/lib/jsonschema: each keyword family, references,
 * formats, error locations and messages, limits and hostile input.
 * Schemas are written with single quotes for readability; sq() turns them
 * into JSON.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema.h"

/* Copies s with every ' replaced by ". */
static char *sq(const char *s)
{
	char *out = strdup(s);
	cr_assert_not_null(out);
	for (char *p = out; *p; p++)
		if (*p == '\'')
			*p = '"';
	return out;
}

static struct jsonschema *compile_opt(const char *schema, const struct jsonschema_options *opt)
{
	char *text = sq(schema);
	struct jsonschema *s = NULL;
	char *err = NULL;
	int rc = jsonschema_compile(text, strlen(text), opt, &s, &err);
	cr_assert_eq(rc, 0, "compiling %s failed: %s", text, err ? err : "(no message)");
	free(text);
	return s;
}

static struct jsonschema *compile(const char *schema)
{
	return compile_opt(schema, NULL);
}

/* Compiles a schema that must fail; returns the malloc'ed message. */
static char *compile_error_opt(const char *schema, const struct jsonschema_options *opt)
{
	char *text = sq(schema);
	struct jsonschema *s = NULL;
	char *err = NULL;
	int rc = jsonschema_compile(text, strlen(text), opt, &s, &err);
	cr_assert_eq(rc, -EINVAL, "compiling %s returned %d", text, rc);
	cr_assert_null(s);
	cr_assert_not_null(err);
	free(text);
	return err;
}

static char *compile_error(const char *schema)
{
	return compile_error_opt(schema, NULL);
}

static json_t *parse(const char *instance)
{
	char *text = sq(instance);
	json_t *v = NULL;
	char *err = NULL;
	cr_assert_eq(jsonschema_parse(text, strlen(text), &v, &err), 0, "bad test JSON %s: %s",
	             text, err);
	free(text);
	return v;
}

/* Validates quietly and collecting, checks both agree, returns the verdict. */
static bool check(const struct jsonschema *s, const char *instance)
{
	json_t *v = parse(instance);
	struct jsonschema_errors errs;
	jsonschema_errors_init(&errs, 0);
	bool quiet = jsonschema_validate(s, v, NULL);
	bool loud = jsonschema_validate(s, v, &errs);
	cr_assert_eq(quiet, loud, "quiet and collecting validation disagree on %s", instance);
	cr_assert_eq(loud, errs.len == 0, "%s: verdict %d with %zu errors", instance, loud,
	             errs.len);
	jsonschema_errors_release(&errs);
	json_decref(v);
	return loud;
}

static void expect(const char *schema, const char *instance, bool want)
{
	struct jsonschema *s = compile(schema);
	cr_expect_eq(check(s, instance), want, "%s against %s: expected %s", instance, schema,
	             want ? "valid" : "invalid");
	jsonschema_destroy(s);
}

/* Validates collecting errors into errs (initialized here). */
static bool errors_of(const struct jsonschema *s, const char *instance,
                      struct jsonschema_errors *errs)
{
	json_t *v = parse(instance);
	jsonschema_errors_init(errs, 0);
	bool ok = jsonschema_validate(s, v, errs);
	json_decref(v);
	return ok;
}

static void expect_error(const struct jsonschema_errors *errs, size_t i, const char *instance,
                         const char *schema, const char *message)
{
	cr_assert_gt(errs->len, i, "only %zu errors", errs->len);
	const struct jsonschema_error *e = &errs->items[i];
	cr_expect_str_eq(e->instance, instance);
	cr_expect_str_eq(e->schema, schema);
	cr_expect_str_eq(e->message, message);
}

/* ---- compiling ---- */

Test(jsonschema, compiles_a_schema_and_validates_a_matching_instance)
{
	struct jsonschema *s = compile("{'type': 'object', 'properties': {'name': {'type': "
	                               "'string'}}, 'required': ['name']}");
	cr_assert(check(s, "{'name': 'greet'}"));
	cr_assert_not(check(s, "{'name': 7}"));
	cr_assert_not(check(s, "{}"));
	cr_assert_eq(jsonschema_draft(s), JSONSCHEMA_DRAFT7);
	jsonschema_destroy(s);
	jsonschema_destroy(NULL);
}

Test(jsonschema, compile_errors_name_the_json_pointer_and_the_reason)
{
	char *err = compile_error("{'properties': {'age': {'minimum': 'ten'}}}");
	cr_assert_str_eq(err,
	                 "#/properties/age/minimum: \"minimum\" must be a number, got a string");
	free(err);
	err = compile_error("{'items': [{'type': 'strin'}]}");
	cr_assert_str_eq(err, "#/items/0/type: unknown type \"strin\"; use \"array\", \"boolean\", "
	                      "\"integer\", \"null\", \"number\", \"object\" or \"string\"");
	free(err);
	err = compile_error("{'properties': {'a/b': 5}}");
	cr_assert_str_eq(err, "#/properties/a~1b: a member must be a schema (an object or a "
	                      "boolean), got a number");
	free(err);
	err = compile_error("{'required': ['a', 3]}");
	cr_assert_str_eq(err,
	                 "#/required: \"required\" must hold only strings; item 1 is a number");
	free(err);
	err = compile_error("{'minLength': -1}");
	cr_assert_str_eq(err, "#/minLength: \"minLength\" must be a non-negative integer, got a "
	                      "negative or fractional number");
	free(err);
	err = compile_error("{'anyOf': []}");
	cr_assert_str_eq(err,
	                 "#/anyOf: \"anyOf\" must be a non-empty array of schemas, got an array");
	free(err);
	err = compile_error("{'multipleOf': 0}");
	cr_assert_str_eq(err, "#/multipleOf: \"multipleOf\" must be greater than 0");
	free(err);
}

Test(jsonschema, compile_errors_in_unused_definitions_are_still_reported)
{
	char *err = compile_error("{'definitions': {'x': {'type': 5}}}");
	cr_assert_str_eq(err, "#/definitions/x/type: \"type\" must be a type name or an array of "
	                      "them, got a number");
	free(err);
}

Test(jsonschema, invalid_json_text_is_refused_with_line_and_column)
{
	struct jsonschema *s = NULL;
	char *err = NULL;
	const char *text = "{\n  \"type\": \"string\",\n}";
	cr_assert_eq(jsonschema_compile(text, strlen(text), NULL, &s, &err), -EINVAL);
	cr_assert_null(s);
	cr_assert(strstr(err, "schema: invalid JSON at line 3, column 1") == err, "%s", err);
	free(err);
	struct jsonschema_options opt = {.base_uri = "greet.json"};
	cr_assert_eq(jsonschema_compile("{", 1, &opt, &s, &err), -EINVAL);
	cr_assert(strncmp(err, "greet.json: invalid JSON at line 1", 34) == 0, "%s", err);
	free(err);
}

Test(jsonschema, duplicate_keys_in_schema_text_are_refused)
{
	char *err = compile_error("{'type': 'string', 'type': 'number'}");
	cr_assert(strstr(err, "duplicate object key") != NULL, "%s", err);
	free(err);
}

Test(jsonschema, an_unsupported_dollar_schema_is_refused)
{
	char *err = compile_error("{'$schema': 'https://json-schema.org/draft/2020-12/schema'}");
	cr_assert_str_eq(err,
	                 "#/$schema: \"https://json-schema.org/draft/2020-12/schema\" is not a "
	                 "supported \"$schema\"; use draft-04, draft-06 or draft-07 "
	                 "(\"http://json-schema.org/draft-07/schema#\")");
	free(err);
}

Test(jsonschema, dollar_schema_selects_draft4)
{
	struct jsonschema *s =
	        compile("{'$schema': 'http://json-schema.org/draft-04/schema#', "
	                "'type': 'integer', 'maximum': 3, 'exclusiveMaximum': true}");
	cr_assert_eq(jsonschema_draft(s), JSONSCHEMA_DRAFT4);
	cr_assert(check(s, "2"));
	cr_assert_not(check(s, "3"));
	cr_assert_not(check(s, "2.0"), "draft-04 does not count 2.0 as an integer");
	jsonschema_destroy(s);
	/* A draft-06 exclusiveMaximum (a number) is an error in draft-04. */
	char *err = compile_error("{'$schema': 'http://json-schema.org/draft-04/schema#', "
	                          "'exclusiveMaximum': 3}");
	cr_assert_str_eq(err, "#/exclusiveMaximum: in draft-04 \"exclusiveMaximum\" is a boolean "
	                      "that makes \"maximum\" exclusive, got a number");
	free(err);
	err = compile_error("{'$schema': 'http://json-schema.org/draft-04/schema#', "
	                    "'properties': {'a': true}}");
	cr_assert_str_eq(err,
	                 "#/properties/a: a member must be a schema (an object), got a boolean");
	free(err);
}

Test(jsonschema, dollar_schema_selects_draft6_which_has_no_if)
{
	struct jsonschema *s = compile("{'$schema': 'http://json-schema.org/draft-06/schema', "
	                               "'if': {'type': 'string'}, 'then': false, 'const': 'x'}");
	cr_assert_eq(jsonschema_draft(s), JSONSCHEMA_DRAFT6);
	cr_assert(check(s, "'x'"), "if/then are unknown keywords in draft-06");
	cr_assert_not(check(s, "'y'"));
	jsonschema_destroy(s);
}

Test(jsonschema, the_default_draft_option_applies_without_dollar_schema)
{
	struct jsonschema_options opt = {.default_draft = JSONSCHEMA_DRAFT4};
	struct jsonschema *s = compile_opt("{'type': 'integer'}", &opt);
	cr_assert_eq(jsonschema_draft(s), JSONSCHEMA_DRAFT4);
	cr_assert_not(check(s, "1.0"));
	jsonschema_destroy(s);
	s = compile("{'type': 'integer'}");
	cr_assert(check(s, "1.0"), "draft-07 counts 1.0 as an integer");
	jsonschema_destroy(s);
}

Test(jsonschema, compile_json_keeps_its_own_copy_of_the_schema)
{
	json_t *schema = json_pack("{s:s}", "type", "string");
	struct jsonschema *s = NULL;
	char *err = NULL;
	cr_assert_eq(jsonschema_compile_json(schema, NULL, &s, &err), 0);
	json_object_set_new(schema, "type", json_string("number"));
	json_decref(schema);
	cr_assert(check(s, "'text'"));
	cr_assert_not(check(s, "5"));
	jsonschema_destroy(s);
}

/* ---- generic keywords ---- */

Test(jsonschema, a_value_of_the_wrong_type_is_reported_with_both_types)
{
	struct jsonschema *s = compile("{'properties': {'n': {'type': 'string'}, 'm': {'type': "
	                               "['integer', 'null']}}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'n': 5, 'm': 1.5}", &errs));
	cr_assert_eq(errs.len, 2);
	expect_error(&errs, 0, "/n", "#/properties/n/type", "expected \"string\", got \"integer\"");
	expect_error(&errs, 1, "/m", "#/properties/m/type",
	             "expected one of \"null\", \"integer\", got \"number\"");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, enum_and_const_compare_numbers_by_value_and_objects_by_content)
{
	expect("{'enum': [1, 'a', {'x': [1, 2]}]}", "1.0", true);
	expect("{'enum': [1, 'a', {'x': [1, 2]}]}", "{'x': [1.0, 2]}", true);
	expect("{'enum': [1, 'a', {'x': [1, 2]}]}", "{'x': [2, 1]}", false);
	expect("{'enum': [1, 'a']}", "true", false);
	expect("{'const': {'a': 1, 'b': null}}", "{'b': null, 'a': 1}", true);
	expect("{'const': {'a': 1, 'b': null}}", "{'a': 1}", false);
	expect("{'const': false}", "0", false);
	expect("{'const': null}", "null", true);

	struct jsonschema *s = compile("{'enum': ['red', 'green']}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "'blue'", &errs));
	expect_error(&errs, 0, "", "#/enum", "\"blue\" is not one of [\"red\",\"green\"]");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

/* ---- numbers ---- */

Test(jsonschema, numeric_limits_are_checked_with_inclusive_and_exclusive_bounds)
{
	expect("{'minimum': 1, 'maximum': 3}", "3", true);
	expect("{'minimum': 1, 'maximum': 3}", "3.0001", false);
	expect("{'minimum': 1, 'maximum': 3}", "1", true);
	expect("{'minimum': 1, 'maximum': 3}", "0.9", false);
	expect("{'exclusiveMinimum': 1, 'exclusiveMaximum': 3}", "1", false);
	expect("{'exclusiveMinimum': 1, 'exclusiveMaximum': 3}", "2.99", true);
	expect("{'exclusiveMinimum': 1, 'exclusiveMaximum': 3}", "3", false);
	expect("{'maximum': 3}", "'not a number'", true);

	struct jsonschema *s = compile("{'maximum': 3, 'exclusiveMinimum': 0}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "7", &errs));
	expect_error(&errs, 0, "", "#/maximum", "7 is greater than the maximum 3");
	jsonschema_errors_release(&errs);
	cr_assert_not(errors_of(s, "0", &errs));
	expect_error(&errs, 0, "", "#/exclusiveMinimum",
	             "0 is not greater than the exclusive minimum 0");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, integers_and_reals_compare_exactly_beyond_two_to_the_53)
{
	/* 2^53 + 1 cannot be a double; a naive conversion would call these equal. */
	expect("{'maximum': 9007199254740992.0}", "9007199254740993", false);
	expect("{'maximum': 9007199254740993}", "9007199254740992.0", true);
	expect("{'minimum': 9007199254740993}", "9007199254740992.0", false);
	expect("{'maximum': 9223372036854775807}", "9.3e18", false);
	expect("{'minimum': -9223372036854775808}", "-9.3e18", false);
	expect("{'const': 9007199254740993}", "9007199254740992.0", false);
}

Test(jsonschema, multiple_of_handles_decimal_fractions_and_huge_quotients)
{
	expect("{'multipleOf': 0.0001}", "0.0075", true);
	expect("{'multipleOf': 0.0001}", "0.00751", false);
	expect("{'multipleOf': 0.1}", "0.3", true);
	expect("{'multipleOf': 0.1}", "0.30000001", false);
	expect("{'multipleOf': 1.5}", "4.5", true);
	expect("{'multipleOf': 2}", "9223372036854775806", true);
	expect("{'multipleOf': 2}", "-9223372036854775807", false);
	expect("{'multipleOf': 3}", "-9223372036854775808", false);
	/* 1e308 / 0.5 overflows to infinity: the exact remainder decides. */
	expect("{'type': 'integer', 'multipleOf': 0.5}", "1e308", true);
	expect("{'multipleOf': 0.25}", "1e308", true);
	expect("{'multipleOf': 0.7}", "1.7976931348623157e308", false);
}

Test(jsonschema, integers_too_big_for_64_bits_are_read_as_reals)
{
	json_t *v = NULL;
	char *err = NULL;
	const char *text = "[123456789012345678901234567890, 1]";
	cr_assert_eq(jsonschema_parse(text, strlen(text), &v, &err), 0);
	cr_assert(json_is_real(json_array_get(v, 0)));
	struct jsonschema *s = compile("{'items': {'type': 'integer', 'minimum': 1e29}}");
	cr_assert_not(jsonschema_validate(s, v, NULL), "1 is below the minimum");
	cr_assert(jsonschema_validate(s, json_array_get(v, 0), NULL));
	json_decref(v);
	jsonschema_destroy(s);
	s = compile("{'$schema': 'http://json-schema.org/draft-04/schema#', 'type': 'integer'}");
	cr_assert(check(s, "-123456789012345678901234567890"),
	          "a bignum is an integer even in draft-04");
	jsonschema_destroy(s);
}

Test(jsonschema, numbers_beyond_the_double_range_are_a_clear_error)
{
	char *err = compile_error("{'maximum': 1e400}");
	cr_assert(strstr(err, "schema: invalid JSON at line 1, column") == err, "%s", err);
	cr_assert(strstr(err, "overflow") != NULL, "%s", err);
	free(err);
	json_t *v = NULL;
	cr_assert_eq(jsonschema_parse("[1e400]", 7, &v, &err), -EINVAL);
	cr_assert_null(v);
	cr_assert(strstr(err, "real number overflow") != NULL, "%s", err);
	free(err);
	cr_assert_eq(jsonschema_parse("-1e-400", 7, &v, &err), 0, "underflow is just zero");
	json_decref(v);
}

/* ---- strings ---- */

Test(jsonschema, string_lengths_count_code_points_not_bytes)
{
	expect("{'maxLength': 1, 'minLength': 1}", "'\xc3\xa9'", true);
	expect("{'maxLength': 2}", "'\xf0\x9f\x98\x80\xf0\x9f\x98\x80'", true);
	expect("{'maxLength': 1}", "'\xf0\x9f\x98\x80\xf0\x9f\x98\x80'", false);
	expect("{'minLength': 3}", "'ab'", false);
	expect("{'minLength': 3}", "12", true);

	struct jsonschema *s = compile("{'maxLength': 1, 'minLength': 4}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "'ab'", &errs));
	expect_error(&errs, 0, "", "#/maxLength", "\"ab\" is longer than 1 character");
	expect_error(&errs, 1, "", "#/minLength", "\"ab\" is shorter than 4 characters");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

static void expect_pattern(const char *pattern, const char *subject, bool want)
{
	json_t *schema = json_pack("{s:s}", "pattern", pattern);
	struct jsonschema *s = NULL;
	char *err = NULL;
	cr_assert_eq(jsonschema_compile_json(schema, NULL, &s, &err), 0, "pattern %s: %s", pattern,
	             err);
	json_t *v = json_string(subject);
	cr_expect_eq(jsonschema_validate(s, v, NULL), want, "/%s/ against \"%s\": expected %s",
	             pattern, subject, want ? "a match" : "no match");
	json_decref(v);
	json_decref(schema);
	jsonschema_destroy(s);
}

Test(jsonschema, patterns_search_anywhere_unless_anchored)
{
	expect_pattern("a+", "xxaayy", true);
	expect_pattern("^a+", "xxaayy", false);
	expect_pattern("a+$", "xxaa", true);
	expect_pattern("^$", "", true);
	expect_pattern("^a*$", "aab", false);
	expect_pattern("", "anything", true);
}

Test(jsonschema, patterns_follow_ecma_262_escapes_and_classes)
{
	expect_pattern("^\\d{3}-\\d{4}$", "555-1234", true);
	expect_pattern("^\\d+$", "\xd9\xa3", false); /* \d is ASCII only */
	expect_pattern("^\\w+$", "abc_123", true);
	expect_pattern("^\\w+$", "\xc3\xa9", false);
	expect_pattern("^\\s$", "\xc2\xa0", true); /* no-break space is white space */
	expect_pattern("^\\s$", "\xe2\x80\xa8", true);
	expect_pattern("^\\S+$", "a b", false);
	expect_pattern("^[^a-c]+$", "xyz", true);
	expect_pattern("^[^a-c]+$", "xbz", false);
	expect_pattern("^[\\d\\-x]+$", "1-x2", true);
	expect_pattern("^[a-]+$", "a-a", true);
	expect_pattern("^[\\D]$", "x", true);
	expect_pattern("^.$", "\xf0\x9f\x98\x80", true); /* one code point */
	expect_pattern("^.$", "\n", false);
	expect_pattern("\\bcat\\b", "a cat sat", true);
	expect_pattern("\\bcat\\b", "concatenate", false);
	expect_pattern("\\Bcat\\B", "concatenate", true);
	expect_pattern("^(?:ab|cd){2}$", "abcd", true);
	expect_pattern("^(ab|cd){2,3}$", "ababababab", false);
	expect_pattern("^a{2,}$", "aaaa", true);
	expect_pattern("^a{2,}$", "a", false);
	expect_pattern("^a{0}b$", "b", true);
	expect_pattern("^x*?y??$", "xx", true);
	expect_pattern("^\\x41\\u0042\\u{1F600}$", "AB\xf0\x9f\x98\x80", true);
	expect_pattern("^\\uD83D\\uDE00$", "\xf0\x9f\x98\x80", true);
	expect_pattern("^\\cJ$", "\n", true);
	expect_pattern("^\\t\\/\\.$", "\t/.", true);
	expect_pattern("^caf\xc3\xa9$", "caf\xc3\xa9", true);
	expect_pattern("^[\xc3\xa0-\xc3\xbf]+$", "\xc3\xa9\xc3\xa8", true);
	expect_pattern("^a{,2}$", "a{,2}", true); /* not a quantifier: literal braces */
	expect_pattern("^(?<word>[a-z]+)!$", "hey!", true);
}

Test(jsonschema, patterns_support_lookahead_and_lookbehind)
{
	expect_pattern("^(?=.*\\d)(?=.*[a-z]).{6,}$", "abc123", true);
	expect_pattern("^(?=.*\\d)(?=.*[a-z]).{6,}$", "abcdef", false);
	expect_pattern("^(?!admin$)[a-z]+$", "admin", false);
	expect_pattern("^(?!admin$)[a-z]+$", "administrator", true);
	expect_pattern("(?<=\\$)\\d+", "cost: $42", true);
	expect_pattern("(?<=\\$)\\d+", "cost: 42", false);
	expect_pattern("(?<!\\$)\\b\\d+", "$42", false);
	expect_pattern("(?<!\\$)\\b\\d+", "$42 or 17", true);
	expect_pattern("(?<=ab(?=c))c", "abc", true);
}

Test(jsonschema, invalid_patterns_are_refused_with_their_location)
{
	char *err = compile_error("{'properties': {'p': {'pattern': '^(abc'}}}");
	cr_assert_str_eq(err,
	                 "#/properties/p/pattern: invalid pattern \"^(abc\": missing \")\" for "
	                 "the group at offset 1");
	free(err);
	err = compile_error("{'patternProperties': {'[a-': {}}}");
	cr_assert_str_eq(err, "#/patternProperties/[a-: invalid pattern \"[a-\": missing \"]\" for "
	                      "the class at offset 0");
	free(err);
	json_t *schema = json_pack("{s:s}", "pattern", "^\\Z$");
	struct jsonschema *s = NULL;
	cr_assert_eq(jsonschema_compile_json(schema, NULL, &s, &err), -EINVAL);
	cr_assert_str_eq(err, "#/pattern: invalid pattern \"^\\\\Z$\": invalid escape \"\\Z\" at "
	                      "offset 1");
	free(err);
	json_decref(schema);
	err = compile_error("{'pattern': 'a**'}");
	cr_assert(strstr(err, "nothing to repeat at offset 2") != NULL, "%s", err);
	free(err);
	err = compile_error("{'pattern': '(?i)abc'}");
	cr_assert(strstr(err, "inline flags do not exist") != NULL, "%s", err);
	free(err);
	err = compile_error("{'pattern': 'b{3,2}'}");
	cr_assert(strstr(err, "numbers out of order") != NULL, "%s", err);
	free(err);
}

Test(jsonschema, backreferences_are_refused_because_they_are_not_regular)
{
	json_t *schema = json_pack("{s:s}", "pattern", "^(a)\\1$");
	struct jsonschema *s = NULL;
	char *err = NULL;
	cr_assert_eq(jsonschema_compile_json(schema, NULL, &s, &err), -EINVAL);
	cr_assert_str_eq(err, "#/pattern: invalid pattern \"^(a)\\\\1$\": backreferences are not "
	                      "supported (offset 4); rewrite the pattern without them");
	free(err);
	json_decref(schema);
	/* They are still valid "regex" format values: that is about syntax. */
	struct jsonschema *f = compile("{'format': 'regex'}");
	json_t *v = json_string("^(a)\\1$");
	cr_assert(jsonschema_validate(f, v, NULL));
	json_decref(v);
	v = json_string("^(a)\\2$");
	cr_assert_not(jsonschema_validate(f, v, NULL), "\\2 names no group");
	json_decref(v);
	jsonschema_destroy(f);
}

Test(jsonschema, a_pattern_failure_names_the_value_and_the_pattern)
{
	struct jsonschema *s = compile("{'properties': {'id': {'pattern': '^[0-9]+$'}}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'id': 'abc'}", &errs));
	expect_error(&errs, 0, "/id", "#/properties/id/pattern",
	             "\"abc\" does not match the pattern \"^[0-9]+$\"");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

/* ---- arrays ---- */

Test(jsonschema, items_apply_to_every_element_or_by_position)
{
	expect("{'items': {'type': 'integer'}}", "[1, 2, 3]", true);
	expect("{'items': {'type': 'integer'}}", "[1, 'x']", false);
	expect("{'items': [{'type': 'integer'}, {'type': 'string'}]}", "[1, 'x', null]", true);
	expect("{'items': [{'type': 'integer'}, {'type': 'string'}]}", "['x']", false);
	expect("{'items': [{}], 'additionalItems': {'type': 'boolean'}}", "[1, true, false]", true);
	expect("{'items': [{}], 'additionalItems': {'type': 'boolean'}}", "[1, true, 2]", false);
	expect("{'additionalItems': false}", "[1, 2]", true); /* no tuple: ignored */
	expect("{'items': {}}", "{'0': 1}", true);

	struct jsonschema *s =
	        compile("{'items': [{'type': 'integer'}], 'additionalItems': false}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "[1, 2, 3]", &errs));
	cr_assert_eq(errs.len, 2);
	expect_error(&errs, 0, "/1", "#/additionalItems",
	             "item 1 is not allowed: the array may hold only 1 item");
	expect_error(&errs, 1, "/2", "#/additionalItems",
	             "item 2 is not allowed: the array may hold only 1 item");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, array_sizes_contains_and_uniqueness_are_checked)
{
	expect("{'minItems': 2, 'maxItems': 3}", "[1]", false);
	expect("{'minItems': 2, 'maxItems': 3}", "[1, 2, 3, 4]", false);
	expect("{'minItems': 2, 'maxItems': 3}", "[1, 2]", true);
	expect("{'contains': {'const': 5}}", "[1, 5]", true);
	expect("{'contains': {'const': 5}}", "[1, 2]", false);
	expect("{'contains': {'const': 5}}", "[]", false);
	expect("{'uniqueItems': true}", "[1, 1.0]", false);
	expect("{'uniqueItems': true}", "[1, true]", true);
	expect("{'uniqueItems': true}", "[{'a': 1, 'b': 2}, {'b': 2, 'a': 1}]", false);
	expect("{'uniqueItems': true}", "[[1], [true]]", true);
	expect("{'uniqueItems': false}", "[1, 1]", true);

	struct jsonschema *s = compile("{'uniqueItems': true, 'contains': {'type': 'string'}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "[3, 4, 3]", &errs));
	cr_assert_eq(errs.len, 2);
	expect_error(&errs, 0, "", "#/uniqueItems",
	             "items 0 and 2 are equal; items must be unique");
	expect_error(&errs, 1, "", "#/contains", "no item matches the \"contains\" schema");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, uniqueness_of_long_arrays_is_found_by_hashing)
{
	struct jsonschema *s = compile("{'uniqueItems': true}");
	json_t *arr = json_array();
	for (int i = 0; i < 20000; i++)
		json_array_append_new(arr, i % 2 ? json_integer(i) : json_real(i + 0.5));
	cr_assert(jsonschema_validate(s, arr, NULL));
	json_array_append_new(arr, json_real(19999.0)); /* equals the integer 19999 */
	struct jsonschema_errors errs;
	jsonschema_errors_init(&errs, 0);
	cr_assert_not(jsonschema_validate(s, arr, &errs));
	expect_error(&errs, 0, "", "#/uniqueItems",
	             "items 19999 and 20000 are equal; items must be unique");
	jsonschema_errors_release(&errs);
	json_decref(arr);
	jsonschema_destroy(s);
}

/* ---- objects ---- */

Test(jsonschema, required_properties_are_reported_at_the_object)
{
	struct jsonschema *s = compile("{'properties': {'user': {'required': ['id', 'name']}}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'user': {'name': 'x'}}", &errs));
	cr_assert_eq(errs.len, 1);
	expect_error(&errs, 0, "/user", "#/properties/user/required",
	             "missing required property \"id\"");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
	expect("{'required': ['a']}", "['a']", true);
}

Test(jsonschema, properties_patterns_and_additional_properties_work_together)
{
	const char *schema = "{'properties': {'id': {'type': 'integer'}}, 'patternProperties': "
	                     "{'^x-': {'type': 'string'}}, 'additionalProperties': false}";
	expect(schema, "{'id': 1, 'x-trace': 'abc'}", true);
	expect(schema, "{'id': 1, 'x-trace': 5}", false);
	expect(schema, "{'id': 1, 'other': 5}", false);
	expect("{'additionalProperties': {'type': 'number'}}", "{'a': 1, 'b': 2.5}", true);
	expect("{'additionalProperties': {'type': 'number'}}", "{'a': 1, 'b': 'x'}", false);

	struct jsonschema *s = compile(schema);
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'id': 'one', 'a/b~c': 1}", &errs));
	cr_assert_eq(errs.len, 2);
	expect_error(&errs, 0, "/id", "#/properties/id/type",
	             "expected \"integer\", got \"string\"");
	expect_error(&errs, 1, "/a~1b~0c", "#/additionalProperties",
	             "property \"a/b~c\" is not allowed");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, property_counts_dependencies_and_property_names_are_checked)
{
	expect("{'minProperties': 1, 'maxProperties': 2}", "{}", false);
	expect("{'minProperties': 1, 'maxProperties': 2}", "{'a': 1, 'b': 2, 'c': 3}", false);
	expect("{'dependencies': {'card': ['billing']}}", "{'card': 1}", false);
	expect("{'dependencies': {'card': ['billing']}}", "{'card': 1, 'billing': 2}", true);
	expect("{'dependencies': {'card': {'required': ['cvv']}}}", "{'card': 1}", false);
	expect("{'dependencies': {'card': {'required': ['cvv']}}}", "{'cvv': 1}", true);
	expect("{'propertyNames': {'maxLength': 3}}", "{'abc': 1}", true);
	expect("{'propertyNames': {'maxLength': 3}}", "{'abcd': 1}", false);

	struct jsonschema *s = compile("{'dependencies': {'card': ['billing']}, 'propertyNames': "
	                               "{'pattern': '^[a-z]+$'}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'card': 1, 'Bad': 2}", &errs));
	cr_assert_eq(errs.len, 3);
	expect_error(&errs, 0, "/Bad", "#/propertyNames",
	             "property name \"Bad\" does not match the \"propertyNames\" schema");
	expect_error(&errs, 1, "/Bad", "#/propertyNames/pattern",
	             "\"Bad\" does not match the pattern \"^[a-z]+$\"");
	expect_error(&errs, 2, "", "#/dependencies/card",
	             "property \"card\" requires property \"billing\"");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

/* ---- combinators ---- */

Test(jsonschema, all_of_reports_each_failing_branch)
{
	struct jsonschema *s = compile("{'allOf': [{'type': 'string'}, {'minLength': 2}]}");
	cr_assert(check(s, "'ab'"));
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "5", &errs));
	cr_assert_eq(errs.len, 1);
	expect_error(&errs, 0, "", "#/allOf/0/type", "expected \"string\", got \"integer\"");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, any_of_summarizes_then_explains_each_branch)
{
	struct jsonschema *s = compile("{'anyOf': [{'type': 'string'}, {'minimum': 10}]}");
	cr_assert(check(s, "'x'"));
	cr_assert(check(s, "11"));
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "5", &errs));
	cr_assert_eq(errs.len, 3);
	expect_error(&errs, 0, "", "#/anyOf", "5 does not match any of the 2 schemas in \"anyOf\"");
	expect_error(&errs, 1, "", "#/anyOf/0/type", "expected \"string\", got \"integer\"");
	expect_error(&errs, 2, "", "#/anyOf/1/minimum", "5 is less than the minimum 10");
	jsonschema_errors_release(&errs);
	/* A passing branch takes back the failures of the branches before it. */
	cr_assert(errors_of(s, "12", &errs));
	cr_assert_eq(errs.len, 0);
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, one_of_requires_exactly_one_match)
{
	struct jsonschema *s = compile("{'oneOf': [{'type': 'integer'}, {'minimum': 2}]}");
	cr_assert(check(s, "1"));
	cr_assert(check(s, "2.5"));
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "3", &errs));
	cr_assert_eq(errs.len, 1);
	expect_error(&errs, 0, "", "#/oneOf",
	             "3 matches more than one schema in \"oneOf\" (0 and 1)");
	jsonschema_errors_release(&errs);
	cr_assert_not(errors_of(s, "1.5", &errs));
	cr_assert_eq(errs.len, 3);
	expect_error(&errs, 0, "", "#/oneOf",
	             "1.5 does not match exactly one schema in \"oneOf\": it matches none of 2");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, not_and_if_then_else_apply_conditionally)
{
	expect("{'not': {'type': 'null'}}", "null", false);
	expect("{'not': {'type': 'null'}}", "0", true);
	const char *cond = "{'if': {'properties': {'kind': {'const': 'card'}}}, 'then': "
	                   "{'required': ['number']}, 'else': {'required': ['iban']}}";
	expect(cond, "{'kind': 'card', 'number': '4111'}", true);
	expect(cond, "{'kind': 'card'}", false);
	expect(cond, "{'kind': 'bank', 'iban': 'DE00'}", true);
	expect(cond, "{'kind': 'bank'}", false);
	expect("{'then': false}", "1", true); /* then without if is ignored */

	struct jsonschema *s = compile(cond);
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'kind': 'card'}", &errs));
	cr_assert_eq(errs.len, 1);
	expect_error(&errs, 0, "", "#/then/required", "missing required property \"number\"");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);

	s = compile("{'not': {'type': 'string'}}");
	cr_assert_not(errors_of(s, "'x'", &errs));
	expect_error(&errs, 0, "", "#/not", "\"x\" must not match the \"not\" schema");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, boolean_schemas_accept_or_reject_everything)
{
	expect("true", "{'anything': [1]}", true);
	expect("false", "null", false);
	expect("{'properties': {'gone': false}}", "{'gone': 1}", false);
	expect("{'properties': {'gone': false}}", "{'here': 1}", true);
	struct jsonschema *s = compile("{'properties': {'gone': false}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'gone': 1}", &errs));
	expect_error(&errs, 0, "/gone", "#/properties/gone",
	             "no value is allowed here (the schema is false)");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
	char *err = compile_error("{'$schema': 'http://json-schema.org/draft-04/schema#', "
	                          "'not': false}");
	cr_assert_str_eq(err, "#/not: \"not\" must be a schema (an object), got a boolean");
	free(err);
}

/* ---- references ---- */

Test(jsonschema, refs_follow_json_pointers_with_escapes)
{
	const char *schema = "{'definitions': {'a/b': {'type': 'integer'}, 'c~d': {'$ref': "
	                     "'#/definitions/a~1b'}, 'per%cent': {'type': 'string'}}, "
	                     "'properties': {'x': {'$ref': '#/definitions/c~0d'}, 'y': {'$ref': "
	                     "'#/definitions/per%25cent'}, 'z': {'$ref': '#/properties/x'}}}";
	expect(schema, "{'x': 1, 'y': 's', 'z': 2}", true);
	expect(schema, "{'x': 'no'}", false);
	expect(schema, "{'y': 3}", false);
	expect(schema, "{'z': 'no'}", false);
	expect("{'items': [{'type': 'string'}, {'$ref': '#/items/0'}]}", "['a', 'b']", true);
	expect("{'items': [{'type': 'string'}, {'$ref': '#/items/0'}]}", "['a', 2]", false);
}

Test(jsonschema, a_ref_ignores_its_sibling_keywords)
{
	expect("{'definitions': {'s': {'type': 'string'}}, 'properties': {'a': {'$ref': "
	       "'#/definitions/s', 'maxLength': 1}}}",
	       "{'a': 'long'}", true);
	expect("{'$ref': '#/definitions/n', 'definitions': {'n': {'type': 'number'}}}", "1", true);
	expect("{'$ref': '#/definitions/n', 'definitions': {'n': {'type': 'number'}}}", "'1'",
	       false);
}

Test(jsonschema, ids_set_the_base_uri_and_name_anchors)
{
	const char *schema =
	        "{'$id': 'http://example.com/root.json', 'definitions': {"
	        "'A': {'$id': '#foo', 'type': 'integer'}, "
	        "'B': {'$id': 'other.json', 'definitions': {'X': {'$id': '#bar', "
	        "'type': 'string'}, 'Y': {'$id': 't/inner.json', 'type': 'boolean'}}}}, "
	        "'properties': {'a': {'$ref': '#foo'}, 'b': {'$ref': 'other.json#bar'}, "
	        "'c': {'$ref': 'http://example.com/t/inner.json'}, 'd': {'$ref': "
	        "'other.json#/definitions/X'}, 'e': {'$ref': "
	        "'http://example.com/root.json#/definitions/A'}}}";
	expect(schema, "{'a': 1, 'b': 's', 'c': true, 'd': 't', 'e': 2}", true);
	expect(schema, "{'a': 'x'}", false);
	expect(schema, "{'b': 1}", false);
	expect(schema, "{'c': 1}", false);
	expect(schema, "{'d': 1}", false);
	expect(schema, "{'e': 'x'}", false);
}

Test(jsonschema, a_dollar_id_beside_a_ref_does_not_change_the_base_uri)
{
	/* From later releases of the official suite. */
	const char *schema = "{'$id': 'http://localhost:1234/sibling_id/base/', 'definitions': {"
	                     "'foo': {'$id': 'http://localhost:1234/sibling_id/foo.json', 'type': "
	                     "'string'}, 'base_foo': {'$id': 'foo.json', 'type': 'number'}}, "
	                     "'allOf': [{'$id': 'http://localhost:1234/sibling_id/', '$ref': "
	                     "'foo.json'}]}";
	expect(schema, "5", true);
	expect(schema, "'a'", false);
}

Test(jsonschema, refs_resolve_against_urn_and_file_bases)
{
	const char *urn = "{'$id': 'urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed', 'minimum': 30, "
	                  "'properties': {'foo': {'$ref': "
	                  "'urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed'}, 'bar': {'$ref': "
	                  "'#/definitions/s'}}, 'definitions': {'s': {'type': 'string'}}}";
	expect(urn, "{'foo': 37, 'bar': 'x'}", true);
	expect(urn, "{'foo': 12}", false);
	expect(urn, "{'bar': 1}", false);
	const char *file = "{'$id': 'file:///c:/folder/file.json', 'definitions': {'foo': {'type': "
	                   "'number'}}, 'allOf': [{'$ref': '#/definitions/foo'}]}";
	expect(file, "1", true);
	expect(file, "'a'", false);
	const char *abs =
	        "{'$id': 'http://example.com/ref/absref.json', 'definitions': {'a': "
	        "{'$id': 'http://example.com/ref/absref/foobar.json', 'type': 'number'}, "
	        "'b': {'$id': 'http://example.com/absref/foobar.json', 'type': 'string'}}, "
	        "'allOf': [{'$ref': '/absref/foobar.json'}]}";
	expect(abs, "'a'", true);
	expect(abs, "1", false);
	const char *nearest = "{'$id': 'http://example.com/a.json', 'definitions': {'x': {'$id': "
	                      "'http://example.com/b/c.json', 'not': {'definitions': {'y': {'$id': "
	                      "'d.json', 'type': 'number'}}}}}, 'allOf': [{'$ref': "
	                      "'http://example.com/b/d.json'}]}";
	expect(nearest, "1", true);
	expect(nearest, "'a'", false);
}

Test(jsonschema, pointers_with_empty_tokens_and_into_unknown_keywords_resolve)
{
	expect("{'definitions': {'': {'definitions': {'': {'type': 'number'}}}}, 'allOf': "
	       "[{'$ref': "
	       "'#/definitions//definitions/'}]}",
	       "'a'", false);
	const char *unknown = "{'properties': {'foo': {'unknown-keyword': {'type': 'integer'}}, "
	                      "'bar': {'$ref': '#/properties/foo/unknown-keyword'}}}";
	expect(unknown, "{'bar': 3}", true);
	expect(unknown, "{'bar': true}", false);
}

Test(jsonschema, ids_inside_enum_and_const_are_not_identifiers)
{
	const char *schema = "{'definitions': {'id_in_enum': {'enum': [{'$id': "
	                     "'https://localhost:1234/my_identifier.json', 'type': 'null'}]}, "
	                     "'real': {'$id': 'https://localhost:1234/my_identifier.json', 'type': "
	                     "'string'}, 'zzz': {'const': {'$id': "
	                     "'https://localhost:1234/my_identifier.json', 'type': 'null'}}}, "
	                     "'anyOf': [{'$ref': '#/definitions/id_in_enum'}, {'$ref': "
	                     "'https://localhost:1234/my_identifier.json'}]}";
	expect(schema, "'a string'", true);
	expect(schema, "null", false);
	expect(schema, "{'$id': 'https://localhost:1234/my_identifier.json', 'type': 'null'}",
	       true);
}

Test(jsonschema, later_draft_keywords_are_ignored_in_draft7)
{
	expect("{'prefixItems': [{'type': 'integer'}]}", "['x']", true);
	expect("{'dependentRequired': {'bar': ['foo']}}", "{'bar': 1}", true);
	expect("{'unevaluatedProperties': false}", "{'a': 1}", true);
	expect("{'contains': {'const': 1}, 'maxContains': 1}", "[1, 1]", true);
	expect("{'contains': {'const': 1}, 'minContains': 0}", "[2]", false);
	expect("{'properties': {'foo': {'$dynamicRef': '#'}}, 'additionalProperties': false}",
	       "{'foo': {'bar': 1}}", true);
	expect("{'$defs': {'x': {'type': 'string'}}, 'type': 'integer'}", "1", true);
}

Test(jsonschema, draft4_uses_id_without_the_dollar)
{
	expect("{'$schema': 'http://json-schema.org/draft-04/schema#', 'definitions': {'a': {'id': "
	       "'#num', 'type': 'number'}}, '$ref': '#num'}",
	       "'x'", false);
}

Test(jsonschema, recursive_schemas_validate_nested_data)
{
	const char *tree = "{'type': 'object', 'properties': {'value': {'type': 'number'}, "
	                   "'children': {'type': 'array', 'items': {'$ref': '#'}}}, "
	                   "'additionalProperties': false}";
	expect(tree, "{'value': 1, 'children': [{'value': 2, 'children': [{'value': 3}]}]}", true);
	struct jsonschema *s = compile(tree);
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'children': [{'children': [{'value': 'x'}]}]}", &errs));
	cr_assert_eq(errs.len, 1);
	expect_error(&errs, 0, "/children/0/children/0/value", "#/properties/value/type",
	             "expected \"number\", got \"string\"");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, unresolvable_refs_fail_the_compile_at_their_location)
{
	char *err = compile_error("{'properties': {'a': {'$ref': '#/definitions/missing'}}}");
	cr_assert_str_eq(err, "#/properties/a/$ref: cannot resolve \"#/definitions/missing\": "
	                      "nothing at \"#/definitions\"");
	free(err);
	err = compile_error("{'items': {'$ref': '#nowhere'}}");
	cr_assert_str_eq(err, "#/items/$ref: cannot resolve \"#nowhere\": no schema has the id "
	                      "\"#nowhere\"");
	free(err);
	err = compile_error("{'$ref': 'other.json'}");
	cr_assert_str_eq(err,
	                 "#/$ref: cannot resolve \"other.json\": it is outside this schema and "
	                 "no resolver is configured");
	free(err);
	err = compile_error("{'$ref': 5}");
	cr_assert_str_eq(err, "#/$ref: \"$ref\" must be a string, got a number");
	free(err);
	err = compile_error(
	        "{'definitions': {'a': {'enum': [1]}}, '$ref': '#/definitions/a/enum'}");
	cr_assert_str_eq(err, "#/definitions/a/enum: a schema must be an object or a boolean, got "
	                      "an array");
	free(err);
}

Test(jsonschema, ref_cycles_that_never_descend_are_refused)
{
	char *err = compile_error("{'allOf': [{'$ref': '#'}]}");
	cr_assert_str_eq(err, "#/allOf/0: this schema leads back to \"#\" without descending into "
	                      "the instance, so validation would never end");
	free(err);
	err = compile_error("{'definitions': {'a': {'$ref': '#/definitions/b'}, 'b': {'anyOf': "
	                    "[{'type': 'null'}, {'$ref': '#/definitions/a'}]}}}");
	cr_assert(strstr(err, "without descending into the instance") != NULL, "%s", err);
	free(err);
	err = compile_error("{'$ref': '#'}");
	cr_assert(strstr(err, "leads back to \"#\"") != NULL, "%s", err);
	free(err);
	/* A loop through "properties" descends, so it is fine. */
	expect("{'properties': {'next': {'$ref': '#'}}}", "{'next': {'next': {}}}", true);
}

struct docs {
	int calls;
	const char *last_uri;
};

static int resolve_docs(void *arg, const char *uri, json_t **out, char **err)
{
	struct docs *d = arg;
	d->calls++;
	d->last_uri = NULL;
	const char *text = NULL;
	if (strcmp(uri, "common.json") == 0)
		text = "{\"definitions\": {\"id\": {\"type\": \"string\", \"pattern\": "
		       "\"^[a-z]+$\"}, "
		       "\"count\": {\"$ref\": \"units/count.json\"}}}";
	else if (strcmp(uri, "units/count.json") == 0)
		text = "{\"type\": \"integer\", \"minimum\": 0}";
	else if (strcmp(uri, "old.json") == 0)
		text = "{\"type\": \"integer\"}"; /* no $schema: inherits the referrer's draft */
	else if (strcmp(uri, "broken.json") == 0)
		text = "{\"type\": 5}";
	if (text == NULL) {
		*err = strdup("no such schema in this tenant");
		return -ENOENT;
	}
	char *perr = NULL;
	int rc = jsonschema_parse(text, strlen(text), out, &perr);
	free(perr);
	return rc;
}

Test(jsonschema, other_documents_are_loaded_through_the_resolver)
{
	struct docs d = {0};
	struct jsonschema_options opt = {
	        .base_uri = "event.json", .resolver = resolve_docs, .resolver_arg = &d};
	struct jsonschema *s = compile_opt("{'properties': {'id': {'$ref': "
	                                   "'common.json#/definitions/id'}, 'n': {'$ref': "
	                                   "'common.json#/definitions/count'}}}",
	                                   &opt);
	cr_assert_eq(d.calls, 2, "common.json and units/count.json, once each");
	cr_assert(check(s, "{'id': 'abc', 'n': 3}"));
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'id': 'ABC', 'n': -1}", &errs));
	cr_assert_eq(errs.len, 2);
	expect_error(&errs, 0, "/id", "common.json#/definitions/id/pattern",
	             "\"ABC\" does not match the pattern \"^[a-z]+$\"");
	expect_error(&errs, 1, "/n", "units/count.json#/minimum", "-1 is less than the minimum 0");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, resolver_failures_and_errors_in_loaded_documents_are_reported)
{
	struct docs d = {0};
	struct jsonschema_options opt = {.resolver = resolve_docs, .resolver_arg = &d};
	char *err = compile_error_opt("{'items': {'$ref': 'missing.json'}}", &opt);
	cr_assert_str_eq(err, "#/items/$ref: cannot load \"missing.json\": no such schema in this "
	                      "tenant");
	free(err);
	err = compile_error_opt("{'$ref': 'broken.json'}", &opt);
	cr_assert_str_eq(err, "broken.json#/type: \"type\" must be a type name or an array of "
	                      "them, got a number");
	free(err);
	/* A loaded document without $schema takes the referrer's draft. */
	struct jsonschema *s = compile_opt("{'$schema': 'http://json-schema.org/draft-04/schema#', "
	                                   "'$ref': 'old.json'}",
	                                   &opt);
	cr_assert_not(check(s, "1.0"));
	jsonschema_destroy(s);
}

static int resolve_cached(void *arg, const char *uri, json_t **out, char **err)
{
	(void)uri;
	(void)err;
	*out = json_incref(arg); /* the "cache" keeps its own reference */
	return 0;
}

Test(jsonschema, a_document_the_resolver_keeps_is_copied_not_shared)
{
	json_t *cached = json_pack("{s:s}", "type", "string");
	struct jsonschema_options opt = {.resolver = resolve_cached, .resolver_arg = cached};
	struct jsonschema *s = compile_opt("{'$ref': 'cached.json'}", &opt);
	json_object_set_new(cached, "type", json_string("number"));
	cr_assert(check(s, "'text'"));
	cr_assert_not(check(s, "5"));
	jsonschema_destroy(s);
	json_decref(cached);
}

Test(jsonschema, the_draft_meta_schemas_are_built_in)
{
	struct jsonschema *s = compile("{'$ref': 'http://json-schema.org/draft-07/schema#'}");
	cr_assert(check(s, "{'type': 'object', 'properties': {'a': {'minLength': 1}}}"));
	cr_assert_not(check(s, "{'type': 'objekt'}"));
	cr_assert_not(check(s, "{'properties': {'a': {'minLength': -1}}}"));
	cr_assert_not(check(s, "{'pattern': '(unclosed'}"));
	jsonschema_destroy(s);
	s = compile("{'$ref': 'https://json-schema.org/draft-04/schema'}");
	cr_assert_not(check(s, "{'exclusiveMinimum': true}"), "needs minimum");
	cr_assert(check(s, "{'minimum': 1, 'exclusiveMinimum': true}"));
	jsonschema_destroy(s);
}

/* ---- formats ---- */

struct format_case {
	const char *format;
	const char *value;
	bool valid;
};

static const struct format_case format_cases[] = {
        {"date-time", "2024-02-29T23:59:60Z", true},
        {"date-time", "1990-12-31T15:59:60-08:00", true},
        {"date-time", "1990-12-31T15:59:60Z", false}, /* leap second not at 23:59 UTC */
        {"date-time", "2023-02-29T10:00:00Z", false},
        {"date-time", "2024-01-01t10:00:00.5z", true},
        {"date-time", "2024-01-01 10:00:00Z", false},
        {"date-time", "2024-01-01T10:00:00+24:00", false},
        {"date", "2000-02-29", true},
        {"date", "1900-02-29", false},
        {"date", "2024-1-01", false},
        {"time", "08:30:06.283185+01:00", true},
        {"time", "08:30:06", false},
        {"time", "24:00:00Z", false},
        {"duration", "P1Y2M3DT4H5M6S", true},
        {"duration", "P4W", true},
        {"duration", "PT", false},
        {"duration", "P1Y2D", false},
        {"email", "joe.bloggs@example.com", true},
        {"email", "\"joe bloggs\"@example.com", true},
        {"email", "joe@[192.168.0.1]", true},
        {"email", "joe@[IPv6:::1]", true},
        {"email", "joe..bloggs@example.com", false},
        {"email", ".joe@example.com", false},
        {"email", "joe@", false},
        {"email", "2962", false},
        {"idn-email",
         "\xec\x8b\xa4\xeb\xa1\x80@\xec\x8b\xa4\xeb\xa1\x80.\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8",
         true},
        {"idn-email", "joe", false},
        {"hostname", "www.example.com", true},
        {"hostname", "xn--4gbwdl.xn--wgbh1c", true},
        {"hostname", "-bad.example", false},
        {"hostname", "under_score.example", false},
        {"hostname", "a.b.", true},
        {"hostname", ".", false},
        {"ipv4", "192.168.0.1", true},
        {"ipv4", "256.0.0.1", false},
        {"ipv4", "01.2.3.4", false},
        {"ipv4", "1.2.3", false},
        {"ipv6", "::1", true},
        {"ipv6", "2001:db8::7", true},
        {"ipv6", "::ffff:192.168.0.1", true},
        {"ipv6", "1:2:3:4:5:6:7:8", true},
        {"ipv6", "1:2:3:4:5:6:7:8:9", false},
        {"ipv6", "1::2::3", false},
        {"ipv6", "12345::", false},
        {"ipv6", "fe80::1%eth0", false},
        {"uri", "http://foo.bar/?baz=qux#quux", true},
        {"uri", "urn:isbn:0451450523", true},
        {"uri", "http://[2001:db8::7]:8080/c", true},
        {"uri", "//foo.bar/", false},
        {"uri", "http://exa mple.com", false},
        {"uri", "http://example.com:80a/", false},
        {"uri", "http://example.com/%zz", false},
        {"uri-reference", "../a?b#c", true},
        {"uri-reference", "a:b:c", true},
        {"uri-reference", "1a:b", false},
        {"uri-reference", "\\\\x", false},
        {"iri", "http://\xc6\x92\xc3\xb8\xc3\xb8.com/\xcf\x80", true},
        {"iri", "\xcf\x80", false},
        {"iri-reference", "\xcf\x80", true},
        {"uri-template", "http://example.com/{term:1}/{term}{?q*,lang}", true},
        {"uri-template", "http://example.com/{term", false},
        {"uri-template", "{a:0}", false},
        {"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d16380", true},
        {"uuid", "2eb8aa08aa9811eab4aa73b441d16380", false},
        {"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638g", false},
        {"json-pointer", "/foo/bar~0/baz~1/%a", true},
        {"json-pointer", "", true},
        {"json-pointer", "/foo/bar~", false},
        {"json-pointer", "#/foo", false},
        {"relative-json-pointer", "0#", true},
        {"relative-json-pointer", "2/0/baz", true},
        {"relative-json-pointer", "01/a", false},
        {"relative-json-pointer", "/a", false},
        {"regex", "([abc])+\\s+$", true},
        {"regex", "^(abc]", false},
        {"regex", "\\p{Letter}", true},
        {"regex", "^\\S(|(.|\\n)*\\S)\\Z", false},
        {"idn-hostname", "\xec\x8b\xa4\xeb\xa1\x80.\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8", true},
        {"idn-hostname", "\xe3\x80\xae\xec\x8b\xa4", false},
        {"made-up-format", "anything at all", true},
};

Test(jsonschema, formats_are_asserted)
{
	for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
		const struct format_case *fc = &format_cases[i];
		json_t *schema = json_pack("{s:s}", "format", fc->format);
		struct jsonschema *s = NULL;
		char *err = NULL;
		cr_assert_eq(jsonschema_compile_json(schema, NULL, &s, &err), 0, "%s", err);
		json_t *v = json_string(fc->value);
		cr_assert_not_null(v, "bad UTF-8 in case %zu", i);
		cr_expect_eq(jsonschema_validate(s, v, NULL), fc->valid, "%s \"%s\": expected %s",
		             fc->format, fc->value, fc->valid ? "valid" : "invalid");
		json_decref(v);
		json_decref(schema);
		jsonschema_destroy(s);
	}
}

Test(jsonschema, format_failures_name_the_format_and_non_strings_pass)
{
	struct jsonschema *s = compile("{'properties': {'at': {'format': 'date-time'}}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'at': 'yesterday'}", &errs));
	expect_error(&errs, 0, "/at", "#/properties/at/format",
	             "\"yesterday\" is not a valid \"date-time\"");
	jsonschema_errors_release(&errs);
	cr_assert(check(s, "{'at': 12}"));
	jsonschema_destroy(s);
}

Test(jsonschema, formats_are_annotations_when_asked)
{
	struct jsonschema_options opt = {.format_annotation_only = true};
	struct jsonschema *s = compile_opt("{'format': 'email'}", &opt);
	cr_assert(check(s, "'not an address'"));
	jsonschema_destroy(s);
}

Test(jsonschema, content_keywords_are_asserted_only_when_asked)
{
	const char *schema =
	        "{'contentEncoding': 'base64', 'contentMediaType': 'application/json'}";
	expect(schema, "'not base64!'", true);
	struct jsonschema_options opt = {.content_assertion = true};
	struct jsonschema *s = compile_opt(schema, &opt);
	cr_assert(check(s, "'eyJmb28iOiAiYmFyIn0K'"));
	cr_assert_not(check(s, "'ezp9Cg=='"), "valid base64 of invalid JSON");
	cr_assert_not(check(s, "'eyJmb28iOi%iYmFyIn0K'"));
	cr_assert(check(s, "42"));
	jsonschema_destroy(s);
}

/* ---- errors ---- */

Test(jsonschema, every_failure_is_reported_not_just_the_first)
{
	struct jsonschema *s =
	        compile("{'type': 'object', 'required': ['a', 'b'], 'properties': "
	                "{'c': {'type': 'integer', 'minimum': 5, 'multipleOf': 2}}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'c': 3}", &errs));
	cr_assert_eq(errs.len, 4);
	expect_error(&errs, 0, "", "#/required", "missing required property \"a\"");
	expect_error(&errs, 1, "", "#/required", "missing required property \"b\"");
	expect_error(&errs, 2, "/c", "#/properties/c/minimum", "3 is less than the minimum 5");
	expect_error(&errs, 3, "/c", "#/properties/c/multipleOf", "3 is not a multiple of 2");
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, errors_render_to_json_with_an_instance_prefix)
{
	struct jsonschema *s = compile("{'properties': {'name': {'type': 'string'}}}");
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, "{'name': null}", &errs));
	json_t *arr = jsonschema_errors_to_json(&errs, "/data/3");
	char *text = json_dumps(arr, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_str_eq(text,
	                 "[{\"instance\":\"/data/3/name\",\"message\":\"expected \\\"string\\\", "
	                 "got \\\"null\\\"\",\"schema\":\"#/properties/name/type\"}]");
	free(text);
	json_decref(arr);
	arr = jsonschema_errors_to_json(&errs, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "instance")),
	                 "/name");
	json_decref(arr);
	jsonschema_errors_release(&errs);
	jsonschema_destroy(s);
}

Test(jsonschema, the_error_list_keeps_at_most_max_entries_and_counts_the_rest)
{
	struct jsonschema *s = compile("{'items': {'type': 'string'}}");
	json_t *v = parse("[1, 2, 3, 4, 5]");
	struct jsonschema_errors errs;
	jsonschema_errors_init(&errs, 2);
	cr_assert_not(jsonschema_validate(s, v, &errs));
	cr_assert_eq(errs.len, 2);
	cr_assert_eq(errs.dropped, 3);
	cr_assert_eq(errs.status, 0);
	jsonschema_errors_release(&errs);
	cr_assert_eq(errs.len, 0);
	cr_assert_eq(errs.max, 2, "release keeps the limit so the list can be reused");
	json_decref(v);
	jsonschema_destroy(s);
}

Test(jsonschema, long_values_are_shortened_in_messages)
{
	struct jsonschema *s = compile("{'maxLength': 3}");
	char *long_string = malloc(1003);
	memset(long_string, 'x', 1002);
	long_string[0] = '\'';
	long_string[1001] = '\'';
	long_string[1002] = '\0';
	struct jsonschema_errors errs;
	cr_assert_not(errors_of(s, long_string, &errs));
	cr_assert_lt(strlen(errs.items[0].message), 100, "%s", errs.items[0].message);
	cr_assert(strstr(errs.items[0].message, "...\" is longer than 3 characters") != NULL);
	jsonschema_errors_release(&errs);
	free(long_string);
	jsonschema_destroy(s);
}

/* ---- hostile input ---- */

/* Builds [[[...]]] depth levels deep without recursion; levels[] keeps each
 * level so that free_nested() can release it without recursion too. */
static json_t **build_nested(size_t depth)
{
	json_t **levels = malloc(depth * sizeof(*levels));
	cr_assert_not_null(levels);
	levels[0] = json_array();
	for (size_t i = 1; i < depth; i++) {
		levels[i] = json_array();
		json_array_append(levels[i - 1], levels[i]);
	}
	return levels;
}

static void free_nested(json_t **levels, size_t depth)
{
	/* Each level holds two references (its own and its parent's); drop the
	 * parent link from the top so that no decref recurses. */
	for (size_t i = 0; i < depth; i++) {
		json_array_clear(levels[i]);
		json_decref(levels[i]);
	}
	free(levels);
}

Test(jsonschema, an_instance_nested_100000_levels_deep_is_rejected_with_a_clear_error)
{
	struct jsonschema *s = compile("{'items': {'$ref': '#'}}");
	json_t **levels = build_nested(100000);
	struct jsonschema_errors errs;
	jsonschema_errors_init(&errs, 0);
	cr_assert_not(jsonschema_validate(s, levels[0], &errs));
	cr_assert_eq(errs.len, 1);
	expect_error(&errs, 0, "", "#",
	             "the instance nests deeper than 256 levels; flatten it or raise "
	             "max_instance_depth");
	jsonschema_errors_release(&errs);
	cr_assert_not(jsonschema_validate(s, levels[0], NULL));
	free_nested(levels, 100000);
	/* At the limit it is fine. */
	levels = build_nested(256);
	cr_assert(jsonschema_validate(s, levels[0], NULL));
	free_nested(levels, 256);
	jsonschema_destroy(s);
}

Test(jsonschema, a_schema_nested_10000_levels_deep_is_refused_at_compile)
{
	json_t *root = json_object();
	json_t *cur = root;
	for (int i = 0; i < 10000; i++) {
		json_t *next = json_object();
		json_object_set_new(cur, "items", next);
		cur = next;
	}
	struct jsonschema *s = NULL;
	char *err = NULL;
	cr_assert_eq(jsonschema_compile_json(root, NULL, &s, &err), -EINVAL);
	cr_assert_str_eq(err, "#: the schema nests deeper than 256 levels; flatten it with "
	                      "\"definitions\" and \"$ref\"");
	free(err);
	/* Free without recursion: detach from the bottom up. */
	json_t **chain = malloc(10001 * sizeof(*chain));
	cur = root;
	for (int i = 0; i <= 10000; i++) {
		chain[i] = cur;
		cur = json_object_get(cur, "items");
	}
	for (int i = 10000; i > 0; i--)
		json_object_clear(chain[i - 1]);
	json_decref(root);
	free(chain);

	/* As text, the parser's own depth limit reports it. */
	size_t n = 10000;
	char *text = malloc(n * 11 + 3);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += (size_t)sprintf(text + k, "{\"items\":");
	text[k++] = '{';
	for (size_t i = 0; i <= n; i++)
		text[k++] = '}';
	cr_assert_eq(jsonschema_compile(text, k, NULL, &s, &err), -EINVAL);
	cr_assert(strstr(err, "maximum parsing depth") != NULL, "%s", err);
	free(err);
	free(text);
}

Test(jsonschema, the_depth_limits_can_be_configured)
{
	struct jsonschema_options opt = {.max_schema_depth = 3, .max_instance_depth = 2};
	char *err = compile_error_opt("{'items': {'items': {'items': {}}}}", &opt);
	cr_assert_str_eq(err, "#: the schema nests deeper than 3 levels; flatten it with "
	                      "\"definitions\" and \"$ref\"");
	free(err);
	struct jsonschema *s = compile_opt("{'items': {}}", &opt);
	cr_assert(check(s, "[[1]]"));
	cr_assert_not(check(s, "[[[1]]]"));
	jsonschema_destroy(s);
}

static char *repeat(char c, size_t n, char last)
{
	char *s = malloc(n + 2);
	memset(s, c, n);
	s[n] = last;
	s[n + 1] = '\0';
	return s;
}

Test(jsonschema, catastrophic_backtracking_patterns_finish_in_linear_time)
{
	static const char *const evil[] = {
	        "^(a+)+$",  "^(a|aa)+$", "^(a|a?)+$",      "^(.*a){12}$",
	        "(x+x+)+y", "^(a*)*b$",  "^(?=(a+)+$)a*$",
	};
	char *subject = repeat('a', 10000, 'b');
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		json_t *schema = json_pack("{s:s}", "pattern", evil[i]);
		struct jsonschema *s = NULL;
		char *err = NULL;
		cr_assert_eq(jsonschema_compile_json(schema, NULL, &s, &err), 0, "%s", err);
		json_t *v = json_string(subject);
		/* Only ^(a*)*b$ matches a...ab; the point is that each answer comes. */
		bool want = strcmp(evil[i], "^(a*)*b$") == 0;
		cr_expect_eq(jsonschema_validate(s, v, NULL), want, "/%s/", evil[i]);
		json_decref(v);
		json_decref(schema);
		jsonschema_destroy(s);
	}
	free(subject);
}

Test(jsonschema, a_large_pattern_with_a_lookahead_scans_a_long_string)
{
	/* Each position evaluates the lookahead; that must not cost an
	 * allocation the size of the whole program. */
	json_t *schema = json_pack("{s:s}", "pattern", "(?=.)a{6000}");
	struct jsonschema *s = NULL;
	char *err = NULL;
	cr_assert_eq(jsonschema_compile_json(schema, NULL, &s, &err), 0, "%s", err);
	char *subject = repeat('b', 200000, 'a');
	json_t *v = json_string(subject);
	cr_assert_not(jsonschema_validate(s, v, NULL));
	json_decref(v);
	free(subject);
	json_decref(schema);
	jsonschema_destroy(s);
}

Test(jsonschema, a_pattern_that_runs_out_of_steps_rejects_the_instance_even_under_not)
{
	struct jsonschema_options opt = {.regex_steps = 1000};
	struct jsonschema *s = compile_opt("{'properties': {'a': {'pattern': '^(a|b)*c$'}, 'b': "
	                                   "{'not': {'pattern': '^(a|b)*c$'}}}}",
	                                   &opt);
	cr_assert(check(s, "{'a': 'abc'}"));
	struct jsonschema_errors errs;
	char *as = repeat('a', 3000, 'a');
	json_t *v = json_pack("{s:s}", "b", as);
	jsonschema_errors_init(&errs, 0);
	cr_assert_not(jsonschema_validate(s, v, &errs), "not may not turn \"gave up\" into valid");
	cr_assert_eq(errs.len, 1);
	expect_error(&errs, 0, "/b", "#/properties/b/not/pattern",
	             "matching the pattern \"^(a|b)*c$\" took more than 1000 steps; the value is "
	             "rejected");
	jsonschema_errors_release(&errs);
	cr_assert_not(jsonschema_validate(s, v, NULL));
	json_decref(v);
	free(as);
	jsonschema_destroy(s);
}

Test(jsonschema, patterns_that_expand_too_far_are_refused)
{
	char *err = compile_error("{'pattern': '(a{1000}){1000}'}");
	cr_assert(strstr(err, "expands to more than 20000 instructions") != NULL, "%s", err);
	free(err);
	err = compile_error("{'pattern': '((?=a)a){40}'}");
	cr_assert(strstr(err, "more than 32 lookarounds") != NULL, "%s", err);
	free(err);
	err = compile_error("{'pattern': 'a{1000000}'}");
	cr_assert(strstr(err, "repetition count is larger than") != NULL, "%s", err);
	free(err);
	/* 200 nested groups */
	char *deep = malloc(1000);
	size_t k = 0;
	k += (size_t)sprintf(deep + k, "{'pattern': '");
	for (int i = 0; i < 200; i++)
		deep[k++] = '(';
	for (int i = 0; i < 200; i++)
		deep[k++] = ')';
	sprintf(deep + k, "'}");
	err = compile_error(deep);
	cr_assert(strstr(err, "groups nest deeper than 100") != NULL, "%s", err);
	free(err);
	free(deep);
}

Test(jsonschema, big_objects_with_many_patterns_validate)
{
	struct jsonschema *s = compile("{'patternProperties': {'^k[0-9]+$': {'type': 'integer'}, "
	                               "'^x': false}, 'additionalProperties': false}");
	json_t *obj = json_object();
	char key[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		json_object_set_new(obj, key, json_integer(i));
	}
	cr_assert(jsonschema_validate(s, obj, NULL));
	json_object_set_new(obj, "x1", json_true());
	json_object_set_new(obj, "zzz", json_true());
	struct jsonschema_errors errs;
	jsonschema_errors_init(&errs, 0);
	cr_assert_not(jsonschema_validate(s, obj, &errs));
	cr_assert_eq(errs.len, 2);
	jsonschema_errors_release(&errs);
	json_decref(obj);
	jsonschema_destroy(s);
}

/* ---- threads ---- */

struct worker {
	const struct jsonschema *s;
	int bad;
};

static void *validate_many(void *arg)
{
	struct worker *w = arg;
	json_t *good = json_pack("{s:s, s:[i,i,i]}", "name", "abc", "tags", 1, 2, 3);
	json_t *badv = json_pack("{s:i, s:[i,i,i]}", "name", 5, "tags", 1, 2, 1);
	for (int i = 0; i < 2000; i++) {
		struct jsonschema_errors errs;
		jsonschema_errors_init(&errs, 0);
		if (!jsonschema_validate(w->s, good, NULL))
			w->bad++;
		if (jsonschema_validate(w->s, badv, &errs) || errs.len != 2)
			w->bad++;
		jsonschema_errors_release(&errs);
	}
	json_decref(good);
	json_decref(badv);
	return NULL;
}

Test(jsonschema, one_compiled_schema_validates_from_many_threads_at_once)
{
	struct jsonschema *s = compile("{'properties': {'name': {'type': 'string', 'pattern': "
	                               "'^[a-z]+$'}, 'tags': {'uniqueItems': true}}}");
	pthread_t th[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){s, 0};
		cr_assert_eq(pthread_create(&th[i], NULL, validate_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(w[i].bad, 0, "thread %d saw %d wrong verdicts", i, w[i].bad);
	}
	jsonschema_destroy(s);
}
