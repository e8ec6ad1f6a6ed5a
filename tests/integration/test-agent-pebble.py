#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""certfleet-agent's ACME client against Pebble, a third-party ACME server (Debian package).

Pebble validates against the agent's own responders: http-01 on the agent's standalone listener,
tls-alpn-01 on its TLS listener (Pebble's httpPort/tlsPort point at them), dns-01 through a hook
that feeds pebble-challtestsrv, which is also Pebble's DNS resolver (every name → 127.0.0.1).

Checks: first enrollment and deployment (PEM parses, names, modes, key matches, hook
environment), the fallback schedule (Pebble has no ARI: 2/3 of the lifetime ± 1/30), nothing
happens when nothing is due, a forced renewal, external account binding with the key from
$CREDENTIALS_DIRECTORY, and crash safety: kill -9 during a renewal leaves the previous
certificate deployed and valid, and the next run completes the renewal.

Pebble 2.4 has no ARI, so two small local stand-ins cover the rest: a directory that adds
renewalInfo to Pebble's (window choice, Retry-After clamping, a window in the past renews), and a
minimal ACME mock (replaces with the CertID, alreadyReplaced → retry without it, badNonce,
Retry-After on a processing order). Then the daemon: sd_notify READY/STATUS/RELOADING/STOPPING,
timer-driven enrollment, SIGHUP picking up a new file.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agenttest import (SKIP, Fail, Processes, QuietHandler, agent_binary, ari_cert_id, check,  # noqa: E402
                       edit_schedule, epoch, free_port, iso, log, report_failure, rfc3339, run,
                       serial_of, serve_https, wait_port, write, x509)


class Env(Processes):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.agent = agent_binary()

    def make_tls(self):
        """A CA and a localhost certificate for Pebble's own HTTPS listener."""
        t = self.tmp
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{t}/ca.key", "-out", f"{t}/ca.pem", "-days", "2", "-subj", "/CN=agent-test-ca"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{t}/tls.key", "-out", f"{t}/tls.csr", "-subj", "/CN=localhost"])
        with open(f"{t}/tls.ext", "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run(["openssl", "x509", "-req", "-in", f"{t}/tls.csr", "-CA", f"{t}/ca.pem", "-CAkey", f"{t}/ca.key",
             "-CAcreateserial", "-out", f"{t}/tls.pem", "-days", "2", "-extfile", f"{t}/tls.ext"])

    def start_pebble(self, name, http_port, tls_port, eab=None):
        acme, mgmt = free_port(), free_port()
        cfg = {"pebble": {
            "listenAddress": f"127.0.0.1:{acme}", "managementListenAddress": f"127.0.0.1:{mgmt}",
            "certificate": f"{self.tmp}/tls.pem", "privateKey": f"{self.tmp}/tls.key",
            "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab)}}
        if eab:
            cfg["pebble"]["externalAccountMACKeys"] = eab
        path = os.path.join(self.tmp, f"{name}.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="20", PEBBLE_AUTHZREUSE="0")
        p = self.start(["pebble", "-config", path, "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                       env=env, log_name=f"{name}.log")
        wait_port(acme, p, "pebble")
        url = f"https://127.0.0.1:{acme}/dir"
        ctx = ssl.create_default_context(cafile=f"{self.tmp}/ca.pem")
        deadline = time.time() + 20
        while True:
            try:
                json.load(urllib.request.urlopen(url, context=ctx, timeout=2))
                return url
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def agent_cmd(self, conf, state, *extra):
        return [self.agent, "--once", "--config-dir", conf, "--state-dir", state, *extra]

    def run_agent(self, conf, state, *extra, env=None, expect=0):
        p = subprocess.run(self.agent_cmd(conf, state, *extra), capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, CERTFLEET_LOG_TARGET="stderr", **(env or {})))
        log(p.stderr.rstrip())
        if p.returncode != expect:
            raise Fail(f"certfleet-agent {' '.join(extra)} exited {p.returncode}, expected {expect}")
        return p.stderr


def sans_of(path):
    out = x509(path, "-ext", "subjectAltName")
    return sorted(s.strip()[4:] for s in out.split("\n", 1)[1].split(",") if s.strip().startswith("DNS:"))


def pubkey_of_cert(path):
    return run(["openssl", "x509", "-in", path, "-noout", "-pubkey"]).stdout


def pubkey_of_key(path):
    return run(["openssl", "pkey", "-in", path, "-pubout"]).stdout


def check_deployed(d, name, names, key_mode):
    cert, chain, full, key = (f"{d}/{name}.crt", f"{d}/{name}.chain", f"{d}/{name}.full", f"{d}/{name}.key")
    check(sans_of(cert) == sorted(names), f"{name}: certificate names are {sorted(names)}")
    check(pubkey_of_cert(cert) == pubkey_of_key(key), f"{name}: deployed key matches the deployed certificate")
    with open(cert) as f1, open(chain) as f2, open(full) as f3:
        c, ch, fu = f1.read(), f2.read(), f3.read()
    check(fu == c + ch and ch.count("BEGIN CERTIFICATE") >= 1, f"{name}: full chain = certificate + chain")
    run(["openssl", "verify", "-partial_chain", "-CAfile", chain, cert])
    check(oct(os.stat(key).st_mode & 0o7777) == oct(key_mode), f"{name}: key mode {oct(key_mode)}")
    check(oct(os.stat(cert).st_mode & 0o7777) == oct(0o644), f"{name}: certificate mode 0644")
    return serial_of(cert)


class AriMock:
    """A directory that is Pebble's plus renewalInfo, served here (Pebble 2.4 has no ARI)."""

    def __init__(self, tmp, pebble_dir_url):
        ctx = ssl.create_default_context(cafile=f"{tmp}/ca.pem")
        self.pebble_dir = json.load(urllib.request.urlopen(pebble_dir_url, context=ctx, timeout=5))
        self.window = None
        self.retry_after = "60"
        self.requests = []
        mock = self

        class Handler(QuietHandler):
            def do_GET(self):
                if self.path == "/dir":
                    body = dict(mock.pebble_dir, renewalInfo=f"https://127.0.0.1:{mock.port}/ari/")
                    self.reply(200, body)
                elif self.path.startswith("/ari/"):
                    mock.requests.append(self.path[5:])
                    start, end = mock.window
                    self.reply(200, {"suggestedWindow": {"start": start, "end": end}},
                               {"Retry-After": mock.retry_after})
                else:
                    self.reply(404, {"type": "about:blank"})

            def reply(self, status, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = serve_https(Handler, f"{tmp}/tls.pem", f"{tmp}/tls.key")
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/dir"

    def stop(self):
        self.httpd.shutdown()


class Notify:
    """The receiving end of sd_notify."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []

    def wait_for(self, key, timeout=60, value=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in self.messages:
                if key in m and (value is None or m[key] == value):
                    return m[key]
            try:
                data = self.sock.recv(4096).decode()
                self.messages.append(dict(l.split("=", 1) for l in data.split("\n") if "=" in l))
            except socket.timeout:
                pass
        raise Fail(f"no sd_notify {key}{'=' + value if value else ''} within {timeout}s")


class AcmeMock:
    """A minimal ACME server for what Pebble 2.4 cannot show: renewalInfo with a window in the past,
    `replaces` in newOrder (RFC 9773 §5) answered once with alreadyReplaced, a badNonce, and
    Retry-After on a processing order. Signatures are not checked; certificates come from the
    openssl CLI with a local CA."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.orders_seen = []        # newOrder payloads
        self.accounts_created = 0    # newAccount requests
        self.polls_processing = 0
        self.reject_replaces = True
        self.bad_nonce_once = True
        self.window = None
        self.order_state = {}
        self.serial = 0x1000
        self.foreign_authz = None    # a name the next authorizations claim (pending, dns-01)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{tmp}/mockca.key", "-out", f"{tmp}/mockca.pem", "-days", "2",
             "-subj", "/CN=mock-issuer", "-addext", "subjectKeyIdentifier=hash"])
        mock = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def base(self):
                return f"https://127.0.0.1:{mock.port}"

            def send(self, status, body=b"", ctype="application/json", headers=None):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Replay-Nonce", "n" + str(time.time_ns()))
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def problem(self, status, kind, detail):
                self.send(status, {"type": "urn:ietf:params:acme:error:" + kind, "detail": detail},
                          "application/problem+json")

            def do_HEAD(self):
                self.send(200)

            def do_GET(self):
                b = self.base()
                if self.path == "/dir":
                    self.send(200, {"newNonce": b + "/nonce", "newAccount": b + "/account",
                                    "newOrder": b + "/order", "renewalInfo": b + "/ari",
                                    "meta": {"profiles": {"tlsserver": "TLS server certificates"}}})
                elif self.path.startswith("/ari/"):
                    self.send(200, {"suggestedWindow": {"start": mock.window[0], "end": mock.window[1]}})
                else:
                    self.problem(404, "malformed", "no such resource")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                jws = json.loads(self.rfile.read(length))
                raw = jws["payload"]
                payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) if raw else None
                b, p = self.base(), self.path
                if p == "/account":
                    mock.accounts_created += 1
                    if mock.bad_nonce_once:
                        mock.bad_nonce_once = False
                        return self.problem(400, "badNonce", "try again")
                    return self.send(201, {"status": "valid"}, headers={"Location": b + "/acct/1"})
                if p == "/order":
                    mock.orders_seen.append(payload)
                    if "replaces" in payload and mock.reject_replaces:
                        mock.reject_replaces = False
                        return self.problem(409, "alreadyReplaced", "that certificate was already replaced")
                    oid = str(len(mock.orders_seen))
                    mock.order_state[oid] = {"status": "ready", "names": [i["value"] for i in payload["identifiers"]]}
                    return self.send(201, self.order(oid), headers={"Location": f"{b}/o/{oid}"})
                if p.startswith("/authz/") and mock.foreign_authz:
                    return self.send(200, {"status": "pending",
                                           "identifier": {"type": "dns", "value": mock.foreign_authz},
                                           "challenges": [{"type": "dns-01", "token": "tok",
                                                           "url": b + "/chall/1", "status": "pending"}]})
                if p.startswith("/authz/"):
                    return self.send(200, {"status": "valid", "identifier": {"type": "dns", "value": "x"},
                                           "challenges": []})
                if p.startswith("/o/"):
                    oid = p[3:]
                    st = mock.order_state[oid]
                    if st["status"] == "processing":
                        mock.polls_processing += 1
                        if mock.polls_processing % 2 == 1:
                            return self.send(200, self.order(oid), headers={"Retry-After": "1"})
                        st["status"] = "valid"
                    return self.send(200, self.order(oid))
                if p.startswith("/fin/"):
                    oid = p[5:]
                    csr = base64.urlsafe_b64decode(payload["csr"] + "=" * (-len(payload["csr"]) % 4))
                    mock.issue(oid, csr)
                    mock.order_state[oid]["status"] = "processing"
                    return self.send(200, self.order(oid), headers={"Retry-After": "1"})
                if p.startswith("/cert/"):
                    with open(f"{mock.tmp}/mock-{p[6:]}.pem", "rb") as f:
                        return self.send(200, f.read() + open(f"{mock.tmp}/mockca.pem", "rb").read(),
                                         "application/pem-certificate-chain")
                self.problem(404, "malformed", "no such resource")

            def order(self, oid):
                b, st = self.base(), mock.order_state[oid]
                o = {"status": st["status"], "authorizations": [f"{b}/authz/{oid}"], "finalize": f"{b}/fin/{oid}",
                     "identifiers": [{"type": "dns", "value": n} for n in st["names"]]}
                if st["status"] == "valid":
                    o["certificate"] = f"{b}/cert/{oid}"
                return o

        self.httpd = serve_https(Handler, f"{tmp}/tls.pem", f"{tmp}/tls.key")
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/dir"

    def issue(self, oid, csr_der):
        t = self.tmp
        with open(f"{t}/mock-{oid}.csr", "wb") as f:
            f.write(csr_der)
        names = self.order_state[oid]["names"]
        with open(f"{t}/mock-{oid}.ext", "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n"
                    "authorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n")
        self.serial += 1
        run(["openssl", "x509", "-req", "-inform", "DER", "-in", f"{t}/mock-{oid}.csr", "-CA", f"{t}/mockca.pem",
             "-CAkey", f"{t}/mockca.key", "-set_serial", str(self.serial), "-days", "90",
             "-extfile", f"{t}/mock-{oid}.ext", "-out", f"{t}/mock-{oid}.pem"])

    def stop(self):
        self.httpd.shutdown()


def cert_conf(server, ca, names, challenge_lines, deploy_dir, name, extra=""):
    return f"""[Certificate]
Protocol=acme
Server={server}
Names={' '.join(names)}
CABundle={ca}
{extra}
[ACME]
Email=admin@example.test
{challenge_lines}
[Deploy]
Certificate={deploy_dir}/{name}.crt
Chain={deploy_dir}/{name}.chain
FullChain={deploy_dir}/{name}.full
Key={deploy_dir}/{name}.key
"""


def main():
    for prog in ("pebble", "pebble-challtestsrv", "openssl", "curl"):
        if not shutil.which(prog):
            log(f"{prog} not installed, skipping")
            return SKIP

    tmp = tempfile.mkdtemp(prefix="certfleet-agent-pebble-")
    env = Env(tmp)
    try:
        env.make_tls()
        env.dns_port, env.cts_port = env.start_challtestsrv()
        http_port, tls_port = free_port(), free_port()
        server = env.start_pebble("pebble", http_port, tls_port)
        ca = f"{tmp}/ca.pem"
        conf, state, deploy = f"{tmp}/conf", f"{tmp}/state", f"{tmp}/deploy"
        os.makedirs(deploy)

        # --- http-01 (standalone listener), hook environment, Mode= ---------------------------
        write(f"{tmp}/hook.sh", f"#!/bin/sh\nenv | grep '^CERTFLEET_' | sort > {tmp}/hook.env\n", 0o755)
        write(f"{conf}/agent.conf", f"[Agent]\nStateDirectory={tmp}/unused-state\n")
        write(f"{conf}/agent.d/web.conf",
              cert_conf(server, ca, ["web.example.test", "www.example.test"],
                        f"Challenge=http-01\nHTTPListen=127.0.0.1:{http_port}", deploy, "web")
              + f"Mode=0640\nExecDeploy={tmp}/hook.sh\n")
        os.makedirs(state, exist_ok=True)
        os.chmod(state, 0o755)   # made by hand, too wide: the agent must restrict it
        env.run_agent(conf, state)
        check(os.stat(state).st_mode & 0o7777 == 0o700, "an existing state directory is restricted to 0700")
        s1 = check_deployed(deploy, "web", ["web.example.test", "www.example.test"], 0o640)
        with open(f"{tmp}/hook.env") as f:
            hook_env = {k: v for k, v in (line.rstrip("\n").split("=", 1) for line in f)
                        if k in ("CERTFLEET_CERTIFICATE", "CERTFLEET_CHAIN", "CERTFLEET_FULLCHAIN",
                                 "CERTFLEET_KEY", "CERTFLEET_NAME")}
        check(hook_env == {"CERTFLEET_CERTIFICATE": f"{deploy}/web.crt", "CERTFLEET_CHAIN": f"{deploy}/web.chain",
                           "CERTFLEET_FULLCHAIN": f"{deploy}/web.full", "CERTFLEET_KEY": f"{deploy}/web.key",
                           "CERTFLEET_NAME": "web"}, "ExecDeploy hook got the CERTFLEET_* environment")
        check(not os.path.exists(f"{tmp}/unused-state"), "--state-dir overrides StateDirectory=")
        check(oct(os.stat(f"{state}/web/live/key.pem").st_mode & 0o777) == oct(0o600), "state key is 0600")

        # Fallback schedule: Pebble has no renewalInfo.
        with open(f"{state}/web/schedule.json") as f:
            sched = json.load(f)
        nb = epoch(x509(f"{deploy}/web.crt", "-startdate").split("=", 1)[1])
        na = epoch(x509(f"{deploy}/web.crt", "-enddate").split("=", 1)[1])
        life = na - nb
        nr = rfc3339(sched["nextRenewal"])
        check(sched["ari"] is False, "no ARI at Pebble: fallback schedule")
        check(abs(nr - (nb + life * 2 // 3)) <= life // 30 + 2,
              f"next renewal {sched['nextRenewal']} within 2/3 lifetime ± 1/30")
        check(sched["serial"] == s1 and sched["deployedSerial"] == s1, "schedule records the deployed serial")

        out = env.run_agent(conf, state)
        check("Nothing is due" in out and serial_of(f"{deploy}/web.crt") == s1, "second run: nothing due")

        key1 = pubkey_of_key(f"{deploy}/web.key")
        env.run_agent(conf, state, "--force")
        check(pubkey_of_key(f"{deploy}/web.key") != key1, "a renewal uses a fresh key by default")
        s2 = check_deployed(deploy, "web", ["web.example.test", "www.example.test"], 0o640)
        check(s2 != s1, f"forced renewal replaced {s1} with {s2}")
        check(pubkey_of_key(f"{deploy}/web.key") != "" and
              open(f"{state}/web/live/key.pem").read() == open(f"{deploy}/web.key").read(),
              "deployed key is the state's key")

        # --- tls-alpn-01 and dns-01 (wildcard) ----------------------------------------------------
        hook = f"""#!/bin/sh
echo "$1 $2 $3 $CERTFLEET_DOMAIN" >> {tmp}/dns-hook.log
[ -e {tmp}/dns-slow ] && [ "$1" = set ] && touch {tmp}/dns-hook-sleeping && sleep 300
if [ "$1" = set ]; then
    curl -sf -X POST -d "{{\\"host\\":\\"$2.\\",\\"value\\":\\"$3\\"}}" http://127.0.0.1:{env.cts_port}/set-txt
else
    curl -sf -X POST -d "{{\\"host\\":\\"$2.\\"}}" http://127.0.0.1:{env.cts_port}/clear-txt
fi
"""
        write(f"{tmp}/dns-hook.sh", hook, 0o755)
        conf2, state2 = f"{tmp}/conf2", f"{tmp}/state2"
        write(f"{conf2}/agent.d/alpn.conf",
              cert_conf(server, ca, ["alpn.example.test"],
                        f"Challenge=tls-alpn-01\nTLSListen=127.0.0.1:{tls_port}", deploy, "alpn",
                        "KeyType=rsa-2048"))
        write(f"{conf2}/agent.d/dns.conf",
              cert_conf(server, ca, ["*.dns.example.test", "dns.example.test"],
                        f"Challenge=dns-01\nDNSHook={tmp}/dns-hook.sh", deploy, "dns",
                        "Profile=not-advertised"))
        env.run_agent(conf2, state2)
        check_deployed(deploy, "alpn", ["alpn.example.test"], 0o600)
        check("Public-Key: (2048 bit)" in x509(f"{deploy}/alpn.crt", "-text"), "KeyType=rsa-2048 honoured")
        s_dns = check_deployed(deploy, "dns", ["*.dns.example.test", "dns.example.test"], 0o600)

        # http-01 through a webroot served by another web server (here: Python's) on Pebble's port.
        webroot = f"{tmp}/webroot"
        os.makedirs(webroot)
        web = env.start([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", webroot,
                         str(http_port)], log_name="webroot-server.log")
        wait_port(http_port, web, "webroot http server")
        conf9, state9 = f"{tmp}/conf9", f"{tmp}/state9"
        write(f"{conf9}/agent.d/wr.conf",
              cert_conf(server, ca, ["wr.example.test"], f"Challenge=http-01\nWebroot={webroot}", deploy, "wr"))
        env.run_agent(conf9, state9)
        check_deployed(deploy, "wr", ["wr.example.test"], 0o600)
        check(os.listdir(f"{webroot}/.well-known/acme-challenge") == [], "Webroot=: the challenge file is removed")
        os.killpg(web.pid, signal.SIGTERM)
        web.wait()

        # ReuseKey=yes keeps the key across a renewal.
        s_alpn, key_alpn = serial_of(f"{deploy}/alpn.crt"), pubkey_of_key(f"{deploy}/alpn.key")
        with open(f"{conf2}/agent.d/alpn.conf") as f:
            text = f.read()
        write(f"{conf2}/agent.d/alpn.conf", text.replace("KeyType=rsa-2048", "KeyType=rsa-2048\nReuseKey=yes"))
        env.run_agent(conf2, state2, "--force", "--name", "alpn")
        check(serial_of(f"{deploy}/alpn.crt") != s_alpn and pubkey_of_key(f"{deploy}/alpn.key") == key_alpn,
              "ReuseKey=yes: renewed with the same key")
        check(serial_of(f"{deploy}/dns.crt") == s_dns, "--name limits --force to one certificate")
        with open(f"{tmp}/dns-hook.log") as f:
            calls = [line.split() for line in f]
        check(any(c[0] == "set" and c[1] == "_acme-challenge.dns.example.test" and c[3] == "dns.example.test"
                  for c in calls) and any(c[0] == "clear" for c in calls),
              "dns-01 hook called with set/clear _acme-challenge.NAME VALUE")

        # --- crash safety: kill -9 while the dns-01 hook of a renewal is running --------------
        write(f"{tmp}/dns-slow", "")
        p = subprocess.Popen(env.agent_cmd(conf2, state2, "--force", "--name", "dns"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while not os.path.exists(f"{tmp}/dns-hook-sleeping"):
            if time.time() > deadline or p.poll() is not None:
                raise Fail("the renewal never reached the dns-01 hook")
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        check(serial_of(f"{deploy}/dns.crt") == s_dns, "after kill -9: the previous certificate is still deployed")
        check_deployed(deploy, "dns", ["*.dns.example.test", "dns.example.test"], 0o600)
        run(["openssl", "x509", "-in", f"{state2}/dns/live/cert.pem", "-noout", "-checkend", "3600"])
        check(pubkey_of_cert(f"{state2}/dns/live/cert.pem") == pubkey_of_key(f"{state2}/dns/live/key.pem"),
              "after kill -9: the stored certificate and key still match")
        with open(f"{state2}/dns/schedule.json") as f:
            check(json.load(f)["renewRequested"] is True, "the interrupted renewal is recorded as requested")
        leftovers = [n for n in os.listdir(deploy) if n.endswith(".certfleet-new")]
        check(not leftovers, "no staged files left in the deploy directory")

        os.unlink(f"{tmp}/dns-slow")
        env.run_agent(conf2, state2)   # not forced: the persisted request makes it due
        s_dns2 = check_deployed(deploy, "dns", ["*.dns.example.test", "dns.example.test"], 0o600)
        check(s_dns2 != s_dns, f"restart completed the interrupted renewal ({s_dns} → {s_dns2})")
        with open(f"{state2}/dns/schedule.json") as f:
            check(json.load(f)["renewRequested"] is False, "the renewal request is cleared")

        # A deployment that never completed (crash after the commit): the next run redeploys.
        edit_schedule(f"{state2}/dns/schedule.json", deployedSerial="0")
        os.unlink(f"{deploy}/dns.key")
        out = env.run_agent(conf2, state2)
        check("Deployed certificate " + s_dns2 in out, "an unfinished deployment is redone on the next run")
        check_deployed(deploy, "dns", ["*.dns.example.test", "dns.example.test"], 0o600)

        # A crash after the new generation was committed but before the schedule recorded it:
        # the request counts as fulfilled, nothing is issued twice, the new certificate deployed.
        edit_schedule(f"{state2}/dns/schedule.json", serial="0", deployedSerial="0", renewRequested=True)
        out = env.run_agent(conf2, state2)
        with open(f"{state2}/dns/schedule.json") as f:
            sched = json.load(f)
        check("Renewing" not in out and serial_of(f"{deploy}/dns.crt") == s_dns2 and
              sched["renewRequested"] is False and sched["deployedSerial"] == s_dns2,
              "a renewal committed just before a crash is not repeated")

        # --- ARI: renewalInfo window, kept choice, moved window, window in the past -------------
        mock = AriMock(tmp, server)
        try:
            now = int(time.time())
            mock.window = (iso(now + 10 * 86400), iso(now + 11 * 86400))
            conf5, state5 = f"{tmp}/conf5", f"{tmp}/state5"
            write(f"{conf5}/agent.d/ari.conf",
                  cert_conf(mock.url, ca, ["ari.example.test"],
                            f"Challenge=http-01\nHTTPListen=127.0.0.1:{http_port}", deploy, "ari"))
            env.run_agent(conf5, state5)
            s_ari = check_deployed(deploy, "ari", ["ari.example.test"], 0o600)
            sched_path = f"{state5}/ari/schedule.json"
            with open(sched_path) as f:
                sched = json.load(f)
            check(mock.requests == [ari_cert_id(f"{deploy}/ari.crt")],
                  "renewalInfo fetched once, for the CertID of the new certificate (AKI.serial)")
            check(sched["ari"] is True and sched["windowStart"] == mock.window[0] and
                  sched["windowEnd"] == mock.window[1], "the schedule holds the suggested window")
            chosen = rfc3339(sched["chosen"])
            check(now + 10 * 86400 <= chosen <= now + 11 * 86400 and sched["nextRenewal"] == sched["chosen"],
                  "a renewal time inside the window was chosen")
            check(rfc3339(sched["nextAriPoll"]) - rfc3339(sched["lastSuccess"]) == 3600,
                  "Retry-After: 60 is clamped up to one hour")

            # Poll again with a window that still contains the choice: the choice stays.
            mock.window = (iso(chosen - 3600), iso(chosen + 3600))
            edit_schedule(sched_path, nextAriPoll=iso(now - 10))
            out = env.run_agent(conf5, state5)
            with open(sched_path) as f:
                sched = json.load(f)
            check(len(mock.requests) == 2 and rfc3339(sched["chosen"]) == chosen and
                  serial_of(f"{deploy}/ari.crt") == s_ari, "a window still containing the choice keeps it")
            mock.retry_after = str(30 * 86400)
            mock.window = (iso(now + 20 * 86400), iso(now + 21 * 86400))
            edit_schedule(sched_path, nextAriPoll=iso(now - 10))
            env.run_agent(conf5, state5)
            with open(sched_path) as f:
                sched = json.load(f)
            check(now + 20 * 86400 <= rfc3339(sched["chosen"]) <= now + 21 * 86400,
                  "a window that moved away from the choice: a new choice inside it")
            check(abs(rfc3339(sched["nextAriPoll"]) - (int(time.time()) + 7 * 86400)) <= 5,
                  "Retry-After of 30 days is clamped down to 7 days")

            # The window is in the past: renew at once.
            mock.retry_after = "3600"
            mock.window = (iso(now - 2 * 86400), iso(now - 86400))
            edit_schedule(sched_path, nextAriPoll=iso(now - 10))
            env.run_agent(conf5, state5)
            s_ari2 = check_deployed(deploy, "ari", ["ari.example.test"], 0o600)
            check(s_ari2 != s_ari, f"a past window renews at once ({s_ari} → {s_ari2})")
            check(mock.requests[-1] == ari_cert_id(f"{deploy}/ari.crt"),
                  "after renewing, the new certificate's renewalInfo was fetched")
        finally:
            mock.stop()

        # --- replaces, alreadyReplaced, badNonce, Retry-After (mock ACME server) -----------------
        amock = AcmeMock(tmp)
        try:
            amock.window = (iso(int(time.time()) + 30 * 86400), iso(int(time.time()) + 31 * 86400))
            conf7, state7 = f"{tmp}/conf7", f"{tmp}/state7"
            write(f"{conf7}/agent.d/mock.conf",
                  cert_conf(amock.url, ca, ["mock.example.test"], "Challenge=dns-01\nDNSHook=/bin/false",
                            deploy, "mock", "Profile=tlsserver"))
            t0 = time.time()
            env.run_agent(conf7, state7)
            check(time.time() - t0 >= 1, "Retry-After on a processing order is honoured")
            m1 = check_deployed(deploy, "mock", ["mock.example.test"], 0o600)
            check(amock.bad_nonce_once is False, "newAccount survived a badNonce")
            check(len(amock.orders_seen) == 1 and "replaces" not in amock.orders_seen[0],
                  "a first enrollment sends no replaces")
            check(amock.orders_seen[0].get("profile") == "tlsserver", "Profile= goes into newOrder when advertised")
            old_id = ari_cert_id(f"{deploy}/mock.crt")
            amock.window = (iso(int(time.time()) - 2 * 86400), iso(int(time.time()) - 86400))
            edit_schedule(f"{state7}/mock/schedule.json", nextAriPoll=iso(int(time.time()) - 10))
            env.run_agent(conf7, state7)
            m2 = check_deployed(deploy, "mock", ["mock.example.test"], 0o600)
            check(m2 != m1, "ARI window in the past: renewed")
            check([o.get("replaces") for o in amock.orders_seen[1:]] == [old_id, None],
                  "the renewal's newOrder carried replaces=CertID, and after alreadyReplaced it was retried without")
            check(amock.accounts_created == 2, "the account is registered once (plus the badNonce retry) and reused")

            # The server claims an authorization for a name we never ordered: DNSHook= must not be
            # asked to publish a record for it.
            amock.foreign_authz = "victim.example.test"
            marker = f"{tmp}/foreign-hook.out"
            write(f"{tmp}/foreign-hook.sh", f"#!/bin/sh\necho \"$@\" >> {marker}\n", 0o755)
            write(f"{conf7}/agent.d/mock.conf",
                  cert_conf(amock.url, ca, ["mock.example.test"], f"Challenge=dns-01\nDNSHook={tmp}/foreign-hook.sh",
                            deploy, "mock", "Profile=tlsserver"))
            out = env.run_agent(conf7, state7, "--force", expect=1)
            check(not os.path.exists(marker), "DNSHook= is not run for an authorization of a name not ordered")
            check("not ordered" in out, "an authorization for a name not ordered fails with a clear message")
            check(check_deployed(deploy, "mock", ["mock.example.test"], 0o600) == m2,
                  "the deployed certificate is left as it was")
            amock.foreign_authz = None
        finally:
            amock.stop()

        # --- daemon mode: sd_notify READY/STATUS, timer-driven enrollment, SIGHUP reload --------
        conf6, state6 = f"{tmp}/conf6", f"{tmp}/state6"
        write(f"{conf6}/agent.d/d1.conf",
              cert_conf(server, ca, ["d1.example.test"],
                        f"Challenge=http-01\nHTTPListen=127.0.0.1:{http_port}", deploy, "d1"))
        notify = Notify(f"{tmp}/notify.sock")
        daemon_log = open(f"{tmp}/daemon.log", "w")
        d = subprocess.Popen([env.agent, "--no-bus", "--config-dir", conf6, "--state-dir", state6],
                             stdout=daemon_log, stderr=subprocess.STDOUT, start_new_session=True,
                             env=dict(os.environ, NOTIFY_SOCKET=notify.path, CERTFLEET_LOG_TARGET="stderr"))
        env.procs.append(d)
        check(notify.wait_for("READY") == "1", "daemon: READY=1")
        deadline = time.time() + 60
        while not os.path.exists(f"{deploy}/d1.crt"):
            if time.time() > deadline or d.poll() is not None:
                raise Fail("daemon: the new certificate was not enrolled")
            time.sleep(0.2)
        check_deployed(deploy, "d1", ["d1.example.test"], 0o600)
        notify.wait_for("STATUS", value="1 certificate: 1 valid, 0 renewing, 0 failed, 0 expired, 0 new; "
                        "next renewal " + json.load(open(f"{state6}/d1/schedule.json"))["nextRenewal"])
        log("ok: daemon: STATUS reports the certificate and the next renewal")

        write(f"{conf6}/agent.d/d2.conf",
              cert_conf(server, ca, ["d2.example.test"],
                        f"Challenge=http-01\nHTTPListen=127.0.0.1:{http_port}", deploy, "d2"))
        d.send_signal(signal.SIGHUP)
        deadline = time.time() + 60
        while not os.path.exists(f"{deploy}/d2.crt"):
            if time.time() > deadline or d.poll() is not None:
                raise Fail("daemon: SIGHUP did not pick up d2.conf")
            time.sleep(0.2)
        check_deployed(deploy, "d2", ["d2.example.test"], 0o600)
        check(notify.wait_for("RELOADING") == "1", "daemon: SIGHUP reloads (RELOADING=1) and enrolls the new file")
        d.send_signal(signal.SIGTERM)
        check(d.wait(30) == 0, "daemon: SIGTERM exits 0")
        check(notify.wait_for("STOPPING") == "1", "daemon: STOPPING=1")

        # --- external account binding, key from $CREDENTIALS_DIRECTORY --------------------------
        eab_key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
        http2, tls2 = free_port(), free_port()
        server_eab = env.start_pebble("pebble-eab", http2, tls2, eab={"kid-1": eab_key})
        conf3, state3, creds = f"{tmp}/conf3", f"{tmp}/state3", f"{tmp}/creds"
        write(f"{creds}/eab", eab_key + "\n", 0o600)
        base = cert_conf(server_eab, ca, ["eab.example.test"],
                         f"Challenge=http-01\nHTTPListen=127.0.0.1:{http2}", deploy, "eab")
        write(f"{conf3}/agent.d/eab.conf", base.replace("[ACME]\n", "[ACME]\nEABKeyID=kid-1\nEABKey=eab\n"))
        out = env.run_agent(conf3, state3, expect=1)
        check("CREDENTIALS_DIRECTORY" in out, "EAB without $CREDENTIALS_DIRECTORY fails with a clear message")
        with open(f"{state3}/eab/schedule.json") as f:
            sched = json.load(f)
        check(sched["failures"] == 1 and "EAB" in sched["lastError"] and "backoffUntil" in sched,
              "the failure is recorded with LastError and a backoff")
        env.run_agent(conf3, state3, "--force", env={"CREDENTIALS_DIRECTORY": creds})
        check_deployed(deploy, "eab", ["eab.example.test"], 0o600)

        # Without EAB the same server refuses, and the problem document reaches the message.
        write(f"{conf3}/agent.d/eab.conf", base)
        out = env.run_agent(conf3, f"{tmp}/state4", expect=1)
        check("externalAccountRequired" in out or "external account" in out,
              "newAccount without EAB: the server's problem is reported")
        log("all agent/pebble checks passed")
        return 0
    except Fail as e:
        report_failure(e, tmp, 30)
        return 1
    finally:
        env.stop()
        if os.environ.get("CERTFLEET_KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
