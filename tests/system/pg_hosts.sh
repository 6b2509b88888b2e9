#!/bin/sh
# pg_hosts.sh BOUNCEPIPE - a fleet of 4 MTA hosts writing one suppression list at once.
#
# Each simulated host is a group of 4 concurrent `bouncepipe pipe --db postgresql://...`
# processes (as the MTA runs its pipe), all 4 hosts at the same time, over TCP on loopback
# with the password from a PGPASSFILE.  Hosts share recipients, and every host also gets the
# same 25 messages; one message in eight names two recipients.  A pipe that exits 75 is run again, as the MTA would; any other status
# fails the test.  Afterwards the store must hold every distinct message exactly once and
# each address's suppression count must equal its distinct suppressing messages: nothing
# lost, nothing counted twice.  Then the server is stopped: pipe mode must exit 75.
set -eu
BIN=$1
HOSTS=4
PER_HOST=4
. "$(dirname "$0")/pg_lib.sh"
NAME=pg_hosts
# shellcheck source=tests/system/acct_lib.sh
. "$(dirname "$0")/acct_lib.sh" # store_conf
pg_start
T=$PG_DIR/hosts
mkdir -p "$T/bin" "$T/quarantine"
cp "$BIN" "$T/bin/bouncepipe"
chmod 755 "$T" "$T/bin" "$T/bin/bouncepipe"
python3 "$(dirname "$0")/pg_hosts_gen.py" "$T/mail" "$HOSTS"
chmod -R a+rX "$T/mail"

# pipe refuses to run as root: as root, run it as nobody, with its own pgpass file
RUN_AS=""
PASS=$PGPASSFILE
if [ "$(id -u)" = 0 ]; then
    RUN_AS="runuser -u nobody --"
    PASS=$T/pgpass
    cp "$PGPASSFILE" "$PASS"
    chown nobody "$PASS" "$T/quarantine"
    chmod 600 "$PASS"
fi
store_conf "$T/bouncepipe.conf" "$PG_TCP_URL" 5000 "$T/quarantine"

# one message through the pipe, retried on 75 like the MTA (up to 30 times)
cat >"$T/deliver.sh" <<DELIVER
#!/bin/sh
for try in \$(seq 30); do
    rc=0
    $RUN_AS env PGPASSFILE=$PASS PGCONNECT_TIMEOUT=5 "$T/bin/bouncepipe" pipe --config "$T/bouncepipe.conf" <"\$1" \
        2>>"$T/pipe.log" || rc=\$?
    [ \$rc = 0 ] && exit 0
    [ \$rc = 75 ] || { echo "\$1: exit \$rc" >>"$T/failures"; exit 1; }
    echo "\$1: 75, retrying" >>"$T/retries"
    sleep 0.2
done
echo "\$1: still 75 after 30 tries" >>"$T/failures"
exit 1
DELIVER
chmod 755 "$T/deliver.sh"

# the schema is created by the first pipe; all hosts start together
pids=""
for h in $(seq 0 $((HOSTS - 1))); do
    (ls "$T/mail/host$h"/*.eml | xargs -P "$PER_HOST" -n 1 "$T/deliver.sh") &
    pids="$pids $!"
done
status=0
for p in $pids; do wait "$p" || status=1; done
if [ -s "$T/failures" ] || [ $status != 0 ]; then
    echo "pipe failures:" >&2
    cat "$T/failures" >&2 || true
    tail -20 "$T/pipe.log" >&2 || true
    exit 1
fi
retries=$(cat "$T/retries" 2>/dev/null | wc -l)
python3 - "$T/mail/expected.json" "$HOSTS" "$retries" <<'PY'
import json, subprocess, sys
exp = json.load(open(sys.argv[1]))
def sql(q):
    out = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-c", q], check=True,
                         capture_output=True, text=True).stdout
    return [l.split("\t") for l in out.splitlines() if l]
import os
os.environ["PATH"] = os.environ.get("PG_BIN", "") + ":" + os.environ["PATH"]
bad = []
processed = int(sql("SELECT count(*) FROM processed WHERE state = 1")[0][0])
events = int(sql("SELECT count(*) FROM ledger WHERE kind = 'event'")[0][0])
if processed != exp["messages"]:
    bad.append("processed units: %d, want %d distinct messages" % (processed, exp["messages"]))
if events != exp["events"]:
    bad.append("ledger events: %d, want %d (one per recipient)" % (events, exp["events"]))
dups = sql("SELECT fingerprint, recipient, count(*) FROM ledger GROUP BY 1, 2 HAVING count(*) > 1")
if dups:
    bad.append("recorded twice: %s" % dups[:5])
rows = {a: (int(c), k) for a, c, k in sql("SELECT address, count, source_kind FROM suppressions WHERE lifted = 0")}
for addr, n in exp["suppress"].items():
    got = rows.get(addr)
    if got is None or got[0] != n:
        bad.append("%s: count %s, want %d" % (addr, got, n))
for addr in rows:
    if addr not in exp["suppress"]:
        bad.append("%s suppressed without a hard bounce" % addr)
soft = int(sql("SELECT count(*) FROM ledger WHERE action = 'soft'")[0][0])
if soft != sum(exp["soft"].values()):
    bad.append("soft events: %d, want %d" % (soft, sum(exp["soft"].values())))
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
print("pg_hosts: %d hosts x %s pipes: %d distinct messages (%d recipient events) recorded once, %d addresses "
      "counted right, %s pipe runs retried after 75" % (int(sys.argv[2]), "4", processed, events,
                                                        len(exp["suppress"]), sys.argv[3]))
PY

# why pipes exited 75 (deadlocks between two-recipient reports, lock waits), for the log
grep -o 'deadlock detected\|lock timeout\|could not serialize' "$T/pipe.log" | sort | uniq -c || true

# The database goes away: the pipe must exit 75 (the MTA keeps the mail).
$PG_RUN "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
rc=0
$RUN_AS env PGPASSFILE=$PASS PGCONNECT_TIMEOUT=3 "$T/bin/bouncepipe" pipe --config "$T/bouncepipe.conf" \
    <"$T/mail/host0/000.eml" 2>/dev/null || rc=$?
[ $rc = 75 ] || {
    echo "pipe with the database down: exit $rc, want 75" >&2
    exit 1
}
echo "pg_hosts: database down -> exit 75"
