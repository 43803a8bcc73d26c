#!/usr/bin/env bash
# Builds the firmware in release and runs it under QEMU with UART0 served on 127.0.0.1:PORT
# (QEMU listens; clients connect, disconnect and reconnect as they like):
#   examples/firmware/qemu.sh 7878 &
#   framelink info tcp+cobs://127.0.0.1:7878
# or, with `pty` instead of a port, on a pseudo-terminal, as a board on USB-serial would be
# (QEMU prints "char device redirected to /dev/pts/N (label serial0)"):
#   examples/firmware/qemu.sh pty &
#   framelink info serial:///dev/pts/N
# FIRMWARE_FEATURES=psk builds the keyed firmware (the example key) instead.
# QEMU replaces this script's process, so killing the script's PID stops QEMU.
set -euo pipefail
port="${1:?usage: qemu.sh PORT | qemu.sh pty}"
if [ "$port" = pty ]; then
    serial=pty
else
    serial="tcp:127.0.0.1:${port},server=on,wait=off,nodelay=on"
fi
cd "$(dirname "$0")"
unset RUSTFLAGS   # it would replace .cargo/config.toml's -Tlink.x and leave an empty image
cargo build --release --quiet ${FIRMWARE_FEATURES:+--features "$FIRMWARE_FEATURES"}
elf="${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware"
exec qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -display none -monitor none \
    -semihosting-config enable=on,target=native \
    -serial "$serial" \
    -kernel "$elf"
