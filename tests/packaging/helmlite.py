"""helmlite.py - render charts/keyrotator without helm, for tests where no helm binary exists.

Two parts, both Python 3 standard library only:

- validate(schema, values): the JSON-schema (draft-07) keywords values.schema.json uses, with
  helm-like messages ("workers: Must be less than or equal to 64"). A keyword it does not know
  is an error, so the schema cannot lean on a check that nothing here makes.
- render(chart_dir, values, release, namespace): Go text/template with the Sprig functions the
  chart's templates call, as `helm template` does: values.yaml merged with the overrides and
  validated against the schema first, then every template rendered ({{ fail }} raises Fail).

It is a subset, not helm: a function or construct the chart starts to use and this file
does not know raises NotSupported, so a test never passes on a template it did not render.
helm-check.sh runs the real helm where one is installed.
"""
import json
import re
from pathlib import Path


class NotSupported(Exception):
    """The template uses something helmlite does not implement."""


class Fail(Exception):
    """{{ fail "..." }} in a template, or values the schema refuses (like helm install)."""


# ---------------------------------------------------------------- JSON schema (a subset)

ANNOTATIONS = {"$schema", "title", "description"}
KEYWORDS = ANNOTATIONS | {"type", "enum", "const", "minimum", "maximum", "minLength",
                          "maxLength", "pattern", "properties", "additionalProperties",
                          "required", "items", "anyOf", "allOf", "if", "then", "else"}


def _is_type(value, name):
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise NotSupported(f"schema type {name!r}")


def validate(schema, value, path="(root)"):
    """Every way `value` breaks `schema`, as "path: message" strings; [] when it is valid."""
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise NotSupported(f"schema keyword(s) {sorted(unknown)} at {path}")
    errors = []

    def err(msg):
        errors.append(f"{path}: {msg}")

    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            err(f"Invalid type. Expected: {' or '.join(types)}, given: {type_name(value)}")
            return errors
    if "enum" in schema and value not in schema["enum"]:
        err("must be one of the following: " + ", ".join(json.dumps(v) for v in schema["enum"]))
    if "const" in schema and value != schema["const"]:
        err(f"Does not match: {json.dumps(schema['const'])}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            err(f"Must be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            err(f"Must be less than or equal to {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            err(f"String length must be greater than or equal to {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            err(f"String length must be less than or equal to {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            err(f"Does not match pattern '{schema['pattern']}'")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                err(f"{key} is required")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            sub = f"{key}" if path == "(root)" else f"{path}.{key}"
            if key in props:
                errors += validate(props[key], v, sub)
            elif extra is False:
                err(f"Additional property {key} is not allowed")
            elif isinstance(extra, dict):
                errors += validate(extra, v, sub)
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errors += validate(schema["items"], v, f"{path}.{i}")
    if "anyOf" in schema and not any(not validate(s, value, path) for s in schema["anyOf"]):
        err("Must validate at least one schema (anyOf)")
    for s in schema.get("allOf", []):
        errors += validate(s, value, path)
    if "if" in schema:
        branch = "then" if not validate(schema["if"], value, path) else "else"
        if branch in schema:
            found = validate(schema[branch], value, path)
            if found and "description" in schema:
                found.append(f"{path}: {schema['description']}")
            errors += found
    return errors


def type_name(value):
    for name in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if _is_type(value, name):
            return name
    return type(value).__name__


# ---------------------------------------------------------------- Go templates: lexing

class Text:
    def __init__(self, s):
        self.s = s


class Action:
    def __init__(self, body, where):
        self.body, self.where = body, where


def lex(src, name):
    """Text and Action items, with {{- and -}} trimming applied."""
    items, i, line = [], 0, 1
    trim_next = False
    while True:
        j = src.find("{{", i)
        text = src[i:] if j < 0 else src[i:j]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if j < 0:
            items.append(Text(text))
            return items
        k = j + 2
        trim_left = src.startswith("- ", k) or src.startswith("-\n", k)
        if trim_left:
            text = text.rstrip(" \t\r\n")
            k += 1
        items.append(Text(text))
        line += src.count("\n", i, j)
        end = _action_end(src, k, name, line)
        body = src[k:end]
        trim_next = body.endswith(" -") or body.endswith("\n-")
        if trim_next:
            body = body[:-1]
        body = body.strip()
        if not body.startswith("/*"):
            items.append(Action(body, f"{name}:{line}"))
        elif not body.endswith("*/"):
            raise NotSupported(f"{name}:{line}: unterminated comment")
        i = end + 2


def _action_end(src, k, name, line):
    """Index of the "}}" closing the action that starts at k, skipping quoted strings."""
    if src.startswith("/*", k) or src.startswith(" /*", k):
        end = src.find("*/", k)
        if end < 0:
            raise NotSupported(f"{name}:{line}: unterminated comment")
        k = end + 2
    quote = None
    while k < len(src):
        c = src[k]
        if quote:
            if c == "\\" and quote == '"':
                k += 1
            elif c == quote:
                quote = None
        elif c in '"`':
            quote = c
        elif src.startswith("}}", k):
            return k
        k += 1
    raise NotSupported(f"{name}:{line}: unterminated action")


# ---------------------------------------------------------------- Go templates: parsing

TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<assign>:=|=)
  | (?P<punct>[()|,])
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
)""", re.X)


def tokens(expr, where):
    out, i = [], 0
    expr = expr.strip()
    while i < len(expr):
        m = TOKEN.match(expr, i)
        if not m or m.end() == i:
            raise NotSupported(f"{where}: cannot read {expr[i:]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        i = m.end()
        while i < len(expr) and expr[i].isspace():
            i += 1
    return out


class Pipeline:
    def __init__(self, commands, where, decl=None, assign=False):
        self.commands, self.where, self.decl, self.assign = commands, where, decl, assign


def parse_pipeline(expr, where):
    toks = tokens(expr, where)
    decl, assign = None, False
    if len(toks) >= 2 and toks[0][0] == "var" and toks[1][0] == "assign":
        decl, assign = toks[0][1], toks[1][1] == "="
        toks = toks[2:]
    pos = [0]

    def term():
        kind, text = toks[pos[0]]
        pos[0] += 1
        if kind == "punct" and text == "(":
            inner = pipeline()
            if pos[0] >= len(toks) or toks[pos[0]] != ("punct", ")"):
                raise NotSupported(f"{where}: unbalanced parenthesis")
            pos[0] += 1
            return ("pipe", inner)
        if kind == "str":
            return ("lit", json.loads(text))
        if kind == "raw":
            return ("lit", text[1:-1])
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "ident" and text in ("true", "false"):
            return ("lit", text == "true")
        if kind == "ident" and text == "nil":
            return ("lit", None)
        if kind in ("var", "field", "ident"):
            return (kind, text)
        raise NotSupported(f"{where}: unexpected {text!r}")

    def command():
        args = []
        while pos[0] < len(toks) and toks[pos[0]] not in (("punct", "|"), ("punct", ")")):
            args.append(term())
        if not args:
            raise NotSupported(f"{where}: empty command")
        return args

    def pipeline():
        cmds = [command()]
        while pos[0] < len(toks) and toks[pos[0]] == ("punct", "|"):
            pos[0] += 1
            cmds.append(command())
        return cmds

    cmds = pipeline()
    if pos[0] != len(toks):
        raise NotSupported(f"{where}: trailing {toks[pos[0]][1]!r}")
    return Pipeline(cmds, where, decl, assign)


class Node:
    def __init__(self, kind, **kw):
        self.kind = kind
        self.__dict__.update(kw)


def parse(items, defines):
    """A list of nodes; {{ define }} blocks go into `defines`."""
    pos = [0]

    def block(stops):
        nodes = []
        while pos[0] < len(items):
            it = items[pos[0]]
            pos[0] += 1
            if isinstance(it, Text):
                if it.s:
                    nodes.append(Node("text", s=it.s))
                continue
            word = it.body.split(None, 1)[0] if it.body else ""
            rest = it.body[len(word):].strip()
            if word in stops:
                return nodes, word, rest, it.where
            if word in ("if", "with", "range"):
                nodes.append(control(word, rest, it.where))
            elif word == "define":
                name = json.loads(rest)
                body, end, _, where = block({"end"})
                if end != "end":
                    raise NotSupported(f"{where}: define {name} without end")
                defines[name] = body
            elif word in ("else", "end", "block", "template", "break", "continue"):
                raise NotSupported(f"{it.where}: unexpected {word}")
            else:
                nodes.append(Node("out", pipe=parse_pipeline(it.body, it.where)))
        return nodes, None, None, None

    def control(word, rest, where):
        if word == "range":
            raise NotSupported(f"{where}: range")
        branches, otherwise = [], []
        cond = parse_pipeline(rest, where)
        while True:
            body, stop, stop_rest, stop_where = block({"else", "end"})
            branches.append((cond, body))
            if stop == "end":
                break
            if stop is None:
                raise NotSupported(f"{where}: {word} without end")
            if stop_rest.startswith(word + " ") and word == "if":
                cond = parse_pipeline(stop_rest[len(word):], stop_where)
                continue
            if stop_rest:
                raise NotSupported(f"{stop_where}: else {stop_rest}")
            otherwise, stop, _, _ = block({"end"})
            if stop != "end":
                raise NotSupported(f"{where}: {word} without end")
            break
        return Node(word, branches=branches, otherwise=otherwise)

    nodes, stop, _, where = block(set())
    if stop is not None:
        raise NotSupported(f"{where}: stray {stop}")
    return nodes


# ---------------------------------------------------------------- Go templates: evaluation

def truthy(v):
    """Go's template truth: false, 0, nil and empty strings, lists and maps are false."""
    if v is None or isinstance(v, bool):
        return bool(v)
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, dict)):
        return len(v) > 0
    return True


def to_string(v):
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return "%d" % v if abs(v) < 1e21 else repr(v)
    if isinstance(v, (dict, list)):
        raise NotSupported("printing a map or list (use toYaml)")
    return str(v)


PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def to_yaml(v, indent=0):
    """sigs.k8s.io/yaml's style: sorted keys, lists at the key's indentation."""
    pad = " " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        lines = []
        for k in sorted(v):
            val = v[k]
            key = _scalar(str(k))
            if isinstance(val, (dict, list)) and val:
                child = to_yaml(val, indent + (2 if isinstance(val, dict) else 0))
                lines.append(f"{pad}{key}:\n{child}")
            else:
                lines.append(f"{pad}{key}: {to_yaml(val)}")
        return "\n".join(lines)
    if isinstance(v, list):
        if not v:
            return "[]"
        lines = []
        for item in v:
            if isinstance(item, dict) and item:
                body = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {body[indent + 2:]}")
            else:
                lines.append(f"{pad}- {to_yaml(item)}")
        return "\n".join(lines)
    return _scalar(v)


def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return to_string(v)
    if PLAIN.match(v) and v.lower() not in YAML_WORDS:
        return v
    return json.dumps(v)


def go_printf(fmt, *args):
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if verb not in "sdv":
            raise NotSupported(f"printf %{verb}")
        arg = args[n]
        n += 1
        out.append(str(int(arg)) if verb == "d" else to_string(arg))
    return "".join(out)


def _empty(v):
    return not truthy(v)


class Files:
    def __init__(self, root):
        self.root = Path(root)

    def Get(self, name):
        path = self.root / name
        return path.read_text() if path.is_file() else ""


class Renderer:
    def __init__(self, defines):
        self.defines = defines
        self.funcs = {
            "include": self.include,
            "default": lambda d, *g: d if not g or _empty(g[0]) else g[0],
            "trunc": lambda n, s: s[:n] if n >= 0 else s[len(s) + n:],
            "trimSuffix": lambda suf, s: s[: -len(suf)] if suf and s.endswith(suf) else s,
            "trimPrefix": lambda pre, s: s[len(pre):] if pre and s.startswith(pre) else s,
            "contains": lambda sub, s: sub in s,
            "replace": lambda old, new, s: s.replace(old, new),
            "printf": go_printf,
            "print": lambda *a: "".join(to_string(x) for x in a),
            "quote": lambda *a: " ".join(json.dumps(to_string(x)) for x in a),
            "toYaml": lambda v: to_yaml(v),
            "toString": to_string,
            "nindent": lambda n, s: "\n" + self.funcs["indent"](n, s),
            "indent": lambda n, s: " " * n + s.replace("\n", "\n" + " " * n),
            "ternary": lambda t, f, c: t if c else f,
            "eq": lambda a, *b: any(a == x for x in b),
            "ne": lambda a, b: a != b,
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
            "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b,
            "not": lambda v: not truthy(v),
            "and": self._and,
            "or": self._or,
            "int": lambda v: int(v) if not isinstance(v, str) else int(v or 0),
            "len": len,
            "sub": lambda a, b: int(a) - int(b),
            "add": lambda *a: sum(int(x) for x in a),
            "list": lambda *a: list(a),
            "index": self._index,
            "regexMatch": lambda pat, s: re.search(pat, s) is not None,
            "fail": self._fail,
            "required": self._required,
            "empty": _empty,
        }

    @staticmethod
    def _and(*a):
        for x in a:
            if not truthy(x):
                return x
        return a[-1]

    @staticmethod
    def _or(*a):
        for x in a:
            if truthy(x):
                return x
        return a[-1]

    @staticmethod
    def _index(v, *keys):
        for k in keys:
            v = v[k]
        return v

    @staticmethod
    def _fail(msg):
        raise Fail(msg)

    @staticmethod
    def _required(msg, v):
        if v is None or v == "":
            raise Fail(msg)
        return v

    def include(self, name, ctx):
        if name not in self.defines:
            raise NotSupported(f"include of an undefined template {name!r}")
        return self.run(self.defines[name], ctx, [{"$": ctx}])

    # -- evaluation

    def lookup(self, scopes, name):
        for s in reversed(scopes):
            if name in s:
                return s[name]
        raise NotSupported(f"undefined variable {name}")

    @staticmethod
    def field(v, chain, where):
        for part in chain:
            if isinstance(v, dict):
                v = v.get(part)
            elif v is None:
                raise Fail(f"{where}: nil pointer evaluating .{part}")
            else:
                v = getattr(v, part, None)
                if v is None:
                    raise NotSupported(f"{where}: field {part}")
        return v

    def term(self, t, dot, scopes, where):
        kind, x = t
        if kind == "lit":
            return x
        if kind == "pipe":
            return self.pipeline(x, dot, scopes, where)
        if kind == "field":
            return dot if x == "." else self.field(dot, x[1:].split("."), where)
        if kind == "var":
            name, *chain = x.split(".")
            return self.field(self.lookup(scopes, name), chain, where)
        raise NotSupported(f"{where}: {x} as a value")

    def command(self, cmd, dot, scopes, where, piped):
        head = cmd[0]
        if head[0] == "ident":
            fn = self.funcs.get(head[1])
            if fn is None:
                raise NotSupported(f"{where}: function {head[1]}")
            args = [self.term(t, dot, scopes, where) for t in cmd[1:]] + piped
            try:
                return fn(*args)
            except (Fail, NotSupported):
                raise
            except Exception as e:
                raise Fail(f"{where}: error calling {head[1]}: {e}") from e
        value = self.term(head, dot, scopes, where)
        if callable(value):
            return value(*[self.term(t, dot, scopes, where) for t in cmd[1:]], *piped)
        if len(cmd) > 1 or piped:
            raise NotSupported(f"{where}: arguments to a non-function")
        return value

    def pipeline(self, cmds, dot, scopes, where):
        value, piped = None, []
        for cmd in cmds:
            value = self.command(cmd, dot, scopes, where, piped)
            piped = [value]
        return value

    def run(self, nodes, dot, scopes):
        out = []
        for n in nodes:
            if n.kind == "text":
                out.append(n.s)
            elif n.kind == "out":
                p = n.pipe
                value = self.pipeline(p.commands, dot, scopes, p.where)
                if p.decl:
                    if p.assign:
                        for s in reversed(scopes):
                            if p.decl in s:
                                s[p.decl] = value
                                break
                        else:
                            raise NotSupported(f"{p.where}: assignment to undeclared {p.decl}")
                    else:
                        scopes[-1][p.decl] = value
                else:
                    out.append(to_string(value))
            else:  # if / with
                for cond, body in n.branches:
                    value = self.pipeline(cond.commands, dot, scopes, cond.where)
                    if cond.decl:
                        raise NotSupported(f"{cond.where}: a variable in {n.kind}")
                    if truthy(value):
                        inner = value if n.kind == "with" else dot
                        out.append(self.run(body, inner, scopes + [{}]))
                        break
                else:
                    out.append(self.run(n.otherwise, dot, scopes + [{}]))
        return "".join(out)


# ---------------------------------------------------------------- the chart

_CACHE = {}


def _cached(key, path, make):
    """make(), kept while `path` keeps its modification time (tests render many times)."""
    stamp = (key, str(path), Path(path).stat().st_mtime_ns)
    if stamp not in _CACHE:
        _CACHE[stamp] = make()
    return _CACHE[stamp]


def load_yaml_file(path, yaml2json):
    """The one document of a YAML file, through the project's parser (yaml2json)."""
    import subprocess

    def make():
        out = subprocess.run([yaml2json, str(path)], capture_output=True, text=True,
                             check=True)
        docs = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        return json.dumps(docs[0] if docs else {})
    return json.loads(_cached("yaml", path, make))  # a fresh copy: callers may change it


def parse_templates(chart_dir, chart_name):
    """({define name: nodes}, {template file: nodes}) of the chart's templates/."""
    defines, trees = {}, {}
    for path in sorted((chart_dir / "templates").iterdir()):
        def make(path=path):
            own = {}
            tree = parse(lex(path.read_text(), f"{chart_name}/templates/{path.name}"), own)
            return tree, own
        tree, own = _cached("tpl", path, make)
        defines.update(own)
        if not path.name.startswith("_"):
            trees[path.name] = tree
    return defines, trees


def merge(base, over):
    """helm's coalescing of --set/-f values: maps merge, None deletes, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def render(chart_dir, yaml2json, overrides=None, release="keyrotator",
           namespace="keyrotator-system", schema=True):
    """{template file name: rendered text} for every template (NOTES.txt included), as
    `helm template` renders them. Raises Fail with helm-like text for values the schema
    refuses or a template's {{ fail }}. schema=False skips the schema (to test what the
    templates do on their own)."""
    chart_dir = Path(chart_dir)
    chart = load_yaml_file(chart_dir / "Chart.yaml", yaml2json)
    values = merge(load_yaml_file(chart_dir / "values.yaml", yaml2json), overrides or {})
    schema_path = chart_dir / "values.schema.json"
    if schema and schema_path.exists():
        errors = validate(json.loads(schema_path.read_text()), values)
        if errors:
            raise Fail("values don't meet the specifications of the schema(s) in the "
                       f"following chart(s):\n{chart['name']}:\n" +
                       "\n".join(f"- {e}" for e in errors))
    defines, trees = parse_templates(chart_dir, chart["name"])
    ctx = {
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm",
                    "IsInstall": True, "IsUpgrade": False, "Revision": 1},
        "Chart": {"Name": chart["name"], "Version": chart["version"],
                  "AppVersion": chart.get("appVersion", "")},
        "Files": Files(chart_dir),
    }
    r = Renderer(defines)
    out = {}
    for name, tree in trees.items():
        try:
            out[name] = r.run(tree, ctx, [{"$": ctx}])
        except Fail as e:
            raise Fail(f"execution error at ({chart['name']}/templates/{name}): {e}") from e
    return out


def main(argv):
    """helmlite.py CHART YAML2JSON TEMPLATE [name=json-value ...]: print one rendered template."""
    chart, yaml2json, template, *sets = argv
    overrides = {}
    for s in sets:
        key, _, value = s.partition("=")
        overrides[key] = json.loads(value)
    print(render(chart, yaml2json, overrides)[template], end="")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
