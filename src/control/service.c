/*
 * control service: the noetl.Control handlers for tenants, tokens, webhook
 * secrets, the snapshot, the change stream and health, and the wiring of
 * the service (control_create). Package handlers are in package.c, the cron
 * scheduler in scheduler.c.
 *
 * Tokens: the secret is 32 random bytes in base64url (43 characters),
 * returned once by CreateToken; Control stores only its SHA-256 (hex), so a
 * stolen store or snapshot yields no usable credential. Checkers hash what
 * a client presents and compare hashes in constant time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "jobdef.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define DESCRIPTION_MAX   256
#define SECRET_MAX        1024
#define TOKEN_BYTES       32
#define CHANGES_MAX_BYTES (4u << 20) /* a Changes page, well under the RPC limit */

static struct control *self(Noetl__Control_Service *svc)
{
	return (struct control *)svc;
}

bool control_check_tenant(void *call, const char *tenant)
{
	if (util_valid_name(tenant, JOBDEF_TENANT_MAX))
		return true;
	if (tenant == NULL || tenant[0] == '\0')
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "a tenant id is required");
	else
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "tenant '%.100s' is not a valid tenant id: use 1-%d letters, digits, '_', "
		         "'-' or '.', not starting with '.'",
		         tenant, JOBDEF_TENANT_MAX);
	return false;
}

bool control_check_id(void *call, const char *what, const char *id)
{
	if (util_valid_name(id, JOBDEF_ID_MAX))
		return true;
	if (id == NULL || id[0] == '\0')
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "a %s is required", what);
	else
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%s '%.150s' is not valid: use 1-%d letters, digits, '_', '-' or '.', "
		         "not starting with '.'",
		         what, id, JOBDEF_ID_MAX);
	return false;
}

void control_fail_store(void *call, int rv, const char *what)
{
	rpc_fail(call, NOETL__STATUS__INTERNAL, "%s failed in Control's store (%s); see its log",
	         what, strerror(-rv));
}

void control_free_messages(void *arr, size_t n)
{
	ProtobufCMessage **m = arr;
	for (size_t i = 0; i < n; i++)
		if (m[i] != NULL)
			protobuf_c_message_free_unpacked(m[i], NULL);
	free(m);
}

static void fail_no_tenant(void *call, const char *tenant)
{
	rpc_fail(call, NOETL__STATUS__NOT_FOUND,
	         "tenant '%s' does not exist; add it with `noetlctl tenant add %s`", tenant,
	         tenant);
}

/* --- tenants --- */

static void h_add_tenant(Noetl__Control_Service *svc, const Noetl__AddTenantRequest *in,
                         Noetl__Tenant_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->id)) {
		done(NULL, call);
		return;
	}
	Noetl__Tenant *t;
	int rv = control_store_add_tenant(c->store, in->id, control_now(c), &t);
	if (rv == -EEXIST)
		rpc_fail(call, NOETL__STATUS__ALREADY_EXISTS, "tenant '%s' exists already", in->id);
	else if (rv != 0)
		control_fail_store(call, rv, "adding the tenant");
	if (rv != 0) {
		done(NULL, call);
		return;
	}
	log_info("tenant %s added", in->id);
	done(t, call);
	protobuf_c_message_free_unpacked(&t->base, NULL);
}

static void h_remove_tenant(Noetl__Control_Service *svc, const Noetl__RemoveTenantRequest *in,
                            Noetl__Empty_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->id)) {
		done(NULL, call);
		return;
	}
	char *why = NULL;
	/* Under the packages mutex: a deploy in flight for this tenant either
	 * finishes first (and the tenant is not empty) or sees it gone. */
	pthread_mutex_lock(&c->packages);
	int rv = control_store_remove_tenant(c->store, in->id, control_now(c), &why);
	pthread_mutex_unlock(&c->packages);
	if (rv == -ESRCH)
		fail_no_tenant(call, in->id);
	else if (rv == -ENOTEMPTY)
		rpc_fail(call, NOETL__STATUS__FAILED_PRECONDITION, "%s",
		         why != NULL ? why : "the tenant still has packages; delete them first");
	else if (rv != 0)
		control_fail_store(call, rv, "removing the tenant");
	free(why);
	if (rv != 0) {
		done(NULL, call);
		return;
	}
	log_info("tenant %s removed", in->id);
	Noetl__Empty e = NOETL__EMPTY__INIT;
	done(&e, call);
}

static void h_list_tenants(Noetl__Control_Service *svc, const Noetl__Empty *in,
                           Noetl__ListTenantsReply_Closure done, void *call)
{
	(void)in;
	struct control *c = self(svc);
	Noetl__Tenant **arr;
	size_t n;
	uint64_t rev;
	int rv = control_store_list_tenants(c->store, &arr, &n, &rev);
	if (rv != 0) {
		control_fail_store(call, rv, "listing tenants");
		done(NULL, call);
		return;
	}
	Noetl__ListTenantsReply rep = NOETL__LIST_TENANTS_REPLY__INIT;
	rep.tenants = arr;
	rep.n_tenants = n;
	rep.revision = rev;
	done(&rep, call);
	control_free_messages(arr, n);
}

/* --- snapshot, changes, health --- */

static void h_get_snapshot(Noetl__Control_Service *svc, const Noetl__Empty *in,
                           Noetl__Snapshot_Closure done, void *call)
{
	(void)in;
	struct control *c = self(svc);
	Noetl__Snapshot *snap;
	int rv = control_store_snapshot(c->store, &snap);
	if (rv != 0) {
		control_fail_store(call, rv, "taking the snapshot");
		done(NULL, call);
		return;
	}
	done(snap, call);
	control_store_snapshot_free(snap);
}

static void h_changes(Noetl__Control_Service *svc, const Noetl__ChangesRequest *in,
                      Noetl__ChangesReply_Closure done, void *call)
{
	struct control *c = self(svc);
	Noetl__ChangesReply *rep;
	int rv = changelog_read(control_store_changelog(c->store), in->since, in->topic, in->limit,
	                        &rep);
	if (rv != 0) {
		control_fail_store(call, rv, "reading changes");
		done(NULL, call);
		return;
	}
	/* A change may carry a whole package (up to JOBDEF_MAX_SIZE of YAML):
	 * cut the page at a byte budget, keeping at least one change, so a
	 * reply always fits the RPC message limit; the caller asks again. */
	size_t bytes = 0, keep = 0;
	while (keep < rep->n_changes) {
		bytes += noetl__change__get_packed_size(rep->changes[keep]);
		if (keep > 0 && bytes > CHANGES_MAX_BYTES)
			break;
		keep++;
	}
	for (size_t i = keep; i < rep->n_changes; i++)
		noetl__change__free_unpacked(rep->changes[i], NULL);
	if (keep < rep->n_changes) {
		rep->n_changes = keep;
		rep->more = true;
	}
	done(rep, call);
	changelog_reply_free(rep);
}

static void h_get_health(Noetl__Control_Service *svc, const Noetl__Empty *in,
                         Noetl__Health_Closure done, void *call)
{
	(void)in;
	struct control *c = self(svc);
	Noetl__Health h = NOETL__HEALTH__INIT;
	h.service = "control";
	h.version = NOETL_VERSION;
	h.ready = true;
	h.detail = c->queue == NULL ? "schedules do not fire: no queue configured" : "";
	h.revision = changelog_head(control_store_changelog(c->store));
	h.uptime_ms = util_now_ms() - c->started_ms;
	done(&h, call);
}

/* --- tokens and webhook secrets --- */

/* base64url without padding of n bytes into out (4 * ceil(n / 3) + 1). */
static void base64url(const uint8_t *in, size_t n, char *out)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = alphabet[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = alphabet[v & 63];
	}
	out[o] = '\0';
}

static void h_create_token(Noetl__Control_Service *svc, const Noetl__CreateTokenRequest *in,
                           Noetl__CreateTokenReply_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant))
		goto fail;
	if (strlen(in->description) > DESCRIPTION_MAX) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "token description is over %d bytes; shorten it", DESCRIPTION_MAX);
		goto fail;
	}
	uint8_t raw[TOKEN_BYTES];
	if (util_random(raw, sizeof(raw)) != 0) {
		rpc_fail(call, NOETL__STATUS__INTERNAL, "no randomness for a token; retry");
		goto fail;
	}
	char secret[4 * ((TOKEN_BYTES + 2) / 3) + 1];
	base64url(raw, sizeof(raw), secret);
	memset(raw, 0, sizeof(raw));
	char id[UTIL_ID_SIZE];
	util_new_id(id);
	char hash[65];
	util_sha256_hex(secret, strlen(secret), hash);

	Noetl__TokenInfo ti = NOETL__TOKEN_INFO__INIT;
	ti.id = id;
	ti.tenant = in->tenant;
	ti.hash = hash;
	ti.created_ms = control_now(c);
	ti.description = in->description;
	int rv = control_store_add_token(c->store, &ti, ti.created_ms);
	if (rv == -ESRCH) {
		fail_no_tenant(call, in->tenant);
		goto fail;
	}
	if (rv != 0) {
		control_fail_store(call, rv, "storing the token");
		goto fail;
	}
	log_info("token %s created for tenant %s", id, in->tenant);
	Noetl__CreateTokenReply rep = NOETL__CREATE_TOKEN_REPLY__INIT;
	rep.info = &ti;
	rep.secret = secret;
	done(&rep, call);
	memset(secret, 0, sizeof(secret));
	return;
fail:
	done(NULL, call);
}

static void h_list_tokens(Noetl__Control_Service *svc, const Noetl__ListTokensRequest *in,
                          Noetl__ListTokensReply_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant)) {
		done(NULL, call);
		return;
	}
	if (!control_store_has_tenant(c->store, in->tenant)) {
		fail_no_tenant(call, in->tenant);
		done(NULL, call);
		return;
	}
	Noetl__TokenInfo **arr;
	size_t n;
	int rv = control_store_list_tokens(c->store, in->tenant, &arr, &n);
	if (rv != 0) {
		control_fail_store(call, rv, "listing tokens");
		done(NULL, call);
		return;
	}
	Noetl__ListTokensReply rep = NOETL__LIST_TOKENS_REPLY__INIT;
	rep.tokens = arr;
	rep.n_tokens = n;
	done(&rep, call);
	control_free_messages(arr, n);
}

static void h_revoke_token(Noetl__Control_Service *svc, const Noetl__RevokeTokenRequest *in,
                           Noetl__Empty_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant) ||
	    !control_check_id(call, "token id", in->id)) {
		done(NULL, call);
		return;
	}
	int rv = control_store_revoke_token(c->store, in->tenant, in->id, control_now(c));
	if (rv == -ENOENT)
		rpc_fail(call, NOETL__STATUS__NOT_FOUND,
		         "tenant '%s' has no token '%s'; see `noetlctl token list %s`", in->tenant,
		         in->id, in->tenant);
	else if (rv != 0)
		control_fail_store(call, rv, "revoking the token");
	if (rv != 0) {
		done(NULL, call);
		return;
	}
	log_info("token %s of tenant %s revoked", in->id, in->tenant);
	Noetl__Empty e = NOETL__EMPTY__INIT;
	done(&e, call);
}

static void h_set_webhook_secret(Noetl__Control_Service *svc, const Noetl__WebhookSecret *in,
                                 Noetl__Empty_Closure done, void *call)
{
	struct control *c = self(svc);
	if (!control_check_tenant(call, in->tenant) ||
	    !control_check_id(call, "event id", in->event)) {
		done(NULL, call);
		return;
	}
	if (strlen(in->secret) > SECRET_MAX) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "webhook secret is over %d bytes; use a shorter one", SECRET_MAX);
		done(NULL, call);
		return;
	}
	int rv = control_store_set_secret(c->store, in, control_now(c));
	if (rv == -ESRCH)
		fail_no_tenant(call, in->tenant);
	else if (rv != 0)
		control_fail_store(call, rv, "storing the webhook secret");
	if (rv != 0) {
		done(NULL, call);
		return;
	}
	log_info("webhook secret of %s/%s %s", in->tenant, in->event,
	         in->secret[0] != '\0' ? "set" : "cleared");
	Noetl__Empty e = NOETL__EMPTY__INIT;
	done(&e, call);
}

/* --- wiring --- */

static const Noetl__Control_Service service_init = {
        .base = NOETL__CONTROL__BASE_INIT,
        .add_tenant = h_add_tenant,
        .remove_tenant = h_remove_tenant,
        .list_tenants = h_list_tenants,
        .deploy = package_deploy,
        .delete = package_delete,
        .rollback = package_rollback,
        .get_package = package_get,
        .list_packages = package_list,
        .history = package_history,
        .get_snapshot = h_get_snapshot,
        .create_token = h_create_token,
        .list_tokens = h_list_tokens,
        .revoke_token = h_revoke_token,
        .set_webhook_secret = h_set_webhook_secret,
        .changes = h_changes,
        .get_health = h_get_health,
};

static int64_t system_clock(void *arg)
{
	(void)arg;
	return util_now_ms();
}

static int client(const char *what, const char *url, const struct control_config *cfg,
                  struct rpc_client **out)
{
	/* A deploy may come right after the Repository (or Queue) restarted:
	 * give the dialer, which retries at most every second, time to get
	 * there before answering UNAVAILABLE. Nothing here is latency-bound. */
	struct rpc_client_options o = {.caller = "noetl-control", .connect_wait_ms = 3000};
	if (cfg->client_tls != NULL)
		o.tls = *cfg->client_tls;
	int rv = rpc_client_create(url, &o, out);
	if (rv != 0)
		log_error("control: cannot use the %s URL '%s': %s", what, url, strerror(-rv));
	return rv;
}

int control_create(const struct control_config *cfg, struct control **out)
{
	if (cfg->repository_url == NULL || cfg->repository_url[0] == '\0') {
		log_error("control: a repository URL is required (deploys check files there)");
		return -EINVAL;
	}
	struct control *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->svc = service_init;
	c->clock = cfg->clock != NULL ? cfg->clock : system_clock;
	c->clock_arg = cfg->clock_arg;
	c->call_timeout_ms = cfg->call_timeout_ms > 0 ? cfg->call_timeout_ms : 5000;
	c->started_ms = util_now_ms();
	c->repo_url = util_xstrdup(cfg->repository_url);
	pthread_mutex_init(&c->packages, NULL);
	pthread_mutex_init(&c->sched_mu, NULL);
	pthread_cond_init(&c->sched_cv, NULL);

	int rv = client("repository", cfg->repository_url, cfg, &c->repo);
	if (rv != 0)
		goto fail;
	if (cfg->queue_url != NULL && cfg->queue_url[0] != '\0') {
		rv = client("queue", cfg->queue_url, cfg, &c->queue);
		if (rv != 0)
			goto fail;
	}
	if (cfg->stream_url != NULL && cfg->stream_url[0] != '\0') {
		rv = stream_pub_create(cfg->stream_url, cfg->heartbeat_ms, cfg->tls, &c->pub);
		if (rv != 0) {
			log_error("control: cannot publish changes on '%s': %s", cfg->stream_url,
			          strerror(-rv));
			goto fail;
		}
	}
	rv = control_store_open(cfg->data_dir, c->pub, &c->store);
	if (rv != 0) {
		log_error("control: cannot open the store in '%s': %s", cfg->data_dir,
		          strerror(-rv));
		goto fail;
	}
	if (c->pub != NULL)
		stream_pub_set_head(c->pub, changelog_head(control_store_changelog(c->store)));
	if (c->queue == NULL)
		log_warn("control: no queue URL: cron schedules will not fire");
	else if (cfg->schedule_interval_ms >= 0) {
		rv = scheduler_start(c, cfg->schedule_interval_ms > 0 ? cfg->schedule_interval_ms
		                                                      : 1000);
		if (rv != 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	control_destroy(c);
	return rv;
}

ProtobufCService *control_service(struct control *c)
{
	return &c->svc.base;
}

uint64_t control_revision(struct control *c)
{
	return changelog_head(control_store_changelog(c->store));
}

static void emit_revision(struct metrics_emitter *e, void *arg)
{
	metrics_emit(e, NULL, (double)control_revision(arg));
}

int control_metrics(struct control *c, struct metrics *m)
{
	int rv = metrics_callback(m, "noetl_control_revision",
	                          "newest revision of Control's change stream", NULL, METRICS_GAUGE,
	                          emit_revision, c);
	struct metric *fires = NULL, *failures = NULL;
	if (rv == 0)
		rv = metrics_counter(m, "noetl_control_schedule_fires_total",
		                     "cron ticks enqueued into the Queue", NULL, &fires);
	if (rv == 0)
		rv = metrics_counter(m, "noetl_control_schedule_failures_total",
		                     "cron ticks the Queue did not take (they stay due)", NULL,
		                     &failures);
	/* The scheduler thread reads these under sched_mu. */
	pthread_mutex_lock(&c->sched_mu);
	c->fires = fires;
	c->fire_failures = failures;
	pthread_mutex_unlock(&c->sched_mu);
	return rv;
}

void control_destroy(struct control *c)
{
	if (c == NULL)
		return;
	scheduler_stop(c);
	rpc_client_destroy(c->queue);
	rpc_client_destroy(c->repo);
	control_store_close(c->store);
	stream_pub_destroy(c->pub);
	pthread_cond_destroy(&c->sched_cv);
	pthread_mutex_destroy(&c->sched_mu);
	pthread_mutex_destroy(&c->packages);
	free(c->repo_url);
	free(c);
}
