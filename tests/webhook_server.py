#!/usr/bin/env python3
"""webhook_server.py - webhooks against a real HTTP server with faults injected.

Usage: webhook_server.py /path/to/webhook_e2e

Starts a small HTTP server on 127.0.0.1 (a free port; a child process of this script, so that
it can really be killed), then tests/webhook_e2e.c, which delivers 40 events from an
in-memory outbox to two endpoints (/contract in batches of 5, /listmonk one by one) through
the libcurl transport.  The server answers by a schedule over its requests, counted across
its restarts:

    1, 2   500
    3      logged, then 2.5 s of silence (the client's timeout is 1 s), then 200
    4      503 with Retry-After: 1
    6      logged, then the server SIGKILLs itself before answering (killed mid-batch):
           the client got nothing and sends the batch again
    9      the server SIGKILLs itself before logging (the request is lost to it)
    12     logged, then the connection is closed without an answer
    others 200

After each kill this script waits 1.5 s before starting the server again on the same port,
so the client meets "connection refused" meanwhile.  Then it checks, from the server's log:
every event arrived at least once on its endpoint with its recipient; every request had a
valid X-Bouncepipe-Signature (HMAC-SHA256 over t "." body with the shared secret, t within
5 minutes of the server's clock), the configured Authorization header and a parseable JSON
body of the right shape; an event that arrived more than once carried the same key each time
(Idempotency-Key = event_id for single events, event_id inside batches); and that each fault
really happened.  Bounded: the client gives up after 120 s, this script after 180 s.
"""
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SECRET = "e2e-secret-0123456789abcdef"
SCHEDULE = {1: "500", 2: "500", 3: "slow", 4: "503", 6: "kill-after-log", 9: "kill-before-log", 12: "hangup"}


def serve(port, state_path, log_path, secret):
    lock = threading.Lock()

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
        with lock:
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())

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

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            n = next_number()
            fault = SCHEDULE.get(n, "")
            if fault == "kill-before-log":
                os.kill(os.getpid(), signal.SIGKILL)
            now = time.time()
            sig = self.headers.get("X-Bouncepipe-Signature", "")
            parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
            t = parts.get("t", "")
            want = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
            sig_ok = t.isdigit() and hmac.compare_digest(want, parts.get("v1", "")) and abs(now - int(t)) <= 300
            status = {"500": 500, "503": 503}.get(fault, 200)
            log({"n": n, "path": self.path, "sig_ok": sig_ok, "key": self.headers.get("Idempotency-Key"),
                 "auth": self.headers.get("Authorization"), "type": self.headers.get("Content-Type"),
                 "fault": fault, "status": status, "body": body.decode("utf-8", "replace")})
            if fault == "kill-after-log":
                os.kill(os.getpid(), signal.SIGKILL)
            if fault == "hangup":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "slow":
                time.sleep(2.5)
            try:
                self.answer(status, {"Retry-After": "1"} if fault == "503" else None)
            except OSError:
                pass  # the client gave up (its timeout): that is the point of the fault

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


def fail(msg):
    print(f"FAIL: webhook_faults: {msg}", file=sys.stderr)
    sys.exit(1)


def wait_listening(port, proc):
    for _ in range(100):
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def drive(e2e):
    tmp = tempfile.mkdtemp(prefix="bp-webhook-")
    state, log_path = os.path.join(tmp, "state"), os.path.join(tmp, "requests.ndjson")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server_cmd = [sys.executable, __file__, "--serve", str(port), state, log_path, SECRET]

    def start_server():
        p = subprocess.Popen(server_cmd)
        if not wait_listening(port, p):
            p.kill()
            fail("the test server did not start")
        return p

    server = start_server()
    client = subprocess.Popen([e2e, f"http://127.0.0.1:{port}", SECRET], stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(client.stdout), daemon=True)
    reader.start()
    restarts = 0
    deadline = time.time() + 180
    try:
        while client.poll() is None:
            if time.time() > deadline:
                client.kill()
                fail("the client did not finish within 180 s")
            if server.poll() is not None:
                if server.returncode != -signal.SIGKILL:
                    fail(f"the test server exited with {server.returncode}")
                restarts += 1
                if restarts > 5:
                    fail("the test server died too often")
                time.sleep(1.5)  # connection refused meanwhile
                server = start_server()
            time.sleep(0.05)
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(10)
    reader.join(10)
    if client.returncode != 0:
        sys.stdout.write("".join(lines))
        fail(f"webhook_e2e exited with {client.returncode}")

    events = {}
    for line in lines:
        f = line.split(" ", 3)
        if f[0] == "EVENT":
            events[f[2]] = (f[1], f[3].rstrip("\n"))
    if len(events) != 40:
        fail(f"expected 40 events from the client, got {len(events)}")
    client_logs = [l for l in lines if l.startswith("LOG ")]

    with open(log_path) as f:
        requests = [json.loads(l) for l in f]
    seen = {}  # event key -> number of arrivals
    for r in requests:
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
        elif r["path"] == "/contract":
            items = body if isinstance(body, list) else [body]
            got = [(i.get("event_id"), i.get("recipient")) for i in items]
            if isinstance(body, list):
                if not (r["key"] or "").startswith("batch-"):
                    fail(f"{where}: a batch without a batch Idempotency-Key")
            elif r["key"] != got[0][0]:
                fail(f"{where}: Idempotency-Key {r['key']} is not the event's key {got[0][0]}")
        else:
            fail(f"{where}: unexpected path")
        for key, rcpt in got:
            if key not in events:
                fail(f"{where}: unknown event key {key}")
            endpoint, want_rcpt = events[key]
            if r["path"] != "/" + endpoint or rcpt != want_rcpt:
                fail(f"{where}: event {key} arrived as {rcpt} on {r['path']}, want {want_rcpt} on /{endpoint}")
            seen[key] = seen.get(key, 0) + 1
    missing = [k for k in events if k not in seen]
    if missing:
        fail(f"{len(missing)} event(s) never arrived: {missing[:3]}")
    delivered_ok = {k for r in requests if r["status"] == 200 and r["fault"] not in ("kill-after-log", "hangup")
                    for k in ([json.loads(r["body"])["meta"]["event_id"]] if r["path"] == "/listmonk" else
                              [i["event_id"] for i in (json.loads(r["body"]) if r["body"].startswith("[")
                                                       else [json.loads(r["body"])])])}
    not_acked = [k for k in events if k not in delivered_ok]
    if not_acked:
        fail(f"{len(not_acked)} event(s) never got an answered 200: {not_acked[:3]}")
    dups = sum(1 for k in seen if seen[k] > 1)
    faults = {r["fault"] for r in requests}
    for want in ("500", "503", "slow", "kill-after-log", "hangup"):
        if want not in faults:
            fail(f"fault '{want}' never happened (schedule out of step with the client)")
    if restarts < 2:
        fail(f"the server was killed {restarts} time(s), want 2")
    if not any(("refused" in l or "Couldn't connect" in l or "Failed to connect" in l) for l in client_logs):
        fail("the client never met a refused connection")
    if not any("timed out" in l.lower() or "timeout" in l.lower() for l in client_logs):
        fail("the client never timed out")
    if dups == 0:
        fail("no event arrived twice, yet faults that cause duplicates were injected")
    done = [l for l in lines if l.startswith("DONE")]
    print(f"webhook_faults: ok: 40 events on 2 endpoints, {len(requests)} requests logged, {restarts} server kills, "
          f"{len(client_logs)} failed attempts, {dups} events arrived more than once (same key), "
          f"every signature valid; {done[0].strip() if done else ''}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif len(sys.argv) == 2:
        drive(sys.argv[1])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
