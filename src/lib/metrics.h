/*
 * metrics: a small thread-safe registry of counters, gauges and histograms,
 * rendered in the Prometheus text exposition format (version 0.0.4).
 *
 * A metric is registered once with its name, help and label names
 * ("tenant,queue"); each distinct tuple of label values is one series,
 * created the first time it is touched. Every service owns one registry and
 * hands it to httpd, which serves it on /metrics; the all-in-one process
 * shares one registry between its services, so registering the same
 * name again with the same type and labels returns the existing metric.
 *
 * Bounded: label values come from tenants and queues, i.e. from users, so
 * each metric keeps at most max_series series (default 1000). Updates to
 * further tuples are dropped and counted; the count is exported as
 * noetl_metrics_dropped_series_total{metric="..."}, so the loss is visible.
 *
 * Values computed at scrape time (queue depth, cache size) come from
 * callbacks: metrics_callback registers a function that reports its series
 * through metrics_emit while the registry renders.
 *
 * Threads: every function may be called from any thread. A metric is
 * updated under its own mutex; rendering takes the registry's lock and each
 * metric's in turn, and calls callbacks with no metric lock held. A callback
 * must not register or unregister metrics.
 */
#ifndef NOETL_METRICS_H
#define NOETL_METRICS_H

#include <stddef.h>

struct metrics;
struct metric;
struct metrics_emitter;

/* Upper bounds in seconds for latency histograms: 1 ms .. 10 s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_buckets_count;

/* Creates an empty registry. max_series caps the series of each metric
 * (0 = 1000). 0 or -ENOMEM. */
int metrics_create(size_t max_series, struct metrics **out);

/* Frees the registry and its metrics; pointers to them become invalid.
 * Accepts NULL. */
void metrics_destroy(struct metrics *r);

/*
 * Register a metric. name: [a-zA-Z_:][a-zA-Z0-9_:]*; labels: NULL or "" for
 * none, else comma-separated label names ([a-zA-Z_][a-zA-Z0-9_]*, not
 * starting with "__", not "le"), at most 8. help is one line (copied).
 * *out is owned by the registry and lives until metrics_destroy or
 * metrics_unregister. -EINVAL for a bad name or labels; -EEXIST if the name
 * is registered with another type or labels (or as a callback).
 */
int metrics_counter(struct metrics *r, const char *name, const char *help, const char *labels,
                    struct metric **out);
int metrics_gauge(struct metrics *r, const char *name, const char *help, const char *labels,
                  struct metric **out);
/* buckets: count increasing finite upper bounds (copied, at most 32); +Inf
 * is implicit. */
int metrics_histogram(struct metrics *r, const char *name, const char *help, const char *labels,
                      const double *buckets, size_t count, struct metric **out);

/*
 * Updates one series. values holds one label value per label name, in the
 * registered order (NULL when the metric has no labels); values are copied
 * when a series is created, and may be any UTF-8 text (escaped on output).
 * metric_add on a counter ignores negative v (counters only go up).
 * metric_set and metric_add work on gauges; metric_observe on histograms.
 * Using the wrong function for the type is a programming error and does
 * nothing. m may be NULL (an optional metric that was not registered).
 */
void metric_add(struct metric *m, const char *const *values, double v);
void metric_set(struct metric *m, const char *const *values, double v);
void metric_observe(struct metric *m, const char *const *values, double v);

/* Convenience for metrics without labels. */
#define metric_inc(m) metric_add((m), NULL, 1.0)

/* The current value of a counter or gauge series, or the count of a
 * histogram series; 0 if the series does not exist. For tests and
 * callbacks. */
double metric_value(struct metric *m, const char *const *values);

/* Which family a callback reports. */
enum metrics_kind {
	METRICS_COUNTER,
	METRICS_GAUGE,
};

/* Called while rendering; reports each series with metrics_emit. */
typedef void (*metrics_fn)(struct metrics_emitter *e, void *arg);

/*
 * Registers a family computed at scrape time: fn(e, arg) runs during every
 * metrics_render and calls metrics_emit once per series (at most max_series
 * of them are kept). arg is borrowed and must stay valid until
 * metrics_unregister(name) or metrics_destroy. Same name rules as above;
 * -EEXIST if the name is taken.
 */
int metrics_callback(struct metrics *r, const char *name, const char *help, const char *labels,
                     enum metrics_kind kind, metrics_fn fn, void *arg);

/* Inside a callback: one series with label values (as for metric_add). */
void metrics_emit(struct metrics_emitter *e, const char *const *values, double v);

/* Removes a metric or callback family; 0 or -ENOENT. Afterwards the metric
 * pointer is invalid, and a callback will not be called again. */
int metrics_unregister(struct metrics *r, const char *name);

/*
 * Renders every family, in registration order, in the Prometheus text
 * format: # HELP and # TYPE lines, then one line per series (histograms as
 * _bucket{le=...} cumulative lines, _sum and _count). *out is malloc'ed
 * and NUL-terminated, *len its length without the NUL. 0 or -ENOMEM.
 */
int metrics_render(struct metrics *r, char **out, size_t *len);

/*
 * Registers the process's own families on r: noetl_process_resident_bytes
 * (RSS) and noetl_process_heap_bytes{state="in_use"|"free"} (glibc malloc:
 * free bytes it keeps rather than returns, a part of the RSS that no other
 * figure shows). 0 (also if registered already) or -errno.
 */
int metrics_register_process(struct metrics *r);

#endif
