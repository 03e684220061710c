/*
 * config_int: what the config module's files share; not for other modules.
 */
#ifndef NOETL_CONFIG_INT_H
#define NOETL_CONFIG_INT_H

#include "config.h"

/* Sets *err (if not NULL) to a malloc'ed message; returns code. */
int config__fail(char **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses text as o's type and stores it in o->dest, freeing what it
 * replaces; where says where text came from ("queue.yaml:3:5", "flag
 * --rpc.listen", "environment variable NOETL_X") for the error. */
int config__set_value(const struct config_option *o, const char *text, const char *where,
                      char **err);

/* Sets a URL-list option from count items (borrowed, each checked). */
int config__set_list(const struct config_option *o, char *const *items, size_t count,
                     const char *where, char **err);

#endif
