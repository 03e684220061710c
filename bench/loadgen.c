/*
 * loadgen: see loadgen.h.
 *
 * One thread drives every connection through epoll, so the client costs one
 * core at most however many connections it holds (the machine the figures
 * come from has two, shared with the server). The open loop's schedule is
 * kept by a timerfd armed at the absolute time the next request is due, so
 * requests leave on time to the microsecond rather than to epoll's
 * millisecond.
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define TIMER_TAG UINT32_MAX

struct conn {
	int fd;            /* -1 once it could not be reopened */
	bool busy;         /* a request is out and its reply not yet in */
	bool want_out;     /* registered for EPOLLOUT (a partial write) */
	int64_t origin_us; /* latency origin of the request out */
	size_t woff;       /* request bytes written */
	char *rbuf;        /* reply bytes read and not yet consumed */
	size_t rlen, rcap;
};

struct run {
	const struct load_options *o;
	struct load_result *res;
	int ep, tfd;
	struct conn *c;
	int *idle; /* stack of idle connection indexes */
	int nidle, nbusy;
	uint32_t *lat; /* microseconds */
	size_t nlat, caplat;
	int64_t start_us, last_reply_us, last_progress_us;
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (q == NULL) {
		fprintf(stderr, "loadgen: out of memory\n");
		abort();
	}
	return q;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static int watch(struct run *r, int i, int op)
{
	struct epoll_event ev = {.events = EPOLLIN | (r->c[i].want_out ? EPOLLOUT : 0),
	                         .data.u32 = (uint32_t)i};
	return epoll_ctl(r->ep, op, r->c[i].fd, &ev);
}

static void make_idle(struct run *r, int i)
{
	r->c[i].busy = false;
	r->idle[r->nidle++] = i;
}

/* Drops connection i (whatever it had out is lost) and opens a new one. */
static void reopen(struct run *r, int i)
{
	struct conn *c = &r->c[i];
	if (c->busy) {
		r->res->failures++;
		r->nbusy--;
		c->busy = false;
	} else {
		for (int k = 0; k < r->nidle; k++)
			if (r->idle[k] == i) {
				r->idle[k] = r->idle[--r->nidle];
				break;
			}
	}
	if (c->fd >= 0) {
		epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->rlen = 0;
	c->want_out = false;
	c->fd = dial(r->o->port);
	if (c->fd < 0 || watch(r, i, EPOLL_CTL_ADD) != 0) {
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return; /* lost for the rest of the run */
	}
	make_idle(r, i);
}

static void flush(struct run *r, int i)
{
	struct conn *c = &r->c[i];
	while (c->busy && c->woff < r->o->request_len) {
		ssize_t n = write(c->fd, r->o->request + c->woff, r->o->request_len - c->woff);
		if (n > 0) {
			c->woff += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->want_out) {
				c->want_out = true;
				watch(r, i, EPOLL_CTL_MOD);
			}
			return;
		} else {
			reopen(r, i);
			return;
		}
	}
	if (c->want_out) {
		c->want_out = false;
		watch(r, i, EPOLL_CTL_MOD);
	}
}

static void send_on(struct run *r, int64_t origin)
{
	int i = r->idle[--r->nidle];
	struct conn *c = &r->c[i];
	c->busy = true;
	c->origin_us = origin;
	c->woff = 0;
	r->nbusy++;
	r->res->sent++;
	flush(r, i);
}

static void keep_id(struct run *r, const char *body, size_t len)
{
	const char *p = memmem(body, len, "\"ids\":[\"", 8);
	if (p == NULL)
		return;
	p += 8;
	const char *q = memchr(p, '"', len - (size_t)(p - body));
	if (q == NULL || q - p > 64)
		return;
	struct load_result *res = r->res;
	res->ids = xrealloc(res->ids, (res->nids + 1) * sizeof(char *));
	res->ids[res->nids++] = strndup(p, (size_t)(q - p));
}

/* A header's value in head[0, len) (case-insensitive name), or NULL. */
static const char *header(const char *head, size_t len, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = head; p != NULL && p < head + len;) {
		const char *eol = memmem(p, (size_t)(head + len - p), "\r\n", 2);
		if (eol == NULL)
			break;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
			return p + nl + 1;
		p = eol + 2;
	}
	return NULL;
}

static void reply(struct run *r, int i, int status, const char *body, size_t blen)
{
	struct conn *c = &r->c[i];
	int64_t now = mono_us();
	int64_t us = now - c->origin_us;
	if (r->nlat == r->caplat) {
		r->caplat = r->caplat ? 2 * r->caplat : 65536;
		r->lat = xrealloc(r->lat, r->caplat * sizeof(*r->lat));
	}
	r->lat[r->nlat++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (status == 202) {
		r->res->accepted++;
		if (r->o->keep_id_every > 0 &&
		    r->res->accepted % r->o->keep_id_every == 1 % r->o->keep_id_every)
			keep_id(r, body, blen);
	} else {
		r->res->rejected++;
		r->res->last_status = status;
	}
	r->last_reply_us = now;
	r->last_progress_us = now;
	r->nbusy--;
	make_idle(r, i);
}

static void readable(struct run *r, int i)
{
	struct conn *c = &r->c[i];
	for (;;) {
		if (c->rcap - c->rlen < 4096) {
			c->rcap = c->rcap ? 2 * c->rcap : 16384;
			c->rbuf = xrealloc(c->rbuf, c->rcap);
		}
		ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		reopen(r, i); /* closed or broken */
		return;
	}
	for (;;) {
		char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
		if (end == NULL)
			return;
		size_t hlen = (size_t)(end - c->rbuf) + 4;
		int status = 0;
		if (!c->busy || c->rlen < 12 || strncmp(c->rbuf, "HTTP/1.", 7) != 0 ||
		    (status = atoi(c->rbuf + 9)) < 100) {
			reopen(r, i); /* not a reply to anything we asked */
			return;
		}
		const char *cl = header(c->rbuf, hlen, "Content-Length");
		size_t blen = cl != NULL ? strtoul(cl, NULL, 10) : 0;
		if (c->rlen < hlen + blen)
			return;
		const char *conn = header(c->rbuf, hlen, "Connection");
		bool close_after =
		        conn != NULL && strncasecmp(conn + strspn(conn, " "), "close", 5) == 0;
		reply(r, i, status, c->rbuf + hlen, blen);
		memmove(c->rbuf, c->rbuf + hlen + blen, c->rlen - hlen - blen);
		c->rlen -= hlen + blen;
		if (close_after) {
			reopen(r, i);
			return;
		}
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const struct run *r, double p)
{
	if (r->nlat == 0)
		return 0;
	return r->lat[(size_t)(p / 100.0 * (double)(r->nlat - 1) + 0.5)] / 1000.0;
}

static void arm(struct run *r, int64_t at_us)
{
	struct itimerspec its = {0};
	its.it_value.tv_sec = at_us / 1000000;
	its.it_value.tv_nsec = (at_us % 1000000) * 1000;
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int load_run(const struct load_options *o, struct load_result *out)
{
	struct load_result res = {0};
	struct run r = {.o = o, .res = &res};
	int rc = 0;
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	r.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	r.c = calloc((size_t)o->conns, sizeof(*r.c));
	r.idle = calloc((size_t)o->conns, sizeof(int));
	if (r.ep < 0 || r.tfd < 0 || r.c == NULL || r.idle == NULL) {
		rc = -ENOMEM;
		goto done;
	}
	struct epoll_event tev = {.events = EPOLLIN, .data.u32 = TIMER_TAG};
	epoll_ctl(r.ep, EPOLL_CTL_ADD, r.tfd, &tev);
	for (int i = 0; i < o->conns; i++) {
		r.c[i].fd = -1;
		reopen(&r, i);
	}
	if (r.nidle == 0) {
		rc = -ECONNREFUSED;
		goto done;
	}

	/* What will be offered: a count, a time, or both. */
	uint64_t limit = o->max_requests > 0 ? o->max_requests : UINT64_MAX;
	if (o->open && o->seconds > 0) {
		uint64_t by_time = (uint64_t)(o->seconds * o->rate);
		if (by_time < limit)
			limit = by_time;
	}
	int timeout_ms = o->reply_timeout_ms > 0 ? o->reply_timeout_ms : 30000;
	r.start_us = mono_us();
	r.last_progress_us = r.start_us;
	int64_t end_us = o->seconds > 0 ? r.start_us + (int64_t)(o->seconds * 1e6) : INT64_MAX;
	double step_us = o->open ? 1e6 / o->rate : 0;
	for (;;) {
		int64_t now = mono_us();
		if (o->open) {
			/* every request due by now, oldest first, on idle connections */
			uint64_t due = (uint64_t)((double)(now - r.start_us) / step_us) + 1;
			if (due > limit)
				due = limit;
			if (due > res.sent && due - res.sent > res.max_backlog)
				res.max_backlog = due - res.sent;
			while (res.sent < due && r.nidle > 0)
				send_on(&r, r.start_us + (int64_t)((double)res.sent * step_us));
			if (due < limit)
				arm(&r, r.start_us + (int64_t)((double)due * step_us));
			if (res.sent == limit && r.nbusy == 0)
				break;
		} else {
			bool offering = now < end_us && res.sent < limit;
			while (offering && r.nidle > 0 && res.sent < limit)
				send_on(&r, now);
			if (!offering && r.nbusy == 0)
				break;
		}
		if (r.nbusy == 0 && r.nidle == 0)
			break; /* every connection is lost */
		if (r.nbusy > 0 && now - r.last_progress_us > (int64_t)timeout_ms * 1000) {
			for (int i = 0; i < o->conns; i++)
				if (r.c[i].busy)
					reopen(&r, i);
			r.last_progress_us = now;
		}
		int wait = 100;
		if (!o->open && now < end_us && (end_us - now) / 1000 + 1 < wait)
			wait = (int)((end_us - now) / 1000) + 1;
		struct epoll_event evs[64];
		int n = epoll_wait(r.ep, evs, 64, wait);
		for (int k = 0; k < n; k++) {
			uint32_t i = evs[k].data.u32;
			if (i == TIMER_TAG) {
				uint64_t ticks;
				if (read(r.tfd, &ticks, sizeof(ticks)) < 0) {
					/* nothing: the schedule is recomputed from the clock */
				}
				continue;
			}
			if (r.c[i].fd < 0)
				continue;
			if (evs[k].events & EPOLLOUT)
				flush(&r, (int)i);
			if (r.c[i].fd >= 0 && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				readable(&r, (int)i);
		}
	}
	int64_t last = r.last_reply_us > r.start_us ? r.last_reply_us : mono_us();
	res.elapsed = (double)(last - r.start_us) / 1e6;
	res.rate = res.elapsed > 0 ? (double)res.accepted / res.elapsed : 0;
	qsort(r.lat, r.nlat, sizeof(*r.lat), cmp_u32);
	res.p50 = pct(&r, 50);
	res.p99 = pct(&r, 99);
	res.p999 = pct(&r, 99.9);
	res.max = r.nlat > 0 ? r.lat[r.nlat - 1] / 1000.0 : 0;
done:
	for (int i = 0; r.c != NULL && i < o->conns; i++) {
		if (r.c[i].fd >= 0)
			close(r.c[i].fd);
		free(r.c[i].rbuf);
	}
	free(r.c);
	free(r.idle);
	free(r.lat);
	if (r.ep >= 0)
		close(r.ep);
	if (r.tfd >= 0)
		close(r.tfd);
	if (rc != 0) {
		load_result_free(&res);
		return rc;
	}
	*out = res;
	return 0;
}

void load_result_free(struct load_result *r)
{
	for (size_t i = 0; i < r->nids; i++)
		free(r->ids[i]);
	free(r->ids);
	r->ids = NULL;
	r->nids = 0;
}
