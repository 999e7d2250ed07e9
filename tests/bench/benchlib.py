"""benchlib.py - the benchmark's plumbing: processes, a keep-alive API client, a RESP client,
/proc accounting and API keys in keyrotator's format. Python 3 standard library only."""

import base64
import hashlib
import http.client
import json
import math
import os
import secrets
import time
import urllib.parse
import zlib

import krtest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKEN = "bench-token"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def now():
    """CLOCK_MONOTONIC: system-wide, so timestamps from our child processes compare."""
    return time.monotonic()


def wait_for(cond, timeout, what, interval=0.01):
    """krtest.wait_for, polling every 10 ms by default (the benchmark times what it waits for)."""
    return krtest.wait_for(cond, timeout, what, interval)



def proc_status(pid):
    """VmRSS, VmHWM, RssAnon, RssFile (KiB, /proc/PID/status) and Pss (smaps_rollup)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "Pss":
                    out["Pss"] = int(v.split()[0])
    except OSError:
        pass
    return out


def proc_cpu(pid):
    """utime + stime of a process in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": model, "nproc": os.cpu_count(), "memMiB": mem,
            "kernel": os.uname().release}


# ---- keys (controller/keystore/key.c) ----------------------------------------------------

def new_key(prefix="sk_", nbytes=32):
    """prefix + base62 body + 6-character base62 CRC-32 checksum, as kr_key_generate."""
    digits = (nbytes * 8 * 1000000000 + 5954196311 - 1) // 5954196311
    num = int.from_bytes(secrets.token_bytes(nbytes), "big")
    body = ""
    for _ in range(digits):
        num, r = divmod(num, 62)
        body = BASE62[r] + body
    text = prefix + body
    crc = zlib.crc32(text.encode())
    ck = ""
    for _ in range(6):
        crc, r = divmod(crc, 62)
        ck = BASE62[r] + ck
    return text + ck


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def b64(s):
    return base64.b64encode(s.encode()).decode()


# ---- the API server client ---------------------------------------------------------------

class Kube:
    """One keep-alive HTTP connection to the local API server; not thread-safe."""

    def __init__(self, url, token=TOKEN, timeout=60):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.token = token
        self.conn = None

    def request(self, method, path, body=None, ctype="application/json"):
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        hdrs = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if data is not None:
            hdrs["Content-Type"] = ctype
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port,
                                                           timeout=self.timeout)
                self.conn.request(method, path, data, hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw)
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        return 0, None

    def ok(self, method, path, body=None, ctype="application/json"):
        code, obj = self.request(method, path, body, ctype)
        if code not in (200, 201):
            raise RuntimeError("%s %s: HTTP %d %s" % (method, path, code, str(obj)[:300]))
        return obj

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def watch_lines(url, path, token=TOKEN, timeout=3600):
    """Yields decoded watch events of one GET ...?watch=1 stream until it ends."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError("watch %s: HTTP %d" % (path, r.status))
        yield from krtest.json_lines(r)
    finally:
        conn.close()


# ---- Valkey -------------------------------------------------------------------------------

def commandstats(r):
    """{command: calls} from INFO commandstats."""
    text = r.command("INFO", "commandstats").decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[len("cmdstat_"):].partition(":")
            for kv in rest.split(","):
                k, _, v = kv.partition("=")
                if k == "calls":
                    out[name] = int(v)
    return out


def stats_delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) - before.get(k, 0)}


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, math.ceil(p / 100.0 * len(xs)) - 1))
    return xs[k]
