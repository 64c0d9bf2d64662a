"""opslib — helpers of the operations tests (tests/integration/test_ops_*.py):
log-line parsing, an sd_notify listener, running hgd to completion, and the
build and install trees. The shared harness is hglib; this module only adds.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import hglib

# One log line: level=… event=… then key=value pairs, a value either a bare
# token (printable ASCII without blank, '"', '\\' or '=') or a double-quoted
# string with \" \\ \n \t \xNN escapes. docs/OPERATIONS.md, "Logs".
_BARE = r'[!#-<>-\[\]-~]+'
_QUOTED = r'"(?:[^"\\\x00-\x1f]|\\["\\nt]|\\x[0-9a-f]{2})*"'
_PAIR = r'[A-Za-z_][A-Za-z0-9_]*=(?:%s|%s)' % (_QUOTED, _BARE)
LOG_RE = re.compile(r'^level=(error|warn|info|debug) event=[a-z][a-z0-9_.]*(?: %s)*$' % _PAIR)
_PAIR_RE = re.compile(r' ([A-Za-z_][A-Za-z0-9_]*)=(%s|%s)' % (_QUOTED, _BARE))


def unquote(v):
    if not v.startswith('"'):
        return v
    out, i, s = [], 0, v[1:-1]
    while i < len(s):
        c = s[i]
        if c == "\\":
            n = s[i + 1]
            if n == "x":
                out.append(chr(int(s[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append({"n": "\n", "t": "\t"}.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_line(line):
    """The pairs of one well-formed log line as a dict (level and event
    included), or None when the line is not in the stable form. A key that
    appears twice makes the line malformed too (it would be forged)."""
    if not LOG_RE.match(line):
        return None
    pairs = {}
    for k, v in _PAIR_RE.findall(" " + line):
        if k in pairs:
            return None
        pairs[k] = unquote(v)
    return pairs


def log_lines(text):
    """(well-formed dicts, malformed lines) of a log text. Lines starting
    with 'hgd: ' are hgd's messages before logging starts (bad config) and
    are returned as malformed only if they contain a newline-forgery."""
    good, bad = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        d = parse_line(line)
        if d is None:
            bad.append(line)
        else:
            good.append(d)
    return good, bad


def events(text, name=None, **match):
    good, _ = log_lines(text)
    return [d for d in good if (name is None or d["event"] == name) and
            all(d.get(k) == v for k, v in match.items())]


def run_hgd(args, timeout=15, env=None):
    """Run hgd to completion: (returncode, stdout, stderr)."""
    r = subprocess.run([hglib.binary("hgd")] + list(args), capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def hgd_version():
    rc, out, _ = run_hgd(["--version"])
    m = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    return m.group(1) if m else None


# --------------------------------------------------------------------------
# sd_notify
# --------------------------------------------------------------------------


class NotifyListener:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET: records
    every notification as (monotonic time, {key: value})."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify-%d.sock" % id(self))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self._cv = threading.Condition()
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            kv = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    kv[k] = v
            with self._cv:
                self.messages.append((time.monotonic(), kv))
                self._cv.notify_all()

    def with_key(self, key, value=None, after=0.0):
        with self._cv:
            return [(t, m) for t, m in self.messages
                    if t >= after and key in m and (value is None or m[key] == value)]

    def wait_for(self, key, value=None, after=0.0, timeout=10.0):
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [(t, m) for t, m in self.messages
                       if t >= after and key in m and (value is None or m[key] == value)]
                if got:
                    return got[0]
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(min(left, 0.2))

    def keys_in_order(self):
        with self._cv:
            return [k for _, m in self.messages for k in m]

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# --------------------------------------------------------------------------
# build and install trees
# --------------------------------------------------------------------------


def build_dir():
    """The CMake build directory that holds $HGD (ctest sets it)."""
    d = os.path.dirname(os.path.abspath(hglib.binary("hgd")))
    while d != "/":
        if os.path.exists(os.path.join(d, "CMakeCache.txt")):
            return d
        d = os.path.dirname(d)
    raise RuntimeError("no CMakeCache.txt above %s" % hglib.binary("hgd"))


def cache_value(name):
    with open(os.path.join(build_dir(), "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    return None


class InstallTree:
    """`cmake --install <build> --prefix <tmp>/root<prefix>` with
    DESTDIR-free absolute prefix; removed on close unless HG_KEEP_TMP."""

    def __init__(self, prefix=None):
        self.tmp = tempfile.mkdtemp(prefix="hg-ops-install-")
        self.prefix = prefix or os.path.join(self.tmp, "prefix")

    def install(self, timeout=120):
        r = subprocess.run(["cmake", "--install", build_dir(), "--prefix", self.prefix],
                           capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("cmake --install failed:\n%s%s" % (
                r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")))
        return r.stdout.decode("utf-8", "replace")

    def files(self, root=None):
        root = root or self.prefix
        out = set()
        for d, _, fs in os.walk(root):
            for f in fs:
                out.add(os.path.relpath(os.path.join(d, f), root))
        return out

    def close(self):
        if os.environ.get("HG_KEEP_TMP"):
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
