/* render.c — terminal and JSON output, and the error lines (render.h). */
#include "render.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "hgctl.h"
#include "jsonutil.h"

void render_init(struct render *r, bool json_flag)
{
  r->out = stdout;
  r->json = json_flag || !isatty(STDOUT_FILENO);
}

/* U+200E/F, U+2028/9, U+202A..E and U+2066..9: the bidirectional controls
 * and line separators, which reorder or break what a terminal shows
 * ("Trojan Source"). As UTF-8: E2 80 8E/8F/A8..AE, E2 81 A6..A9. */
static bool is_bidi(const unsigned char *p)
{
  if (p[0] != 0xe2)
    return false;
  if (p[1] == 0x80)
    return p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae);
  return p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9;
}

/* Write s with C0 and C1 control characters, DEL and the bidirectional
 * controls escaped. s is UTF-8 (cJSON strings from jsonutil_parse are
 * checked), so a C1 control is the pair C2 80..9F. */
static void put_text(FILE *f, const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  for (; *p; p++) {
    if (is_bidi(p)) {
      fprintf(f, "\\u%04x", 0x2000 | ((p[1] & 0x3f) << 6) | (p[2] & 0x3f));
      p += 2;
      continue;
    }
    if (*p == '\n')
      fputs("\\n", f);
    else if (*p == '\t')
      fputs("\\t", f);
    else if (*p == '\r')
      fputs("\\r", f);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(f, "\\x%02x", *p);
    else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
      fprintf(f, "\\u%04x", p[1]);
      p++;
    } else
      fputc(*p, f);
  }
}

static void verror(const char *code, const char *fmt, va_list ap)
{
  char msg[2048];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  fflush(stdout);
  fprintf(stderr, "hgctl: %s: ", code);
  put_text(stderr, msg);
  fputc('\n', stderr);
}

void render_error(const char *code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  verror(code, fmt, ap);
  va_end(ap);
}

int render_usage(const char *topic, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  verror(HGCTL_CODE_USAGE, fmt, ap);
  va_end(ap);
  fprintf(stderr, "Try 'hgctl %s%s--help' for more information.\n", topic ? topic : "",
          topic ? " " : "");
  return HGCTL_EUSAGE;
}

static int print_json_line(const struct render *r, const cJSON *item)
{
  /* Numbers as hgd sent them, not cJSON's 15-digit rounding of them. */
  cJSON *exact = item ? cJSON_Duplicate(item, 1) : NULL;
  char *text = NULL;
  if (exact && jsonutil_exact_numbers(exact) == 0)
    text = jsonutil_print(exact);
  else if (!item)
    text = strdup("null");
  cJSON_Delete(exact);
  if (!text) {
    render_error(HGCTL_CODE_INTERNAL, "out of memory");
    return HGCTL_EDAEMON;
  }
  fputs(text, r->out);
  fputc('\n', r->out);
  free(text);
  return HGCTL_OK;
}

static void indent(FILE *f, int n)
{
  for (int i = 0; i < n; i++)
    fputc(' ', f);
}

static bool is_scalar(const cJSON *v)
{
  return !cJSON_IsObject(v) && !cJSON_IsArray(v);
}

static void put_scalar(FILE *f, const cJSON *v)
{
  if (cJSON_IsNull(v))
    fputs("(none)", f);
  else if (cJSON_IsTrue(v))
    fputs("true", f);
  else if (cJSON_IsFalse(v))
    fputs("false", f);
  else if (cJSON_IsString(v)) {
    if (v->valuestring[0] == '\0')
      fputs("\"\"", f);
    else
      put_text(f, v->valuestring);
  } else {
    char *t = jsonutil_print(v);
    fputs(t ? t : "?", f);
    free(t);
  }
}

static void put_object(FILE *f, const cJSON *obj, int ind, bool first_inline);

/* "key: value", or "key:" and the nested value on the lines below. */
static void put_member(FILE *f, const char *key, const cJSON *v, int ind, bool no_indent)
{
  if (!no_indent)
    indent(f, ind);
  put_text(f, key);
  fputc(':', f);
  if (is_scalar(v)) {
    fputc(' ', f);
    put_scalar(f, v);
    fputc('\n', f);
    return;
  }
  if (cJSON_GetArraySize(v) == 0) {
    fputs(cJSON_IsArray(v) ? " (none)\n" : " {}\n", f);
    return;
  }
  if (cJSON_IsObject(v)) {
    fputc('\n', f);
    put_object(f, v, ind + 2, false);
    return;
  }
  /* An array of scalars fits on one line; anything else is a list. */
  bool flat = true;
  const cJSON *it;
  cJSON_ArrayForEach(it, v) flat = flat && is_scalar(it);
  if (flat) {
    const char *sep = " ";
    cJSON_ArrayForEach(it, v)
    {
      fputs(sep, f);
      put_scalar(f, it);
      sep = ", ";
    }
    fputc('\n', f);
    return;
  }
  fputc('\n', f);
  cJSON_ArrayForEach(it, v)
  {
    indent(f, ind + 2);
    fputs("- ", f);
    if (cJSON_IsObject(it) && cJSON_GetArraySize(it) > 0)
      put_object(f, it, ind + 4, true);
    else if (is_scalar(it)) {
      put_scalar(f, it);
      fputc('\n', f);
    } else {
      char *t = jsonutil_print(it);
      put_text(f, t ? t : "?");
      fputc('\n', f);
      free(t);
    }
  }
}

static void put_object(FILE *f, const cJSON *obj, int ind, bool first_inline)
{
  const cJSON *m;
  bool first = true;
  cJSON_ArrayForEach(m, obj)
  {
    put_member(f, m->string ? m->string : "?", m, ind, first && first_inline);
    first = false;
  }
}

int render_data(const struct render *r, enum options_cmd cmd, const cJSON *data)
{
  if (r->json)
    return print_json_line(r, data);
  if (!data || cJSON_IsNull(data)) {
    fputs(cmd == OPTIONS_CMD_WEBHOOK_GET ? "no webhook\n" : "(none)\n", r->out);
    return HGCTL_OK;
  }
  if (cmd == OPTIONS_CMD_WEBHOOK_DELETE && cJSON_IsObject(data) &&
      cJSON_IsTrue(jsonutil_get(data, "success")) && cJSON_GetArraySize(data) == 1) {
    fputs("deleted (or there was no webhook)\n", r->out);
    return HGCTL_OK;
  }
  if (cJSON_IsObject(data))
    put_object(r->out, data, 0, false);
  else if (cJSON_IsArray(data))
    put_member(r->out, "items", data, 0, false);
  else {
    put_scalar(r->out, data);
    fputc('\n', r->out);
  }
  return HGCTL_OK;
}

/* "1d 2h 3m 4s", leading zero units left out. */
static void put_duration(FILE *f, int64_t ms)
{
  int64_t s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  if (d)
    fprintf(f, "%lldd ", (long long)d);
  if (d || h)
    fprintf(f, "%lldh ", (long long)h);
  if (d || h || m)
    fprintf(f, "%lldm ", (long long)m);
  fprintf(f, "%llds", (long long)(s % 60));
}

/* A status document as key: value lines, with the run's uptime (from
 * started_at to the document's timestamp) after the timestamp of an
 * online instance. */
static void put_status(FILE *f, const cJSON *doc)
{
  const cJSON *m, *on = jsonutil_get(doc, "online");
  const cJSON *start = jsonutil_get(doc, "started_at"), *now = jsonutil_get(doc, "timestamp");
  int64_t t0, t1;
  bool up = cJSON_IsTrue(on) && cJSON_IsString(start) && cJSON_IsString(now) &&
            clock_parse_iso8601(start->valuestring, &t0) == 0 &&
            clock_parse_iso8601(now->valuestring, &t1) == 0 && t1 >= t0;

  cJSON_ArrayForEach(m, doc)
  {
    put_member(f, m->string ? m->string : "?", m, 0, false);
    if (up && m == now) {
      fputs("uptime: ", f);
      put_duration(f, t1 - t0);
      fputc('\n', f);
    }
  }
}

int render_status_doc(const struct render *r, const char *topic, const cJSON *doc)
{
  if (r->json)
    return print_json_line(r, doc);
  fputs("# ", r->out);
  put_text(r->out, topic);
  fputc('\n', r->out);
  if (cJSON_IsObject(doc))
    put_status(r->out, doc);
  else {
    put_scalar(r->out, doc);
    fputc('\n', r->out);
  }
  fputc('\n', r->out);
  return HGCTL_OK;
}

int render_status(const struct render *r, const cJSON *docs, const char *filter)
{
  if (r->json)
    return print_json_line(r, docs);
  if (cJSON_GetArraySize(docs) == 0) {
    fputs("no hgd status found on ", r->out);
    put_text(r->out, filter);
    fputc('\n', r->out);
    return HGCTL_OK;
  }
  const cJSON *doc;
  bool first = true;
  cJSON_ArrayForEach(doc, docs)
  {
    if (!first)
      fputc('\n', r->out);
    first = false;
    if (cJSON_IsObject(doc))
      put_status(r->out, doc);
    else
      put_object(r->out, doc, 0, false);
  }
  return HGCTL_OK;
}

int render_escalated(const struct render *r, const char *event_id, const char *topic)
{
  if (r->json) {
    fprintf(r->out, "{\"eventId\":\"%s\"}\n", event_id);
    return HGCTL_OK;
  }
  fprintf(r->out, "eventId: %s\n", event_id);
  fputs("published: ", r->out);
  put_text(r->out, topic);
  fputc('\n', r->out);
  return HGCTL_OK;
}

int render_keygen(const struct render *r, const cJSON *entry)
{
  int rc = print_json_line(r, entry);
  if (rc == HGCTL_OK && isatty(STDOUT_FILENO))
    fputs("hgctl: add this entry to the \"keys\" array of hgd's keys file, then send hgd "
          "SIGHUP\n",
          stderr);
  return rc;
}

int render_finish(const struct render *r)
{
  if (fflush(r->out) != 0 || ferror(r->out)) {
    int e = errno;
    /* A reader that went away (hgctl ... | head) is not worth a message. */
    if (e != EPIPE)
      render_error(HGCTL_CODE_OUTPUT, "cannot write the output: %s", strerror(e));
    return HGCTL_EDAEMON;
  }
  return HGCTL_OK;
}
