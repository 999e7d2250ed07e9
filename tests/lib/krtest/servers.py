"""servers.py - Debian's redis-server (as Valkey), redis-sentinel and prometheus on loopback, on
free ports, with their data in the caller's temp dir; TLS with the certificates of
tests/tools/make_tls_certs.sh."""
import os
import urllib.request

from krtest import resp
from krtest.poll import free_port, wait_for


def _tls_lines(tls, port):
    """(directive, value) pairs for TLS only on `port`: tls is (certs dir, "tls" | "mtls");
    with "mtls" clients must show a certificate."""
    certs, mode = tls
    return [("port", "0"), ("tls-port", str(port)),
            ("tls-cert-file", certs + "/server.crt"), ("tls-key-file", certs + "/server.key"),
            ("tls-ca-cert-file", certs + "/ca.crt"), ("tls-replication", "yes"),
            ("tls-auth-clients", "yes" if mode == "mtls" else "no")]


def redis_argv(port, root, password=None, aof=False, conf=None, extra=(), tls=None,
               masterauth=False):
    """The redis-server command line: 127.0.0.1:port, data in `root`, no RDB snapshots; an
    append-only file fsynced on every write with `aof` (a SIGKILL then keeps the data), none
    without; `conf` is a config file read first (for ACL `user` lines); `tls` (certs dir,
    "tls" | "mtls"): TLS only on `port`; `masterauth`: the password is also the one a replica
    gives its master."""
    cmd = ["redis-server"] + ([conf] if conf else [])
    for k, v in _tls_lines(tls, port) if tls else [("port", str(port))]:
        cmd += ["--" + k, v]
    cmd += ["--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    cmd += ["--dir", root]
    if password:
        cmd += ["--requirepass", password] + (["--masterauth", password] if masterauth else [])
    return cmd + list(extra)


def redis_answers(port, tls_context=None):
    """The server on `port` answers a PING (an error reply such as NOAUTH counts: it runs);
    tls_context: resp.tls_context() for a TLS port."""
    try:
        c = resp.Client("127.0.0.1", port, timeout=1, tls=tls_context)
        try:
            c.command("PING")
        finally:
            c.close()
        return True
    except resp.RespError:
        return True
    except (OSError, EOFError):
        return False


def _start(what, launch, cmd_for, answers, port, attempts, timeout, where):
    for _ in range(attempts if port is None else 1):
        p_port = port or free_port()
        p = launch(cmd_for(p_port))

        def up():
            if p.poll() is not None:
                raise RuntimeError("%s exited with %s (see the logs in %s)" % (
                    what, p.poll(), where))
            return answers(p_port)
        try:
            wait_for(up, timeout, "%s on port %d" % (what, p_port))
            return p, p_port
        except RuntimeError:  # the port was taken between free_port() and bind: again
            continue
    raise RuntimeError("%s did not start" % what)


def start_redis(launch, root, port=None, attempts=5, timeout=10, tls_context=None, **argv):
    """Start redis-server through `launch(cmd)` (which returns a Popen or a procs.Proc) and
    wait until it answers (over TLS with `tls_context`); returns (process, port). Without
    `port` a free one is picked, and picked again when another process took it first (the
    server then exits at once); `argv` goes to redis_argv."""
    return _start("redis-server", launch, lambda p: redis_argv(p, root, **argv),
                  lambda p: redis_answers(p, tls_context), port, attempts, timeout, root)


def start_sentinel(launch, root, master_port, master_name, password=None, tls=None,
                   tls_context=None, attempts=5, timeout=10):
    """Start one redis-sentinel (config in root/sentinel.conf) watching the master on
    127.0.0.1:master_port as `master_name`: quorum 1, down after 500 ms, failover timeout
    3 s, so a killed master is replaced within seconds; TLS (and with "mtls" its own client
    certificate) as redis_argv. Returns (process, port) once it names the master."""
    conf = os.path.join(root, "sentinel.conf")

    def cmd_for(port):
        lines = ["bind 127.0.0.1", "dir %s" % root,
                 "sentinel monitor %s 127.0.0.1 %d 1" % (master_name, master_port),
                 "sentinel down-after-milliseconds %s 500" % master_name,
                 "sentinel failover-timeout %s 3000" % master_name,
                 "sentinel parallel-syncs %s 1" % master_name]
        if password:
            lines.append("sentinel auth-pass %s %s" % (master_name, password))
        if tls:
            lines += ["%s %s" % kv for kv in _tls_lines(tls, port)]
            if tls[1] == "mtls":
                lines += ["tls-client-cert-file %s/client.crt" % tls[0],
                          "tls-client-key-file %s/client.key" % tls[0]]
        else:
            lines.append("port %d" % port)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return ["redis-sentinel", conf]

    def names_master(port):
        c = resp.Client("127.0.0.1", port, timeout=1, tls=tls_context)
        try:
            return c.command("SENTINEL", "get-master-addr-by-name", master_name)
        except (OSError, EOFError, resp.RespError):
            return None
        finally:
            c.close()
    return _start("redis-sentinel", launch, cmd_for, names_master, None, attempts, timeout,
                  root)


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
