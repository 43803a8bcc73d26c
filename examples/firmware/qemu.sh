#!/usr/bin/env bash
# Builds the firmware in release and runs it under QEMU with UART0 served on 127.0.0.1:PORT
# (QEMU listens; clients connect, disconnect and reconnect as they like):
#   examples/firmware/qemu.sh 7878 &
#   framelink info tcp+cobs://127.0.0.1:7878
# QEMU replaces this script's process, so killing the script's PID stops QEMU.
set -euo pipefail
port="${1:?usage: qemu.sh PORT}"
cd "$(dirname "$0")"
unset RUSTFLAGS   # it would replace .cargo/config.toml's -Tlink.x and leave an empty image
cargo build --release --quiet
elf="${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware"
exec qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -display none -monitor none \
    -semihosting-config enable=on,target=native \
    -serial "tcp:127.0.0.1:${port},server=on,wait=off,nodelay=on" \
    -kernel "$elf"
