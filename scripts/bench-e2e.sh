#!/usr/bin/env bash
# End-to-end benchmarks on loopback, one run (about four minutes), beside the references:
#   1. throughput: `framelink bench` against iperf3, TCP both ways and UDP, every server on
#      CPU $SERVER_CPU and every client on CPU $CLIENT_CPU (unpinned, both tools' loopback runs
#      flip between about 12 and 25 Gbit/s on a 2-vCPU VM, with where the scheduler puts them);
#   2. round trip: `framelink ping -i 0` against a raw std TCP ping-pong of the same 64-byte
#      messages, server and client of each pinned to one CPU (on a 2-vCPU VM, waking the other
#      vCPU costs ~60 µs and flips runs between two regimes);
#   3. 1, 10, 100 and 1,000 clients pinging one `framelink serve` at once (same total rate),
#      pinned like 2: p50/p99 RTT, the server's peak RSS and CPU;
#   4. goodput through a lossy relay, framelink's reliable UDP against QUIC (quinn), at 0 to 20%
#      loss and 5 and 25 ms each way: scripts/bench-loss.sh (its header has the details).
# Results: one JSON file per measurement in $OUT (default target/bench-e2e); then
# `cargo run --release -p framelink-bench-plot` prints the tables and draws docs/bench/*.svg.
# Not run in CI (too slow and noisy). Loopback only; every loop is bounded.
#
# Settings (environment): OUT, SECONDS_EACH (throughput runs, default 3), PINGS (default
# 20000), CLIENT_SECONDS (default 5), RATE (pings/s over all clients, default 2000), CPU (the
# CPU of the RTT tests, default 0), SERVER_CPU and CLIENT_CPU (of the throughput tests, default
# 1 and 0), PORT (first of 12 ports, default 7941), LOSS_TABLE=0 (skip
# part 4), LOSS_SECONDS (its seconds per measurement, default 5; its other settings pass through).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/bench-e2e}
SECONDS_EACH=${SECONDS_EACH:-3}
PINGS=${PINGS:-20000}
CLIENT_SECONDS=${CLIENT_SECONDS:-5}
RATE=${RATE:-2000}
CPU=${CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-7941}
SIZE=64

say() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v iperf3 >/dev/null; then
    say "installing iperf3"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq
    timeout 300 apt-get install -y -qq --no-install-recommends iperf3
fi

# 1,000 clients take 1,000 descriptors in the load process and as many in the server.
NEED_FDS=2200
if [ "$(ulimit -n)" -lt "$NEED_FDS" ]; then
    ulimit -n "$NEED_FDS" || { echo "ulimit -n is $(ulimit -n); 1,000 clients need $NEED_FDS" >&2; exit 1; }
fi

say "building (release)"
cargo build --release -p framelink --bin framelink -p framelink-bench-e2e --bin bench-e2e >&2
FRAMELINK=target/release/framelink
E2E=target/release/bench-e2e
PIN="taskset -c $CPU"

mkdir -p "$OUT"
rm -f "$OUT"/*.json
{ lscpu | grep -E 'Model name|^CPU\(s\)|MHz'; uname -r; iperf3 --version | head -1; } >"$OUT/machine.txt" 2>&1 || true

BACKGROUND=()
stop_background() {
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BACKGROUND[@]}"; do wait "$pid" 2>/dev/null || true; done
    BACKGROUND=()
}
trap stop_background EXIT

# Starts a server in the background and waits (at most 5 s) until its TCP port accepts.
serve() {
    local port=$1
    shift
    "$@" >/dev/null 2>&1 &
    BACKGROUND+=($!)
    for _ in $(seq 50); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "the server on port $port did not start" >&2
    exit 1
}

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

say "throughput: iperf3 and framelink bench, ${SECONDS_EACH} s each, interleaved, servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU"
SERVER_PIN="taskset -c $SERVER_CPU"
CLIENT_PIN="taskset -c $CLIENT_CPU"
$SERVER_PIN iperf3 -s -p "$PORT" >/dev/null 2>&1 &
BACKGROUND+=($!)
serve $((PORT + 1)) $SERVER_PIN "$FRAMELINK" serve --listen "tcp://127.0.0.1:$((PORT + 1))" --listen "udp://127.0.0.1:$((PORT + 1))"
sleep 0.3
$CLIENT_PIN iperf3 -c 127.0.0.1 -p "$PORT" -t "$SECONDS_EACH" --json >"$OUT/iperf3-tcp.json"
$CLIENT_PIN "$FRAMELINK" bench "tcp://127.0.0.1:$((PORT + 1))" -t "$SECONDS_EACH" --json >"$OUT/framelink-bench-tcp.json"
$CLIENT_PIN iperf3 -c 127.0.0.1 -p "$PORT" -t "$SECONDS_EACH" -R --json >"$OUT/iperf3-tcp-reverse.json"
$CLIENT_PIN "$FRAMELINK" bench "tcp://127.0.0.1:$((PORT + 1))" -t "$SECONDS_EACH" --reverse --json >"$OUT/framelink-bench-tcp-reverse.json"
$CLIENT_PIN iperf3 -c 127.0.0.1 -p "$PORT" -t "$SECONDS_EACH" -u -b 0 -l 1200 --json >"$OUT/iperf3-udp.json"
$CLIENT_PIN "$FRAMELINK" bench "udp://127.0.0.1:$((PORT + 1))" -t "$SECONDS_EACH" --json >"$OUT/framelink-bench-udp.json"
stop_background

say "round trip: raw std TCP ping-pong and framelink ping, $PINGS pings of $SIZE B each, on CPU $CPU"
serve $((PORT + 2)) $PIN "$E2E" raw-server --listen "127.0.0.1:$((PORT + 2))" --size "$SIZE"
$PIN "$E2E" raw-ping --connect "127.0.0.1:$((PORT + 2))" --size "$SIZE" --count "$PINGS" >"$OUT/raw-ping.json"
serve $((PORT + 3)) $PIN "$FRAMELINK" serve --listen "tcp://127.0.0.1:$((PORT + 3))"
$PIN "$FRAMELINK" ping "tcp://127.0.0.1:$((PORT + 3))" -c "$PINGS" -i 0 --size "$SIZE" --json >"$OUT/framelink-ping.json"
stop_background

say "concurrency: 1, 10, 100, 1000 clients at $RATE pings/s in all, ${CLIENT_SECONDS} s each, on CPU $CPU"
for n in 1 10 100 1000; do
    port=$((PORT + 4))
    serve "$port" $PIN "$FRAMELINK" serve --listen "tcp://127.0.0.1:$port" --max-clients 1100
    server=${BACKGROUND[-1]}
    # `taskset` execs the server, so the pid is the server's own.
    before=$(cpu_ticks "$server")
    started=$(date +%s.%N)
    $PIN "$E2E" clients --connect "tcp://127.0.0.1:$port" --clients "$n" --rate "$RATE" \
        --seconds "$CLIENT_SECONDS" --size "$SIZE" >"$OUT/clients-$n.json"
    ended=$(date +%s.%N)
    after=$(cpu_ticks "$server")
    hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$server/status")
    awk -v t0="$started" -v t1="$ended" -v c0="$before" -v c1="$after" -v hz="$(getconf CLK_TCK)" -v hwm="$hwm" \
        'BEGIN { printf "{\"rss_kib\": %d, \"cpu_percent\": %.1f}\n", hwm, 100 * (c1 - c0) / hz / (t1 - t0) }' \
        >"$OUT/server-$n.json"
    stop_background
    echo "  $n clients: $(cat "$OUT/clients-$n.json" | head -c 160)..." >&2
done

if [ "${LOSS_TABLE:-1}" != 0 ]; then
    say "goodput through a lossy relay: scripts/bench-loss.sh"
    OUT="$OUT" SECONDS_EACH="${LOSS_SECONDS:-5}" PORT=$((PORT + 8)) NO_BUILD=1 bash scripts/bench-loss.sh
fi

say "done: results in $OUT; tables and plots: cargo run --release -p framelink-bench-plot"
