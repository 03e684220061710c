/*
 * status: is everything up? Asks every service at once: the RPC services
 * their GetHealth method, the listener (HTTP only) its /readyz. A service
 * that does not answer within --wait is "unreachable"; the exit code is 0
 * only when every service answered.
 */
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.pb-c.h"
#include "control.pb-c.h"
#include "queue.pb-c.h"
#include "recorder.pb-c.h"
#include "repository.pb-c.h"
#include "rpc.h"

static int64_t wait_ms;

static const struct config_option status_options[] = {
        {"wait", CONFIG_DURATION, &wait_ms, "2s", "give each service this long to answer", "w",
         NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

/* One service's answer. */
struct probe {
	struct cli *cli;
	enum cli_service svc;
	int wait; /* ms */
	pthread_t thread;
	bool reachable;
	bool ready;
	char version[64];
	char detail[256]; /* why not ready, or why unreachable */
	uint64_t revision;
	int64_t uptime_ms;
	bool has_health; /* revision and uptime are known */
};

static const ProtobufCServiceDescriptor *descriptor(enum cli_service s)
{
	switch (s) {
	case CLI_CONTROL:
		return &noetl__control__descriptor;
	case CLI_REPOSITORY:
		return &noetl__repository__descriptor;
	case CLI_QUEUE:
		return &noetl__queue__descriptor;
	case CLI_RECORDER:
		return &noetl__recorder__descriptor;
	default:
		return NULL;
	}
}

static void *probe_rpc(void *arg)
{
	struct probe *p = arg;
	struct rpc_client *c = NULL;
	struct rpc_client_options co = {.connect_wait_ms = p->wait, .caller = "noetlctl"};
	int rv = rpc_client_create(p->cli->urls[p->svc], &co, &c);
	if (rv != 0) {
		snprintf(p->detail, sizeof(p->detail), "bad address: %s", strerror(-rv));
		return NULL;
	}
	Noetl__Empty in = NOETL__EMPTY__INIT;
	struct rpc_call_options o = {.timeout_ms = p->wait, .token = p->cli->token};
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	int status = rpc_call(c, descriptor(p->svc), "GetHealth", &in.base, &o, &out, &msg);
	if (status == NOETL__STATUS__OK) {
		Noetl__Health *h = (Noetl__Health *)out;
		p->reachable = true;
		p->ready = h->ready;
		p->has_health = true;
		snprintf(p->version, sizeof(p->version), "%s", h->version);
		snprintf(p->detail, sizeof(p->detail), "%s", h->ready ? "" : h->detail);
		p->revision = h->revision;
		p->uptime_ms = h->uptime_ms;
		protobuf_c_message_free_unpacked(out, NULL);
	} else if (status == NOETL__STATUS__UNAVAILABLE ||
	           status == NOETL__STATUS__DEADLINE_EXCEEDED) {
		snprintf(p->detail, sizeof(p->detail), "no answer within %dms", p->wait);
	} else {
		/* it answered, so it runs, but not GetHealth as we know it */
		p->reachable = true;
		snprintf(p->detail, sizeof(p->detail), "GetHealth failed: %s: %s",
		         rpc_status_name(status), msg != NULL ? msg : "");
	}
	free(msg);
	rpc_client_destroy(c);
	return NULL;
}

/* The listener has no RPC API: GET /readyz on its HTTP endpoint. */
static void *probe_http(void *arg)
{
	struct probe *p = arg;
	nng_url *url = NULL;
	nng_http_client *client = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	nng_tls_config *tls = NULL;
	int rv;

	if ((rv = nng_url_parse(&url, p->cli->urls[p->svc])) != 0) {
		snprintf(p->detail, sizeof(p->detail), "bad address: %s", nng_strerror(rv));
		return NULL;
	}
	if ((rv = nng_http_client_alloc(&client, url)) != 0 ||
	    (rv = nng_http_req_alloc(&req, url)) != 0 || (rv = nng_http_res_alloc(&res)) != 0 ||
	    (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		snprintf(p->detail, sizeof(p->detail), "%s", nng_strerror(rv));
		goto out;
	}
	if (strcmp(url->u_scheme, "https") == 0) {
		/* A readiness probe, not a data exchange: it does not verify the
		 * listener's certificate, so self-signed ones work too. */
		if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) != 0 ||
		    (rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_NONE)) != 0 ||
		    (rv = nng_http_client_set_tls(client, tls)) != 0) {
			snprintf(p->detail, sizeof(p->detail), "tls: %s", nng_strerror(rv));
			goto out;
		}
	}
	nng_http_req_set_uri(req, "/readyz");
	nng_aio_set_timeout(aio, p->wait);
	nng_http_client_transact(client, req, res, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		if (rv == NNG_ETIMEDOUT)
			snprintf(p->detail, sizeof(p->detail), "no answer within %dms", p->wait);
		else
			snprintf(p->detail, sizeof(p->detail), "%s", nng_strerror(rv));
		goto out;
	}
	p->reachable = true;
	uint16_t code = nng_http_res_get_status(res);
	p->ready = code == 200;
	if (!p->ready) {
		void *body;
		size_t len;
		nng_http_res_get_data(res, &body, &len);
		while (len > 0 &&
		       (((char *)body)[len - 1] == '\n' || ((char *)body)[len - 1] == '\r'))
			len--;
		if (len > 0)
			snprintf(p->detail, sizeof(p->detail), "%.*s", (int)len, (char *)body);
		else
			snprintf(p->detail, sizeof(p->detail), "/readyz answered %u", code);
	}
out:
	nng_aio_free(aio);
	if (res != NULL)
		nng_http_res_free(res);
	if (req != NULL)
		nng_http_req_free(req);
	if (client != NULL)
		nng_http_client_free(client);
	if (tls != NULL)
		nng_tls_config_free(tls);
	nng_url_free(url);
	return NULL;
}

static json_t *row(const struct probe *p)
{
	const char *state = !p->reachable ? "unreachable" : p->ready ? "ready" : "not ready";
	json_t *r = json_object();
	json_object_set_new(r, "service", json_string(cli_service_name(p->svc)));
	json_object_set_new(r, "url", json_string(p->cli->urls[p->svc]));
	json_object_set_new(r, "state", json_string(state));
	json_object_set_new(r, "reachable", json_boolean(p->reachable));
	json_object_set_new(r, "ready", json_boolean(p->ready));
	json_object_set_new(r, "version", p->version[0] ? json_string(p->version) : json_null());
	json_object_set_new(r, "revision",
	                    p->has_health ? json_integer((json_int_t)p->revision) : json_null());
	json_object_set_new(r, "uptime_ms",
	                    p->has_health ? json_integer((json_int_t)p->uptime_ms) : json_null());
	json_object_set_new(r, "detail", json_string(p->detail));
	return r;
}

static const struct cli_column status_columns[] = {
        {"SERVICE", "service", CLI_CELL_TEXT},   {"URL", "url", CLI_CELL_TEXT},
        {"STATE", "state", CLI_CELL_TEXT},       {"VERSION", "version", CLI_CELL_TEXT},
        {"REVISION", "revision", CLI_CELL_TEXT}, {"UPTIME", "uptime_ms", CLI_CELL_DURATION},
        {"DETAIL", "detail", CLI_CELL_TEXT},     {NULL, NULL, CLI_CELL_TEXT},
};

static int run_status(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 0)
		return cli_usage(cli, "status takes no arguments");
	struct probe probes[CLI_SERVICES];
	int wait = wait_ms > 0 && wait_ms < 600000 ? (int)wait_ms : 2000;
	memset(probes, 0, sizeof(probes));
	for (int s = 0; s < CLI_SERVICES; s++) {
		probes[s] = (struct probe){.cli = cli, .svc = (enum cli_service)s, .wait = wait};
		if (pthread_create(&probes[s].thread, NULL,
		                   s == CLI_LISTENER ? probe_http : probe_rpc, &probes[s]) != 0) {
			for (int t = 0; t < s; t++)
				pthread_join(probes[t].thread, NULL);
			return cli_fail(cli, "cannot start a thread");
		}
	}
	int down = 0;
	json_t *rows = json_array();
	for (int s = 0; s < CLI_SERVICES; s++) {
		pthread_join(probes[s].thread, NULL);
		if (!probes[s].reachable)
			down++;
		json_array_append_new(rows, row(&probes[s]));
	}
	int rv = cli_output(cli, rows, status_columns);
	json_decref(rows);
	if (rv != CLI_OK)
		return rv;
	if (down == CLI_SERVICES)
		return cli_fail(cli,
		                "no service answered: is noetl running? Start everything with "
		                "'noetl', or point %s at the services with --control, "
		                "--repository, --queue, --recorder and --listener",
		                cli->prog);
	if (down > 0)
		return cli_fail(cli, "%d of %d services did not answer (see the table above)", down,
		                CLI_SERVICES);
	return CLI_OK;
}

const struct cli_command cli_status_commands[] = {
        {
                .name = "status",
                .args = "",
                .summary = "show whether each service is reachable and ready",
                .run = run_status,
                .options = status_options,
                .help = "Asks every service for its health at once: the control, repository,\n"
                        "queue and recorder services over RPC (GetHealth), the listener over\n"
                        "HTTP (/readyz). Exits 0 when every service answered, 1 otherwise.",
        },
        {0},
};
