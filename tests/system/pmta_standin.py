#!/usr/bin/env python3
"""pmta_standin.py - the `pmta` command of tests/system/docs_powermta.sh: PowerMTA played, as far as
contrib/powermta/README.md calls on it, with tests/system/pmta_e2e.py's PowerMTA (the same parser of
the pasted configuration, the same accounting writer and pipe delivery).  PowerMTA is not
installed here; this is not PowerMTA and implements nothing else of it.

  pmta reload | pmta restart
      reads /etc/pmta/config as PowerMTA would after the README's step 4 (the <domain> pipe
      command of the bounce domain, relay-domain, the <acct-file |...> program and its
      record-fields, the file copy's path and move-to, run-as-root), fails like PowerMTA on a
      configuration without them, then
        * (re)starts its SMTP listener on 127.0.0.1:25 (mta1.example.com in /etc/hosts: the
          test's stand-in for DNS), which accepts mail for the relay domains and delivers each
          message, once per recipient, to the domain's pipe command - after the 250, from its
          queue, as root unless run-as-root false, retrying a 75 every 2 s for 2 minutes -
          and logs each delivery to /var/log/pmta/log;
        * "sends a campaign": starts the accounting program as root and streams records to it
          (a b record, a d record, an f record naming its recipient by VERP Return-Path), and
          writes the same records to the file copy acct-YYYY-MM-DD-0000.csv beside the
          configured path, plus one b record that only the file copy holds (the pipe given up
          after write-timeout); yesterday's file copy (one b record from before bouncepipe was
          set up) lies in the move-to archive, as move-interval leaves it.
  pmta-standin serve   (internal: the SMTP listener)

Records carry fixed times, so a second reload adds nothing to the store (idempotency keys).
"""
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmta_e2e  # noqa: E402  (PowerMTA as tests/system/pmta_e2e.py plays it)

CONFIG = "/etc/pmta/config"
LOG = "/var/log/pmta/log"
PIDFILE = "/run/pmta-standin.pid"
T0 = 1795169000  # 2026-11-20 10:03:20 UTC

# (type, values, in the pipe too?) - the campaign of a reload
TODAY = [
    ("b", dict(rcpt="gone.user@example.org", dsnAction="failed", dsnStatus="5.1.1 (bad destination mailbox address)",
               dsnDiag="smtp;550 5.1.1 <gone.user@example.org>: Recipient address rejected: User unknown",
               dsnMta="mx.example.org (192.0.2.25)", bounceCat="bad-mailbox", vmta="vmta1", jobId="news-1120",
               envId="env-1001"), True),
    ("d", dict(rcpt="ok.reader@example.org", dsnStatus="2.0.0 (success)", jobId="news-1120", envId="env-1002"), True),
    ("f", dict(rcpt="redacted@aol.example", feedbackType="abuse", userAgent="AOL SComp",
               reportingMta="dns;mail.aol.example", dlvSourceIp="192.0.2.10",
               **{"header_Return-Path": "<" + pmta_e2e.verp("ayumi@aol.example") + ">",
                  "header_X-job": "news-1120"}), True),
    ("b", dict(rcpt="late.user@example.org", dsnAction="failed", dsnStatus="5.1.1 (bad destination mailbox address)",
               dsnDiag="smtp;550 5.1.1 no such user", dsnMta="mx.example.org (192.0.2.25)", bounceCat="bad-mailbox",
               vmta="vmta1", jobId="news-1120", envId="env-1003"), False),
]
YESTERDAY = [
    ("b", dict(rcpt="old.history@example.org", dsnAction="failed", dsnStatus="5.1.1 (bad destination mailbox address)",
               dsnDiag="smtp;550 5.1.1 mailbox unavailable", dsnMta="mx.example.org (192.0.2.25)",
               bounceCat="bad-mailbox", vmta="vmta1", jobId="news-1119", envId="env-0901"), False),
]


def log(line):
    with open(LOG, "a") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")


def die(msg):
    print(f"pmta (stand-in): {msg}", file=sys.stderr)
    sys.exit(1)


def load():
    """What PowerMTA needs of the README's configuration, or an error as PowerMTA would give."""
    if not os.path.exists(CONFIG):
        die(f"{CONFIG}: no such file")
    text = open(CONFIG).read()
    active = "\n".join(line.split("#")[0] for line in text.splitlines())
    try:
        pipe_command, acct_command, fields, types = pmta_e2e.read_pmta_conf(CONFIG)
    except (AttributeError, TypeError):
        die(f"{CONFIG}: no <domain bounces.example.com> with a pipe command, or no <acct-file |...>")
    relays = re.findall(r"^\s*relay-domain\s+(\S+)", active, re.M)
    copy = re.search(r"<acct-file (/[^>]*)>(.*?)</acct-file>", active, re.S)
    move_to = re.search(r"^\s*move-to\s+(\S+)", copy.group(2), re.M) if copy else None
    as_root = re.search(r"^\s*run-as-root\s+(false|no)\b", active, re.M) is None
    return dict(pipe=pipe_command, acct=acct_command, fields=fields, types=types, relays=relays,
                copy=copy.group(1).strip() if copy else None, move_to=move_to.group(1) if move_to else None,
                as_root=as_root)


def record_values(rtype, values, t):
    v = dict(values)
    v["timeLogged"] = pmta_e2e.when(t)
    if "rcpt" in v:
        v.setdefault("orig", pmta_e2e.verp(v["rcpt"]))
    if rtype == "b":
        v["timeQueued"] = pmta_e2e.when(t - 5)
    return v


def write_copy(path, fields, types, records, t):
    """A file copy as PowerMTA writes it: the union header, CRLF, each record its own fields."""
    columns = []
    for ty in types:
        for c in fields[ty]:
            if c not in columns:
                columns.append(c)
    with open(path, "w", newline="") as f:
        f.write(",".join(columns) + "\r\n")
        for i, (rtype, values, _) in enumerate(records):
            v = record_values(rtype, values, t + i)
            cells = []
            for c in columns:
                x = rtype if c == "type" else (str(v.get(c, "")) if c in fields[rtype] else "")
                if any(ch in x for ch in ',"\r\n'):
                    x = '"' + x.replace('"', '""') + '"'
                cells.append(x)
            f.write(",".join(cells) + "\r\n")


def campaign(conf):
    acct = pmta_e2e.Accounting(conf["acct"], conf["fields"], conf["types"])
    for i, (rtype, values, in_pipe) in enumerate(TODAY):
        if in_pipe:
            acct.record(rtype, **record_values(rtype, values, T0 + i))
    rc, err = acct.close()
    log(f"acct-file |{conf['acct']}: exit {rc}{': ' + err.strip() if err.strip() else ''}")
    if rc != 0:
        die(f"the accounting program failed (exit {rc}): {err.strip()}")
    if conf["copy"]:
        base = os.path.dirname(conf["copy"])
        os.makedirs(base, exist_ok=True)
        write_copy(os.path.join(base, time.strftime("acct-%Y-%m-%d-0000.csv", time.gmtime(T0))), conf["fields"],
                   conf["types"], TODAY, T0)
        if conf["move_to"]:
            os.makedirs(conf["move_to"], exist_ok=True)
            write_copy(os.path.join(conf["move_to"], time.strftime("acct-%Y-%m-%d-0000.csv", time.gmtime(T0 - 86400))),
                       conf["fields"], conf["types"], YESTERDAY, T0 - 86400)


# ---- the SMTP listener -----------------------------------------------------------------------


def deliver(conf, rcpt, envid, message):
    domain = rcpt.rsplit("@", 1)[-1].lower()
    deadline = time.time() + 120
    while True:
        rc, err = pmta_e2e.run_pipe(conf["pipe"], rcpt, envid, message, as_root=conf["as_root"])
        if rc == 0:
            log(f"delivered {rcpt} via pipe ({domain}): exit 0")
            return
        log(f"temporary failure (exit {rc}): {err.strip()} [{rcpt}]")
        if rc != 75 or time.time() > deadline:
            log(f"failed {rcpt}")
            return
        time.sleep(2)


class Session(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        conf = self.server.conf
        self.reply("220 mta1.example.com ESMTP (PowerMTA stand-in of tests/system/docs_powermta.sh)")
        rcpts, envid = [], ""
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").strip()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-mta1.example.com" if verb == "EHLO" else "250 mta1.example.com")
                if verb == "EHLO":
                    self.reply("250-8BITMIME")
                    self.reply("250 DSN")
            elif verb == "MAIL":
                rcpts, envid = [], ""
                for arg in cmd.split()[2:] if " " in cmd else []:
                    if arg.upper().startswith("ENVID="):
                        envid = arg[6:]
                self.reply("250 ok")
            elif verb == "RCPT":
                addr = cmd.split(":", 1)[1].strip().split()[0].strip("<>")
                if addr.rsplit("@", 1)[-1].lower() in conf["relays"]:
                    rcpts.append(addr)
                    self.reply("250 ok")
                else:
                    self.reply("550 5.7.1 relaying denied")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("503 no recipients")
                    continue
                self.reply("354 go ahead")
                data = bytearray()
                for raw in iter(self.rfile.readline, b""):
                    if raw in (b".\r\n", b".\n"):
                        break
                    data += raw[1:] if raw.startswith(b".") else raw
                self.reply("250 2.6.0 message received")
                for r in rcpts:
                    threading.Thread(target=deliver, args=(conf, r, envid, bytes(data))).start()
                rcpts = []
            elif verb == "RSET":
                rcpts = []
                self.reply("250 ok")
            elif verb == "NOOP":
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 5.5.1 not implemented by the stand-in")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False


def serve():
    server = Server(("127.0.0.1", 25), Session)
    server.conf = load()
    with open(PIDFILE, "w") as f:
        f.write(f"{os.getpid()}\n")
    server.serve_forever()


def stop():
    try:
        pid = int(open(PIDFILE).read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        pass
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    os.unlink(PIDFILE)


def start():
    with open(LOG, "a") as out:
        subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve"], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=out, start_new_session=True)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", 25), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    die("the SMTP listener did not start (see /var/log/pmta/log)")


def main(argv):
    if len(argv) == 2 and argv[1] == "serve":
        serve()
        return 0
    if len(argv) != 2 or argv[1] not in ("reload", "restart", "stop"):
        die("the stand-in knows only `pmta reload`, `pmta restart` (and `stop`, for the test's clean-up)")
    if argv[1] == "stop":
        stop()
        return 0
    os.makedirs(os.path.dirname(LOG), exist_ok=True)
    conf = load()
    stop()
    start()
    campaign(conf)
    log(f"pmta {argv[1]}: configuration loaded")
    print(f"pmta (stand-in): {argv[1]}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
