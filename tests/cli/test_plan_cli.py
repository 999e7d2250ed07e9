"""test_plan_cli.py - `keyrotator plan -f FILE` run as a user runs it: no cluster, no key store.

The plan of both examples in manifests/examples/ (normal and emergency order), JSON output,
several documents and standard input, and an invalid spec refused with exit 2 naming the
field. The binary comes from $KR_BINARY.
"""
import json
import os
import re
import subprocess
import tempfile
import unittest

BINARY = os.environ.get("KR_BINARY", "keyrotator")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(REPO, "manifests", "examples")
SIRIUS = os.path.join(EXAMPLES, "sirius-keyrotation.yaml")
HYPERCODE = os.path.join(EXAMPLES, "hypercode-keyrotation.yaml")
STEP_RE = re.compile(r"^ +(\d+)\. (.+)$")


def plan(*args, stdin=None):
    """(exit code, stdout, stderr) of `keyrotator plan ARGS`."""
    p = subprocess.run([BINARY, "plan", *args], input=stdin, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def steps(out):
    """The header and the numbered steps (checked to count 1, 2, 3, ...) of one plan."""
    lines = out.splitlines()
    found = []
    for i, line in enumerate(lines[1:], 1):
        m = STEP_RE.match(line)
        if not m:
            raise AssertionError(f"line {i} is not a numbered step: {line!r}")
        if int(m.group(1)) != i:
            raise AssertionError(f"step {i} numbered {m.group(1)}")
        found.append(m.group(2))
    return lines[0], found


def index_of(lines, prefix):
    hits = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    if len(hits) != 1:
        raise AssertionError(f"{len(hits)} steps start with {prefix!r}: {lines}")
    return hits[0]


class PlanExamples(unittest.TestCase):
    def test_sirius_manual_order(self):
        code, out, err = plan("-f", SIRIUS)
        self.assertEqual((code, err), (0, ""))
        header, lines = steps(out)
        self.assertEqual(header, "KeyRotation sirius/sirius-service-key (trigger Manual)")
        order = ["measure the baseline 401 rate (prometheus)",
                 "generate a key (prefix \"sk_\", 32 random bytes) into Secret "
                 "sirius/sirius-service-key-rotation",
                 "activate key <new id> in api_keys:active at valkey.sirius.svc:6379",
                 "write Secret sirius/sirius-api-key key SIRIUS_API_KEY",
                 "roll out stage api: Deployment/sirius-api ",
                 "analyse stage api:",
                 "roll out stage ui: Deployment/sirius-ui ",
                 "analyse stage ui:",
                 "roll out stage engine: Deployment/sirius-engine, StatefulSet/sirius-scanner ",
                 "analyse stage engine:",
                 "validate for 10m0s while measuring the 401 rate",
                 "wait until key <current id> has not been used for 5m0s",
                 "revoke key <current id> in api_keys:active",
                 "verify at http://sirius-api.sirius:8080/api/v1/ping (header X-API-Key)",
                 "finish: key <new id> becomes current"]
        self.assertEqual([index_of(lines, p) for p in order], list(range(len(order))))
        self.assertEqual(len(lines), len(order))

    def test_hypercode_manual_order(self):
        code, out, err = plan("--filename", HYPERCODE)
        self.assertEqual((code, err), (0, ""))
        header, lines = steps(out)
        self.assertEqual(header, "KeyRotation hypercode/hypercode-core-key (trigger Manual)")
        self.assertTrue(lines[0].startswith("measure the baseline 401 rate (scrape)"))
        agents = index_of(lines, "roll out stage agents: Deployment/coder-agent, "
                                 "DaemonSet/hypercode-node-agent")
        self.assertLess(index_of(lines, "roll out stage core:"), agents)
        self.assertLess(agents, index_of(lines, "validate for 15m0s"))
        self.assertLess(index_of(lines, "validate for 15m0s"), index_of(lines, "revoke key"))
        self.assertNotIn("verify", out)  # no spec.verify
        self.assertNotIn("has not been used", out)  # no revokeWhenUnusedFor

    def test_emergency_revokes_first_without_gates(self):
        for path in (SIRIUS, HYPERCODE):
            with self.subTest(path=os.path.basename(path)):
                code, out, err = plan("-f", path, "--emergency", "--current-id", "3f9a0c1d2e4b",
                                      "--new-id", "7c1e22aa9b01")
                self.assertEqual((code, err), (0, ""))
                header, lines = steps(out)
                self.assertTrue(header.endswith("(trigger Emergency)"), header)
                revoke = index_of(lines, "revoke key 3f9a0c1d2e4b")
                first_rollout = min(i for i, s in enumerate(lines) if s.startswith("roll out"))
                self.assertLess(index_of(lines, "write Secret"), revoke)
                self.assertLess(revoke, first_rollout)
                self.assertTrue(all("keyrotator.io/key-id=7c1e22aa9b01" in s
                                    for s in lines if s.startswith("roll out")))
                for word in ("analyse", "validate", "baseline", "has not been used"):
                    self.assertNotIn(word, out)
                self.assertTrue(lines[-1].startswith("finish: key 7c1e22aa9b01"))

    def test_json_output_parses(self):
        code, text_out, _ = plan("-f", SIRIUS)
        code, out, err = plan("-f", SIRIUS, "-o", "json")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(len(out.splitlines()), 1)
        doc = json.loads(out)
        self.assertEqual(doc["namespace"], "sirius")
        self.assertEqual(doc["name"], "sirius-service-key")
        self.assertEqual(doc["trigger"], "Manual")
        self.assertEqual(doc["plan"], steps(text_out)[1])
        code, out, _ = plan("-f", HYPERCODE, "--output=json", "--emergency")
        self.assertEqual(json.loads(out)["trigger"], "Emergency")

    def test_several_documents_and_stdin(self):
        with open(HYPERCODE) as f:
            hyper = f.read()
        with open(SIRIUS) as f:
            sirius = f.read()
        other = "apiVersion: v1\nkind: Secret\nmetadata: {name: sirius-api-key}\n"
        text = hyper + "\n---\n" + other + "---\n" + sirius
        code, out, err = plan("-f", "-", stdin=text)
        self.assertEqual((code, err), (0, ""))
        headers = [line for line in out.splitlines() if line.startswith("KeyRotation ")]
        self.assertEqual(headers, ["KeyRotation hypercode/hypercode-core-key (trigger Manual)",
                                   "KeyRotation sirius/sirius-service-key (trigger Manual)"])
        code, out, err = plan("-f", "-", "-o", "json", stdin=text)
        self.assertEqual(code, 0, err)
        self.assertEqual([json.loads(line)["name"] for line in out.splitlines()],
                         ["hypercode-core-key", "sirius-service-key"])

    def test_json_manifest_and_default_namespace(self):
        obj = {"apiVersion": "keyrotator.io/v1alpha1", "kind": "KeyRotation",
               "metadata": {"name": "minimal"},
               "spec": {"secretRef": {"name": "api-key", "key": "API_KEY"},
                        "keyStoreRef": {"kind": "KeyStore", "name": "valkey"},
                        "stages": [{"name": "api",
                                    "workloads": [{"kind": "Deployment", "name": "api"}]}]}}
        code, out, err = plan("-f", "-", stdin=json.dumps(obj))
        self.assertEqual((code, err), (0, ""))
        header, lines = steps(out)
        self.assertEqual(header, "KeyRotation default/minimal (trigger Manual)")
        self.assertNotIn("baseline", out)  # no analysis: no gates
        self.assertIn("validate for 10m0s", lines)


class PlanRefuses(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="kr-plan-")

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_invalid_spec_names_the_field(self):
        with open(SIRIUS) as f:
            sirius = f.read()
        cases = [  # (what, replace, by, the field the message starts with)
            ("bad stage timeout", "timeout: 10m", "timeout: 10x", "spec.stages[0].timeout"),
            ("bad cron", "\"0 3 1 */3 *\"", "\"0 3 1 */3\"", "spec.schedule"),
            ("too few bytes", "bytes: 32", "bytes: 4", "spec.key.bytes"),
            ("unknown kind", "kind: StatefulSet", "kind: Pod", "spec.stages[2].workloads[1].kind"),
        ]
        for what, old, new, field in cases:
            with self.subTest(what=what):
                self.assertIn(old, sirius)
                path = self.write("bad.yaml", sirius.replace(old, new, 1))
                code, out, err = plan("-f", path)
                self.assertEqual(code, 2, err)
                self.assertEqual(out, "")
                self.assertTrue(err.startswith(f"keyrotator plan: {path}: {field}"), err)

    def test_bad_input_and_usage(self):
        cases = [  # (args, stdin, text stderr contains)
            ([], None, "missing -f FILE"),
            (["-f", os.path.join(self.dir.name, "missing.yaml")], None, "cannot open"),
            (["-f", "-"], "kind: Secret\n", "<stdin>: no KeyRotation in the file"),
            (["-f", "-"], "a: [\n", "<stdin>: line"),
            (["-f", SIRIUS, "--output", "yaml"], None, "not text or json"),
            (["-f", SIRIUS, "--bogus"], None, "unknown option '--bogus'"),
            (["-f", SIRIUS, "extra"], None, "unexpected argument 'extra'"),
            (["-f"], None, "-f needs a value"),
        ]
        for args, stdin, text in cases:
            with self.subTest(args=args):
                code, out, err = plan(*args, stdin=stdin)
                self.assertEqual(code, 2, err)
                self.assertEqual(out, "")
                self.assertIn(text, err)

    def test_a_raw_key_given_as_an_id_is_refused_without_echo(self):
        key = "sk_" + "A1b2C3d4" * 5 + "x9Y8z7"
        for flag in ("--current-id", "--new-id"):
            code, out, err = plan("-f", SIRIUS, flag, key)
            self.assertEqual(code, 2)
            self.assertIn(f"{flag}: not a key id", err)
            self.assertNotIn(key, out + err)

    def test_help(self):
        code, out, err = plan("--help")
        self.assertEqual((code, err), (0, ""))
        self.assertTrue(out.startswith("Usage: keyrotator plan -f FILE"))
        for flag in ("--emergency", "--new-id", "--current-id", "--output"):
            self.assertIn(flag, out)
        # Offline, it cannot know the workloads nobody listed: it says so, and where to look.
        self.assertIn("Not shown, since they need the cluster: unlisted consumers", out)
        self.assertIn("`kubectl keyrotation plan NAME` shows both.", out)


if __name__ == "__main__":
    unittest.main()
