"""test_analysis_e2e.py - the 401 watch end to end: `keyrotator run` rotating the Sirius key on
the simulated cluster (tests/sim) while Debian's prometheus, on loopback, scrapes a test
service whose 401 counter this test controls (counter_service.py). Each case is one full
rotation: a clean one passes the gate, a 401 spike rolls back, a stopped Prometheus holds the
rotation and then rolls back, noise under the threshold passes, a direct scrape over HTTPS
(caSecretRef) rolls back on a spike, Prometheus basic auth comes from a Secret, spec.verify
catches an old key that still works, and revokeWhenUnusedFor holds the revoke while the old
key is in use.

Env: KR_BINARY (the keyrotator binary). Needs prometheus, redis-server, openssl."""

import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import krtest
import krtest.servers
from cluster import NAMESPACE, OPT_IN, SECRET, Cluster, key_id, key_store_ref
from krtest import free_port, listening, stop, wait_for
from krtest.controller import Controller, binary

KR_PATH = "/apis/keyrotator.io/v1alpha1/namespaces/%s/keyrotations" % NAMESPACE
KR_NAME = "sirius"
STAGES = [{"name": "api", "workloads": [{"kind": "Deployment", "name": "sirius-api"}]},
          {"name": "ui", "workloads": [{"kind": "Deployment", "name": "sirius-ui"}]},
          {"name": "engine", "workloads": [{"kind": "Deployment", "name": "sirius-engine"}]}]
QUERY = 'sum(rate(http_requests_total{job="counter",code="401"}[4s])) or vector(0)'


def spawn(root, name, cmd):
    """A child that dies with this process; output in root/name.log."""
    return krtest.spawn(cmd, os.path.join(root, name + ".log"))


def http(method, url, timeout=3):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


class CounterService:
    """counter_service.py: http_requests_total{method,code} whose 401 rate we set."""

    def __init__(self, root, name, extra=()):
        self.port = free_port()
        self.tls = "--tls-cert" in extra
        self.p = spawn(root, name, [sys.executable, os.path.join(HERE, "counter_service.py"),
                                    "--port", str(self.port)] + list(extra))
        wait_for(lambda: self.p.poll() is not None or listening(self.port), 15, name)
        if self.p.poll() is not None:
            raise RuntimeError("%s exited; see %s/%s.log" % (name, root, name))
        self.url = "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def admin(self, what, **q):
        """POST /admin/<what>; a TLS service's certificate is not checked here."""
        qs = "&".join("%s=%s" % kv for kv in q.items())
        ctx = ssl._create_unverified_context() if self.tls else None
        req = urllib.request.Request("%s/admin/%s?%s" % (self.url, what, qs), data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=3, context=ctx) as r:
            r.read()

    def rate(self, per_sec):
        self.admin("rate", method="get", code="401", per_sec=per_sec)

    def close(self):
        stop(self.p)


class Prometheus(krtest.servers.Prometheus):
    """Debian's prometheus on loopback, scraping one target every second (job "counter")."""

    def __init__(self, root, target):
        super().__init__(root, "- job_name: counter\n  static_configs:\n"
                         "  - targets: ['%s']\n" % target,
                         lambda cmd: spawn(root, "prometheus", cmd))

    def value(self):
        """The query's current value, or None."""
        q = urllib.parse.urlencode({"query": QUERY})
        try:
            body = json.loads(http("GET", "%s/api/v1/query?%s" % (self.url, q)))
            return float(body["data"]["result"][0]["value"][1])
        except (OSError, KeyError, IndexError, ValueError):
            return None


class AnalysisE2E(unittest.TestCase):
    """One simulated cluster, counter service and Prometheus per test; one controller each."""

    @classmethod
    def setUpClass(cls):
        # tests/setup.sh installs these: missing, the test fails (it never passes untested).
        for tool in ("prometheus", "redis-server", "openssl", binary()):
            if not shutil.which(tool) and not os.path.exists(tool):
                raise RuntimeError("%s is not installed (tests/setup.sh installs it)" % tool)

    def setUp(self):
        self.root = krtest.mkdtemp("kr-analysis-e2e-")
        self.procs = []
        self.cluster = Cluster(os.path.join(self.root, "cluster"), seed_key=True,
                               client_rate=2)
        self.cluster.__enter__()
        self.cluster.create_key_store()
        self.cluster.opt_in(SECRET, KR_NAME)
        self.counter = CounterService(self.root, "counter")
        self.prom = Prometheus(self.root, "127.0.0.1:%d" % self.counter.port)
        self.prom.start()
        self.old_key = self.cluster.bootstrap_key
        self.old_id = key_id(self.old_key)
        self.ctl = None

    def tearDown(self):
        rc = self.ctl.stop(10) if self.ctl else None
        self.prom.kill()
        for p in self.procs:
            p.close()
        self.counter.close()
        self.cluster.down()
        if os.environ.get("KR_KEEP_LOGS") or rc not in (0, None) or self.failed():
            print("logs kept in %s" % self.root, file=sys.stderr)
        else:
            krtest.rmtree(self.root)
        # SIGTERM finishes the step in hand and exits 0 (a sanitizer build: no leak either).
        self.assertIn(rc, (0, None), "keyrotator exited with %s after SIGTERM" % rc)

    def failed(self):
        """This test has failed so far (Python 3.11+ records it in the result at once)."""
        errs = [e for _, e in getattr(self._outcome, "errors", []) if e]
        result = getattr(self._outcome, "result", None)
        if result is not None:
            errs += [t for t, _ in result.failures + result.errors if t is self]
        return bool(errs)

    # ---- the controller and the KeyRotation ----
    def start_controller(self):
        self.ctl = Controller(self.cluster.kubeconfig, os.path.join(self.root, "keyrotator.log"),
                              namespace=NAMESPACE, extra=["--log-level", "debug"])
        self.ctl.start(wait_ready=False)
        self.metrics_port = self.ctl.metrics_port

    def create_rotation(self, analysis, **extra):
        spec = {"secretRef": {"name": SECRET, "key": "SIRIUS_API_KEY"},
                "keyStoreRef": key_store_ref(),
                "stages": STAGES, "validationPeriod": "3s"}
        if analysis:
            spec["analysis"] = dict({"interval": "1s", "threshold": 0.5, "failureLimit": 2,
                                     "errorLimit": 4}, **analysis)
        spec.update(extra)
        body = {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
                "metadata": {"name": KR_NAME, "annotations": {"keyrotator.io/rotate": "1"}},
                "spec": spec}
        code, obj = self.cluster.api("POST", KR_PATH, body)
        self.assertEqual(code, 201, obj)
        self.start_controller()

    def prom_analysis(self, **kw):
        return {"prometheus": dict({"url": self.prom.url, "query": QUERY}, **kw)}

    def kr(self):
        code, obj = self.cluster.api("GET", KR_PATH + "/" + KR_NAME)
        self.assertEqual(code, 200, obj)
        if self.ctl.proc.poll() is not None:
            self.fail("keyrotator exited with %s; see %s/keyrotator.log" % (
                self.ctl.proc.returncode, self.root))
        return obj

    def status(self):
        return self.kr().get("status", {})

    def condition(self, st, ctype):
        for c in st.get("conditions", []):
            if c["type"] == ctype:
                return c
        return {}

    def wait_status(self, cond, timeout, what):
        last = {}

        def check():
            last["st"] = self.status()
            return cond(last["st"])
        try:
            wait_for(check, timeout, what)
            return last["st"]
        except TimeoutError as e:
            self.fail("%s; last status: %s" % (e, json.dumps(last.get("st"))[:3000]))

    def wait_done(self, timeout=60):
        """The rotation ended (history grew): the status then."""
        return self.wait_status(lambda st: st.get("history") and st.get("phase") in
                                ("Idle", "Failed"), timeout, "the rotation to end")

    def in_stage(self, name):
        return lambda st: (st.get("rotation", {}).get("stage") == name and
                           st.get("phase") == "Rotating")

    def secret_key(self):
        code, obj = self.cluster.api("GET", "/api/v1/namespaces/%s/secrets/%s" % (
            NAMESPACE, SECRET))
        self.assertEqual(code, 200, obj)
        return base64.b64decode(obj["data"]["SIRIUS_API_KEY"]).decode()

    def put_secret(self, name, data):
        """A credential Secret the KeyRotation names, opted in for it (the annotation)."""
        body = {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "annotations": {OPT_IN: KR_NAME}},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
        code, obj = self.cluster.api("POST", "/api/v1/namespaces/%s/secrets" % NAMESPACE, body)
        self.assertEqual(code, 201, obj)

    # ---- the key store, as the API sees it ----
    def member_of(self, kid):
        """The stored member (hex SHA-256) of the key with id `kid`."""
        v = self.cluster.valkey()
        try:
            keys = v.command("KEYS", "api_key:%s*:meta" % kid)
        finally:
            v.close()
        self.assertEqual(len(keys), 1, "metadata of key %s: %s" % (kid, keys))
        k = keys[0].decode() if isinstance(keys[0], bytes) else keys[0]
        return k[len("api_key:"):-len(":meta")]

    def key_state(self, member):
        """(in activeSet, meta status) of a stored member."""
        v = self.cluster.valkey()
        try:
            active = v.sismember("api_keys:active", member)
            st = v.hget("api_key:%s:meta" % member, "status")
        finally:
            v.close()
        return bool(active), st.decode() if isinstance(st, bytes) else st

    def old_member(self):
        return hashlib.sha256(self.old_key.encode()).hexdigest()

    def events(self):
        code, obj = self.cluster.api("GET", "/api/v1/namespaces/%s/events" % NAMESPACE)
        self.assertEqual(code, 200, obj)
        return obj.get("items", [])

    def metrics(self):
        return http("GET", "http://127.0.0.1:%d/metrics" % self.metrics_port)

    # ---- outcomes ----
    def assert_succeeded(self, st):
        last = st["history"][-1]
        self.assertEqual((st["phase"], last["outcome"]), ("Idle", "Succeeded"), st)
        new_key = self.secret_key()
        self.assertNotEqual(new_key, self.old_key)
        self.assertEqual(st["currentKey"]["id"], key_id(new_key))
        self.assertEqual(self.key_state(hashlib.sha256(new_key.encode()).hexdigest()),
                         (True, "active"))
        self.assertEqual(self.key_state(self.old_member()), (False, "revoked"))

    def assert_rolled_back(self, st, reason_part):
        last = st["history"][-1]
        self.assertEqual((st["phase"], last["outcome"]), ("Failed", "RolledBack"), st)
        self.assertIn(reason_part, last.get("reason", "") + st["rotation"].get("reason", ""))
        self.assertEqual(self.condition(st, "Degraded").get("status"), "True", st)
        self.assertEqual(self.secret_key(), self.old_key)
        self.assertEqual(self.key_state(self.old_member()), (True, "active"))
        self.assertEqual(self.key_state(self.member_of(last["keyId"])), (False, "revoked"))
        self.assertTrue([e for e in self.events() if e.get("type") == "Warning" and
                         e.get("reason") == "RollingBack"], "no RollingBack Warning event")

    # ---- the cases ----
    def test_clean_rotation_passes_the_gate(self):
        self.create_rotation(self.prom_analysis(), verify={
            "url": self.cluster.api_url + "/api/v1/ping"})
        st = self.wait_done()
        self.assert_succeeded(st)
        self.assertIn("unauthorizedRate", st)
        self.assertLess(float(st["unauthorizedRate"]), 0.5)
        self.assertNotEqual(self.condition(st, "Degraded").get("status"), "True", st)
        line = [x for x in self.metrics().splitlines()
                if x.startswith("keyrotator_unauthorized_rate{")]
        self.assertTrue(line and 'name="sirius"' in line[0], line)

    def test_401_spike_during_a_stage_rolls_back(self):
        self.create_rotation(self.prom_analysis())
        self.wait_status(self.in_stage("ui"), 40, "stage ui")
        self.counter.rate(20)
        st = self.wait_done()
        self.assert_rolled_back(st, "401 rate")
        self.assertGreater(float(st["unauthorizedRate"]), 0.5)

    def test_prometheus_down_holds_then_rolls_back(self):
        self.create_rotation(dict(self.prom_analysis(), errorLimit=8))
        before = self.wait_status(self.in_stage("ui"), 40, "stage ui")
        self.prom.kill()
        held = self.wait_status(  # held: more than one inconclusive result, still Rotating
            lambda st: st.get("phase") == "Rotating" and
            st["rotation"].get("consecutiveErrors", 0) >= 2 and
            self.condition(st, "Degraded").get("reason") == "AnalysisInconclusive", 20,
            "Degraded naming the inconclusive measurement")
        msg = self.condition(held, "Degraded")["message"]
        self.assertIn("prometheus http://127.0.0.1:%d" % self.prom.port, msg)
        self.assertEqual(held["rotation"]["stageIndex"], before["rotation"]["stageIndex"])
        self.assertEqual(held["phase"], "Rotating")
        new_id = held["pendingKey"]["id"]
        self.assertEqual(self.key_state(self.old_member()), (True, "active"))
        self.assertEqual(self.key_state(self.member_of(new_id)), (True, "active"))
        st = self.wait_done()
        self.assert_rolled_back(st, "inconclusive")

    def test_noise_below_the_threshold_passes(self):
        self.counter.rate(1)
        wait_for(lambda: (self.prom.value() or 0) > 0.8, 20, "a baseline of 1/s in prometheus")
        self.create_rotation(dict(self.prom_analysis(), threshold=1.5))
        self.wait_status(self.in_stage("api"), 40, "stage api")
        self.counter.rate(2)  # +1/s over the baseline, under the threshold of 1.5/s
        st = self.wait_done()
        self.assert_succeeded(st)
        self.assertGreater(float(st["unauthorizedRate"]), 0.5)

    def test_scrape_over_https_with_ca_secret_rolls_back_on_a_spike(self):
        cert, key = os.path.join(self.root, "tls.crt"), os.path.join(self.root, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        svc = CounterService(self.root, "counter-tls", ["--tls-cert", cert, "--tls-key", key])
        self.procs.append(svc)
        with open(cert) as f:
            self.put_secret("metrics-ca", {"ca.crt": f.read()})
        self.create_rotation({"scrape": {
            "url": svc.url + "/metrics", "metric": "http_requests_total",
            "labels": {"code": "401"}, "caSecretRef": {"name": "metrics-ca", "key": "ca.crt"}}})
        st = self.wait_status(self.in_stage("ui"), 40, "stage ui")
        self.assertIn("unauthorizedRate", st)  # the baseline: TLS with the Secret's CA works
        svc.rate(20)
        st = self.wait_done()
        self.assert_rolled_back(st, "401 rate")

    def test_prometheus_basic_auth_from_a_secret(self):
        svc = CounterService(self.root, "fakeprom", ["--basic", "keyrotator:s3cret-pw"])
        self.procs.append(svc)
        self.create_rotation({"errorLimit": 30, "prometheus": {
            "url": svc.url + "/fakeprom", "query": "x",
            "basicAuth": {"username": "keyrotator",
                          "passwordSecretRef": {"name": "prom-auth", "key": "password"}}}})
        held = self.wait_status(
            lambda st: "basicAuth.passwordSecretRef" in
            self.condition(st, "Degraded").get("message", ""), 20,
            "Degraded naming the missing Secret")
        self.assertEqual(held["phase"], "Rotating")  # held at the baseline, nothing changed
        # A missing credential Secret reads as one that did not opt in (the author may not
        # learn which Secrets exist): refused, held where it is, both keys valid.
        self.assertEqual(self.condition(held, "Degraded")["reason"], "Refused")
        self.assertEqual(self.condition(held, "Ready")["reason"], "CredentialSecretNotOptedIn")
        self.assertIn("prom-auth", self.condition(held, "Degraded")["message"])
        self.assertIn("does not exist or is not opted in", self.condition(held, "Ready")["message"])
        self.put_secret("prom-auth", {"password": "s3cret-pw\n"})  # as --from-file makes it
        st = self.wait_done()
        self.assert_succeeded(st)
        self.assertEqual(float(st["unauthorizedRate"]), 42.0)  # what /fakeprom answers

    def test_verify_that_accepts_the_old_key_is_reported_not_undone(self):
        # /metrics of the counter service answers 200 to any key: the revoke did not "work".
        self.create_rotation(self.prom_analysis(), verify={"url": self.counter.url + "/metrics"})
        st = self.wait_status(lambda st: st.get("history"), 60, "the rotation to end")
        last = st["history"][-1]
        self.assertEqual(last["outcome"], "Failed", st)
        self.assertIn("verify failed", last.get("reason", ""))
        self.assertEqual(st["phase"], "Failed", st)
        deg = self.condition(st, "Degraded")
        self.assertEqual((deg.get("status"), deg.get("reason")), ("True", "RotationFailed"), st)
        self.assertEqual(st["currentKey"]["id"], last["keyId"])  # the new key is current
        self.assertIn("old key got HTTP 200", deg.get("message", "") + last["reason"])
        new_key = self.secret_key()
        self.assertNotEqual(new_key, self.old_key)  # not undone: consumers keep the new key
        self.assertEqual(self.key_state(hashlib.sha256(new_key.encode()).hexdigest()),
                         (True, "active"))
        self.assertEqual(self.key_state(self.old_member()), (False, "revoked"))
        self.assertTrue([e for e in self.events() if e.get("type") == "Warning" and
                         e.get("reason") == "VerifyFailed"], "no VerifyFailed Warning event")

    def test_revoke_waits_while_the_old_key_is_used(self):
        self.create_rotation(None, revokeWhenUnusedFor="4s")
        meta = "api_key:%s:meta" % self.old_member()
        v = self.cluster.valkey()

        def touch():
            v.hset(meta, "last_used_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

        try:
            def revoking(st):
                touch()
                return st.get("phase") == "Revoking" and "unused" in \
                    self.condition(st, "Degraded").get("message", "")
            held = self.wait_status(revoking, 60, "the revoke held for the old key's use")
            msg = self.condition(held, "Degraded")["message"]
            self.assertIn(self.old_id, msg)
            self.assertIn("last used at 20", msg)  # the wait and the last use, by name
            deadline = time.monotonic() + 6  # longer than revokeWhenUnusedFor: still held
            while time.monotonic() < deadline:
                touch()
                self.assertEqual(self.key_state(self.old_member()), (True, "active"))
                self.assertEqual(self.status()["phase"], "Revoking")
                time.sleep(0.5)
        finally:
            v.close()
        st = self.wait_done(30)  # unused now: after 4 s the revoke proceeds
        self.assert_succeeded(st)


if __name__ == "__main__":
    unittest.main()
