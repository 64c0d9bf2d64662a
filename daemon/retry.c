/* retry.c — see retry.h. */
#include "retry.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include <curl/curl.h>

enum retry_verdict retry_classify_status(long status)
{
  if (status == 0)
    return RETRY_AGAIN;
  if (status >= 200 && status <= 299)
    return RETRY_DELIVERED;
  if (status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599))
    return RETRY_AGAIN;
  return RETRY_FAIL;
}

int retry_after_parse(const char *value, int64_t now_s, long *out)
{
  char buf[64];
  size_t len;
  const char *p;
  bool digits = true, alpha = false;

  if (!value)
    return -1;
  while (*value == ' ' || *value == '\t')
    value++;
  len = strlen(value);
  while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                 value[len - 1] == '\n'))
    len--;
  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, value, len);
  buf[len] = '\0';

  for (p = buf; *p; p++) {
    if (!isdigit((unsigned char)*p))
      digits = false;
    if (isalpha((unsigned char)*p))
      alpha = true;
  }
  if (digits) {
    long v = 0;
    for (p = buf; *p; p++) {
      v = v * 10 + (*p - '0');
      if (v > RETRY_AFTER_MAX_S) {
        v = RETRY_AFTER_MAX_S; /* saturate: a huge number is still "long" */
        break;
      }
    }
    *out = v;
    return 0;
  }
  /* An HTTP-date always names a weekday and a month. */
  if (!alpha)
    return -1;
  {
    time_t t = curl_getdate(buf, NULL);
    int64_t d;
    if (t == (time_t)-1)
      return -1;
    d = (int64_t)t - now_s;
    if (d < 0)
      d = 0;
    if (d > RETRY_AFTER_MAX_S)
      d = RETRY_AFTER_MAX_S;
    *out = (long)d;
  }
  return 0;
}

int64_t retry_jitter_ms(double seconds, uint32_t rnd)
{
  double f, ms;

  if (!(seconds > 0)) /* also NaN */
    return 0;
  f = 0.8 + 0.4 * ((double)rnd / (double)UINT32_MAX);
  ms = seconds * 1000.0 * f;
  if (ms > 9.0e15)
    ms = 9.0e15;
  return (int64_t)llround(ms);
}

int64_t retry_next_delay_ms(const double *schedule, size_t nschedule, int attempts,
                            long retry_after_s, uint32_t rnd)
{
  if (attempts < 1 || (size_t)attempts > nschedule)
    return -1;
  if (retry_after_s >= 0)
    return (int64_t)(retry_after_s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : retry_after_s) * 1000;
  return retry_jitter_ms(schedule[attempts - 1], rnd);
}
