/* jsonutil.c — bounded parsing of hostile JSON, compact printing, accessors. */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "jsonutil.h"

/* Every cJSON tree and printed text may hold a secret (an upsert request, a
 * store line, the keys file), and cJSON frees its strings and its print
 * buffers itself: give it a free that wipes the whole block first. With a
 * custom free cJSON also stops using realloc, which would drop old print
 * buffers unwiped. Installed before main, once, for every program linking
 * libhgcommon (hgd, hgctl, the tests). */
static void wiping_free(void *p)
{
  if (p)
    crypto_wipe(p, malloc_usable_size(p));
  free(p);
}

__attribute__((constructor)) static void jsonutil_install_hooks(void)
{
  cJSON_Hooks hooks = {malloc, wiping_free};
  cJSON_InitHooks(&hooks);
}

static void set_err(char *err, size_t errsz, const char *msg)
{
  if (err && errsz)
    snprintf(err, errsz, "%s", msg);
}

bool jsonutil_utf8_valid(const char *str, size_t len)
{
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;

  if (!s)
    return len == 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;

    if (c < 0x80) {
      i++;
      continue;
    }
    /* Table 3-7 of the Unicode standard: the second byte's range excludes
     * overlongs (E0, F0), surrogates (ED) and values past U+10FFFF (F4). */
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    } else {
      return false;
    }
    if (len - i - 1 < n)
      return false;
    if (s[i + 1] < lo || s[i + 1] > hi)
      return false;
    for (size_t k = 2; k <= n; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xbf)
        return false;
    i += n + 1;
  }
  return true;
}

/* Where prescan found a bad string, for the message: the property it is
 * the value of, an element of, or a property name. */
struct scanpos {
  char key[48];                        /* the latest property name, printable */
  bool obj[JSONUTIL_MAX_DEPTH + 1];    /* container at each depth is an object */
  unsigned char before;                /* structural character before the string */
};

static void scan_fail(const struct scanpos *p, int depth, const char *what, char *err,
                      size_t errsz)
{
  if (!err || !errsz)
    return;
  if (p->before == ':' && p->key[0])
    snprintf(err, errsz, "JSON string contains %s (in \"%s\")", what, p->key);
  else if ((p->before == '[' || (p->before == ',' && !p->obj[depth])) && p->key[0])
    snprintf(err, errsz, "JSON string contains %s (in an element of \"%s\")", what, p->key);
  else if (depth > 0 && p->obj[depth] && p->before != ':')
    snprintf(err, errsz, "JSON string contains %s (in a property name)", what);
  else
    snprintf(err, errsz, "JSON string contains %s", what);
}

static int hex4(const unsigned char *h)
{
  int v = 0;
  for (int k = 0; k < 4; k++) {
    int c = h[k], d = c >= '0' && c <= '9' ? c - '0'
                      : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* One pass before cJSON: nesting depth of containers outside strings, NUL
 * bytes, \u0000 escapes (cJSON would cut the string there silently) and
 * lone surrogate escapes (which no UTF-8 can carry); a bad string is named
 * by the property it belongs to. */
static int prescan(const unsigned char *s, size_t len, char *err, size_t errsz)
{
  struct scanpos p = {.before = 0};
  int depth = 0;
  bool in_str = false;
  size_t start = 0;

  for (size_t i = 0; i < len; i++) {
    unsigned char c = s[i];
    if (c == '\0') {
      set_err(err, errsz, "JSON contains a NUL byte");
      return -1;
    }
    if (in_str) {
      if (c < 0x20) {
        scan_fail(&p, depth, "a raw control character", err, errsz);
        return -1;
      }
      if (c == '\\') {
        int u = i + 5 < len && s[i + 1] == 'u' ? hex4(s + i + 2) : -1;
        if (u == 0) {
          scan_fail(&p, depth, "\\u0000", err, errsz);
          return -1;
        }
        if (u >= 0xD800 && u <= 0xDBFF) { /* must pair with a low surrogate */
          int lo = i + 11 < len && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s + i + 8) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF) {
            scan_fail(&p, depth, "a lone surrogate escape", err, errsz);
            return -1;
          }
          i += 11;
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
          scan_fail(&p, depth, "a lone surrogate escape", err, errsz);
          return -1;
        } else {
          i++; /* skip the escaped character (the digits are plain) */
        }
      } else if (c == '"') {
        in_str = false;
        size_t k = i + 1;
        while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
          k++;
        if (k < len && s[k] == ':') { /* it was a property name: remember it */
          size_t n = i - start < sizeof(p.key) - 1 ? i - start : sizeof(p.key) - 1;
          for (size_t m = 0; m < n; m++)
            p.key[m] = s[start + m] >= 0x20 && s[start + m] < 0x7f && s[start + m] != '"'
                           ? (char)s[start + m] : '?';
          p.key[n] = '\0';
        }
      }
      continue;
    }
    if (c == '"') {
      in_str = true;
      start = i + 1;
    } else if (c == '[' || c == '{') {
      if (++depth > JSONUTIL_MAX_DEPTH) {
        set_err(err, errsz, "JSON nested too deeply");
        return -1;
      }
      p.obj[depth] = c == '{';
      p.before = c;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
      p.before = c;
    } else if (c == ':' || c == ',') {
      p.before = c;
    }
  }
  return 0;
}

/* Numbers JSON cannot carry (1e999 parses to infinity) are refused rather
 * than printed back as null. */
static bool all_finite(const cJSON *item)
{
  for (; item; item = item->next) {
    if (cJSON_IsNumber(item) && !isfinite(item->valuedouble))
      return false;
    if (item->child && !all_finite(item->child))
      return false;
  }
  return true;
}

cJSON *jsonutil_parse(const void *buf, size_t len, size_t maxlen, char *err, size_t errsz)
{
  char *copy = NULL;
  const char *end = NULL;
  cJSON *root = NULL;

  if (!buf && len)
    len = 0;
  if (len > maxlen) {
    set_err(err, errsz, "JSON too large");
    return NULL;
  }
  if (len == 0) {
    set_err(err, errsz, "JSON is empty");
    return NULL;
  }
  if (prescan(buf, len, err, errsz) != 0)
    return NULL;
  if (!jsonutil_utf8_valid(buf, len)) {
    set_err(err, errsz, "JSON is not valid UTF-8");
    return NULL;
  }
  /* cJSON wants the terminating NUL inside the length it is given to
   * enforce "nothing after the value"; the input need not carry one. */
  copy = malloc(len + 1);
  if (!copy) {
    set_err(err, errsz, "out of memory");
    return NULL;
  }
  memcpy(copy, buf, len);
  copy[len] = '\0';
  root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
  if (!root) {
    char msg[64];
    size_t off = (end && end >= copy && end <= copy + len) ? (size_t)(end - copy) : 0;
    snprintf(msg, sizeof msg, "invalid JSON at byte %zu", off);
    set_err(err, errsz, msg);
    goto out;
  }
  if (!all_finite(root)) {
    set_err(err, errsz, "JSON number out of range");
    cJSON_Delete(root);
    root = NULL;
  }
out:
  if (copy) {
    crypto_wipe(copy, len + 1); /* a request or a keys file: secrets in clear */
    free(copy);
  }
  return root;
}

int jsonutil_exact_numbers(cJSON *item)
{
  for (; item; item = item->next) {
    if (cJSON_IsNumber(item)) {
      char text[32];
      double d = item->valuedouble;
      for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
          break;
      }
      char *raw = malloc(strlen(text) + 1);
      if (!raw)
        return -1;
      memcpy(raw, text, strlen(text) + 1);
      item->type = cJSON_Raw;
      item->valuestring = raw;
    }
    if (item->child && jsonutil_exact_numbers(item->child) != 0)
      return -1;
  }
  return 0;
}

char *jsonutil_print(const cJSON *item)
{
  if (!item)
    return NULL;
  return cJSON_PrintUnformatted((cJSON *)item);
}

cJSON *jsonutil_add_string_or_null(cJSON *obj, const char *key, const char *s)
{
  if (!obj || !key)
    return NULL;
  return s ? cJSON_AddStringToObject(obj, key, s) : cJSON_AddNullToObject(obj, key);
}

cJSON *jsonutil_get(const cJSON *obj, const char *key)
{
  if (!cJSON_IsObject(obj) || !key)
    return NULL;
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}
