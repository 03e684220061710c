/*
 * jobdef_value: the syntax of scalar values in job definitions: YAML 1.2
 * core-schema resolution of plain scalars (for schedule payloads), whole
 * numbers, durations and sizes, and their canonical spellings.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobdef_int.h"

static bool all_of(const char *s, size_t len, const char *set)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return false;
	return true;
}

static bool is_float_syntax(const char *s, size_t len)
{
	size_t i = 0, digits = 0;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t e = 0;
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			e++;
		if (e == 0)
			return false;
	}
	return i == len;
}

static bool one_of(const char *s, size_t len, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == len && memcmp(s, words[i], len) == 0)
			return true;
	return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum jobdef__kind jobdef__resolve(const char *s, size_t len, int64_t *iv, double *dv)
{
	static const char *const nulls[] = {"~", "null", "Null", "NULL"};
	static const char *const trues[] = {"true", "True", "TRUE"};
	static const char *const falses[] = {"false", "False", "FALSE"};
	static const char *const bads[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf", "+.INF",
	                                   "-.inf", "-.Inf", "-.INF", ".nan",  ".NaN",  ".NAN"};
	int base = 0;
	size_t skip = 0;

	if (len == 0 || one_of(s, len, nulls, COUNT(nulls)))
		return JOBDEF__NULL;
	if (one_of(s, len, trues, COUNT(trues)))
		return JOBDEF__TRUE;
	if (one_of(s, len, falses, COUNT(falses)))
		return JOBDEF__FALSE;
	if (one_of(s, len, bads, COUNT(bads)))
		return JOBDEF__BAD;
	if (len > 2 && s[0] == '0' && s[1] == 'o' && all_of(s + 2, len - 2, "01234567"))
		base = 8, skip = 2;
	else if (len > 2 && s[0] == '0' && s[1] == 'x' &&
	         all_of(s + 2, len - 2, "0123456789abcdefABCDEF"))
		base = 16, skip = 2;
	else if (all_of(s, len, "0123456789") ||
	         (len > 1 && (s[0] == '-' || s[0] == '+') && all_of(s + 1, len - 1, "0123456789")))
		base = 10;
	if (base == 0 && !is_float_syntax(s, len))
		return JOBDEF__STRING;

	/* s is NUL-terminated text of a node or of the caller; copy anyway so
	 * that strtoll/strtod never read past len. */
	char *num = strndup(s, len);
	enum jobdef__kind k;
	if (num == NULL)
		return JOBDEF__BAD;
	errno = 0;
	if (base != 0) {
		long long v = strtoll(num + skip, NULL, base);
		k = errno == ERANGE ? JOBDEF__BAD : JOBDEF__INT;
		if (iv != NULL)
			*iv = v;
	} else {
		double v = strtod(num, NULL);
		k = isfinite(v) ? JOBDEF__FLOAT : JOBDEF__BAD;
		if (dv != NULL)
			*dv = v;
	}
	free(num);
	return k;
}

/* Parses a decimal number of at most 18 digits from s[*i..len). */
static bool take_digits(const char *s, size_t len, size_t *i, uint64_t *v, size_t *ndig)
{
	size_t start = *i;
	uint64_t x = 0;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		if (*i - start == 18)
			return false;
		x = x * 10 + (uint64_t)(s[*i] - '0');
		(*i)++;
	}
	*v = x;
	if (ndig != NULL)
		*ndig = *i - start;
	return *i > start;
}

bool jobdef__parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	size_t i = 0;
	uint64_t x;
	if (!take_digits(s, len, &i, &x, NULL) || i != len || x > max)
		return false;
	*out = x;
	return true;
}

int jobdef__parse_duration(const char *s, size_t len, uint32_t *out)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
	size_t i = 0;
	uint64_t total = 0;

	if (len > 0 && all_of(s, len, "0123456789")) {
		uint64_t x;
		if (!jobdef__parse_uint(s, len, UINT32_MAX, &x))
			return -ERANGE;
		*out = (uint32_t)x;
		return 0;
	}
	if (len == 0)
		return -EINVAL;
	while (i < len) {
		uint64_t whole, frac = 0, scale = 1, ms = 0;
		size_t fd = 0;
		if (!take_digits(s, len, &i, &whole, NULL))
			return -EINVAL;
		if (i < len && s[i] == '.') {
			i++;
			if (!take_digits(s, len, &i, &frac, &fd) || fd > 9)
				return -EINVAL;
			for (size_t k = 0; k < fd; k++)
				scale *= 10;
		}
		for (size_t u = 0; u < COUNT(units) && ms == 0; u++) {
			size_t ul = strlen(units[u].unit);
			if (len - i >= ul && strncmp(s + i, units[u].unit, ul) == 0) {
				ms = units[u].ms;
				i += ul;
			}
		}
		if (ms == 0)
			return -EINVAL;
		if (whole > UINT32_MAX || (frac * ms) % scale != 0)
			return -ERANGE;
		total += whole * ms + frac * ms / scale;
		if (total > UINT32_MAX)
			return -ERANGE;
	}
	*out = (uint32_t)total;
	return 0;
}

int jobdef__parse_size(const char *s, size_t len, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {{"kib", 1ULL << 10},
	             {"ki", 1ULL << 10},
	             {"mib", 1ULL << 20},
	             {"mi", 1ULL << 20},
	             {"gib", 1ULL << 30},
	             {"gi", 1ULL << 30},
	             {"b", 1}};
	size_t i = 0;
	uint64_t x;

	if (!take_digits(s, len, &i, &x, NULL))
		return -EINVAL;
	if (i == len) {
		*out = x;
		return 0;
	}
	if (s[i] == ' ')
		i++;
	for (size_t u = 0; u < COUNT(units); u++) {
		if (strlen(units[u].unit) == len - i &&
		    strncasecmp(s + i, units[u].unit, len - i) == 0) {
			if (x > (UINT64_MAX >> 30))
				return -EINVAL;
			*out = x * units[u].mult;
			return 0;
		}
	}
	return -EINVAL;
}

void jobdef__format_duration(uint32_t ms, char *buf, size_t n)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, n, "%uh", ms / 3600000);
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, n, "%um", ms / 60000);
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(buf, n, "%us", ms / 1000);
	else
		snprintf(buf, n, "%ums", ms);
}

void jobdef__format_size(uint64_t bytes, char *buf, size_t n)
{
	unsigned long long b = bytes;
	if (b != 0 && b % (1ULL << 30) == 0)
		snprintf(buf, n, "%lluGiB", b >> 30);
	else if (b != 0 && b % (1ULL << 20) == 0)
		snprintf(buf, n, "%lluMiB", b >> 20);
	else if (b != 0 && b % (1ULL << 10) == 0)
		snprintf(buf, n, "%lluKiB", b >> 10);
	else
		snprintf(buf, n, "%llu", b);
}
