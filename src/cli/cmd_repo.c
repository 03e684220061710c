/*
 * cmd_repo: noetlctl's commands for the File Repository: upload (Jobico's
 * `upload wasm|json TENANT FILE_ID PATH`) and files list|stat|get|rm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_control.h"
#include "pbjson.h"
#include "repository.pb-c.h"
#include "rpc.h"

/* Larger files are refused before they are read; the Repository has its own
 * (configurable, smaller) limit. */
#define UPLOAD_MAX (RPC_DEFAULT_MAX_MSG - (64u << 10))

static char *version_text;
static char *out_path;

static const struct config_option get_options[] = {
        {"version", CONFIG_STRING, &version_text, NULL, "this version (default: the latest)", NULL,
         NULL},
        {"out", CONFIG_STRING, &out_path, NULL,
         "write the content to this file (default: standard output)", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_option stat_options[] = {
        {"version", CONFIG_STRING, &version_text, NULL, "this version (default: the latest)", NULL,
         NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static int call(struct cli *cli, const char *method, const ProtobufCMessage *in, const char *tenant,
                ProtobufCMessage **out)
{
	return cli_call(cli, CLI_REPOSITORY, &noetl__repository__descriptor, method, in, tenant,
	                out);
}

static const char *type_word(Noetl__FileType t)
{
	return t == NOETL__FILE_TYPE__FILE_WASM ? "wasm" : "json-schema";
}

/* The row of one file: pbjson plus the type in words (and version 1..). */
static json_t *file_row(const Noetl__FileInfo *fi)
{
	json_t *row = pbjson_from(&fi->base);
	json_object_set_new(row, "type", json_string(type_word(fi->type)));
	json_object_set_new(row, "version", json_integer(fi->version));
	json_object_set_new(row, "size", json_integer((json_int_t)fi->size));
	return row;
}

static const struct cli_column file_cols[] = {
        {"NAME", "name", CLI_CELL_TEXT},
        {"TYPE", "type", CLI_CELL_TEXT},
        {"VERSION", "version", CLI_CELL_TEXT},
        {"SIZE", "size", CLI_CELL_BYTES},
        {"CREATED", "created_ms", CLI_CELL_TIME},
        {"SHA256", "sha256", CLI_CELL_TEXT},
        {NULL, NULL, 0},
};

static int upload(struct cli *cli, Noetl__FileType type, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 3, 3, "noetlctl upload wasm|json TENANT FILE_ID PATH"))
		return CLI_USAGE;
	char *data = NULL;
	size_t len = 0;
	int rv = cli_read_file(cli, argv[2], UPLOAD_MAX, "larger files cannot be uploaded", &data,
	                       &len);
	if (rv != CLI_OK)
		return rv;
	Noetl__PutFileRequest req = NOETL__PUT_FILE_REQUEST__INIT;
	req.tenant = argv[0];
	req.name = argv[1];
	req.type = type;
	req.content.data = (uint8_t *)data;
	req.content.len = len;
	ProtobufCMessage *out;
	rv = call(cli, "PutFile", &req.base, argv[0], &out);
	free(data);
	if (rv != CLI_OK)
		return rv;
	const Noetl__FileInfo *fi = (const Noetl__FileInfo *)out;
	rv = cli_done(cli, file_row(fi),
	              "uploaded %s file '%s' of tenant '%s': version %u, %llu bytes, sha256 %s",
	              type_word(fi->type), fi->name, fi->tenant, fi->version,
	              (unsigned long long)fi->size, fi->sha256);
	protobuf_c_message_free_unpacked(out, NULL);
	return rv;
}

static int run_upload_wasm(struct cli *cli, int argc, char **argv)
{
	return upload(cli, NOETL__FILE_TYPE__FILE_WASM, argc, argv);
}

static int run_upload_json(struct cli *cli, int argc, char **argv)
{
	return upload(cli, NOETL__FILE_TYPE__FILE_JSON_SCHEMA, argc, argv);
}

static int run_list(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 1, 1, "noetlctl files list TENANT"))
		return CLI_USAGE;
	json_t *rows = json_array();
	Noetl__Page page = NOETL__PAGE__INIT;
	uint8_t cursor[256];
	int rv;
	do {
		Noetl__ListFilesRequest req = NOETL__LIST_FILES_REQUEST__INIT;
		req.tenant = argv[0];
		page.limit = 1000;
		req.page = &page;
		ProtobufCMessage *out;
		rv = call(cli, "ListFiles", &req.base, argv[0], &out);
		if (rv != CLI_OK)
			break;
		Noetl__ListFilesReply *rep = (Noetl__ListFilesReply *)out;
		for (size_t i = 0; i < rep->n_files; i++)
			json_array_append_new(rows, file_row(rep->files[i]));
		page.cursor.len = rep->next_cursor.len < sizeof(cursor) ? rep->next_cursor.len : 0;
		if (page.cursor.len > 0)
			memcpy(cursor, rep->next_cursor.data, page.cursor.len);
		page.cursor.data = cursor;
		protobuf_c_message_free_unpacked(out, NULL);
	} while (page.cursor.len > 0);
	if (rv == CLI_OK)
		rv = cli_output(cli, rows, file_cols);
	json_decref(rows);
	return rv;
}

static bool file_ref(struct cli *cli, int argc, char **argv, const char *usage, Noetl__FileRef *ref)
{
	if (!cli_operands(cli, argc, 2, 2, usage))
		return false;
	ref->tenant = argv[0];
	ref->name = argv[1];
	if (version_text != NULL) {
		uint64_t v;
		if (!cli_parse_u64(version_text, &v) || v == 0 || v > UINT32_MAX) {
			cli_usage(cli, "--version '%s' is not a version number (1, 2, ...)",
			          version_text);
			return false;
		}
		ref->version = (uint32_t)v;
	}
	return true;
}

static int run_stat(struct cli *cli, int argc, char **argv)
{
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	if (!file_ref(cli, argc, argv, "noetlctl files stat TENANT FILE_ID [--version N]", &ref))
		return CLI_USAGE;
	ProtobufCMessage *out;
	int rv = call(cli, "StatFile", &ref.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	json_t *row = file_row((const Noetl__FileInfo *)out);
	protobuf_c_message_free_unpacked(out, NULL);
	rv = cli_output(cli, row, file_cols);
	json_decref(row);
	return rv;
}

static int run_get(struct cli *cli, int argc, char **argv)
{
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	if (!file_ref(cli, argc, argv,
	              "noetlctl files get TENANT FILE_ID [--version N] [--out PATH]", &ref))
		return CLI_USAGE;
	ProtobufCMessage *out;
	int rv = call(cli, "GetFile", &ref.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	const Noetl__GetFileReply *rep = (const Noetl__GetFileReply *)out;
	if (out_path == NULL && rep->info->type == NOETL__FILE_TYPE__FILE_WASM &&
	    isatty(fileno(cli->out))) {
		protobuf_c_message_free_unpacked(out, NULL);
		return cli_usage(cli,
		                 "'%s' is a binary wasm file; write it with --out PATH or "
		                 "redirect the output",
		                 argv[1]);
	}
	FILE *f = out_path != NULL ? fopen(out_path, "wb") : cli->out;
	if (f == NULL) {
		rv = cli_fail(cli, "cannot create '%s': %s", out_path, strerror(errno));
	} else {
		bool ok = fwrite(rep->content.data, 1, rep->content.len, f) == rep->content.len;
		if (out_path != NULL)
			ok = fclose(f) == 0 && ok;
		else
			ok = fflush(f) == 0 && ok;
		if (!ok)
			rv = cli_fail(cli, "cannot write the content of '%s'", argv[1]);
		else if (out_path != NULL && cli->format == CLI_TABLE)
			fprintf(cli->err, "wrote version %u of '%s' (%zu bytes) to %s\n",
			        rep->info->version, argv[1], rep->content.len, out_path);
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return rv;
}

static int run_rm(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 2, 2, "noetlctl files rm TENANT FILE_ID"))
		return CLI_USAGE;
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = argv[0];
	ref.name = argv[1];
	int rv = call(cli, "DeleteFile", &ref.base, argv[0], NULL);
	if (rv != CLI_OK)
		return rv;
	return cli_done(
	        cli, json_pack("{s:s, s:s, s:b}", "tenant", argv[0], "name", argv[1], "deleted", 1),
	        "file '%s' of tenant '%s' deleted (every version)", argv[1], argv[0]);
}

static const struct cli_command upload_subs[] = {
        {.name = "wasm",
         .args = "TENANT FILE_ID PATH",
         .summary = "upload a WebAssembly module",
         .run = run_upload_wasm},
        {.name = "json",
         .args = "TENANT FILE_ID PATH",
         .summary = "upload a JSON Schema",
         .run = run_upload_json},
        {0},
};

static const struct cli_command files_subs[] = {
        {.name = "list",
         .args = "TENANT",
         .summary = "list a tenant's files (latest versions)",
         .run = run_list},
        {.name = "stat",
         .args = "TENANT FILE_ID",
         .summary = "show one file's version, size and hash",
         .run = run_stat,
         .options = stat_options},
        {.name = "get",
         .args = "TENANT FILE_ID",
         .summary = "print or save a file's content",
         .run = run_get,
         .options = get_options},
        {.name = "rm",
         .args = "TENANT FILE_ID",
         .summary = "delete a file (refused while a package uses it)",
         .run = run_rm},
        {0},
};

const struct cli_command cli_repo_commands[] = {
        {.name = "upload",
         .summary = "upload a module or schema (a new version each time)",
         .subcommands = upload_subs,
         .help = "Jobico's form: noetlctl upload wasm|json TENANT FILE_ID PATH."},
        {.name = "files",
         .summary = "list, show, fetch and delete files",
         .subcommands = files_subs},
        {0},
};
