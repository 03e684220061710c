/*
 * svcmain: the start-up every service process shares. Configuration and
 * its refusals, the RPC server on its URLs and the health/metrics server,
 * against the echo fixture service over real sockets.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo.h"
#include "metrics.h"
#include "svcmain.h"
#include "testutil.h"

static struct svcmain_common common;
static char *name;
static const struct config_option options[] = {
        {"test.name", CONFIG_STRING, &name, "n", "a name", NULL, NULL},
        SVCMAIN_LOG_OPTIONS(&common),
        SVCMAIN_TLS_SERVER_OPTIONS(&common),
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};
static const struct config_spec spec = {
        .program = "noetl-test",
        .usage = "[options]",
        .summary = "a test",
        .options = options,
};

static bool configure(int *status, int argc, char **argv)
{
	return svcmain_configure(&spec, &common, "test", argc, argv, status);
}

Test(svcmain, flags_fill_the_common_settings)
{
	char *argv[] = {"noetl-test", "--log.level=debug", "--tls.cert=/c.pem", "--test.name=x",
	                NULL};
	int status = -1;
	cr_assert(configure(&status, 4, argv));
	cr_expect_eq(status, -1, "status is written only when the program should exit");
	cr_expect_str_eq(common.log_level, "debug");
	cr_expect_str_eq(common.tls.cert_file, "/c.pem");
	cr_expect_null(common.tls.ca_file);
	cr_expect_str_eq(name, "x");
	config_free(options);
}

Test(svcmain, help_exits_with_0)
{
	char *argv[] = {"noetl-test", "--help", NULL};
	int status = -1;
	cr_assert_not(configure(&status, 2, argv));
	cr_expect_eq(status, 0);
	cr_expect_null(name, "the table was freed");
}

Test(svcmain, an_operand_or_a_bad_value_exits_with_2)
{
	char *extra[] = {"noetl-test", "extra", NULL};
	int status = -1;
	cr_assert_not(configure(&status, 2, extra));
	cr_expect_eq(status, 2);
	char *bad[] = {"noetl-test", "--log.level=loud", NULL};
	status = -1;
	cr_assert_not(configure(&status, 2, bad));
	cr_expect_eq(status, 2);
	cr_expect_null(common.log_level, "the table was freed");
}

Test(svcmain, a_refusal_frees_the_table_and_gives_2)
{
	char *argv[] = {"noetl-test", NULL};
	int status;
	cr_assert(configure(&status, 1, argv));
	cr_expect_eq(svcmain_refuse(&spec, "test.name must be %s", "short"), 2);
	cr_expect_null(name);
}

Test(svcmain, a_server_answers_calls_and_health_until_stopped)
{
	struct echo echo;
	echo_init(&echo);
	char url[64], http[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", testutil_free_port());
	int hport = testutil_free_port();
	snprintf(http, sizeof(http), "http://127.0.0.1:%d", hport);
	char *items[] = {"inproc://svcmain-test", url};
	struct config_list urls = {.count = 2, .items = items};
	struct svcmain_server sv = {0};
	cr_assert_eq(metrics_create(0, &sv.metrics), 0);
	struct rpc_server_options so = {.workers = 2, .name = "test"};
	struct httpd_options ho = {.name = "test"};
	cr_assert_eq(svcmain_server_start(&sv, &so, &echo.svc.base, &urls, http, &ho), 0);
	cr_expect_eq(httpd_port(sv.http), hport);

	struct rpc_client *c;
	cr_assert_eq(rpc_client_create(url, NULL, &c), 0);
	Noetl__EchoRequest req = NOETL__ECHO_REQUEST__INIT;
	req.data.data = (uint8_t *)"hi";
	req.data.len = 2;
	ProtobufCMessage *out = NULL;
	cr_expect_eq(rpc_call(c, &noetl__echo__descriptor, "Echo", &req.base, NULL, &out, NULL), 0);
	protobuf_c_message_free_unpacked(out, NULL);
	rpc_client_destroy(c);

	svcmain_server_stop(&sv);
	cr_expect_null(sv.rpc);
	cr_expect_null(sv.http);
	svcmain_server_stop(&sv); /* again: nothing left to stop */
	metrics_destroy(sv.metrics);
}

Test(svcmain, a_url_that_cannot_be_served_leaves_nothing_running)
{
	struct echo echo;
	echo_init(&echo);
	char *items[] = {"inproc://svcmain-bad", "nosuch://x"};
	struct config_list urls = {.count = 2, .items = items};
	struct rpc_server_options so = {.workers = 1, .name = "test"};
	struct rpc_server *s = NULL;
	cr_expect_neq(svcmain_serve(&so, &echo.svc.base, &urls, &s), 0);
	cr_expect_null(s);
	/* the first URL was let go with the server */
	items[1] = "inproc://svcmain-bad";
	urls.count = 1;
	cr_assert_eq(svcmain_serve(&so, &echo.svc.base, &urls, &s), 0);
	rpc_server_destroy(s);
}

Test(svcmain, no_http_address_serves_no_http)
{
	struct httpd_options ho = {.name = "test"};
	struct httpd *h = (struct httpd *)&ho; /* anything but NULL */
	cr_expect_eq(svcmain_http("", &ho, &h), 0);
	cr_expect_null(h);
	h = (struct httpd *)&ho;
	cr_expect_eq(svcmain_http(NULL, &ho, &h), 0);
	cr_expect_null(h);
}
