#!/usr/bin/env python3
"""A hostile peer, written from PROTOCOL.md alone (pyzmq, no Duban code).

Usage: hostile.py RPC_ENDPOINT SERVICE WRITE_TYPE WRONG_BODY_JSON
Sends each class of malformed message to a service and checks that every one is answered exactly
once with the right error code, that the service still answers sys.ping afterwards, and that its
state (every stream's head, as sys.ping reports it) is unchanged. Prints "ok: ..." per check and
"ALL OK" at the end; "FAILED: ..." and exit status 1 on the first failure.
"""
import json
import random
import sys
import time
import uuid

import zmq

rpc, service, write_type, wrong_body = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ctx = zmq.Context()
sock = ctx.socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.setsockopt(zmq.SNDHWM, 0)
sock.connect(rpc)
poller = zmq.Poller()
poller.register(sock, zmq.POLLIN)


def fail(what):
    print("FAILED:", what, flush=True)
    sys.exit(1)


def envelope(type_, body, **extra):
    msg = {"v": 1, "id": str(uuid.uuid4()), "type": type_, "ts": "2026-03-05T09:30:00+08:00", "from": "hostile-test", "body": body}
    msg.update(extra)
    return msg


def receive(timeout_ms):
    """One reply's JSON, or None when nothing came in time."""
    if not poller.poll(timeout_ms):
        return None
    frames = sock.recv_multipart()
    if len(frames) != 2 or frames[0] != b"":
        fail("reply framing: %r" % [f[:40] for f in frames])
    try:
        return json.loads(frames[1].decode("utf-8"))
    except ValueError:
        fail("a reply that is not UTF-8 JSON: %r" % frames[1][:80])


def ping():
    msg = envelope("sys.ping", {})
    sock.send_multipart([b"", json.dumps(msg).encode()])
    deadline = time.time() + 10
    while time.time() < deadline:
        reply = receive(int((deadline - time.time()) * 1000) + 1)
        if reply is not None and reply.get("re") == msg["id"]:
            if not reply.get("ok"):
                fail("sys.ping refused: %r" % reply)
            return reply["body"]
    fail("the service no longer answers sys.ping")


def replies_to(frames):
    """Sends one hostile message, then a sys.ping probe; every reply before the probe's (and any
    that straggles in shortly after) answers the hostile message."""
    sock.send_multipart(frames, copy=False)
    probe = envelope("sys.ping", {})
    sock.send_multipart([b"", json.dumps(probe).encode()])
    got, seen_probe, deadline = [], False, time.time() + 30
    while time.time() < deadline:
        # A reply that straggles in later still fails: it is counted against the next message,
        # or against none by the final drain.
        reply = receive(20 if seen_probe else int((deadline - time.time()) * 1000) + 1)
        if reply is None:
            if seen_probe:
                return got
            continue
        if reply.get("re") == probe["id"]:
            seen_probe = True
        else:
            got.append(reply)
    fail("no reply to the probe within 30 s")


def expect(name, frames, codes):
    got = replies_to(frames)
    if len(got) != 1:
        fail("%s: %d replies (%r)" % (name, len(got), [g.get("error") for g in got]))
    reply = got[0]
    code = (reply.get("error") or {}).get("code")
    if reply.get("ok") or code not in codes:
        fail("%s: answered %r, expected %s" % (name, reply.get("error") or reply.get("body"), "/".join(codes)))
    return reply


before = ping()
if before.get("service") != service:
    fail("sys.ping names %r, not %s" % (before.get("service"), service))
counts = {}


def run(name, frames, *codes):
    expect(name, frames, codes)
    counts[name] = counts.get(name, 0) + 1


rng = random.Random(19)
for n in range(100):
    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2048)))
    run("random bytes", [b"", payload], "bad_frame")
valid = json.dumps(envelope(write_type, wrong_body, key="k-hostile")).encode()
for n in range(1, len(valid), max(1, len(valid) // 40)):
    run("truncated JSON", [b"", valid[:n]], "bad_frame")
for literal in ("NaN", "Infinity", "-Infinity"):
    text = json.dumps(envelope(write_type, {"value": 1})).replace('"value": 1', '"value": ' + literal)
    run("NaN and infinities", [b"", text.encode()], "bad_frame")
nested = '{"v":1,"id":"deep","type":"%s","body":{"x":%s%s}}' % (write_type, "[" * 100000, "]" * 100000)
run("100,000-level nesting", [b"", nested.encode()], "bad_frame", "invalid_argument")
# JSONDecoder (FoundationEssentials) killed the process when the 513th level of nesting opened
# with a `[` that was the frame's last byte, or the last but a CR (a 527-byte frame found by
# fuzz-envelope); it also reads UTF-16 and UTF-32. Every depth around the limit, cut after a
# bracket, in each.
for depth in range(505, 521):
    for prefix in ("", '{"v":1,"id":"cut","type":"%s","body":{"x":' % write_type):
        for ending in ("", "\r"):
            for encoding in ("utf-8", "utf-16-le", "utf-32-le"):
                text = prefix + "[" * depth + ending
                run("nesting cut at the limit", [b"", text.encode(encoding)], "bad_frame")
ping_text = json.dumps(envelope("sys.ping", {}))
for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
    run("UTF-16 and UTF-32", [b"", ping_text.encode(encoding)], "bad_frame")
big = json.dumps(envelope(write_type, {"title": "污" * 5000000, "summary": "x"}, key="k-big"), ensure_ascii=False).encode()
if not 14 * 2**20 < len(big) < 16 * 2**20:
    fail("the 15 MB message is %d bytes" % len(big))
run("15 MB string", [b"", big], "invalid_argument", "too_large")
run("17 MB frame", [b"", b"{" + b" " * (17 * 2**20)], "too_large")
for raw in (b'{"v":1,"id":"u","type":"sys.ping","body":{"x":"\xff\xfe"}}', b'{"v":1,"id":"\xc3\x28","type":"sys.ping","body":{}}',
            b'{"v":1,"id":"s","type":"sys.ping","body":{"x":"\xed\xa0\x80"}}'):
    run("invalid UTF-8", [b"", raw], "bad_frame")
run("multi-frame", [b"", b"{}", b"{}"], "bad_frame")
run("multi-frame", [b"", json.dumps(envelope("sys.ping", {})).encode(), b"extra"], "bad_frame")
for msg, codes in (
    ({"v": "1", "id": "t1", "type": "sys.ping", "body": {}}, ("bad_frame", "unsupported_version")),
    ({"v": 1, "id": 7, "type": "sys.ping", "body": {}}, ("bad_frame",)),
    ({"v": 1, "id": "t3", "type": ["sys.ping"], "body": {}}, ("bad_frame",)),
    ({"v": 1, "id": "t4", "type": "sys.ping", "body": []}, ("bad_frame", "invalid_argument")),
    (envelope(write_type, wrong_body, key="k-wrong"), ("invalid_argument",)),
    (envelope(write_type, "a string", key="k-wrong2"), ("invalid_argument", "bad_frame")),
    (envelope(write_type, wrong_body, key=12), ("bad_frame", "invalid_argument")),
):
    run("wrong types", [b"", json.dumps(msg).encode()], *codes)

stray = receive(500)
if stray is not None:
    fail("a reply nothing asked for: %r" % stray)
after = ping()
if after.get("streams") != before.get("streams"):
    fail("state changed: stream heads %r before, %r after" % (before.get("streams"), after.get("streams")))
print("ok: %s answered %s each exactly once; alive; stream heads unchanged %r"
      % (service, ", ".join("%d %s" % (v, k) for k, v in counts.items()), after.get("streams")), flush=True)
print("ALL OK", flush=True)
