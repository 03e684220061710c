/*
 * httpc: a tiny blocking HTTP/1.1 client over plain sockets, for the
 * listener's tests and bench/ingest. One struct httpc is one keep-alive
 * connection to 127.0.0.1:port; replies must carry Content-Length (httpd's
 * do). Every read and write has a timeout, so a test never hangs on a
 * server that does not answer.
 */
#ifndef NOETL_HTTPC_H
#define NOETL_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

struct httpc;

struct httpc_reply {
	int status;      /* 200, 404, ... */
	char *head;      /* status line and headers, NUL-terminated (malloc'ed) */
	char *body;      /* body, NUL-terminated (malloc'ed) */
	size_t body_len; /* without the NUL */
	bool closed;     /* the server said Connection: close */
};

/* Connects to 127.0.0.1:port; timeout_ms bounds every later read and write.
 * 0 or -errno. */
int httpc_connect(int port, int timeout_ms, struct httpc **out);

/* Closes; accepts NULL. */
void httpc_close(struct httpc *c);

/* The socket, for tests that write raw bytes. */
int httpc_fd(struct httpc *c);

/* Sends one request. headers: extra "Name: value\r\n" lines or NULL; a
 * Content-Length is added for body (NULL/0 = none). 0 or -errno. */
int httpc_send(struct httpc *c, const char *method, const char *path, const char *headers,
               const void *body, size_t len);

/* Reads one reply. 0, -ETIMEDOUT, -ECONNRESET (closed before a whole
 * reply), -EPROTO (not HTTP). */
int httpc_recv(struct httpc *c, struct httpc_reply *out);

/* Connects, sends, reads and closes. */
int httpc_request(int port, const char *method, const char *path, const char *headers,
                  const void *body, size_t len, struct httpc_reply *out);

/* The value of header name in r (case-insensitive) copied into buf, or NULL. */
const char *httpc_header(const struct httpc_reply *r, const char *name, char *buf, size_t cap);

void httpc_reply_free(struct httpc_reply *r);

#endif
