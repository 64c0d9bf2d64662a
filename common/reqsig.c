/* reqsig.c — publisher signatures of PROTOCOL.md section 2. */
#include <stdint.h>
#include <string.h>

#include "reqsig.h"

int reqsig_sign(const char *secret, const char *topic, const char *ts, const char *nonce,
                const void *payload, size_t payloadlen, char out[CRYPTO_SHA256_HEX_LEN + 1])
{
  uint8_t mac[CRYPTO_SHA256_LEN];

  if (!secret || !topic || !ts || !nonce || (payloadlen && !payload))
    return -1;
  const struct crypto_part parts[] = {
      {"hg1\n", 4}, {topic, strlen(topic)}, {"\n", 1}, {ts, strlen(ts)},
      {"\n", 1},    {nonce, strlen(nonce)}, {"\n", 1}, {payload, payloadlen},
  };
  if (crypto_hmac_sha256_parts(secret, strlen(secret), parts, sizeof parts / sizeof parts[0],
                               mac) != 0)
    return -1;
  crypto_hex_encode(mac, sizeof mac, out);
  crypto_wipe(mac, sizeof mac);
  return 0;
}

bool reqsig_verify(const char *secret, const char *topic, const char *ts, const char *nonce,
                   const void *payload, size_t payloadlen, const char *sig)
{
  char want[CRYPTO_SHA256_HEX_LEN + 1];
  bool ok;

  if (!sig)
    return false;
  if (reqsig_sign(secret, topic, ts, nonce, payload, payloadlen, want) != 0)
    return false;
  /* The length of a signature is public; its bytes are compared in
   * constant time. */
  ok = crypto_equal(want, CRYPTO_SHA256_HEX_LEN, sig, strnlen(sig, CRYPTO_SHA256_HEX_LEN + 1)) == 1;
  crypto_wipe(want, sizeof want);
  return ok;
}

int reqsig_nonce(char out[33])
{
  uint8_t b[16];

  if (crypto_random(b, sizeof b) != 0)
    return -1;
  crypto_hex_encode(b, sizeof b, out);
  return 0;
}

bool reqsig_nonce_valid(const char *s)
{
  size_t n = 0;

  if (!s)
    return false;
  for (; s[n]; n++) {
    if (n >= REQSIG_NONCE_MAX)
      return false;
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
      return false;
  }
  return n >= REQSIG_NONCE_MIN;
}

int reqsig_parse_ts(const char *s, long long *ts)
{
  unsigned long long v = 0;
  size_t n = 0;

  if (!s || !ts)
    return -1;
  for (; s[n]; n++) {
    if (n >= 19 || s[n] < '0' || s[n] > '9')
      return -1;
    v = v * 10 + (unsigned)(s[n] - '0');
  }
  /* 19 digits fit an unsigned long long but not always a long long. */
  if (n == 0 || v > (unsigned long long)INT64_MAX)
    return -1;
  *ts = (long long)v;
  return 0;
}
