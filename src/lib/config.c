#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"

/* --- names --------------------------------------------------------------- */

/* '.', '-' and '_' are one letter in flag names; otherwise exact. */
static bool same_flag_char(char a, char b)
{
	bool sa = a == '.' || a == '-' || a == '_';
	bool sb = b == '.' || b == '-' || b == '_';
	return sa ? sb : a == b;
}

static bool flag_name_eq(const char *name, size_t len, const char *key)
{
	size_t i;
	for (i = 0; i < len && key[i] != '\0'; i++) {
		if (!same_flag_char(name[i], key[i]))
			return false;
	}
	return i == len && key[i] == '\0';
}

void config_env_name(const char *key, char *buf, size_t cap)
{
	if (cap == 0)
		return;
	size_t n = (size_t)snprintf(buf, cap, "NOETL_");
	for (; *key != '\0' && n + 1 < cap; key++) {
		char c = *key;
		buf[n++] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
	}
	buf[n < cap ? n : cap - 1] = '\0';
}
/* --- environment ------------------------------------------------------------ */

int config_load_env(const struct config_option *opts, char **err)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		char name[256], where[300];
		config_env_name(o->key, name, sizeof(name));
		const char *v = getenv(name);
		/* An empty variable counts as unset: container tools often pass
		 * NAME= for "no value". */
		if (v == NULL || *v == '\0')
			continue;
		snprintf(where, sizeof(where), "environment variable %s", name);
		int rv = config__set_value(o, v, where, err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/* --- flags ------------------------------------------------------------------ */

/* Finds the option a flag names: by key, by long alias, or for one-letter
 * names by short alias. */
static const struct config_option *find_flag(const struct config_option *opts, const char *name,
                                             size_t len, bool is_short)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		if (is_short) {
			if (o->flag != NULL && strlen(o->flag) == 1 && len == 1 &&
			    o->flag[0] == name[0])
				return o;
			continue;
		}
		if (flag_name_eq(name, len, o->key))
			return o;
		if (o->flag != NULL && strlen(o->flag) > 1 && flag_name_eq(name, len, o->flag))
			return o;
	}
	return NULL;
}

/*
 * One pass over the flags. With apply false nothing is stored: the pass
 * only finds --config/-c (if want_config) and --help and validates the
 * syntax, so that config_load knows the file before it applies anything.
 */
static int parse_flags(const struct config_option *opts, int argc, char **argv, bool stop,
                       bool apply, bool want_config, const char **config_path, int *next,
                       bool *help, char **err)
{
	char **flags = NULL, **operands = NULL;
	int nflags = 0, nops = 0, rv = 0;

	if (argc > 1) {
		flags = calloc((size_t)argc, sizeof(char *));
		operands = calloc((size_t)argc, sizeof(char *));
		if (flags == NULL || operands == NULL) {
			rv = config__fail(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	*help = false;
	int i;
	for (i = 1; i < argc; i++) {
		char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			flags[nflags++] = arg;
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			if (stop)
				break;
			operands[nops++] = arg;
			continue;
		}
		flags[nflags++] = arg;
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			*help = true;
			continue;
		}
		bool is_short = arg[1] != '-';
		const char *name = arg + (is_short ? 1 : 2);
		const char *eq = strchr(name, '=');
		size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		const char *value = eq != NULL ? eq + 1 : NULL;
		if (is_short && len > 1 && eq == NULL) {
			/* -ojson: the rest of the word is the value */
			value = name + 1;
			len = 1;
		}

		bool is_config = want_config && ((is_short && name[0] == 'c' && len == 1) ||
		                                 (!is_short && flag_name_eq(name, len, "config")));
		const struct config_option *o = NULL;
		bool negated = false;
		if (!is_config) {
			o = find_flag(opts, name, len, is_short);
			if (o == NULL && !is_short && len > 3 && strncmp(name, "no-", 3) == 0) {
				o = find_flag(opts, name + 3, len - 3, false);
				if (o != NULL && o->type == CONFIG_BOOL && value == NULL)
					negated = true;
				else
					o = NULL;
			}
			if (o == NULL) {
				char shown[256];
				snprintf(shown, sizeof(shown), "%s", arg);
				char *e = strchr(shown, '=');
				if (e != NULL)
					*e = '\0';
				rv = config__fail(err, -EINVAL, "unknown flag '%s' (see --help)",
				                  shown);
				goto out;
			}
		}
		if (negated) {
			value = "false";
		} else if (value == NULL && o != NULL && o->type == CONFIG_BOOL) {
			value = "true";
		} else if (value == NULL) {
			if (i + 1 >= argc) {
				rv = config__fail(err, -EINVAL, "flag '%s' needs a value", arg);
				goto out;
			}
			value = argv[++i];
			flags[nflags++] = argv[i];
		}
		if (is_config) {
			if (config_path != NULL)
				*config_path = value;
			continue;
		}
		if (apply) {
			char where[300];
			snprintf(where, sizeof(where), "flag %s%.*s", is_short ? "-" : "--",
			         (int)len, name);
			if ((rv = config__set_value(o, value, where, err)) != 0)
				goto out;
		}
	}
	/* Every argument before i is now in flags or operands; put the flags
	 * first, then the operands met among them. The unparsed tail (from i)
	 * already follows, in order. */
	int k = 1;
	for (int j = 0; j < nflags; j++)
		argv[k++] = flags[j];
	for (int j = 0; j < nops; j++)
		argv[k++] = operands[j];
	*next = 1 + nflags;
out:
	free(flags);
	free(operands);
	return rv;
}

int config_parse_flags(const struct config_option *opts, int argc, char **argv,
                       bool stop_at_operand, int *next, bool *help, char **err)
{
	return parse_flags(opts, argc, argv, stop_at_operand, true, false, NULL, next, help, err);
}

/* Expands a leading "~/" with $HOME into a malloc'ed path. */
static char *expand_home(const char *path)
{
	if (strncmp(path, "~/", 2) == 0) {
		const char *home = getenv("HOME");
		if (home == NULL || *home == '\0')
			return NULL;
		char *out;
		if (asprintf(&out, "%s/%s", home, path + 2) < 0)
			return NULL;
		return out;
	}
	return strdup(path);
}

int config_load(const struct config_spec *spec, int argc, char **argv, int *next, bool *help,
                char **err)
{
	const char *named = NULL;
	bool named_by_env = false;
	int rv, first;

	rv = parse_flags(spec->options, argc, argv, spec->stop_at_operand, false, true, &named,
	                 &first, help, err);
	if (rv != 0)
		return rv;
	if (*help) {
		*next = first;
		return 0;
	}
	if ((rv = config_set_defaults(spec->options, err)) != 0)
		return rv;
	if (named == NULL) {
		const char *env = getenv("NOETL_CONFIG");
		if (env != NULL && *env != '\0') {
			named = env;
			named_by_env = true;
		}
	}
	if (named != NULL) {
		if (*named == '\0')
			return config__fail(err, -EINVAL, "%s names no file",
			                    named_by_env ? "NOETL_CONFIG" : "--config");
		char *path = expand_home(named);
		if (path == NULL)
			return config__fail(err, -ENOMEM, "cannot expand '%s'", named);
		rv = config_load_file(spec->options, path, err);
		free(path);
		if (rv != 0)
			return rv;
	} else if (spec->default_file != NULL) {
		char *path = expand_home(spec->default_file);
		if (path != NULL && access(path, F_OK) == 0)
			rv = config_load_file(spec->options, path, err);
		free(path);
		if (rv != 0)
			return rv;
	}
	if ((rv = config_load_env(spec->options, err)) != 0)
		return rv;
	return parse_flags(spec->options, argc, argv, spec->stop_at_operand, true, true, NULL, next,
	                   help, err);
}

/* --- help ------------------------------------------------------------------- */

static const char *metavar(const struct config_option *o)
{
	switch (o->type) {
	case CONFIG_STRING:
		return "TEXT";
	case CONFIG_INT:
		return "N";
	case CONFIG_BOOL:
		return NULL;
	case CONFIG_DURATION:
		return "DURATION";
	case CONFIG_SIZE:
		return "SIZE";
	case CONFIG_URL:
		return "URL";
	case CONFIG_URLS:
		return "URL,...";
	case CONFIG_ENUM:
		return o->choices;
	}
	return "VALUE";
}

static void usage_line(FILE *out, const char *left, const char *help, const char *extra)
{
	int n = fprintf(out, "  %s", left);
	if (n > 32) {
		fprintf(out, "\n%34s", "");
	} else {
		fprintf(out, "%*s", 34 - n, "");
	}
	fprintf(out, "%s\n", help != NULL ? help : "");
	if (extra != NULL && *extra != '\0')
		fprintf(out, "%34s[%s]\n", "", extra);
}

void config_usage_options(const struct config_option *opts, bool with_env, FILE *out)
{
	for (const struct config_option *o = opts; o->key != NULL; o++) {
		char left[256], extra[512], env[256];
		const char *mv = metavar(o);
		const char *longname = o->key;
		char shortpart[8] = "";
		if (o->flag != NULL && strlen(o->flag) == 1)
			snprintf(shortpart, sizeof(shortpart), "-%s, ", o->flag);
		else if (o->flag != NULL)
			longname = o->flag;
		snprintf(left, sizeof(left), "%s--%s%s%s", shortpart, longname, mv ? " " : "",
		         mv ? mv : "");
		config_env_name(o->key, env, sizeof(env));
		size_t n = 0;
		extra[0] = '\0';
		if (with_env)
			n += (size_t)snprintf(extra, sizeof(extra), "env %s", env);
		if (longname != o->key && n < sizeof(extra))
			n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s--%s", n ? ", " : "",
			                      o->key);
		if (o->def != NULL && *o->def != '\0' && n < sizeof(extra))
			snprintf(extra + n, sizeof(extra) - n, "%sdefault %s", n ? ", " : "",
			         o->def);
		usage_line(out, left, o->help, extra);
	}
}

void config_usage(const struct config_spec *spec, FILE *out)
{
	fprintf(out, "usage: %s %s\n", spec->program, spec->usage ? spec->usage : "[options]");
	if (spec->summary != NULL)
		fprintf(out, "\n%s\n", spec->summary);
	fprintf(out, "\noptions:\n");
	char extra[512];
	snprintf(extra, sizeof(extra), "env NOETL_CONFIG%s%s",
	         spec->default_file ? ", default " : "",
	         spec->default_file ? spec->default_file : "");
	usage_line(out, "-c, --config FILE", "read settings from this YAML file", extra);
	usage_line(out, "-h, --help", "print this help and exit", NULL);
	config_usage_options(spec->options, true, out);
	fprintf(out, "\nPrecedence: flag > environment > file > default. "
	             "Durations: 250ms, 5s, 1m30s; sizes: 4096, 64KiB, 16MiB.\n");
}
