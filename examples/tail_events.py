#!/usr/bin/env python3
"""Follow a Duban service's events, missing none, resuming where it left off.

    python3 examples/tail_events.py [--rpc tcp://127.0.0.1:7101] [--events tcp://127.0.0.1:7102]
                                    [--topic registry.progress.] [--state tail.state.json]
                                    [--cert var/keys/reader.key_secret --server-cert var/keys/registry.key]

Prints one JSON line per event. Its position (last seq per stream) is saved to --state after
every event, so a restart continues exactly after the last event printed. Needs pyzmq only.
Written from docs/protocol.md section 4: subscribe first, catch up with events.since, fill gaps,
and poll sys.ping for heads every few seconds.

With CURVE (docs/security.md; a deployment started by scripts/start.sh has it on): --cert is your
secret certificate (from `duban keys add`, or zmq.auth.create_certificates, unchanged) and
--server-cert the service's public certificate; both are loaded with zmq.auth.load_certificate.
Without them it talks plain TCP, which only a deployment without keys (loopback only) answers.
"""
import argparse, json, os, sys, time, uuid
import zmq

p = argparse.ArgumentParser()
p.add_argument("--rpc", default=os.environ.get("DUBAN_REGISTRY_RPC", "tcp://127.0.0.1:7101"))
p.add_argument("--events", default=os.environ.get("DUBAN_REGISTRY_EVENTS", "tcp://127.0.0.1:7102"))
p.add_argument("--topic", action="append", default=None, help="topic prefix (repeatable); default all")
p.add_argument("--state", default="tail.state.json")
p.add_argument("--count", type=int, default=0, help="stop after this many events (0: never)")
p.add_argument("--cert", help="your secret certificate (.key_secret), for CURVE")
p.add_argument("--server-cert", help="the service's public certificate (.key), for CURVE")
args = p.parse_args()
topics = args.topic or [""]

ctx = zmq.Context()
if args.cert and args.server_cert:
    import zmq.auth
    client_public, client_secret = zmq.auth.load_certificate(args.cert)
    server_public, _ = zmq.auth.load_certificate(args.server_cert)
    # Every socket made from the context from now on is a CURVE client of that service.
    ctx.curve_publickey, ctx.curve_secretkey, ctx.curve_serverkey = client_public, client_secret, server_public
positions = json.load(open(args.state)) if os.path.exists(args.state) else {}
printed = 0


def call(type_, body):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(args.rpc)
    # With CURVE the certificate says who asks; an absent `from` means its principal.
    envelope = {"v": 1, "id": str(uuid.uuid4()), "type": type_, "body": body}
    if not args.cert:
        envelope["from"] = "tail_events"
    s.send(json.dumps(envelope).encode())
    try:
        if not s.poll(5000):
            raise TimeoutError(type_)
        reply = json.loads(s.recv())
    finally:
        s.close()
    if not reply["ok"]:
        raise RuntimeError(reply["error"])
    return reply["body"]


def handle(event):
    global printed
    stream, seq = event["stream"], event["seq"]
    positions[stream] = seq
    if any(event["type"].startswith(t) for t in topics):
        print(json.dumps(event, ensure_ascii=False), flush=True)
        printed += 1
    with open(args.state + ".tmp", "w") as f:
        json.dump(positions, f)
    os.replace(args.state + ".tmp", args.state)   # atomic: a crash never leaves half a file
    if args.count and printed >= args.count:
        sys.exit(0)


def fill(stream, upto):
    """Read stream through events.since until positions[stream] >= upto."""
    while positions.get(stream, 0) < upto:
        page = call("events.since", {"stream": stream, "after": positions.get(stream, 0), "limit": 1000})
        if not page["events"]:
            return
        for event in page["events"]:
            if event["seq"] > positions.get(stream, 0):
                handle(event)


sub = ctx.socket(zmq.SUB)
for t in topics:
    sub.setsockopt_string(zmq.SUBSCRIBE, t)
sub.connect(args.events)            # 1. subscribe first

next_sync = 0.0
while True:
    if time.time() >= next_sync:    # 2 and 4: catch up to every stream's head
        try:
            for stream, head in call("sys.ping", {})["streams"].items():
                fill(stream, head)
        except (TimeoutError, RuntimeError) as e:
            print(f"# service not answering ({e}); retrying", file=sys.stderr)
        next_sync = time.time() + 3
    if sub.poll(500):
        topic, raw = sub.recv_multipart()
        event = json.loads(raw)
        last = positions.get(event["stream"], 0)
        if event["seq"] <= last:    # 3. already seen through catch-up
            continue
        if event["seq"] > last + 1:  # 3. a gap: fill it first
            try:
                fill(event["stream"], event["seq"] - 1)
            except (TimeoutError, RuntimeError):
                continue            # stored on the service; the next sync fetches it in order
            if positions.get(event["stream"], 0) >= event["seq"]:
                continue
        handle(event)
