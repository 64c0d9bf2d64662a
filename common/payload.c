/* payload.c — the webhook body, its signed message and its signatures. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "payload.h"

/* The default fields, in body order. */
enum {
  F_EVENT_ID,
  F_EVENT_TYPE,
  F_TIMESTAMP,
  F_CALLER_NUMBER,
  F_CALL_SID,
  F_REASON,
  F_SUMMARY,
  F_AGENT_SESSION_ID,
  F_COUNT
};
static const char *const default_keys[F_COUNT] = {
    "eventId", "eventType", "timestamp", "callerNumber",
    "callSid", "reason",    "summary",   "agentSessionId",
};

static int default_index(const char *key)
{
  for (int i = 0; i < F_COUNT; i++)
    if (strcmp(key, default_keys[i]) == 0)
      return i;
  return -1;
}

/* Value of default field i, NULL for JSON null. ts is the rendered time. */
static const char *default_value(int i, const struct escalation *e, const struct payload_meta *m,
                                 const char *ts)
{
  switch (i) {
  case F_EVENT_ID:
    if (m && m->event_id && m->event_id[0])
      return m->event_id;
    return e && e->event_id[0] ? e->event_id : NULL;
  case F_EVENT_TYPE:
    return m && m->event_type ? m->event_type : "escalation";
  case F_TIMESTAMP:
    return ts;
  case F_CALLER_NUMBER:
    return e ? e->caller_number : NULL;
  case F_CALL_SID:
    return e ? e->call_sid : NULL;
  case F_REASON:
    return e ? e->reason : NULL;
  case F_SUMMARY:
    return e ? e->summary : NULL;
  case F_AGENT_SESSION_ID:
    return e ? e->agent_session_id : NULL;
  }
  return NULL;
}

cJSON *payload_build(const struct webhook *w, const struct escalation *e,
                     const struct payload_meta *m)
{
  char ts[CLOCK_ISO_LEN + 1];
  cJSON *o = cJSON_CreateObject();

  if (!o)
    return NULL;
  clock_iso8601(m ? m->accepted_ms : 0, ts);
  if (!w || w->nfields == 0) {
    for (int i = 0; i < F_COUNT; i++)
      if (!jsonutil_add_string_or_null(o, default_keys[i], default_value(i, e, m, ts)))
        goto bad;
    return o;
  }
  for (size_t k = 0; k < w->nfields; k++) {
    const char *key = w->fields[k].key;
    int i = default_index(key);
    const cJSON *src;
    cJSON *v;

    if (i >= 0) {
      if (!jsonutil_add_string_or_null(o, key, default_value(i, e, m, ts)))
        goto bad;
      continue;
    }
    src = e ? jsonutil_get(e->fields, key) : NULL;
    v = src ? cJSON_Duplicate(src, 1) : cJSON_CreateNull();
    if (!v)
      goto bad;
    if (!cJSON_AddItemToObject(o, key, v)) {
      cJSON_Delete(v);
      goto bad;
    }
  }
  return o;
bad:
  cJSON_Delete(o);
  return NULL;
}

static bool any_signed(const struct webhook *w)
{
  for (size_t i = 0; i < w->nfields; i++)
    if (w->fields[i].sign)
      return true;
  return false;
}

/* Text of one flagged value: strings as is, null as "", the rest as
 * compact JSON. *owned is set when the text must be freed. */
static const char *value_text(const cJSON *v, char **owned)
{
  *owned = NULL;
  if (!v || cJSON_IsNull(v))
    return "";
  if (cJSON_IsString(v))
    return v->valuestring ? v->valuestring : "";
  if (cJSON_IsTrue(v))
    return "true";
  if (cJSON_IsFalse(v))
    return "false";
  *owned = jsonutil_print(v);
  return *owned;
}

char *payload_signed_message(const struct webhook *w, const cJSON *obj, const char *body,
                             size_t *len)
{
  char *msg = NULL;
  size_t used = 0, cap = 0;
  bool first = true;

  if (!body)
    return NULL;
  if (!w || !any_signed(w)) {
    size_t n = strlen(body);
    msg = malloc(n + 1);
    if (!msg)
      return NULL;
    memcpy(msg, body, n + 1);
    *len = n;
    return msg;
  }
  for (size_t i = 0; i < w->nfields; i++) {
    char *owned;
    const char *t;
    size_t tl, need;

    if (!w->fields[i].sign)
      continue;
    t = value_text(jsonutil_get(obj, w->fields[i].key), &owned);
    if (!t)
      goto bad;
    tl = strlen(t);
    need = used + 1 + tl + 1;
    if (need > cap) {
      size_t ncap = cap ? cap * 2 : 128;
      char *nm;
      while (ncap < need)
        ncap *= 2;
      nm = realloc(msg, ncap);
      if (!nm) {
        free(owned);
        goto bad;
      }
      msg = nm;
      cap = ncap;
    }
    /* Every value but the first is preceded by '.', even an empty one:
     * "a..c" for a, null, c. */
    if (!first)
      msg[used++] = '.';
    first = false;
    memcpy(msg + used, t, tl);
    used += tl;
    msg[used] = '\0';
    free(owned);
  }
  *len = used;
  return msg;
bad:
  free(msg);
  return NULL;
}

int payload_signature(const struct webhook *w, const cJSON *obj, const char *body,
                      char out[CRYPTO_SHA256_HEX_LEN + 1])
{
  size_t len = 0;
  char *msg;
  int rc;

  if (!w || !w->secret)
    return -1;
  msg = payload_signed_message(w, obj, body, &len);
  if (!msg)
    return -1;
  rc = crypto_hmac_sha256_hex(w->secret, strlen(w->secret), msg, len, out);
  free(msg);
  return rc;
}

int payload_stdwh_signature(const char *secret, const char *id, const char *ts, const char *body,
                            size_t bodylen, char out[PAYLOAD_STDWH_SIG_MAX])
{
  uint8_t mac[CRYPTO_SHA256_LEN];
  int rc;

  if (!secret || !id || !ts || (bodylen && !body))
    return -1;
  const struct crypto_part parts[] = {
      {id, strlen(id)}, {".", 1}, {ts, strlen(ts)}, {".", 1}, {body, bodylen},
  };
  if (crypto_hmac_sha256_parts(secret, strlen(secret), parts, sizeof parts / sizeof parts[0],
                               mac) != 0)
    return -1;
  memcpy(out, "v1,", 3);
  rc = crypto_base64_encode(mac, sizeof mac, out + 3, PAYLOAD_STDWH_SIG_MAX - 3);
  crypto_wipe(mac, sizeof mac);
  return rc < 0 ? -1 : 0;
}

int payload_test_escalation(const struct webhook *w, struct escalation *out)
{
  static const struct {
    size_t off;
    const char *value;
  } samples[] = {
      {offsetof(struct escalation, caller_number), "+15550100000"},
      {offsetof(struct escalation, call_sid), "CA00000000000000000000000000000000"},
      {offsetof(struct escalation, reason), "test"},
      {offsetof(struct escalation, summary), "Test escalation sent by hgd."},
      {offsetof(struct escalation, agent_session_id), "test-session"},
  };

  memset(out, 0, sizeof *out);
  if (uuid_v4(out->event_id) != 0)
    return -1;
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    char **slot = (char **)((char *)out + samples[i].off);
    *slot = strdup(samples[i].value);
    if (!*slot)
      goto bad;
  }
  for (size_t k = 0; w && k < w->nfields; k++) {
    const char *key = w->fields[k].key;
    size_t kl = strlen(key);
    char *v;
    cJSON *item;

    if (default_index(key) >= 0)
      continue;
    if (!out->fields && !(out->fields = cJSON_CreateObject()))
      goto bad;
    v = malloc(kl + 6);
    if (!v)
      goto bad;
    memcpy(v, "test-", 5);
    memcpy(v + 5, key, kl + 1);
    item = cJSON_AddStringToObject(out->fields, key, v);
    free(v);
    if (!item)
      goto bad;
  }
  return 0;
bad:
  escalation_clear(out);
  return -1;
}
