/*
 * Watching Control over real processes and sockets: the noetl-repository
 * and noetl-control binaries run over ipc:// in a temporary directory, a
 * burst of 1,000 changes goes in (deploys, updates, tokens), Control is
 * restarted in the middle of it, and three watchers (started before, during
 * and after the burst) must each see every revision exactly once, in order.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "jobdef.h"
#include "repository.pb-c.h"
#include "rpc.h"
#include "stream.h"
#include "procs.h"
#include "testrpc.h"
#include "testutil.h"

#define BURST 1000

static struct procs procs;

/* (module (type (func)) (func (type 0)) (export "event" (func 0))) */
static const unsigned char wasm[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60,
        0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x09, 0x01, 0x05, 'e',  'v',
        'e',  'n',  't',  0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
};

static void start(void)
{
	procs_start(&procs);
}

static void stop(void)
{
	procs_stop(&procs);
}

TestSuite(watch, .init = start, .fini = stop, .timeout = 600);

/* A watcher records what it was given and whether it ever went wrong. */
struct watcher {
	pthread_mutex_t mu;
	uint64_t last;   /* revision of the last change applied */
	uint64_t count;  /* changes applied */
	uint64_t errors; /* out-of-order, repeated or undecodable changes */
	struct stream_sub *sub;
};

static int apply(void *arg, const Noetl__Change *chg)
{
	struct watcher *w = arg;
	Noetl__DefinitionChange *dc =
	        noetl__definition_change__unpack(NULL, chg->body.len, chg->body.data);
	pthread_mutex_lock(&w->mu);
	if (chg->revision != w->last + 1 || dc == NULL)
		w->errors++;
	w->last = chg->revision;
	w->count++;
	pthread_mutex_unlock(&w->mu);
	if (dc != NULL)
		noetl__definition_change__free_unpacked(dc, NULL);
	return 0;
}

static void watch(struct watcher *w, struct rpc_client *c)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	struct stream_sub_options o = {.heartbeat_timeout_ms = 1000, .page = 100};
	cr_assert_eq(stream_sub_create(c, &noetl__control__descriptor, procs.ctl_stream, &o, apply,
	                               w, &w->sub),
	             0);
}

static void unwatch(struct watcher *w)
{
	stream_sub_destroy(w->sub);
	pthread_mutex_destroy(&w->mu);
}

static void call(struct rpc_client *c, const ProtobufCServiceDescriptor *svc, const char *method,
                 const ProtobufCMessage *in, uint64_t *rev)
{
	ProtobufCMessage *out = testrpc_ok(c, svc, method, in, NULL);
	if (rev != NULL && strcmp(method, "Deploy") == 0)
		*rev = ((Noetl__DeployReply *)out)->revision;
	protobuf_c_message_free_unpacked(out, NULL);
}

static uint64_t head(struct rpc_client *c)
{
	Noetl__Empty e = NOETL__EMPTY__INIT;
	ProtobufCMessage *out =
	        testrpc_ok(c, &noetl__control__descriptor, "GetHealth", &e.base, NULL);
	uint64_t h = ((Noetl__Health *)out)->revision;
	protobuf_c_message_free_unpacked(out, NULL);
	return h;
}

Test(watch, watchers_before_during_and_after_a_burst_see_every_revision_once_in_order)
{
	struct rpc_client_options co = {.connect_wait_ms = 5000};
	struct rpc_client *ctl, *repo;
	cr_assert_eq(rpc_client_create(procs.ctl_url, &co, &ctl), 0);
	cr_assert_eq(rpc_client_create(procs.repo_url, &co, &repo), 0);

	struct watcher before, during, after;
	watch(&before, ctl);

	char path[512];
	testutil_source_path("../shared/compat/jobico/job-go-greet.yml", path, sizeof(path));
	Noetl__Package *pkg;
	char *err = NULL;
	cr_assert_eq(jobdef_parse_file(path, &pkg, &err), 0, "%s", err ? err : "");
	testutil_source_path("../shared/compat/jobico/schema.json", path, sizeof(path));
	size_t slen;
	char *schema = testutil_read_file(path, &slen);
	cr_assert_not_null(schema);

	Noetl__PutFileRequest put = testrpc_put_file(
	        "demogo", "greet-schema-go.json", NOETL__FILE_TYPE__FILE_JSON_SCHEMA, schema, slen);
	call(repo, &noetl__repository__descriptor, "PutFile", &put.base, NULL);
	put = testrpc_put_file("demogo", "greet-wasm-go.wasm", NOETL__FILE_TYPE__FILE_WASM, wasm,
	                       sizeof(wasm));
	call(repo, &noetl__repository__descriptor, "PutFile", &put.base, NULL);

	Noetl__AddTenantRequest at = NOETL__ADD_TENANT_REQUEST__INIT;
	at.id = "demogo";
	call(ctl, &noetl__control__descriptor, "AddTenant", &at.base, NULL);
	at.id = "other";
	call(ctl, &noetl__control__descriptor, "AddTenant", &at.base, NULL);

	char *orig_name = pkg->name;
	char name[64];
	Noetl__DeployRequest dr = NOETL__DEPLOY_REQUEST__INIT;
	dr.package = pkg;
	dr.source = "(test)";
	Noetl__CreateTokenRequest ct = NOETL__CREATE_TOKEN_REQUEST__INIT;
	ct.tenant = "other";
	uint64_t last_deploy = 0;
	for (int i = 0; i < BURST; i++) {
		if (i == 300)
			watch(&during, ctl);
		if (i == 500) {
			/* Restart Control in the middle of the burst. */
			procs_stop_control(&procs);
			procs_start_control(&procs);
		}
		if (i % 3 == 2) {
			call(ctl, &noetl__control__descriptor, "CreateToken", &ct.base, NULL);
		} else {
			snprintf(name, sizeof(name), "Demo JOB %d", i);
			pkg->name = name;
			dr.update = i > 0;
			call(ctl, &noetl__control__descriptor, "Deploy", &dr.base, &last_deploy);
		}
	}
	pkg->name = orig_name;
	uint64_t h = head(ctl);
	cr_expect_eq(h, BURST + 2, "two tenants and the burst");
	cr_expect_eq(last_deploy, BURST + 2, "the last change (i = 999) was a deploy");
	watch(&after, ctl);

	struct watcher *ws[] = {&before, &during, &after};
	const char *names[] = {"before", "during", "after"};
	for (int i = 0; i < 3; i++) {
		cr_expect(stream_sub_wait(ws[i]->sub, h, 60000), "watcher %s reached %llu",
		          names[i], (unsigned long long)h);
		pthread_mutex_lock(&ws[i]->mu);
		cr_expect_eq(ws[i]->errors, 0, "watcher %s saw a change out of order", names[i]);
		cr_expect_eq(ws[i]->count, h, "watcher %s saw %llu changes", names[i],
		             (unsigned long long)ws[i]->count);
		cr_expect_eq(ws[i]->last, h);
		pthread_mutex_unlock(&ws[i]->mu);
	}

	/* One more change reaches all three live. */
	ct.tenant = "demogo";
	call(ctl, &noetl__control__descriptor, "CreateToken", &ct.base, NULL);
	for (int i = 0; i < 3; i++) {
		cr_expect(stream_sub_wait(ws[i]->sub, h + 1, 30000));
		pthread_mutex_lock(&ws[i]->mu);
		cr_expect_eq(ws[i]->count, h + 1);
		cr_expect_eq(ws[i]->errors, 0);
		pthread_mutex_unlock(&ws[i]->mu);
	}
	for (int i = 0; i < 3; i++)
		unwatch(ws[i]);
	free(schema);
	jobdef_free(pkg);
	rpc_client_destroy(ctl);
	rpc_client_destroy(repo);
}
