#!/usr/bin/python3
"""Man pages, help texts, bash completion and the log-event catalogue agree
(issue 4): every option of `hgd --help` is in hgd(8) and back; every option of
`hgctl [command] --help` is in hgctl(1), in the section of its command, and
every option hgctl(1) documents is in some help text; the pages format
without warnings; the completion offers what the help lists; every event
name in the daemon's sources is documented in docs/OPERATIONS.md."""

import glob
import os
import re
import shutil
import subprocess
import unittest

import hglib

REPO = hglib.REPO
MAN = os.path.join(REPO, "docs", "man")
COMPLETION = os.path.join(REPO, "cli", "completion", "hgctl.bash")
OPTION_RE = re.compile(r"(?<![\w-])(--[a-z][a-z-]*[a-z]|-[a-zA-Z])(?![\w-])")

HGCTL_COMMANDS = {
    "": None, "webhook get": "webhook get", "webhook set": "webhook set",
    "webhook delete": "webhook delete", "webhook test": "webhook test",
    "escalate": "escalate", "status": "status", "keygen": "keygen",
}


def roff_text(page):
    with open(os.path.join(MAN, page)) as f:
        t = f.read()
    return t.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "").replace("\\fI", "")


def options(text):
    return set(OPTION_RE.findall(text))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout, r.stderr


def man_sections(text):
    """{heading: text} of a roff page (.SH)."""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith(".SH "):
            cur = line[4:].strip().strip('"')
            out[cur] = ""
        elif cur:
            out[cur] += line + "\n"
    return out


def hgctl_command_block(text, cmd):
    """The .TP block of one command in hgctl(1)'s COMMANDS section, with its
    .RS/.RE option list."""
    sec = man_sections(text)["COMMANDS"]
    parts = re.split(r"\n\.TP\n", "\n" + sec)
    for i, p in enumerate(parts):
        head = p.splitlines()[0] if p.strip() else ""
        words = re.sub(r"\.(BI|B|BR|IR|RB) ?", "", head).replace('"', "").split()
        if " ".join(words[:len(cmd.split())]) == cmd:
            block = p
            if ".RS" in p and ".RE" not in p:
                j = i + 1
                while j < len(parts) and ".RE" not in block:
                    block += "\n.TP\n" + parts[j]
                    j += 1
            return block
    return None


class TestDocs(unittest.TestCase):

    def test_hgd_help_matches_man(self):
        rc, out, _ = run([hglib.binary("hgd"), "--help"])
        self.assertEqual(rc, 0)
        help_opts = options(out)
        man = roff_text("hgd.8")
        man_opts = options(man_sections(man)["OPTIONS"]) | options(man_sections(man)["SYNOPSIS"])
        self.assertEqual(help_opts - man_opts, set(), "in hgd --help, not in hgd(8)")
        self.assertEqual(man_opts - help_opts, set(), "in hgd(8) OPTIONS, not in hgd --help")

    def test_hgctl_help_matches_man(self):
        man = roff_text("hgctl.1")
        secs = man_sections(man)
        global_man = options(secs["GLOBAL OPTIONS"])
        all_help = set()
        for cmd in HGCTL_COMMANDS:
            with self.subTest(cmd or "(global)"):
                rc, out, err = run([hglib.binary("hgctl")] + cmd.split() + ["--help"])
                self.assertEqual(rc, 0, err)
                # the help's global section, and the command's own part
                own, _, glob_part = out.partition("Global options")
                all_help |= options(out)
                self.assertEqual(options(glob_part) - global_man, set(),
                                 "global options of --help missing in GLOBAL OPTIONS")
                if not cmd:
                    continue
                block = hgctl_command_block(man, cmd)
                self.assertIsNotNone(block, "hgctl(1) has no entry for %s" % cmd)
                own_opts = options(own) - {"--help"}
                self.assertEqual(own_opts - options(block) - global_man, set(),
                                 "options of '%s --help' missing in its hgctl(1) entry" % cmd)
                self.assertEqual(options(block) - own_opts, set(),
                                 "hgctl(1) lists options for %s that its --help does not" % cmd)
                syn = options(secs["SYNOPSIS"])
                self.assertEqual(own_opts - global_man - syn, set(),
                                 "SYNOPSIS lacks options of " + cmd)
        self.assertEqual(options(man) - all_help, set(),
                         "hgctl(1) documents options no help text has")

    def test_pages_format_cleanly(self):
        if not shutil.which("man"):
            self.skipTest("man is not installed (Debian package man-db)")
        for page in ("hgd.8", "hgctl.1"):
            with self.subTest(page):
                r = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN, page)],
                                   capture_output=True, text=True, timeout=30,
                                   env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING=""))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr.strip(), "", "groff warnings for %s" % page)
                self.assertIn("NAME", r.stdout)

    def test_version_in_pages(self):
        rc, out, _ = run([hglib.binary("hgd"), "--version"])
        version = re.search(r"\d+\.\d+\.\d+", out).group(0)
        for page in ("hgd.8", "hgctl.1"):
            with open(os.path.join(MAN, page)) as f:
                th = [l for l in f if l.startswith(".TH ")][0]
            self.assertIn("hgd %s" % version, th, "%s .TH names another version" % page)

    # ------------------------------------------------------------ completion
    def complete(self, line):
        """What the completion offers for the command line typed so far."""
        words = line.split(" ")
        script = ('source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\nCOMP_LINE=%s\nCOMP_POINT=%d\n'
                  '_hgctl\nprintf "%%s\\n" "${COMPREPLY[@]}"\n'
                  % (COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1,
                     "'%s'" % line, len(line)))
        r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return set(x for x in r.stdout.split("\n") if x)

    def test_completion(self):
        self.assertEqual(self.complete("hgctl "), {"webhook", "escalate", "status", "keygen",
                                                   "help"})
        self.assertEqual(self.complete("hgctl webhook "), {"get", "set", "delete", "test"})
        self.assertEqual(self.complete("hgctl -h broker1 webhook "),
                         {"get", "set", "delete", "test"})
        self.assertEqual(self.complete("hgctl status --w"), {"--watch"})
        self.assertLessEqual({"--field", "--field-json"}, self.complete("hgctl escalate X --fi"))
        self.assertIn("--key-file", self.complete("hgctl --key"))
        self.assertEqual(self.complete("hgctl keygen --action g"), {"get"})

    def test_completion_knows_every_option(self):
        for cmd in HGCTL_COMMANDS:
            with self.subTest(cmd or "(global)"):
                rc, out, _ = run([hglib.binary("hgctl")] + cmd.split() + ["--help"])
                if not cmd:  # the overview: only its global options apply here
                    out = out.partition("Global options")[2]
                want = {o for o in options(out) if o.startswith("--")}
                line = "hgctl %s%s--" % (cmd, " X " if cmd.startswith(("webhook", "escalate"))
                                          else " " if cmd else "")
                got = self.complete(line)
                self.assertEqual(want - got, set(), "completion of %r lacks options" % line)

    # ------------------------------------------------------------ log events
    def test_every_log_event_documented(self):
        src = ""
        for f in glob.glob(os.path.join(REPO, "daemon", "*.c")):
            with open(f) as fh:
                src += fh.read()
        names = set(re.findall(r'log_event\(\s*[A-Z_?: ]+,\s*"([a-z][a-z0-9_.]*)"', src))
        # the ternary level form: log_event(cond ? A : B, "name", ...)
        names |= set(re.findall(r'LOG_LVL_\w+,\s*"([a-z][a-z0-9_.]*)"', src))
        self.assertIn("delivery.attempt", names)
        with open(os.path.join(REPO, "docs", "OPERATIONS.md")) as f:
            doc = f.read()
        table = set(re.findall(r"^\| `([a-z][a-z0-9_.]*)`(?:, `([a-z][a-z0-9_.]*)`)? \|", doc,
                               re.M))
        documented = {n for pair in table for n in pair if n}
        self.assertEqual(names - documented, set(),
                         "log events missing from the Events table of docs/OPERATIONS.md")


if __name__ == "__main__":
    hglib.main()
