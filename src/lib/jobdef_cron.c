/*
 * jobdef_cron: five-field cron expressions, checked and evaluated in UTC.
 *
 * An expression compiles to one bit set per field. The next fire time is
 * found day by day from the minute after the given time: a day whose month
 * is not allowed jumps to the first day of the next month, a day that does
 * not match goes to the next, and the first matching day's earliest allowed
 * hour and minute (not before the start on the first day) is the answer.
 * The Gregorian calendar repeats every 400 years (146097 days, a whole
 * number of weeks), so a search of one such cycle either finds the time or
 * proves that the expression never fires; that bounds the work for any
 * input. Dates are computed with integer civil-date arithmetic, not the C
 * library, so the result does not depend on the time zone or on time_t.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobdef.h"
#include "jobdef_int.h"

#define DAY_MS    86400000LL
#define CYCLE     146097                  /* days in 400 Gregorian years */
#define MIN_MS    (-62167219200000LL)     /* 0000-01-01T00:00:00Z */
#define MAX_MS    (253402300800000LL - 1) /* 9999-12-31T23:59:59.999Z */
#define CRON_SIZE 256

struct spec {
	const char *name;         /* field name in messages */
	int min, max;             /* allowed values */
	const char *const *names; /* three-letter names of min, min+1, ..., or NULL */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct spec specs[5] = {
        {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
        {"day-of-month", 1, 31, NULL},    {"month", 1, 12, month_names},
        {"day-of-week", 0, 7, dow_names},
};

static const struct {
	const char *name;
	const char *expr;
} macros[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
};

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Parses one value (a number or, where the field has them, a name) of
 * s[0..len) into *v. */
static int parse_value(const struct spec *sp, const char *s, size_t len, int *v, char *err,
                       size_t n)
{
	if (len == 0)
		return fail(err, n, "%s field: a value is missing", sp->name);
	if (s[0] >= '0' && s[0] <= '9') {
		int x = 0;
		for (size_t i = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9' || i >= 4)
				return fail(err, n, "%s field: '%.*s' is not a number", sp->name,
				            (int)len, s);
			x = x * 10 + (s[i] - '0');
		}
		if (x < sp->min || x > sp->max)
			return fail(err, n, "%s field: %d is out of range %d-%d", sp->name, x,
			            sp->min, sp->max);
		*v = x;
		return 0;
	}
	if (sp->names != NULL && len == 3) {
		int count = sp->max - sp->min + 1 - (sp->names == dow_names); /* 7 is no name */
		for (int i = 0; i < count; i++) {
			if (strncasecmp(s, sp->names[i], 3) == 0) {
				*v = sp->min + i;
				return 0;
			}
		}
	}
	if (sp->names != NULL)
		return fail(err, n, "%s field: '%.*s' is neither a number nor a name like '%s'",
		            sp->name, (int)len, s, sp->names[0]);
	return fail(err, n, "%s field: '%.*s' is not a number", sp->name, (int)len, s);
}

/* Adds the values of one list item ("*", "n", "a-b", each with an optional
 * "/step") to *bits. */
static int parse_item(const struct spec *sp, const char *s, size_t len, uint64_t *bits, char *err,
                      size_t n)
{
	const char *slash = memchr(s, '/', len);
	size_t rlen = slash != NULL ? (size_t)(slash - s) : len;
	int lo, hi, step = 1;

	if (len == 0)
		return fail(err, n, "%s field: empty list item", sp->name);
	if (slash != NULL) {
		const char *st = slash + 1;
		size_t slen = len - rlen - 1;
		int x = 0;
		if (slen == 0 || slen > 3)
			return fail(err, n, "%s field: step '%.*s' is not a number from 1 to %d",
			            sp->name, (int)slen, st, sp->max);
		for (size_t i = 0; i < slen; i++) {
			if (st[i] < '0' || st[i] > '9')
				return fail(err, n,
				            "%s field: step '%.*s' is not a number from 1 to %d",
				            sp->name, (int)slen, st, sp->max);
			x = x * 10 + (st[i] - '0');
		}
		if (x < 1 || x > sp->max)
			return fail(err, n, "%s field: step %d is out of range 1-%d", sp->name, x,
			            sp->max);
		step = x;
	}
	if (rlen == 1 && s[0] == '*') {
		lo = sp->min;
		hi = sp->max;
	} else {
		const char *dash = memchr(s, '-', rlen);
		size_t alen = dash != NULL ? (size_t)(dash - s) : rlen;
		int rc = parse_value(sp, s, alen, &lo, err, n);
		if (rc != 0)
			return rc;
		if (dash != NULL) {
			rc = parse_value(sp, dash + 1, rlen - alen - 1, &hi, err, n);
			if (rc != 0)
				return rc;
			if (lo > hi)
				return fail(err, n,
				            "%s field: range '%.*s' runs backwards; write the "
				            "smaller value first",
				            sp->name, (int)rlen, s);
		} else {
			/* "a/step" means from a to the end of the range, as in cronie. */
			hi = slash != NULL ? sp->max : lo;
		}
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= 1ULL << v;
	return 0;
}

static int parse_field(const struct spec *sp, const char *s, size_t len, uint64_t *bits, char *err,
                       size_t n)
{
	size_t start = 0;
	*bits = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == ',') {
			int rc = parse_item(sp, s + start, i - start, bits, err, n);
			if (rc != 0)
				return rc;
			start = i + 1;
		}
	}
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm); m is 1..12. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int jobdef__cron_compile(const char *expr, struct jobdef__cron *c, char *err, size_t n)
{
	const char *f[5];
	size_t flen[5];
	int nf = 0;
	struct jobdef__cron out = {0};
	uint64_t bits[5];

	if (expr == NULL || expr[0] == '\0')
		return fail(err, n, "the expression is empty; write five fields, e.g. '0 * * * *'");
	if (strlen(expr) > CRON_SIZE)
		return fail(err, n, "the expression is longer than %d characters", CRON_SIZE);
	while (*expr == ' ' || *expr == '\t')
		expr++;
	if (expr[0] == '@') {
		size_t len = strcspn(expr, " \t");
		if (expr[len + strspn(expr + len, " \t")] != '\0')
			return fail(err, n, "'%.*s' takes no fields after it", (int)len, expr);
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
			if (strlen(macros[i].name) == len &&
			    strncasecmp(expr, macros[i].name, len) == 0)
				return jobdef__cron_compile(macros[i].expr, c, err, n);
		}
		return fail(err, n,
		            "unknown macro '%.*s'; use @yearly, @annually, @monthly, @weekly, "
		            "@daily, @midnight or @hourly",
		            (int)len, expr);
	}
	for (const char *p = expr; *p != '\0';) {
		size_t len = strcspn(p, " \t");
		if (len > 0) {
			if (nf == 5)
				return fail(err, n,
				            "more than five fields; write minute hour day-of-month "
				            "month day-of-week (no seconds, no year)");
			f[nf] = p;
			flen[nf++] = len;
		}
		p += len;
		p += strspn(p, " \t");
	}
	if (nf != 5)
		return fail(err, n,
		            "%d field%s instead of five; write minute hour day-of-month month "
		            "day-of-week",
		            nf, nf == 1 ? "" : "s");
	for (int i = 0; i < 5; i++) {
		int rc = parse_field(&specs[i], f[i], flen[i], &bits[i], err, n);
		if (rc != 0)
			return rc;
	}
	out.minute = bits[0];
	out.hour = (uint32_t)bits[1];
	out.dom = (uint32_t)bits[2];
	out.month = (uint16_t)bits[3];
	out.dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
	out.dom_star = f[2][0] == '*';
	out.dow_star = f[4][0] == '*';
	*c = out;
	return 0;
}

static bool day_matches(const struct jobdef__cron *c, int d, int wd)
{
	bool dom = (c->dom >> d) & 1;
	bool dow = (c->dow >> wd) & 1;
	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

int jobdef__cron_next(const struct jobdef__cron *c, int64_t after_ms, int64_t *next_ms)
{
	if (after_ms < MIN_MS || after_ms > MAX_MS)
		return -ERANGE;
	int64_t start = floor_div(after_ms, 60000) + 1; /* first candidate minute */
	int64_t day = floor_div(start, 1440);
	int h0 = (int)((start - day * 1440) / 60);
	int m0 = (int)((start - day * 1440) % 60);
	int64_t last = day + CYCLE + 31;

	while (day <= last) {
		int64_t y;
		int m, d;
		civil_from_days(day, &y, &m, &d);
		if (!((c->month >> m) & 1)) {
			day = m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1);
			h0 = m0 = 0;
			continue;
		}
		int wd = (int)(((day + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
		if (day_matches(c, d, wd)) {
			for (int h = h0; h < 24; h++) {
				if (!((c->hour >> h) & 1))
					continue;
				for (int mi = h == h0 ? m0 : 0; mi < 60; mi++) {
					if ((c->minute >> mi) & 1) {
						*next_ms = (day * 1440 + h * 60 + mi) * 60000;
						return 0;
					}
				}
			}
		}
		day++;
		h0 = m0 = 0;
	}
	return -ENOENT;
}

int jobdef_cron_check(const char *expr, char **err)
{
	struct jobdef__cron c;
	char msg[256];
	int64_t next;
	int rc = jobdef__cron_compile(expr, &c, msg, sizeof(msg));
	if (rc == 0 && jobdef__cron_next(&c, 0, &next) == -ENOENT) {
		snprintf(msg, sizeof(msg),
		         "it never fires: no day matches its day-of-month, month and day-of-week");
		rc = -EINVAL;
	}
	if (rc != 0 && err != NULL) {
		*err = strdup(msg);
		if (*err == NULL)
			return -ENOMEM;
	}
	return rc;
}

int jobdef_cron_next(const char *expr, int64_t after_ms, int64_t *next_ms)
{
	struct jobdef__cron c;
	char msg[256];
	int64_t next;
	if (jobdef__cron_compile(expr, &c, msg, sizeof(msg)) != 0)
		return -EINVAL;
	int rc = jobdef__cron_next(&c, after_ms, &next);
	if (rc == 0)
		*next_ms = next;
	return rc;
}
