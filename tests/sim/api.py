#!/usr/bin/env python3
"""api.py - the simulated `sirius-api`: an HTTP service that accepts a request only with a valid
X-API-Key, checked against the keyrotator key store in Valkey (DESIGN.md §1-2, both layouts).

Routes: GET /health (public), GET /metrics (Prometheus text: http_requests_total{code}),
GET /api/v1/ping (needs X-API-Key). Environment: PORT (0 = any free port), VALKEY_ADDR
(host:port), VALKEY_PASSWORD, VALKEY_USERNAME, VALKEY_DB (optional), KEY_STORE_AS
(sha256 | plaintext), ACTIVE_SET, META_KEY, POD_READY_FILE (written once listening, as JSON
{"port": N}), LAST_USED_EVERY (seconds between last_used_at writes per key, default 60; tests of
`revokeWhenUnusedFor` lower it). Stops cleanly on SIGTERM. Python 3 standard library only; read `KeyValidator`
as a reference for your own service's check.
"""
import datetime
import hashlib
import http.server
import json
import os
import signal
import threading
import time

from krtest import resp


class KeyValidator:
    """The check a service runs on every request. Thread-safe (one Valkey connection, locked)."""

    LAST_USED_EVERY = 60.0  # seconds: write last_used_at at most once a minute per key

    def __init__(self, client, store_as="sha256", active_set="api_keys:active",
                 meta_key="api_key:{id}:meta"):
        if store_as not in ("sha256", "plaintext"):
            raise ValueError("KEY_STORE_AS must be sha256 or plaintext, not %r" % store_as)
        self.client, self.store_as = client, store_as
        self.active_set, self.meta_key = active_set, meta_key
        self.lock = threading.Lock()
        self.last_write = {}  # member -> time.monotonic() of our last last_used_at write

    def member(self, key):
        # sha256 layout: the set holds hex SHA-256 of the key, so the raw key never goes to
        # Valkey and a leaked dump holds no usable key. plaintext: the raw key (legacy).
        if self.store_as == "sha256":
            return hashlib.sha256(key.encode()).hexdigest()
        return key

    def check(self, key):
        """True when `key` is an active key. Raises OSError/resp.RespError when Valkey can't
        answer: the caller must then refuse with 503, never accept (fail closed)."""
        if not key or len(key) > 512 or not key.isprintable():
            return False
        member = self.member(key)
        meta = self.meta_key.replace("{id}", member)
        with self.lock:
            # Membership is a hash lookup done by Valkey: there is no byte-by-byte comparison
            # of a secret in this process. If you also compare against a key you hold locally
            # (an env var fallback, a cache), use hmac.compare_digest, never ==.
            if not self.client.sismember(self.active_set, member):
                return False
            # Revoking removes the member from the set and marks the hash; honour both, so a
            # half-finished revoke never lets a key back in.
            if self.client.hget(meta, "status") == "revoked":
                return False
            self._touch(member, meta)
        return True

    def _touch(self, member, meta):
        # Usage tracking (DESIGN.md §2): lets `revokeWhenUnusedFor` see a forgotten consumer.
        now = time.monotonic()
        last = self.last_write.get(member)
        if last is not None and now - last < self.LAST_USED_EVERY:
            return
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.client.hset(meta, "last_used_at", stamp)
        self.last_write[member] = now


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"200": 0, "401": 0}  # present from the start, so rate() has a series

    def inc(self, code):
        with self.lock:
            self.counts[str(code)] = self.counts.get(str(code), 0) + 1

    def render(self):
        lines = ["# HELP http_requests_total HTTP requests handled, by status code.",
                 "# TYPE http_requests_total counter"]
        with self.lock:
            for code in sorted(self.counts):
                lines.append('http_requests_total{code="%s"} %d' % (code, self.counts[code]))
        return ("\n".join(lines) + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    validator = None
    metrics = None

    def do_GET(self):
        if self.path == "/health":
            return self._send(200, b'{"status":"ok"}\n', count=False)
        if self.path == "/metrics":
            return self._send(200, self.metrics.render(), "text/plain; version=0.0.4", False)
        if self.path.split("?")[0] != "/api/v1/ping":
            return self._send(404, b'{"error":"not found"}\n')
        try:
            ok = self.validator.check(self.headers.get("X-API-Key", ""))
        except (OSError, EOFError, resp.RespError):
            return self._send(503, b'{"error":"key store unavailable"}\n')
        if not ok:  # the same answer for missing, unknown and revoked keys
            return self._send(401, b'{"error":"unauthorized"}\n')
        return self._send(200, b'{"pong":true}\n')

    def _send(self, code, body, ctype="application/json", count=True):
        if count:
            self.metrics.inc(code)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # no access log: it would only add noise
        pass


def main():
    env = os.environ
    client = resp.client_from_env(env)  # TLS and sentinels too (issue 22)
    Handler.validator = KeyValidator(client, env.get("KEY_STORE_AS", "sha256"),
                                     env.get("ACTIVE_SET", "api_keys:active"),
                                     env.get("META_KEY", "api_key:{id}:meta"))
    if env.get("LAST_USED_EVERY"):
        Handler.validator.LAST_USED_EVERY = float(env["LAST_USED_EVERY"])
    Handler.metrics = Metrics()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(env.get("PORT", "0"))), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    ready = env.get("POD_READY_FILE")
    if ready:
        with open(ready + ".tmp", "w") as f:
            json.dump({"port": server.server_address[1]}, f)
        os.replace(ready + ".tmp", ready)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
