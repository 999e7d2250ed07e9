"""test_dashboard.py - the Grafana dashboard (manifests/monitoring/keyrotator-dashboard.json, the
chart's files/keyrotator-dashboard.json).

Every query names only metrics the controller exports (read from the kr_metric_row tables
under controller/, plus Prometheus's own `up`), and parses: the queries, with Grafana's
variables replaced by values, become recording rules in a temporary file that
`promtool check rules` parses offline. The panels the README promises are there.

Environment: KR_ROOT, PROMTOOL (default: PATH). Without promtool it fails.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("KR_ROOT", HERE.parents[1]))
import metricnames

# Debian's prometheus package has promtool (tests/setup.sh installs it): no skip without it.
PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool") or "promtool"
DASHBOARD = ROOT / "manifests" / "monitoring" / "keyrotator-dashboard.json"
CHART_DASHBOARD = ROOT / "charts" / "keyrotator" / "files" / "keyrotator-dashboard.json"
# Jobs a Prometheus scrapes besides keyrotator's: "All" in Job must match none of them.
OTHER_JOBS = ["node-exporter", "kubelet", "apiserver", "prometheus", "x"]
# What Grafana puts in place of its variables, for promtool (any valid value will do).
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
             "$max_key_age": "7776000", "$job": ".+", "$namespace": ".+"}
# Panel titles the README's "Dashboard" section describes.
PANELS = ["Controllers up", "Leader", "Versions", "Rotations in the last 24h",
          "Rotations by outcome", "Rotation duration", "401 rate during rotations",
          "Key age per KeyRotation", "Reconciles by result", "Reconcile error ratio",
          "Reconcile latency", "Work queue depth", "Work queue adds and retries",
          "Key store repairs and dropped Events", "KeyRotations by phase",
          "KeyRotations not Ready", "Key stores up", "Key age against maxKeyAge",
          "Stage time left before its timeout"]


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def substitute(expr):
    for var in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(var, VARIABLES[var])
    if "$" in expr:
        raise AssertionError(f"an unknown Grafana variable in {expr}")
    return expr


class TestDashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dash = json.loads(DASHBOARD.read_text())
        cls.panels = [p for p in all_panels(cls.dash["panels"]) if p["type"] != "row"]
        cls.exprs = [(p["title"], t["expr"]) for p in cls.panels for t in p["targets"]]

    def test_identity_and_variables(self):
        self.assertEqual(self.dash["uid"], "keyrotator")
        names = [v["name"] for v in self.dash["templating"]["list"]]
        self.assertEqual(names, ["datasource", "job", "namespace", "max_key_age"])
        for p in self.panels:
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             p["title"])
        ids = [p["id"] for p in all_panels(self.dash["panels"])]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are unique")

    def test_the_promised_panels(self):
        self.assertEqual([p["title"] for p in self.panels], PANELS)
        for p in self.panels:
            self.assertTrue(p["targets"], p["title"])
            self.assertGreater(len(p.get("description", "")), 20, p["title"])

    def test_queries_name_only_exported_metrics(self):
        exported = metricnames.exported(ROOT)
        used = set()
        for title, expr in self.exprs:
            names = metricnames.in_promql(expr)
            unknown = names - exported - {"up"}
            self.assertEqual(unknown, set(), f"{title}: {expr}")
            used |= names
        for v in self.dash["templating"]["list"]:
            q = v.get("definition", "")
            used |= {m for m in re.findall(r"label_values\((\w+)", q)}
        # Every family the controller exports is on the dashboard.
        families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
        for name in exported:
            if not name.endswith(("_sum", "_count")):
                base = re.sub(r"_bucket$", "", name)
                self.assertIn(base, families, f"{name} is on no panel")

    def test_all_jobs_means_keyrotators_jobs(self):
        # Grafana's "All" puts a variable's allValue in the query when it has one, else the
        # regex of the values it listed (here the jobs with keyrotator_build_info). An
        # allValue such as ".+" made `sum(up{job=~"$job"})` count every target Prometheus has.
        for path in (DASHBOARD, CHART_DASHBOARD):
            dash = json.loads(path.read_text())
            [job] = [v for v in dash["templating"]["list"] if v["name"] == "job"]
            self.assertEqual(job["definition"], "label_values(keyrotator_build_info, job)")
            self.assertTrue(job.get("includeAll") and job.get("multi"), path)
            all_value = job.get("allValue")
            if all_value is not None:
                for other in OTHER_JOBS:
                    self.assertIsNone(re.fullmatch(all_value, other),
                                      f"{path.name}: All in Job ({all_value!r}) matches the "
                                      f"job {other!r}")
        # and every series any query selects is limited to $job: none reads every job
        for title, expr in self.exprs:
            for name in metricnames.in_promql(expr):
                for m in re.finditer(r"(?<![\w:$])%s(?![\w:])(\{[^{}]*\})?" % re.escape(name),
                                     expr):
                    self.assertIn('job=~"$job"', m.group(1) or "", f"{title}: {name} in {expr}")

    def test_the_name_check_can_fail(self):
        # The check above sees a metric the controller does not export.
        names = metricnames.in_promql('sum(rate(keyrotator_rotations_totl{job=~"$job"}[5m]))')
        self.assertEqual(names, {"keyrotator_rotations_totl"})
        self.assertNotIn("keyrotator_rotations_totl", metricnames.exported(ROOT))

    def test_promtool_parses_every_query(self):
        rules = [{"record": f"keyrotator:dashboard_query:{i}", "expr": substitute(e)}
                 for i, (_, e) in enumerate(self.exprs)]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "dashboard.rules.json"
            path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
            out = subprocess.run([PROMTOOL, "check", "rules", str(path)],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn(f"SUCCESS: {len(rules)} rules found", out.stdout)
            # and a broken query is refused (the check can fail)
            path.write_text(json.dumps({"groups": [{"name": "d", "rules": [
                {"record": "x:y", "expr": "sum(rate(keyrotator_leader[5m])"}]}]}))
            out = subprocess.run([PROMTOOL, "check", "rules", str(path)],
                                 capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0)


if __name__ == "__main__":
    unittest.main()
