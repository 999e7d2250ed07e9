"""controller.py - one `keyrotator run` process on loopback: its command line, /readyz,
/healthz and /metrics on free ports, its JSON log in a file, SIGTERM/SIGKILL, and start again
any number of times (the log is appended across runs)."""
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

from krtest import REPO
from krtest.poll import free_port, wait_for
from krtest.procs import SETPRIV

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def binary():
    """The keyrotator binary: $KR_BINARY (CTest sets it), else the first of build/ and
    build-e2e/ that has one; RuntimeError when there is none (a test must not pass without
    the controller it tests)."""
    if os.environ.get("KR_BINARY"):
        return os.path.abspath(os.environ["KR_BINARY"])
    for d in ("build", "build-e2e"):
        p = os.path.join(REPO, d, "controller", "keyrotator")
        if os.access(p, os.X_OK):
            return p
    raise RuntimeError("no keyrotator binary: set KR_BINARY or build into build/")


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric_sum(metrics, name, **labels):
    """The sum of the samples of `name` in parse_metrics() output that carry `labels`."""
    return sum(v for (n, ls), v in metrics.items()
               if n == name and all((k, val) in ls for k, val in labels.items()))


def http_get(port, path, timeout=5):
    """(status, body) of GET http://127.0.0.1:port/path; (None, "") when nothing answers."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return None, ""


class Controller:
    """`keyrotator run --kubeconfig K [--namespace N] [--instance I] [leader election] EXTRA`,
    metrics and health on free loopback ports picked at each start. Its output is appended to
    `log_path`; with start(kill_on=f) stderr goes through a reader thread instead, which
    SIGKILLs the process when f(log object) returns a delay (0: at once) for a line."""

    def __init__(self, kubeconfig, log_path, namespace=None, instance=None, extra=(),
                 leader_elect=False, leader_namespace=None, leader_id=None, skew_file=None,
                 binary_path=None):
        self.kubeconfig, self.log_path = kubeconfig, log_path
        self.namespace, self.instance, self.extra = namespace, instance, list(extra)
        self.leader_elect, self.leader_namespace = leader_elect, leader_namespace
        self.leader_id, self.skew_file = leader_id, skew_file
        self.binary = binary_path
        self.proc = self.reader = None
        self.kill_on = self.killed_at = None  # killed_at: the log object of the last kill
        self.starts, self.started = 0, None
        self.metrics_port = self.health_port = None

    def command(self):
        cmd = [self.binary or binary(), "run", "--kubeconfig", self.kubeconfig]
        if self.namespace:
            cmd += ["--namespace", self.namespace]
        cmd += ["--metrics-addr", "127.0.0.1:%d" % self.metrics_port,
                "--health-addr", "127.0.0.1:%d" % self.health_port]
        if self.instance:
            cmd += ["--instance", self.instance]
        cmd += self.extra
        if self.leader_elect:
            cmd += ["--leader-elect", "--leader-election-namespace", self.leader_namespace]
            if self.leader_id:
                cmd += ["--leader-election-id", self.leader_id]
        if self.skew_file:
            cmd += ["--clock-skew-file", self.skew_file]
        return cmd

    def start(self, kill_on=None, wait_ready=True, ready_timeout=30):
        """Start a run (the previous one must have ended); with wait_ready, return once
        /readyz answers 200 (RuntimeError at once should the process exit first)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.metrics_port, self.health_port = free_port(), free_port()
        cmd = self.command()
        if SETPRIV:
            cmd = [SETPRIV, "--pdeathsig", "KILL", "--"] + cmd
        self.kill_on, self.killed_at = kill_on, None
        with open(self.log_path, "ab") as log:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.PIPE if kill_on else log,
                stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.starts += 1
        self.reader = None
        if kill_on:
            self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
            self.reader.start()
        if wait_ready:
            self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout, interval=0.05):
        """Wait for /readyz 200; the seconds from the process start."""
        wait_for(lambda: self.check() and self.get(self.health_port, "/readyz")[0] == 200,
                 timeout, "keyrotator %s /readyz" % (self.instance or "run"), interval)
        return time.monotonic() - self.started

    def _read(self, proc):
        timer, fired = None, threading.Event()

        def kill(obj):
            if not fired.is_set():
                fired.set()
                self.killed_at = obj
                proc.send_signal(signal.SIGKILL)
        with open(self.log_path, "ab") as log:
            for raw in proc.stderr:
                log.write(raw)
                log.flush()
                if fired.is_set():
                    continue
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                delay = self.kill_on(obj)
                if delay is None:
                    continue
                if delay <= 0:  # at once, before a later kill that is still pending
                    if timer is not None:
                        timer.cancel()
                    timer = None
                    kill(obj)
                elif timer is None:
                    timer = threading.Timer(delay, kill, (obj,))
                    timer.start()
        if timer is not None:
            timer.cancel()
        proc.stderr.close()

    def check(self):
        """True while the process runs; RuntimeError naming the log once it has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError("keyrotator %s exited with %s; see %s" % (
                self.instance or "run", self.proc.returncode, self.log_path))
        return True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @staticmethod
    def get(port, path, timeout=5):
        return http_get(port, path, timeout)

    def healthy(self):
        return self.get(self.health_port, "/healthz")[0] == 200

    def metrics(self):
        """The parsed /metrics of the running controller (AssertionError when it fails)."""
        code, text = self.get(self.metrics_port, "/metrics")
        if code != 200:
            raise AssertionError("GET /metrics: %s" % code)
        return parse_metrics(text)

    def metric(self, name):
        """The sum of the samples of `name` (a bare name, or one with its full label set);
        None when /metrics has none (or does not answer)."""
        text = self.get(self.metrics_port, "/metrics")[1]
        total = None
        for line in text.splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
                try:
                    total = (total or 0) + float(line.rsplit(" ", 1)[1])
                except ValueError:
                    pass
        return total

    def wait_exit(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        finally:
            if self.reader is not None:
                self.reader.join(5)

    def kill(self):
        """SIGKILL; the exit code."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        return self.wait_exit()

    def stop(self, timeout=20):
        """SIGTERM, SIGKILL after `timeout` s; the exit code (-9 when it had to be killed, None
        when it never ran)."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait_exit()

    def log_lines(self, level=None, unparsed=False):
        """Every JSON object logged so far (all runs), those of `level` (a set) when given; a
        line that is not JSON is {"msg": line, "unparsed": True} with `unparsed`, else
        skipped."""
        out = []
        try:
            with open(self.log_path, "rb") as f:
                for raw in f:
                    try:
                        d = json.loads(raw)
                    except ValueError:
                        if unparsed:
                            out.append({"msg": raw.decode(errors="replace"), "unparsed": True})
                        continue
                    if level is None or d.get("level") in level:
                        out.append(d)
        except FileNotFoundError:
            pass
        return out

    def tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""
