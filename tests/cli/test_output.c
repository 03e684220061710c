/*
 * The helpers every noetlctl command prints with: cells, tables, JSON,
 * YAML, and service errors in words.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.pb-c.h"
#include "queue.pb-c.h"
#include "rpc.h"

static struct cli cli;
static char *out_text, *err_text;
static size_t out_len, err_len;

static void setup(void)
{
	memset(&cli, 0, sizeof(cli));
	cli.prog = "noetlctl";
	cli.out = open_memstream(&out_text, &out_len);
	cli.err = open_memstream(&err_text, &err_len);
	cli.urls[CLI_QUEUE] = "tcp://queue.example:7403";
	cli.urls[CLI_CONTROL] = "tcp://control.example:7401";
	cli.timeout_ms = 10000;
}

static void teardown(void)
{
	for (int s = 0; s < CLI_SERVICES; s++)
		rpc_client_destroy(cli.clients[s]);
	fclose(cli.out);
	fclose(cli.err);
	free(out_text);
	free(err_text);
}

TestSuite(output, .init = setup, .fini = teardown);

static const char *out(void)
{
	fflush(cli.out);
	return out_text;
}

static const char *err(void)
{
	fflush(cli.err);
	return err_text;
}

static const char *cell(json_t *v, enum cli_cell kind)
{
	static char buf[128];
	cli_format_cell(v, kind, buf, sizeof(buf));
	json_decref(v);
	return buf;
}

Test(output, cells_show_durations_times_and_sizes_for_people)
{
	cr_assert_str_eq(cell(json_integer(250), CLI_CELL_DURATION), "250ms");
	cr_assert_str_eq(cell(json_integer(5000), CLI_CELL_DURATION), "5s");
	cr_assert_str_eq(cell(json_integer(65000), CLI_CELL_DURATION), "1m5s");
	cr_assert_str_eq(cell(json_integer(3723000), CLI_CELL_DURATION), "1h2m");
	cr_assert_str_eq(cell(json_integer(183600000), CLI_CELL_DURATION), "2d3h");
	cr_assert_str_eq(cell(json_integer(1700000000000), CLI_CELL_TIME), "2023-11-14 22:13:20");
	cr_assert_str_eq(cell(json_integer(0), CLI_CELL_TIME), "-");
	cr_assert_str_eq(cell(json_integer(512), CLI_CELL_BYTES), "512 B");
	cr_assert_str_eq(cell(json_integer(1536), CLI_CELL_BYTES), "1.5 KiB");
	cr_assert_str_eq(cell(json_integer(16 << 20), CLI_CELL_BYTES), "16.0 MiB");
}

Test(output, text_cells_are_one_line_and_missing_values_are_dashes)
{
	cr_assert_str_eq(cell(json_string("a\nb\tc"), CLI_CELL_TEXT), "a b c");
	cr_assert_str_eq(cell(json_true(), CLI_CELL_TEXT), "yes");
	cr_assert_str_eq(cell(json_false(), CLI_CELL_TEXT), "no");
	cr_assert_str_eq(cell(json_null(), CLI_CELL_DURATION), "-");
	cr_assert_str_eq(cell(json_integer(-3), CLI_CELL_TEXT), "-3");
	cr_assert_str_eq(cell(json_real(0.5), CLI_CELL_TEXT), "0.5");
	cr_assert_str_eq(cell(json_pack("{s:i}", "a", 1), CLI_CELL_TEXT), "{\"a\":1}");
	cr_assert_str_eq(cell(json_string("text"), CLI_CELL_DURATION), "text");
	char buf[64];
	cr_assert_str_eq(cli_format_cell(NULL, CLI_CELL_TEXT, buf, sizeof(buf)), "-");
}

static const struct cli_column cols[] = {
        {"NAME", "name", CLI_CELL_TEXT},
        {"SIZE", "size", CLI_CELL_BYTES},
        {"NOTE", "note", CLI_CELL_TEXT},
        {NULL, NULL, CLI_CELL_TEXT},
};

Test(output, tables_align_columns_under_a_header)
{
	json_t *rows = json_pack("[{s:s,s:i,s:s},{s:s,s:i}]", "name", "greet", "size", 2048, "note",
	                         "ok", "name", "a-much-longer-name", "size", 1);
	cr_assert_eq(cli_output(&cli, rows, cols), CLI_OK);
	cr_assert_str_eq(out(), "NAME                SIZE     NOTE\n"
	                        "greet               2.0 KiB  ok\n"
	                        "a-much-longer-name  1 B      -\n");
	json_decref(rows);
}

Test(output, a_single_object_prints_as_key_value_lines)
{
	json_t *o = json_pack("{s:s,s:i}", "name", "greet", "size", 10);
	cr_assert_eq(cli_output(&cli, o, cols), CLI_OK);
	cr_assert_str_eq(out(), "NAME  greet\nSIZE  10 B\nNOTE  -\n");
	json_decref(o);
}

Test(output, rows_without_columns_show_every_member)
{
	json_t *rows = json_pack("[{s:s,s:b}]", "tenant", "acme", "active", 1);
	cr_assert_eq(cli_output(&cli, rows, NULL), CLI_OK);
	cr_assert_str_eq(out(), "TENANT  ACTIVE\nacme    yes\n");
	json_decref(rows);
}

Test(output, json_is_the_data_whole)
{
	json_t *rows = json_pack("[{s:s,s:i,s:n}]", "name", "greet", "size", 2048, "note");
	cli.format = CLI_JSON;
	cr_assert_eq(cli_output(&cli, rows, cols), CLI_OK);
	json_t *back = json_loads(out(), 0, NULL);
	cr_assert(json_equal(back, rows), "%s", out());
	json_decref(back);
	json_decref(rows);
}

Test(output, yaml_quotes_strings_that_would_read_back_as_something_else)
{
	json_t *o =
	        json_pack("{s:s,s:s,s:s,s:s,s:i,s:b,s:n,s:[s,s],s:{s:s}}", "plain", "hello world",
	                  "looks_bool", "true", "looks_number", "123", "empty", "", "n", 5, "b", 0,
	                  "nothing", "list", "a", "- b", "nested", "key", "x: y");
	cli.format = CLI_YAML;
	cr_assert_eq(cli_output(&cli, o, NULL), CLI_OK);
	cr_assert_str_eq(out(), "plain: hello world\n"
	                        "looks_bool: \"true\"\n"
	                        "looks_number: \"123\"\n"
	                        "empty: \"\"\n"
	                        "n: 5\n"
	                        "b: false\n"
	                        "nothing: null\n"
	                        "list:\n"
	                        "- a\n"
	                        "- \"- b\"\n"
	                        "nested:\n"
	                        "  key: \"x: y\"\n");
	json_decref(o);
}

Test(output, an_unreachable_service_is_explained_with_what_to_do)
{
	cli_print_call_error(&cli, CLI_QUEUE, "Stats", NOETL__STATUS__UNAVAILABLE,
	                     "noetl.Queue.Stats: cannot reach tcp://queue.example:7403");
	cr_assert_str_eq(err(),
	                 "noetlctl: cannot reach the queue at tcp://queue.example:7403: is it "
	                 "running? (check with 'noetlctl status'; point to it with --queue URL "
	                 "or NOETL_QUEUE_URL)\n");
}

Test(output, a_service_that_answers_unavailable_is_quoted_not_called_unreachable)
{
	cli_print_call_error(&cli, CLI_CONTROL, "Deploy", NOETL__STATUS__UNAVAILABLE,
	                     "cannot check the package's files: the repository is down");
	cr_assert_str_eq(err(), "noetlctl: the control cannot do Deploy now: cannot check the "
	                        "package's files: the repository is down\n");
}

Test(output, other_statuses_are_explained_in_words)
{
	cli_print_call_error(&cli, CLI_CONTROL, "Deploy", NOETL__STATUS__UNAUTHENTICATED,
	                     "missing token");
	cli_print_call_error(&cli, CLI_CONTROL, "Deploy", NOETL__STATUS__NOT_FOUND,
	                     "tenant 'acme' does not exist");
	cli_print_call_error(&cli, CLI_CONTROL, "Deploy", NOETL__STATUS__DEADLINE_EXCEEDED,
	                     "deadline exceeded");
	cli_print_call_error(&cli, CLI_CONTROL, "Deploy", NOETL__STATUS__INTERNAL, "disk full");
	const char *e = err();
	cr_assert(strstr(e,
	                 "noetlctl: the control refused Deploy: missing token (pass a token with "
	                 "--token or NOETL_TOKEN)\n") != NULL,
	          "%s", e);
	cr_assert(strstr(e, "noetlctl: not found: tenant 'acme' does not exist\n") != NULL, "%s",
	          e);
	cr_assert(strstr(e, "did not answer Deploy in time") != NULL, "%s", e);
	cr_assert(strstr(e, "retry, or allow longer with --timeout") != NULL, "%s", e);
	cr_assert(strstr(e, "noetlctl: the control failed on Deploy: disk full (INTERNAL)\n") !=
	                  NULL,
	          "%s", e);
}

Test(output, a_call_to_a_service_that_is_not_there_fails_with_the_explanation)
{
	char url[96];
	snprintf(url, sizeof(url), "ipc:///tmp/noetl-cli-output-%d.sock", (int)getpid());
	cli.urls[CLI_QUEUE] = url;
	cli.timeout_ms = 200;
	Noetl__StatsRequest req = NOETL__STATS_REQUEST__INIT;
	ProtobufCMessage *reply = NULL;
	int rv = cli_call(&cli, CLI_QUEUE, &noetl__queue__descriptor, "Stats", &req.base, NULL,
	                  &reply);
	cr_assert_eq(rv, CLI_FAIL);
	cr_assert_null(reply);
	cr_assert(strstr(err(), "cannot reach the queue at ipc:///tmp/noetl-cli-output-") != NULL,
	          "%s", err());
}

Test(output, the_listener_has_no_rpc_client)
{
	struct rpc_client *c = NULL;
	cr_assert_eq(cli_client(&cli, CLI_LISTENER, &c), CLI_USAGE);
	cr_assert(strstr(err(), "the listener has no RPC API") != NULL, "%s", err());
}
