/*
 * config_value: parsing option values from text and storing them in the
 * option's destination; shared by the file, environment and flag layers.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"

int config__fail(char **err, int code, const char *fmt, ...)
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
int config__set_list(const struct config_option *o, char *const *items, size_t count,
                     const char *where, char **err)
{
	for (size_t i = 0; i < count; i++) {
		if (!valid_url(items[i]))
			return config__fail(err, -EINVAL,
			                    "%s: '%s' expects a list of URLs such as "
			                    "'tcp://127.0.0.1:7403', got '%s'",
			                    where, o->key, items[i]);
	}
	struct config_list l = {0};
	if (count > 0 && (l.items = calloc(count, sizeof(char *))) == NULL)
		return config__fail(err, -ENOMEM, "out of memory");
	for (; l.count < count; l.count++) {
		if ((l.items[l.count] = strdup(items[l.count])) == NULL) {
			list_free(&l);
			return config__fail(err, -ENOMEM, "out of memory");
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
		rv = config__fail(err, -ENOMEM, "out of memory");
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
	rv = config__set_list(o, items, n, where, err);
out:
	free(items);
	free(copy);
	return rv;
}

/* Parses text as o's type and stores it; where says where text came from
 * ("queue.yaml:3:5", "flag --rpc.listen"). */
int config__set_value(const struct config_option *o, const char *text, const char *where,
                      char **err)
{
	switch (o->type) {
	case CONFIG_STRING:
	case CONFIG_URL:
	case CONFIG_ENUM: {
		if (o->type == CONFIG_URL && !valid_url(text))
			return config__fail(
			        err, -EINVAL,
			        "%s: '%s' expects a URL such as 'tcp://127.0.0.1:7403', got '%s'",
			        where, o->key, text);
		if (o->type == CONFIG_ENUM && !enum_has(o->choices, text))
			return config__fail(err, -EINVAL, "%s: '%s' expects one of %s, got '%s'",
			                    where, o->key, o->choices, text);
		char *copy = strdup(text);
		if (copy == NULL)
			return config__fail(err, -ENOMEM, "out of memory");
		replace_string(o, copy);
		return 0;
	}
	case CONFIG_INT: {
		int v;
		int rv = parse_int(text, &v);
		if (rv == -ERANGE)
			return config__fail(err, -EINVAL, "%s: '%s' is out of range: '%s'", where,
			                    o->key, text);
		if (rv != 0)
			return config__fail(err, -EINVAL, "%s: '%s' expects an integer, got '%s'",
			                    where, o->key, text);
		*(int *)o->dest = v;
		return 0;
	}
	case CONFIG_BOOL:
		if (config_parse_bool(text, o->dest) != 0)
			return config__fail(err, -EINVAL,
			                    "%s: '%s' expects true or false, got '%s'", where,
			                    o->key, text);
		return 0;
	case CONFIG_DURATION:
		if (config_parse_duration(text, o->dest) != 0)
			return config__fail(err, -EINVAL,
			                    "%s: '%s' expects a duration such as '5s', '250ms' or "
			                    "'1m30s', got '%s'",
			                    where, o->key, text);
		return 0;
	case CONFIG_SIZE:
		if (config_parse_size(text, o->dest) != 0)
			return config__fail(
			        err, -EINVAL,
			        "%s: '%s' expects a size such as '4096', '64KiB' or '16MiB', "
			        "got '%s'",
			        where, o->key, text);
		return 0;
	case CONFIG_URLS:
		return set_list_text(o, text, where, err);
	}
	return config__fail(err, -EINVAL, "%s: '%s' has an unknown type", where, o->key);
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
		int rv = config__set_value(o, o->def, "default", err);
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
