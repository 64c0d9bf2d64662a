#!/usr/bin/python3
"""hgctl end to end (PROTOCOL.md section 8): every command against a real
hgd, --json and terminal output, environment and config file, and the exit
codes 0 (success), 1 (daemon error), 2 (usage), 3 (broker/timeout)."""

import json
import os
import pty
import re
import select
import socket
import subprocess
import threading
import time
import uuid

import hglib
from hglib import MASK, HgTestCase, new_agent, webhook_signature

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}")


class TestHgctl(HgTestCase):

    def ok(self, r):
        self.assertEqual(r.returncode, 0, "hgctl failed: rc=%d\nstdout: %s\nstderr: %s"
                         % (r.returncode, r.stdout, r.stderr))
        return r

    def ok_json(self, r):
        self.ok(r)
        try:
            return json.loads(r.stdout)
        except ValueError:
            self.fail("hgctl --json printed no JSON: %r" % r.stdout)

    def daemon_error(self, r, code):
        self.assertEqual(r.returncode, 1, "expected exit 1 (%s): rc=%d stdout=%r stderr=%r"
                         % (code, r.returncode, r.stdout, r.stderr))
        self.assertRegex(r.stderr, r"(?m)^hgctl: %s: \S" % code)

    # ------------------------------------------------------------- webhook
    def test_set_get_delete_json(self):
        agent, path, secret = new_agent(), self.path(), self.env.secret()
        url = self.url(path)
        row = self.ok_json(self.env.hgctl(
            "webhook", "set", agent.upper(), "--url", url, "--secret", secret,
            "--secret-header", "X-Acme-Sig", "--field", "accountNumber=the account number",
            "--field", "reason", "--sign-field", "callSid", "--sign-field", "order=the order"))
        self.assertRow(row, agent, url, secret=True, header="X-Acme-Sig", custom_fields=[
            {"key": "accountNumber", "hint": "the account number"}, "reason",
            {"key": "callSid", "useForSignature": True},
            {"key": "order", "hint": "the order", "useForSignature": True}])
        self.assertEqual(self.ok_json(self.env.hgctl("webhook", "get", agent)), row)
        self.assertEqual(self.env.get(agent), row, "hgctl and the raw client agree")
        self.assertEqual(self.ok_json(self.env.hgctl("webhook", "delete", agent)),
                         {"success": True})
        r = self.ok(self.env.hgctl("webhook", "get", agent))
        self.assertEqual(json.loads(r.stdout), None)

    def test_set_inactive_and_secret_file(self):
        agent, secret = new_agent(), self.env.secret()
        f = os.path.join(self.env.tmp, "secret.txt")
        with open(f, "w") as fh:
            fh.write(secret + "\n")
        row = self.ok_json(self.env.hgctl("webhook", "set", agent, "--url", self.url(),
                                          "--secret-file", f, "--inactive"))
        self.assertIs(row["is_active"], False)
        self.assertEqual(row["secret"], MASK)
        # the secret came from the file (newline stripped): a test POST shows it
        self.ok_json(self.env.hgctl("webhook", "set", agent, "--url", self.url(),
                                    "--secret-file", f))
        data = self.ok_json(self.env.hgctl("webhook", "test", agent))
        self.assertEqual(data["signature"],
                         webhook_signature(secret, json.dumps(data["payload"],
                                                              separators=(",", ":"),
                                                              ensure_ascii=False)))
        # the same from standard input
        r = self.env.hgctl("webhook", "set", agent, "--url", self.url(), "--secret-file", "-",
                           input=(secret + "\n").encode())
        self.assertEqual(self.ok_json(r)["secret"], MASK)

    def test_test_command(self):
        agent, path = new_agent(), self.path()
        self.rx.program(path, [hglib.Response(202, "queued")])
        self.ok(self.env.hgctl("webhook", "set", agent, "--url", self.url(path)))
        data = self.ok_json(self.env.hgctl("webhook", "test", agent))
        self.assertEqual(data["result"], {"status": 202, "body": "queued"})
        self.assertEqual(data["payload"]["eventType"], "escalation.test")
        self.assertEqual(len(self.rx.wait_for(path, 1)), 1)
        self.daemon_error(self.env.hgctl("webhook", "test", new_agent()), "NOT_FOUND")

    def test_test_command_waits_for_a_slow_receiver(self):
        # hgd answers a test after the POST (up to 5 s connect + 15 s): with
        # the default 10 s hgctl said "no reply from hgd" for a receiver
        # taking 11 s (hostile testing). Its default for test is 30 s.
        agent, path = new_agent(), self.path()
        self.rx.program(path, [hglib.Response(200, "slow", hang=11)])
        self.ok(self.env.hgctl("webhook", "set", agent, "--url", self.url(path)))
        key_id, secret = self.env.creds("ops")
        cmd = [hglib.binary("hgctl"), "-h", "127.0.0.1", "-p", str(self.env.broker.port),
               "--key-id", key_id, "--key-secret", secret, "--json", "webhook", "test", agent]
        r = self.env.run_hgctl(cmd, timeout=60)  # no --timeout: the default
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["result"], {"status": 200, "body": "slow"})

    def test_daemon_errors_exit_1(self):
        agent = new_agent()
        self.daemon_error(self.env.hgctl("webhook", "set", agent, "--url", "http://127.0.0.1/x"),
                          "VALIDATION_ERROR")
        self.daemon_error(self.env.hgctl("webhook", "set", agent, "--url", self.url(),
                                         "--secret-header", "Content-Type"),
                          "VALIDATION_ERROR")
        self.daemon_error(self.env.hgctl("webhook", "get", agent,
                                         key=("ops", "hgk_not_the_secret")), "UNAUTHORIZED")
        self.daemon_error(self.env.hgctl("webhook", "set", agent, "--url", self.url(),
                                         key="reader"), "UNAUTHORIZED")
        self.daemon_error(self.env.hgctl("webhook", "get", agent, key=("nobody", "x")),
                          "UNAUTHORIZED")
        self.assertIsNone(self.env.get(agent))

    def test_request_on_the_wire(self):
        """What hgctl publishes: a request signed as section 2 says (checked
        with the harness's own HMAC), Response Topic, Correlation Data and a
        Message Expiry; an escalation signed the same way."""
        agent = new_agent()
        sub = self.env.client.subscribe(hglib.ROOT + "/webhook/get")
        esc = self.env.client.subscribe(hglib.ROOT + "/escalation/" + agent)
        try:
            self.ok(self.env.hgctl("webhook", "get", agent))
            self.ok(self.env.hgctl("escalate", agent, "--reason", "wire"))
            req = sub.wait_for(timeout=5)
            ev = esc.wait_for(timeout=5)
        finally:
            self.env.client.unsubscribe(sub)
            self.env.client.unsubscribe(esc)
        key_id, secret = self.env.creds("ops")
        for what, m in (("request", req), ("escalation", ev)):
            with self.subTest(what):
                self.assertIsNotNone(m, "hgctl's %s not seen on the broker" % what)
                props = dict(m.user_props)
                self.assertEqual(props.get("hg-key"), key_id)
                self.assertRegex(props.get("hg-nonce", ""), r"^[0-9a-f]{16,64}$")
                self.assertLessEqual(abs(int(props.get("hg-ts", "0")) - time.time()), 5)
                self.assertEqual(props.get("hg-sig"), hglib.request_signature(
                    secret, m.topic, props["hg-ts"], props["hg-nonce"], m.payload))
                self.assertEqual(m.qos, 1)
        self.assertEqual(json.loads(req.payload), {"agentId": agent})
        self.assertTrue(req.response_topic, "request without Response Topic")
        self.assertTrue(req.correlation, "request without Correlation Data")
        self.assertIsNotNone(req.expiry, "request without Message Expiry")
        self.assertGreater(req.expiry, 0)
        self.assertLessEqual(req.expiry, 30)

    # ------------------------------------------------------------ escalate
    def test_escalate_prints_event_id_and_delivers(self):
        agent, path, secret = new_agent(), self.path(), self.env.secret()
        self.ok(self.env.hgctl("webhook", "set", agent, "--url", self.url(path), "--secret",
                               secret, "--field", "callerNumber", "--field", "reason",
                               "--field", "summary", "--field", "accountNumber",
                               "--field", "eventId"))
        r = self.ok(self.env.hgctl("escalate", agent, "--reason", "requested_human",
                                   "--summary", "Caller asked for a person \u260e",
                                   "--caller", "+15551230000", "--call-sid", "CA1",
                                   "--session", "sess-1", "--field", "accountNumber=AC-99817"))
        ids = UUID_RE.findall(r.stdout)
        self.assertEqual(len(ids), 1, "escalate prints the eventId it used: %r" % r.stdout)
        reqs = self.rx.wait_for(path, 1)
        self.assertEqual(len(reqs), 1, "no POST after hgctl escalate")
        body = reqs[0].json()
        self.assertEqual(body, {"callerNumber": "+15551230000", "reason": "requested_human",
                                "summary": "Caller asked for a person \u260e",
                                "accountNumber": "AC-99817", "eventId": ids[0].lower()})
        self.assertEqual(reqs[0].header("X-HelpGenie-Signature"),
                         webhook_signature(secret, reqs[0].body))

    def test_escalate_field_json_numbers_exact(self):
        # hgctl re-printed --field-json values with cJSON's 15-digit rounding:
        # 8999999999999999 went out as 9e+15, and DBL_MAX as a number above
        # DBL_MAX, which hgd rejected while hgctl said 0 (hostile testing).
        agent, path = new_agent(), self.path()
        self.ok(self.env.hgctl("webhook", "set", agent, "--url", self.url(path),
                               "--field", "a", "--field", "b", "--field", "c"))
        self.ok(self.env.hgctl("escalate", agent, "--field-json", "a=8999999999999999",
                               "--field-json", "b=0.30000000000000004",
                               "--field-json", "c=[1.7976931348623157e308]"))
        raw = self.rx.wait_for(path, 1)[0].body
        self.assertIn(b'"a":8999999999999999,"b":0.30000000000000004,'
                      b'"c":[1.7976931348623157e+308]', raw)

    def test_escalate_given_event_id_all_defaults(self):
        agent, path = new_agent(), self.path()
        self.ok(self.env.hgctl("webhook", "set", agent, "--url", self.url(path)))
        eid = str(uuid.uuid4())
        r = self.ok(self.env.hgctl("escalate", agent, "--event-id", eid, "--reason", "r",
                                   "--caller", "+1", "--call-sid", "CA2", "--summary", "s",
                                   "--session", "sess"))
        self.assertIn(eid, r.stdout)
        body = self.rx.wait_for(path, 1)[0].json()
        self.assertEqual({k: body[k] for k in ("eventId", "eventType", "callerNumber",
                                               "callSid", "reason", "summary",
                                               "agentSessionId")},
                         {"eventId": eid, "eventType": "escalation", "callerNumber": "+1",
                          "callSid": "CA2", "reason": "r", "summary": "s",
                          "agentSessionId": "sess"})

    # --------------------------------------------------- keygen and status
    def test_keygen(self):
        r = self.ok(self.env.hgctl("keygen", "--id", "node-test", auth=False, as_json=False))
        entry = json.loads(r.stdout)
        self.assertEqual(entry["id"], "node-test")
        self.assertIsInstance(entry["secret"], str)
        self.assertGreaterEqual(len(entry["secret"]), 32)
        self.assertIn("agents", entry)
        self.assertIn("actions", entry)
        other = json.loads(self.ok(self.env.hgctl("keygen", auth=False, as_json=False)).stdout)
        self.assertNotEqual(other["secret"], entry["secret"])
        self.assertTrue(other["id"])

    def test_status(self):
        r = self.ok(self.env.hgctl("status", auth=False))
        self.assertIn(self.env.instance, r.stdout)
        doc = json.loads(r.stdout)
        text = json.dumps(doc)
        self.assertIn('"online": true', text)

    # --------------------------------------------- environment and config
    def test_environment(self):
        agent = new_agent()
        self.env.upsert({"agentId": agent, "url": self.url()})
        key_id, secret = self.env.creds("ops")
        envs = {"HGCTL_HOST": "127.0.0.1", "HGCTL_PORT": str(self.env.broker.port),
                "HGCTL_KEY_ID": key_id, "HGCTL_KEY_SECRET": secret}
        r = self.env.run_hgctl([hglib.binary("hgctl"), "--json", "webhook", "get", agent],
                               env=envs)
        self.assertEqual(self.ok_json(r)["agent_id"], agent)
        # the command line wins over the environment
        bad = dict(envs, HGCTL_PORT=str(hglib.free_port()), HGCTL_KEY_SECRET="wrong")
        r = self.env.run_hgctl([hglib.binary("hgctl"), "-p", str(self.env.broker.port),
                                "--key-secret", secret, "--json", "webhook", "get", agent],
                               env=bad)
        self.assertEqual(self.ok_json(r)["agent_id"], agent)

    def test_config_file(self):
        agent = new_agent()
        self.env.upsert({"agentId": agent, "url": self.url()})
        key_id, secret = self.env.creds("ops")
        xdg = os.path.join(self.env.tmp, "xdg")
        os.makedirs(os.path.join(xdg, "hgctl"), exist_ok=True)
        cfg = os.path.join(xdg, "hgctl", "config")
        with open(cfg, "w") as f:
            f.write("# hgctl test config\nhost = 127.0.0.1\nport = %d\nkey-id = %s\n"
                    "key-secret = %s\njson = true\n" % (self.env.broker.port, key_id, secret))
        os.chmod(cfg, 0o600)
        r = self.env.run_hgctl([hglib.binary("hgctl"), "webhook", "get", agent],
                               env={"XDG_CONFIG_HOME": xdg})
        self.assertEqual(self.ok_json(r)["agent_id"], agent)
        # the environment wins over the file
        r = self.env.run_hgctl([hglib.binary("hgctl"), "--timeout", "2", "webhook", "get",
                                agent], env={"XDG_CONFIG_HOME": xdg,
                                             "HGCTL_KEY_SECRET": "hgk_wrong"})
        self.daemon_error(r, "UNAUTHORIZED")

    def test_key_file(self):
        agent = new_agent()
        self.env.upsert({"agentId": agent, "url": self.url()})
        key_id, secret = self.env.creds("ops")
        f = os.path.join(self.env.tmp, "ops.key")
        with open(f, "w") as fh:
            fh.write(secret + "\n")
        os.chmod(f, 0o600)
        r = self.env.hgctl("webhook", "get", agent, auth=False,
                           global_args=["--key-id", key_id, "--key-file", f])
        self.assertEqual(self.ok_json(r)["agent_id"], agent)

    def test_topic_root(self):
        """hgctl --topic-root against a second hgd serving another root."""
        env = self.env
        h2 = hglib.Hgd(env, env.instance + "-alt", ["--topic-root", "acme/hg"],
                       state_dir=os.path.join(env.tmp, "state-alt"))
        h2.start(wait=False)
        try:
            hglib.wait_until(lambda: "event=ready" in h2.log_text() or
                             (h2.proc.poll() is not None and
                              self.fail("hgd --topic-root exited: " + hglib.tail(h2.log))),
                             hglib.T_READY, what="second hgd ready")
            agent = new_agent()
            row = self.ok_json(env.hgctl("webhook", "set", agent, "--url", self.url(),
                                         global_args=["--topic-root", "acme/hg"]))
            self.assertEqual(row["agent_id"], agent)
            self.assertIsNone(env.get(agent), "the hg/v1 instance does not see acme/hg rows")
        finally:
            h2.stop()

    def test_terminal_rendering(self):
        """On a terminal without --json: a readable rendering, no secret."""
        agent, secret = new_agent(), self.env.secret()
        url = self.url()
        self.env.upsert({"agentId": agent, "url": url, "secret": secret,
                         "custom_fields": ["accountNumber",
                                           {"key": "x", "hint": "a\u202eb\u2066c\u2028d\x1be"}]})
        key_id, ksecret = self.env.creds("ops")
        cmd = [hglib.binary("hgctl"), "-h", "127.0.0.1", "-p", str(self.env.broker.port),
               "--key-id", key_id, "--key-secret", ksecret, "webhook", "get", agent]
        out, rc = run_on_tty(cmd, self.env.tmp)
        self.env.outputs.append(("tty webhook get", out))
        self.assertEqual(rc, 0, out)
        self.assertIn(url, out)
        self.assertIn("accountNumber", out)
        self.assertNotIn(secret, out)
        # a hint cannot drive or reorder the operator's terminal: C0/C1
        # controls and (found by hostile testing) bidi controls escaped
        self.assertIn("a\\u202eb\\u2066c\\u2028d\\x1be", out)
        for raw in ("\u202e", "\u2066", "\u2028", "\x1b"):
            self.assertNotIn(raw, out)

    # -------------------------------------------------------------- exit 2/3
    def test_usage_errors_exit_2(self):
        a = new_agent()
        for args in ([], ["frobnicate"], ["webhook"], ["webhook", "frob", a],
                     ["webhook", "get"], ["webhook", "set", a],
                     ["webhook", "set", a, "--url", self.url(), "--secret", "s",
                      "--secret-file", "/dev/null"],
                     ["webhook", "get", a, "--bogus"], ["--timeout", "abc", "webhook", "get", a],
                     ["-p", "notaport", "webhook", "get", a],
                     ["escalate", a, "--field", "novalue"]):
            with self.subTest(args):
                r = self.env.hgctl(*args)
                self.assertEqual(r.returncode, 2, "%r: rc=%d stderr=%r"
                                 % (args, r.returncode, r.stderr))
                self.assertTrue(r.stderr.strip(), "usage error says what is wrong")

    def test_broker_unreachable_exit_3(self):
        t = time.monotonic()
        r = self.env.hgctl("webhook", "get", new_agent(), port=hglib.free_port())
        self.assertEqual(r.returncode, 3, "rc=%d stderr=%r" % (r.returncode, r.stderr))
        self.assertTrue(r.stderr.startswith("hgctl: "), r.stderr)
        self.assertLess(time.monotonic() - t, 15)
        r = self.env.hgctl("escalate", new_agent(), port=hglib.free_port())
        self.assertEqual(r.returncode, 3, "escalate: rc=%d stderr=%r" % (r.returncode, r.stderr))

    def test_no_reply_exit_3(self):
        t = time.monotonic()
        r = self.env.hgctl("webhook", "get", new_agent(),
                           global_args=["--topic-root", "nobody/serves", "--timeout", "1"])
        self.assertEqual(r.returncode, 3, "rc=%d stderr=%r" % (r.returncode, r.stderr))
        self.assertLess(time.monotonic() - t, 6, "--timeout 1 honoured")

    def test_silent_broker_timeout_honoured(self):
        # A broker that accepts the connection (CONNACK) and then never
        # answers the subscription: hgctl waited Paho's 10 s command timeout
        # whatever --timeout said (found by hostile testing).
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        held = []

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                c.recv(65536)
                c.sendall(b"\x20\x03\x00\x00\x00")  # MQTT v5 CONNACK, success
                held.append(c)
        threading.Thread(target=serve, daemon=True).start()
        try:
            for timeout in (2, 12):
                t = time.monotonic()
                r = self.env.hgctl("webhook", "get", new_agent(), port=srv.getsockname()[1],
                                   global_args=["--timeout", str(timeout)])
                took = time.monotonic() - t
                self.assertEqual(r.returncode, 3, "rc=%d stderr=%r" % (r.returncode, r.stderr))
                self.assertIn("TIMEOUT", r.stderr)
                self.assertGreater(took, timeout - 0.5, "gave up before --timeout %d" % timeout)
                self.assertLess(took, timeout + 1.5, "--timeout %d overrun: %.1f s" % (timeout, took))
        finally:
            srv.close()
            for c in held:
                c.close()

    def test_hostile_config_and_secret_files(self):
        # Found by hostile testing: HGCTL_CONFIG=/dev/zero spun forever, a
        # NUL byte cut a config line silently, and a --secret-file FIFO that
        # nobody writes hung past --timeout.
        e = self.env
        cfg = os.path.join(e.tmp, "hgctl-nul.conf")
        with open(cfg, "wb") as f:
            f.write(b"host = 127.0.0.1\0evil\n")
        fifo = os.path.join(e.tmp, "hgctl-secret.fifo")
        if not os.path.exists(fifo):
            os.mkfifo(fifo, 0o600)
        cases = [
            (["webhook", "get", new_agent()], {"HGCTL_CONFIG": "/dev/zero"}, "not a regular file"),
            # named and missing: an error, not silently no file (hostile testing)
            (["webhook", "get", new_agent()], {"HGCTL_CONFIG": cfg + ".missing"},
             "No such file or directory"),
            # a missing --cafile is named, not "TLS handshake failed: system lib"
            (["--cafile", cfg + ".nocafile", "webhook", "get", new_agent()], {},
             "--cafile %s.nocafile" % cfg),
            (["webhook", "get", new_agent()], {"HGCTL_CONFIG": cfg}, "line 1: NUL byte"),
            (["webhook", "set", new_agent(), "--url", "https://x.example/h", "--secret-file", fifo],
             {}, "nothing to read within 2 s"),
        ]
        for args, env, want in cases:
            with self.subTest(want=want):
                t = time.monotonic()
                r = e.hgctl(*args, env=env, global_args=["--timeout", "2"], timeout=20)
                self.assertEqual(r.returncode, 2, "rc=%d stderr=%r" % (r.returncode, r.stderr))
                self.assertIn(want, r.stderr)
                self.assertLess(time.monotonic() - t, 5)


def run_on_tty(cmd, tmp, timeout=20):
    """Run cmd with stdout and stderr on a pseudo-terminal; returns (text, rc)."""
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
