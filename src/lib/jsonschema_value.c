/*
 * jsonschema_value: JSON helpers for the jsonschema module: message
 * buffers, equality and hashing with JSON Schema's number semantics, exact
 * number comparison, and an iterative depth check.
 *
 * jansson keeps integers (json_int_t, 64 bits) and reals (double) apart;
 * JSON Schema does not: 1 and 1.0 are the same number. Comparing an integer
 * with a real by converting the integer to double would round above 2^53,
 * so js_number_cmp compares the real's integral part as an integer first.
 */
#include "jsonschema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void js_buf_add(struct js_buf *b, const char *s, size_t len)
{
	if (b->nomem)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (ns == NULL) {
			b->nomem = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

void js_buf_adds(struct js_buf *b, const char *s)
{
	js_buf_add(b, s, strlen(s));
}

void js_buf_vaddf(struct js_buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0) {
		va_end(ap2);
		return;
	}
	if ((size_t)n < sizeof(small)) {
		js_buf_add(b, small, (size_t)n);
	} else {
		char *big = malloc((size_t)n + 1);
		if (big == NULL) {
			b->nomem = true;
		} else {
			vsnprintf(big, (size_t)n + 1, fmt, ap2);
			js_buf_add(b, big, (size_t)n);
			free(big);
		}
	}
	va_end(ap2);
}

void js_buf_addf(struct js_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	js_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void js_buf_add_segment(struct js_buf *b, const char *s, size_t len)
{
	js_buf_add(b, "/", 1);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '~' || s[i] == '/') {
			js_buf_add(b, s + start, i - start);
			js_buf_add(b, s[i] == '~' ? "~0" : "~1", 2);
			start = i + 1;
		}
	}
	js_buf_add(b, s + start, len - start);
}

void js_buf_add_quoted(struct js_buf *b, const char *s, size_t len, size_t max)
{
	bool cut = false;
	if (len > max) {
		/* Cut on a code point boundary. */
		len = max;
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
		cut = true;
	}
	js_buf_add(b, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\' || c < 0x20) {
			js_buf_add(b, s + start, i - start);
			if (c == '"' || c == '\\') {
				char esc[2] = {'\\', (char)c};
				js_buf_add(b, esc, 2);
			} else if (c == '\n') {
				js_buf_add(b, "\\n", 2);
			} else if (c == '\t') {
				js_buf_add(b, "\\t", 2);
			} else {
				js_buf_addf(b, "\\u%04x", c);
			}
			start = i + 1;
		}
	}
	js_buf_add(b, s + start, len - start);
	js_buf_add(b, cut ? "...\"" : "\"", cut ? 4 : 1);
}

void js_buf_add_value(struct js_buf *b, const json_t *v, size_t max)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		js_buf_add_quoted(b, json_string_value(v), json_string_length(v), max);
		return;
	case JSON_INTEGER:
		js_buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	case JSON_REAL:
		js_buf_addf(b, "%.17g", json_real_value(v));
		return;
	default: {
		char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text == NULL) {
			js_buf_adds(b, "(value)");
			return;
		}
		size_t len = strlen(text);
		if (len > max) {
			while (max > 0 && ((unsigned char)text[max] & 0xC0) == 0x80)
				max--;
			js_buf_add(b, text, max);
			js_buf_adds(b, "...");
		} else {
			js_buf_add(b, text, len);
		}
		free(text);
	}
	}
}

static bool is_container(const json_t *v)
{
	return json_is_object(v) || json_is_array(v);
}

bool js_depth_exceeds(const json_t *v, unsigned limit)
{
	if (!is_container(v))
		return false;
	if (limit == 0)
		return true;
	struct frame {
		json_t *v;
		void *iter;   /* objects */
		size_t index; /* arrays */
	};
	struct frame *st = malloc((size_t)limit * sizeof(*st));
	if (st == NULL)
		return true; /* fail closed: the caller reports the limit */
	size_t sp = 0;
	st[sp++] = (struct frame){(json_t *)v,
	                          json_is_object(v) ? json_object_iter((json_t *)v) : NULL, 0};
	bool exceeded = false;
	while (sp > 0) {
		struct frame *f = &st[sp - 1];
		json_t *child = NULL;
		if (json_is_object(f->v)) {
			if (f->iter != NULL) {
				child = json_object_iter_value(f->iter);
				f->iter = json_object_iter_next(f->v, f->iter);
			}
		} else if (f->index < json_array_size(f->v)) {
			child = json_array_get(f->v, f->index++);
		}
		if (child == NULL) {
			sp--;
			continue;
		}
		if (!is_container(child))
			continue;
		if (sp == limit) {
			exceeded = true;
			break;
		}
		st[sp++] = (struct frame){
		        child, json_is_object(child) ? json_object_iter(child) : NULL, 0};
	}
	free(st);
	return exceeded;
}

/* 2^63 as a double: the first value above every json_int_t. */
#define TWO_63 9223372036854775808.0

static int cmp_int_real(json_int_t i, double d)
{
	if (d >= TWO_63)
		return -1;
	if (d < -TWO_63)
		return 1;
	double fl = floor(d);
	json_int_t di = (json_int_t)fl;
	if (i < di)
		return -1;
	if (i > di)
		return 1;
	return d > fl ? -1 : 0;
}

int js_number_cmp(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a), y = json_integer_value(b);
		return x < y ? -1 : x > y ? 1 : 0;
	}
	if (json_is_integer(a))
		return cmp_int_real(json_integer_value(a), json_real_value(b));
	if (json_is_integer(b))
		return -cmp_int_real(json_integer_value(b), json_real_value(a));
	double x = json_real_value(a), y = json_real_value(b);
	return x < y ? -1 : x > y ? 1 : 0;
}

bool js_is_integer(const json_t *v, int draft)
{
	if (json_is_integer(v))
		return true;
	if (!json_is_real(v))
		return false;
	double d = json_real_value(v);
	if (!isfinite(d) || floor(d) != d)
		return false;
	if (draft >= 6)
		return true;
	/* Draft 4 says 1.0 is not an integer. A real beyond 64 bits can only
	 * come from an integer too big for jansson (see jsonschema_parse). */
	return fabs(d) >= TWO_63;
}

bool js_multiple_of(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b))
		return json_integer_value(a) % json_integer_value(b) == 0;
	double x = json_number_value(a), m = json_number_value(b);
	if (x == 0)
		return true;
	double q = x / m;
	if (!isfinite(q))
		return fmod(x, m) == 0; /* fmod is exact; the quotient overflowed */
	/*
	 * Decimal fractions are not exact in binary (0.0075 / 0.0001 is
	 * 74.99999999999999), so accept a quotient within a relative 1e-12 of
	 * an integer: far above the rounding error of one division, far below
	 * any difference a schema author means.
	 */
	double r = nearbyint(q);
	return fabs(q - r) <= 1e-12 * fmax(1.0, fabs(q));
}

size_t js_utf8_decode(const char *s, size_t len, size_t i, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char b = u[i];
	size_t n;
	uint32_t c;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if ((b & 0xE0) == 0xC0) {
		n = 2, c = b & 0x1F;
	} else if ((b & 0xF0) == 0xE0) {
		n = 3, c = b & 0x0F;
	} else if ((b & 0xF8) == 0xF0) {
		n = 4, c = b & 0x07;
	} else {
		*cp = 0xFFFFFFFF;
		return 1;
	}
	if (i + n > len) {
		*cp = 0xFFFFFFFF;
		return 1;
	}
	for (size_t k = 1; k < n; k++) {
		if ((u[i + k] & 0xC0) != 0x80) {
			*cp = 0xFFFFFFFF;
			return 1;
		}
		c = (c << 6) | (u[i + k] & 0x3F);
	}
	*cp = c;
	return n;
}

size_t js_utf8_length(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

const char *js_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "value";
}

bool js_equal(const json_t *a, const json_t *b)
{
	if (a == b)
		return true;
	if (json_is_number(a) && json_is_number(b))
		return js_number_cmp(a, b) == 0;
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
		               0;
	case JSON_ARRAY: {
		size_t n = json_array_size(a);
		if (n != json_array_size(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!js_equal(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return false;
		for (void *it = json_object_iter((json_t *)a); it != NULL;
		     it = json_object_iter_next((json_t *)a, it)) {
			json_t *other = json_object_getn(b, json_object_iter_key(it),
			                                 json_object_iter_key_len(it));
			if (other == NULL || !js_equal(json_object_iter_value(it), other))
				return false;
		}
		return true;
	}
	default: /* null, true, false: the type is the value */
		return true;
	}
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_bytes(const char *s, size_t len, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return mix(h);
}

uint64_t js_hash(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
		return 0x1111;
	case JSON_TRUE:
		return 0x2222;
	case JSON_FALSE:
		return 0x3333;
	case JSON_INTEGER:
		return mix((uint64_t)json_integer_value(v) ^ 0x4444);
	case JSON_REAL: {
		/* Integral reals hash like the integer they equal. */
		double d = json_real_value(v);
		if (floor(d) == d && d >= -TWO_63 && d < TWO_63)
			return mix((uint64_t)(json_int_t)d ^ 0x4444);
		uint64_t bits;
		memcpy(&bits, &d, sizeof(bits));
		return mix(bits ^ 0x5555);
	}
	case JSON_STRING:
		return hash_bytes(json_string_value(v), json_string_length(v), 0x6666);
	case JSON_ARRAY: {
		uint64_t h = 0x7777;
		for (size_t i = 0; i < json_array_size(v); i++)
			h = mix(h * 31 + js_hash(json_array_get(v, i)));
		return h;
	}
	case JSON_OBJECT: {
		/* Key order does not matter: sum the members' hashes. */
		uint64_t h = 0x8888;
		for (void *it = json_object_iter((json_t *)v); it != NULL;
		     it = json_object_iter_next((json_t *)v, it)) {
			uint64_t k = hash_bytes(json_object_iter_key(it),
			                        json_object_iter_key_len(it), 0x9999);
			h += mix(k ^ js_hash(json_object_iter_value(it)));
		}
		return mix(h);
	}
	}
	return 0;
}
