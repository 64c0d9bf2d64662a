#!/usr/bin/python3
"""hgd's command line and config file (PROTOCOL.md section 9): --version,
--check-config, a config file with the flags' keys, flags over the file,
clear failures on a bad config, a bad keys file or an unparsable store (the
store left untouched), and a clean exit 0 on SIGTERM/SIGINT."""

import hashlib
import json
import os
import signal
import subprocess

import hglib
from hglib import HgTestCase, new_agent


class TestConfig(HgTestCase):
    start_hgd = False

    def run_hgd(self, args, timeout=15):
        """Run hgd to completion; returns (rc, output). A hang is a failure."""
        try:
            r = subprocess.run([hglib.binary("hgd")] + list(args), capture_output=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.fail("hgd %s did not exit within %ds" % (" ".join(args), timeout))
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.env.outputs.append(("hgd " + " ".join(args[:2]), out))
        return r.returncode, out

    def write(self, name, text, mode=0o600):
        p = os.path.join(self.env.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def base_args(self, state="state"):
        e = self.env
        return ["--broker", e.broker.uri, "--state-dir", os.path.join(e.tmp, state),
                "--keys", e.keys_path, "--instance", "cfg-" + state,
                "--allow-net", "127.0.0.0/8", "--webhook-cafile", e.ca]

    def expect_failure(self, args, mention=None, what=""):
        rc, out = self.run_hgd(args)
        self.assertNotEqual(rc, 0, "%s: hgd accepted it:\n%s" % (what, out[-2000:]))
        self.assertTrue(out.strip(), "%s: no message" % what)
        if mention:
            self.assertIn(mention, out, "%s: the message names %r:\n%s" % (what, mention, out))

    # ---------------------------------------------------------------------
    def test_version(self):
        rc, out = self.run_hgd(["--version"])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"\d+\.\d+\.\d+")

    def test_check_config_good(self):
        # does not need the broker to be up: nothing listens on this port
        args = self.base_args("check")
        args[1] = "mqtt://127.0.0.1:%d" % hglib.free_port()
        rc, out = self.run_hgd(args + ["--check-config"])
        self.assertEqual(rc, 0, out)

    def test_bad_flags_and_values(self):
        base = self.base_args("bad") + ["--check-config"]
        for what, extra in (("unknown flag", ["--frobnicate"]),
                            ("bad log level", ["--log-level", "loud"]),
                            ("bad status interval", ["--status-interval", "abc"]),
                            ("negative status interval", ["--status-interval", "-1"]),
                            ("bad retry schedule", ["--retry-schedule", "a,b"]),
                            ("bad CIDR", ["--allow-net", "300.0.0.0/8"]),
                            ("CIDR prefix too long", ["--allow-net", "127.0.0.0/33"]),
                            ("bad broker scheme", ["--broker", "http://127.0.0.1:1883"]),
                            ("missing flag value", ["--state-dir"])):
            with self.subTest(what):
                self.expect_failure(base + extra, None, what)

    def test_bad_config_file(self):
        for what, text in (("unknown key", "broker = mqtt://127.0.0.1:1883\nfrobnicate = 1\n"),
                           ("no equals sign", "broker mqtt://127.0.0.1:1883\n"),
                           ("bad value", "status_interval = soon\n")):
            with self.subTest(what):
                p = self.write("bad.conf", "# a bad file\n" + text)
                self.expect_failure(["-c", p, "--check-config"], None, what)
        self.expect_failure(["-c", os.path.join(self.env.tmp, "missing.conf"), "--check-config"],
                            "missing.conf", "missing file")

    def test_config_file_runs_hgd(self):
        """Every setting from the file: hgd serves requests under the file's
        topic root and delivers with its allow_net and webhook_cafile; a
        flag overrides the file's instance."""
        e = self.env
        conf = self.write("hgd.conf", "\n".join([
            "# hgd test configuration",
            "broker = %s" % e.broker.uri,
            "state_dir = %s" % os.path.join(e.tmp, "state-file"),
            "keys = %s" % e.keys_path,
            "instance = from-file",
            "topic_root = file/hg",
            "allow_net = 192.0.2.0/24",
            "allow_net = 127.0.0.0/8",
            "webhook_cafile = %s" % e.ca,
            "",
            "retry_schedule = 0.5,1",
            "status_interval = 1",
            "log_level = debug",
            "allow_http = false",
        ]) + "\n")
        rc, out = self.run_hgd(["-c", conf, "--check-config"])
        self.assertEqual(rc, 0, out)
        h = hglib.Hgd(e, "from-flag", ["--instance", "from-flag"], config_file=conf)
        try:
            h.start(wait=False)
            hglib.wait_until(lambda: "event=ready" in h.log_text() or
                             (h.proc.poll() is not None and
                              self.fail("hgd -c exited:\n" + hglib.tail(h.log))),
                             hglib.T_READY, what="hgd -c ready")
            st = e.client.retained("file/hg/status/from-flag", 5)
            self.assertIsNotNone(st, "no status under the file's topic root for the flag's "
                                     "instance")
            self.assertIs(st.json()["online"], True)
            agent, path = new_agent(), self.path()
            row = self.assertOk(e.client.request("upsert", {"agentId": agent,
                                                            "url": self.url(path)},
                                                 *e.creds("ops"), root="file/hg"))
            self.assertEqual(row["agent_id"], agent)
            e.client.signed_publish("file/hg/escalation/%s" % agent, b'{"reason":"cfg"}',
                                    *e.creds("ops"))
            self.assertEqual(len(self.rx.wait_for(path, 1)), 1, "no POST from hgd -c")
            self.assertEqual(h.stop(signal.SIGINT), 0, "SIGINT stops cleanly with exit 0")
        finally:
            h.stop()

    def test_keys_file_problems(self):
        e = self.env
        good = json.load(open(e.keys_path))
        cases = (("mode 0644", json.dumps(good), 0o644),
                 ("mode 0640", json.dumps(good), 0o640),
                 ("not JSON", "{ keys: ", 0o600),
                 ("no keys array", json.dumps({"key": []}), 0o600),
                 ("entry without secret",
                  json.dumps({"keys": [{"id": "x", "agents": ["*"], "actions": ["get"]}]}), 0o600))
        for what, text, mode in cases:
            with self.subTest(what):
                p = self.write("keys-bad.json", text, mode)
                args = self.base_args("keys")
                args[args.index("--keys") + 1] = p
                self.expect_failure(args, "keys-bad.json", what)
        args = self.base_args("keys")
        args[args.index("--keys") + 1] = os.path.join(e.tmp, "no-such-keys.json")
        self.expect_failure(args, "no-such-keys.json", "missing keys file")

    def test_unparsable_store_is_refused_and_kept(self):
        e = self.env
        h = hglib.Hgd(e, "cfg-store", state_dir=os.path.join(e.tmp, "state-corrupt"))
        try:
            h.start()
            agent, path = new_agent(), self.path()
            e.upsert({"agentId": agent, "url": self.url(path), "secret": e.secret()})
            e.escalate(agent, {"reason": "fill the outbox too"})
            self.rx.wait_for(path, 1)
            self.assertEqual(h.stop(), 0)
        finally:
            h.stop()
        files = [os.path.join(h.state_dir, f) for f in sorted(os.listdir(h.state_dir))
                 if os.path.isfile(os.path.join(h.state_dir, f)) and
                 os.path.getsize(os.path.join(h.state_dir, f)) > 0]
        self.assertTrue(files, "hgd left no store file in its state dir")
        for f in files:
            with self.subTest(os.path.basename(f)):
                data = open(f, "rb").read()
                bad = b"this is not a record {{{\n" + data
                with open(f, "wb") as fh:
                    fh.write(bad)
                args = h.argv()[1:]
                self.expect_failure(args, os.path.basename(f), "corrupt " + f)
                self.assertEqual(hashlib.sha256(open(f, "rb").read()).hexdigest(),
                                 hashlib.sha256(bad).hexdigest(),
                                 "hgd rewrote the unparsable file")
                with open(f, "wb") as fh:
                    fh.write(data)


if __name__ == "__main__":
    hglib.main()
