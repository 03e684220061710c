/*
 * jsonschema: compiling. See jsonschema.h for the contract and
 * jsonschema_int.h for the node layout.
 *
 * Compiling a document takes three passes.
 *
 * 1. Scan. Every document (the root, then each one a "$ref" pulls in) is
 *    walked along the keywords that hold subschemas. For each schema object
 *    the scan records its JSON pointer and base URI, and registers every
 *    "$id" (draft-04: "id"): a URI names a resource, a "#name" an anchor.
 *    In drafts 4 to 7 a "$ref" makes its siblings meaningless, so an "$id"
 *    beside one is ignored; subschemas stored beside it are still scanned
 *    because pointers and anchors may reach them.
 *
 * 2. Compile. From the root, each schema object becomes a node with its
 *    keywords parsed and checked; "definitions" are compiled too, so a
 *    mistake in an unused definition still fails the compile. Nodes are
 *    memoized by their JSON value, so a schema reached twice (from the tree
 *    and from a "$ref") is one node. A "$ref" is only recorded here, with
 *    its URI resolved against the base in effect.
 *
 * 3. Link. Each recorded "$ref" is split into resource and fragment; the
 *    resource is looked up among the registered ids, else loaded (built-in
 *    meta-schemas first, then the caller's resolver) and scanned; the
 *    fragment is followed as a JSON pointer or looked up as an anchor; the
 *    target is compiled (which may record more refs). Finally the graph is
 *    checked for cycles that never move into the instance, such as
 *    {"allOf": [{"$ref": "#"}]}: validation would recurse forever, so the
 *    schema is refused.
 *
 * Everything the passes need is freed at the end; the compiled schema keeps
 * only its documents and nodes.
 */
#include "jsonschema_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small hash map with byte-string keys ---- */

struct map_entry {
	char *key; /* owned copy; NULL for an empty slot */
	size_t len;
	void *val;
};

struct map {
	struct map_entry *e;
	size_t cap; /* a power of two */
	size_t n;
};

static uint64_t key_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

static struct map_entry *map_slot(const struct map *m, const void *key, size_t len)
{
	size_t i = key_hash(key, len) & (m->cap - 1);
	for (;;) {
		struct map_entry *e = &m->e[i];
		if (e->key == NULL || (e->len == len && memcmp(e->key, key, len) == 0))
			return e;
		i = (i + 1) & (m->cap - 1);
	}
}

static void *map_get(const struct map *m, const void *key, size_t len)
{
	if (m->cap == 0)
		return NULL;
	struct map_entry *e = map_slot(m, key, len);
	return e->key != NULL ? e->val : NULL;
}

/* Returns 0, -EEXIST (the old value stays) or -ENOMEM. */
static int map_put(struct map *m, const void *key, size_t len, void *val)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct map bigger = {0};
		bigger.cap = m->cap ? m->cap * 2 : 64;
		bigger.e = calloc(bigger.cap, sizeof(*bigger.e));
		if (bigger.e == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->e[i].key != NULL)
				*map_slot(&bigger, m->e[i].key, m->e[i].len) = m->e[i];
		bigger.n = m->n;
		free(m->e);
		*m = bigger;
	}
	struct map_entry *e = map_slot(m, key, len);
	if (e->key != NULL)
		return -EEXIST;
	e->key = malloc(len + 1);
	if (e->key == NULL)
		return -ENOMEM;
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	e->len = len;
	e->val = val;
	m->n++;
	return 0;
}

static void map_release(struct map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->e[i].key);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- compile state ---- */

/* What the scan learned about one schema object. */
struct info {
	json_t *json;
	struct js_doc *doc;
	char *ptr;   /* JSON pointer in doc */
	char *base;  /* base URI around it (its parent's) */
	char *inner; /* base URI inside it (after its own "$id") */
};

struct compiler {
	struct jsonschema *s;
	int default_draft;
	unsigned max_depth;
	jsonschema_resolver_fn resolver;
	void *resolver_arg;
	struct map ids;      /* "uri" and "uri#anchor" -> struct info */
	struct map infos;    /* json_t * of a schema object -> struct info */
	struct map compiled; /* json_t * of a schema object -> struct js_node */
	struct info **all_infos;
	size_t ninfos, capinfos;
	char **strings; /* base URIs made while compiling */
	size_t nstrings, capstrings;
	struct js_node **refs; /* nodes whose "$ref" is not linked yet */
	size_t nrefs, caprefs;
	char *err; /* first error */
	int rc;
};

/* Makes room for one more element in a growable array. The array pointer
 * is moved with memcpy so that no pointer is accessed through another
 * pointer type. */
static bool grow(void *arrp, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return true;
	void *arr;
	memcpy(&arr, arrp, sizeof(arr));
	size_t ncap = *cap ? *cap * 2 : 16;
	void *na = realloc(arr, ncap * elem);
	if (na == NULL)
		return false;
	memcpy(arrp, &na, sizeof(na));
	*cap = ncap;
	return true;
}

#define PUSH(arr, n, cap, item)                                                                    \
	(grow(&(arr), (n), &(cap), sizeof(*(arr))) ? ((arr)[(n)++] = (item), true) : false)

static int nomem(struct compiler *c)
{
	if (c->rc == 0)
		c->rc = -ENOMEM;
	return -ENOMEM;
}

/* Records the first error, located at doc#ptr (plus an optional keyword
 * and key below it). Returns -EINVAL. */
__attribute__((format(printf, 5, 6))) static int error_at(struct compiler *c,
                                                          const struct js_doc *doc, const char *ptr,
                                                          const char *kw, const char *fmt, ...)
{
	if (c->rc != 0)
		return c->rc;
	struct js_buf b = {0};
	js_buf_adds(&b, doc != NULL ? doc->uri : "");
	js_buf_adds(&b, "#");
	js_buf_adds(&b, ptr);
	if (kw != NULL)
		js_buf_add_segment(&b, kw, strlen(kw));
	js_buf_adds(&b, ": ");
	va_list ap;
	va_start(ap, fmt);
	js_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	if (b.nomem) {
		free(b.s);
		return nomem(c);
	}
	c->err = b.s;
	c->rc = -EINVAL;
	return -EINVAL;
}

static const char *keep_string(struct compiler *c, char *s)
{
	if (s == NULL || !PUSH(c->strings, c->nstrings, c->capstrings, s)) {
		free(s);
		nomem(c);
		return NULL;
	}
	return s;
}

/* A copy of uri without its fragment. */
static char *strip_fragment(const char *uri)
{
	const char *hash = strchr(uri, '#');
	return strndup(uri, hash ? (size_t)(hash - uri) : strlen(uri));
}

/* The JSON pointer ptr + "/" + a (+ "/" + b), malloc'ed. */
static char *child_ptr(const char *ptr, const char *a, const char *b, size_t blen)
{
	struct js_buf buf = {0};
	js_buf_adds(&buf, ptr);
	js_buf_add_segment(&buf, a, strlen(a));
	if (b != NULL)
		js_buf_add_segment(&buf, b, blen);
	if (buf.nomem) {
		free(buf.s);
		return NULL;
	}
	return buf.s;
}

static char *index_ptr(const char *ptr, const char *a, size_t index)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%zu", index);
	return child_ptr(ptr, a, num, (size_t)n);
}

/* ---- pass 1: scan ---- */

static bool draft_has(int draft, const char *kw)
{
	if (strcmp(kw, "contains") == 0 || strcmp(kw, "propertyNames") == 0)
		return draft >= 6;
	if (strcmp(kw, "if") == 0 || strcmp(kw, "then") == 0 || strcmp(kw, "else") == 0)
		return draft >= 7;
	return true;
}

static const char *const single_kws[] = {"additionalItems",
                                         "additionalProperties",
                                         "not",
                                         "items",
                                         "contains",
                                         "propertyNames",
                                         "if",
                                         "then",
                                         "else"};
static const char *const array_kws[] = {"items", "allOf", "anyOf", "oneOf"};
static const char *const map_kws[] = {"properties", "patternProperties", "definitions",
                                      "dependencies"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *id_keyword(int draft)
{
	return draft >= 6 ? "$id" : "id";
}

static struct info *new_info(struct compiler *c, json_t *json, struct js_doc *doc, const char *ptr,
                             const char *base)
{
	struct info *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return NULL;
	in->json = json;
	in->doc = doc;
	in->ptr = strdup(ptr);
	in->base = strdup(base);
	in->inner = strdup(base);
	if (in->ptr == NULL || in->base == NULL || in->inner == NULL ||
	    !PUSH(c->all_infos, c->ninfos, c->capinfos, in)) {
		free(in->ptr);
		free(in->base);
		free(in->inner);
		free(in);
		return NULL;
	}
	return in;
}

static int register_id(struct compiler *c, const char *key, struct info *in, const char *kw)
{
	int rc = map_put(&c->ids, key, strlen(key), in);
	if (rc == -ENOMEM)
		return nomem(c);
	if (rc == -EEXIST && map_get(&c->ids, key, strlen(key)) != in) {
		struct info *old = map_get(&c->ids, key, strlen(key));
		return error_at(c, in->doc, in->ptr, kw, "\"%s\" is already the id of \"%s#%s\"",
		                key, old->doc->uri, old->ptr);
	}
	return 0;
}

/* Applies the "$id" of a schema object to base: sets in->inner and registers
 * the resource and anchor it names. */
static int scan_id(struct compiler *c, struct info *in)
{
	const char *kw = id_keyword(in->doc->draft);
	json_t *id = json_object_get(in->json, kw);
	if (id == NULL || !json_is_string(id))
		return 0; /* compile reports a non-string id */
	char *full = js_uri_resolve(in->base, json_string_value(id));
	if (full == NULL)
		return nomem(c);
	char *hash = strchr(full, '#');
	int rc = 0;
	if (json_string_value(id)[0] != '#') {
		char *res = strip_fragment(full);
		if (res == NULL) {
			rc = nomem(c);
			goto out;
		}
		free(in->inner);
		in->inner = res;
		rc = register_id(c, res, in, kw);
	}
	if (rc == 0 && hash != NULL && hash[1] != '\0' && hash[1] != '/')
		rc = register_id(c, full, in, kw);
out:
	free(full);
	return rc;
}

/* Scans the schema json at doc#ptr. The document root (root true) is
 * registered under the document's URI, whatever its type. */
static int scan(struct compiler *c, struct js_doc *doc, json_t *json, const char *base,
                struct js_buf *ptr, bool root)
{
	if (!json_is_object(json) && !root)
		return 0;
	if (ptr->nomem)
		return nomem(c);
	struct info *in = new_info(c, json, doc, ptr->s, base);
	if (in == NULL)
		return nomem(c);
	int rc;
	if (root && (rc = register_id(c, doc->uri, in, NULL)) != 0)
		return rc;
	if (!json_is_object(json))
		return 0;
	/* Only objects: true, false and null are shared singletons in jansson. */
	rc = map_put(&c->infos, &json, sizeof(json), in);
	if (rc == -ENOMEM)
		return nomem(c);
	/* Beside "$ref" an "$id" means nothing (drafts 4 to 7), but schemas
	 * kept there (often "definitions") can still be referred to. */
	if (json_object_get(json, "$ref") == NULL && (rc = scan_id(c, in)) != 0)
		return rc;
	size_t mark = ptr->len;
	int draft = doc->draft;
	for (size_t k = 0; k < COUNT(single_kws) && rc == 0; k++) {
		json_t *v = json_object_get(json, single_kws[k]);
		if (v != NULL && json_is_object(v) && draft_has(draft, single_kws[k])) {
			js_buf_add_segment(ptr, single_kws[k], strlen(single_kws[k]));
			rc = scan(c, doc, v, in->inner, ptr, false);
			ptr->len = mark;
			ptr->s[mark] = '\0';
		}
	}
	for (size_t k = 0; k < COUNT(array_kws) && rc == 0; k++) {
		json_t *arr = json_object_get(json, array_kws[k]);
		for (size_t i = 0; arr != NULL && json_is_array(arr) && i < json_array_size(arr);
		     i++) {
			js_buf_add_segment(ptr, array_kws[k], strlen(array_kws[k]));
			js_buf_addf(ptr, "/%zu", i);
			rc = scan(c, doc, json_array_get(arr, i), in->inner, ptr, false);
			ptr->len = mark;
			ptr->s[mark] = '\0';
			if (rc != 0)
				break;
		}
	}
	for (size_t k = 0; k < COUNT(map_kws) && rc == 0; k++) {
		json_t *obj = json_object_get(json, map_kws[k]);
		if (obj == NULL || !json_is_object(obj))
			continue;
		for (void *it = json_object_iter(obj); it != NULL && rc == 0;
		     it = json_object_iter_next(obj, it)) {
			js_buf_add_segment(ptr, map_kws[k], strlen(map_kws[k]));
			js_buf_add_segment(ptr, json_object_iter_key(it),
			                   json_object_iter_key_len(it));
			rc = scan(c, doc, json_object_iter_value(it), in->inner, ptr, false);
			ptr->len = mark;
			ptr->s[mark] = '\0';
		}
	}
	return rc;
}

/* The draft a document declares with "$schema", else fallback. */
static int doc_draft(struct compiler *c, struct js_doc *doc, int fallback)
{
	json_t *sv = json_is_object(doc->root) ? json_object_get(doc->root, "$schema") : NULL;
	if (sv == NULL)
		return fallback;
	if (!json_is_string(sv))
		return error_at(c, doc, "", "$schema", "\"$schema\" must be a string");
	const char *u = json_string_value(sv);
	const char *rest = strncmp(u, "http://", 7) == 0    ? u + 7
	                   : strncmp(u, "https://", 8) == 0 ? u + 8
	                                                    : "";
	size_t n = strlen(rest);
	if (n > 0 && rest[n - 1] == '#')
		n--;
	static const struct {
		const char *name;
		int draft;
	} known[] = {
	        {"json-schema.org/draft-04/schema", 4},
	        {"json-schema.org/draft-06/schema", 6},
	        {"json-schema.org/draft-07/schema", 7},
	        {"json-schema.org/schema", 7},
	};
	for (size_t i = 0; i < COUNT(known); i++)
		if (strlen(known[i].name) == n && strncmp(rest, known[i].name, n) == 0)
			return known[i].draft;
	return error_at(c, doc, "", "$schema",
	                "\"%s\" is not a supported \"$schema\"; use draft-04, draft-06 or "
	                "draft-07 (\"http://json-schema.org/draft-07/schema#\")",
	                u);
}

/* Takes json (a new reference) as a document known as uri, then scans it. */
static int add_doc(struct compiler *c, json_t *json, const char *uri, int fallback_draft,
                   struct js_doc **out)
{
	struct js_doc *doc = calloc(1, sizeof(*doc));
	if (doc == NULL) {
		json_decref(json);
		return nomem(c);
	}
	doc->root = json;
	doc->uri = strdup(uri);
	doc->draft = 7;
	if (doc->uri == NULL || !PUSH(c->s->docs, c->s->ndocs, c->s->capdocs, doc)) {
		json_decref(json);
		free(doc->uri);
		free(doc);
		return nomem(c);
	}
	if (js_depth_exceeds(json, c->max_depth))
		return error_at(c, doc, "", NULL,
		                "the schema nests deeper than %u levels; flatten it with "
		                "\"definitions\" and \"$ref\"",
		                c->max_depth);
	int draft = doc_draft(c, doc, fallback_draft);
	if (draft < 0)
		return draft;
	doc->draft = draft;
	struct js_buf ptr = {0};
	js_buf_add(&ptr, "", 0);
	int rc = scan(c, doc, json, uri, &ptr, true);
	free(ptr.s);
	if (rc == 0)
		*out = doc;
	return rc;
}

/* ---- pass 2: compile ---- */

static struct js_node *compile_node(struct compiler *c, json_t *json, struct js_doc *doc,
                                    const char *base, char *ptr);

static struct js_node *new_node(struct compiler *c, struct js_doc *doc, char *ptr)
{
	struct js_node *n = calloc(1, sizeof(*n));
	if (n == NULL || !PUSH(c->s->nodes, c->s->nnodes, c->s->capnodes, n)) {
		free(n);
		free(ptr);
		nomem(c);
		return NULL;
	}
	n->doc = doc;
	n->ptr = ptr;
	n->draft = doc->draft;
	n->max_length = n->min_length = -1;
	n->max_items = n->min_items = -1;
	n->max_properties = n->min_properties = -1;
	return n;
}

/* Compiles the subschema json found at parent's kw (and key or index). */
static struct js_node *sub(struct compiler *c, struct js_node *parent, const char *base,
                           json_t *json, const char *kw, const char *key, size_t keylen)
{
	char *ptr = child_ptr(parent->ptr, kw, key, keylen);
	if (ptr == NULL) {
		nomem(c);
		return NULL;
	}
	return compile_node(c, json, (struct js_doc *)parent->doc, base, ptr);
}

static struct js_node *sub_index(struct compiler *c, struct js_node *parent, const char *base,
                                 json_t *json, const char *kw, size_t index)
{
	char *ptr = index_ptr(parent->ptr, kw, index);
	if (ptr == NULL) {
		nomem(c);
		return NULL;
	}
	return compile_node(c, json, (struct js_doc *)parent->doc, base, ptr);
}

/* Draft-04 "additionalItems"/"additionalProperties" may be booleans even
 * though draft-04 has no boolean schemas: compile them as nodes anyway. */
static struct js_node *sub_bool_ok(struct compiler *c, struct js_node *parent, const char *base,
                                   json_t *json, const char *kw)
{
	if (json_is_boolean(json) && parent->draft < 6) {
		char *ptr = child_ptr(parent->ptr, kw, NULL, 0);
		if (ptr == NULL) {
			nomem(c);
			return NULL;
		}
		struct js_node *n = new_node(c, (struct js_doc *)parent->doc, ptr);
		if (n != NULL) {
			n->is_bool = true;
			n->bool_value = json_is_true(json);
		}
		return n;
	}
	return sub(c, parent, base, json, kw, NULL, 0);
}

static const char *a_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "a value";
}

static int bad_type(struct compiler *c, struct js_node *n, const char *kw, const char *want,
                    const json_t *got)
{
	return error_at(c, n->doc, n->ptr, kw, "\"%s\" must be %s, got %s", kw, want, a_type(got));
}

/* Reads a non-negative integer keyword into *out (left alone if absent). */
static int get_count(struct compiler *c, struct js_node *n, json_t *json, const char *kw,
                     int64_t *out)
{
	json_t *v = json_object_get(json, kw);
	if (v == NULL)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && n->draft >= 6) {
		double d = json_real_value(v);
		if (d >= 0 && floor(d) == d) {
			*out = d >= 9.2e18 ? INT64_MAX : (int64_t)d;
			return 0;
		}
	}
	return error_at(c, n->doc, n->ptr, kw, "\"%s\" must be a non-negative integer, got %s", kw,
	                json_is_number(v) ? "a negative or fractional number" : a_type(v));
}

static int get_number(struct compiler *c, struct js_node *n, json_t *json, const char *kw,
                      json_t **out)
{
	json_t *v = json_object_get(json, kw);
	if (v == NULL)
		return 0;
	if (!json_is_number(v))
		return bad_type(c, n, kw, "a number", v);
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	unsigned bit;
} type_names[] = {
        {"null", JS_T_NULL},       {"boolean", JS_T_BOOLEAN}, {"object", JS_T_OBJECT},
        {"array", JS_T_ARRAY},     {"number", JS_T_NUMBER},   {"string", JS_T_STRING},
        {"integer", JS_T_INTEGER},
};

static int type_bit(struct compiler *c, struct js_node *n, const json_t *v, unsigned *bits)
{
	if (!json_is_string(v))
		return error_at(c, n->doc, n->ptr, "type",
		                "\"type\" must be a type name or an array of them, got %s",
		                a_type(v));
	for (size_t i = 0; i < COUNT(type_names); i++) {
		if (strcmp(json_string_value(v), type_names[i].name) == 0) {
			*bits |= type_names[i].bit;
			return 0;
		}
	}
	return error_at(c, n->doc, n->ptr, "type",
	                "unknown type \"%s\"; use \"array\", \"boolean\", \"integer\", "
	                "\"null\", \"number\", \"object\" or \"string\"",
	                json_string_value(v));
}

static int kw_generic(struct compiler *c, struct js_node *n, json_t *json)
{
	json_t *v;
	int rc;
	if ((v = json_object_get(json, "type")) != NULL) {
		if (json_is_array(v)) {
			if (json_array_size(v) == 0)
				return error_at(c, n->doc, n->ptr, "type",
				                "\"type\" must not be an empty array");
			for (size_t i = 0; i < json_array_size(v); i++)
				if ((rc = type_bit(c, n, json_array_get(v, i), &n->types)) != 0)
					return rc;
		} else if ((rc = type_bit(c, n, v, &n->types)) != 0) {
			return rc;
		}
	}
	if ((v = json_object_get(json, "enum")) != NULL) {
		if (!json_is_array(v))
			return bad_type(c, n, "enum", "an array", v);
		n->enum_values = v;
	}
	if (n->draft >= 6 && (v = json_object_get(json, "const")) != NULL)
		n->const_value = v;
	return 0;
}

static int kw_number(struct compiler *c, struct js_node *n, json_t *json)
{
	int rc;
	if ((rc = get_number(c, n, json, "maximum", &n->maximum)) != 0 ||
	    (rc = get_number(c, n, json, "minimum", &n->minimum)) != 0 ||
	    (rc = get_number(c, n, json, "multipleOf", &n->multiple_of)) != 0)
		return rc;
	if (n->multiple_of != NULL && json_number_value(n->multiple_of) <= 0)
		return error_at(c, n->doc, n->ptr, "multipleOf",
		                "\"multipleOf\" must be greater than 0");
	static const char *const ex[] = {"exclusiveMaximum", "exclusiveMinimum"};
	for (int i = 0; i < 2; i++) {
		json_t *v = json_object_get(json, ex[i]);
		if (v == NULL)
			continue;
		if (n->draft < 6) {
			if (!json_is_boolean(v))
				return error_at(c, n->doc, n->ptr, ex[i],
				                "in draft-04 \"%s\" is a boolean that makes \"%s\" "
				                "exclusive, got %s",
				                ex[i], i == 0 ? "maximum" : "minimum", a_type(v));
			if (i == 0)
				n->maximum_exclusive = json_is_true(v);
			else
				n->minimum_exclusive = json_is_true(v);
		} else {
			if (!json_is_number(v))
				return error_at(c, n->doc, n->ptr, ex[i],
				                "\"%s\" must be a number (the limit itself since "
				                "draft-06), got %s",
				                ex[i], a_type(v));
			if (i == 0)
				n->exclusive_maximum = v;
			else
				n->exclusive_minimum = v;
		}
	}
	return 0;
}

static int compile_pattern(struct compiler *c, struct js_node *n, const char *kw, const char *key,
                           size_t keylen, json_t *src, struct jsonschema_regex **out)
{
	char *rerr = NULL;
	int rc = jsonschema_regex_compile(json_string_value(src), json_string_length(src), out,
	                                  &rerr);
	if (rc == -ENOMEM)
		return nomem(c);
	if (rc != 0) {
		char *ptr = key != NULL ? child_ptr(n->ptr, kw, key, keylen) : NULL;
		struct js_buf q = {0};
		js_buf_add_quoted(&q, json_string_value(src), json_string_length(src), 80);
		if (key != NULL && ptr == NULL)
			rc = nomem(c);
		else
			rc = error_at(c, n->doc, key != NULL ? ptr : n->ptr,
			              key != NULL ? NULL : kw, "invalid pattern %s: %s",
			              q.s != NULL ? q.s : "", rerr != NULL ? rerr : "syntax error");
		free(q.s);
		free(ptr);
	}
	free(rerr);
	return rc;
}

static int kw_string(struct compiler *c, struct js_node *n, json_t *json)
{
	int rc;
	json_t *v;
	if ((rc = get_count(c, n, json, "maxLength", &n->max_length)) != 0 ||
	    (rc = get_count(c, n, json, "minLength", &n->min_length)) != 0)
		return rc;
	if ((v = json_object_get(json, "pattern")) != NULL) {
		if (!json_is_string(v))
			return bad_type(c, n, "pattern", "a string", v);
		n->pattern_src = json_string_value(v);
		if ((rc = compile_pattern(c, n, "pattern", NULL, 0, v, &n->pattern)) != 0)
			return rc;
	}
	if ((v = json_object_get(json, "format")) != NULL) {
		if (!json_is_string(v))
			return bad_type(c, n, "format", "a string", v);
		n->format_name = json_string_value(v);
		if (c->s->format_assert)
			n->format = js_format_lookup(n->format_name);
	}
	if (n->draft >= 7 && c->s->content_assert) {
		if ((v = json_object_get(json, "contentEncoding")) != NULL) {
			if (!json_is_string(v))
				return bad_type(c, n, "contentEncoding", "a string", v);
			n->content_base64 = strcmp(json_string_value(v), "base64") == 0;
		}
		if ((v = json_object_get(json, "contentMediaType")) != NULL) {
			if (!json_is_string(v))
				return bad_type(c, n, "contentMediaType", "a string", v);
			n->content_json = strcmp(json_string_value(v), "application/json") == 0;
		}
	}
	return 0;
}

/* A schema-valued keyword: object (or boolean from draft-06 on). */
static bool is_schema_value(const struct js_node *n, const json_t *v)
{
	return json_is_object(v) || (json_is_boolean(v) && n->draft >= 6);
}

static int schema_kw(struct compiler *c, struct js_node *n, json_t *json, const char *base,
                     const char *kw, struct js_node **out)
{
	json_t *v = json_object_get(json, kw);
	if (v == NULL || !draft_has(n->draft, kw))
		return 0;
	bool bool_ok =
	        strcmp(kw, "additionalItems") == 0 || strcmp(kw, "additionalProperties") == 0;
	if (!is_schema_value(n, v) && !(bool_ok && json_is_boolean(v)))
		return bad_type(c, n, kw,
		                n->draft >= 6 ? "a schema (an object or a boolean)"
		                              : "a schema (an object)",
		                v);
	*out = bool_ok ? sub_bool_ok(c, n, base, v, kw) : sub(c, n, base, v, kw, NULL, 0);
	return *out != NULL ? 0 : c->rc;
}

static int schema_array_kw(struct compiler *c, struct js_node *n, json_t *json, const char *base,
                           const char *kw, struct js_node ***out, size_t *count)
{
	json_t *v = json_object_get(json, kw);
	if (v == NULL)
		return 0;
	if (!json_is_array(v) || (json_array_size(v) == 0 && strcmp(kw, "items") != 0))
		return bad_type(c, n, kw, "a non-empty array of schemas", v);
	size_t len = json_array_size(v);
	*out = calloc(len ? len : 1, sizeof(**out));
	if (*out == NULL)
		return nomem(c);
	*count = len;
	for (size_t i = 0; i < len; i++) {
		json_t *item = json_array_get(v, i);
		if (!is_schema_value(n, item)) {
			char *ptr = index_ptr(n->ptr, kw, i);
			int rc = ptr == NULL ? nomem(c)
			                     : error_at(c, n->doc, ptr, NULL,
			                                "a schema must be an object%s, got %s",
			                                n->draft >= 6 ? " or a boolean" : "",
			                                a_type(item));
			free(ptr);
			return rc;
		}
		if (((*out)[i] = sub_index(c, n, base, item, kw, i)) == NULL)
			return c->rc;
	}
	return 0;
}

static int kw_array(struct compiler *c, struct js_node *n, json_t *json, const char *base)
{
	int rc;
	json_t *v = json_object_get(json, "items");
	if (v != NULL && json_is_array(v)) {
		n->has_tuple = true;
		if ((rc = schema_array_kw(c, n, json, base, "items", &n->tuple, &n->ntuple)) != 0)
			return rc;
	} else if ((rc = schema_kw(c, n, json, base, "items", &n->items)) != 0) {
		return rc;
	}
	if ((rc = schema_kw(c, n, json, base, "additionalItems", &n->additional_items)) != 0 ||
	    (rc = schema_kw(c, n, json, base, "contains", &n->contains)) != 0 ||
	    (rc = get_count(c, n, json, "maxItems", &n->max_items)) != 0 ||
	    (rc = get_count(c, n, json, "minItems", &n->min_items)) != 0)
		return rc;
	if ((v = json_object_get(json, "uniqueItems")) != NULL) {
		if (!json_is_boolean(v))
			return bad_type(c, n, "uniqueItems", "a boolean", v);
		n->unique_items = json_is_true(v);
	}
	return 0;
}

static int string_array(struct compiler *c, struct js_node *n, const char *kw, const char *key,
                        json_t *v)
{
	char *ptr = key != NULL ? child_ptr(n->ptr, kw, key, strlen(key)) : strdup(n->ptr);
	int rc = 0;
	if (ptr == NULL)
		return nomem(c);
	if (!json_is_array(v)) {
		rc = error_at(c, n->doc, ptr, key != NULL ? NULL : kw,
		              "\"%s\" must be an array of property names, got %s", kw, a_type(v));
	} else {
		for (size_t i = 0; i < json_array_size(v) && rc == 0; i++)
			if (!json_is_string(json_array_get(v, i)))
				rc = error_at(c, n->doc, ptr, key != NULL ? NULL : kw,
				              "\"%s\" must hold only strings; item %zu is %s", kw,
				              i, a_type(json_array_get(v, i)));
	}
	free(ptr);
	return rc;
}

/* Counts an object's members and checks that each is a schema. */
static int schema_map(struct compiler *c, struct js_node *n, json_t *v, const char *kw,
                      bool names_ok)
{
	if (!json_is_object(v))
		return bad_type(c, n, kw, "an object", v);
	for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
		json_t *m = json_object_iter_value(it);
		if (is_schema_value(n, m) || (names_ok && json_is_array(m)))
			continue;
		char *ptr = child_ptr(n->ptr, kw, json_object_iter_key(it),
		                      json_object_iter_key_len(it));
		int rc = ptr == NULL ? nomem(c)
		                     : error_at(c, n->doc, ptr, NULL,
		                                "%s must be %sa schema (an object%s), got %s",
		                                names_ok ? "a dependency" : "a member",
		                                names_ok ? "an array of names or " : "",
		                                n->draft >= 6 ? " or a boolean" : "", a_type(m));
		free(ptr);
		return rc;
	}
	return 0;
}

static int kw_object(struct compiler *c, struct js_node *n, json_t *json, const char *base)
{
	int rc;
	json_t *v;
	if ((rc = get_count(c, n, json, "maxProperties", &n->max_properties)) != 0 ||
	    (rc = get_count(c, n, json, "minProperties", &n->min_properties)) != 0)
		return rc;
	if ((v = json_object_get(json, "required")) != NULL) {
		if ((rc = string_array(c, n, "required", NULL, v)) != 0)
			return rc;
		n->required = v;
	}
	if ((v = json_object_get(json, "properties")) != NULL) {
		if ((rc = schema_map(c, n, v, "properties", false)) != 0)
			return rc;
		n->props_json = v;
		n->props = calloc(json_object_size(v) + 1, sizeof(*n->props));
		if (n->props == NULL)
			return nomem(c);
		for (void *it = json_object_iter(v); it != NULL;
		     it = json_object_iter_next(v, it)) {
			struct js_prop *p = &n->props[n->nprops];
			p->name = json_object_iter_key(it);
			p->len = json_object_iter_key_len(it);
			p->schema = sub(c, n, base, json_object_iter_value(it), "properties",
			                p->name, p->len);
			if (p->schema == NULL)
				return c->rc;
			n->nprops++;
		}
	}
	if ((v = json_object_get(json, "patternProperties")) != NULL) {
		if ((rc = schema_map(c, n, v, "patternProperties", false)) != 0)
			return rc;
		n->pattern_props = calloc(json_object_size(v) + 1, sizeof(*n->pattern_props));
		if (n->pattern_props == NULL)
			return nomem(c);
		for (void *it = json_object_iter(v); it != NULL;
		     it = json_object_iter_next(v, it)) {
			struct js_pattern_prop *p = &n->pattern_props[n->npattern_props];
			p->src = json_object_iter_key(it);
			json_t *src = json_stringn_nocheck(p->src, json_object_iter_key_len(it));
			if (src == NULL)
				return nomem(c);
			rc = compile_pattern(c, n, "patternProperties", p->src,
			                     json_object_iter_key_len(it), src, &p->re);
			json_decref(src);
			if (rc != 0)
				return rc;
			n->npattern_props++; /* counted now so that destroy frees p->re */
			p->schema = sub(c, n, base, json_object_iter_value(it), "patternProperties",
			                p->src, json_object_iter_key_len(it));
			if (p->schema == NULL)
				return c->rc;
		}
	}
	if ((rc = schema_kw(c, n, json, base, "additionalProperties", &n->additional_props)) != 0 ||
	    (rc = schema_kw(c, n, json, base, "propertyNames", &n->property_names)) != 0)
		return rc;
	if ((v = json_object_get(json, "dependencies")) != NULL) {
		if ((rc = schema_map(c, n, v, "dependencies", true)) != 0)
			return rc;
		n->deps = calloc(json_object_size(v) + 1, sizeof(*n->deps));
		if (n->deps == NULL)
			return nomem(c);
		for (void *it = json_object_iter(v); it != NULL;
		     it = json_object_iter_next(v, it)) {
			struct js_dep *d = &n->deps[n->ndeps];
			d->name = json_object_iter_key(it);
			d->len = json_object_iter_key_len(it);
			json_t *m = json_object_iter_value(it);
			if (json_is_array(m)) {
				if ((rc = string_array(c, n, "dependencies", d->name, m)) != 0)
					return rc;
				d->names = m;
			} else if ((d->schema = sub(c, n, base, m, "dependencies", d->name,
			                            d->len)) == NULL) {
				return c->rc;
			}
			n->ndeps++;
		}
	}
	if ((v = json_object_get(json, "definitions")) != NULL) {
		if ((rc = schema_map(c, n, v, "definitions", false)) != 0)
			return rc;
		for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it))
			if (sub(c, n, base, json_object_iter_value(it), "definitions",
			        json_object_iter_key(it), json_object_iter_key_len(it)) == NULL)
				return c->rc;
	}
	return 0;
}

static int kw_logic(struct compiler *c, struct js_node *n, json_t *json, const char *base)
{
	int rc;
	if ((rc = schema_array_kw(c, n, json, base, "allOf", &n->all_of, &n->nall_of)) != 0 ||
	    (rc = schema_array_kw(c, n, json, base, "anyOf", &n->any_of, &n->nany_of)) != 0 ||
	    (rc = schema_array_kw(c, n, json, base, "oneOf", &n->one_of, &n->none_of)) != 0 ||
	    (rc = schema_kw(c, n, json, base, "not", &n->not_)) != 0 ||
	    (rc = schema_kw(c, n, json, base, "if", &n->if_)) != 0 ||
	    (rc = schema_kw(c, n, json, base, "then", &n->then_)) != 0 ||
	    (rc = schema_kw(c, n, json, base, "else", &n->else_)) != 0)
		return rc;
	return 0;
}

/* The base URI inside a schema object: base, changed by its own "$id". */
static const char *inner_base(struct compiler *c, struct js_node *n, json_t *json, const char *base)
{
	const char *kw = id_keyword(n->draft);
	json_t *id = json_object_get(json, kw);
	if (id == NULL)
		return base;
	if (!json_is_string(id)) {
		bad_type(c, n, kw, "a string", id);
		return NULL;
	}
	if (json_string_value(id)[0] == '#')
		return base; /* an anchor: the base stays */
	char *full = js_uri_resolve(base, json_string_value(id));
	char *res = full != NULL ? strip_fragment(full) : NULL;
	free(full);
	return keep_string(c, res);
}

/* Compiles the schema json at doc#ptr, where base is the base URI around
 * it. Takes ownership of ptr. Returns the node, or NULL with c->rc set. */
static struct js_node *compile_node(struct compiler *c, json_t *json, struct js_doc *doc,
                                    const char *base, char *ptr)
{
	if (json_is_object(json)) {
		struct js_node *done = map_get(&c->compiled, &json, sizeof(json));
		if (done != NULL) {
			free(ptr);
			return done;
		}
	}
	struct js_node *n = new_node(c, doc, ptr);
	if (n == NULL)
		return NULL;
	if (json_is_boolean(json)) {
		if (n->draft < 6) {
			error_at(c, doc, n->ptr, NULL,
			         "boolean schemas need draft-06 or later; write {} for true and "
			         "{\"not\": {}} for false");
			return NULL;
		}
		n->is_bool = true;
		n->bool_value = json_is_true(json);
		return n;
	}
	if (!json_is_object(json)) {
		error_at(c, doc, n->ptr, NULL, "a schema must be an object%s, got %s",
		         n->draft >= 6 ? " or a boolean" : "", a_type(json));
		return NULL;
	}
	if (map_put(&c->compiled, &json, sizeof(json), n) != 0) {
		nomem(c);
		return NULL;
	}
	json_t *ref = json_object_get(json, "$ref");
	if (ref != NULL) {
		if (!json_is_string(ref)) {
			bad_type(c, n, "$ref", "a string", ref);
			return NULL;
		}
		n->ref_uri = js_uri_resolve(base, json_string_value(ref));
		if (n->ref_uri == NULL || !PUSH(c->refs, c->nrefs, c->caprefs, n)) {
			nomem(c);
			return NULL;
		}
		return n;
	}
	const char *inner = inner_base(c, n, json, base);
	if (inner == NULL)
		return NULL;
	if (kw_generic(c, n, json) != 0 || kw_number(c, n, json) != 0 ||
	    kw_string(c, n, json) != 0 || kw_array(c, n, json, inner) != 0 ||
	    kw_object(c, n, json, inner) != 0 || kw_logic(c, n, json, inner) != 0)
		return NULL;
	return n;
}

/* ---- pass 3: link ---- */

static int load_document(struct compiler *c, const char *uri, struct js_node *from)
{
	if (c->s->ndocs >= JSONSCHEMA_MAX_DOCUMENTS)
		return error_at(c, from->doc, from->ptr, "$ref",
		                "cannot load \"%s\": more than %d schema documents are involved",
		                uri, JSONSCHEMA_MAX_DOCUMENTS);
	json_t *json = NULL;
	const char *meta = js_meta_schema(uri);
	if (meta != NULL) {
		json = json_loads(meta, 0, NULL);
		if (json == NULL)
			return nomem(c);
	} else if (c->resolver != NULL) {
		char *rerr = NULL;
		int rc = c->resolver(c->resolver_arg, uri, &json, &rerr);
		if (rc < 0 || json == NULL) {
			error_at(c, from->doc, from->ptr, "$ref", "cannot load \"%s\": %s", uri,
			         rerr != NULL ? rerr
			         : rc < 0     ? strerror(-rc)
			                      : "the resolver returned nothing");
			free(rerr);
			json_decref(json);
			return c->rc;
		}
		free(rerr);
	} else {
		return error_at(c, from->doc, from->ptr, "$ref",
		                "cannot resolve \"%s\": it is outside this schema and no resolver "
		                "is configured",
		                uri);
	}
	struct js_doc *doc;
	return add_doc(c, json, uri, from->draft, &doc);
}

/* Follows the JSON pointer frag from the resource in; fills the target's
 * value, base and pointer. */
static int follow_pointer(struct compiler *c, struct js_node *from, struct info *in,
                          const char *frag, json_t **target, const char **base, char **ptr)
{
	json_t *cur = in->json;
	struct info *last = in; /* the last scanned schema on the way */
	struct js_buf path = {0};
	js_buf_adds(&path, in->ptr);
	const char *p = frag;
	while (*p == '/') {
		p++;
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		/* Unescape ~1 and ~0. */
		char *seg = malloc(n + 1);
		if (seg == NULL) {
			free(path.s);
			return nomem(c);
		}
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
				seg[k++] = p[i + 1] == '0' ? '~' : '/';
				i++;
			} else {
				seg[k++] = p[i];
			}
		}
		seg[k] = '\0';
		json_t *next = NULL;
		if (json_is_object(cur)) {
			next = json_object_getn(cur, seg, k);
		} else if (json_is_array(cur) && k > 0 && k < 19 && (seg[0] != '0' || k == 1) &&
		           strspn(seg, "0123456789") == k) {
			next = json_array_get(cur, strtoull(seg, NULL, 10));
		}
		js_buf_add_segment(&path, seg, k);
		free(seg);
		if (next == NULL) {
			int rc =
			        error_at(c, from->doc, from->ptr, "$ref",
			                 "cannot resolve \"%s\": nothing at \"%s#%s\"",
			                 from->ref_uri, in->doc->uri, path.s != NULL ? path.s : "");
			free(path.s);
			return rc;
		}
		cur = next;
		struct info *si =
		        json_is_object(cur) ? map_get(&c->infos, &cur, sizeof(cur)) : NULL;
		if (si != NULL)
			last = si;
		p += n;
	}
	if (path.nomem) {
		free(path.s);
		return nomem(c);
	}
	*target = cur;
	*base = last->json == cur ? last->base : last->inner;
	*ptr = path.s;
	return 0;
}

static int link_ref(struct compiler *c, struct js_node *n)
{
	const char *uri = n->ref_uri;
	const char *hash = strchr(uri, '#');
	size_t reslen = hash ? (size_t)(hash - uri) : strlen(uri);
	char *res = strndup(uri, reslen);
	bool oom = false;
	char *frag = js_percent_decode(hash ? hash + 1 : "", hash ? strlen(hash + 1) : 0, &oom);
	char *ptr = NULL;
	int rc = 0;
	if (res == NULL || oom) {
		rc = nomem(c);
		goto out;
	}
	if (frag == NULL) {
		rc = error_at(c, n->doc, n->ptr, "$ref", "invalid %%-escape in \"%s\"", uri);
		goto out;
	}
	struct info *in = map_get(&c->ids, res, reslen);
	if (in == NULL) {
		if ((rc = load_document(c, res, n)) != 0)
			goto out;
		in = map_get(&c->ids, res, reslen);
		if (in == NULL) {
			rc = error_at(c, n->doc, n->ptr, "$ref", "cannot resolve \"%s\"", uri);
			goto out;
		}
	}
	json_t *target;
	const char *base;
	if (frag[0] == '\0') {
		target = in->json;
		base = in->base;
		ptr = strdup(in->ptr);
	} else if (frag[0] == '/') {
		if ((rc = follow_pointer(c, n, in, frag, &target, &base, &ptr)) != 0)
			goto out;
	} else {
		struct js_buf key = {0};
		js_buf_adds(&key, res);
		js_buf_adds(&key, "#");
		js_buf_adds(&key, frag);
		struct info *an = key.nomem ? NULL : map_get(&c->ids, key.s, key.len);
		free(key.s);
		if (key.nomem) {
			rc = nomem(c);
			goto out;
		}
		if (an == NULL) {
			rc = error_at(c, n->doc, n->ptr, "$ref",
			              "cannot resolve \"%s\": no schema has the id \"#%s\"", uri,
			              frag);
			goto out;
		}
		in = an;
		target = in->json;
		base = in->base;
		ptr = strdup(in->ptr);
	}
	if (ptr == NULL) {
		rc = nomem(c);
		goto out;
	}
	struct js_doc *doc = in->doc;
	n->ref = compile_node(c, target, doc, base, ptr);
	ptr = NULL;
	if (n->ref == NULL)
		rc = c->rc;
out:
	free(res);
	free(frag);
	free(ptr);
	return rc;
}

/*
 * The i-th edge from n to a schema that applies to the same instance
 * location. Returns false past the last edge; *out may be NULL for an edge
 * that is absent.
 */
static bool same_place_edge(const struct js_node *n, size_t i, struct js_node **out)
{
	*out = NULL;
	if (n->ref != NULL) {
		*out = n->ref;
		return i == 0;
	}
	if (i < n->nall_of) {
		*out = n->all_of[i];
		return true;
	}
	i -= n->nall_of;
	if (i < n->nany_of) {
		*out = n->any_of[i];
		return true;
	}
	i -= n->nany_of;
	if (i < n->none_of) {
		*out = n->one_of[i];
		return true;
	}
	i -= n->none_of;
	if (i < n->ndeps) {
		*out = n->deps[i].schema;
		return true;
	}
	i -= n->ndeps;
	struct js_node *singles[] = {n->not_, n->if_, n->if_ ? n->then_ : NULL,
	                             n->if_ ? n->else_ : NULL};
	if (i < COUNT(singles)) {
		*out = singles[i];
		return true;
	}
	return false;
}

/* Refuses a cycle of schemas that all apply to the same instance location:
 * validating against it would recurse without end. */
static int check_cycles(struct compiler *c)
{
	struct jsonschema *s = c->s;
	struct frame {
		struct js_node *n;
		size_t edge;
	} *st = malloc((s->nnodes + 1) * sizeof(*st));
	if (st == NULL)
		return nomem(c);
	int rc = 0;
	for (size_t k = 0; k < s->nnodes && rc == 0; k++) {
		if (s->nodes[k]->mark != 0)
			continue;
		size_t sp = 0;
		st[sp++] = (struct frame){s->nodes[k], 0};
		s->nodes[k]->mark = 1;
		while (sp > 0 && rc == 0) {
			struct frame *f = &st[sp - 1];
			struct js_node *next;
			if (!same_place_edge(f->n, f->edge++, &next)) {
				f->n->mark = 2;
				sp--;
			} else if (next == NULL || next->mark == 2) {
				continue;
			} else if (next->mark == 1) {
				rc = error_at(
				        c, f->n->doc, f->n->ptr, NULL,
				        "this schema leads back to \"%s#%s\" without descending "
				        "into the instance, so validation would never end",
				        next->doc->uri, next->ptr);
			} else {
				next->mark = 1;
				st[sp++] = (struct frame){next, 0};
			}
		}
	}
	free(st);
	return rc;
}

/* ---- public entry points ---- */

static void node_free(struct js_node *n)
{
	free(n->ptr);
	free(n->ref_uri);
	jsonschema_regex_destroy(n->pattern);
	free(n->tuple);
	free(n->props);
	for (size_t i = 0; i < n->npattern_props; i++)
		jsonschema_regex_destroy(n->pattern_props[i].re);
	free(n->pattern_props);
	free(n->deps);
	free(n->all_of);
	free(n->any_of);
	free(n->one_of);
	free(n);
}

void jsonschema_destroy(struct jsonschema *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nnodes; i++)
		node_free(s->nodes[i]);
	free(s->nodes);
	for (size_t i = 0; i < s->ndocs; i++) {
		json_decref(s->docs[i]->root);
		free(s->docs[i]->uri);
		free(s->docs[i]);
	}
	free(s->docs);
	free(s);
}

enum jsonschema_draft jsonschema_draft(const struct jsonschema *s)
{
	return (enum jsonschema_draft)s->docs[0]->draft;
}

static void compiler_release(struct compiler *c)
{
	map_release(&c->ids);
	map_release(&c->infos);
	map_release(&c->compiled);
	for (size_t i = 0; i < c->ninfos; i++) {
		free(c->all_infos[i]->ptr);
		free(c->all_infos[i]->base);
		free(c->all_infos[i]->inner);
		free(c->all_infos[i]);
	}
	free(c->all_infos);
	for (size_t i = 0; i < c->nstrings; i++)
		free(c->strings[i]);
	free(c->strings);
	free(c->refs);
	free(c->err);
}

/* Compiles the document json (a new reference, always consumed). */
static int compile_doc(json_t *json, const struct jsonschema_options *opt, struct jsonschema **out,
                       char **err)
{
	struct jsonschema_options none = {0};
	if (opt == NULL)
		opt = &none;
	struct compiler c = {0};
	c.default_draft = opt->default_draft != 0 ? (int)opt->default_draft : 7;
	c.max_depth = opt->max_schema_depth ? opt->max_schema_depth : JSONSCHEMA_MAX_SCHEMA_DEPTH;
	c.resolver = opt->resolver;
	c.resolver_arg = opt->resolver_arg;
	c.s = calloc(1, sizeof(*c.s));
	if (c.s == NULL) {
		json_decref(json);
		return -ENOMEM;
	}
	c.s->max_instance_depth =
	        opt->max_instance_depth ? opt->max_instance_depth : JSONSCHEMA_MAX_INSTANCE_DEPTH;
	c.s->regex_steps = opt->regex_steps ? opt->regex_steps : JSONSCHEMA_REGEX_STEPS;
	c.s->format_assert = !opt->format_annotation_only;
	c.s->content_assert = opt->content_assertion;

	struct js_doc *doc = NULL;
	if (c.default_draft != 4 && c.default_draft != 6 && c.default_draft != 7) {
		json_decref(json);
		error_at(&c, NULL, "", NULL, "unknown default draft %d; use 4, 6 or 7",
		         c.default_draft);
	} else if (add_doc(&c, json, opt->base_uri ? opt->base_uri : "", c.default_draft, &doc) ==
	           0) {
		char *ptr = strdup("");
		if (ptr == NULL)
			nomem(&c);
		else
			c.s->root = compile_node(&c, doc->root, doc, doc->uri, ptr);
		for (size_t i = 0; c.rc == 0 && i < c.nrefs; i++)
			link_ref(&c, c.refs[i]);
		if (c.rc == 0)
			check_cycles(&c);
	}
	int rc = c.rc;
	if (rc == 0) {
		*out = c.s;
		c.s = NULL;
	} else if (err != NULL && rc == -EINVAL) {
		*err = c.err;
		c.err = NULL;
	}
	jsonschema_destroy(c.s);
	compiler_release(&c);
	return rc;
}

int jsonschema_compile_json(const json_t *schema, const struct jsonschema_options *opt,
                            struct jsonschema **out, char **err)
{
	unsigned depth = opt != NULL && opt->max_schema_depth ? opt->max_schema_depth
	                                                      : JSONSCHEMA_MAX_SCHEMA_DEPTH;
	/* Check before copying: json_deep_copy recurses. */
	if (js_depth_exceeds(schema, depth)) {
		if (err != NULL) {
			struct js_buf b = {0};
			js_buf_addf(&b,
			            "%s#: the schema nests deeper than %u levels; flatten it with "
			            "\"definitions\" and \"$ref\"",
			            opt != NULL && opt->base_uri ? opt->base_uri : "", depth);
			if (b.nomem) {
				free(b.s);
				return -ENOMEM;
			}
			*err = b.s;
		}
		return -EINVAL;
	}
	json_t *copy = json_deep_copy(schema);
	if (copy == NULL)
		return -ENOMEM;
	return compile_doc(copy, opt, out, err);
}

int jsonschema_parse(const char *text, size_t len, json_t **out, char **err)
{
	json_error_t e;
	size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
	json_t *v = json_loadb(text, len, flags, &e);
	if (v == NULL && json_error_code(&e) == json_error_numeric_overflow)
		v = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &e);
	if (v == NULL) {
		if (json_error_code(&e) == json_error_out_of_memory)
			return -ENOMEM;
		if (err != NULL) {
			struct js_buf b = {0};
			js_buf_addf(&b, "invalid JSON at line %d, column %d: %s", e.line, e.column,
			            e.text);
			if (b.nomem) {
				free(b.s);
				return -ENOMEM;
			}
			*err = b.s;
		}
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int jsonschema_compile(const char *text, size_t len, const struct jsonschema_options *opt,
                       struct jsonschema **out, char **err)
{
	json_t *json;
	char *perr = NULL;
	int rc = jsonschema_parse(text, len, &json, &perr);
	if (rc != 0) {
		if (rc == -EINVAL && err != NULL) {
			struct js_buf b = {0};
			js_buf_addf(&b, "%s: %s",
			            opt != NULL && opt->base_uri ? opt->base_uri : "schema", perr);
			if (b.nomem) {
				free(b.s);
				rc = -ENOMEM;
			} else {
				*err = b.s;
			}
		}
		free(perr);
		return rc;
	}
	return compile_doc(json, opt, out, err);
}
