/*
 * jsonschema_regex_int: what the files of the pattern engine share. Private
 * to jsonschema_regex*.c; the module's contract is jsonschema_regex.h.
 *
 * jsonschema_regex_class.c  UTF-8, character classes and escapes
 * jsonschema_regex_parse.c  the parser: pattern text to syntax tree
 * jsonschema_regex.c        the compiler to instructions and the Pike VM
 */
#ifndef NOETL_JSONSCHEMA_REGEX_INT_H
#define NOETL_JSONSCHEMA_REGEX_INT_H

#include "jsonschema_regex.h"

#define RX_MAX_INSTS 20000  /* instructions after expanding {n,m} */
#define RX_MAX_NEST  100    /* group nesting in a pattern */
#define RX_MAX_COUNT 100000 /* largest n or m accepted in {n,m} */
#define RX_MAX_LOOKS 32     /* lookarounds after expanding {n,m} */
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

/* Records the first error (a printf-style message) in p->err. */
void rx_fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True once an error or an allocation failure has been recorded. */
bool rx_failed(const struct parser *p);
/* Decodes one UTF-8 code point at s[i]; invalid bytes decode one by one as
 * U+FFFD. Returns the byte count. */
size_t rx_utf8_decode(const uint8_t *s, size_t len, size_t i, uint32_t *cp);
/* Decodes the code point that ends at s[i-1] (i > 0). */
size_t rx_utf8_decode_back(const uint8_t *s, size_t len, size_t i, uint32_t *cp);
/* Appends a node; returns its index or -1 (out of memory). */
int rx_new_node(struct parser *p, enum kind kind);
/* A class node for a set of ranges, or its complement. */
int rx_class_node(struct parser *p, const struct range *set, size_t n, bool negate);
/* Parses a character escape after the backslash. */
bool rx_char_escape(struct parser *p, bool in_class, uint32_t *cp);
/* Notes the first feature the matcher cannot run (syntax is still valid). */
void rx_mark_unsupported(struct parser *p, const char *what, size_t at);
/* Parses \p{Name} after "\p" (syntax only). */
bool rx_property_escape(struct parser *p, size_t at);
/* Parses [...] after the '['; returns a class node or -1. */
int rx_parse_class(struct parser *p);
/* Parses a whole pattern; returns the root node or -1 with p->err set. */
int rx_parse(struct parser *p, const char *src, size_t len);
/* Frees what the parser holds. */
void rx_parser_release(struct parser *p);

/* The sets behind \d, \w, \s and "." (the line terminators "." excludes). */
extern const struct range rx_digit[1], rx_word[4], rx_space[10], rx_line[3];
#define RX_NRANGES(a) (sizeof(a) / sizeof((a)[0]))

static inline bool rx_at_end(const struct parser *p)
{
	return p->pos >= p->len;
}

static inline int rx_peek(const struct parser *p)
{
	return rx_at_end(p) ? -1 : p->s[p->pos];
}

static inline int rx_peek_at(const struct parser *p, size_t off)
{
	return p->pos + off >= p->len ? -1 : p->s[p->pos + off];
}

#endif
