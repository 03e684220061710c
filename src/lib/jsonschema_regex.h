/*
 * jsonschema_regex: the ECMA-262 subset used by "pattern",
 * "patternProperties" and the "regex" format. Private to the jsonschema
 * module.
 *
 * Patterns are parsed strictly (like ECMA-262 with the "u" flag: an unknown
 * escape such as \Z is an error) and compiled to a Thompson NFA that is run
 * as a Pike VM over Unicode code points. A search visits each (instruction,
 * position) pair at most once per step, so its cost is O(pattern x subject)
 * whatever the pattern: there is no backtracking to blow up. Lookarounds run
 * sub-automata whose results are memoized per position. Backreferences are
 * not regular and are refused at compile time (they still pass the "regex"
 * format check, which is about syntax). Every search also runs under a step
 * budget as a second fence.
 *
 * A compiled regex is immutable: any number of threads may search with it
 * at once.
 */
#ifndef NOETL_JSONSCHEMA_REGEX_H
#define NOETL_JSONSCHEMA_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonschema_regex;

/*
 * Compiles the pattern src[0..len) (UTF-8). On success writes *out and
 * returns 0. On a syntax error, an unsupported feature or a pattern that
 * expands too far returns -EINVAL and, if err is not NULL, a malloc'ed
 * message ("missing \")\" at offset 3") the caller frees; -ENOMEM on
 * allocation failure.
 */
int jsonschema_regex_compile(const char *src, size_t len, struct jsonschema_regex **out,
                             char **err);

/* True if src is a syntactically valid ECMA-262 pattern (backreferences and
 * \p{...} included, although the matcher refuses those). */
bool jsonschema_regex_valid(const char *src, size_t len);

/*
 * Searches s[0..len) for a match anywhere (patterns are not anchored).
 * Returns 1 on a match, 0 if none, -E2BIG if *budget steps ran out first,
 * -ENOMEM. *budget is decreased by the steps spent. Thread-safe.
 */
int jsonschema_regex_search(const struct jsonschema_regex *re, const char *s, size_t len,
                            uint64_t *budget);

/* Frees re; accepts NULL. */
void jsonschema_regex_destroy(struct jsonschema_regex *re);

#endif
