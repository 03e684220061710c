#include "fake_queue.h"

#include <stdio.h>
#include <string.h>

#include "rpc.h"

static void h_enqueue(Noetl__Queue_Service *svc, const Noetl__EnqueueRequest *in,
                      Noetl__EnqueueReply_Closure done, void *call)
{
	struct fake_queue *q = (struct fake_queue *)svc;
	pthread_mutex_lock(&q->mu);
	if (q->refuse) {
		pthread_mutex_unlock(&q->mu);
		rpc_fail(call, NOETL__STATUS__UNAVAILABLE, "fake queue refuses");
		done(NULL, call);
		return;
	}
	Noetl__EnqueueResult res[16], *resp[16];
	size_t n = in->n_items < 16 ? in->n_items : 16;
	for (size_t i = 0; i < n && q->n < FAKE_QUEUE_MAX; i++) {
		const Noetl__Item *it = in->items[i];
		struct fake_item *f = &q->items[q->n];
		memset(f, 0, sizeof(*f));
		snprintf(f->tenant, sizeof(f->tenant), "%s", it->tenant);
		snprintf(f->queue, sizeof(f->queue), "%s", it->queue);
		snprintf(f->event, sizeof(f->event), "%s", it->event);
		snprintf(f->package, sizeof(f->package), "%s", it->package);
		snprintf(f->key, sizeof(f->key), "%s", it->idempotency_key);
		snprintf(f->id, sizeof(f->id), "%s", it->id);
		snprintf(f->payload, sizeof(f->payload), "%.*s", (int)it->payload.len,
		         (const char *)it->payload.data);
		f->max_attempts = it->retry != NULL ? it->retry->max_attempts : 0;
		for (size_t j = 0; j < q->n; j++)
			if (f->key[0] != '\0' && strcmp(q->items[j].key, f->key) == 0)
				f->duplicate = true;
		noetl__enqueue_result__init(&res[i]);
		res[i].id = f->id;
		res[i].duplicate = f->duplicate;
		resp[i] = &res[i];
		q->n++;
	}
	bool fail = q->fail_after_record;
	pthread_mutex_unlock(&q->mu);
	if (fail) {
		rpc_fail(call, NOETL__STATUS__UNAVAILABLE, "fake queue lost the reply");
		done(NULL, call);
		return;
	}
	Noetl__EnqueueReply rep = NOETL__ENQUEUE_REPLY__INIT;
	rep.results = resp;
	rep.n_results = n;
	done(&rep, call);
}

/* Every other method: UNIMPLEMENTED. The closure types differ, but each is
 * called with NULL only. */
#define UNIMPL(name, In, Closure)                                                                  \
	static void h_##name(Noetl__Queue_Service *svc, const In *in, Closure done, void *call)    \
	{                                                                                          \
		(void)svc;                                                                         \
		(void)in;                                                                          \
		rpc_fail(call, NOETL__STATUS__UNIMPLEMENTED, "fake queue: " #name);                \
		done(NULL, call);                                                                  \
	}
UNIMPL(lease, Noetl__LeaseRequest, Noetl__LeaseReply_Closure)
UNIMPL(ack, Noetl__AckRequest, Noetl__AckReply_Closure)
UNIMPL(nack, Noetl__NackRequest, Noetl__AckReply_Closure)
UNIMPL(extend, Noetl__ExtendRequest, Noetl__AckReply_Closure)
UNIMPL(stats, Noetl__StatsRequest, Noetl__StatsReply_Closure)
UNIMPL(dead_list, Noetl__DeadListRequest, Noetl__DeadListReply_Closure)
UNIMPL(dead_replay, Noetl__DeadRequest, Noetl__DeadReply_Closure)
UNIMPL(dead_purge, Noetl__DeadRequest, Noetl__DeadReply_Closure)
UNIMPL(get_health, Noetl__Empty, Noetl__Health_Closure)

static const Noetl__Queue_Service init = NOETL__QUEUE__INIT(h_);

void fake_queue_init(struct fake_queue *q)
{
	memset(q, 0, sizeof(*q));
	q->svc = init;
	pthread_mutex_init(&q->mu, NULL);
}

void fake_queue_release(struct fake_queue *q)
{
	pthread_mutex_destroy(&q->mu);
}

size_t fake_queue_unique(struct fake_queue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = 0;
	for (size_t i = 0; i < q->n; i++)
		if (!q->items[i].duplicate)
			n++;
	pthread_mutex_unlock(&q->mu);
	return n;
}
