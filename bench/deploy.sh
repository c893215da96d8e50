#!/usr/bin/env bash
# Benchmarks of deployments: deploy-call-to-Success latency on a listening agent beside a bare
# bash spawn; 500 deployments queued at once on SQLite and PostgreSQL; a task writing
# 1,000,000 log lines (ingest rate, server RSS, fetching the tail). Everything on 127.0.0.1.
#
# Usage: bash bench/deploy.sh [deploy.py options]   (e.g. --runs 50 for a quick look; --help)
# PostgreSQL: CUTTLE_BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test (a
# schema of its own, dropped afterwards). Writes bench/results/<date>-deploy.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p cuttle
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then revision+=" with local changes"; fi
command="bash bench/deploy.sh${*:+ $*}"
exec python3 bench/deploy.py --cuttle "$target_dir/release/cuttle" --revision "$revision" --command "$command" "$@"
