"""resp.py - a tiny Valkey/Redis client (RESP2 over a socket), Python 3 standard library only.

Enough for the simulated cluster and its tests: AUTH, SELECT, PING, SISMEMBER, SADD, SREM,
HSET, HGET, HGETALL, DEL, FLUSHALL through command(). One connection, not thread-safe (use one
client per thread). Error replies raise RespError; transport failures raise OSError.
"""
import socket


class RespError(Exception):
    """An error reply from the server (e.g. WRONGPASS, NOAUTH, WRONGTYPE)."""


class Client:
    """One connection to host:port; authenticates and selects db on (re)connect."""

    def __init__(self, host, port, password=None, username=None, db=0, timeout=2.0):
        self.host, self.port = host, int(port)
        self.password, self.username, self.db = password, username, int(db)
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    @classmethod
    def from_addr(cls, addr, **kw):
        """addr is "host:port" (as VALKEY_ADDR / keyStore.address)."""
        host, _, port = addr.rpartition(":")
        return cls(host or "127.0.0.1", int(port), **kw)

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.buf = b""
        if self.password:
            if self.username:
                self._call(("AUTH", self.username, self.password))
            else:
                self._call(("AUTH", self.password))
        if self.db:
            self._call(("SELECT", str(self.db)))

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def command(self, *args):
        """Send one command, return its reply (bytes, int, list, None); reconnect once on a
        dropped connection (every command we use is idempotent)."""
        for attempt in (0, 1):
            try:
                if self.sock is None:
                    self.connect()
                return self._call(args)
            except (ConnectionError, BrokenPipeError, EOFError):
                self.close()
                if attempt:
                    raise
            except OSError:
                self.close()
                raise
        return None

    # Convenience wrappers.
    def ping(self):
        return self.command("PING") == b"PONG"

    def sismember(self, key, member):
        return self.command("SISMEMBER", key, member) == 1

    def hset(self, key, *pairs):
        return self.command("HSET", key, *pairs)

    def hget(self, key, field):
        v = self.command("HGET", key, field)
        return None if v is None else v.decode()

    def hgetall(self, key):
        v = self.command("HGETALL", key) or []
        return {v[i].decode(): v[i + 1].decode() for i in range(0, len(v), 2)}

    def _call(self, args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("valkey %s:%d closed the connection" % (self.host, self.port))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("valkey %s:%d closed the connection" % (self.host, self.port))
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError("unexpected reply type %r" % kind)
