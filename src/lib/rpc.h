/*
 * rpc: protoc-c services over nng.
 *
 * A unary call is one noetl.Request envelope on an nng req socket, answered
 * by one noetl.Reply on the server's rep socket (proto/rpc.proto). The server
 * side serves any ProtobufCService that protoc-c generated: it looks the
 * method up by name in the service descriptor, unpacks the input with the
 * method's descriptor, and invokes the service's handler with a closure that
 * packs the output. The handler is the generated signature
 *
 *     void h(Noetl__Queue_Service *svc, const Noetl__EnqueueRequest *in,
 *            Noetl__EnqueueReply_Closure done, void *call);
 *
 * and must call done() exactly once before returning: done(&reply, call) on
 * success, or rpc_fail(call, status, fmt, ...) followed by done(NULL, call).
 * `call` also gives the handler the caller's metadata (tenant, token, trace
 * id) and deadline. Handlers run on the server's worker threads, so they may
 * block (on a synced write, say) without stalling nng's own threads; each
 * worker owns one nng context, so a server answers as many calls at once as
 * it has workers.
 *
 * The client packs the request, sends it on a fresh context of one shared req
 * socket (so one client serves any number of threads), and waits for the
 * reply until the call's deadline. Resends are off (NNG_OPT_REQ_RESENDTIME is
 * infinite): a request is sent once per connection, and nng moves it to a new
 * connection if its pipe closes. The dialer reconnects by itself when a
 * server restarts; a call made while no server is connected waits up to the
 * connect wait for one and then fails with UNAVAILABLE.
 *
 * Message size is bounded on both sides (NNG_OPT_RECVMAXSZ plus an explicit
 * check, since inproc does not enforce it): an oversized request is refused
 * with RESOURCE_EXHAUSTED before it is sent or when it arrives.
 *
 * Transports are chosen by URL: inproc://, ipc://, tcp://, tls+tcp://.
 * For tls+tcp the TLS options below name PEM files.
 *
 * Status codes: calls return a Noetl__Status (0 = OK, else the gRPC code),
 * not an errno: that is the language the callers reason in.
 */
#ifndef NOETL_RPC_H
#define NOETL_RPC_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.pb-c.h"

#define RPC_DEFAULT_MAX_MSG    (16u << 20) /* 16 MiB */
#define RPC_DEFAULT_TIMEOUT_MS 10000

/* TLS material for tls+tcp:// URLs. Paths to PEM files; NULL for none. */
struct rpc_tls {
	const char *cert_file;   /* server: certificate chain; client: optional client cert */
	const char *key_file;    /* private key of cert_file */
	const char *ca_file;     /* CA to verify the peer; NULL on a client = no verification */
	const char *server_name; /* client: name to verify; default = host of the URL */
};

/* --- server ------------------------------------------------------------ */

struct rpc_server;

struct rpc_server_options {
	int workers;        /* concurrent calls; default 16 */
	size_t max_msg;     /* largest request accepted; default RPC_DEFAULT_MAX_MSG */
	struct rpc_tls tls; /* used by tls+tcp:// listeners */
	const char *name;   /* for logs, e.g. "queue" */
};

/* Creates a server. Nothing listens until rpc_server_listen. */
int rpc_server_create(const struct rpc_server_options *opt, struct rpc_server **out);

/*
 * Registers a service; svc is borrowed and must outlive the server. Its
 * descriptor's name ("noetl.Queue") is what requests address. Call before
 * rpc_server_start. -EEXIST if a service of that name is registered.
 */
int rpc_server_add(struct rpc_server *s, ProtobufCService *svc);

/* Listens on url; may be called several times (e.g. inproc and tcp). 0 or
 * -errno (the nng error is logged with the URL). */
int rpc_server_listen(struct rpc_server *s, const char *url);

/* Starts the worker threads. */
int rpc_server_start(struct rpc_server *s);

/* Stops the workers (calls in progress finish first) and frees the server;
 * accepts NULL. */
void rpc_server_destroy(struct rpc_server *s);

/* --- inside a handler ---------------------------------------------------- */

/* The caller's metadata; strings are "" when absent, never NULL. Borrowed for
 * the call. */
const char *rpc_tenant(const void *call);
const char *rpc_token(const void *call);
const char *rpc_trace_id(const void *call);
const char *rpc_caller(const void *call);

/* Milliseconds left before the caller gives up (>= 0). */
int64_t rpc_remaining_ms(const void *call);

/* Records the failure to answer with; the handler then calls done(NULL, call).
 * The message says what and where, lowercase, like every user-facing error. */
void rpc_fail(void *call, Noetl__Status status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * Invokes a method of svc in-process, through the same dispatch as the server
 * (method lookup, closure, status) but without sockets: for tests of a
 * service's handlers. in is borrowed; on OK *out is the handler's reply
 * unpacked freshly (free with protobuf_c_message_free_unpacked). On failure
 * *errmsg (if not NULL) gets a malloc'ed message. md may be NULL.
 */
int rpc_invoke_local(ProtobufCService *svc, const char *method, const ProtobufCMessage *in,
                     const Noetl__Metadata *md, ProtobufCMessage **out, char **errmsg);

/* --- client -------------------------------------------------------------- */

struct rpc_client;

struct rpc_client_options {
	size_t max_msg;      /* largest reply accepted; default RPC_DEFAULT_MAX_MSG */
	int connect_wait_ms; /* wait this long for a connection before UNAVAILABLE; default 1000 */
	struct rpc_tls tls;  /* used by tls+tcp:// URLs */
	const char *caller;  /* put in every call's metadata, e.g. "noetlctl" */
};

/* Creates a client that dials url (asynchronously: the server need not be up
 * yet). 0 or -errno (bad URL: -EINVAL). Thread-safe once created. */
int rpc_client_create(const char *url, const struct rpc_client_options *opt,
                      struct rpc_client **out);

/* Closes the client; calls in progress fail with CANCELLED. Accepts NULL. */
void rpc_client_destroy(struct rpc_client *c);

/* The URL the client dials (borrowed). */
const char *rpc_client_url(const struct rpc_client *c);

/* Per-call options; a NULL pointer means all defaults. */
struct rpc_call_options {
	int timeout_ms;     /* deadline from now; 0 = RPC_DEFAULT_TIMEOUT_MS */
	const char *tenant; /* metadata */
	const char *token;
	const char *trace_id; /* generated if NULL */
};

/*
 * Calls method of the service described by svc with input in (borrowed). On
 * OK, *out is the unpacked reply (free with protobuf_c_message_free_unpacked).
 * On failure returns the status and, if errmsg is not NULL, a malloc'ed
 * message: the server's, or DEADLINE_EXCEEDED / UNAVAILABLE / INTERNAL (an
 * undecodable reply) from the client itself. Thread-safe.
 */
int rpc_call(struct rpc_client *c, const ProtobufCServiceDescriptor *svc, const char *method,
             const ProtobufCMessage *in, const struct rpc_call_options *o, ProtobufCMessage **out,
             char **errmsg);

/* "OK", "NOT_FOUND", ... ("UNKNOWN" for values out of range). */
const char *rpc_status_name(int status);

/* True if a call failing with status may succeed when retried as is. */
bool rpc_status_retryable(int status);

/* Converts an nng error (positive) to a negative errno-style code. */
int rpc_nng_errno(int nng_err);

/* Closes an nng socket; every module closes its sockets with this, never
 * with nng_close. nng 1.5.2 hangs in nng_close when a message arrives on
 * one of the socket's pipes at that moment: its reaper waits forever on
 * the pipe, and every later close in the process with it (reproduced with
 * sub and rep sockets over tcp and ipc; tests/lib/test_stream.c and
 * test_rpc.c close under floods of messages). With the receive limit set
 * to one byte first, such a message makes the transport drop the pipe
 * itself, and the close has nothing to race. */
void rpc_nng_close(nng_socket sock);

/* Applies the tls material to a listener or dialer config: for modules that
 * open their own sockets (stream, http). 0 or -errno. */
int rpc_tls_config(const struct rpc_tls *tls, bool server, const char *url, nng_tls_config **out);

#endif
