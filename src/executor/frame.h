/*
 * frame: the wire between the engine and its runner processes.
 *
 * A simple binary framing rather than protobuf: the runner links nothing but
 * libc (it is built without sanitizers and sandboxed, see runner_main.c), and
 * a result frame is built and parsed in a few hundred nanoseconds. Every
 * frame is
 *
 *     u32 length (little-endian, counts what follows)   u8 type   payload
 *
 * and numbers in payloads are little-endian; "bytes" is u32 length + data.
 *
 *   engine -> runner
 *     BATCH   bytes function, u32 count          then count EVENT frames
 *     EVENT   bytes payload
 *     QUIT                                        exit now
 *   runner -> engine
 *     READY   u32 memory pages, u32 pid          module loaded, sandbox on
 *     LOADERR u8 status, bytes reason             module cannot run; exits
 *     RESULT  u8 status, u64 code, u64 duration_ns, bytes reason,
 *             bytes data, u32 nlogs, nlogs x (u8 level, i64 time_ms,
 *             bytes text)                         one per EVENT, in order
 *     CRASH   bytes reason                        sandbox violation; exits
 *
 * The engine trusts nothing in a runner's frames: every length is checked
 * against the frame, statuses against the enum, and a frame larger than
 * FRAME_MAX or malformed kills the runner (a crash of that event).
 */
#ifndef NOETL_FRAME_H
#define NOETL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX (256u << 20) /* largest frame either side accepts */

enum frame_type {
	FRAME_BATCH = 1,
	FRAME_EVENT = 2,
	FRAME_QUIT = 3,
	FRAME_READY = 10,
	FRAME_LOADERR = 11,
	FRAME_RESULT = 12,
	FRAME_CRASH = 13,
};

/* A growable output buffer. Allocation failure sets oom and drops writes. */
struct fbuf {
	uint8_t *p;   /* bytes */
	size_t len;   /* used */
	size_t cap;   /* allocated */
	size_t start; /* offset of the frame being built */
	bool oom;     /* an allocation failed */
};

void fbuf_begin(struct fbuf *b, uint8_t type); /* starts a frame */
void fbuf_end(struct fbuf *b);                 /* patches its length */
void fbuf_u8(struct fbuf *b, uint8_t v);
void fbuf_u32(struct fbuf *b, uint32_t v);
void fbuf_u64(struct fbuf *b, uint64_t v);
void fbuf_bytes(struct fbuf *b, const void *p, size_t len); /* u32 length + data */
void fbuf_release(struct fbuf *b);

/* A reader over one frame's payload. Reading past the end sets bad and
 * yields zeros, so a decoder checks bad once at the end. */
struct fin {
	const uint8_t *p; /* payload */
	size_t len;
	size_t pos;
	bool bad; /* a read ran past the end */
};

uint8_t fin_u8(struct fin *r);
uint32_t fin_u32(struct fin *r);
uint64_t fin_u64(struct fin *r);
/* Points *p at len bytes inside the frame (not copied). */
const uint8_t *fin_bytes(struct fin *r, uint32_t *len);

/* Little-endian u32 at p. */
uint32_t frame_get_u32(const uint8_t *p);

#endif
