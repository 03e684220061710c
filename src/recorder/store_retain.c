/*
 * recorder store retention: deleting each tenant's oldest records by age and
 * by size.
 *
 * A pass visits every tenant that has records. For each it merges the
 * tenant's three 'r' ranges (executions, log lines, timeline entries; each
 * sorted by time) into one oldest-first walk and deletes records from the
 * front while they are older than the age bound or the tenant's charge is
 * over the size bound. What is deleted is therefore a prefix of each range,
 * so the 'r', 'f' and 'd' keys go with one range delete per range; the
 * change log drops the revisions through changelog_forget (runs become range
 * deletes), and the 'e' and 'a' entries, which sort by event and by global
 * time, go with point deletes named by the meta value.
 *
 * Steps are bounded (STEP records) and each holds the write mutex only for
 * its own walk and one unsynced write, so appends go on between steps.
 * Unsynced is enough: a step lost in a crash leaves the records and their
 * usage as they were, and the next pass deletes them again. The newest
 * record of the whole store is never deleted, because the change log reads
 * its head revision from it at open; it goes in a later pass, after newer
 * records arrived.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_int.h"

#define STEP 1000 /* records per step */

static const char kinds[3] = {RK_EXEC, RK_LOG, RK_TIMELINE};

struct step {
	struct kv_iter *it[3]; /* one per kind */
	struct key prefix[3];  /* 'r' tenant \0 kind */
	uint8_t last[3][16];   /* position of the last record taken, per kind */
	bool has[3];           /* a record of that kind was taken */
	uint64_t revs[STEP];   /* revisions taken */
	size_t n;
	uint64_t bytes; /* their charge */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The kind (0..2) whose next record is the oldest, or -1 if none is left. */
static int oldest(struct step *st)
{
	int best = -1;
	const uint8_t *bk = NULL;
	for (int i = 0; i < 3; i++) {
		if (!kv_iter_valid(st->it[i]))
			continue;
		size_t kl;
		const uint8_t *k = kv_iter_key(st->it[i], &kl);
		if (kl != st->prefix[i].n + 16)
			continue;
		k += st->prefix[i].n;
		if (best < 0 || memcmp(k, bk, 16) < 0) {
			best = i;
			bk = k;
		}
	}
	return best;
}

/* Adds the deletion of everything taken to b. */
static void step_deletes(struct recorder_store *s, struct step *st, const char *tenant,
                         struct kv_batch *b)
{
	for (int i = 0; i < 3; i++) {
		if (!st->has[i])
			continue;
		/* end = the last position taken, plus one revision */
		uint8_t end[16];
		memcpy(end, st->last[i], 16);
		util_put_be64(end + 8, util_get_be64(end + 8) + 1);
		struct key lo = st->prefix[i], hi = st->prefix[i];
		memcpy(hi.b + hi.n, end, 16);
		hi.n += 16;
		kv_batch_delete_range(b, lo.b, lo.n, hi.b, hi.n);
		if (kinds[i] != RK_EXEC)
			continue;
		char prefixes[2] = {KP_FAILED, KP_DEAD};
		for (int j = 0; j < 2; j++) {
			key_init(&lo, prefixes[j]);
			key_name(&lo, tenant, RECORDER_TENANT_MAX);
			hi = lo;
			memcpy(hi.b + hi.n, end, 16);
			hi.n += 16;
			kv_batch_delete_range(b, lo.b, lo.n, hi.b, hi.n);
		}
	}
	qsort(st->revs, st->n, sizeof(st->revs[0]), cmp_u64);
	changelog_forget(s->cl, b, tenant, st->revs, st->n);
}

/* Takes the record under it[i] into the step: its point deletes go to b. */
static void take(struct step *st, int i, const char *tenant, struct kv_batch *b)
{
	size_t kl, vl;
	const uint8_t *k = kv_iter_key(st->it[i], &kl);
	const uint8_t *v = kv_iter_value(st->it[i], &vl);
	const uint8_t *pos = k + st->prefix[i].n;
	int64_t time = (int64_t)util_get_be64(pos);
	uint64_t rev = util_get_be64(pos + 8);
	struct meta m;
	struct key key;
	if (store_meta_decode(v, vl, &m)) {
		if (m.event[0] != '\0') {
			store_key_event(&key, m.event, tenant, rev);
			kv_batch_delete(b, key.b, key.n);
		}
		if (m.related[0] != '\0') {
			store_key_event(&key, m.related, tenant, rev);
			kv_batch_delete(b, key.b, key.n);
		}
		st->bytes += m.charge;
	} else {
		log_warn("recorder: revision %llu of tenant '%s' has a malformed index entry; "
		         "its event index entries stay",
		         (unsigned long long)rev, tenant);
	}
	if (kinds[i] == RK_EXEC) {
		store_key_all(&key, time, rev);
		kv_batch_delete(b, key.b, key.n);
	}
	memcpy(st->last[i], pos, 16);
	st->has[i] = true;
	st->revs[st->n++] = rev;
}

/*
 * One bounded step for tenant: deletes up to STEP of its oldest records that
 * are older than cutoff or beyond max_bytes. *done is set when nothing is
 * left to delete.
 */
static int retain_step(struct recorder_store *s, const char *tenant, int64_t cutoff,
                       uint64_t max_bytes, struct recorder_retain_result *res, bool *done)
{
	struct step *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	int rc = 0;
	*done = true;
	pthread_mutex_lock(&s->lock);
	struct usage *u = store_usage_get(s, tenant, false);
	if (u == NULL || u->records == 0)
		goto out;
	uint64_t head = changelog_head(s->cl);
	for (int i = 0; i < 3 && rc == 0; i++) {
		key_init(&st->prefix[i], KP_RECORD);
		key_name(&st->prefix[i], tenant, RECORDER_TENANT_MAX);
		key_u8(&st->prefix[i], (uint8_t)kinds[i]);
		struct key end;
		key_prefix_end(&st->prefix[i], &end);
		rc = kv_iter_create(s->kv, st->prefix[i].b, st->prefix[i].n, end.b, end.n,
		                    &st->it[i]);
		if (rc == 0)
			kv_iter_seek_first(st->it[i]);
	}
	if (rc != 0)
		goto out;
	struct kv_batch *b = s->batch;
	kv_batch_clear(b);
	uint64_t bytes = u->bytes;
	while (st->n < STEP) {
		int i = oldest(st);
		if (i < 0)
			break;
		size_t kl;
		const uint8_t *pos = (const uint8_t *)kv_iter_key(st->it[i], &kl) + st->prefix[i].n;
		int64_t time = (int64_t)util_get_be64(pos);
		uint64_t rev = util_get_be64(pos + 8);
		bool expired = time < cutoff || (max_bytes > 0 && bytes > max_bytes);
		if (!expired || rev >= head)
			break;
		uint64_t before = st->bytes;
		take(st, i, tenant, b);
		bytes -= st->bytes - before;
		kv_iter_next(st->it[i]);
	}
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = kv_iter_status(st->it[i]);
	if (rc != 0 || st->n == 0)
		goto out;
	step_deletes(s, st, tenant, b);
	store_usage_add(s, u, -(int64_t)st->n, -(int64_t)st->bytes);
	store_usage_put(s, b);
	rc = kv_write(s->kv, b, false);
	store_usage_end(s, rc == 0);
	if (rc == 0 && res != NULL) {
		res->records += st->n;
		res->bytes += st->bytes;
	}
	*done = st->n < STEP;
out:
	kv_batch_clear(s->batch);
	for (int i = 0; i < 3; i++)
		kv_iter_destroy(st->it[i]);
	pthread_mutex_unlock(&s->lock);
	free(st);
	return rc;
}

/* The names of the tenants that have records (malloc'ed array of malloc'ed
 * names). */
static int tenant_names(struct recorder_store *s, char ***out, size_t *n)
{
	pthread_mutex_lock(&s->lock);
	char **names = calloc(s->ntenants + 1, sizeof(*names));
	size_t got = 0;
	int rc = names == NULL ? -ENOMEM : 0;
	for (size_t i = 0; rc == 0 && i < s->nbuckets; i++) {
		for (struct usage *u = s->buckets[i]; u != NULL && rc == 0; u = u->next) {
			if (u->records == 0)
				continue;
			names[got] = strdup(u->tenant);
			if (names[got] == NULL)
				rc = -ENOMEM;
			else
				got++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != 0) {
		for (size_t i = 0; i < got; i++)
			free(names[i]);
		free(names);
		return rc;
	}
	*out = names;
	*n = got;
	return 0;
}

int recorder_store_retain(struct recorder_store *s, int64_t now_ms,
                          const struct recorder_policy *def, struct recorder_retain_result *res)
{
	char **names;
	size_t n;
	int rc = tenant_names(s, &names, &n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct recorder_policy p = {0};
		int got = recorder_store_get_retention(s, names[i], &p);
		if (got == -ENOENT && def != NULL)
			p = *def;
		else if (got != 0 && got != -ENOENT)
			rc = got;
		if (rc != 0 || (p.max_age_ms <= 0 && p.max_bytes == 0))
			continue;
		int64_t cutoff = p.max_age_ms > 0 ? now_ms - p.max_age_ms : INT64_MIN;
		uint64_t before = res != NULL ? res->records : 0;
		bool done = false;
		while (!done && rc == 0)
			rc = retain_step(s, names[i], cutoff, p.max_bytes, res, &done);
		if (res != NULL && res->records > before)
			res->tenants++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
