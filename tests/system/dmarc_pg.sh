#!/bin/sh
# dmarc_pg.sh BOUNCEPIPE - tests/system/dmarc_e2e.py against PostgreSQL too: the fixtures piped into a
# PostgreSQL store (stored once, refused ones quarantined, nothing suppressed, piped again:
# nothing added), and the month migrated SQLite -> PostgreSQL -> SQLite with the same view.
# A private cluster (tests/system/pg_lib.sh); exit 77 without the server.
set -eu
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
. "$(dirname "$0")/pg_lib.sh"
pg_start
# the pipe runs as nobody when we are root: its own copy of the password file
PASS=$PGPASSFILE
if [ "$(id -u)" = 0 ]; then
    PASS=$PG_DIR/pgpass.nobody
    cp "$PGPASSFILE" "$PASS"
    chown nobody "$PASS"
fi
PATH=$PG_BIN:$PATH BP_TEST_PG_URL=$PG_TCP_URL BP_TEST_PGPASS=$PASS python3 "$(dirname "$0")/dmarc_e2e.py" "$BIN" --pg
