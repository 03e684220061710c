/*
 * noetlctl's Control and Repository commands, run as a user runs them (the
 * built binary through /bin/sh, in a clean environment) against the real
 * noetl-control and noetl-repository processes: output, error messages in
 * words, and exit codes 0 (done), 1 (failed) and 2 (usage).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobdef.h"
#include "procs.h"
#include "testutil.h"
#include "util.h"

static struct procs procs;
static char jobico[512], schema[512], wasm_path[320];

/* (module (type (func)) (func (type 0)) (export "event" (func 0))) */
static const unsigned char wasm[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60,
        0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x09, 0x01, 0x05, 'e',  'v',
        'e',  'n',  't',  0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
};

static void start(void)
{
	procs_start(&procs);
	testutil_source_path("../shared/compat/jobico/job-go-greet.yml", jobico, sizeof(jobico));
	testutil_source_path("../shared/compat/jobico/schema.json", schema, sizeof(schema));
	snprintf(wasm_path, sizeof(wasm_path), "%s/greet.wasm", procs.dir);
	cr_assert(testutil_write_file(wasm_path, wasm, sizeof(wasm)));
}

static void stop(void)
{
	procs_stop(&procs);
}

TestSuite(cli_control, .init = start, .fini = stop, .timeout = 300);

/* Runs "noetlctl <args>" (args is shell text); returns the exit status and
 * leaves stdout+stderr in *out (free it). */
static int ctl(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl(char **out, const char *fmt, ...)
{
	char args[2048], env[2048], bin[512], *cmd;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	procs_env(&procs, env, sizeof(env));
	testutil_build_path("src/cli/noetlctl", bin, sizeof(bin));
	/* stderr joins stdout; the redirection goes before the arguments so that
	 * a here-document in args still ends the line. */
	cr_assert(asprintf(&cmd, "cd %s && %s %s 2>&1 %s", procs.dir, env, bin, args) > 0);
	char *o = NULL;
	int rc = testutil_run(cmd, &o);
	free(cmd);
	if (out != NULL)
		*out = o;
	else
		free(o);
	return rc;
}

/* Runs a command that must succeed; returns its output. */
static char *ok(const char *args)
{
	char *out;
	int rc = ctl(&out, "%s", args);
	cr_assert_eq(rc, 0, "noetlctl %s exited %d:\n%s", args, rc, out);
	return out;
}

static void expect_in(const char *out, const char *want)
{
	cr_expect(strstr(out, want) != NULL, "expected '%s' in:\n%s", want, out);
}

static void setup_files(void)
{
	free(ok("tenant add demogo"));
	char args[1024];
	snprintf(args, sizeof(args), "upload json demogo greet-schema-go.json %s", schema);
	free(ok(args));
	snprintf(args, sizeof(args), "upload wasm demogo greet-wasm-go.wasm %s", wasm_path);
	free(ok(args));
}

Test(cli_control, a_package_goes_through_deploy_update_rollback_and_delete)
{
	setup_files();
	char args[1024], *out;
	snprintf(args, sizeof(args), "deploy %s", jobico);
	out = ok(args);
	expect_in(out, "package 'go-demo-job' of tenant 'demogo' deployed (revision 2)");
	free(out);

	cr_expect_eq(ctl(&out, "deploy %s", jobico), 1);
	expect_in(out, "already exists");
	expect_in(out, "deploy --update");
	free(out);

	snprintf(args, sizeof(args), "deploy --update %s", jobico);
	out = ok(args);
	expect_in(out, "updated (revision 3)");
	free(out);

	snprintf(args, sizeof(args), "rollback %s", jobico);
	out = ok(args);
	expect_in(out, "rolled back to the definition of revision 2 (now revision 4)");
	free(out);
	out = ok("rollback demogo go-demo-job --to 3");
	expect_in(out, "revision 3 (now revision 5)");
	free(out);

	out = ok("history demogo go-demo-job -o json");
	json_error_t jerr;
	json_t *h = json_loads(out, 0, &jerr);
	cr_assert_not_null(h, "%s: %s", jerr.text, out);
	cr_expect_eq(json_array_size(h), 4);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(h, 2), "action")),
	                 "rollback");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(h, 2), "rolled_back_to")),
	             2);
	json_decref(h);
	free(out);

	/* show deploy -o yaml prints a definition that parses back */
	out = ok("show deploy demogo go-demo-job -o yaml");
	Noetl__Package *p;
	char *perr = NULL;
	cr_assert_eq(jobdef_parse(out, strlen(out), "shown.yml", &p, &perr), 0, "%s\n%s",
	             perr ? perr : "", out);
	cr_expect_str_eq(p->id, "go-demo-job");
	cr_expect_str_eq(p->runtimes[0]->module_ref, "greet-wasm-go.wasm");
	jobdef_free(p);
	free(out);
	out = ok("show deploy demogo go-demo-job --revision 2");
	expect_in(out, "# revision 2: deploy at ");
	expect_in(out, "schemaref: greet-schema-go.json");
	free(out);
	out = ok("show deploy demogo go-demo-job -o json");
	json_t *j = json_loads(out, 0, &jerr);
	cr_assert_not_null(j, "%s", out);
	cr_expect_eq(json_integer_value(json_object_get(j, "revision")), 5);
	json_decref(j);
	free(out);

	out = ok("list");
	expect_in(out, "go-demo-job");
	expect_in(out, "evgo");
	free(out);

	cr_expect_eq(ctl(&out, "files rm demogo greet-wasm-go.wasm"), 1);
	expect_in(out, "used by package 'go-demo-job'");
	free(out);
	out = ok("delete demogo go-demo-job");
	expect_in(out, "deleted (revision 6)");
	free(out);
	free(ok("files rm demogo greet-wasm-go.wasm"));
	out = ok("files list demogo -o json");
	j = json_loads(out, 0, &jerr);
	cr_assert_not_null(j, "%s", out);
	cr_expect_eq(json_array_size(j), 1);
	json_decref(j);
	free(out);
	cr_expect_eq(ctl(&out, "show deploy demogo go-demo-job"), 1);
	expect_in(out, "not deployed");
	free(out);
	free(ok("tenant remove demogo"));
}

Test(cli_control, a_bad_definition_is_reported_with_file_line_and_column)
{
	char path[320];
	snprintf(path, sizeof(path), "%s/bad.yml", procs.dir);
	const char *bad = "id: p\ntenant: t\nqueues:\n  - id: q\n    colour: red\n";
	cr_assert(testutil_write_file(path, bad, strlen(bad)));
	char *out;
	cr_expect_eq(ctl(&out, "deploy bad.yml"), 1);
	expect_in(out, "bad.yml:5:5:");
	expect_in(out, "colour");
	free(out);
	cr_expect_eq(ctl(&out, "deploy missing.yml"), 1);
	expect_in(out, "cannot open 'missing.yml'");
	free(out);
}

Test(cli_control, usage_mistakes_exit_with_2)
{
	const char *cases[] = {
	        "deploy",
	        "tenant add",
	        "tenant add a b",
	        "rollback demogo p --to yesterday",
	        "files get demogo",
	        "files get demogo x --version 0",
	        "upload wasm demogo",
	        "upload exe demogo x y",
	        "history demogo",
	        "watch a b",
	        "deploy --frobnicate x.yml",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out;
		cr_expect_eq(ctl(&out, "%s", cases[i]), 2, "'%s' gave another status:\n%s",
		             cases[i], out);
		free(out);
	}
	char *out = ok("deploy --help");
	expect_in(out, "usage: noetlctl deploy");
	expect_in(out, "--update");
	free(out);
}

Test(cli_control, service_errors_are_told_in_words)
{
	free(ok("tenant add demogo"));
	char *out;
	cr_expect_eq(ctl(&out, "upload wasm demogo ../evil %s", wasm_path), 1);
	expect_in(out, "invalid request: file name '../evil' is not a valid name");
	free(out);

	char big[320];
	snprintf(big, sizeof(big), "%s/big.json", procs.dir);
	size_t n = 65 * 1024;
	char *data = malloc(n);
	memset(data, ' ', n);
	data[0] = '{';
	data[n - 1] = '}';
	cr_assert(testutil_write_file(big, data, n));
	free(data);
	cr_expect_eq(ctl(&out, "upload json demogo big.json big.json"), 1);
	expect_in(out, "over the repository's limit of 65536 bytes");
	free(out);

	char args[1024];
	snprintf(args, sizeof(args), "upload wasm demogo greet-wasm-go.wasm %s", wasm_path);
	free(ok(args));
	cr_expect_eq(ctl(&out, "deploy %s", jobico), 1);
	expect_in(out, "json-schema file 'greet-schema-go.json' does not exist");
	expect_in(out, "nothing was changed");
	free(out);
	out = ok("list -o json");
	cr_expect_str_eq(out, "[]\n");
	free(out);

	procs_stop_control(&procs);
	cr_expect_eq(ctl(&out, "tenant list --timeout 1s"), 1);
	expect_in(out, "cannot reach the control");
	free(out);
	procs_start_control(&procs);
}

Test(cli_control, a_token_secret_is_printed_once)
{
	free(ok("tenant add demogo"));
	char *out = ok("token create demogo --description ci -o json");
	json_error_t jerr;
	json_t *t = json_loads(out, 0, &jerr);
	cr_assert_not_null(t, "%s", out);
	free(out);
	const char *secret = json_string_value(json_object_get(t, "secret"));
	const char *id = json_string_value(json_object_get(t, "id"));
	cr_assert_not_null(secret);
	char hash[65];
	util_sha256_hex(secret, strlen(secret), hash);

	out = ok("token list demogo -o json");
	expect_in(out, hash);
	cr_expect(strstr(out, secret) == NULL, "the list shows no secret");
	expect_in(out, "\"description\": \"ci\"");
	free(out);
	char args[256];
	snprintf(args, sizeof(args), "token revoke demogo %s", id);
	out = ok(args);
	expect_in(out, "revoked");
	free(out);
	cr_expect_eq(ctl(&out, "token revoke demogo %s", id), 1);
	expect_in(out, "not found");
	free(out);
	json_decref(t);

	out = ok("token create demogo");
	expect_in(out, "secret: ");
	expect_in(out, "only time the secret is shown");
	free(out);

	char *o2;
	cr_expect_eq(ctl(&o2, "secret set demogo evgo - <<EOF\ns3cret\nEOF"), 0);
	expect_in(o2, "webhook secret of event 'evgo' of tenant 'demogo' set");
	free(o2);
	out = ok("secret clear demogo evgo");
	expect_in(out, "cleared");
	free(out);
}

Test(cli_control, watch_prints_every_change_once_in_order)
{
	free(ok("tenant add a"));
	free(ok("tenant add b"));
	free(ok("token create a"));
	/* Replays the three, then waits for the fourth made meanwhile. */
	char env[2048], bin[512], *cmd, *out;
	procs_env(&procs, env, sizeof(env));
	testutil_build_path("src/cli/noetlctl", bin, sizeof(bin));
	cr_assert(asprintf(&cmd,
	                   "cd %s && %s %s watch --since 0 --count 4 -o json > watch.out & W=$!; "
	                   "%s %s tenant add late >/dev/null; wait $W 2>&1",
	                   procs.dir, env, bin, env, bin) > 0);
	int rc = testutil_run(cmd, &out);
	free(cmd);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	char path[320];
	snprintf(path, sizeof(path), "%s/watch.out", procs.dir);
	char *text = testutil_read_file(path, NULL);
	cr_assert_not_null(text);
	const char *kinds[] = {"tenant-added", "tenant-added", "token-created", "tenant-added"};
	char *line = text;
	for (int i = 0; i < 4; i++) {
		char *nl = strchr(line, '\n');
		cr_assert_not_null(nl, "line %d missing in:\n%s", i + 1, text);
		*nl = '\0';
		json_error_t jerr;
		json_t *c = json_loads(line, 0, &jerr);
		cr_assert_not_null(c, "%s", line);
		cr_expect_eq(json_integer_value(json_object_get(c, "revision")), i + 1);
		cr_expect_str_eq(json_string_value(json_object_get(c, "kind")), kinds[i]);
		json_decref(c);
		line = nl + 1;
	}
	cr_expect_str_eq(line, "", "nothing after the fourth change");
	free(text);

	/* a tenant's watch sees only that tenant */
	out = ok("watch b --since 0 --count 1");
	expect_in(out, "tenant-added");
	expect_in(out, " b ");
	free(out);
}
