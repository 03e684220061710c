/*
 * control store: the key layout of Control and every kv call it makes.
 * Private to src/control/.
 *
 * Keys (tenant, package, token and event ids are util_valid_name strings:
 * no NUL, so '\0' separates parts and keeps prefix order):
 *
 *   't' tenant                         -> packed Tenant
 *   'p' tenant \0 package              -> packed PackageRevision in force
 *                                         (absent while deleted)
 *   'h' tenant \0 package \0 rev(be64) -> packed PackageRevision: the history,
 *                                         every deploy, update, rollback and
 *                                         delete
 *   'k' tenant \0 token id             -> packed TokenInfo (hash only)
 *   'w' tenant \0 event                -> packed WebhookSecret
 *   's' tenant \0 package \0 schedule  -> last fire time of a cron schedule
 *                                         (be64 ms); created when the
 *                                         schedule is deployed, removed with it
 *   'L' ...                            -> the change log (changelog.h)
 *
 * Every change takes the write mutex, checks its preconditions, builds one
 * batch holding the new state and its DefinitionChange, and writes it
 * synced; the change's revision is the package revision. Listings and the
 * snapshot take the same mutex, so the revision they report is exact.
 *
 * Errors: -ENOENT the named thing is absent, -ESRCH the tenant is absent,
 * -EEXIST it exists already, -ENOTEMPTY a tenant still has packages, -EIO,
 * -ENOMEM.
 */
#ifndef NOETL_CONTROL_STORE_H
#define NOETL_CONTROL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "changelog.h"
#include "control.pb-c.h"
#include "stream.h"

struct control_store;

/* Opens the store in dir (created if missing); pub (borrowed, may be NULL)
 * receives the changes. 0 or -errno. */
int control_store_open(const char *dir, struct stream_pub *pub, struct control_store **out);
void control_store_close(struct control_store *s);

/* The change log; borrowed. */
struct changelog *control_store_changelog(struct control_store *s);

/* --- tenants --- */

/* Creates tenant id. *out (free_unpacked) is the new tenant. -EEXIST. */
int control_store_add_tenant(struct control_store *s, const char *id, int64_t now_ms,
                             Noetl__Tenant **out);

/* Removes tenant id with its tokens, secrets and package history. -ESRCH,
 * -ENOTEMPTY if a package is deployed (*why names one, malloc'ed). */
int control_store_remove_tenant(struct control_store *s, const char *id, int64_t now_ms,
                                char **why);

/* True if tenant id exists (false on a read error too, which is logged). */
bool control_store_has_tenant(struct control_store *s, const char *id);

/* All tenants in id order: *arr malloc'ed array of *n (free each, then the
 * array); *rev the revision it is consistent with. */
int control_store_list_tenants(struct control_store *s, Noetl__Tenant ***arr, size_t *n,
                               uint64_t *rev);

/* --- packages --- */

/* What a package change expects to find. */
enum control_expect {
	CONTROL_EXPECT_ABSENT,  /* deploy: the package is not deployed */
	CONTROL_EXPECT_PRESENT, /* update, delete: it is deployed */
	CONTROL_EXPECT_ANY,     /* rollback: either */
};

/* One package change to commit. */
struct control_change {
	const char *tenant;         /* owning tenant */
	const char *id;             /* package id */
	const char *action;         /* "deploy", "update", "rollback", "delete" */
	const Noetl__Package *pkg;  /* the new definition; NULL for "delete" */
	const char *source;         /* YAML it came from; may be NULL */
	uint64_t rolled_back_to;    /* for "rollback" */
	enum control_expect expect; /* precondition, checked under the lock */
	int64_t now_ms;             /* time of the change (Control's clock) */
};

/*
 * Commits a package change: history entry, package in force, schedule state
 * (new schedules start at now_ms, removed ones are dropped) and the change
 * log entry, in one synced write. *rev is the new package revision.
 * -ESRCH, -EEXIST (expected absent), -ENOENT (expected present).
 */
int control_store_commit(struct control_store *s, const struct control_change *c, uint64_t *rev);

/* The revision in force of tenant/id (free_unpacked). -ENOENT if it is not
 * deployed. */
int control_store_current(struct control_store *s, const char *tenant, const char *id,
                          Noetl__PackageRevision **out);

/* History entry rev of tenant/id. -ENOENT. */
int control_store_revision(struct control_store *s, const char *tenant, const char *id,
                           uint64_t rev, Noetl__PackageRevision **out);

/*
 * The history of tenant/id, oldest first, keeping only the newest entries
 * whose packed size fits max_bytes (0 = no limit); *omitted counts the older
 * ones left out. -ENOENT if the package has no history.
 */
int control_store_history(struct control_store *s, const char *tenant, const char *id,
                          size_t max_bytes, Noetl__PackageRevision ***arr, size_t *n,
                          uint32_t *omitted);

/*
 * Lists packages in force, of tenant (NULL or "" = every tenant), in
 * (tenant, id) order after cursor (bytes from a previous *next; NULL/0 from
 * the start), at most limit. *next is malloc'ed (*next_len bytes) or NULL on
 * the last page.
 */
int control_store_list_packages(struct control_store *s, const char *tenant, const void *cursor,
                                size_t cursor_len, uint32_t limit, Noetl__Package ***arr, size_t *n,
                                void **next, size_t *next_len, uint64_t *rev);

/* Calls fn for every package in force (borrowed for the call), in key
 * order; stops at the first non-zero return, which it returns. */
int control_store_each_package(struct control_store *s,
                               int (*fn)(void *arg, const Noetl__PackageRevision *pr), void *arg);

/* --- snapshot --- */

/* Everything at one revision; free with control_store_snapshot_free. */
int control_store_snapshot(struct control_store *s, Noetl__Snapshot **out);
void control_store_snapshot_free(Noetl__Snapshot *snap);

/* --- tokens and webhook secrets --- */

/* Stores token info (borrowed; its tenant must exist). -ESRCH, -EEXIST. */
int control_store_add_token(struct control_store *s, const Noetl__TokenInfo *info, int64_t now_ms);

/* Tokens of tenant in id order. */
int control_store_list_tokens(struct control_store *s, const char *tenant, Noetl__TokenInfo ***arr,
                              size_t *n);

/* Removes token id of tenant. -ENOENT. */
int control_store_revoke_token(struct control_store *s, const char *tenant, const char *id,
                               int64_t now_ms);

/* Sets (or, with an empty secret, clears) the webhook secret of
 * tenant/event. -ESRCH; clearing an absent secret is a no-op, not an error,
 * and creates no change. */
int control_store_set_secret(struct control_store *s, const Noetl__WebhookSecret *ws,
                             int64_t now_ms);

/* --- schedules --- */

/* Last fire time of a schedule. -ENOENT if it is not deployed. */
int control_store_schedule_last(struct control_store *s, const char *tenant, const char *pkg,
                                const char *schedule, int64_t *last_ms);

/* Records a fire time, only if the schedule is still deployed (-ENOENT
 * otherwise, which the scheduler ignores). Synced; not a change of the
 * stream, since it is Control's own bookkeeping. */
int control_store_schedule_fired(struct control_store *s, const char *tenant, const char *pkg,
                                 const char *schedule, int64_t fire_ms);

#endif
