/*
 * repository service: the noetl.Repository handlers. Each one checks its
 * decoded request, calls the store and answers; nothing here touches a
 * socket, so tests drive the handlers through rpc_invoke_local as well as
 * over a real server.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "content.h"
#include "jobdef.h"
#include "jsonschema.h"
#include "log.h"
#include "paging.h"
#include "metrics.h"
#include "repository.h"
#include "store.h"
#include "stream.h"
#include "util.h"

#define REFS_MAX 1024 /* files one package may reference */

struct repository {
	Noetl__Repository_Service svc;  /* first: handlers cast the service back */
	struct repository_store *store; /* state and change log */
	struct stream_pub *pub;         /* change stream; NULL if none */
	size_t max_file;                /* largest file accepted, bytes */
	int64_t started_ms;             /* for GetHealth uptime */
};

static struct repository *self(Noetl__Repository_Service *svc)
{
	return (struct repository *)svc;
}

/* Answers a store error: the store's own words if it gave any. */
static void fail_store(void *call, int rv, char *why, const char *what)
{
	Noetl__Status st;
	switch (rv) {
	case -ENOENT:
		st = NOETL__STATUS__NOT_FOUND;
		break;
	case -EEXIST:
		st = NOETL__STATUS__ALREADY_EXISTS;
		break;
	case -EBUSY:
		st = NOETL__STATUS__FAILED_PRECONDITION;
		break;
	case -EINVAL:
		st = NOETL__STATUS__INVALID_ARGUMENT;
		break;
	default:
		st = NOETL__STATUS__INTERNAL;
		break;
	}
	if (why != NULL)
		rpc_fail(call, st, "%s", why);
	else if (st == NOETL__STATUS__INTERNAL)
		rpc_fail(call, st, "%s failed in the repository store (%s); see its log", what,
		         strerror(-rv));
	else
		rpc_fail(call, st, "%s: %s", what, strerror(-rv));
	free(why);
}

static bool check_tenant(void *call, const char *tenant)
{
	if (util_valid_name(tenant, JOBDEF_TENANT_MAX))
		return true;
	rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
	         "tenant '%s' is not a valid tenant id: use 1-%d letters, digits, '_', '-' or "
	         "'.', not starting with '.'",
	         tenant, JOBDEF_TENANT_MAX);
	return false;
}

static bool check_name(void *call, const char *what, const char *name)
{
	if (util_valid_name(name, JOBDEF_ID_MAX))
		return true;
	rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
	         "%s '%.200s' is not a valid name: use 1-%d letters, digits, '_', '-' or '.', "
	         "not starting with '.' and without '..' or '/'",
	         what, name, JOBDEF_ID_MAX);
	return false;
}

static bool valid_type(int t)
{
	return t == NOETL__FILE_TYPE__FILE_WASM || t == NOETL__FILE_TYPE__FILE_JSON_SCHEMA;
}

/* Loads a json-schema file of one tenant for content_check's "$ref"s. */
struct loader {
	struct repository *r; /* the repository */
	const char *tenant;   /* whose files */
};

static int load_schema(void *arg, const char *name, json_t **out)
{
	const struct loader *l = arg;
	Noetl__FileInfo *fi;
	void *data;
	size_t len;
	int rv = repository_store_get(l->r->store, l->tenant, name, 0, &fi, &data, &len);
	if (rv != 0)
		return rv;
	bool schema = fi->type == NOETL__FILE_TYPE__FILE_JSON_SCHEMA;
	protobuf_c_message_free_unpacked(&fi->base, NULL);
	if (schema)
		rv = jsonschema_parse(data, len, out, NULL);
	free(data);
	return !schema ? -ENOENT : rv == 0 ? 0 : -EINVAL;
}

static void h_put_file(Noetl__Repository_Service *svc, const Noetl__PutFileRequest *in,
                       Noetl__FileInfo_Closure done, void *call)
{
	struct repository *r = self(svc);
	if (!check_tenant(call, in->tenant) || !check_name(call, "file name", in->name))
		goto fail;
	if (!valid_type(in->type)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "file '%s': unknown type %d; use wasm or json-schema", in->name,
		         (int)in->type);
		goto fail;
	}
	if (in->content.len > r->max_file) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED,
		         "file '%s' is %zu bytes, over the repository's limit of %zu bytes; upload "
		         "a smaller file or raise repository.max-file-size",
		         in->name, in->content.len, r->max_file);
		goto fail;
	}
	if (in->content.len == 0) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "file '%s' is empty; upload the file's content", in->name);
		goto fail;
	}
	char *why = NULL;
	struct loader l = {r, in->tenant};
	int rv = content_check(in->type, in->name, in->content.data, in->content.len, load_schema,
	                       &l, &why);
	if (rv != 0) {
		fail_store(call, rv, why, "checking the file");
		goto fail;
	}
	Noetl__FileInfo *fi;
	rv = repository_store_put(r->store, in->tenant, in->name, in->type, in->content.data,
	                          in->content.len, util_now_ms(), &fi, &why);
	if (rv != 0) {
		fail_store(call, rv, why, "storing the file");
		goto fail;
	}
	log_info("put %s/%s version %u (%zu bytes, sha256 %.12s)", fi->tenant, fi->name,
	         fi->version, (size_t)fi->size, fi->sha256);
	done(fi, call);
	protobuf_c_message_free_unpacked(&fi->base, NULL);
	return;
fail:
	done(NULL, call);
}

static bool check_ref(void *call, const Noetl__FileRef *in)
{
	return check_tenant(call, in->tenant) && check_name(call, "file name", in->name);
}

static void fail_lookup(void *call, int rv, const Noetl__FileRef *in)
{
	if (rv == -ENOENT && in->version != 0)
		rpc_fail(call, NOETL__STATUS__NOT_FOUND,
		         "file '%s' of tenant '%s' has no version %u; see `noetlctl files list %s`",
		         in->name, in->tenant, in->version, in->tenant);
	else if (rv == -ENOENT)
		rpc_fail(
		        call, NOETL__STATUS__NOT_FOUND,
		        "file '%s' of tenant '%s' does not exist; upload it with `noetlctl upload`",
		        in->name, in->tenant);
	else
		fail_store(call, rv, NULL, "reading the file");
}

static void h_get_file(Noetl__Repository_Service *svc, const Noetl__FileRef *in,
                       Noetl__GetFileReply_Closure done, void *call)
{
	struct repository *r = self(svc);
	if (!check_ref(call, in)) {
		done(NULL, call);
		return;
	}
	Noetl__FileInfo *fi;
	void *data;
	size_t len;
	int rv =
	        repository_store_get(r->store, in->tenant, in->name, in->version, &fi, &data, &len);
	if (rv != 0) {
		fail_lookup(call, rv, in);
		done(NULL, call);
		return;
	}
	Noetl__GetFileReply rep = NOETL__GET_FILE_REPLY__INIT;
	rep.info = fi;
	rep.content.data = data;
	rep.content.len = len;
	done(&rep, call);
	free(data);
	protobuf_c_message_free_unpacked(&fi->base, NULL);
}

static void h_stat_file(Noetl__Repository_Service *svc, const Noetl__FileRef *in,
                        Noetl__FileInfo_Closure done, void *call)
{
	struct repository *r = self(svc);
	if (!check_ref(call, in)) {
		done(NULL, call);
		return;
	}
	Noetl__FileInfo *fi;
	int rv = repository_store_get(r->store, in->tenant, in->name, in->version, &fi, NULL, NULL);
	if (rv != 0) {
		fail_lookup(call, rv, in);
		done(NULL, call);
		return;
	}
	done(fi, call);
	protobuf_c_message_free_unpacked(&fi->base, NULL);
}

static void h_list_files(Noetl__Repository_Service *svc, const Noetl__ListFilesRequest *in,
                         Noetl__ListFilesReply_Closure done, void *call)
{
	struct repository *r = self(svc);
	if (!check_tenant(call, in->tenant)) {
		done(NULL, call);
		return;
	}
	uint32_t limit = paging_limit(in->page);
	/* The cursor is the last name of the previous page; it is only used as
	 * a seek key, so any bytes are harmless, but keep it a string. */
	char cursor[JOBDEF_ID_MAX + 1] = "";
	if (in->page != NULL && in->page->cursor.len > 0) {
		if (in->page->cursor.len > JOBDEF_ID_MAX ||
		    memchr(in->page->cursor.data, 0, in->page->cursor.len) != NULL) {
			rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
			         "page cursor is not one this service returned; start again "
			         "without a cursor");
			done(NULL, call);
			return;
		}
		memcpy(cursor, in->page->cursor.data, in->page->cursor.len);
		cursor[in->page->cursor.len] = '\0';
	}
	Noetl__FileInfo **files;
	size_t n;
	char *next;
	uint64_t rev;
	int rv =
	        repository_store_list(r->store, in->tenant, cursor, limit, &files, &n, &next, &rev);
	if (rv != 0) {
		fail_store(call, rv, NULL, "listing files");
		done(NULL, call);
		return;
	}
	Noetl__ListFilesReply rep = NOETL__LIST_FILES_REPLY__INIT;
	rep.files = files;
	rep.n_files = n;
	rep.revision = rev;
	if (next != NULL) {
		rep.next_cursor.data = (uint8_t *)next;
		rep.next_cursor.len = strlen(next);
	}
	done(&rep, call);
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&files[i]->base, NULL);
	free(files);
	free(next);
}

static void h_delete_file(Noetl__Repository_Service *svc, const Noetl__FileRef *in,
                          Noetl__Empty_Closure done, void *call)
{
	struct repository *r = self(svc);
	if (!check_ref(call, in)) {
		done(NULL, call);
		return;
	}
	if (in->version != 0) {
		/* Versions are history: consumers pin files by name and content
		 * hash, so a file is deleted as a whole or not at all. */
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "delete removes every version of '%s'; call it without a version",
		         in->name);
		done(NULL, call);
		return;
	}
	char *why = NULL;
	int rv = repository_store_delete(r->store, in->tenant, in->name, util_now_ms(), &why);
	if (rv == -ENOENT) {
		fail_lookup(call, rv, in);
		done(NULL, call);
		return;
	}
	if (rv != 0) {
		fail_store(call, rv, why, "deleting the file");
		done(NULL, call);
		return;
	}
	log_info("deleted %s/%s", in->tenant, in->name);
	Noetl__Empty e = NOETL__EMPTY__INIT;
	done(&e, call);
}

static void h_set_references(Noetl__Repository_Service *svc, const Noetl__SetReferencesRequest *in,
                             Noetl__Empty_Closure done, void *call)
{
	struct repository *r = self(svc);
	if (!check_tenant(call, in->tenant) || !check_name(call, "package id", in->package))
		goto fail;
	if (in->n_files != in->n_types) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "references: %zu files but %zu types; give one type per file", in->n_files,
		         in->n_types);
		goto fail;
	}
	if (in->n_files > REFS_MAX) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED,
		         "package '%s' references %zu files; at most %d are allowed", in->package,
		         in->n_files, REFS_MAX);
		goto fail;
	}
	for (size_t i = 0; i < in->n_files; i++) {
		if (!check_name(call, "referenced file", in->files[i]))
			goto fail;
		if (!valid_type(in->types[i])) {
			rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
			         "referenced file '%s' has unknown type %d", in->files[i],
			         (int)in->types[i]);
			goto fail;
		}
	}
	char *why = NULL;
	int rv = repository_store_set_refs(r->store, in->tenant, in->package, in->files, in->types,
	                                   in->n_files, &why);
	if (rv == -ENOENT) {
		rpc_fail(call, NOETL__STATUS__FAILED_PRECONDITION,
		         "package '%s' of tenant '%s' uses files the repository does not have: "
		         "%s; upload them with `noetlctl upload` first",
		         in->package, in->tenant, why != NULL ? why : "?");
		free(why);
		goto fail;
	}
	if (rv != 0) {
		fail_store(call, rv, why, "recording references");
		goto fail;
	}
	Noetl__Empty e = NOETL__EMPTY__INIT;
	done(&e, call);
	return;
fail:
	done(NULL, call);
}

static void h_changes(Noetl__Repository_Service *svc, const Noetl__ChangesRequest *in,
                      Noetl__ChangesReply_Closure done, void *call)
{
	struct repository *r = self(svc);
	Noetl__ChangesReply *rep;
	int rv = changelog_read(repository_store_changelog(r->store), in->since, in->topic,
	                        in->limit, &rep);
	if (rv != 0) {
		fail_store(call, rv, NULL, "reading changes");
		done(NULL, call);
		return;
	}
	done(rep, call);
	changelog_reply_free(rep);
}

static void h_get_health(Noetl__Repository_Service *svc, const Noetl__Empty *in,
                         Noetl__Health_Closure done, void *call)
{
	(void)in;
	struct repository *r = self(svc);
	Noetl__Health h = NOETL__HEALTH__INIT;
	h.service = "repository";
	h.version = NOETL_VERSION;
	h.ready = true;
	h.detail = "";
	h.revision = changelog_head(repository_store_changelog(r->store));
	h.uptime_ms = util_now_ms() - r->started_ms;
	done(&h, call);
}

static const Noetl__Repository_Service service_init = NOETL__REPOSITORY__INIT(h_);

int repository_create(const struct repository_config *cfg, struct repository **out)
{
	struct repository *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->svc = service_init;
	r->max_file = cfg->max_file_bytes > 0 ? cfg->max_file_bytes : REPOSITORY_DEFAULT_MAX_FILE;
	r->started_ms = util_now_ms();
	int rv = 0;
	if (cfg->stream_url != NULL && cfg->stream_url[0] != '\0') {
		rv = stream_pub_create(cfg->stream_url, cfg->heartbeat_ms, cfg->tls, &r->pub);
		if (rv != 0) {
			log_error("repository: cannot publish changes on '%s': %s", cfg->stream_url,
			          strerror(-rv));
			goto fail;
		}
	}
	rv = repository_store_open(cfg->data_dir, r->pub, &r->store);
	if (rv != 0) {
		log_error("repository: cannot open the store in '%s': %s", cfg->data_dir,
		          strerror(-rv));
		goto fail;
	}
	if (r->pub != NULL)
		stream_pub_set_head(r->pub, changelog_head(repository_store_changelog(r->store)));
	*out = r;
	return 0;
fail:
	stream_pub_destroy(r->pub);
	free(r);
	return rv;
}

ProtobufCService *repository_service(struct repository *r)
{
	return &r->svc.base;
}

uint64_t repository_revision(struct repository *r)
{
	return changelog_head(repository_store_changelog(r->store));
}

static void emit_revision(struct metrics_emitter *e, void *arg)
{
	metrics_emit(e, NULL, (double)repository_revision(arg));
}

int repository_metrics(struct repository *r, struct metrics *m)
{
	return metrics_callback(m, "noetl_repository_revision",
	                        "newest revision of the repository's change stream", NULL,
	                        METRICS_GAUGE, emit_revision, r);
}

void repository_destroy(struct repository *r)
{
	if (r == NULL)
		return;
	repository_store_close(r->store);
	stream_pub_destroy(r->pub);
	free(r);
}
