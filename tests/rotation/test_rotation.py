"""test_rotation.py - full key rotations by `keyrotator run` against the local API server,
real redis-server and the workload simulator (tests/sim): bootstrap, manual, scheduled and
maxKeyAge (with a controllable clock), emergency, a failed rollout that rolls back, Valkey
flushed mid-rotation, the controller SIGKILLed after every step, and the refusals.
What is checked is what users rely on (DESIGN.md §1-2): the Secret's key, the Valkey layout
(sha256 member in api_keys:active, api_key:{hash}:meta status/revoked_at, the bootstrap
marker), status, Events, the pod-template annotation keyrotator.io/key-id, and restarts.

    KR_BINARY=../../build/controller/keyrotator ../py -m unittest -v test_rotation
(from tests/rotation; KR_KEEP_TMP=1 keeps the cluster directories.)
"""
import base64
import calendar
import json
import os
import time
import unittest

from rotlib import (ACTION_RE, DEPLOY, MERGE, NAMESPACE, SECRETS, SIRIUS, DelayProxy,
                    RotationCase, key_id, member, metric_sum, sirius_spec, wait_for)

KR = "sirius-service-key"


class TestRotations(RotationCase):
    """One KeyRotation over the Sirius workloads, through every trigger, in order; the
    cluster starts without the consumers' Secret, as before a first install."""
    controller_args = ("--keystore-check-interval", "1s")

    @classmethod
    def setUpCluster(cls):
        cls.gens0 = {n: 1 for n in SIRIUS}
        cls.create_kr_cls(KR, sirius_spec())

    def setUp(self):
        # Every test starts from a finished rotation (or the very start, for bootstrap).
        self.t0 = time.monotonic()

    def settled(self):
        """The object after the previous test: Idle, with its key in the Secret."""
        obj = self.wait_status(KR, lambda st: st.get("phase") == "Idle" and
                               st.get("currentKey"), 60, "an idle KeyRotation")
        st = obj["status"]
        key = self.secret_value("sirius-api-key")
        self.assertEqual(key_id(key), st["currentKey"]["id"])
        return st, key

    def rotate(self, trigger_ann, value, timeout=60, prepare=None):
        """prepare(), annotate, wait for the rotation to finish; (old key, new key, status,
        generations before). The rotation may start at prepare() (a clock change)."""
        st, old = self.settled()
        n = len(st.get("history") or [])
        gens = self.generations()
        if prepare:
            prepare()
        self.annotate_dict(KR, {trigger_ann: value})
        obj = self.wait_rotated(KR, n + 1, timeout)
        return old, self.secret_value("sirius-api-key"), obj["status"], gens

    def assert_succeeded(self, st, old, new, trigger, gens):
        """The checks every successful rotation must pass."""
        self.assertNotEqual(key_id(old), key_id(new))
        self.assertEqual(st["phase"], "Idle")
        self.assertEqual(st["currentKey"]["id"], key_id(new))
        self.assertNotIn("previousKey", st)
        last = st["history"][-1]
        self.assertEqual((last["keyId"], last["trigger"], last["outcome"]),
                         (key_id(new), trigger, "Succeeded"))
        for ctype, want in (("Ready", "True"), ("Rotating", "False"), ("Degraded", "False"),
                            ("KeyStoreInSync", "True")):
            self.assertEqual(self.condition(st, ctype).get("status"), want, ctype)
        self.assertEqual([(s["name"], s["state"]) for s in st["stages"]],
                         [("api", "Done"), ("ui", "Done"), ("engine", "Done")])
        for s in st["stages"]:
            for w in s["workloads"]:
                self.assertEqual(w["keyId"], key_id(new), w)
        s = self.store()
        self.assert_active(s, new)
        self.assert_revoked(s, old)
        self.assertEqual(s["marker"], key_id(new), "api_keys:bootstrap")
        self.assert_rotation_secret_clear(KR)
        self.assert_one_restart_each(gens, self.t0, key_id(new))

    def rotation_events(self, since_rv):
        return [e for e in self.events(KR) if int(e["metadata"]["resourceVersion"]) > since_rv]

    def last_rv(self):
        evs = self.events(KR)
        return int(evs[-1]["metadata"]["resourceVersion"]) if evs else 0

    # ---- 1. bootstrap ----
    def test_1_bootstrap(self):
        obj = self.wait_rotated(KR, 1, 60, "the bootstrap rotation")
        st = obj["status"]
        key = self.secret_value("sirius-api-key")
        self.assertIsNotNone(key, "the Secret was written")
        self.assertRegex(key, r"^sk_[0-9A-Za-z]{40,}$")
        kid = key_id(key)
        self.assertEqual(st["currentKey"]["id"], kid)
        self.assertRegex(st["currentKey"]["createdAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(len(st["history"]), 1)
        h = st["history"][0]
        self.assertEqual((h["keyId"], h["trigger"], h["outcome"]), (kid, "Bootstrap", "Succeeded"))
        self.assertEqual(st["phase"], "Idle")
        self.assertEqual(self.condition(st, "Ready")["status"], "True")
        self.assertEqual(self.condition(st, "Ready")["observedGeneration"], 1)
        s = self.store()
        self.assert_active(s, key)
        self.assertEqual(s["active"], {member(key)}, "only the first key is active")
        self.assertEqual(s["meta"][member(key)].get("rotation"), "sirius/" + KR)
        self.assertEqual(s["marker"], kid)
        for n in SIRIUS:
            self.assertEqual(self.template_key_id(n), kid, n)
            self.assertEqual(self.deployment(n)["metadata"]["generation"], self.gens0[n] + 1, n)
        # Stages in order: each stage's new pods are all ready before the next one starts.
        starts = {n: [e for e in self.sim_events(workload=n, event="start",
                                                  keyIdAnnotation=kid)] for n in SIRIUS}
        readies = {n: [e for e in self.sim_events(workload=n, event="ready",
                                                   keyIdAnnotation=kid)] for n in SIRIUS}
        for a, b in zip(SIRIUS, SIRIUS[1:]):
            self.assertTrue(starts[b], b)
            self.assertLess(max(e["mono"] for e in readies[a]),
                            min(e["mono"] for e in starts[b]), "%s rolled before %s" % (b, a))
        for n in SIRIUS[1:]:  # the consumers run on the key
            for e in starts[n]:
                self.assertEqual(e["keyIds"], {"API_KEY": kid})
        evs = self.events(KR)
        self.assert_camel_case(evs)
        reasons = [r for r in self.reasons(evs) if r != "KeyStoreRepaired"]
        self.assertEqual(reasons, [
            "RotationStarted", "KeyGenerated", "KeyActivated", "SecretUpdated",
            "StageRollingOut", "StageCompleted", "StageRollingOut", "StageCompleted",
            "StageRollingOut", "StageCompleted", "RotationFinished"])

    # The workers wait for every cache's first list (as client-go's WaitForCacheSync), so a
    # workload that exists is never reported missing at start-up.
    def test_1b_no_false_workload_missing_at_start(self):
        false_alarms = [e["message"] for e in self.events(KR) if e["reason"] == "WorkloadMissing"]
        self.assertEqual(false_alarms, [], "WorkloadMissing for workloads that exist")

    # The key age is true at every scrape, not only after a reconcile: an idle KeyRotation is
    # reconciled at the resync period (1 h), yet two scrapes apart with no reconcile between
    # show its key older, and the age agrees with status.currentKey.createdAt.
    def test_1c_key_age_grows_while_idle(self):
        st, _ = self.settled()
        series = ("keyrotator_key_age_seconds",
                  frozenset({("namespace", NAMESPACE), ("name", KR)}))

        def sample():
            m = self.ctl.metrics()
            return m.get(series), metric_sum(m, "keyrotator_reconcile_total")
        first = [sample()]

        def grown_without_reconcile():
            (age0, recs0), (age, recs) = first[0], sample()
            if age0 is None or recs != recs0:  # a reconcile set it: start again from here
                first[0] = (age, recs)
                return None
            # and none came between that scrape and the one that says so
            return age > age0 and sample()[1] == recs0 and (age0, age)
        age0, age = wait_for(grown_without_reconcile, 30,
                             "keyrotator_key_age_seconds to grow between two scrapes with no "
                             "reconcile between")
        self.assertGreaterEqual(age0, 0)
        born = self.epoch(self.status(KR)["currentKey"]["createdAt"])
        before = time.time()
        now_age = sample()[0]
        after = time.time()
        # whole seconds from whole-second times: at most 2 s under, never over
        self.assertLessEqual(now_age, after - born + 1)
        self.assertGreaterEqual(now_age, before - born - 2)

    # ---- 2. manual ----
    def test_2_manual(self):
        st, old = self.settled()
        gens = self.generations()
        rv = self.last_rv()
        self.annotate_dict(KR, {"keyrotator.io/rotate": "2026-05-01T10:00:00Z"})
        seen_rsecret, samples = [], []

        def finished():
            # Old key revoked => every stage already on the new key: read the store first,
            # then the templates (templates only move old -> new in a good rotation).
            s = self.store()
            tpl = {n: self.template_key_id(n) for n in SIRIUS}
            samples.append((member(old) in s["active"], tpl))
            r = self.rotation_secret(KR)
            if r is not None and "pending" in (r.get("data") or {}):
                seen_rsecret.append(r)
            obj = self.kr(KR)
            cur = (obj.get("status") or {})
            return obj if cur.get("lastHandledRequest") == "2026-05-01T10:00:00Z" and \
                cur.get("phase") == "Idle" else None
        obj = wait_for(finished, 60, "the manual rotation")
        st = obj["status"]
        new = self.secret_value("sirius-api-key")
        self.assert_succeeded(st, old, new, "Manual", gens)
        for active, tpl in samples:
            if not active:
                self.assertEqual(set(tpl.values()), {key_id(new)},
                                 "old key revoked while a stage ran the old key: %s" % tpl)
        # Exactly two keys ever in the store: the bootstrap key (revoked) and this one.
        self.assertEqual(set(self.store()["meta"]), {member(old), member(new)})
        # The keys in flight lived in the owned `<name>-rotation` Secret.
        self.assertTrue(seen_rsecret, "the -rotation Secret was never seen")
        r = seen_rsecret[-1]
        refs = r["metadata"].get("ownerReferences") or []
        self.assertEqual([(o["kind"], o["name"], o["uid"], o.get("controller")) for o in refs],
                         [("KeyRotation", KR, obj["metadata"]["uid"], True)])
        self.assertEqual(key_id(self.rotation_secret_value(r, "pending")), key_id(new))
        self.assertEqual(key_id(self.rotation_secret_value(r, "previous")), key_id(old))
        # The validation period (1s) passes between the last stage and the revoke.
        lines = self.ctl.log_lines()
        done_at = max(o["ts"] for o in lines if o["msg"] == "ADVANCE_STAGE: stage engine done")
        revoked_at = max(o["ts"] for o in lines if o["msg"].startswith("REVOKE_OLD: "))
        self.assertGreaterEqual(self.ts(revoked_at) - self.ts(done_at), 1.0)
        # Events: the revoke comes after the last stage, the finish last.
        reasons = self.reasons(self.rotation_events(rv))
        self.assertEqual(reasons[0], "RotationStarted")
        self.assertLess(len(reasons) - reasons[::-1].index("StageCompleted"),
                        reasons.index("OldKeyRevoked") + 1)
        self.assertEqual(reasons[-1], "RotationFinished")
        # The same value again does nothing.
        n_actions, gens = len(self.ctl.actions()), self.generations()
        self.annotate_dict(KR, {"keyrotator.io/rotate": "2026-05-01T10:00:00Z"})
        self.wait_reconciled(KR)
        again = self.status(KR)
        self.assertEqual(self.ctl.actions()[n_actions:], [])
        self.assertEqual(again["currentKey"], st["currentKey"])
        self.assertEqual(len(again["history"]), len(st["history"]))
        self.assertEqual(self.generations(), gens)

    def rotation_secret_value(self, secret, key):
        return base64.b64decode(secret["data"][key]).decode()

    # ---- 3. schedule and maxKeyAge, with the clock moved by --clock-skew-file ----
    def test_3_schedule(self):
        st, _ = self.settled()
        self.patch_kr(KR, {"spec": {"schedule": "0 3 * * *"}})
        obj = self.wait_status(KR, lambda s: s.get("nextRotationTime") and
                               s.get("observedGeneration") == 2, 20, "nextRotationTime")
        nxt = obj["status"]["nextRotationTime"]
        self.assertRegex(nxt, r"T03:00:00Z$")
        due = self.epoch(nxt)
        self.assertGreater(due, time.time())
        self.assertLessEqual(due - time.time(), 86400)
        # Nothing happens before the time: the object is only reconciled.
        self.wait_reconciled(KR)
        self.assertEqual(len(self.status(KR)["history"]), len(st["history"]))
        # Move the clock past 03:00 and wake the controller.
        old, new, st2, gens = self.rotate(
            "rotation-it/touch", "schedule",
            prepare=lambda: self.set_skew(int(due - time.time()) + 30))
        self.assert_succeeded(st2, old, new, "Schedule", gens)
        self.assertGreaterEqual(self.epoch(st2["lastRotationTime"]), due)
        self.assertRegex(st2["nextRotationTime"], r"T03:00:00Z$")
        self.assertEqual(self.epoch(st2["nextRotationTime"]), due + 86400)

    def test_4_max_age(self):
        self.settled()
        self.patch_kr(KR, {"spec": {"schedule": None, "maxKeyAge": "48h"}})
        obj = self.wait_status(KR, lambda s: s.get("observedGeneration") == 3, 20,
                               "the new generation")
        st = obj["status"]
        born = self.epoch(st["currentKey"]["createdAt"])
        self.assertEqual(self.epoch(st["nextRotationTime"]), born + 48 * 3600)
        with open(self.skew_file) as f:
            skew = int(f.read())
        old, new, st2, gens = self.rotate("rotation-it/touch", "max-age",
                                          prepare=lambda: self.set_skew(skew + 49 * 3600))
        self.assert_succeeded(st2, old, new, "MaxAge", gens)
        born2 = self.epoch(st2["currentKey"]["createdAt"])
        self.assertGreaterEqual(born2, born + 49 * 3600)
        self.assertEqual(self.epoch(st2["nextRotationTime"]), born2 + 48 * 3600)
        self.patch_kr(KR, {"spec": {"maxKeyAge": None}})
        self.wait_status(KR, lambda s: s.get("observedGeneration") == 4 and
                         not s.get("nextRotationTime"), 20, "no nextRotationTime")

    @staticmethod
    def ts(text):
        """A log line's "ts" (RFC 3339 with milliseconds) in seconds."""
        return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + \
            float("0" + text[19:-1])

    @staticmethod
    def epoch(text):
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))

    # ---- 5. emergency ----
    def test_5_emergency(self):
        st, old = self.settled()
        n = len(st["history"])
        gens = self.generations()
        n_lines = len(self.ctl.log_lines())
        rv = self.last_rv()
        self.annotate_dict(KR, {"keyrotator.io/emergency": "key leaked in CI log #4121"})
        samples = []

        def done():
            # Template first, then the store: the old key, once revoked, stays revoked, so
            # "active" now means it was active when the template already had the new id.
            api_kid = self.template_key_id("sirius-api")
            samples.append((member(old) in self.store()["active"], api_kid))
            cur = self.status(KR)
            return cur if cur.get("phase") == "Idle" and len(cur.get("history") or []) > n \
                else None
        st2 = wait_for(done, 60, "the emergency rotation")
        new = self.secret_value("sirius-api-key")
        self.assert_succeeded(st2, old, new, "Emergency", gens)
        for active, api_kid in samples:
            if api_kid == key_id(new):
                self.assertFalse(active, "stage api rolled while the old key was still valid")
        actions = [a for a, _ in self.ctl.actions(n_lines)]
        actions = [a for i, a in enumerate(actions) if i == 0 or actions[i - 1] != a]
        # Steps 1-4, revoke at once, every stage, no validation period (DESIGN.md §2).
        self.assertEqual(actions, ["BEGIN", "GENERATE", "ACTIVATE", "DISTRIBUTE", "REVOKE_OLD"] +
                         ["RESTART_STAGE", "ADVANCE_STAGE"] * 3 + ["FINISH"])
        evs = self.rotation_events(rv)
        reasons = self.reasons(evs)
        self.assertLess(reasons.index("OldKeyRevoked"), reasons.index("StageRollingOut"))
        started = evs[reasons.index("RotationStarted")]
        self.assertEqual(started["type"], "Warning")
        self.assertIn("key leaked in CI log #4121", started["message"])

    # ---- 6. Valkey loses its data mid-rotation ----
    def test_6_valkey_flushed_mid_rotation(self):
        st, old = self.settled()
        n = len(st["history"])
        gens = self.generations()
        repairs0 = metric_sum(self.ctl.metrics(), "keyrotator_keystore_repairs_total")
        n_lines = len(self.ctl.log_lines())
        self.annotate_dict(KR, {"keyrotator.io/rotate": "flush"})
        obj = self.wait_status(KR, lambda s: (s.get("rotation") or {}).get("stageIndex") == 1,
                               30, "stage ui rolling out")
        # The status of a rotation in flight, as `kubectl get kr` and the plugin show it.
        mid = obj["status"]
        new_id = mid["pendingKey"]["id"]
        self.assertEqual(mid["phase"], "Rotating")
        self.assertEqual(mid["previousKey"]["id"], key_id(old))
        self.assertEqual(mid["currentKey"]["id"], key_id(old))
        r = mid["rotation"]
        self.assertEqual((r["trigger"], r["step"], r["stage"], r["stageIndex"]),
                         ("Manual", "RollOut", "ui", 1))
        self.assertRegex(r["startedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual((self.condition(mid, "Ready")["status"],
                          self.condition(mid, "Rotating")["status"]), ("False", "True"))
        self.assertEqual([s["state"] for s in mid["stages"]][0::2], ["Done", "Pending"])
        self.assertIn(mid["stages"][1]["state"], ("RollingOut", "Analyzing", "Done"))
        v = self.c.valkey()
        v.command("FLUSHALL")
        v.close()
        seen = []

        def repaired_or_done():
            s = self.store()
            both = len(s["active"]) == 2 and s["marker"] is not None
            if both:
                seen.append(s)
            cur = self.status(KR)
            return cur if cur.get("phase") == "Idle" and len(cur["history"]) > n else None
        st2 = wait_for(repaired_or_done, 60, "the rotation to finish after the flush")
        new = self.secret_value("sirius-api-key")
        self.assertEqual(key_id(new), new_id)
        self.assertTrue(seen, "the store was never seen repaired with both keys active")
        self.assertEqual(seen[0]["active"], {member(old), member(new)})
        self.assertEqual(seen[0]["marker"], key_id(old), "marker = the current key")
        self.assert_succeeded(st2, old, new, "Manual", gens)
        self.assertGreater(metric_sum(self.ctl.metrics(), "keyrotator_keystore_repairs_total"),
                           repairs0)
        repaired = [o["msg"] for o in self.ctl.log_lines()[n_lines:]
                    if o.get("msg", "").startswith("key store repaired")]
        self.assertTrue(repaired, "no 'key store repaired' log line")
        self.assertIn("KeyStoreRepaired", self.reasons(self.events(KR)))

    # ---- 6b. the runbook's incidents while idle: repaired with nobody touching anything ----
    def test_6b_idle_drift_repaired(self):
        st, key = self.settled()
        n = len(st["history"])
        m, kid = member(key), key_id(key)
        # The idle check (--keystore-check-interval 1s) looks at membership and the marker;
        # metadata alone (the key still valid) waits for the next full reconcile: touched.
        for what, touch, break_it in (
                ("Valkey data loss", False, lambda v: v.command("FLUSHALL")),
                ("key lookups fail, marker present", False,
                 lambda v: v.command("SREM", "api_keys:active", m)),
                ("key present, marker absent", False,
                 lambda v: v.command("DEL", "api_keys:bootstrap")),
                ("marker names another key", False,
                 lambda v: v.command("SET", "api_keys:bootstrap", "0123456789ab")),
                ("metadata lost", True, lambda v: v.command("DEL", "api_key:%s:meta" % m))):
            repairs = metric_sum(self.ctl.metrics(), "keyrotator_keystore_repairs_total")
            v = self.c.valkey()
            break_it(v)
            v.close()
            if touch:
                self.touch(KR)

            def repaired():
                s = self.store()
                return s if m in s["active"] and s["marker"] == kid and \
                    s["meta"].get(m, {}).get("status") == "active" else None
            s = wait_for(repaired, 15, "the key store repaired after: " + what)
            self.assertEqual(s["meta"][m].get("rotation"), "sirius/" + KR, what)
            # The counter moves just after the repair's writes reach Valkey: poll it too.
            wait_for(lambda: metric_sum(self.ctl.metrics(), "keyrotator_keystore_repairs_total")
                     > repairs, 10, "keyrotator_keystore_repairs_total counts: " + what)
        # No rotation: the same key, in the Secret and in status.
        st2 = self.status(KR)
        self.assertEqual(len(st2["history"]), n)
        self.assertEqual(st2["currentKey"]["id"], kid)
        self.assertEqual(self.secret_value("sirius-api-key"), key)
        self.assertIn("KeyStoreRepaired", self.reasons(self.events(KR)))
        self.wait_status(KR, lambda s: self.condition(s, "KeyStoreInSync").get("status") ==
                         "True", 15, "KeyStoreInSync=True")

    # ---- 7. a consumer that cannot roll: rollback ----
    def test_7_rollback(self):
        st, old = self.settled()
        n = len(st["history"])
        code, _ = self.api("PATCH", DEPLOY + "/sirius-ui", {
            "metadata": {"annotations": {"keyrotator-sim/fail-rollout": "true"}},
            "spec": {"progressDeadlineSeconds": 3}}, MERGE)
        self.assertEqual(code, 200)
        gens = self.generations()
        rv = self.last_rv()
        self.annotate_dict(KR, {"keyrotator.io/rotate": "doomed"})
        obj = self.wait_status(KR, lambda s: s.get("phase") == "Failed", 60, "phase Failed")
        st2 = obj["status"]
        new_id = st2["history"][-1]["keyId"]
        self.assertNotEqual(new_id, key_id(old))
        # The old key is back in the Secret and still valid; the new one is revoked.
        self.assertEqual(self.secret_value("sirius-api-key"), old)
        s = self.store()
        self.assert_active(s, old)
        new_members = [m for m in s["meta"] if m.startswith(new_id)]
        self.assertEqual(len(new_members), 1, "the new key's metadata")
        self.assertNotIn(new_members[0], s["active"])
        self.assertEqual(s["meta"][new_members[0]]["status"], "revoked")
        self.assertEqual(s["marker"], key_id(old))
        self.assert_rotation_secret_clear(KR)
        # Stage api rolled to the new key and back; ui back on the old template.
        for w in ("sirius-api", "sirius-ui"):
            self.assertEqual(self.template_key_id(w), key_id(old), w)
        self.assertEqual(self.generations()["sirius-api"], gens["sirius-api"] + 2)
        self.assertEqual(self.generations()["sirius-engine"], gens["sirius-engine"])
        self.assertEqual(self.template_key_id("sirius-engine"), key_id(old))
        api_starts = [e["keyIdAnnotation"] for e in self.sim_events(
            workload="sirius-api", event="start") if e["mono"] > self.t0]
        self.assertIn(new_id, api_starts)
        self.assertEqual(api_starts[-1], key_id(old))
        # Status, conditions, history, a Warning event.
        h = st2["history"][-1]
        self.assertEqual((h["trigger"], h["outcome"]), ("Manual", "RolledBack"))
        self.assertEqual(len(st2["history"]), n + 1)
        self.assertEqual(st2["currentKey"]["id"], key_id(old))
        deg = self.condition(st2, "Degraded")
        self.assertEqual(deg["status"], "True")
        self.assertIn("ui", deg["message"])
        evs = self.rotation_events(rv)
        self.assert_camel_case(evs)
        reasons = self.reasons(evs)
        self.assertEqual([e["type"] for e in evs if e["reason"] == "RollingBack"], ["Warning"])
        self.assertEqual(reasons[-1], "RotationRolledBack")
        self.assertEqual(evs[-1]["type"], "Warning")
        # The stages already rolled go back in reverse order, then the new key is revoked.
        back = [e["message"].split()[2] for e in evs if e["reason"] == "StageRollingBack"]
        self.assertEqual(back, ["ui", "api"])
        self.assertGreater(reasons.index("NewKeyRevoked"),
                           len(reasons) - 1 - reasons[::-1].index("StageRollingBack"))
        # No retry until a new trigger.
        n_actions, gens = len(self.ctl.actions()), self.generations()
        self.wait_reconciled(KR)
        self.wait_reconciled(KR)
        self.assertEqual([a for a, _ in self.ctl.actions()[n_actions:]], [])
        self.assertEqual(self.status(KR)["phase"], "Failed")
        self.assertEqual(self.generations(), gens)
        # A new trigger, with the consumer fixed, rotates.
        code, _ = self.api("PATCH", DEPLOY + "/sirius-ui", {"metadata": {"annotations": {
            "keyrotator-sim/fail-rollout": None}}}, MERGE)
        self.assertEqual(code, 200)
        self.t0 = time.monotonic()
        gens = self.generations()
        self.annotate_dict(KR, {"keyrotator.io/rotate": "retry"})
        st3 = self.wait_rotated(KR, n + 2, 60, "the retried rotation")["status"]
        self.assertEqual(st3["phase"], "Idle")
        new = self.secret_value("sirius-api-key")
        self.assert_succeeded(st3, old, new, "Manual", gens)

    # ---- 8. one restart per stage and direction ----
    # After a pod-template patch the controller waits for the workload watch (its cache has
    # not seen the patch yet), and a wake-up by its own status write changes nothing: each
    # stage restart is announced once.
    def test_8_one_restart_event_per_stage(self):
        rolling = {}
        for e in self.events(KR):
            if e["reason"] in ("StageRollingOut", "StageRollingBack"):
                rolling[e["message"]] = rolling.get(e["message"], 0) + 1
        self.assertGreaterEqual(len(rolling), 3 * 6)
        # Each message names the stage and the key id (going back is another message).
        repeated = {m: n for m, n in rolling.items() if n > 1}
        self.assertEqual(repeated, {}, "the same stage restart announced more than once")

    # ---- 9. history says when each key was revoked ----
    # DESIGN.md §1: history is [{keyId, activatedAt, revokedAt, outcome, reason}]; revoking a
    # key stamps revokedAt on its entry.
    def test_9_history_has_revoked_at(self):
        hist = self.status(KR)["history"]
        self.assertGreaterEqual(len(hist), 2)
        for h in hist[:-1]:
            self.assertIn("revokedAt", h, "history entry of key %s" % h["keyId"])
            self.assertGreaterEqual(self.epoch(h["revokedAt"]), self.epoch(h["activatedAt"]))

    # ---- last: what the controller wrote holds no raw key; SIGTERM exits 0 ----
    def test_zz_no_raw_key_and_clean_exit(self):
        self.assertEqual(self.ctl.stop(), 0, "SIGTERM exit code")
        self.assertGreaterEqual(len(self.raw_keys), 4)
        self.assert_no_raw_key([KR])
        self.assert_camel_case(self.events(KR))


class TestFirstInstallAdopts(RotationCase):
    """A first install over an existing Secret: the controller adopts its key and sets the key
    store up (the key, its metadata, the marker). That is not drift: a Normal KeyAdopted, no
    KeyStoreRepaired, nothing counted in keyrotator_keystore_repairs_total, so
    KeyRotatorKeyStoreDrift stays silent on a normal install."""
    seed_key = True

    @classmethod
    def setUpCluster(cls):
        cls.create_kr_cls(KR, sirius_spec())

    def test_adoption_is_not_drift(self):
        key = self.c.bootstrap_key
        self.wait_status(KR, lambda st: st.get("phase") == "Idle" and
                         (st.get("currentKey") or {}).get("id") == key_id(key), 30,
                         "the seeded key adopted")
        s = self.store()
        self.assertEqual(s["active"], {member(key)})
        self.assertEqual(s["marker"], key_id(key))
        # the Event recorder writes off the worker: poll for it
        adopted = wait_for(lambda: [e for e in self.events(KR) if e["reason"] == "KeyAdopted"],
                           15, "the KeyAdopted Event")
        self.assertEqual(adopted[0]["type"], "Normal")
        self.assertNotIn("KeyStoreRepaired", self.reasons(self.events(KR)))
        self.assertEqual(metric_sum(self.ctl.metrics(), "keyrotator_keystore_repairs_total"), 0)
        # The adopted key's creation is unknown: its age counts from the KeyRotation's creation,
        # as maxKeyAge does, so KeyRotatorKeyTooOld can fire for a key never rotated.
        obj = self.kr(KR)
        self.assertNotIn("createdAt", obj["status"]["currentKey"])
        age = self.ctl.metrics().get(("keyrotator_key_age_seconds",
                                      frozenset({("namespace", NAMESPACE), ("name", KR)})))
        self.assertIsNotNone(age, "no keyrotator_key_age_seconds for the adopted key")
        since = time.time() - calendar.timegm(
            time.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertLessEqual(age, since + 1)
        self.assertGreaterEqual(age, 0)
        self.assert_no_raw_key([KR])


class TestKillAfterEveryStep(RotationCase):
    """A manual rotation with the controller SIGKILLed the instant it logs anything new
    about the object (an action announced, a workload patched; not an Event, which its own
    thread logs while the worker goes on), then
    started again, until the rotation is done. The cluster starts with a seeded key."""
    seed_key = True

    @classmethod
    def setUpCluster(cls):
        cls.create_kr_cls(KR, sirius_spec())

    # Through the proxy every request takes >= 80 ms to reach the API server, so a kill at
    # once lands before the action's write, and a kill 120 ms later lands after the write
    # and before the status that records it (roughly: it is a race by design; margins of
    # 40 ms either way hold on a loaded 2-core machine, where 15 ms did not).
    DELAY_S = 0.08
    KILL_NOW, KILL_BETWEEN = 0, 0.12

    def kill_on(self, obj):
        """Kill points, each once: an action's log line (at once, and the second time it is
        announced - the step re-done after the restart - a little later), and any other
        new line about the object (at once) but an Event's."""
        msg = obj.get("msg", "")
        if obj.get("name") != KR or obj.get("level") not in ("info", "warn"):
            return None
        # An Event's line comes from the Event recorder's own thread, while the worker goes
        # on: a kill there lands somewhere in the next step, which then never gets a kill of
        # its own (seen: GENERATE done between "event RotationStarted" and the SIGKILL).
        if msg.startswith("event "):
            return None
        n = self.points.get(msg, 0)
        self.points[msg] = n + 1
        if ACTION_RE.match(msg) and n < 2:
            return self.KILL_NOW if n == 0 else self.KILL_BETWEEN
        return self.KILL_NOW if n == 0 else None

    def test_kill_after_every_step(self):
        old = self.c.bootstrap_key
        self.wait_status(KR, lambda st: st.get("phase") == "Idle" and
                         (st.get("currentKey") or {}).get("id") == key_id(old), 30,
                         "the seeded key adopted")
        self.assertEqual(self.store()["active"], {member(old)})
        self.ctl.stop()
        # Through a proxy that delays each request: the kill lands at the step logged.
        proxy = DelayProxy(int(self.c.kubeapi_url.rsplit(":", 1)[1]), self.DELAY_S)
        self.addCleanup(proxy.close)
        self.ctl.kubeconfig = proxy.kubeconfig(self.c.kubeconfig,
                                               os.path.join(self.root, "kubeconfig-slow"))
        gens, t0 = self.generations(), time.monotonic()
        self.points, kills = {}, []
        self.annotate_dict(KR, {"keyrotator.io/rotate": "kill-test"})

        def done():
            st = self.status(KR)
            return st.get("phase") == "Idle" and st.get("lastHandledRequest") == "kill-test"
        deadline = time.monotonic() + 180
        while not done():
            self.assertLess(time.monotonic(), deadline, "kills so far: %s" % kills)
            self.ctl.start(kill_on=self.kill_on, wait_ready=False)
            wait_for(lambda: not self.ctl.alive() or done(), 60, "a kill or the end")
            if not self.ctl.alive():
                code = self.ctl.wait_exit()
                if self.ctl.killed_at is None:  # it ended by itself: say how, not a TypeError
                    self.fail("the controller exited (code %s) without being killed; its last "
                              "lines: %s" % (code, [o.get("msg") for o in
                                                    self.ctl.log_lines(unparsed=True)[-8:]]))
                kills.append((self.ctl.killed_at["msg"], self.points[self.ctl.killed_at["msg"]]))
        # One more restart, left running, without kills, through the direct kubeconfig.
        self.ctl.kill()
        self.ctl.kubeconfig = self.c.kubeconfig
        self.ctl.start()
        # Killed at every step: as it began (its log line), and while it was being
        # recorded (after its write).
        steps = {"BEGIN", "GENERATE", "ACTIVATE", "DISTRIBUTE", "RESTART_STAGE",
                 "ADVANCE_STAGE", "START_REVOKE", "REVOKE_OLD", "FINISH"}
        killed = [{ACTION_RE.match(m).group(1) for m, n in kills
                   if ACTION_RE.match(m) and n == nth} for nth in (1, 2)]
        self.assertLessEqual(steps, killed[0], "never killed at: %s" % kills)
        # The second, later kill (between a step's write and the status that records it)
        # happens only at steps the first kill undid, which depends on timing: a request the
        # controller has sent still reaches the API server through the proxy after the kill.
        # At least one step is killed that way in every run (1 to 4 seen on a loaded 2-core
        # machine since the Events left the reconcile's path).
        self.assertGreaterEqual(len(killed[1]), 1, "never killed after a write: %s" % kills)
        # The end state, once the restarted controller has had a look.
        self.wait_reconciled(KR)
        st = self.status(KR)
        new = self.secret_value("sirius-api-key")
        self.assertNotEqual(new, old)
        self.assertEqual(st["currentKey"]["id"], key_id(new))
        self.assertEqual([(h["keyId"], h["trigger"], h["outcome"]) for h in st["history"]],
                         [(key_id(new), "Manual", "Succeeded")])
        self.assertEqual(self.condition(st, "Ready")["status"], "True")
        s = self.store()
        self.assertEqual(s["active"], {member(new)}, "exactly one active key: the new one")
        self.assertEqual(set(s["meta"]), {member(old), member(new)}, "a second new key")
        self.assert_revoked(s, old)
        self.assert_active(s, new)
        self.assertEqual(s["marker"], key_id(new))
        self.assert_rotation_secret_clear(KR)
        self.assert_one_restart_each(gens, t0, key_id(new))
        # Nobody was locked out: the consumers never saw a 401.
        unauthorized = 0
        for e in self.sim_events(event="start"):
            if e["workload"] in ("sirius-ui", "sirius-engine"):
                unauthorized += self.counters(e["pod"]).get("unauthorized", 0)
        self.assertEqual(unauthorized, 0)
        self.assertEqual(self.ctl.stop(), 0)
        self.assert_no_raw_key([KR])

    def counters(self, pod):
        try:
            with open(os.path.join(self.c.state_dir, "pods", pod, "counters.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}


class TestRefusals(RotationCase):
    """What the controller refuses to do, each with a condition a person can act on. The
    key store requires a password; the cluster has a seeded key in sirius-api-key."""
    seed_key = True
    valkey_password = "right-password"

    def spec(self, secret, **extra):
        return sirius_spec(secret=secret, **extra)  # KeyStore sirius-valkey: password valkey-auth

    def wait_condition(self, name, ctype, status, reason, timeout=30):
        obj = self.wait_status(name, lambda st: any(
            c["type"] == ctype and c["status"] == status and c["reason"] == reason
            for c in st.get("conditions") or []), timeout, "%s=%s %s" % (ctype, status, reason))
        return obj["status"], self.condition(obj["status"], ctype)

    def warning(self, name, reason):
        evs = wait_for(lambda: [e for e in self.events(name) if e["reason"] == reason], 20,
                       "a %s event" % reason)
        self.assertEqual(evs[0]["type"], "Warning")
        return evs[0]

    def test_conflicting_secret(self):
        # Two KeyRotations naming one Secret: the later one is refused and does nothing.
        # (The later one sorts first by name: creation time decides, not the name.)
        first = self.create_kr("owner-b", self.spec("shared-key", stages=[{
            "name": "engine", "workloads": [{"kind": "Deployment", "name": "sirius-engine"}]}]))
        self.wait_rotated("owner-b", 1, 60, "owner-b's bootstrap")
        n_actions = len(self.ctl.actions())
        store = self.store()
        created = TestRotations.epoch(first["metadata"]["creationTimestamp"])
        wait_for(lambda: time.time() >= created + 1.05, 5, "a later creationTimestamp")
        self.create_kr("owner-a", self.spec("shared-key", stages=[{
            "name": "api", "workloads": [{"kind": "Deployment", "name": "sirius-api"}]}]))
        st, cond = self.wait_condition("owner-a", "Ready", "False", "SecretConflict")
        self.assertIn("owner-b", cond["message"])
        self.assertIn("shared-key", cond["message"])
        ev = self.warning("owner-a", "SecretConflict")
        self.assertIn("owner-b", ev["message"])
        self.wait_reconciled("owner-a")
        self.assertNotIn("currentKey", st)
        self.assertIsNone(self.rotation_secret("owner-a"))
        self.assertEqual([a for a, _ in self.ctl.actions(0)[n_actions:]
                          if a not in ("REFUSE",)], [])
        self.assertEqual(self.store(), store)
        self.assertEqual(self.template_key_id("sirius-api"), None)
        # The first one is unaffected.
        self.assertEqual(self.condition(self.status("owner-b"), "Ready")["status"], "True")
        self.delete_kr("owner-a")
        self.delete_kr("owner-b")

    def test_missing_workload(self):
        self.create_kr("missing-wl", self.spec("missing-key", stages=[
            {"name": "api", "workloads": [{"kind": "Deployment", "name": "sirius-api"}]},
            {"name": "gone", "workloads": [{"kind": "Deployment", "name": "no-such-app"}]}]))
        st, cond = self.wait_condition("missing-wl", "Ready", "False", "WorkloadMissing")
        self.assertIn("no-such-app", cond["message"])
        self.warning("missing-wl", "WorkloadMissing")
        self.assertIsNone(self.rotation_secret("missing-wl"))
        self.assertIsNone(self.get(SECRETS + "/missing-key", missing_ok=True))
        self.assertTrue(self.ctl.healthy())
        self.delete_kr("missing-wl")

    def test_key_store_refuses_auth(self):
        code, obj = self.api("POST", SECRETS, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrong-auth"},
            "stringData": {"password": "not-the-password"}})
        self.assertEqual(code, 201, obj)
        self.c.create_key_store("wrong-auth-valkey", password_secret="wrong-auth")
        self.create_kr("bad-auth", self.spec("badauth-key", key_store="wrong-auth-valkey"))
        st, cond = self.wait_condition("bad-auth", "Degraded", "True", "KeyStoreUnreachable")
        self.assertIn(self.valkey_addr, cond["message"], "the condition names the server")
        self.assertNotIn("not-the-password", cond["message"])
        self.assertEqual(self.condition(st, "KeyStoreInSync").get("status"), "Unknown")
        # Retried with backoff, not crashed; nothing written.
        self.wait_reconciled("bad-auth")
        self.assertTrue(self.ctl.alive() and self.ctl.healthy())
        self.assertIsNone(self.rotation_secret("bad-auth"))
        self.assertIsNone(self.get(SECRETS + "/badauth-key", missing_ok=True))
        with open(self.ctl.log_path) as f:
            self.assertNotIn("not-the-password", f.read())
        self.delete_kr("bad-auth")

    def test_dry_run(self):
        self.c.opt_in("sirius-api-key", "dry-run")
        key = self.secret_value("sirius-api-key")
        secret = self.get(SECRETS + "/sirius-api-key")
        store = self.store()
        gens = self.generations()
        self.create_kr("dry-run", self.spec("sirius-api-key", dryRun=True),
                       annotations={"keyrotator.io/rotate": "please"})
        obj = self.wait_status("dry-run", lambda st: st.get("plan"), 30, "status.plan")
        plan = obj["status"]["plan"]
        text = "\n".join(plan)
        # (The plan says "revoke key <current id>": the dryRun object never adopts the
        # Secret's key into status.currentKey, so the plan cannot name it - see the report.)
        for want in ("sirius-api-key", "sirius-api", "sirius-ui", "sirius-engine",
                     "revoke key"):
            self.assertIn(want, text)
        self.assertNotIn(key, text)
        self.wait_reconciled("dry-run")
        self.assertIsNone(self.rotation_secret("dry-run"))
        after = self.get(SECRETS + "/sirius-api-key")
        self.assertEqual(after["data"], secret["data"])
        self.assertEqual(after["metadata"]["resourceVersion"],
                         secret["metadata"]["resourceVersion"])
        self.assertEqual(self.store(), store)
        self.assertEqual(self.generations(), gens)
        self.assertNotIn("history", obj["status"])
        self.delete_kr("dry-run")

    def test_zz_no_raw_key(self):
        self.raw_keys.add(self.valkey_password)
        self.raw_keys.add("not-the-password")
        self.assertEqual(self.ctl.stop(), 0)
        self.assert_no_raw_key([])


if __name__ == "__main__":
    unittest.main()
