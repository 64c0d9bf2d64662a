/* egress.h — the SSRF guard: which addresses hgd may connect to.
 *
 * Refused by default: loopback, private (10/8, 172.16/12, 192.168/16),
 * link-local (169.254/16, fe80::/10), CGNAT (100.64/10), unique-local
 * (fc00::/7), multicast, unspecified, broadcast, "this network" 0/8, the
 * other IANA special-purpose blocks, and the same inside IPv4-mapped
 * (::ffff:0:0/96), IPv4-compatible, NAT64 (64:ff9b::/96, 64:ff9b:1::/48)
 * and 6to4 (2002::/16) forms. An allow-list of CIDRs opens exceptions.
 * Checked on the address actually connected to (CURLOPT_OPENSOCKETFUNCTION). */
#ifndef HG_EGRESS_H
#define HG_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct egress;

int egress_create(struct egress **out);
void egress_free(struct egress *g);

/* Add an allowed CIDR ("127.0.0.0/8", "::1/128", or a bare address).
 * Returns 0, or -1 with err. */
int egress_allow(struct egress *g, const char *cidr, char *err, size_t errsz);

/* NULL when sa is a public address, else the name of the blocked class
 * ("loopback", "private", "link-local", …). Ignores the allow-list. */
const char *egress_blocked_class(const struct sockaddr *sa);

/* True when hgd may connect to sa (public, or inside an allowed CIDR). */
bool egress_permits(const struct egress *g, const struct sockaddr *sa);

#endif
