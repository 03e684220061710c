#include "workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct task {
	struct task *next;
	listener_workq_fn fn;
	void *arg;
};

struct listener_workq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct task *head, *tail;
	size_t waiting;
	size_t max;
	bool stop;
	pthread_t *threads;
	int nthreads;
};

static void *run(void *arg)
{
	struct listener_workq *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->head == NULL && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->stop)
			break;
		struct task *t = q->head;
		q->head = t->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->waiting--;
		pthread_mutex_unlock(&q->mu);
		t->fn(t->arg, 0);
		free(t);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int listener_workq_create(int threads, size_t max_waiting, struct listener_workq **out)
{
	struct listener_workq *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	if (threads <= 0)
		threads = 1;
	q->max = max_waiting > 0 ? max_waiting : 64;
	q->threads = calloc((size_t)threads, sizeof(pthread_t));
	if (q->threads == NULL) {
		free(q);
		return -ENOMEM;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	for (; q->nthreads < threads; q->nthreads++) {
		if (pthread_create(&q->threads[q->nthreads], NULL, run, q) != 0) {
			listener_workq_destroy(q);
			return -EAGAIN;
		}
	}
	*out = q;
	return 0;
}

void listener_workq_destroy(struct listener_workq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	struct task *t = q->head;
	while (t != NULL) {
		struct task *next = t->next;
		t->fn(t->arg, 1);
		free(t);
		t = next;
	}
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q->threads);
	free(q);
}

int listener_workq_submit(struct listener_workq *q, listener_workq_fn fn, void *arg)
{
	struct task *t = malloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	t->next = NULL;
	pthread_mutex_lock(&q->mu);
	int rv = q->stop ? -ESHUTDOWN : q->waiting >= q->max ? -EAGAIN : 0;
	if (rv == 0) {
		if (q->tail != NULL)
			q->tail->next = t;
		else
			q->head = t;
		q->tail = t;
		q->waiting++;
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	if (rv != 0)
		free(t);
	return rv;
}
