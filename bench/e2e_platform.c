/*
 * e2e_platform: see e2e_platform.h.
 */
#include "e2e_platform.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"
#include "queue.pb-c.h"
#include "recorder.pb-c.h"
#include "rpc.h"
#include "util.h"

static void die(const struct platform *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench_e2e: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (p != NULL && p->log[0] != '\0')
		fprintf(stderr, "bench_e2e: noetl's log is '%s' (kept)\n", p->log);
	if (p != NULL && p->pid > 0)
		kill(p->pid, SIGKILL);
	exit(1);
}

/* n free loopback ports: bound together so that they differ, then released
 * for noetl to bind (another process could take one meanwhile; unlikely). */
static void free_ports(int n, int *ports)
{
	int fds[16];
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(a);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
			die(NULL, "cannot find a free port: %s", strerror(errno));
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Runs argv with stdout to out_fd (or the log) and stderr to the log. */
static pid_t spawn(const struct platform *p, char *const argv[], int out_fd)
{
	pid_t pid = fork();
	if (pid < 0)
		die(p, "cannot fork: %s", strerror(errno));
	if (pid == 0) {
		int log = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log >= 0) {
			dup2(out_fd >= 0 ? out_fd : log, 1);
			dup2(log, 2);
		}
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, 0);
		execv(argv[0], argv);
		fprintf(stderr, "bench_e2e: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Runs noetlctl with the platform's addresses and args; its stdout goes to
 * out (NUL-terminated, truncated to cap) if out is not NULL. Exits the bench
 * if it fails. */
static void ctl(struct platform *p, char *out, size_t cap, const char *const *args)
{
	char listener[64];
	snprintf(listener, sizeof(listener), "http://127.0.0.1:%d", p->http_port);
	const char *argv[32] = {p->noetlctl,
	                        "--control",
	                        p->urls[P_CONTROL],
	                        "--repository",
	                        p->urls[P_REPOSITORY],
	                        "--queue",
	                        p->urls[P_QUEUE],
	                        "--recorder",
	                        p->urls[P_RECORDER],
	                        "--listener",
	                        listener};
	int n = 11;
	for (int i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		die(p, "cannot make a pipe: %s", strerror(errno));
	pid_t pid = spawn(p, (char *const *)argv, fds[1]);
	close(fds[1]);
	size_t len = 0;
	char sink[4096];
	for (;;) {
		char *dst = out != NULL && len + 1 < cap ? out + len : sink;
		size_t room = out != NULL && len + 1 < cap ? cap - 1 - len : sizeof(sink);
		ssize_t r = read(fds[0], dst, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (dst != sink)
			len += (size_t)r;
	}
	close(fds[0]);
	if (out != NULL)
		out[len] = '\0';
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char what[256] = "";
		for (int i = 0; args[i] != NULL; i++)
			snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s",
			         i > 0 ? " " : "", args[i]);
		die(p, "'noetlctl %s' failed (its errors are in noetl's log)", what);
	}
}

static void write_file(const struct platform *p, const char *name, const char *text)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", p->dir, name);
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		die(p, "cannot write '%s'", path);
}

void platform_start(struct platform *p)
{
	int ports[1 + P_URLS];
	free_ports(1 + P_URLS, ports);
	p->http_port = ports[0];
	for (int i = 0; i < P_URLS; i++)
		snprintf(p->urls[i], sizeof(p->urls[i]), "tcp://127.0.0.1:%d", ports[1 + i]);
	snprintf(p->log, sizeof(p->log), "%s/noetl.log", p->dir);
	char data[600], http[64];
	snprintf(data, sizeof(data), "%s/data", p->dir);
	snprintf(http, sizeof(http), "127.0.0.1:%d", p->http_port);
	const char *argv[19 + 8 + 1] = {
	        p->noetl,
	        "--data",
	        data,
	        "--http",
	        http,
	        "--noetl.control",
	        p->urls[P_CONTROL],
	        "--noetl.repository",
	        p->urls[P_REPOSITORY],
	        "--noetl.queue",
	        p->urls[P_QUEUE],
	        "--noetl.recorder",
	        p->urls[P_RECORDER],
	        "--noetl.control-stream",
	        p->urls[P_CONTROL_PUB],
	        "--noetl.repository-stream",
	        p->urls[P_REPOSITORY_PUB],
	        "--noetl.recorder-stream",
	        p->urls[P_RECORDER_PUB]}; /* the rest NULL: room for extra */
	size_t n = 0, cap = sizeof(argv) / sizeof(argv[0]) - 1;
	while (argv[n] != NULL)
		n++;
	for (int i = 0; i < p->nextra; i++)
		if (n < cap)
			argv[n++] = p->extra[i];
		else
			die(p, "too many --noetl-arg options");
	p->pid = spawn(p, (char *const *)argv, -1);
	for (int i = 0;; i++) {
		struct httpc_reply r;
		if (httpc_request(p->http_port, "GET", "/readyz", NULL, NULL, 0, &r) == 0) {
			int status = r.status;
			httpc_reply_free(&r);
			if (status == 200)
				break;
		}
		int st;
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			die(p, "noetl exited during start");
		}
		if (i == 300)
			die(p, "noetl was not ready after 30 s");
		util_sleep_ms(100);
	}
	struct rpc_client_options co = {.caller = "bench_e2e", .connect_wait_ms = 5000};
	if (rpc_client_create(p->urls[P_QUEUE], &co, &p->queue) != 0 ||
	    rpc_client_create(p->urls[P_RECORDER], &co, &p->recorder) != 0)
		die(p, "cannot make RPC clients");
}

void platform_setup(struct platform *p)
{
	write_file(p, "person.json",
	           "{\"type\":\"object\",\"required\":[\"firstName\"],\"properties\":{"
	           "\"firstName\":{\"type\":\"string\",\"minLength\":1},"
	           "\"age\":{\"type\":\"integer\",\"minimum\":0}}}\n");
	/* One event run by echo and nothing after it: a drained event is one
	 * execution, not a chain. */
	write_file(p, "bench.yml",
	           "id: bench-job\ntenant: bench\nqueues:\n  - id: inbox\njobs:\n"
	           "  - event:\n      id: greet\n      schema:\n        id: person\n"
	           "        schemaref: person.json\n      supplierqueue: inbox\n"
	           "      runtime: echo\nruntimes:\n  - id: echo\n    moduleref: echo.wasm\n"
	           "    mainfuncname: event\n");
	char schema[700], job[700];
	snprintf(schema, sizeof(schema), "%s/person.json", p->dir);
	snprintf(job, sizeof(job), "%s/bench.yml", p->dir);
	ctl(p, NULL, 0, (const char *[]){"tenant", "add", "bench", NULL});
	ctl(p, NULL, 0,
	    (const char *[]){"upload", "wasm", "bench", "echo.wasm", p->echo_wasm, NULL});
	ctl(p, NULL, 0, (const char *[]){"upload", "json", "bench", "person.json", schema, NULL});
	ctl(p, NULL, 0, (const char *[]){"deploy", job, NULL});
	char out[4096];
	ctl(p, out, sizeof(out), (const char *[]){"token", "create", "bench", "-o", "json", NULL});
	json_error_t jerr;
	json_t *o = json_loads(out, 0, &jerr);
	const char *secret = json_string_value(json_object_get(o, "secret"));
	if (secret == NULL || strlen(secret) >= sizeof(p->token))
		die(p, "'noetlctl token create' printed no secret: %s", out);
	snprintf(p->token, sizeof(p->token), "%s", secret);
	json_decref(o);
}

double platform_stop(struct platform *p)
{
	rpc_client_destroy(p->queue);
	rpc_client_destroy(p->recorder);
	p->queue = p->recorder = NULL;
	if (p->pid <= 0)
		return 0;
	int64_t t0 = util_mono_ms();
	kill(p->pid, SIGTERM);
	int st;
	for (;;) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid || (r < 0 && errno != EINTR))
			break;
		if (util_mono_ms() - t0 > 30000) {
			fprintf(stderr, "bench_e2e: noetl did not stop in 30 s; killing it\n");
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
			break;
		}
		util_sleep_ms(10);
	}
	p->pid = 0;
	return (double)(util_mono_ms() - t0) / 1000.0;
}

void platform_signal(struct platform *p, int sig)
{
	if (p->pid > 0 && kill(p->pid, sig) != 0)
		die(p, "cannot signal noetl: %s", strerror(errno));
}

int platform_queue_stats(struct platform *p, struct qstats *out)
{
	Noetl__StatsRequest req = NOETL__STATS_REQUEST__INIT;
	req.tenant = "bench";
	ProtobufCMessage *m = NULL;
	int st = rpc_call(p->queue, &noetl__queue__descriptor, "Stats", &req.base, NULL, &m, NULL);
	if (st != NOETL__STATUS__OK)
		return -EIO;
	Noetl__StatsReply *r = (Noetl__StatsReply *)m;
	struct qstats s = {0};
	for (size_t i = 0; i < r->n_queues; i++) {
		const Noetl__QueueStats *q = r->queues[i];
		s.ready += q->ready;
		s.leased += q->leased;
		s.delayed += q->delayed;
		s.dead += q->dead;
		s.enqueued += q->enqueued;
		s.acked += q->acked;
		s.failed += q->failed;
	}
	protobuf_c_message_free_unpacked(m, NULL);
	*out = s;
	return 0;
}

int platform_recorder_head(struct platform *p, uint64_t *out)
{
	Noetl__Empty e = NOETL__EMPTY__INIT;
	ProtobufCMessage *m = NULL;
	if (rpc_call(p->recorder, &noetl__recorder__descriptor, "GetHealth", &e.base, NULL, &m,
	             NULL) != NOETL__STATUS__OK)
		return -EIO;
	*out = ((Noetl__Health *)m)->revision;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int platform_records(struct platform *p, uint64_t *out)
{
	Noetl__Retention req = NOETL__RETENTION__INIT;
	req.tenant = "bench";
	ProtobufCMessage *m = NULL;
	if (rpc_call(p->recorder, &noetl__recorder__descriptor, "GetRetention", &req.base, NULL, &m,
	             NULL) != NOETL__STATUS__OK)
		return -EIO;
	*out = ((Noetl__Retention *)m)->records;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int platform_executed_ok(struct platform *p, const char *id)
{
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	q.tenant = "bench";
	q.event_id = (char *)id;
	ProtobufCMessage *m = NULL;
	if (rpc_call(p->recorder, &noetl__recorder__descriptor, "QueryExecutions", &q.base, NULL,
	             &m, NULL) != NOETL__STATUS__OK)
		return -EIO;
	Noetl__ExecutionsReply *r = (Noetl__ExecutionsReply *)m;
	int ok = 0;
	for (size_t i = 0; i < r->n_executions; i++)
		if (r->executions[i]->status == NOETL__EXEC_STATUS__EXEC_OK)
			ok = 1;
	protobuf_c_message_free_unpacked(m, NULL);
	return ok;
}

char *platform_metrics(struct platform *p)
{
	struct httpc_reply r;
	if (httpc_request(p->http_port, "GET", "/metrics", NULL, NULL, 0, &r) != 0)
		return NULL;
	char *text = r.body;
	r.body = NULL;
	httpc_reply_free(&r);
	return text;
}

double platform_metric_in(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *s = text; s != NULL && *s != '\0';) {
		if (strncmp(s, series, n) == 0 && s[n] == ' ')
			return atof(s + n + 1);
		s = strchr(s, '\n');
		if (s != NULL)
			s++;
	}
	return -1;
}

double platform_metric(struct platform *p, const char *series)
{
	char *text = platform_metrics(p);
	double v = text != NULL ? platform_metric_in(text, series) : -1;
	free(text);
	return v;
}

long platform_rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	long kb = 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atol(line + 6);
	fclose(f);
	return kb;
}

long platform_children_rss_kb(pid_t pid)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	long kb = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *rp = strrchr(buf, ')'); /* the name may hold spaces and ')' */
		int ppid = 0;
		char state;
		if (rp != NULL && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
			kb += platform_rss_kb((pid_t)atoi(e->d_name));
	}
	closedir(d);
	return kb;
}
