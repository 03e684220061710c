/*
 * repository store: the key layout of the File Repository and every kv call
 * it makes. Private to src/repository/.
 *
 * Keys (tenant, file and package names are util_valid_name strings, so they
 * hold no NUL and '\0' is a safe separator that also keeps prefix order):
 *
 *   'f' tenant \0 name                  -> packed FileInfo of the latest version
 *   'v' tenant \0 name \0 version(be32) -> packed FileInfo of that version
 *   'd' tenant \0 name \0 version(be32) -> the content of that version
 *   'n' tenant \0 name                  -> last version number handed out (be32);
 *                                          survives a delete, so a name never
 *                                          reuses a version number
 *   'r' tenant \0 name \0 package       -> empty: package uses the file
 *   'p' tenant \0 package \0 name       -> one byte, the FileType: the package's
 *                                          reference set, so SetReferences can
 *                                          replace it
 *   'L' ...                             -> the change log (changelog.h)
 *
 * Every write (put, delete, set references) happens under one mutex: it reads
 * what it needs, builds one batch (state and change log entry together) and
 * writes it synced. Listings take the same mutex, which is what makes the
 * revision they return exact.
 */
#ifndef NOETL_REPOSITORY_STORE_H
#define NOETL_REPOSITORY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "changelog.h"
#include "repository.pb-c.h"
#include "stream.h"

struct repository_store;

/* Opens the store in directory dir (created if missing). pub (borrowed, may
 * be NULL) receives the changes. 0 or -errno. */
int repository_store_open(const char *dir, struct stream_pub *pub, struct repository_store **out);

/* Closes the store; accepts NULL. */
void repository_store_close(struct repository_store *s);

/*
 * Stores a new version of tenant/name with content data (borrowed). The
 * caller has validated names and content. On success *out is the new version's
 * FileInfo (free with protobuf_c_message_free_unpacked). Errors: -EEXIST when
 * the file exists with another type (*why says so), -EIO, -ENOMEM. *why, when
 * set, is malloc'ed and the caller frees it.
 */
int repository_store_put(struct repository_store *s, const char *tenant, const char *name,
                         Noetl__FileType type, const void *data, size_t len, int64_t now_ms,
                         Noetl__FileInfo **out, char **why);

/*
 * Reads version (0 = latest) of tenant/name: *info (free_unpacked) and, if
 * content is not NULL, *content (malloc'ed, free()) and *len. -ENOENT if the
 * file or version does not exist, -EIO.
 */
int repository_store_get(struct repository_store *s, const char *tenant, const char *name,
                         uint32_t version, Noetl__FileInfo **info, void **content, size_t *len);

/*
 * Deletes every version of tenant/name. -ENOENT if absent, -EBUSY if a
 * package references it (*why names the packages), -EIO.
 */
int repository_store_delete(struct repository_store *s, const char *tenant, const char *name,
                            int64_t now_ms, char **why);

/*
 * Replaces the reference set of tenant/package by files[i] of types[i]
 * (n of them; n = 0 releases all). Every file must exist with its type, else
 * -ENOENT with *why naming each missing or mistyped file, and nothing changes.
 * -EIO.
 */
int repository_store_set_refs(struct repository_store *s, const char *tenant, const char *package,
                              char *const *files, const Noetl__FileType *types, size_t n,
                              char **why);

/*
 * Lists the latest version of tenant's files in name order, after cursor
 * (a name; NULL or "" from the start), at most limit. *files is a malloc'ed
 * array of *count FileInfo (free each with free_unpacked, then the array);
 * *next is a malloc'ed name to continue from, or NULL on the last page;
 * *revision the revision the page is consistent with. 0 or -EIO.
 */
int repository_store_list(struct repository_store *s, const char *tenant, const char *cursor,
                          uint32_t limit, Noetl__FileInfo ***files, size_t *count, char **next,
                          uint64_t *revision);

/* The change log (for Changes and the head revision); borrowed. */
struct changelog *repository_store_changelog(struct repository_store *s);

#endif
