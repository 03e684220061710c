/*
 * sandbox: what a runner process gives up once its module is loaded. See
 * sandbox.c for the list and the reasons.
 */
#ifndef NOETL_SANDBOX_H
#define NOETL_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

/*
 * Locks the calling process down: closes every fd but 0, 1, 2 and channel,
 * sets no_new_privs and resource limits (no core files, no new files or
 * processes, address space = what is mapped now + as_slack bytes), and
 * installs a seccomp filter that allows only reading channel, writing
 * channel or stderr, memory management without PROT_EXEC, clocks, sleeping,
 * random bytes, signals to itself and exiting. A forbidden system call
 * raises SIGSYS, whose handler writes a FRAME_CRASH naming the call to
 * channel and exits. Returns 0 or -errno with a message in err. Irreversible.
 */
int sandbox_enter(int channel, uint64_t as_slack, char *err, size_t errcap);

/* Name of a system call number for messages ("openat"), or "?". */
const char *sandbox_syscall_name(long nr);

#endif
