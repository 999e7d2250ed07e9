#!/usr/bin/env python3
"""rollout.py - the benchmark's instant rollouts: one watch on every Deployment, and whenever a
Deployment's generation is ahead of its status, PUT .../status reporting the rollout complete
(observedGeneration = generation, every replica updated, ready and available). Events are
drained in batches and written by a few keep-alive connections, so thousands keep up.

    rollout.py --server URL [--token T] --ready-file F [--log F] [--writers 4]

--log gets one JSON line per rollout: {"ns", "name", "gen", "keyId", "seen", "sent"} with
CLOCK_MONOTONIC times (seen: the watch event arrived; sent: the status PUT was sent)."""

import argparse
import json
import os
import queue
import sys
import threading
import time

from benchlib import TOKEN, Kube, now, watch_lines

PATH = "/apis/apps/v1/deployments"
KEY_ID = "keyrotator.io/key-id"


def needs_rollout(obj):
    md, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    n = spec.get("replicas", 1)
    return st.get("observedGeneration", 0) < md.get("generation", 0) or \
        st.get("updatedReplicas", 0) != n or st.get("availableReplicas", 0) != n or \
        st.get("replicas", 0) != n


def completed(obj):
    """The object with a complete rollout status (resourceVersion dropped: unconditional)."""
    md, n = obj["metadata"], (obj.get("spec") or {}).get("replicas", 1)
    out = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": md["name"], "namespace": md["namespace"]},
           "status": {"observedGeneration": md.get("generation", 1), "replicas": n,
                      "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                      "conditions": [
                          {"type": "Available", "status": "True",
                           "reason": "MinimumReplicasAvailable",
                           "message": "Deployment has minimum availability."},
                          {"type": "Progressing", "status": "True",
                           "reason": "NewReplicaSetAvailable",
                           "message": 'ReplicaSet "%s" has successfully progressed.'
                                      % md["name"]}]}}
    return out


class Writer:
    def __init__(self, args):
        self.args = args
        self.pending = {}             # (ns, name) -> (object, seen time)
        self.cond = threading.Condition()
        self.work = queue.Queue()
        self.log = open(args.log, "a", buffering=1 << 16) if args.log else None
        self.log_lock = threading.Lock()
        self.inflight = 0

    def offer(self, obj, seen):
        md = obj["metadata"]
        with self.cond:
            key = (md["namespace"], md["name"])
            prev = self.pending.get(key)
            self.pending[key] = (obj, prev[1] if prev else seen)
            self.cond.notify()

    def dispatcher(self):
        """Moves batches of pending rollouts to the writer threads."""
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                batch, self.pending = self.pending, {}
            for item in batch.values():
                self.work.put(item)

    def writer(self):
        kube = Kube(self.args.server, self.args.token)
        while True:
            obj, seen = self.work.get()
            md = obj["metadata"]
            path = "/apis/apps/v1/namespaces/%s/deployments/%s/status" % (md["namespace"],
                                                                          md["name"])
            sent = now()
            code, _ = kube.request("PUT", path, completed(obj))
            if code != 200 and code != 404:
                sys.stderr.write("rollout: PUT %s: HTTP %d\n" % (path, code))
            if self.log and code == 200:
                ann = ((obj["spec"].get("template") or {}).get("metadata") or {}).get(
                    "annotations") or {}
                line = json.dumps({"ns": md["namespace"], "name": md["name"],
                                   "gen": md.get("generation"), "keyId": ann.get(KEY_ID),
                                   "seen": seen, "sent": sent})
                with self.log_lock:
                    self.log.write(line + "\n")
            self.work.task_done()

    def flusher(self):
        while True:
            time.sleep(0.5)
            if self.log:
                with self.log_lock:
                    self.log.flush()

    def list(self, kube):
        body = kube.ok("GET", PATH)
        t = now()
        for obj in body["items"]:
            obj.setdefault("metadata", {})
            if needs_rollout(obj):
                self.offer(obj, t)
        return body["metadata"]["resourceVersion"]

    def run(self):
        for fn in [self.dispatcher, self.flusher] + [self.writer] * self.args.writers:
            threading.Thread(target=fn, daemon=True).start()
        kube = Kube(self.args.server, self.args.token)
        rv = self.list(kube)
        ready = False
        while True:
            path = "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=600&resourceVersion=%s" \
                   % (PATH, rv)
            if not ready:
                self.work.join()
                with open(self.args.ready_file + ".tmp", "w") as f:
                    f.write("ok\n")
                os.replace(self.args.ready_file + ".tmp", self.args.ready_file)
                ready = True
            try:
                for ev in watch_lines(self.args.server, path, self.args.token):
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        rv = self.list(kube)
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED") and needs_rollout(obj):
                        self.offer(obj, now())
            except (OSError, ValueError) as e:
                sys.stderr.write("rollout: watch: %s\n" % e)
                time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--token", default=TOKEN)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--writers", type=int, default=4)
    Writer(ap.parse_args()).run()


if __name__ == "__main__":
    main()
