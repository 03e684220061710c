/*
 * recutil: building Recorder records in tests. Every record is malloc'ed
 * throughout, so protobuf_c_message_free_unpacked (or recutil_free) frees it.
 */
#ifndef NOETL_TESTS_RECUTIL_H
#define NOETL_TESTS_RECUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "recorder.pb-c.h"

Noetl__Record *recutil_exec(const char *tenant, const char *event_id, uint32_t attempt,
                            int64_t start_ms, Noetl__ExecStatus status);
Noetl__Record *recutil_log(const char *tenant, const char *event_id, Noetl__LogLevel level,
                           int64_t time_ms, const char *text);
Noetl__Record *recutil_timeline(const char *tenant, const char *event_id, Noetl__TimelineKind kind,
                                int64_t time_ms, const char *related_id);

/* Frees recs[0..n) (NULL entries are skipped), not the array. */
void recutil_free(Noetl__Record **recs, size_t n);

#endif
