#include "reporter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* One buffered entry: fixed size, so the ring is one allocation. */
struct tentry {
	char tenant[65];
	char event_id[UTIL_ID_SIZE + 37]; /* ids are ours (26) or a queue's (<= 64) */
	char event[129];
	char detail[64];
	Noetl__TimelineKind kind;
	int64_t time_ms;
};

struct listener_reporter {
	struct listener_reporter_options o;
	char *token;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tentry *ring; /* capacity entries, mapped (ring_bytes) */
	size_t ring_bytes;
	size_t head;  /* oldest */
	size_t count; /* buffered */
	size_t used;  /* entries [0, used) were written since the pages were last given back */
	bool stop;
	pthread_t thread;
	struct listener_reporter_stats st; /* under mu */
};

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

bool listener_reporter_add(struct listener_reporter *r, const char *tenant, const char *event_id,
                           const char *event, Noetl__TimelineKind kind, int64_t time_ms,
                           const char *detail)
{
	pthread_mutex_lock(&r->mu);
	if (r->count == r->o.capacity || r->stop) {
		r->st.dropped++;
		pthread_mutex_unlock(&r->mu);
		return false;
	}
	size_t at = (r->head + r->count) % r->o.capacity;
	struct tentry *e = &r->ring[at];
	if (at + 1 > r->used)
		r->used = at + 1;
	copy(e->tenant, sizeof(e->tenant), tenant);
	copy(e->event_id, sizeof(e->event_id), event_id);
	copy(e->event, sizeof(e->event), event);
	copy(e->detail, sizeof(e->detail), detail);
	e->kind = kind;
	e->time_ms = time_ms;
	r->count++;
	if (r->count >= r->o.batch)
		pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return true;
}

/* Sends entries[0..n) as one Record call. */
static bool send_batch(struct listener_reporter *r, struct tentry *v, size_t n)
{
	Noetl__Record *recs = calloc(n, sizeof(*recs));
	Noetl__TimelineEntry *tl = calloc(n, sizeof(*tl));
	Noetl__Record **ptrs = calloc(n, sizeof(*ptrs));
	int st = NOETL__STATUS__RESOURCE_EXHAUSTED;
	char *err = NULL;
	if (recs != NULL && tl != NULL && ptrs != NULL) {
		for (size_t i = 0; i < n; i++) {
			noetl__timeline_entry__init(&tl[i]);
			tl[i].tenant = v[i].tenant;
			tl[i].event_id = v[i].event_id;
			tl[i].event = v[i].event;
			tl[i].detail = v[i].detail;
			tl[i].kind = v[i].kind;
			tl[i].time_ms = v[i].time_ms;
			noetl__record__init(&recs[i]);
			recs[i].kind_case = NOETL__RECORD__KIND_TIMELINE;
			recs[i].timeline = &tl[i];
			ptrs[i] = &recs[i];
		}
		Noetl__RecordRequest req = NOETL__RECORD_REQUEST__INIT;
		req.n_records = n;
		req.records = ptrs;
		struct rpc_call_options o = {.timeout_ms = r->o.call_timeout_ms, .token = r->token};
		ProtobufCMessage *out = NULL;
		st = rpc_call(r->o.recorder, &noetl__recorder__descriptor, "Record", &req.base, &o,
		              &out, &err);
		if (out != NULL)
			protobuf_c_message_free_unpacked(out, NULL);
	}
	free(recs);
	free(tl);
	free(ptrs);
	pthread_mutex_lock(&r->mu);
	r->st.calls++;
	if (st == NOETL__STATUS__OK) {
		r->st.sent += n;
	} else {
		r->st.failed++;
		r->st.dropped += n;
	}
	uint64_t failed = r->st.failed;
	pthread_mutex_unlock(&r->mu);
	if (st != NOETL__STATUS__OK && (failed & (failed - 1)) == 0)
		/* logged at the 1st, 2nd, 4th, 8th... failure: visible, not a flood */
		log_warn("listener: %zu timeline entries dropped: the recorder answered %s%s%s", n,
		         rpc_status_name(st), err != NULL ? ": " : "", err != NULL ? err : "");
	free(err);
	return st == NOETL__STATUS__OK;
}

/* What an empty ring keeps resident of its start. */
#define RING_KEEP_BYTES (64u << 10)

/*
 * Gives the pages of an empty ring back to the system, all but its first
 * RING_KEEP_BYTES. A burst that the Recorder could not take at once (an
 * ingest faster than it, or a Recorder away) makes deep parts of the ring
 * resident, 5 MiB at the default capacity, and they would stay resident
 * for the life of the process. Called with mu held and count 0, so that no
 * entry is written into the pages while they go.
 */
static void release_pages(struct listener_reporter *r)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t keep = (RING_KEEP_BYTES + page - 1) / page * page;
	size_t end = (r->used * sizeof(*r->ring) + page - 1) / page * page;
	if (end > r->ring_bytes)
		end = r->ring_bytes;
	if (end <= keep)
		return;
	if (madvise((char *)r->ring + keep, end - keep, MADV_DONTNEED) == 0)
		r->st.released++;
	r->used = 0;
}

static void *run(void *arg)
{
	struct listener_reporter *r = arg;
	struct tentry *batch = malloc(r->o.batch * sizeof(*batch));
	pthread_mutex_lock(&r->mu);
	for (;;) {
		if (r->count < r->o.batch && !r->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += r->o.interval_ms / 1000;
			ts.tv_nsec += (long)(r->o.interval_ms % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		}
		bool stop = r->stop;
		size_t n = r->count < r->o.batch ? r->count : r->o.batch;
		if (batch == NULL)
			n = 0;
		for (size_t i = 0; i < n; i++)
			batch[i] = r->ring[(r->head + i) % r->o.capacity];
		r->head = (r->head + n) % r->o.capacity;
		r->count -= n;
		/* An empty ring starts over at its first entry, and gives back
		 * the pages a deeper burst made resident: the ring is one
		 * allocation of capacity entries (5 MiB by default). */
		if (r->count == 0) {
			r->head = 0;
			release_pages(r);
		}
		pthread_mutex_unlock(&r->mu);
		bool ok = n == 0 || send_batch(r, batch, n);
		pthread_mutex_lock(&r->mu);
		/* At the end, one failed call is enough: the rest is dropped. */
		if (stop && (r->count == 0 || n == 0 || !ok))
			break;
	}
	r->st.dropped += r->count;
	r->count = 0;
	pthread_mutex_unlock(&r->mu);
	free(batch);
	return NULL;
}

int listener_reporter_create(const struct listener_reporter_options *opt,
                             struct listener_reporter **out)
{
	struct listener_reporter *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->o = *opt;
	if (r->o.capacity == 0)
		r->o.capacity = 16384;
	if (r->o.batch == 0)
		r->o.batch = 1000;
	if (r->o.batch > r->o.capacity)
		r->o.batch = r->o.capacity;
	if (r->o.interval_ms <= 0)
		r->o.interval_ms = 100;
	if (r->o.call_timeout_ms <= 0)
		r->o.call_timeout_ms = 2000;
	r->token = opt->token != NULL ? strdup(opt->token) : NULL;
	r->o.token = NULL;
	/* mapped, not malloc'ed: release_pages gives pages of it back */
	r->ring_bytes = r->o.capacity * sizeof(*r->ring);
	r->ring = mmap(NULL, r->ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	               0);
	if (r->ring == MAP_FAILED)
		r->ring = NULL;
	if (r->ring == NULL || (opt->token != NULL && r->token == NULL)) {
		if (r->ring != NULL)
			munmap(r->ring, r->ring_bytes);
		free(r->token);
		free(r);
		return -ENOMEM;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->thread, NULL, run, r) != 0) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		munmap(r->ring, r->ring_bytes);
		free(r->token);
		free(r);
		return -EAGAIN;
	}
	pthread_setname_np(r->thread, "listener:tl"); /* for perf and top */
	*out = r;
	return 0;
}

void listener_reporter_destroy(struct listener_reporter *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	munmap(r->ring, r->ring_bytes);
	free(r->token);
	free(r);
}

void listener_reporter_stats(struct listener_reporter *r, struct listener_reporter_stats *out)
{
	pthread_mutex_lock(&r->mu);
	*out = r->st;
	pthread_mutex_unlock(&r->mu);
}
