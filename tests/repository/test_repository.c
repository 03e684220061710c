/*
 * The File Repository through its handlers (rpc_invoke_local) and over a
 * real ipc:// socket: versions and hashes, names, size limits, content
 * checks, references and the change log.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repository.h"
#include "repository.pb-c.h"
#include "rpc.h"
#include "testrpc.h"
#include "testutil.h"
#include "util.h"

#define MAX_FILE 4096

static char dir[256];
static struct repository *repo;

/* (module (type (func)) (func (type 0)) (export "event" (func 0))) */
static const unsigned char wasm[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60,
        0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x09, 0x01, 0x05, 'e',  'v',
        'e',  'n',  't',  0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
};
/* The same module exporting function 5, which does not exist. */
static const unsigned char bad_export[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60,
        0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x09, 0x01, 0x05, 'e',  'v',
        'e',  'n',  't',  0x00, 0x05, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
};
static const char schema[] = "{\"type\":\"object\",\"required\":[\"name\"]}";

static void start(void)
{
	testutil_tempdir(dir, sizeof(dir));
	char path[300];
	snprintf(path, sizeof(path), "%s/store", dir);
	struct repository_config rc = {.data_dir = path, .max_file_bytes = MAX_FILE};
	cr_assert_eq(repository_create(&rc, &repo), 0);
}

static void stop(void)
{
	repository_destroy(repo);
	repo = NULL;
	testutil_rmtree(dir);
}

TestSuite(repository, .init = start, .fini = stop);

static int call(const char *method, const ProtobufCMessage *in, ProtobufCMessage **out, char **err)
{
	return testrpc_local(repository_service(repo), method, in, NULL, out, err);
}

static int put(const char *tenant, const char *name, Noetl__FileType type, const void *data,
               size_t len, Noetl__FileInfo **info, char **err)
{
	Noetl__PutFileRequest req = testrpc_put_file(tenant, name, type, data, len);
	return call("PutFile", &req.base, (ProtobufCMessage **)info, err);
}

static int get(const char *tenant, const char *name, uint32_t version, Noetl__GetFileReply **out,
               char **err)
{
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = (char *)tenant;
	ref.name = (char *)name;
	ref.version = version;
	return call("GetFile", &ref.base, (ProtobufCMessage **)out, err);
}

static int del(const char *tenant, const char *name, char **err)
{
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = (char *)tenant;
	ref.name = (char *)name;
	return call("DeleteFile", &ref.base, NULL, err);
}

static int set_refs(const char *tenant, const char *pkg, char **files, Noetl__FileType *types,
                    size_t n, char **err)
{
	Noetl__SetReferencesRequest req = NOETL__SET_REFERENCES_REQUEST__INIT;
	req.tenant = (char *)tenant;
	req.package = (char *)pkg;
	req.files = files;
	req.n_files = n;
	req.types = types;
	req.n_types = n;
	return call("SetReferences", &req.base, NULL, err);
}

Test(repository, every_put_creates_a_new_version_with_its_sha256)
{
	Noetl__FileInfo *a, *b;
	cr_assert_eq(put("acme", "s.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema,
	                 strlen(schema), &a, NULL),
	             0);
	const char *v2 = "{\"type\":\"string\"}";
	cr_assert_eq(
	        put("acme", "s.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, v2, strlen(v2), &b, NULL),
	        0);
	char sha[65];
	util_sha256_hex(schema, strlen(schema), sha);
	cr_expect_eq(a->version, 1);
	cr_expect_str_eq(a->sha256, sha);
	cr_expect_eq(a->size, strlen(schema));
	cr_expect_eq(b->version, 2);
	cr_expect_gt(b->revision, a->revision);

	Noetl__GetFileReply *latest, *first;
	cr_assert_eq(get("acme", "s.json", 0, &latest, NULL), 0);
	cr_expect_eq(latest->info->version, 2);
	cr_expect_eq(latest->content.len, strlen(v2));
	cr_expect_eq(memcmp(latest->content.data, v2, strlen(v2)), 0);
	cr_assert_eq(get("acme", "s.json", 1, &first, NULL), 0);
	cr_expect_eq(first->info->version, 1);
	cr_expect_eq(memcmp(first->content.data, schema, strlen(schema)), 0);

	char *err = NULL;
	Noetl__GetFileReply *none = NULL;
	cr_expect_eq(get("acme", "s.json", 3, &none, &err), NOETL__STATUS__NOT_FOUND);
	cr_expect(strstr(err, "no version 3") != NULL, "%s", err);
	free(err);
	cr_expect_eq(get("other", "s.json", 0, &none, NULL), NOETL__STATUS__NOT_FOUND,
	             "tenants do not see each other's files");

	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = "acme";
	ref.name = "s.json";
	Noetl__FileInfo *st;
	cr_assert_eq(call("StatFile", &ref.base, (ProtobufCMessage **)&st, NULL), 0);
	cr_expect_eq(st->version, 2);
	cr_expect_str_eq(st->sha256, b->sha256);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	protobuf_c_message_free_unpacked(&latest->base, NULL);
	protobuf_c_message_free_unpacked(&first->base, NULL);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	protobuf_c_message_free_unpacked(&b->base, NULL);
}

Test(repository, path_traversal_and_malformed_names_are_refused)
{
	char longname[200];
	memset(longname, 'a', 129);
	longname[129] = '\0';
	const char *bad[] = {"../etc/passwd", "a/b", "..",    ".",      ".hidden",  "a\\b",
	                     "a b",           "",    "..%2f", longname, "x/../../y"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;
		int st = put("acme", bad[i], NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL,
		             &err);
		cr_expect_eq(st, NOETL__STATUS__INVALID_ARGUMENT, "name '%s' gave %d", bad[i], st);
		cr_expect(err != NULL && strstr(err, "not a valid name") != NULL, "%s",
		          err != NULL ? err : "");
		free(err);
	}
	char *err = NULL;
	cr_expect_eq(put("../acme", "ok.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm),
	                 NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	free(err);

	/* Nothing was stored by any of them. */
	Noetl__ListFilesRequest lr = NOETL__LIST_FILES_REQUEST__INIT;
	lr.tenant = "acme";
	Noetl__ListFilesReply *rep;
	cr_assert_eq(call("ListFiles", &lr.base, (ProtobufCMessage **)&rep, NULL), 0);
	cr_expect_eq(rep->n_files, 0);
	cr_expect_eq(rep->revision, 0);
	protobuf_c_message_free_unpacked(&rep->base, NULL);

	/* 128 bytes is the limit, and it is allowed. */
	longname[128] = '\0';
	cr_expect_eq(
	        put("acme", longname, NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL, NULL),
	        0);
}

Test(repository, an_upload_over_the_size_limit_gets_resource_exhausted)
{
	size_t n = MAX_FILE + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	char *err = NULL;
	cr_expect_eq(
	        put("acme", "big.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, big, n, NULL, &err),
	        NOETL__STATUS__RESOURCE_EXHAUSTED);
	cr_expect(strstr(err, "over the repository's limit of 4096 bytes") != NULL, "%s", err);
	free(err);
	/* Exactly at the limit is fine. */
	big[MAX_FILE - 1] = '}';
	cr_expect_eq(put("acme", "big.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, big, MAX_FILE,
	                 NULL, NULL),
	             0);
	free(big);
	cr_expect_eq(
	        put("acme", "empty.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, "", 0, NULL, NULL),
	        NOETL__STATUS__INVALID_ARGUMENT);
}

Test(repository, files_that_are_not_what_their_type_says_are_refused)
{
	struct {
		Noetl__FileType type;
		const char *data;
		size_t len;
		const char *why;
	} cases[] = {
	        {NOETL__FILE_TYPE__FILE_WASM, "(module)", 8, "missing the \\0asm magic number"},
	        {NOETL__FILE_TYPE__FILE_WASM, (const char *)wasm, sizeof(wasm) - 3,
	         "runs past the end"},
	        {NOETL__FILE_TYPE__FILE_WASM, "\0asm\2\0\0\0", 8, "unsupported binary version 2"},
	        {NOETL__FILE_TYPE__FILE_WASM, "\0asm\1\0\0\0\x0e\x00", 10, "unknown section id 14"},
	        {NOETL__FILE_TYPE__FILE_WASM, (const char *)bad_export, sizeof(bad_export),
	         "export section"},
	        {NOETL__FILE_TYPE__FILE_JSON_SCHEMA, "{\"type\": ", 9,
	         "not valid JSON: invalid JSON at line 1, column 9"},
	        {NOETL__FILE_TYPE__FILE_JSON_SCHEMA, "{\"a\":1,\"a\":2}", 13, "not valid JSON"},
	        {NOETL__FILE_TYPE__FILE_JSON_SCHEMA, "42", 2, "must be a JSON object"},
	        {NOETL__FILE_TYPE__FILE_JSON_SCHEMA, "{\"minimum\":\"x\"}", 15,
	         "not a valid JSON Schema"},
	        {NOETL__FILE_TYPE__FILE_JSON_SCHEMA, "{\"$ref\":\"#/definitions/no\"}", 27,
	         "not a valid JSON Schema"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;
		int st = put("acme", "f", cases[i].type, cases[i].data, cases[i].len, NULL, &err);
		cr_expect_eq(st, NOETL__STATUS__INVALID_ARGUMENT, "case %zu gave %d", i, st);
		cr_expect(err != NULL && strstr(err, cases[i].why) != NULL,
		          "case %zu: want '%s' in '%s'", i, cases[i].why, err != NULL ? err : "");
		free(err);
	}
	cr_expect_eq(
	        put("acme", "t.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, "true", 4, NULL, NULL), 0,
	        "a boolean schema is a schema");
}

Test(repository, references_to_other_schema_files_are_checked_when_they_exist)
{
	const char *ext = "{\"$ref\":\"other.json#/definitions/x\"}";
	cr_expect_eq(put("acme", "e.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, ext, strlen(ext),
	                 NULL, NULL),
	             0, "a file not uploaded yet is resolved later, by the listener");
	const char *other = "{\"definitions\":{\"x\":{\"type\":\"string\"}}}";
	cr_assert_eq(put("acme", "other.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, other,
	                 strlen(other), NULL, NULL),
	             0);
	cr_expect_eq(put("acme", "e.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, ext, strlen(ext),
	                 NULL, NULL),
	             0, "and checked against it once it is there");
	const char *bad = "{\"$ref\":\"other.json#/definitions/nope\"}";
	char *err = NULL;
	cr_expect_eq(put("acme", "b.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, bad, strlen(bad),
	                 NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	cr_expect(err != NULL && strstr(err, "not a valid JSON Schema") != NULL, "%s",
	          err != NULL ? err : "");
	free(err);
	const char *url = "{\"$ref\":\"https://example.com/s.json\"}";
	cr_expect_eq(put("acme", "u.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, url, strlen(url),
	                 NULL, NULL),
	             0, "a URL is the listener's to resolve");
}

Test(repository, a_name_keeps_its_type)
{
	cr_assert_eq(put("acme", "m", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL, NULL),
	             0);
	char *err = NULL;
	cr_expect_eq(put("acme", "m", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema, strlen(schema),
	                 NULL, &err),
	             NOETL__STATUS__ALREADY_EXISTS);
	cr_expect(strstr(err, "exists as a wasm file") != NULL, "%s", err);
	free(err);
}

Test(repository, listing_pages_through_files_in_name_order)
{
	const char *names[] = {"e.json", "a.json", "d.json", "b.json", "c.json"};
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(put("acme", names[i], NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema,
		                 strlen(schema), NULL, NULL),
		             0);
	cr_assert_eq(put("zeta", "a.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema,
	                 strlen(schema), NULL, NULL),
	             0);
	char seen[6] = "";
	ProtobufCBinaryData cursor = {0, NULL};
	uint8_t cbuf[256];
	int pages = 0;
	do {
		Noetl__Page page = NOETL__PAGE__INIT;
		page.limit = 2;
		page.cursor = cursor;
		Noetl__ListFilesRequest lr = NOETL__LIST_FILES_REQUEST__INIT;
		lr.tenant = "acme";
		lr.page = &page;
		Noetl__ListFilesReply *rep;
		cr_assert_eq(call("ListFiles", &lr.base, (ProtobufCMessage **)&rep, NULL), 0);
		cr_expect_eq(rep->revision, 6);
		for (size_t i = 0; i < rep->n_files; i++)
			strncat(seen, rep->files[i]->name, 1);
		cursor.len = rep->next_cursor.len;
		if (cursor.len > 0)
			memcpy(cbuf, rep->next_cursor.data, cursor.len);
		cursor.data = cbuf;
		protobuf_c_message_free_unpacked(&rep->base, NULL);
		pages++;
	} while (cursor.len > 0);
	cr_expect_str_eq(seen, "abcde");
	cr_expect_eq(pages, 3);
}

Test(repository, a_file_a_package_uses_cannot_be_deleted)
{
	cr_assert_eq(
	        put("acme", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL, NULL),
	        0);
	cr_assert_eq(put("acme", "s.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema,
	                 strlen(schema), NULL, NULL),
	             0);
	char *files[] = {"m.wasm", "s.json"};
	Noetl__FileType types[] = {NOETL__FILE_TYPE__FILE_WASM, NOETL__FILE_TYPE__FILE_JSON_SCHEMA};
	cr_assert_eq(set_refs("acme", "greeter", files, types, 2, NULL), 0);
	cr_assert_eq(set_refs("acme", "other", files, types, 1, NULL), 0);

	char *err = NULL;
	cr_expect_eq(del("acme", "m.wasm", &err), NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "used by packages 'greeter', 'other'") != NULL, "%s", err);
	free(err);
	err = NULL;
	cr_expect_eq(del("acme", "s.json", &err), NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "package 'greeter'") != NULL, "%s", err);
	free(err);

	/* Replacing greeter's set releases s.json only when it is left out. */
	cr_assert_eq(set_refs("acme", "greeter", files, types, 1, NULL), 0);
	cr_expect_eq(del("acme", "s.json", NULL), 0);
	cr_expect_eq(del("acme", "m.wasm", NULL), NOETL__STATUS__FAILED_PRECONDITION);
	cr_assert_eq(set_refs("acme", "greeter", NULL, NULL, 0, NULL), 0);
	cr_assert_eq(set_refs("acme", "other", NULL, NULL, 0, NULL), 0);
	cr_expect_eq(del("acme", "m.wasm", NULL), 0);
	cr_expect_eq(get("acme", "m.wasm", 0, NULL, NULL), NOETL__STATUS__NOT_FOUND);
	cr_expect_eq(del("acme", "m.wasm", NULL), NOETL__STATUS__NOT_FOUND);
}

Test(repository, references_to_missing_or_mistyped_files_change_nothing)
{
	cr_assert_eq(
	        put("acme", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL, NULL),
	        0);
	char *files[] = {"m.wasm", "gone.json", "m.wasm"};
	Noetl__FileType types[] = {NOETL__FILE_TYPE__FILE_WASM, NOETL__FILE_TYPE__FILE_JSON_SCHEMA,
	                           NOETL__FILE_TYPE__FILE_JSON_SCHEMA};
	char *err = NULL;
	cr_expect_eq(set_refs("acme", "p", files, types, 3, &err),
	             NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "json-schema file 'gone.json' does not exist") != NULL, "%s", err);
	cr_expect(strstr(err, "'m.wasm' is a wasm file, not json-schema") != NULL, "%s", err);
	free(err);
	/* m.wasm was not pinned by the refused call. */
	cr_expect_eq(del("acme", "m.wasm", NULL), 0);
}

Test(repository, versions_keep_counting_after_a_delete)
{
	Noetl__FileInfo *fi;
	cr_assert_eq(put("acme", "m", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL, NULL),
	             0);
	cr_assert_eq(del("acme", "m", NULL), 0);
	cr_assert_eq(put("acme", "m", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), &fi, NULL),
	             0);
	cr_expect_eq(fi->version, 2);
	protobuf_c_message_free_unpacked(&fi->base, NULL);
	cr_expect_eq(get("acme", "m", 1, NULL, NULL), NOETL__STATUS__NOT_FOUND);
}

Test(repository, changes_list_every_put_and_delete_in_revision_order)
{
	cr_assert_eq(put("acme", "m", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL, NULL),
	             0);
	cr_assert_eq(put("beta", "s", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema, strlen(schema),
	                 NULL, NULL),
	             0);
	cr_assert_eq(del("acme", "m", NULL), 0);
	/* A refused put is not a change. */
	cr_assert_neq(
	        put("acme", "../x", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), NULL, NULL),
	        0);

	Noetl__ChangesRequest req = NOETL__CHANGES_REQUEST__INIT;
	Noetl__ChangesReply *rep;
	cr_assert_eq(call("Changes", &req.base, (ProtobufCMessage **)&rep, NULL), 0);
	cr_assert_eq(rep->n_changes, 3);
	cr_expect_eq(rep->head, 3);
	const char *topics[] = {"acme", "beta", "acme"};
	const int kinds[] = {NOETL__FILE_CHANGE__KIND__PUT, NOETL__FILE_CHANGE__KIND__PUT,
	                     NOETL__FILE_CHANGE__KIND__DELETED};
	for (size_t i = 0; i < 3; i++) {
		Noetl__Change *c = rep->changes[i];
		cr_expect_eq(c->revision, i + 1);
		cr_expect_str_eq(c->topic, topics[i]);
		Noetl__FileChange *fc = noetl__file_change__unpack(NULL, c->body.len, c->body.data);
		cr_assert_not_null(fc);
		cr_expect_eq((int)fc->kind, kinds[i]);
		cr_expect_eq(fc->info->revision, i + 1, "the stored revision is the change's");
		noetl__file_change__free_unpacked(fc, NULL);
	}
	protobuf_c_message_free_unpacked(&rep->base, NULL);

	req.topic = "acme";
	req.since = 1;
	cr_assert_eq(call("Changes", &req.base, (ProtobufCMessage **)&rep, NULL), 0);
	cr_expect_eq(rep->n_changes, 1);
	cr_expect_eq(rep->changes[0]->revision, 3);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
}

Test(repository, files_survive_a_restart)
{
	Noetl__FileInfo *fi;
	cr_assert_eq(put("acme", "m", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), &fi, NULL),
	             0);
	char sha[65];
	snprintf(sha, sizeof(sha), "%s", fi->sha256);
	protobuf_c_message_free_unpacked(&fi->base, NULL);
	repository_destroy(repo);
	char path[300];
	snprintf(path, sizeof(path), "%s/store", dir);
	struct repository_config rc = {.data_dir = path, .max_file_bytes = MAX_FILE};
	cr_assert_eq(repository_create(&rc, &repo), 0);
	Noetl__GetFileReply *rep;
	cr_assert_eq(get("acme", "m", 0, &rep, NULL), 0);
	cr_expect_str_eq(rep->info->sha256, sha);
	cr_expect_eq(rep->content.len, sizeof(wasm));
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	cr_expect_eq(repository_revision(repo), 1);
}

Test(repository, serves_puts_and_gets_over_a_real_socket)
{
	char url[320];
	snprintf(url, sizeof(url), "ipc://%s/repo.sock", dir);
	struct rpc_server_options so = {.workers = 2, .name = "repository"};
	struct rpc_server *srv;
	cr_assert_eq(rpc_server_create(&so, &srv), 0);
	cr_assert_eq(rpc_server_add(srv, repository_service(repo)), 0);
	cr_assert_eq(rpc_server_listen(srv, url), 0);
	cr_assert_eq(rpc_server_start(srv), 0);
	struct rpc_client *cli;
	cr_assert_eq(rpc_client_create(url, NULL, &cli), 0);

	Noetl__PutFileRequest req =
	        testrpc_put_file("acme", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm));
	protobuf_c_message_free_unpacked(
	        testrpc_ok(cli, &noetl__repository__descriptor, "PutFile", &req.base, NULL), NULL);
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = "acme";
	ref.name = "m.wasm";
	ProtobufCMessage *out =
	        testrpc_ok(cli, &noetl__repository__descriptor, "GetFile", &ref.base, NULL);
	Noetl__GetFileReply *gr = (Noetl__GetFileReply *)out;
	cr_expect_eq(gr->content.len, sizeof(wasm));
	cr_expect_eq(memcmp(gr->content.data, wasm, sizeof(wasm)), 0);
	protobuf_c_message_free_unpacked(out, NULL);

	rpc_client_destroy(cli);
	rpc_server_destroy(srv);
}
