"""procs.py - child processes that die with the test: each runs under `setpriv --pdeathsig KILL`
(when util-linux has it), so even a SIGKILLed test leaves nothing behind, with its output
appended to a log file."""
import os
import shutil
import signal
import subprocess
import time

SETPRIV = shutil.which("setpriv")


def spawn(cmd, log_path, env=None, **kw):
    """Start `cmd` with stdout and stderr appended to `log_path` and no stdin; the Popen."""
    if SETPRIV:
        cmd = [SETPRIV, "--pdeathsig", "KILL", "--"] + list(cmd)
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                **kw)


def stop(p, timeout=10, sig=signal.SIGTERM):
    """Send `sig` (SIGKILL after `timeout` s) and reap; the exit code (negative: the signal that
    ended it), or None when there was no process."""
    if p is None:
        return None
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


class Proc:
    """A named child logging to <logdir>/<name>.log (see spawn); `started` is the
    CLOCK_MONOTONIC time just before it was started."""

    def __init__(self, name, cmd, logdir, env=None):
        self.name = name
        self.log = os.path.join(logdir, name + ".log")
        self.started = time.monotonic()
        self.p = spawn(cmd, self.log, env=env)
        self.pid = self.p.pid

    def poll(self):
        return self.p.poll()

    def alive(self):
        """Raise RuntimeError naming the log when the process has exited; else False (so that
        `p.alive() or ready()` polls readiness)."""
        if self.p.poll() is not None:
            raise RuntimeError("%s exited with %s; see %s" % (self.name, self.p.returncode,
                                                              self.log))
        return False

    def stop(self, sig=signal.SIGTERM, timeout=20):
        return stop(self.p, timeout, sig)
