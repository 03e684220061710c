/*
 * kv: RocksDB behind a small, errno-returning interface. See kv.h.
 */
#include "kv.h"

#include <errno.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

struct kv {
	rocksdb_t *db;                              /* the database */
	rocksdb_options_t *opts;                    /* open options, kept for the life of db */
	rocksdb_block_based_table_options_t *table; /* table options (owns the cache ref) */
	rocksdb_cache_t *cache;                     /* block cache */
	rocksdb_writeoptions_t *wsync;              /* synced writes */
	rocksdb_writeoptions_t *wasync;             /* unsynced writes */
	rocksdb_readoptions_t *read;                /* plain reads */
	char *path;                                 /* directory, for messages */
	struct kv *next_open;                       /* in open_stores, for kv_memory_each */
};

/* The stores open in this process, for kv_memory_each. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kv *open_stores;

/* kv_limit_memory's bounds for stores opened from now on (0: none); under
 * open_mu. */
static size_t limit_cache, limit_write_buffer;

struct kv_batch {
	rocksdb_writebatch_t *wb; /* the RocksDB batch */
	size_t bytes;             /* keys + values added */
	bool ranged;              /* holds a range delete (kv_batch_sort leaves it) */
};

struct kv_iter {
	rocksdb_iterator_t *it;    /* the iterator */
	rocksdb_readoptions_t *ro; /* its read options, which hold the bounds */
	char *lower;               /* copied bounds: RocksDB keeps pointers to them */
	char *upper;
};

/* Converts a RocksDB error string: logs it once with the operation and path,
 * frees it, and returns -EIO. */
static int fail(struct kv *kv, const char *op, char *err)
{
	log_error("kv: %s in '%s' failed: %s", op, kv != NULL ? kv->path : "?", err);
	rocksdb_free(err);
	return -EIO;
}

int kv_open(const char *path, const struct kv_options *opt, struct kv **out)
{
	struct kv_options o = {0};
	if (opt != NULL)
		o = *opt;
	if (o.cache_bytes == 0)
		o.cache_bytes = 8u << 20;
	if (o.write_buffer_bytes == 0)
		o.write_buffer_bytes = 8u << 20;
	pthread_mutex_lock(&open_mu);
	if (limit_cache > 0 && o.cache_bytes > limit_cache)
		o.cache_bytes = limit_cache;
	if (limit_write_buffer > 0 && o.write_buffer_bytes > limit_write_buffer)
		o.write_buffer_bytes = limit_write_buffer;
	pthread_mutex_unlock(&open_mu);

	struct kv *kv = calloc(1, sizeof(*kv));
	if (kv == NULL)
		return -ENOMEM;
	kv->path = strdup(path);
	kv->opts = rocksdb_options_create();
	kv->cache = rocksdb_cache_create_lru(o.cache_bytes);
	kv->table = rocksdb_block_based_options_create();
	kv->wsync = rocksdb_writeoptions_create();
	kv->wasync = rocksdb_writeoptions_create();
	kv->read = rocksdb_readoptions_create();
	if (kv->path == NULL) {
		kv_close(kv);
		return -ENOMEM;
	}
	rocksdb_block_based_options_set_block_cache(kv->table, kv->cache);
	rocksdb_block_based_options_set_filter_policy(kv->table,
	                                              rocksdb_filterpolicy_create_bloom(10));
	/* Bloom filters and indexes go in the block cache, within its bound.
	 * Beside it (RocksDB's default) every open table file keeps them in
	 * memory for good, so memory grows with the store: ~7 bytes a record
	 * in the Recorder, 40 MiB after a million events (bench/e2e). They are
	 * partitioned so that a read loads one 4 KiB partition of each, not a
	 * whole file's filter (megabytes) that the cache then evicts again;
	 * the small top-level partition indexes, and level 0 files' filters
	 * and indexes (every read consults them), stay pinned. */
	rocksdb_block_based_options_set_index_type(
	        kv->table, rocksdb_block_based_table_index_type_two_level_index_search);
	rocksdb_block_based_options_set_partition_filters(kv->table, 1);
	rocksdb_block_based_options_set_metadata_block_size(kv->table, 4096);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(kv->table, 1);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(kv->table,
	                                                                                 1);
	rocksdb_block_based_options_set_pin_top_level_index_and_filter(kv->table, 1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(kv->table, 1);
	rocksdb_options_set_block_based_table_factory(kv->opts, kv->table);
	rocksdb_options_set_create_if_missing(kv->opts, 1);
	rocksdb_options_set_write_buffer_size(kv->opts, o.write_buffer_bytes);
	rocksdb_options_set_max_write_buffer_number(kv->opts, 3);
	rocksdb_options_set_max_background_jobs(kv->opts, 2);
	rocksdb_options_set_keep_log_file_num(kv->opts, 3);
	rocksdb_options_set_max_open_files(kv->opts, 256);
	/* Every store writes through one group-commit thread, so concurrent
	 * memtable inserts buy nothing; they cost a full skip-list search per
	 * key, where a plain insert starts from where the last one ended
	 * (kv_batch_sort makes batches use that). */
	rocksdb_options_set_allow_concurrent_memtable_write(kv->opts, 0);
	/* Keys are prefixed by kind and tenant: compaction of deleted ranges
	 * should happen soon after they are dropped. */
	rocksdb_options_set_level_compaction_dynamic_level_bytes(kv->opts, 1);
	/* Each store's keys are several ordered runs (a record, its indexes,
	 * the change log), so every flushed level-0 file overlaps the end of
	 * each run in the level below, and compacting it rewrites the files it
	 * overlaps there: of 64 MiB each by default, a hundred times what was
	 * flushed from a small memtable. Compaction then lags, level-0 files
	 * pile up and RocksDB slows writes down (the Recorder of the
	 * all-in-one, bench/e2e). Files of four memtables keep that rewrite
	 * in proportion. */
	uint64_t target = (uint64_t)o.write_buffer_bytes * 4;
	rocksdb_options_set_target_file_size_base(kv->opts,
	                                          target < (64u << 20) ? target : 64u << 20);
	rocksdb_writeoptions_set_sync(kv->wsync, 1);
	rocksdb_writeoptions_set_sync(kv->wasync, 0);

	char *err = NULL;
	if (o.read_only)
		kv->db = rocksdb_open_for_read_only(kv->opts, path, 0, &err);
	else
		kv->db = rocksdb_open(kv->opts, path, &err);
	if (err != NULL) {
		int rc = fail(kv, "open", err);
		kv_close(kv);
		return rc;
	}
	pthread_mutex_lock(&open_mu);
	kv->next_open = open_stores;
	open_stores = kv;
	pthread_mutex_unlock(&open_mu);
	*out = kv;
	return 0;
}

void kv_close(struct kv *kv)
{
	if (kv == NULL)
		return;
	pthread_mutex_lock(&open_mu);
	for (struct kv **p = &open_stores; *p != NULL; p = &(*p)->next_open)
		if (*p == kv) {
			*p = kv->next_open;
			break;
		}
	pthread_mutex_unlock(&open_mu);
	if (kv->db != NULL)
		rocksdb_close(kv->db);
	rocksdb_readoptions_destroy(kv->read);
	rocksdb_writeoptions_destroy(kv->wasync);
	rocksdb_writeoptions_destroy(kv->wsync);
	rocksdb_options_destroy(kv->opts);
	rocksdb_block_based_options_destroy(kv->table);
	rocksdb_cache_destroy(kv->cache);
	free(kv->path);
	free(kv);
}

int kv_get(struct kv *kv, const void *key, size_t klen, void **val, size_t *len)
{
	char *err = NULL;
	size_t n = 0;
	char *v = rocksdb_get(kv->db, kv->read, key, klen, &n, &err);
	if (err != NULL)
		return fail(kv, "get", err);
	if (v == NULL)
		return -ENOENT;
	/* Copy into our own allocation: RocksDB's must be freed with
	 * rocksdb_free, and we add a NUL for text values. */
	char *copy = malloc(n + 1);
	if (copy == NULL) {
		rocksdb_free(v);
		return -ENOMEM;
	}
	memcpy(copy, v, n);
	copy[n] = '\0';
	rocksdb_free(v);
	*len = n;
	*val = copy;
	return 0;
}

int kv_put(struct kv *kv, const void *key, size_t klen, const void *val, size_t vlen, bool sync)
{
	char *err = NULL;
	rocksdb_put(kv->db, sync ? kv->wsync : kv->wasync, key, klen, val, vlen, &err);
	return err != NULL ? fail(kv, "put", err) : 0;
}

int kv_delete(struct kv *kv, const void *key, size_t klen, bool sync)
{
	char *err = NULL;
	rocksdb_delete(kv->db, sync ? kv->wsync : kv->wasync, key, klen, &err);
	return err != NULL ? fail(kv, "delete", err) : 0;
}

struct kv_batch *kv_batch_create(void)
{
	struct kv_batch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		abort();
	b->wb = rocksdb_writebatch_create();
	return b;
}

void kv_batch_destroy(struct kv_batch *b)
{
	if (b == NULL)
		return;
	rocksdb_writebatch_destroy(b->wb);
	free(b);
}

void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
	rocksdb_writebatch_put(b->wb, key, klen, val, vlen);
	b->bytes += klen + vlen;
}

void kv_batch_delete(struct kv_batch *b, const void *key, size_t klen)
{
	rocksdb_writebatch_delete(b->wb, key, klen);
	b->bytes += klen;
}

void kv_batch_delete_range(struct kv_batch *b, const void *begin, size_t blen, const void *end,
                           size_t elen)
{
	rocksdb_writebatch_delete_range(b->wb, begin, blen, end, elen);
	b->bytes += blen + elen;
	b->ranged = true;
}

size_t kv_batch_count(const struct kv_batch *b)
{
	return (size_t)rocksdb_writebatch_count(b->wb);
}

size_t kv_batch_bytes(const struct kv_batch *b)
{
	return b->bytes;
}

void kv_batch_append(struct kv_batch *dst, const struct kv_batch *src)
{
	size_t n = 0;
	const char *rep = rocksdb_writebatch_data(src->wb, &n);
	/* A batch's representation is a 12-byte header (sequence, count)
	 * followed by its records; appending the records is what RocksDB's
	 * own WriteBatchInternal::Append does. Rebuilding dst from the
	 * concatenation keeps the count right. */
	if (rocksdb_writebatch_count(src->wb) == 0)
		return;
	size_t dn = 0;
	const char *drep = rocksdb_writebatch_data(dst->wb, &dn);
	size_t total = dn + (n - 12);
	char *buf = malloc(total);
	if (buf == NULL)
		abort();
	memcpy(buf, drep, dn);
	memcpy(buf + dn, rep + 12, n - 12);
	uint32_t count = (uint32_t)rocksdb_writebatch_count(dst->wb) +
	                 (uint32_t)rocksdb_writebatch_count(src->wb);
	/* count is little-endian at offset 8 */
	buf[8] = (char)(count & 0xff);
	buf[9] = (char)((count >> 8) & 0xff);
	buf[10] = (char)((count >> 16) & 0xff);
	buf[11] = (char)((count >> 24) & 0xff);
	rocksdb_writebatch_t *merged = rocksdb_writebatch_create_from(buf, total);
	free(buf);
	rocksdb_writebatch_destroy(dst->wb);
	dst->wb = merged;
	dst->bytes += src->bytes;
	dst->ranged = dst->ranged || src->ranged;
}

/* One operation of a batch being sorted; key and value point into the
 * batch's own representation, which outlives the sort. */
struct op {
	const char *key, *val; /* val NULL: a delete */
	size_t klen, vlen;
	size_t seq; /* position in the batch: equal keys keep their order */
};

struct ops {
	struct op *v;
	size_t n, cap;
	bool failed;
};

static void collect(struct ops *o, const char *k, size_t klen, const char *v, size_t vlen)
{
	if (o->n == o->cap) {
		size_t cap = o->cap > 0 ? o->cap * 2 : 64;
		struct op *nv = realloc(o->v, cap * sizeof(*nv));
		if (nv == NULL) {
			o->failed = true;
			return;
		}
		o->v = nv;
		o->cap = cap;
	}
	o->v[o->n] = (struct op){.key = k, .klen = klen, .val = v, .vlen = vlen, .seq = o->n};
	o->n++;
}

static void collect_put(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
	collect(arg, k, klen, v != NULL ? v : "", vlen);
}

static void collect_delete(void *arg, const char *k, size_t klen)
{
	collect(arg, k, klen, NULL, 0);
}

static int op_cmp(const void *pa, const void *pb)
{
	const struct op *a = pa, *b = pb;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->key, b->key, n);
	if (c != 0)
		return c;
	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

void kv_batch_sort(struct kv_batch *b)
{
	if (b->ranged || rocksdb_writebatch_count(b->wb) < 2)
		return;
	struct ops o = {0};
	rocksdb_writebatch_iterate(b->wb, &o, collect_put, collect_delete);
	/* Iteration reports puts and deletes only: anything else in the batch
	 * would be lost by the rebuild, so such a batch stays as it is. */
	if (!o.failed && o.n == (size_t)rocksdb_writebatch_count(b->wb)) {
		qsort(o.v, o.n, sizeof(*o.v), op_cmp);
		rocksdb_writebatch_t *sorted = rocksdb_writebatch_create();
		for (size_t i = 0; i < o.n; i++) {
			if (o.v[i].val != NULL)
				rocksdb_writebatch_put(sorted, o.v[i].key, o.v[i].klen, o.v[i].val,
				                       o.v[i].vlen);
			else
				rocksdb_writebatch_delete(sorted, o.v[i].key, o.v[i].klen);
		}
		rocksdb_writebatch_destroy(b->wb);
		b->wb = sorted;
	}
	free(o.v); /* out of memory: the batch stays as it was, which is as correct */
}

void kv_batch_clear(struct kv_batch *b)
{
	rocksdb_writebatch_clear(b->wb);
	b->bytes = 0;
	b->ranged = false;
}

int kv_write(struct kv *kv, struct kv_batch *b, bool sync)
{
	char *err = NULL;
	rocksdb_write(kv->db, sync ? kv->wsync : kv->wasync, b->wb, &err);
	return err != NULL ? fail(kv, "write", err) : 0;
}

int kv_iter_create(struct kv *kv, const void *lower, size_t llen, const void *upper, size_t ulen,
                   struct kv_iter **out)
{
	struct kv_iter *it = calloc(1, sizeof(*it));
	if (it == NULL)
		return -ENOMEM;
	it->ro = rocksdb_readoptions_create();
	if (lower != NULL) {
		it->lower = malloc(llen > 0 ? llen : 1);
		if (it->lower == NULL)
			goto nomem;
		memcpy(it->lower, lower, llen);
		rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lower, llen);
	}
	if (upper != NULL) {
		it->upper = malloc(ulen > 0 ? ulen : 1);
		if (it->upper == NULL)
			goto nomem;
		memcpy(it->upper, upper, ulen);
		rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->upper, ulen);
	}
	it->it = rocksdb_create_iterator(kv->db, it->ro);
	*out = it;
	return 0;
nomem:
	kv_iter_destroy(it);
	return -ENOMEM;
}

void kv_iter_destroy(struct kv_iter *it)
{
	if (it == NULL)
		return;
	if (it->it != NULL)
		rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ro);
	free(it->lower);
	free(it->upper);
	free(it);
}

void kv_iter_seek_first(struct kv_iter *it)
{
	rocksdb_iter_seek_to_first(it->it);
}

void kv_iter_seek_last(struct kv_iter *it)
{
	rocksdb_iter_seek_to_last(it->it);
}

void kv_iter_seek(struct kv_iter *it, const void *key, size_t klen)
{
	rocksdb_iter_seek(it->it, key, klen);
}

void kv_iter_seek_for_prev(struct kv_iter *it, const void *key, size_t klen)
{
	rocksdb_iter_seek_for_prev(it->it, key, klen);
}

bool kv_iter_valid(const struct kv_iter *it)
{
	return rocksdb_iter_valid(it->it) != 0;
}

void kv_iter_next(struct kv_iter *it)
{
	rocksdb_iter_next(it->it);
}

void kv_iter_prev(struct kv_iter *it)
{
	rocksdb_iter_prev(it->it);
}

const void *kv_iter_key(const struct kv_iter *it, size_t *len)
{
	return rocksdb_iter_key(it->it, len);
}

const void *kv_iter_value(const struct kv_iter *it, size_t *len)
{
	return rocksdb_iter_value(it->it, len);
}

int kv_iter_status(const struct kv_iter *it)
{
	char *err = NULL;
	rocksdb_iter_get_error(it->it, &err);
	return err != NULL ? fail(NULL, "iterate", err) : 0;
}

int kv_compact_range(struct kv *kv, const void *begin, size_t blen, const void *end, size_t elen)
{
	rocksdb_compact_range(kv->db, begin, blen, end, elen);
	return 0;
}

uint64_t kv_approximate_size(struct kv *kv, const void *begin, size_t blen, const void *end,
                             size_t elen)
{
	const char *starts[1] = {begin};
	const char *limits[1] = {end};
	size_t slen[1] = {blen};
	size_t llen[1] = {elen};
	uint64_t size = 0;
	char *err = NULL;
	rocksdb_approximate_sizes(kv->db, 1, starts, slen, limits, llen, &size, &err);
	if (err != NULL) {
		fail(kv, "approximate sizes", err);
		return 0;
	}
	return size;
}

char *kv_property(struct kv *kv, const char *name)
{
	char *v = rocksdb_property_value(kv->db, name);
	if (v == NULL)
		return NULL;
	char *copy = strdup(v);
	rocksdb_free(v);
	return copy;
}

/* --- memory ---------------------------------------------------------------------------- */

static uint64_t property_int(struct kv *kv, const char *name)
{
	uint64_t v = 0;
	if (rocksdb_property_int(kv->db, name, &v) != 0)
		return 0;
	return v;
}

void kv_limit_memory(size_t cache_bytes, size_t write_buffer_bytes)
{
	pthread_mutex_lock(&open_mu);
	limit_cache = cache_bytes;
	limit_write_buffer = write_buffer_bytes;
	pthread_mutex_unlock(&open_mu);
}

void kv_memory_each(void (*fn)(void *arg, const char *path, const struct kv_memory *m), void *arg)
{
	pthread_mutex_lock(&open_mu);
	for (struct kv *kv = open_stores; kv != NULL; kv = kv->next_open) {
		struct kv_memory m = {
		        .memtables = property_int(kv, "rocksdb.size-all-mem-tables"),
		        .cache = rocksdb_cache_get_usage(kv->cache),
		        .cache_capacity = rocksdb_cache_get_capacity(kv->cache),
		        .readers = property_int(kv, "rocksdb.estimate-table-readers-mem"),
		};
		fn(arg, kv->path, &m);
	}
	pthread_mutex_unlock(&open_mu);
}

static void emit_store(void *arg, const char *path, const struct kv_memory *m)
{
	const char *slash = strrchr(path, '/');
	const char *store = slash != NULL && slash[1] != '\0' ? slash + 1 : path;
	metrics_emit(arg, (const char *[]){store, "memtables"}, (double)m->memtables);
	metrics_emit(arg, (const char *[]){store, "block_cache"}, (double)m->cache);
	metrics_emit(arg, (const char *[]){store, "table_readers"}, (double)m->readers);
}

static void m_memory(struct metrics_emitter *e, void *arg)
{
	(void)arg;
	kv_memory_each(emit_store, e);
}

int kv_register_metrics(struct metrics *r)
{
	int rc = metrics_callback(r, "noetl_store_memory_bytes",
	                          "Memory RocksDB holds per store: memtables (written, not yet "
	                          "flushed), block cache (bounded), table readers (outside the "
	                          "cache).",
	                          "store,kind", METRICS_GAUGE, m_memory, NULL);
	return rc == -EEXIST ? 0 : rc;
}
