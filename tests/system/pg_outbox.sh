#!/bin/sh
# pg_outbox.sh TEST_WEBHOOK TEST_GROUPED BOUNCEPIPE - issue 16 stage 2 on PostgreSQL, against
# a private cluster (tests/system/pg_lib.sh):
#   - test_webhook.c's outbox cases on the store (the same the in-memory reference and SQLite
#     pass), claims by several processes at once, the core's hand-over;
#   - test_grouped.c's report counts;
#   - the HTML report of the bundled fixtures replayed into PostgreSQL is the report of the
#     same replayed into SQLite (the grouped queries agree across backends);
#   - migrate carries the outbox's pending and dead rows, keys and attempts kept, SQLite ->
#     PostgreSQL;
#   - the fault-injection test of tests/system/webhook_server.py with two deliver processes at once
#     (and one of them SIGKILLed mid-batch): nothing lost, signed, stable keys, and no event
#     ever sent by both at the same time.
set -eu
TEST_WEBHOOK=$1
TEST_GROUPED=$2
BIN=$3
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$(dirname "$HERE")")
. "$HERE/pg_lib.sh"
pg_start
export CMOCKA_MESSAGE_OUTPUT=stdout

BOUNCEPIPE_TEST_DB_URL=$PG_SOCKET_URL "$TEST_WEBHOOK"
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
BOUNCEPIPE_TEST_DB_URL=$PG_SOCKET_URL "$TEST_GROUPED"

# The report: the same from both backends.
W=$PG_DIR/outbox-test
mkdir -p "$W"
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
FIXTURES=$(find "$ROOT/fixtures" -name '*.eml' -not -path '*/broken/*' | sort)
# shellcheck disable=SC2086 # one argument per fixture
"$BIN" replay --db "$PG_TCP_URL" $FIXTURES >/dev/null 2>&1 || [ $? = 1 ]
# shellcheck disable=SC2086
"$BIN" replay --db "$W/r.db" $FIXTURES >/dev/null 2>&1 || [ $? = 1 ]
# one quarantine for both (a PostgreSQL store has none by default; the SQLite store's is beside it)
mkdir -p "$W/quarantine"
printf '[quarantine]\ndirectory = %s\n' "$W/quarantine" >"$W/report.conf"
for since in "" 2024-01-01; do
    set -- --title "same report" --config "$W/report.conf"
    [ -z "$since" ] || set -- "$@" --since "$since"
    "$BIN" report --db "$PG_TCP_URL" --html "$W/pg.html" "$@"
    "$BIN" report --db "$W/r.db" --html "$W/sqlite.html" "$@"
    # what differs by design: the time it was made, and the store's name
    strip='s/generated [^<]*//; s#postgresql://[^<" ]*##g; s#'"$W"'/r.db##g'
    sed "$strip" "$W/pg.html" >"$W/pg.strip"
    sed "$strip" "$W/sqlite.html" >"$W/sqlite.strip"
    if ! cmp -s "$W/pg.strip" "$W/sqlite.strip"; then
        diff "$W/pg.strip" "$W/sqlite.strip" | head -20 >&2
        echo "pg_outbox: the report from PostgreSQL differs from SQLite's${since:+ (--since $since)}" >&2
        exit 1
    fi
done
grep -q 'data-chart="events-per-day"' "$W/pg.html" || {
    echo "pg_outbox: the report from PostgreSQL has no daily chart" >&2
    exit 1
}

# migrate carries the outbox: an SQLite store with two endpoints' rows, some delivered,
# one dead, the rest pending with attempts, copied into PostgreSQL
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
python3 "$HERE/webhook_cli.py" --migrate-pg "$BIN" "$PG_TCP_URL" "$PG_BIN/psql"

# two deliver processes at once on PostgreSQL, with faults
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
python3 "$HERE/webhook_server.py" --deliver "$BIN" --pg "$PG_TCP_URL" --psql "$PG_BIN/psql" --delivers 2
echo "pg_outbox: ok"
