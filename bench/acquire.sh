#!/usr/bin/env bash
# Package acquisition: one package pushed to 10 listening agents (wall time, bytes on the
# loopback wire), and a 100 MiB package with 1 % changed sent as a delta to one agent (bytes as
# a share of the package, time to sign, diff, send and patch). Everything on 127.0.0.1.
#
# Usage: bash bench/acquire.sh [acquire.py options]   (--size-mib 1024 for the 1 GiB run; --help)
# Writes bench/results/<date>-acquire.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p cuttle
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then revision+=" with local changes"; fi
command="bash bench/acquire.sh${*:+ $*}"
exec python3 bench/acquire.py --cuttle "$target_dir/release/cuttle" --revision "$revision" --command "$command" "$@"
