/*
 * fixture: Control in-process, with a real Repository (its own store, served
 * over ipc:// by a real rpc server) and, optionally, the real Queue (its own
 * store too) behind a relay (tests/support/relay.h) that can lose a reply or
 * turn Control away, all under one temporary directory. Control's handlers
 * are called through rpc_invoke_local; everything Control itself calls goes
 * over sockets. Control's clock is the fixture's `now`, which tests set.
 */
#ifndef NOETL_TEST_CONTROL_FIXTURE_H
#define NOETL_TEST_CONTROL_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "control.h"
#include "control.pb-c.h"
#include "queue.h"
#include "queue.pb-c.h"
#include "relay.h"
#include "repository.h"
#include "repository.pb-c.h"
#include "rpc.h"

#define FX_ITEMS_MAX 64

/* An item the Queue holds, as fx_queue_items read it. */
struct fx_item {
	char tenant[64], queue[128], event[128], package[128], key[512], id[32];
	char payload[256];
	unsigned max_attempts; /* from the retry policy, 0 if none */
};

struct fx {
	char dir[256];                      /* temporary directory */
	char repo_url[320];                 /* ipc:// of the Repository */
	char queue_url[320];                /* inproc:// of the relay in front of the Queue */
	char queue_real[320];               /* inproc:// of the Queue itself */
	char control_url[320];              /* ipc:// of Control, when served */
	char control_stream[320];           /* ipc:// of Control's stream */
	struct repository *repo;            /* the Repository */
	struct rpc_server *repo_srv;        /* serving it */
	struct queue *queue;                /* the Queue; NULL without one */
	struct rpc_server *queue_srv;       /* serving it */
	struct relay *relay;                /* in front of it */
	struct fx_item items[FX_ITEMS_MAX]; /* what the Queue held, in order */
	size_t n_items;                     /* count */
	struct control *ctl;                /* Control; NULL while stopped */
	struct rpc_server *ctl_srv;         /* serving Control, if served */
	int64_t now;                        /* Control's clock */
};

/* The tiny valid module used wherever a wasm file is needed. */
extern const unsigned char fx_wasm[];
extern const size_t fx_wasm_len;

/* Starts the Repository, the Queue (and its relay) if with_queue, and
 * Control (with no scheduler thread: tests call control_schedule_tick). */
void fx_start(struct fx *f, bool with_queue);
/* Starts Control (again) on the same store; serve: also over ipc://. */
void fx_control_start(struct fx *f, bool serve);
void fx_control_stop(struct fx *f);
/* Stops everything and removes the directory. */
void fx_stop(struct fx *f);

/* Calls a Control method in-process; returns the status. *out may be NULL
 * if the reply is not wanted; *err too. */
int fx_call(struct fx *f, const char *method, const ProtobufCMessage *in, ProtobufCMessage **out,
            char **err);
/* The same for the Repository. */
int fx_repo(struct fx *f, const char *method, const ProtobufCMessage *in, ProtobufCMessage **out,
            char **err);

/* Puts a file; returns the status. */
int fx_put(struct fx *f, const char *tenant, const char *name, Noetl__FileType type,
           const void *data, size_t len);
/* Adds a tenant; asserts it worked. */
void fx_tenant(struct fx *f, const char *tenant);
/* Parses a YAML definition (asserting it parses) and deploys it; returns the
 * status and the revision. */
int fx_deploy_yaml(struct fx *f, const char *yaml, bool update, uint64_t *rev, char **err);
/* Leases (for an hour, so they stay out of the way) the items of tenant
 * acme the Queue has made ready since the last call, appends them to
 * f->items, and returns how many items the Queue has held in all. */
size_t fx_queue_items(struct fx *f);
/* Control's newest revision. */
uint64_t fx_head(struct fx *f);

#endif
