#!/usr/bin/env python3
"""webhook_cli.py - the webhook commands and configuration on a real SQLite store.

Usage: webhook_cli.py /path/to/bouncepipe
       webhook_cli.py --migrate-pg /path/to/bouncepipe POSTGRESQL_URL PSQL   (tests/system/pg_outbox.sh)

Checks, with a small local HTTP server (200 on /all, 500 on /complaints):
  - the program does not link libcurl (only deliver loads the HTTP module);
  - configuration: a bad [webhook NAME] value, a [webhook] without a name, an unknown
    [deliver] key are configuration errors (exit 78) naming the group and key; deliver without
    an endpoint is one too;
  - recording writes the outbox rows the endpoints want, from replay and from acct alike
    (types = complaint takes only the complaint), none without an endpoint configured;
  - deliver --status (text and json) counts them; deliver --once posts what is due and exits
    0: /all delivered, /complaints retried, then dead once older than dead_after;
    --retry-dead ENDPOINT makes it pending again; an endpoint that is not configured is named;
  - the service ends cleanly on SIGTERM (exit 0, "(stopped)") and delivers while it runs;
  - migrate carries the outbox's pending and dead rows (keys, attempts, states), not the
    delivered ones, and a second migration adds nothing (SQLite -> SQLite; with --migrate-pg,
    SQLite -> PostgreSQL).
"""
import http.server
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from pipe_common import dsn  # noqa: E402
from webhook_server import arf  # noqa: E402

GOT = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        GOT.append((self.path, self.headers.get("Idempotency-Key"), json.loads(body)))
        status = 200 if self.path == "/all" else 500
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def fail(msg):
    print(f"FAIL: webhook_cli: {msg}", file=sys.stderr)
    sys.exit(1)


def ok(what):
    print(f"ok: {what}")


class Run:
    def __init__(self, binary, tmp):
        self.binary, self.tmp = binary, tmp
        self.env = dict(os.environ)
        self.env.pop("BOUNCEPIPE_DB", None)
        self.env.pop("BOUNCEPIPE_CONFIG", None)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=0")

    def config(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def __call__(self, *args, stdin=None, want=0):
        p = subprocess.run([self.binary, *args], input=stdin, capture_output=True, env=self.env, timeout=120)
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        if want is not None and p.returncode != want:
            fail(f"{' '.join(args)}: exit {p.returncode}, want {want}\n{out}{err}")
        return out, err


def outbox(db):
    con = sqlite3.connect(db)
    try:
        return sorted(con.execute("SELECT o.endpoint, o.event_key, o.state, o.attempts, l.recipient FROM outbox o "
                                  "JOIN ledger l ON l.id = o.ledger_id").fetchall())
    finally:
        con.close()


def status(run, conf):
    out, _ = run("deliver", "--status", "--format", "json", "--config", conf)
    return {e["endpoint"]: e for e in json.loads(out)["endpoints"]}


def start(binary):
    """A scratch directory, the local server, its base URL and a runner."""
    tmp = tempfile.mkdtemp(prefix="bp-webhook-cli-")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return tmp, srv, f"http://127.0.0.1:{srv.server_address[1]}", Run(binary, tmp)


def main(binary):
    tmp, srv, base, run = start(binary)
    try:
        check_no_curl(run)
        check_config(run)
        db = os.path.join(tmp, "s.db")
        conf = run.config("bp.conf", f"[store]\ndatabase = {db}\n"
                                     f"[webhook all]\nurl = {base}/all\n"
                                     f"[webhook complaints]\nurl = {base}/complaints\ntypes = complaint\n"
                                     f"[deliver]\nbackoff_base = 60s\ndead_after = 1h\npoll_interval = 50ms\n")
        check_recording(run, conf, db)
        check_deliver(run, conf, db)
        check_service(run, conf, db, base)
        check_migrate(run, db, os.path.join(tmp, "copy.db"), None)
    finally:
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print("webhook_cli: ok")


def check_no_curl(run):
    """pipe never loads libcurl: the program does not link it (deliver dlopen()s its module)."""
    out = subprocess.run(["ldd", run.binary], capture_output=True, text=True).stdout
    if "libcurl" in out:
        fail(f"bouncepipe links libcurl, which every pipe process would load:\n{out}")
    ok("bouncepipe does not link libcurl")


def check_config(run):
    cases = [
        ("bad url", "[webhook crm]\nurl = ftp://example.com/x\n", "[webhook crm] url"),
        ("no name", "[webhook]\nurl = https://example.com/x\n", "[webhook]"),
        ("unknown key", "[webhook crm]\nurl = https://example.com/x\nretries = 3\n", "[webhook crm] retries"),
        ("no url", "[webhook crm]\nformat = listmonk\n", "[webhook crm] url"),
        ("deliver key", "[webhook crm]\nurl = https://example.com/x\n[deliver]\nretries = 3\n", "[deliver] retries"),
    ]
    for label, text, want in cases:
        conf = run.config("bad.conf", f"[store]\ndatabase = {run.tmp}/never.db\n" + text)
        _, err = run("deliver", "--status", "--config", conf, want=78)
        if want not in err or "bad.conf" not in err:
            fail(f"config {label}: the message does not name the file and {want}: {err}")
    conf = run.config("none.conf", f"[store]\ndatabase = {run.tmp}/none.db\n")
    _, err = run("deliver", "--once", "--config", conf, want=78)
    if "no [webhook NAME]" not in err:
        fail(f"deliver without endpoints: {err}")
    run("deliver", "--status", "--once", "--config", conf, want=64)
    ok("bad webhook configuration is an error naming the file, group and key (78); no endpoint: 78")


def check_recording(run, conf, db):
    msgs = [dsn(1, ["one@example.net"]), dsn(2, ["two@example.net"]), arf(3, "three@example.net")]
    for i, m in enumerate(msgs):
        path = os.path.join(run.tmp, f"m{i}.eml")
        with open(path, "wb") as f:
            f.write(m)
    run("replay", "--config", conf, *[os.path.join(run.tmp, f"m{i}.eml") for i in range(3)])
    csv = ("type,timeLogged,orig,rcpt,dsnStatus,dsnDiag\n"
           "b,1700000000,bounces@bounces.example.com,four@example.net,5.1.1,smtp;550 5.1.1 user unknown\n")
    run("acct", "--config", conf, stdin=csv.encode())
    rows = outbox(db)
    got = sorted((ep, rcpt) for ep, _, _, _, rcpt in rows)
    want = sorted([("all", "one@example.net"), ("all", "two@example.net"), ("all", "three@example.net"),
                   ("all", "four@example.net"), ("complaints", "three@example.net")])
    if got != want:
        fail(f"outbox rows after replay and acct: got {got}, want {want}")
    keys = {}
    for ep, key, _, _, rcpt in rows:
        keys.setdefault(rcpt, set()).add(key)
    if any(len(k) != 1 for k in keys.values()):
        fail(f"an event has different keys on different endpoints: {keys}")
    # the same messages again: nothing more
    run("replay", "--config", conf, *[os.path.join(run.tmp, f"m{i}.eml") for i in range(3)])
    if len(outbox(db)) != 5:
        fail("replaying the same messages again wrote outbox rows")
    # without endpoints: none
    plain = run.config("plain.conf", f"[store]\ndatabase = {db}\n")
    with open(os.path.join(run.tmp, "m9.eml"), "wb") as f:
        f.write(dsn(9, ["nine@example.net"]))
    run("replay", "--config", plain, os.path.join(run.tmp, "m9.eml"))
    if len(outbox(db)) != 5:
        fail("a store without webhook endpoints configured got outbox rows")
    ok("replay and acct write the rows the endpoints want (types filter), once; none without endpoints")


def check_deliver(run, conf, db):
    s = status(run, conf)
    if (s["all"]["pending"], s["complaints"]["pending"], s["all"]["delivered"]) != (4, 1, 0) or \
            s["all"]["oldest_pending"] is None or not s["all"]["configured"]:
        fail(f"status before delivering: {s}")
    text, _ = run("deliver", "--status", "--config", conf)
    if "all" not in text or "4 pending" not in text:
        fail(f"status text: {text}")
    GOT.clear()
    out, err = run("deliver", "--once", "--config", conf)
    if "4 delivered, 1 retried" not in out:
        fail(f"deliver --once: {out}{err}")
    if sorted(p for p, _, _ in GOT) != ["/all"] * 4 + ["/complaints"]:
        fail(f"requests: {[p for p, _, _ in GOT]}")
    if any(k != body["event_id"] for _, k, body in GOT):
        fail("an Idempotency-Key is not its event's id")
    s = status(run, conf)
    if (s["all"]["delivered"], s["all"]["pending"], s["complaints"]["pending"]) != (4, 0, 1):
        fail(f"status after deliver --once: {s}")
    state = {(ep, rcpt): (st, att) for ep, _, st, att, rcpt in outbox(db)}
    if state[("complaints", "three@example.net")] != ("pending", 1):
        fail(f"the failed row: {state[('complaints', 'three@example.net')]}")
    # older than dead_after (1 h) when it fails again: dead
    con = sqlite3.connect(db)
    con.execute("UPDATE outbox SET next_at = 0, created_at = created_at - 7200 WHERE endpoint = 'complaints'")
    con.commit()
    con.close()
    out, _ = run("deliver", "--once", "--config", conf)
    s = status(run, conf)
    if s["complaints"]["dead"] != 1 or s["complaints"]["pending"] != 0:
        fail(f"the row that kept failing is not dead: {s}")
    out, _ = run("deliver", "--retry-dead", "complaints", "--config", conf)
    if "1 dead row(s) of complaints pending again" not in out:
        fail(f"--retry-dead: {out}")
    s = status(run, conf)
    if s["complaints"]["pending"] != 1 or s["complaints"]["dead"] != 0:
        fail(f"after --retry-dead: {s}")
    out, err = run("deliver", "--retry-dead", "crm", "--config", conf)
    if "0 dead row(s) of crm" not in out or "crm is not a configured endpoint" not in err:
        fail(f"--retry-dead of an unknown endpoint: {out}{err}")
    run("deliver", "crm", "--config", conf, want=64)  # an operand without --retry-dead
    # rows of an endpoint no longer configured are shown as such
    renamed = run.config("renamed.conf", open(conf).read().replace("[webhook complaints]", "[webhook fbl]"))
    s = status(run, renamed)
    if s["complaints"]["configured"] or s["complaints"]["pending"] != 1 or s["fbl"]["pending"] != 0:
        fail(f"status with a renamed endpoint: {s}")
    ok("deliver --status, --once (delivered, retried, dead after dead_after), --retry-dead")


def check_service(run, conf, db, base):
    with open(os.path.join(run.tmp, "m5.eml"), "wb") as f:
        f.write(dsn(5, ["five@example.net"]))
    p = subprocess.Popen([run.binary, "deliver", "--verbose", "--config", conf], env=run.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        run("replay", "--config", conf, os.path.join(run.tmp, "m5.eml"))  # recorded while it runs
        deadline = time.time() + 30
        while status(run, conf)["all"]["delivered"] != 5:
            if time.time() > deadline:
                fail("the service did not deliver a new event within 30 s")
            time.sleep(0.1)
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    if p.returncode != 0 or b"(stopped)" not in out or time.time() - t0 > 5:
        fail(f"SIGTERM: exit {p.returncode} after {time.time() - t0:.1f} s: {out.decode()}{err.decode()}")
    ok("the service delivers what is recorded while it runs and ends on SIGTERM (exit 0)")


def check_migrate(run, src, to, psql):
    def rows_of(where):
        if psql is None:
            return outbox(where)
        q = ("SELECT o.endpoint, o.event_key, o.state, o.attempts, l.recipient FROM outbox o "
             "JOIN ledger l ON l.id = o.ledger_id")
        out = subprocess.run([psql, "-X", "-q", "-At", "-F", "\t", "-c", q], check=True, capture_output=True,
                             text=True).stdout
        return sorted((a, b, c, int(d), e) for a, b, c, d, e in (l.split("\t") for l in out.splitlines() if l))

    want = [r for r in outbox(src) if r[2] != "delivered"]
    if not want or not any(r[3] > 0 for r in want):
        fail(f"the source has no waiting row with attempts to carry: {outbox(src)}")
    out, _ = run("migrate", "--from", src, "--to", to)
    got = rows_of(to)
    if got != sorted(want):
        fail(f"migrate: target outbox {got}, want the source's waiting rows {sorted(want)}")
    if f"{len(want)} webhook outbox rows carried" not in out:
        fail(f"migrate's summary: {out}")
    run("migrate", "--from", src, "--to", to)
    if rows_of(to) != sorted(want):
        fail("a second migration changed the target's outbox")
    ok(f"migrate carries {len(want)} waiting outbox row(s) with keys, states and attempts, once")


def migrate_pg(binary, url, psql):
    """SQLite with waiting outbox rows -> PostgreSQL (tests/system/pg_outbox.sh)."""
    tmp, srv, base, run = start(binary)
    try:
        db = os.path.join(tmp, "s.db")
        conf = run.config("bp.conf", f"[store]\ndatabase = {db}\n[webhook all]\nurl = {base}/all\n"
                                     f"[webhook complaints]\nurl = {base}/complaints\n"
                                     f"[deliver]\nbackoff_base = 60s\n")
        check_recording_minimal(run, conf)
        run("deliver", "--once", "--config", conf)
        check_migrate(run, db, url, psql)
    finally:
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print("webhook_cli: migrate to PostgreSQL: ok")


def check_recording_minimal(run, conf):
    for i, m in enumerate([dsn(1, ["one@example.net"]), arf(3, "three@example.net")]):
        path = os.path.join(run.tmp, f"m{i}.eml")
        with open(path, "wb") as f:
            f.write(m)
        run("replay", "--config", conf, path)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--migrate-pg":
        migrate_pg(os.path.abspath(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 2:
        main(os.path.abspath(sys.argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
