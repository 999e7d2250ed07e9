"""test_sim.py - the simulated cluster behaves like the parts of Kubernetes the controller relies
on: rolling restarts pod by pod with real-shaped rollout status, Secrets resolved at pod start,
paused/failed rollouts, and an api that checks keys against Valkey in both layouts.

    cd tests/sim && ../py -m unittest -v test_sim
"""
import base64
import glob
import hashlib
import json
import os
import shutil
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

import cluster
from cluster import NAMESPACE, key_id, new_key
from krtest import wait_for

DEPLOY = "/apis/apps/v1/namespaces/%s/deployments" % NAMESPACE
STS = "/apis/apps/v1/namespaces/%s/statefulsets" % NAMESPACE
DS = "/apis/apps/v1/namespaces/%s/daemonsets" % NAMESPACE
RS = "/apis/apps/v1/namespaces/%s/replicasets" % NAMESPACE
PODS = "/api/v1/namespaces/%s/pods" % NAMESPACE
REVISION = "deployment.kubernetes.io/revision"
MERGE = "application/merge-patch+json"


def ping(url, key=None):
    headers = {"Connection": "close"}
    if key is not None:
        headers["X-API-Key"] = key
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "/api/v1/ping",
                                                           headers=headers), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:  # no ready endpoint behind the Service yet
        return None


class SimCase(unittest.TestCase):
    store_as, seed_key, prometheus = "sha256", True, False

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="kr-sim-")
        cls.c = cluster.Cluster(cls.root, store_as=cls.store_as, seed_key=cls.seed_key,
                                prometheus=cls.prometheus)
        cls.c.__enter__()
        cls.keys = [cls.c.bootstrap_key] if cls.seed_key else []

    @classmethod
    def tearDownClass(cls):
        cls.c.down()
        shutil.rmtree(cls.root, ignore_errors=True)

    # ---- helpers ----
    def get(self, path):
        code, obj = self.c.api("GET", path)
        self.assertEqual(code, 200, path)
        return obj

    def patch(self, path, body):
        code, obj = self.c.api("PATCH", path, body, MERGE)
        self.assertEqual(code, 200, "%s: %s" % (path, obj))
        return obj

    def complete(self, name, base=DEPLOY):
        d = self.get(base + "/" + name)
        st, want = d.get("status") or {}, d["spec"].get("replicas", 1)
        if st.get("observedGeneration", 0) < d["metadata"]["generation"]:
            return None
        if base == STS:
            ok = st.get("updateRevision") == st.get("currentRevision") and \
                st.get("readyReplicas", 0) == want == st.get("updatedReplicas")
        else:
            ok = st.get("updatedReplicas", 0) == st.get("availableReplicas", 0) == \
                st.get("replicas", 0) == want
        return d if ok else None

    def wait_complete(self, name, base=DEPLOY, timeout=20):
        return wait_for(lambda: self.complete(name, base), timeout, "rollout of " + name)

    def events(self, **match):
        with open(os.path.join(self.c.state_dir, "events.jsonl")) as f:
            evs = [json.loads(line) for line in f]
        return [e for e in evs if all(e.get(k) == v for k, v in match.items())]

    def condition(self, name, ctype):
        st = self.get(DEPLOY + "/" + name).get("status") or {}
        return next((c for c in st.get("conditions") or [] if c["type"] == ctype), {})

    def pods(self, app):
        return self.get(PODS + "?labelSelector=app%3D" + app)["items"]

    def replicasets(self, app):
        """The ReplicaSets of Deployment `app`, by name."""
        d = self.get(DEPLOY + "/" + app)
        return {rs["metadata"]["name"]: rs for rs in self.get(RS)["items"]
                if rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]}

    def new_active_key(self):
        key = new_key()
        self.keys.append(key)
        self.c.seed(key, label="test")
        return key

    def client_deployment(self, name, replicas=1, **spec):
        self.c.create_deployment(name, "sim/client", [
            {"name": "API_URL", "value": self.c.api_url}, {"name": "NAME", "value": name},
            {"name": "RATE", "value": "5"}], replicas=replicas, **spec)
        return self.wait_complete(name)


class TestSha256Layout(SimCase):
    prometheus = True

    def test_api_rejects_unknown_key_and_accepts_active(self):
        url = self.c.api_url
        wait_for(lambda: ping(url, self.c.bootstrap_key) == 200, 10, "the api Service")
        self.assertEqual(ping(url), 401)
        self.assertEqual(ping(url, "sk_unknown"), 401)
        self.assertEqual(ping(url, self.c.bootstrap_key), 200)
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            self.assertEqual(r.status, 200)
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        self.assertIn('http_requests_total{code="401"}', text)
        # A revoked key (member removed, meta status revoked) is refused again.
        key = self.new_active_key()
        self.assertEqual(ping(url, key), 200)
        member = hashlib.sha256(key.encode()).hexdigest()
        v = self.c.valkey()
        v.command("SREM", "api_keys:active", member)
        v.hset("api_key:%s:meta" % member, "status", "revoked")
        v.close()
        self.assertEqual(ping(url, key), 401)

    def test_last_used_at_written_at_most_once_a_minute(self):
        key = self.new_active_key()
        meta = "api_key:%s:meta" % hashlib.sha256(key.encode()).hexdigest()
        # Each api pod sees the key (directly: the Service's round robin is shared with every
        # other client of it).
        with open(os.path.join(self.c.state_dir, "endpoints", "sirius-api.json")) as f:
            pods = json.load(f)[0]["targets"]
        self.assertEqual(len(pods), 2)
        for target in pods:
            self.assertEqual(ping("http://" + target, key), 200)
        v = self.c.valkey()
        self.assertRegex(v.hget(meta, "last_used_at") or "", r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        v.command("HDEL", meta, "last_used_at")
        for _ in range(6):
            self.assertEqual(ping(self.c.api_url, key), 200)
        self.assertIsNone(v.hget(meta, "last_used_at"), "written again within a minute")
        v.close()

    def test_pods_replicasets_and_the_node_through_the_api(self):
        """The kubelet stand-in's Node is Ready (Lease renewed, taint only the suite's pods
        tolerate); the Deployment's pods are Pod objects on it, owned by its ReplicaSet
        <name>-<pod-template-hash>, reported Running and Ready."""
        self.wait_complete("sirius-api")
        node = self.get("/api/v1/nodes/" + self.c.node)
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        self.assertEqual(ready[0]["status"], "True")
        self.assertEqual(node["spec"]["taints"], [{"key": "keyrotator.io/e2e",
                                                   "value": self.c.node_id,
                                                   "effect": "NoSchedule"}])
        lease = self.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" +
                         self.c.node)
        self.assertEqual(lease["spec"]["holderIdentity"], self.c.node)
        [rs] = self.replicasets("sirius-api").values()
        h = rs["metadata"]["labels"]["pod-template-hash"]
        self.assertEqual(rs["metadata"]["name"], "sirius-api-" + h)
        self.assertEqual((rs["spec"]["replicas"], rs["status"]["readyReplicas"]), (2, 2))
        self.assertEqual(rs["metadata"]["annotations"][REVISION], "1")
        self.assertEqual(self.get(DEPLOY + "/sirius-api")["metadata"]["annotations"][REVISION],
                         "1")
        pods = wait_for(lambda: [p for p in self.pods("sirius-api")
                                 if "deletionTimestamp" not in p["metadata"]], 10, "api pods")
        self.assertEqual(len(pods), 2)
        for p in pods:
            self.assertEqual(p["spec"]["nodeName"], self.c.node)
            self.assertIn(self.c.node_id, [t.get("value") for t in p["spec"]["tolerations"]])
            ref = p["metadata"]["ownerReferences"][0]
            self.assertEqual((ref["kind"], ref["name"], ref["controller"]),
                             ("ReplicaSet", rs["metadata"]["name"], True))
            self.assertEqual(p["metadata"]["labels"]["pod-template-hash"], h)
            self.assertEqual(p["status"]["phase"], "Running")
            conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
            self.assertEqual((conds["Ready"], conds["ContainersReady"]), ("True", "True"))
            self.assertTrue(p["status"]["containerStatuses"][0]["ready"])
        starts = {e["pod"] for e in self.events(workload="sirius-api", event="start", hash=h)}
        self.assertTrue({p["metadata"]["name"] for p in pods} <= starts)

    def test_daemonset_runs_one_pod_on_the_node(self):
        name = "sim-ds"
        labels = {"app": name}
        self.c.api_ok("POST", DS, {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "terminationGracePeriodSeconds": 1, "containers": [{
                             "name": "c", "image": "sim/client",
                             "env": [{"name": "API_URL", "value": self.c.api_url}]}]}}}})
        self.addCleanup(self.c.api, "DELETE", DS + "/" + name)

        def ready(kid):
            st = self.get(DS + "/" + name).get("status") or {}
            pods = [p for p in self.pods(name) if "deletionTimestamp" not in p["metadata"]]
            return st.get("numberReady") == 1 and st.get("updatedNumberScheduled") == 1 and \
                len(pods) == 1 and (pods[0]["metadata"].get("annotations") or {}).get(
                    "keyrotator.io/key-id") == kid and pods[0]
        pod = wait_for(lambda: ready(None), 20, "the DaemonSet's pod")
        self.assertEqual(pod["spec"]["nodeName"], self.c.node)
        self.assertEqual(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet")
        self.patch(DS + "/" + name, {"spec": {"template": {"metadata": {"annotations": {
            "keyrotator.io/key-id": "d5" * 6}}}}})
        new = wait_for(lambda: ready("d5" * 6), 20, "the DaemonSet's new pod")
        self.assertNotEqual(new["metadata"]["name"], pod["metadata"]["name"])
        [stop] = self.events(pod=pod["metadata"]["name"], event="stop")
        [start] = self.events(pod=new["metadata"]["name"], event="start")
        self.assertLess(stop["mono"], start["mono"], "maxSurge 0: the old pod ends first")

    def test_kubelet_runs_only_pods_tolerating_its_taint(self):
        """A pod bound to the stand-in's Node without the toleration of its taint (a real
        cluster's DaemonSet that tolerates everything) is left alone; the suite's is run, and
        deleting it gracefully ends it, then the stand-in deletes it with grace 0."""
        env = [{"name": "API_URL", "value": self.c.api_url}, {"name": "NAME", "value": "bare"}]
        for name, tol in (("sim-foreign", [{"operator": "Exists"}]),
                          ("sim-bare", [{"key": "keyrotator.io/e2e", "operator": "Exists",
                                         "effect": "NoSchedule"}])):
            self.c.api_ok("POST", PODS, {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
                    "nodeName": self.c.node, "tolerations": tol,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": "sim/client", "env": env}]}})
        wait_for(lambda: self.events(pod="sim-bare", event="ready"), 10, "the suite's pod")
        self.assertEqual(self.events(pod="sim-bare", event="start")[0]["kind"], "Pod")
        wait_for(lambda: self.get(PODS + "/sim-bare")["status"]["phase"] == "Running", 10,
                 "its status")
        p0 = self.passes()
        wait_for(lambda: self.passes() >= p0 + 20, 10, "20 simulator passes")
        self.assertEqual(self.events(pod="sim-foreign"), [], "a foreign pod was run")
        self.assertEqual(self.get(PODS + "/sim-foreign")["status"]["phase"], "Pending")
        self.c.api_ok("DELETE", PODS + "/sim-foreign?gracePeriodSeconds=0")
        self.c.api_ok("DELETE", PODS + "/sim-bare")
        wait_for(lambda: self.c.api("GET", PODS + "/sim-bare")[0] == 404, 10,
                 "the ended pod deleted with grace 0")
        self.assertTrue(self.events(pod="sim-bare", event="stop"))

    def test_revision_history_limit_deletes_old_replicasets(self):
        name = "sim-history"
        self.key_client(name, 1, grace=1, revisionHistoryLimit=1)
        for i in range(3):
            self.roll(name, "%02d" % i * 6)
        wait_for(lambda: len(self.replicasets(name)) == 2, 10,
                 "the ReplicaSets beyond revisionHistoryLimit 1 to go")
        revs = sorted(int(rs["metadata"]["annotations"][REVISION])
                      for rs in self.replicasets(name).values())
        self.assertEqual(revs, [3, 4])

    def test_rollout_replaces_pods_one_by_one(self):
        name = "sirius-api"
        before = self.wait_complete(name)
        old_pods = {e["pod"] for e in self.events(workload=name, event="start")}
        d = self.patch(DEPLOY + "/" + name, {"spec": {"template": {"metadata": {
            "annotations": {"keyrotator.io/key-id": "aaaaaaaaaaaa"}}}}})
        self.assertGreater(d["metadata"]["generation"], before["metadata"]["generation"])
        seen = set()

        def done():
            reason = self.condition(name, "Progressing").get("reason")
            seen.add(reason)
            return self.complete(name)
        d = wait_for(done, 20, "rollout of sirius-api")
        self.assertIn("ReplicaSetUpdated", seen, "no intermediate status was observed")
        self.assertEqual(self.condition(name, "Progressing")["reason"], "NewReplicaSetAvailable")
        self.assertEqual(d["status"]["observedGeneration"], d["metadata"]["generation"])
        # Order (maxSurge 1, maxUnavailable 0 for 2 replicas): start new, new ready, terminate
        # an old one (not ready from then on; its process ends later), start the next new one;
        # never fewer than 2 ready pods, never more than 3 that are not terminating.
        wait_for(lambda: len([e for e in self.events(workload=name, event="stop")
                              if e["pod"] in old_pods]) == 2, 10, "the old pods' processes to end")
        evs = [e for e in self.events(workload=name) if e["mono"] >= 0]
        ready, live, n_new_starts, min_ready, started_new = set(), set(), 0, 99, False
        for e in evs:
            if e["event"] == "ready":
                ready.add(e["pod"])
            elif e["event"] == "terminate":
                ready.discard(e["pod"])
                live.discard(e["pod"])
                if e["pod"] in old_pods:
                    min_ready = min(min_ready, len(ready))
            elif e["event"] == "start":
                live.add(e["pod"])
                if e["keyIdAnnotation"] == "aaaaaaaaaaaa":
                    n_new_starts += 1
                    started_new = True
                    self.assertLessEqual(len(live), 3, "more than replicas+1 pods")
        self.assertTrue(started_new)
        self.assertEqual(n_new_starts, 2)
        self.assertGreaterEqual(min_ready, 2, "an old pod stopped before its replacement was ready")
        terms = [e for e in evs if e["event"] == "terminate" and e["pod"] in old_pods]
        stops = [e for e in evs if e["event"] == "stop" and e["pod"] in old_pods]
        starts = [e for e in evs if e["event"] == "start" and e["pod"] not in old_pods]
        self.assertEqual((len(terms), len(stops)), (2, 2))
        self.assertLess(starts[0]["mono"], terms[0]["mono"])
        self.assertLessEqual(terms[0]["mono"], starts[1]["mono"], "second new pod before first swap")
        for t in terms:
            stop = next(e for e in stops if e["pod"] == t["pod"])
            self.assertLessEqual(t["mono"], stop["mono"], "stopped before it was terminated")

    def test_secret_change_and_restart_gives_clients_the_new_key(self):
        key = self.new_active_key()
        self.c.put_secret_key(key)
        self.patch(DEPLOY + "/sirius-ui", {"spec": {"template": {"metadata": {
            "annotations": {"keyrotator.io/key-id": key_id(key)}}}}})
        self.wait_complete("sirius-ui")
        starts = self.events(workload="sirius-ui", event="start", keyIdAnnotation=key_id(key))
        self.assertEqual(len(starts), 2)
        for s in starts:
            self.assertEqual(s["keyIds"], {"API_KEY": key_id(key)})
            path = os.path.join(self.c.state_dir, "pods", s["pod"], "counters.json")

            def counted():
                with open(path) as f:
                    c = json.load(f)
                return c if c["ok"] >= 3 else None
            c = wait_for(counted, 10, "requests from " + s["pod"])
            self.assertEqual(c["keyId"], key_id(key))
            self.assertEqual(c["unauthorized"], 0)

    def test_fail_rollout_reports_progress_deadline_exceeded(self):
        name = "sim-fail"
        d = self.client_deployment(name, progressDeadlineSeconds=2)
        template = d["spec"]["template"]
        self.patch(DEPLOY + "/" + name, {
            "metadata": {"annotations": {"keyrotator-sim/fail-rollout": "true"}},
            "spec": {"template": {"metadata": {"annotations": {"keyrotator.io/key-id": "b" * 12}}}}})
        wait_for(lambda: self.condition(name, "Progressing").get("reason") ==
                 "ProgressDeadlineExceeded", 15, "ProgressDeadlineExceeded")
        cond = self.condition(name, "Progressing")
        self.assertEqual(cond["status"], "False")
        self.assertIn("has timed out progressing", cond["message"])
        st = self.get(DEPLOY + "/" + name)["status"]
        self.assertEqual(st["availableReplicas"], 1, "the old pod must keep serving")
        self.assertTrue(self.events(workload=name, event="crash"))
        # Rolling back to the old template completes without restarting the old pod.
        n_starts = len(self.events(workload=name, event="start"))
        code, _ = self.c.api("PATCH", DEPLOY + "/" + name, [
            {"op": "replace", "path": "/spec/template", "value": template}],
            "application/json-patch+json")
        self.assertEqual(code, 200)
        self.wait_complete(name)
        self.assertEqual(len(self.events(workload=name, event="start")), n_starts)

    def test_fail_rollout_for_one_key_id_only(self):
        # Annotation value = a key id: pods of other templates run, that one crashes.
        name = "sim-fail-kid"
        self.client_deployment(name, progressDeadlineSeconds=2)
        self.patch(DEPLOY + "/" + name, {
            "metadata": {"annotations": {"keyrotator-sim/fail-rollout": "e" * 12}},
            "spec": {"template": {"metadata": {"annotations": {"keyrotator.io/key-id": "f" * 12}}}}})
        self.wait_complete(name)
        self.patch(DEPLOY + "/" + name, {"spec": {"template": {"metadata": {
            "annotations": {"keyrotator.io/key-id": "e" * 12}}}}})
        wait_for(lambda: self.condition(name, "Progressing").get("reason") ==
                 "ProgressDeadlineExceeded", 15, "ProgressDeadlineExceeded")
        crashes = self.events(workload=name, event="crash")
        self.assertTrue(crashes)
        self.assertEqual({c["keyIdAnnotation"] for c in crashes}, {"e" * 12})

    def test_paused_deployment_does_not_roll(self):
        name = "sim-paused"
        self.client_deployment(name)
        d = self.patch(DEPLOY + "/" + name, {"spec": {"paused": True, "template": {"metadata": {
            "annotations": {"keyrotator.io/key-id": "c" * 12}}}}})
        gen = d["metadata"]["generation"]
        wait_for(lambda: self.get(DEPLOY + "/" + name)["status"].get("observedGeneration") == gen
                 and self.condition(name, "Progressing").get("reason") == "DeploymentPaused",
                 10, "the paused status")
        # It stays paused: 20 more simulator passes start nothing.
        start_events = len(self.events(workload=name, event="start"))
        p0 = self.passes()
        wait_for(lambda: self.passes() >= p0 + 20, 10, "20 simulator passes")
        self.assertEqual(len(self.events(workload=name, event="start")), start_events)
        self.assertIsNone(self.complete(name))
        self.patch(DEPLOY + "/" + name, {"spec": {"paused": False}})
        self.wait_complete(name)
        self.assertEqual(len(self.events(workload=name, event="start", keyIdAnnotation="c" * 12)), 1)

    def key_client(self, name, replicas, grace, drain="0", **spec):
        """A client Deployment calling with an active key, `grace` s to terminate, draining
        for `drain` s after SIGTERM."""
        key = self.new_active_key()
        env = [{"name": "API_URL", "value": self.c.api_url}, {"name": "NAME", "value": name},
               {"name": "RATE", "value": "10"}, {"name": "API_KEY", "value": key},
               {"name": "DRAIN_SECONDS", "value": drain}]
        labels = {"app": name}
        code, obj = self.c.api("POST", DEPLOY, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": dict({"replicas": replicas, "selector": {"matchLabels": labels},
                          "template": {"metadata": {"labels": labels}, "spec": {
                              "terminationGracePeriodSeconds": grace,
                              "containers": [{"name": "c", "image": "sim/client",
                                              "env": env}]}}}, **spec)})
        self.assertEqual(code, 201, obj)
        self.addCleanup(self.c.api, "DELETE", DEPLOY + "/" + name)
        self.wait_complete(name)
        return key

    def roll(self, name, value):
        self.patch(DEPLOY + "/" + name, {"spec": {"template": {"metadata": {"annotations": {
            "keyrotator.io/key-id": value}}}}})
        return self.wait_complete(name)

    def counters(self, pod):
        with open(os.path.join(self.c.state_dir, "pods", pod, "counters.json")) as f:
            return json.load(f)

    def test_terminating_pod_runs_out_its_grace_period_with_its_key(self):
        """A pod being replaced gets SIGTERM and keeps running (and calling with the key it
        started with) until it exits or its grace period ends (then SIGKILL); meanwhile the
        Deployment's status counts it nowhere, and the rollout goes on."""
        name = "sim-grace"
        self.key_client(name, 1, grace=4, drain="60")  # drains longer than it may: killed
        [old] = {e["pod"] for e in self.events(workload=name, event="start")} - \
            {e["pod"] for e in self.events(workload=name, event="terminate")}
        d = self.roll(name, "e" * 12)
        self.assertEqual((d["status"]["replicas"], d["status"]["updatedReplicas"]), (1, 1),
                         "a terminating pod is counted in status")
        [term] = self.events(pod=old, event="terminate")
        self.assertEqual(term["grace"], 4)
        self.assertFalse(self.events(pod=old, event="stop"), "ended before its grace period")
        with open(os.path.join(self.c.state_dir, "pods", old, "pid")) as f:
            os.kill(int(f.read()), 0)  # still running
        code, pod = self.c.api("GET", PODS + "/" + old)
        self.assertEqual(code, 200, "the Pod object went before its process ended")
        self.assertEqual(pod["metadata"]["deletionGracePeriodSeconds"], 4)
        n = self.counters(old)["okTerminating"]
        wait_for(lambda: self.counters(old)["okTerminating"] > n, 5,
                 "calls with its key while terminating")
        stop = wait_for(lambda: self.events(pod=old, event="stop"), 10, "the SIGKILL")[0]
        self.assertTrue(stop.get("killed"), stop)
        self.assertGreaterEqual(stop["mono"] - term["mono"], 4 - 0.1)
        self.assertLess(stop["mono"] - term["mono"], 4 + 2)
        self.assertEqual(self.counters(old)["unauthorizedTerminating"], 0)
        wait_for(lambda: self.c.api("GET", PODS + "/" + old)[0] == 404, 10,
                 "the stand-in to delete the ended pod with grace 0")

    def test_max_surge_and_max_unavailable_bound_the_rollout(self):
        """replicas 4, maxSurge 2, maxUnavailable 1: never more than 6 pods that are not
        terminating, never fewer than 3 ready, and both limits are used."""
        name = "sim-surge"
        self.key_client(name, 4, grace=5, strategy={
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}})
        t0 = max(e["mono"] for e in self.events(workload=name))
        old = {e["pod"] for e in self.events(workload=name, event="start")} - \
            {e["pod"] for e in self.events(workload=name, event="terminate")}
        self.assertEqual(len(old), 4)
        self.roll(name, "f" * 12)
        wait_for(lambda: old <= {e["pod"] for e in self.events(workload=name, event="stop")},
                 15, "the old pods to end")
        live, ready, max_live, min_ready = set(), set(), 0, 99
        for e in self.events(workload=name):
            if e["event"] == "start":
                live.add(e["pod"])
            elif e["event"] == "ready":
                ready.add(e["pod"])
            elif e["event"] == "terminate":
                live.discard(e["pod"])
                ready.discard(e["pod"])
            if e["mono"] > t0:
                max_live, min_ready = max(max_live, len(live)), min(min_ready, len(ready))
        self.assertEqual((max_live, min_ready), (6, 3))

    def test_recreate_starts_new_pods_once_the_old_ones_ended(self):
        name = "sim-recreate"
        self.key_client(name, 2, grace=3, drain="1", strategy={"type": "Recreate"})
        old = {e["pod"] for e in self.events(workload=name, event="start")} - \
            {e["pod"] for e in self.events(workload=name, event="terminate")}
        self.assertEqual(len(old), 2)
        n0 = len(self.events(workload=name, event="start"))
        self.roll(name, "a1" * 6)
        last_stop = max(e["mono"] for e in self.events(workload=name, event="stop")
                        if e["pod"] in old)
        new = self.events(workload=name, event="start")[n0:]
        self.assertEqual(len(new), 2)
        self.assertLess(last_stop, min(e["mono"] for e in new),
                        "a new pod started while an old one ran")

    def test_template_back_to_an_earlier_one_reuses_its_hash(self):
        """Back to an earlier template is back to its pod-template-hash (its ReplicaSet)."""
        name = "sim-back"
        self.key_client(name, 1, grace=2)

        def starts():
            return self.events(workload=name, event="start")
        live = {e["pod"] for e in starts()} - \
            {e["pod"] for e in self.events(workload=name, event="terminate")}
        first = {e["hash"] for e in starts() if e["pod"] in live}
        n0 = len(starts())
        d = self.roll(name, "b2" * 6)
        n1 = len(starts())
        second = {e["hash"] for e in starts()[n0:n1]}
        self.patch(DEPLOY + "/" + name, {"spec": {"template": {"metadata": {"annotations": {
            "keyrotator.io/key-id": None}}}}})
        wait_for(lambda: self.get(DEPLOY + "/" + name)["metadata"]["generation"] >
                 d["metadata"]["generation"] and self.complete(name), 20, "the rollback")
        back = {e["hash"] for e in starts()[n1:]}
        self.assertEqual(len(first), 1)
        self.assertEqual(len(second), 1)
        self.assertNotEqual(second, first)
        self.assertEqual(back, first, "a new hash for a template seen before")
        # The earlier ReplicaSet itself is scaled back up, with the next revision.
        rss = self.replicasets(name)
        self.assertEqual(len(rss), 2, list(rss))
        earlier = rss["%s-%s" % (name, first.pop())]
        self.assertEqual(earlier["spec"]["replicas"], 1)
        self.assertEqual(rss["%s-%s" % (name, second.pop())]["spec"]["replicas"], 0)
        self.assertEqual(earlier["metadata"]["annotations"][REVISION], "3")
        self.assertEqual(self.get(DEPLOY + "/" + name)["metadata"]["annotations"][REVISION],
                         "3")

    def test_env_from_a_secret_resolved_at_container_start(self):
        """envFrom secretRef, as kubelet: every key of the Secret becomes a variable (with
        the prefix) when the container starts; a missing Secret keeps the pod pending; env
        wins over envFrom; a restart reads the Secret again."""
        name, secret = "sim-envfrom", "sim-envfrom-keys"
        labels = {"app": name}
        code, obj = self.c.api("POST", DEPLOY, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "c", "image": "sim/client",
                         "envFrom": [{"secretRef": {"name": secret}},
                                     {"prefix": "X_", "secretRef": {"name": secret}}],
                         "env": [{"name": "API_URL", "value": self.c.api_url},
                                 {"name": "NAME", "value": name},
                                 {"name": "RATE", "value": "5"}]}]}}}})
        self.assertEqual(code, 201, obj)
        self.addCleanup(self.c.api, "DELETE", DEPLOY + "/" + name)
        evs = wait_for(lambda: self.events(workload=name, event="pending"), 10, "a pending pod")
        self.assertIn('secret "%s" not found' % secret, evs[0]["reason"])
        key = self.new_active_key()
        self.c.api_ok("POST", "/api/v1/namespaces/%s/secrets" % NAMESPACE, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
            "stringData": {"API_KEY": key, "NAME": "from-the-secret"}})
        self.wait_complete(name)
        [start] = self.events(workload=name, event="start")
        self.assertEqual(start["keyIds"], {"API_KEY": key_id(key), "X_API_KEY": key_id(key),
                                           "NAME": key_id("from-the-secret"),
                                           "X_NAME": key_id("from-the-secret")})
        pod = start["pod"]
        wait_for(lambda: self.counters(pod)["ok"] >= 3, 10, "calls with the envFrom key")
        self.assertEqual(self.counters(pod)["name"], name, "env does not win over envFrom")
        self.assertEqual(self.counters(pod)["unauthorized"], 0)

    def passes(self):
        with open(os.path.join(self.c.state_dir, "passes.json")) as f:
            return json.load(f)["passes"]

    def test_statefulset_rolls_from_the_highest_ordinal(self):
        name = "sim-sts"
        labels = {"app": name}
        code, _ = self.c.api("POST", STS, {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": 2, "serviceName": name, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "c", "image": "sim/client",
                         "env": [{"name": "API_URL", "value": self.c.api_url}]}]}}}})
        self.assertEqual(code, 201)
        first = self.wait_complete(name, STS)["status"]["currentRevision"]
        self.patch(STS + "/" + name, {"spec": {"template": {"metadata": {"annotations": {
            "keyrotator.io/key-id": "d" * 12}}}}})
        st = self.wait_complete(name, STS)["status"]
        self.assertNotEqual(st["updateRevision"], first)
        starts = self.events(workload=name, event="start", keyIdAnnotation="d" * 12)
        # A container restarted in place (crash back-off under load) starts the same pod
        # again; the property is the order in which pods are replaced.
        order = [s["pod"] for s in starts]
        order = [p for i, p in enumerate(order) if i == 0 or order[i - 1] != p]
        self.assertEqual(order, [name + "-1", name + "-0"])

    def test_prometheus_scrapes_the_api_pods(self):
        q = urllib.parse.quote('sum(http_requests_total{job="sirius-api",code="200"})')

        def value():
            with urllib.request.urlopen("%s/api/v1/query?query=%s" % (self.c.prometheus_url, q),
                                        timeout=5) as r:
                res = json.load(r)["data"]["result"]
            return res and float(res[0]["value"][1]) > 0
        wait_for(value, 20, "prometheus to scrape the api pods")

    def test_zz_no_raw_key_in_any_file(self):
        needles = []
        for k in self.keys:
            needles += [k.encode(), base64.b64encode(k.encode())]
        for path in glob.glob(os.path.join(self.root, "**"), recursive=True):
            if os.path.isfile(path) and "prometheus-data" not in path:
                with open(path, "rb") as f:
                    data = f.read()
                for n in needles:
                    self.assertNotIn(n, data, "a raw key in " + path)


class TestPlaintextLayoutBootstrap(SimCase):
    """Plaintext layout, and a cluster that starts without the Secret (bootstrap)."""
    store_as, seed_key = "plaintext", False

    def test_clients_wait_for_the_secret_then_use_the_key(self):
        evs = wait_for(lambda: self.events(workload="sirius-ui", event="pending"), 10,
                       "pending ui pods")
        self.assertIn("not found", evs[0]["reason"])
        self.assertIsNone(self.complete("sirius-ui"))
        key = self.new_active_key()
        v = self.c.valkey()
        self.assertTrue(v.sismember("api_keys:active", key), "plaintext: the member is the key")
        v.close()
        wait_for(lambda: ping(self.c.api_url, key) == 200, 10, "the api Service")
        self.assertEqual(ping(self.c.api_url, key + "x"), 401)
        self.c.put_secret_key(key)
        self.wait_complete("sirius-ui")
        self.wait_complete("sirius-engine")
        for s in self.events(workload="sirius-engine", event="start"):
            self.assertEqual(s["keyIds"], {"API_KEY": key_id(key)})


if __name__ == "__main__":
    unittest.main()
