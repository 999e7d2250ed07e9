"""Helpers of the conformance suite: start kubeapi.py as a subprocess, talk to
it with http.client, read watch streams, and compare bodies with the golden
files recorded from a real kube-apiserver."""

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WIRE = os.path.join(REPO, "tests", "k8s-wire")  # recorded from a real kube-apiserver
TOKEN = "test-token"
FORBIDDEN_TOKEN = "lab-user-token"

WIRETHING_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "wirethings.wire.example.com"},
    "spec": {
        "group": "wire.example.com", "scope": "Namespaced",
        "names": {"plural": "wirethings", "singular": "wirething", "kind": "WireThing",
                  "shortNames": ["wt"]},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object", "required": ["size"],
                        "x-kubernetes-validations": [
                            {"rule": "self.size < 100", "message": "size must be below 100"},
                            {"rule": "!has(self.color) || self.color != 'black'",
                             "message": "black is not a color"}],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1},
                            "color": {"type": "string", "enum": ["red", "blue", "black"]},
                            "code": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                            "stages": {"type": "array", "maxItems": 3,
                                       "x-kubernetes-list-type": "map",
                                       "x-kubernetes-list-map-keys": ["name"],
                                       "items": {"type": "object", "required": ["name"],
                                                 "properties": {"name": {"type": "string"}}}},
                        }},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }}},
        }],
    },
}


class Server:
    """A kubeapi.py subprocess in its own temp dir, killed by stop()."""

    def __init__(self, tls=False, extra=(), state_dir=None):
        self.dir = tempfile.mkdtemp(prefix="kubeapi-test-")
        self.tls = tls
        self.ready = os.path.join(self.dir, "ready.json")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.tls_dir = os.path.join(self.dir, "tls")
        self.state_dir = state_dir
        self.extra = list(extra)
        self.proc = None
        self.start()

    def start(self):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        cmd = [sys.executable, os.path.join(HERE, "kubeapi.py"), "--port", "0",
               "--token", TOKEN, "--forbidden-token", FORBIDDEN_TOKEN,
               "--ready-file", self.ready, "--kubeconfig-out", self.kubeconfig,
               "--bookmark-interval", "0.5"] + self.extra
        if self.tls:
            cmd += ["--tls-dir", self.tls_dir]
        if self.state_dir:
            cmd += ["--state-dir", self.state_dir]
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None:
                raise RuntimeError("kubeapi exited: %s" % open(self.stderr.name).read())
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kubeapi did not become ready")
            time.sleep(0.02)
        with open(self.ready) as f:
            port, self.url = f.read().split()
        self.port = int(port)

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stderr:
            self.stderr.close()
            self.stderr = None

    def ssl_context(self, ca=None, client_cert=False):
        ctx = ssl.create_default_context(cafile=ca or os.path.join(self.tls_dir, "ca.crt"))
        if client_cert:
            ctx.load_cert_chain(os.path.join(self.tls_dir, "client.crt"),
                                os.path.join(self.tls_dir, "client.key"))
        return ctx

    def conn(self, timeout=10, ctx=None):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx or self.ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


class Reply:
    def __init__(self, resp, body):
        self.status = resp.status
        self.headers = resp.headers
        self.raw = body
        try:
            self.json = json.loads(body, object_pairs_hook=_ordered) if body else None
        except ValueError:
            self.json = None


class _OrderedDict(dict):
    """A dict that remembers the key order of the wire (for order checks)."""


def _ordered(pairs):
    d = _OrderedDict(pairs)
    d.order = [k for k, _ in pairs]
    return d


def request(server, method, path, body=None, ctype=None, token=TOKEN, headers=None,
            conn=None, ctx=None):
    c = conn or server.conn(ctx=ctx)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        h["Content-Type"] = ctype or "application/json"
    try:
        c.request(method, path, body=data, headers=h)
        resp = c.getresponse()
        raw = resp.read()
    finally:
        if conn is None:
            c.close()
    return Reply(resp, raw)


class Watch:
    """A watch stream read line by line."""

    def __init__(self, server, path, token=TOKEN, timeout=10):
        self.conn = server.conn(timeout=timeout)
        self.conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        self.resp = self.conn.getresponse()

    def next(self):
        """Next event dict, or None at a clean end of stream."""
        line = self.resp.readline()
        if not line:
            return None
        return json.loads(line, object_pairs_hook=_ordered)

    def events(self, n, skip_bookmarks=True):
        out = []
        while len(out) < n:
            ev = self.next()
            if ev is None:
                break
            if skip_bookmarks and ev["type"] == "BOOKMARK":
                continue
            out.append(ev)
        return out

    def close(self):
        self.conn.close()


# ---- golden files --------------------------------------------------------

def golden(name):
    """(method, path, content type, request body, status code, body json or lines)."""
    base = [f for f in os.listdir(WIRE) if f.startswith(name)][0].rsplit(".", 1)[0]
    with open(os.path.join(WIRE, base + ".request")) as f:
        req = f.read()
    first, _, rest = req.partition("\n")
    method, path = first.split(" ")[:2]
    ctype, body = None, None
    m = re.search(r"^Content-Type: (\S+)\n\n(.*)$", rest, re.S | re.M)
    if m:
        ctype, body = m.group(1), m.group(2).strip()
    with open(os.path.join(WIRE, base + ".headers")) as f:
        code = int(f.readline().split()[1])
    with open(os.path.join(WIRE, base + ".body")) as f:
        text = f.read()
    try:
        if "watch=" in path:
            raise ValueError("a stream of lines")
        expected = json.loads(text, object_pairs_hook=_ordered)
    except ValueError:
        expected = [json.loads(x, object_pairs_hook=_ordered) for x in text.splitlines()
                    if x.strip()]
    return {"method": method, "path": path, "ctype": ctype, "body": body, "code": code,
            "expected": expected}


# Values that naturally differ between two servers: only their JSON type is compared.
VARYING = {"uid", "resourceVersion", "creationTimestamp", "continue", "time",
           "deletionTimestamp"}


def compare_shape(test, expected, actual, path="", subst=None, order=True):
    """Asserts that actual has expected's keys (managedFields excepted), the same key
    order, and equal values except those in VARYING."""
    subst = subst or {}
    if isinstance(expected, dict):
        test.assertIsInstance(actual, dict, path)
        exp_keys = [k for k in getattr(expected, "order", expected) if k != "managedFields"]
        act_keys = list(getattr(actual, "order", actual))
        test.assertEqual(sorted(exp_keys), sorted(act_keys), "keys at %s" % (path or "/"))
        if order:
            test.assertEqual(exp_keys, act_keys, "key order at %s" % (path or "/"))
        for k in exp_keys:
            key = path + "." + k
            if k in VARYING:
                test.assertEqual(type(expected[k]), type(actual[k]), key)
            else:
                compare_shape(test, expected[k], actual[k], key, subst, order)
    elif isinstance(expected, list):
        test.assertIsInstance(actual, list, path)
        test.assertEqual(len(expected), len(actual), "length of %s" % path)
        for i, (e, a) in enumerate(zip(expected, actual)):
            compare_shape(test, e, a, "%s[%d]" % (path, i), subst, order)
    elif isinstance(expected, str):
        for k, v in subst.items():
            expected = expected.replace(k, v)
        test.assertEqual(expected, actual, path)
    else:
        test.assertEqual(expected, actual, path)
