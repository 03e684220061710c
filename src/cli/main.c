/*
 * noetlctl: global options, then dispatch to a command's table row.
 *
 * Global options come from flags, NOETL_* variables and
 * ~/.config/noetl/noetlctl.yaml (config.h); they may also follow the
 * command ("noetlctl status -o json"), where they are parsed together with
 * the command's own flags. Every command's settings (cli.h) join them at
 * start-up, so that a setting is read from the same places in the same
 * order: flag > NOETL_* variable > file > default. Exit codes: 0 success,
 * 1 failure, 2 usage.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "defaults.h"
#include "log.h"
#include "rpc.h"

static struct cli cli;
static char *log_level;

static const struct config_option global_options[] = {
        {"control.url", CONFIG_URL, &cli.urls[CLI_CONTROL], NOETL_DEFAULT_CONTROL_URL,
         "the control service's RPC address", "control", NULL},
        {"repository.url", CONFIG_URL, &cli.urls[CLI_REPOSITORY], NOETL_DEFAULT_REPOSITORY_URL,
         "the repository service's RPC address", "repository", NULL},
        {"queue.url", CONFIG_URL, &cli.urls[CLI_QUEUE], NOETL_DEFAULT_QUEUE_URL,
         "the queue service's RPC address", "queue", NULL},
        {"recorder.url", CONFIG_URL, &cli.urls[CLI_RECORDER], NOETL_DEFAULT_RECORDER_URL,
         "the recorder service's RPC address", "recorder", NULL},
        {"listener.url", CONFIG_URL, &cli.urls[CLI_LISTENER], NOETL_DEFAULT_LISTENER_URL,
         "the listener's HTTP address", "listener", NULL},
        {"token", CONFIG_STRING, &cli.token, NULL, "credentials sent with every call", NULL, NULL},
        {"tenant", CONFIG_STRING, &cli.tenant, NULL, "the tenant commands act on by default", "t",
         NULL},
        {"output", CONFIG_ENUM, &cli.output, "table", "how results are printed", "o",
         "table|json|yaml"},
        {"timeout", CONFIG_DURATION, &cli.timeout_ms, "10s", "give up on a call after this long",
         NULL, NULL},
        {"log.level", CONFIG_ENUM, &log_level, "off", "library log lines on stderr", NULL,
         "debug|info|warn|error|off"},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

/* global_options, then every command's settings without their aliases
 * (built by main; freed at exit). */
static struct config_option *globals;

static struct config_spec spec = {
        .program = "noetlctl",
        .usage = "[options] <command> [args]",
        .summary = "The command-line client of the noetl job platform.",
        .options = global_options,
        .default_file = NOETL_DEFAULT_CTL_CONFIG,
        .stop_at_operand = true,
};

static int run_help(struct cli *c, int argc, char **argv);
static int run_version(struct cli *c, int argc, char **argv);

static const struct cli_command builtin[] = {
        {.name = "help",
         .args = "[<command>...]",
         .summary = "show help for noetlctl or for a command",
         .run = run_help},
        {.name = "version", .args = "", .summary = "print noetlctl's version", .run = run_version},
        {0},
};

static const struct config_option no_options[] = {{NULL, 0, NULL, NULL, NULL, NULL, NULL}};

/* --- help ------------------------------------------------------------------ */

static void list_commands(FILE *out, const char *prefix, const struct cli_command *t)
{
	for (; t->name != NULL; t++) {
		char left[128];
		if (t->subcommands != NULL) {
			char sub[96];
			snprintf(sub, sizeof(sub), "%s%s ", prefix, t->name);
			list_commands(out, sub, t->subcommands);
			continue;
		}
		snprintf(left, sizeof(left), "%s%s%s%s", prefix, t->name,
		         t->args != NULL && *t->args ? " " : "", t->args != NULL ? t->args : "");
		int n = fprintf(out, "  %s", left);
		fprintf(out, "%*s%s\n", n < 34 ? 34 - n : 1, "", t->summary);
	}
}

static void usage(FILE *out)
{
	config_usage(&spec, out);
	fprintf(out, "\ncommands:\n");
	for (size_t i = 0; cli_modules[i] != NULL; i++)
		list_commands(out, "", cli_modules[i]);
	list_commands(out, "", builtin);
	fprintf(out,
	        "\nGlobal options may also follow the command. Exit codes: 0 success,\n"
	        "1 failure, 2 usage error. Run '%s <command> --help' for a command's options.\n",
	        spec.program);
}

static void command_help(FILE *out, const char *path, const struct cli_command *cmd)
{
	if (cmd->subcommands != NULL) {
		fprintf(out, "usage: noetlctl %s <command> [args]\n\n%s\n\ncommands:\n", path,
		        cmd->summary);
		list_commands(out, "", cmd->subcommands);
		fprintf(out, "\nRun 'noetlctl %s <command> --help' for its options.\n", path);
		return;
	}
	fprintf(out, "usage: noetlctl %s [options]%s%s\n\n%s\n", path,
	        cmd->args != NULL && *cmd->args ? " " : "", cmd->args != NULL ? cmd->args : "",
	        cmd->summary);
	if (cmd->help != NULL)
		fprintf(out, "\n%s\n", cmd->help);
	if (cmd->options != NULL && cmd->options[0].key != NULL) {
		fprintf(out, "\noptions:\n");
		config_usage_options(cmd->options, false, out);
	}
	if (cmd->settings != NULL && cmd->settings[0].key != NULL) {
		fprintf(out, "\nsettings (a flag beats the environment, which beats %s):\n",
		        NOETL_DEFAULT_CTL_CONFIG);
		config_usage_options(cmd->settings, true, out);
	}
	fprintf(out, "\nGlobal options (see 'noetlctl --help') may be given too.\n");
}

/* --- dispatch --------------------------------------------------------------- */

static const struct cli_command *find(const struct cli_command *t, const char *name)
{
	for (; t != NULL && t->name != NULL; t++) {
		if (strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

static const struct cli_command *find_top(const char *name)
{
	const struct cli_command *c = find(builtin, name);
	for (size_t i = 0; c == NULL && cli_modules[i] != NULL; i++)
		c = find(cli_modules[i], name);
	return c;
}

static bool is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Global settings that depend on the option values. */
static int apply_globals(void)
{
	cli.format = strcmp(cli.output, "json") == 0   ? CLI_JSON
	             : strcmp(cli.output, "yaml") == 0 ? CLI_YAML
	                                               : CLI_TABLE;
	enum log_level level = LOG_LEVEL_OFF;
	log_level_parse(log_level, &level);
	log_setup("noetlctl", level, false);
	return CLI_OK;
}

static size_t count_options(const struct config_option *t)
{
	size_t n = 0;
	while (t != NULL && t[n].key != NULL)
		n++;
	return n;
}

static const struct config_option *find_option(const struct config_option *t, const char *key)
{
	for (; t != NULL && t->key != NULL; t++)
		if (strcmp(t->key, key) == 0)
			return t;
	return NULL;
}

/* Appends the settings of the commands in t (and below) that all[0..*n)
 * lacks, without aliases; with all NULL only counts (an upper bound). */
static void add_settings(const struct cli_command *t, struct config_option *all, size_t *n)
{
	for (; t->name != NULL; t++) {
		if (t->subcommands != NULL)
			add_settings(t->subcommands, all, n);
		for (const struct config_option *s = t->settings; s != NULL && s->key != NULL;
		     s++) {
			if (all == NULL) {
				(*n)++;
				continue;
			}
			all[*n].key = NULL; /* all[0..*n) is a table while searched */
			const struct config_option *seen = find_option(all, s->key);
			if (seen != NULL && seen->dest != s->dest) {
				/* a programming error the first test run shows */
				fprintf(stderr, "noetlctl: setting '%s' has two dests\n", s->key);
				abort();
			}
			if (seen != NULL)
				continue; /* declared by another command too */
			all[*n] = *s;
			all[*n].flag = NULL;
			(*n)++;
		}
	}
}

/* global_options and every command's settings, for config_load. */
static struct config_option *make_globals(void)
{
	size_t n = count_options(global_options), cap = n;
	for (size_t i = 0; cli_modules[i] != NULL; i++)
		add_settings(cli_modules[i], NULL, &cap);
	struct config_option *all = calloc(cap + 1, sizeof(*all));
	if (all == NULL)
		return NULL;
	memcpy(all, global_options, n * sizeof(*all));
	for (size_t i = 0; cli_modules[i] != NULL; i++)
		add_settings(cli_modules[i], all, &n);
	all[n].key = NULL;
	return all;
}

/* The command's options, its settings (with their aliases) and the global
 * ones, so that global flags and settings may follow the command. */
static struct config_option *merge_options(const struct config_option *own,
                                           const struct config_option *settings)
{
	size_t a = count_options(own), b = count_options(settings), c = count_options(globals);
	struct config_option *all = calloc(a + b + c + 1, sizeof(*all));
	if (all == NULL)
		return NULL;
	memcpy(all, own, a * sizeof(*all));
	if (b > 0)
		memcpy(all + a, settings, b * sizeof(*all));
	size_t n = a + b;
	for (size_t i = 0; i < c; i++)
		if (find_option(settings, globals[i].key) == NULL)
			all[n++] = globals[i];
	return all;
}

/* Runs cmd; argv[0] is its name, path the words that led to it. */
static int dispatch(const struct cli_command *cmd, const char *path, int argc, char **argv)
{
	if (cmd->subcommands != NULL) {
		if (argc < 2) {
			command_help(cli.err, path, cmd);
			return CLI_USAGE;
		}
		if (is_help(argv[1])) {
			command_help(cli.out, path, cmd);
			return CLI_OK;
		}
		const struct cli_command *sub = find(cmd->subcommands, argv[1]);
		if (sub == NULL)
			return cli_usage(&cli, "unknown command '%s %s'", path, argv[1]);
		char subpath[256];
		snprintf(subpath, sizeof(subpath), "%s %s", path, sub->name);
		return dispatch(sub, subpath, argc - 1, argv + 1);
	}

	const struct config_option *own = cmd->options != NULL ? cmd->options : no_options;
	struct config_option *all = merge_options(own, cmd->settings);
	if (all == NULL)
		return cli_fail(&cli, "out of memory");
	char *err = NULL;
	int next = argc;
	bool help = false;
	int rv = config_set_defaults(own, &err);
	if (rv == 0)
		rv = config_parse_flags(all, argc, argv, false, &next, &help, &err);
	free(all);
	if (rv != 0) {
		fprintf(cli.err, "%s: %s: %s\n(see '%s %s --help')\n", cli.prog, path,
		        err != NULL ? err : "bad arguments", cli.prog, path);
		free(err);
		config_free(own);
		return CLI_USAGE;
	}
	if (help) {
		command_help(cli.out, path, cmd);
		config_free(own);
		return CLI_OK;
	}
	apply_globals();
	rv = cmd->run(&cli, argc - next, argv + next);
	config_free(own);
	return rv;
}

static int run_help(struct cli *c, int argc, char **argv)
{
	if (argc == 0) {
		usage(c->out);
		return CLI_OK;
	}
	const struct cli_command *cmd = find_top(argv[0]);
	if (cmd == NULL)
		return cli_usage(c, "unknown command '%s'", argv[0]);
	char path[256];
	snprintf(path, sizeof(path), "%s", cmd->name);
	for (int i = 1; i < argc && cmd->subcommands != NULL; i++) {
		const struct cli_command *sub = find(cmd->subcommands, argv[i]);
		if (sub == NULL)
			return cli_usage(c, "unknown command '%s %s'", path, argv[i]);
		size_t n = strlen(path);
		snprintf(path + n, sizeof(path) - n, " %s", sub->name);
		cmd = sub;
	}
	command_help(c->out, path, cmd);
	return CLI_OK;
}

static int run_version(struct cli *c, int argc, char **argv)
{
	(void)argv;
	if (argc > 0)
		return cli_usage(c, "version takes no arguments");
	fprintf(c->out, "noetlctl %s\n", NOETL_VERSION);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	cli.prog = "noetlctl";
	cli.out = stdout;
	cli.err = stderr;
	log_setup("noetlctl", LOG_LEVEL_OFF, false);

	char *err = NULL;
	int next = argc, rv;
	bool help = false;
	globals = make_globals();
	if (globals == NULL) {
		fprintf(stderr, "%s: out of memory\n", cli.prog);
		return CLI_FAIL;
	}
	spec.options = globals;
	if (config_load(&spec, argc, argv, &next, &help, &err) != 0) {
		fprintf(stderr, "%s: %s\n", cli.prog, err != NULL ? err : "bad configuration");
		free(err);
		rv = CLI_USAGE;
		goto out;
	}
	if (help) {
		usage(stdout);
		rv = CLI_OK;
		goto out;
	}
	apply_globals();
	if (next >= argc) {
		usage(stderr);
		rv = CLI_USAGE;
		goto out;
	}
	const struct cli_command *cmd = find_top(argv[next]);
	if (cmd == NULL) {
		rv = cli_usage(&cli, "unknown command '%s'", argv[next]);
		goto out;
	}
	rv = dispatch(cmd, cmd->name, argc - next, argv + next);
out:
	for (int s = 0; s < CLI_SERVICES; s++)
		rpc_client_destroy(cli.clients[s]);
	config_free(globals);
	free(globals);
	fflush(stdout);
	return rv;
}
