"""test_faults.py - fault injection (issue #10): a full manual rotation by `keyrotator run`
(keyrotator.io/rotate) driven through one fault at a time, on the simulated cluster of
tests/sim (local API server, redis-server as Valkey, the workload simulator).

API server faults (its admin API, tests/kubeapi/README.md): 5xx on writes (Secret, pod
template patch, status), a 409 storm on status updates, watches dropped and stalled, a
compaction that sends every watch back to LIST (410), every request slowed down.
Valkey faults: killed and restarted (data kept, data lost), FLUSHALL, activeSet turned into a
string (WRONGTYPE), the password changed, commands slower than --keystore-timeout
(DEBUG SLEEP).

Each rotation must complete or roll back cleanly - never half-done: at the end exactly one key
of this KeyRotation is active in Valkey, the one in the consumers' Secret and on every
workload's pod template, the others revoked, the `<name>-rotation` Secret empty; while the
fault lasted, a condition said what was wrong; no raw key in the controller log, Events or
status.

    KR_BINARY=../../build/controller/keyrotator ../py -m unittest -v test_faults
(from tests/faults; KR_KEEP_TMP=1 keeps the cluster directories.)
"""
import base64
import re
import threading
import time
import unittest

from faultlib import (FOREIGN, KR, SIRIUS, FaultCase, Valkey, key_id, print_timings,
                      wait_for)
from rotlib import MERGE, SECRETS

NS = "/namespaces/sirius"
STATUS_PUT = NS + "/keyrotations/" + KR + "/status"


def tearDownModule():
    print_timings()


class TestApiServerFaults(FaultCase):
    """The local API server misbehaves mid-rotation; the controller reaches it only through
    its kubeconfig, as it would a real one."""

    def admin(self, method, what, body=None):
        code, obj = self.c.api(method, "/_kubeapi/" + what, body)
        self.assertIn(code, (200, 201), obj)
        return obj

    def fault(self, **f):
        return self.admin("POST", "faults", f)

    def faults(self):
        return {f["id"]: f for f in self.admin("GET", "faults")["faults"]}

    def tearDown(self):
        # Never leave a fault behind for the next test.
        self.c.api("DELETE", "/_kubeapi/faults")
        self.c.api("POST", "/_kubeapi/delay", {"ms": 0})
        self.c.api("POST", "/_kubeapi/watches/resume")
        super().tearDown()

    def gens(self):
        return {n: self.deployment(n)["metadata"]["generation"] for n in SIRIUS}

    def assert_one_patch_each(self, gens0, st):
        """Each workload's pod template was changed exactly once by the rotation."""
        self.assertEqual(self.gens(), {n: g + 1 for n, g in gens0.items()},
                         "one pod-template change per workload")

    # ---- 5xx on every kind of write ----
    def test_1_write_5xx(self):
        gens0 = self.gens()
        self.fault(method="PUT|POST|PATCH", path=NS + r"/secrets/sirius-api-key(\?|$)",
                   status=503, count=-1)
        self.begin("write-5xx")
        # DISTRIBUTE cannot write the consumers' Secret: said, and nothing moves on.
        c = self.seen_condition("Degraded", "True", "ActionFailed", ("sirius-api-key",),
                                what="Degraded naming the Secret write")
        self.assertIn("DISTRIBUTE", c["message"])
        type(self).secret_write_message = c["message"]

        def held_before_distribute():
            self.assertEqual(self.secret_value("sirius-api-key"), self.old)
            self.assertEqual(self.template_key_id("sirius-api"), self.templates0["sirius-api"])
            self.assertEqual(self.status(KR)["phase"], "Rotating")
        self.holds(1.0, held_before_distribute)
        # Secret writes work again; the pod-template patch of stage ui fails instead.
        self.admin("DELETE", "faults")
        self.fault(method="PATCH|PUT", path=NS + r"/deployments/sirius-ui(\?|$)",
                   status=500, count=-1)
        c = self.seen_condition("Degraded", "True", "ActionFailed", ("sirius-ui",),
                                what="Degraded naming the workload patch")
        self.assertIn("RESTART_STAGE", c["message"])

        def held_at_ui():
            st = self.status(KR)
            self.assertEqual((st["phase"], st["rotation"]["stageIndex"]), ("Rotating", 1))
            self.assertEqual(self.template_key_id("sirius-ui"), self.templates0["sirius-ui"])
            self.assertEqual(self.template_key_id("sirius-api"),
                             key_id(self.secret_value("sirius-api-key")))
        self.holds(1.0, held_at_ui)
        # Patches work again; a burst of status writes fails next.
        self.admin("DELETE", "faults")
        burst = self.fault(method="PUT", path=STATUS_PUT, status=503, count=4)
        st = self.finish()
        self.assertEqual(self.faults()[burst["id"]].get("hits"), 4, "the status burst was hit")
        self.assert_clean_end(st)
        self.assert_one_patch_each(gens0, st)
        self.assertEqual(len(self.new_keys_this_rotation()), 1, "one new key")
        failed = [o["msg"] for o in self.ctl.log_lines()[self.n_lines:]
                  if "reconcile failed" in o.get("msg", "")]
        self.assertTrue(any("503" in m or "nable to handle" in m for m in failed), failed[-5:])
        self.assert_no_repeated_events()

    # A failed write names the object, then the server's reason:
    # "DISTRIBUTE failed: write Secret sirius/sirius-api-key: ServiceUnavailable: ...".
    def test_1b_failure_message_names_the_object(self):
        msg = getattr(type(self), "secret_write_message", None)
        self.assertIsNotNone(msg, "test_1_write_5xx recorded no failed Secret write (run the "
                             "class, not this test alone)")
        self.assertIn("Secret sirius/sirius-api-key: ", msg)

    # ---- 409 storm on status updates ----
    def test_2_conflict_storm(self):
        gens0 = self.gens()
        self.begin("conflict-storm")
        self.wait_point(self.at_stage(1), "stage ui")
        storm = self.fault(method="PUT", path=STATUS_PUT, status=409, count=60,
                           reason="Conflict", message='Operation cannot be fulfilled on '
                           'keyrotations.keyrotator.io "%s": the object has been modified; '
                           'please apply your changes to the latest version and try again' % KR)
        wait_for(lambda: self.faults()[storm["id"]]["count"] == 0, 60, "the storm to pass")
        st = self.finish()
        self.assert_clean_end(st)
        self.assert_one_patch_each(gens0, st)
        self.assertEqual(len(self.new_keys_this_rotation()), 1, "one new key, not one per retry")
        self.assert_no_repeated_events()
        self.assertTrue(self.ctl.healthy())

    # ---- watches dropped again and again, then stalled ----
    def test_3_watches_dropped_and_stalled(self):
        gens0 = self.gens()
        self.begin("watch-faults")
        drops = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and \
                (self.status(KR).get("rotation") or {}).get("stageIndex", -1) < 1:
            drops.append(self.admin("POST", "watches/drop")["dropped"])
            time.sleep(0.4)
        self.assertGreater(sum(drops), 0, "no watch was open to drop")
        self.seen_condition("Rotating", "True", what="Rotating=True while watches drop")
        # A stall holds the simulator's watches too (it plays the deployment controller),
        # so nothing rolls meanwhile: the controller must only not go wrong.
        self.admin("POST", "watches/stall")

        def calm():
            st = self.status(KR)
            self.assertEqual(st["phase"], "Rotating")
            self.assertEqual(self.condition(st, "Degraded").get("status"), "False")
        self.holds(3.0, calm)
        self.admin("POST", "watches/resume")
        st = self.finish()
        self.assert_clean_end(st)
        self.assert_one_patch_each(gens0, st)

    # ---- compaction: every watch gets 410 and relists ----
    def test_4_compaction_relist(self):
        gens0 = self.gens()
        self.begin("compaction")
        self.wait_point(self.at_stage(1), "stage ui")
        self.recorder.paused.set()  # its relists would count as the controller's
        self.admin("POST", "watches/stall")
        self.admin("POST", "stats/reset")
        code, obj = self.api("POST", "/api/v1/namespaces/sirius/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "compaction-mark"}})
        self.assertEqual(code, 201, obj)
        self.admin("POST", "compact")
        self.assertGreater(self.admin("POST", "watches/drop")["dropped"], 0)
        self.admin("POST", "watches/resume")

        def relisted():
            res = self.admin("GET", "stats")["byResource"]
            return (res.get("keyrotations.keyrotator.io") or {}).get("list", 0) >= 1 and \
                (res.get("deployments.apps") or {}).get("list", 0) >= 1
        wait_for(relisted, 30, "the controller's relists after 410")
        self.recorder.paused.clear()
        st = self.finish()
        self.assert_clean_end(st)
        self.assert_one_patch_each(gens0, st)

    # ---- every request slowed down ----
    def test_5_slow_responses(self):
        gens0 = self.gens()
        self.admin("POST", "delay", {"ms": 150})
        self.begin("slow")
        self.seen_condition("Rotating", "True", what="Rotating=True while slow")
        st = self.finish(timeout=120)
        self.admin("POST", "delay", {"ms": 0})
        self.assert_clean_end(st)
        self.assert_one_patch_each(gens0, st)
        failed = [o["msg"] for o in self.ctl.log_lines()[self.n_lines:]
                  if "failed" in o.get("msg", "")]
        self.assertEqual(failed, [], "slow is not broken")

    def test_zz_no_raw_key(self):
        self.assertEqual(self.ctl.stop(), 0, "SIGTERM exit code")
        self.assert_no_raw_key_anywhere()


class TestValkeyFaults(FaultCase):
    """The key store misbehaves mid-rotation. redis-server runs with an fsync-always
    append-only file (a kill keeps the data unless the test wipes it), DEBUG allowed, and a
    password the KeyStore sirius-valkey reads from Secret valkey-auth."""
    valkey_password = "first-password"
    NEW_PASSWORD = "second-password"

    @classmethod
    def setUpFaultCluster(cls):
        cls.vk = Valkey(cls.c)
        cls.vk.restart(keep_data=False)
        cls.c.seed(cls.c.bootstrap_key)
        cls.vk.command("HSET", "api_key:%s:meta" % FOREIGN, "label", "another tenant")

    def assert_foreign_meta(self):
        meta = self.vk.command("HGETALL", "api_key:%s:meta" % FOREIGN)
        self.assertEqual(meta, [b"label", b"another tenant"], "another tenant's metadata")

    def unreachable(self, *contains, what=""):
        return self.seen_condition("Degraded", "True", "KeyStoreUnreachable",
                                   (self.valkey_addr,) + contains, what=what)

    def holds_rotating(self, seconds):
        idx = self.status(KR)["rotation"]["stageIndex"]

        def check():
            st = self.status(KR)
            self.assertEqual(st["phase"], "Rotating")
            self.assertLessEqual(st["rotation"]["stageIndex"], idx + 1)
        self.holds(seconds, check)

    def test_1_killed_data_kept(self):
        self.begin("kill-kept")
        self.wait_point(self.at_stage(1), "stage ui")
        self.vk.kill()
        self.unreachable(what="Degraded KeyStoreUnreachable while Valkey is down")
        self.holds_rotating(1.0)
        self.vk.start()
        st = self.finish()
        self.assert_clean_end(st)
        self.assert_foreign_meta()

    def test_2_killed_data_lost(self):
        self.begin("kill-lost")
        self.wait_point(self.at_stage(1), "stage ui")
        self.vk.kill()
        self.unreachable(what="Degraded KeyStoreUnreachable while Valkey is down")
        self.vk.wipe()
        self.vk.start()
        self.restore_foreign()
        self.seen_condition("KeyStoreInSync", "True", "Repaired", ("re-add key",),
                            what="KeyStoreInSync saying what was repaired")
        st = self.finish()
        self.assert_clean_end(st)
        self.assertIn("KeyStoreRepaired", self.reasons(self.events(KR)))

    def restore_foreign(self):
        """The other tenant puts its data back after a loss."""
        self.vk.command("SADD", "api_keys:active", FOREIGN)
        self.vk.command("HSET", "api_key:%s:meta" % FOREIGN, "label", "another tenant")

    def test_3_flushall(self):
        self.begin("flushall")
        self.wait_point(self.at_stage(1), "stage ui")
        self.vk.command("FLUSHALL")
        self.restore_foreign()
        self.seen_condition("KeyStoreInSync", "True", "Repaired", ("re-add key",),
                            what="KeyStoreInSync saying what was repaired")
        st = self.finish()
        self.assert_clean_end(st)

    def test_4_wrongtype_active_set(self):
        self.begin("wrongtype")
        self.wait_point(self.at_stage(1), "stage ui")
        self.vk.command("SET", "api_keys:active", "not-a-set")
        self.unreachable("WRONGTYPE", what="Degraded naming WRONGTYPE")

        def untouched():  # held, and the string it did not create is left alone
            self.assertEqual(self.vk.command("TYPE", "api_keys:active"), b"string")
            self.assertEqual(self.vk.command("GET", "api_keys:active"), b"not-a-set")
            self.assertEqual(self.status(KR)["phase"], "Rotating")
        self.holds(2.0, untouched)
        self.assert_foreign_meta()
        self.vk.command("DEL", "api_keys:active")  # the operator fixes it
        self.restore_foreign()
        st = self.finish()
        self.assert_clean_end(st)

    def test_5_slow_commands(self):
        self.begin("debug-sleep")
        self.wait_point(self.at_stage(1), "stage ui")
        stop, errors = threading.Event(), []

        def sleeper():
            while not stop.is_set():
                try:
                    v = self.c.valkey()
                    v.timeout = 10
                    v.command("DEBUG", "SLEEP", "1.5")
                    v.close()
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))
                    return
        t = threading.Thread(target=sleeper, daemon=True)
        t.start()
        try:
            self.unreachable("timed out", what="Degraded naming the timeout")
            self.holds_rotating(1.0)
        finally:
            stop.set()
            t.join(10)
        self.assertEqual(errors, [], "DEBUG SLEEP failed")
        st = self.finish()
        self.assert_clean_end(st)

    def test_6_password_changed(self):
        self.begin("auth-changed")
        self.wait_point(self.at_stage(1), "stage ui")
        # As an operator rotating the password does: set it, then drop the clients that
        # logged in with the old one (a changed requirepass keeps existing connections).
        self.vk.command("CONFIG", "SET", "requirepass", self.NEW_PASSWORD)
        self.c.password = self.NEW_PASSWORD
        self.vk.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        c = self.unreachable(what="Degraded KeyStoreUnreachable naming the server")
        self.assertRegex(c["message"], re.compile(r"auth|WRONGPASS|NOAUTH", re.I))
        self.holds_rotating(1.0)
        code, obj = self.api("PATCH", SECRETS + "/valkey-auth", {"data": {
            "password": base64.b64encode(self.NEW_PASSWORD.encode()).decode()}}, MERGE)
        self.assertEqual(code, 200, obj)
        st = self.finish()
        self.assert_clean_end(st)

    def test_zz_no_raw_key(self):
        self.assertEqual(self.ctl.stop(), 0, "SIGTERM exit code")
        self.assert_no_raw_key_anywhere([self.valkey_password, self.NEW_PASSWORD])


if __name__ == "__main__":
    unittest.main()
