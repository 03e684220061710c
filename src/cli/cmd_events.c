/*
 * events: one event's life, from the Recorder.
 *
 *   noetlctl events show EVENT_ID [--tenant T]
 *
 * prints the event's timeline (received, accepted, leased, each attempt and
 * its result, retried, routed to a follow-up, done or dead-lettered,
 * replayed) and then the chain it belongs to: up through the events that
 * produced it to the first one, and down through every follow-up, each with
 * the last step it reached. The Recorder links follow-ups both ways, so the
 * chain is the same whichever event of it is shown.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "recorder.pb-c.h"
#include "rpc.h"

#define CHAIN_MAX 200 /* events shown in one chain at most */
#define DEPTH_MAX 64  /* parents followed upwards at most */

static const char *const kind_names[] = {
        "received", "accepted", "leased", "attempt",  "retried",
        "routed",   "done",     "dead",   "replayed", "caused by",
};

static const char *kind_name(int k)
{
	return k >= 0 && k < (int)(sizeof(kind_names) / sizeof(kind_names[0])) ? kind_names[k]
	                                                                       : "unknown";
}

/* Calls Timeline; NULL (with the error printed when loud) on failure. */
static Noetl__TimelineReply *timeline(struct cli *cli, const char *tenant, const char *event,
                                      int *rv)
{
	Noetl__TimelineRequest req = NOETL__TIMELINE_REQUEST__INIT;
	req.tenant = (char *)(tenant != NULL ? tenant : "");
	req.event_id = (char *)event;
	ProtobufCMessage *out = NULL;
	*rv = cli_call(cli, CLI_RECORDER, &noetl__recorder__descriptor, "Timeline", &req.base, NULL,
	               &out);
	return *rv == CLI_OK ? (Noetl__TimelineReply *)out : NULL;
}

/* Calls Timeline for an event of the chain: a follow-up whose records are
 * gone (retention) is shown as "unknown" rather than failing the command, so
 * this prints nothing on failure. */
static Noetl__TimelineReply *timeline_quiet(struct cli *cli, const char *tenant, const char *event)
{
	struct rpc_client *c;
	if (cli_client(cli, CLI_RECORDER, &c) != CLI_OK)
		return NULL;
	Noetl__TimelineRequest req = NOETL__TIMELINE_REQUEST__INIT;
	req.tenant = (char *)tenant;
	req.event_id = (char *)event;
	struct rpc_call_options o = {
	        .timeout_ms = cli->timeout_ms > 0 ? (int)cli->timeout_ms : 0,
	        .tenant = tenant,
	        .token = cli->token,
	};
	ProtobufCMessage *out = NULL;
	if (rpc_call(c, &noetl__recorder__descriptor, "Timeline", &req.base, &o, &out, NULL) != 0)
		return NULL;
	return (Noetl__TimelineReply *)out;
}

static json_t *entry_json(const Noetl__TimelineEntry *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "time_ms", json_integer(e->time_ms));
	json_object_set_new(o, "step", json_string(kind_name(e->kind)));
	json_object_set_new(o, "attempt", json_integer(e->attempt));
	json_object_set_new(o, "detail", json_string(e->detail));
	json_object_set_new(o, "related_id", json_string(e->related_id));
	json_object_set_new(o, "event", json_string(e->event));
	return o;
}

/* The last step an event reached, in words. */
static const char *state_of(const Noetl__TimelineReply *t)
{
	return t->n_entries > 0 ? kind_name(t->entries[t->n_entries - 1]->kind) : "-";
}

static bool seen_has(json_t *seen, const char *id)
{
	return json_object_get(seen, id) != NULL;
}

/* The chain below id as {event_id, state, children: [...]}; t is id's own
 * timeline when already read (borrowed), else NULL. */
static json_t *chain_node(struct cli *cli, const char *tenant, const char *id,
                          const Noetl__TimelineReply *t, json_t *seen)
{
	json_t *node = json_object();
	json_object_set_new(node, "event_id", json_string(id));
	json_object_set_new(seen, id, json_true());
	Noetl__TimelineReply *own = NULL;
	if (t == NULL)
		t = own = timeline_quiet(cli, tenant, id);
	json_object_set_new(node, "state", json_string(t != NULL ? state_of(t) : "unknown"));
	json_t *kids = json_array();
	for (size_t i = 0; t != NULL && i < t->n_children; i++) {
		if (seen_has(seen, t->children[i]) || json_object_size(seen) >= CHAIN_MAX)
			continue; /* a cycle, or enough */
		json_array_append_new(kids, chain_node(cli, tenant, t->children[i], NULL, seen));
	}
	json_object_set_new(node, "children", kids);
	if (own != NULL)
		protobuf_c_message_free_unpacked(&own->base, NULL);
	return node;
}

static void print_chain(FILE *out, json_t *node, const char *self, const char *indent, bool last,
                        bool root)
{
	const char *id = json_string_value(json_object_get(node, "event_id"));
	fprintf(out, "  %s%s%s (%s)%s\n", indent,
	        root   ? ""
	        : last ? "`- "
	               : "|- ",
	        id, json_string_value(json_object_get(node, "state")),
	        strcmp(id, self) == 0 ? "  <- this event" : "");
	char deeper[512];
	snprintf(deeper, sizeof(deeper), "%s%s", indent, root ? "" : last ? "   " : "|  ");
	json_t *kids = json_object_get(node, "children");
	for (size_t i = 0; i < json_array_size(kids); i++)
		print_chain(out, json_array_get(kids, i), self, deeper,
		            i + 1 == json_array_size(kids), false);
}

static void print_time(FILE *out, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32] = "-";
	if (ms > 0 && gmtime_r(&t, &tm) != NULL) {
		size_t n = strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(buf + n, sizeof(buf) - n, ".%03d", (int)(ms % 1000));
	}
	fprintf(out, "%-23s", buf);
}

static int run_show(struct cli *cli, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage(cli, "events show takes one event id, got %d arguments", argc);
	const char *id = argv[0];
	int rv;
	Noetl__TimelineReply *t = timeline(cli, cli->tenant, id, &rv);
	if (t == NULL)
		return rv;
	char *tenant = strdup(t->tenant);

	/* up to the first event of the chain */
	char *root = strdup(id);
	json_t *seen = json_object();
	json_object_set_new(seen, id, json_true());
	if (t->n_parents > 0) {
		free(root);
		root = strdup(t->parents[0]);
		for (int depth = 0; depth < DEPTH_MAX && !seen_has(seen, root); depth++) {
			json_object_set_new(seen, root, json_true());
			Noetl__TimelineReply *p = timeline_quiet(cli, tenant, root);
			if (p == NULL || p->n_parents == 0) {
				if (p != NULL)
					protobuf_c_message_free_unpacked(&p->base, NULL);
				break;
			}
			free(root);
			root = strdup(p->parents[0]);
			protobuf_c_message_free_unpacked(&p->base, NULL);
		}
	}
	json_object_clear(seen);
	json_t *chain = chain_node(cli, tenant, root, strcmp(root, id) == 0 ? t : NULL, seen);
	json_decref(seen);

	json_t *doc = json_object();
	json_object_set_new(doc, "tenant", json_string(tenant));
	json_object_set_new(doc, "event_id", json_string(id));
	json_t *entries = json_array();
	for (size_t i = 0; i < t->n_entries; i++)
		json_array_append_new(entries, entry_json(t->entries[i]));
	json_object_set_new(doc, "entries", entries);
	json_t *parents = json_array(), *children = json_array();
	for (size_t i = 0; i < t->n_parents; i++)
		json_array_append_new(parents, json_string(t->parents[i]));
	for (size_t i = 0; i < t->n_children; i++)
		json_array_append_new(children, json_string(t->children[i]));
	json_object_set_new(doc, "parents", parents);
	json_object_set_new(doc, "children", children);
	json_object_set_new(doc, "truncated", json_boolean(t->truncated));
	json_object_set_new(doc, "chain", chain);

	if (cli->format != CLI_TABLE) {
		rv = cli_output(cli, doc, NULL);
	} else {
		FILE *out = cli->out;
		fprintf(out, "event %s of tenant %s\n\n", id, tenant);
		fprintf(out, "%-23s  %-9s  %-3s  %s\n", "TIME", "STEP", "TRY", "DETAIL");
		for (size_t i = 0; i < t->n_entries; i++) {
			const Noetl__TimelineEntry *e = t->entries[i];
			print_time(out, e->time_ms);
			char attempt[16] = "";
			if (e->attempt > 0)
				snprintf(attempt, sizeof(attempt), "%u", e->attempt);
			fprintf(out, "  %-9s  %-3s  %s", kind_name(e->kind), attempt, e->detail);
			if (e->related_id[0] != '\0')
				fprintf(out, "%s%s %s", e->detail[0] ? "; " : "",
				        e->kind == NOETL__TIMELINE_KIND__TL_CAUSED_BY ? "by" : "to",
				        e->related_id);
			fputc('\n', out);
		}
		if (t->truncated)
			fprintf(out,
			        "(more steps than one reply holds; the first ones are shown)\n");
		fprintf(out, "\nchain:\n");
		print_chain(out, chain, id, "", true, true);
		rv = fflush(out) == 0 ? CLI_OK : CLI_FAIL;
	}
	json_decref(doc);
	free(root);
	free(tenant);
	protobuf_c_message_free_unpacked(&t->base, NULL);
	return rv;
}

static const struct cli_command events_subs[] = {
        {.name = "show",
         .args = "<event-id>",
         .summary = "show an event's timeline and the chain of events it belongs to",
         .run = run_show,
         .help = "Without --tenant the tenant is found from the event id (an id used by\n"
                 "several tenants needs --tenant). -o json prints the timeline, the parents\n"
                 "and children, and the chain as a tree of {event_id, state, children}."},
        {0},
};

const struct cli_command cli_events_commands[] = {
        {.name = "events", .summary = "inspect events", .subcommands = events_subs},
        {0},
};
