/* clock.h — wall-clock and monotonic time, and the ISO 8601 form of the wire. */
#ifndef HG_CLOCK_H
#define HG_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CLOCK_ISO_LEN 24 /* "2026-12-03T18:00:00.000Z" without the NUL */

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_now_ms(void);

/* Milliseconds of CLOCK_MONOTONIC, for timeouts and latency. */
int64_t clock_mono_ms(void);

/* The instant mono_ms (on clock_mono_ms's scale) as a timespec, for
 * pthread_cond_timedwait on a condvar set to CLOCK_MONOTONIC. */
struct timespec clock_mono_timespec(int64_t mono_ms);

/* ISO 8601 UTC with milliseconds: "2026-12-03T18:00:00.000Z". */
void clock_iso8601(int64_t epoch_ms, char out[CLOCK_ISO_LEN + 1]);

/* Parse the form above back. Returns 0 or -1. */
int clock_parse_iso8601(const char *s, int64_t *epoch_ms);

#endif
