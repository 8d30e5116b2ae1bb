#!/bin/sh
# Run examples/c tcp_echo_server and tcp_echo_client as two processes over
# loopback and judge them together.
#   run-tcp-pair.sh SERVER CLIENT [WRAPPER...]   (e.g. WRAPPER = valgrind ...)
# The server listens on 127.0.0.1 port 0 (the system picks a free port) and
# prints the address; the client connects to it. COUNT messages
# (environment PSYNE_TCP_PAIR_COUNT, default 1000); PSYNE_TCP_PAIR_SCHEME=ws
# runs the pair over ws:// instead of tcp://. Every step is bounded:
# the programs give up after 30 s without their peer, and each is killed
# after PSYNE_TCP_PAIR_TIMEOUT seconds (default 300, for valgrind).
# Exit 0 when both succeed, 1 for anything else.
set -u
server=$1 client=$2
shift 2
count=${PSYNE_TCP_PAIR_COUNT:-1000}
limit=${PSYNE_TCP_PAIR_TIMEOUT:-300}
scheme=${PSYNE_TCP_PAIR_SCHEME:-tcp}
out=$(mktemp /tmp/psyne-tcp-pair.XXXXXX)
trap 'rm -f "$out"' EXIT
timeout "$limit" "$@" "$server" 127.0.0.1:0 "$count" "$scheme" >"$out" 2>&1 &
spid=$!
addr=""
tries=0
while [ "$tries" -lt 600 ]; do   # up to 60 s for the server to listen
    addr=$(sed -n 's/^tcp_echo_server: listening on \([^ ]*\).*/\1/p' "$out")
    [ -n "$addr" ] && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
    tries=$((tries + 1))
done
if [ -z "$addr" ]; then
    kill "$spid" 2>/dev/null
    wait "$spid"
    cat "$out"
    echo "tcp pair: FAILED (the server did not say where it listens)" >&2
    exit 1
fi
timeout "$limit" "$@" "$client" "$addr" "$count" "$scheme"; cstatus=$?
wait "$spid"; sstatus=$?
cat "$out"
if [ "$sstatus" -eq 0 ] && [ "$cstatus" -eq 0 ]; then
    echo "$scheme pair: ok"
    exit 0
fi
echo "$scheme pair: FAILED (server exit $sstatus, client exit $cstatus)" >&2
exit 1
