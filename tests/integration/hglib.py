"""hglib — the integration-test harness for hgd and hgctl.

Each tests/integration/test_*.py is a self-contained unittest program. A test
class derives from HgTestCase, which builds one Env per class:

  * a throwaway CA and a server certificate for 127.0.0.1/localhost, made
    with the openssl CLI in a temp dir;
  * an HTTPS receiver (scripts/hg_receiver.py) that records every request and
    answers from per-path scripts;
  * a real mosquitto on a free loopback port, configured with the shipped
    snippet systemd/mosquitto-hgd.conf;
  * a keys file (mode 0600) with an all-powerful `ops` key and restricted keys;
  * hgd (binary from $HGD) with its stderr in a log file, ready when it logs
    `event=ready` or publishes its retained online status;
  * an independent MQTT v5 client (python3-paho-mqtt) that signs requests
    exactly as PROTOCOL.md section 2 says, or deliberately wrongly.

Every process is started with PR_SET_PDEATHSIG and registered for atexit
clean-up; every wait is bounded. On a failure the test prints the tail of
hgd's log. Set HG_KEEP_TMP=1 to keep the temp dirs.
"""

import atexit
import ctypes
import json
import os
import re
import secrets as _secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts"))

from hg_receiver import (Receiver, Response, hmac_hex, make_test_ca,  # noqa: E402,F401 (scripts/ is on the path only now; re-exported)
                         normalise_fields, signed_message, stdwh_signature, verify,
                         webhook_signature)

ROOT = "hg/v1"
SNIPPET = os.path.join(REPO, "systemd", "mosquitto-hgd.conf")
ACTIONS = ["get", "upsert", "delete", "test", "escalate"]
MASK = "\u2022" * 8
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ROW_KEYS = {"id", "agent_id", "url", "secret", "secret_header", "custom_fields", "is_active",
            "created_at", "updated_at"}

T_READY = 20.0    # hgd start-up
T_REPLY = 10.0    # an action reply
T_DELIVER = 10.0  # a webhook POST after an escalation
T_QUIET = 1.0     # how long "nothing happens" is watched


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

_procs = []
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL when this process dies,
    # even by SIGKILL (a ctest timeout), so nothing outlives a test.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def spawn(argv, log_path, env=None, cwd=None):
    """Start a process with stdout+stderr to log_path, registered for clean-up."""
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             preexec_fn=_die_with_parent)
    finally:
        log.close()
    _procs.append(p)
    return p


def stop_process(p, sig=signal.SIGTERM, timeout=10.0):
    """Signal p and wait; SIGKILL if it does not exit in time. Returns the
    exit status (negative for a signal, as subprocess reports it)."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    if p in _procs:
        _procs.remove(p)
    return p.returncode


def _cleanup():
    for p in list(_procs):
        try:
            stop_process(p, signal.SIGKILL, 5)
        except Exception:
            pass


atexit.register(_cleanup)
# A SIGTERM (ctest's timeout, a developer's kill) still runs the atexit hooks.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port():
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns something truthy; return that. Raises
    TimeoutError after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def binary(name):
    """Path of hgd or hgctl: $HGD / $HGCTL (set by ctest), else a build dir."""
    p = os.environ.get(name.upper())
    if p:
        return p
    for b in ("build-it", "build-test", "build"):
        c = os.path.join(REPO, b, "daemon" if name == "hgd" else "cli", name)
        if os.access(c, os.X_OK):
            return c
    raise RuntimeError("%s not found: set $%s or build into %s/build" % (name, name.upper(), REPO))


def tail(path, n=60):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(no log: %s)" % e
    return "\n".join(lines[-n:])


def new_agent(upper=False):
    a = str(uuid.uuid4())
    return a.upper() if upper else a


def new_secret(prefix="whsec_"):
    return prefix + _secrets.token_hex(16)


def nonce():
    return _secrets.token_hex(16)


# --------------------------------------------------------------------------
# mosquitto
# --------------------------------------------------------------------------


class Broker:
    """A real mosquitto on a free loopback port, with the shipped snippet."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.conf = os.path.join(workdir, "mosquitto.conf")
        self.log = os.path.join(workdir, "mosquitto.log")
        self.proc = None

    @property
    def uri(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        with open(SNIPPET) as f:
            snippet = f.read()
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/hglib.py\n"
                    "listener %d 127.0.0.1\n"
                    "allow_anonymous true\n"
                    "persistence false\n"
                    "log_dest stderr\n"
                    "log_type error\nlog_type warning\nlog_type notice\n"
                    "log_type information\n"
                    "connection_messages true\n\n"
                    "# systemd/mosquitto-hgd.conf\n%s\n" % (self.port, snippet))
        self.proc = spawn(["mosquitto", "-c", self.conf], self.log)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s:\n%s"
                                   % (self.proc.returncode, tail(self.log)))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        wait_until(up, timeout, what="mosquitto on port %d" % self.port)
        return self

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc = None


# --------------------------------------------------------------------------
# MQTT client (signing as PROTOCOL.md section 2)
# --------------------------------------------------------------------------


def request_signature(secret, topic, ts, nonce_, payload):
    """Lowercase hex HMAC-SHA256(secret, "hg1\\n" topic "\\n" ts "\\n" nonce "\\n" payload)."""
    msg = b"hg1\n" + topic.encode() + b"\n" + str(ts).encode() + b"\n" + \
        nonce_.encode() + b"\n" + (payload if isinstance(payload, bytes) else payload.encode())
    return hmac_hex(secret, msg)


def auth_props(topic, payload, key_id, secret, ts=None, ts_offset=0, nonce_=None, sig=None,
               omit=(), override=None, extra=()):
    """The four hg-* user properties for one message. ts/nonce_/sig replace the
    computed values (sig is then not recomputed); omit drops properties;
    override maps a property name to a forced value (after signing); extra
    appends (name, value) pairs, e.g. a repeated property."""
    ts = str(int(time.time()) + ts_offset) if ts is None else str(ts)
    nonce_ = nonce() if nonce_ is None else nonce_
    if sig is None:
        sig = request_signature(secret, topic, ts, nonce_, payload)
    props = {"hg-key": key_id, "hg-ts": ts, "hg-nonce": nonce_, "hg-sig": sig}
    props.update(override or {})
    return [(k, v) for k, v in props.items() if k not in omit] + list(extra)


class Message:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = bytes(m.payload)
        self.qos = m.qos
        self.retain = bool(m.retain)
        p = m.properties
        self.correlation = getattr(p, "CorrelationData", None) if p else None
        self.user_props = list(getattr(p, "UserProperty", []) or []) if p else []
        self.response_topic = getattr(p, "ResponseTopic", None) if p else None
        self.expiry = getattr(p, "MessageExpiryInterval", None) if p else None
        self.time = time.time()

    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    def __repr__(self):
        return "<%s %r>" % (self.topic, self.payload[:200])


class Subscription:
    """Everything that arrived on one topic filter since subscribing."""

    def __init__(self, topic_filter):
        self.filter = topic_filter
        self._cv = threading.Condition()
        self.messages = []

    def _add(self, m):
        with self._cv:
            self.messages.append(m)
            self._cv.notify_all()

    def wait_for(self, pred=lambda m: True, timeout=T_DELIVER):
        """First message matching pred (already arrived or arriving within
        timeout), else None."""
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(min(left, 0.2))

    def matching(self, pred=lambda m: True):
        with self._cv:
            return [m for m in self.messages if pred(m)]


class Reply:
    """An action reply: the envelope plus what MQTT said about it."""

    def __init__(self, msg):
        self.msg = msg
        self.raw = msg.payload
        self.body = msg.json()
        self.success = self.body.get("success")
        self.data = self.body.get("data")
        self.error = self.body.get("error")
        self.correlation = msg.correlation
        self.qos = msg.qos

    @property
    def code(self):
        return (self.error or {}).get("code")

    @property
    def message(self):
        return (self.error or {}).get("message", "")

    def __repr__(self):
        return "<Reply %s>" % self.raw[:400]


class MqttClient:
    """An independent MQTT v5 client: signed requests with Response Topic and
    Correlation Data, signed escalations, subscriptions."""

    def __init__(self, port, name="hgtest"):
        self.port = port
        self.client_id = "%s-%s" % (name, _secrets.token_hex(4))
        self.reply_topic = "hgtest/reply/%s" % self.client_id
        self.c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self._connected = threading.Event()
        self._subacks = set()
        self._lock = threading.Condition()
        self._subs = []
        self._replies = {}
        self.stray_replies = []
        self.all_payloads = []  # every payload received, for the secret check

    # -- paho callbacks (network thread) --
    def _on_connect(self, c, ud, flags, rc, props=None):
        if rc == 0:
            self._connected.set()

    def _on_subscribe(self, c, ud, mid, rcs, props=None):
        with self._lock:
            self._subacks.add(mid)
            self._lock.notify_all()

    def _on_message(self, c, ud, m):
        msg = Message(m)
        self.all_payloads.append(msg.payload)
        if msg.topic == self.reply_topic:
            with self._lock:
                key = msg.correlation
                if key in self._replies and self._replies[key] is None:
                    self._replies[key] = msg
                else:
                    self.stray_replies.append(msg)
                self._lock.notify_all()
            return
        for s in list(self._subs):
            if mqtt.topic_matches_sub(s.filter, msg.topic):
                s._add(msg)

    # -- API --
    def connect(self, timeout=10.0):
        self.c.connect("127.0.0.1", self.port, keepalive=30, clean_start=True)
        self.c.loop_start()
        if not self._connected.wait(timeout):
            raise RuntimeError("test client could not connect to the broker on %d" % self.port)
        # Small packets at once: without this, Nagle and the broker's delayed
        # ACK add about 40 ms to every publish.
        self.c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._subscribe_raw(self.reply_topic, 1)
        return self

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()

    def _subscribe_raw(self, topic, qos, timeout=10.0):
        rc, mid = self.c.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("subscribe %s failed: %s" % (topic, rc))
        with self._lock:
            if not self._lock.wait_for(lambda: mid in self._subacks, timeout):
                raise RuntimeError("no SUBACK for %s" % topic)

    def subscribe(self, topic_filter, qos=1):
        """Subscribe (waits for SUBACK); the Subscription collects messages."""
        s = Subscription(topic_filter)
        self._subs.append(s)
        self._subscribe_raw(topic_filter, qos)
        return s

    def unsubscribe(self, sub):
        if sub in self._subs:
            self._subs.remove(sub)
        if not any(s.filter == sub.filter for s in self._subs):
            self.c.unsubscribe(sub.filter)

    def retained(self, topic, timeout=2.0):
        """The retained message of topic (a fresh subscription), or None."""
        s = self.subscribe(topic)
        try:
            return s.wait_for(lambda m: m.retain, timeout)
        finally:
            self.unsubscribe(s)

    def publish(self, topic, payload, user_props=None, response_topic=None, correlation=None,
                qos=1, expiry=None, retain=False, timeout=10.0):
        props = Properties(PacketTypes.PUBLISH)
        if user_props:
            props.UserProperty = list(user_props)
        if response_topic is not None:
            props.ResponseTopic = response_topic
        if correlation is not None:
            props.CorrelationData = correlation
        if expiry is not None:
            props.MessageExpiryInterval = expiry
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos:
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise RuntimeError("publish to %s was not acknowledged" % topic)

    def signed_publish(self, topic, payload, key_id, secret, sign=None, **kw):
        """Publish with hg-* properties; sign = dict of auth_props options."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        props = auth_props(topic, payload, key_id, secret, **(sign or {}))
        self.publish(topic, payload, user_props=props, **kw)
        return props

    def send_request(self, action, params, key_id, secret, sign=None, correlation=None,
                     root=ROOT, response_topic=True):
        """Publish an action request; returns its correlation data (bytes).
        params is a dict (sent as compact JSON), or str/bytes sent as is."""
        topic = "%s/webhook/%s" % (root, action)
        if isinstance(params, (bytes, str)):
            payload = params.encode("utf-8") if isinstance(params, str) else params
        else:
            payload = json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode()
        if correlation is None:
            correlation = _secrets.token_bytes(12)
        with self._lock:
            self._replies[correlation] = None
        self.signed_publish(topic, payload, key_id, secret, sign=sign,
                            response_topic=self.reply_topic if response_topic else None,
                            correlation=correlation if response_topic else None)
        return correlation

    def wait_reply(self, correlation, timeout=T_REPLY):
        """The Reply carrying this correlation data, or None after timeout."""
        end = time.monotonic() + timeout
        with self._lock:
            while self._replies.get(correlation) is None:
                left = end - time.monotonic()
                if left <= 0:
                    self._replies.pop(correlation, None)
                    return None
                self._lock.wait(min(left, 0.2))
            return Reply(self._replies.pop(correlation))

    def request(self, action, params, key_id, secret, timeout=T_REPLY, expect_reply=True,
                **kw):
        """send_request + wait_reply. Returns a Reply, or None when
        expect_reply is False or no reply came within timeout."""
        corr = self.send_request(action, params, key_id, secret, **kw)
        if not expect_reply:
            with self._lock:
                self._replies.pop(corr, None)
            return None
        return self.wait_reply(corr, timeout)


# --------------------------------------------------------------------------
# hgd
# --------------------------------------------------------------------------


class Hgd:
    """One hgd instance; each (re)start logs to a new file."""

    def __init__(self, env, instance, extra_args=(), config_file=None, state_dir=None):
        self.env = env
        self.instance = instance
        self.extra_args = list(extra_args)
        self.config_file = config_file
        self.state_dir = state_dir or env.state_dir
        env.hgds.append(self)  # stopped by env.close(), logs checked for secrets
        self.proc = None
        self.logs = []
        self.starts = 0

    def argv(self):
        if self.config_file:
            return [binary("hgd"), "-c", self.config_file] + self.extra_args
        e = self.env
        return [binary("hgd"), "--broker", e.broker.uri, "--state-dir", self.state_dir,
                "--keys", e.keys_path, "--instance", self.instance,
                "--allow-net", "127.0.0.0/8", "--webhook-cafile", e.ca,
                "--status-interval", "1", "--log-level", "debug",
                "--retry-schedule", "0.5,1"] + self.extra_args

    @property
    def log(self):
        return self.logs[-1] if self.logs else None

    def start(self, wait=True):
        self.starts += 1
        path = os.path.join(self.env.tmp, "hgd-%s.%d.log" % (self.instance, self.starts))
        self.logs.append(path)
        self.proc = spawn(self.argv(), path)
        if wait:
            self.wait_ready()
        return self

    def log_text(self, all_runs=True):
        out = []
        for p in (self.logs if all_runs else self.logs[-1:]):
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(out)

    def wait_ready(self, timeout=T_READY):
        """Until `event=ready` in this run's log, or a retained online status
        with a started_at not seen before."""
        seen = self.env.status_sub
        before = len(seen.messages)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("hgd exited with %s before it was ready; log:\n%s"
                                   % (self.proc.returncode, tail(self.log)))
            if re.search(r"\bevent=ready\b", self.log_text(all_runs=False)):
                return True
            for m in seen.messages[before:]:
                try:
                    j = m.json()
                except ValueError:
                    continue
                if m.topic.endswith("/" + self.instance) and j.get("online") is True:
                    return True
            return False
        try:
            wait_until(ready, timeout, interval=0.05, what="hgd ready")
        except TimeoutError:
            raise RuntimeError("hgd not ready after %.0fs; log:\n%s" % (timeout, tail(self.log)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stop hgd; returns its exit status (negative: killed by a signal)."""
        if self.proc is None:
            return None
        rc = stop_process(self.proc, sig, timeout)
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGTERM):
        rc = self.stop(sig)
        self.start()
        return rc


# --------------------------------------------------------------------------
# the environment of one test class
# --------------------------------------------------------------------------


class Env:
    def __init__(self, name, start_hgd=True, hgd_args=()):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="hg-it-%s-" % name.lower())
        self.failed = False
        self.secrets = set()
        self.outputs = []  # (what, text) of hgctl runs, for the secret check
        self.hgds = []     # every Hgd of this env
        self.hgd = None
        self._closers = []
        try:
            self._build(start_hgd, hgd_args)
        except BaseException:
            self.close()
            raise

    def _build(self, start_hgd, hgd_args):
        self.ca, self.cert, self.key = make_test_ca(os.path.join(self.tmp, "tls"))
        self.receiver = Receiver(self.cert, self.key).start()
        self._closers.append(self.receiver.stop)
        self.broker = Broker(self.tmp).start()
        self._closers.append(self.broker.stop)
        self.state_dir = os.path.join(self.tmp, "state")
        os.makedirs(self.state_dir, exist_ok=True)

        # Genies the restricted keys cover; listed upper case in the keys
        # file, because Genie ids compare without regard to case.
        self.agent_node = new_agent()
        self.agent_limited = new_agent()
        self.keys = {
            "ops": {"secret": new_secret("hgk_"), "agents": ["*"], "actions": list(ACTIONS)},
            "node": {"secret": new_secret("hgk_"), "agents": [self.agent_node.upper()],
                     "actions": ["escalate"]},
            "reader": {"secret": new_secret("hgk_"), "agents": ["*"], "actions": ["get"]},
            "limited": {"secret": new_secret("hgk_"), "agents": [self.agent_limited.upper()],
                        "actions": list(ACTIONS)},
            "noescalate": {"secret": new_secret("hgk_"), "agents": ["*"],
                           "actions": ["get", "upsert", "delete", "test"]},
        }
        for k in self.keys.values():
            self.secrets.add(k["secret"])
        self.keys_path = os.path.join(self.tmp, "keys.json")
        self.write_keys()

        self.client = MqttClient(self.broker.port).connect()
        self._closers.append(self.client.close)
        self.status_sub = self.client.subscribe(ROOT + "/status/+")
        self.delivery_sub = self.client.subscribe(ROOT + "/delivery/+")
        self.instance = "it-%s-%s" % (re.sub(r"[^a-z0-9]", "", self.name.lower())[:20],
                                      _secrets.token_hex(3))
        self.hgd = Hgd(self, self.instance, hgd_args)
        if start_hgd:
            self.hgd.start()

    def write_keys(self, keys=None):
        doc = {"keys": [dict(id=k, **v) for k, v in (keys or self.keys).items()]}
        tmp = self.keys_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.keys_path)

    def close(self):
        for h in self.hgds:
            h.stop()
        for c in reversed(self._closers):
            try:
                c()
            except Exception:
                pass
        if os.environ.get("HG_KEEP_TMP") or self.failed:
            sys.stderr.write("hglib: kept %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- secrets --
    def secret(self, prefix="whsec_"):
        """A new webhook secret, remembered for the leak check."""
        s = new_secret(prefix)
        self.secrets.add(s)
        return s

    def leaks(self):
        """Where any secret used so far shows up: hgd's logs, MQTT payloads
        this client received (replies, status, delivery events, fields), and
        hgctl's output."""
        found = []
        logs = "\n".join(h.log_text() for h in self.hgds)
        payloads = b"\n".join(self.client.all_payloads).decode("utf-8", "replace")
        for s in sorted(self.secrets):
            if s in logs:
                found.append("hgd log contains secret %s" % s)
            if s in payloads:
                found.append("an MQTT message from hgd contains secret %s" % s)
            for what, text in self.outputs:
                if s in text:
                    found.append("hgctl output (%s) contains secret %s" % (what, s))
        return found

    # -- driving hgd --
    def creds(self, key_id):
        return key_id, self.keys[key_id]["secret"]

    def request(self, action, params, key="ops", **kw):
        key_id, secret = self.creds(key) if isinstance(key, str) else key
        return self.client.request(action, params, key_id, secret, **kw)

    def send_request(self, action, params, key="ops", **kw):
        key_id, secret = self.creds(key) if isinstance(key, str) else key
        return self.client.send_request(action, params, key_id, secret, **kw)

    def escalate(self, agent, payload, key="ops", sign=None, topic=None):
        key_id, secret = self.creds(key) if isinstance(key, str) else key
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        return self.client.signed_publish(topic or "%s/escalation/%s" % (ROOT, agent), payload,
                                          key_id, secret, sign=sign)

    def upsert(self, params, key="ops"):
        r = self.request("upsert", params, key=key)
        if r is None or r.success is not True:
            raise AssertionError("upsert failed: %r" % (r,))
        return r.data

    def get(self, agent, key="ops"):
        r = self.request("get", {"agentId": agent}, key=key)
        if r is None or r.success is not True:
            raise AssertionError("get failed: %r" % (r,))
        return r.data

    def deliveries(self, agent):
        """Delivery events for one Genie so far (parsed)."""
        return [m.json() for m in self.delivery_sub.matching(
            lambda m: m.topic == "%s/delivery/%s" % (ROOT, agent.lower()))]

    def wait_delivery_event(self, agent, pred=lambda e: True, timeout=T_DELIVER):
        want = {"%s/delivery/%s" % (ROOT, agent), "%s/delivery/%s" % (ROOT, agent.lower())}

        def match(m):
            if m.topic not in want:
                return False
            try:
                return pred(m.json())
            except ValueError:
                return False
        m = self.delivery_sub.wait_for(match, timeout)
        return m.json() if m else None

    # -- hgctl --
    def hgctl(self, *args, key="ops", as_json=True, global_args=None, env=None,
              timeout=30, auth=True, port=None, input=None):
        """Run hgctl against this env's broker. Returns CompletedProcess with
        text stdout/stderr. HOME and XDG_CONFIG_HOME point into the temp dir so
        no developer config leaks in; HGCTL_* from the caller's environment
        are dropped."""
        cmd = [binary("hgctl"), "-h", "127.0.0.1", "-p", str(port or self.broker.port)]
        if auth:
            key_id, secret = self.creds(key) if isinstance(key, str) else key
            cmd += ["--key-id", key_id, "--key-secret", secret]
        cmd += ["--timeout", "5"]
        if as_json:
            cmd.append("--json")
        cmd += list(global_args or []) + list(args)
        return self.run_hgctl(cmd, env=env, timeout=timeout, input=input)

    def run_hgctl(self, cmd, env=None, timeout=30, input=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("HGCTL_")}
        home = os.path.join(self.tmp, "home")
        os.makedirs(home, exist_ok=True)
        e.update({"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config")})
        e.update(env or {})
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, env=e,
                           input=input if input is not None else b"")
        r.stdout = r.stdout.decode("utf-8", "replace")
        r.stderr = r.stderr.decode("utf-8", "replace")
        self.outputs.append((" ".join(cmd[5:8]) + "…", r.stdout + r.stderr))
        return r

    def diagnostics(self):
        out = []
        for h in self.hgds:
            if h.log:
                out.append("---- hgd (%s) log tail: %s" % (h.instance, h.log))
                out.append(tail(h.log, 40))
        out.append("---- mosquitto log tail: %s" % self.broker.log)
        out.append(tail(self.broker.log, 10))
        if self.receiver.tls_errors:
            out.append("---- receiver TLS errors: %s" % self.receiver.tls_errors[-5:])
        return "\n".join(out)


# --------------------------------------------------------------------------
# the test base class
# --------------------------------------------------------------------------


class HgTestCase(unittest.TestCase):
    """One Env per test class (hgd, broker, receiver shared by its tests;
    tests use fresh Genie ids so they do not interfere). At the end of the
    class, no secret may appear in hgd's logs, MQTT traffic or hgctl output."""

    env = None
    start_hgd = True
    hgd_args = ()
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.env = Env(cls.__name__, start_hgd=cls.start_hgd, hgd_args=cls.hgd_args)

    @classmethod
    def tearDownClass(cls):
        env, cls.env = cls.env, None
        if env is None:
            return
        try:
            leaks = env.leaks()
            if leaks:
                env.failed = True
                raise AssertionError("secrets leaked:\n  " + "\n  ".join(leaks))
        finally:
            env.close()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            env = type(self).env
            if env is not None:
                env.failed = True
                sys.stderr.write("\n" + env.diagnostics() + "\n")
        return out

    # -- conveniences --
    @property
    def rx(self):
        return self.env.receiver

    def path(self):
        """A fresh receiver path for one test."""
        return "/hook/%s" % _secrets.token_hex(6)

    def url(self, path=None):
        return self.rx.url(path or self.path())

    def assertOk(self, reply, msg=None):
        self.assertIsNotNone(reply, msg or "no reply within %.0fs" % T_REPLY)
        self.assertIs(reply.success, True, msg or "expected success, got %r" % (reply.body,))
        self.assertIn("data", reply.body)
        self.assertNotIn("error", reply.body)
        return reply.data

    def assertError(self, reply, code, mention=None, msg=None):
        """The reply is {"success": false, "error": {"code": code, "message": …}}
        and, when mention is given, the message names it (case-insensitive)."""
        self.assertIsNotNone(reply, msg or "no reply within %.0fs (expected %s)" % (T_REPLY, code))
        b = reply.body
        self.assertIs(b.get("success"), False, msg or "expected %s, got %r" % (code, b))
        self.assertIsInstance(b.get("error"), dict, "error object missing: %r" % (b,))
        self.assertEqual(b["error"].get("code"), code, msg or "wrong code in %r" % (b,))
        self.assertIsInstance(b["error"].get("message"), str, "error.message: %r" % (b,))
        self.assertTrue(b["error"]["message"], "empty error message: %r" % (b,))
        self.assertNotIn("data", b, "an error reply carries no data: %r" % (b,))
        if mention:
            self.assertIn(mention.lower(), b["error"]["message"].lower(),
                          "%s message does not name %r: %r" % (code, mention, b))

    def assertRow(self, row, agent, url, secret=False, header="X-HelpGenie-Signature",
                  custom_fields=(), active=True):
        self.assertIsInstance(row, dict, "row: %r" % (row,))
        self.assertEqual(set(row), ROW_KEYS, "row keys")
        self.assertRegex(row["id"], UUID4_RE)
        self.assertEqual(row["agent_id"], agent.lower())
        self.assertEqual(row["url"], url)
        self.assertEqual(row["secret"], MASK if secret else None)
        self.assertEqual(row["secret_header"], header)
        self.assertEqual(row["custom_fields"], normalise_fields(list(custom_fields)))
        self.assertIs(row["is_active"], active)
        self.assertRegex(row["created_at"], ISO_RE)
        self.assertRegex(row["updated_at"], ISO_RE)
        self.assertLessEqual(row["created_at"], row["updated_at"])


def main():
    """Run the tests of the calling module; exit non-zero on any failure."""
    unittest.main(module="__main__", verbosity=2, warnings="ignore")
