#!/usr/bin/python3
"""The harness itself, without hgd: its signature code reproduces the
reference vectors, the receiver serves HTTPS with the throwaway CA and obeys
its scripts, and the broker snippet loads and queues past 1000 messages."""

import http.client
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import hglib
from hglib import (MqttClient, Receiver, Response, make_test_ca, request_signature,
                   stdwh_signature, signed_message, verify, webhook_signature)


def load_vectors():
    path = os.environ.get("HG_VECTORS") or os.path.join(
        hglib.REPO, "..", "shared", "vectors", "signing.json")
    if not os.path.exists(path):
        path = os.path.join(hglib.REPO, "tests", "vectors", "signing.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class TestSigningVectors(unittest.TestCase):
    """The receiver's checks must agree with the independent vectors, or every
    delivery test would be judged against the wrong answer."""

    V = load_vectors()

    def test_webhook_vectors(self):
        for v in self.V["webhook"]:
            with self.subTest(v["name"]):
                fields = v.get("custom_fields") if v["mode"] == "fields" else None
                self.assertEqual(signed_message(v["body"], fields),
                                 v["signed_message"].encode("utf-8"))
                self.assertEqual(webhook_signature(v["secret"], v["body"], fields),
                                 v["signature"])

    def test_request_vectors(self):
        for v in self.V["request"]:
            with self.subTest(v["name"]):
                self.assertEqual(request_signature(v["key_secret"], v["topic"], v["ts"],
                                                   v["nonce"], v["payload"].encode("utf-8")),
                                 v["signature"])

    def test_standard_webhooks_vectors(self):
        for v in self.V["standard_webhooks"]:
            with self.subTest(v["name"]):
                self.assertEqual(stdwh_signature(v["secret"], v["webhook-id"],
                                                 v["webhook-timestamp"], v["body"]),
                                 v["webhook-signature"])

    def test_flagged_value_forms(self):
        body = ('{"s":"a.b","n":-1.50e3,"t":true,"f":false,"z":null,'
                '"o":{"k":[1,"x",null]},"u":"\u00e9\u260e"}')
        fields = [{"key": k, "useForSignature": True}
                  for k in ("s", "n", "t", "f", "z", "o", "u", "absent")]
        self.assertEqual(signed_message(body, fields).decode("utf-8"),
                         'a.b.-1.50e3.true.false..{"k":[1,"x",null]}.\u00e9\u260e.')


class TestReceiverAndBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hg-it-harness-")
        cls.ca, cls.cert, cls.key = make_test_ca(os.path.join(cls.tmp, "tls"))
        cls.rx = Receiver(cls.cert, cls.key).start()
        cls.ctx = ssl.create_default_context(cafile=cls.ca)

    @classmethod
    def tearDownClass(cls):
        cls.rx.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def post(self, url, body=b"{}", headers=None, timeout=5):
        """One POST with http.client (no redirects followed)."""
        u = urllib.parse.urlsplit(url)
        c = http.client.HTTPSConnection(u.hostname, u.port, context=self.ctx, timeout=timeout)
        try:
            c.request("POST", u.path + ("?" + u.query if u.query else ""), body=body,
                      headers=dict({"Content-Type": "application/json"}, **(headers or {})))
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def test_tls_for_ip_and_name(self):
        for host in ("127.0.0.1", "localhost"):
            with self.subTest(host):
                try:
                    socket.getaddrinfo(host, self.rx.port)
                except socket.gaierror:
                    self.skipTest("%s does not resolve here (no /etc/hosts?)" % host)
                st, _, body = self.post("https://%s:%d/plain" % (host, self.rx.port))
                self.assertEqual((st, body), (200, b"ok"))

    def test_untrusted_client_fails(self):
        ctx = ssl.create_default_context()  # system CAs: must not trust ours
        with self.assertRaises(urllib.error.URLError):
            urllib.request.urlopen(urllib.request.Request(self.rx.url("/x"), data=b"{}"),
                                   context=ctx, timeout=5)

    def test_records_and_scripts(self):
        self.rx.program("/scripted", [Response(503, "busy", {"Retry-After": "7"}),
                                      Response(200, "x" * 5000), Response(302, "",
                                                                          {"Location": "/e"})])
        secret = "whsec_test"
        body = b'{"eventId":"e1","eventType":"escalation"}'
        hdrs = {"X-Sig": webhook_signature(secret, body), "webhook-id": "e1",
                "webhook-timestamp": "123",
                "webhook-signature": stdwh_signature(secret, "e1", "123", body)}
        st1, h1, b1 = self.post(self.rx.url("/scripted?q=1"), body, hdrs)
        st2, _, b2 = self.post(self.rx.url("/scripted"), body)
        st3, h3, _ = self.post(self.rx.url("/scripted"), body)
        st4, _, b4 = self.post(self.rx.url("/scripted"), body)
        self.assertEqual((st1, b1, h1.get("Retry-After")), (503, b"busy", "7"))
        self.assertEqual((st2, len(b2)), (200, 5000))
        self.assertEqual(st3, 302)
        self.assertEqual((st4, b4), (200, b"ok"))
        reqs = self.rx.wait_for("/scripted", 4, timeout=2)
        self.assertEqual(len(reqs), 4)
        r = reqs[0]
        self.assertEqual((r.method, r.path, r.body), ("POST", "/scripted?q=1", body))
        v = verify(r, secret, "X-Sig")
        self.assertEqual((v["signature"], v["stdwh"]), (True, True))
        v = verify(r, "wrong", "X-Sig")
        self.assertEqual((v["signature"], v["stdwh"]), (False, False))
        self.assertEqual(verify(reqs[1], secret, "X-Sig")["signature"], None)

    def test_hang(self):
        self.rx.program("/slow", [Response(200, "late", hang=1.0)])
        t = time.monotonic()
        with self.assertRaises(Exception):
            self.post(self.rx.url("/slow"), timeout=0.3)
        self.assertLess(time.monotonic() - t, 1.0)
        self.assertEqual(len(self.rx.wait_for("/slow", 1, timeout=2)), 1)

    def test_broker_snippet_queues_past_default_limit(self):
        """A persistent session offline gets more than mosquitto's default
        1000 queued QoS 1 messages: the shipped snippet is in effect."""
        broker = hglib.Broker(self.tmp).start()
        try:
            import paho.mqtt.client as mqtt
            got = []
            sub = mqtt.Client(client_id="queue-probe", protocol=mqtt.MQTTv5)
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes
            cp = Properties(PacketTypes.CONNECT)
            cp.SessionExpiryInterval = 600
            sub.connect("127.0.0.1", broker.port, clean_start=False, properties=cp)
            sub.loop_start()
            sub.subscribe("probe/#", 1)[1]
            time.sleep(0.3)
            sub.disconnect()
            sub.loop_stop()
            pub = MqttClient(broker.port, "probe-pub").connect()
            n = 1500
            for i in range(n):
                pub.c.publish("probe/x", str(i), qos=1)
            hglib.wait_until(lambda: len(pub.c._out_messages) == 0, 20, what="publishes acked")
            pub.close()
            sub.on_message = lambda c, u, m: got.append(m.payload)
            sub.connect("127.0.0.1", broker.port, clean_start=False, properties=cp)
            sub.loop_start()
            hglib.wait_until(lambda: len(got) >= n, 20, what="%d queued messages" % n)
            sub.disconnect()
            sub.loop_stop()
            self.assertEqual(len(got), n)
        finally:
            broker.stop()


if __name__ == "__main__":
    hglib.main()
