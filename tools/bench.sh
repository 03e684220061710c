#!/bin/sh
# make bench: runs every benchmark with a short default duration. Each prints
# its own table, with ratios against a baseline measured in the same run.
# The load average before and after each one is printed too: on a shared
# machine the figures move with it (docs/benchmarks.md).
#
# usage: tools/bench.sh [BUILDDIR] [NAME...]   e.g. tools/bench.sh build/rel e2e wasm
# A release build (meson setup BUILDDIR --buildtype=release) gives the
# figures docs/benchmarks.md quotes; make bench uses build/plain.
build=${1:-build/plain}
[ $# -gt 0 ] && shift
status=0
for b in "$build"/bench/bench_*; do
	[ -f "$b" ] && [ -x "$b" ] || continue # not the .p object directories
	if [ $# -gt 0 ]; then
		want=false
		for n in "$@"; do
			[ "$(basename "$b")" = "bench_$n" ] && want=true
		done
		$want || continue
	fi
	echo "==> $b (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	"$b" || status=1
	echo "<== $b (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
done
exit $status
