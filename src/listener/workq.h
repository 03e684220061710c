/*
 * workq: a few threads that run blocking tasks (the listener's Record calls
 * for /logs) off the HTTP threads, with a bounded backlog: a full queue
 * refuses instead of growing.
 *
 * Threads: submit from any thread; tasks run on the queue's threads.
 */
#ifndef NOETL_LISTENER_WORKQ_H
#define NOETL_LISTENER_WORKQ_H

#include <stddef.h>

struct listener_workq;

/* A task; cancelled is true when the queue is being destroyed and the task
 * must only clean up (and answer its request with an error). */
typedef void (*listener_workq_fn)(void *arg, int cancelled);

int listener_workq_create(int threads, size_t max_waiting, struct listener_workq **out);

/* Runs the tasks in progress to the end, calls the waiting ones with
 * cancelled = 1, joins and frees. Accepts NULL. */
void listener_workq_destroy(struct listener_workq *q);

/* 0, or -EAGAIN when max_waiting tasks wait already, -ESHUTDOWN, -ENOMEM.
 * fn is not called when submit fails. */
int listener_workq_submit(struct listener_workq *q, listener_workq_fn fn, void *arg);

#endif
