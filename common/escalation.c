/* escalation.c — the escalation message a call node publishes (section 5). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escalation.h"
#include "jsonutil.h"

/* The named string properties, in wire order, and where each is kept. */
static const struct {
  const char *name;
  size_t off;
} named[] = {
    {"callerNumber", offsetof(struct escalation, caller_number)},
    {"callSid", offsetof(struct escalation, call_sid)},
    {"reason", offsetof(struct escalation, reason)},
    {"summary", offsetof(struct escalation, summary)},
    {"agentSessionId", offsetof(struct escalation, agent_session_id)},
};
#define NNAMED (sizeof named / sizeof named[0])

static char **slot(struct escalation *e, size_t i)
{
  return (char **)((char *)e + named[i].off);
}

static char *const *cslot(const struct escalation *e, size_t i)
{
  return (char *const *)((const char *)e + named[i].off);
}

static int fail(char *err, size_t errsz, const char *msg, const char *name)
{
  if (err && errsz)
    snprintf(err, errsz, msg, name);
  return -1;
}

static bool is_known(const char *k)
{
  if (strcmp(k, "eventId") == 0 || strcmp(k, "fields") == 0)
    return true;
  for (size_t i = 0; i < NNAMED; i++)
    if (strcmp(k, named[i].name) == 0)
      return true;
  return false;
}

/* Fill out from a parsed object. A null is taken as absent: call nodes that
 * serialise optional members as null are not turned away. */
static int from_object(const cJSON *root, struct escalation *out, char *err, size_t errsz)
{
  const cJSON *v;

  if (!cJSON_IsObject(root))
    return fail(err, errsz, "%s must be a JSON object", "escalation");
  for (const cJSON *m = root->child; m; m = m->next) {
    if (!m->string || !is_known(m->string))
      continue; /* forward compatibility */
    for (const cJSON *p = root->child; p != m; p = p->next)
      if (p->string && strcmp(p->string, m->string) == 0)
        return fail(err, errsz, "duplicate property: %s", m->string);
  }
  v = jsonutil_get(root, "eventId");
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsString(v) || !uuid_valid(v->valuestring))
      return fail(err, errsz, "%s must be a UUID", "eventId");
    uuid_lower(v->valuestring, out->event_id);
  }
  for (size_t i = 0; i < NNAMED; i++) {
    v = jsonutil_get(root, named[i].name);
    if (!v || cJSON_IsNull(v))
      continue;
    if (!cJSON_IsString(v) || !v->valuestring)
      return fail(err, errsz, "%s must be a string", named[i].name);
    *slot(out, i) = strdup(v->valuestring);
    if (!*slot(out, i))
      return fail(err, errsz, "%s", "out of memory");
  }
  v = jsonutil_get(root, "fields");
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsObject(v))
      return fail(err, errsz, "%s must be an object", "fields");
    out->fields = cJSON_Duplicate(v, 1);
    /* Passed through to the receiver: as sent, not as cJSON rounds it. */
    if (!out->fields || jsonutil_exact_numbers(out->fields) != 0)
      return fail(err, errsz, "%s", "out of memory");
  }
  return 0;
}

int escalation_parse(const void *buf, size_t len, size_t maxlen, struct escalation *out, char *err,
                     size_t errsz)
{
  char jerr[96];
  cJSON *root;
  int rc;

  memset(out, 0, sizeof *out);
  if (maxlen == 0)
    maxlen = ESCALATION_MAX_BYTES;
  if (len > maxlen) {
    if (err && errsz)
      snprintf(err, errsz, "escalation larger than %zu bytes", maxlen);
    return -1;
  }
  root = jsonutil_parse(buf, len, maxlen, jerr, sizeof jerr);
  if (!root)
    return fail(err, errsz, "escalation is not valid JSON: %s", jerr);
  rc = from_object(root, out, err, errsz);
  cJSON_Delete(root);
  if (rc != 0)
    escalation_clear(out);
  return rc;
}

cJSON *escalation_to_json(const struct escalation *e)
{
  cJSON *o = cJSON_CreateObject(), *f;

  if (!o)
    return NULL;
  if (e->event_id[0] && !cJSON_AddStringToObject(o, "eventId", e->event_id))
    goto bad;
  for (size_t i = 0; i < NNAMED; i++) {
    const char *s = *cslot(e, i);
    if (s && !cJSON_AddStringToObject(o, named[i].name, s))
      goto bad;
  }
  if (e->fields) {
    f = cJSON_Duplicate(e->fields, 1);
    if (!f)
      goto bad;
    if (!cJSON_AddItemToObject(o, "fields", f)) {
      cJSON_Delete(f);
      goto bad;
    }
  }
  return o;
bad:
  cJSON_Delete(o);
  return NULL;
}

int escalation_from_json(const cJSON *j, struct escalation *out)
{
  memset(out, 0, sizeof *out);
  if (from_object(j, out, NULL, 0) != 0) {
    escalation_clear(out);
    return -1;
  }
  return 0;
}

void escalation_clear(struct escalation *e)
{
  if (!e)
    return;
  for (size_t i = 0; i < NNAMED; i++)
    free(*slot(e, i));
  cJSON_Delete(e->fields);
  memset(e, 0, sizeof *e);
}
