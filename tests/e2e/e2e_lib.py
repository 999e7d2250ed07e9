"""e2e_lib.py - what the end-to-end scenarios stand on: a cluster fixture (the simulated cluster
of tests/sim, swappable for a real one), the keyrotator controller as a child process, the
KeyRotation object, and readers for what consumers saw (401s, pod starts, the key store).

Only Python's standard library. Raw keys never leave this process: they are compared by id
(first 12 hex of SHA-256) in every message.
"""
import atexit
import base64
import glob
import hashlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SIM = os.path.join(REPO, "tests", "sim")
import cluster
import krtest.controller
from krtest import listening, resp, rmtree  # noqa: F401 (for the scenarios)
from krtest.controller import binary  # noqa: F401 (soak and the attack suite use it)

KR_PATH = "/apis/keyrotator.io/v1alpha1/namespaces/%s/keyrotations"
DEPLOY_PATH = "/apis/apps/v1/namespaces/%s/deployments"
RS_PATH = "/apis/apps/v1/namespaces/%s/replicasets"
REVISION = "deployment.kubernetes.io/revision"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
CONSUMERS = ("sirius-ui", "sirius-engine")
KEYROTATION = "sirius-service-key"  # the scenarios' KeyRotation (the example's name)
wait_for = cluster.wait_for

def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def member(key, store_as="sha256"):
    return hashlib.sha256(key.encode()).hexdigest() if store_as == "sha256" else key


def ping(url, key=None, timeout=3):
    """HTTP status of GET <url>/api/v1/ping with X-API-Key (None: no answer)."""
    headers = {"Connection": "close"}
    if key is not None:
        headers["X-API-Key"] = key
    req = urllib.request.Request(url.rstrip("/") + "/api/v1/ping", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class SimFixture:
    """The simulated cluster (tests/sim/cluster.py): kubeapi + redis-server + the kubelet and
    workload-controller stand-ins (+ prometheus). Everything runs on loopback under `root`;
    down() stops it all.

    The interface the scenarios use (a fixture for a real cluster provides the same):
    kubeconfig, namespace, valkey_addr, api_url, prometheus_url, store_as; api(), valkey(),
    pod_events(), counters(), create_consumer(), add_env(), delete_deployment(), flush_keystore(),
    secret_key().

    With `kubeconfig` (KEYROTATOR_E2E_KUBECONFIG) the API server is an external one, a real
    cluster's: everything else still runs here, in a new namespace keyrotator-e2e-<8 hex> that
    down() empties and deletes, and the suite's pods run on the kubelet stand-in's own Node.
    Whether that cluster runs workload controllers is detected (cluster.has_workload_controllers):
    with them only the kubelet stand-in runs and the cluster's own controllers roll the
    Deployments; without them the workload-controller stand-in does (README "End-to-end
    tests", "Against a real cluster")."""

    def __init__(self, root, prometheus=False, client_rate=10, kubeconfig=None, context=None):
        self.root = root
        self.real = kubeconfig is not None
        self.keep = bool(os.environ.get("KEYROTATOR_E2E_KEEP"))
        ns = "keyrotator-e2e-" + secrets.token_hex(4) if self.real else None
        self.c = cluster.Cluster(root, seed_key=True, prometheus=prometheus,
                                 client_rate=client_rate, rollout_delay=0.2,
                                 kubeconfig=kubeconfig, context=context, namespace=ns,
                                 keep_namespace=self.keep)
        self.namespace = self.c.namespace
        self.controllers = []  # Controller registers itself: down() kills what still runs

    def up(self):
        if self.real:
            _LIVE.add(self)
            _catch_signals()
        self.c.__enter__()
        self.kubeconfig = self.c.kubeconfig
        self.valkey_addr = "127.0.0.1:%d" % self.c.valkey_port
        self.api_url = self.c.api_url
        self.prometheus_url = getattr(self.c, "prometheus_url", None)
        self.store_as = self.c.store_as
        if self.real:
            print("\nreal cluster %s: namespace %s" % (self.c.kubeapi_url, self.namespace),
                  file=sys.stderr)
            print(self.mode(), file=sys.stderr)
            _ensure_crd(self.c.kube)
        # What an administrator does before the team's KeyRotation: the KeyStore it names,
        # and the Secret the pods already read opted in for it.
        self.c.create_key_store()
        self.c.opt_in(cluster.SECRET, KEYROTATION)
        for name in ("sirius-api",) + CONSUMERS:
            self.wait_rollout(name, timeout=30)
        wait_for(lambda: ping(self.api_url, self.secret_key()) == 200, 20, "the api Service")
        return self

    def down(self):
        for c in self.controllers:
            c.kill()
        self.c.down()
        if not self.real or self not in _LIVE:
            return
        _LIVE.discard(self)
        if self.keep:
            print("\nKEYROTATOR_E2E_KEEP: namespace %s kept in %s" % (
                self.namespace, self.c.kubeapi_url), file=sys.stderr)
        elif self.c.cleanup_left:
            print("\nnamespace %s: NOT cleaned up: %s" % (
                self.namespace, "; ".join(self.c.cleanup_left)), file=sys.stderr)

    def mode(self):
        """Which of the three modes runs (README "End-to-end tests")."""
        if not self.real:
            return "mode: local API server, kubelet and workload-controller stand-ins"
        if self.c.workload_controllers:
            return ("mode: real cluster with workload controllers (they set the probe "
                    "Deployment's observedGeneration): kubelet stand-in only, node %s"
                    % self.c.node)
        return ("mode: real cluster without workload controllers (the probe Deployment got no "
                "observedGeneration in %.0f s): kubelet and workload-controller stand-ins, "
                "node %s" % (cluster.PROBE_SECONDS, self.c.node))

    # ---- the API server ----
    def api(self, method, path, body=None, ctype="application/json"):
        return self.c.api(method, path, body, ctype)

    def rollout_complete(self, name):
        code, d = self.api("GET", DEPLOY_PATH % self.namespace + "/" + name)
        if code != 200:
            return False
        st, want = d.get("status") or {}, d["spec"].get("replicas", 1)
        return (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and
                st.get("updatedReplicas", 0) == st.get("availableReplicas", 0) ==
                st.get("replicas", 0) == want)

    def wait_rollout(self, name, timeout=30):
        wait_for(lambda: self.rollout_complete(name), timeout, "rollout of " + name)

    def replicasets(self, deployment):
        """The ReplicaSets the Deployment `deployment` owns (ownerReferences), oldest first:
        the cluster's own Deployment controller's, or the workload-controller stand-in's."""
        code, d = self.api("GET", DEPLOY_PATH % self.namespace + "/" + deployment)
        if code != 200:
            raise RuntimeError("GET %s: HTTP %d" % (deployment, code))
        code, lst = self.api("GET", RS_PATH % self.namespace)
        if code != 200:
            raise RuntimeError("list replicasets: HTTP %d" % code)
        return sorted([rs for rs in lst.get("items") or [] if any(
            o.get("uid") == d["metadata"]["uid"] for o in rs["metadata"].get(
                "ownerReferences") or [])],
            key=lambda rs: rs["metadata"]["creationTimestamp"])

    def scaled_up(self, deployment):
        """The one ReplicaSet of `deployment` with replicas, once there is only one."""
        def one():
            up = [rs for rs in self.replicasets(deployment) if rs["spec"].get("replicas")]
            return up[0] if len(up) == 1 else None
        return wait_for(one, 30, "one scaled-up ReplicaSet of " + deployment)

    def secret_key(self):
        """The key in the consumers' Secret now (raw: keep it in memory, print only its id)."""
        code, s = self.api("GET", "/api/v1/namespaces/%s/secrets/%s" % (
            self.namespace, cluster.SECRET))
        if code != 200:
            raise RuntimeError("GET Secret %s: HTTP %d" % (cluster.SECRET, code))
        return base64.b64decode(s["data"][cluster.SECRET_KEY]).decode()

    def create_consumer(self, name, replicas=1, env=(), grace=None):
        """Another client Deployment reading the key from the Secret (like sirius-ui);
        `grace`: its terminationGracePeriodSeconds."""
        self.c.create_deployment(name, "sim/client", [
            {"name": "API_URL", "value": self.api_url}, {"name": "NAME", "value": name},
            {"name": "RATE", "value": "5"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                "name": cluster.SECRET, "key": cluster.SECRET_KEY}}}] + list(env),
            replicas=replicas)
        if grace is not None:
            self.patch_template(name, {"spec": {"terminationGracePeriodSeconds": grace}})
        self.wait_rollout(name)

    def patch_template(self, deployment, template):
        """Merge-patch the pod template of `deployment` and wait for its rollout."""
        code, obj = self.api("PATCH", DEPLOY_PATH % self.namespace + "/" + deployment,
                             {"spec": {"template": template}}, MERGE)
        if code != 200:
            raise RuntimeError("PATCH %s: HTTP %d %s" % (deployment, code, obj))
        self.wait_rollout(deployment)

    def add_env(self, deployment, name, value):
        """Append an env var to the first container (restarts the workload's pods)."""
        code, obj = self.api("PATCH", DEPLOY_PATH % self.namespace + "/" + deployment, [
            {"op": "add", "path": "/spec/template/spec/containers/0/env/-",
             "value": {"name": name, "value": value}}], JSON_PATCH)
        if code != 200:
            raise RuntimeError("PATCH %s: HTTP %d %s" % (deployment, code, obj))
        self.wait_rollout(deployment)

    def delete_deployment(self, name):
        code, _ = self.api("DELETE", DEPLOY_PATH % self.namespace + "/" + name)
        if code not in (200, 202):
            raise RuntimeError("DELETE %s: HTTP %d" % (name, code))

    # ---- the key store ----
    def valkey(self):
        return self.c.valkey()

    def flush_keystore(self):
        v = self.valkey()
        try:
            v.command("FLUSHALL")
        finally:
            v.close()

    # ---- what the pods did (tests/sim state dir) ----
    def pod_events(self):
        with open(os.path.join(self.c.state_dir, "events.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def counters(self, workloads=CONSUMERS):
        """counters.json of every client pod ever started for `workloads`."""
        out = []
        for path in glob.glob(os.path.join(self.c.state_dir, "pods", "*", "counters.json")):
            try:
                with open(path) as f:
                    c = json.load(f)
            except (OSError, ValueError):  # being replaced right now: read it again
                time.sleep(0.01)
                with open(path) as f:
                    c = json.load(f)
            if c.get("name") in workloads:
                out.append(c)
        return out


def make_fixture(root, **kw):
    """KEYROTATOR_E2E_KUBECONFIG selects an external API server (KEYROTATOR_E2E_CONTEXT a
    context in it); see README "End-to-end tests", "Against a real cluster"."""
    kc = os.environ.get("KEYROTATOR_E2E_KUBECONFIG")
    if kc:
        return SimFixture(root, kubeconfig=os.path.expanduser(kc),
                          context=os.environ.get("KEYROTATOR_E2E_CONTEXT") or None, **kw)
    return SimFixture(root, **kw)


# ---- real mode: the CRDs (each installed once per run if absent) and clean-up on signals ----
_LIVE = set()  # real-mode fixtures that are up
_CRD = {}  # "kube": the client that installed CRDs, "names": those (removed at exit)


def _ensure_crd(kube):
    if "checked" in _CRD:
        return
    _CRD["checked"] = True
    names = cluster.ensure_crd(kube)
    if names:
        print("installed CRD %s (removed at the end of the run)" % ", ".join(names),
              file=sys.stderr)
        _CRD["kube"], _CRD["names"] = kube, names
        atexit.register(_remove_crd)


def _remove_crd():
    kube = _CRD.pop("kube", None)
    if kube is None:
        return
    names = _CRD.pop("names")
    if os.environ.get("KEYROTATOR_E2E_KEEP"):
        print("KEYROTATOR_E2E_KEEP: CRD %s left installed" % ", ".join(names), file=sys.stderr)
        return
    try:
        cluster.remove_crd(kube, names)
    except (OSError, RuntimeError, TimeoutError) as e:
        print("removing CRD %s: %s" % (", ".join(names), e), file=sys.stderr)


def _on_signal(signum, _frame):
    """SIGINT/SIGTERM in real mode: unittest would skip tearDown, so clean up here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("\nsignal %d: cleaning up the real cluster" % signum, file=sys.stderr)
    for fx in list(_LIVE):
        fx.down()
    _remove_crd()
    sys.stderr.flush()
    os._exit(128 + signum)


def _catch_signals():
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)


class Controller(krtest.controller.Controller):
    """`keyrotator run` against the fixture's cluster and namespace (instance `instance`,
    log <workdir>/controller-<instance>.log); registers itself with the fixture, whose down()
    stops what still runs."""

    def __init__(self, fx, workdir, instance="e2e", leader_elect=False, extra=()):
        super().__init__(None, os.path.join(workdir, "controller-%s.log" % instance),
                         instance=instance, extra=extra, leader_elect=leader_elect)
        self.fx = fx
        if isinstance(getattr(fx, "controllers", None), list):  # soak passes a bare fx
            fx.controllers.append(self)

    def start(self):
        self.kubeconfig, self.namespace = self.fx.kubeconfig, self.fx.namespace
        self.leader_namespace = self.fx.namespace
        return super().start(ready_timeout=20)


def keyrotation(fx, name=KEYROTATION, stages=None, analysis=False, **spec):
    """A KeyRotation like manifests/examples/sirius-keyrotation.yaml, at test speed: it names
    the KeyStore the fixture made (cluster.KEY_STORE, with the fixture's storeAs)."""
    stages = stages or [["sirius-api"], ["sirius-ui"], ["sirius-engine"]]
    names = ("api", "ui", "engine", "extra")
    body = {"secretRef": {"name": cluster.SECRET, "key": cluster.SECRET_KEY},
            "keyStoreRef": cluster.key_store_ref(),
            "key": {"prefix": "sk_", "bytes": 32},
            "stages": [{"name": names[i], "timeout": "60s",
                        "workloads": [{"kind": "Deployment", "name": w} for w in ws]}
                       for i, ws in enumerate(stages)],
            "validationPeriod": "2s",
            "verify": {"url": fx.api_url.rstrip("/") + "/api/v1/ping", "header": "X-API-Key"}}
    if analysis:
        body["analysis"] = {
            "prometheus": {"url": fx.prometheus_url, "query":
                           'sum(rate(http_requests_total{job="sirius-api",code="401"}[5s]))'
                           ' or vector(0)'},
            "interval": "1s", "threshold": 0.5, "failureLimit": 2, "errorLimit": 4}
    body.update(spec)
    return {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
            "metadata": {"name": name, "namespace": fx.namespace}, "spec": body}


class Rotation:
    """The KeyRotation object of a scenario: create, trigger, read status and Events."""

    def __init__(self, fx, obj):
        self.fx, self.name = fx, obj["metadata"]["name"]
        self.path = KR_PATH % fx.namespace + "/" + self.name
        code, res = fx.api("POST", KR_PATH % fx.namespace, obj)
        if code != 201:
            raise RuntimeError("creating KeyRotation: HTTP %d %s" % (code, res))

    def get(self):
        code, obj = self.fx.api("GET", self.path)
        if code != 200:
            raise RuntimeError("GET %s: HTTP %d" % (self.path, code))
        return obj

    def status(self):
        return self.get().get("status") or {}

    def annotate(self, key, value):
        code, obj = self.fx.api("PATCH", self.path, {"metadata": {"annotations": {key: value}}},
                                MERGE)
        if code != 200:
            raise RuntimeError("PATCH %s: HTTP %d %s" % (self.path, code, obj))

    def rotate(self, value=None, emergency=False):
        self.annotate("keyrotator.io/emergency" if emergency else "keyrotator.io/rotate",
                      value or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def wait(self, pred, timeout, what):
        return wait_for(lambda: (lambda st: st if pred(st) else None)(self.status()),
                        timeout, what)

    def wait_adopted(self, timeout=20):
        return self.wait(lambda st: (st.get("currentKey") or {}).get("id"), timeout,
                         "the controller to adopt the current key")

    def wait_finished(self, n_history, timeout):
        return self.wait(lambda st: len(st.get("history") or []) >= n_history and
                         st.get("phase") in ("Idle", "Failed"), timeout,
                         "history entry %d (rotation finished)" % n_history)

    def events(self):
        """This object's Events, in the order they were created (the name's nanosecond part)."""
        code, lst = self.fx.api("GET", "/api/v1/namespaces/%s/events" % self.fx.namespace)
        if code != 200:
            raise RuntimeError("list events: HTTP %d" % code)
        evs = [e for e in lst.get("items") or []
               if (e.get("involvedObject") or {}).get("name") == self.name]
        return sorted(evs, key=lambda e: int(e["metadata"]["name"].rsplit(".", 1)[1], 16))


def condition(status, ctype):
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), {})


class KeyWatcher(threading.Thread):
    """Polls the key store every 20 ms and records (CLOCK_MONOTONIC) when each watched member
    appeared and disappeared, so a test can order the revoke against pod stops."""

    def __init__(self, fx, active_set="api_keys:active"):
        super().__init__(daemon=True)
        self.fx, self.active_set = fx, active_set
        self.members = {}  # member -> {"present": bool, "gone_at": mono, "back_at": mono}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.all_members = set()

    def watch(self, mem):
        with self.lock:
            self.members.setdefault(mem, {"present": None, "gone_at": None, "back_at": None})

    def run(self):
        v = None
        while not self.stopping.is_set():
            try:
                if v is None:
                    v = self.fx.valkey()
                now = time.monotonic()
                present = {m.decode() for m in v.command("SMEMBERS", self.active_set) or []}
                with self.lock:
                    self.all_members |= present
                    for m, st in self.members.items():
                        p = m in present
                        if st["present"] and not p and st["gone_at"] is None:
                            st["gone_at"] = now
                        if st["present"] is False and p:
                            st["back_at"] = now
                        st["present"] = p
            except (OSError, EOFError, resp.RespError):
                v = None
            self.stopping.wait(0.02)
        if v is not None:
            v.close()

    def stop(self):
        self.stopping.set()
        self.join(5)
