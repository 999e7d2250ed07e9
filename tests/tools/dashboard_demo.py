#!/usr/bin/env python3
"""dashboard_demo.py - real data for docs/dashboard.svg: a demo run, then the dashboard drawn.

Starts the simulated cluster of tests/demo.sh (tests/sim/cluster.py: the local API server,
redis-server as Valkey, the workload simulator running Sirius's api/ui/engine pods with real
traffic), the real controller (`keyrotator run`), and Debian's prometheus, which scrapes the
controller's /metrics (job keyrotator-metrics, every 5 s, the target labelled
namespace=keyrotator-system as a ServiceMonitor in that namespace would, honor_labels as the
README asks) and the sirius-api pods (job sirius-api, every second; the KeyRotation's 401
analysis queries it), and evaluates manifests/monitoring/keyrotator.rules.yaml. Then: the
administrator's KeyStore and Secret opt-in, a KeyRotation at demo speed (as tests/demo.sh), a
quiet minute, two rotations, one rolled back (sirius-ui made to crash on its new pods with the
simulator's keyrotator-sim/fail-rollout annotation), the consumer fixed and a last rotation,
a quiet stretch. Finally tests/tools/dashboard_render.py draws
manifests/monitoring/keyrotator-dashboard.json over the run's window with that Prometheus.

    tests/py tests/tools/dashboard_demo.py [--binary build/controller/keyrotator]
        [--out docs/dashboard.svg] [--alerts-svg docs/alerts.svg] [--alerts-out FILE] [--keep]

--alerts-svg draws the rules' ALERTS series over the same window (a one-panel state
timeline, not part of the dashboard). --alerts-out writes the alerts the rules had firing or pending at the end (Prometheus's
/api/v1/alerts: names, labels, summaries). The picture holds only metric values and label
values; before writing it, the run checks that no key the Secret held during the run, and
nothing shaped like a key, is in it. Everything started is stopped on exit; --keep keeps the
work directory (logs, TSDB). Takes about six minutes.
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import dashboard_render
import scan_keys
import simulator
from krtest import REPO, spawn, stop, wait_for
from krtest.controller import Controller, binary
from krtest.poll import free_port

NS = "sirius"
KR = "sirius-service-key"
KRS = "/apis/keyrotator.io/v1alpha1/namespaces/%s/keyrotations" % NS
STORES = "/apis/keyrotator.io/v1alpha1/namespaces/%s/keystores" % NS
DEPLOY = "/apis/apps/v1/namespaces/%s/deployments" % NS
SECRET = "/api/v1/namespaces/%s/secrets/sirius-api-key" % NS
MERGE = "application/merge-patch+json"
SCRAPE = 5  # seconds: the controller's scrape interval, and the renderer's
KEY_AGE_THRESHOLD = 600  # the dashboard's "Key age alert threshold" variable, at demo scale


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            env[k] = v.strip("'")
    return env


class Demo:
    def __init__(self, work, bin_path):
        self.work, self.bin = work, bin_path
        self.cluster_dir = os.path.join(work, "cluster")
        self.cluster_up = False
        self.ctl = self.prom = None
        self.keys = set()  # every key the Secret held during the run

    # ---- processes ----
    def start(self):
        log("starting the simulated cluster (API server, Valkey, simulator, Sirius pods)")
        subprocess.run([sys.executable, os.path.join(REPO, "tests", "sim", "cluster.py"), "up",
                        "--dir", self.cluster_dir, "--seed-key", "--detach"],
                       check=True, stdout=subprocess.DEVNULL, timeout=150)
        self.cluster_up = True
        self.env = read_env(os.path.join(self.cluster_dir, "cluster.env"))
        self.kube = simulator.Kube(self.env["KUBECONFIG"], self.work)
        log("starting the controller: keyrotator run")
        self.ctl = Controller(self.env["KUBECONFIG"], os.path.join(self.work, "controller.log"),
                              namespace=NS, instance="keyrotator-0", binary_path=self.bin,
                              extra=["--keystore-check-interval", "10s"])
        self.ctl.start(ready_timeout=60)
        log("starting prometheus (the controller every %ds, the api pods every 1s, the alert "
            "rules)" % SCRAPE)
        self.prom_port = free_port()
        self.prom_url = "http://127.0.0.1:%d" % self.prom_port
        cfg = os.path.join(self.work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(PROMETHEUS_YML % {
                "scrape": SCRAPE, "metrics": "127.0.0.1:%d" % self.ctl.metrics_port,
                "rules": os.path.join(REPO, "manifests", "monitoring", "keyrotator.rules.yaml"),
                "endpoints": os.path.join(self.env["SIM_STATE_DIR"], "endpoints",
                                          "sirius-api.json")})
        self.prom = spawn(["prometheus", "--config.file", cfg, "--web.listen-address",
                           "127.0.0.1:%d" % self.prom_port, "--storage.tsdb.path",
                           os.path.join(self.work, "prometheus-data")],
                          os.path.join(self.work, "prometheus.log"))
        wait_for(lambda: self._alive() and self.prom_get("/-/ready") is not None, 60,
                 "prometheus ready")
        self.t_start = time.time()
        wait_for(lambda: self.targets_up() >= 2, 60, "prometheus scraping the controller and "
                 "the api pods")

    def _alive(self):
        if self.prom.poll() is not None:
            raise RuntimeError("prometheus exited; see %s/prometheus.log" % self.work)
        self.ctl.check()
        return True

    def stop(self):
        if self.prom is not None:
            stop(self.prom)
        if self.ctl is not None and self.ctl.proc is not None:
            stop(self.ctl.proc)
        if self.cluster_up:
            subprocess.run([sys.executable, os.path.join(REPO, "tests", "sim", "cluster.py"),
                            "down", "--dir", self.cluster_dir], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)

    # ---- Prometheus and the API ----
    def prom_get(self, path):
        try:
            with urllib.request.urlopen(self.prom_url + path, timeout=5) as r:
                return json.loads(r.read(1 << 20)) if path.startswith("/api/") else r.status
        except (OSError, ValueError):
            return None

    def targets_up(self):
        doc = self.prom_get("/api/v1/query?query=sum%20by%20(job)%20(up)") or {}
        return len([s for s in (doc.get("data") or {}).get("result", [])
                    if float(s["value"][1]) > 0])

    def api(self, method, path, body=None, ctype="application/json", ok=(200, 201)):
        code, obj = self.kube.request(method, path, body, ctype)
        if code not in ok:
            raise RuntimeError("%s %s: HTTP %d %s" % (method, path, code, obj))
        return obj

    def status(self):
        return self.api("GET", KRS + "/" + KR).get("status") or {}

    def note_key(self):
        data = self.api("GET", SECRET).get("data") or {}
        if "SIRIUS_API_KEY" in data:
            self.keys.add(base64.b64decode(data["SIRIUS_API_KEY"]).decode())

    # ---- the story ----
    def setup(self):
        log("the administrator's KeyStore, the Secret opted in, the KeyRotation")
        self.api("POST", STORES, {
            "apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyStore",
            "metadata": {"name": "sirius-valkey", "namespace": NS},
            "spec": {"address": self.env["VALKEY_ADDR"], "database": 0,
                     "layout": {"activeSet": "api_keys:active", "metaKey": "api_key:{id}:meta",
                                "bootstrapKey": "api_keys:bootstrap", "storeAs": "sha256"}}})
        self.api("PATCH", SECRET, {"metadata": {"annotations": {
            "keyrotator.io/keyrotation": KR}}}, MERGE)
        self.note_key()
        stage = {"timeout": "60s"}
        self.api("POST", KRS, {
            "apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
            "metadata": {"name": KR, "namespace": NS},
            "spec": {
                "secretRef": {"name": "sirius-api-key", "key": "SIRIUS_API_KEY"},
                "keyStoreRef": {"kind": "KeyStore", "name": "sirius-valkey"},
                "key": {"prefix": "sk_", "bytes": 32},
                "maxKeyAge": "1h",
                "stages": [dict(stage, name=n, workloads=[{"kind": "Deployment",
                                                             "name": "sirius-" + n}])
                           for n in ("api", "ui", "engine")],
                "analysis": {"prometheus": {
                    "url": self.prom_url,
                    "query": 'sum(rate(http_requests_total{job="sirius-api",code="401"}[10s]))'
                             " or vector(0)"},
                    "interval": "2s", "threshold": 0.5, "failureLimit": 2, "errorLimit": 4},
                "validationPeriod": "6s",
                "verify": {"url": self.env["API_SERVICE_URL"] + "/api/v1/ping",
                           "header": "X-API-Key"},
                "historyLimit": 10}})
        wait_for(lambda: (self.status().get("currentKey") or {}).get("id"), 60,
                 "the controller to adopt the current key")

    def rotate(self, trigger, want):
        n = len(self.status().get("history") or [])
        log("rotation %r (expecting %s)" % (trigger, want))
        self.api("PATCH", KRS + "/" + KR, {"metadata": {"annotations": {
            "keyrotator.io/rotate": trigger}}}, MERGE)

        def done():
            self._alive()
            st = self.status()
            h = st.get("history") or []
            if len(h) > n and st.get("phase") in ("Idle", "Failed"):
                return h[-1]
            return None
        h = wait_for(done, 240, "rotation %s to end" % trigger, interval=0.5)
        self.note_key()
        log("  ended: %s" % h.get("outcome"))
        if h.get("outcome") != want:
            raise RuntimeError("rotation %s: outcome %s, expected %s" % (
                trigger, h.get("outcome"), want))

    def quiet(self, seconds, why):
        log("%ds quiet (%s)" % (seconds, why))
        end = time.monotonic() + seconds
        wait_for(lambda: self._alive() and time.monotonic() >= end, seconds + 5, why,
                 interval=0.5)

    def story(self):
        self.setup()
        self.quiet(45, "an idle controller")
        self.rotate("demo-1", "Succeeded")
        self.quiet(30, "between rotations")
        self.rotate("demo-2", "Succeeded")
        self.quiet(30, "between rotations")
        log("sirius-ui made to crash on every new pod (keyrotator-sim/fail-rollout)")
        self.api("PATCH", DEPLOY + "/sirius-ui", {
            "metadata": {"annotations": {"keyrotator-sim/fail-rollout": "true"}},
            "spec": {"progressDeadlineSeconds": 3}}, MERGE)
        self.rotate("demo-3", "RolledBack")
        self.quiet(30, "the rolled-back rotation's KeyRotation Failed")
        log("sirius-ui fixed")
        self.api("PATCH", DEPLOY + "/sirius-ui", {"metadata": {"annotations": {
            "keyrotator-sim/fail-rollout": None}}}, MERGE)
        self.rotate("demo-4", "Succeeded")
        self.quiet(45, "after the last rotation")
        self.t_end = time.time()

    def alerts(self):
        doc = self.prom_get("/api/v1/alerts") or {}
        return [{"name": a["labels"].get("alertname"), "state": a.get("state"),
                 "labels": a["labels"], "summary": a.get("annotations", {}).get("summary")}
                for a in (doc.get("data") or {}).get("alerts", [])]

    def render_alerts(self, out):
        svg, errors = dashboard_render.render(
            ALERTS_DASHBOARD, dashboard_render.Prometheus(self.prom_url), self.t_start,
            self.t_end, scrape_interval=1, width=1200, note=(
                "Drawn by tests/tools/dashboard_render.py from Prometheus's ALERTS series during "
                "the demo run of docs/dashboard.svg (tests/tools/dashboard_demo.py)."))
        if errors:
            raise RuntimeError("the ALERTS query failed: " + "; ".join(errors))
        self.check_no_keys(svg, out)
        self.write(out, svg)

    def check_no_keys(self, svg, path):
        """No key the Secret held (verbatim or base64), nothing in the key format
        (tests/security/scan_keys.py: prefix, base62 body, CRC-32 digits)."""
        if not self.keys:
            raise RuntimeError("no key was read from the Secret: the check below means nothing")
        found = scan_keys.scan_text(svg, keys=sorted(self.keys), path=path)
        if found:
            raise RuntimeError("key material in the picture: %s" % found)

    def write(self, out, svg):
        with open(out + ".tmp", "w") as f:
            f.write(svg)
        os.replace(out + ".tmp", out)
        log("wrote %s (%d bytes; %d keys checked absent)" % (out, len(svg), len(self.keys)))

    def render(self, out):
        note = ("Drawn by tests/tools/dashboard_render.py from the dashboard's own queries "
                "against Prometheus during a demo run (tests/tools/dashboard_demo.py): the "
                "simulated cluster and the real controller; not a Grafana screenshot. Key age "
                "alert threshold set to %d s for the demo's minutes." % KEY_AGE_THRESHOLD)
        svg, errors = dashboard_render.render(
            json.load(open(os.path.join(REPO, "manifests", "monitoring",
                                        "keyrotator-dashboard.json"))),
            dashboard_render.Prometheus(self.prom_url), self.t_start, self.t_end,
            variables={"job": "keyrotator-metrics", "max_key_age": str(KEY_AGE_THRESHOLD)},
            scrape_interval=SCRAPE, note=note)
        if errors:
            raise RuntimeError("queries failed: " + "; ".join(errors))
        self.check_no_keys(svg, out)
        self.write(out, svg)


# Not the dashboard: a one-panel Grafana dashboard drawn to docs/alerts.svg, the alerts of
# manifests/monitoring/keyrotator.rules.yaml pending or firing during the run (ALERTS).
ALERTS_DASHBOARD = {
    "title": "keyrotator alerts during the demo run",
    "panels": [{
        "id": 1, "type": "state-timeline", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 5},
        "title": "ALERTS from manifests/monitoring/keyrotator.rules.yaml, evaluated by "
                 "Prometheus every second",
        "targets": [{"refId": "A", "expr": "ALERTS",
                     "legendFormat": "{{alertname}} ({{severity}}): {{alertstate}}"}]}]}

PROMETHEUS_YML = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - '%(rules)s'
scrape_configs:
  - job_name: keyrotator-metrics
    scrape_interval: %(scrape)ds
    honor_labels: true
    static_configs:
      - targets: ['%(metrics)s']
        labels: {namespace: keyrotator-system, instance: keyrotator-0}
  - job_name: sirius-api
    file_sd_configs:
      - files: ['%(endpoints)s']
        refresh_interval: 1s
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", help="keyrotator (default: $KR_BINARY, then build/)")
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "dashboard.svg"))
    ap.add_argument("--alerts-svg", default=os.path.join(REPO, "docs", "alerts.svg"))
    ap.add_argument("--alerts-out", help="the alerts firing or pending at the end (JSON)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="keyrotator-dashboard.")
    demo = Demo(work, a.binary or binary())
    try:
        demo.start()
        demo.story()
        demo.render(a.out)
        demo.render_alerts(a.alerts_svg)
        alerts = demo.alerts()
        for al in alerts:
            log("alert %s %s: %s" % (al["name"], al["state"], al["summary"]))
        if a.alerts_out:
            with open(a.alerts_out, "w") as f:
                json.dump(alerts, f, indent=1)
                f.write("\n")
    finally:
        demo.stop()
        if a.keep:
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
