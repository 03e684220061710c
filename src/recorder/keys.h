/*
 * keys: building and taking apart the Recorder's keys (layout in store.h).
 * Private to the store's files.
 */
#ifndef NOETL_RECORDER_KEYS_H
#define NOETL_RECORDER_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store.h"
#include "util.h"

/* Key prefixes. */
#define KP_LOG    'C' /* the change log */
#define KP_RECORD 'r' /* per tenant and kind, by time */
#define KP_FAILED 'f' /* failed executions by time */
#define KP_DEAD   'd' /* dead executions by time */
#define KP_ALL    'a' /* every tenant's executions by time */
#define KP_EVENT  'e' /* an event's records */
#define KP_USAGE  'z' /* a tenant's record count and charge */
#define KP_POLICY 'p' /* a tenant's retention */

/* Record kinds in 'r' and 'e' keys. */
#define RK_EXEC     'x'
#define RK_LOG      'l'
#define RK_TIMELINE 'm'
#define RK_LINK     'L' /* 'e' only: another event's entry that links here */

/* Big enough for the longest key: prefix, event, tenant, kind, two be64s. */
#define KEY_MAX (1 + RECORDER_EVENT_MAX + 1 + RECORDER_TENANT_MAX + 1 + 1 + 8 + 8 + 8)

struct key {
	uint8_t b[KEY_MAX]; /* the bytes */
	size_t n;           /* used */
};

static inline void key_init(struct key *k, char prefix)
{
	k->b[0] = (uint8_t)prefix;
	k->n = 1;
}

/* Appends a name and its terminating NUL; names are bounded by validation,
 * and a longer one is cut (it could not have been stored). */
static inline void key_name(struct key *k, const char *s, size_t max)
{
	size_t len = strnlen(s, max);
	memcpy(k->b + k->n, s, len);
	k->n += len;
	k->b[k->n++] = 0;
}

static inline void key_u8(struct key *k, uint8_t v)
{
	k->b[k->n++] = v;
}

static inline void key_be64(struct key *k, uint64_t v)
{
	util_put_be64(k->b + k->n, v);
	k->n += 8;
}

/* The smallest key greater than every key that starts with k: k with its last
 * byte incremented (keys never end in 0xff here, except be64 suffixes, where
 * the carry is handled by the caller choosing a NUL-terminated prefix). */
static inline void key_prefix_end(const struct key *k, struct key *end)
{
	*end = *k;
	for (size_t i = end->n; i-- > 0;) {
		if (end->b[i] != 0xff) {
			end->b[i]++;
			end->n = i + 1;
			return;
		}
	}
	end->n = 0; /* all 0xff: unbounded */
}

/* Records' times are >= 0 once validated; a negative time in a query bound
 * means "from the beginning". */
static inline uint64_t key_time(int64_t t)
{
	return t < 0 ? 0 : (uint64_t)t;
}

#endif
