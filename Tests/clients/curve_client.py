#!/usr/bin/env python3
"""A pyzmq client with CURVE, written from PROTOCOL.md section 7 alone.

Usage: curve_client.py RPC EVENTS SERVER_PUBLIC_CERT CLIENT_SECRET_CERT EXPECT
  EXPECT is "admitted" (sys.ping answered with security "curve", an event arrives within 5 s)
  or "refused" (no reply to sys.ping within 2 s, no event within 2 s).
The client's secret certificate may come from zmq.auth.create_certificates unchanged.
Prints one line per check, and ALL OK when every check held (exit status 0).
"""
import json
import sys
import time
import uuid

import zmq
import zmq.auth

rpc, events, server_cert, client_cert, expect = sys.argv[1:6]
server_public, _ = zmq.auth.load_certificate(server_cert)
client_public, client_secret = zmq.auth.load_certificate(client_cert)
ctx = zmq.Context()


def curve(sock):
    sock.curve_serverkey = server_public
    sock.curve_publickey = client_public
    sock.curve_secretkey = client_secret
    sock.setsockopt(zmq.LINGER, 0)


def check(condition, what):
    print(("ok: " if condition else "FAILED: ") + what, flush=True)
    if not condition:
        sys.exit(1)


sub = ctx.socket(zmq.SUB)
curve(sub)
sub.setsockopt_string(zmq.SUBSCRIBE, "")
sub.connect(events)

req = ctx.socket(zmq.REQ)
curve(req)
req.connect(rpc)
req.send(json.dumps({"v": 1, "id": str(uuid.uuid4()), "type": "sys.ping", "body": {}}).encode())
answered = req.poll(2000) != 0
if expect == "refused":
    check(not answered, "no reply to sys.ping within 2 s")
    check(sub.poll(2000) == 0, "no event within 2 s")
    print("ALL OK")
    sys.exit(0)

check(answered, "sys.ping answered")
pong = json.loads(req.recv())
check(pong["ok"] and pong["body"].get("security") == "curve", "sys.ping says security curve")
print("ready", flush=True)
check(sub.poll(5000) != 0, "an event arrived")
topic, envelope = sub.recv_multipart()
event = json.loads(envelope)
check(event["type"] == topic.decode() and event["seq"] >= 1, "the event is well-formed")
print("ALL OK")
