#!/usr/bin/env bash
# The front door's figures: `nightshift bench-api` (release build) with wrk, against a real API
# process on a private key prefix and database. Installs wrk from Debian's packages if missing.
# Usage: scripts/bench-api.sh [bench-api options: --connections, --batch-connections, --seconds]
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/services.sh"
cd "$NS_ROOT"
ensure_rust
ensure_redis
ensure_postgres
command -v wrk >/dev/null || { _ns_say "installing wrk (Debian package) for the HTTP load"; _ns_apt_install wrk; }
cargo run -q --release -- bench-api "$@"
