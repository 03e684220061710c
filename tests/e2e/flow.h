/*
 * flow: what several end-to-end tests ask of a running cluster about events,
 * through `noetlctl -o json`: an event's timeline and chain, the executions
 * the Recorder holds, the dead-letter queue.
 */
#ifndef NOETL_E2E_FLOW_H
#define NOETL_E2E_FLOW_H

#include <jansson.h>
#include <stdbool.h>

#include "cluster.h"

/* `noetlctl events show ID -o json` parsed, or NULL if the Recorder does
 * not know the event (yet). Caller json_decref's. */
json_t *flow_event(struct cluster *c, const char *id);

/* The last step of an event's timeline ("done", "dead", ...), malloc'ed;
 * "" when it has none yet. */
char *flow_state(struct cluster *c, const char *id);

/* Waits until the event's timeline has a step named step (e.g. "done"),
 * up to timeout_ms; fails the test with the timeline otherwise. Returns the
 * event's document (caller json_decref's). */
json_t *flow_wait_step(struct cluster *c, const char *id, const char *step, int timeout_ms);

/* True when doc's timeline has the step. */
bool flow_has_step(json_t *doc, const char *step);

/* The executions of one event (`noetlctl recorder --event ID -o json`), as
 * a JSON array, oldest first; caller json_decref's. */
json_t *flow_executions(struct cluster *c, const char *tenant, const char *id);

/* The last element of a JSON array (NULL if empty), borrowed. */
json_t *flow_last(json_t *arr);

/* Posts one event and returns its id in out (fails the test unless 202).
 * The event must be deployed; the post is repeated while the listener does
 * not know it yet. */
void flow_post(struct cluster *c, const char *path, const char *body, char *out, size_t cap);

/* A string member of a JSON object, or "" (never NULL). */
const char *flow_str(json_t *obj, const char *key);

/* Parses text as JSON or fails the test saying what. */
json_t *flow_parse(const char *text, const char *what);

#endif
