#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""certfleet-server as a process: start with embedded defaults, serve HTTPS, reload on SIGHUP
without dropping connections, stop cleanly on SIGTERM, refuse a bad configuration clearly."""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cftest import Server, ServerError  # noqa: E402


def get(conn, path):
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.getheader("Content-Type"), resp.read()


class ServerLifecycleTest(unittest.TestCase):

    def test_defaults_serve_directory_reload_and_stop(self):
        srv = Server()
        try:
            srv.start()
        except ServerError as e:
            srv.cleanup()
            self.fail(str(e))
        try:
            self.assertTrue(os.path.exists(os.path.join(srv.ca_dir, "root.crt")), srv.log())
            self.assertIn("creating a new CA", srv.log())

            ctx = srv.ssl_context()
            # The listener certificate names 127.0.0.1, and verification is on (CERT_REQUIRED).
            self.assertEqual(ctx.verify_mode, ssl.CERT_REQUIRED)
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
            path = srv.directory_url().split(str(srv.port), 1)[1]
            status, ctype, body = get(conn, path)
            self.assertEqual(status, 200, body)
            self.assertEqual(ctype.split(";")[0], "application/json")
            directory = json.loads(body)
            self.assertTrue(directory["newNonce"].startswith(f"https://127.0.0.1:{srv.port}/api/v1/protocols/acme/"),
                            directory)
            self.assertEqual(conn.sock.version() in ("TLSv1.2", "TLSv1.3"), True)
            sockname = conn.sock.getsockname()

            ready = srv.reload()
            reloading = [m for m in srv.notifications() if m.get("RELOADING") == "1"]
            self.assertEqual(len(reloading), 1)
            # Type=notify-reload needs the monotonic time of the reload request.
            self.assertTrue(int(reloading[0]["MONOTONIC_USEC"]) > 0)
            self.assertIn("Reloaded", ready.get("STATUS", ""))

            # Same TCP connection, still served after the reload.
            status, _, body = get(conn, path)
            self.assertEqual(status, 200, body)
            self.assertEqual(conn.sock.getsockname(), sockname)
            conn.close()

            # The same through cftest's helper (urllib), which other tests use.
            status, headers, body = srv.request(srv.directory_url())
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body), directory)
            status, headers, _ = srv.request("/no/such/thing")
            self.assertEqual(status, 404)

            # An unknown path gets a problem document, not a crash.
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
            status, ctype, _ = get(conn, "/no/such/thing")
            self.assertEqual(status, 404)
            self.assertEqual(ctype, "application/problem+json")
            conn.close()

            self.assertEqual(srv.stop(), 0, srv.log())
            self.assertTrue(any(m.get("STOPPING") == "1" for m in srv.notifications()))
        finally:
            srv.cleanup()

    @unittest.skipUnless(shutil.which("systemd-socket-activate"), "needs systemd-socket-activate")
    def test_socket_activation_uses_named_sockets(self):
        with Server(socket_activation=True, http_listen="unused") as srv:
            self.assertEqual(sorted(srv.urls), sorted([
                f"https://127.0.0.1:{srv.activation_ports['https']}",
                f"http://127.0.0.1:{srv.activation_ports['http']}"]))
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.ssl_context(), timeout=10)
            status, _, body = get(conn, "/api/v1/protocols/acme/default/directory")
            self.assertEqual(status, 200, body)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", srv.activation_ports["http"], timeout=10)
            status, _, _ = get(conn, "/no/such/thing")
            self.assertEqual(status, 404)
            conn.close()
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_sighup_reloads_configured_tls_certificate(self):
        def make_cert(tmp, name):
            cert, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            return cert, key

        srv = Server()
        try:
            first = make_cert(srv.tmpdir, "first")
            second = make_cert(srv.tmpdir, "second")
            live_cert, live_key = os.path.join(srv.tmpdir, "tls.crt"), os.path.join(srv.tmpdir, "tls.key")
            shutil.copy(first[0], live_cert)
            shutil.copy(first[1], live_key)
            srv.write_config(f"[HTTPS]\nCertificate={live_cert}\nKey={live_key}\n"
                             "[CA default]\n[RAProfile default]\nCA=default\nAllowedIdentifiers=*\n")
            srv.start()

            def served_cn(cafile):
                ctx = ssl.create_default_context(cafile=cafile)
                conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
                status, _, _ = get(conn, "/")
                return conn, status

            old_conn, status = served_cn(first[0])
            self.assertEqual(status, 404)
            shutil.copy(second[0], live_cert)
            shutil.copy(second[1], live_key)
            srv.reload()
            new_conn, status = served_cn(second[0])
            self.assertEqual(status, 404)
            # The connection opened before the reload keeps its session and is still served.
            self.assertEqual(get(old_conn, "/")[0], 404)
            with self.assertRaises(ssl.SSLCertVerificationError):
                served_cn(first[0])
            old_conn.close()
            new_conn.close()
            self.assertEqual(srv.stop(), 0, srv.log())
        finally:
            srv.cleanup()

    def test_listener_certificate_is_reused_across_restarts(self):
        with Server(keep_dir=False) as srv:
            cert = os.path.join(srv.state_dir, "tls", "server.crt")
            with open(cert, "rb") as f:
                first = f.read()
            self.assertEqual(srv.stop(), 0, srv.log())
            srv.start()
            with open(cert, "rb") as f:
                self.assertEqual(f.read(), first)
            self.assertNotIn("Issued TLS certificate", srv.log())

    def test_bad_config_names_file_and_line(self):
        srv = Server(config_text="[Server]\nWorkers=1\nNoSuchKey=1\n")
        try:
            rc, log = srv.run_to_exit()
            self.assertNotEqual(rc, 0, log)
            self.assertIn(f"{srv.config_path}:3", log)
            self.assertIn("NoSuchKey", log)
        finally:
            srv.cleanup()

    def test_bad_value_names_file_and_line(self):
        srv = Server(config_text="[Limits]\n\nMaxBodySize=12Q\n")
        try:
            rc, log = srv.run_to_exit()
            self.assertEqual(rc, 1, log)
            self.assertIn(f"{srv.config_path}:3", log)
        finally:
            srv.cleanup()

    def test_failed_reload_keeps_serving_previous_config(self):
        config = """[Server]
Workers=2
[CA default]
Backend=local
[RAProfile default]
CA=default
AllowedIdentifiers=*
ACMEProfile=default
[ACMEProfile default]
RAProfile=default
"""
        with Server(config_text=config) as srv:
            ctx = srv.ssl_context()
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
            path = "/api/v1/protocols/acme/default/directory"
            self.assertEqual(get(conn, path)[0], 200, srv.log())

            srv.write_config(config + "[RAProfile broken]\nCA=default\nBogus=yes\n")
            ready = srv.reload()
            self.assertIn("previous configuration kept", ready.get("STATUS", ""))
            self.assertIn(f"{srv.config_path}:13", srv.log())
            self.assertEqual(get(conn, path)[0], 200, srv.log())
            conn.close()
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_usage_errors_exit_2(self):
        srv = Server()
        try:
            for args in (["--no-such-option"], ["frobnicate"], ["serve", "extra"]):
                p = srv.run_cli(*args)
                self.assertEqual(p.returncode, 2, (args, p.stderr))
            p = srv.run_cli("--version")
            self.assertEqual(p.returncode, 0)
            self.assertTrue(p.stdout.startswith("certfleet-server "))
        finally:
            srv.cleanup()

    def test_ca_init_creates_default_ca_in_state_dir(self):
        srv = Server()
        try:
            p = srv.run_cli("ca", "init")
            self.assertEqual(p.returncode, 0, p.stderr)
            for f in ("root.crt", "issuing.crt", "root.key", "issuing.key"):
                self.assertTrue(os.path.exists(os.path.join(srv.ca_dir, f)), f)
            self.assertEqual(os.stat(os.path.join(srv.ca_dir, "issuing.key")).st_mode & 0o077, 0)
            # The server then uses that CA rather than creating one.
            srv.start()
            self.assertNotIn("creating a new CA", srv.log())
            self.assertEqual(srv.stop(), 0, srv.log())
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
