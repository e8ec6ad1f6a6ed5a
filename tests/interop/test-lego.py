#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""lego (Debian's 4.9) against certfleet-server, one challenge type at a time:

- http-01 with lego's own server (--http --http.port), then `lego renew --days 90` and
  `lego revoke`;
- tls-alpn-01 with lego's own server (--tls --tls.port);
- dns-01 for a wildcard and its base name: lego's exec provider runs a small script that puts the
  TXT records into pebble-challtestsrv, the DNS server certfleet-server asks ([Validation]
  Resolver=);
- a name the RA profile does not allow → rejectedIdentifier;
- a CSR naming an identifier the order does not have, and a CSR whose signature does not
  verify → badCSR.

The server's [Validation] HTTPPort=/TLSPort= point at lego's ports, chosen at run time. lego trusts
the server's CA through LEGO_CA_CERTIFICATES. Effects are checked in the server's inventory."""

import os
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop  # noqa: E402
from interop import check  # noqa: E402

HTTP_NAME = "http.internal.example"
TLS_NAME = "tls.internal.example"
DNS_BASE = "x.internal.example"
DNS_WILDCARD = "*.x.internal.example"
REJECTED_NAME = "www.not-allowed.example"

EXEC_SCRIPT = """#!{python}
# lego exec provider: {{present|cleanup}} FQDN VALUE → pebble-challtestsrv management API.
import json, sys, urllib.request
action, fqdn, value = sys.argv[1], sys.argv[2], sys.argv[3]
path = "/set-txt" if action == "present" else "/clear-txt"
body = {{"host": fqdn}} if action != "present" else {{"host": fqdn, "value": value}}
req = urllib.request.Request("{url}" + path, data=json.dumps(body).encode(), method="POST")
urllib.request.build_opener(urllib.request.ProxyHandler({{}})).open(req, timeout=10).read()
"""


def main():
    lego = interop.require("lego")
    interop.require(interop.ChallTestSrv.BINARY)

    with interop.ChallTestSrv() as cts, tempfile.TemporaryDirectory(prefix="lego-") as tmp:
        http_port = interop.free_port()
        tls_port = interop.free_port()
        config = interop.server_config(cts.resolver, http_port=http_port, tls_port=tls_port,
                                       allowed="*.internal.example internal.example")
        script = os.path.join(tmp, "challtestsrv-exec")
        with open(script, "w", encoding="utf-8") as f:
            f.write(EXEC_SCRIPT.format(python=sys.executable, url=cts.management_url))
        os.chmod(script, stat.S_IRWXU)

        with interop.Server(config_text=config) as srv:
            env = {"LEGO_CA_CERTIFICATES": srv.ca_bundle, "EXEC_PATH": script,
                   "EXEC_PROPAGATION_TIMEOUT": "30", "EXEC_POLLING_INTERVAL": "1",
                   # the wildcard and the base name share one TXT name: lego presents them one
                   # after the other, 60 s apart unless told otherwise
                   "EXEC_SEQUENCE_INTERVAL": "1"}
            base = [lego, "--server", srv.directory_url(), "--accept-tos",
                    "--email", "lego@internal.example", "--path", f"{tmp}/lego"]
            http = ["--http", "--http.port", f":{http_port}"]
            tls = ["--tls", "--tls.port", f":{tls_port}"]

            def cert_file(name, ext="crt"):
                return f"{tmp}/lego/certificates/{name.replace('*', '_')}.{ext}"

            def lego_ok(args, what):
                p = interop.run(base + args, env=env, expect_ok=False)
                check(p.returncode == 0, what, p.stdout + "\n--- server log ---\n" + srv.log()[-4000:])
                return p

            # http-01, then renew and revoke.
            lego_ok(http + ["-d", HTTP_NAME, "run"], "lego run --http succeeds")
            http_serial = interop.serial_of(cert_file(HTTP_NAME))
            lego_ok(http + ["-d", HTTP_NAME, "renew", "--days", "90", "--no-random-sleep"],
                    "lego renew --days 90 succeeds")
            renewed_serial = interop.serial_of(cert_file(HTTP_NAME))
            check(renewed_serial != http_serial, "lego renew replaced the certificate")
            lego_ok(http + ["-d", HTTP_NAME, "revoke", "--reason", "1", "--keep"],
                    "lego revoke succeeds")

            # tls-alpn-01.
            lego_ok(tls + ["-d", TLS_NAME, "run"], "lego run --tls succeeds")
            tls_serial = interop.serial_of(cert_file(TLS_NAME))

            # dns-01 for a wildcard and its base name (two TXT values at one name).
            lego_ok(["--dns", "exec", "--dns.disable-cp", "--dns.resolvers", cts.resolver,
                     "-d", DNS_WILDCARD, "-d", DNS_BASE, "run"], "lego run --dns exec (wildcard) succeeds")
            dns_serial = interop.serial_of(cert_file(DNS_WILDCARD))
            sans = subprocess.run(["openssl", "x509", "-in", cert_file(DNS_WILDCARD), "-noout", "-ext",
                                   "subjectAltName"], capture_output=True, text=True, check=True).stdout
            check(f"DNS:{DNS_WILDCARD}" in sans and f"DNS:{DNS_BASE}" in sans,
                  "the dns-01 certificate names the wildcard and the base name", sans)

            # A name the RA profile does not allow.
            p = interop.run(base + http + ["-d", REJECTED_NAME, "run"], env=env, expect_ok=False)
            check(p.returncode != 0 and "rejectedIdentifier" in p.stdout,
                  "a disallowed name fails with rejectedIdentifier", p.stdout)

            # A CSR whose signature does not verify (lego does not check it; the server must).
            csr = f"{tmp}/bad.csr"
            subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", f"{tmp}/bad.key", "-subj", f"/CN={HTTP_NAME}",
                            "-addext", f"subjectAltName=DNS:{HTTP_NAME}", "-outform", "DER",
                            "-out", f"{tmp}/good.der"], check=True, capture_output=True)
            with open(f"{tmp}/good.der", "rb") as f:
                der = bytearray(f.read())
            der[-5] ^= 0x01          # inside the signature value
            with open(f"{tmp}/bad.der", "wb") as f:
                f.write(der)
            subprocess.run(["openssl", "req", "-inform", "DER", "-in", f"{tmp}/bad.der", "-out", csr],
                           check=True, capture_output=True)
            verify = subprocess.run(["openssl", "req", "-in", csr, "-noout", "-verify"],
                                    capture_output=True, text=True, check=False)
            # (openssl 3.0 exits 0 either way; it says "verify OK" only for a good signature)
            check("verify OK" not in verify.stdout + verify.stderr and "failure" in verify.stdout + verify.stderr,
                  "the tampered CSR does not verify with openssl",
                  verify.stdout + verify.stderr)
            p = interop.run(base + http + ["--csr", csr, "run"], env=env, expect_ok=False)
            check(p.returncode != 0 and "badCSR" in p.stdout, "a CSR with a bad signature fails with badCSR",
                  p.stdout)

            # A CSR naming more than the order: lego 4.9 orders the CSR's DNS names only, so the
            # IP address in the CSR is not part of the order and finalize must refuse it.
            subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", f"{tmp}/extra.key", "-subj", f"/CN={HTTP_NAME}",
                            "-addext", f"subjectAltName=DNS:{HTTP_NAME},IP:127.0.0.1",
                            "-out", f"{tmp}/extra.csr"], check=True, capture_output=True)
            p = interop.run(base + http + ["--csr", f"{tmp}/extra.csr", "run"], env=env, expect_ok=False)
            check(p.returncode != 0 and "badCSR" in p.stdout,
                  "a CSR with a name the order does not have fails with badCSR", p.stdout)

            # The server's inventory.
            certs = interop.inventory(srv)
            for serial, what in ((http_serial, "http-01"), (tls_serial, "tls-alpn-01"), (dns_serial, "dns-01")):
                c = interop.find_cert(certs, serial)
                check(c is not None and c["status"] == "valid" and c["protocol"] == "acme",
                      f"the {what} certificate {serial} is in the inventory and valid", str(certs))
            renewed = interop.find_cert(certs, renewed_serial)
            check(renewed is not None, f"the renewed certificate {renewed_serial} is in the inventory", str(certs))
            shown = interop.cert_show(srv, renewed["serial"])
            check(shown["status"] == "revoked" and shown.get("revocationReason") == 1,
                  "cert show reports the renewed certificate revoked with reason 1", str(shown))
            dns_cert = interop.find_cert(certs, dns_serial)
            check(sorted(dns_cert["identifiers"]) == sorted([f"dns:{DNS_WILDCARD}", f"dns:{DNS_BASE}"]),
                  "the inventory lists the wildcard and the base name", str(dns_cert))
            check(len(certs) == 4, "no certificate was issued for the refused requests", str(certs))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, interop.ServerError) as e:
        print(f"FAIL: {e}")
        sys.exit(1)
