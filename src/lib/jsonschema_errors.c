/*
 * jsonschema_errors: the error list the caller owns, and how the walk
 * words its failures. Messages are built on the heap and only when
 * something failed: the walk recurses, so its frames hold no buffers.
 * Values in messages are rendered short (long strings end in "...").
 */
#include "jsonschema_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the error list ---- */

void jsonschema_errors_init(struct jsonschema_errors *errs, size_t max)
{
	memset(errs, 0, sizeof(*errs));
	errs->max = max ? max : JSONSCHEMA_MAX_ERRORS;
}

void jsonschema_errors_release(struct jsonschema_errors *errs)
{
	for (size_t i = 0; i < errs->len; i++)
		free(errs->items[i].instance);
	free(errs->items);
	size_t max = errs->max;
	memset(errs, 0, sizeof(*errs));
	errs->max = max;
}

json_t *jsonschema_errors_to_json(const struct jsonschema_errors *errs, const char *instance_prefix)
{
	json_t *arr = json_array();
	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < errs->len; i++) {
		const struct jsonschema_error *e = &errs->items[i];
		struct js_buf inst = {0};
		js_buf_adds(&inst, instance_prefix != NULL ? instance_prefix : "");
		js_buf_adds(&inst, e->instance);
		json_t *o = inst.nomem ? NULL
		                       : json_pack("{s:s, s:s, s:s}", "instance", inst.s, "schema",
		                                   e->schema, "message", e->message);
		free(inst.s);
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

int js_errs_add(struct jsonschema_errors *e, const char *inst, const char *schema, const char *msg)
{
	if (e->len >= e->max) {
		e->dropped++;
		return 0;
	}
	if (e->len == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		struct jsonschema_error *ni = realloc(e->items, cap * sizeof(*ni));
		if (ni == NULL)
			return -ENOMEM;
		e->items = ni;
		e->cap = cap;
	}
	size_t li = strlen(inst), ls = strlen(schema), lm = strlen(msg);
	char *block = malloc(li + ls + lm + 3);
	if (block == NULL)
		return -ENOMEM;
	memcpy(block, inst, li + 1);
	memcpy(block + li + 1, schema, ls + 1);
	memcpy(block + li + ls + 2, msg, lm + 1);
	e->items[e->len++] = (struct jsonschema_error){block, block + li + 1, block + li + ls + 2};
	return 0;
}

/* ---- reporting ---- */

static void add_ipath(struct js_buf *b, const struct ipath *ip)
{
	if (ip == NULL)
		return;
	add_ipath(b, ip->up);
	if (ip->key != NULL) {
		js_buf_add_segment(b, ip->key, ip->len);
	} else {
		js_buf_addf(b, "/%zu", ip->len);
	}
}

static void add_location(struct js_buf *b, const struct js_node *n, const char *kw, const char *key,
                         size_t keylen)
{
	js_buf_adds(b, n->doc->uri);
	js_buf_adds(b, "#");
	js_buf_adds(b, n->ptr);
	if (kw != NULL)
		js_buf_add_segment(b, kw, strlen(kw));
	if (key != NULL)
		js_buf_add_segment(b, key, keylen);
}

/* Builds the three strings of an error; false if out of memory. */
static bool build(struct js_buf *inst, struct js_buf *schema, struct js_buf *msg,
                  const struct js_node *n, const char *kw, const char *key, size_t keylen,
                  const struct ipath *ip, const char *fmt, va_list ap)
{
	js_buf_add(inst, "", 0);
	add_ipath(inst, ip);
	add_location(schema, n, kw, key, keylen);
	js_buf_vaddf(msg, fmt, ap);
	return !inst->nomem && !schema->nomem && !msg->nomem;
}

void js_oom(struct vctx *v)
{
	v->status = -ENOMEM;
	v->aborted = true;
}

/* Records a failure at instance ip for keyword kw (and key below it) of n. */
void js_report_at(struct vctx *v, const struct js_node *n, const char *kw, const char *key,
                  size_t keylen, const struct ipath *ip, const char *fmt, ...)
{
	if (!v->collect)
		return;
	if (v->errs->len >= v->errs->max) {
		v->errs->dropped++;
		return;
	}
	struct js_buf inst = {0}, schema = {0}, msg = {0};
	va_list ap;
	va_start(ap, fmt);
	bool ok = build(&inst, &schema, &msg, n, kw, key, keylen, ip, fmt, ap);
	va_end(ap);
	if (!ok || js_errs_add(v->errs, inst.s, schema.s, msg.s) != 0)
		js_oom(v);
	free(inst.s);
	free(schema.s);
	free(msg.s);
}

/* Stops the walk: the instance will be rejected with this reason. */
void js_abort_walk(struct vctx *v, const struct js_node *n, const char *kw, const struct ipath *ip,
                   const char *fmt, ...)
{
	if (v->aborted)
		return;
	v->aborted = true;
	if (v->errs == NULL)
		return;
	struct js_buf inst = {0}, schema = {0}, msg = {0};
	va_list ap;
	va_start(ap, fmt);
	bool ok = build(&inst, &schema, &msg, n, kw, NULL, 0, ip, fmt, ap);
	va_end(ap);
	if (ok) {
		js_buf_add(&inst, "", 1);
		js_buf_add(&inst, schema.s, schema.len + 1);
		js_buf_add(&inst, msg.s, msg.len);
	}
	if (!ok || inst.nomem) {
		v->status = -ENOMEM;
		free(inst.s);
	} else {
		v->abort_err = inst.s;
	}
	free(schema.s);
	free(msg.s);
}

/*
 * Renderings of values for messages, on the heap: the walk recurses, so
 * its frames hold no buffers. These run only when something failed.
 * show() shortens strings to max bytes and names containers ("the
 * object"); show_full() renders containers too (for enum and const).
 * Both return NULL if out of memory; S() prints that as "the value".
 */
static char *show(const json_t *v, size_t max)
{
	struct js_buf b = {0};
	if (json_is_object(v))
		js_buf_adds(&b, "the object");
	else if (json_is_array(v))
		js_buf_adds(&b, "the array");
	else
		js_buf_add_value(&b, v, max);
	if (b.nomem) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

static char *show_full(const json_t *v)
{
	struct js_buf b = {0};
	js_buf_add_value(&b, v, 120);
	if (b.nomem) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

char *js_quoted(const char *s, size_t len, size_t max)
{
	struct js_buf b = {0};
	js_buf_add_quoted(&b, s, len, max);
	if (b.nomem) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* Reports prefix + the rendered subject + the formatted rest. */
void js_report_about(struct vctx *v, const struct js_node *n, const char *kw, const char *key,
                     size_t keylen, const struct ipath *ip, const char *prefix,
                     const json_t *subject, size_t max, const char *fmt, ...)
{
	if (!v->collect)
		return;
	struct js_buf msg = {0};
	js_buf_adds(&msg, prefix);
	char *x = show(subject, max);
	js_buf_adds(&msg, S(x));
	free(x);
	va_list ap;
	va_start(ap, fmt);
	js_buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (msg.nomem)
		js_oom(v);
	else
		js_report_at(v, n, kw, key, keylen, ip, "%s", msg.s);
	free(msg.s);
}

/* Reports "<a> <what> <b>" for two values, e.g. "7 is greater than the
 * maximum 3". */
void js_report_pair(struct vctx *v, const struct js_node *n, const char *kw, const struct ipath *ip,
                    const json_t *a, const char *what, const json_t *b)
{
	if (!v->collect)
		return;
	char *x = show(a, 40), *y = show(b, 40);
	report(v, n, kw, ip, "%s %s %s", S(x), what, S(y));
	free(x);
	free(y);
}

struct js_mark js_mark(const struct vctx *v)
{
	if (!v->collect)
		return (struct js_mark){0, 0};
	return (struct js_mark){v->errs->len, v->errs->dropped};
}

void js_rollback(struct vctx *v, struct js_mark m)
{
	if (!v->collect)
		return;
	for (size_t i = m.len; i < v->errs->len; i++)
		free(v->errs->items[i].instance);
	v->errs->len = m.len;
	v->errs->dropped = m.dropped;
}

/* Moves the last error to position m.len, so a summary precedes the
 * details it summarizes. */
void js_move_last_to(struct vctx *v, struct js_mark m, size_t before)
{
	if (!v->collect || v->errs->len != before + 1 || m.len >= before)
		return;
	struct jsonschema_error last = v->errs->items[before];
	memmove(&v->errs->items[m.len + 1], &v->errs->items[m.len],
	        (before - m.len) * sizeof(last));
	v->errs->items[m.len] = last;
}

static const char *type_list(unsigned types, char *buf, size_t size)
{
	static const char *const names[] = {"null",   "boolean", "object", "array",
	                                    "number", "string",  "integer"};
	size_t n = 0, count = 0;
	for (int i = 0; i < 7; i++)
		if (types & (1u << i))
			count++;
	buf[0] = '\0';
	if (count > 1)
		n += (size_t)snprintf(buf + n, size - n, "one of ");
	for (int i = 0, k = 0; i < 7 && n < size; i++) {
		if (!(types & (1u << i)))
			continue;
		n += (size_t)snprintf(buf + n, size - n, "%s\"%s\"", k++ ? ", " : "", names[i]);
	}
	return buf;
}

void js_report_type(struct vctx *v, const struct js_node *n, const json_t *inst,
                    const struct ipath *ip)
{
	char want[120];
	report(v, n, "type", ip, "expected %s, got \"%s\"", type_list(n->types, want, sizeof(want)),
	       js_type_name(inst));
}

void js_report_dependency(struct vctx *v, const struct js_node *n, const struct js_dep *d,
                          const json_t *need, const struct ipath *ip)
{
	if (!v->collect)
		return;
	char *q = js_quoted(d->name, d->len, 60);
	char *prefix = NULL;
	if (asprintf(&prefix, "property %s requires property ", S(q)) < 0)
		prefix = NULL;
	if (prefix == NULL)
		js_oom(v);
	else
		js_report_about(v, n, "dependencies", d->name, d->len, ip, prefix, need, 60, "%s",
		                "");
	free(prefix);
	free(q);
}

/* "<inst><what><the schema's value in full>", for enum and const. */
void js_report_value_list(struct vctx *v, const struct js_node *n, const char *kw,
                          const struct ipath *ip, const json_t *inst, const char *what,
                          const json_t *values)
{
	if (!v->collect)
		return;
	char *full = show_full(values);
	js_report_about(v, n, kw, NULL, 0, ip, "", inst, 40, "%s%s", what, S(full));
	free(full);
}
