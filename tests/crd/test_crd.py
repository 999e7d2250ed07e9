"""The KeyRotation CRD, checked the way users meet it: served by an API server that
validates custom resources (tests/kubeapi, held to a real kube-apiserver's behaviour),
every example in manifests/examples/ is accepted with the CRD's defaults applied, and
invalid objects are refused with 422 naming the field. Also: every field is described,
so `kubectl explain` teaches the API."""

import copy
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "kubeapi"))
import kubeapi_testlib as kt  # noqa: E402

CRD = os.path.join(REPO, "crds", "keyrotator.io_keyrotations.yaml")
EXAMPLES = os.path.join(REPO, "manifests", "examples")
YAML2JSON = os.environ.get("KR_YAML2JSON", "yaml2json")


def load_yaml(path):
    """Documents of a YAML file, through the product's own YAML parser."""
    out = subprocess.run([YAML2JSON, path], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


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
]


class CRDTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = kt.Server(extra=["--crd", CRD, "--namespace", "sirius",
                                      "--namespace", "hypercode"])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def create(self, obj):
        ns = obj["metadata"].get("namespace", "default")
        return kt.request(self.server, "POST",
                          f"/apis/keyrotator.io/v1alpha1/namespaces/{ns}/keyrotations", obj)

    def test_examples_are_accepted_with_defaults(self):
        names = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".yaml"))
        self.assertGreaterEqual(len(names), 2)
        for name in names:
            for doc in load_yaml(os.path.join(EXAMPLES, name)):
                with self.subTest(example=name):
                    reply = self.create(doc)
                    self.assertEqual(reply.status, 201, reply.raw)
                    spec = reply.json["spec"]
                    self.assertEqual(spec["key"]["bytes"], doc["spec"].get("key", {}).get("bytes", 32))
                    self.assertEqual(spec["keyStore"]["bootstrapKey"], "api_keys:bootstrap")
                    for stage in spec["stages"]:
                        self.assertIn("timeout", stage)
                    self.assertIn("historyLimit", spec)

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

    def test_invalid_objects_are_refused_naming_the_field(self):
        for i, (what, obj, field) in enumerate(INVALID):
            with self.subTest(what=what):
                obj["metadata"]["name"] = f"bad-{i}"
                reply = self.create(obj)
                self.assertEqual(reply.status, 422, f"{what}: {reply.status} {reply.raw[:300]}")
                body = reply.json
                self.assertEqual(body["reason"], "Invalid")
                self.assertIn(field, body["message"], what)

    def test_every_field_is_described(self):
        crd = load_yaml(CRD)[0]
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        missing = []

        def walk(node, path):
            for key, child in node.get("properties", {}).items():
                if key != "metadata" and not child.get("description"):
                    missing.append(path + "." + key)
                walk(child, path + "." + key)
            if "items" in node:
                walk(node["items"], path + "[]")
        walk(schema, "")
        self.assertEqual(missing, [])
        self.assertEqual(crd["spec"]["names"]["shortNames"], ["kr"])
        self.assertEqual(crd["spec"]["names"]["categories"], ["keyrotator"])
        self.assertIn("status", version["subresources"])
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        self.assertEqual(columns, ["Ready", "Phase", "Stage", "Key", "Last Rotation",
                                   "Next Rotation", "Age"])


if __name__ == "__main__":
    unittest.main()
