#!/usr/bin/env bash
# Goodput through a lossy link on loopback, one run (about two minutes): framelink's
# reliable UDP (`framelink bench udp://RELAY` against `framelink serve`) beside QUIC (quinn:
# `bench-e2e quic-send` against `bench-e2e quic-server`, one stream of 1200-byte writes), each
# through its own `framelink relay` with the same loss, delay each way and seed, for the same
# time. Every loss in LOSSES (percent) with every delay in DELAYS (ms each way), the two stacks
# back to back in each cell. framelink counts the bytes the server acknowledged, quinn the bytes
# the server's application read; both over the time they took.
# Results: one JSON file per measurement in $OUT (default target/bench-e2e):
# loss-framelink-L-D.json, loss-quic-L-D.json and each relay's counters,
# loss-relay-framelink-L-D.json and loss-relay-quic-L-D.json; then
# `cargo run --release -p framelink-bench-plot` prints the table and draws
# docs/bench/loss-goodput.svg. scripts/bench-e2e.sh runs this at its end (LOSS_TABLE=0 skips it).
# Nothing is pinned (each side has its own thread, the relay a third). Not run in CI (too slow
# and noisy). Loopback only; every loop is bounded in count and time.
#
# Settings (environment): OUT, SECONDS_EACH (seconds per measurement, default 5), LOSSES
# (default "0 1 5 10 20"), DELAYS (default "5 25"), SEED (the relays' seed, default 1), PORT
# (first of 4 ports, default 7951), QUIC_MTU (UDP payload bytes of quinn's packets, path MTU
# discovery off; default 1216, the size of the datagrams carrying framelink's 1200-byte messages,
# so both lose the same share of the same datagrams; empty: quinn's own, 1200 growing up to 1452), NO_BUILD=1
# (use the release binaries already built).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/bench-e2e}
SECONDS_EACH=${SECONDS_EACH:-5}
LOSSES=${LOSSES:-0 1 5 10 20}
DELAYS=${DELAYS:-5 25}
SEED=${SEED:-1}
PORT=${PORT:-7951}
QUIC_MTU=${QUIC_MTU-1216}

say() { printf '\n==> %s\n' "$*" >&2; }

if [ "${NO_BUILD:-0}" != 1 ]; then
    say "building (release)"
    cargo build --release -p framelink --bin framelink -p framelink-bench-e2e --bin bench-e2e >&2
fi
FRAMELINK=target/release/framelink
E2E=target/release/bench-e2e
FRAMELINK_PORT=$PORT QUIC_PORT=$((PORT + 1)) RELAY_FRAMELINK=$((PORT + 2)) RELAY_QUIC=$((PORT + 3))
CERT="$OUT/quic-server-cert.der"
MTU_ARGS=()
if [ -n "$QUIC_MTU" ]; then MTU_ARGS=(--mtu "$QUIC_MTU"); fi

mkdir -p "$OUT"
rm -f "$OUT"/loss-*.json "$CERT"
{ echo "loss table: ${SECONDS_EACH} s each, seed $SEED, quinn mtu ${QUIC_MTU:-default}"; git rev-parse --short HEAD; } \
    >"$OUT/loss-run.txt" 2>&1 || true

BACKGROUND=()
stop_background() {
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BACKGROUND[@]}"; do wait "$pid" 2>/dev/null || true; done
    BACKGROUND=()
}
trap stop_background EXIT

# Waits (at most 5 s) until `test_ready` succeeds.
wait_for() {
    local what=$1
    shift
    for _ in $(seq 50); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    echo "$what did not start" >&2
    exit 1
}
tcp_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

say "servers: framelink serve on udp://127.0.0.1:$FRAMELINK_PORT, quic-server on 127.0.0.1:$QUIC_PORT"
# The TCP listener on the same port only tells when the server is up.
"$FRAMELINK" serve --listen "udp://127.0.0.1:$FRAMELINK_PORT" --listen "tcp://127.0.0.1:$FRAMELINK_PORT" \
    >/dev/null 2>&1 &
BACKGROUND+=($!)
"$E2E" quic-server --listen "127.0.0.1:$QUIC_PORT" --cert "$CERT" "${MTU_ARGS[@]}" >/dev/null 2>"$OUT/quic-server.log" &
BACKGROUND+=($!)
wait_for "framelink serve" tcp_open "$FRAMELINK_PORT"
wait_for "quic-server" test -s "$CERT"

# Runs "$@" (the client) through a fresh relay from port $1 to port $2 with loss $3 % and
# delay $4 ms each way; the relay's counters go to $5 (it prints them on SIGINT).
through_relay() {
    local from=$1 to=$2 loss=$3 delay=$4 counters=$5
    shift 5
    local log="$counters.log"
    "$FRAMELINK" --json relay --listen "udp://127.0.0.1:$from" --to "udp://127.0.0.1:$to" \
        --loss "$(awk -v p="$loss" 'BEGIN { print p / 100 }')" --delay "$delay" --seed "$SEED" \
        >"$counters" 2>"$log" &
    local relay=$!
    wait_for "the relay on port $from" grep -qs "listening on" "$log"
    local status=0
    # A client that fails (a stalled link, say) leaves its JSON so far; the table shows it.
    timeout $((SECONDS_EACH + 60)) "$@" || status=$?
    kill -INT "$relay" 2>/dev/null || true
    wait "$relay" 2>/dev/null || true
    rm -f "$log"
    if [ "$status" -ne 0 ]; then echo "  (the client exited with status $status)" >&2; fi
}

# Bytes per second of a result file, for the progress lines.
rate() { grep -o '"bits_per_second": *[0-9]*' "$1" 2>/dev/null | tail -1 | awk -F: '{ printf "%.2f MB/s", $2 / 8e6 }'; }

say "loss table: losses ($LOSSES) % x delays ($DELAYS) ms each way, ${SECONDS_EACH} s per measurement, seed $SEED"
for delay in $DELAYS; do
    for loss in $LOSSES; do
        name="$loss-$delay"
        through_relay "$RELAY_FRAMELINK" "$FRAMELINK_PORT" "$loss" "$delay" "$OUT/loss-relay-framelink-$name.json" \
            "$FRAMELINK" --json bench "udp://127.0.0.1:$RELAY_FRAMELINK" -t "$SECONDS_EACH" -i 0 \
            >"$OUT/loss-framelink-$name.json"
        through_relay "$RELAY_QUIC" "$QUIC_PORT" "$loss" "$delay" "$OUT/loss-relay-quic-$name.json" \
            "$E2E" quic-send "127.0.0.1:$RELAY_QUIC" --cert "$CERT" -t "$SECONDS_EACH" "${MTU_ARGS[@]}" \
            >"$OUT/loss-quic-$name.json"
        echo "  loss $loss %, delay $delay ms: framelink $(rate "$OUT/loss-framelink-$name.json"), quinn $(rate "$OUT/loss-quic-$name.json")" >&2
    done
done
stop_background
rm -f "$CERT"

say "done: results in $OUT; table and plot: cargo run --release -p framelink-bench-plot"
