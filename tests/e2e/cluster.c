#include "cluster.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define START_MS  60000  /* a service has this long to answer after a start */
#define DEPLOY_MS 240000 /* the executor has this long to compile a package's modules */

static const char *const names[SVC_COUNT] = {"control",  "repository", "queue",
                                             "recorder", "executor",   "listener"};

const char *cluster_svc_name(enum svc s)
{
	return names[s];
}

void cluster_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

long long cluster_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cluster_count(const char *hay, const char *needle)
{
	int n = 0;
	size_t len = strlen(needle);
	for (const char *p = hay; p != NULL && len > 0 && (p = strstr(p, needle)) != NULL; p += len)
		n++;
	return n;
}

static void log_path(const struct cluster *c, enum svc s, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s.log", c->dir, names[s]);
}

void cluster_dump_logs(struct cluster *c)
{
	for (int s = 0; s < SVC_COUNT; s++) {
		char path[400], cmd[500];
		log_path(c, s, path, sizeof(path));
		fprintf(stderr, "----- %s (last lines of %s) -----\n", names[s], path);
		snprintf(cmd, sizeof(cmd), "tail -n 25 '%s' 2>/dev/null", path);
		char *out = NULL;
		testutil_run(cmd, &out);
		fputs(out != NULL ? out : "", stderr);
		free(out);
	}
	fflush(stderr);
}

/* Builds argv of service s into args (strings in store). */
struct argv_buf {
	char *argv[64];
	int argc;
	char store[8192];
	size_t used;
};

static void arg(struct argv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void arg(struct argv_buf *b, const char *fmt, ...)
{
	cr_assert_lt(b->argc, 62, "too many arguments");
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->store + b->used, sizeof(b->store) - b->used, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(b->store) - b->used, "arguments too long");
	b->argv[b->argc++] = b->store + b->used;
	b->argv[b->argc] = NULL;
	b->used += (size_t)n + 1;
}

static void build_argv(struct cluster *c, enum svc s, struct argv_buf *b)
{
	static const char *const programs[SVC_COUNT] = {
	        "src/control/noetl-control",   "src/repository/noetl-repository",
	        "src/queue/noetl-queue",       "src/recorder/noetl-recorder",
	        "src/executor/noetl-executor", "src/listener/noetl-listener"};
	char bin[512];
	testutil_build_path(programs[s], bin, sizeof(bin));
	memset(b, 0, sizeof(*b));
	arg(b, "%s", bin);
	const struct cluster_options *o = &c->opt;
	switch (s) {
	case SVC_CONTROL:
		arg(b, "--data-dir=%s/control", c->dir);
		arg(b, "--listen=%s", c->url[SVC_CONTROL]);
		arg(b, "--stream=%s", c->stream[SVC_CONTROL]);
		arg(b, "--repository=%s", c->url[SVC_REPOSITORY]);
		arg(b, "--queue=%s", c->url[SVC_QUEUE]);
		arg(b, "--http=http://127.0.0.1:%d", c->http_port[SVC_CONTROL]);
		if (o->schedule_interval != NULL)
			arg(b, "--schedule-interval=%s", o->schedule_interval);
		if (o->clock_rate > 0)
			arg(b, "--control.debug.clock-rate=%d", o->clock_rate);
		break;
	case SVC_REPOSITORY:
		arg(b, "--data-dir=%s/repository", c->dir);
		arg(b, "--listen=%s", c->url[SVC_REPOSITORY]);
		arg(b, "--stream=%s", c->stream[SVC_REPOSITORY]);
		arg(b, "--http=http://127.0.0.1:%d", c->http_port[SVC_REPOSITORY]);
		break;
	case SVC_QUEUE:
		arg(b, "--data-dir=%s/queue", c->dir);
		arg(b, "--listen=%s", c->url[SVC_QUEUE]);
		arg(b, "--queue.retry.base=%s", o->retry_base != NULL ? o->retry_base : "200ms");
		arg(b, "--queue.retry.max=%s", o->retry_max != NULL ? o->retry_max : "1s");
		arg(b, "--http=http://127.0.0.1:%d", c->http_port[SVC_QUEUE]);
		break;
	case SVC_RECORDER:
		arg(b, "--data-dir=%s/recorder", c->dir);
		arg(b, "--listen=%s", c->url[SVC_RECORDER]);
		arg(b, "--stream=%s", c->stream[SVC_RECORDER]);
		arg(b, "--http=http://127.0.0.1:%d", c->http_port[SVC_RECORDER]);
		break;
	case SVC_EXECUTOR: {
		char cache[400];
		testutil_build_path("tests/e2e/module-cache", cache, sizeof(cache));
		arg(b, "--control=%s", c->url[SVC_CONTROL]);
		arg(b, "--repository=%s", c->url[SVC_REPOSITORY]);
		arg(b, "--queue=%s", c->url[SVC_QUEUE]);
		arg(b, "--recorder=%s", c->url[SVC_RECORDER]);
		arg(b, "--executor.control-stream=%s", c->stream[SVC_CONTROL]);
		arg(b, "--executor.repository-stream=%s", c->stream[SVC_REPOSITORY]);
		arg(b, "--http=http://127.0.0.1:%d", c->http_port[SVC_EXECUTOR]);
		arg(b, "--cache-dir=%s", cache);
		arg(b, "--pool=2");
		arg(b, "--executor.timeout=%s", o->exec_timeout != NULL ? o->exec_timeout : "2s");
		if (o->exec_lease != NULL)
			arg(b, "--executor.lease=%s", o->exec_lease);
		break;
	}
	case SVC_LISTENER:
		arg(b, "--http=http://127.0.0.1:%d", c->http_port[SVC_LISTENER]);
		arg(b, "--control=%s", c->url[SVC_CONTROL]);
		arg(b, "--control.stream=%s", c->stream[SVC_CONTROL]);
		arg(b, "--repository=%s", c->url[SVC_REPOSITORY]);
		arg(b, "--repository.stream=%s", c->stream[SVC_REPOSITORY]);
		arg(b, "--queue=%s", c->url[SVC_QUEUE]);
		arg(b, "--recorder=%s", c->url[SVC_RECORDER]);
		arg(b, "--listener.call-timeout=2s");
		break;
	case SVC_COUNT:
		break;
	}
	if (o->extra[s] != NULL)
		for (const char *const *e = o->extra[s]; *e != NULL; e++)
			arg(b, "%s", *e);
}

/* testutil_spawn, and the child dies with the test process (a test that
 * crashes leaves no services behind). */
static pid_t spawn(char *const argv[], const char *logf, const char *const *env)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		for (size_t i = 0; env != NULL && env[i] != NULL; i++)
			putenv((char *)env[i]);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

void cluster_spawn(struct cluster *c, enum svc s)
{
	cr_assert_eq(c->pid[s], 0, "%s is already running", names[s]);
	struct argv_buf b;
	build_argv(c, s, &b);
	char logf[400];
	log_path(c, s, logf, sizeof(logf));
	FILE *f = fopen(logf, "a");
	if (f != NULL) {
		fprintf(f, "===== start %d of %s =====\n", ++c->starts[s], names[s]);
		fclose(f);
	}
	c->pid[s] = spawn(b.argv, logf, c->opt.env[s]);
}

bool cluster_ready(struct cluster *c, enum svc s)
{
	/* Not a bare connect to the RPC socket: with nng 1.5.2 a peer that
	 * disconnects during the SP handshake wedges an ipc:// listener
	 * (nanomsg/nng#1518, fixed in 1.6.0). */
	struct httpc_reply r;
	int st = cluster_get(c, s, "/readyz", &r);
	if (st >= 0)
		httpc_reply_free(&r);
	return st == 200;
}

void cluster_start(struct cluster *c, enum svc s)
{
	cluster_spawn(c, s);
	long long end = cluster_now_ms() + START_MS;
	while (!cluster_ready(c, s)) {
		int status;
		if (waitpid(c->pid[s], &status, WNOHANG) == c->pid[s]) {
			c->pid[s] = 0;
			cluster_dump_logs(c);
			cr_assert_fail(
			        "%s exited (status %d) instead of starting; see its log above",
			        names[s], status);
		}
		if (cluster_now_ms() > end) {
			cluster_dump_logs(c);
			cr_assert_fail("%s did not answer within %d ms", names[s], START_MS);
		}
		cluster_sleep_ms(20);
	}
}

bool cluster_alive(struct cluster *c, enum svc s)
{
	if (c->pid[s] == 0)
		return false;
	int status;
	if (waitpid(c->pid[s], &status, WNOHANG) == c->pid[s]) {
		fprintf(stderr, "%s (pid %d) exited with status %d\n", names[s], (int)c->pid[s],
		        status);
		c->pid[s] = 0;
		return false;
	}
	return true;
}

int cluster_stop(struct cluster *c, enum svc s, int sig)
{
	if (c->pid[s] == 0)
		return 0;
	kill(c->pid[s], sig);
	int status = testutil_wait(c->pid[s], 20000);
	if (status == -1) {
		fprintf(stderr, "%s did not stop on signal %d within 20 s: killing it\n", names[s],
		        sig);
		testutil_stacks(c->pid[s], names[s]); /* where it hangs, for the report */
		kill(c->pid[s], SIGKILL);
		waitpid(c->pid[s], &status, 0);
	}
	c->pid[s] = 0;
	return status;
}

extern char **environ;

void cluster_clean_env(void)
{
	for (bool again = true; again;) {
		again = false;
		for (char **e = environ; *e != NULL; e++) {
			if (strncmp(*e, "NOETL_", 6) != 0 ||
			    strncmp(*e, "NOETL_SOURCE_ROOT=", 18) == 0 ||
			    strncmp(*e, "NOETL_BUILD_ROOT=", 17) == 0 ||
			    strncmp(*e, "NOETL_E2E_", 10) == 0)
				continue;
			char name[256];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
			unsetenv(name);
			again = true; /* environ changed under us */
			break;
		}
	}
}

void cluster_create(struct cluster *c, const struct cluster_options *opt)
{
	cluster_clean_env();
	memset(c, 0, sizeof(*c));
	if (opt != NULL)
		c->opt = *opt;
	testutil_tempdir(c->dir, sizeof(c->dir));
	for (int s = 0; s < SVC_COUNT; s++) {
		if (c->opt.tcp) {
			snprintf(c->url[s], sizeof(c->url[s]), "tcp://127.0.0.1:%d",
			         testutil_free_port());
			snprintf(c->stream[s], sizeof(c->stream[s]), "tcp://127.0.0.1:%d",
			         testutil_free_port());
		} else {
			snprintf(c->url[s], sizeof(c->url[s]), "ipc://%s/%s.rpc", c->dir, names[s]);
			snprintf(c->stream[s], sizeof(c->stream[s]), "ipc://%s/%s.pub", c->dir,
			         names[s]);
		}
	}
	for (int s = 0; s < SVC_COUNT; s++)
		c->http_port[s] = testutil_free_port();

	char text[2048];
	snprintf(text, sizeof(text),
	         "control:\n  url: %s\nrepository:\n  url: %s\nqueue:\n  url: %s\n"
	         "recorder:\n  url: %s\nlistener:\n  url: http://127.0.0.1:%d\n",
	         c->url[SVC_CONTROL], c->url[SVC_REPOSITORY], c->url[SVC_QUEUE],
	         c->url[SVC_RECORDER], c->http_port[SVC_LISTENER]);
	cluster_file(c, "noetlctl.yaml", text, c->ctl_config, sizeof(c->ctl_config));

	/* Stores first, then what depends on them. */
	static const enum svc order[] = {SVC_REPOSITORY, SVC_QUEUE,    SVC_RECORDER,
	                                 SVC_CONTROL,    SVC_EXECUTOR, SVC_LISTENER};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] == SVC_EXECUTOR && c->opt.no_executor)
			continue;
		cluster_start(c, order[i]);
	}
}

/* Sanitizer reports in a service's log, printed and counted. */
static int sanitizer_reports(struct cluster *c, enum svc s)
{
	char path[400];
	log_path(c, s, path, sizeof(path));
	char *text = testutil_read_file(path, NULL);
	if (text == NULL)
		return 0;
	static const char *const marks[] = {
	        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
	        "runtime error: ", "SUMMARY: UndefinedBehaviorSanitizer"};
	int n = 0;
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		n += cluster_count(text, marks[i]);
	if (n > 0) {
		const char *at = strstr(text, "==ERROR");
		if (at == NULL)
			at = strstr(text, "runtime error");
		fprintf(stderr, "----- sanitizer report in the log of %s -----\n%.6000s\n",
		        names[s], at != NULL ? at : text);
	}
	free(text);
	return n;
}

void cluster_destroy(struct cluster *c)
{
	/* The reverse of the start order. */
	static const enum svc order[] = {SVC_LISTENER, SVC_EXECUTOR,   SVC_CONTROL,
	                                 SVC_RECORDER, SVC_REPOSITORY, SVC_QUEUE};
	const char *hold = getenv("NOETL_E2E_HOLD");
	if (hold != NULL) {
		/* Debugging: look at the cluster before it stops. */
		fprintf(stderr, "holding the cluster for %s s: noetlctl -c %s ...\n", hold,
		        c->ctl_config);
		cluster_sleep_ms(atoi(hold) * 1000);
	}
	int bad_exit = 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (c->pid[order[i]] == 0)
			continue;
		int status = cluster_stop(c, order[i], SIGTERM);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "%s stopped with status %d on SIGTERM\n", names[order[i]],
			        status);
			bad_exit++;
		}
	}
	int reports = 0;
	for (int s = 0; s < SVC_COUNT; s++)
		reports += sanitizer_reports(c, s);
	bool keep = getenv("NOETL_E2E_KEEP") != NULL;
	if (reports > 0 || bad_exit > 0 || keep)
		fprintf(stderr, "the cluster's logs are kept in %s\n", c->dir);
	else
		testutil_rmtree(c->dir);
	cr_expect_eq(reports, 0, "%d sanitizer report(s) in the services' logs", reports);
	cr_expect_eq(bad_exit, 0, "%d service(s) did not stop cleanly on SIGTERM", bad_exit);
}

static char *vctl(struct cluster *c, int *status, const char *fmt, va_list ap)
{
	char args[4096], cmd[5000], bin[512];
	vsnprintf(args, sizeof(args), fmt, ap);
	testutil_build_path("src/cli/noetlctl", bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' %s 2>&1", bin, c->ctl_config, args);
	char *out = NULL;
	*status = testutil_run(cmd, &out);
	if (out == NULL)
		out = strdup("");
	return out;
}

int cluster_ctl(struct cluster *c, char **out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int status;
	char *text = vctl(c, &status, fmt, ap);
	va_end(ap);
	if (out != NULL)
		*out = text;
	else
		free(text);
	return status;
}

pid_t cluster_ctl_spawn(struct cluster *c, const char *out, const char *fmt, ...)
{
	char args[4096], cmd[5000], bin[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	testutil_build_path("src/cli/noetlctl", bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd), "exec '%s' -c '%s' %s", bin, c->ctl_config, args);
	char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	return spawn(argv, out, NULL);
}

char *cluster_ctl_ok(struct cluster *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int status;
	char *text = vctl(c, &status, fmt, ap);
	va_end(ap);
	if (status != 0) {
		char args[4096];
		va_start(ap, fmt);
		vsnprintf(args, sizeof(args), fmt, ap);
		va_end(ap);
		cluster_dump_logs(c);
		cr_assert_fail("noetlctl %s: exit %d:\n%s", args, status, text);
	}
	return text;
}

char *cluster_ctl_until(struct cluster *c, const char *want, int timeout_ms, const char *fmt, ...)
{
	bool negate = want[0] == '!';
	const char *needle = negate ? want + 1 : want;
	long long end = cluster_now_ms() + timeout_ms;
	char *text = NULL;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int status;
		free(text);
		text = vctl(c, &status, fmt, ap);
		va_end(ap);
		bool has = strstr(text, needle) != NULL;
		if (has != negate)
			return text;
		if (cluster_now_ms() > end)
			break;
		cluster_sleep_ms(100);
	}
	char args[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	cluster_dump_logs(c);
	cr_assert_fail("noetlctl %s: %s '%s' within %d ms; last output:\n%s", args,
	               negate ? "still shows" : "does not show", needle, timeout_ms, text);
	return NULL;
}

void cluster_file(struct cluster *c, const char *name, const char *text, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", c->dir, name);
	cr_assert(testutil_write_file(out, text, strlen(text)), "cannot write %s", out);
}

void cluster_tenant(struct cluster *c, const char *tenant, const char *const modules[])
{
	free(cluster_ctl_ok(c, "tenant add %s", tenant));
	for (size_t i = 0; modules != NULL && modules[i] != NULL; i++) {
		char rel[128], path[512];
		snprintf(rel, sizeof(rel), "sdk/examples/%s.wasm", modules[i]);
		testutil_build_path(rel, path, sizeof(path));
		free(cluster_ctl_ok(c, "upload wasm %s %s.wasm '%s'", tenant, modules[i], path));
	}
	char *out = cluster_ctl_ok(c, "token create %s -o json", tenant);
	const char *p = strstr(out, "\"secret\"");
	cr_assert_not_null(p, "no secret in 'token create' output:\n%s", out);
	p = strchr(p + 8, '"');
	cr_assert_not_null(p);
	const char *e = strchr(p + 1, '"');
	cr_assert_not_null(e);
	snprintf(c->token, sizeof(c->token), "%.*s", (int)(e - p - 1), p + 1);
	free(out);
}

/* The value of a top-level "key: value" line of yaml into out. */
static void top_value(const char *yaml, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	out[0] = '\0';
	for (const char *p = yaml; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':' && p[klen + 1] == ' ') {
			size_t n = strcspn(p + klen + 2, "\n");
			snprintf(out, cap, "%.*s", (int)n, p + klen + 2);
			return;
		}
	}
}

int cluster_live_count(struct cluster *c, const char *tenant, const char *package)
{
	char line[300], logf[400];
	snprintf(line, sizeof(line), "package '%s' of tenant '%s' is live", package, tenant);
	log_path(c, SVC_EXECUTOR, logf, sizeof(logf));
	char *text = testutil_read_file(logf, NULL);
	int n = text != NULL ? cluster_count(text, line) : 0;
	free(text);
	return n;
}

void cluster_wait_live(struct cluster *c, const char *tenant, const char *package, int before)
{
	if (c->pid[SVC_EXECUTOR] == 0)
		return;
	long long end = cluster_now_ms() + DEPLOY_MS;
	while (cluster_live_count(c, tenant, package) <= before) {
		if (cluster_now_ms() > end) {
			cluster_dump_logs(c);
			cr_assert_fail("the executor did not load package '%s' within %d ms",
			               package, DEPLOY_MS);
		}
		cluster_sleep_ms(50);
	}
}

void cluster_deploy(struct cluster *c, const char *yaml, bool update)
{
	char path[400], id[130], tenant[70];
	cluster_file(c, update ? "job-update.yml" : "job.yml", yaml, path, sizeof(path));
	top_value(yaml, "id", id, sizeof(id));
	top_value(yaml, "tenant", tenant, sizeof(tenant));
	int before = cluster_live_count(c, tenant, id);
	free(cluster_ctl_ok(c, "deploy %s'%s'", update ? "--update " : "", path));
	/* The executor compiles the package's modules when the deploy reaches
	 * it, which can take many seconds on a loaded machine; an event sent
	 * before then fails as "unknown event" and spends an attempt. Users
	 * see this only as a slower first event; tests that count attempts
	 * wait here (the executor says so in its log). */
	cluster_wait_live(c, tenant, id, before);
}

int cluster_post(struct cluster *c, const char *path, const char *token, const char *body,
                 struct httpc_reply *out)
{
	return cluster_post_with(c, path, token, NULL, body, out);
}

int cluster_post_with(struct cluster *c, const char *path, const char *token, const char *extra,
                      const char *body, struct httpc_reply *out)
{
	const char *tok = token != NULL ? token : c->token;
	char headers[1024] = "Content-Type: application/json\r\n";
	if (extra != NULL)
		snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers), "%s", extra);
	if (tok[0] != '\0')
		snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers),
		         "Authorization: Bearer %s\r\n", tok);
	struct httpc_reply r;
	memset(&r, 0, sizeof(r));
	int rv = httpc_request(c->http_port[SVC_LISTENER], "POST", path, headers, body,
	                       body != NULL ? strlen(body) : 0, &r);
	if (rv != 0) {
		if (out != NULL)
			memset(out, 0, sizeof(*out));
		return -1;
	}
	int st = r.status;
	if (out != NULL)
		*out = r;
	else
		httpc_reply_free(&r);
	return st;
}

int cluster_post_deployed(struct cluster *c, const char *path, const char *body,
                          struct httpc_reply *out, int timeout_ms)
{
	long long end = cluster_now_ms() + timeout_ms;
	for (;;) {
		struct httpc_reply r;
		int st = cluster_post(c, path, NULL, body, &r);
		if ((st != 404 && st != -1) || cluster_now_ms() > end) {
			if (out != NULL)
				*out = r;
			else
				httpc_reply_free(&r);
			return st;
		}
		httpc_reply_free(&r);
		cluster_sleep_ms(50);
	}
}

int cluster_get(struct cluster *c, enum svc s, const char *path, struct httpc_reply *out)
{
	struct httpc_reply r;
	memset(&r, 0, sizeof(r));
	if (c->http_port[s] == 0 ||
	    httpc_request(c->http_port[s], "GET", path, NULL, NULL, 0, &r) != 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	*out = r;
	return r.status;
}

bool cluster_first_id(const struct httpc_reply *r, char *out, size_t cap)
{
	const char *p = r->body != NULL ? strstr(r->body, "\"ids\"") : NULL;
	if (p == NULL || (p = strchr(p, '[')) == NULL || (p = strchr(p, '"')) == NULL)
		return false;
	const char *e = strchr(p + 1, '"');
	if (e == NULL || (size_t)(e - p - 1) >= cap)
		return false;
	snprintf(out, cap, "%.*s", (int)(e - p - 1), p + 1);
	return true;
}
