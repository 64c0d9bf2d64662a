#!/usr/bin/python3
"""Never lose an escalation across process deaths (PROTOCOL.md section 4;
issue 3): a receiver outage plus SIGKILL with 200 escalations in the outbox,
a loop of SIGKILLs at random moments while escalations flow, and a clean
stop with escalations published while hgd is down (persistent session).

"Acknowledged" means the publisher got its QoS 1 PUBACK from the broker;
every such eventId must reach the receiver with a 2xx answer. Duplicates are
allowed (same eventId), counted and printed."""

import random
import signal
import sys
import time

import faults
import hglib
from hglib import ISO_RE, ROOT, HgTestCase, Response, new_agent

# Long enough that nothing fails during an outage of a few seconds, short
# enough that deliveries resume quickly when the receiver returns.
# (hgd takes at most 64 steps: 40 x 0.3 s then 24 x 1 s, 36 s in all)
SCHEDULE = ",".join(["0.3"] * 40 + ["1"] * 24)


class TestCrash(HgTestCase):
    hgd_args = ("--retry-schedule", SCHEDULE, "--request-timeout", "2")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.out = faults.Outage(cls.env)
        cls.pub = faults.Publisher(cls.env).connect()

    @classmethod
    def tearDownClass(cls):
        cls.pub.close()
        cls.out.down()
        super().tearDownClass()

    def hook(self):
        agent, path = new_agent(), self.path()
        self.env.upsert({"agentId": agent, "url": self.out.url(path)})
        return agent, path

    def report_duplicates(self, what, delivered):
        dups = {e: n for e, n in delivered.items() if n > 1}
        sys.stdout.write("\n%s: %d eventIds delivered, %d delivered more than once%s\n"
                         % (what, len(delivered), len(dups),
                            "".join("\n  duplicate %s x%d" % (e, n)
                                    for e, n in sorted(dups.items()))))
        sys.stdout.flush()
        return dups

    def test_receiver_down_200_escalations_sigkill(self):
        env = self.env
        agent, path = self.hook()
        self.out.down()
        accepted0 = len(faults.log_events(env.hgd, "escalation.accepted"))
        eids = [self.pub.publish(agent, {"reason": "outage", "summary": "n%d" % i})
                for i in range(200)]
        self.pub.wait_acked(eids)
        # all 200 in hgd's outbox (not just queued at the broker), and being
        # retried against the dead receiver
        faults.wait_log(env.hgd, "escalation.accepted", accepted0 + 200, timeout=20,
                        all_runs=True)
        time.sleep(0.5)
        self.assertEqual(self.out.requests(path), [])
        self.assertEqual(env.hgd.kill(), -signal.SIGKILL)
        env.hgd.start()
        ready = faults.log_events(env.hgd, "starting", all_runs=False)[-1]
        self.assertGreaterEqual(int(ready["pending"]), 200, ready)
        time.sleep(0.5)
        self.out.up()
        missing = self.out.wait_delivered(eids, path, timeout=30)
        self.assertEqual(missing, [], "acknowledged escalations not delivered")
        self.report_duplicates("receiver outage + SIGKILL", self.out.delivered(path))

    def test_sigterm_leaves_a_slow_attempt_pending(self):
        """SIGTERM gives in-flight POSTs 5 s, then leaves them pending in
        the outbox: the next hgd delivers them."""
        env = self.env
        agent, path = self.hook()
        self.out.up()
        self.out.program(path, [Response(200, hang=9)])
        args = list(env.hgd.extra_args)
        env.hgd.extra_args = args + ["--request-timeout", "20"]
        try:
            self.assertEqual(env.hgd.restart(), 0)
            eid = self.pub.publish(agent, {"reason": "slow at stop"})
            hglib.wait_until(lambda: self.out.requests(path), 10, what="the slow attempt")
            t0 = time.monotonic()
            self.assertEqual(env.hgd.stop(signal.SIGTERM), 0)
            took = time.monotonic() - t0
            self.assertGreaterEqual(took, 4.5, "the grace period is 5 s")
            self.assertLess(took, 8, "the grace period is 5 s")
            ab = faults.log_events(env.hgd, "delivery.abandoned", all_runs=False)
            self.assertEqual([e.get("eventId") for e in ab], [eid])
        finally:
            env.hgd.extra_args = args
            env.hgd.start()
        hglib.wait_until(lambda: len(self.out.requests(path)) >= 2, 10,
                         what="the abandoned attempt made again by the next hgd")
        self.assertEqual({r.header("X-HelpGenie-Event-Id") for r in self.out.requests(path)},
                         {eid})
        # numbered on: the receiver saw attempt 1 (it was abandoned, not
        # unsent), so the next is 2 — it was 1 again (hostile testing)
        self.assertEqual([r.header("X-HelpGenie-Attempt") for r in self.out.requests(path)][:2],
                         ["1", "2"])

    def test_lost_puback_duplicates_keep_their_event_id(self):
        """hgd makes escalations durable and delivers them, but its PUBACKs
        never reach the broker (the connection is black-holed), and it dies:
        the broker hands the same messages to the next hgd, which delivers
        them again. Such duplicates carry the same eventId (section 4) —
        also when hgd made the eventId because the call node gave none."""
        env = self.env
        agent, path = self.hook()
        self.out.up()
        proxy = faults.Proxy(env.broker.port).start()
        args = list(env.hgd.extra_args)
        env.hgd.extra_args = args + ["--broker", proxy.uri]
        try:
            self.assertEqual(env.hgd.restart(), 0)
            proxy.blackhole()
            marks = ["CA-lost-puback-%d" % i for i in range(10)]
            for i, m in enumerate(marks):  # half without an eventId
                self.pub.publish(agent, {"callSid": m}, event_id=None if i % 2 else False)

            def by_mark():
                out = {}
                for r in self.out.requests(path):
                    out.setdefault(r.json()["callSid"], []).append(r.json()["eventId"])
                return out
            hglib.wait_until(lambda: set(marks) <= set(by_mark()), 10, what="first deliveries")
            env.hgd.kill()
            proxy.cut()
            proxy.heal()
            env.hgd.start()
            hglib.wait_until(lambda: all(len(by_mark().get(m, ())) >= 2 for m in marks), 15,
                             what="the redelivered escalations delivered again")
            got = by_mark()
            self.assertEqual({m: len(set(got[m])) for m in marks}, {m: 1 for m in marks},
                             "a duplicate with another eventId: %r" % got)
        finally:
            env.hgd.extra_args = args
            env.hgd.restart()
            proxy.close()

    def test_outbox_full_pauses_intake(self):
        """At outbox_limit hgd stops taking messages (the broker keeps them)
        and drops none; it takes them again as deliveries finish."""
        env = self.env
        agent, path = self.hook()
        self.out.down()
        args = list(env.hgd.extra_args)
        env.hgd.extra_args = args + ["--outbox-limit", "5"]
        try:
            self.assertEqual(env.hgd.restart(), 0)
            st = faults.status(env, lambda s: s.get("deliveries", {}).get("pending") == 0)
            self.assertEqual(st["deliveries"]["pending"], 0, st)
            paused = len(faults.log_events(env.hgd, "intake.paused", all_runs=False))
            eids = [self.pub.publish(agent, {"reason": "outbox full"}) for _ in range(20)]
            self.pub.wait_acked(eids)
            hglib.wait_until(lambda: len(faults.log_events(env.hgd, "intake.paused",
                                                           all_runs=False)) > paused, 10,
                             what="intake.paused")
            ev = faults.log_events(env.hgd, "intake.paused", all_runs=False)[-1]
            self.assertEqual(ev.get("reason"), "outbox full", ev)
            time.sleep(0.5)
            accepted = {e["eventId"] for e in faults.log_events(env.hgd, "escalation.accepted",
                                                                 all_runs=False)}
            self.assertEqual(len(accepted & set(eids)), 5, "only outbox_limit taken")
            self.out.up()
            missing = self.out.wait_delivered(eids, path, timeout=20)
            self.assertEqual(missing, [], "escalations lost at the outbox limit")
            self.assertTrue(faults.log_events(env.hgd, "intake.resumed", all_runs=False))
        finally:
            env.hgd.extra_args = args
            env.hgd.restart()

    def test_restart_with_pending_deliveries_that_end_at_once(self):
        """Resumed deliveries whose attempt ends at once (connection refused)
        publish their event while hgd is still starting: that used to
        crash hgd (SIGSEGV, the MQTT session did not exist yet)."""
        env = self.env
        agent = new_agent()
        env.upsert({"agentId": agent, "url": "https://127.0.0.1:%d/x" % hglib.free_port()})
        eids = [self.pub.publish(agent, {"reason": "refused"}) for _ in range(300)]
        self.pub.wait_acked(eids)
        hglib.wait_until(lambda: len([e for e in env.deliveries(agent)
                                      if e.get("state") == "retrying"]) >= 300, 10,
                         what="300 retrying events")
        for _ in range(5):
            env.hgd.kill()
            time.sleep(0.4)  # every retry is due at once after the start
            env.hgd.start()  # raises if hgd dies before it is ready
            time.sleep(0.3)
            self.assertTrue(env.hgd.running(), "hgd died after start:\n" + hglib.tail(env.hgd.log))
        self.assertOk(env.request("delete", {"agentId": agent}))

    def test_sigkill_loop_while_escalations_flow(self):
        env = self.env
        agent, path = self.hook()
        self.out.up()
        rnd = random.Random()
        seed = rnd.randrange(1 << 30)
        rnd.seed(seed)
        print("\nsigkill loop: seed %d" % seed)
        # Mostly 200, some 503 and slow answers, so that kills land before,
        # during and after attempts and retries.
        script = []
        for _ in range(20000):
            x = rnd.random()
            script.append(Response(503) if x < 0.15 else
                          Response(200, hang=0.2) if x < 0.25 else Response(200))
        self.out.program(path, script)
        stream = faults.Stream(self.pub, agent, rate=200, esc={"reason": "kill loop"})
        stream.start()
        kills = 0
        try:
            t_end = time.monotonic() + 60
            while kills < 24 and time.monotonic() < t_end:
                if rnd.random() < 0.3:
                    env.hgd.wait_ready()
                time.sleep(rnd.uniform(0.0, 0.8))
                self.assertIsNone(env.hgd.proc.poll(),
                                  "hgd exited by itself during the kill loop:\n"
                                  + hglib.tail(env.hgd.log))
                env.hgd.kill()
                kills += 1
                env.hgd.start(wait=False)
        finally:
            stream.stop()
        self.assertGreaterEqual(kills, 20)
        env.hgd.wait_ready()
        time.sleep(0.5)  # PUBACKs still on the way
        acked = self.pub.acked(agent)
        print("sigkill loop: %d kills, %d escalations published, %d acknowledged"
              % (kills, len(self.pub.published(agent)), len(acked)))
        self.assertGreater(len(acked), 500)
        missing = self.out.wait_delivered(acked, path, timeout=60)
        self.assertEqual(missing, [], "%d acknowledged escalations lost after %d SIGKILLs"
                         % (len(missing), kills))
        self.report_duplicates("sigkill loop", self.out.delivered(path))
        print("sigkill loop: %d outbox compactions, %d torn records dropped at start"
              % (len(faults.log_events(env.hgd, "outbox.compact")),
                 len(faults.log_events(env.hgd, "journal.torn_tail"))))
        # and nothing is left behind once all are delivered
        st = faults.status(env, lambda s: s.get("deliveries", {}).get("pending") == 0, 15)
        self.assertEqual(st["deliveries"]["pending"], 0, st)
        errs = [l for l in env.hgd.log_text().splitlines() if "corrupt" in l]
        self.assertEqual(errs, [])

    def test_clean_stop_then_escalations_while_down(self):
        env = self.env
        agent, path = self.hook()
        self.out.up()
        # the first ten are in retry (Retry-After 2) when hgd stops
        self.out.program(path, [Response(503, headers={"Retry-After": "2"})] * 10)
        before = [self.pub.publish(agent, {"reason": "before stop"}) for _ in range(10)]
        self.pub.wait_acked(before)
        hglib.wait_until(lambda: len(self.out.requests(path)) >= 10, 10, what="10 attempts")
        # and one in flight: the receiver holds it past the request timeout
        # (2 s here): the stop ends that attempt, then leaves it pending
        slow, slow_path = self.hook()
        self.out.program(slow_path, [Response(200, hang=8)])
        inflight = self.pub.publish(slow, {"reason": "in flight at stop"})
        hglib.wait_until(lambda: self.out.requests(slow_path), 10, what="the slow attempt")
        started_at = faults.status(env)["started_at"]
        t0 = time.monotonic()
        self.assertEqual(env.hgd.stop(signal.SIGTERM), 0, "exit code 0 on SIGTERM")
        self.assertLess(time.monotonic() - t0, 7.5, "in-flight attempts get a 5 s grace")
        ended = [e for e in faults.log_events(env.hgd, "delivery.attempt", all_runs=False)
                 + faults.log_events(env.hgd, "delivery.abandoned", all_runs=False)
                 if e.get("eventId") == inflight]
        self.assertTrue(ended, "the in-flight attempt was neither finished nor abandoned")
        st = env.client.retained("%s/status/%s" % (ROOT, env.instance))
        self.assertIsNotNone(st)
        st = st.json()
        self.assertIs(st.get("online"), False, st)
        self.assertRegex(st.get("timestamp", ""), ISO_RE, "a clean stop has a timestamp")
        self.assertEqual(st.get("started_at"), started_at)
        down = [self.pub.publish(agent, {"reason": "while down"}) for _ in range(50)]
        self.pub.wait_acked(down)
        time.sleep(0.3)
        env.hgd.start()
        missing = self.out.wait_delivered(before + down, path, timeout=20)
        self.assertEqual(missing, [], "escalations lost across a clean stop")
        hglib.wait_until(lambda: len(self.out.requests(slow_path)) >= 2, 10,
                         what="the abandoned attempt made again after the restart")
        self.assertEqual({r.header("X-HelpGenie-Event-Id") for r in self.out.requests(slow_path)},
                         {inflight})
        self.report_duplicates("clean stop", self.out.delivered(path))


if __name__ == "__main__":
    hglib.main()
