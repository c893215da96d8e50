#!/usr/bin/env bash
# Delta transfer of one package: builds cuttle-delta's benchmark in release mode and prints the
# delta's share of a 100 MiB package with 1 % changed, and the time to sign, diff and patch.
# Usage: bash bench/delta.sh [MiB]   (record figures in bench/results/<date>-delta.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p cuttle-delta --example delta_bench
"$CARGO_TARGET_DIR/release/examples/delta_bench" "${1:-100}"
