/*
 * procs: the real noetl-repository and noetl-control binaries as child
 * processes, over ipc:// sockets in a temporary directory (no TCP ports, so
 * tests never collide with each other or with a running platform), with
 * their logs in that directory.
 */
#ifndef NOETL_TEST_CONTROL_PROCS_H
#define NOETL_TEST_CONTROL_PROCS_H

#include <stddef.h>
#include <sys/types.h>

struct procs {
	char dir[256];         /* temporary directory: stores, sockets, logs */
	char ctl_url[320];     /* Control's RPC address */
	char ctl_stream[320];  /* Control's change stream */
	char repo_url[320];    /* the Repository's RPC address */
	char repo_stream[320]; /* the Repository's change stream */
	pid_t repo;            /* noetl-repository, 0 when stopped */
	pid_t ctl;             /* noetl-control, 0 when stopped */
};

/* Starts both and waits until they answer GetHealth. */
void procs_start(struct procs *p);
/* Stops (SIGTERM, asserting a clean exit) and starts Control again. */
void procs_stop_control(struct procs *p);
void procs_start_control(struct procs *p);
/* Stops both and removes the directory. */
void procs_stop(struct procs *p);
/* "NOETL_CONTROL_URL=... NOETL_REPOSITORY_URL=... NOETL_CONTROL_STREAM=...
 * HOME=<dir>": the environment a noetlctl command line needs. */
void procs_env(const struct procs *p, char *buf, size_t cap);

#endif
