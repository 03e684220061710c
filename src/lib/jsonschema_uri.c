/*
 * jsonschema_uri: RFC 3986 reference resolution for "$id" and "$ref".
 *
 * Bases need not be absolute: a root document known only as "greet.json"
 * (or not named at all) still resolves "other.json#/x" to "other.json#/x",
 * which is what the caller's resolver wants to see. Nothing is normalized
 * beyond removing dot segments; ids are compared as strings.
 */
#include "jsonschema_int.h"

#include <stdlib.h>
#include <string.h>

struct part {
	const char *s;
	size_t len;
	bool present;
};

struct uri {
	struct part scheme, auth, path, query, frag;
};

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void split(const char *s, struct uri *u)
{
	memset(u, 0, sizeof(*u));
	size_t i = 0;
	if (is_alpha(s[0])) {
		size_t j = 1;
		while (is_alpha(s[j]) || (s[j] >= '0' && s[j] <= '9') || s[j] == '+' ||
		       s[j] == '-' || s[j] == '.')
			j++;
		if (s[j] == ':') {
			u->scheme = (struct part){s, j, true};
			i = j + 1;
		}
	}
	if (s[i] == '/' && s[i + 1] == '/') {
		size_t j = i + 2;
		while (s[j] != '\0' && s[j] != '/' && s[j] != '?' && s[j] != '#')
			j++;
		u->auth = (struct part){s + i + 2, j - i - 2, true};
		i = j;
	}
	size_t j = i;
	while (s[j] != '\0' && s[j] != '?' && s[j] != '#')
		j++;
	u->path = (struct part){s + i, j - i, true};
	i = j;
	if (s[i] == '?') {
		j = i + 1;
		while (s[j] != '\0' && s[j] != '#')
			j++;
		u->query = (struct part){s + i + 1, j - i - 1, true};
		i = j;
	}
	if (s[i] == '#')
		u->frag = (struct part){s + i + 1, strlen(s + i + 1), true};
}

static bool starts(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

static bool equals(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(s, word, len) == 0;
}

/* Drops the last segment and its preceding "/" from out, not before start. */
static void drop_last_segment(struct js_buf *out, size_t start)
{
	while (out->len > start && out->s[out->len - 1] != '/')
		out->len--;
	if (out->len > start)
		out->len--;
	if (out->s != NULL)
		out->s[out->len] = '\0';
}

/* RFC 3986 section 5.2.4, appending the result to out. */
static void remove_dot_segments(struct js_buf *out, const char *in, size_t len)
{
	size_t start = out->len;
	/* Work on out's tail only: segments are pushed and dropped there. */
	while (len > 0) {
		if (starts(in, len, "../")) {
			in += 3, len -= 3;
		} else if (starts(in, len, "./")) {
			in += 2, len -= 2;
		} else if (starts(in, len, "/./")) {
			in += 2, len -= 2;
		} else if (equals(in, len, "/.")) {
			in = "/", len = 1;
		} else if (starts(in, len, "/../")) {
			in += 3, len -= 3;
			drop_last_segment(out, start);
		} else if (equals(in, len, "/..")) {
			in = "/", len = 1;
			drop_last_segment(out, start);
		} else if (equals(in, len, ".") || equals(in, len, "..")) {
			len = 0;
		} else {
			size_t n = in[0] == '/' ? 1 : 0;
			while (n < len && in[n] != '/')
				n++;
			js_buf_add(out, in, n);
			in += n, len -= n;
		}
	}
}

static void add_part(struct js_buf *b, const char *lead, const struct part *p)
{
	if (!p->present)
		return;
	js_buf_adds(b, lead);
	js_buf_add(b, p->s, p->len);
}

char *js_uri_resolve(const char *base, const char *ref)
{
	struct uri b, r;
	split(base, &b);
	split(ref, &r);
	struct js_buf out = {0};
	js_buf_add(&out, "", 0);
	const struct part *query;
	if (r.scheme.present) {
		add_part(&out, "", &r.scheme);
		js_buf_adds(&out, ":");
		add_part(&out, "//", &r.auth);
		remove_dot_segments(&out, r.path.s, r.path.len);
		query = &r.query;
	} else {
		if (b.scheme.present) {
			add_part(&out, "", &b.scheme);
			js_buf_adds(&out, ":");
		}
		if (r.auth.present) {
			add_part(&out, "//", &r.auth);
			remove_dot_segments(&out, r.path.s, r.path.len);
			query = &r.query;
		} else {
			add_part(&out, "//", &b.auth);
			if (r.path.len == 0) {
				js_buf_add(&out, b.path.s, b.path.len);
				query = r.query.present ? &r.query : &b.query;
			} else if (r.path.s[0] == '/') {
				remove_dot_segments(&out, r.path.s, r.path.len);
				query = &r.query;
			} else {
				/* Merge: the base path up to its last "/", then ref's. */
				struct js_buf merged = {0};
				if (b.auth.present && b.path.len == 0) {
					js_buf_adds(&merged, "/");
				} else {
					size_t n = b.path.len;
					while (n > 0 && b.path.s[n - 1] != '/')
						n--;
					js_buf_add(&merged, b.path.s, n);
				}
				js_buf_add(&merged, r.path.s, r.path.len);
				if (merged.nomem)
					out.nomem = true;
				else
					remove_dot_segments(&out, merged.s, merged.len);
				free(merged.s);
				query = &r.query;
			}
		}
	}
	add_part(&out, "?", query);
	add_part(&out, "#", &r.frag);
	if (out.nomem) {
		free(out.s);
		return NULL;
	}
	return out.s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *js_percent_decode(const char *s, size_t len, bool *nomem)
{
	*nomem = false;
	char *out = malloc(len + 1);
	if (out == NULL) {
		*nomem = true;
		return NULL;
	}
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
				free(out);
				return NULL;
			}
			out[n++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	return out;
}
