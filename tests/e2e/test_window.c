/*
 * The deploy window across the real processes (issue #7 a): events posted
 * over HTTP right after a deploy, while the executor still compiles the
 * package's module, wait for it and run on their first attempt; nothing
 * fails and nothing reaches the dead-letter queue.
 *
 * The module is echo.wasm with a custom section naming this run appended
 * (a valid module with a content hash no earlier run compiled), so the
 * executor compiles it now although the e2e clusters share a compile cache.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "flow.h"
#include "testutil.h"

#define WAIT_MS 60000

static struct cluster C;

static void teardown(void)
{
	cluster_destroy(&C);
}

TestSuite(window, .fini = teardown, .timeout = 300);

/* Writes echo.wasm plus a custom section "noetl-test" holding tag to
 * path. */
static void unique_module(const char *tag, char *path, size_t cap)
{
	char src[512];
	testutil_build_path("sdk/examples/echo.wasm", src, sizeof(src));
	size_t len;
	char *wasm = testutil_read_file(src, &len);
	cr_assert_not_null(wasm, "cannot read %s", src);
	snprintf(path, cap, "%s/fresh.wasm", C.dir);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	static const char name[] = "noetl-test";
	size_t nl = strlen(name), tl = strlen(tag);
	cr_assert_lt(1 + nl + tl, 128, "the section size must fit one LEB128 byte");
	unsigned char hdr[3] = {0x00, (unsigned char)(1 + nl + tl), (unsigned char)nl};
	cr_assert_eq(fwrite(wasm, 1, len, f), len);
	cr_assert_eq(fwrite(hdr, 1, 3, f), 3);
	cr_assert_eq(fwrite(name, 1, nl, f), nl);
	cr_assert_eq(fwrite(tag, 1, tl, f), tl);
	cr_assert_eq(fclose(f), 0);
	free(wasm);
}

static const char *const window_yaml =
        "id: window\n"
        "tenant: acme\n"
        "queues:\n"
        "  - id: q\n"
        "jobs:\n"
        "  - event: {id: ev, supplierqueue: q, runtime: fresh}\n"
        "runtimes:\n"
        "  - id: fresh\n"
        "    moduleref: fresh.wasm\n"
        "    retry: {maxattempts: 1}\n"; /* a failed attempt would be dead at once */

Test(window, events_posted_while_their_package_compiles_run_on_their_first_attempt)
{
	cluster_create(&C, NULL);
	static const char *const none[] = {NULL};
	cluster_tenant(&C, "acme", none);
	char tag[64], path[400], yaml[400];
	snprintf(tag, sizeof(tag), "%ld-%lld", (long)getpid(), cluster_now_ms());
	unique_module(tag, path, sizeof(path));
	free(cluster_ctl_ok(&C, "upload wasm acme fresh.wasm '%s'", path));
	cluster_file(&C, "window.yml", window_yaml, yaml, sizeof(yaml));
	/* No wait for the executor: the posts race its compile. */
	free(cluster_ctl_ok(&C, "deploy '%s'", yaml));
	enum { N = 5 };
	char ids[N][64];
	for (int i = 0; i < N; i++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"data\":[{\"n\":%d}]}", i);
		flow_post(&C, "/events/acme/ev", body, ids[i], sizeof(ids[i]));
	}
	for (int i = 0; i < N; i++) {
		json_decref(flow_wait_step(&C, ids[i], "done", WAIT_MS));
		json_t *ex = flow_executions(&C, "acme", ids[i]);
		cr_assert_eq(json_array_size(ex), 1, "event %s ran %zu times", ids[i],
		             json_array_size(ex));
		json_t *e = json_array_get(ex, 0);
		cr_assert_eq(json_integer_value(json_object_get(e, "attempt")), 1);
		json_decref(ex);
	}
	char *out = cluster_ctl_ok(&C, "dlq list acme -o json");
	json_t *dead = flow_parse(out, "dlq list -o json");
	cr_assert_eq(json_array_size(dead), 0, "dead letters:\n%s", out);
	json_decref(dead);
	free(out);
}
