/*
 * Conformance: runs the official JSON-Schema-Test-Suite (Debian package
 * json-schema-test-suite) against src/lib/jsonschema for drafts 4, 6 and 7.
 *
 * Required tests are the top-level files of tests/draftN; optional/ (and
 * optional/format/) are counted and printed separately but not asserted.
 * Remote references to http://localhost:1234/... are served from the
 * suite's remotes/ directory through the resolver callback, as the
 * suite's README asks. Every case is validated twice, quietly and while
 * collecting errors, and the two verdicts must agree (and an invalid
 * instance must come with at least one error).
 *
 * Set JSON_SCHEMA_TEST_SUITE to use another checkout of the suite.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema.h"

#define REMOTE "http://localhost:1234/"

static const char *suite_root(void)
{
	const char *env = getenv("JSON_SCHEMA_TEST_SUITE");
	return env != NULL && env[0] != '\0' ? env : "/usr/share/json-schema-test-suite";
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, cap);
			cr_assert_not_null(nb);
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

static json_t *load_json(const char *path, char **err)
{
	size_t len;
	char *text = read_file(path, &len);
	if (text == NULL) {
		if (err != NULL && asprintf(err, "cannot read %s: %s", path, strerror(errno)) < 0)
			*err = NULL;
		return NULL;
	}
	json_t *v = NULL;
	if (jsonschema_parse(text, len, &v, err) != 0)
		v = NULL;
	free(text);
	return v;
}

/* Serves http://localhost:1234/x from remotes/x. */
static int resolve_remote(void *arg, const char *uri, json_t **out, char **err)
{
	(void)arg;
	if (strncmp(uri, REMOTE, strlen(REMOTE)) != 0 || strstr(uri, "..") != NULL) {
		if (asprintf(err, "no such remote \"%s\"", uri) < 0)
			*err = NULL;
		return -ENOENT;
	}
	char path[1024];
	snprintf(path, sizeof(path), "%s/remotes/%s", suite_root(), uri + strlen(REMOTE));
	json_t *v = load_json(path, err);
	if (v == NULL)
		return -ENOENT;
	*out = v;
	return 0;
}

struct tally {
	unsigned pass, total, disagree;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every *.json file of dir; prints each failing case. */
static void run_dir(const char *draft_name, int draft, const char *dir, bool optional,
                    struct tally *t)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	char *names[256];
	size_t nnames = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && nnames < 256) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0)
			names[nnames++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nnames, sizeof(names[0]), name_cmp);

	struct jsonschema_options opt = {
	        .default_draft = (enum jsonschema_draft)draft,
	        .resolver = resolve_remote,
	        .content_assertion = optional,
	};
	for (size_t f = 0; f < nnames; f++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
		char *err = NULL;
		json_t *groups = load_json(path, &err);
		cr_assert_not_null(groups, "%s", err != NULL ? err : path);
		size_t gi;
		json_t *group;
		json_array_foreach(groups, gi, group)
		{
			const char *gdesc =
			        json_string_value(json_object_get(group, "description"));
			json_t *tests = json_object_get(group, "tests");
			struct jsonschema *s = NULL;
			char *cerr = NULL;
			int rc = jsonschema_compile_json(json_object_get(group, "schema"), &opt, &s,
			                                 &cerr);
			size_t ti;
			json_t *test;
			json_array_foreach(tests, ti, test)
			{
				const char *tdesc =
				        json_string_value(json_object_get(test, "description"));
				bool want = json_is_true(json_object_get(test, "valid"));
				json_t *data = json_object_get(test, "data");
				t->total++;
				if (rc != 0) {
					fprintf(stderr, "  FAIL %s/%s: %s: %s (compile: %s)\n",
					        draft_name, names[f], gdesc, tdesc,
					        cerr != NULL ? cerr : "no message");
					continue;
				}
				struct jsonschema_errors errs;
				jsonschema_errors_init(&errs, 0);
				bool quiet = jsonschema_validate(s, data, NULL);
				bool loud = jsonschema_validate(s, data, &errs);
				if (quiet != loud || (!loud && errs.len == 0) ||
				    (loud && errs.len > 0)) {
					t->disagree++;
					fprintf(stderr,
					        "  DISAGREE %s/%s: %s: %s (quiet %d, collecting %d "
					        "with "
					        "%zu errors)\n",
					        draft_name, names[f], gdesc, tdesc, quiet, loud,
					        errs.len);
				}
				if (loud == want) {
					t->pass++;
				} else {
					fprintf(stderr, "  FAIL %s/%s: %s: %s (expected %s)\n",
					        draft_name, names[f], gdesc, tdesc,
					        want ? "valid" : "invalid");
					for (size_t i = 0; i < errs.len; i++)
						fprintf(stderr, "       %s %s: %s\n",
						        errs.items[i].instance,
						        errs.items[i].schema,
						        errs.items[i].message);
				}
				jsonschema_errors_release(&errs);
			}
			free(cerr);
			jsonschema_destroy(s);
		}
		json_decref(groups);
		free(err);
		free(names[f]);
	}
}

static void run_draft(const char *name, int draft)
{
	char dir[1024];
	struct tally req = {0}, opt = {0}, fmt = {0};
	snprintf(dir, sizeof(dir), "%s/tests/%s", suite_root(), name);
	DIR *d = opendir(dir);
	cr_assert_not_null(d,
	                   "the JSON-Schema-Test-Suite is not at %s; install the Debian package "
	                   "json-schema-test-suite or set JSON_SCHEMA_TEST_SUITE",
	                   dir);
	closedir(d);
	run_dir(name, draft, dir, false, &req);
	snprintf(dir, sizeof(dir), "%s/tests/%s/optional", suite_root(), name);
	run_dir(name, draft, dir, true, &opt);
	snprintf(dir, sizeof(dir), "%s/tests/%s/optional/format", suite_root(), name);
	run_dir(name, draft, dir, true, &fmt);
	double rate = req.total ? 100.0 * req.pass / req.total : 0;
	fprintf(stderr, "%s: %u/%u required (%.1f%%); optional %u/%u; optional/format %u/%u\n",
	        name, req.pass, req.total, rate, opt.pass, opt.total, fmt.pass, fmt.total);
	cr_assert_gt(req.total, 0, "no required tests found under %s", dir);
	cr_assert_geq(rate, 99.0, "%s passes %u of %u required tests", name, req.pass, req.total);
	cr_assert_eq(req.disagree + opt.disagree + fmt.disagree, 0,
	             "quiet and collecting validation disagree on %u cases",
	             req.disagree + opt.disagree + fmt.disagree);
}

Test(jsonschema_suite, draft4_passes_at_least_99_percent_of_the_required_tests)
{
	run_draft("draft4", 4);
}

Test(jsonschema_suite, draft6_passes_at_least_99_percent_of_the_required_tests)
{
	run_draft("draft6", 6);
}

Test(jsonschema_suite, draft7_passes_at_least_99_percent_of_the_required_tests)
{
	run_draft("draft7", 7);
}
