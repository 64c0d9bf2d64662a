#!/usr/bin/python3
"""Request round trip without Nagle stalls.

Regression: Paho leaves TCP_NODELAY off on hgd's broker socket, so a reply
written right after the PUBACK of its request waited for the broker's delayed
ACK — every get took about 40 ms. hgd now sets TCP_NODELAY on connect. The
bound below is loose (a stalled reply takes 40 ms, a healthy one well under
5 ms here); the real figures live in docs/BENCHMARKS.md."""

import statistics
import time
import unittest

from hglib import HgTestCase, new_agent


class TestLatency(HgTestCase):

    def test_get_round_trip_has_no_nagle_stall(self):
        agent = new_agent()
        self.assertOk(self.env.request("upsert", {"agentId": agent, "url": self.url()}))
        times = []
        for _ in range(30):
            t0 = time.monotonic()
            self.assertOk(self.env.request("get", {"agentId": agent}))
            times.append((time.monotonic() - t0) * 1000)
        med = statistics.median(times)
        print("get round trip: median %.1f ms, max %.1f ms" % (med, max(times)))
        self.assertLess(med, 25.0, "median get round trip %.1f ms: a Nagle/delayed-ACK stall" % med)


if __name__ == "__main__":
    unittest.main()
