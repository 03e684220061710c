/*
 * jobdef_int: what the files of the jobdef module share and nobody else
 * uses. The `jobdef__` prefix marks it private.
 */
#ifndef NOETL_JOBDEF_INT_H
#define NOETL_JOBDEF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"

/*
 * Turns a field path ("jobs[0].event.runtime", "" for the package) into the
 * place to name in a message: "file:line:column" when parsing, the path
 * itself when validating a package that came without text.
 */
typedef void (*jobdef__where_fn)(void *arg, const char *path, char *buf, size_t n);

/*
 * The semantic check of a package (see jobdef.h, jobdef_validate). Returns 0,
 * -EINVAL with *err = "<where>: message", or -ENOMEM (*err may be NULL).
 */
int jobdef__check(const Noetl__Package *p, jobdef__where_fn where, void *arg, char **err);

/* How a plain (unquoted) scalar resolves under the YAML 1.2 core schema. */
enum jobdef__kind {
	JOBDEF__NULL,   /* "", "~", null */
	JOBDEF__TRUE,   /* true */
	JOBDEF__FALSE,  /* false */
	JOBDEF__INT,    /* decimal, 0o octal or 0x hex integer that fits int64 */
	JOBDEF__FLOAT,  /* finite decimal number */
	JOBDEF__STRING, /* anything else */
	JOBDEF__BAD,    /* a number JSON cannot hold: .inf, .nan, int64 overflow */
};

/* Resolves s[0..len); for INT and FLOAT the value goes to *i or *d. */
enum jobdef__kind jobdef__resolve(const char *s, size_t len, int64_t *i, double *d);

/* A compiled cron expression: one bit per allowed value. */
struct jobdef__cron {
	uint64_t minute; /* bits 0..59 */
	uint32_t hour;   /* bits 0..23 */
	uint32_t dom;    /* bits 1..31 */
	uint16_t month;  /* bits 1..12 */
	uint8_t dow;     /* bits 0..6, Sunday = 0 */
	bool dom_star;   /* the day-of-month field starts with '*' */
	bool dow_star;   /* the day-of-week field starts with '*' */
};

/* Compiles expr; on failure returns -EINVAL with a message in err[0..n). */
int jobdef__cron_compile(const char *expr, struct jobdef__cron *c, char *err, size_t n);

/* Next fire time strictly after after_ms; 0, -ENOENT or -ERANGE. */
int jobdef__cron_next(const struct jobdef__cron *c, int64_t after_ms, int64_t *next_ms);

/* ---- jobdef_tree.c: YAML text to a bounded tree ---- */

enum jobdef__node_kind { JOBDEF__SCALAR, JOBDEF__MAP, JOBDEF__SEQ };

struct jobdef__node {
	enum jobdef__node_kind kind; /* what it is */
	int line, col;               /* 1-based start (of its anchor or first key) */
	bool plain;                  /* scalar: unquoted, so it may resolve to null or a number */
	char *text;                  /* scalar: the value, NUL-terminated (may hold NULs) */
	size_t len;                  /* scalar: bytes in text */
	struct jobdef__node **kids;  /* sequence: items; mapping: key, value, key, value... */
	size_t n;                    /* entries used in kids */
	size_t cap;                  /* entries allocated in kids */
};

/*
 * Sets *err (if err is not NULL and *err is NULL) to "file:line:col: msg"
 * ("file: msg" when line is 0). Returns -EINVAL, or -ENOMEM if the message
 * could not be allocated.
 */
int jobdef__errorf(char **err, const char *file, int line, int col, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/*
 * Parses text[0..len) into a tree, refusing anchors, aliases, tags, a second
 * document and anything over the JOBDEF_MAX_* limits. *root is NULL for an
 * empty stream. Returns 0, -EINVAL with *err, or -ENOMEM.
 */
int jobdef__tree_build(const char *text, size_t len, const char *file, struct jobdef__node **root,
                       char **err);
void jobdef__tree_free(struct jobdef__node *n);

/* True for a scalar that means "absent": empty, or a plain null. */
bool jobdef__tree_is_null(const struct jobdef__node *n);

/* ---- jobdef_value.c: scalar syntax ---- */

/* A whole decimal number of s[0..len) no larger than max. */
bool jobdef__parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Milliseconds ("1500") or a duration ("500ms", "2s", "1m30s", "1.5h").
 * Returns 0, -EINVAL for bad syntax, -ERANGE when not a whole number of
 * milliseconds or over UINT32_MAX. */
int jobdef__parse_duration(const char *s, size_t len, uint32_t *ms);

/* Bytes ("65536") or a size ("64MiB", "64Mi", "512KiB", "1GiB", "10B").
 * Returns 0 or -EINVAL. */
int jobdef__parse_size(const char *s, size_t len, uint64_t *bytes);

/* The largest exact unit: 7200000 -> "2h", 1500 -> "1500ms". */
void jobdef__format_duration(uint32_t ms, char *buf, size_t n);

/* The largest exact binary unit: 67108864 -> "64MiB", 1000 -> "1000". */
void jobdef__format_size(uint64_t bytes, char *buf, size_t n);

#endif
