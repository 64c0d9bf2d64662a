#!/usr/bin/python3
"""VALIDATION_ERROR for every rule of PROTOCOL.md section 3, with the store
unchanged after each bad request (get before and after), and the boundary
values that must pass."""

import copy
import json

import hglib
from hglib import HgTestCase, new_agent

RESERVED_HEADERS = ["Host", "host", "Content-Type", "content-length", "Transfer-Encoding",
                    "Connection", "USER-AGENT", "X-HelpGenie-Event-Id", "x-helpgenie-attempt",
                    "webhook-id", "Webhook-Signature", "webhook-timestamp", "webhook-anything"]


def _drop(k):
    return lambda p: p.pop(k)


def _set(k, v):
    return lambda p: p.__setitem__(k, v)


class TestValidation(HgTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.agent = new_agent()
        cls.base = {"agentId": cls.agent, "url": env.receiver.url("/v/base"),
                    "secret": env.secret(), "secret_header": "X-Sig",
                    "custom_fields": ["accountNumber", {"key": "priority", "hint": "1-5",
                                                        "useForSignature": True}],
                    "is_active": True}
        cls.row = env.upsert(cls.base)

    def tearDown(self):
        # Whatever a test sent, the row of the shared Genie is as it was.
        self.assertEqual(self.env.get(self.agent), self.row, "store changed by bad input")

    def check(self, r, mention, what):
        self.assertError(r, "VALIDATION_ERROR", mention,
                         msg=None if r is None or r.code == "VALIDATION_ERROR" else
                         "%s: expected VALIDATION_ERROR, got %r" % (what, r.body))

    def bad(self, action, payload, mention=None, what=None):
        self.check(self.env.request(action, payload), mention, what)

    def bad_many(self, cases, mention):
        """cases: (what, action, payload). All are sent first, then each reply
        is checked (hgd answers them in any order; correlation data tells)."""
        sent = [(what, self.env.send_request(action, payload)) for what, action, payload in cases]
        for what, corr in sent:
            with self.subTest(what):
                self.check(self.env.client.wait_reply(corr), mention, what)

    def upsert_cases(self, cases, mention):
        """Each mutation of the base upsert, for the shared Genie (whose row
        must not change) and for a fresh one (which must get no row)."""
        batch, fresh = [], []
        for what, mutate in cases:
            p = copy.deepcopy(self.base)
            mutate(p)
            batch.append((what, "upsert", p))
            if p.get("agentId") == self.agent:
                q = dict(p, agentId=new_agent())
                fresh.append(q["agentId"])
                batch.append((what + " (new Genie)", "upsert", q))
        self.bad_many(batch, mention)
        for agent in fresh:
            self.assertIsNone(self.env.get(agent), "row created by bad input")

    # ------------------------------------------------------------ agentId
    def test_agent_id(self):
        a = self.agent
        self.upsert_cases([
            ("missing", _drop("agentId")),
            ("number", _set("agentId", 42)),
            ("null", _set("agentId", None)),
            ("not a uuid", _set("agentId", "not-a-uuid")),
            ("no dashes", _set("agentId", a.replace("-", ""))),
            ("too long", _set("agentId", a + "0")),
            ("too short", _set("agentId", a[:-1])),
            ("braces", _set("agentId", "{%s}" % a)),
            ("non-hex", _set("agentId", "g" + a[1:])),
            ("empty", _set("agentId", "")),
            ("dashes moved", _set("agentId", a[:7] + "-" + a[7] + a[9:])),
        ], "agentId")

    # ---------------------------------------------------------------- url
    def test_url(self):
        host = "https://127.0.0.1:%d" % self.env.receiver.port
        self.upsert_cases([
            ("missing", _drop("url")),
            ("number", _set("url", 42)),
            ("null", _set("url", None)),
            ("empty", _set("url", "")),
            ("http without --allow-http", _set("url", "http://127.0.0.1/x")),
            ("ftp", _set("url", "ftp://127.0.0.1/x")),
            ("relative", _set("url", "hooks.example.com/x")),
            ("no host", _set("url", "https:///x")),
            ("scheme only", _set("url", "https://")),
            ("user-info", _set("url", "https://user:pw@127.0.0.1/x")),
            ("user only", _set("url", "https://user@127.0.0.1/x")),
            ("fragment", _set("url", host + "/x#frag")),
            ("2049 bytes", _set("url", host + "/" + "a" * (2049 - len(host) - 1))),
        ], "url")

    def test_url_accepted_forms(self):
        host = "https://127.0.0.1:%d" % self.env.receiver.port
        for what, url in (("2048 bytes", host + "/" + "a" * (2048 - len(host) - 1)),
                          ("query", host + "/x?a=1&b=%20"),
                          ("name", "https://hooks.example.com/esc"),
                          ("ipv6", "https://[::1]:8443/x")):
            with self.subTest(what):
                agent = new_agent()
                row = self.assertOk(self.env.request("upsert", {"agentId": agent, "url": url}))
                self.assertEqual(row["url"], url)

    # ------------------------------------------------------------- secret
    def test_secret(self):
        self.upsert_cases([
            ("empty", _set("secret", "")),
            ("1025 bytes", _set("secret", "s" * 1025)),
            ("1025 bytes of UTF-8", _set("secret", "s" * 1023 + "\u00e9")),
            ("number", _set("secret", 42)),
            ("boolean", _set("secret", True)),
            ("array", _set("secret", ["a"])),
            ("object", _set("secret", {"a": 1})),
        ], "secret")

    def test_secret_accepted_forms(self):
        for what, s in (("1024 bytes", "s" * 1024), ("1 byte", "s"), ("utf-8", "g\u00e9heim")):
            with self.subTest(what):
                self.env.secrets.add(s) if len(s) > 8 else None
                row = self.env.upsert({"agentId": new_agent(), "url": self.base["url"],
                                       "secret": s})
                self.assertEqual(row["secret"], hglib.MASK)

    # ------------------------------------------------------ secret_header
    def test_secret_header(self):
        cases = [("empty", _set("secret_header", "")),
                 ("65 bytes", _set("secret_header", "X" * 65)),
                 ("space", _set("secret_header", "X Sig")),
                 ("colon", _set("secret_header", "X:Sig")),
                 ("CRLF", _set("secret_header", "X-Sig\r\nX-Evil: 1")),
                 ("slash", _set("secret_header", "X/Sig")),
                 ("non-ASCII", _set("secret_header", "X-Sig\u00e9")),
                 ("number", _set("secret_header", 42))]
        cases += [("reserved " + h, _set("secret_header", h)) for h in RESERVED_HEADERS]
        self.upsert_cases(cases, "secret_header")

    def test_secret_header_accepted_forms(self):
        for h in ("X" * 64, "x-hub-signature-256", "Sig!#$%&'*+-.^_`|~09", "Signature",
                  "X-HelpGenie-Signature2"):
            with self.subTest(h):
                row = self.env.upsert({"agentId": new_agent(), "url": self.base["url"],
                                       "secret_header": h})
                self.assertEqual(row["secret_header"], h)

    # ------------------------------------------------------ custom_fields
    def test_custom_fields(self):
        self.upsert_cases([
            ("object", _set("custom_fields", {"key": "a"})),
            ("string", _set("custom_fields", "accountNumber")),
            ("number", _set("custom_fields", 3)),
            ("65 items", _set("custom_fields", ["k%d" % i for i in range(65)])),
            ("item number", _set("custom_fields", [42])),
            ("item null", _set("custom_fields", [None])),
            ("item array", _set("custom_fields", [["a"]])),
            ("item bool", _set("custom_fields", [True])),
            ("object without key", _set("custom_fields", [{"hint": "h"}])),
            ("key number", _set("custom_fields", [{"key": 5}])),
            ("key null", _set("custom_fields", [{"key": None}])),
            ("unknown property", _set("custom_fields", [{"key": "a", "extra": 1}])),
            ("empty key", _set("custom_fields", [""])),
            ("empty key in object", _set("custom_fields", [{"key": ""}])),
            ("65-byte key", _set("custom_fields", ["k" * 65])),
            ("space in key", _set("custom_fields", ["a b"])),
            ("non-ASCII key", _set("custom_fields", ["\u00e4"])),
            ("slash in key", _set("custom_fields", ["a/b"])),
            ("duplicate strings", _set("custom_fields", ["a", "a"])),
            ("duplicate mixed", _set("custom_fields", ["a", {"key": "a", "hint": "x"}])),
            ("hint 1025 bytes", _set("custom_fields", [{"key": "a", "hint": "h" * 1025}])),
            ("hint number", _set("custom_fields", [{"key": "a", "hint": 5}])),
            ("useForSignature string", _set("custom_fields",
                                            [{"key": "a", "useForSignature": "yes"}])),
            ("useForSignature number", _set("custom_fields",
                                            [{"key": "a", "useForSignature": 1}])),
        ], "custom_fields")

    def test_custom_fields_accepted_forms(self):
        fields = ["k%d" % i for i in range(62)] + [
            {"key": "Az09_.-" + "x" * 57, "hint": "h" * 1024, "useForSignature": True},
            {"key": "n", "hint": None}]
        row = self.env.upsert({"agentId": new_agent(), "url": self.base["url"],
                               "custom_fields": fields})
        self.assertEqual(len(row["custom_fields"]), 64)
        self.assertEqual(row["custom_fields"][62], {"key": fields[62]["key"], "hint": "h" * 1024,
                                                    "useForSignature": True})
        self.assertEqual(row["custom_fields"][63], {"key": "n", "hint": None,
                                                    "useForSignature": False})
        row = self.env.upsert({"agentId": new_agent(), "url": self.base["url"],
                               "custom_fields": []})
        self.assertEqual(row["custom_fields"], [])

    # ---------------------------------------------------------- is_active
    def test_is_active(self):
        self.upsert_cases([
            ("string", _set("is_active", "true")),
            ("number 1", _set("is_active", 1)),
            ("number 0", _set("is_active", 0)),
            ("object", _set("is_active", {})),
        ], "is_active")

    # ------------------------------------------------- unknown parameters
    def test_unknown_parameter(self):
        for name in ("foo", "agentid", "Url", "secretHeader", "customFields"):
            with self.subTest(name):
                p = dict(self.base)
                p[name] = "x"
                self.bad("upsert", p, name, "unknown " + name)
        for action in ("get", "delete", "test"):
            with self.subTest(action):
                self.bad(action, {"agentId": self.agent, "foo": 1}, "foo", action)

    def test_other_actions_agent_id(self):
        self.bad_many([("%s %s" % (action, what), action, p)
                       for action in ("get", "delete", "test")
                       for what, p in (("missing", {}), ("number", {"agentId": 1}),
                                       ("bad", {"agentId": "nope"}),
                                       ("null", {"agentId": None}))], "agentId")

    # ----------------------------------------------------- the payload
    def test_payload_not_an_object(self):
        bad = [b"[]", b'"agentId"', b"42", b"null", b"true", b"not json", b"", b"{",
               b'{"agentId":', b"{} x", b"{}{}", b'{"agentId":"\xff"}',
               json.dumps([self.base]).encode()]
        self.bad_many([("%s %r" % (action, p[:20]), action, p)
                       for action in ("upsert", "get", "delete", "test") for p in bad], None)

    def test_payload_too_deep(self):
        deep = b'{"agentId":"%s","url":"%s","x":' % (self.agent.encode(),
                                                     self.base["url"].encode())
        deep += b"[" * 5000 + b"]" * 5000 + b"}"
        self.bad("upsert", deep, None, "nested 5000 deep")

    def test_payload_oversize(self):
        p = dict(self.base)
        p["custom_fields"] = [{"key": "k%d" % i, "hint": "h" * 1024} for i in range(63)]
        raw = json.dumps(p, separators=(",", ":")).encode()
        self.assertGreater(len(raw), 64 * 1024)
        self.bad("upsert", raw, None, "%d bytes" % len(raw))
        pad = b" " * (64 * 1024 + 1 - len(json.dumps(self.base).encode()))
        self.bad("upsert", json.dumps(self.base).encode() + pad, None, "64 KiB + 1 of spaces")

    def test_unknown_action(self):
        self.bad_many([("action " + a, a, {"agentId": self.agent})
                       for a in ("frobnicate", "GET", "Upsert", "get2", "list")], None)
        # one level deeper is not an action topic either: at most no reply
        r = self.env.client.request("get/extra", {"agentId": self.agent}, *self.env.creds("ops"),
                                    timeout=hglib.T_QUIET)
        if r is not None:
            self.assertError(r, "VALIDATION_ERROR")

    def test_zz_hgd_still_answers(self):
        """After all the hostile input, hgd is alive and serving."""
        self.assertTrue(self.env.hgd.running(), hglib.tail(self.env.hgd.log))
        self.assertIsNone(self.env.get(new_agent()))


if __name__ == "__main__":
    hglib.main()
