#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time, one after the other.
#
#   bash fuzz/ci.sh [SECONDS]     # per target, default 20
#
# Exits non-zero if a target does not build or any run finds a crash, a timeout (an input
# running over 10 s) or an out-of-memory; the input is then in fuzz/artifacts/<target>/.
# Each run starts from the committed seeds in fuzz/corpus/<target>/ and writes what it finds to
# a temporary folder, so the committed corpus stays as it is.
#
# cargo-fuzz needs a nightly compiler. With a nightly toolchain installed it is used; otherwise
# the default toolchain is told to accept nightly flags (RUSTC_BOOTSTRAP=1), since this machine
# kind has one toolchain and cannot fetch another.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-20}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly)
else
    echo "==> no nightly toolchain: using $(rustc --version) with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi

echo "==> building every target"
"${cargo[@]}" fuzz build

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
for target in $("${cargo[@]}" fuzz list); do
    echo "==> $target for ${seconds}s"
    mkdir -p "$work/$target"
    log="$work/$target.log"
    if "${cargo[@]}" fuzz run "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(Done [0-9]+ runs|stat::(number_of_executed_units|average_exec_per_sec|new_units_added))' "$log" || true
    else
        echo "!!! $target failed:"
        grep -E -A2 'panicked at|^==[0-9]+== ERROR|^SUMMARY|Test unit written to' "$log" || tail -n 40 "$log"
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "==> failed: ${failed[*]} (inputs in fuzz/artifacts/; reproduce with: cargo +nightly fuzz run TARGET INPUT)"
    exit 1
fi
echo "==> every target ran ${seconds}s without a crash"
