"""Conformance suite of the local API server (tests/kubeapi/kubeapi.py).

Part 1 replays the golden exchanges recorded from a real kube-apiserver v1.26.5
(tests/k8s-wire in this repository) and compares status,
Content-Type and the JSON shape of each body. Part 2 checks the Kubernetes API
conventions independently, so the server cannot drift into agreeing with a
client's mistakes. Part 3 covers TLS, auth and the /_kubeapi admin API.
Standard library only; run with: python3 -m unittest -v test_conformance
"""

import calendar
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
import unittest
import urllib.parse

from kubeapi_testlib import (FORBIDDEN_TOKEN, TOKEN, WIRE, WIRETHING_CRD, Server, Watch,
                             compare_shape, golden, request)

_counter = itertools.count(1)


class Base(unittest.TestCase):
    tls = False
    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(tls=cls.tls, extra=cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.srv.dir, ignore_errors=True)

    def setUp(self):
        self.ns = "t%d-%s" % (next(_counter), self._testMethodName[5:25].replace("_", "-"))
        self.ns = self.ns.strip("-")
        r = self.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": self.ns}})
        self.assertEqual(r.status, 201, r.raw)
        self.addCleanup(self.admin, "DELETE", "/faults")

    def req(self, method, path, body=None, ctype=None, token=TOKEN, **kw):
        return request(self.srv, method, path.replace("NAMESPACE", self.ns), body, ctype,
                       token, **kw)

    def admin(self, method, path, body=None):
        return request(self.srv, method, "/_kubeapi" + path, body, token=None)

    def ok(self, method, path, body=None, ctype=None, code=None):
        r = self.req(method, path, body, ctype)
        want = code or {"POST": 201}.get(method, 200)
        self.assertEqual(r.status, want, r.raw[:600])
        return r.json

    def secret(self, name, labels=None, data=None, ns=None):
        md = {"name": name}
        if labels:
            md["labels"] = labels
        return self.ok("POST", "/api/v1/namespaces/%s/secrets" % (ns or self.ns),
                       {"apiVersion": "v1", "kind": "Secret", "metadata": md,
                        "data": data or {"k": "dg=="}})

    def deployment(self, name="api"):
        g = golden("13")
        body = json.loads(g["body"])
        body["metadata"]["name"] = name
        return self.ok("POST", g["path"], body)

    def crd(self):
        r = self.req("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                     "wirethings.wire.example.com")
        if r.status == 404:
            self.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    WIRETHING_CRD)

    def replay(self, name, subst=None, expect_code=None, path=None, body=None, token=TOKEN):
        """Sends golden request name; checks code, Content-Type; returns (reply, golden)."""
        g = golden(name)
        b = body if body is not None else g["body"]
        for k, v in (subst or {}).items():
            b = b.replace(k, v) if isinstance(b, str) else b
        r = self.req(g["method"], path or g["path"], b, g["ctype"], token=token)
        self.assertEqual(r.status, expect_code or g["code"], r.raw[:800])
        self.assertEqual(r.headers["Content-Type"].split(";")[0], "application/json")
        return r, g

    def watch(self, path, **kw):
        w = Watch(self.srv, path.replace("NAMESPACE", self.ns), **kw)
        self.addCleanup(w.close)
        return w

    def shape(self, reply, g, **kw):
        compare_shape(self, g["expected"], reply.json, subst={"NAMESPACE": self.ns}, **kw)


# ---------------------------------------------------------------------------
# Part 1: golden replays
# ---------------------------------------------------------------------------

class TestGolden(Base):

    def test_secret_create_conflict_update_patch(self):
        r, g = self.replay("01")
        self.shape(r, g)
        rv1 = r.json["metadata"]["resourceVersion"]
        r, g = self.replay("02")
        self.shape(r, g)
        r, g = self.replay("03")
        self.shape(r, g)
        r, g = self.replay("04", {'"10966"': json.dumps(rv1)})
        self.shape(r, g)
        self.assertGreater(int(r.json["metadata"]["resourceVersion"]), int(rv1))
        self.assertEqual(r.json["metadata"]["uid"], self.ok(
            "GET", "/api/v1/namespaces/NAMESPACE/secrets/svc-api-key")["metadata"]["uid"])
        r, g = self.replay("05", {'"10966"': json.dumps(rv1)})
        self.shape(r, g)
        r, g = self.replay("06")
        self.shape(r, g)

    def test_auth_errors(self):
        self.secret("svc-api-key")
        r, g = self.replay("07", token=None)
        self.shape(r, g)
        r, g = self.replay("08", token=FORBIDDEN_TOKEN)
        self.shape(r, g)
        r, g = self.replay("30", path=golden("03")["path"].replace("missing", "svc-api-key"),
                           token="not-a-token")
        self.shape(r, g)

    def test_lists_pagination_selectors(self):
        self.replay("01")
        self.replay("04", {'"10966"': json.dumps(self.ok(
            "GET", "/api/v1/namespaces/NAMESPACE/secrets/svc-api-key")
            ["metadata"]["resourceVersion"])})
        self.replay("06")
        r, g = self.replay("09")
        self.shape(r, g)
        self.secret("second", data={"x": "eQ=="})
        r, g = self.replay("10")
        self.shape(r, g)
        self.assertEqual(r.json["metadata"]["remainingItemCount"], 1)
        tok = r.json["metadata"]["continue"]
        r2, g = self.replay("33", path="/api/v1/namespaces/NAMESPACE/secrets?limit=1&continue="
                            + urllib.parse.quote(tok))
        self.shape(r2, g)
        self.assertEqual(r2.json["metadata"]["resourceVersion"],
                         r.json["metadata"]["resourceVersion"])
        r, g = self.replay("12")
        self.shape(r, g)
        r, g = self.replay("11")
        self.shape(r, g)

    def test_deployment_defaults_patches_status(self):
        r, g = self.replay("13")
        self.shape(r, g)
        r, g = self.replay("14")
        self.shape(r, g)
        rv = r.json["metadata"]["resourceVersion"]
        r, g = self.replay("15")
        self.shape(r, g)
        self.assertEqual(r.json["metadata"]["resourceVersion"], rv, "no-op patch keeps RV")
        r, g = self.replay("16")
        self.shape(r, g)
        r, g = self.replay("17")
        self.shape(r, g)

    def test_custom_resources(self):
        self.crd()
        r, g = self.replay("18")
        self.shape(r, g)
        for n in ("19", "20", "21", "22", "23", "24", "25", "26"):
            r, g = self.replay(n)
            self.shape(r, g)
        r, g = self.replay("27")
        self.shape(r, g)

    def test_lease_and_event(self):
        for n in ("28", "29"):
            r, g = self.replay(n, {"NAMESPACE": self.ns})
            self.shape(r, g)

    def test_watch_stream_with_bookmarks(self):
        g = golden("31")
        rv = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets")["metadata"][
            "resourceVersion"]
        start = time.monotonic()
        w = Watch(self.srv, "/api/v1/namespaces/%s/secrets?watch=1&resourceVersion=%s"
                  "&allowWatchBookmarks=true&timeoutSeconds=3" % (self.ns, rv))
        self.assertEqual(w.resp.status, 200)
        self.assertEqual(w.resp.headers["Content-Type"], "application/json")
        self.assertEqual(w.resp.headers["Transfer-Encoding"], "chunked")
        self.ok("POST", "/api/v1/namespaces/NAMESPACE/secrets",
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "w1"},
                 "data": {"a": "Yg=="}})
        self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/w1",
                {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json")
        self.ok("DELETE", "/api/v1/namespaces/NAMESPACE/secrets/w1")
        lines = []
        while True:
            ev = w.next()
            if ev is None:
                break
            lines.append(ev)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 2.9)
        self.assertLess(elapsed, 5)
        events = [e for e in lines if e["type"] != "BOOKMARK"]
        self.assertEqual(len(events), 3)
        for e, a in zip(g["expected"][:3], events):
            compare_shape(self, e, a, subst={"NAMESPACE": self.ns})
        self.assertEqual(lines[-1]["type"], "BOOKMARK", "a bookmark before the timeout close")
        compare_shape(self, g["expected"][3], lines[-1])
        self.assertEqual(lines[-1]["object"]["metadata"]["resourceVersion"],
                         events[-1]["object"]["metadata"]["resourceVersion"])

    def test_watch_too_old_in_stream_410(self):
        self.secret("a")
        self.admin("POST", "/compact")
        r = self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets?watch=1&resourceVersion=2"
                     "&allowWatchBookmarks=true")
        self.assertEqual(r.status, 200)
        lines = [json.loads(x) for x in r.raw.decode().splitlines()]
        g = golden("32")
        self.assertEqual(len(lines), 1)
        exp, act = g["expected"][0], lines[0]
        self.assertRegex(act["object"]["message"], r"^too old resource version: 2 \(\d+\)$")
        act["object"]["message"] = exp["object"]["message"]
        self.assertEqual(exp, act)
        self.assertEqual(list(exp["object"]), list(act["object"]))


# ---------------------------------------------------------------------------
# Part 2: API conventions, checked independently of the goldens
# ---------------------------------------------------------------------------

def rv_of(obj):
    return int(obj["metadata"]["resourceVersion"])


class TestConventions(Base):

    def test_resource_version_is_global_and_monotonic(self):
        rvs = []
        for i in range(5):
            rvs.append(rv_of(self.secret("s%d" % i)))
            rvs.append(rv_of(self.deployment("d%d" % i)))
            rvs.append(rv_of(self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/s%d" % i,
                                     {"data": {"k": "dzI="}}, "application/merge-patch+json")))
        self.assertEqual(rvs, sorted(set(rvs)), "strictly increasing across types")
        lst = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets")
        self.assertGreaterEqual(int(lst["metadata"]["resourceVersion"]), rvs[-1])
        got = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets/s4")
        self.assertEqual(rv_of(got), rvs[-1])

    def test_optimistic_concurrency(self):
        s = self.secret("c")
        stale = dict(s)
        s["data"] = {"k": "MQ=="}
        s2 = self.ok("PUT", "/api/v1/namespaces/NAMESPACE/secrets/c", s)
        stale["data"] = {"k": "Mg=="}
        r = self.req("PUT", "/api/v1/namespaces/NAMESPACE/secrets/c", stale)
        self.assertEqual((r.status, r.json["reason"]), (409, "Conflict"))
        r = self.req("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/c",
                     {"metadata": {"resourceVersion": s["metadata"]["resourceVersion"]}},
                     "application/merge-patch+json")
        self.assertEqual(r.status, 409, "a patch carrying a stale RV conflicts")
        # No resourceVersion: unconditional for built-in types ...
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"},
                "data": {"k": "Mw=="}}
        s3 = self.ok("PUT", "/api/v1/namespaces/NAMESPACE/secrets/c", body)
        self.assertGreater(rv_of(s3), rv_of(s2))
        # ... but custom resources require it (AllowUnconditionalUpdate is false).
        self.crd()
        cr = {"apiVersion": "wire.example.com/v1alpha1", "kind": "WireThing",
              "metadata": {"name": "u"}, "spec": {"size": 2}}
        self.ok("POST", "/apis/wire.example.com/v1alpha1/namespaces/NAMESPACE/wirethings", cr)
        r = self.req("PUT", "/apis/wire.example.com/v1alpha1/namespaces/NAMESPACE/wirethings/u",
                     cr)
        self.assertEqual((r.status, r.json["reason"]), (422, "Invalid"))
        self.assertEqual(r.json["details"]["causes"][0]["field"], "metadata.resourceVersion")
        r = self.req("PUT", "/api/v1/namespaces/NAMESPACE/secrets/nope", body)
        self.assertEqual(r.status, 404)
        body["metadata"]["name"] = "other"
        r = self.req("PUT", "/api/v1/namespaces/NAMESPACE/secrets/c", body)
        self.assertEqual((r.status, r.json["reason"]), (400, "BadRequest"))

    def test_generation_only_on_spec_change(self):
        d = self.deployment()
        self.assertEqual(d["metadata"]["generation"], 1)
        base = "/apis/apps/v1/namespaces/NAMESPACE/deployments/api"
        d = self.ok("PATCH", base, {"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}}},
                    "application/merge-patch+json")
        self.assertEqual(d["metadata"]["generation"], 1, "metadata change")
        d = self.ok("PATCH", base + "/status", {"status": {"replicas": 2}},
                    "application/merge-patch+json")
        self.assertEqual(d["metadata"]["generation"], 1, "status change")
        d = self.ok("PATCH", base, {"spec": {"replicas": 3}}, "application/merge-patch+json")
        self.assertEqual(d["metadata"]["generation"], 2, "spec change")
        rv = rv_of(d)
        d = self.ok("PATCH", base, {"spec": {"replicas": 3}}, "application/merge-patch+json")
        self.assertEqual((d["metadata"]["generation"], rv_of(d)), (2, rv), "no-op write")
        self.assertNotIn("generation", self.secret("nogen")["metadata"])
        # custom resources with a status subresource: any non-metadata, non-status change
        self.crd()
        p = "/apis/wire.example.com/v1alpha1/namespaces/NAMESPACE/wirethings"
        cr = self.ok("POST", p, {"apiVersion": "wire.example.com/v1alpha1", "kind": "WireThing",
                                 "metadata": {"name": "g"}, "spec": {"size": 2}})
        self.assertEqual(cr["metadata"]["generation"], 1)
        cr = self.ok("PATCH", p + "/g", {"metadata": {"labels": {"a": "b"}}},
                     "application/merge-patch+json")
        self.assertEqual(cr["metadata"]["generation"], 1)
        cr = self.ok("PATCH", p + "/g", {"spec": {"size": 3}}, "application/merge-patch+json")
        self.assertEqual(cr["metadata"]["generation"], 2)

    def test_observed_generation_is_never_touched_by_server(self):
        base = "/apis/apps/v1/namespaces/NAMESPACE/deployments/api"
        self.deployment()
        self.ok("PATCH", base + "/status", {"status": {"observedGeneration": 1}},
                "application/merge-patch+json")
        for i in range(3):
            d = self.ok("PATCH", base, {"spec": {"replicas": 4 + i}},
                        "application/merge-patch+json")
        self.assertEqual(d["metadata"]["generation"], 4)
        self.assertEqual(d["status"]["observedGeneration"], 1)

    def test_status_subresource_isolation(self):
        base = "/apis/apps/v1/namespaces/NAMESPACE/deployments/api"
        d = self.deployment()
        self.assertEqual(d["status"], {})
        d["status"] = {"replicas": 9}
        d["spec"]["replicas"] = 5
        d = self.ok("PUT", base, d)
        self.assertEqual(d["status"], {}, "main resource ignores .status")
        self.assertEqual(d["spec"]["replicas"], 5)
        d["status"] = {"replicas": 7}
        d["spec"]["replicas"] = 1
        d["metadata"]["labels"] = {"z": "z"}
        d = self.ok("PUT", base + "/status", d)
        self.assertEqual(d["status"]["replicas"], 7)
        self.assertEqual(d["spec"]["replicas"], 5, "status subresource ignores .spec")
        self.assertNotIn("labels", d["metadata"])
        self.assertEqual(self.ok("GET", base + "/status")["status"]["replicas"], 7)
        r = self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets/x/status")
        self.assertEqual(r.status, 404, "secrets have no status subresource")

    def test_patch_content_types(self):
        base = "/apis/apps/v1/namespaces/NAMESPACE/deployments/api"
        self.deployment()
        d = self.ok("PATCH", base, {"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "example.invalid/side:1"},
            {"name": "api", "env": [{"name": "EXTRA", "value": "1"}]}]}}}},
            "application/strategic-merge-patch+json")
        cs = d["spec"]["template"]["spec"]["containers"]
        self.assertEqual([c["name"] for c in cs], ["api", "side"])
        self.assertEqual([e["name"] for e in cs[0]["env"]], ["SVC_API_KEY", "EXTRA"])
        self.assertEqual(cs[0]["image"], "example.invalid/api:1")
        d = self.ok("PATCH", base, {"spec": {"template": {"spec": {"containers": [
            {"name": "side", "$patch": "delete"}]}}}}, "application/strategic-merge-patch+json")
        self.assertEqual(len(d["spec"]["template"]["spec"]["containers"]), 1)
        # merge patch replaces lists wholesale and deletes with null
        d = self.ok("PATCH", base, {"metadata": {"labels": {"a": "1", "b": "2"}}},
                    "application/merge-patch+json")
        d = self.ok("PATCH", base, {"metadata": {"labels": {"a": None}}},
                    "application/merge-patch+json")
        self.assertEqual(d["metadata"]["labels"], {"b": "2"})
        # JSON patch: every op, and a failing test op is 422
        ops = [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}},
               {"op": "copy", "from": "/metadata/annotations/k", "path": "/metadata/labels/c"},
               {"op": "move", "from": "/metadata/labels/b", "path": "/metadata/labels/m"},
               {"op": "replace", "path": "/spec/replicas", "value": 3},
               {"op": "remove", "path": "/metadata/annotations/k"},
               {"op": "test", "path": "/spec/replicas", "value": 3}]
        d = self.ok("PATCH", base, ops, "application/json-patch+json")
        self.assertEqual(d["metadata"]["labels"], {"c": "v", "m": "2"})
        self.assertEqual(d["spec"]["replicas"], 3)
        for bad in ([{"op": "test", "path": "/spec/replicas", "value": 4}],
                    [{"op": "remove", "path": "/spec/nope"}],
                    [{"op": "replace", "path": "/a/b/c", "value": 1}]):
            r = self.req("PATCH", base, bad, "application/json-patch+json")
            self.assertEqual((r.status, r.json["reason"]), (422, "Invalid"), r.raw)
        r = self.req("PATCH", base, {"x": 1}, "text/plain")
        self.assertEqual(r.status, 415)
        self.assertIn("application/strategic-merge-patch+json", r.json["message"])
        r = self.req("PATCH", base, "{not json", "application/merge-patch+json")
        self.assertEqual((r.status, r.json["reason"]), (400, "BadRequest"))
        self.crd()
        p = "/apis/wire.example.com/v1alpha1/namespaces/NAMESPACE/wirethings"
        self.ok("POST", p, {"apiVersion": "wire.example.com/v1alpha1", "kind": "WireThing",
                            "metadata": {"name": "sm"}, "spec": {"size": 2}})
        r = self.req("PATCH", p + "/sm", {"spec": {"size": 3}},
                     "application/strategic-merge-patch+json")
        self.assertEqual((r.status, r.json["reason"]), (415, "UnsupportedMediaType"))

    def test_pagination_covers_every_item_once(self):
        names = set("p%03d" % i for i in range(57))
        for n in sorted(names, reverse=True):
            self.secret(n, labels={"page": "yes"})
        other = "%s-b" % self.ns
        self.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": other}})
        self.secret("p000", ns=other)
        seen, cont, pages, remaining = [], "", 0, []
        while True:
            q = "limit=10" + ("&continue=" + urllib.parse.quote(cont) if cont else "")
            lst = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets?" + q)
            pages += 1
            seen += [i["metadata"]["name"] for i in lst["items"]]
            self.assertNotIn("kind", lst["items"][0], "list items carry no kind")
            cont = lst["metadata"].get("continue")
            if not cont:
                self.assertNotIn("remainingItemCount", lst["metadata"])
                break
            remaining.append(lst["metadata"]["remainingItemCount"])
        self.assertEqual(seen, sorted(names))
        self.assertEqual(pages, 6)
        self.assertEqual(remaining, [47, 37, 27, 17, 7])
        # with a label selector: still complete, but no remainingItemCount
        seen, cont = [], ""
        while True:
            q = "labelSelector=page%3Dyes&limit=7" + (
                "&continue=" + urllib.parse.quote(cont) if cont else "")
            lst = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets?" + q)
            self.assertNotIn("remainingItemCount", lst["metadata"])
            seen += [i["metadata"]["name"] for i in lst["items"]]
            cont = lst["metadata"].get("continue")
            if not cont:
                break
        self.assertEqual(seen, sorted(names))
        # all namespaces: ordered by namespace then name
        all_ = self.ok("GET", "/api/v1/secrets?limit=1000")["items"]
        mine = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in all_
                if i["metadata"]["namespace"] in (self.ns, other)]
        self.assertEqual(len(mine), 58)
        self.assertEqual(mine, sorted(mine, key=lambda x: x[0] + "/" + x[1]), "etcd key order")
        r = self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets?limit=1&continue=garbage")
        self.assertEqual(r.status, 400)

    def test_label_and_field_selectors(self):
        self.secret("a", {"app": "x", "tier": "fe"})
        self.secret("b", {"app": "y", "tier": "be"})
        self.secret("c", {"app": "z"})
        self.secret("d")
        cases = {"app=x": "a", "app==x": "a", "app!=x": "bcd", "app in (x,y)": "ab",
                 "app notin (x,y)": "cd", "tier": "ab", "!tier": "cd", "app,!tier": "c",
                 "app=x,tier=fe": "a", "app=x,tier=be": "", "": "abcd"}
        for sel, want in cases.items():
            lst = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets?labelSelector=" +
                          urllib.parse.quote(sel))
            self.assertEqual("".join(i["metadata"]["name"] for i in lst["items"]), want, sel)
        fcases = {"metadata.name=b": "b", "metadata.name!=b": "acd",
                  "metadata.namespace=%s" % self.ns: "abcd",
                  "metadata.name!=a,metadata.name!=b": "cd", "type=Opaque": "abcd"}
        for sel, want in fcases.items():
            lst = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets?fieldSelector=" +
                          urllib.parse.quote(sel))
            self.assertEqual("".join(i["metadata"]["name"] for i in lst["items"]), want, sel)
        for q in ("fieldSelector=spec.x%3D1", "labelSelector=%3D%3D%3D"):
            r = self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets?" + q)
            self.assertEqual((r.status, r.json["reason"]), (400, "BadRequest"), q)

    def test_watch_resume_replays_missed_events_in_order(self):
        rv0 = rv_of(self.secret("r"))
        expect = []
        for i in range(4):
            o = self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/r",
                        {"data": {"k": "dg%d=" % i}}, "application/merge-patch+json")
            expect.append(("MODIFIED", rv_of(o)))
        expect.append(("ADDED", rv_of(self.secret("r2"))))
        expect.append(("DELETED", None))
        self.ok("DELETE", "/api/v1/namespaces/NAMESPACE/secrets/r")
        self.secret("other-ns-noise", ns="default")
        w = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=true&resourceVersion=%d"
                       "&timeoutSeconds=1" % rv0)
        evs = w.events(10)
        got = [(e["type"], rv_of(e["object"])) for e in evs]
        self.assertEqual([t for t, _ in got], [t for t, _ in expect])
        self.assertEqual([r for _, r in got[:-1]], [r for _, r in expect[:-1]])
        self.assertGreater(got[-1][1], got[-2][1], "DELETED carries a new RV")
        self.assertEqual(evs[-1]["object"]["metadata"]["name"], "r")
        rvs = [r for _, r in got]
        self.assertEqual(rvs, sorted(rvs))
        # resuming from the last event's RV yields nothing old
        w2 = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&resourceVersion=%d"
                        "&timeoutSeconds=1" % rvs[-1])
        self.assertEqual(w2.events(10), [])

    def test_watch_rv_zero_and_unset_start_with_synthetic_added(self):
        self.secret("x1")
        self.secret("x2")
        for rv in ("0", ""):
            w = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&timeoutSeconds=1"
                           "&resourceVersion=" + rv)
            evs = w.events(5)
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                             [("ADDED", "x1"), ("ADDED", "x2")])

    def test_watch_live_events_and_selectors(self):
        w = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&labelSelector=sel%3Dyes"
                       "&timeoutSeconds=5")
        wf = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&fieldSelector="
                        "metadata.name%3Dfs&timeoutSeconds=5")
        self.wait_watches(2)
        self.secret("fs")
        self.secret("ls", {"sel": "yes"})
        self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/ls",
                {"metadata": {"labels": {"sel": "no"}}}, "application/merge-patch+json")
        self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/fs",
                {"metadata": {"labels": {"sel": "yes"}}}, "application/merge-patch+json")
        evs = w.events(3)
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                         [("ADDED", "ls"), ("DELETED", "ls"), ("ADDED", "fs")])
        self.assertEqual(evs[1]["object"]["metadata"]["labels"], {"sel": "no"})
        evs = wf.events(2)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED"])

    def wait_watches(self, n):
        deadline = time.monotonic() + 5
        while self.admin("GET", "/watches").json["open"] < n:
            self.assertLess(time.monotonic(), deadline, "watches not established")
            time.sleep(0.01)

    def test_watch_410_after_compact(self):
        rv = rv_of(self.secret("cmp"))
        self.secret("cmp2")
        c = self.admin("POST", "/compact").json
        self.assertGreaterEqual(int(c["compactedResourceVersion"]), rv)
        w = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&resourceVersion=%d" % rv)
        self.assertEqual(w.resp.status, 200)
        ev = w.next()
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual((ev["object"]["code"], ev["object"]["reason"]), (410, "Expired"))
        self.assertIsNone(w.next(), "the stream ends after the ERROR")
        # a list continue token from before the compaction is expired too
        lst = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets?limit=1")
        self.admin("POST", "/compact")
        self.secret("cmp3")
        self.admin("POST", "/compact")
        r = self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets?limit=1&continue=" +
                     urllib.parse.quote(lst["metadata"]["continue"]))
        self.assertEqual((r.status, r.json["reason"]), (410, "Expired"))

    def test_bookmarks_carry_only_resource_version(self):
        rv = rv_of(self.secret("bm"))
        w = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&resourceVersion=%d"
                       "&allowWatchBookmarks=true&timeoutSeconds=2" % rv)
        evs = [e for e in iter(w.next, None)]
        bms = [e for e in evs if e["type"] == "BOOKMARK"]
        self.assertGreaterEqual(len(bms), 2, "periodic bookmarks (interval 0.5 s)")
        for b in bms:
            self.assertEqual(set(b["object"]), {"kind", "apiVersion", "metadata"})
            self.assertEqual(set(b["object"]["metadata"]), {"resourceVersion",
                                                            "creationTimestamp"})
            self.assertGreaterEqual(int(b["object"]["metadata"]["resourceVersion"]), rv)
        w2 = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&resourceVersion=%d"
                        "&timeoutSeconds=1" % rv)
        self.assertEqual([e for e in iter(w2.next, None)], [], "no bookmarks unless asked")

    def test_watch_closes_at_timeout_seconds(self):
        for t in (1, 2):
            start = time.monotonic()
            w = self.watch("/api/v1/namespaces/NAMESPACE/configmaps?watch=1&timeoutSeconds=%d"
                           % t)
            self.assertIsNone(w.next())
            took = time.monotonic() - start
            self.assertGreaterEqual(took, t - 0.05)
            self.assertLess(took, t + 1.0)

    def test_delete_conventions_and_finalizers(self):
        s = self.secret("del")
        st = self.ok("DELETE", "/api/v1/namespaces/NAMESPACE/secrets/del")
        self.assertEqual((st["kind"], st["status"]), ("Status", "Success"))
        self.assertEqual(st["details"], {"name": "del", "kind": "secrets",
                                         "uid": s["metadata"]["uid"]})
        r = self.req("DELETE", "/api/v1/namespaces/NAMESPACE/secrets/del")
        self.assertEqual((r.status, r.json["reason"]), (404, "NotFound"))
        self.crd()
        p = "/apis/wire.example.com/v1alpha1/namespaces/NAMESPACE/wirethings"
        self.ok("POST", p, {"apiVersion": "wire.example.com/v1alpha1", "kind": "WireThing",
                            "metadata": {"name": "f", "finalizers": ["keyrotator.io/x"]},
                            "spec": {"size": 2}})
        w = self.watch(p + "?watch=1&fieldSelector=metadata.name%3Df&timeoutSeconds=5")
        o = self.ok("DELETE", p + "/f")
        self.assertEqual(o["kind"], "WireThing", "custom resources return the object")
        self.assertIn("deletionTimestamp", o["metadata"])
        self.assertEqual(o["metadata"]["generation"], 2)
        self.ok("GET", p + "/f")
        self.ok("PATCH", p + "/f", {"metadata": {"finalizers": None}},
                "application/merge-patch+json")
        self.assertEqual(self.req("GET", p + "/f").status, 404)
        self.assertEqual([e["type"] for e in w.events(4)],
                         ["ADDED", "MODIFIED", "MODIFIED", "DELETED"])
        g = self.ok("POST", "/api/v1/namespaces/NAMESPACE/configmaps",
                    {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"generateName": "gen-"}})
        self.assertTrue(g["metadata"]["name"].startswith("gen-"))
        self.assertEqual(len(g["metadata"]["name"]), 9)

    def test_validation_errors(self):
        cases = [({"apiVersion": "v1", "kind": "Secret", "metadata": {}}, 422,
                  "metadata.name: Required value: name or generateName is required"),
                 ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Bad_Name"}},
                  422, 'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123'),
                 ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k"}}, 400,
                  "the object provided is unrecognized"),
                 ({"apiVersion": "v2", "kind": "Secret", "metadata": {"name": "k"}}, 400,
                  "the API version in the data (v2) does not match")]
        for body, code, msg in cases:
            r = self.req("POST", "/api/v1/namespaces/NAMESPACE/secrets", body)
            self.assertEqual(r.status, code, r.raw)
            self.assertIn(msg, r.json["message"])
        r = self.req("POST", "/api/v1/namespaces/NAMESPACE/secrets", b"{garbage")
        self.assertEqual((r.status, r.json["reason"]), (400, "BadRequest"))
        r = self.req("POST", "/api/v1/namespaces/no-such-ns/secrets",
                     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}})
        self.assertEqual((r.status, r.json["message"]), (404, 'namespaces "no-such-ns" not found'))
        r = self.req("GET", "/api/v1/namespaces/NAMESPACE/widgets")
        self.assertEqual(r.json, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure", "message": "the server could not find "
                                  "the requested resource", "reason": "NotFound",
                                  "details": {}, "code": 404})
        r = self.req("GET", "/apis/apps/v1/namespaces/NAMESPACE/deployments/nope")
        self.assertEqual(r.json["message"], 'deployments.apps "nope" not found')
        self.assertEqual(r.json["details"], {"name": "nope", "group": "apps",
                                             "kind": "deployments"})

    def test_crd_schema_defaults_pruning_and_cel(self):
        self.crd()
        p = "/apis/wire.example.com/v1alpha1/namespaces/NAMESPACE/wirethings"

        def create(name, spec):
            return self.req("POST", p, {"apiVersion": "wire.example.com/v1alpha1",
                                        "kind": "WireThing", "metadata": {"name": name},
                                        "spec": spec, "junk": 1})
        r = create("ok", {"size": 2, "unknown": "x"})
        self.assertEqual(r.status, 201)
        self.assertEqual(r.json["spec"], {"size": 2}, "pruning")
        self.assertNotIn("junk", r.json)
        bad = {"enum": ({"size": 2, "color": "green"}, "spec.color", "FieldValueNotSupported"),
               "pattern": ({"size": 2, "code": "A1"}, "spec.code", "FieldValueInvalid"),
               "maxlen": ({"size": 2, "code": "abcdef"}, "spec.code", "FieldValueTooLong"),
               "type": ({"size": "2"}, "spec.size", "FieldValueTypeInvalid"),
               "maxitems": ({"size": 2, "stages": [{"name": c} for c in "abcd"]},
                            "spec.stages", "FieldValueTooMany"),
               "itemreq": ({"size": 2, "stages": [{}]}, "spec.stages[0].name",
                           "FieldValueRequired"),
               "cel2": ({"size": 2, "color": "black"}, "spec", "FieldValueInvalid")}
        for name, (spec, field, reason) in bad.items():
            r = create(name, spec)
            self.assertEqual(r.status, 422, (name, r.raw))
            self.assertEqual((r.json["details"]["causes"][0]["field"],
                              r.json["details"]["causes"][0]["reason"]), (field, reason), name)
        r = self.req("GET", "/apis/wire.example.com/v1alpha1/wirethings")
        self.assertEqual(r.json["kind"], "WireThingList")
        self.assertEqual(r.json["items"][0]["kind"], "WireThing")
        d = self.ok("GET", "/apis")
        self.assertIn("wire.example.com", [g["name"] for g in d["groups"]])

    def test_status_writes_prune_validate_and_sort_like_full_writes(self):
        """A status write to an object the server stored under the current schema visits only
        status (the rest is a copy of what passed before): the reply must be what a full write
        gives - status pruned, defaulted, validated and sorted, the rest untouched - and after
        a schema change, or with a transition rule, the whole object is visited again."""
        def crd(plural, spec_props, spec_rules=()):
            spec = {"type": "object", "properties": spec_props}
            if spec_rules:
                spec["x-kubernetes-validations"] = [{"rule": r} for r in spec_rules]
            return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": plural + ".ratchet.example.com"},
                    "spec": {"group": "ratchet.example.com", "scope": "Namespaced",
                             "names": {"plural": plural, "kind": plural.title()[:-1]},
                             "versions": [{"name": "v1", "served": True, "storage": True,
                                           "subresources": {"status": {}},
                                           "schema": {"openAPIV3Schema": {
                                               "type": "object", "properties": {
                                                   "spec": spec,
                                                   "status": {"type": "object", "properties": {
                                                       "phase": {"type": "string",
                                                                 "enum": ["A", "B"]},
                                                       "count": {"type": "integer",
                                                                 "default": 0},
                                                       "zone": {"type": "string"}}}}}}}]}}
        crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        made = self.ok("POST", crd_path, crd("gauges", {"size": {"type": "integer"},
                                                       "tier": {"type": "string"}}))
        self.addCleanup(self.req, "DELETE", crd_path + "/gauges.ratchet.example.com")
        p = "/apis/ratchet.example.com/v1/namespaces/NAMESPACE/gauges"
        obj = self.ok("POST", p, {"apiVersion": "ratchet.example.com/v1", "kind": "Gauge",
                                  "metadata": {"name": "g"}, "spec": {"size": 2}})

        def put_status(status, code=200):
            body = dict(obj, status=status)
            r = self.req("PUT", p + "/g/status", body)
            self.assertEqual(r.status, code, r.raw[:600])
            return r
        r = put_status({"zone": "z", "phase": "A", "junk": {"x": 1}})
        self.assertEqual(r.json["status"], {"count": 0, "phase": "A", "zone": "z"},
                         "unknown field pruned, default applied")
        self.assertEqual(r.json["spec"], {"size": 2})
        self.assertEqual(r.raw.decode().rstrip("\n"),
                         json.dumps(r.json, sort_keys=True, separators=(",", ":")),
                         "every level sorted, as a full write stores it")
        obj = r.json
        r = put_status({"phase": "C"}, 422)
        self.assertEqual([(c["field"], c["reason"]) for c in r.json["details"]["causes"]],
                         [("status.phase", "FieldValueNotSupported")])
        # A new schema: a default for spec.tier. The next status write visits spec again.
        new = crd("gauges", {"size": {"type": "integer"},
                             "tier": {"type": "string", "default": "gold"}})
        new["metadata"]["resourceVersion"] = made["metadata"]["resourceVersion"]
        self.ok("PUT", crd_path + "/gauges.ratchet.example.com", new)
        deadline = time.monotonic() + 5
        while True:  # the schema is served once the CRD update is stored
            r = put_status({"phase": "B"})
            if r.json["spec"].get("tier") or time.monotonic() > deadline:
                break
            obj = r.json
        self.assertEqual(r.json["spec"], {"size": 2, "tier": "gold"})
        # A transition rule (self.size != oldSelf.size) fails on any write that keeps spec.
        self.ok("POST", crd_path, crd("meters", {"size": {"type": "integer"}},
                                      ["self.size != oldSelf.size"]))
        self.addCleanup(self.req, "DELETE", crd_path + "/meters.ratchet.example.com")
        p = "/apis/ratchet.example.com/v1/namespaces/NAMESPACE/meters"
        obj = self.ok("POST", p, {"apiVersion": "ratchet.example.com/v1", "kind": "Meter",
                                  "metadata": {"name": "g"}, "spec": {"size": 2}})
        r = put_status({"phase": "A"}, 422)
        self.assertEqual(r.json["details"]["causes"][0]["field"], "spec")

    def test_cached_encodings_follow_every_change(self):
        """Watchers share one encoding of each event: every watcher, GET and list must still
        see each version's own bytes, with its own event type."""
        all_ = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&timeoutSeconds=5")
        sel = self.watch("/api/v1/namespaces/NAMESPACE/secrets?watch=1&labelSelector=sel%3Dyes"
                         "&timeoutSeconds=5")
        self.wait_watches(2)
        sent = [self.secret("enc", {"sel": "yes"}, {"v": "MA=="})]
        for i in (1, 2):
            sent.append(self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/enc",
                                {"data": {"v": "MQ==" if i == 1 else "Mg=="}},
                                "application/merge-patch+json"))
            got = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets/enc")
            self.assertEqual(got, sent[-1])
            items = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets")["items"]
            self.assertEqual(items[0]["data"], sent[-1]["data"])
        sent.append(self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/enc",
                            {"metadata": {"labels": {"sel": "no"}}},
                            "application/merge-patch+json"))
        evs = all_.events(4)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED"])
        self.assertEqual([e["object"] for e in evs], sent)
        evs = sel.events(4)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED", "MODIFIED", "DELETED"])
        self.assertEqual([e["object"] for e in evs], sent)

    def test_stored_bytes_follow_patch_status_delete(self):
        """GET and list pages are built from each stored object's cached JSON: after a patch,
        a status update and a delete, GET, every list page and the watch give the new bytes."""
        self.crd()
        p = "/apis/wire.example.com/v1alpha1/namespaces/NAMESPACE/wirethings"
        w = self.watch(p + "?watch=1&timeoutSeconds=5")
        self.wait_watches(1)

        def cr(name, size):
            return {"apiVersion": "wire.example.com/v1alpha1", "kind": "WireThing",
                    "metadata": {"name": name}, "spec": {"size": size}}

        def check(name, want):
            r = self.req("GET", p + "/" + name)
            self.assertEqual(r.status, 200, r.raw[:300])
            self.assertEqual(r.json, want)
            pages, cont = [], ""
            while True:  # pages of one, each item as GET returns it
                page = self.ok("GET", p + "?limit=1" + (("&continue=" + cont) if cont else ""))
                pages += page["items"]
                cont = page["metadata"].get("continue")
                if not cont:
                    break
            self.assertIn(want, pages)
            self.assertEqual(self.ok("GET", p)["items"], pages)
            return r.raw

        sent = [self.ok("POST", p, cr("b", 1)), self.ok("POST", p, cr("d", 2))]
        check("b", sent[0])
        check("d", sent[1])
        sent.append(self.ok("PATCH", p + "/b", {"spec": {"size": 5}},
                            "application/merge-patch+json"))
        check("b", sent[-1])
        body = dict(sent[-1], status={"phase": "Ready"})
        sent.append(self.ok("PUT", p + "/b/status", body))
        self.assertEqual(sent[-1]["status"], {"phase": "Ready"})
        check("b", sent[-1])
        self.assertEqual(self.ok("GET", p + "/b/status"), sent[-1])
        sent.append(self.ok("POST", p, cr("a", 3)))  # a new key sorts first in the pages
        check("a", sent[-1])
        self.assertEqual([o["metadata"]["name"] for o in self.ok("GET", p)["items"]],
                         ["a", "b", "d"])
        self.ok("DELETE", p + "/b")
        self.assertEqual(self.req("GET", p + "/b").status, 404)
        self.assertEqual([o["metadata"]["name"] for o in self.ok("GET", p)["items"]],
                         ["a", "d"])
        self.assertEqual([o["metadata"]["name"] for o in
                          self.ok("GET", p + "?limit=1")["items"]], ["a"])
        sent.append(self.ok("POST", p, cr("b", 4)))  # same key again: the new object's bytes
        check("b", sent[-1])
        evs = w.events(7)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "ADDED", "MODIFIED", "MODIFIED",
                                                    "ADDED", "DELETED", "ADDED"])
        self.assertEqual([e["object"] for e in evs if e["type"] != "DELETED"], sent)
        # a built-in type: a list item has no kind/apiVersion; GET after a patch is new
        self.secret("s1", data={"v": "MA=="})
        self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets/s1")
        new = self.ok("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/s1",
                      {"data": {"v": "MQ=="}}, "application/merge-patch+json")
        self.assertEqual(self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets/s1"), new)
        item = self.ok("GET", "/api/v1/namespaces/NAMESPACE/secrets")["items"][0]
        self.assertEqual(item, {k: v for k, v in new.items() if k not in ("kind", "apiVersion")})

    def test_schema_change_applies_at_once(self):
        """Schema facts are cached per schema node: an updated CRD must be enforced at once."""
        crd = json.loads(json.dumps(WIRETHING_CRD).replace("wire.example.com",
                                                           "schema.example.com"))
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + \
            crd["metadata"]["name"]
        self.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.addCleanup(self.req, "DELETE", path)
        p = "/apis/schema.example.com/v1alpha1/namespaces/NAMESPACE/wirethings"

        def create(name, code):
            return self.req("POST", p, {"apiVersion": "schema.example.com/v1alpha1",
                                        "kind": "WireThing", "metadata": {"name": name},
                                        "spec": {"size": 2, "code": code}})
        self.assertEqual(create("a", "abcde").status, 201)
        self.assertEqual(create("b", "abcdefg").status, 422)
        cur = self.ok("GET", path)
        props = cur["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        props["spec"]["properties"]["code"]["maxLength"] = 3
        props["spec"]["properties"]["size"]["default"] = 7
        props["spec"]["required"] = []
        self.ok("PUT", path, cur)
        self.assertEqual(create("c", "abcde").status, 422)
        self.assertEqual(create("d", "abc").status, 201)
        r = self.req("POST", p, {"apiVersion": "schema.example.com/v1alpha1",
                                 "kind": "WireThing", "metadata": {"name": "e"}, "spec": {}})
        self.assertEqual((r.status, r.json["spec"]), (201, {"size": 7}))

    def test_namespaces_and_discovery(self):
        v1 = self.ok("GET", "/api/v1")
        names = {r["name"] for r in v1["resources"]}
        self.assertTrue({"secrets", "configmaps", "events", "namespaces"} <= names)
        apps = self.ok("GET", "/apis/apps/v1")
        self.assertIn("deployments/status", [r["name"] for r in apps["resources"]])
        self.assertEqual(self.ok("GET", "/api")["versions"], ["v1"])
        self.assertEqual(self.ok("GET", "/version")["major"], "1")
        self.secret("in-ns")
        ns = self.ok("GET", "/api/v1/namespaces/NAMESPACE")
        self.assertEqual(ns["status"]["phase"], "Active")
        self.ok("DELETE", "/api/v1/namespaces/NAMESPACE")
        self.assertEqual(self.req("GET", "/api/v1/namespaces/NAMESPACE").status, 404)
        self.assertEqual(self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets/in-ns").status,
                         404)


class TestPodsNodesReplicaSets(Base):
    """core v1 pods and nodes, apps/v1 replicasets: what the kubelet and workload-controller
    stand-ins of tests/sim use. No golden was recorded for them: the rules checked are
    upstream's (pod strategy and registry, v1.26), named in each test."""

    POD = "/api/v1/namespaces/NAMESPACE/pods"

    def pod(self, name, node="", grace=30, **spec):
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": dict({"terminationGracePeriodSeconds": grace,
                              "containers": [{"name": "c", "image": "sim/client"}]}, **spec)}
        if node:
            body["spec"]["nodeName"] = node
        return self.ok("POST", self.POD, body)

    def watch_pods(self, query=""):
        return self.watch(self.POD + "?watch=1&timeoutSeconds=10" + query)

    def test_pod_defaults_status_and_node_field_selector(self):
        p = self.pod("a", node="n1")
        self.pod("b", node="n2")
        spec = p["spec"]
        self.assertEqual(p["status"], {"phase": "Pending", "qosClass": "BestEffort"})
        self.assertEqual((spec["restartPolicy"], spec["dnsPolicy"], spec["schedulerName"],
                          spec["serviceAccountName"], spec["enableServiceLinks"]),
                         ("Always", "ClusterFirst", "default-scheduler", "default", True))
        self.assertEqual(spec["containers"][0]["imagePullPolicy"], "Always")
        self.assertEqual({t["key"] for t in spec["tolerations"]},
                         {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
        self.assertNotIn("generation", p["metadata"], "pods have no generation in v1.26")
        lst = self.ok("GET", self.POD + "?fieldSelector=spec.nodeName%3Dn1")
        self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["a"])
        lst = self.ok("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn2")
        self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["b"])
        w = self.watch_pods("&fieldSelector=spec.nodeName%3Dn1")
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in w.events(1)],
                         [("ADDED", "a")])
        st = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        o = self.ok("PATCH", self.POD + "/a/status", {"status": st},
                    "application/merge-patch+json")
        self.assertEqual(o["status"]["phase"], "Running")
        self.assertEqual(o["status"]["qosClass"], "BestEffort")
        o = self.ok("PATCH", self.POD + "/a", {"status": {"phase": "Failed"}},
                    "application/merge-patch+json")
        self.assertEqual(o["status"]["phase"], "Running", "the main resource ignores status")
        self.assertEqual(w.events(1)[0]["object"]["status"]["phase"], "Running")
        r = self.req("PATCH", self.POD + "/a", {"spec": {"nodeName": "n2"}},
                     "application/merge-patch+json")
        self.assertEqual((r.status, r.json["reason"]), (422, "Invalid"))
        self.assertIn("pod updates may not change fields", r.json["message"])
        o = self.ok("PATCH", self.POD + "/a", {"spec": {"containers": [
            {"name": "c", "image": "sim/client:2"}]}}, "application/strategic-merge-patch+json")
        self.assertEqual(o["spec"]["containers"][0]["image"], "sim/client:2")
        r = self.req("GET", self.POD + "?fieldSelector=spec.host%3Dn1")
        self.assertEqual(r.status, 400)

    def test_pod_graceful_deletion(self):
        # rest.BeforeDelete + podStrategy.CheckGracefulDelete: a bound pod gets
        # deletionTimestamp = now + grace and stays (the kubelet deletes it with grace 0);
        # a later request may only shorten the period; the reply is the pod itself.
        uid = self.pod("g", node="n1", grace=30)["metadata"]["uid"]
        w = self.watch_pods("&fieldSelector=metadata.name%3Dg")
        t0 = time.time()
        o = self.ok("DELETE", self.POD + "/g")
        self.assertEqual(o["kind"], "Pod")
        md = o["metadata"]
        self.assertEqual(md["deletionGracePeriodSeconds"], 30)
        due = calendar.timegm(time.strptime(md["deletionTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertGreater(due, t0 + 25)
        self.assertIn("deletionTimestamp", self.ok("GET", self.POD + "/g")["metadata"])
        o = self.ok("PATCH", self.POD + "/g/status", {"status": {"phase": "Running"}},
                    "application/merge-patch+json")
        self.assertEqual(o["metadata"]["deletionGracePeriodSeconds"], 30,
                         "a status write keeps a terminating pod")
        again = self.ok("DELETE", self.POD + "/g")
        self.assertEqual(again["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"],
                         "a second delete without a shorter period changes nothing")
        o = self.ok("DELETE", self.POD + "/g?gracePeriodSeconds=60")
        self.assertEqual(o["metadata"]["deletionGracePeriodSeconds"], 30, "never longer")
        o = self.ok("DELETE", self.POD + "/g", {"apiVersion": "v1", "kind": "DeleteOptions",
                                                "gracePeriodSeconds": 5})
        self.assertEqual(o["metadata"]["deletionGracePeriodSeconds"], 5)
        self.assertEqual(o["metadata"]["deletionTimestamp"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
                             due - 25)), "shortened from the first request")
        r = self.req("DELETE", self.POD + "/g", {"gracePeriodSeconds": 0,
                                                  "preconditions": {"uid": "other"}})
        self.assertEqual(r.status, 409)
        gone = self.ok("DELETE", self.POD + "/g", {"gracePeriodSeconds": 0,
                                                   "preconditions": {"uid": uid}})
        self.assertEqual(gone["kind"], "Pod", "pods return the deleted object")
        self.assertEqual(self.req("GET", self.POD + "/g").status, 404)
        self.assertEqual([e["type"] for e in w.events(5)],
                         ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"])
        # Not bound to a node, or ended: deleted at once whatever the grace.
        self.pod("u", grace=30)
        self.ok("DELETE", self.POD + "/u")
        self.assertEqual(self.req("GET", self.POD + "/u").status, 404)
        self.pod("f", node="n1", grace=30)
        self.ok("PATCH", self.POD + "/f/status", {"status": {"phase": "Succeeded"}},
                "application/merge-patch+json")
        self.ok("DELETE", self.POD + "/f")
        self.assertEqual(self.req("GET", self.POD + "/f").status, 404)
        # A finalizer keeps a pod deleted with grace 0 until it is removed.
        self.ok("POST", self.POD, {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "k", "finalizers": ["keyrotator.io/x"]}, "spec": {
            "nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}})
        o = self.ok("DELETE", self.POD + "/k?gracePeriodSeconds=0")
        self.assertEqual(o["metadata"]["deletionGracePeriodSeconds"], 0)
        self.ok("PATCH", self.POD + "/k", {"metadata": {"finalizers": None}},
                "application/merge-patch+json")
        self.assertEqual(self.req("GET", self.POD + "/k").status, 404)

    def test_nodes_and_replicasets(self):
        name = self.ns + "-node"
        n = self.ok("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"taints": [{"key": "keyrotator.io/e2e", "value": "x",
                                 "effect": "NoSchedule"}]}})
        self.addCleanup(self.req, "DELETE", "/api/v1/nodes/" + name)
        self.assertNotIn("namespace", n["metadata"])
        self.assertEqual(n["spec"]["taints"][0]["effect"], "NoSchedule")
        self.assertEqual(self.req("GET", "/api/v1/namespaces/NAMESPACE/nodes/" + name).status,
                         404, "nodes are cluster-scoped")
        cond = [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
        o = self.ok("PATCH", "/api/v1/nodes/%s/status" % name, {"status": {"conditions": cond}},
                    "application/merge-patch+json")
        self.assertEqual(o["status"]["conditions"], cond)
        self.assertIn(name, [i["metadata"]["name"] for i in self.ok("GET", "/api/v1/nodes")[
            "items"]])
        v1 = {r["name"] for r in self.ok("GET", "/api/v1")["resources"]}
        self.assertTrue({"pods", "pods/status", "nodes", "nodes/status"} <= v1)
        apps = {r["name"] for r in self.ok("GET", "/apis/apps/v1")["resources"]}
        self.assertTrue({"replicasets", "replicasets/status"} <= apps)
        rs_path = "/apis/apps/v1/namespaces/NAMESPACE/replicasets"
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api",
                 "uid": "0b5c8b0e-0000-4000-8000-000000000000", "controller": True,
                 "blockOwnerDeletion": True}
        labels = {"app": "api", "pod-template-hash": "5d9c7b8f4"}
        rs = self.ok("POST", rs_path, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "api-5d9c7b8f4", "labels": labels, "ownerReferences": [owner],
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "sim/api"}]}}}})
        self.assertEqual((rs["spec"]["replicas"], rs["status"], rs["metadata"]["generation"]),
                         (1, {"replicas": 0}, 1))
        self.assertEqual(rs["metadata"]["ownerReferences"], [owner])
        self.assertEqual(rs["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 30)
        o = self.ok("PATCH", rs_path + "/api-5d9c7b8f4", {"spec": {"replicas": 3}},
                    "application/merge-patch+json")
        self.assertEqual(o["metadata"]["generation"], 2)
        o = self.ok("PATCH", rs_path + "/api-5d9c7b8f4/status", {"status": {
            "replicas": 3, "readyReplicas": 3, "observedGeneration": 2}},
            "application/merge-patch+json")
        self.assertEqual(o["status"]["readyReplicas"], 3)
        self.assertEqual(o["metadata"]["generation"], 2, "status writes keep the generation")
        r = self.req("PATCH", rs_path + "/api-5d9c7b8f4", {"spec": {"selector": {
            "matchLabels": {"app": "other"}}}}, "application/merge-patch+json")
        self.assertEqual(r.status, 422)

# ---------------------------------------------------------------------------
# Part 3: auth, TLS, admin API, robustness
# ---------------------------------------------------------------------------

class TestAdminAndRobustness(Base):

    def test_token_rotation_at_runtime(self):
        self.secret("t")
        path = "/api/v1/namespaces/NAMESPACE/secrets/t"
        self.assertEqual(self.req("GET", path, token="new-token").status, 401)
        self.admin("POST", "/tokens", {"token": "new-token"})
        self.assertEqual(self.req("GET", path, token="new-token").status, 200)
        self.admin("DELETE", "/tokens", {"token": "new-token"})
        self.assertEqual(self.req("GET", path, token="new-token").status, 401)
        self.admin("POST", "/tokens", {"token": "ro", "user": "reader",
                                       "rules": [{"verbs": ["get", "list", "watch"],
                                                  "resources": ["*"]}]})
        self.assertEqual(self.req("GET", path, token="ro").status, 200)
        r = self.req("DELETE", path, token="ro")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json["message"], 'secrets "t" is forbidden: User "reader" cannot '
                         'delete resource "secrets" in API group "" in the namespace "%s"'
                         % self.ns)
        r = self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets", token=None)
        self.assertEqual(r.json["message"], 'secrets is forbidden: User "system:anonymous" '
                         'cannot list resource "secrets" in API group "" in the namespace "%s"'
                         % self.ns)

    def test_fault_injection_status_codes(self):
        self.secret("f")
        path = "/api/v1/namespaces/%s/secrets/f" % self.ns
        self.admin("POST", "/faults", {"method": "GET", "path": "^" + path + "$",
                                       "status": 503, "count": 2})
        self.assertEqual([self.req("GET", path).status for _ in range(3)], [503, 503, 200])
        self.admin("POST", "/faults", {"path": self.ns, "status": 429, "retryAfter": 2})
        r = self.req("GET", path)
        self.assertEqual((r.status, r.headers["Retry-After"], r.json["reason"]),
                         (429, "2", "TooManyRequests"))
        self.assertEqual(r.json["details"]["retryAfterSeconds"], 2)
        self.admin("POST", "/faults", {"method": "PUT|PATCH", "path": self.ns, "status": 500})
        self.assertEqual(self.req("GET", path).status, 200, "method filter")
        r = self.req("PATCH", path, {}, "application/merge-patch+json")
        self.assertEqual((r.status, r.json["reason"]), (500, "InternalError"))
        self.admin("POST", "/faults", {"path": self.ns, "delayMs": 300})
        t = time.monotonic()
        self.assertEqual(self.req("GET", path).status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.29)
        self.admin("POST", "/faults", {"path": self.ns, "drop": True})
        with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
            self.req("GET", path)
        self.assertEqual(self.req("GET", path).status, 200)
        self.admin("POST", "/delay", {"ms": 200})
        t = time.monotonic()
        self.req("GET", path)
        self.admin("POST", "/delay", {"ms": 0})
        self.assertGreaterEqual(time.monotonic() - t, 0.19)

    def test_drop_and_stall_watches(self):
        w = Watch(self.srv, "/api/v1/namespaces/%s/secrets?watch=1&allowWatchBookmarks=true"
                  % self.ns)
        self.addCleanup(w.close)
        self.secret("d1")
        self.assertEqual(w.events(1)[0]["type"], "ADDED")
        self.assertEqual(self.admin("POST", "/watches/drop").json["dropped"] >= 1, True)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, OSError)):
            while w.next() is not None:
                pass
            raise ConnectionError("stream ended cleanly")  # a drop must not end cleanly
        w2 = Watch(self.srv, "/api/v1/namespaces/%s/secrets?watch=1&allowWatchBookmarks=true"
                   "&resourceVersion=0" % self.ns, timeout=1.5)
        self.addCleanup(w2.close)
        self.assertEqual(w2.next()["type"], "ADDED")
        self.admin("POST", "/watches/stall")
        self.addCleanup(self.admin, "POST", "/watches/resume")
        self.secret("d2")
        with self.assertRaises((socket.timeout, TimeoutError)):
            while True:  # at most a bookmark already in flight, never the new object
                self.assertEqual(w2.next()["type"], "BOOKMARK")
        self.admin("POST", "/watches/resume")
        w3 = Watch(self.srv, "/api/v1/namespaces/%s/secrets?watch=1&resourceVersion=0"
                   "&timeoutSeconds=1" % self.ns)
        self.addCleanup(w3.close)
        self.assertEqual(len(w3.events(5)), 2, "the server still serves watches")

    def test_stats_count_requests(self):
        self.admin("POST", "/stats/reset")
        self.secret("s")
        self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets/s")
        self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets")
        self.req("PATCH", "/api/v1/namespaces/NAMESPACE/secrets/s", {},
                 "application/merge-patch+json")
        self.deployment()
        st = self.admin("GET", "/stats").json
        self.assertEqual(st["byResource"]["secrets"]["get"], 1)
        self.assertEqual(st["byResource"]["secrets"]["list"], 1)
        self.assertEqual(st["byResource"]["secrets"]["create"], 1)
        self.assertEqual(st["byResource"]["secrets"]["reads"], 2)
        self.assertEqual(st["byResource"]["secrets"]["writes"], 2)
        self.assertEqual(st["byResource"]["deployments.apps"]["create"], 1)
        self.assertEqual((st["reads"], st["writes"]), (2, 3))
        self.assertEqual(self.admin("POST", "/stats/reset").json["total"], 0)
        dump = self.admin("GET", "/objects").json
        self.assertIn(("Secret", "s"), [(o["kind"], o["metadata"]["name"])
                                        for o in dump["items"]])

    def test_oversized_and_garbage_requests(self):
        big = b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"big"},"data":{"k":"' + \
            b"A" * (3 * 1024 * 1024 + 10) + b'"}}'
        try:
            r = self.req("POST", "/api/v1/namespaces/NAMESPACE/secrets", big)
            self.assertEqual((r.status, r.json["reason"]), (413, "RequestEntityTooLarge"))
        except (ConnectionError, BrokenPipeError):
            pass  # the server may close before reading everything; the next check matters
        for junk in (b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"POST /api/v1/namespaces/x/secrets HTTP/1.1\r\nContent-Length: abc\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
            s.sendall(junk)
            try:
                s.recv(1000)
            except OSError:
                pass
            s.close()
        self.assertEqual(self.req("GET", "/version").status, 200, "server survived")
        self.assertEqual(self.req("GET", "/nothing/here").status, 404)

    def test_keep_alive(self):
        c = self.srv.conn()
        try:
            for _ in range(5):
                r = request(self.srv, "GET", "/api/v1/namespaces/%s/secrets" % self.ns, conn=c)
                self.assertEqual(r.status, 200)
                self.assertIn("Content-Length", r.headers)
        finally:
            c.close()


class TestTLS(Base):
    tls = True

    def test_https_with_ca_and_client_cert(self):
        with open(self.srv.kubeconfig) as f:
            kc = f.read()
        self.assertIn("server: https://127.0.0.1:%d" % self.srv.port, kc)
        self.assertIn("certificate-authority-data: ", kc)
        self.assertIn("token: " + TOKEN, kc)
        self.assertIn("current-context: kubeapi-local", kc)
        self.assertIn("namespace: default", kc)
        self.assertEqual(self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets").status, 200)
        r = self.req("GET", "/api/v1/namespaces/NAMESPACE/secrets", token=None)
        self.assertEqual(r.status, 403)
        ctx = self.srv.ssl_context(client_cert=True)
        r = request(self.srv, "GET", "/api/v1/namespaces/%s/secrets" % self.ns, token=None,
                    ctx=ctx)
        self.assertEqual(r.status, 200, "client certificate authenticates")
        other = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, other, True)
        import ktls
        ktls.make_ca(other, "ca", "other-ca")
        with self.assertRaises(ssl.SSLError):
            request(self.srv, "GET", "/version", ctx=self.srv.ssl_context(
                ca=os.path.join(other, "ca.crt")))
        ctx = ssl.create_default_context(cafile=os.path.join(self.srv.tls_dir, "ca.crt"))
        c = http.client.HTTPSConnection("localhost", self.srv.port, context=ctx, timeout=5)
        c.request("GET", "/version")
        self.assertEqual(c.getresponse().status, 200, "SAN DNS:localhost")
        c.close()

    def test_watch_over_tls(self):
        w = Watch(self.srv, "/api/v1/namespaces/%s/secrets?watch=1&timeoutSeconds=3" % self.ns)
        self.addCleanup(w.close)
        self.secret("tw")
        self.assertEqual(w.events(1)[0]["object"]["metadata"]["name"], "tw")


class TestStartupOptions(unittest.TestCase):

    def test_crd_yaml_file_and_state_dir(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        crd = os.path.join(tmp, "crd.yaml")
        with open(crd, "w") as f:
            f.write(YAML_CRD)
        state = os.path.join(tmp, "state")
        srv = Server(extra=["--crd", crd], state_dir=state)
        self.addCleanup(srv.stop)
        p = "/apis/ex.io/v1/namespaces/default/gizmos"
        r = request(srv, "POST", p, {"apiVersion": "ex.io/v1", "kind": "Gizmo",
                                     "metadata": {"name": "g1"}, "spec": {"n": 1}})
        self.assertEqual(r.status, 201, r.raw)
        self.assertEqual(r.json["spec"], {"mode": "fast", "n": 1}, "schema default")
        rv = r.json["metadata"]["resourceVersion"]
        r = request(srv, "POST", p, {"apiVersion": "ex.io/v1", "kind": "Gizmo",
                                     "metadata": {"name": "g2"}, "spec": {"n": "x"}})
        self.assertEqual(r.status, 422)
        srv.stop(signal.SIGTERM)
        srv.start()
        r = request(srv, "GET", p + "/g1")
        self.assertEqual((r.status, r.json["metadata"]["resourceVersion"]), (200, rv))
        r = request(srv, "GET", "/api/v1/namespaces/default/secrets?watch=1&resourceVersion=2")
        self.assertIn('"code":410', r.raw.decode(), "history does not survive a restart")
        # A stored object as a write leaves it, and one edited on disk (an unknown field,
        # keys out of order): a status write prunes and sorts the whole of the edited one.
        request(srv, "POST", p, {"apiVersion": "ex.io/v1", "kind": "Gizmo",
                                 "metadata": {"name": "g3"}, "spec": {"n": 3}})
        srv.stop(signal.SIGTERM)
        path = os.path.join(state, "state.json")
        with open(path) as f:
            doc = json.load(f)
        for o in doc["items"]:
            if o["metadata"]["name"] == "g1":
                o["spec"] = {"zz": 1, "n": 1, "mode": "fast"}
        with open(path, "w") as f:
            json.dump(doc, f)
        srv.start()
        for name, spec in (("g1", {"mode": "fast", "n": 1}), ("g3", {"mode": "fast", "n": 3})):
            cur = request(srv, "GET", p + "/" + name).json
            r = request(srv, "PUT", p + "/%s/status" % name, dict(cur, status={"b": 1, "a": 2}))
            self.assertEqual((r.status, r.json["spec"]), (200, spec), r.raw)
            self.assertEqual(r.raw.decode().rstrip("\n"),
                             json.dumps(r.json, sort_keys=True, separators=(",", ":")))


YAML_CRD = """\
# a CRD in the YAML subset kyaml.py reads
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.ex.io
spec:
  group: ex.io
  scope: Namespaced
  names:
    plural: gizmos
    kind: Gizmo
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                n:
                  type: integer
                mode:
                  type: string
                  default: fast
"""


if __name__ == "__main__":
    unittest.main()
