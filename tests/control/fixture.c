#include "fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobdef.h"
#include "testrpc.h"
#include "testutil.h"

/* (module (type (func)) (func (type 0)) (export "event" (func 0))) */
const unsigned char fx_wasm[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,                  /* magic, version */
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00,                              /* type: () -> () */
        0x03, 0x02, 0x01, 0x00,                                          /* function: type 0 */
        0x07, 0x09, 0x01, 0x05, 'e',  'v',  'e',  'n',  't', 0x00, 0x00, /* export "event" */
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,                              /* code: empty body */
};
const size_t fx_wasm_len = sizeof(fx_wasm);

static int64_t fx_clock(void *arg)
{
	return ((struct fx *)arg)->now;
}

static struct rpc_server *serve(ProtobufCService *svc, const char *url)
{
	struct rpc_server_options o = {.workers = 4, .name = "test"};
	struct rpc_server *s;
	cr_assert_eq(rpc_server_create(&o, &s), 0);
	cr_assert_eq(rpc_server_add(s, svc), 0);
	cr_assert_eq(rpc_server_listen(s, url), 0, "listen %s", url);
	cr_assert_eq(rpc_server_start(s), 0);
	return s;
}

void fx_start(struct fx *f, bool with_queue)
{
	memset(f, 0, sizeof(*f));
	testutil_tempdir(f->dir, sizeof(f->dir));
	f->now = 1767225600000; /* 2026-01-01T00:00:00Z */
	snprintf(f->repo_url, sizeof(f->repo_url), "ipc://%s/repo.sock", f->dir);
	snprintf(f->queue_url, sizeof(f->queue_url), "inproc://fx-relay-%d", (int)getpid());
	snprintf(f->queue_real, sizeof(f->queue_real), "inproc://fx-queue-%d", (int)getpid());
	snprintf(f->control_url, sizeof(f->control_url), "ipc://%s/control.sock", f->dir);
	snprintf(f->control_stream, sizeof(f->control_stream), "ipc://%s/control-stream.sock",
	         f->dir);

	char path[320];
	snprintf(path, sizeof(path), "%s/repository", f->dir);
	struct repository_config rc = {.data_dir = path, .max_file_bytes = 64 * 1024};
	cr_assert_eq(repository_create(&rc, &f->repo), 0);
	f->repo_srv = serve(repository_service(f->repo), f->repo_url);

	if (with_queue) {
		snprintf(path, sizeof(path), "%s/queue", f->dir);
		struct queue_config qc = {.data_dir = path};
		cr_assert_eq(queue_create(&qc, &f->queue), 0);
		f->queue_srv = serve(queue_service(f->queue), f->queue_real);
		cr_assert_eq(relay_create(f->queue_url, f->queue_real, &f->relay), 0);
	}
	fx_control_start(f, false);
}

void fx_control_start(struct fx *f, bool serve_it)
{
	char path[320];
	snprintf(path, sizeof(path), "%s/control", f->dir);
	struct control_config cc = {
	        .data_dir = path,
	        .repository_url = f->repo_url,
	        .queue_url = f->queue_srv != NULL ? f->queue_url : NULL,
	        .schedule_interval_ms = -1,
	        .clock = fx_clock,
	        .clock_arg = f,
	        .stream_url = serve_it ? f->control_stream : NULL,
	        .heartbeat_ms = 100,
	};
	cr_assert_eq(control_create(&cc, &f->ctl), 0);
	if (serve_it)
		f->ctl_srv = serve(control_service(f->ctl), f->control_url);
}

void fx_control_stop(struct fx *f)
{
	rpc_server_destroy(f->ctl_srv);
	f->ctl_srv = NULL;
	control_destroy(f->ctl);
	f->ctl = NULL;
}

void fx_stop(struct fx *f)
{
	fx_control_stop(f);
	relay_destroy(f->relay);
	rpc_server_destroy(f->queue_srv);
	queue_destroy(f->queue);
	rpc_server_destroy(f->repo_srv);
	repository_destroy(f->repo);
	testutil_rmtree(f->dir);
}

int fx_call(struct fx *f, const char *method, const ProtobufCMessage *in, ProtobufCMessage **out,
            char **err)
{
	return testrpc_local(control_service(f->ctl), method, in, NULL, out, err);
}

int fx_repo(struct fx *f, const char *method, const ProtobufCMessage *in, ProtobufCMessage **out,
            char **err)
{
	return testrpc_local(repository_service(f->repo), method, in, NULL, out, err);
}

int fx_put(struct fx *f, const char *tenant, const char *name, Noetl__FileType type,
           const void *data, size_t len)
{
	Noetl__PutFileRequest req = testrpc_put_file(tenant, name, type, data, len);
	return fx_repo(f, "PutFile", &req.base, NULL, NULL);
}

void fx_tenant(struct fx *f, const char *tenant)
{
	Noetl__AddTenantRequest req = NOETL__ADD_TENANT_REQUEST__INIT;
	req.id = (char *)tenant;
	char *err = NULL;
	int st = fx_call(f, "AddTenant", &req.base, NULL, &err);
	cr_assert_eq(st, 0, "AddTenant %s: %s", tenant, err != NULL ? err : "");
	free(err);
}

int fx_deploy_yaml(struct fx *f, const char *yaml, bool update, uint64_t *rev, char **err)
{
	Noetl__Package *p = NULL;
	char *perr = NULL;
	int rv = jobdef_parse(yaml, strlen(yaml), "test.yml", &p, &perr);
	cr_assert_eq(rv, 0, "parse: %s", perr != NULL ? perr : "");
	Noetl__DeployRequest req = NOETL__DEPLOY_REQUEST__INIT;
	req.package = p;
	req.update = update;
	req.source = (char *)yaml;
	ProtobufCMessage *out = NULL;
	int st = fx_call(f, "Deploy", &req.base, &out, err);
	if (st == 0 && rev != NULL)
		*rev = ((Noetl__DeployReply *)out)->revision;
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	jobdef_free(p);
	return st;
}

size_t fx_queue_items(struct fx *f)
{
	Noetl__LeaseRequest req = NOETL__LEASE_REQUEST__INIT;
	req.max_items = 100;
	req.lease_ms = 3600000;
	req.tenant = "acme";
	req.consumer = "test";
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = rpc_invoke_local(queue_service(f->queue), "Lease", &req.base, NULL, &out, &err);
	cr_assert_eq(st, 0, "Lease: %s", err != NULL ? err : "");
	free(err);
	Noetl__LeaseReply *rep = (Noetl__LeaseReply *)out;
	for (size_t i = 0; i < rep->n_items && f->n_items < FX_ITEMS_MAX; i++) {
		const Noetl__Item *it = rep->items[i]->item;
		struct fx_item *x = &f->items[f->n_items++];
		snprintf(x->tenant, sizeof(x->tenant), "%s", it->tenant);
		snprintf(x->queue, sizeof(x->queue), "%s", it->queue);
		snprintf(x->event, sizeof(x->event), "%s", it->event);
		snprintf(x->package, sizeof(x->package), "%s", it->package);
		snprintf(x->key, sizeof(x->key), "%s", it->idempotency_key);
		snprintf(x->id, sizeof(x->id), "%s", it->id);
		snprintf(x->payload, sizeof(x->payload), "%.*s", (int)it->payload.len,
		         (const char *)it->payload.data);
		x->max_attempts = it->retry != NULL ? it->retry->max_attempts : 0;
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return f->n_items;
}

uint64_t fx_head(struct fx *f)
{
	return control_revision(f->ctl);
}
