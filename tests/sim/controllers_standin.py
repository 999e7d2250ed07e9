#!/usr/bin/env python3
"""controllers_standin.py - a stand-in for the Deployment, ReplicaSet, StatefulSet and
DaemonSet controllers (and the garbage collector for what it owns), for a cluster that has none
(the local API server, envtest, kube-controller-manager without them). It creates ReplicaSets
and Pods through the API the way the real controllers do: pod-template-hash, the earlier
ReplicaSet reused when a template returns to it, deployment.kubernetes.io/revision,
maxSurge/maxUnavailable, status computed from the pods (terminating ones counted nowhere),
ProgressDeadlineExceeded; StatefulSet ordinals, controller-revision-hash, partition, OnDelete;
one DaemonSet pod on the kubelet stand-in's Node; ownerReferences on all it creates.

    tests/py tests/sim/controllers_standin.py --kubeconfig K [--namespace NS] [--node NAME]

--node: pods whose template names no node are bound to NAME with the toleration of its taint
(there may be no scheduler, and a real one must not place them elsewhere). Without
--namespace it acts in every namespace. See README.md in this folder.
"""
import argparse
import copy
import hashlib
import json
import math
import os
import sys
import threading
import time

from simkube import MERGE, Informer, log, now_rfc3339, owner, serve
from kubelet_standin import pin

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
REV_LABEL = "controller-revision-hash"
SAFE = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's alphabet
KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet",
         "replicasets": "ReplicaSet"}


def _omit_empty(v):
    """`v` without empty maps, lists and nulls: a real API server drops them (omitempty), so
    a template that returns to an earlier one compares (and hashes) equal to it."""
    if isinstance(v, dict):
        v = {k: _omit_empty(x) for k, x in v.items()}
        return {k: x for k, x in v.items() if x not in ({}, [], None)}
    if isinstance(v, list):
        return [_omit_empty(x) for x in v]
    return v


def _bare(template):
    """The template without the labels a controller adds and without empty values."""
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels") or {}
    for k in (HASH_LABEL, REV_LABEL):
        labels.pop(k, None)
    return _omit_empty(t)


def template_hash(template, collisions=0):
    """A pod-template-hash as upstream writes it (the decimal digits of a 32-bit hash of the
    template, each mapped into rand.SafeEncodeString's alphabet); the hash function is not
    upstream's (FNV over Go's printing of the struct) but one per distinct template."""
    data = json.dumps(_bare(template), sort_keys=True) + (str(collisions) if collisions else "")
    n = int.from_bytes(hashlib.sha256(data.encode()).digest()[:4], "big")
    return "".join(SAFE[ord(c) % len(SAFE)] for c in str(n))


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


def is_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def terminating(obj):
    return "deletionTimestamp" in obj["metadata"]


def revision(rs):
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def owner_ref(obj, kind):
    return {"apiVersion": "apps/v1", "kind": kind, "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


class Progress:
    """A Deployment's progress clock and condition transition times (controller memory)."""

    def __init__(self):
        self.key, self.mono, self.wall = None, time.monotonic(), now_rfc3339()
        self.since = {}


class Controllers:
    """The stand-in; step() is one pass over every workload (run() loops, or simulator.py
    drives it together with the kubelet stand-in)."""

    def __init__(self, kube, namespace=None, node=None, stopping=None):
        self.kube, self.ns, self.node = kube, namespace, node
        self.node_id = node.rsplit("-", 1)[-1] if node else None
        self.stopping = stopping or threading.Event()
        self.inf = {}
        for plural in ("deployments", "statefulsets", "daemonsets", "replicasets", "pods"):
            group = "/api/v1" if plural == "pods" else "/apis/apps/v1"
            path = group + ("/namespaces/%s/" % namespace if namespace else "/") + plural
            self.inf[plural] = Informer(kube, path, self.stopping, plural, "controllers")
        self.progress = {}  # Deployment uid -> Progress
        self.templates = {}  # (StatefulSet uid, hash) -> template: its ControllerRevisions
        self.written = {}  # uid -> the status last written

    def start(self):
        for i in self.inf.values():
            i.start()

    # ---- API writes (each reply goes into the cache at once) ----
    def _path(self, plural, ns, name=""):
        group = "/api/v1" if plural == "pods" else "/apis/apps/v1"
        return "%s/namespaces/%s/%s%s" % (group, ns, plural, "/" + name if name else "")

    def create(self, plural, ns, body):
        code, obj = self.kube.request("POST", self._path(plural, ns), body)
        if code != 201:
            log("controllers", "creating %s in %s: HTTP %d %s" % (
                plural, ns, code, (obj or {}).get("message")))
            return None
        self.inf[plural].put(obj)
        return obj

    def patch(self, plural, obj, body, sub=""):
        md = obj["metadata"]
        code, new = self.kube.request("PATCH", self._path(plural, md["namespace"], md["name"]) +
                                      sub, body, MERGE)
        if code == 200:
            self.inf[plural].put(new)
            return new
        if code != 404:
            log("controllers", "patching %s/%s%s: HTTP %d" % (plural, md["name"], sub, code))
        return None

    def delete(self, plural, obj):
        md = obj["metadata"]
        code, new = self.kube.request("DELETE", self._path(plural, md["namespace"], md["name"]),
                                      {"preconditions": {"uid": md["uid"]}})
        if code == 200 and (new or {}).get("kind") == KINDS.get(plural, "Pod") and \
                terminating(new):
            self.inf[plural].put(new)
        elif code in (200, 404, 409):
            self.inf[plural].forget(obj)
        else:
            log("controllers", "deleting %s/%s: HTTP %d" % (plural, md["name"], code))

    def write_status(self, plural, obj, st):
        uid = obj["metadata"]["uid"]
        cur = obj.get("status") or {}
        if self.written.get(uid) == st and all(cur.get(k) == v for k, v in st.items()):
            return
        patch = dict(st)
        for k in cur:
            if k not in patch:
                patch[k] = None
        if self.patch(plural, obj, {"status": patch}, "/status") is not None:
            self.written[uid] = st

    # ---- pods ----
    def owned(self, snap, plural, obj):
        uid = obj["metadata"]["uid"]
        return [o for o in snap[plural].values() if owner(o).get("uid") == uid]

    def new_pod(self, owner_obj, kind, template, name=None, labels=()):
        md = owner_obj["metadata"]
        tmd = template.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "labels": dict(tmd.get("labels") or {}, **dict(labels)),
            "ownerReferences": [owner_ref(owner_obj, kind)]},
            "spec": copy.deepcopy(template.get("spec") or {})}
        if tmd.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmd["annotations"])
        if name:
            pod["metadata"]["name"] = name
        else:
            pod["metadata"]["generateName"] = md["name"] + "-"
        if self.node and not pod["spec"].get("nodeName"):
            pin(pod, self.node, self.node_id)
        return self.create("pods", md["namespace"], pod)

    # ---- ReplicaSet ----
    def sync_replicaset(self, snap, rs):
        pods = self.owned(snap, "pods", rs)
        active = [p for p in pods if not terminating(p)]
        want = rs["spec"].get("replicas", 1)
        for _ in range(want - len(active)):
            p = self.new_pod(rs, "ReplicaSet", rs["spec"]["template"])
            if p is not None:
                active.append(p)
        if len(active) > want:
            # Upstream's ranking of the pods to delete: not ready before ready, newest first.
            newest = sorted(active, key=lambda p: p["metadata"].get("creationTimestamp", ""),
                            reverse=True)
            ranked = [p for p in newest if not is_ready(p)] + [p for p in newest if is_ready(p)]
            for p in ranked[:len(active) - want]:
                self.delete("pods", p)
                active.remove(p)
        ready = len([p for p in active if is_ready(p)])
        st = {"replicas": len(active), "fullyLabeledReplicas": len(active),
              "readyReplicas": ready, "availableReplicas": ready,
              "observedGeneration": rs["metadata"].get("generation", 1)}
        for k in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if not st[k]:
                del st[k]  # omitempty, as upstream
        self.write_status("replicasets", rs, st)

    # ---- Deployment ----
    def scale(self, rs, n):
        if rs["spec"].get("replicas", 1) != n:
            return self.patch("replicasets", rs, {"spec": {"replicas": n}}) or rs
        return rs

    def active(self, snap, rs):
        return [p for p in self.owned(snap, "pods", rs) if not terminating(p)]

    def available(self, snap, rs):
        return len([p for p in self.active(snap, rs) if is_ready(p)])

    def sync_deployment(self, snap, d):
        md, spec = d["metadata"], d["spec"]
        replicas = spec.get("replicas", 1)
        tpl = spec["template"]
        rss = [rs for rs in self.owned(snap, "replicasets", d) if not terminating(rs)]
        bare = _bare(tpl)
        new = next((rs for rs in rss if _bare(rs["spec"]["template"]) == bare), None)
        olds = sorted([rs for rs in rss if rs is not new],
                      key=lambda rs: rs["metadata"].get("creationTimestamp", ""))
        max_rev = max([revision(rs) for rs in olds] or [0])
        if new is None and not spec.get("paused"):
            new = self.new_replicaset(d, max_rev + 1)
        elif new is not None and revision(new) <= max_rev:
            # A template back to an earlier one: its ReplicaSet again, with the next revision.
            new = self.patch("replicasets", new, {"metadata": {"annotations": {
                REVISION: str(max_rev + 1)}}}) or new
        if new is not None and (md.get("annotations") or {}).get(REVISION) != \
                str(revision(new)):
            d = self.patch("deployments", d, {"metadata": {"annotations": {
                REVISION: str(revision(new))}}}) or d
        if not spec.get("paused") and new is not None:
            if (spec.get("strategy") or {}).get("type") == "Recreate":
                new = self.recreate(snap, new, olds, replicas)
            else:
                new = self.rolling(snap, new, olds, replicas, spec)
            snap.update(self.snap())
            olds = self.clean_history(snap, olds, spec.get("revisionHistoryLimit", 10))
        self.deployment_status(snap, d, new, olds)

    def clean_history(self, snap, olds, limit):
        """Old ReplicaSets scaled to 0 with no pod left, beyond revisionHistoryLimit, oldest
        revision first, are deleted (upstream cleanupDeployment); the others are returned."""
        dead = sorted([rs for rs in olds if not rs["spec"].get("replicas") and
                       not self.owned(snap, "pods", rs)], key=revision)
        for rs in dead[:max(len(dead) - limit, 0)]:
            self.delete("replicasets", rs)
            olds = [o for o in olds if o is not rs]
        return olds

    def new_replicaset(self, d, rev):
        tpl = copy.deepcopy(d["spec"]["template"])
        h = template_hash(tpl, (d.get("status") or {}).get("collisionCount", 0))
        tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        sel = copy.deepcopy(d["spec"]["selector"])
        sel.setdefault("matchLabels", {})[HASH_LABEL] = h
        replicas = d["spec"].get("replicas", 1)
        surge = 0 if (d["spec"].get("strategy") or {}).get("type") == "Recreate" else \
            rolling_limits(d["spec"], replicas)[0]
        return self.create("replicasets", d["metadata"]["namespace"], {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": "%s-%s" % (d["metadata"]["name"], h), "labels": tpl["metadata"]["labels"],
                "annotations": {REVISION: str(rev),
                                "deployment.kubernetes.io/desired-replicas": str(replicas),
                                "deployment.kubernetes.io/max-replicas": str(replicas + surge)},
                "ownerReferences": [owner_ref(d, "Deployment")]},
            "spec": {"replicas": 0, "selector": sel, "template": tpl}})

    def recreate(self, snap, new, olds, replicas):
        """Every old pod has ended (not only been asked to) before a new one starts."""
        for rs in olds:
            self.sync_replicaset(snap, self.scale(rs, 0))
        snap.update(self.snap())
        if any(self.owned(snap, "pods", rs) for rs in olds):
            return new
        return self.scale(new, replicas)

    def rolling(self, snap, new, olds, replicas, spec):
        """reconcileNewReplicaSet, then reconcileOldReplicaSets (cleanupUnhealthyReplicas and
        scaleDownOldReplicaSetsForRollingUpdate), as the real controller does them."""
        surge, unavailable = rolling_limits(spec, replicas)
        all_rs = [new] + olds
        count = sum(rs["spec"].get("replicas", 1) for rs in all_rs)
        want = new["spec"].get("replicas", 1)
        if want > replicas:
            new = self.scale(new, replicas)
        elif want < replicas and count < replicas + surge:
            new = self.scale(new, want + min(replicas + surge - count, replicas - want))
        self.sync_replicaset(snap, new)  # its pods exist before the old ones are weighed
        snap.update(self.snap())
        all_rs = [new] + olds
        count = sum(rs["spec"].get("replicas", 1) for rs in all_rs)
        min_available = replicas - unavailable
        new_unavailable = new["spec"].get("replicas", 1) - self.available(snap, new)
        budget = count - min_available - new_unavailable
        if budget <= 0:
            return new
        for i, rs in enumerate(olds):  # unhealthy replicas first: they take nothing away
            if budget <= 0:
                break
            n = rs["spec"].get("replicas", 1)
            unhealthy = n - self.available(snap, rs)
            if n and unhealthy > 0:
                down = min(budget, unhealthy)
                olds[i] = self.scale(rs, n - down)
                budget -= down
        down = sum(self.available(snap, rs) for rs in [new] + olds) - min_available
        for i, rs in enumerate(olds):
            if down <= 0:
                break
            n = olds[i]["spec"].get("replicas", 1)
            if n:
                k = min(n, down)
                olds[i] = self.scale(olds[i], n - k)
                down -= k
        for rs in olds:
            self.sync_replicaset(snap, rs)
        return new

    def deployment_status(self, snap, d, new, olds):
        spec, md = d["spec"], d["metadata"]
        replicas = spec.get("replicas", 1)
        all_rs = ([new] if new is not None else []) + olds
        pods = [p for rs in all_rs for p in self.active(snap, rs)]
        updated = self.active(snap, new) if new is not None else []
        ready = [p for p in pods if is_ready(p)]
        st = {"observedGeneration": md.get("generation", 1), "replicas": len(pods),
              "updatedReplicas": len(updated), "readyReplicas": len(ready),
              "availableReplicas": len(ready)}
        unavailable = sum(rs["spec"].get("replicas", 1) for rs in all_rs) - len(ready)
        if unavailable > 0:
            st["unavailableReplicas"] = unavailable
        pr = self.progress.setdefault(md["uid"], Progress())
        counts = (new["metadata"]["name"] if new else None, len(pods), len(updated), len(ready))
        if counts != pr.key:
            pr.key, pr.mono, pr.wall = counts, time.monotonic(), now_rfc3339()
        name = new["metadata"]["name"] if new else md["name"]
        complete = len(updated) == replicas == len(pods) and len(ready) == replicas
        if len(ready) >= replicas - max_unavailable(spec, replicas):
            avail = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail = ("False", "MinimumReplicasUnavailable",
                     "Deployment does not have minimum availability.")
        if spec.get("paused"):
            prog = ("Unknown", "DeploymentPaused", "Deployment is paused")
        elif complete:
            prog = ("True", "NewReplicaSetAvailable",
                    'ReplicaSet "%s" has successfully progressed.' % name)
        elif time.monotonic() - pr.mono > spec.get("progressDeadlineSeconds", 600):
            prog = ("False", "ProgressDeadlineExceeded",
                    'ReplicaSet "%s" has timed out progressing.' % name)
        else:
            prog = ("True", "ReplicaSetUpdated", 'ReplicaSet "%s" is progressing.' % name)
        st["conditions"] = []
        for ctype, (status, reason, msg) in (("Available", avail), ("Progressing", prog)):
            prev = pr.since.get(ctype)
            if prev is None or prev[0] != status:
                prev = pr.since[ctype] = (status, now_rfc3339())
            st["conditions"].append({"type": ctype, "status": status, "lastUpdateTime": pr.wall,
                                     "lastTransitionTime": prev[1], "reason": reason,
                                     "message": msg})
        for k in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
            if st.get(k) == 0:
                del st[k]  # omitempty, as the real controller's status
        self.write_status("deployments", d, st)

    # ---- StatefulSet ----
    def sync_statefulset(self, snap, s):
        md, spec = s["metadata"], s["spec"]
        name, replicas = md["name"], spec.get("replicas", 1)
        h = template_hash(spec["template"])
        rev = "%s-%s" % (name, h)
        self.templates[(md["uid"], h)] = spec["template"]
        cur_rev = (s.get("status") or {}).get("currentRevision") or rev
        cur_h = cur_rev[len(name) + 1:]
        strategy = spec.get("updateStrategy") or {}
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        pods = self.owned(snap, "pods", s)
        going = {p["metadata"]["name"] for p in pods if terminating(p)}
        by_ord = {int(p["metadata"]["name"].rsplit("-", 1)[1]): p for p in pods
                  if not terminating(p)}
        for o in sorted((k for k in by_ord if k >= replicas), reverse=True):
            self.delete("pods", by_ord.pop(o))
            if not parallel:
                break
        blocked = False
        for o in range(replicas):
            pname = "%s-%d" % (name, o)
            if pname in going:
                blocked = not parallel  # a pod's name is free again once it has ended
            elif o not in by_ord:
                use = h if o >= partition or (md["uid"], cur_h) not in self.templates else cur_h
                p = self.new_pod(s, "StatefulSet", self.templates[(md["uid"], use)], pname, {
                    REV_LABEL: "%s-%s" % (name, use),
                    "statefulset.kubernetes.io/pod-name": pname})
                if p is not None:
                    by_ord[o] = p
                blocked = not parallel
            elif not is_ready(by_ord[o]) and not parallel:
                blocked = True  # OrderedReady: the next ordinal waits for this one
            if blocked:
                break
        rolling = strategy.get("type", "RollingUpdate") != "OnDelete"
        active = list(by_ord.values())
        if rolling and not blocked and len(active) == replicas and all(map(is_ready, active)):
            for o in sorted(by_ord, reverse=True):
                if o >= partition and (by_ord[o]["metadata"].get("labels") or {}).get(
                        REV_LABEL) != rev:
                    self.delete("pods", by_ord[o])  # recreated at the update revision later
                    break
        revs = [(p["metadata"].get("labels") or {}).get(REV_LABEL) for p in active]
        ready = len([p for p in active if is_ready(p)])
        if rolling and revs.count(rev) == replicas == len(active) == ready:
            cur_rev = rev
        self.write_status("statefulsets", s, {
            "observedGeneration": md.get("generation", 1), "replicas": len(active),
            "readyReplicas": ready, "availableReplicas": ready,
            "updatedReplicas": revs.count(rev), "currentReplicas": revs.count(cur_rev),
            "currentRevision": cur_rev, "updateRevision": rev, "collisionCount": 0})

    # ---- DaemonSet ----
    def sync_daemonset(self, snap, ds):
        md, spec = ds["metadata"], ds["spec"]
        h = template_hash(spec["template"])
        pods = self.owned(snap, "pods", ds)
        active = [p for p in pods if not terminating(p)]
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if not pods and (self.node or spec["template"].get("spec", {}).get("nodeName")):
            p = self.new_pod(ds, "DaemonSet", spec["template"], labels={
                REV_LABEL: h, "pod-template-generation": str(md.get("generation", 1))})
            active += [p] if p is not None else []
        elif active and strategy == "RollingUpdate" and \
                (active[0]["metadata"].get("labels") or {}).get(REV_LABEL) != h:
            self.delete("pods", active[0])  # maxUnavailable 1, maxSurge 0: delete, then create
            active = []
        ready = len([p for p in active if is_ready(p)])
        st = {"desiredNumberScheduled": 1, "currentNumberScheduled": len(active),
              "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
              "updatedNumberScheduled": len([p for p in active if (
                  p["metadata"].get("labels") or {}).get(REV_LABEL) == h]),
              "observedGeneration": md.get("generation", 1)}
        if ready < 1:
            st["numberUnavailable"] = 1
        for k in ("numberAvailable", "updatedNumberScheduled"):
            if not st[k]:
                del st[k]
        self.write_status("daemonsets", ds, st)

    # ---- the garbage collector, for what this stand-in owns ----
    def collect(self, snap):
        uids = {o["metadata"]["uid"] for plural in ("deployments", "statefulsets",
                                                    "daemonsets", "replicasets")
                for o in snap[plural].values()}
        for plural in ("replicasets", "pods"):
            for o in snap[plural].values():
                ref = owner(o)
                if ref.get("kind") in KINDS.values() and ref.get("uid") not in uids and \
                        not terminating(o):
                    self.delete(plural, o)

    def snap(self):
        return {p: i.snapshot() for p, i in self.inf.items()}

    def step(self):
        if not all(i.synced.is_set() for i in self.inf.values()):
            return
        for plural in ("deployments", "replicasets", "statefulsets", "daemonsets"):
            for key in list(self.inf[plural].snapshot()):
                snap = self.snap()  # every sync sees the writes of the ones before
                obj = snap[plural].get(key)
                if obj is None or terminating(obj):
                    continue
                try:
                    getattr(self, "sync_" + KINDS[plural].lower())(snap, obj)
                except (OSError, ValueError, KeyError) as e:
                    log("controllers", "%s/%s: %s" % (plural, obj["metadata"]["name"], e))
        self.collect(self.snap())

    def run(self):
        self.start()
        while not self.stopping.is_set():
            self.step()
            self.stopping.wait(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    ap.add_argument("--namespace", help="act in this namespace only (default: all)")
    ap.add_argument("--node", help="bind pods whose template names no node to this Node")
    args = ap.parse_args()
    if not args.kubeconfig:
        ap.error("--kubeconfig or $KUBECONFIG is required")
    return serve(args.kubeconfig, lambda kube: Controllers(kube, args.namespace, args.node))

if __name__ == "__main__":
    sys.exit(main())
