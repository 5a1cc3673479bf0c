#!/usr/bin/env bash
# The dashboard's history queries on a million-row job_history: creates a scratch database,
# fills it (ids time-ordered like UUIDv7, one day of jobs over 6 kinds and 3 queues, 2% dead),
# runs each query the jobs page and the overview make, and prints its server-side time.
# Usage: scripts/bench-dashboard.sh [ROWS]   (default 1000000)
set -euo pipefail
# shellcheck source=scripts/lib/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/services.sh"
cd "$NS_ROOT"
ensure_rust
ensure_postgres
rows="${1:-1000000}"
db="nightshift_bench_dashboard_$$"
admin="$(_ns_pg_url_with_db "$DATABASE_URL" postgres)"
url="$(_ns_pg_url_with_db "$DATABASE_URL" "$db")"
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
DATABASE_URL="$url" cargo run -q -- migrate >/dev/null
_ns_say "filling job_history with $rows rows"
psql -q "$url" <<SQL
INSERT INTO job_history (id, queue, kind, payload, state, attempts, max_attempts, created_at, started_at, finished_at, error)
SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7000' || '8000' || lpad(to_hex(i), 12, '0'))::uuid,
       (ARRAY['default', 'email', 'cashflow'])[1 + i % 3],
       (ARRAY['noop', 'email.send', 'cashflow.project', 'reminder.notify', 'webhook.send', 'diag.fail'])[1 + i % 6],
       jsonb_build_object('user_id', i % 50000, 'message_key', 'm' || i),
       CASE WHEN i % 50 = 0 THEN 'dead' ELSE 'succeeded' END,
       1, 5, t, t + interval '40 ms', t + interval '90 ms',
       CASE WHEN i % 50 = 0 THEN 'boom' END
FROM (SELECT i, now() - interval '1 day' + (i * interval '1 day' / $rows) AS t FROM generate_series(1, $rows) i) g;
ANALYZE job_history;
SQL
floor_hour="$(psql -qtA "$url" -c "SELECT lpad(to_hex((extract(epoch FROM now() - interval '65 minutes') * 1000)::bigint), 12, '0') || '0000' || '0000' || '000000000000'")"
time_query() {
    local name="$1" sql="$2"
    local ms
    ms="$(psql -qtA "$url" -c "EXPLAIN (ANALYZE, FORMAT JSON) $sql" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])')"
    printf '%-44s %8.1f ms\n' "$name" "$ms"
}
cols="id, queue, kind, state, attempts, created_at, finished_at, error"
echo "job_history rows: $rows"
time_query "jobs: newest page" "SELECT $cols FROM job_history WHERE true ORDER BY id DESC LIMIT 50"
time_query "jobs: page 2 (keyset)" "SELECT $cols FROM job_history WHERE id < (SELECT id FROM job_history ORDER BY id DESC OFFSET 49 LIMIT 1) ORDER BY id DESC LIMIT 50"
time_query "jobs: queue + state=dead" "SELECT $cols FROM job_history WHERE queue = 'email' AND state = 'dead' ORDER BY id DESC LIMIT 50"
time_query "jobs: kind" "SELECT $cols FROM job_history WHERE kind = 'webhook.send' ORDER BY id DESC LIMIT 50"
time_query "jobs: by id" "SELECT $cols FROM job_history WHERE id = (SELECT id FROM job_history ORDER BY id LIMIT 1)"
time_query "jobs: payload user_id=4242 (any time)" "SELECT $cols FROM job_history WHERE payload #>> '{user_id}' = '4242' ORDER BY id DESC LIMIT 50"
time_query "jobs: payload user_id=4242, last 2 h" "SELECT $cols FROM job_history WHERE id >= '$floor_hour'::uuid AND payload #>> '{user_id}' = '4242' ORDER BY id DESC LIMIT 50"
time_query "jobs: payload match on no row (full scan)" "SELECT $cols FROM job_history WHERE payload #>> '{user_id}' = 'none' ORDER BY id DESC LIMIT 50"
time_query "overview: per-minute series, last hour" "SELECT date_trunc('minute', finished_at), count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state = 'dead') FROM job_history WHERE id >= '$floor_hour'::uuid AND finished_at >= now() - interval '1 hour' GROUP BY 1"
time_query "overview: latency p50/p99, last hour" "SELECT queue, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)), percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)) FROM job_history WHERE id >= '$floor_hour'::uuid AND created_at >= now() - interval '1 hour' AND started_at IS NOT NULL AND attempts = 1 GROUP BY queue"
