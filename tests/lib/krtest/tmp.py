"""tmp.py - a test's temp dir, removed at the end unless KR_KEEP_TMP=1 asks to keep it (its logs
and state for a post-mortem)."""
import os
import shutil
import sys
import tempfile


def mkdtemp(prefix):
    """A new private directory (mode 0700) under $TMPDIR."""
    return tempfile.mkdtemp(prefix=prefix)


def rmtree(root):
    """Remove `root`, or with KR_KEEP_TMP set print "kept <root>" on stderr and leave it."""
    if root is None:
        return
    if os.environ.get("KR_KEEP_TMP"):
        print("kept", root, file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
