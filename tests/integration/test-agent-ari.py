#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""certfleet-agent's ARI path (RFC 9773) against the real certfleet-server, without D-Bus.

The server (cftest.py) validates http-01 on the agent's standalone listener; pebble-challtestsrv
is its DNS resolver (every name -> 127.0.0.1). The agent runs as `certfleet-agent --once`.

Checks:
  - enrollment: the schedule holds the server's suggestedWindow (read independently from the
    server's renewalInfo resource), the chosen time is inside it, and the next poll is the server's
    Retry-After (clamped to 1 h .. 7 d) after the poll;
  - a later poll with an unchanged window keeps the chosen time;
  - `certfleet-server cert renew-now OLD` puts the window in the past: the next, unforced
    `--once` renews at once, its newOrder carries `replaces`, and the server's inventory shows
    OLD replacedBy NEW and NEW replaces OLD;
  - a failed deployment (an unwritable Chain= path) leaves the deployed files as they were, is
    reported (exit status, lastError), and the next run deploys the stored certificate without
    ordering again; problem documents (rejectedIdentifier, a failed dns-01 validation) reach the
    message;
  - a directory without renewalInfo (the server's, re-served without that member): the agent
    falls back to 2/3 of the lifetime (± 1/30), never asking for renewalInfo.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agenttest import (SKIP, Fail, Processes, QuietHandler, agent_binary, ari_cert_id, check,  # noqa: E402
                       edit_schedule, epoch, free_port, iso, load, log, report_failure, rfc3339,
                       run, serial_of, serve_https, server_config, write, x509)
from cftest import Server  # noqa: E402


def validity(path):
    nb = epoch(x509(path, "-startdate").split("=", 1)[1])
    na = epoch(x509(path, "-enddate").split("=", 1)[1])
    return nb, na


def cert_conf(http_port, deploy, name, names):
    return f"""[Certificate]
Protocol=acme
Names={' '.join(names)}
[ACME]
Challenge=http-01
HTTPListen=127.0.0.1:{http_port}
[Deploy]
Certificate={deploy}/{name}.crt
Chain={deploy}/{name}.chain
FullChain={deploy}/{name}.full
Key={deploy}/{name}.key
"""


class NoAriDirectory:
    """The server's directory without renewalInfo, on its own HTTPS listener; every other URL in
    it still points at the real server, so only the directory differs."""

    def __init__(self, tmp, directory):
        self.directory = {k: v for k, v in directory.items() if k != "renewalInfo"}
        self.requests = []
        me = self

        class Handler(QuietHandler):
            def do_GET(self):
                me.requests.append(self.path)
                if self.path != "/dir":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(me.directory).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{tmp}/noari.key", "-out", f"{tmp}/noari.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"])
        self.httpd = serve_https(Handler, f"{tmp}/noari.pem", f"{tmp}/noari.key")
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/dir"
        self.cert = f"{tmp}/noari.pem"

    def stop(self):
        self.httpd.shutdown()


class Env(Processes):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.agent = agent_binary()

    def run_agent(self, conf, state, *extra, expect=0):
        state_args = ["--state-dir", state] if state else []
        p = subprocess.run([self.agent, "--once", "--no-bus", "--config-dir", conf, *state_args, *extra],
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, CERTFLEET_LOG_TARGET="stderr"))
        log(p.stderr.rstrip())
        if p.returncode != expect:
            raise Fail(f"certfleet-agent --once {' '.join(extra)} exited {p.returncode}, expected {expect}")
        return p.stderr


def main():
    for prog in ("pebble-challtestsrv", "openssl"):
        if not shutil.which(prog):
            log(f"{prog} not installed, skipping")
            return SKIP

    tmp = tempfile.mkdtemp(prefix="certfleet-agent-ari-")
    env = Env(tmp)
    srv = None
    try:
        dns_port, _ = env.start_challtestsrv()

        http_port = free_port()
        srv = Server(config_text=server_config(f"127.0.0.1:{dns_port}", http_port))
        srv.start()
        status, _, body = srv.request(srv.directory_url())
        check(status == 200, "the server's ACME directory")
        directory = json.loads(body)
        check("renewalInfo" in directory, "the server advertises renewalInfo")

        conf, state, deploy = f"{tmp}/conf", f"{tmp}/state", f"{tmp}/deploy"
        os.makedirs(deploy)
        write(f"{conf}/agent.conf",
              f"[Agent]\nServer={srv.directory_url()}\nCABundle={srv.ca_bundle}\nEmail=admin@example.test\n")
        write(f"{conf}/agent.d/web.conf", cert_conf(http_port, deploy, "web", ["web.example.test"]))
        sched_path = f"{state}/web/schedule.json"

        # --- enrollment: the schedule comes from the server's renewalInfo ----------------------
        t0 = int(time.time())
        out = env.run_agent(conf, state)
        check("Enrolling" in out, "first run enrolls")
        s1 = serial_of(f"{deploy}/web.crt")
        sched = load(sched_path)
        cert_id = ari_cert_id(f"{deploy}/web.crt")
        status, headers, body = srv.request(f"{directory['renewalInfo'].rstrip('/')}/{cert_id}")
        check(status == 200, f"the server knows the CertID {cert_id}")
        window = json.loads(body)["suggestedWindow"]
        server_retry_after = int({k.lower(): v for k, v in dict(headers).items()}["retry-after"])
        check(sched["ari"] is True and sched["serial"] == s1, "the schedule is ARI-driven for the new certificate",
              json.dumps(sched))
        check(rfc3339(sched["windowStart"]) == rfc3339(window["start"]) and
              rfc3339(sched["windowEnd"]) == rfc3339(window["end"]),
              f"the schedule holds the server's suggestedWindow {window['start']} .. {window['end']}")
        chosen = rfc3339(sched["chosen"])
        check(rfc3339(window["start"]) <= chosen <= rfc3339(window["end"]) and sched["nextRenewal"] == sched["chosen"],
              f"the renewal time {sched['chosen']} is inside the window")
        nb, na = validity(f"{deploy}/web.crt")
        check(chosen < na - (na - nb) // 20, "the chosen time is before the 1/20-lifetime deadline")
        expected_poll = min(max(server_retry_after, 3600), 7 * 86400)
        poll_delay = rfc3339(sched["nextAriPoll"]) - rfc3339(sched["lastSuccess"])
        check(poll_delay == expected_poll,
              f"next renewalInfo poll after the server's Retry-After ({server_retry_after} s → {poll_delay} s)")
        check(t0 - 2 <= rfc3339(sched["lastSuccess"]) <= time.time() + 2, "lastSuccess is the enrollment time")
        p = srv.run_cli("cert", "show", s1, "--json")
        check(p.returncode == 0 and json.loads(p.stdout).get("replaces") is None,
              "a first enrollment replaces nothing", p.stdout + p.stderr)

        # --- not due: nothing happens ---------------------------------------------------------
        out = env.run_agent(conf, state)
        check("Nothing is due" in out and serial_of(f"{deploy}/web.crt") == s1, "second run: nothing is due")

        # --- poll time reached, window unchanged: the choice is kept -----------------------------
        edit_schedule(sched_path, nextAriPoll=iso(int(time.time()) - 10))
        t1 = int(time.time())
        out = env.run_agent(conf, state)
        sched = load(sched_path)
        check(rfc3339(sched["chosen"]) == chosen and serial_of(f"{deploy}/web.crt") == s1 and "Renewing" not in out,
              "a new poll with the same window keeps the chosen time and renews nothing")
        check(t1 + expected_poll - 2 <= rfc3339(sched["nextAriPoll"]) <= int(time.time()) + expected_poll + 2,
              "the poll was made and the next one set Retry-After later")

        # --- renew-now: the window moves into the past, renewal at once with replaces ----------
        p = srv.run_cli("cert", "renew-now", s1)
        check(p.returncode == 0, f"certfleet-server cert renew-now {s1}", p.stdout + p.stderr)
        status, headers, body = srv.request(f"{directory['renewalInfo'].rstrip('/')}/{cert_id}")
        window = json.loads(body)["suggestedWindow"]
        check(rfc3339(window["end"]) < time.time(), "the server's window is now in the past")
        # Still before the poll time: the agent does not know yet.
        out = env.run_agent(conf, state)
        check("Nothing is due" in out and serial_of(f"{deploy}/web.crt") == s1,
              "before the next poll the agent keeps its schedule")
        edit_schedule(sched_path, nextAriPoll=iso(int(time.time()) - 10))
        out = env.run_agent(conf, state)   # not forced: only the new renewalInfo makes it due
        s2 = serial_of(f"{deploy}/web.crt")
        check("Renewing" in out and s2 != s1, f"a window in the past renews at once ({s1} → {s2})")
        sched = load(sched_path)
        check(sched["serial"] == s2 and sched["deployedSerial"] == s2 and sched["renewRequested"] is False,
              "the schedule moved to the new certificate")
        check(sched["ari"] is True and rfc3339(sched["windowEnd"]) > time.time(),
              "the new certificate's renewalInfo was fetched (window in the future)")
        p = srv.run_cli("cert", "show", s1, "--json")
        check(p.returncode == 0 and json.loads(p.stdout).get("replacedBy") == s2,
              f"server inventory: {s1} replacedBy {s2}", p.stdout + p.stderr)
        p = srv.run_cli("cert", "show", s2, "--json")
        check(p.returncode == 0 and json.loads(p.stdout).get("replaces") == s1,
              f"server inventory: {s2} replaces {s1} (newOrder carried replaces)", p.stdout + p.stderr)

        # --- a failed deployment keeps the previous files and is reported ----------------------
        web_conf = open(f"{conf}/agent.d/web.conf").read()
        write(f"{tmp}/not-a-dir", "")
        write(f"{conf}/agent.d/web.conf",
              web_conf.replace(f"Chain={deploy}/web.chain", f"Chain={tmp}/not-a-dir/web.chain"))
        before = {n: open(f"{deploy}/web.{n}").read() for n in ("crt", "chain", "full", "key")}
        out = env.run_agent(conf, state, "--force", expect=1)
        sched = load(sched_path)
        s3 = sched["serial"]
        check(s3 not in (s1, s2) and "deployment failed" in out and "not-a-dir/web.chain" in out,
              f"the new certificate {s3} was issued and its deployment failure reported", out)
        check("deployment failed" in sched["lastError"] and sched["failures"] == 1 and sched["deployedSerial"] == s2,
              "the failure is recorded in the schedule (lastError, failures); the deployed serial is still the old one",
              json.dumps(sched))
        check({n: open(f"{deploy}/web.{n}").read() for n in ("crt", "chain", "full", "key")} == before,
              "the previously deployed files are untouched")
        check(not [n for n in os.listdir(deploy) if n.endswith(".certfleet-new")], "no staged files left behind")
        backoff = rfc3339(sched["backoffUntil"]) - rfc3339(sched["lastAttempt"])
        check(30 <= backoff <= 60 and sched["nextRenewal"] == sched["backoffUntil"],
              f"the first failure backs off 30..60 s ({backoff} s), and that is the next action")
        write(f"{conf}/agent.d/web.conf", web_conf)
        out = env.run_agent(conf, state)
        check("Nothing is due" in out and serial_of(f"{deploy}/web.crt") == s2,
              "during the backoff nothing is retried, not even the deployment")
        edit_schedule(sched_path, backoffUntil=iso(int(time.time()) - 1))   # the backoff has passed
        out = env.run_agent(conf, state)
        check(serial_of(f"{deploy}/web.crt") == s3 and "Renewing" not in out and f"Deployed certificate {s3}" in out,
              "after the backoff the stored certificate is deployed, without a new order")
        sched = load(sched_path)
        check(sched["deployedSerial"] == s3 and sched["failures"] == 0 and not sched.get("lastError")
              and "backoffUntil" not in sched,
              "the completed deployment clears the failure (failures 0, no lastError, no backoff)", json.dumps(sched))

        # --- problem documents become clear messages --------------------------------------------
        write(f"{conf}/agent.d/other.conf", cert_conf(http_port, deploy, "other", ["web.other.test"]))
        out = env.run_agent(conf, state, "--name", "other", expect=1)
        check("newOrder" in out and "urn:ietf:params:acme:error:rejectedIdentifier" in out,
              "a refused identifier: the newOrder problem type is reported", out)
        check("rejectedIdentifier" in load(f"{state}/other/schedule.json")["lastError"],
              "… and kept as lastError")
        os.unlink(f"{conf}/agent.d/other.conf")
        write(f"{conf}/agent.d/nodns.conf", cert_conf(http_port, deploy, "nodns", ["nodns.example.test"])
              .replace(f"Challenge=http-01\nHTTPListen=127.0.0.1:{http_port}", "Challenge=dns-01\nDNSHook=/bin/true"))
        out = env.run_agent(conf, state, "--name", "nodns", expect=1)
        check("validation of nodns.example.test failed: urn:ietf:params:acme:error:" in out,
              "a failed dns-01 validation: the challenge's problem is reported", out)
        os.unlink(f"{conf}/agent.d/nodns.conf")

        # --- a directory without renewalInfo: 2/3 of the lifetime ------------------------------
        noari = NoAriDirectory(tmp, directory)
        try:
            bundle = f"{tmp}/bundle.pem"
            with open(bundle, "w") as f:
                f.write(open(srv.ca_bundle).read() + open(noari.cert).read())
            conf2, state2 = f"{tmp}/conf2", f"{tmp}/state2"
            # No --state-dir this time: agent.conf's StateDirectory= is used.
            write(f"{conf2}/agent.conf", f"[Agent]\nServer={noari.url}\nCABundle={bundle}\nStateDirectory={state2}\n")
            write(f"{conf2}/agent.d/plain.conf", cert_conf(http_port, deploy, "plain", ["plain.example.test"]))
            env.run_agent(conf2, None)
            s3 = serial_of(f"{deploy}/plain.crt")
            check(os.path.exists(f"{state2}/plain/schedule.json") and
                  oct(os.stat(f"{state2}/plain/live/key.pem").st_mode & 0o777) == oct(0o600),
                  "StateDirectory= of agent.conf holds the state; the stored key is 0600")
            sched = load(f"{state2}/plain/schedule.json")
            nb, na = validity(f"{deploy}/plain.crt")
            life = na - nb
            check(sched["ari"] is False and sched["serial"] == s3, "no renewalInfo: the fallback schedule",
                  json.dumps(sched))
            nr = rfc3339(sched["nextRenewal"])
            check(abs(nr - (nb + life * 2 // 3)) <= life // 30 + 2,
                  f"next renewal {sched['nextRenewal']} at 2/3 of the lifetime ± 1/30")
            check(noari.requests and all(r == "/dir" for r in noari.requests),
                  "only the directory was read from the ARI-less endpoint")
            # The poll for a server that may gain ARI later is daily.
            check(rfc3339(sched["nextAriPoll"]) - rfc3339(sched["lastSuccess"]) == 86400,
                  "without ARI the directory is checked again daily")
        finally:
            noari.stop()

        log("all agent/ARI checks against certfleet-server passed")
        return 0
    except Fail as e:
        report_failure(e, tmp, 30, srv)
        return 1
    finally:
        if srv is not None:
            srv.cleanup()
        env.stop()
        if os.environ.get("CERTFLEET_KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
