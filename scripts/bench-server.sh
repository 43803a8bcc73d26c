#!/usr/bin/env bash
# Server scale on loopback, one run (about two minutes), against the targets of `framelink serve`:
#   1. hold: 10,000 framelink TCP sessions opened against one `framelink serve`, each
#      handshaken, then held idle (answering the server's keepalives); the server's RSS and
#      threads (/proc/PID/status) before, with all held and after, and a ping series (ECHO
#      messages, PING_RATE a second for PING_SECONDS) with none held and with all held.
#      Targets: at most 2 x cores + 4 threads and 16 KiB of RSS per held session; p99 with all
#      held within 2x its figure with none held.
#   2. clients: 1,000 clients pinging a fresh `framelink serve` at RATE pings/s in all, then 1
#      client at the same rate: p50/p99 RTT, the server's peak RSS and CPU. Target: the p99 of
#      1,000 within 2x the p99 of 1. The load tool drives every client from THREADS threads
#      (non-blocking, one mio loop each), so that its own threads do not crowd the server off
#      the CPUs; ROUNDS repeats the pair and prints each round's p99 ratio and their median.
# The server and the load tool are pinned to CPU $CPU (as in scripts/bench-e2e.sh); CPU= runs
# them unpinned. Results: one JSON file per measurement in $OUT (default target/bench-server),
# then the table (`bench-plot --only server`). Loopback only; every loop is bounded in count
# and time. Not run in CI.
#
# Settings (environment): OUT, SESSIONS (default 10000), HOLD_SECONDS (default 20), PING_RATE
# (default 2000, the same as RATE, so "none held" and one client match), PING_SECONDS (default
# 5), CLIENTS (default 1000), CLIENT_SECONDS (default 5), RATE (default 2000), CPU (default 0),
# PORT (default 7961), FRAMELINK (a `framelink` binary to measure instead of this tree's, say
# one built from an older commit for a before-and-after), FLEET_CPU (the CPU of hold's held
# sessions; default: the other one when pinned), THREADS (load threads of `clients`,
# default 1), ROUNDS (default 1), CLIENTS_ONLY=1 (skip the hold part), HOLD_ONLY=1 (skip the
# clients part). The table reads hold-10000, clients-1000 and clients-1 (the first round; round
# R > 1 writes clients-N-rR.json and server-N-rR.json).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/bench-server}
SESSIONS=${SESSIONS:-10000}
HOLD_SECONDS=${HOLD_SECONDS:-20}
PING_RATE=${PING_RATE:-2000}
PING_SECONDS=${PING_SECONDS:-5}
CLIENTS=${CLIENTS:-1000}
CLIENT_SECONDS=${CLIENT_SECONDS:-5}
RATE=${RATE:-2000}
CPU=${CPU-0}
THREADS=${THREADS:-1}
# Where `hold` drives its held sessions: another CPU than the server and the ping series when
# they are pinned, so that the ping measures the server holding 10,000 sessions rather than the
# load tool answering their keepalives beside it. FLEET_CPU= keeps them with the ping.
if [ -n "$CPU" ] && [ "$(getconf _NPROCESSORS_ONLN)" -gt 1 ]; then
    FLEET_CPU=${FLEET_CPU-$(( CPU == 0 ? 1 : 0 ))}
else
    FLEET_CPU=${FLEET_CPU-}
fi
FLEET=()
if [ -n "$FLEET_CPU" ]; then FLEET=(--fleet-cpu "$FLEET_CPU"); fi
ROUNDS=${ROUNDS:-1}
CLIENTS_ONLY=${CLIENTS_ONLY:-}
HOLD_ONLY=${HOLD_ONLY:-}
PORT=${PORT:-7961}
SIZE=64

say() { printf '\n==> %s\n' "$*" >&2; }

# Each held session is a descriptor in the load process and one in the server.
NEED_FDS=$((SESSIONS + 200))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt "$NEED_FDS" ]; then
    echo "ulimit -n is $(ulimit -n); $SESSIONS sessions need $NEED_FDS" >&2
    exit 1
fi

say "building (release)"
cargo build --release -p framelink --bin framelink -p framelink-bench-e2e --bin bench-e2e \
    -p framelink-bench-plot --bin bench-plot >&2
FRAMELINK=${FRAMELINK:-target/release/framelink}
E2E=target/release/bench-e2e
PIN=()
if [ -n "$CPU" ]; then PIN=(taskset -c "$CPU"); fi

mkdir -p "$OUT"
rm -f "$OUT"/*.json
{ lscpu | grep -E 'Model name|^CPU\(s\)|MHz'; uname -r; } >"$OUT/machine.txt" 2>&1 || true
echo "{\"cores\": $(getconf _NPROCESSORS_ONLN)}" >"$OUT/machine.json"

BACKGROUND=()
stop_background() {
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BACKGROUND[@]}"; do wait "$pid" 2>/dev/null || true; done
    BACKGROUND=()
}
trap stop_background EXIT

# Starts `framelink serve` on $PORT in the background and waits (at most 5 s) until it accepts.
# `taskset` execs the server, so the pid is the server's own.
serve() {
    "${PIN[@]}" "$FRAMELINK" serve --listen "tcp://127.0.0.1:$PORT" --max-clients $((SESSIONS + 1000)) \
        >/dev/null 2>&1 &
    BACKGROUND+=($!)
    for _ in $(seq 50); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "the server on port $PORT did not start" >&2
    exit 1
}

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# The first "p99_us" of a JSON document (`clients` prints the round trips' first).
p99() { grep -o '"p99_us":[0-9.]*' "$1" | head -n 1 | cut -d: -f2; }

if [ -z "$CLIENTS_ONLY" ]; then
    say "hold: $SESSIONS idle sessions for ${HOLD_SECONDS} s, pings at $PING_RATE/s for ${PING_SECONDS} s"
    serve
    sleep 0.3
    "${PIN[@]}" "$E2E" hold --connect "tcp://127.0.0.1:$PORT" --server-pid "${BACKGROUND[-1]}" \
        --sessions "$SESSIONS" --seconds "$HOLD_SECONDS" --ping-rate "$PING_RATE" \
        --ping-seconds "$PING_SECONDS" --size "$SIZE" "${FLEET[@]}" >"$OUT/hold-$SESSIONS.json"
    stop_background
fi

if [ -z "$HOLD_ONLY" ]; then
    say "clients: $CLIENTS, then 1, at $RATE pings/s in all, ${CLIENT_SECONDS} s each, $THREADS load thread(s), $ROUNDS round(s)"
    ratios=()
    for round in $(seq "$ROUNDS"); do
        suffix=""
        if [ "$round" -gt 1 ]; then suffix="-r$round"; fi
        for n in "$CLIENTS" 1; do
            serve
            server=${BACKGROUND[-1]}
            before=$(cpu_ticks "$server")
            started=$(date +%s.%N)
            "${PIN[@]}" "$E2E" clients --connect "tcp://127.0.0.1:$PORT" --clients "$n" --rate "$RATE" \
                --threads "$THREADS" --seconds "$CLIENT_SECONDS" --size "$SIZE" >"$OUT/clients-$n$suffix.json"
            ended=$(date +%s.%N)
            after=$(cpu_ticks "$server")
            hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$server/status")
            awk -v t0="$started" -v t1="$ended" -v c0="$before" -v c1="$after" -v hz="$(getconf CLK_TCK)" -v hwm="$hwm" \
                'BEGIN { printf "{\"rss_kib\": %d, \"cpu_percent\": %.1f}\n", hwm, 100 * (c1 - c0) / hz / (t1 - t0) }' \
                >"$OUT/server-$n$suffix.json"
            stop_background
        done
        many=$(p99 "$OUT/clients-$CLIENTS$suffix.json")
        one=$(p99 "$OUT/clients-1$suffix.json")
        ratio=$(awk -v a="$many" -v b="$one" 'BEGIN { printf "%.2f", a / b }')
        ratios+=("$ratio")
        printf 'round %d: p99 %s us (1 client) -> %s us (%d clients) = %sx\n' "$round" "$one" "$many" "$CLIENTS" "$ratio" >&2
    done
    median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    echo "p99 ratios ($CLIENTS clients / 1) over $ROUNDS round(s): ${ratios[*]}; median ${median}x" | tee "$OUT/clients-ratios.txt" >&2
fi

say "done: results in $OUT"
target/release/bench-plot --only server --server "$OUT" --out "$OUT"
