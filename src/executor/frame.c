/*
 * frame: encoding and decoding of engine <-> runner frames. See frame.h.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

static bool reserve(struct fbuf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void put(struct fbuf *b, const void *p, size_t n)
{
	if (n > 0 && reserve(b, n)) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
	}
}

void fbuf_u8(struct fbuf *b, uint8_t v)
{
	put(b, &v, 1);
}

void fbuf_u32(struct fbuf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(b, x, 4);
}

void fbuf_u64(struct fbuf *b, uint64_t v)
{
	fbuf_u32(b, (uint32_t)v);
	fbuf_u32(b, (uint32_t)(v >> 32));
}

void fbuf_bytes(struct fbuf *b, const void *p, size_t len)
{
	fbuf_u32(b, (uint32_t)len);
	put(b, p, len);
}

void fbuf_begin(struct fbuf *b, uint8_t type)
{
	b->start = b->len;
	fbuf_u32(b, 0);
	fbuf_u8(b, type);
}

void fbuf_end(struct fbuf *b)
{
	if (b->oom)
		return;
	uint32_t n = (uint32_t)(b->len - b->start - 4);
	uint8_t *x = b->p + b->start;
	x[0] = (uint8_t)n;
	x[1] = (uint8_t)(n >> 8);
	x[2] = (uint8_t)(n >> 16);
	x[3] = (uint8_t)(n >> 24);
}

void fbuf_release(struct fbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

uint32_t frame_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const uint8_t *take(struct fin *r, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

uint8_t fin_u8(struct fin *r)
{
	const uint8_t *p = take(r, 1);
	return p ? p[0] : 0;
}

uint32_t fin_u32(struct fin *r)
{
	const uint8_t *p = take(r, 4);
	return p ? frame_get_u32(p) : 0;
}

uint64_t fin_u64(struct fin *r)
{
	uint64_t lo = fin_u32(r);
	uint64_t hi = fin_u32(r);
	return lo | hi << 32;
}

const uint8_t *fin_bytes(struct fin *r, uint32_t *len)
{
	*len = fin_u32(r);
	const uint8_t *p = take(r, *len);
	if (p == NULL)
		*len = 0;
	return p;
}
