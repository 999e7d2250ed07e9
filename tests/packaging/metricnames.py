"""metricnames.py - the metric names the controller exports, and the ones a PromQL query names.

exported(root): every family registered through a kr_metric_row table under controller/
({KR_METRIC_COUNTER, "rotations_total", ...}), with the KR_METRICS_PREFIX and, for
histograms, the _bucket, _sum and _count series. in_promql(expr): the metric names an
expression selects (functions, keywords, label names, strings and ranges left out).
"""
import re
from pathlib import Path

ROW = re.compile(r'\{\s*KR_METRIC_(COUNTER|GAUGE|HISTOGRAM)\s*,\s*"([a-z_][a-z0-9_]*)"')


def prefix(root):
    text = (Path(root) / "controller" / "reconciler" / "reconciler.h").read_text()
    return re.search(r'#define KR_METRICS_PREFIX "([a-z_]+)"', text).group(1) + "_"


def exported(root):
    pre, names = prefix(root), set()
    for path in sorted((Path(root) / "controller").rglob("*.c")):
        for kind, name in ROW.findall(path.read_text()):
            if kind == "HISTOGRAM":
                names |= {pre + name + s for s in ("_bucket", "_sum", "_count")}
            else:
                names.add(pre + name)
    if not names:
        raise AssertionError("no kr_metric_row found under controller/: the pattern is stale")
    return names


KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}


def in_promql(expr):
    """Metric names selected by a PromQL expression (Grafana $variables allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    text = re.sub(r"\{[^{}]*\}", "", text)                     # label matchers
    text = re.sub(r"\[[^\[\]]*\]", "", text)                   # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ",
                  text)                                        # label lists
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names
