/* clock.c — wall-clock and monotonic time, ISO 8601 UTC with milliseconds. */
#include <string.h>
#include <time.h>

#include "clock.h"

int64_t clock_now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec clock_mono_timespec(int64_t mono_ms)
{
  struct timespec ts = {(time_t)(mono_ms / 1000), (long)(mono_ms % 1000) * 1000000L};
  return ts;
}

/* The wire form has a four-digit year: keep inside 0000-01-01..9999-12-31. */
#define CLOCK_MIN_MS (-62167219200000LL)
#define CLOCK_MAX_MS (253402300799999LL)

static void put_digits(char *p, int v, int n)
{
  while (n-- > 0) {
    p[n] = (char)('0' + v % 10);
    v /= 10;
  }
}

void clock_iso8601(int64_t epoch_ms, char out[CLOCK_ISO_LEN + 1])
{
  struct tm tm;
  time_t secs;
  int ms;

  if (epoch_ms < CLOCK_MIN_MS)
    epoch_ms = CLOCK_MIN_MS;
  if (epoch_ms > CLOCK_MAX_MS)
    epoch_ms = CLOCK_MAX_MS;
  /* Floor division so that times before 1970 keep a positive millisecond. */
  secs = (time_t)(epoch_ms / 1000);
  ms = (int)(epoch_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  if (!gmtime_r(&secs, &tm)) {
    memcpy(out, "1970-01-01T00:00:00.000Z", CLOCK_ISO_LEN + 1);
    return;
  }
  memcpy(out, "0000-00-00T00:00:00.000Z", CLOCK_ISO_LEN + 1);
  put_digits(out, tm.tm_year + 1900, 4);
  put_digits(out + 5, tm.tm_mon + 1, 2);
  put_digits(out + 8, tm.tm_mday, 2);
  put_digits(out + 11, tm.tm_hour, 2);
  put_digits(out + 14, tm.tm_min, 2);
  put_digits(out + 17, tm.tm_sec, 2);
  put_digits(out + 20, ms, 3);
}

static int get_digits(const char *p, int n, int *v)
{
  *v = 0;
  for (int i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    *v = *v * 10 + (p[i] - '0');
  }
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int clock_parse_iso8601(const char *s, int64_t *epoch_ms)
{
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h, mi, sec, ms, dim;

  if (!s || strlen(s) != CLOCK_ISO_LEN)
    return -1;
  if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' ||
      s[23] != 'Z')
    return -1;
  if (get_digits(s, 4, &y) || get_digits(s + 5, 2, &mo) || get_digits(s + 8, 2, &d) ||
      get_digits(s + 11, 2, &h) || get_digits(s + 14, 2, &mi) || get_digits(s + 17, 2, &sec) ||
      get_digits(s + 20, 3, &ms))
    return -1;
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
    return -1;
  dim = mdays[mo - 1];
  if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    dim = 29;
  if (d < 1 || d > dim)
    return -1;
  int64_t days = days_from_civil(y, mo, d);
  *epoch_ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
  return 0;
}
