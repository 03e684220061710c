/*
 * queue: the Queue service's operator commands.
 *
 *   noetlctl queue stats [TENANT]
 *   noetlctl dlq list   TENANT [QUEUE] [--limit N]
 *   noetlctl dlq replay TENANT [QUEUE] [--id ID[,ID...]]
 *   noetlctl dlq purge  TENANT [QUEUE] [--id ID[,ID...]]
 *
 * A tenant operand may be left out when --tenant names one.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "queue.pb-c.h"
#include "util.h"

static int limit;
static char *ids;

static const struct config_option list_options[] = {
        {"limit", CONFIG_INT, &limit, "100", "list at most this many dead items (all pages)", "n",
         NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_option dead_options[] = {
        {"id", CONFIG_STRING, &ids, NULL,
         "only the dead items with these ids (comma-separated); default: all", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

/* Reads "TENANT [QUEUE]" (TENANT optional when --tenant is set). */
static int operands(struct cli *cli, int argc, char **argv, bool tenant_required,
                    const char **tenant, const char **queue)
{
	*tenant = argc > 0 ? argv[0] : (cli->tenant != NULL ? cli->tenant : "");
	*queue = argc > 1 ? argv[1] : "";
	if (argc > 2)
		return cli_usage(cli, "unexpected argument '%s'", argv[2]);
	if (tenant_required && (*tenant)[0] == '\0')
		return cli_usage(cli, "name the tenant: TENANT, or --tenant");
	if ((*tenant)[0] != '\0' && !util_valid_name(*tenant, 64))
		return cli_usage(cli, "'%s' is not a valid tenant name", *tenant);
	if ((*queue)[0] != '\0' && !util_valid_name(*queue, 64))
		return cli_usage(cli, "'%s' is not a valid queue name", *queue);
	return CLI_OK;
}

/* --- queue stats ------------------------------------------------------------- */

static const struct cli_column stats_columns[] = {
        {"TENANT", "tenant", CLI_CELL_TEXT},
        {"QUEUE", "queue", CLI_CELL_TEXT},
        {"READY", "ready", CLI_CELL_TEXT},
        {"LEASED", "leased", CLI_CELL_TEXT},
        {"DELAYED", "delayed", CLI_CELL_TEXT},
        {"DEAD", "dead", CLI_CELL_TEXT},
        {"OLDEST", "oldest_age_ms", CLI_CELL_DURATION},
        {"ENQUEUED", "enqueued", CLI_CELL_TEXT},
        {"ACKED", "acked", CLI_CELL_TEXT},
        {"FAILED", "failed", CLI_CELL_TEXT},
        {"EXPIRED", "expired", CLI_CELL_TEXT},
        {NULL, NULL, CLI_CELL_TEXT},
};

static int run_stats(struct cli *cli, int argc, char **argv)
{
	const char *tenant, *queue;
	int rv = operands(cli, argc, argv, false, &tenant, &queue);
	if (rv != CLI_OK)
		return rv;
	if (queue[0] != '\0')
		return cli_usage(cli, "queue stats takes at most a tenant");
	Noetl__StatsRequest req = NOETL__STATS_REQUEST__INIT;
	req.tenant = (char *)tenant;
	ProtobufCMessage *out = NULL;
	rv = cli_call(cli, CLI_QUEUE, &noetl__queue__descriptor, "Stats", &req.base, NULL, &out);
	if (rv != CLI_OK)
		return rv;
	Noetl__StatsReply *r = (Noetl__StatsReply *)out;
	json_t *rows = json_array();
	for (size_t i = 0; i < r->n_queues; i++) {
		const Noetl__QueueStats *s = r->queues[i];
		json_t *o = json_object();
		json_object_set_new(o, "tenant", json_string(s->tenant));
		json_object_set_new(o, "queue", json_string(s->queue));
		json_object_set_new(o, "ready", json_integer((json_int_t)s->ready));
		json_object_set_new(o, "leased", json_integer((json_int_t)s->leased));
		json_object_set_new(o, "delayed", json_integer((json_int_t)s->delayed));
		json_object_set_new(o, "dead", json_integer((json_int_t)s->dead));
		json_object_set_new(o, "oldest_age_ms", json_integer((json_int_t)s->oldest_age_ms));
		json_object_set_new(o, "enqueued", json_integer((json_int_t)s->enqueued));
		json_object_set_new(o, "acked", json_integer((json_int_t)s->acked));
		json_object_set_new(o, "failed", json_integer((json_int_t)s->failed));
		json_object_set_new(o, "expired", json_integer((json_int_t)s->expired));
		json_array_append_new(rows, o);
	}
	protobuf_c_message_free_unpacked(out, NULL);
	rv = cli_output(cli, rows, stats_columns);
	json_decref(rows);
	return rv;
}

/* --- dlq list ------------------------------------------------------------------ */

static json_t *dead_row(const Noetl__Item *it)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(it->id));
	json_object_set_new(o, "tenant", json_string(it->tenant));
	json_object_set_new(o, "queue", json_string(it->queue));
	json_object_set_new(o, "event", json_string(it->event));
	json_object_set_new(o, "parent_id", json_string(it->parent_id));
	json_object_set_new(o, "attempts", json_integer((json_int_t)it->attempt));
	json_object_set_new(o, "enqueued_ms", json_integer((json_int_t)it->enqueued_ms));
	json_object_set_new(o, "payload_bytes", json_integer((json_int_t)it->payload.len));
	const Noetl__Attempt *last = it->n_history > 0 ? it->history[it->n_history - 1] : NULL;
	json_object_set_new(o, "failed_ms", json_integer(last ? (json_int_t)last->time_ms : 0));
	json_object_set_new(o, "reason", json_string(last ? last->reason : ""));
	json_t *h = json_array();
	for (size_t i = 0; i < it->n_history; i++) {
		json_t *a = json_object();
		json_object_set_new(a, "number", json_integer(it->history[i]->number));
		json_object_set_new(a, "time_ms",
		                    json_integer((json_int_t)it->history[i]->time_ms));
		json_object_set_new(a, "reason", json_string(it->history[i]->reason));
		json_array_append_new(h, a);
	}
	json_object_set_new(o, "history", h);
	return o;
}

static const struct cli_column dead_columns[] = {
        {"ID", "id", CLI_CELL_TEXT},
        {"QUEUE", "queue", CLI_CELL_TEXT},
        {"ATTEMPTS", "attempts", CLI_CELL_TEXT},
        {"FAILED", "failed_ms", CLI_CELL_TIME},
        {"SIZE", "payload_bytes", CLI_CELL_BYTES},
        {"REASON", "reason", CLI_CELL_TEXT},
        {NULL, NULL, CLI_CELL_TEXT},
};

static int run_list(struct cli *cli, int argc, char **argv)
{
	const char *tenant, *queue;
	int rv = operands(cli, argc, argv, true, &tenant, &queue);
	if (rv != CLI_OK)
		return rv;
	if (limit < 1)
		return cli_usage(cli, "--limit must be at least 1");
	json_t *rows = json_array();
	uint8_t *cursor = NULL;
	size_t clen = 0;
	int left = limit;
	do {
		Noetl__Page page = NOETL__PAGE__INIT;
		page.limit = left < 1000 ? (uint32_t)left : 1000;
		page.cursor.data = cursor;
		page.cursor.len = clen;
		Noetl__DeadListRequest req = NOETL__DEAD_LIST_REQUEST__INIT;
		req.tenant = (char *)tenant;
		req.queue = (char *)queue;
		req.page = &page;
		ProtobufCMessage *out = NULL;
		rv = cli_call(cli, CLI_QUEUE, &noetl__queue__descriptor, "DeadList", &req.base,
		              NULL, &out);
		free(cursor);
		cursor = NULL;
		clen = 0;
		if (rv != CLI_OK)
			break;
		Noetl__DeadListReply *r = (Noetl__DeadListReply *)out;
		for (size_t i = 0; i < r->n_items && left > 0; i++, left--)
			json_array_append_new(rows, dead_row(r->items[i]));
		if (r->next_cursor.len > 0 && left > 0) {
			cursor = malloc(r->next_cursor.len);
			if (cursor != NULL) {
				memcpy(cursor, r->next_cursor.data, r->next_cursor.len);
				clen = r->next_cursor.len;
			}
		}
		protobuf_c_message_free_unpacked(out, NULL);
	} while (clen > 0);
	free(cursor);
	if (rv == CLI_OK)
		rv = cli_output(cli, rows, dead_columns);
	json_decref(rows);
	return rv;
}

/* --- dlq replay / purge ------------------------------------------------------------- */

static int dead_op(struct cli *cli, int argc, char **argv, const char *method, const char *verb)
{
	const char *tenant, *queue;
	int rv = operands(cli, argc, argv, true, &tenant, &queue);
	if (rv != CLI_OK)
		return rv;
	/* --id a,b,c: split in place into the request's list */
	size_t n = 0;
	char **list = NULL;
	if (ids != NULL && ids[0] != '\0') {
		for (const char *p = ids; *p; p++)
			n += *p == ',';
		list = calloc(n + 1, sizeof(*list));
		if (list == NULL)
			return cli_fail(cli, "out of memory");
		n = 0;
		for (char *save = NULL, *tok = strtok_r(ids, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save))
			if (tok[0] != '\0')
				list[n++] = tok;
		if (n == 0) {
			free(list);
			return cli_usage(cli, "--id needs at least one id");
		}
	}
	Noetl__DeadRequest req = NOETL__DEAD_REQUEST__INIT;
	req.tenant = (char *)tenant;
	req.queue = (char *)queue;
	req.n_ids = n;
	req.ids = list;
	ProtobufCMessage *out = NULL;
	rv = cli_call(cli, CLI_QUEUE, &noetl__queue__descriptor, method, &req.base, NULL, &out);
	free(list);
	if (rv != CLI_OK)
		return rv;
	uint64_t count = ((Noetl__DeadReply *)out)->count;
	protobuf_c_message_free_unpacked(out, NULL);
	json_t *o = json_object();
	json_object_set_new(o, "tenant", json_string(tenant));
	json_object_set_new(o, "queue", json_string(queue));
	json_object_set_new(o, verb, json_integer((json_int_t)count));
	rv = cli_output(cli, o, NULL);
	json_decref(o);
	return rv;
}

static int run_replay(struct cli *cli, int argc, char **argv)
{
	return dead_op(cli, argc, argv, "DeadReplay", "replayed");
}

static int run_purge(struct cli *cli, int argc, char **argv)
{
	return dead_op(cli, argc, argv, "DeadPurge", "purged");
}

/* --- tables ----------------------------------------------------------------------- */

static const struct cli_command queue_subs[] = {
        {.name = "stats",
         .args = "[<tenant>]",
         .summary = "show ready, leased, delayed and dead items and counters per queue",
         .run = run_stats,
         .help = "Without a tenant, every tenant's queues are shown. OLDEST is the age of\n"
                 "the oldest ready item; FAILED counts nacks, EXPIRED leases that ran out."},
        {0},
};

static const struct cli_command dlq_subs[] = {
        {.name = "list",
         .args = "<tenant> [<queue>]",
         .summary = "list dead items with their last failure (-o json: whole history)",
         .run = run_list,
         .options = list_options},
        {.name = "replay",
         .args = "<tenant> [<queue>]",
         .summary = "move dead items back to their queue with fresh attempts",
         .run = run_replay,
         .options = dead_options,
         .help = "Replayed items go to the tail of their queue with the attempt count reset;\n"
                 "their history is kept. A replay stops at the tenant's depth limit."},
        {.name = "purge",
         .args = "<tenant> [<queue>]",
         .summary = "delete dead items",
         .run = run_purge,
         .options = dead_options},
        {0},
};

const struct cli_command cli_queue_commands[] = {
        {.name = "queue", .summary = "inspect queues", .subcommands = queue_subs},
        {.name = "dlq",
         .summary = "list, replay or purge dead-letter items",
         .subcommands = dlq_subs},
        {0},
};
