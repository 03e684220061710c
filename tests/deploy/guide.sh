#!/bin/sh
# docs/guide.md, run as written: every ```sh block, in order, in one bash
# with `set -e`, against the all-in-one noetl the guide itself starts.
#
# The guide uses the default addresses (8080, 7401-7414), which other tests
# and a developer's own `make run` may hold; so it runs inside a network
# namespace of its own, where those ports are free and nothing is reachable
# but its own loopback. That needs root; without it the test is skipped.
# Every process left in the namespace is killed and the namespace removed on
# exit. Prints TAP.
set -u
src=${NOETL_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${NOETL_BUILD_ROOT:-$src/build/plain}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac

[ "$(id -u)" = 0 ] || {
	echo "1..0 # SKIP needs root for ip netns (CI runs as root)"
	exit 0
}
ns=nlguide$$
work=$(mktemp -d /tmp/noetl-guide.XXXXXX) || exit 1
cleanup() {
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if ! ip netns add "$ns" 2>"$work/err" || ! ip -n "$ns" link set lo up 2>>"$work/err"; then
	echo "1..0 # SKIP cannot create a network namespace: $(head -1 "$work/err")"
	exit 0
fi

# The blocks, each echoed before it runs so a failure shows where.
python3 - "$src/docs/guide.md" >"$work/guide.sh" <<'EOF' || exit 1
import re, sys
text = open(sys.argv[1]).read()
print("set -eu")
for i, block in enumerate(re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)):
    print("echo '--- block %d'" % (i + 1))
    print(block)
EOF

echo "1..1"
cd "$src" || exit 1
if NOETL_BUILD_ROOT=$build ip netns exec "$ns" bash "$work/guide.sh" >"$work/out" 2>&1; then
	echo "ok 1 - docs/guide.md runs as written ($(grep -c '^--- block' "$work/out") blocks)"
else
	echo "not ok 1 - docs/guide.md runs as written"
	tail -40 "$work/out" | sed 's/^/# /'
	exit 1
fi
