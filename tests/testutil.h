/*
 * testutil: what the test programs share: temporary directories, spawning
 * the real binaries, free ports, waiting for conditions.
 */
#ifndef NOETL_TESTUTIL_H
#define NOETL_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) and writes its path. */
void testutil_tempdir(char *out, size_t cap);

/* Removes a directory tree (like rm -rf); accepts paths that do not exist. */
void testutil_rmtree(const char *path);

/* Path of a built program, e.g. "src/queue/noetl-queue", under
 * $NOETL_BUILD_ROOT; written to out. */
void testutil_build_path(const char *rel, char *out, size_t cap);

/* Path of a source file under $NOETL_SOURCE_ROOT. */
void testutil_source_path(const char *rel, char *out, size_t cap);

/* Starts argv[0] with argv, stdout/stderr appended to log (NULL: inherited).
 * Returns the pid (aborts the test on failure). */
pid_t testutil_spawn(char *const argv[], const char *log);

/* Sends sig to pid and reaps it, with SIGKILL if it has not ended 30 s
 * later; returns the wait status. */
int testutil_kill(pid_t pid, int sig);

/* Waits for pid up to timeout_ms; returns its wait status or -1 on timeout. */
int testutil_wait(pid_t pid, int timeout_ms);

/* Runs a command line through /bin/sh, capturing its stdout (malloc'ed,
 * NUL-terminated) into *out if out is not NULL; stderr is not captured (add
 * "2>&1" to the command line for that). Returns the exit status (or
 * 128+signal). */
int testutil_run(const char *cmdline, char **out);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int testutil_free_port(void);

/* Reads a whole file (malloc'ed, NUL-terminated); NULL if it cannot. */
char *testutil_read_file(const char *path, size_t *len);

/* Writes a whole file; false on failure. */
bool testutil_write_file(const char *path, const void *data, size_t len);

/* Prints the stack of every thread of pid to stderr, one line a thread
 * ("watchdog: <label> pid P thread T 'name': innermost < caller < ..."),
 * from gdb; says so in one line when gdb is missing or cannot attach. */
void testutil_stacks(pid_t pid, const char *label);

/* Arms a watchdog for the calling test: if testutil_watchdog_stop has not
 * been called within seconds, it prints "watchdog: <what> still running
 * after N s" and the stacks of this process and of its child processes
 * (testutil_stacks), once, and lets the test run on into its timeout. A hang
 * then reports where it hangs instead of a bare "timed out". One watchdog a
 * process; not thread-safe against itself. */
void testutil_watchdog_start(const char *what, int seconds);

/* Disarms the watchdog (joins its thread); does nothing if none is armed. */
void testutil_watchdog_stop(void);

#endif
