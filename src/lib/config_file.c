/*
 * config_file: the YAML layer. The file is loaded as a libyaml document and
 * walked; nested mappings become dotted keys, and every key and value is
 * checked against the option table, so errors carry the node's position.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "config_int.h"

/* Walking a YAML tree visits aliased nodes once per reference; this bounds
 * the work a file full of aliases ("billion laughs") can cause. */
#define MAX_NODE_VISITS 100000

static const struct config_option *find_key(const struct config_option *opts, const char *key)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		if (strcmp(o->key, key) == 0)
			return o;
	}
	return NULL;
}

/* True if some option's key lies under section ("rpc" for "rpc.listen"). */
static bool is_section(const struct config_option *opts, const char *section)
{
	size_t n = strlen(section);
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		if (strncmp(o->key, section, n) == 0 && o->key[n] == '.')
			return true;
	}
	return false;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The known key closest to key, if it is close enough to be a typo. */
static const char *suggest(const struct config_option *opts, const char *key)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		size_t d = edit_distance(key, o->key);
		if (d < best_d) {
			best_d = d;
			best = o->key;
		}
	}
	size_t len = strlen(key);
	return (best_d <= 2 && best_d < len) ? best : NULL;
}

struct walk {
	const struct config_option *opts;
	yaml_document_t *doc;
	const char *name; /* file name for messages */
	size_t visits;
	char **err;
};

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a value";
	}
}

static const char *type_word(enum config_type t)
{
	switch (t) {
	case CONFIG_STRING:
		return "a string";
	case CONFIG_INT:
		return "an integer";
	case CONFIG_BOOL:
		return "true or false";
	case CONFIG_DURATION:
		return "a duration";
	case CONFIG_SIZE:
		return "a size";
	case CONFIG_URL:
		return "a URL";
	case CONFIG_URLS:
		return "a list of URLs";
	case CONFIG_ENUM:
		return "one word";
	}
	return "a value";
}

/* A plain scalar that YAML reads as null: empty, "~" or "null". */
static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static int walk_mapping(struct walk *w, yaml_node_t *map, const char *prefix);

static int walk_value(struct walk *w, const char *key, yaml_node_t *kn, yaml_node_t *vn)
{
	char where[512];
	snprintf(where, sizeof(where), "%s:%zu:%zu", w->name, vn->start_mark.line + 1,
	         vn->start_mark.column + 1);
	const struct config_option *o = find_key(w->opts, key);
	if (o == NULL) {
		if (vn->type == YAML_MAPPING_NODE && is_section(w->opts, key))
			return walk_mapping(w, vn, key);
		snprintf(where, sizeof(where), "%s:%zu:%zu", w->name, kn->start_mark.line + 1,
		         kn->start_mark.column + 1);
		if (is_section(w->opts, key))
			return config__fail(
			        w->err, -EINVAL,
			        "%s: '%s' is a section and takes a mapping of its keys, got %s",
			        where, key, node_kind(vn));
		const char *near = suggest(w->opts, key);
		if (near != NULL)
			return config__fail(w->err, -EINVAL,
			                    "%s: unknown key '%s' (did you mean '%s'?)", where, key,
			                    near);
		return config__fail(w->err, -EINVAL, "%s: unknown key '%s'", where, key);
	}
	if (is_null(vn))
		return config__fail(w->err, -EINVAL, "%s: '%s' has no value; expects %s", where,
		                    key, type_word(o->type));
	if (vn->type == YAML_SEQUENCE_NODE && o->type == CONFIG_URLS) {
		size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
		char **items = calloc(n + 1, sizeof(char *));
		if (items == NULL)
			return config__fail(w->err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *it =
			        yaml_document_get_node(w->doc, vn->data.sequence.items.start[i]);
			if (it == NULL || it->type != YAML_SCALAR_NODE || is_null(it)) {
				free(items);
				if (it != NULL)
					snprintf(where, sizeof(where), "%s:%zu:%zu", w->name,
					         it->start_mark.line + 1,
					         it->start_mark.column + 1);
				return config__fail(w->err, -EINVAL,
				                    "%s: '%s' expects a list of URLs, got %s in it",
				                    where, key,
				                    it != NULL ? node_kind(it) : "nothing");
			}
			items[i] = (char *)it->data.scalar.value;
		}
		int rv = config__set_list(o, items, n, where, w->err);
		free(items);
		return rv;
	}
	if (vn->type != YAML_SCALAR_NODE)
		return config__fail(w->err, -EINVAL, "%s: '%s' expects %s, got %s", where, key,
		                    type_word(o->type), node_kind(vn));
	if (strlen((const char *)vn->data.scalar.value) != vn->data.scalar.length)
		return config__fail(w->err, -EINVAL, "%s: '%s' contains a NUL character", where,
		                    key);
	return config__set_value(o, (const char *)vn->data.scalar.value, where, w->err);
}

static int walk_mapping(struct walk *w, yaml_node_t *map, const char *prefix)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	yaml_node_pair_t *top = map->data.mapping.pairs.top;
	for (yaml_node_pair_t *p = start; p < top; p++) {
		if (++w->visits > MAX_NODE_VISITS)
			return config__fail(w->err, -EINVAL,
			                    "%s: the file is too large or too nested", w->name);
		yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
		if (kn == NULL || vn == NULL)
			continue;
		if (kn->type != YAML_SCALAR_NODE || is_null(kn))
			return config__fail(w->err, -EINVAL,
			                    "%s:%zu:%zu: a key must be a word, got %s", w->name,
			                    kn->start_mark.line + 1, kn->start_mark.column + 1,
			                    node_kind(kn));
		const char *k = (const char *)kn->data.scalar.value;
		/* A duplicate key is refused: one of the two would be silently lost. */
		for (yaml_node_pair_t *q = start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(w->doc, q->key);
			if (qk != NULL && qk->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)qk->data.scalar.value, k) == 0)
				return config__fail(
				        w->err, -EINVAL,
				        "%s:%zu:%zu: duplicate key '%s%s%s' (first at line %zu)",
				        w->name, kn->start_mark.line + 1, kn->start_mark.column + 1,
				        prefix ? prefix : "", prefix ? "." : "", k,
				        qk->start_mark.line + 1);
		}
		char *key;
		if (asprintf(&key, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", k) < 0)
			return config__fail(w->err, -ENOMEM, "out of memory");
		int rv = walk_value(w, key, kn, vn);
		free(key);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int config_load_string(const struct config_option *opts, const char *name, const char *text,
                       size_t len, char **err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rv = 0;

	if (!yaml_parser_initialize(&parser))
		return config__fail(err, -ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rv = config__fail(err, -EINVAL, "%s:%zu:%zu: invalid YAML: %s%s%s", name,
		                  parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		                  parser.problem ? parser.problem : "syntax error",
		                  parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return rv;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root != NULL) {
		if (is_null(root)) {
			/* a file of comments only: no settings */
		} else if (root->type != YAML_MAPPING_NODE) {
			rv = config__fail(
			        err, -EINVAL,
			        "%s:%zu:%zu: the file must be a mapping of keys to values, got %s",
			        name, root->start_mark.line + 1, root->start_mark.column + 1,
			        node_kind(root));
		} else {
			struct walk w = {.opts = opts, .doc = &doc, .name = name, .err = err};
			rv = walk_mapping(&w, root, NULL);
		}
	}
	yaml_document_delete(&doc);
	if (rv == 0 && root != NULL) {
		/* One document only: a second one would be ignored by surprise. */
		yaml_document_t more;
		if (!yaml_parser_load(&parser, &more)) {
			rv = config__fail(err, -EINVAL, "%s:%zu:%zu: invalid YAML: %s", name,
			                  parser.problem_mark.line + 1,
			                  parser.problem_mark.column + 1,
			                  parser.problem ? parser.problem : "syntax error");
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&more);
			if (r2 != NULL)
				rv = config__fail(err, -EINVAL,
				                  "%s:%zu:%zu: only one YAML document is allowed",
				                  name, r2->start_mark.line + 1,
				                  r2->start_mark.column + 1);
			yaml_document_delete(&more);
		}
	}
	yaml_parser_delete(&parser);
	return rv;
}

int config_load_file(const struct config_option *opts, const char *path, char **err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		int e = errno;
		return config__fail(err, -e, "cannot read config file '%s': %s", path, strerror(e));
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rv = 0;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (64u << 20)) {
				rv = config__fail(err, -EFBIG,
				                  "config file '%s' is larger than 64 MiB", path);
				goto out;
			}
			char *nb = realloc(buf, cap);
			if (nb == NULL) {
				rv = config__fail(err, -ENOMEM, "out of memory");
				goto out;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		rv = config__fail(err, -EIO, "cannot read config file '%s'", path);
		goto out;
	}
	rv = config_load_string(opts, path, buf ? buf : "", len, err);
out:
	free(buf);
	fclose(f);
	return rv;
}
