/*
 * recorder store queries: executions, log lines, timelines.
 *
 * Every query walks one index (store.h) between bounds, reads the records
 * the entries name from the change log, and stops at its limit, at a byte
 * budget, or after scanning a bounded number of entries, whichever comes
 * first. The cursor it hands out then names where it stopped:
 *
 *   tag(1) head(be64) position
 *
 * tag says which index the query walked (a cursor is refused by a query that
 * would walk another), head is the revision the first page was read at (a
 * later page skips newer entries too, so pages and a stream continuing from
 * head never overlap), and position is the key suffix of the last entry
 * scanned (time and revision, or the revision alone). The tenant is never in
 * the cursor: the position is appended to the query's own prefix, so a
 * crafted cursor cannot reach another tenant's keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "paging.h"
#include "store_int.h"

#define SCAN_BUDGET  100000     /* entries scanned per call at most */
#define BYTE_BUDGET  (8u << 20) /* packed bytes returned per call at most */
#define TIMELINE_MAX 5000       /* entries in one timeline reply */
#define CURSOR_HEAD  9          /* tag + head */

/* Cursor tags: one per index walk. */
#define CT_EXEC        'X'
#define CT_FAILED      'F'
#define CT_DEAD        'D'
#define CT_ALL         'A'
#define CT_EVEXEC      'E'
#define CT_LOGS        'G'
#define CT_EVLOGS      'H'
#define CT_LOGS_DESC   'g'
#define CT_EVLOGS_DESC 'h'

/* One index walk. */
struct walk {
	struct kv_iter *it;
	struct key prefix; /* the fixed part before the position */
	size_t slen;       /* position length: 16 (time, rev) or 8 (rev) */
	bool desc;         /* newest first */
	uint64_t head;     /* entries with a newer revision are skipped */
	char tag;          /* cursor tag */
	size_t scanned;    /* entries visited */
	uint8_t last[16];  /* position of the last entry visited */
};

/* Parses a cursor for tag: writes head and the position into w. */
static int cursor_parse(struct walk *w, const ProtobufCBinaryData *c, bool *has_pos, char **why)
{
	*has_pos = false;
	if (c->len == 0)
		return 0;
	if (c->len != CURSOR_HEAD + w->slen || c->data[0] != (uint8_t)w->tag) {
		if (why != NULL)
			*why = strdup("page.cursor: not a cursor of this query; pass the "
			              "next_cursor of the previous page unchanged");
		return -EINVAL;
	}
	w->head = util_get_be64(c->data + 1);
	memcpy(w->last, c->data + CURSOR_HEAD, w->slen);
	*has_pos = true;
	return 0;
}

/* Writes the cursor of where w stopped into *c (malloc'ed). */
static int cursor_make(const struct walk *w, ProtobufCBinaryData *c)
{
	uint8_t *p = malloc(CURSOR_HEAD + w->slen);
	if (p == NULL)
		return -ENOMEM;
	p[0] = (uint8_t)w->tag;
	util_put_be64(p + 1, w->head);
	memcpy(p + CURSOR_HEAD, w->last, w->slen);
	c->data = p;
	c->len = CURSOR_HEAD + w->slen;
	return 0;
}

/*
 * Opens the walk over prefix + [lo, hi) positions (lo/hi NULL: unbounded on
 * that side; they are position-length byte strings) and places it at the
 * first entry after the cursor position, if any.
 */
static int walk_open(struct recorder_store *s, struct walk *w, const uint8_t *lo, const uint8_t *hi,
                     const ProtobufCBinaryData *cursor, char **why)
{
	bool has_pos;
	w->head = recorder_store_head(s);
	int rc = cursor_parse(w, cursor, &has_pos, why);
	if (rc != 0)
		return rc;
	struct key l = w->prefix, h;
	if (lo != NULL) {
		memcpy(l.b + l.n, lo, w->slen);
		l.n += w->slen;
	}
	if (hi != NULL) {
		h = w->prefix;
		memcpy(h.b + h.n, hi, w->slen);
		h.n += w->slen;
	} else {
		key_prefix_end(&w->prefix, &h);
	}
	rc = kv_iter_create(s->kv, l.b, l.n, h.b, h.n, &w->it);
	if (rc != 0)
		return rc;
	if (!has_pos) {
		if (w->desc)
			kv_iter_seek_last(w->it);
		else
			kv_iter_seek_first(w->it);
		return 0;
	}
	struct key p = w->prefix;
	memcpy(p.b + p.n, w->last, w->slen);
	p.n += w->slen;
	if (w->desc)
		kv_iter_seek_for_prev(w->it, p.b, p.n);
	else
		kv_iter_seek(w->it, p.b, p.n);
	if (kv_iter_valid(w->it)) {
		size_t kl;
		const uint8_t *k = kv_iter_key(w->it, &kl);
		if (kl == p.n && memcmp(k, p.b, kl) == 0) {
			if (w->desc)
				kv_iter_prev(w->it);
			else
				kv_iter_next(w->it);
		}
	}
	return 0;
}

/*
 * Moves to the next entry that belongs to w (right length, not newer than
 * the head) and returns its revision, its value and whether there is one.
 * The first call returns the entry walk_open placed the walk at.
 */
static bool walk_next(struct walk *w, bool *started, uint64_t *rev, const uint8_t **val,
                      size_t *vlen)
{
	for (;;) {
		if (*started) {
			if (w->desc)
				kv_iter_prev(w->it);
			else
				kv_iter_next(w->it);
		}
		*started = true;
		if (!kv_iter_valid(w->it))
			return false;
		size_t kl;
		const uint8_t *k = kv_iter_key(w->it, &kl);
		if (kl != w->prefix.n + w->slen)
			continue; /* another event whose id extends this one: not ours */
		w->scanned++;
		memcpy(w->last, k + w->prefix.n, w->slen);
		*rev = util_get_be64(k + kl - 8);
		if (*rev > w->head)
			continue;
		*val = kv_iter_value(w->it, vlen);
		return true;
	}
}

/* True if the walk has another entry; w->last stays where it was, so the
 * cursor names the last entry handled. */
static bool walk_peek(struct walk *w, bool *started)
{
	uint8_t keep[16];
	memcpy(keep, w->last, sizeof(keep));
	uint64_t rev;
	const uint8_t *val;
	size_t vlen;
	bool more = walk_next(w, started, &rev, &val, &vlen);
	memcpy(w->last, keep, sizeof(keep));
	return more;
}

/* A growable array of pointers. */
struct pvec {
	void **v;
	size_t n, cap;
};

static int pvec_push(struct pvec *p, void *x)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		void **nv = realloc(p->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		p->v = nv;
		p->cap = cap;
	}
	p->v[p->n++] = x;
	return 0;
}

/* Takes the execution out of rec and frees the rest. */
static Noetl__Execution *take_execution(Noetl__Record *rec)
{
	Noetl__Execution *e = NULL;
	if (rec->kind_case == NOETL__RECORD__KIND_EXECUTION) {
		e = rec->execution;
		rec->execution = NULL;
		rec->kind_case = NOETL__RECORD__KIND__NOT_SET;
	}
	noetl__record__free_unpacked(rec, NULL);
	return e;
}

static Noetl__LogLine *take_log(Noetl__Record *rec)
{
	Noetl__LogLine *l = NULL;
	if (rec->kind_case == NOETL__RECORD__KIND_LOG) {
		l = rec->log;
		rec->log = NULL;
		rec->kind_case = NOETL__RECORD__KIND__NOT_SET;
	}
	noetl__record__free_unpacked(rec, NULL);
	return l;
}

static const ProtobufCBinaryData no_cursor = {0, NULL};

static const ProtobufCBinaryData *page_cursor(const Noetl__Page *p)
{
	return p != NULL ? &p->cursor : &no_cursor;
}

/*
 * Handles one entry of a page walk: reads the record behind it and adds it
 * to got (adding its packed size to *bytes) if it passes the query q's
 * filters. 0 (kept or skipped) or -errno.
 */
typedef int (*page_entry_fn)(struct recorder_store *s, const void *q, const char *tenant,
                             const struct walk *w, uint64_t rev, const uint8_t *val, size_t vlen,
                             struct pvec *got, size_t *bytes);

/* One page of a query's answer. */
struct page {
	struct pvec got;                 /* protobuf messages, owned */
	uint64_t revision;               /* the head the page was read at */
	ProtobufCBinaryData next_cursor; /* malloc'ed; empty on the last page */
};

static void page_release(struct page *pg)
{
	for (size_t i = 0; i < pg->got.n; i++)
		protobuf_c_message_free_unpacked(pg->got.v[i], NULL);
	free(pg->got.v);
	free(pg->next_cursor.data);
}

/*
 * Reads one page of a query over the walk w (prefix set; lo/hi as
 * walk_open takes them): from the request's cursor, until the request's
 * limit or the call's byte and scan budgets, each entry through fn. Every
 * query that pages shares this, so they stop and resume alike. 0 with *out
 * filled (the caller owns it), or -errno (-EINVAL with *why for a bad
 * cursor).
 */
static int walk_page(struct recorder_store *s, struct walk *w, const uint8_t *lo, const uint8_t *hi,
                     const Noetl__Page *page, page_entry_fn fn, const void *q, const char *tenant,
                     struct page *out, char **why)
{
	int rc = walk_open(s, w, lo, hi, page_cursor(page), why);
	if (rc != 0)
		return rc;
	uint32_t limit = paging_limit(page);
	struct page pg = {.got = {0}};
	size_t bytes = 0;
	bool started = false, more = false;
	uint64_t rev;
	const uint8_t *val;
	size_t vlen;
	while (rc == 0 && walk_next(w, &started, &rev, &val, &vlen)) {
		rc = fn(s, q, tenant, w, rev, val, vlen, &pg.got, &bytes);
		if (rc == 0 &&
		    (pg.got.n >= limit || bytes >= BYTE_BUDGET || w->scanned >= SCAN_BUDGET)) {
			more = walk_peek(w, &started);
			break;
		}
	}
	if (rc == 0)
		rc = kv_iter_status(w->it);
	kv_iter_destroy(w->it);
	w->it = NULL;
	if (rc == 0 && more)
		rc = cursor_make(w, &pg.next_cursor);
	if (rc != 0) {
		page_release(&pg);
		return rc;
	}
	pg.revision = w->head;
	*out = pg;
	return 0;
}

/* True if exec status passes the query's status filter. */
static bool status_ok(const Noetl__ExecutionQuery *q, int status)
{
	if (q->only_dead)
		return status == NOETL__EXEC_STATUS__EXEC_DEAD;
	if (q->only_failed)
		return status != NOETL__EXEC_STATUS__EXEC_OK;
	return true;
}

/* Sets up the walk of an executions query. */
static void exec_walk(const Noetl__ExecutionQuery *q, const char *tenant, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	w->desc = true;
	if (q->event_id[0] != '\0') {
		key_init(&w->prefix, KP_EVENT);
		key_name(&w->prefix, q->event_id, RECORDER_EVENT_MAX);
		key_name(&w->prefix, tenant, RECORDER_TENANT_MAX);
		w->slen = 8;
		w->tag = CT_EVEXEC;
		return;
	}
	w->slen = 16;
	if (tenant == NULL) {
		key_init(&w->prefix, KP_ALL);
		w->tag = CT_ALL;
	} else if (q->only_dead) {
		key_init(&w->prefix, KP_DEAD);
		key_name(&w->prefix, tenant, RECORDER_TENANT_MAX);
		w->tag = CT_DEAD;
	} else if (q->only_failed) {
		key_init(&w->prefix, KP_FAILED);
		key_name(&w->prefix, tenant, RECORDER_TENANT_MAX);
		w->tag = CT_FAILED;
	} else {
		key_init(&w->prefix, KP_RECORD);
		key_name(&w->prefix, tenant, RECORDER_TENANT_MAX);
		key_u8(&w->prefix, RK_EXEC);
		w->tag = CT_EXEC;
	}
}

/* Fills lo/hi (16-byte positions) from a time range; returns the pointers
 * walk_open takes (NULL = unbounded). */
static void time_bounds(int64_t from, int64_t to, uint8_t lo[16], uint8_t hi[16],
                        const uint8_t **plo, const uint8_t **phi)
{
	*plo = NULL;
	*phi = NULL;
	if (from > 0) {
		util_put_be64(lo, (uint64_t)from);
		util_put_be64(lo + 8, 0);
		*plo = lo;
	}
	if (to > 0) {
		util_put_be64(hi, (uint64_t)to);
		util_put_be64(hi + 8, 0);
		*phi = hi;
	}
}

/* Handles one entry of an executions walk: reads the record and adds it to
 * got if it passes the filters. */
static int exec_entry(struct recorder_store *s, const void *query, const char *tenant,
                      const struct walk *w, uint64_t rev, const uint8_t *val, size_t vlen,
                      struct pvec *got, size_t *bytes)
{
	const Noetl__ExecutionQuery *q = query;
	if (w->tag == CT_EVEXEC && (vlen < 1 || val[0] != RK_EXEC))
		return 0;
	if (w->tag == CT_ALL && (vlen < 1 || !status_ok(q, val[0])))
		return 0;
	Noetl__Record *rec;
	int rc = store_read_record(s, rev, &rec);
	if (rc == -ENOENT)
		return 0; /* removed by retention since the index was read */
	if (rc != 0)
		return rc;
	Noetl__Execution *e = take_execution(rec);
	if (e == NULL)
		return 0;
	if ((tenant != NULL && strcmp(e->tenant, tenant) != 0) || !status_ok(q, e->status) ||
	    (q->from_ms > 0 && e->start_ms < q->from_ms) ||
	    (q->to_ms > 0 && e->start_ms >= q->to_ms)) {
		noetl__execution__free_unpacked(e, NULL);
		return 0;
	}
	*bytes += noetl__execution__get_packed_size(e);
	rc = pvec_push(got, e);
	if (rc != 0)
		noetl__execution__free_unpacked(e, NULL);
	return rc;
}

int recorder_store_executions(struct recorder_store *s, const Noetl__ExecutionQuery *q,
                              const char *tenant, Noetl__ExecutionsReply **out, char **why)
{
	if (tenant == NULL && q->event_id[0] != '\0')
		return -EINVAL;
	struct walk w;
	exec_walk(q, tenant, &w);
	uint8_t lo[16], hi[16];
	const uint8_t *plo = NULL, *phi = NULL;
	if (w.slen == 16)
		time_bounds(q->from_ms, q->to_ms, lo, hi, &plo, &phi);
	struct page pg;
	int rc = walk_page(s, &w, plo, phi, q->page, exec_entry, q, tenant, &pg, why);
	if (rc != 0)
		return rc;
	Noetl__ExecutionsReply *r = malloc(sizeof(*r));
	if (r == NULL) {
		page_release(&pg);
		return -ENOMEM;
	}
	noetl__executions_reply__init(r);
	r->revision = pg.revision;
	r->executions = (Noetl__Execution **)pg.got.v;
	r->n_executions = pg.got.n;
	r->next_cursor = pg.next_cursor;
	*out = r;
	return 0;
}

/* --- logs ----------------------------------------------------------------- */

static int log_entry(struct recorder_store *s, const void *query, const char *tenant,
                     const struct walk *w, uint64_t rev, const uint8_t *val, size_t vlen,
                     struct pvec *got, size_t *bytes)
{
	const Noetl__LogQuery *q = query;
	if (w->slen == 8) {
		/* 'e' value: kind, level */
		if (vlen < 2 || val[0] != RK_LOG || val[1] < (uint8_t)q->min_level)
			return 0;
	} else {
		/* 'r' value: meta, whose first byte is the level */
		if (vlen < 1 || val[0] < (uint8_t)q->min_level)
			return 0;
	}
	Noetl__Record *rec;
	int rc = store_read_record(s, rev, &rec);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	Noetl__LogLine *l = take_log(rec);
	if (l == NULL)
		return 0;
	if (strcmp(l->tenant, tenant) != 0 || (q->since_ms > 0 && l->time_ms < q->since_ms)) {
		noetl__log_line__free_unpacked(l, NULL);
		return 0;
	}
	*bytes += noetl__log_line__get_packed_size(l);
	rc = pvec_push(got, l);
	if (rc != 0)
		noetl__log_line__free_unpacked(l, NULL);
	return rc;
}

int recorder_store_logs(struct recorder_store *s, const Noetl__LogQuery *q, const char *tenant,
                        Noetl__LogsReply **out, char **why)
{
	struct walk w;
	memset(&w, 0, sizeof(w));
	uint8_t lo[16];
	const uint8_t *plo = NULL;
	if (q->event_id[0] != '\0') {
		key_init(&w.prefix, KP_EVENT);
		key_name(&w.prefix, q->event_id, RECORDER_EVENT_MAX);
		key_name(&w.prefix, tenant, RECORDER_TENANT_MAX);
		w.slen = 8;
		w.tag = CT_EVLOGS;
	} else {
		key_init(&w.prefix, KP_RECORD);
		key_name(&w.prefix, tenant, RECORDER_TENANT_MAX);
		key_u8(&w.prefix, RK_LOG);
		w.slen = 16;
		w.tag = CT_LOGS;
		uint8_t unused[16];
		const uint8_t *phi;
		time_bounds(q->since_ms, 0, lo, unused, &plo, &phi);
	}
	w.desc = q->newest_first;
	if (w.desc)
		w.tag = w.tag == CT_LOGS ? CT_LOGS_DESC : CT_EVLOGS_DESC;
	struct page pg;
	int rc = walk_page(s, &w, plo, NULL, q->page, log_entry, q, tenant, &pg, why);
	if (rc != 0)
		return rc;
	Noetl__LogsReply *r = malloc(sizeof(*r));
	if (r == NULL) {
		page_release(&pg);
		return -ENOMEM;
	}
	noetl__logs_reply__init(r);
	r->revision = pg.revision;
	r->lines = (Noetl__LogLine **)pg.got.v;
	r->n_lines = pg.got.n;
	r->next_cursor = pg.next_cursor;
	*out = r;
	return 0;
}

/* --- timelines ------------------------------------------------------------ */

/* A timeline entry with the revision that orders equal times. */
struct tl_item {
	Noetl__TimelineEntry *e;
	uint64_t rev;
};

static int tl_cmp(const void *a, const void *b)
{
	const struct tl_item *x = a, *y = b;
	if (x->e->time_ms != y->e->time_ms)
		return x->e->time_ms < y->e->time_ms ? -1 : 1;
	return x->rev < y->rev ? -1 : x->rev > y->rev;
}

/* What a timeline is built from while the event's entries are read. */
struct tl_build {
	struct tl_item *items; /* own entries, and attempts made from executions */
	size_t n, cap;
	struct pvec execs; /* the event's executions, with revs in exec_revs */
	uint64_t *exec_revs;
	struct pvec parents; /* malloc'ed ids, distinct */
	struct pvec children;
	bool truncated;
};

static int tl_push(struct tl_build *t, Noetl__TimelineEntry *e, uint64_t rev)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct tl_item *ni = realloc(t->items, cap * sizeof(*ni));
		if (ni == NULL)
			return -ENOMEM;
		t->items = ni;
		t->cap = cap;
	}
	t->items[t->n++] = (struct tl_item){e, rev};
	return 0;
}

/* Adds id to ids unless it is there. */
static int add_id(struct pvec *ids, const char *id)
{
	for (size_t i = 0; i < ids->n; i++)
		if (strcmp(ids->v[i], id) == 0)
			return 0;
	char *copy = strdup(id);
	if (copy == NULL)
		return -ENOMEM;
	int rc = pvec_push(ids, copy);
	if (rc != 0)
		free(copy);
	return rc;
}

static int tl_push_exec(struct tl_build *t, Noetl__Execution *e, uint64_t rev)
{
	if (t->execs.n == t->execs.cap) {
		uint64_t *nr =
		        realloc(t->exec_revs, (t->execs.cap ? t->execs.cap * 2 : 16) * sizeof(*nr));
		if (nr == NULL)
			return -ENOMEM;
		t->exec_revs = nr;
	}
	t->exec_revs[t->execs.n] = rev;
	return pvec_push(&t->execs, e);
}

/* One entry of the event's 'e' range. */
static int tl_entry(struct recorder_store *s, const char *tenant, const char *event,
                    struct tl_build *t, uint64_t rev, const uint8_t *val, size_t vlen)
{
	if (vlen < 1 || val[0] == RK_LOG)
		return 0;
	if (t->n + t->execs.n >= TIMELINE_MAX) {
		t->truncated = true;
		return 0;
	}
	Noetl__Record *rec;
	int rc = store_read_record(s, rev, &rec);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	if (val[0] == RK_EXEC) {
		Noetl__Execution *e = take_execution(rec);
		if (e == NULL)
			return 0;
		rc = tl_push_exec(t, e, rev);
		if (rc != 0)
			noetl__execution__free_unpacked(e, NULL);
		return rc;
	}
	if (rec->kind_case != NOETL__RECORD__KIND_TIMELINE ||
	    strcmp(rec->timeline->tenant, tenant) != 0) {
		noetl__record__free_unpacked(rec, NULL);
		return 0;
	}
	Noetl__TimelineEntry *e = rec->timeline;
	if (val[0] == RK_LINK) {
		/* another event's entry naming this one */
		if (e->kind == NOETL__TIMELINE_KIND__TL_ROUTED)
			rc = add_id(&t->parents, e->event_id);
		else if (e->kind == NOETL__TIMELINE_KIND__TL_CAUSED_BY)
			rc = add_id(&t->children, e->event_id);
		noetl__record__free_unpacked(rec, NULL);
		return rc;
	}
	if (strcmp(e->event_id, event) != 0) {
		noetl__record__free_unpacked(rec, NULL);
		return 0;
	}
	if (e->kind == NOETL__TIMELINE_KIND__TL_ROUTED)
		rc = add_id(&t->children, e->related_id);
	else if (e->kind == NOETL__TIMELINE_KIND__TL_CAUSED_BY)
		rc = add_id(&t->parents, e->related_id);
	if (rc == 0) {
		rec->timeline = NULL;
		rec->kind_case = NOETL__RECORD__KIND__NOT_SET;
		rc = tl_push(t, e, rev);
		if (rc != 0)
			noetl__timeline_entry__free_unpacked(e, NULL);
	}
	noetl__record__free_unpacked(rec, NULL);
	return rc;
}

static const char *status_word(int status)
{
	switch (status) {
	case NOETL__EXEC_STATUS__EXEC_OK:
		return "ok";
	case NOETL__EXEC_STATUS__EXEC_ERROR:
		return "error";
	case NOETL__EXEC_STATUS__EXEC_FAILED:
		return "failed";
	case NOETL__EXEC_STATUS__EXEC_DEAD:
		return "dead";
	default:
		return "unknown";
	}
}

/* Whether the timeline has a kind entry for attempt. */
static bool tl_has(const struct tl_build *t, Noetl__TimelineKind kind, uint32_t attempt)
{
	for (size_t j = 0; j < t->n; j++)
		if (t->items[j].e->kind == kind && t->items[j].e->attempt == attempt)
			return true;
	return false;
}

/* Adds a step made from execution x, at time_ms and ordered by sort_rev
 * among the entries of the same millisecond. */
static int tl_synth(struct tl_build *t, const Noetl__Execution *x, Noetl__TimelineKind kind,
                    int64_t time_ms, const char *detail, uint64_t sort_rev)
{
	Noetl__TimelineEntry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	noetl__timeline_entry__init(e);
	e->tenant = strdup(x->tenant);
	e->event_id = strdup(x->event_id);
	e->event = strdup(x->event);
	e->detail = strdup(detail);
	e->kind = kind;
	e->attempt = x->attempt;
	e->time_ms = time_ms;
	if (e->tenant == NULL || e->event_id == NULL || e->event == NULL || e->detail == NULL ||
	    tl_push(t, e, sort_rev) != 0) {
		noetl__timeline_entry__free_unpacked(e, NULL);
		return -ENOMEM;
	}
	return 0;
}

/*
 * The steps an execution record stands for: the attempt, and, from an
 * executor that says so in the record, when it was leased (leased_ms) and
 * how it was settled (outcome: done, retried or dead). Older executors
 * sent those steps, and before them the attempt step too, as records of
 * their own, and left these fields unset: an attempt step is made only
 * where there is none. On equal
 * milliseconds, leased sorts before every other entry and the settling
 * after every other entry (a routed step's own record included).
 */
static int tl_from_execution(struct tl_build *t, const Noetl__Execution *x, uint64_t rev)
{
	char detail[600];
	int rc = 0;
	if (x->leased_ms > 0)
		rc = tl_synth(t, x, NOETL__TIMELINE_KIND__TL_LEASED, x->leased_ms, x->host, 0);
	snprintf(detail, sizeof(detail), "%s, code %lld, %lld ms%s%s%s%s", status_word(x->status),
	         (long long)x->code, (long long)(x->duration_us / 1000), x->reason[0] ? ": " : "",
	         x->reason, x->host[0] ? " on " : "", x->host);
	if (rc == 0 && !tl_has(t, NOETL__TIMELINE_KIND__TL_ATTEMPT, x->attempt))
		rc = tl_synth(t, x, NOETL__TIMELINE_KIND__TL_ATTEMPT,
		              x->end_ms > 0 ? x->end_ms : x->start_ms, detail, rev);
	if (rc != 0 || x->outcome == NOETL__EXEC_OUTCOME__OUTCOME_UNSETTLED)
		return rc;
	Noetl__TimelineKind kind = NOETL__TIMELINE_KIND__TL_DONE;
	if (x->outcome == NOETL__EXEC_OUTCOME__OUTCOME_RETRY) {
		kind = NOETL__TIMELINE_KIND__TL_RETRIED;
		snprintf(detail, sizeof(detail), "retry at %lld", (long long)x->retry_at_ms);
	} else if (x->outcome == NOETL__EXEC_OUTCOME__OUTCOME_DEAD) {
		kind = NOETL__TIMELINE_KIND__TL_DEAD;
		snprintf(detail, sizeof(detail), "%s", x->reason);
	} else if (x->status == NOETL__EXEC_STATUS__EXEC_OK ||
	           x->status == NOETL__EXEC_STATUS__EXEC_ERROR) {
		snprintf(detail, sizeof(detail), "code %lld", (long long)x->code);
	} else {
		snprintf(detail, sizeof(detail), "%s", x->reason);
	}
	return tl_synth(t, x, kind, x->settled_ms > 0 ? x->settled_ms : x->end_ms, detail,
	                UINT64_MAX);
}

/* Adds the steps every execution of the event stands for. */
static int tl_executions(struct tl_build *t)
{
	for (size_t i = 0; i < t->execs.n; i++) {
		int rc = tl_from_execution(t, t->execs.v[i], t->exec_revs[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void tl_release(struct tl_build *t)
{
	for (size_t i = 0; i < t->n; i++)
		noetl__timeline_entry__free_unpacked(t->items[i].e, NULL);
	free(t->items);
	for (size_t i = 0; i < t->execs.n; i++)
		noetl__execution__free_unpacked(t->execs.v[i], NULL);
	free(t->execs.v);
	free(t->exec_revs);
	for (size_t i = 0; i < t->parents.n; i++)
		free(t->parents.v[i]);
	free(t->parents.v);
	for (size_t i = 0; i < t->children.n; i++)
		free(t->children.v[i]);
	free(t->children.v);
}

int recorder_store_timeline(struct recorder_store *s, const char *tenant, const char *event,
                            Noetl__TimelineReply **out)
{
	struct walk w;
	memset(&w, 0, sizeof(w));
	key_init(&w.prefix, KP_EVENT);
	key_name(&w.prefix, event, RECORDER_EVENT_MAX);
	key_name(&w.prefix, tenant, RECORDER_TENANT_MAX);
	w.slen = 8;
	int rc = walk_open(s, &w, NULL, NULL, &no_cursor, NULL);
	if (rc != 0)
		return rc;
	struct tl_build t = {0};
	bool started = false, any = false;
	uint64_t rev;
	const uint8_t *val;
	size_t vlen;
	while (rc == 0 && walk_next(&w, &started, &rev, &val, &vlen)) {
		any = true;
		rc = tl_entry(s, tenant, event, &t, rev, val, vlen);
	}
	if (rc == 0)
		rc = kv_iter_status(w.it);
	kv_iter_destroy(w.it);
	if (rc == 0 && !any)
		rc = -ENOENT;
	if (rc == 0)
		rc = tl_executions(&t);

	Noetl__TimelineReply *r = NULL;
	if (rc == 0 && ((r = malloc(sizeof(*r))) == NULL ||
	                (t.n > 0 && (r->entries = malloc(t.n * sizeof(*r->entries))) == NULL))) {
		free(r);
		r = NULL;
		rc = -ENOMEM;
	}
	if (rc == 0) {
		Noetl__TimelineEntry **entries = t.n > 0 ? r->entries : NULL;
		noetl__timeline_reply__init(r);
		qsort(t.items, t.n, sizeof(*t.items), tl_cmp);
		for (size_t i = 0; i < t.n; i++)
			entries[i] = t.items[i].e;
		r->entries = entries;
		r->n_entries = t.n;
		t.n = 0;
		r->parents = (char **)t.parents.v;
		r->n_parents = t.parents.n;
		t.parents = (struct pvec){0};
		r->children = (char **)t.children.v;
		r->n_children = t.children.n;
		t.children = (struct pvec){0};
		r->truncated = t.truncated;
		r->tenant = strdup(tenant);
		if (r->tenant == NULL) {
			protobuf_c_message_free_unpacked(&r->base, NULL);
			rc = -ENOMEM;
		}
	}
	tl_release(&t);
	if (rc == 0)
		*out = r;
	return rc;
}

int recorder_store_event_tenants(struct recorder_store *s, const char *event, char **names,
                                 size_t cap, size_t *n)
{
	struct key lo, hi;
	key_init(&lo, KP_EVENT);
	key_name(&lo, event, RECORDER_EVENT_MAX);
	key_prefix_end(&lo, &hi);
	struct kv_iter *it;
	int rc = kv_iter_create(s->kv, lo.b, lo.n, hi.b, hi.n, &it);
	if (rc != 0)
		return rc;
	size_t got = 0;
	kv_iter_seek_first(it);
	while (kv_iter_valid(it) && got < cap) {
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		/* event \0 tenant \0 rev */
		if (kl < lo.n + 10 || k[kl - 9] != 0) {
			kv_iter_next(it);
			continue;
		}
		size_t tl = kl - 9 - lo.n;
		if (tl == 0 || tl > RECORDER_TENANT_MAX) {
			kv_iter_next(it);
			continue;
		}
		char *name = strndup((const char *)k + lo.n, tl);
		if (name == NULL) {
			rc = -ENOMEM;
			break;
		}
		names[got++] = name;
		/* skip the rest of this tenant's entries */
		struct key next = lo;
		memcpy(next.b + next.n, name, tl);
		next.n += tl;
		next.b[next.n++] = 1;
		kv_iter_seek(it, next.b, next.n);
	}
	if (rc == 0)
		rc = kv_iter_status(it);
	kv_iter_destroy(it);
	if (rc != 0) {
		while (got > 0)
			free(names[--got]);
		return rc;
	}
	*n = got;
	return 0;
}
