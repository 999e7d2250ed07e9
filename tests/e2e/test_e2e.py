"""test_e2e.py - the traffic-level promise of keyrotator (issue #7): while the controller
rotates the key, the ui/engine consumers calling the api with real requests see ZERO 401s; a
broken consumer makes it roll back with nobody locked out; a controller killed at any moment,
a flushed key store, an emergency and a lost leader all end with every consumer on one new key.

Each scenario gets a fresh simulated cluster (tests/sim) and the real `keyrotator run`. With
KEYROTATOR_E2E_KUBECONFIG set, the API server is that kubeconfig's instead (each scenario in
its own keyrotator-e2e-<hex> namespace, deleted after it; the cluster's own workload
controllers roll the Deployments when it has them, detected by a probe): see README
"End-to-end tests", "Against a real cluster". No scenario uses anything only
the local API server offers (its /_kubeapi/ admin API: faults, counters, compaction).

    cd tests/e2e && KR_BINARY=../../build/controller/keyrotator ../py -m unittest -v test_e2e
"""
import os
import random
import sys
import tempfile
import time
import unittest

import e2e_lib as e
from e2e_lib import CONSUMERS, condition, key_id, member, wait_for


class E2ECase(unittest.TestCase):
    prometheus = False

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="kr-e2e-")
        self.fx = e.make_fixture(os.path.join(self.root, "cluster"), prometheus=self.prometheus)
        self.controllers = []
        self.watcher = None
        try:
            self.fx.up()
        except BaseException:
            self.fx.down()
            raise
        self.old_key = self.fx.secret_key()
        self.old_id = key_id(self.old_key)

    def tearDown(self):
        if self.watcher:
            self.watcher.stop()
        for c in self.controllers:
            c.stop()
        self.fx.down()
        failed = any(err for _, err in (getattr(self._outcome, "errors", None) or []))
        if failed or os.environ.get("KEYROTATOR_E2E_KEEP"):
            print("\nkept for inspection: %s" % self.root, file=sys.stderr)
            for c in self.controllers:
                print("--- %s (last lines)\n%s" % (c.log_path, c.tail(25)), file=sys.stderr)
        else:
            e.rmtree(self.root)

    # ---- helpers ----
    def controller(self, **kw):
        c = e.Controller(self.fx, self.root, **kw)
        self.controllers.append(c)
        return c.start()

    def rotation(self, **kw):
        return e.Rotation(self.fx, e.keyrotation(self.fx, **kw))

    def unauthorized(self, workloads=CONSUMERS):
        return sum(c["unauthorized"] for c in self.fx.counters(workloads))

    def assert_zero_401(self, workloads=CONSUMERS):
        bad = [(c["pod"], c["keyId"], c["unauthorized"]) for c in self.fx.counters(workloads)
               if c["unauthorized"]]
        self.assertEqual(bad, [], "consumers saw 401s (pod, key id, count)")
        ok = sum(c["ok"] for c in self.fx.counters(workloads))
        self.assertGreater(ok, 0, "no successful request at all: the traffic did not run")

    def wait_traffic_on(self, kid, workloads=CONSUMERS, n=3, timeout=20):
        """Every workload has a pod started with key `kid` that made n successful calls."""
        def ok():
            cs = self.fx.counters(workloads)
            return all(any(c["name"] == w and c["keyId"] == kid and c["ok"] >= n for c in cs)
                       for w in workloads)
        wait_for(ok, timeout, "traffic on key %s from %s" % (kid, ", ".join(workloads)))

    def more_requests(self, n=2, workloads=CONSUMERS, timeout=15):
        """Wait until every live consumer pod made n more requests (a point after which a
        counter reflects only what happened later)."""
        before = {c["pod"]: c["ok"] + c["unauthorized"] + c["errors"] + c["other"]
                  for c in self.fx.counters(workloads)}
        live = {ev["pod"] for ev in self.live_pods(workloads)}

        def done():  # a pod replaced meanwhile (a rollout) no longer counts
            now = {c["pod"]: c["ok"] + c["unauthorized"] + c["errors"] + c["other"]
                   for c in self.fx.counters(workloads)}
            still = live & {ev["pod"] for ev in self.live_pods(workloads)}
            return all(now.get(p, 0) >= before.get(p, 0) + n for p in still)
        wait_for(done, timeout, "%d more requests per consumer pod" % n)

    def live_pods(self, workloads):
        starts, stopped = {}, set()
        for ev in self.fx.pod_events():
            if ev["workload"] in workloads and ev["event"] == "start":
                starts[ev["pod"]] = ev
            elif ev["event"] == "stop":
                stopped.add(ev["pod"])
        return [ev for p, ev in starts.items() if p not in stopped]

    def settled_hashes(self, workloads, timeout=20):
        """{workload: the pod-template-hash of its running pods}, once each runs one only
        (old pods end some time after their rollout: their grace period)."""
        def one():
            out = {w: set() for w in workloads}
            for ev in self.live_pods(workloads):
                out[ev["workload"]].add(ev["hash"])
            return all(len(h) == 1 for h in out.values()) and \
                {w: h.pop() for w, h in out.items()}
        return wait_for(one, timeout, "one pod-template-hash per workload")

    def keystore(self):
        v = self.fx.valkey()
        try:
            members = {m.decode() for m in v.command("SMEMBERS", "api_keys:active")}
            metas = {k.decode() for k in v.command("KEYS", "api_key:*:meta")}
            marker = v.command("GET", "api_keys:bootstrap")
            return members, metas, marker.decode() if marker else None
        finally:
            v.close()

    def meta(self, key):
        v = self.fx.valkey()
        try:
            return v.hgetall("api_key:%s:meta" % member(key))
        finally:
            v.close()

    def templates_key_id(self, names):
        out = {}
        for n in names:
            code, d = self.fx.api("GET", e.DEPLOY_PATH % self.fx.namespace + "/" + n)
            out[n] = ((d["spec"]["template"].get("metadata") or {}).get("annotations")
                      or {}).get("keyrotator.io/key-id")
        return out

    def assert_rotated_cleanly(self, rot, st, new_id, trigger="Manual"):
        """One new key, current everywhere; the old one revoked; nothing else in the store."""
        self.assertEqual(st["phase"], "Idle", st)
        self.assertEqual(st["currentKey"]["id"], new_id)
        self.assertNotEqual(new_id, self.old_id)
        last = st["history"][-1]
        self.assertEqual((last["keyId"], last["outcome"], last["trigger"]),
                         (new_id, "Succeeded", trigger))
        new_key = self.fx.secret_key()
        self.assertEqual(key_id(new_key), new_id, "the Secret holds the new key")
        members, metas, marker = self.keystore()
        self.assertEqual(members, {member(new_key)}, "exactly the new key is active")
        self.assertEqual(metas, {"api_key:%s:meta" % member(k) for k in (new_key, self.old_key)},
                         "exactly one new key was ever stored")
        self.assertEqual(marker, new_id)
        self.assertEqual(self.meta(self.old_key).get("status"), "revoked")
        self.assertEqual(e.ping(self.fx.api_url, self.old_key), 401, "old key still accepted")
        self.assertEqual(e.ping(self.fx.api_url, new_key), 200)
        self.assertEqual(set(self.templates_key_id(("sirius-api",) + CONSUMERS).values()),
                         {new_id})
        self.assertEqual(condition(st, "Ready").get("status"), "True")
        return new_key


class TestFullRotation(E2ECase):
    prometheus = True

    def test_1_full_rotation_api_ui_engine_with_analysis(self):
        """Scenario 1: zero 401s; restarts in stage order; revoke after the last consumer
        moved; history, Events and metrics tell the story."""
        ctl = self.controller()
        rot = self.rotation(analysis=True)
        rot.wait_adopted()
        self.watcher = e.KeyWatcher(self.fx)
        self.watcher.watch(member(self.old_key))
        self.watcher.start()
        wait_for(lambda: self.watcher.members[member(self.old_key)]["present"], 5, "watcher")
        t0 = time.monotonic()
        rot.rotate("scenario-1")
        seen_stages = []

        def progress(st):
            r = st.get("rotation") or {}
            if r.get("stage") and (not seen_stages or seen_stages[-1] != r["stage"]):
                seen_stages.append(r["stage"])
            return len(st.get("history") or []) == 1 and st.get("phase") == "Idle"
        st = rot.wait(progress, 90, "the rotation to finish")
        new_id = st["currentKey"]["id"]
        self.assert_rotated_cleanly(rot, st, new_id)
        self.wait_traffic_on(new_id)
        self.more_requests()
        self.assert_zero_401()
        self.assertEqual([s for s in seen_stages if s in ("api", "ui", "engine")],
                         sorted(set(seen_stages) & {"api", "ui", "engine"},
                                key=["api", "ui", "engine"].index), seen_stages)

        # Order of restarts, from the pods' start/ready times (CLOCK_MONOTONIC).
        evs = [ev for ev in self.fx.pod_events() if ev["mono"] >= t0]
        new = {w: [ev for ev in evs if ev["workload"] == w and
                   ev.get("keyIdAnnotation") == new_id] for w in ("sirius-api",) + CONSUMERS}
        first_start = {w: min(ev["mono"] for ev in v if ev["event"] == "start")
                       for w, v in new.items()}
        last_ready = {w: max(ev["mono"] for ev in v if ev["event"] == "ready")
                      for w, v in new.items()}
        self.assertLess(last_ready["sirius-api"], first_start["sirius-ui"], "ui before api done")
        self.assertLess(last_ready["sirius-ui"], first_start["sirius-engine"],
                        "engine before ui done")
        for w in CONSUMERS:
            for ev in new[w]:
                if ev["event"] == "start":
                    self.assertEqual(ev["keyIds"], {"API_KEY": new_id}, ev["pod"])

        # The old key left the store only after the last old-key consumer pod stopped.
        old_pods = {ev["pod"] for ev in self.fx.pod_events() if ev["event"] == "start" and
                    ev["workload"] in CONSUMERS and ev["keyIds"].get("API_KEY") == self.old_id}
        last_old_stop = max(ev["mono"] for ev in self.fx.pod_events()
                            if ev["event"] == "stop" and ev["pod"] in old_pods)
        gone = self.watcher.members[member(self.old_key)]["gone_at"]
        self.assertIsNotNone(gone, "the watcher never saw the old key leave")
        self.assertGreater(gone, last_old_stop, "revoked while a consumer still ran the old key")

        # History and Events tell the story, in order.
        reasons = [(ev["reason"], ev["message"]) for ev in rot.events()]
        want = [("RotationStarted", ""), ("KeyGenerated", ""), ("KeyActivated", new_id),
                ("SecretUpdated", new_id), ("StageRollingOut", "stage api"),
                ("StageCompleted", "stage api"), ("StageRollingOut", "stage ui"),
                ("StageCompleted", "stage ui"), ("StageRollingOut", "stage engine"),
                ("StageCompleted", "stage engine"), ("OldKeyRevoked", self.old_id),
                ("RotationFinished", new_id)]
        it = iter(reasons)
        for reason, text in want:
            self.assertTrue(any(r == reason and text in m for r, m in it),
                            "Event %s (%s) missing or out of order in %s" % (reason, text,
                                                                               reasons))
        self.assertEqual(len(st["history"]), 1)
        for stage in st["stages"]:
            self.assertEqual(stage["state"], "Done", stage)
            for w in stage["workloads"]:
                self.assertEqual(w["keyId"], new_id)
                n, m = w["ready"].split("/")
                self.assertEqual(n, m, w)
        self.assertIn("unauthorizedRate", st)
        self.assertLessEqual(float(st["unauthorizedRate"]), 0.5)
        self.assertEqual(ctl.metric('keyrotator_rotations_total{outcome="succeeded"}'), 1)
        measured = [ln for ln in ctl.log_lines() if "RECORD_MEASUREMENT" in ln.get("msg", "")]
        self.assertGreaterEqual(len(measured), 4, "the analysis (prometheus) was not consulted")
        with open(ctl.log_path) as f:
            log = f.read()
        for text in log, str(reasons), str(st):
            for k in (self.old_key, self.fx.secret_key()):
                self.assertNotIn(k, text, "raw key in the controller's output")


class TestConsumerLeftOut(E2ECase):
    prometheus = True

    def test_2a_revoke_waits_while_a_forgotten_consumer_uses_the_old_key(self):
        """Scenario 2, revokeWhenUnusedFor: a consumer outside the stages keeps the old key;
        the revoke is held (status says why) and nobody is locked out; once it is gone, the
        old key is revoked."""
        self.fx.add_env("sirius-api", "LAST_USED_EVERY", "1")
        self.fx.create_consumer("sirius-legacy")
        self.controller()
        rot = self.rotation(revokeWhenUnusedFor="4s")
        rot.wait_adopted()
        rot.rotate("scenario-2a")
        st = rot.wait(lambda st: condition(st, "Degraded").get("reason") == "OldKeyInUse", 60,
                      "the revoke to be held (Degraded=OldKeyInUse)")
        self.assertIn(self.old_id, condition(st, "Degraded")["message"])
        new_id = st["pendingKey"]["id"]
        self.wait_traffic_on(new_id)
        # Held, not just slow: the legacy consumer goes on using the old key, which stays valid.
        v0 = self.meta(self.old_key).get("last_used_at")
        wait_for(lambda: self.meta(self.old_key).get("last_used_at") != v0, 10,
                 "a newer last_used_at of the old key")
        st = rot.status()
        self.assertEqual(len(st.get("history") or []), 0)
        self.assertEqual(condition(st, "Degraded").get("reason"), "OldKeyInUse")
        members, _, _ = self.keystore()
        self.assertIn(member(self.old_key), members)
        self.assert_zero_401(CONSUMERS + ("sirius-legacy",))
        # The consumer is retired: 4 s later the old key goes and the rotation finishes.
        self.fx.delete_deployment("sirius-legacy")
        st = rot.wait_finished(1, 60)
        self.assert_rotated_cleanly(rot, st, new_id)
        self.assert_zero_401(CONSUMERS + ("sirius-legacy",))

    def test_2b_401_gate_rolls_back_and_nobody_is_locked_out(self):
        """Scenario 2, the 401 gate: a consumer that works only with the old key (started
        with the new one it sends a broken key) makes the analysis fail: the rotation rolls
        back, the new key is revoked, the old one stays, every consumer runs it again. The
        templates carry the old key id, as an earlier rotation leaves them: the rollback
        returns each to that earlier template, whose pods have its pod-template-hash again
        (a real Deployment controller scales its earlier ReplicaSet back up)."""
        self.fx.create_consumer("sirius-reports", env=[{"name": "ONLY_KEY_ID",
                                                        "value": self.old_id}])
        everyone = ("sirius-api",) + CONSUMERS + ("sirius-reports",)
        for w in everyone:
            self.fx.patch_template(w, {"metadata": {"annotations": {
                "keyrotator.io/key-id": self.old_id}}})
        before = self.settled_hashes(everyone)
        rs_before = {w: self.fx.scaled_up(w) for w in everyone}
        n_rs = {w: len(self.fx.replicasets(w)) for w in everyone}
        self.controller()
        rot = self.rotation(analysis=True, stages=[["sirius-api"], ["sirius-ui"],
                                                   ["sirius-engine", "sirius-reports"]])
        rot.wait_adopted()
        rot.rotate("scenario-2b")
        st = rot.wait_finished(1, 90)
        self.assertEqual(st["phase"], "Failed", st)
        h = st["history"][-1]
        self.assertEqual(h["outcome"], "RolledBack", h)
        new_id = h["keyId"]
        self.assertNotEqual(new_id, self.old_id)
        self.assertEqual(condition(st, "Degraded").get("status"), "True")
        self.assertEqual(st["currentKey"]["id"], self.old_id)
        self.assertEqual(self.fx.secret_key(), self.old_key, "the Secret holds the old key")
        members, _, _ = self.keystore()
        self.assertEqual(members, {member(self.old_key)}, "only the old key stays active")
        self.assertEqual(e.ping(self.fx.api_url, self.old_key), 200)
        self.assertEqual(set(self.templates_key_id(("sirius-api",) + CONSUMERS +
                                                    ("sirius-reports",)).values()),
                         {self.old_id}, "every workload back on the old key")
        self.assertTrue(any(ev["reason"] and ev["type"] == "Warning" for ev in rot.events()))
        for w in everyone:
            self.fx.wait_rollout(w)
        self.assertEqual(self.settled_hashes(everyone), before,
                         "the rollback did not return to the earlier pod-template-hash")
        # The earlier ReplicaSet itself is scaled back up (same name, same pod-template-hash,
        # the next revision), not a new one made for the same template.
        for w in everyone:
            rs, old_rs = self.fx.scaled_up(w), rs_before[w]
            self.assertEqual(rs["metadata"]["name"], old_rs["metadata"]["name"], w)
            self.assertEqual(rs["metadata"]["labels"]["pod-template-hash"], before[w], w)
            n = len(self.fx.replicasets(w))
            self.assertLessEqual(n, n_rs[w] + 1, "%s: a ReplicaSet made for the earlier "
                                 "template" % w)
            if n > n_rs[w]:  # it rolled: the reused ReplicaSet has the newest revision
                self.assertGreater(int(rs["metadata"]["annotations"][e.REVISION]),
                                   int(old_rs["metadata"]["annotations"][e.REVISION]), w)
        self.assertEqual(len(self.fx.replicasets("sirius-reports")), n_rs["sirius-reports"] + 1)
        rolled = {ev["hash"] for ev in self.fx.pod_events() if ev["event"] == "start" and
                  ev["workload"] == "sirius-reports" and ev["keyIdAnnotation"] == new_id}
        self.assertTrue(rolled, "the broken consumer never ran the new template")
        self.assertNotIn(before["sirius-reports"], rolled)
        # Nobody locked out: the healthy consumers never saw a 401, and every pod running
        # now (the broken consumer's too, back on the old key) gets 200s.
        self.assert_zero_401()
        self.assertGreater(self.unauthorized(("sirius-reports",)), 0, "the gate saw nothing?")
        self.more_requests(workloads=CONSUMERS + ("sirius-reports",))
        live = {ev["pod"] for ev in self.live_pods(CONSUMERS + ("sirius-reports",))}
        for c in self.fx.counters(CONSUMERS + ("sirius-reports",)):
            if c["pod"] in live:
                self.assertEqual((c["keyId"], c["unauthorized"]), (self.old_id, 0), c)
                self.assertGreater(c["ok"], 0, c)


class TestControllerKilled(E2ECase):
    prometheus = True

    def test_3_sigkill_at_random_moments_then_restart(self):
        """Scenario 3: SIGKILL the controller several times through a rotation; it finishes
        with zero 401s and exactly one new key."""
        seed = int(os.environ.get("KEYROTATOR_E2E_SEED", str(random.randrange(1 << 30))))
        rnd = random.Random(seed)
        print("\nscenario 3 seed: KEYROTATOR_E2E_SEED=%d" % seed, file=sys.stderr)
        ctl = self.controller()
        rot = self.rotation(analysis=True)
        rot.wait_adopted()
        rot.rotate("scenario-3")
        pending_ids, steps_killed = set(), []
        for i in range(7):  # the first kill early (generate/activate/distribute), then later
            deadline = time.monotonic() + (rnd.uniform(0.0, 0.2) if i == 0 else
                                           rnd.uniform(0.2, 2.5))
            st = {}
            while time.monotonic() < deadline:
                st = rot.status()
                if (st.get("pendingKey") or {}).get("id"):
                    pending_ids.add(st["pendingKey"]["id"])
                time.sleep(0.05)
            steps_killed.append((st.get("rotation") or {}).get("step") or st.get("phase"))
            ctl.kill()
            if len(st.get("history") or []):
                break
            ctl.start()
        print("killed during: %s" % steps_killed, file=sys.stderr)
        if ctl.proc.poll() is not None:
            ctl.start()
        st = rot.wait_finished(1, 90)
        self.assertGreaterEqual(ctl.starts, 3, "killed too few times")
        new_id = st["currentKey"]["id"]
        self.assertLessEqual(pending_ids, {new_id}, "more than one new key was generated")
        self.assertEqual(len(st["history"]), 1)
        self.assert_rotated_cleanly(rot, st, new_id)
        self.wait_traffic_on(new_id)
        self.more_requests()
        self.assert_zero_401()
        ids = {ev["keyIds"].get("API_KEY") for ev in self.fx.pod_events()
               if ev["event"] == "start" and ev["workload"] in CONSUMERS}
        self.assertEqual(ids, {self.old_id, new_id})
        generated = [ev for ev in rot.events() if ev["reason"] == "KeyGenerated"]
        self.assertGreaterEqual(len(generated), 1)
        for ev in generated:
            self.assertNotIn(self.old_id, ev["message"])


class TestKeyStoreFlushed(E2ECase):

    def test_4_valkey_flushall_mid_rotation_is_repaired_from_the_secrets(self):
        """Scenario 4: FLUSHALL during the rollout; the controller re-seeds both keys from the
        Secrets, the rotation goes on, and from the repair on nobody gets a 401."""
        self.controller()
        rot = self.rotation(validationPeriod="3s")
        rot.wait_adopted()
        rot.rotate("scenario-4")
        st = rot.wait(lambda st: (st.get("rotation") or {}).get("stage") in ("ui", "engine") or
                      len(st.get("history") or []), 60, "the rollout to reach stage ui")
        self.assertEqual(len(st.get("history") or []), 0, "finished before the flush")
        new_id = st["pendingKey"]["id"]
        repairs0 = sum(ev["reason"] == "KeyStoreRepaired" for ev in rot.events())
        self.fx.flush_keystore()
        t_flush = time.monotonic()
        new_key = self.fx.secret_key()

        def repaired():
            members, _, marker = self.keystore()
            return {member(self.old_key), member(new_key)} <= members or \
                (member(new_key) in members and marker == new_id)
        wait_for(repaired, 30, "the key store to be repaired")
        repair_s = time.monotonic() - t_flush
        self.more_requests()
        before = self.unauthorized()
        st = rot.wait_finished(1, 60)
        self.assert_rotated_cleanly(rot, st, new_id)
        self.more_requests()
        self.assertEqual(self.unauthorized(), before, "401s after the repair")
        print("\nrepaired %.1fs after FLUSHALL; 401s during the outage: %d" % (
            repair_s, before), file=sys.stderr)
        repairs = [ev["message"] for ev in rot.events() if ev["reason"] == "KeyStoreRepaired"]
        self.assertGreater(len(repairs), repairs0, "no KeyStoreRepaired Event after the flush")
        self.assertTrue(any(new_id in m for m in repairs[repairs0:]), repairs)


class TestEmergency(E2ECase):

    def test_5_emergency_rejects_the_old_key_within_seconds(self):
        """Scenario 5: the emergency annotation revokes the old key at once (the api refuses
        it within seconds), then every consumer restarts on the new key and recovers."""
        self.controller()
        rot = self.rotation()
        rot.wait_adopted()
        t0 = time.monotonic()
        rot.rotate("leaked in a log", emergency=True)
        wait_for(lambda: e.ping(self.fx.api_url, self.old_key, timeout=1) == 401, 10,
                 "the api to refuse the old key")
        rejected_s = time.monotonic() - t0
        print("\nold key rejected %.2fs after the emergency annotation" % rejected_s,
              file=sys.stderr)
        self.assertLess(rejected_s, 5)
        st = rot.wait_finished(1, 60)
        new_id = st["currentKey"]["id"]
        self.assert_rotated_cleanly(rot, st, new_id, trigger="Emergency")
        self.wait_traffic_on(new_id)
        self.more_requests()
        live = {ev["pod"] for ev in self.live_pods(CONSUMERS)}
        for c in self.fx.counters():
            if c["keyId"] == new_id:
                self.assertEqual(c["unauthorized"], 0, c)
            if c["pod"] in live:
                self.assertEqual(c["keyId"], new_id, c)


class TestLeaderElection(E2ECase):

    def test_6_leader_killed_mid_rotation_standby_finishes(self):
        """Scenario 6: two replicas with --leader-elect; SIGKILL the leader mid-rotation; the
        standby takes the Lease and finishes the same rotation."""
        a = self.controller(instance="e2e-a", leader_elect=True)
        wait_for(lambda: a.metric("keyrotator_leader") == 1, 30, "e2e-a to lead")
        b = self.controller(instance="e2e-b", leader_elect=True)
        self.assertEqual(b.metric("keyrotator_leader"), 0)
        rot = self.rotation(validationPeriod="3s")
        rot.wait_adopted()
        rot.rotate("scenario-6")
        st = rot.wait(lambda st: (st.get("rotation") or {}).get("stage") in ("ui", "engine"),
                      60, "the rollout to reach stage ui")
        new_id = st["pendingKey"]["id"]
        a.kill()
        t_kill = time.monotonic()
        wait_for(lambda: b.metric("keyrotator_leader") == 1, 40, "e2e-b to take over")
        print("\nstandby led %.1fs after the leader was killed" % (time.monotonic() - t_kill),
              file=sys.stderr)
        st = rot.wait_finished(1, 60)
        self.assert_rotated_cleanly(rot, st, new_id)
        evs = rot.events()
        fin = [ev for ev in evs if ev["reason"] == "RotationFinished"]
        self.assertEqual([ev.get("reportingInstance") for ev in fin], ["e2e-b"])
        self.assertIn("e2e-a", {ev.get("reportingInstance") for ev in evs})
        code, lease = self.fx.api("GET", "/apis/coordination.k8s.io/v1/namespaces/%s/leases/"
                                  "keyrotator" % self.fx.namespace)
        self.assertEqual(code, 200)
        led = [ln["msg"] for ln in b.log_lines() if ln.get("msg", "").startswith("became the")]
        self.assertEqual(led, ["became the leader (%s)" % lease["spec"]["holderIdentity"]])
        self.wait_traffic_on(new_id)
        self.more_requests()
        self.assert_zero_401()


if __name__ == "__main__":
    unittest.main()
