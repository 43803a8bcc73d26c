#!/usr/bin/env bash
# Prints the release image's text, data and bss (flash = text + data; static RAM = data + bss,
# the stack not counted), then its largest sections.
set -euo pipefail
cd "$(dirname "$0")"
unset RUSTFLAGS
cargo build --release --quiet
elf="${CARGO_TARGET_DIR:-target}/thumbv7m-none-eabi/release/framelink-firmware"
size="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"
"$size" -B "$elf"
"$size" -A "$elf" | awk 'NR <= 2 || $1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/'
