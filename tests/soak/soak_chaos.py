"""soak_chaos.py - the soak's chaos: the controller replicas (one plain, or two with
--leader-elect) that it SIGKILLs and restarts, Valkey restarts with and without data loss,
FLUSHALL, and the local API server's faults (5xx, 409, 429, dropped connections, slow
responses, dropped/stalled watches, 410 Gone after compaction). Every action is counted by kind.
"""
import json
import os
import queue
import ssl
import threading
import time
import urllib.request

import e2e_lib
from krtest import resp
from krtest.servers import start_redis

# Faults hit the controller and the simulator, never the soak's own requests (they carry
# soak=1), so the checker and the triggers see the cluster as it is.
NOT_SOAK = r"^(?!.*[?&]soak=1)"
API_PATHS = r".*(/apis/keyrotator\.io/|/secrets|/deployments|/leases|/events)"


class Spawner(threading.Thread):
    """Starts every process the soak starts after set-up, from one thread that lives to the
    end: children run under `setpriv --pdeathsig KILL`, and Linux sends that signal when the
    *thread* that forked them exits, so a chaos or observer thread must not fork them."""

    def __init__(self):
        super().__init__(daemon=True, name="spawner")
        self.q = queue.Queue()

    def run(self):
        while True:
            fn, args, box, done = self.q.get()
            try:
                box.append((True, fn(*args)))
            except BaseException as e:  # handed back to the caller
                box.append((False, e))
            done.set()

    def call(self, fn, *args):
        box, done = [], threading.Event()
        self.q.put((fn, args, box, done))
        done.wait()
        ok, v = box[0]
        if not ok:
            raise v
        return v


SPAWNER = Spawner()
SPAWNER.start()


class Controllers:
    """The running `keyrotator run` replicas. Mode "single": one replica without leader
    election; "pair": two with --leader-elect (never both kinds at once)."""

    def __init__(self, fx, workdir, log, extra=()):
        self.fx, self.workdir, self.log, self.extra = fx, workdir, log, list(extra)
        self.mode, self.ctls = None, {}
        self.lock = threading.Lock()
        self.killed = set()  # instances we SIGKILLed (their exit is not a surprise)
        self.exits = []      # {"instance", "code"}: exits we did not cause
        self.lifetimes = []  # (instance, start number, Controller) for metrics
        self.starts = 0

    def _new(self, instance, leader):
        c = e2e_lib.Controller(self.fx, self.workdir, instance=instance, leader_elect=leader,
                               extra=self.extra)
        return c

    def start_mode(self, mode):
        with self.lock:
            self.mode = mode
            names = ["soak-1"] if mode == "single" else ["soak-a", "soak-b"]
            for n in names:
                self.ctls[n] = self.ctls.get(n) or self._new(n, mode == "pair")
                self._start(self.ctls[n])

    def _start(self, c):
        for attempt in range(5):
            try:
                SPAWNER.call(c.start)
                break
            except (RuntimeError, TimeoutError) as e:
                self.log("controller %s did not become ready (%s); again" % (c.instance, e))
                c.kill()
                time.sleep(1)
        self.starts += 1
        self.killed.discard(c.instance)
        self.lifetimes.append((c.instance, c.starts, c))

    def running(self):
        with self.lock:
            return [c for c in self.ctls.values() if c.proc and c.proc.poll() is None]

    def kill_all(self):
        with self.lock:
            for c in self.ctls.values():
                if c.proc and c.proc.poll() is None:
                    self.killed.add(c.instance)
                    c.kill()
            self.ctls = {}

    def leader(self):
        for c in self.running():
            if c.metric("keyrotator_leader") == 1:
                return c
        return None

    def kill_one(self, c):
        with self.lock:
            self.killed.add(c.instance)
            c.kill()

    def restart(self, c):
        with self.lock:
            if self.ctls.get(c.instance) is c:
                self._start(c)

    def supervise(self):
        """Restart a replica that exited by itself (as a Deployment would); a death by a
        signal we did not send is a crash."""
        crashed = []
        with self.lock:
            for c in list(self.ctls.values()):
                if not c.proc or c.proc.poll() is None or c.instance in self.killed:
                    continue
                code = c.proc.returncode
                self.exits.append({"instance": c.instance, "code": code})
                self.log("controller %s exited by itself with %s; restarting" % (
                    c.instance, code))
                if code < 0:
                    crashed.append((c.instance, code))
                self._start(c)
        return crashed

    def stop_all(self):
        with self.lock:
            codes = {}
            for c in self.ctls.values():
                codes[c.instance] = c.stop()
            return codes


class Chaos(threading.Thread):
    """At random intervals, one random action from `weights`; counts every action by kind."""

    WEIGHTS = {
        "controller_kill": 3, "controller_kill_leader": 2, "valkey_restart": 1,
        "valkey_restart_data_loss": 1, "valkey_flushall": 1, "api_5xx": 2, "api_409": 2,
        "api_429": 1, "api_connection_drop": 1, "api_slow": 1, "api_delay": 1,
        "watch_drop": 2, "watch_410_gone": 2, "watch_stall": 1}

    def __init__(self, sc, ctls, checker, rng, interval, log, kinds=None):
        super().__init__(daemon=True, name="chaos")
        self.sc, self.ctls, self.checker, self.rng = sc, ctls, checker, rng
        self.interval, self.log = interval, log
        self.weights = dict(self.WEIGHTS)
        if kinds:
            unknown = set(kinds.split(",")) - set(self.WEIGHTS)
            if unknown:
                raise ValueError("unknown chaos kinds %s; known: %s" % (
                    sorted(unknown), ", ".join(sorted(self.WEIGHTS))))
            self.weights = {k: w for k, w in self.WEIGHTS.items() if k in kinds.split(",")}
        self.counts = {}
        self.fault_ids = []
        self.stopping = threading.Event()
        self.errors = []

    def run(self):
        kinds = sorted(self.weights)
        while not self.stopping.wait(self.rng.uniform(*self.interval)):
            kind = self.rng.choices(kinds, [self.weights[k] for k in kinds])[0]
            try:
                done = getattr(self, kind)()
            except Exception as e:  # a chaos step that failed is reported, not fatal
                self.errors.append("%s: %r" % (kind, e))
                self.log("chaos %s failed: %r" % (kind, e))
                continue
            if done is not False:  # an action may name the kind it turned into
                kind = done if isinstance(done, str) else kind
                self.counts[kind] = self.counts.get(kind, 0) + 1

    def stop(self):
        self.stopping.set()
        self.join(60)

    # ---- the controller ----
    def controller_kill(self):
        # alternate, so the run spends about half its time with two replicas
        mode = "pair" if self.ctls.mode == "single" else "single"
        self.ctls.kill_all()
        self.stopping.wait(self.rng.uniform(0, 3))
        self.log("chaos: SIGKILLed every controller; restarting as %s" % mode)
        self.ctls.start_mode(mode)

    def controller_kill_leader(self):
        if self.ctls.mode != "pair":
            self.controller_kill()
            return "controller_kill"
        c = self.ctls.leader()
        if c is None:
            return False
        self.ctls.kill_one(c)
        self.log("chaos: SIGKILLed the leader %s" % c.instance)
        self.stopping.wait(self.rng.uniform(1, 5))
        self.ctls.restart(c)

    # ---- Valkey ----
    def valkey_restart(self):
        self._restart_valkey(loss=False)

    def valkey_restart_data_loss(self):
        self._restart_valkey(loss=True)

    def valkey_flushall(self):
        self.checker.open_window("FLUSHALL")
        v = self.sc.valkey()
        try:
            v.command("FLUSHALL")
        finally:
            v.close()
        self.log("chaos: FLUSHALL")

    def _restart_valkey(self, loss):
        c = self.sc
        if loss:
            self.checker.open_window("Valkey restart with data loss")
        v = c.valkey()
        try:
            v.command("SHUTDOWN", "NOSAVE" if loss else "SAVE")
        except (OSError, EOFError, resp.RespError):
            pass  # the server closes the connection as it exits
        finally:
            v.close()
        old = [p for n, p in c.procs if n == "redis"]
        for p in old:
            try:
                p.wait(10)
            except Exception:
                p.kill()
                p.wait()
        c.procs = [(n, p) for n, p in c.procs if n != "redis"]
        dump = os.path.join(c.root, "dump.rdb")
        if loss and os.path.exists(dump):
            os.unlink(dump)
        down = self.rng.uniform(0.3, 3)
        self.stopping.wait(down)
        start_redis(lambda cmd: SPAWNER.call(c._spawn, "redis", cmd), c.root,
                    port=c.valkey_port, timeout=20, password=c.password)
        self.log("chaos: Valkey restarted %s data loss (down %.1fs)" % (
            "WITH" if loss else "without", down))

    # ---- the API server ----
    def admin(self, method, path, body=None):
        req = urllib.request.Request(c_url(self.sc) + "/_kubeapi" + path, method=method,
                                     data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=_insecure()) as r:
            return json.loads(r.read() or b"{}")

    def fault(self, kind, **f):
        f.setdefault("path", NOT_SOAK + API_PATHS)
        doc = self.admin("POST", "/faults", f)
        self.fault_ids.append((doc["id"], kind))
        self.log("chaos: %s %s" % (kind, json.dumps({k: v for k, v in f.items()
                                                      if k != "path"})))

    def api_5xx(self):
        self.fault("api_5xx", status=self.rng.choice([500, 503, 504]),
                   count=self.rng.randint(3, 15))

    def api_409(self):
        self.fault("api_409", method="PUT|PATCH", status=409, count=self.rng.randint(2, 8),
                   path=NOT_SOAK + r".*(/keyrotations|/secrets|/leases)")

    def api_429(self):
        self.fault("api_429", status=429, retryAfter=1, count=self.rng.randint(2, 6))

    def api_connection_drop(self):
        self.fault("api_connection_drop", drop=True, count=self.rng.randint(2, 6))

    def api_slow(self):
        self.fault("api_slow", delayMs=self.rng.randint(1000, 4000), count=self.rng.randint(1, 4))

    def api_delay(self):
        ms = self.rng.randint(100, 800)
        self.admin("POST", "/delay", {"ms": ms})
        self.log("chaos: every API request delayed %d ms" % ms)
        try:
            self.stopping.wait(self.rng.uniform(2, 6))
        finally:
            self.admin("POST", "/delay", {"ms": 0})

    def watch_drop(self):
        n = self.admin("POST", "/watches/drop")["dropped"]
        self.log("chaos: dropped %d watches" % n)

    def watch_410_gone(self):
        self.admin("POST", "/compact")
        n = self.admin("POST", "/watches/drop")["dropped"]
        self.log("chaos: compacted the watch history and dropped %d watches (410 Gone)" % n)

    def watch_stall(self):
        s = self.rng.uniform(2, 6)
        self.admin("POST", "/watches/stall")
        self.log("chaos: watches stalled for %.1fs" % s)
        try:
            self.stopping.wait(s)
        finally:
            self.admin("POST", "/watches/resume")

    def calm(self):
        """No fault left armed, no delay, watches flowing; returns fault_hits() from before."""
        hits = self.fault_hits()
        self.admin("DELETE", "/faults")
        self.admin("POST", "/delay", {"ms": 0})
        self.admin("POST", "/watches/resume")
        return hits

    def fault_hits(self):
        """{kind: requests that got the fault} from the API server's fault table."""
        hits = {}
        faults = {f["id"]: f for f in self.admin("GET", "/faults").get("faults") or []}
        for fid, kind in self.fault_ids:
            hits[kind] = hits.get(kind, 0) + (faults.get(fid) or {}).get("hits", 0)
        return hits


def c_url(sc):
    return sc.kubeapi_url.rstrip("/")


def _insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
