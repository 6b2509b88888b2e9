#!/bin/sh
# pg_migrate.sh BOUNCEPIPE - `bouncepipe migrate` round trip of a store of 100,000 events.
#
# A PowerMTA accounting file of 100,000 records (bounces, transient failures, deliveries,
# over 60 days, 20,000 recipients: suppressions, soft-bounce escalations and resets) is read
# into an SQLite store, operators remove and import addresses, and then:
#   SQLite -> PostgreSQL   the suppression list (lifted rows too) and every statistic match,
#                          and PostgreSQL holds as many ledger rows;
#   the same again         nothing is added (every unit and operator row is already there);
#   PostgreSQL -> SQLite   the copy of the copy matches the original;
#   two hosts -> one       the SQLite stores of two hosts that saw overlapping records merge
#                          into one PostgreSQL store equal to one store of all the records;
#   two channels           300 failures reported by accounting record and DSN in two spellings
#                          keep their list, statistics and pairs SQLite -> PostgreSQL -> SQLite;
#   memory                 migrate reads a page at a time: its peak RSS copying 100,000 events
#                          is within 8 MB of copying 2,000 (at 269d0b5 it held the whole
#                          ledger: 76 MB against 18 MB now).
set -eu
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
TESTS=$(cd "$(dirname "$0")" && pwd)
N=${BP_MIGRATE_EVENTS:-100000}
. "$(dirname "$0")/pg_lib.sh"
pg_start
T=$PG_DIR/migrate
mkdir -p "$T"
cd "$T"

python3 - "$N" >acct.csv <<'PY'
import random, sys
n = int(sys.argv[1])
random.seed(9)
cats = [("bad-mailbox", "5.1.1", "550 5.1.1 user unknown"), ("inactive-mailbox", "5.2.1", "550 5.2.1 mailbox disabled"),
        ("quota-issues", "4.2.2", "452 4.2.2 mailbox full"), ("policy-related", "5.7.1", "554 5.7.1 rejected by policy"),
        ("spam-related", "5.7.1", "550 5.7.1 message looks like spam"), ("no-answer-from-host", "4.4.1", "421 4.4.1 timeout"),
        ("bad-domain", "5.1.2", "550 5.1.2 host unknown"), ("message-expired", "4.4.7", "message expired")]
doms = ["example.com", "example.net", "example.org", "example.jp", "mail.example.com"]
print("type,timeLogged,orig,rcpt,dsnStatus,dsnDiag,bounceCat,jobId")
t0 = 1790000000
for i in range(n):
    a = random.randrange(n // 5)
    rcpt = "user%d@%s" % (a, doms[a % len(doms)])
    t = t0 + (i * 60 * 86400) // n + random.randrange(3600)
    r = random.random()
    if r < 0.15:
        print("d,%d,bounces@bounces.example.com,%s,2.0.0,smtp;250 ok,,job-%d" % (t, rcpt, i % 50))
        continue
    c = random.choice(cats)
    print('%s,%d,bounces@bounces.example.com,%s,%s,"smtp;%s",%s,job-%d'
          % ("t" if r < 0.3 else "b", t, rcpt, c[1], c[2], c[0], i % 50))
PY
"$BIN" acct --db a.db --record-deliveries --transient --quiet --batch 5000 acct.csv >/dev/null
# operators: lift 200 suppressions, import 300 addresses (100 of them already suppressed)
"$BIN" export --db a.db --format plain >suppressed.txt
head -n 200 suppressed.txt >lifted.txt
# shellcheck disable=SC2046 # one address per word, on purpose
"$BIN" remove --db a.db --reason "customer asked" $(cat lifted.txt) >/dev/null
{
    tail -n 100 suppressed.txt
    seq 1 200 | sed 's/^/legacy/; s/$/@example.org/'
} >import.txt
"$BIN" import --db a.db --reason "old list" import.txt >/dev/null

peak_rss() { # OUT CMD...: run CMD with its output in OUT; print its peak RSS in KiB
    python3 -c 'import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    rc = subprocess.run(sys.argv[2:], stdout=out).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$@"
}
count_rows() { # FILE.db: ledger rows of an SQLite store
    python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from ledger").fetchone()[0])' "$1"
}
snapshot() { # STORE OUT: what must survive a migration
    "$BIN" export --db "$1" --all --format csv >"$2.list"
    "$BIN" stats --db "$1" --format json >"$2.stats"
}
same() { # A B WHAT
    cmp -s "$1.list" "$2.list" && cmp -s "$1.stats" "$2.stats" || {
        echo "$3: the stores differ" >&2
        diff "$1.list" "$2.list" | head -20 >&2 || true
        diff "$1.stats" "$2.stats" | head -20 >&2 || true
        exit 1
    }
}

events=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["type"].values()))' /dev/stdin <<EOF2
$("$BIN" stats --db a.db --format json)
EOF2
)
[ "$events" = "$N" ] || {
    echo "the SQLite store has $events events, want $N" >&2
    exit 1
}
rows_a=$(count_rows a.db)
snapshot a.db a

# SQLite -> PostgreSQL (over TCP on loopback; the password comes from PGPASSFILE)
start=$(date +%s)
rss_big=$(peak_rss first.out "$BIN" migrate --from a.db --to "$PG_TCP_URL")
cat first.out
grep -q "units: $N new, 0 already there" first.out || {
    echo "first migration did not record every unit" >&2
    exit 1
}
snapshot "$PG_TCP_URL" p
same a p "SQLite -> PostgreSQL"
rows_p=$(pg_sql "SELECT count(*) FROM ledger")
[ "$rows_p" = "$rows_a" ] || {
    echo "PostgreSQL ledger has $rows_p rows, SQLite $rows_a" >&2
    exit 1
}
echo "pg_migrate: $N events, $rows_a ledger rows copied to PostgreSQL in $(($(date +%s) - start)) s"

# the same migration again: nothing changes
"$BIN" migrate --from a.db --to "$PG_TCP_URL" >again.out
cat again.out
grep -q "units: 0 new, $N already there, 0 upgraded; operator and delivery rows: 0 copied" again.out || {
    echo "re-running the migration changed the target" >&2
    exit 1
}
snapshot "$PG_TCP_URL" p2
same a p2 "re-run"
[ "$(pg_sql "SELECT count(*) FROM ledger")" = "$rows_a" ] || {
    echo "re-running the migration added ledger rows" >&2
    exit 1
}

# PostgreSQL -> SQLite: the copy of the copy is the original
"$BIN" migrate --from "$PG_SOCKET_URL" --to b.db >back.out
cat back.out
snapshot b.db b
same a b "PostgreSQL -> SQLite"
[ "$(count_rows b.db)" = "$rows_a" ] || {
    echo "round trip: $(count_rows b.db) ledger rows, want $rows_a" >&2
    exit 1
}
echo "pg_migrate: round trip SQLite -> PostgreSQL -> SQLite of $N events: list, stats and ledger size identical"

# Two hosts' stores, with 1,000 records in common, merge into one PostgreSQL store that equals a
# store of the 3,000 distinct records: shared records are counted once.
head -n 1 acct.csv >header.csv
{ cat header.csv; sed -n '2,2001p' acct.csv; } >host1.csv
{ cat header.csv; sed -n '1002,3001p' acct.csv; } >host2.csv
{ cat header.csv; sed -n '2,3001p' acct.csv; } >union.csv
for f in host1 host2 union; do
    "$BIN" acct --db $f.db --record-deliveries --transient --quiet $f.csv >/dev/null
done
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
rss_small=$(peak_rss merge1.out "$BIN" migrate --from host1.db --to "$PG_TCP_URL")
"$BIN" migrate --from host2.db --to "$PG_TCP_URL" >merge2.out
cat merge2.out
grep -q "units: 1000 new, 1000 already there" merge2.out || {
    echo "merging the second host's store: want 1000 new and 1000 already there" >&2
    exit 1
}
snapshot union.db u
snapshot "$PG_TCP_URL" m
same u m "two hosts merged"
echo "pg_migrate: two hosts' stores merged, shared records counted once"
# Identity and two channels carried: a store where PowerMTA reported 300 failures twice (an
# accounting record in the sender's spelling, its DSN in lower case, either first) copies to
# PostgreSQL and back with the same list, statistics and pairs (the target pairs as it replays).
python3 - "$TESTS" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
sys.dont_write_bytecode = True
import store_channels as sc
acct = [open("chan-before.csv", "w"), open("chan-after.csv", "w")]
with open("chan-dsn.mbox", "wb") as mbox:
    for a in acct:
        a.write(sc.ACCT_HEADER)
    for n in range(300):
        rcpt = "Chan.User%d@Example.com" % (n % 120)
        t = sc.BASE + (n // 120) * sc.DAY + n * 60
        status, code, text = ("5.1.1", "550", "User unknown") if n % 3 == 0 else ("4.2.2", "452", "Mailbox full")
        acct[n % 2].write(sc.acct_line(rcpt, t, status, code, text, "env-%d" % n, "job-1"))
        mbox.write(b"From MAILER-DAEMON Sat Nov 21 00:00:00 2026\n")
        mbox.write(sc.pmta_dsn(n, rcpt, t + n % 5, status, code, text, "env-%d" % n) + b"\n")
for a in acct:
    a.close()
PY
# half the accounting records arrive before their DSNs, half after
"$BIN" acct --db c.db --quiet chan-before.csv >/dev/null
"$BIN" replay --db c.db --format text chan-dsn.mbox >/dev/null
"$BIN" acct --db c.db --quiet chan-after.csv >/dev/null
pairs() { # STORE: second reports in it
    if [ -f "$1" ]; then
        python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from ledger where paired_with > 0").fetchone()[0])' "$1"
    else
        pg_sql "SELECT count(*) FROM ledger WHERE paired_with > 0"
    fi
}
snapshot c.db c
# each failure counts once (300 bounces, 300 second reports); the 40 addresses with a hard
# bounce are listed once each in their first spelling: 20 the accounting record's, 20 the DSN's
bounces=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["type"].get("bounce"))' c.stats)
listed=$(tail -n +2 c.list | cut -d, -f1 | tr '[:upper:]' '[:lower:]' | sort -u | wc -l)
[ "$(pairs c.db)" = 300 ] && [ "$bounces" = 300 ] && [ "$listed" = 40 ] &&
    [ "$(tail -n +2 c.list | grep -c '^Chan\.User')" = 20 ] || {
    echo "two channels: $(pairs c.db) second reports, $bounces bounces, $listed addresses in the SQLite store; want 300, 300, 40" >&2
    exit 1
}
pg_sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
"$BIN" migrate --from c.db --to "$PG_TCP_URL" >/dev/null
snapshot "$PG_TCP_URL" cp
same c cp "two channels and spellings, SQLite -> PostgreSQL"
[ "$(pairs "$PG_TCP_URL")" = 300 ] || {
    echo "two channels: $(pairs "$PG_TCP_URL") second reports in PostgreSQL, want 300" >&2
    exit 1
}
"$BIN" migrate --from "$PG_SOCKET_URL" --to d.db >/dev/null
snapshot d.db d
same c d "two channels and spellings, PostgreSQL -> SQLite"
[ "$(pairs d.db)" = 300 ] || {
    echo "two channels: $(pairs d.db) second reports after the round trip, want 300" >&2
    exit 1
}
echo "pg_migrate: 300 failures reported by both channels in two spellings: list, stats and pairs carried both ways"
echo "pg_migrate: peak RSS $rss_big KiB copying $N events, $rss_small KiB copying 2,000"
if [ "$N" -ge 100000 ] && [ "$rss_big" -gt $((rss_small + 8192)) ]; then
    echo "migrate's memory grows with the store: $rss_big KiB for $N events, $rss_small KiB for 2,000" >&2
    exit 1
fi
