/*
 * fake_queue: a noetl.Queue that only records Enqueue calls, for the tests
 * of Control's scheduler. It keeps every item it was sent (including
 * repeats), recognises idempotency keys like the real Queue (a repeat is
 * answered duplicate = true), and can be told to drop its reply after
 * recording, which is what a crash of Control between the Queue's write and
 * its own bookkeeping looks like from Control's side. The other methods
 * answer UNIMPLEMENTED.
 */
#ifndef NOETL_TEST_FAKE_QUEUE_H
#define NOETL_TEST_FAKE_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "queue.pb-c.h"

#define FAKE_QUEUE_MAX 256

struct fake_item {
	char tenant[64], queue[128], event[128], package[128], key[512], id[32];
	char payload[256];
	unsigned max_attempts; /* from the retry policy, 0 if none */
	bool duplicate;        /* its key had been seen */
};

struct fake_queue {
	Noetl__Queue_Service svc;               /* first: handlers cast back */
	pthread_mutex_t mu;                     /* guards everything below */
	struct fake_item items[FAKE_QUEUE_MAX]; /* every enqueue received, in order */
	size_t n;                               /* count */
	bool fail_after_record;                 /* record, then answer UNAVAILABLE */
	bool refuse;                            /* answer UNAVAILABLE without recording */
};

void fake_queue_init(struct fake_queue *q);
void fake_queue_release(struct fake_queue *q);
/* Items whose key was new (not duplicates). */
size_t fake_queue_unique(struct fake_queue *q);

#endif
