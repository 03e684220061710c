/*
 * qclient: what the queue tests share: a queue served over a real socket,
 * and short-hand calls of its methods through a real rpc client.
 */
#ifndef NOETL_TESTS_QCLIENT_H
#define NOETL_TESTS_QCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "queue.h"
#include "queue.pb-c.h"
#include "rpc.h"

struct qfx {
	char dir[256];           /* temporary directory: db/ and the socket */
	char url[320];           /* ipc:// URL of the server */
	struct queue_config cfg; /* what the queue was started with */
	struct queue *q;
	struct rpc_server *srv;
	struct rpc_client *cli;
};

/* Makes the temporary directory and starts a queue with cfg (data_dir is
 * set to dir/db). */
void qfx_setup(struct qfx *f, const struct queue_config *cfg);
/* Starts (again) the queue, server and client on f->dir. */
void qfx_start(struct qfx *f);
/* Stops client, server and queue; keeps the directory. */
void qfx_stop(struct qfx *f);
/* Stops and removes the directory. */
void qfx_teardown(struct qfx *f);

/* Calls method with in; *out (if OK) is freed by the caller. tenant: the
 * metadata tenant (NULL: none). Returns the status; *err (may be NULL) gets
 * the message, malloc'ed. */
int qcall(struct rpc_client *c, const char *method, const ProtobufCMessage *in, const char *tenant,
          ProtobufCMessage **out, char **err);

/* Options of an item for qenqueue. */
struct qitem {
	const char *tenant, *queue, *id;
	const char *idem; /* idempotency key */
	int64_t not_before_ms;
	const char *payload;
	uint32_t max_attempts, base_ms, max_ms, jitter; /* retry policy; all 0: none */
};

/* Enqueues n items; returns the status, *out the reply (may be NULL). */
int qenqueue(struct rpc_client *c, const struct qitem *items, size_t n, Noetl__EnqueueReply **out);
/* Enqueues one item in tenant/queue with id; asserts OK. */
void qput(struct rpc_client *c, const char *tenant, const char *queue, const char *id);

/* Leases; asserts OK and returns the reply. tenant: LeaseRequest.tenant. */
Noetl__LeaseReply *qlease(struct rpc_client *c, uint32_t max, uint32_t lease_ms, uint32_t wait_ms,
                          const char *tenant);
/* Acks one lease (no follow-ups); returns the entry status. */
int qack(struct rpc_client *c, const Noetl__Leased *l);
/* Acks every item of a lease reply; asserts each is OK. */
void qack_all(struct rpc_client *c, const Noetl__LeaseReply *r);
/* Nacks with one entry (borrowed); returns the call's status, and *out
 * (freed by the caller) when it is OK. */
int qnack_entry(struct rpc_client *c, Noetl__NackEntry *e, Noetl__AckReply **out);
/* Nacks one lease; returns the reply (asserts the call is OK). */
Noetl__AckReply *qnack(struct rpc_client *c, const Noetl__Leased *l, const char *reason, bool dead);
/* Stats of tenant/queue; false if the queue is not listed. */
bool qstats(struct rpc_client *c, const char *tenant, const char *queue, Noetl__QueueStats *out);

#endif
