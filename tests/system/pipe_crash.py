#!/usr/bin/env python3
"""pipe_crash.py BIN - SIGKILL `bouncepipe pipe` at random points while it writes.

Each round delivers one 20-recipient DSN (a longer transaction, so kills land inside it) and
kills the process after a random delay spread over its whole run, while 3 other writers keep
the lock busy.  After all rounds the database must pass PRAGMA integrity_check, and every
message (killed or not) delivered again must end up stored exactly once: one processed row,
one ledger row per recipient.  A kill can land after the commit: then the redelivery is a
duplicate, which is the point.
"""
import random
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import Sandbox, check, dsn

ROUNDS = 60
RECIPIENTS = 20


def main():
    box = Sandbox(sys.argv[1])
    try:
        random.seed(1122)
        # warm up: the schema exists, and a typical run's duration is known
        rc, err = box.pipe(dsn(900000, ["warm@example.org"]))
        check(rc == 0, f"first delivery works ({err.strip()})")
        t0 = time.monotonic()
        for i in range(5):
            box.pipe(dsn(900001 + i, [f"warm{i}@example.org"]))
        typical = (time.monotonic() - t0) / 5

        stop = threading.Event()

        def background(k):  # other writers, so kills also hit lock waits and contended commits
            n = 0
            while not stop.is_set():
                box.pipe(dsn(800000 + k * 10000 + n, [f"bg{k}.{n}@example.net"]))
                n += 1

        workers = [threading.Thread(target=background, args=(k,)) for k in range(3)]
        for w in workers:
            w.start()
        messages = []
        killed = 0
        for r in range(ROUNDS):
            rcpts = [f"crash{r}.{k}@example.com" for k in range(RECIPIENTS)]
            msg = dsn(r, rcpts)
            messages.append((msg, rcpts))
            p = box.start(msg)
            try:
                p.stdin.write(msg)
                p.stdin.close()
            except BrokenPipeError:
                pass
            time.sleep(random.uniform(0, typical * 2.5))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed += 1
            p.wait()
            p.stderr.close()
        stop.set()
        for w in workers:
            w.join()
        print(f"{ROUNDS} rounds, {killed} processes killed mid-run (typical run {typical * 1000:.0f} ms)")
        check(killed >= ROUNDS // 4, "a good share of the runs were killed")
        check(box.integrity() == "ok", "PRAGMA integrity_check is ok after the kills")
        for msg, rcpts in messages:
            rc, err = box.pipe(msg)
            if rc != 0:
                check(False, f"redelivery accepted ({rc}: {err.strip()})")
        check(box.integrity() == "ok", "PRAGMA integrity_check is ok after redelivery")
        for msg, rcpts in messages:
            n = box.scalar("SELECT count(*) FROM ledger WHERE recipient LIKE ?", (rcpts[0].split('.')[0] + ".%",))
            if n != RECIPIENTS:
                check(False, f"{rcpts[0]}: {n} ledger rows, want {RECIPIENTS}")
        check(True, f"every message stored exactly once ({RECIPIENTS} rows each)")
        dup = box.scalar("SELECT count(*) FROM (SELECT fingerprint, recipient FROM ledger GROUP BY 1, 2 "
                         "HAVING count(*) > 1)")
        check(dup == 0, "no (message, recipient) twice anywhere")
        rows = box.scalar("SELECT count(*) FROM processed")
        ledger = box.scalar("SELECT count(DISTINCT fingerprint) FROM ledger")
        check(rows == ledger, f"every processed message has its ledger rows and no more ({rows})")
    finally:
        box.cleanup()


if __name__ == "__main__":
    main()
