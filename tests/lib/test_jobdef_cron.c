#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobdef.h"

/* Unix milliseconds of "YYYY-MM-DDTHH:MM[:SS]" UTC, through the C library
 * (independent of the calendar code under test). */
static int64_t at(const char *iso)
{
	struct tm tm = {0};
	int n = sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	               &tm.tm_min, &tm.tm_sec);
	cr_assert(n >= 5, "bad time %s", iso);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000;
}

static void expect_next(const char *expr, const char *after, const char *want)
{
	int64_t next = 0;
	int rc = jobdef_cron_next(expr, at(after), &next);
	cr_expect_eq(rc, 0, "'%s' after %s: rc %d", expr, after, rc);
	cr_expect_eq(next, at(want), "'%s' after %s: got %lld, want %s (%lld)", expr, after,
	             (long long)next, want, (long long)at(want));
}

Test(jobdef_cron, steps_ranges_and_lists_pick_the_next_minute)
{
	expect_next("*/15 * * * *", "2026-11-23T12:07:30", "2026-11-23T12:15");
	expect_next("5-10/2 * * * *", "2026-11-23T12:05", "2026-11-23T12:07");
	expect_next("5-10/2 * * * *", "2026-11-23T12:09", "2026-11-23T13:05");
	expect_next("5/20 * * * *", "2026-11-23T12:45", "2026-11-23T13:05");
	expect_next("0,30 9,17 * * *", "2026-11-23T09:30", "2026-11-23T17:00");
	expect_next("* * * * *", "2026-11-23T12:00:59", "2026-11-23T12:01");
}

Test(jobdef_cron, the_next_fire_time_is_strictly_after_the_given_time)
{
	expect_next("0 0 * * *", "2026-11-23T00:00", "2026-11-24T00:00");
	int64_t next;
	cr_assert_eq(jobdef_cron_next("0 0 * * *", at("2026-11-23T00:00") - 1, &next), 0);
	cr_assert_eq(next, at("2026-11-23T00:00"));
}

Test(jobdef_cron, names_of_months_and_days_are_accepted_in_any_case)
{
	expect_next("0 9 * * MON-FRI", "2026-11-27T10:00", "2026-11-30T09:00"); /* Fri -> Mon */
	expect_next("0 0 1 jan,Jul *", "2026-02-01T00:00", "2026-07-01T00:00");
	expect_next("0 12 * * sun", "2026-11-23T12:00", "2026-11-29T12:00");
}

Test(jobdef_cron, seven_is_sunday_too)
{
	expect_next("0 12 * * 7", "2026-11-23T12:00", "2026-11-29T12:00");
	expect_next("0 12 * * 5-7", "2026-11-23T12:00", "2026-11-27T12:00");
}

Test(jobdef_cron, day_of_month_or_day_of_week_when_both_are_restricted)
{
	/* The 13th or any Friday: Friday the 6th comes first. */
	expect_next("0 0 13 * 5", "2026-11-01T00:00", "2026-11-06T00:00");
	/* The 1st or any Monday: Monday the 30th comes before December 1st. */
	expect_next("0 0 1 * 1", "2026-11-24T00:00", "2026-11-30T00:00");
	/* February 29th or a Monday in February. */
	expect_next("0 0 29 2 1", "2027-01-01T00:00", "2027-02-01T00:00");
	/* "1-31" does not start with '*', so it is restricted: every day matches. */
	expect_next("0 0 1-31 * 1", "2026-11-24T00:00", "2026-11-25T00:00");
}

Test(jobdef_cron, day_of_month_and_day_of_week_when_one_starts_with_a_star)
{
	/* "*\/10" starts with '*': days 1, 11, 21, 31 that are also Mondays. */
	expect_next("0 0 */10 * 1", "2026-11-01T00:00", "2026-12-21T00:00");
	expect_next("0 0 */1 * 1", "2026-11-24T00:00", "2026-11-30T00:00");
	expect_next("0 0 13 * *", "2026-11-14T00:00", "2026-12-13T00:00");
}

Test(jobdef_cron, short_months_leap_years_and_centuries_are_respected)
{
	expect_next("0 0 31 * *", "2026-04-01T00:00", "2026-05-31T00:00");
	expect_next("0 0 29 2 *", "2026-03-01T00:00", "2028-02-29T00:00");
	expect_next("0 0 29 2 *", "2096-03-01T00:00",
	            "2104-02-29T00:00"); /* 2100 is no leap year */
	expect_next("0 0 29 2 *", "2399-03-01T00:00", "2400-02-29T00:00"); /* 2400 is */
	expect_next("59 23 31 12 *", "2026-12-31T23:59", "2027-12-31T23:59");
}

Test(jobdef_cron, times_before_1970_work)
{
	expect_next("0 0 1 1 *", "1969-06-01T00:00", "1970-01-01T00:00");
	expect_next("30 * * * *", "1969-12-31T23:45", "1970-01-01T00:30");
	int64_t next;
	cr_assert_eq(jobdef_cron_next("* * * * *", -1, &next), 0);
	cr_assert_eq(next, 0);
	cr_assert_eq(jobdef_cron_next("* * * * *", -60001, &next), 0);
	cr_assert_eq(next, -60000);
}

Test(jobdef_cron, macros_stand_for_their_expressions)
{
	expect_next("@hourly", "2026-11-23T12:00", "2026-11-23T13:00");
	expect_next("@daily", "2026-11-23T12:00", "2026-11-24T00:00");
	expect_next("@midnight", "2026-11-23T12:00", "2026-11-24T00:00");
	expect_next("@weekly", "2026-11-23T12:00", "2026-11-29T00:00");
	expect_next("@monthly", "2026-11-23T12:00", "2026-12-01T00:00");
	expect_next("@YEARLY", "2026-11-23T12:00", "2027-01-01T00:00");
	expect_next("@annually", "2026-11-23T12:00", "2027-01-01T00:00");
}

/* Expected values from an independent brute-force evaluator (Python's
 * datetime, minute by minute), at random times across 1969..2400. */
Test(jobdef_cron, agrees_with_a_brute_force_evaluator)
{
	static const struct {
		const char *expr;
		int64_t after, next;
	} cases[] = {
	        {"*/7 3-5 * * *", 4077115384840LL, 4077140400000LL},
	        {"*/7 3-5 * * *", 929757512219LL, 929761200000LL},
	        {"15 10 1,15 * *", -27687344908LL, -27611100000LL},
	        {"15 10 1,15 * *", 4104756434645LL, 4105160100000LL},
	        {"0 0 * * 0", -6350205953LL, -5788800000LL},
	        {"0 0 * * 0", 958278847584LL, 958867200000LL},
	        {"0 0 13 * 5", 1790543466595LL, 1790899200000LL},
	        {"0 0 13 * 5", 1717523104577LL, 1717718400000LL},
	        {"0 12 */3 * *", -7373785563LL, -7128000000LL},
	        {"0 12 */3 * *", 4090832599254LL, 4091083200000LL},
	        {"30 6 * 2 mon", 977727936307LL, 981354600000LL},
	        {"30 6 * 2 mon", 13553014718074LL, 13572685800000LL},
	        {"0 0 29 2 *", 937288101155LL, 951782400000LL},
	        {"0 0 29 2 *", 13553730288571LL, 13574563200000LL},
	        {"45 23 31 * *", 4085897911593LL, 4089224700000LL},
	        {"45 23 31 * *", 13542862650713LL, 13545704700000LL},
	        {"0 8-18/2 * * MON-FRI", 917216381591LL, 917251200000LL},
	        {"0 8-18/2 * * MON-FRI", 13550245002355LL, 13550313600000LL},
	        {"1-5 0 1 jan,jul *", -12248452495LL, 60000LL},
	        {"1-5 0 1 jan,jul *", -21653472747LL, -15897540000LL},
	        {"0 0 1-7 * 1", 4120470310459LL, 4120761600000LL},
	        {"0 0 1-7 * 1", 4124148747884LL, 4124476800000LL},
	        {"5/20 * * * 6,0", 1797248636389LL, 1797638700000LL},
	        {"5/20 * * * 6,0", 1709442554674LL, 1709443500000LL},
	        {"0 0 */10 * 1", 1705428676288LL, 1710115200000LL},
	        {"0 0 */10 * 1", -25252580421LL, -23846400000LL},
	        {"0 4 28-31 * *", 4077967181692LL, 4078353600000LL},
	        {"0 4 28-31 * *", -10807704599LL, -10785600000LL},
	        {"59 23 * 12 5-7", 4119132640410LL, 4131561540000LL},
	        {"59 23 * 12 5-7", -23563909888LL, -2246460000LL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t next = 0;
		cr_expect_eq(jobdef_cron_next(cases[i].expr, cases[i].after, &next), 0);
		cr_expect_eq(next, cases[i].next, "'%s' after %lld: got %lld, want %lld",
		             cases[i].expr, (long long)cases[i].after, (long long)next,
		             (long long)cases[i].next);
	}
}

Test(jobdef_cron, invalid_expressions_say_which_field_is_wrong)
{
	static const struct {
		const char *expr;
		const char *err;
	} cases[] = {
	        {"", "the expression is empty; write five fields, e.g. '0 * * * *'"},
	        {"* * * *", "4 fields instead of five; write minute hour day-of-month month "
	                    "day-of-week"},
	        {"* * * * * *", "more than five fields; write minute hour day-of-month month "
	                        "day-of-week (no seconds, no year)"},
	        {"60 * * * *", "minute field: 60 is out of range 0-59"},
	        {"* 24 * * *", "hour field: 24 is out of range 0-23"},
	        {"* * 0 * *", "day-of-month field: 0 is out of range 1-31"},
	        {"* * 32 * *", "day-of-month field: 32 is out of range 1-31"},
	        {"* * * 13 *", "month field: 13 is out of range 1-12"},
	        {"* * * * 8", "day-of-week field: 8 is out of range 0-7"},
	        {"*/0 * * * *", "minute field: step 0 is out of range 1-59"},
	        {"*/x * * * *", "minute field: step 'x' is not a number from 1 to 59"},
	        {"5-1 * * * *", "minute field: range '5-1' runs backwards; write the smaller value "
	                        "first"},
	        {"1,,2 * * * *", "minute field: empty list item"},
	        {"1, * * * *", "minute field: empty list item"},
	        {"a * * * *", "minute field: 'a' is not a number"},
	        {"-5 * * * *", "minute field: a value is missing"},
	        {"MON * * * *", "minute field: 'MON' is not a number"},
	        {"* * * JANUARY *",
	         "month field: 'JANUARY' is neither a number nor a name like 'jan'"},
	        {"* * * * fun",
	         "day-of-week field: 'fun' is neither a number nor a name like 'sun'"},
	        {"* * ? * *", "day-of-month field: '?' is not a number"},
	        {"@reboot", "unknown macro '@reboot'; use @yearly, @annually, @monthly, @weekly, "
	                    "@daily, @midnight or @hourly"},
	        {"@daily 5", "'@daily' takes no fields after it"},
	        {"0 0 30 2 *", "it never fires: no day matches its day-of-month, month and "
	                       "day-of-week"},
	        {"0 0 31 4,6,9,11 *", "it never fires: no day matches its day-of-month, month and "
	                              "day-of-week"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;
		cr_expect_eq(jobdef_cron_check(cases[i].expr, &err), -EINVAL, "'%s'",
		             cases[i].expr);
		cr_expect_str_eq(err ? err : "(none)", cases[i].err, "'%s'", cases[i].expr);
		free(err);
	}
	char *err = NULL;
	cr_assert_eq(jobdef_cron_check("  0  9 * *\tMON-FRI ", &err), 0);
	cr_assert_null(err);
	cr_assert_eq(jobdef_cron_check("0 0 29 2 *", NULL), 0);
}

Test(jobdef_cron, next_reports_invalid_never_and_out_of_range)
{
	int64_t next = 42;
	cr_assert_eq(jobdef_cron_next("61 * * * *", 0, &next), -EINVAL);
	cr_assert_eq(jobdef_cron_next("0 0 30 2 *", 0, &next), -ENOENT);
	cr_assert_eq(jobdef_cron_next("* * * * *", 253402300800000LL, &next), -ERANGE);
	cr_assert_eq(jobdef_cron_next("* * * * *", -62167219200001LL, &next), -ERANGE);
	cr_assert_eq(next, 42, "out-parameters are written only on success");
	cr_assert_eq(jobdef_cron_next("59 23 31 12 *", 253402300799999LL - 60000, &next), 0);
	cr_assert_eq(next, 253402300740000LL);
}
