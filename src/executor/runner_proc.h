/*
 * runner_proc: the engine's handle on one runner process: starting it,
 * non-blocking frame I/O over its socket, and ending it.
 *
 * Threads: a handle is used by one thread at a time (the engine hands it
 * over under its lock).
 */
#ifndef NOETL_RUNNER_PROC_H
#define NOETL_RUNNER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"
#include "frame.h"

struct runner_proc {
	pid_t pid;     /* the process, 0 once reaped */
	int fd;        /* our end of the socketpair (non-blocking) */
	uint8_t *in;   /* received bytes */
	size_t in_off; /* start of the unread part */
	size_t in_len; /* end of received bytes */
	size_t in_cap;
	size_t in_skip;   /* bytes of the frame last returned, dropped on the next call */
	struct fbuf out;  /* bytes queued for the runner */
	size_t out_off;   /* how much of out is sent */
	size_t max_frame; /* larger frames are a protocol error (default FRAME_MAX) */
};

/*
 * Starts path with argv (argv[0] included, NULL-terminated) and the channel
 * on its fd 3; stdin and stdout are /dev/null, stderr is ours. Returns 0 or
 * -errno with a message in err.
 */
int runner_proc_spawn(const char *path, char *const argv[], struct runner_proc **out, char *err,
                      size_t errcap);

/* Queues a BATCH frame and its EVENT frames (payloads are copied). Returns
 * 0 or -ENOMEM. */
int runner_proc_queue_batch(struct runner_proc *r, const char *fn,
                            const struct engine_event *events, size_t n);

/* True while queued bytes wait to be sent. */
bool runner_proc_wants_write(const struct runner_proc *r);

/* Sends what the socket takes now. Returns 0, or -EPIPE if the runner is
 * gone, or another -errno. */
int runner_proc_flush(struct runner_proc *r);

/* Reads what is available now. Returns the bytes read (> 0), 0 at end of
 * stream, -EAGAIN if nothing is there, or another -errno. */
int runner_proc_fill(struct runner_proc *r);

/*
 * Returns 1 and the next complete frame's type and payload (valid until the
 * next call), 0 if no complete frame is buffered, or -EPROTO if the runner
 * announced a frame longer than max_frame (so a runner cannot make the
 * engine buffer more than that).
 */
int runner_proc_frame(struct runner_proc *r, uint8_t *type, struct fin *payload);

/* Blocks until a frame arrives or deadline_ms (util_mono_ms) passes.
 * Returns 1 with the frame, 0 at end of stream, -ETIMEDOUT, or -errno. */
int runner_proc_wait_frame(struct runner_proc *r, int64_t deadline_ms, uint8_t *type,
                           struct fin *payload);

/* Kills the process (SIGKILL) if it still runs, reaps it and returns its
 * wait status (or -1 if it was already reaped). The handle stays valid. */
int runner_proc_kill(struct runner_proc *r);

/* Writes a sentence about how a process ended ("runner killed by signal 11
 * (Segmentation fault)") for a wait status. */
void runner_proc_describe_exit(int status, char *buf, size_t cap);

/* Kills and reaps the process if needed and frees the handle; accepts NULL. */
void runner_proc_destroy(struct runner_proc *r);

#endif
