#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

Test(util, ids_are_unique_and_sort_by_time)
{
	char a[UTIL_ID_SIZE], b[UTIL_ID_SIZE];
	util_new_id(a);
	util_sleep_ms(2);
	util_new_id(b);
	cr_assert_eq(strlen(a), 26);
	cr_assert_neq(strcmp(a, b), 0);
	cr_assert_lt(strncmp(a, b, 10), 0, "time prefix of %s should sort before %s", a, b);
}

Test(util, names_with_path_separators_or_dots_are_refused)
{
	cr_assert(util_valid_name("greet-schema-go.json", 128));
	cr_assert(util_valid_name("a", 1));
	cr_assert_not(util_valid_name("ab", 1));
	cr_assert_not(util_valid_name("", 128));
	cr_assert_not(util_valid_name("..", 128));
	cr_assert_not(util_valid_name(".hidden", 128));
	cr_assert_not(util_valid_name("a/b", 128));
	cr_assert_not(util_valid_name("a\\b", 128));
	cr_assert_not(util_valid_name("x..y", 128));
	cr_assert_not(util_valid_name("sp ace", 128));
}

Test(util, sha256_matches_the_known_vector)
{
	char hex[65];
	util_sha256_hex("abc", 3, hex);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(util, big_endian_round_trips_and_orders)
{
	uint8_t a[8], b[8];
	util_put_be64(a, 0x0102030405060708ull);
	cr_assert_eq(a[0], 1);
	cr_assert_eq(util_get_be64(a), 0x0102030405060708ull);
	util_put_be64(b, 0x0102030405060709ull);
	cr_assert_lt(memcmp(a, b, 8), 0);
}

Test(util, mkdir_p_creates_missing_parents_and_accepts_existing_ones)
{
	char dir[256], path[400];
	testutil_tempdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	cr_assert_eq(util_mkdir_p(path), 0);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(util_mkdir_p(path), 0, "an existing directory is fine");
	snprintf(path, sizeof(path), "%s/a/file", dir);
	FILE *f = fopen(path, "w");
	fclose(f);
	snprintf(path, sizeof(path), "%s/a/file/sub", dir);
	cr_assert_eq(util_mkdir_p(path), -ENOTDIR);
	testutil_rmtree(dir);
}
