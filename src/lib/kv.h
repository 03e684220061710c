/*
 * kv: the one module that talks to RocksDB.
 *
 * Each stateful service owns one kv store in its own directory. The wrapper
 * keeps RocksDB's conventions (malloc'ed error strings, unsigned char flags)
 * out of the services: calls return 0 or a negative errno-style code and log
 * the RocksDB message once, here.
 *
 * Writes are either synced (the call returns after the write-ahead log is on
 * disk: use for anything a client was told is durable) or not. Batches are
 * atomic: all their operations are applied or none. Iterators are bounded
 * (lower and upper key) so a scan never walks past its range, which is what
 * keeps queue-like key ranges fast when the keys behind the head are
 * tombstones.
 *
 * Threads: a kv store, and writes to it, may be used from any number of
 * threads. A batch or an iterator belongs to one thread at a time.
 */
#ifndef NOETL_KV_H
#define NOETL_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv;
struct kv_batch;
struct kv_iter;

/* Options for kv_open; zero means the default. */
struct kv_options {
	size_t cache_bytes;        /* block cache; default 8 MiB */
	size_t write_buffer_bytes; /* memtable size; default 8 MiB */
	bool read_only;            /* open for reading only */
};

/*
 * Opens (creating if missing) the store in directory path. On success *out
 * is a store the caller closes with kv_close. Errors: -EIO (message logged),
 * -ENOMEM.
 */
int kv_open(const char *path, const struct kv_options *opt, struct kv **out);

/* Closes the store; accepts NULL. All batches and iterators must be gone. */
void kv_close(struct kv *kv);

/*
 * Reads key. On success *val is a malloc'ed copy the caller frees (with a
 * terminating NUL added beyond *len, so text values can be used as strings)
 * and *len its length. Returns -ENOENT if absent, -EIO on failure.
 */
int kv_get(struct kv *kv, const void *key, size_t klen, void **val, size_t *len);

/* Writes one key; sync makes it durable before returning. 0 or -EIO. */
int kv_put(struct kv *kv, const void *key, size_t klen, const void *val, size_t vlen, bool sync);

/* Deletes one key (absent is not an error). 0 or -EIO. */
int kv_delete(struct kv *kv, const void *key, size_t klen, bool sync);

/* Atomic batches: operations are buffered (copied) and applied by kv_write. */
struct kv_batch *kv_batch_create(void);
void kv_batch_destroy(struct kv_batch *b);
void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
void kv_batch_delete(struct kv_batch *b, const void *key, size_t klen);
/* Deletes every key in [begin, end). */
void kv_batch_delete_range(struct kv_batch *b, const void *begin, size_t blen, const void *end,
                           size_t elen);
/* Number of operations buffered, and their approximate size in bytes. */
size_t kv_batch_count(const struct kv_batch *b);
size_t kv_batch_bytes(const struct kv_batch *b);
/* Appends every operation of src to dst. */
void kv_batch_append(struct kv_batch *dst, const struct kv_batch *src);
/*
 * Puts b's operations in key order (for one key, in the order they were
 * added, so the last still wins): RocksDB inserts a batch into its memtable
 * (a skip list) in batch order, and an insert just after the previous one
 * starts from where that one ended instead of searching from the top. A
 * batch that builds several indexes at once (a record and its index
 * entries, for many records) otherwise jumps between key ranges on every
 * insert. The result of writing the batch does not change. A batch holding
 * a range delete (or anything but puts and deletes), or one that cannot be
 * copied for lack of memory, is left as it is.
 */
void kv_batch_sort(struct kv_batch *b);
/* Removes every operation. */
void kv_batch_clear(struct kv_batch *b);

/* Applies the batch atomically; the batch stays valid and unchanged. 0 or -EIO. */
int kv_write(struct kv *kv, struct kv_batch *b, bool sync);

/*
 * Creates an iterator over keys in [lower, upper). Either bound may be NULL
 * (unbounded); the bounds are copied. The iterator starts unpositioned: call
 * kv_iter_seek / _seek_first / _seek_last / _seek_for_prev.
 */
int kv_iter_create(struct kv *kv, const void *lower, size_t llen, const void *upper, size_t ulen,
                   struct kv_iter **out);
void kv_iter_destroy(struct kv_iter *it);
void kv_iter_seek_first(struct kv_iter *it);
void kv_iter_seek_last(struct kv_iter *it);
/* Positions at the first key >= key. */
void kv_iter_seek(struct kv_iter *it, const void *key, size_t klen);
/* Positions at the last key <= key. */
void kv_iter_seek_for_prev(struct kv_iter *it, const void *key, size_t klen);
bool kv_iter_valid(const struct kv_iter *it);
void kv_iter_next(struct kv_iter *it);
void kv_iter_prev(struct kv_iter *it);
/* Key and value at the current position; borrowed until the iterator moves. */
const void *kv_iter_key(const struct kv_iter *it, size_t *len);
const void *kv_iter_value(const struct kv_iter *it, size_t *len);
/* 0, or -EIO if the iteration stopped on an error rather than at the end. */
int kv_iter_status(const struct kv_iter *it);

/* Flushes the memtable and compacts [begin, end) (NULL: everything). */
int kv_compact_range(struct kv *kv, const void *begin, size_t blen, const void *end, size_t elen);

/* Approximate bytes on disk of keys in [begin, end). */
uint64_t kv_approximate_size(struct kv *kv, const void *begin, size_t blen, const void *end,
                             size_t elen);

/* A RocksDB property as a string (malloc'ed; NULL if unknown), e.g.
 * "rocksdb.estimate-num-keys". */
char *kv_property(struct kv *kv, const char *name);

/* Memory RocksDB holds for one store, in bytes. */
struct kv_memory {
	uint64_t memtables;      /* written and not yet flushed, including those being flushed */
	uint64_t cache;          /* block cache in use (data, and filter and index blocks) */
	uint64_t cache_capacity; /* the block cache's bound */
	uint64_t readers;        /* open table files' memory outside the cache */
};

/*
 * Bounds the RocksDB memory of every store this process opens after the
 * call, whatever kv_open's options ask: block cache at most cache_bytes,
 * memtable at most write_buffer_bytes (RocksDB keeps up to 3 while one is
 * being flushed); 0 lifts a bound. For a process that holds several
 * services' stores (the all-in-one noetl), which their own programs size
 * for a host of their own. Stores already open keep their sizes. Any
 * thread.
 */
void kv_limit_memory(size_t cache_bytes, size_t write_buffer_bytes);

/*
 * Calls fn once for every store open in this process, with its directory
 * (borrowed for the call) and memory. fn runs under a lock that kv_open and
 * kv_close take: it must not open or close stores. Any thread.
 */
void kv_memory_each(void (*fn)(void *arg, const char *path, const struct kv_memory *m), void *arg);

struct metrics;

/*
 * Registers noetl_store_memory_bytes{store,kind} on r: kv_memory_each's
 * figures at scrape time, store being the last component of the directory.
 * 0 (also if it is registered already) or -errno.
 */
int kv_register_metrics(struct metrics *r);

#endif
