#!/bin/sh
# Checks (or with --fix, applies) .clang-format on every C source of the
# project. Prints one TAP line so the test suite counts it.
cd "$(dirname "$0")/.." || exit 2
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src tests bench sdk -name '*.[ch]')
[ -n "$files" ] || { echo "ok 1 - format (no sources)"; exit 0; }
if [ "$1" = "--fix" ]; then
	echo "$files" | xargs clang-format -i
	exit 0
fi
echo "1..1"
out=$(echo "$files" | xargs clang-format --dry-run --Werror 2>&1)
if [ -n "$out" ]; then
	echo "$out" | head -40
	echo "not ok 1 - sources follow .clang-format (run: make format)"
	exit 1
fi
echo "ok 1 - sources follow .clang-format"
