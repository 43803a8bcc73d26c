#!/usr/bin/env bash
# Prints the release image's text, data and bss (flash = text + data; static RAM = data + bss,
# the stack not counted), then its largest sections, and fails if text + data exceed the flash
# budget: 16 KiB, or FLASH_BUDGET bytes. `size-by-source.py` says where the bytes go.
#   size.sh          the UART responder (budget 16 KiB)
#   size.sh psk      its keyed build, feature psk (budget 20 KiB: 16 KiB + 4 KiB for Ascon and
#                    the keyed session)
set -euo pipefail
cd "$(dirname "$0")"
unset RUSTFLAGS
features=()
default_budget=16384
case "${1:-}" in
    '') ;;
    psk) features=(--features psk); default_budget=20480 ;;
    *) echo "usage: size.sh [psk]" >&2; exit 2 ;;
esac
cargo build --release --quiet "${features[@]}"
elf="${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware"
size="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"
berkeley="$("$size" -B "$elf")"
echo "$berkeley"
"$size" -A "$elf" | awk 'NR <= 2 || $1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/'
budget="${FLASH_BUDGET:-$default_budget}"
flash="$(echo "$berkeley" | awk 'NR == 2 { print $1 + $2 }')"
if [ "$flash" -gt "$budget" ]; then
    echo "flash: $flash bytes, over the budget of $budget" >&2
    exit 1
fi
echo "flash: $flash bytes of a $budget-byte budget"
