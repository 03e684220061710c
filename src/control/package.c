/*
 * package: the package handlers of Control: deploy, update, delete,
 * rollback, get, list and history.
 *
 * A change that installs a definition (deploy, update, rollback) runs in
 * this order, under the packages mutex so two changes of packages never
 * interleave:
 *
 *   1. check the request and the package (jobdef_validate), the tenant, and
 *      whether the package exists as the action expects;
 *   2. ask the Repository to check and pin every file the definition uses
 *      (SetReferences): if one is missing, the Repository changes nothing,
 *      and neither does Control;
 *   3. commit: history entry, definition in force, schedule state and the
 *      change log entry in one synced write, then publish.
 *
 * If step 3 fails after step 2 succeeded, the old reference set is put back
 * (best effort: a file pinned by mistake is safe, merely undeletable). A
 * delete commits first and releases the references afterwards, for the same
 * reason: a failure between the two leaves files pinned, never a deployed
 * package without its files. The reply's warning says so if it happens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "jobdef.h"
#include "log.h"
#include "paging.h"
#include "repository.pb-c.h"
#include "util.h"

#define HISTORY_MAX_BYTES (8u << 20) /* keep History replies well under the RPC limit */

static struct control *self(Noetl__Control_Service *svc)
{
	return (struct control *)svc;
}

/* The files a package uses: names and expected types, without repeats. */
struct refs {
	char **files;           /* borrowed from the package */
	Noetl__FileType *types; /* same order */
	size_t n, cap;          /* count, capacity */
};

static int refs_add(struct refs *r, char *name, Noetl__FileType type)
{
	if (name == NULL || name[0] == '\0')
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->types[i] == type && strcmp(r->files[i], name) == 0)
			return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		char **nf = realloc(r->files, cap * sizeof(*nf));
		if (nf == NULL)
			return -ENOMEM;
		r->files = nf;
		Noetl__FileType *nt = realloc(r->types, cap * sizeof(*nt));
		if (nt == NULL)
			return -ENOMEM;
		r->types = nt;
		r->cap = cap;
	}
	r->files[r->n] = name;
	r->types[r->n] = type;
	r->n++;
	return 0;
}

static int refs_event(struct refs *r, const Noetl__EventDef *ev)
{
	if (ev == NULL || ev->schema == NULL)
		return 0;
	return refs_add(r, ev->schema->schema_ref, NOETL__FILE_TYPE__FILE_JSON_SCHEMA);
}

/* Collects the schema and module files of p (NULL: none). */
static int refs_of(const Noetl__Package *p, struct refs *r)
{
	memset(r, 0, sizeof(*r));
	if (p == NULL)
		return 0;
	int rv = 0;
	for (size_t i = 0; rv == 0 && i < p->n_jobs; i++) {
		const Noetl__JobDef *j = p->jobs[i];
		rv = refs_event(r, j->event);
		if (rv == 0 && j->result != NULL)
			rv = refs_event(r, j->result->ok);
		if (rv == 0 && j->result != NULL)
			rv = refs_event(r, j->result->error);
	}
	for (size_t i = 0; rv == 0 && i < p->n_runtimes; i++)
		rv = refs_add(r, p->runtimes[i]->module_ref, NOETL__FILE_TYPE__FILE_WASM);
	return rv;
}

static void refs_release(struct refs *r)
{
	free(r->files);
	free(r->types);
}

/*
 * Sets the Repository's reference set of tenant/id to the files of p (NULL
 * releases them). Returns 0, or a status with *msg (malloc'ed) in words.
 */
static int set_refs(struct control *c, const char *tenant, const char *id, const Noetl__Package *p,
                    char **msg)
{
	struct refs r;
	if (refs_of(p, &r) != 0) {
		refs_release(&r);
		*msg = util_xstrdup("out of memory collecting the package's files");
		return NOETL__STATUS__RESOURCE_EXHAUSTED;
	}
	Noetl__SetReferencesRequest req = NOETL__SET_REFERENCES_REQUEST__INIT;
	req.tenant = (char *)tenant;
	req.package = (char *)id;
	req.files = r.files;
	req.n_files = r.n;
	req.types = r.types;
	req.n_types = r.n;
	struct rpc_call_options o = {.timeout_ms = c->call_timeout_ms, .tenant = tenant};
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = rpc_call(c->repo, &noetl__repository__descriptor, "SetReferences", &req.base, &o,
	                  &out, &err);
	refs_release(&r);
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	if (st == NOETL__STATUS__OK) {
		free(err);
		return 0;
	}
	if (st == NOETL__STATUS__FAILED_PRECONDITION || st == NOETL__STATUS__INVALID_ARGUMENT ||
	    st == NOETL__STATUS__RESOURCE_EXHAUSTED) {
		*msg = err != NULL ? err
		                   : util_xstrdup("the repository refused the file references");
		return st;
	}
	if (asprintf(msg,
	             "cannot check the package's files: the repository at '%s' answered %s (%s); "
	             "make sure noetl-repository is running and reachable, then retry",
	             c->repo_url, rpc_status_name(st), err != NULL ? err : "no detail") < 0)
		*msg = NULL;
	free(err);
	return NOETL__STATUS__UNAVAILABLE;
}

static void fail_refs(void *call, int st, char *msg)
{
	rpc_fail(call, (Noetl__Status)st, "%s; nothing was changed",
	         msg != NULL ? msg : "the repository refused the change");
	free(msg);
}

/* Answers a failed commit of tenant/id. */
static void fail_commit(void *call, int rv, const char *tenant, const char *id, bool update)
{
	if (rv == -ESRCH)
		rpc_fail(call, NOETL__STATUS__NOT_FOUND,
		         "tenant '%s' does not exist; add it with `noetlctl tenant add %s`", tenant,
		         tenant);
	else if (rv == -EEXIST)
		rpc_fail(call, NOETL__STATUS__ALREADY_EXISTS,
		         "package '%s' of tenant '%s' is deployed already; use `noetlctl deploy "
		         "--update FILE` to replace it",
		         id, tenant);
	else if (rv == -ENOENT)
		rpc_fail(call, NOETL__STATUS__NOT_FOUND,
		         "package '%s' of tenant '%s' is not deployed; %s", id, tenant,
		         update ? "deploy it first with `noetlctl deploy FILE`"
		                : "see `noetlctl list` for what is");
	else
		control_fail_store(call, rv, "committing the package change");
}

/* Puts back the reference set of what is in force after a failed commit. */
static void restore_refs(struct control *c, const char *tenant, const char *id)
{
	Noetl__PackageRevision *cur = NULL;
	int rv = control_store_current(c->store, tenant, id, &cur);
	if (rv != 0 && rv != -ENOENT)
		return;
	char *msg = NULL;
	if (set_refs(c, tenant, id, cur != NULL ? cur->package : NULL, &msg) != 0) {
		log_warn("cannot restore the file references of %s/%s: %s", tenant, id,
		         msg != NULL ? msg : "?");
		free(msg);
	}
	if (cur != NULL)
		protobuf_c_message_free_unpacked(&cur->base, NULL);
}

/*
 * The common tail of deploy, update and rollback: pin the files, commit,
 * answer. Called with the packages mutex held.
 */
static void install(struct control *c, struct control_change *chg, Noetl__DeployReply_Closure done,
                    void *call)
{
	char *msg = NULL;
	int st = set_refs(c, chg->tenant, chg->id, chg->pkg, &msg);
	if (st != 0) {
		fail_refs(call, st, msg);
		done(NULL, call);
		return;
	}
	uint64_t rev;
	int rv = control_store_commit(c->store, chg, &rev);
	if (rv != 0) {
		restore_refs(c, chg->tenant, chg->id);
		fail_commit(call, rv, chg->tenant, chg->id, chg->expect == CONTROL_EXPECT_PRESENT);
		done(NULL, call);
		return;
	}
	log_info("%s %s/%s: revision %llu", chg->action, chg->tenant, chg->id,
	         (unsigned long long)rev);
	Noetl__DeployReply rep = NOETL__DEPLOY_REPLY__INIT;
	rep.revision = rev;
	rep.package_revision = rev;
	done(&rep, call);
}

void package_deploy(Noetl__Control_Service *svc, const Noetl__DeployRequest *in,
                    Noetl__DeployReply_Closure done, void *call)
{
	struct control *c = self(svc);
	const Noetl__Package *p = in->package;
	if (p == NULL) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "deploy needs a package; send the parsed definition");
		goto fail;
	}
	if (!control_check_tenant(call, p->tenant) || !control_check_id(call, "package id", p->id))
		goto fail;
	if (in->source != NULL && strlen(in->source) > JOBDEF_MAX_SIZE) {
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED,
		         "package '%s': the definition text is over %d bytes; split the package",
		         p->id, JOBDEF_MAX_SIZE);
		goto fail;
	}
	char *err = NULL;
	int rv = jobdef_validate(p, &err);
	if (rv != 0) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "package '%s' is not valid: %s",
		         p->id, err != NULL ? err : "out of memory while checking it");
		free(err);
		goto fail;
	}
	struct control_change chg = {
	        .tenant = p->tenant,
	        .id = p->id,
	        .action = in->update ? "update" : "deploy",
	        .pkg = p,
	        .source = in->source,
	        .expect = in->update ? CONTROL_EXPECT_PRESENT : CONTROL_EXPECT_ABSENT,
	};
	pthread_mutex_lock(&c->packages);
	/* Check the preconditions before touching the Repository, so a refused
	 * deploy does not even replace the reference set; the commit checks
	 * them again under the store's lock. */
	Noetl__PackageRevision *cur = NULL;
	rv = control_store_has_tenant(c->store, p->tenant) ? 0 : -ESRCH;
	if (rv == 0) {
		rv = control_store_current(c->store, p->tenant, p->id, &cur);
		if (rv == 0 && !in->update)
			rv = -EEXIST;
		else if (rv == -ENOENT && !in->update)
			rv = 0;
	}
	if (cur != NULL)
		protobuf_c_message_free_unpacked(&cur->base, NULL);
	if (rv != 0) {
		pthread_mutex_unlock(&c->packages);
		fail_commit(call, rv, p->tenant, p->id, in->update);
		goto fail;
	}
	chg.now_ms = control_now(c);
	install(c, &chg, done, call);
	pthread_mutex_unlock(&c->packages);
	return;
fail:
	done(NULL, call);
}

void package_delete(Noetl__Control_Service *svc, const Noetl__PackageRef *in,
                    Noetl__DeployReply_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant) ||
	    !control_check_id(call, "package id", in->id)) {
		done(NULL, call);
		return;
	}
	struct control_change chg = {
	        .tenant = in->tenant,
	        .id = in->id,
	        .action = "delete",
	        .expect = CONTROL_EXPECT_PRESENT,
	};
	pthread_mutex_lock(&c->packages);
	chg.now_ms = control_now(c);
	uint64_t rev;
	int rv = control_store_commit(c->store, &chg, &rev);
	if (rv != 0) {
		pthread_mutex_unlock(&c->packages);
		fail_commit(call, rv, in->tenant, in->id, false);
		done(NULL, call);
		return;
	}
	Noetl__DeployReply rep = NOETL__DEPLOY_REPLY__INIT;
	rep.revision = rev;
	rep.package_revision = rev;
	char *msg = NULL, *warning = NULL;
	if (set_refs(c, in->tenant, in->id, NULL, &msg) != 0) {
		log_warn("deleted %s/%s but could not release its files: %s", in->tenant, in->id,
		         msg != NULL ? msg : "?");
		if (asprintf(&warning,
		             "the package was deleted, but its files are still marked as used: "
		             "%s; they cannot be deleted until the package is deployed and "
		             "deleted again",
		             msg != NULL ? msg : "the repository did not answer") < 0)
			warning = NULL;
		rep.warning = warning;
		free(msg);
	}
	pthread_mutex_unlock(&c->packages);
	log_info("delete %s/%s: revision %llu", in->tenant, in->id, (unsigned long long)rev);
	done(&rep, call);
	free(warning);
}

/* Finds the revision to roll back to: to (0 = the newest revision before
 * the newest one that has a definition). *out is that history entry. */
static int rollback_target(struct control *c, const Noetl__RollbackRequest *in,
                           Noetl__PackageRevision **out, void *call)
{
	if (in->to_revision != 0) {
		Noetl__PackageRevision *pr;
		int rv = control_store_revision(c->store, in->tenant, in->id, in->to_revision, &pr);
		if (rv == -ENOENT) {
			rpc_fail(call, NOETL__STATUS__NOT_FOUND,
			         "package '%s' of tenant '%s' has no revision %llu; see `noetlctl "
			         "history %s %s`",
			         in->id, in->tenant, (unsigned long long)in->to_revision,
			         in->tenant, in->id);
			return rv;
		}
		if (rv != 0) {
			control_fail_store(call, rv, "reading the history");
			return rv;
		}
		if (pr->package == NULL) {
			rpc_fail(
			        call, NOETL__STATUS__FAILED_PRECONDITION,
			        "revision %llu of package '%s' is a delete and has no definition; "
			        "choose a revision that deployed it (see `noetlctl history %s %s`)",
			        (unsigned long long)in->to_revision, in->id, in->tenant, in->id);
			protobuf_c_message_free_unpacked(&pr->base, NULL);
			return -EINVAL;
		}
		*out = pr;
		return 0;
	}
	Noetl__PackageRevision **h;
	size_t n;
	uint32_t omitted;
	int rv = control_store_history(c->store, in->tenant, in->id, 0, &h, &n, &omitted);
	if (rv == -ENOENT) {
		rpc_fail(call, NOETL__STATUS__NOT_FOUND,
		         "package '%s' of tenant '%s' was never deployed; nothing to roll back",
		         in->id, in->tenant);
		return rv;
	}
	if (rv != 0) {
		control_fail_store(call, rv, "reading the history");
		return rv;
	}
	/* The definition in force before the newest change: the newest earlier
	 * entry with a definition (a delete has none). */
	Noetl__PackageRevision *target = NULL;
	for (size_t i = n - 1; i-- > 0;) {
		if (h[i]->package != NULL) {
			target = h[i];
			h[i] = NULL;
			break;
		}
	}
	control_free_messages(h, n);
	if (target == NULL) {
		rpc_fail(call, NOETL__STATUS__FAILED_PRECONDITION,
		         "package '%s' of tenant '%s' has no earlier revision to roll back to",
		         in->id, in->tenant);
		return -ENOENT;
	}
	*out = target;
	return 0;
}

void package_rollback(Noetl__Control_Service *svc, const Noetl__RollbackRequest *in,
                      Noetl__DeployReply_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant) ||
	    !control_check_id(call, "package id", in->id)) {
		done(NULL, call);
		return;
	}
	pthread_mutex_lock(&c->packages);
	if (!control_store_has_tenant(c->store, in->tenant)) {
		pthread_mutex_unlock(&c->packages);
		fail_commit(call, -ESRCH, in->tenant, in->id, false);
		done(NULL, call);
		return;
	}
	Noetl__PackageRevision *target;
	if (rollback_target(c, in, &target, call) != 0) {
		pthread_mutex_unlock(&c->packages);
		done(NULL, call);
		return;
	}
	struct control_change chg = {
	        .tenant = in->tenant,
	        .id = in->id,
	        .action = "rollback",
	        .pkg = target->package,
	        .source = target->source,
	        .rolled_back_to = target->revision,
	        .expect = CONTROL_EXPECT_ANY,
	        .now_ms = control_now(c),
	};
	install(c, &chg, done, call);
	pthread_mutex_unlock(&c->packages);
	protobuf_c_message_free_unpacked(&target->base, NULL);
}

void package_get(Noetl__Control_Service *svc, const Noetl__PackageRef *in,
                 Noetl__GetPackageReply_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant) ||
	    !control_check_id(call, "package id", in->id)) {
		done(NULL, call);
		return;
	}
	Noetl__PackageRevision *pr;
	int rv = in->revision == 0
	                 ? control_store_current(c->store, in->tenant, in->id, &pr)
	                 : control_store_revision(c->store, in->tenant, in->id, in->revision, &pr);
	if (rv == -ENOENT) {
		if (in->revision != 0)
			rpc_fail(call, NOETL__STATUS__NOT_FOUND,
			         "package '%s' of tenant '%s' has no revision %llu; see `noetlctl "
			         "history %s %s`",
			         in->id, in->tenant, (unsigned long long)in->revision, in->tenant,
			         in->id);
		else
			rpc_fail(call, NOETL__STATUS__NOT_FOUND,
			         "package '%s' of tenant '%s' is not deployed; see `noetlctl list "
			         "%s`",
			         in->id, in->tenant, in->tenant);
		done(NULL, call);
		return;
	}
	if (rv != 0) {
		control_fail_store(call, rv, "reading the package");
		done(NULL, call);
		return;
	}
	Noetl__GetPackageReply rep = NOETL__GET_PACKAGE_REPLY__INIT;
	rep.revision = pr;
	done(&rep, call);
	protobuf_c_message_free_unpacked(&pr->base, NULL);
}

void package_list(Noetl__Control_Service *svc, const Noetl__ListPackagesRequest *in,
                  Noetl__ListPackagesReply_Closure done, void *call)
{
	struct control *c = self(svc);
	if (in->tenant[0] != '\0' && !control_check_tenant(call, in->tenant)) {
		done(NULL, call);
		return;
	}
	uint32_t limit = paging_limit(in->page);
	const void *cursor = in->page != NULL ? in->page->cursor.data : NULL;
	size_t cursor_len = in->page != NULL ? in->page->cursor.len : 0;
	Noetl__Package **arr;
	size_t n;
	void *next;
	size_t next_len;
	uint64_t rev;
	int rv = control_store_list_packages(c->store, in->tenant, cursor, cursor_len, limit, &arr,
	                                     &n, &next, &next_len, &rev);
	if (rv == -EINVAL) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "page cursor is not one this service returned; start again without one");
		done(NULL, call);
		return;
	}
	if (rv != 0) {
		control_fail_store(call, rv, "listing packages");
		done(NULL, call);
		return;
	}
	Noetl__ListPackagesReply rep = NOETL__LIST_PACKAGES_REPLY__INIT;
	rep.packages = arr;
	rep.n_packages = n;
	rep.revision = rev;
	rep.next_cursor.data = next;
	rep.next_cursor.len = next_len;
	done(&rep, call);
	control_free_messages(arr, n);
	free(next);
}

void package_history(Noetl__Control_Service *svc, const Noetl__PackageRef *in,
                     Noetl__HistoryReply_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant) ||
	    !control_check_id(call, "package id", in->id)) {
		done(NULL, call);
		return;
	}
	Noetl__PackageRevision **h;
	size_t n;
	uint32_t omitted;
	int rv = control_store_history(c->store, in->tenant, in->id, HISTORY_MAX_BYTES, &h, &n,
	                               &omitted);
	if (rv == -ENOENT) {
		rpc_fail(call, NOETL__STATUS__NOT_FOUND,
		         "package '%s' of tenant '%s' has no history: it was never deployed",
		         in->id, in->tenant);
		done(NULL, call);
		return;
	}
	if (rv != 0) {
		control_fail_store(call, rv, "reading the history");
		done(NULL, call);
		return;
	}
	Noetl__HistoryReply rep = NOETL__HISTORY_REPLY__INIT;
	rep.revisions = h;
	rep.n_revisions = n;
	rep.omitted = omitted;
	done(&rep, call);
	control_free_messages(h, n);
}
