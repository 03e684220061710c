#!/bin/sh
# make run: starts the all-in-one noetl with its data in .run/data, sets up
# a demo tenant (token, echo module, schema, job) and prints what to paste
# next. Ctrl-C stops the platform cleanly. NOETL_RUN_DIR moves the state
# directory, NOETL_RUN_HTTP the webhook address.
set -u
build=${1:-build/plain}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
state=${NOETL_RUN_DIR:-$top/.run}
data=$state/data
http=${NOETL_RUN_HTTP:-127.0.0.1:8080}
ctl="$build/src/cli/noetlctl"
noetl="$build/src/noetl/noetl"
module="$build/sdk/examples/echo.wasm"

for f in "$ctl" "$noetl" "$module"; do
	[ -e "$f" ] || { echo "make run: $f is missing: the build did not finish" >&2; exit 1; }
done
mkdir -p "$data"
log="$state/noetl.log"
echo "starting noetl (data in $data, log in $log) ..."
"$noetl" --data "$data" --http "$http" >>"$log" 2>&1 &
pid=$!
trap 'echo; echo "stopping noetl ..."; kill -TERM $pid 2>/dev/null; wait $pid; exit 0' INT TERM

ready=""
for i in $(seq 1 100); do
	if ! kill -0 $pid 2>/dev/null; then
		echo "make run: noetl exited; the end of its log:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	if curl -fs "http://$http/readyz" >/dev/null 2>&1; then ready=yes; break; fi
	sleep 0.2
done
[ -n "$ready" ] || { echo "make run: noetl did not become ready; see $log" >&2; kill $pid; exit 1; }

# The demo tenant: each step is skipped if it was done on an earlier run.
"$ctl" tenant add demo >/dev/null 2>&1 || true
"$ctl" upload wasm demo echo.wasm "$module" >/dev/null || { echo "make run: upload of the module failed" >&2; }
"$ctl" upload json demo greet-schema.json deploy/demo/greet-schema.json >/dev/null ||
	echo "make run: upload of the schema failed" >&2
"$ctl" deploy deploy/demo/job.yml >/dev/null 2>&1 || "$ctl" deploy --update deploy/demo/job.yml >/dev/null ||
	echo "make run: deploy of deploy/demo/job.yml failed" >&2
tokfile="$state/demo.token"
if [ ! -s "$tokfile" ]; then
	"$ctl" token create demo -o json 2>/dev/null | sed -n 's/.*"secret" *: *"\([^"]*\)".*/\1/p' >"$tokfile"
fi
token=$(cat "$tokfile")

# The executor compiles the demo module when the job is deployed (seconds,
# once: the result is cached); events posted meanwhile wait in the queue for
# it, so there is no need to wait for it here. The listener learns of the
# deploy from Control's change stream a moment after it: until then the
# event is a 404. An empty batch asks without posting anything (400 once
# the event is known).
for i in $(seq 1 50); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/json' -d '{"data":[]}' "http://$http/events/demo/greet")
	[ "$code" != 404 ] && break
	sleep 0.2
done

cat <<MSG

noetl is running (pid $pid). The demo tenant 'demo' has the job deploy/demo/job.yml.

Post an event:

  curl -i -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
       -d '{"data":[{"firstName":"Ada","lastName":"Lovelace"}]}' \\
       http://$http/events/demo/greet

Follow its execution (and the 'greeted' follow-up it triggers):

  $ctl recorder --tenant demo --follow

Ctrl-C here stops the platform.
MSG
wait $pid
