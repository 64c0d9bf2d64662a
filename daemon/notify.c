/* notify.c — sd_notify(3) from libsystemd, or nothing without it. */
#include "notify.h"

#include <stdio.h>

#ifdef HG_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static void send_state(const char *state)
{
  /* unset_environment=0: a child (none today) could still talk to systemd;
   * every call re-reads $NOTIFY_SOCKET, so keeping it costs nothing. */
  sd_notify(0, state);
}

int64_t notify_watchdog_interval_ms(void)
{
  uint64_t usec = 0;
  /* > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID (if set) is us. */
  if(sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
    return 0;
  /* Ping at half the timeout, as sd_watchdog_enabled(3) recommends; never
   * more often than every 50 ms. */
  int64_t ms = (int64_t)(usec / 2000);
  return ms < 50 ? 50 : ms;
}
#else
static void send_state(const char *state) { (void)state; }

int64_t notify_watchdog_interval_ms(void) { return 0; }
#endif

void notify_ready(const char *status)
{
  char buf[512];
  snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%s", status ? status : "ready");
  send_state(buf);
}

void notify_reloading(void) { send_state("RELOADING=1\nSTATUS=reloading keys and configuration"); }

void notify_stopping(void) { send_state("STOPPING=1\nSTATUS=stopping"); }

void notify_status(const char *status)
{
  char buf[512];
  snprintf(buf, sizeof(buf), "STATUS=%s", status);
  send_state(buf);
}

void notify_watchdog(void) { send_state("WATCHDOG=1"); }
