#!/usr/bin/python3
"""A full disk (PROTOCOL.md sections 3 and 4; issue 3): hgd's state
directory on a small tmpfs that fills up. An upsert answers INTERNAL_ERROR
and changes nothing (the old row stays readable); escalations are not
acknowledged while they cannot be made durable (intake pauses: the broker
keeps them), intake resumes by itself when space returns, and nothing
accepted is lost — also when hgd is killed or stopped while paused.

Needs root (mount -t tmpfs); skipped cleanly where mounting is not allowed."""

import os
import signal
import time
import unittest

import faults
import hglib
from hglib import HgTestCase, new_agent

BIG_FIELDS = [{"key": "f%d" % i, "hint": "h" * 1000} for i in range(8)]  # a row > 8 KiB
BIG_SUMMARY = "s" * 6000  # an outbox record > 6 KiB: it always needs a new page


class TestDiskFull(HgTestCase):
    start_hgd = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.mnt = os.path.join(env.tmp, "statefs")
        why = faults.mount_tmpfs(cls.mnt, getattr(cls, "size", "1m"))
        if why:
            env.close()
            cls.env = None
            raise unittest.SkipTest("cannot mount a tmpfs here: %s" % why)
        try:
            env.hgd.state_dir = os.path.join(cls.mnt, "state")
            env.hgd.start()
            cls.pub = faults.Publisher(env).connect()
        except BaseException:
            env.close()
            faults.umount(cls.mnt)
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.env is not None:
            cls.pub.close()
            cls.env.hgd.stop()
            faults.umount(cls.mnt)
        super().tearDownClass()

    def fill(self):
        return faults.fill(self.mnt)

    def paused(self):
        return len(faults.log_events(self.env.hgd, "intake.paused", all_runs=True))

    def wait_paused(self, before):
        hglib.wait_until(lambda: self.paused() > before, 10, what="intake.paused in hgd's log")

    def delivered(self, path):
        return {r.header("X-HelpGenie-Event-Id") for r in self.rx.requests(path)}

    def escalate_big(self, agent):
        return self.pub.publish(agent, {"reason": "disk full", "summary": BIG_SUMMARY})

    def test_disk_full(self):
        env = self.env
        agent, path = new_agent(), self.path()
        row = env.upsert({"agentId": agent, "url": self.url(path)})
        first = self.escalate_big(agent)
        hglib.wait_until(lambda: first in self.delivered(path), 10, what="first delivery")

        # two accepted escalations in retry when the disk fills up
        retry = []
        for wait in (3, 4):  # both due while intake is paused
            a, p = new_agent(), self.path()
            env.upsert({"agentId": a, "url": self.url(p)})
            self.rx.program(p, [hglib.Response(503, headers={"Retry-After": str(wait)})])
            eid = self.escalate_big(a)
            hglib.wait_until(lambda: self.rx.requests(p), 5, what="first attempt")
            retry.append((eid, p))

        # -- full: upsert refused, nothing changed, old row readable
        filler = self.fill()
        r = env.request("upsert", {"agentId": agent, "url": self.url(self.path()),
                                   "custom_fields": BIG_FIELDS})
        self.assertError(r, "INTERNAL_ERROR")
        self.assertRegex(r.message, r"(?i)space", "the message says why: %r" % r.message)
        self.assertEqual(env.get(agent), row, "the old row stays readable and unchanged")

        # -- full: escalations not acknowledged, intake paused
        before = self.paused()
        held = [self.escalate_big(agent) for _ in range(3)]
        self.pub.wait_acked(held)  # the broker has them
        self.wait_paused(before)
        time.sleep(1.0)
        self.assertFalse(set(held) & self.delivered(path), "delivered while not durable")
        # the delivery engine goes on while intake waits for space
        for eid, p in retry:  # (the second attempt is answered 200)
            hglib.wait_until(lambda: len(self.rx.requests(p)) >= 2, 5,
                             what="a retry delivered while intake is paused")

        # -- space returns: intake resumes by itself, nothing lost
        os.unlink(filler)
        hglib.wait_until(lambda: set(held) <= self.delivered(path), 15,
                         what="held escalations delivered after space returned")
        self.assertTrue(faults.log_events(env.hgd, "intake.resumed"))
        new = env.upsert({"agentId": agent, "url": self.url(path), "custom_fields": BIG_FIELDS})
        self.assertEqual(env.get(agent), new)

        # -- full again, and hgd killed while paused: the message it held was
        # never acknowledged, so the broker delivers it to the next hgd
        filler = self.fill()
        before = self.paused()
        killed = [self.escalate_big(agent) for _ in range(2)]
        self.pub.wait_acked(killed)
        self.wait_paused(before)
        self.assertEqual(env.hgd.kill(), -signal.SIGKILL)
        # restarted while the disk is still full: the broker hands over the
        # held message before the SUBACK, and hgd must still say it is up
        # (event=ready, READY=1) while intake waits; it never did before
        before = self.paused()
        env.hgd.start()
        self.wait_paused(before)
        self.assertFalse(set(killed) & self.delivered(path), "delivered while not durable")
        os.unlink(filler)
        hglib.wait_until(lambda: set(killed) <= self.delivered(path), 15,
                         what="escalations held at SIGKILL delivered after restart")

        # -- full again, and SIGTERM while paused (status publishes due
        # meanwhile): exits at once, exit 0
        filler = self.fill()
        before = self.paused()
        stopped = [self.escalate_big(agent)]
        self.pub.wait_acked(stopped)
        self.wait_paused(before)
        time.sleep(2.5)
        self.assertTrue(env.hgd.running())
        t0 = time.monotonic()
        self.assertEqual(env.hgd.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, 5)
        os.unlink(filler)
        env.hgd.start()
        hglib.wait_until(lambda: set(stopped) <= self.delivered(path), 15,
                         what="escalation held at SIGTERM delivered after restart")

        # -- both files are intact: a clean restart finds no torn record
        self.assertEqual(env.hgd.restart(), 0)
        torn = faults.log_events(env.hgd, "journal.torn_tail", all_runs=False)
        self.assertEqual(torn, [], "a failed write left a fragment behind")
        self.assertEqual(env.get(agent), new)
        every = [first] + held + killed + stopped + [e for e, _ in retry]
        got = self.delivered(path).union(*(self.delivered(p) for _, p in retry))
        self.assertEqual(set(every) - got, set())
        print("\ndisk full: %d escalations, %d POSTs (duplicates allowed)"
              % (len(every), len(self.rx.requests(path))))


class TestDiskFullWithReserve(TestDiskFull):
    """The same on a 4 MiB tmpfs, where the outbox's 1 MiB zero-filled
    reserve (docs/STORAGE.md) fits: when the disk fills, escalations go on
    being accepted into the reserve, durable, and intake pauses only once
    it is used up; nothing accepted is lost, and the held ones arrive when
    space returns. (The 1 MiB tmpfs above never holds a reserve, so it tries
    the plain-append fallback only.)"""

    @classmethod
    def setUpClass(cls):
        cls.size = "4m"
        super().setUpClass()

    def test_disk_full(self):
        env = self.env
        agent, path = new_agent(), self.path()
        env.upsert({"agentId": agent, "url": self.url(path)})
        first = self.escalate_big(agent)
        hglib.wait_until(lambda: first in self.delivered(path), 10, what="first delivery")
        filler = self.fill()
        before = self.paused()
        sent = []
        for _ in range(400):  # 400 x 6 KiB is well past the 1 MiB reserve
            sent.append(self.escalate_big(agent))
            if len(sent) % 10 == 0 and self.paused() > before:
                break
        self.pub.wait_acked(sent)
        self.wait_paused(before)
        time.sleep(1.0)
        got = self.delivered(path)
        taken = [e for e in sent if e in got]
        self.assertGreater(len(taken), 50, "the reserve took escalations on a full disk")
        self.assertLess(len(taken), len(sent), "intake paused once the reserve was used")
        os.unlink(filler)
        hglib.wait_until(lambda: set(sent) <= self.delivered(path), 30,
                         what="held escalations delivered after space returned")
        self.assertEqual(env.hgd.restart(), 0)
        self.assertEqual(faults.log_events(env.hgd, "journal.torn_tail", all_runs=False), [])
        print("\ndisk full with a reserve: %d of %d taken into the reserve"
              % (len(taken), len(sent)))


if __name__ == "__main__":
    hglib.main()
