"""servers.py - Debian's redis-server (as Valkey) and prometheus on loopback, on free ports, with
their data in the caller's temp dir."""
import os
import urllib.request

from krtest import resp
from krtest.poll import free_port, wait_for


def redis_argv(port, root, password=None, aof=False, conf=None, extra=()):
    """The redis-server command line: 127.0.0.1:port, data in `root`, no RDB snapshots; an
    append-only file fsynced on every write with `aof` (a SIGKILL then keeps the data), none
    without; `conf` is a config file read first (for ACL `user` lines)."""
    cmd = ["redis-server"] + ([conf] if conf else []) + [
        "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    cmd += ["--dir", root]
    if password:
        cmd += ["--requirepass", password]
    return cmd + list(extra)


def redis_answers(port):
    """The server on `port` answers a PING (an error reply such as NOAUTH counts: it runs)."""
    try:
        c = resp.Client("127.0.0.1", port, timeout=1)
        try:
            c.command("PING")
        finally:
            c.close()
        return True
    except resp.RespError:
        return True
    except (OSError, EOFError):
        return False


def start_redis(launch, root, port=None, attempts=5, timeout=10, **argv):
    """Start redis-server through `launch(cmd)` (which returns a Popen or a procs.Proc) and
    wait until it answers; returns (process, port). Without `port` a free one is picked, and
    picked again when another process took it first (the server then exits at once); `argv`
    goes to redis_argv."""
    for _ in range(attempts if port is None else 1):
        p_port = port or free_port()
        p = launch(redis_argv(p_port, root, **argv))

        def up():
            if p.poll() is not None:
                raise RuntimeError("redis-server exited with %s (see the logs in %s)" % (
                    p.poll(), root))
            return redis_answers(p_port)
        try:
            wait_for(up, timeout, "redis-server on port %d" % p_port)
            return p, p_port
        except RuntimeError:
            continue
    raise RuntimeError("redis-server did not start")


class Prometheus:
    """Debian's prometheus on a free loopback port scraping every second, with `scrape_configs`
    (YAML text of the list, each item starting "- job_name:") and its TSDB under `root`."""

    def __init__(self, root, scrape_configs, launch):
        self.root, self.launch = root, launch
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.cfg = os.path.join(root, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n" + scrape_configs)
        self.p = None

    def start(self, timeout=30):
        self.p = self.launch([
            "prometheus", "--config.file", self.cfg, "--web.listen-address",
            "127.0.0.1:%d" % self.port,
            "--storage.tsdb.path", os.path.join(self.root, "prometheus-data")])

        def ready():
            if self.p.poll() is not None:
                raise RuntimeError("prometheus exited with %s; see its log in %s" % (
                    self.p.poll(), self.root))
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(ready, timeout, "prometheus")
        return self

    def kill(self):
        """Gone at once (SIGTERM would flush the TSDB for seconds first)."""
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
