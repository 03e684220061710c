/*
 * runner_proc: one runner process seen from the engine. See runner_proc.h.
 *
 * The channel is a socketpair rather than two pipes: send() with
 * MSG_NOSIGNAL cannot raise SIGPIPE in the executor when a runner dies, and
 * the engine never has to touch the process-wide signal disposition. The
 * engine's end is non-blocking, so one thread can keep several runners fed
 * and drained with poll() without ever deadlocking on a full buffer.
 */
#include "runner_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

int runner_proc_spawn(const char *path, char *const argv[], struct runner_proc **out, char *err,
                      size_t errcap)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		int rc = -errno;
		snprintf(err, errcap, "socketpair: %s", strerror(errno));
		return rc;
	}
	struct runner_proc *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		close(sv[0]);
		close(sv[1]);
		snprintf(err, errcap, "out of memory");
		return -ENOMEM;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	int rc = posix_spawn(&r->pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		free(r);
		snprintf(err, errcap, "cannot start the runner '%s': %s", path, strerror(rc));
		return -rc;
	}
	r->fd = sv[0];
	r->max_frame = FRAME_MAX;
	fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
	*out = r;
	return 0;
}

int runner_proc_queue_batch(struct runner_proc *r, const char *fn,
                            const struct engine_event *events, size_t n)
{
	struct fbuf *b = &r->out;
	if (r->out_off > 0 && r->out_off == b->len) {
		b->len = 0;
		r->out_off = 0;
	}
	fbuf_begin(b, FRAME_BATCH);
	fbuf_bytes(b, fn, strlen(fn));
	fbuf_u32(b, (uint32_t)n);
	fbuf_end(b);
	for (size_t i = 0; i < n; i++) {
		fbuf_begin(b, FRAME_EVENT);
		fbuf_bytes(b, events[i].data, events[i].len);
		fbuf_end(b);
	}
	return b->oom ? -ENOMEM : 0;
}

bool runner_proc_wants_write(const struct runner_proc *r)
{
	return r->out_off < r->out.len;
}

int runner_proc_flush(struct runner_proc *r)
{
	while (r->out_off < r->out.len) {
		ssize_t w = send(r->fd, r->out.p + r->out_off, r->out.len - r->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return errno == EPIPE || errno == ECONNRESET ? -EPIPE : -errno;
		}
		r->out_off += (size_t)w;
	}
	r->out.len = 0;
	r->out_off = 0;
	return 0;
}

int runner_proc_fill(struct runner_proc *r)
{
	if (r->in_skip > 0) {
		r->in_off += r->in_skip;
		r->in_skip = 0;
	}
	if (r->in_off > 0) {
		memmove(r->in, r->in + r->in_off, r->in_len - r->in_off);
		r->in_len -= r->in_off;
		r->in_off = 0;
	}
	if (r->in_cap - r->in_len < 65536) {
		size_t cap = r->in_cap ? r->in_cap * 2 : 131072;
		uint8_t *p = realloc(r->in, cap);
		if (p == NULL)
			return -ENOMEM;
		r->in = p;
		r->in_cap = cap;
	}
	for (;;) {
		ssize_t got = recv(r->fd, r->in + r->in_len, r->in_cap - r->in_len, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN
			       : errno == ECONNRESET                   ? 0
			                                               : -errno;
		r->in_len += (size_t)got;
		return (int)(got > INT32_MAX ? INT32_MAX : got);
	}
}

int runner_proc_frame(struct runner_proc *r, uint8_t *type, struct fin *payload)
{
	if (r->in_skip > 0) {
		r->in_off += r->in_skip;
		r->in_skip = 0;
	}
	size_t avail = r->in_len - r->in_off;
	if (avail < 4)
		return 0;
	uint32_t body = frame_get_u32(r->in + r->in_off);
	if (body == 0 || body > r->max_frame)
		return -EPROTO;
	if (avail < 4 + (size_t)body)
		return 0;
	*type = r->in[r->in_off + 4];
	*payload = (struct fin){.p = r->in + r->in_off + 5, .len = body - 1};
	r->in_skip = 4 + (size_t)body;
	return 1;
}

int runner_proc_wait_frame(struct runner_proc *r, int64_t deadline_ms, uint8_t *type,
                           struct fin *payload)
{
	for (;;) {
		int rc = runner_proc_frame(r, type, payload);
		if (rc != 0)
			return rc;
		int64_t left = deadline_ms - util_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc <= 0)
			continue;
		rc = runner_proc_fill(r);
		if (rc == 0)
			return 0;
		if (rc < 0 && rc != -EAGAIN)
			return rc;
	}
}

int runner_proc_kill(struct runner_proc *r)
{
	if (r->pid <= 0)
		return -1;
	int status = 0;
	kill(r->pid, SIGKILL);
	while (waitpid(r->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	r->pid = 0;
	return status;
}

void runner_proc_describe_exit(int status, char *buf, size_t cap)
{
	if (status >= 0 && WIFSIGNALED(status)) {
		const char *d = sigdescr_np(WTERMSIG(status));
		snprintf(buf, cap, "runner killed by signal %d (%s)", WTERMSIG(status),
		         d ? d : "unknown");
	} else if (status >= 0 && WIFEXITED(status)) {
		snprintf(buf, cap, "runner exited with status %d", WEXITSTATUS(status));
	} else {
		snprintf(buf, cap, "runner ended");
	}
}

void runner_proc_destroy(struct runner_proc *r)
{
	if (r == NULL)
		return;
	runner_proc_kill(r);
	close(r->fd);
	free(r->in);
	fbuf_release(&r->out);
	free(r);
}
