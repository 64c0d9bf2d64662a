#!/usr/bin/python3
"""Logs (issue 4, docs/OPERATIONS.md "Logs"): one line per event on stderr in
a stable key=value form; a delivery attempt logs agent, eventId, attempt,
status and latency_ms; the level is settable; nothing a publisher sends can
forge a key or a line; no secret appears even at debug level."""

import json
import os
import signal
import time
import uuid

import hglib
import opslib
from hglib import ROOT, HgTestCase, Response, new_agent

BROKER_PASSWORD = "brokerpw_" + uuid.uuid4().hex


class TestLogs(HgTestCase):
    # A broker user and password (mosquitto without a password file accepts
    # any): the password must not show up in the log either.
    hgd_args = ("--username", "hgd-ops", "--password", BROKER_PASSWORD)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.secrets.add(BROKER_PASSWORD)

    def log(self):
        return self.env.hgd.log_text()

    def wait_event(self, name, timeout=10, **match):
        return hglib.wait_until(lambda: opslib.events(self.log(), name, **match), timeout,
                                what="log event %s %r" % (name, match))

    def assertWellFormed(self, text=None):
        _, bad = opslib.log_lines(self.log() if text is None else text)
        self.assertEqual(bad, [], "log lines not in the stable key=value form")

    # ------------------------------------------------------------------
    def test_delivery_line(self):
        env = self.env
        agent, path, secret = new_agent(), self.path(), env.secret()
        env.upsert({"agentId": agent, "url": self.url(path), "secret": secret})
        eid = str(uuid.uuid4())
        env.escalate(agent, {"eventId": eid, "reason": "log line"})
        line = self.wait_event("delivery.attempt", eventId=eid)[0]
        self.assertEqual(line["level"], "info")
        self.assertEqual(line["agent"], agent)
        self.assertEqual(line["attempt"], "1")
        self.assertEqual(line["status"], "200")
        self.assertEqual(line["state"], "delivered")
        self.assertRegex(line["latency_ms"], r"^\d+$")
        self.assertLess(int(line["latency_ms"]), 10000)
        self.assertWellFormed()

    def test_retry_lines(self):
        env = self.env
        agent, path = new_agent(), self.path()
        self.rx.program(path, [Response(503, "busy"), Response(200)])
        env.upsert({"agentId": agent, "url": self.url(path)})
        eid = str(uuid.uuid4())
        env.escalate(agent, {"eventId": eid})
        lines = hglib.wait_until(
            lambda: (lambda ls: ls if len(ls) >= 2 else None)(
                opslib.events(self.log(), "delivery.attempt", eventId=eid)),
            10, what="two attempts")
        first, second = lines[0], lines[1]
        self.assertEqual((first["level"], first["attempt"], first["status"], first["state"]),
                         ("warn", "1", "503", "retrying"))
        self.assertIn("next_attempt_at", first)
        self.assertEqual((second["level"], second["attempt"], second["status"], second["state"]),
                         ("info", "2", "200", "delivered"))

    def test_skipped_line_uses_attempt_key(self):
        """A pending delivery whose webhook is deleted before the retry ends
        as delivery.skipped with the same key names as delivery.attempt."""
        env = self.env
        agent, path = new_agent(), self.path()
        self.rx.program(path, [Response(503)])
        env.upsert({"agentId": agent, "url": self.url(path)})
        eid = str(uuid.uuid4())
        env.escalate(agent, {"eventId": eid})
        self.wait_event("delivery.attempt", eventId=eid)
        self.assertOk(env.request("delete", {"agentId": agent}))
        line = self.wait_event("delivery.skipped", eventId=eid)[0]
        self.assertEqual(line["agent"], agent)
        self.assertEqual(line["attempt"], "1", line)
        self.assertNotIn("attempts", line)
        self.assertWellFormed()

    def test_rejected_and_errors_cannot_forge_keys(self):
        """Topic levels, key ids and parameter names come from any publisher:
        they are quoted, never able to add a key or a line."""
        env, c = self.env, self.env.client
        forged = 'x event=forged agent=forged'
        # an unknown action whose name holds blanks and '=' (unauthenticated)
        c.publish("%s/webhook/%s" % (ROOT, forged), b"{}",
                  user_props=[("hg-key", 'k" event=forged2 x="'), ("hg-ts", "1"),
                              ("hg-nonce", "0" * 32), ("hg-sig", "0" * 64)],
                  response_topic=c.reply_topic, correlation=b"forge1")
        # a signed request for an unknown action with a blank in its name
        r = env.request("frob nicate=1", {"agentId": new_agent()})
        self.assertError(r, "VALIDATION_ERROR")
        # a signed upsert with an unknown parameter whose name holds a quote
        r = env.request("upsert", '{"agentId":"%s","url":"%s","a\\" event=forged3 b":1}'
                        % (new_agent(), self.url()))
        self.assertError(r, "VALIDATION_ERROR")
        # escalations: bad topic agent, bad payload, unsigned
        c.publish("%s/escalation/not a uuid event=forged4" % ROOT, b"{}")
        env.escalate(new_agent(), b'{"reason": 5}')
        c.publish("%s/escalation/%s" % (ROOT, new_agent()), b"{}",
                  user_props=[("hg-key", "bad key=1")])
        hglib.wait_until(lambda: len(opslib.events(self.log(), "escalation.rejected")) >= 3,
                         10, what="three rejections logged")
        hglib.wait_until(lambda: len(opslib.events(self.log(), "request.error")) >= 3,
                         10, what="three request errors logged")
        text = self.log()
        self.assertWellFormed(text)
        good, _ = opslib.log_lines(text)
        self.assertEqual([d for d in good if d["event"].startswith("forged")], [])
        self.assertFalse([d for d in good if d.get("agent") == "forged"])
        errs = opslib.events(text, "request.error")
        self.assertTrue(any(d.get("action") == forged for d in errs),
                        "the forged action name is logged as one quoted value: %r" % errs)
        self.assertTrue(any(d.get("key") == 'k" event=forged2 x="' for d in errs), errs)

    def test_no_secret_at_debug_level(self):
        env = self.env
        self.assertIn("level=debug", self.log(), "the harness runs hgd at debug level")
        agent, path, secret = new_agent(), self.path(), env.secret()
        env.upsert({"agentId": agent, "url": self.url(path), "secret": secret,
                    "custom_fields": [{"key": "acct", "useForSignature": True}]})
        self.assertOk(env.request("test", {"agentId": agent}))
        env.escalate(agent, {"fields": {"acct": "A-1"}})
        self.rx.wait_for(path, 2)
        # a reload re-reads the keys file: its secrets stay out of the log
        env.hgd.proc.send_signal(signal.SIGHUP)
        self.wait_event("keys.reloaded")
        text = self.log()
        for s in sorted(env.secrets) + [BROKER_PASSWORD]:
            self.assertNotIn(s, text, "secret in hgd's log")
            self.assertNotIn(s[-12:], text, "part of a secret in hgd's log")
        self.assertWellFormed(text)

    def test_levels(self):
        """--log-level error: only error lines; warn: no info or debug."""
        env = self.env
        for level, allowed in (("error", {"error"}), ("warn", {"error", "warn"}),
                               ("info", {"error", "warn", "info"})):
            with self.subTest(level):
                inst = "lv-%s-%s" % (level, uuid.uuid4().hex[:6])
                h = hglib.Hgd(env, inst, ["--instance", inst, "--log-level", level],
                              state_dir=os.path.join(env.tmp, "state-" + inst))
                try:
                    h.start()  # ready by its status (no event=ready below info)
                    agent = new_agent()
                    env.escalate(agent, {"reason": 5})  # rejected: a warn line
                    env.escalate(agent, {"reason": "no webhook"})  # skipped: info
                    time.sleep(0.5)
                    self.assertEqual(h.stop(), 0)
                    good, bad = opslib.log_lines(h.log_text())
                    self.assertEqual(bad, [])
                    self.assertTrue(good or level == "error", "no lines at all at %s" % level)
                    self.assertEqual({d["level"] for d in good} - allowed, set(),
                                     "lines above the level %s" % level)
                    if level != "error":
                        self.assertIn("warn", {d["level"] for d in good})
                finally:
                    h.stop()
                    env.hgd.logs.extend(h.logs)

    def test_abandoned_on_stop_is_well_formed(self):
        """SIGTERM with a POST hanging past the 5 s grace: the delivery is
        left in the outbox and the line says so in key=value form."""
        env = self.env
        agent, path = new_agent(), self.path()
        self.rx.program(path, [Response(200, hang=9)])
        env.upsert({"agentId": agent, "url": self.url(path)})
        eid = str(uuid.uuid4())
        env.escalate(agent, {"eventId": eid})
        self.rx.wait_for(path, 1)
        try:
            self.assertEqual(env.hgd.stop(), 0)
            text = env.hgd.log_text(all_runs=False)
        finally:
            env.hgd.start()
        self.assertWellFormed(text)
        line = opslib.events(text, "delivery.abandoned", eventId=eid)
        self.assertEqual(len(line), 1, "one delivery.abandoned line for %s" % eid)
        self.assertEqual(line[0]["agent"], agent)
        self.assertEqual(line[0]["attempt"], "1")
        # and it is delivered after the restart
        self.assertTrue(self.wait_event("delivery.attempt", eventId=eid, state="delivered"))

    def test_same_instance_twice_is_named(self):
        # Two hgds with one --instance (one client id) knock each other off
        # the broker for ever; the log said only "connection_lost
        # cause=unknown" (hostile testing). mosquitto closes the older
        # connection without a reason code, so hgd names the pattern
        # (mqtt.flapping); a broker that sends "session taken over" gets
        # mqtt.session_taken_over.
        env = self.env
        other = hglib.Hgd(env, env.instance, state_dir=os.path.join(env.tmp, "state-twin"))
        other.start(wait=False)

        def named():
            text = env.hgd.log_text(all_runs=False) + other.log_text()
            return "event=mqtt.flapping" in text or "event=mqtt.session_taken_over" in text
        try:
            hglib.wait_until(named, 30, what="mqtt.flapping in either log")
        finally:
            other.stop()
        text = env.hgd.log_text(all_runs=False) + other.log_text()
        self.assertIn("same --instance", text)
        self.assertWellFormed(text)
        env.hgd.restart()


if __name__ == "__main__":
    hglib.main()
