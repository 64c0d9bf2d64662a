#!/usr/bin/python3
"""Write the seed corpora of tests/fuzz/corpus/<harness>/ (seed-*.bin files).

Run once after changing a format; files found by fuzzing (crash-*, regress-*)
are kept next to the seeds and never rewritten here.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
EVENT = "0b6e1f0c-3f5e-4a43-9d55-9f0f6b1de2a4"


def j(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()


def request_seeds():
    full = {"agentId": AGENT, "url": "https://hooks.example.com/h?x=1", "secret": "whsec_abc",
            "secret_header": "X-Sig", "is_active": True,
            "custom_fields": ["accountNumber", {"key": "reason", "hint": "why", "useForSignature": True},
                              {"key": "a.b-c_d", "hint": None, "useForSignature": False}]}
    yield j({"agentId": AGENT})
    yield j({"agentId": AGENT, "url": "https://example.com/"})
    yield j(full)
    yield j(dict(full, url="http://127.0.0.1:8443/x"))
    yield j(dict(full, url="https://[::ffff:127.0.0.1]:443/"))
    yield j(dict(full, url="https://2130706433/"))
    yield j(dict(full, url="https://user@host/"))
    yield j(dict(full, secret_header="X-A\r\nX-B: 1"))
    yield j(dict(full, secret="\u2022" * 8))
    yield j(dict(full, custom_fields=[{"key": "k", "extra": 1}]))
    yield j(dict(full, custom_fields=["k", "k"]))
    yield b'{"agentId":"%s","agentId":"%s"}' % (AGENT.encode(), AGENT.encode())
    yield b'[' * 40 + b']' * 40
    yield b'{"agentId":1e999}'
    yield b'{"a":"\\u0000"}'
    yield b'{"a":"\xc0\xaf"}'
    yield b'{"a":"\\ud800"}'


def escalation_seeds():
    msg = {"eventId": EVENT, "callerNumber": "+15551230000", "callSid": "CA1", "reason": "r",
           "summary": "s \u00e9\u4e2d", "agentSessionId": "sess",
           "fields": {"accountNumber": "AC-1", "x": [1, {"y": None}], "a.b": 1.5e300}}
    for cfg in (b"\x00\x00\x00", b"\xff\x00\x01", b"\xff\xff\x01", b"\x2d\x24\x01", b"\x44\x40\x00"):
        yield cfg + j(msg)
    yield b"\x07\x07\x01" + j({})
    yield b"\x00\x00\x01" + j({"eventId": "not-a-uuid"})
    yield b"\x00\x00\x01" + j({"fields": []})
    yield b"\x00\x00\x01" + b'{"reason":"a","reason":"b"}'
    yield b"\x00\x00\x01" + b'{"fields":{"k":-0.0,"n":123456789012345678901234567890}}'
    yield b"\x00\x00\x01" + b'["array"]'


def keys_seeds():
    k = {"keys": [{"id": "ops", "secret": "hgk_0123", "agents": ["*"],
                   "actions": ["get", "upsert", "delete", "test", "escalate"]},
                  {"id": "node", "secret": "hgk_4567", "agents": [AGENT.upper()], "actions": ["escalate"]}]}
    yield j(k)
    yield json.dumps(k, indent=2).encode()
    yield j({"keys": []})
    yield j({"keys": [{"id": "ops", "secret": "x", "agents": ["*"], "actions": ["fly"]}]})
    yield j({"keys": [{"id": "ops", "secret": "x", "agents": [1], "actions": []}]})
    yield j({"keys": [{"id": "a", "secret": "x", "agents": [], "actions": []},
                      {"id": "a", "secret": "y", "agents": [], "actions": []}]})
    yield b'{"keys":[{"id":"","secret":""}]}'
    yield b'{"keys":{}}'


def row(agent=AGENT, **kw):
    r = {"id": EVENT, "agent_id": agent, "url": "https://example.com/h", "secret": "whsec_x",
         "secret_header": "X-HelpGenie-Signature",
         "custom_fields": [{"key": "reason", "hint": None, "useForSignature": True}],
         "is_active": True, "created_at": "2026-12-03T18:00:00.000Z",
         "updated_at": "2026-12-03T18:00:00.000Z"}
    r.update(kw)
    return r


def store_seeds():
    other = "9b2d7c4e-1111-4a2b-8c3d-222233334444"
    yield b""
    yield j({"op": "put", "row": row()}) + b"\n"
    yield b"\n".join([j({"op": "put", "row": row()}), j({"op": "put", "row": row(other, secret=None)}),
                      j({"op": "del", "agent_id": AGENT}), j({"op": "put", "row": row(AGENT.upper())})]) + b"\n"
    yield j({"op": "put", "row": row()}) + b"\n" + b'{"op":"put","ro'
    yield j({"op": "put", "row": row(secret="\u2022" * 8)}) + b"\n"
    yield j({"op": "put", "row": row(url="http://x/")}) + b"\n"
    yield j({"op": "zap"}) + b"\n"
    yield b"\x00\n"


def outbox_seeds():
    add = {"t": "add", "seq": 1, "agent_id": AGENT, "event_id": EVENT, "accepted_ms": 1764784800000,
           "esc": {"eventId": EVENT, "reason": "r", "fields": {"a": [1, 2]}}}
    yield b""
    yield j(add) + b"\n"
    yield b"\n".join([j({"t": "seq", "seq": 5}), j(dict(add, seq=6, attempt=2, next_ms=1764784900000)),
                      j({"t": "try", "seq": 6, "attempt": 3, "next_ms": 1764785000000}),
                      j(dict(add, seq=7)), j({"t": "done", "seq": 7})]) + b"\n"
    yield j(add) + b"\n" + j(add) + b"\n"
    yield j(dict(add, seq=9007199254740993)) + b"\n"
    yield j(dict(add, esc={"eventId": "x"})) + b"\n"
    yield j(add) + b"\n" + b'{"t":"do'


def main():
    for name, gen in (("request", request_seeds), ("escalation", escalation_seeds),
                      ("keys", keys_seeds), ("store", store_seeds), ("outbox", outbox_seeds)):
        d = os.path.join(HERE, "corpus", name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.unlink(os.path.join(d, f))
        for i, data in enumerate(gen()):
            with open(os.path.join(d, "seed-%02d.bin" % i), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
