#!/usr/bin/env python3
"""pipe_concurrency.py BIN - 32 concurrent `bouncepipe pipe` processes, 3,200 deliveries.

1,600 distinct messages (1,520 DSNs, 80 unrecognised replies), each delivered twice, in a
shuffled order, by 32 workers at once, as an MTA would: exit 75 means "deliver again later"
and is retried.  Afterwards nothing may be lost (every message recorded, every suppressing
recipient suppressed, every unrecognised message quarantined) and nothing counted twice (one
processed row per message, one ledger row per event, one quarantine file per message, count 1
per suppression), and the database must pass PRAGMA integrity_check.
The store's lock wait is the product default (busy_timeout_ms 10000), so this also shows
that 32 writers take turns within it (retries after 75 are counted and printed).
BP_PIPE_TEST_MESSAGES overrides the number of distinct messages (default 1600),
BP_PIPE_TEST_BUSY_MS the lock wait.
"""
import concurrent.futures
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import Sandbox, check, dsn, unrecognised

WORKERS = 32


def main():
    binary = sys.argv[1]
    n_messages = int(os.environ.get("BP_PIPE_TEST_MESSAGES", "1600"))
    n_unrec = n_messages // 20
    box = Sandbox(binary, busy_timeout_ms=int(os.environ.get("BP_PIPE_TEST_BUSY_MS", "10000")))
    try:
        messages = []
        suppress_rcpts = set()
        for i in range(n_messages - n_unrec):
            rcpt = f"user{i}@example.{('com', 'net', 'org')[i % 3]}"
            if i % 10 == 0:  # a mailbox-full bounce: soft, counted, not suppressed
                messages.append(dsn(i, [rcpt], "5.2.2", "552", "Mailbox full: quota exceeded"))
            else:
                messages.append(dsn(i, [rcpt]))
                suppress_rcpts.add(rcpt)
        for i in range(n_unrec):
            messages.append(unrecognised(i))
        deliveries = messages * 2
        random.seed(20261122)
        random.shuffle(deliveries)

        codes = {}
        retries = [0]

        def deliver(msg):
            for attempt in range(50):
                rc, err = box.pipe(msg)
                codes[rc] = codes.get(rc, 0) + 1
                if rc == 0:
                    return 0
                if rc != 75:
                    return (rc, err)
                retries[0] += 1
                time.sleep(0.05 * (attempt + 1))
            return (75, "gave up after 50 attempts")

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            results = list(pool.map(deliver, deliveries))
        elapsed = time.monotonic() - started
        failures = [r for r in results if r != 0]
        print(f"{len(deliveries)} deliveries by {WORKERS} workers in {elapsed:.1f} s; exit codes {codes}; "
              f"{retries[0]} retries after 75")
        check(not failures, f"every delivery accepted (first failure: {failures[:1]})")
        check(set(codes) <= {0, 75}, "pipe exits 0 or 75 only")
        check(box.integrity() == "ok", "PRAGMA integrity_check is ok")
        check(box.scalar("SELECT count(*) FROM processed") == n_messages, f"{n_messages} messages recorded, once each")
        check(box.scalar("SELECT count(*) FROM processed WHERE state = 2") == n_unrec,
              f"{n_unrec} remembered as unrecognised")
        check(box.scalar("SELECT count(*) FROM ledger") == n_messages, "one ledger row per event, none twice")
        check(box.scalar("SELECT count(*) FROM (SELECT fingerprint, recipient FROM ledger "
                         "GROUP BY 1, 2 HAVING count(*) > 1)") == 0, "no (message, recipient) twice")
        got = {r[0] for r in box.query("SELECT address FROM suppressions WHERE lifted = 0")}
        check(got == suppress_rcpts, f"exactly the {len(suppress_rcpts)} bad mailboxes are suppressed")
        check(box.scalar("SELECT max(count) FROM suppressions") == 1, "each suppression counted once")
        check(len(box.quarantined()) == n_unrec, f"{n_unrec} unrecognised messages quarantined, once each")
        tmp = os.path.join(box.quarantine, "tmp")
        check(not os.listdir(tmp), "nothing left in quarantine/tmp")
    finally:
        box.cleanup()


if __name__ == "__main__":
    main()
