/*
 * defs: the state is a map of tenants, each with its events, packages and
 * webhook secrets, plus one map from token hash to owner over all tenants,
 * so a token check is one lookup and can tell "unknown" from "another
 * tenant's". Everything is rebuilt from scratch on a snapshot (built aside,
 * then swapped in under the write lock) and patched in place by changes.
 *
 * Events are keyed by id within a tenant; their URL is /events/{tenant}/{id}.
 * Control keeps event ids unique per tenant; should two packages still
 * declare one id, the later deploy wins and a warning is logged, and each
 * package only ever removes the events it owns.
 */
#include "defs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmap.h"
#include "log.h"
#include "util.h"

struct devent {
	char *package; /* owning package */
	char *queue;   /* supplier queue */
	char *schema;  /* schema file or NULL */
	Noetl__DataType data_type;
	Noetl__RetryPolicy retry; /* effective policy */
};

struct dpkg {
	char **events; /* ids of the events it declares */
	size_t n;
};

struct dtenant {
	struct listener_map *events;   /* id -> struct devent */
	struct listener_map *packages; /* id -> struct dpkg */
	struct listener_map *secrets;  /* event id -> malloc'ed secret */
};

struct dtoken {
	char *tenant; /* owner */
	char *id;     /* public id, for revocation by id */
};

struct state {
	struct listener_map *tenants; /* id -> struct dtenant */
	struct listener_map *tokens;  /* hex sha256 -> struct dtoken */
	size_t events;                /* events over all tenants, for metrics */
};

struct listener_defs {
	pthread_rwlock_t lock;
	struct state st;   /* under lock */
	bool loaded;       /* a snapshot was applied */
	uint64_t revision; /* of the last snapshot or change */
};

/* --- freeing ------------------------------------------------------------- */

static void event_free(struct devent *e)
{
	if (e == NULL)
		return;
	free(e->package);
	free(e->queue);
	free(e->schema);
	free(e);
}

static void pkg_free(struct dpkg *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->events[i]);
	free(p->events);
	free(p);
}

static bool drop_event(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	event_free(val);
	return true;
}

static bool drop_pkg(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	pkg_free(val);
	return true;
}

static bool drop_str(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	free(val);
	return true;
}

static void tenant_free(struct dtenant *t)
{
	if (t == NULL)
		return;
	listener_map_each(t->events, drop_event, NULL);
	listener_map_each(t->packages, drop_pkg, NULL);
	listener_map_each(t->secrets, drop_str, NULL);
	listener_map_destroy(t->events);
	listener_map_destroy(t->packages);
	listener_map_destroy(t->secrets);
	free(t);
}

static void token_free(struct dtoken *t)
{
	if (t == NULL)
		return;
	free(t->tenant);
	free(t->id);
	free(t);
}

static bool drop_tenant(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	tenant_free(val);
	return true;
}

static bool drop_token(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	token_free(val);
	return true;
}

static void state_release(struct state *s)
{
	listener_map_each(s->tenants, drop_tenant, NULL);
	listener_map_each(s->tokens, drop_token, NULL);
	listener_map_destroy(s->tenants);
	listener_map_destroy(s->tokens);
	memset(s, 0, sizeof(*s));
}

static int state_init(struct state *s)
{
	memset(s, 0, sizeof(*s));
	s->tenants = listener_map_create();
	s->tokens = listener_map_create();
	if (s->tenants == NULL || s->tokens == NULL) {
		state_release(s);
		return -ENOMEM;
	}
	return 0;
}

/* --- building ------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
	return (s != NULL && s[0] != '\0') ? strdup(s) : NULL;
}

static struct dtenant *tenant_get(struct state *s, const char *id, bool create)
{
	struct dtenant *t = listener_map_get(s->tenants, id);
	if (t != NULL || !create)
		return t;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->events = listener_map_create();
	t->packages = listener_map_create();
	t->secrets = listener_map_create();
	if (t->events == NULL || t->packages == NULL || t->secrets == NULL ||
	    listener_map_put(s->tenants, id, t, NULL) != 0) {
		tenant_free(t);
		return NULL;
	}
	return t;
}

static bool retry_set(const Noetl__RetryPolicy *r)
{
	return r != NULL && (r->max_attempts != 0 || r->backoff_base_ms != 0 ||
	                     r->backoff_max_ms != 0 || r->jitter_percent != 0);
}

/* The event's own policy, else the policy of the runtime that runs it. */
static void effective_retry(const Noetl__Package *p, const Noetl__EventDef *ev,
                            Noetl__RetryPolicy *out)
{
	noetl__retry_policy__init(out);
	const Noetl__RetryPolicy *r = NULL;
	if (retry_set(ev->retry)) {
		r = ev->retry;
	} else if (ev->runtime != NULL) {
		for (size_t i = 0; i < p->n_runtimes; i++) {
			const Noetl__RuntimeDef *rt = p->runtimes[i];
			if (rt != NULL && rt->id != NULL && strcmp(rt->id, ev->runtime) == 0 &&
			    retry_set(rt->retry)) {
				r = rt->retry;
				break;
			}
		}
	}
	if (r != NULL) {
		out->max_attempts = r->max_attempts;
		out->backoff_base_ms = r->backoff_base_ms;
		out->backoff_max_ms = r->backoff_max_ms;
		out->jitter_percent = r->jitter_percent;
	}
}

/* Removes the events package id of tenant t owns, and the package. */
static void package_remove(struct state *s, struct dtenant *t, const char *id)
{
	struct dpkg *p = listener_map_remove(t->packages, id);
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		struct devent *e = listener_map_get(t->events, p->events[i]);
		if (e != NULL && strcmp(e->package, id) == 0) {
			listener_map_remove(t->events, p->events[i]);
			event_free(e);
			s->events--;
		}
	}
	pkg_free(p);
}

static int package_add(struct state *s, const Noetl__Package *p)
{
	if (p == NULL || p->tenant == NULL || p->id == NULL)
		return 0;
	struct dtenant *t = tenant_get(s, p->tenant, true);
	if (t == NULL)
		return -ENOMEM;
	package_remove(s, t, p->id);

	struct dpkg *pk = calloc(1, sizeof(*pk));
	if (pk == NULL)
		return -ENOMEM;
	pk->events = calloc(p->n_jobs + 1, sizeof(char *));
	if (pk->events == NULL || listener_map_put(t->packages, p->id, pk, NULL) != 0) {
		pkg_free(pk);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_jobs; i++) {
		const Noetl__EventDef *ev = p->jobs[i] != NULL ? p->jobs[i]->event : NULL;
		if (ev == NULL || ev->id == NULL || ev->id[0] == '\0')
			continue;
		struct devent *e = calloc(1, sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		e->package = strdup(p->id);
		e->queue = strdup(ev->supplier_queue != NULL ? ev->supplier_queue : "");
		e->schema = ev->schema != NULL ? dup_or_null(ev->schema->schema_ref) : NULL;
		e->data_type = ev->data_type;
		effective_retry(p, ev, &e->retry);
		if ((pk->events[pk->n] = strdup(ev->id)) == NULL || e->package == NULL ||
		    e->queue == NULL ||
		    (ev->schema != NULL && ev->schema->schema_ref != NULL &&
		     ev->schema->schema_ref[0] != '\0' && e->schema == NULL)) {
			event_free(e);
			return -ENOMEM;
		}
		pk->n++;
		void *old = NULL;
		if (listener_map_put(t->events, ev->id, e, &old) != 0) {
			event_free(e);
			return -ENOMEM;
		}
		if (old != NULL) {
			struct devent *o = old;
			if (strcmp(o->package, p->id) != 0)
				log_warn("tenant '%s': event '%s' of package '%s' replaces the one "
				         "of "
				         "package '%s'",
				         p->tenant, ev->id, p->id, o->package);
			event_free(o);
		} else {
			s->events++;
		}
	}
	return 0;
}

static int token_add(struct state *s, const Noetl__TokenInfo *ti)
{
	if (ti == NULL || ti->hash == NULL || ti->hash[0] == '\0' || ti->tenant == NULL)
		return 0;
	struct dtoken *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->tenant = strdup(ti->tenant);
	t->id = strdup(ti->id != NULL ? ti->id : "");
	void *old = NULL;
	if (t->tenant == NULL || t->id == NULL ||
	    listener_map_put(s->tokens, ti->hash, t, &old) != 0) {
		token_free(t);
		return -ENOMEM;
	}
	token_free(old);
	return 0;
}

struct match {
	const char *tenant; /* match this tenant ... */
	const char *id;     /* ... and this id (NULL: any) */
};

static bool drop_matching_token(const char *key, void *val, void *arg)
{
	(void)key;
	struct dtoken *t = val;
	struct match *m = arg;
	if (strcmp(t->tenant, m->tenant) != 0 || (m->id != NULL && strcmp(t->id, m->id) != 0))
		return false;
	token_free(t);
	return true;
}

static void token_remove(struct state *s, const Noetl__TokenInfo *ti)
{
	if (ti == NULL || ti->tenant == NULL)
		return;
	if (ti->hash != NULL && ti->hash[0] != '\0') {
		struct dtoken *t = listener_map_get(s->tokens, ti->hash);
		if (t != NULL && strcmp(t->tenant, ti->tenant) == 0) {
			listener_map_remove(s->tokens, ti->hash);
			token_free(t);
		}
		return;
	}
	if (ti->id == NULL || ti->id[0] == '\0')
		return;
	struct match m = {ti->tenant, ti->id};
	listener_map_each(s->tokens, drop_matching_token, &m);
}

static int secret_set(struct state *s, const Noetl__WebhookSecret *ws)
{
	if (ws == NULL || ws->tenant == NULL || ws->event == NULL)
		return 0;
	struct dtenant *t = tenant_get(s, ws->tenant, ws->secret != NULL && ws->secret[0] != '\0');
	if (t == NULL)
		return (ws->secret != NULL && ws->secret[0] != '\0') ? -ENOMEM : 0;
	if (ws->secret == NULL || ws->secret[0] == '\0') {
		free(listener_map_remove(t->secrets, ws->event));
		return 0;
	}
	char *v = strdup(ws->secret);
	void *old = NULL;
	if (v == NULL || listener_map_put(t->secrets, ws->event, v, &old) != 0) {
		free(v);
		return -ENOMEM;
	}
	free(old);
	return 0;
}

static void tenant_remove(struct state *s, const char *id)
{
	struct dtenant *t = listener_map_remove(s->tenants, id);
	if (t != NULL) {
		s->events -= listener_map_count(t->events);
		tenant_free(t);
	}
	struct match m = {id, NULL};
	listener_map_each(s->tokens, drop_matching_token, &m);
}

/* --- public -------------------------------------------------------------- */

int listener_defs_create(struct listener_defs **out)
{
	struct listener_defs *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	if (state_init(&d->st) != 0) {
		free(d);
		return -ENOMEM;
	}
	pthread_rwlock_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void listener_defs_destroy(struct listener_defs *d)
{
	if (d == NULL)
		return;
	state_release(&d->st);
	pthread_rwlock_destroy(&d->lock);
	free(d);
}

int listener_defs_load_snapshot(struct listener_defs *d, const Noetl__Snapshot *snap)
{
	struct state s;
	int rv = state_init(&s);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < snap->n_tenants && rv == 0; i++)
		if (snap->tenants[i] != NULL && snap->tenants[i]->id != NULL &&
		    tenant_get(&s, snap->tenants[i]->id, true) == NULL)
			rv = -ENOMEM;
	for (size_t i = 0; i < snap->n_packages && rv == 0; i++)
		rv = package_add(&s, snap->packages[i]);
	for (size_t i = 0; i < snap->n_tokens && rv == 0; i++)
		rv = token_add(&s, snap->tokens[i]);
	for (size_t i = 0; i < snap->n_secrets && rv == 0; i++)
		rv = secret_set(&s, snap->secrets[i]);
	if (rv != 0) {
		state_release(&s);
		return rv;
	}
	pthread_rwlock_wrlock(&d->lock);
	struct state old = d->st;
	d->st = s;
	d->loaded = true;
	d->revision = snap->revision;
	pthread_rwlock_unlock(&d->lock);
	state_release(&old);
	return 0;
}

int listener_defs_apply(struct listener_defs *d, uint64_t rev, const Noetl__DefinitionChange *c)
{
	int rv = 0;
	pthread_rwlock_wrlock(&d->lock);
	if (d->loaded && rev <= d->revision) {
		pthread_rwlock_unlock(&d->lock);
		return 0;
	}
	struct state *s = &d->st;
	const char *tenant = c->tenant != NULL ? c->tenant : "";
	switch (c->kind) {
	case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED:
		rv = package_add(s, c->package);
		break;
	case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DELETED: {
		struct dtenant *t = tenant_get(s, tenant, false);
		if (t != NULL && c->package_id != NULL)
			package_remove(s, t, c->package_id);
		break;
	}
	case NOETL__DEFINITION_CHANGE__KIND__TENANT_ADDED:
		if (tenant[0] != '\0' && tenant_get(s, tenant, true) == NULL)
			rv = -ENOMEM;
		break;
	case NOETL__DEFINITION_CHANGE__KIND__TENANT_REMOVED:
		tenant_remove(s, tenant);
		break;
	case NOETL__DEFINITION_CHANGE__KIND__TOKEN_CREATED:
		rv = token_add(s, c->token);
		break;
	case NOETL__DEFINITION_CHANGE__KIND__TOKEN_REVOKED:
		token_remove(s, c->token);
		break;
	case NOETL__DEFINITION_CHANGE__KIND__SECRET_SET:
		rv = secret_set(s, c->secret);
		break;
	default:
		log_warn("control change %llu: unknown kind %d ignored", (unsigned long long)rev,
		         (int)c->kind);
		break;
	}
	if (rv == 0)
		d->revision = rev;
	pthread_rwlock_unlock(&d->lock);
	return rv;
}

bool listener_defs_loaded(struct listener_defs *d)
{
	pthread_rwlock_rdlock(&d->lock);
	bool v = d->loaded;
	pthread_rwlock_unlock(&d->lock);
	return v;
}

uint64_t listener_defs_revision(struct listener_defs *d)
{
	pthread_rwlock_rdlock(&d->lock);
	uint64_t v = d->revision;
	pthread_rwlock_unlock(&d->lock);
	return v;
}

bool listener_defs_has_tenant(struct listener_defs *d, const char *tenant)
{
	pthread_rwlock_rdlock(&d->lock);
	bool v = listener_map_get(d->st.tenants, tenant) != NULL;
	pthread_rwlock_unlock(&d->lock);
	return v;
}

enum listener_defs_auth listener_defs_check_token(struct listener_defs *d, const char *tenant,
                                                  const char *token, size_t len)
{
	char hex[65];
	util_sha256_hex(token, len, hex);
	enum listener_defs_auth a = LISTENER_AUTH_UNKNOWN;
	pthread_rwlock_rdlock(&d->lock);
	/* The map finds the entry by the hash; comparing the stored key again
	 * in constant time keeps the final decision free of early exits. */
	struct dtoken *t = listener_map_get(d->st.tokens, hex);
	if (t != NULL) {
		size_t tl = strlen(t->tenant), ql = strlen(tenant);
		bool same = tl == ql && util_ct_equal(t->tenant, tenant, tl);
		a = same ? LISTENER_AUTH_OK : LISTENER_AUTH_OTHER_TENANT;
	}
	pthread_rwlock_unlock(&d->lock);
	return a;
}

int listener_defs_lookup_event(struct listener_defs *d, const char *tenant, const char *event,
                               struct listener_defs_event *out)
{
	int rv = -ENOENT;
	pthread_rwlock_rdlock(&d->lock);
	struct dtenant *t = listener_map_get(d->st.tenants, tenant);
	struct devent *e = t != NULL ? listener_map_get(t->events, event) : NULL;
	if (e != NULL) {
		struct listener_defs_event v;
		memset(&v, 0, sizeof(v));
		snprintf(v.package, sizeof(v.package), "%s", e->package);
		snprintf(v.queue, sizeof(v.queue), "%s", e->queue);
		snprintf(v.schema, sizeof(v.schema), "%s", e->schema != NULL ? e->schema : "");
		v.data_type = e->data_type;
		v.retry = e->retry;
		v.revision = d->revision;
		const char *sec = listener_map_get(t->secrets, event);
		rv = 0;
		if (sec != NULL && (v.secret = strdup(sec)) == NULL)
			rv = -ENOMEM;
		if (rv == 0)
			*out = v;
	}
	pthread_rwlock_unlock(&d->lock);
	return rv;
}

void listener_defs_counts(struct listener_defs *d, size_t *tenants, size_t *events, size_t *tokens)
{
	pthread_rwlock_rdlock(&d->lock);
	*tenants = listener_map_count(d->st.tenants);
	*events = d->st.events;
	*tokens = listener_map_count(d->st.tokens);
	pthread_rwlock_unlock(&d->lock);
}
