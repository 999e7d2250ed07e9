#!/usr/bin/env python3
"""test_schedule_cli.py - `keyrotator schedule`: output and exit codes, run on the built binary.

Usage: test_schedule_cli.py /path/to/keyrotator
"""
import datetime
import subprocess
import sys
import unittest

BINARY = None


def run(*args):
    """Run `keyrotator schedule ARGS`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BINARY, "schedule", *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


class ScheduleOk(unittest.TestCase):
    def test_design_example_quarterly(self):
        code, out, err = run("0 3 1 */3 *", "--from", "2026-01-01T00:00:00Z", "--count", "5")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines(), [
            "2026-01-01T03:00:00Z", "2026-04-01T03:00:00Z", "2026-07-01T03:00:00Z",
            "2026-10-01T03:00:00Z", "2027-01-01T03:00:00Z"])
        self.assertEqual(err, "")

    def test_equals_forms_and_offsets(self):
        code, out, err = run("--count=3", "--from=2026-01-01T01:00:00+01:00", "@daily")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines(), [
            "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"])

    def test_default_count_is_five(self):
        code, out, _ = run("0 0 29 2 *", "--from", "2026-01-01T00:00:00Z")
        self.assertEqual(code, 0)
        self.assertEqual(out.splitlines(), [
            "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z",
            "2040-02-29T00:00:00Z", "2044-02-29T00:00:00Z"])

    def test_day_rule_or_when_both_restricted(self):
        code, out, _ = run("0 0 13 * fri", "--from", "2026-02-01T00:00:00Z", "--count", "4")
        self.assertEqual(code, 0)
        # Fridays of February 2026 (6, 13, 20) and the 13th (itself a Friday) once.
        self.assertEqual(out.splitlines(), [
            "2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z",
            "2026-02-27T00:00:00Z"])

    def test_default_from_is_now(self):
        before = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
        code, out, _ = run("* * * * *", "--count", "2")
        after = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2)
        first = datetime.datetime.strptime(lines[0], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        self.assertGreater(first, before)
        self.assertLessEqual(first, after + datetime.timedelta(minutes=1))

    def test_count_limits(self):
        code, out, _ = run("* * * * *", "--from", "2026-01-01T00:00:00Z", "--count", "1000")
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1000)
        self.assertEqual(lines[-1], "2026-01-01T16:40:00Z")
        code, out, _ = run("* * * * *", "--from", "2026-01-01T00:00:00Z", "--count", "1")
        self.assertEqual((code, out), (0, "2026-01-01T00:01:00Z\n"))

    def test_help(self):
        code, out, _ = run("--help")
        self.assertEqual(code, 0)
        self.assertIn('Usage: keyrotator schedule "<cron>" [--from RFC3339] [--count N]', out)
        p = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("schedule", p.stdout)


class ScheduleBadInput(unittest.TestCase):
    def assert_usage(self, args, want):
        code, out, err = run(*args)
        self.assertEqual(code, 2, f"{args}: {err}")
        self.assertEqual(out, "", args)
        self.assertIn(want, err, args)

    def test_bad_expressions_name_the_field(self):
        rows = [
            ("0 0 32 * *", "keyrotator schedule: field 3 (day of month): 32 is out of range 1-31"),
            ("61 * * * *", "field 1 (minute): 61 is out of range 0-59"),
            ("0 0 * smarch *", "field 4 (month): unknown name \"smarch\""),
            ("0 0 * * 1-", "field 5 (day of week): expected a number"),
            ("*/0 * * * *", "step 0"),
            ("0 0 30 2 *", "never matches"),
            ("@reboot", "@reboot is not supported"),
            ("* * * *", "expected 5 fields"),
            ("", "empty expression"),
        ]
        for expr, want in rows:
            with self.subTest(expr=expr):
                self.assert_usage([expr, "--from", "2026-01-01T00:00:00Z"], want)

    def test_bad_flags(self):
        rows = [
            (["* * * * *", "--count", "0"], "--count: \"0\" is not a number from 1 to 1000"),
            (["* * * * *", "--count", "1001"], "from 1 to 1000"),
            (["* * * * *", "--count", "five"], "--count"),
            (["* * * * *", "--count", "5x"], "--count"),
            (["* * * * *", "--count"], "--count needs a value"),
            (["* * * * *", "--from", "yesterday"], "--from: invalid time \"yesterday\""),
            (["* * * * *", "--from", "2026-02-30T00:00:00Z"], "day out of range"),
            (["* * * * *", "--from"], "--from needs a value"),
            (["* * * * *", "--until", "x"], "unknown option '--until'"),
            ([], "missing the cron expression"),
            (["0", "3", "*", "*", "*"], "expected one cron expression"),
        ]
        for args, want in rows:
            with self.subTest(args=args):
                self.assert_usage(args, want)


class ScheduleFails(unittest.TestCase):
    def test_end_of_time_prints_what_exists_then_exits_1(self):
        code, out, err = run("0 0 * * *", "--from", "9999-12-29T12:00:00Z", "--count", "5")
        self.assertEqual(code, 1)
        self.assertEqual(out.splitlines(), ["9999-12-30T00:00:00Z", "9999-12-31T00:00:00Z"])
        self.assertIn("no run time before year 10000", err)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_schedule_cli.py /path/to/keyrotator")
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=1)
