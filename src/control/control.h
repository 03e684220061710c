/*
 * control: the Control service (noetl.Control), without a process around
 * it. noetl-control's main.c and the all-in-one noetl build one with
 * control_create and register control_service() with their rpc server.
 *
 * Control is the authority on definitions: tenants, job packages with their
 * revision history, API tokens and webhook secrets, in its own RocksDB.
 * Every change is one synced write that also appends the change to Control's
 * change log, and is then published on its stream. A deploy first asks the
 * Repository (SetReferences) to check and pin every file the package uses,
 * so nothing changes unless they all exist. Control also fires the cron
 * schedules of deployed packages into the Queue. See docs/control.md.
 */
#ifndef NOETL_CONTROL_H
#define NOETL_CONTROL_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "rpc.h"

/* A wall clock in Unix milliseconds; injectable so tests can drive the
 * scheduler through any time they like. */
typedef int64_t (*control_clock_fn)(void *arg);

struct control_config {
	const char *data_dir;       /* RocksDB directory; created if missing */
	const char *stream_url;     /* pub/sub URL of the change stream; NULL = none */
	const struct rpc_tls *tls;  /* for a tls+tcp:// stream_url; NULL = none */
	int heartbeat_ms;           /* stream heartbeat; 0 = the stream default */
	const char *repository_url; /* the Repository (required: deploys check files there) */
	const char *queue_url;      /* the Queue schedules fire into; NULL = they do not fire */
	const struct rpc_tls *client_tls; /* for tls+tcp:// repository/queue URLs; NULL = none */
	int call_timeout_ms;              /* calls to the Repository and Queue; 0 = 5000 */
	int schedule_interval_ms;         /* scheduler period; 0 = 1000; < 0 = no scheduler
	                                     thread (call control_schedule_tick yourself) */
	control_clock_fn clock;           /* NULL = the system clock */
	void *clock_arg;                  /* passed to clock */
};

struct control;

/* Opens the store, the stream publisher and the clients, and starts the
 * scheduler thread. cfg is borrowed for the call. 0 or -errno (logged). */
int control_create(const struct control_config *cfg, struct control **out);

/* The noetl.Control service to pass to rpc_server_add; owned by c. */
ProtobufCService *control_service(struct control *c);

/* Newest revision of the change stream. */
uint64_t control_revision(struct control *c);

struct metrics;

/* Registers Control's metrics in m (borrowed; it must not outlive c):
 * noetl_control_revision, noetl_control_schedule_fires_total and
 * noetl_control_schedule_failures_total. 0 or -errno. */
int control_metrics(struct control *c, struct metrics *m);

/*
 * Runs one scheduler pass as if the time were now_ms: every schedule whose
 * next tick after its last recorded fire is <= now_ms fires once, for its
 * most recent tick <= now_ms (the catch-up rule: older missed ticks are
 * skipped). *fired (may be NULL) gets the number of items enqueued. Returns
 * 0, or the first error (a Queue that cannot be reached: the ticks stay due
 * and fire on a later pass). Safe to call while the scheduler thread runs;
 * passes are serialised.
 */
int control_schedule_tick(struct control *c, int64_t now_ms, unsigned *fired);

/* Stops the scheduler, closes clients, stream and store. The rpc server
 * serving c must be destroyed first. Accepts NULL. */
void control_destroy(struct control *c);

#endif
