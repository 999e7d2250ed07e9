"""test_e2e_controls.py - the controls an operator reaches for mid-rotation (issue 21, design.md
§1c), end to end on the simulated cluster: abort (rolled back, nobody locked out; refused once
the old key is revoked), an abort while a stage is rolling out, a pause before a stage and before
the revoke held until promoted, and a paused rotation whose analysis fails rolling back.

    cd tests/e2e && KR_BINARY=../../build/controller/keyrotator ../py -m unittest -v test_e2e_controls
"""
import os
import sys
import time
import unittest

import cluster
import e2e_lib as e
from e2e_lib import CONSUMERS, condition, member, wait_for
from test_e2e import E2ECase

EVERYONE = ("sirius-api",) + CONSUMERS
WORKER = "sirius-worker"
# The pod command of WORKER: tests/sim/client.py, ready at once when started with the key of id
# READY_KEY_ID, and never ready with any other (it calls the api all the same): a roll-out onto
# a new key starts one pod (maxSurge 1, maxUnavailable 0) and stays in the middle.
SLOW_READY_CLIENT = """
import hashlib, os, sys
env = dict(os.environ)
if hashlib.sha256(env.get("API_KEY", "").encode()).hexdigest()[:12] != env["READY_KEY_ID"]:
    env["POD_READY_FILE"] += ".never"
os.execve(sys.executable, [sys.executable, sys.argv[1]], env)
"""


class ControlsCase(E2ECase):
    def paused_rotation(self, pause_stage, **kw):
        """The scenarios' KeyRotation with stages[pause_stage].pause set, created as such."""
        obj = e.keyrotation(self.fx, **kw)
        if pause_stage is not None:
            obj["spec"]["stages"][pause_stage]["pause"] = True
        return e.Rotation(self.fx, obj)

    def measurements(self, ctl):
        return sum(1 for ln in ctl.log_lines() if "RECORD_MEASUREMENT" in ln.get("msg", ""))

    def wait_paused(self, rot, before, timeout=60):
        st = rot.wait(lambda st: st.get("phase") == "Paused" and
                      before in condition(st, "Rotating").get("message", ""), timeout,
                      "the rotation to pause before %s" % before)
        cond = condition(st, "Rotating")
        self.assertEqual((cond.get("status"), cond.get("reason")), ("True", "Paused"), st)
        self.assertIn(before, cond["message"])
        self.assertIn("keyrotator.io/promote", cond["message"])
        self.assertEqual(condition(st, "Ready").get("status"), "False")
        return st

    def assert_rolled_back(self, rot, st, why, consumers=CONSUMERS):
        """Failed with a RolledBack history entry; the old key everywhere and alone active."""
        self.assertEqual(st["phase"], "Failed", st)
        h = st["history"][-1]
        self.assertEqual(h["outcome"], "RolledBack", h)
        self.assertIn(why, h["reason"])
        self.assertNotEqual(h["keyId"], self.old_id)
        self.assertEqual(st["currentKey"]["id"], self.old_id)
        self.assertEqual(e.key_id(self.fx.secret_key()), self.old_id,
                         "the Secret holds the old key")
        members, _, _ = self.keystore()
        self.assertEqual(members, {member(self.old_key)}, "only the old key stays active")
        self.assertEqual(e.ping(self.fx.api_url, self.old_key), 200)
        everyone = ("sirius-api",) + consumers
        for w in everyone:
            self.fx.wait_rollout(w)
        self.assertNotIn(h["keyId"], set(self.templates_key_id(everyone).values()),
                         "a workload left on the new key")
        self.more_requests(workloads=consumers)
        self.assert_zero_401(consumers)
        live = {ev["pod"] for ev in self.live_pods(consumers)}
        for c in self.fx.counters(consumers):
            if c["pod"] in live:
                self.assertEqual(c["keyId"], self.old_id, c)
        return h


class TestAbort(ControlsCase):
    def slow_ready_worker(self):
        """WORKER: 3 replicas reading the Secret, rolled one pod at a time, whose pods are
        ready only on the old key (SLOW_READY_CLIENT) and, told to stop, go on calling for
        DRAIN_SECONDS of their grace period with the key they started with."""
        self.fx.c.create_deployment(WORKER, "sim/client", [
            {"name": "API_URL", "value": self.fx.api_url}, {"name": "NAME", "value": WORKER},
            {"name": "RATE", "value": "5"}, {"name": "READY_KEY_ID", "value": self.old_id},
            {"name": "DRAIN_SECONDS", "value": "3"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                "name": cluster.SECRET, "key": cluster.SECRET_KEY}}}], replicas=3, grace=6,
            strategy={"type": "RollingUpdate",
                      "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
        code, res = self.fx.api("PATCH", e.DEPLOY_PATH % self.fx.namespace + "/" + WORKER, [
            {"op": "add", "path": "/spec/template/spec/containers/0/command",
             "value": [sys.executable, "-c", SLOW_READY_CLIENT]},
            {"op": "add", "path": "/spec/template/spec/containers/0/args",
             "value": [os.path.join(e.SIM, "client.py")]}], e.JSON_PATCH)
        self.assertEqual(code, 200, res)
        self.fx.wait_rollout(WORKER)

    def mid_stage(self, rot):
        """(status, WORKER) once stage ui is rolling out: sirius-ui done on the new key,
        WORKER part-way (updatedReplicas < replicas) with a pod on the new key calling the api
        successfully; None before."""
        st = rot.status()
        new_id = (st.get("pendingKey") or {}).get("id")
        states = {s["name"]: s["state"] for s in st.get("stages") or []}
        if not new_id or (st.get("rotation") or {}).get("stage") != "ui" or \
                states.get("ui") != "RollingOut":
            return None
        code, d = self.fx.api("GET", e.DEPLOY_PATH % self.fx.namespace + "/" + WORKER)
        updated = (d.get("status") or {}).get("updatedReplicas", 0) if code == 200 else 0
        calling = any(c["keyId"] == new_id and c["ok"] > 0 for c in self.fx.counters((WORKER,)))
        ids = self.templates_key_id(("sirius-ui", WORKER))
        return (ids == {"sirius-ui": new_id, WORKER: new_id} and
                self.fx.rollout_complete("sirius-ui") and
                0 < updated < d["spec"]["replicas"] and calling) and (st, d)

    def test_abort_while_a_stage_rolls_out_rolls_back_in_reverse(self):
        """Stage ui half rolled out (sirius-ui on the new key, WORKER with one of its 3 pods on
        it, calling the api): keyrotator.io/abort rolls stage ui back, then stage api, restores
        the Secret and revokes the new key once WORKER's new pod has drained; zero 401s for
        every consumer pod ever started and the old key still valid."""
        why = "the worker team saw errors"
        consumers = CONSUMERS + (WORKER,)
        self.slow_ready_worker()
        self.controller()
        obj = e.keyrotation(self.fx, stages=[["sirius-api"], ["sirius-ui", WORKER],
                                             ["sirius-engine"]])
        obj["spec"]["stages"][1]["timeout"] = "10m"  # nothing but the abort ends it
        rot = e.Rotation(self.fx, obj)
        rot.wait_adopted()
        rot.rotate("abort-mid-stage")
        st, d = wait_for(lambda: self.mid_stage(rot), 90,
                         "stage ui rolling out: sirius-ui on the new key, %s part-way" % WORKER)
        new_id = st["pendingKey"]["id"]
        self.assertEqual(st["phase"], "Rotating", st)
        self.assertEqual(self.templates_key_id(("sirius-api",))["sirius-api"], new_id)
        aborted_at = time.monotonic()
        rot.annotate("keyrotator.io/abort", why)
        st = rot.wait_finished(1, 120)
        self.assertEqual(st.get("lastHandledAbort"), why)
        h = self.assert_rolled_back(rot, st, why, consumers)
        self.assertEqual(h["keyId"], new_id)
        self.assertIn("keyrotator.io/abort", h["reason"])
        self.assertTrue(h.get("revokedAt"), h)
        # The new key is revoked in the key store, not only out of the active set.
        v = self.fx.valkey()
        try:
            metas = [m.decode() for m in v.command("KEYS", "api_key:%s*:meta" % new_id)]
            self.assertEqual(len(metas), 1, "the new key's meta hash")
            self.assertEqual(v.hgetall(metas[0]).get("status"), "revoked")
        finally:
            v.close()
        # In reverse: stage ui is back on the old key (its pods ready, WORKER's new pod gone)
        # before stage api restarts.
        evs = [ev for ev in self.fx.pod_events() if ev["mono"] > aborted_at]
        api_back = [ev["mono"] for ev in evs if ev["workload"] == "sirius-api" and
                    ev["event"] == "start" and ev["keyIdAnnotation"] == self.old_id]
        ui_back = [ev["mono"] for ev in evs if ev["workload"] == "sirius-ui" and
                   ev["event"] == "ready" and ev["keyIdAnnotation"] == self.old_id]
        worker_gone = [ev["mono"] for ev in evs if ev["workload"] == WORKER and
                       ev["event"] == "terminate" and ev["keyIdAnnotation"] == new_id]
        self.assertTrue(api_back and ui_back and worker_gone, (api_back, ui_back, worker_gone))
        self.assertGreater(min(api_back), max(ui_back + worker_gone),
                           "stage api restarted before stage ui was rolled back")
        # The worker pod that ran on the new key worked, and went on working while it drained
        # after the rollback replaced it: the new key was revoked only after its grace period.
        on_new = [c for c in self.fx.counters((WORKER,)) if c["keyId"] == new_id]
        self.assertTrue(on_new and all(c["ok"] > 0 and c["okTerminating"] > 0 and
                                       not c["unauthorizedTerminating"] for c in on_new), on_new)
        # The KeyRotation says what happened and why: condition, and Events in order.
        self.assertEqual(condition(st, "Ready").get("status"), "False", st)
        cond = condition(st, "Degraded")
        self.assertEqual((cond.get("status"), cond.get("reason")), ("True", "RolledBack"), st)
        self.assertIn(why, cond["message"])
        evs = [ev for ev in rot.events() if ev["reason"] in (
            "RollingBack", "StageRollingBack", "NewKeyRevoked", "RotationRolledBack")]
        self.assertEqual([(ev["reason"], ev["message"].split(" back")[0]) for ev in evs], [
            ("RollingBack", "rolling"), ("StageRollingBack", "roll stage ui"),
            ("StageRollingBack", "roll stage api"), ("NewKeyRevoked", "revoke the new key %s"
                                                     % new_id),
            ("RotationRolledBack", "rotation failed: aborted by keyrotator.io/abort \"%s\""
             % why)], evs)
        self.assertIn(why, evs[0]["message"])

    def test_abort_during_a_rotation_rolls_back_and_nobody_is_locked_out(self):
        """Held before stage ui with stage api on the new key: keyrotator.io/abort rolls it all
        back as a failed analysis would (Secret, stage api, new key revoked), zero 401s."""
        self.controller()
        rot = self.paused_rotation(1, stages=[["sirius-api"], ["sirius-ui"], ["sirius-engine"]])
        rot.wait_adopted()
        rot.rotate("abort-1")
        st = self.wait_paused(rot, "stage ui")
        new_id = st["pendingKey"]["id"]
        self.assertEqual(self.templates_key_id(("sirius-api",))["sirius-api"], new_id)
        self.assertEqual([s["state"] for s in st["stages"]], ["Done", "Paused", "Pending"])
        rot.annotate("keyrotator.io/abort", "the ui team asked to wait")
        st = rot.wait_finished(1, 60)
        self.assertEqual(st.get("lastHandledAbort"), "the ui team asked to wait")
        self.assert_rolled_back(rot, st, "the ui team asked to wait")
        reasons = [ev["reason"] for ev in rot.events()]
        self.assertIn("RollingBack", reasons)
        self.assertIn("RotationRolledBack", reasons)

    def test_abort_after_the_revoke_is_refused_with_an_event(self):
        """An emergency rotation revokes the old key first; held on a paused Deployment in its
        roll-out, an abort is refused (Event AbortRefused says why) and it goes on."""
        code, res = self.fx.api("PATCH", e.DEPLOY_PATH % self.fx.namespace + "/sirius-engine",
                                {"spec": {"paused": True}}, e.MERGE)
        self.assertEqual(code, 200, res)
        self.controller()
        rot = self.rotation()
        rot.wait_adopted()
        rot.rotate("leak", emergency=True)
        st = rot.wait(lambda st: (st.get("rotation") or {}).get("oldKeyRevoked") and
                      (st.get("rotation") or {}).get("stage") == "engine", 60,
                      "the emergency rotation to reach the paused stage engine")
        rot.annotate("keyrotator.io/abort", "too late")
        st = rot.wait(lambda st: st.get("lastHandledAbort") == "too late", 30,
                      "the abort to be handled")
        self.assertNotIn(st["phase"], ("RollingBack", "Failed"), st)
        ev = wait_for(lambda: next((ev for ev in rot.events()
                                    if ev["reason"] == "AbortRefused"), None), 10,
                      "Event AbortRefused")
        self.assertEqual(ev["type"], "Warning")
        self.assertIn("already revoked", ev["message"])
        self.assertIn(self.old_id, ev["message"])
        code, res = self.fx.api("PATCH", e.DEPLOY_PATH % self.fx.namespace + "/sirius-engine",
                                {"spec": {"paused": False}}, e.MERGE)
        self.assertEqual(code, 200, res)
        st = rot.wait_finished(1, 90)
        self.assertEqual(st["phase"], "Idle", st)
        self.assertEqual(st["history"][-1]["outcome"], "Succeeded")
        self.assertNotEqual(st["currentKey"]["id"], self.old_id)
        self.assertEqual(e.ping(self.fx.api_url, self.old_key), 401)


class TestPauseAndPromote(ControlsCase):
    prometheus = True

    def test_pause_before_a_stage_and_before_the_revoke_held_until_promoted(self):
        """stages[1].pause and pauseBeforeRevoke: each holds (phase Paused, analysis going on)
        until keyrotator.io/promote gets a new value; then the rotation finishes cleanly."""
        ctl = self.controller()
        rot = self.paused_rotation(1, analysis=True, pauseBeforeRevoke=True)
        rot.wait_adopted()
        rot.rotate("pause-1")
        st = self.wait_paused(rot, "stage ui")
        new_id = st["pendingKey"]["id"]
        # Held, not slow: three more measurements later it is still paused, ui untouched.
        n = self.measurements(ctl)
        wait_for(lambda: self.measurements(ctl) >= n + 3, 30, "measurements while paused")
        st = rot.status()
        self.assertEqual(st["phase"], "Paused")
        self.assertNotEqual(self.templates_key_id(("sirius-ui",))["sirius-ui"], new_id)
        rot.annotate("keyrotator.io/promote", "go-1")
        st = self.wait_paused(rot, "the revoke", timeout=90)
        self.assertEqual(st.get("lastHandledPromote"), "go-1")
        self.assertEqual(set(self.templates_key_id(EVERYONE).values()), {new_id})
        members, _, _ = self.keystore()
        self.assertIn(member(self.old_key), members, "revoked while paused before the revoke")
        rot.annotate("keyrotator.io/promote", "go-2")
        st = rot.wait_finished(1, 60)
        self.assert_rotated_cleanly(rot, st, new_id)
        self.wait_traffic_on(new_id)
        self.more_requests()
        self.assert_zero_401()
        reasons = [ev["reason"] for ev in rot.events()]
        self.assertEqual(reasons.count("Paused"), 2, reasons)
        self.assertEqual(reasons.count("Promoted"), 2, reasons)

    def test_a_paused_rotation_whose_analysis_fails_rolls_back(self):
        """Paused before stage engine, something starts sending bad keys to the api: the
        analysis keeps measuring while paused and the 401s roll the rotation back."""
        self.controller()
        rot = self.paused_rotation(2, analysis=True)
        rot.wait_adopted()
        rot.rotate("pause-2")
        self.wait_paused(rot, "stage engine")
        self.fx.c.create_deployment("sirius-intruder", "sim/client", [
            {"name": "API_URL", "value": self.fx.api_url},
            {"name": "NAME", "value": "sirius-intruder"}, {"name": "RATE", "value": "5"},
            {"name": "API_KEY", "value": "sk_not_a_key"}])
        st = rot.wait_finished(1, 90)
        self.assert_rolled_back(rot, st, "401 rate")


if __name__ == "__main__":
    unittest.main()
