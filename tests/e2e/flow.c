#include "flow.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *flow_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s != NULL ? s : "";
}

json_t *flow_parse(const char *text, const char *what)
{
	json_error_t je;
	json_t *doc = json_loads(text, 0, &je);
	cr_assert_not_null(doc, "%s is not JSON (%s at line %d):\n%s", what, je.text, je.line,
	                   text);
	return doc;
}

json_t *flow_event(struct cluster *c, const char *id)
{
	char *out = NULL;
	int st = cluster_ctl(c, &out, "events show %s -o json", id);
	json_t *doc = NULL;
	if (st == 0)
		doc = flow_parse(out, "events show -o json");
	free(out);
	return doc;
}

bool flow_has_step(json_t *doc, const char *step)
{
	json_t *entries = json_object_get(doc, "entries");
	for (size_t i = 0; i < json_array_size(entries); i++)
		if (strcmp(flow_str(json_array_get(entries, i), "step"), step) == 0)
			return true;
	return false;
}

char *flow_state(struct cluster *c, const char *id)
{
	json_t *doc = flow_event(c, id);
	json_t *entries = json_object_get(doc, "entries");
	size_t n = json_array_size(entries);
	char *s = strdup(n > 0 ? flow_str(json_array_get(entries, n - 1), "step") : "");
	json_decref(doc);
	return s;
}

json_t *flow_wait_step(struct cluster *c, const char *id, const char *step, int timeout_ms)
{
	long long end = cluster_now_ms() + timeout_ms;
	for (;;) {
		json_t *doc = flow_event(c, id);
		if (doc != NULL && flow_has_step(doc, step))
			return doc;
		if (cluster_now_ms() > end) {
			char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(1)) : NULL;
			cluster_dump_logs(c);
			cr_assert_fail(
			        "event %s did not reach step '%s' within %d ms; its timeline:\n%s",
			        id, step, timeout_ms,
			        text != NULL ? text : "(unknown to the recorder)");
		}
		json_decref(doc);
		cluster_sleep_ms(100);
	}
}

json_t *flow_executions(struct cluster *c, const char *tenant, const char *id)
{
	char *out =
	        cluster_ctl_ok(c, "recorder --tenant %s --event %s -n 1000 -o json", tenant, id);
	json_t *doc = flow_parse(out, "recorder -o json");
	free(out);
	/* The command prints an array, or an object holding one. */
	if (json_is_array(doc))
		return doc;
	json_t *arr = json_object_get(doc, "executions");
	cr_assert(json_is_array(arr), "no executions array in recorder -o json");
	json_incref(arr);
	json_decref(doc);
	return arr;
}

json_t *flow_last(json_t *arr)
{
	size_t n = json_array_size(arr);
	return n > 0 ? json_array_get(arr, n - 1) : NULL;
}

void flow_post(struct cluster *c, const char *path, const char *body, char *out, size_t cap)
{
	struct httpc_reply r;
	int st = cluster_post_deployed(c, path, body, &r, 20000);
	if (st != 202) {
		cluster_dump_logs(c);
		cr_assert_fail("POST %s %s: %d %s", path, body, st, r.body != NULL ? r.body : "");
	}
	cr_assert(cluster_first_id(&r, out, cap), "no id in the 202 reply: %s", r.body);
	httpc_reply_free(&r);
}
