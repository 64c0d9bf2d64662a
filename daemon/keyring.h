/* keyring.h — publisher keys (PROTOCOL.md section 2) and replay defence.
 *
 * The keys file is JSON {"keys":[{"id","secret","agents":[…],"actions":[…]}]},
 * mode 0600 (refused when group or others may read it). SIGHUP swaps in a new
 * key set atomically; a bad file on reload keeps the old set. Nonces seen
 * inside the time window are remembered (in memory only: see docs). */
#ifndef HG_KEYRING_H
#define HG_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keyring;

/* The four user properties of a signed PUBLISH (NULL when absent). */
struct keyring_props {
  const char *key;
  const char *ts;
  const char *nonce;
  const char *sig;
  bool repeated; /* one of them appeared more than once: malformed */
};

int keyring_open(const char *path, struct keyring **out, char *err, size_t errsz);
/* Re-read the file; on error the old keys stay and err says why. */
int keyring_reload(struct keyring *k, char *err, size_t errsz);
void keyring_free(struct keyring *k);
size_t keyring_count(struct keyring *k);

/* Verify a message's signature, time window and nonce, and remember the
 * nonce. now_s is hgd's clock. Returns 0, or -1 with a reason for the log
 * (never a secret) in why. */
int keyring_verify(struct keyring *k, const struct keyring_props *p, const char *topic,
                   const void *payload, size_t len, int64_t now_s, char *why, size_t whysz);

/* Whether key_id may perform action on agent_id (lowercase UUID; NULL means
 * no agent is involved). Returns 0 or -1 with a reason in why. */
int keyring_permits(struct keyring *k, const char *key_id, const char *action,
                    const char *agent_id, char *why, size_t whysz);

#endif
