"""The local API server's connections served by one thread: a selectors event loop over
non-blocking sockets that runs the request handler inline on each complete request and feeds
watch streams from per-connection output queues (no thread per connection, no GIL hand-offs).
The bytes on the wire are the threaded server's: the same handler writes them."""

import collections
import heapq
import http.client
import selectors
import socket
import ssl
import time

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
IDLE, DEFERRED, WATCH, CLOSED = range(4)


class NeedMore(BaseException):
    """The received bytes end inside a request: wait for more, then parse it again (a
    BaseException so the handler's own `except Exception` does not answer it)."""


class InputBuffer:
    """A handler's rfile over a connection's received bytes: readline/read as a blocking
    buffered socket file answers them, NeedMore where that file would wait."""

    def __init__(self, conn):
        self.conn = conn
        self.pos = 0

    def readline(self, size=-1):
        buf, pos = self.conn.inbuf, self.pos
        if size is None or size < 0:
            end = buf.find(b"\n", pos)
        else:
            end = buf.find(b"\n", pos, pos + size)
        if end >= 0:
            n = end + 1 - pos
        elif size is not None and size >= 0 and len(buf) - pos >= size:
            n = size
        elif self.conn.eof:
            n = len(buf) - pos
        else:
            raise NeedMore()
        self.pos = pos + n
        return bytes(buf[pos:pos + n])

    def header_lines(self):
        """The header block's CRLF lines (its blank last line included) when all of it is
        here, no line is longer or the lines more than http.client allows, and no line ends
        in a bare LF; None otherwise (readline then reads it line by line)."""
        buf, pos = self.conn.inbuf, self.pos
        if buf.startswith(b"\r\n", pos):
            self.pos = pos + 2
            return [b"\r\n"]
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return None
        block = bytes(buf[pos:end + 2])
        lines = block.split(b"\r\n")
        lines[-1] = b""  # the blank line
        if len(lines) > http.client._MAXHEADERS or block.count(b"\n") != len(lines) - 1:
            return None
        out = []
        for line in lines:
            if len(line) > http.client._MAXLINE - 2:
                return None
            out.append(line + b"\r\n")
        self.pos = end + 4
        return out

    def read(self, n=-1):
        buf, pos = self.conn.inbuf, self.pos
        avail = len(buf) - pos
        if n is None or n < 0 or avail < n:
            if not self.conn.eof:
                raise NeedMore()
            n = avail
        self.pos = pos + n
        return bytes(buf[pos:pos + n])

    def close(self):
        pass


class Output:
    """A handler's wfile: collects what one request writes."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self):
        pass

    def close(self):
        pass


class Direct:
    """A wfile that queues on the connection at once (the 100 Continue interim answer)."""

    def __init__(self, conn):
        self.conn = conn

    def write(self, data):
        self.conn.queue_out(bytes(data))
        return len(data)

    def flush(self):
        pass


class WatchStream:
    """One open watch: the threaded server's watch loop, one pass per loop iteration."""

    def __init__(self, conn, h, w, rt, timeout, bookmarks, interval):
        self.conn, self.h, self.w, self.rt = conn, h, w, rt
        self.bookmarks, self.interval = bookmarks, interval
        start = time.monotonic()
        self.deadline = start + timeout
        self.next_bm = start + interval

    def wake(self):
        return min(self.deadline, self.next_bm) if self.bookmarks else self.deadline

    def service(self, now, stalled):
        w, h, rt = self.w, self.h, self.rt
        if w.closed:
            return self.conn.end_watch(dropped=True)
        if stalled:
            return
        if not (w.queue or now >= self.deadline or (self.bookmarks and now >= self.next_bm)):
            return
        items = list(w.queue)
        w.queue.clear()
        out = [h.chunk(h.event_line(rt, etype, obj, ev)) for etype, obj, ev in items]
        final = now >= self.deadline
        if self.bookmarks and (final or now >= self.next_bm):
            # written after every queued event: a bookmark never goes back behind one
            out.append(h.chunk(h.bookmark(rt, str(h.server.api.store.rv))))
            self.next_bm = now + self.interval
        if final:
            out.append(h.chunk(b""))
        if out:
            self.conn.queue_out(b"".join(out))
        if final:
            self.conn.end_watch(dropped=False)


class Conn:
    """One client connection: received bytes, pending output, the handler and its state."""

    def __init__(self, loop, sock, addr):
        self.loop, self.sock = loop, sock
        self.inbuf = bytearray()
        self.eof = False
        self.out = collections.deque()
        self.off = 0
        self.state = IDLE
        self.closing = False
        self.continue_sent = False
        self.watch = None
        self.events = 0
        self.handshaking = isinstance(sock, ssl.SSLSocket)
        h = loop.handler_cls.__new__(loop.handler_cls)
        h.request = h.connection = sock
        h.client_address = addr
        h.server = loop
        h.peer_user = None
        h.close_connection = True
        h.loop_conn = self
        self.h = h
        self.direct = Direct(self)
        self.update()

    # -- selector interest --
    def update(self):
        if self.state == CLOSED:
            return
        ev = 0
        if self.handshaking:
            ev = self.want
        else:
            if not self.eof and not self.closing:
                ev |= READ
            if self.out:
                ev |= WRITE
        if ev == self.events:
            return
        sel = self.loop.sel
        if self.events == 0:
            sel.register(self.sock, ev, self)
        elif ev == 0:
            sel.unregister(self.sock)
        else:
            sel.modify(self.sock, ev, self)
        self.events = ev

    want = READ

    def handshake(self):
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.want = READ
            return self.update()
        except ssl.SSLWantWriteError:
            self.want = WRITE
            return self.update()
        except (OSError, ValueError):
            return self.close()
        self.handshaking = False
        cert = self.sock.getpeercert()
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    self.h.peer_user = v
        self.update()
        self.on_read()

    # -- input --
    def on_read(self):
        if self.handshaking:
            return self.handshake()
        got = False
        while True:
            try:
                data = self.sock.recv(262144)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                break
            except OSError:
                return self.close()
            if not data:
                self.eof = True
                got = True
                break
            self.inbuf += data
            got = True
            if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                if len(data) < 262144:
                    break
        if not got:
            return
        self.update()
        if self.state == IDLE:
            self.process()

    def process(self):
        """Answers every complete request received, in order, until one needs more bytes,
        starts a watch, waits out a delay or closes the connection."""
        h = self.h
        while self.state == IDLE and not self.closing and (self.inbuf or self.eof):
            closing_before = h.close_connection
            h.rfile = rd = InputBuffer(self)
            h.wfile = wr = Output()
            try:
                h.handle_one_request()
            except NeedMore:
                h.close_connection = closing_before
                h._headers_buffer = []
                break
            except Exception:  # as a connection thread dies: this connection only
                return self.fail()
            del self.inbuf[:rd.pos]
            self.continue_sent = False
            self.queue_out(b"".join(wr.chunks))
            if self.state == IDLE and h.close_connection:
                self.closing = True
        if self.out or self.closing:
            self.flush()  # at once, as the threaded server wrote: no extra epoll_ctl calls
        else:
            self.update()

    # -- delays and watches (called by the handler) --
    def defer(self, seconds, fn):
        self.state = DEFERRED
        self.loop.call_later(seconds, lambda: self.resume(fn))

    def park(self):
        """Waits, answering nothing, until resume_soon (an --max-inflight slot)."""
        self.state = DEFERRED

    def closed(self):
        return self.state == CLOSED

    def resume_soon(self, fn):
        self.loop.call_later(0, lambda: self.resume(fn))

    def resume(self, fn):
        if self.state == CLOSED:
            return
        self.state = IDLE
        h = self.h
        h.wfile = wr = Output()
        try:
            fn()
        except Exception:
            return self.fail()
        self.queue_out(b"".join(wr.chunks))
        if self.state == IDLE:
            if h.close_connection:
                self.close_after_flush()
            else:
                self.process()
        self.update()

    def start_watch(self, h, w, rt, timeout, bookmarks):
        self.state = WATCH
        self.watch = WatchStream(self, h, w, rt, timeout, bookmarks,
                                 h.server.api.args.bookmark_interval)
        self.loop.watches.add(self)

    def end_watch(self, dropped):
        ws, self.watch = self.watch, None
        self.loop.watches.discard(self)
        if ws is None:
            return
        api = self.h.server.api
        api.store.unwatch(ws.w)
        with api.lock:
            api.watches.discard(ws.w)
        if self.state == CLOSED:
            return
        self.state = IDLE
        if dropped:  # no terminating chunk
            self.h.close_connection = True
            self.close()
        else:
            self.h.close_connection = False
            self.loop.ready.append(self)

    # -- output --
    def queue_out(self, data):
        if data and self.state != CLOSED:
            self.out.append(data)
            self.loop.dirty.add(self)

    def flush(self):
        out = self.out
        while out:
            if len(out) > 1 and len(out[0]) - self.off < 262144:  # one send for small ones
                first = memoryview(out.popleft())[self.off:]
                joined = b"".join([first] + list(out))
                out.clear()
                out.append(joined)
                self.off = 0
            try:
                n = self.sock.send(memoryview(out[0])[self.off:])
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError,
                    ssl.SSLWantReadError):
                break
            except OSError:
                return self.close()
            self.off += n
            if self.off >= len(out[0]):
                out.popleft()
                self.off = 0
        if not out and self.closing:
            return self.close()
        self.update()

    def fail(self):
        if self.loop.api.args.verbose:
            import traceback
            traceback.print_exc()
        self.close()

    def close_after_flush(self):
        self.closing = True
        self.loop.dirty.add(self)

    def close(self):
        if self.state == CLOSED:
            return
        if self.watch is not None:
            self.end_watch(dropped=True)
        self.state = CLOSED
        if getattr(self.h, "slot", False):  # closed while served: give its slot back
            self.h.release_slot()
        if self.events:
            self.loop.sel.unregister(self.sock)
            self.events = 0
        self.loop.conns.discard(self)
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class LoopServer:
    """socketserver's face (server_address, socket, serve_forever, shutdown, server_close)
    over one event loop thread."""

    daemon_threads = True
    profiles = None
    profiling = 0

    def __init__(self, address, handler_cls):
        self.handler_cls = handler_cls
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(address)
        self.socket.listen(128)
        self.server_address = self.socket.getsockname()
        self.sel = selectors.DefaultSelector()
        self.conns = set()
        self.watches = set()
        self.dirty = set()
        self.ready = []
        self.timers = []
        self.seq = 0
        self.stopping = False

    def call_later(self, seconds, fn):
        self.seq += 1
        heapq.heappush(self.timers, (time.monotonic() + seconds, self.seq, fn))

    def shutdown(self):
        self.stopping = True

    def accept(self):
        while True:
            try:
                sock, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ssl.SSLError:
                continue
            except OSError:
                return
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            sock.setblocking(False)
            conn = Conn(self, sock, addr)
            self.conns.add(conn)
            if conn.handshaking:
                conn.handshake()

    def timeout(self, poll_interval):
        t = poll_interval
        now = time.monotonic()
        if self.timers:
            t = min(t, self.timers[0][0] - now)
        if not self.api.stalled.is_set():
            for c in self.watches:
                t = min(t, c.watch.wake() - now)
        return max(t, 0)

    def serve_forever(self, poll_interval=0.2):
        self.socket.setblocking(False)
        self.sel.register(self.socket, READ, None)
        while not self.stopping:
            for key, mask in self.sel.select(self.timeout(poll_interval)):
                conn = key.data
                if conn is None:
                    self.accept()
                    continue
                try:
                    if conn.handshaking:
                        conn.handshake()
                        continue
                    if mask & WRITE:
                        conn.flush()
                    if mask & READ and conn.state != CLOSED:
                        conn.on_read()
                except Exception:
                    conn.fail()
            self.run_pending()

    def run_pending(self):
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            heapq.heappop(self.timers)[2]()
        while True:
            stalled = self.api.stalled.is_set()
            for c in list(self.watches):
                if c.watch is not None:
                    try:
                        c.watch.service(now, stalled)
                    except Exception:
                        c.fail()
            ready, self.ready = self.ready, []
            for c in ready:
                if c.state == IDLE:
                    c.process()
            if not self.ready:
                break
        dirty, self.dirty = self.dirty, set()
        for c in dirty:
            if c.state != CLOSED:
                c.flush()

    def server_close(self):
        for c in list(self.conns):
            c.close()
        self.sel.close()
        self.socket.close()
