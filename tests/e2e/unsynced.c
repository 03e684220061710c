/*
 * unsynced: an LD_PRELOAD shim that makes a SIGKILL lose what a power cut
 * would lose: every byte written to a file and not yet made durable with
 * fsync or fdatasync.
 *
 * A process killed on a running machine loses nothing it wrote: the page
 * cache keeps the data. So the fault tests run the Queue (and the Recorder)
 * under this shim: writes to files under $NOETL_UNSYNCED_DIR are not passed
 * to the kernel but kept in the process's memory, per file descriptor, and
 * written out by fsync/fdatasync (sync_file_range too). A SIGKILL then takes
 * the unsynced bytes with it, exactly the bytes a crash of the machine could
 * lose. A store that answers "durable" before syncing loses data under it.
 *
 * $NOETL_UNSYNCED_IGNORE=SUFFIX turns syncing off for files whose names end
 * with SUFFIX ("log" = RocksDB's write-ahead logs): their fsync calls keep
 * the data in memory. That is a store that does not sync, and the fault test
 * run with it must find lost events: the proof that the test can fail.
 *
 * Simplifications, chosen to keep RocksDB working and said here: data is
 * written out when its descriptor is closed (RocksDB syncs every file whose
 * contents it relies on before closing it, so this only spares files it
 * does not care about); a file opened again while another descriptor holds
 * unsynced data of it gets that data written first (one page cache); file
 * creation, renames and directory entries are the kernel's as usual. Reads
 * of a descriptor with unsynced data write it out first.
 *
 * Only descriptors opened for writing by path are tracked, with at most
 * MAX_FD of them; positional writes (pwrite) and sequential ones (write,
 * writev, with the position tracked here) are both buffered.
 */
/* The real symbol names (open, not open64): meson builds with 64-bit
 * offsets, which would rename them; off_t is 64 bits on LP64 anyway. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 4096

struct chunk {
	off_t off;
	size_t len;
	struct chunk *next;
	char data[];
};

struct tracked {
	bool on;
	bool ignore_sync; /* syncing turned off for this file */
	bool append;      /* O_APPEND: chunks go to the end in order */
	off_t pos;        /* the position write() continues at */
	dev_t dev;
	ino_t ino;
	struct chunk *head, *tail;
};

static struct tracked fds[MAX_FD];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char dir[PATH_MAX];
static size_t dirlen;
static char ignore_suffix[64];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);

/* dlsym returns void *: POSIX's way to store it in a function pointer. */
#define LOOKUP(var, name) (*(void **)&(var) = dlsym(RTLD_NEXT, name))

static void init(void)
{
	LOOKUP(real_open, "open");
	LOOKUP(real_openat, "openat");
	LOOKUP(real_write, "write");
	LOOKUP(real_pwrite, "pwrite");
	LOOKUP(real_read, "read");
	LOOKUP(real_pread, "pread");
	LOOKUP(real_close, "close");
	LOOKUP(real_fsync, "fsync");
	LOOKUP(real_fdatasync, "fdatasync");
	LOOKUP(real_ftruncate, "ftruncate");
	const char *d = getenv("NOETL_UNSYNCED_DIR");
	if (d != NULL && realpath(d, dir) != NULL)
		dirlen = strlen(dir);
	const char *ig = getenv("NOETL_UNSYNCED_IGNORE");
	if (ig != NULL)
		strncpy(ignore_suffix, ig, sizeof(ignore_suffix) - 1);
}

static void setup(void)
{
	pthread_once(&once, init);
}

/* Writes out fd's chunks; mu held. 0 or -1 with errno. */
static int flush_locked(int fd)
{
	struct tracked *t = &fds[fd];
	int rv = 0;
	while (t->head != NULL) {
		struct chunk *c = t->head;
		size_t done = 0;
		while (done < c->len) {
			ssize_t n = real_pwrite(fd, c->data + done, c->len - done,
			                        c->off + (off_t)done);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			done += (size_t)n;
		}
		t->head = c->next;
		free(c);
	}
	t->tail = NULL;
	return rv;
}

/* Writes out the unsynced data of every other descriptor of the same file. */
static void flush_same_file_locked(dev_t dev, ino_t ino)
{
	for (int i = 0; i < MAX_FD; i++)
		if (fds[i].on && fds[i].head != NULL && fds[i].dev == dev && fds[i].ino == ino)
			flush_locked(i);
}

static bool under_dir(const char *path, char *abs, size_t cap)
{
	if (dirlen == 0)
		return false;
	int n;
	if (path[0] == '/') {
		n = snprintf(abs, cap, "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return false;
		n = snprintf(abs, cap, "%s/%s", cwd, path);
	}
	if (n < 0 || (size_t)n >= cap)
		return false;
	return strncmp(abs, dir, dirlen) == 0 && (abs[dirlen] == '/' || abs[dirlen] == '\0');
}

static void track(int fd, const char *path, int flags)
{
	if (fd < 0 || fd >= MAX_FD)
		return;
	char abs[2 * PATH_MAX];
	bool in = under_dir(path, abs, sizeof(abs));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	pthread_mutex_lock(&mu);
	if (in)
		flush_same_file_locked(st.st_dev, st.st_ino); /* one page cache */
	struct tracked *t = &fds[fd];
	memset(t, 0, sizeof(*t));
	if (in && (flags & O_ACCMODE) != O_RDONLY) {
		t->on = true;
		t->append = (flags & O_APPEND) != 0;
		t->pos = t->append ? st.st_size : lseek(fd, 0, SEEK_CUR);
		t->dev = st.st_dev;
		t->ino = st.st_ino;
		size_t n = strlen(abs), m = strlen(ignore_suffix);
		t->ignore_sync = m > 0 && n >= m && strcmp(abs + n - m, ignore_suffix) == 0;
	}
	pthread_mutex_unlock(&mu);
}

static bool tracked_fd(int fd)
{
	return fd >= 0 && fd < MAX_FD && fds[fd].on;
}

/* Buffers len bytes at off (-1: at the tracked position); mu held. */
static ssize_t buffer_locked(int fd, const void *buf, size_t len, off_t off)
{
	struct tracked *t = &fds[fd];
	struct chunk *c = malloc(sizeof(*c) + len);
	if (c == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (off < 0) {
		off = t->pos;
		t->pos += (off_t)len;
	}
	c->off = off;
	c->len = len;
	c->next = NULL;
	memcpy(c->data, buf, len);
	if (t->tail != NULL)
		t->tail->next = c;
	else
		t->head = c;
	t->tail = c;
	return (ssize_t)len;
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode, bool at)
{
	setup();
	int fd = at ? real_openat(dirfd, path, flags, mode) : real_open(path, flags, mode);
	if (fd >= 0 && dirlen > 0 && (!at || dirfd == AT_FDCWD || path[0] == '/'))
		track(fd, path, flags);
	return fd;
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return open_common(AT_FDCWD, path, flags, mode, false);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return open_common(dirfd, path, flags, mode, true);
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int __open_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags, 0, false);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

int creat(const char *path, mode_t mode)
{
	return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, false);
}

int creat64(const char *path, mode_t mode) __attribute__((alias("creat")));

ssize_t write(int fd, const void *buf, size_t len)
{
	setup();
	if (tracked_fd(fd)) {
		pthread_mutex_lock(&mu);
		ssize_t n = fds[fd].on ? buffer_locked(fd, buf, len, -1) : -2;
		pthread_mutex_unlock(&mu);
		if (n != -2)
			return n;
	}
	return real_write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	setup();
	if (tracked_fd(fd)) {
		pthread_mutex_lock(&mu);
		ssize_t n =
		        fds[fd].on ? buffer_locked(fd, buf, len, fds[fd].append ? -1 : off) : -2;
		pthread_mutex_unlock(&mu);
		if (n != -2)
			return n;
	}
	return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) __attribute__((alias("pwrite")));

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	setup();
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	char *flat = malloc(total > 0 ? total : 1);
	if (flat == NULL) {
		errno = ENOMEM;
		return -1;
	}
	size_t at = 0;
	for (int i = 0; i < n; i++) {
		memcpy(flat + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	ssize_t rv = write(fd, flat, total);
	free(flat);
	return rv;
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	setup();
	ssize_t total = 0;
	for (int i = 0; i < n; i++) {
		ssize_t w = pwrite(fd, iov[i].iov_base, iov[i].iov_len, off + total);
		if (w < 0)
			return total > 0 ? total : w;
		total += w;
	}
	return total;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t off)
        __attribute__((alias("pwritev")));

/* A read sees what was written, as the page cache would show it. */
static void flush_for_read(int fd)
{
	if (tracked_fd(fd)) {
		pthread_mutex_lock(&mu);
		if (fds[fd].on)
			flush_locked(fd);
		pthread_mutex_unlock(&mu);
	}
}

ssize_t read(int fd, void *buf, size_t len)
{
	setup();
	flush_for_read(fd);
	return real_read(fd, buf, len);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	setup();
	flush_for_read(fd);
	return real_pread(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off) __attribute__((alias("pread")));

static int sync_common(int fd, int (*real)(int))
{
	setup();
	if (tracked_fd(fd)) {
		pthread_mutex_lock(&mu);
		int rv = 0;
		if (fds[fd].on && !fds[fd].ignore_sync)
			rv = flush_locked(fd);
		pthread_mutex_unlock(&mu);
		if (rv != 0)
			return rv;
		if (fds[fd].ignore_sync)
			return 0; /* "synced" */
	}
	return real(fd);
}

int fsync(int fd)
{
	setup();
	return sync_common(fd, real_fsync);
}

int fdatasync(int fd)
{
	setup();
	return sync_common(fd, real_fdatasync);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	(void)off, (void)n, (void)flags;
	setup();
	return sync_common(fd, real_fdatasync);
}

int ftruncate(int fd, off_t len)
{
	setup();
	if (tracked_fd(fd)) {
		pthread_mutex_lock(&mu);
		if (fds[fd].on) {
			flush_locked(fd);
			fds[fd].pos = len < fds[fd].pos ? len : fds[fd].pos;
		}
		pthread_mutex_unlock(&mu);
	}
	return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

int close(int fd)
{
	setup();
	if (tracked_fd(fd)) {
		pthread_mutex_lock(&mu);
		if (fds[fd].on)
			flush_locked(fd);
		fds[fd].on = false;
		pthread_mutex_unlock(&mu);
	}
	return real_close(fd);
}
