"""test_e2e_external.py - the end-to-end suite's real-cluster mode (KEYROTATOR_E2E_KUBECONFIG),
tested honestly here: tests/kubeapi runs as a standalone *external* API server (HTTPS, client
certificate auth, no token, certificates made with the openssl CLI) and test_e2e.py runs
against it only through a kubeconfig, as it would against envtest or kind. Afterwards this
test checks through the API that the suite's namespaces are gone, that the CRDs are removed
only when the suite installed them, and that a namespace that existed before (with its own
KeyRotation, KeyStore, Secret and Deployment) was not touched. The suite detects whether the
cluster runs workload controllers: once without (both stand-ins run), once with the
workload-controller stand-in running cluster-wide as the cluster's own (kubelet stand-in only).

    cd tests/e2e && KR_BINARY=../../build/controller/keyrotator \
        ../py -m unittest -v test_e2e_external

KEYROTATOR_E2E_EXTERNAL_TESTS (space-separated test_e2e names) overrides what runs in the
pre-existing-CRD phase (default: every scenario but 1, which runs in the first phase).
"""
import base64
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
import e2e_lib as e
from e2e_lib import cluster, wait_for

import ktls
from simkube import Kube

CONTEXT = "e2e-ext"
BYSTANDER = "team-bystander"
REST_OF_SUITE = ("test_e2e.TestConsumerLeftOut test_e2e.TestControllerKilled "
                 "test_e2e.TestKeyStoreFlushed test_e2e.TestEmergency "
                 "test_e2e.TestLeaderElection")
NS_LINE = re.compile(r"real cluster \S+: namespace (keyrotator-e2e-[0-9a-f]{8})")


def kubeconfig(path, url, tls):
    """Two contexts: the current one points at a closed port (so KEYROTATOR_E2E_CONTEXT must
    be honoured), CONTEXT at the server with a client certificate given as files."""
    with open(os.path.join(tls, "ca.crt"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: wrong\nclusters:\n"
                "- name: wrong\n  cluster:\n    server: https://127.0.0.1:1\n"
                "- name: ext\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n"
                "contexts:\n- name: wrong\n  context:\n    cluster: wrong\n    user: ext\n"
                "- name: %s\n  context:\n    cluster: ext\n    user: ext\n"
                "users:\n- name: ext\n  user:\n    client-certificate: tls/client.crt\n"
                "    client-key: tls/client.key\n" % (url, ca, CONTEXT))


class TestRealClusterMode(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="kr-e2ex-")
        tls = os.path.join(cls.root, "tls")
        ktls.ensure_material(tls)  # openssl CLI: server cert + client CA + client cert
        ready = os.path.join(cls.root, "kubeapi.ready")
        log = open(os.path.join(cls.root, "kubeapi.log"), "ab")
        cls.server = subprocess.Popen(
            [sys.executable, os.path.join(e.REPO, "tests", "kubeapi", "kubeapi.py"),
             "--port", "0", "--tls-dir", tls, "--ready-file", ready],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_for(lambda: cls.server.poll() is not None or os.path.exists(ready), 30, "kubeapi")
        with open(ready) as f:
            url = f.read().split()[1]
        cls.kubeconfig = os.path.join(cls.root, "kubeconfig")
        kubeconfig(cls.kubeconfig, url, tls)
        scratch = os.path.join(cls.root, "scratch")
        os.makedirs(scratch)
        cls.kube = Kube(cluster.resolve_kubeconfig(cls.kubeconfig, CONTEXT, scratch),
                                  scratch)
        code, _ = cls.kube.request("GET", "/api/v1/namespaces")
        assert code == 200, "client certificate not accepted: HTTP %d" % code

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(10)
        e.rmtree(cls.root)

    # ---- helpers ----
    def api(self, method, path, body=None, ctype="application/json"):
        return self.kube.request(method, path, body, ctype)

    def env(self):
        env = dict(os.environ, KEYROTATOR_E2E_KUBECONFIG=self.kubeconfig,
                   KEYROTATOR_E2E_CONTEXT=CONTEXT)
        env.pop("KEYROTATOR_E2E_KEEP", None)
        return env

    def suite(self, tests, timeout=240):
        """Run test_e2e `tests` against the external server; (rc, stderr, namespaces)."""
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "unittest", "-v"] + tests.split(),
                           cwd=HERE, env=self.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, text=True)
        print("\n%s: %.0fs" % (tests, time.monotonic() - t0), file=sys.stderr)
        return p.returncode, p.stdout, NS_LINE.findall(p.stdout)

    def namespaces(self):
        code, lst = self.api("GET", "/api/v1/namespaces")
        self.assertEqual(code, 200)
        return {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in lst["items"]}

    def crds_present(self):
        """name -> resourceVersion of the CRDs of crds/ that the server has."""
        out = {}
        for name in cluster.crds():
            code, obj = self.api("GET", cluster.CRD_PATH + "/" + name)
            if code == 200:
                out[name] = obj["metadata"]["resourceVersion"]
        return out

    def assert_cleaned(self, names):
        """Every namespace the suite made is gone, or Terminating with nothing left inside."""
        self.assertTrue(names, "the suite printed no namespace: did it run in real mode?")
        for ns in names:
            code, obj = self.api("GET", "/api/v1/namespaces/" + ns)
            if code == 404:
                continue
            self.assertEqual(code, 200)
            self.assertEqual((obj.get("status") or {}).get("phase"), "Terminating", ns)
            self.assertEqual(obj["metadata"]["labels"], cluster.MANAGED_BY)
            for prefix, plural in cluster.CLEANUP:
                code, lst = self.api("GET", "%s/namespaces/%s/%s" % (prefix, ns, plural))
                self.assertTrue(code == 404 or not lst.get("items"), (ns, plural, lst))

    def objects(self, ns):
        """name -> resourceVersion of everything of the CLEANUP types in `ns`."""
        out = {}
        for prefix, plural in cluster.CLEANUP:
            code, lst = self.api("GET", "%s/namespaces/%s/%s" % (prefix, ns, plural))
            if code == 200:
                for i in lst.get("items") or []:
                    out[plural + "/" + i["metadata"]["name"]] = i["metadata"]["resourceVersion"]
        return out

    def make_bystander(self):
        """A team's namespace that existed before the run: a KeyRotation, the KeyStore it
        names, its Secret and a Deployment, which the run must leave exactly as they are."""
        for path, body in (
                ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": BYSTANDER}}),
                ("/api/v1/namespaces/%s/secrets" % BYSTANDER, {
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": cluster.SECRET,
                                 "annotations": {cluster.OPT_IN: "sirius-service-key"}},
                    "stringData": {cluster.SECRET_KEY: cluster.new_key()}}),
                ("%s/namespaces/%s/keystores" % (cluster.KR_API, BYSTANDER),
                 cluster.key_store(cluster.KEY_STORE, "127.0.0.1:1")),
                (e.DEPLOY_PATH % BYSTANDER, {
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "sirius-api"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                             "template": {"metadata": {"labels": {"app": "x"}},
                                          "spec": {"containers": [{"name": "api",
                                                                   "image": "sim/api"}]}}}}),
                (e.KR_PATH % BYSTANDER, {
                    "apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
                    "metadata": {"name": "sirius-service-key"},
                    "spec": {"secretRef": {"name": cluster.SECRET, "key": cluster.SECRET_KEY},
                             "keyStoreRef": cluster.key_store_ref(),
                             "stages": [{"name": "api", "workloads": [
                                 {"kind": "Deployment", "name": "sirius-api"}]}]}})):
            code, obj = self.api("POST", path, body)
            self.assertEqual(code, 201, (path, obj))

    # ---- the tests ----
    def test_detects_the_clusters_workload_controllers(self):
        """A cluster with its own workload controllers (played here by the workload-controller
        stand-in run cluster-wide, as kube-controller-manager would: it sets the probe
        Deployment's observedGeneration and owns every Deployment): the suite detects them,
        runs only the kubelet stand-in, and the scenario passes with the cluster's controllers
        rolling the Deployments; its namespace and the CRDs are cleaned up."""
        log = open(os.path.join(self.root, "cluster-controllers.log"), "ab")
        scratch = os.path.join(self.root, "scratch")
        ctl = subprocess.Popen(
            [sys.executable, os.path.join(e.SIM, "controllers_standin.py"), "--kubeconfig",
             cluster.resolve_kubeconfig(self.kubeconfig, CONTEXT, scratch)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        try:
            rc, out, names = self.suite("test_e2e.TestEmergency", timeout=180)
        finally:
            ctl.terminate()
            ctl.wait(10)
        self.assertEqual(rc, 0, out[-4000:])
        self.assertIn("mode: real cluster with workload controllers", out)
        self.assertIn("kubelet stand-in only", out)
        self.assert_cleaned(names)
        self.assertEqual(self.crds_present(), {}, "the CRDs the suite installed were not removed")

    def test_real_cluster_mode_against_an_external_api_server(self):
        before = self.namespaces()
        self.assertEqual(self.crds_present(), {})

        # 1. No CRD in the cluster: the suite installs it, runs scenario 1, removes it.
        rc, out, names = self.suite("test_e2e.TestFullRotation")
        self.assertEqual(rc, 0, out[-4000:])
        self.assertIn("mode: real cluster without workload controllers", out)
        self.assertIn("installed CRD", out)
        self.assertEqual(len(names), 1, out[-2000:])
        self.assert_cleaned(names)
        self.assertEqual(self.crds_present(), {}, "the CRDs the suite installed were not removed")
        self.assertEqual(set(self.namespaces()), set(before))

        # 2. SIGTERM mid-scenario: the handler still empties and deletes the namespace and
        # removes the CRD (unittest alone would skip tearDown).
        p = subprocess.Popen([sys.executable, "-m", "unittest", "test_e2e.TestEmergency"],
                             cwd=HERE, env=self.env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        def with_rotation():
            self.assertIsNone(p.poll(), "scenario 5 ended before the SIGTERM")
            return [n for n in set(self.namespaces()) - set(before)
                    if (self.api("GET", e.KR_PATH % n)[1] or {}).get("items")]
        try:
            ns = wait_for(with_rotation, 90, "the scenario's KeyRotation")[0]
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(60), 128 + signal.SIGTERM)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assert_cleaned([ns])
        self.assertEqual(self.crds_present(), {}, "the CRDs were not removed after SIGTERM")

        # 3. The CRDs and a team's namespace exist before: the rest of the suite leaves both.
        for crd in cluster.crds().values():
            self.assertEqual(self.api("POST", cluster.CRD_PATH, crd)[0], 201)
            wait_for(lambda: self.api("GET", cluster.crd_served_path(crd))[0] == 200, 30,
                     "the CRD " + crd["metadata"]["name"])
        self.make_bystander()
        before = self.namespaces()
        crd_rv = self.crds_present()
        self.assertEqual(set(crd_rv), set(cluster.crds()))
        kept = self.objects(BYSTANDER)
        self.assertEqual(len(kept), 4, kept)
        tests = os.environ.get("KEYROTATOR_E2E_EXTERNAL_TESTS") or REST_OF_SUITE
        rc, out, names = self.suite(tests)
        self.assertEqual(rc, 0, out[-6000:])
        self.assertNotIn("installed CRD", out)
        self.assertEqual(len(names), len(re.findall(r"(?:\.\.\. |^)ok$", out, re.M)), out[-3000:])
        self.assert_cleaned(names)
        self.assertEqual(self.namespaces(), before, "namespaces other than the suite's changed")
        self.assertEqual(self.objects(BYSTANDER), kept, "the pre-existing namespace changed")
        self.assertEqual(self.crds_present(), crd_rv,
                         "a pre-existing CRD was changed or removed")


if __name__ == "__main__":
    unittest.main()
