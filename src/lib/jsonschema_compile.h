/*
 * jsonschema_compile: what the compiling files of the jsonschema module
 * share. Private; see jsonschema.c for how compiling works.
 *
 * jsonschema.c           entry points, the hash map, error and pointer helpers
 * jsonschema_refs.c      documents, "$id" scanning, "$ref" linking, cycle check
 * jsonschema_keywords.c  one schema object to one node, keyword by keyword
 */
#ifndef NOETL_JSONSCHEMA_COMPILE_H
#define NOETL_JSONSCHEMA_COMPILE_H

#include "jsonschema_int.h"

/* ---- a small hash map with byte-string keys ---- */

struct js_map_entry {
	char *key; /* owned copy; NULL for an empty slot */
	size_t len;
	void *val;
};

struct js_map {
	struct js_map_entry *e;
	size_t cap; /* a power of two */
	size_t n;
};

/* The value stored for key, or NULL. */
void *js_map_get(const struct js_map *m, const void *key, size_t len);
/* Stores val under a copy of key: 0, -EEXIST (the old value stays) or -ENOMEM. */
int js_map_put(struct js_map *m, const void *key, size_t len, void *val);
/* Frees the keys and the table (not the values); the map is then empty. */
void js_map_release(struct js_map *m);

/* What the scan learned about one schema object. */
struct js_info {
	json_t *json;
	struct js_doc *doc;
	char *ptr;   /* JSON pointer in doc */
	char *base;  /* base URI around it (its parent's) */
	char *inner; /* base URI inside it (after its own "$id") */
};

struct js_compiler {
	struct jsonschema *s;
	int default_draft;
	unsigned max_depth;
	jsonschema_resolver_fn resolver;
	void *resolver_arg;
	struct js_map ids;      /* "uri" and "uri#anchor" -> struct js_info */
	struct js_map infos;    /* json_t * of a schema object -> struct js_info */
	struct js_map compiled; /* json_t * of a schema object -> struct js_node */
	struct js_info **all_infos;
	size_t ninfos, capinfos;
	char **strings; /* base URIs made while compiling */
	size_t nstrings, capstrings;
	struct js_node **refs; /* nodes whose "$ref" is not linked yet */
	size_t nrefs, caprefs;
	char *err; /* first error */
	int rc;
};
/* Makes room for one more element in a growable array (see PUSH). */
bool js_grow(void *arrp, size_t n, size_t *cap, size_t elem);
#define PUSH(arr, n, cap, item)                                                                    \
	(js_grow(&(arr), (n), &(cap), sizeof(*(arr))) ? ((arr)[(n)++] = (item), true) : false)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Records running out of memory (if nothing was recorded); returns -ENOMEM. */
int js_nomem(struct js_compiler *c);
/* Records the first error, located at doc#ptr (plus an optional keyword
 * segment); returns -EINVAL (or the error already recorded). */
int js_error_at(struct js_compiler *c, const struct js_doc *doc, const char *ptr, const char *kw,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Keeps s (malloc'ed) until the compile ends and returns it; NULL if s is
 * NULL or on allocation failure (recorded). */
const char *js_keep_string(struct js_compiler *c, char *s);
/* A malloc'ed copy of uri without its fragment. */
char *js_strip_fragment(const char *uri);
/* The JSON pointer ptr + "/" + a (+ "/" + b), malloc'ed; NULL if out of memory. */
char *js_child_ptr(const char *ptr, const char *a, const char *b, size_t blen);
/* The JSON pointer ptr + "/" + a + "/" + index, malloc'ed. */
char *js_index_ptr(const char *ptr, const char *a, size_t index);

/* jsonschema_refs.c */

/* Whether keyword kw exists in the draft (contains, propertyNames: 6+;
 * if, then, else: 7). */
bool js_draft_has(int draft, const char *kw);
/* "$id", or "id" in draft-04. */
const char *js_id_keyword(int draft);
/* Takes json (a new reference, always consumed) as a document known as
 * uri, checks its depth, picks its draft and scans it. */
int js_add_doc(struct js_compiler *c, json_t *json, const char *uri, int fallback_draft,
               struct js_doc **out);
/* Resolves the recorded "$ref" of n and compiles its target. */
int js_link_ref(struct js_compiler *c, struct js_node *n);
/* Refuses cycles of schemas that apply to the same instance location. */
int js_check_cycles(struct js_compiler *c);

/* jsonschema_keywords.c */

/* Compiles the schema json at doc#ptr, where base is the base URI around
 * it. Takes ownership of ptr. Returns the node (memoized per schema
 * object), or NULL with c->rc set. */
struct js_node *js_compile_node(struct js_compiler *c, json_t *json, struct js_doc *doc,
                                const char *base, char *ptr);

#endif
