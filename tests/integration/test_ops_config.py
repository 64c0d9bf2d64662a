#!/usr/bin/python3
"""Configuration (issue 4, PROTOCOL.md section 9, docs/OPERATIONS.md
"Configuration"): every flag is a config-file key and both are documented
with their defaults; `hgd --check-config` exits 0 or 1 with every problem
named by file and line; unknown keys are errors; the sample config is valid
and says the same defaults as the documentation."""

import os
import re
import unittest

import hglib
import opslib

REPO = hglib.REPO
OPS_MD = os.path.join(REPO, "docs", "OPERATIONS.md")
EXAMPLE = os.path.join(REPO, "systemd", "hgd.conf.example")
CLI_ONLY = {"check-config", "version", "help"}

# A valid value for every file key (a new option needs one here, in
# OPERATIONS.md and in systemd/hgd.conf.example).
SAMPLES = {
    "broker": "mqtts://broker.example:8883", "username": "hgd", "password": "pw",
    "cafile": "/etc/ssl/certs/ca-certificates.crt", "cert": None,
    "key": None, "state_dir": "/nonexistent/hgd-state", "keys": None,
    "instance": "hgd-1", "topic_root": "site/hg", "allow_http": "true",
    "allow_net": "10.0.0.0/8", "webhook_cafile": "/etc/ssl/certs/ca-certificates.crt",
    "retry_schedule": "1,2.5,10", "status_interval": "2.5", "log_level": "debug",
    "session_expiry": "3600", "max_payload": "2048", "outbox_limit": "10",
    "connect_timeout": "2", "request_timeout": "4",
}


def help_options():
    rc, out, err = opslib.run_hgd(["--help"])
    assert rc == 0, err
    return re.findall(r"^\s+(?:-c, )?--([a-z][a-z-]*)", out, re.M)


class TestConfig(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="hg-ops-config-")
        cls.keys = os.path.join(cls.tmp, "keys.json")
        fd = os.open(cls.keys, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b'{"keys":[{"id":"ops","secret":"hgk_00112233445566778899aabbccddeeff",'
                     b'"agents":["*"],"actions":["get"]}]}')
        os.close(fd)
        # --check-config wants the TLS files readable; content is not checked
        cls.files = {}
        for k in ("cafile", "cert", "key"):
            cls.files[k] = os.path.join(cls.tmp, k + ".pem")
            with open(cls.files[k], "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\n")
        SAMPLES["cert"], SAMPLES["key"] = cls.files["cert"], cls.files["key"]

    @classmethod
    def tearDownClass(cls):
        import shutil
        if not os.environ.get("HG_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def check(self, path, *extra):
        return opslib.run_hgd(["-c", path, "--keys", self.keys, "--check-config"] + list(extra))

    def assertBad(self, text, want, name="bad.conf"):
        """--check-config exits 1 and stderr holds every (line, fragment)."""
        p = self.write(name, text)
        rc, out, err = self.check(p)
        self.assertEqual(rc, 1, "exit status for a bad file:\n" + out + err)
        for line, frag in want:
            self.assertRegex(err, r"%s:%d: .*%s" % (re.escape(p), line, re.escape(frag)),
                             "line %d (%s) not reported" % (line, frag))
        self.assertNotIn("configuration OK", out)
        return err

    # ------------------------------------------------------------------
    def test_good_file_exit_0_without_broker_or_state(self):
        p = self.write("good.conf", "# comment\n\nbroker = mqtt://127.0.0.1:%d\n"
                       "state_dir = %s\nlog_level = warn  # trailing comment\n"
                       % (hglib.free_port(), os.path.join(self.tmp, "no-state")))
        rc, out, err = self.check(p)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("configuration OK", out)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "no-state")),
                         "--check-config created the state directory")

    def test_unknown_key_names_file_and_line(self):
        err = self.assertBad("# hgd\nbroker = mqtt://localhost:1883\n\nstauts_interval = 5\n",
                             [(4, "unknown key 'stauts_interval'")])
        self.assertEqual(len([l for l in err.splitlines() if "bad.conf:" in l]), 1)

    def test_every_error_reported_with_its_line(self):
        self.assertBad("broker = mqtt://localhost:1883\n"
                       "status_interval = soon\n"
                       "# fine\n"
                       "log_level\n"
                       "log_level = loud\n"
                       "frobnicate = 1\n"
                       "retry_schedule = 1,,2\n",
                       [(2, "status-interval must be"), (4, "expected 'key = value'"),
                        (5, "log-level must be"), (6, "unknown key 'frobnicate'"),
                        (7, "retry-schedule must be")])

    def test_flag_spelling_and_cli_only_are_not_keys(self):
        self.assertBad("state-dir = /var/lib/hgd\n", [(1, "unknown key 'state-dir'")])
        self.assertBad("check_config = true\nversion = true\nhelp = true\nconfig = x\n",
                       [(1, "unknown key 'check_config'"), (2, "unknown key 'version'"),
                        (3, "unknown key 'help'"), (4, "unknown key 'config'")])

    def test_bad_flags_exit_1(self):
        p = self.write("empty.conf", "")
        for extra in (["--frobnicate"], ["--status-interval", "0.01"], ["--log-level", "x"],
                      ["--max-payload", "10"], ["--broker", "http://x:1"],
                      ["--topic-root", "a/#"], ["--instance", "a/b"]):
            with self.subTest(extra):
                rc, out, err = self.check(p, *extra)
                self.assertEqual(rc, 1, out + err)
                self.assertTrue(err.startswith("hgd: "), err)

    def test_unreadable_tls_files_exit_1(self):
        """A mistyped CA, certificate or key path is a configuration error,
        not a TLS failure at the first connection."""
        p = self.write("ok.conf", "")
        for flag in ("--cafile", "--cert", "--key", "--webhook-cafile"):
            with self.subTest(flag):
                missing = os.path.join(self.tmp, "missing%s.pem" % flag)
                rc, out, err = self.check(p, flag, missing)
                self.assertEqual(rc, 1, out + err)
                self.assertIn(missing, err)
        bad = self.write("tls.conf", "cafile = %s\n" % os.path.join(self.tmp, "nope-ca.pem"))
        rc, out, err = self.check(bad)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("nope-ca.pem", err)

    def test_missing_files_exit_1(self):
        rc, _, err = opslib.run_hgd(["-c", os.path.join(self.tmp, "nope.conf"), "--check-config"])
        self.assertEqual(rc, 1)
        self.assertIn("nope.conf", err)
        p = self.write("ok.conf", "")
        rc, _, err = opslib.run_hgd(["-c", p, "--keys", os.path.join(self.tmp, "nokeys.json"),
                                     "--check-config"])
        self.assertEqual(rc, 1)
        self.assertIn("nokeys.json", err)

    def test_every_flag_is_a_file_key(self):
        opts = [o for o in help_options() if o not in CLI_ONLY and o != "config"]
        keys = {o.replace("-", "_") for o in opts}
        self.assertEqual(keys, set(SAMPLES), "options of hgd --help vs. the keys tested here")
        for k, v in SAMPLES.items():
            if v is None:
                continue
            with self.subTest(k):
                rc, out, err = self.check(self.write("one.conf", "%s = %s\n" % (k, v)))
                self.assertEqual(rc, 0, "%s = %s refused:\n%s" % (k, v, err))

    def documented_defaults(self):
        """{key: (flag, default)} from the table in OPERATIONS.md."""
        rows = {}
        with open(OPS_MD) as f:
            for line in f:
                m = re.match(r"\| `([a-z_]+)` \| `--([a-z-]+)` \| ([^|]+) \|", line)
                if m:
                    rows[m.group(1)] = (m.group(2), m.group(3).strip())
        return rows

    def test_every_key_documented_with_default(self):
        rows = self.documented_defaults()
        opts = [o for o in help_options() if o not in CLI_ONLY and o != "config"]
        for o in opts:
            k = o.replace("-", "_")
            with self.subTest(k):
                self.assertIn(k, rows, "%s missing from the table in docs/OPERATIONS.md" % k)
                self.assertEqual(rows[k][0], o)
                self.assertTrue(rows[k][1], "no default given for %s" % k)
        self.assertEqual(set(rows), {o.replace("-", "_") for o in opts},
                         "OPERATIONS.md documents keys hgd does not have")
        with open(os.path.join(REPO, "docs", "man", "hgd.8")) as f:
            man = f.read().replace("\\-", "-")
        for o in opts:
            self.assertIn("--" + o, man, "hgd(8) lacks --%s" % o)

    def test_sample_config(self):
        """Every key is in the sample (set or commented out); the sample,
        with every commented key switched on, is valid; where it sets a
        value, that is the documented default."""
        with open(EXAMPLE) as f:
            text = f.read()
        rows = self.documented_defaults()
        set_lines, all_keys, enabled = {}, set(), []
        for line in text.splitlines():
            m = re.match(r"^(#\s*)?([a-z_]+)\s*=\s*(.*)$", line)
            if not m or m.group(2) not in rows:
                enabled.append(line)
                continue
            all_keys.add(m.group(2))
            if not m.group(1):
                set_lines[m.group(2)] = m.group(3).strip()
            value = m.group(3)
            if m.group(1) and m.group(2) in self.files:  # example paths: use real files
                value = self.files[m.group(2)]
            enabled.append("%s = %s" % (m.group(2), value))
        self.assertEqual(all_keys, set(rows), "keys in hgd.conf.example vs OPERATIONS.md")
        for k, v in set_lines.items():
            with self.subTest(k):
                self.assertEqual(rows[k][1].strip("`"), v,
                                 "sample value of %s differs from the documented default" % k)
        rc, out, err = self.check(self.write("sample.conf", "\n".join(enabled) + "\n"))
        self.assertEqual(rc, 0, "the sample with every key on:\n" + err)
        rc, out, err = self.check(EXAMPLE)
        self.assertEqual(rc, 0, "the sample as shipped:\n" + err)


if __name__ == "__main__":
    hglib.main()
