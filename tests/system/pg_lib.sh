# pg_lib.sh - sourced by tests/pg_*.sh: a private PostgreSQL cluster for one test script.
#
# pg_start creates a cluster in a temporary directory (initdb), starts it on 127.0.0.1 and a
# Unix socket in that directory on a free port (pg_ctl), creates the database "bouncepipe"
# and exports the libpq environment the store and psql read:
#   PGHOST (the socket directory; PG_TCP_URL uses 127.0.0.1), PGPORT, PGUSER, PGDATABASE,
#   PGPASSFILE (the password lives in that file, mode 0600, never on a command line)
# pg_stop (installed as the EXIT trap) stops the server and removes the directory; a watcher
# does the same if the script is killed without running its traps.
# The server refuses to run as root: as root, initdb and postgres run as the "postgres" user.
# Without the server binaries (Debian's postgresql package) the script exits 77 (skipped).

pg_skip() {
    echo "SKIPPED: $*" >&2
    echo "*** PostgreSQL tests not run: install postgresql (make deps) ***" >&2
    exit 77
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
        if [ -f "$PG_DIR/data/postmaster.pid" ]; then
            $PG_RUN "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$PG_DIR"
    fi
}

pg_start() {
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] ||
        pg_skip "no PostgreSQL server under /usr/lib/postgresql/*/bin"
    PG_RUN=""
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || pg_skip "running as root and there is no 'postgres' user"
        PG_RUN="runuser -u postgres --"
    fi
    PG_DIR=$(mktemp -d /tmp/bp-pg-XXXXXX)
    trap pg_stop EXIT
    trap 'exit 1' INT TERM
    chmod 755 "$PG_DIR"
    [ -z "$PG_RUN" ] || chown postgres "$PG_DIR"
    # a password: in a file for initdb, and in a pgpass file for libpq
    PG_SECRET=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    umask 077
    printf '%s\n' "$PG_SECRET" >"$PG_DIR/pwfile"
    umask 022
    [ -z "$PG_RUN" ] || chown postgres "$PG_DIR/pwfile"
    $PG_RUN "$PG_BIN/initdb" -D "$PG_DIR/data" -U bp --pwfile="$PG_DIR/pwfile" -A scram-sha-256 \
        -E UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log" >&2
        echo "initdb failed" >&2
        exit 1
    }
    rm -f "$PG_DIR/pwfile"
    PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    # fsync off: a test cluster, thrown away; durability is PostgreSQL's, not under test here
    $PG_RUN "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-k $PG_DIR -h 127.0.0.1 -p $PGPORT -c fsync=off -c max_connections=${PG_MAX_CONNECTIONS:-100}" \
        start >/dev/null || {
        cat "$PG_DIR/server.log" >&2
        echo "pg_ctl start failed" >&2
        exit 1
    }
    # If this script is killed without running its traps (a test timeout), a watcher in its
    # own session (outside the process group that gets killed) stops the server anyway.
    PG_OWNER=$$ PG_DIR=$PG_DIR PG_RUN=$PG_RUN PG_BIN=$PG_BIN setsid sh -c '
        while kill -0 "$PG_OWNER" 2>/dev/null; do sleep 2; done
        if [ -f "$PG_DIR/data/postmaster.pid" ]; then
            $PG_RUN "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop
            rm -rf "$PG_DIR"
        fi' </dev/null >/dev/null 2>&1 &
    PGPASSFILE=$PG_DIR/pgpass
    umask 077
    printf '%s:%s:*:bp:%s\n' "$PG_DIR" "$PGPORT" "$PG_SECRET" >"$PGPASSFILE"
    printf '127.0.0.1:%s:*:bp:%s\n' "$PGPORT" "$PG_SECRET" >>"$PGPASSFILE"
    umask 022
    PGHOST=$PG_DIR
    PGUSER=bp
    PGDATABASE=bouncepipe
    export PGHOST PGPORT PGUSER PGPASSFILE PGDATABASE
    "$PG_BIN/createdb" -h "$PGHOST" -p "$PGPORT" -U bp bouncepipe || {
        echo "createdb failed" >&2
        exit 1
    }
    # the same database over TCP on loopback, as other hosts would reach it
    PG_TCP_URL="postgresql://bp@127.0.0.1:$PGPORT/bouncepipe"
    PG_SOCKET_URL="postgresql:///bouncepipe"
}

# pg_sql SQL: run constant SQL in the test database, print rows unaligned.
pg_sql() {
    PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -c "$1"
}
