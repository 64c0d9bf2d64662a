"""seclib — helpers for the security tests (test_egress*.py, test_tls*.py,
test_security*.py), on top of hglib.

  * SecHgd: an hgd of an Env with its own egress allow-list (none by default),
    its own broker URI / TLS options / topic root / state dir / environment;
  * TcpCounter: a plain TCP listener on 127.0.0.1 and ::1 (same port) that
    only counts the connections it accepts, to prove that nothing reached it;
  * resolver_shim(): an LD_PRELOAD library overriding getaddrinfo so that
    chosen host names resolve to chosen (blocked) addresses without touching
    /etc/hosts;
  * make_client_cert(), make_self_signed(), make_server_cert(): throwaway
    certificates with the openssl CLI;
  * TlsBroker: mosquitto with a plain listener (for the test client) and TLS
    listeners (server auth only, and client certificate required);
  * file_digest(): sha256 of a file, for byte-for-byte comparisons.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import threading

import hglib


# --------------------------------------------------------------------------
# hgd with its own options
# --------------------------------------------------------------------------


class SecHgd(hglib.Hgd):
    """An hgd of env whose command line the test controls.

    allow_net: the --allow-net CIDRs (default none: the bare egress policy).
    broker: the broker URI (default the env's plain broker).
    webhook_cafile: the --webhook-cafile (default the env's test CA; False for
    none, so hgd uses the system bundle). environ: extra environment.
    umask: the process umask (e.g. 0 to show files are created 0600 anyway)."""

    def __init__(self, env, instance, extra_args=(), allow_net=(), broker=None,
                 webhook_cafile=None, environ=None, state_dir=None, umask=None,
                 log_level="debug"):
        super().__init__(env, instance, extra_args, state_dir=state_dir)
        self.allow_net = list(allow_net)
        self.broker = broker
        self.webhook_cafile = env.ca if webhook_cafile is None else webhook_cafile
        self.environ = dict(environ or {})
        self.umask = umask
        self.log_level = log_level

    def argv(self):
        e = self.env
        a = [hglib.binary("hgd"), "--broker", self.broker or e.broker.uri,
             "--state-dir", self.state_dir, "--keys", e.keys_path, "--instance", self.instance,
             "--status-interval", "1", "--log-level", self.log_level,
             "--retry-schedule", "0.5,1"]
        for cidr in self.allow_net:
            a += ["--allow-net", cidr]
        if self.webhook_cafile:
            a += ["--webhook-cafile", self.webhook_cafile]
        return a + self.extra_args

    def start(self, wait=True):
        self.starts += 1
        path = os.path.join(self.env.tmp, "hgd-%s.%d.log" % (self.instance, self.starts))
        self.logs.append(path)
        env = dict(os.environ)
        env.update(self.environ)
        umask = self.umask

        def pre():
            hglib._die_with_parent()
            if umask is not None:
                os.umask(umask)
        log = open(path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, preexec_fn=pre)
        finally:
            log.close()
        hglib._procs.append(self.proc)
        if wait:
            self.wait_ready()
        return self


# --------------------------------------------------------------------------
# a listener that only counts connections
# --------------------------------------------------------------------------


class TcpCounter:
    """Accepts TCP connections on 127.0.0.1:port and [::1]:port, counts and
    closes them. The egress tests point blocked URLs at this port: any
    connection at all is a failure of the guard."""

    def __init__(self):
        self.count = 0
        self.peers = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks = []
        for _ in range(50):
            s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s6.bind(("::1", port))
            except OSError:
                s4.close()
                continue
            self._socks = [s4, s6]
            self.port = port
            break
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")
        self._threads = []
        for s in self._socks:
            s.listen(64)
            s.settimeout(0.1)
            t = threading.Thread(target=self._loop, args=(s,), daemon=True)
            t.start()
            self._threads.append(t)

    def _loop(self, s):
        while not self._stop.is_set():
            try:
                c, peer = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.count += 1
                self.peers.append(peer)
            c.close()

    def close(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for s in self._socks:
            s.close()


# --------------------------------------------------------------------------
# getaddrinfo shim
# --------------------------------------------------------------------------

_SHIM_SRC = r"""
/* LD_PRELOAD shim for the egress tests: names listed in $HG_TEST_HOSTS
 * ("name=addr,name=addr") resolve to addr; names ending in a suffix listed
 * as "*.suffix=addr" too; everything else goes to the real getaddrinfo. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static int match(const char *node, char *addr, size_t addrsz)
{
  const char *spec = getenv("HG_TEST_HOSTS");
  if (!spec || !node)
    return 0;
  char *copy = strdup(spec), *save = NULL;
  int found = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq)
      continue;
    *eq = '\0';
    size_t nl = strlen(node), tl = strlen(tok);
    if (strcasecmp(tok, node) == 0 ||
        (tok[0] == '*' && nl >= tl - 1 && strcasecmp(node + nl - (tl - 1), tok + 1) == 0)) {
      strncpy(addr, eq + 1, addrsz - 1);
      addr[addrsz - 1] = '\0';
      found = 1;
      break;
    }
  }
  free(copy);
  return found;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
  static gai_fn real;
  char addr[64];
  if (!real)
    real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  if (match(node, addr, sizeof addr)) {
    struct addrinfo h;
    if (hints)
      h = *hints;
    else
      memset(&h, 0, sizeof h);
    h.ai_flags |= AI_NUMERICHOST;
    h.ai_family = AF_UNSPEC;
    return real(addr, service, &h, res);
  }
  return real(node, service, hints, res);
}
"""


def resolver_shim(directory):
    """Build the getaddrinfo shim into directory; its path, or None when no C
    compiler is available."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return None
    src = os.path.join(directory, "hgtest_resolver.c")
    lib = os.path.join(directory, "hgtest_resolver.so")
    with open(src, "w") as f:
        f.write(_SHIM_SRC)
    r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", lib, src, "-ldl"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return None
    return lib


def preload_env(shim, hosts):
    """Environment for a process that should resolve hosts ({name: addr})
    through the shim. An ASan build must be told that a preloaded library
    comes before its runtime."""
    env = {"LD_PRELOAD": shim, "HG_TEST_HOSTS": ",".join("%s=%s" % kv for kv in hosts.items())}
    opts = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "verify_asan_link_order=0"
    return env


# --------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------


def _openssl(directory, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=directory, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.strip()))


def _signed_cert(ca_dir, name, subject, ext_lines):
    """A key and a certificate signed by the CA of make_test_ca(ca_dir)."""
    ca, ca_key = os.path.join(ca_dir, "ca.pem"), os.path.join(ca_dir, "ca.key")
    key, crt = os.path.join(ca_dir, name + ".key"), os.path.join(ca_dir, name + ".pem")
    csr, ext = os.path.join(ca_dir, name + ".csr"), os.path.join(ca_dir, name + ".ext")
    with open(ext, "w") as f:
        f.write("\n".join(ext_lines) + "\n")
    _openssl(ca_dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", subject)
    _openssl(ca_dir, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-sha256", "-extfile", ext)
    os.chmod(key, 0o600)
    return crt, key


def make_client_cert(ca_dir, cn="hgd-client"):
    """A client certificate (extendedKeyUsage clientAuth) from the test CA."""
    return _signed_cert(ca_dir, "client-" + cn, "/CN=" + cn,
                        ["basicConstraints=critical,CA:FALSE",
                         "keyUsage=critical,digitalSignature",
                         "extendedKeyUsage=clientAuth"])


def make_server_cert(ca_dir, name, dns=(), ips=()):
    """A server certificate from the test CA with exactly these SANs."""
    san = ",".join(["DNS:" + n for n in dns] + ["IP:" + i for i in ips])
    return _signed_cert(ca_dir, "server-" + name, "/CN=" + (dns[0] if dns else name),
                        ["basicConstraints=critical,CA:FALSE",
                         "keyUsage=critical,digitalSignature,keyEncipherment",
                         "extendedKeyUsage=serverAuth", "subjectAltName=" + san])


def make_self_signed(directory, dns=("localhost",), ips=("127.0.0.1", "::1")):
    """A self-signed server certificate (no CA) with the usual SANs."""
    os.makedirs(directory, exist_ok=True)
    key, crt = os.path.join(directory, "self.key"), os.path.join(directory, "self.pem")
    san = ",".join(["DNS:" + n for n in dns] + ["IP:" + i for i in ips])
    _openssl(directory, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
             "-subj", "/CN=%s" % (dns[0] if dns else "self"), "-addext", "subjectAltName=" + san)
    os.chmod(key, 0o600)
    return crt, key


# --------------------------------------------------------------------------
# mosquitto on TLS
# --------------------------------------------------------------------------


def localhost_addrs():
    """What "localhost" resolves to here. A minimal Debian root has no
    /etc/hosts: there the name may go to DNS and come back as ::1 alone, or
    not at all."""
    try:
        return sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", None,
                                                              proto=socket.IPPROTO_TCP)})
    except socket.gaierror:
        return []


class TlsBroker:
    """mosquitto with three listeners on 127.0.0.1: plain (for the test's own
    client), TLS with server authentication, and TLS requiring a client
    certificate from the CA. The shipped snippet is appended as in hglib."""

    def __init__(self, workdir, ca, cert, key):
        self.workdir = workdir
        self.ca, self.cert, self.key = ca, cert, key
        self.port = hglib.free_port()
        self.tls_port = hglib.free_port()
        self.mtls_port = hglib.free_port()
        self.conf = os.path.join(workdir, "mosquitto-tls.conf")
        self.log = os.path.join(workdir, "mosquitto-tls.log")
        self.proc = None

    def start(self, timeout=10.0):
        with open(hglib.SNIPPET) as f:
            snippet = f.read()
        with open(self.conf, "w") as f:
            # Run as root, mosquitto drops to the "mosquitto" user before it
            # reads the TLS files, which live in a 0700 temp dir: keep root.
            if os.geteuid() == 0:
                f.write("user root\n")
            f.write("# written by tests/integration/seclib.py\n"
                    "allow_anonymous true\npersistence false\nlog_dest stderr\n"
                    "log_type all\nconnection_messages true\n"
                    "listener %d 127.0.0.1\n\n"
                    "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
                    "require_certificate false\n\n"
                    "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
                    "require_certificate true\nuse_identity_as_username true\n\n"
                    % (self.port, self.tls_port, self.ca, self.cert, self.key,
                       self.mtls_port, self.ca, self.cert, self.key))
            # mqtts://localhost:<tls_port> must reach the TLS listener
            # whatever localhost resolves to.
            for addr in localhost_addrs():
                if addr != "127.0.0.1":
                    f.write("listener %d %s\ncafile %s\ncertfile %s\nkeyfile %s\n"
                            "require_certificate false\n\n"
                            % (self.tls_port, addr, self.ca, self.cert, self.key))
            f.write("# systemd/mosquitto-hgd.conf\n%s\n" % snippet)
        self.proc = hglib.spawn(["mosquitto", "-c", self.conf], self.log)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s:\n%s"
                                   % (self.proc.returncode, hglib.tail(self.log)))
            for p in (self.port, self.tls_port, self.mtls_port):
                try:
                    socket.create_connection(("127.0.0.1", p), 0.2).close()
                except OSError:
                    return False
            return True
        hglib.wait_until(up, timeout, what="TLS mosquitto")
        return self

    def stop(self):
        if self.proc:
            hglib.stop_process(self.proc)
            self.proc = None


def file_digest(path):
    """sha256 hex of a file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None
