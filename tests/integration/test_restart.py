#!/usr/bin/python3
"""Restarts and status (PROTOCOL.md sections 1, 7, 9): rows survive SIGTERM
and SIGKILL, escalations published while hgd is down are delivered when it
returns (persistent session), the retained status goes online / offline,
and the will tells a crash from a clean stop."""

import signal
import time
import uuid

import hglib
from hglib import ISO_RE, MASK, ROOT, HgTestCase, new_agent, webhook_signature


class TestRestart(HgTestCase):

    def status(self, timeout=5):
        m = self.env.client.retained("%s/status/%s" % (ROOT, self.env.instance), timeout)
        self.assertIsNotNone(m, "no retained status for %s" % self.env.instance)
        self.assertEqual(m.qos, 1)
        return m.json()

    def check_online(self, st):
        self.assertIs(st.get("online"), True, st)
        self.assertEqual(st.get("instance"), self.env.instance)
        self.assertRegex(st.get("version", ""), r"^\d+\.\d+\.\d+")
        self.assertRegex(st.get("started_at", ""), ISO_RE)
        self.assertRegex(st.get("timestamp", ""), ISO_RE)

    def test_status_online_and_republished(self):
        st = self.status()
        self.check_online(st)
        # --status-interval 1: at least two fresh publishes within ~3 s (the
        # env's own status/+ subscription sees them; a second, overlapping
        # subscription would get each message twice from mosquitto)
        topic, t0 = "%s/status/%s" % (ROOT, self.env.instance), time.time()
        sub = self.env.status_sub

        def fresh():
            ms = sub.matching(lambda m: m.topic == topic and not m.retain and m.time >= t0)
            return ms if len(ms) >= 2 else None
        ms = hglib.wait_until(fresh, 5, what="two status publishes")
        a, b = ms[0].json(), ms[1].json()
        self.check_online(a)
        self.assertLess(a["timestamp"], b["timestamp"])
        self.assertEqual(a["started_at"], b["started_at"])

    def test_sigterm_row_survives_and_status_offline(self):
        env = self.env
        agent, path, secret = new_agent(), self.path(), env.secret()
        row = env.upsert({"agentId": agent, "url": self.url(path), "secret": secret,
                          "secret_header": "X-Sig", "custom_fields": [
                              "reason", {"key": "acct", "hint": "h", "useForSignature": True}],
                          "is_active": True})
        before = self.status()
        rc = env.hgd.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, "hgd exits 0 on SIGTERM; log:\n" + hglib.tail(env.hgd.log))
        st = self.status()
        self.assertIs(st.get("online"), False, st)
        self.assertEqual(st.get("instance"), env.instance)
        self.assertEqual(st.get("started_at"), before["started_at"])
        self.assertRegex(st.get("timestamp", ""), ISO_RE,
                         "a clean stop publishes offline with a timestamp")
        env.hgd.start()
        after = self.status()
        self.check_online(after)
        self.assertNotEqual(after["started_at"], before["started_at"])
        got = env.get(agent)
        self.assertEqual(got, row, "row after restart")
        self.assertEqual(got["secret"], MASK)
        # and the secret itself survived: the delivery is signed with it
        env.escalate(agent, {"reason": "after restart", "fields": {"acct": "A-1"}})
        reqs = self.rx.wait_for(path, 1)
        self.assertEqual(len(reqs), 1, "no POST after restart")
        self.assertEqual(reqs[0].header("X-Sig"), webhook_signature(secret, "A-1"))

    def test_sigkill_durable_before_reply(self):
        """Every write acknowledged by a reply survives kill -9 right after it."""
        env = self.env
        kept, gone = new_agent(), new_agent()
        env.upsert({"agentId": gone, "url": self.url()})
        row = env.upsert({"agentId": kept, "url": self.url(), "secret": env.secret()})
        self.assertOk(env.request("delete", {"agentId": gone}))
        before = self.status()
        env.hgd.kill()
        # the will: offline, same started_at, no timestamp
        will = hglib.wait_until(lambda: (lambda s: s if s.get("online") is False else None)(
            self.status()), 10, what="the will on the status topic")
        self.assertEqual(will.get("instance"), env.instance)
        self.assertEqual(will.get("started_at"), before["started_at"])
        self.assertNotIn("timestamp", will, "the will has no timestamp (tells a crash)")
        env.hgd.start()
        self.assertEqual(env.get(kept), row)
        self.assertIsNone(env.get(gone), "deleted row came back after kill -9")

    def test_escalation_queued_while_down(self):
        env = self.env
        agent, path = new_agent(), self.path()
        env.upsert({"agentId": agent, "url": self.url(path)})
        self.assertEqual(env.hgd.stop(signal.SIGTERM), 0)
        eids = [str(uuid.uuid4()) for _ in range(3)]
        for eid in eids:
            env.escalate(agent, {"eventId": eid, "reason": "while down"})
        time.sleep(0.3)
        self.assertEqual(self.rx.requests(path), [])
        env.hgd.start()
        reqs = self.rx.wait_for(path, 3)
        self.assertEqual(sorted(r.json()["eventId"] for r in reqs), sorted(eids),
                         "escalations published while hgd was down")

    def test_kill9_during_burst_loses_nothing(self):
        """Escalations acknowledged by the broker before hgd is killed -9 are
        all delivered after the restart (at least once, same eventIds)."""
        env = self.env
        agent, path = new_agent(), self.path()
        env.upsert({"agentId": agent, "url": self.url(path)})
        eids = [str(uuid.uuid4()) for _ in range(100)]
        key_id, secret = env.creds("ops")
        for eid in eids:
            env.client.signed_publish("%s/escalation/%s" % (ROOT, agent),
                                      '{"eventId":"%s"}' % eid, key_id, secret)
        env.hgd.kill()
        env.hgd.start()
        hglib.wait_until(lambda: set(eids) <= {r.json()["eventId"]
                                               for r in self.rx.requests(path)}, 30,
                         what="all 100 escalations delivered after kill -9")
        got = [r.json()["eventId"] for r in self.rx.requests(path)]
        self.assertLessEqual(set(got), set(eids))

    def test_many_upserts_then_restart(self):
        env = self.env
        rows = {}
        sent = []
        for i in range(50):
            a = new_agent()
            sent.append((a, env.send_request("upsert", {"agentId": a, "url": self.url(),
                                                        "custom_fields": ["f%d" % i]})))
        for a, corr in sent:
            rows[a] = self.assertOk(env.client.wait_reply(corr))
        env.hgd.kill()
        env.hgd.start()
        got = [(a, env.send_request("get", {"agentId": a})) for a in rows]
        for a, corr in got:
            self.assertEqual(self.assertOk(env.client.wait_reply(corr)), rows[a])


if __name__ == "__main__":
    hglib.main()
