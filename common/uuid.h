/* uuid.h — UUID v4 generation and the 8-4-4-4-12 form used for Genie ids. */
#ifndef HG_UUID_H
#define HG_UUID_H

#include <stdbool.h>

#define UUID_STR_LEN 36 /* without the NUL */

/* A new random UUID v4, lowercase, into out. Returns 0 or -1 (RNG failure). */
int uuid_v4(char out[UUID_STR_LEN + 1]);

/* True when s is exactly 8-4-4-4-12 hex digits, any case (no version check:
 * Genie ids come from elsewhere). */
bool uuid_valid(const char *s);

/* Copy s lowercased into out; s must be uuid_valid. */
void uuid_lower(const char *s, char out[UUID_STR_LEN + 1]);

#endif
