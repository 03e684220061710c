/*
 * catalog: the executor's live view of job definitions. See catalog.h.
 */
#include "catalog.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "repository.pb-c.h"
#include "stream.h"
#include "util.h"

/* A prepared module with its reference count. */
struct modref {
	struct catalog_module pub; /* what events hold */
	int refs;                  /* protected by defs.mu */
};

/* A module the definitions use, by tenant and file name. */
struct modslot {
	char *tenant;
	char *name;
	uint32_t version;   /* repository version loaded; 0 if none */
	bool transient;     /* the last failure may go away by itself */
	bool refetch;       /* a new version arrived while it was being prepared */
	struct modref *cur; /* current module; NULL while it is first prepared */
};

/* A deployed package. While an update prepares its modules, the package is
 * listed twice: the old version (ready) and the new one (not ready). */
struct pkg {
	char *tenant;
	Noetl__Package *p; /* owned (unpacked copy) */
	uint64_t revision; /* Control revision that deployed this version */
	bool ready;        /* its modules are prepared (or failed for good) */
};

struct catalog {
	struct catalog_config cfg;
	pthread_mutex_t mu;
	struct pkg *pkgs;
	size_t npkgs;
	struct modslot *mods;
	size_t nmods;
	uint64_t revision;  /* Control revision applied */
	unsigned preparing; /* package versions not ready yet (0 or 1: one deploy at a time) */
	struct stream_sub *control_sub;
	struct stream_sub *repo_sub;
};

static void modref_put_locked(struct catalog *d, struct modref *m)
{
	if (m == NULL || --m->refs > 0)
		return;
	if (m->pub.mod != NULL)
		engine_module_release(d->cfg.engine, m->pub.mod);
	free(m->pub.error);
	free(m);
}

static struct modref *modref_new(struct engine_module *mod, const char *error)
{
	struct modref *m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	m->refs = 1;
	m->pub.mod = mod;
	if (mod != NULL)
		snprintf(m->pub.sha, sizeof(m->pub.sha), "%s", engine_module_sha256(mod));
	else
		m->pub.error = util_xstrdup(error);
	return m;
}

/* Fetches tenant's file name from the Repository and prepares it. Never
 * fails: a failure is a modref carrying the reason. *version gets the
 * version fetched (0 on failure), *transient whether a retry may help. */
static struct modref *fetch_and_prepare(struct catalog *d, const char *tenant, const char *name,
                                        uint32_t *version, bool *transient)
{
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = (char *)tenant;
	ref.name = (char *)name;
	struct rpc_call_options o = {.timeout_ms = 30000, .tenant = tenant, .token = d->cfg.token};
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	*version = 0;
	*transient = false;
	int st = rpc_call(d->cfg.repository, &noetl__repository__descriptor, "GetFile", &ref.base,
	                  &o, &out, &err);
	if (st != NOETL__STATUS__OK) {
		char msg[1200];
		snprintf(msg, sizeof(msg), "cannot fetch module '%s' of tenant '%s': %s", name,
		         tenant, err != NULL ? err : rpc_status_name(st));
		*transient = rpc_status_retryable(st);
		free(err);
		log_warn("executor: %s", msg);
		return modref_new(NULL, msg);
	}
	Noetl__GetFileReply *r = (Noetl__GetFileReply *)out;
	struct engine_module *mod = NULL;
	struct engine_prepare_info info = {0};
	const char *sha = r->info != NULL && r->info->sha256[0] != '\0' ? r->info->sha256 : NULL;
	int rc = engine_prepare(d->cfg.engine, r->content.data, r->content.len, sha, &mod, &info,
	                        &err);
	struct modref *m;
	if (rc != 0) {
		char msg[4096];
		snprintf(msg, sizeof(msg), "module '%s' cannot run: %s", name,
		         err != NULL ? err : "prepare failed");
		log_error("executor: tenant '%s': %s", tenant, msg);
		m = modref_new(NULL, msg);
		*transient = rc == -ENOMEM || rc == -EAGAIN;
	} else {
		if (info.compiled)
			log_info("executor: compiled module '%s' of tenant '%s' in %.0f ms", name,
			         tenant, info.compile_ms);
		m = modref_new(mod, NULL);
		*version = r->info != NULL ? r->info->version : 0;
	}
	free(err);
	protobuf_c_message_free_unpacked(out, NULL);
	return m;
}

static struct modslot *find_mod(struct catalog *d, const char *tenant, const char *name)
{
	for (size_t i = 0; i < d->nmods; i++)
		if (strcmp(d->mods[i].tenant, tenant) == 0 && strcmp(d->mods[i].name, name) == 0)
			return &d->mods[i];
	return NULL;
}

static bool used(struct catalog *d, const char *tenant, const char *name)
{
	for (size_t i = 0; i < d->npkgs; i++) {
		if (strcmp(d->pkgs[i].tenant, tenant) != 0)
			continue;
		for (size_t r = 0; r < d->pkgs[i].p->n_runtimes; r++)
			if (strcmp(d->pkgs[i].p->runtimes[r]->module_ref, name) == 0)
				return true;
	}
	return false;
}

/* Drops modules that no package uses any more. */
static void release_unused_locked(struct catalog *d)
{
	for (size_t i = 0; i < d->nmods;) {
		struct modslot *s = &d->mods[i];
		if (used(d, s->tenant, s->name)) {
			i++;
			continue;
		}
		log_info("executor: unloading module '%s' of tenant '%s'", s->name, s->tenant);
		modref_put_locked(d, s->cur);
		free(s->tenant);
		free(s->name);
		d->mods[i] = d->mods[--d->nmods];
	}
}

/* The slot of tenant/name, made (empty: preparing) if there is none. */
static struct modslot *slot_locked(struct catalog *d, const char *tenant, const char *name)
{
	struct modslot *s = find_mod(d, tenant, name);
	if (s != NULL)
		return s;
	struct modslot *n = realloc(d->mods, (d->nmods + 1) * sizeof(*d->mods));
	if (n == NULL)
		abort();
	d->mods = n;
	s = &d->mods[d->nmods++];
	memset(s, 0, sizeof(*s));
	s->tenant = util_xstrdup(tenant);
	s->name = util_xstrdup(name);
	return s;
}

/* Installs a freshly prepared module for tenant/name, replacing the old. */
static void install_mod_locked(struct catalog *d, const char *tenant, const char *name,
                               struct modref *m, uint32_t version, bool transient)
{
	struct modslot *s = slot_locked(d, tenant, name);
	modref_put_locked(d, s->cur);
	s->cur = m;
	s->version = version;
	s->transient = transient;
}

/* Makes sure every module of p is prepared (compiling outside the lock).
 * Slots of modules not seen before were made empty by the caller, so that
 * lookups meanwhile know the module is being prepared. */
static void prepare_package(struct catalog *d, const char *tenant, const Noetl__Package *p)
{
	for (size_t r = 0; r < p->n_runtimes; r++) {
		const char *name = p->runtimes[r]->module_ref;
		for (;;) {
			pthread_mutex_lock(&d->mu);
			struct modslot *s = find_mod(d, tenant, name);
			bool have = s != NULL && s->cur != NULL && !s->transient && !s->refetch;
			if (s != NULL)
				s->refetch = false;
			pthread_mutex_unlock(&d->mu);
			if (have)
				break;
			uint32_t version;
			bool transient;
			struct modref *m = fetch_and_prepare(d, tenant, name, &version, &transient);
			pthread_mutex_lock(&d->mu);
			install_mod_locked(d, tenant, name, m, version, transient);
			bool again = find_mod(d, tenant, name)->refetch;
			pthread_mutex_unlock(&d->mu);
			if (!again)
				break; /* else: a newer file arrived while this one compiled */
		}
	}
}

static Noetl__Package *copy_package(const Noetl__Package *p)
{
	size_t n = noetl__package__get_packed_size(p);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		abort();
	noetl__package__pack(p, buf);
	Noetl__Package *c = noetl__package__unpack(NULL, n, buf);
	free(buf);
	if (c == NULL)
		abort();
	return c;
}

/* Removes tenant's package id (NULL: every package of tenant), every
 * version of it, or only the versions other than keep. */
static void remove_package_locked(struct catalog *d, const char *tenant, const char *id,
                                  const Noetl__Package *keep)
{
	for (size_t i = 0; i < d->npkgs; i++) {
		if (strcmp(d->pkgs[i].tenant, tenant) == 0 && d->pkgs[i].p != keep &&
		    (id == NULL || strcmp(d->pkgs[i].p->id, id) == 0)) {
			free(d->pkgs[i].tenant);
			noetl__package__free_unpacked(d->pkgs[i].p, NULL);
			d->pkgs[i] = d->pkgs[--d->npkgs];
			i--;
		}
	}
}

/*
 * Deploys (or updates) tenant's package p of Control revision rev. The new
 * version is listed at once, not ready, beside the old version if any, and
 * its new modules get empty slots: lookups then know that its events are
 * coming and wait for them instead of failing them as unknown. Its modules
 * are prepared (compiled) next, outside the lock; then the new version
 * replaces the old one. Only the control stream's thread (and
 * catalog_create before it starts) deploys, so two deploys never overlap.
 */
static void put_package(struct catalog *d, const char *tenant, const Noetl__Package *p,
                        uint64_t rev)
{
	Noetl__Package *c = copy_package(p);
	pthread_mutex_lock(&d->mu);
	struct pkg *n = realloc(d->pkgs, (d->npkgs + 1) * sizeof(*d->pkgs));
	if (n == NULL)
		abort();
	d->pkgs = n;
	d->pkgs[d->npkgs] = (struct pkg){.tenant = util_xstrdup(tenant), .p = c, .revision = rev};
	d->npkgs++;
	d->preparing++;
	for (size_t r = 0; r < c->n_runtimes; r++)
		slot_locked(d, tenant, c->runtimes[r]->module_ref);
	pthread_mutex_unlock(&d->mu);
	prepare_package(d, tenant, c);
	pthread_mutex_lock(&d->mu);
	remove_package_locked(d, tenant, c->id, c);
	for (size_t i = 0; i < d->npkgs; i++)
		if (d->pkgs[i].p == c)
			d->pkgs[i].ready = true;
	d->preparing--;
	release_unused_locked(d);
	pthread_mutex_unlock(&d->mu);
}

static int apply_control(void *arg, const Noetl__Change *chg)
{
	struct catalog *d = arg;
	Noetl__DefinitionChange *dc =
	        noetl__definition_change__unpack(NULL, chg->body.len, chg->body.data);
	if (dc == NULL) {
		log_error("executor: control revision %llu does not decode; skipped",
		          (unsigned long long)chg->revision);
	} else {
		switch (dc->kind) {
		case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED:
			if (dc->package != NULL) {
				put_package(d, dc->tenant, dc->package, chg->revision);
				log_info("executor: package '%s' of tenant '%s' is live (revision "
				         "%llu)",
				         dc->package->id, dc->tenant,
				         (unsigned long long)chg->revision);
			}
			break;
		case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DELETED:
		case NOETL__DEFINITION_CHANGE__KIND__TENANT_REMOVED:
			pthread_mutex_lock(&d->mu);
			remove_package_locked(
			        d, dc->tenant,
			        dc->kind == NOETL__DEFINITION_CHANGE__KIND__TENANT_REMOVED
			                ? NULL
			                : dc->package_id,
			        NULL);
			release_unused_locked(d);
			pthread_mutex_unlock(&d->mu);
			break;
		default:
			break; /* tokens and secrets are the listener's business */
		}
		noetl__definition_change__free_unpacked(dc, NULL);
	}
	pthread_mutex_lock(&d->mu);
	d->revision = chg->revision;
	pthread_mutex_unlock(&d->mu);
	return 0;
}

static int apply_repository(void *arg, const Noetl__Change *chg)
{
	struct catalog *d = arg;
	Noetl__FileChange *fc = noetl__file_change__unpack(NULL, chg->body.len, chg->body.data);
	if (fc == NULL || fc->info == NULL || fc->kind != NOETL__FILE_CHANGE__KIND__PUT) {
		if (fc != NULL)
			noetl__file_change__free_unpacked(fc, NULL);
		return 0;
	}
	const char *tenant = fc->info->tenant, *name = fc->info->name;
	pthread_mutex_lock(&d->mu);
	struct modslot *s = find_mod(d, tenant, name);
	bool wanted = s != NULL && s->cur != NULL &&
	              (s->cur->pub.mod == NULL || fc->info->version > s->version);
	if (s != NULL && s->cur == NULL)
		s->refetch = true; /* being prepared: prepare_package fetches it again */
	pthread_mutex_unlock(&d->mu);
	if (wanted) {
		uint32_t version;
		bool transient;
		struct modref *m = fetch_and_prepare(d, tenant, name, &version, &transient);
		pthread_mutex_lock(&d->mu);
		if (used(d, tenant, name)) {
			install_mod_locked(d, tenant, name, m, version, transient);
			log_info("executor: module '%s' of tenant '%s' updated to version %u", name,
			         tenant, version);
		} else {
			modref_put_locked(d, m);
		}
		pthread_mutex_unlock(&d->mu);
	}
	noetl__file_change__free_unpacked(fc, NULL);
	return 0;
}

/* The Repository's head revision, so its stream starts after what we fetch. */
static int repository_head(struct catalog *d, uint64_t *head, char **err)
{
	Noetl__ChangesRequest req = NOETL__CHANGES_REQUEST__INIT;
	req.since = UINT64_MAX - 1;
	req.limit = 1;
	struct rpc_call_options o = {.timeout_ms = 5000, .token = d->cfg.token};
	ProtobufCMessage *out = NULL;
	int st = rpc_call(d->cfg.repository, &noetl__repository__descriptor, "Changes", &req.base,
	                  &o, &out, err);
	if (st != NOETL__STATUS__OK)
		return -EAGAIN;
	*head = ((Noetl__ChangesReply *)out)->head;
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

int catalog_create(const struct catalog_config *cfg, struct catalog **out, char **err)
{
	struct catalog *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->cfg = *cfg;
	pthread_mutex_init(&d->mu, NULL);
	uint64_t rhead = 0;
	if (repository_head(d, &rhead, err) != 0) {
		catalog_destroy(d);
		return -EAGAIN;
	}
	Noetl__Empty empty = NOETL__EMPTY__INIT;
	struct rpc_call_options o = {.timeout_ms = 10000, .token = cfg->token};
	ProtobufCMessage *out_snap = NULL;
	int st = rpc_call(cfg->control, &noetl__control__descriptor, "GetSnapshot", &empty.base, &o,
	                  &out_snap, err);
	if (st != NOETL__STATUS__OK) {
		catalog_destroy(d);
		return -EAGAIN;
	}
	Noetl__Snapshot *snap = (Noetl__Snapshot *)out_snap;
	for (size_t i = 0; i < snap->n_packages; i++)
		put_package(d, snap->packages[i]->tenant, snap->packages[i], snap->revision);
	d->revision = snap->revision;
	uint64_t crev = snap->revision;
	protobuf_c_message_free_unpacked(out_snap, NULL);

	struct stream_sub_options co = {
	        .since = crev, .token = cfg->token, .name = "executor: control stream"};
	struct stream_sub_options ro = {
	        .since = rhead, .token = cfg->token, .name = "executor: repository stream"};
	if (stream_sub_create(cfg->control, &noetl__control__descriptor, cfg->control_stream, &co,
	                      apply_control, d, &d->control_sub) != 0 ||
	    stream_sub_create(cfg->repository, &noetl__repository__descriptor,
	                      cfg->repository_stream, &ro, apply_repository, d,
	                      &d->repo_sub) != 0) {
		if (err != NULL)
			*err = util_xstrdup("cannot subscribe to the definition streams");
		catalog_destroy(d);
		return -EIO;
	}
	*out = d;
	return 0;
}

void catalog_destroy(struct catalog *d)
{
	if (d == NULL)
		return;
	stream_sub_destroy(d->control_sub);
	stream_sub_destroy(d->repo_sub);
	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < d->npkgs; i++) {
		free(d->pkgs[i].tenant);
		noetl__package__free_unpacked(d->pkgs[i].p, NULL);
	}
	d->npkgs = 0;
	release_unused_locked(d);
	pthread_mutex_unlock(&d->mu);
	free(d->pkgs);
	free(d->mods);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static Noetl__EventDef *copy_event(const Noetl__EventDef *e)
{
	if (e == NULL || e->id == NULL || e->id[0] == '\0')
		return NULL;
	size_t n = noetl__event_def__get_packed_size(e);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		abort();
	noetl__event_def__pack(e, buf);
	Noetl__EventDef *c = noetl__event_def__unpack(NULL, n, buf);
	free(buf);
	return c;
}

static Noetl__RetryPolicy *copy_retry(const Noetl__RetryPolicy *a, const Noetl__RetryPolicy *b)
{
	const Noetl__RetryPolicy *p = a != NULL && a->max_attempts > 0 ? a : b;
	if (p == NULL)
		return NULL;
	Noetl__RetryPolicy *c = malloc(sizeof(*c));
	if (c == NULL)
		abort();
	*c = *p;
	return c;
}

static const Noetl__RuntimeDef *find_runtime(const Noetl__Package *p, const char *id)
{
	for (size_t r = 0; r < p->n_runtimes; r++)
		if (strcmp(p->runtimes[r]->id, id) == 0)
			return p->runtimes[r];
	return NULL;
}

/* False if version i of a package must not serve an item accepted at
 * definition revision rev: an older version while a newer one is being
 * prepared, once the item was accepted under the newer one (rev 0: unknown,
 * the older version serves). */
static bool serves_locked(const struct catalog *d, size_t i, uint64_t rev)
{
	const struct pkg *a = &d->pkgs[i];
	if (d->preparing == 0 || !a->ready || rev == 0)
		return true;
	for (size_t k = 0; k < d->npkgs; k++) {
		const struct pkg *b = &d->pkgs[k];
		if (k != i && !b->ready && b->revision <= rev &&
		    strcmp(b->tenant, a->tenant) == 0 && strcmp(b->p->id, a->p->id) == 0)
			return false;
	}
	return true;
}

/* Finds tenant's event among the package versions that are ready (ready:
 * true) or not; job events first: a result event that repeats a job's event
 * id is how a workflow chains to that job, whose result then routes onwards
 * (docs/jobs.md); a result event found first would end the chain. */
static const Noetl__EventDef *find_event_locked(const struct catalog *d, const char *tenant,
                                                const char *event, uint64_t rev, bool ready,
                                                const struct pkg **pkg,
                                                const Noetl__ResultDef **res)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < d->npkgs; i++) {
			if (d->pkgs[i].ready != ready || strcmp(d->pkgs[i].tenant, tenant) != 0 ||
			    !serves_locked(d, i, rev))
				continue;
			const Noetl__Package *p = d->pkgs[i].p;
			for (size_t j = 0; j < p->n_jobs; j++) {
				const Noetl__JobDef *job = p->jobs[j];
				const Noetl__EventDef *cands[3] = {
				        job->event, job->result != NULL ? job->result->ok : NULL,
				        job->result != NULL ? job->result->error : NULL};
				for (int k = pass == 0 ? 0 : 1; k < (pass == 0 ? 1 : 3); k++) {
					if (cands[k] != NULL && strcmp(cands[k]->id, event) == 0) {
						*pkg = &d->pkgs[i];
						/* only the job's own event routes its results */
						*res = k == 0 ? job->result : NULL;
						return cands[k];
					}
				}
			}
		}
	}
	return NULL;
}

static char *why_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *why_printf(const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return util_xstrdup(buf);
}

int catalog_lookup(struct catalog *d, const char *tenant, const char *event, uint64_t revision,
                   struct catalog_event **out, char **why)
{
	pthread_mutex_lock(&d->mu);
	const struct pkg *pk = NULL;
	const Noetl__ResultDef *res = NULL;
	const Noetl__EventDef *ev = find_event_locked(d, tenant, event, revision, true, &pk, &res);
	if (ev == NULL) {
		int rc = -ENOENT;
		char *w = NULL;
		if (find_event_locked(d, tenant, event, revision, false, &pk, &res) != NULL) {
			rc = -EAGAIN;
			w = why_printf("waiting for package '%s' (revision %llu) to compile its "
			               "modules",
			               pk->p->id, (unsigned long long)pk->revision);
		} else if (revision > d->revision) {
			rc = -ESTALE;
			w = why_printf("event '%s' is not known yet: definitions at revision %llu, "
			               "executor at %llu",
			               event, (unsigned long long)revision,
			               (unsigned long long)d->revision);
		}
		pthread_mutex_unlock(&d->mu);
		if (why != NULL)
			*why = w;
		else
			free(w);
		return rc;
	}
	const Noetl__Package *pkg = pk->p;
	uint64_t at = d->revision;
	const Noetl__RuntimeDef *rt = find_runtime(pkg, ev->runtime);
	struct catalog_event *e = calloc(1, sizeof(*e));
	if (e == NULL)
		abort();
	e->package = util_xstrdup(pkg->id);
	e->function = util_xstrdup(rt != NULL && rt->main_func_name[0] != '\0' ? rt->main_func_name
	                                                                       : "event");
	e->memory_limit = rt != NULL ? rt->memory_limit : 0;
	e->timeout_ms = ev->timeout_ms > 0 ? ev->timeout_ms : rt != NULL ? rt->timeout_ms : 0;
	if (res != NULL) {
		e->ok = copy_event(res->ok);
		e->error = copy_event(res->error);
		const Noetl__RuntimeDef *okrt =
		        e->ok != NULL ? find_runtime(pkg, e->ok->runtime) : NULL;
		const Noetl__RuntimeDef *errt =
		        e->error != NULL ? find_runtime(pkg, e->error->runtime) : NULL;
		if (e->ok != NULL)
			e->ok_retry = copy_retry(e->ok->retry, okrt != NULL ? okrt->retry : NULL);
		if (e->error != NULL)
			e->error_retry =
			        copy_retry(e->error->retry, errt != NULL ? errt->retry : NULL);
	}
	e->retry = copy_retry(ev->retry, rt != NULL ? rt->retry : NULL);
	struct modslot *s = rt != NULL ? find_mod(d, tenant, rt->module_ref) : NULL;
	if (s != NULL && s->cur == NULL) {
		/* Not expected (a ready version's modules are prepared), but a
		 * module being prepared is waited for, never run or failed. */
		char *w = why_printf("waiting for module '%s' of package '%s' to compile", s->name,
		                     pkg->id);
		pthread_mutex_unlock(&d->mu);
		catalog_event_free(d, e);
		if (why != NULL)
			*why = w;
		else
			free(w);
		return -EAGAIN;
	}
	if (s != NULL) {
		s->cur->refs++;
		e->module = &s->cur->pub;
	}
	e->revision = at;
	pthread_mutex_unlock(&d->mu);
	*out = e;
	return 0;
}

void catalog_event_free(struct catalog *d, struct catalog_event *e)
{
	if (e == NULL)
		return;
	if (e->module != NULL) {
		pthread_mutex_lock(&d->mu);
		modref_put_locked(d, (struct modref *)e->module);
		pthread_mutex_unlock(&d->mu);
	}
	if (e->ok != NULL)
		noetl__event_def__free_unpacked(e->ok, NULL);
	if (e->error != NULL)
		noetl__event_def__free_unpacked(e->error, NULL);
	free(e->retry);
	free(e->ok_retry);
	free(e->error_retry);
	free(e->package);
	free(e->function);
	free(e);
}

void catalog_retry_failed(struct catalog *d)
{
	for (;;) {
		char *tenant = NULL, *name = NULL;
		pthread_mutex_lock(&d->mu);
		for (size_t i = 0; i < d->nmods && tenant == NULL; i++) {
			if (d->mods[i].transient) {
				tenant = util_xstrdup(d->mods[i].tenant);
				name = util_xstrdup(d->mods[i].name);
				d->mods[i].transient = false; /* one try per call */
			}
		}
		pthread_mutex_unlock(&d->mu);
		if (tenant == NULL)
			return;
		uint32_t version;
		bool transient;
		struct modref *m = fetch_and_prepare(d, tenant, name, &version, &transient);
		pthread_mutex_lock(&d->mu);
		if (used(d, tenant, name))
			install_mod_locked(d, tenant, name, m, version, transient);
		else
			modref_put_locked(d, m);
		pthread_mutex_unlock(&d->mu);
		free(tenant);
		free(name);
		if (transient)
			return; /* still unreachable: try later */
	}
}

uint64_t catalog_revision(struct catalog *d)
{
	pthread_mutex_lock(&d->mu);
	uint64_t r = d->revision;
	pthread_mutex_unlock(&d->mu);
	return r;
}

unsigned catalog_modules(struct catalog *d)
{
	pthread_mutex_lock(&d->mu);
	unsigned n = 0;
	for (size_t i = 0; i < d->nmods; i++)
		n += d->mods[i].cur != NULL && d->mods[i].cur->pub.mod != NULL;
	pthread_mutex_unlock(&d->mu);
	return n;
}
