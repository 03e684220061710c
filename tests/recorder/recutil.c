#include "recutil.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static Noetl__Record *record(void)
{
	Noetl__Record *r = calloc(1, sizeof(*r));
	noetl__record__init(r);
	return r;
}

Noetl__Record *recutil_exec(const char *tenant, const char *event_id, uint32_t attempt,
                            int64_t start_ms, Noetl__ExecStatus status)
{
	Noetl__Record *r = record();
	Noetl__Execution *e = calloc(1, sizeof(*e));
	noetl__execution__init(e);
	e->tenant = util_xstrdup(tenant);
	e->event_id = util_xstrdup(event_id);
	e->event = util_xstrdup("greet");
	e->package = util_xstrdup("pkg");
	e->queue = util_xstrdup("q");
	e->host = util_xstrdup("host-1");
	e->attempt = attempt;
	e->start_ms = start_ms;
	e->end_ms = start_ms + 5;
	e->duration_us = 5000;
	e->status = status;
	e->code = status == NOETL__EXEC_STATUS__EXEC_OK ? 0 : 1;
	e->result.data = (uint8_t *)util_xstrdup("{\"ok\":true}");
	e->result.len = strlen((char *)e->result.data);
	if (status != NOETL__EXEC_STATUS__EXEC_OK)
		e->reason = util_xstrdup("exit code 1");
	r->kind_case = NOETL__RECORD__KIND_EXECUTION;
	r->execution = e;
	return r;
}

Noetl__Record *recutil_log(const char *tenant, const char *event_id, Noetl__LogLevel level,
                           int64_t time_ms, const char *text)
{
	Noetl__Record *r = record();
	Noetl__LogLine *l = calloc(1, sizeof(*l));
	noetl__log_line__init(l);
	l->tenant = util_xstrdup(tenant);
	if (event_id != NULL)
		l->event_id = util_xstrdup(event_id);
	l->level = level;
	l->time_ms = time_ms;
	l->text = util_xstrdup(text);
	l->source = util_xstrdup("guest");
	l->attempt = 1;
	r->kind_case = NOETL__RECORD__KIND_LOG;
	r->log = l;
	return r;
}

Noetl__Record *recutil_timeline(const char *tenant, const char *event_id, Noetl__TimelineKind kind,
                                int64_t time_ms, const char *related_id)
{
	Noetl__Record *r = record();
	Noetl__TimelineEntry *t = calloc(1, sizeof(*t));
	noetl__timeline_entry__init(t);
	t->tenant = util_xstrdup(tenant);
	t->event_id = util_xstrdup(event_id);
	t->event = util_xstrdup("greet");
	t->kind = kind;
	t->time_ms = time_ms;
	if (related_id != NULL)
		t->related_id = util_xstrdup(related_id);
	r->kind_case = NOETL__RECORD__KIND_TIMELINE;
	r->timeline = t;
	return r;
}

void recutil_free(Noetl__Record **recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (recs[i] != NULL)
			noetl__record__free_unpacked(recs[i], NULL);
}
