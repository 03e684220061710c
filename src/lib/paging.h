/*
 * paging: how many items one page of a listing call holds (noetl.Page in
 * proto/common.proto), the same for every service so that a client's
 * expectations carry from one listing to the next.
 */
#ifndef NOETL_PAGING_H
#define NOETL_PAGING_H

#include <stdint.h>

#include "common.pb-c.h"

#define PAGING_DEFAULT 100  /* items when the request leaves the limit 0 */
#define PAGING_MAX     1000 /* items at most, whatever the request asks */

/* The limit of page (borrowed; NULL: no page given): its limit, else
 * PAGING_DEFAULT, at most PAGING_MAX. */
uint32_t paging_limit(const Noetl__Page *page);

#endif
