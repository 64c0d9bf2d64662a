#!/usr/bin/python3
"""hg_receiver.py — an HTTPS webhook receiver for hgd, and the signature checks.

One implementation serves two users:

* the integration tests import it (tests/integration/hglib.py): `Receiver`
  records every request (method, path, headers, raw body, time) and answers
  from a per-path programmable script (statuses, Retry-After, hangs, bodies);
  the functions below recompute the webhook signatures of PROTOCOL.md
  section 4 independently of the C code;
* scripts/demo.sh runs it as a program that prints each POST it receives with
  its headers and whether the signatures verify against a secret:

    hg_receiver.py --tls-dir DIR [--port N | --port-file F] [--secret S]
                   [--header NAME] [--sign-field KEY]...

  --tls-dir makes a throwaway CA and a server certificate for 127.0.0.1 and
  localhost there with the openssl CLI (unless they exist already); hgd must
  trust DIR/ca.pem (--webhook-cafile).

Only the Python standard library and the openssl CLI are used.
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

# --------------------------------------------------------------------------
# Signatures (PROTOCOL.md section 4)
# --------------------------------------------------------------------------


def _b(x):
    return x if isinstance(x, bytes) else str(x).encode("utf-8")


def hmac_hex(secret, message):
    """Lowercase hex HMAC-SHA256 with the secret's raw UTF-8 bytes as key."""
    return hmac.new(_b(secret), _b(message), hashlib.sha256).hexdigest()


class _RawNumber(str):
    """A JSON number kept as the exact text it had in the body."""


def _parse_keep_numbers(body):
    return json.loads(_b(body).decode("utf-8"), parse_int=_RawNumber,
                      parse_float=_RawNumber)


def _compact(v):
    """Compact JSON text of a value parsed by _parse_keep_numbers."""
    if isinstance(v, _RawNumber):
        return str(v)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _compact(x)
                              for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_compact(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def _flag_text(v):
    if v is None:
        return ""
    if isinstance(v, _RawNumber):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return _compact(v)


def normalise_fields(custom_fields):
    """custom_fields as the row has them: a list of {key, hint, useForSignature}."""
    out = []
    for f in custom_fields or []:
        if isinstance(f, str):
            f = {"key": f}
        out.append({"key": f["key"], "hint": f.get("hint"),
                    "useForSignature": bool(f.get("useForSignature", False))})
    return out


def signed_message(body, custom_fields=None):
    """The message hgd signs for this body: the body bytes, or the values of
    the flagged fields joined with '.' when any custom field has
    useForSignature (strings as is, numbers/booleans as JSON text, null as
    '', objects and arrays as compact JSON)."""
    flagged = [f["key"] for f in normalise_fields(custom_fields) if f["useForSignature"]]
    if not flagged:
        return _b(body)
    obj = _parse_keep_numbers(body)
    return ".".join(_flag_text(obj.get(k)) for k in flagged).encode("utf-8")


def webhook_signature(secret, body, custom_fields=None):
    return hmac_hex(secret, signed_message(body, custom_fields))


def stdwh_signature(secret, msg_id, ts, body):
    """Standard Webhooks: 'v1,' + base64 HMAC-SHA256(secret bytes, id.ts.body)."""
    mac = hmac.new(_b(secret), _b(msg_id) + b"." + _b(ts) + b"." + _b(body), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def verify(req, secret, header="X-HelpGenie-Signature", custom_fields=None):
    """Check a recorded request against a secret. Returns a dict:
    signature / stdwh: True, False, or None when the header is absent;
    expected_signature / expected_stdwh: what they should have been."""
    exp_sig = webhook_signature(secret, req.body, custom_fields)
    got_sig = req.header(header)
    out = {"expected_signature": exp_sig,
           "signature": None if got_sig is None else hmac.compare_digest(got_sig, exp_sig)}
    wid, wts, wsig = req.header("webhook-id"), req.header("webhook-timestamp"), \
        req.header("webhook-signature")
    exp_std = stdwh_signature(secret, wid or "", wts or "", req.body)
    out["expected_stdwh"] = exp_std
    if wsig is None:
        out["stdwh"] = None
    else:
        # A Standard Webhooks header may carry several space-separated signatures.
        out["stdwh"] = any(hmac.compare_digest(s, exp_std) for s in wsig.split(" "))
    return out


# --------------------------------------------------------------------------
# Throwaway CA and server certificate (openssl CLI)
# --------------------------------------------------------------------------


def make_test_ca(directory, names=("localhost",), ips=("127.0.0.1", "::1")):
    """Create DIR/ca.pem, DIR/server.pem, DIR/server.key (idempotent).
    Returns (ca, cert, key) paths."""
    os.makedirs(directory, exist_ok=True)
    ca, ca_key = os.path.join(directory, "ca.pem"), os.path.join(directory, "ca.key")
    crt, key = os.path.join(directory, "server.pem"), os.path.join(directory, "server.key")
    if all(os.path.exists(p) for p in (ca, crt, key)):
        return ca, crt, key
    csr, ext = os.path.join(directory, "server.csr"), os.path.join(directory, "server.ext")
    san = ",".join(["DNS:" + n for n in names] + ["IP:" + i for i in ips])
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=%s\n" % san)

    def run(*args):
        r = subprocess.run(["openssl"] + list(args), cwd=directory, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.strip()))

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=hgd test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-sha256", "-extfile", ext)
    os.chmod(key, 0o600)
    return ca, crt, key


# --------------------------------------------------------------------------
# The receiver
# --------------------------------------------------------------------------


class Request:
    """One recorded request."""

    def __init__(self, method, path, headers, body, t, client):
        self.method = method
        self.path = path
        self.headers = headers  # list of (name, value), as sent
        self.body = body        # bytes
        self.time = t           # time.time() when the body was read
        self.client = client

    def header(self, name):
        """Value of a header (case-insensitive), None when absent."""
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%s %s %d bytes>" % (self.method, self.path, len(self.body))


class Response:
    """One scripted answer: status, extra headers, body; hang (seconds) is a
    delay before answering; close=True drops the connection without answer;
    partial="headers" sends the status line and half a header, partial="body"
    the headers and part of the announced body, and then drops the
    connection (a receiver that dies mid-answer)."""

    def __init__(self, status=200, body="ok", headers=None, hang=0.0, close=False, partial=None):
        self.status, self.body, self.headers = status, body, dict(headers or {})
        self.hang, self.close, self.partial = hang, close, partial


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hg-receiver"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet; the owner prints what it wants
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        body = self._read_body()
        rx = self.server.owner
        req = Request(self.command, self.path, list(self.headers.items()), body, time.time(),
                      self.client_address)
        resp = rx._record(req)
        if resp.hang:
            rx._stopping.wait(resp.hang)
        if resp.close:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = _b(resp.body)
        if resp.partial:
            self.close_connection = True
            try:
                if resp.partial == "headers":
                    self.wfile.write(b"HTTP/1.1 %d OK\r\nX-Partial: " % resp.status)
                else:
                    self.send_response(resp.status)
                    self.send_header("Content-Length", str(len(data) + 1000))
                    self.end_headers()
                    self.wfile.write(data)
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, str(v))
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout tests)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        # TLS handshake here, on the per-connection thread, so that a slow or
        # broken client never blocks accept().
        try:
            request.settimeout(30)
            # headers and body are separate writes: without this, Nagle holds
            # the body for the client's delayed ACK (~40 ms per answer)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.owner.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            self.owner.tls_errors.append(repr(e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass


class Receiver:
    """Threaded HTTPS receiver. Scripts are per path (the part before '?'):
    program(path, [Response, …]) answers requests to that path in turn, then
    falls back to `default`. Every request is recorded."""

    def __init__(self, cert, key, host="127.0.0.1", port=0, on_request=None):
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_context.load_cert_chain(cert, key)
        self.default = Response()
        self.tls_errors = []
        self.on_request = on_request
        self._lock = threading.Condition()
        self._requests = []
        self._scripts = {}
        self._stopping = threading.Event()
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        srv_cls = type("_Server", (_Server,), {"address_family": fam})
        self._srv = srv_cls((host, port), _Handler)
        self._srv.owner = self
        self.host = host
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._srv.shutdown()
        self._srv.server_close()

    def url(self, path="/"):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "https://%s:%d%s" % (h, self.port, path)

    def program(self, path, responses):
        with self._lock:
            self._scripts[path] = list(responses)

    def _record(self, req):
        with self._lock:
            self._requests.append(req)
            script = self._scripts.get(req.path.split("?")[0])
            resp = script.pop(0) if script else self.default
            self._lock.notify_all()
        if self.on_request:
            self.on_request(req)
        return resp

    def requests(self, path=None):
        """Recorded requests, all or those to one path (without the query)."""
        with self._lock:
            return [r for r in self._requests
                    if path is None or r.path.split("?")[0] == path]

    def wait_for(self, path=None, count=1, timeout=10.0):
        """Wait until `count` requests to path were received; returns them
        (possibly fewer, on timeout)."""
        end = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._requests
                       if path is None or r.path.split("?")[0] == path]
                left = end - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._lock.wait(min(left, 0.2))


# --------------------------------------------------------------------------
# The demo program
# --------------------------------------------------------------------------


def _print_request(req, secret, header, sign_fields):
    lines = ["", "=== %s %s  (%d bytes)" % (req.method, req.path, len(req.body))]
    for k, v in req.headers:
        lines.append("  %s: %s" % (k, v))
    try:
        lines.append("  body: " + json.dumps(req.json(), ensure_ascii=False, indent=2)
                     .replace("\n", "\n  "))
    except ValueError:
        lines.append("  body (not JSON): %r" % req.body[:512])
    if secret is None:
        lines.append("RESULT: RECEIVED (no --secret given, signature not checked)")
    else:
        fields = [{"key": k, "useForSignature": True} for k in sign_fields]
        v = verify(req, secret, header, fields)
        for name, what, hdr in (("signature", "expected_signature", header),
                                ("stdwh", "expected_stdwh", "webhook-signature")):
            state = {True: "ok", False: "MISMATCH (expected %s)" % v[what],
                     None: "header missing"}[v[name]]
            lines.append("  check %s: %s" % (hdr, state))
        if v["signature"] and v["stdwh"]:
            lines.append("RESULT: VERIFIED (%s and webhook-signature match the secret)" % header)
        else:
            lines.append("RESULT: NOT VERIFIED")
    print("\n".join(lines), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="HTTPS receiver for hgd webhooks")
    ap.add_argument("--tls-dir", required=True,
                    help="where the throwaway CA and server certificate live (made if missing)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the port chosen here once listening")
    ap.add_argument("--secret", help="the webhook secret to verify signatures with")
    ap.add_argument("--header", default="X-HelpGenie-Signature",
                    help="the webhook's secret_header")
    ap.add_argument("--sign-field", action="append", default=[],
                    help="a custom field flagged useForSignature, in field order (repeat)")
    ap.add_argument("--status", type=int, default=200, help="status to answer with")
    a = ap.parse_args(argv)

    ca, crt, key = make_test_ca(a.tls_dir)
    rx = Receiver(crt, key, host=a.host, port=a.port,
                  on_request=lambda r: _print_request(r, a.secret, a.header, a.sign_field))
    rx.default = Response(status=a.status, body="ok")
    rx.start()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % rx.port)
        os.replace(tmp, a.port_file)
    print("hg_receiver: listening on %s (CA %s)" % (rx.url("/"), ca), flush=True)
    stop = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    rx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
