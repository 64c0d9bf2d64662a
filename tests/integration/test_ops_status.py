#!/usr/bin/python3
"""Monitoring over MQTT (PROTOCOL.md sections 5 and 7, issue 4): the full
status document with every field and the counters moving, republished every
status_interval; the will on SIGKILL (no timestamp) and the clean-stop
variant (with it), both matching the run's started_at; the retained
agent/<id>/fields document on upsert and its zero-length clear on delete;
`hgctl status` showing every instance (online, version, uptime, counters)
and `hgctl status --watch` following the retained topics as they change."""

import json
import os
import re
import select
import signal
import subprocess
import time
import uuid

import hglib
import opslib
from hglib import ISO_RE, ROOT, HgTestCase, Response, new_agent

TOP_KEYS = {"online", "instance", "version", "started_at", "timestamp", "webhooks",
            "escalations", "deliveries"}
ESC_KEYS = {"accepted", "rejected"}
DEL_KEYS = {"delivered", "retrying", "failed", "skipped", "pending"}


def counters(doc):
    out = {"webhooks": doc["webhooks"]}
    out.update({"escalations." + k: v for k, v in doc["escalations"].items()})
    out.update({"deliveries." + k: v for k, v in doc["deliveries"].items()})
    return out


class TestStatus(HgTestCase):

    def topic(self, instance=None):
        return "%s/status/%s" % (ROOT, instance or self.env.instance)

    def retained(self, instance=None, timeout=5):
        m = self.env.client.retained(self.topic(instance), timeout)
        self.assertIsNotNone(m, "no retained status on %s" % self.topic(instance))
        self.assertTrue(m.retain)
        self.assertEqual(m.qos, 1)
        return m.json()

    def latest(self, after):
        """The newest status publish of env's hgd that arrived after `after`."""
        def fresh():
            ms = self.env.status_sub.matching(
                lambda m: m.topic == self.topic() and m.payload and m.time > after)
            return ms[-1].json() if ms else None
        return hglib.wait_until(fresh, 5, what="a status publish")

    def wait_counters(self, base, want, timeout=8):
        """Until the status shows base + want (deltas) for every key in want."""
        last = {}

        def ok():
            nonlocal last
            last = counters(self.latest(time.time() - 0.01))
            return all(last[k] - base[k] == d for k, d in want.items())
        try:
            hglib.wait_until(ok, timeout, interval=0.2, what="status counters")
        except TimeoutError:
            self.fail("counters: want deltas %r from %r, last %r" % (want, base, last))
        return last

    def assertFullDocument(self, doc, instance=None):
        self.assertEqual(set(doc), TOP_KEYS, "status document keys")
        self.assertIs(doc["online"], True)
        self.assertEqual(doc["instance"], instance or self.env.instance)
        self.assertEqual(doc["version"], opslib.hgd_version())
        self.assertRegex(doc["started_at"], ISO_RE)
        self.assertRegex(doc["timestamp"], ISO_RE)
        self.assertLessEqual(doc["started_at"], doc["timestamp"])
        self.assertEqual(set(doc["escalations"]), ESC_KEYS)
        self.assertEqual(set(doc["deliveries"]), DEL_KEYS)
        for k, v in counters(doc).items():
            self.assertIsInstance(v, int, k)
            self.assertNotIsInstance(v, bool, k)
            self.assertGreaterEqual(v, 0, k)

    # ------------------------------------------------------------ document
    def test_full_document(self):
        self.assertFullDocument(self.retained())

    def test_counters_follow_what_happens(self):
        env = self.env
        base = counters(self.latest(time.time()))
        ok_agent, ok_path = new_agent(), self.path()
        retry_agent, retry_path = new_agent(), self.path()
        fail_agent, fail_path = new_agent(), self.path()
        self.rx.program(retry_path, [Response(503), Response(200)])
        self.rx.program(fail_path, [Response(404)])
        for a, p in ((ok_agent, ok_path), (retry_agent, retry_path), (fail_agent, fail_path)):
            env.upsert({"agentId": a, "url": self.url(p)})
        self.wait_counters(base, {"webhooks": 3})
        env.escalate(ok_agent, {"reason": "ok"})
        env.escalate(retry_agent, {"reason": "retry"})
        env.escalate(fail_agent, {"reason": "fail"})
        env.escalate(new_agent(), {"reason": "nobody"})          # skipped at intake
        env.escalate(ok_agent, b"[1,2]")                          # rejected: not an object
        env.escalate(ok_agent, {"reason": "x"}, key="reader")     # rejected: not allowed
        self.rx.wait_for(retry_path, 2)
        last = self.wait_counters(base, {
            "escalations.accepted": 4, "escalations.rejected": 2,
            "deliveries.delivered": 2, "deliveries.retrying": 1, "deliveries.failed": 1,
            "deliveries.skipped": 1, "deliveries.pending": 0, "webhooks": 3})
        self.assertOk(env.request("delete", {"agentId": fail_agent}))
        self.wait_counters(last, {"webhooks": -1})

    def test_pending_counts_waiting_deliveries(self):
        env = self.env
        agent, path = new_agent(), self.path()
        self.rx.program(path, [Response(200, hang=3)])
        env.upsert({"agentId": agent, "url": self.url(path)})
        base = counters(self.latest(time.time()))
        env.escalate(agent, {"reason": "slow"})
        self.wait_counters(base, {"deliveries.pending": 1, "escalations.accepted": 1})
        self.wait_counters(base, {"deliveries.pending": 0, "deliveries.delivered": 1})

    def test_republished_every_interval(self):
        """--status-interval 1 in the harness: fresh (non-retained) publishes
        about a second apart, each a full document of the same run."""
        t0 = time.time()
        ms = hglib.wait_until(lambda: (lambda l: l if len(l) >= 4 else None)(
            self.env.status_sub.matching(lambda m: m.topic == self.topic() and
                                         not m.retain and m.time >= t0)),
            8, what="four status publishes")
        docs = [m.json() for m in ms[:4]]
        for d in docs:
            self.assertFullDocument(d)
        self.assertEqual(len({d["started_at"] for d in docs}), 1)
        gaps = [b.time - a.time for a, b in zip(ms, ms[1:4])]
        for g in gaps:
            self.assertGreater(g, 0.6, "status republished too often: %r" % gaps)
            self.assertLess(g, 1.8, "status not republished every interval: %r" % gaps)
        stamps = [d["timestamp"] for d in docs]
        self.assertEqual(stamps, sorted(set(stamps)), "timestamps increase")

    def test_status_interval_from_config(self):
        """A second instance with --status-interval 0.3 republishes faster."""
        env = self.env
        inst = "fast-" + uuid.uuid4().hex[:6]
        h = hglib.Hgd(env, inst, ["--instance", inst, "--status-interval", "0.3"],
                      state_dir=os.path.join(env.tmp, "state-" + inst))
        try:
            h.start()
            t0 = time.time()
            time.sleep(1.6)
            ms = env.status_sub.matching(lambda m: m.topic == self.topic(inst) and
                                         m.time >= t0)
            self.assertGreaterEqual(len(ms), 4, "0.3 s interval: %d publishes in 1.6 s"
                                    % len(ms))
        finally:
            h.stop()
            env.hgd.logs.extend(h.logs)

    # ------------------------------------------------------ will and stop
    def run_second(self, name):
        env = self.env
        inst = "%s-%s" % (name, uuid.uuid4().hex[:6])
        h = hglib.Hgd(env, inst, ["--instance", inst],
                      state_dir=os.path.join(env.tmp, "state-" + inst))
        h.start()
        return h, inst

    def test_will_on_sigkill(self):
        env = self.env
        h, inst = self.run_second("kill")
        try:
            born = self.retained(inst)
            self.assertFullDocument(born, inst)
            h.kill()
            will = hglib.wait_until(
                lambda: (lambda d: d if d.get("online") is False else None)(
                    self.retained(inst)), 10, what="the will")
            self.assertEqual(will, {"online": False, "instance": inst,
                                    "started_at": born["started_at"]},
                             "the will is exactly online/instance/started_at")
        finally:
            h.stop()
            env.hgd.logs.extend(h.logs)

    def test_clean_stop_variant(self):
        env = self.env
        h, inst = self.run_second("stop")
        try:
            born = self.retained(inst)
            t_stop = time.time()
            self.assertEqual(h.stop(signal.SIGTERM), 0)
            off = self.retained(inst)
            self.assertEqual(set(off), {"online", "instance", "started_at", "timestamp"}, off)
            self.assertIs(off["online"], False)
            self.assertEqual(off["instance"], inst)
            self.assertEqual(off["started_at"], born["started_at"])
            self.assertRegex(off["timestamp"], ISO_RE)
            self.assertGreaterEqual(off["timestamp"], born["timestamp"])
            self.assertLessEqual(off["timestamp"][:19],
                                 time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1)))
            self.assertGreaterEqual(off["timestamp"][:19],
                                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_stop - 1)))
            # and the broker does not publish the will after a clean stop
            time.sleep(1.0)
            self.assertEqual(self.retained(inst), off)
            # a new run is born with a new started_at
            h.start()
            again = self.retained(inst)
            self.assertIs(again["online"], True)
            self.assertNotEqual(again["started_at"], born["started_at"])
        finally:
            h.stop()
            env.hgd.logs.extend(h.logs)

    # -------------------------------------------------------- fields topic
    def fields_doc(self, agent, timeout=3):
        m = self.env.client.retained("%s/agent/%s/fields" % (ROOT, agent.lower()), timeout)
        return m

    def test_fields_topic(self):
        env = self.env
        agent = new_agent(upper=True)
        env.upsert({"agentId": agent, "url": self.url(), "custom_fields": [
            "accountNumber", {"key": "orderId", "hint": "Ask for the order number",
                              "useForSignature": True},
            {"key": "reason"}]})
        m = self.fields_doc(agent)
        self.assertIsNotNone(m, "no retained fields document")
        self.assertTrue(m.retain)
        self.assertEqual(m.qos, 1)
        self.assertEqual(m.json(), {"fields": [
            {"key": "accountNumber", "hint": None},
            {"key": "orderId", "hint": "Ask for the order number"},
            {"key": "reason", "hint": None}]})
        # an upsert replaces it, also with no fields at all
        env.upsert({"agentId": agent, "url": self.url(), "custom_fields": [
            {"key": "zip", "hint": "postcode"}]})
        hglib.wait_until(lambda: self.fields_doc(agent).json() ==
                         {"fields": [{"key": "zip", "hint": "postcode"}]}, 5,
                         what="the replaced fields document")
        env.upsert({"agentId": agent, "url": self.url()})
        hglib.wait_until(lambda: self.fields_doc(agent).json() == {"fields": []}, 5,
                         what="an empty fields list")
        # delete: a zero-length retained message clears the topic
        sub = env.client.subscribe("%s/agent/%s/fields" % (ROOT, agent.lower()))
        self.assertOk(env.request("delete", {"agentId": agent}))
        clear = sub.wait_for(lambda m: m.payload == b"", 5)
        env.client.unsubscribe(sub)
        self.assertIsNotNone(clear, "no zero-length publish on delete")
        self.assertIsNone(self.fields_doc(agent, 1.0), "fields topic still retained after delete")

    # ---------------------------------------------------------- hgctl status
    def test_hgctl_status_shows_every_instance(self):
        env = self.env
        h, inst = self.run_second("ctl")
        try:
            r = env.hgctl("status", auth=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            docs = json.loads(r.stdout)
            by = {d["instance"]: d for d in docs}
            self.assertIn(env.instance, by)
            self.assertIn(inst, by)
            self.assertFullDocument(by[env.instance])
            self.assertEqual([d["instance"] for d in docs],
                             sorted(d["instance"] for d in docs), "sorted by topic")
            # on a terminal: online, version, uptime and the counters of each
            out, rc = run_on_tty([hglib.binary("hgctl"), "-h", "127.0.0.1", "-p",
                                  str(env.broker.port), "status"], env.tmp)
            env.outputs.append(("tty status", out))
            self.assertEqual(rc, 0, out)
            for name in (env.instance, inst):
                block = instance_block(out, name)
                self.assertIsNotNone(block, "instance %s missing:\n%s" % (name, out))
                self.assertRegex(block, r"online: true")
                self.assertRegex(block, r"version: \d+\.\d+\.\d+")
                self.assertRegex(block, r"uptime: (\d+d )?(\d+h )?(\d+m )?\d+s",
                                 "uptime shown:\n" + block)
                for k in ("accepted", "rejected", "delivered", "retrying", "failed",
                          "skipped", "pending", "webhooks"):
                    self.assertRegex(block, r"\b%s: \d+" % k)
            # a stopped instance is shown offline, without uptime
            self.assertEqual(h.stop(), 0)
            out, rc = run_on_tty([hglib.binary("hgctl"), "-h", "127.0.0.1", "-p",
                                  str(env.broker.port), "status"], env.tmp)
            block = instance_block(out, inst)
            self.assertIsNotNone(block, out)
            self.assertIn("online: false", block)
            self.assertNotIn("uptime:", block)
        finally:
            h.stop()
            env.hgd.logs.extend(h.logs)

    def test_hgctl_status_watch_follows_changes(self):
        env = self.env
        h, inst = self.run_second("watch")
        cmd = [hglib.binary("hgctl"), "-h", "127.0.0.1", "-p", str(env.broker.port),
               "--json", "status", "--watch"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, preexec_fn=hglib._die_with_parent)
        lines = []

        def read_until(pred, timeout):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                r, _, _ = select.select([p.stdout], [], [], 0.2)
                if r:
                    line = p.stdout.readline()
                    if not line:
                        break
                    doc = json.loads(line)
                    lines.append((time.monotonic(), doc))
                    if pred(doc):
                        return doc
            return None
        try:
            # the retained documents first: both instances
            seen = set()
            read_until(lambda d: seen.add(d.get("instance")) or {env.instance, inst} <= seen, 5)
            self.assertLessEqual({env.instance, inst}, seen, "retained documents of both")
            # then every republish: at least two more of the second instance
            t0 = time.monotonic()
            n0 = len([1 for _, d in lines if d.get("instance") == inst])
            read_until(lambda d: len([1 for _, x in lines if x.get("instance") == inst])
                       >= n0 + 2, 5)
            self.assertGreaterEqual(len([1 for _, d in lines if d.get("instance") == inst]),
                                    n0 + 2, "republished documents printed as they come")
            self.assertLess(time.monotonic() - t0, 4.5)
            # a crash: the will appears in the watch
            h.kill()
            will = read_until(lambda d: d.get("instance") == inst and d.get("online") is False,
                              10)
            self.assertIsNotNone(will, "the will did not show up in --watch")
            self.assertNotIn("timestamp", will)
            # and a restart: online again with a new started_at
            h.start()
            back = read_until(lambda d: d.get("instance") == inst and d.get("online") is True
                              and d.get("started_at") != will["started_at"], 10)
            self.assertIsNotNone(back, "the new run did not show up in --watch")
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(5), 0, "--watch exits 0 on SIGINT")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
            h.stop()
            env.hgd.logs.extend(h.logs)


def instance_block(out, name):
    """The lines of one instance in hgctl's terminal rendering: from the line
    naming it to the next blank line."""
    blocks = re.split(r"\r?\n\s*\r?\n", out)
    for b in blocks:
        if re.search(r"instance: %s\b" % re.escape(name), b):
            return b
    return None


def run_on_tty(cmd, tmp, timeout=20):
    import pty
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HGCTL_")}
    env.update({"HOME": tmp, "XDG_CONFIG_HOME": os.path.join(tmp, "none"), "TERM": "dumb"})
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env,
                         preexec_fn=hglib._die_with_parent)
    os.close(slave)
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    try:
        rc = p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    return out.decode("utf-8", "replace"), rc


if __name__ == "__main__":
    hglib.main()
