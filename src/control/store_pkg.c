/*
 * control store, packages: commits of package changes with their history
 * and schedule state, lookups, listings and the snapshot. See store.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "store_int.h"
#include "util.h"

static int read_revision(struct control_store *s, const struct key *k, Noetl__PackageRevision **out)
{
	return control_store_read(s, k, &noetl__package_revision__descriptor,
	                          (ProtobufCMessage **)out);
}

int control_store_current(struct control_store *s, const char *tenant, const char *id,
                          Noetl__PackageRevision **out)
{
	struct key k;
	key_2(&k, 'p', tenant, id);
	return read_revision(s, &k, out);
}

static void key_history(struct key *k, const char *tenant, const char *id, uint64_t rev)
{
	key_2(k, 'h', tenant, id);
	k->b[k->n++] = 0;
	key_u64(k, rev);
}

int control_store_revision(struct control_store *s, const char *tenant, const char *id,
                           uint64_t rev, Noetl__PackageRevision **out)
{
	struct key k;
	key_history(&k, tenant, id, rev);
	return read_revision(s, &k, out);
}

static bool has_schedule(const Noetl__Package *p, const char *id, size_t idlen)
{
	for (size_t i = 0; i < p->n_schedules; i++)
		if (strlen(p->schedules[i]->id) == idlen &&
		    memcmp(p->schedules[i]->id, id, idlen) == 0)
			return true;
	return false;
}

/* Adds the schedule state changes of a package change to b: schedules that
 * are gone are dropped, new ones start at now (so a tick before the deploy
 * never fires), existing ones keep their last fire time. */
static int schedule_state(struct control_store *s, struct kv_batch *b, const char *tenant,
                          const char *id, const Noetl__Package *pkg, int64_t now_ms)
{
	struct key lo, hi, k;
	key_2(&lo, 's', tenant, id);
	lo.b[lo.n++] = 0;
	key_upper(&lo, &hi);
	if (pkg == NULL) {
		kv_batch_delete_range(b, lo.b, lo.n, hi.b, hi.n);
		return 0;
	}
	struct kv_iter *it;
	int rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		return rv;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		size_t klen;
		const char *key = kv_iter_key(it, &klen);
		if (!has_schedule(pkg, key + lo.n, klen - lo.n))
			kv_batch_delete(b, key, klen);
	}
	rv = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < pkg->n_schedules; i++) {
		control_store_schedule_key(&k, tenant, id, pkg->schedules[i]->id);
		void *val;
		size_t len;
		rv = kv_get(s->kv, k.b, k.n, &val, &len);
		if (rv == 0) {
			free(val);
			continue;
		}
		if (rv != -ENOENT)
			return rv;
		uint8_t v[8];
		util_put_be64(v, (uint64_t)now_ms);
		kv_batch_put(b, k.b, k.n, v, sizeof(v));
	}
	return 0;
}

int control_store_commit(struct control_store *s, const struct control_change *c, uint64_t *rev)
{
	struct key k;
	Noetl__PackageRevision *cur = NULL;
	void *packed = NULL;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);

	int rv = -ESRCH;
	if (!control_store_has_tenant(s, c->tenant))
		goto done;
	rv = control_store_current(s, c->tenant, c->id, &cur);
	if (rv != 0 && rv != -ENOENT)
		goto done;
	bool present = rv == 0;
	rv = 0;
	if (c->expect == CONTROL_EXPECT_ABSENT && present)
		rv = -EEXIST;
	else if (c->expect == CONTROL_EXPECT_PRESENT && !present)
		rv = -ENOENT;
	if (rv != 0)
		goto done;

	uint64_t r = changelog_head(s->log) + 1;
	Noetl__PackageRevision pr = NOETL__PACKAGE_REVISION__INIT;
	pr.revision = r;
	pr.action = (char *)c->action;
	pr.time_ms = c->now_ms;
	pr.package = (Noetl__Package *)c->pkg;
	pr.source = (char *)(c->source != NULL ? c->source : "");
	pr.rolled_back_to = c->rolled_back_to;
	size_t len;
	packed = control_store_pack(&pr.base, &len);
	rv = -ENOMEM;
	if (packed == NULL)
		goto done;
	key_history(&k, c->tenant, c->id, r);
	kv_batch_put(b, k.b, k.n, packed, len);
	key_2(&k, 'p', c->tenant, c->id);
	if (c->pkg != NULL)
		kv_batch_put(b, k.b, k.n, packed, len);
	else
		kv_batch_delete(b, k.b, k.n);
	rv = schedule_state(s, b, c->tenant, c->id, c->pkg, c->now_ms);
	if (rv != 0)
		goto done;

	Noetl__DefinitionChange dc = NOETL__DEFINITION_CHANGE__INIT;
	dc.kind = c->pkg != NULL ? NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED
	                         : NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DELETED;
	dc.tenant = (char *)c->tenant;
	dc.package = (Noetl__Package *)c->pkg;
	dc.package_id = (char *)c->id;
	dc.package_revision = r;
	rv = control_store_add_change(s, b, c->tenant, &dc, c->now_ms, r);
	if (rv == 0)
		rv = control_store_write(s, b);
	if (rv == 0)
		*rev = r;
done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	free(packed);
	if (cur != NULL)
		protobuf_c_message_free_unpacked(&cur->base, NULL);
	return rv;
}

int control_store_history(struct control_store *s, const char *tenant, const char *id,
                          size_t max_bytes, Noetl__PackageRevision ***arr, size_t *n,
                          uint32_t *omitted)
{
	struct key lo, hi;
	key_2(&lo, 'h', tenant, id);
	lo.b[lo.n++] = 0;
	key_upper(&lo, &hi);
	struct kv_iter *it;
	int rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		return rv;
	/* Walk newest first so a byte budget keeps the newest entries. */
	Noetl__PackageRevision **a = NULL;
	size_t cnt = 0, cap = 0, bytes = 0;
	uint32_t left = 0;
	for (kv_iter_seek_last(it); kv_iter_valid(it); kv_iter_prev(it)) {
		size_t vlen;
		const void *val = kv_iter_value(it, &vlen);
		if (max_bytes > 0 && bytes + vlen > max_bytes) {
			left++;
			continue;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			Noetl__PackageRevision **na = realloc(a, cap * sizeof(*a));
			if (na == NULL) {
				rv = -ENOMEM;
				break;
			}
			a = na;
		}
		a[cnt] = noetl__package_revision__unpack(NULL, vlen, val);
		if (a[cnt] == NULL) {
			log_error("control: undecodable history record of %s/%s", tenant, id);
			rv = -EIO;
			break;
		}
		bytes += vlen;
		cnt++;
	}
	if (rv == 0)
		rv = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rv == 0 && cnt == 0 && left == 0)
		rv = -ENOENT;
	if (rv != 0) {
		for (size_t i = 0; i < cnt; i++)
			protobuf_c_message_free_unpacked(&a[i]->base, NULL);
		free(a);
		return rv;
	}
	for (size_t i = 0; i < cnt / 2; i++) {
		Noetl__PackageRevision *t = a[i];
		a[i] = a[cnt - 1 - i];
		a[cnt - 1 - i] = t;
	}
	*arr = a;
	*n = cnt;
	*omitted = left;
	return 0;
}

/* Unpacks a PackageRevision value and keeps only its package. */
static Noetl__Package *package_of(const void *val, size_t vlen)
{
	Noetl__PackageRevision *pr = noetl__package_revision__unpack(NULL, vlen, val);
	if (pr == NULL)
		return NULL;
	Noetl__Package *p = pr->package;
	pr->package = NULL;
	protobuf_c_message_free_unpacked(&pr->base, NULL);
	return p;
}

/* Range of 'p' keys of tenant, or of every tenant. */
static void package_range(const char *tenant, struct key *lo, struct key *hi)
{
	if (tenant != NULL && tenant[0] != '\0') {
		key_2(lo, 'p', tenant, "");
		key_upper(lo, hi);
	} else {
		key_init(lo, 'p');
		key_init(hi, 'q');
	}
}

int control_store_list_packages(struct control_store *s, const char *tenant, const void *cursor,
                                size_t cursor_len, uint32_t limit, Noetl__Package ***arr, size_t *n,
                                void **next, size_t *next_len, uint64_t *rev)
{
	struct key lo, hi, from;
	package_range(tenant, &lo, &hi);
	if (limit == 0)
		limit = 100;
	if (cursor_len > KEY_MAX - 2)
		return -EINVAL;
	Noetl__Package **a = calloc(limit, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	size_t cnt = 0;
	void *more = NULL;
	size_t more_len = 0;
	struct kv_iter *it;

	pthread_mutex_lock(&s->write);
	uint64_t head = changelog_head(s->log);
	int rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		goto unlock;
	if (cursor_len > 0) {
		/* cursor = tenant \0 id of the last package returned; with a NUL
		 * appended it sorts just after that key. */
		key_init(&from, 'p');
		memcpy(from.b + 1, cursor, cursor_len);
		from.n = 1 + cursor_len;
		from.b[from.n++] = 0;
		kv_iter_seek(it, from.b, from.n);
	} else {
		kv_iter_seek_first(it);
	}
	size_t last_klen = 0;
	uint8_t last_key[KEY_MAX];
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t klen, vlen;
		const void *key = kv_iter_key(it, &klen);
		if (cnt == limit) {
			more_len = last_klen - 1;
			more = malloc(more_len);
			if (more == NULL)
				rv = -ENOMEM;
			else
				memcpy(more, last_key + 1, more_len);
			break;
		}
		const void *val = kv_iter_value(it, &vlen);
		a[cnt] = package_of(val, vlen);
		if (a[cnt] == NULL) {
			log_error("control: undecodable package record in a listing");
			rv = -EIO;
			break;
		}
		cnt++;
		last_klen = klen < KEY_MAX ? klen : KEY_MAX;
		memcpy(last_key, key, last_klen);
	}
	if (rv == 0)
		rv = kv_iter_status(it);
	kv_iter_destroy(it);
unlock:
	pthread_mutex_unlock(&s->write);
	if (rv != 0) {
		for (size_t i = 0; i < cnt; i++)
			protobuf_c_message_free_unpacked(&a[i]->base, NULL);
		free(a);
		free(more);
		return rv;
	}
	*arr = a;
	*n = cnt;
	*next = more;
	*next_len = more_len;
	*rev = head;
	return 0;
}

int control_store_each_package(struct control_store *s,
                               int (*fn)(void *arg, const Noetl__PackageRevision *pr), void *arg)
{
	struct key lo, hi;
	package_range(NULL, &lo, &hi);
	struct kv_iter *it;
	int rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		return rv;
	for (kv_iter_seek_first(it); kv_iter_valid(it) && rv == 0; kv_iter_next(it)) {
		size_t vlen;
		const void *val = kv_iter_value(it, &vlen);
		Noetl__PackageRevision *pr = noetl__package_revision__unpack(NULL, vlen, val);
		if (pr == NULL) {
			log_error("control: undecodable package record");
			rv = -EIO;
			break;
		}
		rv = fn(arg, pr);
		protobuf_c_message_free_unpacked(&pr->base, NULL);
	}
	if (rv == 0)
		rv = kv_iter_status(it);
	kv_iter_destroy(it);
	return rv;
}

void control_store_snapshot_free(Noetl__Snapshot *snap)
{
	if (snap == NULL)
		return;
	for (size_t i = 0; i < snap->n_tenants; i++)
		protobuf_c_message_free_unpacked(&snap->tenants[i]->base, NULL);
	for (size_t i = 0; i < snap->n_packages; i++)
		protobuf_c_message_free_unpacked(&snap->packages[i]->base, NULL);
	for (size_t i = 0; i < snap->n_tokens; i++)
		protobuf_c_message_free_unpacked(&snap->tokens[i]->base, NULL);
	for (size_t i = 0; i < snap->n_secrets; i++)
		protobuf_c_message_free_unpacked(&snap->secrets[i]->base, NULL);
	free(snap->tenants);
	free(snap->packages);
	free(snap->tokens);
	free(snap->secrets);
	free(snap);
}

struct pkg_acc {
	Noetl__Package **a; /* collected packages */
	size_t n, cap;      /* count, capacity */
};

int control_store_snapshot(struct control_store *s, Noetl__Snapshot **out)
{
	Noetl__Snapshot *snap = calloc(1, sizeof(*snap));
	if (snap == NULL)
		return -ENOMEM;
	noetl__snapshot__init(snap);
	pthread_mutex_lock(&s->write);
	snap->revision = changelog_head(s->log);
	int rv = control_store_collect(s, 't', NULL, &noetl__tenant__descriptor,
	                               (ProtobufCMessage ***)&snap->tenants, &snap->n_tenants);
	if (rv == 0)
		rv = control_store_collect(s, 'k', NULL, &noetl__token_info__descriptor,
		                           (ProtobufCMessage ***)&snap->tokens, &snap->n_tokens);
	if (rv == 0)
		rv = control_store_collect(s, 'w', NULL, &noetl__webhook_secret__descriptor,
		                           (ProtobufCMessage ***)&snap->secrets, &snap->n_secrets);
	if (rv == 0) {
		struct key lo, hi;
		package_range(NULL, &lo, &hi);
		struct kv_iter *it = NULL;
		struct pkg_acc acc = {0};
		rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
		if (rv == 0)
			kv_iter_seek_first(it);
		for (; rv == 0 && kv_iter_valid(it); kv_iter_next(it)) {
			size_t vlen;
			const void *val = kv_iter_value(it, &vlen);
			if (acc.n == acc.cap) {
				size_t cap = acc.cap ? acc.cap * 2 : 16;
				Noetl__Package **na = realloc(acc.a, cap * sizeof(*na));
				if (na == NULL) {
					rv = -ENOMEM;
					break;
				}
				acc.a = na;
				acc.cap = cap;
			}
			acc.a[acc.n] = package_of(val, vlen);
			if (acc.a[acc.n] == NULL) {
				rv = -EIO;
				break;
			}
			acc.n++;
		}
		if (rv == 0)
			rv = kv_iter_status(it);
		kv_iter_destroy(it);
		/* Set even on failure, so the free below releases what was read. */
		snap->packages = acc.a;
		snap->n_packages = acc.n;
	}
	pthread_mutex_unlock(&s->write);
	if (rv != 0) {
		control_store_snapshot_free(snap);
		return rv;
	}
	*out = snap;
	return 0;
}
