#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defs.h"
#include "util.h"

/* A package of tenant with one job per event id; event i goes to queue
 * "q-<pkg>" and, if schema is set, uses it. */
struct pkgbuf {
	Noetl__Package p;
	Noetl__JobDef jobs[4];
	Noetl__JobDef *jobp[4];
	Noetl__EventDef ev[4];
	Noetl__SchemaDef sd[4];
	Noetl__RuntimeDef rt;
	Noetl__RuntimeDef *rtp[1];
	Noetl__RetryPolicy rtretry;
	Noetl__RetryPolicy evretry;
	char queue[64];
};

static void make_pkg(struct pkgbuf *b, const char *tenant, const char *id, const char **events,
                     size_t n, const char *schema)
{
	memset(b, 0, sizeof(*b));
	noetl__package__init(&b->p);
	b->p.tenant = (char *)tenant;
	b->p.id = (char *)id;
	snprintf(b->queue, sizeof(b->queue), "q-%s", id);
	noetl__runtime_def__init(&b->rt);
	b->rt.id = "rt";
	noetl__retry_policy__init(&b->rtretry);
	b->rtretry.max_attempts = 7;
	b->rt.retry = &b->rtretry;
	b->rtp[0] = &b->rt;
	b->p.runtimes = b->rtp;
	b->p.n_runtimes = 1;
	for (size_t i = 0; i < n; i++) {
		noetl__job_def__init(&b->jobs[i]);
		noetl__event_def__init(&b->ev[i]);
		b->ev[i].id = (char *)events[i];
		b->ev[i].supplier_queue = b->queue;
		b->ev[i].runtime = "rt";
		if (schema != NULL) {
			noetl__schema_def__init(&b->sd[i]);
			b->sd[i].schema_ref = (char *)schema;
			b->ev[i].schema = &b->sd[i];
		}
		b->jobs[i].event = &b->ev[i];
		b->jobp[i] = &b->jobs[i];
	}
	b->p.jobs = b->jobp;
	b->p.n_jobs = n;
}

static void token_info(Noetl__TokenInfo *t, const char *tenant, const char *id, const char *secret,
                       char hash[65])
{
	noetl__token_info__init(t);
	util_sha256_hex(secret, strlen(secret), hash);
	t->tenant = (char *)tenant;
	t->id = (char *)id;
	t->hash = hash;
}

static struct listener_defs *d;
static struct pkgbuf pa, pb;
static char ha[65], hb[65];

/* Tenants acme and beta; acme has package p1 (events greet, bye, schema
 * person.json) and a token "secret-a"; beta has p2 (event greet) and token
 * "secret-b"; acme's greet has webhook secret "whsec". */
static void setup(void)
{
	cr_assert_eq(listener_defs_create(&d), 0);
	Noetl__Snapshot s = NOETL__SNAPSHOT__INIT;
	Noetl__Tenant ta = NOETL__TENANT__INIT, tb = NOETL__TENANT__INIT;
	ta.id = "acme";
	tb.id = "beta";
	Noetl__Tenant *tenants[] = {&ta, &tb};
	const char *ea[] = {"greet", "bye"}, *eb[] = {"greet"};
	make_pkg(&pa, "acme", "p1", ea, 2, "person.json");
	make_pkg(&pb, "beta", "p2", eb, 1, NULL);
	Noetl__Package *pkgs[] = {&pa.p, &pb.p};
	Noetl__TokenInfo tka, tkb;
	token_info(&tka, "acme", "t1", "secret-a", ha);
	token_info(&tkb, "beta", "t2", "secret-b", hb);
	Noetl__TokenInfo *toks[] = {&tka, &tkb};
	Noetl__WebhookSecret ws = NOETL__WEBHOOK_SECRET__INIT;
	ws.tenant = "acme";
	ws.event = "greet";
	ws.secret = "whsec";
	Noetl__WebhookSecret *secs[] = {&ws};
	s.revision = 10;
	s.tenants = tenants;
	s.n_tenants = 2;
	s.packages = pkgs;
	s.n_packages = 2;
	s.tokens = toks;
	s.n_tokens = 2;
	s.secrets = secs;
	s.n_secrets = 1;
	cr_assert_eq(listener_defs_load_snapshot(d, &s), 0);
}

static void teardown(void)
{
	listener_defs_destroy(d);
}

TestSuite(defs, .init = setup, .fini = teardown);

Test(defs, a_snapshot_gives_tenants_events_and_the_revision)
{
	cr_assert(listener_defs_loaded(d));
	cr_assert_eq(listener_defs_revision(d), 10);
	cr_assert(listener_defs_has_tenant(d, "acme"));
	cr_assert(!listener_defs_has_tenant(d, "gamma"));
	struct listener_defs_event ev;
	cr_assert_eq(listener_defs_lookup_event(d, "acme", "greet", &ev), 0);
	cr_assert_str_eq(ev.package, "p1");
	cr_assert_str_eq(ev.queue, "q-p1");
	cr_assert_str_eq(ev.schema, "person.json");
	cr_assert_str_eq(ev.secret, "whsec");
	free(ev.secret);
	cr_assert_eq(listener_defs_lookup_event(d, "acme", "bye", &ev), 0);
	cr_assert_null(ev.secret);
	cr_assert_eq(listener_defs_lookup_event(d, "acme", "nope", &ev), -ENOENT);
	cr_assert_eq(listener_defs_lookup_event(d, "gamma", "greet", &ev), -ENOENT);
	size_t t, e, k;
	listener_defs_counts(d, &t, &e, &k);
	cr_assert_eq(t, 2);
	cr_assert_eq(e, 3);
	cr_assert_eq(k, 2);
}

Test(defs, an_event_without_its_own_retry_policy_takes_its_runtimes)
{
	struct listener_defs_event ev;
	cr_assert_eq(listener_defs_lookup_event(d, "beta", "greet", &ev), 0);
	cr_assert_eq(ev.retry.max_attempts, 7);
	cr_assert_str_eq(ev.schema, "");
}

Test(defs, a_token_works_for_its_own_tenant_only)
{
	cr_assert_eq(listener_defs_check_token(d, "acme", "secret-a", 8), LISTENER_AUTH_OK);
	cr_assert_eq(listener_defs_check_token(d, "beta", "secret-a", 8),
	             LISTENER_AUTH_OTHER_TENANT);
	cr_assert_eq(listener_defs_check_token(d, "acme", "secret-b", 8),
	             LISTENER_AUTH_OTHER_TENANT);
	cr_assert_eq(listener_defs_check_token(d, "acme", "secret-x", 8), LISTENER_AUTH_UNKNOWN);
	cr_assert_eq(listener_defs_check_token(d, "acme", "secret-", 7), LISTENER_AUTH_UNKNOWN);
}

static void change(uint64_t rev, Noetl__DefinitionChange *c)
{
	cr_assert_eq(listener_defs_apply(d, rev, c), 0);
}

Test(defs, a_deleted_package_takes_its_events_with_it)
{
	Noetl__DefinitionChange c = NOETL__DEFINITION_CHANGE__INIT;
	c.kind = NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DELETED;
	c.tenant = "acme";
	c.package_id = "p1";
	change(11, &c);
	struct listener_defs_event ev;
	cr_assert_eq(listener_defs_lookup_event(d, "acme", "greet", &ev), -ENOENT);
	cr_assert(listener_defs_has_tenant(d, "acme"));
	cr_assert_eq(listener_defs_revision(d), 11);
}

Test(defs, a_redeployed_package_replaces_its_events)
{
	struct pkgbuf nb;
	const char *ev2[] = {"hello"};
	make_pkg(&nb, "acme", "p1", ev2, 1, "other.json");
	Noetl__DefinitionChange c = NOETL__DEFINITION_CHANGE__INIT;
	c.kind = NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED;
	c.tenant = "acme";
	c.package = &nb.p;
	change(11, &c);
	struct listener_defs_event ev;
	cr_assert_eq(listener_defs_lookup_event(d, "acme", "greet", &ev), -ENOENT);
	cr_assert_eq(listener_defs_lookup_event(d, "acme", "hello", &ev), 0);
	cr_assert_str_eq(ev.schema, "other.json");
	free(ev.secret);
}

Test(defs, changes_at_or_below_the_revision_are_ignored)
{
	Noetl__DefinitionChange c = NOETL__DEFINITION_CHANGE__INIT;
	c.kind = NOETL__DEFINITION_CHANGE__KIND__TENANT_REMOVED;
	c.tenant = "acme";
	change(10, &c);
	cr_assert(listener_defs_has_tenant(d, "acme"));
	change(12, &c);
	cr_assert(!listener_defs_has_tenant(d, "acme"));
	/* the tenant's tokens went with it */
	cr_assert_eq(listener_defs_check_token(d, "acme", "secret-a", 8), LISTENER_AUTH_UNKNOWN);
	cr_assert_eq(listener_defs_check_token(d, "beta", "secret-b", 8), LISTENER_AUTH_OK);
}

Test(defs, a_revoked_token_stops_working_at_once)
{
	Noetl__DefinitionChange c = NOETL__DEFINITION_CHANGE__INIT;
	Noetl__TokenInfo t = NOETL__TOKEN_INFO__INIT;
	t.tenant = "acme";
	t.id = "t1"; /* revocation by id, without the hash */
	c.kind = NOETL__DEFINITION_CHANGE__KIND__TOKEN_REVOKED;
	c.tenant = "acme";
	c.token = &t;
	change(11, &c);
	cr_assert_eq(listener_defs_check_token(d, "acme", "secret-a", 8), LISTENER_AUTH_UNKNOWN);
	cr_assert_eq(listener_defs_check_token(d, "beta", "secret-b", 8), LISTENER_AUTH_OK);
}

Test(defs, a_created_token_works_and_a_cleared_secret_is_gone)
{
	Noetl__DefinitionChange c = NOETL__DEFINITION_CHANGE__INIT;
	Noetl__TokenInfo t;
	char h[65];
	token_info(&t, "acme", "t3", "fresh", h);
	c.kind = NOETL__DEFINITION_CHANGE__KIND__TOKEN_CREATED;
	c.tenant = "acme";
	c.token = &t;
	change(11, &c);
	cr_assert_eq(listener_defs_check_token(d, "acme", "fresh", 5), LISTENER_AUTH_OK);

	Noetl__DefinitionChange s = NOETL__DEFINITION_CHANGE__INIT;
	Noetl__WebhookSecret ws = NOETL__WEBHOOK_SECRET__INIT;
	ws.tenant = "acme";
	ws.event = "greet";
	ws.secret = "";
	s.kind = NOETL__DEFINITION_CHANGE__KIND__SECRET_SET;
	s.tenant = "acme";
	s.secret = &ws;
	change(12, &s);
	struct listener_defs_event ev;
	cr_assert_eq(listener_defs_lookup_event(d, "acme", "greet", &ev), 0);
	cr_assert_null(ev.secret);
}

Test(defs, a_new_snapshot_replaces_everything)
{
	Noetl__Snapshot s = NOETL__SNAPSHOT__INIT;
	Noetl__Tenant tg = NOETL__TENANT__INIT;
	tg.id = "gamma";
	Noetl__Tenant *tenants[] = {&tg};
	s.revision = 50;
	s.tenants = tenants;
	s.n_tenants = 1;
	cr_assert_eq(listener_defs_load_snapshot(d, &s), 0);
	cr_assert(!listener_defs_has_tenant(d, "acme"));
	cr_assert(listener_defs_has_tenant(d, "gamma"));
	cr_assert_eq(listener_defs_check_token(d, "acme", "secret-a", 8), LISTENER_AUTH_UNKNOWN);
	cr_assert_eq(listener_defs_revision(d), 50);
}
