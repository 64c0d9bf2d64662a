/* hgd.c — small helpers over the daemon's parts. */
#include "hgd.h"

#include <stdarg.h>
#include <stdio.h>

void hgd_topic(const struct hgd *app, char *out, size_t outsz, const char *fmt, ...)
{
  va_list ap;
  int n = snprintf(out, outsz, "%s/", app->cfg.topic_root);

  if(n < 0 || (size_t)n >= outsz)
    return;
  va_start(ap, fmt);
  vsnprintf(out + n, outsz - (size_t)n, fmt, ap);
  va_end(ap);
}
