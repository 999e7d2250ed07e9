"""test_scan_keys.py - the raw-key scanner (scan_keys.py) that the soak and e2e tests rely on.

Known answers come from tests/unit/test_keystore_key.c (the C implementation), so the
scanner and the controller agree on what a key is.
"""
import base64
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import unittest
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
import scan_keys

# (prefix, random bytes, key) - the C test's known answers.
VECTORS = [
    ("sk_", bytes(range(32)), "sk_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf3WINfG"),
    ("abcdefghijklmnop", b"\xff" * 64,
     "abcdefghijklmnopxR9fAlrdKvCIINsqEkJZSfvkAt8lzmSSSSwEFE05v06EBY3r5dlozuRxnvOf5LFQW"
     "8jES7aPVEzqA5lO3MW8I34W2y0d"),
    ("", bytes(16), "00000000000000000000002tfPFA"),
]
KEY = VECTORS[0][2]


def random_keys(n, seed=7):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        plen = rnd.randint(0, 16)
        prefix = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(plen))
        nbytes = rnd.randint(16, 64)
        out.append(scan_keys.make_key(prefix, bytes(rnd.getrandbits(8) for _ in range(nbytes))))
    return out


class TestFormat(unittest.TestCase):
    def test_known_answers_match_the_c_implementation(self):
        for prefix, raw, want in VECTORS:
            self.assertEqual(scan_keys.make_key(prefix, raw), want)
            self.assertTrue(scan_keys.is_key(want))
        self.assertEqual(scan_keys.checksum("123456789"), "3jZRME")
        self.assertEqual(scan_keys.checksum(""), "000000")
        self.assertEqual(scan_keys.checksum("abc"), "0yKviM")
        self.assertEqual(scan_keys.key_id(KEY), "dcc60bfaa155")
        self.assertEqual([scan_keys.body_len(b) for b in (15, 16, 17, 32, 64, 65)],
                         [0, 22, 23, 43, 86, 0])
        self.assertEqual((scan_keys.MIN_LEN, scan_keys.MAX_LEN), (28, 108))

    def test_any_one_character_change_is_not_a_key(self):
        for i, c in enumerate(KEY):
            for repl in {"A", "z", "0", "_"} - {c}:
                bad = KEY[:i] + repl + KEY[i + 1:]
                self.assertFalse(scan_keys.is_key(bad), f"position {i} -> {repl}")
        self.assertFalse(scan_keys.is_key(KEY[:-1]))
        self.assertFalse(scan_keys.is_key(KEY[1:]))
        self.assertFalse(scan_keys.is_key(KEY + "0"))

    def test_prefix_filter(self):
        self.assertTrue(scan_keys.is_key(KEY, prefix="sk_"))
        self.assertFalse(scan_keys.is_key(KEY, prefix="pk_"))
        self.assertEqual(scan_keys.find_format_keys("x " + KEY, prefix="pk_"), [])
        self.assertEqual(len(scan_keys.find_format_keys("x " + KEY, prefix="sk_")), 1)


class TestScanText(unittest.TestCase):
    def one(self, text, **kw):
        found = scan_keys.scan_text(text, **kw)
        self.assertEqual(len(found), 1, f"{found} in {text!r}")
        return found[0]

    def test_format_detection_in_every_place_a_key_could_leak(self):
        contexts = [
            '{"level":"info","msg":"wrote key %s"}',          # a JSON log line
            "SIRIUS_API_KEY=%s",                              # env file
            "  SIRIUS_API_KEY: %s",                           # YAML
            'keyrotator_x{key="%s"} 1',                       # a metric label
            "GET /api/v1/ping?api_key=%s&x=1",                # URL
            "Authorization: Bearer %s\r\n",                   # header
            "key %s_old",                                     # followed by "_"
            "message: key\\n%s\\n",                           # escaped newlines
        ]
        for key in [KEY] + random_keys(60):
            for ctx in contexts:
                text = "line one\n" + ctx % key + "\n"
                f = self.one(text)
                self.assertEqual((f.line, f.how, f.key_id),
                                 (2, "format", scan_keys.key_id(key)), ctx)
                self.assertEqual(text.split("\n")[1][f.col - 1:f.col - 1 + len(key)], key)

    def test_known_keys_raw_and_base64_at_every_alignment(self):
        f = self.one('{"msg":"x"}\n{"k":"%s"}\n' % KEY, keys=[KEY], detect_format=False)
        self.assertEqual((f.line, f.col, f.how), (2, 7, "key"))
        for lead in (b"", b"A", b"AB", b"KEY="):
            blob = base64.b64encode(lead + KEY.encode() + b"\n").decode()
            f = self.one("data:\n  env: %s\n" % blob, keys=[KEY], detect_format=False)
            self.assertEqual((f.line, f.how, f.key_id), (2, "key-base64", "dcc60bfaa155"))
        # A known key that is not in keyrotator's format is still found.
        f = self.one("password=hunter2-valkey!\n", keys=["hunter2-valkey!"])
        self.assertEqual((f.line, f.col, f.how), (1, 10, "key"))

    def test_several_keys_each_reported_once(self):
        a, b = random_keys(2, seed=3)
        text = f"{a} and {b}\n{a}\n"
        found = scan_keys.scan_text(text, keys=[a])
        self.assertEqual([(x.line, x.how) for x in found], [(1, "key"), (1, "format"), (2, "key")])

    def test_no_false_positives(self):
        rnd = random.Random(1)
        noise = [
            "".join(hashlib.sha256(str(i).encode()).hexdigest() + " " for i in range(3000)),
            "".join(hashlib.sha256(str(i).encode()).hexdigest()[:12] + "\n" for i in range(3000)),
            base64.b64encode(bytes(rnd.getrandbits(8) for _ in range(300000))).decode(),
            "".join(str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(3000)),
            "x" * 200000 + "_" * 1000 + "0" * 5000,
            KEY[:-1] + "Q" + " " + KEY[1:] + " " + "sk_" + KEY[4:],
            "keyrotator_rotations_total{outcome=\"succeeded\"} 3\n" * 1000,
        ]
        for text in noise:
            self.assertEqual(scan_keys.scan_text(text), [], text[:60])

    def test_findings_never_contain_the_key(self):
        for key in [KEY] + random_keys(20, seed=9):
            for f in scan_keys.scan_text("k=" + key, keys=[key]):
                self.assertNotIn(key, str(f))
                self.assertNotIn(key, repr(f))

    def test_bytes_input(self):
        f = self.one(b"\xff\xfe binary " + KEY.encode() + b"\x00")
        self.assertEqual(f.col, 11)


class TestCli(unittest.TestCase):
    def run_cli(self, *args, stdin=None, env=None):
        e = dict(os.environ)
        e.pop("KR_SCAN_KEYS", None)
        e.update(env or {})
        return subprocess.run([sys.executable, str(HERE / "scan_keys.py"), *args],
                              input=stdin, capture_output=True, text=True, env=e)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="kr-scan-")
        self.dir = Path(self.tmp.name)
        (self.dir / "logs").mkdir()
        (self.dir / "logs" / "controller.log").write_text('{"msg":"ok"}\n{"msg":"%s"}\n' % KEY)
        (self.dir / "metrics.txt").write_text("keyrotator_leader 1\n")
        (self.dir / "secret.yaml").write_text(
            "data:\n  pw: %s\n" % base64.b64encode(b"valkey-pass").decode())

    def tearDown(self):
        self.tmp.cleanup()

    def test_exit_codes_and_report(self):
        out = self.run_cli(str(self.dir))
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertEqual(out.stdout.strip(), "%s:2:9: raw key found (format), id dcc60bfaa155"
                         % (self.dir / "logs" / "controller.log"))
        self.assertNotIn(KEY, out.stdout + out.stderr)
        clean = self.run_cli(str(self.dir / "metrics.txt"))
        self.assertEqual((clean.returncode, clean.stdout), (0, ""))
        missing = self.run_cli(str(self.dir / "nope"))
        self.assertEqual(missing.returncode, 2)
        self.assertIn("nope", missing.stderr)

    def test_keys_from_file_env_and_stdin(self):
        (self.dir / "keys").write_text("valkey-pass\n")
        out = self.run_cli("--no-format", "--keys-file", str(self.dir / "keys"), str(self.dir))
        self.assertEqual(out.returncode, 1)
        self.assertIn("secret.yaml:2:7: raw key found (key-base64)", out.stdout)
        self.assertNotIn("controller.log", out.stdout)
        out = self.run_cli("--no-format", "-", stdin="x valkey-pass\n",
                           env={"KR_SCAN_KEYS": "other valkey-pass"})
        self.assertEqual(out.stdout.strip(),
                         "-:1:3: raw key found (key), id %s" % scan_keys.key_id("valkey-pass"))
        out = self.run_cli("--prefix", "pk_", str(self.dir))
        self.assertEqual(out.returncode, 0, out.stdout)


if __name__ == "__main__":
    unittest.main()
