#include "fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "control.pb-c.h"
#include "jobdef.h"
#include "queue.h"
#include "recorder.h"
#include "repository.h"
#include "repository.pb-c.h"
#include "testrpc.h"
#include "testutil.h"
#include "util.h"

#define WAIT_MS 20000

static const char *const person_schema =
        "{\"type\":\"object\",\"required\":[\"name\"],"
        "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1},"
        "\"age\":{\"type\":\"integer\",\"minimum\":0}}}";

static const char *const acme_yaml = "id: p1\n"
                                     "tenant: acme\n"
                                     "queues:\n"
                                     "  - id: inbox\n"
                                     "jobs:\n"
                                     "  - event:\n"
                                     "      id: greet\n"
                                     "      schema:\n"
                                     "        id: person\n"
                                     "        schemaref: person.json\n"
                                     "      supplierqueue: inbox\n"
                                     "      runtime: rt\n"
                                     "  - event:\n"
                                     "      id: raw\n"
                                     "      supplierqueue: inbox\n"
                                     "      runtime: rt\n"
                                     "runtimes:\n"
                                     "  - id: rt\n"
                                     "    moduleref: m.wasm\n";

static const char *const beta_yaml = "id: p2\n"
                                     "tenant: beta\n"
                                     "queues:\n"
                                     "  - id: inbox\n"
                                     "jobs:\n"
                                     "  - event:\n"
                                     "      id: greet\n"
                                     "      supplierqueue: inbox\n"
                                     "      runtime: rt\n"
                                     "runtimes:\n"
                                     "  - id: rt\n"
                                     "    moduleref: m.wasm\n";

static struct rpc_server *serve(ProtobufCService *svc, const char *url, const char *name)
{
	struct rpc_server_options o = {.workers = 8, .name = name};
	struct rpc_server *s;
	cr_assert_eq(rpc_server_create(&o, &s), 0);
	cr_assert_eq(rpc_server_add(s, svc), 0);
	cr_assert_eq(rpc_server_listen(s, url), 0, "listen on %s", url);
	cr_assert_eq(rpc_server_start(s), 0);
	return s;
}

static void sync_control(struct fx *f, uint64_t rev)
{
	cr_assert(listener_wait_synced(f->listener, rev, 0, WAIT_MS),
	          "the listener did not reach control revision %llu", (unsigned long long)rev);
}

static void put_file(struct fx *f, const char *tenant, const char *name, Noetl__FileType type,
                     const void *data, size_t len, bool wait)
{
	Noetl__PutFileRequest r = testrpc_put_file(tenant, name, type, data, len);
	Noetl__FileInfo *fi = (Noetl__FileInfo *)testrpc_ok(f->rc, &noetl__repository__descriptor,
	                                                    "PutFile", &r.base, NULL);
	uint64_t rev = fi->revision;
	protobuf_c_message_free_unpacked(&fi->base, NULL);
	if (wait)
		cr_assert(listener_wait_synced(f->listener, 0, rev, WAIT_MS),
		          "the listener did not reach repository revision %llu",
		          (unsigned long long)rev);
}

void fx_put_schema(struct fx *f, const char *tenant, const char *name, const char *json)
{
	put_file(f, tenant, name, NOETL__FILE_TYPE__FILE_JSON_SCHEMA, json, strlen(json), true);
}

void fx_deploy(struct fx *f, const char *yaml, bool update)
{
	Noetl__Package *p = NULL;
	char *err = NULL;
	cr_assert_eq(jobdef_parse(yaml, strlen(yaml), "test.yml", &p, &err), 0, "%s", err);
	Noetl__DeployRequest r = NOETL__DEPLOY_REQUEST__INIT;
	r.package = p;
	r.update = update;
	r.source = (char *)yaml;
	Noetl__DeployReply *rep = (Noetl__DeployReply *)testrpc_ok(
	        f->cc, &noetl__control__descriptor, "Deploy", &r.base, NULL);
	uint64_t rev = rep->revision;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	jobdef_free(p);
	sync_control(f, rev);
}

static uint64_t control_head(struct fx *f)
{
	Noetl__Empty e = NOETL__EMPTY__INIT;
	Noetl__Health *h = (Noetl__Health *)testrpc_ok(f->cc, &noetl__control__descriptor,
	                                               "GetHealth", &e.base, NULL);
	uint64_t rev = h->revision;
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return rev;
}

void fx_sync_control(struct fx *f)
{
	sync_control(f, control_head(f));
}

void fx_delete_package(struct fx *f, const char *tenant, const char *id)
{
	Noetl__PackageRef r = NOETL__PACKAGE_REF__INIT;
	r.tenant = (char *)tenant;
	r.id = (char *)id;
	Noetl__DeployReply *rep = (Noetl__DeployReply *)testrpc_ok(
	        f->cc, &noetl__control__descriptor, "Delete", &r.base, NULL);
	uint64_t rev = rep->revision;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	sync_control(f, rev);
}

void fx_set_secret(struct fx *f, const char *tenant, const char *event, const char *secret)
{
	Noetl__WebhookSecret r = NOETL__WEBHOOK_SECRET__INIT;
	r.tenant = (char *)tenant;
	r.event = (char *)event;
	r.secret = (char *)secret;
	ProtobufCMessage *out =
	        testrpc_ok(f->cc, &noetl__control__descriptor, "SetWebhookSecret", &r.base, NULL);
	protobuf_c_message_free_unpacked(out, NULL);
	sync_control(f, control_head(f));
}

void fx_create_token(struct fx *f, const char *tenant, char *out, size_t cap)
{
	Noetl__CreateTokenRequest r = NOETL__CREATE_TOKEN_REQUEST__INIT;
	r.tenant = (char *)tenant;
	r.description = "test";
	Noetl__CreateTokenReply *rep = (Noetl__CreateTokenReply *)testrpc_ok(
	        f->cc, &noetl__control__descriptor, "CreateToken", &r.base, NULL);
	snprintf(out, cap, "%s", rep->secret);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	sync_control(f, control_head(f));
}

static void add_tenant(struct fx *f, const char *id)
{
	Noetl__AddTenantRequest r = NOETL__ADD_TENANT_REQUEST__INIT;
	r.id = (char *)id;
	ProtobufCMessage *out =
	        testrpc_ok(f->cc, &noetl__control__descriptor, "AddTenant", &r.base, NULL);
	protobuf_c_message_free_unpacked(out, NULL);
}

static void queue_open(struct fx *f)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/queue", f->dir);
	struct queue_config qc = {.data_dir = path, .max_depth_tenant = f->max_depth_tenant};
	cr_assert_eq(queue_create(&qc, &f->queue), 0);
	f->queue_srv = serve(queue_service(f->queue), f->queue_url, "queue");
}

void fx_queue_down(struct fx *f)
{
	rpc_server_destroy(f->queue_srv);
	f->queue_srv = NULL;
	queue_destroy(f->queue);
	f->queue = NULL;
}

void fx_queue_up(struct fx *f)
{
	queue_open(f);
}

void fx_repository_down(struct fx *f)
{
	rpc_server_destroy(f->repository_srv);
	f->repository_srv = NULL;
}

void fx_repository_up(struct fx *f)
{
	f->repository_srv = serve(repository_service(f->repository), f->repository_url, "repo");
}

void fx_start(struct fx *f, const struct listener_config *cfg)
{
	uint64_t depth = f->max_depth_tenant;
	memset(f, 0, sizeof(*f));
	f->max_depth_tenant = depth;
	testutil_tempdir(f->dir, sizeof(f->dir));
	snprintf(f->control_url, sizeof(f->control_url), "ipc://%s/control.sock", f->dir);
	snprintf(f->control_pub, sizeof(f->control_pub), "ipc://%s/control-pub.sock", f->dir);
	snprintf(f->repository_url, sizeof(f->repository_url), "ipc://%s/repo.sock", f->dir);
	snprintf(f->repository_pub, sizeof(f->repository_pub), "ipc://%s/repo-pub.sock", f->dir);
	snprintf(f->queue_url, sizeof(f->queue_url), "ipc://%s/queue.sock", f->dir);
	snprintf(f->recorder_url, sizeof(f->recorder_url), "ipc://%s/rec.sock", f->dir);
	snprintf(f->recorder_pub, sizeof(f->recorder_pub), "ipc://%s/rec-pub.sock", f->dir);

	char path[300];
	snprintf(path, sizeof(path), "%s/repository", f->dir);
	/* Default heartbeats (1 s): closing a subscriber while messages arrive
	 * can hang nng 1.5.2's reaper (nng issue #1543), so keep them rare. */
	struct repository_config rc = {.data_dir = path, .stream_url = f->repository_pub};
	cr_assert_eq(repository_create(&rc, &f->repository), 0);
	f->repository_srv = serve(repository_service(f->repository), f->repository_url, "repo");

	queue_open(f);

	snprintf(path, sizeof(path), "%s/recorder", f->dir);
	struct recorder_config rec = {
	        .data_dir = path, .stream_url = f->recorder_pub, .retain_every_ms = -1};
	cr_assert_eq(recorder_create(&rec, &f->recorder), 0);
	f->recorder_srv = serve(recorder_service(f->recorder), f->recorder_url, "recorder");

	snprintf(path, sizeof(path), "%s/control", f->dir);
	struct control_config cc = {.data_dir = path,
	                            .stream_url = f->control_pub,
	                            .repository_url = f->repository_url,
	                            .schedule_interval_ms = -1};
	cr_assert_eq(control_create(&cc, &f->control), 0);
	f->control_srv = serve(control_service(f->control), f->control_url, "control");

	cr_assert_eq(rpc_client_create(f->control_url, NULL, &f->cc), 0);
	cr_assert_eq(rpc_client_create(f->repository_url, NULL, &f->rc), 0);
	cr_assert_eq(rpc_client_create(f->queue_url, NULL, &f->qc), 0);
	cr_assert_eq(rpc_client_create(f->recorder_url, NULL, &f->recc), 0);

	/* Definitions that exist before the listener starts come with the
	 * snapshot; the rest of the tests see them arrive on the stream. */
	add_tenant(f, "acme");
	add_tenant(f, "beta");
	static const char wasm[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
	put_file(f, "acme", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), false);
	put_file(f, "beta", "m.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm, sizeof(wasm), false);
	put_file(f, "acme", "person.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, person_schema,
	         strlen(person_schema), false);

	struct listener_config lc = {0};
	if (cfg != NULL)
		lc = *cfg;
	lc.http_url = "http://127.0.0.1:0";
	lc.control_url = f->control_url;
	lc.control_stream_url = f->control_pub;
	lc.repository_url = f->repository_url;
	lc.repository_stream_url = f->repository_pub;
	lc.queue_url = f->queue_url;
	lc.recorder_url = f->recorder_url;
	if (lc.call_timeout_ms == 0)
		lc.call_timeout_ms = 2000;
	f->lc = lc;
	cr_assert_eq(listener_create(&lc, &f->listener), 0);
	f->port = listener_http_port(f->listener);
	cr_assert_gt(f->port, 0);

	fx_deploy(f, acme_yaml, false);
	fx_deploy(f, beta_yaml, false);
	fx_create_token(f, "acme", f->token_a, sizeof(f->token_a));
	fx_create_token(f, "beta", f->token_b, sizeof(f->token_b));
	char why[256];
	for (int i = 0; i < 2000 && !listener_ready(f->listener, why, sizeof(why)); i++)
		util_sleep_ms(10);
	cr_assert(listener_ready(f->listener, why, sizeof(why)), "not ready: %s", why);
}

void fx_restart_listener(struct fx *f)
{
	listener_destroy(f->listener);
	f->listener = NULL;
	cr_assert_eq(listener_create(&f->lc, &f->listener), 0);
	f->port = listener_http_port(f->listener);
}

void fx_stop(struct fx *f)
{
	listener_destroy(f->listener);
	rpc_client_destroy(f->cc);
	rpc_client_destroy(f->rc);
	rpc_client_destroy(f->qc);
	rpc_client_destroy(f->recc);
	rpc_server_destroy(f->control_srv);
	control_destroy(f->control);
	rpc_server_destroy(f->queue_srv);
	queue_destroy(f->queue);
	rpc_server_destroy(f->recorder_srv);
	recorder_destroy(f->recorder);
	rpc_server_destroy(f->repository_srv);
	repository_destroy(f->repository);
	testutil_rmtree(f->dir);
}

int fx_post(struct fx *f, const char *path, const char *token, const char *extra, const char *body,
            struct httpc_reply *out)
{
	char headers[2048];
	snprintf(headers, sizeof(headers), "Content-Type: application/json\r\n%s%s%s%s",
	         token != NULL ? "Authorization: Bearer " : "", token != NULL ? token : "",
	         token != NULL ? "\r\n" : "", extra != NULL ? extra : "");
	return httpc_request(f->port, "POST", path, headers, body, body != NULL ? strlen(body) : 0,
	                     out);
}

Noetl__LeaseReply *fx_lease(struct fx *f, const char *tenant, unsigned max)
{
	Noetl__LeaseRequest r = NOETL__LEASE_REQUEST__INIT;
	r.tenant = (char *)tenant;
	r.max_items = max;
	r.lease_ms = 60000;
	r.consumer = "test";
	return (Noetl__LeaseReply *)testrpc_ok(f->qc, &noetl__queue__descriptor, "Lease", &r.base,
	                                       NULL);
}

uint64_t fx_depth(struct fx *f, const char *tenant)
{
	Noetl__StatsRequest r = NOETL__STATS_REQUEST__INIT;
	r.tenant = (char *)tenant;
	Noetl__StatsReply *rep = (Noetl__StatsReply *)testrpc_ok(f->qc, &noetl__queue__descriptor,
	                                                         "Stats", &r.base, NULL);
	uint64_t n = 0;
	for (size_t i = 0; i < rep->n_queues; i++)
		n += rep->queues[i]->ready + rep->queues[i]->leased + rep->queues[i]->delayed;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return n;
}
