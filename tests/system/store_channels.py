#!/usr/bin/env python3
"""store_channels.py BIN [PG_URL PGPASSFILE PSQL] - issue 14's defects 1 and 3 end to end.

PowerMTA reports a failed delivery twice: an accounting record (`b`, the `acct` pipe) and its
own DSN, which VERP brings back to `pipe`.  It lowercases `$to`; accounting records keep the
spelling the sender used.  On a store (SQLite in a temporary directory, or the PostgreSQL
database named by PG_URL, reached with the password file PGPASSFILE, inspected with PSQL):

  1. a live `acct` stream and concurrent `pipe` runs (as an unprivileged user) report every
     failure through both channels, in either order, spelled differently: one ledger event
     counts per failure (the other is recorded as a second report), three soft bounces on
     three days stay three (not suppressed), a hard bounce suppresses once, and the export
     holds each address once;
  2. lookup, remove, import and export agree on an address in any case;
  3. a store written by the previous schema (version 3), with one address in several
     spellings and failures counted twice, is migrated by the first writer: merged, paired,
     derived again; a migration killed part way leaves version 3 intact and the next writer
     finishes it.

Exit 0 when every check passes.  docs/store.md ("Identity", "Two channels", "Migrations").
"""
import concurrent.futures
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

NOBODY = 65534
BASE = 1794000000  # 2026-11-06 21:20:00 UTC
DAY = 86400


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def rfc5322(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))


def logged(t):
    return time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(t))


def verp(address):
    local, domain = address.lower().split("@")
    return f"bounces-{local}={domain}@bounces.example.com"


def pmta_dsn(n, rcpt, t, status, code, text, envid):
    """PowerMTA's own DSN for a failed delivery: RFC 3464, Original-Envelope-Id, the recipient
    as PowerMTA lowercased it."""
    b = f"pmta-{n:06d}"
    return (
        "Return-Path: <>\n"
        f"Date: {rfc5322(t)}\n"
        "From: Mail Delivery Subsystem <mailer-daemon@pmta.example.com>\n"
        f"To: {verp(rcpt)}\n"
        "Subject: Delivery Status Notification (Failure)\n"
        f"Message-Id: <dsn.{n}@pmta.example.com>\n"
        "MIME-Version: 1.0\n"
        f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{b}\"\n\n"
        f"--{b}\nContent-Type: text/plain\n\nThe message could not be delivered to {rcpt.lower()}.\n\n"
        f"--{b}\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; pmta.example.com\nOriginal-Envelope-Id: {envid}\n"
        f"X-PowerMTA-VirtualMTA: vmta1\n\n"
        f"Final-Recipient: rfc822;{rcpt.lower()}\nAction: failed\nStatus: {status}\n"
        f"Remote-MTA: dns; mx.{rcpt.split('@')[1].lower()}\n"
        f"Diagnostic-Code: smtp; {code} {status} {text}\n\n"
        f"--{b}--\n"
    ).encode()


ACCT_HEADER = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,jobId,envId\r\n"


def acct_line(rcpt, t, status, code, text, envid, job):
    return (f"b,{logged(t)},{verp(rcpt)},{rcpt},failed,{status},\"smtp;{code} {status} {text}\","
            f"mx.{rcpt.split('@')[1].lower()} (192.0.2.1),other,{job},{envid}\r\n")


class Store:
    """The store under test: an SQLite file in a directory the pipe user may write, or a
    PostgreSQL database; commands run through one config file."""

    def __init__(self, binary, tmp, pg=None):
        self.binary = binary
        self.tmp = tmp
        self.pg = pg  # (url, passfile, psql) or None
        self.as_root = os.geteuid() == 0
        self.db = pg[0] if pg else os.path.join(tmp, "store.db")
        self.config = os.path.join(tmp, "bouncepipe.conf")
        self.passfile = None
        with open(self.config, "w") as f:
            f.write(f"[store]\ndatabase = {self.db}\nbusy_timeout_ms = 30000\n"
                    f"[quarantine]\ndirectory = {os.path.join(tmp, 'quarantine')}\n")
        if pg:
            self.passfile = os.path.join(tmp, "pgpass")
            shutil.copy(pg[1], self.passfile)
            os.chmod(self.passfile, 0o600)
        if self.as_root:
            os.chmod(tmp, 0o755)
            for p in (tmp, self.config) + ((self.passfile,) if self.passfile else ()):
                os.chown(p, NOBODY, NOBODY)

    def env(self):
        e = dict(os.environ)
        e.pop("BOUNCEPIPE_DB", None)
        e.pop("BOUNCEPIPE_CONFIG", None)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        if self.passfile:
            e["PGPASSFILE"] = self.passfile
        return e

    def command(self, *args, as_user=True):
        cmd = [self.binary, *args]
        if "--db" not in args and args[0] not in ("migrate",):
            cmd[2:2] = ["--config", self.config]
        if as_user and self.as_root:
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        return cmd

    def run(self, *args, stdin=None, timeout=120):
        p = subprocess.run(self.command(*args), input=stdin, capture_output=True, env=self.env(), timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def popen(self, *args, **kw):
        return subprocess.Popen(self.command(*args), env=self.env(), **kw)

    def sql(self, q):
        """Rows of a query, as lists of text."""
        if self.pg:
            out = subprocess.run([self.pg[2], "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d",
                                  self.db, "-c", q], check=True, capture_output=True, text=True,
                                 env=self.env()).stdout
            return [line.split("\t") for line in out.splitlines() if line]
        con = sqlite3.connect(self.db, timeout=30)
        try:
            return [[str(c) if c is not None else "" for c in row] for row in con.execute(q).fetchall()]
        finally:
            con.close()

    def sql_script(self, script):
        if self.pg:
            subprocess.run([self.pg[2], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.db], input=script,
                           check=True, capture_output=True, text=True, env=self.env())
        else:
            con = sqlite3.connect(self.db, timeout=30)
            con.executescript(script)
            con.close()

    def reset(self):
        """An empty store."""
        if self.pg:
            self.sql_script("SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        else:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(self.db + suffix)
                except FileNotFoundError:
                    pass

    def lookup(self, address):
        rc, out, err = self.run("lookup", "--format", "json", address)
        if rc not in (0, 1) or not out.startswith("{"):
            check(False, f"lookup {address}: exit {rc} {err.strip()}")
        return rc, json.loads(out)


# ---- 1. two channels, live, concurrently -------------------------------------------------

def failures():
    """(address as the sender spelled it, day, status, code, text, hard) of every failure."""
    out = []
    for k in range(12):
        rcpt = f"Soft.User{k}@Example.COM"
        for day in range(3):
            out.append((rcpt, day, "4.2.2", "452", "Mailbox full", False))
    for k in range(6):
        out.append((f"Hard.User{k}@Example.NET", 0, "5.1.1", "550", "User unknown", True))
    return out


def test_channels(store):
    store.reset()
    acct = store.popen("acct", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lock = threading.Lock()
    acct.stdin.write(ACCT_HEADER.encode())
    acct.stdin.flush()
    rng = random.Random(14)
    work = []
    for n, (rcpt, day, status, code, text, hard) in enumerate(failures()):
        t = BASE + day * DAY + n * 60
        envid = f"env-{n}"
        dsn_first = rng.random() < 0.5
        work.append((n, rcpt, t, status, code, text, envid, dsn_first, rng.uniform(0, 0.3)))

    def report(item):
        n, rcpt, t, status, code, text, envid, dsn_first, pause = item
        line = acct_line(rcpt, t, status, code, text, envid, f"job-{n % 3}").encode()
        msg = pmta_dsn(n, rcpt, t + rng_delay(n), status, code, text, envid)

        def to_acct():
            with lock:
                acct.stdin.write(line)
                acct.stdin.flush()

        def to_pipe():
            for _ in range(30):
                p = subprocess.run(store.command("pipe", "--rcpt", verp(rcpt)), input=msg, capture_output=True,
                                   env=store.env(), timeout=120)
                if p.returncode == 0:
                    return
                if p.returncode != 75:
                    raise RuntimeError(f"pipe exit {p.returncode}: {p.stderr.decode()}")
                time.sleep(0.2)
            raise RuntimeError("pipe still 75 after 30 tries")

        first, second = (to_pipe, to_acct) if dsn_first else (to_acct, to_pipe)
        first()
        time.sleep(pause)
        second()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(report, w) for w in work]:
            f.result()
    acct.stdin.close()
    err = acct.stderr.read().decode(errors="replace")
    check(acct.wait(timeout=120) == 0, f"acct ended cleanly: {err.strip()[-300:]}")

    soft = sorted({f[0] for f in failures() if not f[5]})
    hard = sorted({f[0] for f in failures() if f[5]})
    for rcpt in soft:
        rc, j = store.lookup(rcpt.upper())
        events = [e for e in j["evidence"] if e["kind"] == "event"]
        second = [e for e in events if e["paired_with"] is not None]
        counted = {e["id"] for e in events} - {e["id"] for e in second}
        spellings = {e["recipient"] for e in events}
        if not (rc == 1 and len(events) == 6 and len(second) == 3 and
                all(e["paired_with"] in counted for e in second) and len(spellings) == 2):
            check(False, f"{rcpt}: exit {rc}, {len(events)} reports, {len(second)} second reports, "
                         f"spellings {sorted(spellings)}; want not suppressed, 6, 3, 2")
    check(True, f"{len(soft)} addresses with three soft bounces on three days, each reported by accounting "
                "record and DSN in either order and another spelling: three failures each, not suppressed")
    for rcpt in hard:
        rc, j = store.lookup(rcpt.lower())
        first = min(j["evidence"], key=lambda e: e["id"])
        check(rc == 0 and j["count"] == 1 and j["listed_as"] == first["recipient"] and
              j["listed_as"].lower() == rcpt.lower(),
              f"{rcpt}: suppressed once, listed in the spelling recorded first ({j.get('count')}, "
              f"{j.get('listed_as')})")
    rc, out, _ = store.run("export", "--format", "plain")
    listed = out.split()
    check(rc == 0 and len(listed) == len(hard) and
          sorted(a.lower() for a in listed) == sorted(a.lower() for a in hard),
          f"export lists each hard-bounced address once: {listed}")
    rc, out, _ = store.run("stats", "--format", "json")
    stats = json.loads(out)
    check(stats["type"].get("bounce") == len(failures()),
          f"stats counts {len(failures())} failures, not the {2 * len(failures())} reports: {stats['type']}")
    rc, out, _ = store.run("signals", "--since", "2000-01-01", "--top", "1000", "--format", "json")
    bounced = sum(g["bounced"] for g in json.loads(out)["groups"]) if rc == 0 else None
    check(bounced == len(failures()),
          f"signals counts {len(failures())} failures, not the {2 * len(failures())} reports: {bounced}")


def rng_delay(n):
    """Seconds between PowerMTA logging the failure and dating its DSN: 0 to 4."""
    return n % 5


# ---- 2. lookup, remove, import and export agree on any spelling ---------------------------

def test_operator_commands(store):
    a = "Hard.User0@Example.NET"
    rc, j = store.lookup("HARD.USER0@EXAMPLE.NET")
    check(rc == 0 and j["suppressed"], "lookup in upper case finds the address")
    listfile = os.path.join(store.tmp, "list.txt")
    with open(listfile, "w") as f:
        f.write("hard.user0@example.net\nNEW.Person@Example.org\nnew.person@example.ORG\n")
    os.chmod(listfile, 0o644)
    rc, _, err = store.run("import", listfile)
    check(rc == 0 and "1 added" in err, f"import: a suppressed address in another spelling adds nothing, "
                                        f"two spellings of a new one add it once ({err.strip()})")
    rc, out, _ = store.run("lookup", "new.person@example.org")
    check(rc == 0 and "NEW.Person@example.org: SUPPRESSED" in out, "an imported address shows its first spelling")
    rc, _, err = store.run("remove", "--reason", "asked by phone", "HARD.user0@example.net")
    check(rc == 0, f"remove in another spelling: {err.strip()}")
    rc, j = store.lookup(a)
    check(rc == 1 and j["lifted"] and j["lift_reason"] == "asked by phone", "the removal lifted the address")
    rc, out, _ = store.run("export", "--format", "plain")
    check(rc == 0 and a.lower() not in out.lower() and out.lower().count("new.person@example.org") == 1,
          "export: the removed address gone, the imported one once")
    rc, _, err = store.run("import", listfile)
    rc2, j = store.lookup(a.upper())
    check(rc2 == 1 and j["lifted"], "an old list in another spelling does not bring a removed address back")


# ---- 3. a version 3 store migrated in place -----------------------------------------------

V3_SQLITE = """
CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (3);
CREATE TABLE processed (fingerprint TEXT PRIMARY KEY, state INTEGER NOT NULL, message_id TEXT, source TEXT,
  first_seen INTEGER NOT NULL, updated INTEGER NOT NULL, original_message_id TEXT, reporting_mta TEXT,
  envid TEXT, arrival_date TEXT) WITHOUT ROWID;
CREATE TABLE ledger (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT, evidence_time INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL, type TEXT, action TEXT, recipient TEXT, domain TEXT, recipient_from TEXT,
  status TEXT, smtp_code TEXT, diagnostic TEXT, category TEXT, feedback_type TEXT, rule TEXT,
  final INTEGER NOT NULL DEFAULT 0, reporting_mta TEXT, remote_mta TEXT, arrival_date TEXT, source_ip TEXT,
  envid TEXT, job_id TEXT, source TEXT, message_id TEXT, original_message_id TEXT, blocklist TEXT, family TEXT,
  note TEXT, mta_category TEXT);
CREATE INDEX ledger_recipient ON ledger(recipient, evidence_time, id);
CREATE INDEX ledger_fingerprint ON ledger(fingerprint);
CREATE INDEX ledger_time ON ledger(evidence_time);
CREATE TABLE suppressions (address TEXT PRIMARY KEY, domain TEXT NOT NULL, reason TEXT, source_kind TEXT NOT NULL,
  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, count INTEGER NOT NULL,
  lifted INTEGER NOT NULL DEFAULT 0, lift_reason TEXT, lifted_at INTEGER);
CREATE INDEX suppressions_domain ON suppressions(domain);
CREATE TABLE derive_state (address TEXT PRIMARY KEY, last_time INTEGER NOT NULL, last_id INTEGER NOT NULL,
  policy TEXT NOT NULL, suppressed INTEGER NOT NULL, reason TEXT, source_kind TEXT, first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL, count INTEGER NOT NULL, lifted INTEGER NOT NULL, lift_reason TEXT,
  lifted_at INTEGER NOT NULL, active_time INTEGER NOT NULL, active_id INTEGER NOT NULL, soft TEXT NOT NULL)
  WITHOUT ROWID;
"""

# This program's PostgreSQL schema back to version 4 (signals, 8, the DMARC step, 7, the
# outbox, 6, and the identity step, 5, undone).
UNDO_PG_IDENTITY = """
SET client_min_messages = warning;
DROP TABLE signal_counts, signal_marks, signal_alerts; DROP INDEX ledger_named;
ALTER TABLE ledger DROP COLUMN sending_ip, DROP COLUMN vmta, DROP COLUMN stream, DROP COLUMN receiver,
  DROP COLUMN listed;
DROP TABLE dmarc_reports, dmarc_records, dmarc_failures, dmarc_rdns;
DROP TABLE outbox;
DROP INDEX ledger_key; DROP INDEX suppressions_key;
ALTER TABLE ledger DROP COLUMN address_key, DROP COLUMN paired_with;
ALTER TABLE suppressions DROP COLUMN address_key;
ALTER TABLE derive_state RENAME COLUMN address_key TO address;
ALTER TABLE addresses RENAME COLUMN address_key TO address;
CREATE INDEX ledger_recipient ON ledger(recipient, evidence_time, id);
UPDATE schema_version SET version = 4;
"""


def v3_store(store, addresses):
    """A store before the identity step (version 3 on SQLite, 4 on PostgreSQL) as that program wrote it: for each of @addresses addresses a hard
    bounce reported by an accounting record in the sender's spelling and by a DSN in PowerMTA's
    lower case, each spelling with its own suppression row (count 1), plus soft bounces of
    a second address reported twice each on three days in one spelling (suppressed: six)."""
    store.reset()
    if store.pg:
        rc, _, err = store.run("import", "/dev/null")  # this program's schema, then back to 3
        check(rc == 0, f"an empty PostgreSQL store: {err.strip()}")
        store.sql_script(UNDO_PG_IDENTITY)
    else:
        store.sql_script(V3_SQLITE)
    rows, supp = [], []
    for k in range(addresses):
        t = BASE + k
        for fp, rcpt, dt in ((f"acct:h{k}", f"Case.User{k}@Example.com", 0), (f"dsn-h{k}", f"case.user{k}@example.com", 3)):
            rows.append(f"('event','{fp}',{t + dt},1,'bounce','suppress','{rcpt}','example.com','5.1.1','550',"
                        f"'bad-mailbox',1)")
            supp.append(f"('{rcpt}','example.com','bad-mailbox','bounce',{t + dt},{t + dt},1,0)")
    for day in range(3):
        for fp, dt in ((f"acct:s{day}", 0), (f"dsn-s{day}", 5)):
            rows.append(f"('event','{fp}',{BASE + day * DAY + dt},1,'bounce','soft','twice@example.org',"
                        f"'example.org','4.2.2','452','quota-issues',0)")
    supp.append(f"('twice@example.org','example.org','quota-issues','soft-threshold',{BASE + 2 * DAY},"
                f"{BASE + 2 * DAY},1,0)")
    script = []
    for i in range(0, len(rows), 500):
        script.append("INSERT INTO ledger (kind, fingerprint, evidence_time, recorded_at, type, action, recipient,"
                      " domain, status, smtp_code, category, final) VALUES " + ",".join(rows[i:i + 500]) + ";")
    for i in range(0, len(supp), 500):
        script.append("INSERT INTO suppressions (address, domain, reason, source_kind, first_seen, last_seen,"
                      " count, lifted) VALUES " + ",".join(supp[i:i + 500]) + ";")
    script.append("INSERT INTO processed (fingerprint, state, first_seen, updated) "
                  "SELECT DISTINCT fingerprint, 1, 1, 1 FROM ledger;")
    store.sql_script("\n".join(script))
    if not store.pg and store.as_root:
        os.chown(store.db, NOBODY, NOBODY)


def check_migrated(store, addresses, label):
    # 4: BP_STORE_SCHEMA_IDENTITY (include/bouncepipe/store.h); later steps may follow it
    version = int(store.sql("SELECT version FROM schema_version")[0][0])
    check(version >= 5, f"{label}: schema version {version}, the identity step (5) done")
    n = int(store.sql("SELECT count(*) FROM suppressions")[0][0])
    check(n == addresses, f"{label}: one suppression row per address ({n}, want {addresses})")
    bad = store.sql("SELECT address, count FROM suppressions WHERE count <> 1 OR address NOT LIKE 'Case.User%'")
    check(bad == [], f"{label}: each counted once, shown in its first spelling ({bad[:3]})")
    paired = int(store.sql("SELECT count(*) FROM ledger WHERE paired_with > 0")[0][0])
    check(paired == addresses + 3, f"{label}: every second report marked ({paired})")
    rc, j = store.lookup("CASE.USER1@EXAMPLE.COM")
    check(rc == 0 and j["count"] == 1 and len(j["evidence"]) == 2, f"{label}: lookup in any case")
    rc, j = store.lookup("twice@example.org")
    check(rc == 1, f"{label}: an address suppressed only because its failures counted twice is not any more")


def test_migration(store):
    v3_store(store, 40)
    rc, _, err = store.run("lookup", "case.user1@example.com")
    check(rc != 0 and "migrat" in err, f"readers refuse a version 3 store until a writer migrates it ({rc})")
    rc, _, err = store.run("import", "/dev/null")
    check(rc == 0, f"the first writer migrates: {err.strip()}")
    check_migrated(store, 40, "migrated")
    rc, _, err = store.run("import", "/dev/null")
    check(rc == 0 and store.sql("SELECT count(*) FROM ledger WHERE paired_with > 0") == [["43"]],
          "opened again: nothing more changes")


def migrating(store):
    """Is a writer inside the migration's transaction right now?  SQLite: its write-ahead log
    holds pages; PostgreSQL: a bouncepipe connection is in a transaction."""
    if store.pg:
        return int(store.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bouncepipe' "
                             "AND state IN ('active', 'idle in transaction')")[0][0]) > 0
    try:
        return os.path.getsize(store.db + "-wal") > 64 * 1024
    except FileNotFoundError:
        return False


def test_interrupted_migration(store):
    """A big version 3 store; writers killed (SIGKILL) while they migrate it, at growing
    delays once the migration's transaction has begun.  After each kill the store is still
    version 3, untouched; the next writer finishes the migration."""
    big = int(os.environ.get("BP_CHANNELS_MIGRATE_ADDRESSES", "20000"))
    v3_store(store, big)
    rows = store.sql("SELECT count(*) FROM suppressions")
    kills = []
    for delay in (0.0, 0.05, 0.2, 0.5, 1.0):
        p = store.popen("import", "/dev/null", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while p.poll() is None and not migrating(store) and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        if p.poll() is not None:
            break  # it got through before the kill
        p.send_signal(signal.SIGKILL)
        p.wait()
        if store.pg:  # the server notices the lost connection and rolls back
            for _ in range(200):
                if not migrating(store):
                    break
                time.sleep(0.05)
        version = store.sql("SELECT version FROM schema_version")[0][0]
        if int(version) >= 5:
            break  # it committed just before the kill (all steps in one transaction): checked below
        if version != ("4" if store.pg else "3") or store.sql("SELECT count(*) FROM suppressions") != rows:
            check(False, f"killed {delay:.2f} s into the migration: version {version}, rows changed")
        kills.append(delay)
    check(len(kills) >= 2, f"writers killed inside the migration after {', '.join('%.2f s' % k for k in kills)}: "
                           "each left version 3 untouched")
    rc, _, err = store.run("import", "/dev/null", timeout=600)
    check(rc == 0, f"the next writer finishes the migration: {err.strip()}")
    check_migrated(store, big, "after the interrupted runs")


def main():
    binary = os.path.abspath(sys.argv[1])
    pg = tuple(sys.argv[2:5]) if len(sys.argv) >= 5 else None
    tmp = tempfile.mkdtemp(prefix="bp-channels-")
    try:
        store = Store(binary, tmp, pg)
        test_channels(store)
        test_operator_commands(store)
        test_migration(store)
        test_interrupted_migration(store)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("store_channels: ok")


if __name__ == "__main__":
    main()
