#!/usr/bin/env bash
# CI for the Ethernet firmware: build it, boot it under QEMU with its port 7878 forwarded from
# free loopback ports (TCP and UDP), run `framelink info`, `ping -c 50` and `bench -t 2` both
# ways over tcp:// and udp:// with --json, check the results, print the figures, the stack the
# firmware used (read from its RAM through QEMU's monitor) and the size report, and always stop
# QEMU. Every step is bounded by a timeout.
#   examples/firmware-net/ci.sh PATH/TO/framelink
set -euo pipefail
framelink="$(realpath "${1:?usage: ci.sh PATH/TO/framelink}")"
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$out"
}
trap cleanup EXIT

echo "--- building the firmware"
(cd "$here" && unset RUSTFLAGS && timeout 600 cargo build --release --quiet)
elf="$here/${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware-net"

read -r tcp_port udp_port < <(python3 -c '
import socket
t = socket.socket(); t.bind(("127.0.0.1", 0))
u = socket.socket(type=socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(t.getsockname()[1], u.getsockname()[1])')
echo "--- booting it under QEMU, port 7878 on 127.0.0.1:$tcp_port (TCP) and :$udp_port (UDP)"
QEMU_MONITOR="unix:$out/monitor,server=on,wait=off" "$here/qemu.sh" "$tcp_port" "$udp_port" > "$out/qemu.log" 2>&1 &
qemu_pid=$!
tcp="tcp://127.0.0.1:$tcp_port"
udp="udp://127.0.0.1:$udp_port"

# QEMU accepts on the forwarded port before the firmware listens: retry the first handshake.
echo "--- framelink info $tcp (retried until the firmware is up)"
for attempt in $(seq 30); do
    kill -0 "$qemu_pid" 2>/dev/null || { cat "$out/qemu.log"; echo "QEMU exited"; exit 1; }
    timeout 10 "$framelink" info "$tcp" && break
    [ "$attempt" = 30 ] && { cat "$out/qemu.log"; echo "the firmware never answered"; exit 1; }
    sleep 0.5
done
for addr in "$tcp" "$udp"; do
    name="${addr%%:*}"
    echo "--- $addr: info, ping -c 50, bench -t 2 (forward, then reverse)"
    timeout 60 "$framelink" info --json "$addr" > "$out/$name-info.json"
    timeout 120 "$framelink" ping -c 50 -i 0 --json "$addr" > "$out/$name-ping.json"
    timeout 120 "$framelink" bench -t 2 -i 0 --json "$addr" > "$out/$name-bench.json"
    timeout 120 "$framelink" bench -t 2 -i 0 --reverse --json "$addr" > "$out/$name-reverse.json"
done

echo "--- stack used, read from RAM (zeroed at boot under QEMU) through the monitor"
ebss="$("$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-nm" "$elf" | awk '$3 == "__ebss" { print $1 }')"
timeout 30 python3 - "$out" "$ebss" <<'PY'
import os, socket, sys, time
out, ebss = sys.argv[1], int(sys.argv[2], 16)
RAM, SIZE = 0x2000_0000, 64 * 1024
monitor = socket.socket(socket.AF_UNIX)
monitor.connect(os.path.join(out, "monitor"))
dump = os.path.join(out, "ram.bin")
time.sleep(0.2)
monitor.sendall(f'pmemsave {RAM:#x} {SIZE} "{dump}"\n'.encode())
for _ in range(100):
    if os.path.exists(dump) and os.path.getsize(dump) == SIZE:
        break
    time.sleep(0.1)
ram = open(dump, "rb").read()
# The deepest word the stack (growing down from the top of RAM) ever wrote.
start = (ebss - RAM + 3) & ~3
low = next((i for i in range(start, SIZE, 4) if ram[i:i + 4] != bytes(4)), SIZE)
open(os.path.join(out, "stack"), "w").write(str(SIZE - low))
PY

python3 - "$out" "$tcp" "$udp" <<'PY'
import json, sys, pathlib
out, addrs = pathlib.Path(sys.argv[1]), sys.argv[2:]
for addr in addrs:
    name = addr.split(":")[0]
    load = lambda what: json.loads((out / f"{name}-{what}.json").read_text())
    info, ping, bench, reverse = load("info"), load("ping"), load("bench"), load("reverse")
    assert "smoltcp" in info["name"], info
    assert ping["transmitted"] == 50 and ping["received"] == 50, ping
    assert bench["bytes"] > 0 and reverse["bytes"] > 0, (bench, reverse)
    print(f"{addr}: {info['name']}, max_payload {info['max_payload']}, window {info['window']}")
    print(f"  ping: 50/50 answered, p50 {ping['rtt_us']['p50'] / 1000:.3f} ms, p99 {ping['rtt_us']['p99'] / 1000:.3f} ms")
    print(f"  bench: {bench['bits_per_second'] / 8e6:.2f} MB/s to the device, {reverse['bits_per_second'] / 8e6:.2f} MB/s from it")
print(f"stack: {(out / 'stack').read_text()} bytes used at most")
PY

echo "--- size"
"$here/size.sh"
