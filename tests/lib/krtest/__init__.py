"""krtest - the Python test suite's shared infrastructure (Python 3 standard library only).

One copy of what every area's tests stand on: free loopback ports and polling with a deadline
(poll), child processes that die with the test (procs), the RESP client (resp), the lines of
a watch stream (stream), redis-server
and prometheus on loopback (servers), the `keyrotator run` process (controller) and temp dirs
that KR_KEEP_TMP=1 keeps (tmp). Tests import it by name: CTest puts tests/lib (and the other
directories of tests/lib/pythonpath.txt) on PYTHONPATH, and tests/py does the same by hand.
"""
import os

from krtest.poll import free_port, listening, wait_for
from krtest.procs import SETPRIV, Proc, spawn, stop
from krtest.tmp import mkdtemp, rmtree
from krtest import resp
from krtest.stream import json_lines

# The repository root (tests/lib/krtest/__init__.py is three levels below it).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))

__all__ = ["REPO", "SETPRIV", "Proc", "free_port", "json_lines", "listening", "mkdtemp", "resp",
           "rmtree", "spawn", "stop", "wait_for"]
