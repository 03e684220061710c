/*
 * testrpc: the one way tests call a service: over a client (testrpc_call,
 * testrpc_ok) or in-process through the server's dispatch (testrpc_local).
 * The test programs used to carry their own copies of these few lines, each
 * with its own idea of a timeout and of who frees the reply and message.
 *
 * Tests wait longer than services do: a call with timeout_ms 0 gets
 * TESTRPC_TIMEOUT_MS, not RPC_DEFAULT_TIMEOUT_MS, because the machine that
 * runs the suite is shared and loaded, and no test asserts on timing.
 */
#ifndef NOETL_TESTRPC_H
#define NOETL_TESTRPC_H

#include <protobuf-c/protobuf-c.h>

#include "repository.pb-c.h"
#include "rpc.h"

#define TESTRPC_TIMEOUT_MS 20000

/*
 * Calls method of svc over c with input in (borrowed) and options o (NULL:
 * defaults; timeout_ms 0 means TESTRPC_TIMEOUT_MS). Returns the status (0 =
 * OK). On OK, *out gets the reply (the caller frees it with
 * protobuf_c_message_free_unpacked); with out NULL the reply is freed here.
 * On failure, *err gets the malloc'ed message (or NULL); with err NULL it is
 * freed here. Thread-safe (as rpc_call).
 */
int testrpc_call(struct rpc_client *c, const ProtobufCServiceDescriptor *svc, const char *method,
                 const ProtobufCMessage *in, const struct rpc_call_options *o,
                 ProtobufCMessage **out, char **err);

/*
 * The same, asserting (Criterion) that the call succeeds; the failure names
 * the service, method, status and message. Returns the reply: the caller
 * frees it. Call it from the test's thread only (a Criterion assertion).
 */
ProtobufCMessage *testrpc_ok(struct rpc_client *c, const ProtobufCServiceDescriptor *svc,
                             const char *method, const ProtobufCMessage *in,
                             const struct rpc_call_options *o);

/*
 * Invokes method of the service svc in-process (rpc_invoke_local: the
 * server's dispatch, no sockets) with metadata md (may be NULL). Returns the
 * status; *out and *err as testrpc_call (either may be NULL).
 */
int testrpc_local(ProtobufCService *svc, const char *method, const ProtobufCMessage *in,
                  const Noetl__Metadata *md, ProtobufCMessage **out, char **err);

/*
 * A PutFile request for tenant's file name of type with content data[0..len)
 * (everything borrowed: the request lives no longer than they do). Every
 * test that uploads a module or a schema builds one.
 */
Noetl__PutFileRequest testrpc_put_file(const char *tenant, const char *name, Noetl__FileType type,
                                       const void *data, size_t len);

#endif
