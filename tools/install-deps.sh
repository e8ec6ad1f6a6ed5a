#!/usr/bin/env bash
# Installs the Debian 12 packages certfleet needs to build and test, only those missing.
# Used by tools/test.sh and tools/run.sh (the two README commands) and so by .ci/run.
set -euo pipefail

packages=(
        # build
        gcc libc6-dev pkg-config meson ninja-build
        libssl-dev libcurl4-openssl-dev libjson-c-dev libsystemd-dev libsqlite3-dev
        libevent-dev libinih-dev libcmocka-dev
        # fuzz targets (libFuzzer ships in clang's runtime package)
        clang libclang-rt-14-dev
        # tests: real components and third-party peers
        openssl python3 python3-cryptography python3-josepy dbus systemd sqlite3 curl
        certbot lego pebble
)

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing+=("$p")
        fi
done

if [ ${#missing[@]} -eq 0 ]; then
        exit 0
fi

echo "Installing missing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
