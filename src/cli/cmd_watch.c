/*
 * cmd_watch: noetlctl watch [TENANT]: prints every change of Control's
 * definitions as it happens.
 *
 * It is a stream subscriber (stream.h), so it sees each change exactly
 * once and in revision order even when pub/sub drops messages or Control
 * restarts: gaps are filled from Control's Changes method. By default it
 * starts at Control's current revision (only new changes); --since N
 * replays everything after revision N first. Table output is one line per
 * change; -o json is one JSON object per line; -o yaml one document each.
 * Webhook secrets are never printed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmd_control.h"
#include "control.pb-c.h"
#include "defaults.h"
#include "pbjson.h"
#include "rpc.h"
#include "stream.h"

static char *stream_url;
static char *since_text;
static int count;

const struct config_option cli_watch_settings[] = {
        {"control.stream", CONFIG_URL, &stream_url, NOETL_DEFAULT_CONTROL_STREAM_URL,
         "Control's change stream (pub/sub)", "stream", NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

const struct config_option cli_watch_options[] = {
        {"since", CONFIG_STRING, &since_text, NULL,
         "first replay the changes after this revision (0: all); default: only new ones", NULL,
         NULL},
        {"count", CONFIG_INT, &count, "0", "exit after this many changes (0: until Ctrl-C)", NULL,
         NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

struct watch {
	struct cli *cli;    /* where to print */
	pthread_mutex_t mu; /* guards printed */
	unsigned printed;   /* changes printed */
};

static const char *kind_word(Noetl__DefinitionChange__Kind k)
{
	switch (k) {
	case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED:
		return "package-deployed";
	case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DELETED:
		return "package-deleted";
	case NOETL__DEFINITION_CHANGE__KIND__TENANT_ADDED:
		return "tenant-added";
	case NOETL__DEFINITION_CHANGE__KIND__TENANT_REMOVED:
		return "tenant-removed";
	case NOETL__DEFINITION_CHANGE__KIND__TOKEN_CREATED:
		return "token-created";
	case NOETL__DEFINITION_CHANGE__KIND__TOKEN_REVOKED:
		return "token-revoked";
	case NOETL__DEFINITION_CHANGE__KIND__SECRET_SET:
		return "secret-set";
	default:
		return "unknown";
	}
}

static void detail(const Noetl__DefinitionChange *dc, char *buf, size_t cap)
{
	buf[0] = '\0';
	switch (dc->kind) {
	case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DEPLOYED:
		snprintf(buf, cap, "%s \"%s\"", dc->package_id,
		         dc->package != NULL ? dc->package->name : "");
		break;
	case NOETL__DEFINITION_CHANGE__KIND__PACKAGE_DELETED:
		snprintf(buf, cap, "%s", dc->package_id);
		break;
	case NOETL__DEFINITION_CHANGE__KIND__TOKEN_CREATED:
	case NOETL__DEFINITION_CHANGE__KIND__TOKEN_REVOKED:
		snprintf(buf, cap, "%s", dc->token != NULL ? dc->token->id : "");
		break;
	case NOETL__DEFINITION_CHANGE__KIND__SECRET_SET:
		if (dc->secret != NULL)
			snprintf(buf, cap, "%s %s", dc->secret->event,
			         dc->secret->secret[0] != '\0' ? "set" : "cleared");
		break;
	default:
		break;
	}
}

static int print_change(void *arg, const Noetl__Change *chg)
{
	struct watch *w = arg;
	struct cli *cli = w->cli;
	Noetl__DefinitionChange *dc =
	        noetl__definition_change__unpack(NULL, chg->body.len, chg->body.data);
	if (dc == NULL) {
		fprintf(cli->err, "%s: change %llu is undecodable; skipped\n", cli->prog,
		        (unsigned long long)chg->revision);
		return 0;
	}
	bool secret_set = false;
	if (dc->secret != NULL) {
		/* Never print the key itself. */
		secret_set = dc->secret->secret[0] != '\0';
		if (secret_set)
			dc->secret->secret[0] = '\0';
	}
	if (cli->format == CLI_TABLE) {
		json_t *t = json_integer(chg->time_ms);
		char when[64], what[256];
		cli_format_cell(t, CLI_CELL_TIME, when, sizeof(when));
		json_decref(t);
		detail(dc, what, sizeof(what));
		if (dc->kind == NOETL__DEFINITION_CHANGE__KIND__SECRET_SET && dc->secret != NULL)
			snprintf(what, sizeof(what), "%s %s", dc->secret->event,
			         secret_set ? "set" : "cleared");
		fprintf(cli->out, "%-6llu %s  %-16s %-17s %s\n", (unsigned long long)chg->revision,
		        when, chg->topic, kind_word(dc->kind), what);
	} else {
		json_t *obj = json_pack("{s:I, s:I, s:s, s:s, s:o}", "revision",
		                        (json_int_t)chg->revision, "time_ms",
		                        (json_int_t)chg->time_ms, "tenant", chg->topic, "kind",
		                        kind_word(dc->kind), "change", pbjson_from(&dc->base));
		if (obj != NULL && cli->format == CLI_JSON) {
			char *s = json_dumps(obj, JSON_COMPACT);
			if (s != NULL)
				fprintf(cli->out, "%s\n", s);
			free(s);
		} else if (obj != NULL) {
			fputs("---\n", cli->out);
			cli_print_yaml(cli->out, obj);
		}
		json_decref(obj);
	}
	fflush(cli->out);
	noetl__definition_change__free_unpacked(dc, NULL);
	pthread_mutex_lock(&w->mu);
	w->printed++;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static unsigned printed(struct watch *w)
{
	pthread_mutex_lock(&w->mu);
	unsigned n = w->printed;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int cli_watch_run(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 0, 1, "noetlctl watch [TENANT] [--since REVISION]"))
		return CLI_USAGE;
	if (count < 0)
		return cli_usage(cli, "--count must be 0 or more");
	uint64_t since = 0;
	if (since_text != NULL) {
		if (!cli_parse_u64(since_text, &since))
			return cli_usage(cli, "--since '%s' is not a revision number", since_text);
	} else {
		Noetl__Empty e = NOETL__EMPTY__INIT;
		ProtobufCMessage *out;
		int rv = cli_call(cli, CLI_CONTROL, &noetl__control__descriptor, "GetHealth",
		                  &e.base, NULL, &out);
		if (rv != CLI_OK)
			return rv;
		since = ((Noetl__Health *)out)->revision;
		protobuf_c_message_free_unpacked(out, NULL);
	}
	struct rpc_client *client;
	int rv = cli_client(cli, CLI_CONTROL, &client);
	if (rv != CLI_OK)
		return rv;

	/* Signals are taken here, by sigtimedwait; the subscriber's thread
	 * inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* a setting: flag > NOETL_CONTROL_STREAM > file > default (main.c) */
	const char *url = stream_url;

	struct watch w = {.cli = cli};
	pthread_mutex_init(&w.mu, NULL);
	struct stream_sub_options o = {
	        .topic = argc > 0 ? argv[0] : NULL,
	        .since = since,
	        .token = cli->token,
	};
	struct stream_sub *sub;
	rv = stream_sub_create(client, &noetl__control__descriptor, url, &o, print_change, &w,
	                       &sub);
	if (rv != 0) {
		pthread_mutex_destroy(&w.mu);
		return cli_fail(
		        cli,
		        "cannot follow Control's changes at '%s': %s (set the stream address "
		        "with --stream or NOETL_CONTROL_STREAM)",
		        url, strerror(-rv));
	}
	if (cli->format == CLI_TABLE)
		fprintf(cli->err, "watching %s%s%s after revision %llu (Ctrl-C to stop)\n",
		        argc > 0 ? "tenant '" : "every tenant", argc > 0 ? argv[0] : "",
		        argc > 0 ? "'" : "", (unsigned long long)since);
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
	while (count == 0 || printed(&w) < (unsigned)count) {
		if (sigtimedwait(&sigs, NULL, &tick) > 0)
			break;
	}
	stream_sub_destroy(sub);
	pthread_mutex_destroy(&w.mu);
	return CLI_OK;
}
