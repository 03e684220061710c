/*
 * jsonschema_keywords: pass 2 of compiling (see jsonschema.c): one schema
 * object becomes one node. Each keyword is checked for the type and range
 * its draft allows, and a mistake is reported at its JSON pointer with what
 * was expected. Unknown keywords are ignored, as the drafts require.
 */
#include "jsonschema_compile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pass 2: compile ---- */

static struct js_node *new_node(struct js_compiler *c, struct js_doc *doc, char *ptr)
{
	struct js_node *n = calloc(1, sizeof(*n));
	if (n == NULL || !PUSH(c->s->nodes, c->s->nnodes, c->s->capnodes, n)) {
		free(n);
		free(ptr);
		js_nomem(c);
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
static struct js_node *sub(struct js_compiler *c, struct js_node *parent, const char *base,
                           json_t *json, const char *kw, const char *key, size_t keylen)
{
	char *ptr = js_child_ptr(parent->ptr, kw, key, keylen);
	if (ptr == NULL) {
		js_nomem(c);
		return NULL;
	}
	return js_compile_node(c, json, (struct js_doc *)parent->doc, base, ptr);
}

static struct js_node *sub_index(struct js_compiler *c, struct js_node *parent, const char *base,
                                 json_t *json, const char *kw, size_t index)
{
	char *ptr = js_index_ptr(parent->ptr, kw, index);
	if (ptr == NULL) {
		js_nomem(c);
		return NULL;
	}
	return js_compile_node(c, json, (struct js_doc *)parent->doc, base, ptr);
}

/* Draft-04 "additionalItems"/"additionalProperties" may be booleans even
 * though draft-04 has no boolean schemas: compile them as nodes anyway. */
static struct js_node *sub_bool_ok(struct js_compiler *c, struct js_node *parent, const char *base,
                                   json_t *json, const char *kw)
{
	if (json_is_boolean(json) && parent->draft < 6) {
		char *ptr = js_child_ptr(parent->ptr, kw, NULL, 0);
		if (ptr == NULL) {
			js_nomem(c);
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

static int bad_type(struct js_compiler *c, struct js_node *n, const char *kw, const char *want,
                    const json_t *got)
{
	return js_error_at(c, n->doc, n->ptr, kw, "\"%s\" must be %s, got %s", kw, want,
	                   a_type(got));
}

/* Reads a non-negative integer keyword into *out (left alone if absent). */
static int get_count(struct js_compiler *c, struct js_node *n, json_t *json, const char *kw,
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
	return js_error_at(c, n->doc, n->ptr, kw, "\"%s\" must be a non-negative integer, got %s",
	                   kw, json_is_number(v) ? "a negative or fractional number" : a_type(v));
}

static int get_number(struct js_compiler *c, struct js_node *n, json_t *json, const char *kw,
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

static int type_bit(struct js_compiler *c, struct js_node *n, const json_t *v, unsigned *bits)
{
	if (!json_is_string(v))
		return js_error_at(c, n->doc, n->ptr, "type",
		                   "\"type\" must be a type name or an array of them, got %s",
		                   a_type(v));
	for (size_t i = 0; i < COUNT(type_names); i++) {
		if (strcmp(json_string_value(v), type_names[i].name) == 0) {
			*bits |= type_names[i].bit;
			return 0;
		}
	}
	return js_error_at(c, n->doc, n->ptr, "type",
	                   "unknown type \"%s\"; use \"array\", \"boolean\", \"integer\", "
	                   "\"null\", \"number\", \"object\" or \"string\"",
	                   json_string_value(v));
}

static int kw_generic(struct js_compiler *c, struct js_node *n, json_t *json)
{
	json_t *v;
	int rc;
	if ((v = json_object_get(json, "type")) != NULL) {
		if (json_is_array(v)) {
			if (json_array_size(v) == 0)
				return js_error_at(c, n->doc, n->ptr, "type",
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

static int kw_number(struct js_compiler *c, struct js_node *n, json_t *json)
{
	int rc;
	if ((rc = get_number(c, n, json, "maximum", &n->maximum)) != 0 ||
	    (rc = get_number(c, n, json, "minimum", &n->minimum)) != 0 ||
	    (rc = get_number(c, n, json, "multipleOf", &n->multiple_of)) != 0)
		return rc;
	if (n->multiple_of != NULL && json_number_value(n->multiple_of) <= 0)
		return js_error_at(c, n->doc, n->ptr, "multipleOf",
		                   "\"multipleOf\" must be greater than 0");
	static const char *const ex[] = {"exclusiveMaximum", "exclusiveMinimum"};
	for (int i = 0; i < 2; i++) {
		json_t *v = json_object_get(json, ex[i]);
		if (v == NULL)
			continue;
		if (n->draft < 6) {
			if (!json_is_boolean(v))
				return js_error_at(
				        c, n->doc, n->ptr, ex[i],
				        "in draft-04 \"%s\" is a boolean that makes \"%s\" "
				        "exclusive, got %s",
				        ex[i], i == 0 ? "maximum" : "minimum", a_type(v));
			if (i == 0)
				n->maximum_exclusive = json_is_true(v);
			else
				n->minimum_exclusive = json_is_true(v);
		} else {
			if (!json_is_number(v))
				return js_error_at(
				        c, n->doc, n->ptr, ex[i],
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

static int compile_pattern(struct js_compiler *c, struct js_node *n, const char *kw,
                           const char *key, size_t keylen, json_t *src,
                           struct jsonschema_regex **out)
{
	char *rerr = NULL;
	int rc = jsonschema_regex_compile(json_string_value(src), json_string_length(src), out,
	                                  &rerr);
	if (rc == -ENOMEM)
		return js_nomem(c);
	if (rc != 0) {
		char *ptr = key != NULL ? js_child_ptr(n->ptr, kw, key, keylen) : NULL;
		struct js_buf q = {0};
		js_buf_add_quoted(&q, json_string_value(src), json_string_length(src), 80);
		if (key != NULL && ptr == NULL)
			rc = js_nomem(c);
		else
			rc = js_error_at(c, n->doc, key != NULL ? ptr : n->ptr,
			                 key != NULL ? NULL : kw, "invalid pattern %s: %s",
			                 q.s != NULL ? q.s : "",
			                 rerr != NULL ? rerr : "syntax error");
		free(q.s);
		free(ptr);
	}
	free(rerr);
	return rc;
}

static int kw_string(struct js_compiler *c, struct js_node *n, json_t *json)
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

static int schema_kw(struct js_compiler *c, struct js_node *n, json_t *json, const char *base,
                     const char *kw, struct js_node **out)
{
	json_t *v = json_object_get(json, kw);
	if (v == NULL || !js_draft_has(n->draft, kw))
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

static int schema_array_kw(struct js_compiler *c, struct js_node *n, json_t *json, const char *base,
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
		return js_nomem(c);
	*count = len;
	for (size_t i = 0; i < len; i++) {
		json_t *item = json_array_get(v, i);
		if (!is_schema_value(n, item)) {
			char *ptr = js_index_ptr(n->ptr, kw, i);
			int rc = ptr == NULL ? js_nomem(c)
			                     : js_error_at(c, n->doc, ptr, NULL,
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

static int kw_array(struct js_compiler *c, struct js_node *n, json_t *json, const char *base)
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

static int string_array(struct js_compiler *c, struct js_node *n, const char *kw, const char *key,
                        json_t *v)
{
	char *ptr = key != NULL ? js_child_ptr(n->ptr, kw, key, strlen(key)) : strdup(n->ptr);
	int rc = 0;
	if (ptr == NULL)
		return js_nomem(c);
	if (!json_is_array(v)) {
		rc = js_error_at(c, n->doc, ptr, key != NULL ? NULL : kw,
		                 "\"%s\" must be an array of property names, got %s", kw,
		                 a_type(v));
	} else {
		for (size_t i = 0; i < json_array_size(v) && rc == 0; i++)
			if (!json_is_string(json_array_get(v, i)))
				rc = js_error_at(c, n->doc, ptr, key != NULL ? NULL : kw,
				                 "\"%s\" must hold only strings; item %zu is %s",
				                 kw, i, a_type(json_array_get(v, i)));
	}
	free(ptr);
	return rc;
}

/* Counts an object's members and checks that each is a schema. */
static int schema_map(struct js_compiler *c, struct js_node *n, json_t *v, const char *kw,
                      bool names_ok)
{
	if (!json_is_object(v))
		return bad_type(c, n, kw, "an object", v);
	for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
		json_t *m = json_object_iter_value(it);
		if (is_schema_value(n, m) || (names_ok && json_is_array(m)))
			continue;
		char *ptr = js_child_ptr(n->ptr, kw, json_object_iter_key(it),
		                         json_object_iter_key_len(it));
		int rc = ptr == NULL ? js_nomem(c)
		                     : js_error_at(c, n->doc, ptr, NULL,
		                                   "%s must be %sa schema (an object%s), got %s",
		                                   names_ok ? "a dependency" : "a member",
		                                   names_ok ? "an array of names or " : "",
		                                   n->draft >= 6 ? " or a boolean" : "", a_type(m));
		free(ptr);
		return rc;
	}
	return 0;
}

static int kw_object(struct js_compiler *c, struct js_node *n, json_t *json, const char *base)
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
			return js_nomem(c);
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
			return js_nomem(c);
		for (void *it = json_object_iter(v); it != NULL;
		     it = json_object_iter_next(v, it)) {
			struct js_pattern_prop *p = &n->pattern_props[n->npattern_props];
			p->src = json_object_iter_key(it);
			json_t *src = json_stringn_nocheck(p->src, json_object_iter_key_len(it));
			if (src == NULL)
				return js_nomem(c);
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
			return js_nomem(c);
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

static int kw_logic(struct js_compiler *c, struct js_node *n, json_t *json, const char *base)
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
static const char *inner_base(struct js_compiler *c, struct js_node *n, json_t *json,
                              const char *base)
{
	const char *kw = js_id_keyword(n->draft);
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
	char *res = full != NULL ? js_strip_fragment(full) : NULL;
	free(full);
	return js_keep_string(c, res);
}

/* Compiles the schema json at doc#ptr, where base is the base URI around
 * it. Takes ownership of ptr. Returns the node, or NULL with c->rc set. */
struct js_node *js_compile_node(struct js_compiler *c, json_t *json, struct js_doc *doc,
                                const char *base, char *ptr)
{
	if (json_is_object(json)) {
		struct js_node *done = js_map_get(&c->compiled, &json, sizeof(json));
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
			js_error_at(c, doc, n->ptr, NULL,
			            "boolean schemas need draft-06 or later; write {} for true and "
			            "{\"not\": {}} for false");
			return NULL;
		}
		n->is_bool = true;
		n->bool_value = json_is_true(json);
		return n;
	}
	if (!json_is_object(json)) {
		js_error_at(c, doc, n->ptr, NULL, "a schema must be an object%s, got %s",
		            n->draft >= 6 ? " or a boolean" : "", a_type(json));
		return NULL;
	}
	if (js_map_put(&c->compiled, &json, sizeof(json), n) != 0) {
		js_nomem(c);
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
			js_nomem(c);
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
