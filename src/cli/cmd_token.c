/*
 * cmd_token: noetlctl token create|list|revoke and secret set|clear.
 *
 * A token's secret is printed once, by create; Control keeps only its hash,
 * so a lost secret cannot be shown again: revoke it and create another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_control.h"
#include "control.pb-c.h"
#include "pbjson.h"

#define SECRET_MAX 1024

static char *description;

static const struct config_option create_options[] = {
        {"description", CONFIG_STRING, &description, NULL,
         "what the token is for, shown by 'token list'", "d", NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static int run_create(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 1, 1, "noetlctl token create TENANT [--description TEXT]"))
		return CLI_USAGE;
	Noetl__CreateTokenRequest req = NOETL__CREATE_TOKEN_REQUEST__INIT;
	req.tenant = argv[0];
	req.description = description != NULL ? description : "";
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "CreateToken", &req.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	Noetl__CreateTokenReply *rep = (Noetl__CreateTokenReply *)out;
	json_t *obj = json_pack("{s:s, s:s, s:s}", "id", rep->info->id, "tenant", rep->info->tenant,
	                        "secret", rep->secret);
	if (cli->format == CLI_TABLE)
		fprintf(cli->out,
		        "token %s created for tenant '%s'\nsecret: %s\n"
		        "(this is the only time the secret is shown: store it now)\n",
		        rep->info->id, rep->info->tenant, rep->secret);
	else
		rv = cli_output(cli, obj, NULL);
	json_decref(obj);
	protobuf_c_message_free_unpacked(out, NULL);
	return rv;
}

static int run_list(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 1, 1, "noetlctl token list TENANT"))
		return CLI_USAGE;
	Noetl__ListTokensRequest req = NOETL__LIST_TOKENS_REQUEST__INIT;
	req.tenant = argv[0];
	ProtobufCMessage *out;
	int rv = cli_control_call(cli, "ListTokens", &req.base, argv[0], &out);
	if (rv != CLI_OK)
		return rv;
	Noetl__ListTokensReply *rep = (Noetl__ListTokensReply *)out;
	json_t *rows = json_array();
	for (size_t i = 0; i < rep->n_tokens; i++)
		json_array_append_new(rows, pbjson_from(&rep->tokens[i]->base));
	protobuf_c_message_free_unpacked(out, NULL);
	static const struct cli_column cols[] = {
	        {"TOKEN", "id", CLI_CELL_TEXT},
	        {"CREATED", "created_ms", CLI_CELL_TIME},
	        {"DESCRIPTION", "description", CLI_CELL_TEXT},
	        {"SHA256", "hash", CLI_CELL_TEXT},
	        {NULL, NULL, 0},
	};
	rv = cli_output(cli, rows, cols);
	json_decref(rows);
	return rv;
}

static int run_revoke(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 2, 2, "noetlctl token revoke TENANT TOKEN"))
		return CLI_USAGE;
	Noetl__RevokeTokenRequest req = NOETL__REVOKE_TOKEN_REQUEST__INIT;
	req.tenant = argv[0];
	req.id = argv[1];
	int rv = cli_control_call(cli, "RevokeToken", &req.base, argv[0], NULL);
	if (rv != CLI_OK)
		return rv;
	return cli_done(
	        cli, json_pack("{s:s, s:s, s:b}", "tenant", argv[0], "id", argv[1], "revoked", 1),
	        "token %s of tenant '%s' revoked", argv[1], argv[0]);
}

const struct cli_command cli_token_subcommands[] = {
        {.name = "create",
         .args = "TENANT",
         .summary = "create an API token and print its secret once",
         .run = run_create,
         .options = create_options},
        {.name = "list", .args = "TENANT", .summary = "list a tenant's tokens", .run = run_list},
        {.name = "revoke", .args = "TENANT TOKEN", .summary = "revoke a token", .run = run_revoke},
        {0},
};

/* --- webhook secrets --- */

/* Reads one line (the secret) from stdin, without its newline. */
static int read_secret(struct cli *cli, char *buf, size_t cap)
{
	if (fgets(buf, (int)cap, stdin) == NULL)
		return cli_fail(cli, "no secret on standard input");
	size_t n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == cap - 1)
		return cli_fail(cli, "the secret on standard input is over %d bytes", SECRET_MAX);
	buf[n] = '\0';
	return CLI_OK;
}

static int set_secret(struct cli *cli, const char *tenant, const char *event, const char *secret)
{
	Noetl__WebhookSecret ws = NOETL__WEBHOOK_SECRET__INIT;
	ws.tenant = (char *)tenant;
	ws.event = (char *)event;
	ws.secret = (char *)secret;
	int rv = cli_control_call(cli, "SetWebhookSecret", &ws.base, tenant, NULL);
	if (rv != CLI_OK)
		return rv;
	bool set = secret[0] != '\0';
	return cli_done(cli,
	                json_pack("{s:s, s:s, s:b}", "tenant", tenant, "event", event, "set", set),
	                "webhook secret of event '%s' of tenant '%s' %s", event, tenant,
	                set ? "set" : "cleared");
}

static int run_secret_set(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 3, 3, "noetlctl secret set TENANT EVENT SECRET|-"))
		return CLI_USAGE;
	char buf[SECRET_MAX + 2];
	const char *secret = argv[2];
	if (strcmp(secret, "-") == 0) {
		int rv = read_secret(cli, buf, sizeof(buf));
		if (rv != CLI_OK)
			return rv;
		secret = buf;
	}
	if (secret[0] == '\0')
		return cli_usage(cli,
		                 "the secret is empty; to remove it use 'noetlctl secret clear'");
	return set_secret(cli, argv[0], argv[1], secret);
}

static int run_secret_clear(struct cli *cli, int argc, char **argv)
{
	if (!cli_operands(cli, argc, 2, 2, "noetlctl secret clear TENANT EVENT"))
		return CLI_USAGE;
	return set_secret(cli, argv[0], argv[1], "");
}

const struct cli_command cli_secret_subcommands[] = {
        {.name = "set",
         .args = "TENANT EVENT SECRET",
         .summary = "set the HMAC key of an event's webhook",
         .run = run_secret_set,
         .help = "Give '-' as SECRET to read it from standard input (keeps it out of the "
                 "process list and shell history)."},
        {.name = "clear",
         .args = "TENANT EVENT",
         .summary = "remove an event's webhook secret",
         .run = run_secret_clear},
        {0},
};
