/*
 * cluster: the real noetl platform as separate processes, for the
 * end-to-end tests.
 *
 * A cluster is noetl-control, noetl-repository, noetl-queue, noetl-recorder,
 * noetl-executor and noetl-listener started from the build tree, each with
 * its data in one fresh temporary directory and every address given on its
 * command line: the RPC APIs and change streams on ipc:// sockets in that
 * directory (or on loopback TCP with opt.tcp), the listener and every
 * service's health endpoint on loopback ports that were free a moment ago. Nothing uses the default
 * addresses, so clusters of different tests run side by side.
 *
 * Tests act on a cluster only as a user would: through noetlctl (given a
 * config file naming the cluster's addresses, cluster_ctl) and over HTTP
 * (cluster_post, cluster_get). The processes' output goes to one log file
 * per service in the directory (<name>.log), which a failing test prints.
 *
 * Every service can be stopped (SIGTERM, SIGKILL) and started again alone,
 * with the same addresses and data. cluster_destroy stops whatever still
 * runs, checks each log for sanitizer reports (a report fails the test: the
 * ASan build runs the services sanitized) and removes the directory.
 *
 * For debugging: NOETL_E2E_KEEP=1 keeps the directory and its logs;
 * NOETL_E2E_HOLD=N keeps the cluster running N seconds before it stops.
 *
 * The executor compiles modules into a cache shared by every cluster of one
 * build tree (compiles are atomic; see src/executor/compile.h), so only the
 * first test to use a module pays for compiling it.
 */
#ifndef NOETL_E2E_CLUSTER_H
#define NOETL_E2E_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "httpc.h"

enum svc {
	SVC_CONTROL,
	SVC_REPOSITORY,
	SVC_QUEUE,
	SVC_RECORDER,
	SVC_EXECUTOR,
	SVC_LISTENER,
	SVC_COUNT,
};

/* Extra settings of a cluster; zero values take the defaults. */
struct cluster_options {
	/* noetl-control: how often the scheduler looks for due ticks
	 * (--schedule-interval, e.g. "100ms"), and how much faster than real
	 * time its clock runs (--control.debug.clock-rate; 0 = real time). */
	const char *schedule_interval;
	int clock_rate;
	/* noetl-executor: wall-clock limit per event (default "2s") and lease
	 * time (default: the executor's own). */
	const char *exec_timeout;
	const char *exec_lease;
	/* noetl-queue: retry defaults (default base "200ms", max "1s"). */
	const char *retry_base;
	const char *retry_max;
	/* RPC and streams over loopback TCP instead of ipc:// sockets. */
	bool tcp;
	/* Start no executor (a test that starts it later, or never). */
	bool no_executor;
	/* More arguments for one service (NULL-terminated), or NULL. */
	const char *const *extra[SVC_COUNT];
	/* Environment variables ("NAME=value", NULL-terminated) set for one
	 * service, or NULL. */
	const char *const *env[SVC_COUNT];
};

struct cluster {
	char dir[256];
	char url[SVC_COUNT][320];    /* RPC URL (control..recorder) */
	char stream[SVC_COUNT][320]; /* change streams (control, repository, recorder) */
	int http_port[SVC_COUNT];    /* listener: webhooks; the others: /healthz, /metrics */
	pid_t pid[SVC_COUNT];        /* 0 when not running */
	char ctl_config[320];        /* noetlctl's config file */
	char token[160];             /* a token of the tenant set up by cluster_tenant */
	struct cluster_options opt;
	int starts[SVC_COUNT]; /* how often each was started (for log messages) */
};

/* The program and log names of a service: "control", "queue" ... */
const char *cluster_svc_name(enum svc s);

/* Removes NOETL_* variables of the developer's environment (NOETL_QUEUE_URL
 * would beat noetlctl's config file and point it at another platform), but
 * for the test suite's own (NOETL_SOURCE_ROOT, NOETL_BUILD_ROOT, NOETL_E2E_*). */
void cluster_clean_env(void);

/* Starts every service (the executor unless opt->no_executor) and waits
 * until each answers. opt may be NULL. Fails the test if one does not come
 * up (and prints its log). */
void cluster_create(struct cluster *c, const struct cluster_options *opt);

/* Stops everything (SIGTERM, then SIGKILL after 20 s), fails the test on a
 * sanitizer report in any log, removes the directory. */
void cluster_destroy(struct cluster *c);

/* Starts one service with its usual arguments and waits until it answers. */
void cluster_start(struct cluster *c, enum svc s);

/* Sends sig to one service and reaps it (SIGKILL after 20 s if sig did not
 * stop it). Returns its wait status. */
int cluster_stop(struct cluster *c, enum svc s, int sig);

/* Starts one service without waiting for it (for restarts under load). */
void cluster_spawn(struct cluster *c, enum svc s);

/* True when the service's process runs; reaps it (pid 0) if it exited. */
bool cluster_alive(struct cluster *c, enum svc s);

/* True when the service's /readyz says 200. */
bool cluster_ready(struct cluster *c, enum svc s);

/*
 * Runs noetlctl with the cluster's addresses: args is the rest of the
 * command line (a printf format; shell words, so quote file names). *out
 * (may be NULL) gets stdout and stderr, malloc'ed. Returns the exit status.
 */
int cluster_ctl(struct cluster *c, char **out, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Starts noetlctl in the background (for --follow) with its stdout and
 * stderr going to the file out; returns its pid (stop it with SIGTERM). */
pid_t cluster_ctl_spawn(struct cluster *c, const char *out, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* cluster_ctl that must succeed (exit 0): fails the test with the output
 * otherwise. Returns the output (malloc'ed) or NULL if out is not wanted. */
char *cluster_ctl_ok(struct cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Repeats a noetlctl command until its output contains want (or, with want
 * starting with '!', does not), up to timeout_ms. Returns the last output
 * (malloc'ed) on success; fails the test with it on timeout. */
char *cluster_ctl_until(struct cluster *c, const char *want, int timeout_ms, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * Sets up tenant with a token (kept in c->token), uploads the SDK's
 * modules it names (e.g. "echo", "error": sdk/examples/<name>.wasm as
 * <name>.wasm) — a NULL-terminated list.
 */
void cluster_tenant(struct cluster *c, const char *tenant, const char *const modules[]);

/* Writes text to a file in the cluster's directory; returns its path in
 * out. */
void cluster_file(struct cluster *c, const char *name, const char *text, char *out, size_t cap);

/* Deploys YAML text (written to a file first) with noetlctl; update picks
 * `deploy --update`. Fails the test if the deploy fails. When an executor
 * runs, waits until it has compiled the package's modules and made it live
 * (it logs that), so that no attempt is spent on an executor that does not
 * know the package yet. */
void cluster_deploy(struct cluster *c, const char *yaml, bool update);

/* How many times the executor said it made tenant's package live (its log):
 * take it before a deploy, update or rollback, and give it to
 * cluster_wait_live after. */
int cluster_live_count(struct cluster *c, const char *tenant, const char *package);

/* Waits until the executor made the package live more than before times. */
void cluster_wait_live(struct cluster *c, const char *tenant, const char *package, int before);

/*
 * POSTs body to path on the listener with the tenant's token (token NULL:
 * c->token; "" : no Authorization header). Returns the HTTP status, or -1
 * if no reply came; *out (may be NULL) gets the reply.
 */
int cluster_post(struct cluster *c, const char *path, const char *token, const char *body,
                 struct httpc_reply *out);

/* cluster_post with extra headers ("Name: value\r\n" lines, or NULL). */
int cluster_post_with(struct cluster *c, const char *path, const char *token, const char *headers,
                      const char *body, struct httpc_reply *out);

/* POSTs until the reply is not 404 (the listener learns of a deploy over
 * its stream, a moment later), up to timeout_ms. Returns the last status. */
int cluster_post_deployed(struct cluster *c, const char *path, const char *body,
                          struct httpc_reply *out, int timeout_ms);

/* GETs path from a service's HTTP port. Returns the status or -1. */
int cluster_get(struct cluster *c, enum svc s, const char *path, struct httpc_reply *out);

/* The first event id in a 202 reply's body ({"ids":["..."]}) into out. */
bool cluster_first_id(const struct httpc_reply *r, char *out, size_t cap);

/* Prints the last lines of every service's log to stderr (for a failure). */
void cluster_dump_logs(struct cluster *c);

/* The count of non-overlapping occurrences of needle in hay. */
int cluster_count(const char *hay, const char *needle);

/* Sleeps ms milliseconds. */
void cluster_sleep_ms(int ms);

/* Milliseconds of a monotonic clock. */
long long cluster_now_ms(void);

#endif
