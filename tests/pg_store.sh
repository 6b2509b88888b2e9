#!/bin/sh
# pg_store.sh PG_STORE_TEST BOUNCEPIPE - the store's test suite (tests/pg_store_test.c: the
# backend-neutral cases of test_store.c plus PostgreSQL's own) against a private cluster,
# and the command line on a postgresql:// store.
set -eu
TEST=$1
BIN=$2
. "$(dirname "$0")/pg_lib.sh"
pg_start

BOUNCEPIPE_TEST_DB_URL=$PG_SOCKET_URL \
    BOUNCEPIPE_TEST_PG_RESTART="$PG_RUN $PG_BIN/pg_ctl -D $PG_DIR/data -m fast -w restart >/dev/null" \
    CMOCKA_MESSAGE_OUTPUT=stdout "$TEST"

# The commands on a postgresql:// store, over TCP with the password from PGPASSFILE.
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
printf 'a@example.com\nb@example.net\n' | "$BIN" import --db "$PG_TCP_URL" --reason legacy - >/dev/null
"$BIN" lookup --db "$PG_TCP_URL" a@example.com | grep -q import || {
    echo "lookup after import on PostgreSQL failed" >&2
    exit 1
}
"$BIN" remove --db "$PG_TCP_URL" --reason "asked" a@example.com >/dev/null
got=$("$BIN" export --db "$PG_TCP_URL" --format plain)
[ "$got" = "b@example.net" ] || {
    echo "export: got '$got', want b@example.net" >&2
    exit 1
}
n=$(pg_sql "SELECT count(*) FROM ledger")
[ "$n" = 3 ] || {
    echo "ledger rows: got $n, want 3 (two imports, one removal)" >&2
    exit 1
}
# a server that is not there: the store says so, and the command fails
if "$BIN" lookup --db "postgresql://127.0.0.1:1/nothing?connect_timeout=2" a@example.com >/dev/null 2>&1; then
    echo "lookup on an unreachable server succeeded" >&2
    exit 1
fi
echo "pg_store: ok"
