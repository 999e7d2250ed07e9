"""rotlib.py - helpers for the rotation integration tests: the simulated cluster of
tests/sim (local API server, redis-server, workload simulator) plus a `keyrotator run`
process, and readers for what users rely on (Secrets, the Valkey layout, status, Events,
pod templates, the simulator's pod events, /metrics, the controller's JSON log).

Python 3 standard library only. The controller binary comes from $KR_BINARY.
"""
import base64
import hashlib
import json
import os
import re
import socket
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import cluster
import krtest.controller
from cluster import NAMESPACE, key_id
from krtest import wait_for
from krtest.controller import metric_sum, parse_metrics  # noqa: F401 (for the tests)
KR_PATH = "/apis/keyrotator.io/v1alpha1/namespaces/%s/keyrotations" % NAMESPACE
SECRETS = "/api/v1/namespaces/%s/secrets" % NAMESPACE
EVENTS = "/api/v1/namespaces/%s/events" % NAMESPACE
DEPLOY = "/apis/apps/v1/namespaces/%s/deployments" % NAMESPACE
MERGE = "application/merge-patch+json"
KEY_ID_ANN = "keyrotator.io/key-id"
SIRIUS = ("sirius-api", "sirius-ui", "sirius-engine")
# A controller log line that announces an action: "GENERATE: generate a new key ...".
ACTION_RE = re.compile(r"^([A-Z][A-Z_]+): (.*)$")
HOLDS = ("WAIT", "REFUSE", "NONE")
CAMEL_RE = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*$")


def member(key, store_as="sha256"):
    """The activeSet member of a raw key (DESIGN.md §1 keyStore.storeAs)."""
    return hashlib.sha256(key.encode()).hexdigest() if store_as == "sha256" else key


def sirius_spec(secret="sirius-api-key", stages=None, timeout="60s", key_store=cluster.KEY_STORE,
                **extra):
    """A KeyRotation spec for the simulated Sirius workloads: api -> ui -> engine, with the
    key store of KeyStore `key_store` (RotationCase creates cluster.KEY_STORE)."""
    if stages is None:
        stages = [{"name": n.split("-")[1], "timeout": timeout,
                   "workloads": [{"kind": "Deployment", "name": n}]} for n in SIRIUS]
    spec = {"secretRef": {"name": secret, "key": "SIRIUS_API_KEY"},
            "keyStoreRef": cluster.key_store_ref(key_store),
            "key": {"prefix": "sk_", "bytes": 32},
            "stages": stages, "validationPeriod": "1s"}
    spec.update(extra)
    return spec


class DelayProxy:
    """A TCP relay in front of the API server that holds every chunk the client sends for
    `delay` seconds (TLS passes through untouched; replies are not delayed). The kill test
    uses it so that a SIGKILL sent when a log line appears lands before the request the
    controller sends next reaches the server: the controller then dies at that very step,
    not a few steps later."""

    def __init__(self, upstream_port, delay):
        self.upstream, self.delay = upstream_port, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, self.delay),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, 0), daemon=True).start()

    @staticmethod
    def _pump(src, dst, delay):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def kubeconfig(self, original, path):
        """A copy of kubeconfig `original` whose server is this proxy."""
        with open(original) as f:
            text = f.read()
        text = re.sub(r"(server: https://127\.0\.0\.1:)\d+", r"\g<1>%d" % self.port, text)
        with open(path, "w") as f:
            f.write(text)
        return path

    def close(self):
        self.closed = True
        self.sock.close()


class Controller(krtest.controller.Controller):
    """`keyrotator run` (instance rotation-it) on the simulated cluster's namespace, logging
    to <root>/controller.log; start(kill_on=f) SIGKILLs it on a log line (see
    krtest.controller)."""

    def __init__(self, root, kubeconfig, skew_file=None, extra=()):
        super().__init__(kubeconfig, os.path.join(root, "controller.log"), namespace=NAMESPACE,
                         instance="rotation-it", extra=extra, skew_file=skew_file)
        self.root = root

    def log_lines(self):
        """Every line logged so far (all runs); a line that is not JSON is {"msg": line,
        "unparsed": True}."""
        return super().log_lines(unparsed=True)

    def actions(self, since=0):
        """[(ACTION, reason)] announced in the log, from line index `since`: the steps.
        Holds and refusals (WAIT, REFUSE, NONE), logged when they change status, are not."""
        out = []
        for obj in self.log_lines()[since:]:
            m = ACTION_RE.match(obj.get("msg", ""))
            if m and m.group(1) not in HOLDS:
                out.append((m.group(1), m.group(2)))
        return out


class RotationCase(unittest.TestCase):
    """One simulated cluster and one controller per class. Subclasses set the class
    attributes below; tests in a class run in name order and may build on each other.
    Before setUpCluster the cluster has the KeyStore cluster.KEY_STORE (with the password
    Secret valkey-auth when valkey_password is set) and, with seed_key, the consumers' Secret
    opted in for the KeyRotations `adopters`."""
    seed_key = False
    adopters = ("sirius-service-key",)
    valkey_password = None
    start_controller = True
    client_rate = 5
    controller_args = ()
    cluster_args = {}  # more cluster.Cluster arguments (valkey_tls, sentinel)

    @classmethod
    def setUpClass(cls):
        cls.root = krtest.mkdtemp("kr-rotation-")
        cls.c = cluster.Cluster(cls.root, seed_key=cls.seed_key, client_rate=cls.client_rate,
                                valkey_password=cls.valkey_password, **cls.cluster_args)
        cls.c.__enter__()
        cls.valkey_addr = "127.0.0.1:%d" % cls.c.valkey_port
        cls.raw_keys = set()
        if cls.seed_key:
            cls.raw_keys.add(cls.c.bootstrap_key)
        cls.skew_file = os.path.join(cls.root, "clock-skew")
        cls.set_skew(0)
        cls.ctl = Controller(cls.root, cls.c.kubeconfig, cls.skew_file, cls.controller_args)
        try:
            cls.c.create_key_store()
            if cls.seed_key:
                cls.c.opt_in(cluster.SECRET, *cls.adopters)
            if cls.seed_key:  # the pods run before anything is measured against them
                for n in SIRIUS:
                    wait_for(lambda: cls.complete(n), 30, "the rollout of " + n)
            cls.setUpCluster()
            if cls.start_controller:
                cls.ctl.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def setUpCluster(cls):
        """Objects to create before the controller starts."""

    @classmethod
    def tearDownClass(cls):
        cls.ctl.stop()
        cls.c.down()
        krtest.rmtree(cls.root)

    @classmethod
    def set_skew(cls, seconds):
        tmp = cls.skew_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % seconds)
        os.replace(tmp, cls.skew_file)

    @classmethod
    def complete(cls, name):
        """Deployment `name` runs its template on every replica (kubectl rollout status)."""
        code, d = cls.c.api("GET", DEPLOY + "/" + name)
        st, want = (d.get("status") or {}) if code == 200 else {}, d["spec"].get("replicas", 1)
        return st.get("observedGeneration", 0) >= d["metadata"]["generation"] and \
            st.get("updatedReplicas", 0) == st.get("availableReplicas", 0) == \
            st.get("replicas", 0) == want

    # ---- the API ----
    def api(self, method, path, body=None, ctype="application/json"):
        return self.c.api(method, path, body, ctype)

    def get(self, path, missing_ok=False):
        code, obj = self.api("GET", path)
        if missing_ok and code == 404:
            return None
        self.assertEqual(code, 200, "GET %s: %s" % (path, obj))
        return obj

    def create_kr(self, name, spec, annotations=None):
        body = {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
                "metadata": {"name": name, "namespace": NAMESPACE,
                             "annotations": annotations or {}}, "spec": spec}
        code, obj = self.api("POST", KR_PATH, body)
        self.assertEqual(code, 201, obj)
        return obj

    @classmethod
    def create_kr_cls(cls, name, spec):
        body = {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
                "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}
        code, obj = cls.c.api("POST", KR_PATH, body)
        if code != 201:
            raise RuntimeError("creating KeyRotation %s: %s" % (name, obj))

    def delete_kr(self, name):
        code, obj = self.api("DELETE", KR_PATH + "/" + name)
        self.assertIn(code, (200, 404), obj)

    def kr(self, name):
        return self.get(KR_PATH + "/" + name)

    def status(self, name):
        return self.kr(name).get("status") or {}

    def patch_kr(self, name, body):
        code, obj = self.api("PATCH", KR_PATH + "/" + name, body, MERGE)
        self.assertEqual(code, 200, obj)
        return obj

    def annotate_dict(self, name, ann):
        """Merge-patch metadata.annotations of KeyRotation `name` (None deletes one)."""
        return self.patch_kr(name, {"metadata": {"annotations": ann}})

    def touch(self, name):
        """Any annotation change: wakes the controller for this object."""
        return self.annotate_dict(name, {"rotation-it/touch": "%.6f" % time.time()})

    def wait_status(self, name, pred, timeout, what):
        """Poll the KeyRotation until pred(status) is truthy; the whole object."""
        last = {}

        def check():
            obj = self.kr(name)
            last["status"] = obj.get("status") or {}
            return obj if pred(last["status"]) else None
        try:
            return wait_for(check, timeout, what)
        except TimeoutError as e:
            raise AssertionError("%s; last status: %s; controller actions: %s" % (
                e, json.dumps(last.get("status"), sort_keys=True),
                self.ctl.actions()[-12:])) from None

    def wait_rotated(self, name, n_history, timeout=60, what="the rotation"):
        """Wait until phase is Idle/Failed with `n_history` history entries; the object."""
        return self.wait_status(
            name, lambda st: st.get("phase") in ("Idle", "Failed") and
            len(st.get("history") or []) >= n_history and not st.get("pendingKey"),
            timeout, what)

    def condition(self, status, ctype):
        return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})

    # ---- Secrets ----
    def secret_value(self, name, key="SIRIUS_API_KEY"):
        """The decoded data[key] of Secret `name` (remembered for the raw-key scan)."""
        s = self.get(SECRETS + "/" + name, missing_ok=True)
        if s is None or key not in (s.get("data") or {}):
            return None
        value = base64.b64decode(s["data"][key]).decode()
        self.raw_keys.add(value)
        return value

    def rotation_secret(self, kr_name):
        s = self.get(SECRETS + "/" + kr_name + "-rotation", missing_ok=True)
        if s is not None:
            for v in (s.get("data") or {}).values():
                self.raw_keys.add(base64.b64decode(v).decode())
        return s

    def assert_rotation_secret_clear(self, kr_name):
        """No key in flight: `<name>-rotation` is absent or holds neither pending nor
        previous (it is cleared, not deleted: RBAC grants no delete on Secrets)."""
        s = self.rotation_secret(kr_name)
        if s is not None:
            data = s.get("data") or {}
            self.assertNotIn("pending", data, "a pending key left in %s-rotation" % kr_name)
            self.assertNotIn("previous", data, "a previous key left in %s-rotation" % kr_name)

    # ---- the key store (DESIGN.md §1 keyStore layout) ----
    def store(self, active_set="api_keys:active", marker="api_keys:bootstrap"):
        """{"active": set of members, "meta": {member: {field: value}}, "marker": str}."""
        v = self.c.valkey()
        try:
            active = {m.decode() for m in v.command("SMEMBERS", active_set)}
            metas = {}
            for k in v.command("KEYS", "api_key:*:meta"):
                k = k.decode()
                metas[k[len("api_key:"):-len(":meta")]] = v.hgetall(k)
            mark = v.command("GET", marker)
        finally:
            v.close()
        metas = {m: {(a.decode() if isinstance(a, bytes) else a):
                     (b.decode() if isinstance(b, bytes) else b) for a, b in h.items()}
                 for m, h in metas.items()}
        return {"active": active, "meta": metas,
                "marker": mark.decode() if isinstance(mark, bytes) else mark}

    def assert_active(self, store, key, msg=""):
        m = member(key)
        self.assertIn(m, store["active"], "key %s not in api_keys:active %s" % (key_id(key), msg))
        self.assertEqual(store["meta"].get(m, {}).get("status"), "active",
                         "meta of %s %s" % (key_id(key), msg))

    def assert_revoked(self, store, key, msg=""):
        m = member(key)
        self.assertNotIn(m, store["active"], "key %s still in api_keys:active %s" % (
            key_id(key), msg))
        meta = store["meta"].get(m, {})
        self.assertEqual(meta.get("status"), "revoked", "meta of %s %s" % (key_id(key), msg))
        self.assertRegex(meta.get("revoked_at", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    # ---- workloads ----
    def deployment(self, name):
        return self.get(DEPLOY + "/" + name)

    def template_key_id(self, name):
        d = self.deployment(name)
        return ((d["spec"]["template"].get("metadata") or {}).get("annotations") or {}).get(
            KEY_ID_ANN)

    def generations(self):
        return {n: self.deployment(n)["metadata"]["generation"] for n in SIRIUS}

    def sim_events(self, **match):
        with open(os.path.join(self.c.state_dir, "events.jsonl")) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if all(e.get(k) == v for k, v in match.items())]

    def started_hashes(self, workload, since_mono):
        """Distinct pod-template hashes of the pods of `workload` started after since_mono."""
        return {e["hash"] for e in self.sim_events(workload=workload, event="start")
                if e["mono"] > since_mono}

    def assert_one_restart_each(self, gens_before, since_mono, new_id):
        """Each Deployment's template changed exactly once (one generation, one new
        pod-template hash started) and now carries `new_id`."""
        after = self.generations()
        for n in SIRIUS:
            self.assertEqual(after[n], gens_before[n] + 1, "generation of %s" % n)
            self.assertEqual(self.template_key_id(n), new_id, "key-id on %s" % n)
            self.assertEqual(len(self.started_hashes(n, since_mono)), 1,
                             "%s restarted with more than one new template" % n)

    # ---- Events ----
    def events(self, name):
        """Events about KeyRotation `name`, in creation order."""
        items = self.get(EVENTS)["items"]
        items = [e for e in items if e["involvedObject"].get("kind") == "KeyRotation" and
                 e["involvedObject"].get("name") == name]
        items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return items

    def reasons(self, events):
        return [e["reason"] for e in events]

    def assert_camel_case(self, events):
        for e in events:
            self.assertRegex(e["reason"], CAMEL_RE, "Event reason not CamelCase")
            self.assertIn(e["type"], ("Normal", "Warning"))

    # ---- the controller ----
    def reconciles(self):
        return metric_sum(self.ctl.metrics(), "keyrotator_reconcile_total")

    def wait_reconciled(self, name, n=1):
        """Touch `name` and wait until the controller has reconciled at least `n` more
        times (proof that it looked, before asserting that nothing happened)."""
        before = self.reconciles()
        self.touch(name)
        wait_for(lambda: self.reconciles() >= before + n, 20, "%d more reconciles" % n)

    def assert_no_raw_key(self, names):
        """No raw key seen in any Secret appears in the controller log, Events or the
        status of the KeyRotations `names` (raw or base64)."""
        needles = set()
        for k in self.raw_keys:
            if k:
                needles |= {k, base64.b64encode(k.encode()).decode()}
        self.assertTrue(needles, "no raw keys were collected")
        with open(self.ctl.log_path, errors="replace") as f:
            haystacks = {"controller log": f.read()}
        haystacks["Events"] = json.dumps(self.get(EVENTS))
        for n in names:
            haystacks["KeyRotation %s" % n] = json.dumps(self.kr(n))
        for where, text in haystacks.items():
            for k in needles:
                self.assertNotIn(k, text, "a raw key (id %s) in the %s" % (
                    key_id(k) if len(k) < 80 else "?", where))
