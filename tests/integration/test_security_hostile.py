#!/usr/bin/python3
"""Hostile input (issue 5 item 4): a table of hostile requests and
escalations, each answered with the right error — VALIDATION_ERROR or
UNAUTHORIZED for requests, `rejected` on the delivery topic for escalations
— and the state directory's files byte for byte unchanged (sha256 of
webhooks.jsonl and outbox.jsonl before and after the whole table, and the
shared Genie's row unchanged).

Oversize, deep nesting, invalid and overlong UTF-8, NUL bytes, huge numbers,
duplicate keys, wrong types everywhere, header injection through
secret_header and custom field keys, CRLF/space in the URL, user info,
fragments, other schemes, IDN, a 2049-byte URL, 65 custom fields, a 1025-byte
hint, unknown parameters, non-object payloads, missing response topic, bad
signatures and keys without the right …
"""

import json
import os
import time

import hglib
import seclib
from hglib import ROOT, T_QUIET, HgTestCase, new_agent

A = None  # the shared Genie, set in setUpClass


def j(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def nest(depth, inner=b"1"):
    return b"[" * depth + inner + b"]" * depth


def upsert(**kw):
    """A valid upsert of the shared Genie with kw changed (a value of DROP
    removes the parameter)."""
    p = {"agentId": A, "url": "https://hooks.example.com/hostile", "secret": "whsec_hostile_base",
         "secret_header": "X-Sig", "custom_fields": ["accountNumber"], "is_active": True}
    for k, v in kw.items():
        if v is DROP:
            p.pop(k, None)
        else:
            p[k] = v
    return p


DROP = object()
V, U = "VALIDATION_ERROR", "UNAUTHORIZED"


def request_cases():
    """(label, action, payload (dict or bytes), code, word the message names,
    signing key or None for ops, sign options)."""
    big = "https://hooks.example.com/" + "a" * (65 * 1024)
    deep33 = b'{"agentId":"%s","url":"https://h.example/","custom_fields":%s}' % (
        A.encode(), nest(33, b'"k"'))
    cases = [
        # size and nesting, before any parsing
        ("oversize payload (65 KiB)", "upsert", j(upsert(url=big)), V, "larger"),
        ("oversize get", "get", j({"agentId": A, "pad": "x" * 70000}), V, "larger"),
        ("nesting 33 deep", "upsert", deep33, V, "nested"),
        ("nesting 5000 deep", "upsert", nest(5000), V, "nested"),
        # encoding
        ("invalid UTF-8 byte in url", "upsert",
         j(upsert()).replace(b"/hostile", b"/\xff"), V, "UTF-8"),
        ("overlong UTF-8 '/' (C0 AF) in secret", "upsert",
         j(upsert(secret="x")).replace(b'"x"', b'"\xc0\xaf"'), V, "UTF-8"),
        ("overlong 3-byte (E0 80 AF) in hint", "upsert",
         j(upsert(custom_fields=[{"key": "k", "hint": "x"}])).replace(b'"x"', b'"\xe0\x80\xaf"'),
         V, "UTF-8"),
        ("UTF-8 encoded surrogate (ED A0 80)", "upsert",
         j(upsert(secret="x")).replace(b'"x"', b'"\xed\xa0\x80"'), V, "UTF-8"),
        ("code point past U+10FFFF (F4 90 80 80)", "upsert",
         j(upsert(secret="x")).replace(b'"x"', b'"\xf4\x90\x80\x80"'), V, "UTF-8"),
        ("truncated UTF-8 sequence at the end of a string", "upsert",
         j(upsert(secret="x")).replace(b'"x"', b'"\xe2\x82"'), V, "UTF-8"),
        ("lone surrogate escape \\ud800", "upsert",
         j(upsert(secret="x")).replace(b'"x"', b'"\\ud800"'), V,
         'lone surrogate escape (in "secret")'),
        ("raw NUL byte", "upsert", j(upsert(secret="x")).replace(b'"x"', b'"a\x00b"'), V, "NUL"),
        ("\\u0000 escape in secret", "upsert",
         j(upsert(secret="x")).replace(b'"x"', b'"a\\u0000b"'), V, 'u0000 (in "secret")'),
        ("raw control character in a string", "upsert",
         j(upsert(secret="x")).replace(b'"x"', b'"a\x01b"'), V, "control"),
        # numbers and duplicates
        ("huge number 1e999", "upsert", j(upsert(is_active=True)).replace(b"true", b"1e999"),
         V, None),
        ("400-digit number as agentId", "upsert",
         j(upsert()).replace(('"%s"' % A).encode(), b"9" * 400, 1), V, "JSON"),
        ("30-digit integer as agentId", "upsert",
         j(upsert()).replace(('"%s"' % A).encode(), b"9" * 30, 1), V, "agentId"),
        ("huge negative exponent in is_active", "upsert",
         j(upsert(is_active=True)).replace(b"true", b"-1e-99999"), V, "is_active"),
        ("duplicate agentId", "upsert",
         b'{"agentId":"%s","agentId":"%s","url":"https://h.example/"}'
         % (A.encode(), new_agent().encode()), V, "duplicate"),
        ("duplicate url (second javascript:)", "upsert",
         b'{"agentId":"%s","url":"https://h.example/","url":"javascript:alert(1)"}' % A.encode(),
         V, "duplicate"),
        ("duplicate property inside a custom field", "upsert",
         j(upsert(custom_fields=[{"key": "k"}])).replace(b'{"key":"k"}',
                                                        b'{"key":"k","key":"Host"}'),
         V, "duplicate"),
        # wrong types everywhere
        ("agentId number", "upsert", j(upsert(agentId=42)), V, "agentId"),
        ("agentId null", "upsert", j(upsert(agentId=None)), V, "agentId"),
        ("agentId with braces", "upsert", j(upsert(agentId="{%s}" % A)), V, "agentId"),
        ("agentId with trailing newline", "upsert", j(upsert(agentId=A + "\n")), V, "agentId"),
        ("url number", "upsert", j(upsert(url=1)), V, "url"),
        ("url array", "upsert", j(upsert(url=["https://h.example/"])), V, "url"),
        ("url object", "upsert", j(upsert(url={"href": "https://h.example/"})), V, "url"),
        ("url missing", "upsert", j(upsert(url=DROP)), V, "url"),
        ("secret number", "upsert", j(upsert(secret=123456)), V, "secret"),
        ("secret true", "upsert", j(upsert(secret=True)), V, "secret"),
        ("secret object", "upsert", j(upsert(secret={"v": "s"})), V, "secret"),
        ("secret_header number", "upsert", j(upsert(secret_header=1)), V, "secret_header"),
        ("secret_header null", "upsert", j(upsert(secret_header=None)), V, "secret_header"),
        ("custom_fields object", "upsert", j(upsert(custom_fields={"k": "v"})), V,
         "custom_fields"),
        ("custom_fields item number", "upsert", j(upsert(custom_fields=[7])), V, "custom_fields"),
        ("custom_fields useForSignature string", "upsert",
         j(upsert(custom_fields=[{"key": "k", "useForSignature": "true"}])), V, "useForSignature"),
        ("custom_fields hint number", "upsert",
         j(upsert(custom_fields=[{"key": "k", "hint": 5}])), V, "hint"),
        ("is_active string", "upsert", j(upsert(is_active="true")), V, "is_active"),
        ("is_active null", "upsert", j(upsert(is_active=None)), V, "is_active"),
        ("is_active number", "upsert", j(upsert(is_active=1)), V, "is_active"),
        # header injection
        ("secret_header CRLF injection", "upsert", j(upsert(secret_header="X-A\r\nX-B: 1")), V,
         "secret_header"),
        ("secret_header LF injection", "upsert", j(upsert(secret_header="X-A\nX-B: 1")), V,
         "secret_header"),
        ("secret_header with colon and value", "upsert", j(upsert(secret_header="X-A: b")), V,
         "secret_header"),
        ("secret_header with space", "upsert", j(upsert(secret_header="X A")), V,
         "secret_header"),
        ("secret_header non-ASCII", "upsert", j(upsert(secret_header="X-\u00e9")), V,
         "secret_header"),
        ("secret_header Host", "upsert", j(upsert(secret_header="host")), V, "secret_header"),
        ("secret_header Content-Length", "upsert", j(upsert(secret_header="Content-Length")), V,
         "secret_header"),
        ("secret_header webhook-signature", "upsert",
         j(upsert(secret_header="Webhook-Signature")), V, "secret_header"),
        ("secret_header 65 bytes", "upsert", j(upsert(secret_header="X" * 65)), V,
         "secret_header"),
        ("secret_header empty", "upsert", j(upsert(secret_header="")), V, "secret_header"),
        ("custom field key CRLF injection", "upsert",
         j(upsert(custom_fields=["a\r\nX-Injected: 1"])), V, "custom_fields"),
        ("custom field key with colon", "upsert", j(upsert(custom_fields=["x:y"])), V,
         "custom_fields"),
        ("custom field key with space", "upsert", j(upsert(custom_fields=["a b"])), V,
         "custom_fields"),
        ("custom field key with quote", "upsert", j(upsert(custom_fields=['a"b'])), V,
         "custom_fields"),
        ("custom field key 65 bytes", "upsert", j(upsert(custom_fields=["k" * 65])), V,
         "custom_fields"),
        ("custom field key empty", "upsert", j(upsert(custom_fields=[""])), V, "custom_fields"),
        ("custom field key non-ASCII", "upsert", j(upsert(custom_fields=["k\u00e9"])), V,
         "custom_fields"),
        ("custom field unknown property", "upsert",
         j(upsert(custom_fields=[{"key": "k", "header": "X-A"}])), V, "custom_fields"),
        ("custom field keys duplicated", "upsert", j(upsert(custom_fields=["k", "k"])), V,
         "custom_fields"),
        ("65 custom fields", "upsert", j(upsert(custom_fields=["k%d" % i for i in range(65)])),
         V, "custom_fields"),
        ("hint 1025 bytes", "upsert",
         j(upsert(custom_fields=[{"key": "k", "hint": "h" * 1025}])), V, "hint"),
        # URLs
        ("CRLF in url", "upsert", j(upsert(url="https://h.example/x\r\nHost: evil")), V, "url"),
        ("space in url", "upsert", j(upsert(url="https://h.example/a b")), V, "url"),
        ("tab in host", "upsert", j(upsert(url="https://h.exa\tmple/")), V, "url"),
        ("user info url", "upsert", j(upsert(url="https://user:pw@h.example/")), V, "url"),
        ("user name only", "upsert", j(upsert(url="https://user@h.example/")), V, "url"),
        ("backslash user info trick", "upsert", j(upsert(url="https://h.example\\@127.0.0.1/")),
         V, "url"),
        ("fragment", "upsert", j(upsert(url="https://h.example/#frag")), V, "url"),
        ("javascript: scheme", "upsert", j(upsert(url="javascript:alert(1)")), V, "url"),
        ("file: scheme", "upsert", j(upsert(url="file:///etc/passwd")), V, "url"),
        ("gopher: scheme", "upsert", j(upsert(url="gopher://127.0.0.1:25/_HELO")), V, "url"),
        ("ftp: scheme", "upsert", j(upsert(url="ftp://h.example/")), V, "url"),
        ("dict: scheme", "upsert", j(upsert(url="dict://127.0.0.1:11211/")), V, "url"),
        ("http: without --allow-http", "upsert", j(upsert(url="http://h.example/")), V, "url"),
        ("scheme-relative", "upsert", j(upsert(url="//h.example/")), V, "url"),
        ("IDN host", "upsert", j(upsert(url="https://b\u00fccher.example/")), V, "url"),
        ("IDN homograph", "upsert", j(upsert(url="https://\u0430pple.com/")), V, "url"),
        ("2049-byte url", "upsert",
         j(upsert(url="https://h.example/" + "a" * (2049 - len("https://h.example/")))), V, "url"),
        ("no host", "upsert", j(upsert(url="https:///path")), V, "url"),
        ("port 99999", "upsert", j(upsert(url="https://h.example:99999/")), V, "url"),
        ("port 0", "upsert", j(upsert(url="https://h.example:0/")), V, "url"),
        ("percent-encoded host", "upsert", j(upsert(url="https://%6c%6fcalhost/")), V, "url"),
        ("IPv6 zone id", "upsert", j(upsert(url="https://[fe80::1%25eth0]/")), V, "url"),
        # secrets
        ("secret 1025 bytes", "upsert", j(upsert(secret="s" * 1025)), V, "secret"),
        ("secret empty", "upsert", j(upsert(secret="")), V, "secret"),
        ("secret = the reply mask", "upsert", j(upsert(secret=hglib.MASK)), V, "secret"),
        # parameters and payload shapes
        ("unknown parameter", "upsert", j(upsert(foo=1)), V, "unknown parameter"),
        ("unknown parameter __proto__", "upsert", j(upsert(__proto__={"isAdmin": True})), V,
         "unknown parameter"),
        ("camelCase variant of a parameter", "upsert", j(upsert(isActive=True)), V,
         "unknown parameter"),
        ("get with an extra parameter", "get", j({"agentId": A, "url": "x"}), V,
         "unknown parameter"),
        ("delete with agentId array", "delete", j({"agentId": [A]}), V, "agentId"),
        ("test with agentId number", "test", j({"agentId": 1}), V, "agentId"),
        ("array payload", "upsert", j([upsert()]), V, "object"),
        ("empty payload", "upsert", b"", V, None),
        ("null payload", "get", b"null", V, "object"),
        ("string payload", "get", b'"x"', V, "object"),
        ("number payload", "delete", b"1", V, "object"),
        ("trailing garbage", "upsert", j(upsert()) + b"x", V, "JSON"),
        ("two JSON values", "upsert", j(upsert()) + j(upsert()), V, "JSON"),
        ("JSON with a comment", "upsert", b"/* c */" + j(upsert()), V, "JSON"),
        ("single quotes", "get", b"{'agentId':'%s'}" % A.encode(), V, "JSON"),
        ("unknown action", "drop", j({"agentId": A}), V, "unknown action"),
        ("unknown action in another case", "Upsert", j(upsert()), V, "unknown action"),
        ("unknown action with a NUL-free odd name", "get%00", j({"agentId": A}), V,
         "unknown action"),
    ]
    return [(c[0], c[1], c[2], c[3], c[4], None, None) for c in cases]


def unauthorized_cases(env):
    ops_secret = env.keys["ops"]["secret"]
    return [
        ("unsigned request", "upsert", j(upsert()), U, None, None, {"omit": ("hg-key", "hg-ts",
                                                                            "hg-nonce", "hg-sig")}),
        ("wrong secret", "upsert", j(upsert()), U, "signature", ("ops", "hgk_wrong"), None),
        ("signature in upper case", "upsert", j(upsert()), U, "signature", None,
         {"override": {"hg-sig": hglib.request_signature(
             ops_secret, "%s/webhook/upsert" % ROOT, str(int(time.time())), "ab" * 16,
             j(upsert())).upper(), "hg-ts": str(int(time.time())), "hg-nonce": "ab" * 16}}),
        ("stale timestamp", "upsert", j(upsert()), U, None, None, {"ts_offset": -3600}),
        ("nonce too short", "upsert", j(upsert()), U, "nonce", None, {"nonce_": "abc"}),
        ("unknown key id", "upsert", j(upsert()), U, None, ("nobody", ops_secret), None),
        ("reader key upserts", "upsert", j(upsert()), U, "upsert", "reader", None),
        ("limited key, other Genie", "upsert", j(upsert()), U, None, "limited", None),
        ("key with upsert right: validation still applies", "upsert", j(upsert(secret=1)), V,
         "secret", "noescalate", None),
    ]


def escalation_cases():
    """(label, payload bytes, sign key or None for ops, topic agent or None)."""
    base = {"reason": "r", "summary": "s", "fields": {"accountNumber": "AC-1"}}
    return [
        ("array payload", b'[{"reason":"r"}]', None),
        ("empty payload", b"", None),
        ("null payload", b"null", None),
        ("invalid JSON", b'{"reason":', None),
        ("trailing garbage", j(base) + b"}", None),
        ("eventId not a UUID", j(dict(base, eventId="not-a-uuid")), None),
        ("eventId number", j(dict(base, eventId=1)), None),
        ("eventId with braces", j(dict(base, eventId="{%s}" % new_agent())), None),
        ("reason number", j(dict(base, reason=1)), None),
        ("summary object", j(dict(base, summary={"a": 1})), None),
        ("callerNumber array", j(dict(base, callerNumber=["+1"])), None),
        ("fields array", j(dict(base, fields=[1, 2])), None),
        ("fields string", j(dict(base, fields="x")), None),
        ("oversize (65 KiB)", j(dict(base, summary="s" * (65 * 1024))), None),
        ("nesting 33 deep in fields", b'{"fields":{"a":%s}}' % nest(32), None),
        ("invalid UTF-8 in summary", j(base).replace(b'"s"', b'"\xff\xfe"'), None),
        ("overlong UTF-8 in reason", j(base).replace(b'"r"', b'"\xc1\x81"'), None),
        ("raw NUL byte", j(base).replace(b'"s"', b'"a\x00"'), None),
        ("\\u0000 in summary", j(base).replace(b'"s"', b'"a\\u0000"'), None),
        ("lone surrogate escape", j(base).replace(b'"s"', b'"\\udc00"'), None),
        ("duplicate reason", b'{"reason":"a","reason":"b"}', None),
        ("duplicate eventId", b'{"eventId":"%s","eventId":"%s"}'
         % (new_agent().encode(), new_agent().encode()), None),
        ("huge number 1e999 in fields", b'{"fields":{"n":1e999}}', None),
        ("wrong secret", j(base), ("ops", "hgk_wrong")),
        ("key without escalate", j(base), "noescalate"),
        ("node key for another Genie", j(base), "node"),
        ("reader key", j(base), "reader"),
    ]


class TestHostileInput(HgTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        global A
        e = cls.env
        A = cls.agent = new_agent()
        cls.path = "/hostile/%s" % A[:8]
        cls.row = e.upsert({"agentId": A, "url": e.receiver.url(cls.path), "secret": e.secret(),
                            "secret_header": "X-Sig", "custom_fields": [
                                "accountNumber", {"key": "reason", "useForSignature": True}]})
        # One accepted and delivered escalation, so the outbox file exists.
        e.escalate(A, {"reason": "warm-up"})
        assert e.receiver.wait_for(cls.path, 1), "warm-up escalation not delivered"
        assert e.wait_delivery_event(A, lambda ev: ev.get("state") == "delivered")
        cls.store = os.path.join(e.state_dir, "webhooks.jsonl")
        cls.outbox = os.path.join(e.state_dir, "outbox.jsonl")
        time.sleep(0.3)  # the "done" record of the warm-up is written after the event

    def digests(self):
        return {p: seclib.file_digest(p) for p in (self.store, self.outbox)}

    def test_requests(self):
        e = self.env
        cases = request_cases() + unauthorized_cases(e)
        self.assertGreaterEqual(len(cases), 40)
        before = self.digests()
        self.assertIsNotNone(before[self.store])
        for label, action, payload, code, mention, key, sign in cases:
            with self.subTest(label):
                r = e.request(action, payload, key=key or "ops", sign=sign)
                self.assertError(r, code, mention)
                self.assertTrue(e.hgd.running(), "hgd died on %s" % label)
        self.assertEqual(self.digests(), before, "the state files changed")
        self.assertEqual(e.get(A), self.row)
        self.assertEqual(self.rx.requests("/hostile-never"), [])
        sys_stderr(len(cases), "requests")

    def test_request_without_response_topic(self):
        """Processed, only logged: no reply anywhere, nothing changed."""
        e = self.env
        before = self.digests()
        strays = len(e.client.stray_replies)
        e.request("upsert", j(upsert(secret_header="X-A\r\nX-B: 1")), response_topic=False,
                  expect_reply=False)
        e.request("upsert", b"[]", response_topic=False, expect_reply=False)
        hglib.wait_until(lambda: e.hgd.log_text().count("event=request.reply_unsent") >= 2, 5,
                         what="request.reply_unsent in the log")
        time.sleep(T_QUIET)
        self.assertEqual(len(e.client.stray_replies), strays)
        self.assertEqual(self.digests(), before)
        self.assertEqual(e.get(A), self.row)

    def test_escalations(self):
        e = self.env
        cases = escalation_cases()
        before = self.digests()
        for label, payload, key in cases:
            with self.subTest(label):
                n = len(e.deliveries(A))
                e.escalate(A, payload, key=key or "ops")
                hglib.wait_until(lambda: len(e.deliveries(A)) > n, hglib.T_DELIVER,
                                 what="a delivery event for %s" % label)
                got = e.deliveries(A)[n]
                self.assertEqual(got["state"], "rejected", got)
                self.assertEqual(got["attempt"], 0, got)
                self.assertTrue(got.get("error"), got)
                self.assertNotIn("status", got)
        time.sleep(T_QUIET)
        self.assertEqual(len(self.rx.requests(self.path)), 1, "a hostile escalation was POSTed")
        self.assertEqual(self.digests(), before, "the state files changed")
        sys_stderr(len(cases), "escalations")

    def test_escalation_topic_agent_not_uuid(self):
        """A topic whose agentId is not a UUID: dropped, counted, no event
        (there is no well-formed Genie to report on)."""
        e = self.env
        before = self.digests()
        n = len(e.delivery_sub.messages)
        for bad in ("not-a-uuid", A + "x", A.replace("-", ""), "%s/extra" % A):
            e.escalate(A, {"reason": "r"}, topic="%s/escalation/%s" % (ROOT, bad))
        time.sleep(T_QUIET)
        self.assertEqual(len(e.delivery_sub.messages), n)
        self.assertEqual(self.digests(), before)
        self.assertTrue(e.hgd.running())


class TestResponseTopicAbuse(HgTestCase):
    """A request chooses where its reply goes. hgd must not publish it where
    it cannot (a wildcard: the broker drops hgd's connection for a protocol
    error, and the queued reply does it again after every reconnect) or
    where it must not (hgd's own status, fields, delivery, request and
    escalation topics, which subscribers trust to come from hgd; `$` topics).
    Signed or not: an UNAUTHORIZED reply is a reply too."""

    def publish_with(self, rt, signed=True, action="get", agent=None):
        e = self.env
        topic = "%s/webhook/%s" % (ROOT, action)
        payload = j({"agentId": agent or new_agent()})
        props = hglib.auth_props(topic, payload, "ops", e.keys["ops"]["secret"]) if signed \
            else None
        e.client.publish(topic, payload, user_props=props, response_topic=rt,
                         correlation=b"abuse")

    def test_refused_response_topics(self):
        e = self.env
        a = new_agent()
        watch = e.client.subscribe("#")
        bad = ["a/#", "#", "a/+/b", "+", "$SYS/hgd", "$share/g/x",
               "%s/status/%s" % (ROOT, e.instance), "%s/agent/%s/fields" % (ROOT, a),
               "%s/delivery/%s" % (ROOT, a), "%s/webhook/upsert" % ROOT,
               "%s/escalation/%s" % (ROOT, a), ROOT, "%s/reply/#" % ROOT,
               # past brokers' topic limits (mosquitto drops a publisher at
               # 200 levels): one unsigned request kept hgd off the broker,
               # reconnecting and failing again, until restarted
               "x/" * 300 + "end", "x/" * 32 + "end", "r" * 1025]
        for rt in bad:
            for signed in (True, False):
                with self.subTest(rt=rt, signed=signed):
                    self.publish_with(rt, signed, agent=a)
        # Still connected and serving, at once.
        t0 = time.monotonic()
        self.assertOk(e.request("get", {"agentId": a}, timeout=3))
        self.assertLess(time.monotonic() - t0, 3)
        time.sleep(T_QUIET)
        log = e.hgd.log_text()
        self.assertNotIn("event=mqtt.connection_lost", log)
        self.assertEqual(log.count("event=request.reply_refused"), 2 * len(bad), log[-3000:])
        envelopes = [m for m in watch.matching(lambda m: m.payload.startswith(b'{"success"'))
                     if m.topic != e.client.reply_topic]
        self.assertEqual(envelopes, [], "replies published on refused topics")
        e.client.unsubscribe(watch)

    def test_allowed_response_topics(self):
        """Topics outside hgd's tree, and <root>/reply/…, get their replies."""
        e = self.env
        for rt in ("other/app/replies", "%s/reply/custom-%s" % (ROOT, new_agent()[:8]),
                   "%s-other/status" % ROOT, "d/" * 31 + "end", "r" * 1024):
            with self.subTest(rt):
                sub = e.client.subscribe(rt)
                self.publish_with(rt)
                m = sub.wait_for(timeout=hglib.T_REPLY)
                self.assertIsNotNone(m, "no reply on %s" % rt)
                self.assertIs(m.json()["success"], True)
                e.client.unsubscribe(sub)


def sys_stderr(n, what):
    import sys
    sys.stderr.write("  (%d hostile %s)\n" % (n, what))


if __name__ == "__main__":
    hglib.main()
