#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "metrics.h"
#include "testutil.h"

static char dir[256];
static struct kv *kv;

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	cr_assert_eq(kv_open(dir, NULL, &kv), 0);
}

static void teardown(void)
{
	kv_close(kv);
	testutil_rmtree(dir);
}

TestSuite(kv, .init = setup, .fini = teardown);

Test(kv, a_put_value_reads_back_and_a_deleted_one_is_gone)
{
	cr_assert_eq(kv_put(kv, "k", 1, "value", 5, true), 0);
	void *v = NULL;
	size_t n = 0;
	cr_assert_eq(kv_get(kv, "k", 1, &v, &n), 0);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(v, "value");
	free(v);
	cr_assert_eq(kv_delete(kv, "k", 1, false), 0);
	cr_assert_eq(kv_get(kv, "k", 1, &v, &n), -ENOENT);
}

Test(kv, a_batch_applies_all_its_operations_at_once)
{
	kv_put(kv, "gone", 4, "x", 1, false);
	struct kv_batch *b = kv_batch_create();
	kv_batch_put(b, "a", 1, "1", 1);
	kv_batch_put(b, "b", 1, "2", 1);
	kv_batch_delete(b, "gone", 4);
	cr_assert_eq(kv_batch_count(b), 3);
	cr_assert_eq(kv_write(kv, b, true), 0);
	kv_batch_destroy(b);
	void *v;
	size_t n;
	cr_assert_eq(kv_get(kv, "a", 1, &v, &n), 0);
	free(v);
	cr_assert_eq(kv_get(kv, "b", 1, &v, &n), 0);
	free(v);
	cr_assert_eq(kv_get(kv, "gone", 4, &v, &n), -ENOENT);
}

Test(kv, appended_batches_keep_every_operation_and_the_count)
{
	struct kv_batch *a = kv_batch_create(), *b = kv_batch_create();
	kv_batch_put(a, "x1", 2, "1", 1);
	kv_batch_put(b, "x2", 2, "2", 1);
	kv_batch_put(b, "x3", 2, "3", 1);
	kv_batch_append(a, b);
	cr_assert_eq(kv_batch_count(a), 3);
	cr_assert_eq(kv_write(kv, a, false), 0);
	kv_batch_destroy(a);
	kv_batch_destroy(b);
	for (int i = 1; i <= 3; i++) {
		char key[3] = {'x', (char)('0' + i), 0};
		void *v;
		size_t n;
		cr_assert_eq(kv_get(kv, key, 2, &v, &n), 0, "%s missing", key);
		free(v);
	}
}

/* Reads key as a NUL-terminated string, or NULL if it is absent. */
static char *get_str(const char *key)
{
	void *v = NULL;
	size_t n = 0;
	if (kv_get(kv, key, strlen(key), &v, &n) != 0)
		return NULL;
	char *s = malloc(n + 1);
	memcpy(s, v, n);
	s[n] = 0;
	free(v);
	return s;
}

static void assert_value(const char *key, const char *want)
{
	char *got = get_str(key);
	if (want == NULL)
		cr_assert_null(got, "%s: expected absent, found \"%s\"", key, got);
	else
		cr_assert(got != NULL && strcmp(got, want) == 0, "%s: expected \"%s\", found %s",
		          key, want, got != NULL ? got : "nothing");
	free(got);
}

Test(kv, a_sorted_batch_writes_the_same_as_the_batch_in_its_own_order)
{
	kv_put(kv, "d", 1, "old", 3, false);
	kv_put(kv, "e", 1, "old", 3, false);
	struct kv_batch *b = kv_batch_create();
	kv_batch_put(b, "k7", 2, "7", 1);
	kv_batch_put(b, "x", 1, "first", 5);
	kv_batch_put(b, "k3", 2, "3", 1);
	kv_batch_delete(b, "d", 1); /* a delete that the sort moves to the front */
	kv_batch_put(b, "k5", 2, "", 0);
	kv_batch_put(b, "x", 1, "second", 6); /* the later put of x wins */
	kv_batch_put(b, "e", 1, "new", 3);
	kv_batch_delete(b, "e", 1); /* and the later delete of e */
	kv_batch_put(b, "a", 1, "1", 1);
	size_t count = kv_batch_count(b), bytes = kv_batch_bytes(b);
	kv_batch_sort(b);
	cr_assert_eq(kv_batch_count(b), count);
	cr_assert_eq(kv_batch_bytes(b), bytes);
	cr_assert_eq(kv_write(kv, b, true), 0);
	kv_batch_destroy(b);
	assert_value("a", "1");
	assert_value("k3", "3");
	assert_value("k5", "");
	assert_value("k7", "7");
	assert_value("x", "second");
	assert_value("d", NULL);
	assert_value("e", NULL);
}

Test(kv, a_batch_with_a_range_delete_keeps_its_order_when_sorted)
{
	kv_put(kv, "r020", 4, "old", 3, false);
	kv_put(kv, "r050", 4, "old", 3, false);
	struct kv_batch *b = kv_batch_create(), *tail = kv_batch_create();
	kv_batch_put(b, "r000", 4, "before", 6);
	kv_batch_delete_range(b, "r010", 4, "r090", 4);
	kv_batch_put(tail, "r050", 4, "after", 5); /* written after the range delete */
	kv_batch_append(b, tail);                  /* appending carries the range */
	kv_batch_sort(b);
	cr_assert_eq(kv_write(kv, b, true), 0);
	kv_batch_destroy(b);
	kv_batch_destroy(tail);
	assert_value("r000", "before");
	assert_value("r020", NULL);
	assert_value("r050", "after");
}

Test(kv, an_iterator_stays_inside_its_bounds)
{
	const char *keys[] = {"a1", "b1", "b2", "b3", "c1"};
	for (int i = 0; i < 5; i++)
		kv_put(kv, keys[i], 2, "v", 1, false);
	struct kv_iter *it;
	cr_assert_eq(kv_iter_create(kv, "b", 1, "c", 1, &it), 0);
	int seen = 0;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		size_t n;
		const char *k = kv_iter_key(it, &n);
		cr_assert_eq(k[0], 'b');
		seen++;
	}
	cr_assert_eq(seen, 3);
	kv_iter_seek_last(it);
	cr_assert(kv_iter_valid(it));
	size_t n;
	cr_assert_eq(memcmp(kv_iter_key(it, &n), "b3", 2), 0);
	cr_assert_eq(kv_iter_status(it), 0);
	kv_iter_destroy(it);
}

Test(kv, a_range_delete_removes_exactly_the_range)
{
	for (int i = 0; i < 100; i++) {
		char key[8];
		snprintf(key, sizeof(key), "r%03d", i);
		kv_put(kv, key, 4, "v", 1, false);
	}
	struct kv_batch *b = kv_batch_create();
	kv_batch_delete_range(b, "r010", 4, "r090", 4);
	cr_assert_eq(kv_write(kv, b, true), 0);
	kv_batch_destroy(b);
	struct kv_iter *it;
	cr_assert_eq(kv_iter_create(kv, "r", 1, "s", 1, &it), 0);
	int seen = 0;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
		seen++;
	kv_iter_destroy(it);
	cr_assert_eq(seen, 20);
}

Test(kv, data_survives_close_and_reopen)
{
	cr_assert_eq(kv_put(kv, "durable", 7, "yes", 3, true), 0);
	kv_close(kv);
	kv = NULL;
	cr_assert_eq(kv_open(dir, NULL, &kv), 0);
	void *v;
	size_t n;
	cr_assert_eq(kv_get(kv, "durable", 7, &v, &n), 0);
	cr_assert_str_eq(v, "yes");
	free(v);
}

Test(kv, opening_a_path_that_is_a_file_fails_cleanly)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/afile", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	struct kv *other = NULL;
	cr_assert_eq(kv_open(path, NULL, &other), -EIO);
	cr_assert_null(other);
}

/* Bloom filters and indexes of table files are charged to the block cache:
 * kept beside it, they stayed in memory for every open table file, so a
 * store's memory grew with its size (the Recorder's by ~7 bytes a record). */
Test(kv, table_filters_and_indexes_live_in_the_block_cache)
{
	struct kv_batch *b = kv_batch_create();
	char key[32], val[64];
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 200000; i++) {
		int n = snprintf(key, sizeof(key), "key-%09d", i);
		kv_batch_put(b, key, (size_t)n, val, sizeof(val));
		if (i % 10000 == 9999) {
			cr_assert_eq(kv_write(kv, b, false), 0);
			kv_batch_clear(b);
		}
	}
	kv_batch_destroy(b);
	cr_assert_eq(kv_compact_range(kv, NULL, 0, NULL, 0), 0);
	void *v;
	size_t n;
	cr_assert_eq(kv_get(kv, "key-000123456", 13, &v, &n), 0); /* opens the table */
	free(v);
	char *readers = kv_property(kv, "rocksdb.estimate-table-readers-mem");
	cr_assert_not_null(readers);
	/* 200,000 keys: their filter alone is ~250 KB outside the cache */
	cr_assert_lt(strtoull(readers, NULL, 10), 64u << 10, "table readers hold %s bytes",
	             readers);
	free(readers);
}

struct found {
	const char *path;
	struct kv_memory m;
	int seen;
};

static void find_store(void *arg, const char *path, const struct kv_memory *m)
{
	struct found *f = arg;
	if (strcmp(path, f->path) == 0) {
		f->m = *m;
		f->seen++;
	}
}

Test(kv, memory_of_each_open_store_is_reported_until_it_closes)
{
	char val[1000];
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 100; i++) {
		char key[16];
		int n = snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(kv_put(kv, key, (size_t)n, val, sizeof(val), false), 0);
	}
	struct found f = {.path = dir};
	kv_memory_each(find_store, &f);
	cr_assert_eq(f.seen, 1);
	cr_assert_geq(f.m.memtables, 100 * sizeof(val), "memtables hold %llu bytes",
	              (unsigned long long)f.m.memtables);
	cr_assert_eq(f.m.cache_capacity, 8u << 20);
	kv_close(kv);
	kv = NULL;
	f.seen = 0;
	kv_memory_each(find_store, &f);
	cr_assert_eq(f.seen, 0);
}

Test(kv, a_memory_limit_bounds_the_cache_and_memtables_of_stores_opened_after_it)
{
	char capped[256], free_[256];
	testutil_tempdir(capped, sizeof(capped));
	testutil_tempdir(free_, sizeof(free_));
	kv_limit_memory(1u << 20, 256u << 10);
	struct kv_options big = {.cache_bytes = 32u << 20, .write_buffer_bytes = 32u << 20};
	struct kv *c;
	cr_assert_eq(kv_open(capped, &big, &c), 0);
	kv_limit_memory(0, 0);
	struct kv *u;
	cr_assert_eq(kv_open(free_, &big, &u), 0);

	/* 4 MiB written: with 256 KiB memtables RocksDB flushes (and stalls the
	 * writes while 3 are full), so far less stays in memory */
	char val[1024];
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 4096; i++) {
		char key[16];
		int n = snprintf(key, sizeof(key), "k%06d", i);
		cr_assert_eq(kv_put(c, key, (size_t)n, val, sizeof(val), false), 0);
	}
	struct found f = {.path = capped};
	kv_memory_each(find_store, &f);
	cr_assert_eq(f.seen, 1);
	cr_assert_eq(f.m.cache_capacity, 1u << 20);
	cr_assert_lt(f.m.memtables, 2u << 20, "memtables hold %llu bytes",
	             (unsigned long long)f.m.memtables);
	f = (struct found){.path = free_};
	kv_memory_each(find_store, &f);
	cr_assert_eq(f.m.cache_capacity, 32u << 20, "a store opened after the limit is lifted");
	kv_close(c);
	kv_close(u);
	testutil_rmtree(capped);
	testutil_rmtree(free_);
}

Test(kv, store_memory_is_a_metrics_family_named_by_the_directory)
{
	struct metrics *m;
	cr_assert_eq(metrics_create(0, &m), 0);
	cr_assert_eq(kv_register_metrics(m), 0);
	cr_assert_eq(kv_register_metrics(m), 0, "registering twice is harmless");
	char *text;
	size_t len;
	cr_assert_eq(metrics_render(m, &text, &len), 0);
	const char *base = strrchr(dir, '/') + 1;
	char series[300];
	snprintf(series, sizeof(series),
	         "noetl_store_memory_bytes{store=\"%s\",kind=\"memtables\"}", base);
	cr_assert_not_null(strstr(text, series), "no %s in:\n%s", series, text);
	free(text);
	metrics_destroy(m);
}
