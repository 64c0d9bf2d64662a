/* test_egress.c — the SSRF guard: every refused class in both families, the
 * embedded-IPv4 forms, public addresses, and allow-list CIDRs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "egress.h"

/* Fills ss from an address literal of either family. */
static const struct sockaddr *sa_of(const char *ip, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof(*ss));
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(443);
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
      fail_msg("bad test address %s", ip);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(443);
    if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
      fail_msg("bad test address %s", ip);
  }
  return (const struct sockaddr *)ss;
}

static const struct {
  const char *ip;
  const char *cls; /* NULL: public */
} cases[] = {
    /* IPv4 */
    {"0.0.0.0", "unspecified"},
    {"0.1.2.3", "this-network"},
    {"10.0.0.1", "private"},
    {"10.255.255.255", "private"},
    {"100.64.0.1", "cgnat"},
    {"100.127.255.254", "cgnat"},
    {"100.128.0.1", NULL},
    {"127.0.0.1", "loopback"},
    {"127.255.255.254", "loopback"},
    {"169.254.169.254", "link-local"},
    {"169.254.0.1", "link-local"},
    {"172.16.0.1", "private"},
    {"172.31.255.255", "private"},
    {"172.32.0.1", NULL},
    {"172.15.255.255", NULL},
    {"192.0.0.8", "ietf-protocol"},
    {"192.0.2.1", "documentation"},
    {"192.88.99.1", "6to4-relay"},
    {"192.168.1.1", "private"},
    {"198.18.0.1", "benchmarking"},
    {"198.19.255.255", "benchmarking"},
    {"198.51.100.7", "documentation"},
    {"203.0.113.9", "documentation"},
    {"224.0.0.1", "multicast"},
    {"239.255.255.250", "multicast"},
    {"240.0.0.1", "reserved"},
    {"255.255.255.255", "broadcast"},
    {"8.8.8.8", NULL},
    {"1.1.1.1", NULL},
    {"93.184.216.34", NULL},
    {"223.255.255.255", NULL},
    /* IPv6 */
    {"::", "unspecified"},
    {"::1", "loopback"},
    {"fe80::1", "link-local"},
    {"febf:ffff::1", "link-local"},
    {"fec0::1", "site-local"},
    {"fc00::1", "unique-local"},
    {"fd12:3456:789a::1", "unique-local"},
    {"ff02::1", "multicast"},
    {"ff05::2", "multicast"},
    {"100::1", "discard"},
    {"2001:db8::1", "documentation"},
    {"3fff::1", "documentation"},
    {"2001::1", "teredo"},
    {"2001:2::1", "ietf-protocol"},
    {"4000::1", "reserved"},
    {"::2", "ipv4-compatible"},
    /* IPv4-mapped: judged by the embedded address */
    {"::ffff:127.0.0.1", "loopback"},
    {"::ffff:10.0.0.1", "private"},
    {"::ffff:169.254.169.254", "link-local"},
    {"::ffff:0.0.0.0", "unspecified"},
    {"::ffff:8.8.8.8", NULL},
    /* IPv4-compatible (deprecated) */
    {"::127.0.0.1", "loopback"},
    {"::10.0.0.1", "private"},
    {"::8.8.8.8", "ipv4-compatible"},
    /* NAT64 well-known prefix, and the local-use prefix */
    {"64:ff9b::a00:1", "private"},
    {"64:ff9b::7f00:1", "loopback"},
    {"64:ff9b::a9fe:a9fe", "link-local"},
    {"64:ff9b::808:808", NULL},
    {"64:ff9b:1::808:808", "nat64-local"},
    /* 6to4 */
    {"2002:7f00:1::", "loopback"},
    {"2002:a00:1::1", "private"},
    {"2002:a9fe:a9fe::1", "link-local"},
    {"2002:808:808::1", NULL},
    /* Every IPv4 class once more inside each embedding form, and the
     * boundaries of the less common blocks. */
    {"0.255.255.255", "this-network"},
    {"1.0.0.0", NULL},
    {"9.255.255.255", NULL},
    {"11.0.0.0", NULL},
    {"100.63.255.255", NULL},
    {"126.255.255.255", NULL},
    {"128.0.0.0", NULL},
    {"169.253.255.255", NULL},
    {"169.255.0.0", NULL},
    {"192.0.0.255", "ietf-protocol"},
    {"192.0.1.0", NULL},
    {"192.167.255.255", NULL},
    {"192.169.0.0", NULL},
    {"198.17.255.255", NULL},
    {"198.20.0.0", NULL},
    {"223.255.255.254", NULL},
    {"239.0.0.0", "multicast"},
    {"255.255.255.254", "reserved"},
    {"::ffff:100.64.0.1", "cgnat"},
    {"::ffff:172.16.0.1", "private"},
    {"::ffff:192.168.0.1", "private"},
    {"::ffff:0.1.2.3", "this-network"},
    {"::ffff:192.0.0.1", "ietf-protocol"},
    {"::ffff:198.18.0.1", "benchmarking"},
    {"::ffff:224.0.0.1", "multicast"},
    {"::ffff:240.0.0.1", "reserved"},
    {"::ffff:255.255.255.255", "broadcast"},
    {"::ffff:7f00:1", "loopback"}, /* the same address in hex groups */
    {"::ffff:0:7f00:1", "reserved"}, /* IPv4-translated (RFC 2765): not global */
    {"::169.254.169.254", "link-local"},
    {"::255.255.255.255", "broadcast"},
    {"::224.0.0.1", "multicast"},
    {"::100.64.0.1", "cgnat"},
    {"::0.0.0.2", "ipv4-compatible"},
    {"64:ff9b::", "unspecified"},
    {"64:ff9b::1.2.3.4", NULL},
    {"64:ff9b::0.1.2.3", "this-network"},
    {"64:ff9b::100.64.0.1", "cgnat"},
    {"64:ff9b::172.16.0.1", "private"},
    {"64:ff9b::192.168.1.1", "private"},
    {"64:ff9b::192.0.0.1", "ietf-protocol"},
    {"64:ff9b::198.18.0.1", "benchmarking"},
    {"64:ff9b::224.0.0.1", "multicast"},
    {"64:ff9b::240.0.0.1", "reserved"},
    {"64:ff9b::255.255.255.255", "broadcast"},
    {"64:ff9b:1::7f00:1", "nat64-local"},
    {"64:ff9b:1:ffff::1", "nat64-local"},
    {"64:ff9a::7f00:1", "reserved"}, /* outside 2000::/3 */
    {"2002::", "unspecified"},
    {"2002:0001:0203::", "this-network"},
    {"2002:6440:0001::1", "cgnat"},
    {"2002:ac10:0001::1", "private"},
    {"2002:c0a8:0101::1", "private"},
    {"2002:c000:0001::1", "ietf-protocol"},
    {"2002:c612:0001::1", "benchmarking"},
    {"2002:e000:0001::1", "multicast"},
    {"2002:f000:0001::1", "reserved"},
    {"2002:ffff:ffff::1", "broadcast"},
    {"2002:7f00:1:ffff:ffff:ffff:ffff:ffff", "loopback"},
    {"2003::1", NULL},
    {"2001:0:4136:e378::1", "teredo"},
    {"2001:1ff::1", "ietf-protocol"},
    {"fe80::a9fe:a9fe", "link-local"},
    {"fd00:ec2::254", "unique-local"}, /* the EC2 IPv6 metadata address */
    {"ff0e::1", "multicast"},
    {"::fffe:7f00:1", "reserved"},
    {"1::", "reserved"},
    {"1fff:ffff::1", "reserved"},
    {"4000::", "reserved"},
    {"e000::1", "reserved"},
    /* public IPv6 */
    {"2606:4700::1111", NULL},
    {"2001:4860:4860::8888", NULL},
    {"2a00:1450:4001:80b::200e", NULL},
    {"2001:200::1", NULL},
};

static void test_classes(void **state)
{
  struct sockaddr_storage ss;
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct sockaddr *sa = sa_of(cases[i].ip, &ss);
    const char *got = egress_blocked_class(sa);
    if (cases[i].cls == NULL && got != NULL)
      fail_msg("%s: expected public, got %s", cases[i].ip, got);
    if (cases[i].cls != NULL && (got == NULL || strcmp(got, cases[i].cls) != 0))
      fail_msg("%s: expected %s, got %s", cases[i].ip, cases[i].cls, got ? got : "public");
    /* Without an allow-list, permits is exactly "public". */
    assert_int_equal(egress_permits(NULL, sa), cases[i].cls == NULL);
  }
}

static void test_empty_guard(void **state)
{
  struct egress *g;
  struct sockaddr_storage ss;
  (void)state;
  assert_int_equal(egress_create(&g), 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_int_equal(egress_permits(g, sa_of(cases[i].ip, &ss)), cases[i].cls == NULL);
  egress_free(g);
}

static void test_other_family(void **state)
{
  struct sockaddr sa;
  (void)state;
  memset(&sa, 0, sizeof(sa));
  sa.sa_family = AF_UNIX;
  assert_non_null(egress_blocked_class(&sa));
  assert_false(egress_permits(NULL, &sa));
  assert_non_null(egress_blocked_class(NULL));
  assert_false(egress_permits(NULL, NULL));
}

static void test_allow_list(void **state)
{
  struct egress *g;
  struct sockaddr_storage ss;
  char err[128];
  (void)state;

  assert_int_equal(egress_create(&g), 0);
  assert_int_equal(egress_allow(g, "127.0.0.0/8", err, sizeof(err)), 0);
  assert_int_equal(egress_allow(g, "::1", err, sizeof(err)), 0);
  assert_int_equal(egress_allow(g, "10.1.2.3/32", err, sizeof(err)), 0);
  assert_int_equal(egress_allow(g, "fd00:1::/32", err, sizeof(err)), 0);
  assert_int_equal(egress_allow(g, "192.168.7.77/20", err, sizeof(err)), 0); /* host bits */

  assert_true(egress_permits(g, sa_of("127.0.0.1", &ss)));
  assert_true(egress_permits(g, sa_of("127.1.2.3", &ss)));
  assert_true(egress_permits(g, sa_of("::1", &ss)));
  assert_true(egress_permits(g, sa_of("::ffff:127.0.0.1", &ss))); /* same peer */
  assert_true(egress_permits(g, sa_of("10.1.2.3", &ss)));
  assert_false(egress_permits(g, sa_of("10.1.2.4", &ss)));
  assert_true(egress_permits(g, sa_of("fd00:1:ffff::5", &ss)));
  assert_false(egress_permits(g, sa_of("fd00:2::5", &ss)));
  assert_true(egress_permits(g, sa_of("192.168.0.1", &ss)));
  assert_true(egress_permits(g, sa_of("192.168.15.255", &ss)));
  assert_false(egress_permits(g, sa_of("192.168.16.0", &ss)));
  /* The allow-list does not change the class. */
  assert_string_equal(egress_blocked_class(sa_of("127.0.0.1", &ss)), "loopback");
  /* Still refused */
  assert_false(egress_permits(g, sa_of("169.254.169.254", &ss)));
  assert_false(egress_permits(g, sa_of("64:ff9b::7f00:1", &ss))); /* a translator, not us */
  assert_false(egress_permits(g, sa_of("::2", &ss)));
  /* Public still allowed */
  assert_true(egress_permits(g, sa_of("8.8.8.8", &ss)));
  assert_true(egress_permits(g, sa_of("2606:4700::1111", &ss)));
  egress_free(g);
}

static void test_allow_edges(void **state)
{
  struct egress *g;
  struct sockaddr_storage ss;
  char err[128];
  static const char *bad[] = {"", "127.0.0.1/33", "::1/129", "127.0.0.1/", "127.0.0.1/a",
                              "127.0.0.1/-1", "localhost", "1.2.3/8", "127.0.0.1/8/8",
                              "10.0.0.0/0008"};
  (void)state;

  assert_int_equal(egress_create(&g), 0);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    if (egress_allow(g, bad[i], err, sizeof(err)) != -1)
      fail_msg("accepted bad CIDR \"%s\"", bad[i]);
    assert_true(err[0] != '\0');
  }
  assert_false(egress_permits(g, sa_of("127.0.0.1", &ss)));

  /* /0 opens the whole family, and only it. */
  assert_int_equal(egress_allow(g, "0.0.0.0/0", err, sizeof(err)), 0);
  assert_true(egress_permits(g, sa_of("127.0.0.1", &ss)));
  assert_true(egress_permits(g, sa_of("169.254.169.254", &ss)));
  assert_false(egress_permits(g, sa_of("::1", &ss)));
  assert_int_equal(egress_allow(g, "fe80::/10", err, sizeof(err)), 0);
  assert_true(egress_permits(g, sa_of("fe80::1", &ss)));
  assert_false(egress_permits(g, sa_of("fc00::1", &ss)));
  /* Many entries grow the list. */
  for (int i = 0; i < 100; i++) {
    char c[32];
    snprintf(c, sizeof(c), "fd00:%x::/32", i);
    assert_int_equal(egress_allow(g, c, err, sizeof(err)), 0);
  }
  assert_true(egress_permits(g, sa_of("fd00:63::1", &ss)));
  assert_false(egress_permits(g, sa_of("fd00:64::1", &ss)));
  egress_free(g);
  egress_free(NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classes),     cmocka_unit_test(test_empty_guard),
      cmocka_unit_test(test_other_family), cmocka_unit_test(test_allow_list),
      cmocka_unit_test(test_allow_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
