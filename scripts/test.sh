#!/usr/bin/env bash
# Runs every Cuttle test: formatting, lints, unit tests, the store conformance suite on SQLite
# and PostgreSQL, and the end-to-end tests against the real binary.
#
# It installs and starts what the tests need. Chromium and chromedriver (Debian's packages) for
# the portal's browser test, which saves screenshots in target/browser-screenshots/. Node.js and npm (Debian's packages) with the
# pinned npm client in crates/cuttle/tests/api-client (`npm ci`), for the api-client
# compatibility test. PostgreSQL: CUTTLE_TEST_DATABASE_URL if set;
# otherwise the local server on 127.0.0.1:5432 (database `test`), started, or installed from
# Debian's packages, when it is not running. With CI=true a test that cannot reach PostgreSQL
# fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v cc >/dev/null || apt_install build-essential
command -v pg_isready >/dev/null || apt_install postgresql postgresql-client
# Scripts run under bash, sh and python3; SSH targets are tested against a real OpenSSH sshd.
command -v python3 >/dev/null || apt_install python3
command -v pgrep >/dev/null || apt_install procps
{ [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null; } || apt_install openssh-server openssh-client
# The official npm client (@octopusdeploy/api-client, pinned by package-lock.json) is run
# against the real server by the `api_client` end-to-end test.
{ command -v node >/dev/null && command -v npm >/dev/null; } || apt_install nodejs npm
# The web portal is tested in a real headless Chromium, driven through chromedriver.
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || apt_install chromium chromium-driver
log "npm ci (crates/cuttle/tests/api-client)"
(cd crates/cuttle/tests/api-client && npm ci --no-audit --no-fund --loglevel=error)

start_local_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 -q; then return 0; fi
  log "starting PostgreSQL"
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    apt_install postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    pg_isready -h 127.0.0.1 -p 5432 -q && return 0
    sleep 0.5
  done
  log "PostgreSQL did not start on 127.0.0.1:5432"
  return 1
}

can_connect() { psql "$1" -XtAc 'SELECT 1' >/dev/null 2>&1; }

if [ -z "${CUTTLE_TEST_DATABASE_URL:-}" ]; then
  start_local_postgres
  url="postgres://postgres@127.0.0.1:5432/test"
  if ! can_connect "$url"; then
    # A stock Debian install asks for passwords over TCP and has no `test` database:
    # give the postgres user a password and create the database, through the local socket.
    log "preparing the local PostgreSQL for tests"
    as_root runuser -u postgres -- psql -Xq -c "ALTER USER postgres PASSWORD 'cuttle-test'" >/dev/null
    as_root runuser -u postgres -- psql -XtAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
      || as_root runuser -u postgres -- createdb test
    url="postgres://postgres:cuttle-test@127.0.0.1:5432/test"
  fi
  can_connect "$url" || { log "cannot connect to PostgreSQL at $url"; exit 1; }
  export CUTTLE_TEST_DATABASE_URL="$url"
fi
log "PostgreSQL for tests: …@${CUTTLE_TEST_DATABASE_URL##*@}"

log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
cargo test --workspace --locked 2>&1 | tee "$results"
# One closing line for the whole run (cargo prints one per test binary, doc tests last).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$results"
