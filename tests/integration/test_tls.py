#!/usr/bin/python3
"""TLS everywhere (issue 5 item 2).

Broker side: a mosquitto with TLS listeners from a throwaway CA (openssl
CLI); the server certificate carries IP:127.0.0.1, IP:::1 and DNS:localhost.
  * hgd --broker mqtts://127.0.0.1:PORT --cafile CA connects and serves
    (host name verification on), also as mqtts://localhost:PORT and ssl://;
  * a wrong CA, or a certificate for another name, fails to connect with a
    clear log line and hgd keeps running (retrying);
  * a listener that requires a client certificate: refused without one,
    accepted with cert/key from hgd's config file (and hgctl's --cert/--key).
Webhook side (--webhook-cafile):
  * a self-signed receiver without its CA: `test` gives a clear result.error
    naming the certificate problem, and no request is made;
  * without --webhook-cafile hgd uses the system bundle, which does not know
    the test CA;
  * with the receiver's certificate as --webhook-cafile the same receiver is
    reached.
"""

import os
import re
import signal

import hglib
import seclib
from hglib import HgTestCase, MqttClient, new_agent


def log_has(h, pattern, timeout=15.0):
    """Wait until hgd's current log matches pattern; return the match."""
    rx = re.compile(pattern)

    def found():
        return rx.search(h.log_text(all_runs=False))
    try:
        return hglib.wait_until(found, timeout, what="log line /%s/" % pattern)
    except TimeoutError:
        raise AssertionError("no log line /%s/ in:\n%s" % (pattern, hglib.tail(h.log, 30)))


class TestBrokerTls(HgTestCase):
    start_hgd = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        e = cls.env
        cls.tlsdir = os.path.join(e.tmp, "tls")  # the env's CA (make_test_ca)
        cls.broker = seclib.TlsBroker(e.tmp, e.ca, e.cert, e.key).start()
        e._closers.append(cls.broker.stop)
        cls.client = MqttClient(cls.broker.port, name="tlstest").connect()
        e._closers.append(cls.client.close)
        cls.client_crt, cls.client_key = seclib.make_client_cert(cls.tlsdir)
        other = hglib.make_test_ca(os.path.join(e.tmp, "other-ca"))
        cls.other_ca = other[0]
        cls.other_client = seclib.make_client_cert(os.path.join(e.tmp, "other-ca"), "rogue")
        cls.n = 0

    def hgd(self, uri, extra=(), config=None, wait=True):
        """A new hgd on the TLS broker (own instance and state dir)."""
        e = self.env
        type(self).n += 1
        inst = "%s-tls%d" % (e.instance, self.n)
        args = list(extra)
        if config:
            p = os.path.join(e.tmp, "hgd-%s.conf" % inst)
            with open(p, "w") as f:
                f.write("".join("%s = %s\n" % kv for kv in config.items()))
            os.chmod(p, 0o600)
            args = ["-c", p] + args
        h = seclib.SecHgd(e, inst, args, broker=uri, allow_net=["127.0.0.0/8"],
                          state_dir=os.path.join(e.tmp, "state-" + inst))
        h.start(wait=False)
        if wait:
            log_has(h, r"\bevent=ready\b")
        return h

    def serves(self, h):
        """hgd answers a signed request over the TLS broker."""
        agent = new_agent()
        r = self.client.request("upsert", {"agentId": agent, "url": self.url()},
                                *self.env.creds("ops"))
        self.assertOk(r)
        self.assertEqual(r.data["agent_id"], agent)
        self.assertTrue(h.running())

    def test_cafile_verified_connection(self):
        b = self.broker
        for uri in ("mqtts://127.0.0.1:%d" % b.tls_port, "mqtts://localhost:%d" % b.tls_port,
                    "ssl://127.0.0.1:%d" % b.tls_port):
            with self.subTest(uri):
                if "localhost" in uri and not seclib.localhost_addrs():
                    self.skipTest("localhost does not resolve on this machine (no /etc/hosts)")
                h = self.hgd(uri, ["--cafile", self.env.ca])
                try:
                    log_has(h, r"event=mqtt\.connected broker=%s" % re.escape(uri))
                    self.serves(h)
                finally:
                    self.assertEqual(h.stop(), 0)

    def test_wrong_ca_fails_clearly(self):
        h = self.hgd("mqtts://127.0.0.1:%d" % self.broker.tls_port, ["--cafile", self.other_ca],
                     wait=False)
        try:
            # OpenSSL's reason, not only Paho's "TCP/TLS connect failure".
            log_has(h, r"level=error event=mqtt\.tls_error broker=mqtts://127\.0\.0\.1:\d+ "
                       r"detail=\"[^\n]*certificate verify failed")
            m = log_has(h, r"level=error event=mqtt\.connect_failed [^\n]*")
            self.assertRegex(m.group(0), r"hint=\"TLS handshake or certificate check failed")
            self.assertNotIn("event=ready", h.log_text())
            self.assertNotIn("event=mqtt.connected", h.log_text())
            self.assertTrue(h.running(), "hgd keeps retrying, it does not exit")
        finally:
            self.assertEqual(h.stop(), 0)

    def test_host_name_verified(self):
        """A certificate from the right CA but for another name is refused."""
        e = self.env
        crt, key = seclib.make_server_cert(self.tlsdir, "elsewhere", dns=("elsewhere.example",))
        b = seclib.TlsBroker(e.tmp, e.ca, crt, key)
        b.conf = os.path.join(e.tmp, "mosquitto-elsewhere.conf")
        b.log = os.path.join(e.tmp, "mosquitto-elsewhere.log")
        b.start()
        try:
            h = self.hgd("mqtts://127.0.0.1:%d" % b.tls_port, ["--cafile", e.ca], wait=False)
            try:
                m = log_has(h, r"level=error event=mqtt\.connect_failed [^\n]*")
                self.assertRegex(m.group(0), r"hint=\"TLS handshake or certificate check failed"
                                             r"[^\n]*name the host")
                self.assertNotIn("event=mqtt.connected", h.log_text())
            finally:
                self.assertEqual(h.stop(), 0)
        finally:
            b.stop()

    def test_client_certificate_required(self):
        uri = "mqtts://127.0.0.1:%d" % self.broker.mtls_port
        with self.subTest("no client certificate"):
            h = self.hgd(uri, ["--cafile", self.env.ca], wait=False)
            try:
                log_has(h, r"level=error event=mqtt\.connect_failed")
                self.assertNotIn("event=mqtt.connected", h.log_text())
            finally:
                h.stop()
        with self.subTest("certificate from another CA"):
            h = self.hgd(uri, config={"cafile": self.env.ca, "cert": self.other_client[0],
                                      "key": self.other_client[1]}, wait=False)
            try:
                log_has(h, r"level=error event=mqtt\.connect_failed")
                self.assertNotIn("event=mqtt.connected", h.log_text())
            finally:
                h.stop()
        with self.subTest("cert and key in the config file"):
            h = self.hgd(uri, config={"cafile": self.env.ca, "cert": self.client_crt,
                                      "key": self.client_key})
            try:
                log_has(h, r"event=mqtt\.connected")
                self.serves(h)
                # hgctl with the same options
                r = self.env.hgctl("webhook", "get", new_agent(), port=self.broker.mtls_port,
                                   global_args=["--cafile", self.env.ca, "--cert",
                                                self.client_crt, "--key", self.client_key])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.strip(), "null")
                r = self.env.hgctl("webhook", "get", new_agent(), port=self.broker.mtls_port,
                                   global_args=["--cafile", self.env.ca])
                self.assertEqual(r.returncode, 3, "hgctl without a client cert: %r" % (r,))
            finally:
                self.assertEqual(h.stop(signal.SIGTERM), 0)
        with self.subTest("cert and key as flags"):
            h = self.hgd(uri, ["--cafile", self.env.ca, "--cert", self.client_crt,
                               "--key", self.client_key])
            try:
                self.serves(h)
            finally:
                self.assertEqual(h.stop(), 0)


class TestWebhookTls(HgTestCase):
    """The env's hgd trusts the test CA through --webhook-cafile."""

    def test_self_signed_receiver_refused(self):
        e = self.env
        crt, key = seclib.make_self_signed(os.path.join(e.tmp, "self"))
        rx = hglib.Receiver(crt, key).start()
        try:
            agent = new_agent()
            e.upsert({"agentId": agent, "url": rx.url("/self"), "secret": e.secret()})
            data = self.assertOk(e.request("test", {"agentId": agent}, timeout=25))
            self.assertEqual(set(data["result"]), {"error"}, data["result"])
            err = data["result"]["error"]
            self.assertRegex(err, r"(?i)certificate", "not a clear TLS message: %r" % err)
            self.assertEqual(rx.requests(), [])
            # An escalation fails the same way (a TLS error is retried, then
            # failed), and the receiver never sees a request.
            e.escalate(agent, {"reason": "tls"})
            ev = e.wait_delivery_event(agent, lambda ev: ev.get("state") == "failed", timeout=20)
            self.assertIsNotNone(ev, e.deliveries(agent))
            self.assertRegex(ev.get("error", ""), r"(?i)certificate")
            self.assertEqual(rx.requests(), [])
        finally:
            rx.stop()

    def test_system_bundle_without_webhook_cafile(self):
        e = self.env
        h = seclib.SecHgd(e, e.instance + "-sys", ["--topic-root", "sys/hg"],
                          allow_net=["127.0.0.0/8"], webhook_cafile=False,
                          state_dir=os.path.join(e.tmp, "state-sys"))
        h.start()
        try:
            agent, path = new_agent(), self.path()
            self.assertOk(e.client.request("upsert", {"agentId": agent, "url": self.url(path)},
                                           *e.creds("ops"), root="sys/hg"))
            data = self.assertOk(e.client.request("test", {"agentId": agent}, *e.creds("ops"),
                                                  root="sys/hg", timeout=25))
            self.assertRegex(data["result"].get("error", ""), r"(?i)certificate", data["result"])
            self.assertEqual(self.rx.requests(path), [])
        finally:
            h.stop()

    def test_receiver_certificate_as_webhook_cafile(self):
        e = self.env
        crt, key = seclib.make_self_signed(os.path.join(e.tmp, "self2"))
        rx = hglib.Receiver(crt, key).start()
        h = seclib.SecHgd(e, e.instance + "-pin", ["--topic-root", "pin/hg"],
                          allow_net=["127.0.0.0/8"], webhook_cafile=crt,
                          state_dir=os.path.join(e.tmp, "state-pin"))
        h.start()
        try:
            agent = new_agent()
            self.assertOk(e.client.request("upsert", {"agentId": agent, "url": rx.url("/pin")},
                                           *e.creds("ops"), root="pin/hg"))
            data = self.assertOk(e.client.request("test", {"agentId": agent}, *e.creds("ops"),
                                                  root="pin/hg", timeout=25))
            self.assertEqual(data["result"].get("status"), 200, data["result"])
            self.assertEqual(len(rx.requests("/pin")), 1)
        finally:
            h.stop()
            rx.stop()


if __name__ == "__main__":
    hglib.main()
