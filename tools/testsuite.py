#!/usr/bin/env python3
"""Run every test of one or more meson build directories and summarise.

Usage: tools/testsuite.py BUILDDIR [BUILDDIR...] [-- MESON-TEST-ARGS...]

Each test program is a Criterion binary run with --tap=/dev/stdout, or a
script that prints TAP itself. The count is per TAP test line. A test program
that exits non-zero without a failing TAP line (a crash, a timeout) counts as
one more failure, and so does every sanitizer report found in its output:
Criterion passes a test whose child process leaks, so this is where a
LeakSanitizer report becomes a failure.

After the table of every test program comes a digest of the failures (the
failing TAP lines with the diagnostics that follow them, sanitizer summaries,
the stacks a test's watchdog printed), kept short, so that whoever reads only
the end of a CI log still sees what failed and where. The last line printed is
"N passed, N failed" for the whole run.
"""
import json
import os
import re
import subprocess
import sys

SANITIZER = re.compile(
    r"(ERROR: (LeakSanitizer|AddressSanitizer|ThreadSanitizer)|"
    r"runtime error: |SUMMARY: UndefinedBehaviorSanitizer)")
TAP_OK = re.compile(r"^ok\b")
TAP_NOT_OK = re.compile(r"^not ok\b")


digests = []


def run_dir(build, extra):
    logbase = "noetl-suite"
    cmd = ["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs",
           "--logbase", logbase] + extra
    print("==> " + " ".join(cmd), flush=True)
    subprocess.run(cmd)
    path = os.path.join(build, "meson-logs", logbase + ".json")
    passed = failed = 0
    rows = []
    if not os.path.exists(path):
        print(f"error: {path} was not written; counting the build as failed")
        return 0, 1, rows
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            out = (rec.get("stdout") or "") + (rec.get("stderr") or "")
            ok = sum(1 for l in out.splitlines() if TAP_OK.match(l))
            bad = sum(1 for l in out.splitlines() if TAP_NOT_OK.match(l))
            san = len(SANITIZER.findall(out))
            result = rec.get("result", "")
            if ok + bad == 0:
                # not a TAP producer: one test, judged by its exit status
                if result in ("OK", "EXPECTEDFAIL"):
                    ok = 1
                elif result != "SKIP":
                    bad = 1
            elif result not in ("OK", "EXPECTEDFAIL", "SKIP") and bad == 0:
                bad = 1  # crashed or timed out after its last TAP line
            if san:
                print(f"error: {rec['name']}: {san} sanitizer report(s) in its output")
                bad += san
            passed += ok
            failed += bad
            rows.append((build, rec["name"], ok, bad, result))
            if bad:
                digests.append((build, rec["name"], result, digest(out)))
    return passed, failed, rows


DIGEST_LINES = 40  # per failing test program
DIGEST_TOTAL = 120  # for the whole run


def digest(out):
    """The lines of a failing test's output worth reading first: each failing
    TAP line with the diagnostics that follow it, sanitizer summaries, and the
    stacks printed by a watchdog (tests/testutil.c)."""
    keep = []
    follow = 0
    for line in out.splitlines():
        if TAP_NOT_OK.match(line) or line.startswith("watchdog:"):
            follow = 12 if TAP_NOT_OK.match(line) else DIGEST_LINES
            keep.append(line)
        elif SANITIZER.search(line) or line.startswith("SUMMARY:"):
            keep.append(line)
        elif follow > 0 and (line.startswith("#") or line.startswith("  ")
                             or line.startswith("Thread") or line.startswith("watchdog")):
            follow -= 1
            keep.append(line)
        else:
            follow = 0 if not line.strip() else follow
    if not keep:
        keep = out.splitlines()[-8:]
    return [l[:200] for l in keep[:DIGEST_LINES]]


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    total_p = total_f = 0
    allrows = []
    for build in args:
        p, f, rows = run_dir(build, extra)
        total_p += p
        total_f += f
        allrows += rows
    print()
    for build, name, ok, bad, result in allrows:
        mark = "FAIL" if bad else "ok  "
        print(f"{mark} {os.path.basename(build):6} {name:40} {ok:4} passed {bad:3} failed  ({result})")
    budget = DIGEST_TOTAL
    for build, name, result, lines in digests:
        if budget <= 0:
            print("(more failures: see the log above)")
            break
        print(f"\n--- {os.path.basename(build)} {name} ({result}):")
        for l in lines[:budget]:
            print("  " + l)
        budget -= len(lines)
    print(f"{total_p} passed, {total_f} failed")
    return 0 if total_f == 0 and total_p > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
