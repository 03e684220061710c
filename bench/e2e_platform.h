/*
 * e2e_platform: the all-in-one `noetl` as bench/e2e drives it: a child
 * process on free loopback ports with its data in a temporary directory,
 * set up through `noetlctl` as a user would, observed over its RPC APIs
 * (queue counters, recorder head) and /proc (resident memory).
 *
 * Everything here exits the bench with a message on a failure it cannot
 * work around: a benchmark that cannot run has nothing to report.
 */
#ifndef NOETL_BENCH_E2E_PLATFORM_H
#define NOETL_BENCH_E2E_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	P_CONTROL,
	P_REPOSITORY,
	P_QUEUE,
	P_RECORDER,
	P_CONTROL_PUB,
	P_REPOSITORY_PUB,
	P_RECORDER_PUB,
	P_URLS
};

struct platform {
	const char *noetl;     /* the noetl program (borrowed) */
	const char *noetlctl;  /* the noetlctl program (borrowed) */
	const char *echo_wasm; /* the echo Jobicolet (borrowed) */
	const char **extra;    /* more arguments for noetl (borrowed) */
	int nextra;            /* how many, at most 8 */
	char dir[512];         /* working directory: data/, the job files, logs */
	char log[600];         /* noetl's stdout and stderr */
	pid_t pid;             /* the running noetl, 0 if none */
	int http_port;         /* the listener */
	char urls[P_URLS][64]; /* RPC APIs and change streams */
	struct rpc_client *queue, *recorder;
	char token[128]; /* the bench tenant's API token */
};

/* Picks free ports, starts noetl and waits until its listener is ready. */
void platform_start(struct platform *p);

/* Creates tenant "bench", uploads the echo module and a schema, deploys a job
 * whose "greet" event runs echo (no follow-up events), creates a token. */
void platform_setup(struct platform *p);

/* SIGTERM and wait (SIGKILL after 30 s). Returns the seconds it took. */
double platform_stop(struct platform *p);

/* Sends sig to noetl (SIGUSR1 pauses its executor, SIGUSR2 resumes it). */
void platform_signal(struct platform *p, int sig);

/* The bench tenant's queue counters, summed over its queues. */
struct qstats {
	uint64_t ready, leased, delayed, dead, enqueued, acked, failed;
};
int platform_queue_stats(struct platform *p, struct qstats *out);

/* The Recorder's head revision (every stored record advances it). */
int platform_recorder_head(struct platform *p, uint64_t *out);

/* Records the Recorder holds for the bench tenant. */
int platform_records(struct platform *p, uint64_t *out);

/* 1 if event id has an execution recorded with status OK, 0 if not, <0 if
 * the Recorder could not be asked. */
int platform_executed_ok(struct platform *p, const char *id);

/* The listener's /metrics text (malloc'ed; NULL if it did not answer). */
char *platform_metrics(struct platform *p);

/* A series' value in a /metrics text (exact name with labels), or -1 if
 * absent. */
double platform_metric_in(const char *text, const char *series);

/* The same, scraping /metrics for it. */
double platform_metric(struct platform *p, const char *series);

/* Resident memory of process pid, and of its children together, in KiB
 * (0 if gone). */
long platform_rss_kb(pid_t pid);
long platform_children_rss_kb(pid_t pid);

#endif
