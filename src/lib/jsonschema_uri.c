/*
 * jsonschema_uri: RFC 3986 reference resolution for "$id" and "$ref".
 *
 * It also holds the URI grammar checks behind the "uri", "uri-reference",
 * "iri", "iri-reference" and "uri-template" formats.
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

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(int c)
{
	return hexval((char)c) >= 0;
}

/* ---- URIs and IRIs (RFC 3986, RFC 3987) ---- */

static bool is_unreserved(uint32_t c)
{
	return c < 0x80 && (is_alpha((int)c) || is_digit((int)c) || c == '-' || c == '.' ||
	                    c == '_' || c == '~');
}

static bool is_sub_delim(uint32_t c)
{
	return c != 0 && c < 0x80 && strchr("!$&'()*+,;=", (int)c) != NULL;
}

static bool is_ucschar(uint32_t c)
{
	return (c >= 0xA0 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) ||
	       (c >= 0xFDF0 && c <= 0xFFEF) ||
	       (c >= 0x10000 && c <= 0xEFFFD && (c & 0xFFFE) != 0xFFFE);
}

static bool is_iprivate(uint32_t c)
{
	return (c >= 0xE000 && c <= 0xF8FF) || (c >= 0xF0000 && c <= 0xFFFFD) ||
	       (c >= 0x100000 && c <= 0x10FFFD);
}

/* Consumes characters of a URI component: unreserved, pct-encoded,
 * sub-delims, the extra ASCII characters given, and with iri ucschar (and
 * iprivate when allowed). Stops at the first other character. */
static size_t component(const char *s, size_t len, size_t i, const char *extra, bool iri,
                        bool private_ok)
{
	while (i < len) {
		uint32_t c;
		size_t w = js_utf8_decode(s, len, i, &c);
		if (c == '%') {
			if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return i;
			i += 3;
			continue;
		}
		if (is_unreserved(c) || is_sub_delim(c) ||
		    (c < 0x80 && c != 0 && strchr(extra, (int)c) != NULL) ||
		    (iri && (is_ucschar(c) || (private_ok && is_iprivate(c)))))
			i += w;
		else
			return i;
	}
	return i;
}

static bool check_ip_literal(const char *s, size_t len)
{
	if (len > 0 && (s[0] == 'v' || s[0] == 'V')) {
		size_t i = 1;
		while (i < len && is_hex(s[i]))
			i++;
		if (i == 1 || i >= len || s[i] != '.' || i + 1 == len)
			return false;
		for (i++; i < len; i++)
			if (!is_unreserved((unsigned char)s[i]) &&
			    !is_sub_delim((unsigned char)s[i]) && s[i] != ':')
				return false;
		return true;
	}
	return js_format_check(JS_FMT_IPV6, s, len);
}

bool js_uri_check(const char *s, size_t len, bool absolute, bool iri)
{
	size_t i = 0;
	bool scheme = false;
	if (len > 0 && is_alpha(s[0])) {
		size_t j = 1;
		while (j < len && (is_alpha(s[j]) || is_digit(s[j]) || s[j] == '+' || s[j] == '-' ||
		                   s[j] == '.'))
			j++;
		if (j < len && s[j] == ':') {
			scheme = true;
			i = j + 1;
		}
	}
	if (absolute && !scheme)
		return false;
	if (len - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		i += 2;
		size_t end = i;
		while (end < len && s[end] != '/' && s[end] != '?' && s[end] != '#')
			end++;
		size_t at = i;
		for (size_t k = i; k < end; k++)
			if (s[k] == '@')
				at = k + 1;
		if (at > i && component(s, at - 1, i, ":", iri, false) != at - 1)
			return false;
		size_t h = at;
		if (h < end && s[h] == '[') {
			size_t close = h;
			while (close < end && s[close] != ']')
				close++;
			if (close == end || !check_ip_literal(s + h + 1, close - h - 1))
				return false;
			h = close + 1;
		} else {
			h = component(s, end, h, "", iri, false);
		}
		if (h < end && s[h] == ':') {
			for (h++; h < end; h++)
				if (!is_digit(s[h]))
					return false;
		}
		if (h != end)
			return false;
		i = end;
	} else if (!scheme) {
		/* A relative path's first segment may not hold ':' (it would read
		 * as a scheme). */
		size_t e = i;
		while (e < len && s[e] != '/' && s[e] != '?' && s[e] != '#') {
			if (s[e] == ':')
				return false;
			e++;
		}
	}
	i = component(s, len, i, ":@/", iri, false);
	if (i < len && s[i] == '?')
		i = component(s, len, i + 1, ":@/?", iri, true);
	if (i < len && s[i] == '#')
		i = component(s, len, i + 1, ":@/?", iri, false);
	return i == len;
}

bool js_uri_template_check(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t c;
		size_t w = js_utf8_decode(s, len, i, &c);
		if (c == '{') {
			i++;
			if (i < len && strchr("+#./;?&=,!@|", s[i]) != NULL && s[i] != '\0')
				i++;
			for (;;) {
				/* varname: varchar *( ["."] varchar ) */
				size_t start = i;
				bool prev_dot = true;
				while (i < len) {
					if (s[i] == '%' && i + 2 < len && is_hex(s[i + 1]) &&
					    is_hex(s[i + 2])) {
						i += 3;
						prev_dot = false;
					} else if (is_alpha(s[i]) || is_digit(s[i]) ||
					           s[i] == '_') {
						i++;
						prev_dot = false;
					} else if (s[i] == '.' && !prev_dot) {
						i++;
						prev_dot = true;
					} else {
						break;
					}
				}
				if (i == start || prev_dot)
					return false;
				if (i < len && s[i] == ':') {
					size_t d = ++i;
					while (i < len && is_digit(s[i]) && i - d < 5)
						i++;
					if (i == d || i - d > 4 || s[d] == '0')
						return false;
				} else if (i < len && s[i] == '*') {
					i++;
				}
				if (i < len && s[i] == ',') {
					i++;
					continue;
				}
				break;
			}
			if (i >= len || s[i] != '}')
				return false;
			i++;
			continue;
		}
		if (c == '%') {
			if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return false;
			i += 3;
			continue;
		}
		if (c == 0xFFFFFFFF || c < 0x21 || c == 0x7F ||
		    (c < 0x80 && strchr("\"'<>\\^`{|}", (int)c) != NULL))
			return false;
		if (c >= 0x80 && !is_ucschar(c) && !is_iprivate(c))
			return false;
		i += w;
	}
	return true;
}
