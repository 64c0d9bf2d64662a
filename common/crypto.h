/* crypto.h — the few primitives both programs need, on wolfCrypt.
 *
 * Everything here is a thin, checked wrapper: HMAC-SHA256, hex and base64,
 * constant-time compare, random bytes and wiping secrets from memory. */
#ifndef HG_CRYPTO_H
#define HG_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA256_HEX_LEN 64 /* without the NUL */

/* HMAC-SHA256 of msg under key. Returns 0, or -1 on a wolfCrypt failure. */
int crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                       uint8_t out[CRYPTO_SHA256_LEN]);

/* HMAC-SHA256 over several parts, as if they were concatenated. */
struct crypto_part {
  const void *p;
  size_t len;
};
int crypto_hmac_sha256_parts(const void *key, size_t keylen, const struct crypto_part *parts,
                             size_t nparts, uint8_t out[CRYPTO_SHA256_LEN]);

/* Lowercase hex of HMAC-SHA256; out gets 64 chars plus NUL. */
int crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                           char out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Lowercase hex; out must hold 2*len+1 bytes. */
void crypto_hex_encode(const uint8_t *in, size_t len, char *out);

/* Standard base64 with padding into out (NUL-terminated). Returns the length
 * written without the NUL, or -1 if outsz is too small. */
int crypto_base64_encode(const uint8_t *in, size_t len, char *out, size_t outsz);

/* Constant-time equality of two equal-length buffers; different lengths are
 * unequal (the length itself is not secret). Returns 1 when equal. */
int crypto_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Fill buf with random bytes from wolfCrypt's RNG. Returns 0 or -1. */
int crypto_random(void *buf, size_t len);

/* Zero memory in a way the compiler cannot drop. */
void crypto_wipe(void *p, size_t len);

/* Wipe then free a NUL-terminated secret string (NULL is fine). */
void crypto_free_secret(char *s);

#endif
