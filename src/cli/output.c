/*
 * output: one result, three shapes. Commands produce JSON; a table shows
 * chosen columns for people, JSON and YAML show everything for scripts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

#include "cli.h"

const char *cli_format_cell(json_t *v, enum cli_cell cell, char *buf, size_t cap)
{
	if (v == NULL || json_is_null(v)) {
		snprintf(buf, cap, "-");
		return buf;
	}
	if (json_is_number(v) && cell != CLI_CELL_TEXT) {
		double d = json_number_value(v);
		switch (cell) {
		case CLI_CELL_DURATION: {
			int64_t ms = (int64_t)d;
			if (ms < 1000) {
				snprintf(buf, cap, "%" PRId64 "ms", ms);
				return buf;
			}
			int64_t s = ms / 1000, days = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
			s %= 60;
			if (days > 0)
				snprintf(buf, cap, "%" PRId64 "d%" PRId64 "h", days, h);
			else if (h > 0)
				snprintf(buf, cap, "%" PRId64 "h%" PRId64 "m", h, m);
			else if (m > 0)
				snprintf(buf, cap, "%" PRId64 "m%" PRId64 "s", m, s);
			else
				snprintf(buf, cap, "%" PRId64 "s", s);
			return buf;
		}
		case CLI_CELL_TIME: {
			time_t t = (time_t)(d / 1000);
			struct tm tm;
			if (d <= 0 || gmtime_r(&t, &tm) == NULL) {
				snprintf(buf, cap, "-");
				return buf;
			}
			strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
			return buf;
		}
		case CLI_CELL_BYTES: {
			static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
			size_t u = 0;
			while (d >= 1024 && u < 4) {
				d /= 1024;
				u++;
			}
			if (u == 0)
				snprintf(buf, cap, "%.0f B", d);
			else
				snprintf(buf, cap, "%.1f %s", d, units[u]);
			return buf;
		}
		case CLI_CELL_TEXT:
			break;
		}
	}
	if (json_is_string(v)) {
		snprintf(buf, cap, "%s", json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		snprintf(buf, cap, "%g", json_real_value(v));
	} else if (json_is_true(v)) {
		snprintf(buf, cap, "yes");
	} else if (json_is_false(v)) {
		snprintf(buf, cap, "no");
	} else {
		char *s = json_dumps(v, JSON_COMPACT);
		snprintf(buf, cap, "%s", s != NULL ? s : "?");
		free(s);
	}
	/* one line per cell, whatever the value held */
	for (char *p = buf; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	}
	return buf;
}

#define CELL_MAX 256

void cli_print_table(FILE *out, json_t *rows, const struct cli_column *cols)
{
	size_t ncols = 0;
	while (cols[ncols].title != NULL)
		ncols++;
	if (ncols == 0)
		return;
	size_t *width = calloc(ncols, sizeof(size_t));
	if (width == NULL)
		return;
	char buf[CELL_MAX];
	for (size_t c = 0; c < ncols; c++)
		width[c] = strlen(cols[c].title);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < ncols; c++) {
			size_t n = strlen(cli_format_cell(json_object_get(row, cols[c].key),
			                                  cols[c].cell, buf, sizeof(buf)));
			if (n > width[c])
				width[c] = n;
		}
	}
	for (size_t c = 0; c < ncols; c++)
		fprintf(out, "%-*s%s", c + 1 < ncols ? (int)width[c] : 0, cols[c].title,
		        c + 1 < ncols ? "  " : "\n");
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < ncols; c++) {
			cli_format_cell(json_object_get(row, cols[c].key), cols[c].cell, buf,
			                sizeof(buf));
			fprintf(out, "%-*s%s", c + 1 < ncols ? (int)width[c] : 0, buf,
			        c + 1 < ncols ? "  " : "\n");
		}
	}
	free(width);
}

/* One object as KEY VALUE lines. */
static void print_object(FILE *out, json_t *obj, const struct cli_column *cols)
{
	char buf[CELL_MAX];
	size_t w = 0;
	if (cols != NULL) {
		for (const struct cli_column *c = cols; c->title != NULL; c++) {
			if (strlen(c->title) > w)
				w = strlen(c->title);
		}
		for (const struct cli_column *c = cols; c->title != NULL; c++)
			fprintf(out, "%-*s  %s\n", (int)w, c->title,
			        cli_format_cell(json_object_get(obj, c->key), c->cell, buf,
			                        sizeof(buf)));
		return;
	}
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		if (strlen(key) > w)
			w = strlen(key);
	}
	json_object_foreach(obj, key, v)
	{
		fprintf(out, "%-*s  %s\n", (int)w, key,
		        cli_format_cell(v, CLI_CELL_TEXT, buf, sizeof(buf)));
	}
}

/* Columns for rows shown without a column list: every member of the first
 * row, titled in upper case. */
static struct cli_column *columns_of(json_t *rows, char ***titles_out)
{
	json_t *first = json_array_get(rows, 0);
	size_t n = json_is_object(first) ? json_object_size(first) : 0;
	struct cli_column *cols = calloc(n + 1, sizeof(*cols));
	char **titles = calloc(n + 1, sizeof(char *));
	if (cols == NULL || titles == NULL) {
		free(cols);
		free(titles);
		return NULL;
	}
	size_t i = 0;
	const char *key;
	json_t *v;
	json_object_foreach(first, key, v)
	{
		titles[i] = strdup(key);
		if (titles[i] == NULL)
			break;
		for (char *p = titles[i]; *p != '\0'; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		cols[i].title = titles[i];
		cols[i].key = key;
		cols[i].cell = CLI_CELL_TEXT;
		i++;
	}
	*titles_out = titles;
	return cols;
}

int cli_print_json(FILE *out, json_t *data)
{
	if (json_dumpf(data, out, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
		return -EIO;
	fputc('\n', out);
	return ferror(out) ? -EIO : 0;
}

/* True if a plain YAML scalar with this text would read back as something
 * other than this string (a number, bool, null) or not parse at all. */
static bool needs_quotes(const char *s)
{
	static const char *const words[] = {"true", "false", "yes",  "no",    "on",    "off",
	                                    "null", "~",     "True", "False", "Yes",   "No",
	                                    "On",   "Off",   "Null", "TRUE",  "FALSE", "NULL",
	                                    "YES",  "NO",    "ON",   "OFF"};
	if (*s == '\0')
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(s, words[i]) == 0)
			return true;
	}
	char *end;
	strtod(s, &end);
	if (*end == '\0')
		return true; /* looks like a number */
	if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) != NULL || s[0] == ' ')
		return true;
	size_t n = strlen(s);
	if (s[n - 1] == ' ' || strstr(s, ": ") != NULL || strstr(s, " #") != NULL)
		return true;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20)
			return true;
	}
	return false;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	return yaml_emitter_emit(em, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, bool is_string)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
	if (is_string && needs_quotes(text))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text),
	                                  1, 1, style))
		return -ENOMEM;
	return emit(em, &ev);
}

static int emit_node(yaml_emitter_t *em, json_t *v)
{
	yaml_event_t ev;
	char num[64];
	int rv;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		                                         YAML_BLOCK_MAPPING_STYLE) ||
		    (rv = emit(em, &ev)) != 0)
			return -EIO;
		const char *key;
		json_t *item;
		json_object_foreach(v, key, item)
		{
			if ((rv = emit_scalar(em, key, true)) != 0 ||
			    (rv = emit_node(em, item)) != 0)
				return rv;
		}
		yaml_mapping_end_event_initialize(&ev);
		return emit(em, &ev);
	}
	case JSON_ARRAY: {
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                          YAML_BLOCK_SEQUENCE_STYLE) ||
		    (rv = emit(em, &ev)) != 0)
			return -EIO;
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
		{
			if ((rv = emit_node(em, item)) != 0)
				return rv;
		}
		yaml_sequence_end_event_initialize(&ev);
		return emit(em, &ev);
	}
	case JSON_STRING:
		return emit_scalar(em, json_string_value(v), true);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return emit_scalar(em, num, false);
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		return emit_scalar(em, num, false);
	case JSON_TRUE:
		return emit_scalar(em, "true", false);
	case JSON_FALSE:
		return emit_scalar(em, "false", false);
	case JSON_NULL:
		return emit_scalar(em, "null", false);
	}
	return -EINVAL;
}

int cli_print_yaml(FILE *out, json_t *data)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int rv = -EIO;
	if (!yaml_emitter_initialize(&em))
		return -ENOMEM;
	yaml_emitter_set_output_file(&em, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || emit(&em, &ev) != 0)
		goto out;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || emit(&em, &ev) != 0)
		goto out;
	if ((rv = emit_node(&em, data)) != 0)
		goto out;
	rv = -EIO;
	if (!yaml_document_end_event_initialize(&ev, 1) || emit(&em, &ev) != 0)
		goto out;
	if (!yaml_stream_end_event_initialize(&ev) || emit(&em, &ev) != 0)
		goto out;
	rv = yaml_emitter_flush(&em) ? 0 : -EIO;
out:
	yaml_emitter_delete(&em);
	return rv;
}

int cli_output(struct cli *cli, json_t *data, const struct cli_column *cols)
{
	int rv = 0;
	switch (cli->format) {
	case CLI_JSON:
		rv = cli_print_json(cli->out, data);
		break;
	case CLI_YAML:
		rv = cli_print_yaml(cli->out, data);
		break;
	case CLI_TABLE:
		if (json_is_array(data)) {
			if (cols != NULL) {
				cli_print_table(cli->out, data, cols);
			} else if (json_array_size(data) > 0) {
				char **titles = NULL;
				struct cli_column *auto_cols = columns_of(data, &titles);
				if (auto_cols != NULL)
					cli_print_table(cli->out, data, auto_cols);
				for (size_t i = 0; titles != NULL && titles[i] != NULL; i++)
					free(titles[i]);
				free(titles);
				free(auto_cols);
			}
		} else if (json_is_object(data)) {
			print_object(cli->out, data, cols);
		} else {
			char buf[CELL_MAX];
			fprintf(cli->out, "%s\n",
			        cli_format_cell(data, CLI_CELL_TEXT, buf, sizeof(buf)));
		}
		break;
	}
	fflush(cli->out);
	if (rv != 0 || ferror(cli->out))
		return cli_fail(cli, "cannot write the output: %s", strerror(errno));
	return CLI_OK;
}
