#!/usr/bin/env bash
# acct_cli.sh - `bouncepipe acct` against a real store: durability and idempotency.
#
#   1. a file read twice, and a copy of it with other column order and LF line ends, stores
#      each record once (the key is made of named values, not positions or bytes);
#   2. a live stream on stdin commits on an idle second: the records are in the database
#      while the process still runs; after a crash (SIGKILL) a restart that re-reads the whole
#      file copy adds only the records the crashed process never saw;
#   3. a database locked by another writer past the busy timeout: acct holds its batch,
#      reports the wait, retries, and stores everything once the lock is gone;
#   4. SIGTERM on a live stream commits what was read and exits 0;
#   5. a delivery resets the soft-bounce count (five soft bounces on five days suppress, a
#      delivery in between prevents it); --record-deliveries keeps a ledger row for it;
#   6. a database that refuses every record for good (not busy, not full) is not retried
#      for ever: acct stops with exit 1, from a file and from a live stream alike.
#
# Usage: tests/system/acct_cli.sh /path/to/bouncepipe   (run from the project directory)
set -euo pipefail
BIN=${1:?usage: acct_cli.sh /path/to/bouncepipe}
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 is needed"; exit 1; }
NAME=acct_cli
. "$(dirname "$0")/acct_lib.sh"
acct_setup
events() { sqlite3 "$1" "select count(*) from ledger where kind='event' and fingerprint like 'acct:%'"; }

FIX=fixtures/acct/pmta5-default-crlf.csv
[ -f "$FIX" ] || fail "run from the project directory ($FIX not found)"

# ---- 1. idempotent re-reads, whatever the layout ----------------------------------------
DB=$T/one.db
"$BIN" acct --quiet --db "$DB" "$FIX"
n1=$(events "$DB")
[ "$n1" = 4 ] || fail "expected 4 events from $FIX (b x4; d and t write none), got $n1"
"$BIN" acct --db "$DB" "$FIX" 2>"$T/err"
grep -q "stored 0 new, 4 already seen" "$T/err" || fail "second read stored again: $(cat "$T/err")"
# the same records with the other columns reversed, LF line ends, and an extra column
python3 - "$FIX" "$T/reordered.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
with open(sys.argv[2], "w", newline="") as out:
    w = csv.writer(out, lineterminator="\n")
    for i, r in enumerate(rows):
        # PowerMTA always writes the type first; the rest in another order, plus a column
        w.writerow([r[0]] + list(reversed(r[1:])) + (["queue"] if i == 0 else ["example.net/vmta1"]))
PY
"$BIN" acct --db "$DB" "$T/reordered.csv" 2>"$T/err"
grep -q "stored 0 new, 4 already seen" "$T/err" || fail "reordered copy stored again: $(cat "$T/err")"
[ "$(events "$DB")" = 4 ] || fail "ledger grew on re-reads"
[ "$(sqlite3 "$DB" "select mta_category from ledger where recipient='kijitora@example.jp'")" = bad-mailbox ] ||
    fail "PowerMTA's bounceCat not kept beside ours"
[ "$(sqlite3 "$DB" "select category from ledger where recipient='kijitora@example.jp'")" = spam-related ] ||
    fail "our category should decide (spam-related), not PowerMTA's"
[ "$(sqlite3 "$DB" "select evidence_time from ledger where recipient='jdoe@example.net'")" = 1795169704 ] ||
    fail "evidence time should be timeLogged"

# ---- 2. live stream: idle commit, crash, restart with the file copy ----------------------
DB=$T/two.db
mkfifo "$T/fifo"
"$BIN" acct --quiet --db "$DB" <"$T/fifo" &
pid=$!
pids="$pids $pid"
exec 3>"$T/fifo"
head -n 4 "$FIX" >&3 # header + d + 2 bounces, then silence
has_two() { [ "$(events "$DB" 2>/dev/null || echo 0)" = 2 ]; }
wait_for 10 has_two || fail "records were not committed on an idle second (have $(events "$DB"))"
kill -0 "$pid" || fail "acct exited early"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
exec 3>&-
"$BIN" acct --db "$DB" "$FIX" 2>"$T/err"
grep -q "stored 2 new, 2 already seen" "$T/err" || fail "restart after crash: $(cat "$T/err")"
[ "$(events "$DB")" = 4 ] || fail "restart double counted"

# ---- 3. database locked past the busy timeout: hold, retry, store -------------------------
DB=$T/three.db
printf '[store]\ndatabase = %s\nbusy_timeout_ms = 100\n' "$DB" >"$T/conf"
"$BIN" acct --quiet --config "$T/conf" /dev/null # create the database
python3 - "$DB" "$T/locked" <<'PY' &
import sqlite3, sys, time, pathlib
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
pathlib.Path(sys.argv[2]).touch()
time.sleep(3)
c.execute("ROLLBACK")
PY
pids="$pids $!"
wait_for 10 test -f "$T/locked" || fail "could not lock the database"
start=$(date +%s)
"$BIN" acct --config "$T/conf" "$FIX" 2>"$T/err" || fail "acct failed while the database was locked: $(cat "$T/err")"
took=$(($(date +%s) - start))
grep -q "database unavailable" "$T/err" || fail "the wait for the lock was not reported: $(cat "$T/err")"
[ "$took" -ge 2 ] || fail "acct did not wait for the lock (took ${took}s)"
[ "$(events "$DB")" = 4 ] || fail "records lost while the database was locked"

# ---- 4. SIGTERM on a live stream commits what was read ------------------------------------
DB=$T/four.db
rm -f "$T/fifo"
mkfifo "$T/fifo"
"$BIN" acct --quiet --batch 1000 --db "$DB" <"$T/fifo" &
pid=$!
pids="$pids $pid"
exec 3>"$T/fifo"
cat "$FIX" >&3
# until acct has taken every byte out of the pipe (FIONREAD on our write end, fd 3): a fixed
# pause lost the race on a loaded machine (the signal came before acct had read anything)
python3 -c '
import fcntl, struct, sys, termios, time
deadline = time.time() + 30
while struct.unpack("i", fcntl.ioctl(3, termios.FIONREAD, b"\0\0\0\0"))[0] > 0:
    if time.time() > deadline:
        sys.exit("acct did not read the stream")
    time.sleep(0.05)
' || fail "acct did not read the stream in 30 s"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
exec 3>&-
[ "$rc" = 0 ] || fail "acct exited $rc on SIGTERM"
[ "$(events "$DB")" = 4 ] || fail "SIGTERM lost records (have $(events "$DB"))"

# ---- 5. deliveries reset the soft-bounce count; --record-deliveries keeps a ledger row -----
# Five soft bounces (mailbox full) on five days suppress an address (policy: 5 on >= 3 days
# within 30); a delivery on the third day leaves only two after it, and the address stays.
soft_stream() { # WITH_DELIVERY
    echo "type,timeLogged,orig,rcpt,dsnStatus,dsnDiag"
    for day in 1 2 3 4 5; do
        t=$((1795000000 + day * 86400))
        echo "b,$t,bounces@bounces.example.com,quota.user@example.net,5.2.2,smtp;552 5.2.2 Mailbox full"
        if [ "$1" = yes ] && [ $day = 3 ]; then
            echo "d,$((t + 3600)),bounces@bounces.example.com,quota.user@example.net,2.0.0,smtp;250 ok"
        fi
    done
}
suppressed() { sqlite3 "$1" "select count(*) from suppressions where address='quota.user@example.net' and lifted=0"; }
soft_stream no >"$T/soft.csv"
"$BIN" acct --quiet --db "$T/five-a.db" "$T/soft.csv"
[ "$(suppressed "$T/five-a.db")" = 1 ] || fail "five soft bounces on five days did not suppress"
soft_stream yes >"$T/soft-d.csv"
"$BIN" acct --quiet --db "$T/five-b.db" "$T/soft-d.csv"
[ "$(suppressed "$T/five-b.db")" = 0 ] || fail "a delivery did not reset the soft-bounce count"
[ "$(sqlite3 "$T/five-b.db" "select count(*) from ledger where type='delivered'")" = 0 ] ||
    fail "a delivery wrote an event row without --record-deliveries"
"$BIN" acct --quiet --record-deliveries --db "$T/five-c.db" "$T/soft-d.csv"
[ "$(sqlite3 "$T/five-c.db" "select count(*) from ledger where type='delivered' and kind='event'")" = 1 ] ||
    fail "--record-deliveries did not keep the delivery in the ledger"
[ "$(suppressed "$T/five-c.db")" = 0 ] || fail "a recorded delivery did not reset the soft-bounce count"

# ---- 6. a permanent database error ends the run -----------------------------------------
DB=$T/six.db
"$BIN" acct --quiet --db "$DB" /dev/null # create the database, then break it for good
sqlite3 "$DB" "CREATE TRIGGER refuse BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'refused for good'); END;"
rc=0
timeout 20 "$BIN" acct --db "$DB" "$FIX" 2>"$T/err" || rc=$?
[ "$rc" != 124 ] || fail "acct retried a permanent database error until killed: $(tail -3 "$T/err")"
[ "$rc" = 1 ] || fail "a permanent database error: exit $rc, want 1: $(cat "$T/err")"
grep -q "refused for good" "$T/err" || fail "the database's reason was not reported: $(cat "$T/err")"
rc=0
timeout 20 "$BIN" acct --db "$DB" <"$FIX" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "a permanent database error on the live stream: exit $rc, want 1: $(cat "$T/err")"
[ "$(sqlite3 "$DB" "select count(*) from ledger")" = 0 ] || fail "rows written despite the trigger"

echo "acct_cli: ok (idempotent re-reads across layouts, idle commit + crash + restart, locked database, SIGTERM," \
    "delivery resets, permanent database error)"
