#!/usr/bin/env bash
# acct_root.sh - commands started as root (PowerMTA's run-as-root, an operator's root shell)
# become an unprivileged user before they open or create anything (issue 14 defect 2):
#
#   1. acct as root, store in a directory of nobody's: the database is nobody's;
#   2. a live acct stream as root: the running process is nobody in all its ids, and the
#      database, its -wal and -shm are nobody's while it runs; pipe started as root at the
#      same time writes the same store and its quarantine as nobody;
#   3. [process] user wins over the directory's owner;
#   4. a directory of root's: there is nobody else to be - acct stays root there, pipe refuses
#      (exit 75) and creates nothing; an unknown [process] user is a configuration error
#      (exit 78) that creates nothing;
#   5. after all of it, no file under the nobody-owned directory belongs to root.
#
# Needs root (CI runs as root); without it exit 77, except under CI, where it is a failure.
# Usage: tests/system/acct_root.sh /path/to/bouncepipe   (run from the project directory)
set -euo pipefail
BIN=$(readlink -f "${1:?usage: acct_root.sh /path/to/bouncepipe}")
NAME=acct_root
. "$(dirname "$0")/acct_lib.sh"
acct_setup
skip() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL: acct_root: cannot run in CI: $*" >&2
        exit 1
    fi
    echo "*** SKIPPED: acct_root: $* ***" >&2
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
id nobody >/dev/null 2>&1 || skip "no user nobody"
command -v sqlite3 >/dev/null || fail "sqlite3 is needed"
FIX=$PWD/fixtures/acct/pmta5-default-crlf.csv
[ -f "$FIX" ] || fail "run from the project directory"
NOBODY=$(id -u nobody)
chmod 755 "$T"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
owner() { stat -c %u "$1"; }
D=$T/nobody
install -d -o nobody -g "$(id -gn nobody)" -m 0750 "$D"
printf '[store]\ndatabase = %s/store.db\n[quarantine]\ndirectory = %s/quarantine\n' "$D" "$D" >"$T/conf"

# ---- 1. acct from a file --------------------------------------------------------------------
"$BIN" acct --quiet --config "$T/conf" "$FIX"
[ "$(owner "$D/store.db")" = "$NOBODY" ] || fail "acct as root created the store as uid $(owner "$D/store.db")"

# ---- 2. a live stream, and pipe beside it ----------------------------------------------------
mkfifo "$T/fifo"
"$BIN" acct --quiet --config "$T/conf" <"$T/fifo" &
pid=$!
pids="$pids $pid"
exec 3>"$T/fifo"
head -n 3 "$FIX" >&3
# SQLite creates the -wal a moment before the -shm: wait for both
for _ in $(seq 50); do [ -e "$D/store.db-wal" ] && [ -e "$D/store.db-shm" ] && break; sleep 0.1; done
[ -e "$D/store.db-wal" ] && [ -e "$D/store.db-shm" ] || fail "no -wal/-shm while the live stream runs"
for f in store.db store.db-wal store.db-shm; do
    [ "$(owner "$D/$f")" = "$NOBODY" ] || fail "$f is uid $(owner "$D/$f"), want nobody ($NOBODY)"
done
read -r _ ru eu su fu < <(grep '^Uid:' "/proc/$pid/status")
[ "$ru $eu $su $fu" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "the acct process runs as uids $ru $eu $su $fu"
grep -q '^Groups:[[:space:]]*0\b' "/proc/$pid/status" && fail "the acct process kept root's group"
printf 'From: someone@example.org\nTo: bounces@bounces.example.com\nSubject: hello\nMessage-ID: <root-test@example.org>\n\nNothing to recognise here.\n' |
    "$BIN" pipe --config "$T/conf" || fail "pipe started as root was not accepted (exit $?)"
q=$(find "$D/quarantine/new" -type f | head -n 1)
[ -n "$q" ] || fail "the unrecognised message is not in the quarantine"
for f in "$D/quarantine" "$D/quarantine/new" "$D/quarantine/tmp" "$q"; do
    [ "$(owner "$f")" = "$NOBODY" ] || fail "$f is uid $(owner "$f"), want nobody"
done
[ "$(owner "$D/store.db-wal")" = "$NOBODY" ] || fail "the -wal changed hands after pipe"
tail -n +4 "$FIX" >&3
exec 3>&-
wait "$pid" || fail "the live acct failed"
[ "$(sqlite3 "$D/store.db" "select count(*) from ledger where fingerprint like 'acct:%'")" = 4 ] ||
    fail "the live stream did not store its 4 events"

# ---- 3. [process] user wins -------------------------------------------------------------------
W=$T/shared
install -d -o root -g root -m 0777 "$W"
printf '[store]\ndatabase = %s/store.db\n[process]\nuser = nobody\n' "$W" >"$T/conf-user"
"$BIN" acct --quiet --config "$T/conf-user" "$FIX"
[ "$(owner "$W/store.db")" = "$NOBODY" ] || fail "[process] user = nobody: the store is uid $(owner "$W/store.db")"

# ---- 4. nobody to become -------------------------------------------------------------------
R=$T/rootdir
install -d -o root -g root -m 0755 "$R"
rc=0
printf 'From: a@example.org\nMessage-ID: <r2@example.org>\n\nx\n' | "$BIN" pipe --db "$R/store.db" 2>"$T/err" || rc=$?
[ "$rc" = 75 ] || fail "pipe with the store in root's directory: exit $rc, want 75"
grep -q "root" "$T/err" || fail "pipe did not say why it refused: $(cat "$T/err")"
[ -z "$(ls -A "$R")" ] || fail "pipe created files while refusing: $(ls -A "$R")"
"$BIN" acct --quiet --db "$R/store.db" "$FIX" || fail "acct in root's own directory failed"
[ "$(owner "$R/store.db")" = 0 ] || fail "acct in root's own directory: the store is uid $(owner "$R/store.db")"
printf '[store]\ndatabase = %s/other.db\n[process]\nuser = no-such-user-here\n' "$D" >"$T/conf-bad"
rc=0
"$BIN" acct --quiet --config "$T/conf-bad" "$FIX" 2>"$T/err" || rc=$?
[ "$rc" = 78 ] || fail "an unknown [process] user: exit $rc, want 78: $(cat "$T/err")"
grep -q "no-such-user-here" "$T/err" || fail "the unknown user was not named: $(cat "$T/err")"
[ ! -e "$D/other.db" ] || fail "a store was created although no user could be chosen"

# ---- 5. nothing of root's where the MTA's user keeps its files -------------------------------
left=$(find "$D" "$W" -user root ! -path "$W")
[ -z "$left" ] || fail "files of root's: $left"
echo "acct_root: ok (acct, a live stream and pipe started as root all ran as nobody; [process] user;" \
    "root's own directory; an unknown user)"
