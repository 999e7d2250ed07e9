#!/usr/bin/env python3
"""soak.py - keyrotator's soak with invariants (issue #10): minutes of rotations on a short
schedule on the simulated cluster (tests/sim) while a chaos loop kills the controller, restarts
Valkey (with and without data loss) and injects API faults; a checker verifies the promise
continuously and a scanner looks for raw keys in everything the run produced.

    tests/py tests/soak/soak.py --minutes 10          # the README's soak
    tests/py tests/soak/soak.py --minutes 1 --quick   # the ctest smoke (soak_smoke)

Exit 0: zero invariant violations; 1: violations (listed, also in the JSON report); 2: usage.
See tests/soak/README.md for what is checked and how.
"""
import argparse
import glob
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import cluster
import e2e_lib
import scan_keys
from soak_chaos import Chaos, Controllers
from soak_check import Checker, Target, Violations, key_id
from soak_observe import Observer, Triggers

NS = cluster.NAMESPACE
KR_PATH = e2e_lib.KR_PATH % NS
PLAIN_SECRET, PLAIN_SECRET_KEY = "plain-api-key", "PLAIN_API_KEY"


class SoakCluster(cluster.Cluster):
    """tests/sim's cluster with a second api Service, for the plaintext-layout KeyRotation."""

    def _simulator(self):
        self.state_dir = os.path.join(self.root, "sim")
        services = os.path.join(self.state_dir, "services.json")
        p = self._spawn("simulator", self.simulator_argv("sirius-api=0", "plain-api=0"))
        cluster.wait_for(lambda: self._alive(p, "simulator") or os.path.exists(services), 20,
                         "the simulator")
        with open(services) as f:
            ports = json.load(f)
        self.api_port, self.plain_port = ports["sirius-api"], ports["plain-api"]
        self.api_url = "http://127.0.0.1:%d" % self.api_port
        self.plain_url = "http://127.0.0.1:%d" % self.plain_port

    def deploy_plain(self, rate):
        """plain-api (plaintext layout, its own set) and its consumers plain-ui, plain-engine
        reading plain-api-key/PLAIN_API_KEY, which the controller bootstraps."""
        self.create_deployment("plain-api", "sim/api", [
            {"name": "VALKEY_ADDR", "value": "127.0.0.1:%d" % self.valkey_port},
            {"name": "KEY_STORE_AS", "value": "plaintext"},
            {"name": "ACTIVE_SET", "value": "plain_keys:active"},
            {"name": "META_KEY", "value": "plain_key:{id}:meta"}], replicas=1)
        for name in ("plain-ui", "plain-engine"):
            self.create_deployment(name, "sim/client", [
                {"name": "API_URL", "value": self.plain_url}, {"name": "NAME", "value": name},
                {"name": "RATE", "value": str(rate)},
                {"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                    "name": PLAIN_SECRET, "key": PLAIN_SECRET_KEY}}}], replicas=1)


def targets(single):
    out = [Target("sirius-service-key", cluster.SECRET, cluster.SECRET_KEY, "sha256",
                  "api_keys:active", "api_key:{id}:meta", "api_keys:bootstrap",
                  [["sirius-api"], ["sirius-ui"], ["sirius-engine"]])]
    if not single:
        out.append(Target("plain-service-key", PLAIN_SECRET, PLAIN_SECRET_KEY, "plaintext",
                          "plain_keys:active", "plain_key:{id}:meta", "plain_keys:bootstrap",
                          [["plain-api"], ["plain-ui"], ["plain-engine"]]))
    return out


def key_store(sc, t):
    """The KeyStore of target `t` (its layout on the one Valkey); its keyStoreRef."""
    return sc.create_key_store(t.name.split("-")[0] + "-valkey", store_as=t.store_as,
                               active_set=t.active_set, meta_key=t.meta_key,
                               bootstrap_key=t.bootstrap_key)


def keyrotation(t, key_store_ref, api_url):
    names = ("api", "ui", "engine")
    return {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
            "metadata": {"name": t.name, "namespace": NS},
            "spec": {"secretRef": {"name": t.secret, "key": t.secret_key},
                     "keyStoreRef": key_store_ref,
                     "key": {"prefix": "sk_", "bytes": 32},
                     "stages": [{"name": names[i], "timeout": "120s",
                                 "workloads": [{"kind": "Deployment", "name": w} for w in ws]}
                                for i, ws in enumerate(t.stages)],
                     "validationPeriod": "3s", "schedule": "@hourly", "historyLimit": 100,
                     "verify": {"url": api_url + "/api/v1/ping", "header": "X-API-Key"}}}


class Log:
    """The soak's own output: stdout and soak.log (scanned for keys at the end)."""

    def __init__(self, path, t0):
        self.f, self.t0, self.lock = open(path, "a", buffering=1), t0, threading.Lock()

    def __call__(self, msg):
        line = "[%7.1fs] %s" % (time.monotonic() - self.t0, msg)
        with self.lock:
            print(line, flush=True)
            self.f.write(line + "\n")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="chaos time (default 10)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke: faster chaos and triggers, shorter convergence deadlines")
    ap.add_argument("--single", action="store_true", help="only the sha256 KeyRotation")
    ap.add_argument("--chaos", help="only these chaos kinds, comma-separated (default: all; "
                                    "see soak_chaos.Chaos)")
    ap.add_argument("--seed", type=int, help="random seed (default: time)")
    ap.add_argument("--report", help="JSON report path (default: <tmp>/keyrotator-soak-report"
                                     ".json)")
    ap.add_argument("--workdir", help="run directory (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("--binary", help="keyrotator binary (default: $KR_BINARY or build/)")
    args = ap.parse_args(argv)
    if args.minutes <= 0:
        ap.error("--minutes must be positive")
    if args.binary:
        os.environ["KR_BINARY"] = args.binary
    args.seed = args.seed if args.seed is not None else int(time.time())
    args.report = args.report or os.path.join(tempfile.gettempdir(),
                                              "keyrotator-soak-report.json")
    return args


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.root = args.workdir or tempfile.mkdtemp(prefix="kr-soak-")
        os.makedirs(self.root, exist_ok=True)
        self.t0 = time.monotonic()
        self.log = Log(os.path.join(self.root, "soak.log"), self.t0)
        self.violations = Violations(self.t0)
        self.targets = targets(args.single)
        self.sc = None
        self.threads = []

    # ---- set-up ----
    def up(self):
        a = self.args
        self.log("soak: seed %d, %s min of chaos, run dir %s, binary %s" % (
            a.seed, a.minutes, self.root, e2e_lib.binary()))
        self.sc = SoakCluster(os.path.join(self.root, "cluster"), seed_key=True, client_rate=5,
                              rollout_delay=0.2)
        self.sc.__enter__()
        if not a.single:
            self.sc.deploy_plain(rate=5)
        fx = types.SimpleNamespace(kubeconfig=self.sc.kubeconfig, namespace=NS)
        self.ctls = Controllers(fx, self.root, self.log,
                                extra=["--keystore-check-interval", "2s", "--workers", "2"])
        self.checker = Checker(self.targets, self.sc.valkey, self.sc.state_dir,
                               self.violations, self.log,
                               repair_deadline=60.0 if a.quick else 90.0)
        self.checker.keys[key_id(self.sc.bootstrap_key)] = self.sc.bootstrap_key
        self.observer = Observer(self, period=0.3)
        self.sc.opt_in(cluster.SECRET, self.targets[0].name)  # seeded: adopted, not created
        for t in self.targets:
            api_url = self.sc.plain_url if t.store_as == "plaintext" else self.sc.api_url
            code, res = self.sc.api("POST", KR_PATH + "?soak=1", keyrotation(
                t, key_store(self.sc, t), api_url))
            if code != 201:
                raise RuntimeError("creating KeyRotation %s: HTTP %d %s" % (t.name, code, res))
        self.ctls.start_mode("single")
        self.observer.wait_settled(self.targets, 90)
        self.log("soak: cluster up, %d KeyRotation(s) adopted/bootstrapped; chaos starts" %
                 len(self.targets))

    def run(self):
        a = self.args
        self.checker.start()
        self.observer.start()
        self.triggers = Triggers(self, (8, 12) if a.quick else (20, 30))
        self.triggers.start()
        self.chaos = Chaos(self.sc, self.ctls, self.checker, self.rng,
                           (2, 5) if a.quick else (4, 12), self.log, kinds=a.chaos)
        self.chaos.start()
        self.t_chaos = time.monotonic()
        end = self.t_chaos + a.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(10, max(0.1, end - time.monotonic())))
            self.log("soak: %s" % self.progress())
        self.chaos.stop()
        self.triggers.stop()
        self.chaos_s = time.monotonic() - self.t_chaos
        self.fault_hits = self.chaos.calm()
        self.log("soak: chaos over after %.0fs; suspending the KeyRotations and waiting for "
                 "every one to settle" % self.chaos_s)
        if not self.ctls.running():
            self.ctls.start_mode("single")
        for t in self.targets:
            self.observer.patch_spec(t, {"suspend": True})
        try:
            self.observer.wait_settled(self.targets, 120 if a.quick else 240)
        except TimeoutError as e:
            self.violations.add("converged", "end", "not converged after chaos: %s" % e)
        self.checker.stop()
        self.checker.check_counters()
        self.observer.stop()
        self.observer.final_scrape()
        self.stop_codes = self.ctls.stop_all()

    def progress(self):
        st = self.observer.summary()
        return "rotations %s, chaos %d actions, violations %d, open repair windows %d" % (
            st, sum(self.chaos.counts.values()), len(self.violations.list()),
            len(self.checker.open_windows()))

    # ---- the end ----
    def scan(self):
        """Every raw key ever seen in a Secret, and anything shaped like a key, in every log,
        Event, status, metrics scrape and the soak's own output."""
        o = self.observer
        o.dump_api_objects()
        files = []
        for pat in ("controller-*.log", "events-*.json", "status.jsonl", "metrics-*.prom",
                    "soak.log"):
            files += sorted(glob_in(self.root, pat))
        for name in ("kubeapi.log", "simulator.log", "redis.log"):
            files.append(os.path.join(self.sc.root, name))
        files.append(os.path.join(self.sc.state_dir, "events.jsonl"))
        files += sorted(glob_in(os.path.join(self.sc.state_dir, "pods"), "*/log"))
        files = [f for f in files if os.path.exists(f)]
        keys = list(self.checker.keys.values())
        findings = scan_keys.scan_paths(files, keys=keys)
        for f in findings:
            self.violations.add("I4 no raw key in output", "%s:%d" % (
                os.path.relpath(f.path, self.root), f.line), str(f))
        return {"files": len(files), "known_keys": len(keys),
                "bytes": sum(os.path.getsize(f) for f in files), "findings": len(findings)}

    def report(self, scan):
        o, ch, ck = self.observer, self.chaos, self.checker
        windows = ck.window_report()
        lat = [w["repair_s"] for w in windows if w["repair_s"] is not None]
        rots = o.rotation_report()
        rep = {
            "machine": machine(), "seed": self.args.seed, "quick": self.args.quick,
            "duration_s": round(time.monotonic() - self.t0, 1),
            "chaos_s": round(self.chaos_s, 1),
            "keyrotations": rots,
            "rotations_completed": sum(r["succeeded"] for r in rots.values()),
            "rollbacks": sum(r["rolled_back"] for r in rots.values()),
            "rotations_metric": o.metric_totals(),
            "triggers_sent": self.triggers.sent,
            "faults_injected": dict(sorted(ch.counts.items())),
            "faults_injected_total": sum(ch.counts.values()),
            "fault_requests_hit": dict(sorted(self.fault_hits.items())),
            "chaos_errors": ch.errors,
            "controller_starts": self.ctls.starts,
            "controller_unexpected_exits": self.ctls.exits,
            "controller_sigterm_exit_codes": self.stop_codes,
            "data_loss_windows": windows,
            "max_repair_latency_s": max(lat) if lat else None,
            "mean_repair_latency_s": round(sum(lat) / len(lat), 2) if lat else None,
            "checks": ck.stats["checks"], "checker": ck.stats,
            "key_scan": scan,
            "violations": self.violations.list(),
        }
        return rep

    def down(self):
        if self.sc is not None:
            self.sc.down()


def glob_in(root, pat):
    return glob.glob(os.path.join(root, pat))


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         "?")
    except OSError:
        model = "?"
    return "%s, %d CPUs, %s" % (socket.gethostname(), os.cpu_count() or 0, model)


def render(rep):
    lines = ["", "==== keyrotator soak report ====",
             "machine:            %s" % rep["machine"],
             "duration:           %.0fs (chaos %.0fs), seed %d" % (
                 rep["duration_s"], rep["chaos_s"], rep["seed"]),
             "rotations:          %d completed, %d rolled back (status.history); metric "
             "keyrotator_rotations_total %s" % (rep["rotations_completed"], rep["rollbacks"],
                                                 rep["rotations_metric"])]
    for name, r in rep["keyrotations"].items():
        lines.append("  %-20s %s" % (name, json.dumps(r, sort_keys=True)))
    lines.append("faults injected:    %d %s" % (rep["faults_injected_total"],
                                                json.dumps(rep["faults_injected"])))
    lines.append("API requests hit:   %s" % json.dumps(rep["fault_requests_hit"]))
    lines.append("controller starts:  %d; unexpected exits %s" % (
        rep["controller_starts"], rep["controller_unexpected_exits"]))
    lines.append("repair after data loss: %d windows, max %s s, mean %s s" % (
        len(rep["data_loss_windows"]), rep["max_repair_latency_s"],
        rep["mean_repair_latency_s"]))
    c = rep["checker"]
    lines.append("checks:             %d (Valkey unreachable in %d); max active keys %s" % (
        c["checks"], c["valkey_unreachable_checks"], c["max_active"]))
    lines.append("consumer requests:  %d ok, %d 401s (%d inside data-loss windows), %d pods" % (
        c["ok_total"], c["unauthorized_total"], c["unauthorized_excused"],
        c["consumer_pods_seen"]))
    s = rep["key_scan"]
    lines.append("key scan:           %d files, %d bytes, %d known keys, %d findings" % (
        s["files"], s["bytes"], s["known_keys"], s["findings"]))
    lines.append("invariant violations: %d" % len(rep["violations"]))
    for v in rep["violations"]:
        lines.append("  [%s] %s: %s (first %.1fs, last %.1fs, %d checks)" % (
            v["invariant"], v["subject"], v["detail"], v["first_s"], v["last_s"], v["checks"]))
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as for Ctrl-C
    soak = Soak(args)
    ok = False
    try:
        soak.up()
        soak.run()
        scan = soak.scan()
        rep = soak.report(scan)
        text = render(rep)
        leaks = scan_keys.scan_text(text + json.dumps(rep), keys=list(soak.checker.keys.values()))
        if leaks:  # never print it: say so instead
            rep["violations"].append({"invariant": "I4 no raw key in output", "subject": "report",
                                      "detail": "%d raw keys in the report" % len(leaks),
                                      "first_s": 0, "last_s": 0, "checks": 1})
            text = "(report withheld: it contains a raw key)"
        with open(args.report, "w") as f:
            json.dump(rep, f, indent=2, sort_keys=True)
        print(text)
        print("JSON report: %s" % args.report)
        ok = not rep["violations"]
    finally:
        soak.down()
        if ok and not args.keep:
            shutil.rmtree(soak.root, ignore_errors=True)
        else:
            print("run directory kept: %s" % soak.root)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
