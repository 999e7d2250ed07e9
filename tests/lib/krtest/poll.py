"""poll.py - free loopback ports and polling with a deadline: no test sleeps in place of a
condition."""
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may take it before
    the caller binds it: launchers retry, see servers.start_redis)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(cond, timeout, what, interval=0.05):
    """Poll cond() every `interval` s until it returns something truthy, and return that; past
    `timeout` s raise TimeoutError naming `what`. Exceptions from cond() propagate (a child
    that died raises at once instead of running out the clock)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)
