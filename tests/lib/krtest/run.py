"""run.py - `python3 -m krtest.run [-v] TEST...`, how CTest runs every Python test: the same as
`python3 -m unittest`, except that a run in which a test was skipped and none failed exits 77,
which CTest (SKIP_RETURN_CODE 77, set in tests/CMakeLists.txt) reports as skipped, not passed.
A skip is only for what is truly optional (a build type, a tool Debian does not package): what
tests/setup.sh installs, and the binary under test, are never a reason to skip."""
import sys
import unittest

SKIPPED = 77


def main(argv):
    prog = unittest.main(module=None, argv=["python3 -m krtest.run"] + argv, exit=False)
    result = prog.result
    if not result.wasSuccessful():
        return 1
    if result.skipped:
        print("krtest.run: %d of %d skipped (exit %d: CTest reports the test as skipped)" % (
            len(result.skipped), result.testsRun, SKIPPED), file=sys.stderr)
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
