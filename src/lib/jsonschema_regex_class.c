/*
 * jsonschema_regex_class: UTF-8 decoding, character classes and escapes for
 * the pattern parser.
 *
 * A class is a sorted list of disjoint code point ranges; negation is
 * applied when the class is stored, so the matcher only ever tests
 * membership by binary search. \d, \w and \s follow ECMA-262: ASCII digits
 * and word characters, and the full WhiteSpace plus LineTerminator set.
 * Escapes are strict (as with the "u" flag): an escape that ECMA-262 does
 * not define, such as \Z or \a, is an error.
 */
#include "jsonschema_regex_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) void rx_fail(struct parser *p, const char *fmt, ...)
{
	if (p->err != NULL || p->nomem)
		return;
	char buf[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->err = strdup(buf);
	if (p->err == NULL)
		p->nomem = true;
}

bool rx_failed(const struct parser *p)
{
	return p->err != NULL || p->nomem;
}

/* Decodes one UTF-8 code point at s[i]; invalid bytes decode one by one as
 * U+FFFD so that nothing reads past the end. Returns the byte count. */
size_t rx_utf8_decode(const uint8_t *s, size_t len, size_t i, uint32_t *cp)
{
	uint8_t b = s[i];
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	size_t n;
	uint32_t c, min;
	if ((b & 0xE0) == 0xC0) {
		n = 2, c = b & 0x1F, min = 0x80;
	} else if ((b & 0xF0) == 0xE0) {
		n = 3, c = b & 0x0F, min = 0x800;
	} else if ((b & 0xF8) == 0xF0) {
		n = 4, c = b & 0x07, min = 0x10000;
	} else {
		*cp = 0xFFFD;
		return 1;
	}
	if (i + n > len) {
		*cp = 0xFFFD;
		return 1;
	}
	for (size_t k = 1; k < n; k++) {
		if ((s[i + k] & 0xC0) != 0x80) {
			*cp = 0xFFFD;
			return 1;
		}
		c = (c << 6) | (s[i + k] & 0x3F);
	}
	if (c < min || c > RX_MAX_CP) {
		*cp = 0xFFFD;
		return 1;
	}
	*cp = c;
	return n;
}

/* Decodes the code point that ends at s[i-1] (i > 0). */
size_t rx_utf8_decode_back(const uint8_t *s, size_t len, size_t i, uint32_t *cp)
{
	size_t start = i - 1;
	while (start > 0 && i - start < 4 && (s[start] & 0xC0) == 0x80)
		start--;
	size_t n = rx_utf8_decode(s, len, start, cp);
	if (start + n == i)
		return n;
	*cp = 0xFFFD;
	return 1;
}

int rx_new_node(struct parser *p, enum kind kind)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct node *nn = realloc(p->nodes, cap * sizeof(*nn));
		if (nn == NULL) {
			p->nomem = true;
			return -1;
		}
		p->nodes = nn;
		p->cap = cap;
	}
	struct node *nd = &p->nodes[p->n];
	memset(nd, 0, sizeof(*nd));
	nd->kind = (uint8_t)kind;
	nd->kid = -1;
	nd->next = -1;
	return (int)p->n++;
}

/* A growable list of ranges while a class is being built. */
struct rangebuf {
	struct range *r;
	size_t n, cap;
};

static bool rb_add(struct parser *p, struct rangebuf *rb, uint32_t lo, uint32_t hi)
{
	if (rb->n == rb->cap) {
		size_t cap = rb->cap ? rb->cap * 2 : 8;
		struct range *nr = realloc(rb->r, cap * sizeof(*nr));
		if (nr == NULL) {
			p->nomem = true;
			return false;
		}
		rb->r = nr;
		rb->cap = cap;
	}
	rb->r[rb->n++] = (struct range){lo, hi};
	return true;
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

static void rb_normalize(struct rangebuf *rb)
{
	if (rb->n == 0)
		return;
	qsort(rb->r, rb->n, sizeof(*rb->r), range_cmp);
	size_t w = 0;
	for (size_t i = 1; i < rb->n; i++) {
		if (rb->r[i].lo <= rb->r[w].hi + 1) {
			if (rb->r[i].hi > rb->r[w].hi)
				rb->r[w].hi = rb->r[i].hi;
		} else {
			rb->r[++w] = rb->r[i];
		}
	}
	rb->n = w + 1;
}

/* Replaces the (normalized) ranges with their complement in [0, U+10FFFF]. */
static bool rb_negate(struct parser *p, struct rangebuf *rb)
{
	struct rangebuf out = {0};
	uint32_t next = 0;
	for (size_t i = 0; i < rb->n; i++) {
		if (rb->r[i].lo > next && !rb_add(p, &out, next, rb->r[i].lo - 1))
			goto nomem;
		next = rb->r[i].hi + 1;
	}
	if (next <= RX_MAX_CP && !rb_add(p, &out, next, RX_MAX_CP))
		goto nomem;
	free(rb->r);
	*rb = out;
	return true;
nomem:
	free(out.r);
	return false;
}

const struct range rx_digit[] = {{'0', '9'}};
const struct range rx_word[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
/* ECMA-262 WhiteSpace and LineTerminator. */
const struct range rx_space[] = {
        {0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
        {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF},
};
const struct range rx_line[] = {{0x0A, 0x0A}, {0x0D, 0x0D}, {0x2028, 0x2029}};

/* Adds a predefined set, or its complement, to rb. */
static bool rb_add_set(struct parser *p, struct rangebuf *rb, const struct range *set, size_t n,
                       bool negate)
{
	struct rangebuf tmp = {0};
	for (size_t i = 0; i < n; i++)
		if (!rb_add(p, &tmp, set[i].lo, set[i].hi))
			goto fail;
	if (negate && !rb_negate(p, &tmp))
		goto fail;
	for (size_t i = 0; i < tmp.n; i++)
		if (!rb_add(p, rb, tmp.r[i].lo, tmp.r[i].hi))
			goto fail;
	free(tmp.r);
	return true;
fail:
	free(tmp.r);
	return false;
}

/* Stores a finished class; returns its index or -1. Takes rb's memory. */
static int store_class(struct parser *p, struct rangebuf *rb, bool negate)
{
	rb_normalize(rb);
	if (negate && !rb_negate(p, rb))
		goto fail;
	if (p->ncls == p->capcls) {
		size_t cap = p->capcls ? p->capcls * 2 : 8;
		struct cls *nc = realloc(p->classes, cap * sizeof(*nc));
		if (nc == NULL) {
			p->nomem = true;
			goto fail;
		}
		p->classes = nc;
		p->capcls = cap;
	}
	p->classes[p->ncls] = (struct cls){rb->r, rb->n};
	rb->r = NULL;
	return (int)p->ncls++;
fail:
	free(rb->r);
	rb->r = NULL;
	return -1;
}

int rx_class_node(struct parser *p, const struct range *set, size_t n, bool negate)
{
	struct rangebuf rb = {0};
	if (!rb_add_set(p, &rb, set, n, false)) {
		free(rb.r);
		return -1;
	}
	int ci = store_class(p, &rb, negate);
	if (ci < 0)
		return -1;
	int nd = rx_new_node(p, K_CLASS);
	if (nd >= 0)
		p->nodes[nd].c = (uint32_t)ci;
	return nd;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads exactly n hex digits; -1 if they are not there. */
static long read_hex(struct parser *p, int n)
{
	long v = 0;
	for (int i = 0; i < n; i++) {
		int h = hexval(rx_peek(p));
		if (h < 0)
			return -1;
		v = v * 16 + h;
		p->pos++;
	}
	return v;
}

static bool is_syntax_char(int c)
{
	return c != -1 && strchr("^$\\.*+?()[]{}|/", c) != NULL;
}

/*
 * Parses a character escape after the backslash (p->pos at the letter).
 * Returns true and the code point, or false after rx_fail().
 */
bool rx_char_escape(struct parser *p, bool in_class, uint32_t *cp)
{
	size_t at = p->pos - 1;
	int c = rx_peek(p);
	p->pos++;
	switch (c) {
	case 't':
		*cp = '\t';
		return true;
	case 'n':
		*cp = '\n';
		return true;
	case 'v':
		*cp = '\v';
		return true;
	case 'f':
		*cp = '\f';
		return true;
	case 'r':
		*cp = '\r';
		return true;
	case 'c': {
		int l = rx_peek(p);
		if ((l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z')) {
			p->pos++;
			*cp = (uint32_t)(l % 32);
			return true;
		}
		rx_fail(p, "\"\\c\" must be followed by a letter at offset %zu", at);
		return false;
	}
	case '0':
		if (rx_peek(p) >= '0' && rx_peek(p) <= '9') {
			rx_fail(p, "octal escapes are not allowed at offset %zu", at);
			return false;
		}
		*cp = 0;
		return true;
	case 'x': {
		long v = read_hex(p, 2);
		if (v < 0) {
			rx_fail(p, "\"\\x\" needs two hex digits at offset %zu", at);
			return false;
		}
		*cp = (uint32_t)v;
		return true;
	}
	case 'u': {
		if (rx_peek(p) == '{') {
			p->pos++;
			long v = 0;
			int digits = 0;
			int h;
			while ((h = hexval(rx_peek(p))) >= 0) {
				v = v * 16 + h;
				p->pos++;
				if (++digits > 8 || v > RX_MAX_CP)
					break;
			}
			if (digits == 0 || v > RX_MAX_CP || rx_peek(p) != '}') {
				rx_fail(p, "invalid \"\\u{...}\" escape at offset %zu", at);
				return false;
			}
			p->pos++;
			*cp = (uint32_t)v;
			return true;
		}
		long v = read_hex(p, 4);
		if (v < 0) {
			rx_fail(p, "\"\\u\" needs four hex digits at offset %zu", at);
			return false;
		}
		/* A surrogate pair written as two escapes is one code point. */
		if (v >= 0xD800 && v <= 0xDBFF && rx_peek(p) == '\\' && rx_peek_at(p, 1) == 'u') {
			size_t save = p->pos;
			p->pos += 2;
			long lo = read_hex(p, 4);
			if (lo >= 0xDC00 && lo <= 0xDFFF) {
				*cp = (uint32_t)(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00));
				return true;
			}
			p->pos = save;
		}
		*cp = (uint32_t)v;
		return true;
	}
	case 'b':
		if (in_class) {
			*cp = '\b';
			return true;
		}
		break;
	case '-':
		*cp = '-';
		return true;
	default:
		if (is_syntax_char(c)) {
			*cp = (uint32_t)c;
			return true;
		}
		break;
	}
	if (c == -1)
		rx_fail(p, "pattern ends with a lone \"\\\"");
	else if (c >= 0x20 && c < 0x7F)
		rx_fail(p, "invalid escape \"\\%c\" at offset %zu", c, at);
	else
		rx_fail(p, "invalid escape at offset %zu", at);
	return false;
}

void rx_mark_unsupported(struct parser *p, const char *what, size_t at)
{
	if (p->unsupported == NULL) {
		p->unsupported = what;
		p->unsupported_at = at;
	}
}

/* Parses \p{Name} or \p{Name=Value} after "\p" (syntax only). */
bool rx_property_escape(struct parser *p, size_t at)
{
	if (rx_peek(p) != '{') {
		rx_fail(p, "\"\\p\" must be followed by \"{name}\" at offset %zu", at);
		return false;
	}
	p->pos++;
	size_t start = p->pos;
	int c;
	while ((c = rx_peek(p)) != -1 && c != '}') {
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '=')) {
			rx_fail(p, "invalid unicode property name at offset %zu", at);
			return false;
		}
		p->pos++;
	}
	if (c != '}' || p->pos == start) {
		rx_fail(p, "unterminated \"\\p{...}\" at offset %zu", at);
		return false;
	}
	p->pos++;
	rx_mark_unsupported(p, "unicode property escapes (\\p{...})", at);
	return true;
}

/* Parses [...] (p->pos after the '['). */
int rx_parse_class(struct parser *p)
{
	size_t at = p->pos - 1;
	struct rangebuf rb = {0};
	bool negate = false;
	if (rx_peek(p) == '^') {
		negate = true;
		p->pos++;
	}
	for (;;) {
		if (rx_at_end(p)) {
			rx_fail(p, "missing \"]\" for the class at offset %zu", at);
			goto fail;
		}
		if (rx_peek(p) == ']') {
			p->pos++;
			break;
		}
		/* One class atom: a code point, or a set (\d, \w, \s and negations). */
		uint32_t lo = 0;
		bool is_set = false;
		if (rx_peek(p) == '\\') {
			p->pos++;
			int e = rx_peek(p);
			const struct range *set = NULL;
			size_t n = 0;
			if (e == 'd' || e == 'D')
				set = rx_digit, n = RX_NRANGES(rx_digit);
			else if (e == 'w' || e == 'W')
				set = rx_word, n = RX_NRANGES(rx_word);
			else if (e == 's' || e == 'S')
				set = rx_space, n = RX_NRANGES(rx_space);
			if (set != NULL) {
				p->pos++;
				if (!rb_add_set(p, &rb, set, n, e == 'D' || e == 'W' || e == 'S'))
					goto fail;
				is_set = true;
			} else if (e == 'p' || e == 'P') {
				size_t pat = p->pos - 1;
				p->pos++;
				if (!rx_property_escape(p, pat))
					goto fail;
				is_set = true;
			} else if (!rx_char_escape(p, true, &lo)) {
				goto fail;
			}
		} else {
			p->pos += rx_utf8_decode(p->s, p->len, p->pos, &lo);
		}
		/* A range a-b, unless '-' is the last character before ']'. */
		if (rx_peek(p) == '-' && rx_peek_at(p, 1) != ']' && rx_peek_at(p, 1) != -1 &&
		    !is_set) {
			size_t dash = p->pos;
			p->pos++;
			uint32_t hi = 0;
			if (rx_peek(p) == '\\') {
				p->pos++;
				int e = rx_peek(p);
				if (e != -1 && strchr("dDwWsSpP", e) != NULL) {
					rx_fail(p,
					        "a class range cannot end with a set at offset %zu",
					        dash);
					goto fail;
				}
				if (!rx_char_escape(p, true, &hi))
					goto fail;
			} else {
				p->pos += rx_utf8_decode(p->s, p->len, p->pos, &hi);
			}
			if (hi < lo) {
				rx_fail(p, "class range out of order at offset %zu", dash);
				goto fail;
			}
			if (!rb_add(p, &rb, lo, hi))
				goto fail;
			continue;
		}
		if (!is_set && !rb_add(p, &rb, lo, lo))
			goto fail;
	}
	int ci = store_class(p, &rb, negate);
	if (ci < 0)
		return -1;
	int nd = rx_new_node(p, K_CLASS);
	if (nd >= 0)
		p->nodes[nd].c = (uint32_t)ci;
	return nd;
fail:
	free(rb.r);
	return -1;
}
