"""soak_check.py - the soak's invariant checker: a thread that reads Valkey directly and the
simulator's pod state every ~150 ms and records every breach of the promise "never lock out,
never lose, never leak" (tests/soak/README.md lists the invariants).

Raw keys stay in memory (Observer.keys): every record, message and report names keys by id
(first 12 hex digits of SHA-256).
"""
import glob
import hashlib
import json
import os
import threading
import time

from krtest import resp

# 401s counted by a consumer at time t may come from a request checked up to the client's
# 2 s request timeout earlier (client.py), plus a poll period.
COUNTER_SLOP_S = 2.5


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Target:
    """One KeyRotation under test and what it names: its Secret, key store layout, consumers."""

    def __init__(self, name, secret, secret_key, store_as, active_set, meta_key, bootstrap_key,
                 stages):
        self.name, self.secret, self.secret_key = name, secret, secret_key
        self.store_as, self.active_set, self.meta_key = store_as, active_set, meta_key
        self.bootstrap_key = bootstrap_key
        self.stages = stages  # [[workload, ...], ...]; the first stage is the api
        self.consumers = tuple(w for ws in stages[1:] for w in ws)

    def member_id(self, member):
        """The key id of a member of the active set (sha256 layout: the member is the hex
        SHA-256 of the key, so its first 12 digits are the id)."""
        return member[:12] if self.store_as == "sha256" else key_id(member)

    def member(self, key):
        return hashlib.sha256(key.encode()).hexdigest() if self.store_as == "sha256" else key

    def meta(self, member):
        return self.meta_key.replace("{id}", member)


class Violations:
    """Violations as episodes: one record per (invariant, subject), with first/last time seen
    and how many checks saw it, so a lasting breach is one line, not thousands."""

    def __init__(self, t0):
        self.t0, self.lock, self.items = t0, threading.Lock(), {}

    def add(self, invariant, subject, detail, now=None):
        now = time.monotonic() if now is None else now
        with self.lock:
            v = self.items.get((invariant, subject))
            if v is None:
                v = self.items[(invariant, subject)] = {
                    "invariant": invariant, "subject": subject, "detail": detail,
                    "first_s": round(now - self.t0, 2), "last_s": 0, "checks": 0}
            v["last_s"] = round(now - self.t0, 2)
            v["checks"] += 1
            return v["checks"] == 1

    def list(self):
        with self.lock:
            return sorted((dict(v) for v in self.items.values()), key=lambda v: v["first_s"])


class PodTracker:
    """Follows the simulator's events.jsonl: which consumer pods run now, with which key id.
    A pod is live from its `start` event to its `stop`/`crash` event (the process started
    before the former and exited before the latter)."""

    def __init__(self, path, workloads):
        self.path, self.workloads = path, set(workloads)
        self.offset, self.partial = 0, b""
        self.pods = {}  # pod -> {"workload", "keyId", "seq", "live", "ended"}
        self.seq = 0

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if line.strip():
                self._apply(json.loads(line))

    def _apply(self, ev):
        if ev.get("workload") not in self.workloads:
            return
        pod = ev["pod"]
        if ev["event"] == "start":
            self.seq += 1
            self.pods[pod] = {"workload": ev["workload"], "seq": self.seq, "live": True,
                              "keyId": (ev.get("keyIds") or {}).get("API_KEY"), "ended": None}
        elif ev["event"] in ("stop", "crash") and pod in self.pods:
            self.pods[pod]["live"] = False
            self.pods[pod]["ended"] = time.monotonic()

    def live(self):
        return {p: (d["seq"], d["workload"], d["keyId"]) for p, d in self.pods.items()
                if d["live"]}


class Checker(threading.Thread):
    """Invariants, checked every `period` seconds against Valkey and the pods:
    I1 every live consumer's key is active (except in a data-loss window the soak caused),
       and consumers' 401 counters grow only inside such windows;
    I2 at most two keys of a KeyRotation are active;
    I3 no key a live consumer uses is revoked (meta status=revoked)."""

    def __init__(self, targets, valkey_factory, state_dir, violations, log, period=0.15,
                 repair_deadline=90.0):
        super().__init__(daemon=True, name="checker")
        self.targets, self.valkey_factory = targets, valkey_factory
        self.state_dir, self.violations, self.log = state_dir, violations, log
        self.period, self.repair_deadline = period, repair_deadline
        workloads = [w for t in targets for w in t.consumers]
        self.by_workload = {w: t for t in targets for w in t.consumers}
        self.pods = PodTracker(os.path.join(state_dir, "events.jsonl"), workloads)
        self.keys = {}  # key id -> raw key (filled by the Observer from the Secrets)
        self.lock = threading.Lock()
        self.windows = []  # data-loss windows: {"kind", "start", "end", "repair_s"}
        self.stopping = threading.Event()
        self.stats = {"checks": 0, "valkey_unreachable_checks": 0, "max_active": {},
                      "unauthorized_total": 0, "unauthorized_excused": 0, "ok_total": 0,
                      "consumer_pods_seen": 0}
        self.counter_seen = {}  # pod -> last counters dict
        self.counter_read_at = None
        self.v = None

    # ---- data-loss windows (opened by the chaos loop right before it destroys data) ----
    def open_window(self, kind):
        with self.lock:
            w = {"kind": kind, "start": time.monotonic(), "end": None, "repair_s": None}
            self.windows.append(w)
            return w

    def open_windows(self):
        with self.lock:
            return [w for w in self.windows if w["end"] is None]

    def excused(self, t_from, t_to):
        with self.lock:
            return any(w["start"] <= t_to and (w["end"] is None or w["end"] >= t_from)
                       for w in self.windows)

    # ---- the loop ----
    def run(self):
        n = 0
        while not self.stopping.is_set():
            try:
                self.check_once()
                if n % 3 == 0:
                    self.check_counters()
            except Exception as e:  # a checker bug must not end the soak silently
                self.violations.add("checker", type(e).__name__, "checker error: %r" % e)
            n += 1
            self.stopping.wait(self.period)
        if self.v is not None:
            self.v.close()

    def stop(self):
        self.stopping.set()
        self.join(10)

    def read_store(self):
        """{target name: {member id: {"member", "status"}}}, or None when Valkey can't answer."""
        try:
            if self.v is None:
                self.v = self.valkey_factory()
            out = {}
            for t in self.targets:
                members = [m.decode() for m in self.v.command("SMEMBERS", t.active_set) or []]
                out[t.name] = {t.member_id(m): {"member": m, "status": self.v.hget(
                    t.meta(m), "status")} for m in members}
            return out
        except (OSError, EOFError, resp.RespError):
            if self.v is not None:
                self.v.close()
            self.v = None
            return None

    def revoked_marker(self, t, kid):
        """meta status of a key that is not in the set (revoked, or lost with the data)."""
        raw = self.keys.get(kid)
        if raw is None or self.v is None:
            return None
        try:
            return self.v.hget(t.meta(t.member(raw)), "status")
        except (OSError, EOFError, resp.RespError):
            return None

    def check_once(self):
        self.pods.update()
        before = self.pods.live()
        t_read = time.monotonic()
        store = self.read_store()
        self.pods.update()
        after = self.pods.live()
        now = time.monotonic()
        self.stats["checks"] += 1
        if store is None:
            self.stats["valkey_unreachable_checks"] += 1
            return
        # Pods live both before and after the Valkey read were live during it.
        live = {p: v for p, v in after.items() if before.get(p) == v}
        for t in self.targets:
            active = {i for i, m in store[t.name].items() if m["status"] != "revoked"}
            mx = self.stats["max_active"]
            mx[t.name] = max(mx.get(t.name, 0), len(active))
            if len(active) > 2:
                self.violations.add("I2 at most two active keys", t.name,
                                    "%d keys active in %s: %s" % (len(active), t.active_set,
                                                                  sorted(active)), now)
        all_active = True
        for pod, (_, workload, kid) in sorted(live.items()):
            t = self.by_workload[workload]
            entry = store[t.name].get(kid)
            if entry is not None and entry["status"] != "revoked":
                continue
            all_active = False
            status = entry["status"] if entry else self.revoked_marker(t, kid)
            if status == "revoked":
                self.violations.add("I3 no key revoked while in use", "%s key %s" % (t.name, kid),
                                    "pod %s (%s) runs key %s, which is revoked" % (
                                        pod, workload, kid), now)
            elif not self.excused(t_read, t_read):
                self.violations.add("I1 consumer key active", "%s key %s" % (t.name, kid),
                                    "pod %s (%s) runs key %s, absent from %s" % (
                                        pod, workload, kid, t.active_set), now)
        self._close_windows(all_active, t_read, now)

    def _close_windows(self, all_active, t_read, now):
        with self.lock:
            for w in self.windows:
                if w["end"] is not None:
                    continue
                if all_active and t_read > w["start"]:
                    w["end"], w["repair_s"] = now, round(now - w["start"], 2)
                    self.log("repaired: every consumer key active again %.2fs after %s" % (
                        w["repair_s"], w["kind"]))
                elif now - w["start"] > self.repair_deadline:
                    w["end"], w["repair_s"] = now, None
                    self.violations.add("I1 consumer key active", "repair after " + w["kind"],
                                        "consumer keys still missing %.0fs after %s" % (
                                            now - w["start"], w["kind"]), now)

    def check_counters(self):
        """Consumers' 401 counters (counters.json of every client pod): any growth outside a
        data-loss window is a violation."""
        now = time.monotonic()
        prev = self.counter_read_at
        self.counter_read_at = now
        for pod, d in list(self.pods.pods.items()):
            if not d["live"] and pod in self.counter_seen and d["ended"] is not None and \
                    now - d["ended"] > 5:
                continue  # stopped a while ago: its counters are final and read
            c = self._read_counters(pod)
            if c is None:
                continue
            old = self.counter_seen.get(pod) or {"unauthorized": 0, "ok": 0}
            if pod not in self.counter_seen:
                self.stats["consumer_pods_seen"] += 1
            self.counter_seen[pod] = c
            self.stats["ok_total"] += c["ok"] - old["ok"]
            delta = c["unauthorized"] - old["unauthorized"]
            if delta <= 0:
                continue
            self.stats["unauthorized_total"] += delta
            t_from = (prev if prev is not None else now) - COUNTER_SLOP_S
            if self.excused(t_from, now):
                self.stats["unauthorized_excused"] += delta
            else:
                self.violations.add("I1 no 401s outside data-loss windows", pod,
                                    "consumer pod %s (%s, key %s) counted 401s" % (
                                        pod, d["workload"], c.get("keyId")), now)

    def _read_counters(self, pod):
        path = os.path.join(self.state_dir, "pods", pod, "counters.json")
        for _ in range(3):
            try:
                with open(path) as f:
                    return json.load(f)
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                time.sleep(0.01)
        return None

    def all_counters(self):
        out = []
        for path in glob.glob(os.path.join(self.state_dir, "pods", "*", "counters.json")):
            try:
                with open(path) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                pass
        return out

    def window_report(self):
        with self.lock:
            return [{"kind": w["kind"], "repair_s": w["repair_s"]} for w in self.windows]
