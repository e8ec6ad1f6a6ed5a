#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the shipped unit files with `systemd-analyze verify`, and the tmpfiles.d/sysusers.d
snippets by applying them to a scratch root.

verify exits 0 on unknown keys and bad values (it only warns), so any output fails the test too.
Unit files arrive as build-tree copies named verify-NAME (ExecStart= pointing at the built
binary); they are copied to their real names in a scratch directory, because a socket unit finds
its service by name."""

import os
import shutil
import subprocess
import sys
import tempfile


def check(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = (p.stdout + p.stderr).strip()
    if p.returncode != 0 or out:
        print(f"FAIL {what}: exit {p.returncode}\n{out}")
        return False
    print(f"ok   {what}")
    return True


def main():
    analyze = sys.argv[1]
    snippets = [os.path.abspath(a) for a in sys.argv[2:] if a.endswith(".conf")]
    units = [a for a in sys.argv[2:] if not a.endswith(".conf")]
    ok = True

    with tempfile.TemporaryDirectory(prefix="units-verify-") as tmp:
        unit_dir = os.path.join(tmp, "units")
        os.mkdir(unit_dir)
        names = []
        for u in units:
            name = os.path.basename(u)
            if name.startswith("verify-"):
                name = name[len("verify-"):]
            shutil.copy(u, os.path.join(unit_dir, name))
            names.append(os.path.join(unit_dir, name))
        if not names:
            print("no units given")
            return 1
        env_cmd = [analyze, "verify", "--man=no"] + names
        ok &= check(env_cmd, "systemd-analyze verify " + " ".join(os.path.basename(n) for n in names))

        root = os.path.join(tmp, "root")
        os.mkdir(root)
        for s in snippets:
            base = os.path.basename(s)
            if "sysusers" in base and shutil.which("systemd-sysusers"):
                # sysusers reports what it creates; only warnings count, and the user must exist.
                p = subprocess.run(["systemd-sysusers", f"--root={root}", s], capture_output=True,
                                   text=True, check=False)
                out = p.stdout + p.stderr
                passwd = os.path.join(root, "etc", "passwd")
                created = os.path.exists(passwd) and "\ncertfleet:" in "\n" + open(passwd).read()
                if p.returncode != 0 or "ignoring" in out.lower() or "fail" in out.lower() or not created:
                    print(f"FAIL systemd-sysusers {base}: exit {p.returncode}\n{out}")
                    ok = False
                else:
                    print(f"ok   systemd-sysusers {base}")
            elif "tmpfiles" in base and shutil.which("systemd-tmpfiles"):
                ok &= check(["systemd-tmpfiles", f"--root={root}", "--create", s],
                            "systemd-tmpfiles " + base)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
