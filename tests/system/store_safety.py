#!/usr/bin/env python3
"""store_safety.py BIN - the SQLite store against what an attacker or an operator does to it.

1. Growth: hostile messages generated here (1,000 recipients with long diagnostics, a 100 KB
   Message-ID, 100 KB Reporting-MTA and Envelope-Id, and all at once) each grow the store by
   at most 10 times their own size plus 1 MB (limits.h, "What the store keeps").
2. A dangling symbolic link at the store path: pipe answers 75 and creates nothing at its
   target.
3. The store moved away (mv) while 16 pipes write 300 messages: pipes answer 0 or 75, and go
   on into a new store at the path once the moved file's writers have finished, with nobody
   deleting anything; every message answered 0 is in the old file or the new one, both pass
   PRAGMA integrity_check.
4. The store replaced during the same storm by a file renamed over it (mv), once a backup
   made with SQLite's backup API, once a store bouncepipe itself wrote (its commits carry its
   own mark): pipes answer 0 or 75, every message is answered 0 in the end, the store passes
   PRAGMA integrity_check, and every message answered 0 after the replacement is in it.
5. The documented way to restore (SQLite's backup API into the live store, what
   `sqlite3 s.db ".restore backup.db"` does) during the same storm, from a backup of another
   store: not mistaken for a replaced file; the store is whole and holds every message
   answered 0 after the restore.
6. A long-lived writer (acct reading a live stream) keeps the moved file's -wal in use: a pipe
   answers 75 and says why; when acct writes again it follows the path (its record lands in
   the new store), and the pipe then goes on without anyone deleting a file.
7. The moved file's only writer killed (SIGKILL) with its commit still in the -wal: a new store
   at the path is refused (75) and the message says why; docs/store.md's recovery (give the
   -wal to the moved file) puts the commit into it, and pipes go on.
8. The store moved away and a store bouncepipe wrote renamed into its place, again and again
   during one storm: every file (each moved one, the last) passes PRAGMA integrity_check and
   every message answered 0 is in one of them.  Writers of two files must never use one -wal
   at once (a checkpoint copies every frame into the checkpointing connection's file): this
   found what cases 3 and 4 found only now and then (a message answered 0 in no file, a store
   whose pages came from another).
(Copying a file over a live store in place, `cp backup s.db`, is not among them: it keeps the
inode, so no writer can tell, and docs/store.md says never to do it.)
"""
import concurrent.futures
import os
import random
import shutil
import sqlite3
import string
import subprocess
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
    """A DSN with @recipients blocks and chosen lengths of the fields a message controls, filled
    with text that does not compress (PostgreSQL compresses long values: runs of one letter
    would hide what is stored)."""
    rnd = random.Random(n)
    alphabet = string.ascii_letters + string.digits

    def filler(k):
        return "".join(rnd.choices(alphabet, k=k))

    boundary = f"H{n:06d}"
    mid = "<" + filler(msgid_len) + f".{n}@example.net>"
    blocks = []
    for i in range(recipients):
        r = f"user{n}x{i}@example.com"
        blocks.append(f"Final-Recipient: rfc822; {r}\nAction: failed\nStatus: 5.1.1\n"
                      f"Diagnostic-Code: smtp; 550 5.1.1 {filler(diag_len)} {i}\n")
    return (f"From: MAILER-DAEMON@example.net\nTo: bounces@bounces.example.com\nSubject: failure {n}\n"
            f"Date: Tue, 10 Mar 2026 10:00:00 +0000\nMessage-Id: {mid}\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\n\n"
            f"--{boundary}\nContent-Type: text/plain\n\nDelivery failed.\n\n"
            f"--{boundary}\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; {filler(mta_len)}.example.net\nOriginal-Envelope-Id: {filler(envid_len)}\n\n"
            + "\n".join(blocks)
            + f"\n--{boundary}\nContent-Type: text/rfc822-headers\n\nMessage-Id: <{filler(msgid_len)}@example.com>\n"
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


def storm(box, action, at, attempts=200, first=0, count=STORM):
    """Pipe @count messages with WORKERS workers, retrying 75s as an MTA does; run @action once
    @at messages were answered.  @return (message-id -> monotonic time of its 0, exit codes)."""
    messages = [(f"<dsn.{i}.20260310@mx1.example.net>", dsn(i, [f"s{i}@example.org"]))
                for i in range(first, first + count)]
    answered, codes, lock = {}, {}, threading.Lock()
    done = [0]
    fired = threading.Event()

    def deliver(item):
        mid, msg = item
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


def storm_around(box, label, action, count=STORM):
    """A storm during which @action runs once a third of it was answered: pipes answer 0 or 75,
    and in the end (retrying 75s, nobody deleting anything) every message was answered 0.
    @return (message-id -> time of its 0, the message-ids whose answered pipe began after @action)"""
    done_at = [None]

    def act():
        action()
        done_at[0] = time.monotonic()

    answered, codes = storm(box, act, count // 3, count=count)
    print(f"  {label}: exit codes {codes}")
    check(set(codes) <= {0, 75}, "pipe exits 0 or 75 only")
    check(len(answered) == count, f"every message answered 0 in the end ({len(answered)} of {count})")
    return answered, {m for m, t in answered.items() if t > done_at[0]}


def test_moved(binary):
    box = Sandbox(binary)
    try:
        old = box.db + ".old"
        answered, _ = storm_around(box, "moved", lambda: os.rename(box.db, old))
        ids = set(answered)
        in_old, in_new = recorded(old, ids), recorded(box.db, ids)
        print(f"  {len(in_old)} messages in the moved file, {len(in_new)} in the new one")
        check(ids <= in_old | in_new, "every message answered 0 is in the old file or the new one")
        check(not os.path.exists(old + "-wal") or os.path.getsize(old + "-wal") == 0,
              "the moved file needs no -wal of its own")
    finally:
        box.cleanup()


def online_backup(src_path, dst_path):
    """SQLite's backup API, what `sqlite3 SRC ".backup DST"` and ".restore" do."""
    src = sqlite3.connect(src_path, timeout=60)
    dst = sqlite3.connect(dst_path, timeout=60)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def test_replaced(binary, made_by):
    box = Sandbox(binary)
    try:
        rc, _ = box.pipe(dsn(100000, ["first@example.org"]))
        check(rc == 0, "a first message")
        new = os.path.join(box.dir, "new.db")
        if made_by == "backup":
            online_backup(box.db, new)
        else:  # a store bouncepipe wrote itself: its commits carry its own file's mark
            other = Sandbox(binary)
            try:
                rc, err = other.pipe(dsn(100001, ["other@example.org"]))
                check(rc == 0, f"a store of its own ({err.strip()[-200:]})")
                shutil.copyfile(other.db, new)  # it was closed: no -wal to take along
            finally:
                other.cleanup()
        if os.geteuid() == 0:
            os.chown(new, NOBODY, NOBODY)
        answered, after = storm_around(box, f"replaced by {made_by}", lambda: os.rename(new, box.db))
        got = recorded(box.db, set(answered))
        check(len(after) > 0 and after <= got,
              f"the {len(after)} messages answered 0 after the replacement are in the store")
    finally:
        box.cleanup()


def test_swapped(binary, swaps=5, interval=0.15):
    box = Sandbox(binary)
    other = Sandbox(binary)
    try:
        rc, _ = box.pipe(dsn(100000, ["first@example.org"]))
        rc2, err = other.pipe(dsn(100001, ["other@example.org"]))
        check(rc == 0 and rc2 == 0, f"two stores ({err.strip()[-200:]})")
        template = os.path.join(box.dir, "template.db")
        shutil.copyfile(other.db, template)  # closed: no -wal to take along
        moved = []

        def swap_again_and_again():
            for k in range(swaps):
                fresh = os.path.join(box.dir, f"fresh{k}.db")
                shutil.copyfile(template, fresh)
                if os.geteuid() == 0:
                    os.chown(fresh, NOBODY, NOBODY)
                old = os.path.join(box.dir, f"old{k}.db")
                os.rename(box.db, old)
                moved.append(old)
                os.rename(fresh, box.db)
                time.sleep(interval)

        swapper = threading.Thread(target=swap_again_and_again)
        answered, _ = storm_around(box, f"moved and replaced {swaps} times", swapper.start, count=STORM // 2)
        swapper.join()
        ids, got = set(answered), set()
        for path in moved + [box.db]:
            got |= recorded(path, ids)
        check(ids <= got, f"every message answered 0 is in one of the {len(moved) + 1} files "
                          f"({len(ids - got)} in none)")
    finally:
        box.cleanup()
        other.cleanup()


def test_restored(binary):
    box = Sandbox(binary)
    other = Sandbox(binary)
    try:
        rc, _ = box.pipe(dsn(100000, ["first@example.org"]))
        rc2, _ = other.pipe(dsn(100001, ["other@example.org"]))
        check(rc == 0 and rc2 == 0, "two stores")
        backup = os.path.join(box.dir, "backup.db")
        online_backup(other.db, backup)  # a backup of another store: its marks are not this file's
        answered, after = storm_around(box, "restored", lambda: online_backup(backup, box.db))
        got = recorded(box.db, set(answered) | {"<dsn.100001.20260310@mx1.example.net>"})
        check("<dsn.100001.20260310@mx1.example.net>" in got, "the store holds the restored backup")
        check(len(after) > 0 and after <= got, f"the {len(after)} messages answered 0 after the restore are in it")
    finally:
        box.cleanup()
        other.cleanup()


ACCT_HEADER = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat\n"


def acct_record(n):
    return (f"b,2026-11-20 10:{n % 60:02d}:04+0000,bounces@bounces.example.com,acct{n}@example.net,failed,"
            f"5.1.1 (bad destination mailbox address),smtp;550 5.1.1 user unknown {n},mx.example.net,bad-mailbox\n")


def acct_events(path):
    if not os.path.exists(path):
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM ledger WHERE fingerprint LIKE 'acct:%'").fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
    finally:
        con.close()


def wait_until(seconds, predicate):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def start_acct(box, n):
    """`bouncepipe acct` reading a live stream on its stdin, once it committed record @n."""
    cmd = box.command("--quiet")
    cmd[cmd.index("pipe")] = "acct"
    acct = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=box.env())
    acct.stdin.write((ACCT_HEADER + acct_record(n)).encode())
    acct.stdin.flush()
    check(wait_until(15, lambda: acct_events(box.db) == 1), "acct committed a record (idle commit)")
    return acct


def test_long_lived_writer(binary):
    box = Sandbox(binary)
    acct = None
    try:
        acct = start_acct(box, 1)
        old = box.db + ".old"
        os.rename(box.db, old)
        rc, err = box.pipe(dsn(1, ["a@example.org"]))
        print(f"  pipe while acct holds the moved file: {rc}: {err.strip()[-160:]}")
        check(rc == 75 and "still use it" in err, "75, and it says the moved file's -wal is in use")
        acct.stdin.write(acct_record(2).encode())
        acct.stdin.flush()
        check(wait_until(20, lambda: acct_events(box.db) == 1),
              "acct's next record goes into the store at the path (it let go of the moved file)")
        check(acct_events(old) == 1, "the moved file kept acct's first record")
        rc, err = box.pipe(dsn(1, ["a@example.org"]))
        check(rc == 0, f"then pipe goes on without anyone deleting a file ({err.strip()[-200:]})")
        acct.stdin.close()
        check(acct.wait(30) == 0, "acct exits 0 at the end of its stream")
        recorded(box.db, set())
        recorded(old, set())
    finally:
        if acct is not None and acct.poll() is None:
            acct.kill()
            acct.wait()
        box.cleanup()


def test_killed_writer(binary):
    """The moved file's last writer killed before its commits reached the file: the -wal at the
    old name holds them, so a new store there is refused, with a message, until the operator
    does what docs/store.md says; then nothing is lost."""
    box = Sandbox(binary)
    acct = None
    try:
        acct = start_acct(box, 7)
        acct.kill()
        acct.wait()
        old = box.db + ".old"
        os.rename(box.db, old)
        rc, err = box.pipe(dsn(2, ["b@example.org"]))
        print(f"  pipe beside a killed writer's -wal: {rc}: {err.strip()[-200:]}")
        check(rc == 75 and "may not have reached" in err, "75, and it says the -wal holds commits of another file")
        check(acct_events(old) == 0, "the moved file lacks the killed writer's commit (it is in the -wal)")
        # docs/store.md, "Moving, replacing": give the -wal to the file it belongs to
        os.rename(box.db + "-wal", old + "-wal")
        os.unlink(box.db + "-shm")
        con = sqlite3.connect(old)
        con.execute("PRAGMA wal_checkpoint")
        con.close()
        check(acct_events(old) == 1, "after the recovery the moved file has it")
        rc, err = box.pipe(dsn(2, ["b@example.org"]))
        check(rc == 0, f"and pipe goes on into a new store ({err.strip()[-200:]})")
        recorded(old, set())
        recorded(box.db, set())
    finally:
        if acct is not None and acct.poll() is None:
            acct.kill()
            acct.wait()
        box.cleanup()


def main():
    binary = sys.argv[1]
    test_growth(binary)
    test_symlink(binary)
    test_moved(binary)
    test_replaced(binary, "backup")
    test_replaced(binary, "store")
    test_restored(binary)
    test_swapped(binary)
    test_long_lived_writer(binary)
    test_killed_writer(binary)


if __name__ == "__main__":
    main()
