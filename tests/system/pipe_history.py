#!/usr/bin/env python3
"""pipe_history.py BIN - concurrent pipes building up the same addresses' histories.

480 DSNs for a pool of 40 addresses (a few name two of them; a few addresses take most), dated over 90 days and piped in
a shuffled order by 16 workers at once (exit 75 retried), so that writers fold the same
addresses concurrently and most rows arrive out of evidence-time order: soft bounces (mailbox
full) that reach the soft threshold, and hard ones.  The store keeps each address's fold state
(derive_state) and goes on from it, absorbing or re-folding rows that arrive late; the
suppression list must come out exactly as a sequential `bouncepipe replay` of the same
messages in evidence-time order (where no row arrives late) makes it in a fresh store.  Both stores must pass PRAGMA integrity_check.
"""
import concurrent.futures
import datetime
import email.utils
import os
import random
import sqlite3
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import Sandbox, check, dsn

WORKERS = 16
POOL = 40
MESSAGES = 480
COLUMNS = "address, domain, reason, source_kind, first_seen, last_seen, count, lifted, lift_reason, lifted_at"


def main():
    binary = sys.argv[1]
    rng = random.Random(20261122)
    pool = [f"member{i}@example.{('com', 'net', 'org')[i % 3]}" for i in range(POOL)]
    weights = [1 / (i + 1) for i in range(POOL)]
    start = datetime.datetime(2026, 1, 5, 8, 0, tzinfo=datetime.timezone.utc)
    # distinct minutes: rows of one address never tie on evidence time, so the fold's order
    # does not depend on the ledger ids, which differ between the two stores
    minutes = rng.sample(range(90 * 24 * 60), MESSAGES)
    messages = []
    for n in range(MESSAGES):
        # a few addresses bounce all the time, most now and then (Zipf-like), so that some
        # histories stay under the soft threshold
        rcpts = list(dict.fromkeys(rng.choices(pool, weights, k=2 if n % 12 == 0 else 1)))
        date = email.utils.format_datetime(start + datetime.timedelta(minutes=minutes[n]))
        if rng.random() < 0.95:
            messages.append(dsn(n, rcpts, "5.2.2", "552", "Mailbox full: quota exceeded", date=date))
        else:
            messages.append(dsn(n, rcpts, date=date))
    box = Sandbox(binary, busy_timeout_ms=10000)
    try:
        order = list(range(MESSAGES))
        rng.shuffle(order)
        codes = {}

        def deliver(i):
            for attempt in range(50):
                rc, err = box.pipe(messages[i])
                codes[rc] = codes.get(rc, 0) + 1
                if rc == 0:
                    return 0
                if rc != 75:
                    return (rc, err)
                time.sleep(0.05 * (attempt + 1))
            return (75, "gave up after 50 attempts")

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool_ex:
            results = list(pool_ex.map(deliver, order))
        print(f"{MESSAGES} deliveries by {WORKERS} workers in {time.monotonic() - started:.1f} s; exit codes {codes}")
        check(all(r == 0 for r in results), "every delivery accepted")
        check(box.integrity() == "ok", "PRAGMA integrity_check is ok")

        # the reference: the same messages, one process, in evidence-time order, so that every
        # row comes after the address's state and none takes the out-of-order paths
        files = os.path.join(box.dir, "messages")
        os.mkdir(files)
        for rank, n in enumerate(sorted(range(MESSAGES), key=lambda n: minutes[n])):
            with open(os.path.join(files, f"{rank:04d}.eml"), "wb") as f:
                f.write(messages[n])
        ref_db = os.path.join(box.dir, "reference.db")
        env = dict(os.environ)
        env.pop("BOUNCEPIPE_DB", None)
        env.pop("BOUNCEPIPE_CONFIG", None)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        p = subprocess.run([box.binary, "replay", "--db", ref_db, files], env=env, capture_output=True)
        check(p.returncode == 0, f"the reference replay succeeds ({p.stderr.decode(errors='replace')[:200]})")
        con = sqlite3.connect(ref_db)
        try:
            want = con.execute(f"SELECT {COLUMNS} FROM suppressions ORDER BY address").fetchall()
            check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "reference integrity_check is ok")
            ref_ledger = con.execute("SELECT count(*) FROM ledger").fetchone()[0]
            ref_addresses = [r[0] for r in con.execute("SELECT DISTINCT recipient FROM ledger")]
        finally:
            con.close()
        got = box.query(f"SELECT {COLUMNS} FROM suppressions ORDER BY address")
        check(box.scalar("SELECT count(*) FROM ledger") == ref_ledger, f"{ref_ledger} ledger rows, as the reference")
        kinds = {row[3] for row in want}
        check("soft-threshold" in kinds and "bounce" in kinds and 0 < len(want) < len(ref_addresses),
              f"some histories reach the soft threshold, some a hard bounce, some neither "
              f"({len(want)} of {len(ref_addresses)} addresses suppressed: {sorted(kinds)})")
        for g, w in zip(got, want):
            if g != w:
                print("got: ", g)
                print("want:", w)
                break
        check(got == want, "the suppression list equals the sequential replay's, row for row")
        check(box.scalar("SELECT count(*) FROM derive_state") == len(ref_addresses),
              f"every one of the {len(ref_addresses)} addresses has its fold state kept")
    finally:
        box.cleanup()


if __name__ == "__main__":
    main()
