"""faultlib.py - what the fault-injection tests stand on: a KeyRotation case (tests/rotation's
RotationCase with a seeded key) that drives one manual rotation through one fault, records
every status the controller writes (so a condition that lasted a moment is still seen), and
checks the end state users rely on: completed or rolled back, never half-done.

Python 3 standard library only. The controller binary comes from $KR_BINARY.
"""
import json
import os
import shutil
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
from rotlib import (EVENTS, KR_PATH, SIRIUS, RotationCase, key_id, member,
                    sirius_spec, wait_for)
from krtest import resp
from krtest.servers import start_redis
import scan_keys

KR = "sirius-service-key"
NS_NAME = "sirius/" + KR
FOREIGN = "foreign-tenant-member"  # another tenant's member of api_keys:active
TIMINGS = []  # (test id, seconds of the rotation, seconds of the whole test)
WITNESSES = []  # (test id, the condition that said what happened) for the summary


class StatusRecorder(threading.Thread):
    """Every version of the KeyRotation the API server hands out (list + watch, resumed on a
    dropped watch, relisted on 410): [(monotonic time, status)]. A condition the controller
    wrote for a moment (KeyStoreInSync Repaired, say) is in here even when polling missed it."""

    def __init__(self, kube):
        super().__init__(daemon=True, name="status-recorder")
        self.kube, self.seen, self.stop = kube, [], threading.Event()
        self.paused = threading.Event()  # set: no request at all (a test counts requests)
        self.lock = threading.Lock()

    def add(self, obj):
        if obj and obj.get("metadata", {}).get("name") == KR:
            with self.lock:
                self.seen.append((time.monotonic(), obj.get("status") or {}))

    def run(self):
        while not self.stop.is_set():
            if self.paused.is_set():
                self.stop.wait(0.05)
                continue
            try:
                code, lst = self.kube.request("GET", KR_PATH)
                if code != 200:
                    self.stop.wait(0.2)
                    continue
                for o in lst.get("items") or []:
                    self.add(o)
                rv = lst["metadata"]["resourceVersion"]
                for ev in self.kube.watch(KR_PATH, rv):
                    if self.stop.is_set() or self.paused.is_set() or \
                            ev.get("type") == "ERROR":
                        break
                    if ev.get("type") in ("ADDED", "MODIFIED"):
                        self.add(ev["object"])
            except (OSError, ValueError, KeyError) as e:
                del e
                self.stop.wait(0.1)

    def since(self, t0):
        with self.lock:
            return [st for t, st in self.seen if t >= t0]


def cond_list(status):
    return status.get("conditions") or []


class FaultCase(RotationCase):
    """One cluster and controller per class, a seeded key adopted; each test is one manual
    rotation through one fault. Subclasses may override spec() and setUpFaultCluster()."""
    seed_key = True
    start_controller = False
    client_rate = 2
    ctl_flags = ("--keystore-timeout", "1s", "--keystore-check-interval", "1s")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.ctl.extra = list(cls.ctl_flags)
            cls.ctl.start()
            cls.recorder = StatusRecorder(cls.c.kube)
            cls.recorder.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        rec = getattr(cls, "recorder", None)
        if rec:
            rec.stop.set()
        super().tearDownClass()

    @classmethod
    def setUpCluster(cls):
        cls.setUpFaultCluster()
        cls.create_kr_cls(KR, cls.spec())
        v = cls.c.valkey()
        try:
            v.command("SADD", "api_keys:active", FOREIGN)
        finally:
            v.close()

    @classmethod
    def setUpFaultCluster(cls):
        """Anything to change before the KeyRotation exists."""

    @classmethod
    def spec(cls):
        return sirius_spec(timeout="120s")

    def setUp(self):
        self.test_t0 = time.monotonic()
        self.rot_t0 = None

    def tearDown(self):
        if self.rot_t0 is not None:
            TIMINGS.append((self.id(), self.rot_t1 - self.rot_t0,
                            time.monotonic() - self.test_t0))

    # ---- one rotation ----
    def begin(self, value):
        """Wait for an idle object, remember what the end state is checked against, and ask
        for a rotation with keyrotator.io/rotate=value."""
        obj = self.wait_status(KR, lambda st: st.get("phase") in ("Idle", "Failed") and
                               st.get("currentKey") and not st.get("pendingKey"), 60,
                               "an idle KeyRotation")
        self.old = self.secret_value("sirius-api-key")
        self.assertEqual(key_id(self.old), obj["status"]["currentKey"]["id"])
        self.value = value
        self.templates0 = {n: self.template_key_id(n) for n in SIRIUS}
        self.n_lines = len(self.ctl.log_lines())
        self.known_members = set(self.store()["meta"])
        evs = self.events(KR)
        self.event_rv0 = max((int(e["metadata"]["resourceVersion"]) for e in evs), default=0)
        # An Event that comes again is counted up (client-go's aggregation): what this
        # rotation announced is each Event's count now minus its count before it began.
        self.event_counts0 = {e["metadata"]["name"]: int(e.get("count") or 1) for e in evs}
        self.rot_t0 = self.rot_t1 = time.monotonic()
        self.annotate_dict(KR, {"keyrotator.io/rotate": value})

    def wait_point(self, pred, what, timeout=60):
        """Wait for a point of the rotation in flight; its status."""
        return self.wait_status(KR, pred, timeout, what)["status"]

    def at_stage(self, index):
        return lambda st: st.get("phase") == "Rotating" and \
            (st.get("rotation") or {}).get("stageIndex", -1) >= index

    def seen_condition(self, ctype, status, reason=None, contains=(), timeout=30, what=""):
        """Wait until the controller has written (since begin()) condition `ctype` with
        `status` (and `reason`, and every string of `contains` in its message); it."""
        def match():
            self.status(KR)  # a poll too, in case the recorder's watch is faulted
            for st in self.recorder.since(self.rot_t0) + [self.status(KR)]:
                for c in cond_list(st):
                    if c["type"] == ctype and c["status"] == status and \
                            (reason is None or c.get("reason") == reason) and \
                            all(s in c.get("message", "") for s in contains):
                        return c
            return None
        try:
            c = wait_for(match, timeout, what or "%s=%s %s" % (ctype, status, reason))
            WITNESSES.append((self.id(), "%s=%s %s: %s" % (
                c["type"], c["status"], c.get("reason"), c.get("message"))))
            return c
        except TimeoutError as e:
            conds = {(c["type"], c["status"], c.get("reason"), c.get("message"))
                     for st in self.recorder.since(self.rot_t0) for c in cond_list(st)}
            raise AssertionError("%s; conditions seen: %s; log tail: %s" % (
                e, sorted(conds), self.log_tail())) from None

    def log_tail(self, n=8):
        return [o.get("msg") for o in self.ctl.log_lines()[self.n_lines:]][-n:]

    def finish(self, timeout=90):
        """Wait for the end of the rotation asked for in begin(); its status."""
        st = self.wait_point(lambda st: st.get("lastHandledRequest") == self.value and
                             st.get("phase") in ("Idle", "Failed") and
                             not st.get("pendingKey"), "the end of rotation %s" % self.value,
                             timeout)
        self.rot_t1 = time.monotonic()
        return st

    def holds(self, seconds, check):
        """For `seconds`, check() keeps passing (the rotation holds where it is)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            check()
            time.sleep(0.2)

    # ---- the end state ----
    def store_safe(self):
        """rotlib's store(), or None while Valkey cannot answer."""
        try:
            return self.store()
        except (OSError, EOFError, resp.RespError):
            return None

    def assert_clean_end(self, st, outcome="Succeeded"):
        """Completed (outcome Succeeded) or rolled back (RolledBack), never half-done:
        exactly one key of this KeyRotation active in Valkey, the one in the consumers'
        Secret and on every workload's pod template, the others revoked; the rotation Secret
        empty; status says the same; another tenant's member untouched."""
        key = self.secret_value("sirius-api-key")
        kid = key_id(key)
        s = self.store()
        ours = {member(k) for k in self.raw_keys if k and k.startswith("sk_")}
        ours |= {m for m, meta in s["meta"].items() if meta.get("rotation") == NS_NAME}
        active = ours & s["active"]
        self.assertEqual(active, {member(key)},
                         "exactly one key of %s active, the Secret's (%s); active ids: %s" % (
                             KR, kid, sorted(m[:12] for m in active)))
        self.assert_active(s, key)
        for m in ours - {member(key)}:
            meta = s["meta"].get(m)
            if meta is not None or m == member(self.old):
                self.assertEqual((meta or {}).get("status"), "revoked",
                                 "meta of a key that is not current (%s)" % m[:12])
        self.assertEqual(s["marker"], kid, "api_keys:bootstrap")
        self.assertIn(FOREIGN, s["active"], "another tenant's member was removed")
        for n in SIRIUS:
            want = {kid} if self.templates0[n] is not None or outcome == "Succeeded" \
                else {kid, None}
            self.assertIn(self.template_key_id(n), want, "keyrotator.io/key-id of %s" % n)
        self.assert_rotation_secret_clear(KR)
        self.assertEqual(st["currentKey"]["id"], kid)
        self.assertNotIn("previousKey", st)
        self.assertEqual(st["history"][-1]["outcome"], outcome, st["history"][-1])
        if outcome == "Succeeded":
            self.assertNotEqual(kid, key_id(self.old), "no new key")
            self.assertEqual(st["phase"], "Idle")
            self.assertEqual({c["type"]: c["status"] for c in cond_list(st)},
                             {"Ready": "True", "Rotating": "False", "Degraded": "False",
                              "KeyStoreInSync": "True"})
        else:
            self.assertEqual(kid, key_id(self.old), "a rollback keeps the old key")
            self.assertEqual(st["phase"], "Failed")
        return key

    def rotation_events(self):
        return [e for e in self.events(KR)
                if int(e["metadata"]["resourceVersion"]) > self.event_rv0]

    def assert_no_repeated_events(self):
        """Each step of the rotation announced once: a step redone after a failed or
        refused write must not post its Event again."""
        seen = {}
        for e in self.rotation_events():
            k = (e["reason"], e["message"])
            seen[k] = seen.get(k, 0) + int(e.get("count") or 1) - \
                self.event_counts0.get(e["metadata"]["name"], 0)
        self.assertEqual({k: n for k, n in seen.items() if n > 1}, {},
                         "Events repeated in one rotation")

    def new_keys_this_rotation(self):
        """Metadata hashes of keys this KeyRotation created since begin() (one per rotation)."""
        return [m for m, meta in self.store()["meta"].items()
                if meta.get("rotation") == NS_NAME and m != member(self.old) and
                m not in self.known_members]

    # ---- raw keys ----
    def assert_no_raw_key_anywhere(self, extra_secrets=()):
        """scan_keys over the controller log, the Events and the KeyRotation: neither a key
        seen in a Secret (raw or base64) nor anything shaped like a keyrotator key."""
        keys = [k for k in self.raw_keys if k] + list(extra_secrets)
        self.assertTrue(keys)
        with open(self.ctl.log_path, "rb") as f:
            texts = {"controller log": f.read()}
        texts["Events"] = json.dumps(self.get(EVENTS))
        texts["KeyRotation"] = json.dumps(self.kr(KR))
        findings = []
        for where, text in texts.items():
            findings += [str(f) for f in scan_keys.scan_text(text, keys=keys, path=where)]
        self.assertEqual(findings, [])


class Valkey:
    """The cluster's redis-server, restartable on the same port: append-only file fsynced on
    every write (a kill keeps the data) or wiped (a kill loses it); DEBUG allowed locally."""

    def __init__(self, cluster):
        self.c = cluster

    def proc(self):
        return next(p for name, p in self.c.procs if name == "redis")

    def kill(self):
        p = self.proc()
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        self.c.procs.remove(("redis", p))

    def wipe(self):
        shutil.rmtree(os.path.join(self.c.root, "appendonlydir"), ignore_errors=True)
        for f in ("dump.rdb",):
            if os.path.exists(os.path.join(self.c.root, f)):
                os.unlink(os.path.join(self.c.root, f))

    def start(self):
        start_redis(lambda cmd: self.c._spawn("redis", cmd), self.c.root,
                    port=self.c.valkey_port, timeout=15, password=self.c.password, aof=True,
                    extra=("--enable-debug-command", "local"))

    def restart(self, keep_data):
        self.kill()
        if not keep_data:
            self.wipe()
        self.start()

    def command(self, *args):
        v = self.c.valkey()
        try:
            return v.command(*args)
        finally:
            v.close()


def print_timings():
    if TIMINGS:
        print("\nfault scenario timings (rotation s / whole test s):", file=sys.stderr)
        for name, rot, whole in TIMINGS:
            print("  %-60s %6.1f %6.1f" % (name.split(".", 1)[-1], rot, whole), file=sys.stderr)
    if WITNESSES and os.environ.get("KR_FAULTS_VERBOSE"):
        print("conditions seen while the faults lasted:", file=sys.stderr)
        for name, text in WITNESSES:
            print("  %s: %s" % (name.split(".", 1)[-1], text), file=sys.stderr)


