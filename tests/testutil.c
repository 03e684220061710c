#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void testutil_tempdir(char *out, size_t cap)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, cap, "%s/noetl-test-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(out) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void testutil_rmtree(const char *path)
{
	if (path != NULL && path[0] != '\0')
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void root_path(const char *env, const char *rel, char *out, size_t cap)
{
	const char *root = getenv(env);
	if (root == NULL) {
		fprintf(stderr, "%s is not set: run the tests through meson\n", env);
		abort();
	}
	snprintf(out, cap, "%s/%s", root, rel);
}

void testutil_build_path(const char *rel, char *out, size_t cap)
{
	root_path("NOETL_BUILD_ROOT", rel, out, cap);
}

void testutil_source_path(const char *rel, char *out, size_t cap)
{
	root_path("NOETL_SOURCE_ROOT", rel, out, cap);
}

pid_t testutil_spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		abort();
	}
	if (pid == 0) {
		if (log != NULL) {
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

int testutil_wait(pid_t pid, int timeout_ms)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	for (int waited = 0; waited <= timeout_ms; waited += 5) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		nanosleep(&ts, NULL);
	}
	return -1;
}

int testutil_kill(pid_t pid, int sig)
{
	kill(pid, sig);
	int status = testutil_wait(pid, 30000);
	/* SIGKILL only a child that is still there: a pid that is not (or no
	 * longer) ours may by now belong to any process on the machine, such
	 * as another test's. */
	if (status == -1 && waitpid(pid, NULL, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return status;
}

int testutil_run(const char *cmdline, char **out)
{
	FILE *p = popen(cmdline, "r");
	if (p == NULL)
		return -1;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len < 1024) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
	}
	int status = pclose(p);
	if (buf != NULL)
		buf[len] = '\0';
	if (out != NULL)
		*out = buf;
	else
		free(buf);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* Ports handed out by the kernel for port 0 come from the ephemeral range
 * (32768-60999 on Linux), which every outgoing connection on the machine
 * also draws from: between our close() and the service's bind(), a client
 * socket of a test running alongside may take it ("Address in use"). So
 * ports come from below that range instead, picked at random (tests run in
 * parallel processes), checked by a bind, and never handed out twice by
 * one process. */
#define PORT_LOW  20000
#define PORT_HIGH 32000

int testutil_free_port(void)
{
	static unsigned char given[PORT_HIGH - PORT_LOW];
	static unsigned seed;
	if (seed == 0)
		seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	for (int attempt = 0; attempt < 4 * (PORT_HIGH - PORT_LOW); attempt++) {
		int port = PORT_LOW + (int)(rand_r(&seed) % (PORT_HIGH - PORT_LOW));
		if (given[port - PORT_LOW])
			continue;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("free port: socket");
			abort();
		}
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok) {
			given[port - PORT_LOW] = 1;
			return port;
		}
	}
	fprintf(stderr, "free port: none left in %d-%d\n", PORT_LOW, PORT_HIGH);
	abort();
}

char *testutil_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		if (len != NULL)
			*len = (size_t)n;
	}
	return buf;
}

bool testutil_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return false;
	bool ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok;
}

/* The function name of a gdb frame line ("#1  0x... in fn (...) at ..." or
 * "#0  fn (...) at ..."), copied into out. */
static void frame_name(const char *line, char *out, size_t cap)
{
	const char *p = line + 1 + strspn(line + 1, "0123456789");
	p += strspn(p, " ");
	if (strncmp(p, "0x", 2) == 0) {
		const char *in = strstr(p, " in ");
		p = in != NULL ? in + 4 : p;
	}
	size_t n = strcspn(p, " (\n");
	snprintf(out, cap, "%.*s", (int)n, p);
}

void testutil_stacks(pid_t pid, const char *label)
{
	/* Yama's ptrace_scope=1 lets only an ancestor attach: allow gdb in */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -ex 'thread apply all bt 14' 2>/dev/null",
	         (int)pid);
	FILE *f = popen(cmd, "r");
	if (f == NULL) {
		fprintf(stderr, "watchdog: %s pid %d: no stacks (cannot run gdb)\n", label,
		        (int)pid);
		return;
	}
	char line[1024], out[900] = "";
	int threads = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "Thread ", 7) == 0) {
			if (out[0] != '\0')
				fprintf(stderr, "%s\n", out);
			const char *q = strchr(line, '"');
			const char *e = q != NULL ? strchr(q + 1, '"') : NULL;
			snprintf(out, sizeof(out), "watchdog: %s pid %d thread %d '%.*s':", label,
			         (int)pid, atoi(line + 7), e != NULL ? (int)(e - q - 1) : 0,
			         q != NULL ? q + 1 : "");
			threads++;
		} else if (line[0] == '#' && out[0] != '\0') {
			char fn[128];
			frame_name(line, fn, sizeof(fn));
			size_t l = strlen(out);
			snprintf(out + l, sizeof(out) - l, "%s %s", line[1] == '0' ? "" : " <", fn);
		}
	}
	if (out[0] != '\0')
		fprintf(stderr, "%s\n", out);
	int rc = pclose(f);
	if (threads == 0)
		fprintf(stderr,
		        "watchdog: %s pid %d: no stacks (gdb missing or cannot attach: %d)\n",
		        label, (int)pid, rc);
}

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool armed, stop;
	int seconds;
	char what[200];
} dog = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *watch(void *arg)
{
	(void)arg;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += dog.seconds;
	pthread_mutex_lock(&dog.lock);
	int rc = 0;
	while (!dog.stop && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&dog.cond, &dog.lock, &until);
	bool fire = !dog.stop;
	pthread_mutex_unlock(&dog.lock);
	if (!fire)
		return NULL;
	fprintf(stderr, "watchdog: %s still running after %d s; its stacks:\n", dog.what,
	        dog.seconds);
	testutil_stacks(getpid(), "test");
	char cmd[64], *kids = NULL;
	snprintf(cmd, sizeof(cmd), "pgrep -P %d", (int)getpid());
	testutil_run(cmd, &kids);
	char *save = NULL;
	for (char *p = kids != NULL ? strtok_r(kids, "\n", &save) : NULL; p != NULL;
	     p = strtok_r(NULL, "\n", &save))
		if (atoi(p) > 0 && kill((pid_t)atoi(p), 0) == 0) /* not pgrep's own shell */
			testutil_stacks((pid_t)atoi(p), "child");
	free(kids);
	return NULL;
}

void testutil_watchdog_start(const char *what, int seconds)
{
	snprintf(dog.what, sizeof(dog.what), "%s", what);
	dog.seconds = seconds;
	dog.stop = false;
	if (pthread_create(&dog.thread, NULL, watch, NULL) == 0)
		dog.armed = true;
}

void testutil_watchdog_stop(void)
{
	if (!dog.armed)
		return;
	pthread_mutex_lock(&dog.lock);
	dog.stop = true;
	pthread_cond_signal(&dog.cond);
	pthread_mutex_unlock(&dog.lock);
	pthread_join(dog.thread, NULL);
	dog.armed = false;
}
