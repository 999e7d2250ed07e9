"""The CRDs (KeyRotation, KeyStore, ClusterKeyStore: every file in crds/), checked the way
users meet them: served by an API server that validates custom resources (tests/kubeapi,
held to a real kube-apiserver's behaviour), every object of every example in
manifests/examples/ is accepted with the CRD's defaults applied, and invalid objects are
refused with 422 naming the field. Also: every field is described, so `kubectl explain`
teaches the API, and every string and list of the key store API is bounded."""

import copy
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
import kubeapi_testlib as kt

CRDS = os.path.join(REPO, "crds")
CRD = os.path.join(CRDS, "keyrotator.io_keyrotations.yaml")
KEYSTORE_CRD = os.path.join(CRDS, "keyrotator.io_keystores.yaml")
CLUSTER_KEYSTORE_CRD = os.path.join(CRDS, "keyrotator.io_clusterkeystores.yaml")
EXAMPLES = os.path.join(REPO, "manifests", "examples")
API = "/apis/keyrotator.io/v1alpha1"
EXACTLY_ONE_STORE = "set exactly one of spec.keyStoreRef and spec.keyStore"
LAYOUT_DEFAULTS = {"activeSet": "api_keys:active", "metaKey": "api_key:{id}:meta",
                   "bootstrapKey": "api_keys:bootstrap", "storeAs": "sha256"}
YAML2JSON = os.environ.get("KR_YAML2JSON", "yaml2json")
# The size bounds controller/rotation/spec.c checks too; the CRD's header works out the
# largest KeyRotation they allow.
MAX_STAGES, MAX_STAGE_WORKLOADS, MAX_WORKLOADS = 32, 64, 64
PAGE, RESPONSE_CAP = 500, 64 << 20


def load_yaml(path):
    """Documents of a YAML file, through the product's own YAML parser."""
    out = subprocess.run([YAML2JSON, path], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def crd_files():
    return sorted(os.path.join(CRDS, f) for f in os.listdir(CRDS) if f.endswith(".yaml"))


def example_docs():
    """(file name, document) of every example, in file order."""
    names = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".yaml"))
    return [(name, doc) for name in names for doc in load_yaml(os.path.join(EXAMPLES, name))]


def path_of(obj):
    """The collection URL an object is created at."""
    kind, ns = obj["kind"], obj["metadata"].get("namespace", "default")
    if kind == "ClusterKeyStore":
        return f"{API}/clusterkeystores"
    plural = {"KeyRotation": "keyrotations", "KeyStore": "keystores"}.get(kind)
    if plural:
        return f"{API}/namespaces/{ns}/{plural}"
    if kind == "Secret":
        return f"/api/v1/namespaces/{ns}/secrets"
    raise AssertionError(f"no URL for kind {kind}")


def base_object():
    return {
        "apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
        "metadata": {"name": "base", "namespace": "default"},
        "spec": {
            "secretRef": {"name": "api-key", "key": "API_KEY"},
            "keyStore": {"address": "valkey.default.svc:6379"},
            "stages": [{"name": "api", "workloads": [{"kind": "Deployment", "name": "api"}]}],
        },
    }


def mutate(path, value):
    """A base object with spec[path] set (value None deletes)."""
    obj = base_object()
    node = obj["spec"]
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    last = keys[-1]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return obj


def scrape(**fields):
    """An analysis block scraping /metrics, with `fields` added to the scrape."""
    return {"scrape": {"url": "http://a:8080/metrics", "metric": "m", **fields}}


def stages(n, per):
    """`n` stages of `per` Deployments each."""
    return [{"name": f"s{i}", "workloads": [{"kind": "Deployment", "name": f"s{i}w{j}"}
                                            for j in range(per)]} for i in range(n)]


def dns_name(n):
    """A DNS subdomain of exactly `n` characters: labels of 61, dot-separated."""
    name = ["a"] * n
    for i in range(61, n - 1, 62):
        name[i] = "."
    return "".join(name)


def long_duration(n):
    """A valid Go duration of exactly `n` characters: 0...01s."""
    return "0" * (n - 2) + "1s"


def with_ref(ref):
    """A base object naming a key store by keyStoreRef instead of an inline keyStore."""
    obj = mutate("keyStore", None)
    obj["spec"]["keyStoreRef"] = ref
    return obj


def keystore(kind="KeyStore", name="store", **spec):
    obj = {"apiVersion": "keyrotator.io/v1alpha1", "kind": kind, "metadata": {"name": name},
           "spec": {"address": "valkey.default.svc:6379", **spec}}
    if kind == "KeyStore":
        obj["metadata"]["namespace"] = "default"
    return obj


def selector(*expressions, **labels):
    sel = {}
    if labels:
        sel["matchLabels"] = labels
    if expressions:
        sel["matchExpressions"] = list(expressions)
    return {"selector": sel}


# (what is wrong, KeyStore or ClusterKeyStore, text the 422 must name)
INVALID_STORES = [
    ("no address", {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyStore",
                    "metadata": {"name": "x", "namespace": "default"}, "spec": {}},
     "spec.address"),
    ("address without port", keystore(address="valkey"), "spec.address"),
    ("address too long", keystore(address="a" * 300 + ":6379"), "spec.address"),
    ("database out of range", keystore(database=1024), "spec.database"),
    ("username too long", keystore(username="u" * 129), "spec.username"),
    ("password ref without key", keystore(passwordSecretRef={"name": "auth"}),
     "spec.passwordSecretRef.key"),
    ("password ref without name", keystore(passwordSecretRef={"key": "password"}),
     "spec.passwordSecretRef.name"),
    ("metaKey without {id}", keystore(layout={"metaKey": "{namespace}:meta"}),
     "spec.layout.metaKey"),
    ("activeSet too long", keystore(layout={"activeSet": "s" * 513}), "spec.layout.activeSet"),
    ("bootstrapKey empty", keystore(layout={"bootstrapKey": ""}), "spec.layout.bootstrapKey"),
    ("unknown storeAs", keystore(layout={"storeAs": "md5"}), "spec.layout.storeAs"),
    ("cluster: metaKey without {id}",
     keystore("ClusterKeyStore", layout={"metaKey": "x"}), "spec.layout.metaKey"),
    ("cluster: bad password namespace",
     keystore("ClusterKeyStore", passwordSecretRef={"namespace": "Not_A_Namespace",
                                                    "name": "a", "key": "p"}),
     "spec.passwordSecretRef.namespace"),
    ("cluster: namespace name not a DNS label",
     keystore("ClusterKeyStore", allowedNamespaces={"names": ["team.a"]}),
     "spec.allowedNamespaces.names[0]"),
    ("cluster: too many namespace names",
     keystore("ClusterKeyStore", allowedNamespaces={"names": [f"ns{i}" for i in range(257)]}),
     "spec.allowedNamespaces.names"),
    ("cluster: a namespace named twice",
     keystore("ClusterKeyStore", allowedNamespaces={"names": ["a", "a"]}),
     "spec.allowedNamespaces.names[1]"),
    ("cluster: unknown selector operator",
     keystore("ClusterKeyStore", allowedNamespaces=selector(
         {"key": "team", "operator": "Matches", "values": ["a"]})),
     "spec.allowedNamespaces.selector.matchExpressions[0].operator"),
    ("cluster: selector expression without key",
     keystore("ClusterKeyStore", allowedNamespaces=selector({"operator": "Exists"})),
     "spec.allowedNamespaces.selector.matchExpressions[0].key"),
    ("cluster: In without values",
     keystore("ClusterKeyStore", allowedNamespaces=selector({"key": "team", "operator": "In"})),
     "values must be non-empty for In and NotIn"),
    ("cluster: NotIn with empty values",
     keystore("ClusterKeyStore", allowedNamespaces=selector(
         {"key": "team", "operator": "NotIn", "values": []})),
     "values must be non-empty for In and NotIn"),
    ("cluster: Exists with values",
     keystore("ClusterKeyStore", allowedNamespaces=selector(
         {"key": "team", "operator": "Exists", "values": ["a"]})),
     "and empty for Exists and DoesNotExist"),
    ("cluster: label value too long",
     keystore("ClusterKeyStore", allowedNamespaces=selector(team="v" * 64)),
     "spec.allowedNamespaces.selector.matchLabels.team"),
]


# (what is wrong, object, text the 422 must name)
INVALID = [
    ("secretRef missing", mutate("secretRef", None), "spec.secretRef"),
    ("secret key missing", mutate("secretRef.key", None), "spec.secretRef.key"),
    ("address without port", mutate("keyStore.address", "valkey"), "spec.keyStore.address"),
    ("database out of range", mutate("keyStore.database", 5000), "spec.keyStore.database"),
    ("unknown storeAs", mutate("keyStore.storeAs", "md5"), "spec.keyStore.storeAs"),
    ("metaKey without {id}", mutate("keyStore.metaKey", "api_key:meta"), "spec.keyStore.metaKey"),
    ("prefix with capitals", mutate("key.prefix", "SK-"), "spec.key.prefix"),
    ("too few bytes", mutate("key.bytes", 8), "spec.key.bytes"),
    ("too many bytes", mutate("key.bytes", 65), "spec.key.bytes"),
    ("no stages", mutate("stages", []), "spec.stages"),
    ("stage without workloads", mutate("stages.0", {"name": "api"}), "spec.stages[0].workloads"),
    ("unknown workload kind",
     mutate("stages.0.workloads", [{"kind": "Pod", "name": "p"}]),
     "spec.stages[0].workloads[0].kind"),
    ("bad stage timeout", mutate("stages.0.timeout", "10x"), "spec.stages[0].timeout"),
    ("duplicate stage names",
     mutate("stages", [{"name": "api", "workloads": [{"kind": "Deployment", "name": "a"}]},
                       {"name": "api", "workloads": [{"kind": "Deployment", "name": "b"}]}]),
     "spec.stages[1]"),
    ("both analysis sources",
     mutate("analysis", {"prometheus": {"url": "http://p:9090", "query": "vector(0)"},
                         "scrape": {"url": "http://a:8080/metrics", "metric": "m"}}),
     "exactly one of analysis.prometheus and analysis.scrape"),
    ("no analysis source", mutate("analysis", {"interval": "15s"}),
     "exactly one of analysis.prometheus and analysis.scrape"),
    ("negative threshold",
     mutate("analysis", {"scrape": {"url": "http://a/metrics", "metric": "m"}, "threshold": -1}),
     "spec.analysis.threshold"),
    ("prometheus url not http",
     mutate("analysis", {"prometheus": {"url": "prometheus:9090", "query": "q"}}),
     "spec.analysis.prometheus.url"),
    ("bad maxKeyAge", mutate("maxKeyAge", "90 days"), "spec.maxKeyAge"),
    ("historyLimit too large", mutate("historyLimit", 1000), "spec.historyLimit"),
    ("caSecretRef without key",
     mutate("analysis", {"prometheus": {"url": "http://p:9090", "query": "q",
                                        "caSecretRef": {"name": "ca"}}}),
     "spec.analysis.prometheus.caSecretRef.key"),
    ("bearer token and basic auth together",
     mutate("analysis", {"prometheus": {
         "url": "http://p:9090", "query": "q",
         "bearerTokenSecretRef": {"name": "t", "key": "token"},
         "basicAuth": {"username": "u", "passwordSecretRef": {"name": "p", "key": "pw"}}}}),
     "at most one of bearerTokenSecretRef and basicAuth"),
    ("basicAuth without password",
     mutate("analysis", {"prometheus": {"url": "http://p:9090", "query": "q",
                                        "basicAuth": {"username": "u"}}}),
     "spec.analysis.prometheus.basicAuth.passwordSecretRef"),
    ("scrape caSecretRef with empty name",
     mutate("analysis", {"scrape": {"url": "https://a/metrics", "metric": "m",
                                    "caSecretRef": {"name": "", "key": "ca.crt"}}}),
     "spec.analysis.scrape.caSecretRef.name"),
    ("verify caSecretRef not an object",
     mutate("verify", {"url": "https://a/ping", "caSecretRef": "api-ca"}),
     "spec.verify.caSecretRef"),
    ("both keyStoreRef and keyStore", mutate("keyStoreRef", {"name": "store"}),
     EXACTLY_ONE_STORE),
    ("neither keyStoreRef nor keyStore", mutate("keyStore", None), EXACTLY_ONE_STORE),
    ("keyStoreRef of an unknown kind", with_ref({"kind": "Secret", "name": "s"}),
     "spec.keyStoreRef.kind"),
    ("keyStoreRef without a name", with_ref({"kind": "KeyStore"}), "spec.keyStoreRef.name"),
    ("keyStoreRef name not a DNS name", with_ref({"name": "Store_1"}), "spec.keyStoreRef.name"),
    # size bounds (the CRD's header works out the largest object they allow)
    ("33 stages", mutate("stages", stages(33, 1)), "spec.stages"),
    ("65 workloads in a stage", mutate("stages", stages(1, 65)), "spec.stages[0].workloads"),
    ("workload name not a DNS name",
     mutate("stages.0.workloads", [{"kind": "Deployment", "name": "API_server"}]),
     "spec.stages[0].workloads[0].name"),
    ("workload name of 254", mutate("stages.0.workloads", [{"kind": "Deployment",
                                                           "name": dns_name(254)}]),
     "spec.stages[0].workloads[0].name"),
    ("stage timeout of 65", mutate("stages.0.timeout", long_duration(65)),
     "spec.stages[0].timeout"),
    ("prometheus query of 4097",
     mutate("analysis", {"prometheus": {"url": "http://p:9090", "query": "q" * 4097}}),
     "spec.analysis.prometheus.query"),
    ("prometheus url of 2049",
     mutate("analysis", {"prometheus": {"url": "http://" + "p" * 2042, "query": "q"}}),
     "spec.analysis.prometheus.url"),
    ("scrape url of 2049", mutate("analysis", {"scrape": {"url": "https://" + "s" * 2041,
                                                          "metric": "m"}}),
     "spec.analysis.scrape.url"),
    ("metric of 257", mutate("analysis", {"scrape": {"url": "http://a/metrics",
                                                     "metric": "m" * 257}}),
     "spec.analysis.scrape.metric"),
    ("17 scrape labels", mutate("analysis", scrape(labels={f"l{i}": "v" for i in range(17)})),
     "spec.analysis.scrape.labels"),
    ("scrape label value of 257", mutate("analysis", scrape(labels={"code": "4" * 257})),
     "spec.analysis.scrape.labels"),
    ("scrape label name of 129", mutate("analysis", scrape(labels={"l" * 129: "v"})),
     "label names have at most 128 characters"),
    ("analysis interval of 65",
     mutate("analysis", {**scrape(), "interval": long_duration(65)}), "spec.analysis.interval"),
    ("maxKeyAge of 65", mutate("maxKeyAge", long_duration(65)), "spec.maxKeyAge"),
    ("validationPeriod of 65", mutate("validationPeriod", long_duration(65)),
     "spec.validationPeriod"),
    ("revokeWhenUnusedFor of 65", mutate("revokeWhenUnusedFor", long_duration(65)),
     "spec.revokeWhenUnusedFor"),
    ("verify url of 2049", mutate("verify", {"url": "http://" + "v" * 2042}), "spec.verify.url"),
    ("verify header of 257", mutate("verify", {"url": "http://a/ping", "header": "H" * 257}),
     "spec.verify.header"),
    ("key prefix of 17", mutate("key.prefix", "p" * 17), "spec.key.prefix"),
]


class CRDTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        extra = []
        for path in crd_files():
            extra += ["--crd", path]
        namespaces = {"sirius", "hypercode", "keyrotator-system"}
        namespaces |= {d["metadata"]["namespace"] for _, d in example_docs()
                       if d["metadata"].get("namespace")}
        for ns in sorted(namespaces):
            extra += ["--namespace", ns]
        cls.server = kt.Server(extra=extra)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def create(self, obj):
        return kt.request(self.server, "POST", path_of(obj), obj)

    def test_every_crd_file_is_served(self):
        kinds = {load_yaml(p)[0]["spec"]["names"]["kind"] for p in crd_files()}
        self.assertEqual(kinds, {"KeyRotation", "KeyStore", "ClusterKeyStore"})
        reply = kt.request(self.server, "GET", API)
        self.assertEqual(reply.status, 200, reply.raw)
        served = {r["name"]: r for r in reply.json["resources"]}
        for name in ("keyrotations", "keystores", "clusterkeystores"):
            self.assertIn(name, served)
            self.assertIn(name + "/status", served)
        self.assertTrue(served["keystores"]["namespaced"])
        self.assertFalse(served["clusterkeystores"]["namespaced"])

    def test_examples_are_accepted_with_defaults(self):
        docs = example_docs()
        files = {name for name, _ in docs}
        self.assertGreaterEqual(len(files), 3)
        self.assertIn("cluster-keystore.yaml", files)
        stores = {}  # (kind, namespace or "", name) -> created object
        rotations = []
        for name, doc in docs:
            with self.subTest(example=name, kind=doc["kind"], name=doc["metadata"]["name"]):
                reply = self.create(doc)
                self.assertEqual(reply.status, 201, reply.raw)
                spec = reply.json["spec"]
                if doc["kind"] == "KeyRotation":
                    rotations.append((name, reply.json))
                    self.assertNotIn("keyStore", spec, "examples use keyStoreRef")
                    self.assertEqual(spec["key"]["bytes"],
                                     doc["spec"].get("key", {}).get("bytes", 32))
                    for stage in spec["stages"]:
                        self.assertIn("timeout", stage)
                    self.assertIn("historyLimit", spec)
                elif doc["kind"] in ("KeyStore", "ClusterKeyStore"):
                    ns = reply.json["metadata"].get("namespace", "")
                    stores[(doc["kind"], ns, doc["metadata"]["name"])] = reply.json
                    self.assertEqual(set(spec["layout"]), set(LAYOUT_DEFAULTS))
                    self.assertIn("database", spec)
        # Every KeyRotation names a key store of its own file that lets it in.
        self.assertEqual(len(rotations), len(files))
        for name, kr in rotations:
            with self.subTest(example=name):
                ref = kr["spec"]["keyStoreRef"]
                ns = kr["metadata"]["namespace"]
                key = (ref["kind"], ns if ref["kind"] == "KeyStore" else "", ref["name"])
                self.assertIn(key, stores)
                if ref["kind"] == "ClusterKeyStore":
                    self.assertIn(ns, stores[key]["spec"]["allowedNamespaces"]["names"])
        shared = stores[("ClusterKeyStore", "", "shared-valkey")]["spec"]
        for field in ("activeSet", "metaKey", "bootstrapKey"):
            self.assertTrue(shared["layout"][field].startswith("{namespace}:"), field)
        self.assertEqual(shared["passwordSecretRef"]["namespace"], "keyrotator-system")
        self.assertIn("matchLabels", shared["allowedNamespaces"]["selector"])

    def test_examples_mention_the_secret_annotation(self):
        # A pre-existing consumers' Secret is adopted only with keyrotator.io/keyrotation:
        # <KeyRotation name>; each example says so, for its own KeyRotation.
        for name in sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".yaml")):
            with open(os.path.join(EXAMPLES, name)) as f:
                text = f.read()
            for doc in load_yaml(os.path.join(EXAMPLES, name)):
                if doc["kind"] == "KeyRotation":
                    self.assertIn("keyrotator.io/keyrotation=" + doc["metadata"]["name"],
                                  text, name)

    def test_minimal_object_gets_every_default(self):
        obj = base_object()
        obj["metadata"]["name"] = "minimal"
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        spec = reply.json["spec"]
        self.assertEqual(spec["keyStore"], {
            "address": "valkey.default.svc:6379", "database": 0,
            "activeSet": "api_keys:active", "metaKey": "api_key:{id}:meta",
            "bootstrapKey": "api_keys:bootstrap", "storeAs": "sha256"})
        self.assertEqual(spec["key"], {"prefix": "", "bytes": 32})
        self.assertEqual(spec["stages"][0]["timeout"], "10m")
        self.assertEqual(spec["validationPeriod"], "10m")
        self.assertEqual((spec["dryRun"], spec["suspend"], spec["historyLimit"]), (False, False, 10))

    def test_key_store_ref_alone_is_accepted_kind_defaults_to_key_store(self):
        obj = with_ref({"name": "team-valkey"})
        obj["metadata"]["name"] = "by-ref"
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"]["keyStoreRef"], {"kind": "KeyStore",
                                                            "name": "team-valkey"})
        self.assertNotIn("keyStore", reply.json["spec"])
        obj = with_ref({"kind": "ClusterKeyStore", "name": "shared.valkey"})
        obj["metadata"]["name"] = "by-cluster-ref"
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"]["keyStoreRef"]["kind"], "ClusterKeyStore")

    def test_exactly_one_key_store_also_on_update(self):
        obj = with_ref({"name": "team-valkey"})
        obj["metadata"]["name"] = "update-both"
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        stored = reply.json
        stored["spec"]["keyStore"] = {"address": "valkey:6379"}
        reply = kt.request(self.server, "PUT", path_of(stored) + "/update-both", stored)
        self.assertEqual(reply.status, 422, reply.raw)
        self.assertIn(EXACTLY_ONE_STORE, reply.json["message"])

    def test_key_store_gets_every_default(self):
        obj = keystore(name="minimal")
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"], {"address": "valkey.default.svc:6379",
                                              "database": 0, "layout": LAYOUT_DEFAULTS})
        obj = keystore("ClusterKeyStore", name="minimal")
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"], {"address": "valkey.default.svc:6379",
                                              "database": 0, "layout": LAYOUT_DEFAULTS})
        self.assertNotIn("namespace", reply.json["metadata"])

    def test_key_store_fields_are_kept(self):
        layout = {"activeSet": "{namespace}:{name}:api_keys:active",
                  "metaKey": "{namespace}:api_key:{id}:meta",
                  "bootstrapKey": "{namespace}:api_keys:bootstrap", "storeAs": "plaintext"}
        obj = keystore(name="full", database=3, username="kr", layout=layout,
                       passwordSecretRef={"name": "auth", "key": "password"})
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"], obj["spec"])
        # A KeyStore reads its password from its own namespace: it has no namespace field,
        # and one given is pruned like any unknown field.
        obj = keystore(name="no-ns", passwordSecretRef={"namespace": "kube-system",
                                                        "name": "auth", "key": "password"})
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"]["passwordSecretRef"],
                         {"name": "auth", "key": "password"})
        allowed = {"names": ["sirius", "hypercode"],
                   "selector": {"matchLabels": {"keyrotator.io/key-store": "shared"},
                                "matchExpressions": [
                                    {"key": "team", "operator": "In", "values": ["a", "b"]},
                                    {"key": "frozen", "operator": "DoesNotExist"}]}}
        obj = keystore("ClusterKeyStore", name="full", layout=layout, allowedNamespaces=allowed,
                       passwordSecretRef={"namespace": "keyrotator-system", "name": "auth",
                                          "key": "password"})
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"], {**obj["spec"], "database": 0})
        # selector {} (every namespace) is kept as it is, not dropped.
        obj = keystore("ClusterKeyStore", name="everyone", allowedNamespaces={"selector": {}})
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"]["allowedNamespaces"], {"selector": {}})

    def test_key_store_status_subresource(self):
        for kind in ("KeyStore", "ClusterKeyStore"):
            with self.subTest(kind=kind):
                obj = keystore(kind, name="with-status")
                reply = self.create(obj)
                self.assertEqual(reply.status, 201, reply.raw)
                stored = reply.json
                stored["status"] = {
                    "observedGeneration": 1, "keyRotations": 3,
                    "lastCheckTime": "2026-04-01T03:00:00Z",
                    "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1,
                                    "lastTransitionTime": "2026-04-01T03:00:00Z",
                                    "reason": "Connected", "message": "PING answered"}]}
                url = path_of(stored) + "/with-status/status"
                reply = kt.request(self.server, "PUT", url, stored)
                self.assertEqual(reply.status, 200, reply.raw)
                self.assertEqual(reply.json["status"], stored["status"])
                stored = reply.json
                stored["status"]["keyRotations"] = -1
                reply = kt.request(self.server, "PUT", url, stored)
                self.assertEqual(reply.status, 422, reply.raw)
                self.assertIn("status.keyRotations", reply.json["message"])

    def test_auth_and_ca_refs_are_kept(self):
        obj = mutate("analysis", {"prometheus": {
            "url": "https://prometheus.monitoring:9090", "query": "vector(0)",
            "caSecretRef": {"name": "prom-ca", "key": "ca.crt"},
            "basicAuth": {"username": "kr", "passwordSecretRef": {"name": "prom", "key": "pw"}}}})
        obj["spec"]["verify"] = {"url": "https://api/ping",
                                 "caSecretRef": {"name": "api-ca", "key": "ca.crt"}}
        obj["metadata"]["name"] = "auth-refs"
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw)
        spec = reply.json["spec"]
        self.assertEqual(spec["analysis"]["prometheus"], obj["spec"]["analysis"]["prometheus"])
        self.assertEqual(spec["verify"]["caSecretRef"], {"name": "api-ca", "key": "ca.crt"})
        scrape = mutate("analysis", {"scrape": {
            "url": "https://api:8443/metrics", "metric": "http_requests_total",
            "caSecretRef": {"name": "api-ca", "key": "ca.crt"}}})
        scrape["metadata"]["name"] = "scrape-ca"
        reply = self.create(scrape)
        self.assertEqual(reply.status, 201, reply.raw)
        self.assertEqual(reply.json["spec"]["analysis"]["scrape"]["caSecretRef"],
                         {"name": "api-ca", "key": "ca.crt"})

    def check_refused(self, cases, prefix):
        for i, (what, obj, field) in enumerate(cases):
            with self.subTest(what=what):
                obj["metadata"]["name"] = f"{prefix}-{i}"
                reply = self.create(obj)
                self.assertEqual(reply.status, 422, f"{what}: {reply.status} {reply.raw[:300]}")
                body = reply.json
                self.assertEqual(body["reason"], "Invalid")
                self.assertIn(field, body["message"], what)

    def test_invalid_objects_are_refused_naming_the_field(self):
        self.check_refused(INVALID, "bad")

    def test_invalid_key_stores_are_refused_naming_the_field(self):
        self.check_refused(INVALID_STORES, "bad-store")

    def walk_schema(self, crd):
        """(path, node) of every property of the CRD's schema, items included."""
        out = []

        def walk(node, path):
            for key, child in node.get("properties", {}).items():
                out.append((path + "." + key, child))
                walk(child, path + "." + key)
            if "items" in node:
                out.append((path + "[]", node["items"]))
                walk(node["items"], path + "[]")
            if isinstance(node.get("additionalProperties"), dict):
                out.append((path + ".*", node["additionalProperties"]))
                walk(node["additionalProperties"], path + ".*")
        walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
        return out

    def test_every_field_is_described(self):
        for path in crd_files():
            crd = load_yaml(path)[0]
            with self.subTest(crd=os.path.basename(path)):
                missing = [p for p, node in self.walk_schema(crd)
                           if not p.endswith("[]") and not p.endswith(".*")
                           and p != ".metadata" and not node.get("description")]
                self.assertEqual(missing, [])
                self.assertEqual(crd["spec"]["names"]["categories"], ["keyrotator"])
                self.assertIn("status", crd["spec"]["versions"][0]["subresources"])
        crd = load_yaml(CRD)[0]
        version = crd["spec"]["versions"][0]
        self.assertEqual(crd["spec"]["names"]["shortNames"], ["kr"])
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        self.assertEqual(columns, ["Ready", "Phase", "Stage", "Key", "Last Rotation",
                                   "Next Rotation", "Age"])
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        self.assertEqual(spec["required"], ["secretRef", "stages"])
        self.assertIn("--allow-inline-key-stores", spec["properties"]["keyStore"]["description"])

    def test_every_string_list_and_map_is_bounded(self):
        # As for the key store CRDs: a KeyRotation's size has a bound (the CRD's header works
        # it out), and CEL costs are bounded.
        crd = load_yaml(CRD)[0]
        unbounded = []
        for p, node in self.walk_schema(crd):
            if p in (".apiVersion", ".kind"):
                continue  # set by the API server
            if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
                unbounded.append(p)
            if node.get("type") == "array" and "maxItems" not in node:
                unbounded.append(p)
            if node.get("type") == "object" and "additionalProperties" in node \
                    and "maxProperties" not in node:
                unbounded.append(p)
        self.assertEqual(unbounded, [])
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        st = spec["properties"]["stages"]
        self.assertEqual((st["maxItems"], st["items"]["properties"]["workloads"]["maxItems"]),
                         (MAX_STAGES, MAX_STAGE_WORKLOADS))
        # The total is a CEL rule with the list library's sum(), which the local API server's
        # CEL subset does not have (it skips the rule): the controller checks it too
        # (tests/unit/test_rotation_spec.c), and a real API server refuses at admission.
        self.assertIn({"rule": f"self.map(s, s.workloads.size()).sum() <= {MAX_WORKLOADS}",
                       "message": f"at most {MAX_WORKLOADS} workloads in all stages together"},
                      st["x-kubernetes-validations"])
        self.assertIn(f"at most {MAX_WORKLOADS} workloads in all", st["description"])
        self.assertIn("at most once an hour", spec["properties"]["schedule"]["description"])
        self.assertIn("At least 1h", spec["properties"]["maxKeyAge"]["description"])

    def largest(self, node):
        """The largest value `node` admits: every string at maxLength (or the longest enum
        value), every list at maxItems, every map at maxProperties, every property set."""
        if "enum" in node:
            return max(node["enum"], key=lambda v: len(json.dumps(v)))
        kind = node.get("type")
        if kind == "string":
            return "x" * node["maxLength"]
        if kind == "integer":
            return -(1 << 63)
        if kind == "number":
            return -1.2345678901234567e-300
        if kind == "boolean":
            return False
        if kind == "array":
            return [self.largest(node["items"]) for _ in range(node["maxItems"])]
        obj = {k: self.largest(c) for k, c in node.get("properties", {}).items()}
        if isinstance(node.get("additionalProperties"), dict):
            for i in range(node["maxProperties"]):
                obj[f"k{i}".ljust(128, "k")] = self.largest(node["additionalProperties"])
        return obj

    def test_largest_keyrotation_has_a_bound(self):
        # The arithmetic of the CRD's header: the largest KeyRotation the schema admits (64
        # workloads in all, spread over 32 stages; both analysis sources and both key store
        # forms counted, so an upper bound), in compact JSON.
        crd = load_yaml(CRD)[0]
        schema = copy.deepcopy(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        for field in ("apiVersion", "kind", "metadata"):  # the API server's, not ours
            del schema["properties"][field]
        obj = {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
               **self.largest(schema)}
        for stage_list in (obj["spec"]["stages"], obj["status"]["stages"]):
            for i, stage in enumerate(stage_list):
                stage["workloads"] = stage["workloads"][:MAX_WORKLOADS // len(stage_list)]
        self.assertEqual(sum(len(s["workloads"]) for s in obj["spec"]["stages"]), MAX_WORKLOADS)

        def size(v):
            return len(json.dumps(v, separators=(",", ":")))
        spec, status, whole = size(obj["spec"]), size(obj["status"]), size(obj)
        print(f"largest KeyRotation: spec {spec} B, status {status} B, in all {whole} B; "
              f"a page of {PAGE}: {PAGE * whole / 1e6:.0f} MB", file=sys.stderr)
        # As the header says: spec ~48 KB, status ~211 KB, ~260 KB in all.
        self.assertLess(spec, 50_000)
        self.assertLess(whole, 265_000)
        # 200 a page fit in the response cap with room for metadata (500 do not: the header
        # says so, and why).
        self.assertLess(200 * whole, RESPONSE_CAP * 0.8)

    def test_keyrotation_at_every_limit_is_accepted(self):
        # The bounds are not tighter than the controller needs: a spec at every limit is
        # accepted, and so is a status as large as the controller writes.
        labels = {f"l{i}".ljust(128, "l"): "v" * 256 for i in range(16)}
        obj = mutate("stages", [
            {"name": f"s{i:02d}".ljust(63, "x"), "timeout": long_duration(64),
             "workloads": [{"kind": "StatefulSet", "name": dns_name(250) + f"{2 * i + j:03d}"}
                           for j in range(2)]} for i in range(MAX_STAGES)])
        spec = obj["spec"]
        spec["analysis"] = scrape(url="http://" + "s" * 2041, metric="m" * 256, labels=labels)
        spec["analysis"]["interval"] = long_duration(64)
        spec.update(maxKeyAge="2160h", validationPeriod=long_duration(64), historyLimit=100,
                    revokeWhenUnusedFor=long_duration(64), schedule="0 3 1 */3 *",
                    key={"prefix": "p" * 16, "bytes": 64},
                    verify={"url": "http://" + "v" * 2041, "header": "H" * 256})
        obj["metadata"]["name"] = "at-every-limit"
        reply = self.create(obj)
        self.assertEqual(reply.status, 201, reply.raw[:300])
        stored = reply.json
        when = "2026-04-01T03:00:00Z"
        stored["status"] = {
            "stages": [{"name": s["name"], "state": "RollingOut", "workloads": [
                {"kind": w["kind"], "name": w["name"], "keyId": "0123456789ab", "ready": "9" * 63,
                 "message": "m" * 511} for w in s["workloads"]]} for s in spec["stages"]],
            "plan": ["p" * 1023] * 73,
            "conditions": [{"type": t, "status": "False", "observedGeneration": 1,
                            "lastTransitionTime": when, "reason": "R" * 63, "message": "m" * 511}
                           for t in ("Ready", "Rotating", "Degraded", "KeyStoreInSync")],
            "history": [{"keyId": "0123456789ab", "trigger": "Emergency", "activatedAt": when,
                         "revokedAt": when, "outcome": "RolledBack", "reason": "r" * 255}] * 100,
            "lastHandledRequest": "q" * 255, "lastHandledEmergency": "e" * 255,
            "currentKey": {"id": "0123456789ab", "createdAt": when, "label": "l" * 255},
        }
        url = path_of(stored) + "/at-every-limit/status"
        reply = kt.request(self.server, "PUT", url, stored)
        self.assertEqual(reply.status, 200, reply.raw[:300])
        stored = reply.json
        stored["status"]["history"].append(stored["status"]["history"][0])
        reply = kt.request(self.server, "PUT", url, stored)
        self.assertEqual(reply.status, 422, reply.raw[:300])
        self.assertIn("status.history", reply.json["message"])

    def test_key_store_crds(self):
        for path, kind, scope, plural, short in (
                (KEYSTORE_CRD, "KeyStore", "Namespaced", "keystores", "ks"),
                (CLUSTER_KEYSTORE_CRD, "ClusterKeyStore", "Cluster", "clusterkeystores", "cks")):
            crd = load_yaml(path)[0]
            with self.subTest(kind=kind):
                self.assertEqual(crd["metadata"]["name"], plural + ".keyrotator.io")
                self.assertEqual(crd["spec"]["scope"], scope)
                names = crd["spec"]["names"]
                self.assertEqual((names["kind"], names["plural"], names["singular"],
                                  names["shortNames"]), (kind, plural, kind.lower(), [short]))
                [version] = crd["spec"]["versions"]
                self.assertEqual(version["name"], "v1alpha1")
                columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
                self.assertEqual(columns, [
                    ("Address", ".spec.address"),
                    ("Master", ".status.master"),
                    ("Ready", '.status.conditions[?(@.type=="Ready")].status'),
                    ("KeyRotations", ".status.keyRotations"),
                    ("Age", ".metadata.creationTimestamp")])
                props = version["schema"]["openAPIV3Schema"]["properties"]
                # address or sentinel (issue 22), exactly one
                self.assertNotIn("required", props["spec"])
                self.assertEqual([r["rule"] for r in props["spec"]["x-kubernetes-validations"]],
                                 ["has(self.address) != has(self.sentinel)"])
                self.assertEqual(set(props["status"]["properties"]), {
                    "observedGeneration", "conditions", "keyRotations", "lastCheckTime",
                    "master"})
                tls = props["spec"]["properties"]["tls"]["properties"]
                self.assertEqual(set(tls), {"caSecretRef", "clientCertSecretRef", "serverName"})
                for r in ("caSecretRef", "clientCertSecretRef"):
                    self.assertEqual("namespace" in tls[r]["properties"],
                                     kind == "ClusterKeyStore")
                ref = props["spec"]["properties"]["passwordSecretRef"]
                self.assertEqual(ref["required"], ["name", "key"])
                self.assertEqual("namespace" in ref["properties"], kind == "ClusterKeyStore")
                self.assertEqual("allowedNamespaces" in props["spec"]["properties"],
                                 kind == "ClusterKeyStore")
                layout = props["spec"]["properties"]["layout"]
                for field in ("activeSet", "metaKey", "bootstrapKey"):
                    self.assertIn("{namespace}", layout["properties"][field]["description"])
                self.assertIn('"{namespace}:api_keys:active"', layout["description"])
                # Every string is bounded (maxLength or an enum), every list has maxItems,
                # every map maxProperties: the key store API is an administrator's, but the
                # controller reads it, and CEL costs are bounded.
                for p, node in self.walk_schema(crd):
                    if p in (".apiVersion", ".kind"):
                        continue  # set by the API server
                    if node.get("type") == "string":
                        self.assertTrue("maxLength" in node or "enum" in node, p)
                    if node.get("type") == "array":
                        self.assertIn("maxItems", node, p)
                    if node.get("type") == "object" and "additionalProperties" in node:
                        self.assertIn("maxProperties", node, p)
        allowed = (load_yaml(CLUSTER_KEYSTORE_CRD)[0]["spec"]["versions"][0]["schema"]
                   ["openAPIV3Schema"]["properties"]["spec"]["properties"]["allowedNamespaces"])
        for words in ("names", "selector", " OR ", "allows no namespace",
                      "selector {} (empty) allows every namespace"):
            self.assertIn(words, allowed["description"])
        ref = (load_yaml(CRD)[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
               ["properties"]["spec"]["properties"]["keyStoreRef"])
        self.assertEqual(ref["properties"]["kind"]["enum"], ["KeyStore", "ClusterKeyStore"])
        self.assertEqual(ref["properties"]["kind"]["default"], "KeyStore")
        self.assertEqual(ref["properties"]["name"]["maxLength"], 253)


if __name__ == "__main__":
    unittest.main()
