#!/usr/bin/python3
"""The egress guard end to end (PROTOCOL.md section 4, issue 5 item 1).

hgd runs here WITHOUT --allow-net, so only public addresses are allowed.
Webhook URLs name blocked addresses by host name (localhost, *.localhost,
names resolved through an LD_PRELOAD getaddrinfo shim — /etc/hosts is never
touched) and by every literal notation a URL allows (decimal, octal, hex,
short forms, IPv4-mapped, IPv4-compatible, NAT64, 6to4, ::1 …). For each:

  * the URL validator (common/webhook.c) may refuse it at upsert: then the
    reply is VALIDATION_ERROR (layer "validator");
  * otherwise the `test` action answers with result.error naming the egress
    refusal, and an escalation ends `failed` with that error at once
    (layer "egress");
  * never does a TCP connection reach the counting listener those URLs
    point at (127.0.0.1 and ::1, same port).

A second hgd that allows 127.0.0.0/8 and ::1 (the control) connects to the
same listener for the same notations: so the refusals above are the guard's
doing, and the notations really do mean loopback.

The layer that refused each URL is printed in a table at the end.
"""

import os
import sys
import time

import hglib
import seclib
from hglib import HgTestCase, new_agent

ROOT2 = "ctl/hg"  # the control hgd's topic root

# (label, host part of the URL; {port} is the counter's port when the URL
# should reach the counter if allowed, or None for addresses nothing here
# listens on).
LITERALS = [
    ("dotted loopback", "127.0.0.1:{port}"),
    ("loopback, other /8 address", "127.9.8.7:{port}"),
    ("decimal", "2130706433:{port}"),
    ("octal dotted", "0177.0.0.1:{port}"),
    ("octal one number", "017700000001:{port}"),
    ("hex one number", "0x7f000001:{port}"),
    ("hex dotted", "0x7f.0x0.0x0.0x1:{port}"),
    ("short form a.b", "127.1:{port}"),
    ("short form a.b.c", "127.0.1:{port}"),
    ("mixed hex/octal/decimal", "0x7f.0.00.1:{port}"),
    ("IPv6 loopback", "[::1]:{port}"),
    ("IPv6 loopback, long form", "[0:0:0:0:0:0:0:1]:{port}"),
    ("IPv4-mapped", "[::ffff:127.0.0.1]:{port}"),
    ("IPv4-mapped, hex groups", "[::ffff:7f00:1]:{port}"),
    ("IPv4-mapped, uppercase", "[::FFFF:127.0.0.1]:{port}"),
    ("IPv4-compatible", "[::127.0.0.1]:{port}"),
    ("NAT64 well-known prefix", "[64:ff9b::7f00:1]:{port}"),
    ("NAT64 local-use prefix", "[64:ff9b:1::7f00:1]:{port}"),
    ("6to4", "[2002:7f00:1::1]:{port}"),
    ("unspecified", "0.0.0.0:{port}"),
    ("unspecified, decimal 0", "0:{port}"),
    ("IPv6 unspecified", "[::]:{port}"),
    ("metadata 169.254.169.254", "169.254.169.254"),
    ("metadata, decimal", "2852039166"),
    ("metadata, IPv4-mapped", "[::ffff:169.254.169.254]"),
    ("link-local IPv6", "[fe80::1]"),
    ("private 10/8", "10.0.0.1"),
    ("private 10/8, hex", "0xa000001"),
    ("private 172.16/12", "172.16.0.1"),
    ("private 192.168/16", "192.168.1.1"),
    ("CGNAT", "100.64.0.1"),
    ("unique-local", "[fd00::1]"),
    ("multicast", "224.0.0.1"),
    ("broadcast", "255.255.255.255"),
    ("this network 0/8", "0.1.2.3"),
    ("IETF 192.0.0/24", "192.0.0.1"),
    ("benchmarking 198.18/15", "198.18.0.1"),
    ("reserved 240/4", "240.0.0.1"),
    ("percent-encoded digits", "%31%32%37.0.0.1:{port}"),
    ("IPv6 zone id", "[fe80::1%25lo]:{port}"),
    ("IPv4-mapped with zone id", "[::ffff:127.0.0.1%25lo]:{port}"),
]

NAMES = [
    ("localhost", "localhost:{port}"),
    ("LOCALHOST (case)", "LOCALHOST:{port}"),
    ("sub.localhost", "hook.localhost:{port}"),
    # The system resolver does not know "localhost." here: it fails to
    # resolve (layer "resolver"), which is a refusal too.
    ("localhost. (trailing dot)", "localhost.:{port}"),
]
UNRESOLVED_OK = {"localhost. (trailing dot)"}

# Names resolved through the shim (hgd only; /etc/hosts is not touched).
SHIM_HOSTS = {
    "ip6-localhost": "::1",
    "hooks.rebind.hgtest": "127.0.0.1",
    "metadata.hgtest": "169.254.169.254",
    "mapped.hgtest": "::ffff:127.0.0.1",
    "nat64.hgtest": "64:ff9b::a9fe:a9fe",
    "private.hgtest": "10.1.2.3",
}
SHIM_NAMES = [
    ("ip6-localhost (shim: ::1)", "ip6-localhost:{port}"),
    ("name -> 127.0.0.1 (shim)", "hooks.rebind.hgtest:{port}"),
    ("name -> metadata (shim)", "metadata.hgtest"),
    ("name -> ::ffff:127.0.0.1 (shim)", "mapped.hgtest:{port}"),
    ("name -> NAT64 metadata (shim)", "nat64.hgtest"),
    ("name -> 10.1.2.3 (shim)", "private.hgtest"),
]

# Reached by the control hgd (allows 127.0.0.0/8 and ::1): these notations
# must land on the counting listener.
CONTROL = ["127.0.0.1:{port}", "2130706433:{port}", "0177.0.0.1:{port}", "0x7f000001:{port}",
           "127.1:{port}", "[::1]:{port}", "[::ffff:127.0.0.1]:{port}", "localhost:{port}"]

RESULTS = []  # (label, url, layer, detail)


class TestEgress(HgTestCase):
    start_hgd = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        e = cls.env
        cls.counter = seclib.TcpCounter()
        e._closers.append(cls.counter.close)
        cls.shim = seclib.resolver_shim(e.tmp)
        environ = seclib.preload_env(cls.shim, SHIM_HOSTS) if cls.shim else {}
        # No --allow-net at all: the bare policy.
        e.hgd = seclib.SecHgd(e, e.instance, environ=environ)
        e.hgd.start()

    @classmethod
    def tearDownClass(cls):
        try:
            if RESULTS:
                w = max(len(r[0]) for r in RESULTS)
                sys.stderr.write("\nlayer that refused each URL:\n")
                for label, url, layer, detail in RESULTS:
                    sys.stderr.write("  %-*s  %-9s  %s  (%s)\n" % (w, label, layer, url, detail))
        finally:
            super().tearDownClass()

    def url(self, host):
        return "https://%s/egress-%s" % (host.format(port=self.counter.port), new_agent()[:8])

    def check_refused(self, label, host):
        """Upsert, then test and escalate: refused by the validator or by the
        guard; returns the layer."""
        e = self.env
        agent, url = new_agent(), self.url(host)
        r = e.request("upsert", {"agentId": agent, "url": url})
        self.assertIsNotNone(r, "no reply to upsert of %s" % url)
        if r.success is not True:
            self.assertError(r, "VALIDATION_ERROR", "url")
            RESULTS.append((label, url, "validator", r.message))
            return "validator"
        data = self.assertOk(e.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(set(data["result"]), {"error"}, "%s: %r" % (url, data["result"]))
        err = data["result"]["error"]
        if label in UNRESOLVED_OK and "Could not resolve host" in err:
            RESULTS.append((label, url, "resolver", err))
            return "resolver"
        self.assertIn("egress policy refused", err, "%s: %r" % (url, err))
        e.escalate(agent, {"reason": "egress"})
        ev = e.wait_delivery_event(agent, lambda ev: ev.get("state") in ("failed", "delivered",
                                                                         "retrying"))
        self.assertIsNotNone(ev, "no delivery event for %s" % url)
        self.assertEqual(ev["state"], "failed", "a refusal is final at once: %r" % ev)
        self.assertEqual(ev["attempt"], 1, ev)
        self.assertIn("egress policy refused", ev.get("error", ""), ev)
        self.assertNotIn("status", ev, ev)
        RESULTS.append((label, url, "egress", err))
        return "egress"

    def test_1_literal_addresses(self):
        for label, host in LITERALS:
            with self.subTest(label):
                self.check_refused(label, host)
        self.assertEqual(self.counter.count, 0, "connections reached the listener: %r"
                         % self.counter.peers)

    def test_2_host_names(self):
        for label, host in NAMES:
            with self.subTest(label):
                layer = self.check_refused(label, host)
                if label == "localhost":
                    self.assertEqual(layer, "egress")
        self.assertEqual(self.counter.count, 0, "connections reached the listener: %r"
                         % self.counter.peers)

    def test_3_names_through_resolver_shim(self):
        if not self.shim:
            self.skipTest("no C compiler for the getaddrinfo shim")
        for label, host in SHIM_NAMES:
            with self.subTest(label):
                self.assertEqual(self.check_refused(label, host), "egress")
        self.assertEqual(self.counter.count, 0, "connections reached the listener: %r"
                         % self.counter.peers)

    def test_4_etc_hosts_names(self):
        """ip6-localhost and friends through the machine's own resolver, when
        /etc/hosts has them (never edited here)."""
        try:
            with open("/etc/hosts") as f:
                hosts = f.read().split()
        except OSError:
            hosts = []
        names = [n for n in ("ip6-localhost", "ip6-loopback") if n in hosts]
        if not names:
            self.skipTest("/etc/hosts has no ip6-localhost (covered by the shim test)")
        for n in names:
            with self.subTest(n):
                self.assertEqual(self.check_refused(n + " (/etc/hosts)", n + ":{port}"), "egress")
        self.assertEqual(self.counter.count, 0)

    def test_5_allow_list_not_covering_target(self):
        """An allow-list that covers other networks opens nothing else."""
        e = self.env
        h = seclib.SecHgd(e, e.instance + "-al", ["--topic-root", "al/hg"],
                          allow_net=["10.0.0.0/8", "127.0.0.2/32", "fd00::/8"],
                          state_dir=os.path.join(e.tmp, "state-al"))
        h.start()
        try:
            before = self.counter.count
            for host in ("127.0.0.1:{port}", "[::1]:{port}", "[::ffff:127.0.0.1]:{port}",
                         "169.254.169.254"):
                with self.subTest(host):
                    agent, url = new_agent(), self.url(host)
                    r = e.client.request("upsert", {"agentId": agent, "url": url},
                                         *e.creds("ops"), root="al/hg")
                    self.assertOk(r)
                    r = e.client.request("test", {"agentId": agent}, *e.creds("ops"),
                                         root="al/hg", timeout=25)
                    data = self.assertOk(r)
                    self.assertIn("egress policy refused", data["result"].get("error", ""),
                                  data["result"])
            self.assertEqual(self.counter.count, before)
        finally:
            h.stop()

    def test_6_control_allowing_loopback_connects(self):
        """The same notations with 127.0.0.0/8 and ::1 allowed reach the
        listener (which is not TLS, so the test gives a TLS error, not an
        egress refusal)."""
        e = self.env
        h = seclib.SecHgd(e, e.instance + "-ctl", ["--topic-root", ROOT2],
                          allow_net=["127.0.0.0/8", "::1/128"],
                          state_dir=os.path.join(e.tmp, "state-ctl"))
        h.start()
        try:
            for host in CONTROL:
                with self.subTest(host):
                    before = self.counter.count
                    agent, url = new_agent(), self.url(host)
                    self.assertOk(e.client.request("upsert", {"agentId": agent, "url": url},
                                                   *e.creds("ops"), root=ROOT2))
                    data = self.assertOk(e.client.request("test", {"agentId": agent},
                                                          *e.creds("ops"), root=ROOT2,
                                                          timeout=25))
                    err = data["result"].get("error", "")
                    self.assertTrue(err, data["result"])
                    self.assertNotIn("egress", err)
                    hglib.wait_until(lambda: self.counter.count > before, 5,
                                     what="a connection from the control hgd to %s" % url)
        finally:
            h.stop()
        # Only the control's connections, none from the guarded hgd: reset.
        time.sleep(0.1)


if __name__ == "__main__":
    hglib.main()
