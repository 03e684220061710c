/*
 * jobdef_tree: YAML text to a small tree, with every hostile case bounded.
 *
 * libyaml's event parser feeds the tree. Building it ourselves, instead of
 * using libyaml's document loader, lets us refuse anchors, aliases and tags
 * the moment they appear and stop at the nesting, scalar and node limits
 * before allocating more. No alias is ever expanded (a "billion laughs"
 * document fails at its first anchor), so the tree is at most a constant
 * times the text, which is at most JOBDEF_MAX_SIZE bytes. libyaml keeps its
 * own parse state on heap stacks, not the C stack, so deep nesting cannot
 * overflow it before our depth limit stops it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "jobdef.h"
#include "jobdef_int.h"

struct tctx {
	const char *file; /* for messages */
	const char *text; /* the input, to place reader errors */
	size_t len;       /* bytes in text */
	size_t nodes;     /* nodes made so far */
	int rc;           /* first failure, 0 if none */
	char **err;       /* where its message goes */
};

int jobdef__errorf(char **err, const char *file, int line, int col, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;
	if (err == NULL || *err != NULL)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		n = asprintf(err, "%s:%d:%d: %s", file, line, col, msg);
	else
		n = asprintf(err, "%s: %s", file, msg);
	if (n < 0) {
		*err = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

static int fail_at(struct tctx *c, yaml_mark_t m, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail_at(struct tctx *c, yaml_mark_t m, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	if (c->rc != 0)
		return c->rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->rc = jobdef__errorf(c->err, c->file, (int)m.line + 1, (int)m.column + 1, "%s", msg);
	return c->rc;
}

static void set_oom(struct tctx *c)
{
	if (c->rc == 0)
		c->rc = -ENOMEM;
}

void jobdef__tree_free(struct jobdef__node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		jobdef__tree_free(n->kids[i]); /* recursion is bounded by JOBDEF_MAX_DEPTH */
	free(n->kids);
	free(n->text);
	free(n);
}

bool jobdef__tree_is_null(const struct jobdef__node *n)
{
	return n->kind == JOBDEF__SCALAR &&
	       (n->len == 0 ||
	        (n->plain && jobdef__resolve(n->text, n->len, NULL, NULL) == JOBDEF__NULL));
}

static struct jobdef__node *node_new(struct tctx *c, enum jobdef__node_kind kind, yaml_mark_t m)
{
	struct jobdef__node *n;
	if (++c->nodes > JOBDEF_MAX_NODES) {
		fail_at(c, m, "more than %d values in one definition: split the package",
		        JOBDEF_MAX_NODES);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		set_oom(c);
		return NULL;
	}
	n->kind = kind;
	n->line = (int)m.line + 1;
	n->col = (int)m.column + 1;
	return n;
}

static int node_add(struct tctx *c, struct jobdef__node *parent, struct jobdef__node *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		struct jobdef__node **k = realloc(parent->kids, cap * sizeof(*k));
		if (k == NULL) {
			set_oom(c);
			return c->rc;
		}
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

/* Places a libyaml error: reader errors carry a byte offset, the others a mark. */
static void yaml_fail(struct tctx *c, yaml_parser_t *p)
{
	yaml_mark_t m = p->problem_mark;
	if (p->error == YAML_MEMORY_ERROR) {
		set_oom(c);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		m.line = 0;
		m.column = 0;
		for (size_t i = 0; i < p->problem_offset && i < c->len; i++) {
			if (c->text[i] == '\n') {
				m.line++;
				m.column = 0;
			} else if (((unsigned char)c->text[i] & 0xc0) != 0x80) {
				m.column++; /* count characters, not UTF-8 continuation bytes */
			}
		}
		fail_at(c, m, "invalid YAML: %s (byte 0x%02x): the file must be UTF-8 text",
		        p->problem ? p->problem : "unreadable input",
		        (unsigned)p->problem_value & 0xff);
		return;
	}
	if (p->context != NULL &&
	    (p->context_mark.line != m.line || p->context_mark.column != m.column))
		fail_at(c, m, "invalid YAML: %s %s started at line %d column %d", p->problem,
		        p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	else if (p->context != NULL)
		fail_at(c, m, "invalid YAML: %s %s", p->problem, p->context);
	else
		fail_at(c, m, "invalid YAML: %s", p->problem ? p->problem : "syntax error");
}

/* Refuses anchors and tags: aliases are what make YAML bombs, and a tag
 * would change what a value means behind the schema's back. */
static int check_props(struct tctx *c, yaml_mark_t m, const yaml_char_t *anchor,
                       const yaml_char_t *tag)
{
	if (anchor != NULL)
		return fail_at(c, m,
		               "anchors ('&%s') and aliases are not supported: write the value out",
		               (const char *)anchor);
	if (tag != NULL)
		return fail_at(c, m, "tags ('%s') are not supported: remove the tag",
		               (const char *)tag);
	return 0;
}

/* Makes the node an event starts, or NULL (with c->rc set on failure). */
static struct jobdef__node *node_of(struct tctx *c, yaml_event_t *ev, int depth)
{
	yaml_mark_t m = ev->start_mark;
	struct jobdef__node *n;

	if (ev->type == YAML_SCALAR_EVENT) {
		if (check_props(c, m, ev->data.scalar.anchor, ev->data.scalar.tag) != 0)
			return NULL;
		if (ev->data.scalar.length > JOBDEF_MAX_SCALAR) {
			fail_at(c, m, "a value of %zu bytes; the limit is %d bytes",
			        ev->data.scalar.length, JOBDEF_MAX_SCALAR);
			return NULL;
		}
		n = node_new(c, JOBDEF__SCALAR, m);
		if (n == NULL)
			return NULL;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->len = ev->data.scalar.length;
		n->text = malloc(n->len + 1);
		if (n->text == NULL) {
			free(n);
			set_oom(c);
			return NULL;
		}
		memcpy(n->text, ev->data.scalar.value, n->len);
		n->text[n->len] = '\0';
		return n;
	}
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	if (check_props(c, m, map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor,
	                map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag) != 0)
		return NULL;
	if (depth == JOBDEF_MAX_DEPTH) {
		fail_at(c, m, "nesting deeper than %d levels: flatten the value", JOBDEF_MAX_DEPTH);
		return NULL;
	}
	return node_new(c, map ? JOBDEF__MAP : JOBDEF__SEQ, m);
}

int jobdef__tree_build(const char *text, size_t len, const char *file, struct jobdef__node **out,
                       char **err)
{
	struct tctx c = {.file = file, .text = text, .len = len, .err = err};
	yaml_parser_t p;
	yaml_event_t ev;
	struct jobdef__node *stack[JOBDEF_MAX_DEPTH];
	struct jobdef__node *root = NULL;
	int depth = 0, docs = 0;
	bool done = false;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && c.rc == 0) {
		struct jobdef__node *n = NULL;
		if (!yaml_parser_parse(&p, &ev)) {
			yaml_fail(&c, &p);
			break;
		}
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (docs++ > 0)
				fail_at(&c, ev.start_mark,
				        "a second YAML document: a job definition is one document; "
				        "put each package in its own file");
			break;
		case YAML_ALIAS_EVENT:
			fail_at(&c, ev.start_mark,
			        "aliases ('*%s') are not supported: write the value out",
			        (const char *)ev.data.alias.anchor);
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			n = node_of(&c, &ev, depth);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		if (n != NULL) {
			/* Attach at once, so that freeing the root releases everything.
			 * A document has one root; a second one is a second document. */
			if (depth == 0) {
				root = n;
			} else if (node_add(&c, stack[depth - 1], n) != 0) {
				jobdef__tree_free(n);
				n = NULL;
			}
			if (n != NULL && n->kind != JOBDEF__SCALAR)
				stack[depth++] = n;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (c.rc != 0) {
		jobdef__tree_free(root);
		return c.rc;
	}
	*out = root;
	return 0;
}
