#!/usr/bin/python3
"""Files that hold secrets (issue 5 item 3).

Keys file: any group or other permission bit → hgd refuses to start with a
clear message naming the file, its mode and the fix; 0600 and 0400 are fine;
a FIFO or a directory is refused at once (a FIFO used to hang the start with
SIGTERM blocked); a SIGHUP reload of a file that became group-readable keeps
the old keys. No message echoes a secret.

State files: with umask 0 the state directory is 0700 and webhooks.jsonl and
outbox.jsonl are 0600, also after a compaction; a store or outbox file found
group/world-readable is tightened to 0600 at start.
"""

import json
import os
import signal
import stat
import subprocess
import time

import hglib
import seclib
from hglib import HgTestCase, new_agent


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class TestKeysFile(HgTestCase):
    start_hgd = False

    def run_hgd(self, args, timeout=10):
        try:
            r = subprocess.run([hglib.binary("hgd")] + list(args), capture_output=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.fail("hgd %s did not exit within %ds" % (" ".join(args), timeout))
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.env.outputs.append(("hgd " + " ".join(args[:2]), out))
        return r.returncode, out

    def check_args(self, keys):
        e = self.env
        return ["--check-config", "--broker", e.broker.uri, "--keys", keys,
                "--state-dir", os.path.join(e.tmp, "state-check"), "--instance", "keys-check"]

    def keys_copy(self, name, m):
        p = os.path.join(self.env.tmp, name)
        with open(self.env.keys_path) as f:
            text = f.read()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(p, m)
        return p

    def test_group_or_world_bits_refused(self):
        for m in (0o604, 0o640, 0o644, 0o660, 0o620, 0o602, 0o610, 0o601, 0o666, 0o700 | 0o004):
            with self.subTest(oct(m)):
                p = self.keys_copy("keys-%o.json" % m, m)
                rc, out = self.run_hgd(self.check_args(p))
                self.assertEqual(rc, 1, out)
                self.assertIn(p, out)
                self.assertIn("%04o" % m, out)
                self.assertIn("chmod 600", out)
                for s in self.env.secrets:
                    self.assertNotIn(s, out)

    def test_owner_only_modes_accepted(self):
        for m in (0o600, 0o400):
            with self.subTest(oct(m)):
                p = self.keys_copy("keys-ok-%o.json" % m, m)
                rc, out = self.run_hgd(self.check_args(p))
                self.assertEqual(rc, 0, out)

    def test_fifo_and_directory_refused_at_once(self):
        fifo = os.path.join(self.env.tmp, "keys-fifo.json")
        os.mkfifo(fifo, 0o600)
        d = os.path.join(self.env.tmp, "keys-dir.json")
        os.mkdir(d, 0o700)
        for p, what in ((fifo, "not a regular file"), (d, None)):
            with self.subTest(p):
                t0 = time.monotonic()
                rc, out = self.run_hgd(self.check_args(p), timeout=5)
                self.assertEqual(rc, 1, out)
                self.assertIn(p, out)
                if what:
                    self.assertIn(what, out)
                self.assertLess(time.monotonic() - t0, 5)

    def test_messages_never_echo_secrets(self):
        e = self.env
        secret = e.secret("hgk_")
        bad = [
            ("broken JSON after a secret", '{"keys":[{"id":"x","secret":"%s", oops' % secret),
            ("secret where the id goes", json.dumps({"keys": [{"secret": secret}]})),
            ("unknown action", json.dumps({"keys": [{"id": "x", "secret": secret,
                                                      "agents": ["*"], "actions": ["fly"]}]})),
            ("agents not an array", json.dumps({"keys": [{"id": "x", "secret": secret,
                                                           "agents": "*", "actions": []}]})),
            ("duplicate id", json.dumps({"keys": [
                {"id": "x", "secret": secret, "agents": [], "actions": []},
                {"id": "x", "secret": secret + "2", "agents": [], "actions": []}]})),
        ]
        for what, text in bad:
            with self.subTest(what):
                p = os.path.join(e.tmp, "keys-bad.json")
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                rc, out = self.run_hgd(self.check_args(p))
                self.assertEqual(rc, 1, out)
                self.assertNotIn(secret, out)
                self.assertNotIn(secret[4:], out)

    def test_reload_of_group_readable_file_keeps_old_keys(self):
        e = self.env
        h = seclib.SecHgd(e, e.instance + "-hup", allow_net=["127.0.0.0/8"],
                          state_dir=os.path.join(e.tmp, "state-hup"))
        h.start()
        try:
            agent = new_agent()
            self.assertOk(e.request("get", {"agentId": agent}))
            # A new key set that drops "ops", written group-readable.
            keys = {k: v for k, v in e.keys.items() if k != "ops"}
            e.write_keys(keys)
            os.chmod(e.keys_path, 0o640)
            h.proc.send_signal(signal.SIGHUP)
            hglib.wait_until(lambda: "event=keys.reload_failed" in h.log_text(), 5,
                             what="keys.reload_failed")
            line = [ln for ln in h.log_text().splitlines() if "keys.reload_failed" in ln][-1]
            self.assertIn("chmod 600", line)
            self.assertIn("kept=old", line)
            self.assertOk(e.request("get", {"agentId": agent}), "the old keys still work")
            os.chmod(e.keys_path, 0o600)
            h.proc.send_signal(signal.SIGHUP)
            hglib.wait_until(lambda: "event=keys.reloaded" in h.log_text(), 5,
                             what="keys.reloaded")
            self.assertError(e.request("get", {"agentId": agent}), "UNAUTHORIZED")
        finally:
            e.write_keys()
            h.stop()


class TestStateFileModes(HgTestCase):
    start_hgd = False

    def test_created_owner_only_under_umask_0(self):
        e = self.env
        sd = os.path.join(e.tmp, "state-umask0", "nested")
        h = seclib.SecHgd(e, e.instance + "-u0", allow_net=["127.0.0.0/8"], umask=0,
                          state_dir=sd)
        h.start()
        try:
            agent, path = new_agent(), self.path()
            e.upsert({"agentId": agent, "url": self.url(path), "secret": e.secret()})
            e.escalate(agent, {"reason": "modes"})
            self.assertEqual(len(self.rx.wait_for(path, 1)), 1)
        finally:
            self.assertEqual(h.stop(), 0)
        self.assertEqual(mode(sd), 0o700)
        self.assertEqual(mode(os.path.dirname(sd)), 0o700, "parents made by hgd too")
        for name in ("webhooks.jsonl", "outbox.jsonl"):
            self.assertEqual(mode(os.path.join(sd, name)), 0o600, name)
        for name in os.listdir(sd):
            self.assertEqual(mode(os.path.join(sd, name)) & 0o077, 0, name)

    def test_loose_files_tightened_and_compaction_keeps_0600(self):
        e = self.env
        sd = os.path.join(e.tmp, "state-loose")
        os.makedirs(sd, mode=0o700)
        agent = new_agent()
        row = {"id": new_agent(), "agent_id": agent, "url": self.url("/loose"),
               "secret": e.secret(), "secret_header": "X-HelpGenie-Signature",
               "custom_fields": [], "is_active": True,
               "created_at": "2026-12-03T18:00:00.000Z", "updated_at": "2026-12-03T18:00:00.000Z"}
        line = json.dumps({"op": "put", "row": row}, separators=(",", ":"))
        store = os.path.join(sd, "webhooks.jsonl")
        with open(store, "w") as f:
            f.write((line + "\n") * 1100)  # compacted at open: > 2 x rows + 1024 records
        os.chmod(store, 0o644)
        outbox = os.path.join(sd, "outbox.jsonl")
        with open(outbox, "w") as f:
            f.write('{"t":"seq","seq":7}\n')
        os.chmod(outbox, 0o664)
        h = seclib.SecHgd(e, e.instance + "-loose", allow_net=["127.0.0.0/8"], umask=0,
                          state_dir=sd)
        h.start()
        try:
            self.assertEqual(mode(store), 0o600)
            self.assertEqual(mode(outbox), 0o600)
            log = h.log_text()
            self.assertIn("event=journal.mode", log)
            self.assertIn("event=store.compact", log)
            with open(store) as f:
                self.assertEqual(len(f.read().splitlines()), 1, "compacted to one row")
            self.assertEqual(e.get(agent)["url"], row["url"])
        finally:
            self.assertEqual(h.stop(), 0)

    def test_symlinked_state_file_refused(self):
        # A link planted in the state directory made hgd use, and chmod
        # 0600, a file elsewhere (found by hostile testing).
        e = self.env
        for name in ("webhooks.jsonl", "outbox.jsonl"):
            with self.subTest(name=name):
                sd = os.path.join(e.tmp, "state-link-" + name.split(".")[0])
                os.makedirs(sd, mode=0o700)
                target = os.path.join(e.tmp, "elsewhere-" + name)
                with open(target, "w") as f:
                    f.write("")
                os.chmod(target, 0o644)
                os.symlink(target, os.path.join(sd, name))
                h = seclib.SecHgd(e, e.instance + "-link-" + name[0], allow_net=["127.0.0.0/8"],
                                  state_dir=sd)
                h.start(wait=False)
                hglib.wait_until(lambda: not h.running(), 10, what="hgd to refuse the link")
                self.assertEqual(h.proc.returncode, 1)
                log = h.log_text()
                self.assertIn(os.path.join(sd, name), log)
                self.assertIn("symbolic link", log)
                self.assertEqual(mode(target), 0o644, "the link's target was chmodded")
                with open(target) as f:
                    self.assertEqual(f.read(), "", "the link's target was written")


if __name__ == "__main__":
    hglib.main()
