"""faults — fault-injection helpers for the reliability tests (issue 3).

Builds on hglib (the shared harness) without changing it:

  * Publisher: an independent MQTT v5 client that streams signed escalations
    and records which ones the broker acknowledged (QoS 1 PUBACK received);
  * Outage: an HTTPS receiver on a fixed port that can be taken down (nothing
    listens: connection refused) and brought back, keeping one record of
    every request across its lives, and answering each request from a script
    whose entries are remembered, so a test knows what each attempt got;
  * PersistentBroker: mosquitto with persistence on, so that a restart keeps
    sessions and queued messages (what a production broker does);
  * resubscribe(): re-create an hglib.MqttClient's subscriptions after the
    broker forgot them;
  * tmpfs mount/umount, log and status helpers.
"""

import atexit
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import hglib
from hglib import ROOT, Receiver, Response

# --------------------------------------------------------------------------
# publishing escalations
# --------------------------------------------------------------------------


class Publisher:
    """Signed escalations from a client of its own. publish() does not wait;
    acked() is every eventId whose PUBACK came back from the broker."""

    def __init__(self, env, key="ops", name="pub"):
        self.env = env
        self.key_id, self.secret = env.creds(key)
        self.client_id = "%s-%s" % (name, secrets.token_hex(4))
        self.c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        self.c.max_inflight_messages_set(20)
        self.c.max_queued_messages_set(0)
        self.c.reconnect_delay_set(0.1, 1)
        self._connected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p=None: rc == 0 and self._connected.set()
        self.c.on_disconnect = lambda c, u, rc, p=None: self._connected.clear()
        self._lock = threading.Lock()
        self.sent = []  # (eventId, MQTTMessageInfo, agent)

    def connect(self, timeout=10):
        self.c.connect("127.0.0.1", self.env.broker.port, keepalive=30, clean_start=True)
        self.c.loop_start()
        if not self._connected.wait(timeout):
            raise RuntimeError("publisher could not connect")
        return self

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()

    def wait_connected(self, timeout):
        return self._connected.wait(timeout)

    def publish(self, agent, esc=None, event_id=None):
        """Publish one escalation (QoS 1); returns its eventId. event_id
        False: none (hgd makes one); then the call's key in sent is None."""
        eid = None if event_id is False else event_id or str(uuid.uuid4())
        body = dict(esc or {})
        if eid:
            body["eventId"] = eid
        payload = json.dumps(body, separators=(",", ":")).encode()
        topic = "%s/escalation/%s" % (ROOT, agent)
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = hglib.auth_props(topic, payload, self.key_id, self.secret)
        info = self.c.publish(topic, payload, qos=1, properties=props)
        with self._lock:
            self.sent.append((eid, info, agent))
        return eid

    def acked(self, agent=None):
        with self._lock:
            return [eid for eid, info, a in self.sent
                    if info.is_published() and agent in (None, a)]

    def unacked(self, agent=None):
        with self._lock:
            return [eid for eid, info, a in self.sent
                    if not info.is_published() and agent in (None, a)]

    def published(self, agent=None):
        with self._lock:
            return [eid for eid, _, a in self.sent if agent in (None, a)]

    def wait_acked(self, eids, timeout=20):
        want = set(eids)
        hglib.wait_until(lambda: want <= set(self.acked()), timeout, interval=0.05,
                         what="PUBACK for %d escalations" % len(want))


class Stream(threading.Thread):
    """Publishes escalations for agent at about `rate` per second until
    stop(); only while the publisher is connected (a publish into a dead
    connection is simply never acknowledged, and so not counted)."""

    def __init__(self, pub, agent, rate=100, esc=None):
        super().__init__(daemon=True)
        self.pub, self.agent, self.rate, self.esc = pub, agent, rate, esc or {}
        self._halt = threading.Event()

    def run(self):
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self._halt.is_set():
            if self.pub.wait_connected(0.1):
                self.pub.publish(self.agent, self.esc)
            nxt += period
            d = nxt - time.monotonic()
            if d > 0:
                self._halt.wait(d)
            else:
                nxt = time.monotonic()

    def stop(self):
        self._halt.set()
        self.join(10)


# --------------------------------------------------------------------------
# a receiver that can go down and remembers what it answered
# --------------------------------------------------------------------------


class Outage:
    """An HTTPS receiver on a fixed port. down() closes the listening socket
    (connection refused); up() listens again on the same port. Every request
    of every life is in requests(); answers() pairs each request to `path`
    with the Response it got (script entries in order, then `default`)."""

    def __init__(self, env, default=None):
        self.env = env
        self.port = hglib.free_port()
        self.default = default or Response()
        self._lock = threading.Lock()
        self._all = []      # (Request, Response) in arrival order
        self._scripts = {}
        self.rx = None

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def program(self, path, responses):
        with self._lock:
            self._scripts[path] = list(responses)

    def up(self):
        if self.rx is None:
            rx = Receiver(self.env.cert, self.env.key, port=self.port)
            rx._record = self._record  # one record across lives, answers kept
            conns = rx.conns = set()
            serve = rx._srv.finish_request

            def finish_request(request, client_address):
                # the TLS wrapper detaches `request`: remember a duplicate
                dup = request.dup()
                conns.add(dup)
                try:
                    serve(request, client_address)
                finally:
                    conns.discard(dup)
                    dup.close()
            rx._srv.finish_request = finish_request
            self.rx = rx.start()
        return self

    def down(self):
        if self.rx is not None:
            self.rx.stop()
            # keep-alive connections too: down is down
            for c in list(self.rx.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.rx = None
        return self

    def _record(self, req):
        with self._lock:
            script = self._scripts.get(req.path.split("?")[0])
            resp = script.pop(0) if script else self.default
            self._all.append((req, resp))
        return resp

    def requests(self, path=None):
        with self._lock:
            return [r for r, _ in self._all if path is None or r.path.split("?")[0] == path]

    def answers(self, path=None):
        with self._lock:
            return [(r, a) for r, a in self._all if path is None or r.path.split("?")[0] == path]

    def delivered(self, path=None):
        """eventId -> number of requests answered 2xx."""
        out = {}
        for r, a in self.answers(path):
            if 200 <= a.status <= 299 and not a.close:
                eid = r.header("X-HelpGenie-Event-Id")
                out[eid] = out.get(eid, 0) + 1
        return out

    def wait_delivered(self, eids, path=None, timeout=30):
        want = set(eids)

        def done():
            return want <= set(self.delivered(path))
        try:
            hglib.wait_until(done, timeout, interval=0.1, what="deliveries")
        except TimeoutError:
            pass
        return sorted(want - set(self.delivered(path)))


# --------------------------------------------------------------------------
# the broker
# --------------------------------------------------------------------------


class Proxy:
    """A TCP proxy in front of the broker. blackhole() drops everything the
    client sends from then on (its PUBACKs never arrive) while the broker's
    messages still reach it; cut() closes every proxied connection; heal()
    ends the black hole for the next connections."""

    def __init__(self, upstream_port, port=0):
        self.upstream_port = upstream_port
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))  # port: that of a closed Proxy, to reopen it
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.drop = threading.Event()
        self.conns = []
        self._lock = threading.Lock()

    @property
    def uri(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
                u = socket.create_connection(("127.0.0.1", self.upstream_port), 5)
            except OSError:
                return
            for x in (c, u):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and self.drop.is_set():
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def blackhole(self):
        self.drop.set()

    def heal(self):
        self.drop.clear()

    def cut(self):
        with self._lock:
            conns, self.conns = self.conns, []
        for x in conns:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.srv.close()
        self.cut()



class PersistentBroker(hglib.Broker):
    """hglib's broker with persistence on: a restart keeps sessions,
    subscriptions and queued messages (mosquitto writes them at shutdown)."""

    def start(self, timeout=10.0):
        with open(hglib.SNIPPET) as f:
            snippet = f.read()
        db = self.db_dir() + "/"
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/faults.py\n"
                    "listener %d 127.0.0.1\n"
                    "allow_anonymous true\n"
                    "persistence true\n"
                    "persistence_location %s\n"
                    "autosave_interval 3600\n"
                    "log_dest stderr\n"
                    "log_type error\nlog_type warning\nlog_type notice\n"
                    "log_type information\n"
                    "connection_messages true\n\n"
                    "# systemd/mosquitto-hgd.conf\n%s\n" % (self.port, db, snippet))
        self.proc = hglib.spawn(["mosquitto", "-c", self.conf], self.log)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s:\n%s"
                                   % (self.proc.returncode, hglib.tail(self.log)))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        hglib.wait_until(up, timeout, what="mosquitto on port %d" % self.port)
        return self

    def db_dir(self):
        """Where mosquitto keeps its state. Run as root, mosquitto drops to
        its own user, which cannot enter the test's private temp dir: so a
        directory of its own, removed at exit."""
        if getattr(self, "_db", None) is None:
            self._db = tempfile.mkdtemp(prefix="hg-it-mosquitto-db-")
            atexit.register(shutil.rmtree, self._db, True)
            try:
                pw = pwd.getpwnam("mosquitto")
                os.chown(self._db, pw.pw_uid, pw.pw_gid)
            except (KeyError, PermissionError):
                pass
        return self._db

    def forget(self):
        """Remove the persisted state (only while stopped): the next start
        knows no session, as after losing the broker's disk."""
        for n in os.listdir(self.db_dir()):
            os.unlink(os.path.join(self.db_dir(), n))


def watch_connects(client):
    """Count the (re)connects of an hglib.MqttClient (client.connects) and
    make it reconnect quickly."""
    if hasattr(client, "connects"):
        return client
    client.connects = 0
    inner = client.c.on_connect

    def on_connect(c, ud, flags, rc, props=None):
        if rc == 0:
            client.connects += 1
        inner(c, ud, flags, rc, props)
    client.c.on_connect = on_connect
    client.c.reconnect_delay_set(0.1, 1)
    return client


def resubscribe(client, connects_before, timeout=15):
    """After the broker lost our clean session: wait for the reconnect (see
    watch_connects), then subscribe again to the reply topic and every
    Subscription's filter."""
    hglib.wait_until(lambda: client.connects > connects_before, timeout,
                     what="test client reconnect")
    client._subscribe_raw(client.reply_topic, 1)
    for f in sorted({s.filter for s in client._subs}):
        client._subscribe_raw(f, 1)


# --------------------------------------------------------------------------
# hgd: logs and status
# --------------------------------------------------------------------------


def log_events(hgd, event, all_runs=True):
    """Every log line of `event`, as dicts of its key=value fields."""
    out = []
    for line in hgd.log_text(all_runs).splitlines():
        if re.search(r"\bevent=%s\b" % re.escape(event), line):
            out.append(dict((k, v.strip('"')) for k, v in
                            re.findall(r'(\w+)=("[^"]*"|\S+)', line)))
    return out


def wait_log(hgd, event, count=1, timeout=10, all_runs=False):
    return hglib.wait_until(lambda: (lambda ls: ls if len(ls) >= count else None)(
        log_events(hgd, event, all_runs)), timeout, what="%d x event=%s in hgd's log"
        % (count, event))


def status(env, pred=lambda s: True, timeout=8):
    """The latest status document of env's hgd that satisfies pred (status
    is republished every second in the tests), else the last one seen."""
    topic = "%s/status/%s" % (ROOT, env.instance)
    end = time.monotonic() + timeout
    last = None
    while True:
        ms = env.status_sub.matching(lambda m: m.topic == topic and m.payload)
        if ms:
            last = ms[-1].json()
            if pred(last):
                return last
        if time.monotonic() >= end:
            return last
        time.sleep(0.1)


# --------------------------------------------------------------------------
# a small file system
# --------------------------------------------------------------------------


def mount_tmpfs(path, size):
    """Mount a tmpfs of `size` (mount(8) syntax) at path. Returns None, or
    the reason it could not (not root, no mount permission in a container)."""
    os.makedirs(path, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
                            path], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if r.returncode != 0:
        return (r.stderr or r.stdout).strip() or "mount exited %d" % r.returncode
    return None


def umount(path):
    for _ in range(50):
        r = subprocess.run(["umount", path], capture_output=True, text=True)
        if r.returncode == 0 or "not mounted" in r.stderr:
            return True
        time.sleep(0.1)
    subprocess.run(["umount", "-l", path], capture_output=True)
    return False


def fill(path, name="filler"):
    """Write a file in the file system of path until it is full (ENOSPC,
    down to single bytes). Returns the file's path."""
    f = os.path.join(path, name)
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 4096, 512, 1):
            buf = b"\0" * chunk
            while True:
                try:
                    if os.write(fd, buf) < chunk:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)
    return f
