/* notify.h — the systemd service-manager protocol (sd_notify).
 *
 * Under `Type=notify` systemd waits for READY=1 before it considers hgd
 * started, kills and restarts it when WATCHDOG=1 pings stop for WatchdogSec,
 * and shows RELOADING=1 / STOPPING=1 in `systemctl status`. Outside systemd
 * ($NOTIFY_SOCKET unset) every call is a cheap no-op, as is a build without
 * libsystemd (HG_SYSTEMD=OFF). */
#ifndef HG_NOTIFY_H
#define HG_NOTIFY_H

#include <stdint.h>

/* READY=1 plus a STATUS= line; call when hgd is subscribed and serving. */
void notify_ready(const char *status);

/* RELOADING=1 before re-reading the keys and config on SIGHUP; READY=1
 * after it (notify_ready). */
void notify_reloading(void);

/* STOPPING=1 when shutdown begins. */
void notify_stopping(void);

/* STATUS=text only (shown by systemctl status). */
void notify_status(const char *status);

/* The interval between WATCHDOG=1 pings in ms (half of WATCHDOG_USEC), or 0
 * when the service manager asked for none. */
int64_t notify_watchdog_interval_ms(void);

/* WATCHDOG=1. */
void notify_watchdog(void);

#endif
