/* test_retry.c — the delivery schedule rules: status verdicts, Retry-After,
 * jitter bounds and the next-delay decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "retry.h"

static void test_classify(void **state)
{
  (void)state;
  assert_int_equal(retry_classify_status(0), RETRY_AGAIN);
  for (long s = 200; s <= 299; s++)
    assert_int_equal(retry_classify_status(s), RETRY_DELIVERED);
  for (long s = 500; s <= 599; s++)
    assert_int_equal(retry_classify_status(s), RETRY_AGAIN);
  assert_int_equal(retry_classify_status(408), RETRY_AGAIN);
  assert_int_equal(retry_classify_status(425), RETRY_AGAIN);
  assert_int_equal(retry_classify_status(429), RETRY_AGAIN);
  static const long fail[] = {100, 101, 199, 300, 301, 302, 303, 304, 307, 308, 400, 401,
                              403, 404, 405, 409, 410, 413, 415, 422, 426, 431, 451, 600, 999};
  for (size_t i = 0; i < sizeof(fail) / sizeof(fail[0]); i++)
    assert_int_equal(retry_classify_status(fail[i]), RETRY_FAIL);
}

static void test_retry_after_delta(void **state)
{
  long v = -7;
  (void)state;
  assert_int_equal(retry_after_parse("1", 0, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(retry_after_parse("  120 \r\n", 0, &v), 0);
  assert_int_equal(v, 120);
  assert_int_equal(retry_after_parse("0", 0, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(retry_after_parse("3600", 0, &v), 0);
  assert_int_equal(v, 3600);
  assert_int_equal(retry_after_parse("3601", 0, &v), 0);
  assert_int_equal(v, RETRY_AFTER_MAX_S);
  assert_int_equal(retry_after_parse("99999999999999999999999999", 0, &v), 0);
  assert_int_equal(v, RETRY_AFTER_MAX_S);

  static const char *bad[] = {"", "   ", "-1", "1.5", "+3", "12abc", "abc", "1 2", "0x10",
                              NULL};
  for (size_t i = 0; bad[i]; i++) {
    v = -7;
    if (retry_after_parse(bad[i], 0, &v) != -1)
      fail_msg("accepted \"%s\" as %ld", bad[i], v);
  }
  assert_int_equal(retry_after_parse(NULL, 0, &v), -1);
}

static void test_retry_after_date(void **state)
{
  /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
  const int64_t t = 784111777;
  long v = -7;
  (void)state;
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", t - 30, &v), 0);
  assert_int_equal(v, 30);
  /* RFC 850 and asctime forms are obsolete but valid HTTP-dates. */
  assert_int_equal(retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", t - 5, &v), 0);
  assert_int_equal(v, 5);
  assert_int_equal(retry_after_parse("Sun Nov  6 08:49:37 1994", t - 2, &v), 0);
  assert_int_equal(v, 2);
  /* Past: now. */
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", t + 100, &v), 0);
  assert_int_equal(v, 0);
  /* Far future: capped. */
  assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", t - 86400, &v), 0);
  assert_int_equal(v, RETRY_AFTER_MAX_S);
  assert_int_equal(retry_after_parse("Blursday, 99 Foo 1994 08:49:37 GMT", t, &v), -1);
}

static void test_jitter(void **state)
{
  (void)state;
  assert_int_equal(retry_jitter_ms(5, 0), 4000);
  assert_int_equal(retry_jitter_ms(5, UINT32_MAX), 6000);
  assert_int_equal(retry_jitter_ms(5, UINT32_MAX / 2), 5000);
  assert_int_equal(retry_jitter_ms(0, 12345), 0);
  assert_int_equal(retry_jitter_ms(-1, 12345), 0);
  assert_int_equal(retry_jitter_ms(0.05, 0), 40);
  /* A spread of random values stays inside ±20 % and covers the range. */
  int64_t lo = INT64_MAX, hi = 0;
  uint32_t r = 2463534242u;
  for (int i = 0; i < 100000; i++) {
    r ^= r << 13;
    r ^= r >> 17;
    r ^= r << 5;
    int64_t ms = retry_jitter_ms(30, r);
    assert_true(ms >= 24000 && ms <= 36000);
    if (ms < lo)
      lo = ms;
    if (ms > hi)
      hi = ms;
  }
  assert_true(lo < 24300);
  assert_true(hi > 35700);
  /* Large steps do not overflow. */
  assert_true(retry_jitter_ms(4 * 3600, UINT32_MAX) == 4 * 3600 * 1200);
}

static void test_next_delay(void **state)
{
  static const double sched[] = {5, 30, 120};
  (void)state;
  /* After attempt 1 comes step 0, ..., after attempt 3 step 2, then failed. */
  int64_t d = retry_next_delay_ms(sched, 3, 1, -1, 0);
  assert_int_equal(d, 4000);
  d = retry_next_delay_ms(sched, 3, 2, -1, UINT32_MAX);
  assert_int_equal(d, 36000);
  d = retry_next_delay_ms(sched, 3, 3, -1, UINT32_MAX / 2);
  assert_int_equal(d, 120000);
  assert_int_equal(retry_next_delay_ms(sched, 3, 4, -1, 0), -1);
  assert_int_equal(retry_next_delay_ms(sched, 3, 0, -1, 0), -1);
  assert_int_equal(retry_next_delay_ms(NULL, 0, 1, -1, 0), -1);
  /* Retry-After replaces the step, exactly, capped at an hour... */
  assert_int_equal(retry_next_delay_ms(sched, 3, 1, 1, 0), 1000);
  assert_int_equal(retry_next_delay_ms(sched, 3, 2, 0, 0), 0);
  assert_int_equal(retry_next_delay_ms(sched, 3, 1, 7200, 0), 3600000);
  /* ...but does not add attempts. */
  assert_int_equal(retry_next_delay_ms(sched, 3, 4, 1, 0), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),       cmocka_unit_test(test_retry_after_delta),
      cmocka_unit_test(test_retry_after_date), cmocka_unit_test(test_jitter),
      cmocka_unit_test(test_next_delay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
