/*
 * service: the Recorder's RPC handlers. Decoded request in, reply out; no
 * sockets (rpc.c does those), so tests can call them with rpc_invoke_local.
 *
 * Tenancy. A call whose metadata names a tenant acts for that tenant only:
 * it may write records of that tenant, query that tenant, and follow that
 * tenant's stream; naming another is PERMISSION_DENIED. A call without one is
 * a platform caller (the executor, the listener, an operator's noetlctl) and
 * names the tenant in the request; only it may ask for every tenant at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc.h"
#include "service_int.h"
#include "util.h"

#define SELF(svc) ((struct recorder *)(void *)(svc))

/* Answers a store error. */
static void fail_errno(void *call, int rc, const char *what)
{
	switch (rc) {
	case -ENOMEM:
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "%s: out of memory", what);
		break;
	case -ESHUTDOWN:
		rpc_fail(call, NOETL__STATUS__UNAVAILABLE, "%s: the recorder is shutting down",
		         what);
		break;
	default:
		rpc_fail(call, NOETL__STATUS__INTERNAL, "%s failed (%s); see the recorder's log",
		         what, strerror(-rc));
	}
}

/*
 * The tenant a query acts for: the request's, else the caller's. Fails the
 * call (and returns NULL) when they differ or the name is malformed. An
 * empty result ("") means neither named one.
 */
static const char *query_tenant(void *call, const char *requested)
{
	const char *caller = rpc_tenant(call);
	if (requested[0] != '\0' && caller[0] != '\0' && strcmp(requested, caller) != 0) {
		rpc_fail(call, NOETL__STATUS__PERMISSION_DENIED,
		         "tenant '%s' is not the caller's tenant '%s'", requested, caller);
		return NULL;
	}
	const char *t = requested[0] != '\0' ? requested : caller;
	if (t[0] != '\0' && !util_valid_name(t, RECORDER_TENANT_MAX)) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "tenant '%.80s' is not a valid name (1-%d of A-Z a-z 0-9 _ . -)", t,
		         RECORDER_TENANT_MAX);
		return NULL;
	}
	return t;
}

/* query_tenant for the calls that need a tenant: also fails the call (and
 * returns NULL) when neither the request nor the caller names one. */
static const char *required_tenant(void *call, const char *requested)
{
	const char *t = query_tenant(call, requested);
	if (t != NULL && t[0] == '\0') {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "'tenant' is required");
		return NULL;
	}
	return t;
}

static bool event_ok(void *call, const char *event)
{
	if (event[0] == '\0' || util_valid_name(event, RECORDER_EVENT_MAX))
		return true;
	rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
	         "event id '%.80s' is not a valid id (1-%d of A-Z a-z 0-9 _ . -)", event,
	         RECORDER_EVENT_MAX);
	return false;
}

/*
 * Finds the one tenant that has records of event, for a platform caller who
 * named none. Writes it into buf; returns false with the call failed when
 * there is no such event or several tenants have one of that id.
 */
static bool event_tenant(struct recorder *r, void *call, const char *event, char *buf, size_t cap)
{
	char *names[2] = {NULL, NULL};
	size_t n = 0;
	int rc = recorder_store_event_tenants(r->store, event, names, 2, &n);
	if (rc != 0) {
		fail_errno(call, rc, "looking up the event");
		return false;
	}
	bool ok = n == 1;
	if (n == 0)
		rpc_fail(call, NOETL__STATUS__NOT_FOUND, "event '%s' has no records", event);
	else if (n > 1)
		rpc_fail(call, NOETL__STATUS__FAILED_PRECONDITION,
		         "event id '%s' exists in tenants '%s' and '%s'; name the tenant", event,
		         names[0], names[1]);
	else
		snprintf(buf, cap, "%s", names[0]);
	free(names[0]);
	free(names[1]);
	return ok;
}

/* --- Record ----------------------------------------------------------------- */

static void h_record(Noetl__Recorder_Service *svc, const Noetl__RecordRequest *in,
                     Noetl__RecordReply_Closure done, void *call)
{
	struct recorder *r = SELF(svc);
	if (in->n_records == 0) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "'records' is empty; send at least one");
		done(NULL, call);
		return;
	}
	if (in->n_records > r->limits.max_records) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "%zu records in one call; at most %zu are taken: split the batch",
		         in->n_records, r->limits.max_records);
		done(NULL, call);
		return;
	}
	struct recorder_copy *copies = calloc(in->n_records, sizeof(*copies));
	Noetl__Record **recs = calloc(in->n_records, sizeof(*recs));
	if (copies == NULL || recs == NULL) {
		free(copies);
		free(recs);
		rpc_fail(call, NOETL__STATUS__RESOURCE_EXHAUSTED, "out of memory for %zu records",
		         in->n_records);
		done(NULL, call);
		return;
	}
	const char *caller = rpc_tenant(call);
	int64_t now = util_now_ms();
	size_t made = 0;
	int st = NOETL__STATUS__OK;
	char *why = NULL;
	for (size_t i = 0; i < in->n_records && st == NOETL__STATUS__OK; i++, made++) {
		st = recorder_validate(in->records[i], i, caller, &r->limits, now, &copies[i],
		                       &why);
		recs[i] = &copies[i].rec;
	}
	if (st != NOETL__STATUS__OK) {
		rpc_fail(call, st, "%s", why != NULL ? why : "invalid record");
		done(NULL, call);
	} else {
		uint64_t last = 0;
		int rc = recorder_writer_submit(r->writer, recs, in->n_records, &last);
		if (rc != 0) {
			fail_errno(call, rc, "storing the records");
			done(NULL, call);
		} else {
			Noetl__RecordReply reply = NOETL__RECORD_REPLY__INIT;
			reply.revision = last;
			done(&reply, call);
		}
	}
	free(why);
	for (size_t i = 0; i < made; i++)
		recorder_copy_release(&copies[i]);
	free(copies);
	free(recs);
}

/* --- queries ---------------------------------------------------------------- */

/*
 * Fails call for a query's store error rc, if any: a bad query (-EINVAL,
 * why says what; NULL: "bad query") is the caller's INVALID_ARGUMENT, the
 * rest as fail_errno says. Frees why. True if the call failed.
 */
static bool query_failed(void *call, int rc, char *why, const char *what)
{
	if (rc == -EINVAL)
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "%s",
		         why != NULL ? why : "bad query");
	else if (rc != 0)
		fail_errno(call, rc, what);
	free(why);
	return rc != 0;
}

static void h_query_executions(Noetl__Recorder_Service *svc, const Noetl__ExecutionQuery *in,
                               Noetl__ExecutionsReply_Closure done, void *call)
{
	struct recorder *r = SELF(svc);
	char found[RECORDER_TENANT_MAX + 1];
	const char *tenant = query_tenant(call, in->tenant);
	if (tenant == NULL || !event_ok(call, in->event_id))
		goto failed;
	if (in->all_tenants) {
		if (rpc_tenant(call)[0] != '\0') {
			rpc_fail(call, NOETL__STATUS__PERMISSION_DENIED,
			         "'all_tenants' is for platform callers; this call acts for tenant "
			         "'%s'",
			         rpc_tenant(call));
			goto failed;
		}
		if (in->tenant[0] != '\0' || in->event_id[0] != '\0') {
			rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
			         "'all_tenants' excludes 'tenant' and 'event_id'");
			goto failed;
		}
	} else if (tenant[0] == '\0') {
		if (in->event_id[0] == '\0') {
			rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
			         "'tenant' is required (or 'event_id', or 'all_tenants' for the "
			         "platform view)");
			goto failed;
		}
		if (!event_tenant(r, call, in->event_id, found, sizeof(found)))
			goto failed;
		tenant = found;
	}
	if (in->from_ms < 0 || in->to_ms < 0) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "'from_ms' and 'to_ms' are Unix milliseconds, not negative");
		goto failed;
	}
	Noetl__ExecutionsReply *reply = NULL;
	char *why = NULL;
	int rc = recorder_store_executions(r->store, in, in->all_tenants ? NULL : tenant, &reply,
	                                   &why);
	if (query_failed(call, rc, why, "querying executions"))
		goto failed;
	done(reply, call);
	protobuf_c_message_free_unpacked(&reply->base, NULL);
	return;
failed:
	done(NULL, call);
}

static void h_query_logs(Noetl__Recorder_Service *svc, const Noetl__LogQuery *in,
                         Noetl__LogsReply_Closure done, void *call)
{
	struct recorder *r = SELF(svc);
	const char *tenant = required_tenant(call, in->tenant);
	if (tenant == NULL || !event_ok(call, in->event_id))
		goto failed;
	if (in->min_level < NOETL__LOG_LEVEL__LOG_DEBUG ||
	    in->min_level > NOETL__LOG_LEVEL__LOG_ERROR) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "'min_level' %d is not a LogLevel (0 debug .. 3 error)",
		         (int)in->min_level);
		goto failed;
	}
	if (in->since_ms < 0) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "'since_ms' is Unix milliseconds, not negative");
		goto failed;
	}
	Noetl__LogsReply *reply = NULL;
	char *why = NULL;
	int rc = recorder_store_logs(r->store, in, tenant, &reply, &why);
	if (query_failed(call, rc, why, "querying logs"))
		goto failed;
	done(reply, call);
	protobuf_c_message_free_unpacked(&reply->base, NULL);
	return;
failed:
	done(NULL, call);
}

static void h_timeline(Noetl__Recorder_Service *svc, const Noetl__TimelineRequest *in,
                       Noetl__TimelineReply_Closure done, void *call)
{
	struct recorder *r = SELF(svc);
	char found[RECORDER_TENANT_MAX + 1];
	const char *tenant = query_tenant(call, in->tenant);
	if (tenant == NULL || !event_ok(call, in->event_id))
		goto failed;
	if (in->event_id[0] == '\0') {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT, "'event_id' is required");
		goto failed;
	}
	if (tenant[0] == '\0') {
		if (!event_tenant(r, call, in->event_id, found, sizeof(found)))
			goto failed;
		tenant = found;
	}
	Noetl__TimelineReply *reply = NULL;
	int rc = recorder_store_timeline(r->store, tenant, in->event_id, &reply);
	if (rc == -ENOENT) {
		rpc_fail(call, NOETL__STATUS__NOT_FOUND, "event '%s' of tenant '%s' has no records",
		         in->event_id, tenant);
		goto failed;
	}
	if (rc != 0) {
		fail_errno(call, rc, "reading the timeline");
		goto failed;
	}
	done(reply, call);
	protobuf_c_message_free_unpacked(&reply->base, NULL);
	return;
failed:
	done(NULL, call);
}

/* --- retention -------------------------------------------------------------- */

static void h_set_retention(Noetl__Recorder_Service *svc, const Noetl__Retention *in,
                            Noetl__Empty_Closure done, void *call)
{
	struct recorder *r = SELF(svc);
	const char *tenant = required_tenant(call, in->tenant);
	if (tenant == NULL)
		goto failed;
	if (in->max_age_ms < 0) {
		rpc_fail(call, NOETL__STATUS__INVALID_ARGUMENT,
		         "'max_age_ms' is negative; 0 keeps records of any age");
		goto failed;
	}
	Noetl__Retention set = *in;
	set.tenant = (char *)tenant;
	int rc = recorder_store_set_retention(r->store, &set);
	if (rc != 0 && rc != -ENOENT) {
		fail_errno(call, rc, "storing the retention");
		goto failed;
	}
	log_info("recorder: retention of tenant '%s' %s", tenant,
	         in->use_default ? "reset to the default" : "set");
	Noetl__Empty e = NOETL__EMPTY__INIT;
	done(&e, call);
	return;
failed:
	done(NULL, call);
}

static void h_get_retention(Noetl__Recorder_Service *svc, const Noetl__Retention *in,
                            Noetl__Retention_Closure done, void *call)
{
	struct recorder *r = SELF(svc);
	const char *tenant = required_tenant(call, in->tenant);
	if (tenant == NULL)
		goto failed;
	struct recorder_policy p;
	int rc = recorder_store_get_retention(r->store, tenant, &p);
	if (rc != 0 && rc != -ENOENT) {
		fail_errno(call, rc, "reading the retention");
		goto failed;
	}
	Noetl__Retention out = NOETL__RETENTION__INIT;
	out.tenant = (char *)tenant;
	out.use_default = rc == -ENOENT;
	if (rc == -ENOENT)
		p = r->def;
	out.max_age_ms = p.max_age_ms;
	out.max_bytes = p.max_bytes;
	recorder_store_usage(r->store, tenant, &out.records, &out.bytes);
	done(&out, call);
	return;
failed:
	done(NULL, call);
}

/* --- stream and health ------------------------------------------------------ */

static void h_changes(Noetl__Recorder_Service *svc, const Noetl__ChangesRequest *in,
                      Noetl__ChangesReply_Closure done, void *call)
{
	struct recorder *r = SELF(svc);
	const char *topic = query_tenant(call, in->topic);
	if (topic == NULL) {
		done(NULL, call);
		return;
	}
	Noetl__ChangesReply *reply = NULL;
	int rc = changelog_read(recorder_store_changelog(r->store), in->since, topic, in->limit,
	                        &reply);
	if (rc != 0) {
		fail_errno(call, rc, "reading changes");
		done(NULL, call);
		return;
	}
	done(reply, call);
	changelog_reply_free(reply);
}

static void h_get_health(Noetl__Recorder_Service *svc, const Noetl__Empty *in,
                         Noetl__Health_Closure done, void *call)
{
	(void)in;
	struct recorder *r = SELF(svc);
	Noetl__Health h = NOETL__HEALTH__INIT;
	h.service = "recorder";
	h.version = NOETL_VERSION;
	h.ready = true;
	h.revision = recorder_store_head(r->store);
	h.uptime_ms = util_mono_ms() - r->started_ms;
	done(&h, call);
}

void recorder_service_init(struct recorder *r)
{
	Noetl__Recorder_Service svc = NOETL__RECORDER__INIT(h_);
	r->svc = svc;
}
