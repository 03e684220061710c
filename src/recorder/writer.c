/*
 * writer: one thread that turns waiting Record calls into shared synced
 * writes. See writer.h.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "util.h"

/* One waiting call; lives on the caller's stack. */
struct job {
	Noetl__Record *const *recs; /* borrowed */
	size_t n;
	int rc;           /* result, valid once done */
	uint64_t last;    /* revision of the last record */
	bool done;        /* the writer finished with it */
	struct job *next; /* queue link */
};

struct recorder_writer {
	struct recorder_store *store; /* borrowed */
	size_t group;                 /* records per write, at most (soft) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;     /* writer: work arrived or stop */
	pthread_cond_t done;     /* callers: a group finished */
	struct job *head, *tail; /* waiting calls, oldest first */
	bool stop;
	bool started;
	uint64_t writes, records; /* stats */
	Noetl__Record **all;      /* the group's records; writer thread only */
	size_t allcap;
};

/* Takes a group of jobs off the queue (under mu). */
static struct job *take_group(struct recorder_writer *w, size_t *count)
{
	struct job *first = w->head, *last = w->head;
	size_t n = first->n;
	while (last->next != NULL && n + last->next->n <= w->group) {
		last = last->next;
		n += last->n;
	}
	w->head = last->next;
	if (w->head == NULL)
		w->tail = NULL;
	last->next = NULL;
	*count = n;
	return first;
}

static int gather(struct recorder_writer *w, struct job *jobs, size_t count)
{
	if (count > w->allcap) {
		Noetl__Record **na = realloc(w->all, count * sizeof(*na));
		if (na == NULL)
			return -ENOMEM;
		w->all = na;
		w->allcap = count;
	}
	size_t k = 0;
	for (struct job *j = jobs; j != NULL; j = j->next)
		for (size_t i = 0; i < j->n; i++)
			w->all[k++] = j->recs[i];
	return 0;
}

static void *run(void *arg)
{
	struct recorder_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->wake, &w->mu);
		if (w->head == NULL)
			break; /* stopping, and every call was served */
		size_t count;
		struct job *jobs = take_group(w, &count);
		pthread_mutex_unlock(&w->mu);

		uint64_t last = 0;
		int rc = gather(w, jobs, count);
		if (rc == 0)
			rc = recorder_store_append(w->store, w->all, count, util_now_ms(), &last);

		pthread_mutex_lock(&w->mu);
		if (rc == 0) {
			w->writes++;
			w->records += count;
		}
		uint64_t rev = last - count; /* revision before the group's first */
		for (struct job *j = jobs; j != NULL;) {
			struct job *next = j->next;
			rev += j->n;
			j->rc = rc;
			j->last = rc == 0 ? rev : 0;
			j->done = true; /* j may be gone once the lock is released */
			j = next;
		}
		pthread_cond_broadcast(&w->done);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int recorder_writer_create(struct recorder_store *s, size_t group_records,
                           struct recorder_writer **out)
{
	struct recorder_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->store = s;
	w->group = group_records != 0 ? group_records : 8192;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->done, NULL);
	int rc = pthread_create(&w->thread, NULL, run, w);
	if (rc != 0) {
		log_error("recorder: cannot start the writer thread: error %d", rc);
		recorder_writer_destroy(w);
		return -rc;
	}
	w->started = true;
	*out = w;
	return 0;
}

void recorder_writer_destroy(struct recorder_writer *w)
{
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->mu);
	free(w->all);
	free(w);
}

int recorder_writer_submit(struct recorder_writer *w, Noetl__Record *const *recs, size_t n,
                           uint64_t *last)
{
	if (n == 0)
		return -EINVAL;
	struct job j = {.recs = recs, .n = n};
	pthread_mutex_lock(&w->mu);
	if (w->stop) {
		pthread_mutex_unlock(&w->mu);
		return -ESHUTDOWN;
	}
	if (w->tail != NULL)
		w->tail->next = &j;
	else
		w->head = &j;
	w->tail = &j;
	pthread_cond_signal(&w->wake);
	while (!j.done)
		pthread_cond_wait(&w->done, &w->mu);
	pthread_mutex_unlock(&w->mu);
	if (j.rc == 0)
		*last = j.last;
	return j.rc;
}

void recorder_writer_stats(struct recorder_writer *w, uint64_t *writes, uint64_t *records)
{
	pthread_mutex_lock(&w->mu);
	*writes = w->writes;
	*records = w->records;
	pthread_mutex_unlock(&w->mu);
}
