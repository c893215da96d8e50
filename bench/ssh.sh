#!/usr/bin/env bash
# Benchmarks of scripts through SSH targets beside ansible and plain OpenSSH: round trip of
# `echo hi` through one SSH target; fan-out to 1, 10 and 50 targets on one local sshd.
# Run as root: it creates a login account without shell start-up files (`cuttlebench`) for the
# run, and installs ansible-core from PyPI into a virtual environment when it is missing.
#
# Usage: bash bench/ssh.sh [ssh.py options]   (e.g. --runs 50 for a quick look; --help)
# Builds with cargo into $CARGO_TARGET_DIR (default target/). The run takes about 5 minutes.
# Writes bench/results/<date>-ssh.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p cuttle
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then revision+=" with local changes"; fi
command="bash bench/ssh.sh${*:+ $*}"
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then command="CARGO_TARGET_DIR=$CARGO_TARGET_DIR $command"; fi
exec python3 bench/ssh.py --cuttle "$target_dir/release/cuttle" --revision "$revision" --command "$command" "$@"
