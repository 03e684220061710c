/*
 * cmd_control: noetlctl's commands for Control: tenants, deploying,
 * updating, rolling back and deleting job packages, showing and listing
 * them, their history; tokens and webhook secrets (cmd_token.c) and watch
 * (cmd_watch.c). Every command is one or two RPCs; what they print is
 * built as JSON so -o table|json|yaml all work.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_control.h"
#include "control.pb-c.h"
#include "jobdef.h"
#include "pbjson.h"
#include "rpc.h"

int cli_done(struct cli *cli, json_t *obj, const char *fmt, ...)
{
	int rv = CLI_OK;
	if (cli->format == CLI_TABLE) {
		va_list ap;
		va_start(ap, fmt);
		vfprintf(cli->out, fmt, ap);
		va_end(ap);
		fputc('\n', cli->out);
	} else {
		rv = cli_output(cli, obj, NULL);
	}
	json_decref(obj);
	return rv;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
	if (s == NULL || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool cli_operands(struct cli *cli, int argc, int min, int max, const char *usage)
{
	if (argc >= min && argc <= max)
		return true;
	cli_usage(cli, "%s: expected %s", argc < min ? "missing arguments" : "too many arguments",
	          usage);
	return false;
}

int cli_control_call(struct cli *cli, const char *method, const ProtobufCMessage *in,
                     const char *tenant, ProtobufCMessage **out)
{
	return cli_call(cli, CLI_CONTROL, &noetl__control__descriptor, method, in, tenant, out);
}

/* --- tenants --------------------------------------------------------------- */

static int run_tenant_add(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 1, 1, "noetlctl tenant add TENANT"))
		return CLI_USAGE;
	Noetl__AddTenantRequest req = NOETL__ADD_TENANT_REQUEST__INIT;
	req.id = argv[0];
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "AddTenant", &req.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	json_t *obj = pbjson_from(out);
	protobuf_c_message_free_unpacked(out, NULL);
	return cli_done(cli, obj, "tenant '%s' added", argv[0]);
}

static int run_tenant_list(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (!cli_operands(cli, argc, 0, 0, "noetlctl tenant list"))
		return CLI_USAGE;
	Noetl__Empty e = NOETL__EMPTY__INIT;
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "ListTenants", &e.base, NULL, &out);
	if (rv != CLI_OK)
		return rv;
	Noetl__ListTenantsReply *rep = (Noetl__ListTenantsReply *)out;
	json_t *rows = json_array();
	for (size_t i = 0; i < rep->n_tenants; i++)
		json_array_append_new(rows, json_pack("{s:s, s:I}", "id", rep->tenants[i]->id,
		                                      "created_ms",
		                                      (json_int_t)rep->tenants[i]->created_ms));
	protobuf_c_message_free_unpacked(out, NULL);
	static const struct cli_column cols[] = {
	        {"TENANT", "id", CLI_CELL_TEXT},
	        {"CREATED", "created_ms", CLI_CELL_TIME},
	        {NULL, NULL, 0},
	};
	rv = cli_output(cli, rows, cols);
	json_decref(rows);
	return rv;
}

static int run_tenant_remove(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 1, 1, "noetlctl tenant remove TENANT"))
		return CLI_USAGE;
	Noetl__RemoveTenantRequest req = NOETL__REMOVE_TENANT_REQUEST__INIT;
	req.id = argv[0];
	int rv = cli_control_call(cli, "RemoveTenant", &req.base, argv[0], NULL);
	if (rv != CLI_OK)
		return rv;
	return cli_done(cli, json_pack("{s:s, s:b}", "id", argv[0], "removed", 1),
	                "tenant '%s' removed", argv[0]);
}

/* --- deploy, rollback, delete ------------------------------------------------ */

static bool update_flag;
static char *to_revision;
static char *show_revision;

static const struct config_option deploy_options[] = {
        {"update", CONFIG_BOOL, &update_flag, "false",
         "replace a deployed package (without it, deploying an existing package fails)", NULL,
         NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_option rollback_options[] = {
        {"to", CONFIG_STRING, &to_revision, NULL,
         "restore the definition of this revision (see 'noetlctl history'); default: the one "
         "before the current",
         NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_option show_options[] = {
        {"revision", CONFIG_STRING, &show_revision, NULL,
         "show this revision of the package (default: the one in force)", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

/* Reads and parses a definition file: *text (malloc'ed) and *pkg. Prints
 * the error (file:line:column) and returns CLI_FAIL if it is not valid. */
static int load_definition(struct cli *cli, const char *path, char **text, Noetl__Package **pkg)
{
	char *buf;
	size_t n;
	int rv =
	        cli_read_file(cli, path, JOBDEF_MAX_SIZE, "a definition must be smaller", &buf, &n);
	if (rv != CLI_OK)
		return rv;
	char *err = NULL;
	rv = jobdef_parse(buf, n, path, pkg, &err);
	if (rv != 0) {
		cli_fail(cli, "%s", err != NULL ? err : "out of memory reading the definition");
		free(err);
		free(buf);
		return CLI_FAIL;
	}
	*text = buf;
	return CLI_OK;
}

static int report_change(struct cli *cli, const char *verb, const char *tenant, const char *id,
                         const Noetl__DeployReply *rep, uint64_t restored)
{
	if (rep->warning != NULL && rep->warning[0] != '\0')
		fprintf(cli->err, "%s: warning: %s\n", cli->prog, rep->warning);
	json_t *obj = json_pack("{s:s, s:s, s:s, s:I}", "tenant", tenant, "package", id, "action",
	                        verb, "revision", (json_int_t)rep->revision);
	if (restored != 0) {
		json_object_set_new(obj, "rolled_back_to", json_integer((json_int_t)restored));
		return cli_done(cli, obj,
		                "package '%s' of tenant '%s' rolled back to the definition of "
		                "revision %llu (now revision %llu)",
		                id, tenant, (unsigned long long)restored,
		                (unsigned long long)rep->revision);
	}
	return cli_done(cli, obj, "package '%s' of tenant '%s' %s (revision %llu)", id, tenant,
	                verb, (unsigned long long)rep->revision);
}

static int run_deploy(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 1, 1, "noetlctl deploy [--update] FILE.yml"))
		return CLI_USAGE;
	char *text;
	Noetl__Package *pkg;
	int rv = load_definition(cli, argv[0], &text, &pkg);
	if (rv != CLI_OK)
		return rv;
	Noetl__DeployRequest req = NOETL__DEPLOY_REQUEST__INIT;
	req.package = pkg;
	req.update = update_flag;
	req.source = text;
	ProtobufCMessage *out;
	rv = cli_control_call(cli, "Deploy", &req.base, pkg->tenant, &out);
	if (rv == CLI_OK) {
		rv = report_change(cli, update_flag ? "updated" : "deployed", pkg->tenant, pkg->id,
		                   (Noetl__DeployReply *)out, 0);
		protobuf_c_message_free_unpacked(out, NULL);
	}
	jobdef_free(pkg);
	free(text);
	return rv;
}

static int run_rollback(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 1, 2,
	                  "noetlctl rollback FILE.yml | TENANT PACKAGE [--to REVISION]"))
		return CLI_USAGE;
	Noetl__RollbackRequest req = NOETL__ROLLBACK_REQUEST__INIT;
	if (to_revision != NULL && !cli_parse_u64(to_revision, &req.to_revision))
		return cli_usage(cli, "--to '%s' is not a revision number", to_revision);
	char *text = NULL;
	Noetl__Package *pkg = NULL;
	if (argc == 1) {
		/* The file names the package; its content is not used. */
		int rv = load_definition(cli, argv[0], &text, &pkg);
		if (rv != CLI_OK)
			return rv;
		req.tenant = pkg->tenant;
		req.id = pkg->id;
	} else {
		req.tenant = argv[0];
		req.id = argv[1];
	}
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "Rollback", &req.base, req.tenant, &out);
	if (rv == CLI_OK) {
		Noetl__DeployReply *rep = (Noetl__DeployReply *)out;
		/* Which definition came back is in the new history entry. */
		Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
		ref.tenant = req.tenant;
		ref.id = req.id;
		ref.revision = rep->revision;
		ProtobufCMessage *got = NULL;
		uint64_t restored = req.to_revision;
		if (cli_control_call(cli, "GetPackage", &ref.base, req.tenant, &got) == CLI_OK) {
			Noetl__GetPackageReply *g = (Noetl__GetPackageReply *)got;
			if (g->revision != NULL)
				restored = g->revision->rolled_back_to;
			protobuf_c_message_free_unpacked(got, NULL);
		}
		rv = report_change(cli, "rolled back", req.tenant, req.id, rep, restored);
		protobuf_c_message_free_unpacked(out, NULL);
	}
	jobdef_free(pkg);
	free(text);
	return rv;
}

static int run_delete(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 2, 2, "noetlctl delete TENANT PACKAGE"))
		return CLI_USAGE;
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = argv[0];
	ref.id = argv[1];
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "Delete", &ref.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	rv = report_change(cli, "deleted", argv[0], argv[1], (Noetl__DeployReply *)out, 0);
	protobuf_c_message_free_unpacked(out, NULL);
	return rv;
}

/* --- show, list, history ----------------------------------------------------- */

static int run_show_deploy(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 2, 2, "noetlctl show deploy TENANT PACKAGE [--revision N]"))
		return CLI_USAGE;
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = argv[0];
	ref.id = argv[1];
	if (show_revision != NULL && !cli_parse_u64(show_revision, &ref.revision))
		return cli_usage(cli, "--revision '%s' is not a revision number", show_revision);
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "GetPackage", &ref.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	const Noetl__PackageRevision *pr = ((Noetl__GetPackageReply *)out)->revision;
	if (pr == NULL) {
		protobuf_c_message_free_unpacked(out, NULL);
		return cli_fail(cli, "Control sent an empty reply; is it the same version?");
	}
	if (cli->format == CLI_JSON) {
		json_t *obj = pbjson_from(&pr->base);
		rv = cli_output(cli, obj, NULL);
		json_decref(obj);
	} else if (pr->package == NULL) {
		rv = cli_fail(cli, "revision %llu deleted package '%s'; it has no definition",
		              (unsigned long long)pr->revision, argv[1]);
	} else {
		/* YAML: the definition itself, canonical and deployable again. The
		 * table adds the revision's facts as comments above it. */
		char *yaml = jobdef_to_yaml(pr->package);
		if (yaml == NULL) {
			rv = cli_fail(cli, "cannot render the definition as YAML");
		} else {
			if (cli->format == CLI_TABLE) {
				json_t *t = json_integer(pr->time_ms);
				char when[64];
				cli_format_cell(t, CLI_CELL_TIME, when, sizeof(when));
				json_decref(t);
				fprintf(cli->out, "# revision %llu: %s at %s",
				        (unsigned long long)pr->revision, pr->action, when);
				if (pr->rolled_back_to != 0)
					fprintf(cli->out, " (definition of revision %llu)",
					        (unsigned long long)pr->rolled_back_to);
				fputc('\n', cli->out);
			}
			fputs(yaml, cli->out);
			free(yaml);
		}
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return rv;
}

/* A short "a, b, c" of a package's event ids. */
static json_t *event_list(const Noetl__Package *p)
{
	char buf[256] = "";
	size_t n = 0;
	for (size_t i = 0; i < p->n_jobs && n < sizeof(buf) - 1; i++) {
		if (p->jobs[i]->event == NULL)
			continue;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n > 0 ? ", " : "",
		                      p->jobs[i]->event->id);
	}
	return json_string(buf);
}

static int run_list(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 0, 1, "noetlctl list [TENANT]"))
		return CLI_USAGE;
	json_t *rows = json_array();
	Noetl__Page page = NOETL__PAGE__INIT;
	uint8_t cursor[1024];
	int rv = CLI_OK;
	do {
		Noetl__ListPackagesRequest req = NOETL__LIST_PACKAGES_REQUEST__INIT;
		req.tenant = argc > 0 ? argv[0] : "";
		page.limit = 500;
		req.page = &page;
		ProtobufCMessage *out;
		rv = cli_control_call(cli, "ListPackages", &req.base, argc > 0 ? argv[0] : NULL,
		                      &out);
		if (rv != CLI_OK)
			break;
		Noetl__ListPackagesReply *rep = (Noetl__ListPackagesReply *)out;
		for (size_t i = 0; i < rep->n_packages; i++) {
			const Noetl__Package *p = rep->packages[i];
			json_array_append_new(rows,
			                      json_pack("{s:s, s:s, s:s, s:o, s:i, s:i}", "tenant",
			                                p->tenant, "package", p->id, "name",
			                                p->name, "events", event_list(p),
			                                "runtimes", (int)p->n_runtimes, "schedules",
			                                (int)p->n_schedules));
		}
		page.cursor.len = rep->next_cursor.len < sizeof(cursor) ? rep->next_cursor.len : 0;
		if (page.cursor.len > 0)
			memcpy(cursor, rep->next_cursor.data, page.cursor.len);
		page.cursor.data = cursor;
		protobuf_c_message_free_unpacked(out, NULL);
	} while (page.cursor.len > 0);
	if (rv == CLI_OK) {
		static const struct cli_column cols[] = {
		        {"TENANT", "tenant", CLI_CELL_TEXT},
		        {"PACKAGE", "package", CLI_CELL_TEXT},
		        {"NAME", "name", CLI_CELL_TEXT},
		        {"EVENTS", "events", CLI_CELL_TEXT},
		        {"SCHEDULES", "schedules", CLI_CELL_TEXT},
		        {NULL, NULL, 0},
		};
		rv = cli_output(cli, rows, cols);
	}
	json_decref(rows);
	return rv;
}

static int run_history(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 2, 2, "noetlctl history TENANT PACKAGE"))
		return CLI_USAGE;
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = argv[0];
	ref.id = argv[1];
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "History", &ref.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	Noetl__HistoryReply *rep = (Noetl__HistoryReply *)out;
	if (rep->omitted > 0)
		fprintf(cli->err, "%s: %u older revisions left out (the history is too long)\n",
		        cli->prog, rep->omitted);
	json_t *rows = json_array();
	for (size_t i = 0; i < rep->n_revisions; i++) {
		const Noetl__PackageRevision *pr = rep->revisions[i];
		json_t *row =
		        json_pack("{s:I, s:s, s:I, s:s}", "revision", (json_int_t)pr->revision,
		                  "action", pr->action, "time_ms", (json_int_t)pr->time_ms, "name",
		                  pr->package != NULL ? pr->package->name : "");
		if (pr->rolled_back_to != 0)
			json_object_set_new(row, "rolled_back_to",
			                    json_integer((json_int_t)pr->rolled_back_to));
		else
			json_object_set_new(row, "rolled_back_to", json_string(""));
		json_array_append_new(rows, row);
	}
	protobuf_c_message_free_unpacked(out, NULL);
	static const struct cli_column cols[] = {
	        {"REVISION", "revision", CLI_CELL_TEXT},
	        {"ACTION", "action", CLI_CELL_TEXT},
	        {"TIME", "time_ms", CLI_CELL_TIME},
	        {"RESTORED", "rolled_back_to", CLI_CELL_TEXT},
	        {"NAME", "name", CLI_CELL_TEXT},
	        {NULL, NULL, 0},
	};
	rv = cli_output(cli, rows, cols);
	json_decref(rows);
	return rv;
}

/* --- the table ----------------------------------------------------------------- */

static const struct cli_command tenant_subs[] = {
        {.name = "add", .args = "TENANT", .summary = "create a tenant", .run = run_tenant_add},
        {.name = "list", .args = "", .summary = "list tenants", .run = run_tenant_list},
        {.name = "remove",
         .args = "TENANT",
         .summary = "remove a tenant that has no packages",
         .run = run_tenant_remove,
         .help = "Its tokens, webhook secrets and package history go with it. Delete its "
                 "packages first."},
        {0},
};

static const struct cli_command show_subs[] = {
        {.name = "deploy",
         .args = "TENANT PACKAGE",
         .summary = "show a package's definition",
         .run = run_show_deploy,
         .options = show_options,
         .help = "Prints the definition as YAML (canonical: it deploys again as is); -o json "
                 "prints the whole revision record."},
        {0},
};

const struct cli_command cli_control_commands[] = {
        {.name = "tenant", .summary = "add, list and remove tenants", .subcommands = tenant_subs},
        {.name = "deploy",
         .args = "FILE.yml",
         .summary = "deploy a job definition (--update to replace one)",
         .run = run_deploy,
         .options = deploy_options,
         .help = "The file is checked locally first (errors name file:line:column); Control "
                 "then checks that every schema and module it uses was uploaded, and changes "
                 "nothing if one is missing."},
        {.name = "rollback",
         .args = "FILE.yml | TENANT PACKAGE",
         .summary = "return a package to its previous (or a named) revision",
         .run = run_rollback,
         .options = rollback_options,
         .help = "Without --to, restores the definition that was in force before the current "
                 "one. The rollback is itself a new revision."},
        {.name = "delete",
         .args = "TENANT PACKAGE",
         .summary = "delete a package (its history stays)",
         .run = run_delete},
        {.name = "show", .summary = "show definitions", .subcommands = show_subs},
        {.name = "list", .args = "[TENANT]", .summary = "list deployed packages", .run = run_list},
        {.name = "history",
         .args = "TENANT PACKAGE",
         .summary = "list a package's revisions",
         .run = run_history},
        {.name = "watch",
         .args = "[TENANT]",
         .summary = "print each definition change as it happens",
         .run = cli_watch_run,
         .options = cli_watch_options,
         .settings = cli_watch_settings,
         .help = "Follows Control's change stream; never misses or repeats a change, even "
                 "across reconnects. Stop with Ctrl-C, or use --count."},
        {.name = "token",
         .summary = "create, list and revoke API tokens",
         .subcommands = cli_token_subcommands},
        {.name = "secret", .summary = "set webhook secrets", .subcommands = cli_secret_subcommands},
        {0},
};
