"""soak_observe.py - what the soak reads from the API and the controllers besides the
invariants: the keys in the Secrets (for the checker and the final key scan), KeyRotation
status and history (rotations done, rolled back), /metrics scrapes, Events; and the rotation
triggers (the keyrotator.io/rotate annotation every 20-30 s, beside the every-minute schedule).

The soak's own API requests carry `soak=1`, which the chaos faults never match.
"""
import base64
import json
import os
import re
import threading
import time

from soak_check import PodTracker, key_id

KR_PATH = "/apis/keyrotator.io/v1alpha1/namespaces/%s/keyrotations"
MERGE = "application/merge-patch+json"
ROTATIONS = re.compile(r'^keyrotator_rotations_total\{[^}]*outcome="([a-z_]+)"[^}]*\} (\S+)')


class Observer(threading.Thread):
    def __init__(self, soak, period=0.3):
        super().__init__(daemon=True, name="observer")
        self.soak, self.period = soak, period
        self.sc, self.log = soak.sc, soak.log
        self.ns = self.sc.env.get("NAMESPACE") or "sirius"
        self.root = soak.root
        self.stopping = threading.Event()
        self.history = {t.name: {} for t in soak.targets}  # (keyId, activatedAt) -> entry
        self.phase = {}
        self.last_rv = {}
        self.metrics = {}  # controller pid -> {outcome: value}
        self.tracker = PodTracker(os.path.join(self.sc.state_dir, "events.jsonl"),
                                  [w for t in soak.targets for w in t.consumers])

    def api(self, method, path, body=None, ctype="application/json"):
        sep = "&" if "?" in path else "?"
        try:
            return self.sc.api(method, path + sep + "soak=1", body, ctype)
        except (OSError, ValueError) as e:
            return 0, {"error": repr(e)}

    # ---- the loop ----
    def run(self):
        n = 0
        while not self.stopping.wait(self.period):
            try:
                self.poll_secrets()
                if n % 3 == 0:
                    self.poll_status()
                    for inst, code in self.soak.ctls.supervise():
                        self.soak.violations.add("controller crash", inst,
                                                 "keyrotator %s died of signal %d" % (
                                                     inst, -code))
                if n % 17 == 0:
                    self.scrape()
            except Exception as e:  # report, keep observing
                self.soak.violations.add("observer", type(e).__name__,
                                         "observer error: %r" % e)
            n += 1

    def stop(self):
        self.stopping.set()
        self.join(10)

    # ---- keys ----
    def poll_secrets(self):
        code, lst = self.api("GET", "/api/v1/namespaces/%s/secrets" % self.ns)
        if code != 200:
            return
        keys = self.soak.checker.keys
        for s in lst.get("items") or []:
            name, data = s["metadata"]["name"], s.get("data") or {}
            for t in self.soak.targets:
                fields = ()
                if name == t.secret:
                    fields = (t.secret_key,)
                elif name == t.name + "-rotation":
                    fields = ("pending", "previous")
                for fld in fields:
                    if data.get(fld):
                        raw = base64.b64decode(data[fld]).decode()
                        keys.setdefault(key_id(raw), raw)

    def secret_key_id(self, t):
        code, s = self.api("GET", "/api/v1/namespaces/%s/secrets/%s" % (self.ns, t.secret))
        if code != 200:
            return None
        v = (s.get("data") or {}).get(t.secret_key)
        return key_id(base64.b64decode(v).decode()) if v else None

    # ---- KeyRotation status ----
    def get_kr(self, t):
        code, obj = self.api("GET", KR_PATH % self.ns + "/" + t.name)
        return obj if code == 200 else None

    def poll_status(self):
        for t in self.soak.targets:
            obj = self.get_kr(t)
            if obj is None:
                continue
            self.record(t, obj)

    def record(self, t, obj):
        st = obj.get("status") or {}
        rv = obj["metadata"].get("resourceVersion")
        if self.last_rv.get(t.name) != rv:
            self.last_rv[t.name] = rv
            with open(os.path.join(self.root, "status.jsonl"), "a") as f:
                f.write(json.dumps({"name": t.name, "status": st}, sort_keys=True) + "\n")
        for h in st.get("history") or []:
            k = (h.get("keyId"), h.get("activatedAt"))
            if k not in self.history[t.name]:
                self.log("%s: %s rotation to key %s (%s)%s" % (
                    t.name, h.get("outcome"), h.get("keyId"), h.get("trigger"),
                    (": " + h["reason"]) if h.get("reason") else ""))
            self.history[t.name][k] = h
        ph = st.get("phase")
        if self.phase.get(t.name) != ph:
            r = st.get("rotation") or {}
            self.log("%s: phase %s%s" % (t.name, ph, " (%s, step %s)" % (
                r.get("trigger"), r.get("step")) if r else ""))
        self.phase[t.name] = ph

    def rotation_report(self):
        out = {}
        for name, hist in self.history.items():
            hs = list(hist.values())
            by_trigger = {}
            for h in hs:
                by_trigger[h.get("trigger")] = by_trigger.get(h.get("trigger"), 0) + 1
            out[name] = {"succeeded": sum(h.get("outcome") == "Succeeded" for h in hs),
                         "rolled_back": sum(h.get("outcome") == "RolledBack" for h in hs),
                         "failed": sum(h.get("outcome") == "Failed" for h in hs),
                         "by_trigger": by_trigger,
                         "reasons": sorted({h.get("reason") for h in hs
                                            if h.get("outcome") != "Succeeded"
                                            and h.get("reason")})}
        return out

    def summary(self):
        return ", ".join("%s %d ok/%d rolled back" % (n, r["succeeded"], r["rolled_back"])
                         for n, r in self.rotation_report().items())

    def patch_spec(self, t, spec, tries=20):
        for _ in range(tries):
            code, _ = self.api("PATCH", KR_PATH % self.ns + "/" + t.name, {"spec": spec}, MERGE)
            if code == 200:
                return True
            time.sleep(0.5)
        raise RuntimeError("could not patch %s spec %s" % (t.name, spec))

    # ---- settled: the end state a rotation must reach, whatever happened ----
    def settled(self, t):
        """None when `t` is at rest and consistent, else what is not yet."""
        obj = self.get_kr(t)
        if obj is None:
            return "KeyRotation unreadable"
        self.record(t, obj)
        st = obj.get("status") or {}
        cur = (st.get("currentKey") or {}).get("id")
        if st.get("phase") not in ("Idle", "Failed") or st.get("rotation") or not cur:
            return "phase %s, rotation %s" % (st.get("phase"), st.get("rotation"))
        if self.secret_key_id(t) != cur:
            return "the Secret does not hold the current key %s" % cur
        self.tracker.update()
        pods = [(p, v) for p, v in self.tracker.live().items()]
        for w in t.consumers:
            mine = [v[2] for p, v in pods if v[1] == w]
            if not mine or set(mine) != {cur}:
                return "%s runs keys %s, not only %s" % (w, sorted(set(mine)), cur)
        v = self.sc.valkey()
        try:
            members = [m.decode() for m in v.command("SMEMBERS", t.active_set) or []]
            active = {t.member_id(m) for m in members if v.hget(t.meta(m), "status") !=
                      "revoked"}
        except (OSError, EOFError) as e:
            return "Valkey: %r" % e
        finally:
            v.close()
        if active != {cur}:
            return "active keys %s, want only %s" % (sorted(active), cur)
        return None

    def wait_settled(self, targets, timeout):
        deadline, why = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            why = {t.name: self.settled(t) for t in targets}
            if not any(why.values()) and not self.soak.checker.open_windows():
                return
            time.sleep(0.5)
        raise TimeoutError("%.0fs: %s" % (timeout, {k: v for k, v in why.items() if v}))

    # ---- metrics, Events ----
    def scrape(self):
        for c in self.soak.ctls.running():
            code, text = c.get(c.metrics_port, "/metrics")
            if code != 200:
                continue
            with open(os.path.join(self.root, "metrics-%s.prom" % c.instance), "a") as f:
                f.write("# scrape of pid %d at %.1f\n%s" % (c.proc.pid, time.time(), text))
            vals = {}
            for line in text.splitlines():
                m = ROTATIONS.match(line)
                if m:
                    vals[m.group(1)] = vals.get(m.group(1), 0) + float(m.group(2))
            self.metrics[c.proc.pid] = vals

    def final_scrape(self):
        self.scrape()

    def metric_totals(self):
        """keyrotator_rotations_total by outcome, summed over every controller process (a
        standby counts nothing; a process killed between scrapes loses its last few)."""
        out = {}
        for vals in self.metrics.values():
            for k, v in vals.items():
                out[k] = out.get(k, 0) + int(v)
        return out

    def dump_api_objects(self):
        for name, path in (("core", "/api/v1/namespaces/%s/events" % self.ns),
                           ("k8s", "/apis/events.k8s.io/v1/namespaces/%s/events" % self.ns)):
            code, lst = self.api("GET", path)
            if code == 200:
                with open(os.path.join(self.root, "events-%s.json" % name), "w") as f:
                    json.dump(lst, f, indent=1)
        for t in self.soak.targets:
            obj = self.get_kr(t)
            if obj is not None:
                with open(os.path.join(self.root, "status.jsonl"), "a") as f:
                    f.write(json.dumps({"name": t.name, "object": obj}, sort_keys=True) + "\n")


class Triggers(threading.Thread):
    """keyrotator.io/rotate on every KeyRotation every `interval` seconds (random in range)."""

    def __init__(self, soak, interval):
        super().__init__(daemon=True, name="triggers")
        self.soak, self.interval = soak, interval
        self.stopping = threading.Event()
        self.sent = 0

    def run(self):
        rng, n = self.soak.rng, 0
        obs = self.soak.observer
        while not self.stopping.wait(rng.uniform(*self.interval)):
            n += 1
            for t in self.soak.targets:
                body = {"metadata": {"annotations": {"keyrotator.io/rotate": "soak-%d" % n}}}
                for _ in range(10):
                    code, _ = obs.api("PATCH", KR_PATH % obs.ns + "/" + t.name, body, MERGE)
                    if code == 200:
                        self.sent += 1
                        break
                    time.sleep(0.3)

    def stop(self):
        self.stopping.set()
        self.join(10)
