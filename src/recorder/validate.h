/*
 * validate: what the Recorder accepts, checked before anything is stored.
 *
 * The Record RPC takes batches from executors, listeners and workers outside
 * the platform, so every field is checked and bounded here: a record without
 * a tenant, of another tenant than the caller's, with a malformed id, an
 * out-of-range enum or a time from the far future is refused with a message
 * naming the record and the field; text beyond the limits is cut (at a UTF-8
 * character boundary) and flagged, so one chatty guest cannot blow up the
 * store. A zero time means "now".
 *
 * The request is the caller's and stays untouched: validation works on a
 * shallow copy of each record whose cut strings are the copy's own.
 */
#ifndef NOETL_RECORDER_VALIDATE_H
#define NOETL_RECORDER_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "recorder.pb-c.h"

/* Bounds on what one record may hold. */
struct recorder_limits {
	size_t max_text;    /* log text, reasons, details: longer is cut; default 16 KiB */
	size_t max_result;  /* execution result bytes: longer is cut; default 64 KiB */
	size_t max_records; /* records per Record call; default 10000 */
};

/* A shallow copy of one record, with the sub-message copied too. */
struct recorder_copy {
	Noetl__Record rec; /* points at the member of u below */
	union {
		Noetl__Execution execution;
		Noetl__LogLine log;
		Noetl__TimelineEntry timeline;
	} u;
	char *owned[3]; /* strings this copy allocated (cut text) */
};

/* Fills unset limits with their defaults. */
void recorder_limits_defaults(struct recorder_limits *lim);

/*
 * Copies in (borrowed; record number index of its request) into *c and
 * checks and bounds the copy for a caller acting for caller_tenant ("" = a
 * platform caller, who may write any tenant). Returns NOETL__STATUS__OK, or
 * INVALID_ARGUMENT / PERMISSION_DENIED with *why a malloc'ed message. c is
 * released with recorder_copy_release in either case.
 */
int recorder_validate(const Noetl__Record *in, size_t index, const char *caller_tenant,
                      const struct recorder_limits *lim, int64_t now_ms, struct recorder_copy *c,
                      char **why);

/* Frees what the copy owns; the copy itself is the caller's. */
void recorder_copy_release(struct recorder_copy *c);

#endif
