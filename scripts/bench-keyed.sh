#!/usr/bin/env bash
# Keyed sessions against unkeyed ones on loopback TCP, interleaved in one run (about a minute):
# `framelink bench` forward and reverse (-R), SECONDS_EACH seconds each, servers pinned to CPU
# $SERVER_CPU and clients to CPU $CLIENT_CPU (unpinned runs on a small VM swing 2x between
# rounds); then `framelink ping` (-c 400 -i 0.002, and -c 2000 -i 0) with both ends on CPU $CPU.
# ROUNDS rounds (default 3). Two servers per pair, one with --psk-file (a fresh key from `framelink keygen`),
# so both sides of the keyed pair are desktop builds and agree on AES-256-GCM.
# Prints one line per measurement with the ratio keyed / unkeyed. Not run in CI (noisy).
# Loopback only; every loop is bounded.
#
# Settings (environment): SECONDS_EACH (default 3), ROUNDS (default 3), CPU (default 0),
# SERVER_CPU (default 1), CLIENT_CPU (default 0), PORT (first of 4 ports, default 7961),
# FL (a framelink binary to measure instead of building this tree's).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${SECONDS_EACH:-3}
ROUNDS=${ROUNDS:-3}
CPU=${CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-7961}

if [ -z "${FL:-}" ]; then
    cargo build --release --quiet --bin framelink
    FL=target/release/framelink
fi
DIR=$(mktemp -d)
KEY=$DIR/bench.psk
"$FL" keygen "$KEY" >/dev/null
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT
serve() { # CPU-or-empty, port, extra args
    local pin=(); [ -n "$1" ] && pin=(taskset -c "$1")
    "${pin[@]}" "$FL" serve -l "tcp://127.0.0.1:$2" "${@:3}" >/dev/null 2>&1 &
    PIDS+=($!)
}
serve "$SERVER_CPU" "$PORT"
serve "$SERVER_CPU" "$((PORT + 1))" --psk-file "$KEY"
serve "$CPU" "$((PORT + 2))"
serve "$CPU" "$((PORT + 3))" --psk-file "$KEY"
sleep 1

gbits() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["bits_per_second"] / 1e9, 2))'; }
p50() { python3 -c 'import json,sys; print(json.load(sys.stdin)["rtt_us"]["p50"])'; }
ratio() { python3 -c "print(round($2 / $1, 2))"; }

for round in $(seq "$ROUNDS"); do
    for dir in "" -R; do
        bench=(taskset -c "$CLIENT_CPU" "$FL" bench -t "$SECONDS_EACH" -i 0 $dir --json)
        plain=$("${bench[@]}" "tcp://127.0.0.1:$PORT" | gbits)
        keyed=$("${bench[@]}" --psk-file "$KEY" "tcp://127.0.0.1:$((PORT + 1))" | gbits)
        echo "round $round bench ${dir:-forward} Gbit/s: unkeyed $plain keyed $keyed ratio $(ratio "$plain" "$keyed")"
    done
    for interval in 0.002 0; do
        count=400; [ "$interval" = 0 ] && count=2000
        ping=(taskset -c "$CPU" "$FL" ping -c "$count" -i "$interval" --json)
        plain=$("${ping[@]}" "tcp://127.0.0.1:$((PORT + 2))" | p50)
        keyed=$("${ping[@]}" --psk-file "$KEY" "tcp://127.0.0.1:$((PORT + 3))" | p50)
        echo "round $round ping -i $interval p50 µs: unkeyed $plain keyed $keyed ratio $(ratio "$plain" "$keyed")"
    done
done
