/* fuzz_escalation.c — an escalation message from a call node, parsed and
 * turned into the webhook body and its signatures.
 *
 * Input: 3 bytes of webhook configuration, then the raw MQTT payload.
 *   byte 0: which candidate custom fields the webhook lists (0 = defaults)
 *   byte 1: which of them have useForSignature
 *   byte 2: bit 0 = the webhook has a secret
 * Invariants: an accepted escalation survives the outbox round trip
 * (escalation_to_json, compact text, plain cJSON parse, escalation_from_json)
 * unchanged, so an accepted message can never make the outbox unparsable; the
 * body is valid JSON with exactly the listed keys; the signatures compute. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escalation.h"
#include "jsonutil.h"
#include "payload.h"

static const char *const candidates[8] = {"eventId", "reason",    "accountNumber", "x",
                                          "timestamp", "summary", "a.b",          "callerNumber"};

static int same_str(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void outbox_roundtrip(const struct escalation *e)
{
  cJSON *j = escalation_to_json(e), *back = NULL;
  char *text = j ? jsonutil_print(j) : NULL;
  struct escalation r;

  if (!text)
    goto out;
  back = cJSON_Parse(text);
  if (!back || escalation_from_json(back, &r) != 0) {
    fprintf(stderr, "accepted escalation does not reload: %s\n", text);
    abort();
  }
  if (strcmp(r.event_id, e->event_id) || !same_str(r.caller_number, e->caller_number) ||
      !same_str(r.call_sid, e->call_sid) || !same_str(r.reason, e->reason) ||
      !same_str(r.summary, e->summary) || !same_str(r.agent_session_id, e->agent_session_id))
    abort();
  /* fields compared as text: cJSON_Compare mismatches repeated keys, which
   * JSON allows inside "fields" (the body takes the first). */
  {
    cJSON *rj = escalation_to_json(&r);
    char *rtext = rj ? jsonutil_print(rj) : NULL;
    if (rtext && strcmp(rtext, text) != 0) {
      fprintf(stderr, "outbox round trip changed the escalation:\n%s\n%s\n", text, rtext);
      abort();
    }
    free(rtext);
    cJSON_Delete(rj);
  }
  escalation_clear(&r);
out:
  free(text);
  cJSON_Delete(j);
  cJSON_Delete(back);
}

static void body_and_signatures(const struct webhook *w, const struct escalation *e,
                                const char *type)
{
  struct payload_meta m = {"0b6e1f0c-3f5e-4a43-9d55-9f0f6b1de2a4", type, 1764784800000};
  cJSON *o = payload_build(w, e, &m), *back = NULL;
  char *body = o ? jsonutil_print(o) : NULL, *msg = NULL;
  char hex[CRYPTO_SHA256_HEX_LEN + 1], sw[PAYLOAD_STDWH_SIG_MAX];
  size_t len = 0, n = 0;

  if (!body)
    goto out;
  back = cJSON_Parse(body);
  if (!back || !cJSON_IsObject(back))
    abort();
  for (const cJSON *it = back->child; it; it = it->next)
    n++;
  if (n != (w->nfields ? w->nfields : 8))
    abort();
  msg = payload_signed_message(w, o, body, &len);
  if (!msg)
    goto out;
  if (w->secret) {
    if (payload_signature(w, o, body, hex) != 0 || strlen(hex) != CRYPTO_SHA256_HEX_LEN)
      abort();
    if (payload_stdwh_signature(w->secret, m.event_id, "1764784800", body, strlen(body), sw) != 0)
      abort();
  }
out:
  free(msg);
  free(body);
  cJSON_Delete(o);
  cJSON_Delete(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct webhook_field fields[8];
  struct webhook w = {0};
  struct escalation e, t;
  char err[256];

  if (size < 3)
    return 0;
  for (int i = 0; i < 8; i++) {
    if (!(data[0] & (1u << i)))
      continue;
    fields[w.nfields].key = (char *)candidates[i];
    fields[w.nfields].hint = NULL;
    fields[w.nfields].sign = (data[1] >> i) & 1;
    w.nfields++;
  }
  w.fields = w.nfields ? fields : NULL;
  w.secret = (data[2] & 1) ? (char *)"whsec_fuzz" : NULL;
  w.secret_header = (char *)WEBHOOK_DEFAULT_HEADER;
  w.url = (char *)"https://example.com/hook";
  w.is_active = true;

  err[0] = '\0';
  if (escalation_parse(data + 3, size - 3, 0, &e, err, sizeof err) != 0) {
    if (!err[0])
      abort();
    return 0;
  }
  outbox_roundtrip(&e);
  body_and_signatures(&w, &e, "escalation");
  if (payload_test_escalation(&w, &t) == 0) {
    body_and_signatures(&w, &t, "escalation.test");
    escalation_clear(&t);
  }
  escalation_clear(&e);
  return 0;
}
