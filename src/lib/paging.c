/*
 * paging: see paging.h.
 */
#include "paging.h"

uint32_t paging_limit(const Noetl__Page *page)
{
	uint32_t limit = page != NULL ? page->limit : 0;
	if (limit == 0)
		return PAGING_DEFAULT;
	return limit > PAGING_MAX ? PAGING_MAX : limit;
}
