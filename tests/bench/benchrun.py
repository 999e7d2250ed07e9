"""benchrun.py - one benchmark run at one size: cold start, steady-state memory, restart, and at
the focus size the idle cost, unrelated Secrets, reaction latency and rotation throughput."""

import base64
import json
import os
import threading

from benchcluster import (Controller, KRWatch, kube_cost, kube_stats, kube_stats_reset,
                          start_kubeapi, start_rollout)
from benchlib import (Kube, commandstats, median, now, percentile, proc_cpu,
                      stats_delta, wait_for)
import seed
from krtest import resp

ROTATE = "keyrotator.io/rotate"
MERGE = "application/merge-patch+json"


def own_requests(stats):
    """Requests that are not the leader lease's (lease renewals are reported apart)."""
    total = {"reads": 0, "writes": 0}
    for res, v in stats["byResource"].items():
        if not res.startswith("leases."):
            total["reads"] += v.get("reads", 0)
            total["writes"] += v.get("writes", 0)
    return total


def lease_requests(stats):
    out = {"reads": 0, "writes": 0}
    for res, v in stats["byResource"].items():
        if res.startswith("leases."):
            out["reads"] += v.get("reads", 0)
            out["writes"] += v.get("writes", 0)
    return out


def by_verb(stats, skip=("leases.",)):
    """{"resource verb": count} without the lease."""
    out = {}
    for res, v in stats["byResource"].items():
        if res.startswith(skip):
            continue
        for verb, n in v.items():
            if verb not in ("reads", "writes"):
                out["%s %s" % (verb, res)] = n
    return out


def queue(cost):
    """What --max-inflight made wait since the last stats reset (None without it)."""
    return {k: cost.get(k) for k in ("peakInflight", "peakWaiting", "queued")}


def valkey_calls(delta):
    """Valkey commands the controller sent (our own INFO/CONFIG/PSUBSCRIBE left out)."""
    return {k: v for k, v in delta.items()
            if k not in ("info", "config|resetstat", "config", "psubscribe", "flushall",
                         "ping")}


class Run:
    """A cluster loaded with n KeyRotations, and the controller started on it."""

    def __init__(self, bench, n, seed_dir, tag):
        self.b, self.n, self.tag = bench, n, tag
        self.root = bench.root
        self.out = {}
        r = bench.valkey
        r.command("FLUSHALL")
        r.command("CONFIG", "RESETSTAT")
        a = bench.args
        self.api, self.url, self.kubeconfig = start_kubeapi(
            self.root, seed_dir, latency_ms=a.latency_ms, max_inflight=a.max_inflight)
        self.rollout_log = os.path.join(self.root, "rollout-%s.log" % tag)
        self.rollout = start_rollout(self.root, self.url, self.rollout_log)
        self.watch = KRWatch(self.url)
        self.ctl = None

    def close(self):
        if self.ctl:
            self.ctl.stop()
        self.watch.stop()
        self.rollout.stop()
        self.api.stop(9)

    def start_controller(self, name="controller"):
        b = self.b.args
        return Controller(self.b.binary, self.root, self.kubeconfig, b.workers,
                          not b.no_leader_elect, name)

    def settle(self, ctl, timeout=60):
        """Waits until the controller's queue is empty and it sent no request but lease
        renewals for a full second."""
        last, since = None, now()
        deadline = now() + timeout
        while now() < deadline:
            cur = own_requests(kube_stats(self.url))
            depth = ctl.metric_sum("keyrotator_workqueue_depth")
            if cur != last or depth:
                last, since = cur, now()
            elif now() - since >= 1.0:
                return True
            ctl.check()
            threading.Event().wait(0.1)
        return False

    def wait_reconciled(self, ctl, timeout):
        """Seconds from start to n reconciles done (keyrotator_reconcile_total), or None."""
        try:
            # One family per poll (/metrics?name=): the whole page has five series per
            # KeyRotation, and at 10,000 every 50 ms rendering it cost seconds of CPU.
            wait_for(lambda: ctl.check() and
                     ctl.metric_sum("keyrotator_reconcile_total") >= self.n,
                     timeout, "%d reconciles" % self.n, 0.05)
        except TimeoutError:
            return None
        return now() - ctl.started

    def wait_all_ready(self, ctl, timeout):
        """Seconds from start to every KeyRotation Ready=True, or None: no reconciler writes
        status (observe-only build) or timeout."""
        w = self.watch
        t_rec = now()

        def cond():
            if len(w.ready) >= self.n:
                return True
            return w.with_status == 0 and now() - t_rec > self.b.args.status_grace
        w.wait(cond, timeout)
        if len(w.ready) < self.n:
            return None
        return max(w.ready_at.values()) - ctl.started

    # ---- cold start and restart --------------------------------------------------------

    def cold_start(self):
        kube_stats_reset(self.url)
        v0 = commandstats(self.b.valkey)
        api_cpu = proc_cpu(self.api.pid)
        self.ctl = ctl = self.start_controller()
        o = self.out
        o["readyz_s"] = ctl.wait_ready(120)
        limit = self.b.args.cold_timeout
        o["reconciled_s"] = self.wait_reconciled(ctl, limit)
        o["all_ready_s"] = self.wait_all_ready(ctl, max(1.0, limit - (now() - ctl.started))) \
            if self.n else 0.0
        o["settled"] = self.settle(ctl) if o["all_ready_s"] is not None or not self.n else False
        st = kube_stats(self.url)
        o["cold_api"] = own_requests(st)
        o["cold_api_by_verb"] = by_verb(st)
        o["cold_api_queue"] = queue(kube_cost(self.url))
        o["cold_valkey"] = valkey_calls(stats_delta(commandstats(self.b.valkey), v0))
        # A first start sets the key stores up: that is not drift, so no repair is counted.
        o["cold_keystore_repairs"] = ctl.metric_sum("keyrotator_keystore_repairs_total")
        o["cold_cpu_s"] = proc_cpu(ctl.pid)
        o["cold_kubeapi_cpu_s"] = proc_cpu(self.api.pid) - api_cpu
        o["rss"] = ctl.rss()
        o["ready_count"] = len(self.watch.ready)

    def restart(self):
        if self.ctl:
            self.ctl.stop()
        kube_stats_reset(self.url)
        self.ctl = ctl = self.start_controller("controller-restart")
        o = self.out
        o["restart_readyz_s"] = ctl.wait_ready(120)
        # 3 reads per KeyRotation at --latency-ms each, spread over the workers
        lat = self.b.args.latency_ms / 1000.0
        o["restart_reconciled_s"] = self.wait_reconciled(
            ctl, 60 + self.n * (0.05 + 4 * lat / max(1, self.b.args.workers)))
        self.settle(ctl)
        st = kube_stats(self.url)
        o["restart_api"] = own_requests(st)
        o["restart_api_by_verb"] = by_verb(st)
        o["restart_api_queue"] = queue(kube_cost(self.url))
        o["restart_rss"] = ctl.rss()

    # ---- idle ----------------------------------------------------------------------------

    def idle(self, seconds, windows):
        ctl, o = self.ctl, {}
        kube_stats_reset(self.url)
        v0 = commandstats(self.b.valkey)
        cpu = []
        for _ in range(windows):
            c0 = proc_cpu(ctl.pid)
            threading.Event().wait(seconds / windows)
            cpu.append(proc_cpu(ctl.pid) - c0)
        st = kube_stats(self.url)
        o["seconds"] = seconds
        o["cpu_s"] = sum(cpu)
        o["cpu_s_per_min_median"] = median(cpu) * windows * 60.0 / seconds
        o["api"] = own_requests(st)
        o["api_by_verb"] = by_verb(st)
        o["lease"] = lease_requests(st)
        o["valkey"] = valkey_calls(stats_delta(commandstats(self.b.valkey), v0))
        o["valkey_total"] = sum(o["valkey"].values())
        self.out["idle"] = o

    # ---- unrelated Secrets ---------------------------------------------------------------

    def unrelated_secrets(self, count, kib):
        before = self.ctl.rss()
        t0 = now()
        nns = self.b.args.namespaces

        def create(part, step):
            kube = Kube(self.url)
            for i in range(part, count, step):
                ns = "bench-%d" % (i % nns)
                kube.ok("POST", "/api/v1/namespaces/%s/secrets" % ns, {
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "unrelated-%d" % i},
                    "data": {"blob": base64.b64encode(os.urandom(kib * 1024)).decode()}})
            kube.close()
        threads = [threading.Thread(target=create, args=(k, 4)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        created = now() - t0
        self.settle(self.ctl)
        threading.Event().wait(2)
        after = self.ctl.rss()
        self.out["secrets"] = {"count": count, "kib": kib, "create_s": created,
                               "rss_before": before, "rss_after": after,
                               "delta_kib": after["VmRSS"] - before["VmRSS"]}

    # ---- rotations -----------------------------------------------------------------------

    def patch_rotate(self, kube, i, value):
        ns = seed.namespace(i, self.b.args.namespaces)
        kube.ok("PATCH", "/apis/keyrotator.io/v1alpha1/namespaces/%s/keyrotations/kr-%d"
                % (ns, i), {"metadata": {"annotations": {ROTATE: value}}}, MERGE)

    def key(self, i):
        return "%s/kr-%d" % (seed.namespace(i, self.b.args.namespaces), i)

    def latency(self, samples):
        """Rotations one at a time: annotation set -> new key SADDed to the KeyRotation's
        activeSet (keyspace notification), and stage rollout complete -> next stage patched
        (the rollout writer's log). Returns None when rotations don't finish."""
        sub = resp.Client("127.0.0.1", self.b.valkey_port, timeout=None)
        sub.send("PSUBSCRIBE", "__keyspace@0__:kr-*:active")
        sub.read()
        sadds = []

        def reader():
            try:
                while True:
                    msg = sub.read()
                    t = now()
                    if msg and msg[0] == b"pmessage" and msg[3] == b"sadd":
                        sadds.append((t, msg[2].decode().split(":", 1)[1].rsplit(":", 1)[0]))
            except (OSError, EOFError, RuntimeError, ValueError):
                return
        threading.Thread(target=reader, daemon=True).start()
        kube = Kube(self.url)
        react, failed, done = [], 0, []
        for j in range(samples):
            i = j % self.n
            k, value = self.key(i), "lat-%s-%d" % (self.tag, j)
            t0 = now()
            self.patch_rotate(kube, i, value)
            if not self.watch.wait(lambda: (k, value) in self.watch.done_at, 60):
                failed += 1
                break
            if self.watch.done_at[(k, value)][1] != "Idle":
                failed += 1
            hits = [t for t, name in list(sadds) if name == "kr-%d" % i and t >= t0]
            if hits:
                react.append(min(hits) - t0)
            done.append((i, self.watch.state[k]["key"]))
        kube.close()
        sub.close()
        threading.Event().wait(1.0)  # the rollout writer flushes its log every 0.5 s
        stage = self.stage_latencies(done)
        self.out["latency"] = {
            "samples": len(done), "failed": failed,
            "activate_p50_ms": ms(percentile(react, 50)), "activate_p99_ms": ms(percentile(
                react, 99)), "activate_max_ms": ms(max(react) if react else None),
            "stage_samples": len(stage),
            "stage_p50_ms": ms(percentile(stage, 50)), "stage_p99_ms": ms(percentile(
                stage, 99)), "stage_max_ms": ms(max(stage) if stage else None)}

    def stage_latencies(self, done):
        sent, seen = {}, {}
        try:
            with open(self.rollout_log) as f:
                for line in f:
                    e = json.loads(line)
                    k = (e["name"], e["keyId"])
                    sent.setdefault(k, e["sent"])
                    seen.setdefault(k, e["seen"])
        except (OSError, ValueError):
            return []
        out = []
        for i, kid in done:
            _, _, deps = seed.names(i)
            for a, b in zip(deps, deps[1:]):
                if (a, kid) in sent and (b, kid) in seen:
                    out.append(seen[(b, kid)] - sent[(a, kid)])
        return out

    def throughput(self, count):
        """count rotations triggered at once; seconds until all finished, requests each."""
        kube_stats_reset(self.url)
        v0 = commandstats(self.b.valkey)
        value = "tp-%s-%d" % (self.tag, count)
        cpu0 = {p: proc_cpu(p) for p in (self.ctl.pid, self.api.pid, self.rollout.pid)}
        t0 = now()

        def trigger(part, step):
            kube = Kube(self.url)
            for i in range(part, count, step):
                self.patch_rotate(kube, i, value)
            kube.close()
        threads = [threading.Thread(target=trigger, args=(k, 4)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent = now() - t0
        keys = [self.key(i) for i in range(count)]
        w = self.watch
        w.wait(lambda: w.done_count.get(value, 0) >= count, 60 + count * 0.2)
        fin = [w.done_at[(k, value)] for k in keys if (k, value) in w.done_at]
        cpu = {p: proc_cpu(p) - c for p, c in cpu0.items()}
        self.settle(self.ctl)
        st = kube_stats(self.url)
        api = by_verb(st)
        api["patch keyrotations.keyrotator.io"] = api.get(
            "patch keyrotations.keyrotator.io", 0) - count
        rollout_writes = api.pop("update deployments.apps/status", 0)
        ctl_writes = sum(n for k, n in api.items() if k.split()[0] not in (
            "get", "list", "watch"))
        ctl_reads = sum(n for k, n in api.items() if k.split()[0] in ("get", "list", "watch"))
        vk = valkey_calls(stats_delta(commandstats(self.b.valkey), v0))
        self.out.setdefault("throughput", {})[str(count)] = {
            "count": count, "finished": len(fin),
            "failed": sum(1 for _, ph in fin if ph != "Idle"),
            "trigger_s": sent,
            "seconds": (max(t for t, _ in fin) - t0) if len(fin) == count else None,
            "api_writes_per_rotation": ctl_writes / count,
            "api_reads_per_rotation": ctl_reads / count,
            "api_by_verb": {k: v for k, v in api.items() if v},
            "rollout_status_writes": rollout_writes,
            # Who spent the two cores until the last rotation finished.
            "cpu_s": {"controller": cpu[self.ctl.pid], "api_server": cpu[self.api.pid],
                      "rollout_writer": cpu[self.rollout.pid]},
            "valkey_per_rotation": sum(vk.values()) / count, "valkey": vk,
            "api_queue": queue(kube_cost(self.url))}


def ms(x):
    return None if x is None else x * 1000.0
