"""resp.py - the test suite's one Valkey/Redis client (RESP2 over a socket), Python 3 standard
library only.

command() sends one command and returns its reply: simple strings and bulk strings as bytes,
integers as int, arrays as lists, nil as None. pipeline() sends several before reading their
replies; send() and read() are the two halves, for a subscriber's stream. command() and
pipeline() hold a lock, so threads may share a client; send()/read() are the caller's to order.
Error replies raise RespError; transport failures raise OSError (EOFError when the server
closes). decode() turns a reply's bytes into str.
"""
import socket
import ssl
import threading


class RespError(RuntimeError):
    """An error reply from the server (e.g. WRONGPASS, NOAUTH, WRONGTYPE)."""


class Client:
    """One connection to host:port; authenticates and selects db on (re)connect."""

    def __init__(self, host, port, password=None, username=None, db=0, timeout=2.0,
                 tls=None, server_name=None, sentinels=None, master_name=None):
        """tls: an ssl.SSLContext (see tls_context), server_name: the name to check
        (default: host). sentinels ["host:port", ...] with master_name: ask them for the
        master on every (re)connect instead of host:port, and check ROLE."""
        self.host, self.port = host, int(port)
        self.password, self.username, self.db = password, username, int(db)
        self.timeout = timeout  # None: block forever (a subscriber)
        self.tls, self.server_name = tls, server_name
        self.sentinels, self.master_name = sentinels or [], master_name
        self.sock = None
        self.buf = b""
        self.lock = threading.RLock()

    @classmethod
    def from_addr(cls, addr, **kw):
        """addr is "host:port" (as VALKEY_ADDR / keyStore.address)."""
        host, _, port = addr.rpartition(":")
        return cls(host or "127.0.0.1", int(port), **kw)

    def _open(self, host, port):
        sock = socket.create_connection((host, port), timeout=self.timeout)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.server_name or host)
        return sock

    def _ask_sentinels(self):
        last = None
        for addr in self.sentinels:
            h, _, p = addr.rpartition(":")
            s = Client(h, int(p), timeout=self.timeout, tls=self.tls,
                       server_name=self.server_name)
            try:
                got = s.command("SENTINEL", "get-master-addr-by-name", self.master_name)
                if got:
                    return got[0].decode(), int(got[1])
            except (OSError, EOFError, RespError) as e:
                last = e
            finally:
                s.close()
        raise ConnectionError("no sentinel named master %s: %s" % (self.master_name, last))

    def connect(self):
        self.close()
        if self.sentinels:
            self.host, self.port = self._ask_sentinels()
        self.sock = self._open(self.host, self.port)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        if self.password:
            if self.username:
                self._call(("AUTH", self.username, self.password))
            else:
                self._call(("AUTH", self.password))
        if self.db:
            self._call(("SELECT", str(self.db)))
        if self.sentinels and self._call(("ROLE",))[0] != b"master":
            self.close()
            raise ConnectionError("%s:%d is not a master (yet)" % (self.host, self.port))

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
        with self.lock:
            for attempt in (0, 1):
                try:
                    if self.sock is None:
                        self.connect()
                    return self._call(args)
                except (ConnectionError, BrokenPipeError, EOFError):
                    self.close()
                    if attempt:
                        raise
                except RespError as e:  # demoted by a failover: ask the sentinels again
                    if not (self.sentinels and str(e).startswith("READONLY")) or attempt:
                        raise
                    self.close()
                except OSError:
                    self.close()
                    raise
        return None

    def pipeline(self, cmds):
        """Send every command of `cmds` (tuples), then read their replies, in order; an error
        reply raises once every reply is read."""
        with self.lock:
            if self.sock is None:
                self.connect()
            for c in cmds:
                self.send(*c)
            out, err = [], None
            for _ in cmds:
                try:
                    out.append(self.read())
                except RespError as e:
                    err = err or e
            if err is not None:
                raise err
            return out

    def send(self, *args):
        """Write one command without reading its reply (connects first if needed)."""
        if self.sock is None:
            self.connect()
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def read(self):
        """Read one reply (or one message of a subscription)."""
        return self._reply()

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
        self.send(*args)
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


def decode(reply):
    """`reply` with every bytes in it decoded as UTF-8 (lists element by element)."""
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, list):
        return [decode(r) for r in reply]
    return reply


def tls_context(ca=None, cert=None, key=None):
    """A client SSLContext that verifies the server against `ca` (a PEM file), with a
    client certificate when `cert` and `key` are given."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def client_from_env(env, **kw):
    """A Client from VALKEY_ADDR / VALKEY_SENTINELS + VALKEY_MASTER_NAME, VALKEY_PASSWORD,
    VALKEY_USERNAME, VALKEY_DB and VALKEY_TLS_CA / _CERT / _KEY / _SERVER_NAME (files)."""
    tls = None
    if env.get("VALKEY_TLS_CA"):
        tls = tls_context(env["VALKEY_TLS_CA"], env.get("VALKEY_TLS_CERT") or None,
                          env.get("VALKEY_TLS_KEY") or None)
    sentinels = [a for a in env.get("VALKEY_SENTINELS", "").split(",") if a]
    addr = env.get("VALKEY_ADDR") or "127.0.0.1:0"
    host, _, port = addr.rpartition(":")
    return Client(host or "127.0.0.1", int(port), password=env.get("VALKEY_PASSWORD"),
                  username=env.get("VALKEY_USERNAME"), db=int(env.get("VALKEY_DB", "0")),
                  tls=tls, server_name=env.get("VALKEY_TLS_SERVER_NAME") or None,
                  sentinels=sentinels, master_name=env.get("VALKEY_MASTER_NAME"), **kw)
