#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""certbot (Debian's 2.1) against certfleet-server: issue with http-01 (standalone on a loopback
port chosen at run time), renew, update the account's e-mail, revoke with reason keyCompromise.
(certbot refuses a CSR that does not match its -d names itself; badCSR is tested with lego.) Each effect is checked in the server's own
inventory (certfleet-server cert list/show) and database. certbot trusts the server's CA through
REQUESTS_CA_BUNDLE; --no-verify-ssl is never used."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop  # noqa: E402
from interop import check  # noqa: E402

NAME = "www.example.test"


def main():
    certbot = interop.require("certbot")
    interop.require(interop.ChallTestSrv.BINARY)

    with interop.ChallTestSrv() as cts, tempfile.TemporaryDirectory(prefix="certbot-") as tmp:
        http_port = interop.free_port()
        config = interop.server_config(cts.resolver, http_port=http_port)
        with interop.Server(config_text=config) as srv:
            env = {"REQUESTS_CA_BUNDLE": srv.ca_bundle}
            dirs = ["--config-dir", f"{tmp}/config", "--work-dir", f"{tmp}/work",
                    "--logs-dir", f"{tmp}/logs"]
            common = [certbot, "--non-interactive"] + dirs + ["--server", srv.directory_url()]
            live = f"{tmp}/config/live/{NAME}"

            def log_tail():
                try:
                    with open(f"{tmp}/logs/letsencrypt.log", encoding="utf-8") as f:
                        return f.read()[-6000:] + "\n--- server log ---\n" + srv.log()[-4000:]
                except OSError:
                    return srv.log()[-4000:]

            def certbot_ok(args, what):
                p = interop.run(common + args, env=env, expect_ok=False)
                check(p.returncode == 0, what, p.stdout + log_tail())
                return p

            # Issue.
            certbot_ok(["certonly", "--standalone", "--preferred-challenges", "http",
                        "--http-01-port", str(http_port), "--agree-tos",
                        "--email", "first@example.test", "--key-type", "ecdsa", "-d", NAME],
                       "certbot certonly (http-01) succeeds")
            first_serial = interop.serial_of(f"{live}/cert.pem")
            v = subprocess.run(["openssl", "verify", "-CAfile", srv.ca_bundle, "-untrusted",
                                f"{live}/chain.pem", f"{live}/cert.pem"],
                               capture_output=True, text=True, check=False)
            check(v.returncode == 0, "the certificate verifies against the server's CA", v.stdout + v.stderr)

            # Renew (no random delay: certbot sleeps up to 8 minutes when not on a terminal).
            certbot_ok(["renew", "--force-renewal", "--no-random-sleep-on-renew",
                        "--http-01-port", str(http_port)], "certbot renew --force-renewal succeeds")
            second_serial = interop.serial_of(f"{live}/cert.pem")
            check(second_serial != first_serial, "renewal produced a new certificate")

            # Update the account's contact.
            certbot_ok(["update_account", "--email", "second@example.test"],
                       "certbot update_account succeeds")

            # Revoke the renewed certificate with reason keyCompromise (1).
            certbot_ok(["revoke", "--cert-path", f"{live}/cert.pem", "--reason", "keycompromise",
                        "--no-delete-after-revoke"], "certbot revoke succeeds")

            # Everything above, as the server's inventory and database see it.
            certs = interop.inventory(srv)
            first = interop.find_cert(certs, first_serial)
            second = interop.find_cert(certs, second_serial)
            check(first is not None and first["status"] == "valid" and f"dns:{NAME}" in first["identifiers"]
                  and first.get("protocol") == "acme",
                  f"the issued certificate {first_serial} is in the inventory: valid, ACME, {NAME}",
                  str(certs))
            check(second is not None and second["accountId"] == first["accountId"],
                  f"the renewed certificate {second_serial} is in the inventory, same account", str(certs))
            check(len(certs) == 2, "exactly these two certificates were issued", str(certs))
            shown = interop.cert_show(srv, second["serial"])
            check(shown["status"] == "revoked" and shown.get("revocationReason") == 1,
                  "cert show reports the renewed certificate revoked with reason 1", str(shown))
            check(first["status"] == "valid", "the first certificate stays valid", str(first))
            contacts = interop.account_contacts(srv).get(first["accountId"])
            check(contacts == ["mailto:second@example.test"],
                  "the server's account has contact mailto:second@example.test", str(contacts))

            # The inventory must keep seeing what the running server writes after the command
            # line tool has opened the database.
            certbot_ok(["renew", "--force-renewal", "--no-random-sleep-on-renew",
                        "--http-01-port", str(http_port)], "a second renewal succeeds")
            third_serial = interop.serial_of(f"{live}/cert.pem")
            check(interop.find_cert(interop.inventory(srv), third_serial) is not None,
                  f"the certificate issued after 'cert list' ran ({third_serial}) is in the inventory")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, interop.ServerError) as e:
        print(f"FAIL: {e}")
        sys.exit(1)
