"""test_cli_keys.py - `keyrotator keys ...` run as a user runs it, against a real redis-server.

Checks stdout, stderr and exit codes of every subcommand in both key-store layouts, with
and without AUTH, and that no raw key ever appears in any output except the one line
`keys create` prints on stdout.
"""
import json
import os
import re
import subprocess
import tempfile
import unittest

import krtest
from krtest import resp
from krtest.servers import start_redis

BINARY = os.environ.get("KR_BINARY", "keyrotator")
KEY_RE = re.compile(r"^sk_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$")
ID_RE = re.compile(r"^[0-9a-f]{12}$")

# Every (stdout, stderr) produced, and every key seen: checked once at the end.
OUTPUTS = []
KEYS = set()


class Redis:
    """A redis-server (krtest.servers) in a temp dir of its own, configured with the lines
    `extra` (requirepass, ACL users); cmd() sends one command on a new connection and
    answers in str."""

    def __init__(self, extra=""):
        self.dir = krtest.mkdtemp("kr-cli-redis-")
        conf = os.path.join(self.dir, "redis.conf")
        with open(conf, "w") as f:
            f.write("protected-mode no\n" + extra)
        self.proc, self.port = start_redis(
            lambda cmd: krtest.spawn(cmd, os.path.join(self.dir, "redis.log")), self.dir,
            conf=conf)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        krtest.rmtree(self.dir)

    def cmd(self, *args):
        c = resp.Client("127.0.0.1", self.port, timeout=5)
        try:
            return resp.decode(c.command(*args))
        finally:
            c.close()

    def env(self, **more):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYROTATOR_")}
        env["KEYROTATOR_VALKEY_ADDR"] = f"127.0.0.1:{self.port}"
        env.update(more)
        return env


def run(args, env, stdin=None):
    p = subprocess.run([BINARY, *args], env=env, input=stdin, capture_output=True, text=True,
                       timeout=60)
    OUTPUTS.append((args[:2], p.stdout, p.stderr))
    return p


def key_id(key):
    import hashlib
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class KeysCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def setUp(self):
        self.redis.cmd("FLUSHALL")

    def create(self, *extra, env=None):
        p = run(["keys", "create", *extra], env or self.redis.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.split("\n")
        self.assertEqual(len(lines), 2, "exactly one line on stdout")
        self.assertEqual(lines[1], "")
        key = lines[0]
        KEYS.add(key)
        self.assertIn(key_id(key), p.stderr)
        # the exemption: this stdout line is the only place the key may appear
        OUTPUTS[-1] = (OUTPUTS[-1][0], "", OUTPUTS[-1][2])
        return key

    def test_help_on_every_command(self):
        for sub in ["create", "list", "revoke", "verify", "reconcile"]:
            p = run(["keys", sub, "--help"], self.redis.env())
            self.assertEqual(p.returncode, 0)
            self.assertIn(f"Usage: keyrotator keys {sub}", p.stdout)
            self.assertIn("KEYROTATOR_VALKEY_ADDR", p.stdout)
            self.assertIn("Exit codes: 0", p.stdout)
        p = run(["keys", "--help"], self.redis.env())
        self.assertEqual(p.returncode, 0)
        for sub in ["create", "list", "revoke", "verify", "reconcile"]:
            self.assertIn(sub, p.stdout)
        p = run(["--help"], self.redis.env())
        self.assertIn("keys", p.stdout)

    def test_usage_errors_exit_2(self):
        cases = [
            ["keys"],
            ["keys", "bogus"],
            ["keys", "create", "--bytes", "15"],
            ["keys", "create", "--bytes", "65"],
            ["keys", "create", "--prefix", "SK-"],
            ["keys", "create", "--nope"],
            ["keys", "create", "--json"],
            ["keys", "list", "--addr", "host:99999"],
            ["keys", "list", "--timeout", "soon"],
            ["keys", "list", "--store-as", "md5"],
            ["keys", "list", "--meta-key", "no-placeholder"],
            ["keys", "list", "extra"],
            ["keys", "verify"],
            ["keys", "verify", "--key-from-env", "KR_TEST_UNSET_VAR"],
            ["keys", "revoke"],
            ["keys", "revoke", "not-a-key-nor-id"],
            ["keys", "reconcile"],
            ["keys", "reconcile", "--key-file", "/nonexistent/key"],
        ]
        for args in cases:
            with self.subTest(args=args):
                p = run(args, self.redis.env())
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertTrue(p.stderr.startswith("keyrotator keys"), p.stderr)

    def test_create_list_verify_revoke(self):
        key = self.create("--label", "2024-Q1-Rotation", "--prefix", "sk_", "--bootstrap")
        self.assertRegex(key, KEY_RE)
        kid = key_id(key)
        # sha256 layout: the store holds the hash, never the key
        self.assertEqual(self.redis.cmd("SMEMBERS", "api_keys:active"),
                         [__import__("hashlib").sha256(key.encode()).hexdigest()])
        self.assertEqual(self.redis.cmd("GET", "api_keys:bootstrap"), kid)

        p = run(["keys", "list"], self.redis.env())
        self.assertEqual(p.returncode, 0)
        row = [l for l in p.stdout.splitlines() if l.startswith(kid)]
        self.assertEqual(len(row), 1)
        self.assertIn("active", row[0])
        self.assertIn("2024-Q1-Rotation", row[0])
        self.assertIn("*", row[0])

        p = run(["keys", "list", "--json"], self.redis.env())
        doc = json.loads(p.stdout)
        self.assertEqual(doc[0]["id"], kid)
        self.assertEqual(doc[0]["status"], "active")
        self.assertTrue(doc[0]["current"])
        self.assertEqual(doc[0]["rotation"], "cli")
        self.assertIsNone(doc[0]["last_used_at"])

        p = run(["keys", "verify", key], self.redis.env())
        self.assertEqual((p.returncode, p.stdout), (0, f"key {kid} is active\n"))

        p = run(["keys", "revoke", kid], self.redis.env())
        self.assertEqual((p.returncode, p.stdout), (0, f"revoked key {kid}\n"))
        p = run(["keys", "revoke", kid], self.redis.env())
        self.assertEqual((p.returncode, p.stdout), (0, f"key {kid} was already revoked\n"))
        p = run(["keys", "verify", key], self.redis.env())
        self.assertEqual((p.returncode, p.stdout), (1, f"key {kid} is not active\n"))
        doc = json.loads(run(["keys", "list", "--json"], self.redis.env()).stdout)
        self.assertEqual(doc[0]["status"], "revoked")
        self.assertIsNotNone(doc[0]["revoked_at"])

    def test_key_sources_env_file_stdin(self):
        key = self.create("--bytes", "16", "--prefix", "")
        kid = key_id(key)
        env = self.redis.env(MY_KEY=key)
        with tempfile.NamedTemporaryFile("w", suffix=".key") as f:
            f.write(key + "\n")
            f.flush()
            for args, stdin in [(["--key-from-env", "MY_KEY"], None),
                                (["--key-file", f.name], None),
                                (["--key-file", "-"], key + "\n"),
                                (["-"], key + "\n")]:
                p = run(["keys", "verify", *args], env, stdin)
                self.assertEqual((p.returncode, p.stdout), (0, f"key {kid} is active\n"))
            p = run(["keys", "revoke", "--key-file", f.name], env)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = run(["keys", "verify", "--key-from-env", "MY_KEY"], env)
            self.assertEqual(p.returncode, 1)

    def test_malformed_keys_rejected_without_echo(self):
        key = self.create("--prefix", "sk_")
        bad = key[:-1] + ("A" if key[-1] != "A" else "B")  # checksum no longer matches
        KEYS.add(bad)
        p = run(["keys", "verify", bad], self.redis.env())
        self.assertEqual(p.returncode, 1)
        self.assertIn("checksum mismatch", p.stderr)
        p = run(["keys", "revoke", bad], self.redis.env())
        self.assertEqual(p.returncode, 2)
        self.assertIn("checksum mismatch", p.stderr)
        # the real key stays active
        self.assertEqual(run(["keys", "verify", key], self.redis.env()).returncode, 0)
        # an unknown but well-formed key
        other = self.create()
        self.assertEqual(run(["keys", "revoke", other], self.redis.env()).returncode, 0)
        self.redis.cmd("FLUSHALL")
        p = run(["keys", "revoke", other], self.redis.env())
        self.assertEqual(p.returncode, 1)
        self.assertIn("no metadata", p.stderr)

    def test_reconcile_after_data_loss_and_marker_drift(self):
        cur = self.create("--label", "current")
        prev = self.create("--label", "previous")
        env = self.redis.env(SIRIUS_API_KEY=cur, OLD_KEY=prev)
        self.redis.cmd("FLUSHALL")  # the runbook's "Valkey data loss"
        self.assertEqual(run(["keys", "verify", cur], env).returncode, 1)
        p = run(["keys", "reconcile", "--key-from-env", "SIRIUS_API_KEY",
                 "--key-from-env", "OLD_KEY", "--rotation", "sirius/sirius-service-key"], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"re-added key {key_id(cur)}", p.stdout)
        self.assertIn(f"re-added key {key_id(prev)}", p.stdout)
        self.assertIn("set bootstrap marker", p.stdout)
        self.assertEqual(self.redis.cmd("GET", "api_keys:bootstrap"), key_id(cur))
        for k in (cur, prev):
            self.assertEqual(run(["keys", "verify", k], env).returncode, 0)
        # marker present, key missing
        self.redis.cmd("DEL", "api_keys:active")
        p = run(["keys", "reconcile", "--key-from-env", "SIRIUS_API_KEY"], env)
        self.assertIn(f"re-added key {key_id(cur)}", p.stdout)
        self.assertNotIn("bootstrap", p.stdout)
        # key present, marker missing; a foreign member (another tenant's) is counted, not
        # removed (the previous key is no longer in the set: DEL above, and not given here)
        self.redis.cmd("DEL", "api_keys:bootstrap")
        self.redis.cmd("SADD", "api_keys:active", "someone-elses-member")
        p = run(["keys", "reconcile", "--key-from-env", "SIRIUS_API_KEY"], env)
        self.assertIn("set bootstrap marker", p.stdout)
        self.assertIn("1 member of api_keys:active not known here", p.stdout)
        self.assertEqual(self.redis.cmd("SISMEMBER", "api_keys:active", "someone-elses-member"),
                         1)
        p = run(["keys", "reconcile", "--key-from-env", "SIRIUS_API_KEY", "--no-bootstrap"], env)
        self.assertTrue(p.stdout.endswith("in sync; 1 member of api_keys:active not known "
                                          "here (left in place)\n"), p.stdout)

    def test_plaintext_layout_lists_ids_only(self):
        env = self.redis.env(KEYROTATOR_VALKEY_STORE_AS="plaintext")
        key = self.create("--label", "plain", env=env)
        kid = key_id(key)
        self.assertEqual(self.redis.cmd("SMEMBERS", "api_keys:active"), [key])
        self.assertEqual(self.redis.cmd("HGET", f"api_key:{key}:meta", "label"), "plain")
        p = run(["keys", "list"], env)
        self.assertIn(kid, p.stdout)
        p = run(["keys", "list", "--json"], env)
        self.assertEqual(json.loads(p.stdout)[0]["id"], kid)
        self.assertEqual(run(["keys", "verify", key], env).returncode, 0)
        p = run(["keys", "revoke", kid], env)
        self.assertEqual((p.returncode, p.stdout), (0, f"revoked key {kid}\n"))
        self.assertEqual(run(["keys", "verify", key], env).returncode, 1)

    def test_legacy_seed_layout(self):
        """The seeds' key_manager layout: raw key as member and inside the metadata key."""
        legacy = "hc-legacy-key-0123456789"
        KEYS.add(legacy)
        env = self.redis.env(KEYROTATOR_VALKEY_STORE_AS="plaintext", LEGACY=legacy)
        self.redis.cmd("SADD", "api_keys:active", legacy)
        self.redis.cmd("HSET", f"api_key:{legacy}:meta", "created_at", "2024-01-02T00:00:00Z",
                       "label", "2024-Q1-Rotation")
        p = run(["keys", "list"], env)
        self.assertIn(key_id(legacy), p.stdout)
        self.assertIn("2024-Q1-Rotation", p.stdout)
        p = run(["keys", "verify", "--key-from-env", "LEGACY"], env)
        self.assertEqual(p.returncode, 1)  # not keyrotator's format: no lookup without opt-in
        self.assertIn("--any-format", p.stderr)
        p = run(["keys", "verify", "--any-format", "--key-from-env", "LEGACY"], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run(["keys", "reconcile", "--key-from-env", "LEGACY"], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("legacy key", p.stderr)
        self.assertEqual(self.redis.cmd("HGET", f"api_key:{legacy}:meta", "status"), "active")
        p = run(["keys", "revoke", "--any-format", "--key-from-env", "LEGACY"], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.redis.cmd("SCARD", "api_keys:active"), 0)

    def test_wrongtype_active_set_never_prints_a_key(self):
        self.redis.cmd("SET", "api_keys:active", "not a set")
        p = run(["keys", "create", "--label", "x"], self.redis.env())
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")  # no key handed out that the store doesn't hold
        self.assertIn(f"valkey 127.0.0.1:{self.redis.port}", p.stderr)
        self.assertIn("WRONGTYPE activeSet api_keys:active holds a string", p.stderr)
        p = run(["keys", "list"], self.redis.env())
        self.assertEqual(p.returncode, 1)
        self.assertIn("WRONGTYPE", p.stderr)

    def test_unreachable_store(self):
        port = krtest.free_port()
        p = run(["keys", "list", "--addr", f"127.0.0.1:{port}", "--timeout", "2s"],
                self.redis.env())
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"valkey 127.0.0.1:{port}: cannot connect", p.stderr)
        p = run(["keys", "create"], self.redis.env(KEYROTATOR_VALKEY_ADDR=f"127.0.0.1:{port}"))
        self.assertEqual((p.returncode, p.stdout), (1, ""))

    def test_database_flag(self):
        key = self.create("--db", "2")
        self.assertEqual(self.redis.cmd("SCARD", "api_keys:active"), 0)
        self.assertEqual(run(["keys", "verify", key, "--db", "2"], self.redis.env()).returncode,
                         0)
        env = self.redis.env(KEYROTATOR_VALKEY_DB="2")
        self.assertEqual(run(["keys", "verify", key], env).returncode, 0)


class KeysCliAuth(unittest.TestCase):
    def test_requirepass(self):
        r = Redis("requirepass pw-for-cli\n")
        try:
            p = run(["keys", "list"], r.env())
            self.assertEqual(p.returncode, 1)
            self.assertIn("NOAUTH", p.stderr)
            p = run(["keys", "list"], r.env(KEYROTATOR_VALKEY_PASSWORD="wrong"))
            self.assertEqual(p.returncode, 1)
            self.assertIn("refused", p.stderr)
            self.assertNotIn("wrong", p.stderr.replace("WRONGPASS", ""))
            p = run(["keys", "create"], r.env(KEYROTATOR_VALKEY_PASSWORD="pw-for-cli"))
            self.assertEqual(p.returncode, 0, p.stderr)
            KEYS.add(p.stdout.strip())
            OUTPUTS[-1] = (OUTPUTS[-1][0], "", OUTPUTS[-1][2])
            with tempfile.NamedTemporaryFile("w") as f:
                f.write("pw-for-cli\n")
                f.flush()
                p = run(["keys", "list", "--password-file", f.name], r.env())
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("active", p.stdout)
        finally:
            r.stop()

    def test_acl_user(self):
        r = Redis("user rotator on >acl-pass ~* +@all\nuser default off\n")
        try:
            p = run(["keys", "list", "--user", "rotator"],
                    r.env(KEYROTATOR_VALKEY_PASSWORD="bad"))
            self.assertEqual(p.returncode, 1)
            self.assertIn('AUTH as user "rotator" refused', p.stderr)
            env = r.env(KEYROTATOR_VALKEY_USERNAME="rotator", KEYROTATOR_VALKEY_PASSWORD="acl-pass")
            p = run(["keys", "create", "--label", "acl"], env)
            self.assertEqual(p.returncode, 0, p.stderr)
            key = p.stdout.strip()
            KEYS.add(key)
            OUTPUTS[-1] = (OUTPUTS[-1][0], "", OUTPUTS[-1][2])
            self.assertEqual(run(["keys", "verify", key], env).returncode, 0)
        finally:
            r.stop()


class ZzNoKeyInAnyOutput(unittest.TestCase):
    """Runs last (alphabetical): every output so far, minus create's stdout line."""

    def test_no_key_anywhere(self):
        self.assertGreater(len(KEYS), 5)
        self.assertGreater(len(OUTPUTS), 40)
        for args, out, err in OUTPUTS:
            for key in KEYS:
                self.assertNotIn(key, out, f"key in stdout of {args}")
                self.assertNotIn(key, err, f"key in stderr of {args}")


if __name__ == "__main__":
    unittest.main()
