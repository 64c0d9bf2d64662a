/* egress.c — the SSRF guard.
 *
 * IPv4 classes follow the IANA IPv4 Special-Purpose Address Registry
 * (RFC 6890 and successors). For IPv6 only 2000::/3 is global unicast;
 * everything outside it is named by its class and refused, except the
 * forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64
 * well-known prefix, 6to4), which are judged by the embedded address. */
#include "egress.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct egress_net {
  int family; /* AF_INET or AF_INET6 */
  uint8_t addr[16];
  unsigned prefix;
};

struct egress {
  struct egress_net *nets;
  size_t n, cap;
};

int egress_create(struct egress **out)
{
  struct egress *g = calloc(1, sizeof(*g));
  if (!g)
    return -1;
  *out = g;
  return 0;
}

void egress_free(struct egress *g)
{
  if (!g)
    return;
  free(g->nets);
  free(g);
}

static void mask_prefix(uint8_t *a, size_t len, unsigned prefix)
{
  for (size_t i = 0; i < len; i++) {
    unsigned bits = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;
    if (bits >= 8)
      continue;
    a[i] &= (uint8_t)(0xff00u >> bits);
  }
}

int egress_allow(struct egress *g, const char *cidr, char *err, size_t errsz)
{
  char buf[INET6_ADDRSTRLEN + 8];
  struct egress_net net = {0};
  size_t alen;
  char *slash;

  if (!cidr || !*cidr || strlen(cidr) >= sizeof(buf)) {
    snprintf(err, errsz, "invalid CIDR \"%.64s\"", cidr ? cidr : "");
    return -1;
  }
  strcpy(buf, cidr);
  slash = strchr(buf, '/');
  if (slash)
    *slash = '\0';
  if (inet_pton(AF_INET, buf, net.addr) == 1) {
    net.family = AF_INET;
    alen = 4;
  } else if (inet_pton(AF_INET6, buf, net.addr) == 1) {
    net.family = AF_INET6;
    alen = 16;
  } else {
    snprintf(err, errsz, "invalid CIDR \"%.64s\": not an IP address", cidr);
    return -1;
  }
  net.prefix = (unsigned)alen * 8;
  if (slash) {
    const char *p = slash + 1;
    unsigned v = 0;
    if (!*p || strlen(p) > 3) {
      snprintf(err, errsz, "invalid CIDR \"%.64s\": bad prefix length", cidr);
      return -1;
    }
    for (; *p; p++) {
      if (*p < '0' || *p > '9') {
        snprintf(err, errsz, "invalid CIDR \"%.64s\": bad prefix length", cidr);
        return -1;
      }
      v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > alen * 8) {
      snprintf(err, errsz, "invalid CIDR \"%.64s\": prefix length over %zu", cidr, alen * 8);
      return -1;
    }
    net.prefix = v;
  }
  /* Host bits are ignored ("127.0.0.1/8" means 127.0.0.0/8). */
  mask_prefix(net.addr, alen, net.prefix);

  if (g->n == g->cap) {
    size_t ncap = g->cap ? g->cap * 2 : 4;
    struct egress_net *nn = realloc(g->nets, ncap * sizeof(*nn));
    if (!nn) {
      snprintf(err, errsz, "out of memory");
      return -1;
    }
    g->nets = nn;
    g->cap = ncap;
  }
  g->nets[g->n++] = net;
  return 0;
}

static const char *v4_class(const uint8_t a[4])
{
  uint32_t x = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
  static const struct {
    uint32_t net, mask;
    const char *name;
  } tab[] = {
      {0x00000000u, 0xffffffffu, "unspecified"},    /* 0.0.0.0/32 */
      {0x00000000u, 0xff000000u, "this-network"},   /* 0.0.0.0/8 */
      {0x0a000000u, 0xff000000u, "private"},        /* 10.0.0.0/8 */
      {0x64400000u, 0xffc00000u, "cgnat"},          /* 100.64.0.0/10 */
      {0x7f000000u, 0xff000000u, "loopback"},       /* 127.0.0.0/8 */
      {0xa9fe0000u, 0xffff0000u, "link-local"},     /* 169.254.0.0/16, metadata */
      {0xac100000u, 0xfff00000u, "private"},        /* 172.16.0.0/12 */
      {0xc0000000u, 0xffffff00u, "ietf-protocol"},  /* 192.0.0.0/24 */
      {0xc0000200u, 0xffffff00u, "documentation"},  /* 192.0.2.0/24 */
      {0xc0586300u, 0xffffff00u, "6to4-relay"},     /* 192.88.99.0/24 */
      {0xc0a80000u, 0xffff0000u, "private"},        /* 192.168.0.0/16 */
      {0xc6120000u, 0xfffe0000u, "benchmarking"},   /* 198.18.0.0/15 */
      {0xc6336400u, 0xffffff00u, "documentation"},  /* 198.51.100.0/24 */
      {0xcb007100u, 0xffffff00u, "documentation"},  /* 203.0.113.0/24 */
      {0xe0000000u, 0xf0000000u, "multicast"},      /* 224.0.0.0/4 */
      {0xffffffffu, 0xffffffffu, "broadcast"},      /* 255.255.255.255 */
      {0xf0000000u, 0xf0000000u, "reserved"},       /* 240.0.0.0/4 */
  };
  for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
    if ((x & tab[i].mask) == tab[i].net)
      return tab[i].name;
  return NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

static const char *v6_class(const uint8_t a[16])
{
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  const char *c;

  if (all_zero(a, 15))
    return a[15] == 0 ? "unspecified" : a[15] == 1 ? "loopback" : "ipv4-compatible";
  if (memcmp(a, mapped, 12) == 0)
    return v4_class(a + 12); /* the kernel connects to the IPv4 address itself */
  if (all_zero(a, 12)) {
    /* IPv4-compatible ::a.b.c.d, deprecated (RFC 4291): never a real peer. */
    c = v4_class(a + 12);
    return c ? c : "ipv4-compatible";
  }
  if (memcmp(a, nat64, 12) == 0)
    return v4_class(a + 12); /* a NAT64 gateway reaches the embedded address */
  if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0x00 && a[5] == 0x01)
    return "nat64-local"; /* 64:ff9b:1::/48, local translators, layout unknown */
  if ((a[0] & 0xe0) != 0x20) {
    /* Outside 2000::/3: nothing here is global unicast. */
    if (a[0] == 0xff)
      return "multicast";
    if ((a[0] & 0xfe) == 0xfc)
      return "unique-local";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
      return "link-local";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
      return "site-local";
    if (a[0] == 0x01 && a[1] == 0x00 && all_zero(a + 2, 6))
      return "discard"; /* 100::/64 */
    return "reserved";
  }
  if (a[0] == 0x20 && a[1] == 0x02) {
    /* 6to4: the relay forwards to the IPv4 address in bits 16..47. */
    return v4_class(a + 2);
  }
  if (a[0] == 0x20 && a[1] == 0x01) {
    if (a[2] == 0x00 && a[3] == 0x00)
      return "teredo"; /* 2001::/32 */
    if (a[2] == 0x0d && a[3] == 0xb8)
      return "documentation"; /* 2001:db8::/32 */
    if ((a[2] & 0xfe) == 0x00)
      return "ietf-protocol"; /* 2001::/23 */
  }
  if (a[0] == 0x3f && (a[1] & 0xf0) == 0xf0)
    return "documentation"; /* 3fff::/20 */
  return NULL;
}

const char *egress_blocked_class(const struct sockaddr *sa)
{
  if (!sa)
    return "invalid";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    return v4_class((const uint8_t *)&s4->sin_addr);
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    return v6_class(s6->sin6_addr.s6_addr);
  }
  return "unsupported-family";
}

static bool net_contains(const struct egress_net *n, int family, const uint8_t *a)
{
  unsigned full, rem;

  if (n->family != family)
    return false;
  full = n->prefix / 8;
  rem = n->prefix % 8;
  if (memcmp(n->addr, a, full) != 0)
    return false;
  if (rem) {
    uint8_t m = (uint8_t)(0xff00u >> rem);
    if ((a[full] & m) != n->addr[full])
      return false;
  }
  return true;
}

static bool allowed(const struct egress *g, const struct sockaddr *sa)
{
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const uint8_t *a;
  int family = sa->sa_family;

  if (!g || g->n == 0)
    return false;
  if (family == AF_INET) {
    a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
  } else if (family == AF_INET6) {
    a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    /* ::ffff:a.b.c.d is the same peer as a.b.c.d: let IPv4 entries match. */
    if (memcmp(a, mapped, 12) == 0) {
      for (size_t i = 0; i < g->n; i++)
        if (net_contains(&g->nets[i], AF_INET, a + 12))
          return true;
    }
  } else {
    return false;
  }
  for (size_t i = 0; i < g->n; i++)
    if (net_contains(&g->nets[i], family, a))
      return true;
  return false;
}

bool egress_permits(const struct egress *g, const struct sockaddr *sa)
{
  if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
    return false;
  if (allowed(g, sa))
    return true;
  return egress_blocked_class(sa) == NULL;
}
