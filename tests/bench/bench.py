#!/usr/bin/env python3
"""bench.py - keyrotator's benchmark: the controller's memory, cold start, idle cost, reaction
latency and rotation throughput against the local API server (tests/kubeapi), a real
redis-server and instant rollouts (rollout.py), N KeyRotations each with its Secret and three
single-replica Deployments. Prints one table and writes the same figures as JSON.

    python3 tests/bench/bench.py [--quick] [--sizes 100,1000,10000] [--repeat 3] [--json F]
                                 [--latency-ms MS] [--max-inflight N]

Every figure is measured --repeat times and the median reported. --quick is the CI smoke
(a few KeyRotations, one repeat, well under a minute); it checks only that figures exist.
--latency-ms and --max-inflight make the local API server cost what a real one does (each
request answered MS later, at most N served at once); the report gives them beside every
figure."""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

from benchcluster import start_redis
from benchlib import REPO, machine, median, now
from krtest import resp
from benchrun import Run
import benchreport
import seed


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="keyrotator to run (default: $KEYROTATOR_BINARY, "
                    "build/controller/keyrotator, build-bench/controller/keyrotator)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke: 20 KeyRotations, 1 repeat, short windows (< 60 s)")
    ap.add_argument("--sizes", help="numbers of KeyRotations (default 100,1000; "
                    "--quick: 10,20)")
    ap.add_argument("--large", action="store_true",
                    help="also N=10000 (run --large-repeat times; minutes, see README)")
    ap.add_argument("--large-repeat", type=int, default=1,
                    help="runs of sizes above the focus size (default 1)")
    ap.add_argument("--cold-timeout", type=float,
                    help="give up a cold start after this many seconds (the size is cut "
                    "short; default 180, plus 6 requests per KeyRotation at --latency-ms "
                    "spread over the workers)")
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="the API server answers every request this much later, as a real "
                    "kube-apiserver (authn, admission, etcd) would; default 0")
    ap.add_argument("--max-inflight", type=int, default=0,
                    help="the API server serves at most N requests at once and queues the "
                    "rest, as --max-requests-inflight; default 0, no limit")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; median reported")
    ap.add_argument("--json", help="JSON output (default: <build dir>/bench.json)")
    ap.add_argument("--focus", type=int, help="size for idle, Secrets, latency and "
                    "throughput (default 1000, or the largest size below it)")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--secrets", type=int, default=10000, help="unrelated Secrets to add")
    ap.add_argument("--secret-kib", type=int, default=10)
    ap.add_argument("--latency-samples", type=int, default=100,
                    help="sequential rotations per repeat for the latency percentiles")
    ap.add_argument("--throughput", default="100,1000",
                    help="simultaneous rotations (each at most the focus size)")
    ap.add_argument("--heavy-repeat", type=int, default=1,
                    help="repeats that add the unrelated Secrets and run 1000+ simultaneous "
                    "rotations (default 1: each takes a minute with the Python API server)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--namespaces", type=int, default=10)
    ap.add_argument("--no-leader-elect", action="store_true",
                    help="run without --leader-elect (default: elect, as deployed)")
    ap.add_argument("--no-rotations", action="store_true", help="skip rotation figures")
    ap.add_argument("--status-grace", type=float, default=10.0,
                    help="seconds after all reconciles with no status written before the "
                    "controller is taken for an observe-only build")
    ap.add_argument("--workdir", help="keep logs and state here (default: a temp dir, "
                    "removed unless --keep)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes = a.sizes or "10,20"
        a.repeat, a.idle_seconds, a.secrets = 1, 6.0, 500
        a.latency_samples, a.throughput, a.namespaces = 10, "20", 2
    a.sizes = a.sizes or "100,1000"
    a.sizes = sorted({int(x) for x in a.sizes.split(",") if x.strip()} |
                     ({10000} if a.large else set()))
    a.throughput = [int(x) for x in a.throughput.split(",") if x.strip()]
    if a.focus is None:
        below = [n for n in a.sizes if n <= 1000]
        a.focus = max(below) if below else min(a.sizes)
    a.throughput = [c for c in a.throughput if c <= a.focus]
    if a.cold_timeout is None:
        a.cold_timeout = 180.0 + max(a.sizes) * 6 * a.latency_ms / 1000.0 / max(1, a.workers)
    return a


def find_binary(a):
    for p in (a.binary, os.environ.get("KEYROTATOR_BINARY"),
              os.path.join(REPO, "build", "controller", "keyrotator"),
              os.path.join(REPO, "build-bench", "controller", "keyrotator")):
        if p and os.access(p, os.X_OK):
            return os.path.abspath(p)
    sys.exit("bench: no keyrotator binary; build first (cmake --build build) or pass --binary")


def rss_floor(binary, repeat):
    """Median VmRSS/RssAnon/RssFile (KiB) of tests/bench/rss_floor.c as built beside the
    binary (<build>/tests/bench_rss_floor): keyrotator's libraries loaded, libcurl initialised.
    None when it was not built."""
    exe = os.path.join(os.path.dirname(os.path.dirname(binary)), "tests", "bench_rss_floor")
    if not os.access(exe, os.X_OK):
        return None
    runs = []
    for _ in range(max(repeat, 3)):
        p = subprocess.run([exe], capture_output=True, text=True, timeout=30)
        if p.returncode == 0:
            runs.append(json.loads(p.stdout))
    if not runs:
        return None
    return {k: median([r[k] for r in runs]) for k in runs[0]}


def git_commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def secs(x):
    return "n/a" if x is None else "%.3f" % x


class Bench:
    def __init__(self, args, binary, root):
        self.args, self.binary, self.root = args, binary, root
        self.redis, self.valkey_port = start_redis(root)
        self.valkey = resp.Client("127.0.0.1", self.valkey_port, timeout=10)
        self.runs = {}     # n -> [run.out per repeat]
        self.rotations = not args.no_rotations

    def log(self, msg):
        sys.stderr.write("bench: %s\n" % msg)
        sys.stderr.flush()

    def seed(self, n):
        d = os.path.join(self.root, "seed-%d" % n)
        t = now()
        seed.build(d, n, self.args.namespaces, self.valkey_port)
        self.log("seeded %d KeyRotations in %.1f s" % (n, now() - t))
        return d

    def run_size(self, n, seed_dir, rep):
        a = self.args
        run = Run(self, n, seed_dir, "%d-%d" % (n, rep))
        try:
            run.cold_start()
            o = run.out
            self.log("N=%d #%d: readyz %s s, reconciled %s s, all Ready %s s (%d), RSS %d KiB"
                     % (n, rep + 1, secs(o["readyz_s"]), secs(o["reconciled_s"]),
                        secs(o["all_ready_s"]), o["ready_count"], o["rss"]["VmRSS"]))
            if n and o["all_ready_s"] is None:
                if run.watch.with_status == 0 and self.rotations:
                    self.log("no KeyRotation got a status: rotation figures skipped "
                             "(observe-only controller?)")
                    self.rotations = False
                elif run.watch.with_status:
                    self.log("N=%d: cold start did not finish within --cold-timeout %.0f s; "
                             "this size is cut short" % (n, a.cold_timeout))
                    return run.out
            if n == a.focus:
                self.focus(run, rep)
            if n:
                run.restart()
                self.log("N=%d #%d: restart to all reconciled %s s" % (
                    n, rep + 1, secs(o["restart_reconciled_s"])))
        finally:
            run.close()
        return run.out

    def focus(self, run, rep):
        a = self.args
        heavy = rep < a.heavy_repeat
        if rep == 0:
            self.log("idle for %.0f s" % a.idle_seconds)
            run.idle(a.idle_seconds, 3)
        if heavy:
            self.log("adding %d unrelated %d KiB Secrets" % (a.secrets, a.secret_kib))
            run.unrelated_secrets(a.secrets, a.secret_kib)
        if not self.rotations or not run.n:
            return
        self.log("latency: %d rotations one at a time" % a.latency_samples)
        run.latency(a.latency_samples)
        for c in a.throughput:
            if c >= 1000 and not heavy:
                continue
            self.log("throughput: %d rotations at once" % c)
            run.throughput(c)
            tp = run.out["throughput"][str(c)]
            self.log("  %d finished in %s s, %.1f API writes each" % (
                tp["finished"], "%.2f" % tp["seconds"] if tp["seconds"] else "n/a",
                tp["api_writes_per_rotation"]))

    def main(self, save):
        """Runs every size (saving the figures so far after each); returns the seconds."""
        a = self.args
        t0 = now()
        self.log("API server: %s" % benchreport.cost_label(a.latency_ms, a.max_inflight))
        seeds = {0: self.seed(0)}
        for rep in range(a.repeat):
            self.runs.setdefault(0, []).append(self.run_size(0, seeds[0], rep))
        for n in a.sizes:
            seeds[n] = self.seed(n)
            reps = a.repeat if n <= a.focus else min(a.repeat, a.large_repeat)
            for rep in range(reps):
                self.runs.setdefault(n, []).append(self.run_size(n, seeds[n], rep))
            shutil.rmtree(seeds[n], ignore_errors=True)
            save(now() - t0)
        return now() - t0

    def close(self):
        self.valkey.close()
        self.redis.stop()


def main(argv=None):
    a = parse_args(argv if argv is not None else sys.argv[1:])
    binary = find_binary(a)
    root = a.workdir or tempfile.mkdtemp(prefix="kr-bench-")
    os.makedirs(root, exist_ok=True)
    out = a.json or os.path.join(os.path.dirname(os.path.dirname(binary)), "bench.json")
    b = Bench(a, binary, root)
    floor = rss_floor(binary, a.repeat)
    docs = []

    def save(elapsed):
        doc = benchreport.summarize(b.runs, a, b.rotations, floor)
        doc.update({"machine": machine(), "commit": git_commit(), "binary": binary,
                    "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"),
                    "elapsed_s": round(elapsed, 1),
                    "config": {"sizes": a.sizes, "repeat": a.repeat, "focus": a.focus,
                               "largeRepeat": a.large_repeat, "coldTimeout": a.cold_timeout,
                               "heavyRepeat": a.heavy_repeat,
                               "workers": a.workers, "leaderElect": not a.no_leader_elect,
                               "idleSeconds": a.idle_seconds, "secrets": a.secrets,
                               "secretKiB": a.secret_kib, "latencySamples": a.latency_samples,
                               "throughput": a.throughput, "quick": a.quick,
                               "namespaces": a.namespaces,
                               "apiLatencyMs": a.latency_ms,
                               "apiMaxInflight": a.max_inflight}})
        with open(out + ".tmp", "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(out + ".tmp", out)
        docs[:] = [doc]
    try:
        save(b.main(save))
    finally:
        b.close()
    print(benchreport.table(docs[0]))
    print("\nJSON: %s" % out)
    if not a.workdir and not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print("logs: %s" % root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
