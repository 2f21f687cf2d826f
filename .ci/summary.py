#!/usr/bin/env python3
"""Counts test cases from meson's testlog.json files: every TAP 'ok' is a pass, every
'not ok' a failure; a test that crashed, timed out or failed without TAP lines counts as one
failure; a skipped case (GPU missing) is listed but counts in neither column.
Usage: summary.py BUILD_DIR [BUILD_DIR ...]   prints per-run lines, then 'N passed, N failed'."""
import json
import re
import sys

passed = failed = skipped = 0
for d in sys.argv[1:]:
    try:
        lines = open(d + "/meson-logs/testlog.json").read().splitlines()
    except OSError:
        print(f"{d}: no test log (the build or the test run did not happen)")
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        out = t.get("stdout") or ""
        ok = len(re.findall(r"^ok \d+(?! .*# SKIP)", out, re.M))
        sk = len(re.findall(r"^ok \d+ .*# SKIP", out, re.M))
        bad = len(re.findall(r"^not ok \d+", out, re.M))
        res = t.get("result")
        if res not in ("OK", "SKIP", "EXPECTEDFAIL") and bad == 0:
            bad = 1  # crashed, timed out, or failed outside a TAP case
        if ok == 0 and bad == 0 and sk == 0 and res == "OK":
            ok = 1  # a non-TAP test that passed
        if ok == 0 and bad == 0 and res == "SKIP":
            sk = 1
        passed += ok
        failed += bad
        skipped += sk
        if bad:
            print(f"FAILED: {d}: {t['name']} ({res})")
        for m in re.findall(r"^ok \d+ (.*# SKIP.*)$", out, re.M):
            print(f"skipped: {d}: {t['name']}: {m}")
print(f"({skipped} skipped)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
