/* test_delivery.c — pure helpers of the delivery engine: the UTF-8 excerpt
 * of a test reply's body and the per-host key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "delivery.h"

static void check_excerpt(const char *in, size_t len, size_t max, const char *want)
{
  char *got = delivery_text_excerpt(in, len, max);
  assert_non_null(got);
  if (strcmp(got, want) != 0)
    fail_msg("excerpt of %zu bytes (max %zu): got \"%s\", want \"%s\"", len, max, got, want);
  free(got);
}

#define R "\xef\xbf\xbd" /* U+FFFD */

static void test_excerpt(void **state)
{
  (void)state;
  check_excerpt("ok", 2, 4096, "ok");
  check_excerpt("", 0, 4096, "");
  check_excerpt("hello", 5, 3, "hel");
  /* Valid multi-byte text passes whole. */
  check_excerpt("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, 4096,
                "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  /* A sequence split by the limit is dropped, not replaced. */
  check_excerpt("ab\xe2\x82\xac", 5, 4, "ab");
  check_excerpt("ab\xe2\x82\xac", 5, 3, "ab");
  check_excerpt("ab\xf0\x9f\x98\x80", 6, 5, "ab");
  /* A sequence cut by the end of the input is invalid. */
  check_excerpt("ab\xe2\x82", 4, 4096, "ab" R R);
  /* Invalid bytes, overlongs, surrogates, NUL. */
  check_excerpt("a\xff" "b", 3, 4096, "a" R "b");
  check_excerpt("a\xc0\xaf" "b", 4, 4096, "a" R R "b");
  check_excerpt("a\xed\xa0\x80" "b", 5, 4096, "a" R R R "b");
  check_excerpt("a\xf4\x90\x80\x80", 5, 4096, "a" R R R R);
  check_excerpt("a\0b", 3, 4096, "a" R "b");
  check_excerpt("\x80\x80", 2, 4096, R R);
  /* Only the first max bytes are read. */
  {
    char big[10000];
    memset(big, 'x', sizeof(big));
    char *got = delivery_text_excerpt(big, sizeof(big), DELIVERY_TEST_BODY_MAX);
    assert_non_null(got);
    assert_int_equal(strlen(got), DELIVERY_TEST_BODY_MAX);
    free(got);
  }
}

static void test_host_key(void **state)
{
  char k[64];
  (void)state;
  assert_int_equal(delivery_host_key("https://Example.COM/hook?x=1", k, sizeof(k)), 0);
  assert_string_equal(k, "https://example.com");
  assert_int_equal(delivery_host_key("https://example.com:8443", k, sizeof(k)), 0);
  assert_string_equal(k, "https://example.com:8443");
  assert_int_equal(delivery_host_key("http://[::1]:8080/a#b", k, sizeof(k)), 0);
  assert_string_equal(k, "http://[::1]:8080");
  assert_int_equal(delivery_host_key("https://h?q", k, sizeof(k)), 0);
  assert_string_equal(k, "https://h");
  assert_int_equal(delivery_host_key("https://a-very-long-host-name.example.com/", k, 10), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_excerpt),
      cmocka_unit_test(test_host_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
