"""test_bench.py - the benchmark's CI smoke: bench.py --quick runs against the built controller
and produces every figure, with sane values. Targets are not asserted (no timed assertions)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class BenchSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="kr-bench-smoke-")
        out = os.path.join(cls.tmp.name, "bench.json")
        cmd = [sys.executable, os.path.join(HERE, "bench.py"), "--quick", "--json", out,
               "--workdir", os.path.join(cls.tmp.name, "work")]
        if os.environ.get("KR_BINARY"):
            cmd += ["--binary", os.environ["KR_BINARY"]]
        cls.proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        cls.doc = None
        if cls.proc.returncode == 0:
            with open(out) as f:
                cls.doc = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-3000:])

    def test_machine_is_named(self):
        self.assertTrue(self.doc["machine"]["cpu"])
        self.assertGreater(self.doc["machine"]["nproc"], 0)

    def test_memory_figures(self):
        f = self.doc["figures"]
        self.assertGreater(f["empty"]["rss_kib"], 0)
        for s in f["sizes"]:
            self.assertGreater(s["rss_kib"], 0)
            self.assertGreaterEqual(s["rss_hwm_kib"], s["rss_kib"])
        self.assertIn("delta_kib", f["focus"]["secrets"])

    def test_cold_start_finished(self):
        for s in self.doc["figures"]["sizes"]:
            self.assertIsNotNone(s["readyz_s"])
            self.assertGreater(s["reconciled_s"], 0)
            self.assertIsNotNone(s["restart_reconciled_s"])
            if self.doc["figures"]["rotations_measured"]:
                self.assertEqual(s["ready_count"], s["n"])

    def test_idle_counts(self):
        idle = self.doc["figures"]["focus"]["idle"]
        self.assertGreaterEqual(idle["cpu_s"], 0)
        self.assertIn("writes", idle["api"])
        self.assertGreaterEqual(idle["valkey_total"], 0)

    def test_rotation_figures(self):
        f = self.doc["figures"]
        self.assertTrue(f["rotations_measured"], "the smoke measures rotations")
        lat = f["focus"]["latency"]
        self.assertGreater(lat["samples"], 0)
        self.assertIsNotNone(lat["activate_p99_ms"])
        self.assertIsNotNone(lat["stage_p99_ms"])
        for tp in f["focus"]["throughput"].values():
            self.assertEqual(tp["finished_min"], tp["count"])
            self.assertEqual(tp["failed"], 0)
            self.assertGreater(tp["api_writes_per_rotation"], 0)

    # Request counts are not timings: the steps fix them, so they are held here (README,
    # Performance). A first start that adopts reads one thing per KeyRotation, its consumers'
    # Secret (the KeyRotation comes from the informer cache, `<name>-rotation` is not read
    # with no rotation in flight), and writes two: its status and one Event (KeyAdopted: it
    # adopts the Secret's key and sets the empty key store up, which is not drift, so
    # keyrotator_keystore_repairs_total stays 0 and KeyRotatorKeyStoreDrift silent). A restart reads the Secret again (Secrets are not watched)
    # and writes nothing. Per key store: one GET and one status write by the store pass; per
    # informer one LIST and one WATCH. A rotation writes 14 statuses, 12 Events, 3 Secret
    # writes and 3 Deployment patches. More means a step started reading or writing twice.
    PER_OBJECT_READS = ("get secrets", "get keyrotations.keyrotator.io")
    PER_OBJECT_WRITES = ("update keyrotations.keyrotator.io/status", "create events",
                         "patch events")
    COLD_READS_PER_KEYROTATION = 1
    COLD_WRITES_PER_KEYROTATION = 2
    RESTART_READS_PER_KEYROTATION = 1
    WRITES_PER_ROTATION = 32

    def per_object(self, per, verbs):
        return sum(per["by_verb"].get(v, 0) for v in verbs)

    def test_first_start_reads_one_and_writes_two_per_keyrotation(self):
        for s in self.doc["figures"]["sizes"]:
            if not s["n"]:
                continue
            per = s["cold_api_per_keyrotation"]
            self.assertEqual(s["ready_count"], s["n"], s)
            self.assertLessEqual(self.per_object(per, self.PER_OBJECT_READS),
                                 self.COLD_READS_PER_KEYROTATION, per)
            self.assertLessEqual(self.per_object(per, self.PER_OBJECT_WRITES),
                                 self.COLD_WRITES_PER_KEYROTATION, per)
            # the Secret is read: an adoption that read nothing would not be one
            self.assertGreaterEqual(per["by_verb"].get("get secrets", 0), 1, per)
            self.assertEqual(per["by_verb"].get("list secrets", 0), 0, "Secrets listed")
            self.assertEqual(per["by_verb"].get("watch secrets", 0), 0, "Secrets watched")
            # setting the key stores up is not drift: no repair counted
            self.assertEqual(s["cold_keystore_repairs"], 0, s)

    def test_restart_reads_one_and_writes_nothing_per_keyrotation(self):
        for s in self.doc["figures"]["sizes"]:
            if not s["n"]:
                continue
            per = s["restart_api_per_keyrotation"]
            self.assertLessEqual(self.per_object(per, self.PER_OBJECT_READS),
                                 self.RESTART_READS_PER_KEYROTATION, per)
            self.assertEqual(s["restart_api_writes"], 0, per)

    def test_rotation_writes_do_not_grow(self):
        for tp in self.doc["figures"]["focus"]["throughput"].values():
            self.assertLessEqual(tp["api_writes_per_rotation"], self.WRITES_PER_ROTATION, tp)

    def test_rss_floor_is_below_the_controller(self):
        e = self.doc["figures"]["empty"]
        self.assertIn("floor_rss_kib", e, "bench_rss_floor is built beside the binary")
        self.assertGreater(e["floor_rss_kib"], 0)
        self.assertLess(e["floor_rss_kib"], e["rss_kib"])

    def test_marginal_memory_figure(self):
        sizes = [s for s in self.doc["figures"]["sizes"] if s["n"]]
        self.assertGreaterEqual(len(sizes), 2, "the smoke measures two sizes")
        self.assertIn("marginal_bytes_per_keyrotation", sizes[-1])
        self.assertEqual(sizes[-1]["marginal_from"], sizes[-2]["n"])

    def test_api_cost_beside_every_figure(self):
        cost = self.doc["api_cost"]
        self.assertEqual(cost, {"latency_ms": 0.0, "max_inflight": 0})
        self.assertEqual(self.doc["config"]["apiLatencyMs"], 0.0)
        f = self.doc["figures"]
        for fig in [f["empty"]] + f["sizes"] + self.doc["targets"]:
            self.assertEqual((fig["api_latency_ms"], fig["api_max_inflight"]), (0.0, 0), fig)

    def test_requests_per_keyrotation_first_start_and_restart(self):
        for s in self.doc["figures"]["sizes"]:
            if not s["n"]:
                continue
            for key in ("cold_api_per_keyrotation", "restart_api_per_keyrotation"):
                per = s[key]
                self.assertGreater(per["reads"], 0, key)
                self.assertIn("by_verb", per)
            self.assertEqual(s["restart_api_writes"], s["restart_api_per_keyrotation"][
                "writes"] * s["n"])

    def test_table_lists_the_targets(self):
        names = [t["name"] for t in self.doc["targets"]]
        self.assertTrue(any(n.startswith("RSS, no objects") for n in names))



class ReportUnits(unittest.TestCase):
    """The table's wording of the API server cost and of requests per KeyRotation."""

    def test_cost_label(self):
        import benchreport
        self.assertIn("+0 ms", benchreport.cost_label(0, 0))
        self.assertEqual(benchreport.cost_label(5, 400), "API +5 ms a request, max 400 in flight")

    def test_requests_row(self):
        import benchreport
        per = {"reads": 3.012, "writes": 2.0,
               "by_verb": {"get secrets.x": 2.0, "get keyrotations.keyrotator.io": 1.0,
                           "list keyrotations.keyrotator.io": 0.001,
                           "watch keyrotations.keyrotator.io": 0.001,
                           "update keyrotations.keyrotator.io/status": 1.0,
                           "create events": 1.0, "get keystores.keyrotator.io": 0.01}}
        self.assertEqual(benchreport.requests_row(per, 1000),
                         "3.01 reads + 2.00 writes: get secrets 2.00, create events 1.00, "
                         "get keyrotations 1.00, update keyrotations/status 1.00; in all "
                         "1 lists, 1 watches, get keystores 10")


if __name__ == "__main__":
    unittest.main()
