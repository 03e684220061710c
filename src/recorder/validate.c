/*
 * validate: checking and bounding incoming records. See validate.h.
 */
#include "validate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.pb-c.h"
#include "store.h"
#include "util.h"

#define NAME_MAX_LEN  128 /* package, event definition and queue names */
#define HOST_MAX      255
#define SHA_MAX       64
#define SOURCE_MAX    64
#define FUTURE_MAX_MS (24 * 3600 * 1000LL) /* times beyond now + this are refused */

void recorder_limits_defaults(struct recorder_limits *lim)
{
	if (lim->max_text == 0)
		lim->max_text = 16u << 10;
	if (lim->max_result == 0)
		lim->max_result = 64u << 10;
	if (lim->max_records == 0)
		lim->max_records = 10000;
}

void recorder_copy_release(struct recorder_copy *c)
{
	for (size_t i = 0; i < sizeof(c->owned) / sizeof(c->owned[0]); i++) {
		free(c->owned[i]);
		c->owned[i] = NULL;
	}
}

__attribute__((format(printf, 3, 4))) static int fail(char **why, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(why, fmt, ap) < 0)
		*why = NULL;
	va_end(ap);
	return status;
}

/* Cuts s to at most max bytes at a character boundary, into a string the
 * copy owns; returns whether it cut. */
static int cut(struct recorder_copy *c, char **s, size_t max, protobuf_c_boolean *cutp)
{
	size_t len = strlen(*s);
	if (len <= max)
		return 0;
	size_t n = max;
	while (n > 0 && ((unsigned char)(*s)[n] & 0xc0) == 0x80)
		n--; /* do not split a UTF-8 sequence */
	char *t = strndup(*s, n);
	if (t == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(c->owned) / sizeof(c->owned[0]); i++) {
		if (c->owned[i] == NULL) {
			c->owned[i] = t;
			*s = t;
			if (cutp != NULL)
				*cutp = true;
			return 0;
		}
	}
	free(t);
	return -ENOSPC; /* more cuts than slots: a bug in this file */
}

/* Checks an optional name field. */
static bool name_ok(const char *s, size_t max)
{
	return s[0] == '\0' || util_valid_name(s, max);
}

static bool printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* Checks a record's time: fills 0 with now, refuses the negative and the
 * far future. */
static int check_time(int64_t *t, const char *field, size_t index, int64_t now, char **why)
{
	if (*t == 0)
		*t = now;
	if (*t < 0)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: '%s' is negative (%lld); send Unix milliseconds", index,
		            field, (long long)*t);
	if (*t > now + FUTURE_MAX_MS)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: '%s' (%lld) is more than a day in the future; check the "
		            "sender's clock",
		            index, field, (long long)*t);
	return NOETL__STATUS__OK;
}

static int check_tenant(const char *tenant, size_t index, const char *caller, char **why)
{
	if (tenant[0] == '\0')
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'tenant' is empty; every record names its tenant", index);
	if (!util_valid_name(tenant, RECORDER_TENANT_MAX))
		return fail(
		        why, NOETL__STATUS__INVALID_ARGUMENT,
		        "record %zu: tenant '%.80s' is not a valid name (1-%d of A-Z a-z 0-9 _ . "
		        "-, not starting with '.')",
		        index, tenant, RECORDER_TENANT_MAX);
	if (caller[0] != '\0' && strcmp(caller, tenant) != 0)
		return fail(why, NOETL__STATUS__PERMISSION_DENIED,
		            "record %zu: tenant '%s' is not the caller's tenant '%s'", index,
		            tenant, caller);
	return NOETL__STATUS__OK;
}

static int check_event_id(const char *id, bool required, const char *field, size_t index,
                          char **why)
{
	if (id[0] == '\0' && !required)
		return NOETL__STATUS__OK;
	if (id[0] == '\0')
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT, "record %zu: '%s' is empty",
		            index, field);
	if (!util_valid_name(id, RECORDER_EVENT_MAX))
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: %s '%.80s' is not a valid id (1-%d of A-Z a-z 0-9 _ . -)",
		            index, field, id, RECORDER_EVENT_MAX);
	return NOETL__STATUS__OK;
}

static int check_names(size_t index, char **why, const char *pkg, const char *event,
                       const char *queue)
{
	const char *fields[3] = {"package", "event", "queue"};
	const char *vals[3] = {pkg, event, queue};
	for (int i = 0; i < 3; i++)
		if (!name_ok(vals[i], NAME_MAX_LEN))
			return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
			            "record %zu: %s '%.80s' is not a valid name", index, fields[i],
			            vals[i]);
	return NOETL__STATUS__OK;
}

static int check_execution(struct recorder_copy *c, size_t index, const struct recorder_limits *lim,
                           int64_t now, char **why)
{
	Noetl__Execution *e = &c->u.execution;
	int st = check_event_id(e->event_id, true, "event_id", index, why);
	if (st == NOETL__STATUS__OK)
		st = check_names(index, why, e->package, e->event, e->queue);
	if (st != NOETL__STATUS__OK)
		return st;
	if (e->attempt == 0)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'attempt' is 0; attempts count from 1", index);
	if (e->status < NOETL__EXEC_STATUS__EXEC_OK || e->status > NOETL__EXEC_STATUS__EXEC_DEAD)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'status' %d is not an ExecStatus", index, (int)e->status);
	if ((st = check_time(&e->start_ms, "start_ms", index, now, why)) != NOETL__STATUS__OK)
		return st;
	if (e->end_ms != 0 && (st = check_time(&e->end_ms, "end_ms", index, now, why)) != 0)
		return st;
	if (e->duration_us < 0)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'duration_us' is negative", index);
	if (e->outcome < NOETL__EXEC_OUTCOME__OUTCOME_UNSETTLED ||
	    e->outcome > NOETL__EXEC_OUTCOME__OUTCOME_DEAD)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'outcome' %d is not an ExecOutcome", index,
		            (int)e->outcome);
	/* 0 is "not said" here, not "now" as check_time would make it */
	if (e->leased_ms != 0 &&
	    (st = check_time(&e->leased_ms, "leased_ms", index, now, why)) != 0)
		return st;
	if (e->settled_ms != 0 &&
	    (st = check_time(&e->settled_ms, "settled_ms", index, now, why)) != 0)
		return st;
	if (e->retry_at_ms < 0)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'retry_at_ms' is negative; send Unix milliseconds", index);
	if (strlen(e->host) > HOST_MAX || !printable(e->host))
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'host' is longer than %d bytes or holds control "
		            "characters",
		            index, HOST_MAX);
	if (strlen(e->module_sha256) > SHA_MAX || !printable(e->module_sha256))
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'module_sha256' is not a hash (at most %d characters)",
		            index, SHA_MAX);
	if (cut(c, &e->reason, lim->max_text, NULL) != 0)
		return fail(why, NOETL__STATUS__RESOURCE_EXHAUSTED, "record %zu: out of memory",
		            index);
	if (e->result.len > lim->max_result) {
		e->result.len = lim->max_result; /* the copy points into the caller's bytes */
		e->result_truncated = true;
	}
	return NOETL__STATUS__OK;
}

static int check_log(struct recorder_copy *c, size_t index, const struct recorder_limits *lim,
                     int64_t now, char **why)
{
	Noetl__LogLine *l = &c->u.log;
	int st = check_event_id(l->event_id, false, "event_id", index, why);
	if (st != NOETL__STATUS__OK)
		return st;
	if (l->level < NOETL__LOG_LEVEL__LOG_DEBUG || l->level > NOETL__LOG_LEVEL__LOG_ERROR)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'level' %d is not a LogLevel (0 debug .. 3 error)", index,
		            (int)l->level);
	if ((st = check_time(&l->time_ms, "time_ms", index, now, why)) != NOETL__STATUS__OK)
		return st;
	if (strlen(l->source) > SOURCE_MAX || !printable(l->source))
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'source' is longer than %d bytes or holds control "
		            "characters",
		            index, SOURCE_MAX);
	if (cut(c, &l->text, lim->max_text, &l->truncated) != 0)
		return fail(why, NOETL__STATUS__RESOURCE_EXHAUSTED, "record %zu: out of memory",
		            index);
	return NOETL__STATUS__OK;
}

static int check_timeline(struct recorder_copy *c, size_t index, const struct recorder_limits *lim,
                          int64_t now, char **why)
{
	Noetl__TimelineEntry *t = &c->u.timeline;
	int st = check_event_id(t->event_id, true, "event_id", index, why);
	if (st == NOETL__STATUS__OK)
		st = check_names(index, why, "", t->event, "");
	if (st != NOETL__STATUS__OK)
		return st;
	if (t->kind < NOETL__TIMELINE_KIND__TL_RECEIVED ||
	    t->kind > NOETL__TIMELINE_KIND__TL_CAUSED_BY)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'kind' %d is not a TimelineKind", index, (int)t->kind);
	bool link = t->kind == NOETL__TIMELINE_KIND__TL_ROUTED ||
	            t->kind == NOETL__TIMELINE_KIND__TL_CAUSED_BY;
	st = check_event_id(t->related_id, link, "related_id", index, why);
	if (st != NOETL__STATUS__OK)
		return st;
	if (link && strcmp(t->related_id, t->event_id) == 0)
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: 'related_id' names the event itself; a follow-up is "
		            "another event",
		            index);
	if ((st = check_time(&t->time_ms, "time_ms", index, now, why)) != NOETL__STATUS__OK)
		return st;
	if (cut(c, &t->detail, lim->max_text, NULL) != 0)
		return fail(why, NOETL__STATUS__RESOURCE_EXHAUSTED, "record %zu: out of memory",
		            index);
	return NOETL__STATUS__OK;
}

int recorder_validate(const Noetl__Record *in, size_t index, const char *caller_tenant,
                      const struct recorder_limits *lim, int64_t now_ms, struct recorder_copy *c,
                      char **why)
{
	memset(c, 0, sizeof(*c));
	c->rec = *in;
	c->rec.revision = 0;
	bool empty = (in->kind_case == NOETL__RECORD__KIND_EXECUTION && in->execution == NULL) ||
	             (in->kind_case == NOETL__RECORD__KIND_LOG && in->log == NULL) ||
	             (in->kind_case == NOETL__RECORD__KIND_TIMELINE && in->timeline == NULL);
	switch (empty ? NOETL__RECORD__KIND__NOT_SET : in->kind_case) {
	case NOETL__RECORD__KIND_EXECUTION:
		c->u.execution = *in->execution;
		c->rec.execution = &c->u.execution;
		break;
	case NOETL__RECORD__KIND_LOG:
		c->u.log = *in->log;
		c->rec.log = &c->u.log;
		break;
	case NOETL__RECORD__KIND_TIMELINE:
		c->u.timeline = *in->timeline;
		c->rec.timeline = &c->u.timeline;
		break;
	default:
		return fail(why, NOETL__STATUS__INVALID_ARGUMENT,
		            "record %zu: empty; set one of execution, log or timeline", index);
	}
	const char *tenant = in->kind_case == NOETL__RECORD__KIND_EXECUTION ? in->execution->tenant
	                     : in->kind_case == NOETL__RECORD__KIND_LOG     ? in->log->tenant
	                                                                    : in->timeline->tenant;
	int st = check_tenant(tenant, index, caller_tenant, why);
	if (st != NOETL__STATUS__OK)
		return st;
	switch (in->kind_case) {
	case NOETL__RECORD__KIND_EXECUTION:
		return check_execution(c, index, lim, now_ms, why);
	case NOETL__RECORD__KIND_LOG:
		return check_log(c, index, lim, now_ms, why);
	default:
		return check_timeline(c, index, lim, now_ms, why);
	}
}
