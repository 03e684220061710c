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
#include "jsonschema_compile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small hash map with byte-string keys ---- */

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

static struct js_map_entry *map_slot(const struct js_map *m, const void *key, size_t len)
{
	size_t i = key_hash(key, len) & (m->cap - 1);
	for (;;) {
		struct js_map_entry *e = &m->e[i];
		if (e->key == NULL || (e->len == len && memcmp(e->key, key, len) == 0))
			return e;
		i = (i + 1) & (m->cap - 1);
	}
}

void *js_map_get(const struct js_map *m, const void *key, size_t len)
{
	if (m->cap == 0)
		return NULL;
	struct js_map_entry *e = map_slot(m, key, len);
	return e->key != NULL ? e->val : NULL;
}

/* Returns 0, -EEXIST (the old value stays) or -ENOMEM. */
int js_map_put(struct js_map *m, const void *key, size_t len, void *val)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct js_map bigger = {0};
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
	struct js_map_entry *e = map_slot(m, key, len);
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

void js_map_release(struct js_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->e[i].key);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- helpers ---- */

/* Makes room for one more element in a growable array. The array pointer
 * is moved with memcpy so that no pointer is accessed through another
 * pointer type. */
bool js_grow(void *arrp, size_t n, size_t *cap, size_t elem)
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

int js_nomem(struct js_compiler *c)
{
	if (c->rc == 0)
		c->rc = -ENOMEM;
	return -ENOMEM;
}

/* Records the first error, located at doc#ptr (plus an optional keyword
 * and key below it). Returns -EINVAL. */
int js_error_at(struct js_compiler *c, const struct js_doc *doc, const char *ptr, const char *kw,
                const char *fmt, ...)
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
		return js_nomem(c);
	}
	c->err = b.s;
	c->rc = -EINVAL;
	return -EINVAL;
}

const char *js_keep_string(struct js_compiler *c, char *s)
{
	if (s == NULL || !PUSH(c->strings, c->nstrings, c->capstrings, s)) {
		free(s);
		js_nomem(c);
		return NULL;
	}
	return s;
}

/* A copy of uri without its fragment. */
char *js_strip_fragment(const char *uri)
{
	const char *hash = strchr(uri, '#');
	return strndup(uri, hash ? (size_t)(hash - uri) : strlen(uri));
}

/* The JSON pointer ptr + "/" + a (+ "/" + b), malloc'ed. */
char *js_child_ptr(const char *ptr, const char *a, const char *b, size_t blen)
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

char *js_index_ptr(const char *ptr, const char *a, size_t index)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%zu", index);
	return js_child_ptr(ptr, a, num, (size_t)n);
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

static void compiler_release(struct js_compiler *c)
{
	js_map_release(&c->ids);
	js_map_release(&c->infos);
	js_map_release(&c->compiled);
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
	struct js_compiler c = {0};
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
		js_error_at(&c, NULL, "", NULL, "unknown default draft %d; use 4, 6 or 7",
		            c.default_draft);
	} else if (js_add_doc(&c, json, opt->base_uri ? opt->base_uri : "", c.default_draft,
	                      &doc) == 0) {
		char *ptr = strdup("");
		if (ptr == NULL)
			js_nomem(&c);
		else
			c.s->root = js_compile_node(&c, doc->root, doc, doc->uri, ptr);
		for (size_t i = 0; c.rc == 0 && i < c.nrefs; i++)
			js_link_ref(&c, c.refs[i]);
		if (c.rc == 0)
			js_check_cycles(&c);
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
