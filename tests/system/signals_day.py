#!/usr/bin/env python3
"""signals_day.py BIN - a day of synthetic traffic, and the alerts it must raise (issue 15).

Three sending IPs in two virtual MTAs and two streams send all day:
  192.0.2.10  vmta-a  marketing
  192.0.2.11  vmta-b  marketing      listed on Spamhaus ZEN from 13:00
  192.0.2.12  vmta-b  transactional  clean all day
Every 10 minutes of the day the script writes what happened in them and feeds it to
bouncepipe the way a PowerMTA host would: the accounting records (`acct FILE`: deliveries,
hard bounces, the rejections naming Spamhaus, Gmail's 421 4.7.28 deferrals as `t` records,
complaints as `f` records) and the returned mail (`replay DIR`, as pipe mode records it: DSNs
of the listing, ARF complaints with the stream in the returned original's X-Traffic-Type).
Complaints about the marketing stream rise from 14:00; Gmail defers a share of 192.0.2.10's
mail between 18:00 and 19:00.  After each slice `signals --check --now END_OF_SLICE` runs,
with each alert's command a script that appends its arguments to a log.

The script computes, from what it generated, when each alert's condition first holds (the
windows as docs/signals.md defines them: whole UTC hours), and checks that:
  - the listing alert fires exactly once, at the first check after 13:00, with the command's
    arguments vmta-b 192.0.2.11 spamhaus-zen;
  - the deferral alert fires exactly once, for gmail, at the check its share first reaches the
    threshold;
  - the complaint alert fires exactly once, for stream marketing, at the check the rate first
    reaches 0.1 % with at least 1000 deliveries;
  - `signals --check` exits 1 at exactly those checks, 0 at every other;
  - nothing ever names the clean IP 192.0.2.12 or the clean stream transactional;
  - `signals --format json` at the end counts exactly the deliveries, bounces and complaints
    generated per group, and re-reading every accounting file changes nothing (the watermark).
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

DAY = 1748822400  # 2025-06-02T00:00:00Z
SLICE = 600
IPS = {
    "192.0.2.10": ("vmta-a", "marketing", 60),
    "192.0.2.11": ("vmta-b", "marketing", 45),
    "192.0.2.12": ("vmta-b", "transactional", 30),
}
LISTED_IP, LISTED_FROM = "192.0.2.11", DAY + 13 * 3600
COMPLAINTS_FROM = DAY + 14 * 3600
DEFER_IP, DEFER_FROM, DEFER_UNTIL = "192.0.2.10", DAY + 18 * 3600, DAY + 19 * 3600
RECEIVERS = [("gmail.com", "gmail-smtp-in.l.google.com"), ("yahoo.com", "mta5.am0.yahoodns.net"),
             ("outlook.com", "example-com.mail.protection.outlook.com"), ("example.net", "mx.example.net")]
CONFIG = """[signals]
listing_command = {cmd};listing;{{ip}};{{vmta}};{{list}}
deferral_command = {cmd};deferral;{{receiver}}
complaint_command = {cmd};complaint;{{stream}}
deferral_share = 25
deferral_min = 100
complaint_rate = 0.1
complaint_min = 1000
complaint_window = 24h
cooldown = 24h
host = mta1.example.com
"""
ACCT_HEADER = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,jobId,dlvSourceIp,vmta," \
              "header_X-Traffic-Type,feedbackType\r\n"

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def rfc2822(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))


def csv_line(fields):
    out = []
    for f in fields:
        f = "" if f is None else str(f)
        if any(c in f for c in ',"\r\n'):
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return ",".join(out) + "\r\n"


def dsn(n, t, rcpt, remote, diag, stream, vmta):
    return ("From: MAILER-DAEMON@mta1.example.com\nTo: bounces@bounces.example.com\n"
            "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <day-dsn-%d@mta1.example.com>\n"
            "Date: %s\nMIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b%d\"\n\n"
            "--b%d\nContent-Type: text/plain\n\nundelivered\n\n"
            "--b%d\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mta1.example.com\n\n"
            "Final-Recipient: rfc822; %s\nAction: failed\nStatus: 5.7.1\nRemote-MTA: dns; %s\n"
            "Diagnostic-Code: smtp; %s\n\n"
            "--b%d\nContent-Type: text/rfc822-headers\n\nFrom: news@example.com\nTo: %s\nSubject: news\n"
            "X-Traffic-Type: %s\nX-PowerMTA-VirtualMTA: %s\n\n--b%d--\n"
            % (n, rfc2822(t), n, n, n, rcpt, remote, diag, n, rcpt, stream, vmta, n))


def arf(n, t, rcpt, ip, stream, vmta):
    return ("From: fbl@feedback.example.net\nTo: fbl@bounces.example.com\nSubject: complaint\n"
            "Message-ID: <day-arf-%d@feedback.example.net>\nDate: %s\nMIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"a%d\"\n\n"
            "--a%d\nContent-Type: text/plain\n\nabuse report\n\n"
            "--a%d\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: fbl/1\n"
            "Version: 1\nOriginal-Rcpt-To: %s\nSource-IP: %s\n\n"
            "--a%d\nContent-Type: text/rfc822-headers\n\nFrom: news@example.com\nTo: %s\nSubject: news\n"
            "X-Traffic-Type: %s\nX-PowerMTA-VirtualMTA: %s\n\n--a%d--\n"
            % (n, rfc2822(t), n, n, n, rcpt, ip, n, rcpt, stream, vmta, n))


class Day:
    """What was generated, slice by slice: enough to know when each alert must fire."""

    def __init__(self):
        self.rnd = random.Random(15)
        self.n = 0
        self.records = []  # (time, kind, ip, receiver, stream): kind delivered/deferred/named/bounced/complaint
        self.totals = {}   # (ip, vmta, stream) -> [delivered, bounced, complaints]

    def note(self, t, kind, ip, receiver, stream):
        self.records.append((t, kind, ip, receiver, stream))
        vmta = IPS[ip][0] if ip else None
        key = (ip, vmta, stream)
        tot = self.totals.setdefault(key, [0, 0, 0])
        if kind == "delivered":
            tot[0] += 1
        elif kind in ("bounced", "named"):
            tot[1] += 1
        elif kind == "complaint":
            tot[2] += 1

    def slice(self, start, acct, maildir):
        rows = []
        for ip, (vmta, stream, per_slice) in IPS.items():
            for i in range(per_slice):
                t = start + (i * SLICE) // per_slice
                dom, mx = RECEIVERS[i % len(RECEIVERS)]
                self.n += 1
                rcpt = "u%d@%s" % (self.n, dom)
                receiver = {"gmail.com": "gmail", "yahoo.com": "yahoo", "outlook.com": "microsoft"}.get(dom)
                common = [iso(t), "bounces@bounces.example.com", rcpt]
                tail = ["job-%d" % (t // 3600), ip, vmta, stream, None]
                listed = ip == LISTED_IP and t >= LISTED_FROM and dom == "example.net"
                deferred = ip == DEFER_IP and DEFER_FROM <= t < DEFER_UNTIL and dom == "gmail.com" and i % 8 < 6
                if listed and i % 3 == 0:  # the rejection comes back as mail (our DSN of it)
                    with open(os.path.join(maildir, "dsn-%d.eml" % self.n), "w") as f:
                        f.write(dsn(self.n, t, rcpt, mx, "554 5.7.1 Service unavailable; Client host [%s] blocked "
                                    "using zen.spamhaus.org" % ip, stream, vmta))
                    self.note(t, "named", ip, receiver, stream)
                elif listed:
                    rows.append(["b"] + common + ["failed", "5.7.1", "smtp;554 5.7.1 Service unavailable; Client host "
                                 "[%s] blocked using zen.spamhaus.org" % ip, "%s (203.0.113.9)" % mx, "policy-related"]
                                + tail)
                    self.note(t, "named", ip, receiver, stream)
                elif deferred:
                    rows.append(["t"] + common + ["delayed", "4.7.28", "smtp;421-4.7.28 [%s] Our system has detected "
                                 "an unusual rate of unsolicited mail originating from your IP address. - gsmtp" % ip,
                                 "%s (142.250.0.27)" % mx, "policy-related"] + tail)
                    self.note(t, "deferred_named", ip, receiver, stream)
                elif i % 29 == 7:
                    rows.append(["b"] + common + ["failed", "5.1.1", "smtp;550 5.1.1 <%s>: Recipient address rejected: "
                                 "User unknown" % rcpt, "%s (203.0.113.9)" % mx, "bad-mailbox"] + tail)
                    self.note(t, "bounced", ip, receiver, stream)
                else:
                    rows.append(["d"] + common + ["relayed", "2.0.0", "smtp;250 2.0.0 ok", "%s (203.0.113.9)" % mx,
                                 None] + tail)
                    self.note(t, "delivered", ip, receiver, stream)
            # complaints: a few per day about marketing (never at the start, where one complaint
            # over the first 1000 deliveries would already be 0.1 %), then many from 14:00
            if stream == "marketing":
                k = 2 if start >= COMPLAINTS_FROM else (1 if (start // SLICE) % 30 == 15 else 0)
                for c in range(k):
                    t = start + 300 + c
                    self.n += 1
                    rcpt = "c%d@yahoo.com" % self.n
                    if c % 2 == 0:
                        with open(os.path.join(maildir, "arf-%d.eml" % self.n), "w") as f:
                            f.write(arf(self.n, t, rcpt, ip, stream, vmta))
                    else:
                        rows.append(["f", iso(t), "bounces@bounces.example.com", rcpt, None, None, None, None, None,
                                     None, None, None, stream, "abuse"])
                    self.note(t, "complaint", ip if c % 2 == 0 else None, "yahoo", stream)
        rows.sort(key=lambda r: r[1])
        with open(acct, "w", newline="") as f:
            f.write(ACCT_HEADER)
            for r in rows:
                f.write(csv_line(r))

    # -- when each alert must fire, by docs/signals.md's definitions -------------------------

    def listing_due(self, now):
        lo = ((now - 3600) // 3600) * 3600
        return any(k == "named" and ip == LISTED_IP and lo <= t <= now for t, k, ip, _, _ in self.records)

    def deferral_share(self, now):
        """The worst share of gmail's named deferrals in an hour bucket of the last hour."""
        best = 0.0
        for h in range((now - 3600) // 3600, now // 3600 + 1):
            att = named = 0
            for t, k, ip, rcv, _ in self.records:
                if rcv != "gmail" or not (h * 3600 <= t <= now and t < (h + 1) * 3600):
                    continue
                if k in ("delivered", "bounced", "named", "deferred_named"):
                    att += 1
                if k == "deferred_named":
                    named += 1
            if att >= 100:
                best = max(best, 100.0 * named / att)
        return best

    def complaint_rate(self, now):
        lo = ((now - 86400) // 3600) * 3600
        dl = sum(1 for t, k, _, _, s in self.records if k == "delivered" and s == "marketing" and lo <= t <= now)
        cp = sum(1 for t, k, _, _, s in self.records if k == "complaint" and s == "marketing" and lo <= t <= now)
        return (100.0 * cp / dl if dl else 0.0), dl


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="bp-signals-day-")
    try:
        db = os.path.join(tmp, "day.db")
        log = os.path.join(tmp, "actions.log")
        cmd = os.path.join(tmp, "action.sh")
        with open(cmd, "w") as f:
            f.write("#!/bin/sh\nprintf '%%s\\n' \"$*\" >>'%s'\n" % log)
        os.chmod(cmd, 0o755)
        conf = os.path.join(tmp, "bouncepipe.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(cmd=cmd))
        env = dict(os.environ, BOUNCEPIPE_CONFIG=conf, BOUNCEPIPE_DB=db)
        day = Day()
        want = {}  # alert -> the check time it must fire at
        fired = []  # (check time, log line)
        exit1 = []
        acct_files = []
        for s in range(86400 // SLICE):
            start = DAY + s * SLICE
            now = start + SLICE - 1
            acct = os.path.join(tmp, "acct-%03d.csv" % s)
            maildir = os.path.join(tmp, "mail-%03d" % s)
            os.mkdir(maildir)
            day.slice(start, acct, maildir)
            acct_files.append(acct)
            p = run([binary, "acct", "--quiet", acct], env=env)
            if p.returncode != 0:
                fail("acct %s: exit %d: %s" % (acct, p.returncode, p.stderr))
            if os.listdir(maildir):
                p = run([binary, "replay", maildir], env=env)
                if p.returncode != 0:
                    fail("replay %s: exit %d: %s" % (maildir, p.returncode, p.stderr))
            if "listing" not in want and day.listing_due(now):
                want["listing"] = now
            if "deferral" not in want and day.deferral_share(now) >= 25.0:
                want["deferral"] = now
            rate, dl = day.complaint_rate(now)
            if "complaint" not in want and dl >= 1000 and rate >= 0.1:
                want["complaint"] = now
            before = open(log).read().splitlines() if os.path.exists(log) else []
            p = run([binary, "signals", "--check", "--now", str(now)], env=env)
            after = open(log).read().splitlines() if os.path.exists(log) else []
            if p.returncode not in (0, 1):
                fail("signals --check at %s: exit %d: %s" % (iso(now), p.returncode, p.stderr))
            if p.returncode == 1:
                exit1.append(now)
            for line in after[len(before):]:
                fired.append((now, line))
            if "192.0.2.12" in p.stdout or "transactional" in p.stdout:
                fail("at %s an alert names the clean IP or stream: %s" % (iso(now), p.stdout))
        for a in ("listing", "deferral", "complaint"):
            if a not in want:
                fail("the day never met the %s condition: the traffic is wrong" % a)
        # the scenario itself: each condition is met by what changed, not by the background
        for a, since in (("listing", LISTED_FROM), ("deferral", DEFER_FROM), ("complaint", COMPLAINTS_FROM)):
            if a in want and want[a] < since:
                fail("the %s condition holds at %s, before its cause at %s: the traffic is wrong"
                     % (a, iso(want[a]), iso(since)))
        print("conditions first hold at: " + ", ".join("%s %s" % (a, iso(t)) for a, t in sorted(want.items())))
        print("commands ran: " + "; ".join("%s: %s" % (iso(t), l) for t, l in fired))
        expect = {
            "listing": "listing %s vmta-b spamhaus-zen" % LISTED_IP,
            "deferral": "deferral gmail",
            "complaint": "complaint marketing",
        }
        for a, line in expect.items():
            got = [t for t, l in fired if l.split(" ")[0] == a]
            if len(got) != 1:
                fail("alert %s fired %d times, want once" % (a, len(got)))
                continue
            if a in want and got[0] != want[a]:
                fail("alert %s fired at %s, want %s" % (a, iso(got[0]), iso(want[a])))
            lines = [l for t, l in fired if l.split(" ")[0] == a]
            if lines[0] != line:
                fail("alert %s ran its command with '%s', want '%s'" % (a, lines[0], line))
        if sorted(exit1) != sorted(want.values()):
            fail("signals --check exited 1 at %s, want %s" % ([iso(t) for t in exit1],
                                                               [iso(t) for t in sorted(want.values())]))
        for _, line in fired:
            if "192.0.2.12" in line or "transactional" in line:
                fail("a command ran for the clean IP or stream: %s" % line)
        # the counts: what was generated, group by group
        end = DAY + 86400
        p = run([binary, "signals", "--since", str(DAY), "--now", str(end), "--format", "json", "--top", "100"], env=env)
        got = json.loads(p.stdout)
        for pas in ("first", "after re-reading every accounting file"):
            sums = {}
            for g in got["groups"]:
                key = (g["sending_ip"], g["vmta"], g["stream"])
                s = sums.setdefault(key, [0, 0, 0])
                s[0] += g["delivered"]
                s[1] += g["bounced"]
                s[2] += g["complaints"]
            for key, (dl, bo, cp) in day.totals.items():
                if key not in sums or sums[key] != [dl, bo, cp]:
                    fail("%s: counts for %s: got %s, want %s" % (pas, key, sums.get(key), [dl, bo, cp]))
            for acct in acct_files:
                run([binary, "acct", "--quiet", acct], env=env)
            p = run([binary, "signals", "--since", str(DAY), "--now", str(end), "--format", "json", "--top", "100"],
                    env=env)
            got = json.loads(p.stdout)
        if failures:
            print("signals_day: %d failures" % len(failures), file=sys.stderr)
            return 1
        print("signals_day: ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
