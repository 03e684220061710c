/*
 * noetlctl's queue commands (src/cli/cmd_queue.c), run as users run them:
 * the built binary against a real queue server over ipc://.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qclient.h"
#include "testutil.h"

static struct qfx fx;

static void setup(void)
{
	qfx_setup(&fx, NULL);
}

static void teardown(void)
{
	qfx_teardown(&fx);
}

TestSuite(queue_cli, .init = setup, .fini = teardown, .timeout = 60);

/* Runs noetlctl with args against the fixture's queue; returns its exit
 * status and (malloc'ed) output in *out. */
static int ctl(char **out, const char *args)
{
	char bin[512], cmd[4096];
	testutil_build_path("src/cli/noetlctl", bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd),
	         "HOME='%s' NOETL_TENANT= NOETL_OUTPUT= '%s' --queue '%s' %s 2>&1", fx.dir, bin,
	         fx.url, args);
	return testutil_run(cmd, out);
}

/* Runs noetlctl -o json and parses its output; asserts exit 0. */
static json_t *ctl_json(const char *args)
{
	char full[1024];
	snprintf(full, sizeof(full), "-o json %s", args);
	char *out = NULL;
	int rc = ctl(&out, full);
	cr_assert_eq(rc, 0, "noetlctl %s: exit %d: %s", args, rc, out);
	json_error_t e;
	json_t *j = json_loads(out, 0, &e);
	cr_assert_not_null(j, "noetlctl %s printed no JSON: %s", args, out);
	free(out);
	return j;
}

static void make_dead(const char *queue, const char *id)
{
	qput(fx.cli, "acme", queue, id);
	Noetl__LeaseReply *r = qlease(fx.cli, 1, 30000, 0, "acme");
	cr_assert_eq(r->n_items, 1);
	Noetl__AckReply *a = qnack(fx.cli, r->items[0], "boom", true);
	noetl__ack_reply__free_unpacked(a, NULL);
	noetl__lease_reply__free_unpacked(r, NULL);
}

static json_t *find_queue(json_t *rows, const char *queue)
{
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		if (strcmp(json_string_value(json_object_get(row, "queue")), queue) == 0)
			return row;
	}
	return NULL;
}

Test(queue_cli, stats_and_dead_letter_commands_show_replay_and_purge)
{
	make_dead("a", "d0");
	make_dead("a", "d1");
	make_dead("a", "d2");
	qput(fx.cli, "acme", "b", "r0");

	json_t *st = ctl_json("queue stats acme");
	cr_assert_eq(json_array_size(st), 2);
	cr_assert_eq(json_integer_value(json_object_get(find_queue(st, "a"), "dead")), 3);
	cr_assert_eq(json_integer_value(json_object_get(find_queue(st, "b"), "ready")), 1);
	json_decref(st);

	json_t *dl = ctl_json("dlq list acme");
	cr_assert_eq(json_array_size(dl), 3);
	json_t *first = json_array_get(dl, 0);
	cr_assert_str_eq(json_string_value(json_object_get(first, "id")), "d0");
	cr_assert_str_eq(json_string_value(json_object_get(first, "reason")), "boom");
	cr_assert_eq(json_array_size(json_object_get(first, "history")), 1);
	json_decref(dl);

	/* --limit pages through the listing */
	dl = ctl_json("dlq list acme a --limit 2");
	cr_assert_eq(json_array_size(dl), 2);
	json_decref(dl);

	/* the table shows ids and reasons */
	char *out = NULL;
	cr_assert_eq(ctl(&out, "dlq list acme a"), 0, "%s", out);
	cr_assert(strstr(out, "REASON") && strstr(out, "d1") && strstr(out, "boom"), "%s", out);
	free(out);

	json_t *rp = ctl_json("dlq replay acme --id d1");
	cr_assert_eq(json_integer_value(json_object_get(rp, "replayed")), 1);
	json_decref(rp);
	json_t *pg = ctl_json("dlq purge acme a");
	cr_assert_eq(json_integer_value(json_object_get(pg, "purged")), 2);
	json_decref(pg);

	st = ctl_json("queue stats");
	cr_assert_eq(json_integer_value(json_object_get(find_queue(st, "a"), "dead")), 0);
	cr_assert_eq(json_integer_value(json_object_get(find_queue(st, "a"), "ready")), 1);
	json_decref(st);
}

Test(queue_cli, dead_letter_commands_without_a_tenant_are_usage_errors)
{
	char *out = NULL;
	cr_assert_eq(ctl(&out, "dlq list"), 2, "%s", out);
	cr_assert(strstr(out, "tenant") != NULL, "%s", out);
	free(out);
	cr_assert_eq(ctl(&out, "dlq purge 'bad name'"), 2, "%s", out);
	cr_assert(strstr(out, "'bad name'") != NULL, "%s", out);
	free(out);
}
