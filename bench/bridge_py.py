#!/usr/bin/python3
"""The Python bridge a user would write instead of hgd (benchmark baseline b).

Debian's python3-paho-mqtt (1.6) and python3-requests, synchronous: one
message at a time, in paho's network thread. It checks the publisher's
signature like hgd (PROTOCOL.md section 2: HMAC, time window, nonce replay),
builds the same compact body in the same field order, and POSTs it with the
same headers (hex HMAC signature header, Standard Webhooks headers,
X-HelpGenie-Event-Id/-Attempt, User-Agent) over one keep-alive
requests.Session.

Durability, as this kind of bridge naturally offers: nothing on disk. paho
acknowledges a QoS 1 message when on_message returns, i.e. after the POST
answered, so a crash loses nothing the broker still holds for a persistent
session; but a failed POST is logged and dropped (no retries, no outbox).

Prints "ready" on stdout once subscribed.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import sys
import time
import uuid

import paho.mqtt.client as mqtt
import requests

WINDOW = 300
FIELDS = ("callerNumber", "callSid", "reason", "summary", "agentSessionId")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--secret", required=True, help="the webhook's secret")
    ap.add_argument("--keys", required=True, help="keys.json of the publishers")
    ap.add_argument("--cafile")
    ap.add_argument("--topic-root", default="hg/v1")
    a = ap.parse_args()

    keys = {k["id"]: k["secret"].encode() for k in json.load(open(a.keys))["keys"]}
    secret = a.secret.encode()
    session = requests.Session()
    verify = a.cafile or True
    seen = {}  # nonce -> expiry
    prefix = a.topic_root + "/escalation/"
    stats = {"posted": 0, "failed": 0, "rejected": 0}

    def reject(why):
        stats["rejected"] += 1
        print("rejected: %s" % why, file=sys.stderr)

    def on_message(client, userdata, msg):
        props = dict(getattr(msg.properties, "UserProperty", []) or [])
        key, ts, nonce, sig = (props.get(n) for n in ("hg-key", "hg-ts", "hg-nonce", "hg-sig"))
        if not (key in keys and ts and ts.isdigit() and nonce and sig):
            return reject("missing or malformed signature properties")
        mac = hmac.new(keys[key], b"hg1\n%s\n%s\n%s\n" % (msg.topic.encode(), ts.encode(),
                                                          nonce.encode()) + msg.payload,
                       hashlib.sha256).hexdigest()
        now = time.time()
        if not hmac.compare_digest(mac, sig) or abs(now - int(ts)) > WINDOW:
            return reject("bad signature or stale")
        if nonce in seen:
            return reject("nonce replayed")
        seen[nonce] = now + 2 * WINDOW
        if len(seen) > 200000:
            for n in [n for n, exp in seen.items() if exp < now]:
                del seen[n]
        try:
            esc = json.loads(msg.payload)
        except ValueError:
            return reject("not JSON")
        if not isinstance(esc, dict):
            return reject("not an object")
        event_id = esc.get("eventId") or str(uuid.uuid4())
        stamp = datetime.datetime.now(datetime.timezone.utc)
        body = {"eventId": event_id, "eventType": "escalation",
                "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.") +
                "%03dZ" % (stamp.microsecond // 1000)}
        for f in FIELDS:
            body[f] = esc.get(f)
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        wts = str(int(now))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "pybridge/1",
            "X-HelpGenie-Event-Id": event_id,
            "X-HelpGenie-Attempt": "1",
            "X-HelpGenie-Signature": hmac.new(secret, raw, hashlib.sha256).hexdigest(),
            "webhook-id": event_id,
            "webhook-timestamp": wts,
            "webhook-signature": "v1," + base64.b64encode(hmac.new(
                secret, b"%s.%s." % (event_id.encode(), wts.encode()) + raw,
                hashlib.sha256).digest()).decode(),
        }
        try:
            r = session.post(a.url, data=raw, headers=headers, timeout=(5, 15),
                             allow_redirects=False, verify=verify)
            if 200 <= r.status_code < 300:
                stats["posted"] += 1
            else:
                stats["failed"] += 1
        except requests.RequestException as e:
            stats["failed"] += 1
            print("post failed: %s" % e, file=sys.stderr)

    def on_connect(client, userdata, flags, rc, properties=None):
        client.subscribe(prefix + "+", qos=1)

    def on_subscribe(client, userdata, mid, rcs, properties=None):
        print("ready", flush=True)

    c = mqtt.Client(client_id="pybridge-%d" % time.time_ns(), protocol=mqtt.MQTTv5)
    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    c.connect("127.0.0.1", a.port, keepalive=60, clean_start=True)
    try:
        c.loop_forever()
    except KeyboardInterrupt:
        pass
    print(json.dumps(stats), file=sys.stderr)


if __name__ == "__main__":
    main()
