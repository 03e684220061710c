/*
 * util: small helpers every module needs: clocks, ids, names, hashing.
 */
#ifndef NOETL_UTIL_H
#define NOETL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall-clock time in Unix milliseconds. */
int64_t util_now_ms(void);

/* Monotonic time in milliseconds and microseconds, for deadlines and durations. */
int64_t util_mono_ms(void);
int64_t util_mono_us(void);

/* Sleeps for ms milliseconds (restarting on EINTR). */
void util_sleep_ms(int64_t ms);

/* Size of an id from util_new_id, with its terminating NUL. */
#define UTIL_ID_SIZE 27

/*
 * Writes a new unique id into out: 26 characters of Crockford base32, the
 * first 10 the creation time in milliseconds (so ids sort by time, like a
 * ULID), the rest random. Thread-safe.
 */
void util_new_id(char out[UTIL_ID_SIZE]);

/* Fills buf with len cryptographically random bytes; returns 0 or -errno. */
int util_random(void *buf, size_t len);

/* A uniformly random integer in [0, bound); bound > 0. */
uint64_t util_random_below(uint64_t bound);

/*
 * True if name is a valid tenant, queue, package or event id: 1..max bytes of
 * [A-Za-z0-9_.-], not starting with '.', and not "." or "..". File names in
 * the repository use the same rule, so none can hold a path separator.
 */
bool util_valid_name(const char *name, size_t max);

/* Writes the lowercase hex SHA-256 of data into out (65 bytes with NUL). */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/* Constant-time comparison of two equally long buffers. */
bool util_ct_equal(const void *a, const void *b, size_t len);

/* strdup that aborts on allocation failure: for the few places where an
 * allocation failure is not worth a recovery path. */
char *util_xstrdup(const char *s);

/* Creates directory path and its missing parents (mode 0755), like
 * mkdir -p. 0 or -errno. */
int util_mkdir_p(const char *path);

/* Big-endian encoding of 64-bit integers, for ordered keys. */
void util_put_be64(uint8_t *p, uint64_t v);
uint64_t util_get_be64(const uint8_t *p);

#endif
