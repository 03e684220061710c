/*
 * guest_impl: the inside of struct guest, shared by guest.c (the ABI) and
 * wasi.c (the host functions the module imports). Not for other files.
 */
#ifndef NOETL_GUEST_IMPL_H
#define NOETL_GUEST_IMPL_H

#include <stdbool.h>

#include "guest.h"
#include "rt.h"
#include "shimabi.h"

SHIMABI_DECL

/* Jobico log levels. */
enum {
	GUEST_DEBUG = 0,
	GUEST_INFO = 1,
	GUEST_WARN = 2,
	GUEST_ERROR = 3,
};

#define GUEST_LINE_MAX  8192u /* longest log line kept; longer ones are cut */
#define GUEST_LINES_MAX 4096u /* most log lines per event */

struct linebuf {
	char buf[GUEST_LINE_MAX]; /* a partial stdout/stderr line */
	uint32_t len;
};

struct guest {
	void *dl;                      /* dlopen handle */
	const struct noetl_shim *shim; /* the module's exported table */
	void *instance;                /* shim->instance_size bytes */
	wasm_rt_memory_t *mem;         /* the instance's memory */
	bool instantiated;             /* instance holds resources to free */
	bool dirty;                    /* a trap or exit left it unusable */
	struct guest_limits lim;

	uint32_t (*malloc_fn)(void *, uint32_t);   /* export malloc */
	void (*free1)(void *, uint32_t);           /* export free(ptr) */
	void (*free2)(void *, uint32_t, uint32_t); /* export free(ptr, size) */
	void (*init_fn)(void *);                   /* export init, or NULL */
	void (*start_fn)(void *);                  /* _initialize or _start */
	uint32_t (*ver_fn)(void *);                /* export ver, or NULL */

	char *event_name;                                     /* last event function looked up */
	void (*event3)(void *, uint32_t, uint32_t, uint32_t); /* (rp, ptr, len) */
	void (*event_mv)(void *, uint32_t, uint32_t, uint64_t *); /* (ptr, len) -> (code, packed) */

	struct guest_log *logs; /* this event's lines */
	uint32_t nlogs;
	uint32_t caplogs;
	uint64_t log_bytes;     /* text kept */
	uint64_t dropped_lines; /* over the limits */
	uint64_t dropped_bytes;
	struct linebuf out[2]; /* stdout, stderr */
	bool closed[3];        /* fd_close on 0, 1, 2 */

	uint8_t *result; /* last result bytes */
	uint32_t result_len;
};

/* Appends a log line (text is copied and made valid UTF-8). */
void guest_log_add(struct guest *g, unsigned level, const char *text, size_t len);

/* Feeds stdout (fd 1) or stderr (fd 2) bytes; whole lines become log lines. */
void guest_write_stdio(struct guest *g, int fd, const uint8_t *p, size_t len);

/* Turns partial stdout/stderr lines into log lines (end of an event). */
void guest_flush_stdio(struct guest *g);

/* True if [ptr, ptr + len) lies inside the guest's memory. */
static inline bool guest_in_bounds(const struct guest *g, uint32_t ptr, uint64_t len)
{
	return (uint64_t)ptr + len <= g->mem->size;
}

#endif
