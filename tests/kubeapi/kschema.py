"""Field errors and the structural-schema handling of custom resources:
pruning, defaulting, OpenAPI v3 validation, list-map keys and a small CEL
subset for x-kubernetes-validations, with kube-apiserver's message texts."""

import copy
import json
import re


def go_value(v):
    """Format a value like field.Error.ErrorBody does (Go %v / %q / %#v)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "map[string]interface {}{" + ", ".join(
            "%s:%s" % (json.dumps(k), _go_inner(x)) for k, x in sorted(v.items())) + "}"
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(_go_inner(x) for x in v) + "}"
    return str(v)


def _go_inner(v):
    return "interface {}(nil)" if v is None else go_value(v)


class FieldError:
    """One field.Error: type, path, bad value and detail."""
    REASONS = {"Required": "FieldValueRequired", "Invalid": "FieldValueInvalid",
               "TypeInvalid": "FieldValueTypeInvalid", "NotSupported": "FieldValueNotSupported",
               "Duplicate": "FieldValueDuplicate", "TooLong": "FieldValueTooLong",
               "TooMany": "FieldValueTooMany", "Forbidden": "FieldValueForbidden"}
    TITLES = {"Required": "Required value", "Invalid": "Invalid value",
              "TypeInvalid": "Invalid value", "NotSupported": "Unsupported value",
              "Duplicate": "Duplicate value", "TooLong": "Too long", "TooMany": "Too many",
              "Forbidden": "Forbidden"}

    def __init__(self, etype, field, value=None, detail=""):
        self.etype, self.field, self.value, self.detail = etype, field, value, detail

    def body(self):
        title = self.TITLES[self.etype]
        if self.etype in ("Required", "Forbidden", "TooLong"):
            s = title
        else:
            s = "%s: %s" % (title, go_value(self.value))
        if self.detail:
            s += ": " + self.detail
        return s

    def text(self):
        return "%s: %s" % (self.field or "<nil>", self.body())

    def cause(self):
        return {"reason": self.REASONS[self.etype], "message": self.body(),
                "field": self.field or "<nil>"}


def _child(path, name):
    return name if not path else path + "." + name


def _type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


ROOT_KEEP = ("apiVersion", "kind", "metadata")


def prune_and_default(obj, schema, path="", only=None):
    """Drop unknown fields and non-nullable nulls, then apply defaults (in place). only: the
    root fields to visit, when the others are known to be pruned and defaulted under schema
    already (pruning is idempotent: visiting them again would change nothing)."""
    return _prune(obj, schema, path == "", only)


_NO_PROPS = {}


def _prune(obj, schema, root, only=None):
    if not isinstance(schema, dict):
        return obj
    if isinstance(obj, dict) and (schema.get("type") == "object" or "properties" in schema):
        props = schema.get("properties") or _NO_PROPS
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        for key in list(obj.keys()) if only is None else [k for k in only if k in obj]:
            if root and key in ROOT_KEEP:
                continue
            sub = props.get(key)
            if sub is None and isinstance(addl, dict):
                sub = addl
            if sub is None:
                if not preserve and addl is not True:
                    del obj[key]
                continue
            v = obj[key]
            if v is None and not sub.get("nullable"):
                del obj[key]
                continue
            if isinstance(v, (dict, list)):  # scalars are kept as they are
                obj[key] = _prune(v, sub, False)
        for key, sub in _defaults(props):
            if key not in obj and (only is None or key in only):
                obj[key] = _prune(copy.deepcopy(sub["default"]), sub, False)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            obj[i] = _prune(item, schema["items"], False)
    return obj


# Facts derived from a schema node, cached by identity (the entry keeps the node alive, so its
# id is not reused; CRD schemas are never changed in place - a new CRD brings new nodes).
_DEFAULTS = {}
_SCALARS = {}
_CHILDREN = {}
_TRANSITIONS = {}


def _facts(cache, schema, compute):
    hit = cache.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(cache) > 100000:
        cache.clear()
    val = compute(schema)
    cache[id(schema)] = (schema, val)
    return val


def has_transition_rules(schema):
    """Whether any x-kubernetes-validations rule of the schema reads oldSelf."""
    return _facts(_TRANSITIONS, schema, lambda s: "oldSelf" in json.dumps(s))


def _defaults(props):
    """[(key, subschema)] of the properties that have a default."""
    return _facts(_DEFAULTS, props, lambda p: [(k, sub) for k, sub in p.items()
                                                if isinstance(sub, dict) and "default" in sub])


_SCALAR_KEYS = {"type", "enum", "maxLength", "minLength", "pattern", "minimum", "maximum",
                "exclusiveMinimum", "exclusiveMaximum", "nullable", "default", "description",
                "format", "example", "title"}


def _scalar_rules(schema):
    """(type, enum, maxLength, minLength, compiled pattern, minimum, exclusiveMinimum,
    maximum, exclusiveMaximum) of a string/integer/number/boolean schema made only of those
    keywords, well-typed (no CEL, no int-or-string), else None."""
    return _facts(_SCALARS, schema, _scalar_rules_of)


def _scalar_rules_of(sch):
    if not isinstance(sch, dict) or sch.get("type") not in ("string", "integer", "number",
                                                             "boolean"):
        return None
    if not set(sch) <= _SCALAR_KEYS:
        return None
    num = (int, float)
    for key, types in (("enum", list), ("maxLength", int), ("minLength", int), ("pattern", str),
                       ("minimum", num), ("maximum", num)):
        if key in sch and (not isinstance(sch[key], types) or isinstance(sch[key], bool)):
            return None
    try:
        pat = re.compile(sch["pattern"]) if "pattern" in sch else None
    except re.error:
        return None
    rules = (sch["type"], sch.get("enum"), sch.get("maxLength"), sch.get("minLength"), pat,
             sch.get("minimum"), sch.get("exclusiveMinimum"), sch.get("maximum"),
             sch.get("exclusiveMaximum"))
    return _ANY_STRING if rules == _ANY_STRING else rules


_ANY_STRING = ("string", None, None, None, None, None, None, None, None)  # a type-only string


def _children(schema):
    """({property: (subschema, scalar rules)}, (additionalProperties schema or None, rules))
    of an object schema; None when "properties" is not a map."""
    return _facts(_CHILDREN, schema, _children_of)


def _children_of(sch):
    props = sch.get("properties") or {}
    if not isinstance(props, dict):
        return None
    addl = sch.get("additionalProperties")
    addl = addl if isinstance(addl, dict) else None
    return ({k: (sub, _scalar_rules(sub) if sub is not None else None)
             for k, sub in props.items()},
            (addl, _scalar_rules(addl) if addl is not None else None))


def _scalar_ok(v, rules):
    """True when validate(v, schema) would report nothing (False: not sure, run it)."""
    t, enum, max_len, min_len, pat, lo, excl_lo, hi, excl_hi = rules
    if t == "string":
        if not isinstance(v, str):
            return False
        if (max_len is not None and len(v) > max_len) or \
                (min_len is not None and len(v) < min_len) or \
                (pat is not None and not pat.search(v)):
            return False
    elif t == "boolean":
        if not isinstance(v, bool):
            return False
    elif isinstance(v, bool) or not isinstance(v, int if t == "integer" else (int, float)):
        return False
    if enum is not None and v not in enum:
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if lo is not None and (v < lo or (excl_lo and v <= lo)):
            return False
        if hi is not None and (v > hi or (excl_hi and v >= hi)):
            return False
    return True


def _type_ok(v, t, schema):
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(v, (int, str)) and not isinstance(v, bool)
    if t is None:
        return True
    if t == "object":
        return isinstance(v, dict)
    if t == "string":
        return isinstance(v, str)
    if t == "array":
        return isinstance(v, list)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return True


def validate(obj, schema, path="", old=None, errs=None, cel=None, only=None):
    """OpenAPI v3 validation; CEL rules are collected into cel for a later pass. only: the
    root fields to descend into (see validate_custom_resource)."""
    errs = [] if errs is None else errs
    if not isinstance(schema, dict):
        return errs
    t = schema.get("type")
    if obj is None:
        if not schema.get("nullable") and t:
            errs.append(FieldError("TypeInvalid", path, "null",
                                   "%s in body must be of type %s: \"null\"" % (path, t)))
        return errs
    if not _type_ok(obj, t, schema):
        tn = _type_name(obj)
        errs.append(FieldError("TypeInvalid", path, tn,
                               "%s in body must be of type %s: %s" % (path, t, json.dumps(tn))))
        return errs
    if "enum" in schema and obj not in schema["enum"]:
        vals = ", ".join(json.dumps(x if isinstance(x, str) else json.dumps(x))
                         for x in schema["enum"])
        errs.append(FieldError("NotSupported", path, obj, "supported values: " + vals))
    if isinstance(obj, dict):
        for req in schema.get("required") or []:
            if req not in obj:
                errs.append(FieldError("Required", _child(path, req)))
        if "maxProperties" in schema and len(obj) > schema["maxProperties"]:
            errs.append(FieldError("TooMany", path, len(obj),
                                   "must have at most %d items" % schema["maxProperties"]))
        if "minProperties" in schema and len(obj) < schema["minProperties"]:
            errs.append(FieldError("Invalid", path, len(obj), "%s in body should have at "
                                   "least %d properties" % (path, schema["minProperties"])))
        children = _children(schema)
        for key in sorted(obj) if only is None else sorted(k for k in obj if k in only):
            if path == "" and key in ROOT_KEEP:
                continue
            if children is not None:
                sub, rules = children[0].get(key, children[1])
            else:  # malformed "properties": looked up (and failing) as it always was
                addl = schema.get("additionalProperties")
                sub = (schema.get("properties") or {}).get(
                    key, addl if isinstance(addl, dict) else None)
                rules = None
            if sub is not None:
                v = obj[key]
                if rules is _ANY_STRING and isinstance(v, str) or \
                        rules is not None and _scalar_ok(v, rules):
                    continue  # a valid scalar: nothing to report, nothing for CEL
                o = old.get(key) if isinstance(old, dict) else None
                validate(v, sub, _child(path, key), o, errs, cel)
    elif isinstance(obj, list):
        if "maxItems" in schema and len(obj) > schema["maxItems"]:
            errs.append(FieldError("TooMany", path, len(obj),
                                   "must have at most %d items" % schema["maxItems"]))
        if "minItems" in schema and len(obj) < schema["minItems"]:
            errs.append(FieldError("Invalid", path, obj, "%s in body should have at least "
                                   "%d items" % (path, schema["minItems"])))
        items = schema.get("items")
        for i, item in enumerate(obj):
            validate(item, items, "%s[%d]" % (path, i), None, errs, cel)
        _list_type(obj, schema, path, errs)
    elif isinstance(obj, str):
        if "maxLength" in schema and len(obj) > schema["maxLength"]:
            errs.append(FieldError("TooLong", path, obj,
                                   "may not be longer than %d" % schema["maxLength"]))
        if "minLength" in schema and len(obj) < schema["minLength"]:
            errs.append(FieldError("Invalid", path, obj, "%s in body should be at least %d "
                                   "chars long" % (path, schema["minLength"])))
        if "pattern" in schema and not re.search(schema["pattern"], obj):
            errs.append(FieldError("Invalid", path, obj, "%s in body should match '%s'"
                                   % (path, schema["pattern"])))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None:
            if schema.get("exclusiveMinimum") and obj <= lo:
                errs.append(FieldError("Invalid", path, obj,
                                       "%s in body should be greater than %s" % (path, lo)))
            elif obj < lo:
                errs.append(FieldError("Invalid", path, obj, "%s in body should be greater "
                                       "than or equal to %s" % (path, lo)))
        if hi is not None:
            if schema.get("exclusiveMaximum") and obj >= hi:
                errs.append(FieldError("Invalid", path, obj,
                                       "%s in body should be less than %s" % (path, hi)))
            elif obj > hi:
                errs.append(FieldError("Invalid", path, obj, "%s in body should be less "
                                       "than or equal to %s" % (path, hi)))
    if cel is not None and schema.get("x-kubernetes-validations"):
        cel.append((path, obj, old, schema))
    return errs


def _list_type(obj, schema, path, errs):
    lt = schema.get("x-kubernetes-list-type")
    if lt == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen = set()
        for i, item in enumerate(obj):
            if not isinstance(item, dict):
                continue
            k = tuple([(x, item[x]) for x in keys if x in item])
            if not all(type(v) is str for _, v in k):  # 1, 1.0 and True differ in JSON
                k = json.dumps({x: item.get(x) for x in keys if x in item}, sort_keys=True)
            if k in seen:
                errs.append(FieldError("Duplicate", "%s[%d]" % (path, i),
                                       {x: item[x] for x in keys if x in item}))
            seen.add(k)
    elif lt == "set":
        seen = []
        for i, item in enumerate(obj):
            if item in seen:
                errs.append(FieldError("Duplicate", "%s[%d]" % (path, i), item))
            seen.append(item)


BLOCKING = ("NotSupported", "Required", "TooLong", "TooMany", "TypeInvalid")


def validate_custom_resource(obj, schema, old=None, only=None):
    """All field errors for a custom resource, in kube-apiserver's order. only: the root
    fields to validate, when every other one is the stored object's, which was validated under
    this schema (the caller checks that the schema has no transition rule: without oldSelf, a
    rule's verdict depends on the value alone). The root's own checks and rules still run."""
    cel = []
    errs = validate(obj, schema, "", old, None, cel, only)
    if not cel:
        return errs
    if any(e.etype in BLOCKING for e in errs):
        errs.append(FieldError("Invalid", None, "null", "some validation rules were not "
                               "checked because the object was invalid; correct the existing "
                               "errors to complete validation"))
        return errs
    for path, value, oldv, sch in cel:
        for rule in sch["x-kubernetes-validations"]:
            src = rule.get("rule", "")
            try:
                ast = CelParser(src).parse()
            except CelUnsupported:
                continue  # outside the supported subset: not checked
            if "oldSelf" in src and oldv is None:
                continue  # transition rules only run on update
            try:
                ok = cel_eval(ast, {"self": value, "oldSelf": oldv})
            except CelUnsupported:
                continue
            except CelRuntimeError as e:
                errs.append(FieldError("Invalid", path, _type_name(value),
                                       "%s evaluating rule: %s" % (e, src)))
                continue
            if ok is not True:
                msg = rule.get("message") or "failed rule: %s" % src
                errs.append(FieldError("Invalid", _child(path, rule["fieldPath"].lstrip("."))
                                       if rule.get("fieldPath") else path,
                                       _type_name(value), msg))
    return errs


# ---- a small CEL subset ----------------------------------------------------

class CelUnsupported(Exception):
    pass


class CelRuntimeError(Exception):
    pass


_TOKEN = re.compile(r"\s*(?:(\d+\.\d+|\d+u?)|('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|"
                    r"([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}]))")


class CelParser:
    """Recursive-descent parser for CEL expressions over self/oldSelf."""

    def __init__(self, src):
        self.toks, pos = [], 0
        src = src.strip()
        while pos < len(src):
            m = _TOKEN.match(src, pos)
            if not m or m.end() == pos:
                raise CelUnsupported(src)
            pos = m.end()
            num, s, ident, op = m.groups()
            if num is not None:
                self.toks.append(("lit", float(num) if "." in num else int(num.rstrip("u"))))
            elif s is not None:
                self.toks.append(("lit", bytes(s[1:-1], "utf-8").decode("unicode_escape")))
            elif ident is not None:
                lits = {"true": True, "false": False, "null": None}
                self.toks.append(("lit", lits[ident]) if ident in lits else ("id", ident))
            elif op is not None:
                self.toks.append(("op", op))
            if src[pos:].strip() == "":
                break
        self.i = 0

    def peek(self, v=None):
        if self.i >= len(self.toks):
            return None
        t = self.toks[self.i]
        return t if v is None or t == ("op", v) else None

    def take(self, v=None):
        t = self.peek(v)
        if t is None:
            raise CelUnsupported("expected %s" % v)
        self.i += 1
        return t

    def parse(self):
        e = self.expr()
        if self.i != len(self.toks):
            raise CelUnsupported("trailing tokens")
        return e

    def expr(self):
        c = self.binary(0)
        if self.peek("?"):
            self.take("?")
            a = self.expr()
            self.take(":")
            return ("cond", c, a, self.expr())
        return c

    LEVELS = [("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">=", "in"), ("+", "-"),
              ("*", "/", "%")]

    def binary(self, level):
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            t = self.peek()
            if t and (t[1] in self.LEVELS[level]) and t[0] in ("op", "id"):
                self.i += 1
                left = ("bin", t[1], left, self.binary(level + 1))
            else:
                return left

    def unary(self):
        if self.peek("!"):
            self.take()
            return ("not", self.unary())
        if self.peek("-"):
            self.take()
            return ("neg", self.unary())
        return self.member(self.primary())

    def args(self):
        out = []
        self.take("(")
        while not self.peek(")"):
            out.append(self.expr())
            if not self.peek(")"):
                self.take(",")
        self.take(")")
        return out

    def member(self, e):
        while True:
            if self.peek("."):
                self.take()
                name = self.take()
                if name[0] != "id":
                    raise CelUnsupported("member")
                if self.peek("("):
                    e = ("call", name[1], e, self.args())
                else:
                    e = ("field", e, name[1])
            elif self.peek("["):
                self.take()
                idx = self.expr()
                self.take("]")
                e = ("index", e, idx)
            else:
                return e

    def primary(self):
        t = self.take()
        if t[0] == "lit":
            return ("lit", t[1])
        if t == ("op", "("):
            e = self.expr()
            self.take(")")
            return e
        if t == ("op", "["):
            items = []
            while not self.peek("]"):
                items.append(self.expr())
                if not self.peek("]"):
                    self.take(",")
            self.take("]")
            return ("list", items)
        if t[0] == "id":
            if self.peek("("):
                return ("call", t[1], None, self.args())
            return ("var", t[1])
        raise CelUnsupported("primary %r" % (t,))


def cel_eval(e, env):
    kind = e[0]
    if kind == "lit":
        return e[1]
    if kind == "var":
        if e[1] not in env:
            raise CelUnsupported("variable " + e[1])
        return env[e[1]]
    if kind == "list":
        return [cel_eval(x, env) for x in e[1]]
    if kind == "field":
        obj = cel_eval(e[1], env)
        if not isinstance(obj, dict) or e[2] not in obj:
            raise CelRuntimeError("no such key: %s" % e[2])
        return obj[e[2]]
    if kind == "index":
        obj, idx = cel_eval(e[1], env), cel_eval(e[2], env)
        try:
            return obj[idx]
        except (KeyError, IndexError, TypeError):
            raise CelRuntimeError("no such key: %s" % idx)
    if kind == "not":
        return not _bool(cel_eval(e[1], env))
    if kind == "neg":
        return -cel_eval(e[1], env)
    if kind == "cond":
        return cel_eval(e[2] if _bool(cel_eval(e[1], env)) else e[3], env)
    if kind == "bin":
        return _binop(e[1], e[2], e[3], env)
    if kind == "call":
        return _call(e[1], e[2], e[3], env)
    raise CelUnsupported(kind)


def _bool(v):
    if not isinstance(v, bool):
        raise CelRuntimeError("no such overload")
    return v


def _binop(op, a, b, env):
    if op == "||":
        try:
            if _bool(cel_eval(a, env)):
                return True
        except CelRuntimeError:
            if _bool(cel_eval(b, env)):
                return True
            raise
        return _bool(cel_eval(b, env))
    if op == "&&":
        return _bool(cel_eval(a, env)) and _bool(cel_eval(b, env))
    x, y = cel_eval(a, env), cel_eval(b, env)
    try:
        if op == "==":
            return x == y
        if op == "!=":
            return x != y
        if op == "in":
            return x in y
        if op in ("<", "<=", ">", ">="):
            return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return x // y if isinstance(x, int) and isinstance(y, int) else x / y
        if op == "%":
            return x % y
    except (TypeError, ZeroDivisionError):
        raise CelRuntimeError("no such overload")
    raise CelUnsupported(op)


def _call(name, target, args, env):
    if name == "has" and target is None:
        if len(args) != 1 or args[0][0] != "field":
            raise CelUnsupported("has")
        obj = cel_eval(args[0][1], env)
        return isinstance(obj, dict) and args[0][2] in obj
    if name in ("all", "exists", "exists_one", "map", "filter") and target is not None:
        coll = cel_eval(target, env)
        if len(args) != 2 or args[0][0] != "var":
            raise CelUnsupported(name)
        var, body = args[0][1], args[1]
        items = list(coll.keys()) if isinstance(coll, dict) else list(coll)
        res = [cel_eval(body, dict(env, **{var: it})) for it in items]
        if name == "all":
            return all(_bool(r) for r in res)
        if name == "exists":
            return any(_bool(r) for r in res)
        if name == "exists_one":
            return sum(1 for r in res if _bool(r)) == 1
        if name == "map":
            return res
        return [it for it, r in zip(items, res) if _bool(r)]
    vals = [cel_eval(a, env) for a in args]
    if target is not None:
        vals.insert(0, cel_eval(target, env))
    try:
        if name == "size":
            return len(vals[0])
        if name == "startsWith":
            return vals[0].startswith(vals[1])
        if name == "endsWith":
            return vals[0].endswith(vals[1])
        if name == "contains":
            return vals[1] in vals[0]
        if name == "matches":
            return re.search(vals[1], vals[0]) is not None
        if name == "lowerAscii":
            return vals[0].lower()
        if name == "upperAscii":
            return vals[0].upper()
        if name == "int":
            return int(vals[0])
        if name == "string":
            return str(vals[0])
        if name == "double":
            return float(vals[0])
    except (TypeError, AttributeError, ValueError, IndexError):
        raise CelRuntimeError("no such overload")
    raise CelUnsupported(name)
