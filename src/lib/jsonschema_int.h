/*
 * jsonschema_int: what the files of the jsonschema module share. Not a
 * public header: callers use jsonschema.h.
 *
 * jsonschema.c           entry points and compiling (with jsonschema_refs.c,
 *                        jsonschema_keywords.c; see jsonschema_compile.h)
 * jsonschema_validate.c  the validation walk
 * jsonschema_errors.c    the error list and the wording of failures
 * jsonschema_value.c     JSON helpers: equality, hashing, numbers, depth, UTF-8
 * jsonschema_format.c    "format" and content checks
 * jsonschema_uri.c       RFC 3986 reference resolution and URI grammar checks
 * jsonschema_meta.c      the draft-04/06/07 meta-schemas, built in
 * jsonschema_regex*.c    the pattern engine (see jsonschema_regex.h)
 */
#ifndef NOETL_JSONSCHEMA_INT_H
#define NOETL_JSONSCHEMA_INT_H

#include "jsonschema.h"
#include "jsonschema_regex.h"

#include <stdarg.h>

/* Bits of the "type" keyword. */
enum {
	JS_T_NULL = 1 << 0,
	JS_T_BOOLEAN = 1 << 1,
	JS_T_OBJECT = 1 << 2,
	JS_T_ARRAY = 1 << 3,
	JS_T_NUMBER = 1 << 4,
	JS_T_STRING = 1 << 5,
	JS_T_INTEGER = 1 << 6,
};

/* Formats known to jsonschema_format_check(). */
enum js_format {
	JS_FMT_NONE = 0, /* unknown names are annotations, never asserted */
	JS_FMT_DATE_TIME,
	JS_FMT_DATE,
	JS_FMT_TIME,
	JS_FMT_DURATION,
	JS_FMT_EMAIL,
	JS_FMT_IDN_EMAIL,
	JS_FMT_HOSTNAME,
	JS_FMT_IDN_HOSTNAME,
	JS_FMT_IPV4,
	JS_FMT_IPV6,
	JS_FMT_URI,
	JS_FMT_URI_REFERENCE,
	JS_FMT_IRI,
	JS_FMT_IRI_REFERENCE,
	JS_FMT_URI_TEMPLATE,
	JS_FMT_UUID,
	JS_FMT_JSON_POINTER,
	JS_FMT_RELATIVE_JSON_POINTER,
	JS_FMT_REGEX,
};

struct js_doc {
	json_t *root; /* owned */
	char *uri;    /* retrieval URI without fragment; "" for an anonymous root */
	int draft;    /* 4, 6 or 7 */
};

struct js_node;

struct js_prop {
	const char *name; /* borrowed from the document */
	size_t len;
	struct js_node *schema;
};

struct js_pattern_prop {
	const char *src; /* the pattern text, borrowed */
	struct jsonschema_regex *re;
	struct js_node *schema;
};

struct js_dep {
	const char *name; /* the trigger property, borrowed */
	size_t len;
	struct js_node *schema; /* schema form, or NULL */
	json_t *names;          /* array-of-names form (borrowed), or NULL */
};

/*
 * One compiled schema. Keyword fields are "absent" when NULL, -1 or 0 as
 * noted. json_t pointers are borrowed from the node's document, which the
 * compiled schema owns.
 */
struct js_node {
	const struct js_doc *doc; /* where it was written */
	char *ptr;                /* its JSON pointer in doc, owned */
	int draft;
	bool is_bool; /* a boolean schema: bool_value is the verdict */
	bool bool_value;
	struct js_node *ref;       /* "$ref" target: every sibling keyword is ignored */
	char *ref_uri;             /* the resolved "$ref", owned */
	unsigned types;            /* JS_T_* bits; 0 = no "type" */
	json_t *enum_values;       /* "enum" array or NULL */
	json_t *const_value;       /* "const" or NULL */
	json_t *maximum, *minimum; /* numbers or NULL */
	json_t *exclusive_maximum, *exclusive_minimum; /* numbers (draft 6+) or NULL */
	bool maximum_exclusive, minimum_exclusive;     /* draft-04 boolean forms */
	json_t *multiple_of;
	int64_t max_length, min_length; /* -1 = absent */
	struct jsonschema_regex *pattern;
	const char *pattern_src;
	enum js_format format;
	const char *format_name;
	bool content_base64;    /* contentEncoding "base64" */
	bool content_json;      /* contentMediaType "application/json" */
	struct js_node *items;  /* single "items" schema */
	struct js_node **tuple; /* array form of "items" */
	size_t ntuple;
	bool has_tuple;
	struct js_node *additional_items;
	int64_t max_items, min_items; /* -1 = absent */
	bool unique_items;
	struct js_node *contains;
	int64_t max_properties, min_properties; /* -1 = absent */
	json_t *required;                       /* array of strings or NULL */
	struct js_prop *props;
	size_t nprops;
	json_t *props_json; /* the "properties" object, for membership tests */
	struct js_pattern_prop *pattern_props;
	size_t npattern_props;
	struct js_node *additional_props;
	struct js_dep *deps;
	size_t ndeps;
	struct js_node *property_names;
	struct js_node **all_of, **any_of, **one_of;
	size_t nall_of, nany_of, none_of;
	struct js_node *not_, *if_, *then_, *else_;
	uint8_t mark; /* compile-time scratch for the cycle check */
};

struct jsonschema {
	struct js_doc **docs; /* [0] is the root document */
	size_t ndocs, capdocs;
	struct js_node **nodes; /* every node, for destroy */
	size_t nnodes, capnodes;
	struct js_node *root;
	unsigned max_instance_depth;
	uint64_t regex_steps;
	bool format_assert;
	bool content_assert;
};

/* ---- jsonschema_value.c ---- */

/* A growable NUL-terminated string; on allocation failure sets nomem and
 * keeps what it has. */
struct js_buf {
	char *s;
	size_t len, cap;
	bool nomem;
};
void js_buf_add(struct js_buf *b, const char *s, size_t len);
void js_buf_adds(struct js_buf *b, const char *s);
void js_buf_addf(struct js_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void js_buf_vaddf(struct js_buf *b, const char *fmt, va_list ap);
/* Adds one JSON pointer segment ("/" + s with ~ and / escaped). */
void js_buf_add_segment(struct js_buf *b, const char *s, size_t len);
/* Adds s quoted and shortened to about max bytes, for messages. */
void js_buf_add_quoted(struct js_buf *b, const char *s, size_t len, size_t max);
/* Adds a short rendering of a JSON value, for messages. */
void js_buf_add_value(struct js_buf *b, const json_t *v, size_t max);

/* True if the nesting of arrays and objects in v exceeds limit. Iterative:
 * safe on any depth, and a self-containing value counts as too deep. */
bool js_depth_exceeds(const json_t *v, unsigned limit);

/* JSON Schema equality: numbers compare by value (1 == 1.0), objects
 * regardless of key order. Recursion is bounded by the shallower value. */
bool js_equal(const json_t *a, const json_t *b);
/* A hash consistent with js_equal. */
uint64_t js_hash(const json_t *v);
/* Compares two numbers exactly (integer against real included): <0, 0, >0. */
int js_number_cmp(const json_t *a, const json_t *b);
/* Whether a number counts as an integer under the draft. */
bool js_is_integer(const json_t *v, int draft);
/* Whether a is a multiple of b (b > 0). */
bool js_multiple_of(const json_t *a, const json_t *b);
/* Decodes the UTF-8 code point at s[i] into *cp and returns its length;
 * invalid input gives *cp = 0xFFFFFFFF and length 1. */
size_t js_utf8_decode(const char *s, size_t len, size_t i, uint32_t *cp);
/* Unicode code points in a UTF-8 string. */
size_t js_utf8_length(const char *s, size_t len);
/* Name of the JSON type of v for messages: "integer", "number", "string"... */
const char *js_type_name(const json_t *v);

/* ---- validation: jsonschema_validate.c walks, jsonschema_errors.c reports ---- */

struct ipath {
	const struct ipath *up;
	const char *key; /* member name, or NULL for an array index */
	size_t len;      /* key length, or the index */
};

struct vctx {
	const struct jsonschema *s;
	struct jsonschema_errors *errs; /* NULL: quiet from the top */
	bool collect;                   /* failures are being recorded now */
	unsigned depth, max_depth;
	bool aborted;    /* the walk stopped; the instance is rejected */
	char *abort_err; /* why, as "instance\0schema\0message" pieces */
	size_t abort_inst_len, abort_schema_len;
	int status;
};

/* Appends an error (strings copied into one block); 0 or -ENOMEM. Counts
 * it in dropped instead when the list is full. */
int js_errs_add(struct jsonschema_errors *e, const char *inst, const char *schema, const char *msg);
/* Records running out of memory: the walk stops and the instance fails. */
void js_oom(struct vctx *v);
/* Records a failure at instance ip for keyword kw (and key below it) of n,
 * when collecting. */
void js_report_at(struct vctx *v, const struct js_node *n, const char *kw, const char *key,
                  size_t keylen, const struct ipath *ip, const char *fmt, ...)
        __attribute__((format(printf, 7, 8)));
#define report(v, n, kw, ip, ...) js_report_at(v, n, kw, NULL, 0, ip, __VA_ARGS__)
/* Reports prefix + the rendered subject + the formatted rest. */
void js_report_about(struct vctx *v, const struct js_node *n, const char *kw, const char *key,
                     size_t keylen, const struct ipath *ip, const char *prefix,
                     const json_t *subject, size_t max, const char *fmt, ...)
        __attribute__((noinline, format(printf, 10, 11)));
/* Reports "<a> <what> <b>" for two values ("7 is greater than the maximum 3"). */
void js_report_pair(struct vctx *v, const struct js_node *n, const char *kw, const struct ipath *ip,
                    const json_t *a, const char *what, const json_t *b) __attribute__((noinline));
/* Reports a "type" failure with the types wanted and the type found. */
void js_report_type(struct vctx *v, const struct js_node *n, const json_t *inst,
                    const struct ipath *ip) __attribute__((noinline));
/* Reports a property that "dependencies" requires. */
void js_report_dependency(struct vctx *v, const struct js_node *n, const struct js_dep *d,
                          const json_t *need, const struct ipath *ip) __attribute__((noinline));
/* Reports "<inst><what><values in full>", for enum and const. */
void js_report_value_list(struct vctx *v, const struct js_node *n, const char *kw,
                          const struct ipath *ip, const json_t *inst, const char *what,
                          const json_t *values) __attribute__((noinline));
/* Stops the walk: the instance will be rejected with this reason. */
void js_abort_walk(struct vctx *v, const struct js_node *n, const char *kw, const struct ipath *ip,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A malloc'ed quoted, shortened copy of s for messages; NULL if out of memory. */
char *js_quoted(const char *s, size_t len, size_t max);
#define S(p) ((p) != NULL ? (p) : "the value")

struct js_mark {
	size_t len, dropped;
};

/* Where the error list stands, to take back tentative failures (anyOf). */
struct js_mark js_mark(const struct vctx *v);
/* Takes back the failures recorded since m. */
void js_rollback(struct vctx *v, struct js_mark m);
/* Moves the error at index before (the last one) to m.len, so that a
 * summary precedes the details it summarizes. */
void js_move_last_to(struct vctx *v, struct js_mark m, size_t before);

/* ---- jsonschema_format.c ---- */

/* The format for a name, or JS_FMT_NONE if unknown. */
enum js_format js_format_lookup(const char *name);
/* Whether s[0..len) is valid for the format. */
bool js_format_check(enum js_format f, const char *s, size_t len);
/* Decodes strict RFC 4648 base64 (padding required, no whitespace) into a
 * malloc'ed buffer; false if invalid or out of memory (*nomem set). */
bool js_base64_decode(const char *s, size_t len, char **out, size_t *outlen, bool *nomem);

/* ---- jsonschema_uri.c ---- */

/* Resolves ref against base (RFC 3986 section 5.2; base may be relative or
 * empty). Returns a malloc'ed string, or NULL if out of memory. */
char *js_uri_resolve(const char *base, const char *ref);
/* Whether s is an RFC 3986 URI (absolute: with a scheme) or URI reference;
 * with iri, an RFC 3987 IRI or IRI reference. */
bool js_uri_check(const char *s, size_t len, bool absolute, bool iri);
/* Whether s is an RFC 6570 (level 4) URI template. */
bool js_uri_template_check(const char *s, size_t len);
/* Decodes %XX escapes into a malloc'ed string; NULL if malformed or out of
 * memory (*nomem says which). */
char *js_percent_decode(const char *s, size_t len, bool *nomem);

/* ---- jsonschema_meta.c ---- */

/* The built-in text of a meta-schema for uri (without fragment; http or
 * https), or NULL. */
const char *js_meta_schema(const char *uri);

#endif
