/*
 * Control through its handlers, with a real Repository behind a real
 * socket: tenants, deploying Jobico's file, update and rollback through
 * several revisions, references, tokens, webhook secrets, the snapshot and
 * the change log.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "jobdef.h"
#include "kv.h"
#include "testutil.h"
#include "util.h"

static struct fx fx;
static char *jobico; /* job-go-greet.yml */
static char *schema; /* the schema it uses */

static void start(void)
{
	char path[512];
	testutil_source_path("../shared/compat/jobico/job-go-greet.yml", path, sizeof(path));
	jobico = testutil_read_file(path, NULL);
	cr_assert_not_null(jobico, "cannot read %s", path);
	testutil_source_path("../shared/compat/jobico/schema.json", path, sizeof(path));
	schema = testutil_read_file(path, NULL);
	cr_assert_not_null(schema, "cannot read %s", path);
	fx_start(&fx, false);
}

static void stop(void)
{
	fx_stop(&fx);
	free(jobico);
	free(schema);
}

TestSuite(control, .init = start, .fini = stop);

/* Uploads the two files job-go-greet.yml uses. */
static void upload_greet_files(void)
{
	cr_assert_eq(fx_put(&fx, "demogo", "greet-schema-go.json",
	                    NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema, strlen(schema)),
	             0);
	cr_assert_eq(fx_put(&fx, "demogo", "greet-wasm-go.wasm", NOETL__FILE_TYPE__FILE_WASM,
	                    fx_wasm, fx_wasm_len),
	             0);
}

/* The Jobico file with its display name replaced by name. */
static char *with_name(const char *name)
{
	const char *old = "name: Demo JOB\n";
	const char *at = strstr(jobico, old);
	cr_assert_not_null(at);
	char *out;
	cr_assert(asprintf(&out, "%.*sname: %s\n%s", (int)(at - jobico), jobico, name,
	                   at + strlen(old)) > 0);
	return out;
}

static Noetl__PackageRevision *get_package(uint64_t rev, int *status)
{
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = "demogo";
	ref.id = "go-demo-job";
	ref.revision = rev;
	Noetl__GetPackageReply *rep = NULL;
	*status = fx_call(&fx, "GetPackage", &ref.base, (ProtobufCMessage **)&rep, NULL);
	if (*status != 0)
		return NULL;
	Noetl__PackageRevision *pr = rep->revision;
	rep->revision = NULL;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return pr;
}

static int delete_file(const char *tenant, const char *name, char **err)
{
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = (char *)tenant;
	ref.name = (char *)name;
	return fx_repo(&fx, "DeleteFile", &ref.base, NULL, err);
}

Test(control, tenants_are_added_listed_and_removed_when_empty)
{
	fx_tenant(&fx, "acme");
	fx_tenant(&fx, "beta");
	Noetl__AddTenantRequest add = NOETL__ADD_TENANT_REQUEST__INIT;
	add.id = "acme";
	char *err = NULL;
	cr_expect_eq(fx_call(&fx, "AddTenant", &add.base, NULL, &err),
	             NOETL__STATUS__ALREADY_EXISTS);
	free(err);
	add.id = "bad/tenant";
	cr_expect_eq(fx_call(&fx, "AddTenant", &add.base, NULL, NULL),
	             NOETL__STATUS__INVALID_ARGUMENT);

	Noetl__Empty e = NOETL__EMPTY__INIT;
	Noetl__ListTenantsReply *lt;
	cr_assert_eq(fx_call(&fx, "ListTenants", &e.base, (ProtobufCMessage **)&lt, NULL), 0);
	cr_assert_eq(lt->n_tenants, 2);
	cr_expect_str_eq(lt->tenants[0]->id, "acme");
	cr_expect_str_eq(lt->tenants[1]->id, "beta");
	cr_expect_eq(lt->tenants[0]->created_ms, fx.now);
	cr_expect_eq(lt->revision, 2);
	protobuf_c_message_free_unpacked(&lt->base, NULL);

	Noetl__RemoveTenantRequest rm = NOETL__REMOVE_TENANT_REQUEST__INIT;
	rm.id = "beta";
	cr_expect_eq(fx_call(&fx, "RemoveTenant", &rm.base, NULL, NULL), 0);
	cr_expect_eq(fx_call(&fx, "RemoveTenant", &rm.base, NULL, NULL), NOETL__STATUS__NOT_FOUND);

	/* A tenant with a package stays until the package is deleted. */
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	cr_assert_eq(fx_deploy_yaml(&fx, jobico, false, NULL, NULL), 0);
	rm.id = "demogo";
	cr_expect_eq(fx_call(&fx, "RemoveTenant", &rm.base, NULL, &err),
	             NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "'go-demo-job'") != NULL, "%s", err);
	free(err);
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = "demogo";
	ref.id = "go-demo-job";
	cr_assert_eq(fx_call(&fx, "Delete", &ref.base, NULL, NULL), 0);
	cr_expect_eq(fx_call(&fx, "RemoveTenant", &rm.base, NULL, NULL), 0);
}

Test(control, the_jobico_file_deploys_as_is)
{
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	uint64_t rev = 0;
	char *err = NULL;
	int st = fx_deploy_yaml(&fx, jobico, false, &rev, &err);
	cr_assert_eq(st, 0, "deploy: %s", err != NULL ? err : "");
	cr_expect_eq(rev, 2, "revision 1 added the tenant; uploads are the Repository's");
	int status;
	Noetl__PackageRevision *pr = get_package(0, &status);
	cr_assert_eq(status, 0);
	cr_expect_eq(pr->revision, rev);
	cr_expect_str_eq(pr->action, "deploy");
	cr_expect_str_eq(pr->source, jobico);
	cr_expect_str_eq(pr->package->name, "Demo JOB");
	cr_expect_str_eq(pr->package->jobs[0]->event->schema->schema_ref, "greet-schema-go.json");
	cr_expect_str_eq(pr->package->runtimes[0]->module_ref, "greet-wasm-go.wasm");
	protobuf_c_message_free_unpacked(&pr->base, NULL);

	/* Deploying again is refused: that is what --update is for. */
	cr_expect_eq(fx_deploy_yaml(&fx, jobico, false, NULL, &err), NOETL__STATUS__ALREADY_EXISTS);
	cr_expect(strstr(err, "--update") != NULL, "%s", err);
	free(err);

	/* Its files are pinned now. */
	err = NULL;
	cr_expect_eq(delete_file("demogo", "greet-wasm-go.wasm", &err),
	             NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "'go-demo-job'") != NULL, "%s", err);
	free(err);

	Noetl__ListPackagesRequest lr = NOETL__LIST_PACKAGES_REQUEST__INIT;
	Noetl__ListPackagesReply *lp;
	cr_assert_eq(fx_call(&fx, "ListPackages", &lr.base, (ProtobufCMessage **)&lp, NULL), 0);
	cr_assert_eq(lp->n_packages, 1);
	cr_expect_str_eq(lp->packages[0]->id, "go-demo-job");
	cr_expect_eq(lp->revision, fx_head(&fx));
	protobuf_c_message_free_unpacked(&lp->base, NULL);
}

Test(control, a_deploy_with_a_missing_schema_is_refused_and_changes_nothing)
{
	fx_tenant(&fx, "demogo");
	cr_assert_eq(fx_put(&fx, "demogo", "greet-wasm-go.wasm", NOETL__FILE_TYPE__FILE_WASM,
	                    fx_wasm, fx_wasm_len),
	             0);
	uint64_t head = fx_head(&fx);
	char *err = NULL;
	cr_expect_eq(fx_deploy_yaml(&fx, jobico, false, NULL, &err),
	             NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "json-schema file 'greet-schema-go.json' does not exist") != NULL,
	          "%s", err);
	cr_expect(strstr(err, "nothing was changed") != NULL, "%s", err);
	free(err);

	cr_expect_eq(fx_head(&fx), head, "no change was logged");
	int status;
	cr_expect_null(get_package(0, &status));
	cr_expect_eq(status, NOETL__STATUS__NOT_FOUND);
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = "demogo";
	ref.id = "go-demo-job";
	cr_expect_eq(fx_call(&fx, "History", &ref.base, NULL, NULL), NOETL__STATUS__NOT_FOUND);
	/* The module it does have was not pinned. */
	cr_expect_eq(delete_file("demogo", "greet-wasm-go.wasm", NULL), 0);

	/* An unknown tenant is refused before anything is asked of the
	 * Repository. */
	Noetl__RemoveTenantRequest rm = NOETL__REMOVE_TENANT_REQUEST__INIT;
	rm.id = "demogo";
	cr_assert_eq(fx_call(&fx, "RemoveTenant", &rm.base, NULL, NULL), 0);
	upload_greet_files();
	cr_expect_eq(fx_deploy_yaml(&fx, jobico, false, NULL, &err), NOETL__STATUS__NOT_FOUND);
	cr_expect(strstr(err, "tenant add demogo") != NULL, "%s", err);
	free(err);
	cr_expect_eq(delete_file("demogo", "greet-wasm-go.wasm", NULL), 0);
}

Test(control, update_and_rollback_walk_through_revisions)
{
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	char *v2 = with_name("Demo v2"), *v3 = with_name("Demo v3");
	uint64_t r1, r2, r3, r4, r5, r6;
	cr_assert_eq(fx_deploy_yaml(&fx, jobico, false, &r1, NULL), 0);
	cr_assert_eq(fx_deploy_yaml(&fx, v2, true, &r2, NULL), 0);
	cr_assert_eq(fx_deploy_yaml(&fx, v3, true, &r3, NULL), 0);
	cr_expect(r1 < r2 && r2 < r3);

	/* rollback with no revision: the definition before the current one */
	Noetl__RollbackRequest rb = NOETL__ROLLBACK_REQUEST__INIT;
	rb.tenant = "demogo";
	rb.id = "go-demo-job";
	Noetl__DeployReply *rep;
	cr_assert_eq(fx_call(&fx, "Rollback", &rb.base, (ProtobufCMessage **)&rep, NULL), 0);
	r4 = rep->revision;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	int st;
	Noetl__PackageRevision *pr = get_package(0, &st);
	cr_expect_str_eq(pr->package->name, "Demo v2");
	cr_expect_str_eq(pr->action, "rollback");
	cr_expect_eq(pr->rolled_back_to, r2);
	cr_expect_str_eq(pr->source, v2);
	protobuf_c_message_free_unpacked(&pr->base, NULL);

	/* to a named revision */
	rb.to_revision = r1;
	cr_assert_eq(fx_call(&fx, "Rollback", &rb.base, (ProtobufCMessage **)&rep, NULL), 0);
	r5 = rep->revision;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	pr = get_package(0, &st);
	cr_expect_str_eq(pr->package->name, "Demo JOB");
	cr_expect_eq(pr->rolled_back_to, r1);
	protobuf_c_message_free_unpacked(&pr->base, NULL);

	/* every revision stays readable */
	pr = get_package(r3, &st);
	cr_assert_eq(st, 0);
	cr_expect_str_eq(pr->package->name, "Demo v3");
	protobuf_c_message_free_unpacked(&pr->base, NULL);

	/* delete, then roll back to bring it back */
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = "demogo";
	ref.id = "go-demo-job";
	cr_assert_eq(fx_call(&fx, "Delete", &ref.base, (ProtobufCMessage **)&rep, NULL), 0);
	r6 = rep->revision;
	cr_expect_str_eq(rep->warning, "");
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	cr_expect_null(get_package(0, &st));
	cr_expect_eq(st, NOETL__STATUS__NOT_FOUND);
	cr_expect_eq(fx_call(&fx, "Delete", &ref.base, NULL, NULL), NOETL__STATUS__NOT_FOUND);
	char *err = NULL;
	rb.to_revision = r6;
	cr_expect_eq(fx_call(&fx, "Rollback", &rb.base, NULL, &err),
	             NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "is a delete") != NULL, "%s", err);
	free(err);
	rb.to_revision = 999;
	cr_expect_eq(fx_call(&fx, "Rollback", &rb.base, NULL, NULL), NOETL__STATUS__NOT_FOUND);
	rb.to_revision = 0;
	cr_assert_eq(fx_call(&fx, "Rollback", &rb.base, NULL, NULL), 0);
	pr = get_package(0, &st);
	cr_assert_eq(st, 0);
	cr_expect_str_eq(pr->package->name, "Demo JOB",
	                 "the definition in force before the delete");
	protobuf_c_message_free_unpacked(&pr->base, NULL);

	/* the history lists it all, oldest first */
	Noetl__HistoryReply *h;
	cr_assert_eq(fx_call(&fx, "History", &ref.base, (ProtobufCMessage **)&h, NULL), 0);
	const char *actions[] = {"deploy",   "update", "update",  "rollback",
	                         "rollback", "delete", "rollback"};
	const uint64_t revs[] = {r1, r2, r3, r4, r5, r6};
	cr_assert_eq(h->n_revisions, 7);
	for (size_t i = 0; i < 7; i++) {
		cr_expect_str_eq(h->revisions[i]->action, actions[i], "entry %zu", i);
		if (i < 6)
			cr_expect_eq(h->revisions[i]->revision, revs[i]);
	}
	cr_expect_null(h->revisions[5]->package);
	cr_expect_eq(h->omitted, 0);
	protobuf_c_message_free_unpacked(&h->base, NULL);
	free(v2);
	free(v3);
}

Test(control, update_of_a_package_that_is_not_deployed_is_refused)
{
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	char *err = NULL;
	cr_expect_eq(fx_deploy_yaml(&fx, jobico, true, NULL, &err), NOETL__STATUS__NOT_FOUND);
	cr_expect(strstr(err, "deploy it first") != NULL, "%s", err);
	free(err);
}

Test(control, delete_releases_the_files_of_the_package)
{
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	cr_assert_eq(fx_deploy_yaml(&fx, jobico, false, NULL, NULL), 0);
	cr_expect_eq(delete_file("demogo", "greet-schema-go.json", NULL),
	             NOETL__STATUS__FAILED_PRECONDITION);
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = "demogo";
	ref.id = "go-demo-job";
	cr_assert_eq(fx_call(&fx, "Delete", &ref.base, NULL, NULL), 0);
	cr_expect_eq(delete_file("demogo", "greet-schema-go.json", NULL), 0);
	cr_expect_eq(delete_file("demogo", "greet-wasm-go.wasm", NULL), 0);
	/* and a rollback now needs them back */
	Noetl__RollbackRequest rb = NOETL__ROLLBACK_REQUEST__INIT;
	rb.tenant = "demogo";
	rb.id = "go-demo-job";
	char *err = NULL;
	cr_expect_eq(fx_call(&fx, "Rollback", &rb.base, NULL, &err),
	             NOETL__STATUS__FAILED_PRECONDITION);
	cr_expect(strstr(err, "greet-wasm-go.wasm") != NULL, "%s", err);
	free(err);
}

Test(control, an_invalid_package_is_refused_with_the_field_that_is_wrong)
{
	fx_tenant(&fx, "demogo");
	Noetl__Package *p;
	char *perr = NULL;
	cr_assert_eq(jobdef_parse(jobico, strlen(jobico), "x.yml", &p, &perr), 0);
	/* Break a reference the way a hand-made RPC client could. */
	free(p->jobs[0]->event->runtime);
	p->jobs[0]->event->runtime = strdup("nowhere");
	Noetl__DeployRequest req = NOETL__DEPLOY_REQUEST__INIT;
	req.package = p;
	char *err = NULL;
	cr_expect_eq(fx_call(&fx, "Deploy", &req.base, NULL, &err),
	             NOETL__STATUS__INVALID_ARGUMENT);
	cr_expect(strstr(err, "jobs[0].event.runtime") != NULL, "%s", err);
	free(err);
	jobdef_free(p);
}

/* Scans every value in Control's store for needle. */
static bool store_contains(const char *needle)
{
	char path[320];
	snprintf(path, sizeof(path), "%s/control", fx.dir);
	struct kv *kv;
	cr_assert_eq(kv_open(path, NULL, &kv), 0);
	struct kv_iter *it;
	cr_assert_eq(kv_iter_create(kv, NULL, 0, NULL, 0, &it), 0);
	bool found = false;
	size_t n = strlen(needle);
	for (kv_iter_seek_first(it); kv_iter_valid(it) && !found; kv_iter_next(it)) {
		size_t vlen;
		const char *v = kv_iter_value(it, &vlen);
		for (size_t i = 0; i + n <= vlen && !found; i++)
			found = memcmp(v + i, needle, n) == 0;
	}
	kv_iter_destroy(it);
	kv_close(kv);
	return found;
}

Test(control, a_token_secret_is_shown_once_and_only_its_hash_is_stored)
{
	fx_tenant(&fx, "acme");
	Noetl__CreateTokenRequest cr = NOETL__CREATE_TOKEN_REQUEST__INIT;
	cr.tenant = "acme";
	cr.description = "ci";
	Noetl__CreateTokenReply *rep;
	cr_assert_eq(fx_call(&fx, "CreateToken", &cr.base, (ProtobufCMessage **)&rep, NULL), 0);
	char secret[64], id[64], hash[65];
	snprintf(secret, sizeof(secret), "%s", rep->secret);
	snprintf(id, sizeof(id), "%s", rep->info->id);
	cr_expect_eq(strlen(secret), 43, "32 random bytes in base64url");
	cr_expect_eq(
	        strspn(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	        43);
	util_sha256_hex(secret, strlen(secret), hash);
	cr_expect_str_eq(rep->info->hash, hash);
	protobuf_c_message_free_unpacked(&rep->base, NULL);

	/* a second token differs */
	cr_assert_eq(fx_call(&fx, "CreateToken", &cr.base, (ProtobufCMessage **)&rep, NULL), 0);
	cr_expect_str_neq(rep->secret, secret);
	protobuf_c_message_free_unpacked(&rep->base, NULL);

	Noetl__ListTokensRequest lr = NOETL__LIST_TOKENS_REQUEST__INIT;
	lr.tenant = "acme";
	Noetl__ListTokensReply *lt;
	cr_assert_eq(fx_call(&fx, "ListTokens", &lr.base, (ProtobufCMessage **)&lt, NULL), 0);
	cr_assert_eq(lt->n_tokens, 2);
	bool listed = false;
	for (size_t i = 0; i < lt->n_tokens; i++) {
		cr_expect_str_eq(lt->tokens[i]->description, "ci");
		if (strcmp(lt->tokens[i]->id, id) == 0) {
			listed = true;
			cr_expect_str_eq(lt->tokens[i]->hash, hash);
		}
	}
	cr_expect(listed);
	protobuf_c_message_free_unpacked(&lt->base, NULL);

	Noetl__RevokeTokenRequest rv = NOETL__REVOKE_TOKEN_REQUEST__INIT;
	rv.tenant = "acme";
	rv.id = id;
	cr_expect_eq(fx_call(&fx, "RevokeToken", &rv.base, NULL, NULL), 0);
	cr_expect_eq(fx_call(&fx, "RevokeToken", &rv.base, NULL, NULL), NOETL__STATUS__NOT_FOUND);
	cr_assert_eq(fx_call(&fx, "ListTokens", &lr.base, (ProtobufCMessage **)&lt, NULL), 0);
	cr_expect_eq(lt->n_tokens, 1);
	cr_expect_str_neq(lt->tokens[0]->id, id);
	protobuf_c_message_free_unpacked(&lt->base, NULL);

	cr.tenant = "nobody";
	cr_expect_eq(fx_call(&fx, "CreateToken", &cr.base, NULL, NULL), NOETL__STATUS__NOT_FOUND);

	fx_control_stop(&fx);
	cr_expect_not(store_contains(secret), "the secret itself is stored nowhere");
	cr_expect(store_contains(hash), "its hash is");
	fx_control_start(&fx, false);
}

Test(control, the_snapshot_holds_everything_at_one_revision)
{
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	cr_assert_eq(fx_deploy_yaml(&fx, jobico, false, NULL, NULL), 0);
	Noetl__CreateTokenRequest cr = NOETL__CREATE_TOKEN_REQUEST__INIT;
	cr.tenant = "demogo";
	cr_assert_eq(fx_call(&fx, "CreateToken", &cr.base, NULL, NULL), 0);
	Noetl__WebhookSecret ws = NOETL__WEBHOOK_SECRET__INIT;
	ws.tenant = "demogo";
	ws.event = "evgo";
	ws.secret = "s3cret";
	cr_assert_eq(fx_call(&fx, "SetWebhookSecret", &ws.base, NULL, NULL), 0);
	ws.tenant = "nobody";
	cr_expect_eq(fx_call(&fx, "SetWebhookSecret", &ws.base, NULL, NULL),
	             NOETL__STATUS__NOT_FOUND);

	Noetl__Empty e = NOETL__EMPTY__INIT;
	Noetl__Snapshot *snap;
	cr_assert_eq(fx_call(&fx, "GetSnapshot", &e.base, (ProtobufCMessage **)&snap, NULL), 0);
	cr_expect_eq(snap->revision, fx_head(&fx));
	cr_expect_eq(snap->n_tenants, 1);
	cr_expect_eq(snap->n_packages, 1);
	cr_expect_eq(snap->n_tokens, 1);
	cr_assert_eq(snap->n_secrets, 1);
	cr_expect_str_eq(snap->secrets[0]->secret, "s3cret");
	protobuf_c_message_free_unpacked(&snap->base, NULL);

	/* clearing the secret removes it; clearing it again is no change */
	ws.tenant = "demogo";
	ws.secret = "";
	cr_assert_eq(fx_call(&fx, "SetWebhookSecret", &ws.base, NULL, NULL), 0);
	uint64_t head = fx_head(&fx);
	cr_assert_eq(fx_call(&fx, "SetWebhookSecret", &ws.base, NULL, NULL), 0);
	cr_expect_eq(fx_head(&fx), head);
	cr_assert_eq(fx_call(&fx, "GetSnapshot", &e.base, (ProtobufCMessage **)&snap, NULL), 0);
	cr_expect_eq(snap->n_secrets, 0);
	protobuf_c_message_free_unpacked(&snap->base, NULL);
}

Test(control, every_change_is_in_the_change_log_with_its_revision)
{
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	uint64_t r;
	cr_assert_eq(fx_deploy_yaml(&fx, jobico, false, &r, NULL), 0);
	Noetl__PackageRef ref = NOETL__PACKAGE_REF__INIT;
	ref.tenant = "demogo";
	ref.id = "go-demo-job";
	cr_assert_eq(fx_call(&fx, "Delete", &ref.base, NULL, NULL), 0);

	Noetl__ChangesRequest req = NOETL__CHANGES_REQUEST__INIT;
	Noetl__ChangesReply *rep;
	cr_assert_eq(fx_call(&fx, "Changes", &req.base, (ProtobufCMessage **)&rep, NULL), 0);
	cr_assert_eq(rep->n_changes, 3);
	const int kinds[] = {NOETL__DEFINITION_CHANGE__KIND__TENANT_ADDED,
	                     NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED,
	                     NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DELETED};
	for (size_t i = 0; i < 3; i++) {
		Noetl__Change *c = rep->changes[i];
		cr_expect_eq(c->revision, i + 1);
		cr_expect_str_eq(c->topic, "demogo");
		Noetl__DefinitionChange *dc =
		        noetl__definition_change__unpack(NULL, c->body.len, c->body.data);
		cr_assert_not_null(dc);
		cr_expect_eq((int)dc->kind, kinds[i]);
		if (i == 1) {
			cr_expect_eq(dc->package_revision, r);
			cr_expect_str_eq(dc->package->id, "go-demo-job");
		}
		noetl__definition_change__free_unpacked(dc, NULL);
	}
	protobuf_c_message_free_unpacked(&rep->base, NULL);

	/* and it survives a restart */
	fx_control_stop(&fx);
	fx_control_start(&fx, false);
	cr_expect_eq(fx_head(&fx), 3);
	req.since = 2;
	cr_assert_eq(fx_call(&fx, "Changes", &req.base, (ProtobufCMessage **)&rep, NULL), 0);
	cr_expect_eq(rep->n_changes, 1);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
}

Test(control, listing_pages_through_packages_of_all_tenants)
{
	const char *tenants[] = {"a", "b"};
	for (size_t t = 0; t < 2; t++) {
		fx_tenant(&fx, tenants[t]);
		cr_assert_eq(fx_put(&fx, tenants[t], "greet-schema-go.json",
		                    NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema, strlen(schema)),
		             0);
		cr_assert_eq(fx_put(&fx, tenants[t], "greet-wasm-go.wasm",
		                    NOETL__FILE_TYPE__FILE_WASM, fx_wasm, fx_wasm_len),
		             0);
		for (int i = 0; i < 3; i++) {
			char *y = NULL;
			const char *at = strstr(jobico, "id: go-demo-job\ntenant: demogo\n");
			cr_assert_not_null(at);
			cr_assert(asprintf(&y, "%.*sid: p%d\ntenant: %s\n%s", (int)(at - jobico),
			                   jobico, i, tenants[t],
			                   at + strlen("id: go-demo-job\ntenant: demogo\n")) > 0);
			cr_assert_eq(fx_deploy_yaml(&fx, y, false, NULL, NULL), 0);
			free(y);
		}
	}
	char seen[64] = "";
	uint8_t cbuf[256];
	ProtobufCBinaryData cursor = {0, NULL};
	do {
		Noetl__Page page = NOETL__PAGE__INIT;
		page.limit = 4;
		page.cursor = cursor;
		Noetl__ListPackagesRequest lr = NOETL__LIST_PACKAGES_REQUEST__INIT;
		lr.page = &page;
		Noetl__ListPackagesReply *lp;
		cr_assert_eq(fx_call(&fx, "ListPackages", &lr.base, (ProtobufCMessage **)&lp, NULL),
		             0);
		for (size_t i = 0; i < lp->n_packages; i++) {
			strcat(seen, lp->packages[i]->tenant);
			strcat(seen, lp->packages[i]->id);
			strcat(seen, " ");
		}
		cursor.len = lp->next_cursor.len;
		if (cursor.len > 0)
			memcpy(cbuf, lp->next_cursor.data, cursor.len);
		cursor.data = cbuf;
		protobuf_c_message_free_unpacked(&lp->base, NULL);
	} while (cursor.len > 0);
	cr_expect_str_eq(seen, "ap0 ap1 ap2 bp0 bp1 bp2 ");

	Noetl__ListPackagesRequest lr = NOETL__LIST_PACKAGES_REQUEST__INIT;
	lr.tenant = "b";
	Noetl__ListPackagesReply *lp;
	cr_assert_eq(fx_call(&fx, "ListPackages", &lr.base, (ProtobufCMessage **)&lp, NULL), 0);
	cr_expect_eq(lp->n_packages, 3);
	protobuf_c_message_free_unpacked(&lp->base, NULL);
}

/* A package of n jobs with long display names: about 250 bytes a job. */
static Noetl__Package *big_package(const char *id, size_t n)
{
	Noetl__Package *p;
	char *perr = NULL;
	cr_assert_eq(jobdef_parse(jobico, strlen(jobico), "x.yml", &p, &perr), 0);
	free(p->id);
	p->id = strdup(id);
	Noetl__JobDef *tmpl = p->jobs[0];
	p->jobs = realloc(p->jobs, n * sizeof(*p->jobs));
	cr_assert_not_null(p->jobs);
	char name[201];
	memset(name, 'n', 200);
	name[200] = '\0';
	for (size_t i = 1; i < n; i++) {
		size_t len = noetl__job_def__get_packed_size(tmpl);
		uint8_t *buf = malloc(len);
		noetl__job_def__pack(tmpl, buf);
		Noetl__JobDef *j = noetl__job_def__unpack(NULL, len, buf);
		free(buf);
		free(j->event->id);
		cr_assert(asprintf(&j->event->id, "e%05zu", i) > 0);
		free(j->event->name);
		j->event->name = strdup(name);
		p->jobs[i] = j;
	}
	p->n_jobs = n;
	return p;
}

Test(control, a_changes_page_stays_under_the_message_limit)
{
	fx_tenant(&fx, "demogo");
	upload_greet_files();
	for (int i = 0; i < 5; i++) {
		char id[16];
		snprintf(id, sizeof(id), "big%d", i);
		Noetl__Package *p = big_package(id, 4000);
		Noetl__DeployRequest req = NOETL__DEPLOY_REQUEST__INIT;
		req.package = p;
		char *err = NULL;
		cr_assert_eq(fx_call(&fx, "Deploy", &req.base, NULL, &err), 0, "%s",
		             err ? err : "");
		jobdef_free(p);
	}
	uint64_t since = 0, seen = 0;
	int pages = 0;
	for (;;) {
		Noetl__ChangesRequest req = NOETL__CHANGES_REQUEST__INIT;
		req.since = since;
		Noetl__ChangesReply *rep;
		cr_assert_eq(fx_call(&fx, "Changes", &req.base, (ProtobufCMessage **)&rep, NULL),
		             0);
		size_t bytes = noetl__changes_reply__get_packed_size(rep);
		cr_expect_leq(bytes, 5u << 20, "a page of %zu bytes", bytes);
		pages++;
		for (size_t i = 0; i < rep->n_changes; i++) {
			cr_expect_eq(rep->changes[i]->revision, since + 1);
			since = rep->changes[i]->revision;
			seen++;
		}
		bool more = rep->more;
		protobuf_c_message_free_unpacked(&rep->base, NULL);
		if (!more)
			break;
	}
	cr_expect_eq(seen, 6, "the tenant and five deploys");
	cr_expect_gt(pages, 1, "the five packages did not fit one page");
}
