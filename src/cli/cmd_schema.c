/*
 * cmd_schema: `noetlctl schema check SCHEMA.json DATA.json` validates a
 * document locally with the same code the listener runs (jsonschema.h), so
 * a schema and its events can be tried before they are uploaded.
 *
 * "$ref"s to other files are resolved in the directory of SCHEMA.json, the
 * way the listener resolves them among the tenant's files in the
 * Repository: by bare file name ("address.json#/definitions/street").
 *
 * Exit codes: 0 valid, 1 invalid (every error printed with its instance
 * pointer, schema location and message), 2 when the schema or the data
 * cannot be used (unreadable, not JSON, not a valid schema).
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonschema.h"
#include "util.h"

#define FILE_MAX (16u << 20)

static bool data_is_body;

static const struct config_option check_options[] = {
        {"events", CONFIG_BOOL, &data_is_body, "false",
         "DATA.json is a request body {\"data\":[...]}: check each event in it", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

/* Reads a whole file (malloc'ed, NUL-terminated) or says why not: NULL. */
static char *slurp(struct cli *cli, const char *path, size_t *len)
{
	char *buf;
	if (cli_read_file(cli, path, FILE_MAX, "schemas and documents must be smaller", &buf,
	                  len) != CLI_OK)
		return NULL;
	return buf;
}

struct resolver {
	struct cli *cli;
	char dir[4096]; /* directory of the schema */
};

static int resolve(void *arg, const char *uri, json_t **out, char **err)
{
	struct resolver *r = arg;
	if (!util_valid_name(uri, 128)) {
		if (asprintf(
		            err,
		            "\"$ref\" to '%s': only files next to the schema can be referenced, by "
		            "file name",
		            uri) < 0)
			*err = NULL;
		return -ENOENT;
	}
	char path[4300];
	snprintf(path, sizeof(path), "%s/%s", r->dir, uri);
	size_t len = 0;
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		if (asprintf(err, "\"$ref\" to '%s': cannot open '%s': %s", uri, path,
		             strerror(errno)) < 0)
			*err = NULL;
		return -ENOENT;
	}
	fclose(f);
	char *text = slurp(r->cli, path, &len);
	if (text == NULL)
		return -EIO;
	char *perr = NULL;
	int rv = jsonschema_parse(text, len, out, &perr);
	free(text);
	if (rv != 0) {
		if (asprintf(err, "%s: %s", path, perr != NULL ? perr : "not JSON") < 0)
			*err = NULL;
		free(perr);
	}
	return rv;
}

static const struct cli_column error_cols[] = {
        {"INSTANCE", "instance", CLI_CELL_TEXT},
        {"SCHEMA", "schema", CLI_CELL_TEXT},
        {"MESSAGE", "message", CLI_CELL_TEXT},
        {NULL, NULL, 0},
};

static int run_check(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage(cli, "schema check needs SCHEMA.json and DATA.json");
	size_t slen = 0, dlen = 0;
	char *stext = slurp(cli, argv[0], &slen);
	if (stext == NULL)
		return CLI_USAGE;
	struct resolver r = {.cli = cli};
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", argv[0]);
	snprintf(r.dir, sizeof(r.dir), "%s", dirname(tmp));
	struct jsonschema_options jo = {.resolver = resolve, .resolver_arg = &r};
	struct jsonschema *js = NULL;
	char *err = NULL;
	int rv = jsonschema_compile(stext, slen, &jo, &js, &err);
	free(stext);
	if (rv != 0) {
		fprintf(cli->err, "%s: %s: not a usable schema: %s\n", cli->prog, argv[0],
		        err != NULL ? err : "out of memory");
		free(err);
		return CLI_USAGE;
	}
	char *dtext = slurp(cli, argv[1], &dlen);
	json_t *doc = NULL;
	if (dtext == NULL || jsonschema_parse(dtext, dlen, &doc, &err) != 0) {
		if (dtext != NULL)
			fprintf(cli->err, "%s: %s: not JSON: %s\n", cli->prog, argv[1],
			        err != NULL ? err : "out of memory");
		free(err);
		free(dtext);
		jsonschema_destroy(js);
		return CLI_USAGE;
	}
	free(dtext);
	json_t *items = doc;
	if (data_is_body) {
		items = json_object_get(doc, "data");
		if (!json_is_object(doc) || !json_is_array(items) || json_object_size(doc) != 1) {
			fprintf(cli->err,
			        "%s: %s: with --events the data must be {\"data\":[...]}\n",
			        cli->prog, argv[1]);
			json_decref(doc);
			jsonschema_destroy(js);
			return CLI_USAGE;
		}
	}
	json_t *all = json_array();
	size_t n = data_is_body ? json_array_size(items) : 1;
	for (size_t i = 0; i < n; i++) {
		json_t *inst = data_is_body ? json_array_get(items, i) : doc;
		struct jsonschema_errors errs;
		jsonschema_errors_init(&errs, 0);
		jsonschema_validate(js, inst, &errs);
		char prefix[40] = "";
		if (data_is_body)
			snprintf(prefix, sizeof(prefix), "/data/%zu", i);
		json_t *arr = jsonschema_errors_to_json(&errs, prefix);
		if (errs.dropped > 0)
			fprintf(cli->err, "%s: %zu more errors not shown\n", cli->prog,
			        errs.dropped);
		jsonschema_errors_release(&errs);
		if (arr != NULL) {
			json_array_extend(all, arr);
			json_decref(arr);
		}
	}
	json_decref(doc);
	jsonschema_destroy(js);
	int status = CLI_OK;
	if (json_array_size(all) == 0) {
		if (cli->format == CLI_TABLE)
			fprintf(cli->out, "%s is valid\n", argv[1]);
		else
			status = cli_output(cli, all, error_cols);
	} else {
		cli_output(cli, all, error_cols);
		status = CLI_FAIL;
	}
	json_decref(all);
	return status;
}

static const struct cli_command schema_subs[] = {
        {.name = "check",
         .args = "SCHEMA.json DATA.json",
         .summary = "validate a JSON document against a JSON Schema, locally",
         .run = run_check,
         .options = check_options,
         .help = "Uses the listener's validator (drafts 4, 6 and 7, by \"$schema\"; draft 7 "
                 "by default). \"$ref\"s to other files are looked up next to SCHEMA.json, "
                 "by file name, as the listener looks them up among the tenant's files. "
                 "Exit status: 0 valid, 1 invalid (each error with the instance's JSON "
                 "pointer, the schema location and a message), 2 when the schema or the "
                 "data cannot be used."},
        {0},
};

const struct cli_command cli_schema_commands[] = {
        {.name = "schema", .summary = "work with JSON Schemas", .subcommands = schema_subs},
        {0},
};
