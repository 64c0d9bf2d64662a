/* test_log.c — log_value: bare tokens stay, everything else is quoted so
 * that no value can add a key or a line (docs/OPERATIONS.md, "Logs"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "log.h"

static void test_bare(void **state)
{
  char buf[64];
  (void)state;
  assert_string_equal(log_value("abc-1.2_x:/@+", buf, sizeof(buf)), "abc-1.2_x:/@+");
  assert_string_equal(log_value("3fa85f64-5717-4562-b3fc-2c963f66afa6", buf, sizeof(buf)),
                      "3fa85f64-5717-4562-b3fc-2c963f66afa6");
}

static void test_quoted(void **state)
{
  char buf[128];
  (void)state;
  assert_string_equal(log_value("", buf, sizeof(buf)), "\"\"");
  assert_string_equal(log_value(NULL, buf, sizeof(buf)), "\"\"");
  assert_string_equal(log_value("a b", buf, sizeof(buf)), "\"a b\"");
  assert_string_equal(log_value("k=v", buf, sizeof(buf)), "\"k=v\"");
  assert_string_equal(log_value("x\" event=forged", buf, sizeof(buf)), "\"x\\\" event=forged\"");
  assert_string_equal(log_value("back\\slash", buf, sizeof(buf)), "\"back\\\\slash\"");
  assert_string_equal(log_value("l1\nl2\tt\r\x1b", buf, sizeof(buf)),
                      "\"l1\\nl2\\tt\\x0d\\x1b\"");
  assert_string_equal(log_value("caf\xc3\xa9", buf, sizeof(buf)), "\"caf\xc3\xa9\"");
}

static void test_cut_short_stays_quoted(void **state)
{
  char buf[16], big[200];
  (void)state;
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  const char *v = log_value(big, buf, sizeof(buf));
  assert_true(strlen(v) < sizeof(buf));
  assert_int_equal(v[0], '"');
  assert_int_equal(v[strlen(v) - 1], '"');
  assert_non_null(strstr(v, "...\""));
  /* an escape is never split */
  memset(big, '"', 50);
  v = log_value(big, buf, sizeof(buf));
  assert_int_equal(v[strlen(v) - 1], '"');
  assert_null(strstr(v, "\\..."));
  assert_string_equal(log_value("x", buf, 4), "");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bare),
      cmocka_unit_test(test_quoted),
      cmocka_unit_test(test_cut_short_stays_quoted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
