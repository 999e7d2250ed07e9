#!/usr/bin/env python3
"""watch.py - the demo's live view of a KeyRotation, read from the Kubernetes API: phase, step,
stage, per-workload key id and ready counts, the 401 rate, new Events as they come, the 401s the
consumers saw; then a summary. Key ids only, never keys.

    watch.py apply FILE                 create the KeyRotations and KeyStores in FILE (YAML)
    watch.py annotate SECRET K=V        annotate Secret SECRET (kubectl annotate secret)
    watch.py adopted NAME               wait until the controller adopted the current key
    watch.py rotate NAME -- CMD...      note the current key, run CMD (it asks for a rotation),
                                        show the rotation live until it ends, print a summary

Environment (from the simulated cluster's cluster.env): KUBECONFIG, NAMESPACE, VALKEY_ADDR,
VALKEY_PASSWORD, API_SERVICE_URL, SIM_STATE_DIR. On a terminal the view redraws in place;
otherwise (a pipe, a CI log) it prints a line per change, without cursor tricks.
Exit codes: 0 ok (rotate: succeeded, zero 401s, old key revoked), 1 not, 2 bad usage.
"""
import base64
import datetime
import glob
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import kyaml
import simulator
from krtest import resp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ENV = os.environ
NS = ENV.get("NAMESPACE", "sirius")
KR = "/apis/keyrotator.io/v1alpha1/namespaces/%s/keyrotations" % NS
PATHS = {"KeyRotation": KR, "KeyStore": "/apis/keyrotator.io/v1alpha1/namespaces/%s/keystores" % NS}
TTY = sys.stdout.isatty()
BOLD, DIM, RED, GREEN, OFF = (("\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m")
                              if TTY else ("",) * 5)


def kube():
    return simulator.Kube(ENV["KUBECONFIG"], os.path.join(ENV.get("TMPDIR", "/tmp")))


def get_kr(k, name):
    code, obj = k.request("GET", KR + "/" + name)
    if code != 200:
        raise SystemExit("watch.py: GET KeyRotation %s/%s: HTTP %d" % (NS, name, code))
    return obj


def secret_key(k, obj):
    ref = obj["spec"]["secretRef"]
    code, s = k.request("GET", "/api/v1/namespaces/%s/secrets/%s" % (NS, ref["name"]))
    if code != 200 or ref["key"] not in (s.get("data") or {}):
        return None
    return base64.b64decode(s["data"][ref["key"]]).decode()


def kid(key):
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else "-"


def events(k, name):
    code, lst = k.request("GET", "/api/v1/namespaces/%s/events" % NS)
    if code != 200:
        return []
    evs = [e for e in lst.get("items") or [] if e["involvedObject"].get("name") == name]
    return sorted(evs, key=lambda e: int(e["metadata"]["name"].rsplit(".", 1)[1], 16))


def consumers():
    """Per client workload: requests ok, 401s, and the key ids of its running pods."""
    state = ENV.get("SIM_STATE_DIR", "")
    stopped, out = set(), {}
    try:
        with open(os.path.join(state, "events.jsonl")) as f:
            for line in f:
                ev = json.loads(line)
                if ev["event"] == "stop":
                    stopped.add(ev["pod"])
    except (OSError, ValueError):
        pass
    for path in glob.glob(os.path.join(state, "pods", "*", "counters.json")):
        try:
            with open(path) as f:
                c = json.load(f)
        except (OSError, ValueError):
            continue
        w = out.setdefault(c["name"], {"ok": 0, "unauthorized": 0, "errors": 0, "live": []})
        w["ok"] += c["ok"]
        w["unauthorized"] += c["unauthorized"]
        w["errors"] += c["errors"]
        if c["pod"] not in stopped:
            w["live"].append(c["keyId"])
    return out


class View:
    """Prints events as they come and a status block (redrawn in place on a terminal)."""

    def __init__(self, name):
        self.name, self.block_lines, self.last_key = name, 0, None
        self.last_event = None  # (reason, message): the controller repeats some; show once
        self.t0 = time.monotonic()

    def show(self, new_events, st, cons):
        lines = self.block(st, cons)
        out = []
        if TTY and self.block_lines:
            out.append("\033[%dF\033[J" % self.block_lines)
        for e in new_events:
            if (e.get("reason"), e.get("message")) == self.last_event:
                continue
            self.last_event = (e.get("reason"), e.get("message"))
            color = RED if e.get("type") == "Warning" else ""
            stamp = (e.get("lastTimestamp") or e["metadata"].get("creationTimestamp") or "")[11:19]
            out.append("%s  %s%-8s %-20s%s %s\n" % (stamp, color, e.get("type", ""),
                                                    e.get("reason", ""), OFF, e.get("message")))
        if TTY:
            out.append("".join(line + "\n" for line in lines))
            self.block_lines = len(lines)
        else:
            # A line per change of the rotation (not per request counted), 401s always.
            key = "\n".join(lines[1:-1]) + str([c["unauthorized"] for c in cons.values()])
            if key != self.last_key:
                out.append("".join("  | " + line + "\n" for line in lines[1:]))
                self.last_key = key
        sys.stdout.write("".join(out))
        sys.stdout.flush()

    def block(self, st, cons):
        r = st.get("rotation") or {}
        cur = (st.get("currentKey") or {}).get("id", "-")
        pend = (st.get("pendingKey") or {}).get("id")
        rate = st.get("unauthorizedRate")
        lines = ["%s-- %s/%s  %.0fs --%s" % (DIM, NS, self.name, time.monotonic() - self.t0, OFF),
                 "phase %s%s%s  step %s  stage %s  401 rate %s" % (
                     BOLD, st.get("phase", "-"), OFF, r.get("step", "-"), r.get("stage", "-"),
                     (rate + "/s") if rate is not None else "-"),
                 "key   current %s%s" % (cur, ("  -> pending " + pend) if pend else "")]
        for s in st.get("stages") or []:
            for w in s.get("workloads") or []:
                lines.append("  %-7s %-10s %-25s key %-12s ready %s" % (
                    s["name"], s.get("state", "-"), "%s/%s" % (w["kind"], w["name"]),
                    w.get("keyId", "-"), w.get("ready", "-")))
        parts = []
        for name in sorted(cons):
            c = cons[name]
            live = ",".join(sorted(set(c["live"]))) or "-"
            color = RED if c["unauthorized"] else GREEN
            parts.append("%s %d ok %s%d x 401%s (pods on %s)" % (
                name, c["ok"], color, c["unauthorized"], OFF, live))
        lines.append("consumers: " + "; ".join(parts))
        return lines


def rfc3339(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def key_store(k, spec):
    """(address, layout) of the key store a KeyRotation spec names: its KeyStore's, or the
    inline spec.keyStore's. The layout names have no {namespace} or {name} here."""
    if "keyStoreRef" not in spec:
        return spec["keyStore"]["address"], spec["keyStore"]
    code, ks = k.request("GET", PATHS["KeyStore"] + "/" + spec["keyStoreRef"]["name"])
    if code != 200:
        raise SystemExit("watch.py: GET KeyStore %s/%s: HTTP %d" % (
            NS, spec["keyStoreRef"]["name"], code))
    return ks["spec"]["address"], ks["spec"].get("layout") or {}


def old_key_state(k, old_key, spec):
    """(in active set, meta hash) for the old key, read from Valkey."""
    addr, ks = key_store(k, spec)
    addr = ENV.get("VALKEY_ADDR") or addr
    mem = hashlib.sha256(old_key.encode()).hexdigest() if ks.get("storeAs", "sha256") == \
        "sha256" else old_key
    v = resp.Client.from_addr(addr, password=ENV.get("VALKEY_PASSWORD") or None)
    try:
        active = v.sismember(ks.get("activeSet", "api_keys:active"), mem)
        meta = v.hgetall(ks.get("metaKey", "api_key:{id}:meta").replace("{id}", mem))
    finally:
        v.close()
    return active, meta


def ping(key):
    url = ENV.get("API_SERVICE_URL", "").rstrip("/") + "/api/v1/ping"
    req = urllib.request.Request(url, headers={"X-API-Key": key, "Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError as e:
        return "unreachable (%s)" % e


def summary(k, name, obj, old_key, marks, evs, cons, started):
    st = obj.get("status") or {}
    h = (st.get("history") or [{}])[-1]
    print("\n%s==> summary%s" % (BOLD, OFF))
    ok = h.get("outcome") == "Succeeded"
    print("rotation to key %s (%s): %s%s%s in %.1fs (as watched)" % (
        h.get("keyId"), h.get("trigger"), GREEN if ok else RED, h.get("outcome"), OFF,
        marks[-1][0] - started))
    print("duration per step (from status, polled every 0.2s; shorter steps fold into the "
          "next):")
    for i, (t, label) in enumerate(marks[:-1]):
        print("  %-28s %5.1fs" % (label, marks[i + 1][0] - t))
    if evs:
        first = evs[0].get("lastTimestamp", "")
        last = evs[-1].get("lastTimestamp", "")
        try:
            span = "%ds" % (rfc3339(last) - rfc3339(first)).total_seconds()
        except ValueError:
            span = "?"
        print("events: %d, %s %s ... %s %s (%s by the Events' timestamps)" % (
            len(evs), evs[0]["reason"], first[11:19], evs[-1]["reason"], last[11:19], span))
    total_ok = sum(c["ok"] for c in cons.values())
    total_401 = sum(c["unauthorized"] for c in cons.values())
    print("401s seen by consumers: %s%d%s of %d requests (%s; every pod, old and new)" % (
        GREEN if total_401 == 0 else RED, total_401, OFF, total_ok + total_401,
        ", ".join(sorted(cons))))
    revoked = False
    if old_key:
        active, meta = old_key_state(k, old_key, obj["spec"])
        code = ping(old_key)
        revoked = not active and meta.get("status") == "revoked" and code == 401
        print("old key %s: %s (in Valkey: %s, status=%s, revoked_at=%s; the api answers it "
              "with HTTP %s)" % (kid(old_key), "revoked" if revoked else "NOT revoked",
                                 "still in the active set" if active else "not in the active set",
                                 meta.get("status"), meta.get("revoked_at", "-"), code))
    return 0 if ok and total_401 == 0 and revoked else 1


def rotate(name, cmd, timeout):
    k = kube()
    obj = get_kr(k, name)
    st = obj.get("status") or {}
    n_hist = len(st.get("history") or [])
    old_key = secret_key(k, obj)
    seen = {e["metadata"]["name"] for e in events(k, name)}
    print("current key %s (kept by id only); asking for a rotation:\n  $ %s" % (
        kid(old_key), " ".join(cmd)))
    sys.stdout.flush()
    rc = subprocess.call(cmd)
    if rc != 0:
        print("watch.py: the rotate command failed (exit %d)" % rc, file=sys.stderr)
        return 1
    view, started = View(name), time.monotonic()
    marks, last_label, all_evs = [], None, []
    deadline = started + timeout
    while True:
        obj = get_kr(k, name)
        st = obj.get("status") or {}
        r = st.get("rotation") or {}
        label = r.get("step") and ("%s %s" % (r["step"], r.get("stage") or "")).strip()
        if label and r.get("step") != "RollOut":
            label = r["step"]
        if label and label != last_label:
            marks.append((time.monotonic(), label))
            last_label = label
        evs = events(k, name)
        new = [e for e in evs if e["metadata"]["name"] not in seen]
        seen |= {e["metadata"]["name"] for e in new}
        all_evs += new
        cons = consumers()
        view.show(new, st, cons)
        if len(st.get("history") or []) > n_hist and st.get("phase") in ("Idle", "Failed"):
            marks.append((time.monotonic(), "end"))
            break
        if time.monotonic() > deadline:
            print("watch.py: the rotation did not finish within %ds" % timeout, file=sys.stderr)
            return 1
        time.sleep(0.2)
    if len(marks) < 2:
        marks.insert(0, (started, "rotation"))
    return summary(k, name, obj, old_key, marks, all_evs, cons, started)


def main(argv):
    if len(argv) >= 2 and argv[0] == "apply":
        with open(argv[1]) as f:
            objs = [o for o in kyaml.load_all(f.read()) if o]
        k = kube()
        for obj in objs:
            if obj.get("kind") not in PATHS:
                print("watch.py: %s: cannot apply a %s" % (argv[1], obj.get("kind")),
                      file=sys.stderr)
                return 1
            code, res = k.request("POST", PATHS[obj["kind"]], obj)
            if code != 201:
                print("watch.py: creating the %s: HTTP %d %s" % (obj["kind"], code, res),
                      file=sys.stderr)
                return 1
            print("%s.keyrotator.io/%s created" % (obj["kind"].lower(),
                                                   obj["metadata"]["name"]))
        return 0
    if len(argv) == 3 and argv[0] == "annotate" and "=" in argv[2]:
        key, value = argv[2].split("=", 1)
        code, res = kube().request("PATCH", "/api/v1/namespaces/%s/secrets/%s" % (NS, argv[1]),
                                   {"metadata": {"annotations": {key: value}}},
                                   "application/merge-patch+json")
        if code != 200:
            print("watch.py: annotating Secret %s: HTTP %d %s" % (argv[1], code, res),
                  file=sys.stderr)
            return 1
        print("secret/%s annotated" % argv[1])
        return 0
    if len(argv) == 2 and argv[0] == "adopted":
        k, deadline = kube(), time.monotonic() + 30
        while time.monotonic() < deadline:
            st = get_kr(k, argv[1]).get("status") or {}
            if (st.get("currentKey") or {}).get("id"):
                print("the controller adopted key %s (found in the Secret)" % st["currentKey"]["id"])
                return 0
            time.sleep(0.2)
        print("watch.py: no currentKey after 30s", file=sys.stderr)
        return 1
    if len(argv) >= 4 and argv[0] == "rotate" and argv[2] == "--":
        return rotate(argv[1], argv[3:], float(ENV.get("KR_DEMO_TIMEOUT", "150")))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
