#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpd.h"
#include "metrics.h"

/* --- a tiny HTTP/1.1 client ---------------------------------------------- */

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect to %d", port);
	return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		cr_assert_gt(n, 0);
		data += n;
		len -= (size_t)n;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

struct resp {
	int status;
	char head[4096]; /* status line and headers */
	char body[8192];
	size_t body_len;
};

/* Reads one response; body by Content-Length (none for HEAD or when
 * absent). Returns false on EOF before a status line. */
static bool read_resp(int fd, struct resp *r, bool head_request)
{
	size_t n = 0;
	memset(r, 0, sizeof(*r));
	while (n < sizeof(r->head) - 1) {
		ssize_t k = recv(fd, r->head + n, 1, 0);
		if (k <= 0)
			return false;
		n++;
		if (n >= 4 && memcmp(r->head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	r->head[n] = '\0';
	cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1, "bad status line: %s", r->head);
	const char *cl = strcasestr(r->head, "\r\nContent-Length:");
	if (cl == NULL || head_request)
		return true;
	size_t want = strtoul(cl + 17, NULL, 10);
	cr_assert_lt(want, sizeof(r->body));
	while (r->body_len < want) {
		ssize_t k = recv(fd, r->body + r->body_len, want - r->body_len, 0);
		cr_assert_gt(k, 0, "connection closed inside the body");
		r->body_len += (size_t)k;
	}
	return true;
}

/* The value of a header in r (static buffer), or NULL. */
static const char *header(const struct resp *r, const char *name)
{
	static char val[256];
	char pat[64];
	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	const char *p = strcasestr(r->head, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	size_t i = 0;
	while (p[i] != '\r' && i < sizeof(val) - 1) {
		val[i] = p[i];
		i++;
	}
	val[i] = '\0';
	return val;
}

static bool closed_by_peer(int fd)
{
	char c;
	return recv(fd, &c, 1, 0) == 0;
}

static struct resp get(int port, const char *path)
{
	struct resp r;
	char req[256];
	int fd = dial(port);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	send_str(fd, req);
	cr_assert(read_resp(fd, &r, false));
	close(fd);
	return r;
}

/* --- fixtures ------------------------------------------------------------ */

static struct httpd *start(const struct httpd_options *opt, struct httpd **out)
{
	struct httpd *h;
	cr_assert_eq(httpd_create("http://127.0.0.1:0", opt, &h), 0);
	*out = h;
	return h;
}

static void go(struct httpd *h)
{
	cr_assert_eq(httpd_start(h), 0);
	cr_assert_gt(httpd_port(h), 0);
}

static bool ready_flag;

static bool is_ready(void *arg, char *why, size_t cap)
{
	(void)arg;
	if (!ready_flag)
		snprintf(why, cap, "store is still opening");
	return ready_flag;
}

/* Echoes what the handler saw, one field a line. */
static void h_echo(struct httpd_req *r, void *arg)
{
	(void)arg;
	size_t len;
	const void *body = httpd_req_body(r, &len);
	const char *key = httpd_req_header(r, "X-Idempotency-Key");
	httpd_reply_header(r, "X-Seen", "yes");
	httpd_replyf(r, 202, "%s|%s|%s|%s|%s|%.*s", httpd_req_method(r), httpd_req_path(r),
	             httpd_req_rest(r), httpd_req_query(r), key ? key : "-", (int)len,
	             (const char *)body);
}

static void h_empty(struct httpd_req *r, void *arg)
{
	(void)arg;
	httpd_reply(r, 200, NULL, NULL, 0);
}

static void h_nocontent(struct httpd_req *r, void *arg)
{
	(void)arg;
	httpd_reply(r, 204, NULL, NULL, 0);
}

static void h_silent(struct httpd_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

/* --- tests ------------------------------------------------------------------- */

Test(httpd, healthz_answers_ok_with_a_content_length)
{
	struct httpd *h;
	go(start(NULL, &h));
	struct resp r = get(httpd_port(h), "/healthz");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 3);
	cr_assert_eq(memcmp(r.body, "ok\n", 3), 0);
	cr_assert_str_eq(header(&r, "Content-Length"), "3");
	httpd_destroy(h);
}

Test(httpd, readyz_follows_the_callback_and_says_why_not)
{
	struct httpd *h;
	struct httpd_options o = {.ready = is_ready};
	ready_flag = false;
	go(start(&o, &h));
	struct resp r = get(httpd_port(h), "/readyz");
	cr_assert_eq(r.status, 503);
	cr_assert(strstr(r.body, "not ready: store is still opening") != NULL, "%s", r.body);
	ready_flag = true;
	r = get(httpd_port(h), "/readyz");
	cr_assert_eq(r.status, 200);
	httpd_destroy(h);
}

Test(httpd, metrics_serves_the_registry_in_prometheus_text)
{
	struct metrics *m;
	struct metric *c;
	cr_assert_eq(metrics_create(0, &m), 0);
	cr_assert_eq(metrics_counter(m, "noetl_test_total", "A test counter.", NULL, &c), 0);
	metric_add(c, NULL, 7);
	struct httpd *h;
	struct httpd_options o = {.metrics = m};
	go(start(&o, &h));
	(void)get(httpd_port(h), "/healthz");
	struct resp r = get(httpd_port(h), "/metrics");
	cr_assert_eq(r.status, 200);
	cr_assert(strncmp(header(&r, "Content-Type"), "text/plain; version=0.0.4", 25) == 0);
	cr_assert(strstr(r.body, "# TYPE noetl_test_total counter\nnoetl_test_total 7\n") != NULL,
	          "%s", r.body);
	cr_assert(strstr(r.body, "noetl_http_requests_total{method=\"GET\",route=\"/healthz\","
	                         "code=\"200\"} 1\n") != NULL,
	          "%s", r.body);
	httpd_destroy(h);
	metrics_destroy(m);
}

Test(httpd, keep_alive_serves_several_requests_and_empty_replies_say_content_length_0)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "GET", "/empty", 0, 0, h_empty, NULL), 0);
	cr_assert_eq(httpd_add_handler(h, "GET", "/nocontent", 0, 0, h_nocontent, NULL), 0);
	go(h);
	int fd = dial(httpd_port(h));
	struct resp r;
	for (int i = 0; i < 3; i++) {
		send_str(fd, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n");
		cr_assert(read_resp(fd, &r, false), "reply %d", i);
		cr_assert_eq(r.status, 200);
		cr_assert_str_eq(header(&r, "Content-Length"), "0", "%s", r.head);
		send_str(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
		cr_assert(read_resp(fd, &r, false));
		cr_assert_eq(r.status, 200);
	}
	/* 204 carries no Content-Length at all (RFC 9110) */
	send_str(fd, "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 204);
	cr_assert_null(header(&r, "Content-Length"), "%s", r.head);
	/* HEAD: the GET route's headers, no body */
	send_str(fd, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert(read_resp(fd, &r, true));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(header(&r, "Content-Length"), "3");
	send_str(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.body_len, 3);
	close(fd);
	httpd_destroy(h);
}

Test(httpd, a_prefix_route_gets_method_path_rest_query_headers_and_body)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "POST", "/events/", 0, 0, h_echo, NULL), 0);
	go(h);
	int fd = dial(httpd_port(h));
	const char *body = "{\"data\":[1]}";
	char req[512];
	snprintf(req, sizeof(req),
	         "POST /events/acme/greet?wait=1 HTTP/1.1\r\nHost: x\r\n"
	         "X-Idempotency-Key: k1\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(body), body);
	send_str(fd, req);
	struct resp r;
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 202);
	cr_assert_str_eq(header(&r, "X-Seen"), "yes");
	cr_assert_str_eq(r.body, "POST|/events/acme/greet|acme/greet|wait=1|k1|{\"data\":[1]}\n");
	/* the same connection goes on: the body was consumed exactly */
	send_str(fd, "POST /events/x/y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	cr_assert(read_resp(fd, &r, false));
	cr_assert_str_eq(r.body, "POST|/events/x/y|x/y||-|\n");
	close(fd);
	httpd_destroy(h);
}

Test(httpd, unknown_paths_get_404_and_wrong_methods_405_with_allow)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "POST", "/events/", 0, 0, h_echo, NULL), 0);
	go(h);
	struct resp r = get(httpd_port(h), "/nope");
	cr_assert_eq(r.status, 404);
	cr_assert_str_eq(r.body, "no such path: '/nope'\n");
	r = get(httpd_port(h), "/events/a/b");
	cr_assert_eq(r.status, 405);
	cr_assert_str_eq(header(&r, "Allow"), "POST");
	r = get(httpd_port(h), "/healthzz");
	cr_assert_eq(r.status, 404);

	int fd = dial(httpd_port(h));
	send_str(fd, "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 405);
	cr_assert_str_eq(header(&r, "Allow"), "GET, HEAD");
	close(fd);
	httpd_destroy(h);
}

Test(httpd, a_body_over_the_limit_gets_413_without_being_read)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "POST", "/small", 10, 0, h_echo, NULL), 0);
	go(h);
	int fd = dial(httpd_port(h));
	send_str(fd, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
	struct resp r;
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 413);
	cr_assert(strstr(r.body, "over the limit of 10 bytes") != NULL, "%s", r.body);
	cr_assert(closed_by_peer(fd));
	close(fd);
	httpd_destroy(h);
}

Test(httpd, chunked_and_malformed_lengths_are_refused)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "POST", "/in", 0, 0, h_echo, NULL), 0);
	go(h);
	struct resp r;
	int fd = dial(httpd_port(h));
	send_str(fd, "POST /in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "3\r\nabc\r\n0\r\n\r\n");
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 411);
	close(fd);
	fd = dial(httpd_port(h));
	send_str(fd, "POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n");
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 400);
	close(fd);
	httpd_destroy(h);
}

Test(httpd, expect_100_continue_is_answered_before_the_body_is_read)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "POST", "/in", 0, 0, h_echo, NULL), 0);
	go(h);
	int fd = dial(httpd_port(h));
	send_str(fd, "POST /in HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	             "Content-Length: 5\r\n\r\n");
	struct resp r;
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 100);
	send_str(fd, "hello");
	cr_assert(read_resp(fd, &r, false));
	cr_assert_eq(r.status, 202);
	cr_assert_str_eq(r.body, "POST|/in|||-|hello\n");
	close(fd);
	httpd_destroy(h);
}

Test(httpd, a_handler_that_forgets_to_reply_yields_500)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "GET", "/silent", 0, 0, h_silent, NULL), 0);
	go(h);
	struct resp r = get(httpd_port(h), "/silent");
	cr_assert_eq(r.status, 500);
	httpd_destroy(h);
}

/* A handler that blocks until released, to fill the worker pool. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int gate_entered;

static void h_gate(struct httpd_req *r, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate_mu);
	gate_entered++;
	pthread_cond_broadcast(&gate_cv);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	httpd_replyf(r, 200, "passed");
}

Test(httpd, a_full_queue_sheds_load_with_503_and_health_still_answers)
{
	struct httpd *h;
	struct httpd_options o = {.workers = 1, .queue_max = 1};
	gate_open = false;
	gate_entered = 0;
	start(&o, &h);
	cr_assert_eq(httpd_add_handler(h, "GET", "/slow", 0, 0, h_gate, NULL), 0);
	go(h);
	int port = httpd_port(h);
	const char *req = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
	int a = dial(port);
	send_str(a, req);
	pthread_mutex_lock(&gate_mu);
	while (gate_entered == 0)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	/* the worker is busy: one of b, c waits in the queue, the other is shed */
	int b = dial(port), c = dial(port);
	send_str(b, req);
	send_str(c, req);
	struct pollfd pf[2] = {{.fd = b, .events = POLLIN}, {.fd = c, .events = POLLIN}};
	cr_assert_eq(poll(pf, 2, 20000), 1);
	int shed = (pf[0].revents & POLLIN) ? b : c;
	int queued = shed == b ? c : b;
	struct resp r;
	cr_assert(read_resp(shed, &r, false));
	cr_assert_eq(r.status, 503);
	cr_assert_str_eq(header(&r, "Retry-After"), "1");
	/* inline routes do not need a worker */
	r = get(port, "/healthz");
	cr_assert_eq(r.status, 200);

	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	cr_assert(read_resp(a, &r, false));
	cr_assert_eq(r.status, 200);
	cr_assert(read_resp(queued, &r, false));
	cr_assert_eq(r.status, 200);
	close(a);
	close(b);
	close(c);
	httpd_destroy(h);
}

Test(httpd, two_servers_on_ephemeral_ports_coexist)
{
	struct httpd *h1, *h2;
	go(start(NULL, &h1));
	go(start(NULL, &h2));
	cr_assert_neq(httpd_port(h1), httpd_port(h2));
	cr_assert_eq(get(httpd_port(h1), "/healthz").status, 200);
	cr_assert_eq(get(httpd_port(h2), "/healthz").status, 200);
	httpd_destroy(h1);
	httpd_destroy(h2);
}

Test(httpd, destroy_returns_while_a_client_is_sending_a_body)
{
	struct httpd *h;
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "POST", "/in", 0, 0, h_echo, NULL), 0);
	go(h);
	int fd = dial(httpd_port(h));
	send_str(fd, "POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part");
	/* make sure the request reached the handler stage: a second request
	 * on another connection is answered after it was read */
	cr_assert_eq(get(httpd_port(h), "/healthz").status, 200);
	httpd_destroy(h);
	cr_assert(closed_by_peer(fd));
	close(fd);
}

Test(httpd, bad_urls_routes_and_late_routes_are_refused)
{
	struct httpd *h;
	cr_assert_eq(httpd_create("tcp://127.0.0.1:0", NULL, &h), -EINVAL);
	cr_assert_eq(httpd_create("http://[::1", NULL, &h), -EINVAL);
	start(NULL, &h);
	cr_assert_eq(httpd_add_handler(h, "get", "/x", 0, 0, h_echo, NULL), -EINVAL);
	cr_assert_eq(httpd_add_handler(h, "HEAD", "/x", 0, 0, h_echo, NULL), -EINVAL);
	cr_assert_eq(httpd_add_handler(h, "GET", "x", 0, 0, h_echo, NULL), -EINVAL);
	cr_assert_eq(httpd_add_handler(h, "GET", "/healthz", 0, 0, h_echo, NULL), -EEXIST);
	go(h);
	cr_assert_eq(httpd_add_handler(h, "GET", "/late", 0, 0, h_echo, NULL), -EBUSY);
	httpd_destroy(h);
}

/* A client GET over nng's HTTP client (TLS when tls is not NULL). */
static int nng_get(const char *url, nng_tls_config *tls, int timeout_ms, uint16_t *code, char *body,
                   size_t cap)
{
	nng_url *u;
	nng_http_client *c;
	nng_http_req *req;
	nng_http_res *res;
	nng_aio *aio;
	cr_assert_eq(nng_url_parse(&u, url), 0);
	cr_assert_eq(nng_http_client_alloc(&c, u), 0);
	if (tls != NULL)
		cr_assert_eq(nng_http_client_set_tls(c, tls), 0);
	cr_assert_eq(nng_http_req_alloc(&req, u), 0);
	cr_assert_eq(nng_http_res_alloc(&res), 0);
	cr_assert_eq(nng_aio_alloc(&aio, NULL, NULL), 0);
	nng_aio_set_timeout(aio, timeout_ms);
	nng_http_client_transact(c, req, res, aio);
	nng_aio_wait(aio);
	int rv = nng_aio_result(aio);
	if (rv == 0) {
		void *data;
		size_t len;
		*code = nng_http_res_get_status(res);
		nng_http_res_get_data(res, &data, &len);
		snprintf(body, cap, "%.*s", (int)len, (char *)data);
	}
	nng_aio_free(aio);
	nng_http_res_free(res);
	nng_http_req_free(req);
	nng_http_client_free(c);
	nng_url_free(u);
	return rv;
}

Test(httpd, https_serves_with_the_given_certificate)
{
	char dir[] = "/tmp/noetl-httpd-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char cmd[512], cert[128], key[128];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
	         "-subj /CN=localhost >/dev/null 2>&1",
	         key, cert);
	cr_assert_eq(system(cmd), 0, "openssl could not make a test certificate");

	nng_tls_config *scfg, *ccfg;
	cr_assert_eq(nng_tls_config_alloc(&scfg, NNG_TLS_MODE_SERVER), 0);
	char pem_cert[8192] = {0}, pem_key[8192] = {0};
	FILE *f = fopen(cert, "r");
	cr_assert_gt(fread(pem_cert, 1, sizeof(pem_cert) - 1, f), 0);
	fclose(f);
	f = fopen(key, "r");
	cr_assert_gt(fread(pem_key, 1, sizeof(pem_key) - 1, f), 0);
	fclose(f);
	cr_assert_eq(nng_tls_config_own_cert(scfg, pem_cert, pem_key, NULL), 0);

	struct httpd *h;
	struct httpd_options o = {.tls = scfg};
	cr_assert_eq(httpd_create("https://127.0.0.1:0", &o, &h), 0);
	go(h);

	cr_assert_eq(nng_tls_config_alloc(&ccfg, NNG_TLS_MODE_CLIENT), 0);
	cr_assert_eq(nng_tls_config_ca_file(ccfg, cert), 0);
	cr_assert_eq(nng_tls_config_server_name(ccfg, "localhost"), 0);
	cr_assert_eq(nng_tls_config_auth_mode(ccfg, NNG_TLS_AUTH_MODE_REQUIRED), 0);
	char url[64], body[64];
	uint16_t code = 0;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", httpd_port(h));
	/* nng 1.5.2's TLS client now and then never completes a transaction
	 * on a loaded machine (1-2% of runs next to a test that floods RPC
	 * servers: no connection left, no thread at work, the aio just runs
	 * into its timeout). A client tries again, and so does this test; the
	 * server must answer one of three tries. */
	int rv = -1;
	for (int i = 0; i < 3 && rv != 0; i++)
		rv = nng_get(url, ccfg, 6000, &code, body, sizeof(body));
	cr_assert_eq(rv, 0, "%s", nng_strerror(rv));
	cr_assert_eq(code, 200);
	cr_assert_str_eq(body, "ok\n");

	/* plain HTTP on the TLS port gets no answer */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", httpd_port(h));
	cr_assert_neq(nng_get(url, NULL, 20000, &code, body, sizeof(body)), 0);

	httpd_destroy(h);
	nng_tls_config_free(ccfg);
	nng_tls_config_free(scfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(httpd, a_client_that_leaves_during_its_handler_costs_nothing)
{
	struct httpd *h;
	struct httpd_options o = {.workers = 1};
	gate_open = false;
	gate_entered = 0;
	start(&o, &h);
	cr_assert_eq(httpd_add_handler(h, "GET", "/slow", 0, 0, h_gate, NULL), 0);
	go(h);
	int fd = dial(httpd_port(h));
	send_str(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
	pthread_mutex_lock(&gate_mu);
	while (gate_entered == 0)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	close(fd); /* gone before the reply */
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	/* the worker is free again and the server still answers */
	cr_assert_eq(get(httpd_port(h), "/slow").status, 200);
	httpd_destroy(h);
}

struct client_run {
	int port;
	int ok;
};

static void *client_loop(void *arg)
{
	struct client_run *c = arg;
	int fd = dial(c->port);
	struct resp r;
	for (int i = 0; i < 50; i++) {
		char req[256];
		snprintf(req, sizeof(req),
		         "POST /events/t/e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n%02d",
		         i);
		send_str(fd, req);
		if (read_resp(fd, &r, false) && r.status == 202)
			c->ok++;
	}
	close(fd);
	return NULL;
}

Test(httpd, many_clients_at_once_are_all_answered)
{
	struct httpd *h;
	struct metrics *m;
	cr_assert_eq(metrics_create(0, &m), 0);
	struct httpd_options o = {.workers = 3, .metrics = m};
	start(&o, &h);
	cr_assert_eq(httpd_add_handler(h, "POST", "/events/", 0, 0, h_echo, NULL), 0);
	go(h);
	pthread_t th[8];
	struct client_run runs[8];
	for (int i = 0; i < 8; i++) {
		runs[i] = (struct client_run){.port = httpd_port(h)};
		cr_assert_eq(pthread_create(&th[i], NULL, client_loop, &runs[i]), 0);
	}
	int total = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		total += runs[i].ok;
	}
	cr_assert_eq(total, 400);
	struct resp r = get(httpd_port(h), "/metrics");
	cr_assert(strstr(r.body, "noetl_http_requests_total{method=\"POST\",route=\"/events/\","
	                         "code=\"202\"} 400\n") != NULL,
	          "%s", r.body);
	httpd_destroy(h);
	metrics_destroy(m);
}
