#!/bin/sh
# pg_store.sh PG_STORE_TEST BOUNCEPIPE - the store's test suite (tests/unit/pg_store_test.c: the
# backend-neutral cases of test_store.c plus PostgreSQL's own) against a private cluster,
# the command line on a postgresql:// store, and the growth bound: the hostile messages of
# tests/system/store_safety.py (1,000 recipients with 100 KB Message-ID, Reporting-MTA, Envelope-Id,
# long diagnostics) each grow the PostgreSQL store by at most 10 times their size plus 1 MB;
# and tests/system/store_channels.py (issue 14: two channels, identity, the migration) on PostgreSQL.
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

# Growth: what one message can add (docs/store.md, "Bounds"), measured as the total size of
# the store's tables with their indexes and TOAST, before and after each message.
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
python3 - "$BIN" "$PG_TCP_URL" "$(dirname "$0")" "$PG_BIN/psql" <<'PY'
import subprocess, sys
binary, url, tests, psql = sys.argv[1:5]
sys.dont_write_bytecode = True
sys.path.insert(0, tests)
from store_safety import hostile

def sql(q):
    return subprocess.run([psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", q], check=True,
                          capture_output=True, text=True).stdout.strip()

def store_bytes():
    return int(sql("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE n.nspname = current_schema() AND c.relkind = 'r'"))

def record(msg, label):
    p = subprocess.run([binary, "replay", "--db", url, "--format", "text", "-"], input=msg,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"pg_store: {label}: replay exited {p.returncode}: {p.stderr.decode()[-300:]}")

record(hostile(0, 1), "a first message")  # the schema, so that it is not counted
cases = [
    ("1,000 recipients and a 100 KB Message-ID", hostile(1, 1000, msgid_len=100000)),
    ("1,000 recipients, 100 KB Reporting-MTA and Envelope-Id", hostile(2, 1000, mta_len=100000, envid_len=100000)),
    ("1,000 recipients, long diagnostics", hostile(3, 1000, diag_len=2000)),
    ("all at once", hostile(4, 1000, msgid_len=100000, mta_len=100000, envid_len=1000, diag_len=1000)),
]
for label, msg in cases:
    before = store_bytes()
    record(msg, label)
    grown = store_bytes() - before
    bound = 10 * len(msg) + 1024 * 1024
    print(f"pg_store: {label}: message {len(msg)} bytes, store grew {grown} bytes (bound {bound})")
    if grown > bound:
        sys.exit(f"pg_store: {label}: the store grew by more than 10x the message plus 1 MB")
n = int(sql("SELECT count(*) FROM suppressions WHERE address LIKE 'user1x%' AND lifted = 0"))
if n != 1000:
    sys.exit(f"pg_store: the recipients of a capped message are still suppressed: got {n}, want 1000")
PY
# Issue 14 on PostgreSQL: an accounting stream and pipes reporting each failure twice, in other
# spellings; lookup, remove, import, export in any case; a version 3 schema migrated, also when
# its writers are killed part way (tests/system/store_channels.py, which runs the same on SQLite).
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
BP_CHANNELS_MIGRATE_ADDRESSES=${BP_CHANNELS_MIGRATE_ADDRESSES:-2000} \
    python3 "$(dirname "$0")/store_channels.py" "$BIN" "$PG_TCP_URL" "$PGPASSFILE" "$PG_BIN/psql"
echo "pg_store: ok"
