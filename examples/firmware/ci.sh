#!/usr/bin/env bash
# CI for the firmware example: build it, boot it under QEMU with UART0 on a free loopback port
# (`tcp`, the default: `tcp+cobs://`) or on a pty (`pty`: `serial://`, its path read from QEMU's
# output), run `framelink info`, `ping -c 50` and `bench -t 2` both ways against it with --json,
# check the results, print the size report, and always stop QEMU. Every step is bounded by a
# timeout. With `psk` the firmware is the keyed build (feature psk, the example key): every
# command then passes --psk-file, and a command without the key must be refused.
#   examples/firmware/ci.sh PATH/TO/framelink [tcp|pty] [psk]
set -euo pipefail
usage="usage: ci.sh PATH/TO/framelink [tcp|pty] [psk]"
framelink="$(realpath "${1:?$usage}")"
uart="${2:-tcp}"
keyed="${3:-}"
case "$uart" in
    tcp | pty) ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
case "$keyed" in
    '' | psk) ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$out"
}
trap cleanup EXIT

features=()
key=()
if [ "$keyed" = psk ]; then
    features=(--features psk)
    export FIRMWARE_FEATURES=psk
    # The tool refuses a key file others may read: a private copy of the example key.
    install -m 600 "$here/example-only.psk" "$out/key.psk"
    key=(--psk-file "$out/key.psk")
fi

echo "--- building the firmware ${features[*]}"
(cd "$here" && unset RUSTFLAGS && timeout 600 cargo build --release --quiet "${features[@]}")

qemu_died() { cat "$out/qemu.log"; echo "QEMU exited"; exit 1; }
if [ "$uart" = tcp ]; then
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    echo "--- booting it under QEMU, UART0 on 127.0.0.1:$port"
    "$here/qemu.sh" "$port" > "$out/qemu.log" 2>&1 &
    qemu_pid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$qemu_pid" 2>/dev/null || qemu_died
        sleep 0.1
    done
    addr="tcp+cobs://127.0.0.1:$port"
else
    echo "--- booting it under QEMU, UART0 on a pty"
    "$here/qemu.sh" pty > "$out/qemu.log" 2>&1 &
    qemu_pid=$!
    pty=""
    for _ in $(seq 100); do
        pty="$(sed -n 's|.*char device redirected to \(/dev/[^ ]*\).*|\1|p' "$out/qemu.log" | head -n 1)"
        [ -n "$pty" ] && break
        kill -0 "$qemu_pid" 2>/dev/null || qemu_died
        sleep 0.1
    done
    [ -n "$pty" ] || { cat "$out/qemu.log"; echo "QEMU named no pty"; exit 1; }
    addr="serial://$pty"
fi

echo "--- framelink info ${key[*]} $addr"
timeout 60 "$framelink" info "${key[@]}" "$addr"
timeout 60 "$framelink" info --json "${key[@]}" "$addr" > "$out/info.json"
echo "--- framelink ping -c 50 $addr"
timeout 120 "$framelink" ping -c 50 -i 0 --json "${key[@]}" "$addr" > "$out/ping.json"
echo "--- framelink bench -t 2 $addr (forward, then reverse)"
timeout 120 "$framelink" bench -t 2 --json "${key[@]}" "$addr" > "$out/bench.json"
timeout 120 "$framelink" bench -t 2 --reverse --json "${key[@]}" "$addr" > "$out/bench-reverse.json"
if [ "$keyed" = psk ]; then
    echo "--- without the key: refused, with words that say so"
    if timeout 60 "$framelink" info --timeout 5 "$addr" 2> "$out/refused.txt"; then
        echo "a keyless client was served"; exit 1
    fi
    cat "$out/refused.txt"
    grep -q "one side has a pre-shared key and the other has none" "$out/refused.txt"
fi

python3 - "$out" "$addr" <<'PY'
import json, sys, pathlib
out, addr = pathlib.Path(sys.argv[1]), sys.argv[2]
info = json.loads((out / "info.json").read_text())
ping = json.loads((out / "ping.json").read_text())
bench = json.loads((out / "bench.json").read_text())
reverse = json.loads((out / "bench-reverse.json").read_text())
assert "lm3s6965" in info["name"], info
assert "retransmit" in info["capabilities"], info
assert ping["transmitted"] == 50 and ping["received"] == 50, ping
assert bench["bytes"] > 0 and reverse["bytes"] > 0, (bench, reverse)
print(f"firmware at {addr}: {info['name']}, max_payload {info['max_payload']}, window {info['window']}")
print(f"ping: 50/50 answered, p50 {ping['rtt_us']['p50'] / 1000:.3f} ms, p99 {ping['rtt_us']['p99'] / 1000:.3f} ms")
print(f"bench: {bench['bits_per_second'] / 8000:.0f} kB/s to the device, {reverse['bits_per_second'] / 8000:.0f} kB/s from it (acknowledged bytes)")
PY

if [ "$uart" = tcp ]; then
    echo "--- size"
    "$here/size.sh" $keyed
fi
