#!/usr/bin/env bash
# CI for the Ethernet firmware: build it, boot it under QEMU with its port 7878 forwarded from
# free loopback ports (TCP and UDP), run `framelink info`, `ping -c 50` and `bench -t 2` both
# ways over tcp:// and udp:// with --json, check the results, print the figures and the size
# report, and always stop QEMU. Every step is bounded by a timeout.
#
# Through QEMU's monitor it also saves the firmware's RAM around each bench, to print how busy
# its core was (the share of SysTick's millisecond ticks that did not find it asleep) and, at
# the end, the most stack it used (RAM starts zeroed under QEMU: the lowest word written).
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
nm="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-nm"
"$nm" "$elf" | awk '$3 ~ /^(__ebss|MILLIS|IDLE_MILLIS)$/ { print $3, $1 }' > "$out/symbols"

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

# Saves the firmware's RAM into $out/NAME.bin.
ram() {
    timeout 30 python3 - "$out/monitor" "$out/$1.bin" <<'PY'
import os, socket, sys, time
monitor, dump = sys.argv[1:]
with socket.socket(socket.AF_UNIX) as s:
    s.connect(monitor)
    time.sleep(0.1)
    s.sendall(f'pmemsave 0x20000000 65536 "{dump}"\n'.encode())
    for _ in range(100):
        if os.path.exists(dump) and os.path.getsize(dump) == 65536:
            break
        time.sleep(0.1)
PY
}

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
    ram "$name-start"
    timeout 120 "$framelink" bench -t 2 -i 0 --json "$addr" > "$out/$name-bench.json"
    ram "$name-bench"
    timeout 120 "$framelink" bench -t 2 -i 0 --reverse --json "$addr" > "$out/$name-reverse.json"
    ram "$name-reverse"
done

python3 - "$out" "$tcp" "$udp" <<'PY'
import json, sys, pathlib
out, addrs = pathlib.Path(sys.argv[1]), sys.argv[2:]
RAM = 0x2000_0000
symbols = {n: int(at, 16) - RAM for n, at in (line.split() for line in (out / "symbols").read_text().splitlines())}
dump = lambda name: (out / f"{name}.bin").read_bytes()
word = lambda ram, name: int.from_bytes(ram[symbols[name]:symbols[name] + 4], "little")

def busy(start, end):
    """The share of the millisecond ticks between two RAM dumps that found the core awake."""
    a, b = dump(start), dump(end)
    ticks = word(b, "MILLIS") - word(a, "MILLIS")
    return 1 - (word(b, "IDLE_MILLIS") - word(a, "IDLE_MILLIS")) / max(ticks, 1)

for addr in addrs:
    name = addr.split(":")[0]
    load = lambda what: json.loads((out / f"{name}-{what}.json").read_text())
    info, ping, bench, reverse = load("info"), load("ping"), load("bench"), load("reverse")
    assert "smoltcp" in info["name"], info
    assert ping["transmitted"] == 50 and ping["received"] == 50, ping
    assert bench["bytes"] > 0 and reverse["bytes"] > 0, (bench, reverse)
    print(f"{addr}: {info['name']}, max_payload {info['max_payload']}, window {info['window']}")
    print(f"  ping: 50/50 answered, p50 {ping['rtt_us']['p50'] / 1000:.3f} ms, p99 {ping['rtt_us']['p99'] / 1000:.3f} ms")
    print(f"  bench: {bench['bits_per_second'] / 8e6:.2f} MB/s to the device, "
          f"{reverse['bits_per_second'] / 8e6:.2f} MB/s from it")
    print(f"  the core was busy {busy(f'{name}-start', f'{name}-bench'):.0%} of the forward run, "
          f"{busy(f'{name}-bench', f'{name}-reverse'):.0%} of the reverse one")
# The deepest word the stack (growing down from the top of RAM) ever wrote.
ram = dump("udp-reverse")
low = next((i for i in range((symbols["__ebss"] + 3) & ~3, len(ram), 4) if ram[i:i + 4] != bytes(4)), len(ram))
print(f"stack: {len(ram) - low} bytes used at most")
PY

echo "--- size"
"$here/size.sh"
