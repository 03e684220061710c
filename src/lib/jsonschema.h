/*
 * jsonschema: JSON Schema (drafts 4, 6 and 7) compiled once, validated
 * many times.
 *
 * A schema document is compiled into an immutable graph of nodes: keywords
 * are parsed and checked, patterns are compiled to automata, and every
 * "$ref" is resolved to the node it names (inside the document through
 * "$id", JSON pointers and "#anchor" ids; outside it through a resolver
 * callback the caller provides, so the listener can load a tenant's other
 * schema files). Because everything is resolved at compile time, a schema
 * that compiles has no dangling reference, and validation does no I/O.
 *
 * The draft is chosen by the root "$schema" (draft-04, draft-06 or draft-07
 * URIs; anything else is refused) and defaults to draft-07. Documents
 * loaded through the resolver use their own "$schema", else the draft of
 * the document that referred to them.
 *
 * Validation walks the instance against the graph and reports every
 * failure, not just the first, as {instance pointer, schema location,
 * message}. Hostile input is bounded: nesting deeper than the configured
 * limits is refused with an error, patterns run on a Pike VM (time linear
 * in the subject, never exponential) under a step budget, and "$ref" loops
 * that would recurse without descending into the instance are refused at
 * compile time.
 *
 * Threads: a compiled schema is immutable; any number of threads may call
 * jsonschema_validate() on it at once, each with its own error list.
 * Compiling is independent per call (the resolver is called from the
 * compiling thread only). Validation recurses: at the default limits the
 * worst case measured about 256 KiB of stack in an optimized build and
 * 1 MiB under AddressSanitizer, so give validating threads 1 MiB or more.
 *
 * Typical use (the listener, one schema per event type):
 *
 *     struct jsonschema_options opt = {.base_uri = "greet.json",
 *                                      .resolver = load_tenant_file,
 *                                      .resolver_arg = tenant};
 *     struct jsonschema *s;
 *     char *err = NULL;
 *     if (jsonschema_compile(text, len, &opt, &s, &err) != 0) {
 *             log_error("schema %s: %s", name, err);   // err says where
 *             free(err);
 *     }
 *     ...
 *     struct jsonschema_errors errs;
 *     jsonschema_errors_init(&errs, 0);
 *     for (size_t i = 0; i < json_array_size(data); i++) {
 *             char at[32];
 *             snprintf(at, sizeof(at), "/data/%zu", i);
 *             if (!jsonschema_validate(s, json_array_get(data, i), &errs)) {
 *                     json_t *list = jsonschema_errors_to_json(&errs, at);
 *                     ... append list to the 400 body ...
 *             }
 *             jsonschema_errors_release(&errs);
 *     }
 *     jsonschema_destroy(s);
 */
#ifndef NOETL_JSONSCHEMA_H
#define NOETL_JSONSCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonschema;

enum jsonschema_draft {
	JSONSCHEMA_DRAFT_DEFAULT = 0, /* draft-07 */
	JSONSCHEMA_DRAFT4 = 4,
	JSONSCHEMA_DRAFT6 = 6,
	JSONSCHEMA_DRAFT7 = 7,
};

/* Defaults for the limits in struct jsonschema_options. */
#define JSONSCHEMA_MAX_SCHEMA_DEPTH   256
#define JSONSCHEMA_MAX_INSTANCE_DEPTH 256
#define JSONSCHEMA_REGEX_STEPS        50000000ull
#define JSONSCHEMA_MAX_DOCUMENTS      64

/*
 * Loads the schema document named by uri: an absolute URI, or a reference
 * resolved against options.base_uri (so a bare "other.json" arrives as is
 * when there is no base), never with a "#fragment". Called at most once per
 * document per compile, from the compiling thread.
 *
 * On success returns 0 and stores a new reference in *out (ownership passes
 * to the compiler; if the resolver keeps a reference too, say in a cache,
 * the compiler works on a deep copy, so later changes to the cached value
 * do not reach the compiled schema). On failure returns a negative errno-style code
 * (-ENOENT for "no such schema") and may store a malloc'ed message in *err
 * (the compiler frees it); the compile then fails with that message.
 */
typedef int (*jsonschema_resolver_fn)(void *arg, const char *uri, json_t **out, char **err);

/* Options for compiling. A zeroed struct (or NULL) means every default. */
struct jsonschema_options {
	enum jsonschema_draft default_draft; /* draft when "$schema" is absent; 0 = draft-07 */
	const char *base_uri;                /* retrieval URI of the root document, for relative
	                                        "$ref"s and in error locations; NULL = none */
	jsonschema_resolver_fn resolver; /* loads other documents; NULL = refs must stay inside */
	void *resolver_arg;              /* passed to resolver as is */
	unsigned max_schema_depth;       /* JSON nesting of any schema document; 0 = default */
	unsigned max_instance_depth;     /* JSON nesting of an instance; 0 = default */
	uint64_t regex_steps;            /* VM steps per pattern match; 0 = default */
	bool format_annotation_only;     /* true: "format" is not asserted (default: asserted) */
	bool content_assertion;          /* true: assert contentEncoding "base64" and
	                                    contentMediaType "application/json" (default: not) */
};

/*
 * Parses JSON text the way this module expects schemas and instances:
 * any value at the top level, duplicate object keys refused, and integers
 * too large for 64 bits read as doubles instead of failing (jansson cannot
 * hold them exactly; the whole document is then read with integers as
 * reals). Numbers beyond the double range (1e400) are refused.
 *
 * Returns 0 and a new reference in *out, or -EINVAL and a malloc'ed message
 * with line and column in *err (if err is not NULL), or -ENOMEM.
 */
int jsonschema_parse(const char *text, size_t len, json_t **out, char **err);

/*
 * Compiles a schema from JSON text (parsed with jsonschema_parse).
 * opt may be NULL. On success returns 0 and writes *out, which the caller
 * destroys with jsonschema_destroy(). On failure returns -EINVAL (bad JSON,
 * an invalid or unsupported keyword, an unresolvable "$ref", a limit
 * exceeded) and, if err is not NULL, a malloc'ed message the caller frees,
 * saying where in which document (a JSON pointer) and why, e.g.
 *   #/properties/age/minimum: "minimum" must be a number, got a string
 * or -ENOMEM.
 */
int jsonschema_compile(const char *text, size_t len, const struct jsonschema_options *opt,
                       struct jsonschema **out, char **err);

/* Like jsonschema_compile() from a parsed value. schema is borrowed for the
 * call: the compiled form keeps its own deep copy. */
int jsonschema_compile_json(const json_t *schema, const struct jsonschema_options *opt,
                            struct jsonschema **out, char **err);

/* Frees a compiled schema; accepts NULL. No validation may be running on it. */
void jsonschema_destroy(struct jsonschema *s);

/* The draft the root document was compiled as. */
enum jsonschema_draft jsonschema_draft(const struct jsonschema *s);

/* One validation failure. The three strings share one allocation owned by
 * the list; they are NUL-terminated and never NULL. */
struct jsonschema_error {
	char *instance; /* JSON pointer into the instance: "" for the root, "/items/0/name" */
	char *schema;   /* the failing keyword: document URI (empty for the root document
	                   without base_uri) + "#" + JSON pointer, "#/properties/name/minLength" */
	char *message;  /* lowercase sentence, e.g. "\"ab\" is shorter than 3 characters" */
};

/*
 * The failures of one or more validations, in the order found. Owned by the
 * caller: embed or declare it, jsonschema_errors_init() it, pass it to any
 * number of jsonschema_validate() calls, read items[0..len), then
 * jsonschema_errors_release() it. Not shared between threads.
 */
struct jsonschema_errors {
	struct jsonschema_error *items;
	size_t len;     /* entries in items */
	size_t cap;     /* allocated entries */
	size_t max;     /* most entries kept; failures beyond are only counted */
	size_t dropped; /* failures found but not kept because of max */
	int status;     /* 0, or -ENOMEM if an entry could not be allocated (the
	                   validation still failed closed: it returned false) */
};

/* Default for jsonschema_errors_init(errs, 0). */
#define JSONSCHEMA_MAX_ERRORS 100

/* Initializes an empty list that keeps at most max entries (0 = default). */
void jsonschema_errors_init(struct jsonschema_errors *errs, size_t max);

/* Frees the entries; the list is then empty and may be reused. Accepts a
 * zeroed struct. */
void jsonschema_errors_release(struct jsonschema_errors *errs);

/*
 * Renders the list as a new JSON array of {"instance", "schema", "message"}
 * objects for an HTTP error body; instance_prefix (NULL for none) is put in
 * front of every instance pointer, e.g. "/data/3" when the instance was the
 * fourth element of a request's "data" array. Returns a new reference, or
 * NULL if out of memory.
 */
json_t *jsonschema_errors_to_json(const struct jsonschema_errors *errs,
                                  const char *instance_prefix);

/*
 * Validates instance (borrowed) against s. Returns true if it is valid.
 * If errs is not NULL every failure is appended to it (up to errs->max);
 * with errs NULL the call stops at the first failure, which is faster.
 * An instance nested deeper than max_instance_depth, or a pattern match
 * that exceeds its step budget, is a failure with its own message. Never
 * returns true when it could not finish. Thread-safe (see above).
 */
bool jsonschema_validate(const struct jsonschema *s, const json_t *instance,
                         struct jsonschema_errors *errs);

#endif
