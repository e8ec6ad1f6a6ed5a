#!/usr/bin/env python3
"""certfleet-server's admin commands and config handling, run as an admin would run them."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cftest  # noqa: E402


def run(*args):
    return subprocess.run([cftest.server_binary(), *args], capture_output=True, text=True, timeout=60)


class ServerCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="certfleet-cli-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_ca_init_with_state_dir_uses_the_configs_only_ca(self):
        conf = self.write("server.conf", "[CA internal]\nBackend=local\n")
        state = os.path.join(self.dir, "state")
        p = run("--config", conf, "--state-dir", state, "ca", "init")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(state, "ca", "internal", "issuing.key")))
        self.assertFalse(os.path.exists(os.path.join(state, "ca", "default")))
        mode = os.stat(os.path.join(state, "ca", "internal", "issuing.key")).st_mode & 0o777
        self.assertEqual(mode, 0o600)

    def test_cert_commands_with_state_dir_and_no_config(self):
        state = os.path.join(self.dir, "state")
        self.assertEqual(run("--state-dir", state, "ca", "init").returncode, 0)
        # An unknown serial is "not found" (4), not a failure to load the CA (1).
        p = run("--state-dir", state, "cert", "revoke", "0a0b")
        self.assertEqual(p.returncode, 4, p.stderr)
        p = run("--state-dir", state, "cert", "list", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), [])

    def test_read_only_commands_do_not_open_the_ca_keys(self):
        state = os.path.join(self.dir, "state")
        self.assertEqual(run("--state-dir", state, "ca", "init").returncode, 0)
        self.assertEqual(run("--state-dir", state, "cert", "list").returncode, 0)   # creates the db
        # An admin who may read the inventory but not the CA's keys (gone here: tests run as root).
        key = os.path.join(state, "ca", "default", "issuing.key")
        os.rename(key, key + ".away")
        for args in (("cert", "list", "--json"), ("cert", "list", "--expiring", "7d"),
                     ("request", "list", "--json")):
            p = run("--state-dir", state, *args)
            self.assertEqual(p.returncode, 0, f"{args}: {p.stderr}")
            if "--json" in args:
                self.assertEqual(json.loads(p.stdout), [])
        p = run("--state-dir", state, "cert", "show", "0a0b")
        self.assertEqual(p.returncode, 4, p.stderr)                   # not found, not "cannot load"
        # Revoking goes through the CA backend, so it still needs the keys, and says so.
        p = run("--state-dir", state, "cert", "revoke", "0a0b")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("failed to open local CA", p.stderr)

    def test_missing_main_config_means_defaults_plus_drop_ins(self):
        conf = os.path.join(self.dir, "server.conf")          # never created
        db = os.path.join(self.dir, "elsewhere.db")
        self.write("server.conf.d/10-store.conf", f"[Store]\nDatabase=sqlite:{db}\n")
        state = os.path.join(self.dir, "state")
        self.assertEqual(run("--state-dir", state, "ca", "init").returncode, 0)
        p = run("--config", conf, "--state-dir", state, "cert", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(db), "the drop-in's Database= was not used")

    def test_missing_config_without_drop_ins_is_an_error(self):
        p = run("--config", os.path.join(self.dir, "typo.conf"), "--state-dir", self.dir)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("typo.conf", p.stderr)

    def test_unsupported_database_scheme_names_file_and_line(self):
        conf = self.write("server.conf", "[Store]\n\nDatabase=postgres://db/certfleet\n")
        p = run("--config", conf, "--state-dir", os.path.join(self.dir, "state"))
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{conf}:3", p.stderr)
        self.assertIn("Database=", p.stderr)

    def test_revocation_reason_remove_from_crl_is_refused(self):
        state = os.path.join(self.dir, "state")
        p = run("--state-dir", state, "cert", "revoke", "0a", "--reason", "8")
        self.assertEqual(p.returncode, 2)
        self.assertIn("removeFromCRL", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
