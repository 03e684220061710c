/*
 * jsonschema_regex: parser, compiler and Pike VM. See jsonschema_regex.h
 * for the contract.
 *
 * The parser builds a small syntax tree in an array (nodes refer to each
 * other by index, so growing the array never leaves a dangling pointer).
 * The compiler lowers the tree to instructions: CHAR and CLASS consume one
 * code point, SPLIT and JMP are the epsilon edges, the assertions (^, $,
 * \b, \B) and LOOK test the current position, MATCH accepts. Counted
 * repetition is expanded, so the size of the expansion is computed first
 * and refused beyond RX_MAX_INSTS.
 *
 * A lookaround's body is a sub-program placed after the main one; a
 * lookbehind's body is compiled with concatenations reversed and run
 * backwards from the position, which is all "lookbehind" means for a
 * boolean match.
 *
 * The VM keeps the set of live instructions in a sparse set, adds each
 * instruction at most once per position, and stops at the first MATCH
 * because only "is there a match" matters. Nothing is captured.
 */
#include "jsonschema_regex.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RX_MAX_INSTS 20000  /* instructions after expanding {n,m} */
#define RX_MAX_NEST  100    /* group nesting in a pattern */
#define RX_MAX_COUNT 100000 /* largest n or m accepted in {n,m} */
#define RX_MAX_CP    0x10FFFF

enum kind {
	K_EMPTY,
	K_CHAR,
	K_CLASS,
	K_BOL,
	K_EOL,
	K_WORDB,
	K_NWORDB,
	K_GROUP,
	K_CAT,
	K_ALT,
	K_REPEAT,
	K_LOOK,
	K_BACKREF,
};

struct node {
	uint8_t kind;
	bool behind;  /* K_LOOK: lookbehind */
	bool negate;  /* K_LOOK: negative */
	uint32_t c;   /* K_CHAR: code point; K_CLASS: class index */
	int32_t min;  /* K_REPEAT */
	int32_t max;  /* K_REPEAT; -1 for no upper bound */
	int32_t kid;  /* first child, -1 if none */
	int32_t next; /* next sibling, -1 at the end */
};

struct range {
	uint32_t lo, hi;
};

struct cls {
	struct range *r; /* sorted, disjoint, non-adjacent */
	size_t n;
};

enum op {
	OP_CHAR,
	OP_CLASS,
	OP_SPLIT,
	OP_JMP,
	OP_BOL,
	OP_EOL,
	OP_WORDB,
	OP_NWORDB,
	OP_LOOK,
	OP_MATCH,
};

struct inst {
	uint8_t op;
	bool behind; /* OP_LOOK */
	bool negate; /* OP_LOOK */
	uint32_t x;  /* CHAR: code point; CLASS: class; SPLIT/JMP: target; LOOK: body start */
	uint32_t y;  /* SPLIT: second target; LOOK: look index (memo row) */
};

struct jsonschema_regex {
	struct inst *prog; /* main program at 0, lookaround bodies after it */
	uint32_t n;        /* instructions */
	struct cls *classes;
	size_t nclasses;
	uint32_t nlooks;
	bool anchored; /* starts with ^: no need to retry at later positions */
};

/* ---- the parser ---- */

struct parser {
	const uint8_t *s;
	size_t len;
	size_t pos;
	struct node *nodes;
	size_t n, cap;
	struct cls *classes;
	size_t ncls, capcls;
	int ngroups;        /* capturing groups in the whole pattern */
	const char **names; /* group names (pointers into s), for \k<name> */
	size_t *namelens;
	size_t nnames;
	int depth;
	bool nomem;
	char *err;               /* first error, malloc'ed */
	const char *unsupported; /* first feature the matcher cannot run */
	size_t unsupported_at;
};

__attribute__((format(printf, 2, 3))) static void fail(struct parser *p, const char *fmt, ...)
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

static bool failed(const struct parser *p)
{
	return p->err != NULL || p->nomem;
}

/* Decodes one UTF-8 code point at s[i]; invalid bytes decode one by one as
 * U+FFFD so that nothing reads past the end. Returns the byte count. */
static size_t utf8_decode(const uint8_t *s, size_t len, size_t i, uint32_t *cp)
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
static size_t utf8_decode_back(const uint8_t *s, size_t len, size_t i, uint32_t *cp)
{
	size_t start = i - 1;
	while (start > 0 && i - start < 4 && (s[start] & 0xC0) == 0x80)
		start--;
	size_t n = utf8_decode(s, len, start, cp);
	if (start + n == i)
		return n;
	*cp = 0xFFFD;
	return 1;
}

static int new_node(struct parser *p, enum kind kind)
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

static const struct range digit_ranges[] = {{'0', '9'}};
static const struct range word_ranges[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
/* ECMA-262 WhiteSpace and LineTerminator. */
static const struct range space_ranges[] = {
        {0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
        {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF},
};
static const struct range line_ranges[] = {{0x0A, 0x0A}, {0x0D, 0x0D}, {0x2028, 0x2029}};

#define NRANGES(a) (sizeof(a) / sizeof((a)[0]))

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

static int class_node(struct parser *p, const struct range *set, size_t n, bool negate)
{
	struct rangebuf rb = {0};
	if (!rb_add_set(p, &rb, set, n, false)) {
		free(rb.r);
		return -1;
	}
	int ci = store_class(p, &rb, negate);
	if (ci < 0)
		return -1;
	int nd = new_node(p, K_CLASS);
	if (nd >= 0)
		p->nodes[nd].c = (uint32_t)ci;
	return nd;
}

static bool at_end(const struct parser *p)
{
	return p->pos >= p->len;
}

static int peek(const struct parser *p)
{
	return at_end(p) ? -1 : p->s[p->pos];
}

static int peek_at(const struct parser *p, size_t off)
{
	return p->pos + off >= p->len ? -1 : p->s[p->pos + off];
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
		int h = hexval(peek(p));
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
 * Returns true and the code point, or false after fail().
 */
static bool char_escape(struct parser *p, bool in_class, uint32_t *cp)
{
	size_t at = p->pos - 1;
	int c = peek(p);
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
		int l = peek(p);
		if ((l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z')) {
			p->pos++;
			*cp = (uint32_t)(l % 32);
			return true;
		}
		fail(p, "\"\\c\" must be followed by a letter at offset %zu", at);
		return false;
	}
	case '0':
		if (peek(p) >= '0' && peek(p) <= '9') {
			fail(p, "octal escapes are not allowed at offset %zu", at);
			return false;
		}
		*cp = 0;
		return true;
	case 'x': {
		long v = read_hex(p, 2);
		if (v < 0) {
			fail(p, "\"\\x\" needs two hex digits at offset %zu", at);
			return false;
		}
		*cp = (uint32_t)v;
		return true;
	}
	case 'u': {
		if (peek(p) == '{') {
			p->pos++;
			long v = 0;
			int digits = 0;
			int h;
			while ((h = hexval(peek(p))) >= 0) {
				v = v * 16 + h;
				p->pos++;
				if (++digits > 8 || v > RX_MAX_CP)
					break;
			}
			if (digits == 0 || v > RX_MAX_CP || peek(p) != '}') {
				fail(p, "invalid \"\\u{...}\" escape at offset %zu", at);
				return false;
			}
			p->pos++;
			*cp = (uint32_t)v;
			return true;
		}
		long v = read_hex(p, 4);
		if (v < 0) {
			fail(p, "\"\\u\" needs four hex digits at offset %zu", at);
			return false;
		}
		/* A surrogate pair written as two escapes is one code point. */
		if (v >= 0xD800 && v <= 0xDBFF && peek(p) == '\\' && peek_at(p, 1) == 'u') {
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
		fail(p, "pattern ends with a lone \"\\\"");
	else if (c >= 0x20 && c < 0x7F)
		fail(p, "invalid escape \"\\%c\" at offset %zu", c, at);
	else
		fail(p, "invalid escape at offset %zu", at);
	return false;
}

static void mark_unsupported(struct parser *p, const char *what, size_t at)
{
	if (p->unsupported == NULL) {
		p->unsupported = what;
		p->unsupported_at = at;
	}
}

/* Parses \p{Name} or \p{Name=Value} after "\p" (syntax only). */
static bool property_escape(struct parser *p, size_t at)
{
	if (peek(p) != '{') {
		fail(p, "\"\\p\" must be followed by \"{name}\" at offset %zu", at);
		return false;
	}
	p->pos++;
	size_t start = p->pos;
	int c;
	while ((c = peek(p)) != -1 && c != '}') {
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '=')) {
			fail(p, "invalid unicode property name at offset %zu", at);
			return false;
		}
		p->pos++;
	}
	if (c != '}' || p->pos == start) {
		fail(p, "unterminated \"\\p{...}\" at offset %zu", at);
		return false;
	}
	p->pos++;
	mark_unsupported(p, "unicode property escapes (\\p{...})", at);
	return true;
}

/* Parses [...] (p->pos after the '['). */
static int parse_class(struct parser *p)
{
	size_t at = p->pos - 1;
	struct rangebuf rb = {0};
	bool negate = false;
	if (peek(p) == '^') {
		negate = true;
		p->pos++;
	}
	for (;;) {
		if (at_end(p)) {
			fail(p, "missing \"]\" for the class at offset %zu", at);
			goto fail;
		}
		if (peek(p) == ']') {
			p->pos++;
			break;
		}
		/* One class atom: a code point, or a set (\d, \w, \s and negations). */
		uint32_t lo = 0;
		bool is_set = false;
		if (peek(p) == '\\') {
			p->pos++;
			int e = peek(p);
			const struct range *set = NULL;
			size_t n = 0;
			if (e == 'd' || e == 'D')
				set = digit_ranges, n = NRANGES(digit_ranges);
			else if (e == 'w' || e == 'W')
				set = word_ranges, n = NRANGES(word_ranges);
			else if (e == 's' || e == 'S')
				set = space_ranges, n = NRANGES(space_ranges);
			if (set != NULL) {
				p->pos++;
				if (!rb_add_set(p, &rb, set, n, e == 'D' || e == 'W' || e == 'S'))
					goto fail;
				is_set = true;
			} else if (e == 'p' || e == 'P') {
				size_t pat = p->pos - 1;
				p->pos++;
				if (!property_escape(p, pat))
					goto fail;
				is_set = true;
			} else if (!char_escape(p, true, &lo)) {
				goto fail;
			}
		} else {
			p->pos += utf8_decode(p->s, p->len, p->pos, &lo);
		}
		/* A range a-b, unless '-' is the last character before ']'. */
		if (peek(p) == '-' && peek_at(p, 1) != ']' && peek_at(p, 1) != -1 && !is_set) {
			size_t dash = p->pos;
			p->pos++;
			uint32_t hi = 0;
			if (peek(p) == '\\') {
				p->pos++;
				int e = peek(p);
				if (e != -1 && strchr("dDwWsSpP", e) != NULL) {
					fail(p, "a class range cannot end with a set at offset %zu",
					     dash);
					goto fail;
				}
				if (!char_escape(p, true, &hi))
					goto fail;
			} else {
				p->pos += utf8_decode(p->s, p->len, p->pos, &hi);
			}
			if (hi < lo) {
				fail(p, "class range out of order at offset %zu", dash);
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
	int nd = new_node(p, K_CLASS);
	if (nd >= 0)
		p->nodes[nd].c = (uint32_t)ci;
	return nd;
fail:
	free(rb.r);
	return -1;
}

/* Reads a decimal number for a quantifier; -1 if none. Saturates. */
static long read_decimal(struct parser *p)
{
	if (peek(p) < '0' || peek(p) > '9')
		return -1;
	long v = 0;
	while (peek(p) >= '0' && peek(p) <= '9') {
		if (v <= RX_MAX_COUNT)
			v = v * 10 + (peek(p) - '0');
		p->pos++;
	}
	return v;
}

/* Tries to read {n}, {n,} or {n,m} at p->pos. Returns true and advances if
 * it is one; otherwise leaves p->pos alone ('{' is then a literal). */
static bool read_braces(struct parser *p, long *min, long *max)
{
	size_t save = p->pos;
	if (peek(p) != '{')
		return false;
	p->pos++;
	long a = read_decimal(p);
	if (a < 0)
		goto no;
	long b = a;
	if (peek(p) == ',') {
		p->pos++;
		b = read_decimal(p);
		if (b < 0)
			b = -1;
	}
	if (peek(p) != '}')
		goto no;
	p->pos++;
	*min = a;
	*max = b;
	return true;
no:
	p->pos = save;
	return false;
}

static bool is_quantifier_start(struct parser *p)
{
	int c = peek(p);
	if (c == '*' || c == '+' || c == '?')
		return true;
	long a, b;
	size_t save = p->pos;
	if (read_braces(p, &a, &b)) {
		p->pos = save;
		return true;
	}
	return false;
}

static int parse_alt(struct parser *p);

static bool is_name_char(int c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
	       c >= 0x80 || (!first && c >= '0' && c <= '9');
}

/* Reads a group name up to '>' (p->pos after '<'); returns its length or 0. */
static size_t read_name(struct parser *p)
{
	size_t start = p->pos;
	while (!at_end(p) && peek(p) != '>') {
		if (!is_name_char(peek(p), p->pos == start))
			return 0;
		p->pos++;
	}
	if (peek(p) != '>' || p->pos == start)
		return 0;
	size_t n = p->pos - start;
	p->pos++;
	return n;
}

static bool known_name(const struct parser *p, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < p->nnames; i++)
		if (p->namelens[i] == len && memcmp(p->names[i], name, len) == 0)
			return true;
	return false;
}

static int parse_group(struct parser *p)
{
	size_t at = p->pos - 1;
	if (++p->depth > RX_MAX_NEST) {
		fail(p, "groups nest deeper than %d at offset %zu", RX_MAX_NEST, at);
		return -1;
	}
	int nd;
	enum kind kind = K_GROUP;
	bool behind = false, negate = false;
	if (peek(p) == '?') {
		int c1 = peek_at(p, 1), c2 = peek_at(p, 2);
		if (c1 == ':') {
			p->pos += 2;
		} else if (c1 == '=' || c1 == '!') {
			kind = K_LOOK;
			negate = c1 == '!';
			p->pos += 2;
		} else if (c1 == '<' && (c2 == '=' || c2 == '!')) {
			kind = K_LOOK;
			behind = true;
			negate = c2 == '!';
			p->pos += 3;
		} else if (c1 == '<') {
			p->pos += 2;
			if (read_name(p) == 0) {
				fail(p, "invalid group name at offset %zu", at);
				return -1;
			}
		} else {
			fail(p,
			     "invalid group \"(?\" at offset %zu (inline flags do not exist in "
			     "ECMA-262)",
			     at);
			return -1;
		}
	}
	int inner = parse_alt(p);
	if (inner < 0)
		return -1;
	if (peek(p) != ')') {
		fail(p, "missing \")\" for the group at offset %zu", at);
		return -1;
	}
	p->pos++;
	p->depth--;
	nd = new_node(p, kind);
	if (nd < 0)
		return -1;
	p->nodes[nd].kid = inner;
	p->nodes[nd].behind = behind;
	p->nodes[nd].negate = negate;
	return nd;
}

/* Parses one atom with its quantifier, or an assertion. */
static int parse_term(struct parser *p)
{
	size_t at = p->pos;
	int c = peek(p);
	int nd = -1;
	bool quantifiable = true;
	switch (c) {
	case '^':
	case '$':
		p->pos++;
		nd = new_node(p, c == '^' ? K_BOL : K_EOL);
		quantifiable = false;
		break;
	case '(':
		p->pos++;
		nd = parse_group(p);
		if (nd >= 0 && p->nodes[nd].kind == K_LOOK)
			quantifiable = false;
		break;
	case '[':
		p->pos++;
		nd = parse_class(p);
		break;
	case '.':
		p->pos++;
		nd = class_node(p, line_ranges, NRANGES(line_ranges), true);
		break;
	case '*':
	case '+':
	case '?':
		fail(p, "nothing to repeat at offset %zu", at);
		return -1;
	case '{':
		if (is_quantifier_start(p)) {
			fail(p, "nothing to repeat at offset %zu", at);
			return -1;
		}
		p->pos++;
		nd = new_node(p, K_CHAR);
		if (nd >= 0)
			p->nodes[nd].c = '{';
		break;
	case '\\': {
		p->pos++;
		int e = peek(p);
		if (e == 'b' || e == 'B') {
			p->pos++;
			nd = new_node(p, e == 'b' ? K_WORDB : K_NWORDB);
			quantifiable = false;
		} else if (e == 'd' || e == 'D') {
			p->pos++;
			nd = class_node(p, digit_ranges, NRANGES(digit_ranges), e == 'D');
		} else if (e == 'w' || e == 'W') {
			p->pos++;
			nd = class_node(p, word_ranges, NRANGES(word_ranges), e == 'W');
		} else if (e == 's' || e == 'S') {
			p->pos++;
			nd = class_node(p, space_ranges, NRANGES(space_ranges), e == 'S');
		} else if (e >= '1' && e <= '9') {
			long v = read_decimal(p);
			if (v > p->ngroups) {
				fail(p,
				     "backreference \"\\%ld\" to a group that does not exist at "
				     "offset %zu",
				     v, at);
				return -1;
			}
			mark_unsupported(p, "backreferences", at);
			nd = new_node(p, K_BACKREF);
		} else if (e == 'k') {
			p->pos++;
			if (peek(p) != '<') {
				fail(p, "\"\\k\" must be followed by \"<name>\" at offset %zu", at);
				return -1;
			}
			p->pos++;
			size_t start = p->pos;
			size_t n = read_name(p);
			if (n == 0 || !known_name(p, p->s + start, n)) {
				fail(p, "\"\\k<...>\" names no group at offset %zu", at);
				return -1;
			}
			mark_unsupported(p, "backreferences", at);
			nd = new_node(p, K_BACKREF);
		} else if (e == 'p' || e == 'P') {
			p->pos++;
			if (!property_escape(p, at))
				return -1;
			nd = new_node(p, K_EMPTY);
		} else {
			uint32_t cp;
			if (!char_escape(p, false, &cp))
				return -1;
			nd = new_node(p, K_CHAR);
			if (nd >= 0)
				p->nodes[nd].c = cp;
		}
		break;
	}
	default: {
		uint32_t cp;
		p->pos += utf8_decode(p->s, p->len, p->pos, &cp);
		nd = new_node(p, K_CHAR);
		if (nd >= 0)
			p->nodes[nd].c = cp;
		break;
	}
	}
	if (nd < 0)
		return -1;

	/* Quantifier. */
	long min, max;
	size_t qat = p->pos;
	c = peek(p);
	if (c == '*') {
		min = 0, max = -1;
		p->pos++;
	} else if (c == '+') {
		min = 1, max = -1;
		p->pos++;
	} else if (c == '?') {
		min = 0, max = 1;
		p->pos++;
	} else if (!read_braces(p, &min, &max)) {
		return nd;
	}
	if (!quantifiable) {
		fail(p, "nothing to repeat at offset %zu", qat);
		return -1;
	}
	if (min > RX_MAX_COUNT || max > RX_MAX_COUNT) {
		fail(p, "repetition count is larger than %d at offset %zu", RX_MAX_COUNT, qat);
		return -1;
	}
	if (max >= 0 && max < min) {
		fail(p, "numbers out of order in the quantifier at offset %zu", qat);
		return -1;
	}
	if (peek(p) == '?') /* lazy: the same language, so the same answer */
		p->pos++;
	if (is_quantifier_start(p)) {
		fail(p, "nothing to repeat at offset %zu", p->pos);
		return -1;
	}
	int rep = new_node(p, K_REPEAT);
	if (rep < 0)
		return -1;
	p->nodes[rep].kid = nd;
	p->nodes[rep].min = (int32_t)min;
	p->nodes[rep].max = (int32_t)max;
	return rep;
}

static int parse_cat(struct parser *p)
{
	int first = -1, last = -1;
	while (!at_end(p) && peek(p) != '|' && peek(p) != ')') {
		int t = parse_term(p);
		if (t < 0)
			return -1;
		if (first < 0)
			first = t;
		else
			p->nodes[last].next = t;
		last = t;
	}
	if (first < 0)
		return new_node(p, K_EMPTY);
	if (first == last)
		return first;
	int nd = new_node(p, K_CAT);
	if (nd >= 0)
		p->nodes[nd].kid = first;
	return nd;
}

static int parse_alt(struct parser *p)
{
	int first = parse_cat(p);
	if (first < 0 || peek(p) != '|')
		return first;
	int last = first;
	while (peek(p) == '|') {
		p->pos++;
		int t = parse_cat(p);
		if (t < 0)
			return -1;
		p->nodes[last].next = t;
		last = t;
	}
	int nd = new_node(p, K_ALT);
	if (nd >= 0)
		p->nodes[nd].kid = first;
	return nd;
}

/* Counts capturing groups and collects group names before parsing, since a
 * backreference may come before its group. */
static bool prescan(struct parser *p)
{
	bool in_class = false;
	for (size_t i = 0; i < p->len; i++) {
		uint8_t c = p->s[i];
		if (c == '\\') {
			i++;
		} else if (in_class) {
			if (c == ']')
				in_class = false;
		} else if (c == '[') {
			in_class = true;
		} else if (c == '(') {
			if (i + 1 < p->len && p->s[i + 1] == '?') {
				if (i + 2 < p->len && p->s[i + 2] == '<' && i + 3 < p->len &&
				    p->s[i + 3] != '=' && p->s[i + 3] != '!') {
					size_t start = i + 3, e = start;
					while (e < p->len && p->s[e] != '>')
						e++;
					const char **nn =
					        realloc(p->names, (p->nnames + 1) * sizeof(*nn));
					if (nn == NULL)
						return false;
					p->names = nn;
					size_t *nl =
					        realloc(p->namelens, (p->nnames + 1) * sizeof(*nl));
					if (nl == NULL)
						return false;
					p->namelens = nl;
					p->names[p->nnames] = (const char *)p->s + start;
					p->namelens[p->nnames++] = e - start;
					p->ngroups++;
				}
			} else {
				p->ngroups++;
			}
		}
	}
	return true;
}

static void parser_release(struct parser *p)
{
	free(p->nodes);
	for (size_t i = 0; i < p->ncls; i++)
		free(p->classes[i].r);
	free(p->classes);
	free(p->names);
	free(p->namelens);
	free(p->err);
}

/* Parses the whole pattern; returns the root node or -1 (p->err set). */
static int parse(struct parser *p, const char *src, size_t len)
{
	p->s = (const uint8_t *)src;
	p->len = len;
	if (!prescan(p)) {
		p->nomem = true;
		return -1;
	}
	int root = parse_alt(p);
	if (root >= 0 && !at_end(p)) {
		fail(p, "unmatched \")\" at offset %zu", p->pos);
		root = -1;
	}
	if (failed(p))
		return -1;
	return root;
}

bool jsonschema_regex_valid(const char *src, size_t len)
{
	struct parser p = {0};
	int root = parse(&p, src, len);
	parser_release(&p);
	return root >= 0;
}

/* ---- the compiler ---- */

/* Instructions node nd expands to, saturating above the limit. */
static uint64_t prog_size(const struct parser *p, int nd)
{
	const struct node *n = &p->nodes[nd];
	uint64_t sz = 0;
	switch (n->kind) {
	case K_EMPTY:
	case K_BACKREF:
		return 0;
	case K_CHAR:
	case K_CLASS:
	case K_BOL:
	case K_EOL:
	case K_WORDB:
	case K_NWORDB:
		return 1;
	case K_GROUP:
		return prog_size(p, n->kid);
	case K_LOOK:
		return 2 + prog_size(p, n->kid); /* LOOK, body, MATCH */
	case K_CAT:
		for (int k = n->kid; k >= 0; k = p->nodes[k].next) {
			sz += prog_size(p, k);
			if (sz > RX_MAX_INSTS)
				return RX_MAX_INSTS + 1;
		}
		return sz;
	case K_ALT:
		for (int k = n->kid; k >= 0; k = p->nodes[k].next) {
			sz += prog_size(p, k) + 2;
			if (sz > RX_MAX_INSTS)
				return RX_MAX_INSTS + 1;
		}
		return sz;
	case K_REPEAT: {
		uint64_t body = prog_size(p, n->kid);
		uint64_t copies = n->max < 0 ? (uint64_t)n->min + 1 : (uint64_t)n->max;
		sz = copies * (body + 2);
		return sz > RX_MAX_INSTS ? RX_MAX_INSTS + 1 : sz;
	}
	}
	return 0;
}

struct pending_look {
	int node;
	uint32_t pc;
};

struct compiler {
	const struct parser *p;
	struct inst *prog;
	uint32_t n;
	struct pending_look *looks;
	size_t nlooks, caplooks;
	bool nomem;
};

static uint32_t emit(struct compiler *c, enum op op, uint32_t x, uint32_t y)
{
	/* prog was sized from prog_size(), which bounds every emit below. */
	c->prog[c->n] = (struct inst){.op = (uint8_t)op, .x = x, .y = y};
	return c->n++;
}

static void gen(struct compiler *c, int nd, bool reverse)
{
	const struct node *n = &c->p->nodes[nd];
	switch (n->kind) {
	case K_EMPTY:
	case K_BACKREF:
		break;
	case K_CHAR:
		emit(c, OP_CHAR, n->c, 0);
		break;
	case K_CLASS:
		emit(c, OP_CLASS, n->c, 0);
		break;
	case K_BOL:
		emit(c, OP_BOL, 0, 0);
		break;
	case K_EOL:
		emit(c, OP_EOL, 0, 0);
		break;
	case K_WORDB:
		emit(c, OP_WORDB, 0, 0);
		break;
	case K_NWORDB:
		emit(c, OP_NWORDB, 0, 0);
		break;
	case K_GROUP:
		gen(c, n->kid, reverse);
		break;
	case K_LOOK: {
		uint32_t pc = emit(c, OP_LOOK, 0, (uint32_t)c->nlooks);
		c->prog[pc].behind = n->behind;
		c->prog[pc].negate = n->negate;
		if (c->nlooks == c->caplooks) {
			size_t cap = c->caplooks ? c->caplooks * 2 : 4;
			struct pending_look *nl = realloc(c->looks, cap * sizeof(*nl));
			if (nl == NULL) {
				c->nomem = true;
				return;
			}
			c->looks = nl;
			c->caplooks = cap;
		}
		c->looks[c->nlooks++] = (struct pending_look){nd, pc};
		break;
	}
	case K_CAT:
		if (!reverse) {
			for (int k = n->kid; k >= 0; k = c->p->nodes[k].next)
				gen(c, k, reverse);
		} else {
			/* Children are a singly linked list: collect, then walk back. */
			size_t cnt = 0;
			for (int k = n->kid; k >= 0; k = c->p->nodes[k].next)
				cnt++;
			int *kids = malloc(cnt * sizeof(*kids));
			if (kids == NULL) {
				c->nomem = true;
				return;
			}
			size_t i = 0;
			for (int k = n->kid; k >= 0; k = c->p->nodes[k].next)
				kids[i++] = k;
			while (i-- > 0)
				gen(c, kids[i], reverse);
			free(kids);
		}
		break;
	case K_ALT: {
		/* SPLIT next_alt; body; JMP end; ... last body. JMPs chain to the end. */
		uint32_t jmps = UINT32_MAX;
		for (int k = n->kid; k >= 0; k = c->p->nodes[k].next) {
			if (c->p->nodes[k].next >= 0) {
				uint32_t split = emit(c, OP_SPLIT, 0, 0);
				c->prog[split].x = c->n;
				gen(c, k, reverse);
				uint32_t j = emit(c, OP_JMP, jmps, 0);
				jmps = j;
				c->prog[split].y = c->n;
			} else {
				gen(c, k, reverse);
			}
		}
		while (jmps != UINT32_MAX) {
			uint32_t prev = c->prog[jmps].x;
			c->prog[jmps].x = c->n;
			jmps = prev;
		}
		break;
	}
	case K_REPEAT: {
		for (int32_t i = 0; i < n->min; i++)
			gen(c, n->kid, reverse);
		if (n->max < 0) {
			uint32_t split = emit(c, OP_SPLIT, 0, 0);
			c->prog[split].x = c->n;
			gen(c, n->kid, reverse);
			emit(c, OP_JMP, split, 0);
			c->prog[split].y = c->n;
		} else {
			/* Optional copies: each SPLIT may skip to the very end. */
			uint32_t first = c->n;
			uint32_t count = (uint32_t)(n->max - n->min);
			for (uint32_t i = 0; i < count; i++) {
				uint32_t split = emit(c, OP_SPLIT, 0, UINT32_MAX);
				c->prog[split].x = c->n;
				gen(c, n->kid, reverse);
			}
			for (uint32_t pc = first; pc < c->n; pc++)
				if (c->prog[pc].op == OP_SPLIT && c->prog[pc].y == UINT32_MAX)
					c->prog[pc].y = c->n;
		}
		break;
	}
	}
}

static bool starts_anchored(const struct parser *p, int nd)
{
	for (;;) {
		const struct node *n = &p->nodes[nd];
		if (n->kind == K_BOL)
			return true;
		if (n->kind == K_GROUP || n->kind == K_CAT)
			nd = n->kid;
		else
			return false;
	}
}

void jsonschema_regex_destroy(struct jsonschema_regex *re)
{
	if (re == NULL)
		return;
	for (size_t i = 0; i < re->nclasses; i++)
		free(re->classes[i].r);
	free(re->classes);
	free(re->prog);
	free(re);
}

int jsonschema_regex_compile(const char *src, size_t len, struct jsonschema_regex **out, char **err)
{
	struct parser p = {0};
	struct compiler c = {0};
	struct jsonschema_regex *re = NULL;
	int rc = -EINVAL;
	int root = parse(&p, src, len);
	if (root < 0) {
		if (p.nomem)
			rc = -ENOMEM;
		goto done;
	}
	if (p.unsupported != NULL) {
		fail(&p, "%s are not supported (offset %zu); rewrite the pattern without them",
		     p.unsupported, p.unsupported_at);
		goto done;
	}
	uint64_t size = prog_size(&p, root) + 1;
	if (size > RX_MAX_INSTS) {
		fail(&p,
		     "the pattern expands to more than %d instructions; use smaller "
		     "repetition counts",
		     RX_MAX_INSTS);
		goto done;
	}
	rc = -ENOMEM;
	re = calloc(1, sizeof(*re));
	c.p = &p;
	c.prog = calloc(size, sizeof(*c.prog));
	if (re == NULL || c.prog == NULL)
		goto done;
	gen(&c, root, false);
	emit(&c, OP_MATCH, 0, 0);
	for (size_t i = 0; i < c.nlooks && !c.nomem; i++) {
		/* Bodies may add more looks to the list while it is walked. */
		const struct node *look = &p.nodes[c.looks[i].node];
		c.prog[c.looks[i].pc].x = c.n;
		gen(&c, look->kid, look->behind);
		emit(&c, OP_MATCH, 0, 0);
	}
	if (c.nomem)
		goto done;
	re->prog = c.prog;
	re->n = c.n;
	c.prog = NULL;
	re->classes = p.classes;
	re->nclasses = p.ncls;
	p.classes = NULL;
	p.ncls = 0;
	re->nlooks = (uint32_t)c.nlooks;
	re->anchored = starts_anchored(&p, root);
	*out = re;
	re = NULL;
	rc = 0;
done:
	if (rc == -EINVAL && err != NULL) {
		*err = p.err;
		p.err = NULL;
		if (*err == NULL)
			rc = -ENOMEM;
	}
	jsonschema_regex_destroy(re);
	free(c.prog);
	free(c.looks);
	parser_release(&p);
	return rc;
}

/* ---- the matcher ---- */

struct exec {
	const struct jsonschema_regex *re;
	const uint8_t *s;
	size_t len;
	uint64_t *budget;
	uint8_t **memo; /* per look: one byte per position, 0 unknown, 1 no, 2 yes */
};

/* A sparse set of instruction indexes: O(1) insert, test and clear. */
struct set {
	uint32_t *dense;
	uint32_t *sparse;
	uint32_t n;
};

static bool set_has(const struct set *s, uint32_t pc)
{
	uint32_t i = s->sparse[pc];
	return i < s->n && s->dense[i] == pc;
}

static void set_add(struct set *s, uint32_t pc)
{
	s->sparse[pc] = s->n;
	s->dense[s->n++] = pc;
}

static bool class_has(const struct cls *c, uint32_t cp)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp < c->r[mid].lo)
			hi = mid;
		else if (cp > c->r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static bool is_word(uint32_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       c == '_';
}

static bool word_at(const struct exec *ex, size_t pos)
{
	uint32_t cp;
	bool before = false, after = false;
	if (pos > 0) {
		utf8_decode_back(ex->s, ex->len, pos, &cp);
		before = is_word(cp);
	}
	if (pos < ex->len) {
		utf8_decode(ex->s, ex->len, pos, &cp);
		after = is_word(cp);
	}
	return before != after;
}

static int run(struct exec *ex, uint32_t start, size_t pos, bool backward, bool search);

/* Evaluates the lookaround at pc for position pos: 1 true, 0 false, <0 error. */
static int look(struct exec *ex, const struct inst *in, size_t pos)
{
	uint32_t li = in->y;
	if (ex->memo[li] == NULL) {
		ex->memo[li] = calloc(ex->len + 1, 1);
		if (ex->memo[li] == NULL)
			return -ENOMEM;
	}
	uint8_t m = ex->memo[li][pos];
	if (m == 0) {
		int r = run(ex, in->x, pos, in->behind, false);
		if (r < 0)
			return r;
		m = r ? 2 : 1;
		ex->memo[li][pos] = m;
	}
	return (m == 2) != in->negate;
}

/*
 * Adds pc and everything reachable from it without consuming input to set,
 * at position pos. stack has room for 2n + 1 entries. Returns 1 if MATCH
 * is reachable, 0 if not, <0 on error.
 */
static int closure(struct exec *ex, struct set *set, uint32_t *stack, uint32_t pc, size_t pos)
{
	const struct inst *prog = ex->re->prog;
	uint32_t sp = 0;
	stack[sp++] = pc;
	while (sp > 0) {
		pc = stack[--sp];
		if (set_has(set, pc))
			continue;
		set_add(set, pc);
		if (*ex->budget == 0)
			return -E2BIG;
		(*ex->budget)--;
		const struct inst *in = &prog[pc];
		int r;
		switch (in->op) {
		case OP_MATCH:
			return 1;
		case OP_JMP:
			stack[sp++] = in->x;
			break;
		case OP_SPLIT:
			stack[sp++] = in->y;
			stack[sp++] = in->x;
			break;
		case OP_BOL:
			if (pos == 0)
				stack[sp++] = pc + 1;
			break;
		case OP_EOL:
			if (pos == ex->len)
				stack[sp++] = pc + 1;
			break;
		case OP_WORDB:
		case OP_NWORDB:
			if (word_at(ex, pos) == (in->op == OP_WORDB))
				stack[sp++] = pc + 1;
			break;
		case OP_LOOK:
			r = look(ex, in, pos);
			if (r < 0)
				return r;
			if (r)
				stack[sp++] = pc + 1;
			break;
		default: /* CHAR and CLASS wait in the set for the next code point */
			break;
		}
	}
	return 0;
}

/*
 * Runs the program from start at pos, forwards or backwards. With search,
 * a new attempt starts at every later position (an unanchored search).
 * Returns 1 if it reaches MATCH, 0 if not, <0 on error.
 */
static int run(struct exec *ex, uint32_t start, size_t pos, bool backward, bool search)
{
	uint32_t n = ex->re->n;
	/* Two sparse sets and a closure stack. Each instruction is expanded at
	 * most once per closure and pushes at most two more, hence 2n + 1. The
	 * sets are zeroed only so that no tool flags the sparse-set trick. */
	uint32_t *mem = calloc((size_t)n * 6 + 1, sizeof(*mem));
	if (mem == NULL)
		return -ENOMEM;
	struct set cur = {mem, mem + n, 0}, nxt = {mem + 2 * (size_t)n, mem + 3 * (size_t)n, 0};
	uint32_t *stack = mem + 4 * (size_t)n;
	const struct inst *prog = ex->re->prog;
	int r = closure(ex, &cur, stack, start, pos);
	while (r == 0) {
		if (backward ? pos == 0 : pos >= ex->len)
			break;
		uint32_t cp;
		size_t w = backward ? utf8_decode_back(ex->s, ex->len, pos, &cp)
		                    : utf8_decode(ex->s, ex->len, pos, &cp);
		size_t npos = backward ? pos - w : pos + w;
		nxt.n = 0;
		for (uint32_t i = 0; i < cur.n && r == 0; i++) {
			const struct inst *in = &prog[cur.dense[i]];
			bool ok = (in->op == OP_CHAR && in->x == cp) ||
			          (in->op == OP_CLASS && class_has(&ex->re->classes[in->x], cp));
			if (ok)
				r = closure(ex, &nxt, stack, cur.dense[i] + 1, npos);
		}
		if (r == 0 && search)
			r = closure(ex, &nxt, stack, start, npos);
		struct set t = cur;
		cur = nxt;
		nxt = t;
		pos = npos;
		if (cur.n == 0 && !search)
			break;
	}
	free(mem);
	return r;
}

int jsonschema_regex_search(const struct jsonschema_regex *re, const char *s, size_t len,
                            uint64_t *budget)
{
	struct exec ex = {re, (const uint8_t *)s, len, budget, NULL};
	if (re->nlooks > 0) {
		ex.memo = calloc(re->nlooks, sizeof(*ex.memo));
		if (ex.memo == NULL)
			return -ENOMEM;
	}
	int r = run(&ex, 0, 0, false, !re->anchored);
	for (uint32_t i = 0; ex.memo != NULL && i < re->nlooks; i++)
		free(ex.memo[i]);
	free(ex.memo);
	return r;
}
