/*
 * jsonschema_refs: documents, the "$id" scan and "$ref" linking (passes 1
 * and 3 of compiling; see jsonschema.c), and the cycle check.
 */
#include "jsonschema_compile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- pass 1: scan ---- */

bool js_draft_has(int draft, const char *kw)
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

const char *js_id_keyword(int draft)
{
	return draft >= 6 ? "$id" : "id";
}

static struct js_info *new_info(struct js_compiler *c, json_t *json, struct js_doc *doc,
                                const char *ptr, const char *base)
{
	struct js_info *in = calloc(1, sizeof(*in));
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

static int register_id(struct js_compiler *c, const char *key, struct js_info *in, const char *kw)
{
	int rc = js_map_put(&c->ids, key, strlen(key), in);
	if (rc == -ENOMEM)
		return js_nomem(c);
	if (rc == -EEXIST && js_map_get(&c->ids, key, strlen(key)) != in) {
		struct js_info *old = js_map_get(&c->ids, key, strlen(key));
		return js_error_at(c, in->doc, in->ptr, kw, "\"%s\" is already the id of \"%s#%s\"",
		                   key, old->doc->uri, old->ptr);
	}
	return 0;
}

/* Applies the "$id" of a schema object to base: sets in->inner and registers
 * the resource and anchor it names. */
static int scan_id(struct js_compiler *c, struct js_info *in)
{
	const char *kw = js_id_keyword(in->doc->draft);
	json_t *id = json_object_get(in->json, kw);
	if (id == NULL || !json_is_string(id))
		return 0; /* compile reports a non-string id */
	char *full = js_uri_resolve(in->base, json_string_value(id));
	if (full == NULL)
		return js_nomem(c);
	char *hash = strchr(full, '#');
	int rc = 0;
	if (json_string_value(id)[0] != '#') {
		char *res = js_strip_fragment(full);
		if (res == NULL) {
			rc = js_nomem(c);
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
static int scan(struct js_compiler *c, struct js_doc *doc, json_t *json, const char *base,
                struct js_buf *ptr, bool root)
{
	if (!json_is_object(json) && !root)
		return 0;
	if (ptr->nomem)
		return js_nomem(c);
	struct js_info *in = new_info(c, json, doc, ptr->s, base);
	if (in == NULL)
		return js_nomem(c);
	int rc;
	if (root && (rc = register_id(c, doc->uri, in, NULL)) != 0)
		return rc;
	if (!json_is_object(json))
		return 0;
	/* Only objects: true, false and null are shared singletons in jansson. */
	rc = js_map_put(&c->infos, &json, sizeof(json), in);
	if (rc == -ENOMEM)
		return js_nomem(c);
	/* Beside "$ref" an "$id" means nothing (drafts 4 to 7), but schemas
	 * kept there (often "definitions") can still be referred to. */
	if (json_object_get(json, "$ref") == NULL && (rc = scan_id(c, in)) != 0)
		return rc;
	size_t mark = ptr->len;
	int draft = doc->draft;
	for (size_t k = 0; k < COUNT(single_kws) && rc == 0; k++) {
		json_t *v = json_object_get(json, single_kws[k]);
		if (v != NULL && json_is_object(v) && js_draft_has(draft, single_kws[k])) {
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
static int doc_draft(struct js_compiler *c, struct js_doc *doc, int fallback)
{
	json_t *sv = json_is_object(doc->root) ? json_object_get(doc->root, "$schema") : NULL;
	if (sv == NULL)
		return fallback;
	if (!json_is_string(sv))
		return js_error_at(c, doc, "", "$schema", "\"$schema\" must be a string");
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
	return js_error_at(c, doc, "", "$schema",
	                   "\"%s\" is not a supported \"$schema\"; use draft-04, draft-06 or "
	                   "draft-07 (\"http://json-schema.org/draft-07/schema#\")",
	                   u);
}

/* Takes json (a new reference) as a document known as uri, then scans it. */
int js_add_doc(struct js_compiler *c, json_t *json, const char *uri, int fallback_draft,
               struct js_doc **out)
{
	struct js_doc *doc = calloc(1, sizeof(*doc));
	if (doc == NULL) {
		json_decref(json);
		return js_nomem(c);
	}
	doc->root = json;
	doc->uri = strdup(uri);
	doc->draft = 7;
	if (doc->uri == NULL || !PUSH(c->s->docs, c->s->ndocs, c->s->capdocs, doc)) {
		json_decref(json);
		free(doc->uri);
		free(doc);
		return js_nomem(c);
	}
	if (js_depth_exceeds(json, c->max_depth))
		return js_error_at(c, doc, "", NULL,
		                   "the schema nests deeper than %u levels; flatten it with "
		                   "\"definitions\" and \"$ref\"",
		                   c->max_depth);
	if (json->refcount > 1) {
		/* Someone else (a resolver's cache) still holds it and might
		 * change it later; the compiled schema must not follow along. */
		json_t *copy = json_deep_copy(json);
		if (copy == NULL)
			return js_nomem(c);
		json_decref(json);
		doc->root = json = copy;
	}
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

/* ---- pass 3: link ---- */

static int load_document(struct js_compiler *c, const char *uri, struct js_node *from)
{
	if (c->s->ndocs >= JSONSCHEMA_MAX_DOCUMENTS)
		return js_error_at(c, from->doc, from->ptr, "$ref",
		                   "cannot load \"%s\": more than %d schema documents are involved",
		                   uri, JSONSCHEMA_MAX_DOCUMENTS);
	json_t *json = NULL;
	const char *meta = js_meta_schema(uri);
	if (meta != NULL) {
		json = json_loads(meta, 0, NULL);
		if (json == NULL)
			return js_nomem(c);
	} else if (c->resolver != NULL) {
		char *rerr = NULL;
		int rc = c->resolver(c->resolver_arg, uri, &json, &rerr);
		if (rc < 0 || json == NULL) {
			js_error_at(c, from->doc, from->ptr, "$ref", "cannot load \"%s\": %s", uri,
			            rerr != NULL ? rerr
			            : rc < 0     ? strerror(-rc)
			                         : "the resolver returned nothing");
			free(rerr);
			json_decref(json);
			return c->rc;
		}
		free(rerr);
	} else {
		return js_error_at(
		        c, from->doc, from->ptr, "$ref",
		        "cannot resolve \"%s\": it is outside this schema and no resolver "
		        "is configured",
		        uri);
	}
	struct js_doc *doc;
	return js_add_doc(c, json, uri, from->draft, &doc);
}

/* Follows the JSON pointer frag from the resource in; fills the target's
 * value, base and pointer. */
static int follow_pointer(struct js_compiler *c, struct js_node *from, struct js_info *in,
                          const char *frag, json_t **target, const char **base, char **ptr)
{
	json_t *cur = in->json;
	struct js_info *last = in; /* the last scanned schema on the way */
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
			return js_nomem(c);
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
			int rc = js_error_at(c, from->doc, from->ptr, "$ref",
			                     "cannot resolve \"%s\": nothing at \"%s#%s\"",
			                     from->ref_uri, in->doc->uri,
			                     path.s != NULL ? path.s : "");
			free(path.s);
			return rc;
		}
		cur = next;
		struct js_info *si =
		        json_is_object(cur) ? js_map_get(&c->infos, &cur, sizeof(cur)) : NULL;
		if (si != NULL)
			last = si;
		p += n;
	}
	if (path.nomem) {
		free(path.s);
		return js_nomem(c);
	}
	*target = cur;
	*base = last->json == cur ? last->base : last->inner;
	*ptr = path.s;
	return 0;
}

int js_link_ref(struct js_compiler *c, struct js_node *n)
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
		rc = js_nomem(c);
		goto out;
	}
	if (frag == NULL) {
		rc = js_error_at(c, n->doc, n->ptr, "$ref", "invalid %%-escape in \"%s\"", uri);
		goto out;
	}
	struct js_info *in = js_map_get(&c->ids, res, reslen);
	if (in == NULL) {
		if ((rc = load_document(c, res, n)) != 0)
			goto out;
		in = js_map_get(&c->ids, res, reslen);
		if (in == NULL) {
			rc = js_error_at(c, n->doc, n->ptr, "$ref", "cannot resolve \"%s\"", uri);
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
		struct js_info *an = key.nomem ? NULL : js_map_get(&c->ids, key.s, key.len);
		free(key.s);
		if (key.nomem) {
			rc = js_nomem(c);
			goto out;
		}
		if (an == NULL) {
			rc = js_error_at(c, n->doc, n->ptr, "$ref",
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
		rc = js_nomem(c);
		goto out;
	}
	struct js_doc *doc = in->doc;
	n->ref = js_compile_node(c, target, doc, base, ptr);
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
int js_check_cycles(struct js_compiler *c)
{
	struct jsonschema *s = c->s;
	struct frame {
		struct js_node *n;
		size_t edge;
	} *st = malloc((s->nnodes + 1) * sizeof(*st));
	if (st == NULL)
		return js_nomem(c);
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
				rc = js_error_at(
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
