#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test
#  1. normal build (-Werror): unit, integration and interop suites;
#  2. sanitizer build (ASan + UBSan): the same suites;
#  3. libFuzzer targets built with clang, each run for a bounded time.
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
builds="${CERTFLEET_BUILD_DIR:-$top/build-test}"
fuzz_seconds="${CERTFLEET_FUZZ_SECONDS:-20}"

"$top/tools/install-deps.sh" || { echo "dependency installation failed"; exit 1; }

status=0
summaries=()

run_build() {
        local name=$1; shift
        local dir="$builds/$name"
        echo "=== $name build ==="
        if [ -d "$dir" ]; then
                meson setup --reconfigure "$dir" "$top" "$@" >/dev/null || return 1
        else
                meson setup "$dir" "$top" "$@" >/dev/null || return 1
        fi
        ninja -C "$dir" || return 1
        echo "=== $name tests ==="
        meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
        summaries+=("$dir/meson-logs/testlog.json")
}

run_build normal -Dbuildtype=debugoptimized || { echo "normal build failed"; status=1; }
run_build sanitize -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || {
        echo "sanitizer build failed"; status=1; }

echo "=== fuzz targets ==="
fuzz_dir="$builds/fuzz"
fuzz_log="$builds/fuzz-results.txt"
: > "$fuzz_log"
if CC=clang meson setup --wipe "$fuzz_dir" "$top" -Dfuzz=true -Dtests=false -Db_lundef=false >/dev/null 2>&1 ||
   CC=clang meson setup "$fuzz_dir" "$top" -Dfuzz=true -Dtests=false -Db_lundef=false >/dev/null; then
        if ninja -C "$fuzz_dir"; then
                for target in "$fuzz_dir"/tests/fuzz/fuzz-*; do
                        [ -f "$target" ] && [ -x "$target" ] || continue
                        name=$(basename "$target")
                        corpus="$builds/corpus/$name"
                        mkdir -p "$corpus"
                        seeds="$top/tests/fuzz/seeds/$name"
                        [ -d "$seeds" ] || seeds=""
                        if "$target" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
                                -timeout=10 "$corpus" $seeds >"$builds/$name.log" 2>&1; then
                                echo "fuzz $name: ok" | tee -a "$fuzz_log"
                        else
                                echo "fuzz $name: FAILED (see $builds/$name.log)" | tee -a "$fuzz_log"
                                tail -n 40 "$builds/$name.log"
                                status=1
                        fi
                done
        else
                echo "fuzz build failed"; echo "fuzz build: FAILED" >> "$fuzz_log"; status=1
        fi
else
        echo "fuzz setup failed"; echo "fuzz build: FAILED" >> "$fuzz_log"; status=1
fi

python3 "$top/tools/test-summary.py" "$fuzz_log" "${summaries[@]}" || status=1
exit $status
