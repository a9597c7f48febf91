#!/usr/bin/env python3
"""An independent client written from PROTOCOL.md alone: pyzmq, no Duban code.

Usage: pyzmq_client.py RPC_ENDPOINT EVENTS_ENDPOINT   (a notify service)
It pings, makes a request, subscribes, catches up with events.since, and checks the answers.
"""
import json
import sys
import time
import uuid

import zmq

rpc, events = sys.argv[1], sys.argv[2]
ctx = zmq.Context()


def request(type_, body, key=None):
    """REQ framing; a fresh REQ socket per call keeps the example short."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(rpc)
    msg = {"v": 1, "id": str(uuid.uuid4()), "type": type_, "ts": "2026-03-05T09:30:00+08:00",
           "from": "pyzmq-test", "body": body}
    if key:
        msg["key"] = key
    sock.send(json.dumps(msg, ensure_ascii=False).encode("utf-8"))
    reply = json.loads(sock.recv().decode("utf-8"))
    sock.close()
    assert reply["v"] == 1 and reply["re"] == msg["id"], reply
    return reply


def check(condition, what):
    if not condition:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


pong = request("sys.ping", {})
check(pong["ok"] and pong["body"]["service"] == "notify" and pong["body"]["protocol"] == 1, "sys.ping")
head = pong["body"]["streams"]["notify"]

# Subscribe first, then act, then catch up: the Clone pattern.
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.LINGER, 0)
sub.setsockopt_string(zmq.SUBSCRIBE, "notify.")
sub.connect(events)
time.sleep(0.3)

channel = {"name": "区生态环境局-群", "kind": "file", "target": "pyzmq-channel.jsonl", "units": ["区生态环境局"]}
reply = request("channel.set", {"channel": channel}, key="py-" + str(uuid.uuid4()))
check(reply["ok"] and any(c["name"] == channel["name"] for c in reply["body"]["items"]), "channel.set")

bad = request("channel.set", {"channel": {"name": "x", "kind": "file"}})
check(not bad["ok"] and bad["error"]["code"] == "invalid_argument" and bad["error"]["field"] == "body.channel.target",
      "invalid_argument names the field")

unknown = request("no.such.type", {})
check(unknown["error"]["code"] == "unknown_type", "unknown_type")

poller = zmq.Poller()
poller.register(sub, zmq.POLLIN)
live = []
deadline = time.time() + 5
while time.time() < deadline and not live:
    if poller.poll(200):
        topic, envelope = sub.recv_multipart()
        live.append((topic.decode(), json.loads(envelope)))
check(live and live[0][0] == "notify.channel.updated" and live[0][1]["seq"] == head + 1, "live event with stream and seq")
check(live[0][1]["body"]["channel"]["name"] == "区生态环境局-群", "Chinese text intact")

since = request("events.since", {"stream": "notify", "after": head, "limit": 1000})
check(since["ok"] and [e["seq"] for e in since["body"]["events"]] == [head + 1] and since["body"]["head"] == head + 1,
      "events.since catch-up")

sub.close()
ctx.term()
print("ALL OK")
