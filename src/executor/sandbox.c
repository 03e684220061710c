/*
 * sandbox: the runner's lock-down, applied after the module is loaded
 * (dlopen needs open and mmap with PROT_EXEC; nothing after it does).
 *
 * Layers, each useful on its own:
 *   - fds: only stdin/stdout/stderr (the engine points 0 and 1 at
 *     /dev/null) and the channel to the engine stay open.
 *   - no_new_privs, so nothing exec'ed could gain privileges (and so the
 *     seccomp filter can be installed without CAP_SYS_ADMIN).
 *   - rlimits: RLIMIT_CORE 0 (a crash leaves no core with tenant data),
 *     RLIMIT_NOFILE 0 (no new fds), RLIMIT_FSIZE 0, RLIMIT_NPROC 0 (no
 *     processes; root ignores it, the filter does not), RLIMIT_MEMLOCK 0 and
 *     RLIMIT_AS: the address space mapped now (which already includes the
 *     guest memory's whole reservation, see wasmrt.c) plus a slack for
 *     host-side buffers. The guest's own limit is enforced exactly by the
 *     runtime; RLIMIT_AS bounds the host side if something goes wrong.
 *   - a seccomp-BPF filter, written by hand with <linux/filter.h>: an
 *     allow-list of the calls the event loop, the runtime and WASI need.
 *     read only on the channel; write only on the channel and stderr;
 *     setitimer for the result-flush timer (runner_main.c);
 *     mmap/mprotect only without PROT_EXEC (no new code); tgkill only to
 *     ourselves (abort). Any other call traps (SECCOMP_RET_TRAP): the
 *     SIGSYS handler reports the call's number and name to the engine as a
 *     CRASH frame and exits, so the event is recorded as "crash: sandbox
 *     violation (syscall 257 openat)". A foreign architecture or the x32
 *     ABI kills the process outright.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "frame.h"

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#else
#error "sandbox.c: add this architecture's AUDIT_ARCH"
#endif

static int g_channel = -1; /* for the SIGSYS handler */

static const struct {
	long nr;
	const char *name;
} names[] = {
#ifdef __NR_open
        {__NR_open, "open"},
#endif
#ifdef __NR_fork
        {__NR_fork, "fork"},
#endif
#ifdef __NR_vfork
        {__NR_vfork, "vfork"},
#endif
        {__NR_openat, "openat"},       {__NR_socket, "socket"},
        {__NR_connect, "connect"},     {__NR_bind, "bind"},
        {__NR_execve, "execve"},       {__NR_execveat, "execveat"},
        {__NR_clone, "clone"},         {__NR_clone3, "clone3"},
        {__NR_ptrace, "ptrace"},       {__NR_kill, "kill"},
        {__NR_tgkill, "tgkill"},       {__NR_ioctl, "ioctl"},
        {__NR_mmap, "mmap"},           {__NR_mprotect, "mprotect"},
        {__NR_read, "read"},           {__NR_write, "write"},
        {__NR_sendto, "sendto"},       {__NR_recvfrom, "recvfrom"},
        {__NR_prctl, "prctl"},         {__NR_setrlimit, "setrlimit"},
        {__NR_prlimit64, "prlimit64"}, {__NR_unlinkat, "unlinkat"},
        {__NR_mkdirat, "mkdirat"},     {__NR_newfstatat, "newfstatat"},
        {__NR_fstat, "fstat"},         {__NR_getdents64, "getdents64"},
        {__NR_lseek, "lseek"},
};

const char *sandbox_syscall_name(long nr)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].nr == nr)
			return names[i].name;
	return "?";
}

/* Async-signal-safe: no stdio, no malloc. */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	static char frame[160];
	char *msg = (char *)frame + 9; /* after length, type and bytes length */
	size_t cap = sizeof(frame) - 9, n = 0;
	long nr = si->si_syscall;
	char num[24];
	int k = 0;
	unsigned long v = nr < 0 ? 0 : (unsigned long)nr;
	do {
		num[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && k < (int)sizeof(num));
	n = put_str(msg, n, cap, "sandbox violation (syscall ");
	while (k > 0 && n < cap)
		msg[n++] = num[--k];
	n = put_str(msg, n, cap, " ");
	n = put_str(msg, n, cap, sandbox_syscall_name(nr));
	n = put_str(msg, n, cap, ")");
	uint32_t body = (uint32_t)(1 + 4 + n);
	frame[0] = (char)body;
	frame[1] = (char)(body >> 8);
	frame[2] = (char)(body >> 16);
	frame[3] = (char)(body >> 24);
	frame[4] = FRAME_CRASH;
	frame[5] = (char)n;
	frame[6] = (char)(n >> 8);
	frame[7] = 0;
	frame[8] = 0;
	if (g_channel >= 0) {
		size_t off = 0, total = 4 + body;
		while (off < total) {
			ssize_t w = write(g_channel, frame + off, total - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	_exit(111);
}

#define ARG_LO(i)    (offsetof(struct seccomp_data, args) + 8 * (i))
#define LD(off)      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v)       BPF_STMT(BPF_RET | BPF_K, (v))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
/* Allow syscall nr outright: two instructions. */
#define ALLOW(nr) JEQ((nr), 0, 1), RET(SECCOMP_RET_ALLOW)

static int install_filter(int channel)
{
	uint32_t pid = (uint32_t)getpid();
	struct sock_filter f[] = {
		LD(offsetof(struct seccomp_data, arch)),
		JEQ(SANDBOX_ARCH, 1, 0),
		RET(SECCOMP_RET_KILL_PROCESS),
		LD(offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1), /* x32 ABI */
		RET(SECCOMP_RET_KILL_PROCESS),
#endif
		/* read(channel, ...) */
		JEQ(__NR_read, 0, 4),
		LD(ARG_LO(0)),
		JEQ((uint32_t)channel, 0, 1),
		RET(SECCOMP_RET_ALLOW),
		RET(SECCOMP_RET_TRAP),
		/* write(channel or stderr, ...) */
		JEQ(__NR_write, 0, 5),
		LD(ARG_LO(0)),
		JEQ((uint32_t)channel, 2, 0),
		JEQ(2, 1, 0),
		RET(SECCOMP_RET_TRAP),
		RET(SECCOMP_RET_ALLOW),
		/* mmap and mprotect without PROT_EXEC */
		JEQ(__NR_mmap, 1, 0),
		JEQ(__NR_mprotect, 0, 4),
		LD(ARG_LO(2)),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0),
		RET(SECCOMP_RET_ALLOW),
		RET(SECCOMP_RET_TRAP),
		/* tgkill(ourselves, ...), which abort() uses */
		JEQ(__NR_tgkill, 0, 4),
		LD(ARG_LO(0)),
		JEQ(pid, 0, 1),
		RET(SECCOMP_RET_ALLOW),
		RET(SECCOMP_RET_TRAP),
		ALLOW(__NR_munmap),
		ALLOW(__NR_madvise),
		ALLOW(__NR_brk),
		ALLOW(__NR_mremap),
		ALLOW(__NR_close),
		ALLOW(__NR_clock_gettime),
		ALLOW(__NR_clock_getres),
		ALLOW(__NR_clock_nanosleep),
		ALLOW(__NR_nanosleep),
		ALLOW(__NR_setitimer),
		ALLOW(__NR_getrandom),
		ALLOW(__NR_futex),
		ALLOW(__NR_sched_yield),
		ALLOW(__NR_getpid),
		ALLOW(__NR_gettid),
		ALLOW(__NR_rt_sigreturn),
		ALLOW(__NR_rt_sigprocmask),
		ALLOW(__NR_rt_sigaction),
		ALLOW(__NR_restart_syscall),
		ALLOW(__NR_exit),
		ALLOW(__NR_exit_group),
		RET(SECCOMP_RET_TRAP),
	};
	struct sock_fprog prog = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
		return -errno;
	return 0;
}

/* Bytes of address space mapped now, from /proc/self/statm (pages). */
static uint64_t mapped_bytes(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long long pages = 0;
	if (sscanf(buf, "%llu", &pages) != 1)
		return 0;
	return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int limit(int resource, uint64_t v)
{
	struct rlimit rl = {.rlim_cur = v, .rlim_max = v};
	return setrlimit(resource, &rl) == 0 ? 0 : -errno;
}

int sandbox_enter(int channel, uint64_t as_slack, char *err, size_t errcap)
{
	int rc;
	uint64_t mapped = mapped_bytes();
	if (mapped == 0) {
		snprintf(err, errcap, "sandbox: cannot read /proc/self/statm");
		return -EIO;
	}
	/* close_range is Linux 5.9+; fall back to a loop over the fd limit */
	if (syscall(SYS_close_range, (unsigned)channel + 1, ~0u, 0) != 0) {
		long max = sysconf(_SC_OPEN_MAX);
		for (long fd = channel + 1; fd < max; fd++)
			close((int)fd);
	}
	for (int fd = 3; fd < channel; fd++)
		close(fd);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	g_channel = channel;
	if (sigaction(SIGSYS, &sa, NULL) != 0) {
		rc = -errno;
		snprintf(err, errcap, "sandbox: sigaction: %s", strerror(-rc));
		return rc;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		rc = -errno;
		snprintf(err, errcap, "sandbox: no_new_privs: %s", strerror(-rc));
		return rc;
	}
	if ((rc = limit(RLIMIT_CORE, 0)) || (rc = limit(RLIMIT_NOFILE, 0)) ||
	    (rc = limit(RLIMIT_FSIZE, 0)) || (rc = limit(RLIMIT_NPROC, 0)) ||
	    (rc = limit(RLIMIT_MEMLOCK, 0)) || (rc = limit(RLIMIT_AS, mapped + as_slack))) {
		snprintf(err, errcap, "sandbox: setrlimit: %s", strerror(-rc));
		return rc;
	}
	if ((rc = install_filter(channel)) != 0) {
		snprintf(err, errcap, "sandbox: seccomp filter: %s", strerror(-rc));
		return rc;
	}
	return 0;
}
