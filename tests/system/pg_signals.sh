#!/bin/sh
# pg_signals.sh PG_SIGNALS_TEST BOUNCEPIPE - the signal counts and alerts on PostgreSQL: the
# store cases of tests/unit/test_signals.c (built as pg_signals_test) against a private cluster
# (tests/system/pg_lib.sh), then `bouncepipe signals` on a postgresql:// store the same messages were
# replayed into as into an SQLite one: both give the same JSON.
set -eu
TEST=$1
BIN=$2
. "$(dirname "$0")/pg_lib.sh"
pg_start

BOUNCEPIPE_TEST_DB_URL=$PG_SOCKET_URL CMOCKA_MESSAGE_OUTPUT=stdout "$TEST"

pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
work=$(mktemp -d /tmp/bp-pg-signals-XXXXXX)
trap 'rm -rf "$work"; pg_stop' EXIT
"$BIN" replay --db "$PG_TCP_URL" fixtures/signals/*.eml >/dev/null 2>&1
"$BIN" replay --db "$work/s.db" fixtures/signals/*.eml >/dev/null 2>&1
"$BIN" signals --db "$PG_TCP_URL" --since 2000-01-01 --now 2030-01-01 --format json >"$work/pg"
"$BIN" signals --db "$work/s.db" --since 2000-01-01 --now 2030-01-01 --format json >"$work/sqlite"
if ! cmp -s "$work/pg" "$work/sqlite"; then
    echo "signals on PostgreSQL and on SQLite differ:" >&2
    diff "$work/pg" "$work/sqlite" >&2 || true
    exit 1
fi
grep -q '"named":{"spamhaus-zen"' "$work/sqlite" || {
    echo "signals printed no groups" >&2
    exit 1
}
echo "pg_signals: ok"
