#!/usr/bin/env python3
"""pg_hosts_gen.py DIR HOSTS: the mail of tests/system/pg_hosts.sh.

Writes DIR/host<N>/<i>.eml for each simulated MTA host: DSNs (RFC 3464, Postfix's shape)
about a small pool of recipients, so that hosts collide on the same addresses all the time.
Every host gets its own messages plus the same "shared" messages (one bounce arriving at
every MX of the fleet, or the MTA retrying after a 75): those must be recorded once.
Some DSNs are 5.2.2 mailbox full (a soft bounce), most are 5.1.1 user unknown (suppress); one in
eight names two recipients (so that transactions lock two addresses, in either order: the
database may abort one as a deadlock, and the pipe exits 75 to be run again).
DIR/expected.json holds, per address, how many distinct suppressing messages name it, the
number of distinct messages and of recipient events.
"""
import json
import os
import random
import sys

out, hosts = sys.argv[1], int(sys.argv[2])
OWN, SHARED, POOL = 60, 25, 12
random.seed(4)
expected = {"messages": 0, "events": 0, "suppress": {}, "soft": {}}


def dsn(tag, rcpts, hard, minute):
    rcpt = rcpts[0]
    status, code, text = (("5.1.1", "550", "Recipient address rejected: User unknown in virtual mailbox table")
                          if hard else ("5.2.2", "552", "Mailbox full: quota exceeded"))
    action = "failed"
    boundary = "b-%s" % tag
    blocks = "\n".join(f"""Final-Recipient: rfc822; {r}
Original-Recipient: rfc822;{r}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.example.net
Diagnostic-Code: smtp; {code} {status} <{r}>: {text}
""" for r in rcpts)
    local = rcpt.replace("@", "=")
    return f"""Return-Path: <>
Date: Thu, 19 Nov 2026 10:{minute:02d}:31 +0000
From: MAILER-DAEMON@mx1.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces-{local}@bounces.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Message-Id: <{tag}@mx1.example.net>

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.example.net.

<{rcpt}>: host mail.example.net[192.0.2.25] said: {code} {status}
    <{rcpt}>: {text} (in reply to RCPT TO command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.example.net
Arrival-Date: Thu, 19 Nov 2026 10:00:05 +0000

{blocks}
--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <bounces-{local}@bounces.example.com>
From: news@example.com
To: {rcpt}
Subject: November news ({tag})
Message-ID: <orig-{tag}@mta1.example.com>

--{boundary}--
"""


def note(rcpts, hard):
    kind = "suppress" if hard else "soft"
    for rcpt in rcpts:
        expected[kind][rcpt] = expected[kind].get(rcpt, 0) + 1
        expected["events"] += 1
    expected["messages"] += 1


def recipients(first):
    """first, and one in eight times a second recipient of the pool before or after it"""
    if random.random() >= 0.125:
        return [first]
    while True:
        other = "user%d@example.%s" % (random.randrange(POOL), random.choice(["com", "net", "org"]))
        if other != first:
            return [first, other] if random.random() < 0.5 else [other, first]


shared = []
for i in range(SHARED):
    rcpts = recipients("user%d@example.%s" % (i % POOL, ["com", "net", "org"][i % 3]))
    hard = i % 5 != 0
    shared.append(dsn("shared-%d" % i, rcpts, hard, i % 60))
    note(rcpts, hard)
for h in range(hosts):
    d = os.path.join(out, "host%d" % h)
    os.makedirs(d, exist_ok=True)
    mails = list(shared)
    for i in range(OWN):
        rcpts = recipients("user%d@example.%s" % (random.randrange(POOL), ["com", "net", "org"][i % 3]))
        hard = random.random() < 0.8
        mails.append(dsn("h%d-%d" % (h, i), rcpts, hard, i % 60))
        note(rcpts, hard)
    random.shuffle(mails)
    for i, m in enumerate(mails):
        with open(os.path.join(d, "%03d.eml" % i), "w") as f:
            f.write(m)
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f)
