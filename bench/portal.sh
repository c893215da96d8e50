#!/usr/bin/env bash
# The web portal's main pages on a server with 1,000 projects: the first fetch after a change
# and the p50/p99 of repeated fetches, signed in through the portal's own form.
#
# Usage: bash bench/portal.sh [portal.py options]   (--projects 100 for a quick look; --help)
# Writes bench/results/<date>-portal.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p cuttle
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then revision+=" with local changes"; fi
command="bash bench/portal.sh${*:+ $*}"
exec python3 bench/portal.py --cuttle "$target_dir/release/cuttle" --revision "$revision" --command "$command" "$@"
