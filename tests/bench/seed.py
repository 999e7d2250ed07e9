"""seed.py - builds the benchmark cluster's state.json in-process with the local API server's own
store (tests/kubeapi), so 10,000 KeyRotations and 30,000 Deployments load in seconds instead of
50,000 HTTP creates, with the same defaults, uids and resourceVersions the server would give."""

import glob
import json
import os
import sys

from benchlib import REPO, b64, key_id, new_key

import kubeapi

CRDS = sorted(glob.glob(os.path.join(REPO, "crds", "*.yaml")))  # the controller watches all
STAGES = ("api", "ui", "engine")
SECRET_KEY = "API_KEY"
KEY_STORE = "bench-valkey"  # one KeyStore per namespace, shared by its KeyRotations
OPT_IN = "keyrotator.io/keyrotation"


def namespace(i, nns):
    return "bench-%d" % (i % nns)


def names(i):
    """(KeyRotation, Secret, [Deployments in stage order]) names of the i-th rotation."""
    return "kr-%d" % i, "kr-%d-key" % i, ["kr-%d-%s" % (i, s) for s in STAGES]


def key_store(valkey_port):
    """The namespace's KeyStore: one Valkey, each KeyRotation's keys under its own name."""
    return {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyStore",
            "metadata": {"name": KEY_STORE},
            "spec": {"address": "127.0.0.1:%d" % valkey_port,
                     "layout": {"activeSet": "{name}:active", "metaKey": "{name}:key:{id}:meta",
                                "bootstrapKey": "{name}:bootstrap"}}}


def keyrotation(i):
    kr, secret, deps = names(i)
    return {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
            "metadata": {"name": kr},
            "spec": {"secretRef": {"name": secret, "key": SECRET_KEY},
                     "keyStoreRef": {"kind": "KeyStore", "name": KEY_STORE},
                     "key": {"prefix": "sk_", "bytes": 32},
                     "stages": [{"name": s, "workloads": [{"kind": "Deployment", "name": d}]}
                                for s, d in zip(STAGES, deps)],
                     "validationPeriod": "0s"}}


def deployment(name, kid):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels,
                                               "annotations": {"keyrotator.io/key-id": kid}},
                                  # no pods run here: nothing to wait for after a rollout
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{
                                               "name": "app", "image": "bench/app:1",
                                               "env": [{"name": SECRET_KEY, "valueFrom": {
                                                   "secretKeyRef": {
                                                       "name": name.rsplit("-", 1)[0] + "-key",
                                                       "key": SECRET_KEY}}}]}]}}}}


def complete_status(obj):
    """A finished rollout, as the deployment controller reports it."""
    n = obj["spec"].get("replicas", 1)
    obj["status"] = {"observedGeneration": obj["metadata"]["generation"], "replicas": n,
                     "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                     "conditions": [
                         {"type": "Available", "status": "True",
                          "reason": "MinimumReplicasAvailable",
                          "message": "Deployment has minimum availability."},
                         {"type": "Progressing", "status": "True",
                          "reason": "NewReplicaSetAvailable",
                          "message": 'ReplicaSet "%s" has successfully progressed.'
                                     % obj["metadata"]["name"]}]}


def build(path, n, nns, valkey_port):
    """Writes <path>/state.json: the CRDs, nns namespaces each with the KeyStore, n
    KeyRotations with their Secret (holding a valid key, opted in for the KeyRotation) and
    three Deployments already carrying that key id, rollouts done."""
    args = kubeapi.parse_args(["--history-limit", "1"])
    api = kubeapi.Api(args)
    for crd in CRDS:
        api.load_crd_file(crd)
    t = {k[2]: rt for k, rt in api.types.items()}
    kr_rt, ks_rt, sec_rt, dep_rt = (t["keyrotations"], t["keystores"], t["secrets"],
                                    t["deployments"])
    for j in range(nns):
        api.ensure_namespace("bench-%d" % j)
        api.store.create(ks_rt, "bench-%d" % j, key_store(valkey_port))
    for i in range(n):
        ns = namespace(i, nns)
        kr, secret, deps = names(i)
        key = new_key()
        kid = key_id(key)
        api.store.create(sec_rt, ns, {"apiVersion": "v1", "kind": "Secret",
                                      "metadata": {"name": secret,
                                                   "annotations": {OPT_IN: kr}},
                                      "data": {SECRET_KEY: b64(key)}})
        for d in deps:
            obj = api.store.create(dep_rt, ns, deployment(d, kid))
            complete_status(obj)
        api.store.create(kr_rt, ns, keyrotation(i))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "state.json"), "w") as f:
        json.dump(api.store.dump(), f, separators=(",", ":"))


if __name__ == "__main__":
    import time
    t0 = time.monotonic()
    build(sys.argv[1], int(sys.argv[2]), 10, 6379)
    print("%.1f s" % (time.monotonic() - t0))
