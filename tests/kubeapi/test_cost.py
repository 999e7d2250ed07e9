"""A real server's cost emulated by kubeapi.py: --latency-ms answers every API request that much
later without holding up the others (the event loop's timers; the threaded server's
connection threads), --max-inflight N serves at most N at once and queues the rest, an
established watch counts for neither, and the bytes answered are those of a server without
them. Timings are checked with generous margins for a busy machine: lower bounds strictly (a
request is never answered early), upper bounds loosely.

    cd tests/kubeapi && python3 -m unittest -v test_cost
"""

import shutil
import threading
import time
import unittest

from kubeapi_testlib import TOKEN, Server, request

LATENCY_MS = 50
PATH = "/api/v1/namespaces/default/secrets/cost"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cost"},
          "data": {"k": "dg=="}}


def timed_get(srv, path=PATH):
    t = time.monotonic()
    r = request(srv, "GET", path)
    return time.monotonic() - t, r


def concurrent_gets(srv, n, path=PATH):
    """n GETs, each on its own connection, started together; (seconds for all, replies)."""
    conns = [srv.conn(timeout=30) for _ in range(n)]
    for c in conns:  # connected before the clock starts: only the requests are timed
        c.connect()
    replies = [None] * n
    go = threading.Barrier(n + 1)

    def one(i):
        go.wait()
        replies[i] = request(srv, "GET", path, conn=conns[i])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(60)
    took = time.monotonic() - t0
    for c in conns:
        c.close()
    return took, replies


class CostBase(unittest.TestCase):
    flags = ()
    threaded = False

    @classmethod
    def setUpClass(cls):
        extra = list(cls.flags) + (["--threaded"] if cls.threaded else [])
        cls.srv = Server(extra=extra)
        r = request(cls.srv, "POST", "/api/v1/namespaces/default/secrets", SECRET)
        assert r.status == 201, r.raw
        cls.rv = r.json["metadata"]["resourceVersion"]

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.srv.dir, ignore_errors=True)

    def admin(self, method, path, body=None):
        return request(self.srv, method, "/_kubeapi" + path, body, token=None)


class TestLatency(CostBase):
    flags = ("--latency-ms", str(LATENCY_MS))

    def test_one_get_takes_the_latency(self):
        for _ in range(3):
            took, r = timed_get(self.srv)
            self.assertEqual(r.status, 200, r.raw)
            self.assertGreaterEqual(took, LATENCY_MS / 1000.0)
            self.assertLess(took, 2.0)

    def test_concurrent_gets_wait_in_parallel(self):
        took, replies = concurrent_gets(self.srv, 10)
        self.assertEqual([r.status for r in replies], [200] * 10)
        self.assertGreaterEqual(took, LATENCY_MS / 1000.0)
        # serially it would be 10 x 50 ms; in parallel about 50 ms (0.35 s leaves room for
        # a loaded machine, and is still under the 0.5 s of one after another)
        self.assertLess(took, 0.35, "the latency must not be served one request at a time")

    def test_writes_and_admin(self):
        t = time.monotonic()
        r = request(self.srv, "PUT", PATH, dict(SECRET, data={"k": "dw=="}))
        self.assertEqual(r.status, 200, r.raw)
        self.assertGreaterEqual(time.monotonic() - t, LATENCY_MS / 1000.0)
        doc = self.admin("GET", "/cost").json
        self.assertEqual((doc["latencyMs"], doc["maxInflight"]), (LATENCY_MS, 0))

    def test_watch_pays_the_latency_once(self):
        t = time.monotonic()
        c = self.srv.conn(timeout=10)
        self.addCleanup(c.close)
        c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=5",
                  headers={"Authorization": "Bearer " + TOKEN})
        resp = c.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertGreaterEqual(time.monotonic() - t, LATENCY_MS / 1000.0)
        t = time.monotonic()
        w = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}}
        threading.Thread(target=request, args=(
            self.srv, "POST", "/api/v1/namespaces/default/configmaps", w)).start()
        line = resp.readline()
        self.assertIn(b'"ADDED"', line)
        # the create's reply waits 50 ms, its event does not wait again
        self.assertLess(time.monotonic() - t, 2 * LATENCY_MS / 1000.0 + 0.5)


class TestLatencyThreaded(TestLatency):
    threaded = True


class TestMaxInflight(CostBase):
    flags = ("--latency-ms", str(LATENCY_MS), "--max-inflight", "2")

    def test_requests_over_the_limit_wait_their_turn(self):
        self.admin("POST", "/stats/reset")
        took, replies = concurrent_gets(self.srv, 10)
        self.assertEqual([r.status for r in replies], [200] * 10, "queued, never refused")
        # 10 requests, 2 at a time, 50 ms each: 5 rounds
        self.assertGreaterEqual(took, 5 * LATENCY_MS / 1000.0 * 0.98)
        self.assertLess(took, 3.0)
        doc = self.wait_slots_free()
        self.assertEqual(doc["maxInflight"], 2)
        self.assertEqual(doc["peakInflight"], 2)
        self.assertGreaterEqual(doc["queued"], 7)

    def wait_slots_free(self):
        """The slot is given back once a reply is written, which the threaded server may
        finish just after the client has read it: poll, with a deadline."""
        deadline = time.monotonic() + 5
        while True:
            doc = self.admin("GET", "/cost").json
            if doc["inflight"] == 0:
                return doc
            self.assertLess(time.monotonic(), deadline, "a slot stays taken after the GETs")
            time.sleep(0.02)

    def test_watches_do_not_hold_a_slot(self):
        conns = []
        for _ in range(3):  # more open watches than slots
            c = self.srv.conn(timeout=10)
            conns.append(c)
            self.addCleanup(c.close)
            c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=5",
                      headers={"Authorization": "Bearer " + TOKEN})
            self.assertEqual(c.getresponse().status, 200)
        took, r = timed_get(self.srv)
        self.assertEqual(r.status, 200)
        self.assertLess(took, 2.0, "a GET waits for no watch")
        self.wait_slots_free()

    def test_clients_gone_before_their_answers_leave_no_slot_taken(self):
        conns = [self.srv.conn(timeout=10) for _ in range(6)]
        for c in conns:
            c.request("GET", PATH, headers={"Authorization": "Bearer " + TOKEN})
        for c in conns:
            c.close()  # before the answers
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            doc = self.admin("GET", "/cost").json
            if doc["inflight"] == 0 and doc["waiting"] == 0:
                break
            time.sleep(0.05)
        self.assertEqual((doc["inflight"], doc["waiting"]), (0, 0))
        took, r = timed_get(self.srv)
        self.assertEqual(r.status, 200)
        self.assertLess(took, 2.0)


class TestMaxInflightThreaded(TestMaxInflight):
    threaded = True


class TestSameBytes(unittest.TestCase):
    """The same requests answered by a plain server and by one with both flags: the bodies
    are equal once the values that differ between two servers (uid, timestamps, Date) are
    set aside, and the headers but Date are equal."""

    def exchange(self, srv):
        out = []
        steps = [("POST", "/api/v1/namespaces/default/configmaps",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"},
                   "data": {"a": "1"}}),
                 ("GET", "/api/v1/namespaces/default/configmaps/same", None),
                 ("GET", "/api/v1/namespaces/default/configmaps?limit=1", None),
                 ("GET", "/api/v1/namespaces/default/configmaps/missing", None),
                 ("PUT", "/api/v1/namespaces/default/configmaps/same",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"},
                   "data": {"a": "2"}}),
                 ("GET", "/version", None),
                 ("DELETE", "/api/v1/namespaces/default/configmaps/same", None)]
        varying = []  # the created object's uid and creationTimestamp
        for method, path, body in steps:
            r = request(srv, method, path, body)
            md = (r.json or {}).get("metadata") or {}
            if not varying:
                varying = [md[k].encode() for k in ("uid", "creationTimestamp")]
            raw = r.raw
            for v in varying:
                raw = raw.replace(v, b"X")
            headers = [(k, v) for k, v in r.headers.items() if k != "Date"]
            out.append((r.status, headers, raw))
        return out

    def test_bytes_unchanged(self):
        got = []
        for extra in ([], ["--latency-ms", "20", "--max-inflight", "1"]):
            srv = Server(extra=extra)
            try:
                got.append(self.exchange(srv))
            finally:
                srv.stop()
                shutil.rmtree(srv.dir, ignore_errors=True)
        self.assertEqual(got[0], got[1])


if __name__ == "__main__":
    unittest.main()
