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
if [[ -z ${NIGHTSHIFT_MASTER_KEY:-} && -z ${NIGHTSHIFT_JWT_SECRET:-} ]]; then
    # Tokens come from the rotating keyring, sealed with a development master key kept per
    # user, not per checkout: every checkout shares the local database and so its keyring.
    key_dir="${XDG_CONFIG_HOME:-$HOME/.config}/nightshift"
    master_file="$key_dir/dev-master-key"
    if [[ ! -s $master_file ]]; then
        mkdir -p "$key_dir"
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$master_file")
    fi
    NIGHTSHIFT_MASTER_KEY="$(<"$master_file")"
    export NIGHTSHIFT_MASTER_KEY
    _ns_say "token keys: the keyring, sealed with the development master key in $master_file"
fi

# First, so every step after it can use the binary. Progress shows: a first build takes several
# minutes on two cores (about 11 here), a rebuild seconds.
if [[ -x "${CARGO_TARGET_DIR:-$NS_ROOT/target}/debug/nightshift" ]]; then
    _ns_say "building nightshift (cargo build: seconds when little changed)"
else
    _ns_say "building nightshift for the first time (cargo build: several minutes on two cores; progress below)"
fi
build_start=$SECONDS
cargo build
_ns_say "built in $((SECONDS - build_start)) s"

ensure_pg_tools
export NIGHTSHIFT_BACKUP_DIR="${NIGHTSHIFT_BACKUP_DIR:-$NS_STATE_DIR/backups}"
if [[ -z ${NIGHTSHIFT_BACKUP_KEY:-} ]]; then
    # The nightly backup and its restore drill need an age identity; the development one is
    # kept per user next to the master key, so backups from any checkout restore.
    key_dir="${XDG_CONFIG_HOME:-$HOME/.config}/nightshift"
    backup_key_file="$key_dir/dev-backup-key"
    if [[ ! -s $backup_key_file ]]; then
        mkdir -p "$key_dir"
        (umask 077 && "${CARGO_TARGET_DIR:-$NS_ROOT/target}/debug/nightshift" backup keygen |
            sed -n 's/^NIGHTSHIFT_BACKUP_KEY=//p' >"$backup_key_file")
    fi
    NIGHTSHIFT_BACKUP_KEY="$(<"$backup_key_file")"
    export NIGHTSHIFT_BACKUP_KEY
    _ns_say "backups: $NIGHTSHIFT_BACKUP_DIR, encrypted to the development key in $backup_key_file"
fi

if [[ -z ${NIGHTSHIFT_SMTP_URL:-} ]]; then
    # E-mails go to a local sink that keeps each message as JSON: nothing leaves the machine.
    ensure_smtp_python
    mail_dir="$NS_STATE_DIR/mail"
    smtp_port="$(_ns_free_port 1025)"
    "$NIGHTSHIFT_SMTP_PYTHON" tests/it/support/smtp_sink.py "$smtp_port" "$mail_dir" >/dev/null 2>&1 &
    sink_pid=$!
    trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
    export NIGHTSHIFT_SMTP_URL="smtp://127.0.0.1:$smtp_port"
    _ns_say "e-mails go to a local SMTP sink on port $smtp_port; each one lands in $mail_dir as JSON"
fi

if [[ -z ${NIGHTSHIFT_OPS_ADDR:-} ]]; then
    # Metrics live on an internal address, never on the API's port.
    export NIGHTSHIFT_OPS_ADDR="127.0.0.1:$(_ns_free_port 9090)"
fi

bin="${CARGO_TARGET_DIR:-$NS_ROOT/target}/debug/nightshift"
_ns_say "starting $bin all --demo (Ctrl-C stops it; Redis/PostgreSQL keep running)"
# In the background, so the set-up can be checked once the platform answers; the trap stops
# the platform and the SMTP sink together.
"$bin" all --demo "$@" &
platform=$!
trap 'kill "$platform" 2>/dev/null; kill "${sink_pid:-}" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
api_port="${NIGHTSHIFT_API_ADDR##*:}"
for _ in $(seq 1 300); do
    if _ns_port_in_use "$api_port" || ! kill -0 "$platform" 2>/dev/null; then break; fi
    sleep 0.2
done
if kill -0 "$platform" 2>/dev/null; then
    sleep 1 # the demo data and the printed token come first
    _ns_say "checking the set-up (nightshift doctor)"
    "$bin" doctor || _ns_say "nightshift doctor found a problem (FAIL above); the platform runs anyway"
fi
wait "$platform"
