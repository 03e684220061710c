/*
 * repository: the File Repository service (noetl.Repository), without a
 * process around it. noetl-repository's main.c and the all-in-one noetl
 * build one with repository_create and register repository_service() with
 * their rpc server.
 *
 * The service stores tenants' WebAssembly modules and JSON Schemas,
 * versioned and content-hashed, in its own RocksDB; publishes every put and
 * delete on its change stream; and keeps, for each package Control deployed,
 * the set of files it uses, so a file in use cannot be deleted. See
 * docs/repository.md.
 */
#ifndef NOETL_REPOSITORY_H
#define NOETL_REPOSITORY_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

#define REPOSITORY_DEFAULT_MAX_FILE (8u << 20) /* 8 MiB */

struct repository_config {
	const char *data_dir;      /* RocksDB directory; created if missing */
	const char *stream_url;    /* pub/sub URL of the change stream; NULL = none */
	const struct rpc_tls *tls; /* for a tls+tcp:// stream_url; NULL = none */
	int heartbeat_ms;          /* stream heartbeat; 0 = the stream default */
	size_t max_file_bytes;     /* largest file accepted; 0 = REPOSITORY_DEFAULT_MAX_FILE */
};

struct repository;

/* Opens the store and the stream publisher. cfg is borrowed for the call.
 * 0 or -errno (the cause is logged). */
int repository_create(const struct repository_config *cfg, struct repository **out);

/* The noetl.Repository service to pass to rpc_server_add; owned by r and
 * valid until repository_destroy. */
ProtobufCService *repository_service(struct repository *r);

/* Newest revision of the change stream. */
uint64_t repository_revision(struct repository *r);

struct metrics;

/* Registers the Repository's metrics in m (borrowed; it must not outlive
 * r): noetl_repository_revision. 0 or -errno. */
int repository_metrics(struct repository *r, struct metrics *m);

/* Closes the stream and the store; the rpc server serving it must be
 * destroyed first. Accepts NULL. */
void repository_destroy(struct repository *r);

#endif
