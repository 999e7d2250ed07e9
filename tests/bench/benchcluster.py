"""benchcluster.py - the benchmark's cluster: redis-server, the local API server loaded from a
seeded state, the instant-rollout writer, a KeyRotation status watcher, and the controller."""

import os
import sys
import threading
import time
import urllib.request

import krtest.controller
from benchlib import HERE, REPO, TOKEN, Kube, now, proc_status, wait_for, watch_lines
from krtest import Proc
from krtest.servers import start_redis as krtest_start_redis

KR_PATH = "/apis/keyrotator.io/v1alpha1/keyrotations"


def start_redis(root):
    """redis-server with keyspace notifications on sets (the latency probe's clock)."""
    return krtest_start_redis(lambda cmd: Proc("redis", cmd, root), root,
                              extra=("--notify-keyspace-events", "Ks"))


def start_kubeapi(root, seed_dir, name="kubeapi", latency_ms=0.0, max_inflight=0):
    """The API server over plain HTTP, loaded from seed_dir/state.json (hard-linked into a
    run directory: the server replaces, never rewrites, the file); latency_ms and
    max_inflight emulate a real server's cost (its --latency-ms and --max-inflight)."""
    run = os.path.join(root, name + ".state")
    os.makedirs(run, exist_ok=True)
    dst = os.path.join(run, "state.json")
    if os.path.exists(dst):
        os.unlink(dst)
    try:
        os.link(os.path.join(seed_dir, "state.json"), dst)
    except OSError:
        import shutil
        shutil.copy(os.path.join(seed_dir, "state.json"), dst)
    ready = os.path.join(root, name + ".ready")
    kubeconfig = os.path.join(root, name + ".kubeconfig")
    for f in (ready,):
        if os.path.exists(f):
            os.unlink(f)
    p = Proc(name, [sys.executable, os.path.join(REPO, "tests", "kubeapi", "kubeapi.py"),
                    "--port", "0", "--token", TOKEN, "--ready-file", ready,
                    "--kubeconfig-out", kubeconfig, "--state-dir", run,
                    "--bookmark-interval", "5", "--latency-ms", "%g" % latency_ms,
                    "--max-inflight", str(max_inflight)], root)
    wait_for(lambda: p.alive() or os.path.exists(ready), 120, "kubeapi", 0.05)
    with open(ready) as f:
        url = f.read().split()[1]
    return p, url, kubeconfig


def kube_stats(url):
    with urllib.request.urlopen(url + "/_kubeapi/stats") as r:
        import json
        return json.load(r)


def kube_cost(url):
    """The API server's emulated cost and its --max-inflight queue since the last reset."""
    import json
    with urllib.request.urlopen(url + "/_kubeapi/cost") as r:
        return json.load(r)


def kube_stats_reset(url):
    req = urllib.request.Request(url + "/_kubeapi/stats/reset", method="POST", data=b"")
    urllib.request.urlopen(req).read()


def start_rollout(root, url, log):
    ready = os.path.join(root, "rollout.ready")
    if os.path.exists(ready):
        os.unlink(ready)
    p = Proc("rollout", [sys.executable, os.path.join(HERE, "rollout.py"), "--server", url,
                         "--ready-file", ready, "--log", log], root)
    wait_for(lambda: p.alive() or os.path.exists(ready), 300, "the rollout writer", 0.05)
    return p


class KRWatch:
    """Every KeyRotation's status as the API server streams it; records when each one first
    reaches Ready and when each rotate request (annotation value) is finished."""

    def __init__(self, url):
        self.url = url
        self.cond = threading.Condition()
        self.state = {}       # "ns/name" -> summary
        self.ready = set()    # keys with Ready=True
        self.ready_at = {}    # key -> first time Ready=True
        self.done_at = {}     # (key, lastHandledRequest) -> time finished (phase Idle/Failed)
        self.done_count = {}  # lastHandledRequest -> KeyRotations finished with it
        self.with_status = 0
        self.stopped = False
        kube = Kube(url)
        body = kube.ok("GET", KR_PATH)
        kube.close()
        t = now()
        for obj in body["items"]:
            self._update(obj, t)
        self.rv = body["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def key(obj):
        md = obj["metadata"]
        return "%s/%s" % (md["namespace"], md["name"])

    def _update(self, obj, t):
        st = obj.get("status") or {}
        k = self.key(obj)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in st.get("conditions") or [])
        phase = st.get("phase", "")
        req = st.get("lastHandledRequest")
        with self.cond:
            prev = self.state.get(k)
            if st and not (prev and prev["hasStatus"]):
                self.with_status += 1
            self.state[k] = {"hasStatus": bool(st), "ready": ready, "phase": phase,
                             "request": req,
                             "key": (st.get("currentKey") or {}).get("id")}
            if ready:
                self.ready.add(k)
                self.ready_at.setdefault(k, t)
            else:
                self.ready.discard(k)
            if req and phase in ("Idle", "Failed") and (k, req) not in self.done_at:
                self.done_at[(k, req)] = (t, phase)
                self.done_count[req] = self.done_count.get(req, 0) + 1
            self.cond.notify_all()

    def _run(self):
        while not self.stopped:
            path = "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=900&resourceVersion=%s" \
                   % (KR_PATH, self.rv)
            try:
                for ev in watch_lines(self.url, path):
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        return
                    self.rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._update(obj, now())
            except (OSError, ValueError, RuntimeError):
                if self.stopped:
                    return
                time.sleep(0.1)

    def wait(self, cond, timeout):
        """Waits until cond() (called with the lock held) is true; returns it or None."""
        deadline = now() + timeout
        with self.cond:
            while True:
                v = cond()
                if v or now() >= deadline:
                    return v
                self.cond.wait(min(0.5, deadline - now()))

    def stop(self):
        self.stopped = True


class Controller(krtest.controller.Controller):
    """build/keyrotator run, with /readyz and /metrics on loopback; started at once."""

    def __init__(self, binary, root, kubeconfig, workers, leader_elect, name="controller"):
        super().__init__(kubeconfig, os.path.join(root, name + ".log"),
                         extra=["--workers", str(workers)], leader_elect=leader_elect,
                         leader_namespace="default", leader_id="keyrotator-bench",
                         binary_path=binary)
        self.start(wait_ready=False)

    def wait_ready(self, timeout):
        """Seconds from process start to /readyz 200 (polled every 5 ms)."""
        return super().wait_ready(timeout, 0.005)

    def metric_sum(self, name):
        """The sum of every series of one metric family (0 when absent), from
        /metrics?name=<family>: polling the whole page would render a series per KeyRotation
        each time, and the benchmark would measure its own scrapes."""
        text = self.get(self.metrics_port, "/metrics?name=" + name)[1]
        return krtest.controller.metric_sum(krtest.controller.parse_metrics(text), name)

    def rss(self):
        return proc_status(self.pid)

    def stop(self):
        return super().stop(30)
