#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(struct metrics *r)
{
	char *text = NULL;
	size_t len = 0;
	cr_assert_eq(metrics_render(r, &text, &len), 0);
	cr_assert_eq(strlen(text), len);
	return text;
}

#define assert_has(text, s)                                                                        \
	cr_assert(strstr((text), (s)) != NULL, "missing '%s' in:\n%s", (s), (text))

Test(metrics, counters_render_help_type_and_labelled_series)
{
	struct metrics *r;
	struct metric *c;
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(
	        metrics_counter(r, "noetl_events_total", "Events accepted.", "tenant, queue", &c),
	        0);
	metric_add(c, (const char *[]){"acme", "default"}, 1);
	metric_add(c, (const char *[]){"acme", "default"}, 2);
	metric_add(c, (const char *[]){"beta", "slow"}, 1);
	metric_add(c, (const char *[]){"beta", "slow"}, -5); /* ignored: counters only go up */
	cr_assert_eq(metric_value(c, (const char *[]){"acme", "default"}), 3);
	cr_assert_eq(metric_value(c, (const char *[]){"nobody", "x"}), 0);

	char *text = render(r);
	assert_has(text, "# HELP noetl_events_total Events accepted.\n"
	                 "# TYPE noetl_events_total counter\n"
	                 "noetl_events_total{tenant=\"acme\",queue=\"default\"} 3\n"
	                 "noetl_events_total{tenant=\"beta\",queue=\"slow\"} 1\n");
	free(text);
	metrics_destroy(r);
}

Test(metrics, gauges_set_and_add_and_unlabelled_series_have_no_braces)
{
	struct metrics *r;
	struct metric *g;
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(metrics_gauge(r, "noetl_inflight", "Calls in flight.", NULL, &g), 0);
	metric_set(g, NULL, 5);
	metric_add(g, NULL, -2);
	metric_add(g, NULL, 0.5);
	char *text = render(r);
	assert_has(text, "# TYPE noetl_inflight gauge\nnoetl_inflight 3.5\n");
	free(text);
	metrics_destroy(r);
}

Test(metrics, histograms_render_cumulative_buckets_sum_and_count)
{
	struct metrics *r;
	struct metric *h;
	const double b[] = {0.1, 1, 10};
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(
	        metrics_histogram(r, "noetl_call_seconds", "Call latency.", "method", b, 3, &h), 0);
	const char *m[] = {"Enqueue"};
	metric_observe(h, m, 0.05);
	metric_observe(h, m, 0.1); /* on the bound: counts in le="0.1" */
	metric_observe(h, m, 5);
	metric_observe(h, m, 50);
	cr_assert_eq(metric_value(h, m), 4);
	char *text = render(r);
	assert_has(text, "# TYPE noetl_call_seconds histogram\n"
	                 "noetl_call_seconds_bucket{method=\"Enqueue\",le=\"0.1\"} 2\n"
	                 "noetl_call_seconds_bucket{method=\"Enqueue\",le=\"1\"} 2\n"
	                 "noetl_call_seconds_bucket{method=\"Enqueue\",le=\"10\"} 3\n"
	                 "noetl_call_seconds_bucket{method=\"Enqueue\",le=\"+Inf\"} 4\n"
	                 "noetl_call_seconds_sum{method=\"Enqueue\"} 55.15\n"
	                 "noetl_call_seconds_count{method=\"Enqueue\"} 4\n");
	free(text);
	metrics_destroy(r);
}

Test(metrics, label_values_and_help_are_escaped)
{
	struct metrics *r;
	struct metric *c;
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(metrics_counter(r, "x_total", "a \\ b\nc", "name", &c), 0);
	metric_add(c, (const char *[]){"q\"uote\\back\nline"}, 1);
	char *text = render(r);
	assert_has(text, "# HELP x_total a \\\\ b\\nc\n");
	assert_has(text, "x_total{name=\"q\\\"uote\\\\back\\nline\"} 1\n");
	free(text);
	metrics_destroy(r);
}

Test(metrics, bad_names_and_labels_are_refused)
{
	struct metrics *r;
	struct metric *c;
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(metrics_counter(r, "9lives", "", NULL, &c), -EINVAL);
	cr_assert_eq(metrics_counter(r, "has-dash", "", NULL, &c), -EINVAL);
	cr_assert_eq(metrics_counter(r, "", "", NULL, &c), -EINVAL);
	cr_assert_eq(metrics_counter(r, "ok", "", "le", &c), -EINVAL);
	cr_assert_eq(metrics_counter(r, "ok", "", "__x", &c), -EINVAL);
	cr_assert_eq(metrics_counter(r, "ok", "", "a,a", &c), -EINVAL);
	cr_assert_eq(metrics_counter(r, "ok", "", "a,,b", &c), -EINVAL);
	cr_assert_eq(metrics_counter(r, "ok", "", "a,b,c,d,e,f,g,h,i", &c), -EINVAL);
	const double bad[] = {1, 0.5};
	cr_assert_eq(metrics_histogram(r, "h", "", NULL, bad, 2, &c), -EINVAL);
	cr_assert_eq(metrics_histogram(r, "h", "", NULL, bad, 0, &c), -EINVAL);
	metrics_destroy(r);
}

Test(metrics, registering_the_same_definition_returns_the_same_metric)
{
	struct metrics *r;
	struct metric *a, *b, *c;
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(metrics_counter(r, "calls_total", "Calls.", "method", &a), 0);
	cr_assert_eq(metrics_counter(r, "calls_total", "Calls.", "method", &b), 0);
	cr_assert_eq(a, b);
	cr_assert_eq(metrics_counter(r, "calls_total", "Calls.", "tenant", &c), -EEXIST);
	cr_assert_eq(metrics_gauge(r, "calls_total", "Calls.", "method", &c), -EEXIST);
	metrics_destroy(r);
}

Test(metrics, the_series_cap_drops_new_label_sets_and_reports_the_drops)
{
	struct metrics *r;
	struct metric *c;
	cr_assert_eq(metrics_create(3, &r), 0);
	cr_assert_eq(metrics_counter(r, "hits_total", "Hits.", "tenant", &c), 0);
	char name[16];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		metric_add(c, (const char *[]){name}, 1);
	}
	metric_add(c, (const char *[]){"t0"}, 1); /* existing series still count */
	cr_assert_eq(metric_value(c, (const char *[]){"t0"}), 2);
	cr_assert_eq(metric_value(c, (const char *[]){"t5"}), 0);
	char *text = render(r);
	assert_has(text, "hits_total{tenant=\"t2\"} 1\n");
	cr_assert_null(strstr(text, "t3"), "%s", text);
	assert_has(text, "noetl_metrics_dropped_series_total{metric=\"hits_total\"} 7\n");
	free(text);
	metrics_destroy(r);
}

struct depth {
	int calls;
};

static void report_depth(struct metrics_emitter *e, void *arg)
{
	struct depth *d = arg;
	d->calls++;
	metrics_emit(e, (const char *[]){"acme", "ready"}, 42);
	metrics_emit(e, (const char *[]){"acme", "dead"}, 1e-3);
}

Test(metrics, callbacks_report_values_at_scrape_time_until_unregistered)
{
	struct metrics *r;
	struct depth d = {0};
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(metrics_callback(r, "noetl_queue_depth", "Items per state.", "tenant,state",
	                              METRICS_GAUGE, report_depth, &d),
	             0);
	cr_assert_eq(metrics_callback(r, "noetl_queue_depth", "x", NULL, METRICS_GAUGE,
	                              report_depth, &d),
	             -EEXIST);
	char *text = render(r);
	cr_assert_eq(d.calls, 1);
	assert_has(text, "# TYPE noetl_queue_depth gauge\n"
	                 "noetl_queue_depth{tenant=\"acme\",state=\"ready\"} 42\n"
	                 "noetl_queue_depth{tenant=\"acme\",state=\"dead\"} 0.001\n");
	free(text);
	cr_assert_eq(metrics_unregister(r, "noetl_queue_depth"), 0);
	cr_assert_eq(metrics_unregister(r, "noetl_queue_depth"), -ENOENT);
	text = render(r);
	cr_assert_eq(d.calls, 1);
	cr_assert_str_eq(text, "");
	free(text);
	metrics_destroy(r);
}

Test(metrics, values_print_exactly_and_non_finite_values_use_prometheus_words)
{
	struct metrics *r;
	struct metric *g;
	cr_assert_eq(metrics_create(0, &r), 0);
	cr_assert_eq(metrics_gauge(r, "g", "", "k", &g), 0);
	metric_set(g, (const char *[]){"big"}, 12345678901234.0);
	metric_set(g, (const char *[]){"tenth"}, 0.1);
	metric_set(g, (const char *[]){"third"}, 1.0 / 3.0);
	metric_set(g, (const char *[]){"inf"}, INFINITY);
	metric_set(g, (const char *[]){"ninf"}, -INFINITY);
	metric_set(g, (const char *[]){"nan"}, NAN);
	char *text = render(r);
	assert_has(text, "g{k=\"big\"} 12345678901234\n");
	assert_has(text, "g{k=\"tenth\"} 0.1\n");
	assert_has(text, "g{k=\"third\"} 0.33333333333333331\n");
	assert_has(text, "g{k=\"inf\"} +Inf\n");
	assert_has(text, "g{k=\"ninf\"} -Inf\n");
	assert_has(text, "g{k=\"nan\"} NaN\n");
	free(text);
	metrics_destroy(r);
}

struct hammer {
	struct metric *c;
	struct metric *h;
	int id;
};

static void *hammer_run(void *arg)
{
	struct hammer *hm = arg;
	char tenant[8];
	snprintf(tenant, sizeof(tenant), "t%d", hm->id % 2);
	for (int i = 0; i < 10000; i++) {
		metric_add(hm->c, (const char *[]){tenant}, 1);
		metric_observe(hm->h, NULL, 0.002);
	}
	return NULL;
}

Test(metrics, concurrent_updates_from_many_threads_are_all_counted)
{
	struct metrics *r;
	struct hammer hm[8];
	pthread_t th[8];
	cr_assert_eq(metrics_create(0, &r), 0);
	struct metric *c, *h;
	cr_assert_eq(metrics_counter(r, "n_total", "", "tenant", &c), 0);
	cr_assert_eq(metrics_histogram(r, "lat_seconds", "", NULL, metrics_latency_buckets,
	                               metrics_latency_buckets_count, &h),
	             0);
	for (int i = 0; i < 8; i++) {
		hm[i] = (struct hammer){.c = c, .h = h, .id = i};
		cr_assert_eq(pthread_create(&th[i], NULL, hammer_run, &hm[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		free(render(r)); /* rendering while others write */
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(metric_value(c, (const char *[]){"t0"}), 40000);
	cr_assert_eq(metric_value(c, (const char *[]){"t1"}), 40000);
	cr_assert_eq(metric_value(h, NULL), 80000);
	char *text = render(r);
	assert_has(text, "lat_seconds_bucket{le=\"0.0025\"} 80000\n");
	assert_has(text, "lat_seconds_bucket{le=\"0.001\"} 0\n");
	free(text);
	metrics_destroy(r);
}

Test(metrics, the_process_families_report_resident_memory_and_the_heap)
{
	struct metrics *m;
	cr_assert_eq(metrics_create(0, &m), 0);
	cr_assert_eq(metrics_register_process(m), 0);
	cr_assert_eq(metrics_register_process(m), 0, "registering twice is harmless");
	void *keep = malloc(1 << 16); /* something in use */
	char *text;
	size_t len;
	cr_assert_eq(metrics_render(m, &text, &len), 0);
	const char *rss = strstr(text, "\nnoetl_process_resident_bytes ");
	const char *used = strstr(text, "noetl_process_heap_bytes{state=\"in_use\"} ");
	cr_assert_not_null(rss, "%s", text);
	cr_assert_not_null(used, "%s", text);
	cr_assert_not_null(strstr(text, "noetl_process_heap_bytes{state=\"free\"} "), "%s", text);
	cr_assert_gt(atof(rss + strlen("\nnoetl_process_resident_bytes ")), 1 << 20);
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator is not the one mallinfo2 describes */
	cr_assert_geq(atof(used + strlen("noetl_process_heap_bytes{state=\"in_use\"} ")), 1 << 16);
#endif
	free(keep);
	free(text);
	metrics_destroy(m);
}
