#!/usr/bin/python3
"""Regressions found by a hostile tester ("break it" session).

Each test names the bug it pins down; every one of them failed against the
code before its fix.
"""

import json
import os
import subprocess
import time
import unittest

import hglib
from hglib import HgTestCase, new_agent


class TestRepeatedAgentId(HgTestCase):
    """get/delete/test took the first of two agentId members and went on:
    a delete with {"agentId": A, "agentId": B} deleted A, although upsert
    refuses every repeated parameter (bad input must change nothing)."""

    def test_repeated_agent_id_is_refused_and_changes_nothing(self):
        e = self.env
        a, b = new_agent(), new_agent()
        ra = e.upsert({"agentId": a, "url": self.url()})
        rb = e.upsert({"agentId": b, "url": self.url()})
        for action in ("get", "delete", "test"):
            for key in ("ops", "limited"):
                first = a if key == "ops" else e.agent_limited
                payload = '{"agentId":"%s","agentId":"%s"}' % (first, b)
                r = e.request(action, payload, key=key)
                self.assertError(r, "VALIDATION_ERROR", "agentId",
                                 msg="%s by %s: %r" % (action, key, r))
        self.assertEqual(e.get(a), ra)
        self.assertEqual(e.get(b), rb)
        self.assertEqual(self.rx.requests(), [])


class TestOddOutboxRecords(HgTestCase):
    """An outbox "add" record's agent_id and event_id were taken as any
    string of at most 36 bytes: a hand-edited or damaged record with
    agent_id "a/#" made hgd publish its delivery event to a wildcard topic
    (the broker dropped hgd's connection for a protocol error), and an
    event_id holding CR LF was sent as an extra header in the webhook POST
    (header injection) and as a broken log line. STORAGE.md: a record that
    does not validate stops hgd with the file and offset, untouched."""

    def setUp(self):
        if not self.env.hgd.running():
            self.env.hgd.start()

    def _try(self, record):
        e = self.env
        if e.hgd.running():
            e.hgd.stop()
        path = os.path.join(e.state_dir, "outbox.jsonl")
        with open(path, "rb") as f:
            before = f.read()
        recs = before.rstrip(b"\0")  # the records, less the outbox's zero-filled room
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        with open(path, "wb") as f:
            f.write(recs + line)
        try:
            e.hgd.start(wait=False)
            hglib.wait_until(lambda: not e.hgd.running(), 10, what="hgd to refuse the outbox")
            self.assertEqual(e.hgd.proc.returncode, 1)
            log = hglib.tail(e.hgd.log, 20)
            self.assertIn("outbox.jsonl", log)
            self.assertIn("byte offset %d" % len(recs), log)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), recs + line, "the file was changed")
        finally:
            with open(path, "wb") as f:
                f.write(before)

    def test_non_uuid_agent_id_refused(self):
        a = new_agent()
        self.env.upsert({"agentId": a, "url": self.url()})
        for bad in ("a/#", "x", "+"):
            self._try({"t": "add", "seq": 1001, "agent_id": bad,
                       "event_id": "11111111-1111-4111-8111-111111111111",
                       "accepted_ms": 1, "esc": {"reason": "x"}})

    def test_non_uuid_event_id_refused(self):
        a = new_agent()
        p = self.path()
        self.env.upsert({"agentId": a, "url": self.url(p)})
        self._try({"t": "add", "seq": 1002, "agent_id": a, "event_id": "x\r\nX-Evil: 1",
                   "accepted_ms": 1, "esc": {"reason": "x"}})
        self.assertEqual(self.rx.requests(p), [])

    def test_upper_case_ids_are_delivered(self):
        # The ids are compared lower case everywhere: an upper-case agent_id
        # must find its webhook, not end "skipped" (that loses it).
        e = self.env
        a = new_agent()
        p = self.path()
        e.upsert({"agentId": a, "url": self.url(p)})
        e.hgd.stop()
        eid = "22222222-2222-4222-8222-2222222222AB"
        path = os.path.join(e.state_dir, "outbox.jsonl")
        with open(path, "rb") as f:
            recs = f.read().rstrip(b"\0")  # less the zero-filled room
        with open(path, "wb") as f:
            f.write(recs + json.dumps({"t": "add", "seq": 1003, "agent_id": a.upper(),
                                       "event_id": eid, "accepted_ms": 1, "esc": {"reason": "x"}},
                                      separators=(",", ":")).encode() + b"\n")
        e.hgd.start()
        reqs = self.rx.wait_for(p, 1, timeout=10)
        self.assertEqual(reqs[0].header("X-HelpGenie-Event-Id"), eid.lower())


class TestRetainedRequests(HgTestCase):
    """A request or escalation published with retain stays in the broker's
    retained store and is sent again on every subscribe: hgd acted on it
    again after each restart while its hg-ts was inside the 300 s window, so
    a retained upsert brought back a webhook deleted since (and a retained
    escalation was delivered again)."""

    def _publish_retained(self, topic, payload, **kw):
        e = self.env
        props = hglib.auth_props(topic, payload, "ops", e.keys["ops"]["secret"])
        e.client.publish(topic, payload, user_props=props, qos=1, retain=True, **kw)
        self.addCleanup(e.client.publish, topic, b"", qos=1, retain=True)

    def test_retained_upsert_not_replayed_after_restart(self):
        e = self.env
        a = new_agent()
        topic = "%s/webhook/upsert" % hglib.ROOT
        payload = json.dumps({"agentId": a, "url": self.url()}).encode()
        self._publish_retained(topic, payload, response_topic=e.client.reply_topic,
                               correlation=b"retained-upsert")
        # The live copy is processed as usual.
        hglib.wait_until(lambda: e.get(a) is not None, 10, what="the live upsert")
        self.assertOk(e.request("delete", {"agentId": a}))
        e.hgd.restart()
        time.sleep(1.0)  # the retained copy arrives right after the subscribe
        self.assertIsNone(e.get(a), "a retained upsert brought a deleted webhook back")
        self.assertIn("mqtt.retained_ignored", e.hgd.log_text(all_runs=False))

    def test_retained_escalation_not_delivered_again(self):
        e = self.env
        a = new_agent()
        p = self.path()
        e.upsert({"agentId": a, "url": self.url(p)})
        eid = str(__import__("uuid").uuid4())
        self._publish_retained("%s/escalation/%s" % (hglib.ROOT, a),
                               json.dumps({"eventId": eid}).encode())
        self.rx.wait_for(p, 1, timeout=10)
        e.hgd.restart()
        time.sleep(1.5)
        got = [r.header("X-HelpGenie-Event-Id") for r in self.rx.requests(p)]
        self.assertEqual(got, [eid])


class TestTarpitFairness(HgTestCase):
    """One party that controls a few webhooks could hold every delivery
    slot: at most 64 deliveries are in flight, 16 per host, and a host is
    scheme + host + port. Five webhooks on five ports of a receiver that
    never answers, fed 20 escalations each, took all 64 slots for the whole
    request timeout (15 s), again on every retry: every other Genie's
    delivery waited. Fixed: an attempt unanswered for DELIVERY_SLOW_MS (2 s)
    leaves the pool of 64 (daemon/delivery.c), up to 1,024 in flight."""

    def test_tarpits_on_five_ports_do_not_starve_others(self):
        e = self.env
        tarpits = []
        for _ in range(5):
            r = hglib.Receiver(e.cert, e.key).start()
            r.default = hglib.Response(hang=20)
            self.addCleanup(r.stop)
            tarpits.append(r)
        for r in tarpits:
            a = new_agent()
            e.upsert({"agentId": a, "url": r.url("/tarpit")})
            for _ in range(20):
                e.escalate(a, {"reason": "tarpit"})
        hglib.wait_until(lambda: sum(len(r.requests()) for r in tarpits) >= 64, 10,
                         what="the tarpits to hold the slots")
        good = new_agent()
        p = self.path()
        e.upsert({"agentId": good, "url": self.url(p)})
        t0 = time.monotonic()
        e.escalate(good, {"reason": "someone else"})
        got = self.rx.wait_for(p, 1, timeout=20)
        self.assertTrue(got, "never delivered")
        self.assertLess(time.monotonic() - t0, 5.0,
                        "another Genie's delivery waited for the tarpits' timeouts")


class TestIpv6LiteralUrl(HgTestCase):
    """The URL validator took any run of hex digits, ':' and '.' in brackets
    as an IPv6 literal: "https://[1:2:3:4:5:6:7:8:9]/" was saved, and every
    delivery then failed in libcurl ("URL using bad/illegal format"): bad
    input must get VALIDATION_ERROR and change nothing."""

    def test_invalid_ipv6_literals_refused(self):
        e = self.env
        for host in ("[1:2:3:4:5:6:7:8:9]", "[1::2::3]", "[:::]", "[1.2.3.4:5]", "[12345::1]",
                     "[::1.2.3]"):
            a = new_agent()
            r = e.request("upsert", {"agentId": a, "url": "https://%s/hook" % host})
            self.assertError(r, "VALIDATION_ERROR", "url", msg="%s: %r" % (host, r))
            self.assertIsNone(e.get(a))

    def test_valid_ipv6_literals_accepted(self):
        e = self.env
        for host in ("[::1]", "[2001:db8::1]:8443", "[::ffff:127.0.0.1]", "[FE80::A]"):
            a = new_agent()
            e.upsert({"agentId": a, "url": "https://%s/hook" % host})


class TestTopicTextConfig(HgTestCase):
    """--check-config said "configuration OK" for a topic root or instance
    that is not UTF-8 or holds control characters; hgd then retried the
    broker for ever ("TCP connect completion failure"), as mosquitto drops a
    CONNECT whose will topic is malformed. A '$' root is the broker's."""

    start_hgd = False

    def test_bad_topic_text_refused(self):
        e = self.env
        for flag, value in (("--instance", b"\xff"), ("--instance", b"a\tb"),
                            ("--topic-root", b"a\xffb"), ("--topic-root", b"a\x01b"),
                            ("--topic-root", b"$SYS/hg")):
            argv = [os.fsencode(a) for a in hglib.Hgd(e, "x").argv()]
            r = subprocess.run(argv + [flag.encode(), value, b"--check-config"],
                               capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 1, "%s %r: %r" % (flag, value, r))
            self.assertIn(flag[2:].encode(), r.stderr)

    def test_good_topic_text_accepted(self):
        e = self.env
        for flag, value in (("--instance", "héllo-1"), ("--topic-root", "ünï/v1")):
            r = subprocess.run(hglib.Hgd(e, "x").argv() + [flag, value, "--check-config"],
                               capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 0, "%s %r: %r" % (flag, value, r))


if __name__ == "__main__":
    hglib.main()
