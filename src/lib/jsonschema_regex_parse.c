/*
 * jsonschema_regex_parse: the pattern parser, a recursive descent over
 * code points that builds the syntax tree in an array (nodes refer to each
 * other by index, so growing the array never leaves a dangling pointer).
 * Group nesting is bounded (RX_MAX_NEST), so the recursion is too.
 */
#include "jsonschema_regex_int.h"

#include <stdlib.h>
#include <string.h>

/* Reads a decimal number for a quantifier; -1 if none. Saturates. */
static long read_decimal(struct parser *p)
{
	if (rx_peek(p) < '0' || rx_peek(p) > '9')
		return -1;
	long v = 0;
	while (rx_peek(p) >= '0' && rx_peek(p) <= '9') {
		if (v <= RX_MAX_COUNT)
			v = v * 10 + (rx_peek(p) - '0');
		p->pos++;
	}
	return v;
}

/* Tries to read {n}, {n,} or {n,m} at p->pos. Returns true and advances if
 * it is one; otherwise leaves p->pos alone ('{' is then a literal). */
static bool read_braces(struct parser *p, long *min, long *max)
{
	size_t save = p->pos;
	if (rx_peek(p) != '{')
		return false;
	p->pos++;
	long a = read_decimal(p);
	if (a < 0)
		goto no;
	long b = a;
	if (rx_peek(p) == ',') {
		p->pos++;
		b = read_decimal(p);
		if (b < 0)
			b = -1;
	}
	if (rx_peek(p) != '}')
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
	int c = rx_peek(p);
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
	while (!rx_at_end(p) && rx_peek(p) != '>') {
		if (!is_name_char(rx_peek(p), p->pos == start))
			return 0;
		p->pos++;
	}
	if (rx_peek(p) != '>' || p->pos == start)
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
		rx_fail(p, "groups nest deeper than %d at offset %zu", RX_MAX_NEST, at);
		return -1;
	}
	int nd;
	enum kind kind = K_GROUP;
	bool behind = false, negate = false;
	if (rx_peek(p) == '?') {
		int c1 = rx_peek_at(p, 1), c2 = rx_peek_at(p, 2);
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
				rx_fail(p, "invalid group name at offset %zu", at);
				return -1;
			}
		} else {
			rx_fail(p,
			        "invalid group \"(?\" at offset %zu (inline flags do not exist in "
			        "ECMA-262)",
			        at);
			return -1;
		}
	}
	int inner = parse_alt(p);
	if (inner < 0)
		return -1;
	if (rx_peek(p) != ')') {
		rx_fail(p, "missing \")\" for the group at offset %zu", at);
		return -1;
	}
	p->pos++;
	p->depth--;
	nd = rx_new_node(p, kind);
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
	int c = rx_peek(p);
	int nd = -1;
	bool quantifiable = true;
	switch (c) {
	case '^':
	case '$':
		p->pos++;
		nd = rx_new_node(p, c == '^' ? K_BOL : K_EOL);
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
		nd = rx_parse_class(p);
		break;
	case '.':
		p->pos++;
		nd = rx_class_node(p, rx_line, RX_NRANGES(rx_line), true);
		break;
	case '*':
	case '+':
	case '?':
		rx_fail(p, "nothing to repeat at offset %zu", at);
		return -1;
	case '{':
		if (is_quantifier_start(p)) {
			rx_fail(p, "nothing to repeat at offset %zu", at);
			return -1;
		}
		p->pos++;
		nd = rx_new_node(p, K_CHAR);
		if (nd >= 0)
			p->nodes[nd].c = '{';
		break;
	case '\\': {
		p->pos++;
		int e = rx_peek(p);
		if (e == 'b' || e == 'B') {
			p->pos++;
			nd = rx_new_node(p, e == 'b' ? K_WORDB : K_NWORDB);
			quantifiable = false;
		} else if (e == 'd' || e == 'D') {
			p->pos++;
			nd = rx_class_node(p, rx_digit, RX_NRANGES(rx_digit), e == 'D');
		} else if (e == 'w' || e == 'W') {
			p->pos++;
			nd = rx_class_node(p, rx_word, RX_NRANGES(rx_word), e == 'W');
		} else if (e == 's' || e == 'S') {
			p->pos++;
			nd = rx_class_node(p, rx_space, RX_NRANGES(rx_space), e == 'S');
		} else if (e >= '1' && e <= '9') {
			long v = read_decimal(p);
			if (v > p->ngroups) {
				rx_fail(p,
				        "backreference \"\\%ld\" to a group that does not exist at "
				        "offset %zu",
				        v, at);
				return -1;
			}
			rx_mark_unsupported(p, "backreferences", at);
			nd = rx_new_node(p, K_BACKREF);
		} else if (e == 'k') {
			p->pos++;
			if (rx_peek(p) != '<') {
				rx_fail(p, "\"\\k\" must be followed by \"<name>\" at offset %zu",
				        at);
				return -1;
			}
			p->pos++;
			size_t start = p->pos;
			size_t n = read_name(p);
			if (n == 0 || !known_name(p, p->s + start, n)) {
				rx_fail(p, "\"\\k<...>\" names no group at offset %zu", at);
				return -1;
			}
			rx_mark_unsupported(p, "backreferences", at);
			nd = rx_new_node(p, K_BACKREF);
		} else if (e == 'p' || e == 'P') {
			p->pos++;
			if (!rx_property_escape(p, at))
				return -1;
			nd = rx_new_node(p, K_EMPTY);
		} else {
			uint32_t cp;
			if (!rx_char_escape(p, false, &cp))
				return -1;
			nd = rx_new_node(p, K_CHAR);
			if (nd >= 0)
				p->nodes[nd].c = cp;
		}
		break;
	}
	default: {
		uint32_t cp;
		p->pos += rx_utf8_decode(p->s, p->len, p->pos, &cp);
		nd = rx_new_node(p, K_CHAR);
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
	c = rx_peek(p);
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
		rx_fail(p, "nothing to repeat at offset %zu", qat);
		return -1;
	}
	if (min > RX_MAX_COUNT || max > RX_MAX_COUNT) {
		rx_fail(p, "repetition count is larger than %d at offset %zu", RX_MAX_COUNT, qat);
		return -1;
	}
	if (max >= 0 && max < min) {
		rx_fail(p, "numbers out of order in the quantifier at offset %zu", qat);
		return -1;
	}
	if (rx_peek(p) == '?') /* lazy: the same language, so the same answer */
		p->pos++;
	if (is_quantifier_start(p)) {
		rx_fail(p, "nothing to repeat at offset %zu", p->pos);
		return -1;
	}
	int rep = rx_new_node(p, K_REPEAT);
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
	while (!rx_at_end(p) && rx_peek(p) != '|' && rx_peek(p) != ')') {
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
		return rx_new_node(p, K_EMPTY);
	if (first == last)
		return first;
	int nd = rx_new_node(p, K_CAT);
	if (nd >= 0)
		p->nodes[nd].kid = first;
	return nd;
}

static int parse_alt(struct parser *p)
{
	int first = parse_cat(p);
	if (first < 0 || rx_peek(p) != '|')
		return first;
	int last = first;
	while (rx_peek(p) == '|') {
		p->pos++;
		int t = parse_cat(p);
		if (t < 0)
			return -1;
		p->nodes[last].next = t;
		last = t;
	}
	int nd = rx_new_node(p, K_ALT);
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

void rx_parser_release(struct parser *p)
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
int rx_parse(struct parser *p, const char *src, size_t len)
{
	p->s = (const uint8_t *)src;
	p->len = len;
	if (!prescan(p)) {
		p->nomem = true;
		return -1;
	}
	int root = parse_alt(p);
	if (root >= 0 && !rx_at_end(p)) {
		rx_fail(p, "unmatched \")\" at offset %zu", p->pos);
		root = -1;
	}
	if (rx_failed(p))
		return -1;
	return root;
}

bool jsonschema_regex_valid(const char *src, size_t len)
{
	struct parser p = {0};
	int root = rx_parse(&p, src, len);
	rx_parser_release(&p);
	return root >= 0;
}
