"""test_dashboard_render.py - tests/tools/dashboard_render.py, which draws docs/dashboard.svg.

A tiny Prometheus stand-in on loopback (http.server) answers /api/v1/query_range with canned
series built from the query (one series per `by (...)` label set, values from the query's
hash), and /api/v1/label/*/values with two jobs (what "All" in Job means), so the renderer runs the repository's dashboard end to end in well under a second. The
SVG must be well-formed XML with one panel group per dashboard panel, each with its title, a
line per series in time series panels and a value per series in stat panels, every Grafana
variable replaced in what reached the server. Every read is bounded: an answer over the size
limit, and one that does not finish in time, become errors drawn in the panel and exit 1.
The committed pictures (docs/dashboard.svg, docs/alerts.svg) parse and hold no key.

Environment: KR_ROOT. No network beyond 127.0.0.1.
"""
import hashlib
import http.server
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import scan_keys

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("KR_ROOT", HERE.parents[1]))
RENDER = ROOT / "tests" / "tools" / "dashboard_render.py"
DASHBOARD = ROOT / "manifests" / "monitoring" / "keyrotator-dashboard.json"
CHART_DASHBOARD = ROOT / "charts" / "keyrotator" / "files" / "keyrotator-dashboard.json"
SVG_NS = "{http://www.w3.org/2000/svg}"
START, END = 1_780_000_000, 1_780_000_000 + 900  # a fixed 15-minute window


def load_renderer():
    spec = importlib.util.spec_from_file_location("dashboard_render", RENDER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def canned(expr, start, end, step):
    """A matrix for `expr`: for `by (a, b)`, two series with a and b set; values a wave from
    the query's hash (non-negative, as the dashboard's are)."""
    m = re.search(r"\bby\s*\(([^)]*)\)", expr)
    labels = [x.strip() for x in m.group(1).split(",")] if m else []
    labels = [x for x in labels if x and x != "le"]
    seed = int(hashlib.sha256(expr.encode()).hexdigest()[:8], 16)
    result = []
    for i in range(2 if labels else 1):
        metric = {k: "%s-%d" % (k, i) for k in labels}
        values, t = [], start
        while t <= end:
            v = 1 + math.sin(t / 120 + seed % 7 + i) + i
            values.append([t, "%g" % v])
            t += step
        result.append({"metric": metric, "values": values})
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


class Fixture(http.server.ThreadingHTTPServer):
    """mode: "ok" (canned), "big" (an answer of 64 KiB of padding), "slow" (headers, then
    nothing for 5 s), "error" (HTTP 400 with Prometheus's error body)."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode, self.queries, self.label_queries = "ok", [], []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path.startswith("/api/v1/label/") and u.path.endswith("/values"):
            # label_values() of the variables, for "All": two jobs scrape keyrotator
            label = u.path.split("/")[4]
            self.server.label_queries.append((label, q.get("match[]")))
            values = {"job": ["keyrotator-metrics", "keyrotator-canary"],
                      "namespace": ["sirius"]}.get(label, [])
            raw = json.dumps({"status": "success", "data": values}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        if u.path != "/api/v1/query_range":
            self.send_error(404)
            return
        self.server.queries.append(q)
        mode = self.server.mode
        if mode == "slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"status":')
            self.wfile.flush()
            time.sleep(5)
            return
        if mode == "error":
            body, code = {"status": "error", "errorType": "bad_data",
                          "error": "parse error: unexpected end of input"}, 400
        elif mode == "big":
            body, code = {"status": "success", "pad": "x" * 65536,
                          "data": {"resultType": "matrix", "result": []}}, 200
        else:
            body, code = canned(q["query"], float(q["start"]), float(q["end"]),
                                float(q["step"])), 200
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def panels(dash):
    for p in dash["panels"]:
        yield p
        if p["type"] == "row" and not p.get("collapsed"):
            yield from p.get("panels", [])


class TestDashboardRender(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Fixture()
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.url = "http://127.0.0.1:%d" % cls.server.server_address[1]
        cls.dash = json.loads(DASHBOARD.read_text())
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.tmp.cleanup()

    def setUp(self):
        self.server.mode, self.server.queries[:] = "ok", []

    def run_cli(self, *extra, dashboard=DASHBOARD):
        out = Path(self.tmp.name) / "d.svg"
        p = subprocess.run(
            [sys.executable, str(RENDER), "--dashboard", str(dashboard), "--prometheus",
             self.url, "--out", str(out), "--start", str(START), "--end", str(END),
             "--scrape-interval", "15s", *extra], capture_output=True, text=True, timeout=60)
        return p, out

    def groups(self, root, cls):
        return [g for g in root.iter(SVG_NS + "g") if g.get("class") == cls]

    def texts(self, g, cls):
        return ["".join(t.itertext()) for t in g.iter(SVG_NS + "text") if t.get("class") == cls]

    def test_every_panel_drawn_with_its_title_and_series(self):
        p, out = self.run_cli("--note", "fixture")
        self.assertEqual(p.returncode, 0, p.stderr)
        root = ET.parse(out).getroot()  # well-formed XML
        self.assertEqual(root.tag, SVG_NS + "svg")
        want = [q for q in panels(self.dash) if q["type"] != "row"]
        drawn = self.groups(root, "panel")
        self.assertEqual(len(drawn), len(want), "one group per panel")
        self.assertEqual([g.get("data-panel-id") for g in drawn], [str(q["id"]) for q in want])
        rows = [q for q in panels(self.dash) if q["type"] == "row"]
        self.assertEqual([self.texts(g, "row-title") for g in self.groups(root, "row")],
                         [[q["title"]] for q in rows])
        for q, g in zip(want, drawn):
            self.assertEqual(self.texts(g, "panel-title"), [q["title"]])
            self.assertEqual(g.get("data-type"), q["type"])
            if q["type"] == "timeseries":
                lines = [e for e in g.iter(SVG_NS + "polyline") if e.get("class") == "series"]
                self.assertGreaterEqual(len(lines), len(q["targets"]), q["title"])
                self.assertTrue(self.texts(g, "x-tick"), q["title"])
                self.assertTrue(self.texts(g, "y-tick"), q["title"])
                legends = self.texts(g, "legend")
                self.assertGreaterEqual(len(legends), len(q["targets"]), q["title"])
                # legendFormat applied: no template braces left
                self.assertFalse([s for s in legends if "{{" in s], q["title"])
            elif q["type"] == "stat":
                self.assertTrue(self.texts(g, "stat-value"), q["title"])
            self.assertEqual(self.texts(g, "panel-message"), [], q["title"])
        # The dashboard's title, the window and the footer.
        all_text = " ".join(root.itertext())
        self.assertIn(self.dash["title"], all_text)
        self.assertIn("fixture", all_text)
        # Every target reached the server, with every Grafana variable replaced, over the
        # window, and $__rate_interval as Grafana derives it from the 15 s scrape interval.
        exprs = [t["expr"] for q in want for t in q["targets"]]
        self.assertEqual(len(self.server.queries), len(exprs))
        for q in self.server.queries:
            self.assertNotIn("$", q["query"])
            self.assertEqual((float(q["start"]), float(q["end"])), (START, END))
            self.assertGreaterEqual(float(q["step"]), 15)
        sent = " ".join(q["query"] for q in self.server.queries)
        # "All" in Job is the jobs keyrotator_build_info lists (the variable has no
        # allValue), never every job Prometheus scrapes
        self.assertIn('job=~"(keyrotator-canary|keyrotator-metrics)"', sent)
        self.assertNotIn('job=~".', sent)
        self.assertIn(("job", "keyrotator_build_info"), self.server.label_queries)
        self.assertIn("vector(7776000)", sent)  # the textbox variable's value
        self.assertIn("[1m]", sent)  # $__rate_interval: max(15s + 15s, 4 x 15s)

    def test_chart_copy_renders_the_same(self):
        p1, out = self.run_cli()
        first = out.read_text()
        p2, out = self.run_cli(dashboard=CHART_DASHBOARD)
        self.assertEqual((p1.returncode, p2.returncode), (0, 0), p1.stderr + p2.stderr)
        self.assertEqual(out.read_text(), first)

    def test_variables_can_be_set(self):
        p, out = self.run_cli("--var", "job=keyrotator-metrics", "--var", "max_key_age=300")
        self.assertEqual(p.returncode, 0, p.stderr)
        sent = " ".join(q["query"] for q in self.server.queries)
        self.assertIn('job=~"keyrotator-metrics"', sent)
        self.assertIn("vector(300)", sent)
        self.assertIn("Key age alert threshold (s): 300", " ".join(
            ET.parse(out).getroot().itertext()))

    def test_state_timeline(self):
        # docs/alerts.svg: ALERTS drawn as a state timeline, one lane per series.
        dash = {"title": "alerts", "panels": [{
            "id": 1, "type": "state-timeline", "title": "ALERTS",
            "gridPos": {"x": 0, "y": 0, "w": 24, "h": 5},
            "targets": [{"refId": "A", "expr": "count by (alertname) (ALERTS)",
                         "legendFormat": "{{alertname}}"}]}]}
        path = Path(self.tmp.name) / "alerts.json"
        path.write_text(json.dumps(dash))
        p, out = self.run_cli(dashboard=path)
        self.assertEqual(p.returncode, 0, p.stderr)
        g, = self.groups(ET.parse(out).getroot(), "panel")
        self.assertEqual(self.texts(g, "legend"), ["alertname-0", "alertname-1"])
        lanes = {e.get("y") for e in g.iter(SVG_NS + "rect") if e.get("class") == "state"}
        self.assertEqual(len(lanes), 2)

    def test_a_failing_query_is_drawn_and_exits_1(self):
        self.server.mode = "error"
        p, out = self.run_cli()
        self.assertEqual(p.returncode, 1)
        self.assertIn("parse error: unexpected end of input", p.stderr)
        root = ET.parse(out).getroot()
        msgs = [self.texts(g, "panel-message") for g in self.groups(root, "panel")
                if g.get("data-type") == "timeseries"]
        self.assertTrue(msgs and all(any("HTTP 400" in s for s in m) for m in msgs), msgs)

    def test_reads_are_bounded_in_size_and_time(self):
        r = load_renderer()
        self.server.mode = "big"
        prom = r.Prometheus(self.url, timeout=5, max_bytes=4096)
        with self.assertRaisesRegex(r.PromError, "larger than 4096 bytes"):
            prom.query_range("up", START, END, 15)
        self.server.mode = "slow"
        prom = r.Prometheus(self.url, timeout=0.5, max_bytes=4096)
        t0 = time.monotonic()
        with self.assertRaises(r.PromError):
            prom.query_range("up", START, END, 15)
        self.assertLess(time.monotonic() - t0, 3)
        with self.assertRaises(ValueError):
            r.Prometheus("file:///etc/passwd")

    def test_committed_pictures(self):
        # docs/dashboard.svg and docs/alerts.svg (drawn by tests/tools/dashboard_demo.py):
        # well-formed, and no key in the key format anywhere in them.
        for name in ("dashboard.svg", "alerts.svg"):
            path = ROOT / "docs" / name
            root = ET.parse(path).getroot()
            self.assertEqual(root.tag, SVG_NS + "svg", name)
            self.assertTrue(self.groups(root, "panel"), name)
            self.assertEqual(scan_keys.scan_text(path.read_text(), path=str(path)), [], name)
        # the scan sees a key drawn in a picture
        key = scan_keys.make_key("sk_", bytes(range(32)))
        self.assertTrue(scan_keys.scan_text("<text>%s</text>" % key, path="t.svg"))

    def test_units_and_legend(self):
        r = load_renderer()
        self.assertEqual(r.fmt_value(0.25, "percentunit"), "25%")
        self.assertEqual(r.fmt_value(0.125, "percentunit"), "12.5%")
        self.assertEqual(r.fmt_value(90, "s"), "1.50 min")
        self.assertEqual(r.fmt_value(0.004, "s"), "4 ms")
        self.assertEqual(r.fmt_value(0.0042, "s"), "4.20 ms")
        self.assertEqual(r.fmt_value(2, "reqps"), "2 req/s")
        self.assertEqual(r.fmt_value(3.0, "short", 0), "3")
        self.assertEqual(r.legend("{{namespace}}/{{name}}", {"namespace": "a", "name": "b"}),
                         "a/b")
        self.assertEqual(r.legend("", {"__name__": "up", "job": "j"}), 'up{job="j"}')


if __name__ == "__main__":
    unittest.main()
