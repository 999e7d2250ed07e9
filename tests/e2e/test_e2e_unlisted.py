"""test_e2e_unlisted.py - consumers nobody listed (issue 21, design.md §1c), end to end on the
simulated cluster: a Deployment that reads the consumers' Secret but that no stage lists holds
the revoke (spec.unlistedConsumers HoldRevoke, the default) until it is added to a stage, then
the rotation finishes with zero 401s; with Ignore it is only reported; a CronJob is reported,
holds the revoke while one of its Jobs runs (status.active) and not once none does.

    cd tests/e2e && KR_BINARY=../../build/controller/keyrotator ../py -m unittest -v test_e2e_unlisted
"""
import json
import subprocess
import unittest

import cluster
import e2e_lib as e
from e2e_lib import CONSUMERS, condition, member, wait_for
from test_e2e import E2ECase

LEGACY = {"kind": "Deployment", "name": "sirius-legacy"}
NIGHTLY = {"kind": "CronJob", "name": "nightly"}
CRONJOBS = "/apis/batch/v1/namespaces/%s/cronjobs"


class TestUnlistedConsumers(E2ECase):
    def online_plan(self):
        """The plan of `kubectl keyrotation plan` (`keyrotator kubectl plan`) against the
        cluster: the one plan that can show unlisted consumers (`keyrotator plan -f` reads no
        cluster)."""
        p = subprocess.run([e.binary(), "kubectl", "--kubeconfig", self.fx.kubeconfig, "plan",
                            e.KEYROTATION, "-n", self.fx.namespace, "-o", "json"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        return json.loads(p.stdout)["plan"]

    def unlisted_event(self, rot):
        return wait_for(lambda: next((ev for ev in rot.events()
                                      if ev["reason"] == "UnlistedConsumers"), None), 20,
                        "Event UnlistedConsumers")

    def test_an_unlisted_deployment_holds_the_revoke_until_it_is_listed(self):
        self.fx.create_consumer("sirius-legacy")
        self.controller()
        rot = self.rotation()
        st = rot.wait(lambda st: st.get("unlistedConsumers") == [LEGACY], 20,
                      "status.unlistedConsumers to name sirius-legacy")
        ev = self.unlisted_event(rot)
        self.assertEqual(ev["type"], "Warning")
        self.assertIn("Deployment/sirius-legacy", ev["message"])
        self.assertIn(cluster.SECRET, ev["message"])
        plan = self.online_plan()
        hold = [i for i, ln in enumerate(plan) if ln.startswith(
            "hold the revoke while: Deployment/sirius-legacy reads Secret %s/%s and no stage "
            "lists it (unlistedConsumers: HoldRevoke" % (self.fx.namespace, cluster.SECRET))]
        revoke = [i for i, ln in enumerate(plan) if ln.startswith("revoke key ")]
        self.assertTrue(hold and revoke and hold[0] < revoke[0], plan)
        rot.rotate("unlisted-1")
        st = rot.wait(lambda st: condition(st, "Degraded").get("reason") == "UnlistedConsumers",
                      60, "the revoke to be held (Degraded=UnlistedConsumers)")
        self.assertIn("sirius-legacy", condition(st, "Degraded")["message"])
        new_id = st["pendingKey"]["id"]
        # Held, not slow: more traffic later it still holds and the old key is valid.
        self.more_requests(workloads=CONSUMERS + ("sirius-legacy",))
        st = rot.status()
        self.assertEqual(condition(st, "Degraded").get("reason"), "UnlistedConsumers")
        self.assertEqual(len(st.get("history") or []), 0)
        members, _, _ = self.keystore()
        self.assertIn(member(self.old_key), members)
        # Listed in stage engine: it is rolled too, then the revoke goes.
        obj = rot.get()
        obj["spec"]["stages"][2]["workloads"].append(LEGACY)
        code, res = self.fx.api("PATCH", rot.path, {"spec": {"stages": obj["spec"]["stages"]}},
                                e.MERGE)
        self.assertEqual(code, 200, res)
        st = rot.wait_finished(1, 90)
        self.assert_rotated_cleanly(rot, st, new_id)
        self.assertNotIn("unlistedConsumers", st)
        self.assertEqual(self.templates_key_id(("sirius-legacy",))["sirius-legacy"], new_id)
        self.wait_traffic_on(new_id, CONSUMERS + ("sirius-legacy",))
        self.more_requests(workloads=CONSUMERS + ("sirius-legacy",))
        self.assert_zero_401(CONSUMERS + ("sirius-legacy",))

    def test_ignore_reports_it_and_revokes(self):
        self.fx.create_consumer("sirius-legacy")
        self.controller()
        rot = self.rotation(unlistedConsumers="Ignore")
        rot.wait(lambda st: st.get("unlistedConsumers") == [LEGACY], 20,
                 "status.unlistedConsumers to name sirius-legacy")
        self.assertIn("Ignore", self.unlisted_event(rot)["message"])
        rot.rotate("unlisted-2")
        st = rot.wait_finished(1, 90)
        self.assert_rotated_cleanly(rot, st, st["currentKey"]["id"])
        self.assertEqual(st["unlistedConsumers"], [LEGACY])
        # What Ignore means: the consumer nobody listed is locked out.
        wait_for(lambda: self.unauthorized(("sirius-legacy",)) > 0, 20,
                 "401s for the unlisted consumer")
        self.assert_zero_401()

    def create_nightly(self):
        """CronJob nightly, whose Jobs read the Secret through a projected volume."""
        code, res = self.fx.api("POST", CRONJOBS % self.fx.namespace, {
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "report", "image": "sim/client"}],
                "volumes": [{"name": "key", "projected": {"sources": [
                    {"secret": {"name": cluster.SECRET}}]}}]}}}}}})
        self.assertEqual(code, 201, res)

    def set_active(self, jobs):
        """Set nightly's status.active (None: no Job runs) through its status subresource, as
        the CronJob controller does when a Job of it starts or ends: nothing runs CronJobs
        here."""
        code, res = self.fx.api("PATCH", CRONJOBS % self.fx.namespace + "/nightly/status",
                                {"status": {"active": jobs}}, e.MERGE)
        self.assertEqual(code, 200, res)
        self.assertEqual((res.get("status") or {}).get("active"), jobs, res)

    def test_a_cronjob_is_reported_and_does_not_hold(self):
        self.create_nightly()
        self.controller()
        rot = self.rotation()
        rot.wait(lambda st: st.get("unlistedConsumers") == [NIGHTLY], 20, "the CronJob reported")
        rot.rotate("unlisted-3")
        st = rot.wait_finished(1, 90)
        self.assert_rotated_cleanly(rot, st, st["currentKey"]["id"])
        self.assert_zero_401()

    def test_a_cronjob_holds_the_revoke_only_while_a_job_of_it_runs(self):
        """A Job of CronJob nightly runs (status.active) from before the rotation: it may have
        read the old key, so the revoke waits (Degraded=UnlistedConsumers names it, the old key
        stays valid); once status.active is empty the rotation finishes, zero 401s."""
        if self.fx.real:
            self.skipTest("a real cluster's CronJob controller drops a status.active Job that "
                          "does not exist")
        self.create_nightly()
        job = {"apiVersion": "batch/v1", "kind": "Job", "namespace": self.fx.namespace,
               "name": "nightly-29420180"}
        self.set_active([job])  # before the controller starts: its first list has it
        self.controller()
        rot = self.rotation()
        rot.wait(lambda st: st.get("unlistedConsumers") == [NIGHTLY], 20, "the CronJob reported")
        ev = self.unlisted_event(rot)
        self.assertEqual(ev["type"], "Warning")
        self.assertIn("CronJob/nightly", ev["message"])
        self.assertIn("a CronJob only while one of its Jobs runs", ev["message"])
        rot.rotate("unlisted-4")
        st = rot.wait(lambda st: condition(st, "Degraded").get("reason") == "UnlistedConsumers",
                      60, "the revoke to be held (Degraded=UnlistedConsumers)")
        cond = condition(st, "Degraded")
        self.assertEqual(cond["status"], "True")
        self.assertIn("holding the revoke: CronJob/nightly (a Job runs)", cond["message"])
        self.assertIn("the revoke goes on once no Job of it runs", cond["message"])
        new_id = st["pendingKey"]["id"]
        # Held, not slow: every stage is on the new key, and more traffic later it still holds
        # with the old key valid.
        self.assertEqual(set(self.templates_key_id(("sirius-api",) + CONSUMERS).values()),
                         {new_id})
        self.more_requests()
        st = rot.status()
        self.assertEqual(condition(st, "Degraded").get("reason"), "UnlistedConsumers", st)
        self.assertEqual(st.get("unlistedConsumers"), [NIGHTLY])
        self.assertEqual(len(st.get("history") or []), 0)
        members, _, _ = self.keystore()
        self.assertIn(member(self.old_key), members)
        self.assertEqual(e.ping(self.fx.api_url, self.old_key), 200)
        # The Job ends: nothing of nightly can hold the old key any more, the revoke goes on.
        self.set_active(None)
        st = rot.wait_finished(1, 90)
        self.assert_rotated_cleanly(rot, st, new_id)
        self.assertEqual(st["unlistedConsumers"], [NIGHTLY], "still reported")
        self.assertEqual(condition(st, "Degraded").get("status"), "False", st)
        self.assert_zero_401()


if __name__ == "__main__":
    unittest.main()
