#!/bin/sh
# The multi-host test: the six services as separate processes on three
# "hosts" -- network namespaces joined by veth pairs to a bridge that lives
# in a namespace of its own -- talking tcp:// to each other's addresses:
#
#   host A 10.77.0.1  noetl-control, noetl-repository
#   host B 10.77.0.2  noetl-queue, noetl-recorder
#   host C 10.77.0.3  noetl-listener, noetl-executor   (noetlctl and curl too)
#
# It sets up the demo job (deploy/demo) with noetlctl, posts events over HTTP
# and checks they are executed; then it cuts host A off the bridge (the
# listener and the executor keep working from their caches), reconnects it,
# cuts host B off (the queue: nothing can be accepted, and whatever was in
# flight must not be lost), reconnects it, and checks that every event that
# got a 202 at any point was executed, none lost. Duplicates (at-least-once)
# are counted and printed, not failed.
#
# Nothing leaves the machine: every address is inside namespaces made here,
# and the root namespace gets no address or route. The namespaces and every
# process started are removed on exit. Needs root (CAP_NET_ADMIN,
# CAP_SYS_ADMIN for `ip netns`); without it the test prints a TAP skip.
#
# Prints TAP. NOETL_BUILD_ROOT and NOETL_SOURCE_ROOT come from meson; run by
# hand: NOETL_BUILD_ROOT=build/x NOETL_SOURCE_ROOT=. tests/deploy/multihost.sh
set -u

src=${NOETL_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${NOETL_BUILD_ROOT:-$src/build/plain}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
case $src in /*) ;; *) src=$(pwd)/$src ;; esac
bin=$build/src
ctl=$bin/cli/noetlctl
module=$build/sdk/examples/echo.wasm

skip() {
	echo "1..0 # SKIP $*"
	exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root for ip netns (CI runs as root)"
command -v ip >/dev/null 2>&1 || skip "iproute2 is not installed"
command -v curl >/dev/null 2>&1 || skip "curl is not installed"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
for f in "$ctl" "$module" "$bin/control/noetl-control" "$bin/queue/noetl-queue"; do
	[ -e "$f" ] || skip "$f is not built"
done

# Names unique to this run (interface names have at most 15 characters).
id=$(($$ % 100000))
ns_br=nlt$id-br
ns_a=nlt$id-a
ns_b=nlt$id-b
ns_c=nlt$id-c
net=10.77.0
addr_a=$net.1
addr_b=$net.2
addr_c=$net.3

work=$(mktemp -d /tmp/noetl-multihost.XXXXXX) || exit 1
pids=""
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null
	done
	for n in $ns_a $ns_b $ns_c $ns_br; do ip netns del "$n" 2>/dev/null; done
	# A sanitizer report in a service's log is a failure of this test
	# (tools/testsuite.py counts them in the test's output).
	grep -h -E "ERROR: (Leak|Address)Sanitizer|runtime error: |SUMMARY: UndefinedBehaviorSanitizer" \
		"$work"/*.log 2>/dev/null | sed 's/^/# /'
	if [ -z "${NOETL_KEEP:-}" ]; then rm -rf "$work"; else echo "# kept $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

n=0
failed=0
t0=$(date +%s)
ok() {
	n=$((n + 1))
	echo "ok $n - $*"
	echo "# at $(($(date +%s) - t0)) s"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $*"
}
diag() {
	sed 's/^/# /'
}
logs() {
	for f in "$work"/*.log; do
		echo "# --- $(basename "$f") (last lines)"
		tail -15 "$f" | diag
	done
}
# bail: a step everything after depends on failed; print why and stop.
bail() {
	not_ok "$*"
	logs
	echo "1..$n"
	exit 1
}

# --- the network --------------------------------------------------------
netup() {
	ip netns add "$ns_br" || return 1
	ip -n "$ns_br" link set lo up
	ip -n "$ns_br" link add br0 type bridge || return 1
	ip -n "$ns_br" link set br0 up
	for h in a b c; do
		eval ns=\$ns_$h
		eval addr=\$addr_$h
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up
		# veth: "eth0" inside the host, "p<host>" on the bridge
		ip link add "nlt$id$h" type veth peer name "nlt${id}p$h" || return 1
		ip link set "nlt$id$h" netns "$ns" || return 1
		ip link set "nlt${id}p$h" netns "$ns_br" || return 1
		ip -n "$ns" link set "nlt$id$h" name eth0
		ip -n "$ns" addr add "$addr/24" dev eth0 || return 1
		ip -n "$ns" link set eth0 up
		ip -n "$ns_br" link set "nlt${id}p$h" master br0
		ip -n "$ns_br" link set "nlt${id}p$h" up
	done
}
# cut_off HOST / reconnect HOST: the host's port on the bridge goes down / up.
cut_off() {
	ip -n "$ns_br" link set "nlt${id}p$1" down
}
reconnect() {
	ip -n "$ns_br" link set "nlt${id}p$1" up
}

if ! netup 2>"$work/netup.err"; then
	cat "$work/netup.err" | diag
	skip "cannot create network namespaces here ($(head -1 "$work/netup.err"))"
fi

# --- the services -------------------------------------------------------
# start NS NAME PROGRAM ARGS...: runs PROGRAM inside namespace NS, log in
# $work/NAME.log.
start() {
	ns=$1
	name=$2
	shift 2
	ip netns exec "$ns" "$@" >"$work/$name.log" 2>&1 &
	pids="$pids $!"
}
# ready URL: waits up to 20 s for URL/readyz to answer 200 from host C.
ready() {
	i=0
	while [ $i -lt 200 ]; do
		ip netns exec "$ns_c" curl -fs -o /dev/null --max-time 1 "$1/readyz" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

control=tcp://$addr_a:7401
repository=tcp://$addr_a:7402
queue=tcp://$addr_b:7403
recorder=tcp://$addr_b:7404
listener=http://$addr_c:8080

start "$ns_a" control "$bin/control/noetl-control" --data-dir "$work/control" \
	--listen "$control" --stream "tcp://$addr_a:7411" --http "http://$addr_a:7421" \
	--repository "$repository" --queue "$queue"
start "$ns_a" repository "$bin/repository/noetl-repository" --data-dir "$work/repository" \
	--listen "$repository" --stream "tcp://$addr_a:7412" --http "http://$addr_a:7422"
start "$ns_b" queue "$bin/queue/noetl-queue" --data-dir "$work/queue" \
	--listen "$queue" --http "http://$addr_b:7423" --queue.retry.base 200ms --queue.retry.max 2s \
	--queue.retry.max-attempts 10
start "$ns_b" recorder "$bin/recorder/noetl-recorder" --data-dir "$work/recorder" \
	--listen "$recorder" --stream "tcp://$addr_b:7414" --http "http://$addr_b:7424"
# A short lease, so that events leased by the executor when its queue went
# away come back soon if their acks are lost.
start "$ns_c" executor "$bin/executor/noetl-executor" --cache-dir "$work/cache" \
	--control "$control" --repository "$repository" --queue "$queue" --recorder "$recorder" \
	--executor.control-stream "tcp://$addr_a:7411" \
	--executor.repository-stream "tcp://$addr_a:7412" \
	--http "http://$addr_c:7425" --pool 2 --executor.lease 5s
start "$ns_c" listener "$bin/listener/noetl-listener" --http "$listener" \
	--control "$control" --control.stream "tcp://$addr_a:7411" \
	--repository "$repository" --repository.stream "tcp://$addr_a:7412" \
	--queue "$queue" --recorder "$recorder"

for u in "http://$addr_a:7421" "http://$addr_a:7422" "http://$addr_b:7423" \
	"http://$addr_b:7424" "http://$addr_c:7425" "$listener"; do
	ready "$u" || bail "$u/readyz answers 200 from host C"
done
ok "six services on three hosts answer /readyz over tcp"

# --- the demo job, with noetlctl on host C --------------------------------
nctl() {
	ip netns exec "$ns_c" "$ctl" --control "$control" --repository "$repository" \
		--queue "$queue" --recorder "$recorder" --listener "$listener" "$@"
}
(
	cd "$src" &&
		nctl tenant add demo &&
		nctl upload wasm demo echo.wasm "$module" &&
		nctl upload json demo greet-schema.json deploy/demo/greet-schema.json &&
		nctl deploy deploy/demo/job.yml &&
		nctl token create demo -o json >"$work/token.json"
) >"$work/setup.out" 2>&1 || {
	diag <"$work/setup.out"
	bail "noetlctl sets up the demo tenant, files and job across hosts"
}
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$work/token.json")
[ -n "$token" ] || bail "token create prints a secret"

# The deploy reaches the executor on host C over the network and it compiles
# the module (an event posted before that would wait, unrun, until it is live).
live="package 'demo-job' of tenant 'demo' is live"
i=0
while ! grep -q "$live" "$work/executor.log" && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "$live" "$work/executor.log" || bail "the executor on host C has the demo job live"
ok "noetlctl on host C set up the demo job; the executor has it live"

# --- posting ------------------------------------------------------------
# post TAG COUNT: one request with COUNT greet events from host C. Appends
# the ids of a 202 to $work/accepted and prints the HTTP status.
post() {
	body='{"data":['
	i=0
	while [ $i -lt "$2" ]; do
		[ $i = 0 ] || body="$body,"
		body="$body{\"firstName\":\"$1-$i\"}"
		i=$((i + 1))
	done
	body="$body]}"
	code=$(ip netns exec "$ns_c" curl -s -o "$work/reply" -w '%{http_code}' --max-time 15 \
		-H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		-d "$body" "$listener/events/demo/greet")
	if [ "$code" = 202 ]; then
		# {"accepted":N,"ids":["...","..."]}
		sed -e 's/.*"ids":\[//' -e 's/\].*//' "$work/reply" | tr ',' '\n' | tr -d '"' |
			grep . >>"$work/accepted"
	fi
	echo "$code"
	echo "$(date +%s.%N | cut -c1-14) post $1 $2 -> $code" >>"$work/posts.log"
}
: >"$work/accepted"

# check WAIT: waits up to WAIT seconds until every accepted id has an "ok"
# execution of its greet event in the Recorder (asked with noetlctl from
# host C); prints a summary; false if some are missing at the end. noetlctl
# shows the newest 1000 executions at most, so ids once seen executed are
# kept in $work/executed and only the others are looked for; duplicates are
# counted among the executions seen.
check() {
	deadline=$(($(date +%s) + $1))
	while :; do
		nctl recorder --tenant demo -n 1000 -o json >"$work/records.json" 2>"$work/records.err"
		if python3 - "$work/accepted" "$work/records.json" "$work/executed" >"$work/check.out" <<'EOF'; then
import json, sys
accepted = [l.strip() for l in open(sys.argv[1]) if l.strip()]
try:
    records = json.load(open(sys.argv[2]))
except ValueError:
    records = []
try:
    seen = json.load(open(sys.argv[3]))
except (OSError, ValueError):
    seen = {}
window = {}
for r in records:
    if r.get("event") == "greet" and r.get("status") == "ok":
        window[r["event_id"]] = window.get(r["event_id"], 0) + 1
for i, k in window.items():
    seen[i] = max(seen.get(i, 0), k)
json.dump(seen, open(sys.argv[3], "w"))
missing = [a for a in accepted if a not in seen]
dups = sum(seen[a] - 1 for a in accepted if a in seen)
print("accepted %d, executed %d, missing %d, executed more than once %d"
      % (len(accepted), len(accepted) - len(missing), len(missing), dups))
for m in missing[:5]:
    print("missing: " + m)
sys.exit(1 if missing else 0)
EOF
			return 0
		fi
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 1
	done
}

# only "CODES" ALLOWED...: true if every word of CODES is one of ALLOWED.
only() {
	codes_=$1
	shift
	for c_ in $codes_; do
		found_=""
		for a_ in "$@"; do [ "$c_" = "$a_" ] && found_=yes; done
		[ -n "$found_" ] || return 1
	done
	return 0
}

bad=0
for k in 1 2 3 4 5; do
	c=$(post before 10)
	[ "$c" = 202 ] || bad=$((bad + 1))
done
if [ $bad = 0 ] && check 30; then
	ok "50 events posted over HTTP on host C were executed: $(head -1 "$work/check.out")"
else
	diag <"$work/check.out"
	bail "50 events posted over HTTP on host C were executed ($bad requests not 202)"
fi

# --- host A (control, repository) cut off -----------------------------------
# The listener checks tokens and schemas from its caches and the executor
# runs from its compiled module: events are still accepted and executed.
cut_off a
codes=""
for k in 1 2 3 4 5; do
	codes="$codes $(post cut-a 10)"
	sleep 1
done
reconnect a
if only "$codes" 202; then
	ok "with host A cut off, the listener still accepts events from its caches (got$codes)"
else
	not_ok "with host A cut off, the listener still accepts events from its caches (got$codes)"
fi
if check 30; then
	ok "events accepted while host A was cut off are executed: $(head -1 "$work/check.out")"
else
	diag <"$work/check.out"
	not_ok "events accepted while host A was cut off are executed"
fi

# --- host B (queue, recorder) cut off ---------------------------------------
# A burst is posted and the queue's host cut right after, so that events are
# in flight (queued, leased, run but not acked or recorded) at the cut.
for k in 1 2 3 4 5 6 7 8 9 10; do
	c=$(post before-b 20)
	[ "$c" = 202 ] || echo "# burst before the cut: $c"
done
cut_off b
codes=""
for k in 1 2 3; do
	codes="$codes $(post cut-b 10)"
done
sleep 3
reconnect b
# While the queue is unreachable an event cannot be made durable: the answer
# is a retryable 503 (or a 429), never an error that would make a client give
# up, and never a hang (curl's --max-time gives 000).
if only "$codes" 503 429 202; then
	ok "with host B cut off, the listener answers 503 (got$codes)"
else
	not_ok "with host B cut off, the listener answers 503 (got$codes)"
fi

# After the reconnect the listener takes events again (after its calls that
# were cut off time out and it reconnects).
i=0
c=000
while [ $i -lt 30 ]; do
	c=$(post after-b 10)
	[ "$c" = 202 ] && break
	sleep 1
	i=$((i + 1))
done
if [ "$c" = 202 ]; then
	ok "after host B is reconnected the listener accepts events again"
else
	not_ok "after host B is reconnected the listener accepts events again (last answer $c)"
fi
for k in 1 2 3 4 5; do post after-b 10 >/dev/null; done

if check 60; then
	ok "every event accepted before, during and after the cuts was executed, none lost: $(head -1 "$work/check.out")"
else
	diag <"$work/check.out"
	nctl queue stats demo 2>&1 | diag
	not_ok "every event accepted before, during and after the cuts was executed, none lost"
fi

[ $failed = 0 ] || logs
echo "1..$n"
[ $failed = 0 ]
