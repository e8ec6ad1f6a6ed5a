# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the interop tests: real third-party ACME clients against certfleet-server.

The server runs through tests/integration/cftest.py; pebble-challtestsrv (Debian's pebble)
answers the server's DNS queries ([Validation] Resolver=) so that any name under the test zones
resolves to loopback, and takes dns-01 TXT records through its management API. Every port is
chosen at run time. Standard library only.
"""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CERTFLEET_SOURCE_ROOT",
                                               os.path.join(os.path.dirname(__file__), "..", "..")),
                                "tests", "integration"))
from cftest import Server, ServerError  # noqa: E402  (path set up above)

__all__ = ["Server", "ServerError", "ChallTestSrv", "skip", "free_port", "require", "server_config",
           "inventory", "cert_show", "account_contacts", "check", "run"]

SKIP = 77


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def require(binary):
    path = shutil.which(binary)
    if not path:
        skip(f"{binary} is not installed")
    return path


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port that was free a moment ago (the tiny race is accepted)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(cond, what, context=""):
    if not cond:
        raise AssertionError(f"{what}\n{context}" if context else what)
    print(f"ok: {what}")


def run(cmd, env=None, timeout=300, expect_ok=True, what=None):
    """Runs a client command; returns CompletedProcess (stdout and stderr merged)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    print("+ " + " ".join(cmd), flush=True)
    start = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=full_env, timeout=timeout, check=False)
    print(f"  (exit status {p.returncode} after {time.monotonic() - start:.1f}s)", flush=True)
    if p.returncode != 0 and p.stdout.strip():
        print("  last line: " + p.stdout.strip().splitlines()[-1][:500], flush=True)
    if expect_ok and p.returncode != 0:
        raise AssertionError(f"{what or cmd[0]} failed with status {p.returncode}:\n{p.stdout}")
    return p


class ChallTestSrv:
    """pebble-challtestsrv as the DNS server of the validation authority (A 127.0.0.1 and
    AAAA ::1 for every name by default; TXT records set through the management API)."""

    BINARY = "pebble-challtestsrv"

    def __init__(self):
        self.process = None
        self.log = tempfile.NamedTemporaryFile(prefix="challtestsrv-", suffix=".log", delete=False)

    def start(self):
        binary = require(self.BINARY)
        for _ in range(5):
            self.dns_port = free_port()
            self.management_port = free_port()
            self.process = subprocess.Popen(
                [binary, "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{self.management_port}",
                 "-defaultIPv6", ""],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                if self._port_open(self.management_port) and self._port_open(self.dns_port):
                    return self
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("pebble-challtestsrv did not start")

    @staticmethod
    def _port_open(port):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    @property
    def resolver(self):
        return f"127.0.0.1:{self.dns_port}"

    @property
    def management_url(self):
        return f"http://127.0.0.1:{self.management_port}"

    def post(self, path, body):
        req = urllib.request.Request(self.management_url + path, data=json.dumps(body).encode(),
                                     method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            if r.status != 200:
                raise RuntimeError(f"challtestsrv {path}: {r.status}")

    def set_txt(self, host, value):
        self.post("/set-txt", {"host": host, "value": value})

    def clear_txt(self, host):
        self.post("/clear-txt", {"host": host})

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        os.unlink(self.log.name)
        return False


def server_config(resolver, http_port=None, tls_port=None,
                  allowed="*.example.test *.internal.example internal.example"):
    """certfleet-server configuration text for cftest.Server(config_text=…)."""
    validation = [f"Resolver={resolver}", "Timeout=10s"]
    if http_port:
        validation.append(f"HTTPPort={http_port}")
    if tls_port:
        validation.append(f"TLSPort={tls_port}")
    return f"""
[Server]
StateDirectory=@STATE_DIR@

[Validation]
{chr(10).join(validation)}

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile default]
CA=default
Enabled=yes
AllowedIdentifiers={allowed}
KeyAlgorithms=ec rsa
Validity=90d
ExtendedKeyUsage=serverAuth
ACMEProfile=default

[ACMEProfile default]
Enabled=yes
RAProfile=default
"""


def inventory(srv):
    """The server's certificate inventory (certfleet-server cert list --json)."""
    p = srv.run_cli("cert", "list", "--json")
    if p.returncode != 0:
        raise AssertionError(f"cert list failed:\n{p.stdout}{p.stderr}")
    data = json.loads(p.stdout)
    if isinstance(data, dict):
        data = data.get("certificates", [])
    return data


def cert_show(srv, serial):
    p = srv.run_cli("cert", "show", serial, "--json")
    if p.returncode != 0:
        raise AssertionError(f"cert show {serial} failed:\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout)


def account_contacts(srv):
    """contacts of every ACME account, read from the server's SQLite database (read-only)."""
    for root, _, files in os.walk(srv.state_dir):
        for f in files:
            if f.endswith(".db") or f.endswith(".sqlite"):
                db = sqlite3.connect(f"file:{os.path.join(root, f)}?mode=ro", uri=True)
                try:
                    rows = db.execute("SELECT id, contacts FROM acme_accounts").fetchall()
                finally:
                    db.close()
                return {i: json.loads(c) for i, c in rows}
    raise AssertionError(f"no database found under {srv.state_dir}")


def serial_of(pem_path):
    """Serial number of a PEM certificate in the server's format (upper-case hex, no colons)."""
    p = subprocess.run(["openssl", "x509", "-in", pem_path, "-noout", "-serial"], capture_output=True,
                       text=True, check=True)
    return p.stdout.strip().split("=", 1)[1].upper()


def find_cert(certs, serial):
    for c in certs:
        if c["serial"].replace(":", "").upper().lstrip("0") == serial.upper().lstrip("0"):
            return c
    return None
