/*
 * wasi: the functions a module may import (hostabi.h lists them with their
 * types): env.log and all of wasi_snapshot_preview1.
 *
 * A runner is a sandbox with no files, sockets, arguments or environment,
 * so most of WASI answers with an errno: fds other than 0, 1 and 2 are
 * EBADF, there are no preopened directories (fd_prestat_get says EBADF,
 * which ends wasi-libc's scan for them), path and socket calls are
 * ENOTCAPABLE. What works: stdout and stderr become the event's log lines
 * (line-buffered, stdout at info level, stderr at error), stdin is empty,
 * clocks, random bytes, sleeping through poll_oneoff, sched_yield, and
 * proc_exit, which ends the event with its code.
 *
 * Every pointer and length from the guest is checked against its memory
 * before use: a bad one is EFAULT for WASI calls (the guest sees an error)
 * and a trap for env.log (which returns nothing to report an error with).
 *
 * wasm2c calls these by name (Z_<module>Z_<field>); the first argument is
 * what the runner passed to instantiate, which is the struct guest.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "guest_impl.h"

#define WASI_ESUCCESS    0
#define WASI_EBADF       8
#define WASI_EFAULT      21
#define WASI_EINVAL      28
#define WASI_EIO         29
#define WASI_ENOSYS      52
#define WASI_ENOTSUP     58
#define WASI_ESPIPE      70
#define WASI_ENOTCAPABLE 76

#define WASI_FILETYPE_CHARACTER_DEVICE 2
#define WASI_RIGHT_FD_READ             (1u << 1)
#define WASI_RIGHT_FD_WRITE            (1u << 6)
#define WASI_RIGHT_POLL_FD_READWRITE   (1u << 27)

struct Z_env_instance_t;
struct Z_wasi_snapshot_preview1_instance_t;
typedef struct Z_wasi_snapshot_preview1_instance_t wasi_t;

#define G(ctx) ((struct guest *)(void *)(ctx))

static uint32_t rd32(const struct guest *g, uint32_t p)
{
	const uint8_t *b = g->mem->data + p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t rd64(const struct guest *g, uint32_t p)
{
	return (uint64_t)rd32(g, p) | (uint64_t)rd32(g, p + 4) << 32;
}

static void wr16(struct guest *g, uint32_t p, uint16_t v)
{
	g->mem->data[p] = (uint8_t)v;
	g->mem->data[p + 1] = (uint8_t)(v >> 8);
}

static void wr32(struct guest *g, uint32_t p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		g->mem->data[p + i] = (uint8_t)(v >> (8 * i));
}

static void wr64(struct guest *g, uint32_t p, uint64_t v)
{
	wr32(g, p, (uint32_t)v);
	wr32(g, p + 4, (uint32_t)(v >> 32));
}

static bool is_stdio(const struct guest *g, uint32_t fd)
{
	return fd <= 2 && !g->closed[fd];
}

/* For the fd calls that make no sense on a character device. */
static uint32_t stdio_or_badf(const struct guest *g, uint32_t fd, uint32_t stdio_errno)
{
	return is_stdio(g, fd) ? stdio_errno : WASI_EBADF;
}

void Z_envZ_log(struct Z_env_instance_t *ctx, uint32_t level, uint32_t ptr, uint32_t len)
{
	struct guest *g = G(ctx);
	if (!guest_in_bounds(g, ptr, len))
		rt_trap_host(RT_TRAP_HOST,
		             "env.log(level %u, pointer %u, length %u) reaches outside the guest's "
		             "%u bytes of memory",
		             level, ptr, len, g->mem->size);
	guest_log_add(g, level, (const char *)g->mem->data + ptr, len);
}

/* args and environ are empty: sizes are zero and there is nothing to copy. */
static uint32_t empty_sizes(wasi_t *ctx, uint32_t count_ptr, uint32_t size_ptr)
{
	struct guest *g = G(ctx);
	if (!guest_in_bounds(g, count_ptr, 4) || !guest_in_bounds(g, size_ptr, 4))
		return WASI_EFAULT;
	wr32(g, count_ptr, 0);
	wr32(g, size_ptr, 0);
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_args_get(wasi_t *ctx, uint32_t argv, uint32_t buf)
{
	(void)ctx, (void)argv, (void)buf;
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(wasi_t *ctx, uint32_t argc, uint32_t size)
{
	return empty_sizes(ctx, argc, size);
}

uint32_t Z_wasi_snapshot_preview1Z_environ_get(wasi_t *ctx, uint32_t env, uint32_t buf)
{
	(void)ctx, (void)env, (void)buf;
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(wasi_t *ctx, uint32_t count, uint32_t size)
{
	return empty_sizes(ctx, count, size);
}

static bool clock_of(uint32_t id, clockid_t *out)
{
	static const clockid_t map[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
	                                CLOCK_THREAD_CPUTIME_ID};
	if (id >= sizeof(map) / sizeof(map[0]))
		return false;
	*out = map[id];
	return true;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

uint32_t Z_wasi_snapshot_preview1Z_clock_res_get(wasi_t *ctx, uint32_t id, uint32_t out)
{
	struct guest *g = G(ctx);
	clockid_t c;
	struct timespec ts;
	if (!clock_of(id, &c))
		return WASI_EINVAL;
	if (!guest_in_bounds(g, out, 8))
		return WASI_EFAULT;
	if (clock_getres(c, &ts) != 0)
		return WASI_EINVAL;
	wr64(g, out, ts_ns(&ts));
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(wasi_t *ctx, uint32_t id, uint64_t precision,
                                                  uint32_t out)
{
	struct guest *g = G(ctx);
	clockid_t c;
	struct timespec ts;
	(void)precision;
	if (!clock_of(id, &c))
		return WASI_EINVAL;
	if (!guest_in_bounds(g, out, 8))
		return WASI_EFAULT;
	if (clock_gettime(c, &ts) != 0)
		return WASI_EINVAL;
	wr64(g, out, ts_ns(&ts));
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_advise(wasi_t *ctx, uint32_t fd, uint64_t off, uint64_t len,
                                             uint32_t advice)
{
	(void)off, (void)len, (void)advice;
	return stdio_or_badf(G(ctx), fd, WASI_ESPIPE);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_allocate(wasi_t *ctx, uint32_t fd, uint64_t off, uint64_t len)
{
	(void)off, (void)len;
	return stdio_or_badf(G(ctx), fd, WASI_ENOTSUP);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_close(wasi_t *ctx, uint32_t fd)
{
	struct guest *g = G(ctx);
	if (!is_stdio(g, fd))
		return WASI_EBADF;
	g->closed[fd] = true;
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_datasync(wasi_t *ctx, uint32_t fd)
{
	return stdio_or_badf(G(ctx), fd, WASI_EINVAL);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(wasi_t *ctx, uint32_t fd, uint32_t buf)
{
	struct guest *g = G(ctx);
	if (!is_stdio(g, fd))
		return WASI_EBADF;
	if (!guest_in_bounds(g, buf, 24))
		return WASI_EFAULT;
	/* A character device without seek rights: wasi-libc's isatty() says yes,
	 * so stdio is line-buffered and lines reach the log as they are written. */
	memset(g->mem->data + buf, 0, 24);
	g->mem->data[buf] = WASI_FILETYPE_CHARACTER_DEVICE;
	wr64(g, buf + 8,
	     (fd == 0 ? WASI_RIGHT_FD_READ : WASI_RIGHT_FD_WRITE) | WASI_RIGHT_POLL_FD_READWRITE);
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(wasi_t *ctx, uint32_t fd, uint32_t flags)
{
	(void)flags;
	return stdio_or_badf(G(ctx), fd, WASI_ENOTSUP);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(wasi_t *ctx, uint32_t fd, uint64_t base,
                                                        uint64_t inheriting)
{
	(void)base, (void)inheriting;
	return stdio_or_badf(G(ctx), fd, WASI_ENOTCAPABLE);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_get(wasi_t *ctx, uint32_t fd, uint32_t buf)
{
	struct guest *g = G(ctx);
	if (!is_stdio(g, fd))
		return WASI_EBADF;
	if (!guest_in_bounds(g, buf, 64))
		return WASI_EFAULT;
	memset(g->mem->data + buf, 0, 64);
	g->mem->data[buf + 16] = WASI_FILETYPE_CHARACTER_DEVICE;
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_size(wasi_t *ctx, uint32_t fd, uint64_t size)
{
	(void)size;
	return stdio_or_badf(G(ctx), fd, WASI_EINVAL);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_times(wasi_t *ctx, uint32_t fd, uint64_t atim,
                                                         uint64_t mtim, uint32_t flags)
{
	(void)atim, (void)mtim, (void)flags;
	return stdio_or_badf(G(ctx), fd, WASI_ENOTCAPABLE);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_pread(wasi_t *ctx, uint32_t fd, uint32_t iovs, uint32_t n,
                                            uint64_t off, uint32_t nread)
{
	(void)iovs, (void)n, (void)off, (void)nread;
	return stdio_or_badf(G(ctx), fd, WASI_ESPIPE);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_get(wasi_t *ctx, uint32_t fd, uint32_t buf)
{
	(void)ctx, (void)fd, (void)buf;
	return WASI_EBADF; /* no preopened directories */
}

uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(wasi_t *ctx, uint32_t fd, uint32_t path,
                                                       uint32_t len)
{
	(void)ctx, (void)fd, (void)path, (void)len;
	return WASI_EBADF;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_pwrite(wasi_t *ctx, uint32_t fd, uint32_t iovs, uint32_t n,
                                             uint64_t off, uint32_t nwritten)
{
	(void)iovs, (void)n, (void)off, (void)nwritten;
	return stdio_or_badf(G(ctx), fd, WASI_ESPIPE);
}

/* Checks an iovec array: n entries of {u32 ptr, u32 len}, each in bounds. */
static bool iovs_ok(const struct guest *g, uint32_t iovs, uint32_t n)
{
	if (!guest_in_bounds(g, iovs, (uint64_t)n * 8))
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!guest_in_bounds(g, rd32(g, iovs + 8 * i), rd32(g, iovs + 8 * i + 4)))
			return false;
	return true;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_read(wasi_t *ctx, uint32_t fd, uint32_t iovs, uint32_t n,
                                           uint32_t nread)
{
	struct guest *g = G(ctx);
	if (fd != 0 || !is_stdio(g, fd))
		return WASI_EBADF;
	if (!iovs_ok(g, iovs, n) || !guest_in_bounds(g, nread, 4))
		return WASI_EFAULT;
	wr32(g, nread, 0); /* stdin is empty: end of file */
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_fd_readdir(wasi_t *ctx, uint32_t fd, uint32_t buf, uint32_t len,
                                              uint64_t cookie, uint32_t used)
{
	(void)buf, (void)len, (void)cookie, (void)used;
	return stdio_or_badf(G(ctx), fd, WASI_ENOTSUP);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_renumber(wasi_t *ctx, uint32_t fd, uint32_t to)
{
	(void)to;
	return stdio_or_badf(G(ctx), fd, WASI_ENOTSUP);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_seek(wasi_t *ctx, uint32_t fd, uint64_t off, uint32_t whence,
                                           uint32_t newoff)
{
	(void)off, (void)whence, (void)newoff;
	return stdio_or_badf(G(ctx), fd, WASI_ESPIPE);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_sync(wasi_t *ctx, uint32_t fd)
{
	return stdio_or_badf(G(ctx), fd, WASI_EINVAL);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_tell(wasi_t *ctx, uint32_t fd, uint32_t off)
{
	(void)off;
	return stdio_or_badf(G(ctx), fd, WASI_ESPIPE);
}

uint32_t Z_wasi_snapshot_preview1Z_fd_write(wasi_t *ctx, uint32_t fd, uint32_t iovs, uint32_t n,
                                            uint32_t nwritten)
{
	struct guest *g = G(ctx);
	if (fd == 0 || !is_stdio(g, fd))
		return WASI_EBADF;
	if (!iovs_ok(g, iovs, n) || !guest_in_bounds(g, nwritten, 4))
		return WASI_EFAULT;
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = rd32(g, iovs + 8 * i), len = rd32(g, iovs + 8 * i + 4);
		guest_write_stdio(g, (int)fd, g->mem->data + p, len);
		total += len;
	}
	wr32(g, nwritten, total > UINT32_MAX ? UINT32_MAX : (uint32_t)total);
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_path_create_directory(wasi_t *ctx, uint32_t fd, uint32_t p,
                                                         uint32_t n)
{
	(void)ctx, (void)fd, (void)p, (void)n;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_filestat_get(wasi_t *ctx, uint32_t fd, uint32_t flags,
                                                     uint32_t p, uint32_t n, uint32_t buf)
{
	(void)ctx, (void)fd, (void)flags, (void)p, (void)n, (void)buf;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_filestat_set_times(wasi_t *ctx, uint32_t fd, uint32_t flags,
                                                           uint32_t p, uint32_t n, uint64_t atim,
                                                           uint64_t mtim, uint32_t fst)
{
	(void)ctx, (void)fd, (void)flags, (void)p, (void)n, (void)atim, (void)mtim, (void)fst;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_link(wasi_t *ctx, uint32_t ofd, uint32_t flags, uint32_t op,
                                             uint32_t on, uint32_t nfd, uint32_t np, uint32_t nn)
{
	(void)ctx, (void)ofd, (void)flags, (void)op, (void)on, (void)nfd, (void)np, (void)nn;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_open(wasi_t *ctx, uint32_t fd, uint32_t dirflags,
                                             uint32_t p, uint32_t n, uint32_t oflags, uint64_t base,
                                             uint64_t inheriting, uint32_t fdflags, uint32_t out)
{
	(void)ctx, (void)fd, (void)dirflags, (void)p, (void)n, (void)oflags, (void)base;
	(void)inheriting, (void)fdflags, (void)out;
	return WASI_ENOTCAPABLE; /* the sandbox grants no directories */
}

uint32_t Z_wasi_snapshot_preview1Z_path_readlink(wasi_t *ctx, uint32_t fd, uint32_t p, uint32_t n,
                                                 uint32_t buf, uint32_t len, uint32_t used)
{
	(void)ctx, (void)fd, (void)p, (void)n, (void)buf, (void)len, (void)used;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_remove_directory(wasi_t *ctx, uint32_t fd, uint32_t p,
                                                         uint32_t n)
{
	(void)ctx, (void)fd, (void)p, (void)n;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_rename(wasi_t *ctx, uint32_t fd, uint32_t op, uint32_t on,
                                               uint32_t nfd, uint32_t np, uint32_t nn)
{
	(void)ctx, (void)fd, (void)op, (void)on, (void)nfd, (void)np, (void)nn;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_symlink(wasi_t *ctx, uint32_t op, uint32_t on, uint32_t fd,
                                                uint32_t np, uint32_t nn)
{
	(void)ctx, (void)op, (void)on, (void)fd, (void)np, (void)nn;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_path_unlink_file(wasi_t *ctx, uint32_t fd, uint32_t p,
                                                    uint32_t n)
{
	(void)ctx, (void)fd, (void)p, (void)n;
	return WASI_ENOTCAPABLE;
}

/*
 * poll_oneoff: subscriptions are 48 bytes (userdata u64, tag u8 at 8, then
 * clock {id u32 @16, timeout u64 @24, precision u64 @32, flags u16 @40} or
 * fd {fd u32 @16}); events are 32 bytes (userdata u64, error u16 @8, type u8
 * @10, nbytes u64 @16, flags u16 @24). Fd subscriptions are answered at once
 * (stdout/stderr are always writable, stdin is at end of file, other fds
 * are EBADF); with none, the call sleeps until the earliest clock.
 */
uint32_t Z_wasi_snapshot_preview1Z_poll_oneoff(wasi_t *ctx, uint32_t in, uint32_t out, uint32_t n,
                                               uint32_t nevents)
{
	struct guest *g = G(ctx);
	if (n == 0)
		return WASI_EINVAL;
	if (!guest_in_bounds(g, in, (uint64_t)n * 48) ||
	    !guest_in_bounds(g, out, (uint64_t)n * 32) || !guest_in_bounds(g, nevents, 4))
		return WASI_EFAULT;
	uint32_t count = 0;
	int64_t best = -1; /* nanoseconds to the earliest clock */
	uint32_t best_i = 0;
	uint16_t best_err = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t s = in + 48 * i;
		uint8_t tag = g->mem->data[s + 8];
		if (tag == 0) {
			clockid_t c;
			struct timespec now;
			uint64_t timeout = rd64(g, s + 24), rel = timeout;
			uint16_t err = 0;
			if (!clock_of(rd32(g, s + 16), &c) || clock_gettime(c, &now) != 0)
				err = WASI_EINVAL;
			else if (g->mem->data[s + 40] & 1) /* absolute time on that clock */
				rel = timeout > ts_ns(&now) ? timeout - ts_ns(&now) : 0;
			/* a year is forever: the event's deadline ends the sleep long before */
			int64_t wait = rel > INT64_C(31536000000000000) ? INT64_C(31536000000000000)
			                                                : (int64_t)rel;
			if (best < 0 || wait < best) {
				best = wait;
				best_i = i;
				best_err = err;
			}
			continue;
		}
		uint32_t e = out + 32 * count++;
		uint32_t fd = rd32(g, s + 16);
		bool ready = (tag == 1 && fd == 0 && is_stdio(g, 0)) ||
		             (tag == 2 && (fd == 1 || fd == 2) && is_stdio(g, fd));
		memset(g->mem->data + e, 0, 32);
		wr64(g, e, rd64(g, s));
		wr16(g, e + 8, tag > 2 ? WASI_EINVAL : ready ? 0 : WASI_EBADF);
		g->mem->data[e + 10] = tag;
		wr64(g, e + 16, tag == 2 && ready ? 65536 : 0);
	}
	if (count == 0 && best >= 0) {
		if (best > 0 && best_err == 0) {
			struct timespec ts = {.tv_sec = best / 1000000000,
			                      .tv_nsec = best % 1000000000};
			while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
				;
		}
		uint32_t s = in + 48 * best_i;
		memset(g->mem->data + out, 0, 32);
		wr64(g, out, rd64(g, s));
		wr16(g, out + 8, best_err);
		g->mem->data[out + 10] = 0;
		count = 1;
	}
	wr32(g, nevents, count);
	return WASI_ESUCCESS;
}

void Z_wasi_snapshot_preview1Z_proc_exit(wasi_t *ctx, uint32_t code)
{
	(void)ctx;
	rt_exit(code);
}

uint32_t Z_wasi_snapshot_preview1Z_proc_raise(wasi_t *ctx, uint32_t sig)
{
	(void)ctx, (void)sig;
	return WASI_ENOSYS;
}

uint32_t Z_wasi_snapshot_preview1Z_random_get(wasi_t *ctx, uint32_t buf, uint32_t len)
{
	struct guest *g = G(ctx);
	if (!guest_in_bounds(g, buf, len))
		return WASI_EFAULT;
	uint32_t done = 0;
	while (done < len) {
		ssize_t r = getrandom(g->mem->data + buf + done, len - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return WASI_EIO;
		done += (uint32_t)r;
	}
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_sched_yield(wasi_t *ctx)
{
	(void)ctx;
	return WASI_ESUCCESS;
}

uint32_t Z_wasi_snapshot_preview1Z_sock_accept(wasi_t *ctx, uint32_t fd, uint32_t flags,
                                               uint32_t out)
{
	(void)ctx, (void)fd, (void)flags, (void)out;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_sock_recv(wasi_t *ctx, uint32_t fd, uint32_t iovs, uint32_t n,
                                             uint32_t flags, uint32_t len, uint32_t oflags)
{
	(void)ctx, (void)fd, (void)iovs, (void)n, (void)flags, (void)len, (void)oflags;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_sock_send(wasi_t *ctx, uint32_t fd, uint32_t iovs, uint32_t n,
                                             uint32_t flags, uint32_t len)
{
	(void)ctx, (void)fd, (void)iovs, (void)n, (void)flags, (void)len;
	return WASI_ENOTCAPABLE;
}

uint32_t Z_wasi_snapshot_preview1Z_sock_shutdown(wasi_t *ctx, uint32_t fd, uint32_t how)
{
	(void)ctx, (void)fd, (void)how;
	return WASI_ENOTCAPABLE;
}
