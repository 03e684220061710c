/*
 * schemas: entries live in one map per tenant (file name -> entry), so a
 * change of a file finds every entry of the tenant that uses it. Each entry
 * counts invalidations in `gen`; the compiled schema it holds is current iff
 * it was loaded at the entry's present gen. A load captures gen before it
 * calls the Repository and is discarded (and redone) if gen moved meanwhile,
 * so a change that arrives during a load is never lost.
 *
 * Requests that find an entry stale queue themselves on it (bounded by
 * max_waiters over the whole cache) and the entry on the loader's FIFO; the
 * loader completes them all with one load. Transient failures go back to
 * the waiters and, for entries someone asked for, onto a retry list with
 * exponential backoff (250 ms .. 10 s); a new request retries at once.
 */
#include "schemas.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmap.h"
#include "log.h"
#include "repository.pb-c.h"
#include "stream.h"
#include "util.h"

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 10000

struct schema_impl {
	struct listener_schema pub; /* first: what callers see */
	atomic_int refs;            /* references */
	struct jsonschema *own;     /* the compiled form */
};

struct waiter {
	struct waiter *next;
	listener_schemas_ready_fn fn;
	void *arg;
};

struct sentry {
	char *tenant;            /* owner */
	char *name;              /* root file */
	struct schema_impl *cur; /* last compiled, or NULL */
	uint64_t gen;            /* invalidations so far */
	uint64_t cur_gen;        /* gen at which cur was loaded */
	bool queued;             /* on the loader FIFO */
	bool loading;            /* the loader works on it now */
	bool wanted;             /* asked for: retry transient failures in the background */
	bool retrying;           /* on the retry list */
	int err;                 /* remembered permanent failure, or 0 */
	char *errmsg;            /* its message */
	uint64_t err_gen;        /* gen it belongs to */
	int64_t err_until;       /* remembered until (monotonic ms) */
	char **deps;             /* files loaded through "$ref" */
	size_t ndeps;
	struct waiter *whead; /* requests waiting for the next load */
	struct waiter *wtail;
	size_t nwait;
	unsigned failures;    /* transient failures in a row */
	int64_t retry_at;     /* when the retry list hands it back */
	struct sentry *qnext; /* FIFO or retry list link */
};

struct listener_schemas {
	struct listener_schemas_options o;
	char *token;
	char *stream_url;
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* loader wake-up */
	pthread_cond_t rev_cv;        /* revision advanced */
	struct listener_map *tenants; /* tenant -> struct listener_map (name -> struct sentry) */
	struct sentry *qhead, *qtail; /* loader FIFO */
	struct sentry *retry;         /* retry list (unordered) */
	size_t waiting;               /* requests waiting, over all entries */
	bool stop;
	bool subscribed;      /* sub exists */
	int64_t sub_retry_at; /* next subscription attempt (monotonic ms) */
	int sub_backoff;      /* ms between attempts, doubling to RETRY_MAX_MS */
	uint64_t revision;    /* last change applied */
	struct stream_sub *sub;
	pthread_t thread;
	struct listener_schemas_stats st;
};

/* --- compiled schemas ---------------------------------------------------- */

struct listener_schema *listener_schema_ref(struct listener_schema *s)
{
	struct schema_impl *i = (struct schema_impl *)s;
	atomic_fetch_add(&i->refs, 1);
	return s;
}

void listener_schema_unref(struct listener_schema *s)
{
	if (s == NULL)
		return;
	struct schema_impl *i = (struct schema_impl *)s;
	if (atomic_fetch_sub(&i->refs, 1) == 1) {
		jsonschema_destroy(i->own);
		free(i);
	}
}

/* --- entries --------------------------------------------------------------- */

static void free_deps(char **deps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(deps[i]);
	free(deps);
}

static void entry_free(struct sentry *e)
{
	if (e == NULL)
		return;
	listener_schema_unref(e->cur ? &e->cur->pub : NULL);
	free(e->tenant);
	free(e->name);
	free(e->errmsg);
	free_deps(e->deps, e->ndeps);
	free(e);
}

static struct sentry *entry_get(struct listener_schemas *c, const char *tenant, const char *name,
                                bool create)
{
	struct listener_map *t = listener_map_get(c->tenants, tenant);
	if (t == NULL) {
		if (!create || (t = listener_map_create()) == NULL)
			return NULL;
		if (listener_map_put(c->tenants, tenant, t, NULL) != 0) {
			listener_map_destroy(t);
			return NULL;
		}
	}
	struct sentry *e = listener_map_get(t, name);
	if (e != NULL || !create)
		return e;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->tenant = strdup(tenant);
	e->name = strdup(name);
	if (e->tenant == NULL || e->name == NULL || listener_map_put(t, name, e, NULL) != 0) {
		entry_free(e);
		return NULL;
	}
	return e;
}

static bool fresh(const struct sentry *e)
{
	return e->cur != NULL && e->cur_gen == e->gen;
}

/* Puts e on the loader FIFO (under mu). */
static void enqueue(struct listener_schemas *c, struct sentry *e)
{
	if (e->queued || e->loading)
		return;
	if (e->retrying) {
		struct sentry **pp = &c->retry;
		while (*pp != NULL && *pp != e)
			pp = &(*pp)->qnext;
		if (*pp == e)
			*pp = e->qnext;
		e->retrying = false;
	}
	e->queued = true;
	e->qnext = NULL;
	if (c->qtail != NULL)
		c->qtail->qnext = e;
	else
		c->qhead = e;
	c->qtail = e;
	pthread_cond_signal(&c->cv);
}

/* --- the Repository -------------------------------------------------------- */

/* Maps an RPC status of the Repository to this module's codes. */
static int status_code(int st)
{
	switch (st) {
	case NOETL__STATUS__NOT_FOUND:
		return -ENOENT;
	case NOETL__STATUS__INVALID_ARGUMENT:
		return -EINVAL;
	default:
		return -EAGAIN;
	}
}

/* Fetches the latest version of a file. 0 with *out (free with
 * noetl__get_file_reply__free_unpacked), or a code with *msg. */
static int fetch(struct listener_schemas *c, const char *tenant, const char *name,
                 Noetl__GetFileReply **out, char **msg)
{
	Noetl__FileRef ref = NOETL__FILE_REF__INIT;
	ref.tenant = (char *)tenant;
	ref.name = (char *)name;
	struct rpc_call_options o = {
	        .timeout_ms = c->o.call_timeout_ms, .tenant = tenant, .token = c->token};
	ProtobufCMessage *rep = NULL;
	char *err = NULL;
	int st = rpc_call(c->o.repository, &noetl__repository__descriptor, "GetFile", &ref.base, &o,
	                  &rep, &err);
	if (st != NOETL__STATUS__OK) {
		int code = status_code(st);
		if (asprintf(msg, "schema file '%s': %s%s%s", name,
		             code == -ENOENT ? "does not exist in the repository"
		                             : "the repository cannot be reached",
		             err != NULL ? ": " : "", err != NULL ? err : "") < 0)
			*msg = NULL;
		free(err);
		return code;
	}
	Noetl__GetFileReply *r = (Noetl__GetFileReply *)rep;
	if (r->info != NULL && r->info->type != NOETL__FILE_TYPE__FILE_JSON_SCHEMA) {
		if (asprintf(msg, "file '%s' is not a json schema; upload it as one", name) < 0)
			*msg = NULL;
		protobuf_c_message_free_unpacked(rep, NULL);
		return -EINVAL;
	}
	*out = r;
	return 0;
}

struct loadctx {
	struct listener_schemas *c;
	const char *tenant;
	char **deps; /* names loaded through the resolver */
	size_t ndeps;
	bool transient; /* a dependency failed for a reason that may pass */
};

static int resolve(void *arg, const char *uri, json_t **out, char **err)
{
	struct loadctx *lc = arg;
	if (!util_valid_name(uri, 128)) {
		if (asprintf(err,
		             "\"$ref\" to '%s': only schema files of the same tenant can be "
		             "referenced, by file name (e.g. \"address.json#/definitions/street\")",
		             uri) < 0)
			*err = NULL;
		return -ENOENT;
	}
	Noetl__GetFileReply *r = NULL;
	char *msg = NULL;
	int rv = fetch(lc->c, lc->tenant, uri, &r, &msg);
	if (rv != 0) {
		if (rv == -EAGAIN)
			lc->transient = true;
		*err = msg;
		return rv;
	}
	char **nd = realloc(lc->deps, (lc->ndeps + 1) * sizeof(char *));
	if (nd == NULL || (nd[lc->ndeps] = strdup(uri)) == NULL) {
		if (nd != NULL)
			lc->deps = nd;
		noetl__get_file_reply__free_unpacked(r, NULL);
		return -ENOMEM;
	}
	lc->deps = nd;
	lc->ndeps++;
	json_t *doc = NULL;
	char *perr = NULL;
	rv = jsonschema_parse((const char *)r->content.data, r->content.len, &doc, &perr);
	noetl__get_file_reply__free_unpacked(r, NULL);
	if (rv != 0) {
		if (asprintf(err, "schema file '%s': %s", uri, perr != NULL ? perr : "not json") <
		    0)
			*err = NULL;
		free(perr);
		return rv;
	}
	*out = doc;
	return 0;
}

/* Loads and compiles tenant/name. 0 with *out, deps; or a code and *msg. */
static int load(struct listener_schemas *c, const char *tenant, const char *name,
                struct schema_impl **out, char ***deps, size_t *ndeps, char **msg)
{
	Noetl__GetFileReply *r = NULL;
	int rv = fetch(c, tenant, name, &r, msg);
	if (rv != 0)
		return rv;
	struct loadctx lc = {.c = c, .tenant = tenant};
	struct jsonschema_options jo = {.resolver = resolve, .resolver_arg = &lc};
	struct jsonschema *js = NULL;
	char *err = NULL;
	rv = jsonschema_compile((const char *)r->content.data, r->content.len, &jo, &js, &err);
	uint32_t version = r->info != NULL ? r->info->version : 0;
	noetl__get_file_reply__free_unpacked(r, NULL);
	if (rv != 0) {
		if (asprintf(msg, "schema file '%s' does not compile: %s", name,
		             err != NULL ? err : "out of memory") < 0)
			*msg = NULL;
		free(err);
		free_deps(lc.deps, lc.ndeps);
		return lc.transient || rv == -ENOMEM ? -EAGAIN : -EINVAL;
	}
	struct schema_impl *si = calloc(1, sizeof(*si));
	if (si == NULL) {
		jsonschema_destroy(js);
		free_deps(lc.deps, lc.ndeps);
		*msg = NULL;
		return -EAGAIN;
	}
	si->own = js;
	si->pub.js = js;
	si->pub.version = version;
	atomic_init(&si->refs, 1);
	*out = si;
	*deps = lc.deps;
	*ndeps = lc.ndeps;
	return 0;
}

/* --- the stream ------------------------------------------------------------ */

static int on_change(void *arg, const Noetl__Change *chg)
{
	struct listener_schemas *c = arg;
	Noetl__FileChange *fc = noetl__file_change__unpack(NULL, chg->body.len, chg->body.data);
	if (fc == NULL) {
		log_warn("listener: repository change %llu does not decode; skipped",
		         (unsigned long long)chg->revision);
		pthread_mutex_lock(&c->mu);
		c->revision = chg->revision;
		pthread_cond_broadcast(&c->rev_cv);
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	int rv = listener_schemas_apply(c, chg->revision, fc);
	noetl__file_change__free_unpacked(fc, NULL);
	return rv;
}

/* Finds the Repository's head and subscribes from there. 0 or -EAGAIN. */
static int subscribe(struct listener_schemas *c)
{
	Noetl__Empty in = NOETL__EMPTY__INIT;
	struct rpc_call_options o = {.timeout_ms = c->o.call_timeout_ms, .token = c->token};
	ProtobufCMessage *rep = NULL;
	char *err = NULL;
	int st = rpc_call(c->o.repository, &noetl__repository__descriptor, "GetHealth", &in.base,
	                  &o, &rep, &err);
	if (st != NOETL__STATUS__OK) {
		log_warn(
		        "listener: repository '%s' cannot be reached (%s); schemas load when it is "
		        "back",
		        rpc_client_url(c->o.repository), err != NULL ? err : rpc_status_name(st));
		free(err);
		return -EAGAIN;
	}
	uint64_t head = ((Noetl__Health *)rep)->revision;
	protobuf_c_message_free_unpacked(rep, NULL);
	pthread_mutex_lock(&c->mu);
	c->revision = head;
	pthread_mutex_unlock(&c->mu);
	struct stream_sub_options so = {
	        .since = head,
	        .token = c->token,
	        .tls = c->o.tls,
	        .name = "listener: repository stream",
	};
	struct stream_sub *sub = NULL;
	int rv = stream_sub_create(c->o.repository, &noetl__repository__descriptor, c->stream_url,
	                           &so, on_change, c, &sub);
	if (rv != 0)
		return -EAGAIN;
	pthread_mutex_lock(&c->mu);
	c->sub = sub;
	c->subscribed = true;
	pthread_cond_broadcast(&c->rev_cv);
	pthread_mutex_unlock(&c->mu);
	log_info("listener: following repository changes from revision %llu",
	         (unsigned long long)head);
	return 0;
}

/* --- the loader ------------------------------------------------------------ */

/* Detaches the waiters of e (under mu). */
static struct waiter *take_waiters(struct listener_schemas *c, struct sentry *e)
{
	struct waiter *w = e->whead;
	c->waiting -= e->nwait;
	e->whead = e->wtail = NULL;
	e->nwait = 0;
	return w;
}

/* Calls and frees a waiter list (without mu). */
static void complete(struct waiter *w, struct schema_impl *s, int status, const char *msg)
{
	while (w != NULL) {
		struct waiter *next = w->next;
		w->fn(w->arg, s != NULL ? listener_schema_ref(&s->pub) : NULL, status, msg);
		free(w);
		w = next;
	}
}

static void schedule_retry(struct listener_schemas *c, struct sentry *e)
{
	if (e->retrying || e->queued)
		return;
	int64_t delay = RETRY_MIN_MS;
	for (unsigned i = 1; i < e->failures && delay < RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	e->retry_at = util_mono_ms() + delay;
	e->retrying = true;
	e->qnext = c->retry;
	c->retry = e;
}

/* Moves due retries to the FIFO; returns ms until the next one (-1: none). */
static int64_t due_retries(struct listener_schemas *c)
{
	int64_t now = util_mono_ms(), next = -1;
	struct sentry **pp = &c->retry;
	while (*pp != NULL) {
		struct sentry *e = *pp;
		if (e->retry_at <= now) {
			*pp = e->qnext;
			e->retrying = false;
			enqueue(c, e);
		} else {
			if (next < 0 || e->retry_at - now < next)
				next = e->retry_at - now;
			pp = &e->qnext;
		}
	}
	return next;
}

static void wait_for_work(struct listener_schemas *c)
{
	for (;;) {
		if (c->stop)
			return;
		int64_t next = due_retries(c);
		if (c->qhead != NULL)
			return;
		if (!c->subscribed) {
			int64_t left = c->sub_retry_at - util_mono_ms();
			if (left <= 0)
				return;
			if (next < 0 || left < next)
				next = left;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ms = next >= 0 ? next : 1000;
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
}

/* Fails every queued entry with a transient error (the Repository is not
 * reachable, so loading is pointless until it is). Under mu; unlocks and
 * relocks around the callbacks. */
static void fail_queued(struct listener_schemas *c, const char *why)
{
	struct waiter *all = NULL;
	while (c->qhead != NULL) {
		struct sentry *e = c->qhead;
		c->qhead = e->qnext;
		e->queued = false;
		e->failures++;
		struct waiter *w = take_waiters(c, e);
		if (w != NULL) {
			struct waiter *t = w;
			while (t->next != NULL)
				t = t->next;
			t->next = all;
			all = w;
		}
		if (e->wanted)
			schedule_retry(c, e);
	}
	c->qtail = NULL;
	pthread_mutex_unlock(&c->mu);
	complete(all, NULL, -EAGAIN, why);
	pthread_mutex_lock(&c->mu);
}

static void load_one(struct listener_schemas *c, struct sentry *e)
{
	uint64_t gen = e->gen;
	e->loading = true;
	char *tenant = strdup(e->tenant), *name = strdup(e->name);
	pthread_mutex_unlock(&c->mu);

	struct schema_impl *s = NULL;
	char **deps = NULL, *msg = NULL;
	size_t ndeps = 0;
	int rv = (tenant != NULL && name != NULL) ? load(c, tenant, name, &s, &deps, &ndeps, &msg)
	                                          : -EAGAIN;
	free(tenant);
	free(name);

	pthread_mutex_lock(&c->mu);
	e->loading = false;
	if (e->gen != gen || c->stop) {
		/* Changed while we loaded: what we have may be old. Again. */
		listener_schema_unref(s != NULL ? &s->pub : NULL);
		free_deps(deps, ndeps);
		free(msg);
		if (!c->stop)
			enqueue(c, e);
		return;
	}
	struct waiter *w = take_waiters(c, e);
	if (rv == 0) {
		struct schema_impl *old = e->cur;
		e->cur = s;
		e->cur_gen = gen;
		free_deps(e->deps, e->ndeps);
		e->deps = deps;
		e->ndeps = ndeps;
		e->failures = 0;
		e->err = 0;
		free(e->errmsg);
		e->errmsg = NULL;
		c->st.loads++;
		pthread_mutex_unlock(&c->mu);
		listener_schema_unref(old != NULL ? &old->pub : NULL);
		complete(w, s, 0, NULL);
		pthread_mutex_lock(&c->mu);
		return;
	}
	c->st.load_errors++;
	if (rv == -EAGAIN) {
		e->failures++;
		if (e->wanted)
			schedule_retry(c, e);
	} else {
		e->err = rv;
		free(e->errmsg);
		e->errmsg = msg != NULL ? strdup(msg) : NULL;
		e->err_gen = gen;
		e->err_until = util_mono_ms() + c->o.error_ttl_ms;
	}
	log_warn("listener: tenant '%s': %s", e->tenant, msg != NULL ? msg : "out of memory");
	pthread_mutex_unlock(&c->mu);
	complete(w, NULL, rv, msg != NULL ? msg : "out of memory");
	free(msg);
	pthread_mutex_lock(&c->mu);
}

static void *loader(void *arg)
{
	struct listener_schemas *c = arg;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		wait_for_work(c);
		if (c->stop)
			break;
		if (!c->subscribed) {
			pthread_mutex_unlock(&c->mu);
			int rv = subscribe(c);
			pthread_mutex_lock(&c->mu);
			if (rv != 0) {
				c->sub_backoff =
				        c->sub_backoff == 0 ? RETRY_MIN_MS : c->sub_backoff * 2;
				if (c->sub_backoff > RETRY_MAX_MS)
					c->sub_backoff = RETRY_MAX_MS;
				c->sub_retry_at = util_mono_ms() + c->sub_backoff;
				fail_queued(c, "the repository cannot be reached; retry later");
				continue;
			}
		}
		struct sentry *e = c->qhead;
		if (e == NULL)
			continue;
		c->qhead = e->qnext;
		if (c->qhead == NULL)
			c->qtail = NULL;
		e->queued = false;
		load_one(c, e);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* --- public ---------------------------------------------------------------- */

int listener_schemas_create(const struct listener_schemas_options *opt,
                            struct listener_schemas **out)
{
	struct listener_schemas *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->o = *opt;
	if (c->o.call_timeout_ms <= 0)
		c->o.call_timeout_ms = 3000;
	if (c->o.max_waiters == 0)
		c->o.max_waiters = 4096;
	if (c->o.error_ttl_ms <= 0)
		c->o.error_ttl_ms = 2000;
	c->token = opt->token != NULL ? strdup(opt->token) : NULL;
	c->stream_url = strdup(opt->stream_url != NULL ? opt->stream_url : "");
	c->tenants = listener_map_create();
	if (c->stream_url == NULL || c->tenants == NULL ||
	    (opt->token != NULL && c->token == NULL)) {
		free(c->token);
		free(c->stream_url);
		listener_map_destroy(c->tenants);
		free(c);
		return -ENOMEM;
	}
	c->o.token = NULL;
	c->o.stream_url = NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->rev_cv, NULL);
	if (pthread_create(&c->thread, NULL, loader, c) != 0) {
		pthread_cond_destroy(&c->rev_cv);
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c->token);
		free(c->stream_url);
		listener_map_destroy(c->tenants);
		free(c);
		return -EAGAIN;
	}
	/* Subscribe (and so find the head) right away, not at the first load. */
	pthread_mutex_lock(&c->mu);
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	*out = c;
	return 0;
}

static bool drop_entry(const char *key, void *val, void *arg)
{
	(void)key;
	struct waiter **all = arg;
	struct sentry *e = val;
	struct waiter *w = e->whead;
	if (w != NULL) {
		e->wtail->next = *all;
		*all = w;
	}
	entry_free(e);
	return true;
}

static bool drop_tenant(const char *key, void *val, void *arg)
{
	(void)key;
	listener_map_each(val, drop_entry, arg);
	listener_map_destroy(val);
	return true;
}

void listener_schemas_destroy(struct listener_schemas *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	/* The stream calls listener_schemas_apply: stop it before freeing entries. */
	stream_sub_destroy(c->sub);
	struct waiter *all = NULL;
	listener_map_each(c->tenants, drop_tenant, &all);
	listener_map_destroy(c->tenants);
	complete(all, NULL, -ECANCELED, "the listener is shutting down");
	pthread_cond_destroy(&c->rev_cv);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->token);
	free(c->stream_url);
	free(c);
}

int listener_schemas_get(struct listener_schemas *c, const char *tenant, const char *name,
                         struct listener_schema **out, char **msg, listener_schemas_ready_fn fn,
                         void *arg)
{
	pthread_mutex_lock(&c->mu);
	struct sentry *e = entry_get(c, tenant, name, true);
	if (e == NULL) {
		pthread_mutex_unlock(&c->mu);
		return -EAGAIN;
	}
	e->wanted = true;
	if (fresh(e)) {
		*out = listener_schema_ref(&e->cur->pub);
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	if (e->err != 0 && e->err_gen == e->gen && util_mono_ms() < e->err_until) {
		int rv = e->err;
		if (msg != NULL)
			*msg = e->errmsg != NULL ? strdup(e->errmsg) : NULL;
		pthread_mutex_unlock(&c->mu);
		return rv;
	}
	struct waiter *w = c->waiting < c->o.max_waiters ? malloc(sizeof(*w)) : NULL;
	if (w == NULL) {
		pthread_mutex_unlock(&c->mu);
		return -EAGAIN;
	}
	w->fn = fn;
	w->arg = arg;
	w->next = NULL;
	if (e->wtail != NULL)
		e->wtail->next = w;
	else
		e->whead = w;
	e->wtail = w;
	e->nwait++;
	c->waiting++;
	enqueue(c, e);
	pthread_mutex_unlock(&c->mu);
	return -EINPROGRESS;
}

void listener_schemas_prefetch(struct listener_schemas *c, const char *tenant, const char *name)
{
	pthread_mutex_lock(&c->mu);
	struct sentry *e = entry_get(c, tenant, name, true);
	if (e != NULL) {
		e->wanted = true;
		if (!fresh(e))
			enqueue(c, e);
	}
	pthread_mutex_unlock(&c->mu);
}

struct forget {
	struct listener_schemas *c;
	struct sentry *dropped; /* freed after the walk, outside the map */
};

static bool forget_one(const char *key, void *val, void *arg)
{
	(void)key;
	struct forget *f = arg;
	struct sentry *e = val;
	if (e->queued || e->loading || e->whead != NULL)
		return false;
	if (e->retrying) {
		struct sentry **pp = &f->c->retry;
		while (*pp != NULL && *pp != e)
			pp = &(*pp)->qnext;
		if (*pp == e)
			*pp = e->qnext;
	}
	e->qnext = f->dropped;
	f->dropped = e;
	return true;
}

void listener_schemas_forget_tenant(struct listener_schemas *c, const char *tenant)
{
	pthread_mutex_lock(&c->mu);
	struct listener_map *t = listener_map_get(c->tenants, tenant);
	struct forget f = {c, NULL};
	listener_map_each(t, forget_one, &f);
	if (t != NULL && listener_map_count(t) == 0) {
		listener_map_remove(c->tenants, tenant);
		listener_map_destroy(t);
	}
	pthread_mutex_unlock(&c->mu);
	while (f.dropped != NULL) {
		struct sentry *next = f.dropped->qnext;
		entry_free(f.dropped);
		f.dropped = next;
	}
}

struct invalidate {
	struct listener_schemas *c;
	const char *name;
};

static bool invalidate_one(const char *key, void *val, void *arg)
{
	(void)key;
	struct invalidate *iv = arg;
	struct sentry *e = val;
	bool uses = strcmp(e->name, iv->name) == 0;
	for (size_t i = 0; i < e->ndeps && !uses; i++)
		uses = strcmp(e->deps[i], iv->name) == 0;
	if (!uses)
		return false;
	e->gen++;
	e->err = 0;
	e->failures = 0;
	iv->c->st.invalidations++;
	/* Reload at once what is in use, so the next request need not wait. */
	if (e->cur != NULL || e->wanted || e->whead != NULL)
		enqueue(iv->c, e);
	return false;
}

int listener_schemas_apply(struct listener_schemas *c, uint64_t revision,
                           const Noetl__FileChange *fc)
{
	pthread_mutex_lock(&c->mu);
	if (fc->info != NULL && fc->info->tenant != NULL && fc->info->name != NULL) {
		struct listener_map *t = listener_map_get(c->tenants, fc->info->tenant);
		struct invalidate iv = {c, fc->info->name};
		listener_map_each(t, invalidate_one, &iv);
	}
	if (revision > c->revision)
		c->revision = revision;
	pthread_cond_broadcast(&c->rev_cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

bool listener_schemas_subscribed(struct listener_schemas *c)
{
	pthread_mutex_lock(&c->mu);
	bool v = c->subscribed;
	pthread_mutex_unlock(&c->mu);
	return v;
}

uint64_t listener_schemas_revision(struct listener_schemas *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t v = c->revision;
	pthread_mutex_unlock(&c->mu);
	return v;
}

bool listener_schemas_wait_revision(struct listener_schemas *c, uint64_t rev, int timeout_ms)
{
	int64_t end = util_mono_ms() + timeout_ms;
	pthread_mutex_lock(&c->mu);
	while (!(c->subscribed && c->revision >= rev)) {
		int64_t left = end - util_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ms = left < 100 ? left : 100;
		ts.tv_nsec += ms * 1000000;
		while (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->rev_cv, &c->mu, &ts);
	}
	bool ok = c->subscribed && c->revision >= rev;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

static bool count_entries(const char *key, void *val, void *arg)
{
	(void)key;
	*(size_t *)arg += listener_map_count(val);
	return false;
}

void listener_schemas_stats(struct listener_schemas *c, struct listener_schemas_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	out->entries = 0;
	listener_map_each(c->tenants, count_entries, &out->entries);
	out->waiting = c->waiting;
	pthread_mutex_unlock(&c->mu);
}
