/* retry.h — the pure rules of the delivery schedule (PROTOCOL.md section 4):
 * which outcomes are retried, the Retry-After header, backoff with jitter.
 * No I/O and no clock reads, so that tests can pin every case. */
#ifndef HG_RETRY_H
#define HG_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Retry-After is honoured up to this many seconds. */
#define RETRY_AFTER_MAX_S 3600

enum retry_verdict {
  RETRY_DELIVERED, /* 2xx */
  RETRY_AGAIN,     /* transient: retry while the schedule has a step */
  RETRY_FAIL,      /* permanent: fail at once */
};

/* Verdict for an HTTP status. 0 (no HTTP answer: network error, TLS error,
 * timeout) is RETRY_AGAIN, like 408, 425, 429 and 5xx; 2xx is delivered;
 * anything else, 1xx and 3xx included, fails at once. */
enum retry_verdict retry_classify_status(long status);

/* Parse a Retry-After value: delta-seconds or an HTTP-date (RFC 9110
 * section 10.2.3), surrounding white space allowed. now_s is the current
 * Unix time, used for the date form; a date in the past gives 0. Returns
 * 0 and the delay in seconds (capped at RETRY_AFTER_MAX_S) in *out, or -1
 * when the value is neither form. */
int retry_after_parse(const char *value, int64_t now_s, long *out);

/* seconds scaled by a factor in [0.8, 1.2] chosen by rnd (uniform over
 * uint32_t gives a uniform jitter), in milliseconds, never negative. */
int64_t retry_jitter_ms(double seconds, uint32_t rnd);

/* Delay before the next attempt after `attempts` attempts have been made
 * (1 after the first), or -1 when the schedule is exhausted and the
 * delivery has failed. retry_after_s >= 0 (a Retry-After the receiver sent)
 * replaces the scheduled step: the receiver knows best when it will be
 * ready, and a small configured schedule must not make hgd wait longer than
 * asked, nor a large Retry-After beyond one hour. It still uses up a step.
 * Otherwise the step gets ±20 % jitter from rnd. */
int64_t retry_next_delay_ms(const double *schedule, size_t nschedule, int attempts,
                            long retry_after_s, uint32_t rnd);

#endif
