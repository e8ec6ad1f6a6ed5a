#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""ACME front end end to end against the real certfleet-server: the happy path (account, order,
http-01 answered by a small HTTP server, finalize, certificate chain, renewalInfo) and the
protocol's negative cases, each with its problem type and the store left unchanged.

Needs the Python 'cryptography' module (Debian: python3-cryptography); skipped without it."""

import base64
import datetime
import glob
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cftest import Server  # noqa: E402

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.x509.oid import ExtensionOID, NameOID
    HAVE_CRYPTOGRAPHY = True
except ImportError:
    HAVE_CRYPTOGRAPHY = False

ERR = "urn:ietf:params:acme:error:"


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def loopback_csr(key, algorithm=None):
    """base64url DER of a CSR naming IP 127.0.0.1 (what most tests order), signed by key."""
    import ipaddress
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName(
               [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
           .sign(key, algorithm or hashes.SHA256()))
    return b64u(csr.public_bytes(serialization.Encoding.DER))


def jwk_of(key):
    n = key.public_key().public_numbers()
    return {"crv": "P-256", "kty": "EC",
            "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))}


def thumbprint(key):
    j = jwk_of(key)
    canon = json.dumps({"crv": j["crv"], "kty": j["kty"], "x": j["x"], "y": j["y"]},
                       separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canon.encode()).digest())


def jws(key, url, payload, nonce=None, kid=None, jwk=True):
    protected = {"alg": "ES256", "url": url}
    if nonce is not None:
        protected["nonce"] = nonce
    if kid is not None:
        protected["kid"] = kid
    elif jwk:
        protected["jwk"] = jwk_of(key)
    p = b64u(json.dumps(protected))
    body = "" if payload is None else b64u(payload if isinstance(payload, (bytes, str))
                                           else json.dumps(payload))
    der = key.sign(f"{p}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return json.dumps({"protected": p, "payload": body, "signature": b64u(sig)})


class ChallengeServer:
    """Answers http-01 for the tokens it was given, 404 for everything else."""

    def __init__(self):
        self.tokens = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                prefix = "/.well-known/acme-challenge/"
                tok = self.path[len(prefix):] if self.path.startswith(prefix) else None
                body = outer.tokens.get(tok)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


CONFIG = """
[Server]
StateDirectory=@STATE_DIR@

[Validation]
HTTPPort={port}
Timeout=5s
{validation_extra}

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile default]
CA=default
Enabled=yes
AllowedIdentifiers=*.example.test localhost 127.0.0.0/8
KeyAlgorithms=ec rsa
Validity=47d
ExtendedKeyUsage=serverAuth
ACMEProfile=default

[RAProfile off]
CA=default
Enabled=no
AllowedIdentifiers=*
ACMEProfile=default

[ACMEProfile default]
Enabled=yes
RAProfile=default
TermsOfService=https://example.test/tos
Website=https://example.test/
MaxIdentifiers=3

[RAProfile approval]
CA=default
Enabled=yes
AllowedIdentifiers=127.0.0.0/8
ApprovalRequired=yes
ACMEProfile=approval

[ACMEProfile approval]
Enabled=yes
RAProfile=approval

[ACMEProfile nora]
Enabled=yes

[ACMEProfile offacme]
Enabled=no
RAProfile=default

[RAProfile noacme]
CA=default
Enabled=yes
AllowedIdentifiers=*.example.test

[ACMEProfile eab]
Enabled=yes
RAProfile=default
ExternalAccountRequired=yes
EABKeys=kid-1:{eab_path}

[ACMEProfile shortlived]
Enabled=yes
RAProfile=default
OrderLifetime=2s
"""

EAB_KEY = bytes(range(1, 33))


def eab_jws(hmac_key, kid, url, account_key):
    import hmac
    protected = b64u(json.dumps({"alg": "HS256", "kid": kid, "url": url}))
    payload = b64u(json.dumps(jwk_of(account_key)))
    sig = hmac.new(hmac_key, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
    return {"protected": protected, "payload": payload, "signature": b64u(sig)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChallTestSrv:
    """pebble-challtestsrv as the server's DNS resolver (every name → 127.0.0.1, TXT records on
    demand) and TLS-ALPN-01 responder; None if Debian's pebble is not installed."""

    BINARY = "pebble-challtestsrv"

    @classmethod
    def start(cls):
        if not shutil.which(cls.BINARY):
            return None
        self = cls()
        self.dns_port, self.tls_port, self.mgmt_port = free_port(), free_port(), free_port()
        self.proc = subprocess.Popen([cls.BINARY, "-dns01", f"127.0.0.1:{self.dns_port}",
                                      "-tlsalpn01", f"127.0.0.1:{self.tls_port}",
                                      "-http01", "", "-https01", "", "-defaultIPv6", "",
                                      "-management", f"127.0.0.1:{self.mgmt_port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.mgmt_port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("pebble-challtestsrv did not start")

    def post(self, path, obj):
        c = http.client.HTTPConnection("127.0.0.1", self.mgmt_port, timeout=10)
        c.request("POST", path, body=json.dumps(obj))
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200, (path, r.status)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Client:
    def __init__(self, srv, directory_url, key=None):
        self.srv = srv
        self.conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.ssl_context(),
                                                timeout=30)
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.kid = None
        self.nonce = None
        status, hdrs, body = self.request("GET", directory_url)
        assert status == 200, body
        self.dir = json.loads(body)

    def request(self, method, url, body=None, content_type="application/jose+json"):
        path = urllib.parse.urlsplit(url).path
        headers = {}
        if body is not None:
            headers["Content-Type"] = content_type
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.getheader("Replay-Nonce"):
            self.nonce = resp.getheader("Replay-Nonce")
        return resp.status, resp, data

    def new_nonce(self):
        status, resp, _ = self.request("HEAD", self.dir["newNonce"])
        assert status == 200, status
        return resp.getheader("Replay-Nonce")

    def post(self, url, payload, kid=True, nonce=None, sign_url=None, key=None, content_type=None):
        n = nonce or self.nonce or self.new_nonce()
        self.nonce = None
        body = jws(key or self.key, sign_url or url, payload, nonce=n,
                   kid=self.kid if kid else None)
        status, resp, data = self.request("POST", url, body,
                                          content_type=content_type or "application/jose+json")
        return status, resp, data

    def register(self):
        status, resp, data = self.post(self.dir["newAccount"],
                                       {"termsOfServiceAgreed": True,
                                        "contact": ["mailto:admin@example.test"]}, kid=False)
        assert status in (200, 201), data
        self.kid = resp.getheader("Location")
        return status, resp, json.loads(data)


def load_pems(data):
    """All certificates of a PEM chain (cryptography < 39 has no load_pem_x509_certificates)."""
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(block + end)
            for block in data.split(end) if b"-----BEGIN CERTIFICATE-----" in block]


def problem(data):
    return json.loads(data)


class AcmeEndToEnd(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.chal = ChallengeServer()
        cls.cts = ChallTestSrv.start()
        extra = ""
        if cls.cts:
            extra = f"Resolver=127.0.0.1:{cls.cts.dns_port}\nTLSPort={cls.cts.tls_port}"
        cls.srv = Server()
        eab_path = os.path.join(cls.srv.tmpdir, "eab-kid-1")
        with open(eab_path, "w", encoding="ascii") as f:
            f.write(b64u(EAB_KEY))
        os.chmod(eab_path, 0o600)
        cls.srv.write_config(CONFIG.format(port=cls.chal.port, eab_path=eab_path, validation_extra=extra))
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            cls.chal.close()
            if cls.cts:
                cls.cts.stop()
            raise
        cls.dir_url = cls.srv.directory_url()

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.srv.stop()
            log = cls.srv.log()
        finally:
            cls.srv.cleanup()
            cls.chal.close()
            if cls.cts:
                cls.cts.stop()
        # Sanitizer builds report memory errors in the log and the exit status.
        if rc != 0 or "runtime error" in log or "AddressSanitizer" in log:
            raise AssertionError(f"server exited with {rc}\n{log}")

    # --- helpers --------------------------------------------------------------------------------

    def db_counts(self):
        paths = glob.glob(os.path.join(self.srv.state_dir, "*.db"))
        self.assertEqual(len(paths), 1, paths)
        db = sqlite3.connect(f"file:{paths[0]}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                                "AND name NOT LIKE 'sqlite_%'")]
            # Replay records are written for every authenticated request, by design (RFC 8555
            # §6.5: a nonce is single use even when the request then fails).
            return {t: db.execute(f"SELECT COUNT(*) FROM \"{t}\"").fetchone()[0]
                    for t in tables if t != "acme_nonces"}
        finally:
            db.close()

    def assertProblem(self, status, resp, data, want_status, want_type):
        self.assertEqual(status, want_status, data)
        self.assertEqual(resp.getheader("Content-Type").split(";")[0], "application/problem+json")
        p = problem(data)
        self.assertEqual(p["type"], ERR + want_type, p)
        self.assertTrue(resp.getheader("Replay-Nonce"), "problem without Replay-Nonce")
        # RFC 8555 §7.1: the directory link on every response, problems included.
        self.assertIn('rel="index"', resp.getheader("Link") or "", "problem without Link rel=index")
        return p

    def db_query(self, sql, args=()):
        path = glob.glob(os.path.join(self.srv.state_dir, "*.db"))[0]
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def client(self):
        c = Client(self.srv, self.dir_url)
        self.addCleanup(c.conn.close)
        c.register()
        # What another process reads is what the server wrote (the row counts below rely on it).
        acct_id = int(c.kid.rsplit("/", 1)[1])
        self.assertEqual(self.db_query("SELECT status FROM acme_accounts WHERE id = ?", (acct_id,)),
                         [("valid",)], "another process does not see the server's committed writes "
                         "(its -wal file was deleted under it?)")
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

    def new_order(self, c, idents):
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": idents})
        self.assertEqual(status, 201, data)
        self.assertTrue(resp.getheader("Location"))
        return resp.getheader("Location"), json.loads(data)

    # --- the happy path -----------------------------------------------------------------------

    def test_happy_path_http01_finalize_download_ari(self):
        c = Client(self.srv, self.dir_url)
        self.addCleanup(c.conn.close)
        meta = c.dir["meta"]
        self.assertEqual(meta["termsOfService"], "https://example.test/tos")
        self.assertEqual(meta["website"], "https://example.test/")
        self.assertFalse(meta["externalAccountRequired"])
        self.assertTrue(c.dir["renewalInfo"].endswith("/renewal-info"))

        # newNonce: HEAD 200, GET 204, fresh values, no caching.
        status, resp, _ = c.request("GET", c.dir["newNonce"])
        self.assertEqual(status, 204)
        self.assertEqual(resp.getheader("Cache-Control"), "no-store")
        self.assertNotEqual(c.new_nonce(), c.new_nonce())

        status, resp, acct = c.register()
        self.assertEqual(status, 201)
        self.assertEqual(acct["status"], "valid")
        self.assertIn("/acct/", c.kid)
        self.assertIn('rel="index"', resp.getheader("Link"))
        # Same key again: the existing account, 200.
        status, resp, data = c.post(c.dir["newAccount"], {"onlyReturnExisting": True}, kid=False)
        self.assertEqual(status, 200, data)
        self.assertEqual(resp.getheader("Location"), c.kid)

        order_url, order = self.new_order(c, [{"type": "ip", "value": "127.0.0.1"}])
        self.assertEqual(order["status"], "pending")
        now = datetime.datetime.now(datetime.timezone.utc)
        # RFC 8555 §7.1.3: a pending order carries "expires", in the future.
        self.assertGreater(datetime.datetime.fromisoformat(order["expires"].replace("Z", "+00:00")), now)
        authz_url = order["authorizations"][0]
        status, resp, data = c.post(authz_url, None)
        authz = json.loads(data)
        # §7.1.4: "expires" is required for pending and valid authorizations.
        self.assertGreater(datetime.datetime.fromisoformat(authz["expires"].replace("Z", "+00:00")), now)
        self.assertIn('rel="index"', resp.getheader("Link"))
        self.assertEqual(authz["identifier"], {"type": "ip", "value": "127.0.0.1"})
        types = sorted(ch["type"] for ch in authz["challenges"])
        self.assertEqual(types, ["http-01", "tls-alpn-01"])      # RFC 8738: no dns-01 for IPs
        ch = [ch for ch in authz["challenges"] if ch["type"] == "http-01"][0]
        self.chal.tokens[ch["token"]] = f"{ch['token']}.{thumbprint(c.key)}"

        status, resp, data = c.post(ch["url"], {})
        self.assertEqual(status, 200, data)
        self.assertIn(json.loads(data)["status"], ("processing", "valid"))
        self.assertIn('rel="up"', resp.getheader("Link"))
        authz = self.poll(c, authz_url, ("pending",))
        self.assertEqual(authz["status"], "valid", authz)
        # §7.1.4: a valid authorization lists the challenge that was used, with "validated".
        self.assertEqual([x["type"] for x in authz["challenges"]], ["http-01"], authz)
        validated = datetime.datetime.fromisoformat(authz["challenges"][0]["validated"].replace("Z", "+00:00"))
        self.assertLess(abs((validated - now).total_seconds()), 120, authz)

        order = self.poll(c, order_url, ("pending",))
        self.assertEqual(order["status"], "ready", order)

        key = ec.generate_private_key(ec.SECP256R1())
        import ipaddress
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([]))
               .add_extension(x509.SubjectAlternativeName(
                   [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
               .sign(key, hashes.SHA256()))
        der = csr.public_bytes(serialization.Encoding.DER)
        status, resp, data = c.post(order["finalize"], {"csr": b64u(der)})
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        if order["status"] == "processing":
            self.assertTrue(resp.getheader("Retry-After"))
            order = self.poll(c, order_url, ("processing",))
        self.assertEqual(order["status"], "valid", order)

        status, resp, data = c.post(order["certificate"], None)
        self.assertEqual(status, 200, data)
        self.assertEqual(resp.getheader("Content-Type"), "application/pem-certificate-chain")
        links = resp.getheader("Link")
        self.assertIn('rel="up"', links)
        certs = load_pems(data)
        self.assertGreaterEqual(len(certs), 2)
        leaf = certs[0]
        san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        self.assertEqual([str(i) for i in san.get_values_for_type(x509.IPAddress)], ["127.0.0.1"])
        self.assertEqual(leaf.public_key().public_numbers(), key.public_key().public_numbers())
        self.assertEqual(leaf.issuer, certs[1].subject)

        # The issuer URL behind Link rel="up" serves the issuing chain.
        up = [p.split(">")[0].strip(" <") for p in links.split(",") if 'rel="up"' in p][0]
        status, resp, data = c.request("GET", up)
        self.assertEqual(status, 200)
        self.assertEqual(load_pems(data)[0].subject, certs[1].subject)

        # ARI for the new certificate.
        aki = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value.key_identifier
        serial = leaf.serial_number
        sb = serial.to_bytes((serial.bit_length() + 8) // 8, "big")   # DER INTEGER content octets
        cert_id = f"{b64u(aki)}.{b64u(sb)}"
        status, resp, data = c.request("GET", c.dir["renewalInfo"] + "/" + cert_id)
        self.assertEqual(status, 200, data)
        self.assertGreater(int(resp.getheader("Retry-After")), 0)
        win = json.loads(data)["suggestedWindow"]
        if hasattr(leaf, "not_valid_before_utc"):
            nb, na = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        else:
            nb = leaf.not_valid_before.replace(tzinfo=datetime.timezone.utc)
            na = leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        start = datetime.datetime.fromisoformat(win["start"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(win["end"].replace("Z", "+00:00"))
        ideal = na - (na - nb) / 3
        self.assertTrue(start < ideal < end, (start, ideal, end))

        self.check_inventory_cli(format(serial, "x"), c.kid)

        # The orders list has it.
        status, resp, data = c.post(c.kid + "/orders", None)
        self.assertEqual(status, 200, data)
        self.assertIn(order_url, json.loads(data)["orders"])

        # Replacement (RFC 9773): the order must share an identifier with the certificate
        # (§5); one order may replace it, a second is alreadyReplaced.
        before = self.db_counts()
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.2"}],
                                                        "replaces": cert_id})
        self.assertProblem(status, resp, data, 400, "malformed")
        self.assertIn("shares no identifier", json.loads(data)["detail"])
        self.assertEqual(self.db_counts(), before)
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}],
                                                        "replaces": cert_id})
        self.assertEqual(status, 201, data)
        repl = json.loads(data)
        self.assertEqual(repl["replaces"], cert_id)
        # The authorization is reused, so the order is ready at once; finalizing records the link.
        self.assertEqual(repl["status"], "ready", repl)
        status, resp, data = c.post(repl["finalize"], {"csr": b64u(der)})
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "valid", data)
        new_serial = json.loads(data)["certificate"].rsplit("/", 1)[1]
        self.assertEqual(self.db_query("SELECT replaced_by FROM inventory WHERE serial = ?",
                                       (format(serial, "x"),)), [(new_serial,)])
        before = self.db_counts()
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}],
                                                        "replaces": cert_id})
        self.assertProblem(status, resp, data, 409 if status == 409 else 400, "alreadyReplaced")
        self.assertEqual(self.db_counts(), before)

        # An admin marks it for renewal: the window moves into the past.
        cli = self.srv.run_cli("cert", "renew-now", format(serial, "x"))
        self.assertEqual(cli.returncode, 0, cli.stderr)
        status, resp, data = c.request("GET", c.dir["renewalInfo"] + "/" + cert_id)
        self.assertEqual(status, 200, data)
        end = datetime.datetime.fromisoformat(json.loads(data)["suggestedWindow"]["end"].replace("Z", "+00:00"))
        self.assertLess(end, datetime.datetime.now(datetime.timezone.utc))

        # Revocation by the certificate's own key; ARI keeps saying "renew now".
        status, resp, data = c.post(c.dir["revokeCert"],
                                    {"certificate": b64u(leaf.public_bytes(serialization.Encoding.DER)),
                                     "reason": 4}, kid=False, key=key)
        self.assertEqual(status, 200, data)
        status, resp, data = c.post(c.dir["revokeCert"],
                                    {"certificate": b64u(leaf.public_bytes(serialization.Encoding.DER))})
        self.assertProblem(status, resp, data, 400, "alreadyRevoked")
        status, resp, data = c.request("GET", c.dir["renewalInfo"] + "/" + cert_id)
        self.assertEqual(status, 200, data)
        end = datetime.datetime.fromisoformat(json.loads(data)["suggestedWindow"]["end"].replace("Z", "+00:00"))
        self.assertLess(end, datetime.datetime.now(datetime.timezone.utc))
        # The inventory, as another process sees it, says revoked with reason superseded (4).
        self.assertEqual(self.db_query("SELECT status, revocation_reason FROM inventory WHERE serial = ?",
                                       (format(serial, "x"),)), [("revoked", 4)])

    def check_inventory_cli(self, serial, kid):
        """certfleet-server cert list [--expiring] [--profile] [--json] and cert show read what the
        running server issued."""
        def listed(*args):
            p = self.srv.run_cli("cert", "list", "--json", *args)
            self.assertEqual(p.returncode, 0, p.stderr)
            return {c["serial"]: c for c in json.loads(p.stdout)}

        everything = listed()
        self.assertIn(serial, everything)
        c = everything[serial]
        self.assertEqual((c["status"], c["protocol"], c["protocolProfile"], c["raProfile"]),
                         ("valid", "acme", "default", "default"), c)
        self.assertEqual(c["identifiers"], ["ip:127.0.0.1"], c)
        self.assertEqual(c["accountId"], int(kid.rsplit("/", 1)[1]), c)
        self.assertIn(serial, listed("--profile", "default"))
        self.assertNotIn(serial, listed("--profile", "approval"))
        # Validity=47d: not expiring within a week, expiring within two months.
        self.assertNotIn(serial, listed("--expiring", "7d"))
        self.assertIn(serial, listed("--expiring", "60d"))
        p = self.srv.run_cli("cert", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(serial, p.stdout)
        p = self.srv.run_cli("cert", "show", serial)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(serial, p.stdout)
        self.assertIn("ip:127.0.0.1", p.stdout)
        p = self.srv.run_cli("cert", "show", serial, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        shown = json.loads(p.stdout)
        self.assertEqual((shown["serial"], shown["status"]), (serial, "valid"))
        self.assertNotEqual(self.srv.run_cli("cert", "show", "00ff00ff").returncode, 0)

    # --- negative protocol tests ----------------------------------------------------------------

    def test_dns_identifiers_are_lower_cased(self):
        c = self.client()
        order_url, order = self.new_order(c, [{"type": "dns", "value": "MiXeD.Example.TEST"}])
        self.assertEqual(order["identifiers"], [{"type": "dns", "value": "mixed.example.test"}])
        status, resp, data = c.post(order["authorizations"][0], None)
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["identifier"], {"type": "dns", "value": "mixed.example.test"})
        # The same name in another case is the same identifier: the order has one, not two.
        order_url, order = self.new_order(c, [{"type": "dns", "value": "b.example.test"},
                                              {"type": "dns", "value": "B.EXAMPLE.TEST"}])
        self.assertEqual(order["identifiers"], [{"type": "dns", "value": "b.example.test"}])
        self.assertEqual(len(order["authorizations"]), 1)

        # A CSR may spell the names in any case; the certificate carries the order's spelling.
        if not self.cts:
            self.skipTest("pebble-challtestsrv not installed (resolves names for http-01)")
        order_url, order = self.new_order(c, [{"type": "dns", "value": "LocalHost"}])
        self.validate_http01(c, order)
        order = self.poll(c, order_url, ("pending",))
        self.assertEqual(order["status"], "ready", order)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LOCALHOST")]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("LocalHost")]), critical=False)
               .sign(key, hashes.SHA256()))
        status, resp, data = c.post(order["finalize"], {"csr": b64u(csr.public_bytes(serialization.Encoding.DER))})
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        self.assertEqual(order["status"], "valid", order)
        status, resp, data = c.post(order["certificate"], None)
        leaf = load_pems(data)[0]
        san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["localhost"])

    def test_expired_order_is_invalid_with_an_error(self):
        c = Client(self.srv, self.srv.directory_url("shortlived"))
        self.addCleanup(c.conn.close)
        c.register()
        order_url, order = self.new_order(c, [{"type": "ip", "value": "127.0.0.1"}])
        self.assertEqual(order["status"], "pending")
        self.assertNotIn("error", order)
        time.sleep(2.5)
        status, resp, data = c.post(order_url, None)
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        self.assertEqual(order["status"], "invalid")
        self.assertEqual(order["error"]["type"], ERR + "unauthorized", order)
        self.assertIn("expired at " + order["expires"], order["error"]["detail"])
        # Finalizing it now is refused, and nothing is issued.
        before = self.db_counts()
        status, resp, data = c.post(order["finalize"],
                                    {"csr": loopback_csr(ec.generate_private_key(ec.SECP256R1()))})
        self.assertProblem(status, resp, data, 403, "orderNotReady")
        self.assertEqual(self.db_counts(), before)

    def test_new_account_with_existing_key_returns_it(self):
        c = self.client()
        before = self.db_counts()
        # RFC 8555 §7.3.1: 200 and the existing account's URL in Location, nothing created.
        status, resp, data = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, kid=False)
        self.assertEqual(status, 200, data)
        self.assertEqual(resp.getheader("Location"), c.kid)
        self.assertEqual(json.loads(data)["status"], "valid")
        self.assertEqual(self.db_counts(), before)

    def test_replayed_nonce_is_bad_nonce(self):
        c = self.client()
        nonce = c.new_nonce()
        status, _, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}]},
                                 nonce=nonce)
        self.assertEqual(status, 201, data)
        before = self.db_counts()
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "b.example.test"}]},
                                    nonce=nonce)
        self.assertProblem(status, resp, data, 400, "badNonce")
        self.assertEqual(self.db_counts(), before)

    def test_replayed_nonce_on_challenge_and_finalize_is_bad_nonce(self):
        # These handlers record the nonce inside their own transaction (or, when they fail,
        # in one of its own): a replay must still be refused and change nothing.
        c = self.client()
        status, _, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "r.example.test"}]})
        self.assertEqual(status, 201, data)
        order = json.loads(data)
        status, _, data = c.post(order["authorizations"][0], None)
        ch = [x for x in json.loads(data)["challenges"] if x["type"] == "http-01"][0]

        nonce = c.new_nonce()
        status, resp, data = c.post(ch["url"], {}, nonce=nonce)
        self.assertEqual(status, 200, data)
        before = self.db_counts()
        status, resp, data = c.post(ch["url"], {}, nonce=nonce)
        self.assertProblem(status, resp, data, 400, "badNonce")
        self.assertEqual(self.db_counts(), before)

        # Finalize on an order that is not ready fails, and still uses up its nonce.
        nonce = c.new_nonce()
        status, resp, data = c.post(order["finalize"], {"csr": b64u(b"x")}, nonce=nonce)
        self.assertEqual(status // 100, 4, data)
        self.assertNotIn("badNonce", json.loads(data)["type"])
        status, resp, data = c.post(order["finalize"], {"csr": b64u(b"x")}, nonce=nonce)
        self.assertProblem(status, resp, data, 400, "badNonce")

    def test_wrong_url_is_unauthorized(self):
        c = self.client()
        before = self.db_counts()
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}]},
                                    sign_url=c.dir["newAccount"])
        self.assertProblem(status, resp, data, 403, "unauthorized")
        self.assertEqual(self.db_counts(), before)

    def test_unknown_kid_is_account_does_not_exist(self):
        c = self.client()
        c.kid = c.kid.rsplit("/", 1)[0] + "/987654"
        before = self.db_counts()
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}]})
        self.assertProblem(status, resp, data, 400, "accountDoesNotExist")
        self.assertEqual(self.db_counts(), before)

    def test_oversized_body_is_refused(self):
        c = self.client()
        before = self.db_counts()
        body = jws(c.key, c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}],
                                              "pad": "x" * (128 * 1024)}, nonce=c.new_nonce(), kid=c.kid)
        # Over the limit (64 KiB) but within the layer's hard cap: refused as an ACME problem
        # document with a fresh nonce (RFC 8555 §6.5, §6.7).
        status, resp, data = c.request("POST", c.dir["newOrder"], body=body)
        self.assertProblem(status, resp, data, 413, "malformed")
        self.assertTrue(resp.getheader("Replay-Nonce"))
        self.assertEqual(self.db_counts(), before)

        # Far beyond it: the HTTP layer answers from the Content-Length alone and never reads it.
        c.conn.close()
        conn = http.client.HTTPSConnection("127.0.0.1", c.srv.port, context=c.srv.ssl_context(),
                                           timeout=30)
        conn.putrequest("POST", urllib.parse.urlsplit(c.dir["newOrder"]).path)
        conn.putheader("Content-Type", "application/jose+json")
        conn.putheader("Content-Length", str(16 * 1024 * 1024))
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 413)
        conn.close()
        self.assertEqual(self.db_counts(), before)

    def test_malformed_json_is_malformed(self):
        c = self.client()
        before = self.db_counts()
        status, resp, data = c.request("POST", c.dir["newOrder"], body="{\"protected\": ")
        self.assertProblem(status, resp, data, 400, "malformed")
        # A valid JWS whose payload is not JSON.
        status, resp, data = c.post(c.dir["newOrder"], "{not json")
        self.assertProblem(status, resp, data, 400, "malformed")
        # Wrong content type.
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": []}, content_type="application/json")
        self.assertProblem(status, resp, data, 415, "malformed")
        self.assertEqual(self.db_counts(), before)

    def test_rejected_orders_change_nothing(self):
        c = self.client()
        before = self.db_counts()
        cases = [
            ([{"type": "dns", "value": "not-allowed.other"}], 400, "rejectedIdentifier"),
            ([{"type": "email", "value": "a@example.test"}], 400, "unsupportedIdentifier"),
            ([{"type": "dns", "value": f"h{i}.example.test"} for i in range(4)], 400, "rejectedIdentifier"),
            ([{"type": "dns", "value": "x" * 300 + ".example.test"}], 400, "rejectedIdentifier"),
        ]
        for idents, st, typ in cases:
            status, resp, data = c.post(c.dir["newOrder"], {"identifiers": idents})
            self.assertProblem(status, resp, data, st, typ)
        self.assertEqual(self.db_counts(), before)

    def test_requested_validity_beyond_profile_is_refused(self):
        c = self.client()
        before = self.db_counts()
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        far = (now + datetime.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}],
                                                        "notAfter": far})
        self.assertProblem(status, resp, data, 400, "malformed")
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}],
                                                        "notAfter": "tomorrow"})
        self.assertProblem(status, resp, data, 400, "malformed")
        self.assertEqual(self.db_counts(), before)
        ok = (now + datetime.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}],
                                                        "notAfter": ok})
        self.assertEqual(status, 201, data)
        self.assertEqual(json.loads(data)["notAfter"], ok)

    def validate_http01(self, c, order):
        status, resp, data = c.post(order["authorizations"][0], None)
        authz = json.loads(data)
        ch = [ch for ch in authz["challenges"] if ch["type"] == "http-01"][0]
        self.chal.tokens[ch["token"]] = f"{ch['token']}.{thumbprint(c.key)}"
        status, resp, data = c.post(ch["url"], {})
        self.assertEqual(status, 200, data)
        authz = self.poll(c, order["authorizations"][0], ("pending",))
        self.assertEqual(authz["status"], "valid", authz)

    def issue_ip_cert(self, c, **extra):
        """Order, validate and finalize 127.0.0.1 for c; returns (order, leaf, leaf key)."""
        import ipaddress
        status, resp, data = c.post(c.dir["newOrder"], dict(identifiers=[{"type": "ip", "value": "127.0.0.1"}],
                                                            **extra))
        self.assertEqual(status, 201, data)
        order_url, order = resp.getheader("Location"), json.loads(data)
        if order["status"] == "pending":
            self.validate_http01(c, order)
            order = self.poll(c, order_url, ("pending",))
        self.assertEqual(order["status"], "ready", order)
        key = ec.generate_private_key(ec.SECP256R1())
        status, resp, data = c.post(order["finalize"], {"csr": loopback_csr(key)})
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        self.assertEqual(order["status"], "valid", order)
        status, resp, data = c.post(order["certificate"], None)
        self.assertEqual(status, 200, data)
        return order, load_pems(data)[0], key

    def test_requested_validity_is_the_certificates(self):
        c = self.client()
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        nb, na = now + datetime.timedelta(hours=1), now + datetime.timedelta(days=10)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        order, leaf, _ = self.issue_ip_cert(c, notBefore=nb.strftime(fmt), notAfter=na.strftime(fmt))
        if hasattr(leaf, "not_valid_before_utc"):
            got_nb, got_na = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        else:
            got_nb = leaf.not_valid_before.replace(tzinfo=datetime.timezone.utc)
            got_na = leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        self.assertEqual((got_nb, got_na), (nb, na))
        # Without a request, the profile's validity (47 days).
        order, leaf, _ = self.issue_ip_cert(c)
        if hasattr(leaf, "not_valid_before_utc"):
            days = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() / 86400
        else:
            days = (leaf.not_valid_after - leaf.not_valid_before).total_seconds() / 86400
        self.assertAlmostEqual(days, 47, delta=0.1)

    def test_concurrent_finalize_issues_once(self):
        # Issuance and the order's move to valid share one transaction: of two finalize requests
        # racing for one ready order, one gets the certificate and the other orderNotReady.
        import ipaddress
        c = self.client()
        twin = Client(self.srv, self.dir_url, key=c.key)
        self.addCleanup(twin.conn.close)
        twin.kid = c.kid
        order_url, order = self.new_order(c, [{"type": "ip", "value": "127.0.0.1"}])
        self.validate_http01(c, order)
        self.assertEqual(self.poll(c, order_url, ("pending",))["status"], "ready")
        key = ec.generate_private_key(ec.SECP256R1())
        payload = {"csr": loopback_csr(key)}
        nonces = [c.new_nonce(), twin.new_nonce()]
        inventory_before = self.db_query("SELECT COUNT(*) FROM inventory")[0][0]
        start, results = threading.Barrier(2), [None, None]

        def finalize(i, client):
            start.wait()
            results[i] = client.post(order["finalize"], payload, nonce=nonces[i])

        threads = [threading.Thread(target=finalize, args=(i, cl)) for i, cl in enumerate((c, twin))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(r[0] for r in results), [200, 403], [r[2] for r in results])
        won = [r for r in results if r[0] == 200][0]
        lost = [r for r in results if r[0] == 403][0]
        self.assertProblem(*lost, 403, "orderNotReady")
        self.assertEqual(json.loads(won[2])["status"], "valid", won[2])
        self.assertEqual(self.db_query("SELECT COUNT(*) FROM inventory")[0][0], inventory_before + 1)
        serial = self.db_query("SELECT cert_serial FROM acme_orders WHERE id = ?",
                               (int(order_url.rsplit("/", 1)[1]),))[0][0]
        self.assertEqual(self.db_query("SELECT COUNT(*) FROM inventory WHERE serial = ?", (serial,)),
                         [(1,)])

    def test_finalize_refuses_key_outside_policy_and_account_key(self):
        import ipaddress
        from cryptography.hazmat.primitives.asymmetric import rsa
        c = self.client()
        order_url, order = self.new_order(c, [{"type": "ip", "value": "127.0.0.1"}])
        self.validate_http01(c, order)
        order = self.poll(c, order_url, ("pending",))
        self.assertEqual(order["status"], "ready", order)

        before = self.db_counts()
        # RSA 1024 is below the profile's minimum: badPublicKey.
        status, resp, data = c.post(order["finalize"], {"csr": loopback_csr(rsa.generate_private_key(65537, 1024))})
        self.assertProblem(status, resp, data, 400, "badPublicKey")
        # The account key as the certificate key: badCSR (RFC 8555 §11.1).
        status, resp, data = c.post(order["finalize"], {"csr": loopback_csr(c.key)})
        self.assertProblem(status, resp, data, 400, "badCSR")
        # Not DER at all.
        status, resp, data = c.post(order["finalize"], {"csr": b64u(b"not a csr")})
        self.assertProblem(status, resp, data, 400, "badCSR")
        self.assertEqual(self.db_counts(), before)
        # The order is still ready, and a good CSR then succeeds.
        status, resp, data = c.post(order_url, None)
        self.assertEqual(json.loads(data)["status"], "ready", data)
        status, resp, data = c.post(order["finalize"], {"csr": loopback_csr(ec.generate_private_key(ec.SECP256R1()))})
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "valid", data)

    def test_revocation_and_replacement_by_others_are_refused(self):
        owner, stranger = self.client(), self.client()
        order, leaf, leaf_key = self.issue_ip_cert(owner)
        der = b64u(leaf.public_bytes(serialization.Encoding.DER))
        serial = format(leaf.serial_number, "x")
        aki = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value.key_identifier
        sb = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 8) // 8, "big")
        cert_id = f"{b64u(aki)}.{b64u(sb)}"

        before = self.db_counts()
        status, resp, data = stranger.post(stranger.dir["revokeCert"], {"certificate": der})
        self.assertProblem(status, resp, data, 403, "unauthorized")
        # A key that is neither the account's nor the certificate's, by jwk.
        status, resp, data = stranger.post(stranger.dir["revokeCert"], {"certificate": der}, kid=False)
        self.assertProblem(status, resp, data, 403, "unauthorized")
        for reason in (7, 11, -1, "1"):
            status, resp, data = owner.post(owner.dir["revokeCert"], {"certificate": der, "reason": reason})
            self.assertProblem(status, resp, data, 400, "badRevocationReason")
        status, resp, data = stranger.post(stranger.dir["newOrder"], {
            "identifiers": [{"type": "ip", "value": "127.0.0.1"}], "replaces": cert_id})
        self.assertProblem(status, resp, data, 403, "unauthorized")
        self.assertEqual(self.db_counts(), before)
        self.assertEqual(self.db_query("SELECT status FROM inventory WHERE serial = ?", (serial,)), [("valid",)])

        # The owner revokes with its account key (kid), reason keyCompromise.
        status, resp, data = owner.post(owner.dir["revokeCert"], {"certificate": der, "reason": 1})
        self.assertEqual(status, 200, data)
        self.assertEqual(self.db_query("SELECT status, revocation_reason FROM inventory WHERE serial = ?",
                                       (serial,)), [("revoked", 1)])

        # RFC 8555 §7.6: an account holding valid authorizations for every identifier of the
        # certificate may revoke it too, once it has them.
        _, second, _ = self.issue_ip_cert(owner)
        der2 = b64u(second.public_bytes(serialization.Encoding.DER))
        serial2 = format(second.serial_number, "x")
        self.issue_ip_cert(stranger)            # now the stranger holds a valid authz for 127.0.0.1
        status, resp, data = stranger.post(stranger.dir["revokeCert"], {"certificate": der2, "reason": 3})
        self.assertEqual(status, 200, data)
        self.assertEqual(self.db_query("SELECT status, revocation_reason FROM inventory WHERE serial = ?",
                                       (serial2,)), [("revoked", 3)])

    def test_authorization_deactivation_invalidates_order(self):
        c = self.client()
        order_url, order = self.new_order(c, [{"type": "dns", "value": "deact.example.test"}])
        authz_url = order["authorizations"][0]
        before = self.db_counts()
        status, resp, data = c.post(authz_url, {"status": "valid"})
        self.assertProblem(status, resp, data, 400, "malformed")
        self.assertEqual(self.db_counts(), before)
        status, resp, data = c.post(authz_url, {"status": "deactivated"})
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "deactivated")
        status, resp, data = c.post(order_url, None)
        order = json.loads(data)
        self.assertEqual(order["status"], "invalid", order)
        self.assertTrue(order["error"]["type"].startswith(ERR), order)
        # Deactivated is final, and it is not reused by a new order.
        status, resp, data = c.post(authz_url, {"status": "deactivated"})
        self.assertProblem(status, resp, data, 400, "malformed")
        _, again = self.new_order(c, [{"type": "dns", "value": "deact.example.test"}])
        self.assertNotEqual(again["authorizations"][0], authz_url)
        self.assertEqual(again["status"], "pending")

    def test_wildcard_dns01_and_tls_alpn01(self):
        if not self.cts:
            self.skipTest("pebble-challtestsrv not installed")
        c = self.client()
        order_url, order = self.new_order(c, [{"type": "dns", "value": "*.example.test"},
                                              {"type": "dns", "value": "tls.example.test"}])
        for authz_url in order["authorizations"]:
            status, resp, data = c.post(authz_url, None)
            authz = json.loads(data)
            key_authz = lambda ch: f"{ch['token']}.{thumbprint(c.key)}"   # noqa: E731
            if authz.get("wildcard"):
                self.assertEqual(authz["identifier"], {"type": "dns", "value": "example.test"})
                self.assertEqual([ch["type"] for ch in authz["challenges"]], ["dns-01"])
                ch = authz["challenges"][0]
                digest = b64u(hashlib.sha256(key_authz(ch).encode()).digest())
                self.cts.post("/set-txt", {"host": "_acme-challenge.example.test.", "value": digest})
            else:
                ch = [ch for ch in authz["challenges"] if ch["type"] == "tls-alpn-01"][0]
                self.cts.post("/add-tlsalpn01", {"host": "tls.example.test", "content": key_authz(ch)})
            status, resp, data = c.post(ch["url"], {})
            self.assertEqual(status, 200, data)
        for authz_url in order["authorizations"]:
            authz = self.poll(c, authz_url, ("pending",))
            self.assertEqual(authz["status"], "valid", authz)
        order = self.poll(c, order_url, ("pending",))
        self.assertEqual(order["status"], "ready", order)

        key = ec.generate_private_key(ec.SECP256R1())
        def csr_for(names):
            return b64u((x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
                         .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                        critical=False)
                         .sign(key, hashes.SHA256())).public_bytes(serialization.Encoding.DER))
        # Names must match exactly: the wildcard's base name is not the wildcard.
        before = self.db_counts()
        status, resp, data = c.post(order["finalize"], {"csr": csr_for(["example.test", "tls.example.test"])})
        self.assertProblem(status, resp, data, 400, "badCSR")
        status, resp, data = c.post(order["finalize"], {"csr": csr_for(["*.example.test"])})
        self.assertProblem(status, resp, data, 400, "badCSR")
        self.assertEqual(self.db_counts(), before)
        status, resp, data = c.post(order["finalize"], {"csr": csr_for(["tls.example.test", "*.example.test"])})
        self.assertEqual(status, 200, data)
        order = json.loads(data)
        self.assertEqual(order["status"], "valid", order)
        status, resp, data = c.post(order["certificate"], None)
        leaf = load_pems(data)[0]
        san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        self.assertEqual(sorted(san.get_values_for_type(x509.DNSName)), ["*.example.test", "tls.example.test"])

    def test_approval_pending_order_stays_processing(self):
        c = Client(self.srv, self.srv.directory_url(profile="approval"))
        self.addCleanup(c.conn.close)
        c.register()
        order_url, order = self.new_order(c, [{"type": "ip", "value": "127.0.0.1"}])
        self.validate_http01(c, order)
        order = self.poll(c, order_url, ("pending",))
        self.assertEqual(order["status"], "ready", order)
        key = ec.generate_private_key(ec.SECP256R1())
        before = self.db_counts()
        status, resp, data = c.post(order["finalize"], {"csr": loopback_csr(key)})
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "processing")
        self.assertGreater(int(resp.getheader("Retry-After")), 0)
        status, resp, data = c.post(order_url, None)
        self.assertEqual(json.loads(data)["status"], "processing")
        self.assertTrue(resp.getheader("Retry-After"))
        # Nothing was issued.
        self.assertEqual(self.db_counts()["inventory"], before["inventory"])
        # A second finalize is refused.
        status, resp, data = c.post(order["finalize"], {"csr": loopback_csr(key)})
        self.assertProblem(status, resp, data, 403, "orderNotReady")

    def test_challenge_not_served_is_invalid(self):
        c = self.client()
        order_url, order = self.new_order(c, [{"type": "dns", "value": "localhost"}])
        status, resp, data = c.post(order["authorizations"][0], None)
        authz = json.loads(data)
        ch = [ch for ch in authz["challenges"] if ch["type"] == "http-01"][0]
        # Answered, but the token is not served: the validator gets a 404.
        status, resp, data = c.post(ch["url"], {})
        self.assertEqual(status, 200, data)
        authz = self.poll(c, order["authorizations"][0], ("pending",))
        self.assertEqual(authz["status"], "invalid", authz)
        status, resp, data = c.post(ch["url"], None)
        chal = json.loads(data)
        self.assertEqual(chal["status"], "invalid")
        self.assertIn(chal["error"]["type"], (ERR + "incorrectResponse", ERR + "connection",
                                               ERR + "unauthorized"), chal)
        self.assertNotIn("validated", chal)
        order = self.poll(c, order_url, ())
        self.assertEqual(order["status"], "invalid")
        # RFC 8555 §7.1.3: the order says why it is invalid.
        self.assertTrue(order["error"]["type"].startswith(ERR), order)

        # Finalizing it is orderNotReady and changes nothing.
        before = self.db_counts()
        status, resp, data = c.post(order["finalize"], {"csr": "AAAA"})
        self.assertProblem(status, resp, data, 403, "orderNotReady")
        self.assertEqual(self.db_counts(), before)

    def test_profiles_unknown_and_disabled(self):
        c = Client(self.srv, self.dir_url)
        self.addCleanup(c.conn.close)
        status, resp, data = c.request("GET", self.srv.directory_url(profile="nope"))
        self.assertProblem(status, resp, data, 404, "malformed")
        status, resp, data = c.request("GET", self.srv.directory_url(ra_profile="off"))
        self.assertProblem(status, resp, data, 403, "unauthorized")
        # An enabled ACME profile without a default RA profile, a disabled ACME profile, and
        # an RA profile that does not enable ACME: each a problem document, never a 500.
        for kind, name, detail in (("profile", "nora", "no default RA profile"),
                                   ("profile", "offacme", "disabled"),
                                   ("ra_profile", "noacme", "does not enable ACME")):
            status, resp, data = c.request("GET", self.srv.directory_url(**{kind: name}))
            p = self.assertProblem(status, resp, data, 403, "unauthorized")
            self.assertIn(detail, p["detail"])
        status, resp, data = c.request("GET", self.srv.directory_url(ra_profile="nosuch"))
        self.assertProblem(status, resp, data, 404, "malformed")
        # The RA-profile URL form of an enabled profile works, with its own URLs.
        status, resp, data = c.request("GET", self.srv.directory_url(ra_profile="default"))
        self.assertEqual(status, 200, data)
        self.assertIn("/raProfile/default/", json.loads(data)["newOrder"])

    def test_external_account_binding(self):
        url = self.srv.directory_url(profile="eab")
        c = Client(self.srv, url)
        self.addCleanup(c.conn.close)
        self.assertTrue(c.dir["meta"]["externalAccountRequired"])
        before = self.db_counts()
        status, resp, data = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, kid=False)
        self.assertProblem(status, resp, data, status, "externalAccountRequired")
        self.assertIn(status, (400, 403))
        wrong = eab_jws(bytes(32), "kid-1", c.dir["newAccount"], c.key)
        status, resp, data = c.post(c.dir["newAccount"], {"externalAccountBinding": wrong}, kid=False)
        self.assertProblem(status, resp, data, 403, "unauthorized")
        unknown = eab_jws(EAB_KEY, "kid-2", c.dir["newAccount"], c.key)
        status, resp, data = c.post(c.dir["newAccount"], {"externalAccountBinding": unknown}, kid=False)
        self.assertProblem(status, resp, data, 403, "unauthorized")
        # Bound to another account key.
        other = eab_jws(EAB_KEY, "kid-1", c.dir["newAccount"], ec.generate_private_key(ec.SECP256R1()))
        status, resp, data = c.post(c.dir["newAccount"], {"externalAccountBinding": other}, kid=False)
        self.assertProblem(status, resp, data, 400, "malformed")
        self.assertEqual(self.db_counts(), before)
        good = eab_jws(EAB_KEY, "kid-1", c.dir["newAccount"], c.key)
        status, resp, data = c.post(c.dir["newAccount"], {"externalAccountBinding": good}, kid=False)
        self.assertEqual(status, 201, data)
        self.assertIn("/protocols/acme/eab/acct/", resp.getheader("Location"))
        # Accounts are per profile: the same key is unknown under "default".
        d = Client(self.srv, self.dir_url, key=c.key)
        self.addCleanup(d.conn.close)
        status, resp, data = d.post(d.dir["newAccount"], {"onlyReturnExisting": True}, kid=False)
        self.assertProblem(status, resp, data, 400, "accountDoesNotExist")

    def test_account_update_and_deactivation(self):
        c = self.client()
        status, resp, data = c.post(c.kid, {"contact": ["mailto:other@example.test"]})
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["contact"], ["mailto:other@example.test"])
        before = self.db_counts()
        status, resp, data = c.post(c.kid, {"contact": [f"mailto:a{i}@example.test" for i in range(11)]})
        self.assertProblem(status, resp, data, 400, "invalidContact")
        status, resp, data = c.post(c.kid, {"contact": ["tel:+123"]})
        self.assertProblem(status, resp, data, 400, "unsupportedContact")
        self.assertEqual(self.db_counts(), before)
        # RFC 8555 §7.3.6: deactivation cancels the account's pending orders.
        pending_url, _ = self.new_order(c, [{"type": "dns", "value": "pending.example.test"}])
        pending_id = int(pending_url.rsplit("/", 1)[1])
        status, resp, data = c.post(c.kid, {"status": "deactivated"})
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["status"], "deactivated")
        rows = self.db_query("SELECT status, error FROM acme_orders WHERE id = ?", (pending_id,))
        self.assertEqual(rows[0][0], "invalid", rows)
        self.assertIn(ERR + "unauthorized", rows[0][1])
        before = self.db_counts()
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}]})
        self.assertProblem(status, resp, data, 403, "unauthorized")
        status, resp, data = c.post(c.kid, None)
        self.assertProblem(status, resp, data, 403, "unauthorized")
        status, resp, data = c.post(c.kid, {"contact": ["mailto:back@example.test"]})
        self.assertProblem(status, resp, data, 403, "unauthorized")
        status, resp, data = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, kid=False)
        self.assertProblem(status, resp, data, 403, "unauthorized")
        self.assertEqual(self.db_counts(), before)

    def test_terms_of_service_update_is_ignored(self):
        # RFC 8555 §7.3.2: the server MUST ignore updates to termsOfServiceAgreed.
        c = self.client()
        acct_id = int(c.kid.rsplit("/", 1)[1])
        tos = self.db_query("SELECT tos_agreed FROM acme_accounts WHERE id = ?", (acct_id,))
        for value in (not bool(tos[0][0]), "yes", None):
            status, resp, data = c.post(c.kid, {"termsOfServiceAgreed": value})
            self.assertEqual(status, 200, data)
            self.assertEqual(json.loads(data)["termsOfServiceAgreed"], bool(tos[0][0]), value)
            self.assertEqual(self.db_query("SELECT tos_agreed FROM acme_accounts WHERE id = ?",
                                           (acct_id,)), tos, value)

    def test_orders_list_pages_and_leaves_out_invalid_orders(self):
        # RFC 8555 §7.1.2.1: pending orders listed, invalid ones left out, Link rel="next" pages.
        c = self.client()
        invalid_url, invalid = self.new_order(c, [{"type": "dns", "value": "gone.example.test"}])
        status, resp, data = c.post(invalid["authorizations"][0], {"status": "deactivated"})
        self.assertEqual(status, 200, data)
        page_size = 100
        made = [self.new_order(c, [{"type": "dns", "value": f"list{i}.example.test"}])[0]
                for i in range(page_size + 3)]
        listed, pages, url = [], [], c.kid + "/orders"
        while url:
            status, resp, data = c.post(url, None)
            self.assertEqual(status, 200, data)
            page = json.loads(data)["orders"]
            pages.append(len(page))
            listed += page
            links = [v for k, v in resp.getheaders() if k.lower() == "link" and 'rel="next"' in v]
            self.assertLessEqual(len(links), 1, links)
            url = links[0].split(">", 1)[0].lstrip("<") if links else None
            self.assertLess(len(pages), 5, "the next links never end")
        self.assertEqual(pages, [page_size, 3])
        self.assertEqual(listed, made)
        self.assertNotIn(invalid_url, listed)
        # A page URL is an account resource like the list itself: another account gets nothing.
        other = self.client()
        status, resp, data = other.post(c.kid + "/orders/" + made[0].rsplit("/", 1)[1], None)
        self.assertProblem(status, resp, data, 403, "unauthorized")

    def test_key_change(self):
        c = self.client()
        new_key = ec.generate_private_key(ec.SECP256R1())
        inner = json.loads(jws(new_key, c.dir["keyChange"], {"account": c.kid, "oldKey": jwk_of(c.key)}))
        status, resp, data = c.post(c.dir["keyChange"], inner)
        self.assertEqual(status, 200, data)
        # The old key no longer authenticates; the new one does.
        status, resp, data = c.post(c.kid, None)
        self.assertProblem(status, resp, data, 400, "malformed")
        c.key = new_key
        status, resp, data = c.post(c.kid, None)
        self.assertEqual(status, 200, data)


class SilentPeer:
    """Accepts http-01 connections and never answers: a validation against it hangs until the
    validator's timeout."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


SLOW_CONFIG = """
[Server]
StateDirectory=@STATE_DIR@
Workers=1

[Validation]
HTTPPort={port}
Timeout=10s

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile default]
CA=default
AllowedIdentifiers=localhost 127.0.0.0/8
ACMEProfile=default

[ACMEProfile default]
RAProfile=default
"""


class ValidationOffTheEventLoop(unittest.TestCase):
    """With one event loop, a hanging validation must not stall anything else: the validator
    pool does the slow work, and the timeout turns it into a connection error."""

    def test_hanging_validation_does_not_block_requests(self):
        peer = SilentPeer()
        self.addCleanup(peer.close)
        srv = Server(config_text=SLOW_CONFIG.format(port=peer.port))
        self.addCleanup(srv.cleanup)
        srv.start()
        c = Client(srv, srv.directory_url())
        self.addCleanup(c.conn.close)
        status, resp, data = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True}, kid=False)
        self.assertEqual(status, 201, data)
        c.kid = resp.getheader("Location")
        status, resp, data = c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
        self.assertEqual(status, 201, data)
        order = json.loads(data)
        status, resp, data = c.post(order["authorizations"][0], None)
        ch = [x for x in json.loads(data)["challenges"] if x["type"] == "http-01"][0]
        started = time.monotonic()
        status, resp, data = c.post(ch["url"], {})
        self.assertEqual(status, 200, data)
        # The POST holds its reply for at most ChallengeResponseWait= (1 s by default), never
        # until the validation ends: had it waited that long, it would report the outcome.
        self.assertEqual(json.loads(data)["status"], "processing", data)
        self.assertTrue(resp.getheader("Retry-After"))

        # Causal, not timed: once the validator holds a connection to the silent peer, the single
        # event loop must serve requests while that validation is still pending.
        deadline = time.monotonic() + 30
        while not peer.conns and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(peer.conns, "the validator never connected to the peer")
        other = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.ssl_context(), timeout=60)
        self.addCleanup(other.close)
        for _ in range(5):
            other.request("GET", urllib.parse.urlsplit(srv.directory_url()).path)
            r = other.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        status, resp, data = c.post(ch["url"], None)
        self.assertEqual(json.loads(data)["status"], "processing",
                         "requests were served only after the validation ended")

        # Then the timeout: invalid, with a connection error.
        deadline = time.monotonic() + 60
        while True:
            status, resp, data = c.post(ch["url"], None)
            chal = json.loads(data)
            if chal["status"] != "processing" or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertEqual(chal["status"], "invalid", chal)
        self.assertEqual(chal["error"]["type"], ERR + "connection", chal)
        self.assertGreaterEqual(time.monotonic() - started, 9.5, "the validation ended before its timeout")
        self.assertEqual(srv.stop(), 0, srv.log())


SHARED_CONFIG = """
[Server]
StateDirectory=@STATE_DIR@

[CA default]
Backend=local
Directory=@STATE_DIR@/ca/default

[RAProfile default]
CA=default
AllowedIdentifiers=*.example.test
ACMEProfile=default

[ACMEProfile default]
RAProfile=default
"""


class SharedDatabase(unittest.TestCase):
    """Two server instances on one database, as behind a load balancer: a nonce from one works
    at the other, once; an account made at one is known at the other."""

    def test_nonces_and_accounts_work_across_instances(self):
        a = Server(config_text=SHARED_CONFIG)
        self.addCleanup(a.cleanup)
        a.start()
        b = Server(config_text=SHARED_CONFIG, state_dir=a.state_dir)
        self.addCleanup(b.cleanup)
        b.start()
        self.assertNotEqual(a.port, b.port)
        ca = Client(a, a.directory_url())
        cb = Client(b, b.directory_url(), key=ca.key)
        self.addCleanup(ca.conn.close)
        self.addCleanup(cb.conn.close)

        status, resp, data = ca.post(ca.dir["newAccount"], {"termsOfServiceAgreed": True}, kid=False)
        self.assertEqual(status, 201, data)
        kid_a = resp.getheader("Location")

        # A nonce from instance A, used at instance B: accepted, and B knows A's account.
        nonce = ca.new_nonce()
        status, resp, data = cb.post(cb.dir["newAccount"], {"onlyReturnExisting": True}, kid=False, nonce=nonce)
        self.assertEqual(status, 200, data)
        self.assertEqual(urllib.parse.urlsplit(resp.getheader("Location")).path,
                         urllib.parse.urlsplit(kid_a).path)
        # Replayed at A (or at B again): badNonce, whichever instance sees it.
        status, resp, data = ca.post(ca.dir["newAccount"], {"onlyReturnExisting": True}, kid=False, nonce=nonce)
        self.assertEqual(status, 400, data)
        self.assertEqual(json.loads(data)["type"], ERR + "badNonce")
        status, resp, data = cb.post(cb.dir["newAccount"], {"onlyReturnExisting": True}, kid=False, nonce=nonce)
        self.assertEqual(json.loads(data)["type"], ERR + "badNonce")
        # The other direction.
        status, resp, data = ca.post(ca.dir["newAccount"], {"onlyReturnExisting": True}, kid=False,
                                     nonce=cb.new_nonce())
        self.assertEqual(status, 200, data)
        self.assertEqual(a.stop(), 0, a.log())
        self.assertEqual(b.stop(), 0, b.log())


if __name__ == "__main__":
    if not HAVE_CRYPTOGRAPHY:
        print("SKIP: python cryptography module not available")
        sys.exit(77)
    unittest.main(verbosity=2)
