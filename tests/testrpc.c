#include "testrpc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

/* Hands the reply and message to the caller or frees them: the one place
 * that knows the contract of the two out-parameters. */
static int deliver(int st, ProtobufCMessage *reply, char *msg, ProtobufCMessage **out, char **err)
{
	if (out != NULL)
		*out = reply;
	else if (reply != NULL)
		protobuf_c_message_free_unpacked(reply, NULL);
	if (err != NULL)
		*err = msg;
	else
		free(msg);
	return st;
}

int testrpc_call(struct rpc_client *c, const ProtobufCServiceDescriptor *svc, const char *method,
                 const ProtobufCMessage *in, const struct rpc_call_options *o,
                 ProtobufCMessage **out, char **err)
{
	struct rpc_call_options opt = {0};
	if (o != NULL)
		opt = *o;
	if (opt.timeout_ms == 0)
		opt.timeout_ms = TESTRPC_TIMEOUT_MS;
	ProtobufCMessage *reply = NULL;
	char *msg = NULL;
	int st = rpc_call(c, svc, method, in, &opt, &reply, &msg);
	return deliver(st, reply, msg, out, err);
}

ProtobufCMessage *testrpc_ok(struct rpc_client *c, const ProtobufCServiceDescriptor *svc,
                             const char *method, const ProtobufCMessage *in,
                             const struct rpc_call_options *o)
{
	ProtobufCMessage *out = NULL;
	char *err = NULL;
	int st = testrpc_call(c, svc, method, in, o, &out, &err);
	if (st != 0) {
		char why[512];
		snprintf(why, sizeof(why), "%s", err != NULL ? err : "");
		free(err);
		cr_assert_fail("%s.%s: %s: %s", svc->name, method, rpc_status_name(st), why);
	}
	return out;
}

int testrpc_local(ProtobufCService *svc, const char *method, const ProtobufCMessage *in,
                  const Noetl__Metadata *md, ProtobufCMessage **out, char **err)
{
	ProtobufCMessage *reply = NULL;
	char *msg = NULL;
	int st = rpc_invoke_local(svc, method, in, md, &reply, &msg);
	return deliver(st, reply, msg, out, err);
}

Noetl__PutFileRequest testrpc_put_file(const char *tenant, const char *name, Noetl__FileType type,
                                       const void *data, size_t len)
{
	Noetl__PutFileRequest req = NOETL__PUT_FILE_REQUEST__INIT;
	req.tenant = (char *)tenant;
	req.name = (char *)name;
	req.type = type;
	req.content.data = (uint8_t *)data;
	req.content.len = len;
	return req;
}
