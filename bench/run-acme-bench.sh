#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ACME load benchmark: certfleet-server against Pebble, driven by bench/acme-load (C, one thread
# per client). Both servers validate http-01 against the driver's own responder; names resolve to
# 127.0.0.1 through pebble-challtestsrv. Prints one table with both servers' figures and the
# pebble/certfleet ratios. A benchmark: it reports figures, it never decides pass/fail (exit status
# is non-zero only when the benchmark could not run at all).
#
#   bench/run-acme-bench.sh [--duration SEC] [--clients "1 4"] [--high-clients 64] [--repeat N]
#                           [--build-dir DIR] [--no-pebble] [--keep] [--verbose]
#
# --repeat N runs every point N times, alternating the servers, and reports the median and the
# range: on a shared 2-core VM one 20 s run of the same build varies by about ±10 %.
# Environment: BENCH_DURATION, BENCH_CLIENTS, BENCH_HIGH_CLIENTS, BENCH_REPEAT, BENCH_BUILD_DIR.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
duration="${BENCH_DURATION:-20}"
clients="${BENCH_CLIENTS:-1 4}"
high_clients="${BENCH_HIGH_CLIENTS:-64}"
repeat="${BENCH_REPEAT:-1}"
build="${BENCH_BUILD_DIR:-$top/build-bench}"
pebble=1
keep=0
verbose=()

while [ $# -gt 0 ]; do
        case "$1" in
        --duration) duration=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --high-clients) high_clients=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --build-dir) build=$2; shift 2 ;;
        --no-pebble) pebble=0; shift ;;
        --keep) keep=1; shift ;;
        --verbose) verbose=(--verbose); shift ;;
        -h|--help) sed -n '3,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
        esac
done

"$top/tools/install-deps.sh"

if [ -d "$build" ]; then
        meson setup --reconfigure "$build" "$top" >/dev/null
else
        meson setup "$build" "$top" >/dev/null
fi
ninja -C "$build" server/certfleet-server bench/acme-load >/dev/null
server_bin="$build/server/certfleet-server"
driver="$build/bench/acme-load"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/acme-bench.XXXXXX")
pids=()
driver_pid=
cleanup() {
        local p
        if [ -n "$driver_pid" ]; then
                kill "$driver_pid" 2>/dev/null || true
                wait "$driver_pid" 2>/dev/null || true
        fi
        for p in "${pids[@]}"; do
                kill "$p" 2>/dev/null || true
        done
        for p in "${pids[@]}"; do
                wait "$p" 2>/dev/null || true
        done
        if [ "$keep" = 1 ]; then
                echo "kept $tmp"
        else
                rm -rf "$tmp"
        fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Loopback ports the kernel says are free now. Another process could take one before we bind it;
# on a shared machine that is rare enough for a benchmark.
free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_url() {   # URL CAFILE PID NAME
        local i
        for i in $(seq 1 150); do
                if ! kill -0 "$3" 2>/dev/null; then
                        echo "$4 exited during start-up:" >&2
                        tail -n 30 "$tmp/$4.log" >&2
                        exit 1
                fi
                if [ -f "$2" ] && curl -sf --cacert "$2" -o /dev/null "$1"; then
                        return 0
                fi
                sleep 0.2
        done
        echo "$4 did not answer $1 within 30 s" >&2
        tail -n 30 "$tmp/$4.log" >&2
        exit 1
}

dns_port=$(free_port)
cts_port=$(free_port)
http01_port=$(free_port)    # the driver's responder; both servers validate there
tls01_port=$(free_port)     # nothing listens: Pebble wants a tlsPort, we only use http-01

pebble-challtestsrv -dns01 "127.0.0.1:$dns_port" -http01 "" -https01 "" -tlsalpn01 "" \
        -management "127.0.0.1:$cts_port" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
        >"$tmp/challtestsrv.log" 2>&1 &
pids+=($!)

# --- certfleet-server: fresh state directory, one HTTP worker per core -------------------------
cf_port=$(free_port)
cf_state="$tmp/certfleet-state"
cat >"$tmp/certfleet.conf" <<EOF
[Server]
StateDirectory=$cf_state
Workers=$(nproc)

[HTTPS]
Listen=127.0.0.1:$cf_port

[Validation]
Resolver=127.0.0.1:$dns_port
HTTPPort=$http01_port

[CA default]
Backend=local
Directory=$cf_state/ca/default

[RAProfile default]
CA=default
Enabled=yes
AllowedIdentifiers=*
KeyAlgorithms=ec rsa ed25519
Validity=47d
ExtendedKeyUsage=serverAuth
ACMEProfile=default

[ACMEProfile default]
Enabled=yes
RAProfile=default
EOF
CERTFLEET_LOG_TARGET=stderr CERTFLEET_LOG_LEVEL=notice \
        "$server_bin" --config "$tmp/certfleet.conf" serve >"$tmp/certfleet.log" 2>&1 &
cf_pid=$!
pids+=("$cf_pid")
cf_dir="https://127.0.0.1:$cf_port/api/v1/protocols/acme/default/directory"
cf_ca="$tmp/certfleet-ca.pem"
for i in $(seq 1 150); do
        [ -f "$cf_state/ca/default/issuing.crt" ] && break
        sleep 0.2
done
cat "$cf_state/ca/default/root.crt" "$cf_state/ca/default/issuing.crt" >"$cf_ca"
wait_url "$cf_dir" "$cf_ca" "$cf_pid" certfleet

# --- Pebble: its own localhost certificate (the Debian package ships no test certificates) ------
if [ "$pebble" = 1 ]; then
        pb_port=$(free_port)
        pb_mgmt=$(free_port)
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -keyout "$tmp/pebble-ca.key" -out "$tmp/pebble-ca.pem" -subj /CN=bench-pebble-ca 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
                -keyout "$tmp/pebble-tls.key" -out "$tmp/pebble-tls.csr" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tmp/pebble-tls.ext"
        openssl x509 -req -in "$tmp/pebble-tls.csr" -CA "$tmp/pebble-ca.pem" -CAkey "$tmp/pebble-ca.key" \
                -CAcreateserial -days 2 -extfile "$tmp/pebble-tls.ext" -out "$tmp/pebble-tls.pem" 2>/dev/null
        cat >"$tmp/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$pb_port", "managementListenAddress": "127.0.0.1:$pb_mgmt",
 "certificate": "$tmp/pebble-tls.pem", "privateKey": "$tmp/pebble-tls.key",
 "httpPort": $http01_port, "tlsPort": $tls01_port, "ocspResponderURL": "",
 "externalAccountBindingRequired": false}}
EOF
        pb_dir="https://127.0.0.1:$pb_port/dir"
        pb_pid=
fi

# A fresh Pebble for every run: Pebble 2.4 can hang for good once it stalls (seen at 4 clients),
# and then every later run of it would fail too. It also keeps every order in memory, so a fresh
# process is, if anything, in its favour.
start_pebble() {
        if [ -n "$pb_pid" ]; then
                kill "$pb_pid" 2>/dev/null || true
                wait "$pb_pid" 2>/dev/null || true
        fi
        PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
                pebble -config "$tmp/pebble.json" -dnsserver "127.0.0.1:$dns_port" >>"$tmp/pebble.log" 2>&1 &
        pb_pid=$!
        pids+=("$pb_pid")
        wait_url "$pb_dir" "$tmp/pebble-ca.pem" "$pb_pid" pebble
}

echo "certfleet-server pid $cf_pid ($cf_dir), Workers=$(nproc)"
[ "$pebble" = 1 ] && echo "pebble: a fresh process per run ($pb_dir)"
echo "http-01 responder port $http01_port, DNS 127.0.0.1:$dns_port, $duration s per run, $(nproc) cores"
echo

results=()
run() {   # LABEL CLIENTS DIRECTORY CAFILE PID
        local out="$tmp/$1-$2-${#results[@]}.json"
        # Let asynchronous work of the previous run (validations, issuance) settle before measuring.
        sleep 1
        if ! kill -0 "$5" 2>/dev/null; then
                echo "$1 is not running any more; skipping $2 clients" >&2
                return 0
        fi
        # In the background with `wait`, so that a signal reaches our trap at once.
        "$driver" --label "$1" --clients "$2" --duration "$duration" --directory "$3" --cacert "$4" \
                --http-port "$http01_port" --server-pid "$5" --json "$out" "${verbose[@]}" &
        driver_pid=$!
        wait "$driver_pid" || true
        driver_pid=
        echo
        [ -s "$out" ] && results+=("$out")
        return 0
}

case "$repeat" in
''|*[!0-9]*|0) echo "--repeat wants a positive number" >&2; exit 2 ;;
esac
for i in $(seq 1 "$repeat"); do
        for c in $clients; do
                run certfleet "$c" "$cf_dir" "$cf_ca" "$cf_pid"
                if [ "$pebble" = 1 ]; then
                        # Pebble 2.4 is known to hang with 8 or more concurrent clients: compare at 1 and 4.
                        start_pebble
                        run pebble "$c" "$pb_dir" "$tmp/pebble-ca.pem" "$pb_pid"
                fi
        done
        if [ -n "$high_clients" ] && [ "$high_clients" != 0 ]; then
                run certfleet "$high_clients" "$cf_dir" "$cf_ca" "$cf_pid"
        fi
done

if ! kill -0 "$cf_pid" 2>/dev/null; then
        echo "certfleet-server exited during the benchmark; the end of its log:" >&2
        tail -n 40 "$tmp/certfleet.log" >&2
fi

python3 - "${results[@]}" <<'EOF'
import json, sys

rows = [json.load(open(p)) for p in sys.argv[1:]]

def f(v, fmt="{:.1f}"):
    return "-" if v is None else fmt.format(v)

print("%-10s %7s %8s %7s %9s %8s %8s %8s %13s %13s" % (
    "server", "clients", "orders", "errors", "orders/s", "p50 ms", "p99 ms", "max ms",
    "srv CPU ms/c", "drv CPU ms/c"))
for r in rows:
    lat = r.get("latency_ms", {})
    print("%-10s %7d %8d %7d %9s %8s %8s %8s %13s %13s" % (
        r["label"], r["clients"], r["orders_ok"], r["errors"], f(r.get("orders_per_s")),
        f(lat.get("p50")), f(lat.get("p99")), f(lat.get("max")),
        f(r.get("server_cpu_ms_per_cert"), "{:.3f}"), f(r.get("driver_cpu_ms_per_cert"), "{:.3f}")))
    for t, n in sorted(r.get("error_types", {}).items()):
        print("%-10s   error %s: %d" % ("", t, n))

def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

groups = {}
for r in rows:
    groups.setdefault((r["label"], r["clients"]), []).append(r)
if any(len(g) > 1 for g in groups.values()):
    print("\nmedian (min-max) over %d runs per point" % max(len(g) for g in groups.values()))
    print("%-10s %7s %22s %22s %7s" % ("server", "clients", "srv CPU ms/cert", "orders/s", "errors"))
    for (label, c), g in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cpu = [r.get("server_cpu_ms_per_cert") for r in g if r.get("server_cpu_ms_per_cert") is not None]
        ops = [r.get("orders_per_s") for r in g if r.get("orders_per_s") is not None]
        print("%-10s %7d %22s %22s %7d" % (
            label, c,
            "%.3f (%.3f-%.3f)" % (median(cpu), min(cpu), max(cpu)) if cpu else "-",
            "%.1f (%.1f-%.1f)" % (median(ops), min(ops), max(ops)) if ops else "-",
            sum(r["errors"] for r in g)))

by = {}
for key, g in groups.items():
    by[key] = {"server_cpu_ms_per_cert": median(r.get("server_cpu_ms_per_cert") for r in g),
               "orders_per_s": median(r.get("orders_per_s") for r in g)}
printed = False
for c in sorted({r["clients"] for r in rows}):
    cf, pb = by.get(("certfleet", c)), by.get(("pebble", c))
    if not cf or not pb:
        continue
    if not printed:
        print("\npebble / certfleet ratios of the medians (> 1: certfleet better on CPU, pebble faster on orders/s)")
        printed = True
    a, b = pb.get("server_cpu_ms_per_cert"), cf.get("server_cpu_ms_per_cert")
    x, y = pb.get("orders_per_s"), cf.get("orders_per_s")
    cpu = "%.2f" % (a / b) if a and b else "-"
    ops = "%.2f" % (x / y) if x and y else "-"
    print("  %2d clients: server CPU ms/cert %s (pebble %s, certfleet %s); orders/s %s (pebble %s, certfleet %s)"
          % (c, cpu, f(a, "{:.3f}"), f(b, "{:.3f}"), ops, f(x), f(y)))
EOF
