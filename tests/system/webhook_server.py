#!/usr/bin/env python3
"""webhook_server.py - webhooks against a real HTTP server with faults injected.

Usage: webhook_server.py /path/to/webhook_e2e
       webhook_server.py --deliver /path/to/bouncepipe [--pg URL --psql PATH] [--delivers N]

Starts a small HTTP server on 127.0.0.1 (a free port; a child process of this script, so that
it can really be killed) that answers by a schedule over its requests, counted across its
restarts, and logs when each request arrived and when it ended (answered, the client gone,
hung up, or the server killed).  After each kill this script waits 1.5 s before starting the
server again on the same port, so that the client meets "connection refused" meanwhile.

Mode 1 (webhook_e2e): tests/unit/webhook_e2e.c delivers 40 events from the in-memory outbox to two
endpoints (/contract in batches of 5, /listmonk one by one) through the libcurl transport.

Mode 2 (--deliver): the whole product.  40 reports (hard and soft bounces, complaints) are
piped into a store by concurrent `bouncepipe pipe` runs, half before and half while
`bouncepipe deliver` runs (N processes of it at once; PostgreSQL with --pg), which drains the
outbox to the same two endpoints.  On top of the server's faults, one deliver process is
SIGKILLed while it waits for the answer to a request the server holds ("hold": the rows it
leased come back when the lease ends and are sent again) and a new one started.  When the
outbox is drained (deliver --status), the deliver processes get SIGTERM and must exit 0.

Schedule (request number: fault):
    1, 2   500
    3      2.5 s of silence (the client's timeout is 1 s), then 200
    4      503 with Retry-After: 1
    6      logged, then the server SIGKILLs itself before answering (killed mid-batch)
    9      the server SIGKILLs itself before logging (the request is lost to it)
    12     logged, then the connection is closed without an answer
    others 200
A kill waits until the requests in flight have ended (and holds new ones until it), so that
every logged request has its end and the slow one's client does time out.  In
--deliver mode, once the server's kills are over, the driver has the next request held until
its client is gone, and SIGKILLs the deliver process that sent it (found by the lease owner of
its events' rows).

Checks, from the server's log: every event arrived at least once on its endpoint with its
recipient and got at least one 200 that reached the client; every request had a valid
X-Bouncepipe-Signature (HMAC-SHA256 over t "." body with the shared secret, t within 5
minutes), the configured Authorization header, Content-Type and a JSON body of the right
shape; every arrival of an endpoint's event carried the same key (Idempotency-Key = event_id
for single events, event_id inside batches); some events arrived more than once; no event
was being delivered twice at the same time (two requests carrying one key whose intervals at
the server overlap - what several deliver processes must never do); and each fault really
happened.  Mode 2 also: every outbox row is delivered, every report's recipient is among the
contract endpoint's events, and (several processes) more than one process delivered.
Bounded: 180 s for the clients, 240 s in all.
"""
import hashlib
import hmac
import http.server
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

SECRET = "e2e-secret-0123456789abcdef"
SCHEDULE = {1: "500", 2: "500", 3: "slow", 4: "503", 6: "kill-after-log", 9: "kill-before-log", 12: "hangup"}
NOBODY = 65534
HERE = os.path.dirname(os.path.abspath(__file__))


def serve(port, state_path, log_path, secret):
    lock = threading.Lock()
    # requests logged and not ended yet; a kill waits for them (so that every logged request has
    # its end, and a "slow" one's client times out), and requests arriving meanwhile wait to die
    inflight = [0]
    dying = [False]
    schedule = SCHEDULE

    def next_number():
        with lock:
            n = 1
            if os.path.exists(state_path):
                with open(state_path) as f:
                    n = int(f.read() or "0") + 1
            with open(state_path, "w") as f:
                f.write(str(n))
                f.flush()
                os.fsync(f.fileno())
            return n

    def log(entry):
        entry["t"] = time.time()
        with lock:
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def die():
        with lock:
            dying[0] = True
        for _ in range(1250):
            with lock:
                if inflight[0] == 0:
                    break
            time.sleep(0.02)
        log({"ev": "death"})
        os.kill(os.getpid(), signal.SIGKILL)

    def enter():
        """Count a request in flight, unless the server is dying: then it waits to be killed."""
        while True:
            with lock:
                if not dying[0]:
                    inflight[0] += 1
                    return
            time.sleep(1)

    def leave():
        with lock:
            inflight[0] -= 1

    def take_hold():
        """The driver asks for a held request by creating STATE.hold: the first request to
        take it (rename is atomic) is held."""
        try:
            os.rename(state_path + ".hold", state_path + ".held")
            return True
        except OSError:
            return False

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def answer(self, status, extra=None):
            body = b'{"ok":true}' if status == 200 else b'{"error":"injected"}'
            self.send_response(status)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def client_gone(self, seconds):
            """Wait up to @seconds; True as soon as the client closed the connection."""
            deadline = time.time() + seconds
            while time.time() < deadline:
                r, _, _ = select.select([self.connection], [], [], 0.02)
                if r:
                    try:
                        if self.connection.recv(1, socket.MSG_PEEK) == b"":
                            return True
                    except OSError:
                        return True
            return False

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            n = next_number()
            fault = schedule.get(n, "")
            if fault == "" and take_hold():
                fault = "hold"
            if fault == "kill-before-log":
                die()
            enter()
            now = time.time()
            sig = self.headers.get("X-Bouncepipe-Signature", "")
            parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
            t = parts.get("t", "")
            want = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
            sig_ok = t.isdigit() and hmac.compare_digest(want, parts.get("v1", "")) and abs(now - int(t)) <= 300
            status = {"500": 500, "503": 503}.get(fault, 200)
            log({"ev": "start", "n": n, "path": self.path, "sig_ok": sig_ok, "key": self.headers.get("Idempotency-Key"),
                 "auth": self.headers.get("Authorization"), "type": self.headers.get("Content-Type"),
                 "fault": fault, "status": status, "body": body.decode("utf-8", "replace")})
            how = "answered"
            if fault == "kill-after-log":
                leave()  # killed with its own request in flight: that is the point
                die()
            if fault == "hangup":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                how = "hangup"
            elif fault in ("slow", "hold") and self.client_gone(2.5 if fault == "slow" else 20):
                how = "client gone"
            else:
                try:
                    self.answer(status, {"Retry-After": "1"} if fault == "503" else None)
                except OSError:
                    how = "client gone"
            log({"ev": "end", "n": n, "how": how})
            leave()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


def fail(msg):
    print(f"FAIL: webhook_faults: {msg}", file=sys.stderr)
    sys.exit(1)


def wait_listening(port, proc):
    for _ in range(200):
        if proc.poll() is not None:
            # killed by its own schedule at its first request (a client was waiting): it did
            # start; the driver's watch() restarts it
            return proc.returncode == -signal.SIGKILL
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    """The test server, restarted 1.5 s after each time it is killed."""

    def __init__(self, tmp):
        self.state, self.log_path = os.path.join(tmp, "state"), os.path.join(tmp, "requests.ndjson")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.cmd = [sys.executable, __file__, "--serve", str(self.port), self.state, self.log_path, SECRET]
        self.restarts = 0
        self.proc = self.start()

    def start(self):
        p = subprocess.Popen(self.cmd)
        if not wait_listening(self.port, p):
            p.kill()
            fail("the test server did not start")
        return p

    def watch(self):
        """Restart the server if it died (by its own schedule)."""
        if self.proc.poll() is None:
            return
        if self.proc.returncode != -signal.SIGKILL:
            fail(f"the test server exited with {self.proc.returncode}")
        self.restarts += 1
        if self.restarts > 5:
            fail("the test server died too often")
        time.sleep(1.5)  # connection refused meanwhile
        self.proc = self.start()

    def hold_next(self):
        """Hold the next request until its client is gone."""
        with open(self.state + ".hold", "w"):
            pass

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def entries(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(l) for l in f if l.endswith("\n")]


def items_of(r):
    """(event key, recipient) of each event a logged request carried (checked JSON first)."""
    where = f"request {r['n']} ({r['path']})"
    if not r["sig_ok"]:
        fail(f"{where}: bad or stale X-Bouncepipe-Signature")
    if r["auth"] != "token api:test-token":
        fail(f"{where}: the configured Authorization header is missing")
    if r["type"] != "application/json":
        fail(f"{where}: Content-Type {r['type']}")
    try:
        body = json.loads(r["body"])
    except ValueError as e:
        fail(f"{where}: body is not JSON: {e}")
    if r["path"] == "/listmonk":
        if not isinstance(body, dict) or body.get("source") != "bouncepipe" or \
                body.get("type") not in ("hard", "soft", "complaint") or not isinstance(body.get("meta"), dict):
            fail(f"{where}: not a listmonk bounce record: {r['body']}")
        got = [(body["meta"].get("event_id"), body.get("email"))]
        if r["key"] != got[0][0]:
            fail(f"{where}: Idempotency-Key {r['key']} is not the event's key {got[0][0]}")
        return got
    if r["path"] == "/contract":
        items = body if isinstance(body, list) else [body]
        got = [(i.get("event_id"), i.get("recipient")) for i in items]
        if isinstance(body, list) and len(body) > 1:
            if not (r["key"] or "").startswith("batch-"):
                fail(f"{where}: a batch without a batch Idempotency-Key")
        elif r["key"] != got[0][0]:  # one event (an array of one too): its own key
            fail(f"{where}: Idempotency-Key {r['key']} is not the event's key {got[0][0]}")
        return got
    fail(f"{where}: unexpected path")


def check_log(server, events, client_logs, want_faults):
    """The checks common to both modes; @events maps (endpoint, key) -> recipient (an event has
    one key, the same on every endpoint).  Returns (requests, events that arrived more than once)."""
    entries = server.entries()
    requests = [e for e in entries if e["ev"] == "start"]
    ends = {e["n"]: e for e in entries if e["ev"] == "end"}
    deaths = sorted(e["t"] for e in entries if e["ev"] == "death")
    seen, acked, intervals, keys_of = {}, set(), {}, {}
    for r in requests:
        end = ends.get(r["n"])
        if end is not None:
            stop = end["t"]
        else:  # the server died with it in flight
            later = [d for d in deaths if d >= r["t"]]
            stop = later[0] if later else r["t"]
        endpoint = r["path"][1:]
        for key, rcpt in items_of(r):
            where = f"request {r['n']} ({r['path']})"
            if (endpoint, key) not in events:
                fail(f"{where}: event key {key} is not one of this endpoint's")
            want_rcpt = events[(endpoint, key)]
            if rcpt != want_rcpt:
                fail(f"{where}: event {key} arrived as {rcpt}, want {want_rcpt}")
            ek = (endpoint, key)
            seen[ek] = seen.get(ek, 0) + 1
            keys_of.setdefault((endpoint, rcpt), set()).add(key)
            intervals.setdefault(ek, []).append((r["t"], stop, r["n"]))
            if r["status"] == 200 and end is not None and end.get("how") == "answered":
                acked.add(ek)
    missing = [k for k in events if k not in seen]
    if missing:
        fail(f"{len(missing)} event(s) never arrived: {missing[:3]}")
    not_acked = [k for k in events if k not in acked]
    if not_acked:
        fail(f"{len(not_acked)} event(s) never got an answered 200: {not_acked[:3]}")
    for (endpoint, rcpt), keys in keys_of.items():
        if len(keys) != 1:
            fail(f"{rcpt} arrived on /{endpoint} with different keys: {sorted(keys)}")
    for (endpoint, key), spans in intervals.items():
        spans.sort()
        for (s1, e1, n1), (s2, e2, n2) in zip(spans, spans[1:]):
            if s2 < e1:
                fail(f"event {key} was being delivered to /{endpoint} twice at once: requests {n1} ({s1:.3f}-{e1:.3f}) and "
                     f"{n2} ({s2:.3f}-{e2:.3f})")
    faults = {r["fault"] for r in requests}
    for want in want_faults:
        if want not in faults:
            fail(f"fault '{want}' never happened (schedule out of step with the client)")
    if server.restarts < 2:
        fail(f"the server was killed {server.restarts} time(s), want 2")
    if not any(("refused" in l or "Couldn't connect" in l or "Failed to connect" in l) for l in client_logs):
        fail("the client never met a refused connection")
    if not any("timed out" in l.lower() or "timeout" in l.lower() for l in client_logs):
        fail("the client never timed out")
    dups = sum(1 for k in seen if seen[k] > 1)
    if dups == 0:
        fail("no event arrived twice, yet faults that cause duplicates were injected")
    return requests, dups


# ---- mode 1: webhook_e2e over the in-memory outbox ---------------------------------------------

def drive_e2e(e2e):
    tmp = tempfile.mkdtemp(prefix="bp-webhook-")
    server = Server(tmp)
    client = subprocess.Popen([e2e, f"http://127.0.0.1:{server.port}", SECRET], stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(client.stdout), daemon=True)
    reader.start()
    deadline = time.time() + 180
    try:
        while client.poll() is None:
            if time.time() > deadline:
                client.kill()
                fail("the client did not finish within 180 s")
            server.watch()
            time.sleep(0.05)
    finally:
        server.stop()
    reader.join(10)
    if client.returncode != 0:
        sys.stdout.write("".join(lines))
        fail(f"webhook_e2e exited with {client.returncode}")
    events = {}
    for line in lines:
        f = line.split(" ", 3)
        if f[0] == "EVENT":
            events[(f[1], f[2])] = f[3].rstrip("\n")
    if len(events) != 40:
        fail(f"expected 40 events from the client, got {len(events)}")
    client_logs = [l for l in lines if l.startswith("LOG ")]
    requests, dups = check_log(server, events, client_logs, ("500", "503", "slow", "kill-after-log", "hangup"))
    done = [l for l in lines if l.startswith("DONE")]
    print(f"webhook_faults: ok: 40 events on 2 endpoints, {len(requests)} requests logged, {server.restarts} server "
          f"kills, {len(client_logs)} failed attempts, {dups} events arrived more than once (same key), every "
          f"signature valid, none sent twice at once; {done[0].strip() if done else ''}")


# ---- mode 2: pipe and deliver over a real store ----------------------------------------------

def dsn(n, rcpt, status, code, text):
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True
    from pipe_common import dsn as make_dsn
    return make_dsn(n, [rcpt], status=status, code=code, text=text)


def arf(n, rcpt):
    """An ARF abuse report about a message to @rcpt (our own text)."""
    b = f"arf-{n:06d}"
    return (f"Return-Path: <>\nFrom: fbl@isp.example.net\nTo: fbl@example.com\nSubject: complaint {n}\n"
            f"Date: Tue, 10 Mar 2026 06:{n % 60:02d}:44 -0500\nMessage-ID: <arf.{n}@fbl.isp.example.net>\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report;\n\tboundary=\"{b}\"\n\n"
            f"--{b}\nContent-Type: text/plain\n\nA complaint about a message from 192.0.2.10.\n\n"
            f"--{b}\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: Example FBL\n"
            f"Version: 1\nOriginal-Rcpt-To: {rcpt}\nSource-IP: 192.0.2.10\n\n"
            f"--{b}\nContent-Type: message/rfc822\n\nFrom: news@example.com\nTo: {rcpt}\n"
            f"Subject: Newsletter {n}\nMessage-ID: <orig.arf.{n}@mta1.example.com>\n\nHello.\n\n--{b}--\n").encode()


def reports(count):
    """(message bytes, recipient) of hard and soft bounces and complaints."""
    out = []
    for i in range(count):
        rcpt = f"user{i:02d}@example.net"
        if i % 5 == 3:
            out.append((arf(i, rcpt), rcpt))
        elif i % 5 == 4:
            out.append((dsn(i, rcpt, "4.2.2", "452", "Mailbox full"), rcpt))
        else:
            out.append((dsn(i, rcpt, "5.1.1", "550", "User unknown in local recipient table"), rcpt))
    return out


class Store:
    """The outbox as the database holds it (SQLite file or PostgreSQL through psql)."""

    def __init__(self, db, psql):
        self.db, self.psql = db, psql

    def rows(self, sql):
        if self.psql is None:
            con = sqlite3.connect(self.db, timeout=30)
            try:
                return [tuple(str(c) if c is not None else "" for c in r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = subprocess.run([self.psql, "-X", "-q", "-At", "-F", "\t", "-c", sql], check=True, capture_output=True,
                             text=True).stdout
        return [tuple(l.split("\t")) for l in out.splitlines() if l]

    def outbox(self):
        """(endpoint, key, recipient, state) of every outbox row."""
        return self.rows("SELECT o.endpoint, o.event_key, l.recipient, o.state FROM outbox o "
                         "JOIN ledger l ON l.id = o.ledger_id")

    def owners_of(self, keys):
        quoted = ", ".join("'" + k + "'" for k in keys if re.fullmatch(r"[0-9a-f]{32}", k or ""))
        if not quoted:
            return []
        return [r[0] for r in self.rows(f"SELECT DISTINCT lease_owner FROM outbox WHERE event_key IN ({quoted}) "
                                        "AND lease_owner IS NOT NULL")]


def drive_deliver(binary, pg_url, psql, n_delivers):
    binary = os.path.abspath(binary)
    tmp = tempfile.mkdtemp(prefix="bp-deliver-")
    as_root = os.geteuid() == 0
    os.chmod(tmp, 0o755)
    server = Server(tmp)
    db = pg_url if pg_url else os.path.join(tmp, "store.db")
    conf = os.path.join(tmp, "bouncepipe.conf")
    base = f"http://127.0.0.1:{server.port}"
    with open(conf, "w") as f:
        f.write(f"[store]\ndatabase = {db}\nbusy_timeout_ms = 60000\n[quarantine]\ndirectory = {tmp}/quarantine\n"
                f"[webhook contract]\nurl = {base}/contract\nsecret = {SECRET}\nbatch = 5\ntimeout = 1s\n"
                f"headers = Authorization: token api:test-token\n"
                f"[webhook listmonk]\nurl = {base}/listmonk\nformat = listmonk\nsecret = {SECRET}\ntimeout = 1s\n"
                f"headers = Authorization: token api:test-token\n"
                f"[deliver]\nbackoff_base = 500ms\nbackoff_max = 2s\nlease_margin = 1s\npoll_interval = 100ms\n")
    env = dict(os.environ)
    env.pop("BOUNCEPIPE_DB", None)
    env["BOUNCEPIPE_CONFIG"] = conf
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    prefix = []
    if as_root:  # pipe refuses root; deliver runs as the same user, so that both use the store's files
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        os.chown(tmp, NOBODY, NOBODY)
        if pg_url and env.get("PGPASSFILE"):
            copy = os.path.join(tmp, "pgpass")
            with open(env["PGPASSFILE"]) as src, open(copy, "w") as dst:
                dst.write(src.read())
            os.chmod(copy, 0o600)
            os.chown(copy, NOBODY, NOBODY)
            env["PGPASSFILE"] = copy
    store = Store(db, psql)
    msgs = reports(40)

    def pipe(msg):
        for _ in range(60):
            p = subprocess.run(prefix + [binary, "pipe"], input=msg, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=120)
            if p.returncode == 0:
                return
            if p.returncode != 75:
                fail(f"pipe exited with {p.returncode}: {p.stderr.decode(errors='replace')[-300:]}")
            time.sleep(0.2)
        fail("pipe kept answering 75")

    delivers, outs = [], []

    def start_deliver():
        i = len(delivers)
        out = open(os.path.join(tmp, f"deliver{i}.out"), "w")
        err = open(os.path.join(tmp, f"deliver{i}.err"), "w")
        p = subprocess.Popen(prefix + [binary, "deliver", "--verbose"], env=env, stdout=out, stderr=err)
        delivers.append(p)
        outs.append((out, err))
        return p

    deadline = time.time() + 180
    killed, asked = None, False
    pool = ThreadPoolExecutor(8)
    try:
        list(pool.map(pipe, [m for m, _ in msgs[:20]]))  # before deliver starts: the schema, a backlog
        for _ in range(n_delivers):
            start_deliver()
        later = [pool.submit(pipe, m) for m, _ in msgs[20:]]  # recorded while deliver runs
        while True:
            if time.time() > deadline:
                fail("the outbox was not drained within 180 s")
            server.watch()
            for f in later:
                if f.done():
                    f.result()  # a pipe failure fails the test
            if killed is None and not asked and server.restarts >= 2:
                server.hold_next()  # the server's own kills are over: now deliver's
                asked = True
            if killed is None:
                held = [e for e in server.entries() if e["ev"] == "start" and e["fault"] == "hold"]
                if held:
                    keys = [k for k, _ in items_of(held[0])]
                    owners = store.owners_of(keys)
                    pids = {int(o.split(":")[-2]) for o in owners}
                    victims = [p for p in delivers if p.pid in pids and p.poll() is None]
                    if victims:
                        victims[0].send_signal(signal.SIGKILL)  # mid-batch: it holds the rows' lease
                        victims[0].wait(10)
                        killed = victims[0].pid
                        start_deliver()
            if all(f.done() for f in later) and killed is not None:
                rows = store.outbox()
                if rows and all(r[3] != "pending" for r in rows):
                    break
            time.sleep(0.1)
        for p in delivers:
            if p.pid != killed:
                p.send_signal(signal.SIGTERM)
        for p in delivers:
            if p.pid != killed:
                try:
                    code = p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    fail("a deliver process did not end within 30 s of SIGTERM")
                if code != 0:
                    fail(f"deliver exited with {code} after SIGTERM")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for p in delivers:
            if p.poll() is None:
                p.kill()
        server.stop()
        for out, err in outs:
            out.close()
            err.close()
    client_logs, delivered_by = [], []
    for i in range(len(delivers)):
        with open(os.path.join(tmp, f"deliver{i}.err")) as f:
            client_logs += f.read().splitlines()
        with open(os.path.join(tmp, f"deliver{i}.out")) as f:
            text = f.read()
        delivered_by.append(sum(int(m) for m in re.findall(r"^deliver: \S+: \d+ claimed, (\d+) delivered", text, re.M)))
        if delivers[i].pid != killed and "(stopped)" not in text:
            fail(f"deliver process {i} did not say it stopped:\n{text[-500:]}")
    rows = store.outbox()
    if len(rows) != 2 * len(msgs):
        fail(f"the outbox has {len(rows)} rows, want {2 * len(msgs)} (each report on both endpoints)")
    not_done = [r for r in rows if r[3] != "delivered"]
    if not_done:
        fail(f"{len(not_done)} outbox row(s) not delivered: {not_done[:3]}")
    events = {(r[0], r[1]): r[2] for r in rows}
    want_rcpts = {rcpt for _, rcpt in msgs}
    got_rcpts = {rcpt for (ep, _), rcpt in events.items() if ep == "contract"}
    if got_rcpts != want_rcpts:
        fail(f"reports without an event for the contract endpoint: {sorted(want_rcpts - got_rcpts)[:3]}")
    requests, dups = check_log(server, events, client_logs,
                               ("500", "503", "slow", "kill-after-log", "hangup", "hold"))
    if killed is None:
        fail("no deliver process was killed mid-batch")
    working = sum(1 for n in delivered_by if n > 0)
    if n_delivers > 1 and working < 2:
        fail(f"only {working} deliver process(es) delivered anything: they never ran at once")
    print(f"webhook_deliver: ok ({'PostgreSQL' if pg_url else 'SQLite'}): {len(msgs)} reports piped by concurrent "
          f"pipes, {len(rows)} outbox rows all delivered, {len(requests)} requests logged, {server.restarts} server "
          f"kills, a deliver process SIGKILLed mid-batch, {len(delivers)} deliver processes (delivered "
          f"{delivered_by}), {dups} events arrived more than once (same key), every signature valid, none sent "
          f"twice at once")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 5 and args[0] == "--serve":
        serve(int(args[1]), args[2], args[3], args[4])
    elif len(args) == 1:
        drive_e2e(args[0])
    elif len(args) >= 2 and args[0] == "--deliver":
        opts = dict(zip(args[2::2], args[3::2]))
        drive_deliver(args[1], opts.get("--pg"), opts.get("--psql"), int(opts.get("--delivers", "1")))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
