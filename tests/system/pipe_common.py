"""pipe_common.py - helpers for the pipe-mode tests (pipe_concurrency, pipe_crash, pipe_failures).

Builds realistic RFC 3464 delivery status notifications (our own text, example.* domains),
runs `bouncepipe pipe` as an unprivileged user (pipe mode refuses root, and root would ignore
the file permissions the failure tests rely on), and reads the store back with Python's
sqlite3 module.  Everything lives in a temporary directory removed at the end.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

NOBODY = 65534


def dsn(n, recipients, status="5.1.1", code="550", text="User unknown in local recipient table", date=None):
    """A Postfix-shaped DSN numbered n, one failed block per recipient, dated @date (an RFC 5322
    date; default: 10 Mar 2026, minute n % 60)."""
    if date is None:
        date = f"Tue, 10 Mar 2026 10:{n % 60:02d}:31 +0100 (CET)"
    boundary = f"B{n:08d}.1710062431/mx{n % 7}.example.net"
    blocks = []
    for r in recipients:
        blocks.append(
            f"Final-Recipient: rfc822; {r}\nOriginal-Recipient: rfc822;{r}\nAction: failed\n"
            f"Status: {status}\nRemote-MTA: dns; mx.{r.split('@')[1]}\n"
            f"Diagnostic-Code: smtp; {code} {status} <{r}>: Recipient address rejected: {text}\n")
    first = recipients[0]
    local, domain = first.split("@")
    return (
        "Return-Path: <>\n"
        f"Date: {date}\n"
        "From: MAILER-DAEMON@mx1.example.net (Mail Delivery System)\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        f"To: bounces-{local}={domain}@bounces.example.com\n"
        "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        f"Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{boundary}\"\n"
        f"Message-Id: <dsn.{n}.20260310@mx1.example.net>\n\n"
        f"--{boundary}\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mx1.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
        f"--{boundary}\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx1.example.net\nArrival-Date: Tue, 10 Mar 2026 10:14:05 +0100 (CET)\n\n"
        + "\n".join(blocks)
        + f"\n--{boundary}\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n"
        f"Return-Path: <bounces-{local}={domain}@bounces.example.com>\nFrom: news@example.com\nTo: {first}\n"
        f"Subject: Newsletter {n}\nMessage-Id: <orig.{n}@mta1.example.com>\n\n--{boundary}--\n"
    ).encode()


def unrecognised(n):
    """A message no report family recognises: a person's reply."""
    return (f"From: someone{n}@example.org\nTo: bounces@bounces.example.com\nSubject: re: newsletter {n}\n"
            f"Date: Tue, 10 Mar 2026 11:00:00 +0000\nMessage-Id: <human.{n}@example.org>\n\n"
            f"Please call me about order {n}.\n").encode()


class Sandbox:
    """A temporary directory the pipe user can write, with a config file pointing into it."""

    def __init__(self, binary, busy_timeout_ms=60000):
        self.binary = os.path.abspath(binary)
        self.dir = tempfile.mkdtemp(prefix="bp-pipe-test-")
        self.db = os.path.join(self.dir, "store.db")
        self.quarantine = os.path.join(self.dir, "quarantine")
        self.config = os.path.join(self.dir, "bouncepipe.conf")
        with open(self.config, "w") as f:
            f.write(f"[store]\ndatabase = {self.db}\nbusy_timeout_ms = {busy_timeout_ms}\n"
                    f"[quarantine]\ndirectory = {self.quarantine}\n")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            os.chmod(self.dir, 0o755)
            for p in (self.dir, self.config):
                os.chown(p, NOBODY, NOBODY)

    def command(self, *args):
        cmd = [self.binary, "pipe", "--config", self.config, *args]
        if self.as_root:
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        return cmd

    def env(self):
        e = dict(os.environ)
        e.pop("BOUNCEPIPE_DB", None)
        e.pop("BOUNCEPIPE_CONFIG", None)
        # sanitizer builds: a leak report would turn exit 0 into another code
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        return e

    def start(self, message, *args, preexec_fn=None):
        p = subprocess.Popen(self.command(*args), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=self.env(), preexec_fn=preexec_fn)
        return p

    def pipe(self, message, *args, preexec_fn=None, timeout=120):
        p = subprocess.run(self.command(*args), input=message, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=self.env(), preexec_fn=preexec_fn, timeout=timeout)
        return p.returncode, p.stderr.decode(errors="replace")

    def query(self, sql, args=()):
        con = sqlite3.connect(self.db, timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def scalar(self, sql, args=()):
        return self.query(sql, args)[0][0]

    def integrity(self):
        return self.scalar("PRAGMA integrity_check")

    def snapshot(self):
        """Counts that must not move when a run fails."""
        return (self.scalar("SELECT count(*) FROM processed"), self.scalar("SELECT count(*) FROM ledger"),
                self.scalar("SELECT count(*) FROM suppressions"))

    def quarantined(self):
        d = os.path.join(self.quarantine, "new")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)
