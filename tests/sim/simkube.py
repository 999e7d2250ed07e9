"""simkube.py - what the two stand-ins of tests/sim share: a minimal API client configured from
a kubeconfig (Kube), a list+watch cache of one resource (Informer), and small helpers.
Python 3 standard library only; it reaches a server only through the API, so it works against
a real cluster too."""
import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

import krtest
import kyaml

MERGE = "application/merge-patch+json"


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def now_micro():
    """metav1.MicroTime, as a Lease's renewTime."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % (t % 1 * 1e6)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def key_id(value):
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def log(who, msg):
    sys.stderr.write("%s %s: %s\n" % (now_rfc3339(), who, msg))
    sys.stderr.flush()


def rv_int(obj):
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return -1


class Kube:
    """A minimal API client configured from a kubeconfig (token or client cert, CA data)."""

    def __init__(self, kubeconfig, scratch):
        with open(kubeconfig) as f:
            cfg = kyaml.load_all(f.read())[0]
        ctx_name = cfg.get("current-context")
        ctx = next((c["context"] for c in cfg.get("contexts") or [] if c["name"] == ctx_name),
                   (cfg.get("contexts") or [{}])[0].get("context", {}))
        cluster = next((c["cluster"] for c in cfg["clusters"]
                        if c["name"] == ctx.get("cluster")), cfg["clusters"][0]["cluster"])
        user = next((u["user"] for u in cfg.get("users") or [] if u["name"] == ctx.get("user")),
                    {})
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.https = url.hostname, url.scheme == "https"
        self.port = url.port or (443 if self.https else 80)
        self.prefix = url.path.rstrip("/")
        self.token = user.get("token")
        self.ctx = None
        if self.https:
            self.ctx = ssl.create_default_context()
            if cluster.get("insecure-skip-tls-verify"):
                self.ctx.check_hostname = False
                self.ctx.verify_mode = ssl.CERT_NONE
            elif cluster.get("certificate-authority-data"):
                self.ctx.load_verify_locations(cadata=base64.b64decode(
                    cluster["certificate-authority-data"]).decode())
            elif cluster.get("certificate-authority"):
                self.ctx.load_verify_locations(cluster["certificate-authority"])
            if user.get("client-certificate-data"):
                cert, key = os.path.join(scratch, "client.crt"), os.path.join(scratch, "client.key")
                for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(base64.b64decode(user[field]))
                self.ctx.load_cert_chain(cert, key)

    def conn(self, timeout=10):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                               timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, ctype=None):
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if ctype:
            h["Content-Type"] = ctype
        return h

    def request(self, method, path, body=None, ctype="application/json", timeout=10):
        """(status, decoded JSON body or None)."""
        c = self.conn(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            c.request(method, self.prefix + path, body=data,
                      headers=self.headers(ctype if data is not None else None))
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, None
        finally:
            c.close()

    def watch(self, path, rv):
        """Yield watch events until the server closes the stream."""
        c = self.conn(timeout=330)
        try:
            q = ("&" if "?" in path else "?") + \
                "watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" + rv
            c.request("GET", self.prefix + path + q, headers=self.headers())
            r = c.getresponse()
            if r.status != 200:
                r.read()
                yield {"type": "ERROR", "object": {"code": r.status}}
                return
            yield from krtest.json_lines(r)
        finally:
            c.close()


def obj_key(obj):
    md = obj["metadata"]
    return (md.get("namespace", ""), md["name"])


class Informer(threading.Thread):
    """list + watch of one resource (`path`, with its query) into `items`: (namespace, name)
    -> object. Resumes from the last resourceVersion and relists on 410. A component that
    writes an object puts the reply in with put() at once, so its next pass sees its own
    write; an older watch event never replaces a newer object, and a deleted object's later
    events are ignored."""

    def __init__(self, kube, path, stopping, name, who="stand-in"):
        super().__init__(daemon=True, name="watch-" + name)
        self.kube, self.path, self.stopping, self.who = kube, path, stopping, who
        self.lock = threading.Lock()
        self.items = {}
        self.gone = set()  # uids deleted
        self.synced = threading.Event()

    def snapshot(self):
        with self.lock:
            return dict(self.items)

    def put(self, obj):
        """Record what a write returned (an object with deletionTimestamp stays)."""
        with self.lock:
            self._apply("MODIFIED", obj)

    def forget(self, obj):
        with self.lock:
            self._apply("DELETED", obj)

    def _apply(self, etype, obj):
        key, uid = obj_key(obj), obj["metadata"].get("uid")
        if etype == "DELETED":
            cur = self.items.get(key)
            if cur is not None and cur["metadata"].get("uid") == uid:
                del self.items[key]
            self.gone.add(uid)
            return
        if uid in self.gone:
            return
        cur = self.items.get(key)
        if cur is not None and cur["metadata"].get("uid") == uid and rv_int(cur) > rv_int(obj):
            return
        self.items[key] = obj

    def run(self):
        while not self.stopping.is_set():
            try:
                rv = self._list()
                while rv and not self.stopping.is_set():
                    rv = self._watch(rv)
            except (OSError, ValueError, http.client.HTTPException) as e:
                log(self.who, "watch %s: %s; relisting" % (self.path, e))
            self.stopping.wait(0.5)

    def _list(self):
        status, body = self.kube.request("GET", self.path)
        if status != 200:
            raise OSError("list %s: HTTP %d" % (self.path, status))
        with self.lock:
            fresh = {obj_key(i): i for i in body.get("items") or []}
            for key, cur in list(self.items.items()):  # keep own writes newer than the list
                if key not in fresh and rv_int(cur) <= int(body["metadata"]["resourceVersion"]):
                    del self.items[key]
            for item in fresh.values():
                self._apply("MODIFIED", item)
        self.synced.set()
        return body["metadata"]["resourceVersion"]

    def _watch(self, rv):
        """Returns the RV to resume from, or None to relist (410)."""
        for ev in self.kube.watch(self.path, rv):
            obj = ev.get("object") or {}
            if ev["type"] == "ERROR":
                return None
            rv = obj.get("metadata", {}).get("resourceVersion", rv)
            if ev["type"] == "BOOKMARK":
                continue
            with self.lock:
                self._apply(ev["type"], obj)
        return rv


def owner(obj):
    """The controller ownerReference of `obj`, or {}."""
    return next((o for o in obj["metadata"].get("ownerReferences") or []
                 if o.get("controller")), {})


def serve(kubeconfig, make, scratch_dir=None):
    """A stand-in's main: make(Kube) -> an object with `stopping` (an Event, set by SIGTERM or
    SIGINT) and run(); client credentials go to a scratch dir removed at the end."""
    scratch = tempfile.mkdtemp(prefix="standin-", dir=scratch_dir)
    try:
        obj = make(Kube(kubeconfig, scratch))
        signal.signal(signal.SIGTERM, lambda *_: obj.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: obj.stopping.set())
        obj.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0
