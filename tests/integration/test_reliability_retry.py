#!/usr/bin/python3
"""Retries (PROTOCOL.md sections 4, 6, 7; issue 3): the retry and no-retry
status classes, Retry-After, timeouts, re-signing of every attempt with the
webhook's current URL and secret, deleted or inactive webhooks ending pending
deliveries as `skipped`, and the status counters.

hgd runs with --retry-schedule 0.2,0.2,0.5 (four attempts at most) and
--request-timeout 1, so every test is over in a few seconds."""

import time
import uuid

import faults
import hglib
from hglib import HgTestCase, Response, new_agent, verify

SCHEDULE = ("--retry-schedule", "0.2,0.2,0.5", "--request-timeout", "1")


def ra(status, seconds):
    return Response(status, headers={"Retry-After": str(seconds)})


class RetryCase(HgTestCase):
    hgd_args = SCHEDULE

    def hook(self, responses=(), secret=None, **row):
        agent, path = new_agent(), self.path()
        params = {"agentId": agent, "url": self.url(path)}
        if secret:
            params["secret"] = secret
        params.update(row)
        self.env.upsert(params)
        if responses:
            self.rx.program(path, list(responses))
        return agent, path

    def escalate(self, agent):
        eid = str(uuid.uuid4())
        self.env.escalate(agent, {"eventId": eid, "reason": "retry test"})
        return eid

    def final_event(self, agent, eid, timeout=10):
        ev = self.env.wait_delivery_event(
            agent, lambda e: e.get("eventId") == eid and e.get("state") != "retrying", timeout)
        self.assertIsNotNone(ev, "no final delivery event for %s" % eid)
        return ev

    def events(self, agent, eid):
        return [e for e in self.env.deliveries(agent) if e.get("eventId") == eid]

    def assertQuiet(self, path, count, secs=1.2):
        """No request beyond `count` to path within secs."""
        time.sleep(secs)
        self.assertEqual(len(self.rx.requests(path)), count,
                         "unexpected further attempts: %r" % self.rx.requests(path))


class TestRetries(RetryCase):

    def test_503_503_200_three_attempts_one_event_id(self):
        agent, path = self.hook([Response(503), Response(503), Response(200)])
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid)
        reqs = self.rx.wait_for(path, 3)
        self.assertEqual(len(reqs), 3)
        self.assertEqual([r.header("X-HelpGenie-Event-Id") for r in reqs], [eid] * 3)
        self.assertEqual([r.json()["eventId"] for r in reqs], [eid] * 3)
        self.assertEqual([r.header("X-HelpGenie-Attempt") for r in reqs], ["1", "2", "3"])
        self.assertEqual(reqs[0].body, reqs[1].body, "the body is the same on every retry")
        self.assertEqual(reqs[1].body, reqs[2].body)
        for a, b in zip(reqs, reqs[1:]):
            self.assertGreaterEqual(b.time - a.time, 0.2 * 0.8 - 0.02,
                                    "schedule step 0.2 s (-20% jitter)")
        self.assertEqual(ev["state"], "delivered")
        evs = self.events(agent, eid)
        self.assertEqual([(e["state"], e["attempt"], e.get("status")) for e in evs],
                         [("retrying", 1, 503), ("retrying", 2, 503), ("delivered", 3, 200)])
        for e in evs[:2]:
            self.assertRegex(e.get("next_attempt_at", ""), hglib.ISO_RE)
        self.assertNotIn("next_attempt_at", evs[2])
        self.assertQuiet(path, 3)

    def test_400_one_attempt_failed(self):
        agent, path = self.hook([Response(400, body="bad")])
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid)
        self.assertEqual((ev["state"], ev["attempt"], ev.get("status")), ("failed", 1, 400))
        self.assertEqual([e["state"] for e in self.events(agent, eid)], ["failed"])
        self.assertQuiet(path, 1)

    def test_302_failed_not_followed(self):
        agent, path = self.hook()
        target = self.path()
        self.rx.program(path, [Response(302, headers={"Location": self.url(target)})])
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid)
        self.assertEqual((ev["state"], ev["attempt"], ev.get("status")), ("failed", 1, 302))
        self.assertQuiet(path, 1)
        self.assertEqual(self.rx.requests(target), [], "redirect followed")

    def test_429_retry_after_one_second(self):
        agent, path = self.hook([ra(429, 1), Response(200)])
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid)
        self.assertEqual((ev["state"], ev["attempt"]), ("delivered", 2))
        reqs = self.rx.requests(path)
        self.assertEqual(len(reqs), 2)
        gap = reqs[1].time - reqs[0].time
        self.assertGreaterEqual(gap, 0.9, "Retry-After: 1 honoured (schedule says 0.2 s)")
        self.assertLess(gap, 2.5, "Retry-After: 1 waited far too long")
        first = self.events(agent, eid)[0]
        self.assertEqual((first["state"], first.get("status")), ("retrying", 429))

    def test_hanging_receiver_times_out_then_retry(self):
        agent, path = self.hook([Response(200, hang=4), Response(200)])
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid, timeout=8)
        self.assertEqual((ev["state"], ev["attempt"]), ("delivered", 2))
        first = self.events(agent, eid)[0]
        self.assertEqual(first["state"], "retrying")
        self.assertNotIn("status", first, "a timeout has no status")
        self.assertRegex(first.get("error", ""), r"(?i)time.?out|timed out")
        reqs = self.rx.requests(path)
        gap = reqs[1].time - reqs[0].time
        self.assertGreaterEqual(gap, 1.0, "request timeout is 1 s")
        self.assertLess(gap, 3.0, "the attempt was not cut at the request timeout")

    def test_incomplete_answer_retried(self):
        # A 200 status line and then no complete response (headers cut off,
        # or a body shorter than announced, then the connection dropped) is
        # no delivery: the receiver may never have taken it in. It counted
        # as delivered before (found by hostile testing).
        for partial in ("headers", "body"):
            with self.subTest(partial=partial):
                agent, path = self.hook([Response(200, partial=partial), Response(200)])
                eid = self.escalate(agent)
                ev = self.final_event(agent, eid)
                self.assertEqual((ev["state"], ev["attempt"]), ("delivered", 2))
                first = self.events(agent, eid)[0]
                self.assertEqual(first["state"], "retrying")
                self.assertNotIn("status", first, "an unfinished answer has no status")
                self.assertIn("after HTTP 200", first.get("error", ""))
                # the test action says so too, instead of status 200
                self.rx.program(path, [Response(200, partial=partial)])
                r = self.env.request("test", {"agentId": agent})
                self.assertOk(r)
                self.assertNotIn("status", r.data["result"])
                self.assertIn("after HTTP 200", r.data["result"].get("error", ""))

    def test_dropped_connection_retried(self):
        # Two drops: curl itself re-sends a request once when a reused
        # keep-alive connection dies before any answer (same attempt
        # number); the second drop, on a fresh connection, is hgd's error.
        agent, path = self.hook([Response(close=True), Response(close=True), Response(200)])
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid)
        self.assertEqual(ev["state"], "delivered")
        evs = self.events(agent, eid)
        self.assertGreaterEqual(len(evs), 2, evs)
        for e in evs[:-1]:
            self.assertEqual(e["state"], "retrying")
            self.assertNotIn("status", e)
            self.assertTrue(e.get("error"), e)
        reqs = self.rx.requests(path)
        print("dropped connection: attempts %r" % [r.header("X-HelpGenie-Attempt") for r in reqs])
        self.assertEqual(len(reqs), 3)

    def test_network_error_retried_until_schedule_ends(self):
        agent = new_agent()
        self.env.upsert({"agentId": agent,
                         "url": "https://127.0.0.1:%d/refused" % hglib.free_port()})
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid)
        evs = self.events(agent, eid)
        self.assertEqual([(e["state"], e["attempt"]) for e in evs],
                         [("retrying", 1), ("retrying", 2), ("retrying", 3), ("failed", 4)])
        for e in evs:
            self.assertNotIn("status", e)
            self.assertTrue(e.get("error"))

    def test_5xx_until_schedule_ends_then_failed(self):
        agent, path = self.hook([Response(503)] * 10)
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid)
        self.assertEqual((ev["state"], ev["attempt"], ev.get("status")), ("failed", 4, 503))
        self.assertEqual([r.header("X-HelpGenie-Attempt") for r in self.rx.requests(path)],
                         ["1", "2", "3", "4"])
        self.assertQuiet(path, 4)

    def test_each_attempt_resigned_with_fresh_timestamp(self):
        secret = self.env.secret()
        agent, path = self.hook([ra(503, 1), ra(503, 1), Response(200)], secret=secret)
        eid = self.escalate(agent)
        ev = self.final_event(agent, eid, timeout=8)
        self.assertEqual((ev["state"], ev["attempt"]), ("delivered", 3))
        reqs = self.rx.requests(path)
        self.assertEqual([r.header("X-HelpGenie-Attempt") for r in reqs], ["1", "2", "3"])
        stamps = [int(r.header("webhook-timestamp")) for r in reqs]
        self.assertEqual(stamps, sorted(set(stamps)),
                         "a fresh, increasing webhook-timestamp on every attempt: %r" % stamps)
        for r in reqs:
            self.assertLessEqual(abs(int(r.header("webhook-timestamp")) - r.time), 2)
            v = verify(r, secret)
            self.assertIs(v["signature"], True, "body signature on attempt %s"
                          % r.header("X-HelpGenie-Attempt"))
            self.assertIs(v["stdwh"], True, "webhook-signature over this attempt's timestamp")
            self.assertEqual(r.header("webhook-id"), eid)

    def test_each_attempt_uses_current_url_and_secret(self):
        old, new = self.env.secret(), self.env.secret()
        agent, path = self.hook([ra(503, 1)], secret=old)
        eid = self.escalate(agent)
        self.assertEqual(len(self.rx.wait_for(path, 1)), 1)
        path2 = self.path()
        self.env.upsert({"agentId": agent, "url": self.url(path2), "secret": new})
        ev = self.final_event(agent, eid)
        self.assertEqual((ev["state"], ev["attempt"]), ("delivered", 2))
        self.assertEqual(len(self.rx.requests(path)), 1, "old URL used again")
        r = self.rx.requests(path2)[0]
        self.assertEqual(r.header("X-HelpGenie-Attempt"), "2")
        self.assertEqual(r.header("X-HelpGenie-Event-Id"), eid)
        self.assertIs(verify(r, new)["signature"], True, "signed with the current secret")
        self.assertIs(verify(r, new)["stdwh"], True)

    def test_deleted_while_pending_skipped(self):
        agent, path = self.hook([ra(503, 1)])
        eid = self.escalate(agent)
        self.assertIsNotNone(self.env.wait_delivery_event(
            agent, lambda e: e.get("eventId") == eid and e["state"] == "retrying"))
        self.assertOk(self.env.request("delete", {"agentId": agent}))
        ev = self.final_event(agent, eid)
        self.assertEqual((ev["state"], ev["attempt"]), ("skipped", 1))
        self.assertIn("webhook deleted", ev.get("error", ""))
        self.assertQuiet(path, 1, secs=0.5)

    def test_deleted_or_inactive_ends_pending_at_once(self):
        # A retry an hour away (Retry-After: 3600) ends as skipped when the
        # webhook goes, not when it comes due; before, it stayed pending and,
        # if a new webhook was made for the Genie meanwhile, the old
        # escalation went to the new receiver (found by hostile testing).
        for how in ("delete", "inactive", "delete-recreate"):
            with self.subTest(how=how):
                agent, path = self.hook([ra(503, 3600)])
                eid = self.escalate(agent)
                self.assertIsNotNone(self.env.wait_delivery_event(
                    agent, lambda e: e.get("eventId") == eid and e["state"] == "retrying"))
                t = time.monotonic()
                if how == "inactive":
                    self.env.upsert({"agentId": agent, "url": self.url(path), "is_active": False})
                else:
                    self.assertOk(self.env.request("delete", {"agentId": agent}))
                ev = self.final_event(agent, eid, timeout=5)
                self.assertLess(time.monotonic() - t, 5)
                self.assertEqual((ev["state"], ev["attempt"]), ("skipped", 1))
                self.assertIn("inactive" if how == "inactive" else "webhook deleted",
                              ev.get("error", ""))
                if how == "delete-recreate":
                    new = self.path()
                    self.env.upsert({"agentId": agent, "url": self.url(new)})
                    self.assertQuiet(new, 0, secs=1.0)
                self.assertQuiet(path, 1, secs=0.3)

    def test_deleted_while_in_flight_not_retried(self):
        agent, path = self.hook([Response(503, hang=0.7, headers={"Retry-After": "1"})])
        eid = self.escalate(agent)
        self.rx.wait_for(path, 1, timeout=5)  # the attempt is out, its answer 0.7 s away (timeout 1 s)
        self.assertOk(self.env.request("delete", {"agentId": agent}))
        ev = self.final_event(agent, eid, timeout=8)
        self.assertEqual((ev["state"], ev["attempt"], ev.get("status")), ("skipped", 1, 503))
        self.assertIn("webhook deleted", ev.get("error", ""))
        self.assertEqual([e["state"] for e in self.events(agent, eid)], ["skipped"])
        self.assertQuiet(path, 1, secs=1.5)

    def test_inactive_while_pending_skipped(self):
        agent, path = self.hook([ra(503, 1)])
        eid = self.escalate(agent)
        self.assertIsNotNone(self.env.wait_delivery_event(
            agent, lambda e: e.get("eventId") == eid and e["state"] == "retrying"))
        self.env.upsert({"agentId": agent, "url": self.url(path), "is_active": False})
        ev = self.final_event(agent, eid)
        self.assertEqual((ev["state"], ev["attempt"]), ("skipped", 1))
        self.assertIn("inactive", ev.get("error", ""))
        self.assertQuiet(path, 1, secs=0.5)


class TestStatusCounters(RetryCase):
    """Section 7 counters of one hgd run: delivered, retrying (attempts that
    will be retried), failed, skipped (at intake or while pending) are
    totals since start; pending is the deliveries not yet finished."""

    def test_counters(self):
        env = self.env
        a, pa = self.hook([Response(503), Response(200)])
        b, pb = self.hook([Response(400)])
        c = new_agent()  # no webhook: skipped at intake
        d, pd = self.hook([ra(503, 1)])
        e, pe = self.hook([ra(503, 3600)])  # stays pending
        ea, eb, ec, ed, ee = (self.escalate(x) for x in (a, b, c, d, e))
        env.escalate(a, {"reason": "bad signature"}, sign={"sig": "0" * 64})
        self.assertEqual(self.final_event(a, ea)["state"], "delivered")
        self.assertEqual(self.final_event(b, eb)["state"], "failed")
        self.assertEqual(self.final_event(c, ec)["state"], "skipped")
        self.assertIsNotNone(env.wait_delivery_event(e, lambda x: x["state"] == "retrying"))
        self.assertIsNotNone(env.wait_delivery_event(d, lambda x: x["state"] == "retrying"))
        self.assertOk(env.request("delete", {"agentId": d}))
        self.assertEqual(self.final_event(d, ed)["state"], "skipped")

        want = {"delivered": 1, "retrying": 3, "failed": 1, "skipped": 2, "pending": 1}
        st = faults.status(env, lambda s: s.get("deliveries") == want)
        self.assertEqual(st.get("deliveries"), want, st)
        self.assertEqual(st.get("escalations"), {"accepted": 5, "rejected": 1}, st)
        self.assertEqual(st.get("webhooks"), 4 - 1, st)  # d was deleted

        # A restart resumes the pending one: a new run counts it as pending.
        self.assertEqual(env.hgd.restart(), 0)
        want = {"delivered": 0, "retrying": 0, "failed": 0, "skipped": 0, "pending": 1}
        st = faults.status(env, lambda s: s.get("deliveries") == want
                           and s.get("started_at") != st.get("started_at"))
        self.assertEqual(st.get("deliveries"), want, st)
        self.assertEqual(st.get("escalations"), {"accepted": 0, "rejected": 0}, st)
        self.assertEqual(len(self.rx.requests(pe)), 1, "Retry-After 3600 kept across the restart")


if __name__ == "__main__":
    hglib.main()
