#!/usr/bin/env python3
"""dashboard_render.py - draw a Grafana dashboard as one SVG from its own queries.

No Grafana runs here (none is packaged for Debian bookworm or npm), so this stands in for a
screenshot: it reads the dashboard JSON, substitutes Grafana's variables, runs each panel's
PromQL targets as `query_range` over one time window against a Prometheus, and draws the
dashboard's grid (gridPos: 24 columns, 30 px rows) with the panel titles, rows, time series
(lines, a time axis, a value axis in the panel's unit, the legend from legendFormat, with the
legend's calcs), stat panels (the reduced value of each series, coloured by the thresholds,
with a sparkline) and state timelines (a lane per series, filled while it is present and not
0). Other panel types are drawn as a titled box naming the type.

    dashboard_render.py --dashboard D.json --prometheus http://127.0.0.1:9090 --out D.svg
        [--start T] [--end T | --last 15m] [--var NAME=VALUE ...] [--scrape-interval 15s]
        [--width 1600] [--note TEXT] [--timeout 10] [--max-bytes 4194304] [--max-series 30]

T: Unix seconds or an RFC 3339 UTC time. Variables: a query variable with includeAll takes
its allValue ("All") or, without one, as Grafana, the values its label_values() query lists
over the window, as a regex; other query variables their `current` value, a textbox its
value; --var overrides. $__interval is the window divided by the plot's width in pixels, at least
the scrape interval, rounded up to a round step (the query_range step); $__rate_interval is
max($__interval + scrape interval, 4 x scrape interval), as Grafana computes them.

Every read from Prometheus is bounded: one deadline per request (--timeout, connecting and
reading together) and a size limit (--max-bytes; a larger answer is an error); at most
--max-series series per target are drawn. A target whose query fails is drawn as the error in
its panel, and the exit code is then 1 (the SVG is still written). Times are drawn in UTC.
Python 3 standard library only.
"""
import argparse
import datetime
import http.client
import json
import math
import re
import sys
import time
import urllib.parse
from xml.sax.saxutils import escape, quoteattr

# Grafana's grid: 24 columns; a grid row is 30 px high with 8 px between panels.
COLUMNS, CELL_H, MARGIN = 24, 30, 8
HEADER_H, FOOTER_H, PAD = 76, 30, 8  # HEADER_H: 40 without variables to show
FONT = "Inter, Helvetica, Arial, sans-serif"
# Grafana's dark theme (approximately) and its classic palette.
BG, PANEL_BG, BORDER, TEXT, DIM, GRID = ("#111217", "#181b1f", "#2b2f36", "#ccccdc",
                                          "#8e8e9e", "#2a2d33")
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9",
           "#705DA0", "#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C",
           "#6D1F62", "#584477"]
NAMED_COLORS = {"green": "#73BF69", "red": "#F2495C", "yellow": "#FADE2A",
                "orange": "#FF9830", "blue": "#5794F2", "purple": "#B877D9",
                "text": TEXT, "transparent": "none"}
DEFAULT_THRESHOLDS = [{"color": "green", "value": None}, {"color": "red", "value": 80}]
NICE_STEPS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200,
              10800, 21600, 43200, 86400]


class PromError(Exception):
    pass


# ---- durations and times ----
def parse_duration(s):
    """'90s', '5m', '1h30m', '2d' or plain seconds -> seconds (float)."""
    s = str(s).strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise ValueError("not a duration: %r" % s)
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(float(a) * mult[b] for a, b in parts)


def prom_duration(seconds):
    """Seconds -> a PromQL duration ('15s', '2m', '1h')."""
    seconds = int(round(seconds))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return "%d%s" % (seconds // n, unit)
    return "%ds" % max(seconds, 1)


def parse_time(s):
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def utc(t, fmt):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(fmt)


def round_interval(seconds, minimum):
    """The query step: at least `minimum`, rounded up to a round number of seconds."""
    want = max(seconds, minimum)
    for s in NICE_STEPS:
        if s >= want:
            return float(s)
    return float(math.ceil(want / 86400) * 86400)


# ---- Prometheus ----
class _Keep:
    """http.client closes its socket in getresponse() when the server will close; keep it
    until the whole answer is read, so each read's timeout can be the deadline's rest."""

    def close(self):
        pass

    def really_close(self):
        http.client.HTTPConnection.close(self)


class _HTTP(_Keep, http.client.HTTPConnection):
    pass


class _HTTPS(_Keep, http.client.HTTPSConnection):
    pass


class Prometheus:
    """query_range against one Prometheus, every read bounded in time and size."""

    def __init__(self, url, timeout=10.0, max_bytes=4 << 20):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ValueError("the Prometheus URL must be http(s)://host[:port]: %r" % url)
        self.base = url.rstrip("/")
        self.timeout, self.max_bytes = timeout, max_bytes

    def _get(self, path, params):
        """GET base+path; the `data` of a successful answer. One deadline for the whole
        request (connect, send, every read), no proxy, no redirect."""
        deadline = time.monotonic() + self.timeout
        u = urllib.parse.urlsplit(self.base)
        conn = (_HTTPS if u.scheme == "https" else _HTTP)(u.hostname, u.port,
                                                          timeout=self.timeout)
        try:
            conn.request("GET", u.path + path + "?" + urllib.parse.urlencode(params),
                         headers={"Accept": "application/json"})
            r = conn.getresponse()
            body = bytearray()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PromError("no complete answer within %gs" % self.timeout)
                conn.sock.settimeout(left)
                chunk = r.read(65536)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_bytes:
                    raise PromError("an answer larger than %d bytes" % self.max_bytes)
        except (OSError, http.client.HTTPException) as e:
            raise PromError(str(e) or e.__class__.__name__)
        finally:
            conn.really_close()
        try:
            doc = json.loads(bytes(body))
        except ValueError:
            raise PromError("HTTP %d, not JSON" % r.status)
        if not isinstance(doc, dict) or doc.get("status") != "success":
            err = doc.get("error") if isinstance(doc, dict) else None
            raise PromError("HTTP %d: %s" % (r.status, str(err)[:300]))
        return doc.get("data") or {}

    def label_values(self, label, match, start, end):
        """The values of `label` on the series `match` selects over [start, end]."""
        data = self._get("/api/v1/label/%s/values" % urllib.parse.quote(label, safe=""),
                         {"match[]": match, "start": "%.3f" % start, "end": "%.3f" % end})
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise PromError("label values: not a list of strings")
        return sorted(data)

    def query_range(self, expr, start, end, step):
        """[(labels dict, [(t, value or None)])]."""
        data = self._get("/api/v1/query_range", {"query": expr, "start": "%.3f" % start,
                                                  "end": "%.3f" % end, "step": "%g" % step})
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PromError("not a matrix: %s" % data.get("resultType"))
        out = []
        for s in data["result"]:
            labels = s.get("metric") or {}
            pts = []
            for t, v in s.get("values") or []:
                try:
                    f = float(v)
                except (TypeError, ValueError):
                    continue
                pts.append((float(t), f if math.isfinite(f) else None))
            out.append((labels, pts))
        return out


# ---- variables ----
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$")


def all_of(v, listed, known):
    """What Grafana puts for "All" of a query variable without an allValue: the values its
    label_values(selector, label) query lists, as a regex ((a|b), or the one value)."""
    q = v.get("definition") or (v.get("query") or {}).get("query", "")
    m = LABEL_VALUES.match(q if isinstance(q, str) else "")
    if not m or listed is None:
        raise PromError("variable %s: cannot list the values of %r" % (v.get("name"), q))
    # regex-escaped inside a PromQL string, as Grafana does: a.b becomes a\\.b
    found = [re.sub(r"([\\.+*?()|\[\]{}^$])", lambda c: "\\\\" + c.group(1), x)
             for x in listed(m.group(2), substitute(m.group(1), known))]
    return found[0] if len(found) == 1 else "(" + "|".join(found) + ")"


def variable_values(dashboard, overrides, listed=None, errors=None):
    """{name: (value, shown)}; listed(label, selector) lists a label's values (Prometheus),
    for "All" without an allValue; what fails to list is appended to `errors`."""
    vals = {}
    for v in (dashboard.get("templating") or {}).get("list", []):
        name, kind = v.get("name"), v.get("type")
        cur = (v.get("current") or {}).get("value")
        if isinstance(cur, list):
            cur = "|".join(cur) if len(cur) != 1 else cur[0]
        if name in overrides:
            continue
        if kind == "query" and v.get("includeAll") and cur in (None, "", "$__all"):
            value = v.get("allValue")
            if value is None:
                try:
                    known = {k: x for k, (x, _) in vals.items()}
                    known.update(overrides)
                    value = all_of(v, listed, known)
                except PromError as e:
                    if errors is None:
                        raise
                    errors.append(str(e))
                    value = ""
            vals[name] = (value, "All")
        elif kind == "textbox":
            val = cur if cur not in (None, "") else v.get("query", "")
            vals[name] = (val, val)
        elif kind == "datasource":
            vals[name] = ("prometheus", "Prometheus")
        elif kind == "constant":
            vals[name] = (v.get("query", ""), v.get("query", ""))
        elif cur not in (None, ""):
            vals[name] = (cur, cur)
    for k, val in overrides.items():
        vals[k] = (val, val)
    return vals


def substitute(expr, values):
    """Replace $name, ${name}, ${name:fmt} and [[name]] (longest names first)."""
    def rep(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise PromError("unknown variable $%s" % name)
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", rep, expr)


def legend(fmt, labels):
    if not fmt or fmt == "__auto":
        name = labels.get("__name__", "")
        rest = ", ".join('%s="%s"' % (k, v) for k, v in sorted(labels.items())
                         if k != "__name__")
        return (name + "{" + rest + "}") if rest or not name else name
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)


# ---- value formatting ----
def _num(v, decimals):
    if decimals is None:
        a = abs(v)
        decimals = 0 if a >= 100 or a == int(a) else 1 if a >= 10 else 2 if a >= 0.1 else 3
    return "%.*f" % (decimals, v)


def fmt_value(v, unit, decimals=None):
    if v is None:
        return "-"
    unit = unit or "short"
    if unit == "percentunit":
        return _num(v * 100, decimals) + "%"
    if unit == "percent":
        return _num(v, decimals) + "%"
    if unit in ("s", "ms"):
        s = v / 1000 if unit == "ms" else v
        a = abs(s)
        if a == 0:
            return "0 s"
        for lim, div, name in ((0.001, 1e-6, "µs"), (1, 0.001, "ms"), (60, 1, "s"),
                               (3600, 60, "min"), (86400, 3600, "hour")):
            if a < lim:
                return _num(s / div, decimals) + " " + name
        return _num(s / 86400, decimals) + " day"
    suffix = {"reqps": " req/s", "ops": " ops/s", "bytes": " B"}.get(unit, "")
    a = abs(v)
    for lim, div, name in ((1e12, 1e12, " T"), (1e9, 1e9, " Bil"), (1e6, 1e6, " Mil"),
                           (1e3, 1e3, " K")):
        if a >= lim:
            return _num(v / div, decimals) + name + suffix
    return _num(v, decimals) + suffix


def nice_ticks(lo, hi, n=4, min_step=0.0):
    """Round ticks covering lo..hi, about n steps, none finer than min_step (a panel with
    `decimals` 0 gets whole-number ticks)."""
    if hi <= lo:
        hi = lo + 1
    raw = max((hi - lo) / n, min_step)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def reduce(points, calc):
    vals = [v for _, v in points if v is not None]
    if not vals:
        return None
    return {"lastNotNull": vals[-1], "last": points[-1][1], "max": max(vals), "min": min(vals),
            "mean": sum(vals) / len(vals), "sum": sum(vals), "first": points[0][1],
            "firstNotNull": vals[0], "count": len(vals)}.get(calc, vals[-1])


CALC_NAMES = {"lastNotNull": "Last *", "last": "Last", "max": "Max", "min": "Min",
              "mean": "Mean", "sum": "Total", "firstNotNull": "First *", "count": "Count"}


def color_of(name):
    return NAMED_COLORS.get(name, name if name and name.startswith("#") else "#73BF69")


def threshold_color(v, steps):
    col = steps[0].get("color") if steps else "green"
    for st in steps:
        if st.get("value") is None or (v is not None and v >= st["value"]):
            col = st.get("color", col)
    return color_of(col)


# ---- SVG ----
class Svg:
    def __init__(self):
        self.out = []

    def add(self, s):
        self.out.append(s)

    def text(self, x, y, s, size=12, fill=TEXT, anchor="start", weight=None, cls=None):
        self.add('<text x="%.1f" y="%.1f" font-size="%g" fill="%s" text-anchor="%s"%s%s>%s'
                 '</text>' % (x, y, size, fill, anchor,
                              ' font-weight="%s"' % weight if weight else "",
                              ' class=%s' % quoteattr(cls) if cls else "", escape(s)))


def clip(s, width_px, size):
    """Cut `s` to about width_px at font size `size` (a rough average glyph width)."""
    n = max(int(width_px / (size * 0.56)), 1)
    return s if len(s) <= n else s[:max(n - 1, 1)] + "…"


class Renderer:
    def __init__(self, dashboard, prom, start, end, variables=None, scrape_interval=15.0,
                 width=1600, note="", max_series=30):
        self.d, self.prom = dashboard, prom
        self.start, self.end = float(start), float(end)
        if self.end <= self.start:
            raise ValueError("the time window is empty")
        self.errors = []
        self.vars = variable_values(
            dashboard, variables or {},
            lambda label, match: prom.label_values(label, match, self.start, self.end),
            self.errors)
        self.scrape = scrape_interval
        self.width, self.note, self.max_series = width, note, max_series
        self.col_w = (width - 2 * PAD) / COLUMNS
        self.header_h = HEADER_H if self.shown_variables() else 40

    def shown_variables(self):
        return [v for v in (self.d.get("templating") or {}).get("list", [])
                if v.get("hide") != 2 and v.get("type") != "datasource"]

    # -- layout --
    def rect(self, gp):
        x = PAD + gp.get("x", 0) * self.col_w
        y = self.header_h + gp.get("y", 0) * (CELL_H + MARGIN)
        w = gp.get("w", 12) * self.col_w - MARGIN
        h = gp.get("h", 8) * (CELL_H + MARGIN) - MARGIN
        return x, y, w, h

    def panels(self):
        """The panels drawn: top-level ones, and those of expanded rows; a collapsed row's
        panels are hidden, as in Grafana."""
        for p in self.d.get("panels", []):
            yield p
            if p.get("type") == "row" and not p.get("collapsed"):
                for q in p.get("panels", []):
                    yield q

    def render(self):
        panels = list(self.panels())
        bottom = max([p.get("gridPos", {}).get("y", 0) + p.get("gridPos", {}).get("h", 8)
                      for p in panels] or [0])
        height = self.header_h + bottom * (CELL_H + MARGIN) + FOOTER_H
        svg = Svg()
        svg.add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d'
                ' %d" font-family="%s">' % (self.width, height, self.width, height, FONT))
        title = self.d.get("title", "dashboard")
        svg.add("<title>%s</title>" % escape("Dashboard: %s" % title))
        svg.add('<rect width="100%%" height="100%%" fill="%s"/>' % BG)
        self.header(svg, title)
        for p in panels:
            if p.get("type") == "row":
                self.row(svg, p)
            else:
                self.panel(svg, p)
        svg.text(PAD, height - 10, self.note or (
            "Drawn by tests/tools/dashboard_render.py from the dashboard's own queries "
            "against Prometheus; not a Grafana screenshot."), size=11, fill=DIM)
        svg.add("</svg>")
        return "\n".join(svg.out) + "\n"

    def header(self, svg, title):
        svg.text(PAD + 4, 26, title, size=18, weight="600", cls="dashboard-title")
        span = "%s to %s UTC" % (utc(self.start, "%Y-%m-%d %H:%M:%S"),
                                 utc(self.end, "%H:%M:%S" if utc(self.start, "%F") ==
                                     utc(self.end, "%F") else "%Y-%m-%d %H:%M:%S"))
        svg.text(self.width - PAD - 4, 26, span, size=12, fill=DIM, anchor="end")
        x = PAD + 4
        for v in self.shown_variables():
            label = v.get("label") or v.get("name")
            val = self.vars.get(v.get("name"), ("", ""))[1]
            s = "%s: %s" % (label, val)
            w = len(s) * 7 + 20
            svg.add('<rect x="%.1f" y="40" width="%d" height="24" rx="2" fill="%s" stroke="%s"/>'
                    % (x, w, PANEL_BG, BORDER))
            svg.text(x + 10, 56, s, size=12, cls="variable")
            x += w + 8

    def row(self, svg, p):
        x, y, w, h = self.rect(p.get("gridPos", {}))
        svg.add('<g class="row" data-panel-id="%s">' % escape(str(p.get("id", ""))))
        svg.text(x + 2, y + h - 4, p.get("title", ""), size=14, weight="600",
                 cls="row-title")
        svg.add("</g>")

    # -- queries --
    def step_for(self, plot_w):
        return round_interval((self.end - self.start) / max(plot_w, 1), self.scrape)

    def run_targets(self, p, step):
        rng = self.end - self.start
        values = {k: v[0] for k, v in self.vars.items()}
        values.update({
            "__interval": prom_duration(step), "__interval_ms": str(int(step * 1000)),
            "__rate_interval": prom_duration(max(step + self.scrape, 4 * self.scrape)),
            "__range": prom_duration(rng), "__range_s": str(int(rng)),
            "__range_ms": str(int(rng * 1000))})
        series, errors = [], []
        for t in p.get("targets", []):
            if t.get("hide") or not t.get("expr"):
                continue
            try:
                expr = substitute(t["expr"], values)
                res = self.prom.query_range(expr, self.start, self.end, step)
            except PromError as e:
                errors.append("%s: %s" % (t.get("refId", "?"), e))
                continue
            shown = res[:self.max_series]
            if len(res) > len(shown):
                errors.append("%s: %d series, the first %d drawn" % (
                    t.get("refId", "?"), len(res), len(shown)))
            for labels, pts in shown:
                series.append((legend(t.get("legendFormat", ""), labels), pts))
        for e in errors:
            if "drawn" not in e:
                self.errors.append("%s: %s" % (p.get("title", ""), e))
        return series, errors

    # -- panels --
    def panel(self, svg, p):
        x, y, w, h = self.rect(p.get("gridPos", {}))
        kind = p.get("type", "")
        svg.add('<g class="panel" data-panel-id=%s data-type=%s>' % (
            quoteattr(str(p.get("id", ""))), quoteattr(kind)))
        svg.add('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2" fill="%s" '
                'stroke="%s"/>' % (x, y, w, h, PANEL_BG, BORDER))
        svg.text(x + 8, y + 18, clip(p.get("title", ""), w - 16, 13), size=13, weight="600",
                 cls="panel-title")
        body = (x + 8, y + 28, w - 16, h - 34)
        if kind == "timeseries" or kind == "graph":
            self.timeseries(svg, p, *body)
        elif kind == "stat":
            self.stat(svg, p, *body)
        elif kind == "state-timeline":
            self.state_timeline(svg, p, *body)
        else:
            svg.text(x + w / 2, y + h / 2, "(%s panel: not drawn here)" % kind, size=12,
                     fill=DIM, anchor="middle")
        svg.add("</g>")

    def defaults(self, p):
        return (p.get("fieldConfig") or {}).get("defaults") or {}

    def message(self, svg, x, y, w, h, errors, empty):
        lines = []
        if empty:
            lines.append(("No data", 14, DIM))
        for e in errors[:3]:
            lines.append((clip(e, w - 8, 11), 11, "#F2495C" if "drawn" not in e else DIM))
        cy = y + h / 2 - 8 * (len(lines) - 1)
        for s, size, fill in lines:
            svg.text(x + w / 2, cy, s, size=size, fill=fill, anchor="middle",
                     cls="panel-message")
            cy += 17

    def timeseries(self, svg, p, x, y, w, h):
        d = self.defaults(p)
        unit, decimals = d.get("unit"), d.get("decimals")
        leg = (p.get("options") or {}).get("legend") or {}
        calcs = [c for c in leg.get("calcs", []) if c in CALC_NAMES]
        axis_w = 62
        step = self.step_for(w - axis_w)
        series, errors = self.run_targets(p, step)
        # Legend at the bottom: one line per series (table mode with calcs), or wrapped.
        show_legend = leg.get("showLegend", True) and leg.get("displayMode") != "hidden"
        items = [(name, PALETTE[i % len(PALETTE)], pts) for i, (name, pts) in
                 enumerate(series)]
        leg_lines = []
        if show_legend and items:
            if calcs or leg.get("displayMode") == "table":
                leg_lines = [[it] for it in items]
            else:
                line, lw = [], 0
                for it in items:
                    iw = len(it[0]) * 6.5 + 30
                    if line and lw + iw > w:
                        leg_lines.append(line)
                        line, lw = [], 0
                    line.append(it)
                    lw += iw
                leg_lines.append(line)
        max_lines = max(int((h * 0.4) // 15), 1)
        hidden = 0
        if len(leg_lines) > max_lines:
            hidden = sum(len(line) for line in leg_lines[max_lines - 1:])
            leg_lines = leg_lines[:max_lines - 1]
        leg_h = 15 * (len(leg_lines) + (1 if hidden else 0)) + (16 if calcs and items else 0)
        px, py, pw, ph = x + axis_w, y + 4, w - axis_w, h - leg_h - 22
        pts_all = [v for _, _, pts in items for _, v in pts if v is not None]
        if not pts_all:
            svg.add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>' % (
                px, py + ph, px + pw, py + ph, GRID))
            self.time_axis(svg, px, py, pw, ph, draw_grid=False)
            self.message(svg, x, y, w, h - leg_h, errors, True)
        else:
            lo, hi = min(pts_all), max(pts_all)
            if d.get("min") is not None:
                lo = d["min"]
            elif lo > 0:
                lo = 0
            if d.get("max") is not None:
                hi = d["max"]
            elif hi < 0:
                hi = 0
            if hi == lo:
                hi = lo + (abs(lo) or 1)
            ticks = nice_ticks(lo, hi, min_step=10.0 ** -decimals if decimals is not None else 0)
            lo, hi = ticks[0], ticks[-1]

            def sy(v):
                return py + ph - (v - lo) / (hi - lo) * ph

            for t in ticks:
                yy = sy(t)
                svg.add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>' % (
                    px, yy, px + pw, yy, GRID))
                svg.text(px - 6, yy + 4, fmt_value(t, unit, decimals), size=10, fill=DIM,
                         anchor="end", cls="y-tick")
            self.time_axis(svg, px, py, pw, ph)
            gap = step * 2.5
            for name, col, pts in items:
                segs, cur, last_t = [], [], None
                for t, v in pts:
                    if v is None or (last_t is not None and t - last_t > gap):
                        if cur:
                            segs.append(cur)
                        cur = []
                    if v is not None:
                        cur.append((self.sx(t, px, pw), sy(v)))
                    last_t = t
                if cur:
                    segs.append(cur)
                for seg in segs:
                    if len(seg) == 1:
                        svg.add('<circle cx="%.1f" cy="%.1f" r="2" fill="%s"/>' % (
                            seg[0][0], seg[0][1], col))
                    else:
                        svg.add('<polyline class="series" fill="none" stroke="%s" '
                                'stroke-width="1.5" points="%s"/>' % (
                                    col, " ".join("%.1f,%.1f" % q for q in seg)))
            if errors:
                self.message(svg, x, y, w, h - leg_h, errors, False)
        # the legend
        ly = y + h - leg_h + 8
        if calcs and items:
            for i, c in enumerate(reversed(calcs)):
                svg.text(x + w - 4 - i * 70, ly, CALC_NAMES[c], size=10, fill=DIM,
                         anchor="end")
            ly += 16
        for line in leg_lines:
            lx = x + 4
            for name, col, pts in line:
                svg.add('<rect x="%.1f" y="%.1f" width="14" height="3" fill="%s"/>' % (
                    lx, ly - 5, col))
                room = (w - 20 - 70 * len(calcs)) if calcs else len(name) * 6.5 + 8
                svg.text(lx + 20, ly, clip(name or " ", room, 11), size=11, cls="legend")
                if calcs:
                    for i, c in enumerate(reversed(calcs)):
                        svg.text(x + w - 4 - i * 70, ly, fmt_value(reduce(pts, c), unit,
                                                                  decimals),
                                 size=11, anchor="end")
                lx += len(name) * 6.5 + 30
            ly += 15
        if hidden:
            svg.text(x + 4, ly, "+%d more series" % hidden, size=11, fill=DIM)

    def sx(self, t, px, pw):
        return px + (t - self.start) / (self.end - self.start) * pw

    def time_axis(self, svg, px, py, pw, ph, draw_grid=True):
        rng = self.end - self.start
        want = rng / max(pw / 90, 1)
        step = next((s for s in NICE_STEPS if s >= want), 86400)
        fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%m/%d"
        t = math.ceil(self.start / step) * step
        while t <= self.end:
            xx = self.sx(t, px, pw)
            if draw_grid:
                svg.add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>' % (
                    xx, py, xx, py + ph, GRID))
            svg.text(xx, py + ph + 14, utc(t, fmt), size=10, fill=DIM, anchor="middle",
                     cls="x-tick")
            t += step

    def state_timeline(self, svg, p, x, y, w, h):
        """One lane per series, filled where it has a value other than 0 (as Grafana's state
        timeline shows a series that is present, such as ALERTS, over time)."""
        label_w = min(max(w * 0.3, 120), 360)
        px, pw = x + label_w, w - label_w
        step = self.step_for(pw)
        series, errors = self.run_targets(p, step)
        if not series:
            self.time_axis(svg, px, y, pw, h - 22, draw_grid=False)
            self.message(svg, x, y, w, h, errors, True)
            return
        ph = h - 22
        lane = min(ph / len(series), 28)
        self.time_axis(svg, px, y, pw, ph)
        for i, (name, pts) in enumerate(series):
            col = PALETTE[i % len(PALETTE)]
            ly = y + i * lane
            svg.text(x + 2, ly + lane / 2 + 4, clip(name, label_w - 10, 11), size=11,
                     cls="legend")
            start = last = None
            spans = []
            for t, v in pts + [(None, None)]:
                on = v is not None and v != 0
                if on and start is not None and t - last > step * 2.5:
                    spans.append((start, last))
                    start = None
                if on and start is None:
                    start = t
                if not on and start is not None:
                    spans.append((start, last))
                    start = None
                if on:
                    last = t
            for a, b in spans:
                x0, x1 = self.sx(a, px, pw), self.sx(b + step, px, pw)
                svg.add('<rect class="state" x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                        'fill="%s" fill-opacity="0.8"/>' % (x0, ly + 2, max(min(x1, px + pw)
                                                                            - x0, 1),
                                                           lane - 4, col))
        if errors:
            self.message(svg, x, y, w, h, errors, False)

    def stat(self, svg, p, x, y, w, h):
        d = self.defaults(p)
        unit, decimals = d.get("unit"), d.get("decimals")
        opts = p.get("options") or {}
        calc = ((opts.get("reduceOptions") or {}).get("calcs") or ["lastNotNull"])[0]
        steps = (d.get("thresholds") or {}).get("steps") or DEFAULT_THRESHOLDS
        step = self.step_for(w)
        series, errors = self.run_targets(p, step)
        if not series:
            self.message(svg, x, y, w, h, errors, True)
            return
        n = len(series)
        cw = w / n
        for i, (name, pts) in enumerate(series):
            cx = x + i * cw
            v = reduce(pts, calc)
            col = threshold_color(v, steps)
            vals = [q for q in pts if q[1] is not None]
            if opts.get("graphMode", "area") != "none" and len(vals) > 1:
                lo = min(q[1] for q in vals)
                hi = max(q[1] for q in vals)
                span = (hi - lo) or 1
                base = y + h

                def sy(val):
                    return base - 4 - (val - lo) / span * (h * 0.35)
                line = " ".join("%.1f,%.1f" % (cx + (t - self.start) / (self.end - self.start)
                                               * cw, sy(val)) for t, val in vals)
                svg.add('<polyline class="sparkline" fill="none" stroke="%s" '
                        'stroke-opacity="0.6" stroke-width="1.2" points="%s"/>' % (col, line))
            size = max(min(h * 0.38, cw / max(len(fmt_value(v, unit, decimals)), 1) * 1.5,
                           40), 12)
            if n > 1 or (name and name != legend("", {})):
                svg.text(cx + cw / 2, y + h * 0.22, clip(name, cw - 8, 11), size=11,
                         fill=DIM, anchor="middle", cls="stat-name")
            svg.text(cx + cw / 2, y + h * 0.22 + size + 2, fmt_value(v, unit, decimals),
                     size=size, fill=col, anchor="middle", weight="600", cls="stat-value")
        if errors:
            svg.text(x + 4, y + h - 2, clip(errors[0], w - 8, 10), size=10, fill="#F2495C")


def render(dashboard, prom, start, end, **kw):
    """(svg text, [errors])."""
    r = Renderer(dashboard, prom, start, end, **kw)
    return r.render(), r.errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--prometheus", required=True, help="http(s)://host:port")
    ap.add_argument("--out", required=True, help="the SVG to write ('-': stdout)")
    ap.add_argument("--start", help="Unix seconds or RFC 3339 (default: --end minus --last)")
    ap.add_argument("--end", help="Unix seconds or RFC 3339 (default: now)")
    ap.add_argument("--last", default="1h", help="the window when --start is not given")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--scrape-interval", default="15s")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--note", default="", help="the footer line")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    ap.add_argument("--max-bytes", type=int, default=4 << 20, help="per answer")
    ap.add_argument("--max-series", type=int, default=30, help="per target")
    a = ap.parse_args(argv)
    end = parse_time(a.end) if a.end else time.time()
    start = parse_time(a.start) if a.start else end - parse_duration(a.last)
    overrides = {}
    for kv in a.var:
        k, sep, v = kv.partition("=")
        if not sep:
            ap.error("--var wants NAME=VALUE: %r" % kv)
        overrides[k] = v
    with open(a.dashboard) as f:
        dash = json.load(f)
    prom = Prometheus(a.prometheus, a.timeout, a.max_bytes)
    svg, errors = render(dash, prom, start, end, variables=overrides,
                         scrape_interval=parse_duration(a.scrape_interval), width=a.width,
                         note=a.note, max_series=a.max_series)
    if a.out == "-":
        sys.stdout.write(svg)
    else:
        with open(a.out, "w") as f:
            f.write(svg)
    for e in errors:
        print("dashboard_render: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
