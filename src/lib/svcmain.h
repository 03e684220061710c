/*
 * svcmain: what every service's main.c does the same way, so that each
 * main.c keeps only what is its own (its options, its service, its log line).
 *
 * A service's main():
 *
 *   static struct svcmain_common common;
 *   static const struct config_option options[] = {
 *           ... the service's own options ...
 *           SVCMAIN_LOG_OPTIONS(&common),
 *           SVCMAIN_TLS_OPTIONS(&common, "PEM certificate for ...", "PEM CA ..."),
 *           {NULL, 0, NULL, NULL, NULL, NULL, NULL},
 *   };
 *   ...
 *   int status;
 *   if (!svcmain_configure(&spec, &common, "queue", argc, argv, &status))
 *           return status;
 *   sigset_t sigs;
 *   svcmain_block_signals(&sigs, false, true);
 *   struct svcmain_server sv = {0};
 *   metrics_create(0, &sv.metrics); ... create the service ...
 *   svcmain_server_start(&sv, &so, queue_service(q), &listen, http_url, &ho);
 *   svcmain_wait(&sigs);
 *   svcmain_server_stop(&sv); ... destroy the service, the metrics ...
 *   config_free(options);
 *
 * The pieces stay separate (svcmain_serve, svcmain_http) for the programs
 * that serve differently: noetl serves four services on inproc:// and TCP,
 * the listener and the executor have no RPC API of their own.
 *
 * The option entries are macros so that the key, default and help text of
 * log.* and tls.* are written once; --help and docs/operations.md (generated
 * from --help) read the same for every program.
 *
 * Threads: all of this runs at start-up in the main thread.
 */
#ifndef NOETL_SVCMAIN_H
#define NOETL_SVCMAIN_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "httpd.h"
#include "rpc.h"

/* The settings every service has; static storage in main.c (config owns
 * the strings: config_free releases them). */
struct svcmain_common {
	char *log_level;    /* log.level: debug|info|warn|error */
	bool log_json;      /* log.json */
	struct rpc_tls tls; /* tls.cert, tls.key, tls.ca (server_name unused) */
};

/*
 * The option entries are laid out by hand, one option a line: the
 * formatter's layout of a braced list inside a macro reads worse.
 */
/* clang-format off */

/* log.level and log.json, as config_option entries writing to *c. */
#define SVCMAIN_LOG_OPTIONS(c)                                                          \
	{"log.level", CONFIG_ENUM, &(c)->log_level, "info", "least severe level logged", \
	 NULL, "debug|info|warn|error"},                                                  \
	{"log.json", CONFIG_BOOL, &(c)->log_json, "false", "log one JSON object per line", \
	 NULL, NULL}

/* tls.cert, tls.key and tls.ca writing to c->tls; the help of the
 * certificate and of the CA say which side of a connection the program is. */
#define SVCMAIN_TLS_OPTIONS(c, cert_help, ca_help)                                        \
	{"tls.cert", CONFIG_STRING, &(c)->tls.cert_file, NULL, cert_help, NULL, NULL},      \
	{"tls.key", CONFIG_STRING, &(c)->tls.key_file, NULL, "PEM private key of tls.cert", \
	 NULL, NULL},                                                                       \
	{"tls.ca", CONFIG_STRING, &(c)->tls.ca_file, NULL, ca_help, NULL, NULL}

/* The TLS help of a service that only listens. */
#define SVCMAIN_TLS_SERVER_OPTIONS(c)                                                     \
	SVCMAIN_TLS_OPTIONS(c, "PEM certificate for tls+tcp:// listeners",                \
	                    "PEM CA that client certificates must chain to")

/* clang-format on */

/*
 * Loads spec's configuration from argv, the environment and a file, and
 * sets up logging as c says, under log_name. Returns true when the program
 * should run. Returns false with *status set when it should exit at once:
 * 0 after printing --help, 2 after printing why the configuration or the
 * arguments (operands are refused) are wrong, as "program: why" on stderr;
 * the options table is freed then. c must be the table's common settings.
 */
bool svcmain_configure(const struct config_spec *spec, const struct svcmain_common *c,
                       const char *log_name, int argc, char **argv, int *status);

/*
 * For checks that config cannot make: prints "program: why" to stderr,
 * frees spec's options table and returns 2, the exit status of a bad
 * configuration. why is a printf format.
 */
int svcmain_refuse(const struct config_spec *spec, const char *why, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * Blocks SIGINT and SIGTERM (and SIGUSR1 and SIGUSR2 with usr) in the
 * calling thread, before any other thread is started so that every thread
 * inherits the mask, and fills *set with them for svcmain_wait. With
 * ignore_sigpipe, a write to a closed socket returns EPIPE instead of
 * killing the process (not for a program whose children must keep the
 * default: SIG_IGN survives exec).
 */
void svcmain_block_signals(sigset_t *set, bool usr, bool ignore_sigpipe);

/* Waits for a signal of set, logs "stopping on signal N" if it is not
 * SIGUSR1/SIGUSR2, and returns it. */
int svcmain_wait(const sigset_t *set);

/* What a service process serves besides its own streams. */
struct svcmain_server {
	struct metrics *metrics; /* the process's; created by the caller, who
	                            destroys it after the service */
	struct rpc_server *rpc;  /* the service's RPC API */
	struct httpd *http;      /* /healthz, /readyz and /metrics; NULL: none */
};

/*
 * Serves svc (borrowed) with so on every URL of urls, then /healthz,
 * /readyz and /metrics (s->metrics) on http_url with ho as svcmain_http
 * does. 0, or the -errno of the step that failed (logged); either way
 * svcmain_server_stop releases what was started.
 */
int svcmain_server_start(struct svcmain_server *s, const struct rpc_server_options *so,
                         ProtobufCService *svc, const struct config_list *urls,
                         const char *http_url, const struct httpd_options *ho);

/* Stops the HTTP server, then the RPC server, so that the service can be
 * destroyed; s->metrics stays. Accepts a zeroed s. */
void svcmain_server_stop(struct svcmain_server *s);

/*
 * Creates an RPC server with so, registers svc (borrowed; it must outlive
 * the server), listens on every URL of urls and starts it. 0 with *out set,
 * or the -errno of the step that failed (rpc logs it) with nothing left
 * behind.
 */
int svcmain_serve(const struct rpc_server_options *so, ProtobufCService *svc,
                  const struct config_list *urls, struct rpc_server **out);

/*
 * Serves /healthz, /readyz and /metrics on url as ho says, for --http.
 * NULL or empty url: nothing is served, 0 and *out = NULL. Otherwise 0 with
 * *out running, or the -errno, logged with the address and what to do.
 */
int svcmain_http(const char *url, const struct httpd_options *ho, struct httpd **out);

#endif
