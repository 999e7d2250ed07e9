"""benchreport.py - the benchmark's figures: medians over repeats, the issue's targets, and the
human table (the JSON file carries the same numbers plus every run)."""

from benchlib import median

MIB = 1024.0


def med(runs, *path):
    vals = []
    for r in runs:
        v = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(v)
    return median(vals)


def rnd(x, nd=3):
    return None if x is None else round(x, nd)


def cost_label(latency_ms, max_inflight):
    """The API server's emulated cost, as the table states it beside each figure."""
    if not latency_ms and not max_inflight:
        return "API server in memory: +0 ms a request, no inflight limit"
    return "API +%g ms a request, %s" % (
        latency_ms or 0, "max %d in flight" % max_inflight if max_inflight
        else "no inflight limit")


def per_keyrotation(runs, n, key, by_verb_key):
    """Requests per KeyRotation: reads, writes and each "verb resource" (median over runs;
    lists and watches are per informer, not per KeyRotation, and divided all the same)."""
    if not n:
        return None
    out = {"reads": rnd(div(med(runs, key, "reads"), n)),
           "writes": rnd(div(med(runs, key, "writes"), n))}
    verbs = sorted({v for r in runs for v in (r.get(by_verb_key) or {})})
    if verbs:
        out["by_verb"] = {v: rnd(div(median([(r.get(by_verb_key) or {}).get(v, 0)
                                             for r in runs if by_verb_key in r]), n))
                          for v in verbs}
    return out


def div(x, n):
    return None if x is None else x / float(n)


def size_figures(runs, n, empty_rss):
    f = {"n": n, "repeats": len(runs),
         "rss_kib": med(runs, "rss", "VmRSS"), "rss_hwm_kib": med(runs, "rss", "VmHWM"),
         "rss_anon_kib": med(runs, "rss", "RssAnon"), "pss_kib": med(runs, "rss", "Pss"),
         "readyz_s": rnd(med(runs, "readyz_s")),
         "reconciled_s": rnd(med(runs, "reconciled_s")),
         "all_ready_s": rnd(med(runs, "all_ready_s")),
         "restart_readyz_s": rnd(med(runs, "restart_readyz_s")),
         "restart_reconciled_s": rnd(med(runs, "restart_reconciled_s")),
         "restart_rss_kib": med(runs, "restart_rss", "VmRSS"),
         "cold_api_reads": med(runs, "cold_api", "reads"),
         "cold_api_writes": med(runs, "cold_api", "writes"),
         "cold_api_per_keyrotation": per_keyrotation(runs, n, "cold_api", "cold_api_by_verb"),
         "restart_api_reads": med(runs, "restart_api", "reads"),
         "restart_api_writes": med(runs, "restart_api", "writes"),
         "restart_api_per_keyrotation": per_keyrotation(runs, n, "restart_api",
                                                        "restart_api_by_verb"),
         "cold_api_queue": next((r["cold_api_queue"] for r in runs
                                 if r.get("cold_api_queue")), None),
         "cold_valkey_commands": median([sum(r.get("cold_valkey", {}).values()) for r in runs]),
         "cold_cpu_s": rnd(med(runs, "cold_cpu_s")),
         "cold_kubeapi_cpu_s": rnd(med(runs, "cold_kubeapi_cpu_s")),
         "ready_count": med(runs, "ready_count"),
         # the most any run counted: a first start's set-up must count none
         "cold_keystore_repairs": max((r["cold_keystore_repairs"] for r in runs
                                       if r.get("cold_keystore_repairs") is not None),
                                      default=None)}
    if n and f["rss_kib"] is not None and empty_rss is not None:
        f["bytes_per_keyrotation"] = round((f["rss_kib"] - empty_rss) * 1024.0 / n)
    return f


def focus_figures(runs):
    out = {}
    idle = [r["idle"] for r in runs if "idle" in r]
    if idle:
        out["idle"] = idle[0]
    sec = [r["secrets"] for r in runs if "secrets" in r]
    if sec:
        out["secrets"] = {"count": sec[0]["count"], "kib": sec[0]["kib"],
                          "delta_kib": med(sec, "delta_kib"),
                          "rss_before_kib": med(sec, "rss_before", "VmRSS"),
                          "rss_after_kib": med(sec, "rss_after", "VmRSS"),
                          "create_s": rnd(med(sec, "create_s"), 1)}
    lat = [r["latency"] for r in runs if "latency" in r]
    if lat:
        out["latency"] = {k: rnd(med(lat, k), 2) for k in lat[0]}
    tps = {}
    for r in runs:
        for c, t in r.get("throughput", {}).items():
            tps.setdefault(c, []).append(t)
    if tps:
        out["throughput"] = {}
        for c, ts in tps.items():
            out["throughput"][c] = {
                "count": int(c), "seconds": rnd(med(ts, "seconds"), 2),
                "failed": max(t["failed"] for t in ts),
                "finished_min": min(t["finished"] for t in ts),
                "api_writes_per_rotation": rnd(med(ts, "api_writes_per_rotation"), 2),
                "api_reads_per_rotation": rnd(med(ts, "api_reads_per_rotation"), 2),
                "valkey_per_rotation": rnd(med(ts, "valkey_per_rotation"), 2),
                "api_by_verb": ts[0]["api_by_verb"], "valkey": ts[0]["valkey"]}
            if all("cpu_s" in t for t in ts):
                out["throughput"][c]["cpu_s"] = {
                    who: rnd(med([t["cpu_s"] for t in ts], who), 2)
                    for who in ts[0]["cpu_s"]}
    return out


def target(name, value, limit, unit, ok=None):
    if ok is None and value is not None:
        ok = value <= limit
    return {"name": name, "value": value, "target": limit, "unit": unit, "met": ok}


def targets(doc):
    f, t = doc["figures"], []
    empty = f["empty"]["rss_kib"]
    t.append(target("RSS, no objects", rnd(empty / MIB if empty else None, 2), 6, "MiB"))
    sizes = [s for s in f["sizes"] if s["n"]]
    if sizes:
        big = sizes[-1]
        t.append(target("RSS per KeyRotation (N=%d)" % big["n"],
                        big.get("bytes_per_keyrotation"), 4096, "bytes"))
        if big.get("marginal_bytes_per_keyrotation") is not None:
            t.append(target("RSS per added KeyRotation (N=%d->%d)" % (
                big["marginal_from"], big["n"]), big["marginal_bytes_per_keyrotation"], 4096,
                "bytes"))
    for s in sizes:
        lim = {1000: 2.0, 10000: 15.0}.get(s["n"])
        if lim is None:
            continue
        v = s["all_ready_s"]
        name = "cold start N=%d, to all Ready" % s["n"]
        if v is None and f["rotations_measured"]:
            t.append(target(name + " (%s Ready at --cold-timeout)" % fmt(s["ready_count"]),
                            None, lim, "s", False))
            continue
        if v is None:
            v, name = s["reconciled_s"], "cold start N=%d, to all reconciled*" % s["n"]
        t.append(target(name, v, lim, "s"))
        if s.get("restart_reconciled_s") is not None:
            t.append(target("restart N=%d (all managed), to all reconciled" % s["n"],
                            s["restart_reconciled_s"], lim, "s"))
    foc = f.get("focus", {})
    if "secrets" in foc:
        d = foc["secrets"]["delta_kib"]
        t.append(target("RSS change, %d unrelated Secrets" % foc["secrets"]["count"],
                        rnd(d / MIB if d is not None else None, 2), 1, "MiB",
                        None if d is None else abs(d) <= MIB))
    if "idle" in foc:
        i = foc["idle"]
        t.append(target("idle API writes / %.0f s" % i["seconds"], i["api"]["writes"], 0,
                        "requests"))
        t.append(target("idle CPU per minute", rnd(i["cpu_s_per_min_median"], 3), 0.1, "s"))
    lat = foc.get("latency")
    if lat:
        t.append(target("rotate -> key active, p99", lat["activate_p99_ms"], 50, "ms"))
        t.append(target("stage done -> next patched, p99", lat["stage_p99_ms"], 50, "ms"))
    tp = foc.get("throughput", {}).get("1000")
    if tp:
        t.append(target("1000 rotations at once", tp["seconds"], 30, "s"))
    cost = doc.get("api_cost")
    if cost:
        for x in t:
            with_cost(x, cost)
    return t


def add_marginal(sizes):
    """What one more KeyRotation costs: the RSS slope between consecutive sizes. The
    per-KeyRotation average over RSS with no objects also carries what any work costs once
    (worker stacks, code paged in, key store connections), which the slope leaves out."""
    prev = None
    for s in sorted(sizes, key=lambda x: x["n"]):
        if prev and prev["n"] and s["rss_kib"] is not None and prev["rss_kib"] is not None:
            s["marginal_from"] = prev["n"]
            s["marginal_bytes_per_keyrotation"] = round(
                (s["rss_kib"] - prev["rss_kib"]) * 1024.0 / (s["n"] - prev["n"]))
        prev = s


def with_cost(fig, cost):
    """Each figure carries the API server cost it was measured at."""
    if isinstance(fig, dict):
        fig["api_latency_ms"] = cost["latency_ms"]
        fig["api_max_inflight"] = cost["max_inflight"]
    return fig


def summarize(runs, args, rotations, floor=None):
    cost = {"latency_ms": getattr(args, "latency_ms", 0.0) or 0.0,
            "max_inflight": getattr(args, "max_inflight", 0) or 0}
    empty = size_figures(runs.get(0, []), 0, None)
    if floor:
        empty["floor_rss_kib"] = floor["VmRSS"]
        empty["floor_rss_anon_kib"] = floor["RssAnon"]
    sizes = [size_figures(runs[n], n, empty["rss_kib"]) for n in args.sizes if n in runs]
    add_marginal(sizes)
    focus = focus_figures(runs.get(args.focus, []))
    for fig in [empty] + sizes + [focus.get("idle"), focus.get("secrets"),
                                  focus.get("latency")] + \
            list(focus.get("throughput", {}).values()):
        with_cost(fig, cost)
    doc = {"figures": {"empty": empty, "sizes": sizes, "focus": focus,
                       "focus_n": args.focus, "rotations_measured": rotations},
           "api_cost": cost,
           "runs": {str(n): rs for n, rs in runs.items()}}
    doc["targets"] = targets(doc)
    return doc


def fmt(v, nd=2):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def short_name(k):
    verb, res = k.split(" ", 1)
    name, _, sub = res.partition("/")
    return "%s %s%s" % (verb, name.split(".")[0], "/" + sub if sub else "")


def requests_row(per, n):
    """Reads and writes per KeyRotation, then each "verb resource" made about once per
    KeyRotation or more (per KeyRotation) and the others (per informer or per KeyStore: the
    lists, watches, KeyStore reads and writes) as totals."""
    if not per:
        return "n/a"
    s = "%s reads + %s writes" % (fmt(per["reads"]), fmt(per["writes"]))
    each, total = [], []
    for k, v in sorted((per.get("by_verb") or {}).items(), key=lambda kv: (-(kv[1] or 0),
                                                                           kv[0])):
        if not v:
            continue
        if v >= 0.5:
            each.append("%s %s" % (short_name(k), fmt(v)))
        else:
            total.append((short_name(k), round(v * n)))
    if each:
        s += ": %s" % ", ".join(each)
    if total:
        lists = sum(c for k, c in total if k.startswith("list "))
        watches = sum(c for k, c in total if k.startswith("watch "))
        rest = ["%s %d" % kc for kc in total if not kc[0].startswith(("list ", "watch "))]
        s += "; in all %d lists, %d watches%s" % (lists, watches,
                                                 "".join(", " + r for r in rest))
    return s


def table(doc):
    f, m = doc["figures"], doc["machine"]
    cost = doc.get("api_cost") or {"latency_ms": 0, "max_inflight": 0}
    rows = [("machine", "%s, %d CPUs, %d MiB" % (m["cpu"], m["nproc"], m["memMiB"])),
            ("API server cost (every figure below)", cost_label(cost["latency_ms"],
                                                                cost["max_inflight"]))]
    e = f["empty"]
    rows.append(("RSS at start, no objects", "%s MiB (anon %s MiB, PSS %s MiB)" % (
        fmt(e["rss_kib"] / MIB), fmt(e["rss_anon_kib"] / MIB),
        fmt((e["pss_kib"] or 0) / MIB))))
    if e.get("floor_rss_kib"):
        rows.append(("RSS floor: the same libraries, libcurl initialised",
                     "%s MiB (anon %s MiB); keyrotator adds %s MiB" % (
                         fmt(e["floor_rss_kib"] / MIB), fmt(e["floor_rss_anon_kib"] / MIB),
                         fmt((e["rss_kib"] - e["floor_rss_kib"]) / MIB
                             if e["rss_kib"] is not None else None))))
    for s in f["sizes"]:
        if not s["n"]:
            continue
        p = "N=%d: " % s["n"]
        rows.append((p + "RSS steady (peak)", "%s MiB (%s MiB), %s bytes/KeyRotation%s" % (
            fmt(s["rss_kib"] / MIB), fmt(s["rss_hwm_kib"] / MIB),
            fmt(s.get("bytes_per_keyrotation")),
            "" if s.get("marginal_bytes_per_keyrotation") is None else
            ", %s bytes per added one (from N=%d)" % (
                fmt(s["marginal_bytes_per_keyrotation"]), s["marginal_from"]))))
        rows.append((p + "cold start: /readyz, all reconciled, all Ready", "%s s, %s s, %s s" % (
            fmt(s["readyz_s"], 3), fmt(s["reconciled_s"], 3), fmt(s["all_ready_s"], 3))))
        rows.append((p + "cold start requests (reads/writes), Valkey cmds", "%s / %s, %s" % (
            fmt(s["cold_api_reads"]), fmt(s["cold_api_writes"]),
            fmt(s["cold_valkey_commands"]))))
        rows.append((p + "cold start requests per KeyRotation",
                     requests_row(s.get("cold_api_per_keyrotation"), s["n"])))
        q = s.get("cold_api_queue") or {}
        if q.get("queued") is not None:
            rows.append((p + "cold start --max-inflight: peak in flight, waiting; queued",
                         "%s, %s; %s" % (q["peakInflight"], q["peakWaiting"], q["queued"])))
        rows.append((p + "cold start CPU: controller, API server", "%s s, %s s" % (
            fmt(s["cold_cpu_s"], 3), fmt(s["cold_kubeapi_cpu_s"], 3))))
        rows.append((p + "restart: /readyz, all reconciled", "%s s, %s s" % (
            fmt(s.get("restart_readyz_s"), 3), fmt(s["restart_reconciled_s"], 3))))
        rows.append((p + "restart requests per KeyRotation",
                     requests_row(s.get("restart_api_per_keyrotation"), s["n"])))
    foc = f.get("focus", {})
    p = "N=%d: " % f["focus_n"]
    if "idle" in foc:
        i = foc["idle"]
        rows.append((p + "idle %.0f s: CPU, API reads/writes, lease r/w, Valkey" % i["seconds"],
                     "%s s (%s s/min), %d/%d, %d/%d, %d" % (
                         fmt(i["cpu_s"], 3), fmt(i["cpu_s_per_min_median"], 3),
                         i["api"]["reads"], i["api"]["writes"], i["lease"]["reads"],
                         i["lease"]["writes"], i["valkey_total"])))
    if "secrets" in foc:
        s = foc["secrets"]
        rows.append((p + "RSS change, %d unrelated %d KiB Secrets" % (s["count"], s["kib"]),
                     "%s KiB" % fmt(s["delta_kib"])))
    lat = foc.get("latency")
    if lat:
        rows.append((p + "rotate -> key active p50/p99 (max)", "%s / %s ms (%s)" % (
            fmt(lat["activate_p50_ms"], 1), fmt(lat["activate_p99_ms"], 1),
            fmt(lat["activate_max_ms"], 1))))
        rows.append((p + "stage done -> next patched p50/p99 (max)", "%s / %s ms (%s)" % (
            fmt(lat["stage_p50_ms"], 1), fmt(lat["stage_p99_ms"], 1),
            fmt(lat["stage_max_ms"], 1))))
    for c, tp in sorted(foc.get("throughput", {}).items(), key=lambda x: int(x[0])):
        rows.append((p + "%s rotations at once" % c, "%s s, %s API writes + %s reads and %s "
                     "Valkey cmds per rotation, %d failed" % (
                         fmt(tp["seconds"]), fmt(tp["api_writes_per_rotation"], 1),
                         fmt(tp["api_reads_per_rotation"], 1),
                         fmt(tp["valkey_per_rotation"], 1), tp["failed"])))
        cpu = tp.get("cpu_s")
        if cpu:
            rows.append((p + "%s rotations at once: CPU" % c,
                         "controller %s s, API server %s s, rollout writer %s s" % (
                             fmt(cpu["controller"]), fmt(cpu["api_server"]),
                             fmt(cpu["rollout_writer"]))))
    if not f["rotations_measured"]:
        rows.append(("rotation figures", "not measured (controller wrote no status)"))
    if cost["latency_ms"] or cost["max_inflight"]:  # beside every figure, not only above
        tag = "  [API +%g ms%s]" % (cost["latency_ms"], ", max %d in flight" % (
            cost["max_inflight"]) if cost["max_inflight"] else "")
        rows = rows[:2] + [(k, v + tag) for k, v in rows[2:]]
    w = max(len(r[0]) for r in rows)
    lines = ["%-*s  %s" % (w, k, v) for k, v in rows]
    lines.append("")
    lines.append("targets (issue 9, set for the in-memory API server; %s):" % cost_label(
        cost["latency_ms"], cost["max_inflight"]))
    for t in doc["targets"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        lines.append("  %-6s %-48s %s %s (target <= %s)" % (
            mark, t["name"], fmt(t["value"]), t["unit"], t["target"]))
    return "\n".join(lines)
