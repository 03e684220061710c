#include "body.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *t, size_t len, size_t i)
{
	while (i < len && is_ws(t[i]))
		i++;
	return i;
}

/* Index after the string that starts at t[i] == '"'; len if unterminated. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (t[i] == '\\')
			i++;
		else if (t[i] == '"')
			return i + 1;
	}
	return len;
}

/* Index after the value starting at t[i] (not whitespace). Iterative, so
 * deep nesting costs no stack. */
static size_t skip_value(const char *t, size_t len, size_t i)
{
	if (i >= len)
		return len;
	if (t[i] == '"')
		return skip_string(t, len, i);
	if (t[i] != '{' && t[i] != '[') {
		while (i < len && !is_ws(t[i]) && t[i] != ',' && t[i] != ']' && t[i] != '}')
			i++;
		return i;
	}
	size_t depth = 0;
	while (i < len) {
		char c = t[i];
		if (c == '"') {
			i = skip_string(t, len, i);
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				return i + 1;
		}
		i++;
	}
	return len;
}

bool listener_body_data_spans(const char *t, size_t len, struct listener_body_span *out, size_t n)
{
	size_t i = skip_ws(t, len, 0);
	if (i >= len || t[i] != '{')
		return false;
	i = skip_ws(t, len, i + 1);
	if (i >= len || t[i] != '"')
		return false;
	i = skip_ws(t, len, skip_string(t, len, i));
	if (i >= len || t[i] != ':')
		return false;
	i = skip_ws(t, len, i + 1);
	if (i >= len || t[i] != '[')
		return false;
	i = skip_ws(t, len, i + 1);
	size_t k = 0;
	if (i < len && t[i] == ']')
		return n == 0;
	while (i < len) {
		size_t end = skip_value(t, len, i);
		if (k == n || end > len)
			return false;
		out[k].off = i;
		out[k].len = end - i;
		k++;
		i = skip_ws(t, len, end);
		if (i >= len)
			return false;
		if (t[i] == ']')
			return k == n;
		if (t[i] != ',')
			return false;
		i = skip_ws(t, len, i + 1);
	}
	return false;
}

size_t listener_body_compact(const char *src, size_t len, char *dst)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '"') {
			size_t end = skip_string(src, len, i);
			memcpy(dst + o, src + i, end - i);
			o += end - i;
			i = end - 1;
		} else if (!is_ws(c)) {
			dst[o++] = c;
		}
	}
	return o;
}

static void hmac_hex(const char *secret, const void *body, size_t len, char out[65])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &mlen);
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[64] = '\0';
}

void listener_body_signature(const char *secret, const void *body, size_t len, char out[72])
{
	char hex[65];
	hmac_hex(secret, body, len, hex);
	snprintf(out, 72, "sha256=%s", hex);
}

bool listener_body_signature_ok(const char *secret, const void *body, size_t len,
                                const char *header)
{
	if (header == NULL || strncasecmp(header, "sha256=", 7) != 0)
		return false;
	const char *h = header + 7;
	if (strlen(h) != 64)
		return false;
	char given[64];
	for (int i = 0; i < 64; i++) {
		char c = h[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		given[i] = c;
	}
	char want[65];
	hmac_hex(secret, body, len, want);
	return util_ct_equal(given, want, 64);
}

bool listener_body_is_json_type(const char *ct)
{
	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0 && memchr(ct, '/', n) != NULL;
}
