"""A real server's cost, emulated: --max-inflight's limit on API requests served at once.

A request holds a slot from the moment it is taken up until its response is written (its
--latency-ms and any delay included); a watch gives its slot back once its response has
started, since a real kube-apiserver exempts long-running requests. Requests over the limit
wait in arrival order, as API Priority and Fairness queues them (the legacy
max-requests-inflight filter answered 429 instead). Both servers use it: the event loop parks
the connection and resumes it from a timer when a slot frees, the threaded server blocks the
connection's thread."""

import collections
import threading


class Inflight:
    def __init__(self, limit):
        self.limit = limit
        self.busy = 0
        self.waiting = collections.deque()  # loop: (conn, handler, fn); threaded: tickets
        self.cond = threading.Condition()
        self.reset()

    def reset(self):
        self.peak_busy = self.peak_waiting = self.queued = 0

    def _took(self):
        self.busy += 1
        self.peak_busy = max(self.peak_busy, self.busy)

    def _queued(self):
        self.queued += 1
        self.peak_waiting = max(self.peak_waiting, len(self.waiting))

    # -- the event loop: one thread, continuations --
    def enter(self, conn, h, fn):
        """Runs fn now holding a slot (h.slot), or parks conn until release() hands one."""
        with self.cond:
            if self.busy < self.limit and not self.waiting:
                self._took()
                h.slot = True
                run = True
            else:
                self.waiting.append((conn, h, fn))
                self._queued()
                run = False
        if run:
            return fn()
        conn.park()

    # -- the threaded server: the connection's thread waits --
    def acquire(self):
        with self.cond:
            if self.busy >= self.limit or self.waiting:
                ticket = object()
                self.waiting.append(ticket)
                self._queued()
                while self.busy >= self.limit or self.waiting[0] is not ticket:
                    self.cond.wait()
                self.waiting.popleft()
                self.cond.notify_all()  # the next in line checks again
            self._took()

    def release(self):
        resume = []
        with self.cond:
            self.busy -= 1
            while self.waiting and self.busy < self.limit and \
                    isinstance(self.waiting[0], tuple):
                conn, h, fn = self.waiting.popleft()
                if conn.closed():
                    continue
                self._took()
                h.slot = True
                resume.append((conn, fn))
            self.cond.notify_all()
        for conn, fn in resume:
            conn.resume_soon(fn)

    def doc(self):
        with self.cond:
            return {"maxInflight": self.limit, "inflight": self.busy,
                    "waiting": len(self.waiting), "peakInflight": self.peak_busy,
                    "peakWaiting": self.peak_waiting, "queued": self.queued}
