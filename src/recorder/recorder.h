/*
 * recorder: the Recorder service, the memory of the platform. It stores one
 * record per execution attempt, every log line (of guests and of workers
 * outside the platform) and every step of every event's timeline; answers
 * queries over them; publishes each record on its change stream; and deletes
 * old records by each tenant's retention.
 *
 * This is the service without its process: main.c and the all-in-one
 * `noetl` create it, add recorder_service() to an rpc_server, and destroy it
 * after the server.
 */
#ifndef NOETL_RECORDER_H
#define NOETL_RECORDER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "stream.h"

struct recorder;

struct recorder_config {
	const char *data_dir;      /* the store's directory (created if missing) */
	const char *stream_url;    /* pub/sub URL of the record stream; NULL = none */
	const struct rpc_tls *tls; /* for a tls+tcp:// stream_url; NULL = none */
	int heartbeat_ms;          /* stream heartbeat; 0 = the stream default */
	int64_t max_age_ms;        /* default retention by age; 0 = none */
	uint64_t max_bytes;        /* default retention by size per tenant; 0 = none */
	int64_t retain_every_ms;   /* background retention pass period; 0 = 60 s,
	                              < 0 = no background passes (tests) */
	size_t max_text;           /* log text etc. beyond this is cut; 0 = 16 KiB */
	size_t max_result;         /* result bytes beyond this are cut; 0 = 64 KiB */
	size_t max_records;        /* records per Record call; 0 = 10000 */
	size_t group_records;      /* records per synced write; 0 = 8192 */
};

/*
 * The default retention options, for noetl-recorder and the all-in-one
 * noetl alike (config.h's struct config_option): recorder.retention.max-age,
 * .max-bytes and .interval, writing to the int64_t *age, size_t *bytes and
 * int64_t *every. A program refuses an interval that is not positive
 * (recorder_check_retention).
 */
/* clang-format off */
#define RECORDER_RETENTION_OPTIONS(age, bytes, every)                                      \
	{"recorder.retention.max-age", CONFIG_DURATION, (age), "7d",                       \
	 "delete records older than this, for tenants without their own retention "        \
	 "(0 = keep)", "max-age", NULL},                                                    \
	{"recorder.retention.max-bytes", CONFIG_SIZE, (bytes), "1GiB",                     \
	 "delete a tenant's oldest records beyond this size, for tenants without their "   \
	 "own retention (0 = no bound)", "max-bytes", NULL},                                \
	{"recorder.retention.interval", CONFIG_DURATION, (every), "1m",                    \
	 "how often the background retention pass runs", "retention-interval", NULL}
/* clang-format on */

/* NULL if every is a usable recorder.retention.interval, else why not. */
const char *recorder_check_retention(int64_t every);

/* Opens the store and the stream publisher, starts the writer and the
 * retention thread. cfg is borrowed for the call. 0 or -errno (the cause is
 * logged). */
int recorder_create(const struct recorder_config *cfg, struct recorder **out);

/* The RPC service (noetl.Recorder), owned by r: pass to rpc_server_add. */
ProtobufCService *recorder_service(struct recorder *r);

/* The stream publisher (borrowed; NULL without a stream_url): for the
 * all-in-one's metrics and for tests that make it drop messages. */
struct stream_pub *recorder_pub(struct recorder *r);

/* Newest revision of the record stream. */
uint64_t recorder_revision(struct recorder *r);

/* Runs one retention pass now as if the time were now_ms (the background
 * thread uses the wall clock); *deleted (may be NULL) gets the records
 * deleted. 0 or -errno. Thread-safe. */
int recorder_retain_now(struct recorder *r, int64_t now_ms, uint64_t *deleted);

struct metrics;

/* Registers the Recorder's metrics in m (borrowed; it must outlive r or the
 * metrics be unregistered first): head revision, records stored, synced
 * writes, records deleted by retention, and each tenant's records and bytes.
 * 0 or -errno. */
int recorder_metrics(struct recorder *r, struct metrics *m);

/* Stops the threads and closes the store; accepts NULL. Destroy the RPC
 * server first, so that no call is in progress. */
void recorder_destroy(struct recorder *r);

#endif
