"""test_e2e_grace.py - an end-to-end scenario on graceful termination: a consumer whose old pod
drains for seconds after SIGTERM, within its terminationGracePeriodSeconds, still calling with
the old key. The rotation must not revoke the old key before that pod has ended.

    cd tests/e2e && KR_BINARY=../../build/controller/keyrotator ../py -m unittest -v test_e2e_grace
"""
import unittest

import e2e_lib as e
from e2e_lib import CONSUMERS, member, wait_for
from test_e2e import E2ECase


class TestLongGracePeriod(E2ECase):
    def test_7_old_pod_keeps_its_key_until_its_grace_period_ends(self):
        """A consumer that drains for 20 s after SIGTERM (terminationGracePeriodSeconds 30):
        a real Deployment controller counts its old pod nowhere once it is terminating, so
        the rollout is complete while that pod still calls with the old key. The revoke must
        wait until the pod has ended: no 401, before or during its grace period."""
        # 20 s: longer than any rotation here takes without the grace wait, sanitizer builds
        # included, so a revoke that did not wait for the grace period would come first.
        self.fx.create_consumer("sirius-batch", grace=30, env=[
            {"name": "DRAIN_SECONDS", "value": "20"}])
        self.controller()
        rot = self.rotation(stages=[["sirius-api"], ["sirius-ui"],
                                    ["sirius-engine", "sirius-batch"]])
        rot.wait_adopted()
        self.watcher = e.KeyWatcher(self.fx)
        self.watcher.watch(member(self.old_key))
        self.watcher.start()
        wait_for(lambda: self.watcher.members[member(self.old_key)]["present"], 5, "watcher")
        old_batch = [ev["pod"] for ev in self.live_pods(("sirius-batch",))]
        rot.rotate("scenario-7")
        # While it drains, the old pod is a Pod object being deleted (deletionTimestamp, the
        # grace period of its template), as on a real cluster; it goes once it has ended.
        wait_for(lambda: any(ev["event"] == "terminate" and ev["pod"] in old_batch
                             for ev in self.fx.pod_events()), 90, "the old batch pod to go")
        code, pod = self.fx.api("GET", "/api/v1/namespaces/%s/pods/%s" % (
            self.fx.namespace, old_batch[0]))
        self.assertEqual(code, 200, "the draining pod's object went before the pod ended")
        self.assertEqual(pod["metadata"]["deletionGracePeriodSeconds"], 30)
        st = rot.wait_finished(1, 120)
        new_id = st["currentKey"]["id"]
        self.assert_rotated_cleanly(rot, st, new_id)
        stops = {ev["pod"]: ev for ev in self.fx.pod_events() if ev["event"] == "stop"}
        terms = {ev["pod"]: ev for ev in self.fx.pod_events() if ev["event"] == "terminate"}
        self.assertEqual(len(old_batch), 1)
        [old] = old_batch
        self.assertIn(old, terms, "the old batch pod was never replaced")
        # The revoke waits the longest terminationGracePeriodSeconds after the last stage
        # completed (the controller sees no Pod; a terminating one is counted nowhere), so
        # the old pod has ended by the time the rotation finishes.
        self.assertIn(old, stops, "the rotation finished while the old pod %s still drained "
                      "with the old key" % old)
        gone = self.watcher.members[member(self.old_key)]["gone_at"]
        self.assertIsNotNone(gone, "the watcher never saw the old key leave")
        self.assertGreater(gone, stops[old]["mono"],
                           "revoked while a terminating pod still ran the old key")
        c = next(c for c in self.fx.counters(("sirius-batch",)) if c["pod"] == old)
        self.assertGreater(c["okTerminating"], 0, "the old pod did not drain with its key")
        self.assertEqual((c["keyId"], c["unauthorizedTerminating"]), (self.old_id, 0), c)
        self.assert_zero_401(CONSUMERS + ("sirius-batch",))


if __name__ == "__main__":
    unittest.main()
