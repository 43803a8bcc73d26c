#!/usr/bin/env bash
# Prints the release image's text, data and bss (flash = text + data; static RAM = data + bss,
# the stack not counted), then its largest sections, and fails if text + data exceed the flash
# budget: 48 KiB, or FLASH_BUDGET bytes. `size-by-source.py` says where the bytes go.
set -euo pipefail
cd "$(dirname "$0")"
unset RUSTFLAGS
cargo build --release --quiet
elf="${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware-net"
size="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"
berkeley="$("$size" -B "$elf")"
echo "$berkeley"
"$size" -A "$elf" | awk 'NR <= 2 || $1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/'
budget="${FLASH_BUDGET:-49152}"
flash="$(echo "$berkeley" | awk 'NR == 2 { print $1 + $2 }')"
if [ "$flash" -gt "$budget" ]; then
    echo "flash: $flash bytes, over the budget of $budget" >&2
    exit 1
fi
echo "flash: $flash bytes of a $budget-byte budget"
