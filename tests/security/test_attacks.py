"""test_attacks.py - a KeyRotation is no way around RBAC (issue 17, DESIGN.md §1b).

The attacker may create and patch KeyRotations and Deployments in namespace team-b, but may not
read its Secrets. Every attack is one KeyRotation in team-b against a real `keyrotator run`
(the local API server with every CRD of crds/, redis-server as the key store two teams share
through a ClusterKeyStore, the workload simulator), with the attacker's own servers on loopback:
a recording fake Valkey and recording HTTP servers that answer with a canary banner. Secrets the
attacker cannot read hold canaries; none may reach those servers, the shared key store, any
status or Event, or the controller's log, and no Secret the controller does not own may change.

Each refusal must show as the KeyRotation's condition Ready=False with its reason, and a Warning
Event with the same reason, both naming what to add (the annotation, the reference, the
--allowed-endpoints entry). Tests run in name order; test_99 checks what must hold after all.

Environment: KR_BINARY (ctest sets it). KR_KEEP_TMP=1 keeps the temp dir (logs);
KR_ATTACKS_VERBOSE=1 prints every KeyRotation's Ready condition and Event at the end.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import attacklib as al
import e2e_lib
import cluster
import krtest
import simulator

TEAM_A, TEAM_B, SYSTEM = "team-a", "team-b", "keyrotator-system"
GROUP = "/apis/keyrotator.io/v1alpha1"
KRS = GROUP + "/namespaces/%s/keyrotations"
CKS = GROUP + "/clusterkeystores"
KS = GROUP + "/namespaces/%s/keystores"
SECRETS = "/api/v1/namespaces/%s/secrets"
NAMESPACES = "/api/v1/namespaces"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MERGE = "application/merge-patch+json"
OPT_IN = "keyrotator.io/keyrotation"
SHARED, TEAM_A_ONLY, TEAM_A_STORE = "shared-valkey", "team-a-only", "team-a-store"
# One active set per team; one bootstrap marker per KeyRotation (this namespace has many).
LAYOUT = {"activeSet": "{namespace}:api_keys:active",
          "metaKey": "{namespace}:api_key:{id}:meta",
          "bootstrapKey": "{namespace}:{name}:api_keys:bootstrap", "storeAs": "sha256"}
PRIVATE_LAYOUT = {"activeSet": "{namespace}:private:active",
                  "metaKey": "{namespace}:private:{id}:meta",
                  "bootstrapKey": "{namespace}:private:bootstrap", "storeAs": "sha256"}
REFUSALS = {"InlineKeyStoreNotAllowed", "KeyStoreNotFound", "KeyStoreNotAllowed",
            "KeyStoreInvalid", "SecretNotOptedIn", "CredentialSecretNotOptedIn",
            "RotationSecretNotOwned", "EndpointNotAllowed", "InvalidSecretRef"}
UNRELATED = ("postgres-credentials", "ingress-tls", "db-rotation", "db-api-key")
METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
QUERY = 'sum(rate(http_requests_total{code="401"}[1m]))'
REFUSE_S, ROTATE_S = 30, 120  # deadlines: a refusal; a bootstrap or a rotation


def condition(status, ctype="Ready"):
    return next((c for c in (status or {}).get("conditions") or []
                 if c.get("type") == ctype), {})


def refusal(status):
    """The refusal reason on Ready, or None."""
    c = condition(status)
    return c.get("reason") if c.get("status") == "False" and c.get("reason") in REFUSALS \
        else None


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def pem(tag, value, size):
    """A PEM-looking block of about `size` bytes with `value` in its first line."""
    body = b64((value + "\n") * (size // (len(value) + 1) + 1))[:size]
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (tag, "\n".join(lines), tag)


class Attacks(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.root = krtest.mkdtemp("kr-attacks-")
        cls.c = cls.ctl = None
        cls.servers = []
        cls.old_pod_ns = os.environ.get("POD_NAMESPACE")
        try:
            cls._up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _up(cls):
        out = subprocess.run([e2e_lib.binary(), "run", "--help"], capture_output=True,
                             text=True, timeout=20)
        cls.run_help = out.stdout + out.stderr
        # What the attacker must never get at (each searched raw, base64, SHA-256, key id).
        cls.secret_canaries = {
            "postgres password": al.canary("pg"),
            "tls.crt line": al.canary("crt"),
            "tls.key line": al.canary("tlskey"),
            "db-rotation pending": "sk_" + al.canary("dbpending"),
            "db-rotation previous": "sk_" + al.canary("dbprevious"),
            "db-api-key": "sk_" + al.canary("dbkey"),
            "valkey password": al.canary("valkeypw"),
        }
        cls.team_a_key = "sk_" + al.canary("teama")
        cls.banner = "BANNER-canary-" + os.urandom(4).hex()
        cls.c = cluster.Cluster(cls.root, namespace=TEAM_B, deploy=False,
                                valkey_password=cls.secret_canaries["valkey password"])
        cls.c.__enter__()
        cls.install_crds()
        cls.admin_objects()
        cls.team_b_secrets()
        cls.valkey = al.RecordingValkey()
        cls.http = al.RecordingHTTP(cls.banner)
        cls.outside = al.RecordingHTTP(cls.banner, host="127.0.0.2")  # not in the allowlist
        cls.servers = [cls.valkey, cls.http, cls.outside]
        cls.store_before = cls.dump()
        cls.fx = types.SimpleNamespace(kubeconfig=cls.c.kubeconfig, namespace=TEAM_B,
                                       controllers=[])
        extra = ["--keystore-check-interval", "1s", "--resync-period", "10s",
                 "--keystore-timeout", "2s", "--log-level", "debug"]
        cls.has_egress_flag = "--allowed-endpoints" in cls.run_help
        if cls.has_egress_flag:  # 169.0.0.0/8 is wider than link-local: still refused
            extra += ["--allowed-endpoints", "127.0.0.1/32,169.0.0.0/8"]
        if "--controller-namespace" in cls.run_help:
            extra += ["--controller-namespace", SYSTEM]
        os.environ["POD_NAMESPACE"] = SYSTEM  # how the Deployment tells it, for any binary
        cls.ctl = e2e_lib.Controller(cls.fx, cls.root, instance="security", extra=extra)
        cls.ctl.start()

    @classmethod
    def tearDownClass(cls):
        if cls.ctl is not None:
            cls.ctl.stop()
        for s in cls.servers:
            s.close()
        if cls.c is not None:
            cls.c.down()
        if cls.old_pod_ns is None:
            os.environ.pop("POD_NAMESPACE", None)
        else:
            os.environ["POD_NAMESPACE"] = cls.old_pod_ns
        krtest.rmtree(cls.root)

    # ---- the cluster as an administrator set it up ----
    @classmethod
    def api_ok(cls, method, path, body=None, ctype="application/json", codes=(200, 201)):
        return cls.c.api_ok(method, path, body, ctype, codes)

    @classmethod
    def install_crds(cls):
        """Every CRD of crds/ (the cluster registered the KeyRotation one)."""
        for fn in sorted(os.listdir(os.path.join(REPO, "crds"))):
            if not fn.endswith((".yaml", ".yml")):
                continue
            with open(os.path.join(REPO, "crds", fn)) as f:
                docs = simulator.kyaml.load_all(f.read())
            for crd in docs:
                if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                    continue
                name = crd["metadata"]["name"]
                if cls.c.api("GET", CRD_PATH + "/" + name)[0] == 200:
                    continue
                cls.api_ok("POST", CRD_PATH, crd)
                plural, group = crd["spec"]["names"]["plural"], crd["spec"]["group"]
                version = crd["spec"]["versions"][0]["name"]
                cluster.wait_for(lambda: cls.c.api("GET", "/apis/%s/%s/%s" % (
                    group, version, plural))[0] == 200, 30, "CRD %s served" % name)

    @classmethod
    def admin_objects(cls):
        """Namespaces, the shared store's password, the ClusterKeyStores, team-a's KeyStore
        and team-a's key, stored as team-a's own KeyRotation would have stored it."""
        cls.api_ok("POST", NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": TEAM_A, "labels": {"team": "a"}}})
        cls.api_ok("POST", NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": SYSTEM}})
        cls.api_ok("PATCH", NAMESPACES + "/" + TEAM_B, {"metadata": {"labels": {"team": "b"}}},
                   MERGE)
        cls.api_ok("POST", SECRETS % SYSTEM, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "valkey-auth"},
            "data": {"password": b64(cls.secret_canaries["valkey password"])}})
        cls.valkey_addr = "127.0.0.1:%d" % cls.c.valkey_port
        auth = {"namespace": SYSTEM, "name": "valkey-auth", "key": "password"}
        cls.api_ok("POST", CKS, {
            "apiVersion": "keyrotator.io/v1alpha1", "kind": "ClusterKeyStore",
            "metadata": {"name": SHARED},
            "spec": {"address": cls.valkey_addr, "passwordSecretRef": auth, "layout": LAYOUT,
                     "allowedNamespaces": {"names": [TEAM_A, TEAM_B]}}})
        cls.api_ok("POST", CKS, {
            "apiVersion": "keyrotator.io/v1alpha1", "kind": "ClusterKeyStore",
            "metadata": {"name": TEAM_A_ONLY},
            "spec": {"address": cls.valkey_addr, "passwordSecretRef": auth,
                     "layout": PRIVATE_LAYOUT,
                     "allowedNamespaces": {"names": [TEAM_A],
                                           "selector": {"matchLabels": {"team": "a"}}}}})
        cls.api_ok("POST", KS % TEAM_A, {
            "apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyStore",
            "metadata": {"name": TEAM_A_STORE},
            "spec": {"address": cls.valkey_addr, "layout": PRIVATE_LAYOUT}})
        member = hashlib.sha256(cls.team_a_key.encode()).hexdigest()
        v = cls.c.valkey()
        try:
            v.command("SADD", "team-a:api_keys:active", member)
            v.hset("team-a:api_key:%s:meta" % member, "id", al.key_id(cls.team_a_key),
                   "label", "team-a", "status", "active", "created_at", "2024-01-01T00:00:00Z")
            v.command("SET", "team-a:team-a-api:api_keys:bootstrap", al.key_id(cls.team_a_key))
        finally:
            v.close()

    @classmethod
    def team_b_secrets(cls):
        """Secrets in team-b that no KeyRotation has any business with, and db-api-key, the
        consumers' Secret of KeyRotation `db` (opted in for it)."""
        k = cls.secret_canaries
        crt = pem("CERTIFICATE", k["tls.crt line"], 8192)  # over the 4 KiB key limit
        tls_key = pem("PRIVATE KEY", k["tls.key line"], 1200)
        for name, typ, data, ann in (
                ("postgres-credentials", "Opaque",
                 {"username": "postgres", "password": k["postgres password"]}, {}),
                ("ingress-tls", "kubernetes.io/tls", {"tls.crt": crt, "tls.key": tls_key}, {}),
                ("db-rotation", "Opaque", {"pending": k["db-rotation pending"],
                                           "previous": k["db-rotation previous"]}, {}),
                ("db-api-key", "Opaque", {"API_KEY": k["db-api-key"]}, {OPT_IN: "db"})):
            cls.api_ok("POST", SECRETS % TEAM_B, {
                "apiVersion": "v1", "kind": "Secret", "type": typ,
                "metadata": {"name": name, "annotations": ann},
                "data": {key: b64(v) for key, v in data.items()}})
        cls.unrelated_before = {n: cls.secret_state(n) for n in UNRELATED}

    @classmethod
    def secret_state(cls, name):
        s = cls.api_ok("GET", SECRETS % TEAM_B + "/" + name)
        return {"data": s.get("data"), "resourceVersion": s["metadata"]["resourceVersion"]}

    @classmethod
    def dump(cls):
        v = cls.c.valkey()
        try:
            return al.dump_store(v)
        finally:
            v.close()

    # ---- KeyRotations ----
    def spec(self, name, store=(("ClusterKeyStore", SHARED)), secret=None, key="API_KEY",
             workload="attacker-app", **extra):
        s = {"secretRef": {"name": secret or name + "-key", "key": key},
             "key": {"prefix": "sk_", "bytes": 32},
             "stages": [{"name": "app", "timeout": "60s",
                         "workloads": [{"kind": "Deployment", "name": workload}]}],
             "validationPeriod": "1s"}
        if store is not None:
            s["keyStoreRef"] = {"kind": store[0], "name": store[1]}
        s.update(extra)
        return s

    def create_kr(self, name, spec):
        self.api_ok("POST", KRS % TEAM_B, {
            "apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
            "metadata": {"name": name, "namespace": TEAM_B}, "spec": spec})

    def workload(self, name, secret=None):
        """A consumer Deployment `name` that reads <name>-key/API_KEY, or secret/API_KEY
        (pending until the controller creates that Secret)."""
        self.c.create_deployment(name, "sim/client", [
            {"name": "API_URL", "value": "http://127.0.0.1:%d" % krtest.free_port()},
            {"name": "NAME", "value": name}, {"name": "RATE", "value": "0.2"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                "name": secret or name + "-key", "key": "API_KEY"}}}])

    def kr(self, name, ns=TEAM_B):
        return self.api_ok("GET", KRS % ns + "/" + name)

    def status(self, name):
        return self.kr(name).get("status") or {}

    def events(self, name):
        items = self.api_ok("GET", "/api/v1/namespaces/%s/events" % TEAM_B).get("items") or []
        return [e for e in items if (e.get("involvedObject") or {}).get("kind") == "KeyRotation"
                and e["involvedObject"].get("name") == name]

    def wait_status(self, name, pred, timeout, what):
        last = {}

        def check():
            last["st"] = self.status(name)
            return last["st"] if pred(last["st"]) else None
        try:
            return cluster.wait_for(check, timeout, what)
        except TimeoutError as e:
            raise AssertionError("%s (KeyRotation %s); last status: %s; Events: %s" % (
                e, name, json.dumps(last.get("st"), sort_keys=True),
                [(x["reason"], x["message"][:200]) for x in self.events(name)])) from None

    def assert_refused(self, name, reason, needles, timeout=REFUSE_S):
        """Ready=False with `reason` and a Warning Event with `reason`; both messages contain
        every string of `needles` (what to add)."""
        st = self.wait_status(name, lambda st: refusal(st) is not None, timeout,
                              "a refusal with reason %s" % reason)
        c = condition(st)
        self.assertEqual((c.get("status"), c.get("reason")), ("False", reason),
                         "KeyRotation %s: Ready condition %s" % (name, c))
        for n in needles:
            self.assertIn(n, c.get("message", ""),
                          "KeyRotation %s: the Ready message does not name %r" % (name, n))
        try:
            evs = cluster.wait_for(lambda: [e for e in self.events(name) if
                                            e.get("type") == "Warning" and
                                            e.get("reason") == reason], 15,
                                   "a Warning Event %s about %s" % (reason, name))
        except TimeoutError as e:
            self.fail("%s; Events: %s" % (e, [(x.get("type"), x.get("reason"))
                                              for x in self.events(name)]))
        for n in needles:
            self.assertTrue(any(n in e.get("message", "") for e in evs),
                            "KeyRotation %s: no %s Event message names %r: %s" % (
                                name, reason, n, [e.get("message") for e in evs]))
        return st

    def provoke(self, names, timeout=ROTATE_S):
        """Make each KeyRotation use what its spec names: refused at once, or bootstrapped
        first, then asked for a Manual rotation (the analysis baseline is measured before
        any key is made; verify runs after the revoke). {name: rotate annotation value}."""
        asked = {}
        for n in names:
            st = self.wait_status(
                n, lambda st: refusal(st) or ((st.get("currentKey") or {}).get("id") and
                                              st.get("phase") in ("Idle", "Failed")),
                timeout, "a refusal or a bootstrapped key")
            if refusal(st):
                continue
            asked[n] = "attack-%.6f" % time.time()
            self.api_ok("PATCH", KRS % TEAM_B + "/" + n, {"metadata": {"annotations": {
                "keyrotator.io/rotate": asked[n]}}}, MERGE)
        return asked

    # ---- what the attacker's servers and the shared store got ----
    # db-api-key opted in for KeyRotation `db`: its key's id and hash belong in the shared
    # store and in team-b's status and Events. Its raw value never appears anywhere.
    OWN_KEY_FORMS = {("db-api-key", "sha256"), ("db-api-key", "key id")}

    def assert_no_leak(self, text, where, needles=None, own_key_ok=False):
        leaks = al.find_leaks(text, needles if needles is not None else self.secret_canaries)
        if own_key_ok:
            leaks = [x for x in leaks if x not in self.OWN_KEY_FORMS]
        self.assertFalse(leaks, "%s holds %s" % (where, leaks))

    def assert_http_clean(self, server, prefix=None, no_request=False):
        reqs = server.requests_under(prefix) if prefix else server.snapshot()[0]
        for r in reqs:
            self.assert_no_leak(al.RecordingHTTP.text(r), "request %r to the recording "
                                "HTTP server" % r[0])
        if no_request:
            self.assertEqual([r[0] for r in reqs], [],
                             "the recording HTTP server got requests under %s" % prefix)

    def assert_fake_valkey_untouched(self):
        data, conns = self.valkey.received()
        self.assert_no_leak(data, "the fake Valkey's input")
        self.assertEqual((conns, data[:200]), (0, b""),
                         "the attacker's Valkey was contacted")

    def assert_store_clean(self):
        text = al.dump_text(self.dump())
        self.assert_no_leak(text, "the shared key store", own_key_ok=True)
        self.assert_no_leak(text, "the shared key store", {"team-a key!": self.team_a_key})

    def assert_team_a_unchanged(self):
        now = self.dump()
        before = {k: v for k, v in self.store_before.items() if k.startswith("team-a:")}
        self.assertEqual({k: v for k, v in now.items() if k.startswith("team-a:")}, before,
                         "team-a's keys in the shared store changed")

    def assert_secret_unchanged(self, name):
        self.assertEqual(self.secret_state(name), self.unrelated_before[name],
                         "Secret team-b/%s changed (data or resourceVersion)" % name)

    # ---- the attacks ----
    def test_01_inline_key_store_at_attackers_valkey(self):
        """(a) Inline keyStore at the attacker's Valkey, plaintext, with the postgres password
        as both the key to adopt and the AUTH password: refused, the Valkey gets 0 bytes."""
        ref = {"name": "postgres-credentials", "key": "password"}
        spec = self.spec("a01-inline", store=None, secret="postgres-credentials",
                         key="password")
        spec["keyStore"] = {"address": self.valkey.addr, "storeAs": "plaintext",
                            "activeSet": "team-a:api_keys:active", "passwordSecretRef": ref}
        self.create_kr("a01-inline", spec)
        self.assert_refused("a01-inline", "InlineKeyStoreNotAllowed", ["keyStoreRef"])
        self.assert_fake_valkey_untouched()
        self.assert_secret_unchanged("postgres-credentials")
        self.assert_no_leak(json.dumps([self.kr("a01-inline"), self.events("a01-inline")]),
                            "KeyRotation a01-inline")
        # Gone, so that attack 2 (the same Secret) meets no SecretConflict with it.
        self.delete_kr("a01-inline")

    def delete_kr(self, name):
        self.api_ok("DELETE", KRS % TEAM_B + "/" + name, codes=(200, 202))
        cluster.wait_for(lambda: self.c.api("GET", KRS % TEAM_B + "/" + name)[0] == 404, 30,
                         "KeyRotation %s to go" % name)

    def test_02_secret_not_opted_in_postgres(self):
        """(a) secretRef at postgres-credentials/password through the shared store: refused;
        neither the fake Valkey nor the shared store sees the password (nor its SHA-256)."""
        self.create_kr("a02-pg", self.spec("a02-pg", secret="postgres-credentials",
                                           key="password"))
        self.assert_refused("a02-pg", "SecretNotOptedIn", [
            "postgres-credentials", "%s: a02-pg" % OPT_IN])
        self.assert_store_clean()
        self.assert_fake_valkey_untouched()
        self.assert_secret_unchanged("postgres-credentials")

    def test_03_secret_not_opted_in_tls_crt(self):
        """(b) secretRef at ingress-tls/tls.crt (over the key size limit, so once read as "no
        key" and overwritten by a bootstrap): refused; data and resourceVersion unchanged."""
        self.create_kr("a03-tls", self.spec("a03-tls", secret="ingress-tls", key="tls.crt"))
        self.assert_refused("a03-tls", "SecretNotOptedIn", [
            "ingress-tls", "%s: a03-tls" % OPT_IN])
        self.assert_secret_unchanged("ingress-tls")

    def test_04_rotation_secret_not_owned(self):
        """(b) KeyRotation `db` with an opted-in consumers' Secret, while Secret db-rotation
        exists and is not its own. With no rotation in flight the controller does not read
        db-rotation (issue 19: a first start reads only the consumers' Secret), so `db` adopts
        its own Secret's key; the rotation asked for then is refused before db-rotation is
        used: db-rotation and db-api-key unchanged, nothing of db-rotation stored."""
        self.workload("db", secret="db-api-key")
        self.create_kr("db", self.spec("db", secret="db-api-key", workload="db"))
        self.provoke(["db"])
        self.assert_refused("db", "RotationSecretNotOwned", ["db-rotation", "ownerReference"])
        self.assert_secret_unchanged("db-rotation")
        self.assert_secret_unchanged("db-api-key")
        self.assert_store_clean()

    def test_05_credential_secrets_not_opted_in(self):
        """(a) postgres-credentials as Prometheus bearer token, basic auth password, scrape CA
        (URL: the recording server): refused; the server gets no request carrying it (none
        at all: credentials are checked before any request)."""
        ref = {"name": "postgres-credentials", "key": "password"}
        cases = {
            "a05-bearer": ({"prometheus": {"url": self.http.url + "/a05-bearer",
                                           "query": QUERY, "bearerTokenSecretRef": ref}},
                           "bearerTokenSecretRef"),
            "a05-basic": ({"prometheus": {"url": self.http.url + "/a05-basic", "query": QUERY,
                                          "basicAuth": {"username": "admin",
                                                        "passwordSecretRef": ref}}},
                          "basicAuth.passwordSecretRef"),
            "a05-ca": ({"scrape": {"url": self.http.url + "/a05-ca/metrics",
                                   "metric": "http_requests_total", "labels": {"code": "401"},
                                   "caSecretRef": ref}}, "caSecretRef"),
        }
        for name, (analysis, _) in cases.items():
            self.analysis_kr(name, analysis)
        self.provoke(cases)
        for name, (_, field) in cases.items():
            with self.subTest(name):
                self.assert_refused(name, "CredentialSecretNotOptedIn", [
                    field, "postgres-credentials", "%s: %s" % (OPT_IN, name)], ROTATE_S)
                self.assert_http_clean(self.http, "/" + name)
                self.assert_http_clean(self.http, "/" + name, no_request=True)
        self.assert_secret_unchanged("postgres-credentials")

    def test_06_verify_ca_not_opted_in(self):
        """(a) verify.url at the recording server with caSecretRef postgres-credentials:
        refused; no request to it carries the password (none at all)."""
        name = "a06-verify"
        self.workload(name)
        self.create_kr(name, self.spec(name, workload=name, verify={
            "url": self.http.url + "/a06-verify/api/v1/ping", "header": "X-API-Key",
            "caSecretRef": {"name": "postgres-credentials", "key": "password"}}))
        self.provoke([name])
        self.assert_refused(name, "CredentialSecretNotOptedIn", [
            "verify.caSecretRef", "postgres-credentials", "%s: %s" % (OPT_IN, name)],
            ROTATE_S)
        self.assert_http_clean(self.http, "/" + name)
        self.assert_http_clean(self.http, "/" + name, no_request=True)

    def test_07_cluster_key_store_not_allowed(self):
        """(c) keyStoreRef to a ClusterKeyStore that allows only team-a (by name and by
        label selector): refused; nothing written for team-b under its layout."""
        name = "a07-other-team"
        self.create_kr(name, self.spec(name, store=("ClusterKeyStore", TEAM_A_ONLY)))
        self.assert_refused(name, "KeyStoreNotAllowed", [TEAM_A_ONLY, TEAM_B,
                                                         "allowedNamespaces"])
        self.assertEqual([k for k in self.dump() if "private" in k], [],
                         "keys written under the team-a-only layout")

    def test_08_key_store_not_found(self):
        """keyStoreRef to a KeyStore that does not exist in team-b (one of that name exists in
        team-a) and to a ClusterKeyStore that does not exist: refused."""
        self.create_kr("a08-ks", self.spec("a08-ks", store=("KeyStore", TEAM_A_STORE)))
        self.create_kr("a08-cks", self.spec("a08-cks", store=("ClusterKeyStore", "no-such")))
        self.assert_refused("a08-ks", "KeyStoreNotFound", ["%s/%s" % (TEAM_B, TEAM_A_STORE)])
        self.assert_refused("a08-cks", "KeyStoreNotFound", ["ClusterKeyStore", "no-such"])
        self.assertEqual([k for k in self.dump() if "private" in k], [])

    def test_09_legitimate_team_b_rotation(self):
        """(c) team-b's own KeyRotation on the shared store bootstraps and rotates; it writes
        under team-b: only, and team-a's set gains no member."""
        name = "team-b-api"
        self.workload(name)
        self.create_kr(name, self.spec(name, workload=name))
        st = self.wait_status(name, lambda st: (st.get("currentKey") or {}).get("id") and
                              st.get("phase") == "Idle", ROTATE_S, "the bootstrap")
        first = self.consumer_key(name)
        self.assertEqual(st["currentKey"]["id"], al.key_id(first))
        self.assert_member(first, True)
        self.assert_team_a_unchanged()
        n, ask = len(st.get("history") or []), "legit-%.6f" % time.time()
        self.api_ok("PATCH", KRS % TEAM_B + "/" + name, {"metadata": {"annotations": {
            "keyrotator.io/rotate": ask}}}, MERGE)
        st = self.wait_status(name, lambda st: st.get("lastHandledRequest") == ask and
                              len(st.get("history") or []) > n and
                              st.get("phase") == "Idle" and not st.get("pendingKey"),
                              ROTATE_S, "the rotation")
        self.assertEqual(st["history"][-1].get("outcome"), "Succeeded", st["history"])
        second = self.consumer_key(name)
        self.assertNotEqual(first, second)
        self.assert_member(second, True)
        self.assert_member(first, False)
        self.assert_team_a_unchanged()
        dump = self.dump()
        self.assertEqual(sorted(k for k in dump if not k.startswith(("team-a:", "team-b:"))),
                         [], "keys outside the {namespace} layouts")
        self.assertEqual(dump.get("team-b:api_key:%s:meta" % self.member(first), {}).get(
            b"status"), b"revoked")
        # (b) Another KeyRotation naming team-b-api's Secret: refused, and team-b-api keeps
        # its Secret and stays Ready.
        secret = self.api_ok("GET", SECRETS % TEAM_B + "/" + name + "-key")
        self.create_kr("a09-steal", self.spec("a09-steal", secret=name + "-key"))
        st = self.wait_status("a09-steal", lambda st: condition(st).get("status") == "False",
                              REFUSE_S, "a refusal")
        self.assertIn(condition(st).get("reason"), ("SecretNotOptedIn", "SecretConflict"), st)
        before = self.ctl.metric("keyrotator_reconcile_total") or 0
        self.api_ok("PATCH", KRS % TEAM_B + "/" + name, {"metadata": {"annotations": {
            "security-test/touch": "%.6f" % time.time()}}}, MERGE)  # look at it again
        cluster.wait_for(lambda: (self.ctl.metric("keyrotator_reconcile_total") or 0) >=
                         before + 2, 30, "two more reconciles")
        self.assertEqual(condition(self.status(name)).get("status"), "True",
                         "team-b-api is no longer Ready: %s" % self.status(name))
        self.assertEqual(self.api_ok("GET", SECRETS % TEAM_B + "/" + name + "-key")["metadata"]
                         ["resourceVersion"], secret["metadata"]["resourceVersion"])

    def consumer_key(self, name):
        s = self.api_ok("GET", SECRETS % TEAM_B + "/" + name + "-key")
        return base64.b64decode(s["data"]["API_KEY"]).decode()

    @staticmethod
    def member(key):
        return hashlib.sha256(key.encode()).hexdigest()

    def assert_member(self, key, present):
        v = self.c.valkey()
        try:
            sets = {s: v.command("SISMEMBER", s, self.member(key))
                    for s in ("team-a:api_keys:active", "team-b:api_keys:active")}
        finally:
            v.close()
        self.assertEqual(sets, {"team-a:api_keys:active": 0,
                                "team-b:api_keys:active": 1 if present else 0},
                         "membership of key %s" % al.key_id(key))

    def analysis_kr(self, name, analysis):
        """A KeyRotation on the shared store with `analysis` (fast limits) and its own
        consumer Deployment, so that it can bootstrap and then rotate."""
        analysis.update({"interval": "1s", "errorLimit": 1, "failureLimit": 1})
        self.workload(name)
        self.create_kr(name, self.spec(name, workload=name, analysis=analysis))

    def wait_tried(self, name, asked, server):
        """The Manual rotation asked of `name` has ended (phase Idle or Failed) after at
        least one request under /<name> reached `server`; its status."""
        self.assertIn(name, asked, "KeyRotation %s refused: %s" % (
            name, condition(self.status(name))))
        return self.wait_status(
            name, lambda st: st.get("lastHandledRequest") == asked[name] and
            st.get("phase") in ("Idle", "Failed") and not st.get("pendingKey") and
            server.requests_under("/" + name), ROTATE_S,
            "the analysis to be tried and the rotation to end")

    def test_10a_metadata_endpoint(self):
        """(d) analysis at the cloud metadata address, also spelled in hex and as an
        IPv4-mapped IPv6 address: refused, although --allowed-endpoints lists 169.0.0.0/8
        (link-local needs a CIDR as narrow as its own block)."""
        cases = {"a10-metadata": (METADATA_URL, ["169.254.169.254", "--allowed-endpoints"]),
                 "a10-metadata-hex": ("http://0xA9FEA9FE/latest/meta-data/",
                                      ["--allowed-endpoints"]),
                 "a10-metadata-v6": ("http://[::ffff:169.254.169.254]/latest/meta-data/",
                                     ["--allowed-endpoints"])}
        for name, (url, _) in cases.items():
            self.analysis_kr(name, {"prometheus": {"url": url, "query": QUERY}})
        self.provoke(cases)
        for name, (_, needles) in cases.items():
            with self.subTest(name):
                self.assert_refused(name, "EndpointNotAllowed", needles, ROTATE_S)

    def test_10b_endpoint_outside_allowlist(self):
        """(d) with --allowed-endpoints 127.0.0.1/32, a scrape URL at 127.0.0.2 (a recording
        server listens there): refused; an allowed URL that redirects there: not followed.
        That server sees no connection at all."""
        with self.subTest("the flag"):
            self.assertTrue(self.has_egress_flag, "keyrotator run has no --allowed-endpoints")
        self.http.redirect_to = self.outside.url + "/a10-redirect/metrics"
        self.analysis_kr("a10-outside", {"scrape": {
            "url": self.outside.url + "/a10-outside/metrics",
            "metric": "http_requests_total", "labels": {"code": "401"}}})
        self.analysis_kr("a10-redirect", {"scrape": {
            "url": self.http.url + "/a10-redirect/redirect/metrics",
            "metric": "http_requests_total", "labels": {"code": "401"}}})
        asked = self.provoke(["a10-outside", "a10-redirect"])
        with self.subTest("refusal"):
            self.assert_refused("a10-outside", "EndpointNotAllowed",
                                ["127.0.0.2", "--allowed-endpoints"], ROTATE_S)
        with self.subTest("redirect"):
            st = self.wait_tried("a10-redirect", asked, self.http)
            self.assert_no_leak(json.dumps([st, self.events("a10-redirect")]),
                                "KeyRotation a10-redirect", {"banner!": self.banner})
        with self.subTest("no connection"):
            reqs, conns = self.outside.snapshot()
            self.assertEqual((conns, [r[0] for r in reqs]), (0, []),
                             "the server outside --allowed-endpoints was contacted")

    def test_11_server_text_never_in_status(self):
        """(d) allowed analysis URLs answering 500, HTML, a Prometheus error and metrics junk,
        each carrying the banner canary (body and headers): the requests are made, and neither
        the status nor any Event carries the banner."""
        cases = {
            "a11-http500": {"prometheus": {"url": self.http.url + "/a11-http500/http500",
                                           "query": QUERY}},
            "a11-html": {"prometheus": {"url": self.http.url + "/a11-html/html",
                                        "query": QUERY}},
            "a11-promerror": {"prometheus": {"url": self.http.url + "/a11-promerror/promerror",
                                             "query": QUERY}},
            "a11-junk": {"scrape": {"url": self.http.url + "/a11-junk/junk/metrics",
                                    "metric": "http_requests_total",
                                    "labels": {"code": "401"}}},
        }
        for name, analysis in cases.items():
            self.analysis_kr(name, analysis)
        asked = self.provoke(cases)
        for name in cases:
            with self.subTest(name):
                st = self.wait_tried(name, asked, self.http)
                self.assertIsNone(refusal(st), st)
                evs = self.events(name)
                self.assertTrue([e for e in evs if e.get("type") == "Warning"],
                                "no Warning Event about the failed analysis of %s" % name)
                text = json.dumps({"status": st, "events": evs})
                self.assert_no_leak(text, "KeyRotation %s status/Events" % name,
                                    {"banner!": self.banner})
                if name == "a11-http500":
                    self.assertIn("500", json.dumps([e.get("message") for e in evs]),
                                  "the Events do not say the server answered HTTP 500")

    # ---- after everything ----
    def test_99_aftermath(self):
        """Every unrelated Secret keeps data and resourceVersion; team-a's keys are as they
        were; no canary reached the attacker's servers, the shared store, any status, Event
        or the controller's log; the controller still runs and /healthz answers 200."""
        for n in UNRELATED:
            with self.subTest(secret=n):
                self.assert_secret_unchanged(n)
        with self.subTest("key store"):
            self.assert_team_a_unchanged()
            self.assert_store_clean()
            dump = self.dump()
            self.assertEqual([k for k in dump if "private" in k or
                              not k.startswith(("team-a:", "team-b:"))], [])
        with self.subTest("attacker's servers"):
            self.assert_fake_valkey_untouched()
            self.assert_http_clean(self.http)
            self.assertEqual(self.outside.snapshot(), ([], 0))
        everything = {}
        for ns in (TEAM_A, TEAM_B, SYSTEM, "default"):
            everything["events " + ns] = self.api_ok("GET", "/api/v1/namespaces/%s/events" % ns)
            everything["keyrotations " + ns] = self.api_ok("GET", KRS % ns)
            everything["keystores " + ns] = self.api_ok("GET", KS % ns)
        everything["clusterkeystores"] = self.api_ok("GET", CKS)
        if os.environ.get("KR_ATTACKS_VERBOSE"):  # what each KeyRotation says, for a review
            for kr in everything["keyrotations " + TEAM_B].get("items") or []:
                c = condition(kr.get("status"))
                print("\n%s: Ready=%s %s: %s" % (kr["metadata"]["name"], c.get("status"),
                                                 c.get("reason"), c.get("message")),
                      file=sys.stderr)
            for e in everything["events " + TEAM_B].get("items") or []:
                print("event %s %s %s: %s" % (e["involvedObject"].get("name"), e.get("type"),
                                              e.get("reason"), e.get("message")),
                      file=sys.stderr)
        needles = dict(self.secret_canaries, **{"banner!": self.banner,
                                                "team-a key": self.team_a_key})
        for where, obj in everything.items():
            with self.subTest(where):
                self.assert_no_leak(json.dumps(obj), where, needles,
                                    own_key_ok=where in ("events " + TEAM_B,
                                                         "keyrotations " + TEAM_B))
        with self.subTest("controller log"):
            with open(self.ctl.log_path, errors="replace") as f:
                self.assert_no_leak(f.read(), "the controller log", own_key_ok=True)
        with self.subTest("controller"):
            self.assertIsNone(self.ctl.proc.poll(), "keyrotator run exited")
            self.assertEqual(self.ctl.get(self.ctl.health_port, "/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
