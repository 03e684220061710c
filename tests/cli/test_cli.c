/*
 * noetlctl, run as users run it: the built binary in a child process with a
 * clean environment and a HOME of its own, against real sockets.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.pb-c.h"
#include "control.pb-c.h"
#include "httpd.h"
#include "queue.pb-c.h"
#include "recorder.pb-c.h"
#include "repository.pb-c.h"
#include "rpc.h"
#include "util.h"

extern char **environ;

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/noetl-cli-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(cli, .init = setup, .fini = teardown);

struct result {
	int rc;
	char out[16384];
	char err[16384];
};

static void slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/*
 * Runs noetlctl with args (NULL-terminated) and extra environment entries
 * ("NAME=value", NULL-terminated; may be NULL) in an environment holding
 * only PATH, HOME=dir and those, so the developer's own settings do not
 * leak in. Asserts that a sanitizer found nothing in the child.
 */
static void run(struct result *r, const char *const *args, const char *const *env)
{
	const char *root = getenv("NOETL_BUILD_ROOT");
	cr_assert_not_null(root, "NOETL_BUILD_ROOT is not set (run through meson test)");
	char bin[512], out_path[128], err_path[128], home[96];
	snprintf(bin, sizeof(bin), "%s/src/cli/noetlctl", root);
	snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
	snprintf(home, sizeof(home), "HOME=%s", dir);

	char *argv[32];
	int argc = 0;
	argv[argc++] = bin;
	for (; args[argc - 1] != NULL; argc++)
		argv[argc] = (char *)args[argc - 1];
	argv[argc] = NULL;

	char *envp[32];
	int n = 0;
	envp[n++] = home;
	envp[n++] = "PATH=/usr/bin:/bin";
	/* keep the sanitizer settings meson gave us */
	for (char **e = environ; *e != NULL && n < 24; e++) {
		if (strncmp(*e, "ASAN_OPTIONS=", 13) == 0 ||
		    strncmp(*e, "LSAN_OPTIONS=", 13) == 0 || strncmp(*e, "UBSAN_OPTIONS=", 14) == 0)
			envp[n++] = *e;
	}
	for (int i = 0; env != NULL && env[i] != NULL && n < 31; i++)
		envp[n++] = (char *)env[i];
	envp[n] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, bin, &fa, NULL, argv, envp), 0, "cannot run %s", bin);
	posix_spawn_file_actions_destroy(&fa);

	/* a hang is a failure, not a stuck suite */
	int status = 0;
	int64_t deadline = util_mono_ms() + 60000;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		cr_assert_eq(w, 0);
		if (util_mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("noetlctl did not finish within 60s");
		}
		util_sleep_ms(10);
	}
	cr_assert(WIFEXITED(status), "noetlctl died of signal %d", WTERMSIG(status));
	r->rc = WEXITSTATUS(status);
	slurp(out_path, r->out, sizeof(r->out));
	slurp(err_path, r->err, sizeof(r->err));
	cr_assert_null(strstr(r->err, "Sanitizer"), "sanitizer report from noetlctl:\n%s", r->err);
	cr_assert_null(strstr(r->err, "runtime error:"), "UBSan report from noetlctl:\n%s", r->err);
}

#define assert_has(text, s) cr_assert(strstr((text), (s)) != NULL, "no '%s' in:\n%s", (s), (text))

/* Addresses where nothing listens. */
static void nothing_env(char bufs[5][160], const char *env[6])
{
	snprintf(bufs[0], 160, "NOETL_CONTROL_URL=ipc://%s/none-control.sock", dir);
	snprintf(bufs[1], 160, "NOETL_REPOSITORY_URL=ipc://%s/none-repository.sock", dir);
	snprintf(bufs[2], 160, "NOETL_QUEUE_URL=ipc://%s/none-queue.sock", dir);
	snprintf(bufs[3], 160, "NOETL_RECORDER_URL=ipc://%s/none-recorder.sock", dir);
	/* port 1 (tcpmux) is closed on any test machine */
	snprintf(bufs[4], 160, "NOETL_LISTENER_URL=http://127.0.0.1:1");
	for (int i = 0; i < 5; i++)
		env[i] = bufs[i];
	env[5] = NULL;
}

/* --- usage ------------------------------------------------------------------ */

Test(cli, help_exits_0_and_lists_the_commands_and_global_options)
{
	struct result r;
	run(&r, (const char *[]){"--help", NULL}, NULL);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	assert_has(r.out, "usage: noetlctl [options] <command> [args]");
	assert_has(r.out, "commands:");
	assert_has(r.out, "  status ");
	assert_has(r.out, "  help [<command>...]");
	assert_has(r.out, "--queue URL");
	assert_has(r.out, "env NOETL_QUEUE_URL");
	assert_has(r.out, "-o, --output table|json|yaml");
	cr_assert_str_eq(r.err, "");

	run(&r, (const char *[]){"help", NULL}, NULL);
	cr_assert_eq(r.rc, 0);
	assert_has(r.out, "commands:");
}

Test(cli, every_command_has_help)
{
	struct result r;
	run(&r, (const char *[]){"status", "--help", NULL}, NULL);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	assert_has(r.out, "usage: noetlctl status [options]");
	assert_has(r.out, "-w, --wait DURATION");
	run(&r, (const char *[]){"help", "status", NULL}, NULL);
	cr_assert_eq(r.rc, 0);
	assert_has(r.out, "usage: noetlctl status [options]");
	run(&r, (const char *[]){"version", "-h", NULL}, NULL);
	cr_assert_eq(r.rc, 0);
	assert_has(r.out, "usage: noetlctl version");
}

Test(cli, version_prints_the_version)
{
	struct result r;
	run(&r, (const char *[]){"version", NULL}, NULL);
	cr_assert_eq(r.rc, 0);
	cr_assert_str_eq(r.out, "noetlctl " NOETL_VERSION "\n");
}

Test(cli, an_unknown_command_exits_2)
{
	struct result r;
	run(&r, (const char *[]){"bogus", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "noetlctl: unknown command 'bogus'");
	assert_has(r.err, "see 'noetlctl --help'");
	cr_assert_str_eq(r.out, "");
}

Test(cli, no_command_exits_2_with_the_usage_on_stderr)
{
	struct result r;
	run(&r, (const char *[]){NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "usage: noetlctl");
	cr_assert_str_eq(r.out, "");
}

Test(cli, bad_flags_exit_2)
{
	struct result r;
	run(&r, (const char *[]){"--bogus", "status", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "unknown flag '--bogus'");

	run(&r, (const char *[]){"status", "--bogus", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "noetlctl: status: unknown flag '--bogus'");
	assert_has(r.err, "see 'noetlctl status --help'");

	run(&r, (const char *[]){"-o", "xml", "status", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "'output' expects one of table|json|yaml, got 'xml'");

	run(&r, (const char *[]){"status", "--wait", "soon", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "'wait' expects a duration");

	run(&r, (const char *[]){"status", "extra", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "status takes no arguments");

	run(&r, (const char *[]){"--queue", "not-a-url", "status", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	assert_has(r.err, "'queue.url' expects a URL");
}

Test(cli, a_bad_config_file_exits_2_naming_the_file_and_line)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/.config", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/.config/noetl", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/.config/noetl/noetlctl.yaml", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("output: json\nqueue:\n  uri: tcp://x:1\n", f);
	fclose(f);
	struct result r;
	run(&r, (const char *[]){"status", NULL}, NULL);
	cr_assert_eq(r.rc, 2);
	char want[256];
	snprintf(want, sizeof(want), "%s:3:3: unknown key 'queue.uri' (did you mean 'queue.url'?)",
	         path);
	assert_has(r.err, want);
}

/* --- status ----------------------------------------------------------------- */

Test(cli, status_against_nothing_exits_1_with_a_readable_message)
{
	char bufs[5][160];
	const char *env[6];
	nothing_env(bufs, env);
	struct result r;
	run(&r, (const char *[]){"status", "--wait", "300ms", NULL}, env);
	cr_assert_eq(r.rc, 1, "%s\n%s", r.out, r.err);
	assert_has(r.out, "SERVICE");
	assert_has(r.out, "STATE");
	assert_has(r.out, "unreachable");
	cr_assert_null(strstr(r.out, "ready"), "%s", r.out);
	assert_has(r.err, "noetlctl: no service answered: is noetl running?");
}

/* A stand-in for the services: GetHealth on all four RPC services. */
static bool queue_ready = true;

#define HEALTH_HANDLER(svcname, Type)                                                              \
	static void svcname##_health(Type *svc, const Noetl__Empty *in,                            \
	                             Noetl__Health_Closure done, void *call)                       \
	{                                                                                          \
		(void)svc;                                                                         \
		(void)in;                                                                          \
		Noetl__Health h = NOETL__HEALTH__INIT;                                             \
		h.service = #svcname;                                                              \
		h.version = "9.9.9";                                                               \
		h.ready = strcmp(#svcname, "queue") != 0 || queue_ready;                           \
		h.detail = h.ready ? "" : "replaying the log";                                     \
		h.revision = 42;                                                                   \
		h.uptime_ms = 3723000;                                                             \
		done(&h, call);                                                                    \
	}

HEALTH_HANDLER(control, Noetl__Control_Service)
HEALTH_HANDLER(repository, Noetl__Repository_Service)
HEALTH_HANDLER(queue, Noetl__Queue_Service)
HEALTH_HANDLER(recorder, Noetl__Recorder_Service)

struct fake {
	Noetl__Control_Service control;
	Noetl__Repository_Service repository;
	Noetl__Queue_Service queue;
	Noetl__Recorder_Service recorder;
	struct rpc_server *server;
	struct httpd *http;
	char url[128];
	char envbuf[5][160];
	const char *env[6];
};

static void fake_start(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->control = (Noetl__Control_Service){.base = NOETL__CONTROL__BASE_INIT,
	                                      .get_health = control_health};
	f->repository = (Noetl__Repository_Service){.base = NOETL__REPOSITORY__BASE_INIT,
	                                            .get_health = repository_health};
	f->queue =
	        (Noetl__Queue_Service){.base = NOETL__QUEUE__BASE_INIT, .get_health = queue_health};
	f->recorder = (Noetl__Recorder_Service){.base = NOETL__RECORDER__BASE_INIT,
	                                        .get_health = recorder_health};
	snprintf(f->url, sizeof(f->url), "ipc://%s/services.sock", dir);
	struct rpc_server_options so = {.workers = 4, .name = "fake"};
	cr_assert_eq(rpc_server_create(&so, &f->server), 0);
	cr_assert_eq(rpc_server_add(f->server, &f->control.base), 0);
	cr_assert_eq(rpc_server_add(f->server, &f->repository.base), 0);
	cr_assert_eq(rpc_server_add(f->server, &f->queue.base), 0);
	cr_assert_eq(rpc_server_add(f->server, &f->recorder.base), 0);
	cr_assert_eq(rpc_server_listen(f->server, f->url), 0);
	cr_assert_eq(rpc_server_start(f->server), 0);
	cr_assert_eq(httpd_create("http://127.0.0.1:0", NULL, &f->http), 0);
	cr_assert_eq(httpd_start(f->http), 0);

	/* one server answers for all four: the envelope names the service */
	const char *names[] = {"CONTROL", "REPOSITORY", "QUEUE", "RECORDER"};
	for (int i = 0; i < 4; i++) {
		snprintf(f->envbuf[i], 160, "NOETL_%s_URL=%s", names[i], f->url);
		f->env[i] = f->envbuf[i];
	}
	snprintf(f->envbuf[4], 160, "NOETL_LISTENER_URL=http://127.0.0.1:%d", httpd_port(f->http));
	f->env[4] = f->envbuf[4];
	f->env[5] = NULL;
}

static void fake_stop(struct fake *f)
{
	httpd_destroy(f->http);
	rpc_server_destroy(f->server);
}

Test(cli, status_shows_every_service_ready_and_exits_0)
{
	struct fake f;
	queue_ready = true;
	fake_start(&f);
	struct result r;
	run(&r, (const char *[]){"status", NULL}, f.env);
	cr_assert_eq(r.rc, 0, "%s\n%s", r.out, r.err);
	assert_has(r.out, "SERVICE     URL");
	assert_has(r.out, "VERSION  REVISION  UPTIME  DETAIL");
	assert_has(r.out, "queue");
	assert_has(r.out, "9.9.9");
	assert_has(r.out, "1h2m");
	cr_assert_null(strstr(r.out, "unreachable"), "%s", r.out);
	cr_assert_str_eq(r.err, "");

	/* JSON for scripts: raw values, every service */
	run(&r, (const char *[]){"status", "-o", "json", NULL}, f.env);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	json_error_t je;
	json_t *rows = json_loads(r.out, 0, &je);
	cr_assert_not_null(rows, "not JSON: %s\n%s", je.text, r.out);
	cr_assert_eq(json_array_size(rows), 5);
	const char *want[] = {"control", "repository", "queue", "recorder", "listener"};
	for (size_t i = 0; i < 5; i++) {
		json_t *row = json_array_get(rows, i);
		cr_assert_str_eq(json_string_value(json_object_get(row, "service")), want[i]);
		cr_assert_str_eq(json_string_value(json_object_get(row, "state")), "ready");
		if (i < 4) {
			cr_assert_str_eq(json_string_value(json_object_get(row, "url")), f.url);
			cr_assert_eq(json_integer_value(json_object_get(row, "uptime_ms")),
			             3723000);
			cr_assert_eq(json_integer_value(json_object_get(row, "revision")), 42);
		}
	}
	json_decref(rows);
	fake_stop(&f);
}

Test(cli, status_reports_a_service_that_is_up_but_not_ready)
{
	struct fake f;
	queue_ready = false;
	fake_start(&f);
	struct result r;
	run(&r, (const char *[]){"-o", "yaml", "status", NULL}, f.env);
	cr_assert_eq(r.rc, 0, "%s\n%s", r.out, r.err);
	assert_has(r.out, "- service: queue\n");
	assert_has(r.out, "  state: not ready\n");
	assert_has(r.out, "  detail: replaying the log\n");
	assert_has(r.out, "  version: 9.9.9\n");
	fake_stop(&f);
	queue_ready = true;
}

Test(cli, flags_override_the_environment_which_overrides_the_config_file)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/ctl.yaml", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f,
	        "queue:\n  url: ipc://%s/from-file.sock\n"
	        "control:\n  url: ipc://%s/from-file.sock\n"
	        "recorder:\n  url: ipc://%s/from-file.sock\n"
	        "output: json\n",
	        dir, dir, dir);
	fclose(f);
	char cfg[160], env_queue[160], env_control[160], flag_queue[160];
	snprintf(cfg, sizeof(cfg), "NOETL_CONFIG=%s", path);
	snprintf(env_queue, sizeof(env_queue), "NOETL_QUEUE_URL=ipc://%s/from-env.sock", dir);
	snprintf(env_control, sizeof(env_control), "NOETL_CONTROL_URL=ipc://%s/from-env.sock", dir);
	snprintf(flag_queue, sizeof(flag_queue), "--queue=ipc://%s/from-flag.sock", dir);
	const char *env[] = {cfg, env_queue, env_control, "NOETL_LISTENER_URL=http://127.0.0.1:1",
	                     NULL};
	struct result r;
	run(&r, (const char *[]){flag_queue, "status", "-w", "200ms", NULL}, env);
	cr_assert_eq(r.rc, 1);
	json_t *rows = json_loads(r.out, 0, NULL);
	cr_assert_not_null(rows, "output: json in the file should apply:\n%s", r.out);
	char want[160];
	snprintf(want, sizeof(want), "ipc://%s/from-env.sock", dir);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 0), "url")), want);
	snprintf(want, sizeof(want), "ipc://%s/from-flag.sock", dir);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 2), "url")), want);
	snprintf(want, sizeof(want), "ipc://%s/from-file.sock", dir);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 3), "url")), want);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 1), "url")),
	                 "tcp://127.0.0.1:7402");
	json_decref(rows);
}

/* --- settings of commands ------------------------------------------------------ */

/* Runs "watch --since 0" (no call to Control first) with env and flags and
 * asserts it failed naming addr: an address no transport knows makes
 * following fail at once and say which address it used. */
static void assert_watch_follows(const char *addr, const char *const *env, const char *before,
                                 const char *after)
{
	const char *args[8];
	int n = 0;
	if (before != NULL) {
		args[n++] = "--control.stream";
		args[n++] = before;
	}
	args[n++] = "watch";
	args[n++] = "--since";
	args[n++] = "0";
	if (after != NULL) {
		args[n++] = "--stream";
		args[n++] = after;
	}
	args[n] = NULL;
	struct result r;
	run(&r, args, env);
	cr_assert_eq(r.rc, 1, "%s\n%s", r.out, r.err);
	assert_has(r.err, addr);
}

Test(cli, a_commands_setting_comes_from_the_flag_then_the_environment_then_the_file)
{
	char path[128], cfg[160];
	snprintf(path, sizeof(path), "%s/ctl.yaml", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("control:\n  stream: bogus://from-file\n", f);
	fclose(f);
	snprintf(cfg, sizeof(cfg), "NOETL_CONFIG=%s", path);
	const char *file_only[] = {cfg, NULL};
	const char *env_too[] = {cfg, "NOETL_CONTROL_STREAM=bogus://from-env", NULL};
	assert_watch_follows("'bogus://from-file'", file_only, NULL, NULL);
	assert_watch_follows("'bogus://from-env'", env_too, NULL, NULL);
	assert_watch_follows("'bogus://from-flag'", env_too, NULL, "bogus://from-flag");
	assert_watch_follows("'bogus://from-flag'", env_too, "bogus://from-flag", NULL);
	/* after the command, the command's own spelling wins over the global one */
	assert_watch_follows("'bogus://after'", env_too, "bogus://before", "bogus://after");
}

Test(cli, a_commands_options_are_flags_only_and_its_help_names_its_settings_variables)
{
	char bufs[5][160];
	const char *env[8];
	nothing_env(bufs, env);
	/* per-run options do not read NOETL_*: these would be usage errors */
	env[5] = "NOETL_WAIT=not-a-duration";
	env[6] = "NOETL_LINES=many";
	env[7] = NULL;
	struct result r;
	run(&r, (const char *[]){"status", "--wait", "300ms", NULL}, env);
	cr_assert_eq(r.rc, 1, "%s\n%s", r.out, r.err);
	assert_has(r.out, "unreachable");

	run(&r, (const char *[]){"watch", "--help", NULL}, NULL);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	assert_has(r.out, "--stream URL");
	assert_has(r.out, "env NOETL_CONTROL_STREAM, --control.stream");
	run(&r, (const char *[]){"logs", "--help", NULL}, NULL);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	assert_has(r.out, "env NOETL_RECORDER_STREAM");
	run(&r, (const char *[]){"--help", NULL}, NULL);
	assert_has(r.out, "env NOETL_RECORDER_STREAM");
}

Test(cli, status_reaches_a_listener_over_https)
{
	char cmd[512], cert[128], key[128];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
	         "-subj /CN=localhost >/dev/null 2>&1",
	         key, cert);
	cr_assert_eq(system(cmd), 0, "openssl could not make a test certificate");
	struct rpc_tls t = {.cert_file = cert, .key_file = key};
	nng_tls_config *tls;
	cr_assert_eq(rpc_tls_config(&t, true, "https://127.0.0.1:0", &tls), 0);
	struct httpd *h;
	struct httpd_options o = {.tls = tls};
	cr_assert_eq(httpd_create("https://127.0.0.1:0", &o, &h), 0);
	cr_assert_eq(httpd_start(h), 0);

	char bufs[5][160];
	const char *env[6];
	nothing_env(bufs, env);
	snprintf(bufs[4], 160, "NOETL_LISTENER_URL=https://127.0.0.1:%d", httpd_port(h));
	struct result r;
	/* The probes run side by side: the wait bounds the whole command. It is
	 * long because a TLS handshake on a loaded machine (sanitizers, other
	 * tests) can take more than a few hundred ms. */
	run(&r, (const char *[]){"status", "-o", "json", "-w", "5s", NULL}, env);
	cr_assert_eq(r.rc, 1); /* the RPC services are not there */
	json_t *rows = json_loads(r.out, 0, NULL);
	cr_assert_not_null(rows, "%s", r.out);
	const char *state = json_string_value(json_object_get(json_array_get(rows, 4), "state"));
	bool ready = state != NULL && strcmp(state, "ready") == 0;
	json_decref(rows);
	cr_assert(ready, "the listener is not ready: %s", r.out);
	assert_has(r.err, "4 of 5 services did not answer");
	httpd_destroy(h);
	nng_tls_config_free(tls);
}
