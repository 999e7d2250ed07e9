"""test_plugin.py - the kubectl plugin (`kubectl keyrotation ...`) against the local API server.

The binary is installed as `kubectl-keyrotation` (a symlink, as the README says) and run as
kubectl runs a plugin. Checks: rotate/emergency set the annotations (read back through the
API), status and history render a KeyRotation whose status was PUT through /status with
realistic content, plan via the API equals `keyrotator plan -f`, NotFound exits 1 as
kubectl prints it, and the namespace and kubeconfig are chosen as kubectl chooses them.
Environment: KR_BINARY (keyrotator), KR_YAML2JSON (tests/tools/yaml2json).
"""
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import kubeapi_testlib as kt

BINARY = os.path.abspath(os.environ.get("KR_BINARY", "keyrotator"))
YAML2JSON = os.environ.get("KR_YAML2JSON", "yaml2json")
CRDS = sorted(glob.glob(os.path.join(REPO, "crds", "*.yaml")))
EXAMPLES = os.path.join(REPO, "manifests", "examples")
SIRIUS = os.path.join(EXAMPLES, "sirius-keyrotation.yaml")
HYPERCODE = os.path.join(EXAMPLES, "hypercode-keyrotation.yaml")
KR_PATH = "/apis/keyrotator.io/v1alpha1/namespaces/{ns}/keyrotations"
PATHS = {"KeyRotation": KR_PATH,
         "KeyStore": "/apis/keyrotator.io/v1alpha1/namespaces/{ns}/keystores"}

OLD_ID, NEW_ID, FIRST_ID, FAILED_ID = "3f9a0c1d2e4b", "7c1e22aa9b01", "a1b2c3d4e5f6", "0d0e0f101112"

# A rotation in flight: stage api done on the new key, ui rolling out, engine still old.
ROTATING_STATUS = {
    "observedGeneration": 1,
    "phase": "Rotating",
    "currentKey": {"id": OLD_ID, "createdAt": "2026-01-01T03:00:04Z", "label": "2026-q1"},
    "pendingKey": {"id": NEW_ID, "createdAt": "2026-04-01T03:00:02Z"},
    "rotation": {"trigger": "Schedule", "startedAt": "2026-04-01T03:00:00Z", "step": "RollOut",
                 "stage": "ui", "stageIndex": 1, "stageStartedAt": "2026-04-01T03:02:10Z",
                 "baseline": "0.01", "consecutiveFailures": 0, "consecutiveErrors": 1},
    "lastRotationTime": "2026-01-01T03:12:40Z",
    "nextRotationTime": "2026-07-01T03:00:00Z",
    "lastHandledRequest": "2025-12-01T10:00:00Z",
    "unauthorizedRate": "0.02",
    "stages": [
        {"name": "api", "state": "Done", "workloads": [
            {"kind": "Deployment", "name": "sirius-api", "keyId": NEW_ID, "ready": "3/3"}]},
        {"name": "ui", "state": "RollingOut", "workloads": [
            {"kind": "Deployment", "name": "sirius-ui", "keyId": NEW_ID, "ready": "1/2",
             "message": "Deployment/sirius-ui: 1 of 2 updated replicas are available"}]},
        {"name": "engine", "state": "Pending", "workloads": [
            {"kind": "Deployment", "name": "sirius-engine", "keyId": OLD_ID, "ready": "2/2"},
            {"kind": "StatefulSet", "name": "sirius-scanner", "keyId": OLD_ID, "ready": "1/1"}]},
    ],
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "KeyValid", "observedGeneration": 1,
         "lastTransitionTime": "2025-10-01T03:20:00Z",
         "message": "key 3f9a0c1d2e4b is active and every consumer runs it"},
        {"type": "Rotating", "status": "True", "reason": "RollingOut", "observedGeneration": 1,
         "lastTransitionTime": "2026-04-01T03:00:00Z",
         "message": "stage ui (2 of 3): waiting for Deployment/sirius-ui"},
        {"type": "Degraded", "status": "False", "reason": "AsExpected", "observedGeneration": 1,
         "lastTransitionTime": "2026-04-01T03:05:00Z",
         "message": "the last 401 query was inconclusive: prometheus timed out"},
        {"type": "KeyStoreInSync", "status": "True", "reason": "InSync", "observedGeneration": 1,
         "lastTransitionTime": "2025-10-01T03:20:00Z",
         "message": "2 keys active in api_keys:active"},
    ],
    "history": [
        {"keyId": FIRST_ID, "trigger": "Bootstrap", "activatedAt": "2025-10-01T03:00:00Z",
         "revokedAt": "2026-01-01T03:12:00Z", "outcome": "Succeeded"},
        {"keyId": FAILED_ID, "trigger": "Manual", "activatedAt": "2025-12-01T10:00:30Z",
         "revokedAt": "2025-12-01T10:09:00Z", "outcome": "RolledBack",
         "reason": "stage api: 401 rate 2.3/s above baseline 0.01/s + 0.5/s twice in a row"},
        {"keyId": OLD_ID, "trigger": "Schedule", "activatedAt": "2026-01-01T03:00:04Z",
         "outcome": "Succeeded"},
    ],
}


def load_yaml(path):
    """Documents of a YAML file, through the product's own YAML parser."""
    out = subprocess.run([YAML2JSON, path], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def kubeconfig_text(url, token, namespace=None, extra_context=None):
    """A kubeconfig with context `local` (current) and, optionally, a second context."""
    ctx = "- name: local\n  context:\n    cluster: local\n    user: u\n"
    if namespace:
        ctx += f"    namespace: {namespace}\n"
    clusters = f"- name: local\n  cluster:\n    server: {url}\n"
    if extra_context:
        name, server, ns = extra_context
        ctx += f"- name: {name}\n  context:\n    cluster: {name}\n    user: u\n" \
               f"    namespace: {ns}\n"
        clusters += f"- name: {name}\n  cluster:\n    server: {server}\n"
    return (f"apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{ctx}"
            f"current-context: local\nusers:\n- name: u\n  user:\n    token: {token}\n")


class PluginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = kt.Server(extra=[a for f in CRDS for a in ("--crd", f)] +
                               ["--namespace", "sirius", "--namespace", "hypercode"])
        cls.tmp = tempfile.mkdtemp(prefix="kr-plugin-")
        try:  # unittest skips tearDownClass when this fails: the server would outlive the run
            cls.plugin = os.path.join(cls.tmp, "bin", "kubectl-keyrotation")
            os.makedirs(os.path.dirname(cls.plugin))
            os.symlink(BINARY, cls.plugin)
            cls.home = os.path.join(cls.tmp, "home")  # no ~/.kube/config unless a test writes it
            os.makedirs(cls.home)
            cls.kubeconfig = cls.write("kubeconfig", kubeconfig_text(cls.server.url, kt.TOKEN))
            for path in (SIRIUS, HYPERCODE):
                for doc in load_yaml(path):
                    cls.create(doc)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def write(cls, name, text):
        path = os.path.join(cls.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    @classmethod
    def create(cls, obj):
        """Create a KeyRotation or a KeyStore (the examples hold both)."""
        ns = obj["metadata"].get("namespace", "default")
        reply = kt.request(cls.server, "POST", PATHS[obj["kind"]].format(ns=ns), obj)
        assert reply.status == 201, reply.raw
        return reply.json

    def get(self, ns, name):
        reply = kt.request(self.server, "GET", KR_PATH.format(ns=ns) + "/" + name)
        self.assertEqual(reply.status, 200, reply.raw)
        return reply.json

    def put_status(self, ns, name, status):
        obj = self.get(ns, name)
        obj["status"] = status
        reply = kt.request(self.server, "PUT", KR_PATH.format(ns=ns) + f"/{name}/status", obj)
        self.assertEqual(reply.status, 200, reply.raw)

    def base_env(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")}
        env["HOME"] = self.home
        return env

    def kubectl(self, *args, kubeconfig=True, env=None, argv0=None):
        """(exit code, stdout, stderr) of `kubectl-keyrotation ARGS` (kubectl's plugin call);
        with argv0, of `keyrotator kubectl ARGS`."""
        cmd = [argv0, "kubectl"] if argv0 else [self.plugin]
        if kubeconfig:
            cmd += ["--kubeconfig", self.kubeconfig]
        cmd += args
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=env or self.base_env())
        return p.returncode, p.stdout, p.stderr

    def new_object(self, name, ns="sirius"):
        doc = load_yaml(SIRIUS)[0]
        doc["metadata"] = {"name": name, "namespace": ns}
        return self.create(doc)

    # ---- rotate ----------------------------------------------------------------------

    def test_rotate_sets_the_annotation_to_now(self):
        self.new_object("rotate-me")
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        code, out, err = self.kubectl("rotate", "rotate-me", "-n", "sirius")
        after = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual((code, err), (0, ""))
        value = self.get("sirius", "rotate-me")["metadata"]["annotations"]["keyrotator.io/rotate"]
        self.assertRegex(value, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        when = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        self.assertTrue(before <= when <= after, (before, when, after))
        self.assertEqual(out, "keyrotation.keyrotator.io/rotate-me rotation requested "
                              f"(keyrotator.io/rotate={value})\n")

    def test_emergency_sets_the_reason_once(self):
        self.new_object("leaked")
        code, out, err = self.kubectl("rotate", "leaked", "-n", "sirius",
                                      "--emergency", "key leaked in CI log #4121")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out, "keyrotation.keyrotator.io/leaked emergency rotation requested "
                              "(keyrotator.io/emergency=key leaked in CI log #4121)\n")
        meta = self.get("sirius", "leaked")["metadata"]
        self.assertEqual(meta["annotations"], {"keyrotator.io/emergency":
                                               "key leaked in CI log #4121"})
        rv = meta["resourceVersion"]
        # The controller acts once per value: the same reason again would do nothing.
        code, out, err = self.kubectl("rotate", "leaked", "-n", "sirius",
                                      "--emergency=key leaked in CI log #4121")
        self.assertEqual(code, 1)
        self.assertIn("already has keyrotator.io/emergency=key leaked in CI log #4121", err)
        self.assertEqual(self.get("sirius", "leaked")["metadata"]["resourceVersion"], rv)
        code, _, err = self.kubectl("rotate", "leaked", "-n", "sirius", "--emergency", "again")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.get("sirius", "leaked")["metadata"]["annotations"]
                         ["keyrotator.io/emergency"], "again")

    def test_rotate_keeps_other_annotations(self):
        doc = load_yaml(SIRIUS)[0]
        doc["metadata"] = {"name": "annotated", "namespace": "sirius",
                           "annotations": {"team": "payments"}}
        self.create(doc)
        code, _, err = self.kubectl("rotate", "annotated", "--namespace=sirius")
        self.assertEqual(code, 0, err)
        ann = self.get("sirius", "annotated")["metadata"]["annotations"]
        self.assertEqual(ann["team"], "payments")
        self.assertIn("keyrotator.io/rotate", ann)

    # ---- abort and promote (issue 21) ----------------------------------------------------

    def test_abort_sets_the_reason_once_while_a_rotation_runs(self):
        self.new_object("abort-me")
        code, out, err = self.kubectl("abort", "abort-me", "-n", "sirius", "--reason", "x")
        self.assertEqual(code, 1)
        self.assertIn("has no rotation in flight (phase Idle)", err)
        self.assertNotIn("annotations", self.get("sirius", "abort-me")["metadata"])
        self.put_status("sirius", "abort-me", dict(ROTATING_STATUS, phase="Rotating"))
        code, out, err = self.kubectl("abort", "abort-me", "-n", "sirius",
                                      "--reason", "ui errors after stage api")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out, "keyrotation.keyrotator.io/abort-me abort requested "
                              "(keyrotator.io/abort=ui errors after stage api)\n")
        self.assertEqual(self.get("sirius", "abort-me")["metadata"]["annotations"],
                         {"keyrotator.io/abort": "ui errors after stage api"})
        code, _, err = self.kubectl("abort", "abort-me", "-n", "sirius",
                                    "--reason=ui errors after stage api")
        self.assertEqual(code, 1)
        self.assertIn("give a different REASON", err)
        code, out, err = self.kubectl("abort", "abort-me", "-n", "sirius")  # reason: the time
        self.assertEqual(code, 0, err)
        self.assertRegex(self.get("sirius", "abort-me")["metadata"]["annotations"]
                         ["keyrotator.io/abort"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_abort_refused_once_the_old_key_is_revoked(self):
        self.new_object("too-late")
        st = json.loads(json.dumps(ROTATING_STATUS))
        st["phase"] = "Revoking"
        st["rotation"]["oldKeyRevoked"] = True
        self.put_status("sirius", "too-late", st)
        code, out, err = self.kubectl("abort", "too-late", "-n", "sirius")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("the old key is already revoked", err)
        self.assertNotIn("annotations", self.get("sirius", "too-late")["metadata"])

    def test_promote_only_a_paused_rotation(self):
        self.new_object("gate")
        code, out, err = self.kubectl("promote", "gate", "-n", "sirius")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("is not paused (phase Idle)", err)
        st = json.loads(json.dumps(ROTATING_STATUS))
        st["phase"] = "Paused"
        st["conditions"] = [{"type": "Rotating", "status": "True", "reason": "Paused",
                             "lastTransitionTime": "2025-12-01T10:00:00Z",
                             "message": "paused before stage ui: waiting for a new value of "
                                        "keyrotator.io/promote"}]
        self.put_status("sirius", "gate", st)
        code, out, err = self.kubectl("status", "gate", "-n", "sirius")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("Phase:              Paused\n", out)
        self.assertIn("(paused before stage ui: waiting for a new value of "
                      "keyrotator.io/promote: `kubectl keyrotation promote gate` goes on", out)
        st["unlistedConsumers"] = [{"kind": "CronJob", "name": "nightly"},
                                   {"kind": "Deployment", "name": "sirius-legacy"}]
        self.put_status("sirius", "gate", st)
        code, out, err = self.kubectl("status", "gate", "-n", "sirius")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("Unlisted consumers: CronJob/nightly (reads the Secret; no stage lists "
                      "it)\n                    Deployment/sirius-legacy (reads", out)
        code, out, err = self.kubectl("promote", "gate", "-n", "sirius")
        self.assertEqual((code, err), (0, ""))
        value = self.get("sirius", "gate")["metadata"]["annotations"]["keyrotator.io/promote"]
        self.assertEqual(out, "keyrotation.keyrotator.io/gate promote requested "
                              f"(keyrotator.io/promote={value})\n")

    # ---- status and history ------------------------------------------------------------

    def test_status_renders_a_rotation_in_flight(self):
        self.new_object("in-flight")
        self.put_status("sirius", "in-flight", ROTATING_STATUS)
        code, out, err = self.kubectl("status", "in-flight", "-n", "sirius")
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()

        def line(prefix):
            hits = [x for x in lines if x.strip().startswith(prefix)]
            self.assertEqual(len(hits), 1, f"{prefix!r} in:\n{out}")
            return re.sub(r"\s+", " ", hits[0].strip())

        self.assertEqual(line("Name:"), "Name: in-flight")
        self.assertEqual(line("Namespace:"), "Namespace: sirius")
        self.assertEqual(line("Phase:"), "Phase: Rotating")
        self.assertTrue(line("Ready ").startswith("Ready True KeyValid "))
        self.assertTrue(line("Ready ").endswith("key 3f9a0c1d2e4b is active and every "
                                                "consumer runs it"))
        self.assertTrue(line("Degraded ").startswith("Degraded False AsExpected "))
        self.assertIn("prometheus timed out", line("Degraded "))
        self.assertIn("KeyStoreInSync True InSync", line("KeyStoreInSync "))
        self.assertTrue(line("current ").startswith(
            "current 3f9a0c1d2e4b 2026-01-01T03:00:04Z ("))
        self.assertTrue(line("current ").endswith(" 2026-q1"))
        self.assertTrue(line("pending ").startswith("pending 7c1e22aa9b01 2026-04-01T03:00:02Z"))
        self.assertFalse([x for x in lines if x.strip().startswith("previous ")])
        self.assertEqual(line("Trigger:"), "Trigger: Schedule")
        self.assertTrue(line("Started:").startswith("Started: 2026-04-01T03:00:00Z ("))
        self.assertEqual(line("Step:"), "Step: RollOut")
        self.assertEqual(line("Stage:"), "Stage: ui (2 of 3)")
        self.assertEqual(line("Baseline:"), "Baseline: 0.01/s")
        self.assertEqual(line("STAGE"), "STAGE STATE WORKLOAD KEY ID READY MESSAGE")
        self.assertEqual(line("api "), "api Done Deployment/sirius-api 7c1e22aa9b01 (new) 3/3")
        self.assertEqual(line("ui "), "ui RollingOut Deployment/sirius-ui 7c1e22aa9b01 (new) "
                                      "1/2 Deployment/sirius-ui: 1 of 2 updated replicas are "
                                      "available")
        self.assertEqual(line("engine "),
                         "engine Pending Deployment/sirius-engine 3f9a0c1d2e4b (old) 2/2")
        self.assertEqual(line("StatefulSet/"), "StatefulSet/sirius-scanner 3f9a0c1d2e4b (old) 1/1")
        self.assertEqual(line("Adoption:"), "Adoption: 2 of 4 workloads run key 7c1e22aa9b01 (new)")
        self.assertEqual(line("Unauthorized rate:"), "Unauthorized rate: 0.02/s")
        self.assertTrue(line("Last rotation:").startswith("Last rotation: 2026-01-01T03:12:40Z ("))
        self.assertTrue(line("Next rotation:").startswith("Next rotation: 2026-07-01T03:00:00Z ("))
        # Columns line up: every row of the stage table starts WORKLOAD at the same column.
        table = lines[lines.index([x for x in lines if x.strip().startswith("STAGE")][0]):]
        col = table[0].index("WORKLOAD")
        for row in table[1:5]:
            self.assertRegex(row[col:], r"^(Deployment|StatefulSet)/", row)

    def test_status_json_is_the_status_object(self):
        self.new_object("as-json")
        self.put_status("sirius", "as-json", ROTATING_STATUS)
        code, out, err = self.kubectl("status", "as-json", "-n", "sirius", "-o", "json")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(json.loads(out), ROTATING_STATUS)

    def test_status_of_a_new_object(self):
        self.new_object("fresh")
        code, out, err = self.kubectl("status", "fresh", "-n", "sirius")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("Phase:              Idle", out)
        self.assertIn("no status yet", out)
        self.assertIn("Stages:             <none>", out)
        code, out, _ = self.kubectl("status", "fresh", "-n", "sirius", "-o", "json")
        self.assertEqual(json.loads(out), {})

    def test_history_table(self):
        self.new_object("with-history")
        self.put_status("sirius", "with-history", ROTATING_STATUS)
        code, out, err = self.kubectl("history", "with-history", "-n", "sirius")
        self.assertEqual((code, err), (0, ""))
        rows = [re.split(r"\s{3,}", x.rstrip()) for x in out.splitlines()]
        self.assertEqual(rows, [
            ["KEY ID", "TRIGGER", "ACTIVATED", "REVOKED", "OUTCOME", "REASON"],
            [FIRST_ID, "Bootstrap", "2025-10-01T03:00:00Z", "2026-01-01T03:12:00Z", "Succeeded"],
            [FAILED_ID, "Manual", "2025-12-01T10:00:30Z", "2025-12-01T10:09:00Z", "RolledBack",
             "stage api: 401 rate 2.3/s above baseline 0.01/s + 0.5/s twice in a row"],
            [OLD_ID, "Schedule", "2026-01-01T03:00:04Z", "-", "Succeeded"],
        ])
        code, out, err = self.kubectl("history", "with-history", "-n", "sirius", "-o", "json")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out), ROTATING_STATUS["history"])

    def test_history_empty(self):
        self.new_object("no-history")
        code, out, err = self.kubectl("history", "no-history", "-n", "sirius")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out, "No rotations recorded for keyrotation.keyrotator.io/no-history.\n")
        code, out, _ = self.kubectl("history", "no-history", "-n", "sirius", "-o", "json")
        self.assertEqual(json.loads(out), [])

    # ---- plan ----------------------------------------------------------------------------

    def test_plan_via_the_api_equals_plan_of_the_file(self):
        for path, ns, name in ((SIRIUS, "sirius", "sirius-service-key"),
                               (HYPERCODE, "hypercode", "hypercode-core-key")):
            for extra in ([], ["--emergency"]):
                with self.subTest(example=name, extra=extra):
                    local = subprocess.run([BINARY, "plan", "-f", path, *extra],
                                           capture_output=True, text=True, timeout=30)
                    self.assertEqual(local.returncode, 0, local.stderr)
                    code, out, err = self.kubectl("plan", name, "-n", ns, *extra)
                    self.assertEqual((code, err), (0, ""))
                    self.assertEqual(out, local.stdout)

    def test_plan_names_the_current_and_pending_keys(self):
        self.new_object("planned")
        self.put_status("sirius", "planned", ROTATING_STATUS)
        code, out, err = self.kubectl("plan", "planned", "-n", "sirius", "-o", "json")
        self.assertEqual((code, err), (0, ""))
        doc = json.loads(out)
        self.assertEqual((doc["namespace"], doc["name"], doc["trigger"]),
                         ("sirius", "planned", "Manual"))
        self.assertIn(f"revoke key {OLD_ID} in api_keys:active", doc["plan"])
        self.assertIn(f"activate key {NEW_ID} in api_keys:active at valkey.sirius.svc:6379",
                      doc["plan"])

    def test_plan_names_the_unlisted_consumers_the_controller_found(self):
        self.new_object("forgotten")
        self.put_status("sirius", "forgotten", dict(ROTATING_STATUS, unlistedConsumers=[
            {"kind": "Deployment", "name": "sirius-legacy"}]))
        code, out, err = self.kubectl("plan", "forgotten", "-n", "sirius", "-o", "json")
        self.assertEqual((code, err), (0, ""))
        plan = json.loads(out)["plan"]
        line = ("hold the revoke while: Deployment/sirius-legacy reads Secret "
                "sirius/sirius-api-key and no stage lists it (unlistedConsumers: HoldRevoke; "
                "a CronJob only while a Job of it runs)")
        self.assertIn(line, plan)
        self.assertLess(plan.index(line), [i for i, x in enumerate(plan)
                                           if x.startswith("revoke key")][0])

    # ---- errors, namespaces, kubeconfig ---------------------------------------------------

    def test_not_found_is_exit_1_as_kubectl_says_it(self):
        for verb in ("rotate", "abort", "promote", "status", "history", "plan"):
            with self.subTest(verb=verb):
                code, out, err = self.kubectl(verb, "nope", "-n", "sirius")
                self.assertEqual(code, 1)
                self.assertEqual(out, "")
                self.assertEqual(err, "Error from server (NotFound): "
                                      "keyrotations.keyrotator.io \"nope\" not found\n")

    def test_namespace_flag_then_context_namespace_then_default(self):
        self.new_object("where", ns="hypercode")
        code, _, err = self.kubectl("status", "where")  # context has no namespace: default
        self.assertEqual(code, 1)
        self.assertIn("\"where\" not found", err)
        for flag in (["-n", "hypercode"], ["-nhypercode"], ["--namespace", "hypercode"],
                     ["--namespace=hypercode"]):
            with self.subTest(flag=flag):
                code, out, err = self.kubectl("status", "where", *flag)
                self.assertEqual(code, 0, err)
                self.assertIn("Namespace:          hypercode", out)
        ctx_ns = self.write("kc-ns", kubeconfig_text(self.server.url, kt.TOKEN, "hypercode"))
        code, out, err = self.kubectl("status", "where", "--kubeconfig", ctx_ns,
                                      kubeconfig=False)
        self.assertEqual(code, 0, err)
        code, _, err = self.kubectl("status", "where", "--kubeconfig", ctx_ns, "-n", "sirius",
                                    kubeconfig=False)
        self.assertEqual(code, 1, err)  # -n wins over the context's namespace

    def test_kubeconfig_flag_env_and_home(self):
        self.new_object("configured", ns="default")
        env = self.base_env()
        code, out, err = self.kubectl("status", "configured", kubeconfig=False, env=env)
        self.assertEqual(code, 1)  # nothing configured at all
        self.assertTrue(err.startswith("error: "), err)
        env["KUBECONFIG"] = self.kubeconfig
        code, out, err = self.kubectl("status", "configured", kubeconfig=False, env=env)
        self.assertEqual(code, 0, err)
        # $KUBECONFIG with several files: the first one to set a value wins.
        env["KUBECONFIG"] = os.pathsep.join([os.path.join(self.tmp, "missing"), self.kubeconfig])
        code, out, err = self.kubectl("status", "configured", kubeconfig=False, env=env)
        self.assertEqual(code, 0, err)
        home = os.path.join(self.tmp, "home2")
        self.write("home2/.kube/config", kubeconfig_text(self.server.url, kt.TOKEN))
        env = self.base_env()
        env["HOME"] = home
        code, out, err = self.kubectl("status", "configured", kubeconfig=False, env=env)
        self.assertEqual(code, 0, err)
        # --kubeconfig wins over $KUBECONFIG.
        env["KUBECONFIG"] = self.write("bad-kc", kubeconfig_text("http://127.0.0.1:1", "x"))
        code, out, err = self.kubectl("status", "configured", env=env)
        self.assertEqual(code, 0, err)

    def test_context_flag(self):
        self.new_object("ctx")
        path = self.write("kc-ctx", kubeconfig_text(
            "http://127.0.0.1:1", kt.TOKEN, None, ("real", self.server.url, "sirius")))
        code, _, err = self.kubectl("status", "ctx", "--kubeconfig", path, kubeconfig=False)
        self.assertEqual(code, 1)  # current-context points at a closed port
        self.assertTrue(err.startswith("error: "), err)
        code, out, err = self.kubectl("status", "ctx", "--kubeconfig", path, "--context", "real",
                                      kubeconfig=False)
        self.assertEqual(code, 0, err)
        self.assertIn("Namespace:          sirius", out)

    def test_keyrotator_kubectl_is_the_same_plugin(self):
        self.new_object("same")
        code, out, err = self.kubectl("status", "same", "-n", "sirius", argv0=BINARY,
                                      kubeconfig=False, env=dict(self.base_env(),
                                                                 KUBECONFIG=self.kubeconfig))
        self.assertEqual(code, 0, err)
        self.assertIn("Name:               same", out)

    def test_usage_errors_exit_2(self):
        cases = [
            ([], "missing command"),
            (["frobnicate", "x"], "unknown command \"frobnicate\""),
            (["status"], "missing the KeyRotation NAME"),
            (["status", "a", "b"], "unexpected argument \"b\""),
            (["status", "a", "--bogus"], "unknown option '--bogus'"),
            (["status", "a", "-o", "yaml"], "is not supported"),
            (["rotate", "a", "--emergency"], "--emergency needs a value"),
            (["rotate", "a", "--emergency="], "REASON must be 1 to 255 bytes"),
            (["rotate", "a", "--emergency", "x" * 256], "REASON must be 1 to 255 bytes"),
            (["status", "a", "-n"], "-n needs a value"),
            (["status", "a", "--emergency", "r"], "--emergency goes with rotate"),
            (["plan", "a", "--emergency=maybe"], "--emergency: \"maybe\" is not true or false"),
            (["abort", "a", "--reason"], "--reason needs a value"),
            (["abort", "a", "--reason", "x" * 256], "REASON must be 1 to 255 bytes"),
            (["status", "a", "--reason", "x"], "--reason goes with abort"),
            (["promote", "a", "-o", "json"], "--output applies to status, history and plan"),
        ]
        for args, text in cases:
            with self.subTest(args=args):
                code, out, err = self.kubectl(*args)
                self.assertEqual(code, 2, err)
                self.assertEqual(out, "")
                self.assertIn(text, err)
                self.assertIn("See 'kubectl keyrotation --help' for usage.", err)

    def test_help(self):
        for args in (["--help"], ["status", "-h"]):
            code, out, err = self.kubectl(*args, kubeconfig=False)
            self.assertEqual((code, err), (0, ""))
            self.assertTrue(out.startswith("Usage: kubectl keyrotation COMMAND NAME"))
        code, out, err = self.kubectl(kubeconfig=False)
        self.assertEqual(code, 2)
        self.assertIn("Usage: kubectl keyrotation", err)


if __name__ == "__main__":
    unittest.main()
