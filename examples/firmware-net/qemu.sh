#!/usr/bin/env bash
# Builds the firmware in release and runs it under QEMU on the board's Ethernet controller,
# behind QEMU's user network (the board is 10.0.2.15, the host 10.0.2.2) with the board's port
# 7878 forwarded from 127.0.0.1: TCP from TCP_PORT, UDP from UDP_PORT.
#   examples/firmware-net/qemu.sh 7878 7879 &
#   framelink info tcp://127.0.0.1:7878
#   framelink ping udp://127.0.0.1:7879
# QEMU accepts on the forwarded TCP port at once, before the firmware listens: a client that
# comes while it boots sees the connection closed and has to try again.
#
# restrict=off: with restrict=on QEMU's user network (libslirp) drops every UDP datagram the
# guest sends, the answers to a forwarded port included, so UDP could not work. The firmware
# opens no connection of its own; it only answers on the forwarded ports.
# QEMU_MONITOR (default none) goes to -monitor, e.g. unix:PATH,server=on,wait=off (ci.sh);
# QEMU_ARGS are added to QEMU's arguments, e.g. "-icount shift=0,sleep=on" (cost.sh).
# QEMU replaces this script's process, so killing the script's PID stops QEMU.
set -euo pipefail
tcp_port="${1:?usage: qemu.sh TCP_PORT UDP_PORT}"
udp_port="${2:?usage: qemu.sh TCP_PORT UDP_PORT}"
cd "$(dirname "$0")"
unset RUSTFLAGS   # it would replace .cargo/config.toml's -Tlink.x and leave an empty image
cargo build --release --quiet
elf="${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware-net"
exec qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -display none -monitor "${QEMU_MONITOR:-none}" \
    -semihosting-config enable=on,target=native \
    -nic "user,model=stellaris,restrict=off,ipv6=off,hostfwd=tcp:127.0.0.1:${tcp_port}-:7878,hostfwd=udp:127.0.0.1:${udp_port}-:7878" \
    ${QEMU_ARGS:-} -kernel "$elf"
