/*
 * paging: the limit of one page of a listing.
 */
#include <criterion/criterion.h>

#include "paging.h"

Test(paging, no_page_or_a_zero_limit_gets_the_default)
{
	cr_expect_eq(paging_limit(NULL), PAGING_DEFAULT);
	Noetl__Page p = NOETL__PAGE__INIT;
	cr_expect_eq(paging_limit(&p), PAGING_DEFAULT);
}

Test(paging, a_limit_is_kept_up_to_the_maximum)
{
	Noetl__Page p = NOETL__PAGE__INIT;
	p.limit = 7;
	cr_expect_eq(paging_limit(&p), 7);
	p.limit = PAGING_MAX;
	cr_expect_eq(paging_limit(&p), PAGING_MAX);
	p.limit = PAGING_MAX + 1;
	cr_expect_eq(paging_limit(&p), PAGING_MAX, "a larger ask gets the maximum");
}
