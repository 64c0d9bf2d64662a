/* payload.h — the webhook body and its signatures (PROTOCOL.md section 4). */
#ifndef HG_PAYLOAD_H
#define HG_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "escalation.h"
#include "webhook.h"

/* What identifies one delivery: eventId, eventType, accept time. */
struct payload_meta {
  const char *event_id;   /* UUID */
  const char *event_type; /* "escalation" or "escalation.test" */
  int64_t accepted_ms;    /* rendered as the "timestamp" field */
};

/* Build the body object: the default fields in order when w has no custom
 * fields, else exactly the listed keys in order. Returns NULL on OOM. */
cJSON *payload_build(const struct webhook *w, const struct escalation *e,
                     const struct payload_meta *m);

/* The signed message: the body bytes when no field has useForSignature,
 * else the flagged values joined with '.' (section 4). body is the compact
 * text of obj. Returns a malloc'd buffer (caller frees) and its length in
 * *len, or NULL on OOM. */
char *payload_signed_message(const struct webhook *w, const cJSON *obj, const char *body,
                             size_t *len);

/* Lowercase hex HMAC-SHA256(secret, signed message). Returns 0 or -1. */
int payload_signature(const struct webhook *w, const cJSON *obj, const char *body,
                      char out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Standard Webhooks: "v1," + base64 HMAC-SHA256(secret bytes,
 * id "." ts "." body). out must hold at least 50 bytes. Returns 0 or -1. */
#define PAYLOAD_STDWH_SIG_MAX 64
int payload_stdwh_signature(const char *secret, const char *id, const char *ts,
                            const char *body, size_t bodylen, char out[PAYLOAD_STDWH_SIG_MAX]);

/* The dummy escalation the test action sends: sample values for the default
 * fields, a new UUID v4 in out->event_id, and for each custom field that is
 * not a default field a sample string ("test-<key>") in out->fields.
 * Returns 0 or -1 (OOM, RNG failure). */
int payload_test_escalation(const struct webhook *w, struct escalation *out);

#endif
