#!/usr/bin/env bash
# `framelink bench` against iperf3 on loopback TCP, forward and reverse (-R), interleaved in
# one run: ROUNDS rounds (default 5) of SECONDS_EACH seconds (default 3) per measurement,
# servers on CPU $SERVER_CPU (default 1), clients on CPU $CLIENT_CPU (default 0). Prints each
# round's Gbit/s and ratio framelink / iperf3, then the median ratios. FL names the framelink
# binary to measure (default: target/release/framelink, built first). Not run in CI (noisy).
# Loopback only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-3}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-7971}
if [ -z "${FL:-}" ]; then
    cargo build --release --quiet --bin framelink
    FL=target/release/framelink
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c "$SERVER_CPU" iperf3 -s -p "$PORT" >/dev/null 2>&1 &
PIDS+=($!)
taskset -c "$SERVER_CPU" "$FL" serve -l "tcp://127.0.0.1:$((PORT + 1))" >/dev/null 2>&1 &
PIDS+=($!)
sleep 1

client() { taskset -c "$CLIENT_CPU" "$@"; }
iperf_gbits() {
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 2))'
}
gbits() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["bits_per_second"] / 1e9, 2))'; }

declare -A RATIOS
for round in $(seq "$ROUNDS"); do
    for dir in "" -R; do
        ref=$(client iperf3 -c 127.0.0.1 -p "$PORT" -t "$SECONDS_EACH" $dir --json | iperf_gbits)
        ours=$(client "$FL" bench -t "$SECONDS_EACH" -i 0 $dir --json "tcp://127.0.0.1:$((PORT + 1))" | gbits)
        ratio=$(python3 -c "print(round($ours / $ref, 2))")
        RATIOS[${dir:-forward}]+="$ratio "
        echo "round $round ${dir:-forward}: iperf3 $ref Gbit/s, framelink $ours Gbit/s, ratio $ratio"
    done
done
for dir in forward -R; do
    echo "median ratio $dir: $(python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" ${RATIOS[$dir]})"
done
