#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

/* Walking a YAML tree visits aliased nodes once per reference; this bounds
 * the work a file full of aliases ("billion laughs") can cause. */
#define MAX_NODE_VISITS 100000

static int fail(char **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char **err, int code, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(err, fmt, ap) < 0)
			*err = NULL;
		va_end(ap);
	}
	return code;
}

/* --- names --------------------------------------------------------------- */

/* '.', '-' and '_' are one letter in flag names; otherwise exact. */
static bool same_flag_char(char a, char b)
{
	bool sa = a == '.' || a == '-' || a == '_';
	bool sb = b == '.' || b == '-' || b == '_';
	return sa ? sb : a == b;
}

static bool flag_name_eq(const char *name, size_t len, const char *key)
{
	size_t i;
	for (i = 0; i < len && key[i] != '\0'; i++) {
		if (!same_flag_char(name[i], key[i]))
			return false;
	}
	return i == len && key[i] == '\0';
}

void config_env_name(const char *key, char *buf, size_t cap)
{
	if (cap == 0)
		return;
	size_t n = (size_t)snprintf(buf, cap, "NOETL_");
	for (; *key != '\0' && n + 1 < cap; key++) {
		char c = *key;
		buf[n++] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
	}
	buf[n < cap ? n : cap - 1] = '\0';
}

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

/* --- value parsers -------------------------------------------------------- */

int config_parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Reads an unsigned decimal number at *p; advances *p. */
static int read_number(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int config_parse_duration(const char *text, int64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
	        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
	};
	const char *p = text;
	uint64_t total = 0;
	if (strcmp(text, "0") == 0) {
		*ms = 0;
		return 0;
	}
	if (*p == '\0')
		return -EINVAL;
	while (*p != '\0') {
		uint64_t n;
		if (read_number(&p, &n) != 0)
			return -EINVAL;
		size_t ulen = 0;
		while (isalpha((unsigned char)p[ulen]))
			ulen++;
		uint64_t mul = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strlen(units[i].unit) == ulen && strncmp(p, units[i].unit, ulen) == 0)
				mul = units[i].ms;
		}
		if (mul == 0)
			return -EINVAL;
		if (n > (uint64_t)INT64_MAX / mul || total > (uint64_t)INT64_MAX - n * mul)
			return -EINVAL;
		total += n * mul;
		p += ulen;
	}
	*ms = (int64_t)total;
	return 0;
}

int config_parse_size(const char *text, size_t *bytes)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {
	        {"", 1},
	        {"B", 1},
	        {"K", 1ull << 10},
	        {"KiB", 1ull << 10},
	        {"KB", 1000ull},
	        {"M", 1ull << 20},
	        {"MiB", 1ull << 20},
	        {"MB", 1000000ull},
	        {"G", 1ull << 30},
	        {"GiB", 1ull << 30},
	        {"GB", 1000000000ull},
	        {"T", 1ull << 40},
	        {"TiB", 1ull << 40},
	        {"TB", 1000000000000ull},
	};
	const char *p = text;
	uint64_t n;
	if (read_number(&p, &n) != 0)
		return -EINVAL;
	while (*p == ' ')
		p++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (n > SIZE_MAX / units[i].mul)
			return -EINVAL;
		*bytes = (size_t)(n * units[i].mul);
		return 0;
	}
	return -EINVAL;
}

static int parse_int(const char *text, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (end == text || *end != '\0' || isspace((unsigned char)*text))
		return -EINVAL;
	if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
		return -ERANGE;
	*out = (int)v;
	return 0;
}

/* A URL here is "scheme://rest" with a scheme of letters, digits, '+', '-'
 * or '.'; the transport checks the rest when it dials or listens. */
static bool valid_url(const char *text)
{
	const char *sep = strstr(text, "://");
	if (sep == NULL || sep == text || sep[3] == '\0')
		return false;
	for (const char *p = text; p < sep; p++) {
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
			return false;
	}
	for (const char *p = text; *p != '\0'; p++) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return false;
	}
	return true;
}

static bool enum_has(const char *choices, const char *text)
{
	size_t n = strlen(text);
	const char *p = choices;
	while (p != NULL && *p != '\0') {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, text, n) == 0)
			return true;
		p = bar != NULL ? bar + 1 : NULL;
	}
	return false;
}

static void list_free(struct config_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

static void replace_string(const struct config_option *o, char *value)
{
	char **dest = o->dest;
	free(*dest);
	*dest = value;
}

/* Sets a list option from items (borrowed); each must be a URL. */
static int set_list(const struct config_option *o, char *const *items, size_t count,
                    const char *where, char **err)
{
	for (size_t i = 0; i < count; i++) {
		if (!valid_url(items[i]))
			return fail(err, -EINVAL,
			            "%s: '%s' expects a list of URLs such as "
			            "'tcp://127.0.0.1:7403', got '%s'",
			            where, o->key, items[i]);
	}
	struct config_list l = {0};
	if (count > 0 && (l.items = calloc(count, sizeof(char *))) == NULL)
		return fail(err, -ENOMEM, "out of memory");
	for (; l.count < count; l.count++) {
		if ((l.items[l.count] = strdup(items[l.count])) == NULL) {
			list_free(&l);
			return fail(err, -ENOMEM, "out of memory");
		}
	}
	list_free(o->dest);
	*(struct config_list *)o->dest = l;
	return 0;
}

/* Splits a comma-separated list (environment, flag, default) and sets it. */
static int set_list_text(const struct config_option *o, const char *text, const char *where,
                         char **err)
{
	char *copy = strdup(text);
	size_t cap = 1;
	for (const char *p = text; *p != '\0'; p++)
		cap += *p == ',';
	char **items = calloc(cap, sizeof(char *));
	size_t n = 0;
	int rv;
	if (copy == NULL || items == NULL) {
		rv = fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		size_t len = strlen(tok);
		while (len > 0 && isspace((unsigned char)tok[len - 1]))
			tok[--len] = '\0';
		if (len > 0)
			items[n++] = tok;
	}
	rv = set_list(o, items, n, where, err);
out:
	free(items);
	free(copy);
	return rv;
}

/* Parses text as o's type and stores it; where says where text came from
 * ("queue.yaml:3:5", "flag --rpc.listen"). */
static int set_value(const struct config_option *o, const char *text, const char *where, char **err)
{
	switch (o->type) {
	case CONFIG_STRING:
	case CONFIG_URL:
	case CONFIG_ENUM: {
		if (o->type == CONFIG_URL && !valid_url(text))
			return fail(
			        err, -EINVAL,
			        "%s: '%s' expects a URL such as 'tcp://127.0.0.1:7403', got '%s'",
			        where, o->key, text);
		if (o->type == CONFIG_ENUM && !enum_has(o->choices, text))
			return fail(err, -EINVAL, "%s: '%s' expects one of %s, got '%s'", where,
			            o->key, o->choices, text);
		char *copy = strdup(text);
		if (copy == NULL)
			return fail(err, -ENOMEM, "out of memory");
		replace_string(o, copy);
		return 0;
	}
	case CONFIG_INT: {
		int v;
		int rv = parse_int(text, &v);
		if (rv == -ERANGE)
			return fail(err, -EINVAL, "%s: '%s' is out of range: '%s'", where, o->key,
			            text);
		if (rv != 0)
			return fail(err, -EINVAL, "%s: '%s' expects an integer, got '%s'", where,
			            o->key, text);
		*(int *)o->dest = v;
		return 0;
	}
	case CONFIG_BOOL:
		if (config_parse_bool(text, o->dest) != 0)
			return fail(err, -EINVAL, "%s: '%s' expects true or false, got '%s'", where,
			            o->key, text);
		return 0;
	case CONFIG_DURATION:
		if (config_parse_duration(text, o->dest) != 0)
			return fail(err, -EINVAL,
			            "%s: '%s' expects a duration such as '5s', '250ms' or "
			            "'1m30s', got '%s'",
			            where, o->key, text);
		return 0;
	case CONFIG_SIZE:
		if (config_parse_size(text, o->dest) != 0)
			return fail(err, -EINVAL,
			            "%s: '%s' expects a size such as '4096', '64KiB' or '16MiB', "
			            "got '%s'",
			            where, o->key, text);
		return 0;
	case CONFIG_URLS:
		return set_list_text(o, text, where, err);
	}
	return fail(err, -EINVAL, "%s: '%s' has an unknown type", where, o->key);
}

static void zero_value(const struct config_option *o)
{
	switch (o->type) {
	case CONFIG_STRING:
	case CONFIG_URL:
	case CONFIG_ENUM:
		replace_string(o, NULL);
		break;
	case CONFIG_INT:
		*(int *)o->dest = 0;
		break;
	case CONFIG_BOOL:
		*(bool *)o->dest = false;
		break;
	case CONFIG_DURATION:
		*(int64_t *)o->dest = 0;
		break;
	case CONFIG_SIZE:
		*(size_t *)o->dest = 0;
		break;
	case CONFIG_URLS:
		list_free(o->dest);
		break;
	}
}

int config_set_defaults(const struct config_option *opts, char **err)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		if (o->def == NULL) {
			zero_value(o);
			continue;
		}
		int rv = set_value(o, o->def, "default", err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

void config_free(const struct config_option *opts)
{
	if (opts == NULL)
		return;
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		if (o->type == CONFIG_STRING || o->type == CONFIG_URL || o->type == CONFIG_ENUM ||
		    o->type == CONFIG_URLS)
			zero_value(o);
	}
}

/* --- the file ------------------------------------------------------------- */

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
			return fail(w->err, -EINVAL,
			            "%s: '%s' is a section and takes a mapping of its keys, got %s",
			            where, key, node_kind(vn));
		const char *near = suggest(w->opts, key);
		if (near != NULL)
			return fail(w->err, -EINVAL, "%s: unknown key '%s' (did you mean '%s'?)",
			            where, key, near);
		return fail(w->err, -EINVAL, "%s: unknown key '%s'", where, key);
	}
	if (is_null(vn))
		return fail(w->err, -EINVAL, "%s: '%s' has no value; expects %s", where, key,
		            type_word(o->type));
	if (vn->type == YAML_SEQUENCE_NODE && o->type == CONFIG_URLS) {
		size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
		char **items = calloc(n + 1, sizeof(char *));
		if (items == NULL)
			return fail(w->err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *it =
			        yaml_document_get_node(w->doc, vn->data.sequence.items.start[i]);
			if (it == NULL || it->type != YAML_SCALAR_NODE || is_null(it)) {
				free(items);
				if (it != NULL)
					snprintf(where, sizeof(where), "%s:%zu:%zu", w->name,
					         it->start_mark.line + 1,
					         it->start_mark.column + 1);
				return fail(w->err, -EINVAL,
				            "%s: '%s' expects a list of URLs, got %s in it", where,
				            key, it != NULL ? node_kind(it) : "nothing");
			}
			items[i] = (char *)it->data.scalar.value;
		}
		int rv = set_list(o, items, n, where, w->err);
		free(items);
		return rv;
	}
	if (vn->type != YAML_SCALAR_NODE)
		return fail(w->err, -EINVAL, "%s: '%s' expects %s, got %s", where, key,
		            type_word(o->type), node_kind(vn));
	if (strlen((const char *)vn->data.scalar.value) != vn->data.scalar.length)
		return fail(w->err, -EINVAL, "%s: '%s' contains a NUL character", where, key);
	return set_value(o, (const char *)vn->data.scalar.value, where, w->err);
}

static int walk_mapping(struct walk *w, yaml_node_t *map, const char *prefix)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	yaml_node_pair_t *top = map->data.mapping.pairs.top;
	for (yaml_node_pair_t *p = start; p < top; p++) {
		if (++w->visits > MAX_NODE_VISITS)
			return fail(w->err, -EINVAL, "%s: the file is too large or too nested",
			            w->name);
		yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
		if (kn == NULL || vn == NULL)
			continue;
		if (kn->type != YAML_SCALAR_NODE || is_null(kn))
			return fail(w->err, -EINVAL, "%s:%zu:%zu: a key must be a word, got %s",
			            w->name, kn->start_mark.line + 1, kn->start_mark.column + 1,
			            node_kind(kn));
		const char *k = (const char *)kn->data.scalar.value;
		/* A duplicate key is refused: one of the two would be silently lost. */
		for (yaml_node_pair_t *q = start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(w->doc, q->key);
			if (qk != NULL && qk->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)qk->data.scalar.value, k) == 0)
				return fail(
				        w->err, -EINVAL,
				        "%s:%zu:%zu: duplicate key '%s%s%s' (first at line %zu)",
				        w->name, kn->start_mark.line + 1, kn->start_mark.column + 1,
				        prefix ? prefix : "", prefix ? "." : "", k,
				        qk->start_mark.line + 1);
		}
		char *key;
		if (asprintf(&key, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", k) < 0)
			return fail(w->err, -ENOMEM, "out of memory");
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
		return fail(err, -ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rv = fail(err, -EINVAL, "%s:%zu:%zu: invalid YAML: %s%s%s", name,
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
			rv = fail(
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
			rv = fail(err, -EINVAL, "%s:%zu:%zu: invalid YAML: %s", name,
			          parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			          parser.problem ? parser.problem : "syntax error");
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&more);
			if (r2 != NULL)
				rv = fail(err, -EINVAL,
				          "%s:%zu:%zu: only one YAML document is allowed", name,
				          r2->start_mark.line + 1, r2->start_mark.column + 1);
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
		return fail(err, -e, "cannot read config file '%s': %s", path, strerror(e));
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rv = 0;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (64u << 20)) {
				rv = fail(err, -EFBIG, "config file '%s' is larger than 64 MiB",
				          path);
				goto out;
			}
			char *nb = realloc(buf, cap);
			if (nb == NULL) {
				rv = fail(err, -ENOMEM, "out of memory");
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
		rv = fail(err, -EIO, "cannot read config file '%s'", path);
		goto out;
	}
	rv = config_load_string(opts, path, buf ? buf : "", len, err);
out:
	free(buf);
	fclose(f);
	return rv;
}

/* --- environment ------------------------------------------------------------ */

int config_load_env(const struct config_option *opts, char **err)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		char name[256], where[300];
		config_env_name(o->key, name, sizeof(name));
		const char *v = getenv(name);
		/* An empty variable counts as unset: container tools often pass
		 * NAME= for "no value". */
		if (v == NULL || *v == '\0')
			continue;
		snprintf(where, sizeof(where), "environment variable %s", name);
		int rv = set_value(o, v, where, err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* --- flags ------------------------------------------------------------------ */

/* Finds the option a flag names: by key, by long alias, or for one-letter
 * names by short alias. */
static const struct config_option *find_flag(const struct config_option *opts, const char *name,
                                             size_t len, bool is_short)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		if (is_short) {
			if (o->flag != NULL && strlen(o->flag) == 1 && len == 1 &&
			    o->flag[0] == name[0])
				return o;
			continue;
		}
		if (flag_name_eq(name, len, o->key))
			return o;
		if (o->flag != NULL && strlen(o->flag) > 1 && flag_name_eq(name, len, o->flag))
			return o;
	}
	return NULL;
}

/*
 * One pass over the flags. With apply false nothing is stored: the pass
 * only finds --config/-c (if want_config) and --help and validates the
 * syntax, so that config_load knows the file before it applies anything.
 */
static int parse_flags(const struct config_option *opts, int argc, char **argv, bool stop,
                       bool apply, bool want_config, const char **config_path, int *next,
                       bool *help, char **err)
{
	char **flags = NULL, **operands = NULL;
	int nflags = 0, nops = 0, rv = 0;

	if (argc > 1) {
		flags = calloc((size_t)argc, sizeof(char *));
		operands = calloc((size_t)argc, sizeof(char *));
		if (flags == NULL || operands == NULL) {
			rv = fail(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	*help = false;
	int i;
	for (i = 1; i < argc; i++) {
		char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			flags[nflags++] = arg;
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			if (stop)
				break;
			operands[nops++] = arg;
			continue;
		}
		flags[nflags++] = arg;
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			*help = true;
			continue;
		}
		bool is_short = arg[1] != '-';
		const char *name = arg + (is_short ? 1 : 2);
		const char *eq = strchr(name, '=');
		size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		const char *value = eq != NULL ? eq + 1 : NULL;
		if (is_short && len > 1 && eq == NULL) {
			/* -ojson: the rest of the word is the value */
			value = name + 1;
			len = 1;
		}

		bool is_config = want_config && ((is_short && name[0] == 'c' && len == 1) ||
		                                 (!is_short && flag_name_eq(name, len, "config")));
		const struct config_option *o = NULL;
		bool negated = false;
		if (!is_config) {
			o = find_flag(opts, name, len, is_short);
			if (o == NULL && !is_short && len > 3 && strncmp(name, "no-", 3) == 0) {
				o = find_flag(opts, name + 3, len - 3, false);
				if (o != NULL && o->type == CONFIG_BOOL && value == NULL)
					negated = true;
				else
					o = NULL;
			}
			if (o == NULL) {
				char shown[256];
				snprintf(shown, sizeof(shown), "%s", arg);
				char *e = strchr(shown, '=');
				if (e != NULL)
					*e = '\0';
				rv = fail(err, -EINVAL, "unknown flag '%s' (see --help)", shown);
				goto out;
			}
		}
		if (negated) {
			value = "false";
		} else if (value == NULL && o != NULL && o->type == CONFIG_BOOL) {
			value = "true";
		} else if (value == NULL) {
			if (i + 1 >= argc) {
				rv = fail(err, -EINVAL, "flag '%s' needs a value", arg);
				goto out;
			}
			value = argv[++i];
			flags[nflags++] = argv[i];
		}
		if (is_config) {
			if (config_path != NULL)
				*config_path = value;
			continue;
		}
		if (apply) {
			char where[300];
			snprintf(where, sizeof(where), "flag %s%.*s", is_short ? "-" : "--",
			         (int)len, name);
			if ((rv = set_value(o, value, where, err)) != 0)
				goto out;
		}
	}
	/* Every argument before i is now in flags or operands; put the flags
	 * first, then the operands met among them. The unparsed tail (from i)
	 * already follows, in order. */
	int k = 1;
	for (int j = 0; j < nflags; j++)
		argv[k++] = flags[j];
	for (int j = 0; j < nops; j++)
		argv[k++] = operands[j];
	*next = 1 + nflags;
out:
	free(flags);
	free(operands);
	return rv;
}

int config_parse_flags(const struct config_option *opts, int argc, char **argv,
                       bool stop_at_operand, int *next, bool *help, char **err)
{
	return parse_flags(opts, argc, argv, stop_at_operand, true, false, NULL, next, help, err);
}

/* Expands a leading "~/" with $HOME into a malloc'ed path. */
static char *expand_home(const char *path)
{
	if (strncmp(path, "~/", 2) == 0) {
		const char *home = getenv("HOME");
		if (home == NULL || *home == '\0')
			return NULL;
		char *out;
		if (asprintf(&out, "%s/%s", home, path + 2) < 0)
			return NULL;
		return out;
	}
	return strdup(path);
}

int config_load(const struct config_spec *spec, int argc, char **argv, int *next, bool *help,
                char **err)
{
	const char *named = NULL;
	bool named_by_env = false;
	int rv, first;

	rv = parse_flags(spec->options, argc, argv, spec->stop_at_operand, false, true, &named,
	                 &first, help, err);
	if (rv != 0)
		return rv;
	if (*help) {
		*next = first;
		return 0;
	}
	if ((rv = config_set_defaults(spec->options, err)) != 0)
		return rv;
	if (named == NULL) {
		const char *env = getenv("NOETL_CONFIG");
		if (env != NULL && *env != '\0') {
			named = env;
			named_by_env = true;
		}
	}
	if (named != NULL) {
		if (*named == '\0')
			return fail(err, -EINVAL, "%s names no file",
			            named_by_env ? "NOETL_CONFIG" : "--config");
		char *path = expand_home(named);
		if (path == NULL)
			return fail(err, -ENOMEM, "cannot expand '%s'", named);
		rv = config_load_file(spec->options, path, err);
		free(path);
		if (rv != 0)
			return rv;
	} else if (spec->default_file != NULL) {
		char *path = expand_home(spec->default_file);
		if (path != NULL && access(path, F_OK) == 0)
			rv = config_load_file(spec->options, path, err);
		free(path);
		if (rv != 0)
			return rv;
	}
	if ((rv = config_load_env(spec->options, err)) != 0)
		return rv;
	return parse_flags(spec->options, argc, argv, spec->stop_at_operand, true, true, NULL, next,
	                   help, err);
}

/* --- help ------------------------------------------------------------------- */

static const char *metavar(const struct config_option *o)
{
	switch (o->type) {
	case CONFIG_STRING:
		return "TEXT";
	case CONFIG_INT:
		return "N";
	case CONFIG_BOOL:
		return NULL;
	case CONFIG_DURATION:
		return "DURATION";
	case CONFIG_SIZE:
		return "SIZE";
	case CONFIG_URL:
		return "URL";
	case CONFIG_URLS:
		return "URL,...";
	case CONFIG_ENUM:
		return o->choices;
	}
	return "VALUE";
}

static void usage_line(FILE *out, const char *left, const char *help, const char *extra)
{
	int n = fprintf(out, "  %s", left);
	if (n > 32) {
		fprintf(out, "\n%34s", "");
	} else {
		fprintf(out, "%*s", 34 - n, "");
	}
	fprintf(out, "%s\n", help != NULL ? help : "");
	if (extra != NULL && *extra != '\0')
		fprintf(out, "%34s[%s]\n", "", extra);
}

void config_usage_options(const struct config_option *opts, bool with_env, FILE *out)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		char left[256], extra[512], env[256];
		const char *mv = metavar(o);
		const char *longname = o->key;
		char shortpart[8] = "";
		if (o->flag != NULL && strlen(o->flag) == 1)
			snprintf(shortpart, sizeof(shortpart), "-%s, ", o->flag);
		else if (o->flag != NULL)
			longname = o->flag;
		snprintf(left, sizeof(left), "%s--%s%s%s", shortpart, longname, mv ? " " : "",
		         mv ? mv : "");
		config_env_name(o->key, env, sizeof(env));
		size_t n = 0;
		extra[0] = '\0';
		if (with_env)
			n += (size_t)snprintf(extra, sizeof(extra), "env %s", env);
		if (longname != o->key && n < sizeof(extra))
			n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s--%s", n ? ", " : "",
			                      o->key);
		if (o->def != NULL && *o->def != '\0' && n < sizeof(extra))
			snprintf(extra + n, sizeof(extra) - n, "%sdefault %s", n ? ", " : "",
			         o->def);
		usage_line(out, left, o->help, extra);
	}
}

void config_usage(const struct config_spec *spec, FILE *out)
{
	fprintf(out, "usage: %s %s\n", spec->program, spec->usage ? spec->usage : "[options]");
	if (spec->summary != NULL)
		fprintf(out, "\n%s\n", spec->summary);
	fprintf(out, "\noptions:\n");
	char extra[512];
	snprintf(extra, sizeof(extra), "env NOETL_CONFIG%s%s",
	         spec->default_file ? ", default " : "",
	         spec->default_file ? spec->default_file : "");
	usage_line(out, "-c, --config FILE", "read settings from this YAML file", extra);
	usage_line(out, "-h, --help", "print this help and exit", NULL);
	config_usage_options(spec->options, true, out);
	fprintf(out, "\nPrecedence: flag > environment > file > default. "
	             "Durations: 250ms, 5s, 1m30s; sizes: 4096, 64KiB, 16MiB.\n");
}
