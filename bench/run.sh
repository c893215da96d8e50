#!/usr/bin/env bash
# Benchmarks of the foundation, with wrk: cold start, idle memory, and the project list under
# load on SQLite and on PostgreSQL, beside a minimal axum server measured in the same run.
#
# Usage: bash bench/run.sh [duration-seconds]   (needs wrk; installs it with apt-get if missing)
# PostgreSQL: CUTTLE_BENCH_DATABASE_URL, or the local server on 127.0.0.1:5432 (database test).
# Writes bench/results/<date>.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
database_url=${CUTTLE_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}

cargo build --release --locked -q
(cd bench/hello-axum && cargo build --release -q)
exec python3 bench/measure.py --duration "$duration" --database-url "$database_url"
