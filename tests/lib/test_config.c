#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* A table like a service's: every type once. */
static struct {
	char *listen;
	int workers;
	bool debug;
	int64_t timeout_ms;
	size_t max_msg;
	char *queue_url;
	struct config_list peers;
	char *format;
	char *name;
} v;

static const struct config_option opts[] = {
        {"rpc.listen", CONFIG_URL, &v.listen, "tcp://127.0.0.1:7403", "where the API listens", NULL,
         NULL},
        {"rpc.workers", CONFIG_INT, &v.workers, "16", "concurrent calls", NULL, NULL},
        {"debug", CONFIG_BOOL, &v.debug, "false", "log more", "d", NULL},
        {"timeout", CONFIG_DURATION, &v.timeout_ms, "5s", "call deadline", NULL, NULL},
        {"rpc.max-msg", CONFIG_SIZE, &v.max_msg, "16MiB", "largest message", NULL, NULL},
        {"queue.url", CONFIG_URL, &v.queue_url, NULL, "the queue", "queue", NULL},
        {"peers", CONFIG_URLS, &v.peers, NULL, "other nodes", NULL, NULL},
        {"output", CONFIG_ENUM, &v.format, "table", "output format", "o", "table|json|yaml"},
        {"name", CONFIG_STRING, &v.name, "noetl", "instance name", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const char *const env_names[] = {
        "NOETL_RPC_LISTEN",  "NOETL_RPC_WORKERS", "NOETL_DEBUG", "NOETL_TIMEOUT",
        "NOETL_RPC_MAX_MSG", "NOETL_QUEUE_URL",   "NOETL_PEERS", "NOETL_OUTPUT",
        "NOETL_NAME",        "NOETL_CONFIG",
};

static char tmpdir[64];

static void setup(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
	strcpy(tmpdir, "/tmp/noetl-config-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	config_free(opts);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes text to tmpdir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int load(const char *text, char **err)
{
	cr_assert_eq(config_set_defaults(opts, NULL), 0);
	return config_load_string(opts, "svc.yaml", text, strlen(text), err);
}

Test(config, defaults_are_parsed_like_file_values)
{
	cr_assert_eq(config_set_defaults(opts, NULL), 0);
	cr_assert_str_eq(v.listen, "tcp://127.0.0.1:7403");
	cr_assert_eq(v.workers, 16);
	cr_assert_eq(v.timeout_ms, 5000);
	cr_assert_eq(v.max_msg, 16u << 20);
	cr_assert_null(v.queue_url);
	cr_assert_eq(v.peers.count, 0);
	cr_assert_str_eq(v.format, "table");
}

Test(config, nested_mappings_spell_dotted_keys)
{
	char *err = NULL;
	int rv = load("rpc:\n"
	              "  listen: tcp://0.0.0.0:9000\n"
	              "  workers: 4\n"
	              "  max-msg: 1MiB\n"
	              "queue.url: ipc:///tmp/q.sock\n"
	              "peers:\n"
	              "  - tcp://a:1\n"
	              "  - tcp://b:2\n"
	              "debug: yes\n",
	              &err);
	cr_assert_eq(rv, 0, "%s", err ? err : "");
	cr_assert_str_eq(v.listen, "tcp://0.0.0.0:9000");
	cr_assert_eq(v.workers, 4);
	cr_assert_eq(v.max_msg, 1u << 20);
	cr_assert_str_eq(v.queue_url, "ipc:///tmp/q.sock");
	cr_assert_eq(v.peers.count, 2);
	cr_assert_str_eq(v.peers.items[1], "tcp://b:2");
	cr_assert(v.debug);
}

Test(config, an_unknown_key_names_the_file_line_column_and_a_suggestion)
{
	char *err = NULL;
	int rv = load("rpc:\n  workers: 4\n  lisen: tcp://x:1\n", &err);
	cr_assert_eq(rv, -EINVAL);
	cr_assert_str_eq(err, "svc.yaml:3:3: unknown key 'rpc.lisen' (did you mean 'rpc.listen'?)");
	free(err);
}

Test(config, an_unknown_key_far_from_any_known_one_gets_no_suggestion)
{
	char *err = NULL;
	cr_assert_eq(load("colour: blue\n", &err), -EINVAL);
	cr_assert_str_eq(err, "svc.yaml:1:1: unknown key 'colour'");
	free(err);
}

Test(config, a_wrong_type_names_the_value_position_and_what_was_expected)
{
	char *err = NULL;
	cr_assert_eq(load("name: x\nrpc:\n  workers: many\n", &err), -EINVAL);
	cr_assert_str_eq(err, "svc.yaml:3:12: 'rpc.workers' expects an integer, got 'many'");
	free(err);

	cr_assert_eq(load("timeout: 5\n", &err), -EINVAL);
	cr_assert(strstr(err, "svc.yaml:1:10: 'timeout' expects a duration") == err, "%s", err);
	free(err);

	cr_assert_eq(load("rpc:\n  listen:\n    port: 5\n", &err), -EINVAL);
	cr_assert_str_eq(err, "svc.yaml:3:5: 'rpc.listen' expects a URL, got a mapping");
	free(err);

	cr_assert_eq(load("rpc: 5\n", &err), -EINVAL);
	cr_assert(strstr(err, "svc.yaml:1:1: 'rpc' is a section") == err, "%s", err);
	free(err);

	cr_assert_eq(load("output: xml\n", &err), -EINVAL);
	cr_assert_str_eq(err, "svc.yaml:1:9: 'output' expects one of table|json|yaml, got 'xml'");
	free(err);

	cr_assert_eq(load("name:\n", &err), -EINVAL);
	cr_assert(strstr(err, "'name' has no value") != NULL, "%s", err);
	free(err);

	cr_assert_eq(load("rpc:\n  workers: 99999999999\n", &err), -EINVAL);
	cr_assert(strstr(err, "out of range") != NULL, "%s", err);
	free(err);
}

Test(config, duplicate_keys_and_second_documents_are_refused)
{
	char *err = NULL;
	cr_assert_eq(load("name: a\nname: b\n", &err), -EINVAL);
	cr_assert_str_eq(err, "svc.yaml:2:1: duplicate key 'name' (first at line 1)");
	free(err);

	cr_assert_eq(load("name: a\n---\nname: b\n", &err), -EINVAL);
	cr_assert(strstr(err, "only one YAML document") != NULL, "%s", err);
	free(err);
}

Test(config, broken_yaml_and_non_mappings_name_the_position)
{
	char *err = NULL;
	cr_assert_eq(load("name: [a\n", &err), -EINVAL);
	cr_assert(strncmp(err, "svc.yaml:2:1: invalid YAML", 26) == 0, "%s", err);
	free(err);

	cr_assert_eq(load("- a\n- b\n", &err), -EINVAL);
	cr_assert_str_eq(err,
	                 "svc.yaml:1:1: the file must be a mapping of keys to values, got a list");
	free(err);

	/* comments only: no settings, no error */
	cr_assert_eq(load("# nothing yet\n", &err), 0);
}

Test(config, nested_lists_through_aliases_are_refused_with_their_position)
{
	char *err = NULL;
	/* the start of an alias bomb: every key is checked before its value
	 * is expanded, and a list of lists is refused at its first item */
	const char *bomb = "peers: &b [[tcp://a:1, tcp://a:1], [tcp://a:1]]\n"
	                   "name: *b\n";
	cr_assert_eq(load(bomb, &err), -EINVAL);
	cr_assert_str_eq(err, "svc.yaml:1:12: 'peers' expects a list of URLs, got a list in it");
	free(err);
}

Test(config, a_missing_named_file_is_an_error_naming_it)
{
	char *err = NULL;
	char path[128];
	snprintf(path, sizeof(path), "%s/nope.yaml", tmpdir);
	cr_assert_eq(config_load_file(opts, path, &err), -ENOENT);
	cr_assert(strstr(err, "cannot read config file") != NULL, "%s", err);
	cr_assert(strstr(err, path) != NULL, "%s", err);
	free(err);
}

Test(config, durations_accept_units_and_refuse_bare_numbers)
{
	int64_t ms;
	cr_assert_eq(config_parse_duration("250ms", &ms), 0);
	cr_assert_eq(ms, 250);
	cr_assert_eq(config_parse_duration("5s", &ms), 0);
	cr_assert_eq(ms, 5000);
	cr_assert_eq(config_parse_duration("1m30s", &ms), 0);
	cr_assert_eq(ms, 90000);
	cr_assert_eq(config_parse_duration("2h", &ms), 0);
	cr_assert_eq(ms, 7200000);
	cr_assert_eq(config_parse_duration("1d", &ms), 0);
	cr_assert_eq(ms, 86400000);
	cr_assert_eq(config_parse_duration("0", &ms), 0);
	cr_assert_eq(ms, 0);
	cr_assert_eq(config_parse_duration("5", &ms), -EINVAL);
	cr_assert_eq(config_parse_duration("", &ms), -EINVAL);
	cr_assert_eq(config_parse_duration("5 s", &ms), -EINVAL);
	cr_assert_eq(config_parse_duration("-5s", &ms), -EINVAL);
	cr_assert_eq(config_parse_duration("5y", &ms), -EINVAL);
	cr_assert_eq(config_parse_duration("99999999999999999999s", &ms), -EINVAL);
	cr_assert_eq(config_parse_duration("9999999999999999d", &ms), -EINVAL);
}

Test(config, sizes_accept_binary_and_decimal_units)
{
	size_t b;
	cr_assert_eq(config_parse_size("4096", &b), 0);
	cr_assert_eq(b, 4096);
	cr_assert_eq(config_parse_size("64KiB", &b), 0);
	cr_assert_eq(b, 65536);
	cr_assert_eq(config_parse_size("16MiB", &b), 0);
	cr_assert_eq(b, 16u << 20);
	cr_assert_eq(config_parse_size("16M", &b), 0);
	cr_assert_eq(b, 16u << 20);
	cr_assert_eq(config_parse_size("2MB", &b), 0);
	cr_assert_eq(b, 2000000);
	cr_assert_eq(config_parse_size("1GiB", &b), 0);
	cr_assert_eq(b, 1u << 30);
	cr_assert_eq(config_parse_size("10 B", &b), 0);
	cr_assert_eq(b, 10);
	cr_assert_eq(config_parse_size("MiB", &b), -EINVAL);
	cr_assert_eq(config_parse_size("1.5MiB", &b), -EINVAL);
	cr_assert_eq(config_parse_size("1XB", &b), -EINVAL);
	cr_assert_eq(config_parse_size("-1", &b), -EINVAL);
	cr_assert_eq(config_parse_size("99999999999TiB", &b), -EINVAL);
}

Test(config, environment_overrides_the_file)
{
	char *err = NULL;
	cr_assert_eq(load("rpc:\n  workers: 4\nname: from-file\n", &err), 0);
	setenv("NOETL_RPC_WORKERS", "8", 1);
	setenv("NOETL_RPC_MAX_MSG", "2MiB", 1);
	setenv("NOETL_PEERS", "tcp://a:1, tcp://b:2,", 1);
	setenv("NOETL_NAME", "", 1); /* empty = unset */
	cr_assert_eq(config_load_env(opts, &err), 0, "%s", err ? err : "");
	cr_assert_eq(v.workers, 8);
	cr_assert_eq(v.max_msg, 2u << 20);
	cr_assert_eq(v.peers.count, 2);
	cr_assert_str_eq(v.peers.items[0], "tcp://a:1");
	cr_assert_str_eq(v.peers.items[1], "tcp://b:2");
	cr_assert_str_eq(v.name, "from-file");
}

Test(config, a_bad_environment_value_names_the_variable)
{
	char *err = NULL;
	cr_assert_eq(config_set_defaults(opts, NULL), 0);
	setenv("NOETL_DEBUG", "maybe", 1);
	cr_assert_eq(config_load_env(opts, &err), -EINVAL);
	cr_assert_str_eq(err, "environment variable NOETL_DEBUG: 'debug' expects true or false, "
	                      "got 'maybe'");
	free(err);
}

Test(config, env_names_upper_case_the_key_and_replace_dots_and_dashes)
{
	char buf[64];
	config_env_name("rpc.max-msg", buf, sizeof(buf));
	cr_assert_str_eq(buf, "NOETL_RPC_MAX_MSG");
	config_env_name("queue.url", buf, 10);
	cr_assert_str_eq(buf, "NOETL_QUE");
}

Test(config, flags_take_every_spelling)
{
	char *err = NULL;
	char *argv[] = {"prog",
	                "--rpc.listen=tcp://h:1",
	                "--rpc-workers",
	                "3",
	                "-d",
	                "--queue",
	                "tcp://q:2",
	                "-ojson",
	                "--timeout=250ms",
	                NULL};
	int argc = 9, next = 0;
	bool help = true;
	cr_assert_eq(config_set_defaults(opts, NULL), 0);
	cr_assert_eq(config_parse_flags(opts, argc, argv, false, &next, &help, &err), 0, "%s",
	             err ? err : "");
	cr_assert_eq(next, argc);
	cr_assert_not(help);
	cr_assert_str_eq(v.listen, "tcp://h:1");
	cr_assert_eq(v.workers, 3);
	cr_assert(v.debug);
	cr_assert_str_eq(v.queue_url, "tcp://q:2");
	cr_assert_str_eq(v.format, "json");
	cr_assert_eq(v.timeout_ms, 250);

	char *argv2[] = {"prog", "--no-debug", "-o", "yaml", "--rpc_max_msg", "1K", NULL};
	cr_assert_eq(config_parse_flags(opts, 6, argv2, false, &next, &help, &err), 0);
	cr_assert_not(v.debug);
	cr_assert_str_eq(v.format, "yaml");
	cr_assert_eq(v.max_msg, 1024);
}

Test(config, operands_among_flags_move_behind_them_in_order)
{
	char *err = NULL;
	char *argv[] = {"prog", "list", "--rpc.workers", "2", "acme", "--", "--not-a-flag", NULL};
	int next = 0;
	bool help;
	cr_assert_eq(config_set_defaults(opts, NULL), 0);
	cr_assert_eq(config_parse_flags(opts, 7, argv, false, &next, &help, &err), 0);
	cr_assert_eq(next, 4);
	cr_assert_str_eq(argv[1], "--rpc.workers");
	cr_assert_str_eq(argv[2], "2");
	cr_assert_str_eq(argv[3], "--");
	cr_assert_str_eq(argv[4], "list");
	cr_assert_str_eq(argv[5], "acme");
	cr_assert_str_eq(argv[6], "--not-a-flag");
	cr_assert_eq(v.workers, 2);
}

Test(config, stop_at_operand_leaves_the_sub_command_and_its_flags_alone)
{
	char *err = NULL;
	char *argv[] = {"prog", "-d", "queue", "stats", "--bogus", NULL};
	int next = 0;
	bool help;
	cr_assert_eq(config_set_defaults(opts, NULL), 0);
	cr_assert_eq(config_parse_flags(opts, 5, argv, true, &next, &help, &err), 0);
	cr_assert_eq(next, 2);
	cr_assert_str_eq(argv[2], "queue");
	cr_assert(v.debug);
}

Test(config, unknown_flags_and_missing_values_are_errors)
{
	char *err = NULL;
	int next;
	bool help;
	cr_assert_eq(config_set_defaults(opts, NULL), 0);
	char *a1[] = {"prog", "--colour=blue", NULL};
	cr_assert_eq(config_parse_flags(opts, 2, a1, false, &next, &help, &err), -EINVAL);
	cr_assert_str_eq(err, "unknown flag '--colour' (see --help)");
	free(err);
	char *a2[] = {"prog", "--rpc.workers", NULL};
	cr_assert_eq(config_parse_flags(opts, 2, a2, false, &next, &help, &err), -EINVAL);
	cr_assert_str_eq(err, "flag '--rpc.workers' needs a value");
	free(err);
	char *a3[] = {"prog", "--timeout", "soon", NULL};
	cr_assert_eq(config_parse_flags(opts, 3, a3, false, &next, &help, &err), -EINVAL);
	cr_assert(strncmp(err, "flag --timeout: 'timeout' expects a duration", 44) == 0, "%s", err);
	free(err);
	char *a4[] = {"prog", "--no-timeout", NULL};
	cr_assert_eq(config_parse_flags(opts, 2, a4, false, &next, &help, &err), -EINVAL);
	free(err);
}

Test(config, load_applies_flag_over_env_over_file_over_default)
{
	char *err = NULL;
	const char *path = write_file("svc.yaml", "rpc:\n  workers: 4\n"
	                                          "name: file\n"
	                                          "timeout: 1s\n");
	setenv("NOETL_RPC_WORKERS", "8", 1);
	setenv("NOETL_NAME", "env", 1);
	char cfg[160];
	snprintf(cfg, sizeof(cfg), "--config=%s", path);
	char *argv[] = {"prog", cfg, "--name", "flag", NULL};
	struct config_spec spec = {.program = "prog", .options = opts};
	int next;
	bool help;
	cr_assert_eq(config_load(&spec, 4, argv, &next, &help, &err), 0, "%s", err ? err : "");
	cr_assert_eq(next, 4);
	cr_assert_eq(v.timeout_ms, 1000);   /* file over default */
	cr_assert_eq(v.workers, 8);         /* env over file */
	cr_assert_str_eq(v.name, "flag");   /* flag over env */
	cr_assert_eq(v.max_msg, 16u << 20); /* default */
}

Test(config, load_reads_noetl_config_and_reports_file_errors_with_line)
{
	char *err = NULL;
	const char *path = write_file("bad.yaml", "name: x\n\nrpc:\n  workerz: 4\n");
	setenv("NOETL_CONFIG", path, 1);
	char *argv[] = {"prog", NULL};
	struct config_spec spec = {.program = "prog", .options = opts};
	int next;
	bool help;
	cr_assert_eq(config_load(&spec, 1, argv, &next, &help, &err), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want),
	         "%s:4:3: unknown key 'rpc.workerz' (did you mean 'rpc.workers'?)", path);
	cr_assert_str_eq(err, want);
	free(err);
}

Test(config, load_uses_the_default_file_only_when_it_exists)
{
	char *err = NULL;
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/none.yaml", tmpdir);
	struct config_spec spec = {.program = "prog", .options = opts, .default_file = missing};
	char *argv[] = {"prog", NULL};
	int next;
	bool help;
	cr_assert_eq(config_load(&spec, 1, argv, &next, &help, &err), 0);
	cr_assert_str_eq(v.name, "noetl");

	spec.default_file = write_file("def.yaml", "name: dflt\n");
	cr_assert_eq(config_load(&spec, 1, argv, &next, &help, &err), 0);
	cr_assert_str_eq(v.name, "dflt");

	/* a file named explicitly must exist */
	char flag[160];
	snprintf(flag, sizeof(flag), "--config=%s", missing);
	char *argv2[] = {"prog", flag, NULL};
	cr_assert_eq(config_load(&spec, 2, argv2, &next, &help, &err), -ENOENT);
	free(err);
}

Test(config, help_is_reported_without_reading_a_broken_file)
{
	char *err = NULL;
	const char *path = write_file("bad.yaml", "nonsense: [\n");
	setenv("NOETL_CONFIG", path, 1);
	char *argv[] = {"prog", "--help", NULL};
	struct config_spec spec = {.program = "prog", .options = opts};
	int next;
	bool help = false;
	cr_assert_eq(config_load(&spec, 2, argv, &next, &help, &err), 0);
	cr_assert(help);
}

Test(config, usage_lists_every_option_with_env_and_default)
{
	struct config_spec spec = {.program = "noetl-test",
	                           .usage = "[options]",
	                           .summary = "Tests things.",
	                           .options = opts};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	config_usage(&spec, f);
	fclose(f);
	cr_assert(strstr(text, "usage: noetl-test [options]") != NULL, "%s", text);
	cr_assert(strstr(text, "--rpc.listen URL") != NULL, "%s", text);
	cr_assert(strstr(text, "env NOETL_RPC_LISTEN, default tcp://127.0.0.1:7403") != NULL, "%s",
	          text);
	cr_assert(strstr(text, "-o, --output table|json|yaml") != NULL, "%s", text);
	cr_assert(strstr(text, "--queue URL") != NULL, "%s", text);
	cr_assert(strstr(text, "env NOETL_QUEUE_URL, --queue.url") != NULL, "%s", text);
	cr_assert(strstr(text, "-d, --debug ") != NULL, "%s", text);
	cr_assert(strstr(text, "-c, --config FILE") != NULL, "%s", text);
	free(text);
}
