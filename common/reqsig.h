/* reqsig.h — publisher authentication of PROTOCOL.md section 2.
 *
 * message = "hg1\n" + topic + "\n" + ts + "\n" + nonce + "\n" + payload;
 * sig = lowercase hex HMAC-SHA256(key secret, message). */
#ifndef HG_REQSIG_H
#define HG_REQSIG_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h"

#define REQSIG_NONCE_MIN 16
#define REQSIG_NONCE_MAX 64
#define REQSIG_WINDOW_S 300

/* Compute the hex signature of a request. Returns 0 or -1. */
int reqsig_sign(const char *secret, const char *topic, const char *ts, const char *nonce,
                const void *payload, size_t payloadlen, char out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Constant-time check of a presented signature (any string, NUL-terminated)
 * against the expected one. Returns true on a match. */
bool reqsig_verify(const char *secret, const char *topic, const char *ts, const char *nonce,
                   const void *payload, size_t payloadlen, const char *sig);

/* A new random nonce of 32 lowercase hex characters. Returns 0 or -1. */
int reqsig_nonce(char out[33]);

/* True when s is 16..64 chars of [0-9a-f]. */
bool reqsig_nonce_valid(const char *s);

/* Parse hg-ts: decimal digits only (no sign, no spaces, at most 19 digits).
 * Returns 0 and sets *ts, or -1. */
int reqsig_parse_ts(const char *s, long long *ts);

#endif
