/* log.h — one line per event on stderr, in a stable key=value form:
 *   level=info event=delivery.ok agent=… eventId=… attempt=1 status=200 latency_ms=12
 * journald adds timestamps under systemd. Never pass a secret here. */
#ifndef HG_LOG_H
#define HG_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug". Returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);

/* fmt is printf-style and should produce further key=value pairs (may be "").
 * A value that may hold a blank, a quote, '=' or anything from the network
 * goes through log_value(). */
void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* value as a log value: unchanged when it is a bare token (printable ASCII,
 * no blank, '"', '\\' or '='), else double-quoted with \" \\ \n \t \xNN
 * escapes, so that no input can add a key or a line. Writes into buf
 * (always terminated, cut short with "..." inside the quotes) and returns it. */
const char *log_value(const char *value, char *buf, size_t bufsz);

#endif
