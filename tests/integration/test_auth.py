#!/usr/bin/python3
"""Publisher authentication (PROTOCOL.md section 2): each UNAUTHORIZED case
for action requests, with the store unchanged; the accepting side of the
same rules; unauthorized escalations reported as `rejected` and never
POSTed; keys reloaded on SIGHUP."""

import json
import signal
import time

import hglib
from hglib import ROOT, T_QUIET, HgTestCase, new_agent, nonce, request_signature


class TestAuth(HgTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = new_agent()
        cls.row = cls.env.upsert({"agentId": cls.agent, "url": cls.env.receiver.url("/a/base"),
                                  "secret": cls.env.secret()})
        # what every unauthorized request tries to do
        cls.change = {"agentId": cls.agent, "url": cls.env.receiver.url("/a/evil")}

    def tearDown(self):
        self.assertEqual(self.env.get(self.agent), self.row, "store changed by a refused request")

    def unauthorized_many(self, cases):
        """cases: (what, action, payload, key, sign) — all sent, then each
        reply must be UNAUTHORIZED."""
        sent = []
        for what, action, payload, key, sign in cases:
            sent.append((what, self.env.send_request(action, payload, key=key, sign=sign)))
        for what, corr in sent:
            with self.subTest(what):
                r = self.env.client.wait_reply(corr)
                self.assertError(r, "UNAUTHORIZED",
                                 msg=None if r is None or r.code == "UNAUTHORIZED" else
                                 "%s: expected UNAUTHORIZED, got %r" % (what, r.body))

    def upsert_with(self, cases):
        self.unauthorized_many([(what, "upsert", self.change, "ops", sign)
                                for what, sign in cases])

    # ---------------------------------------------------- the properties
    def test_missing_property(self):
        cases = [("missing " + p, {"omit": (p,)})
                 for p in ("hg-key", "hg-ts", "hg-nonce", "hg-sig")]
        cases.append(("all missing", {"omit": ("hg-key", "hg-ts", "hg-nonce", "hg-sig")}))
        self.upsert_with(cases)

    def test_malformed_property(self):
        now = int(time.time())

        def ts(v):  # a well-signed message whose hg-ts is malformed
            return {"ts": v}

        self.upsert_with([
            ("ts empty", ts("")), ("ts letters", ts("abc")), ("ts negative", ts("-%d" % now)),
            ("ts plus sign", ts("+%d" % now)), ("ts fraction", ts("%d.5" % now)),
            ("ts leading space", ts(" %d" % now)), ("ts exponent", ts("1.8e9")),
            ("ts hex", ts("0x%x" % now)), ("ts huge", ts("9" * 40)),
            ("nonce empty", {"nonce_": ""}), ("nonce 15 chars", {"nonce_": "a" * 15}),
            ("nonce 65 chars", {"nonce_": "a" * 65}), ("nonce upper case", {"nonce_": "A" * 32}),
            ("nonce not hex", {"nonce_": "g" * 32}), ("nonce with space", {"nonce_": "ab " * 6}),
            ("sig empty", {"sig": ""}), ("sig not hex", {"sig": "z" * 64}),
            ("sig short", {"sig": "0" * 63}), ("sig long", {"sig": "0" * 65}),
            ("key empty", {"override": {"hg-key": ""}}),
        ])

    def test_repeated_property(self):
        """A repeated hg-* property is ambiguous (which one did a proxy or an
        ACL plugin look at?): malformed, even when both copies agree."""
        ops = self.env.creds("ops")
        self.upsert_with([
            ("hg-key twice, same value", {"extra": [("hg-key", ops[0])]}),
            ("hg-key twice, other id", {"extra": [("hg-key", "reader")]}),
            ("hg-ts twice", {"extra": [("hg-ts", str(int(time.time())))]}),
            ("hg-nonce twice", {"extra": [("hg-nonce", "ab" * 16)]}),
            ("hg-sig twice", {"extra": [("hg-sig", "0" * 64)]}),
        ])

    def test_unknown_key(self):
        self.unauthorized_many([
            ("unknown id", "upsert", self.change, ("nobody", "hgk_whatever"), None),
            ("id with a trailing space", "upsert", self.change,
             ("ops ", self.env.creds("ops")[1]), None),
        ])

    def test_bad_signature(self):
        ops_secret = self.env.creds("ops")[1]
        payload = json.dumps(self.change, separators=(",", ":")).encode()
        other = json.dumps(dict(self.change, url="https://x.example/"),
                           separators=(",", ":")).encode()
        ts = str(int(time.time()))
        n = nonce()
        good = request_signature(ops_secret, ROOT + "/webhook/upsert", ts, n, payload)
        self.upsert_with([
            ("wrong secret", {"sig": request_signature("hgk_wrong", ROOT + "/webhook/upsert",
                                                       ts, n, payload), "ts": ts, "nonce_": n}),
            ("other key's secret", {"sig": request_signature(
                self.env.creds("reader")[1], ROOT + "/webhook/upsert", ts, n, payload),
                "ts": ts, "nonce_": n}),
            ("other payload", {"sig": request_signature(ops_secret, ROOT + "/webhook/upsert",
                                                        ts, n, other), "ts": ts, "nonce_": n}),
            ("other topic", {"sig": request_signature(ops_secret, ROOT + "/webhook/get",
                                                      ts, n, payload), "ts": ts, "nonce_": n}),
            ("other ts", {"sig": good, "ts": str(int(ts) + 1), "nonce_": n}),
            ("other nonce", {"sig": good, "ts": ts, "nonce_": nonce()}),
            ("one bit off", {"sig": good[:-1] + ("0" if good[-1] != "0" else "1"), "ts": ts,
                             "nonce_": nonce()}),
            ("upper-case hex of another message", {"sig": request_signature(
                ops_secret, ROOT + "/webhook/get", ts, n, payload).upper(), "ts": ts,
                "nonce_": n}),
        ])

    def test_stale_timestamp_both_directions(self):
        self.upsert_with([
            ("301 s old", {"ts_offset": -301}), ("400 s old", {"ts_offset": -400}),
            ("301 s ahead", {"ts_offset": 301}), ("400 s ahead", {"ts_offset": 400}),
            ("epoch", {"ts": "0"}), ("year 2286", {"ts": "9999999999"}),
        ])

    def test_timestamp_inside_window_accepted(self):
        for off in (-250, 250):
            with self.subTest(off):
                self.assertOk(self.env.request("get", {"agentId": self.agent},
                                               sign={"ts_offset": off}))

    def test_replayed_nonce(self):
        n, ts = nonce(), str(int(time.time()))
        self.assertOk(self.env.request("get", {"agentId": self.agent},
                                       sign={"nonce_": n, "ts": ts}))
        # the very same message again, and a fresh message with the old nonce
        # (correctly signed, other action, other ts)
        self.unauthorized_many([
            ("exact replay", "get", {"agentId": self.agent}, "ops", {"nonce_": n, "ts": ts}),
            ("nonce reused", "upsert", self.change, "ops",
             {"nonce_": n, "ts": str(int(ts) - 1)}),
        ])

    # ------------------------------------------------ agents and actions
    def test_agent_not_covered(self):
        self.unauthorized_many([
            ("limited key, other Genie", "upsert", self.change, "limited", None),
            ("limited key, get other", "get", {"agentId": self.agent}, "limited", None),
            ("node key (escalate only) get", "get", {"agentId": self.env.agent_node}, "node",
             None),
        ])

    def test_agent_covered_any_case(self):
        """The keys file lists the limited Genie in upper case."""
        a = self.env.agent_limited
        for agent in (a.lower(), a.upper()):
            with self.subTest(agent):
                self.assertOk(self.env.request("upsert", {"agentId": agent,
                                                          "url": self.url()}, key="limited"))
                self.assertEqual(self.assertOk(
                    self.env.request("get", {"agentId": agent}, key="limited"))["agent_id"],
                    a.lower())

    def test_action_not_allowed(self):
        self.unauthorized_many([
            ("reader upsert", "upsert", self.change, "reader", None),
            ("reader delete", "delete", {"agentId": self.agent}, "reader", None),
            ("reader test", "test", {"agentId": self.agent}, "reader", None),
            ("node get", "get", {"agentId": self.env.agent_node}, "node", None),
            ("node upsert", "upsert", dict(self.change, agentId=self.env.agent_node), "node",
             None),
        ])
        self.assertOk(self.env.request("get", {"agentId": self.agent}, key="reader"))
        time.sleep(0.2)
        self.assertEqual(self.rx.requests("/a/base"), [], "refused test action sent a POST")

    def test_unknown_action_is_checked_after_signature(self):
        self.unauthorized_many([
            ("unknown action, bad sig", "frobnicate", {"agentId": self.agent}, "ops",
             {"sig": "0" * 64}),
            ("unknown action, unknown key", "frobnicate", {"agentId": self.agent},
             ("nobody", "x"), None),
        ])
        self.assertError(self.env.request("frobnicate", {"agentId": self.agent}),
                         "VALIDATION_ERROR")

    def test_reply_carries_correlation(self):
        r = self.env.request("upsert", self.change, sign={"sig": "0" * 64},
                             correlation=b"\x01unauth")
        self.assertError(r, "UNAUTHORIZED")
        self.assertEqual(r.correlation, b"\x01unauth")

    # -------------------------------------------------------- escalations
    def test_unauthorized_escalations_rejected(self):
        """Each refused escalation: a `rejected` event on its Genie's delivery
        topic, no POST. One Genie (with an active webhook) per case."""
        env = self.env
        cases = [
            ("bad signature", "ops", {"sig": "0" * 64}),
            ("unknown key", ("nobody", "hgk_x"), None),
            ("missing hg-sig", "ops", {"omit": ("hg-sig",)}),
            ("missing hg-nonce", "ops", {"omit": ("hg-nonce",)}),
            ("stale ts", "ops", {"ts_offset": -400}),
            ("future ts", "ops", {"ts_offset": 400}),
            ("key lacks escalate", "noescalate", None),
            ("key lacks escalate (reader)", "reader", None),
            ("node key, other Genie", "node", None),
        ]
        planned = []
        for what, key, sign in cases:
            agent, path = new_agent(), self.path()
            env.upsert({"agentId": agent, "url": self.url(path), "secret": env.secret()})
            planned.append((what, agent, path, key, sign))
        for what, agent, path, key, sign in planned:
            env.escalate(agent, {"callSid": "CA-" + what.replace(" ", "-")}, key=key, sign=sign)
        for what, agent, path, key, sign in planned:
            with self.subTest(what):
                ev = env.wait_delivery_event(agent, lambda e: e.get("state") == "rejected")
                self.assertIsNotNone(ev, "%s: no `rejected` event on %s/delivery/%s; got %r"
                                     % (what, ROOT, agent, env.deliveries(agent)))
        time.sleep(T_QUIET)
        for what, agent, path, key, sign in planned:
            with self.subTest(what):
                self.assertEqual(self.rx.requests(path), [], "%s: refused yet POSTed" % what)
                self.assertEqual([e["state"] for e in env.deliveries(agent)], ["rejected"])

    def test_escalation_replay_rejected(self):
        env = self.env
        agent, path = new_agent(), self.path()
        env.upsert({"agentId": agent, "url": self.url(path)})
        n, ts = nonce(), str(int(time.time()))
        env.escalate(agent, {"reason": "first"}, sign={"nonce_": n, "ts": ts})
        self.assertEqual(len(self.rx.wait_for(path, 1)), 1)
        env.escalate(agent, {"reason": "first"}, sign={"nonce_": n, "ts": ts})
        ev = env.wait_delivery_event(agent, lambda e: e.get("state") == "rejected")
        self.assertIsNotNone(ev, "replayed escalation not reported as rejected")
        time.sleep(T_QUIET)
        self.assertEqual(len(self.rx.requests(path)), 1, "replayed escalation was POSTed")

    def test_escalation_node_key_case_insensitive(self):
        """node's Genie is listed upper case; the topic uses lower case."""
        env = self.env
        agent, path = env.agent_node, self.path()
        env.upsert({"agentId": agent, "url": self.url(path)})
        env.escalate(agent.lower(), {"reason": "node"}, key="node")
        reqs = self.rx.wait_for(path, 1)
        self.assertEqual(len(reqs), 1, "escalation with a covering key not delivered")
        self.assertEqual(reqs[0].json()["reason"], "node")

    def test_malformed_topic_agent_no_event(self):
        env = self.env
        sub = env.client.subscribe(ROOT + "/delivery/#")
        try:
            env.escalate(None, {"reason": "x"}, topic=ROOT + "/escalation/not-a-uuid")
            env.escalate(None, {"reason": "x"}, key=("nobody", "x"),
                         topic=ROOT + "/escalation/also-bad")
            time.sleep(T_QUIET)
            self.assertEqual([m for m in sub.messages if "not-a-uuid" in m.topic or
                              "also-bad" in m.topic], [])
        finally:
            env.client.unsubscribe(sub)
        self.assertTrue(env.hgd.running())

    # ----------------------------------------------------------- SIGHUP
    def test_zz_keys_reloaded_on_sighup(self):
        env = self.env
        keys = dict(env.keys)
        keys["fresh"] = {"secret": env.secret("hgk_"), "agents": ["*"], "actions": ["get"]}
        del keys["reader"]
        env.write_keys(keys)
        env.hgd.proc.send_signal(signal.SIGHUP)
        ok = None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            ok = env.client.request("get", {"agentId": self.agent}, "fresh",
                                    keys["fresh"]["secret"])
            if ok is not None and ok.success:
                break
            time.sleep(0.2)
        self.assertOk(ok, "new key not accepted after SIGHUP: %r" % (ok,))
        self.assertError(env.request("get", {"agentId": self.agent}, key="reader"),
                         "UNAUTHORIZED")
        self.assertTrue(env.hgd.running())
        env.write_keys()
        env.hgd.proc.send_signal(signal.SIGHUP)


if __name__ == "__main__":
    hglib.main()
