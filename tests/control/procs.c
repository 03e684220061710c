#include "procs.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "repository.pb-c.h"
#include "rpc.h"
#include "testrpc.h"
#include "testutil.h"

static void wait_ready(const struct procs *p, const char *url,
                       const ProtobufCServiceDescriptor *svc)
{
	struct rpc_client *c;
	struct rpc_client_options o = {.connect_wait_ms = 200};
	cr_assert_eq(rpc_client_create(url, &o, &c), 0);
	int st = -1;
	for (int i = 0; i < 300 && st != 0; i++) {
		Noetl__Empty e = NOETL__EMPTY__INIT;
		struct rpc_call_options co = {.timeout_ms = RPC_DEFAULT_TIMEOUT_MS};
		st = testrpc_call(c, svc, "GetHealth", &e.base, &co, NULL, NULL);
		if (st != 0)
			usleep(50000);
	}
	rpc_client_destroy(c);
	cr_assert_eq(st, 0, "%s did not come up; see the logs in %s", url, p->dir);
}

void procs_start_control(struct procs *p)
{
	char bin[512], data[300], log[300], l[340], s[340], r[340];
	testutil_build_path("src/control/noetl-control", bin, sizeof(bin));
	snprintf(data, sizeof(data), "--data-dir=%s/control", p->dir);
	snprintf(log, sizeof(log), "%s/control.log", p->dir);
	snprintf(l, sizeof(l), "--listen=%s", p->ctl_url);
	snprintf(s, sizeof(s), "--stream=%s", p->ctl_stream);
	snprintf(r, sizeof(r), "--repository=%s", p->repo_url);
	char *argv[] = {bin, data, l, s, r, "--queue=", "--http=", "--log.level=warn", NULL};
	p->ctl = testutil_spawn(argv, log);
	wait_ready(p, p->ctl_url, &noetl__control__descriptor);
}

void procs_stop_control(struct procs *p)
{
	if (p->ctl > 0)
		cr_assert_eq(testutil_kill(p->ctl, SIGTERM), 0, "noetl-control exits cleanly");
	p->ctl = 0;
}

void procs_start(struct procs *p)
{
	memset(p, 0, sizeof(*p));
	testutil_tempdir(p->dir, sizeof(p->dir));
	snprintf(p->ctl_url, sizeof(p->ctl_url), "ipc://%s/control.sock", p->dir);
	snprintf(p->ctl_stream, sizeof(p->ctl_stream), "ipc://%s/control-stream.sock", p->dir);
	snprintf(p->repo_url, sizeof(p->repo_url), "ipc://%s/repo.sock", p->dir);
	snprintf(p->repo_stream, sizeof(p->repo_stream), "ipc://%s/repo-stream.sock", p->dir);
	char bin[512], data[300], log[300], l[340], s[340];
	testutil_build_path("src/repository/noetl-repository", bin, sizeof(bin));
	snprintf(data, sizeof(data), "--data-dir=%s/repository", p->dir);
	snprintf(log, sizeof(log), "%s/repository.log", p->dir);
	snprintf(l, sizeof(l), "--listen=%s", p->repo_url);
	snprintf(s, sizeof(s), "--stream=%s", p->repo_stream);
	char *argv[] = {bin, data, l, s, "--http=", "--max-file-size=64KiB", "--log.level=warn",
	                NULL};
	p->repo = testutil_spawn(argv, log);
	wait_ready(p, p->repo_url, &noetl__repository__descriptor);
	procs_start_control(p);
}

void procs_stop(struct procs *p)
{
	if (p->ctl > 0)
		cr_expect_eq(testutil_kill(p->ctl, SIGTERM), 0, "noetl-control exits cleanly");
	if (p->repo > 0)
		cr_expect_eq(testutil_kill(p->repo, SIGTERM), 0, "noetl-repository exits cleanly");
	p->ctl = p->repo = 0;
	testutil_rmtree(p->dir);
}

void procs_env(const struct procs *p, char *buf, size_t cap)
{
	/* A clean environment, so a developer's NOETL_* settings do not leak
	 * in; the sanitizer settings do, so that a finding fails the command. */
	const char *asan = getenv("ASAN_OPTIONS"), *lsan = getenv("LSAN_OPTIONS");
	const char *ubsan = getenv("UBSAN_OPTIONS");
	snprintf(buf, cap,
	         "env -i PATH=/usr/bin:/bin HOME=%s NOETL_CONTROL_URL=%s NOETL_REPOSITORY_URL=%s "
	         "NOETL_CONTROL_STREAM=%s ASAN_OPTIONS=%s LSAN_OPTIONS=%s UBSAN_OPTIONS=%s",
	         p->dir, p->ctl_url, p->repo_url, p->ctl_stream, asan ? asan : "", lsan ? lsan : "",
	         ubsan ? ubsan : "");
}
