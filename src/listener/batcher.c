#include "batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

struct listener_batcher {
	struct listener_batcher_options o;
	char *token;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct listener_batch_job *head, *tail; /* waiting jobs, FIFO */
	size_t pending;                         /* items in them */
	bool stop;
	pthread_t *threads;
	int nthreads;
	struct listener_batcher_stats st; /* under mu */
};

/* Statuses that one request of a batch may have caused alone. */
static bool splittable(int st)
{
	switch (st) {
	case NOETL__STATUS__RESOURCE_EXHAUSTED:
	case NOETL__STATUS__INVALID_ARGUMENT:
	case NOETL__STATUS__FAILED_PRECONDITION:
	case NOETL__STATUS__NOT_FOUND:
	case NOETL__STATUS__ALREADY_EXISTS:
	case NOETL__STATUS__OUT_OF_RANGE:
	case NOETL__STATUS__PERMISSION_DENIED:
		return true;
	default:
		return false;
	}
}

static void count(struct listener_batcher *b, size_t items, size_t jobs, bool failed)
{
	pthread_mutex_lock(&b->mu);
	b->st.calls++;
	b->st.items += items;
	b->st.jobs += jobs;
	if (failed)
		b->st.failures++;
	pthread_mutex_unlock(&b->mu);
}

/*
 * One Enqueue of the items of jobs[0..n); on a failure that one job may
 * have caused, the jobs are tried again in smaller groups: per tenant for
 * RESOURCE_EXHAUSTED (depth limits are per tenant), else one by one.
 * by_tenant: the jobs already share one tenant.
 */
static void send_jobs(struct listener_batcher *b, struct listener_batch_job **jobs, size_t n,
                      bool by_tenant)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += jobs[i]->n;
	Noetl__Item **items = malloc((total > 0 ? total : 1) * sizeof(*items));
	if (items == NULL) {
		for (size_t i = 0; i < n; i++)
			jobs[i]->done(jobs[i], NOETL__STATUS__RESOURCE_EXHAUSTED,
			              "the listener is out of memory", NULL);
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < jobs[i]->n; j++)
			items[k++] = jobs[i]->items[j];
	Noetl__EnqueueRequest req = NOETL__ENQUEUE_REQUEST__INIT;
	req.n_items = total;
	req.items = items;
	struct rpc_call_options o = {.timeout_ms = b->o.call_timeout_ms, .token = b->token};
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int64_t t0 = util_mono_us();
	int st = rpc_call(b->o.queue, &noetl__queue__descriptor, "Enqueue", &req.base, &o, &out,
	                  &err);
	metric_observe(b->o.call_seconds, NULL, (double)(util_mono_us() - t0) / 1e6);
	free(items);
	Noetl__EnqueueReply *rep = (Noetl__EnqueueReply *)out;
	if (st == NOETL__STATUS__OK && rep->n_results != total) {
		st = NOETL__STATUS__INTERNAL;
		free(err);
		err = strdup("the queue answered a different number of results");
	}
	count(b, total, st == NOETL__STATUS__OK ? n : 0, st != NOETL__STATUS__OK);
	if (st == NOETL__STATUS__OK) {
		size_t off = 0;
		for (size_t i = 0; i < n; i++) {
			size_t jn = jobs[i]->n; /* done() frees the job */
			jobs[i]->done(jobs[i], st, NULL, rep->results + off);
			off += jn;
		}
		protobuf_c_message_free_unpacked(out, NULL);
		return;
	}
	if (n > 1 && splittable(st)) {
		log_debug("listener: a batch of %zu requests failed (%s); retrying them apart", n,
		          rpc_status_name(st));
		free(err);
		if (st == NOETL__STATUS__RESOURCE_EXHAUSTED && !by_tenant) {
			/* group by tenant, keeping the order within each */
			bool *done = calloc(n, sizeof(bool));
			struct listener_batch_job **grp = malloc(n * sizeof(*grp));
			if (done == NULL || grp == NULL) {
				free(done);
				free(grp);
				goto one_by_one;
			}
			for (size_t i = 0; i < n; i++) {
				if (done[i])
					continue;
				size_t g = 0;
				for (size_t j = i; j < n; j++) {
					if (!done[j] &&
					    strcmp(jobs[j]->tenant, jobs[i]->tenant) == 0) {
						done[j] = true;
						grp[g++] = jobs[j];
					}
				}
				if (g == n) {
					/* one tenant only: its quota it is */
					free(done);
					free(grp);
					for (size_t x = 0; x < n; x++)
						jobs[x]->done(jobs[x],
						              NOETL__STATUS__RESOURCE_EXHAUSTED,
						              "the tenant's queue is full", NULL);
					return;
				}
				send_jobs(b, grp, g, true);
			}
			free(done);
			free(grp);
			return;
		}
		if (st == NOETL__STATUS__RESOURCE_EXHAUSTED) {
			for (size_t i = 0; i < n; i++)
				jobs[i]->done(jobs[i], st, "the tenant's queue is full", NULL);
			return;
		}
	one_by_one:
		for (size_t i = 0; i < n; i++)
			send_jobs(b, &jobs[i], 1, true);
		return;
	}
	for (size_t i = 0; i < n; i++)
		jobs[i]->done(jobs[i], st, err != NULL ? err : rpc_status_name(st), NULL);
	free(err);
}

static void *sender(void *arg)
{
	struct listener_batcher *b = arg;
	size_t cap = 64;
	struct listener_batch_job **jobs = malloc(cap * sizeof(*jobs));
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (b->head == NULL && !b->stop)
			pthread_cond_wait(&b->cv, &b->mu);
		if (b->stop)
			break;
		if (b->o.linger_us > 0 && b->pending < b->o.max_batch) {
			/* wait for company until the batch is full or linger_us passed */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)b->o.linger_us * 1000;
			while (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			while (!b->stop && b->pending < b->o.max_batch &&
			       pthread_cond_timedwait(&b->cv, &b->mu, &ts) == 0)
				;
			if (b->head == NULL || b->stop)
				continue;
		}
		/* Take jobs up to max_batch items; the first one whatever its size. */
		size_t n = 0, total = 0;
		while (b->head != NULL && (n == 0 || total + b->head->n <= b->o.max_batch)) {
			if (n == cap || jobs == NULL) {
				struct listener_batch_job **nj =
				        realloc(jobs, cap * 2 * sizeof(*jobs));
				if (nj == NULL)
					break;
				jobs = nj;
				cap *= 2;
			}
			struct listener_batch_job *j = b->head;
			b->head = j->next;
			if (b->head == NULL)
				b->tail = NULL;
			jobs[n++] = j;
			total += j->n;
		}
		b->pending -= total;
		if (b->head != NULL)
			pthread_cond_signal(&b->cv); /* more for another sender */
		pthread_mutex_unlock(&b->mu);
		if (n > 0)
			send_jobs(b, jobs, n, false);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	free(jobs);
	return NULL;
}

int listener_batcher_create(const struct listener_batcher_options *opt,
                            struct listener_batcher **out)
{
	struct listener_batcher *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->o = *opt;
	if (b->o.senders <= 0)
		b->o.senders = 2;
	if (b->o.max_batch == 0)
		b->o.max_batch = 1000;
	if (b->o.max_pending == 0)
		b->o.max_pending = 100000;
	if (b->o.call_timeout_ms <= 0)
		b->o.call_timeout_ms = 5000;
	b->token = opt->token != NULL ? strdup(opt->token) : NULL;
	b->o.token = NULL;
	b->threads = calloc((size_t)b->o.senders, sizeof(pthread_t));
	if (b->threads == NULL || (opt->token != NULL && b->token == NULL)) {
		free(b->threads);
		free(b->token);
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	for (; b->nthreads < b->o.senders; b->nthreads++) {
		if (pthread_create(&b->threads[b->nthreads], NULL, sender, b) != 0) {
			listener_batcher_destroy(b);
			return -EAGAIN;
		}
		pthread_setname_np(b->threads[b->nthreads], "listener:enq"); /* for perf, top */
	}
	*out = b;
	return 0;
}

void listener_batcher_destroy(struct listener_batcher *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	for (int i = 0; i < b->nthreads; i++)
		pthread_join(b->threads[i], NULL);
	struct listener_batch_job *j = b->head;
	b->head = b->tail = NULL;
	while (j != NULL) {
		struct listener_batch_job *next = j->next;
		j->done(j, NOETL__STATUS__UNAVAILABLE, "the listener is shutting down", NULL);
		j = next;
	}
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b->threads);
	free(b->token);
	free(b);
}

int listener_batcher_submit(struct listener_batcher *b, struct listener_batch_job *job)
{
	pthread_mutex_lock(&b->mu);
	if (b->stop) {
		pthread_mutex_unlock(&b->mu);
		return -ESHUTDOWN;
	}
	if (b->pending > 0 && b->pending + job->n > b->o.max_pending) {
		b->st.refused++;
		pthread_mutex_unlock(&b->mu);
		return -EAGAIN;
	}
	job->next = NULL;
	if (b->tail != NULL)
		b->tail->next = job;
	else
		b->head = job;
	b->tail = job;
	b->pending += job->n;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

void listener_batcher_stats(struct listener_batcher *b, struct listener_batcher_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->st;
	out->pending = b->pending;
	pthread_mutex_unlock(&b->mu);
}
