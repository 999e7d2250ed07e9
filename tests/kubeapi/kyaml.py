"""A small YAML subset reader for CRD manifests: block mappings and sequences,
plain/quoted scalars, simple flow collections, | and > block scalars, comments
and --- documents. Anchors, tags and complex keys are not supported."""

import json
import re

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def scalar(s):
    s = s.strip()
    if s in ("", "~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if s[0] == '"':
        return json.loads(s)
    if s[0] == "'":
        return s[1:-1].replace("''", "'")
    if s[0] in "[{":
        return _flow(s)
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    return s


def _flow(s):
    pos = [0]

    def ws():
        while pos[0] < len(s) and s[pos[0]] in " \t\n":
            pos[0] += 1

    def item(stops):
        ws()
        c = s[pos[0]]
        if c == "[":
            pos[0] += 1
            out = []
            ws()
            while s[pos[0]] != "]":
                out.append(item(",]"))
                ws()
                if s[pos[0]] == ",":
                    pos[0] += 1
                ws()
            pos[0] += 1
            return out
        if c == "{":
            pos[0] += 1
            out = {}
            ws()
            while s[pos[0]] != "}":
                k = item(":")
                pos[0] += 1
                out[k] = item(",}")
                ws()
                if s[pos[0]] == ",":
                    pos[0] += 1
                ws()
            pos[0] += 1
            return out
        if c in "\"'":
            end = pos[0] + 1
            while s[end] != c or (c == '"' and s[end - 1] == "\\"):
                end += 1
            tok = s[pos[0]:end + 1]
            pos[0] = end + 1
            return scalar(tok)
        start = pos[0]
        while pos[0] < len(s) and s[pos[0]] not in stops:
            pos[0] += 1
        return scalar(s[start:pos[0]])

    return item("")


def _strip_comment(line):
    out, q = [], None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " :[{,-"):
            q = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _split_key(text):
    m = re.match(r"""^("(?:[^"\\]|\\.)*"|'[^']*'|[^:#'"{\[][^:]*?|[^:]*?)\s*:(\s|$)""", text)
    if not m:
        return None
    return scalar(m.group(1)) if m.group(1)[:1] in "\"'" else m.group(1), text[m.end():]


class _Reader:
    def __init__(self, lines):
        self.lines = lines  # (indent, text, raw)
        self.i = 0

    def block_scalar(self, style, parent_indent):
        raw = []
        while self.i < len(self.lines):
            ind, text, line = self.lines[self.i]
            if text and ind <= parent_indent:
                break
            raw.append(line)
            self.i += 1
        ind = min((len(r) - len(r.lstrip()) for r in raw if r.strip()), default=0)
        body = [r[ind:] for r in raw]
        while body and not body[-1].strip():
            body.pop()
        if style[0] == "|":
            text = "\n".join(body)
        else:
            text = " ".join(b for b in body)
        return text + ("" if "-" in style else "\n")

    def skip_blank(self):
        while self.i < len(self.lines) and not self.lines[self.i][1]:
            self.i += 1

    def value(self, rest, indent):
        rest = rest.strip()
        if rest.startswith("|") or rest.startswith(">"):
            return self.block_scalar(rest, indent)
        if rest:
            return scalar(rest)
        self.skip_blank()
        if self.i < len(self.lines):
            ind, text, _ = self.lines[self.i]
            if ind > indent or (ind == indent and text.startswith("- ") or text == "-"):
                return self.node(ind)
        return None

    def node(self, indent):
        self.skip_blank()
        ind, text, _ = self.lines[self.i]
        if text == "-" or text.startswith("- "):
            out = []
            while self.i < len(self.lines):
                self.skip_blank()
                if self.i >= len(self.lines):
                    break
                ind, text, _ = self.lines[self.i]
                if ind != indent or not (text == "-" or text.startswith("- ")):
                    break
                self.i += 1
                rest = text[1:].strip()
                if rest and _split_key(rest) and rest[0] not in "\"'[{":
                    sub = indent + 2 + (len(text[1:]) - len(text[1:].lstrip()) - 1)
                    self.lines.insert(self.i, (sub, rest, " " * sub + rest))
                    out.append(self.node(sub))
                else:
                    out.append(self.value(rest, indent))
            return out
        out = {}
        while self.i < len(self.lines):
            self.skip_blank()
            if self.i >= len(self.lines):
                break
            ind, text, _ = self.lines[self.i]
            if ind != indent or text.startswith("- "):
                break
            kv = _split_key(text)
            if kv is None:
                raise ValueError("yaml: cannot parse line: %r" % text)
            self.i += 1
            out[kv[0]] = self.value(kv[1], indent)
        return out


def load_all(text):
    docs, cur = [], []
    for line in text.splitlines():
        if line.startswith("---") or line.startswith("..."):
            docs.append(cur)
            cur = []
            continue
        cur.append(line)
    docs.append(cur)
    out = []
    for d in docs:
        lines = []
        for raw in d:
            s = _strip_comment(raw)
            if s.strip():
                lines.append((len(s) - len(s.lstrip()), s.strip(), raw))
            elif lines:
                lines.append((0, "", raw))
        while lines and not lines[-1][1]:
            lines.pop()
        # blank lines only matter inside block scalars
        if lines:
            r = _Reader(lines)
            r.lines = [x for x in lines]
            out.append(r.node(lines[0][0]) if _first(lines) else None)
    return [x for x in out if x is not None]


def _first(lines):
    return any(t for _, t, _ in lines)
