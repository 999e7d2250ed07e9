#!/usr/bin/env python3
"""kubelet_standin.py - a kubelet stand-in: registers a Node of its own (kept Ready through its
Lease in kube-node-lease and its status; tainted keyrotator.io/e2e=<id>:NoSchedule so that only
the suite's pods, which tolerate it, land there), watches the Pods bound to it (fieldSelector
spec.nodeName) and runs each as a local process, reports their status through pods/status,
honours graceful termination (deletionTimestamp: SIGTERM, the pod keeps running with its key
until it exits or deletionGracePeriodSeconds ends, then it is deleted with grace 0, as kubelet
does), and runs the local "Services" and Prometheus file_sd endpoints from the ready pods.

    tests/py tests/sim/kubelet_standin.py --kubeconfig K --node NAME --state-dir D \
        [--rollout-delay 0.2] [--service WORKLOAD=PORT ...]

See README.md in this folder (pods, the "image" mapping, the files of the state dir).
"""
import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
from simkube import (MERGE, Informer, key_id, log, now_micro, now_rfc3339, owner, serve,
                     write_json)

FAIL_ANNOTATION = "keyrotator-sim/fail-rollout"
KEY_ID_ANNOTATION = "keyrotator.io/key-id"
TAINT_KEY = "keyrotator.io/e2e"
SETPRIV = shutil.which("setpriv")
WORKLOAD_PATHS = {"Deployment": "deployments", "StatefulSet": "statefulsets",
                  "DaemonSet": "daemonsets", "ReplicaSet": "replicasets"}
LEASE_SECONDS = 40
HEARTBEAT = 10.0  # Lease renewals, as kubelet's nodeLeaseRenewInterval (a quarter of 40 s)
STATUS_EVERY = 60.0  # node status even when unchanged (kubelet: nodeStatusReportFrequency)


def toleration(node_id):
    """What a pod needs to land on the stand-in's Node (its taint)."""
    return {"key": TAINT_KEY, "operator": "Equal", "value": node_id, "effect": "NoSchedule"}


def pin(template, node, node_id):
    """`template` (a pod template) bound to the stand-in's Node: spec.nodeName and the
    toleration of its taint, which works with or without a scheduler."""
    spec = template.setdefault("spec", {})
    spec["nodeName"] = node
    tol = spec.setdefault("tolerations", [])
    if toleration(node_id) not in tol:
        tol.append(toleration(node_id))
    return template


def workload_of(pod):
    """(kind, workload name, template hash) of a pod, from its controller and labels, the way
    the real controllers name them: ReplicaSet <deployment>-<pod-template-hash>, StatefulSet
    and DaemonSet controller-revision-hash."""
    md = pod["metadata"]
    labels = md.get("labels") or {}
    ref = owner(pod)
    kind, name = ref.get("kind"), ref.get("name", "")
    if kind == "ReplicaSet":
        h = labels.get("pod-template-hash", "")
        if h and name.endswith("-" + h):
            return "Deployment", name[:-len(h) - 1], h
        return "ReplicaSet", name, h
    if kind in ("StatefulSet", "DaemonSet"):
        h = labels.get("controller-revision-hash", "")
        return kind, name, h[len(name) + 1:] if h.startswith(name + "-") else h
    return "Pod", md["name"], ""


class Runner:
    """One pod: one local process running its first container."""

    def __init__(self, kubelet, pod):
        self.k, self.pod = kubelet, pod
        md = pod["metadata"]
        self.name, self.ns, self.uid = md["name"], md["namespace"], md["uid"]
        self.kind, self.workload, self.hash = workload_of(pod)
        self.dir = os.path.join(kubelet.state_dir, "pods", self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.ready_file = os.path.join(self.dir, "ready")
        self.proc = None
        self.port = None
        self.restarts = 0
        self.next_try = 0.0
        self.started = 0.0
        self.started_wall = None
        self.ready = False
        self.terminating = False
        self.kill_at = None  # terminating: when the grace period ends (SIGKILL)
        self.waiting = ""  # why the container is not running (CreateContainerConfigError...)
        self.last_exit = None
        self.reported = None
        self.since = {}

    def container(self):
        return (self.pod.get("spec", {}).get("containers") or [{}])[0]

    def command(self):
        c = self.container()
        cmd = list(c.get("command") or [])
        args = list(c.get("args") or [])
        if not cmd:
            image = c.get("image", "")
            if not image.startswith("sim/"):
                raise ValueError("image %r is not a sim/<name> image and no command is given"
                                 % image)
            cmd = [os.path.join(HERE, image[4:].split(":")[0] + ".py")]
        if cmd[0].endswith(".py"):
            path = cmd[0] if os.path.isabs(cmd[0]) else os.path.join(HERE, cmd[0])
            cmd = [sys.executable, path] + cmd[1:]
        return cmd + args

    def _get_data(self, kind, name):
        """The data of Secret/ConfigMap `name` (kind "secrets"/"configmaps"), or None."""
        status, obj = self.k.kube.request(
            "GET", "/api/v1/namespaces/%s/%s/%s" % (self.ns, kind, name))
        return ((obj or {}).get("data") or {}) if status == 200 else None

    def resolve_env(self):
        """The container's env as a kubelet resolves it at container start: envFrom first
        (every key of a Secret or ConfigMap, with its prefix), then env, which wins; raises
        LookupError (CreateContainerConfigError) when a referenced Secret/key is missing."""
        env, ids = {}, {}
        for src in self.container().get("envFrom") or []:
            ref = src.get("secretRef") or src.get("configMapRef") or {}
            kind = "secrets" if "secretRef" in src else "configmaps"
            data = self._get_data(kind, ref.get("name"))
            if data is None:
                if ref.get("optional"):
                    continue
                raise LookupError('%s "%s" not found' % (kind[:-1], ref.get("name")))
            for k, value in data.items():
                name = src.get("prefix", "") + k
                if kind == "secrets":
                    value = base64.b64decode(value).decode()
                    ids[name] = key_id(value)
                env[name] = value
        for e in self.container().get("env") or []:
            name, vf = e["name"], e.get("valueFrom")
            if not vf:
                env[name] = str(e.get("value", ""))
                continue
            ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
            if not ref:
                continue  # fieldRef/resourceFieldRef: not simulated
            kind = "secrets" if "secretKeyRef" in vf else "configmaps"
            data = self._get_data(kind, ref["name"]) or {}
            if ref.get("key") not in data:
                if ref.get("optional"):
                    continue
                raise LookupError('%s "%s" or its key "%s" not found' % (
                    kind[:-1], ref["name"], ref.get("key")))
            value = data[ref["key"]]
            if kind == "secrets":
                value = base64.b64decode(value).decode()
                ids[name] = key_id(value)
            env[name] = value
        return env, ids

    def fails(self):
        """Failure injection: the workload's keyrotator-sim/fail-rollout annotation, read at
        each container start ("true", or the key id of the templates that crash)."""
        path = WORKLOAD_PATHS.get(self.kind)
        if not path:
            return False
        code, wl = self.k.kube.request("GET", "/apis/apps/v1/namespaces/%s/%s/%s" % (
            self.ns, path, self.workload))
        v = ((wl or {}).get("metadata", {}).get("annotations") or {}).get(FAIL_ANNOTATION) \
            if code == 200 else None
        if not v:
            return False
        tid = (self.pod["metadata"].get("annotations") or {}).get(KEY_ID_ANNOTATION)
        return v == "true" or v == tid

    def start(self):
        """Start (or restart) the container; False while its config can't be resolved."""
        try:
            user_env, ids = self.resolve_env()
            cmd = self.command()
        except (LookupError, ValueError, OSError) as e:
            if self.waiting != str(e):
                self.k.event("pending", self, reason=str(e))
            self.waiting, self.next_try = str(e), time.monotonic() + 1.0
            return False
        self.waiting = ""
        # PYTHONPATH: the pods' programs (api.py, client.py) import the suite's krtest.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0",
               "LANG": "C.UTF-8", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        env.update(user_env)
        env.update({"POD_NAME": self.name, "POD_NAMESPACE": self.ns,
                    "POD_STATE_DIR": self.dir, "POD_READY_FILE": self.ready_file})
        if self.fails():
            cmd = [sys.executable, "-c", "import sys; print('simulated crash'); sys.exit(1)"]
        if SETPRIV:
            cmd = [SETPRIV, "--pdeathsig", "KILL", "--"] + cmd
        if os.path.exists(self.ready_file):
            os.unlink(self.ready_file)
        log_f = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log_f, stderr=log_f,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=self.dir)
        log_f.close()
        with open(os.path.join(self.dir, "pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)
        self.started, self.ready, self.port = time.monotonic(), False, None
        self.started_wall = now_rfc3339()
        self.k.event("start", self, keyIds=ids, restart=self.restarts)
        return True

    def poll(self):
        """Advance: restart a crashed container (with backoff), notice readiness."""
        now = time.monotonic()
        if self.proc is None:
            if not self.terminating and now >= self.next_try:
                self.start()
            return
        rc = self.proc.poll()
        if rc is not None:
            self.k.event("crash", self, exitCode=rc)
            self.proc, self.ready, self.port = None, False, None
            self.last_exit = (rc, self.started_wall, now_rfc3339())
            self.restarts += 1
            self.next_try = now + min(0.5 * 2 ** min(self.restarts, 4), 5.0)
            return
        if not self.ready and os.path.exists(self.ready_file) and \
                now - self.started >= self.k.rollout_delay:
            try:
                with open(self.ready_file) as f:
                    self.port = json.load(f).get("port")
            except (OSError, ValueError):
                return
            self.ready = True
            self.k.event("ready", self)

    def terminate(self, grace):
        """Begin graceful termination, as kubelet does: out of the Service and not ready at
        once, SIGTERM now, SIGKILL when the grace period ends; the process keeps running
        (with the environment, and so the key, it started with) until it exits. reap() tells
        when it has."""
        if self.terminating:
            self.kill_at = min(self.kill_at, time.monotonic() + grace)
            return
        self.terminating, self.ready = True, False
        self.kill_at = time.monotonic() + grace
        self.k.update_endpoints()  # out of the Service before SIGTERM, as with a real pod
        self.k.event("terminate", self, grace=grace)
        if self.proc is not None:
            self.proc.terminate()

    def reap(self):
        """A terminating pod: True once its process has ended (SIGKILLed at the end of the
        grace period), with the "stop" event."""
        if self.proc is not None and self.proc.poll() is None:
            if time.monotonic() < self.kill_at:
                return False
            self.proc.kill()
            self.proc.wait()
            self.k.event("stop", self, killed=True)
        else:
            self.k.event("stop", self)
        self.proc = None
        return True

    # ---- pods/status ----
    def _cond(self, ctype, ok):
        status = "True" if ok else "False"
        prev = self.since.get(ctype)
        if prev is None or prev[0] != status:
            prev = self.since[ctype] = (status, now_rfc3339())
        return {"type": ctype, "status": status, "lastProbeTime": None,
                "lastTransitionTime": prev[1]}

    def status(self):
        c = self.container()
        cs = {"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "",
              "ready": self.ready, "restartCount": self.restarts,
              "started": self.proc is not None}
        if self.proc is not None:
            cs["containerID"] = "sim://%d" % self.proc.pid
            cs["state"] = {"running": {"startedAt": self.started_wall}}
        elif self.waiting:
            cs["state"] = {"waiting": {"reason": "CreateContainerConfigError",
                                       "message": self.waiting}}
        elif self.restarts:
            cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                       "back-off restarting failed container"}}
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if self.last_exit:
            cs["lastState"] = {"terminated": {"exitCode": self.last_exit[0], "reason": "Error",
                                              "startedAt": self.last_exit[1],
                                              "finishedAt": self.last_exit[2]}}
        running = self.proc is not None or self.restarts > 0
        return {"phase": "Running" if running else "Pending",
                "conditions": [self._cond("Initialized", True),
                               self._cond("Ready", self.ready),
                               self._cond("ContainersReady", self.ready),
                               self._cond("PodScheduled", True)],
                "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
                "startTime": self.since["PodScheduled"][1] if "PodScheduled" in self.since
                else now_rfc3339(), "containerStatuses": [cs]}

    def report(self):
        st = self.status()
        if st == self.reported:
            return
        code, obj = self.k.kube.request("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (
            self.ns, self.name), {"metadata": {"uid": self.uid}, "status": st}, MERGE)
        if code == 200:
            self.reported = st
            self.k.pods.put(obj)
        elif code not in (404, 409):
            log("kubelet", "status of pod %s: HTTP %d" % (self.name, code))


class Service(threading.Thread):
    """A TCP "Service": round-robin over the ready pods of one workload, on 127.0.0.1."""

    def __init__(self, kubelet, name, port):
        super().__init__(daemon=True, name="svc-" + name)
        self.k, self.name = kubelet, name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.next = 0

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        ports = self.k.endpoints.get(self.name) or []
        for i in range(len(ports)):
            port = ports[(self.next + i) % len(ports)]
            try:
                up = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
            self.next += 1
            up.settimeout(None)
            threading.Thread(target=_pipe, args=(up, conn), daemon=True).start()
            _pipe(conn, up)
            return
        conn.close()  # no ready endpoint: like a Service without endpoints


def _pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    src.close()


class Kubelet:
    """The stand-in; step() is one pass of its loop (run() loops, or simulator.py drives it
    together with the workload-controller stand-in)."""

    def __init__(self, kube, node, state_dir, rollout_delay=0.2, services=(), stopping=None):
        self.kube, self.node = kube, node
        self.node_id = node.rsplit("-", 1)[-1]
        self.state_dir = os.path.abspath(state_dir)
        self.rollout_delay = rollout_delay
        for d in ("pods", "endpoints"):
            os.makedirs(os.path.join(self.state_dir, d), exist_ok=True)
        self.stopping = stopping or threading.Event()
        self.events = open(os.path.join(self.state_dir, "events.jsonl"), "a", buffering=1)
        self.runners = {}  # uid -> Runner
        self.endpoints = {}
        self.services = {}
        for spec in services:
            name, _, port = spec.partition("=")
            self.services[name] = Service(self, name, int(port or 0))
        write_json(os.path.join(self.state_dir, "services.json"),
                   {n: s.port for n, s in self.services.items()})
        self.pods = Informer(kube, "/api/v1/pods?fieldSelector=" + urllib.parse.quote(
            "spec.nodeName=" + node), self.stopping, "pods", "kubelet")
        self.node_uid = None
        self.next_lease = self.next_status = 0.0

    def event(self, what, r, **kw):
        rec = {"event": what, "kind": r.kind, "workload": r.workload, "pod": r.name,
               "hash": r.hash, "mono": time.monotonic(), "time": time.time(),
               "keyIdAnnotation": (r.pod["metadata"].get("annotations") or {})
               .get(KEY_ID_ANNOTATION)}
        rec.update(kw)
        self.events.write(json.dumps(rec, sort_keys=True) + "\n")

    # ---- the Node and its Lease ----
    def register(self):
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node, "labels": {
            "kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", TAINT_KEY: self.node_id}},
            "spec": {"taints": [{"key": TAINT_KEY, "value": self.node_id,
                                 "effect": "NoSchedule"}]}}
        code, obj = self.kube.request("POST", "/api/v1/nodes", body)
        if code == 409:
            code, obj = self.kube.request("GET", "/api/v1/nodes/" + self.node)
        if code not in (200, 201):
            raise RuntimeError("registering Node %s (needs create on nodes): HTTP %d %s" % (
                self.node, code, (obj or {}).get("message")))
        self.node_uid = obj["metadata"]["uid"]
        self.node_status(force=True)
        self.renew_lease(force=True)

    def node_status(self, force=False):
        now = time.monotonic()
        if not force and now < self.next_status:
            return
        self.next_status = now + STATUS_EVERY
        t = now_rfc3339()
        conds = [(c, "False", r, m) for c, r, m in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID"))] + \
            [("Ready", "True", "KubeletReady", "keyrotator e2e kubelet stand-in is posting "
              "ready status")]
        res = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "20Gi"}
        st = {"conditions": [{"type": c, "status": s, "lastHeartbeatTime": t,
                              "lastTransitionTime": t, "reason": r, "message": m}
                             for c, s, r, m in conds],
              "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                            {"type": "Hostname", "address": self.node}],
              "capacity": res, "allocatable": res,
              "nodeInfo": {"kubeletVersion": "v1.26.5-keyrotator-e2e-stand-in",
                           "operatingSystem": "linux", "architecture": "amd64",
                           "containerRuntimeVersion": "sim://1", "osImage": "local processes",
                           "kernelVersion": os.uname().release, "kubeProxyVersion": "",
                           "machineID": "", "systemUUID": "", "bootID": ""}}
        code, _ = self.kube.request("PATCH", "/api/v1/nodes/%s/status" % self.node,
                                    {"status": st}, MERGE)
        if code != 200:
            log("kubelet", "node status: HTTP %d" % code)

    def renew_lease(self, force=False):
        now = time.monotonic()
        if not force and now < self.next_lease:
            return
        self.next_lease = now + HEARTBEAT
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": now_micro()}
        code, _ = self.kube.request("PATCH", path + "/" + self.node, {"spec": spec}, MERGE)
        if code == 404:
            code, _ = self.kube.request("POST", path, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Node", "name": self.node,
                    "uid": self.node_uid}]}, "spec": spec})
        if code not in (200, 201):
            log("kubelet", "node lease: HTTP %d" % code)

    def unregister(self):
        for path in ("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/",
                     "/api/v1/nodes/"):
            try:
                self.kube.request("DELETE", path + self.node, timeout=3)
            except OSError:
                pass

    # ---- pods ----
    def update_endpoints(self):
        eps = {}
        for r in self.runners.values():
            eps.setdefault(r.workload, [])
            if r.ready and r.port and not r.terminating:
                eps[r.workload].append(r.port)
        for name, ports in eps.items():
            if self.endpoints.get(name) != ports:
                self.endpoints[name] = ports
                write_json(os.path.join(self.state_dir, "endpoints", name + ".json"),
                           [{"targets": ["127.0.0.1:%d" % p for p in ports],
                             "labels": {"service": name, "namespace": r.ns}}])

    def tolerated(self, pod):
        """Whether `pod` is one of the suite's: it tolerates this Node's taint by its key.
        A real cluster's DaemonSets that tolerate every taint (kube-proxy, a CNI agent) get a
        pod bound here too; this stand-in leaves those alone (they stay Pending)."""
        return any(t.get("key") == TAINT_KEY and t.get("value") in (self.node_id, None)
                   for t in (pod.get("spec") or {}).get("tolerations") or [])

    def grace_left(self, pod):
        """Seconds left of a deleting pod's grace period (deletionGracePeriodSeconds from
        when this stand-in first saw it: clocks of the server and here may differ)."""
        md = pod["metadata"]
        g = md.get("deletionGracePeriodSeconds")
        if g is None:
            g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return float(g)

    def delete_now(self, r):
        """The container has stopped: delete the pod with grace 0 (precondition: its uid)."""
        code, _ = self.kube.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (r.ns, r.name),
                                    {"apiVersion": "v1", "kind": "DeleteOptions",
                                     "gracePeriodSeconds": 0,
                                     "preconditions": {"uid": r.uid}})
        if code not in (200, 404, 409):
            log("kubelet", "deleting pod %s: HTTP %d" % (r.name, code))
            return False
        self.pods.forget(r.pod)
        return True

    def step(self):
        self.renew_lease()
        self.node_status()
        if not self.pods.synced.is_set():
            return
        pods = {o["metadata"]["uid"]: o for o in self.pods.snapshot().values()}
        # Deletions first (a replaced pod is terminated before its replacement starts when
        # both arrive in one pass), then new pods.
        for uid, r in list(self.runners.items()):
            pod = pods.get(uid)
            if pod is not None:
                r.pod = pod
            if pod is None and not r.terminating:
                r.terminate(min(r.pod["spec"].get("terminationGracePeriodSeconds", 30), 2))
            elif pod is not None and "deletionTimestamp" in pod["metadata"]:
                r.terminate(self.grace_left(pod))
            elif os.path.exists(os.path.join(r.dir, "delete")):  # `kubectl delete pod`
                os.unlink(os.path.join(r.dir, "delete"))
                code, obj = self.kube.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (
                    r.ns, r.name))
                if code == 200 and "deletionTimestamp" in (obj or {}).get("metadata", {}):
                    self.pods.put(obj)
        for uid, pod in pods.items():
            if uid in self.runners or not self.tolerated(pod):
                continue
            if "deletionTimestamp" in pod["metadata"]:
                self.delete_now(Runner(self, pod))  # never started here: nothing runs
                continue
            r = self.runners[uid] = Runner(self, pod)
            r.start()
        for uid, r in list(self.runners.items()):
            if r.terminating:
                if r.reap():
                    if uid not in pods or self.delete_now(r):
                        del self.runners[uid]
                continue
            r.poll()
            r.report()
        self.update_endpoints()

    def start(self):
        for s in self.services.values():
            s.start()
        self.register()
        self.pods.start()

    def shutdown(self):
        """The stand-in's own end: every pod gets SIGTERM and 2 s, whatever its grace; then
        its Lease and Node go."""
        left = list(self.runners.values())
        for r in left:
            r.terminate(2.0)
        while left:
            left = [r for r in left if not r.reap()]
            time.sleep(0.02)
        self.unregister()

    def run(self):
        self.start()
        passes = 0
        while not self.stopping.is_set():
            self.step()
            passes += 1
            if passes % 10 == 0:
                write_json(os.path.join(self.state_dir, "passes.json"), {"passes": passes})
            self.stopping.wait(0.05)
        self.shutdown()


def add_args(ap, node_required=True):
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--node", required=node_required,
                    help="the Node's name (its last '-' part is the taint's value)")
    ap.add_argument("--rollout-delay", type=float, default=0.2,
                    help="minimum seconds before a started pod counts as ready")
    ap.add_argument("--service", action="append", default=[],
                    help="WORKLOAD=PORT: a local Service in front of the workload's ready pods "
                         "(PORT 0 = free port; see services.json)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_args(ap)
    args = ap.parse_args()
    if not args.kubeconfig:
        ap.error("--kubeconfig or $KUBECONFIG is required")
    return serve(args.kubeconfig, lambda kube: Kubelet(
        kube, args.node, args.state_dir, args.rollout_delay, args.service))

if __name__ == "__main__":
    sys.exit(main())
