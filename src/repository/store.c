/*
 * repository store: key layout and kv calls of the File Repository. See
 * store.h for the layout and the locking rule.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"
#include "util.h"

#define KEY_MAX    512 /* kind + tenant(64) + name(128) + package(128) + separators */
#define LOG_PREFIX "L"

struct repository_store {
	struct kv *kv;         /* the RocksDB store */
	struct changelog *log; /* change log under LOG_PREFIX */
	pthread_mutex_t write; /* serialises writes and consistent listings */
};

/* A key under construction: a kind byte then NUL-terminated parts. */
struct key {
	uint8_t b[KEY_MAX]; /* bytes */
	size_t n;           /* length */
};

static void key_init(struct key *k, char kind)
{
	k->b[0] = (uint8_t)kind;
	k->n = 1;
}

/* Appends s and, if sep, a NUL separator. Names are bounded by the service's
 * validation; an overlong part is truncated rather than overflowing, and a
 * truncated key simply matches nothing. */
static void key_str(struct key *k, const char *s, bool sep)
{
	size_t len = strlen(s);
	if (len > KEY_MAX - k->n - 6)
		len = KEY_MAX - k->n - 6;
	memcpy(k->b + k->n, s, len);
	k->n += len;
	if (sep)
		k->b[k->n++] = 0;
}

static void key_u32(struct key *k, uint32_t v)
{
	k->b[k->n++] = (uint8_t)(v >> 24);
	k->b[k->n++] = (uint8_t)(v >> 16);
	k->b[k->n++] = (uint8_t)(v >> 8);
	k->b[k->n++] = (uint8_t)v;
}

static uint32_t get_be32(const void *v)
{
	const uint8_t *p = v;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The exclusive upper bound of every key starting with k: k with its last
 * byte incremented (k never ends in 0xff here: it ends in a NUL separator). */
static void key_upper(const struct key *k, struct key *up)
{
	*up = *k;
	up->b[up->n - 1]++;
}

/* kind tenant \0 name [\0] */
static void key_file(struct key *k, char kind, const char *tenant, const char *name, bool sep)
{
	key_init(k, kind);
	key_str(k, tenant, true);
	key_str(k, name, sep);
}

static void key_version(struct key *k, char kind, const char *tenant, const char *name,
                        uint32_t version)
{
	key_file(k, kind, tenant, name, true);
	key_u32(k, version);
}

int repository_store_open(const char *dir, struct stream_pub *pub, struct repository_store **out)
{
	struct repository_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	int rv = changelog_open_store(dir, LOG_PREFIX, 1, pub, &s->kv, &s->log);
	if (rv != 0) {
		free(s);
		return rv;
	}
	pthread_mutex_init(&s->write, NULL);
	*out = s;
	return 0;
}

void repository_store_close(struct repository_store *s)
{
	if (s == NULL)
		return;
	changelog_close_store(s->kv, s->log);
	pthread_mutex_destroy(&s->write);
	free(s);
}

struct changelog *repository_store_changelog(struct repository_store *s)
{
	return s->log;
}

/* Reads and unpacks a FileInfo. -ENOENT, -EIO (also for an undecodable
 * value, which is logged: the store is corrupt). */
static int read_info(struct repository_store *s, const struct key *k, Noetl__FileInfo **out)
{
	void *val;
	size_t len;
	int rv = kv_get(s->kv, k->b, k->n, &val, &len);
	if (rv != 0)
		return rv;
	Noetl__FileInfo *fi = noetl__file_info__unpack(NULL, len, val);
	free(val);
	if (fi == NULL) {
		log_error("repository: undecodable file record (%zu bytes)", len);
		return -EIO;
	}
	*out = fi;
	return 0;
}

static void *pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	*len = n;
	return buf;
}

/* Adds a FileChange to b, checking that it got the revision the caller
 * predicted and already wrote into the state (the change log hands out
 * head + 1 under our write lock). */
static int add_change(struct repository_store *s, struct kv_batch *b, const char *tenant,
                      Noetl__FileChange__Kind kind, Noetl__FileInfo *info, int64_t now_ms,
                      uint64_t expect)
{
	Noetl__FileChange fc = NOETL__FILE_CHANGE__INIT;
	fc.kind = kind;
	fc.info = info;
	size_t len;
	void *body = pack(&fc.base, &len);
	if (body == NULL)
		return -ENOMEM;
	uint64_t rev = changelog_add(s->log, b, tenant, body, len, now_ms);
	free(body);
	if (rev != expect) {
		log_error("repository: change log gave revision %llu, expected %llu",
		          (unsigned long long)rev, (unsigned long long)expect);
		return -EIO;
	}
	return 0;
}

/* Writes b synced and commits or aborts the change log accordingly. */
static int write_batch(struct repository_store *s, struct kv_batch *b, bool logged)
{
	int rv = kv_write(s->kv, b, true);
	if (logged) {
		if (rv == 0)
			changelog_commit(s->log);
		else
			changelog_abort(s->log);
	}
	return rv;
}

static const char *type_word(Noetl__FileType t)
{
	return t == NOETL__FILE_TYPE__FILE_WASM ? "wasm" : "json-schema";
}

int repository_store_put(struct repository_store *s, const char *tenant, const char *name,
                         Noetl__FileType type, const void *data, size_t len, int64_t now_ms,
                         Noetl__FileInfo **out, char **why)
{
	struct key k;
	Noetl__FileInfo *old = NULL;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);

	key_file(&k, 'f', tenant, name, false);
	int rv = read_info(s, &k, &old);
	if (rv == 0 && old->type != type) {
		if (asprintf(why,
		             "file '%s' of tenant '%s' exists as a %s file; delete it first or "
		             "choose another name",
		             name, tenant, type_word(old->type)) < 0)
			*why = NULL;
		rv = -EEXIST;
		goto done;
	}
	if (rv != 0 && rv != -ENOENT)
		goto done;

	uint32_t version = 1;
	void *val;
	size_t vlen;
	key_file(&k, 'n', tenant, name, false);
	rv = kv_get(s->kv, k.b, k.n, &val, &vlen);
	if (rv == 0) {
		if (vlen == 4)
			version = get_be32(val) + 1;
		free(val);
	} else if (rv != -ENOENT) {
		goto done;
	}

	char sha[65];
	util_sha256_hex(data, len, sha);
	uint64_t rev = changelog_head(s->log) + 1;
	Noetl__FileInfo fi = NOETL__FILE_INFO__INIT;
	fi.tenant = (char *)tenant;
	fi.name = (char *)name;
	fi.type = type;
	fi.version = version;
	fi.sha256 = sha;
	fi.size = len;
	fi.created_ms = now_ms;
	fi.revision = rev;

	size_t plen;
	void *packed = pack(&fi.base, &plen);
	if (packed == NULL) {
		rv = -ENOMEM;
		goto done;
	}
	key_version(&k, 'v', tenant, name, version);
	kv_batch_put(b, k.b, k.n, packed, plen);
	key_version(&k, 'd', tenant, name, version);
	kv_batch_put(b, k.b, k.n, data, len);
	key_file(&k, 'f', tenant, name, false);
	kv_batch_put(b, k.b, k.n, packed, plen);
	uint8_t vb[4] = {(uint8_t)(version >> 24), (uint8_t)(version >> 16),
	                 (uint8_t)(version >> 8), (uint8_t)version};
	key_file(&k, 'n', tenant, name, false);
	kv_batch_put(b, k.b, k.n, vb, sizeof(vb));

	rv = add_change(s, b, tenant, NOETL__FILE_CHANGE__KIND__PUT, &fi, now_ms, rev);
	if (rv == 0)
		rv = write_batch(s, b, true);
	else
		changelog_abort(s->log);
	if (rv == 0) {
		*out = noetl__file_info__unpack(NULL, plen, packed);
		if (*out == NULL)
			rv = -ENOMEM;
	}
	free(packed);

done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	if (old != NULL)
		protobuf_c_message_free_unpacked(&old->base, NULL);
	return rv;
}

int repository_store_get(struct repository_store *s, const char *tenant, const char *name,
                         uint32_t version, Noetl__FileInfo **info, void **content, size_t *len)
{
	struct key k;
	Noetl__FileInfo *fi;
	if (version == 0)
		key_file(&k, 'f', tenant, name, false);
	else
		key_version(&k, 'v', tenant, name, version);
	int rv = read_info(s, &k, &fi);
	if (rv != 0)
		return rv;
	if (content != NULL) {
		key_version(&k, 'd', tenant, name, fi->version);
		void *data;
		size_t dlen;
		/* A delete between the two reads shows as the file being gone. */
		rv = kv_get(s->kv, k.b, k.n, &data, &dlen);
		if (rv != 0) {
			protobuf_c_message_free_unpacked(&fi->base, NULL);
			return rv;
		}
		*content = data;
		*len = dlen;
	}
	*info = fi;
	return 0;
}

/* Collects the packages referencing tenant/name into a malloc'ed
 * "'a', 'b'" list; *count gets how many. NULL with count 0 if none. */
static int referencing_packages(struct repository_store *s, const char *tenant, const char *name,
                                char **list, size_t *count)
{
	struct key lo, hi;
	key_file(&lo, 'r', tenant, name, true);
	key_upper(&lo, &hi);
	struct kv_iter *it;
	int rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		return rv;
	char *acc = NULL;
	size_t n = 0;
	for (kv_iter_seek_first(it); kv_iter_valid(it) && n < 20; kv_iter_next(it)) {
		size_t klen;
		const char *key = kv_iter_key(it, &klen);
		int plen = (int)(klen - lo.n);
		char *next;
		if (asprintf(&next, "%s%s'%.*s'", acc != NULL ? acc : "", acc != NULL ? ", " : "",
		             plen, key + lo.n) < 0) {
			rv = -ENOMEM;
			break;
		}
		free(acc);
		acc = next;
		n++;
	}
	if (rv == 0)
		rv = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rv != 0) {
		free(acc);
		return rv;
	}
	*list = acc;
	*count = n;
	return 0;
}

int repository_store_delete(struct repository_store *s, const char *tenant, const char *name,
                            int64_t now_ms, char **why)
{
	struct key k, hi;
	Noetl__FileInfo *fi = NULL;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);

	key_file(&k, 'f', tenant, name, false);
	int rv = read_info(s, &k, &fi);
	if (rv != 0)
		goto done;

	char *users = NULL;
	size_t nusers = 0;
	rv = referencing_packages(s, tenant, name, &users, &nusers);
	if (rv != 0)
		goto done;
	if (nusers > 0) {
		if (asprintf(why,
		             "file '%s' of tenant '%s' is used by package%s %s; delete those "
		             "packages, or update them to stop using it, first",
		             name, tenant, nusers > 1 ? "s" : "", users) < 0)
			*why = NULL;
		free(users);
		rv = -EBUSY;
		goto done;
	}

	kv_batch_delete(b, k.b, k.n);
	key_file(&k, 'v', tenant, name, true);
	key_upper(&k, &hi);
	kv_batch_delete_range(b, k.b, k.n, hi.b, hi.n);
	key_file(&k, 'd', tenant, name, true);
	key_upper(&k, &hi);
	kv_batch_delete_range(b, k.b, k.n, hi.b, hi.n);

	uint64_t rev = changelog_head(s->log) + 1;
	fi->revision = rev;
	rv = add_change(s, b, tenant, NOETL__FILE_CHANGE__KIND__DELETED, fi, now_ms, rev);
	if (rv == 0)
		rv = write_batch(s, b, true);
	else
		changelog_abort(s->log);

done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	if (fi != NULL)
		protobuf_c_message_free_unpacked(&fi->base, NULL);
	return rv;
}

/* Appends one problem to a "; "-separated message. */
static int append(char **acc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append(char **acc, const char *fmt, ...)
{
	char *part, *next;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&part, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	if (asprintf(&next, "%s%s%s", *acc != NULL ? *acc : "", *acc != NULL ? "; " : "", part) <
	    0) {
		free(part);
		return -ENOMEM;
	}
	free(part);
	free(*acc);
	*acc = next;
	return 0;
}

/* Checks that every referenced file exists with its type; the problems go to
 * *problems. Under the write lock. */
static int check_refs(struct repository_store *s, const char *tenant, char *const *files,
                      const Noetl__FileType *types, size_t n, char **problems)
{
	for (size_t i = 0; i < n; i++) {
		struct key k;
		Noetl__FileInfo *fi;
		key_file(&k, 'f', tenant, files[i], false);
		int rv = read_info(s, &k, &fi);
		if (rv == -ENOENT) {
			rv = append(problems, "%s file '%s' does not exist", type_word(types[i]),
			            files[i]);
		} else if (rv == 0) {
			if (fi->type != types[i])
				rv = append(problems, "'%s' is a %s file, not %s", files[i],
				            type_word(fi->type), type_word(types[i]));
			protobuf_c_message_free_unpacked(&fi->base, NULL);
		}
		if (rv != 0)
			return rv;
	}
	return 0;
}

int repository_store_set_refs(struct repository_store *s, const char *tenant, const char *package,
                              char *const *files, const Noetl__FileType *types, size_t n,
                              char **why)
{
	char *problems = NULL;
	struct kv_batch *b = kv_batch_create();
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->write);

	int rv = check_refs(s, tenant, files, types, n, &problems);
	if (rv != 0)
		goto done;
	if (problems != NULL) {
		*why = problems;
		problems = NULL;
		rv = -ENOENT;
		goto done;
	}

	/* Drop the old set (both directions), then add the new one; a batch
	 * applies in order, so a file in both sets ends up referenced. */
	struct key lo, hi, k;
	key_file(&lo, 'p', tenant, package, true);
	key_upper(&lo, &hi);
	struct kv_iter *it;
	rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		goto done;
	for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
		size_t klen;
		const char *key = kv_iter_key(it, &klen);
		char name[KEY_MAX];
		size_t nlen = klen - lo.n;
		memcpy(name, key + lo.n, nlen);
		name[nlen] = '\0';
		kv_batch_delete(b, key, klen);
		key_file(&k, 'r', tenant, name, true);
		key_str(&k, package, false);
		kv_batch_delete(b, k.b, k.n);
	}
	rv = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rv != 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		uint8_t t = (uint8_t)types[i];
		key_file(&k, 'p', tenant, package, true);
		key_str(&k, files[i], false);
		kv_batch_put(b, k.b, k.n, &t, 1);
		key_file(&k, 'r', tenant, files[i], true);
		key_str(&k, package, false);
		kv_batch_put(b, k.b, k.n, "", 0);
	}
	rv = write_batch(s, b, false);

done:
	pthread_mutex_unlock(&s->write);
	kv_batch_destroy(b);
	free(problems);
	return rv;
}

int repository_store_list(struct repository_store *s, const char *tenant, const char *cursor,
                          uint32_t limit, Noetl__FileInfo ***files, size_t *count, char **next,
                          uint64_t *revision)
{
	struct key lo, hi, from;
	key_init(&lo, 'f');
	key_str(&lo, tenant, true);
	key_upper(&lo, &hi);
	if (limit == 0)
		limit = 100;
	Noetl__FileInfo **arr = calloc(limit + 1, sizeof(*arr));
	if (arr == NULL)
		return -ENOMEM;
	size_t n = 0;
	char *more = NULL;
	struct kv_iter *it;

	pthread_mutex_lock(&s->write);
	uint64_t rev = changelog_head(s->log);
	int rv = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rv != 0)
		goto unlock;
	if (cursor != NULL && cursor[0] != '\0') {
		/* Seek just past the cursor's name: name followed by a NUL sorts
		 * right after every key equal to name and before any longer one. */
		key_file(&from, 'f', tenant, cursor, true);
		kv_iter_seek(it, from.b, from.n);
	} else {
		kv_iter_seek_first(it);
	}
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t vlen;
		const void *val = kv_iter_value(it, &vlen);
		if (n == limit) {
			/* One more exists: the cursor is the last name returned. */
			more = util_xstrdup(arr[n - 1]->name);
			break;
		}
		arr[n] = noetl__file_info__unpack(NULL, vlen, val);
		if (arr[n] == NULL) {
			log_error("repository: undecodable file record in listing");
			rv = -EIO;
			break;
		}
		n++;
	}
	if (rv == 0)
		rv = kv_iter_status(it);
	kv_iter_destroy(it);
unlock:
	pthread_mutex_unlock(&s->write);
	if (rv != 0) {
		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(&arr[i]->base, NULL);
		free(arr);
		free(more);
		return rv;
	}
	*files = arr;
	*count = n;
	*next = more;
	*revision = rev;
	return 0;
}
