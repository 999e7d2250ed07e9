"""attacklib.py - what tests/security/test_attacks.py plants and watches: canaries (secret
values that must never leave their Secret) and the forms in which they could leak, a recording
fake Valkey and a recording HTTP server (the attacker's own servers), and a full dump of a real
redis-server's keys and values.

Python 3 standard library only.
"""
import base64
import hashlib
import http.server
import re
import secrets
import socket
import socketserver
import threading


def key_id(value):
    """The 12-hex key id of a value (DESIGN.md §1): what status.currentKey.id would show."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def canary(tag):
    """A unique value that must not leave the Secret it is planted in."""
    return "%s-CANARY-%s" % (tag, secrets.token_hex(10))


def forms(value):
    """The forms in which `value` could leak: raw, base64, its SHA-256 hex (the activeSet member
    with storeAs sha256) and its key id."""
    raw = value.encode()
    return {"raw": value, "base64": base64.b64encode(raw).decode(),
            "sha256": hashlib.sha256(raw).hexdigest(), "key id": key_id(value)}


def find_leaks(text, needles):
    """[(needle name, form)] of every needle found in `text`. needles: {name: value}; a value
    is searched in every form of forms(); names ending in "!" only raw (a banner)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    out = []
    for name, value in needles.items():
        fs = {"raw": value} if name.endswith("!") else forms(value)
        for form, v in fs.items():
            if v in text:
                out.append((name, form))
    return out


# ---- the attacker's Valkey ----

class RecordingValkey:
    """A TCP server on loopback that speaks just enough RESP to keep a client talking (PING:
    +PONG, HELLO/anything else: +OK) and records every byte and connection it receives."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.addr = "%s:%d" % self.sock.getsockname()
        self.lock = threading.Lock()
        self.data = bytearray()
        self.connections = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def received(self):
        with self.lock:
            return bytes(self.data), self.connections

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                with self.lock:
                    self.data += chunk
                buf += chunk
                while True:
                    cmd, buf = self._command(buf)
                    if cmd is None:
                        break
                    name = cmd[0].upper() if cmd else b""
                    conn.sendall(b"+PONG\r\n" if name == b"PING" else b"+OK\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _command(buf):
        """(args, rest) of the first complete command in buf (RESP array or inline line), or
        (None, buf) when it is incomplete."""
        if not buf.startswith(b"*"):
            line, sep, rest = buf.partition(b"\r\n")
            return (line.split(), rest) if sep else (None, buf)
        head, sep, rest = buf.partition(b"\r\n")
        if not sep:
            return None, buf
        try:
            n = int(head[1:])
        except ValueError:
            return [b"?"], rest
        args = []
        for _ in range(max(n, 0)):
            h, sep, rest = rest.partition(b"\r\n")
            if not sep:
                return None, buf
            try:
                size = int(h[1:])
            except ValueError:
                return [b"?"], rest
            if len(rest) < size + 2:
                return None, buf
            args.append(rest[:size])
            rest = rest[size + 2:]
        return args, rest

    def close(self):
        self.closed = True
        self.sock.close()


# ---- the attacker's HTTP server ----

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return self.server.banner + " (Server header)"

    def log_message(self, *_):
        pass

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        self.server.record(self.requestline, str(self.headers), body)
        b = self.server.banner
        path = self.path
        if "/http500/" in path:
            code, ctype = 500, "text/plain"
            text = "internal error: %s at upstream, see %s\n" % (b, b)
        elif "/html/" in path:
            code, ctype = 200, "text/html"
            text = "<html><title>%s</title><body>login required %s</body></html>\n" % (b, b)
        elif "/promerror/" in path:
            code, ctype = 422, "application/json"
            text = ('{"status":"error","errorType":"%s","error":"%s: cannot evaluate (%s)",'
                    '"warnings":["%s"]}' % (b, b, b, b))
        elif "/redirect/" in path and self.server.redirect_to:
            code, ctype = 302, "text/plain"
            text = "moved to %s (%s)\n" % (self.server.redirect_to, b)
        else:  # Prometheus-looking junk with the banner in names, labels, values and text
            code, ctype = 200, "text/plain; version=0.0.4"
            text = ("# HELP http_requests_total %s\n# TYPE http_requests_total counter\n"
                    'http_requests_total{code="401",banner="%s"} %s\n'
                    'http_requests_total{code="401"} 1e+%s\n'
                    "%s{code=\"401\"} 3\n<html>%s</html>\n" % (b, b, b, b, b, b))
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Banner", b)
        if code == 302:
            self.send_header("Location", self.server.redirect_to)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _any


class RecordingHTTP(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTP server that records every connection and every request (request line, headers,
    body) and answers with `banner` in its Server header and body. The answer depends on the
    path: a segment /http500/ gives 500 text, /html/ 200 HTML (not JSON), /promerror/ a
    Prometheus JSON error, /redirect/ a 302 to `redirect_to`, anything else 200
    Prometheus-looking junk."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, banner, host="127.0.0.1"):
        super().__init__((host, 0), _Handler)
        self.banner = banner
        self.redirect_to = None
        self.lock = threading.Lock()
        self.requests = []  # (request line, headers text, body bytes)
        self.raw_connections = 0
        self.url = "http://%s:%d" % self.server_address[:2]
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def get_request(self):
        conn = super().get_request()
        with self.lock:
            self.raw_connections += 1
        return conn

    def record(self, line, headers, body):
        with self.lock:
            self.requests.append((line, headers, body))

    def snapshot(self):
        with self.lock:
            return list(self.requests), self.raw_connections

    def requests_under(self, prefix):
        """The recorded requests whose path starts with `prefix`."""
        return [r for r in self.snapshot()[0] if r[0].split(" ")[1:2] and
                r[0].split(" ")[1].startswith(prefix)]

    @staticmethod
    def text(req):
        """A request as text, with every Basic credential decoded alongside."""
        line, headers, body = req
        extra = []
        for m in re.finditer(r"(?im)^authorization:\s*basic\s+(\S+)", headers):
            try:
                extra.append(base64.b64decode(m.group(1)).decode("latin-1"))
            except ValueError:
                pass
        return "\n".join([line, headers, body.decode("latin-1")] + extra)

    def close(self):
        self.shutdown()
        self.server_close()


# ---- the legitimate key store ----

def dump_store(client):
    """{key: value} of every key of a redis-server (resp.Client): strings as bytes, sets as
    sorted lists, hashes as dicts, lists and sorted sets as lists; SCAN, no MONITOR."""
    keys, cursor = set(), b"0"
    while True:
        cursor, batch = client.command("SCAN", cursor, "COUNT", "1000")
        keys.update(batch)
        if cursor in (b"0", 0):
            break
    out = {}
    for k in sorted(keys):
        t = client.command("TYPE", k)
        if t == b"string":
            v = client.command("GET", k)
        elif t == b"set":
            v = sorted(client.command("SMEMBERS", k))
        elif t == b"hash":
            h = client.command("HGETALL", k)
            v = {h[i]: h[i + 1] for i in range(0, len(h), 2)}
        elif t == b"list":
            v = client.command("LRANGE", k, "0", "-1")
        elif t == b"zset":
            v = client.command("ZRANGE", k, "0", "-1", "WITHSCORES")
        else:
            v = t
        out[k.decode("latin-1")] = v
    return out


def dump_text(dump):
    """The dump as one text (keys and values) to search for canaries."""
    parts = []
    for k, v in dump.items():
        parts.append(k)
        if isinstance(v, dict):
            vals = [x for kv in v.items() for x in kv]
        elif isinstance(v, list):
            vals = v
        else:
            vals = [v]
        parts.extend(x.decode("latin-1") if isinstance(x, bytes) else str(x) for x in vals)
    return "\n".join(parts)
