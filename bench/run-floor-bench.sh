#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What one ACME certificate costs at the least on this machine, whatever the server: the
# signature checks every order needs (OpenSSL's own `openssl speed`) and the HTTPS requests it
# takes, measured on nginx serving a small static file over TLS 1.3 keep-alive connections (the
# cheapest HTTPS request this machine serves). Compare the sum with bench/run-acme-bench.sh's
# server CPU per certificate. A benchmark: it prints figures and never decides pass/fail.
#
#   bench/run-floor-bench.sh [--duration SEC] [--connections N]
#
# Installs nginx-light and wrk (Debian) if they are missing.
set -euo pipefail

duration=10
connections=4
while [ $# -gt 0 ]; do
        case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        -h|--help) sed -n '3,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
        esac
done

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/floor-bench.XXXXXX")
nginx_pid=
cleanup() {
        [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

# --- signatures: one ES256 JWS per request (5 per order) and the CSR's own signature ----------
speed=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/nistp256/ {print $(NF-1), $NF}')
sign_per_s=${speed% *}
verify_per_s=${speed#* }

# --- HTTPS requests: nginx, one worker, keep-alive, TLS 1.3, a 1 KiB JSON body ------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/www" "$tmp/logs"
head -c 768 /dev/urandom | base64 -w0 >"$tmp/www/object.json"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 1024; }
http {
        access_log off;
        client_body_temp_path $tmp/logs;
        server {
                listen 127.0.0.1:$port ssl;
                ssl_certificate $tmp/cert.pem;
                ssl_certificate_key $tmp/key.pem;
                ssl_protocols TLSv1.3;
                keepalive_requests 100000000;
                root $tmp/www;
        }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" &
nginx_pid=$!
for i in $(seq 1 50); do
        curl -skf -o /dev/null "https://127.0.0.1:$port/object.json" && break
        sleep 0.1
done
ticks() { awk '{print $14 + $15}' "/proc/$nginx_pid/stat"; }
t0=$(ticks)
requests=$(wrk -t1 -c"$connections" -d"${duration}s" "https://127.0.0.1:$port/object.json" |
        awk '/requests in/ {print $1}')
t1=$(ticks)
hz=$(getconf CLK_TCK)

python3 - "$sign_per_s" "$verify_per_s" "$requests" "$((t1 - t0))" "$hz" "$connections" <<'PY'
import sys
sign_s, verify_s, requests, ticks, hz, conns = sys.argv[1:]
sign_us = 1e6 / float(sign_s)
verify_us = 1e6 / float(verify_s)
request_us = float(ticks) / float(hz) * 1e6 / int(requests)
print("ECDSA P-256 (openssl speed): sign %.1f us, verify %.1f us" % (sign_us, verify_us))
print("nginx HTTPS keep-alive GET, %s connections: %d requests, %.1f us of nginx CPU each"
      % (conns, int(requests), request_us))
# An ACME order over the benchmark's flow: 5 JWS requests (newOrder, authz, challenge, finalize,
# certificate), the CSR's signature, the certificate's signature.
floor = 6 * verify_us + sign_us + 5 * request_us
print("floor per certificate (6 verifies + 1 signature + 5 HTTPS requests): %.3f ms" % (floor / 1000))
print("not in the floor: the CSR's decoding, the validation's own HTTP fetch and DNS lookups,")
print("the database, JSON and the JWS checks")
PY
