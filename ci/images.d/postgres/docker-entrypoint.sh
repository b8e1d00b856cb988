#!/usr/bin/env bash
# Entrypoint compatible with the official postgres image for what test stacks rely on:
# POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default = user),
# POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_ARGS, PGDATA, *.sql/*.sh in
# /docker-entrypoint-initdb.d, and `postgres -c key=value ...` as the command.
set -euo pipefail

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift

: "${PGDATA:=/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
password="${POSTGRES_PASSWORD:-}"
method="${POSTGRES_HOST_AUTH_METHOD:-}"

run_as=()
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    run_as=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
as_postgres() { "${run_as[@]}" "$@"; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$password" ] && [ "$method" != trust ]; then
        cat >&2 <<'MSG'
error: database is uninitialized and superuser password is not specified.
  Set POSTGRES_PASSWORD to a non-empty value for the superuser, or set
  POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password.
MSG
        exit 1
    fi
    [ -n "$method" ] || method=scram-sha-256
    pwfile="$(mktemp)"
    printf '%s\n' "$password" >"$pwfile"
    chown postgres "$pwfile"
    pwargs=()
    [ -n "$password" ] && pwargs=(--pwfile="$pwfile")
    # --no-sync: a test fixture's data dies with its container; fsyncing it only costs time.
    # shellcheck disable=SC2086
    as_postgres initdb -D "$PGDATA" -U "$user" --no-sync --auth-local=trust \
        --auth-host="$method" --encoding=UTF8 --locale=C.UTF-8 "${pwargs[@]}" \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    {
        echo "listen_addresses = '*'"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
    } >>"$PGDATA/postgresql.conf"
    echo "host all all all $method" >>"$PGDATA/pg_hba.conf"

    initdb_scripts=(/docker-entrypoint-initdb.d/*)
    if [ "$db" != postgres ] || [ -e "${initdb_scripts[0]}" ]; then
        # Local-only server (no TCP) so nothing connects before initialisation is done.
        as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
        if [ "$db" != postgres ]; then
            as_postgres psql -v ON_ERROR_STOP=1 -q -U "$user" -d postgres \
                -c "CREATE DATABASE \"$db\"" >/dev/null
        fi
        for f in "${initdb_scripts[@]}"; do
            case "$f" in
                *.sql) as_postgres psql -v ON_ERROR_STOP=1 -q -U "$user" -d "$db" -f "$f" ;;
                *.sh) PGUSER="$user" PGDATABASE="$db" as_postgres bash "$f" ;;
                *) [ -e "$f" ] && echo "ignoring $f" ;;
            esac
        done
        as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
fi

# postgres treats SIGTERM as a "smart" shutdown that waits for every client to disconnect;
# containers are stopped with SIGTERM, so turn it into a fast shutdown (SIGINT).
# Started directly (not through a function, which would fork a subshell) so $! is the
# postmaster itself (setpriv execs it).
"${run_as[@]}" postgres -D "$PGDATA" "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' TERM INT
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid" && status=0 || status=$?
done
exit "${status:-0}"
