#!/usr/bin/env python3
"""bench/signals_bench.py - how long `bouncepipe signals` takes on a store of 10 million ledger rows.

usage: python3 bench/signals_bench.py [--rows N] [--days D] [--runs R] [--bin PATH]
                                      [--db FILE | --db postgresql://...] [--keep]
       python3 bench/signals_bench.py --emit-csv N --days D      (ledger rows as CSV, for COPY)

The store is built the way a busy sender's would look after D days (default 30): N ledger
event rows (default 10,000,000) spread evenly over the days - bounces (a tenth of them naming a
block list or reputation system), deferrals, complaints, a few delivered notices - from 48
sending IPs in 12 virtual MTAs, two streams, the nine receivers of data/receivers and the rest
of the world, to 2 million addresses; and the accounting counts of the deliveries (5 million a
day) in signal_counts, as `acct` leaves them.  The rows go in with SQLite's own bulk insert
(the program would take hours to write 10 million rows through its pipe, which is not what
is measured here); the ledger's part of the counts is then made by the program itself,
`bouncepipe signals --rebuild`, timed too.

Then, --runs times each (median and max printed), the commands an operator and a timer run:
  signals                          the default window (24 h), text
  signals --since 7d --format json
  signals --format prometheus      what a scrape every minute costs
  signals --check                  the alerts (nothing configured: the default thresholds)
  signals --events --ip IP --since 24h   the evidence of one IP (the index ledger_named)

With --db postgresql://... the same store is built in that database (which must be empty):
the ledger rows through psql's \\copy from this script's --emit-csv, the counts by --rebuild.
bench/signals_bench_pg.sh starts a private cluster (tests/system/pg_lib.sh) and runs this.

Figures and the machine they were taken on: docs/performance.md, "Signals on 10 million
ledger rows".  Nothing here is a test.
"""

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = 1767225600  # 2026-01-01T00:00:00Z: the end of the synthetic history

IPS = ["192.0.2.%d" % i for i in range(10, 58)]
VMTAS = ["vmta-%02d" % i for i in range(12)]
STREAMS = ["marketing", "transactional"]
RECEIVERS = ["gmail", "microsoft", "yahoo", "apple", "comcast", "orange", "gmx", "mailru", "yandex", None]
DOMAINS = {"gmail": "gmail.com", "microsoft": "outlook.com", "yahoo": "yahoo.com", "apple": "icloud.com",
           "comcast": "comcast.net", "orange": "orange.fr", "gmx": "gmx.de", "mailru": "mail.ru",
           "yandex": "yandex.ru", None: "example.net"}
LISTS = ["spamhaus-zen", "spamhaus-sbl", "barracuda", "spamcop", "gmail", "microsoft", "yahoo", "uceprotect"]

COLUMNS = ("kind, fingerprint, evidence_time, recorded_at, type, action, recipient, domain, recipient_from, "
           "status, smtp_code, diagnostic, category, rule, final, blocklist, family, sending_ip, vmta, stream, "
           "receiver, listed")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rows(n, days, seed=15):
    """The ledger rows, as tuples in COLUMNS order, oldest first."""
    rnd = random.Random(seed)
    span = days * 86400
    start = NOW - span
    for i in range(n):
        t = start + (i * span) // n
        ip = rnd.randrange(len(IPS))
        vmta = VMTAS[ip % len(VMTAS)]
        stream = STREAMS[ip % 2]
        receiver = RECEIVERS[rnd.randrange(len(RECEIVERS))]
        rcpt = "u%d@%s" % (rnd.randrange(2000000), DOMAINS[receiver])
        r = rnd.random()
        blocklist = listed = None
        if r < 0.60:
            typ, final, status, code, action = "bounce", 1, "5.1.1", "550", "suppress"
            category, rule, diag = "bad-mailbox", "gen-user-unknown", "550 5.1.1 user unknown"
            if rnd.random() < 0.1:
                blocklist = LISTS[rnd.randrange(len(LISTS))]
                listed = IPS[ip]
                category, rule, action, status = "spam-related", "bl-generic", "ignore", "5.7.1"
                diag = "554 5.7.1 Client host [%s] blocked using %s" % (IPS[ip], blocklist)
        elif r < 0.85:
            typ, final, status, code, action = "delay", 0, "4.7.0", "421", "ignore"
            category, rule, diag = "policy-related", "rep-rate", "421 4.7.0 try again later"
            if rnd.random() < 0.2:
                blocklist = receiver if receiver is not None else "spamhaus-zen"
        elif r < 0.95:
            typ, final, status, code, action = "complaint", 1, None, None, "suppress"
            category, rule, diag = None, None, None
        else:
            typ, final, status, code, action = "delivered", 0, "2.0.0", "250", "ignore"
            category, rule, diag = None, None, "250 ok"
        yield ("event", "bench-%d" % i, t, t, typ, action, rcpt, rcpt.split("@")[1], "final-recipient", status,
               code, diag, category, rule, final, blocklist, "dsn", IPS[ip], vmta, stream, receiver, listed)


def delivery_counts(days, per_day, seed=16):
    """The accounting counts of `acct`: (hour, ip, vmta, stream, receiver, '', delivered)."""
    rnd = random.Random(seed)
    first = (NOW - days * 86400) // 3600
    keys = [(ip, VMTAS[i % len(VMTAS)], STREAMS[i % 2], rcv or "")
            for i, ip in enumerate(IPS) for rcv in RECEIVERS]
    per_hour_key = max(1, per_day // 24 // len(keys))
    for h in range(first, NOW // 3600):
        for ip, vmta, stream, rcv in keys:
            yield (h, ip, vmta, stream, rcv, "", per_hour_key + rnd.randrange(per_hour_key // 2 + 1))


def sql_literal(v):
    return "\\N" if v is None else str(v)


def emit_csv(n, days):
    out = sys.stdout
    for r in rows(n, days):
        out.write("\t".join(sql_literal(v) for v in r) + "\n")


def run(cmd, env=None):
    t = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = time.monotonic() - t
    if p.returncode not in (0, 1):  # --check exits 1 when an alert fired
        raise SystemExit("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.decode(errors="replace")))
    return dt, p.stdout


def build_sqlite(binary, db, n, days):
    subprocess.run([binary, "signals", "--db", db, "--rebuild"], check=True, stdout=subprocess.DEVNULL)
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")  # 256 MiB
    t = time.monotonic()
    # the ledger's indexes as the program made them, dropped for the load and made again after
    # it (ten million rows into four growing B-trees take an hour; sorted once, minutes)
    indexes = [r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' "
                                         "AND sql IS NOT NULL")]
    for name, in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' "
                             "AND sql IS NOT NULL").fetchall():
        con.execute("DROP INDEX %s" % name)
    con.executemany("INSERT INTO ledger (%s) VALUES (%s)" % (COLUMNS, ", ".join("?" * 22)), rows(n, days))
    con.commit()
    log("inserted %d ledger rows in %.0f s; making the indexes again" % (n, time.monotonic() - t))
    for sql in indexes:
        con.execute(sql)
    con.executemany("INSERT INTO signal_counts (hour, sending_ip, vmta, stream, receiver, blocklist, delivered) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", delivery_counts(days, 5000000))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    log("store built in %.0f s" % (time.monotonic() - t))


def build_pg(binary, url, n, days):
    subprocess.run([binary, "signals", "--db", url, "--rebuild"], check=True, stdout=subprocess.DEVNULL)
    t = time.monotonic()
    gen = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--emit-csv", str(n), "--days", str(days)],
                           stdout=subprocess.PIPE)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                    "\\copy ledger (%s) from stdin" % COLUMNS], stdin=gen.stdout, check=True)
    gen.wait()
    counts = "".join("\t".join(sql_literal(v) for v in r) + "\n" for r in delivery_counts(days, 5000000))
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                    "\\copy signal_counts (hour, sending_ip, vmta, stream, receiver, blocklist, delivered) "
                    "from stdin"], input=counts.encode(), check=True)
    subprocess.run(["psql", "-X", "-q", "-d", url, "-c", "VACUUM ANALYZE"], check=True)
    log("inserted %d ledger rows in %.0f s" % (n, time.monotonic() - t))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10000000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bouncepipe"))
    ap.add_argument("--db", help="an SQLite file (default: a temporary one) or a postgresql:// URL (empty)")
    ap.add_argument("--keep", action="store_true", help="keep the SQLite store")
    ap.add_argument("--emit-csv", type=int, metavar="N", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.emit_csv is not None:
        emit_csv(a.emit_csv, a.days)
        return 0
    tmp = None
    db = a.db
    if db is None:
        tmp = tempfile.mkdtemp(prefix="bp-signals-bench-")
        db = os.path.join(tmp, "bench.db")
    pg = db.startswith("postgresql://") or db.startswith("postgres://")
    log("building a store of %d ledger rows over %d days in %s" % (a.rows, a.days, "PostgreSQL" if pg else db))
    (build_pg if pg else build_sqlite)(a.bin, db, a.rows, a.days)
    t = time.monotonic()
    dt, out = run([a.bin, "signals", "--db", db, "--rebuild"])
    log("signals --rebuild: %.1f s (%s)" % (dt, out.decode().strip()))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 1800))
    cases = [
        ("signals (24 h, text)", ["signals", "--now", now]),
        ("signals --since 7d --format json", ["signals", "--now", now, "--since", "7d", "--format", "json"]),
        ("signals --format prometheus", ["signals", "--now", now, "--format", "prometheus"]),
        ("signals --check", ["signals", "--now", now, "--check"]),
        ("signals --events --ip (24 h)", ["signals", "--now", now, "--events", "--ip", IPS[3], "--limit", "100000"]),
    ]
    conf = os.path.join(tmp or tempfile.gettempdir(), "bench-empty.conf")
    open(conf, "w").close()
    env = dict(os.environ, BOUNCEPIPE_CONFIG=conf)  # the defaults, whatever /etc holds
    size = os.path.getsize(db) if not pg else None
    print("store: %d ledger rows over %d days%s; signals --rebuild %.1f s" %
          (a.rows, a.days, ", %.1f GB" % (size / 1e9) if size else "", dt))
    print("%-38s %9s %9s" % ("command", "median s", "max s"))
    for name, args in cases:
        times = []
        for _ in range(a.runs):
            dt, out = run([a.bin] + args[:1] + ["--db", db] + args[1:], env=env)
            times.append(dt)
        print("%-38s %9.3f %9.3f" % (name, statistics.median(times), max(times)), flush=True)
    if tmp is not None and not a.keep:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    elif tmp is not None:
        log("store kept: %s" % db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
