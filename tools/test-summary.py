#!/usr/bin/env python3
"""Prints the single closing line "N passed, N failed[, N skipped]" for tools/test.sh.

Counts every test of each meson testlog.json given (one JSON object per line) plus the fuzz
results file ("fuzz NAME: ok" / "FAILED" lines). Exits 1 if anything failed or nothing ran."""
import json
import sys

passed = failed = skipped = 0
fuzz_log, *testlogs = sys.argv[1:]

for path in testlogs:
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                result = json.loads(line).get("result")
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except FileNotFoundError:
        failed += 1

with open(fuzz_log) as f:
    for line in f:
        if line.rstrip().endswith(": ok"):
            passed += 1
        elif "FAILED" in line:
            failed += 1

print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)
