#!/usr/bin/env python3
"""counter_service.py - a test service whose HTTP request counters the test controls.

Serves, on 127.0.0.1:PORT (plain HTTP, or HTTPS with --tls-cert/--tls-key):

  GET  /metrics                 http_requests_total{method,code} in the text format 0.0.4
  POST /admin/bump?method=get&code=401&n=5         add n to a series (created if absent)
  POST /admin/rate?method=get&code=401&per_sec=20  the series grows by per_sec every second
  GET  /hang/...                never answers (for client timeouts)
  GET  /fakeprom/api/v1/query   a Prometheus-shaped answer: the scalar 42, for auth tests

With --token T, /metrics and /fakeprom require "Authorization: Bearer T"; with
--basic USER:PASSWORD they require that Basic login instead. Python 3 standard library only.
"""
import argparse
import base64
import hmac
import http.server
import json
import ssl
import sys
import threading
import time
import urllib.parse


class Counters:
    """Counters whose value is base + rate * elapsed, so a rate needs no ticking thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.series = {
            ("get", "200"): [100.0, 0.0, time.monotonic()],
            ("get", "401"): [0.0, 0.0, time.monotonic()],
            ("post", "401"): [0.0, 0.0, time.monotonic()],
        }

    def _fold(self, key):
        entry = self.series.setdefault(key, [0.0, 0.0, time.monotonic()])
        now = time.monotonic()
        entry[0] += entry[1] * (now - entry[2])
        entry[2] = now
        return entry

    def bump(self, key, n):
        with self.lock:
            self._fold(key)[0] += n

    def set_rate(self, key, per_sec):
        with self.lock:
            self._fold(key)[1] = per_sec

    def render(self):
        lines = [
            "# HELP http_requests_total Requests handled, by method and status code.",
            "# TYPE http_requests_total counter",
        ]
        with self.lock:
            for (method, code) in sorted(self.series):
                value = self._fold((method, code))[0]
                lines.append('http_requests_total{method="%s",code="%s"} %d'
                             % (method, code, int(value)))
        return "\n".join(lines) + "\n"


class Handler(http.server.BaseHTTPRequestHandler):
    counters = None
    token = None
    basic = None

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body, ctype="text/plain; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        got = self.headers.get("Authorization", "")
        if self.token is not None:
            return hmac.compare_digest(got, "Bearer " + self.token)
        if self.basic is not None:
            want = "Basic " + base64.b64encode(self.basic.encode()).decode()
            return hmac.compare_digest(got, want)
        return True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/hang"):
            time.sleep(60)
            return
        if not self._authorized():
            self._send(401, "unauthorized\n")
            return
        if url.path == "/metrics":
            self._send(200, self.counters.render(), "text/plain; version=0.0.4; charset=utf-8")
        elif url.path == "/fakeprom/api/v1/query":
            body = {"status": "success",
                    "data": {"resultType": "scalar", "result": [time.time(), "42"]}}
            self._send(200, json.dumps(body), "application/json")
        else:
            self._send(404, "404 page not found\n")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        key = (q.get("method", "get"), q.get("code", "401"))
        if url.path == "/admin/bump":
            self.counters.bump(key, float(q.get("n", "1")))
        elif url.path == "/admin/rate":
            self.counters.set_rate(key, float(q.get("per_sec", "0")))
        else:
            self._send(404, "404 page not found\n")
            return
        self._send(200, "ok\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token")
    ap.add_argument("--basic")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()

    Handler.counters = Counters()
    Handler.token = args.token
    Handler.basic = args.basic
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
