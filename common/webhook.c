/* webhook.c — the webhook row: validation of upsert parameters, the wire and
 * on-disk JSON forms, copy and release. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "crypto.h"
#include "jsonutil.h"
#include "webhook.h"

#define NAME_SHOWN_MAX 64 /* bytes of a client-chosen name echoed in an error */

static int fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
  va_list ap;

  if (err && errsz) {
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* A client-chosen name made fit for an error message (and so for a reply and
 * a log line): at most NAME_SHOWN_MAX bytes cut on a character boundary,
 * control characters and undecodable bytes shown as '?'. */
static void shown_name(const char *s, char out[NAME_SHOWN_MAX + 4])
{
  size_t len = strlen(s);
  bool utf8 = jsonutil_utf8_valid(s, len);
  size_t o = 0;

  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)s[i];
    size_t n = 1;
    if (utf8 && c >= 0xc0)
      n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (o + n > NAME_SHOWN_MAX) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80)) {
      out[o++] = '?';
    } else {
      memcpy(out + o, s + i, n);
      o += n;
    }
    i += n;
  }
  out[o] = '\0';
}

static bool is_tchar(unsigned char c)
{
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
    return true;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_host_char(unsigned char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
         c == '.' || c == '_';
}

static int check_port(const char *p, size_t n, char *err, size_t errsz)
{
  unsigned long v = 0;

  if (n == 0 || n > 5)
    return fail(err, errsz, "url has an invalid port");
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return fail(err, errsz, "url has an invalid port");
    v = v * 10 + (unsigned long)(p[i] - '0');
  }
  if (v < 1 || v > 65535)
    return fail(err, errsz, "url has an invalid port");
  return 0;
}

/* authority = host [":" port], host a name, an IPv4 address or [IPv6]. */
static int check_authority(const char *a, size_t n, char *err, size_t errsz)
{
  size_t i;

  if (memchr(a, '@', n))
    return fail(err, errsz, "url must not contain user info");
  if (n == 0)
    return fail(err, errsz, "url must have a host");
  if (a[0] == '[') {
    const char *close = memchr(a, ']', n);
    size_t hl;
    if (!close)
      return fail(err, errsz, "url has an invalid host");
    hl = (size_t)(close - a) - 1;
    if (hl < 2 || !memchr(a + 1, ':', hl))
      return fail(err, errsz, "url has an invalid host");
    for (i = 1; i <= hl; i++) {
      unsigned char c = (unsigned char)a[i];
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
            c == ':' || c == '.'))
        return fail(err, errsz, "url has an invalid host");
    }
    i = hl + 2;
    if (i == n)
      return 0;
    if (a[i] != ':')
      return fail(err, errsz, "url has an invalid host");
    return check_port(a + i + 1, n - i - 1, err, errsz);
  }
  for (i = 0; i < n && a[i] != ':'; i++)
    if (!is_host_char((unsigned char)a[i]))
      return fail(err, errsz, "url has an invalid host");
  if (i == 0)
    return fail(err, errsz, "url must have a host");
  if (i == n)
    return 0;
  return check_port(a + i + 1, n - i - 1, err, errsz);
}

int webhook_check_url(const char *url, bool allow_http, char *err, size_t errsz)
{
  const char *rest;
  size_t len, alen;

  if (!url)
    return fail(err, errsz, "url is required");
  len = strlen(url);
  if (len > WEBHOOK_URL_MAX)
    return fail(err, errsz, "url must be at most %d bytes", WEBHOOK_URL_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)url[i];
    if (c <= 0x20 || c == 0x7f)
      return fail(err, errsz, "url must not contain whitespace or control characters");
    if (c >= 0x80)
      return fail(err, errsz, "url must be ASCII (percent-encode other characters)");
  }
  if (strncasecmp(url, "https://", 8) == 0)
    rest = url + 8;
  else if (allow_http && strncasecmp(url, "http://", 7) == 0)
    rest = url + 7;
  else if (allow_http)
    return fail(err, errsz, "url must be an http or https URL");
  else
    return fail(err, errsz, "url must be an https URL");
  if (strchr(url, '#'))
    return fail(err, errsz, "url must not contain a fragment");
  alen = strcspn(rest, "/?");
  return check_authority(rest, alen, err, errsz);
}

/* Headers hgd writes on every delivery; a secret header may not replace them. */
static const char *const reserved_headers[] = {
    "Host",       "Content-Type", "Content-Length",       "Transfer-Encoding",
    "Connection", "User-Agent",   "X-HelpGenie-Event-Id", "X-HelpGenie-Attempt",
};

int webhook_check_header(const char *name, char *err, size_t errsz)
{
  size_t len;

  if (!name)
    return fail(err, errsz, "secret_header must be a string");
  len = strlen(name);
  if (len < 1 || len > WEBHOOK_HEADER_MAX)
    return fail(err, errsz, "secret_header must be 1 to %d bytes", WEBHOOK_HEADER_MAX);
  for (size_t i = 0; i < len; i++)
    if (!is_tchar((unsigned char)name[i]))
      return fail(err, errsz, "secret_header must be an HTTP token (RFC 9110 tchar)");
  for (size_t i = 0; i < sizeof reserved_headers / sizeof reserved_headers[0]; i++)
    if (strcasecmp(name, reserved_headers[i]) == 0)
      return fail(err, errsz, "secret_header must not be %s, which hgd sets itself",
                  reserved_headers[i]);
  if (strncasecmp(name, "webhook-", 8) == 0)
    return fail(err, errsz, "secret_header must not be a webhook-* header, which hgd sets itself");
  return 0;
}

static bool field_key_valid(const char *k)
{
  size_t n = strlen(k);

  if (n < 1 || n > WEBHOOK_FIELD_KEY_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)k[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  }
  return true;
}

static bool has_earlier_member(const cJSON *obj, const cJSON *m)
{
  for (const cJSON *p = obj->child; p && p != m; p = p->next)
    if (p->string && strcmp(p->string, m->string) == 0)
      return true;
  return false;
}

static void fields_free(struct webhook_field *f, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(f[i].key);
    free(f[i].hint);
  }
  free(f);
}

/* One custom_fields item: a key string, or {key, hint?, useForSignature?}. */
static int parse_field(const cJSON *it, size_t idx, struct webhook_field *f, char *err,
                       size_t errsz)
{
  const cJSON *key = it, *hint = NULL, *sign = NULL;
  char shown[NAME_SHOWN_MAX + 4];

  if (cJSON_IsObject(it)) {
    key = NULL;
    for (const cJSON *m = it->child; m; m = m->next) {
      if (!m->string)
        return fail(err, errsz, "custom_fields[%zu] is malformed", idx);
      if (has_earlier_member(it, m)) {
        shown_name(m->string, shown);
        return fail(err, errsz, "custom_fields[%zu] has a duplicate property: %s", idx, shown);
      }
      if (strcmp(m->string, "key") == 0) {
        key = m;
      } else if (strcmp(m->string, "hint") == 0) {
        hint = m;
      } else if (strcmp(m->string, "useForSignature") == 0) {
        sign = m;
      } else {
        shown_name(m->string, shown);
        return fail(err, errsz, "custom_fields[%zu] has an unknown property: %s", idx, shown);
      }
    }
    if (!key || cJSON_IsNull(key))
      return fail(err, errsz, "custom_fields[%zu].key is required", idx);
  } else if (!cJSON_IsString(it)) {
    return fail(err, errsz, "custom_fields[%zu] must be a string or an object", idx);
  }
  if (!cJSON_IsString(key) || !key->valuestring || !field_key_valid(key->valuestring))
    return fail(err, errsz,
                "custom_fields[%zu].key must be 1 to %d characters of A-Z a-z 0-9 _ . -", idx,
                WEBHOOK_FIELD_KEY_MAX);
  if (hint && !cJSON_IsNull(hint)) {
    size_t hl;
    if (!cJSON_IsString(hint) || !hint->valuestring)
      return fail(err, errsz, "custom_fields[%zu].hint must be a string or null", idx);
    hl = strlen(hint->valuestring);
    if (hl > WEBHOOK_HINT_MAX)
      return fail(err, errsz, "custom_fields[%zu].hint must be at most %d bytes", idx,
                  WEBHOOK_HINT_MAX);
    if (!jsonutil_utf8_valid(hint->valuestring, hl))
      return fail(err, errsz, "custom_fields[%zu].hint must be valid UTF-8", idx);
  } else {
    hint = NULL;
  }
  if (sign && !cJSON_IsBool(sign))
    return fail(err, errsz, "custom_fields[%zu].useForSignature must be a boolean", idx);

  f->key = strdup(key->valuestring);
  f->hint = hint ? strdup(hint->valuestring) : NULL;
  f->sign = sign && cJSON_IsTrue(sign);
  if (!f->key || (hint && !f->hint))
    return fail(err, errsz, "out of memory");
  return 0;
}

static int parse_fields(const cJSON *arr, struct webhook *w, char *err, size_t errsz)
{
  size_t n = 0, idx = 0;
  struct webhook_field *f;

  if (!cJSON_IsArray(arr))
    return fail(err, errsz, "custom_fields must be an array");
  for (const cJSON *it = arr->child; it; it = it->next)
    n++;
  if (n > WEBHOOK_FIELDS_MAX)
    return fail(err, errsz, "custom_fields must have at most %d items", WEBHOOK_FIELDS_MAX);
  if (n == 0)
    return 0;
  f = calloc(n, sizeof *f);
  if (!f)
    return fail(err, errsz, "out of memory");
  for (const cJSON *it = arr->child; it; it = it->next, idx++) {
    if (parse_field(it, idx, &f[idx], err, errsz) != 0)
      goto bad;
    for (size_t k = 0; k < idx; k++) {
      if (strcmp(f[k].key, f[idx].key) == 0) {
        fail(err, errsz, "custom_fields[%zu].key duplicates custom_fields[%zu].key: %s", idx, k,
             f[idx].key);
        goto bad;
      }
    }
  }
  w->fields = f;
  w->nfields = n;
  return 0;
bad:
  fields_free(f, n);
  return -1;
}

/* secret: a string of 1..WEBHOOK_SECRET_MAX bytes, or null/absent. */
static int parse_secret(const cJSON *s, struct webhook *w, char *err, size_t errsz)
{
  size_t len;

  if (!s || cJSON_IsNull(s))
    return 0;
  if (!cJSON_IsString(s) || !s->valuestring)
    return fail(err, errsz, "secret must be a string or null");
  len = strlen(s->valuestring);
  if (len < 1 || len > WEBHOOK_SECRET_MAX)
    return fail(err, errsz, "secret must be 1 to %d bytes", WEBHOOK_SECRET_MAX);
  if (!jsonutil_utf8_valid(s->valuestring, len))
    return fail(err, errsz, "secret must be valid UTF-8");
  /* The mask replies show in its place: a client that echoes a row back has
   * made a mistake, and the store could not tell it from the wire form. */
  if (strcmp(s->valuestring, WEBHOOK_MASK) == 0)
    return fail(err, errsz, "secret must not be the mask that replies show in its place");
  w->secret = strdup(s->valuestring);
  if (!w->secret)
    return fail(err, errsz, "out of memory");
  return 0;
}

static int parse_header(const cJSON *h, struct webhook *w, char *err, size_t errsz)
{
  const char *name = WEBHOOK_DEFAULT_HEADER;

  if (h) {
    if (!cJSON_IsString(h) || !h->valuestring)
      return fail(err, errsz, "secret_header must be a string");
    name = h->valuestring;
  }
  if (webhook_check_header(name, err, errsz) != 0)
    return -1;
  w->secret_header = strdup(name);
  if (!w->secret_header)
    return fail(err, errsz, "out of memory");
  return 0;
}

static int parse_url(const cJSON *u, bool allow_http, struct webhook *w, char *err, size_t errsz)
{
  if (!u || cJSON_IsNull(u))
    return fail(err, errsz, "url is required");
  if (!cJSON_IsString(u) || !u->valuestring)
    return fail(err, errsz, "url must be a string");
  if (webhook_check_url(u->valuestring, allow_http, err, errsz) != 0)
    return -1;
  w->url = strdup(u->valuestring);
  if (!w->url)
    return fail(err, errsz, "out of memory");
  return 0;
}

static int parse_uuid(const cJSON *v, const char *name, char out[UUID_STR_LEN + 1], char *err,
                      size_t errsz)
{
  if (!v || cJSON_IsNull(v))
    return fail(err, errsz, "%s is required", name);
  if (!cJSON_IsString(v) || !uuid_valid(v->valuestring))
    return fail(err, errsz, "%s must be a UUID", name);
  uuid_lower(v->valuestring, out);
  return 0;
}

/* The bracketed host of an accepted URL, if any, is a real IPv6 address
 * ("[1:2:3:4:5:6:7:8:9]" passed check_authority and only failed at every
 * delivery). Checked for requests only: a row already in a store loads as
 * before, so an upgrade cannot make hgd refuse its own store. */
static int check_ipv6_literal(const char *url, char *err, size_t errsz)
{
  const char *h = strstr(url, "://");
  char buf[INET6_ADDRSTRLEN + 1];
  struct in6_addr a;

  if (!h || h[3] != '[')
    return 0;
  h += 4;
  size_t n = strcspn(h, "]");
  if (n >= sizeof buf)
    return fail(err, errsz, "url has an invalid host");
  memcpy(buf, h, n);
  buf[n] = '\0';
  if (inet_pton(AF_INET6, buf, &a) != 1)
    return fail(err, errsz, "url has an invalid host");
  return 0;
}

static const char *const request_params[] = {
    "agentId", "url", "secret", "secret_header", "custom_fields", "is_active",
};

int webhook_from_request(const cJSON *params, bool allow_http, struct webhook *out, char *err,
                         size_t errsz)
{
  struct webhook w = {0};
  const cJSON *active;
  char shown[NAME_SHOWN_MAX + 4];

  memset(out, 0, sizeof *out);
  if (!cJSON_IsObject(params))
    return fail(err, errsz, "parameters must be a JSON object");
  for (const cJSON *m = params->child; m; m = m->next) {
    bool known = false;
    if (!m->string)
      return fail(err, errsz, "parameters must be a JSON object");
    for (size_t i = 0; i < sizeof request_params / sizeof request_params[0]; i++)
      known = known || strcmp(m->string, request_params[i]) == 0;
    shown_name(m->string, shown);
    if (!known)
      return fail(err, errsz, "unknown parameter: %s", shown);
    if (has_earlier_member(params, m))
      return fail(err, errsz, "duplicate parameter: %s", shown);
  }

  if (parse_uuid(jsonutil_get(params, "agentId"), "agentId", w.agent_id, err, errsz) != 0 ||
      parse_url(jsonutil_get(params, "url"), allow_http, &w, err, errsz) != 0 ||
      check_ipv6_literal(w.url, err, errsz) != 0 ||
      parse_secret(jsonutil_get(params, "secret"), &w, err, errsz) != 0 ||
      parse_header(jsonutil_get(params, "secret_header"), &w, err, errsz) != 0)
    goto bad;
  if (jsonutil_get(params, "custom_fields") &&
      parse_fields(jsonutil_get(params, "custom_fields"), &w, err, errsz) != 0)
    goto bad;
  active = jsonutil_get(params, "is_active");
  if (active && !cJSON_IsBool(active)) {
    fail(err, errsz, "is_active must be a boolean");
    goto bad;
  }
  w.is_active = active ? cJSON_IsTrue(active) : true;
  *out = w;
  return 0;
bad:
  webhook_clear(&w);
  return -1;
}

static cJSON *fields_array(const struct webhook *w, bool with_sign)
{
  cJSON *arr = cJSON_CreateArray();

  if (!arr)
    return NULL;
  for (size_t i = 0; i < w->nfields; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      goto bad;
    }
    if (!cJSON_AddStringToObject(o, "key", w->fields[i].key) ||
        !jsonutil_add_string_or_null(o, "hint", w->fields[i].hint) ||
        (with_sign && !cJSON_AddBoolToObject(o, "useForSignature", w->fields[i].sign)))
      goto bad;
  }
  return arr;
bad:
  cJSON_Delete(arr);
  return NULL;
}

cJSON *webhook_to_json(const struct webhook *w, bool with_secret)
{
  char created[CLOCK_ISO_LEN + 1], updated[CLOCK_ISO_LEN + 1];
  cJSON *o = cJSON_CreateObject(), *fields;
  const char *secret = with_secret ? w->secret : (w->secret ? WEBHOOK_MASK : NULL);

  if (!o)
    return NULL;
  clock_iso8601(w->created_ms, created);
  clock_iso8601(w->updated_ms, updated);
  if (!cJSON_AddStringToObject(o, "id", w->id) ||
      !cJSON_AddStringToObject(o, "agent_id", w->agent_id) ||
      !jsonutil_add_string_or_null(o, "url", w->url) ||
      !jsonutil_add_string_or_null(o, "secret", secret) ||
      !jsonutil_add_string_or_null(o, "secret_header", w->secret_header))
    goto bad;
  fields = fields_array(w, true);
  if (!fields)
    goto bad;
  if (!cJSON_AddItemToObject(o, "custom_fields", fields)) {
    cJSON_Delete(fields);
    goto bad;
  }
  if (!cJSON_AddBoolToObject(o, "is_active", w->is_active) ||
      !cJSON_AddStringToObject(o, "created_at", created) ||
      !cJSON_AddStringToObject(o, "updated_at", updated))
    goto bad;
  return o;
bad:
  cJSON_Delete(o);
  return NULL;
}

static int parse_time(const cJSON *v, const char *name, int64_t *ms, char *err, size_t errsz)
{
  if (!cJSON_IsString(v) || clock_parse_iso8601(v->valuestring, ms) != 0)
    return fail(err, errsz, "%s must be an ISO 8601 UTC time", name);
  return 0;
}

int webhook_from_json(const cJSON *j, struct webhook *out, char *err, size_t errsz)
{
  struct webhook w = {0};
  const cJSON *v;

  memset(out, 0, sizeof *out);
  if (!cJSON_IsObject(j))
    return fail(err, errsz, "webhook must be a JSON object");
  v = jsonutil_get(j, "secret");
  if (cJSON_IsString(v) && v->valuestring && strcmp(v->valuestring, WEBHOOK_MASK) == 0)
    return fail(err, errsz, "secret is masked: this is the wire form, not the stored form");
  /* The store may hold an http:// URL admitted by an earlier --allow-http;
   * whether to deliver to it is decided at delivery time. */
  if (parse_uuid(jsonutil_get(j, "id"), "id", w.id, err, errsz) != 0 ||
      parse_uuid(jsonutil_get(j, "agent_id"), "agent_id", w.agent_id, err, errsz) != 0 ||
      parse_url(jsonutil_get(j, "url"), true, &w, err, errsz) != 0 ||
      parse_secret(v, &w, err, errsz) != 0 ||
      parse_header(jsonutil_get(j, "secret_header"), &w, err, errsz) != 0)
    goto bad;
  v = jsonutil_get(j, "custom_fields");
  if (v && !cJSON_IsNull(v) && parse_fields(v, &w, err, errsz) != 0)
    goto bad;
  v = jsonutil_get(j, "is_active");
  if (!cJSON_IsBool(v)) {
    fail(err, errsz, "is_active must be a boolean");
    goto bad;
  }
  w.is_active = cJSON_IsTrue(v);
  if (parse_time(jsonutil_get(j, "created_at"), "created_at", &w.created_ms, err, errsz) != 0 ||
      parse_time(jsonutil_get(j, "updated_at"), "updated_at", &w.updated_ms, err, errsz) != 0)
    goto bad;
  *out = w;
  return 0;
bad:
  webhook_clear(&w);
  return -1;
}

static char *dup_or_null(const char *s, bool *oom)
{
  char *d;

  if (!s)
    return NULL;
  d = strdup(s);
  if (!d)
    *oom = true;
  return d;
}

int webhook_copy(struct webhook *dst, const struct webhook *src)
{
  struct webhook w = *src;
  bool oom = false;

  w.url = dup_or_null(src->url, &oom);
  w.secret = dup_or_null(src->secret, &oom);
  w.secret_header = dup_or_null(src->secret_header, &oom);
  w.fields = NULL;
  w.nfields = 0;
  if (src->nfields) {
    w.fields = calloc(src->nfields, sizeof *w.fields);
    if (!w.fields) {
      oom = true;
    } else {
      w.nfields = src->nfields;
      for (size_t i = 0; i < src->nfields; i++) {
        w.fields[i].key = dup_or_null(src->fields[i].key, &oom);
        w.fields[i].hint = dup_or_null(src->fields[i].hint, &oom);
        w.fields[i].sign = src->fields[i].sign;
      }
    }
  }
  if (oom) {
    webhook_clear(&w);
    memset(dst, 0, sizeof *dst);
    return -1;
  }
  *dst = w;
  return 0;
}

void webhook_clear(struct webhook *w)
{
  if (!w)
    return;
  free(w->url);
  crypto_free_secret(w->secret);
  free(w->secret_header);
  fields_free(w->fields, w->nfields);
  memset(w, 0, sizeof *w);
}

cJSON *webhook_fields_json(const struct webhook *w)
{
  cJSON *o = cJSON_CreateObject();
  cJSON *arr = fields_array(w, false);

  if (!o || !arr || !cJSON_AddItemToObject(o, "fields", arr)) {
    cJSON_Delete(arr);
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}
