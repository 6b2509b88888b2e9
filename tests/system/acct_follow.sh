#!/usr/bin/env bash
# acct_follow.sh - the accounting files as PowerMTA leaves them on disk (issue 14):
#
#   1. a directory (the move-to archive) with plain and gzip'ed files is read in name order;
#      a corrupt gzip file is reported and the others still read;
#   2. --catch-up DIR stores only what is missing, keeps where it stopped in each file
#      (acct_position), and a second catch-up reads nothing again; a file that grew is read
#      from where the last one stopped;
#   3. --follow PATH reads the newest acct-YYYY-MM-DD-NNNN.csv as it grows, commits on an idle
#      second, goes on to the next file when PowerMTA starts one, and keeps its position in the
#      store: killed (SIGKILL) and started again it resumes there, storing nothing twice and
#      losing nothing; a header written again after a reload is followed;
#   4. a followed file moved away (move-to) before it was read to its end: the follower says
#      so and goes on with the next file; --catch-up on the archive reads what was left;
#   5. the export of the store, fed back to PowerMTA as its suppression-list, comes back as b
#      records PowerMTA wrote itself: ignored, not counted (no ledger row, counts unchanged);
#   6. --follow killed after a batch that ended in the middle of a second and resumed after
#      more records of that second were written: every delivery is counted once in
#      signal_counts, and reading the whole file again (acct FILE, --catch-up) adds nothing.
#
# Usage: tests/system/acct_follow.sh /path/to/bouncepipe   (run from the project directory)
set -euo pipefail
BIN=$(readlink -f "${1:?usage: acct_follow.sh /path/to/bouncepipe}")
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 is needed"; exit 1; }
NAME=acct_follow
. "$(dirname "$0")/acct_lib.sh"
acct_setup
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
events() { sqlite3 "$1" "select count(*) from ledger where kind='event'"; }
rcpts() { sqlite3 "$1" "select recipient from ledger where kind='event' order by recipient" | tr '\n' ' '; }
HDR='type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,jobId,envId'
rec() { # N: a b record for uN@example.net at a time of its own, CRLF as PowerMTA writes
    printf 'b,%s,bounces-u%s=example.net@bounces.example.com,u%s@example.net,failed,5.1.1 (bad destination mailbox address),"smtp;550 5.1.1 <u%s@example.net>: user unknown, sorry",mx.example.net (192.0.2.25),bad-mailbox,job-%s,env-%s\r\n' \
        $((1795169000 + $1)) "$1" "$1" "$1" "$1" "$1"
}
file_of() { # FIRST LAST: a file with records FIRST..LAST
    printf '%s\r\n' "$HDR"
    for i in $(seq "$1" "$2"); do rec "$i"; done
}

# ---- 1. a directory: plain and gzip, name order, a corrupt member ---------------------------
A=$T/archive
mkdir "$A"
file_of 1 3 >"$A/acct-2026-11-20-0000.csv"
file_of 4 6 | gzip >"$A/acct-2026-11-20-0001.csv.gz"
file_of 7 8 >"$A/acct-2026-11-21-0000.csv"
printf 'not a csv file at all\n' >"$A/notes.txt"
"$BIN" acct --dry-run --format ndjson "$A" >"$T/dry" 2>"$T/err" || fail "reading the directory: $(cat "$T/err")"
[ "$(grep -c '"type":"bounce"' "$T/dry")" = 8 ] || fail "the directory gave $(grep -c '"type":"bounce"' "$T/dry") events, want 8"
grep -o '"source":"[^"]*"' "$T/dry" | sed 's/#.*//' | uniq | sed 's/.*\///' | tr '\n' ' ' >"$T/order"
[ "$(cat "$T/order")" = "acct-2026-11-20-0000.csv acct-2026-11-20-0001.csv.gz acct-2026-11-21-0000.csv " ] ||
    fail "not in name order: $(cat "$T/order")"
head -c 40 "$A/acct-2026-11-20-0001.csv.gz" >"$T/broken.csv.gz"
rc=0
"$BIN" acct --dry-run "$T/broken.csv.gz" "$A/acct-2026-11-21-0000.csv" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "a cut gzip file: exit $rc, want 1"
grep -q "broken.csv.gz" "$T/err" || fail "the cut gzip file was not named: $(cat "$T/err")"

# ---- 2. --catch-up ---------------------------------------------------------------------------
DB=$T/catch.db
file_of 1 2 >"$T/part.csv"
"$BIN" acct --quiet --db "$DB" "$T/part.csv" # the pipe had these before it was abandoned
"$BIN" acct --db "$DB" --catch-up "$A" 2>"$T/err"
grep -q "stored 6 new, 2 already seen" "$T/err" || fail "first catch-up: $(cat "$T/err")"
[ "$(events "$DB")" = 8 ] || fail "catch-up: $(events "$DB") events, want 8"
[ "$(sqlite3 "$DB" "select count(*) from acct_position where stream like 'catch-up:%'")" = 3 ] ||
    fail "catch-up kept no position per file"
"$BIN" acct --db "$DB" --catch-up "$A" 2>"$T/err"
grep -q "0 records" "$T/err" && grep -q "8 read before (skipped)" "$T/err" || fail "second catch-up read again: $(cat "$T/err")"
rec 9 >>"$A/acct-2026-11-21-0000.csv"
rec 10 | head -c 60 >>"$A/acct-2026-11-21-0000.csv" # PowerMTA is writing the next record
"$BIN" acct --db "$DB" --catch-up "$A" 2>"$T/err"
grep -q "stored 1 new, 0 already seen" "$T/err" || fail "catch-up of a grown file: $(cat "$T/err")"
grep -q "cut" "$T/err" && fail "a record still being written was reported as cut: $(cat "$T/err")"
[ "$(events "$DB")" = 9 ] || fail "catch-up of a grown file: $(events "$DB") events"
rec 10 | tail -c +61 >>"$A/acct-2026-11-21-0000.csv" # ... and has finished it
"$BIN" acct --db "$DB" --catch-up "$A" 2>"$T/err"
grep -q "stored 1 new, 0 already seen" "$T/err" || fail "the record finished after a catch-up: $(cat "$T/err")"
[ "$(events "$DB")" = 10 ] || fail "catch-up of a finished record: $(events "$DB") events"

# ---- 3. --follow across rotation, killed and resumed -----------------------------------------
L=$T/pmta
mkdir "$L"
DB=$T/follow.db
file_of 100 102 >"$L/acct-2026-11-20-0000.csv"
start_follow() {
    "$BIN" acct --quiet --db "$DB" --follow "$L/acct.csv" 2>>"$T/follow.err" &
    pid=$!
    pids="$pids $pid"
}
have() { [ "$(events "$DB" 2>/dev/null || echo 0)" = "$1" ]; }
start_follow
wait_for 10 have 3 || fail "the newest file was not read (have $(events "$DB"))"
rec 103 >>"$L/acct-2026-11-20-0000.csv"
printf 'type,timeLogged,rcpt,dsnStatus,dsnDiag,orig\r\n' >>"$L/acct-2026-11-20-0000.csv" # a reload
printf 'b,1795169104,u104@example.net,5.1.1,smtp;550 5.1.1 no such user,bounces@bounces.example.com\r\n' >>"$L/acct-2026-11-20-0000.csv"
wait_for 10 have 5 || fail "appended records were not committed while following (have $(events "$DB"))"
kill -0 "$pid" || fail "the follower exited: $(cat "$T/follow.err")"
file_of 105 106 >"$L/acct-2026-11-20-0001.csv" # PowerMTA's next file
wait_for 10 have 7 || fail "the follower did not go on to the next file (have $(events "$DB"))"
pos=$(sqlite3 "$DB" "select file from acct_position where stream like 'follow:%'")
[ "$pos" = "$L/acct-2026-11-20-0001.csv" ] || fail "the kept position is $pos"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
rec 107 >>"$L/acct-2026-11-20-0001.csv" # written while nobody read
start_follow
wait_for 10 have 8 || fail "the restarted follower did not resume (have $(events "$DB"))"
[ "$(sqlite3 "$DB" "select count(distinct fingerprint) from ledger where kind='event'")" = 8 ] || fail "counted twice"
want="u100@example.net u101@example.net u102@example.net u103@example.net u104@example.net u105@example.net u106@example.net u107@example.net "
[ "$(rcpts "$DB")" = "$want" ] || fail "followed events: $(rcpts "$DB")"

# ---- 4. the followed file moved away before it was read to its end -------------------------------
kill -TERM "$pid"
wait "$pid" || fail "SIGTERM: the follower exited $?"
rec 108 >>"$L/acct-2026-11-20-0001.csv"
mkdir "$L/moved"
mv "$L/acct-2026-11-20-0001.csv" "$L/moved/"
file_of 109 109 >"$L/acct-2026-11-20-0002.csv"
start_follow
wait_for 10 have 9 || fail "after the move the next file was not read (have $(events "$DB"))"
grep -q "was moved before it was read to its end" "$T/follow.err" || fail "the move was not reported: $(cat "$T/follow.err")"
"$BIN" acct --quiet --db "$DB" --catch-up "$L/moved"
have 10 || fail "catch-up of the archive did not store what the follower missed (have $(events "$DB"))"
kill -TERM "$pid"
wait "$pid" || true

# ---- 5. our export as PowerMTA's suppression-list, fed back ---------------------------------------
"$BIN" export --db "$DB" --format plain >"$T/suppression-list.txt"
[ "$(wc -l <"$T/suppression-list.txt")" = 10 ] || fail "the export has $(wc -l <"$T/suppression-list.txt") addresses"
before=$(sqlite3 "$DB" "select count(*) from ledger")
{
    printf '%s\r\n' "$HDR"
    while read -r a; do # what PowerMTA writes for a recipient in its suppression-list: no dsnMta
        printf 'b,1795190000,bounces@bounces.example.com,%s,failed,5.0.0 (undefined status),smtp;550 5.0.0 recipient is in suppression list,,bad-mailbox,job-1,\r\n' "$a"
    done <"$T/suppression-list.txt"
} >"$T/suppressed.csv"
"$BIN" acct --db "$DB" "$T/suppressed.csv" 2>"$T/err"
grep -q "10 refused by PowerMTA's suppression list" "$T/err" || fail "suppression-list records: $(cat "$T/err")"
[ "$(sqlite3 "$DB" "select count(*) from ledger")" = "$before" ] || fail "suppression-list records were counted"

# ---- 6. --follow resumed in the middle of a second: every delivery counted once ---------------
L=$T/pmta6
mkdir "$L"
DB=$T/signals.db
dlv() { # N SECOND: a d record for dN@example.net logged at that second
    printf 'd,%s,bounces@bounces.example.com,d%s@example.net,relayed,2.0.0 (success),smtp;250 ok,mx.example.net (192.0.2.25),,job-1,\r\n' \
        "$2" "$1"
}
delivered() { sqlite3 "$DB" "select coalesce(sum(delivered), 0) from signal_counts" 2>/dev/null || echo 0; }
has_delivered() { [ "$(delivered)" = "$1" ]; }
S=1795170000
{
    printf '%s\r\n' "$HDR"
    dlv 1 $((S - 1))
    dlv 2 $((S - 1))
    dlv 3 $S
    dlv 4 $S
    dlv 5 $S
} >"$L/acct-2026-11-22-0000.csv"
start_follow
wait_for 10 has_delivered 5 || fail "the follower counted $(delivered) deliveries, want 5"
kill -KILL "$pid" # its last batch ended in the middle of second S
wait "$pid" 2>/dev/null || true
[ "$(sqlite3 "$DB" "select last_time || ' ' || at_last from signal_marks")" = "$S 3" ] ||
    fail "the watermark is $(sqlite3 "$DB" "select last_time, at_last from signal_marks")"
{
    dlv 6 $S # more of second S, written while nobody read
    dlv 7 $S
    dlv 8 $((S + 1))
    dlv 9 $((S + 1))
} >>"$L/acct-2026-11-22-0000.csv"
start_follow
wait_for 10 has_delivered 9 || fail "the resumed follower counted $(delivered) deliveries, want 9 (each once)"
kill -TERM "$pid"
wait "$pid" || fail "SIGTERM: the follower exited $?"
"$BIN" acct --quiet --db "$DB" "$L/acct-2026-11-22-0000.csv" # the whole file read again
[ "$(delivered)" = 9 ] || fail "reading the followed file again counted $(delivered) deliveries, want 9"
"$BIN" acct --quiet --db "$DB" --catch-up "$L" # and from the start by a catch-up
[ "$(delivered)" = 9 ] || fail "a catch-up of the followed file counted $(delivered) deliveries, want 9"

echo "acct_follow: ok (directory with gzip, catch-up positions, follow across rotation with kill and resume," \
    "a moved file, the suppression-list loop, deliveries counted once across a resume mid-second)"
