#!/usr/bin/env bash
# Benchmark of the built-in feed: push one large package (random bytes in a stored, uncompressed
# .zip; 1 GiB by default) with curl, then download it; reports MB/s, where the server's time
# went (its "package uploaded" log line) and the server's peak RSS (VmHWM).
#
# Usage: bash bench/packages.sh [packages.py options]   (--size-mib 2048 for 2 GiB; --help)
# Builds with cargo into $CARGO_TARGET_DIR (default target/). Needs curl and about three times
# the package size free on disk. Writes bench/results/<date>-packages.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p cuttle
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then revision+=" with local changes"; fi
command="bash bench/packages.sh${*:+ $*}"
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then command="CARGO_TARGET_DIR=$CARGO_TARGET_DIR $command"; fi
exec python3 bench/packages.py --cuttle "$target_dir/release/cuttle" --revision "$revision" --command "$command" "$@"
