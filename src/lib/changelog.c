/*
 * changelog: ordered change log in a service's kv store, published on its
 * stream. See changelog.h for the key layout and the locking contract.
 */
#include "changelog.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define PREFIX_MAX 8
#define TOPIC_MAX  128

/* The last revision of one topic: an open-addressing table entry. */
struct topic_rev {
	char *topic;  /* owned; NULL = empty slot */
	uint64_t rev; /* newest revision of the topic, committed or pending */
};

/* A change added but not yet committed. */
struct pending {
	Noetl__Change chg;      /* fields point into the strings below */
	char *topic;            /* owned */
	uint8_t *body;          /* owned */
	uint64_t old_topic_rev; /* the topic's revision before this change, for abort */
};

struct changelog {
	struct kv *kv;          /* borrowed */
	struct stream_pub *pub; /* borrowed; may be NULL */
	uint8_t prefix[PREFIX_MAX];
	size_t plen;
	pthread_mutex_t mu;       /* protects head (readers) */
	uint64_t head;            /* newest committed revision */
	uint64_t next_prev;       /* revision the next added change follows */
	struct topic_rev *topics; /* per-topic newest revision (cache) */
	size_t ntopics, captopics;
	struct pending *pend; /* added, not committed, in order */
	size_t npend, cappend;
};

static size_t key_change(const struct changelog *cl, uint64_t rev, uint8_t *out)
{
	memcpy(out, cl->prefix, cl->plen);
	out[cl->plen] = 'c';
	util_put_be64(out + cl->plen + 1, rev);
	return cl->plen + 9;
}

/* P 't' topic '\0' [rev] */
static size_t key_topic(const struct changelog *cl, const char *topic, bool with_rev, uint64_t rev,
                        uint8_t *out)
{
	size_t tl = strlen(topic);
	memcpy(out, cl->prefix, cl->plen);
	out[cl->plen] = 't';
	memcpy(out + cl->plen + 1, topic, tl + 1);
	size_t n = cl->plen + 2 + tl;
	if (with_rev) {
		util_put_be64(out + n, rev);
		n += 8;
	}
	return n;
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static struct topic_rev *topic_slot(struct changelog *cl, const char *topic)
{
	if (cl->captopics == 0 || (cl->ntopics + 1) * 2 > cl->captopics) {
		size_t ncap = cl->captopics ? cl->captopics * 2 : 64;
		struct topic_rev *nt = calloc(ncap, sizeof(*nt));
		if (nt == NULL)
			abort();
		for (size_t i = 0; i < cl->captopics; i++) {
			if (cl->topics[i].topic == NULL)
				continue;
			size_t j = hash(cl->topics[i].topic) & (ncap - 1);
			while (nt[j].topic != NULL)
				j = (j + 1) & (ncap - 1);
			nt[j] = cl->topics[i];
		}
		free(cl->topics);
		cl->topics = nt;
		cl->captopics = ncap;
	}
	size_t j = hash(topic) & (cl->captopics - 1);
	while (cl->topics[j].topic != NULL && strcmp(cl->topics[j].topic, topic) != 0)
		j = (j + 1) & (cl->captopics - 1);
	return &cl->topics[j];
}

/* The newest revision of topic, from the cache or the index. */
static uint64_t topic_rev(struct changelog *cl, const char *topic)
{
	struct topic_rev *t = topic_slot(cl, topic);
	if (t->topic != NULL)
		return t->rev;
	uint8_t lo[PREFIX_MAX + TOPIC_MAX + 12], hi[PREFIX_MAX + TOPIC_MAX + 12];
	size_t ll = key_topic(cl, topic, false, 0, lo);
	size_t hl = key_topic(cl, topic, true, UINT64_MAX, hi);
	uint64_t rev = 0;
	struct kv_iter *it;
	if (kv_iter_create(cl->kv, lo, ll, hi, hl, &it) == 0) {
		kv_iter_seek_last(it);
		if (kv_iter_valid(it)) {
			size_t kl;
			const uint8_t *k = kv_iter_key(it, &kl);
			if (kl == ll + 8)
				rev = util_get_be64(k + ll);
		}
		kv_iter_destroy(it);
	}
	t->topic = util_xstrdup(topic);
	t->rev = rev;
	cl->ntopics++;
	return rev;
}

int changelog_open_store(const char *dir, const void *prefix, size_t plen, struct stream_pub *pub,
                         struct kv **kv, struct changelog **log)
{
	struct kv *k;
	struct changelog *l;
	int rc = kv_open(dir, NULL, &k);
	if (rc != 0)
		return rc;
	rc = changelog_open(k, prefix, plen, pub, &l);
	if (rc != 0) {
		kv_close(k);
		return rc;
	}
	*kv = k;
	*log = l;
	return 0;
}

void changelog_close_store(struct kv *kv, struct changelog *log)
{
	changelog_close(log);
	kv_close(kv);
}

int changelog_open(struct kv *kv, const void *prefix, size_t plen, struct stream_pub *pub,
                   struct changelog **out)
{
	if (plen == 0 || plen > PREFIX_MAX)
		return -EINVAL;
	struct changelog *cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return -ENOMEM;
	cl->kv = kv;
	cl->pub = pub;
	memcpy(cl->prefix, prefix, plen);
	cl->plen = plen;
	pthread_mutex_init(&cl->mu, NULL);

	uint8_t lo[PREFIX_MAX + 9], hi[PREFIX_MAX + 9];
	size_t ll = key_change(cl, 0, lo), hl = key_change(cl, UINT64_MAX, hi);
	struct kv_iter *it;
	int rc = kv_iter_create(kv, lo, ll, hi, hl, &it);
	if (rc != 0) {
		changelog_close(cl);
		return rc;
	}
	kv_iter_seek_last(it);
	if (kv_iter_valid(it)) {
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		cl->head = util_get_be64(k + cl->plen + 1);
	}
	rc = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rc != 0) {
		changelog_close(cl);
		return rc;
	}
	cl->next_prev = cl->head;
	if (pub != NULL)
		stream_pub_set_head(pub, cl->head);
	*out = cl;
	return 0;
}

static void pending_release(struct pending *p)
{
	free(p->topic);
	free(p->body);
}

void changelog_close(struct changelog *cl)
{
	if (cl == NULL)
		return;
	for (size_t i = 0; i < cl->npend; i++)
		pending_release(&cl->pend[i]);
	free(cl->pend);
	for (size_t i = 0; i < cl->captopics; i++)
		free(cl->topics[i].topic);
	free(cl->topics);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

uint64_t changelog_add(struct changelog *cl, struct kv_batch *b, const char *topic,
                       const void *body, size_t blen, int64_t time_ms)
{
	if (topic == NULL)
		topic = "";
	if (strlen(topic) >= TOPIC_MAX)
		abort(); /* callers validate names; a longer topic is a bug */
	if (cl->npend == cl->cappend) {
		cl->cappend = cl->cappend ? cl->cappend * 2 : 16;
		cl->pend = realloc(cl->pend, cl->cappend * sizeof(*cl->pend));
		if (cl->pend == NULL)
			abort();
	}
	struct pending *p = &cl->pend[cl->npend++];
	memset(p, 0, sizeof(*p));
	p->topic = util_xstrdup(topic);
	p->body = malloc(blen > 0 ? blen : 1);
	if (p->body == NULL)
		abort();
	memcpy(p->body, body, blen);
	uint64_t rev = cl->next_prev + 1;
	p->old_topic_rev = topic_rev(cl, topic);

	noetl__change__init(&p->chg);
	p->chg.revision = rev;
	p->chg.prev_revision = cl->next_prev;
	p->chg.prev_topic_revision = p->old_topic_rev;
	p->chg.topic = p->topic;
	p->chg.time_ms = time_ms;
	p->chg.body.data = p->body;
	p->chg.body.len = blen;
	topic_slot(cl, topic)->rev = rev;
	cl->next_prev = rev;

	size_t n = noetl__change__get_packed_size(&p->chg);
	uint8_t stackbuf[4096];
	uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (buf == NULL)
		abort();
	noetl__change__pack(&p->chg, buf);
	uint8_t key[PREFIX_MAX + TOPIC_MAX + 12];
	size_t kl = key_change(cl, rev, key);
	kv_batch_put(b, key, kl, buf, n);
	kl = key_topic(cl, topic, true, rev, key);
	kv_batch_put(b, key, kl, "", 0);
	if (buf != stackbuf)
		free(buf);
	return rev;
}

void changelog_commit(struct changelog *cl)
{
	if (cl->npend == 0)
		return;
	pthread_mutex_lock(&cl->mu);
	cl->head = cl->pend[cl->npend - 1].chg.revision;
	pthread_mutex_unlock(&cl->mu);
	for (size_t i = 0; i < cl->npend; i++) {
		if (cl->pub != NULL)
			stream_pub_publish(cl->pub, &cl->pend[i].chg);
		pending_release(&cl->pend[i]);
	}
	cl->npend = 0;
}

void changelog_abort(struct changelog *cl)
{
	/* undo in reverse so each topic gets back its oldest saved revision */
	for (size_t i = cl->npend; i-- > 0;) {
		struct pending *p = &cl->pend[i];
		topic_slot(cl, p->topic)->rev = p->old_topic_rev;
		pending_release(p);
	}
	cl->npend = 0;
	cl->next_prev = cl->head;
}

uint64_t changelog_head(struct changelog *cl)
{
	pthread_mutex_lock(&cl->mu);
	uint64_t h = cl->head;
	pthread_mutex_unlock(&cl->mu);
	return h;
}

void changelog_reply_free(Noetl__ChangesReply *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_changes; i++)
		noetl__change__free_unpacked(r->changes[i], NULL);
	free(r->changes);
	free(r);
}

/* Appends the stored change of key/value to r. */
static int append_change(Noetl__ChangesReply *r, size_t cap, const void *val, size_t vlen)
{
	Noetl__Change *c = noetl__change__unpack(NULL, vlen, val);
	if (c == NULL)
		return -EIO;
	if (r->n_changes == cap) {
		noetl__change__free_unpacked(c, NULL);
		return -ENOSPC;
	}
	r->changes[r->n_changes++] = c;
	return 0;
}

int changelog_read(struct changelog *cl, uint64_t since, const char *topic, uint32_t limit,
                   Noetl__ChangesReply **out)
{
	if (limit == 0 || limit > 5000)
		limit = limit == 0 ? 500 : 5000;
	bool by_topic = topic != NULL && topic[0] != '\0';
	if (by_topic && strlen(topic) >= TOPIC_MAX)
		return -EINVAL;
	Noetl__ChangesReply *r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	noetl__changes_reply__init(r);
	r->changes = calloc(limit, sizeof(*r->changes));
	if (r->changes == NULL) {
		free(r);
		return -ENOMEM;
	}
	r->head = changelog_head(cl);

	uint8_t lo[PREFIX_MAX + TOPIC_MAX + 12], hi[PREFIX_MAX + TOPIC_MAX + 12];
	size_t ll, hl;
	if (by_topic) {
		ll = key_topic(cl, topic, true, since + 1, lo);
		hl = key_topic(cl, topic, true, UINT64_MAX, hi);
	} else {
		ll = key_change(cl, since + 1, lo);
		hl = key_change(cl, UINT64_MAX, hi);
	}
	struct kv_iter *it;
	int rc = kv_iter_create(cl->kv, lo, ll, hi, hl, &it);
	if (rc != 0) {
		changelog_reply_free(r);
		return rc;
	}
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		if (r->n_changes == limit) {
			r->more = true;
			break;
		}
		size_t kl, vl;
		const uint8_t *k = kv_iter_key(it, &kl);
		if (by_topic) {
			uint8_t ck[PREFIX_MAX + 9];
			size_t cl_len = key_change(cl, util_get_be64(k + kl - 8), ck);
			void *val;
			rc = kv_get(cl->kv, ck, cl_len, &val, &vl);
			if (rc == -ENOENT)
				continue; /* trimmed between index and change */
			if (rc == 0) {
				rc = append_change(r, limit, val, vl);
				free(val);
			}
		} else {
			const void *val = kv_iter_value(it, &vl);
			rc = append_change(r, limit, val, vl);
		}
		if (rc != 0)
			break;
	}
	if (rc == 0)
		rc = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rc != 0) {
		changelog_reply_free(r);
		return rc;
	}
	if (r->n_changes > 0 && r->changes[r->n_changes - 1]->revision > r->head)
		r->head = r->changes[r->n_changes - 1]->revision;
	*out = r;
	return 0;
}

int changelog_trim(struct changelog *cl, uint64_t before)
{
	uint64_t head = changelog_head(cl);
	if (before > head)
		before = head; /* the newest change stays: it is where the head is read from */
	if (before <= 1)
		return 0;
	struct kv_batch *b = kv_batch_create();
	uint8_t lo[PREFIX_MAX + TOPIC_MAX + 12], hi[PREFIX_MAX + TOPIC_MAX + 12];
	size_t ll = key_change(cl, 0, lo), hl = key_change(cl, before, hi);
	kv_batch_delete_range(b, lo, ll, hi, hl);

	/* the topic index: one range per topic, found by skipping from topic
	 * to topic rather than walking every entry */
	uint8_t tlo[PREFIX_MAX + 2], thi[PREFIX_MAX + 2];
	memcpy(tlo, cl->prefix, cl->plen);
	tlo[cl->plen] = 't';
	memcpy(thi, cl->prefix, cl->plen);
	thi[cl->plen] = 'u';
	struct kv_iter *it;
	int rc = kv_iter_create(cl->kv, tlo, cl->plen + 1, thi, cl->plen + 1, &it);
	if (rc != 0) {
		kv_batch_destroy(b);
		return rc;
	}
	kv_iter_seek_first(it);
	while (kv_iter_valid(it)) {
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		const char *topic = (const char *)k + cl->plen + 1;
		size_t tl = strnlen(topic, kl - cl->plen - 1);
		if (tl >= TOPIC_MAX || kl != cl->plen + 2 + tl + 8)
			break; /* not ours: stop rather than delete what we do not understand */
		char name[TOPIC_MAX];
		memcpy(name, topic, tl);
		name[tl] = '\0';
		ll = key_topic(cl, name, true, 0, lo);
		hl = key_topic(cl, name, true, before, hi);
		kv_batch_delete_range(b, lo, ll, hi, hl);
		hl = key_topic(cl, name, true, UINT64_MAX, hi);
		kv_iter_seek(it, hi, hl); /* past this topic */
		if (kv_iter_valid(it)) {
			const uint8_t *nk = kv_iter_key(it, &kl);
			if (kl == hl && memcmp(nk, hi, hl) == 0)
				kv_iter_next(it);
		}
	}
	rc = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rc == 0)
		rc = kv_write(cl->kv, b, false);
	kv_batch_destroy(b);
	return rc;
}

int changelog_get(struct changelog *cl, uint64_t rev, Noetl__Change **out)
{
	if (rev == 0 || rev > changelog_head(cl))
		return -ENOENT;
	uint8_t key[PREFIX_MAX + 9];
	size_t kl = key_change(cl, rev, key);
	void *val;
	size_t vl;
	int rc = kv_get(cl->kv, key, kl, &val, &vl);
	if (rc != 0)
		return rc;
	Noetl__Change *c = noetl__change__unpack(NULL, vl, val);
	free(val);
	if (c == NULL) {
		log_error("changelog: revision %llu does not decode", (unsigned long long)rev);
		return -EIO;
	}
	*out = c;
	return 0;
}

/* Deletes [first, last] from the log and from topic's index. */
static void forget_run(struct changelog *cl, struct kv_batch *b, const char *topic, uint64_t first,
                       uint64_t last)
{
	uint8_t lo[PREFIX_MAX + TOPIC_MAX + 12], hi[PREFIX_MAX + TOPIC_MAX + 12];
	size_t ll, hl;
	if (first == last) {
		ll = key_change(cl, first, lo);
		kv_batch_delete(b, lo, ll);
		ll = key_topic(cl, topic, true, first, lo);
		kv_batch_delete(b, lo, ll);
		return;
	}
	ll = key_change(cl, first, lo);
	hl = key_change(cl, last + 1, hi);
	kv_batch_delete_range(b, lo, ll, hi, hl);
	ll = key_topic(cl, topic, true, first, lo);
	hl = key_topic(cl, topic, true, last + 1, hi);
	kv_batch_delete_range(b, lo, ll, hi, hl);
}

void changelog_forget(struct changelog *cl, struct kv_batch *b, const char *topic,
                      const uint64_t *revs, size_t n)
{
	if (topic == NULL)
		topic = "";
	if (strlen(topic) >= TOPIC_MAX)
		return;
	uint64_t head = changelog_head(cl);
	size_t i = 0;
	while (i < n) {
		if (revs[i] == 0 || revs[i] >= head) {
			i++;
			continue;
		}
		uint64_t first = revs[i], last = revs[i];
		while (i + 1 < n && revs[i + 1] == last + 1 && revs[i + 1] < head)
			last = revs[++i];
		forget_run(cl, b, topic, first, last);
		i++;
	}
}
