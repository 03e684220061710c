/*
 * guest: one loaded module in a runner process, called through the
 * Jobicolet ABI. See guest.c for the calling sequence.
 *
 * Threads: one thread per process (see rt.h). Ownership: everything a guest
 * returns points into the guest and stays valid until its next call.
 */
#ifndef NOETL_GUEST_H
#define NOETL_GUEST_H

#include <stddef.h>
#include <stdint.h>

struct guest;

struct guest_limits {
	uint32_t memory_pages;     /* cap on linear memory, in 64 KiB pages */
	uint32_t max_result_bytes; /* larger results fail the event */
	uint32_t max_log_bytes;    /* log text kept per event; the rest is counted and dropped */
};

struct guest_log {
	uint8_t level;   /* Jobico level: 0 debug .. 5 panic */
	int64_t time_ms; /* Unix milliseconds */
	uint32_t len;    /* bytes of text */
	char *text;      /* UTF-8, NUL-terminated */
};

struct guest_result {
	int status;    /* enum engine_status */
	uint64_t code; /* the handler's code (or proc_exit's) */
	uint8_t *data; /* result bytes; owned by the guest until the next event */
	uint32_t len;
	char reason[640];    /* "" or why status is not ENGINE_OK */
	int64_t duration_ns; /* time inside the guest */
};

/*
 * Loads the shared object at path (made by compile.c), instantiates it under
 * lim and runs its start-up exports (_initialize or _start, then init). On
 * failure returns a negative errno, writes an enum engine_status to *status
 * (ENGINE_COMPILE, ENGINE_TRAP or ENGINE_OOM) and a reason into err.
 */
int guest_open(const char *path, const struct guest_limits *lim, struct guest **out, int *status,
               char *err, size_t errcap);

/*
 * Calls the exported function fn for one event with data[0..len) and fills
 * *res. Always returns 0: every failure is a status in *res. After a trap or
 * proc_exit the instance is thrown away and made afresh before the next
 * event, so one bad event cannot leave state behind for the next.
 */
int guest_event(struct guest *g, const char *fn, const uint8_t *data, uint32_t len,
                struct guest_result *res);

/* The log lines of the last event (or of start-up). */
size_t guest_logs(const struct guest *g, const struct guest_log **logs);

/* Frees the instance and unloads the module; accepts NULL. */
void guest_close(struct guest *g);

#endif
