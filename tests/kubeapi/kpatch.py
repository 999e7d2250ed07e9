"""Patch algorithms of the local API server: JSON merge patch (RFC 7386),
a strategic merge patch close to the apimachinery one for built-in types,
and JSON patch (RFC 6902)."""

import copy


class PatchError(Exception):
    """A patch that cannot be applied; the server turns it into a 422."""


# Lists of built-in types merged by a key instead of replaced (patchMergeKey).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "ports": "containerPort",
    "imagePullSecrets": "name", "conditions": "type", "ownerReferences": "uid",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "secrets": "name",
}
# Primitive lists merged as sets (patchStrategy: merge).
MERGE_PRIMITIVE_LISTS = {"finalizers"}


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target, patch):
    """Strategic merge: maps merge, known lists merge by key, $patch directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [x for x in result[field] if x not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result


def _smp_list(field, current, patch):
    if not isinstance(current, list):
        current = []
    if field in MERGE_PRIMITIVE_LISTS:
        out = list(current)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    key = MERGE_KEYS.get(field)
    if key is None or not all(isinstance(x, dict) for x in patch):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in copy.deepcopy(patch) if x.get("$patch") != "replace"]
        return copy.deepcopy(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if x.get("$patch") != "replace"]
    out = [copy.deepcopy(x) for x in current]
    for item in patch:
        kv = item.get(key)
        idx = next((i for i, x in enumerate(out)
                    if isinstance(x, dict) and x.get(key) == kv), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append({k: v for k, v in copy.deepcopy(item).items() if v is not None})
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


def _parse_pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError("JSON pointer must start with '/': %s" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc, parts, path, op):
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError("%s operation does not apply: doc is missing path: \"%s\": "
                             "missing value" % (op, path))
    return cur


def _get(doc, path, op):
    return _resolve(doc, _parse_pointer(path), path, op)


def _add(doc, path, value, op="add"):
    parts = _parse_pointer(path)
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path, op)
    last = parts[-1]
    if isinstance(parent, dict):
        if op == "replace" and last not in parent:
            raise PatchError("replace operation does not apply: doc is missing key: %s: "
                             "missing value" % path)
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            if op == "replace":
                raise PatchError("replace operation does not apply: doc is missing key: "
                                 "%s: missing value" % path)
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            i = int(last)
            if op == "replace":
                if i >= len(parent):
                    raise PatchError("replace operation does not apply: doc is missing "
                                     "key: %s: missing value" % path)
                parent[i] = value
            else:
                parent.insert(i, value)
        else:
            raise PatchError("Unable to access invalid index: %s: invalid index referenced"
                             % last)
    else:
        raise PatchError("%s operation does not apply: doc is missing path: \"%s\": "
                         "missing value" % (op, path))
    return doc


def _remove(doc, path):
    parts = _parse_pointer(path)
    if not parts:
        raise PatchError("unable to remove the whole document")
    parent = _resolve(doc, parts[:-1], path, "remove")
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError("Unable to remove nonexistent key: %s: missing value" % last)


def json_patch(doc, ops):
    """RFC 6902 on a deep copy of doc; raises PatchError on any failure."""
    if not isinstance(ops, list):
        raise ValueError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("Unexpected kind: <nil>")
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise PatchError("%s operation does not apply: doc is missing path: \"\": "
                             "missing value" % kind)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if path == "":
                doc = copy.deepcopy(op.get("value"))
            else:
                doc = _add(doc, path, copy.deepcopy(op.get("value")), "replace")
        elif kind in ("move", "copy"):
            src = op.get("from", "")
            if kind == "move":
                value = _remove(doc, src)
            else:
                value = copy.deepcopy(_get(doc, src, "copy"))
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                current = _get(doc, path, "test")
            except PatchError:
                current = None
            if current != op.get("value") or (current is None and "value" not in op):
                raise PatchError("testing value %s failed: test failed" % path)
        else:
            raise PatchError("Unexpected kind: %s" % kind)
    return doc
