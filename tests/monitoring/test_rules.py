"""test_rules.py - keyrotator's alerts: manifests/monitoring/keyrotator.rules.yaml and the chart's
PrometheusRule.

- `promtool check rules` on the plain file, and on the chart's rendering for other release
  names and namespaces (the templated selectors must stay valid PromQL);
- the chart's PrometheusRule (release keyrotator in keyrotator-system) has the plain file as
  its spec, so the two never drift apart;
- every metric the alerts name is one the controller exports (or `up`);
- `promtool test rules` on keyrotator.rules.test.yaml: each alert fires on the series it is
  for, with its labels, and stays silent otherwise. promtool compares annotations too; the
  test file gives them where they are templated ($labels, $value), and this driver copies
  the constant ones from the rules (checking them against themselves would prove nothing).

Environment: KR_YAML2JSON (the project's YAML parser), KR_ROOT, PROMTOOL (default: PATH).
Without promtool it fails.
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
import helmlite
import metricnames

YAML2JSON = os.environ.get("KR_YAML2JSON", "")
# Debian's prometheus package has promtool (tests/setup.sh installs it): no skip without it.
PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool") or "promtool"
RULES = ROOT / "manifests" / "monitoring" / "keyrotator.rules.yaml"
RULE_TESTS = HERE / "keyrotator.rules.test.yaml"
CHART = ROOT / "charts" / "keyrotator"


def load_yaml(path):
    out = subprocess.run([YAML2JSON, str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"{path}: does not parse: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def load_yaml_text(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        return load_yaml(f.name)
    finally:
        os.unlink(f.name)


def promtool(*args):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True)


def chart_rule(overrides=None, **kw):
    out = helmlite.render(CHART, YAML2JSON, dict({"prometheusRuleEnabled": True},
                                                 **(overrides or {})), **kw)
    [doc] = load_yaml_text(out["prometheusrule.yaml"])
    return doc


class TestRules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not YAML2JSON:
            raise AssertionError("KR_YAML2JSON not set (CTest sets it)")
        [cls.rules] = load_yaml(RULES)
        cls.alerts = {r["alert"]: r for g in cls.rules["groups"] for r in g["rules"]}

    def test_promtool_check_rules(self):
        out = promtool("check", "rules", str(RULES))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn(f"SUCCESS: {len(self.alerts)} rules found", out.stdout)

    def test_chart_rule_is_the_plain_file(self):
        doc = chart_rule()
        self.assertEqual(doc["kind"], "PrometheusRule")
        self.assertEqual(doc["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(doc["spec"], self.rules,
                         "the chart's PrometheusRule spec differs from "
                         "manifests/monitoring/keyrotator.rules.yaml: render it with "
                         "python3 tests/packaging/helmlite.py charts/keyrotator YAML2JSON "
                         "prometheusrule.yaml prometheusRuleEnabled=true and copy its spec")

    def test_chart_rule_for_other_releases(self):
        # A long release name with dots, another namespace, another threshold: the
        # selectors follow the metrics Service's name, and promtool still parses every rule.
        release = "team.payments-" + "x" * 30
        doc = chart_rule({"alertKeyAgeSeconds": 86400 * 30,
                          "prometheusRuleLabels": {"release": "kube-prometheus-stack"}},
                         release=release, namespace="payments")
        self.assertEqual(doc["metadata"]["labels"]["release"], "kube-prometheus-stack")
        svc = helmlite.render(CHART, YAML2JSON, {}, release=release,
                              namespace="payments")["service.yaml"]
        [service] = load_yaml_text(svc)
        job = service["metadata"]["name"]
        exprs = {r["alert"]: r["expr"] for g in doc["spec"]["groups"] for r in g["rules"]}
        self.assertIn(f'up{{job="{job}",namespace="payments"}}', exprs["KeyRotatorDown"])
        self.assertIn(f'job="{job}"', exprs["KeyRotatorKeyTooOld"])
        self.assertTrue(exprs["KeyRotatorKeyTooOld"].endswith("> 2592000"))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rules.yaml"
            path.write_text(json.dumps(doc["spec"]))
            out = promtool("check", "rules", str(path))
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_alerts_name_only_exported_metrics(self):
        exported = metricnames.exported(ROOT)
        for name, rule in self.alerts.items():
            used = metricnames.in_promql(rule["expr"])
            self.assertTrue(used, name)
            self.assertLessEqual(used, exported | {"up"}, name)

    def test_every_alert_is_documented(self):
        for name, rule in self.alerts.items():
            self.assertIn(rule["labels"]["severity"], ("critical", "warning", "info"), name)
            for key in ("summary", "description"):
                self.assertGreater(len(rule["annotations"].get(key, "")), 20, (name, key))
        readme = (ROOT / "README.md").read_text()
        for name in self.alerts:
            self.assertTrue(f"`{name}`" in readme, f"README: no entry for the alert {name}")

    def test_promtool_test_rules(self):
        [spec] = load_yaml(RULE_TESTS)
        tested = set()
        for case in spec["tests"]:
            for t in case["alert_rule_test"]:
                rule = self.alerts[t["alertname"]]
                for exp in t["exp_alerts"]:
                    tested.add(t["alertname"])
                    if "exp_annotations" in exp:
                        continue
                    templated = [k for k, v in rule["annotations"].items() if "{{" in v]
                    self.assertEqual(templated, [], f"{t['alertname']} at {t['eval_time']}: "
                                     "give exp_annotations, its annotations are templated")
                    exp["exp_annotations"] = rule["annotations"]
        self.assertEqual(tested, set(self.alerts), "alerts no test sees firing")
        spec["rule_files"] = [str(RULES)]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "keyrotator.rules.test.json"
            path.write_text(json.dumps(spec, indent=1))
            out = promtool("test", "rules", str(path))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("SUCCESS", out.stdout)


if __name__ == "__main__":
    unittest.main()
