"""test_krtest.py - the suite's shared test package (krtest) on its own: polling with a deadline,
free ports, the RESP client against a real redis-server, temp dirs and KR_KEEP_TMP, and the
runner's exit code for a skip (what CTest's SKIP_RETURN_CODE relies on)."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import krtest
from krtest import resp
from krtest.controller import metric_sum, parse_metrics
from krtest.servers import start_redis, start_sentinel


class Poll(unittest.TestCase):
    def test_wait_for_returns_the_value(self):
        calls = []
        self.assertEqual(krtest.wait_for(lambda: calls.append(1) or len(calls) >= 3 and "v",
                                         5, "three calls", 0.001), "v")
        self.assertEqual(len(calls), 3)

    def test_wait_for_names_what_timed_out(self):
        t0 = time.monotonic()
        with self.assertRaisesRegex(TimeoutError, "waiting for the moon"):
            krtest.wait_for(lambda: False, 0.2, "the moon", 0.01)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)

    def test_wait_for_lets_a_failure_through_at_once(self):
        def dead():
            raise RuntimeError("child exited")
        t0 = time.monotonic()
        with self.assertRaisesRegex(RuntimeError, "child exited"):
            krtest.wait_for(dead, 30, "never")
        self.assertLess(time.monotonic() - t0, 5)

    def test_free_port_is_bindable_and_listening_sees_a_listener(self):
        port = krtest.free_port()
        self.assertFalse(krtest.listening(port))
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen(1)
            self.assertTrue(krtest.listening(port))


class Redis(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = krtest.mkdtemp("kr-krtest-")
        cls.proc, cls.port = start_redis(
            lambda cmd: krtest.spawn(cmd, os.path.join(cls.root, "redis.log")), cls.root,
            password="pw")

    @classmethod
    def tearDownClass(cls):
        krtest.stop(cls.proc)
        krtest.rmtree(cls.root)

    def client(self, **kw):
        return resp.Client("127.0.0.1", self.port, **kw)

    def test_replies_by_type(self):
        c = self.client(password="pw")
        try:
            self.assertTrue(c.ping())
            self.assertEqual(c.command("DEL", "s", "h"), 0)
            self.assertEqual(c.command("SADD", "s", "a", "b"), 2)
            self.assertEqual(sorted(c.command("SMEMBERS", "s")), [b"a", b"b"])
            self.assertEqual(c.hset("h", "f", 1), 1)
            self.assertEqual(c.hgetall("h"), {"f": "1"})
            self.assertIsNone(c.command("GET", "missing"))
            self.assertEqual(resp.decode([b"x", [b"y", 3, None]]), ["x", ["y", 3, None]])
            with self.assertRaisesRegex(resp.RespError, "WRONGTYPE"):
                c.command("GET", "s")
        finally:
            c.close()

    def test_auth_is_required_and_refused_when_wrong(self):
        c = self.client()
        with self.assertRaisesRegex(resp.RespError, "NOAUTH"):
            c.command("GET", "x")
        c.close()
        with self.assertRaises(resp.RespError):
            self.client(password="wrong").command("PING")

    def test_pipeline_keeps_order_and_reports_an_error_after_reading_all(self):
        c = self.client(password="pw")
        try:
            self.assertEqual(c.pipeline([("SET", "k", "1"), ("INCR", "k"), ("GET", "k")]),
                             [b"OK", 2, b"2"])
            with self.assertRaises(resp.RespError):
                c.pipeline([("SADD", "k", "x"), ("INCR", "k")])
            self.assertEqual(c.command("GET", "k"), b"3")  # the stream is still in step
        finally:
            c.close()

    def test_a_taken_port_is_not_mistaken_for_a_started_server(self):
        with socket.socket() as s:  # a port something else holds: redis exits, no retry
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            with self.assertRaisesRegex(RuntimeError, "did not start"):
                start_redis(lambda cmd: krtest.spawn(cmd, os.path.join(self.root, "x.log")),
                            self.root, port=s.getsockname()[1], timeout=5)


class SentinelAndTls(unittest.TestCase):
    """A TLS-only master (mutual TLS) and a redis-sentinel that names it, as the key store's
    Sentinel tests start them."""

    def test_tls_master_and_sentinel(self):
        root = krtest.mkdtemp("kr-krtest-sentinel-")
        procs = []
        try:
            certs = os.path.join(root, "certs")
            subprocess.run(["sh", os.path.join(krtest.REPO, "tests", "tools",
                                               "make_tls_certs.sh"), certs], check=True,
                           capture_output=True)
            ctx = resp.tls_context(certs + "/ca.crt", certs + "/client.crt",
                                   certs + "/client.key")

            def launch(name):
                def go(cmd):
                    p = krtest.spawn(cmd, os.path.join(root, name + ".log"))
                    procs.append(p)
                    return p
                return go
            _, port = start_redis(launch("redis"), root, tls_context=ctx, password="pw",
                                  tls=(certs, "mtls"))
            with self.assertRaises((OSError, EOFError)):  # no plaintext, no client cert
                resp.Client("127.0.0.1", port, password="pw", timeout=2).command("PING")
            c = resp.Client("127.0.0.1", port, password="pw", tls=ctx)
            self.assertTrue(c.ping())
            c.close()
            sdir = os.path.join(root, "sentinel")
            os.makedirs(sdir)
            _, sport = start_sentinel(launch("sentinel"), sdir, port, "m", password="pw",
                                      tls=(certs, "mtls"), tls_context=ctx)
            s = resp.Client("127.0.0.1", sport, tls=ctx)
            self.assertEqual(s.command("SENTINEL", "get-master-addr-by-name", "m"),
                             [b"127.0.0.1", str(port).encode()])
            s.close()
        finally:
            for p in procs:
                krtest.stop(p)
            krtest.rmtree(root)


class TempDirs(unittest.TestCase):
    def test_removed_unless_kept(self):
        for keep, exists in (("", False), ("1", True)):
            d = krtest.mkdtemp("kr-krtest-tmp-")
            old = os.environ.get("KR_KEEP_TMP")
            os.environ["KR_KEEP_TMP"] = keep
            try:
                krtest.rmtree(d)
            finally:
                if old is None:
                    del os.environ["KR_KEEP_TMP"]
                else:
                    os.environ["KR_KEEP_TMP"] = old
            self.assertEqual(os.path.isdir(d), exists)
            if exists:
                os.rmdir(d)


class Metrics(unittest.TestCase):
    def test_parse_and_sum(self):
        m = parse_metrics('# HELP x y\na_total{k="1",s="a b"} 2\na_total{k="2"} 3\nb 1.5\n')
        self.assertEqual(metric_sum(m, "a_total"), 5)
        self.assertEqual(metric_sum(m, "a_total", k="2"), 3)
        self.assertEqual(metric_sum(m, "b"), 1.5)


class Runner(unittest.TestCase):
    """krtest.run exits 0, 1 or 77 (a skip and no failure): what CTest turns into pass, fail
    and skipped."""

    def run_module(self, body):
        with tempfile.TemporaryDirectory(prefix="kr-krtest-run-") as d:
            with open(os.path.join(d, "t_mod.py"), "w") as f:
                f.write("import unittest\n\nclass T(unittest.TestCase):\n" + body)
            return subprocess.run([sys.executable, "-m", "krtest.run", "t_mod"], cwd=d,
                                  capture_output=True, text=True, timeout=60).returncode

    def test_exit_codes(self):
        ok = "    def test_a(self):\n        pass\n"
        skip = "    def test_b(self):\n        self.skipTest('optional')\n"
        fail = "    def test_c(self):\n        self.fail('no')\n"
        gap = "    @unittest.expectedFailure\n    def test_d(self):\n        self.fail('gap')\n"
        fixed = "    @unittest.expectedFailure\n    def test_e(self):\n        pass\n"
        self.assertEqual(self.run_module(ok), 0)
        self.assertEqual(self.run_module(ok + gap), 77)
        self.assertEqual(self.run_module(ok + fixed), 1)
        self.assertEqual(self.run_module(ok + skip), 77)
        self.assertEqual(self.run_module(ok + skip + fail), 1)


if __name__ == "__main__":
    unittest.main()
