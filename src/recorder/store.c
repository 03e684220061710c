/*
 * recorder store: opening, appending, usage and retention settings. The key
 * layout and the reasons for it are in store.h; queries are in
 * store_query.c, retention passes in store_retain.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_int.h"

/* --- record facts, meta and keys ---------------------------------------- */

bool store_recinfo(const Noetl__Record *rec, struct recinfo *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->event = "";
	ri->related = "";
	switch (rec->kind_case) {
	case NOETL__RECORD__KIND_EXECUTION: {
		const Noetl__Execution *e = rec->execution;
		ri->tenant = e->tenant;
		ri->event = e->event_id;
		ri->kind = RK_EXEC;
		ri->aux = (uint8_t)e->status;
		ri->time = e->start_ms;
		return true;
	}
	case NOETL__RECORD__KIND_LOG: {
		const Noetl__LogLine *l = rec->log;
		ri->tenant = l->tenant;
		ri->event = l->event_id;
		ri->kind = RK_LOG;
		ri->aux = (uint8_t)l->level;
		ri->time = l->time_ms;
		return true;
	}
	case NOETL__RECORD__KIND_TIMELINE: {
		const Noetl__TimelineEntry *t = rec->timeline;
		ri->tenant = t->tenant;
		ri->event = t->event_id;
		ri->kind = RK_TIMELINE;
		ri->aux = (uint8_t)t->kind;
		ri->time = t->time_ms;
		if (t->kind == NOETL__TIMELINE_KIND__TL_ROUTED ||
		    t->kind == NOETL__TIMELINE_KIND__TL_CAUSED_BY)
			ri->related = t->related_id;
		return true;
	}
	default:
		return false;
	}
}

size_t store_meta_encode(const struct recinfo *ri, uint32_t charge, uint8_t *buf)
{
	size_t n = 0;
	size_t el = strnlen(ri->event, RECORDER_EVENT_MAX);
	size_t rl = strnlen(ri->related, RECORDER_EVENT_MAX);
	buf[n++] = ri->aux;
	buf[n++] = (uint8_t)(charge >> 24);
	buf[n++] = (uint8_t)(charge >> 16);
	buf[n++] = (uint8_t)(charge >> 8);
	buf[n++] = (uint8_t)charge;
	buf[n++] = (uint8_t)el;
	memcpy(buf + n, ri->event, el);
	n += el;
	buf[n++] = (uint8_t)rl;
	memcpy(buf + n, ri->related, rl);
	n += rl;
	return n;
}

bool store_meta_decode(const void *v, size_t len, struct meta *m)
{
	const uint8_t *p = v;
	if (len < 7)
		return false;
	m->aux = p[0];
	m->charge = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	size_t el = p[5];
	if (el > RECORDER_EVENT_MAX || 6 + el + 1 > len)
		return false;
	memcpy(m->event, p + 6, el);
	m->event[el] = '\0';
	size_t rl = p[6 + el];
	if (rl > RECORDER_EVENT_MAX || 7 + el + rl != len)
		return false;
	memcpy(m->related, p + 7 + el, rl);
	m->related[rl] = '\0';
	return true;
}

void store_key_record(struct key *k, const char *tenant, char kind, int64_t time, uint64_t rev)
{
	key_init(k, KP_RECORD);
	key_name(k, tenant, RECORDER_TENANT_MAX);
	key_u8(k, (uint8_t)kind);
	key_be64(k, key_time(time));
	key_be64(k, rev);
}

void store_key_time(struct key *k, char prefix, const char *tenant, int64_t time, uint64_t rev)
{
	key_init(k, prefix);
	key_name(k, tenant, RECORDER_TENANT_MAX);
	key_be64(k, key_time(time));
	key_be64(k, rev);
}

void store_key_all(struct key *k, int64_t time, uint64_t rev)
{
	key_init(k, KP_ALL);
	key_be64(k, key_time(time));
	key_be64(k, rev);
}

void store_key_event(struct key *k, const char *event, const char *tenant, uint64_t rev)
{
	key_init(k, KP_EVENT);
	key_name(k, event, RECORDER_EVENT_MAX);
	key_name(k, tenant, RECORDER_TENANT_MAX);
	key_be64(k, rev);
}

int store_read_record(struct recorder_store *s, uint64_t rev, Noetl__Record **out)
{
	Noetl__Change *chg = NULL;
	int rc = changelog_get(s->cl, rev, &chg);
	if (rc != 0)
		return rc;
	Noetl__Record *rec = noetl__record__unpack(NULL, chg->body.len, chg->body.data);
	noetl__change__free_unpacked(chg, NULL);
	if (rec == NULL) {
		log_error("recorder: revision %llu does not decode as a record",
		          (unsigned long long)rev);
		return -EBADMSG;
	}
	*out = rec;
	return 0;
}

/* --- usage ---------------------------------------------------------------- */

static size_t hash_name(const char *s)
{
	size_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static int usage_grow(struct recorder_store *s)
{
	size_t n = s->nbuckets != 0 ? s->nbuckets * 2 : 64;
	struct usage **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct usage *u = s->buckets[i];
		while (u != NULL) {
			struct usage *next = u->next;
			size_t h = hash_name(u->tenant) & (n - 1);
			u->next = nb[h];
			nb[h] = u;
			u = next;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
	return 0;
}

struct usage *store_usage_get(struct recorder_store *s, const char *tenant, bool create)
{
	if (s->nbuckets != 0) {
		for (struct usage *u = s->buckets[hash_name(tenant) & (s->nbuckets - 1)]; u != NULL;
		     u = u->next)
			if (strcmp(u->tenant, tenant) == 0)
				return u;
	}
	if (!create)
		return NULL;
	if (s->ntenants >= s->nbuckets && usage_grow(s) != 0)
		return NULL;
	struct usage *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	u->tenant = strdup(tenant);
	if (u->tenant == NULL) {
		free(u);
		return NULL;
	}
	size_t h = hash_name(tenant) & (s->nbuckets - 1);
	u->next = s->buckets[h];
	s->buckets[h] = u;
	s->ntenants++;
	return u;
}

void store_usage_add(struct recorder_store *s, struct usage *u, int64_t records, int64_t bytes)
{
	u->records = (uint64_t)((int64_t)u->records + records);
	u->bytes = (uint64_t)((int64_t)u->bytes + bytes);
	u->d_records += records;
	u->d_bytes += bytes;
	if (!u->dirty) {
		u->dirty = true;
		u->next_dirty = s->dirty;
		s->dirty = u;
	}
}

void store_usage_put(struct recorder_store *s, struct kv_batch *b)
{
	for (struct usage *u = s->dirty; u != NULL; u = u->next_dirty) {
		struct key k;
		uint8_t v[16];
		key_init(&k, KP_USAGE);
		key_name(&k, u->tenant, RECORDER_TENANT_MAX);
		util_put_be64(v, u->records);
		util_put_be64(v + 8, u->bytes);
		kv_batch_put(b, k.b, k.n, v, sizeof(v));
	}
}

void store_usage_end(struct recorder_store *s, bool ok)
{
	struct usage *u = s->dirty;
	while (u != NULL) {
		struct usage *next = u->next_dirty;
		if (!ok) {
			u->records = (uint64_t)((int64_t)u->records - u->d_records);
			u->bytes = (uint64_t)((int64_t)u->bytes - u->d_bytes);
		}
		u->d_records = 0;
		u->d_bytes = 0;
		u->dirty = false;
		u->next_dirty = NULL;
		u = next;
	}
	s->dirty = NULL;
}

/* Loads every tenant's usage at open. */
static int usage_load(struct recorder_store *s)
{
	uint8_t lo = KP_USAGE, hi = KP_USAGE + 1;
	struct kv_iter *it;
	int rc = kv_iter_create(s->kv, &lo, 1, &hi, 1, &it);
	if (rc != 0)
		return rc;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = kv_iter_key(it, &kl);
		const uint8_t *v = kv_iter_value(it, &vl);
		char tenant[RECORDER_TENANT_MAX + 1];
		if (kl < 3 || kl - 2 > RECORDER_TENANT_MAX || k[kl - 1] != 0 || vl != 16)
			continue; /* not ours: skip rather than refuse to start */
		memcpy(tenant, k + 1, kl - 2);
		tenant[kl - 2] = '\0';
		struct usage *u = store_usage_get(s, tenant, true);
		if (u == NULL) {
			rc = -ENOMEM;
			break;
		}
		u->records = util_get_be64(v);
		u->bytes = util_get_be64(v + 8);
	}
	if (rc == 0)
		rc = kv_iter_status(it);
	kv_iter_destroy(it);
	return rc;
}

void recorder_store_usage(struct recorder_store *s, const char *tenant, uint64_t *records,
                          uint64_t *bytes)
{
	pthread_mutex_lock(&s->lock);
	struct usage *u = store_usage_get(s, tenant, false);
	*records = u != NULL ? u->records : 0;
	*bytes = u != NULL ? u->bytes : 0;
	pthread_mutex_unlock(&s->lock);
}

void recorder_store_each_usage(struct recorder_store *s,
                               void (*fn)(void *arg, const char *tenant, uint64_t records,
                                          uint64_t bytes),
                               void *arg)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct usage *u = s->buckets[i]; u != NULL; u = u->next)
			if (u->records > 0)
				fn(arg, u->tenant, u->records, u->bytes);
	pthread_mutex_unlock(&s->lock);
}

/* --- open, close ---------------------------------------------------------- */

int recorder_store_open(const char *dir, struct stream_pub *pub, struct recorder_store **out)
{
	struct recorder_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	/* The Recorder writes several keys per record, all day: larger
	 * memtables mean fewer, larger flushes and less compaction work per
	 * record; the cache keeps the recent records queries ask for. */
	struct kv_options ko = {.cache_bytes = 32u << 20, .write_buffer_bytes = 32u << 20};
	int rc = kv_open(dir, &ko, &s->kv);
	if (rc != 0)
		goto fail;
	uint8_t prefix = KP_LOG;
	rc = changelog_open(s->kv, &prefix, 1, pub, &s->cl);
	if (rc != 0)
		goto fail;
	s->batch = kv_batch_create();
	if (s->batch == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = usage_load(s);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	recorder_store_close(s);
	return rc;
}

void recorder_store_close(struct recorder_store *s)
{
	if (s == NULL)
		return;
	changelog_close(s->cl);
	kv_close(s->kv);
	kv_batch_destroy(s->batch);
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct usage *u = s->buckets[i];
		while (u != NULL) {
			struct usage *next = u->next;
			free(u->tenant);
			free(u);
			u = next;
		}
	}
	free(s->buckets);
	free(s->buf);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct changelog *recorder_store_changelog(struct recorder_store *s)
{
	return s->cl;
}

struct kv *recorder_store_kv(struct recorder_store *s)
{
	return s->kv;
}

uint64_t recorder_store_head(struct recorder_store *s)
{
	return changelog_head(s->cl);
}

/* --- append --------------------------------------------------------------- */

/* Adds one record's change and index entries to b; under lock. */
static int add_record(struct recorder_store *s, struct kv_batch *b, Noetl__Record *rec,
                      uint64_t rev, int64_t now_ms)
{
	struct recinfo ri;
	if (!store_recinfo(rec, &ri))
		return -EINVAL;
	rec->revision = rev;
	size_t len = protobuf_c_message_get_packed_size(&rec->base);
	if (len > s->bufcap) {
		size_t cap = len > 4096 ? len : 4096;
		uint8_t *nb = realloc(s->buf, cap);
		if (nb == NULL)
			return -ENOMEM;
		s->buf = nb;
		s->bufcap = cap;
	}
	protobuf_c_message_pack(&rec->base, s->buf);
	struct usage *u = store_usage_get(s, ri.tenant, true);
	if (u == NULL)
		return -ENOMEM;
	uint64_t got = changelog_add(s->cl, b, ri.tenant, s->buf, len, now_ms);
	if (got != rev) {
		/* The change log hands out revisions densely and we hold its
		 * lock, so this is a broken invariant, not bad input. */
		log_error("recorder: change log gave revision %llu, expected %llu",
		          (unsigned long long)got, (unsigned long long)rev);
		return -EPROTO;
	}

	uint32_t charge = (uint32_t)(len + RECORDER_KEY_CHARGE);
	uint8_t meta[META_MAX];
	size_t mlen = store_meta_encode(&ri, charge, meta);
	struct key k;
	store_key_record(&k, ri.tenant, ri.kind, ri.time, rev);
	kv_batch_put(b, k.b, k.n, meta, mlen);
	if (ri.kind == RK_EXEC) {
		if (ri.aux != NOETL__EXEC_STATUS__EXEC_OK) {
			store_key_time(&k, KP_FAILED, ri.tenant, ri.time, rev);
			kv_batch_put(b, k.b, k.n, NULL, 0);
		}
		if (ri.aux == NOETL__EXEC_STATUS__EXEC_DEAD) {
			store_key_time(&k, KP_DEAD, ri.tenant, ri.time, rev);
			kv_batch_put(b, k.b, k.n, NULL, 0);
		}
		store_key_all(&k, ri.time, rev);
		kv_batch_put(b, k.b, k.n, &ri.aux, 1);
	}
	if (ri.event[0] != '\0') {
		uint8_t v[2] = {(uint8_t)ri.kind, ri.aux};
		store_key_event(&k, ri.event, ri.tenant, rev);
		kv_batch_put(b, k.b, k.n, v, 2);
	}
	if (ri.related[0] != '\0') {
		uint8_t v[2] = {RK_LINK, ri.aux};
		store_key_event(&k, ri.related, ri.tenant, rev);
		kv_batch_put(b, k.b, k.n, v, 2);
	}
	store_usage_add(s, u, 1, charge);
	return 0;
}

int recorder_store_append(struct recorder_store *s, Noetl__Record *const *recs, size_t n,
                          int64_t now_ms, uint64_t *last)
{
	if (n == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	struct kv_batch *b = s->batch;
	kv_batch_clear(b);
	uint64_t first = changelog_head(s->cl) + 1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = add_record(s, b, recs[i], first + i, now_ms);
	if (rc == 0) {
		store_usage_put(s, b);
		kv_batch_sort(b);
		rc = kv_write(s->kv, b, true);
	}
	if (rc == 0)
		changelog_commit(s->cl);
	else
		changelog_abort(s->cl);
	store_usage_end(s, rc == 0);
	kv_batch_clear(b);
	pthread_mutex_unlock(&s->lock);
	if (rc == 0)
		*last = first + n - 1;
	return rc;
}

/* --- retention settings --------------------------------------------------- */

int recorder_store_set_retention(struct recorder_store *s, const Noetl__Retention *r)
{
	struct key k;
	key_init(&k, KP_POLICY);
	key_name(&k, r->tenant, RECORDER_TENANT_MAX);
	if (r->use_default)
		return kv_delete(s->kv, k.b, k.n, true);
	Noetl__Retention copy = NOETL__RETENTION__INIT;
	copy.tenant = r->tenant;
	copy.max_age_ms = r->max_age_ms;
	copy.max_bytes = r->max_bytes;
	uint8_t buf[128 + RECORDER_TENANT_MAX];
	size_t len = noetl__retention__pack(&copy, buf);
	return kv_put(s->kv, k.b, k.n, buf, len, true);
}

int recorder_store_get_retention(struct recorder_store *s, const char *tenant,
                                 struct recorder_policy *out)
{
	struct key k;
	key_init(&k, KP_POLICY);
	key_name(&k, tenant, RECORDER_TENANT_MAX);
	void *v;
	size_t len;
	int rc = kv_get(s->kv, k.b, k.n, &v, &len);
	if (rc != 0)
		return rc;
	Noetl__Retention *r = noetl__retention__unpack(NULL, len, v);
	free(v);
	if (r == NULL) {
		log_error("recorder: the retention of tenant '%s' does not decode", tenant);
		return -EBADMSG;
	}
	out->max_age_ms = r->max_age_ms;
	out->max_bytes = r->max_bytes;
	noetl__retention__free_unpacked(r, NULL);
	return 0;
}
