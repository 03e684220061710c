/*
 * client: the services as noetlctl sees them: one RPC client each, made on
 * first use, and failures told in words with what to do next.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rpc.h"

static const char *const service_names[CLI_SERVICES] = {
        [CLI_CONTROL] = "control",   [CLI_REPOSITORY] = "repository", [CLI_QUEUE] = "queue",
        [CLI_RECORDER] = "recorder", [CLI_LISTENER] = "listener",
};

const char *cli_service_name(enum cli_service s)
{
	return (unsigned)s < CLI_SERVICES ? service_names[s] : "?";
}

int cli_fail(struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(cli->err, "%s: ", cli->prog);
	vfprintf(cli->err, fmt, ap);
	fputc('\n', cli->err);
	va_end(ap);
	return CLI_FAIL;
}

int cli_usage(struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(cli->err, "%s: ", cli->prog);
	vfprintf(cli->err, fmt, ap);
	fprintf(cli->err, "\n(see '%s --help')\n", cli->prog);
	va_end(ap);
	return CLI_USAGE;
}

/* A call made without a live server should fail within the CLI's patience,
 * not hang on reconnects: wait for a connection at most this long. */
static int connect_wait(const struct cli *cli)
{
	return cli->timeout_ms > 0 && cli->timeout_ms < 3000 ? (int)cli->timeout_ms : 3000;
}

int cli_client(struct cli *cli, enum cli_service s, struct rpc_client **out)
{
	if (s == CLI_LISTENER)
		return cli_usage(cli, "the listener has no RPC API");
	if (cli->clients[s] == NULL) {
		struct rpc_client_options o = {
		        .connect_wait_ms = connect_wait(cli),
		        .caller = "noetlctl",
		};
		int rv = rpc_client_create(cli->urls[s], &o, &cli->clients[s]);
		if (rv != 0)
			return cli_fail(
			        cli,
			        "cannot use '%s' as the %s address: %s (set it with --%s or "
			        "NOETL_%s_URL)",
			        cli->urls[s], service_names[s], strerror(-rv), service_names[s],
			        s == CLI_CONTROL      ? "CONTROL"
			        : s == CLI_REPOSITORY ? "REPOSITORY"
			        : s == CLI_QUEUE      ? "QUEUE"
			                              : "RECORDER");
	}
	*out = cli->clients[s];
	return CLI_OK;
}

void cli_print_call_error(struct cli *cli, enum cli_service s, const char *method, int status,
                          const char *msg)
{
	const char *name = cli_service_name(s);
	const char *url = (unsigned)s < CLI_SERVICES ? cli->urls[s] : "?";
	if (msg == NULL || *msg == '\0')
		msg = rpc_status_name(status);
	char upper[16];
	size_t i;
	for (i = 0; name[i] != '\0' && i + 1 < sizeof(upper); i++)
		upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
	upper[i] = '\0';

	/* UNAVAILABLE from the rpc client itself ("noetl.Svc.Method: cannot
	 * reach ...") means the service is down; from the service, that
	 * something it depends on is (Control when the Repository is down):
	 * say the service's own words then. */
	if (status == NOETL__STATUS__UNAVAILABLE && strncmp(msg, "noetl.", 6) != 0) {
		cli_fail(cli, "the %s cannot do %s now: %s", name, method, msg);
		return;
	}
	switch (status) {
	case NOETL__STATUS__UNAVAILABLE:
		cli_fail(cli,
		         "cannot reach the %s at %s: is it running? (check with '%s status'; "
		         "point to it with --%s URL or NOETL_%s_URL)",
		         name, url, cli->prog, name, upper);
		break;
	case NOETL__STATUS__DEADLINE_EXCEEDED:
		cli_fail(cli,
		         "the %s at %s did not answer %s in time (%s): it may be overloaded; "
		         "retry, or allow longer with --timeout",
		         name, url, method, msg);
		break;
	case NOETL__STATUS__UNAUTHENTICATED:
		cli_fail(cli, "the %s refused %s: %s (pass a token with --token or NOETL_TOKEN)",
		         name, method, msg);
		break;
	case NOETL__STATUS__PERMISSION_DENIED:
		cli_fail(cli, "not allowed: %s (the token lacks the right for %s)", msg, method);
		break;
	case NOETL__STATUS__NOT_FOUND:
		cli_fail(cli, "not found: %s", msg);
		break;
	case NOETL__STATUS__ALREADY_EXISTS:
		cli_fail(cli, "already exists: %s", msg);
		break;
	case NOETL__STATUS__INVALID_ARGUMENT:
		cli_fail(cli, "invalid request: %s", msg);
		break;
	case NOETL__STATUS__FAILED_PRECONDITION:
		cli_fail(cli, "cannot do that now: %s", msg);
		break;
	case NOETL__STATUS__RESOURCE_EXHAUSTED:
		cli_fail(cli, "the %s is out of capacity or the request is too large: %s", name,
		         msg);
		break;
	case NOETL__STATUS__UNIMPLEMENTED:
		cli_fail(cli,
		         "the %s at %s does not support %s (%s): are noetlctl and the service the "
		         "same version? ('%s status' shows the service's)",
		         name, url, method, msg, cli->prog);
		break;
	default:
		cli_fail(cli, "the %s failed on %s: %s (%s)", name, method, msg,
		         rpc_status_name(status));
		break;
	}
}

int cli_call(struct cli *cli, enum cli_service s, const ProtobufCServiceDescriptor *svc,
             const char *method, const ProtobufCMessage *in, const char *tenant,
             ProtobufCMessage **out)
{
	struct rpc_client *c;
	int rv = cli_client(cli, s, &c);
	if (rv != CLI_OK)
		return rv;
	struct rpc_call_options o = {
	        .timeout_ms = cli->timeout_ms > 0 ? (int)cli->timeout_ms : 0,
	        .tenant = tenant != NULL ? tenant : cli->tenant,
	        .token = cli->token,
	};
	char *msg = NULL;
	ProtobufCMessage *reply = NULL;
	int status = rpc_call(c, svc, method, in, &o, &reply, &msg);
	if (status == NOETL__STATUS__OK) {
		if (out != NULL)
			*out = reply;
		else
			protobuf_c_message_free_unpacked(reply, NULL);
		return CLI_OK;
	}
	cli_print_call_error(cli, s, method, status, msg);
	free(msg);
	return CLI_FAIL;
}
