/* log.c — key=value event lines on stderr.
 *
 * One fprintf per line under stdio's own stream lock, so lines from the
 * Paho, delivery and main threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static _Atomic int current_level = LOG_LVL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level lvl) { atomic_store(&current_level, (int)lvl); }

enum log_level log_get_level(void) { return (enum log_level)atomic_load(&current_level); }

int log_parse_level(const char *s, enum log_level *out)
{
  for(size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if(strcmp(s, level_names[i]) == 0) {
      *out = (enum log_level)i;
      return 0;
    }
  }
  if(strcmp(s, "warning") == 0) {
    *out = LOG_LVL_WARN;
    return 0;
  }
  return -1;
}

static bool bare_token(const char *s)
{
  if(!*s)
    return false;
  for(; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if(c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=')
      return false;
  }
  return true;
}

const char *log_value(const char *value, char *buf, size_t bufsz)
{
  static const char hex[] = "0123456789abcdef";
  const char *s = value ? value : "";
  size_t o = 0;

  if(bufsz < 8) {
    if(bufsz)
      buf[0] = '\0';
    return buf;
  }
  if(bare_token(s) && strlen(s) < bufsz) {
    memcpy(buf, s, strlen(s) + 1);
    return buf;
  }
  buf[o++] = '"';
  for(; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[5];
    size_t n = 0;
    if(c == '"' || c == '\\') {
      esc[n++] = '\\';
      esc[n++] = (char)c;
    } else if(c == '\n' || c == '\t') {
      esc[n++] = '\\';
      esc[n++] = c == '\n' ? 'n' : 't';
    } else if(c < 0x20 || c == 0x7f) {
      esc[n++] = '\\';
      esc[n++] = 'x';
      esc[n++] = hex[c >> 4];
      esc[n++] = hex[c & 15];
    } else {
      esc[n++] = (char)c;
    }
    if(o + n + 5 > bufsz) { /* room for ...", NUL */
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    memcpy(buf + o, esc, n);
    o += n;
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
  char rest[1024];
  va_list ap;

  if((int)lvl > atomic_load(&current_level))
    return;
  va_start(ap, fmt);
  vsnprintf(rest, sizeof(rest), fmt, ap);
  va_end(ap);
  /* Control characters could forge extra lines in journald: flatten them. */
  for(char *p = rest; *p; p++) {
    if((unsigned char)*p < 0x20)
      *p = ' ';
  }
  fprintf(stderr, "level=%s event=%s%s%s\n", level_names[lvl], event, rest[0] ? " " : "", rest);
}
