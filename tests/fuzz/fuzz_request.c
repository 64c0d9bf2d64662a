/* fuzz_request.c — the action request path: jsonutil_parse (the limits hgd
 * applies to hostile payloads) then webhook_from_request (every upsert
 * rule). Invariants checked on every accepted row:
 *  - the URL is https:// (or http:// only when allowed), no '@' before the
 *    path, no '#', ASCII without controls;
 *  - the secret header is a token and not one hgd sets;
 *  - the on-disk form reloads (webhook_from_json) to the same row, so that an
 *    accepted upsert can never make the store unparsable at the next start;
 *  - the wire form never carries the secret. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonutil.h"
#include "webhook.h"

#define MAX_PAYLOAD 65536

static void check_url(const char *url, int allow_http)
{
  const char *rest;
  size_t alen;

  if (strncasecmp(url, "https://", 8) == 0)
    rest = url + 8;
  else if (allow_http && strncasecmp(url, "http://", 7) == 0)
    rest = url + 7;
  else
    abort();
  if (strlen(url) > WEBHOOK_URL_MAX || strchr(url, '#'))
    abort();
  alen = strcspn(rest, "/?");
  if (alen == 0 || memchr(rest, '@', alen))
    abort();
  for (const unsigned char *p = (const unsigned char *)url; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f)
      abort();
}

static void check_header(const char *h)
{
  static const char *const reserved[] = {"host", "content-type", "content-length",
                                         "transfer-encoding", "connection", "user-agent",
                                         "x-helpgenie-event-id", "x-helpgenie-attempt"};
  if (!h || !*h || strlen(h) > WEBHOOK_HEADER_MAX)
    abort();
  for (const char *p = h; *p; p++)
    if (*p == '\r' || *p == '\n' || *p == ':' || *p == ' ' || (unsigned char)*p < 0x21 ||
        (unsigned char)*p > 0x7e)
      abort();
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (strcasecmp(h, reserved[i]) == 0)
      abort();
  if (strncasecmp(h, "webhook-", 8) == 0)
    abort();
}

static int same_str(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void roundtrip(const struct webhook *w)
{
  cJSON *disk = webhook_to_json(w, true), *wire = webhook_to_json(w, false), *back = NULL;
  char *text = NULL, *wtext = NULL, err[256];
  struct webhook r;

  if (!disk || !wire)
    goto out; /* out of memory only */
  text = jsonutil_print(disk);
  wtext = jsonutil_print(wire);
  if (!text || !wtext)
    goto out;
  {
    /* The wire form carries the mask or null, never the secret. */
    const cJSON *s = jsonutil_get(wire, "secret");
    if (w->secret ? !cJSON_IsString(s) || strcmp(s->valuestring, WEBHOOK_MASK) != 0
                  : !cJSON_IsNull(s))
      abort();
  }
  /* The store reads its lines with plain cJSON (journal.c). */
  back = cJSON_Parse(text);
  if (!back)
    abort();
  if (webhook_from_json(back, &r, err, sizeof err) != 0) {
    fprintf(stderr, "accepted row does not reload: %s\n%s\n", err, text);
    abort();
  }
  if (strcmp(r.agent_id, w->agent_id) || !same_str(r.url, w->url) ||
      !same_str(r.secret, w->secret) || !same_str(r.secret_header, w->secret_header) ||
      r.nfields != w->nfields || r.is_active != w->is_active)
    abort();
  for (size_t i = 0; i < r.nfields; i++)
    if (strcmp(r.fields[i].key, w->fields[i].key) || !same_str(r.fields[i].hint, w->fields[i].hint) ||
        r.fields[i].sign != w->fields[i].sign)
      abort();
  webhook_clear(&r);
out:
  free(text);
  free(wtext);
  cJSON_Delete(disk);
  cJSON_Delete(wire);
  cJSON_Delete(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char err[512];
  cJSON *params = jsonutil_parse(data, size, MAX_PAYLOAD, err, sizeof err);

  if (!params)
    return 0;
  for (int allow_http = 0; allow_http < 2; allow_http++) {
    struct webhook w;
    err[0] = '\0';
    if (webhook_from_request(params, allow_http, &w, err, sizeof err) != 0) {
      if (!err[0])
        abort(); /* every refusal names its reason */
      continue;
    }
    check_url(w.url, allow_http);
    check_header(w.secret_header);
    memcpy(w.id, "3fa85f64-5717-4562-b3fc-2c963f66afa6", 37);
    w.created_ms = 1764784800000;
    w.updated_ms = 1764784800123;
    roundtrip(&w);
    cJSON *f = webhook_fields_json(&w);
    cJSON_Delete(f);
    webhook_clear(&w);
  }
  cJSON_Delete(params);
  return 0;
}
