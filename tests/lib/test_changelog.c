#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "kv.h"
#include "testutil.h"

static char dir[256];
static struct kv *kv;
static struct changelog *cl;

static void setup(void)
{
	testutil_tempdir(dir, sizeof(dir));
	cr_assert_eq(kv_open(dir, NULL, &kv), 0);
	cr_assert_eq(changelog_open(kv, "L", 1, NULL, &cl), 0);
}

static void teardown(void)
{
	changelog_close(cl);
	kv_close(kv);
	testutil_rmtree(dir);
}

TestSuite(changelog, .init = setup, .fini = teardown);

static uint64_t add(const char *topic, const char *body)
{
	struct kv_batch *b = kv_batch_create();
	uint64_t rev = changelog_add(cl, b, topic, body, strlen(body), 1);
	cr_assert_eq(kv_write(kv, b, true), 0);
	changelog_commit(cl);
	kv_batch_destroy(b);
	return rev;
}

Test(changelog, revisions_count_up_and_link_to_their_predecessors)
{
	cr_assert_eq(add("a", "1"), 1);
	cr_assert_eq(add("b", "2"), 2);
	cr_assert_eq(add("a", "3"), 3);
	cr_assert_eq(changelog_head(cl), 3);
	Noetl__ChangesReply *r;
	cr_assert_eq(changelog_read(cl, 0, NULL, 0, &r), 0);
	cr_assert_eq(r->n_changes, 3);
	cr_assert_eq(r->changes[2]->prev_revision, 2);
	cr_assert_eq(r->changes[2]->prev_topic_revision, 1);
	cr_assert_eq(r->changes[1]->prev_topic_revision, 0);
	cr_assert_eq(r->head, 3);
	cr_assert_not(r->more);
	changelog_reply_free(r);
}

Test(changelog, a_topic_read_returns_only_that_topic_and_pages)
{
	for (int i = 0; i < 30; i++)
		add(i % 3 == 0 ? "x" : "y", "v");
	Noetl__ChangesReply *r;
	cr_assert_eq(changelog_read(cl, 0, "x", 4, &r), 0);
	cr_assert_eq(r->n_changes, 4);
	cr_assert(r->more);
	for (size_t i = 0; i < r->n_changes; i++)
		cr_assert_str_eq(r->changes[i]->topic, "x");
	uint64_t last = r->changes[3]->revision;
	changelog_reply_free(r);
	cr_assert_eq(changelog_read(cl, last, "x", 100, &r), 0);
	cr_assert_eq(r->n_changes, 6);
	cr_assert_not(r->more);
	changelog_reply_free(r);
}

Test(changelog, an_aborted_change_gives_its_revision_back)
{
	add("a", "1");
	struct kv_batch *b = kv_batch_create();
	cr_assert_eq(changelog_add(cl, b, "a", "x", 1, 1), 2);
	changelog_abort(cl);
	kv_batch_destroy(b);
	cr_assert_eq(add("a", "2"), 2);
	Noetl__ChangesReply *r;
	cr_assert_eq(changelog_read(cl, 1, "a", 0, &r), 0);
	cr_assert_eq(r->n_changes, 1);
	cr_assert_eq(r->changes[0]->prev_topic_revision, 1);
	changelog_reply_free(r);
}

Test(changelog, a_reopened_log_continues_where_it_stopped)
{
	add("a", "1");
	add("b", "2");
	changelog_close(cl);
	cr_assert_eq(changelog_open(kv, "L", 1, NULL, &cl), 0);
	cr_assert_eq(changelog_head(cl), 2);
	cr_assert_eq(add("a", "3"), 3);
	Noetl__ChangesReply *r;
	cr_assert_eq(changelog_read(cl, 2, NULL, 0, &r), 0);
	cr_assert_eq(r->changes[0]->prev_topic_revision, 1, "the topic's last revision is found");
	changelog_reply_free(r);
}

Test(changelog, trim_removes_old_changes_and_keeps_the_head)
{
	for (int i = 0; i < 50; i++)
		add(i % 2 ? "odd" : "even", "v");
	cr_assert_eq(changelog_trim(cl, 40), 0);
	Noetl__ChangesReply *r;
	cr_assert_eq(changelog_read(cl, 0, NULL, 0, &r), 0);
	cr_assert_eq(r->n_changes, 11);
	cr_assert_eq(r->changes[0]->revision, 40);
	changelog_reply_free(r);
	/* revision r was added with i = r - 1, so "odd" holds the even
	 * revisions: 40, 42, ..., 50 remain */
	cr_assert_eq(changelog_read(cl, 0, "odd", 0, &r), 0);
	cr_assert_eq(r->n_changes, 6);
	cr_assert_eq(r->changes[0]->revision, 40);
	changelog_reply_free(r);
	cr_assert_eq(changelog_trim(cl, 1000), 0);
	cr_assert_eq(changelog_head(cl), 50);
	cr_assert_eq(add("odd", "v"), 51);
}

Test(changelog, get_reads_a_committed_change_by_revision_and_nothing_beyond_the_head)
{
	add("a", "one");
	add("b", "two");
	Noetl__Change *c = NULL;
	cr_assert_eq(changelog_get(cl, 2, &c), 0);
	cr_assert_eq(c->revision, 2);
	cr_assert_str_eq(c->topic, "b");
	cr_assert_eq(c->body.len, 3);
	cr_assert_eq(memcmp(c->body.data, "two", 3), 0);
	noetl__change__free_unpacked(c, NULL);
	cr_assert_eq(changelog_get(cl, 0, &c), -ENOENT);
	cr_assert_eq(changelog_get(cl, 3, &c), -ENOENT);

	/* written but not committed: not there yet */
	struct kv_batch *b = kv_batch_create();
	cr_assert_eq(changelog_add(cl, b, "a", "x", 1, 1), 3);
	cr_assert_eq(kv_write(kv, b, true), 0);
	cr_assert_eq(changelog_get(cl, 3, &c), -ENOENT);
	changelog_commit(cl);
	cr_assert_eq(changelog_get(cl, 3, &c), 0);
	noetl__change__free_unpacked(c, NULL);
	kv_batch_destroy(b);
}

Test(changelog, forget_deletes_one_topics_changes_and_keeps_the_others_and_the_head)
{
	for (int i = 0; i < 20; i++)
		add(i % 2 ? "keep" : "drop", "v");
	/* drop: revisions 1, 3, ..., 19 */
	uint64_t revs[10];
	for (int i = 0; i < 10; i++)
		revs[i] = (uint64_t)(2 * i + 1);
	struct kv_batch *b = kv_batch_create();
	changelog_forget(cl, b, "drop", revs, 10);
	cr_assert_eq(kv_write(kv, b, true), 0);
	kv_batch_destroy(b);
	Noetl__ChangesReply *r;
	cr_assert_eq(changelog_read(cl, 0, "drop", 0, &r), 0);
	cr_assert_eq(r->n_changes, 0);
	changelog_reply_free(r);
	cr_assert_eq(changelog_read(cl, 0, "keep", 0, &r), 0);
	cr_assert_eq(r->n_changes, 10);
	changelog_reply_free(r);
	cr_assert_eq(changelog_read(cl, 0, NULL, 0, &r), 0);
	cr_assert_eq(r->n_changes, 10);
	changelog_reply_free(r);

	/* a run of consecutive revisions (one range delete) and the head */
	for (int i = 0; i < 5; i++)
		add("run", "v"); /* 21 .. 25 */
	uint64_t run[] = {21, 22, 23, 25};
	b = kv_batch_create();
	changelog_forget(cl, b, "run", run, 4);
	cr_assert_eq(kv_write(kv, b, true), 0);
	kv_batch_destroy(b);
	cr_assert_eq(changelog_read(cl, 0, "run", 0, &r), 0);
	cr_assert_eq(r->n_changes, 2, "24, and 25: the head stays");
	cr_assert_eq(r->changes[0]->revision, 24);
	cr_assert_eq(r->changes[1]->revision, 25);
	changelog_reply_free(r);
	cr_assert_eq(changelog_read(cl, 0, "keep", 0, &r), 0);
	cr_assert_eq(r->n_changes, 10, "another topic's changes are untouched");
	changelog_reply_free(r);

	/* the head survives a reopen */
	changelog_close(cl);
	cr_assert_eq(changelog_open(kv, "L", 1, NULL, &cl), 0);
	cr_assert_eq(changelog_head(cl), 25);
}

/* changelog_open_store: a store and its log opened and closed together. */

Test(changelog_store, a_reopened_store_keeps_its_head)
{
	char d[256];
	testutil_tempdir(d, sizeof(d));
	struct kv *k;
	struct changelog *l;
	cr_assert_eq(changelog_open_store(d, "L", 1, NULL, &k, &l), 0);
	struct kv_batch *b = kv_batch_create();
	cr_assert_eq(changelog_add(l, b, "t", "x", 1, 1), 1);
	cr_assert_eq(kv_write(k, b, true), 0);
	changelog_commit(l);
	kv_batch_destroy(b);
	changelog_close_store(k, l);

	cr_assert_eq(changelog_open_store(d, "L", 1, NULL, &k, &l), 0);
	cr_expect_eq(changelog_head(l), 1);
	changelog_close_store(k, l);
	testutil_rmtree(d);
}

Test(changelog_store, a_bad_prefix_leaves_nothing_open)
{
	char d[256];
	testutil_tempdir(d, sizeof(d));
	struct kv *k = NULL;
	struct changelog *l = NULL;
	cr_assert_eq(changelog_open_store(d, "", 0, NULL, &k, &l), -EINVAL);
	cr_expect_null(k, "out-parameters are written only on success");
	cr_expect_null(l);
	/* the store was closed again: it opens */
	cr_assert_eq(changelog_open_store(d, "L", 1, NULL, &k, &l), 0);
	changelog_close_store(k, l);
	changelog_close_store(NULL, NULL);
	testutil_rmtree(d);
}
