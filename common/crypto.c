/* crypto.c — HMAC-SHA256, hex, base64, compare, RNG and wiping on wolfCrypt. */
#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"

/* wolfCrypt takes word32 lengths; feed longer inputs in chunks. */
#define CRYPTO_CHUNK ((size_t)1 << 30)

int crypto_hmac_sha256_parts(const void *key, size_t keylen, const struct crypto_part *parts,
                             size_t nparts, uint8_t out[CRYPTO_SHA256_LEN])
{
  static const uint8_t nokey = 0;
  Hmac hmac;
  int rc = -1;

  if (keylen > UINT32_MAX || (nparts && !parts))
    return -1;
  /* wolfCrypt refuses a NULL key even when its length is zero. */
  if (!key || keylen == 0) {
    key = &nokey;
    keylen = 0;
  }
  if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
    return -1;
  if (wc_HmacSetKey(&hmac, WC_SHA256, key, (word32)keylen) != 0)
    goto out;
  for (size_t i = 0; i < nparts; i++) {
    const uint8_t *p = parts[i].p;
    size_t left = parts[i].len;
    if (left && !p)
      goto out;
    while (left) {
      size_t n = left < CRYPTO_CHUNK ? left : CRYPTO_CHUNK;
      if (wc_HmacUpdate(&hmac, p, (word32)n) != 0)
        goto out;
      p += n;
      left -= n;
    }
  }
  if (wc_HmacFinal(&hmac, out) != 0)
    goto out;
  rc = 0;
out:
  wc_HmacFree(&hmac);
  crypto_wipe(&hmac, sizeof hmac);
  return rc;
}

int crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                       uint8_t out[CRYPTO_SHA256_LEN])
{
  struct crypto_part part = {msg, msglen};
  return crypto_hmac_sha256_parts(key, keylen, &part, 1, out);
}

int crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                           char out[CRYPTO_SHA256_HEX_LEN + 1])
{
  uint8_t mac[CRYPTO_SHA256_LEN];

  if (crypto_hmac_sha256(key, keylen, msg, msglen, mac) != 0)
    return -1;
  crypto_hex_encode(mac, sizeof mac, out);
  crypto_wipe(mac, sizeof mac);
  return 0;
}

void crypto_hex_encode(const uint8_t *in, size_t len, char *out)
{
  static const char digits[] = "0123456789abcdef";

  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 0x0f];
  }
  out[2 * len] = '\0';
}

int crypto_base64_encode(const uint8_t *in, size_t len, char *out, size_t outsz)
{
  size_t need;
  word32 outlen;

  if (!out || len > (size_t)UINT32_MAX / 4 * 3 - 3)
    return -1;
  need = (len + 2) / 3 * 4;
  if (outsz < need + 1 || need > INT32_MAX)
    return -1;
  if (len == 0) {
    out[0] = '\0';
    return 0;
  }
  /* Base64_Encode would break lines every 64 characters; _NoNl does not. */
  outlen = (word32)need;
  if (Base64_Encode_NoNl(in, (word32)len, (byte *)out, &outlen) != 0 || outlen != need)
    return -1;
  out[need] = '\0';
  return (int)need;
}

int crypto_equal(const void *a, size_t alen, const void *b, size_t blen)
{
  const volatile uint8_t *pa = a;
  const volatile uint8_t *pb = b;
  uint8_t diff = 0;

  if (alen != blen)
    return 0;
  for (size_t i = 0; i < alen; i++)
    diff |= (uint8_t)(pa[i] ^ pb[i]);
  return diff == 0;
}

/* wolfCrypt's RNG is not thread-safe: each thread keeps its own, made on first
 * use and freed by the key destructor when the thread exits. The pid check
 * reseeds a child after fork so parent and child never share a stream. */
struct crypto_rng {
  WC_RNG rng;
  pid_t pid;
};

static pthread_key_t rng_key;
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;
static int rng_key_ok;
static _Thread_local struct crypto_rng *rng_tls;

static void rng_destroy(void *p)
{
  struct crypto_rng *r = p;

  if (!r)
    return;
  if (r->pid != 0)
    wc_FreeRng(&r->rng);
  crypto_wipe(r, sizeof *r);
  free(r);
}

static void rng_key_init(void)
{
  rng_key_ok = pthread_key_create(&rng_key, rng_destroy) == 0;
}

static struct crypto_rng *rng_get(void)
{
  struct crypto_rng *r = rng_tls;
  pid_t pid = getpid();

  if (r && r->pid == pid)
    return r;
  if (r) {
    /* Forked (or an earlier init failed): never reuse inherited state. */
    if (r->pid != 0)
      wc_FreeRng(&r->rng);
    r->pid = 0;
  } else {
    pthread_once(&rng_once, rng_key_init);
    if (!rng_key_ok)
      return NULL;
    r = calloc(1, sizeof *r);
    if (!r)
      return NULL;
    if (pthread_setspecific(rng_key, r) != 0) {
      free(r);
      return NULL;
    }
    rng_tls = r;
  }
  if (wc_InitRng(&r->rng) != 0)
    return NULL;
  r->pid = pid;
  return r;
}

int crypto_random(void *buf, size_t len)
{
  struct crypto_rng *r;
  uint8_t *p = buf;

  if (len == 0)
    return 0;
  if (!buf)
    return -1;
  r = rng_get();
  if (!r)
    return -1;
  while (len) {
    /* wolfCrypt caps one generate call (RNG_MAX_BLOCK_LEN, 64 KiB). */
    size_t n = len < 4096 ? len : 4096;
    if (wc_RNG_GenerateBlock(&r->rng, p, (word32)n) != 0)
      return -1;
    p += n;
    len -= n;
  }
  return 0;
}

void crypto_wipe(void *p, size_t len)
{
  if (p && len)
    explicit_bzero(p, len);
}

void crypto_free_secret(char *s)
{
  if (!s)
    return;
  crypto_wipe(s, strlen(s));
  free(s);
}
