/* jsonutil.h — cJSON helpers: a bounded parse for hostile input, compact
 * printing, and small accessors. */
#ifndef HG_JSONUTIL_H
#define HG_JSONUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define JSONUTIL_MAX_DEPTH 32

/* Parse exactly len bytes (need not be NUL-terminated) as one JSON value.
 * Refuses, before cJSON sees it, input over maxlen bytes or nested deeper
 * than JSONUTIL_MAX_DEPTH, and refuses invalid UTF-8 in strings and trailing
 * garbage. On failure returns NULL and writes a short reason to err. */
cJSON *jsonutil_parse(const void *buf, size_t len, size_t maxlen, char *err, size_t errsz);

/* Turn every number in item (and below) into a raw node holding the
 * shortest text that reads back as exactly the same double. cJSON prints
 * a number with 15 digits whenever those come "close enough", so a value a
 * call node sent (8999999999999999, 0.30000000000000004, DBL_MAX) would
 * reach the receiver changed; for values we pass through untouched (an
 * escalation's fields) that is not ours to do. The raw text is then copied
 * and printed verbatim. Returns 0, or -1 out of memory (item partly done,
 * still valid). */
int jsonutil_exact_numbers(cJSON *item);

/* Compact JSON text of item (malloc'd, caller frees), or NULL. */
char *jsonutil_print(const cJSON *item);

/* True when s (len bytes) is valid UTF-8 (no overlongs, no surrogates). */
bool jsonutil_utf8_valid(const char *s, size_t len);

/* Add a string or JSON null (when s is NULL). Returns the added item or NULL. */
cJSON *jsonutil_add_string_or_null(cJSON *obj, const char *key, const char *s);

/* Object member by exact (case-sensitive) key, or NULL. */
cJSON *jsonutil_get(const cJSON *obj, const char *key);

#endif
