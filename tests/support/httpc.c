#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct httpc {
	int fd;
	int timeout_ms;
	char *buf; /* bytes read and not consumed */
	size_t len;
	size_t cap;
};

int httpc_connect(int port, int timeout_ms, struct httpc **out)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct httpc *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	*out = c;
	return 0;
}

void httpc_close(struct httpc *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

int httpc_fd(struct httpc *c)
{
	return c->fd;
}

static int wait_fd(struct httpc *c, short ev)
{
	struct pollfd p = {.fd = c->fd, .events = ev};
	int rv = poll(&p, 1, c->timeout_ms);
	if (rv == 0)
		return -ETIMEDOUT;
	return rv < 0 ? -errno : 0;
}

static int write_all(struct httpc *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		int rv = wait_fd(c, POLLOUT);
		if (rv != 0)
			return rv;
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int httpc_send(struct httpc *c, const char *method, const char *path, const char *headers,
               const void *body, size_t len)
{
	char *head = NULL;
	int n = asprintf(&head,
	                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n",
	                 method, path, headers != NULL ? headers : "", len);
	if (n < 0)
		return -ENOMEM;
	int rv = write_all(c, head, (size_t)n);
	free(head);
	if (rv == 0 && len > 0)
		rv = write_all(c, body, len);
	return rv;
}

/* Reads more bytes into the buffer. */
static int fill(struct httpc *c)
{
	if (c->cap - c->len < 4096) {
		size_t ncap = c->cap == 0 ? 16384 : c->cap * 2;
		char *nb = realloc(c->buf, ncap);
		if (nb == NULL)
			return -ENOMEM;
		c->buf = nb;
		c->cap = ncap;
	}
	int rv = wait_fd(c, POLLIN);
	if (rv != 0)
		return rv;
	ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->len += (size_t)n;
	return 0;
}

static char *find_header(const char *head, const char *name)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");
	while (p != NULL && p[2] != '\0') {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ')
				p++;
			return (char *)p;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

const char *httpc_header(const struct httpc_reply *r, const char *name, char *buf, size_t cap)
{
	const char *v = r->head != NULL ? find_header(r->head, name) : NULL;
	if (v == NULL)
		return NULL;
	size_t n = strcspn(v, "\r");
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

int httpc_recv(struct httpc *c, struct httpc_reply *out)
{
	memset(out, 0, sizeof(*out));
	for (;;) {
		char *end = NULL;
		if (c->len >= 4) {
			c->buf[c->len] = '\0';
			end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		}
		if (end != NULL) {
			size_t hl = (size_t)(end - c->buf) + 2;
			char *head = malloc(hl + 1);
			if (head == NULL)
				return -ENOMEM;
			memcpy(head, c->buf, hl);
			head[hl] = '\0';
			int status = 0;
			if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
				free(head);
				return -EPROTO;
			}
			if (status == 100) {
				/* interim reply: drop it and read the real one */
				memmove(c->buf, end + 4, c->len - hl - 2);
				c->len -= hl + 2;
				free(head);
				continue;
			}
			const char *cl = find_header(head, "Content-Length");
			size_t blen = cl != NULL ? strtoul(cl, NULL, 10) : 0;
			size_t total = hl + 2 + blen;
			while (c->len < total) {
				int rv = fill(c);
				if (rv != 0) {
					free(head);
					return rv;
				}
			}
			out->status = status;
			out->head = head;
			out->body = malloc(blen + 1);
			if (out->body == NULL) {
				free(head);
				return -ENOMEM;
			}
			memcpy(out->body, c->buf + hl + 2, blen);
			out->body[blen] = '\0';
			out->body_len = blen;
			const char *conn = find_header(head, "Connection");
			out->closed = conn != NULL && strncasecmp(conn, "close", 5) == 0;
			memmove(c->buf, c->buf + total, c->len - total);
			c->len -= total;
			return 0;
		}
		int rv = fill(c);
		if (rv != 0)
			return rv;
	}
}

int httpc_request(int port, const char *method, const char *path, const char *headers,
                  const void *body, size_t len, struct httpc_reply *out)
{
	struct httpc *c;
	int rv = httpc_connect(port, 30000, &c);
	if (rv != 0)
		return rv;
	rv = httpc_send(c, method, path, headers, body, len);
	if (rv == 0)
		rv = httpc_recv(c, out);
	httpc_close(c);
	return rv;
}

void httpc_reply_free(struct httpc_reply *r)
{
	free(r->head);
	free(r->body);
	r->head = r->body = NULL;
}
