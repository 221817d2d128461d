#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL server on 127.0.0.1 for the test suite and print the
# URL to export as GATEWAY_TEST_POSTGRES_URL. Messages go to stderr; stdout is only the URL.
#
#   export GATEWAY_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)
#
# Idempotent: a server already answering on the port with our role and password is reused; a
# stopped one is started again from its data directory. Installs PostgreSQL with apt-get only
# when no `initdb` can be found. Every wait is bounded. Nothing listens beyond loopback.
#
# Settings (environment): GATEWAY_PG_PORT (55432), GATEWAY_PG_DIR (/tmp/gateway-ci-postgres),
# GATEWAY_PG_USER / GATEWAY_PG_PASSWORD (gateway / gateway), GATEWAY_PG_WAIT_SECONDS (30).
# The cluster trades durability for speed (fsync off): it holds test data only.
set -euo pipefail

port=${GATEWAY_PG_PORT:-55432}
dir=${GATEWAY_PG_DIR:-/tmp/gateway-ci-postgres}
user=${GATEWAY_PG_USER:-gateway}
password=${GATEWAY_PG_PASSWORD:-gateway}
wait_seconds=${GATEWAY_PG_WAIT_SECONDS:-30}
data="$dir/data"
url="postgresql+asyncpg://$user:$password@127.0.0.1:$port/postgres"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    # Debian keeps the server binaries out of PATH; pick the newest installed major version.
    local candidate
    if command -v initdb >/dev/null 2>&1; then
        # Resolve symlinks: psql and pg_isready live next to the real initdb.
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
        echo "$candidate"
        return 0
    fi
    return 1
}

# Run a command as the owner of the cluster: initdb and postgres refuse to run as root.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

answers() {
    PGPASSWORD=$password PGCONNECT_TIMEOUT=3 "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$user" \
        -d postgres -tAc 'SELECT 1' >/dev/null 2>&1
}

if ! bindir=$(find_bindir); then
    [ "$(id -u)" = 0 ] || { log "PostgreSQL is not installed and we are not root"; exit 1; }
    log "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >&2
    timeout 600 apt-get install -y -qq postgresql >&2
    bindir=$(find_bindir) || { log "apt-get ran but no initdb was found"; exit 1; }
fi

if answers; then
    log "reusing the server on 127.0.0.1:$port"
    echo "$url"
    exit 0
fi

if "$bindir/pg_isready" -h 127.0.0.1 -p "$port" -t 3 >/dev/null 2>&1; then
    log "something on 127.0.0.1:$port answers, but not to $user/$password; set GATEWAY_PG_PORT"
    exit 1
fi

if [ ! -s "$data/PG_VERSION" ]; then
    log "creating a cluster in $data"
    mkdir -p "$dir"
    rm -rf "$data"
    pwfile="$dir/pwfile"
    printf '%s\n' "$password" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres:postgres "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$bindir/initdb" -D "$data" -U "$user" --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-locale >&2
    rm -f "$pwfile"
fi

log "starting the server on 127.0.0.1:$port"
# A server left behind by a killed run leaves a stale pid file; pg_ctl copes with that.
as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t "$wait_seconds" start -o "\
-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
-c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2 || {
    log "the server did not start; its log:"
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
}

deadline=$((SECONDS + wait_seconds))
until answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "the server did not accept $user within ${wait_seconds}s"
        exit 1
    fi
    sleep 0.2
done
log "ready"
echo "$url"
