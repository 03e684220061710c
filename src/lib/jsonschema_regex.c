/*
 * jsonschema_regex: compiler and Pike VM (the parser is in
 * jsonschema_regex_parse.c). See jsonschema_regex.h for the contract.
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
#include "jsonschema_regex_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	int root = rx_parse(&p, src, len);
	if (root < 0) {
		if (p.nomem)
			rc = -ENOMEM;
		goto done;
	}
	if (p.unsupported != NULL) {
		rx_fail(&p, "%s are not supported (offset %zu); rewrite the pattern without them",
		        p.unsupported, p.unsupported_at);
		goto done;
	}
	uint64_t size = prog_size(&p, root) + 1;
	if (size > RX_MAX_INSTS) {
		rx_fail(&p,
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
	if (c.nlooks > RX_MAX_LOOKS) {
		/* Each one memoizes a byte per subject position. */
		rc = -EINVAL;
		rx_fail(&p, "the pattern has more than %d lookarounds once expanded", RX_MAX_LOOKS);
		goto done;
	}
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
	rx_parser_release(&p);
	return rc;
}

/* ---- the matcher ---- */

struct exec {
	const struct jsonschema_regex *re;
	const uint8_t *s;
	size_t len;
	uint64_t *budget;
	uint8_t **memo; /* per look: one byte per position, 0 unknown, 1 no, 2 yes */
	/* VM buffers per lookaround nesting level, allocated once per search
	 * and reused by every run at that level (runs at one level never
	 * overlap), so a lookaround costs no allocation per position. */
	uint32_t *bufs[RX_MAX_NEST + 2];
	unsigned depth;
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
		rx_utf8_decode_back(ex->s, ex->len, pos, &cp);
		before = is_word(cp);
	}
	if (pos < ex->len) {
		rx_utf8_decode(ex->s, ex->len, pos, &cp);
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
	if (ex->depth >= RX_MAX_NEST + 2)
		return -E2BIG; /* cannot happen: lookarounds nest like groups */
	/* Two sparse sets and a closure stack. Each instruction is expanded at
	 * most once per closure and pushes at most two more, hence 2n + 1. The
	 * buffers are zeroed once only so that no tool flags the sparse-set
	 * trick; stale contents are harmless to it. */
	uint32_t *mem = ex->bufs[ex->depth];
	if (mem == NULL) {
		mem = calloc((size_t)n * 6 + 1, sizeof(*mem));
		if (mem == NULL)
			return -ENOMEM;
		ex->bufs[ex->depth] = mem;
	}
	ex->depth++;
	struct set cur = {mem, mem + n, 0}, nxt = {mem + 2 * (size_t)n, mem + 3 * (size_t)n, 0};
	uint32_t *stack = mem + 4 * (size_t)n;
	const struct inst *prog = ex->re->prog;
	int r = closure(ex, &cur, stack, start, pos);
	while (r == 0) {
		if (backward ? pos == 0 : pos >= ex->len)
			break;
		uint32_t cp;
		size_t w = backward ? rx_utf8_decode_back(ex->s, ex->len, pos, &cp)
		                    : rx_utf8_decode(ex->s, ex->len, pos, &cp);
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
	ex->depth--;
	return r;
}

int jsonschema_regex_search(const struct jsonschema_regex *re, const char *s, size_t len,
                            uint64_t *budget)
{
	struct exec ex = {.re = re, .s = (const uint8_t *)s, .len = len, .budget = budget};
	if (re->nlooks > 0) {
		ex.memo = calloc(re->nlooks, sizeof(*ex.memo));
		if (ex.memo == NULL)
			return -ENOMEM;
	}
	int r = run(&ex, 0, 0, false, !re->anchored);
	for (uint32_t i = 0; ex.memo != NULL && i < re->nlooks; i++)
		free(ex.memo[i]);
	free(ex.memo);
	for (size_t i = 0; i < sizeof(ex.bufs) / sizeof(ex.bufs[0]); i++)
		free(ex.bufs[i]);
	return r;
}
