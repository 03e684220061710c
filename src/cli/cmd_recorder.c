/*
 * recorder, logs: what ran and what it said, from the Recorder.
 *
 *   noetlctl recorder [--lines N] [--tenant T] [--failed|--dead] [--follow]
 *   noetlctl logs TENANT [--event E] [--level L] [--since T] [--lines N] [--follow]
 *
 * Both print the newest records oldest first (like tail), as a table or, with
 * -o json|yaml, as data. --follow then keeps printing new records as the
 * Recorder stores them: the command subscribes to the Recorder's stream from
 * the revision its query was read at, so nothing is printed twice and
 * nothing stored after the query is missed, even when the stream drops
 * messages or the Recorder restarts (stream.h resyncs). In follow mode JSON
 * is one object per line (NDJSON) so a pipe can consume it as it comes;
 * SIGINT or SIGTERM ends it with exit code 0.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "defaults.h"
#include "paging.h"
#include "recorder.pb-c.h"
#include "rpc.h"
#include "stream.h"
#include "util.h"

/* --- options ----------------------------------------------------------------- */

static int opt_lines;
static bool opt_follow;
static bool opt_failed;
static bool opt_dead;
static char *opt_event;
static char *opt_level;
static char *opt_since;
static char *opt_stream;

/* A setting (cli.h): flag > NOETL_RECORDER_STREAM > file > default. */
static const struct config_option recorder_settings[] = {
        {"recorder.stream", CONFIG_URL, &opt_stream, NOETL_DEFAULT_RECORDER_STREAM_URL,
         "the recorder's stream address, for --follow", "stream", NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_option recorder_options[] = {
        {"lines", CONFIG_INT, &opt_lines, "20", "show the newest N executions", "n", NULL},
        {"failed", CONFIG_BOOL, &opt_failed, "false",
         "only failed executions (error, failed, dead)", NULL, NULL},
        {"dead", CONFIG_BOOL, &opt_dead, "false", "only executions that were dead-lettered", NULL,
         NULL},
        {"event", CONFIG_STRING, &opt_event, NULL, "only the attempts of this event id", "e", NULL},
        {"follow", CONFIG_BOOL, &opt_follow, "false", "keep printing new executions as they come",
         "f", NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct config_option logs_options[] = {
        {"event", CONFIG_STRING, &opt_event, NULL, "only the lines of this event id", "e", NULL},
        {"level", CONFIG_ENUM, &opt_level, "debug", "only lines at this level or above", "l",
         "debug|info|warn|error"},
        {"since", CONFIG_STRING, &opt_since, NULL,
         "only lines logged since: a duration back from now (10m, 2h), a time "
         "(2026-11-23T09:00:00Z) or Unix milliseconds",
         "s", NULL},
        {"lines", CONFIG_INT, &opt_lines, "0", "only the newest N lines (0: every matching line)",
         "n", NULL},
        {"follow", CONFIG_BOOL, &opt_follow, "false", "keep printing new lines as they come", "f",
         NULL},
        {NULL, 0, NULL, NULL, NULL, NULL, NULL},
};

/* --- records as JSON ------------------------------------------------------------ */

static const char *const status_names[] = {"ok", "error", "failed", "dead"};
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static const char *status_name(int s)
{
	return s >= 0 && s < 4 ? status_names[s] : "unknown";
}

static const char *level_name(int l)
{
	return l >= 0 && l < 4 ? level_names[l] : "unknown";
}

static bool is_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == 0)
			return false;
	return true;
}

static json_t *exec_json(const Noetl__Execution *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "tenant", json_string(e->tenant));
	json_object_set_new(o, "event_id", json_string(e->event_id));
	json_object_set_new(o, "event", json_string(e->event));
	json_object_set_new(o, "package", json_string(e->package));
	json_object_set_new(o, "queue", json_string(e->queue));
	json_object_set_new(o, "attempt", json_integer(e->attempt));
	json_object_set_new(o, "start_ms", json_integer(e->start_ms));
	json_object_set_new(o, "end_ms", json_integer(e->end_ms));
	json_object_set_new(o, "duration_ms", json_integer(e->duration_us / 1000));
	json_object_set_new(o, "status", json_string(status_name(e->status)));
	json_object_set_new(o, "code", json_integer(e->code));
	json_object_set_new(o, "reason", json_string(e->reason));
	json_object_set_new(o, "host", json_string(e->host));
	json_object_set_new(o, "module_sha256", json_string(e->module_sha256));
	/* a result that is text (usually JSON) shows as text; bytes as hex */
	json_t *res = is_text(e->result.data, e->result.len)
	                      ? json_stringn((const char *)e->result.data, e->result.len)
	                      : NULL;
	if (res != NULL) {
		json_object_set_new(o, "result", res);
	} else {
		char *hex = malloc(e->result.len * 2 + 1);
		for (size_t i = 0; hex != NULL && i < e->result.len; i++)
			snprintf(hex + 2 * i, 3, "%02x", e->result.data[i]);
		if (hex != NULL) {
			hex[e->result.len * 2] = '\0';
			json_object_set_new(o, "result_hex", json_string(hex));
		}
		free(hex);
	}
	if (e->result_truncated)
		json_object_set_new(o, "result_truncated", json_true());
	return o;
}

static json_t *log_json(const Noetl__LogLine *l)
{
	json_t *o = json_object();
	json_object_set_new(o, "time_ms", json_integer(l->time_ms));
	json_object_set_new(o, "tenant", json_string(l->tenant));
	json_object_set_new(o, "event_id", json_string(l->event_id));
	json_object_set_new(o, "level", json_string(level_name(l->level)));
	json_object_set_new(o, "source", json_string(l->source));
	json_object_set_new(o, "attempt", json_integer(l->attempt));
	/* the recorder does not check UTF-8; jansson does */
	json_t *text = json_string(l->text);
	json_object_set_new(o, "text", text != NULL ? text : json_string("(not UTF-8)"));
	if (l->truncated)
		json_object_set_new(o, "truncated", json_true());
	return o;
}

/* --- printing ----------------------------------------------------------------- */

static const struct cli_column exec_cols[] = {
        {"STARTED", "start_ms", CLI_CELL_TIME},  {"TENANT", "tenant", CLI_CELL_TEXT},
        {"EVENT ID", "event_id", CLI_CELL_TEXT}, {"EVENT", "event", CLI_CELL_TEXT},
        {"TRY", "attempt", CLI_CELL_TEXT},       {"STATUS", "status", CLI_CELL_TEXT},
        {"CODE", "code", CLI_CELL_TEXT},         {"TOOK", "duration_ms", CLI_CELL_DURATION},
        {"REASON", "reason", CLI_CELL_TEXT},     {NULL, NULL, 0},
};

/* Prints rows (an array; oldest first) in the chosen format. In follow mode
 * JSON is one object per line and YAML one document per record, so that
 * what follows can be appended the same way. */
static int print_rows(struct cli *cli, json_t *rows, const struct cli_column *cols, bool stream)
{
	if (!stream || cli->format == CLI_TABLE)
		return cli_output(cli, rows, cols);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		if (cli->format == CLI_JSON) {
			json_dumpf(row, cli->out, JSON_COMPACT);
			fputc('\n', cli->out);
		} else {
			fputs("---\n", cli->out);
			cli_print_yaml(cli->out, row);
		}
	}
	return fflush(cli->out) == 0 ? CLI_OK : CLI_FAIL;
}

/* One record that arrived while following: a line in the table's columns. */
static void print_one(struct cli *cli, json_t *row, const struct cli_column *cols)
{
	if (cli->format != CLI_TABLE) {
		json_t *rows = json_array();
		json_array_append(rows, row);
		print_rows(cli, rows, cols, true);
		json_decref(rows);
		return;
	}
	for (const struct cli_column *c = cols; c->title != NULL; c++) {
		char buf[1024];
		const char *cell =
		        cli_format_cell(json_object_get(row, c->key), c->cell, buf, sizeof(buf));
		fprintf(cli->out, "%s%s", c == cols ? "" : "  ", cell);
	}
	fputc('\n', cli->out);
	fflush(cli->out);
}

/* Log lines print as "time level [event] source: text", like a log file. */
static void print_log_line(struct cli *cli, const Noetl__LogLine *l)
{
	time_t t = (time_t)(l->time_ms / 1000);
	struct tm tm;
	char when[32] = "-";
	if (gmtime_r(&t, &tm) != NULL) {
		size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + n, sizeof(when) - n, ".%03dZ", (int)(l->time_ms % 1000));
	}
	fprintf(cli->out, "%s %-5s %s%s%s%s: %s%s\n", when, level_name(l->level),
	        l->event_id[0] ? "[" : "", l->event_id, l->event_id[0] ? "] " : "",
	        l->source[0] ? l->source : "-", l->text, l->truncated ? " [truncated]" : "");
}

static int print_logs(struct cli *cli, Noetl__LogLine **lines, size_t n, bool reverse, bool stream)
{
	if (cli->format == CLI_TABLE) {
		for (size_t i = 0; i < n; i++)
			print_log_line(cli, lines[reverse ? n - 1 - i : i]);
		return fflush(cli->out) == 0 ? CLI_OK : CLI_FAIL;
	}
	json_t *rows = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(rows, log_json(lines[reverse ? n - 1 - i : i]));
	int rv = print_rows(cli, rows, NULL, stream);
	json_decref(rows);
	return rv;
}

/* --- following ------------------------------------------------------------------ */

struct follow {
	struct cli *cli;
	const char *event; /* only this event's records; "" = all */
	int min_level;     /* logs: this level and above */
	bool logs;         /* follow log lines (else executions) */
	bool failed, dead; /* executions: status filters */
};

static int follow_apply(void *arg, const Noetl__Change *chg)
{
	struct follow *f = arg;
	Noetl__Record *r = noetl__record__unpack(NULL, chg->body.len, chg->body.data);
	if (r == NULL)
		return 0; /* not a record: nothing to show, and retrying will not help */
	if (f->logs && r->kind_case == NOETL__RECORD__KIND_LOG) {
		const Noetl__LogLine *l = r->log;
		if ((int)l->level >= f->min_level &&
		    (f->event[0] == '\0' || strcmp(l->event_id, f->event) == 0))
			print_logs(f->cli, &r->log, 1, false, true);
	} else if (!f->logs && r->kind_case == NOETL__RECORD__KIND_EXECUTION) {
		const Noetl__Execution *e = r->execution;
		bool ok = (f->event[0] == '\0' || strcmp(e->event_id, f->event) == 0) &&
		          (!f->dead || e->status == NOETL__EXEC_STATUS__EXEC_DEAD) &&
		          (!f->failed || e->status != NOETL__EXEC_STATUS__EXEC_OK);
		if (ok) {
			json_t *row = exec_json(e);
			print_one(f->cli, row, exec_cols);
			json_decref(row);
		}
	}
	noetl__record__free_unpacked(r, NULL);
	return 0;
}

/* Blocks SIGINT and SIGTERM in this thread, so that threads started from
 * now on (the RPC client's, the subscriber's) inherit the mask and the
 * signals wait for sigwait: Ctrl-C ends following cleanly, with exit 0.
 * Called before the first call when following. */
static void stop_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

/* Follows tenant ("" = every tenant) from revision since until SIGINT or
 * SIGTERM. */
static int follow_from(struct cli *cli, struct follow *f, const char *tenant, uint64_t since)
{
	struct rpc_client *client;
	int rv = cli_client(cli, CLI_RECORDER, &client);
	if (rv != CLI_OK)
		return rv;
	sigset_t sigs;
	stop_signals(&sigs);
	struct stream_sub_options o = {
	        .topic = tenant,
	        .since = since,
	        .token = cli->token,
	        .name = "noetlctl: recorder stream",
	};
	struct stream_sub *sub = NULL;
	int err = stream_sub_create(client, &noetl__recorder__descriptor, opt_stream, &o,
	                            follow_apply, f, &sub);
	if (err != 0)
		return cli_fail(cli,
		                "cannot follow the recorder's stream at %s: %s (set it with "
		                "--stream URL)",
		                opt_stream, strerror(-err));
	int sig;
	sigwait(&sigs, &sig);
	stream_sub_destroy(sub);
	return CLI_OK;
}

/* --- paging ------------------------------------------------------------------ */

/* The Recorder answers at most PAGING_MAX items a call: a listing walks
 * the pages, each call naming the next_cursor of the reply before. */

/* The limit of the next page when left items are still wanted (0: all). */
static uint32_t page_limit(int left)
{
	return left > 0 && left < PAGING_MAX ? (uint32_t)left : PAGING_MAX;
}

/* Points page at a copy of next (the cursor lives in a reply that is freed
 * before the next call); *keep owns the copy. Returns false when there is
 * no next page. */
static bool next_page(Noetl__Page *page, ProtobufCBinaryData next, uint8_t **keep)
{
	free(*keep);
	*keep = NULL;
	page->cursor.data = NULL;
	page->cursor.len = 0;
	if (next.len == 0)
		return false;
	*keep = malloc(next.len);
	if (*keep == NULL)
		return false;
	memcpy(*keep, next.data, next.len);
	page->cursor.data = *keep;
	page->cursor.len = next.len;
	return true;
}

/* --- recorder ------------------------------------------------------------------ */

static int run_recorder(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 0)
		return cli_usage(cli, "recorder takes no arguments; the tenant is --tenant T");
	if (opt_lines < 1)
		return cli_usage(cli, "--lines must be 1 or more, got %d", opt_lines);
	if (opt_follow) {
		sigset_t sigs;
		stop_signals(&sigs);
	}
	const char *tenant = cli->tenant != NULL ? cli->tenant : "";
	Noetl__ExecutionQuery q = NOETL__EXECUTION_QUERY__INIT;
	Noetl__Page page = NOETL__PAGE__INIT;
	q.page = &page;
	q.tenant = (char *)tenant;
	q.event_id = opt_event != NULL ? opt_event : "";
	q.only_failed = opt_failed;
	q.only_dead = opt_dead;
	q.all_tenants = tenant[0] == '\0' && q.event_id[0] == '\0';

	/* pages come newest first: collect them, then print oldest first (like
	 * tail); following starts at the first page's revision, so a record
	 * stored while paging is printed by the stream, not lost */
	json_t *newest = json_array();
	uint64_t since = 0;
	uint8_t *cursor = NULL;
	int left = opt_lines, rv;
	for (bool first = true;; first = false) {
		page.limit = page_limit(left);
		ProtobufCMessage *out = NULL;
		rv = cli_call(cli, CLI_RECORDER, &noetl__recorder__descriptor, "QueryExecutions",
		              &q.base, NULL, &out);
		if (rv != CLI_OK)
			break;
		Noetl__ExecutionsReply *r = (Noetl__ExecutionsReply *)out;
		if (first)
			since = r->revision;
		for (size_t i = 0; i < r->n_executions && left > 0; i++, left--)
			json_array_append_new(newest, exec_json(r->executions[i]));
		bool more = left > 0 && next_page(&page, r->next_cursor, &cursor);
		protobuf_c_message_free_unpacked(out, NULL);
		if (!more)
			break;
	}
	free(cursor);
	if (rv != CLI_OK) {
		json_decref(newest);
		return rv;
	}
	json_t *rows = json_array();
	for (size_t i = json_array_size(newest); i-- > 0;)
		json_array_append(rows, json_array_get(newest, i));
	json_decref(newest);
	rv = print_rows(cli, rows, exec_cols, opt_follow);
	json_decref(rows);
	if (rv != CLI_OK || !opt_follow)
		return rv;
	struct follow f = {
	        .cli = cli,
	        .event = q.event_id,
	        .failed = opt_failed,
	        .dead = opt_dead,
	};
	return follow_from(cli, &f, tenant, since);
}

/* --- logs ------------------------------------------------------------------------ */

/* Parses --since: a duration back from now, an ISO time (UTC), or Unix ms. */
static int parse_since(const char *text, int64_t *out)
{
	int64_t d;
	if (config_parse_duration(text, &d) == 0) {
		*out = util_now_ms() - d;
		return 0;
	}
	bool digits = *text != '\0';
	for (const char *p = text; *p != '\0'; p++)
		digits = digits && isdigit((unsigned char)*p);
	if (digits) {
		*out = strtoll(text, NULL, 10);
		return 0;
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		end = strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
	if (end == NULL) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(text, "%Y-%m-%d", &tm);
	}
	if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
		return -EINVAL;
	*out = (int64_t)timegm(&tm) * 1000;
	return 0;
}

static int run_logs(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage(cli, "logs takes one tenant, got %d arguments", argc);
	const char *tenant = argc == 1 ? argv[0] : cli->tenant;
	if (tenant == NULL || *tenant == '\0')
		return cli_usage(cli, "logs needs a tenant: noetlctl logs TENANT");
	if (opt_lines < 0 || opt_lines > 100000)
		return cli_usage(cli, "--lines must be between 0 and 100000, got %d", opt_lines);
	if (opt_follow) {
		sigset_t sigs;
		stop_signals(&sigs);
	}
	int level = 0;
	for (int i = 0; i < 4; i++)
		if (strcmp(opt_level, level_names[i]) == 0)
			level = i;
	Noetl__LogQuery q = NOETL__LOG_QUERY__INIT;
	q.tenant = (char *)tenant;
	q.event_id = opt_event != NULL ? opt_event : "";
	q.min_level = (Noetl__LogLevel)level;
	if (opt_since != NULL && parse_since(opt_since, &q.since_ms) != 0)
		return cli_usage(cli,
		                 "--since '%s' is not a duration (10m), a time "
		                 "(2026-11-23T09:00:00Z) or Unix milliseconds",
		                 opt_since);
	if (q.since_ms < 0)
		q.since_ms = 0;
	Noetl__Page page = NOETL__PAGE__INIT;
	q.page = &page;
	q.newest_first = opt_lines > 0;

	/* page through; the first page's revision is where following starts */
	uint64_t since = 0;
	bool first = true;
	int left = opt_lines;
	json_t *collected = cli->format != CLI_TABLE && !opt_follow ? json_array() : NULL;
	Noetl__LogLine **newest = NULL; /* --lines: kept to print oldest first */
	size_t nnewest = 0;
	ProtobufCMessage *pages[1024];
	size_t npages = 0;
	uint8_t *cursor = NULL;
	int rv = CLI_OK;
	for (;;) {
		page.limit = page_limit(opt_lines > 0 ? left : 0);
		ProtobufCMessage *out = NULL;
		/* the request names the tenant; the caller acts for it too */
		rv = cli_call(cli, CLI_RECORDER, &noetl__recorder__descriptor, "QueryLogs", &q.base,
		              tenant, &out);
		if (rv != CLI_OK)
			break;
		Noetl__LogsReply *r = (Noetl__LogsReply *)out;
		if (first)
			since = r->revision;
		first = false;
		if (opt_lines > 0) {
			/* newest first: keep the pages, print them reversed at the end */
			if (npages == sizeof(pages) / sizeof(pages[0])) {
				protobuf_c_message_free_unpacked(out, NULL);
				break;
			}
			pages[npages++] = out;
			left -= (int)r->n_lines;
			Noetl__LogLine **nl = realloc(newest, (nnewest + r->n_lines) * sizeof(*nl));
			if (nl == NULL) {
				rv = cli_fail(cli, "out of memory");
				break;
			}
			newest = nl;
			for (size_t i = 0; i < r->n_lines; i++)
				newest[nnewest++] = r->lines[i];
		} else if (collected != NULL) {
			for (size_t i = 0; i < r->n_lines; i++)
				json_array_append_new(collected, log_json(r->lines[i]));
		} else {
			rv = print_logs(cli, r->lines, r->n_lines, false, opt_follow);
		}
		bool more =
		        (opt_lines == 0 || left > 0) && next_page(&page, r->next_cursor, &cursor);
		if (opt_lines == 0)
			protobuf_c_message_free_unpacked(out, NULL);
		if (!more || rv != CLI_OK)
			break;
	}
	if (rv == CLI_OK && opt_lines > 0)
		rv = print_logs(cli, newest, nnewest, true, opt_follow);
	else if (rv == CLI_OK && collected != NULL)
		rv = cli_output(cli, collected, NULL);
	free(newest);
	free(cursor);
	for (size_t i = 0; i < npages; i++)
		protobuf_c_message_free_unpacked(pages[i], NULL);
	json_decref(collected);
	if (rv != CLI_OK || !opt_follow)
		return rv;
	struct follow f = {.cli = cli, .event = q.event_id, .min_level = level, .logs = true};
	return follow_from(cli, &f, tenant, since);
}

/* --- the table ------------------------------------------------------------------ */

const struct cli_command cli_recorder_commands[] = {
        {.name = "recorder",
         .args = "",
         .summary = "show the newest executions, of every tenant or of --tenant",
         .run = run_recorder,
         .options = recorder_options,
         .settings = recorder_settings,
         .help = "Prints the newest executions oldest first: when each started, its tenant,\n"
                 "event id and event, the attempt, the outcome (ok, error, failed, dead), the\n"
                 "module's code, how long it took and why it failed. --follow keeps printing\n"
                 "executions as they are recorded (as JSON lines with -o json) until Ctrl-C."},
        {.name = "logs",
         .args = "<tenant>",
         .summary = "show a tenant's log lines (guests and external workers)",
         .run = run_logs,
         .options = logs_options,
         .settings = recorder_settings,
         .help = "Prints the tenant's log lines oldest first, each as\n"
                 "  TIME LEVEL [EVENT ID] SOURCE: TEXT\n"
                 "where SOURCE is 'guest' for lines a module logged and the worker's name for\n"
                 "workers outside the platform. --follow keeps printing new lines (as JSON\n"
                 "lines with -o json) until Ctrl-C, without missing or repeating any."},
        {0},
};
