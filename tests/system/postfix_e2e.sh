#!/usr/bin/env bash
# postfix_e2e.sh - prove the pipe contract through a real MTA.
#
# Usage: tests/system/postfix_e2e.sh /path/to/bouncepipe
#
# PowerMTA is commercial, so this test uses Postfix from Debian's packages, whose pipe(8)
# transport has the same contract: the message on stdin, exit 0 = delivered, exit 75
# (EX_TEMPFAIL) = keep it queued and retry.  It starts a PRIVATE Postfix instance (its own
# config_directory, queue_directory and data_directory under a temporary directory, listening
# on 127.0.0.1 on a free high port, never touching /etc/postfix or a running system Postfix),
# routes the bounce domain to a pipe(8) transport running `bouncepipe pipe`, and then:
#
#   1. injects one DSN over SMTP while the database is available: it is stored;
#   2. makes the database directory unreadable (chmod 000) and injects more DSNs and ARF
#      complaints: every delivery attempt must be deferred (bouncepipe exits 75), none lost;
#   3. restores the directory, flushes the queue (postqueue -f) and waits for it to drain;
#      then holds the database's write lock past the pipe's busy timeout: another deferral,
#      delivered after the lock is released and the queue flushed;
#   4. injects a copy of an already-stored report (an MTA retry after a lost ack);
#   5. checks that the store holds every report exactly once, with the right recipient.
#
# The instance is stopped on every exit path (trap).  Needs root (Postfix's master runs as
# root and pipe(8) switches to an unprivileged user); without root or without Postfix the test
# says so loudly and exits 77, which ctest reports as skipped - except under CI (CI set), which
# runs as root with Postfix installed by `make deps`: there a missing prerequisite fails.  Bounded: every wait has a deadline and
# ctest adds its own TIMEOUT.
set -euo pipefail

BIN=${1:?usage: postfix_e2e.sh /path/to/bouncepipe}
SKIP=77
NAME=postfix_e2e
WAIT_STEP=0.5
# shellcheck source=tests/system/acct_lib.sh
. "$(dirname "$0")/acct_lib.sh" # fail, wait_for, store_conf

skip() {
    if [ -n "${CI:-}" ]; then # CI runs as root with postfix installed: a skip there is a failure
        echo "FAIL: postfix_e2e: cannot run in CI: $*" >&2
        exit 1
    fi
    echo "*** SKIPPED: postfix_e2e: $* ***" >&2
    echo "*** The Postfix end-to-end proof of the pipe contract did NOT run. ***" >&2
    exit $SKIP
}

[ "$(id -u)" = 0 ] || skip "needs root (Postfix's master process and pipe(8) user switching)"
POSTFIX=$(command -v postfix || true)
[ -n "$POSTFIX" ] || [ -x /usr/sbin/postfix ] && POSTFIX=${POSTFIX:-/usr/sbin/postfix}
[ -x "$POSTFIX" ] || skip "postfix is not installed (make deps installs it)"
POSTQUEUE=$(command -v postqueue || echo /usr/sbin/postqueue)
command -v python3 >/dev/null || skip "python3 is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
id nobody >/dev/null 2>&1 || skip "no 'nobody' user to run the pipe as"
id postfix >/dev/null 2>&1 || skip "no 'postfix' user (broken postfix package?)"
"$BIN" pipe --help >/dev/null 2>&1 || { echo "FAIL: $BIN has no 'pipe' command" >&2; exit 1; }

T=$(mktemp -d /tmp/bp-postfix-e2e.XXXXXX)
CONF=$T/etc
started=0
cleanup() {
    local rc=$?
    if [ "$started" = 1 ]; then
        "$POSTFIX" -c "$CONF" stop >/dev/null 2>&1 || true
        # master exits within a second or two; make sure nothing of ours outlives the test
        for _ in $(seq 1 20); do
            [ -f "$T/queue/pid/master.pid" ] || break
            pid=$(tr -d ' ' <"$T/queue/pid/master.pid" 2>/dev/null || true)
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    fi
    if [ $rc -ne 0 ] && [ -f "$T/maillog" ]; then
        echo "---- private Postfix log (last 60 lines) ----" >&2
        tail -n 60 "$T/maillog" >&2 || true
    fi
    [ -n "${KEEP_E2E:-}" ] || rm -rf "$T"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM


# Everything pipe(8) runs as 'nobody' must be reachable by it.
chmod 755 "$T"
mkdir -p "$CONF" "$T/bin" "$T/db" "$T/quarantine" "$T/data" "$T/queue"
cp "$BIN" "$T/bin/bouncepipe"
chmod 755 "$T/bin/bouncepipe"
chown nobody "$T/db" "$T/quarantine"
chmod 700 "$T/db" "$T/quarantine"
chown postfix "$T/data"
DB=$T/db/bouncepipe.db

store_conf "$T/bouncepipe.conf" "$DB" 2000 "$T/quarantine"
printf '\n[verp]\nprefix = bounces\n' >>"$T/bouncepipe.conf"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

cat >"$CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $T/queue
data_directory = $T/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.bounces.example.com
mydomain = bounces.example.com
myorigin = \$myhostname
mydestination =
mynetworks = 127.0.0.0/8
relay_domains = bounces.example.com
transport_maps = texthash:$CONF/transport
default_transport = error:this test instance delivers nowhere else
local_transport = error:no local delivery
alias_maps =
alias_database =
local_recipient_maps =
relay_recipient_maps =
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = \$myhostname ESMTP bouncepipe-e2e
disable_dns_lookups = yes
smtp_dns_support_level = disabled
bouncepipe_destination_recipient_limit = 1
notify_classes =
maillog_file = $T/maillog
maillog_file_prefixes = $T
# retry deferred mail quickly; the test also flushes explicitly
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
bounce_queue_lifetime = 1h
maximal_queue_lifetime = 1h
EOF

cat >"$CONF/master.cf" <<EOF
127.0.0.1:$PORT inet n - n - - smtpd
pickup     unix  n - n 60  1 pickup
cleanup    unix  n - n -   0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -   - trivial-rewrite
bounce     unix  - - n -   0 bounce
defer      unix  - - n -   0 bounce
trace      unix  - - n -   0 bounce
verify     unix  - - n -   1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -   - proxymap
proxywrite unix  - - n -   1 proxymap
showq      unix  n - n -   - showq
error      unix  - - n -   - error
retry      unix  - - n -   - error
discard    unix  - - n -   - discard
anvil      unix  - - n -   1 anvil
scache     unix  - - n -   1 scache
postlog    unix-dgram n - n - 1 postlogd
bouncepipe unix  - n n -   4 pipe
  flags=Rq user=nobody argv=$T/bin/bouncepipe pipe --config $T/bouncepipe.conf --rcpt \${recipient} --db $DB
EOF

cat >"$CONF/transport" <<EOF
bounces.example.com bouncepipe:
EOF

"$POSTFIX" -c "$CONF" check >/dev/null 2>&1 || "$POSTFIX" -c "$CONF" set-permissions >/dev/null 2>&1 || true
"$POSTFIX" -c "$CONF" start >"$T/start.log" 2>&1 || { cat "$T/start.log" >&2; fail "private Postfix did not start"; }
started=1

# Wait for the SMTP listener.
for _ in $(seq 1 50); do
    python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$PORT),1); s.close()" 2>/dev/null && break
    sleep 0.2
done

# Messages: DSNs (RFC 3464) to VERP bounce addresses and ARF reports (RFC 5965), our own
# example.* shapes.  python3 writes them and sends them over SMTP with smtplib.
cat >"$T/send.py" <<'PYEOF'
import smtplib, sys
port, which = int(sys.argv[1]), sys.argv[2:]

def report(headers, report_type, boundary, parts):
    """A multipart/report: @headers (each ending in a line end), then each (type, body) part."""
    out = headers + ("MIME-Version: 1.0\n"
                     f'Content-Type: multipart/report; report-type={report_type}; boundary="{boundary}"\n\n')
    for ctype, body in parts:
        out += f"--{boundary}\nContent-Type: {ctype}\n\n{body}\n"
    return out + f"--{boundary}--\n"

def dsn(n, rcpt, status, diag):
    verp = f"bounces-{rcpt.replace('@', '=')}@bounces.example.com"
    return (report(f"""From: MAILER-DAEMON@mx.example.net
To: {verp}
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-{n}@mx.example.net>
Date: Sun, 22 Nov 2026 01:0{n}:00 +0000
""", "delivery-status", f"B{n}", [
        ("text/plain", f"Your message could not be delivered to {rcpt}.\n"),
        ("message/delivery-status", f"""Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: {status}
Diagnostic-Code: smtp; {diag}
"""),
        ("text/rfc822-headers", f"""From: news@example.com
To: {rcpt}
Subject: November news
Message-ID: <orig-{n}@example.com>
"""),
    ]), "<>", verp)

def arf(n, rcpt):
    return (report(f"""From: fbl@example.org
To: fbl@bounces.example.com
Subject: FW: November news
Message-ID: <arf-{n}@fbl.example.org>
Date: Sun, 22 Nov 2026 01:1{n}:00 +0000
""", "feedback-report", f"F{n}", [
        ("text/plain", "This is an email abuse report for an email message received from IP 192.0.2.10.\n"),
        ("message/feedback-report", f"""Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <bounces-{rcpt.replace('@', '=')}@bounces.example.com>
Original-Rcpt-To: <{rcpt}>
Source-IP: 192.0.2.10
Arrival-Date: Sun, 22 Nov 2026 00:5{n}:00 +0000
"""),
        ("message/rfc822", f"""From: news@example.com
To: {rcpt}
Subject: November news
Message-ID: <orig-arf-{n}@example.com>
Date: Sun, 22 Nov 2026 00:5{n}:00 +0000

Hello.
"""),
    ]), "fbl@example.org", "fbl@bounces.example.com")

messages = {
    "dsn1": dsn(1, "gone.user@example.net", "5.1.1", "550 5.1.1 <gone.user@example.net>: Recipient address rejected: User unknown"),
    "dsn2": dsn(2, "old.user@example.org", "5.1.1", "550 5.1.1 The email account that you tried to reach does not exist"),
    "dsn3": dsn(3, "full.user@example.jp", "5.2.2", "552 5.2.2 Mailbox full"),
    "dsn4": dsn(4, "busy.user@example.com", "5.1.1", "550 5.1.1 No such user (busy.user@example.com)"),
    "arf1": arf(1, "angry.reader@example.com"),
    "arf2": arf(2, "other.reader@example.net"),
}
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    for name in which:
        body, sender, rcpt = messages[name]
        s.sendmail(sender, [rcpt], body.replace("\n", "\r\n").encode())
PYEOF

send() { python3 "$T/send.py" "$PORT" "$@" || fail "SMTP injection of $* failed"; }

# Queue size of the private instance (postqueue -j prints one JSON object per message).
queue_count() {
    local n
    n=$("$POSTQUEUE" -c "$CONF" -j 2>/dev/null | grep -c '"queue_id"') || true
    echo "${n:-0}"
}
# Events stored for a recipient.
# Queries run as the pipe's user: a root sqlite3 could leave root-owned -wal/-shm files behind.
q() { runuser -u nobody -- sqlite3 "$DB" "$1"; }
stored() { q "select count(*) from ledger where kind='event' and recipient='$1'" 2>/dev/null || echo 0; }
queue_empty() { [ "$(queue_count)" = 0 ]; }
log_count() { local n; n=$(grep -c "$1" "$T/maillog" 2>/dev/null) || true; echo "${n:-0}"; }
deferred_at_least() { [ "$(log_count 'status=deferred')" -ge "$1" ]; }

# 1. database available: delivered and stored
send dsn1
wait_for 30 queue_empty || fail "dsn1 was not delivered while the database was available"
[ "$(stored gone.user@example.net)" = 1 ] || fail "dsn1 not in the store after delivery"
grep -q 'status=sent' "$T/maillog" || fail "no delivery logged for dsn1"

# 2. database unavailable: every attempt deferred (exit 75), nothing bounced, nothing lost
chmod 000 "$T/db"
send dsn2 dsn3 arf1 arf2
wait_for 30 deferred_at_least 4 || fail "expected 4 deferrals while the database was unavailable"
[ "$(queue_count)" = 4 ] || fail "expected 4 messages held in the queue, found $(queue_count)"
if grep -q 'status=bounced' "$T/maillog"; then fail "a report was bounced (lost) instead of deferred"; fi
grep 'status=deferred' "$T/maillog" | head -n 1 | grep -q 'temporary failure' ||
    fail "deferral was not a temporary failure (exit 75)"

# 3. database back: flush, the queue drains
chmod 700 "$T/db"
"$POSTQUEUE" -c "$CONF" -f
wait_for 60 queue_empty || fail "queue did not drain after the database came back ($(queue_count) left)"

# 3b. database busy: another writer holds the lock past the pipe's busy timeout (2 s here)
mkdir -p "$T/run"
chown nobody "$T/run"
runuser -u nobody -- python3 - "$DB" "$T/run/locked" <<'PY' &
import pathlib, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
pathlib.Path(sys.argv[2]).touch()
time.sleep(6)
c.execute("ROLLBACK")
PY
locker=$!
wait_for 10 test -f "$T/run/locked" || fail "could not lock the database"
send dsn4
wait_for 20 deferred_at_least 5 || fail "dsn4 was not deferred while the database was locked"
grep 'status=deferred' "$T/maillog" | tail -n 1 | grep -q 'temporary failure' ||
    fail "deferral under a held lock was not a temporary failure (exit 75)"
[ "$(stored gone.user@example.net)" = 1 ] || fail "the store changed under a held lock"
wait "$locker" || fail "the lock holder failed"
"$POSTQUEUE" -c "$CONF" -f
wait_for 60 queue_empty || fail "queue did not drain after the lock was released ($(queue_count) left)"

# 4. a retry of an already stored report changes nothing
send dsn1
wait_for 30 queue_empty || fail "duplicate dsn1 was not delivered"

# 5. every report exactly once
for r in gone.user@example.net old.user@example.org full.user@example.jp angry.reader@example.com \
    other.reader@example.net busy.user@example.com; do
    n=$(stored "$r")
    [ "$n" = 1 ] || fail "expected exactly one stored event for $r, found $n"
done
total=$(q "select count(*) from ledger where kind='event'")
[ "$total" = 6 ] || fail "expected 6 events in the ledger, found $total"
units=$(q "select count(*) from processed")
[ "$units" = 6 ] || fail "expected 6 processed messages, found $units"
if grep -q 'status=bounced' "$T/maillog"; then fail "a report was bounced"; fi
sent=$(log_count 'status=sent')
[ "$sent" = 7 ] || fail "expected 7 successful pipe deliveries (6 reports + 1 retry), log shows $sent"
echo "postfix_e2e: ok: 6 reports stored exactly once through a private Postfix on 127.0.0.1:$PORT" \
    "(4 deferred while the database directory was unreadable, 1 while its lock was held; flushed;" \
    "1 duplicate delivery ignored)"
