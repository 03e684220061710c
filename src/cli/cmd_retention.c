/*
 * retention: how long the Recorder keeps a tenant's records.
 *
 *   noetlctl retention show TENANT
 *   noetlctl retention set TENANT [--max-age D] [--max-bytes S] | --default
 *
 * A tenant without its own policy gets the Recorder's default
 * (--max-age/--max-bytes of noetl-recorder). Old records are deleted by a
 * background pass, oldest first, so the change takes effect within one
 * retention interval.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "recorder.pb-c.h"

static int64_t opt_max_age;
static size_t opt_max_bytes;
static bool opt_default;
static bool opt_keep_all;

static const struct config_option set_options[] = {
        {"max-age", CONFIG_DURATION, &opt_max_age, "0",
         "delete records older than this (7d, 12h; 0 = keep records of any age)", NULL, NULL},
        {"max-bytes", CONFIG_SIZE, &opt_max_bytes, "0",
         "delete the oldest records beyond this size (512MiB; 0 = no bound)", NULL, NULL},
        {"keep-all", CONFIG_BOOL, &opt_keep_all, "false",
         "keep every record of the tenant, whatever the recorder's default", NULL, NULL},
        {"default", CONFIG_BOOL, &opt_default, "false",
         "drop the tenant's own policy: the recorder's default applies again", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const char *tenant_arg(struct cli *cli, int argc, char **argv)
{
	if (argc == 1)
		return argv[0];
	if (argc == 0 && cli->tenant != NULL)
		return cli->tenant;
	return NULL;
}

static int run_show(struct cli *cli, int argc, char **argv)
{
	const char *tenant = tenant_arg(cli, argc, argv);
	if (tenant == NULL)
		return cli_usage(cli, "retention show takes one tenant");
	Noetl__Retention in = NOETL__RETENTION__INIT;
	in.tenant = (char *)tenant;
	ProtobufCMessage *out = NULL;
	int rv = cli_call(cli, CLI_RECORDER, &noetl__recorder__descriptor, "GetRetention", &in.base,
	                  tenant, &out);
	if (rv != CLI_OK)
		return rv;
	Noetl__Retention *r = (Noetl__Retention *)out;
	json_t *o = json_object();
	json_object_set_new(o, "tenant", json_string(r->tenant));
	json_object_set_new(o, "policy", json_string(r->use_default ? "default" : "own"));
	json_object_set_new(o, "max_age_ms", json_integer(r->max_age_ms));
	json_object_set_new(o, "max_bytes", json_integer((json_int_t)r->max_bytes));
	json_object_set_new(o, "records", json_integer((json_int_t)r->records));
	json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
	protobuf_c_message_free_unpacked(out, NULL);
	static const struct cli_column cols[] = {
	        {"TENANT", "tenant", CLI_CELL_TEXT},
	        {"POLICY", "policy", CLI_CELL_TEXT},
	        {"MAX AGE", "max_age_ms", CLI_CELL_DURATION},
	        {"MAX SIZE", "max_bytes", CLI_CELL_BYTES},
	        {"RECORDS", "records", CLI_CELL_TEXT},
	        {"SIZE", "bytes", CLI_CELL_BYTES},
	        {NULL, NULL, 0},
	};
	rv = cli_output(cli, o, cols);
	json_decref(o);
	return rv;
}

static int run_set(struct cli *cli, int argc, char **argv)
{
	const char *tenant = tenant_arg(cli, argc, argv);
	if (tenant == NULL)
		return cli_usage(cli, "retention set takes one tenant");
	int given = (opt_max_age != 0 || opt_max_bytes != 0) + opt_keep_all + opt_default;
	if (given != 1)
		return cli_usage(cli,
		                 "give --max-age and/or --max-bytes, or --keep-all, or --default");
	if (opt_max_age < 0)
		return cli_usage(cli, "--max-age must not be negative");
	Noetl__Retention in = NOETL__RETENTION__INIT;
	in.tenant = (char *)tenant;
	in.max_age_ms = opt_max_age;
	in.max_bytes = opt_max_bytes;
	in.use_default = opt_default;
	ProtobufCMessage *out = NULL;
	int rv = cli_call(cli, CLI_RECORDER, &noetl__recorder__descriptor, "SetRetention", &in.base,
	                  tenant, &out);
	if (rv != CLI_OK)
		return rv;
	protobuf_c_message_free_unpacked(out, NULL);
	return run_show(cli, 1, (char **)&tenant);
}

static const struct cli_command retention_subs[] = {
        {.name = "show",
         .args = "<tenant>",
         .summary = "show how long the recorder keeps a tenant's records, and what it holds",
         .run = run_show},
        {.name = "set",
         .args = "<tenant>",
         .summary = "set how long the recorder keeps a tenant's records",
         .run = run_set,
         .options = set_options,
         .help = "Records older than --max-age, and the oldest records beyond --max-bytes, are\n"
                 "deleted by the recorder's background retention pass. --default drops the\n"
                 "tenant's own policy so that the recorder's default applies."},
        {0},
};

const struct cli_command cli_retention_commands[] = {
        {.name = "retention",
         .summary = "show and set how long records are kept",
         .subcommands = retention_subs},
        {0},
};
