#!/usr/bin/env python3
"""pipe_failures.py BIN - every local failure of pipe mode is exit 75 and leaves nothing half-written.

Cases: an unwritable database, a directory where the database cannot be created, a full disk
(RLIMIT_FSIZE, as `ulimit -f` sets it: the program ignores SIGXFSZ itself so that the write
fails with EFBIG) for a recognised message (store) and an unrecognised one (quarantine), the
store locked past busy_timeout_ms, a missing or broken configuration, a usage error, running
as root.  After each failure the counts of the store are unchanged, PRAGMA integrity_check is
ok, and delivering the message again once the cause is gone stores it exactly once.  Also:
the same message twice changes nothing the second time.
"""
import os
import tempfile
import resource
import sqlite3
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import NOBODY, Sandbox, check, dsn, unrecognised


def limit_file_size(blocks):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (blocks * 1024, resource.RLIM_INFINITY))
    return apply


def main():
    box = Sandbox(sys.argv[1], busy_timeout_ms=400)
    try:
        rc, err = box.pipe(dsn(1, ["first@example.org"]))
        check(rc == 0, f"a first message is recorded ({err.strip()})")
        before = box.snapshot()
        rc, _ = box.pipe(dsn(1, ["first@example.org"]))
        check(rc == 0 and box.snapshot() == before, "the same message again changes nothing")

        # --- full disk: the store's write fails mid-transaction -----------------------------
        # 40 KiB lets the store open (its -shm index is 32 KiB) but not write the WAL frames
        # of a 300-recipient report.
        con = sqlite3.connect(box.db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        before = box.snapshot()
        rcpts = [f"full{k}@example.org" for k in range(300)]
        msg = dsn(2, rcpts)
        rc, err = box.pipe(msg, preexec_fn=limit_file_size(40))
        check(rc == 75, f"a full disk while recording is exit 75 (got {rc}: {err.strip()[:300]})")
        check(box.integrity() == "ok" and box.snapshot() == before, "... and the store is unchanged")
        rc, err = box.pipe(msg, preexec_fn=limit_file_size(0))
        check(rc == 75, f"a full disk when opening the store is exit 75 (got {rc})")
        check(box.integrity() == "ok" and box.snapshot() == before, "... and the store is unchanged")
        rc, _ = box.pipe(msg)
        check(rc == 0 and box.scalar("SELECT count(*) FROM ledger WHERE recipient LIKE 'full%'") == 300,
              "... and the message delivered again is stored once")

        # --- full disk: the quarantine's write fails --------------------------------------
        rc, _ = box.pipe(unrecognised(30))
        check(rc == 0 and len(box.quarantined()) == 1, "an unrecognised message is quarantined")
        before = box.snapshot()
        q_before = box.quarantined()
        msg = unrecognised(3) + b"padding to make it larger than the file size limit\n" * 1200
        rc, err = box.pipe(msg, preexec_fn=limit_file_size(40))
        check(rc == 75, f"a full disk while quarantining is exit 75 (got {rc}: {err.strip()[:300]})")
        check(box.quarantined() == q_before and box.snapshot() == before, "... and nothing was kept or recorded")
        check(not os.listdir(os.path.join(box.quarantine, "tmp")), "... and nothing is left in quarantine/tmp")
        rc, _ = box.pipe(msg)
        check(rc == 0 and len(box.quarantined()) == len(q_before) + 1, "... and delivered again it is quarantined")
        rc, _ = box.pipe(msg)
        check(rc == 0 and len(box.quarantined()) == len(q_before) + 1, "... once, however often it comes")

        # --- the store locked past the timeout -------------------------------------------
        before = box.snapshot()
        locker = sqlite3.connect(box.db, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        t0 = time.monotonic()
        msg = dsn(4, ["busy@example.org"])
        rc, err = box.pipe(msg)
        waited = time.monotonic() - t0
        locker.execute("ROLLBACK")
        locker.close()
        check(rc == 75, f"a store locked past busy_timeout_ms is exit 75 (got {rc} after {waited:.2f} s)")
        check(0.3 <= waited < 10, f"... after waiting about the timeout ({waited:.2f} s)")
        check(box.snapshot() == before, "... and nothing was recorded")
        rc, _ = box.pipe(msg)
        check(rc == 0, "... and once the lock is gone the message is accepted")

        # --- an unwritable database --------------------------------------------------------
        if box.as_root:
            os.chown(box.db, NOBODY, NOBODY)
        before = box.snapshot()
        os.chmod(box.db, 0o440)
        msg = dsn(5, ["ro@example.org"])
        rc, err = box.pipe(msg)
        check(rc == 75, f"an unwritable database is exit 75 (got {rc}: {err.strip()[:200]})")
        os.chmod(box.db, 0o640)
        check(box.snapshot() == before and box.integrity() == "ok", "... and the store is unchanged")
        rc, _ = box.pipe(msg)
        check(rc == 0 and box.snapshot()[0] == before[0] + 1, "... and once writable again it is recorded once")

        # --- a database that cannot be created ---------------------------------------------
        rc, err = box.pipe(dsn(6, ["x@example.org"]), "--db", "/nonexistent-dir/store.db")
        check(rc == 75, f"a database that cannot be created is exit 75 (got {rc})")

        # --- configuration and usage errors ------------------------------------------------
        msg = dsn(7, ["cfg@example.org"])
        before = box.snapshot()
        bad = os.path.join(box.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("[store]\ndatabse = typo.db\n")
        for label, args in (("a missing config file", ["--config", "/nonexistent/bouncepipe.conf"]),
                            ("a bad config key", ["--config", bad]),
                            ("an unknown option", ["--no-such-option"]),
                            ("a stray argument", ["extra"])):
            # later --config wins in getopt, so these override the sandbox's own
            rc, err = box.pipe(msg, *args)
            check(rc == 75, f"{label} is exit 75 (got {rc})")
        check(box.snapshot() == before, "... and none of them recorded anything")

        # --- root: becomes the store directory's owner; refused only with nobody to become ----
        if os.geteuid() == 0:
            import subprocess
            p = subprocess.run([box.binary, "pipe", "--config", box.config], input=msg, capture_output=True,
                               env=box.env())
            check(p.returncode == 0 and os.stat(box.db).st_uid == NOBODY,
                  f"started as root, pipe becomes the owner of the store's directory (got {p.returncode})")
            rootdir = tempfile.mkdtemp(prefix="bp-root-")
            p = subprocess.run([box.binary, "pipe", "--config", box.config, "--db", os.path.join(rootdir, "s.db")],
                               input=msg, capture_output=True, env=box.env())
            check(p.returncode == 75 and b"root" in p.stderr and not os.listdir(rootdir),
                  "with the store in a directory of root's, running as root is refused with exit 75")
            os.rmdir(rootdir)
        check(box.integrity() == "ok", "PRAGMA integrity_check is ok at the end")
    finally:
        box.cleanup()


if __name__ == "__main__":
    main()
