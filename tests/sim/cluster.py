#!/usr/bin/env python3
"""cluster.py - the whole simulated cluster on loopback: the local API server (TLS) with every
CRD in crds/ (KeyRotation, KeyStore, ClusterKeyStore), redis-server as the Valkey key store,
the Sirius workloads run by the kubelet and workload-controller stand-ins (simulator.py), an
api "Service", and optionally prometheus scraping the api pods. Neither a KeyStore nor a Secret opt-in is made by `up`:
create_key_store() and opt_in() are what an administrator does before a KeyRotation.

    tests/py tests/sim/cluster.py up --dir D [--detach] [--plaintext] [--seed-key]
                                            [--valkey-password] [--prometheus]
    tests/py tests/sim/cluster.py down --dir D

With `Cluster(dir, kubeconfig=K, namespace=NS)` the API server is an external one (a real
cluster's; see the README's "Against a real cluster"): nothing local is started for it, NS is
created (it must not exist), has_workload_controllers() tells whether the cluster rolls the
Deployments itself (then only the kubelet stand-in runs), and down() deletes what the cluster,
the stand-ins and the controller created in NS, then NS itself.

`up` writes D/cluster.env (KUBECONFIG, VALKEY_ADDR, ... as shell assignments) and runs until
SIGTERM/SIGINT (or returns at once with --detach; `down` stops it). Every child runs with
`setpriv --pdeathsig KILL`, so nothing outlives a killed supervisor. As a library:
`with Cluster(dir, ...) as c:` (see test_sim.py).
"""
import argparse
import base64
import glob
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import kyaml
from simkube import Kube
from kubelet_standin import pin
from krtest import SETPRIV, free_port, resp, spawn, wait_for  # noqa: F401 (free_port: for users)
from krtest.servers import Prometheus, redis_argv, start_redis, start_sentinel

NAMESPACE = "sirius"
TOKEN = "sim-admin-token"
SECRET, SECRET_KEY = "sirius-api-key", "SIRIUS_API_KEY"
# Every CRD the controller watches: it waits for all of its caches, so the API server must
# serve all of them (KeyRotation, KeyStore, ClusterKeyStore).
CRD_FILES = sorted(glob.glob(os.path.join(REPO, "crds", "*.yaml")))
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
KR_API = "/apis/keyrotator.io/v1alpha1"
# The KeyStore (written by an administrator) that the tests' KeyRotations name in
# spec.keyStoreRef, and the annotation by which a Secret opts in to a KeyRotation (design.md
# section 1b).
KEY_STORE = "sirius-valkey"
OPT_IN = "keyrotator.io/keyrotation"
MANAGED_BY = {"app.kubernetes.io/managed-by": "keyrotator-e2e"}
# What down() deletes in an external cluster's namespace, in this order (KeyRotations first:
# the controller may still act on them). No garbage collector or namespace controller is
# assumed: an API-only server (envtest) has neither.
CLEANUP = ((KR_API, "keyrotations"), (KR_API, "keystores"), ("/apis/apps/v1", "deployments"),
           ("/apis/apps/v1", "statefulsets"), ("/apis/apps/v1", "daemonsets"),
           ("/apis/apps/v1", "replicasets"), ("/apis/batch/v1", "cronjobs"),
           ("/api/v1", "pods"), ("/api/v1", "secrets"),
           ("/apis/coordination.k8s.io/v1", "leases"), ("/api/v1", "events"),
           ("/apis/events.k8s.io/v1", "events"))


def new_key(prefix="sk_"):
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(43))


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _find(items, name):
    return next((i for i in items or [] if i.get("name") == name), None)


def resolve_kubeconfig(path, context, scratch):
    """The kubeconfig the controller, the simulator and this process all use: `path` itself,
    or, when `context` is given or the user's credentials are files (which simkube.Kube does
    not read), a one-context copy with those files inlined, written 0600 into `scratch`."""
    with open(path) as f:
        cfg = kyaml.load_all(f.read())[0]
    name = context or cfg.get("current-context")
    ctx = (_find(cfg.get("contexts"), name) or {}).get("context")
    if ctx is None:
        raise ValueError("kubeconfig %s: no context %r" % (path, name))
    cl = dict((_find(cfg.get("clusters"), ctx.get("cluster")) or {}).get("cluster") or {})
    user = dict((_find(cfg.get("users"), ctx.get("user")) or {}).get("user") or {})
    files = [k for k in ("client-certificate", "client-key", "tokenFile") if k in user]
    if not context and not files:
        return path
    base = os.path.dirname(os.path.abspath(path))
    for k in files:
        with open(os.path.join(base, os.path.expanduser(user.pop(k))), "rb") as f:
            data = f.read()
        if k == "tokenFile":
            user["token"] = data.decode().strip()
        else:
            user[k + "-data"] = base64.b64encode(data).decode()
    if "certificate-authority" in cl:
        cl["certificate-authority"] = os.path.join(base, cl["certificate-authority"])

    def block(d):
        return "".join("    %s: %s\n" % (k, json.dumps(v)) for k, v in sorted(d.items()))
    out = os.path.join(scratch, "kubeconfig")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: e2e\nclusters:\n- name: e2e\n"
                "  cluster:\n" + block(cl) + "contexts:\n- name: e2e\n  context:\n"
                "    cluster: e2e\n    user: e2e\nusers:\n- name: e2e\n  user:\n" +
                (block(user) if user else "    {}\n"))
    return out


def crds():
    """The CRD objects of crds/, by name."""
    out = {}
    for path in CRD_FILES:
        with open(path) as f:
            crd = kyaml.load_all(f.read())[0]
        out[crd["metadata"]["name"]] = crd
    return out


def crd_served_path(crd):
    """The list path of a CRD's resource (in namespace default when namespaced)."""
    sp = crd["spec"]
    ns = "/namespaces/default" if sp.get("scope") == "Namespaced" else ""
    return "/apis/%s/%s%s/%s" % (sp["group"], sp["versions"][0]["name"], ns,
                                 sp["names"]["plural"])


def ensure_crd(kube):
    """Install every CRD of crds/ that the server lacks; the names this call installed (an
    empty list when the server had them all)."""
    installed = []
    for name, crd in crds().items():
        code, _ = kube.request("GET", CRD_PATH + "/" + name)
        if code == 200:
            continue
        if code != 404:
            raise RuntimeError("GET CRD %s: HTTP %d" % (name, code))
        code, obj = kube.request("POST", CRD_PATH, crd)
        if code != 201:
            raise RuntimeError("installing CRD %s (needs create on customresourcedefinitions): "
                               "HTTP %d %s" % (name, code, (obj or {}).get("message")))
        installed.append(name)
        wait_for(lambda: kube.request("GET", crd_served_path(crd))[0] == 200, 30,
                 "the CRD %s to be served" % name)
    return installed


def remove_crd(kube, names=None):
    """Delete the CRDs `names` (only ever ones this process installed; default: every CRD of
    crds/) and wait until the server no longer has them."""
    for name in crds() if names is None else names:
        code, _ = kube.request("DELETE", CRD_PATH + "/" + name)
        if code not in (200, 202, 404):
            raise RuntimeError("DELETE CRD %s: HTTP %d" % (name, code))
        wait_for(lambda: kube.request("GET", CRD_PATH + "/" + name)[0] == 404, 60,
                 "the CRD %s to go" % name)


def key_store(name, address, password_secret=None, store_as="sha256",
              active_set="api_keys:active", meta_key="api_key:{id}:meta",
              bootstrap_key="api_keys:bootstrap"):
    """A KeyStore object (what an administrator writes, design.md section 1b): the Valkey
    server, its password Secret (in the KeyStore's namespace; None: no AUTH) and the layout."""
    body = {"address": address, "layout": {"activeSet": active_set, "metaKey": meta_key,
                                           "bootstrapKey": bootstrap_key, "storeAs": store_as}}
    if password_secret:
        body["passwordSecretRef"] = {"name": password_secret, "key": "password"}
    return {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyStore",
            "metadata": {"name": name}, "spec": body}


def key_store_ref(name=KEY_STORE):
    """spec.keyStoreRef of a KeyRotation naming KeyStore `name` (in its own namespace)."""
    return {"kind": "KeyStore", "name": name}


def opt_in(kube, namespace, secret, *keyrotations):
    """Annotate Secret `secret` with keyrotator.io/keyrotation naming `keyrotations` (added to
    the names it lists already), as its owner does before a KeyRotation may adopt it or read
    it for credentials. The Secret must exist."""
    path = "/api/v1/namespaces/%s/secrets/%s" % (namespace, secret)
    for _ in range(10):
        code, obj = kube.request("GET", path)
        if code != 200:
            raise RuntimeError("GET Secret %s: HTTP %d" % (secret, code))
        meta = obj["metadata"]
        names = [n.strip() for n in (meta.get("annotations") or {}).get(OPT_IN, "").split(",")
                 if n.strip()]
        want = names + [k for k in keyrotations if k not in names]
        if want == names:
            return
        code, obj = kube.request("PATCH", path, {"metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {OPT_IN: ",".join(want)}}}, "application/merge-patch+json")
        if code == 200:
            return
        if code != 409:
            raise RuntimeError("annotating Secret %s: HTTP %d %s" % (secret, code, obj))
    raise RuntimeError("annotating Secret %s: conflicts, again and again" % secret)


def cleanup_namespace(kube, ns, timeout=30):
    """Delete, in CLEANUP order, every object of those types in `ns` (waiting for the
    KeyRotations to be gone), then `ns`. Returns what is left (an empty list when clean):
    an API-only server may keep `ns` Terminating forever (no namespace controller), which
    counts as clean when nothing is left inside."""
    left = []
    for prefix, plural in CLEANUP:
        path = "%s/namespaces/%s/%s" % (prefix, ns, plural)
        code, lst = kube.request("GET", path)
        if code == 404:  # the type is not served here
            continue
        if code != 200:
            left.append("list %s: HTTP %d" % (plural, code))
            continue
        # Pods: the kubelet stand-in that would end them has stopped (grace 0, as a force).
        force = "?gracePeriodSeconds=0" if plural == "pods" else ""
        for item in lst.get("items") or []:
            code, _ = kube.request("DELETE", path + "/" + item["metadata"]["name"] + force)
            if code not in (200, 202, 404):
                left.append("delete %s/%s: HTTP %d" % (plural, item["metadata"]["name"], code))

        def gone():
            c, lst = kube.request("GET", path)
            return c == 404 or (c == 200 and not lst.get("items"))
        try:
            wait_for(gone, timeout if plural == "keyrotations" else 5, plural + " to go")
        except TimeoutError:
            c, lst = kube.request("GET", path)
            left += ["%s/%s (finalizers %s)" % (plural, i["metadata"]["name"],
                                                 i["metadata"].get("finalizers"))
                     for i in (lst or {}).get("items") or []]
    code, _ = kube.request("DELETE", "/api/v1/namespaces/" + ns)
    if code not in (200, 202, 404):
        left.append("delete namespace %s: HTTP %d" % (ns, code))
    return left


PROBE = "keyrotator-e2e-probe"
PROBE_SECONDS = 10.0
_PROBED = {}  # server URL -> whether it has workload controllers (a run asks once)


def has_workload_controllers(kube, namespace, timeout=None):
    """Whether workload controllers run against this API server: a probe Deployment of 0
    replicas in `namespace` gets status.observedGeneration from a real Deployment controller
    within a second or two; without one it never does. Polled until `timeout` (default
    PROBE_SECONDS); the answer is kept for the server's URL."""
    url = "%s:%d%s" % (kube.host, kube.port, kube.prefix)
    if url in _PROBED:
        return _PROBED[url]
    path = "/apis/apps/v1/namespaces/%s/deployments" % namespace
    labels = {"app": PROBE}
    code, obj = kube.request("POST", path, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": PROBE, "labels": dict(labels, **MANAGED_BY)},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "probe", "image": "registry.k8s.io/pause:3.9"}]}}}})
    if code != 201:
        raise RuntimeError("creating the probe Deployment %s: HTTP %d %s" % (
            PROBE, code, (obj or {}).get("message")))

    def observed():
        c, d = kube.request("GET", path + "/" + PROBE)
        return c == 200 and (d.get("status") or {}).get("observedGeneration", 0) >= 1
    try:
        wait_for(observed, PROBE_SECONDS if timeout is None else timeout, "")
        found = True
    except TimeoutError:
        found = False
    kube.request("DELETE", path + "/" + PROBE)
    _PROBED[url] = found
    return found


class Cluster:
    """Start with up() (or `with`), stop with down(); down() is idempotent."""

    def __init__(self, root, store_as="sha256", seed_key=False, valkey_password=None,
                 prometheus=False, rollout_delay=0.2, client_rate=10, deploy=True,
                 active_set="api_keys:active", meta_key="api_key:{id}:meta",
                 kubeconfig=None, context=None, namespace=None, keep_namespace=False,
                 valkey_tls=None, sentinel=False):
        """valkey_tls: None (plain TCP), "tls" or "mtls" (a client certificate required):
        redis-server listens on TLS only (port 0), with certificates made by
        tests/tools/make_tls_certs.sh. sentinel: a master, a replica and one redis-sentinel
        (master name "sirius", fast failover); the KeyStore and the api name the sentinel."""
        self.root = os.path.abspath(root)
        self.external, self.context = kubeconfig, context
        self.namespace = namespace or NAMESPACE
        self.keep_namespace, self.created_namespace = keep_namespace, False
        self.scratch = None
        self.cleanup_left = []
        self.store_as, self.seed_key, self.password = store_as, seed_key, valkey_password
        self.with_prometheus, self.rollout_delay = prometheus, rollout_delay
        self.client_rate, self.deploy = client_rate, deploy
        self.active_set, self.meta_key = active_set, meta_key
        self.valkey_tls, self.sentinel = valkey_tls, sentinel
        self.certs = None
        self.procs = []  # (name, Popen), stopped in reverse order
        self.kube = None
        self.env = {}
        # The kubelet stand-in's Node (tests/sim/kubelet_standin.py): its taint's value is
        # the last part, which only the suite's pods tolerate.
        self.node_id = secrets.token_hex(4)
        self.node = "keyrotator-e2e-" + self.node_id
        # Whether the API server's cluster runs its own workload controllers (then only the
        # kubelet stand-in runs): never for the local API server, probed for another.
        self.workload_controllers = False

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()

    # ---- processes ----
    def _spawn(self, name, cmd, **kw):
        p = spawn(cmd, os.path.join(self.root, name + ".log"), **kw)
        self.procs.append((name, p))
        with open(os.path.join(self.root, name + ".pid"), "w") as f:
            f.write("%d\n" % p.pid)
        return p

    def _alive(self, p, name):
        if p.poll() is not None:
            raise RuntimeError("%s exited with %s; see %s" % (
                name, p.returncode, os.path.join(self.root, name + ".log")))

    def up(self):
        os.makedirs(self.root, exist_ok=True)
        if self.external:
            self._external()
        else:
            self._kubeapi()
        self._redis()
        self._simulator()
        if self.with_prometheus:
            self._prometheus()
        if self.deploy:
            self.deploy_sirius()
        self.write_env()

    def down(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if self.created_namespace and not self.keep_namespace:
            self.created_namespace = False
            try:
                self.cleanup_left = cleanup_namespace(self.kube, self.namespace)
            except (OSError, ValueError, http.client.HTTPException) as e:
                self.cleanup_left = ["cleaning up namespace %s: %s" % (self.namespace, e)]
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def _external(self):
        """An external API server through `kubeconfig`: create our own namespace in it."""
        self.scratch = tempfile.mkdtemp(prefix="kr-kube-")  # credentials copy: never kept
        self.kubeconfig = resolve_kubeconfig(self.external, self.context, self.scratch)
        self.kube = Kube(self.kubeconfig, self.scratch)
        self.kubeapi_url = "%s://%s:%d%s" % ("https" if self.kube.https else "http",
                                             self.kube.host, self.kube.port, self.kube.prefix)
        code, obj = self.api("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": dict(MANAGED_BY)}})
        if code != 201:
            raise RuntimeError("creating namespace %s: HTTP %d %s" % (
                self.namespace, code, (obj or {}).get("message")))
        self.created_namespace = True
        # Pods need the ServiceAccount "default" (ServiceAccount admission); a cluster's
        # serviceaccount controller makes it, an API-only server (envtest) has none.
        code, obj = self.api("POST", "/api/v1/namespaces/%s/serviceaccounts" % self.namespace,
                             {"apiVersion": "v1", "kind": "ServiceAccount",
                              "metadata": {"name": "default"}})
        if code not in (201, 409):
            raise RuntimeError("creating the ServiceAccount default: HTTP %d %s" % (
                code, (obj or {}).get("message")))
        self.workload_controllers = has_workload_controllers(self.kube, self.namespace)

    def _kubeapi(self):
        ready = os.path.join(self.root, "kubeapi.ready")
        self.kubeconfig = os.path.join(self.root, "kubeconfig")
        p = self._spawn("kubeapi", [
            sys.executable, os.path.join(REPO, "tests", "kubeapi", "kubeapi.py"), "--port", "0",
            "--token", TOKEN, "--tls-dir", os.path.join(self.root, "tls"),
            "--ready-file", ready, "--kubeconfig-out", self.kubeconfig,
            "--namespace", self.namespace] + [a for f in CRD_FILES for a in ("--crd", f)])
        wait_for(lambda: self._alive(p, "kubeapi") or os.path.exists(ready), 30, "kubeapi")
        with open(ready) as f:
            self.kubeapi_url = f.read().split()[1]
        self.kube = Kube(self.kubeconfig, tempfile.gettempdir())

    def _make_certs(self):
        self.certs = os.path.join(self.root, "valkey-certs")
        subprocess.run(["sh", os.path.join(REPO, "tests", "tools", "make_tls_certs.sh"),
                        self.certs], check=True)

    def _tls(self):
        return (self.certs, self.valkey_tls) if self.valkey_tls else None

    def _redis_dir(self, name):
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        return d

    def _redis_cmd(self, name, port, extra=()):
        """The command line of the redis-server `name` (its data in root/name) on `port`."""
        return redis_argv(port, self._redis_dir(name), password=self.password,
                          masterauth=True, tls=self._tls(), extra=extra)

    def _start_redis(self, name, extra=(), port_attr="valkey_port"):
        p, port = start_redis(lambda cmd: self._spawn(name, cmd), self._redis_dir(name),
                              tls_context=self._tls_context(), password=self.password,
                              masterauth=True, tls=self._tls(), extra=extra)
        self._forget_failed_tries(name, p)
        setattr(self, port_attr, port)
        return p

    def _forget_failed_tries(self, name, p):
        """A try that lost its port to another process has exited: forget it."""
        self.procs = [(n, q) for n, q in self.procs if n != name or q is p]

    def _redis(self):
        if not (self.valkey_tls or self.sentinel):
            p, self.valkey_port = start_redis(lambda cmd: self._spawn("redis", cmd), self.root,
                                              password=self.password)
            self._forget_failed_tries("redis", p)
            self.redis_proc = p
            return
        if self.valkey_tls:
            self._make_certs()
        # A replica's first sync starts at once (Redis waits 5 s by default for more
        # replicas to share a diskless transfer), so it holds the data before the tests start.
        fast = ["--repl-diskless-sync-delay", "0"] if self.sentinel else []
        self.redis_proc = self._start_redis("redis", fast)
        if self.sentinel:
            self.master_port = self.valkey_port
            self.replica_proc = self._start_redis(
                "redis-replica", fast + ["--replicaof", "127.0.0.1", str(self.master_port)],
                "replica_port")
            wait_for(self._replica_synced, 20, "the replica's first sync")
            self._sentinel()

    def _replica_synced(self):
        c = self._client(self.replica_port, self.password)
        try:
            return b"master_link_status:up" in c.command("INFO", "replication")
        except (OSError, EOFError, resp.RespError):
            return False
        finally:
            c.close()

    def _sentinel(self):
        """One redis-sentinel watching the master (krtest.servers.start_sentinel)."""
        p, self.sentinel_port = start_sentinel(
            lambda cmd: self._spawn("sentinel", cmd), self._redis_dir("sentinel"),
            self.master_port, "sirius", password=self.password, tls=self._tls(),
            tls_context=self._tls_context())
        self._forget_failed_tries("sentinel", p)

    def _sentinel_master(self, port):
        c = self._client(port)
        try:
            return c.command("SENTINEL", "get-master-addr-by-name", "sirius")
        except (OSError, EOFError, resp.RespError):
            return None
        finally:
            c.close()

    def sentinel_master(self):
        """(host, port) the sentinel names now, or None."""
        got = self._sentinel_master(self.sentinel_port)
        return (got[0].decode(), int(got[1])) if got else None

    def _tls_context(self):
        if not self.valkey_tls:
            return None
        c = self.certs
        return resp.tls_context(c + "/ca.crt", *((c + "/client.crt", c + "/client.key")
                                                 if self.valkey_tls == "mtls" else ()))

    def _client(self, port, password=None):
        return resp.Client("127.0.0.1", port, password=password, tls=self._tls_context())

    def valkey(self):
        """A client of the key store: the master the sentinel names, with sentinels."""
        if self.sentinel:
            return resp.Client("127.0.0.1", 0, password=self.password,
                               tls=self._tls_context(),
                               sentinels=["127.0.0.1:%d" % self.sentinel_port],
                               master_name="sirius")
        return self._client(self.valkey_port, self.password)

    def valkey_env(self):
        """The api's environment for the key store (TLS files, sentinels)."""
        env = []
        if self.sentinel:
            env += [{"name": "VALKEY_SENTINELS", "value": "127.0.0.1:%d" % self.sentinel_port},
                    {"name": "VALKEY_MASTER_NAME", "value": "sirius"}]
        if self.valkey_tls:
            c = self.certs
            env.append({"name": "VALKEY_TLS_CA", "value": c + "/ca.crt"})
            if self.valkey_tls == "mtls":
                env += [{"name": "VALKEY_TLS_CERT", "value": c + "/client.crt"},
                        {"name": "VALKEY_TLS_KEY", "value": c + "/client.key"}]
        return env

    def key_store_conn(self):
        """The KeyStore's connection fields (address or sentinel, tls) for this cluster, and
        the Secrets they name, created here: valkey-ca (ca.crt), valkey-client (tls.crt,
        tls.key, a kubernetes.io/tls Secret)."""
        spec = {}
        if self.sentinel:
            spec["sentinel"] = {"addresses": ["127.0.0.1:%d" % self.sentinel_port],
                                "masterName": "sirius"}
        else:
            spec["address"] = "127.0.0.1:%d" % self.valkey_port
        if self.valkey_tls:
            path = "/api/v1/namespaces/%s/secrets" % self.namespace
            with open(os.path.join(self.certs, "ca.crt")) as f:
                self.api("POST", path, {"apiVersion": "v1", "kind": "Secret",
                                        "metadata": {"name": "valkey-ca"},
                                        "stringData": {"ca.crt": f.read()}})
            spec["tls"] = {"caSecretRef": {"name": "valkey-ca"}}
            if self.valkey_tls == "mtls":
                with open(os.path.join(self.certs, "client.crt")) as f1, \
                        open(os.path.join(self.certs, "client.key")) as f2:
                    self.api("POST", path, {"apiVersion": "v1", "kind": "Secret",
                                            "type": "kubernetes.io/tls",
                                            "metadata": {"name": "valkey-client"},
                                            "stringData": {"tls.crt": f1.read(),
                                                           "tls.key": f2.read()}})
                spec["tls"]["clientCertSecretRef"] = {"name": "valkey-client"}
        return spec

    def _ping(self, port=None):
        try:
            c = self._client(port or self.valkey_port, self.password)
            ok = c.ping()
            c.close()
            return ok
        except (OSError, EOFError, resp.RespError):
            return False

    def _simulator(self):
        self.state_dir = os.path.join(self.root, "sim")
        services = os.path.join(self.state_dir, "services.json")
        p = self._spawn("simulator", self.simulator_argv("sirius-api=0"))
        wait_for(lambda: self._alive(p, "simulator") or os.path.exists(services), 20,
                 "the simulator")
        with open(services) as f:
            self.api_port = json.load(f)["sirius-api"]
        self.api_url = "http://127.0.0.1:%d" % self.api_port

    def simulator_argv(self, *services):
        """The command line of tests/sim/simulator.py for this cluster: the kubelet stand-in
        on this cluster's Node, with the workload-controller stand-in unless the cluster has
        its own controllers, and a local Service for each WORKLOAD=PORT of `services`."""
        return [sys.executable, os.path.join(HERE, "simulator.py"), "--kubeconfig",
                self.kubeconfig, "--namespace", self.namespace, "--state-dir", self.state_dir,
                "--node", self.node, "--rollout-delay", str(self.rollout_delay)] + \
            (["--no-controllers"] if self.workload_controllers else []) + \
            [a for svc in services for a in ("--service", svc)]

    def pin(self, template):
        """`template` (a pod template) bound to the kubelet stand-in's Node: spec.nodeName and
        the toleration of its taint, so that the suite's pods run here as local processes
        whether a real scheduler and workload controllers run or not."""
        return pin(template, self.node, self.node_id)

    def _prometheus(self):
        prom = Prometheus(self.root, "- job_name: sirius-api\n  file_sd_configs:\n"
                          "  - files: ['%s']\n    refresh_interval: 1s\n"
                          % os.path.join(self.state_dir, "endpoints", "sirius-api.json"),
                          lambda cmd: self._spawn("prometheus", cmd))
        self.prometheus_port, self.prometheus_url = prom.port, prom.url
        prom.start()

    # ---- the Sirius workloads ----
    def seed(self, key, label="bootstrap"):
        """Store `key` as active in the key store (as `keyrotator keys create` would)."""
        member = hashlib.sha256(key.encode()).hexdigest() if self.store_as == "sha256" else key
        c = self.valkey()
        try:
            c.command("SADD", self.active_set, member)
            c.hset(self.meta_key.replace("{id}", member), "id", key_id(key), "label", label,
                   "status", "active", "created_at",
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        finally:
            c.close()

    def api(self, method, path, body=None, ctype="application/json"):
        return self.kube.request(method, path, body, ctype)

    def api_ok(self, method, path, body=None, ctype="application/json", codes=(200, 201)):
        """api() that fails the test on any status but `codes`; returns the object."""
        code, obj = self.api(method, path, body, ctype)
        if code not in codes:
            raise AssertionError("%s %s: HTTP %d %s" % (method, path, code, obj))
        return obj

    def put_secret_key(self, key):
        """Create or update the consumers' Secret with `key`."""
        data = {SECRET_KEY: base64.b64encode(key.encode()).decode()}
        path = "/api/v1/namespaces/%s/secrets" % self.namespace
        code, _ = self.api("PATCH", path + "/" + SECRET, {"data": data},
                           "application/merge-patch+json")
        if code == 404:
            code, _ = self.api("POST", path, {"apiVersion": "v1", "kind": "Secret",
                                              "metadata": {"name": SECRET}, "data": data})
        if code not in (200, 201):
            raise RuntimeError("writing Secret %s: HTTP %d" % (SECRET, code))

    def create_key_store(self, name=KEY_STORE, password_secret=None, **layout):
        """The KeyStore `name` for this cluster's Valkey (an administrator's object): its
        address, the Secret valkey-auth as password when redis runs with one (or
        `password_secret`), this cluster's layout unless `layout` says otherwise (store_as,
        active_set, meta_key, bootstrap_key). Returns the keyStoreRef that names it."""
        layout = dict({"store_as": self.store_as, "active_set": self.active_set,
                       "meta_key": self.meta_key}, **layout)
        if password_secret is None and self.password:
            password_secret = "valkey-auth"
        body = key_store(name, "127.0.0.1:%d" % self.valkey_port, password_secret, **layout)
        if self.valkey_tls or self.sentinel:
            del body["spec"]["address"]
            body["spec"].update(self.key_store_conn())
        code, obj = self.api("POST", "%s/namespaces/%s/keystores" % (KR_API, self.namespace),
                             body)
        if code != 201:
            raise RuntimeError("creating KeyStore %s: HTTP %d %s" % (name, code, obj))
        return key_store_ref(name)

    def opt_in(self, secret, *keyrotations):
        """Let KeyRotations `keyrotations` adopt (or read credentials from) Secret `secret`."""
        opt_in(self.kube, self.namespace, secret, *keyrotations)

    def deploy_sirius(self):
        if self.seed_key:
            self.bootstrap_key = new_key()
            self.seed(self.bootstrap_key)
            self.put_secret_key(self.bootstrap_key)
        api_env = [{"name": "VALKEY_ADDR", "value": "127.0.0.1:%d" % self.valkey_port}] + \
            self.valkey_env() + [
                   {"name": "KEY_STORE_AS", "value": self.store_as},
                   {"name": "ACTIVE_SET", "value": self.active_set},
                   {"name": "META_KEY", "value": self.meta_key}]
        if self.password:
            self.api("POST", "/api/v1/namespaces/%s/secrets" % self.namespace, {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "valkey-auth"},
                "stringData": {"password": self.password}})
            api_env.append({"name": "VALKEY_PASSWORD", "valueFrom": {"secretKeyRef": {
                "name": "valkey-auth", "key": "password"}}})
        self.create_deployment("sirius-api", "sim/api", api_env, replicas=2)
        for name, replicas in (("sirius-ui", 2), ("sirius-engine", 1)):
            self.create_deployment(name, "sim/client", [
                {"name": "API_URL", "value": self.api_url},
                {"name": "NAME", "value": name},
                {"name": "RATE", "value": str(self.client_rate)},
                {"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                    "name": SECRET, "key": SECRET_KEY}}}], replicas=replicas)

    def create_deployment(self, name, image, env, replicas=1, annotations=None, grace=2,
                          **spec):
        """`grace`: the pod template's terminationGracePeriodSeconds. The simulated
        processes stop at once on SIGTERM, so 2 s (not Kubernetes' default 30) is true of
        them; the controller holds the revoke that long after the last stage (issue 20)."""
        labels = {"app": name}
        body = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
                "spec": dict({"replicas": replicas, "selector": {"matchLabels": labels},
                              "template": self.pin({
                                  "metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": grace,
                                           "containers": [{"name": name.split("-")[-1],
                                                           "image": image, "env": env}]}})},
                             **spec)}
        code, obj = self.api("POST", "/apis/apps/v1/namespaces/%s/deployments" % self.namespace,
                             body)
        if code != 201:
            raise RuntimeError("creating Deployment %s: HTTP %d %s" % (name, code, obj))
        return obj

    def write_env(self):
        self.env = {"KUBECONFIG": self.kubeconfig, "KUBEAPI_URL": self.kubeapi_url,
                    "NAMESPACE": self.namespace, "VALKEY_ADDR": "127.0.0.1:%d" % self.valkey_port,
                    "VALKEY_PASSWORD": self.password or "", "KEY_STORE_AS": self.store_as,
                    "API_SERVICE_URL": self.api_url, "SIM_STATE_DIR": self.state_dir,
                    "SIM_EVENTS": os.path.join(self.state_dir, "events.jsonl"),
                    "PROMETHEUS_URL": getattr(self, "prometheus_url", "")}
        path = os.path.join(self.root, "cluster.env")
        with open(path + ".tmp", "w") as f:
            for k, v in sorted(self.env.items()):
                f.write("%s='%s'\n" % (k, v))
        os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("verb", choices=("up", "down"))
    ap.add_argument("--dir", required=True)
    ap.add_argument("--detach", action="store_true", help="up: return once the cluster runs")
    ap.add_argument("--plaintext", action="store_true", help="plaintext key-store layout")
    ap.add_argument("--seed-key", action="store_true",
                    help="seed a bootstrap key in Valkey and the Secret (default: no Secret)")
    ap.add_argument("--valkey-password", help="start redis-server with requirepass")
    ap.add_argument("--prometheus", action="store_true", help="also run prometheus")
    args = ap.parse_args()
    root = os.path.abspath(args.dir)
    pidfile = os.path.join(root, "cluster.pid")
    if args.verb == "down":
        try:
            with open(pidfile) as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError) as e:
            print("cluster.py down: no running cluster in %s (%s)" % (root, e), file=sys.stderr)
            return 1
        wait_for(lambda: not os.path.exists(pidfile), 30, "the cluster to stop")
        return 0
    os.makedirs(root, exist_ok=True)
    envfile = os.path.join(root, "cluster.env")
    if args.detach:
        if os.path.exists(envfile):
            os.unlink(envfile)
        argv = [a for a in sys.argv if a != "--detach"]
        with open(os.path.join(root, "cluster.log"), "ab") as log:
            p = subprocess.Popen([sys.executable] + argv, stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: p.poll() is not None or os.path.exists(envfile), 90, "the cluster")
        if p.poll() is not None:
            print("cluster.py up failed; see %s/cluster.log" % root, file=sys.stderr)
            return 1
        print(envfile)
        return 0
    c = Cluster(root, store_as="plaintext" if args.plaintext else "sha256",
                seed_key=args.seed_key, valkey_password=args.valkey_password,
                prometheus=args.prometheus)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(pidfile, "w") as f:
        f.write("%d\n" % os.getpid())
    try:
        with c:
            print(envfile, flush=True)
            while True:
                signal.pause()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        c.down()
        if os.path.exists(pidfile):
            os.unlink(pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
