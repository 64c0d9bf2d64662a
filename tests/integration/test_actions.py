#!/usr/bin/python3
"""Action requests and replies (PROTOCOL.md sections 1 and 3): every action's
envelope, the correlation echo, the webhook row, the retained fields topic,
and the test action's result."""

import calendar
import json
import threading
import time

import hglib
from hglib import (ISO_RE, MASK, ROOT, T_QUIET, HgTestCase, Response, new_agent, signed_message,
                   stdwh_signature, webhook_signature)

DEFAULT_KEYS = ["eventId", "eventType", "timestamp", "callerNumber", "callSid", "reason",
                "summary", "agentSessionId"]


class TestActions(HgTestCase):

    # ---------------------------------------------------------------- get
    def test_get_none(self):
        r = self.env.request("get", {"agentId": new_agent()}, correlation=b"\x00\xff corr\n")
        self.assertIsNone(self.assertOk(r))
        self.assertEqual(r.body, {"success": True, "data": None})
        self.assertEqual(r.correlation, b"\x00\xff corr\n")
        self.assertEqual(r.qos, 1, "replies are QoS 1")

    def test_correlation_echo_any_bytes_concurrent(self):
        """Concurrent requests each get their own correlation data back."""
        agent = new_agent()
        corrs = [bytes([i]) * (i + 1) for i in range(8)] + [bytes(range(256)), b"x" * 1000]
        out = {}

        def go(c):
            out[c] = self.env.request("get", {"agentId": agent}, correlation=c)
        ts = [threading.Thread(target=go, args=(c,)) for c in corrs]
        for t in ts:
            t.start()
        for t in ts:
            t.join(hglib.T_REPLY + 5)
        for c in corrs:
            self.assertIsNotNone(out.get(c), "no reply for correlation %r" % c[:10])
            self.assertEqual(out[c].correlation, c)
            self.assertOk(out[c])
        self.assertEqual(self.env.client.stray_replies, [], "replies with unknown correlation")

    # ------------------------------------------------------------- upsert
    def test_upsert_defaults_and_get(self):
        agent = new_agent(upper=True)
        url = self.url()
        t0 = time.time()
        row = self.assertOk(self.env.request("upsert", {"agentId": agent, "url": url}))
        self.assertRow(row, agent, url)
        self.assertEqual(row["created_at"], row["updated_at"])
        # created_at is "now" (ISO 8601 UTC, ms): within a few seconds.
        created = calendar.timegm(time.strptime(row["created_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertLess(abs(created - t0), 5, row["created_at"])
        # get by upper and lower case id returns the same row
        self.assertEqual(self.env.get(agent), row)
        self.assertEqual(self.env.get(agent.lower()), row)

    def test_upsert_full(self):
        agent = new_agent()
        url = self.url() + "?tenant=7&x=%20y"
        fields = ["callSid", {"key": "accountNumber", "hint": "the account, AC-…"},
                  {"key": "priority", "useForSignature": True},
                  {"key": "eventId", "hint": None, "useForSignature": False}]
        row = self.assertOk(self.env.request("upsert", {
            "agentId": agent, "url": url, "secret": self.env.secret(),
            "secret_header": "X-Acme-Signature", "custom_fields": fields,
            "is_active": False}))
        self.assertRow(row, agent, url, secret=True, header="X-Acme-Signature",
                       custom_fields=fields, active=False)
        self.assertEqual(row["custom_fields"], [
            {"key": "callSid", "hint": None, "useForSignature": False},
            {"key": "accountNumber", "hint": "the account, AC-…", "useForSignature": False},
            {"key": "priority", "hint": None, "useForSignature": True},
            {"key": "eventId", "hint": None, "useForSignature": False}])
        self.assertEqual(row["secret"], MASK)
        self.assertEqual(self.env.get(agent), row)

    def test_upsert_replaces_whole_configuration(self):
        agent = new_agent()
        first = self.env.upsert({"agentId": agent, "url": self.url(), "secret": self.env.secret(),
                                 "secret_header": "X-Sig", "custom_fields": ["a", "b"],
                                 "is_active": False})
        time.sleep(0.01)
        url2 = self.url()
        second = self.assertOk(self.env.request("upsert", {"agentId": agent, "url": url2}))
        self.assertRow(second, agent, url2)  # every omitted optional took its default
        self.assertEqual(second["id"], first["id"], "id is kept across upserts")
        self.assertEqual(second["created_at"], first["created_at"])
        self.assertGreater(second["updated_at"], first["updated_at"])
        self.assertEqual(self.env.get(agent), second)

    def test_upsert_null_secret_is_unsigned(self):
        agent = new_agent()
        row = self.env.upsert({"agentId": agent, "url": self.url(), "secret": None})
        self.assertIsNone(row["secret"])

    def test_request_without_response_topic_is_processed(self):
        agent = new_agent()
        url = self.url()
        self.env.request("upsert", {"agentId": agent, "url": url}, response_topic=False,
                         expect_reply=False)
        row = hglib.wait_until(lambda: self.env.get(agent), 10, what="row of a reply-less upsert")
        self.assertEqual(row["url"], url)

    # ------------------------------------------------------------- delete
    def test_delete(self):
        agent = new_agent()
        self.env.upsert({"agentId": agent, "url": self.url()})
        r = self.env.request("delete", {"agentId": agent.upper()}, correlation=b"del")
        self.assertEqual(self.assertOk(r), {"success": True})
        self.assertEqual(r.correlation, b"del")
        self.assertIsNone(self.env.get(agent))
        # nothing to delete: the same answer
        self.assertEqual(self.assertOk(self.env.request("delete", {"agentId": agent})),
                         {"success": True})
        self.assertEqual(self.assertOk(self.env.request("delete", {"agentId": new_agent()})),
                         {"success": True})

    # ------------------------------------------------------ fields topic
    def test_fields_topic_retained_and_emptied(self):
        agent = new_agent()
        topic = "%s/agent/%s/fields" % (ROOT, agent)
        live = self.env.client.subscribe(topic)
        self.env.upsert({"agentId": agent.upper(), "url": self.url(), "custom_fields": [
            {"key": "accountNumber", "hint": "the caller's account"}, "orderId",
            {"key": "priority", "useForSignature": True}]})
        m = self.env.client.retained(topic, timeout=5)
        self.assertIsNotNone(m, "no retained fields document on " + topic)
        self.assertEqual(m.qos, 1)
        self.assertEqual(m.json(), {"fields": [
            {"key": "accountNumber", "hint": "the caller's account"},
            {"key": "orderId", "hint": None},
            {"key": "priority", "hint": None}]})
        # delete: a zero-length retained message clears it
        self.env.request("delete", {"agentId": agent})
        empty = live.wait_for(lambda m: m.payload == b"", timeout=5)
        self.assertIsNotNone(empty, "no zero-length message on %s after delete: %r"
                             % (topic, live.messages))
        self.assertIsNone(self.env.client.retained(topic, timeout=T_QUIET),
                          "retained fields document still there after delete")

    # ----------------------------------------------------------- test action
    def _check_test_post(self, data, req, secret, header, fields=None):
        body = req.body
        self.assertEqual(json.loads(body), data["payload"], "payload is the JSON that was sent")
        self.assertEqual(list(json.loads(body)), list(data["payload"]), "key order")
        self.assertEqual(data["payload"]["eventType"], "escalation.test")
        self.assertEqual(req.header("Content-Type"), "application/json")
        self.assertEqual(req.header("X-HelpGenie-Attempt"), "1")
        if "eventId" in data["payload"]:
            self.assertEqual(req.header("X-HelpGenie-Event-Id"), data["payload"]["eventId"])
        self.assertEqual(data["signatureHeader"], header)
        if secret:
            expected = webhook_signature(secret, body, fields)
            self.assertIs(data["signed"], True)
            self.assertEqual(data["signature"], expected)
            self.assertEqual(req.header(header), expected)
            self.assertEqual(req.header("webhook-signature"),
                             stdwh_signature(secret, req.header("webhook-id"),
                                             req.header("webhook-timestamp"), body))
        else:
            self.assertIs(data["signed"], False)
            self.assertIsNone(data["signature"])
            self.assertIsNone(req.header(header))
            self.assertIsNone(req.header("webhook-signature"))

    def test_test_action_signed_default_fields(self):
        agent, path, secret = new_agent(), self.path(), self.env.secret()
        self.rx.program(path, [Response(201, "accepted \u2713")])
        self.env.upsert({"agentId": agent, "url": self.url(path), "secret": secret})
        r = self.env.request("test", {"agentId": agent}, correlation=b"t1", timeout=25)
        data = self.assertOk(r)
        self.assertEqual(r.correlation, b"t1")
        self.assertEqual(set(data), {"payload", "signature", "signatureHeader", "signed",
                                     "result"})
        self.assertEqual(list(data["payload"]), DEFAULT_KEYS)
        self.assertRegex(data["payload"]["timestamp"], ISO_RE)
        self.assertEqual(data["result"], {"status": 201, "body": "accepted \u2713"})
        reqs = self.rx.wait_for(path, 1, timeout=2)
        self.assertEqual(len(reqs), 1, "the test action sends exactly one POST")
        self.assertEqual(reqs[0].method, "POST")
        self._check_test_post(data, reqs[0], secret, "X-HelpGenie-Signature")

    def test_test_action_unsigned(self):
        agent, path = new_agent(), self.path()
        self.env.upsert({"agentId": agent, "url": self.url(path), "secret_header": "X-Sig"})
        data = self.assertOk(self.env.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(data["result"], {"status": 200, "body": "ok"})
        self._check_test_post(data, self.rx.wait_for(path, 1)[0], None, "X-Sig")

    def test_test_action_custom_and_flagged_fields(self):
        agent, path, secret = new_agent(), self.path(), self.env.secret()
        fields = [{"key": "callSid", "useForSignature": True}, "accountNumber",
                  {"key": "eventType", "useForSignature": True}, "reason"]
        self.env.upsert({"agentId": agent, "url": self.url(path), "secret": secret,
                         "secret_header": "X-Hub-Sig", "custom_fields": fields})
        data = self.assertOk(self.env.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(list(data["payload"]), ["callSid", "accountNumber", "eventType",
                                                 "reason"])
        self.assertEqual(data["payload"]["eventType"], "escalation.test")
        req = self.rx.wait_for(path, 1)[0]
        self.assertEqual(signed_message(req.body, fields).decode(),
                         "%s.escalation.test" % ("" if data["payload"]["callSid"] is None
                                                 else data["payload"]["callSid"]))
        self._check_test_post(data, req, secret, "X-Hub-Sig", fields)

    def test_test_action_error_status_and_body_cut(self):
        agent, path = new_agent(), self.path()
        big = "\u00e9" * 3000  # 6000 bytes of UTF-8
        split = "a" * 4095 + "\u20ac\u20ac"  # the 4 KiB limit splits the first euro sign
        self.rx.program(path, [Response(500, big), Response(302, "moved",
                                                            {"Location": self.url("/else")}),
                               Response(200, split)])
        self.env.upsert({"agentId": agent, "url": self.url(path)})
        data = self.assertOk(self.env.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(data["result"]["status"], 500)
        body = data["result"]["body"]
        self.assertTrue(big.startswith(body), "result.body is a prefix of the answer")
        self.assertLessEqual(len(body.encode("utf-8")), 4096, "body cut at 4 KiB")
        self.assertGreaterEqual(len(body.encode("utf-8")), 4094, "body cut at 4 KiB, not less")
        # a redirect is an answer, not followed
        data = self.assertOk(self.env.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(data["result"], {"status": 302, "body": "moved"})
        # a character split by the limit is dropped, not shown as U+FFFD (it
        # was: hostile testing)
        data = self.assertOk(self.env.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(data["result"], {"status": 200, "body": "a" * 4095})
        time.sleep(0.3)
        self.assertEqual(len(self.rx.requests(path)), 3)
        self.assertEqual(self.rx.requests("/else"), [], "redirect was followed")

    def test_test_action_not_found(self):
        r = self.env.request("test", {"agentId": new_agent()}, correlation=b"nf")
        self.assertError(r, "NOT_FOUND")
        self.assertEqual(r.correlation, b"nf")
        agent, path = new_agent(), self.path()
        self.env.upsert({"agentId": agent, "url": self.url(path), "is_active": False})
        self.assertError(self.env.request("test", {"agentId": agent}), "NOT_FOUND")
        self.env.upsert({"agentId": agent, "url": self.url(path)})
        self.env.request("delete", {"agentId": agent})
        self.assertError(self.env.request("test", {"agentId": agent}), "NOT_FOUND")
        time.sleep(0.2)
        self.assertEqual(self.rx.requests(path), [], "NOT_FOUND yet a POST was sent")

    def test_test_action_network_error(self):
        """A refused connection is a result.error, not an action error."""
        agent = new_agent()
        self.env.upsert({"agentId": agent, "url": "https://127.0.0.1:%d/x" % hglib.free_port()})
        data = self.assertOk(self.env.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(set(data["result"]), {"error"}, data["result"])
        self.assertIsInstance(data["result"]["error"], str)
        self.assertTrue(data["result"]["error"])

    def test_test_action_egress_refused(self):
        """0.0.0.0 reaches this host's listeners, but the egress policy refuses
        the unspecified address (only 127.0.0.0/8 is allowed in the tests)."""
        agent, path = new_agent(), self.path()
        self.env.upsert({"agentId": agent,
                         "url": "https://0.0.0.0:%d%s" % (self.rx.port, path)})
        data = self.assertOk(self.env.request("test", {"agentId": agent}, timeout=25))
        self.assertEqual(set(data["result"]), {"error"}, data["result"])
        time.sleep(0.2)
        self.assertEqual(self.rx.requests(path), [], "egress policy did not stop the POST")

    def test_test_action_tls_verified(self):
        """An untrusted certificate and a name mismatch are result.error."""
        import os
        other = hglib.make_test_ca(os.path.join(self.env.tmp, "other-ca"))
        rogue = hglib.Receiver(other[1], other[2]).start()
        mismatch = hglib.Receiver(self.env.cert, self.env.key, host="127.0.0.2").start()
        try:
            for rx, what in ((rogue, "untrusted CA"), (mismatch, "host name mismatch")):
                with self.subTest(what):
                    agent = new_agent()
                    self.env.upsert({"agentId": agent, "url": rx.url("/tls")})
                    data = self.assertOk(self.env.request("test", {"agentId": agent},
                                                          timeout=25))
                    self.assertEqual(set(data["result"]), {"error"}, data["result"])
                    self.assertEqual(rx.requests(), [], "TLS accepted: " + what)
        finally:
            rogue.stop()
            mismatch.stop()


if __name__ == "__main__":
    hglib.main()
