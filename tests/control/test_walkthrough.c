/*
 * docs/walkthrough.md runs exactly as written: its ```sh blocks, in order,
 * make one bash script, run with -e from the source root (as the document
 * says) with NOETL_BUILD_ROOT pointing at this build. It runs in a process
 * group of its own, so whatever it started is stopped even if it fails.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* The ```sh blocks of the markdown text md, concatenated. */
static char *script_of(const char *md)
{
	size_t cap = strlen(md) + 64, n = 0;
	char *out = malloc(cap);
	cr_assert_not_null(out);
	n += (size_t)snprintf(out, cap, "set -o pipefail\n");
	const char *p = md;
	int blocks = 0;
	while ((p = strstr(p, "```sh\n")) != NULL) {
		p += 6;
		const char *end = strstr(p, "```\n");
		cr_assert_not_null(end, "an unterminated sh block");
		memcpy(out + n, p, (size_t)(end - p));
		n += (size_t)(end - p);
		p = end + 4;
		blocks++;
	}
	out[n] = '\0';
	cr_assert_gt(blocks, 10, "the walkthrough has its blocks");
	return out;
}

Test(walkthrough, runs_exactly_as_written, .timeout = 300)
{
	char md_path[512], root[512], dir[256], script[320], log[320];
	testutil_source_path("docs/walkthrough.md", md_path, sizeof(md_path));
	testutil_source_path("", root, sizeof(root));
	char *md = testutil_read_file(md_path, NULL);
	cr_assert_not_null(md, "cannot read %s", md_path);
	char *text = script_of(md);
	free(md);
	testutil_tempdir(dir, sizeof(dir));
	snprintf(script, sizeof(script), "%s/walkthrough.sh", dir);
	snprintf(log, sizeof(log), "%s/walkthrough.log", dir);
	cr_assert(testutil_write_file(script, text, strlen(text)));
	free(text);

	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		setpgid(0, 0);
		if (chdir(root) != 0)
			_exit(126);
		FILE *f = freopen(log, "w", stdout);
		if (f == NULL || dup2(fileno(stdout), 2) < 0)
			_exit(126);
		execl("/bin/bash", "bash", "-e", script, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	int status = testutil_wait(pid, 240000);
	kill(-pid, SIGKILL); /* anything the script left running */
	if (status < 0)
		testutil_kill(pid, SIGKILL);
	char *out = testutil_read_file(log, NULL);
	cr_assert_not_null(out);
	cr_expect(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "the walkthrough failed (status %d):\n%s", status, out);
	const char *want[] = {
	        "tenant 'demogo' added",
	        "package 'go-demo-job' of tenant 'demogo' deployed (revision 2)",
	        "json-schema file 'missing.json' does not exist",
	        "refused, as expected",
	        "updated (revision 3)",
	        "rolled back to the definition of revision 2 (now revision 4)",
	        "# revision 4: rollback",
	        "package-deployed  go-demo-job \"Demo JOB v2\"",
	        "used by package 'go-demo-job'",
	        "deleted (revision 5)",
	        "file 'greet-wasm-go.wasm' of tenant 'demogo' deleted",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect(strstr(out, want[i]) != NULL, "'%s' is missing from:\n%s", want[i], out);
	free(out);
	testutil_rmtree(dir);
}
