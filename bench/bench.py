#!/usr/bin/python3
"""Benchmark harness: hgd against the bridges users would write (docs/BENCHMARKS.md).

Run through bench/run.sh, which installs and builds first. Everything runs on
127.0.0.1: a fresh mosquitto and a fresh nginx (HTTP and HTTPS, answering
200, logging "$msec eventId" per request) for every measurement, the system
under test, and the C publisher (build-bench/bench/hgbench pub).

Per system and run:
  tput  N escalations published flat out (in-flight bounded by the broker's
        Receive Maximum): delivered/s, CPU seconds per 1,000, peak RSS
  lat   escalations at a fixed rate (default 2,000/s): p50/p99/p99.9 latency
        from publish to receipt at nginx
Then, per run: hgd's drain of a backlog queued while it was stopped, the
store (load, upsert at 1k/10k/100k rows, in-process), one durable outbox
append through the journal without and with its zero-filled reserve
(in-process, interleaved), and the round trip of
a `get` from a connected client against an hgd holding 100,000 webhooks.

Every process started here is killed at exit, also on failure or a signal
(and each child gets PR_SET_PDEATHSIG, so it dies with this script).
"""
import argparse
import atexit
import ctypes
import datetime
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SNIPPET = os.path.join(REPO, "systemd", "mosquitto-hgd.conf")
TICK = os.sysconf("SC_CLK_TCK")
KEY_ID = "ops"
AGENT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

_procs = []
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _child_setup():
    os.setsid()
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(argv, log, env=None, stdout=None):
    f = open(log, "ab")
    p = subprocess.Popen(argv, stdout=stdout or f, stderr=f, stdin=subprocess.DEVNULL,
                         env=env, preexec_fn=_child_setup, cwd=HERE)
    p._log = f
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=5.0):
    if p is None:
        return None
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)  # the group of this child only (it called setsid)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    else:
        try:  # the leader is gone: make sure nothing of its group is left
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if p in _procs:
        _procs.remove(p)
    p._log.close()
    return p.returncode


def _cleanup():
    for p in list(_procs):
        try:
            stop(p, timeout=3)
        except Exception:
            pass


atexit.register(_cleanup)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, lambda s, f: sys.exit(128 + s))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(interval)
    raise RuntimeError("timed out waiting for " + what)


def wait_port(port, timeout=10):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    wait_until(up, timeout, "port %d" % port)


def cpu_secs(pid):
    """utime+stime of the whole process (all threads), in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return None


def thread_cpu(pid):
    """{tid-comm: cpu seconds} of every thread of pid."""
    out = {}
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            out["%s:%s" % (t, head.split("(", 1)[1])] = (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        pass
    return out


def thread_switches(pid):
    """{tid-comm: voluntary + involuntary context switches} of every thread
    of pid: each is a wake-up, and on this VM a wake-up costs more than
    most of the work it wakes for (perf: finish_task_switch)."""
    out = {}
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
            out["%s:%s" % (t, st["Name"].strip())] = (int(st["voluntary_ctxt_switches"]) +
                                                      int(st["nonvoluntary_ctxt_switches"]))
    except (OSError, KeyError, ValueError):
        pass
    return out


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def quantile(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


class RssSampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.halt = pids, 0, threading.Event()

    def run(self):
        while not self.halt.is_set():
            total = sum(status_kb(p, "VmRSS") or 0 for p in self.pids)
            self.peak = max(self.peak, total)
            self.halt.wait(0.05)


class ReceiptLog:
    """First arrival of each eventId of this run's tag, from a "secs eventId" log."""

    def __init__(self, path, tag):
        self.path, self.btag, self.pos, self.first, self.lines = path, tag.encode(), 0, {}, 0
        self.last_change = time.monotonic()
        self.protocols, self.connections = {}, set()

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return len(self.first)
        end = data.rfind(b"\n") + 1
        self.pos += end
        before = len(self.first)
        for line in data[:end].splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[1].startswith(self.btag):
                continue
            self.lines += 1
            if len(parts) >= 4:
                self.protocols[parts[2].decode()] = self.protocols.get(parts[2].decode(), 0) + 1
                self.connections.add(parts[3])
            eid = parts[1].decode()
            if eid not in self.first:
                self.first[eid] = float(parts[0])
        if len(self.first) != before:
            self.last_change = time.monotonic()
        return len(self.first)


class Env:
    """One throwaway directory: CA, keys, ports; a fresh broker and nginx per measurement."""

    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.dir = tempfile.mkdtemp(prefix="hgbench-", dir=args.workdir)
        self.key_secret = "hgk_" + secrets.token_hex(24)
        self.wh_secret = "whsec_" + secrets.token_hex(16)
        self.keys = os.path.join(self.dir, "keys.json")
        with open(os.open(self.keys, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            json.dump({"keys": [{"id": KEY_ID, "secret": self.key_secret, "agents": ["*"],
                                 "actions": ["get", "upsert", "delete", "test", "escalate"]}]}, f)
        self._certs()
        self.n_measure = 0

    def _certs(self):
        d = self.dir
        self.ca = os.path.join(d, "ca.pem")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=hgbench CA")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key",
            "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")

    def path(self, name):
        return os.path.join(self.dir, name)

    # --- broker and receiver ---------------------------------------------------
    def start_broker(self, tag):
        port = free_port()
        conf = self.path("mosquitto-%s.conf" % tag)
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\n"
                    "# bench: how many QoS 1 messages the broker keeps in flight per client\n"
                    "max_inflight_messages %d\n# systemd/mosquitto-hgd.conf\n%s\n"
                    % (port, self.args.broker_inflight, open(SNIPPET).read()))
        p = spawn(["mosquitto", "-c", conf], self.path("mosquitto-%s.log" % tag))
        wait_port(port)
        return p, port

    def start_nginx(self, tag):
        http, https = free_port(), free_port()
        log = self.path("nginx-%s.access" % tag)
        tmp = self.path("nginx-tmp")
        os.makedirs(tmp, exist_ok=True)
        conf = self.path("nginx-%s.conf" % tag)
        with open(conf, "w") as f:
            f.write("""daemon off;
user root;
worker_processes 1;
pid {d}/nginx-{t}.pid;
error_log {d}/nginx-{t}.error warn;
events {{ worker_connections 4096; }}
http {{
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  log_format bench '$msec $http_x_helpgenie_event_id $server_protocol $connection';
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{http};
    listen 127.0.0.1:{https} ssl http2;
    ssl_certificate {d}/srv.pem;
    ssl_certificate_key {d}/srv.key;
    access_log {log} bench buffer=64k flush=100ms;
    location / {{ return 200 "ok\\n"; }}
  }}
}}
""".format(d=self.dir, t=tag, tmp=tmp, http=http, https=https, log=log))
        p = spawn(["nginx", "-c", conf, "-p", self.dir], self.path("nginx-%s.log" % tag))
        wait_port(http)
        wait_port(https)
        return p, http, https, log

    # --- hgd -----------------------------------------------------------------
    def hgd_argv(self, port, state):
        pre = []
        if getattr(self.args, "callgrind", False):
            pre = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s/callgrind.%%p" % self.dir]
        return pre + [os.path.join(self.build, "daemon", "hgd"), "--broker", "mqtt://127.0.0.1:%d" % port,
                "--state-dir", state, "--keys", self.keys, "--instance", "bench",
                "--allow-http", "--allow-net", "127.0.0.0/8", "--webhook-cafile", self.ca,
                "--retry-schedule", "1,2,5", "--log-level", "warn"]

    def hgctl(self, port, *args, timeout=2):
        argv = [os.path.join(self.build, "cli", "hgctl"), "-h", "127.0.0.1", "-p", str(port),
                "--key-id", KEY_ID, "--key-secret", self.key_secret, "--timeout", str(timeout),
                "--json"] + list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)

    def set_webhook(self, port, url, timeout=20):
        end = time.monotonic() + timeout
        while True:
            r = self.hgctl(port, "webhook", "set", AGENT, "--url", url, "--secret", self.wh_secret)
            if r.returncode == 0:
                return
            if time.monotonic() > end:
                raise RuntimeError("webhook set failed: %s %s" % (r.stdout, r.stderr))
            time.sleep(0.2)

    def pub(self, port, n, rate, tag):
        argv = [os.path.join(self.build, "bench", "hgbench"), "pub", "--port", str(port),
                "--n", str(n), "--rate", str(rate), "--agent", AGENT, "--key-id", KEY_ID,
                "--secret", self.key_secret, "--tag", tag]
        t = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=_child_setup)
        _procs.append(p)
        p._log = open(os.devnull)
        out, err = p.communicate(timeout=600)
        ru = None
        _procs.remove(p)
        if p.returncode != 0 and not out:
            raise RuntimeError("publisher failed: %s" % err.decode())
        res = json.loads(out.decode().strip().splitlines()[-1])
        res["wall_secs"] = time.monotonic() - t
        return res


def start_sut(env, kind, port, url, https, tag):
    """Start the system under test; returns (procs to measure, receipt log path, stoppers)."""
    log = env.path("sut-%s.log" % tag)
    if kind == "broker":
        out = env.path("sub-%s.receipts" % tag)
        p = spawn([os.path.join(env.build, "bench", "hgbench"), "sub", "--port", str(port),
                   "--out", out, "--id", "sub-" + tag], log, stdout=subprocess.PIPE)
        line = p.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError("subscriber did not start: " + open(log).read())
        return [p], out
    if kind in ("py", "node"):
        if kind == "py":
            argv = ["/usr/bin/python3", os.path.join(HERE, "bridge_py.py")]
            if https:
                argv += ["--cafile", env.ca]
        else:
            argv = ["node", os.path.join(HERE, "node", "bridge.mjs"), "--inflight", "64"]
        argv += ["--port", str(port), "--url", url, "--secret", env.wh_secret, "--keys", env.keys]
        e = dict(os.environ, NODE_EXTRA_CA_CERTS=env.ca)
        p = spawn(argv, log, env=e, stdout=subprocess.PIPE)
        line = p.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError("%s bridge did not start: %s" % (kind, open(log).read()))
        return [p], None
    if kind in ("hgd", "hgd-tmpfs"):
        base = "/dev/shm" if kind == "hgd-tmpfs" else env.dir
        state = tempfile.mkdtemp(prefix="hgbench-state-%s-" % tag, dir=base)
        p = spawn(env.hgd_argv(port, state), log)
        env.set_webhook(port, url)
        return [p], None
    raise ValueError(kind)


SYSTEMS = {
    # name: (kind, https)
    "broker": ("broker", False),
    "py-http": ("py", False),
    "py-https": ("py", True),
    "node-http": ("node", False),
    "node-https": ("node", True),
    "hgd-http": ("hgd", False),
    "hgd-https": ("hgd", True),
    "hgd-http-tmpfs": ("hgd-tmpfs", False),
}


def measure(env, name, n, rate, mode):
    kind, https = SYSTEMS[name]
    env.n_measure += 1
    tag = "%08x" % (0xb0000000 + env.n_measure)
    broker, port = env.start_broker(tag)
    nginx, http, hs, access = env.start_nginx(tag)
    url = "https://127.0.0.1:%d/hook" % hs if https else "http://127.0.0.1:%d/hook" % http
    procs, receipts = start_sut(env, kind, port, url, https, tag)
    pids = [p.pid for p in procs]
    time.sleep(0.3)
    infra = [broker.pid, nginx.pid] + children(nginx.pid)
    cpu0 = [cpu_secs(p) for p in pids]
    threads0 = thread_cpu(pids[0])
    switches0 = thread_switches(pids[0])
    infra0 = [cpu_secs(p) or 0 for p in infra]
    sampler = RssSampler(pids)
    sampler.start()
    log = ReceiptLog(receipts or access, tag)
    perf = None
    if env.args.perf and kind.startswith("hgd"):
        perf = spawn(["perf", "record", "-F", "1999", "--call-graph", "dwarf,16384", "-p", str(pids[0]), "-o",
                      env.path("perf-%s-%s.data" % (name, mode))], env.path("perf.log"))
        time.sleep(0.5)
    try:
        pub = env.pub(port, n, rate, tag)
        stall = env.args.stall
        deadline = time.monotonic() + max(60, n / 200.0)
        while log.poll() < n:
            if time.monotonic() - log.last_change > stall or time.monotonic() > deadline:
                break
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.05)
        time.sleep(0.25)  # nginx flushes its log buffer every 100 ms
        log.poll()
    finally:
        sampler.halt.set()
        if perf:
            stop(perf, signal.SIGINT, timeout=30)
        cpu1 = [cpu_secs(p) for p in pids]
        threads1 = thread_cpu(pids[0])
        switches1 = thread_switches(pids[0])
        infra1 = [cpu_secs(p) or 0 for p in infra]
        hwm = sum(status_kb(p, "VmHWM") or 0 for p in pids)
        alive = all(p.poll() is None for p in procs)
        for p in procs:
            stop(p)
        stop(nginx)
        stop(broker)
    delivered = len(log.first)
    t0 = pub["t0_us"] / 1e6
    lats = []
    for eid, at in log.first.items():
        off = int(eid[-12:], 16) / 1e6
        lats.append((at - (t0 + off)) * 1000.0)
    lats.sort()
    last = max(log.first.values()) if log.first else t0
    cpu = sum((b or 0) - (a or 0) for a, b in zip(cpu0, cpu1))
    res = {
        "system": name, "mode": mode, "n": n, "rate": rate, "delivered": delivered,
        "duplicates": log.lines - delivered, "sut_alive": alive,
        "publish_rate": round(pub["published"] / pub["send_secs"], 1) if pub["send_secs"] else None,
        "delivered_per_s": round(delivered / (last - t0), 1) if delivered and last > t0 else 0,
        "cpu_s": round(cpu, 3),
        "cpu_s_per_1000": round(cpu / delivered * 1000, 4) if delivered else None,
        "infra_cpu_ms_per_msg": round(sum(b - a for a, b in zip(infra0, infra1)) / max(delivered, 1) * 1000, 4),
        "peak_rss_mb": round(sampler.peak / 1024, 1),
        "vmhwm_mb": round(hwm / 1024, 1),
        "p50_ms": round(quantile(lats, 0.5), 2) if lats else None,
        "p99_ms": round(quantile(lats, 0.99), 2) if lats else None,
        "p999_ms": round(quantile(lats, 0.999), 2) if lats else None,
        "max_ms": round(lats[-1], 2) if lats else None,
        "publisher": pub,
        "receiver_protocols": log.protocols,
        "receiver_connections": len(log.connections),
        "thread_cpu_s": {k: round(v - threads0.get(k, 0), 3) for k, v in threads1.items()
                         if v - threads0.get(k, 0) > 0},
        "thread_switches_per_msg": {k: round((v - switches0.get(k, 0)) / max(delivered, 1), 2)
                                    for k, v in switches1.items() if v > switches0.get(k, 0)},
    }
    return res


def measure_drain(env, n):
    """hgd stopped, n escalations queued in the broker, hgd started: time to drain."""
    tag = "%08x" % (0xd0000000 + env.n_measure)
    env.n_measure += 1
    broker, port = env.start_broker(tag)
    nginx, http, hs, access = env.start_nginx(tag)
    state = tempfile.mkdtemp(prefix="state-drain-", dir=env.dir)
    log = ReceiptLog(access, tag)
    hgd = None
    try:
        hgd = spawn(env.hgd_argv(port, state), env.path("hgd-drain-%s.log" % tag))
        env.set_webhook(port, "http://127.0.0.1:%d/hook" % http)
        stop(hgd)  # SIGTERM: a clean stop, the persistent session stays
        pub = env.pub(port, n, 0, tag)
        time.sleep(0.5)
        t_start = time.time()
        hgd = spawn(env.hgd_argv(port, state), env.path("hgd-drain-%s.log" % tag))
        cpu0 = cpu_secs(hgd.pid)
        bcpu0 = cpu_secs(broker.pid) or 0
        threads0 = thread_cpu(hgd.pid)
        sampler = RssSampler([hgd.pid])
        sampler.start()
        deadline = time.monotonic() + max(60, n / 200.0)
        while log.poll() < n:
            if time.monotonic() - log.last_change > env.args.stall and log.first:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.25)
        log.poll()
        sampler.halt.set()
        cpu = (cpu_secs(hgd.pid) or 0) - (cpu0 or 0)
        bcpu = (cpu_secs(broker.pid) or 0) - bcpu0
        threads1 = thread_cpu(hgd.pid)
        hwm = status_kb(hgd.pid, "VmHWM") or 0
    finally:
        stop(hgd)
        stop(nginx)
        stop(broker)
    delivered = len(log.first)
    last = max(log.first.values()) if log.first else t_start
    first = min(log.first.values()) if log.first else t_start
    secs = last - t_start
    return {"n": n, "delivered": delivered, "publish_rate": round(n / pub["send_secs"], 1),
            "drain_secs": round(secs, 3), "drain_per_s": round(delivered / secs, 1) if secs > 0 else 0,
            "start_to_first_s": round(first - t_start, 3),
            "first_to_last_per_s": round((delivered - 1) / (last - first), 1) if last > first else 0,
            "broker_cpu_ms_per_msg": round(bcpu / max(delivered, 1) * 1000, 4),
            "thread_cpu_s": {k: round(v - threads0.get(k, 0), 3) for k, v in threads1.items()
                             if v - threads0.get(k, 0) > 0},
            "cpu_s_per_1000": round(cpu / max(delivered, 1) * 1000, 4),
            "peak_rss_mb": round(sampler.peak / 1024, 1), "vmhwm_mb": round(hwm / 1024, 1)}


def measure_store(env, sizes, upserts):
    d = tempfile.mkdtemp(prefix="store-", dir=env.dir)
    r = subprocess.run([os.path.join(env.build, "bench", "hgbench"), "store", "--dir", d,
                        "--sizes", sizes, "--upserts", str(upserts)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("store bench failed: " + r.stderr)
    return json.loads(r.stdout), d


def measure_append(env, n=1000):
    """One durable outbox-sized journal append, plain and into the reserve."""
    d = tempfile.mkdtemp(prefix="append-", dir=env.dir)
    try:
        r = subprocess.run([os.path.join(env.build, "bench", "hgbench"), "append", "--dir", d,
                            "--n", str(n)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("append bench failed: " + r.stderr)
        return json.loads(r.stdout)
    finally:
        subprocess.run(["rm", "-rf", d])


def measure_get(env, store_dir, rows, n):
    """get round trip from a connected client, hgd holding `rows` webhooks; also hgd's start."""
    tag = "%08x" % (0xe0000000 + env.n_measure)
    env.n_measure += 1
    broker, port = env.start_broker(tag)
    state = os.path.join(store_dir, "store-%d" % rows)
    hgd = None
    try:
        t = time.monotonic()
        hgd = spawn(env.hgd_argv(port, state), env.path("hgd-get-%s.log" % tag))
        agent = "%08x-0000-4000-8000-%012x" % (rows // 2, rows // 2)
        while env.hgctl(port, "webhook", "get", agent, timeout=1).returncode != 0:
            if hgd.poll() is not None or time.monotonic() - t > 60:
                raise RuntimeError("hgd with %d rows did not answer" % rows)
        ready = time.monotonic() - t
        r = subprocess.run([os.path.join(env.build, "bench", "hgbench"), "rtt", "--port", str(port),
                            "--n", str(n), "--agent", agent, "--key-id", KEY_ID,
                            "--secret", env.key_secret], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("rtt failed: " + r.stderr)
        res = json.loads(r.stdout)
        res["rows"] = rows
        res["hgd_start_to_first_reply_s"] = round(ready, 3)
        res["hgd_rss_mb"] = round((status_kb(hgd.pid, "VmRSS") or 0) / 1024, 1)
        return res
    finally:
        stop(hgd)
        stop(broker)


def med(vals):
    vals = [v for v in vals if v is not None]
    return round(statistics.median(vals), 4) if vals else None


def summarize(runs, systems):
    s = {}
    for name in systems:
        row = {}
        for mode, keys in (("tput", ("delivered", "delivered_per_s", "cpu_s_per_1000", "peak_rss_mb",
                                     "vmhwm_mb", "infra_cpu_ms_per_msg", "publish_rate")),
                           ("lat", ("delivered", "delivered_per_s", "p50_ms", "p99_ms", "p999_ms",
                                    "cpu_s_per_1000", "peak_rss_mb", "publish_rate"))):
            rs = [r["systems"][name][mode] for r in runs if name in r["systems"]]
            row[mode] = {k: med([x.get(k) for x in rs]) for k in keys}
        s[name] = row
    if all("drain" in r for r in runs):
        s["drain"] = {k: med([r["drain"].get(k) for r in runs])
                      for k in ("drain_per_s", "drain_secs", "delivered", "cpu_s_per_1000", "peak_rss_mb",
                                "start_to_first_s", "first_to_last_per_s", "broker_cpu_ms_per_msg")}
    if runs and all("append" in r for r in runs):
        s["append"] = {k: med([r["append"][k] for r in runs])
                       for k in ("plain_us", "plain_cpu_us", "reserve_us", "reserve_cpu_us")}
    if all("store" in r for r in runs):
        s["store"] = []
        for i, row in enumerate(runs[0]["store"]):
            s["store"].append({k: (row[k] if k == "rows" else med([r["store"][i][k] for r in runs]))
                               for k in row})
    if all("get" in r for r in runs):
        s["get"] = {k: med([r["get"][k] for r in runs])
                    for k in ("rows", "p50_ms", "p99_ms", "mean_ms", "hgd_start_to_first_reply_s",
                              "hgd_rss_mb")}
    return s


def ratios(s):
    def g(name, mode, key):
        return s.get(name, {}).get(mode, {}).get(key)
    out = []

    def add(what, value, target, ok):
        m = None if value is None else ok(value)
        out.append({"target": what, "value": value, "goal": target,
                    "met": None if m is None else bool(m)})

    def div(a, b):
        return round(a / b, 3) if a is not None and b else None

    def info(v):
        return None
    for proto in ("http", "https"):
        bridges = [x for x in (g("py-" + proto, "tput", "cpu_s_per_1000"),
                               g("node-" + proto, "tput", "cpu_s_per_1000")) if x is not None]
        add("CPU per 1,000: hgd-%s / faster bridge" % proto,
            div(g("hgd-" + proto, "tput", "cpu_s_per_1000"), min(bridges) if bridges else None),
            "<= 0.1", lambda v: v <= 0.1)
    tp = lambda n: g(n, "tput", "delivered_per_s")
    add("throughput hgd-http / py-http", div(tp("hgd-http"), tp("py-http")), ">= 4", lambda v: v >= 4)
    add("throughput hgd-http / node-http", div(tp("hgd-http"), tp("node-http")), ">= 3", lambda v: v >= 3)
    add("throughput hgd-https / py-https", div(tp("hgd-https"), tp("py-https")), ">= 3", lambda v: v >= 3)
    add("throughput hgd-https / node-https", div(tp("hgd-https"), tp("node-https")), ">= 3",
        lambda v: v >= 3)
    add("throughput hgd-http / broker ceiling", div(tp("hgd-http"), tp("broker")), "(info)", info)
    if tp("hgd-http-tmpfs") is not None:
        add("throughput hgd-http-tmpfs / py-http", div(tp("hgd-http-tmpfs"), tp("py-http")),
            "(info: no fsync cost)", info)
        add("throughput hgd-http-tmpfs / node-http", div(tp("hgd-http-tmpfs"), tp("node-http")),
            "(info: no fsync cost)", info)
        b = [x for x in (g("py-http", "tput", "cpu_s_per_1000"), g("node-http", "tput", "cpu_s_per_1000"))
             if x is not None]
        add("CPU per 1,000: hgd-http-tmpfs / faster bridge",
            div(g("hgd-http-tmpfs", "tput", "cpu_s_per_1000"), min(b) if b else None),
            "(info: no fsync cost)", info)
    for proto in ("http", "https"):
        # nginx's $msec has millisecond resolution: judge p99 + 1 ms.
        add("p99 ms at the fixed rate, hgd-" + proto, g("hgd-" + proto, "lat", "p99_ms"),
            "< 5 (+1 ms res.)", lambda v: v + 1.0 < 5)
    rss = [x for x in (g("hgd-http", "tput", "peak_rss_mb"), g("hgd-https", "tput", "peak_rss_mb"),
                       g("hgd-http", "lat", "peak_rss_mb"), g("hgd-https", "lat", "peak_rss_mb"))
           if x is not None]
    add("hgd peak RSS while delivering, MB", max(rss) if rss else None, "< 20", lambda v: v < 20)
    st = s.get("store")
    if st:
        big = st[-1]
        add("store load of %d webhooks, ms" % big["rows"], big["load_ms"], "< 1000", lambda v: v < 1000)
        # The median upsert: the mean follows the other tenants' disk stalls.
        add("upsert p50 at %d rows / at %d rows" % (big["rows"], st[0]["rows"]),
            div(big["upsert_p50_ms"], st[0]["upsert_p50_ms"]), "~1 (no growth)", lambda v: v < 1.5)
        add("upsert mean at %d rows / at %d rows" % (big["rows"], st[0]["rows"]),
            div(big["upsert_mean_ms"], st[0]["upsert_mean_ms"]), "(info)", info)
    if s.get("get"):
        add("get round trip p50 ms (%s rows)" % s["get"]["rows"], s["get"]["p50_ms"], "< 1",
            lambda v: v < 1)
    if s.get("drain"):
        add("drain rate / sustained rate (hgd-http)", div(s["drain"]["drain_per_s"], tp("hgd-http")),
            ">= 1", lambda v: v >= 1)
    return out


def fmt(v, w, nd=1):
    if v is None:
        return "-".rjust(w)
    if isinstance(v, float):
        return ("%.*f" % (nd, v)).rjust(w)
    return str(v).rjust(w)


def print_table(s, args, systems):
    print()
    print("Medians of %d run(s); throughput: %d escalations flat out; latency: %d at %g/s."
          % (args.runs, args.n, args.lat_n, args.lat_rate))
    hdr = ("system", "deliv/s", "CPU s/1k", "RSS MB", "p50 ms", "p99 ms", "p99.9 ms", "lat deliv")
    print("%-15s %9s %9s %7s %8s %8s %9s %10s" % hdr)
    for name in systems:
        t, l = s[name]["tput"], s[name]["lat"]
        print("%-15s %s %s %s %s %s %s %s" % (
            name, fmt(t["delivered_per_s"], 9, 0), fmt(t["cpu_s_per_1000"], 9, 3),
            fmt(t["peak_rss_mb"], 7), fmt(l["p50_ms"], 8), fmt(l["p99_ms"], 8), fmt(l["p999_ms"], 9),
            fmt(l["delivered"], 10, 0)))
    if s.get("drain"):
        d = s["drain"]
        print("\ndrain of %d queued escalations: %.2f s from hgd's start, %s/s (%s/s from the first"
              " receipt on; hgd-http sustained: %s/s)"
              % (args.drain_n, d["drain_secs"], fmt(d["drain_per_s"], 0, 0).strip(),
                 fmt(d.get("first_to_last_per_s"), 0, 0).strip(),
                 fmt(s.get("hgd-http", {}).get("tput", {}).get("delivered_per_s"), 0, 0).strip()))
    if s.get("append"):
        a = s["append"]
        print("\ndurable outbox append (601 B + fdatasync): plain %.1f us (CPU %.1f us), into the "
              "reserve %.1f us (CPU %.1f us)" % (a["plain_us"], a["plain_cpu_us"], a["reserve_us"],
                                                 a["reserve_cpu_us"]))
    if s.get("store"):
        print("\nstore   rows   load ms   upsert mean ms   upsert p99 ms   in-memory get us")
        for r in s["store"]:
            print("      %6d %9.1f %16.3f %15.3f %18.2f" % (r["rows"], r["load_ms"], r["upsert_mean_ms"],
                                                         r["upsert_p99_ms"], r["get_us"]))
    if s.get("get"):
        g = s["get"]
        print("\nget round trip (%d rows): p50 %.3f ms, p99 %.3f ms; hgd start to first reply %.2f s"
              % (g["rows"], g["p50_ms"], g["p99_ms"], g["hgd_start_to_first_reply_s"]))
    print("\ntargets:")
    for r in ratios(s):
        met = {True: "MET", False: "MISSED", None: ""}[r["met"]]
        print("  %-48s %10s  goal %-16s %s" % (r["target"], fmt(r["value"], 0, 3).strip(), r["goal"], met))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="escalations per throughput run")
    ap.add_argument("--rate", type=float, default=0, help="publish rate of throughput runs (0 = flat out)")
    ap.add_argument("--lat-n", type=int, default=10000, help="escalations per latency run")
    ap.add_argument("--lat-rate", type=float, default=2000, help="publish rate of latency runs")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--drain-n", type=int, default=20000)
    ap.add_argument("--store-sizes", default="1000,10000,100000")
    ap.add_argument("--upserts", type=int, default=300)
    ap.add_argument("--get-n", type=int, default=1000)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--broker-inflight", type=int, default=100,
                    help="mosquitto max_inflight_messages (its Receive Maximum)")
    ap.add_argument("--stall", type=float, default=15, help="give up after this many seconds without a receipt")
    ap.add_argument("--quick", action="store_true", help="small smoke run (~30 s)")
    ap.add_argument("--no-extras", action="store_true", help="skip drain, store and get")
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--workdir", default="/var/tmp", help="where state, logs and certs go (a real disk)")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--callgrind", action="store_true",
                    help="run hgd under valgrind --tool=callgrind (slow: use small --n and --rate)")
    ap.add_argument("--perf", action="store_true",
                    help="perf record -g each hgd measurement into the (kept) work directory")
    ap.add_argument("--report", metavar="JSON", help="print the table of an earlier result file and exit")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            old = json.load(f)
        cfg = old["config"]
        for k in ("runs", "n", "lat_n", "lat_rate", "drain_n"):
            setattr(args, k, cfg[k])
        syss = [x for x in cfg["systems"].split(",") if x]
        print_table(summarize(old["runs"], syss), args, syss)
        return 0
    if args.quick:
        args.n, args.lat_n, args.runs, args.drain_n = 2000, 2000, 1, 2000
        args.store_sizes, args.upserts, args.get_n, args.stall = "1000,10000", 100, 200, 8
        if args.systems == ",".join(SYSTEMS):
            args.systems = "broker,py-http,node-http,hgd-http,hgd-https"
    systems = [x for x in args.systems.split(",") if x]
    for x in systems:
        if x not in SYSTEMS:
            ap.error("unknown system %s (known: %s)" % (x, ", ".join(SYSTEMS)))

    env = Env(args)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    print("hgbench: work directory %s" % env.dir, flush=True)
    runs = []
    ok = False
    try:
        for i in range(args.runs):
            run = {"run": i + 1, "systems": {}}
            for name in systems:
                run["systems"][name] = {}
                for mode, n, rate in (("tput", args.n, args.rate), ("lat", args.lat_n, args.lat_rate)):
                    r = measure(env, name, n, rate, mode)
                    run["systems"][name][mode] = r
                    print("run %d %-15s %-4s delivered %6d/%-6d %8.0f/s  cpu %.3f s/1k  rss %5.1f MB"
                          "  p50 %s p99 %s p99.9 %s ms" % (
                              i + 1, name, mode, r["delivered"], n, r["delivered_per_s"],
                              r["cpu_s_per_1000"] or 0, r["peak_rss_mb"], r["p50_ms"], r["p99_ms"],
                              r["p999_ms"]), flush=True)
            if not args.no_extras:
                run["drain"] = measure_drain(env, args.drain_n)
                print("run %d drain: %s" % (i + 1, json.dumps(run["drain"])), flush=True)
                run["append"] = measure_append(env)
                print("run %d append: %s" % (i + 1, json.dumps(run["append"])), flush=True)
                run["store"], sdir = measure_store(env, args.store_sizes, args.upserts)
                print("run %d store: %s" % (i + 1, json.dumps(run["store"])), flush=True)
                rows = int(args.store_sizes.split(",")[-1])
                run["get"] = measure_get(env, sdir, rows, args.get_n)
                print("run %d get: %s" % (i + 1, json.dumps(run["get"])), flush=True)
                subprocess.run(["rm", "-rf", sdir])
            runs.append(run)
        ok = True
    finally:
        summary = summarize(runs, systems) if runs else {}
        result = {
            "started": stamp, "complete": ok, "argv": sys.argv[1:],
            "config": {k: v for k, v in vars(args).items()},
            "host": {"cores": os.cpu_count(), "kernel": platform.release(),
                     "loadavg_at_end": os.getloadavg()},
            "versions": {
                "mosquitto": subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.split("\n")[0],
                "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
                "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
            },
            "runs": runs, "median": summary, "targets": ratios(summary) if runs else [],
        }
        os.makedirs(args.results, exist_ok=True)
        out = os.path.join(args.results, "%s%s.json" % (stamp, "-quick" if args.quick else ""))
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
        if runs:
            print_table(summary, args, systems)
        print("\nresults: %s" % out)
        _cleanup()
        if not args.keep and not args.perf and not args.callgrind:
            subprocess.run(["rm", "-rf", env.dir])
            for d in os.listdir("/dev/shm"):
                if d.startswith("hgbench-state-"):
                    subprocess.run(["rm", "-rf", os.path.join("/dev/shm", d)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
