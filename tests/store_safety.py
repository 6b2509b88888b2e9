#!/usr/bin/env python3
"""store_safety.py BIN - the SQLite store against what an attacker or an operator does to it.

1. Growth: hostile messages generated here (1,000 recipients with long diagnostics, a 100 KB
   Message-ID, 100 KB Reporting-MTA and Envelope-Id, and all at once) each grow the store by
   at most 10 times their own size plus 1 MB (limits.h, "What the store keeps").
2. A dangling symbolic link at the store path: pipe answers 75 and creates nothing at its
   target.
3. The store moved away (mv) while 16 pipes write 300 messages: every message answered 0 is in
   the old file or the new one, and both pass PRAGMA integrity_check.
4. (--replaced, not run by ctest: it still FAILS, see docs/store.md "Moving, replacing") The
   store replaced (a backup copied beside it and renamed over it) during the same storm: pipes
   answer 0 or 75, the store is never malformed, and every message answered 0 after the
   replacement is in it.
"""
import concurrent.futures
import os
import shutil
import sqlite3
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import NOBODY, Sandbox, check, dsn

WORKERS = 16
STORM = int(os.environ.get("BP_SAFETY_MESSAGES", "300"))


def store_bytes(box):
    """Size of the database after a checkpoint (what stays on disk)."""
    con = sqlite3.connect(box.db, timeout=30)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return sum(os.path.getsize(box.db + s) for s in ("", "-wal") if os.path.exists(box.db + s))


def hostile(n, recipients, msgid_len=60, mta_len=20, envid_len=10, diag_len=40):
    """A DSN with @recipients blocks and chosen lengths of the fields a message controls."""
    boundary = f"H{n:06d}"
    mid = "<" + "m" * msgid_len + f".{n}@example.net>"
    blocks = []
    for i in range(recipients):
        r = f"user{n}x{i}@example.com"
        blocks.append(f"Final-Recipient: rfc822; {r}\nAction: failed\nStatus: 5.1.1\n"
                      f"Diagnostic-Code: smtp; 550 5.1.1 {'d' * diag_len} {i}\n")
    return (f"From: MAILER-DAEMON@example.net\nTo: bounces@bounces.example.com\nSubject: failure {n}\n"
            f"Date: Tue, 10 Mar 2026 10:00:00 +0000\nMessage-Id: {mid}\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\n\n"
            f"--{boundary}\nContent-Type: text/plain\n\nDelivery failed.\n\n"
            f"--{boundary}\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; {'r' * mta_len}.example.net\nOriginal-Envelope-Id: {'e' * envid_len}\n\n"
            + "\n".join(blocks)
            + f"\n--{boundary}\nContent-Type: text/rfc822-headers\n\nMessage-Id: <{'o' * msgid_len}@example.com>\n"
            f"\n--{boundary}--\n").encode()


def test_growth(binary):
    box = Sandbox(binary)
    try:
        cases = [
            ("1,000 recipients and a 100 KB Message-ID", hostile(1, 1000, msgid_len=100000)),
            ("1,000 recipients, 100 KB Reporting-MTA and Envelope-Id",
             hostile(2, 1000, mta_len=100000, envid_len=100000)),
            ("1,000 recipients, long diagnostics", hostile(3, 1000, diag_len=2000)),
            ("all at once", hostile(4, 1000, msgid_len=100000, mta_len=100000, envid_len=1000, diag_len=1000)),
        ]
        rc, err = box.pipe(hostile(0, 1))  # the schema, so that it is not counted
        check(rc == 0, f"a first message is recorded ({err.strip()[-200:]})")
        for label, msg in cases:
            before = store_bytes(box)
            rc, err = box.pipe(msg)
            check(rc == 0, f"{label}: accepted ({err.strip()[-200:]})")
            grown = store_bytes(box) - before
            bound = 10 * len(msg) + 1024 * 1024
            print(f"  {label}: message {len(msg)} bytes, store grew {grown} bytes (bound {bound})")
            check(grown <= bound, f"{label}: the store grows by at most 10x the message plus 1 MB")
        n = box.scalar("SELECT count(*) FROM suppressions WHERE address LIKE 'user1x%'")
        check(n == 1000, f"the recipients of a capped message are still suppressed (got {n}, want 1000)")
    finally:
        box.cleanup()


def test_symlink(binary):
    box = Sandbox(binary)
    try:
        target = os.path.join(box.dir, "elsewhere.db")
        os.symlink(target, box.db)
        rc, err = box.pipe(dsn(1, ["a@example.com"]))
        check(rc == 75, f"a dangling symlink at the store path: 75 (got {rc})")
        check("symbolic link" in err, "and it says why")
        check(not os.path.exists(target), "nothing created at the link's target")
    finally:
        box.cleanup()


def recorded(path, msgids):
    """Which of @msgids the store at @path holds."""
    if not os.path.exists(path):
        return set()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        got = {r[0] for r in con.execute("SELECT message_id FROM processed")}
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()
    check(ok == "ok", f"{os.path.basename(path)}: PRAGMA integrity_check is ok")
    return got & msgids


def storm(box, action, at, attempts=200, skip=()):
    """Pipe STORM messages with WORKERS workers, retrying 75s as an MTA does; run @action once
    @at messages were answered.  @return (message-id -> monotonic time of its 0, exit codes)."""
    messages = [(f"<dsn.{i}.20260310@mx1.example.net>", dsn(i, [f"s{i}@example.org"])) for i in range(STORM)]
    answered, codes, lock = {}, {}, threading.Lock()
    done = [0]
    fired = threading.Event()

    def deliver(item):
        mid, msg = item
        if mid in skip:
            return
        for attempt in range(attempts):
            start = time.monotonic()
            rc, err = box.pipe(msg)
            with lock:
                codes[rc] = codes.get(rc, 0) + 1
            if rc == 0:
                with lock:
                    answered[mid] = start
                    done[0] += 1
                    if done[0] >= at and not fired.is_set():
                        fired.set()
                        action()
                return
            if rc != 75:
                return
            time.sleep(0.02 * (1 + attempt % 10))

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(deliver, messages))
    return answered, codes


def test_moved(binary):
    box = Sandbox(binary)
    try:
        old = box.db + ".old"
        answered, codes = storm(box, lambda: os.rename(box.db, old), STORM // 3, attempts=20)
        print(f"  moved: exit codes {codes}")
        check(set(codes) <= {0, 75}, "pipe exits 0 or 75 only")
        # what docs/store.md says to do after moving a store in use: once its writers are gone,
        # the -wal and -shm left at the old name hold nothing the moved file lacks
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(box.db + suffix) and (suffix or os.path.getsize(box.db) == 0):
                os.unlink(box.db + suffix)
        more, codes = storm(box, lambda: None, STORM + 1, skip=set(answered))
        answered.update(more)
        print(f"  after the stray files were removed: exit codes {codes}")
        check(len(answered) == STORM, "every message answered 0 in the end")
        ids = set(answered)
        in_old, in_new = recorded(old, ids), recorded(box.db, ids)
        print(f"  {len(in_old)} messages in the moved file, {len(in_new)} in the new one")
        check(ids <= in_old | in_new, "every message answered 0 is in the old file or the new one")
    finally:
        box.cleanup()


def test_replaced(binary):
    box = Sandbox(binary)
    try:
        rc, _ = box.pipe(dsn(100000, ["first@example.org"]))
        check(rc == 0, "a first message")
        backup = os.path.join(box.dir, "backup.db")
        src = sqlite3.connect(box.db)
        dst = sqlite3.connect(backup)
        src.backup(dst)  # the online backup API: what `sqlite3 .backup` does
        src.close()
        dst.close()
        replaced_at = [None]

        def replace():
            tmp = box.db + ".tmp"
            shutil.copyfile(backup, tmp)
            if os.geteuid() == 0:
                os.chown(tmp, NOBODY, NOBODY)
            os.rename(tmp, box.db)
            replaced_at[0] = time.monotonic()

        answered, codes = storm(box, replace, STORM // 3)
        print(f"  replaced: exit codes {codes}")
        check(set(codes) <= {0, 75}, "pipe exits 0 or 75 only")
        after = {m for m, t in answered.items() if t > replaced_at[0]}
        got = recorded(box.db, set(answered))
        check(after <= got, f"the {len(after)} messages answered 0 after the replacement are in the store")
    finally:
        box.cleanup()


def main():
    binary = sys.argv[1]
    test_growth(binary)
    test_symlink(binary)
    test_moved(binary)
    if "--replaced" in sys.argv[2:]:
        test_replaced(binary)


if __name__ == "__main__":
    main()
