#!/usr/bin/env bash
# What moving a byte costs the firmware's core: boots it under QEMU with -icount shift=0 (each
# guest instruction takes a nanosecond of guest time), runs `framelink bench -n 2M` each way over
# tcp:// and udp://, and divides the guest time the core was awake (SysTick's millisecond ticks
# that did not find it in WFI, read from RAM through QEMU's monitor) by the bytes moved. Unlike
# the speeds, the figure does not depend on how much of the host CPU QEMU gets.
#   examples/firmware-net/cost.sh PATH/TO/framelink
set -euo pipefail
framelink="$(realpath "${1:?usage: cost.sh PATH/TO/framelink}")"
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$out"
}
trap cleanup EXIT

(cd "$here" && unset RUSTFLAGS && timeout 600 cargo build --release --quiet)
elf="$here/${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware-net"
nm="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-nm"
"$nm" "$elf" | awk '$3 ~ /^(MILLIS|IDLE_MILLIS)$/ { print $3, $1 }' > "$out/symbols"
read -r tcp_port udp_port < <(python3 -c '
import socket
t = socket.socket(); t.bind(("127.0.0.1", 0))
u = socket.socket(type=socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(t.getsockname()[1], u.getsockname()[1])')
QEMU_MONITOR="unix:$out/monitor,server=on,wait=off" QEMU_ARGS="-icount shift=0,sleep=on" \
    "$here/qemu.sh" "$tcp_port" "$udp_port" > "$out/qemu.log" 2>&1 &
qemu_pid=$!

# Prints the firmware's tick and idle-tick counters.
counters() {
    timeout 30 python3 - "$out" <<'PY'
import os, pathlib, socket, sys, time
out = pathlib.Path(sys.argv[1])
symbols = {n: int(at, 16) - 0x2000_0000 for n, at in (l.split() for l in (out / "symbols").read_text().splitlines())}
dump = out / "ram.bin"
dump.unlink(missing_ok=True)
with socket.socket(socket.AF_UNIX) as s:
    s.connect(str(out / "monitor"))
    time.sleep(0.1)
    s.sendall(f'pmemsave 0x20000000 65536 "{dump}"\n'.encode())
    for _ in range(100):
        if dump.exists() and dump.stat().st_size == 65536:
            break
        time.sleep(0.1)
ram = dump.read_bytes()
print(*(int.from_bytes(ram[symbols[n]:symbols[n] + 4], "little") for n in ("MILLIS", "IDLE_MILLIS")))
PY
}

for attempt in $(seq 30); do
    timeout 10 "$framelink" info "tcp://127.0.0.1:$tcp_port" > /dev/null 2>&1 && break
    [ "$attempt" = 30 ] && { cat "$out/qemu.log"; echo "the firmware never answered"; exit 1; }
    sleep 0.5
done
for addr in "tcp://127.0.0.1:$tcp_port" "udp://127.0.0.1:$udp_port"; do
    for direction in forward reverse; do
        flag=""; [ "$direction" = reverse ] && flag=--reverse
        read -r ticks0 idle0 < <(counters)
        timeout 120 "$framelink" bench -n 2M -i 0 $flag --json "$addr" > "$out/bench.json"
        read -r ticks1 idle1 < <(counters)
        python3 - "$out/bench.json" "$addr" "$direction" $((ticks1 - ticks0 - idle1 + idle0)) <<'PY'
import json, sys
bench, addr, direction, busy_ms = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4])
print(f"{addr} {direction}: {bench['bytes']} bytes, {busy_ms} ms of guest time awake, "
      f"{busy_ms * 1e6 / bench['bytes']:.0f} instructions per byte")
PY
    done
done
