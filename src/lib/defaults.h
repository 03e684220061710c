/*
 * defaults: the local addresses noetl listens on when nothing else is said.
 *
 * The all-in-one `noetl` serves every API here, each service started on its
 * own also defaults to its address here, and `noetlctl` dials them, so that
 * the quick start needs no flags at all. Loopback TCP rather than ipc:// so
 * that the same addresses work from containers with host networking and on
 * systems without a writable /tmp; bind to 0.0.0.0 explicitly to serve other
 * hosts.
 *
 * Ports, one block of ten per kind:
 *   8080       listener: webhooks, /healthz, /readyz, /metrics (HTTP)
 *   7401-7404  RPC APIs: control, repository, queue, recorder (nng req/rep)
 *   7411-7414  change streams: control, repository, recorder (nng pub/sub)
 *   7421-7425  HTTP health and metrics: control, repository, queue,
 *              recorder, executor
 * docs/configuration.md lists them for users; change both together.
 */
#ifndef NOETL_DEFAULTS_H
#define NOETL_DEFAULTS_H

#define NOETL_DEFAULT_LISTENER_URL "http://127.0.0.1:8080"

#define NOETL_DEFAULT_CONTROL_URL    "tcp://127.0.0.1:7401"
#define NOETL_DEFAULT_REPOSITORY_URL "tcp://127.0.0.1:7402"
#define NOETL_DEFAULT_QUEUE_URL      "tcp://127.0.0.1:7403"
#define NOETL_DEFAULT_RECORDER_URL   "tcp://127.0.0.1:7404"

#define NOETL_DEFAULT_CONTROL_STREAM_URL    "tcp://127.0.0.1:7411"
#define NOETL_DEFAULT_REPOSITORY_STREAM_URL "tcp://127.0.0.1:7412"
#define NOETL_DEFAULT_RECORDER_STREAM_URL   "tcp://127.0.0.1:7414"

#define NOETL_DEFAULT_CONTROL_HTTP_URL    "http://127.0.0.1:7421"
#define NOETL_DEFAULT_REPOSITORY_HTTP_URL "http://127.0.0.1:7422"
#define NOETL_DEFAULT_QUEUE_HTTP_URL      "http://127.0.0.1:7423"
#define NOETL_DEFAULT_RECORDER_HTTP_URL   "http://127.0.0.1:7424"
#define NOETL_DEFAULT_EXECUTOR_HTTP_URL   "http://127.0.0.1:7425"

/* noetlctl's own configuration file ("~/" is $HOME). */
#define NOETL_DEFAULT_CTL_CONFIG "~/.config/noetl/noetlctl.yaml"

#endif
