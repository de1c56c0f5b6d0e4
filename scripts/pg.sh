#!/usr/bin/env bash
# pg.sh - a private PostgreSQL cluster for development and tests, or the one in DATABASE_URL.
#
#   scripts/pg.sh start | stop | status | url | newdb NAME | dropdb NAME
#
# With DATABASE_URL set, that database is used as is: `start` checks that it
# answers, `url` prints it, `newdb` creates a sibling database on the same
# server.  Otherwise the cluster lives under var/pg (data in var/pg/data, its
# Unix socket in the data folder, TCP on 127.0.0.1 only) and holds the
# database `precursor`.
#
# Authentication is scram-sha-256 with a password generated at initdb and
# kept in var/pg/password (mode 0600): even on loopback, other local users of
# the machine should not get a superuser login for free.
#
# initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user, and every parent folder of its data must be traversable by
# that user; when it is not (a checkout under /root, say), the cluster goes to
# /var/tmp/precursor-<hash of the checkout path> and var/pg links to it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR="$ROOT/var"
HOME_DIR="$VAR/pg"            # the cluster's home: data/, port, password, server.log
DEFAULT_PORT=55433
DBNAME=precursor

die() { echo "pg: $*" >&2; exit 1; }
say() { echo "pg: $*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

pgbin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    command -v "$1" 2>/dev/null || die "$1 not found (install postgresql: scripts/deps.sh)"
}

# Run a server-side tool as the cluster's owner.
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

valid_name() { [[ "$1" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; }

# ---- DATABASE_URL given -------------------------------------------------

# The same server, another database: replace dbname in a URI or a key=value string.
url_with_db() {
    python3 - "$1" "$2" <<'EOF'
import sys, urllib.parse as u
url, db = sys.argv[1], sys.argv[2]
if url.startswith(("postgres://", "postgresql://")):
    p = u.urlsplit(url)
    print(u.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment)))
else:
    # libpq keeps the last value of a repeated keyword; drop the old one anyway.
    import shlex
    parts = [t for t in shlex.split(url) if not t.startswith("dbname=")]
    print(" ".join(shlex.quote(t) for t in parts + ["dbname=" + db]))
EOF
}

# ---- private cluster ----------------------------------------------------

# Pick the cluster's home.  As root, postgres must be able to reach it.
resolve_home() {
    if [ -L "$HOME_DIR" ] || [ -d "$HOME_DIR" ]; then
        return 0
    fi
    mkdir -p "$VAR"
    local target="$HOME_DIR" why=""
    # The socket path is limited to 107 bytes: a deep checkout needs the fallback too.
    if [ ${#HOME_DIR} -gt 70 ]; then
        why="the checkout path is too long for a Unix socket path"
    elif is_root && ! runuser -u postgres -- test -x "$VAR"; then
        why="the postgres user cannot traverse the folders above $VAR"
    fi
    if [ -n "$why" ]; then
        local hash
        hash=$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
        target="/var/tmp/precursor-$hash"
        mkdir -p "$target"
        chmod 0700 "$target"
        ln -sfn "$target" "$HOME_DIR"
        say "$why: cluster data in $target (var/pg links to it)"
    else
        mkdir -p "$HOME_DIR"
        chmod 0700 "$HOME_DIR"
    fi
    if is_root; then
        chown postgres:postgres "$target"
    fi
}

# The postgres user may not be able to follow var/pg itself: hand it the real path.
real_home() {
    if [ -e "$HOME_DIR" ]; then
        HOME_DIR=$(readlink -f "$HOME_DIR")
    fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

password() { cat "$HOME_DIR/password"; }
port() { cat "$HOME_DIR/port" 2>/dev/null || echo "${PGPORT:-$DEFAULT_PORT}"; }

private_url() {
    echo "host=127.0.0.1 port=$(port) user=postgres password=$(password) dbname=${1:-$DBNAME}"
}

# psql on URL with its password in the environment, not on the command line.
. "$(dirname "${BASH_SOURCE[0]}")/pgpass.sh"
psql_url() {
    local u=$1
    shift
    PGPASSWORD=$(pg_url_password "$u") "$(pgbin psql)" "$(pg_url_without_password "$u")" "$@"
}

psql_admin() {
    psql_url "$(private_url postgres)" -X -q -v ON_ERROR_STOP=1 "$@"
}

init_cluster() {
    [ -f "$HOME_DIR/data/PG_VERSION" ] && return 0
    say "creating a private cluster in var/pg"
    # The password reaches initdb through a file the owner can read, deleted after.
    local pw pwfile
    pw=$(openssl rand -hex 24)
    pwfile="$HOME_DIR/.pwfile"
    (umask 077; printf '%s\n' "$pw" > "$pwfile")
    is_root && chown postgres:postgres "$pwfile"
    rm -rf "$HOME_DIR/data"
    if ! as_owner "$(pgbin initdb)" -D "$HOME_DIR/data" -U postgres --auth=scram-sha-256 \
            --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >"$HOME_DIR/initdb.log" 2>&1; then
        rm -f "$pwfile"
        cat "$HOME_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    rm -f "$pwfile"
    (umask 077; printf '%s\n' "$pw" > "$HOME_DIR/password")
    # Loopback only; the socket's folder is the data folder (owner only).
    cat >>"$HOME_DIR/data/postgresql.conf" <<EOF

# precursor private cluster (scripts/pg.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '.'
fsync = off                 # a throwaway dev/test cluster: speed over durability
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
}

running() {
    [ -f "$HOME_DIR/data/PG_VERSION" ] || return 1
    as_owner "$(pgbin pg_ctl)" -D "$HOME_DIR/data" status >/dev/null 2>&1
}

# A postmaster.pid left by a crash whose pid now belongs to another process
# makes pg_ctl think the server runs; remove it when the pid is not postgres.
clear_stale_pid() {
    local f="$HOME_DIR/data/postmaster.pid" pid
    [ -f "$f" ] || return 0
    pid=$(head -n1 "$f")
    if [ -z "$pid" ] || ! [ -d "/proc/$pid" ] ||
       ! grep -q -E '^(postgres|postmaster)$' "/proc/$pid/comm" 2>/dev/null; then
        say "removing stale postmaster.pid (pid ${pid:-?} is not a running postgres)"
        rm -f "$f"
    fi
}

choose_port() {
    local p
    p=$(port)
    local tries=0
    while port_busy "$p"; do
        tries=$((tries + 1))
        [ $tries -gt 100 ] && die "no free port from $(port) on"
        p=$((p + 1))
    done
    printf '%s\n' "$p" > "$HOME_DIR/port"
}

ensure_db() {
    local name=$1
    if [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]; then
        psql_admin -c "CREATE DATABASE $name"
    fi
}

private_start() {
    resolve_home
    real_home
    init_cluster
    clear_stale_pid
    # Running and answering: nothing to do.  Running but not answering is a
    # server starting up or one that just died (its pid not yet reaped).
    local i
    for i in $(seq 1 20); do
        running || break
        if "$(pgbin pg_isready)" -q -h 127.0.0.1 -p "$(port)"; then
            ensure_db "$DBNAME"
            return 0
        fi
        sleep 0.5
    done
    running && die "PostgreSQL runs but does not answer on 127.0.0.1:$(port)"
    clear_stale_pid
    choose_port
    say "starting PostgreSQL on 127.0.0.1:$(port) (log: var/pg/server.log)"
    if is_root; then
        touch "$HOME_DIR/server.log" && chown postgres:postgres "$HOME_DIR/server.log"
    fi
    # After a crash the old backends may hold the socket lock a moment longer.
    local attempt
    for attempt in 1 2 3 4; do
        if as_owner "$(pgbin pg_ctl)" -D "$HOME_DIR/data" -l "$HOME_DIR/server.log" \
                -o "-p $(port)" -w -t 60 start >/dev/null 2>&1; then
            break
        fi
        if [ $attempt -eq 4 ]; then
            tail -n 20 "$HOME_DIR/server.log" >&2
            die "PostgreSQL did not start"
        fi
        sleep 2
        clear_stale_pid
    done
    ensure_db "$DBNAME"
}

private_stop() {
    [ -e "$HOME_DIR" ] || return 0
    if running; then
        as_owner "$(pgbin pg_ctl)" -D "$HOME_DIR/data" -m fast -w -t 60 stop >/dev/null
        say "stopped"
    fi
}

# ---- commands -----------------------------------------------------------

cmd=${1:-}
real_home
case "$cmd" in
start)
    if [ -n "${DATABASE_URL:-}" ]; then
        psql_url "$DATABASE_URL" -X -q -tA -c 'SELECT 1' >/dev/null ||
            die "DATABASE_URL does not answer"
    else
        private_start
    fi
    ;;
stop)
    [ -n "${DATABASE_URL:-}" ] || private_stop
    ;;
status)
    if [ -n "${DATABASE_URL:-}" ]; then
        if psql_url "$DATABASE_URL" -X -q -tA -c 'SELECT 1' >/dev/null 2>&1; then
            echo "DATABASE_URL answers"
        else
            echo "DATABASE_URL does not answer"; exit 3
        fi
    elif [ -e "$HOME_DIR" ] && running; then
        echo "running on 127.0.0.1:$(port)"
    else
        echo "stopped"; exit 3
    fi
    ;;
url)
    if [ -n "${DATABASE_URL:-}" ]; then
        echo "$DATABASE_URL"
    else
        [ -f "$HOME_DIR/password" ] || die "no private cluster yet: scripts/pg.sh start"
        private_url
    fi
    ;;
newdb|dropdb)
    name=${2:-}
    valid_name "$name" || die "usage: pg.sh $cmd NAME (lower case letters, digits, _)"
    if [ -n "${DATABASE_URL:-}" ]; then
        admin() { psql_url "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
        newurl=$(url_with_db "$DATABASE_URL" "$name")
    else
        running || die "the private cluster is not running: scripts/pg.sh start"
        admin() { psql_admin "$@"; }
        newurl=$(private_url "$name")
    fi
    admin -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" 2>/dev/null
    if [ "$cmd" = newdb ]; then
        admin -c "CREATE DATABASE $name"
        echo "$newurl"
    fi
    ;;
*)
    echo "usage: pg.sh start|stop|status|url|newdb NAME|dropdb NAME" >&2
    exit 2
    ;;
esac
