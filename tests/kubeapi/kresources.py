"""Resource types of the local API server: built-in types with their defaults
and validation, Status error builders, and custom resource types built from a
CustomResourceDefinition."""

import base64
import copy
import hashlib
import re

from kschema import (FieldError, has_transition_rules, prune_and_default,
                     validate_custom_resource)

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?"
                 "(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
CR_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]


class ApiError(Exception):
    """An error answered as a Status object."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or {}

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message}
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


def details(name, rt, causes=None):
    d = {}
    if name:
        d["name"] = name
    if rt is not None and rt.group:
        d["group"] = rt.group
    if rt is not None:
        d["kind"] = rt.plural
    if causes:
        d["causes"] = causes
    return d


def not_found(rt, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (rt.qualified, name),
                    details(name, rt))


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (rt.qualified, name),
                    details(name, rt))


def conflict(rt, name):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has '
                    "been modified; please apply your changes to the latest version and try "
                    "again" % (rt.qualified, name), details(name, rt))


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def invalid(rt, name, errs):
    """422 Invalid like errors.NewInvalid: one error inline, several as [a, b]."""
    texts = []
    for e in errs:
        if e.text() not in texts:
            texts.append(e.text())
    agg = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    d = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.kind
    d["causes"] = [e.cause() for e in errs]
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (rt.qkind, name, agg), d)


def resource_not_found():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def storage_version_hash(group, version, kind):
    h = hashlib.sha256(("%s/%s/%s" % (group, version, kind)).encode()).digest()[:8]
    return base64.b64encode(h).decode()


class ResourceType:
    """One group/version/resource with its storage behaviour."""

    def __init__(self, group, version, plural, kind, namespaced=True, singular=None,
                 short=(), status=False, generation=False, custom=False, schema=None,
                 spec_only_generation=True, unconditional_update=True, fields=(),
                 return_deleted=False, defaulter=None, validator=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.singular = namespaced, singular or kind.lower()
        self.short, self.status, self.generation = list(short), status, generation
        self.custom, self.schema = custom, schema
        self.spec_only_generation = spec_only_generation
        self.unconditional_update, self.fields = unconditional_update, set(fields)
        self.return_deleted = return_deleted
        self.defaulter, self.validator = defaulter, validator
        self.gv = "%s/%s" % (group, version) if group else version
        self.qualified = "%s.%s" % (plural, group) if group else plural
        self.qkind = "%s.%s" % (kind, group) if group else kind
        self.key = (group, plural)
        self.list_kind = kind + "List"

    def discovery(self):
        r = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
             "kind": self.kind, "verbs": CR_VERBS if self.custom else ALL_VERBS}
        if self.short:
            r["shortNames"] = self.short
        r["storageVersionHash"] = storage_version_hash(self.group, self.version, self.kind)
        out = [r]
        if self.status:
            out.append({"name": self.plural + "/status", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind,
                        "verbs": ["get", "patch", "update"]})
        return out

    def prepare(self, obj, old=None, only=None):
        """Defaulting (and CR pruning); returns field errors of type validation. only: see
        only_changed."""
        if self.custom:
            if self.schema:
                prune_and_default(obj, self.schema, only=only)
            return
        if self.defaulter:
            self.defaulter(obj)

    def only_changed(self, fields):
        """fields, when a write that changes only those root fields of an object this type
        stored (under this schema) may prune, default, validate and sort just them; else None.
        For a custom resource whose schema has no transition rule, the answer is the same:
        everything else is a copy of what passed under this schema before."""
        if self.custom and self.schema and not has_transition_rules(self.schema):
            return fields
        return None

    def validate(self, obj, old=None, only=None):
        errs = []
        if self.custom and self.schema:
            errs.extend(validate_custom_resource(obj, self.schema, old, only))
        elif self.validator:
            errs.extend(self.validator(obj, old))
        return errs


# ---- built-in defaults and validation ---------------------------------------

def _default_pod_spec(spec):
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        c.setdefault("resources", {})
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = c.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")


def _default_template(spec):
    tpl = spec.get("template")
    if isinstance(tpl, dict):
        md = tpl.setdefault("metadata", {})
        if isinstance(md, dict):
            md.setdefault("creationTimestamp", None)
        ps = tpl.get("spec")
        if isinstance(ps, dict):
            _default_pod_spec(ps)


def _workload_spec(obj, replicas=True):
    """A workload's spec with replicas (1) and its pod template defaulted; None if no spec."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if replicas:
        spec.setdefault("replicas", 1)
    _default_template(spec)
    return spec


def default_deployment(obj):
    spec = _workload_spec(obj)
    if spec is None:
        return
    st = spec.setdefault("strategy", {})
    if isinstance(st, dict):
        st.setdefault("type", "RollingUpdate")
        if st["type"] == "RollingUpdate":
            ru = st.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_workload_status(obj)


def _default_workload_status(obj):
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        conds = status.get("conditions")
        if isinstance(conds, list) and obj.get("kind") == "Deployment":
            order = ("type", "status", "lastUpdateTime", "lastTransitionTime", "reason",
                     "message")
            for i, c in enumerate(conds):
                if isinstance(c, dict):
                    c.setdefault("lastUpdateTime", None)
                    c.setdefault("lastTransitionTime", None)
                    conds[i] = dict([(k, c[k]) for k in order if k in c] +
                                    [(k, v) for k, v in c.items() if k not in order])


def default_statefulset(obj):
    spec = _workload_spec(obj)
    if spec is None:
        return
    spec.setdefault("podManagementPolicy", "OrderedReady")
    us = spec.setdefault("updateStrategy", {})
    if isinstance(us, dict):
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy",
                    {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _default_workload_status(obj)
    obj["status"].setdefault("replicas", 0)
    obj["status"].setdefault("availableReplicas", 0)


def default_daemonset(obj):
    spec = _workload_spec(obj, False)
    if spec is None:
        return
    us = spec.setdefault("updateStrategy", {})
    if isinstance(us, dict):
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            ru = us.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    st = obj.setdefault("status", {})
    for k in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
              "numberReady"):
        st.setdefault(k, 0)


def default_replicaset(obj):
    """apps/v1 ReplicaSet defaults: replicas 1, the pod template's, status.replicas 0."""
    spec = _workload_spec(obj)
    if spec is None:
        return
    st = obj.setdefault("status", {})
    if isinstance(st, dict):
        st.setdefault("replicas", 0)


# What DefaultTolerationSeconds admission adds to every pod (v1.26).
DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300}]


def default_pod(obj):
    """core v1 Pod defaults (pod spec as in a template, serviceAccountName default,
    enableServiceLinks, priority 0, the DefaultTolerationSeconds tolerations) and, on
    create, status phase Pending with qosClass BestEffort (no resources here)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tol = spec.setdefault("tolerations", [])
    if isinstance(tol, list):
        for t in DEFAULT_TOLERATIONS:
            if not any(isinstance(x, dict) and x.get("key") == t["key"] and
                       x.get("effect") == t["effect"] for x in tol):
                tol.append(dict(t))
    st = obj.setdefault("status", {})
    if isinstance(st, dict):
        st.setdefault("phase", "Pending")
        st.setdefault("qosClass", "BestEffort")


def default_node(obj):
    obj.setdefault("spec", {})
    st = obj.setdefault("status", {})
    if isinstance(st, dict):
        st.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
        st.setdefault("nodeInfo", {k: "" for k in (
            "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
            "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
            "operatingSystem", "architecture")})


def default_secret(obj):
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict):
        data = obj.setdefault("data", {}) or {}
        obj["data"] = data
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    obj.setdefault("type", "Opaque")


def default_event(obj):
    obj.setdefault("eventTime", None)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


def default_namespace(obj):
    md = obj.setdefault("metadata", {})
    labels = md.setdefault("labels", {}) or {}
    md["labels"] = labels
    if md.get("name"):
        labels["kubernetes.io/metadata.name"] = md["name"]
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _labels_match(selector, labels):
    ml = (selector or {}).get("matchLabels") or {}
    return all((labels or {}).get(k) == v for k, v in ml.items())


def validate_workload(obj, old):
    errs = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError("Required", "spec")]
    r = spec.get("replicas")
    if isinstance(r, int) and r < 0:
        errs.append(FieldError("Invalid", "spec.replicas", r,
                               "must be greater than or equal to 0"))
    sel = spec.get("selector")
    if not isinstance(sel, dict) or not sel:
        errs.append(FieldError("Required", "spec.selector"))
    else:
        tl = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not _labels_match(sel, tl):
            errs.append(FieldError("Invalid", "spec.template.metadata.labels", tl,
                                   "`selector` does not match template `labels`"))
        if old is not None and (old.get("spec") or {}).get("selector") != sel:
            errs.append(FieldError("Invalid", "spec.selector", sel, "field is immutable"))
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers")
    if not cs:
        errs.append(FieldError("Required", "spec.template.spec.containers"))
    else:
        for i, c in enumerate(cs):
            if not isinstance(c, dict) or not c.get("name"):
                errs.append(FieldError("Required", "spec.template.spec.containers[%d].name" % i))
            if isinstance(c, dict) and not c.get("image"):
                errs.append(FieldError("Required", "spec.template.spec.containers[%d].image" % i))
    return errs


# What a pod update may change in spec (upstream ValidatePodUpdate, v1.26): container images,
# activeDeadlineSeconds, tolerations (additions) and terminationGracePeriodSeconds (once
# deleting); everything else there is immutable.
POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def validate_pod(obj, old):
    errs = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError("Required", "spec")]
    cs = spec.get("containers")
    if not cs:
        errs.append(FieldError("Required", "spec.containers"))
    for i, c in enumerate(cs or []):
        if not isinstance(c, dict) or not c.get("name"):
            errs.append(FieldError("Required", "spec.containers[%d].name" % i))
        if isinstance(c, dict) and not c.get("image"):
            errs.append(FieldError("Required", "spec.containers[%d].image" % i))
    if old is not None and not errs:
        def frozen(s):
            s = {k: v for k, v in s.items() if k not in POD_MUTABLE}
            s["containers"] = [{k: v for k, v in c.items() if k != "image"}
                               for c in s.get("containers") or []]
            return s
        if frozen(spec) != frozen(old.get("spec") or {}):
            errs.append(FieldError("Forbidden", "spec", None,
                                   "pod updates may not change fields other than "
                                   "`spec.containers[*].image`, "
                                   "`spec.initContainers[*].image`, "
                                   "`spec.activeDeadlineSeconds`, "
                                   "`spec.tolerations` (only additions to existing "
                                   "tolerations) or `spec.terminationGracePeriodSeconds` "
                                   "(allow it to be set to 1 if it was previously negative)"))
    return errs


def validate_secret(obj, old):
    errs = []
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        errs.append(FieldError("Invalid", "data", "", "must be a map"))
    for k, v in (data or {}).items():
        try:
            base64.b64decode(v, validate=True)
        except Exception:
            errs.append(FieldError("Invalid", "data[%s]" % k, v, "illegal base64 data"))
    if old is not None and old.get("immutable") and (old.get("data") != obj.get("data")):
        errs.append(FieldError("Forbidden", "data", None,
                               "field is immutable when `immutable` is set"))
    if old is not None and old.get("type") != obj.get("type"):
        errs.append(FieldError("Invalid", "type", obj.get("type"), "field is immutable"))
    return errs


def validate_lease(obj, old):
    spec = obj.get("spec") or {}
    d = spec.get("leaseDurationSeconds")
    if d is not None and (not isinstance(d, int) or d <= 0):
        return [FieldError("Invalid", "spec.leaseDurationSeconds", d, "must be greater than 0")]
    return []


EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion",
                "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                "reportingComponent", "source", "type")


# Pod field selectors (upstream pod.ToSelectableFields, v1.26).
POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
              "spec.serviceAccountName", "status.phase", "status.podIP",
              "status.nominatedNodeName")


def builtin_types():
    wl = dict(status=True, generation=True)
    return [
        ResourceType("", "v1", "secrets", "Secret", fields=("type",),
                     defaulter=default_secret, validator=validate_secret),
        ResourceType("", "v1", "configmaps", "ConfigMap", short=("cm",)),
        ResourceType("", "v1", "events", "Event", short=("ev",), fields=EVENT_FIELDS,
                     defaulter=default_event),
        ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",),
                     status=True, fields=("status.phase",), defaulter=default_namespace,
                     return_deleted=True),
        ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
        ResourceType("", "v1", "pods", "Pod", short=("po",), status=True, fields=POD_FIELDS,
                     defaulter=default_pod, validator=validate_pod, return_deleted=True),
        ResourceType("", "v1", "nodes", "Node", namespaced=False, short=("no",), status=True,
                     fields=("spec.unschedulable",), defaulter=default_node),
        ResourceType("apps", "v1", "replicasets", "ReplicaSet", short=("rs",),
                     fields=("status.replicas",), defaulter=default_replicaset,
                     validator=validate_workload, **wl),
        ResourceType("apps", "v1", "deployments", "Deployment", short=("deploy",),
                     defaulter=default_deployment, validator=validate_workload, **wl),
        ResourceType("apps", "v1", "statefulsets", "StatefulSet", short=("sts",),
                     defaulter=default_statefulset, validator=validate_workload, **wl),
        ResourceType("apps", "v1", "daemonsets", "DaemonSet", short=("ds",),
                     defaulter=default_daemonset, validator=validate_workload, **wl),
        ResourceType("batch", "v1", "cronjobs", "CronJob", short=("cj",), status=True,
                     generation=True),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease", validator=validate_lease),
        ResourceType("events.k8s.io", "v1", "events", "Event", short=("ev",)),
        ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                     "CustomResourceDefinition", namespaced=False, short=("crd", "crds"),
                     status=True, generation=True, unconditional_update=False,
                     validator=validate_crd),
    ]


def validate_crd(obj, old):
    errs = []
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group"), names.get("plural")
    for f in ("group",):
        if not spec.get(f):
            errs.append(FieldError("Required", "spec." + f))
    for f in ("plural", "kind"):
        if not names.get(f):
            errs.append(FieldError("Required", "spec.names." + f))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errs.append(FieldError("NotSupported", "spec.scope", spec.get("scope") or "",
                               'supported values: "Cluster", "Namespaced"'))
    vers = spec.get("versions") or []
    if not vers:
        errs.append(FieldError("Required", "spec.versions"))
    elif sum(1 for v in vers if v.get("storage")) != 1:
        errs.append(FieldError("Invalid", "spec.versions", vers,
                               "must have exactly one version marked as storage version"))
    name = (obj.get("metadata") or {}).get("name")
    if group and plural and name != "%s.%s" % (plural, group):
        errs.append(FieldError("Invalid", "metadata.name", name,
                               'must be spec.names.plural+"."+spec.group'))
    return errs


def crd_types(crd):
    """ResourceTypes of every served version of a CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        schema = copy.deepcopy(((v.get("schema") or {}).get("openAPIV3Schema")) or {})
        subs = v.get("subresources") or spec.get("subresources") or {}
        out.append(ResourceType(
            spec["group"], v["name"], names["plural"], names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short=names.get("shortNames") or (), status="status" in subs,
            generation=True, custom=True, schema=schema, unconditional_update=False,
            return_deleted=True))
    return out


def crd_status(crd):
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", names.get("kind", "") + "List")
    conds = [{"type": "NamesAccepted", "status": "True", "lastTransitionTime": None,
              "reason": "NoConflicts", "message": "no conflicts found"},
             {"type": "Established", "status": "True", "lastTransitionTime": None,
              "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}]
    stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    return {"conditions": conds, "acceptedNames": names, "storedVersions": stored}
