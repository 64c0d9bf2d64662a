#!/usr/bin/python3
"""The webhook delivery (PROTOCOL.md sections 4, 5, 6): the exact body and
every header of a delivered escalation with both signatures recomputed by the
receiver; default, custom and flagged fields; unsigned webhooks; non-ASCII
text; escalations that are rejected or skipped."""

import calendar
import json
import time
import uuid

import hglib
from hglib import (ISO_RE, ROOT, T_QUIET, UUID4_RE, HgTestCase, Response, new_agent,
                   signed_message, stdwh_signature, webhook_signature)

DEFAULTS = ["eventId", "eventType", "timestamp", "callerNumber", "callSid", "reason",
            "summary", "agentSessionId"]


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def iso_to_epoch(s):
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000.0


class TestDelivery(HgTestCase):

    def hook(self, secret=True, **row):
        """A fresh Genie with a webhook on a fresh receiver path."""
        agent, path = new_agent(), self.path()
        params = {"agentId": agent, "url": self.url(path)}
        if secret:
            params["secret"] = self.env.secret() if secret is True else secret
        params.update(row)
        self.env.upsert(params)
        return agent, path, params.get("secret")

    def deliver(self, agent, path, esc, key="ops"):
        """Escalate and return the one POST the receiver got."""
        t0 = time.time()
        self.env.escalate(agent, esc, key=key)
        reqs = self.rx.wait_for(path, 1, timeout=hglib.T_DELIVER)
        self.assertEqual(len(reqs), 1, "no POST within %.0fs for %s" % (hglib.T_DELIVER, agent))
        return reqs[0], t0

    def check_common_headers(self, req, event_id, t0):
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.header_all("Content-Type"), ["application/json"])
        self.assertEqual(req.header("Content-Length"), str(len(req.body)))
        self.assertEqual(req.header_all("X-HelpGenie-Event-Id"), [event_id])
        self.assertEqual(req.header_all("X-HelpGenie-Attempt"), ["1"])
        ua = req.header("User-Agent")
        self.assertRegex(ua or "", r"^hgd/\d+\.\d+\.\d+")
        status = self.env.client.retained("%s/status/%s" % (ROOT, self.env.instance))
        if status is not None and "version" in status.json():
            self.assertEqual(ua, "hgd/" + status.json()["version"])

    def check_signed(self, req, secret, header, event_id, t0, fields=None):
        exp = webhook_signature(secret, req.body, fields)
        self.assertEqual(req.header_all(header), [exp], "%s header" % header)
        self.assertEqual(req.header_all("webhook-id"), [event_id])
        ts = req.header("webhook-timestamp")
        self.assertRegex(ts or "", r"^\d+$")
        self.assertLessEqual(abs(int(ts) - req.time), 5, "webhook-timestamp is the attempt time")
        self.assertEqual(req.header_all("webhook-signature"),
                         [stdwh_signature(secret, event_id, ts, req.body)])

    # ------------------------------------------------------- default fields
    def test_default_fields_exact_body_and_headers(self):
        agent, path, secret = self.hook(secret_header="X-Acme-Signature")
        eid = str(uuid.uuid4())
        esc = {"eventId": eid, "callerNumber": "+15551230000",
               "callSid": "CA0123456789abcdef0123456789abcdef", "reason": "requested_human",
               "summary": "Caller asked for a person.", "agentSessionId": "sess-42",
               "fields": {"accountNumber": "AC-99817"}}
        req, t0 = self.deliver(agent, path, esc)
        body = req.json()
        self.assertEqual(list(body), DEFAULTS)
        self.assertRegex(body["timestamp"], ISO_RE)
        self.assertLessEqual(t0 - 2, iso_to_epoch(body["timestamp"]))
        self.assertLessEqual(iso_to_epoch(body["timestamp"]), req.time + 1)
        expected = compact({"eventId": eid, "eventType": "escalation",
                            "timestamp": body["timestamp"], "callerNumber": "+15551230000",
                            "callSid": "CA0123456789abcdef0123456789abcdef",
                            "reason": "requested_human", "summary": "Caller asked for a person.",
                            "agentSessionId": "sess-42"})
        self.assertEqual(req.body, expected, "exact body bytes")
        self.check_common_headers(req, eid, t0)
        self.check_signed(req, secret, "X-Acme-Signature", eid, t0)
        self.assertIsNone(req.header("X-HelpGenie-Signature"),
                          "the signature goes only in the configured header")

    def test_absent_properties_are_null_and_event_id_generated(self):
        agent, path, secret = self.hook()
        req, t0 = self.deliver(agent, path, {})
        body = req.json()
        eid = body["eventId"]
        self.assertRegex(eid, UUID4_RE, "hgd makes a UUID v4 when the call node gave none")
        self.assertEqual(req.body, compact({
            "eventId": eid, "eventType": "escalation", "timestamp": body["timestamp"],
            "callerNumber": None, "callSid": None, "reason": None, "summary": None,
            "agentSessionId": None}))
        self.check_common_headers(req, eid, t0)
        self.check_signed(req, secret, "X-HelpGenie-Signature", eid, t0)
        # a second escalation gets another id
        self.env.escalate(agent, {})
        reqs = self.rx.wait_for(path, 2)
        self.assertEqual(len(reqs), 2)
        self.assertNotEqual(reqs[1].json()["eventId"], eid)

    def test_non_ascii_text(self):
        agent, path, secret = self.hook()
        summary = "Client m\u00e9content \u2013 veut parler \u00e0 un humain \u260e " \
                  "\"urgent\" \\ \n\t \u65e5\u672c\u8a9e \U0001F600 \u2028"
        esc = {"eventId": str(uuid.uuid4()), "callerNumber": "+33612345678",
               "reason": "low_sentiment", "summary": summary, "agentSessionId": None}
        req, t0 = self.deliver(agent, path, esc)
        body = req.json()
        self.assertEqual(body["summary"], summary)
        self.assertEqual(req.body, compact({
            "eventId": esc["eventId"], "eventType": "escalation", "timestamp": body["timestamp"],
            "callerNumber": "+33612345678", "callSid": None, "reason": "low_sentiment",
            "summary": summary, "agentSessionId": None}), "UTF-8 as is, not \\u escapes")
        self.assertIn("m\u00e9content".encode("utf-8"), req.body)
        self.check_signed(req, secret, "X-HelpGenie-Signature", esc["eventId"], t0)

    def test_url_path_and_query_kept(self):
        agent, path = new_agent(), self.path()
        url = self.url(path) + "?tenant=7&x=%20y"
        self.env.upsert({"agentId": agent, "url": url})
        req, _ = self.deliver(agent, path, {"reason": "q"})
        self.assertEqual(req.path, path + "?tenant=7&x=%20y")

    # --------------------------------------------------------- custom fields
    def test_custom_fields_body(self):
        fields = ["callSid", {"key": "accountNumber", "hint": "the account"},
                  {"key": "eventType"}, "order.id", "missing", "timestamp", "nested"]
        agent, path, secret = self.hook(custom_fields=fields)
        esc = {"callSid": "CA1", "reason": "not listed", "summary": "not listed",
               "fields": {"accountNumber": "AC-1", "order.id": 12345,
                          "nested": {"a": [1, "x", None], "b": True}, "unlisted": "dropped",
                          "callSid": "fields.callSid is not the default field"}}
        req, t0 = self.deliver(agent, path, esc)
        body = req.json()
        self.assertEqual(list(body), ["callSid", "accountNumber", "eventType", "order.id",
                                      "missing", "timestamp", "nested"])
        self.assertEqual(req.body, compact({
            "callSid": "CA1", "accountNumber": "AC-1", "eventType": "escalation",
            "order.id": 12345, "missing": None, "timestamp": body["timestamp"],
            "nested": {"a": [1, "x", None], "b": True}}))
        self.assertRegex(body["timestamp"], ISO_RE)
        # no eventId field in the body, but the headers still carry it
        eid = req.header("X-HelpGenie-Event-Id")
        self.assertRegex(eid or "", UUID4_RE)
        self.check_common_headers(req, eid, t0)
        self.check_signed(req, secret, "X-HelpGenie-Signature", eid, t0)

    def test_flagged_fields_signature(self):
        fields = [{"key": "callSid", "useForSignature": True},
                  {"key": "accountNumber", "hint": "the caller's account number"},
                  {"key": "eventId", "useForSignature": True},
                  {"key": "priority", "useForSignature": True},
                  {"key": "flag", "useForSignature": True},
                  {"key": "none", "useForSignature": True},
                  {"key": "obj", "useForSignature": True},
                  {"key": "text", "useForSignature": True}]
        agent, path, secret = self.hook(custom_fields=fields, secret_header="X-Sig")
        eid = str(uuid.uuid4())
        esc = {"eventId": eid, "callSid": "CA0123456789abcdef0123456789abcdef",
               "fields": {"accountNumber": "AC-99817", "priority": 2, "flag": False,
                          "obj": {"k": [1, "\u00e9"]}, "text": "caf\u00e9 \u2615"}}
        req, t0 = self.deliver(agent, path, esc)
        self.assertEqual(req.body, compact({
            "callSid": "CA0123456789abcdef0123456789abcdef", "accountNumber": "AC-99817",
            "eventId": eid, "priority": 2, "flag": False, "none": None,
            "obj": {"k": [1, "\u00e9"]}, "text": "caf\u00e9 \u2615"}))
        message = "CA0123456789abcdef0123456789abcdef.%s.2.false..{\"k\":[1,\"\u00e9\"]}." \
                  "caf\u00e9 \u2615" % eid
        self.assertEqual(signed_message(req.body, fields), message.encode("utf-8"))
        self.assertEqual(req.header("X-Sig"), webhook_signature(secret, message),
                         "signature over the flagged values")
        # Standard Webhooks always signs the body
        self.check_signed(req, secret, "X-Sig", eid, t0, fields)

    # ---------------------------------------------------------------- unsigned
    def test_unsigned_webhook(self):
        agent, path, _ = self.hook(secret=False, secret_header="X-Sig")
        eid = str(uuid.uuid4())
        req, t0 = self.deliver(agent, path, {"eventId": eid, "reason": "r"})
        self.check_common_headers(req, eid, t0)
        for h in ("X-Sig", "X-HelpGenie-Signature", "webhook-signature", "webhook-id",
                  "webhook-timestamp"):
            self.assertIsNone(req.header(h), "%s sent for a webhook without secret" % h)

    # ------------------------------------------------------- delivery events
    def test_delivered_event(self):
        agent, path, secret = self.hook()
        eid = str(uuid.uuid4())
        self.deliver(agent, path, {"eventId": eid})
        ev = self.env.wait_delivery_event(agent, lambda e: e.get("eventId") == eid)
        self.assertIsNotNone(ev, "no delivery event for %s" % eid)
        m = self.env.delivery_sub.wait_for(lambda m: m.topic.endswith(agent), 1)
        self.assertEqual(m.qos, 0, "delivery events are QoS 0")
        self.assertEqual(ev["state"], "delivered")
        self.assertEqual(ev["attempt"], 1)
        self.assertEqual(ev["status"], 200)
        self.assertLessEqual(set(ev), {"eventId", "state", "attempt", "status", "error",
                                       "next_attempt_at", "latency_ms"})

    def test_client_error_fails_at_once(self):
        """A 4xx other than 408/425/429, and a 3xx (not followed), fail at
        once: one POST, a `failed` event."""
        done = []
        for status in (400, 410, 302):
            with self.subTest(status):
                agent, path, _ = self.hook()
                self.rx.program(path, [Response(status, "no", {"Location": self.url("/moved")})])
                eid = str(uuid.uuid4())
                self.deliver(agent, path, {"eventId": eid})
                ev = self.env.wait_delivery_event(agent, lambda e: e.get("eventId") == eid)
                self.assertIsNotNone(ev, "no delivery event after a %d" % status)
                self.assertEqual((ev["state"], ev["attempt"], ev.get("status")),
                                 ("failed", 1, status))
                done.append((status, agent, path))
        time.sleep(1.6)  # longer than the whole test retry schedule (0.5 s, 1 s)
        for status, agent, path in done:
            self.assertEqual(len(self.rx.requests(path)), 1, "%d was retried" % status)
            self.assertEqual(len(self.env.deliveries(agent)), 1)
        self.assertEqual(self.rx.requests("/moved"), [], "redirect followed")

    def test_skipped_without_active_webhook(self):
        agent_none = new_agent()
        agent_off, path_off, _ = self.hook(is_active=False)
        for agent in (agent_none, agent_off):
            self.env.escalate(agent, {"reason": "nobody home"})
        for agent in (agent_none, agent_off):
            with self.subTest(agent):
                ev = self.env.wait_delivery_event(agent)
                self.assertIsNotNone(ev, "no delivery event for a Genie without active webhook")
                self.assertEqual(ev["state"], "skipped")
        time.sleep(T_QUIET)
        self.assertEqual(self.rx.requests(path_off), [], "inactive webhook got a POST")

    def test_invalid_escalations_rejected(self):
        too_big = compact({"summary": "x" * (64 * 1024)})
        cases = [("array", b"[]"), ("string", b'"x"'), ("not JSON", b"nope"), ("empty", b""),
                 ("truncated", b'{"reason":'), ("reason number", compact({"reason": 5})),
                 ("summary object", compact({"summary": {}})),
                 ("callSid array", compact({"callSid": ["a"]})),
                 ("fields string", compact({"fields": "x"})),
                 ("fields array", compact({"fields": [1]})),
                 ("eventId not a UUID", compact({"eventId": "123"})),
                 ("eventId number", compact({"eventId": 5})),
                 ("invalid UTF-8", b'{"reason":"\xff"}'),
                 ("oversize", too_big)]
        planned = []
        for what, payload in cases:
            agent, path, _ = self.hook()
            planned.append((what, agent, path))
            self.env.escalate(agent, payload)
        for what, agent, path in planned:
            with self.subTest(what):
                ev = self.env.wait_delivery_event(agent)
                self.assertIsNotNone(ev, "%s: no `rejected` event" % what)
                self.assertEqual(ev["state"], "rejected", "%s: %r" % (what, ev))
        time.sleep(T_QUIET)
        for what, agent, path in planned:
            with self.subTest(what):
                self.assertEqual(self.rx.requests(path), [], "%s: POSTed" % what)
        self.assertTrue(self.env.hgd.running())

    def test_burst_each_delivered_once(self):
        """200 escalations published back to back: one POST each, none lost
        or doubled (Paho acknowledges what the callback does not take)."""
        agent, path, _ = self.hook()
        n = 200
        eids = [str(uuid.uuid4()) for _ in range(n)]
        key_id, secret = self.env.creds("ops")
        topic = "%s/escalation/%s" % (ROOT, agent)
        for eid in eids:
            self.env.client.signed_publish(topic, compact({"eventId": eid}), key_id, secret)
        reqs = self.rx.wait_for(path, n, timeout=60)
        time.sleep(0.5)
        got = [r.json()["eventId"] for r in self.rx.requests(path)]
        self.assertEqual(sorted(got), sorted(eids), "%d of %d delivered, %d duplicates"
                         % (len(set(got) & set(eids)), n, len(got) - len(set(got))))
        self.assertEqual(len(reqs), n)

    def test_slow_receiver_blocks_nothing(self):
        """While one receiver hangs, hgd still answers requests and delivers
        to other webhooks."""
        slow_agent, slow_path, _ = self.hook()
        self.rx.program(slow_path, [Response(200, "late", hang=4.0)])
        fast_agent, fast_path, _ = self.hook()
        self.env.escalate(slow_agent, {"reason": "slow"})
        self.assertEqual(len(self.rx.wait_for(slow_path, 1, timeout=5)), 1)
        t = time.monotonic()
        self.assertIsNone(self.env.get(new_agent()))
        self.env.escalate(fast_agent, {"reason": "fast"})
        self.assertEqual(len(self.rx.wait_for(fast_path, 1, timeout=3)), 1,
                         "delivery to another webhook waited for the slow one")
        self.assertLess(time.monotonic() - t, 2.0)
        ev = self.env.wait_delivery_event(slow_agent, lambda e: e.get("state") == "delivered",
                                          timeout=10)
        self.assertIsNotNone(ev, "the slow delivery did not complete")

    def test_current_row_is_used(self):
        """An escalation goes to the URL and secret of the row as it is now."""
        agent, path1, _ = self.hook()
        path2, secret2 = self.path(), self.env.secret()
        self.env.upsert({"agentId": agent, "url": self.url(path2), "secret": secret2})
        req, t0 = self.deliver(agent, path2, {"reason": "moved"})
        self.check_signed(req, secret2, "X-HelpGenie-Signature", req.json()["eventId"], t0)
        self.assertEqual(self.rx.requests(path1), [])


if __name__ == "__main__":
    hglib.main()
