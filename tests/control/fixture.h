/*
 * fixture: Control in-process, with a real Repository (its own store, served
 * over ipc:// by a real rpc server) and, optionally, a fake Queue (also over
 * ipc://), all under one temporary directory. Control's handlers are called
 * through rpc_invoke_local; everything Control itself calls goes over
 * sockets. Control's clock is the fixture's `now`, which tests set.
 */
#ifndef NOETL_TEST_CONTROL_FIXTURE_H
#define NOETL_TEST_CONTROL_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "control.h"
#include "control.pb-c.h"
#include "fake_queue.h"
#include "repository.h"
#include "repository.pb-c.h"
#include "rpc.h"

struct fx {
	char dir[256];                /* temporary directory */
	char repo_url[320];           /* ipc:// of the Repository */
	char queue_url[320];          /* ipc:// of the fake Queue */
	char control_url[320];        /* ipc:// of Control, when served */
	char control_stream[320];     /* ipc:// of Control's stream */
	struct repository *repo;      /* the Repository */
	struct rpc_server *repo_srv;  /* serving it */
	struct fake_queue queue;      /* the fake Queue */
	struct rpc_server *queue_srv; /* serving it; NULL without a queue */
	struct control *ctl;          /* Control; NULL while stopped */
	struct rpc_server *ctl_srv;   /* serving Control, if served */
	int64_t now;                  /* Control's clock */
};

/* The tiny valid module used wherever a wasm file is needed. */
extern const unsigned char fx_wasm[];
extern const size_t fx_wasm_len;

/* Starts the Repository, the fake Queue if with_queue, and Control (with no
 * scheduler thread: tests call control_schedule_tick). */
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
/* Control's newest revision. */
uint64_t fx_head(struct fx *f);

#endif
