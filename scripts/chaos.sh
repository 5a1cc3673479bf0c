#!/usr/bin/env bash
# The chaos suite's full run: 100 SIGKILLs and 50 SIGTERMs of workers, SIGSTOPs past the lease,
# Redis SIGKILLed and restarted, stalled, failed over and behind a slow link, clocks 90 s off,
# under a steady mixed load; prints the report and exits non-zero if a job was lost or an
# effect duplicated. The runner starts its own redis-server (never the
# shared one) and creates and drops its own database on DATABASE_URL's server.
# Extra arguments go to `nightshift chaos` (e.g. --kill-cycles 20 --term-cycles 10).
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/services.sh"
cd "$NS_ROOT"

ensure_rust
ensure_redis_binary
ensure_postgres
ensure_faketime

_ns_say "building nightshift (release)"
cargo build --release --bin nightshift
target="${CARGO_TARGET_DIR:-$NS_ROOT/target}"
_ns_say "running: nightshift chaos $*"
# The runner's defaults are the full run: 100 SIGKILL, 50 SIGTERM, 2 SIGSTOP, 3 Redis restarts,
# 2 Redis stalls, 2 failovers, 2 slow links.
RUST_LOG=warn "$target/release/nightshift" chaos "$@"
