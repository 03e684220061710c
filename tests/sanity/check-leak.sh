#!/bin/sh
# Runs the leaking fixture and checks that LeakSanitizer reported it. The
# report itself is not echoed (tools/testsuite.py would count it as a
# failure); the verdict is one TAP line.
echo "1..1"
out=$("$1" --tap=/dev/stdout 2>&1)
if echo "$out" | grep -q "LeakSanitizer: detected memory leaks"; then
	echo "ok 1 - a leak in a test is reported by LeakSanitizer"
else
	echo "$out" | head -20 | sed 's/^/# /'
	echo "not ok 1 - a leak in a test went unreported: the sanitizer setup is broken"
	exit 1
fi
