#include "echo.h"

#include <stdio.h>
#include <string.h>

#include "rpc.h"
#include "util.h"

static void h_echo(Noetl__Echo_Service *svc, const Noetl__EchoRequest *in,
                   Noetl__EchoReply_Closure done, void *call)
{
	(void)svc;
	if (in->sleep_ms > 0)
		util_sleep_ms(in->sleep_ms);
	if (in->fail != NOETL__STATUS__OK) {
		rpc_fail(call, in->fail, "failing as asked with %s", rpc_status_name(in->fail));
		done(NULL, call);
		return;
	}
	Noetl__EchoReply r = NOETL__ECHO_REPLY__INIT;
	r.data = in->data;
	r.tenant = (char *)rpc_tenant(call);
	r.trace_id = (char *)rpc_trace_id(call);
	done(&r, call);
}

static const char *topic_of(const struct echo *e, uint64_t rev)
{
	if (e->topic_of_odd == NULL)
		return "";
	return (rev & 1) ? e->topic_of_odd : "even";
}

void echo_change(const struct echo *e, uint64_t rev, Noetl__Change *out, char *body, size_t cap)
{
	noetl__change__init(out);
	out->revision = rev;
	out->prev_revision = rev - 1;
	if (e->topic_of_odd != NULL)
		out->prev_topic_revision = rev > 2 ? rev - 2 : 0;
	else
		out->prev_topic_revision = rev - 1;
	out->topic = (char *)topic_of(e, rev);
	snprintf(body, cap, "%llu", (unsigned long long)rev);
	out->body.data = (uint8_t *)body;
	out->body.len = strlen(body);
}

static void h_changes(Noetl__Echo_Service *svc, const Noetl__ChangesRequest *in,
                      Noetl__ChangesReply_Closure done, void *call)
{
	struct echo *e = (struct echo *)svc;
	if (e->log != NULL) {
		Noetl__ChangesReply *lr = NULL;
		if (changelog_read(e->log, in->since, in->topic, in->limit, &lr) != 0) {
			rpc_fail(call, NOETL__STATUS__INTERNAL, "reading the change log failed");
			done(NULL, call);
			return;
		}
		done(lr, call);
		changelog_reply_free(lr);
		return;
	}
	uint32_t limit = in->limit > 0 && in->limit < 100 ? in->limit : 100;
	Noetl__Change chg[100], *ptrs[100];
	char bodies[100][24];
	size_t n = 0;
	uint64_t rev = in->since + 1;
	for (; rev <= e->head && n < limit; rev++) {
		if (in->topic[0] != '\0' && strcmp(topic_of(e, rev), in->topic) != 0)
			continue;
		echo_change(e, rev, &chg[n], bodies[n], sizeof(bodies[n]));
		ptrs[n] = &chg[n];
		n++;
	}
	Noetl__ChangesReply r = NOETL__CHANGES_REPLY__INIT;
	r.changes = ptrs;
	r.n_changes = n;
	r.head = e->head;
	r.more = rev <= e->head;
	(void)call;
	done(&r, call);
}

void echo_init(struct echo *e)
{
	static const Noetl__Echo_Service init = NOETL__ECHO__INIT(h_);
	memset(e, 0, sizeof(*e));
	e->svc = init;
}
