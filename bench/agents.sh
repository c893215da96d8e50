#!/usr/bin/env bash
# Benchmarks of scripts through agents: round trip of `echo hi` through the built-in worker, a
# listening and a polling agent (beside a bare bash spawn); fan-out to 1, 10 and 50 agents;
# idle agent RSS and the server's RSS with 200 polling agents. Everything on 127.0.0.1.
#
# Usage: bash bench/agents.sh [agents.py options]   (e.g. --runs 50 for a quick look; --help)
# Builds with cargo into $CARGO_TARGET_DIR (default target/). The run takes about 10 minutes.
# Writes bench/results/<date>-agents.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p cuttle
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then revision+=" with local changes"; fi
command="bash bench/agents.sh${*:+ $*}"
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then command="CARGO_TARGET_DIR=$CARGO_TARGET_DIR $command"; fi
exec python3 bench/agents.py --cuttle "$target_dir/release/cuttle" --revision "$revision" --command "$command" "$@"
