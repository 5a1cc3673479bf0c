#!/usr/bin/env bash
# Run the whole test suite against real Redis and PostgreSQL.
# Reuses Redis/PostgreSQL when they are running, otherwise starts private ones under .nightshift/.
# Tests start their own redis-servers (the binary must be on PATH) and create/drop their own
# databases through NIGHTSHIFT_TEST_PG_URL. Extra arguments go to `cargo test --workspace`.
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/services.sh"
cd "$NS_ROOT"

ensure_rust
ensure_redis_binary
ensure_redis
ensure_postgres
ensure_pg_tools
ensure_test_python
ensure_faketime
ensure_chromium
ensure_client_tools

# ensure_postgres exports it; keep the documented default in case DATABASE_URL was preset.
export NIGHTSHIFT_TEST_PG_URL="${NIGHTSHIFT_TEST_PG_URL:-$(_ns_pg_url_with_db "$DATABASE_URL" postgres)}"

_ns_say "REDIS_URL=$REDIS_URL DATABASE_URL=$DATABASE_URL NIGHTSHIFT_TEST_PG_URL=$NIGHTSHIFT_TEST_PG_URL"
_ns_say "running: cargo test --workspace $*"
# cargo prints one "test result" line per test binary, the last often a doc-test run with no
# tests; close with one total line so a reader (and CI) sees what ran.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
