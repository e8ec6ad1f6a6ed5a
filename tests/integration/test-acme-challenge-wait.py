#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The challenge POST that starts a validation holds its reply until the result is committed or
[Validation] ChallengeResponseWait= passed (RFC 8555 §7.5.1 lets the server answer either way):

  - with the default bound and a prompt http-01 responder the POST itself says "valid", with a
    fresh Replay-Nonce and the usual Link headers, and the authorization is valid at once;
  - with a responder slower than a small bound the POST says "processing" with Retry-After after
    about the bound, and polling then finds the authorization valid;
  - a client that closes its connection while its reply is held leaves the server serving, and a
    stop answers held replies at once (no crash, no leak: run under the sanitizer build too);
  - ChallengeResponseWait=0 answers "processing" at once, as before.

Needs the Python 'cryptography' module (Debian: python3-cryptography); skipped without it."""

import http.server
import importlib.util
import json
import os
import socket
import ssl
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cftest import Server  # noqa: E402

# The ACME client helpers of test-acme-negative.py (a file name Python cannot import by name).
_spec = importlib.util.spec_from_file_location(
    "acme_negative", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-acme-negative.py"))
neg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(neg)

CONFIG = """
[Server]
StateDirectory=@STATE_DIR@
Workers=1

[Validation]
HTTPPort={port}
Timeout=6s
{extra}

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile default]
CA=default
Enabled=yes
AllowedIdentifiers=127.0.0.0/8
KeyAlgorithms=ec
Validity=47d
ExtendedKeyUsage=serverAuth
ACMEProfile=default

[ACMEProfile default]
Enabled=yes
RAProfile=default
"""


class SlowResponder:
    """Answers http-01 for the tokens it was given, each after its own delay."""

    def __init__(self):
        self.tokens = {}                 # token -> (key authorization, delay in seconds)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                prefix = "/.well-known/acme-challenge/"
                tok = self.path[len(prefix):] if self.path.startswith(prefix) else None
                entry = outer.tokens.get(tok)
                if entry is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                time.sleep(entry[1])
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(entry[0].encode())
                except OSError:
                    pass                 # the validator gave up (server stopped)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def start_server(test, responder, extra=""):
    srv = Server(config_text=CONFIG.format(port=responder.port, extra=extra))
    test.addCleanup(srv.cleanup)
    srv.start()
    return srv


def check_clean_stop(test, srv):
    rc = srv.stop()
    log = srv.log()
    test.assertEqual(rc, 0, log)
    # Sanitizer builds report memory errors and leaks in the log and the exit status.
    test.assertNotIn("AddressSanitizer", log)
    test.assertNotIn("LeakSanitizer", log)
    test.assertNotIn("runtime error", log)


def prepare_challenge(test, srv, responder, delay):
    """A fresh account and order for 127.0.0.1; its http-01 challenge, answered after delay."""
    c = neg.Client(srv, srv.directory_url())
    test.addCleanup(c.conn.close)
    c.register()
    status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
    test.assertEqual(status, 201, data)
    order = json.loads(data)
    authz_url = order["authorizations"][0]
    status, resp, data = c.post(authz_url, None)
    test.assertEqual(status, 200, data)
    ch = [x for x in json.loads(data)["challenges"] if x["type"] == "http-01"][0]
    responder.tokens[ch["token"]] = (f"{ch['token']}.{neg.thumbprint(c.key)}", delay)
    return c, authz_url, ch


def links(resp):
    return ", ".join(v for k, v in resp.getheaders() if k.lower() == "link")


@unittest.skipUnless(neg.HAVE_CRYPTOGRAPHY, "needs python3-cryptography")
class ChallengeResponseWait(unittest.TestCase):

    def setUp(self):
        self.responder = SlowResponder()
        self.addCleanup(self.responder.close)

    def test_default_wait_answers_valid(self):
        srv = start_server(self, self.responder)
        c, authz_url, ch = prepare_challenge(self, srv, self.responder, 0)

        started = time.monotonic()
        status, resp, data = c.post(ch["url"], {})
        elapsed = time.monotonic() - started
        self.assertEqual(status, 200, data)
        chal = json.loads(data)
        self.assertEqual(chal["status"], "valid", chal)
        # Woken by the result, not by the bound (1 s) passing.
        self.assertLess(elapsed, 0.7, "the held reply was not woken by the result")
        self.assertTrue(chal.get("validated"), chal)
        self.assertEqual(chal["url"], ch["url"])
        self.assertIsNone(resp.getheader("Retry-After"))
        self.assertTrue(resp.getheader("Replay-Nonce"))
        self.assertIn(f'<{authz_url}>;rel="up"', links(resp))
        self.assertIn('rel="index"', links(resp))
        self.assertEqual(resp.getheader("Content-Type"), "application/json")

        # The nonce of the held reply is good for the next request, and the authorization is
        # valid without any poll.
        status, resp, data = c.post(authz_url, None)
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "valid", data)

        # A second POST of the now valid challenge answers at once with the same state.
        started = time.monotonic()
        status, resp, data = c.post(ch["url"], {})
        self.assertEqual(json.loads(data)["status"], "valid", data)
        self.assertLess(time.monotonic() - started, 0.5)
        check_clean_stop(self, srv)

    def test_reload_while_held(self):
        srv = start_server(self, self.responder)
        c, authz_url, ch = prepare_challenge(self, srv, self.responder, 0.6)
        result = {}

        def post():
            try:
                result["reply"] = c.post(ch["url"], {})
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e

        t = threading.Thread(target=post)
        t.start()
        time.sleep(0.2)
        # SIGHUP replaces the validation pool; the old one finishes this validation, whose
        # result still wakes the held reply.
        srv.reload()
        t.join(10)
        self.assertNotIn("error", result, result)
        status, resp, data = result["reply"]
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "valid", data)
        self.assertTrue(resp.getheader("Replay-Nonce"))
        check_clean_stop(self, srv)

    def test_slow_responder_answers_processing_after_bound(self):
        srv = start_server(self, self.responder, "ChallengeResponseWait=200ms")
        c, authz_url, ch = prepare_challenge(self, srv, self.responder, 1.5)

        started = time.monotonic()
        status, resp, data = c.post(ch["url"], {})
        elapsed = time.monotonic() - started
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "processing", data)
        self.assertGreater(int(resp.getheader("Retry-After")), 0)
        self.assertTrue(resp.getheader("Replay-Nonce"))
        self.assertIn(f'<{authz_url}>;rel="up"', links(resp))
        self.assertGreaterEqual(elapsed, 0.18, "the reply was not held for the bound")
        self.assertLess(elapsed, 1.2, "the reply was held past the bound")

        deadline = time.monotonic() + 20
        while True:
            status, resp, data = c.post(authz_url, None)
            authz = json.loads(data)
            if authz["status"] != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(authz["status"], "valid", authz)
        check_clean_stop(self, srv)

    def test_wait_zero_answers_at_once(self):
        srv = start_server(self, self.responder, "ChallengeResponseWait=0")
        c, authz_url, ch = prepare_challenge(self, srv, self.responder, 1.0)

        started = time.monotonic()
        status, resp, data = c.post(ch["url"], {})
        elapsed = time.monotonic() - started
        self.assertEqual(json.loads(data)["status"], "processing", data)
        self.assertGreater(int(resp.getheader("Retry-After")), 0)
        self.assertLess(elapsed, 0.6)
        check_clean_stop(self, srv)

    def test_client_closes_while_held_and_stop_answers_held(self):
        srv = start_server(self, self.responder)
        c, authz_url, ch = prepare_challenge(self, srv, self.responder, 1.5)

        # The POST on a connection of its own, closed right after sending: its reply is held
        # (default bound, 1 s) when the client goes away.
        nonce = c.new_nonce()
        c.nonce = None                   # spent here, not by c's next request
        body = neg.jws(c.key, ch["url"], {}, nonce=nonce, kid=c.kid).encode()
        path = urllib.parse.urlsplit(ch["url"]).path
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        tls = srv.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                     f"Content-Type: application/jose+json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                    + body)
        time.sleep(0.3)
        tls.close()

        # The validation still ends, and the server keeps serving.
        deadline = time.monotonic() + 20
        while True:
            status, resp, data = c.post(authz_url, None)
            authz = json.loads(data)
            if authz["status"] != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(authz["status"], "valid", authz)
        status, resp, data = c.request("GET", srv.directory_url())
        self.assertEqual(status, 200)

        # A reply held when the server stops is answered at once, with the state then.
        c2, authz2, ch2 = prepare_challenge(self, srv, self.responder, 4.0)
        result = {}

        def post():
            try:
                result["reply"] = c2.post(ch2["url"], {})
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e

        t = threading.Thread(target=post)
        t.start()
        time.sleep(0.5)
        stop_started = time.monotonic()
        check_clean_stop(self, srv)
        t.join(10)
        self.assertNotIn("error", result, result)
        status, resp, data = result["reply"]
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "processing", data)
        self.assertTrue(resp.getheader("Replay-Nonce"))
        self.assertLess(time.monotonic() - stop_started, 8)


class ChallengeResponseWaitConfig(unittest.TestCase):

    def test_bad_values_name_file_and_line(self):
        for value in ("5x", "-1", "1.5s", "ms", "61s", "70000ms"):
            srv = Server(config_text=f"[Validation]\nChallengeResponseWait={value}\n")
            try:
                rc, log = srv.run_to_exit()
                self.assertEqual(rc, 1, (value, log))
                self.assertIn(f"{srv.config_path}:2", log)
            finally:
                srv.cleanup()

    def test_good_values_start(self):
        for value in ("250ms", "2s", "1m", "0", "0ms"):
            srv = Server(config_text=CONFIG.format(port=80, extra=f"ChallengeResponseWait={value}"))
            self.addCleanup(srv.cleanup)
            srv.start()
            check_clean_stop(self, srv)


if __name__ == "__main__":
    unittest.main()
