#!/usr/bin/env python3
"""A webhook receiver for tests: answers 500 to the first FAIL requests, 200 after, and writes
one JSON line per request (number, status given, X-Duban-Delivery, path, body) to LOG. With DELAY
(seconds), it writes the line as the request arrives, then waits that long before answering.
With REDIRECT (a URL), it answers every request 302 with that Location instead (a sender that
follows redirects would then be seen at the other end). With ANSWER, it answers with that body
instead of a robot's `{"errcode": 0}`.

Usage: webhook_receiver.py PORT LOG FAIL [DELAY] [REDIRECT] [ANSWER]
"""
import http.server, json, sys, time

port, log, fail = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0
redirect = sys.argv[5] if len(sys.argv) > 5 else ""
answer = sys.argv[6].encode() if len(sys.argv) > 6 and sys.argv[6] else b'{"errcode": 0, "errmsg": "ok"}'
seen = {"n": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen["n"] += 1
        status = 302 if redirect else 500 if seen["n"] <= fail else 200
        with open(log, "a") as f:
            f.write(json.dumps({"n": seen["n"], "status": status, "delivery": self.headers.get("X-Duban-Delivery"),
                                "path": self.path, "host": self.headers.get("Host"), "body": json.loads(body)},
                               ensure_ascii=False) + "\n")
        time.sleep(delay)
        self.send_response(status)
        if redirect:
            self.send_header("Location", redirect)
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


# A safety net: a test that dies without stopping us does not leave us behind for long.
import threading, os
threading.Timer(120, lambda: os._exit(0)).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
