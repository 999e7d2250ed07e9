#!/usr/bin/env python3
"""simulator.py - plays kubelet + the Deployment/StatefulSet/DaemonSet controllers for the
workloads of one namespace, with local processes as pods. Talks to the API server only through
the API (list + watch, GET Secrets, PATCH .../status), so it works against a real cluster too.

    tests/py tests/sim/simulator.py --kubeconfig K --namespace NS --state-dir D \
        [--rollout-delay 0.2] [--service sirius-api=0 ...]

See README.md in this folder for the pod model, the "image" mapping, the Services, the
failure annotations and the files written in the state dir. Python 3 standard library only.
"""
import argparse
import base64
import hashlib
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
import kyaml

KINDS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
FAIL_ANNOTATION = "keyrotator-sim/fail-rollout"
KEY_ID_ANNOTATION = "keyrotator.io/key-id"
SETPRIV = shutil.which("setpriv")


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def key_id(value):
    return hashlib.sha256(value.encode()).hexdigest()[:12]


class Kube:
    """A minimal API client configured from a kubeconfig (token or client cert, CA data)."""

    def __init__(self, kubeconfig, scratch):
        with open(kubeconfig) as f:
            cfg = kyaml.load_all(f.read())[0]
        ctx_name = cfg.get("current-context")
        ctx = next((c["context"] for c in cfg.get("contexts") or [] if c["name"] == ctx_name),
                   (cfg.get("contexts") or [{}])[0].get("context", {}))
        cluster = next((c["cluster"] for c in cfg["clusters"]
                        if c["name"] == ctx.get("cluster")), cfg["clusters"][0]["cluster"])
        user = next((u["user"] for u in cfg.get("users") or [] if u["name"] == ctx.get("user")),
                    {})
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.https = url.hostname, url.scheme == "https"
        self.port = url.port or (443 if self.https else 80)
        self.prefix = url.path.rstrip("/")
        self.token = user.get("token")
        self.ctx = None
        if self.https:
            self.ctx = ssl.create_default_context()
            if cluster.get("insecure-skip-tls-verify"):
                self.ctx.check_hostname = False
                self.ctx.verify_mode = ssl.CERT_NONE
            elif cluster.get("certificate-authority-data"):
                self.ctx.load_verify_locations(cadata=base64.b64decode(
                    cluster["certificate-authority-data"]).decode())
            elif cluster.get("certificate-authority"):
                self.ctx.load_verify_locations(cluster["certificate-authority"])
            if user.get("client-certificate-data"):
                cert, key = os.path.join(scratch, "client.crt"), os.path.join(scratch, "client.key")
                for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(base64.b64decode(user[field]))
                self.ctx.load_cert_chain(cert, key)

    def conn(self, timeout=10):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                               timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, ctype=None):
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if ctype:
            h["Content-Type"] = ctype
        return h

    def request(self, method, path, body=None, ctype="application/json"):
        """(status, decoded JSON body or None)."""
        c = self.conn()
        try:
            data = None if body is None else json.dumps(body).encode()
            c.request(method, self.prefix + path, body=data,
                      headers=self.headers(ctype if data is not None else None))
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, None
        finally:
            c.close()

    def watch(self, path, rv):
        """Yield watch events until the server closes the stream."""
        c = self.conn(timeout=330)
        try:
            q = "?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" + rv
            c.request("GET", self.prefix + path + q, headers=self.headers())
            r = c.getresponse()
            if r.status != 200:
                r.read()
                yield {"type": "ERROR", "object": {"code": r.status}}
                return
            while True:
                line = r.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            c.close()


class Informer(threading.Thread):
    """list + watch of one workload kind in the namespace into a shared cache."""

    def __init__(self, sim, kind):
        super().__init__(daemon=True, name="watch-" + kind)
        self.sim, self.kind = sim, kind
        self.path = "/apis/apps/v1/namespaces/%s/%s" % (sim.ns, KINDS[kind])

    def run(self):
        while not self.sim.stopping.is_set():
            try:
                rv = self._list()
                while rv and not self.sim.stopping.is_set():
                    rv = self._watch(rv)
            except (OSError, ValueError, http.client.HTTPException) as e:
                self.sim.log("watch %s: %s; relisting" % (self.kind, e))
            self.sim.stopping.wait(0.5)

    def _list(self):
        status, body = self.sim.kube.request("GET", self.path)
        if status != 200:
            raise OSError("list %s: HTTP %d" % (self.path, status))
        with self.sim.lock:
            for k in [k for k in self.sim.cache if k[0] == self.kind]:
                del self.sim.cache[k]
            for item in body.get("items") or []:
                item["kind"] = self.kind
                self.sim.cache[(self.kind, item["metadata"]["name"])] = item
        return body["metadata"]["resourceVersion"]

    def _watch(self, rv):
        """Returns the RV to resume from, or None to relist (410)."""
        for ev in self.sim.kube.watch(self.path, rv):
            obj = ev.get("object") or {}
            if ev["type"] == "ERROR":
                return None
            rv = obj.get("metadata", {}).get("resourceVersion", rv)
            if ev["type"] == "BOOKMARK":
                continue
            key = (self.kind, obj["metadata"]["name"])
            with self.sim.lock:
                if ev["type"] == "DELETED":
                    self.sim.cache.pop(key, None)
                else:
                    obj["kind"] = self.kind
                    self.sim.cache[key] = obj
        return rv


class Pod:
    """One pod: one local process running the first container of the template."""

    def __init__(self, sim, wl, name, tpl_hash, template):
        self.sim, self.wl, self.name = sim, wl, name
        self.hash, self.template = tpl_hash, template
        self.dir = os.path.join(sim.state_dir, "pods", name)
        os.makedirs(self.dir, exist_ok=True)
        self.ready_file = os.path.join(self.dir, "ready")
        self.proc = None
        self.port = None
        self.restarts = 0
        self.next_try = 0.0
        self.started = 0.0
        self.ready = False
        self.terminating = False
        self.kill_at = None  # terminating: when the grace period ends (SIGKILL)
        self.waiting = ""  # why the container is not running (CreateContainerConfigError...)

    def container(self):
        return (self.template.get("spec", {}).get("containers") or [{}])[0]

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
        status, obj = self.sim.kube.request(
            "GET", "/api/v1/namespaces/%s/%s/%s" % (self.sim.ns, kind, name))
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
        v = (self.wl.obj["metadata"].get("annotations") or {}).get(FAIL_ANNOTATION)
        if not v:
            return False
        tid = (self.template.get("metadata", {}).get("annotations") or {}).get(KEY_ID_ANNOTATION)
        return v == "true" or v == tid

    def start(self):
        """Start (or restart) the container; False while its config can't be resolved."""
        try:
            user_env, ids = self.resolve_env()
            cmd = self.command()
        except (LookupError, ValueError, OSError) as e:
            if self.waiting != str(e):
                self.sim.event("pending", self, reason=str(e))
            self.waiting, self.next_try = str(e), time.monotonic() + 1.0
            return False
        self.waiting = ""
        # PYTHONPATH: the pods' programs (api.py, client.py) import the suite's krtest.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0",
               "LANG": "C.UTF-8", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        env.update(user_env)
        env.update({"POD_NAME": self.name, "POD_NAMESPACE": self.sim.ns,
                    "POD_STATE_DIR": self.dir, "POD_READY_FILE": self.ready_file})
        if self.fails():
            cmd = [sys.executable, "-c", "import sys; print('simulated crash'); sys.exit(1)"]
        if SETPRIV:
            cmd = [SETPRIV, "--pdeathsig", "KILL", "--"] + cmd
        for f in (self.ready_file,):
            if os.path.exists(f):
                os.unlink(f)
        log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=self.dir)
        log.close()
        with open(os.path.join(self.dir, "pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)
        self.started, self.ready, self.port = time.monotonic(), False, None
        self.sim.event("start", self, keyIds=ids, restart=self.restarts)
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
            self.sim.event("crash", self, exitCode=rc)
            self.proc, self.ready, self.port = None, False, None
            self.restarts += 1
            self.next_try = now + min(0.5 * 2 ** min(self.restarts, 4), 5.0)
            return
        if not self.ready and os.path.exists(self.ready_file) and \
                now - self.started >= self.sim.rollout_delay:
            try:
                with open(self.ready_file) as f:
                    self.port = json.load(f).get("port")
            except (OSError, ValueError):
                return
            self.ready = True
            self.sim.event("ready", self)

    def grace(self):
        """spec.terminationGracePeriodSeconds of the pod's template (Kubernetes' default 30)."""
        v = (self.template.get("spec") or {}).get("terminationGracePeriodSeconds")
        return 30.0 if v is None else float(v)

    def terminate(self, grace=None):
        """Begin graceful termination, as kubelet does: out of the Service and not ready at
        once, SIGTERM now, SIGKILL when the grace period ends; the process keeps running
        (with the environment, and so the key, it started with) until it exits. reap() tells
        when it has."""
        if self.terminating:
            return
        self.terminating, self.ready = True, False
        grace = self.grace() if grace is None else grace
        self.kill_at = time.monotonic() + grace
        self.sim.update_endpoints()  # out of the Service before SIGTERM, as with a real pod
        self.sim.event("terminate", self, grace=grace)
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
            self.sim.event("stop", self, killed=True)
        else:
            self.sim.event("stop", self)
        self.proc = None
        return True


def _omit_empty(v):
    """`v` without empty maps, lists and nulls: a real API server drops them (omitempty), so
    a template that returns to an earlier one has the earlier one's hash."""
    if isinstance(v, dict):
        v = {k: _omit_empty(x) for k, x in v.items()}
        return {k: x for k, x in v.items() if x not in ({}, [], None)}
    if isinstance(v, list):
        return [_omit_empty(x) for x in v]
    return v


def template_hash(template):
    """The pod-template-hash: one per distinct template, stable across the simulator's runs."""
    return hashlib.sha256(json.dumps(_omit_empty(template), sort_keys=True).encode()
                          ).hexdigest()[:10]


def rand_suffix():
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def _int_or_percent(v, replicas, round_up):
    if isinstance(v, str) and v.endswith("%"):
        x = replicas * int(v[:-1]) / 100.0
        return int(math.ceil(x) if round_up else math.floor(x))
    return int(v)


def rolling_limits(spec, replicas):
    """(maxSurge, maxUnavailable) of a Deployment's RollingUpdate as the real controller
    resolves them: percentages of replicas, surge rounded up, unavailable down (defaults 25%),
    and never both 0 (then maxUnavailable is 1)."""
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = _int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = _int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(spec, replicas):
    if (spec.get("strategy") or {}).get("type") == "Recreate":
        return replicas
    return rolling_limits(spec, replicas)[1]


class Workload:
    """Desired state (the cached object) and the pods the simulator runs for it."""

    def __init__(self, sim, kind, name):
        self.sim, self.kind, self.name = sim, kind, name
        self.obj = None
        self.pods = []         # the pods status counts: not terminating
        self.terminating = []  # still running out their grace period, counted nowhere
        self.templates = {}
        self.current_revision = None  # StatefulSet
        self.progress_key = None
        self.progress_mono = time.monotonic()
        self.progress_wall = now_rfc3339()
        self.cond_since = {}
        self.written = None

    # ---- pods ----
    def add_pod(self, tpl_hash, name=None):
        name = name or "%s-%s-%s" % (self.name, tpl_hash, rand_suffix())
        pod = Pod(self.sim, self, name, tpl_hash, self.templates[tpl_hash])
        self.pods.append(pod)
        pod.start()
        return pod

    def remove_pod(self, pod):
        pod.terminate()
        self.pods.remove(pod)
        self.terminating.append(pod)

    def reap(self):
        """Forget terminating pods whose process has ended; True when none is left."""
        self.terminating = [p for p in self.terminating if not p.reap()]
        return not self.terminating

    def terminating_ordinals(self):
        return {int(p.name.rsplit("-", 1)[1]) for p in self.terminating}

    def reconcile(self):
        spec = self.obj["spec"]
        h = template_hash(spec["template"])
        self.templates[h] = spec["template"]
        for pod in list(self.pods):
            if os.path.exists(os.path.join(pod.dir, "delete")):  # `kubectl delete pod`
                os.unlink(os.path.join(pod.dir, "delete"))
                self.remove_pod(pod)
            else:
                pod.poll()
        getattr(self, "_sync_" + self.kind.lower())(spec, h)

    def _sync_deployment(self, spec, h):
        """The Deployment controller's rollout over pods grouped by template hash (a
        ReplicaSet each; a template that returns to an earlier one finds its pods again).
        RollingUpdate: at most replicas + maxSurge pods and at least replicas -
        maxUnavailable ready ones, counting no terminating pod (which still runs out its
        grace period); Recreate: every old pod has ended before a new one starts."""
        replicas = spec.get("replicas", 1)
        new = [p for p in self.pods if p.hash == h]
        old = [p for p in self.pods if p.hash != h]
        if spec.get("paused") and (old or not new):
            return  # paused: no rollout (a paused Deployment with no pods yet gets none)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            for p in old:
                self.remove_pod(p)
            if old or any(p.hash != h for p in self.terminating):
                return
        if not old:  # creation or scaling: all at once, like a ReplicaSet
            for _ in range(replicas - len(new)):
                self.add_pod(h)
            for p in sorted(new, key=lambda p: p.ready)[:max(len(new) - replicas, 0)]:
                self.remove_pod(p)
            return
        surge, unavailable = rolling_limits(spec, replicas)
        for p in [p for p in old if not p.ready]:  # they take nothing away from availability
            self.remove_pod(p)
        old = [p for p in old if p.ready]
        can_go = len([p for p in self.pods if p.ready]) - (replicas - unavailable)
        for p in old[:max(can_go, 0)]:
            self.remove_pod(p)
        room = replicas + surge - len(self.pods)
        for _ in range(max(0, min(room, replicas - len(new)))):
            self.add_pod(h)

    def _sync_statefulset(self, spec, h):
        replicas = spec.get("replicas", 1)
        rev = "%s-%s" % (self.name, h)
        if self.current_revision is None:
            self.current_revision = rev
        strategy = spec.get("updateStrategy") or {}
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        by_ord = {int(p.name.rsplit("-", 1)[1]): p for p in self.pods}
        for o in sorted(k for k in by_ord if k >= replicas):
            self.remove_pod(by_ord.pop(o))
        parallel = spec.get("podManagementPolicy") == "Parallel"
        going = self.terminating_ordinals()  # a pod's name is free again once it has ended
        for o in range(replicas):
            if o in going:
                if not parallel:
                    return
            elif o not in by_ord:
                cur = self.current_revision.rsplit("-", 1)[1]
                use = h if o >= partition or cur not in self.templates else cur
                by_ord[o] = self.add_pod(use, "%s-%d" % (self.name, o))
                if not parallel:
                    return
            elif not by_ord[o].ready and not parallel:
                return  # OrderedReady: the next ordinal waits for this one
        if spec.get("paused") or strategy.get("type") == "OnDelete":
            return
        if all(p.ready for p in self.pods):
            for o in sorted(by_ord, reverse=True):
                if o >= partition and by_ord[o].hash != h:
                    self.remove_pod(by_ord[o])  # recreated at the update revision next tick
                    return

    def _sync_daemonset(self, spec, h):
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if not self.pods and not self.terminating:
            self.add_pod(h)
        elif self.pods and strategy == "RollingUpdate" and self.pods[0].hash != h:
            self.remove_pod(self.pods[0])  # maxUnavailable 1, maxSurge 0: delete, then create

    # ---- status ----
    def status(self):
        spec, md = self.obj["spec"], self.obj["metadata"]
        h = template_hash(spec["template"])
        ready = [p for p in self.pods if p.ready]
        updated = [p for p in self.pods if p.hash == h]
        st = {"observedGeneration": md.get("generation", 1)}
        counts = (h, len(self.pods), len(updated), len(ready))
        if counts != self.progress_key:
            self.progress_key, self.progress_mono = counts, time.monotonic()
            self.progress_wall = now_rfc3339()
        if self.kind == "Deployment":
            replicas = spec.get("replicas", 1)
            st.update(replicas=len(self.pods), updatedReplicas=len(updated),
                      readyReplicas=len(ready), availableReplicas=len(ready))
            if replicas - len(ready) > 0:
                st["unavailableReplicas"] = replicas - len(ready)
            st["conditions"] = self._deployment_conditions(spec, h, len(updated), len(ready))
        elif self.kind == "StatefulSet":
            rev = "%s-%s" % (self.name, h)
            cur_hash = self.current_revision.rsplit("-", 1)[1] if self.current_revision else h
            replicas = spec.get("replicas", 1)
            rolling = (spec.get("updateStrategy") or {}).get("type") != "OnDelete"
            if rolling and len(updated) == replicas == len(self.pods) == len(ready):
                self.current_revision, cur_hash = rev, h
            st.update(replicas=len(self.pods), readyReplicas=len(ready),
                      availableReplicas=len(ready), updatedReplicas=len(updated),
                      currentReplicas=len([p for p in self.pods if p.hash == cur_hash]),
                      currentRevision=self.current_revision, updateRevision=rev,
                      collisionCount=0)
        else:
            st.update(desiredNumberScheduled=1, currentNumberScheduled=len(self.pods),
                      numberMisscheduled=0, numberReady=len(ready), numberAvailable=len(ready),
                      updatedNumberScheduled=len(updated))
            if len(ready) < 1:
                st["numberUnavailable"] = 1
        for k in ("readyReplicas", "availableReplicas", "updatedReplicas", "currentReplicas"):
            if st.get(k) == 0 and self.kind == "Deployment":
                del st[k]  # omitempty, as the real controller's status
        return st

    def _deployment_conditions(self, spec, h, n_updated, n_ready):
        replicas = spec.get("replicas", 1)
        rs = '"%s-%s"' % (self.name, h)
        if n_ready >= replicas - max_unavailable(spec, replicas):
            avail = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail = ("False", "MinimumReplicasUnavailable",
                     "Deployment does not have minimum availability.")
        complete = n_updated == replicas == len(self.pods) and n_ready == replicas
        deadline = spec.get("progressDeadlineSeconds", 600)
        if spec.get("paused"):
            prog = ("Unknown", "DeploymentPaused", "Deployment is paused")
        elif complete:
            prog = ("True", "NewReplicaSetAvailable", "ReplicaSet %s has successfully progressed."
                    % rs)
        elif time.monotonic() - self.progress_mono > deadline:
            prog = ("False", "ProgressDeadlineExceeded", "ReplicaSet %s has timed out progressing."
                    % rs)
        else:
            prog = ("True", "ReplicaSetUpdated", "ReplicaSet %s is progressing." % rs)
        out = []
        for ctype, (status, reason, msg) in (("Available", avail), ("Progressing", prog)):
            prev = self.cond_since.get(ctype)
            if prev is None or prev[0] != status:
                prev = self.cond_since[ctype] = (status, now_rfc3339())
            out.append({"type": ctype, "status": status, "lastUpdateTime": self.progress_wall,
                        "lastTransitionTime": prev[1], "reason": reason, "message": msg})
        return out

    def write_status(self):
        st = self.status()
        if st == self.written and \
                (self.obj.get("status") or {}).get("observedGeneration") == st["observedGeneration"]:
            return
        patch = dict(st)
        for k in (self.obj.get("status") or {}):
            if k not in patch:
                patch[k] = None
        path = "/apis/apps/v1/namespaces/%s/%s/%s/status" % (self.sim.ns, KINDS[self.kind],
                                                             self.name)
        code, _ = self.sim.kube.request("PATCH", path, {"status": patch},
                                        "application/merge-patch+json")
        if code == 200:
            self.written = st
        elif code != 404:
            self.sim.log("status %s/%s: HTTP %d" % (self.kind, self.name, code))


class Service(threading.Thread):
    """A TCP "Service": round-robin over the ready pods of one workload, on 127.0.0.1."""

    def __init__(self, sim, name, port):
        super().__init__(daemon=True, name="svc-" + name)
        self.sim, self.name = sim, name
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
        ports = self.sim.endpoints.get(self.name) or []
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


class Simulator:
    def __init__(self, args):
        self.ns, self.state_dir = args.namespace, os.path.abspath(args.state_dir)
        self.rollout_delay = args.rollout_delay
        os.makedirs(os.path.join(self.state_dir, "pods"), exist_ok=True)
        os.makedirs(os.path.join(self.state_dir, "endpoints"), exist_ok=True)
        self.scratch = tempfile.mkdtemp(prefix="sim-", dir=self.state_dir)
        self.kube = Kube(args.kubeconfig, self.scratch)
        self.lock = threading.Lock()
        self.cache = {}
        self.workloads = {}
        self.stopping = threading.Event()
        self.events = open(os.path.join(self.state_dir, "events.jsonl"), "a", buffering=1)
        self.endpoints = {}
        self.services = {}
        for spec in args.service:
            name, _, port = spec.partition("=")
            self.services[name] = Service(self, name, int(port or 0))
        write_json(os.path.join(self.state_dir, "services.json"),
                   {n: s.port for n, s in self.services.items()})

    def log(self, msg):
        sys.stderr.write("%s simulator: %s\n" % (now_rfc3339(), msg))
        sys.stderr.flush()

    def event(self, what, pod, **kw):
        rec = {"event": what, "kind": pod.wl.kind, "workload": pod.wl.name, "pod": pod.name,
               "hash": pod.hash, "mono": time.monotonic(), "time": time.time(),
               "keyIdAnnotation": (pod.template.get("metadata", {}).get("annotations") or {})
               .get(KEY_ID_ANNOTATION)}
        rec.update(kw)
        self.events.write(json.dumps(rec, sort_keys=True) + "\n")

    def update_endpoints(self):
        eps = {}
        for (kind, name), wl in self.workloads.items():
            eps.setdefault(name, []).extend(
                p.port for p in wl.pods if p.ready and p.port and not p.terminating)
        for name, ports in eps.items():
            if self.endpoints.get(name) != ports:
                self.endpoints[name] = ports
                write_json(os.path.join(self.state_dir, "endpoints", name + ".json"),
                           [{"targets": ["127.0.0.1:%d" % p for p in ports],
                             "labels": {"service": name, "namespace": self.ns}}])

    def run(self):
        for s in self.services.values():
            s.start()
        for kind in KINDS:
            Informer(self, kind).start()
        passes = 0
        while not self.stopping.is_set():
            with self.lock:
                snapshot = dict(self.cache)
            for key, obj in snapshot.items():
                wl = self.workloads.get(key) or self.workloads.setdefault(
                    key, Workload(self, key[0], key[1]))
                wl.obj = obj
                try:
                    wl.reap()
                    wl.reconcile()
                    self.update_endpoints()
                    wl.write_status()
                except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
                    self.log("%s/%s: %s" % (key[0], key[1], e))
            for key in [k for k in self.workloads if k not in snapshot]:
                for pod in list(self.workloads[key].pods):
                    self.workloads[key].remove_pod(pod)
                self.update_endpoints()
                if self.workloads[key].reap():  # deleted: gone once its pods have ended
                    del self.workloads[key]
            passes += 1
            if passes % 10 == 0:  # lets tests wait for "N more passes" when proving absence
                write_json(os.path.join(self.state_dir, "passes.json"), {"passes": passes})
            self.stopping.wait(0.05)
        self.shutdown()

    def shutdown(self):
        """The simulator's own end: every pod gets SIGTERM and 2 s, whatever its grace."""
        for wl in self.workloads.values():
            for pod in list(wl.pods):
                wl.remove_pod(pod)
            for pod in wl.terminating:
                pod.kill_at = min(pod.kill_at, time.monotonic() + 2.0)
        while not all(wl.reap() for wl in list(self.workloads.values())):
            time.sleep(0.02)
        shutil.rmtree(self.scratch, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), required=False)
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--rollout-delay", type=float, default=0.2,
                    help="minimum seconds before a started pod counts as ready")
    ap.add_argument("--service", action="append", default=[],
                    help="WORKLOAD=PORT: a local Service in front of the workload's ready pods "
                         "(PORT 0 = free port; see services.json)")
    args = ap.parse_args()
    if not args.kubeconfig:
        ap.error("--kubeconfig or $KUBECONFIG is required")
    sim = Simulator(args)
    signal.signal(signal.SIGTERM, lambda *_: sim.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: sim.stopping.set())
    sim.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
