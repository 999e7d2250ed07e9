"""hostile_servers.py - Prometheus, scrape and Valkey stand-ins on loopback that misbehave for
as long as they run (issue 18), for tests/hostile/test_hostile_controller.py.

Each HostileServer listens on 127.0.0.1 (port chosen by the kernel) and serves every
connection in a thread of its own with one behaviour, so a connection that drips or holds
never keeps the next one out. Drips drip forever (one byte a second) and holds hold until the
peer goes away or the server is closed. Every connection's open and close times are kept, so a
test can tell whether an attack was in progress during a window.

Python 3 standard library only.
"""
import itertools
import select
import socket
import threading
import time

EIGHT_MIB = 8 * 1024 * 1024
SERIES = 1000000
NESTING = 100

JSON_HEADERS = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\n\r\n")
TEXT_HEADERS = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                b"Connection: close\r\n\r\n")


class HostileServer:
    """A TCP server on 127.0.0.1 whose every connection runs behaviour(conn, server)."""

    def __init__(self, name, behaviour):
        self.name, self.behaviour = name, behaviour
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.spans = []  # [opened, closed or None] per connection (time.monotonic())
        self.live = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.addr
        threading.Thread(target=self._accept, name="hostile-" + name, daemon=True).start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            span = [time.monotonic(), None]
            with self.lock:
                self.spans.append(span)
                self.live.add(conn)
            threading.Thread(target=self._serve, args=(conn, span), daemon=True).start()

    def _serve(self, conn, span):
        try:
            self.behaviour(conn, self)
        except OSError:  # the peer went away: the point of most behaviours
            pass
        finally:
            with self.lock:
                self.live.discard(conn)
                span[1] = time.monotonic()
            try:
                conn.close()
            except OSError:
                pass

    def connections(self):
        with self.lock:
            return len(self.spans)

    def open_connections(self):
        """How many connections are open now (a drip or a hold in progress)."""
        with self.lock:
            return len(self.live)

    def active_between(self, t0, t1):
        """Was any connection open at some time in [t0, t1]?"""
        with self.lock:
            return any(o <= t1 and (c is None or c >= t0) for o, c in self.spans)

    def close(self):
        self.stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress (Linux)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            live = list(self.live)
        for c in live:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ---- helpers for behaviours ----

def read_request(conn, srv, limit=65536):
    """Read an HTTP request's head (up to a blank line); its body, if any, is not read."""
    buf = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in buf and len(buf) < limit and not srv.stopping.is_set():
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionResetError("peer closed before its request ended")
        buf += chunk
    conn.settimeout(None)
    return buf


def read_some(conn, wait=0.5):
    """Whatever arrives within `wait` seconds of the first byte (a RESP command)."""
    conn.settimeout(5)
    data = conn.recv(65536)
    if not data:
        raise ConnectionResetError("peer closed")
    conn.settimeout(wait)
    try:
        while True:
            more = conn.recv(65536)
            if not more:
                break
            data += more
    except socket.timeout:
        pass
    conn.settimeout(None)
    return data


def hold(conn, srv):
    """Keep the connection open, answer nothing, discard what arrives, until the peer closes
    it or the server stops."""
    while not srv.stopping.is_set():
        r, _, _ = select.select([conn], [], [], 0.5)
        if r and not conn.recv(65536):
            return


def drip(conn, srv, data, period=1.0):
    """Send the bytes of the iterable `data` one every `period` seconds, until it ends (an
    endless one never does), the peer goes away, or the server stops."""
    for b in data:
        conn.sendall(bytes((b,)) if isinstance(b, int) else b)
        if srv.stopping.wait(period):
            return
        # A closed peer shows as readable with no data; stop at once rather than at the
        # next failed send.
        r, _, _ = select.select([conn], [], [], 0)
        if r and not conn.recv(65536):
            return


def forever(prefix, filler):
    """prefix's bytes, then `filler` (one byte) forever."""
    return itertools.chain(prefix, itertools.repeat(filler[0]))


# ---- Prometheus stand-ins ----

def prom_big(conn, srv):
    """An 8 MiB answer ("[0,0,0,..." as JSON), no Content-Length: only reading can stop it."""
    read_request(conn, srv)
    conn.sendall(JSON_HEADERS)
    chunk = bytearray(b"0," * 32768)
    chunk[0:1] = b"["
    chunk = bytes(chunk)
    for _ in range(EIGHT_MIB // len(chunk)):
        if srv.stopping.is_set():
            return
        conn.sendall(chunk)


def nested_body(levels=NESTING):
    return (b'{"status":"success","data":{"resultType":"vector","result":' +
            b"[" * levels + b"]" * levels + b"}}")


def prom_nested(conn, srv):
    """A small answer whose result is nested 100 levels deep."""
    read_request(conn, srv)
    body = nested_body()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (len(body), body))


def prom_drip(conn, srv):
    """The headers at once, then a body one byte a second, forever (a JSON answer whose
    whitespace never ends)."""
    read_request(conn, srv)
    conn.sendall(JSON_HEADERS)
    drip(conn, srv, forever(b'{"status":"success","data":{"resultType":"vector","result":[',
                            b" "))


# ---- the scrape target ----

def million_series(n=SERIES, name="other_total"):
    """A /metrics page of `n` series of `name`, then the one series the test asks for,
    generated lazily in chunks of about 64 KiB."""
    yield b"# TYPE %s counter\n" % name.encode()
    step = 2000
    for start in range(0, n, step):
        yield "".join('%s{code="401",i="%d"} 1\n' % (name, i)
                      for i in range(start, min(start + step, n))).encode()
    yield b'# TYPE requests_total counter\nrequests_total{code="401"} 5\n'


def scrape_million(conn, srv):
    read_request(conn, srv)
    conn.sendall(TEXT_HEADERS)
    for chunk in million_series():
        if srv.stopping.is_set():
            return
        conn.sendall(chunk)


# ---- Valkey stand-ins ----

def valkey_2gb(conn, srv):
    """Announce a 2 GB bulk reply to the first command, then send nothing more."""
    read_some(conn)
    conn.sendall(b"$2000000000\r\n")
    hold(conn, srv)


def valkey_drip(conn, srv):
    """Answer the first command with a simple string one byte a second that never ends."""
    read_some(conn)
    drip(conn, srv, forever(b"+", b"x"))


def valkey_silent(conn, srv):
    """Accept, read whatever comes, never answer."""
    hold(conn, srv)
