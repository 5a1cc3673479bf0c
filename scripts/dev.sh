#!/usr/bin/env bash
# Run the platform locally: API + workers + scheduler + dashboard in one process, with demo data.
# Reuses Redis/PostgreSQL when they are running, otherwise starts private ones under .nightshift/.
# Extra arguments are passed to `nightshift all --demo`.
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/services.sh"
cd "$NS_ROOT"

ensure_rust
ensure_redis
ensure_postgres

export NIGHTSHIFT_API_ADDR="${NIGHTSHIFT_API_ADDR:-127.0.0.1:8080}"
if [[ -z ${NIGHTSHIFT_JWT_SECRET:-} ]]; then
    # A per-checkout development secret, kept so that issued tokens survive restarts.
    secret_file="$NS_STATE_DIR/dev-jwt-secret"
    if [[ ! -s $secret_file ]]; then
        mkdir -p "$NS_STATE_DIR"
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file")
    fi
    NIGHTSHIFT_JWT_SECRET="$(<"$secret_file")"
    export NIGHTSHIFT_JWT_SECRET
    _ns_say "using the development JWT secret in .nightshift/dev-jwt-secret"
fi

_ns_say "building (cargo build)"
cargo build

bin="${CARGO_TARGET_DIR:-$NS_ROOT/target}/debug/nightshift"
_ns_say "starting $bin all --demo (Ctrl-C stops it; Redis/PostgreSQL keep running)"
exec "$bin" all --demo "$@"
