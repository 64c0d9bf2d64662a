#!/usr/bin/python3
"""systemd (issue 4): the sd_notify protocol as hgd speaks it to a stand-in
$NOTIFY_SOCKET (READY=1 only once subscribed, WATCHDOG=1 at half of
$WATCHDOG_USEC and only then, RELOADING=1/READY=1 around SIGHUP, STOPPING=1
on SIGTERM); SIGHUP reloading log_level and status_interval from the config
file (flags still win, other keys logged as needing a restart, a bad file
changing nothing); and the installed unit: ExecStart at the install prefix,
the directives the issue asks for, `systemd-analyze verify` clean, and the
sandbox's exposure score."""

import os
import re
import shutil
import signal
import subprocess
import time
import unittest
import uuid

import hglib
import opslib
from hglib import ROOT, HgTestCase, new_agent


class NotifyEnv:
    """Start an Hgd with NOTIFY_SOCKET (and optionally WATCHDOG_USEC) set."""

    def __init__(self, test, extra_args=(), watchdog_usec=None, watchdog_pid=None,
                 broker_uri=None, config_file=None):
        env = test.env
        self.listener = opslib.NotifyListener(env.tmp)
        inst = "nt-" + uuid.uuid4().hex[:6]
        args = ["--instance", inst] + list(extra_args)
        if broker_uri:
            args += ["--broker", broker_uri]
        self.hgd = hglib.Hgd(env, inst, args, config_file=config_file,
                             state_dir=os.path.join(env.tmp, "state-" + inst))
        self.instance = inst
        self.test = test
        self._env = {"NOTIFY_SOCKET": self.listener.path}
        if watchdog_usec is not None:
            self._env["WATCHDOG_USEC"] = str(watchdog_usec)
        if watchdog_pid is not None:
            self._env["WATCHDOG_PID"] = str(watchdog_pid)

    def start(self, wait=True):
        saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        os.environ.update(self._env)
        for k in ("WATCHDOG_USEC", "WATCHDOG_PID"):
            if k not in self._env:
                os.environ.pop(k, None)
        try:
            self.hgd.start(wait=wait)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return self

    def close(self):
        self.hgd.stop()
        self.listener.close()
        self.test.env.hgd.logs.extend(self.hgd.logs)


class TestNotify(HgTestCase):

    def notify(self, **kw):
        n = NotifyEnv(self, **kw)
        self.addCleanup(n.close)
        return n

    def test_ready_only_once_subscribed(self):
        """With the broker down hgd says STATUS=connecting and no READY=1;
        READY=1 follows the first subscription, and a request sent right
        after READY=1 is answered."""
        env = self.env
        broker = hglib.Broker(os.path.join(env.tmp))
        broker.conf = os.path.join(env.tmp, "mosquitto-late.conf")
        broker.log = os.path.join(env.tmp, "mosquitto-late.log")
        self.addCleanup(broker.stop)
        n = self.notify(broker_uri=broker.uri).start(wait=False)
        st = n.listener.wait_for("STATUS", timeout=10)
        self.assertIsNotNone(st, "no STATUS= while connecting")
        self.assertIn("connecting", st[1]["STATUS"])
        time.sleep(2.5)
        self.assertEqual(n.listener.with_key("READY"), [], "READY=1 before the broker is up")
        self.assertTrue(n.hgd.running())
        broker.start()
        ready = n.listener.wait_for("READY", "1", timeout=15)
        self.assertIsNotNone(ready, "no READY=1 after the broker came up:\n" +
                             hglib.tail(n.hgd.log))
        self.assertIn("subscribed", ready[1].get("STATUS", ""))
        good = opslib.events(n.hgd.log_text(), "ready")
        self.assertTrue(good, "READY=1 comes with event=ready")
        # subscribed already: a request published now is answered
        c = hglib.MqttClient(broker.port).connect()
        try:
            r = c.request("get", {"agentId": new_agent()}, *env.creds("ops"))
            self.assertIsNotNone(r, "no reply right after READY=1")
            self.assertIs(r.success, True)
        finally:
            c.close()
        self.assertEqual(len(n.listener.with_key("READY", "1")), 1, "READY=1 once")

    def test_watchdog_pings(self):
        n = self.notify(watchdog_usec=600000).start()
        t0 = time.monotonic()
        time.sleep(2.0)
        pings = [t for t, _ in n.listener.with_key("WATCHDOG", "1", after=t0)]
        # every 0.3 s (half of 0.6 s): about 6 in 2 s
        self.assertGreaterEqual(len(pings), 4, "WATCHDOG=1 pings: %d in 2 s" % len(pings))
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 0.6, "a ping gap reached WATCHDOG_USEC: %r" % gaps)

    def test_no_watchdog_unless_asked(self):
        for kw in ({}, {"watchdog_usec": 600000, "watchdog_pid": 1}):
            with self.subTest(kw):
                n = NotifyEnv(self, **kw).start()
                try:
                    time.sleep(1.5)
                    self.assertEqual(n.listener.with_key("WATCHDOG"), [],
                                     "WATCHDOG=1 without WATCHDOG_USEC for this pid")
                    self.assertTrue(n.listener.with_key("READY", "1"))
                finally:
                    n.close()

    def test_reload_and_stop(self):
        n = self.notify().start()
        n.listener.wait_for("READY", "1")
        t0 = time.monotonic()
        n.hgd.proc.send_signal(signal.SIGHUP)
        reloading = n.listener.wait_for("RELOADING", "1", after=t0)
        self.assertIsNotNone(reloading, "no RELOADING=1 on SIGHUP")
        ready = n.listener.wait_for("READY", "1", after=reloading[0])
        self.assertIsNotNone(ready, "no READY=1 after the reload")
        hglib.wait_until(lambda: opslib.events(n.hgd.log_text(), "keys.reloaded"), 5,
                         what="keys.reloaded")
        t1 = time.monotonic()
        self.assertEqual(n.hgd.stop(signal.SIGTERM), 0)
        stopping = n.listener.with_key("STOPPING", "1", after=t1)
        self.assertEqual(len(stopping), 1, "one STOPPING=1 on SIGTERM")

    def test_paused_intake_keeps_the_main_loop_turning(self):
        """While intake waits for room in the outbox (Paho's receive thread
        blocked inside its callback), the main loop still pings the watchdog
        and handles SIGTERM: a status publish must not wait for Paho there."""
        n = self.notify(watchdog_usec=600000, extra_args=["--outbox-limit", "1"]).start()
        env = self.env
        agent, path = new_agent(), self.path()
        self.rx.program(path, [hglib.Response(200, hang=20)] * 3)
        env.upsert({"agentId": agent, "url": self.url(path)})
        for i in range(3):
            env.escalate(agent, {"reason": "fill %d" % i})
        hglib.wait_until(lambda: opslib.events(n.hgd.log_text(), "intake.paused"), 10,
                         what="intake.paused")
        time.sleep(2.5)  # several status intervals (1 s) while paused
        t0 = time.monotonic()
        time.sleep(1.5)
        pings = n.listener.with_key("WATCHDOG", "1", after=t0)
        self.assertGreaterEqual(len(pings), 3, "watchdog pings stopped while intake is paused")
        t1 = time.monotonic()
        rc = n.hgd.stop(signal.SIGTERM, timeout=10)
        self.assertEqual(rc, 0, "SIGTERM while intake is paused:\n" + hglib.tail(n.hgd.log))
        self.assertLess(time.monotonic() - t1, 5)

    # ------------------------------------------------------------ reload
    def write_conf(self, path, **settings):
        env = self.env
        base = {"broker": env.broker.uri, "keys": env.keys_path, "allow_net": "127.0.0.0/8",
                "webhook_cafile": env.ca, "retry_schedule": "0.5,1"}
        base.update(settings)
        with open(path + ".tmp", "w") as f:
            for k, v in base.items():
                f.write("%s = %s\n" % (k, v))
        os.replace(path + ".tmp", path)

    def test_sighup_reloads_live_settings(self):
        env = self.env
        conf = os.path.join(env.tmp, "reload-%s.conf" % uuid.uuid4().hex[:6])
        self.write_conf(conf, log_level="info", status_interval="1")
        inst = "rl-" + uuid.uuid4().hex[:6]
        h = hglib.Hgd(env, inst, ["--instance", inst, "--state-dir",
                                  os.path.join(env.tmp, "state-" + inst)], config_file=conf)
        self.addCleanup(lambda: (h.stop(), env.hgd.logs.extend(h.logs)))
        h.start()
        agent, path = new_agent(), self.path()
        env.upsert({"agentId": agent, "url": self.url(path)})
        env.escalate(agent, {"reason": "before"})
        self.rx.wait_for(path, 1)
        time.sleep(0.3)
        self.assertEqual(opslib.events(h.log_text(), "escalation.accepted"), [],
                         "debug line at info level")

        # debug level and a faster status interval, plus a restart-only key
        self.write_conf(conf, log_level="debug", status_interval="0.25",
                        max_payload="2048", broker=env.broker.uri + "/")
        h.proc.send_signal(signal.SIGHUP)
        line = hglib.wait_until(lambda: opslib.events(h.log_text(), "config.reloaded"), 5,
                                what="config.reloaded")[0]
        self.assertEqual(line["log_level"], "debug")
        self.assertEqual(line["status_interval"], "0.25")
        need = opslib.events(h.log_text(), "config.restart_needed")
        self.assertEqual(len(need), 1, "restart-only changes are logged")
        self.assertEqual(set(need[0]["keys"].split(",")), {"broker", "max_payload"})
        env.escalate(agent, {"reason": "after"})
        self.rx.wait_for(path, 2)
        hglib.wait_until(lambda: opslib.events(h.log_text(), "escalation.accepted"), 5,
                         what="a debug line after the reload")
        t0 = time.time()
        time.sleep(1.3)
        ms = env.status_sub.matching(lambda m: m.topic == "%s/status/%s" % (ROOT, inst)
                                     and m.time >= t0)
        self.assertGreaterEqual(len(ms), 4, "status_interval 0.25 after reload: %d in 1.3 s"
                                % len(ms))
        # restart-only keys kept their old value: a 3000-byte escalation is
        # still accepted (max_payload stays 65536 until restart)
        big = {"reason": "x" * 3000}
        n_before = len(self.rx.requests(path))
        env.escalate(agent, big)
        self.rx.wait_for(path, n_before + 1)

        # a broken file: nothing changes, the reason is logged
        with open(conf, "a") as f:
            f.write("log_level = loud\n")
        h.proc.send_signal(signal.SIGHUP)
        hglib.wait_until(lambda: opslib.events(h.log_text(), "config.reload_failed"), 5,
                         what="config.reload_failed")
        self.assertIn("%s:" % os.path.basename(conf), h.log_text())
        self.assertTrue(h.running())
        n = len(opslib.events(h.log_text(), "escalation.accepted"))
        env.escalate(agent, {"reason": "still debug"})
        hglib.wait_until(lambda: len(opslib.events(h.log_text(), "escalation.accepted")) > n, 5,
                         what="still at debug level after a bad reload")
        _, bad = opslib.log_lines("\n".join(l for l in h.log_text().splitlines()
                                            if not l.startswith("hgd: ")))
        self.assertEqual(bad, [])

    def test_flags_win_over_reloaded_file(self):
        env = self.env
        conf = os.path.join(env.tmp, "reload-flag-%s.conf" % uuid.uuid4().hex[:6])
        self.write_conf(conf, log_level="info")
        inst = "rf-" + uuid.uuid4().hex[:6]
        h = hglib.Hgd(env, inst, ["--instance", inst, "--log-level", "warn", "--state-dir",
                                  os.path.join(env.tmp, "state-" + inst)], config_file=conf)
        self.addCleanup(lambda: (h.stop(), env.hgd.logs.extend(h.logs)))
        h.start()
        self.write_conf(conf, log_level="debug")
        h.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        # config.reloaded is an info line: at warn it does not show, and no
        # debug line may appear either
        agent = new_agent()
        env.escalate(agent, {"reason": "x"})
        time.sleep(0.5)
        levels = {d["level"] for d in opslib.log_lines(h.log_text())[0]}
        self.assertLessEqual(levels, {"warn", "error"}, "the --log-level flag still wins")


# --------------------------------------------------------------------------
# the installed unit
# --------------------------------------------------------------------------


class TestUnit(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tree = opslib.InstallTree()
        cls.tree.install()
        cls.unit = os.path.join(cls.tree.prefix, "lib/systemd/system/hgd.service")

    @classmethod
    def tearDownClass(cls):
        cls.tree.close()

    def directives(self):
        out = {}
        with open(self.unit) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith(("#", ";", "[")):
                    continue
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
        return out

    def test_installed_files(self):
        files = self.tree.files()
        for f in ("bin/hgd", "bin/hgctl", "lib/systemd/system/hgd.service",
                  "lib/sysusers.d/hgd.conf", "share/man/man8/hgd.8.gz",
                  "share/man/man1/hgctl.1.gz", "share/bash-completion/completions/hgctl",
                  "share/doc/hgd/examples/hgd.conf.example",
                  "share/doc/hgd/examples/keys.json.example", "share/doc/hgd/OPERATIONS.md"):
            self.assertIn(f, files)

    def test_unit_directives(self):
        d = self.directives()
        bindir = os.path.join(self.tree.prefix, "bin")
        self.assertEqual(d["ExecStart"], ["%s/hgd -c /etc/hgd/hgd.conf" % bindir])
        self.assertTrue(os.access(d["ExecStart"][0].split()[0], os.X_OK))
        want = {"Type": "notify", "WatchdogSec": "30s", "Restart": "on-failure",
                "StateDirectory": "hgd", "ConfigurationDirectory": "hgd", "User": "hgd",
                "ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes",
                "PrivateTmp": "yes", "NotifyAccess": "main"}
        for k, v in want.items():
            self.assertEqual(d.get(k), [v], k)
        self.assertIn("@system-service", d["SystemCallFilter"])
        self.assertEqual(d["RestrictAddressFamilies"], ["AF_INET AF_INET6 AF_UNIX"])
        self.assertTrue(any("kill -HUP $MAINPID" in v for v in d["ExecReload"]))
        self.assertNotIn("DynamicUser", d, "a dedicated user owns /etc/hgd/keys.json")
        with open(os.path.join(self.tree.prefix, "lib/sysusers.d/hgd.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^u hgd - .* /var/lib/hgd /usr/sbin/nologin$")

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        env = dict(os.environ)
        # Documentation=man:hgd(8) is checked with man(1): find the
        # installed page.
        env["MANPATH"] = os.path.join(self.tree.prefix, "share/man")
        if not shutil.which("man"):
            self.skipTest("man is not installed (Debian package man-db): "
                          "verify checks Documentation=man:hgd(8)")
        r = subprocess.run([tool, "verify", self.unit], capture_output=True, text=True,
                           env=env, timeout=60, cwd=self.tree.tmp)
        if r.returncode != 0 and re.search(r"(Failed to (connect|initialize)|No such file or "
                                           r"directory.*/run/systemd|chroot)", r.stderr) and \
                "hgd.service" not in r.stderr:
            self.skipTest("systemd-analyze cannot run here: %s" % r.stderr.strip()[:200])
        self.assertEqual(r.returncode, 0, "systemd-analyze verify:\n%s%s" % (r.stdout, r.stderr))
        self.assertNotIn("hgd.service:", r.stdout + r.stderr)

    def test_sandbox_exposure(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze is not installed")
        r = subprocess.run([tool, "security", "--offline=yes", "--no-pager", self.unit],
                           capture_output=True, text=True, timeout=60, cwd=self.tree.tmp)
        m = re.search(r"Overall exposure level for hgd.service: ([\d.]+)", r.stdout)
        if not m:
            self.skipTest("systemd-analyze security --offline unsupported: %s" % r.stderr[:200])
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout[-3000:])

    def test_sample_config_and_keys(self):
        ex = os.path.join(self.tree.prefix, "share/doc/hgd/examples")
        keys = os.path.join(self.tree.tmp, "keys.json")
        fd = os.open(keys, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b'{"keys": [{"id": "ops", "secret": "hgk_0123456789abcdef0123456789abcdef",'
                     b' "agents": ["*"], "actions": ["get"]}]}')
        os.close(fd)
        hgd = os.path.join(self.tree.prefix, "bin/hgd")
        r = subprocess.run([hgd, "-c", os.path.join(ex, "hgd.conf.example"), "--keys", keys,
                            "--check-config"], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # the sample keys file has no usable secrets: copied as is, it is refused
        sample = os.path.join(self.tree.tmp, "keys-sample.json")
        shutil.copy(os.path.join(ex, "keys.json.example"), sample)
        os.chmod(sample, 0o600)
        r = subprocess.run([hgd, "-c", os.path.join(ex, "hgd.conf.example"), "--keys", sample,
                            "--check-config"], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("secret", r.stderr)


if __name__ == "__main__":
    hglib.main()
