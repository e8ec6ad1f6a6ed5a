#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The approval workflow of RA profiles with ApprovalRequired=yes, end to end: an ACME finalize
queues the request and leaves the order processing with Retry-After; `certfleet-server request
list/show` shows it; `request approve` makes the next order fetch issue (valid, certificate
downloads, in `cert list`); `request reject --reason` makes the next fetch turn the order invalid
with an unauthorized error carrying the reason; a decision is final; unknown IDs are not found.

Also, when lego is installed: `lego run` against an approval profile while the test approves
the queued request in the background; lego waits on the processing order and gets its
certificate.

Needs the Python 'cryptography' module (Debian: python3-cryptography); skipped without it."""

import importlib.util
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cftest import Server  # noqa: E402

# The ACME client helpers (JWS, the http-01 responder) of the ACME front end's own test.
_spec = importlib.util.spec_from_file_location("acme_negative", os.path.join(HERE, "test-acme-negative.py"))
acme = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(acme)

if acme.HAVE_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

ERR = "urn:ietf:params:acme:error:"

CONFIG = """
[Server]
StateDirectory=@STATE_DIR@
# Enough threads that concurrent fetches of one order really run at the same time.
Workers=8

[Validation]
HTTPPort={port}
Timeout=5s

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile default]
CA=default
Enabled=yes
AllowedIdentifiers=127.0.0.0/8
ACMEProfile=default

[ACMEProfile default]
Enabled=yes
RAProfile=default

[RAProfile gated]
CA=default
Enabled=yes
AllowedIdentifiers=127.0.0.0/8
ApprovalRequired=yes
ACMEProfile=gated

[ACMEProfile gated]
Enabled=yes
RAProfile=gated
"""


@unittest.skipUnless(acme.HAVE_CRYPTOGRAPHY, "python3-cryptography is not installed")
class AcmeApproval(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.chal = acme.ChallengeServer()
        cls.srv = Server()
        cls.srv.write_config(CONFIG.format(port=cls.chal.port))
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            cls.chal.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.srv.stop()
            log = cls.srv.log()
        finally:
            cls.srv.cleanup()
            cls.chal.close()
        if rc != 0 or "runtime error" in log or "AddressSanitizer" in log:
            raise AssertionError(f"server exited with {rc}\n{log}")

    # --- helpers --------------------------------------------------------------------------------

    def cli(self, *args, want=0):
        p = self.srv.run_cli(*args)
        self.assertEqual(p.returncode, want, f"{args}: {p.stdout}\n{p.stderr}")
        return p

    def cli_json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def client(self):
        c = acme.Client(self.srv, self.srv.directory_url(profile="gated"))
        self.addCleanup(c.conn.close)
        c.register()
        return c

    def poll(self, c, url, until, timeout=40):
        deadline = time.monotonic() + timeout
        while True:
            status, resp, data = c.post(url, None)
            self.assertEqual(status, 200, data)
            obj = json.loads(data)
            if obj["status"] not in until or time.monotonic() > deadline:
                return obj
            time.sleep(0.3)

    def ready_order(self, c, ip):
        """A validated order for ip; returns (order URL, order)."""
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": ip}]})
        self.assertEqual(status, 201, data)
        order_url, order = resp.getheader("Location"), json.loads(data)
        if order["status"] == "ready":        # an authorization of an earlier order was reused
            return order_url, order
        status, resp, data = c.post(order["authorizations"][0], None)
        ch = [ch for ch in json.loads(data)["challenges"] if ch["type"] == "http-01"][0]
        self.chal.tokens[ch["token"]] = f"{ch['token']}.{acme.thumbprint(c.key)}"
        status, resp, data = c.post(ch["url"], {})
        self.assertEqual(status, 200, data)
        order = self.poll(c, order_url, ("pending",))
        self.assertEqual(order["status"], "ready", order)
        return order_url, order

    def finalize_pending(self, c, ip):
        """Finalizes a ready order for ip; checks it stays processing. Returns (order URL,
        order, leaf key, the queued request as `request show --json` prints it)."""
        order_url, order = self.ready_order(c, ip)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, ip)]))
               .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                              critical=False)
               .sign(key, hashes.SHA256()))
        status, resp, data = c.post(order["finalize"],
                                    {"csr": acme.b64u(csr.public_bytes(serialization.Encoding.DER))})
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        self.assertEqual(order["status"], "processing", order)
        self.assertGreater(int(resp.getheader("Retry-After")), 0)
        self.assertNotIn("certificate", order)

        order_id = order_url.rsplit("/", 1)[1]
        matches = [r for r in self.cli_json("request", "list") if r["reference"] == order_id]
        self.assertEqual(len(matches), 1, matches)
        req = matches[0]
        self.assertEqual(req["state"], "pending")
        self.assertEqual(req["protocol"], "acme")
        self.assertEqual(req["raProfile"], "gated")
        self.assertEqual(req["identifiers"], [f"ip:{ip}"])
        self.assertEqual(req["key"], "EC P-256")
        self.assertIn(f"CN={ip}", req["subject"])
        self.assertIsNone(req["decided"])
        return order_url, order, key, req

    def serials_in_inventory(self):
        return {c["serial"] for c in self.cli_json("cert", "list")}

    # --- tests ----------------------------------------------------------------------------------

    def test_approve_then_next_fetch_issues(self):
        c = self.client()
        before = self.serials_in_inventory()
        order_url, order, key, req = self.finalize_pending(c, "127.0.0.1")

        # Polling while pending: still processing with Retry-After, nothing issued, queued once.
        for _ in range(3):
            status, resp, data = c.post(order_url, None)
            self.assertEqual(status, 200, data)
            self.assertEqual(json.loads(data)["status"], "processing")
            self.assertGreater(int(resp.getheader("Retry-After")), 0)
        self.assertEqual(self.serials_in_inventory(), before)
        self.assertEqual(len([r for r in self.cli_json("request", "list", "--all")
                              if r["reference"] == req["reference"]]), 1)

        # The human-readable list and show name it too.
        p = self.cli("request", "list")
        self.assertIn("ip:127.0.0.1", p.stdout)
        p = self.cli("request", "show", str(req["id"]))
        self.assertIn("EC P-256", p.stdout)
        self.assertIn("pending", p.stdout)

        p = self.cli("request", "approve", str(req["id"]))
        self.assertIn("approved", p.stdout)
        self.assertIn("next", p.stdout)       # says the client's next fetch issues
        shown = self.cli_json("request", "show", str(req["id"]))
        self.assertEqual(shown["state"], "approved")
        self.assertIsNotNone(shown["decided"])
        self.assertIsNone(shown["certSerial"])
        # Approve records only: nothing was issued yet, and it left the pending list.
        self.assertEqual(self.serials_in_inventory(), before)
        self.assertNotIn(req["id"], [r["id"] for r in self.cli_json("request", "list")])

        # A decision is final.
        p = self.cli("request", "approve", str(req["id"]), want=1)
        self.assertIn("already approved", p.stderr)
        p = self.cli("request", "reject", str(req["id"]), want=1)
        self.assertIn("already approved", p.stderr)

        status, resp, data = c.post(order_url, None)
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        self.assertEqual(order["status"], "valid", order)
        self.assertIsNone(resp.getheader("Retry-After"))
        status, resp, data = c.post(order["certificate"], None)
        self.assertEqual(status, 200, data)
        leaf = acme.load_pems(data)[0]
        self.assertEqual(leaf.public_key().public_numbers(), key.public_key().public_numbers())
        serial = format(leaf.serial_number, "x")

        self.assertEqual(self.serials_in_inventory(), before | {serial})
        shown = self.cli_json("request", "show", str(req["id"]))
        self.assertEqual(shown["certSerial"], serial)
        # Fetching again changes nothing: one certificate per approval.
        status, resp, data = c.post(order_url, None)
        self.assertEqual(json.loads(data)["certificate"], order["certificate"])
        self.assertEqual(self.serials_in_inventory(), before | {serial})

    def test_concurrent_fetches_after_approval_issue_once(self):
        c = self.client()
        before = self.serials_in_inventory()
        order_url, order, key, req = self.finalize_pending(c, "127.0.0.1")
        self.cli("request", "approve", str(req["id"]))

        # Several connections of the same account fetch the order at the same moment.
        clients = []
        for _ in range(8):
            d = acme.Client(self.srv, self.srv.directory_url(profile="gated"), key=c.key)
            self.addCleanup(d.conn.close)
            d.kid = c.kid
            d.nonce = d.new_nonce()
            clients.append(d)
        barrier = threading.Barrier(len(clients))
        results = [None] * len(clients)

        def fetch(i):
            barrier.wait()
            results[i] = clients[i].post(order_url, None)

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        urls = set()
        for status, resp, data in results:
            self.assertEqual(status, 200, data)
            o = json.loads(data)
            self.assertEqual(o["status"], "valid", o)
            urls.add(o["certificate"])
        self.assertEqual(len(urls), 1, urls)
        self.assertEqual(len(self.serials_in_inventory() - before), 1)

    def test_reject_makes_order_invalid_with_reason(self):
        c = self.client()
        before = self.serials_in_inventory()
        order_url, order, key, req = self.finalize_pending(c, "127.0.0.1")

        p = self.cli("request", "reject", str(req["id"]), "--reason", "not a host we run")
        self.assertIn("rejected", p.stdout)
        shown = self.cli_json("request", "show", str(req["id"]))
        self.assertEqual(shown["state"], "rejected")
        self.assertEqual(shown["reason"], "not a host we run")
        self.cli("request", "approve", str(req["id"]), want=1)
        self.assertEqual(self.cli_json("request", "show", str(req["id"]))["state"], "rejected")

        status, resp, data = c.post(order_url, None)
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        self.assertEqual(order["status"], "invalid", order)
        self.assertEqual(order["error"]["type"], ERR + "unauthorized", order)
        self.assertIn("not a host we run", order["error"]["detail"])
        self.assertNotIn("certificate", order)
        self.assertEqual(self.serials_in_inventory(), before)
        # And it stays so.
        status, resp, data = c.post(order_url, None)
        self.assertEqual(json.loads(data)["status"], "invalid")

    def test_unknown_and_bad_ids(self):
        self.cli("request", "approve", "999999", want=4)
        self.cli("request", "reject", "999999", want=4)
        self.cli("request", "show", "999999", want=4)
        p = self.cli("request", "approve", "abc", want=2)
        self.assertIn("Invalid request ID", p.stderr)
        self.cli("request", "approve", want=2)
        self.cli("request", "approve", "1", "--reason", "x", want=2)
        self.cli("request", "frobnicate", want=2)

    def test_profile_without_approval_issues_directly(self):
        c = acme.Client(self.srv, self.srv.directory_url(profile="default"))
        self.addCleanup(c.conn.close)
        c.register()
        order_url, order = self.ready_order(c, "127.0.0.1")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                              critical=False)
               .sign(key, hashes.SHA256()))
        status, resp, data = c.post(order["finalize"],
                                    {"csr": acme.b64u(csr.public_bytes(serialization.Encoding.DER))})
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "valid")
        order_id = order_url.rsplit("/", 1)[1]
        self.assertNotIn(order_id, [r["reference"] for r in self.cli_json("request", "list", "--all")])


LEGO_CONFIG = """
[Server]
StateDirectory=@STATE_DIR@

[Validation]
HTTPPort={port}
Timeout=5s

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile gated]
CA=default
Enabled=yes
AllowedIdentifiers=localhost
ApprovalRequired=yes
ACMEProfile=default

[ACMEProfile default]
Enabled=yes
RAProfile=gated
"""


@unittest.skipUnless(shutil.which("lego"), "lego is not installed")
class LegoApproval(unittest.TestCase):

    def test_lego_waits_for_the_approval(self):
        port = Server.free_port()
        with Server(config_text=LEGO_CONFIG.format(port=port)) as srv, \
                tempfile.TemporaryDirectory(prefix="lego-approval-") as tmp:
            env = dict(os.environ, LEGO_CA_CERTIFICATES=srv.ca_bundle)
            cmd = ["lego", "--server", srv.directory_url(), "--accept-tos", "--email", "lego@example.test",
                   "--path", tmp, "--http", "--http.port", f":{port}", "--cert.timeout", "60",
                   "-d", "localhost", "run"]
            lego = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            try:
                # The administrator, in the background of lego's polling: wait for the request,
                # check lego is still waiting, approve.
                deadline = time.monotonic() + 60
                pending = []
                while not pending and time.monotonic() < deadline and lego.poll() is None:
                    time.sleep(0.3)
                    p = srv.run_cli("request", "list", "--json")
                    self.assertEqual(p.returncode, 0, p.stderr)
                    pending = json.loads(p.stdout)
                self.assertEqual(len(pending), 1, f"no request was queued\n{srv.log()[-3000:]}")
                self.assertEqual(pending[0]["identifiers"], ["dns:localhost"])
                time.sleep(1)
                self.assertIsNone(lego.poll(), "lego did not wait for the approval")
                p = srv.run_cli("request", "approve", str(pending[0]["id"]))
                self.assertEqual(p.returncode, 0, p.stderr)
                out, _ = lego.communicate(timeout=90)
            finally:
                if lego.poll() is None:
                    lego.kill()
                    lego.wait()
            self.assertEqual(lego.returncode, 0, out)
            with open(os.path.join(tmp, "certificates", "localhost.crt"), "rb") as f:
                leaf = acme.load_pems(f.read())[0] if acme.HAVE_CRYPTOGRAPHY else None
            p = srv.run_cli("cert", "list", "--json")
            serials = [c["serial"] for c in json.loads(p.stdout)]
            self.assertEqual(len(serials), 1, serials)
            if leaf is not None:
                self.assertEqual(serials[0], format(leaf.serial_number, "x"))
            shown = json.loads(srv.run_cli("request", "show", str(pending[0]["id"]), "--json").stdout)
            self.assertEqual(shown["certSerial"], serials[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
