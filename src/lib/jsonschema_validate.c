/*
 * jsonschema_validate: walking an instance against a compiled schema, and
 * the error list.
 *
 * Validation is a recursion over (node, instance location). In collecting
 * mode every keyword is checked and every failure appended; in quiet mode
 * (no error list, or inside "not", "if" and "contains", whose inner
 * failures are not the instance's faults) the walk stops at the first
 * failure. "anyOf" and "oneOf" collect their branches' failures
 * tentatively: they are rolled back if the keyword holds, and kept under a
 * summary line if it does not, because they say what each branch wanted.
 *
 * Some things stop the walk altogether: a pattern that runs out of steps,
 * running out of memory, evaluation nested beyond the limit. The instance
 * is then rejected (never accepted because a check could not finish, even
 * under "not") with one error saying why.
 *
 * The instance pointer is a chain of path segments on the C stack, turned
 * into a string only when an error is reported.
 */
#include "jsonschema_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool v_node(struct vctx *v, const struct js_node *n, const json_t *inst,
                   const struct ipath *ip);

/* Evaluates n quietly: only the verdict matters. */
static bool v_quiet(struct vctx *v, const struct js_node *n, const json_t *inst,
                    const struct ipath *ip)
{
	bool saved = v->collect;
	v->collect = false;
	bool ok = v_node(v, n, inst, ip);
	v->collect = saved;
	return ok;
}

static bool v_type(struct vctx *v, const struct js_node *n, const json_t *inst,
                   const struct ipath *ip)
{
	unsigned t = n->types;
	bool ok;
	switch (json_typeof(inst)) {
	case JSON_NULL:
		ok = t & JS_T_NULL;
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		ok = t & JS_T_BOOLEAN;
		break;
	case JSON_OBJECT:
		ok = t & JS_T_OBJECT;
		break;
	case JSON_ARRAY:
		ok = t & JS_T_ARRAY;
		break;
	case JSON_STRING:
		ok = t & JS_T_STRING;
		break;
	case JSON_INTEGER:
		ok = t & (JS_T_NUMBER | JS_T_INTEGER);
		break;
	case JSON_REAL:
		ok = (t & JS_T_NUMBER) || ((t & JS_T_INTEGER) && js_is_integer(inst, n->draft));
		break;
	default:
		ok = false;
	}
	if (!ok)
		js_report_type(v, n, inst, ip);
	return ok;
}

static bool v_number(struct vctx *v, const struct js_node *n, const json_t *inst,
                     const struct ipath *ip)
{
	bool ok = true;
	if (n->maximum != NULL) {
		int c = js_number_cmp(inst, n->maximum);
		if (n->maximum_exclusive ? c >= 0 : c > 0) {
			ok = false;
			js_report_pair(v, n, "maximum", ip, inst,
			               n->maximum_exclusive
			                       ? "is not less than the exclusive maximum"
			                       : "is greater than the maximum",
			               n->maximum);
		}
	}
	if (n->minimum != NULL) {
		int c = js_number_cmp(inst, n->minimum);
		if (n->minimum_exclusive ? c <= 0 : c < 0) {
			ok = false;
			js_report_pair(v, n, "minimum", ip, inst,
			               n->minimum_exclusive
			                       ? "is not greater than the exclusive minimum"
			                       : "is less than the minimum",
			               n->minimum);
		}
	}
	if (n->exclusive_maximum != NULL && js_number_cmp(inst, n->exclusive_maximum) >= 0) {
		ok = false;
		js_report_pair(v, n, "exclusiveMaximum", ip, inst,
		               "is not less than the exclusive maximum", n->exclusive_maximum);
	}
	if (n->exclusive_minimum != NULL && js_number_cmp(inst, n->exclusive_minimum) <= 0) {
		ok = false;
		js_report_pair(v, n, "exclusiveMinimum", ip, inst,
		               "is not greater than the exclusive minimum", n->exclusive_minimum);
	}
	if (n->multiple_of != NULL && !js_multiple_of(inst, n->multiple_of)) {
		ok = false;
		js_report_pair(v, n, "multipleOf", ip, inst, "is not a multiple of",
		               n->multiple_of);
	}
	return ok;
}

/* Runs a pattern; aborts the walk if it cannot finish. -1 on abort. */
static int search(struct vctx *v, const struct js_node *n, const char *kw,
                  const struct jsonschema_regex *re, const char *src, const char *s, size_t len,
                  const struct ipath *ip)
{
	uint64_t budget = v->s->regex_steps;
	int r = jsonschema_regex_search(re, s, len, &budget);
	if (r == -E2BIG) {
		struct js_buf q = {0};
		js_buf_add_quoted(&q, src, strlen(src), 60);
		js_abort_walk(v, n, kw, ip,
		              "matching the pattern %s took more than %llu steps; the value is "
		              "rejected",
		              q.s != NULL ? q.s : "", (unsigned long long)v->s->regex_steps);
		free(q.s);
		return -1;
	}
	if (r < 0) {
		js_oom(v);
		return -1;
	}
	return r;
}

static bool v_content(struct vctx *v, const struct js_node *n, const json_t *inst,
                      const struct ipath *ip)
{
	const char *s = json_string_value(inst);
	size_t len = json_string_length(inst);
	char *decoded = NULL;
	size_t dlen = 0;
	if (n->content_base64) {
		bool nomem;
		if (!js_base64_decode(s, len, &decoded, &dlen, &nomem)) {
			if (nomem)
				js_oom(v);
			else
				js_report_about(v, n, "contentEncoding", NULL, 0, ip, "", inst, 40,
				                " is not valid base64");
			return false;
		}
		s = decoded;
		len = dlen;
	}
	bool ok = true;
	if (n->content_json) {
		json_t *doc = json_loadb(s, len, JSON_DECODE_ANY, NULL);
		if (doc == NULL) {
			ok = false;
			js_report_about(v, n, "contentMediaType", NULL, 0, ip, "", inst, 40,
			                " is not valid JSON");
		}
		json_decref(doc);
	}
	free(decoded);
	return ok;
}

static bool v_string(struct vctx *v, const struct js_node *n, const json_t *inst,
                     const struct ipath *ip)
{
	bool ok = true;
	const char *s = json_string_value(inst);
	size_t len = json_string_length(inst);
	if (n->max_length >= 0 || n->min_length >= 0) {
		size_t cps = js_utf8_length(s, len);
		if (n->max_length >= 0 && cps > (uint64_t)n->max_length) {
			ok = false;
			js_report_about(v, n, "maxLength", NULL, 0, ip, "", inst, 40,
			                " is longer than %lld character%s",
			                (long long)n->max_length, n->max_length == 1 ? "" : "s");
		}
		if (n->min_length >= 0 && cps < (uint64_t)n->min_length) {
			ok = false;
			js_report_about(v, n, "minLength", NULL, 0, ip, "", inst, 40,
			                " is shorter than %lld character%s",
			                (long long)n->min_length, n->min_length == 1 ? "" : "s");
		}
	}
	if (n->pattern != NULL) {
		int r = search(v, n, "pattern", n->pattern, n->pattern_src, s, len, ip);
		if (r < 0)
			return false;
		if (r == 0) {
			ok = false;
			char *q = v->collect ? js_quoted(n->pattern_src, strlen(n->pattern_src), 80)
			                     : NULL;
			js_report_about(v, n, "pattern", NULL, 0, ip, "", inst, 40,
			                " does not match the pattern %s", S(q));
			free(q);
		}
	}
	if (n->format != JS_FMT_NONE && !js_format_check(n->format, s, len)) {
		ok = false;
		js_report_about(v, n, "format", NULL, 0, ip, "", inst, 60, " is not a valid \"%s\"",
		                n->format_name);
	}
	if ((n->content_base64 || n->content_json) && !v_content(v, n, inst, ip))
		ok = false;
	return ok;
}

struct hashed {
	uint64_t h;
	size_t i;
};

static int hashed_cmp(const void *a, const void *b)
{
	const struct hashed *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i ? 1 : 0;
}

/* Finds two equal items: hashes sorted, then equal hashes compared. */
static bool find_duplicate(struct vctx *v, const json_t *arr, size_t *first, size_t *second)
{
	size_t n = json_array_size(arr);
	if (n <= 16) {
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				if (js_equal(json_array_get(arr, i), json_array_get(arr, j))) {
					*first = i, *second = j;
					return true;
				}
		return false;
	}
	struct hashed *hs = malloc(n * sizeof(*hs));
	if (hs == NULL) {
		js_oom(v);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		hs[i] = (struct hashed){js_hash(json_array_get(arr, i)), i};
	qsort(hs, n, sizeof(*hs), hashed_cmp);
	bool found = false;
	for (size_t i = 0; i < n && !found; i++)
		for (size_t j = i + 1; j < n && hs[j].h == hs[i].h && !found; j++)
			if (js_equal(json_array_get(arr, hs[i].i), json_array_get(arr, hs[j].i))) {
				*first = hs[i].i < hs[j].i ? hs[i].i : hs[j].i;
				*second = hs[i].i < hs[j].i ? hs[j].i : hs[i].i;
				found = true;
			}
	free(hs);
	return found;
}

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		if (!(expr)) {                                                                     \
			ok = false;                                                                \
			if (!v->collect || v->aborted)                                             \
				return false;                                                      \
		}                                                                                  \
	} while (0)

static bool v_array(struct vctx *v, const struct js_node *n, const json_t *inst,
                    const struct ipath *ip)
{
	bool ok = true;
	size_t size = json_array_size(inst);
	if (n->max_items >= 0 && size > (uint64_t)n->max_items) {
		report(v, n, "maxItems", ip, "the array has %zu items, more than the maximum %lld",
		       size, (long long)n->max_items);
		CHECK(false);
	}
	if (n->min_items >= 0 && size < (uint64_t)n->min_items) {
		report(v, n, "minItems", ip,
		       "the array has %zu item%s, fewer than the minimum %lld", size,
		       size == 1 ? "" : "s", (long long)n->min_items);
		CHECK(false);
	}
	size_t a = 0, b = 0; /* set by find_duplicate; GCC -O3 cannot tell */
	if (n->unique_items && size > 1) {
		if (find_duplicate(v, inst, &a, &b)) {
			report(v, n, "uniqueItems", ip,
			       "items %zu and %zu are equal; items must be unique", a, b);
			CHECK(false);
		}
		if (v->aborted)
			return false;
	}
	for (size_t i = 0; i < size; i++) {
		struct ipath child = {ip, NULL, i};
		const json_t *item = json_array_get(inst, i);
		if (!n->has_tuple) {
			if (n->items != NULL)
				CHECK(v_node(v, n->items, item, &child));
		} else if (i < n->ntuple) {
			CHECK(v_node(v, n->tuple[i], item, &child));
		} else if (n->additional_items != NULL) {
			if (n->additional_items->is_bool && !n->additional_items->bool_value) {
				report(v, n, "additionalItems", &child,
				       "item %zu is not allowed: the array may hold only %zu "
				       "item%s",
				       i, n->ntuple, n->ntuple == 1 ? "" : "s");
				CHECK(false);
			} else {
				CHECK(v_node(v, n->additional_items, item, &child));
			}
		}
	}
	if (n->contains != NULL) {
		bool found = false;
		for (size_t i = 0; i < size && !found && !v->aborted; i++) {
			struct ipath child = {ip, NULL, i};
			found = v_quiet(v, n->contains, json_array_get(inst, i), &child);
		}
		if (!found && !v->aborted)
			report(v, n, "contains", ip, "no item matches the \"contains\" schema");
		CHECK(found);
	}
	return ok;
}

static bool v_object(struct vctx *v, const struct js_node *n, const json_t *inst,
                     const struct ipath *ip)
{
	bool ok = true;
	size_t size = json_object_size(inst);
	if (n->max_properties >= 0 && size > (uint64_t)n->max_properties) {
		report(v, n, "maxProperties", ip,
		       "the object has %zu properties, more than the maximum %lld", size,
		       (long long)n->max_properties);
		CHECK(false);
	}
	if (n->min_properties >= 0 && size < (uint64_t)n->min_properties) {
		report(v, n, "minProperties", ip,
		       "the object has %zu propert%s, fewer than the minimum %lld", size,
		       size == 1 ? "y" : "ies", (long long)n->min_properties);
		CHECK(false);
	}
	for (size_t i = 0; n->required != NULL && i < json_array_size(n->required); i++) {
		const json_t *name = json_array_get(n->required, i);
		if (json_object_getn(inst, json_string_value(name), json_string_length(name)) ==
		    NULL) {
			js_report_about(v, n, "required", NULL, 0, ip, "missing required property ",
			                name, 60, "%s", "");
			CHECK(false);
		}
	}
	for (size_t i = 0; i < n->nprops; i++) {
		const json_t *val = json_object_getn(inst, n->props[i].name, n->props[i].len);
		if (val != NULL) {
			struct ipath child = {ip, n->props[i].name, n->props[i].len};
			CHECK(v_node(v, n->props[i].schema, val, &child));
		}
	}
	if (n->npattern_props > 0 || n->additional_props != NULL || n->property_names != NULL) {
		for (void *it = json_object_iter((json_t *)inst); it != NULL;
		     it = json_object_iter_next((json_t *)inst, it)) {
			const char *key = json_object_iter_key(it);
			size_t klen = json_object_iter_key_len(it);
			const json_t *val = json_object_iter_value(it);
			struct ipath child = {ip, key, klen};
			bool matched =
			        n->props_json != NULL && json_object_getn(n->props_json, key, klen);
			for (size_t k = 0; k < n->npattern_props; k++) {
				const struct js_pattern_prop *pp = &n->pattern_props[k];
				int r = search(v, n, "patternProperties", pp->re, pp->src, key,
				               klen, &child);
				if (r < 0)
					return false;
				if (r == 1) {
					matched = true;
					CHECK(v_node(v, pp->schema, val, &child));
				}
			}
			if (!matched && n->additional_props != NULL) {
				if (n->additional_props->is_bool &&
				    !n->additional_props->bool_value) {
					char *q = v->collect ? js_quoted(key, klen, 60) : NULL;
					report(v, n, "additionalProperties", &child,
					       "property %s is not allowed", S(q));
					free(q);
					CHECK(false);
				} else {
					CHECK(v_node(v, n->additional_props, val, &child));
				}
			}
			if (n->property_names != NULL) {
				json_t *name = json_stringn_nocheck(key, klen);
				if (name == NULL) {
					js_oom(v);
					return false;
				}
				struct js_mark m = js_mark(v);
				bool good = v_node(v, n->property_names, name, &child);
				if (!good && !v->aborted) {
					size_t before = v->collect ? v->errs->len : 0;
					js_report_about(
					        v, n, "propertyNames", NULL, 0, &child,
					        "property name ", name, 60,
					        " does not match the \"propertyNames\" schema");
					js_move_last_to(v, m, before);
				}
				json_decref(name);
				CHECK(good);
			}
		}
	}
	for (size_t i = 0; i < n->ndeps; i++) {
		const struct js_dep *d = &n->deps[i];
		if (json_object_getn(inst, d->name, d->len) == NULL)
			continue;
		if (d->schema != NULL) {
			CHECK(v_node(v, d->schema, inst, ip));
			continue;
		}
		for (size_t k = 0; k < json_array_size(d->names); k++) {
			const json_t *need = json_array_get(d->names, k);
			if (json_object_getn(inst, json_string_value(need),
			                     json_string_length(need)) == NULL) {
				js_report_dependency(v, n, d, need, ip);
				CHECK(false);
			}
		}
	}
	return ok;
}

static bool v_logic(struct vctx *v, const struct js_node *n, const json_t *inst,
                    const struct ipath *ip)
{
	bool ok = true;
	for (size_t i = 0; i < n->nall_of; i++)
		CHECK(v_node(v, n->all_of[i], inst, ip));
	if (n->nany_of > 0) {
		struct js_mark m = js_mark(v);
		bool any = false;
		for (size_t i = 0; i < n->nany_of && !any && !v->aborted; i++)
			any = v_node(v, n->any_of[i], inst, ip);
		if (any) {
			js_rollback(v, m);
		} else if (!v->aborted) {
			size_t before = v->collect ? v->errs->len : 0;
			js_report_about(v, n, "anyOf", NULL, 0, ip, "", inst, 40,
			                " does not match any of the %zu schemas in \"anyOf\"",
			                n->nany_of);
			js_move_last_to(v, m, before);
		}
		CHECK(any);
	}
	if (n->none_of > 0) {
		struct js_mark m = js_mark(v);
		size_t count = 0, first = 0, second = 0;
		for (size_t i = 0; i < n->none_of && count < 2 && !v->aborted; i++) {
			if (v_node(v, n->one_of[i], inst, ip)) {
				if (count++ == 0)
					first = i;
				else
					second = i;
			}
		}
		if (count == 1) {
			js_rollback(v, m);
		} else if (count > 1) {
			js_rollback(v, m);
			js_report_about(v, n, "oneOf", NULL, 0, ip, "", inst, 40,
			                " matches more than one schema in \"oneOf\" (%zu and %zu)",
			                first, second);
		} else if (!v->aborted) {
			size_t before = v->collect ? v->errs->len : 0;
			js_report_about(
			        v, n, "oneOf", NULL, 0, ip, "", inst, 40,
			        " does not match exactly one schema in \"oneOf\": it matches none "
			        "of %zu",
			        n->none_of);
			js_move_last_to(v, m, before);
		}
		CHECK(count == 1);
	}
	if (n->not_ != NULL) {
		bool inner = v_quiet(v, n->not_, inst, ip);
		if (v->aborted)
			return false;
		if (inner)
			js_report_about(v, n, "not", NULL, 0, ip, "", inst, 40,
			                " must not match the \"not\" schema");
		CHECK(!inner);
	}
	if (n->if_ != NULL) {
		bool cond = v_quiet(v, n->if_, inst, ip);
		if (v->aborted)
			return false;
		if (cond && n->then_ != NULL)
			CHECK(v_node(v, n->then_, inst, ip));
		else if (!cond && n->else_ != NULL)
			CHECK(v_node(v, n->else_, inst, ip));
	}
	return ok;
}

static bool v_keywords(struct vctx *v, const struct js_node *n, const json_t *inst,
                       const struct ipath *ip)
{
	bool ok = true;
	if (n->types != 0)
		CHECK(v_type(v, n, inst, ip));
	if (n->enum_values != NULL) {
		bool found = false;
		for (size_t i = 0; i < json_array_size(n->enum_values) && !found; i++)
			found = js_equal(inst, json_array_get(n->enum_values, i));
		if (!found)
			js_report_value_list(v, n, "enum", ip, inst, " is not one of ",
			                     n->enum_values);
		CHECK(found);
	}
	if (n->const_value != NULL) {
		bool same = js_equal(inst, n->const_value);
		if (!same)
			js_report_value_list(v, n, "const", ip, inst, " must be ", n->const_value);
		CHECK(same);
	}
	switch (json_typeof(inst)) {
	case JSON_INTEGER:
	case JSON_REAL:
		CHECK(v_number(v, n, inst, ip));
		break;
	case JSON_STRING:
		CHECK(v_string(v, n, inst, ip));
		break;
	case JSON_ARRAY:
		CHECK(v_array(v, n, inst, ip));
		break;
	case JSON_OBJECT:
		CHECK(v_object(v, n, inst, ip));
		break;
	default:
		break;
	}
	CHECK(v_logic(v, n, inst, ip));
	return ok;
}

static bool v_node(struct vctx *v, const struct js_node *n, const json_t *inst,
                   const struct ipath *ip)
{
	if (v->aborted)
		return false;
	if (n->is_bool) {
		if (!n->bool_value)
			report(v, n, NULL, ip, "no value is allowed here (the schema is false)");
		return n->bool_value;
	}
	if (v->depth >= v->max_depth) {
		js_abort_walk(v, n, NULL, ip,
		              "schema evaluation nests deeper than %u levels here; the value is "
		              "rejected",
		              v->max_depth);
		return false;
	}
	v->depth++;
	bool ok = n->ref != NULL ? v_node(v, n->ref, inst, ip) : v_keywords(v, n, inst, ip);
	v->depth--;
	return ok && !v->aborted;
}

bool jsonschema_validate(const struct jsonschema *s, const json_t *instance,
                         struct jsonschema_errors *errs)
{
	if (errs != NULL && errs->max == 0)
		errs->max = JSONSCHEMA_MAX_ERRORS;
	if (js_depth_exceeds(instance, s->max_instance_depth)) {
		if (errs != NULL) {
			char msg[160];
			snprintf(msg, sizeof(msg),
			         "the instance nests deeper than %u levels; flatten it or raise "
			         "max_instance_depth",
			         s->max_instance_depth);
			struct js_buf schema = {0};
			js_buf_adds(&schema, s->root->doc->uri);
			js_buf_adds(&schema, "#");
			if (schema.nomem || js_errs_add(errs, "", schema.s, msg) != 0)
				errs->status = -ENOMEM;
			free(schema.s);
		}
		return false;
	}
	struct vctx v = {
	        .s = s,
	        .errs = errs,
	        .collect = errs != NULL,
	        .max_depth = s->max_instance_depth * 4 + 32,
	};
	bool ok = v_node(&v, s->root, instance, NULL);
	if (v.aborted) {
		ok = false;
		if (v.abort_err != NULL) {
			const char *inst = v.abort_err;
			const char *schema = inst + strlen(inst) + 1;
			const char *msg = schema + strlen(schema) + 1;
			/* Keep it even if the list is full: it is the reason. */
			if (errs->len >= errs->max && errs->len > 0) {
				free(errs->items[errs->len - 1].instance);
				errs->len--;
				errs->dropped++;
			}
			if (js_errs_add(errs, inst, schema, msg) != 0)
				v.status = -ENOMEM;
			free(v.abort_err);
		}
	}
	if (errs != NULL && v.status != 0)
		errs->status = v.status;
	return ok;
}
