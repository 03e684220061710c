/*
 * keeper: extends the leases of the batches an executor is running.
 *
 * A lease must outlast the run of its batch, and a batch of b events with a
 * deadline of t each may run b x t (a runner runs its events one after the
 * other). Leasing for that long makes a killed executor's events wait just as
 * long before another executor gets them: with 64 events of 10 s, eleven
 * minutes. So leases are short (executor.lease, default 30 s) and this
 * thread extends the leases of every batch still running a third of a lease
 * before they run out. A killed or frozen executor extends nothing, and its
 * events come back one lease later whatever the batch.
 *
 * Workers hold a batch (the tokens are copied) from the lease until they
 * have settled it. An Extend that the Queue answers NOT_FOUND means the
 * lease was lost (it ran out first: the Queue was away longer than the
 * margin); that item may run elsewhere too, which at-least-once allows; it
 * is counted and no longer extended. An Extend that fails as a whole (it
 * gives up after a quarter of a lease) is tried again at the next tick: the
 * margin is two ticks.
 */
#include "keeper.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "queue.pb-c.h"
#include "util.h"

struct keeper_batch {
	struct keeper_batch *next;
	size_t n;
	ProtobufCBinaryData *tokens; /* owned copies; len 0 once lost */
};

struct keeper {
	struct rpc_client *queue; /* borrowed */
	char *token;              /* credentials for the Queue (owned) */
	uint32_t lease_ms;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;  /* stop */
	bool stop;
	struct keeper_batch *held;
	uint64_t extended, lost;
};

/* Extends the leases of every held batch (outside the lock: copies). */
static void extend_all(struct keeper *k)
{
	pthread_mutex_lock(&k->mu);
	size_t n = 0;
	for (struct keeper_batch *b = k->held; b != NULL; b = b->next)
		for (size_t i = 0; i < b->n; i++)
			n += b->tokens[i].len > 0;
	ProtobufCBinaryData *leases = n > 0 ? calloc(n, sizeof(*leases)) : NULL;
	size_t m = 0;
	for (struct keeper_batch *b = k->held; leases != NULL && b != NULL; b = b->next) {
		for (size_t i = 0; i < b->n; i++) {
			if (b->tokens[i].len == 0)
				continue;
			leases[m].len = b->tokens[i].len;
			leases[m].data = malloc(b->tokens[i].len);
			if (leases[m].data == NULL)
				abort();
			memcpy(leases[m].data, b->tokens[i].data, b->tokens[i].len);
			m++;
		}
	}
	pthread_mutex_unlock(&k->mu);
	if (m == 0) {
		free(leases);
		return;
	}

	Noetl__ExtendRequest req = NOETL__EXTEND_REQUEST__INIT;
	req.leases = leases;
	req.n_leases = m;
	req.lease_ms = k->lease_ms;
	struct rpc_call_options o = {.timeout_ms = (int)(k->lease_ms / 4), .token = k->token};
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = rpc_call(k->queue, &noetl__queue__descriptor, "Extend", &req.base, &o, &out, &err);
	if (st != NOETL__STATUS__OK) {
		log_warn("executor: extending %zu leases failed (tried again in %u ms): %s", m,
		         k->lease_ms / 3, err != NULL ? err : rpc_status_name(st));
		free(err);
	} else {
		Noetl__AckReply *r = (Noetl__AckReply *)out;
		size_t lost = 0;
		pthread_mutex_lock(&k->mu);
		size_t ok = 0;
		for (size_t i = 0; i < m && i < r->n_results; i++) {
			if (r->results[i]->status == NOETL__STATUS__OK) {
				ok++;
				continue;
			}
			/* Lost, if its batch is still held: a batch released since
			 * (settled: its Ack may have come first) does not count. */
			for (struct keeper_batch *b = k->held; b != NULL; b = b->next) {
				for (size_t j = 0; j < b->n; j++) {
					if (b->tokens[j].len == leases[i].len &&
					    memcmp(b->tokens[j].data, leases[i].data,
					           leases[i].len) == 0) {
						b->tokens[j].len = 0;
						lost++;
					}
				}
			}
		}
		k->extended += ok;
		k->lost += lost;
		pthread_mutex_unlock(&k->mu);
		if (lost > 0)
			log_warn("executor: %zu leases had run out before they were extended; "
			         "those events may run twice",
			         lost);
		protobuf_c_message_free_unpacked(out, NULL);
	}
	for (size_t i = 0; i < m; i++)
		free(leases[i].data);
	free(leases);
}

static void *keeper_main(void *arg)
{
	struct keeper *k = arg;
	/* Ticks keep their schedule (every lease / 3 from the start) however
	 * long an Extend takes, so a slow or failed one does not eat the margin. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)(k->lease_ms / 3) * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &ts) != ETIMEDOUT)
			;
		if (k->stop)
			break;
		pthread_mutex_unlock(&k->mu);
		extend_all(k);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

int keeper_create(struct rpc_client *queue, const char *token, uint32_t lease_ms,
                  struct keeper **out)
{
	if (lease_ms < 3)
		return -EINVAL;
	struct keeper *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	k->queue = queue;
	k->token = token != NULL ? util_xstrdup(token) : NULL;
	k->lease_ms = lease_ms;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
		keeper_destroy(k);
		return -EAGAIN;
	}
	k->started = true;
	pthread_setname_np(k->thread, "executor:keep"); /* for perf and top */
	*out = k;
	return 0;
}

void keeper_destroy(struct keeper *k)
{
	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	if (k->started)
		pthread_join(k->thread, NULL);
	while (k->held != NULL) {
		struct keeper_batch *b = k->held;
		k->held = b->next;
		for (size_t i = 0; i < b->n; i++)
			free(b->tokens[i].data);
		free(b->tokens);
		free(b);
	}
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k->token);
	free(k);
}

struct keeper_batch *keeper_hold(struct keeper *k, Noetl__Leased *const *items, size_t n)
{
	struct keeper_batch *b = calloc(1, sizeof(*b));
	ProtobufCBinaryData *t = calloc(n > 0 ? n : 1, sizeof(*t));
	if (b == NULL || t == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		t[i].len = items[i]->lease.len;
		t[i].data = malloc(t[i].len > 0 ? t[i].len : 1);
		if (t[i].data == NULL)
			abort();
		memcpy(t[i].data, items[i]->lease.data, t[i].len);
	}
	b->n = n;
	b->tokens = t;
	pthread_mutex_lock(&k->mu);
	b->next = k->held;
	k->held = b;
	pthread_mutex_unlock(&k->mu);
	return b;
}

void keeper_release(struct keeper *k, struct keeper_batch *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	for (struct keeper_batch **p = &k->held; *p != NULL; p = &(*p)->next) {
		if (*p == b) {
			*p = b->next;
			break;
		}
	}
	pthread_mutex_unlock(&k->mu);
	for (size_t i = 0; i < b->n; i++)
		free(b->tokens[i].data);
	free(b->tokens);
	free(b);
}

void keeper_stats(struct keeper *k, uint64_t *extended, uint64_t *lost)
{
	pthread_mutex_lock(&k->mu);
	*extended = k->extended;
	*lost = k->lost;
	pthread_mutex_unlock(&k->mu);
}
