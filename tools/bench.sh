#!/bin/sh
# make bench: runs every benchmark with a short default duration. Each prints
# its own table, with ratios against a baseline measured in the same run.
build=${1:-build/plain}
status=0
for b in "$build"/bench/bench_*; do
	[ -f "$b" ] && [ -x "$b" ] || continue # not the .p object directories
	echo "==> $b"
	"$b" || status=1
	echo
done
exit $status
