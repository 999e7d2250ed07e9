"""Object storage of the local API server: one global resourceVersion counter,
create/update/delete with kube-apiserver's metadata rules, label and field
selectors, paginated lists and an event history feeding per-watcher queues."""

import base64
import bisect
import calendar
import collections
import copy
import json
import marshal
import re
import threading
import time
import uuid

from kschema import FieldError
from kresources import (DNS1123_SUBDOMAIN, DNS1123_LABEL, SUBDOMAIN_MSG, LABEL_MSG, ApiError,
                        already_exists, bad_request, conflict, invalid, not_found)

META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
              "generation", "creationTimestamp", "deletionTimestamp",
              "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
              "finalizers")
SYSTEM_META = ("uid", "creationTimestamp", "generation", "deletionTimestamp",
               "deletionGracePeriodSeconds", "selfLink")


FIELD_ORDER = {
    "Secret": ("immutable", "data", "type"),
    "ConfigMap": ("immutable", "data", "binaryData"),
    "Deployment": ("spec", "status"), "StatefulSet": ("spec", "status"),
    "DaemonSet": ("spec", "status"), "ReplicaSet": ("spec", "status"),
    "Pod": ("spec", "status"), "Node": ("spec", "status"), "CronJob": ("spec", "status"),
    "Lease": ("spec",), "Namespace": ("spec", "status"),
    "Event": ("involvedObject", "reason", "message", "source", "firstTimestamp",
              "lastTimestamp", "count", "type", "eventTime", "series", "action", "related",
              "reportingComponent", "reportingInstance"),
}


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def jcopy(v):
    """A deep copy of a JSON value: a marshal round trip is several times faster than
    copy.deepcopy and keeps key order; anything marshal refuses goes to copy.deepcopy."""
    try:
        return marshal.loads(marshal.dumps(v))
    except ValueError:
        return copy.deepcopy(v)


def sort_keys(v):
    """A copy of v with every object's keys sorted (scalars are shared, not visited)."""
    if isinstance(v, dict):
        return {k: sort_keys(v[k]) if isinstance(v[k], (dict, list)) else v[k]
                for k in sorted(v)}
    if isinstance(v, list):
        return [sort_keys(x) if isinstance(x, (dict, list)) else x for x in v]
    return v


def canonical(obj, rt, only=None):
    """Field order as kube-apiserver writes it: typed structs keep kind, apiVersion,
    metadata first; unstructured custom resources come out with sorted keys. only: the root
    fields of a custom resource to sort inside besides metadata (the others are copies of a
    stored object's, sorted already)."""
    md = obj.get("metadata") or {}
    md = {k: md[k] for k in META_ORDER if k in md}
    if rt.custom:
        out = dict(obj)
        out["metadata"] = md
        if only is None:
            return sort_keys(out)
        return {k: sort_keys(out[k]) if k == "metadata" or k in only else out[k]
                for k in sorted(out)}
    out = {"kind": rt.kind, "apiVersion": rt.gv, "metadata": md}
    for k in FIELD_ORDER.get(rt.kind, ()) if rt.group in ("", "apps", "coordination.k8s.io") \
            else ():
        if k in obj:
            out[k] = obj[k]
    for k, v in obj.items():
        if k not in out:
            out[k] = v
    tpl = (out.get("spec") or {}).get("template") if isinstance(out.get("spec"), dict) else None
    if isinstance(tpl, dict) and isinstance(tpl.get("metadata"), dict):
        tm = tpl["metadata"]
        tpl["metadata"] = dict([(k, tm[k]) for k in META_ORDER + ("creationTimestamp",)
                                if k in tm] + [(k, v) for k, v in tm.items() if k not in META_ORDER])
    ref = out.get("involvedObject")
    if rt.kind == "Event" and isinstance(ref, dict):
        order = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        out["involvedObject"] = dict([(k, ref[k]) for k in order if k in ref] +
                                     [(k, v) for k, v in ref.items() if k not in order])
    return out


# ---- selectors ------------------------------------------------------------

_REQ = re.compile(r"^\s*(!)?\s*([A-Za-z0-9./_-]+)\s*(?:(==|=|!=|>|<)\s*([A-Za-z0-9._-]*)|"
                  r"\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_label_selector(s):
    """A list of (key, op, values); raises ApiError 400 on a bad selector."""
    reqs = []
    if not s or not s.strip():
        return reqs
    for part in _split_top(s):
        m = _REQ.match(part)
        if not m or (m.group(1) and (m.group(3) or m.group(5))):
            raise bad_request("unable to parse requirement: found '%s', expected: identifier"
                              % part.strip())
        neg, key, op, val, setop, vals = m.groups()
        if neg:
            reqs.append((key, "!", None))
        elif op:
            reqs.append((key, "=" if op == "==" else op, val))
        elif setop:
            reqs.append((key, setop, {v.strip() for v in vals.split(",")}))
        else:
            reqs.append((key, "exists", None))
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, val in reqs:
        have = key in labels
        v = labels.get(key)
        if op == "=" and v != val:
            return False
        if op == "!=" and have and v == val:
            return False
        if op == "in" and v not in val:
            return False
        if op == "notin" and have and v in val:
            return False
        if op == "exists" and not have:
            return False
        if op == "!" and have:
            return False
        if op in (">", "<"):
            try:
                a, b = int(v), int(val)
            except (TypeError, ValueError):
                return False
            if (op == ">" and not a > b) or (op == "<" and not a < b):
                return False
    return True


def parse_field_selector(s, rt):
    reqs = []
    if not s or not s.strip():
        return reqs
    for part in s.split(","):
        m = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, part))
        field, op, val = m.groups()
        if field not in ("metadata.name", "metadata.namespace") and field not in rt.fields:
            raise bad_request('"%s" is not a known field selector: only "metadata.name", '
                              '"metadata.namespace"' % field)
        reqs.append((field, "!=" if op == "!=" else "=", val))
    return reqs


def _field_value(obj, path):
    cur = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    if path == "source" and isinstance(cur, dict):
        cur = cur.get("component")
    return "" if cur is None else str(cur)


def fields_match(reqs, obj):
    for field, op, val in reqs:
        v = _field_value(obj, field)
        if (op == "=") != (v == val):
            return False
    return True


class Filter:
    """Namespace + label + field selector of a list or watch."""

    def __init__(self, ns, labels, fields):
        self.ns, self.labels, self.fields = ns, labels, fields

    def empty(self):
        return not self.labels and not self.fields

    def match(self, obj):
        md = obj.get("metadata") or {}
        if self.ns is not None and md.get("namespace") != self.ns:
            return False
        return labels_match(self.labels, md.get("labels")) and fields_match(self.fields, obj)


# ---- events and watchers ----------------------------------------------------

class Event:
    """One change; encoded holds the object's JSON per API version, computed by the first
    watcher that sends it and shared by the others."""
    __slots__ = ("rv", "etype", "key", "obj", "old", "encoded")

    def __init__(self, rv, etype, key, obj, old):
        self.rv, self.etype, self.key, self.obj, self.old = rv, etype, key, obj, old
        self.encoded = {}


class Watcher:
    """A per-connection queue of (type, object, Event or None) the store pushes into."""

    def __init__(self, key, flt):
        self.key, self.flt = key, flt
        self.cond = threading.Condition()
        self.queue = collections.deque()
        self.closed = False
        self.sock = None

    def offer(self, ev):
        """Called with the store lock held; translates the event for this filter."""
        if ev.key != self.key:
            return
        new_ok = self.flt.match(ev.obj)
        old_ok = ev.old is not None and self.flt.match(ev.old)
        etype = ev.etype
        if etype == "MODIFIED":
            if new_ok and not old_ok:
                etype = "ADDED"
            elif old_ok and not new_ok:
                etype = "DELETED"
            elif not new_ok:
                return
        elif not new_ok:
            return
        with self.cond:
            self.queue.append((etype, ev.obj, ev))
            self.cond.notify()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()


# ---- the store --------------------------------------------------------------

class Bucket(dict):
    """One type's objects by (namespace, name). order caches the listing order per key form
    (relative name or namespace/name) and is dropped whenever a key comes or goes (replacing a
    value under its key keeps it); enc caches each stored object's JSON per representation,
    checked against the object's identity (stored objects are never changed in place: every
    write stores a new dict), so a replaced object is never served from its old bytes."""
    __slots__ = ("order", "enc", "schema")

    def __init__(self):
        dict.__init__(self)
        self.order = {}
        self.enc = {}
        self.schema = {}  # key -> (stored object, the custom resource schema it was written under)

    def __setitem__(self, k, v):
        if k not in self:
            self.order = {}
        dict.__setitem__(self, k, v)

    def __delitem__(self, k):
        dict.__delitem__(self, k)
        self.order = {}
        self.enc.pop(k, None)
        self.schema.pop(k, None)

    def pop(self, k, *default):
        self.order = {}
        self.enc.pop(k, None)
        self.schema.pop(k, None)
        return dict.pop(self, k, *default)

    def _changed(self):
        self.order = {}
        self.enc = {}
        self.schema = {}

    def popitem(self):
        self._changed()
        return dict.popitem(self)

    def clear(self):
        self._changed()
        dict.clear(self)

    def update(self, *a, **kw):
        self._changed()
        dict.update(self, *a, **kw)

    def setdefault(self, k, default=None):
        if k not in self:
            self.order = {}
        return dict.setdefault(self, k, default)

    def sorted_keys(self, relative):
        """[(listing key, namespace, name)] sorted: the order of list pages."""
        order = self.order.get(relative)
        if order is None:
            order = sorted((n if relative else "%s/%s" % (ns, n), ns, n) for ns, n in self)
            self.order[relative] = order
        return order

    def written(self, key, obj, schema):
        """Stores obj under key, noting the custom resource schema it was pruned, validated
        and sorted under (None: a built-in type, or not known)."""
        self[key] = obj
        if schema is not None:
            self.schema[key] = (obj, schema)

    def written_under(self, key, obj):
        """The schema obj (stored under key) was written under, or None (loaded, replaced)."""
        ent = self.schema.get(key)
        return ent[1] if ent is not None and ent[0] is obj else None

    def encoded(self, key, obj, variant, out):
        """The JSON bytes of out(obj) (compact, as json.dumps with separators (",", ":"))
        for obj stored under key, cached per variant while obj is the stored object."""
        ent = self.enc.get(key)
        if ent is None or ent[0] is not obj:
            if dict.get(self, key) is not obj:
                return json.dumps(out(obj), separators=(",", ":")).encode()
            ent = self.enc[key] = (obj, {})
        data = ent[1].get(variant)
        if data is None:
            data = ent[1][variant] = json.dumps(out(obj), separators=(",", ":")).encode()
        return data


class Store:
    def __init__(self, history_limit=100000):
        self.lock = threading.RLock()
        self.rv = 1
        self.objects = {}          # key -> {(ns, name): obj}
        self.history = collections.deque()
        self.history_limit = history_limit
        self.compacted = 1         # events with rv > compacted are available
        self.watchers = set()

    def _bucket(self, rt):
        b = self.objects.get(rt.key)
        if b is None:
            b = self.objects[rt.key] = Bucket()
        return b

    def encoded(self, rt, obj, variant, out):
        """Compact JSON bytes of out(obj), cached while obj is the stored object."""
        md = obj.get("metadata") or {}
        with self.lock:
            return self._bucket(rt).encoded((md.get("namespace", "") if rt.namespaced else "",
                                             md.get("name")), obj, variant, out)

    def encoded_all(self, rt, objs, variant, out):
        """encoded() of each object of a list."""
        with self.lock:
            b = self._bucket(rt)
            ns_of = (lambda md: md.get("namespace", "")) if rt.namespaced else (lambda md: "")
            res = []
            for o in objs:
                md = o.get("metadata") or {}
                res.append(b.encoded((ns_of(md), md.get("name")), o, variant, out))
            return res

    def _emit(self, etype, rt, obj, old):
        ev = Event(int(obj["metadata"]["resourceVersion"]), etype, rt.key, obj, old)
        self.history.append(ev)
        while len(self.history) > self.history_limit:
            self.compacted = self.history.popleft().rv
        for w in self.watchers:
            w.offer(ev)

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def compact(self):
        with self.lock:
            self.history.clear()
            self.compacted = self.rv
            return self.rv

    # -- reads --
    def get(self, rt, ns, name):
        with self.lock:
            obj = self._bucket(rt).get((ns or "", name))
            if obj is None:
                raise not_found(rt, name)
            return obj

    def list(self, rt, flt, limit=0, cont=None, rv_param=None):
        """Returns (items, metadata) with continue and remainingItemCount."""
        start, list_rv = "", None
        if cont:
            try:
                raw = cont + "=" * (-len(cont) % 4)
                tok = json.loads(base64.urlsafe_b64decode(raw))
                start, list_rv = tok["start"], int(tok["rv"])
            except Exception:
                raise bad_request("continue key is not valid: incorrect encoded start "
                                  "resourceVersion (version meta.k8s.io/v1)")
        with self.lock:
            if list_rv is not None and list_rv < self.compacted:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to "
                               "display a consistent list result. You can start a new list "
                               "without the continue parameter.")
            bucket = self._bucket(rt)
            order = bucket.sorted_keys(flt.ns is not None or not rt.namespaced)
            i = bisect.bisect_left(order, (start,)) if start else 0
            paged = limit and limit > 0 and rv_param != "0"
            if flt.ns is None and flt.empty():
                end = i + limit + 1 if paged else len(order)
                items = [(k, bucket[(ns, name)]) for k, ns, name in order[i:end]]
                total = len(order) - i
            else:
                items, fns, empty = [], flt.ns, flt.empty()
                for k, ns, name in order[i:] if i else order:
                    if fns is not None and ns != fns:
                        continue
                    obj = bucket[(ns, name)]
                    if empty or flt.match(obj):
                        items.append((k, obj))
                total = len(items)
            rv = self.rv if list_rv is None else list_rv
        meta = {"resourceVersion": str(rv)}
        if paged and total > limit:
            rest = total - limit
            last = items[limit - 1][0]
            items = items[:limit]
            tok = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": last + "\x00"},
                             separators=(",", ":"))
            meta["continue"] = base64.urlsafe_b64encode(tok.encode()).decode().rstrip("=")
            if flt.empty():
                meta["remainingItemCount"] = rest
        return [o for _, o in items], meta

    def watch(self, rt, flt, rv_param):
        """Registers a watcher; returns (watcher, initial events) or raises on too old."""
        w = Watcher(rt.key, flt)
        with self.lock:
            initial = []
            if rv_param in (None, "", "0"):
                objs = [o for (ns, n), o in sorted(self._bucket(rt).items()) if flt.match(o)]
                initial = [("ADDED", o, None) for o in objs]
            else:
                try:
                    since = int(rv_param)
                except ValueError:
                    raise bad_request('resourceVersion: Invalid value: "%s": must be a '
                                      'non-negative integer' % rv_param)
                if since < self.compacted:
                    return None, ("too old resource version: %d (%d)" % (since, self.compacted))
                for ev in self.history:
                    if ev.rv > since:
                        w.offer(ev)
            self.watchers.add(w)
            for item in initial:
                w.queue.append(item)
        return w, None

    def unwatch(self, w):
        with self.lock:
            self.watchers.discard(w)

    # -- writes --
    def _check_meta(self, rt, obj, name):
        md = obj.get("metadata")
        errs = []
        if not name:
            errs.append(FieldError("Required", "metadata.name", None,
                                   "name or generateName is required"))
        elif rt.kind == "Namespace" and not DNS1123_LABEL.match(name):
            errs.append(FieldError("Invalid", "metadata.name", name, LABEL_MSG))
        elif not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
            errs.append(FieldError("Invalid", "metadata.name", name, SUBDOMAIN_MSG))
        for fld in ("labels", "annotations"):
            v = md.get(fld)
            if v is not None and (not isinstance(v, dict) or
                                  not all(isinstance(x, str) for x in v.values())):
                errs.append(FieldError("Invalid", "metadata." + fld, v, "must be a map of strings"))
        return errs

    def create(self, rt, ns, obj):
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        md.pop("managedFields", None)
        with self.lock:
            if not md.get("name") and md.get("generateName"):
                bucket = self._bucket(rt)
                for _ in range(100):
                    cand = md["generateName"] + uuid.uuid4().hex[:5]
                    if (ns or "", cand) not in bucket:
                        md["name"] = cand
                        break
            name = md.get("name") or ""
            if rt.namespaced:
                md["namespace"] = ns
            else:
                md.pop("namespace", None)
            rt.prepare(obj)
            errs = self._check_meta(rt, obj, name) + rt.validate(obj)
            if errs:
                raise invalid(rt, name, errs)
            if rt.namespaced and rt.kind != "Namespace":
                nsobj = self.objects.get(("", "namespaces"), {}).get(("", ns))
                if nsobj is None:
                    raise ApiError(404, "NotFound", 'namespaces "%s" not found' % ns,
                                   {"name": ns, "kind": "namespaces"})
                if "deletionTimestamp" in nsobj["metadata"]:
                    raise ApiError(403, "Forbidden", 'unable to create new content in namespace '
                                   '%s because it is being terminated' % ns,
                                   {"name": name, "kind": rt.plural})
            if (ns or "", name) in self._bucket(rt):
                raise already_exists(rt, name)
            for k in SYSTEM_META:
                md.pop(k, None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            if rt.generation:
                md["generation"] = 1
            if rt.status and rt.kind != "Namespace":
                if rt.custom:
                    obj.pop("status", None)
                else:
                    obj["status"] = {}
                    rt.prepare(obj)
            if rt.kind == "CustomResourceDefinition":
                from kresources import crd_status
                obj["status"] = crd_status(obj)
                for c in obj["status"]["conditions"]:
                    c["lastTransitionTime"] = md["creationTimestamp"]
            md["resourceVersion"] = self._next_rv()
            obj = canonical(obj, rt)
            self._bucket(rt).written((ns or "", name), obj, rt.schema)
            self._emit("ADDED", rt, obj, None)
            return obj

    def update(self, rt, ns, name, mutate, subresource=None, check_rv=True, copy_current=True):
        """mutate(current deep copy) -> new object; applies the update rules atomically.
        copy_current=False hands mutate the stored object itself (it must not change it:
        for a mutate that ignores its argument). Returns (object, changed)."""
        with self.lock:
            key = (ns or "", name)
            cur = self._bucket(rt).get(key)
            if cur is None:
                raise not_found(rt, name)
            new = mutate(jcopy(cur) if copy_current else cur)
            if not isinstance(new, dict):
                raise bad_request("the body of the request must be an object")
            md = new.get("metadata")
            if not isinstance(md, dict):
                md = new["metadata"] = {}
            if md.get("name", name) != name:
                raise bad_request("the name of the object (%s) does not match the name on the "
                                  "URL (%s)" % (md.get("name"), name))
            if rt.namespaced and md.get("namespace", ns) != ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            body_rv = md.get("resourceVersion")
            if body_rv in (None, ""):
                if not rt.unconditional_update and check_rv:
                    raise invalid(rt, name, [FieldError(
                        "Invalid", "metadata.resourceVersion", "0x0",
                        "must be specified for an update")])
            elif body_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            md.pop("managedFields", None)
            md["name"] = name
            if rt.namespaced:
                md["namespace"] = ns
            for k in SYSTEM_META:
                if k in cur["metadata"]:
                    md[k] = cur["metadata"][k]
                else:
                    md.pop(k, None)
            md["resourceVersion"] = cur["metadata"]["resourceVersion"]
            only = None
            if subresource == "status":
                st = new.get("status")
                new = jcopy(cur)
                if st is None:
                    new.pop("status", None)
                else:
                    new["status"] = st
                    if self._bucket(rt).written_under(key, cur) is rt.schema:
                        only = rt.only_changed(("status",))
            elif rt.status:
                if "status" in cur:
                    new["status"] = jcopy(cur["status"])
                else:
                    new.pop("status", None)
            rt.prepare(new, cur, only)
            errs = self._check_meta(rt, new, name) + rt.validate(new, cur, only)
            if errs:
                raise invalid(rt, name, errs)
            new = canonical(new, rt, only)
            if new == cur:
                return cur, False
            if rt.generation and self._spec_changed(rt, cur, new):
                new["metadata"]["generation"] = cur["metadata"].get("generation", 0) + 1
            new["metadata"]["resourceVersion"] = self._next_rv()
            # Upstream ShouldDeleteDuringUpdate: the last finalizer gone from an object
            # whose deletion has no grace period left (a terminating pod's status writes
            # keep it).
            if "deletionTimestamp" in new["metadata"] and not new["metadata"].get("finalizers") \
                    and not cur["metadata"].get("deletionGracePeriodSeconds"):
                del self._bucket(rt)[key]
                self._emit("MODIFIED", rt, new, cur)
                gone = jcopy(new)
                gone["metadata"]["resourceVersion"] = self._next_rv()
                self._emit("DELETED", rt, gone, None)
                return new, True
            self._bucket(rt).written(key, new, rt.schema)
            self._emit("MODIFIED", rt, new, cur)
            return new, True

    @staticmethod
    def _spec_changed(rt, cur, new):
        if rt.custom or rt.kind == "CustomResourceDefinition":
            skip = ("metadata", "status") if rt.status else ("metadata",)
            a = {k: v for k, v in cur.items() if k not in skip}
            b = {k: v for k, v in new.items() if k not in skip}
            return a != b
        return cur.get("spec") != new.get("spec")

    def delete(self, rt, ns, name, precondition_uid=None, precondition_rv=None, grace=None):
        """Returns (object, deleted_now). grace: DeleteOptions.gracePeriodSeconds (pods)."""
        with self.lock:
            key = (ns or "", name)
            cur = self._bucket(rt).get(key)
            if cur is None:
                raise not_found(rt, name)
            if precondition_uid and precondition_uid != cur["metadata"]["uid"]:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": '
                               "Precondition failed: UID in precondition: %s, UID in object "
                               "meta: %s" % (rt.qualified, name, precondition_uid,
                                             cur["metadata"]["uid"]), {"name": name,
                                                                        "kind": rt.plural})
            if precondition_rv and precondition_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            if rt.kind == "Pod":
                period = self._pod_grace(cur, grace)
                if period is not None:
                    return self._set_deleting(rt, key, cur, period), False
            if cur["metadata"].get("finalizers") or rt.kind == "Namespace":
                if "deletionTimestamp" in cur["metadata"]:
                    return cur, False
                new = jcopy(cur)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if rt.generation:
                    new["metadata"]["generation"] = cur["metadata"].get("generation", 0) + 1
                if rt.kind == "Namespace":
                    new["status"] = {"phase": "Terminating"}
                new["metadata"]["resourceVersion"] = self._next_rv()
                new = canonical(new, rt)
                self._bucket(rt)[key] = new
                self._emit("MODIFIED", rt, new, cur)
                return new, False
            del self._bucket(rt)[key]
            gone = jcopy(cur)
            gone["metadata"]["resourceVersion"] = self._next_rv()
            self._emit("DELETED", rt, gone, None)
            return gone, True

    @staticmethod
    def _pod_grace(cur, grace):
        """Graceful deletion of a pod as upstream (podStrategy.CheckGracefulDelete and
        rest.BeforeDelete): the period asked for, else spec.terminationGracePeriodSeconds;
        0 when the pod is not bound to a node or has ended; negative is 1. A pod being
        deleted already may only get a shorter period. None: delete it now (grace 0 and no
        finalizers, or 0 was the period already)."""
        md = cur["metadata"]
        fin = bool(md.get("finalizers"))
        if grace is not None and grace < 0:
            grace = 1
        if "deletionTimestamp" in md:
            left = md.get("deletionGracePeriodSeconds")
            if not left:
                return None if not fin else left
            if grace is None or grace >= left:
                return left
            return grace if grace or fin else None
        spec, st = cur.get("spec") or {}, cur.get("status") or {}
        period = grace if grace is not None else spec.get("terminationGracePeriodSeconds") or 0
        if not spec.get("nodeName") or st.get("phase") in ("Failed", "Succeeded"):
            period = 0
        return period if period or fin else None

    def _set_deleting(self, rt, key, cur, period):
        """deletionTimestamp = now + period (from the first request's start when shortened),
        deletionGracePeriodSeconds = period; the object stays until deleted with 0."""
        md = cur["metadata"]
        if "deletionTimestamp" in md and md.get("deletionGracePeriodSeconds") == period:
            return cur
        new = jcopy(cur)
        start = time.time()
        if "deletionTimestamp" in md:
            start = calendar.timegm(time.strptime(md["deletionTimestamp"],
                                                  "%Y-%m-%dT%H:%M:%SZ")) - \
                (md.get("deletionGracePeriodSeconds") or 0)
        new["metadata"]["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime(start + period))
        new["metadata"]["deletionGracePeriodSeconds"] = period
        new["metadata"]["resourceVersion"] = self._next_rv()
        new = canonical(new, rt)
        self._bucket(rt)[key] = new
        self._emit("MODIFIED", rt, new, cur)
        return new

    def purge_namespace(self, types, ns):
        """Namespace finalization: delete everything in it, then the namespace."""
        with self.lock:
            for rt in types:
                if not rt.namespaced:
                    continue
                for (ons, name) in [k for k in self._bucket(rt) if k[0] == ns]:
                    obj = self._bucket(rt).pop((ons, name))
                    gone = jcopy(obj)
                    gone["metadata"]["resourceVersion"] = self._next_rv()
                    self._emit("DELETED", rt, gone, None)

    def finish_namespace(self, types, ns_rt, ns):
        """Namespace finalization: delete everything in it, then the namespace."""
        with self.lock:
            self.purge_namespace(types, ns)
            cur = self._bucket(ns_rt).pop(("", ns), None)
            if cur is not None:
                gone = jcopy(cur)
                gone["metadata"]["resourceVersion"] = self._next_rv()
                self._emit("DELETED", ns_rt, gone, None)

    def drop_type(self, rt):
        with self.lock:
            for key in list(self._bucket(rt)):
                obj = self._bucket(rt).pop(key)
                gone = jcopy(obj)
                gone["metadata"]["resourceVersion"] = self._next_rv()
                self._emit("DELETED", rt, gone, None)

    def dump(self):
        with self.lock:
            return {"resourceVersion": str(self.rv), "compactedResourceVersion": str(self.compacted),
                    "items": [o for b in self.objects.values() for o in b.values()]}

    def load(self, state, types_by_kind):
        with self.lock:
            self.rv = int(state.get("resourceVersion", "1"))
            self.compacted = self.rv
            for o in state.get("items", []):
                rt = types_by_kind(o.get("apiVersion"), o.get("kind"))
                if rt is not None:
                    md = o["metadata"]
                    written = rt.schema if rt.schema and self._as_written(rt, o) else None
                    self._bucket(rt).written((md.get("namespace", ""), md["name"]), o, written)

    @staticmethod
    def _as_written(rt, obj):
        """Whether a loaded custom resource is byte for byte what a write under rt's schema
        stores (pruned, defaulted, valid, sorted), as a status write's short way requires."""
        c = jcopy(obj)
        rt.prepare(c)
        if rt.validate(c):
            return False
        return json.dumps(canonical(c, rt)) == json.dumps(obj)
