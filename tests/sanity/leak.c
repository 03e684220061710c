/* A test that leaks on purpose: tests/sanity/check-leak.sh runs it to prove
 * that, in the sanitizer build, a leak does not go unnoticed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(sanity, leaks_one_block_on_purpose)
{
	char *p = malloc(64);
	memset(p, 1, 64);
	p = NULL;
	cr_assert_null(p);
}
