/*
 * fixture: the real platform in one test process for the listener's
 * end-to-end tests: Control, Repository, Queue and Recorder with their own
 * stores in a temporary directory, each behind its own rpc server on ipc://
 * sockets (so the Queue can be stopped and started alone), and the listener
 * on an ephemeral HTTP port of 127.0.0.1.
 *
 * The setup gives tenant "acme" (token fx.token_a) with package "p1": event
 * "greet" checked by schema "person.json" (object with a string "name",
 * required, and an optional integer "age" >= 0) going to queue "inbox", and
 * event "raw" without schema; tenant "beta" (token fx.token_b) with package
 * "p2" and event "greet" without schema.
 */
#ifndef NOETL_TEST_LISTENER_FIXTURE_H
#define NOETL_TEST_LISTENER_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpc.h"
#include "listener.h"
#include "queue.pb-c.h"
#include "rpc.h"

struct fx {
	char dir[256];
	char control_url[320], control_pub[320];
	char repository_url[320], repository_pub[320];
	char queue_url[320];
	char recorder_url[320], recorder_pub[320];
	struct control *control;
	struct repository *repository;
	struct queue *queue;
	struct recorder *recorder;
	struct rpc_server *control_srv, *repository_srv, *queue_srv, *recorder_srv;
	struct rpc_client *cc, *rc, *qc, *recc; /* the test's own clients */
	struct listener *listener;
	int port;
	char token_a[128];         /* secret of a token of acme */
	char token_b[128];         /* secret of a token of beta */
	uint64_t max_depth_tenant; /* the Queue's per-tenant limit; 0 = default */
	struct listener_config lc; /* what the listener was started with */
};

/* Starts everything; cfg (may be NULL) adjusts the listener's config. */
void fx_start(struct fx *f, const struct listener_config *cfg);
void fx_stop(struct fx *f);

/* Stops / starts the Queue (its rpc server and store); the data stays. */
void fx_queue_down(struct fx *f);
void fx_queue_up(struct fx *f);

/* Stops / starts the Repository's rpc server (the store stays open). */
void fx_repository_down(struct fx *f);
void fx_repository_up(struct fx *f);

/* Destroys the listener and starts a fresh one (empty caches) with the
 * same configuration; waits for nothing. */
void fx_restart_listener(struct fx *f);

/* Puts a JSON Schema file and waits until the listener applied the change. */
void fx_put_schema(struct fx *f, const char *tenant, const char *name, const char *json);

/* Deploys (or updates) a package from YAML; waits until the listener has it. */
void fx_deploy(struct fx *f, const char *yaml, bool update);

/* Waits until the listener has applied everything Control holds now (a
 * change the test made through its own client, f->cc). */
void fx_sync_control(struct fx *f);
/* Deletes a package; waits until the listener applied it. */
void fx_delete_package(struct fx *f, const char *tenant, const char *id);

/* Sets a webhook secret; waits until the listener applied it. */
void fx_set_secret(struct fx *f, const char *tenant, const char *event, const char *secret);

/* Creates a token of tenant into out; waits until the listener has it. */
void fx_create_token(struct fx *f, const char *tenant, char *out, size_t cap);

/* POSTs body to path with Content-Type JSON, Authorization: Bearer token
 * (NULL: none) and extra headers ("Name: v\r\n" lines or NULL). */
int fx_post(struct fx *f, const char *path, const char *token, const char *extra, const char *body,
            struct httpc_reply *out);

/* Leases up to max ready items of tenant/any queue from the Queue; returns
 * the reply (free with protobuf_c_message_free_unpacked) or NULL. */
Noetl__LeaseReply *fx_lease(struct fx *f, const char *tenant, unsigned max);

/* Number of items of tenant in the Queue (ready + leased + delayed). */
uint64_t fx_depth(struct fx *f, const char *tenant);

#endif
