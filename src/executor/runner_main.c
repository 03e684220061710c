/*
 * noetl-runner: one sandboxed process that runs one module's events.
 *
 *   noetl-runner MODULE.so PAGES MAX_RESULT MAX_LOG      (channel on fd 3)
 *   noetl-runner --probe open|socket|exec|fork           (sandbox self-test)
 *
 * Why a separately exec'ed program and not a fork of the executor: the
 * executor is multi-threaded (only async-signal-safe calls are allowed in a
 * forked child of a threaded process, and dlopen is not one) and holds
 * things a tenant's code must never be near (credentials, other tenants'
 * payloads in its heap). exec gives a fresh address space holding only this
 * program, libc and the one module. posix_spawn keeps the cost of starting
 * one to a few milliseconds, paid once per runner, not per event.
 *
 * Why built without sanitizers (meson.build): the sandbox forbids what
 * AddressSanitizer's runtime does at run time and at exit (reading
 * /proc/self/maps, big shadow mappings that RLIMIT_AS refuses), and the
 * shared objects it loads are compiled without instrumentation anyway. The
 * engine side that parses this program's frames is sanitized in the ASan
 * build; guest.c and wasi.c are exercised by the same tests through here.
 *
 * Sequence: load and start the module (guest_open), enter the sandbox
 * (sandbox_enter), say READY, then serve batches: a BATCH frame names the
 * function and a count, that many EVENT frames follow, and a RESULT frame
 * goes back after each event so the engine always knows which event is
 * running (its deadline starts when the previous result arrives). The
 * runner exits on QUIT or when the engine closes the channel.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "frame.h"
#include "guest.h"
#include "sandbox.h"

#define CHANNEL 3
/* Stack for deep guest recursion (rtconfig.h's call depth limit). */
#define RUNNER_STACK_BYTES (64ull << 20)
/* Address space allowed beyond what is mapped when the sandbox closes. */
#define RUNNER_AS_SLACK (512ull << 20)

struct reader {
	uint8_t *p; /* buffered bytes from the channel */
	size_t off; /* start of unread data */
	size_t len; /* end of data */
	size_t cap;
};

static void raw_write_all(const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(CHANNEL, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(0);
		p += w;
		n -= (size_t)w;
	}
}

static void send_frame(struct fbuf *b)
{
	if (b->oom) {
		static const char msg[] = "noetl-runner: out of memory building a frame\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(2);
	}
	raw_write_all(b->p, b->len);
	b->len = 0;
}

/* Reads one whole frame; returns its type (payload in *p, *n), or 0 at end
 * of input. Exits on a malformed frame: the engine is the only peer. */
static int read_frame(struct reader *r, const uint8_t **p, uint32_t *n)
{
	for (;;) {
		size_t avail = r->len - r->off, need = 4;
		if (avail >= 4) {
			uint32_t body = frame_get_u32(r->p + r->off);
			if (body == 0 || body > FRAME_MAX)
				_exit(2);
			need = 4 + (size_t)body;
			if (avail >= need) {
				int type = r->p[r->off + 4];
				*p = r->p + r->off + 5;
				*n = body - 1;
				r->off += need;
				return type;
			}
		}
		if (r->off > 0) { /* keep the partial frame at the start */
			memmove(r->p, r->p + r->off, avail);
			r->len = avail;
			r->off = 0;
		}
		if (r->cap < need || r->cap == r->len) {
			size_t cap = r->cap ? r->cap * 2 : 65536;
			while (cap < need)
				cap *= 2;
			uint8_t *q = realloc(r->p, cap);
			if (q == NULL)
				_exit(2);
			r->p = q;
			r->cap = cap;
		}
		ssize_t got = read(CHANNEL, r->p + r->len, r->cap - r->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return 0;
		r->len += (size_t)got;
	}
}

static void append_result(struct fbuf *b, struct guest *g, const struct guest_result *res)
{
	const struct guest_log *logs;
	size_t nlogs = guest_logs(g, &logs);
	fbuf_begin(b, FRAME_RESULT);
	fbuf_u8(b, (uint8_t)res->status);
	fbuf_u64(b, res->code);
	fbuf_u64(b, (uint64_t)res->duration_ns);
	fbuf_bytes(b, res->reason, strlen(res->reason));
	fbuf_bytes(b, res->data, res->len);
	fbuf_u32(b, (uint32_t)nlogs);
	for (size_t i = 0; i < nlogs; i++) {
		fbuf_u8(b, logs[i].level);
		fbuf_u64(b, (uint64_t)logs[i].time_ms);
		fbuf_bytes(b, logs[i].text, logs[i].len);
	}
	fbuf_end(b);
}

/*
 * Results are not written one by one: a write per event wakes the engine
 * per event, which costs several microseconds each. They collect in g_out
 * and go out when the runner has no further event buffered (the end of a
 * batch, or the engine is slower than us), or else at most FLUSH_US after
 * the first of them was ready: a one-shot timer whose SIGALRM handler
 * writes them while the guest keeps running. So the engine sees every
 * finished event within about a millisecond even when the next one runs
 * forever, and the deadline it charges starts at most that late.
 * The handler touches g_out only while the guest runs (g_in_guest), and the
 * main code touches it only while the guest does not.
 */
#define FLUSH_US 1000

static struct fbuf g_out;
static volatile sig_atomic_t g_in_guest; /* guest_event is running */
static volatile sig_atomic_t g_armed;    /* the flush timer is set */

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	g_armed = 0;
	if (g_in_guest && g_out.len > 0) {
		raw_write_all(g_out.p, g_out.len);
		g_out.len = 0;
	}
	errno = saved;
}

static void set_timer(long us)
{
	struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = us}};
	setitimer(ITIMER_REAL, &it, NULL);
	g_armed = us > 0;
}

static void flush_results(void)
{
	if (g_out.len > 0)
		send_frame(&g_out);
	if (g_armed)
		set_timer(0);
}

/* True if a whole frame is already buffered. */
static bool frame_buffered(const struct reader *r)
{
	size_t avail = r->len - r->off;
	return avail >= 4 && avail - 4 >= frame_get_u32(r->p + r->off);
}

static void run_event(struct guest *g, const char *fn, const uint8_t *data, uint32_t len)
{
	struct guest_result res;
	atomic_signal_fence(memory_order_seq_cst);
	g_in_guest = 1;
	atomic_signal_fence(memory_order_seq_cst);
	guest_event(g, fn, data, len, &res);
	atomic_signal_fence(memory_order_seq_cst);
	g_in_guest = 0;
	atomic_signal_fence(memory_order_seq_cst);
	bool was_empty = g_out.len == 0;
	append_result(&g_out, g, &res);
	if (g_out.oom)
		send_frame(&g_out); /* reports and exits */
	if (was_empty && !g_armed)
		set_timer(FLUSH_US);
}

static int serve(struct guest *g)
{
	struct reader r = {0};
	char fn[256];
	const uint8_t *p;
	uint32_t n;
	int type;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	for (;;) {
		if (!frame_buffered(&r))
			flush_results(); /* about to wait for the engine */
		if ((type = read_frame(&r, &p, &n)) == 0 || type == FRAME_QUIT)
			break;
		if (type != FRAME_BATCH)
			_exit(2);
		struct fin in = {.p = p, .len = n};
		uint32_t fnlen;
		const uint8_t *fnp = fin_bytes(&in, &fnlen);
		uint32_t count = fin_u32(&in);
		if (in.bad || fnlen == 0 || fnlen >= sizeof(fn))
			_exit(2);
		memcpy(fn, fnp, fnlen);
		fn[fnlen] = 0;
		for (uint32_t i = 0; i < count; i++) {
			if (!frame_buffered(&r))
				flush_results();
			if (read_frame(&r, &p, &n) != FRAME_EVENT)
				_exit(2);
			struct fin ev = {.p = p, .len = n};
			uint32_t len;
			const uint8_t *data = fin_bytes(&ev, &len);
			if (ev.bad)
				_exit(2);
			if (!g_armed && g_out.len > 0)
				flush_results(); /* the timer went off between events */
			run_event(g, fn, data, len);
		}
	}
	flush_results();
	free(r.p);
	return 0;
}

static void send_loaderr(int status, const char *reason)
{
	struct fbuf b = {0};
	fbuf_begin(&b, FRAME_LOADERR);
	fbuf_u8(&b, (uint8_t)status);
	fbuf_bytes(&b, reason, strlen(reason));
	fbuf_end(&b);
	send_frame(&b);
	fbuf_release(&b);
}

static void send_ready(uint32_t pages)
{
	struct fbuf b = {0};
	fbuf_begin(&b, FRAME_READY);
	fbuf_u32(&b, pages);
	fbuf_u32(&b, (uint32_t)getpid());
	fbuf_end(&b);
	send_frame(&b);
	fbuf_release(&b);
}

/* Enters the sandbox and tries something it forbids; the SIGSYS handler
 * reports it and exits. Getting past the attempt means the sandbox failed. */
static int probe(const char *what)
{
	char err[256];
	if (sandbox_enter(CHANNEL, RUNNER_AS_SLACK, err, sizeof(err)) != 0) {
		send_loaderr(ENGINE_CRASH, err);
		return 1;
	}
	send_ready(0);
	long rc;
	if (strcmp(what, "open") == 0)
		rc = open("/etc/hostname", O_RDONLY);
	else if (strcmp(what, "socket") == 0)
		rc = socket(AF_INET, SOCK_STREAM, 0);
	else if (strcmp(what, "exec") == 0)
		rc = execl("/bin/true", "true", (char *)NULL);
	else if (strcmp(what, "fork") == 0)
		rc = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	else
		rc = -2;
	char msg[128];
	snprintf(msg, sizeof(msg), "probe: '%s' was not stopped by the sandbox (returned %ld)",
	         what, rc);
	if (rc == 0)
		_exit(0); /* a forked child that should not exist */
	send_loaderr(ENGINE_CRASH, msg);
	return 1;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

int main(int argc, char **argv)
{
	if (fcntl(CHANNEL, F_GETFD) < 0) {
		fprintf(stderr,
		        "noetl-runner: fd %d is not open; this program is started by the "
		        "executor\n",
		        CHANNEL);
		return 2;
	}
	struct rlimit core = {0, 0};
	setrlimit(RLIMIT_CORE, &core);
	if (argc == 3 && strcmp(argv[1], "--probe") == 0)
		return probe(argv[2]);
	struct guest_limits lim;
	if (argc != 5 || !parse_u32(argv[2], &lim.memory_pages) ||
	    !parse_u32(argv[3], &lim.max_result_bytes) || !parse_u32(argv[4], &lim.max_log_bytes)) {
		fprintf(stderr, "usage: noetl-runner MODULE.so PAGES MAX_RESULT MAX_LOG\n");
		return 2;
	}
	struct rlimit st;
	if (getrlimit(RLIMIT_STACK, &st) == 0 && st.rlim_cur != RLIM_INFINITY &&
	    st.rlim_cur < RUNNER_STACK_BYTES) {
		st.rlim_cur = st.rlim_max == RLIM_INFINITY || st.rlim_max > RUNNER_STACK_BYTES
		                      ? RUNNER_STACK_BYTES
		                      : st.rlim_max;
		setrlimit(RLIMIT_STACK, &st);
	}
	struct guest *g;
	char err[640];
	int status;
	if (guest_open(argv[1], &lim, &g, &status, err, sizeof(err)) != 0) {
		send_loaderr(status, err);
		return 0;
	}
	if (sandbox_enter(CHANNEL, RUNNER_AS_SLACK, err, sizeof(err)) != 0) {
		send_loaderr(ENGINE_CRASH, err);
		guest_close(g);
		return 1;
	}
	send_ready(lim.memory_pages);
	serve(g);
	/* No guest_close: dlclose after the sandbox is pointless, and exiting
	 * frees everything at once. */
	_exit(0);
}
