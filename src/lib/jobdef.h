/*
 * jobdef: job definitions, from YAML to Noetl__Package and back.
 *
 * A job definition is one YAML document in Jobico's format (docs/jobs.md is
 * the reference): a package with queues, jobs (an event, its schema, the
 * queue it goes to, the runtime that runs it and the follow-up events of
 * its result), runtimes (WebAssembly modules) and, as noetl extensions,
 * retry policies, timeouts, memory limits and cron schedules.
 *
 * Parsing is strict and stops at the first error, whose message names
 * "file:line:column" (1-based, columns count characters) and says what to
 * do. Three layers run in order:
 *   1. libyaml events are turned into a small tree, refusing anchors,
 *      aliases, tags, more than one document and anything over the limits
 *      below, so hostile input costs bounded memory and time;
 *   2. the tree is mapped onto the protobuf messages by per-message key
 *      tables: unknown keys, duplicate keys, wrong node kinds and malformed
 *      numbers, durations and sizes are refused here;
 *   3. the semantic check (the same code jobdef_validate runs on packages
 *      that arrive over RPC) checks ids, enums, cron expressions, duplicate
 *      ids and every reference between queues, events, runtimes and
 *      schedules.
 *
 * Keys match their field when equal ignoring ASCII case and underscores, so
 * Jobico's `supplierqueue`, its protojson `supplierQueue` and the proto name
 * `supplier_queue` are one key. A null value (`~`, `null`, nothing) and an
 * empty string mean "absent", as in protojson.
 *
 * Ownership: every Noetl__Package this module returns is built from
 * malloc'ed parts exactly as protobuf-c's unpacker builds them, so it is
 * freed with jobdef_free() or, equivalently, noetl__package__free_unpacked(p,
 * NULL). Packages from noetl__package__unpack(NULL, ...) may be passed to
 * every function here and freed either way too.
 *
 * All functions are thread-safe: they share no state.
 */
#ifndef NOETL_JOBDEF_H
#define NOETL_JOBDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"

#define JOBDEF_MAX_SIZE    (1024 * 1024) /* bytes of YAML in one definition */
#define JOBDEF_MAX_DEPTH   32            /* nested mappings and sequences */
#define JOBDEF_MAX_SCALAR  65536         /* bytes of one scalar */
#define JOBDEF_MAX_NODES   100000        /* scalars, mappings and sequences */
#define JOBDEF_MAX_PAYLOAD 65536         /* bytes of a schedule's JSON payload */
#define JOBDEF_ID_MAX      128           /* ids and repository file names */
#define JOBDEF_TENANT_MAX  64            /* tenant ids */
#define JOBDEF_TEXT_MAX    256           /* display names, cron expressions */
#define JOBDEF_MEMORY_PAGE 65536         /* wasm page: memory limits are multiples */

/*
 * Parses one job definition from text[0..len) (need not be NUL-terminated).
 * filename is used in messages and in EventDef.line; NULL means "<input>".
 *
 * Returns 0 and sets *out to a new package (free with jobdef_free), or
 * -EINVAL when the text is not a valid definition, -ENOMEM when memory ran
 * out. On failure, if err is not NULL, *err is set to a malloc'ed message
 * ("file:line:column: what is wrong: what to do"; the caller frees it) or to
 * NULL if even that could not be allocated. Only the first error is
 * reported.
 */
int jobdef_parse(const char *text, size_t len, const char *filename, Noetl__Package **out,
                 char **err);

/*
 * Reads the file at path (at most JOBDEF_MAX_SIZE bytes) and parses it as
 * jobdef_parse does; the path is the filename in messages. Returns 0, the
 * jobdef_parse errors, or a negative errno from opening or reading the file
 * (with *err saying so).
 */
int jobdef_parse_file(const char *path, Noetl__Package **out, char **err);

/*
 * Checks an already built package: required fields, ids, enum values, retry
 * policies, memory limits, cron expressions, schedule payloads (JSON), that
 * ids are unique and that every reference names something declared. This is
 * the check jobdef_parse ends with; Control runs it on packages it receives
 * over RPC. Returns 0 or -EINVAL with *err (malloc'ed, if err is not NULL)
 * naming the field by its path, e.g. "jobs[0].event.runtime: ...", or
 * -ENOMEM. p is borrowed; NULL strings are treated as empty.
 */
int jobdef_validate(const Noetl__Package *p, char **err);

/*
 * Renders p as canonical YAML: lowercase Jobico key names, fixed key order,
 * absent fields left out, durations and sizes in their largest exact unit,
 * the schedule payload as YAML. jobdef_parse of the result gives back p
 * (except EventDef.line, which is where the text was parsed). p should pass
 * jobdef_validate. Returns a malloc'ed NUL-terminated string the caller
 * frees, or NULL when memory ran out or a schedule's payload is not JSON.
 */
char *jobdef_to_yaml(const Noetl__Package *p);

/* Frees a package from this module or from protobuf-c's unpacker; NULL is
 * allowed. */
void jobdef_free(Noetl__Package *p);

/*
 * Checks a cron expression: five fields (minute 0-59, hour 0-23, day of
 * month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT, 7 being
 * Sunday) of comma-separated `*`, `n`, `a-b`, each optionally `/step`, or
 * one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly.
 * An expression that can never fire (e.g. "0 0 30 2 *") is refused. Returns
 * 0 or -EINVAL with *err (malloc'ed, if err is not NULL) saying which field
 * is wrong, or -ENOMEM.
 */
int jobdef_cron_check(const char *expr, char **err);

/*
 * Computes the first time strictly after after_ms (Unix milliseconds, UTC)
 * at which expr fires, into *next_ms (a whole minute). Day of month and day
 * of week follow Vixie cron: when both fields are restricted (neither starts
 * with '*') a day matches if either matches, otherwise both must.
 * Returns 0, -EINVAL if expr is not valid, -ENOENT if it never fires, or
 * -ERANGE if after_ms is outside years 0000..9999.
 */
int jobdef_cron_next(const char *expr, int64_t after_ms, int64_t *next_ms);

#endif
