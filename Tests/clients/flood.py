#!/usr/bin/env python3
"""A hostile client for tests: one DEALER that sends COUNT requests and never reads a reply.

Usage: flood.py ENDPOINT COUNT KIND DONE_FILE [STAY_SECONDS]
  KIND: "malformed" (a few bytes that are not JSON), "ping" (valid sys.ping requests),
        "annual-report" (notify's slowest read),
        "garbage:N" (N bytes that are not JSON) or "big:N" (valid sys.ping envelopes padded to N
        bytes with an ignored field).
Writes DONE_FILE once every request has been handed to ZeroMQ, then stays connected, still not
reading, for STAY_SECONDS (default 30) so that its pipe stays full.
"""
import sys, time, zmq

endpoint, count, kind, done = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
stay = float(sys.argv[5]) if len(sys.argv) > 5 else 30
context = zmq.Context()
dealer = context.socket(zmq.DEALER)
dealer.setsockopt(zmq.LINGER, 0)
dealer.connect(endpoint)
if kind == "malformed":
    payload = lambda i: b"\xff not json %d" % i
elif kind == "ping":
    payload = lambda i: b'{"v":1,"id":"f%d","type":"sys.ping","body":{}}' % i
elif kind == "annual-report":
    payload = lambda i: b'{"v":1,"id":"r%d","type":"report.generate","body":{"kind":"annual","period":"2026"}}' % i
elif kind.startswith("garbage:"):
    blob = b"\xff" * int(kind[8:])
    payload = lambda i: blob
elif kind.startswith("big:"):
    pad = b"x" * int(kind[4:])
    payload = lambda i: b'{"v":1,"id":"f%d","type":"sys.ping","pad":"%s","body":{}}' % (i, pad)
else:
    sys.exit("unknown kind " + kind)
deadline = time.time() + 120
for i in range(count):
    dealer.send_multipart([b"", payload(i)])
    if time.time() > deadline:
        break
with open(done, "w") as f:
    f.write("%d\n" % (i + 1))
time.sleep(stay)
