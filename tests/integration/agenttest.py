# SPDX-License-Identifier: Apache-2.0
"""What the agent's integration tests (test-agent-*.py) share: reporting, ports and background
processes on loopback, pebble-challtestsrv as the DNS resolver, certificates read with the openssl
CLI (independently of the code under test), the agent's state files, and the certfleet-server
configuration the server-backed tests run. Standard library only."""

import base64
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

SKIP = 77


def log(*a):
    print(*a, flush=True)


class Fail(Exception):
    pass


def check(cond, msg, detail=""):
    if not cond:
        raise Fail(f"{msg}\n{detail}" if detail else msg)
    log("ok:", msg)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout=60, interval=0.2):
    """fn()'s first true value, polled until timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_port(port, proc, what, timeout=30):
    """Until something accepts on 127.0.0.1:port; proc exiting first is a failure."""
    def accepting():
        if proc.poll() is not None:
            raise Fail(f"{what} exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(f"{what} to open port {port}", accepting, timeout=timeout, interval=0.1)


def report_failure(failure, tmp, lines, server=None):
    """What a failed test prints: the failure, the last lines of every *.log in tmp and of the
    certfleet-server's log (a cftest.Server)."""
    log("FAIL:", failure)
    for name in sorted(os.listdir(tmp)):
        if name.endswith(".log"):
            with open(os.path.join(tmp, name)) as f:
                log(f"--- {name} (tail)\n" + "".join(f.readlines()[-lines:]))
    if server is not None:
        log("--- server log (tail)\n" + "\n".join(server.log().splitlines()[-40:]))


def agent_binary():
    """certfleet-agent of the build under test; without it the test cannot run at all."""
    path = os.path.join(os.environ["CERTFLEET_BUILD_ROOT"], "agent", "certfleet-agent")
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{path} is missing")
    return path


class Processes:
    """The test's background processes. Each runs in its own session, so that stopping it stops
    what it started too; its output goes to a log file in tmp (stdout may go elsewhere, such as a
    pipe the test reads)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, cmd, log_name, env=None, stdout=None):
        out = open(os.path.join(self.tmp, log_name), "w")
        p = subprocess.Popen(cmd, stdout=stdout or out, stderr=out, env=env, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self):
        """Last started, first stopped: SIGTERM, then SIGKILL for what does not exit in 10 s."""
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def start_challtestsrv(self):
        """pebble-challtestsrv as a DNS server answering 127.0.0.1 for every name, its other
        responders off. Returns (DNS port, management port: set-txt / clear-txt)."""
        dns_port, mgmt_port = free_port(), free_port()
        p = self.start(["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns_port}", "-http01", "",
                        "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{mgmt_port}",
                        "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], "challtestsrv.log")
        wait_port(mgmt_port, p, "pebble-challtestsrv")
        return dns_port, mgmt_port


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler of a stand-in server that does not log every request to stderr."""

    def log_message(self, *a):
        pass


def serve_https(handler, cert, key):
    """An HTTPS server on 127.0.0.1 at a port the kernel chose (server_address[1]), handling
    requests with handler on a daemon thread until its shutdown()."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def x509(path, *args):
    return run(["openssl", "x509", "-in", path, "-noout", *args]).stdout


def serial_of(path):
    """Lower-case hex without leading zeros, as the agent and the server print serials."""
    return x509(path, "-serial").strip().split("=", 1)[1].lower().lstrip("0") or "0"


def epoch(date):
    return int(run(["date", "-u", "-d", date, "+%s"]).stdout)


def rfc3339(s):
    return epoch(s.replace("T", " ").replace("Z", " UTC"))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ari_cert_id(path):
    """RFC 9773 CertID computed with the openssl CLI, independently of the agent's code."""
    aki = x509(path, "-ext", "authorityKeyIdentifier").split("\n", 1)[1].strip()
    aki = aki.replace("keyid:", "").replace(":", "").split()[0]
    serial = x509(path, "-serial").strip().split("=", 1)[1]
    if len(serial) % 2:
        serial = "0" + serial
    serial_bytes = bytes.fromhex(serial)
    if serial_bytes[0] & 0x80:
        serial_bytes = b"\0" + serial_bytes
    return b64url(bytes.fromhex(aki)) + "." + b64url(serial_bytes)


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def load(path):
    with open(path) as f:
        return json.load(f)


def edit_schedule(path, **changes):
    """Changes members of an agent's schedule.json, e.g. to make a renewal due now."""
    s = load(path)
    s.update(changes)
    with open(path, "w") as f:
        json.dump(s, f)


def server_config(resolver, http_port):
    """certfleet-server issuing 30-day certificates for *.example.test over ACME, validating
    http-01 on http_port and resolving names with resolver."""
    return f"""
[Server]
StateDirectory=@STATE_DIR@

[Validation]
Resolver={resolver}
HTTPPort={http_port}
Timeout=10s

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile default]
CA=default
Enabled=yes
AllowedIdentifiers=*.example.test
KeyAlgorithms=ec rsa
Validity=30d
ExtendedKeyUsage=serverAuth
ACMEProfile=default

[ACMEProfile default]
Enabled=yes
RAProfile=default
"""
