#!/usr/bin/python3
"""The recommended broker ACL (systemd/mosquitto-acl.example), end to end.

A mosquitto with allow_anonymous false, a password file and the shipped ACL
file as is, with users hgd, ops-alice (operator, hgctl), node-eu1 (call
node), monitor, and stranger (valid password, no ACL lines):

  * the normal flow works: hgctl and signed requests as ops-alice,
    escalations from node-eu1 delivered, delivery events and status seen by
    monitor, the retained fields document read by node-eu1;
  * what the ACL must stop, stops: a call node sending a (validly signed)
    request, forging a retained fields document or a status; an operator
    forging status; a monitor reading replies; a stranger escalating or
    reading delivery events; anonymous clients; hgd with a wrong password
    (which logs why).
"""

import json
import os
import secrets as pysecrets
import shutil
import socket
import subprocess
import time

import hglib
import seclib
from hglib import ROOT, T_QUIET, HgTestCase, MqttClient, new_agent

ACL = os.path.join(hglib.REPO, "systemd", "mosquitto-acl.example")
USERS = ("hgd", "ops-alice", "node-eu1", "monitor", "stranger")


class AclBroker:
    def __init__(self, workdir, passwords):
        self.workdir = workdir
        self.port = hglib.free_port()
        self.conf = os.path.join(workdir, "mosquitto-acl.conf")
        self.log = os.path.join(workdir, "mosquitto-acl.log")
        self.passwd = os.path.join(workdir, "passwd")
        self.acl = os.path.join(workdir, "hgd.acl")
        shutil.copyfile(ACL, self.acl)
        open(self.passwd, "w").close()
        for u, p in passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", self.passwd, u, p], check=True,
                           capture_output=True, timeout=30)
        self.proc = None

    def start(self):
        with open(hglib.SNIPPET) as f:
            snippet = f.read()
        with open(self.conf, "w") as f:
            if os.geteuid() == 0:
                f.write("user root\n")  # the files live in a 0700 temp dir
            f.write("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
                    "acl_file %s\npersistence false\nlog_dest stderr\nlog_type all\n"
                    "connection_messages true\n\n%s\n"
                    % (self.port, self.passwd, self.acl, snippet))
        self.proc = hglib.spawn(["mosquitto", "-c", self.conf], self.log)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited:\n" + hglib.tail(self.log))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        hglib.wait_until(up, 10, what="ACL mosquitto")
        return self

    def stop(self):
        if self.proc:
            hglib.stop_process(self.proc)
            self.proc = None


def client(port, user, password):
    c = MqttClient(port, name=user)
    # hgd only replies under <root>/reply/ (and the ACL lets it write there).
    c.reply_topic = "%s/reply/%s" % (ROOT, c.client_id)
    c.c.username_pw_set(user, password)
    return c.connect()


class TestAcl(HgTestCase):
    start_hgd = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        e = cls.env
        cls.pw = {u: e.secret("pw_") for u in USERS}
        cls.broker = AclBroker(e.tmp, cls.pw).start()
        e._closers.append(cls.broker.stop)
        cls.c = {}
        for u in ("ops-alice", "node-eu1", "monitor", "stranger"):
            cls.c[u] = client(cls.broker.port, u, cls.pw[u])
            e._closers.append(cls.c[u].close)
        cls.mon_status = cls.c["monitor"].subscribe(ROOT + "/status/+")
        cls.mon_delivery = cls.c["monitor"].subscribe(ROOT + "/delivery/+")
        cls.mon_replies = cls.c["monitor"].subscribe(ROOT + "/reply/#")
        cls.str_delivery = cls.c["stranger"].subscribe(ROOT + "/delivery/+")
        conf = os.path.join(e.tmp, "hgd-acl.conf")
        with open(conf, "w") as f:
            f.write("username = hgd\npassword = %s\n" % cls.pw["hgd"])
        os.chmod(conf, 0o600)
        e.hgd = seclib.SecHgd(e, e.instance, ["-c", conf],
                              broker="mqtt://127.0.0.1:%d" % cls.broker.port,
                              allow_net=["127.0.0.0/8"])
        e.hgd.start(wait=False)
        hglib.wait_until(lambda: "event=ready" in e.hgd.log_text(), hglib.T_READY,
                         what="hgd ready on the ACL broker")
        # The Genie the "node" key may escalate for, with a webhook.
        cls.agent = e.agent_node
        cls.hook = "/acl/%s" % cls.agent[:8]
        r = cls.c["ops-alice"].request("upsert", {"agentId": cls.agent,
                                                  "url": e.receiver.url(cls.hook),
                                                  "secret": e.secret(),
                                                  "custom_fields": ["accountNumber"]},
                                       *e.creds("ops"))
        assert r is not None and r.success, r

    def ops(self, action, params):
        return self.c["ops-alice"].request(action, params, *self.env.creds("ops"))

    def hgctl(self, *args):
        e = self.env
        return e.hgctl(*args, port=self.broker.port,
                       global_args=["-u", "ops-alice", "-P", self.pw["ops-alice"]])

    # -- what must work -----------------------------------------------------

    def test_operator_requests_and_hgctl(self):
        a = new_agent()
        self.assertOk(self.ops("upsert", {"agentId": a, "url": self.url()}))
        self.assertEqual(self.ops("get", {"agentId": a}).data["agent_id"], a)
        r = self.hgctl("webhook", "get", a)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["agent_id"], a)
        r = self.hgctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_call_node_escalates_and_reads_fields(self):
        e = self.env
        n = len(self.rx.requests(self.hook))
        self.c["node-eu1"].signed_publish("%s/escalation/%s" % (ROOT, self.agent),
                                          b'{"reason":"acl"}', *e.creds("node"))
        self.assertEqual(len(self.rx.wait_for(self.hook, n + 1)), n + 1)
        m = self.mon_delivery.wait_for(lambda m: m.json().get("state") == "delivered")
        self.assertIsNotNone(m, "monitor sees delivery events")
        fields = self.c["node-eu1"].retained("%s/agent/%s/fields" % (ROOT, self.agent))
        self.assertIsNotNone(fields, "node reads the retained fields document")
        self.assertEqual(fields.json()["fields"][0]["key"], "accountNumber")
        self.assertIsNotNone(self.mon_status.wait_for(lambda m: m.json().get("online") is True))

    # -- what must not ------------------------------------------------------

    def test_call_node_cannot_send_requests(self):
        e = self.env
        a = new_agent()
        # Signed with the ops key: hgd would accept it; the broker must not
        # let a call node's identity publish it.
        r = self.c["node-eu1"].request("upsert", {"agentId": a, "url": self.url()},
                                       *e.creds("ops"), timeout=T_QUIET * 2)
        self.assertIsNone(r)
        self.assertIsNone(self.ops("get", {"agentId": a}).data, "the row was created")

    def test_forged_fields_and_status_dropped(self):
        e = self.env
        topic = "%s/agent/%s/fields" % (ROOT, self.agent)
        forged = b'{"fields":[{"key":"creditCardNumber","hint":"all 16 digits please"}]}'
        self.c["node-eu1"].publish(topic, forged, retain=True)
        fake_status = b'{"online":false,"instance":"%s"}' % e.instance.encode()
        for who in ("node-eu1", "ops-alice", "stranger"):
            self.c[who].publish("%s/status/%s" % (ROOT, e.instance), fake_status, retain=True)
        time.sleep(T_QUIET)
        got = self.c["node-eu1"].retained(topic)
        self.assertIsNotNone(got)
        self.assertNotIn(b"creditCard", got.payload)
        st = self.c["monitor"].retained("%s/status/%s" % (ROOT, e.instance))
        self.assertIs(st.json()["online"], True)
        self.assertEqual(self.mon_status.matching(lambda m: m.payload == fake_status), [])

    def test_replies_not_readable_by_monitor(self):
        a = new_agent()
        self.assertOk(self.ops("upsert", {"agentId": a, "url": self.url()}))
        time.sleep(T_QUIET)
        self.assertEqual(self.mon_replies.messages, [])

    def test_stranger_cannot_escalate_or_read(self):
        e = self.env
        n = len(self.rx.requests(self.hook))
        self.c["stranger"].signed_publish("%s/escalation/%s" % (ROOT, self.agent),
                                          b'{"reason":"stranger"}', *e.creds("node"))
        time.sleep(T_QUIET)
        self.assertEqual(len(self.rx.requests(self.hook)), n)
        self.assertEqual(self.str_delivery.messages, [])

    def test_anonymous_and_wrong_password_refused(self):
        e = self.env
        anon = MqttClient(self.broker.port, name="anon")
        with self.assertRaises(RuntimeError):
            anon.connect(timeout=3)
        anon.c.loop_stop()
        conf = os.path.join(e.tmp, "hgd-badpw.conf")
        with open(conf, "w") as f:
            f.write("username = hgd\npassword = wrong-%s\n" % pysecrets.token_hex(4))
        os.chmod(conf, 0o600)
        h = seclib.SecHgd(e, e.instance + "-badpw", ["-c", conf, "--topic-root", "bad/hg"],
                          broker="mqtt://127.0.0.1:%d" % self.broker.port,
                          state_dir=os.path.join(e.tmp, "state-badpw"))
        h.start(wait=False)
        try:
            hglib.wait_until(lambda: "event=mqtt.connect_failed" in h.log_text(), 10,
                             what="connect_failed with a wrong password")
            self.assertNotIn("event=mqtt.connected", h.log_text())
            self.assertRegex(h.log_text(), r"event=mqtt\.connect_failed [^\n]*code=13[45] "
                                           r"[^\n]*refused=\"(Not authorized|Bad user name or "
                                           r"password)\"")
        finally:
            h.stop()


if __name__ == "__main__":
    hglib.main()
