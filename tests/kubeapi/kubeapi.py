#!/usr/bin/env python3
"""A local Kubernetes API server for keyrotator's tests: the subset of
kube-apiserver v1.26 behaviour a controller depends on, plus a test-only admin
API under /_kubeapi/ (faults, compaction, watch control, request counters)."""

import argparse
import copy
import email.utils
import gc
import http.client
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kpatch import PatchError, json_patch, merge_patch, strategic_merge_patch
from kresources import (ApiError, bad_request, builtin_types, crd_types,
                        resource_not_found)
from kstore import Filter, Store, parse_field_selector, parse_label_selector
from khttp import read_headers
import kcost
import kloop
import ktls
import kyaml

MAX_BODY = 3 * 1024 * 1024
READ_VERBS = ("get", "list", "watch")
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
           415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
PATCH_TYPES_CR = ("application/json-patch+json, application/merge-patch+json, "
                  "application/apply-patch+yaml")
PATCH_TYPES = PATCH_TYPES_CR + ", application/strategic-merge-patch+json"
VERSION = {"major": "1", "minor": "26", "gitVersion": "v1.26.5-kubeapi.local",
           "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
           "buildDate": "2023-05-17T14:13:28Z", "goVersion": "go1.19.9", "compiler": "gc",
           "platform": "linux/amd64"}


class Api:
    """Everything except HTTP framing: types, store, auth, faults, counters."""

    def __init__(self, args):
        self.args = args
        self.store = Store(args.history_limit)
        self.types = {}
        for rt in builtin_types():
            self.types[(rt.group, rt.version, rt.plural)] = rt
        self.tokens = {t: {"user": "admin"} for t in args.token or []}
        for t in args.forbidden_token or []:
            self.tokens[t] = {"user": "lab-user", "forbidden": True}
        self.lock = threading.Lock()
        self.faults = []
        self.delay_ms = 0
        self.latency_ms = max(0.0, float(getattr(args, "latency_ms", 0) or 0))
        n = getattr(args, "max_inflight", 0) or 0
        self.inflight = kcost.Inflight(n) if n > 0 else None
        self.stats = {}
        self.watches = set()
        self.stalled = threading.Event()
        self.url = ""
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] + (args.namespace or []):
            self.ensure_namespace(ns)

    def ensure_namespace(self, ns):
        rt = self.types[("", "v1", "namespaces")]
        try:
            self.store.get(rt, "", ns)
        except ApiError:
            self.store.create(rt, "", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": ns}})

    def all_types(self):
        seen, out = set(), []
        for rt in self.types.values():
            if rt.key not in seen:
                seen.add(rt.key)
                out.append(rt)
        return out

    def type_for(self, api_version, kind):
        for rt in self.types.values():
            if rt.kind == kind and (rt.gv == api_version or rt.custom and
                                    api_version.split("/")[0] == rt.group):
                return rt
        return None

    def register_crd(self, crd):
        group = crd["spec"]["group"]
        plural = crd["spec"]["names"]["plural"]
        with self.lock:
            for k in [k for k in self.types if k[0] == group and k[2] == plural]:
                del self.types[k]
            for rt in crd_types(crd):
                self.types[(rt.group, rt.version, rt.plural)] = rt

    def unregister_crd(self, crd):
        group = crd["spec"]["group"]
        plural = crd["spec"]["names"]["plural"]
        with self.lock:
            rts = [k for k in self.types if k[0] == group and k[2] == plural]
            if rts:
                self.store.drop_type(self.types[rts[0]])
            for k in rts:
                del self.types[k]

    def load_crd_file(self, path):
        with open(path) as f:
            text = f.read()
        docs = [json.loads(text)] if text.lstrip().startswith("{") else kyaml.load_all(text)
        rt = self.types[("apiextensions.k8s.io", "v1", "customresourcedefinitions")]
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                doc.get("metadata", {}).pop("resourceVersion", None)
                try:
                    obj = self.store.create(rt, "", doc)
                except ApiError as e:
                    if e.code != 409:
                        raise
                    continue  # already there from --state-dir
                self.register_crd(obj)

    # -- counters --
    def count(self, resource, verb):
        with self.lock:
            r = self.stats.setdefault(resource, {})
            r[verb] = r.get(verb, 0) + 1

    def stats_doc(self):
        with self.lock:
            by_verb, reads, writes = {}, 0, 0
            per = {}
            for res, verbs in self.stats.items():
                rr = sum(n for v, n in verbs.items() if v in READ_VERBS)
                ww = sum(n for v, n in verbs.items() if v not in READ_VERBS and v != "other")
                per[res] = dict(verbs, reads=rr, writes=ww)
                reads, writes = reads + rr, writes + ww
                for v, n in verbs.items():
                    by_verb[v] = by_verb.get(v, 0) + n
            return {"total": sum(by_verb.values()), "reads": reads, "writes": writes,
                    "byVerb": by_verb, "byResource": per}

    # -- faults --
    def take_fault(self, method, path):
        if not self.faults:  # the usual case, without the lock
            return None
        with self.lock:
            for f in self.faults:
                if f["count"] == 0:
                    continue
                if f.get("method") and not re.fullmatch(f["method"], method, re.I):
                    continue
                if f.get("path") and not re.search(f["path"], path):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["hits"] = f.get("hits", 0) + 1
                return dict(f)
        return None


def fault_error(f):
    code = int(f.get("status", 500))
    reason = f.get("reason") or REASONS.get(code, "")
    msg = f.get("message")
    headers = {}
    details = None
    if code == 429:
        msg = msg or "Too many requests, please try again later."
        details = {"retryAfterSeconds": int(f.get("retryAfter", 1))}
    elif code == 500:
        msg = msg or "Internal error occurred: injected fault"
        details = {"causes": [{"message": "injected fault"}]}
    elif code == 503:
        msg = msg or "the server is currently unable to handle the request"
    elif code == 504:
        msg = msg or "the server was unable to return a response in the time allotted, " \
                     "but may still be processing the request"
    elif code == 401:
        msg = msg or "Unauthorized"
    msg = msg or "injected fault"
    if "retryAfter" in f:
        headers["Retry-After"] = str(f["retryAfter"])
        if details is None:
            details = {"retryAfterSeconds": int(f["retryAfter"])}
    return ApiError(code, reason, msg, details, headers)


def _rule_ok(rules, verb, resource):
    for r in rules:
        if ("*" in r.get("verbs", []) or verb in r.get("verbs", [])) and \
                ("*" in r.get("resources", []) or resource in r.get("resources", [])):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubeapi-local"
    sys_version = ""
    loop_conn = None  # the kloop.Conn when the event loop serves this connection
    slot = False      # holds one of --max-inflight's slots

    def setup(self):
        super().setup()
        self.peer_user = None
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(None)
            cert = self.connection.getpeercert()
            if cert:
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            self.peer_user = v

    _date = (None, "")  # (second, Date header value) shared by all handlers

    def date_time_string(self, timestamp=None):
        if timestamp is not None:
            return super().date_time_string(timestamp)
        sec = int(time.time())
        cached = Handler._date
        if cached[0] != sec:
            cached = Handler._date = (sec, email.utils.formatdate(sec, usegmt=True))
        return cached[1]

    def parse_request(self):
        """BaseHTTPRequestHandler.parse_request with a quicker header parser for the usual
        "METHOD PATH HTTP/1.x" request; anything else takes the standard path and errors."""
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0") or \
                words[1].startswith("//"):
            return super().parse_request()
        self.requestline = requestline
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] != "HTTP/1.1"
        try:
            self.headers = read_headers(self.rfile, self.MessageClass)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long",
                            str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers",
                            str(err))
            return False
        conntype = self.headers.get("Connection", "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        expect = self.headers.get("Expect", "")
        if expect.lower() == "100-continue" and self.request_version >= "HTTP/1.1":
            if not self.handle_expect_100():
                return False
        return True

    def handle_expect_100(self):
        conn = self.loop_conn
        if conn is None:
            return super().handle_expect_100()
        if not conn.continue_sent:  # once, at once, before the body arrives
            conn.continue_sent = True
            wfile, self.wfile = self.wfile, conn.direct
            try:
                super().handle_expect_100()
            finally:
                self.wfile = wfile
        return True

    def log_message(self, fmt, *a):
        if self.server.api.args.verbose:
            sys.stderr.write("kubeapi: %s %s\n" % (self.address_string(), fmt % a))

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = lambda self: self.dispatch()

    # -- responses --
    def send_body(self, code, body, ctype="application/json", headers=None):
        if self.request_version == "HTTP/0.9" or headers and any(
                k.lower() == "connection" for k in headers):
            return self.send_body_slow(code, body, ctype, headers)
        # send_response + send_header + end_headers, formatted in one go
        self.log_request(code)
        head = "%s %d %s\r\nServer: %s\r\nDate: %s\r\nContent-Type: %s\r\n" \
            "Cache-Control: no-cache, private\r\n" % (
                self.protocol_version, code, self.responses[code][0] if code in self.responses
                else "", self.version_string(), self.date_time_string(), ctype)
        if headers:
            head += "".join("%s: %s\r\n" % kv for kv in headers.items())
        head += "Content-Length: %d\r\n\r\n" % len(body)
        data = head.encode("latin-1", "strict")
        # headers and body in one write: no Nagle/delayed-ACK stalls on keep-alive
        pending = getattr(self, "_headers_buffer", None)
        if pending:
            data = b"".join(pending) + data
            self._headers_buffer = []
        self.wfile.write(data + body if self.command != "HEAD" else data)

    def send_body_slow(self, code, body, ctype, headers):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        # headers and body in one write: no Nagle/delayed-ACK stalls on keep-alive
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def send_json(self, code, obj, headers=None):
        if self.pretty:
            data = json.dumps(obj, indent=2) + "\n"
        else:
            data = json.dumps(obj, separators=(",", ":")) + "\n"
        self.send_body(code, data.encode(), headers=headers)

    def send_error_status(self, err):
        self.send_json(err.code, err.status(), err.headers)

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise ApiError(413, "RequestEntityTooLarge",
                                   "Request entity too large: limit is %d" % MAX_BODY)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge",
                           "Request entity too large: limit is %d" % MAX_BODY)
        return self.rfile.read(n) if n > 0 else b""

    # -- dispatch --
    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(
            url.query, keep_blank_values=True).items()}
        ua = self.headers.get("User-Agent", "")
        self.pretty = self.query.get("pretty") in ("true", "1") or \
            ua.startswith("curl") or ua.startswith("Wget")
        self.guarded(self.dispatch_request, url.path)

    def dispatch_request(self, path):
        api = self.server.api
        if path.startswith("/_kubeapi/"):
            self.body = self.read_body()
            return self.admin(path)
        self.body = self.read_body()
        req = self.classify(path)
        api.count(req["stat"], req["verb"])
        fault = api.take_fault(self.command, self.path)
        gate = api.inflight
        if gate is None:
            return self.serve(req, fault)
        if self.loop_conn is not None:  # now, or parked until a slot frees
            return gate.enter(self.loop_conn, self, lambda: self.serve(req, fault))
        gate.acquire()
        self.slot = True
        self.serve(req, fault)

    def serve(self, req, fault):
        """Answers after --latency-ms plus any delay (the event loop from a timer, so other
        requests are served meanwhile), then gives the --max-inflight slot back."""
        api = self.server.api
        try:
            delay = api.latency_ms + api.delay_ms + (float(fault.get("delayMs") or 0)
                                                     if fault else 0)
        except (TypeError, ValueError):
            self.release_slot()
            raise
        if delay:
            if self.loop_conn is not None:  # the event loop answers when the delay is over
                return self.loop_conn.defer(delay / 1000.0, lambda: self.finish(req, fault))
            time.sleep(delay / 1000.0)
        self.finish(req, fault)

    def finish(self, req, fault):
        try:
            self.guarded(self.answer, req, fault)
        finally:
            self.release_slot()

    def release_slot(self):
        if self.slot:
            self.slot = False
            self.server.api.inflight.release()

    def answer(self, req, fault):
        if fault and fault.get("drop"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault and fault.get("status"):
            raise fault_error(fault)
        self.authorize(req)
        self.route(req)

    def guarded(self, fn, *args):
        """Runs fn(*args), answering an ApiError or any other failure as a Status."""
        api = self.server.api
        try:
            fn(*args)
        except ApiError as e:
            self.send_error_status(e)
        except (ConnectionError, BrokenPipeError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # never crash on garbage
            if api.args.verbose:
                import traceback
                traceback.print_exc()
            self.send_error_status(ApiError(500, "InternalError",
                                            "Internal error occurred: %s" % e, {}))

    def classify(self, path):
        """Parses a path into group/version/namespace/resource/name/subresource/verb."""
        segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/") if s]
        req = {"path": path, "segs": segs, "rt": None, "verb": "other", "stat": "other",
               "ns": None, "name": None, "sub": None, "kind": "nonresource"}
        if segs[:1] == ["api"] and len(segs) >= 2:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return req
        if not rest:
            req["kind"] = "discovery"
            req["gv"] = (group, version)
            return req
        api = self.server.api
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and \
                (group, version, rest[2]) in api.types:
            ns, rest = rest[1], rest[2:]
        rt = api.types.get((group, version, rest[0]))
        req["kind"] = "resource"
        if rt is None or len(rest) > 3 or (ns is not None and not rt.namespaced):
            req["missing"] = True
            return req
        req.update(rt=rt, ns=ns, name=rest[1] if len(rest) > 1 else None,
                   sub=rest[2] if len(rest) > 2 else None)
        if req["sub"] is not None and (req["sub"] != "status" or not rt.status):
            req["missing"] = True
        m = self.command
        watch = self.query.get("watch") in ("1", "true")
        if req["name"] is None:
            verb = {"GET": "watch" if watch else "list", "POST": "create",
                    "DELETE": "deletecollection"}.get(m, "other")
        else:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
                m, "other")
        req["verb"] = verb
        req["stat"] = rt.qualified + ("/" + req["sub"] if req["sub"] else "")
        return req

    def authorize(self, req):
        api = self.server.api
        auth = self.headers.get("Authorization", "")
        user, entry = self.peer_user, None
        if user is None and auth:
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            entry = api.tokens.get(token) if token else None
            if entry is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            user = entry["user"]
        p = req["path"]
        if p in ("/version", "/healthz", "/livez", "/readyz") or p.startswith("/openapi"):
            return
        resource = req["kind"] == "resource" and not req.get("missing")
        if user is None:
            user = "system:anonymous"
        elif not resource or not entry:
            return
        elif not entry.get("forbidden") and ("rules" not in entry or _rule_ok(
                entry["rules"], req["verb"], req["rt"].plural)):
            return
        if req["kind"] != "resource" or req.get("missing"):
            raise ApiError(403, "Forbidden", 'forbidden: User "%s" cannot %s path "%s"' % (
                user, self.command.lower(), p), {})
        rt, name = req["rt"], req["name"]
        res = rt.plural + ("/" + req["sub"] if req["sub"] else "")
        scope = ('in the namespace "%s"' % req["ns"]) if req["ns"] is not None \
            else "at the cluster scope"
        head = ('%s "%s"' % (rt.qualified, name)) if name else rt.qualified
        d = {}
        if name:
            d["name"] = name
        if rt.group:
            d["group"] = rt.group
        d["kind"] = rt.plural
        raise ApiError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in '
                       'API group "%s" %s' % (head, user, req["verb"], res, rt.group, scope), d)

    def route(self, req):
        api = self.server.api
        p = req["path"]
        if req["kind"] == "nonresource":
            if p == "/version" or p == "/version/":
                return self.send_json(200, VERSION)
            if p in ("/healthz", "/livez", "/readyz"):
                return self.send_body(200, b"ok", "text/plain; charset=utf-8")
            if p in ("/api", "/api/"):
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [{
                                                "clientCIDR": "0.0.0.0/0",
                                                "serverAddress": api.url.split("//")[1]}]})
            if p in ("/apis", "/apis/"):
                return self.send_json(200, self.group_list())
            if len(req["segs"]) == 2 and req["segs"][0] == "apis":
                g = [x for x in self.group_list()["groups"] if x["name"] == req["segs"][1]]
                if g:
                    return self.send_json(200, dict({"kind": "APIGroup", "apiVersion": "v1"},
                                                    **g[0]))
            if p.startswith("/api/") or p.startswith("/apis/"):
                raise resource_not_found()
            return self.send_body(404, b"404 page not found\n", "text/plain; charset=utf-8")
        if req["kind"] == "discovery":
            group, version = req["gv"]
            rts = [rt for k, rt in sorted(api.types.items()) if k[0] == group and k[1] == version]
            if not rts:
                raise resource_not_found()
            res = [r for rt in rts for r in rt.discovery()]
            return self.send_json(200, {"kind": "APIResourceList",
                                        "apiVersion": "v1" if group else None,
                                        "groupVersion": rts[0].gv, "resources": res}
                                  if group else {"kind": "APIResourceList", "groupVersion": "v1",
                                                 "resources": res})
        if req.get("missing"):
            raise resource_not_found()
        getattr(self, "verb_" + req["verb"], self.verb_other)(req)

    def group_list(self):
        groups = {}
        for (g, v, _), rt in sorted(self.server.api.types.items()):
            if g:
                groups.setdefault(g, [])
                if v not in groups[g]:
                    groups[g].append(v)
        out = []
        for g, vs in groups.items():
            vers = [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in vs]
            out.append({"name": g, "versions": vers, "preferredVersion": vers[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}

    # -- verbs --
    def out(self, rt, obj, in_list=False):
        if rt.custom:
            if obj.get("apiVersion") != rt.gv:
                obj = dict(obj, apiVersion=rt.gv)
            return obj
        if in_list:
            return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        return obj

    def decode(self, rt=None):
        try:
            obj = json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request("the object provided is unrecognized (must be of type %s): "
                              "couldn't get version/kind; json parse error: %s"
                              % (rt.kind if rt else "object", e))
        return obj

    def decode_object(self, rt):
        obj = self.decode(rt)
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized (must be of type %s): "
                              "couldn't get version/kind; json parse error: json: cannot "
                              "unmarshal %s into Go value of type struct" % (rt.kind,
                                                                             type(obj).__name__))
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if not kind or not av:
            raise bad_request("Object 'Kind' is missing in '%s'" % self.body.decode()[:200]
                              if not kind else "Object 'apiVersion' is missing")
        if kind != rt.kind:
            raise bad_request("the object provided is unrecognized (must be of type %s): "
                              "object kind %s does not match (expected %s)" % (rt.kind, kind,
                                                                                rt.kind))
        if av != rt.gv and not (rt.custom and av.split("/")[0] == rt.group):
            raise bad_request("the API version in the data (%s) does not match the expected "
                              "API version (%s)" % (av, rt.gv))
        if rt.custom:
            obj["apiVersion"] = rt.gv
        return obj

    def verb_get(self, req):
        rt = req["rt"]
        obj = self.server.api.store.get(rt, req["ns"], req["name"])
        self.send_stored(200, rt, obj)

    def encoded(self, rt, obj, in_list=False):
        """Compact JSON bytes of out(rt, obj, in_list), from the store's cache while obj is the
        stored object (a custom resource's list item is the object itself)."""
        in_list = in_list and not rt.custom
        return self.server.api.store.encoded(rt, obj, (rt.gv, rt.custom, in_list),
                                             lambda o: self.out(rt, o, in_list))

    def send_stored(self, code, rt, obj):
        """send_json(code, out(rt, obj)) from the cached bytes when not pretty-printing."""
        if self.pretty:
            return self.send_json(code, self.out(rt, obj))
        self.send_body(code, self.encoded(rt, obj) + b"\n")

    def filter(self, req):
        rt = req["rt"]
        return Filter(req["ns"], parse_label_selector(self.query.get("labelSelector")),
                      parse_field_selector(self.query.get("fieldSelector"), rt))

    def verb_list(self, req):
        rt = req["rt"]
        try:
            limit = int(self.query.get("limit") or 0)
        except ValueError:
            raise bad_request("limit: Invalid value: must be an integer")
        items, meta = self.server.api.store.list(rt, self.filter(req), limit,
                                                 self.query.get("continue"),
                                                 self.query.get("resourceVersion"))
        if not self.pretty:
            return self.send_body(200, self.list_bytes(rt, items, meta))
        body = {"kind": rt.list_kind, "apiVersion": rt.gv, "metadata": meta,
                "items": [self.out(rt, o, True) for o in items]}
        if rt.custom:
            body = {"apiVersion": rt.gv, "items": body["items"], "kind": rt.list_kind,
                    "metadata": {k: meta[k] for k in sorted(meta)}}
        self.send_json(200, body)

    def list_bytes(self, rt, items, meta):
        """The compact JSON of a list (what send_json writes for verb_list's body), the items
        joined from the store's cached encodings."""
        store, dumps = self.server.api.store, json.dumps
        in_list = not rt.custom  # a custom resource's item is the object as GET returns it
        joined = b",".join(store.encoded_all(rt, items, (rt.gv, rt.custom, in_list),
                                             lambda o: self.out(rt, o, in_list)))
        if rt.custom:
            head = '{"apiVersion":%s,"items":[' % dumps(rt.gv)
            tail = '],"kind":%s,"metadata":%s}\n' % (dumps(rt.list_kind), dumps(
                {k: meta[k] for k in sorted(meta)}, separators=(",", ":")))
        else:
            head = '{"kind":%s,"apiVersion":%s,"metadata":%s,"items":[' % (
                dumps(rt.list_kind), dumps(rt.gv), dumps(meta, separators=(",", ":")))
            tail = "]}\n"
        return head.encode() + joined + tail.encode()

    def verb_create(self, req):
        api, rt = self.server.api, req["rt"]
        obj = self.decode_object(rt)
        obj.get("metadata", {}).pop("resourceVersion", None) if isinstance(
            obj.get("metadata"), dict) else None
        if self.query.get("dryRun") == "All":
            return self.send_json(201, self.out(rt, obj))
        created = api.store.create(rt, req["ns"], obj)
        if rt.kind == "CustomResourceDefinition":
            api.register_crd(created)
        self.send_stored(201, rt, created)

    def verb_update(self, req):
        api, rt = self.server.api, req["rt"]
        obj = self.decode_object(rt)
        new, _ = api.store.update(rt, req["ns"], req["name"], lambda cur: obj, req["sub"],
                                  copy_current=False)
        if rt.kind == "CustomResourceDefinition":
            api.register_crd(new)
        self.send_stored(200, rt, new)

    def verb_patch(self, req):
        api, rt = self.server.api, req["rt"]
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        kinds = ("application/merge-patch+json", "application/json-patch+json") + \
            (() if rt.custom else ("application/strategic-merge-patch+json",))
        if ctype not in kinds:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                           "unknown format - accepted media types include: " +
                           (PATCH_TYPES_CR if rt.custom else PATCH_TYPES))
        patch = self.decode(rt)
        if ctype != "application/json-patch+json" and not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal %s into Go value of type map[string]"
                              "interface {}" % type(patch).__name__)

        def mutate(cur):
            if ctype == "application/merge-patch+json":
                new = merge_patch(cur, patch)
            elif ctype == "application/strategic-merge-patch+json":
                new = strategic_merge_patch(cur, patch)
            else:
                try:
                    new = json_patch(cur, patch)
                except ValueError as e:
                    raise bad_request(str(e))
                except PatchError as e:
                    raise ApiError(422, "Invalid", "the server rejected our request due to an "
                                   "error in our request", {"causes": [{
                                       "reason": "UnexpectedServerResponse",
                                       "message": str(e)}]})
            if isinstance(new, dict) and (new.get("kind") != cur.get("kind") or
                                          new.get("apiVersion") != cur.get("apiVersion")):
                if not rt.custom or new.get("kind") != cur.get("kind"):
                    raise bad_request("the object provided is unrecognized: kind or apiVersion "
                                      "changed by the patch")
            return new

        new, _ = api.store.update(rt, req["ns"], req["name"], mutate, req["sub"],
                                  check_rv=False)
        if rt.kind == "CustomResourceDefinition":
            api.register_crd(new)
        self.send_stored(200, rt, new)

    def delete_options(self):
        """(uid, resourceVersion preconditions, gracePeriodSeconds) of the DeleteOptions
        body, the query's gracePeriodSeconds counting when the body has none."""
        pre, grace = {}, self.query.get("gracePeriodSeconds")
        if self.body.strip():
            try:
                opts = json.loads(self.body) or {}
                pre = opts.get("preconditions") or {}
                if opts.get("gracePeriodSeconds") is not None:
                    grace = opts["gracePeriodSeconds"]
            except (ValueError, AttributeError) as e:
                raise bad_request("invalid DeleteOptions: %s" % e)
        try:
            grace = None if grace in (None, "") else int(grace)
        except (TypeError, ValueError):
            raise bad_request("gracePeriodSeconds: invalid value %r" % grace)
        return pre.get("uid"), pre.get("resourceVersion"), grace

    def verb_delete(self, req):
        api, rt = self.server.api, req["rt"]
        uid, rv, grace = self.delete_options()
        obj, gone = api.store.delete(rt, req["ns"], req["name"], uid, rv, grace)
        if rt.kind == "CustomResourceDefinition":
            api.unregister_crd(obj)
        if rt.kind == "Namespace":
            api.store.finish_namespace(api.all_types(), rt, req["name"])
        if rt.return_deleted or not gone:
            return self.send_json(200, self.out(rt, obj))
        d = {"name": req["name"]}
        if rt.group:
            d["group"] = rt.group
        d["kind"] = rt.plural
        d["uid"] = obj["metadata"]["uid"]
        self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success", "details": d})

    def verb_deletecollection(self, req):
        api, rt = self.server.api, req["rt"]
        items, meta = api.store.list(rt, self.filter(req))
        deleted = []
        for o in items:
            try:
                obj, _ = api.store.delete(rt, o["metadata"].get("namespace"),
                                          o["metadata"]["name"])
                deleted.append(self.out(rt, obj, True))
            except ApiError:
                pass
        self.send_json(200, {"kind": rt.list_kind, "apiVersion": rt.gv,
                             "metadata": {"resourceVersion": str(api.store.rv)},
                             "items": deleted})

    def verb_other(self, req):
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                       "requested resource", {})

    # -- watch --
    @staticmethod
    def chunk(data):
        return b"%x\r\n%s\r\n" % (len(data), data)

    def write_chunk(self, data):
        self.wfile.write(self.chunk(data))
        self.wfile.flush()

    def event_line(self, rt, etype, obj, ev=None):
        """One watch event as a JSON line; the object's JSON is kept on ev for the other
        watchers of the same version."""
        data = ev.encoded.get(rt.gv) if ev is not None else None
        if data is None:
            data = self.encoded(rt, obj)
            if ev is not None:
                ev.encoded[rt.gv] = data
        return b'{"type":"%s","object":%s}\n' % (etype.encode(), data)

    def bookmark(self, rt, rv):
        if rt.custom:
            obj = {"apiVersion": rt.gv, "kind": rt.kind, "metadata": {"resourceVersion": rv}}
        else:
            obj = {"kind": rt.kind, "apiVersion": rt.gv,
                   "metadata": {"resourceVersion": rv, "creationTimestamp": None}}
        return ('{"type":"BOOKMARK","object":%s}\n'
                % json.dumps(obj, separators=(",", ":"))).encode()

    def verb_watch(self, req):
        api, rt = self.server.api, req["rt"]
        store = api.store
        flt = self.filter(req)
        if req["name"]:
            flt.fields.append(("metadata.name", "=", req["name"]))
        try:
            timeout = float(self.query.get("timeoutSeconds") or api.args.watch_timeout)
        except ValueError:
            raise bad_request("timeoutSeconds: Invalid value: must be an integer")
        bookmarks = self.query.get("allowWatchBookmarks") in ("true", "1")
        w, expired = store.watch(rt, flt, self.query.get("resourceVersion"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = False
        self.release_slot()  # a long-running request: exempt from --max-inflight once it runs
        if expired:
            err = ApiError(410, "Expired", expired).status()
            err.pop("details", None)
            self.write_chunk(('{"type":"ERROR","object":%s}\n' % json.dumps(
                err, separators=(",", ":"))).encode())
            self.write_chunk(b"")
            return
        w.sock = self.connection
        with api.lock:
            api.watches.add(w)
        if self.loop_conn is not None:  # the event loop streams it
            return self.loop_conn.start_watch(self, w, rt, timeout, bookmarks)
        interval = api.args.bookmark_interval
        start = time.monotonic()
        deadline = start + timeout
        next_bm = start + interval
        try:
            while True:
                with w.cond:
                    while not w.closed:
                        now = time.monotonic()
                        if api.stalled.is_set():
                            w.cond.wait(0.05)
                            continue
                        if w.queue or now >= deadline or (bookmarks and now >= next_bm):
                            break
                        w.cond.wait(min(deadline, next_bm if bookmarks else deadline) - now)
                    if w.closed:
                        break
                    items = list(w.queue)
                    w.queue.clear()
                if items:  # one write for the batch, one chunk per event as before
                    self.wfile.write(b"".join(self.chunk(self.event_line(rt, etype, obj, ev))
                                              for etype, obj, ev in items))
                now = time.monotonic()
                final = now >= deadline
                if bookmarks and (final or now >= next_bm):
                    with store.lock:
                        rv = str(store.rv) if not w.queue else None
                    if rv:
                        self.write_chunk(self.bookmark(rt, rv))
                    next_bm = now + interval
                if final:
                    self.write_chunk(b"")
                    return
            self.close_connection = True  # dropped: no terminating chunk
        finally:
            store.unwatch(w)
            with api.lock:
                api.watches.discard(w)

    # -- admin API --
    def admin(self, path):
        api = self.server.api
        m = self.command
        body = {}
        if self.body.strip():
            try:
                body = json.loads(self.body)
            except ValueError:
                raise bad_request("admin: body is not JSON")
        p = path[len("/_kubeapi"):].rstrip("/")
        if p == "/healthz":
            return self.send_json(200, {"ok": True})
        if p == "/compact" and m == "POST":
            return self.send_json(200, {"compactedResourceVersion": str(api.store.compact())})
        if p == "/stats":
            if m == "DELETE":
                with api.lock:
                    api.stats = {}
            return self.send_json(200, api.stats_doc())
        if p == "/stats/reset" and m == "POST":
            with api.lock:
                api.stats = {}
            if api.inflight:
                api.inflight.reset()
            return self.send_json(200, api.stats_doc())
        if p == "/cost":
            doc = {"latencyMs": api.latency_ms, "maxInflight": 0, "inflight": None,
                   "waiting": None, "peakInflight": None, "peakWaiting": None, "queued": None}
            if api.inflight:
                doc.update(api.inflight.doc())
            return self.send_json(200, doc)
        if p == "/faults":
            with api.lock:
                if m == "POST":
                    f = dict(body)
                    f.setdefault("count", 1)
                    f["id"] = len(api.faults) + 1
                    api.faults.append(f)
                    return self.send_json(201, f)
                if m == "DELETE":
                    api.faults = []
                return self.send_json(200, {"faults": api.faults})
        if p == "/delay" and m == "POST":
            api.delay_ms = int(body.get("ms", 0))
            return self.send_json(200, {"ms": api.delay_ms})
        if p == "/watches":
            with api.lock:
                return self.send_json(200, {"open": len(api.watches),
                                            "stalled": api.stalled.is_set()})
        if p == "/watches/drop" and m == "POST":
            with api.lock:
                ws = list(api.watches)
            for w in ws:
                w.close()
                try:
                    w.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return self.send_json(200, {"dropped": len(ws)})
        if p == "/watches/stall" and m == "POST":
            api.stalled.set()
            return self.send_json(200, {"stalled": True})
        if p == "/watches/resume" and m == "POST":
            api.stalled.clear()
            return self.send_json(200, {"stalled": False})
        if p == "/tokens":
            with api.lock:
                if m == "POST":
                    entry = {"user": body.get("user", "admin")}
                    if body.get("forbidden"):
                        entry["forbidden"] = True
                    if "rules" in body:
                        entry["rules"] = body["rules"]
                    api.tokens[body["token"]] = entry
                elif m == "DELETE":
                    api.tokens.pop(body.get("token"), None)
                return self.send_json(200, {"count": len(api.tokens)})
        if p == "/objects":
            return self.send_json(200, api.store.dump())
        if p == "/save" and m == "POST":
            return self.send_json(200, {"saved": save_state(api)})
        if p == "/namespaces" and m == "POST":
            api.ensure_namespace(body["name"])
            return self.send_json(200, {"ok": True})
        raise ApiError(404, "NotFound", "unknown admin endpoint %s %s" % (m, path), {})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    profiles = None  # KUBEAPI_PROFILE: one cProfile.Profile per finished connection thread
    profiling = 0    # connection threads still running under a profile

    def process_request_thread(self, request, client_address):
        if self.profiles is None:
            return super().process_request_thread(request, client_address)
        import cProfile
        prof = cProfile.Profile(time.thread_time)  # CPU time: idle waits cost nothing
        with self.api.lock:
            self.profiling += 1
        prof.enable()
        try:
            super().process_request_thread(request, client_address)
        finally:
            prof.disable()
            with self.api.lock:
                self.profiles.append(prof)
                self.profiling -= 1

    def handle_error(self, request, client_address):
        if self.api.args.verbose:
            super().handle_error(request, client_address)


def save_state(api):
    d = api.args.state_dir
    if not d:
        return False
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "state.json.tmp")
    text = json.dumps(api.store.dump())  # the C encoder: json.dump would use the Python one
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(d, "state.json"))
    return True


def load_state(api):
    path = os.path.join(api.args.state_dir, "state.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        state = json.load(f)
    crds = [o for o in state.get("items", []) if o.get("kind") == "CustomResourceDefinition"]
    for crd in crds:
        api.register_crd(crd)
    api.store.objects = {}
    api.store.load(state, api.type_for)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--token", action="append", help="valid bearer token (repeatable)")
    ap.add_argument("--forbidden-token", action="append",
                    help="token of user lab-user, authenticated but forbidden everything")
    ap.add_argument("--tls-dir", help="generate CA + certs here and serve HTTPS")
    ap.add_argument("--ready-file")
    ap.add_argument("--kubeconfig-out")
    ap.add_argument("--state-dir", help="load state.json at start, save it on SIGTERM")
    ap.add_argument("--crd", action="append", help="CRD file (JSON or simple YAML) to load")
    ap.add_argument("--namespace", action="append", help="extra namespace to create")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--watch-timeout", type=float, default=1800.0,
                    help="watch timeout when the client sends no timeoutSeconds")
    ap.add_argument("--history-limit", type=int, default=100000,
                    help="events kept for watch resumption before compaction")
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="answer every API request this much later (a real server's authn, "
                    "admission and etcd); watches: their first response only")
    ap.add_argument("--max-inflight", type=int, default=0,
                    help="serve at most N API requests at once, queue the rest (0: no limit; "
                    "established watches do not count)")
    ap.add_argument("--threaded", action="store_true",
                    help="one thread per connection (http.server) instead of the event loop; "
                    "also KUBEAPI_THREADED=1")
    ap.add_argument("--verbose", action="store_true")
    return ap.parse_args(argv)


def dump_profile(srv, main_prof, path):
    """KUBEAPI_PROFILE: ends the open watches and waits (2 s at most) for the connection
    threads to finish, then writes the merged CPU-time statistics of the main thread and
    every finished connection thread to path (clients should disconnect first)."""
    import pstats
    with srv.api.lock:
        ws = list(srv.api.watches)
    for w in ws:
        w.close()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        with srv.api.lock:
            if not srv.profiling:
                break
        time.sleep(0.05)
    main_prof.disable()
    with srv.api.lock:
        profs = list(srv.profiles)
    st = pstats.Stats(main_prof)
    for p in profs:
        st.add(p)
    st.dump_stats(path)


def main(argv=None):
    prof_path = os.environ.get("KUBEAPI_PROFILE")
    if not prof_path:
        return serve(argv)
    import cProfile
    main_prof = cProfile.Profile(time.thread_time)
    main_prof.enable()
    srv = serve(argv, profile=True)
    dump_profile(srv, main_prof, prof_path)


def serve(argv=None, profile=False):
    args = parse_args(argv)
    api = Api(args)
    if args.state_dir:
        load_state(api)
    for path in args.crd or []:
        api.load_crd_file(path)
    # The store is a large tree of acyclic dicts and lists that the cyclic GC would traverse
    # again and again: leave what is loaded out of it, and collect young objects less often
    # (a request's transient objects mostly die by refcount before a collection sees them).
    gc.freeze()
    gc.set_threshold(50000, 20, 100)
    threaded = args.threaded or os.environ.get("KUBEAPI_THREADED") == "1"
    srv = (Server if threaded else kloop.LoopServer)((args.bind, args.port), Handler)
    srv.api = api
    if profile:
        srv.profiles = []
    scheme = "http"
    ca_data = None
    if args.tls_dir:
        ctx, ca_data = ktls.server_context(args.tls_dir)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
        scheme = "https"
    port = srv.server_address[1]
    api.url = "%s://127.0.0.1:%d" % (scheme, port)
    if args.kubeconfig_out:
        write_atomic(args.kubeconfig_out, ktls.kubeconfig(api.url, ca_data,
                                                          (args.token or [""])[0]))
    if args.ready_file:
        write_atomic(args.ready_file, "%d %s\n" % (port, api.url))

    def stop(signum, frame):
        if not threaded:  # the loop stops between requests; the state is saved after it
            srv.shutdown()
            return
        if args.state_dir:
            save_state(api)
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.verbose:
        sys.stderr.write("kubeapi: serving %s\n" % api.url)
    srv.serve_forever(poll_interval=0.2)
    if not threaded and args.state_dir:
        save_state(api)
    srv.server_close()
    return srv


if __name__ == "__main__":
    main()
