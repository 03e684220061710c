/*
 * jsonschema_format: the "format" assertions and base64 for content checks.
 *
 * Each check is a small hand-written recognizer for the grammar its RFC
 * gives: RFC 3339 for dates, times and durations, RFC 5321 (without the
 * obsolete forms) for e-mail, RFC 1123 for host names, RFC 3986/3987 for
 * URIs and IRIs (in jsonschema_uri.c), RFC 4291 for IPv6, RFC 6570 for URI
 * templates (also in jsonschema_uri.c), RFC 6901
 * and the relative JSON pointer draft for pointers. The idn-* checks are
 * basic: they accept non-ASCII letters where ASCII letters go and bound the
 * punycode length, but do not apply the IDNA2008 code point tables.
 */
#include "jsonschema_int.h"

#include <stdlib.h>
#include <string.h>

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

static int num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* ---- dates and times (RFC 3339 section 5.6) ---- */

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

static bool check_date(const char *s, size_t len)
{
	if (len != 10 || s[4] != '-' || s[7] != '-' || !all_digits(s, 4) || !all_digits(s + 5, 2) ||
	    !all_digits(s + 8, 2))
		return false;
	int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
	return m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

static bool check_time(const char *s, size_t len)
{
	if (len < 9 || s[2] != ':' || s[5] != ':' || !all_digits(s, 2) || !all_digits(s + 3, 2) ||
	    !all_digits(s + 6, 2))
		return false;
	int h = num(s, 2), m = num(s + 3, 2), sec = num(s + 6, 2);
	if (h > 23 || m > 59 || sec > 60)
		return false;
	size_t i = 8;
	if (i < len && s[i] == '.') {
		size_t start = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		if (i == start)
			return false;
	}
	int off = 0; /* minutes east of UTC */
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		const char *o = s + i + 1;
		if (len - i != 6 || o[2] != ':' || !all_digits(o, 2) || !all_digits(o + 3, 2))
			return false;
		int oh = num(o, 2), om = num(o + 3, 2);
		if (oh > 23 || om > 59)
			return false;
		off = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
		i += 6;
	} else {
		return false;
	}
	if (i != len)
		return false;
	if (sec == 60) {
		/* A leap second exists only at 23:59:60 UTC. */
		int utc = ((h * 60 + m - off) % 1440 + 1440) % 1440;
		if (utc != 23 * 60 + 59)
			return false;
	}
	return true;
}

static bool check_date_time(const char *s, size_t len)
{
	return len > 11 && (s[10] == 'T' || s[10] == 't') && check_date(s, 10) &&
	       check_time(s + 11, len - 11);
}

/* Units in order; each must directly follow the previous one. */
static bool duration_units(const char *s, size_t len, size_t *i, const char *units, int *count)
{
	const char *next = units;
	while (*i < len && is_digit(s[*i])) {
		size_t j = *i;
		while (j < len && is_digit(s[j]))
			j++;
		if (j == len)
			return false;
		const char *u = strchr(next, s[j]);
		if (u == NULL || s[j] == '\0')
			return false;
		if (*count > 0 && u != next)
			return false; /* "P1Y2D" skips the month */
		next = u + 1;
		(*count)++;
		*i = j + 1;
	}
	return true;
}

static bool check_duration(const char *s, size_t len)
{
	if (len < 3 || s[0] != 'P')
		return false;
	size_t i = 1;
	size_t j = i;
	while (j < len && is_digit(s[j]))
		j++;
	if (j > i && j + 1 == len && s[j] == 'W')
		return true;
	int dates = 0, times = 0;
	if (!duration_units(s, len, &i, "YMD", &dates))
		return false;
	if (i < len && s[i] == 'T') {
		i++;
		if (!duration_units(s, len, &i, "HMS", &times) || times == 0)
			return false;
	}
	return i == len && dates + times > 0;
}

/* ---- host names and addresses ---- */

static bool check_ipv4(const char *s, size_t len)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		size_t start = i;
		while (i < len && is_digit(s[i]) && i - start < 4)
			i++;
		size_t n = i - start;
		if (n == 0 || n > 3 || (n > 1 && s[start] == '0') || num(s + start, n) > 255)
			return false;
	}
	return i == len;
}

static bool check_ipv6(const char *s, size_t len)
{
	size_t i = 0;
	int groups = 0;
	bool compressed = false;
	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		compressed = true;
		i = 2;
		if (i == len)
			return true;
	} else if (len == 0 || s[0] == ':') {
		return false;
	}
	for (;;) {
		size_t start = i;
		while (i < len && is_hex(s[i]) && i - start < 5)
			i++;
		if (i < len && s[i] == '.') {
			/* A trailing IPv4 address stands for the last two groups. */
			if (!check_ipv4(s + start, len - start))
				return false;
			groups += 2;
			break;
		}
		if (i == start || i - start > 4)
			return false;
		groups++;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':') {
			if (compressed)
				return false;
			compressed = true;
			i++;
			if (i == len)
				break;
		} else if (i == len) {
			return false;
		}
		if (groups > 8)
			return false;
	}
	return compressed ? groups <= 7 : groups == 8;
}

static bool check_hostname(const char *s, size_t len)
{
	if (len > 0 && s[len - 1] == '.')
		len--; /* a fully qualified name may end with the root's dot */
	if (len == 0 || len > 253)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			size_t n = i - start;
			if (n == 0 || n > 63 || s[start] == '-' || s[i - 1] == '-')
				return false;
			start = i + 1;
		} else if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-') {
			return false;
		}
	}
	return true;
}

/* Length of the punycode (RFC 3492) encoding of cps, without "xn--". */
static size_t punycode_length(const uint32_t *cps, size_t n)
{
	enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700 };
	size_t out = 0, basic = 0;
	for (size_t i = 0; i < n; i++)
		if (cps[i] < 0x80)
			basic++;
	out = basic + (basic > 0 ? 1 : 0);
	uint64_t delta = 0, bias = 72, m_prev = 0x80;
	size_t h = basic;
	while (h < n) {
		uint64_t m = UINT64_MAX;
		for (size_t i = 0; i < n; i++)
			if (cps[i] >= m_prev && cps[i] < m)
				m = cps[i];
		delta += (m - m_prev) * (h + 1);
		m_prev = m;
		for (size_t i = 0; i < n; i++) {
			if (cps[i] < m)
				delta++;
			if (cps[i] == m) {
				uint64_t q = delta;
				for (uint64_t k = BASE;; k += BASE) {
					uint64_t t = k <= bias          ? TMIN
					             : k >= bias + TMAX ? TMAX
					                                : k - bias;
					if (q < t)
						break;
					out++;
					q = (q - t) / (BASE - t);
				}
				out++;
				/* adapt the bias */
				uint64_t d = h == basic ? delta / DAMP : delta / 2;
				d += d / (h + 1);
				uint64_t k = 0;
				while (d > ((BASE - TMIN) * TMAX) / 2) {
					d /= BASE - TMIN;
					k += BASE;
				}
				bias = k + (BASE - TMIN + 1) * d / (d + SKEW);
				delta = 0;
				h++;
			}
		}
		delta++;
		m_prev++;
	}
	return out;
}

static bool is_combining_mark(uint32_t c)
{
	return (c >= 0x0300 && c <= 0x036F) || (c >= 0x0483 && c <= 0x0489) ||
	       (c >= 0x0591 && c <= 0x05BD) || (c >= 0x0610 && c <= 0x061A) ||
	       (c >= 0x064B && c <= 0x065F) || (c >= 0x1AB0 && c <= 0x1AFF) ||
	       (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF) ||
	       (c >= 0x302A && c <= 0x302F) || (c >= 0x3099 && c <= 0x309A) ||
	       (c >= 0xFE20 && c <= 0xFE2F);
}

/* Code points IDNA2008 never allows in a label that the checks below
 * would otherwise let through (a small, explicit subset of the tables). */
static bool is_idna_disallowed(uint32_t c)
{
	return c < 0xA0 || c == 0x302E || c == 0x302F || (c >= 0x2000 && c <= 0x206F) ||
	       (c >= 0x3000 && c <= 0x3002) || c == 0xFEFF || (c >= 0xD800 && c <= 0xDFFF) ||
	       c > 0x10FFFF;
}

static bool is_label_separator(uint32_t c)
{
	return c == '.' || c == 0x3002 || c == 0xFF0E || c == 0xFF61;
}

static bool check_idn_label(const uint32_t *cps, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	if (cps[0] == '-' || cps[n - 1] == '-' || is_combining_mark(cps[0]))
		return false;
	bool ascii = true;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = cps[i];
		if (c < 0x80) {
			if (!is_alpha((int)c) && !is_digit((int)c) && c != '-')
				return false;
		} else {
			ascii = false;
			if (is_idna_disallowed(c))
				return false;
		}
	}
	return ascii || punycode_length(cps, n) + 4 <= 63;
}

static bool check_idn_hostname(const char *s, size_t len)
{
	if (len == 0 || len > 1024)
		return false;
	uint32_t *cps = malloc(len * sizeof(*cps));
	if (cps == NULL)
		return false;
	size_t n = 0, start = 0, total = 0;
	bool ok = true;
	for (size_t i = 0; i < len && ok;) {
		uint32_t c;
		i += js_utf8_decode(s, len, i, &c);
		if (c == 0xFFFFFFFF) {
			ok = false;
		} else if (is_label_separator(c)) {
			ok = check_idn_label(cps + start, n - start);
			total += n - start + 1;
			start = n;
		} else {
			cps[n++] = c;
		}
	}
	if (ok)
		ok = check_idn_label(cps + start, n - start) && total + (n - start) <= 253;
	free(cps);
	return ok;
}

/* ---- e-mail (RFC 5321 mailbox; RFC 6531 for idn-email) ---- */

static bool is_atext(uint32_t c, bool idn)
{
	return (c < 0x80 && (is_alpha((int)c) || is_digit((int)c) ||
	                     (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", (int)c) != NULL))) ||
	       (idn && c >= 0x80 && c != 0xFFFFFFFF);
}

static bool check_email(const char *s, size_t len, bool idn)
{
	size_t i = 0;
	if (len > 0 && s[0] == '"') {
		/* quoted-string local part */
		i = 1;
		for (;;) {
			if (i >= len)
				return false;
			uint32_t c;
			size_t w = js_utf8_decode(s, len, i, &c);
			if (c == '"')
				break;
			if (c == '\\') {
				if (i + 1 >= len || s[i + 1] < 0x20 || s[i + 1] > 0x7E)
					return false;
				i += 2;
				continue;
			}
			if (!((c >= 0x20 && c <= 0x7E) || (idn && c >= 0x80 && c != 0xFFFFFFFF)))
				return false;
			i += w;
		}
		i++;
		if (i == 2)
			return false;
	} else {
		/* dot-atom local part */
		bool prev_dot = true;
		while (i < len && s[i] != '@') {
			uint32_t c;
			size_t w = js_utf8_decode(s, len, i, &c);
			if (c == '.') {
				if (prev_dot)
					return false;
				prev_dot = true;
			} else if (is_atext(c, idn)) {
				prev_dot = false;
			} else {
				return false;
			}
			i += w;
		}
		if (prev_dot)
			return false; /* empty, or ends with a dot */
	}
	if (i > 64 && !idn)
		return false;
	if (i >= len || s[i] != '@')
		return false;
	const char *d = s + i + 1;
	size_t dlen = len - i - 1;
	if (dlen >= 2 && d[0] == '[' && d[dlen - 1] == ']') {
		if (dlen > 7 && strncmp(d + 1, "IPv6:", 5) == 0)
			return check_ipv6(d + 6, dlen - 7);
		return check_ipv4(d + 1, dlen - 2);
	}
	return idn ? check_idn_hostname(d, dlen) : check_hostname(d, dlen);
}

/* ---- the rest ---- */

static bool check_uuid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return true;
}

static bool check_json_pointer(const char *s, size_t len)
{
	if (len == 0)
		return true;
	if (s[0] != '/')
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
			return false;
	return true;
}

static bool check_relative_json_pointer(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && is_digit(s[i]))
		i++;
	if (i == 0 || (i > 1 && s[0] == '0'))
		return false;
	if (i < len && s[i] == '#')
		return i + 1 == len;
	return check_json_pointer(s + i, len - i);
}

static const struct {
	const char *name;
	enum js_format f;
} formats[] = {
        {"date-time", JS_FMT_DATE_TIME},
        {"date", JS_FMT_DATE},
        {"time", JS_FMT_TIME},
        {"duration", JS_FMT_DURATION},
        {"email", JS_FMT_EMAIL},
        {"idn-email", JS_FMT_IDN_EMAIL},
        {"hostname", JS_FMT_HOSTNAME},
        {"idn-hostname", JS_FMT_IDN_HOSTNAME},
        {"ipv4", JS_FMT_IPV4},
        {"ipv6", JS_FMT_IPV6},
        {"uri", JS_FMT_URI},
        {"uri-reference", JS_FMT_URI_REFERENCE},
        {"iri", JS_FMT_IRI},
        {"iri-reference", JS_FMT_IRI_REFERENCE},
        {"uri-template", JS_FMT_URI_TEMPLATE},
        {"uuid", JS_FMT_UUID},
        {"json-pointer", JS_FMT_JSON_POINTER},
        {"relative-json-pointer", JS_FMT_RELATIVE_JSON_POINTER},
        {"regex", JS_FMT_REGEX},
};

enum js_format js_format_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(formats[i].name, name) == 0)
			return formats[i].f;
	return JS_FMT_NONE;
}

bool js_format_check(enum js_format f, const char *s, size_t len)
{
	switch (f) {
	case JS_FMT_NONE:
		return true;
	case JS_FMT_DATE_TIME:
		return check_date_time(s, len);
	case JS_FMT_DATE:
		return check_date(s, len);
	case JS_FMT_TIME:
		return check_time(s, len);
	case JS_FMT_DURATION:
		return check_duration(s, len);
	case JS_FMT_EMAIL:
		return check_email(s, len, false);
	case JS_FMT_IDN_EMAIL:
		return check_email(s, len, true);
	case JS_FMT_HOSTNAME:
		return check_hostname(s, len);
	case JS_FMT_IDN_HOSTNAME:
		return check_idn_hostname(s, len);
	case JS_FMT_IPV4:
		return check_ipv4(s, len);
	case JS_FMT_IPV6:
		return check_ipv6(s, len);
	case JS_FMT_URI:
		return js_uri_check(s, len, true, false);
	case JS_FMT_URI_REFERENCE:
		return js_uri_check(s, len, false, false);
	case JS_FMT_IRI:
		return js_uri_check(s, len, true, true);
	case JS_FMT_IRI_REFERENCE:
		return js_uri_check(s, len, false, true);
	case JS_FMT_URI_TEMPLATE:
		return js_uri_template_check(s, len);
	case JS_FMT_UUID:
		return check_uuid(s, len);
	case JS_FMT_JSON_POINTER:
		return check_json_pointer(s, len);
	case JS_FMT_RELATIVE_JSON_POINTER:
		return check_relative_json_pointer(s, len);
	case JS_FMT_REGEX:
		return jsonschema_regex_valid(s, len);
	}
	return true;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool js_base64_decode(const char *s, size_t len, char **out, size_t *outlen, bool *nomem)
{
	*nomem = false;
	if (len % 4 != 0)
		return false;
	char *buf = malloc(len / 4 * 3 + 1);
	if (buf == NULL) {
		*nomem = true;
		return false;
	}
	size_t n = 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				pad++;
				v[k] = 0;
				continue;
			}
			v[k] = b64val(c);
			if (v[k] < 0 || pad > 0)
				goto bad;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		buf[n++] = (char)(w >> 16);
		if (pad < 2)
			buf[n++] = (char)(w >> 8);
		if (pad < 1)
			buf[n++] = (char)w;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return true;
bad:
	free(buf);
	return false;
}
