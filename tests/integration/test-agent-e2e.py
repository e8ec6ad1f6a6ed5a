#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""certfleet-agent end to end: certfleet-server (cftest.py) issues, the agent enrolls, deploys and
shows its state on a private D-Bus system bus; certfleetctl drives it.

Set-up, all on loopback with ports chosen at run time:
  - pebble-challtestsrv answers the server's DNS queries (every name -> 127.0.0.1) and takes the
    dns-01 TXT records of the agent's hook;
  - a private dbus-daemon with a system-like policy that includes dbus/org.certfleet.Agent1.conf,
    DBUS_SYSTEM_BUS_ADDRESS pointing at it;
  - systemd1-double owns org.freedesktop.systemd1 there and records ReloadOrRestartUnit calls.

Checks: enrollment and deployment (owner, group, mode, reload call), the bus objects and their
properties (busctl), the introspection data in dbus/org.certfleet.Agent1.xml against the live
objects, certfleetctl list/status/renew/reload with --json and exit codes, reading open to an
unprivileged user while changing is refused without polkit on the bus (AccessDenied) and decided
by polkit (a test double, tests/integration/polkit-double.c) when it is there, the bus
answering while an enrollment is blocked in a dns-01 hook, and an ARI-driven renewal after
`certfleet-server cert renew-now` that the server's inventory records as replacing the old
certificate.
"""

import json
import os
import pwd
import grp
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agenttest import (SKIP, Fail, Processes, check, epoch, free_port, log, report_failure,  # noqa: E402
                       serial_of, server_config, wait_for, x509)
from cftest import Server  # noqa: E402

BUS_NAME = "org.certfleet.Agent1"
MANAGER_PATH = "/org/certfleet/Agent1"
MANAGER_IFACE = "org.certfleet.Agent1.Manager"
CERT_IFACE = "org.certfleet.Agent1.Certificate"


def enddate_of(path):
    return epoch(x509(path, "-enddate").strip().split("=", 1)[1])


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
  <policy user="{user}">
    <allow own="org.certfleet.Agent1"/>
    <allow own="org.freedesktop.systemd1"/>
    <allow send_destination="org.freedesktop.systemd1"/>
    <allow send_destination="org.certfleet.Agent1"/>
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""

DNS_HOOK = """#!{python}
# dns-01 hook: set/clear TXT records at pebble-challtestsrv; blocks while {block} exists.
import json, os, sys, time, urllib.request
action, record = sys.argv[1], sys.argv[2]
if action == "set" and os.path.exists("{block}"):
    open("{blocked}", "w").close()
    while os.path.exists("{block}"):
        time.sleep(0.1)
body = {{"host": record + "."}}
if action == "set":
    body["value"] = sys.argv[3]
req = urllib.request.Request("http://127.0.0.1:{port}/" + ("set-txt" if action == "set" else "clear-txt"),
                             data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(req, timeout=10).read()
"""


class Env(Processes):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.build = os.environ["CERTFLEET_BUILD_ROOT"]
        self.source = os.environ.get("CERTFLEET_SOURCE_ROOT",
                                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
        self.agent_bin = os.path.join(self.build, "agent", "certfleet-agent")
        self.ctl_bin = os.path.join(self.build, "agent", "certfleetctl")
        self.double_bin = os.path.join(self.build, "tests", "integration", "systemd1-double")
        self.polkit_bin = os.path.join(self.build, "tests", "integration", "polkit-double")
        self.address = None

    def env(self, **extra):
        e = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address, CERTFLEET_LOG_TARGET="stderr")
        e.pop("NOTIFY_SOCKET", None)
        e.update(extra)
        return e

    def start_bus(self):
        path = os.path.join(self.tmp, "bus.conf")
        with open(path, "w") as f:
            f.write(BUS_CONFIG.format(socket=os.path.join(self.tmp, "system_bus_socket"),
                                      user=pwd.getpwuid(os.getuid()).pw_name,
                                      policy=os.path.join(self.source, "dbus", "org.certfleet.Agent1.conf")))
        p = self.start(["dbus-daemon", f"--config-file={path}", "--print-address", "--nofork"], "dbus.log",
                       stdout=subprocess.PIPE)
        self.address = p.stdout.readline().decode().strip()
        if not self.address:
            raise Fail("dbus-daemon did not print its address")
        # The socket is reachable for the unprivileged user of the access checks.
        os.chmod(self.tmp, 0o755)

    def busctl(self, *args, timeout=10, check_rc=True, user=None):
        cmd = ["busctl", f"--address={self.address}", f"--timeout={timeout}", *args]
        if user:
            cmd = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5)
        if check_rc and p.returncode != 0:
            raise Fail(f"busctl {' '.join(args)} failed: {p.stderr}")
        return p

    def prop(self, path, name, timeout=10):
        p = self.busctl("--json=short", "get-property", BUS_NAME, path, CERT_IFACE, name, timeout=timeout)
        return json.loads(p.stdout)["data"]

    def ctl(self, *args, user=None, timeout=120):
        cmd = [self.ctl_bin, *args]
        if user:
            cmd = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=timeout)


def cert_path(name):
    # sd_bus_path_encode(): every character but [A-Za-z0-9] as _XX.
    return "/org/certfleet/Agent1/certificate/" + "".join(
        c if c.isalnum() and c.isascii() else f"_{ord(c):02x}" for c in name)


def interfaces_of(xml_text):
    """{interface: {"methods": {...}, "signals": {...}, "properties": {...}}} of an introspection."""
    root = ET.fromstring(xml_text)
    out = {}
    for iface in root.findall("interface"):
        d = {"methods": {}, "signals": {}, "properties": {}}
        for m in iface.findall("method"):
            d["methods"][m.get("name")] = [(a.get("name"), a.get("type"), a.get("direction") or "in")
                                           for a in m.findall("arg")]
        for s in iface.findall("signal"):
            d["signals"][s.get("name")] = [(a.get("name"), a.get("type")) for a in s.findall("arg")]
        for p in iface.findall("property"):
            emits = [a.get("value") for a in p.findall("annotation")
                     if a.get("name") == "org.freedesktop.DBus.Property.EmitsChangedSignal"]
            d["properties"][p.get("name")] = (p.get("type"), p.get("access"), emits[0] if emits else "true")
        out[iface.get("name")] = d
    return out


def main():
    for prog in ("dbus-daemon", "busctl", "pebble-challtestsrv", "openssl", "setpriv"):
        if not shutil.which(prog):
            log(f"SKIP: {prog} is not installed")
            return SKIP

    tmp = tempfile.mkdtemp(prefix="certfleet-agent-e2e-")
    env = Env(tmp)
    srv = None
    try:
        for b in (env.agent_bin, env.ctl_bin, env.double_bin, env.polkit_bin):
            if not os.access(b, os.X_OK):
                raise Fail(f"{b} is missing (build it first)")
        # (uid, gid) of the user of the access checks; they need root to switch to it.
        unprivileged = None
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            unprivileged = (nobody.pw_uid, nobody.pw_gid)

        # --- DNS, server, bus, systemd double ----------------------------------------------------
        dns_port, cts_port = env.start_challtestsrv()

        http_port = free_port()
        srv = Server(config_text=server_config(f"127.0.0.1:{dns_port}", http_port))
        srv.start()
        directory = srv.directory_url()
        ca_bundle = srv.ca_bundle

        env.start_bus()
        record = os.path.join(tmp, "systemd1-calls")
        double = env.start([env.double_bin, record], "systemd1-double.log", env=env.env(), stdout=subprocess.PIPE)
        check(double.stdout.readline().decode().strip() == "READY", "systemd1 double owns its name")

        # --- agent configuration -----------------------------------------------------------------
        conf, state, deploy = f"{tmp}/conf", f"{tmp}/state", f"{tmp}/deploy"
        os.makedirs(f"{conf}/agent.d")
        os.makedirs(deploy)
        os.chmod(deploy, 0o755)
        owner = "nobody" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        group = "nogroup" if os.getuid() == 0 else grp.getgrgid(os.getgid()).gr_name
        with open(f"{conf}/agent.conf", "w") as f:
            f.write(f"[Agent]\nServer={directory}\nCABundle={ca_bundle}\nEmail=admin@example.test\n")
        with open(f"{conf}/agent.d/web.conf", "w") as f:
            f.write(f"""[Certificate]
Protocol=acme
Names=web.example.test www.example.test
[ACME]
Challenge=http-01
HTTPListen=127.0.0.1:{http_port}
[Deploy]
Certificate={deploy}/web.crt
FullChain={deploy}/web.full
Key={deploy}/web.key
Owner={owner}
Group={group}
Mode=0640
ReloadUnits=nginx.service
""")
        block, blocked = f"{tmp}/dns-block", f"{tmp}/dns-blocked"
        with open(f"{tmp}/dns-hook", "w") as f:
            f.write(DNS_HOOK.format(python=sys.executable, block=block, blocked=blocked, port=cts_port))
        os.chmod(f"{tmp}/dns-hook", 0o755)
        with open(f"{conf}/agent.d/mail-1.conf", "w") as f:
            f.write(f"""[Certificate]
Protocol=acme
Names=mail.example.test
[ACME]
Challenge=dns-01
DNSHook={tmp}/dns-hook
[Deploy]
Certificate={deploy}/mail.crt
Key={deploy}/mail.key
""")

        agent = env.start([env.agent_bin, "--config-dir", conf, "--state-dir", state], "agent.log",
                          env=env.env())

        def agent_on_bus():
            if agent.poll() is not None:
                raise Fail(f"certfleet-agent exited with {agent.returncode}")
            return env.busctl("call", BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "ListCertificates",
                              check_rc=False).returncode == 0
        wait_for("the agent on the bus", agent_on_bus, timeout=30)

        web, mail = cert_path("web"), cert_path("mail-1")
        check(mail == "/org/certfleet/Agent1/certificate/mail_2d1", "object path escaped like sd_bus_path_encode")
        wait_for("web enrolled", lambda: env.prop(web, "State") == "valid", timeout=90)
        wait_for("mail-1 enrolled", lambda: env.prop(mail, "State") == "valid", timeout=90)

        # --- deployment ---------------------------------------------------------------------------
        key_st, crt_st = os.stat(f"{deploy}/web.key"), os.stat(f"{deploy}/web.crt")
        check(oct(key_st.st_mode & 0o7777) == oct(0o640), "key deployed with Mode=0640")
        check(oct(crt_st.st_mode & 0o7777) == oct(0o644), "certificate deployed 0644")
        check(pwd.getpwuid(key_st.st_uid).pw_name == owner and grp.getgrgid(key_st.st_gid).gr_name == group,
              f"key deployed with Owner={owner} Group={group}")
        calls = wait_for("the reload call", lambda: os.path.exists(record) and open(record).read().splitlines())
        check(calls[0].split()[:3] == ["ReloadOrRestartUnit", "nginx.service", "replace"],
              "ReloadUnits= reached org.freedesktop.systemd1 (ReloadOrRestartUnit nginx.service replace)",
              str(calls))

        # --- properties over the bus --------------------------------------------------------------
        s1 = serial_of(f"{deploy}/web.crt")
        check(env.prop(web, "Serial") == s1, f"Serial property is the deployed serial {s1}")
        check(env.prop(web, "NotAfter") == enddate_of(f"{deploy}/web.crt") * 1000000,
              "NotAfter is the certificate's notAfter in microseconds")
        check(env.prop(web, "Names") == ["web.example.test", "www.example.test"], "Names property")
        check(env.prop(web, "Protocol") == "acme" and env.prop(web, "Server") == directory, "Protocol and Server")
        issuer = subprocess.run(["openssl", "x509", "-in", f"{deploy}/web.crt", "-noout", "-issuer",
                                 "-nameopt", "RFC2253"], capture_output=True, text=True).stdout.strip()
        check(env.prop(web, "Issuer") == issuer.split("=", 1)[1], f"Issuer property ({issuer})")
        check(env.prop(web, "LastError") == "" and env.prop(web, "LastAttempt") > 0, "LastError empty, LastAttempt set")
        ws, we = env.prop(web, "RenewalWindowStart"), env.prop(web, "RenewalWindowEnd")
        check(env.prop(web, "RenewalInfo") is True and 0 < ws < we, "ARI renewal window from the server")
        nr = env.prop(web, "NextRenewal")
        check(ws <= nr <= we, "NextRenewal inside the ARI window")
        out = env.busctl("introspect", BUS_NAME, web).stdout
        check("emits-change" in out and ".State" in out, "busctl introspect shows the certificate object")

        # --- introspection data in sync with the code ---------------------------------------------
        with open(os.path.join(env.source, "dbus", "org.certfleet.Agent1.xml")) as f:
            documented = interfaces_of(f.read())
        live = {}
        for path in (MANAGER_PATH, web):
            live.update(interfaces_of(env.busctl("--xml-interface", "introspect", BUS_NAME, path).stdout))
        for iface in (MANAGER_IFACE, CERT_IFACE):
            check(iface in live and live[iface] == documented.get(iface),
                  f"dbus/org.certfleet.Agent1.xml matches the live {iface}",
                  f"live: {live.get(iface)}\nxml:  {documented.get(iface)}")

        # --- certfleetctl: list, status, exit codes ----------------------------------------------
        p = env.ctl("list", "--json")
        check(p.returncode == 0, "certfleetctl list --json", p.stderr)
        listed = {c["name"]: c for c in json.loads(p.stdout)}
        check(sorted(listed) == ["mail-1", "web"] and listed["web"]["serial"] == s1 and
              listed["web"]["state"] == "valid" and listed["web"]["renewalInfo"] is True,
              "list --json shows both certificates with state and serial")
        p = env.ctl("status", "web")
        check(p.returncode == 0 and s1 in p.stdout and "State: valid" in p.stdout, "certfleetctl status web", p.stdout)
        p = env.ctl("status", "web", "--json")
        check(json.loads(p.stdout)["names"] == ["web.example.test", "www.example.test"], "status --json")
        check(env.ctl("status", "nope").returncode == 3, "status of an unknown certificate exits 3")
        check(env.ctl("renew", "nope").returncode == 3, "renew of an unknown certificate exits 3")
        check(env.ctl("frobnicate").returncode == 2 and env.ctl("renew").returncode == 2, "usage errors exit 2")

        if unprivileged:
            p = env.ctl("list", user=unprivileged)
            check(p.returncode == 0 and "web" in p.stdout, "an unprivileged user can list", p.stderr)
            p = env.busctl("get-property", BUS_NAME, web, CERT_IFACE, "State", user=unprivileged)
            check(p.stdout.strip() == 's "valid"', "an unprivileged user can read properties")
            p = env.busctl("--json=short", "call", BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                           "GetManagedObjects", user=unprivileged)
            managed = json.loads(p.stdout)["data"][0]
            check(sorted(managed) == sorted([mail, web]) and managed[web][CERT_IFACE]["Serial"]["data"] == s1,
                  "an unprivileged user can call GetManagedObjects", p.stdout[:500])
            p = env.ctl("renew", "web", "--force", user=unprivileged)
            check(p.returncode == 5, "an unprivileged renew without polkit on the bus exits 5 (access denied)",
                  p.stderr)
            check(env.ctl("reload", user=unprivileged).returncode == 5, "an unprivileged reload exits 5")
            check(env.prop(web, "Serial") == s1, "the refused renewal changed nothing")

            # With polkit on the bus (a double that answers from a file), it decides.
            polkit_record, decision = f"{tmp}/polkit-calls", f"{tmp}/polkit-decision"
            with open(decision, "w") as f:
                f.write("no\n")
            pk = env.start([env.polkit_bin, polkit_record, decision], "polkit-double.log", env=env.env(),
                           stdout=subprocess.PIPE)
            check(pk.stdout.readline().decode().strip() == "READY", "polkit double owns its name")
            p = env.ctl("reload", user=unprivileged)
            check(p.returncode == 5 and "Not authorised" in p.stderr, "polkit says no: exit 5", p.stderr)
            with open(polkit_record) as f:
                asked = f.read().split()
            check(asked[0] == "org.certfleet.agent1.manage" and asked[1] == "system-bus-name" and
                  asked[2].startswith(":") and asked[3] == "0",
                  "the agent asked polkit for org.certfleet.agent1.manage about the caller's bus name, "
                  "not interactively", str(asked))
            with open(decision, "w") as f:
                f.write("challenge\n")
            p = env.ctl("--no-ask-password", "renew", "web", user=unprivileged)
            check(p.returncode == 5 and "Interactive authentication required" in p.stderr,
                  "polkit wants a password the caller cannot give: exit 5", p.stderr)
            with open(decision, "w") as f:
                f.write("yes\n")
            p = env.ctl("reload", user=unprivileged)
            check(p.returncode == 0, "polkit says yes: an unprivileged reload works", p.stderr)
            p = env.ctl("renew", "web", "--json", user=unprivileged)
            check(p.returncode == 0 and json.loads(p.stdout)[0]["result"] == "unchanged",
                  "polkit says yes: an unprivileged renew runs (web is not due)", p.stdout + p.stderr)
            env.busctl("--allow-interactive-authorization=yes", "call", BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
                       "Reload", user=unprivileged)
            with open(polkit_record) as f:
                last = f.read().splitlines()[-1].split()
            check(last[3] == "1", "a caller that allows interactive authorization gets AllowUserInteraction", str(last))
            with open(decision, "w") as f:
                f.write("no\n")

        # --- forced renewal through certfleetctl, waiting for the signal --------------------------
        mail_serial = env.prop(mail, "Serial")
        p = env.ctl("renew", "mail-1", "--force", "--json")
        result = json.loads(p.stdout or "null")
        check(p.returncode == 0 and result[0]["result"] == "renewed" and result[0]["serial"] != mail_serial and
              result[0]["serial"] == env.prop(mail, "Serial") == serial_of(f"{deploy}/mail.crt"),
              "certfleetctl renew --force reports the CertificateRenewed signal with the new serial",
              p.stdout + p.stderr)

        # --- the bus answers while an enrollment is blocked in the dns-01 hook ----------------------
        # A certificate added by a reload (a new name: the server has no authorization to reuse,
        # so the hook runs) whose hook blocks until the test lets it go.
        open(block, "w").close()
        with open(f"{conf}/agent.d/slow.conf", "w") as f:
            f.write(f"""[Certificate]
Protocol=acme
Names=slow.example.test
[ACME]
Challenge=dns-01
DNSHook={tmp}/dns-hook
[Deploy]
Certificate={deploy}/slow.crt
Key={deploy}/slow.key
""")
        p = env.ctl("reload")
        check(p.returncode == 0, "certfleetctl reload picks up a new certificate", p.stderr)
        slow = cert_path("slow")
        renew = subprocess.Popen([env.ctl_bin, "renew", "slow", "--json"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env.env())
        wait_for("the hook to block", lambda: os.path.exists(blocked), timeout=60)
        t0 = time.monotonic()
        check(env.prop(slow, "State", timeout=2) == "enrolling" and env.prop(web, "State", timeout=2) == "valid",
              "properties answer while the enrollment is blocked (State=enrolling)")
        p = env.ctl("list", "--json", timeout=10)
        check(p.returncode == 0 and time.monotonic() - t0 < 5, "certfleetctl list answers during the enrollment")
        check(renew.poll() is None, "certfleetctl renew waits for the outcome",
              renew.poll() is not None and "".join(renew.communicate()))
        os.unlink(block)
        out, err = renew.communicate(timeout=120)
        result = json.loads(out or "null")
        check(renew.returncode == 0 and result[0]["result"] == "renewed" and
              result[0]["serial"] == env.prop(slow, "Serial") == serial_of(f"{deploy}/slow.crt"),
              "certfleetctl renew reports the outcome of the enrollment it waited for", out + err)

        # Not due and not forced: the job runs, nothing changes, the wait ends.
        p = env.ctl("renew", "web")
        check(p.returncode == 0 and "not due" in p.stdout and env.prop(web, "Serial") == s1,
              "renew without --force of a certificate that is not due: nothing to do", p.stdout + p.stderr)
        p = env.ctl("renew", "--due", "--json")
        check(p.returncode == 0 and json.loads(p.stdout) == [], "renew --due with nothing due", p.stdout + p.stderr)

        # --- ARI: the server moves the window into the past, the agent renews with replaces --------
        p = srv.run_cli("cert", "renew-now", s1)
        check(p.returncode == 0, f"certfleet-server cert renew-now {s1}", p.stdout + p.stderr)
        # The agent asks for renewalInfo again at the time the server's Retry-After allowed; move
        # that time into the past in its state and let it reread the state.
        sched_path = f"{state}/web/schedule.json"
        with open(sched_path) as f:
            sched = json.load(f)
        sched["nextAriPoll"] = "2000-01-01T00:00:00Z"
        with open(sched_path, "w") as f:
            json.dump(sched, f)
        p = env.ctl("reload")
        check(p.returncode == 0, "certfleetctl reload", p.stderr)
        # Not forced: only the new renewalInfo makes it due.
        p = env.ctl("renew", "web", "--json")
        check(p.returncode == 0, "renew web after renew-now", p.stdout + p.stderr)
        result = json.loads(p.stdout)
        check(result[0]["result"] == "renewed" and env.prop(web, "RenewalInfo") is True,
              "renew web renewed it: the ARI window is in the past", p.stdout)
        s2 = result[0]["serial"]
        check(serial_of(f"{deploy}/web.crt") == s2 and s2 != s1, f"new certificate {s2} deployed")
        calls = open(record).read().splitlines()
        check(len(calls) >= 2, "the renewal reloaded the unit again", str(calls))

        # --- reload over the bus: a removed file unexports its object -----------------------------
        os.unlink(f"{conf}/agent.d/mail-1.conf")
        check(env.ctl("reload").returncode == 0, "reload after removing mail-1.conf")
        p = env.ctl("list", "--json")
        check([c["name"] for c in json.loads(p.stdout)] == ["slow", "web"], "mail-1 is gone after the reload")
        check(env.ctl("status", "mail-1").returncode == 3, "status of the removed certificate exits 3")

        # --- the agent stopped: exit code 4 -------------------------------------------------------
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(30)
        check(agent.returncode == 0, "the agent stops cleanly on SIGTERM")
        check(env.ctl("list").returncode == 4, "certfleetctl exits 4 when the agent is not running")
        # The server's side of the ARI renewal (last: it stops the server if the check fails).
        def replaced():
            q = srv.run_cli("cert", "show", s1, "--json")
            return q.returncode == 0 and json.loads(q.stdout).get("replacedBy") == s2
        try:
            wait_for(f"{s1} replaced by {s2} in the server's inventory", replaced, timeout=15)
        except Fail:
            srv.stop()
            raise Fail(f"the server's inventory does not show {s1} replaced by {s2} while the server runs"
                       + (" (it does after the server stopped: the order was not committed)" if replaced() else ""))
        check(True, f"server inventory: {s1} replaced by {s2}")
        p = srv.run_cli("cert", "show", s2, "--json")
        check(json.loads(p.stdout).get("replaces") == s1, f"server inventory: {s2} replaces {s1}", p.stdout)
        log("all agent end-to-end checks passed")
        return 0
    except Fail as e:
        report_failure(e, tmp, 40, srv)
        return 1
    finally:
        env.stop()
        if srv is not None:
            try:
                srv.stop()
            finally:
                srv.cleanup()
        if os.environ.get("CERTFLEET_KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
