#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""certfleet-server as a process: start with embedded defaults, serve HTTPS, reload on SIGHUP
without dropping connections, stop cleanly on SIGTERM, refuse a bad configuration clearly."""

import glob
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse

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
            # Without --config the server reads /etc/certfleet/server.conf (and its .d/).
            if not os.path.exists("/etc/certfleet/server.conf"):
                self.assertIn("No /etc/certfleet/server.conf, using the built-in defaults", srv.log())
            # sd_notify: READY=1 with a STATUS= naming what is served.
            ready = [m for m in srv.notifications() if m.get("READY") == "1"]
            self.assertEqual(len(ready), 1, srv.notifications())
            self.assertIn(f"127.0.0.1:{srv.port}", ready[0].get("STATUS", ""))

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
            # Secrets on disk are 0600: the listener key, the CA keys, the database (it holds
            # the nonce key and the EAB-bound accounts).
            secrets = [os.path.join(srv.state_dir, "tls", "server.key"),
                       os.path.join(srv.ca_dir, "root.key"), os.path.join(srv.ca_dir, "issuing.key")]
            secrets += glob.glob(os.path.join(srv.state_dir, "*.db"))
            self.assertEqual(len(secrets), 4, secrets)
            for path in secrets:
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, path)
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
            # EC P-256 unless asked otherwise; RSA on request, in its own directory, keys 0600.
            def key_text(name):
                out = subprocess.run(["openssl", "pkey", "-in", os.path.join(srv.state_dir, "ca", name, "issuing.key"),
                                      "-noout", "-text"], capture_output=True, text=True, check=True).stdout
                return out
            self.assertIn("NIST CURVE: P-256", key_text("default"))
            p = srv.run_cli("ca", "init", "--ca", "legacy", "--key-type", "rsa-2048")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("Private-Key: (2048 bit, 2 primes)", key_text("legacy"))
            for f in ("root.key", "issuing.key"):
                self.assertEqual(os.stat(os.path.join(srv.state_dir, "ca", "legacy", f)).st_mode & 0o777, 0o600)
            # The server then uses that CA rather than creating one.
            srv.start()
            self.assertNotIn("creating a new CA", srv.log())
            self.assertEqual(srv.stop(), 0, srv.log())
        finally:
            srv.cleanup()

    def test_sighup_reloads_profiles_from_drop_ins(self):
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
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.ssl_context(), timeout=10)
            second = "/api/v1/protocols/acme/second/directory"
            status, ctype, _ = get(conn, second)
            self.assertEqual((status, ctype), (404, "application/problem+json"))
            sockname = conn.sock.getsockname()

            # A profile added in server.conf.d/ beside --config PATH, picked up by SIGHUP.
            dropins = srv.config_path + ".d"
            os.makedirs(dropins)
            with open(os.path.join(dropins, "50-second.conf"), "w", encoding="utf-8") as f:
                f.write("[RAProfile second]\nCA=default\nAllowedIdentifiers=*.second.test\n"
                        "ACMEProfile=second\n[ACMEProfile second]\nRAProfile=second\n"
                        "TermsOfService=https://second.test/tos\n")
            ready = srv.reload()
            self.assertIn("Reloaded", ready.get("STATUS", ""))
            status, _, body = get(conn, second)
            self.assertEqual(status, 200, body)
            d = json.loads(body)
            self.assertIn("/acme/second/new-order", d["newOrder"])
            self.assertEqual(d["meta"]["termsOfService"], "https://second.test/tos")
            # The same connection served it: nothing was dropped.
            self.assertEqual(conn.sock.getsockname(), sockname)

            # A drop-in overrides the main file: disabling "default" takes effect at once.
            with open(os.path.join(dropins, "60-off.conf"), "w", encoding="utf-8") as f:
                f.write("[ACMEProfile default]\nEnabled=no\n")
            srv.reload()
            status, ctype, body = get(conn, "/api/v1/protocols/acme/default/directory")
            self.assertEqual((status, ctype), (403, "application/problem+json"), body)
            self.assertEqual(json.loads(body)["type"], "urn:ietf:params:acme:error:unauthorized")
            conn.close()
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_tls_versions_and_plain_http_listener(self):
        with Server(http_listen="127.0.0.1:0") as srv:
            path = "/api/v1/protocols/acme/default/directory"
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                ctx = srv.ssl_context()
                ctx.minimum_version = ctx.maximum_version = version
                conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
                status, _, body = get(conn, path)
                self.assertEqual(status, 200, body)
                self.assertEqual(conn.sock.version(), {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                                       ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
                conn.close()
            # The optional plain-HTTP listener serves too, with http:// URLs of its own.
            plain = urllib.parse.urlsplit(srv.http_base_url)
            self.assertEqual(plain.scheme, "http")
            conn = http.client.HTTPConnection(plain.hostname, plain.port, timeout=10)
            status, _, body = get(conn, path)
            self.assertEqual(status, 200, body)
            self.assertTrue(json.loads(body)["newNonce"].startswith(f"http://127.0.0.1:{plain.port}/"), body)
            conn.close()
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_sigterm_stops_cleanly_with_open_connection(self):
        with Server() as srv:
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.ssl_context(), timeout=10)
            self.assertEqual(get(conn, "/api/v1/protocols/acme/default/directory")[0], 200)
            # An idle keep-alive connection must not hold up the shutdown.
            t = time.monotonic()
            self.assertEqual(srv.stop(), 0, srv.log())
            self.assertLess(time.monotonic() - t, 15)
            self.assertTrue(any(m.get("STOPPING") == "1" for m in srv.notifications()))
            conn.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
