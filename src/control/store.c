/*
 * control store: opening, the shared helpers, tenants, tokens, webhook
 * secrets and schedule state. Packages live in store_pkg.c. See store.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "store_int.h"
#include "util.h"

int control_store_open(const char *dir, struct stream_pub *pub, struct control_store **out)
{
	struct control_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	int rv = changelog_open_store(dir, "L", 1, pub, &s->kv, &s->log);
	if (rv != 0) {
		free(s);
		return rv;
	}
	pthread_mutex_init(&s->write, NULL);
	*out = s;
	return 0;
}

void control_store_close(struct control_store *s)
{
	if (s == NULL)
		return;
	changelog_close_store(s->kv, s->log);
	pthread_mutex_destroy(&s->write);
	free(s);
}

struct changelog *control_store_changelog(struct control_store *s)
{
	return s->log;
}

void *control_store_pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	*len = n;
	return buf;
}

int control_store_read(struct control_store *s, const struct key *k,
                       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	void *val;
	size_t len;
	int rv = kv_get(s->kv, k->b, k->n, &val, &len);
	if (rv != 0)
		return rv;
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, val);
	free(val);
	if (m == NULL) {
		log_error("control: undecodable %s record (%zu bytes): the store is damaged",
		          desc->short_name, len);
		return -EIO;
	}
	*out = m;
	return 0;
}

int control_store_add_change(struct control_store *s, struct kv_batch *b, const char *tenant,
                             const Noetl__DefinitionChange *dc, int64_t now_ms, uint64_t expect)
{
	size_t len;
	void *body = control_store_pack(&dc->base, &len);
	if (body == NULL)
		return -ENOMEM;
	uint64_t rev = changelog_add(s->log, b, tenant, body, len, now_ms);
	free(body);
	if (rev != expect) {
		log_error("control: change log gave revision %llu, expected %llu",
		          (unsigned long long)rev, (unsigned long long)expect);
		changelog_abort(s->log);
		return -EIO;
	}
	return 0;
}

int control_store_write(struct control_store *s, struct kv_batch *b)
{
	int rv = kv_write(s->kv, b, true);
	if (rv == 0)
		changelog_commit(s->log);
	else
		changelog_abort(s->log);
	return rv;
}

/* Writes a change whose state is already in b: adds the change, writes. */
static int commit_change(struct control_store *s, struct kv_batch *b, const char *tenant,
                         const Noetl__DefinitionChange *dc, int64_t now_ms)
{
	int rv = control_store_add_change(s, b, tenant, dc, now_ms, changelog_head(s->log) + 1);
	if (rv != 0)
		return rv;
	return control_store_write(s, b);
}

/* 0 if k holds a value, -ENOENT if it does not, else the store's error. */
static int present(struct control_store *s, const struct key *k)
{
	void *val;
	size_t len;
	int rv = kv_get(s->kv, k->b, k->n, &val, &len);
	if (rv == 0)
		free(val);
	return rv;
}

/* Puts m, packed, under k in b. 0 or -ENOMEM. */
static int put_msg(struct kv_batch *b, const struct key *k, const ProtobufCMessage *m)
{
	size_t len;
	void *packed = control_store_pack(m, &len);
	if (packed == NULL)
		return -ENOMEM;
	kv_batch_put(b, k->b, k->n, packed, len);
	free(packed);
	return 0;
}

/* --- tenants --- */

bool control_store_has_tenant(struct control_store *s, const char *id)
{
	struct key k;
	key_2(&k, 't', id, NULL);
	return present(s, &k) == 0;
}

int control_store_add_tenant(struct control_store *s, const char *id, int64_t now_ms,
                             Noetl__Tenant **out)
{
	struct key k;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);
	int rv = -EEXIST;
	if (control_store_has_tenant(s, id))
		goto done;
	Noetl__Tenant t = NOETL__TENANT__INIT;
	t.id = (char *)id;
	t.created_ms = now_ms;
	size_t len;
	void *packed = control_store_pack(&t.base, &len);
	rv = -ENOMEM;
	if (packed == NULL)
		goto done;
	key_2(&k, 't', id, NULL);
	kv_batch_put(b, k.b, k.n, packed, len);
	Noetl__DefinitionChange dc = NOETL__DEFINITION_CHANGE__INIT;
	dc.kind = NOETL__DEFINITION_CHANGE__KIND__TENANT_ADDED;
	dc.tenant = (char *)id;
	rv = commit_change(s, b, id, &dc, now_ms);
	if (rv == 0) {
		*out = noetl__tenant__unpack(NULL, len, packed);
		if (*out == NULL)
			rv = -ENOMEM;
	}
	free(packed);
done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	return rv;
}

/* Finds one deployed package of tenant: its id into a malloc'ed *name, or
 * NULL if none. */
static int first_package(struct control_store *s, const char *tenant, char **name)
{
	struct key lo, hi;
	key_2(&lo, 'p', tenant, "");
	key_upper(&lo, &hi);
	struct kv_iter *it;
	int rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		return rv;
	*name = NULL;
	kv_iter_seek_first(it);
	if (kv_iter_valid(it)) {
		size_t klen;
		const char *key = kv_iter_key(it, &klen);
		*name = strndup(key + lo.n, klen - lo.n);
		if (*name == NULL)
			rv = -ENOMEM;
	}
	if (rv == 0)
		rv = kv_iter_status(it);
	kv_iter_destroy(it);
	return rv;
}

/* Adds a range delete of every key kind tenant \0 ... to b. */
static void drop_tenant_range(struct kv_batch *b, char kind, const char *tenant)
{
	struct key lo, hi;
	key_2(&lo, kind, tenant, "");
	key_upper(&lo, &hi);
	kv_batch_delete_range(b, lo.b, lo.n, hi.b, hi.n);
}

int control_store_remove_tenant(struct control_store *s, const char *id, int64_t now_ms, char **why)
{
	struct key k;
	char *pkg = NULL;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);
	int rv = -ESRCH;
	if (!control_store_has_tenant(s, id))
		goto done;
	rv = first_package(s, id, &pkg);
	if (rv != 0)
		goto done;
	if (pkg != NULL) {
		if (asprintf(why,
		             "tenant '%s' still has deployed packages (for example '%s'); delete "
		             "them with `noetlctl delete %s PACKAGE` first",
		             id, pkg, id) < 0)
			*why = NULL;
		rv = -ENOTEMPTY;
		goto done;
	}
	key_2(&k, 't', id, NULL);
	kv_batch_delete(b, k.b, k.n);
	/* Its history, tokens, secrets and schedule state go with it: a tenant
	 * added again later starts clean. Subscribers drop the tenant's tokens
	 * and secrets on TENANT_REMOVED. */
	drop_tenant_range(b, 'h', id);
	drop_tenant_range(b, 'k', id);
	drop_tenant_range(b, 'w', id);
	drop_tenant_range(b, 's', id);
	Noetl__DefinitionChange dc = NOETL__DEFINITION_CHANGE__INIT;
	dc.kind = NOETL__DEFINITION_CHANGE__KIND__TENANT_REMOVED;
	dc.tenant = (char *)id;
	rv = commit_change(s, b, id, &dc, now_ms);
done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	free(pkg);
	return rv;
}

/*
 * Collects every value under [lo, hi) unpacked with desc into a malloc'ed
 * array. Used by the listings; the caller holds the lock if it needs the
 * listing consistent with a revision.
 */
static int collect(struct control_store *s, const struct key *lo, const struct key *hi,
                   const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***arr, size_t *n)
{
	struct kv_iter *it;
	int rv = kv_iter_create(s->kv, lo->b, lo->n, hi->b, hi->n, &it);
	if (rv != 0)
		return rv;
	ProtobufCMessage **a = NULL;
	size_t cnt = 0, cap = 0;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			ProtobufCMessage **na = realloc(a, cap * sizeof(*a));
			if (na == NULL) {
				rv = -ENOMEM;
				break;
			}
			a = na;
		}
		size_t vlen;
		const void *val = kv_iter_value(it, &vlen);
		a[cnt] = protobuf_c_message_unpack(desc, NULL, vlen, val);
		if (a[cnt] == NULL) {
			log_error("control: undecodable %s record in a listing", desc->short_name);
			rv = -EIO;
			break;
		}
		cnt++;
	}
	if (rv == 0)
		rv = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rv != 0) {
		for (size_t i = 0; i < cnt; i++)
			protobuf_c_message_free_unpacked(a[i], NULL);
		free(a);
		return rv;
	}
	*arr = a;
	*n = cnt;
	return 0;
}

int control_store_collect(struct control_store *s, char kind, const char *tenant,
                          const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***arr,
                          size_t *n)
{
	struct key lo, hi;
	if (tenant != NULL)
		key_2(&lo, kind, tenant, "");
	else
		key_init(&lo, kind);
	if (tenant != NULL) {
		key_upper(&lo, &hi);
	} else {
		key_init(&hi, (char)(kind + 1));
	}
	return collect(s, &lo, &hi, desc, arr, n);
}

int control_store_list_tenants(struct control_store *s, Noetl__Tenant ***arr, size_t *n,
                               uint64_t *rev)
{
	pthread_mutex_lock(&s->write);
	uint64_t head = changelog_head(s->log);
	int rv = control_store_collect(s, 't', NULL, &noetl__tenant__descriptor,
	                               (ProtobufCMessage ***)arr, n);
	pthread_mutex_unlock(&s->write);
	if (rv == 0)
		*rev = head;
	return rv;
}

/* --- tokens and secrets --- */

int control_store_add_token(struct control_store *s, const Noetl__TokenInfo *info, int64_t now_ms)
{
	struct key k;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);
	int rv = -ESRCH;
	if (!control_store_has_tenant(s, info->tenant))
		goto done;
	key_2(&k, 'k', info->tenant, info->id);
	rv = present(s, &k);
	if (rv == 0)
		rv = -EEXIST;
	if (rv != -ENOENT)
		goto done;
	if ((rv = put_msg(b, &k, &info->base)) != 0)
		goto done;
	Noetl__DefinitionChange dc = NOETL__DEFINITION_CHANGE__INIT;
	dc.kind = NOETL__DEFINITION_CHANGE__KIND__TOKEN_CREATED;
	dc.tenant = info->tenant;
	dc.token = (Noetl__TokenInfo *)info;
	rv = commit_change(s, b, info->tenant, &dc, now_ms);
done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	return rv;
}

int control_store_list_tokens(struct control_store *s, const char *tenant, Noetl__TokenInfo ***arr,
                              size_t *n)
{
	return control_store_collect(s, 'k', tenant, &noetl__token_info__descriptor,
	                             (ProtobufCMessage ***)arr, n);
}

int control_store_revoke_token(struct control_store *s, const char *tenant, const char *id,
                               int64_t now_ms)
{
	struct key k;
	Noetl__TokenInfo *ti = NULL;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);
	key_2(&k, 'k', tenant, id);
	int rv =
	        control_store_read(s, &k, &noetl__token_info__descriptor, (ProtobufCMessage **)&ti);
	if (rv != 0)
		goto done;
	kv_batch_delete(b, k.b, k.n);
	Noetl__DefinitionChange dc = NOETL__DEFINITION_CHANGE__INIT;
	dc.kind = NOETL__DEFINITION_CHANGE__KIND__TOKEN_REVOKED;
	dc.tenant = (char *)tenant;
	dc.token = ti;
	rv = commit_change(s, b, tenant, &dc, now_ms);
done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	if (ti != NULL)
		protobuf_c_message_free_unpacked(&ti->base, NULL);
	return rv;
}

int control_store_set_secret(struct control_store *s, const Noetl__WebhookSecret *ws,
                             int64_t now_ms)
{
	struct key k;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);
	int rv = -ESRCH;
	if (!control_store_has_tenant(s, ws->tenant))
		goto done;
	key_2(&k, 'w', ws->tenant, ws->event);
	bool clear = ws->secret == NULL || ws->secret[0] == '\0';
	if (clear) {
		rv = present(s, &k);
		if (rv != 0) {
			if (rv == -ENOENT)
				rv = 0; /* nothing to clear: no change */
			goto done;
		}
		kv_batch_delete(b, k.b, k.n);
	} else if ((rv = put_msg(b, &k, &ws->base)) != 0) {
		goto done;
	}
	Noetl__DefinitionChange dc = NOETL__DEFINITION_CHANGE__INIT;
	dc.kind = NOETL__DEFINITION_CHANGE__KIND__SECRET_SET;
	dc.tenant = ws->tenant;
	dc.secret = (Noetl__WebhookSecret *)ws;
	rv = commit_change(s, b, ws->tenant, &dc, now_ms);
done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	return rv;
}

/* --- schedules --- */

static void key_schedule(struct key *k, const char *tenant, const char *pkg, const char *sched)
{
	key_2(k, 's', tenant, pkg);
	k->b[k->n++] = 0;
	key_str(k, sched, false);
}

int control_store_schedule_last(struct control_store *s, const char *tenant, const char *pkg,
                                const char *schedule, int64_t *last_ms)
{
	struct key k;
	void *val;
	size_t len;
	key_schedule(&k, tenant, pkg, schedule);
	int rv = kv_get(s->kv, k.b, k.n, &val, &len);
	if (rv != 0)
		return rv;
	if (len != 8) {
		free(val);
		log_error("control: schedule state of %s/%s/%s is damaged", tenant, pkg, schedule);
		return -EIO;
	}
	*last_ms = (int64_t)util_get_be64(val);
	free(val);
	return 0;
}

int control_store_schedule_fired(struct control_store *s, const char *tenant, const char *pkg,
                                 const char *schedule, int64_t fire_ms)
{
	struct key k;
	key_schedule(&k, tenant, pkg, schedule);
	pthread_mutex_lock(&s->write);
	void *val;
	size_t len;
	int rv = kv_get(s->kv, k.b, k.n, &val, &len);
	if (rv == 0) {
		free(val);
		uint8_t v[8];
		util_put_be64(v, (uint64_t)fire_ms);
		rv = kv_put(s->kv, k.b, k.n, v, sizeof(v), true);
	}
	pthread_mutex_unlock(&s->write);
	return rv;
}

/* Used by store_pkg.c: schedule state for a package change. */
void control_store_schedule_key(struct key *k, const char *tenant, const char *pkg,
                                const char *sched)
{
	key_schedule(k, tenant, pkg, sched);
}
