#!/usr/bin/env python3
"""Ping a Duban service over CURVE with a certificate pyzmq made: the smallest complete tool.

    # 1. Make your certificate, once: DIR/NAME.key (public) and DIR/NAME.key_secret (secret, 0600).
    python3 examples/curve_ping.py --make mycerts --name dashboard --role reader
    # 2. Whoever keeps the key directory admits it: the public file goes into clients/, and every
    #    service takes it within a second (`duban keys list` shows it). The secret file stays with you.
    cp mycerts/dashboard.key var/keys/clients/
    # 3. Ping a service, pinning its public certificate (the service's NAME.key in the key directory):
    python3 examples/curve_ping.py --cert mycerts/dashboard.key_secret --server-cert var/keys/registry.key \
        --rpc tcp://127.0.0.1:7101

Why --make edits the public file: zmq.auth.create_certificates(dir, name, metadata={...}) writes the
metadata (role; unit for a unit, stations for a station) into the secret file only, while Duban reads
who you are from the public certificate in clients/, as czmq's zcert_save_public writes it
(PROTOCOL.md section 7). So the secret file's `metadata` section is copied into the public one; the
secret file is used as pyzmq wrote it. docs/security.md says which role may do what.

A key that is not admitted gets no answer at all (CURVE refuses it at the handshake, silently), and
neither does a client that pins the wrong server key: the ping then times out and says so.
Needs pyzmq only (pip install pyzmq).
"""
import argparse
import json
import os
import sys
import uuid

import zmq
import zmq.auth

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--make", metavar="DIR", help="make a certificate in DIR and stop")
p.add_argument("--name", default="tool", help="with --make: the certificate's name (ASCII), its file stem")
p.add_argument("--role", default="reader", help="with --make: admin, office, unit, station, reader, service or gateway")
p.add_argument("--unit", help="with --make --role unit: the unit as the plan writes it (区生态环境局)")
p.add_argument("--stations", help="with --make --role station: station ids, comma-separated")
p.add_argument("--cert", help="your secret certificate (.key_secret)")
p.add_argument("--server-cert", help="the service's public certificate (.key), e.g. var/keys/registry.key")
p.add_argument("--rpc", default=os.environ.get("DUBAN_REGISTRY_RPC", "tcp://127.0.0.1:7101"))
p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the reply")
args = p.parse_args()


def make():
    metadata = {"role": args.role}
    if args.unit:
        metadata["unit"] = args.unit
    if args.stations:
        metadata["stations"] = args.stations
    os.makedirs(args.make, exist_ok=True)
    umask = os.umask(0o077)  # pyzmq leaves the secret file's mode to the umask: never readable by others
    try:
        public_file, secret_file = zmq.auth.create_certificates(args.make, args.name, metadata=metadata)
    finally:
        os.umask(umask)
    os.chmod(public_file, 0o644)
    # Copy the secret file's metadata section into the public file, which has an empty one.
    lines = open(secret_file, encoding="utf-8").read().split("\n")
    start, end = lines.index("metadata") + 1, lines.index("curve")
    public = open(public_file, encoding="utf-8").read()
    public = public.replace("metadata\n", "metadata\n" + "".join(line + "\n" for line in lines[start:end]), 1)
    with open(public_file, "w", encoding="utf-8") as f:
        f.write(public)
    print(f"secret certificate {secret_file} (0600): keep it, never copy it elsewhere")
    print(f"public certificate {public_file}: put it in the key directory's clients/ to be admitted")


def ping():
    if not (args.cert and args.server_cert):
        sys.exit("--cert and --server-cert are needed (or --make to make a certificate)")
    client_public, client_secret = zmq.auth.load_certificate(args.cert)
    server_public, _ = zmq.auth.load_certificate(args.server_cert)
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.curve_serverkey = server_public  # pinned: a server without its secret cannot answer
    s.curve_publickey = client_public
    s.curve_secretkey = client_secret
    s.setsockopt(zmq.LINGER, 0)
    s.connect(args.rpc)
    # No `from`: with CURVE the certificate says who asks (a `from` naming anyone else is refused).
    s.send(json.dumps({"v": 1, "id": str(uuid.uuid4()), "type": "sys.ping", "body": {}}).encode())
    if not s.poll(int(args.timeout * 1000)):
        sys.exit(
            f"no reply from {args.rpc} within {args.timeout:g} s: is your public certificate in clients/, "
            "is --server-cert that service's, is it running? (CURVE refuses without a word)")
    reply = json.loads(s.recv())
    if not reply["ok"]:
        sys.exit(f"{reply['error']['code']}: {reply['error']['message']}")
    body = reply["body"]
    print(f"{body['service']} ({body['instance']}) answered; security {body.get('security')}; streams {body['streams']}")
    ctx.destroy()


make() if args.make else ping()
