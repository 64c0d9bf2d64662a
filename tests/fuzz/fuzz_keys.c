/* fuzz_keys.c — the keys file loader (keyring_open on a 0600 file holding the
 * input), then the checks a loaded key set serves: signature, time window,
 * nonce cache, permissions, reload. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "keyring.h"
#include "log.h"
#include "crypto.h"
#include "reqsig.h"

static char wrong_secret[2 * 16 + 1];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  uint8_t r[16];

  (void)argc;
  (void)argv;
  log_set_level(LOG_LVL_ERROR);
  if (crypto_random(r, sizeof r) != 0)
    abort();
  crypto_hex_encode(r, sizeof r, wrong_secret);
  fuzz_tmpdir("keys.json");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char topic[] = "hg/v1/webhook/get";
  static const char payload[] = "{\"agentId\":\"3fa85f64-5717-4562-b3fc-2c963f66afa6\"}";
  struct keyring *k = NULL;
  char err[1024] = "", why[256];
  char sig[CRYPTO_SHA256_HEX_LEN + 1];

  if (!wrong_secret[0])
    LLVMFuzzerInitialize(NULL, NULL);
  fuzz_write(data, size);
  if (keyring_open(fuzz_file, &k, err, sizeof err) != 0) {
    if (!err[0])
      abort();
    return 0;
  }
  /* A message signed with a secret no input can hold (random per process),
   * for the ids the seeds use. */
  reqsig_sign(wrong_secret, topic, "1764784800", "00112233445566778899aabbccddeeff",
              payload, strlen(payload), sig);
  const char *ids[] = {"ops", "node", "", "*"};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    struct keyring_props p = {ids[i], "1764784800", "00112233445566778899aabbccddeeff", sig, false};
    if (keyring_verify(k, &p, topic, payload, strlen(payload), 1764784800, why, sizeof why) == 0)
      abort(); /* a wrong secret never verifies */
    keyring_permits(k, ids[i], "get", "3fa85f64-5717-4562-b3fc-2c963f66afa6", why, sizeof why);
    keyring_permits(k, ids[i], "escalate", NULL, why, sizeof why);
  }
  if (keyring_reload(k, err, sizeof err) != 0)
    abort(); /* the same file loads twice */
  keyring_free(k);
  return 0;
}
