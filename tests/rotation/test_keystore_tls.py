"""test_keystore_tls.py - `keyrotator run` and `keyrotator keys` against a key store reached
over TLS only (issue 22): redis-server with `--port 0 --tls-port P` and a client certificate
required (mutual TLS), certificates made by tests/tools/make_tls_certs.sh. Bootstrap and a
manual rotation through a KeyStore with tls.caSecretRef and tls.clientCertSecretRef; a wrong
CA, a wrong server name and a missing client certificate each refused with a condition that
names the server and the TLS error; the CLI's --tls-* flags. No plaintext port exists.

    KR_BINARY=../../build/controller/keyrotator ../py -m unittest -v test_keystore_tls
"""
import os
import socket
import subprocess
import unittest
import urllib.request

from rotlib import (SECRETS, SIRIUS, RotationCase, key_id, metric_sum, parse_metrics,
                    sirius_spec, wait_for)
import cluster
from krtest.controller import binary

KR = "sirius-service-key"
KS_PATH = "%s/namespaces/%s/keystores" % (cluster.KR_API, cluster.NAMESPACE)


class TestTLS(RotationCase):
    cluster_args = {"valkey_tls": "mtls"}
    controller_args = ("--keystore-check-interval", "1s")

    @classmethod
    def setUpCluster(cls):
        cls.create_kr_cls(KR, sirius_spec())

    def api_401s(self):
        with urllib.request.urlopen(self.c.api_url + "/metrics", timeout=5) as r:
            return metric_sum(parse_metrics(r.read().decode()), "http_requests_total",
                              code="401")

    def test_0_no_plaintext_port(self):
        # The server listens on TLS only: a plaintext PING gets no PONG.
        s = socket.create_connection(("127.0.0.1", self.c.valkey_port), timeout=3)
        try:
            s.sendall(b"PING\r\n")
            try:
                got = s.recv(100)
            except OSError:
                got = b""
            self.assertNotIn(b"PONG", got)
        finally:
            s.close()
        # ... and over TLS, the server says its plaintext port is 0 (none).
        v = self.c.valkey()
        try:
            self.assertEqual(v.command("CONFIG", "GET", "port"), [b"port", b"0"])
            self.assertEqual(v.command("CONFIG", "GET", "tls-port")[1],
                             str(self.c.valkey_port).encode())
        finally:
            v.close()

    def test_1_bootstrap_over_tls(self):
        obj = self.wait_rotated(KR, 1, 60, "the bootstrap over TLS")
        st = obj["status"]
        key = self.secret_value("sirius-api-key")
        self.assertEqual(st["currentKey"]["id"], key_id(key))
        s = self.store()
        self.assert_active(s, key)
        self.assertEqual(s["marker"], key_id(key))
        # The KeyStore's own status: the probe reads its TLS Secrets and reaches the server.
        ks = wait_for(lambda: (lambda o: o if ((o.get("status") or {}).get("conditions") or
                                               [{}])[0].get("status") == "True" else None)(
            self.get(KS_PATH + "/" + cluster.KEY_STORE)), 30, "the KeyStore Ready")
        self.assertEqual(ks["status"]["conditions"][0]["reason"], "Ready")

    def test_2_manual_rotation_over_tls(self):
        self.wait_rotated(KR, 1, 60)
        old = self.secret_value("sirius-api-key")
        before = self.api_401s()
        self.annotate_dict(KR, {"keyrotator.io/rotate": "tls-1"})
        obj = self.wait_rotated(KR, 2, 90, "the manual rotation over TLS")
        st = obj["status"]
        new = self.secret_value("sirius-api-key")
        self.assertNotEqual(key_id(old), key_id(new))
        self.assertEqual(st["history"][-1]["outcome"], "Succeeded")
        s = self.store()
        self.assert_active(s, new)
        self.assert_revoked(s, old)
        for n in SIRIUS:
            self.assertEqual(self.template_key_id(n), key_id(new), n)
        self.assertEqual(self.api_401s(), before, "a consumer got 401 during the rotation")

    def refused(self, name, store_spec, want):
        """KeyStore `name` with tls settings `store_spec` and a KeyRotation naming it:
        Degraded=True KeyStoreUnreachable, the message naming the server and `want`."""
        body = cluster.key_store(name, "127.0.0.1:%d" % self.c.valkey_port)
        body["spec"]["tls"] = store_spec
        code, obj = self.api("POST", KS_PATH, body)
        self.assertEqual(code, 201, obj)
        kr = "tls-" + name
        self.create_kr(kr, sirius_spec(secret=kr + "-key", key_store=name, stages=[
            {"name": "engine", "workloads": [{"kind": "Deployment", "name": "sirius-engine"}]}]))
        obj = self.wait_status(kr, lambda st: any(
            c["type"] == "Degraded" and c["status"] == "True" and
            c["reason"] == "KeyStoreUnreachable" for c in st.get("conditions") or []), 30,
            "Degraded KeyStoreUnreachable for " + name)
        msg = self.condition(obj["status"], "Degraded")["message"]
        self.assertIn("valkey 127.0.0.1:%d" % self.c.valkey_port, msg)
        self.assertIn(want, msg)
        self.assertIsNone(self.get(SECRETS + "/" + kr + "-key", missing_ok=True))
        # ... and the KeyStore's status says the same.
        ks = wait_for(lambda: (lambda o: o if (o.get("status") or {}).get("conditions") else
                               None)(self.get(KS_PATH + "/" + name)), 30, "a status of " + name)
        cond = ks["status"]["conditions"][0]
        self.assertEqual((cond["status"], cond["reason"]), ("False", "Unreachable"))
        self.assertIn(want, cond["message"])
        self.delete_kr(kr)
        return msg

    def test_3_wrong_ca_refused(self):
        with open(os.path.join(self.c.certs, "other-ca.crt")) as f:
            self.api("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                       "metadata": {"name": "other-ca"},
                                       "stringData": {"ca.crt": f.read()}})
        self.refused("wrong-ca", {"caSecretRef": {"name": "other-ca"},
                                  "clientCertSecretRef": {"name": "valkey-client"}},
                     "TLS handshake failed: certificate verify failed")

    def test_4_wrong_server_name_refused(self):
        self.refused("wrong-name", {"caSecretRef": {"name": "valkey-ca"},
                                    "clientCertSecretRef": {"name": "valkey-client"},
                                    "serverName": "valkey.elsewhere.test"},
                     "certificate verify failed: hostname mismatch")

    def test_5_missing_client_certificate_refused(self):
        self.refused("no-client-cert", {"caSecretRef": {"name": "valkey-ca"}},
                     "certificate required")

    def keys(self, *args, env=None):
        c = self.c.certs
        cmd = [binary(), "keys"] + list(args) + [
            "--addr", "127.0.0.1:%d" % self.c.valkey_port, "--tls-ca", c + "/ca.crt"]
        e = {k: v for k, v in os.environ.items() if not k.startswith("KEYROTATOR_")}
        e.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=e)

    def test_6_keys_cli_over_tls(self):
        self.wait_rotated(KR, 1, 60)
        c = self.c.certs
        key = self.secret_value("sirius-api-key")
        r = self.keys("list", "--tls-cert", c + "/client.crt", "--tls-key", c + "/client.key")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(key_id(key), r.stdout)
        kf = os.path.join(self.root, "key.txt")
        with open(kf, "w") as f:
            f.write(key + "\n")
        r = self.keys("verify", "--key-file", kf, "--tls-cert", c + "/client.crt",
                      "--tls-key", c + "/client.key")
        self.assertEqual(r.returncode, 0, r.stderr)
        # The same through the environment.
        r = self.keys("list", env={"KEYROTATOR_VALKEY_TLS_CERT": c + "/client.crt",
                                   "KEYROTATOR_VALKEY_TLS_KEY": c + "/client.key"})
        self.assertEqual(r.returncode, 0, r.stderr)
        # No client certificate: exit 1, naming the server and the TLS error.
        r = self.keys("list")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("valkey 127.0.0.1:%d" % self.c.valkey_port, r.stderr)
        self.assertIn("certificate required", r.stderr)
        # A wrong server name.
        r = self.keys("list", "--tls-server-name", "valkey.elsewhere.test", "--tls-cert",
                      c + "/client.crt", "--tls-key", c + "/client.key")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("hostname mismatch", r.stderr)
        # Half a client certificate is bad usage.
        r = self.keys("list", "--tls-cert", c + "/client.crt")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--tls-cert and --tls-key go together", r.stderr)
        self.assertNotIn(key, r.stdout + r.stderr)

    def test_zz_no_raw_key_and_clean_exit(self):
        self.assertEqual(self.ctl.stop(), 0, "SIGTERM exit code")
        self.assert_no_raw_key([KR])
        with open(self.ctl.log_path, errors="replace") as f:
            log = f.read()
        with open(os.path.join(self.c.certs, "client.key")) as f:
            pem = f.read()
        body = "".join(pem.strip().splitlines()[1:-1])
        self.assertNotIn(body[:40], log, "the client key in the log")


if __name__ == "__main__":
    unittest.main()
