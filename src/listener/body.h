/*
 * body: byte-level helpers for request bodies and headers: finding each
 * event of a {"data":[...]} body in the original text (so an event's payload
 * is exactly what the client sent, numbers included, minus insignificant
 * whitespace), webhook signatures and media types.
 *
 * Threads: all functions are pure.
 */
#ifndef NOETL_LISTENER_BODY_H
#define NOETL_LISTENER_BODY_H

#include <stdbool.h>
#include <stddef.h>

/* A byte range of the body. */
struct listener_body_span {
	size_t off;
	size_t len;
};

/*
 * Finds the elements of the array that is the value of the only member of
 * the JSON object in text[0..len) (the body {"data":[e0, e1, ...]}, already
 * known to parse). Writes the span of each element, without surrounding
 * whitespace, to out[0..n). True if the body has exactly n elements there.
 */
bool listener_body_data_spans(const char *text, size_t len, struct listener_body_span *out,
                              size_t n);

/* Copies JSON text src[0..len) to dst without the whitespace outside
 * strings; returns the bytes written (<= len). */
size_t listener_body_compact(const char *src, size_t len, char *dst);

/*
 * Checks a webhook signature header "sha256=<hex>" (hex in either case)
 * against HMAC-SHA256(secret, body), in constant time. False for a
 * malformed header too.
 */
bool listener_body_signature_ok(const char *secret, const void *body, size_t len,
                                const char *header);

/* Writes "sha256=" + lowercase hex HMAC-SHA256(secret, body) into out
 * (72 bytes with NUL): what a sender puts in X-Noetl-Signature. */
void listener_body_signature(const char *secret, const void *body, size_t len, char out[72]);

/* True if a Content-Type value names JSON: application/json or any
 * "+json" type, parameters ignored, case-insensitive. */
bool listener_body_is_json_type(const char *content_type);

#endif
