/*
 * loadgen: a small HTTP/1.1 load generator for the benchmarks: one thread,
 * epoll, many keep-alive connections to 127.0.0.1, one request per
 * connection at a time (no pipelining).
 *
 * Two ways to offer load:
 *   closed loop  every connection sends its next request as soon as the
 *                reply to the previous one is in: the most the server
 *                answers at that concurrency;
 *   open loop    request k is due at start + k / rate whatever the replies
 *                do. A due request goes out on an idle connection; if all
 *                are busy it waits in the client (max_backlog counts how
 *                many waited at most). Its latency is counted from when it
 *                was due, not from when it went out, so a server stall
 *                shows in the figures instead of slowing the client down
 *                (no coordinated omission).
 * Latency is from the (due or send) time to the last byte of the reply, for
 * every reply whatever its status; non-202 replies are also counted apart.
 */
#ifndef NOETL_BENCH_LOADGEN_H
#define NOETL_BENCH_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct load_options {
	int port;            /* 127.0.0.1:port */
	const char *request; /* the whole request, sent as is each time (borrowed) */
	size_t request_len;
	int conns;              /* keep-alive connections */
	bool open;              /* open loop at rate; else closed loop */
	double rate;            /* open loop: requests per second */
	double seconds;         /* stop offering load after this long; 0: no limit */
	uint64_t max_requests;  /* stop after this many requests; 0: no limit */
	unsigned keep_id_every; /* keep the first id of every Nth 202 reply; 0: none */
	int reply_timeout_ms;   /* give up on outstanding replies after this; 0: 30 s */
};

struct load_result {
	uint64_t sent;              /* requests written */
	uint64_t accepted;          /* 202 replies */
	uint64_t rejected;          /* other replies */
	int last_status;            /* status of the last non-202 reply */
	uint64_t failures;          /* requests lost to a connection error or timeout */
	double elapsed;             /* seconds from the start to the last reply */
	double rate;                /* accepted / elapsed */
	double p50, p99, p999, max; /* latency, milliseconds */
	size_t max_backlog;         /* open loop: most requests due and not yet sent */
	char **ids;                 /* kept event ids (malloc'ed strings) */
	size_t nids;
};

/*
 * Runs the load and fills *out (free with load_result_free). 0, or -errno if
 * not a single connection could be opened. Connections that break are
 * reopened; what they lose is counted in failures.
 */
int load_run(const struct load_options *o, struct load_result *out);

void load_result_free(struct load_result *r);

#endif
