#!/usr/bin/env python3
"""client.py - the simulated `sirius-ui` / `sirius-engine`: calls the api continuously with the
key it was started with and counts what it gets back.

Environment: API_URL (e.g. http://127.0.0.1:PORT, the api "Service"), API_KEY (from the
Secret via secretKeyRef; read once at start, like a real process reading its env), NAME,
RATE (requests per second, default 10), POD_STATE_DIR (counters.json is written there,
atomically, after every request: {"name", "keyId", "ok", "unauthorized", "errors", "other"}),
POD_READY_FILE (written at start). Stops on SIGTERM after writing its counters.
ONLY_KEY_ID (failure injection, optional): a consumer that works only with the key of this id;
started with any other key it sends a corrupted one (a consumer broken on the new key, so the
401 gate has something to see).
DRAIN_SECONDS (optional): on SIGTERM go on calling for that many seconds, with the same key,
before exiting (a consumer that drains its work during terminationGracePeriodSeconds);
counters.json then also counts "okTerminating" and "unauthorizedTerminating".
"""
import hashlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

STOP = False
STOP_AT = None


def _stop(*_):
    global STOP, STOP_AT
    STOP = True
    if STOP_AT is None:
        STOP_AT = time.monotonic()


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main():
    env = os.environ
    url = env.get("API_URL", "http://127.0.0.1:8080").rstrip("/") + "/api/v1/ping"
    key = env.get("API_KEY", "")
    period = 1.0 / max(float(env.get("RATE", "10")), 0.1)
    state = env.get("POD_STATE_DIR", ".")
    counters = {"name": env.get("NAME", "client"), "pod": env.get("POD_NAME", ""),
                "keyId": hashlib.sha256(key.encode()).hexdigest()[:12] if key else "",
                "ok": 0, "unauthorized": 0, "errors": 0, "other": 0,
                "okTerminating": 0, "unauthorizedTerminating": 0}
    drain = float(env.get("DRAIN_SECONDS", "0"))
    path = os.path.join(state, "counters.json")
    only = env.get("ONLY_KEY_ID")
    if key and only and counters["keyId"] != only:
        key = key[::-1]  # the same length and alphabet, never a valid key
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    write_json(path, counters)
    if env.get("POD_READY_FILE"):
        write_json(env["POD_READY_FILE"], {"ready": True})
    next_at = time.monotonic()
    while not STOP or time.monotonic() < STOP_AT + drain:
        req = urllib.request.Request(url, headers={"X-API-Key": key, "Connection": "close"})
        terminating = STOP
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                r.read()
                counters["ok" if r.status == 200 else "other"] += 1
                if terminating and r.status == 200:
                    counters["okTerminating"] += 1
        except urllib.error.HTTPError as e:
            counters["unauthorized" if e.code == 401 else "other"] += 1
            if terminating and e.code == 401:
                counters["unauthorizedTerminating"] += 1
        except (OSError, ValueError):
            counters["errors"] += 1
        write_json(path, counters)
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    write_json(path, counters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
