#!/usr/bin/python3
"""No secret in any log line, reply, delivery event, status or retained
document, at log level debug (issue 5 item 3) — self-contained.

One hgd (config file with a broker password, log level debug) goes through
every path that handles a secret: upserts and gets with secrets, the test
action (delivered, 5xx, untrusted TLS, egress refusal), deliveries (ok,
retried then failed, 4xx), validation errors in requests that carry a
secret, requests signed with a wrong secret, a SIGHUP reload of a broken keys
file, hgctl with --secret/--secret-file/--key-secret, restarts (SIGTERM and
kill -9) that load the store, and --check-config. A wiretap subscribed to
'#' records everything on the broker.

At the end every secret used (key secrets, webhook secrets, the broker
password, a token in a webhook URL's query) is searched in: every log of
every hgd run, hgd's and hgctl's output, every message on the broker except
the test's own requests and escalations, the outbox file and mosquitto's
log. Positive controls show the search would find one: the store file and
the wiretapped requests do hold the webhook secrets.

(The harness does the same check for every other integration test class at
its end, over all the hgd runs of that class: HgTestCase.tearDownClass.)
"""

import os
import signal
import subprocess
import time

import hglib
import seclib
from hglib import ROOT, HgTestCase, MqttClient, Response, new_agent


class TestNoSecretLeaks(HgTestCase):
    start_hgd = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        e = cls.env
        cls.password = e.secret("brokerpw_")
        # Not a registered secret: the URL, token and all, is in replies by the
        # protocol; it must stay out of logs and events (checked below).
        cls.token = hglib.new_secret("urltoken_")
        cls.conf = os.path.join(e.tmp, "hgd-secrets.conf")
        with open(cls.conf, "w") as f:
            f.write("# broker credentials live in the config file, never on the command line\n"
                    "username = hgd\npassword = %s\n" % cls.password)
        os.chmod(cls.conf, 0o600)
        cls.wiretap = MqttClient(e.broker.port, name="wiretap").connect()
        e._closers.append(cls.wiretap.close)
        cls.tap = cls.wiretap.subscribe("#")
        e.hgd = seclib.SecHgd(e, e.instance, ["-c", cls.conf], allow_net=["127.0.0.0/8"],
                              log_level="debug")
        e.hgd.start()

    # -- scenarios (run in name order; test_zz_* checks) --------------------

    def test_a_upsert_get_replace(self):
        e = self.env
        agent = new_agent()
        s1, s2 = e.secret(), e.secret()
        row = e.upsert({"agentId": agent, "url": self.url() + "?token=" + self.token,
                        "secret": s1, "secret_header": "X-Sig",
                        "custom_fields": ["accountNumber",
                                          {"key": "reason", "useForSignature": True}]})
        self.assertEqual(row["secret"], hglib.MASK)
        self.assertEqual(e.get(agent)["secret"], hglib.MASK)
        e.upsert({"agentId": agent, "url": self.url(), "secret": s2})
        e.upsert({"agentId": agent, "url": self.url(), "secret": s2, "is_active": False})
        self.assertOk(e.request("delete", {"agentId": agent}))

    def test_b_test_action_paths(self):
        e = self.env
        ok, fail = self.path(), self.path()
        self.rx.program(fail, [Response(503, "busy")])
        other = hglib.make_test_ca(os.path.join(e.tmp, "untrusted"))
        rogue = hglib.Receiver(other[1], other[2]).start()
        try:
            for url in (self.url(ok) + "?token=" + self.token, self.url(fail),
                        rogue.url("/rogue?token=" + self.token),
                        "https://0.0.0.0:%d/x?token=%s" % (self.rx.port, self.token)):
                with self.subTest(url):
                    agent = new_agent()
                    e.upsert({"agentId": agent, "url": url, "secret": e.secret(),
                              "custom_fields": [{"key": "reason", "useForSignature": True}]})
                    data = self.assertOk(e.request("test", {"agentId": agent}, timeout=25))
                    self.assertIn("result", data)
        finally:
            rogue.stop()

    def test_c_deliveries(self):
        e = self.env
        ok, flaky, gone = self.path(), self.path(), self.path()
        self.rx.program(flaky, [Response(500, "no")] * 5)
        self.rx.program(gone, [Response(410, "gone")])
        for path, final in ((ok, "delivered"), (flaky, "failed"), (gone, "failed")):
            with self.subTest(path):
                agent = new_agent()
                e.upsert({"agentId": agent, "url": self.url(path) + "?token=" + self.token,
                          "secret": e.secret(), "secret_header": "X-Custom-Sig"})
                e.escalate(agent, {"reason": "secrets", "fields": {"accountNumber": "AC-1"}})
                ev = e.wait_delivery_event(agent, lambda ev, f=final: ev.get("state") == f,
                                           timeout=20)
                self.assertIsNotNone(ev, e.deliveries(agent))

    def test_d_bad_requests_carrying_secrets(self):
        e = self.env
        agent = new_agent()
        for params in ({"agentId": agent, "url": "javascript:x", "secret": e.secret()},
                       {"agentId": agent, "url": self.url(), "secret": e.secret(),
                        "secret_header": "X-A\r\nB: 1"},
                       {"agentId": agent, "url": self.url(), "secret": e.secret(),
                        "custom_fields": ["a b"]},
                       {"agentId": agent, "url": self.url(), "secret": e.secret(), "extra": 1},
                       {"agentId": "not-a-uuid", "secret": e.secret()}):
            with self.subTest(sorted(params)):
                self.assertError(e.request("upsert", params), "VALIDATION_ERROR")
        # A request signed with a secret that is not the key's.
        wrong = e.secret("hgk_")
        self.assertError(e.request("upsert", {"agentId": agent, "url": self.url(),
                                              "secret": e.secret()}, key=("ops", wrong)),
                         "UNAUTHORIZED")
        # An escalation signed with another key's secret.
        e.escalate(agent, {"reason": "x"}, key=("node", e.keys["ops"]["secret"]))

    def test_e_sighup_with_broken_keys_file(self):
        e = self.env
        with open(e.keys_path) as f:
            good = f.read()
        try:
            fd = os.open(e.keys_path, os.O_WRONLY | os.O_TRUNC)
            with os.fdopen(fd, "w") as f:
                f.write(good[: len(good) // 2])  # cut in the middle of a secret or so
            e.hgd.proc.send_signal(signal.SIGHUP)
            hglib.wait_until(lambda: "keys.reload_failed" in e.hgd.log_text(), 5,
                             what="keys.reload_failed")
        finally:
            e.write_keys()
        e.hgd.proc.send_signal(signal.SIGHUP)
        hglib.wait_until(lambda: "event=keys.reloaded" in e.hgd.log_text(), 5,
                         what="keys.reloaded")

    def test_f_hgctl(self):
        e = self.env
        agent, s = new_agent(), e.secret()
        r = e.hgctl("webhook", "set", agent, "--url", self.url(), "--secret", s,
                    "--sign-field", "reason")
        self.assertEqual(r.returncode, 0, r.stderr)
        sf = os.path.join(e.tmp, "secret-file")
        with open(sf, "w") as f:
            f.write(e.secret() + "\n")
        os.chmod(sf, 0o600)
        r = e.hgctl("webhook", "set", agent, "--url", self.url(), "--secret-file", sf)
        self.assertEqual(r.returncode, 0, r.stderr)
        for args in (("webhook", "get", agent), ("webhook", "test", agent),
                     ("escalate", agent, "--reason", "r"), ("status",)):
            r = e.hgctl(*args)
            self.assertEqual(r.returncode, 0, (args, r.stderr))
            r = e.hgctl(*args, as_json=False)
        r = e.hgctl("webhook", "get", agent, key=("ops", e.secret("hgk_")))
        self.assertEqual(r.returncode, 1, r.stderr)

    def test_g_restarts_and_check_config(self):
        e = self.env
        self.assertEqual(e.hgd.restart(), 0)
        e.hgd.kill()
        e.hgd.start()
        r = subprocess.run(e.hgd.argv() + ["--check-config"], capture_output=True, timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr)
        e.outputs.append(("hgd --check-config", (r.stdout + r.stderr).decode("utf-8", "replace")))

    # -- the search ------------------------------------------------------------

    def test_zz_no_secret_anywhere(self):
        e = self.env
        time.sleep(0.5)
        e.hgd.stop()  # its last lines are in the log too
        secrets = sorted(e.secrets | {self.password})
        own = ("%s/webhook/" % ROOT, "%s/escalation/" % ROOT)
        traffic = [m for m in self.tap.messages if not m.topic.startswith(own)]
        requests = [m for m in self.tap.messages if m.topic.startswith(own)]
        self.assertGreater(len(traffic), 20, "the wiretap saw hgd's messages")
        places = [("hgd log %s" % os.path.basename(p), open(p, "rb").read())
                  for h in e.hgds for p in h.logs if os.path.exists(p)]
        places += [("output of %s" % what, text.encode()) for what, text in e.outputs]
        places += [("message on %s" % m.topic, m.payload) for m in traffic]
        for name in ("outbox.jsonl",):
            p = os.path.join(e.hgd.state_dir, name)
            places.append((name, open(p, "rb").read()))
        places.append(("mosquitto.log", open(e.broker.log, "rb").read()))
        found = []
        for s in secrets:
            b = s.encode()
            for where, data in places:
                if b in data:
                    found.append("%s in %s" % (s, where))
        not_replies = [(w, d) for w, d in places if not w.startswith("message on hgtest/reply/")
                       and not w.startswith("output of ")]
        for where, data in not_replies:
            if self.token.encode() in data:
                found.append("URL token in %s" % where)
        self.assertEqual(found, [])
        # Positive controls: the search would see them where they belong.
        store = open(os.path.join(e.hgd.state_dir, "webhooks.jsonl"), "rb").read()
        webhook_secrets = [s for s in e.secrets if s.startswith("whsec_")]
        self.assertTrue(any(s.encode() in store for s in webhook_secrets))
        self.assertTrue(any(s.encode() in m.payload for m in requests for s in webhook_secrets))
        self.assertTrue(any(self.token.encode() in m.payload for m in traffic),
                        "the URL (with its token) is in get replies, by the protocol")
        sys_log = "\n".join(h.log_text() for h in e.hgds)
        self.assertIn("level=debug", sys_log, "ran at log level debug")


if __name__ == "__main__":
    hglib.main()
