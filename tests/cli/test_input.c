/*
 * cli_read_file: how noetlctl reads the files its commands are given.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "testutil.h"

static struct cli cli;
static char *err_text;
static size_t err_len;
static char dir[256], path[320];

static void setup(void)
{
	memset(&cli, 0, sizeof(cli));
	cli.prog = "noetlctl";
	cli.out = stdout;
	cli.err = open_memstream(&err_text, &err_len);
	testutil_tempdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
}

static void teardown(void)
{
	fclose(cli.err);
	free(err_text);
	testutil_rmtree(dir);
}

TestSuite(input, .init = setup, .fini = teardown);

static const char *err(void)
{
	fflush(cli.err);
	return err_text;
}

Test(input, a_file_is_read_whole_and_nul_terminated)
{
	/* larger than the first read, so the buffer grows */
	size_t n = 200000;
	char *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	cr_assert(testutil_write_file(path, data, n));
	char *buf = NULL;
	size_t len = 0;
	cr_assert_eq(cli_read_file(&cli, path, n, "hint", &buf, &len), CLI_OK);
	cr_expect_eq(len, n, "a file of exactly the limit is accepted");
	cr_expect_eq(memcmp(buf, data, n), 0);
	cr_expect_eq(buf[n], '\0');
	free(buf);
	free(data);
}

Test(input, a_file_over_the_limit_is_refused_with_the_hint)
{
	cr_assert(testutil_write_file(path, "12345", 5));
	char *buf = NULL;
	size_t len = 0;
	cr_assert_eq(cli_read_file(&cli, path, 4, "make it smaller", &buf, &len), CLI_FAIL);
	cr_expect_null(buf);
	cr_expect(strstr(err(), "is over 4 bytes; make it smaller") != NULL, "%s", err());
}

Test(input, a_missing_file_or_a_directory_says_so)
{
	char *buf = NULL;
	size_t len = 0;
	cr_assert_eq(cli_read_file(&cli, path, 10, "h", &buf, &len), CLI_FAIL);
	cr_expect(strstr(err(), "cannot open") != NULL, "%s", err());
	cr_assert_eq(cli_read_file(&cli, dir, 10, "h", &buf, &len), CLI_FAIL);
	cr_expect(strstr(err(), "cannot read") != NULL, "%s", err());
	cr_expect_null(buf);
}

Test(input, an_empty_file_reads_as_an_empty_string)
{
	char *buf = NULL;
	size_t len = 1;
	cr_assert_eq(cli_read_file(&cli, "/dev/null", 10, "h", &buf, &len), CLI_OK);
	cr_expect_eq(len, 0);
	cr_expect_str_eq(buf, "");
	free(buf);
}
