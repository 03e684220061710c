/*
 * echo: the noetl.Echo fixture service (proto/test.proto) used by the RPC
 * tests and bench/rpc. Echo returns its data with the caller's tenant and
 * trace id, after sleeping sleep_ms, or fails with the status it is given.
 * Changes serves a synthetic change log (revision r has body "r") up to the
 * head set with echo_set_head, so the stream tests have a resync source.
 */
#ifndef NOETL_TEST_ECHO_H
#define NOETL_TEST_ECHO_H

#include <stdint.h>

#include "changelog.h"
#include "test.pb-c.h"

struct echo {
	Noetl__Echo_Service svc;  /* first: handlers cast back to struct echo */
	uint64_t head;            /* newest revision Changes reports */
	const char *topic_of_odd; /* if set, odd revisions belong to this topic, even to "even" */
	struct changelog *log;    /* if set, Changes reads this log instead */
};

void echo_init(struct echo *e);

/* Packs the synthetic change of revision rev (prev revisions filled). */
void echo_change(const struct echo *e, uint64_t rev, Noetl__Change *out, char *body, size_t cap);

#endif
