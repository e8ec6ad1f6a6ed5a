# SPDX-License-Identifier: Apache-2.0
"""Helpers for integration and interop tests: run the real certfleet-server binary.

    from cftest import Server

    with Server() as srv:                       # embedded defaults, fresh state directory
        srv.directory_url()                     # https://127.0.0.1:PORT/api/v1/protocols/acme/default/directory
        srv.ca_bundle                           # root + issuing CA PEM, to trust the listener
        urllib.request.urlopen(srv.directory_url(), context=srv.ssl_context())
        status, headers, body = srv.request(srv.directory_url())   # any status, no exception

    Server(config_text=...)                     # "@STATE_DIR@" in the text is replaced by the state directory

The server runs in a temporary directory on loopback ports the kernel chooses (it reports them in
its sd_notify READY message), with NOTIFY_SOCKET pointing at a datagram socket this module
listens on, exactly as systemd would. Standard library only.
"""

import os
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

__all__ = ["Server", "ServerError", "build_root", "server_binary"]

STATE_DIR_PLACEHOLDER = "@STATE_DIR@"


class ServerError(Exception):
    """The server failed to start or stop; the message includes its log."""


def build_root():
    root = os.environ.get("CERTFLEET_BUILD_ROOT")
    if not root:
        raise ServerError("CERTFLEET_BUILD_ROOT is not set (run the tests through 'meson test')")
    return root


def server_binary():
    path = os.path.join(build_root(), "server", "certfleet-server")
    if not os.access(path, os.X_OK):
        raise ServerError(f"{path} is missing or not executable")
    return path


class _NotifyListener:
    """The receiving end of the sd_notify protocol: an AF_UNIX datagram socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []          # list of dicts, in arrival order
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            fields = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.cond:
                self.messages.append(fields)
                self.cond.notify_all()

    def wait_for(self, key, value=None, start=0, timeout=30.0, alive=None):
        """Index of the first message at or after `start` that has key (=value)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.messages)):
                    m = self.messages[i]
                    if key in m and (value is None or m[key] == value):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if alive is not None and not alive():
                    return None
                self.cond.wait(min(left, 0.2))

    def close(self):
        self.closed = True
        self.thread.join(2)
        self.sock.close()


class Server:
    """One certfleet-server process in its own temporary directory."""

    def __init__(self, config_text=None, state_dir=None, listen="127.0.0.1:0", http_listen=None,
                 extra_args=(), env=None, ca_name="default", keep_dir=False,
                 socket_activation=False):
        self.tmpdir = tempfile.mkdtemp(prefix="cftest-")
        self.state_dir = state_dir or os.path.join(self.tmpdir, "state")
        self.config_path = None
        self.config_text = config_text
        self.listen = listen
        self.http_listen = http_listen
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.ca_name = ca_name
        self.keep_dir = keep_dir
        # Run under systemd-socket-activate: sockets named "https" (and "http" with
        # http_listen) are bound by it and passed in, as certfleet-server.socket would.
        self.socket_activation = socket_activation
        self.activation_ports = {}
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.process = None
        self.notify = None
        self.urls = []
        self.returncode = None
        if config_text is not None:
            self.write_config(config_text)

    # --- set-up -------------------------------------------------------------------------------

    def write_config(self, text):
        """(Re)writes the config file; use reload() to make a running server read it."""
        self.config_path = os.path.join(self.tmpdir, "server.conf")
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(text.replace(STATE_DIR_PLACEHOLDER, self.state_dir))
        return self.config_path

    @staticmethod
    def free_port():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def command(self):
        if self.socket_activation:
            activate = ["systemd-socket-activate"]
            self.activation_ports["https"] = self.free_port()
            activate += ["-l", f"127.0.0.1:{self.activation_ports['https']}", "--fdname=https"]
            if self.http_listen:
                self.activation_ports["http"] = self.free_port()
                activate += ["-l", f"127.0.0.1:{self.activation_ports['http']}", "--fdname=http"]
            # It passes on only the variables named with -E.
            names = {"NOTIFY_SOCKET", "CERTFLEET_LOG_TARGET", "CERTFLEET_LOG_LEVEL"} | set(self.env)
            for name in sorted(names):
                activate += ["-E", name]
            cmd = activate + [server_binary()]
            if self.config_path:
                cmd += ["--config", self.config_path]
            return cmd + ["--state-dir", self.state_dir] + self.extra_args + ["serve"]
        cmd = [server_binary()]
        if self.config_path:
            cmd += ["--config", self.config_path]
        cmd += ["--state-dir", self.state_dir]
        if self.listen:
            cmd += ["--listen", self.listen]
        if self.http_listen:
            cmd += ["--http-listen", self.http_listen]
        return cmd + self.extra_args + ["serve"]

    def _new_notify(self):
        """A fresh notification socket per start, so messages of a previous run never count."""
        if self.notify is not None:
            self.notify.close()
        path = os.path.join(self.tmpdir, "notify")
        if os.path.exists(path):
            os.unlink(path)
        self.notify = _NotifyListener(path)

    def _environment(self):
        env = dict(os.environ)
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "STATE_DIRECTORY",
                  "CREDENTIALS_DIRECTORY", "JOURNAL_STREAM", "WATCHDOG_USEC"):
            env.pop(k, None)
        env["CERTFLEET_LOG_TARGET"] = "stderr"
        env.setdefault("CERTFLEET_LOG_LEVEL", "info")
        env["NOTIFY_SOCKET"] = self.notify.path
        env.update(self.env)
        return env

    def start(self, timeout=60.0):
        """Starts the server and waits for READY=1. Raises ServerError (with the log) on failure."""
        self._new_notify()
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        env=self._environment(), cwd=self.tmpdir)
        if self.socket_activation:
            self._poke_activation(timeout)
        i = self.notify.wait_for("READY", "1", timeout=timeout, alive=self.alive)
        if i is None:
            rc = self.process.poll()
            if rc is None:
                self._kill()
                raise ServerError(f"server did not report READY=1 within {timeout}s\n{self.log()}")
            self.returncode = rc
            raise ServerError(f"server exited with status {rc} before READY=1\n{self.log()}")
        listen = self.notify.messages[i].get("X_CERTFLEET_LISTEN", "")
        self.urls = listen.split()
        if not self.urls:
            raise ServerError(f"READY=1 without X_CERTFLEET_LISTEN\n{self.log()}")
        return self

    def _poke_activation(self, timeout):
        """systemd-socket-activate starts the server on the first connection; make one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            try:
                with socket.create_connection(("127.0.0.1", self.activation_ports["https"]), 1):
                    return
            except OSError:
                time.sleep(0.05)

    def run_to_exit(self, timeout=60.0):
        """Runs a server that is expected to fail: returns (exit status, log)."""
        self._new_notify()
        with open(self.log_path, "wb") as log:
            p = subprocess.run(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, env=self._environment(),
                               cwd=self.tmpdir, timeout=timeout, check=False)
        self.returncode = p.returncode
        return p.returncode, self.log()

    def run_cli(self, *args, timeout=60.0):
        """Runs `certfleet-server [--config] --state-dir DIR ARGS…`; returns CompletedProcess."""
        cmd = [server_binary()]
        if self.config_path:
            cmd += ["--config", self.config_path]
        cmd += ["--state-dir", self.state_dir] + list(args)
        env = dict(os.environ)
        env["CERTFLEET_LOG_TARGET"] = "stderr"
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.tmpdir,
                              timeout=timeout, check=False)

    # --- what tests use -----------------------------------------------------------------------

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def url(self, tls=True):
        scheme = "https://" if tls else "http://"
        for u in self.urls:
            if u.startswith(scheme):
                return u
        raise ServerError(f"no {scheme} listener (listening on {self.urls})")

    @property
    def base_url(self):
        return self.url(True)

    @property
    def http_base_url(self):
        return self.url(False)

    @property
    def port(self):
        return int(self.base_url.rsplit(":", 1)[1])

    def directory_url(self, profile="default", ra_profile=None, base=None):
        base = base or self.base_url
        if ra_profile is not None:
            return f"{base}/api/v1/protocols/acme/raProfile/{ra_profile}/directory"
        return f"{base}/api/v1/protocols/acme/{profile}/directory"

    @property
    def ca_dir(self):
        return os.path.join(self.state_dir, "ca", self.ca_name)

    @property
    def ca_bundle(self):
        """A PEM file with the CA's root and issuing certificates (trust anchor for the listener
        and for certificates the server issues)."""
        path = os.path.join(self.tmpdir, "ca-bundle.pem")
        with open(path, "w", encoding="ascii") as out:
            for name in ("root.crt", "issuing.crt"):
                with open(os.path.join(self.ca_dir, name), encoding="ascii") as f:
                    out.write(f.read())
        return path

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_bundle)

    def request(self, url_or_path, method="GET", body=None, headers=None, timeout=30):
        """One HTTP(S) request trusting the CA bundle; returns (status, headers, body bytes) for
        any status, errors included. A path is taken relative to base_url."""
        if url_or_path.startswith("/"):
            url_or_path = self.base_url + url_or_path
        req = urllib.request.Request(url_or_path, data=body, method=method, headers=headers or {})
        ctx = self.ssl_context() if url_or_path.startswith("https:") else None
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def notifications(self):
        with self.notify.cond:
            return list(self.notify.messages)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def reload(self, timeout=30.0):
        """SIGHUP, then waits for RELOADING=1 and the READY=1 after it; returns the READY message."""
        start = len(self.notifications())
        self.process.send_signal(signal.SIGHUP)
        i = self.notify.wait_for("RELOADING", "1", start=start, timeout=timeout, alive=self.alive)
        if i is None:
            raise ServerError(f"no RELOADING=1 after SIGHUP\n{self.log()}")
        j = self.notify.wait_for("READY", "1", start=i + 1, timeout=timeout, alive=self.alive)
        if j is None:
            raise ServerError(f"no READY=1 after RELOADING=1\n{self.log()}")
        return self.notify.messages[j]

    def _kill(self):
        self.process.kill()
        self.process.wait(10)

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit status (kills and raises after the timeout)."""
        if self.process is None:
            return self.returncode
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise ServerError(f"server did not stop within {timeout}s of SIGTERM\n{self.log()}")
        self.returncode = self.process.returncode
        self.process = None
        self._log.close()
        return self.returncode

    def cleanup(self):
        if self.process is not None and self.process.poll() is None:
            self._kill()
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        if not self.keep_dir:
            subprocess.run(["rm", "-rf", self.tmpdir], check=False)

    def __enter__(self):
        if self.process is None:
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise
        return self

    def __exit__(self, *exc):
        try:
            if self.process is not None:
                self.stop()
        finally:
            self.cleanup()
        return False
