/*
 * report: batched, bounded shipping of records to the Recorder. See report.h.
 */
#include "report.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define BATCH 256

struct item {
	uint8_t *buf;
	size_t len;
};

struct report {
	struct rpc_client *client;
	char *token;
	size_t max_bytes;
	pthread_mutex_t mu;
	pthread_cond_t more;  /* items added, or stop */
	pthread_cond_t space; /* items sent */
	struct item *ring;    /* circular buffer */
	size_t cap, head, count, bytes;
	bool stop;
	uint64_t sent;
	pthread_t thread;
};

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = ts.tv_nsec + (int64_t)ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_cond_timedwait(cv, mu, &ts);
}

/* Sends items[0..n) in one call; true on success. */
static bool send_batch(struct report *r, struct item *items, size_t n)
{
	/* A RecordRequest is field 1 repeated: tag, length, packed Record. */
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += items[i].len + 11;
	uint8_t *buf = malloc(total > 0 ? total : 1);
	if (buf == NULL)
		return false;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		buf[off++] = 0x0a;
		uint64_t v = items[i].len;
		do {
			uint8_t b = v & 0x7f;
			v >>= 7;
			buf[off++] = v ? (uint8_t)(b | 0x80) : b;
		} while (v);
		memcpy(buf + off, items[i].buf, items[i].len);
		off += items[i].len;
	}
	Noetl__RecordRequest *req = noetl__record_request__unpack(NULL, off, buf);
	free(buf);
	if (req == NULL) {
		log_error("executor: a batch of records does not pack; %zu records dropped", n);
		return true; /* a bug, not an outage: do not retry forever */
	}
	struct rpc_call_options o = {.timeout_ms = 10000, .token = r->token};
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = rpc_call(r->client, &noetl__recorder__descriptor, "Record", &req->base, &o, &out,
	                  &err);
	noetl__record_request__free_unpacked(req, NULL);
	if (st == NOETL__STATUS__OK) {
		protobuf_c_message_free_unpacked(out, NULL);
		return true;
	}
	if (st == NOETL__STATUS__INVALID_ARGUMENT) {
		log_error("executor: the recorder refused %zu records: %s", n, err ? err : "");
		free(err);
		return true;
	}
	log_warn("executor: recording %zu records failed (will retry): %s", n, err ? err : "");
	free(err);
	return false;
}

static void *run(void *arg)
{
	struct report *r = arg;
	struct item batch[BATCH];
	int backoff = 100;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->count == 0 && !r->stop)
			timed_wait(&r->more, &r->mu, 1000);
		if (r->count == 0 && r->stop)
			break;
		size_t n = r->count < BATCH ? r->count : BATCH;
		for (size_t i = 0; i < n; i++)
			batch[i] = r->ring[(r->head + i) % r->cap];
		bool stopping = r->stop;
		pthread_mutex_unlock(&r->mu);
		bool ok = send_batch(r, batch, n);
		pthread_mutex_lock(&r->mu);
		if (ok) {
			for (size_t i = 0; i < n; i++) {
				r->bytes -= batch[i].len;
				free(batch[i].buf);
			}
			r->head = (r->head + n) % r->cap;
			r->count -= n;
			r->sent += n;
			backoff = 100;
			pthread_cond_broadcast(&r->space);
		} else if (stopping) {
			break; /* shutting down and the recorder is away */
		} else {
			timed_wait(&r->more, &r->mu, backoff);
			backoff = backoff < 2000 ? backoff * 2 : 2000;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int report_create(struct rpc_client *client, const char *token, size_t max_bytes,
                  struct report **out)
{
	struct report *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->client = client;
	r->token = util_xstrdup(token);
	r->max_bytes = max_bytes > 0 ? max_bytes : 32u << 20;
	r->cap = 1024;
	r->ring = calloc(r->cap, sizeof(*r->ring));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->more, NULL);
	pthread_cond_init(&r->space, NULL);
	if (r->ring == NULL || pthread_create(&r->thread, NULL, run, r) != 0) {
		free(r->ring);
		free(r->token);
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void report_add(struct report *r, const Noetl__Record *rec)
{
	size_t n = noetl__record__get_packed_size(rec);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		abort();
	noetl__record__pack(rec, buf);
	pthread_mutex_lock(&r->mu);
	while (r->bytes + n > r->max_bytes && r->count > 0 && !r->stop)
		timed_wait(&r->space, &r->mu, 1000);
	if (r->count == r->cap) {
		struct item *nr = calloc(r->cap * 2, sizeof(*nr));
		if (nr == NULL)
			abort();
		for (size_t i = 0; i < r->count; i++)
			nr[i] = r->ring[(r->head + i) % r->cap];
		free(r->ring);
		r->ring = nr;
		r->head = 0;
		r->cap *= 2;
	}
	r->ring[(r->head + r->count) % r->cap] = (struct item){buf, n};
	r->count++;
	r->bytes += n;
	pthread_cond_signal(&r->more);
	pthread_mutex_unlock(&r->mu);
}

void report_counts(struct report *r, uint64_t *sent, uint64_t *pending)
{
	pthread_mutex_lock(&r->mu);
	*sent = r->sent;
	*pending = r->count;
	pthread_mutex_unlock(&r->mu);
}

void report_destroy(struct report *r, int flush_ms)
{
	if (r == NULL)
		return;
	int64_t deadline = util_mono_ms() + flush_ms;
	pthread_mutex_lock(&r->mu);
	while (r->count > 0 && util_mono_ms() < deadline)
		timed_wait(&r->space, &r->mu, 50);
	r->stop = true;
	pthread_cond_broadcast(&r->more);
	pthread_cond_broadcast(&r->space);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	if (r->count > 0)
		log_warn("executor: %zu records were not delivered to the recorder", r->count);
	for (size_t i = 0; i < r->count; i++)
		free(r->ring[(r->head + i) % r->cap].buf);
	free(r->ring);
	free(r->token);
	pthread_cond_destroy(&r->more);
	pthread_cond_destroy(&r->space);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
