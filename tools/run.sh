#!/usr/bin/env bash
# The README's run command: certfleet on embedded defaults, on loopback.
#
#  - builds certfleet (installing missing Debian packages first);
#  - starts certfleet-server with a fresh state directory: SQLite, a fresh local CA, the default
#    ACME profile, HTTPS on 127.0.0.1;
#  - prints the ACME directory URL and the CA bundle to trust;
#  - shows certbot obtaining a certificate from it;
#  - starts certfleet-agent on a private system-like D-Bus (with the shipped bus policy), which
#    enrolls a certificate from the server and deploys it, and prints the agent's status through
#    busctl and certfleetctl.
#
# On a terminal it then keeps the server running until Ctrl-C; otherwise it stops everything and
# exits. Environment: CERTFLEET_RUN_DIR (state, default a new /tmp/certfleet-run.*),
# CERTFLEET_PORT (HTTPS port, default 8443 or a free one).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build-run"

"$top/tools/install-deps.sh"

if [ ! -d "$build" ]; then
        meson setup "$build" "$top" -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null

run_dir="${CERTFLEET_RUN_DIR:-$(mktemp -d /tmp/certfleet-run.XXXXXX)}"
mkdir -p "$run_dir"
pids=()
cleanup() {
        for pid in "${pids[@]}"; do
                kill "$pid" 2>/dev/null || true
        done
        wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_is_free() {
        python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

port="${CERTFLEET_PORT:-8443}"
port_is_free "$port" || port=$(free_port)
http01_port=$(free_port)
dns_port=$(free_port)
mgmt_port=$(free_port)

# Demo names must resolve to this machine for the server's http-01 validation: a local DNS
# server (pebble-challtestsrv, from Debian's pebble package) answers 127.0.0.1 for every name.
pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$dns_port" \
        -http01 "" -https01 "" -tlsalpn01 "" -management "127.0.0.1:$mgmt_port" \
        >"$run_dir/dns.log" 2>&1 &
pids+=($!)

# Embedded defaults for everything; only the validator is pointed at the demo's DNS and port.
mkdir -p "$run_dir/server.conf.d"
cat > "$run_dir/server.conf.d/10-demo-validation.conf" <<CONF
[Validation]
Resolver=127.0.0.1:$dns_port
HTTPPort=$http01_port
CONF

"$build/server/certfleet-server" --config "$run_dir/server.conf" --state-dir "$run_dir/server" \
        --listen "127.0.0.1:$port" >"$run_dir/server.log" 2>&1 &
pids+=($!)
server_pid=$!

directory="https://127.0.0.1:$port/api/v1/protocols/acme/default/directory"
bundle="$run_dir/server/ca/default/root.crt"
for _ in $(seq 1 100); do
        if [ -s "$bundle" ] && curl -sf --cacert "$bundle" "$directory" >/dev/null 2>&1; then
                break
        fi
        kill -0 "$server_pid" 2>/dev/null || { cat "$run_dir/server.log"; echo "certfleet-server exited"; exit 1; }
        sleep 0.1
done
curl -sf --cacert "$bundle" "$directory" >/dev/null || { cat "$run_dir/server.log"; exit 1; }

cat <<MSG

certfleet-server is running (pid $server_pid), state in $run_dir/server
  ACME directory:   $directory
  CA bundle:        $bundle
  server log:       $run_dir/server.log

certbot, trusting that CA, gets a certificate for www.demo.internal (http-01 on port $http01_port):
MSG

REQUESTS_CA_BUNDLE="$bundle" certbot certonly --non-interactive --agree-tos \
        --email admin@demo.internal --server "$directory" \
        --standalone --http-01-address 127.0.0.1 --http-01-port "$http01_port" \
        --config-dir "$run_dir/certbot/config" --work-dir "$run_dir/certbot/work" \
        --logs-dir "$run_dir/certbot/logs" -d www.demo.internal 2>&1 | sed 's/^/  certbot: /'

cert="$run_dir/certbot/config/live/www.demo.internal/cert.pem"
echo
openssl x509 -in "$cert" -noout -subject -issuer -serial -dates -ext subjectAltName | sed 's/^/  /'
echo
echo "The server's inventory:"
"$build/server/certfleet-server" --state-dir "$run_dir/server" cert list | sed 's/^/  /'

# The agent. A private bus with the shipped policy stands in for the system bus, so the demo
# needs no installation; on a real host the agent uses the system bus.
agent_dir="$run_dir/agent"
mkdir -p "$agent_dir/etc/agent.d" "$agent_dir/deploy"
cat > "$agent_dir/bus.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$agent_dir/bus.socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow send_type="signal"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <include>$top/dbus/org.certfleet.Agent1.conf</include>
</busconfig>
BUS
dbus-daemon --config-file="$agent_dir/bus.conf" --nofork --print-address=3 \
        3>"$agent_dir/bus.address" >"$agent_dir/bus.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
        [ -s "$agent_dir/bus.address" ] && break
        sleep 0.1
done
export DBUS_SYSTEM_BUS_ADDRESS
DBUS_SYSTEM_BUS_ADDRESS=$(head -n 1 "$agent_dir/bus.address")

cat > "$agent_dir/etc/agent.conf" <<CONF
[Agent]
Server=$directory
CABundle=$bundle
Email=admin@demo.internal
CONF
cat > "$agent_dir/etc/agent.d/web.conf" <<CONF
[Certificate]
Names=web.demo.internal

[ACME]
Challenge=http-01
HTTPListen=127.0.0.1:$http01_port

[Deploy]
Certificate=$agent_dir/deploy/web.crt
FullChain=$agent_dir/deploy/web.fullchain.pem
Key=$agent_dir/deploy/web.key
Mode=0640
CONF

"$build/agent/certfleet-agent" --config-dir "$agent_dir/etc" --state-dir "$agent_dir/state" \
        >"$agent_dir/agent.log" 2>&1 &
pids+=($!)
agent_pid=$!

certfleetctl="$build/agent/certfleetctl"
for _ in $(seq 1 300); do
        if "$certfleetctl" status web --json 2>/dev/null | grep -q '"state": *"valid"'; then
                break
        fi
        kill -0 "$agent_pid" 2>/dev/null || { cat "$agent_dir/agent.log"; echo "certfleet-agent exited"; exit 1; }
        sleep 0.1
done

cat <<MSG

certfleet-agent is running (pid $agent_pid) on the bus $DBUS_SYSTEM_BUS_ADDRESS
  config:   $agent_dir/etc/agent.d/web.conf
  deployed: $(cd "$agent_dir/deploy" && echo *)
  log:      $agent_dir/agent.log

busctl tree org.certfleet.Agent1:
MSG
busctl --system tree org.certfleet.Agent1 | sed 's/^/  /'
cert_path=$(busctl --system call org.certfleet.Agent1 /org/certfleet/Agent1 \
        org.certfleet.Agent1.Manager ListCertificates | grep -o '"/[^"]*"' | head -n 1 | tr -d '"')
echo
echo "busctl get-property … State Serial NotAfter NextRenewal:"
for prop in State Serial NotAfter NextRenewal; do
        printf '  %-12s %s\n' "$prop" "$(busctl --system get-property org.certfleet.Agent1 "$cert_path" \
                org.certfleet.Agent1.Certificate "$prop")"
done
echo
echo "certfleetctl list:"
"$certfleetctl" list | sed 's/^/  /'
echo
echo "certfleetctl status web:"
"$certfleetctl" status web | sed 's/^/  /'

if [ -t 0 ]; then
        echo
        echo "Press Ctrl-C to stop."
        wait "$server_pid"
fi
