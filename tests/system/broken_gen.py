#!/usr/bin/env python3
"""broken_gen.py OUTDIR [--scale N] [--big-message] [--mbox-gb G]

Write the large members of the broken corpus (fixtures/broken/README.md) into OUTDIR, so that
megabytes are generated at test time instead of committed.  --scale divides the sizes (the
valgrind run uses a smaller scale: the shapes matter there, not the megabytes).
--big-message also writes big-50mb.msg (the peak-RSS test), --mbox-gb G a G-gigabyte mbox
(replay-1g.mbox; local evidence, not a CI test).  Addresses are example.* only.
"""
import os
import sys

HDR = ("From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\n"
       "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <{id}@mx.example.net>\n"
       "MIME-Version: 1.0\n")
GROUP = ("Final-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: 5.1.1\n"
         "Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: User unknown\n")


def dsn(msg_id, groups, head_extra="", tail="--B--\n"):
    return (HDR.format(id=msg_id) + head_extra +
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
            "--B\nContent-Type: text/plain\n\nDelivery failed.\n\n"
            "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n" +
            groups + "\n" + tail)


def write(outdir, name, chunks):
    with open(os.path.join(outdir, name), "wb") as f:
        for c in chunks:
            f.write(c.encode() if isinstance(c, str) else c)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    outdir = args[0]
    scale = int(args[args.index("--scale") + 1]) if "--scale" in args else 1
    os.makedirs(outdir, exist_ok=True)
    one = GROUP.format(rcpt="alice@example.com")

    # a 10 MB header line (one unfolded field), then a good report
    n = 10 * 1024 * 1024 // scale
    write(outdir, "header-10mb-line.msg", ["X-Long: ", "a" * n, "\n", dsn("hdr10", one)])
    # 10 MB of one field folded over 100,000 continuation lines
    write(outdir, "header-10mb-folded.msg",
          ["X-Folded: start\n", (" " + "b" * 99 + "\n") * (100000 // scale), dsn("fold10", one)])
    # a body line of 20 MB with no newline at all, after a minimal header
    write(outdir, "line-20mb-no-newline.msg", ["Subject: x\n\n", "c" * (20 * 1024 * 1024 // scale)])
    # multiparts nested 10,000 deep, never closed
    depth = 10000 // scale
    write(outdir, "nested-multipart-forever.msg",
          [HDR.format(id="nest"), 'Content-Type: multipart/mixed; boundary="b0"\n\n'] +
          ['--b%d\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % (i, i + 1) for i in range(depth)] +
          ["--b%d\nContent-Type: text/plain\n\n<alice@example.com>: 550 5.1.1 User unknown\n" % depth])
    # message/rfc822 nested 5,000 deep
    depth = 5000 // scale
    write(outdir, "nested-message-forever.msg",
          [HDR.format(id="nestmsg")] + ["Content-Type: message/rfc822\n\nSubject: level %d\n" % i for i in range(depth)] +
          ["\nbottom\n"])
    # 200,000 sibling parts
    parts = 200000 // scale
    write(outdir, "parts-200k.msg",
          [HDR.format(id="parts"), 'Content-Type: multipart/mixed; boundary="p"\n\n',
           "--p\nContent-Type: text/plain\n\nx\n" * parts, "--p--\n"])
    # 500,000 header fields in the top-level header
    write(outdir, "headers-500k.msg", ["X-H: v\n" * (500000 // scale), dsn("manyhdr", one)])
    # a report with 100,000 recipients
    rcpts = 100000 // scale
    write(outdir, "recipients-100k.msg",
          [dsn("rcpt100k", "\n".join(GROUP.format(rcpt="user%d@example.com" % i) for i in range(rcpts)))])
    # text built to make naive regexes backtrack: long runs that almost match the shapes
    # of address, status-code and "user unknown" patterns, in a text bounce and in a
    # Diagnostic-Code
    k = 200000 // scale
    evil = ("a" * k + "@" + "." * k + "\n" + "5." * k + "\n" + "user " * (k // 5) + "unknow\n" +
            "<" * k + "\n" + "550 " * (k // 4) + "\n" + ("x@" * (k // 2)) + "\n" + " " * k + "!\n")
    write(outdir, "regex-backtrack-text.msg",
          ["From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\nSubject: failure notice\n\n"
           "Hi. This is the qmail-send program at mx.example.net.\n"
           "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
           "<alice@example.com>:\n", evil, "\n--- Below this line is a copy of the message.\n"])
    diag = "smtp; 550 5.1.1 " + ("a" * 2000 + " ") * (k // 2000) + "(" * 5000 + "user unknown"
    write(outdir, "regex-backtrack-diagnostic.msg",
          [dsn("evil", "Final-Recipient: rfc822; alice@example.com\nAction: failed\nStatus: 5.1.1\n"
                       "Diagnostic-Code: " + diag + "\n")])
    # an mbox whose messages have a 5 MB line, a separator with a 1 MB tail, and >From lines
    write(outdir, "long-lines.mbox",
          ["From MAILER-DAEMON Sun Nov 22 01:00:00 2026\n", dsn("mb1", one, head_extra="X-Long: " + "d" * (5 * 1024 * 1024 // scale) + "\n"),
           "\nFrom MAILER-DAEMON " + "e" * (1024 * 1024 // scale) + "\n", ">From the top\n", dsn("mb2", GROUP.format(rcpt="bob@example.com")),
           "\nFrom MAILER-DAEMON Sun Nov 22 01:00:02 2026\n", "f" * (3 * 1024 * 1024 // scale)])

    # Issue 19 item 4: texts that cost quadratic time or ran PCRE2 to its limit at 269d0b5,
    # each with a recipient before and after the hostile part (the one after proves the scan
    # went on), about 1 MiB each (bench/hostile.py times them in pipe mode).
    mib = (1024 * 1024 - 4096) // scale  # the text part, tail included, stays under BP_MAX_TEXT_BYTES
    daemon = ("From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\n"
              "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <{id}@mx.example.net>\n\n")
    after = "\n<bob@example.com>: 550 5.1.1 user unknown\n"
    # an address literal's ']' was looked for from every "x@[" to the end of the text
    write(outdir, "hostile-literal-brackets.msg",
          [daemon.format(id="brackets"), "<alice@example.com>: 550 5.1.1 user unknown\n",
           "x@[" * (mib // 3), after])
    # qmail: one line of "a@" pairs made the recipient pattern rescan the line at every '@'
    write(outdir, "hostile-qmail-at-line.msg",
          ["From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\nSubject: failure notice\n\n"
           "Hi. This is the qmail-send program at mx.example.net.\n"
           "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
           "<alice@example.com>:\nRemote host said: 550 5.1.1 user unknown\n\n<", "a@" * (mib // 2),
           "\n\n<bob@example.com>:\nRemote host said: 550 5.1.1 user unknown\n"])
    # a megabyte of blank lines under a bounce Subject, so that every family's signature is
    # tried: patterns starting at a line start with \s* scanned all the blank lines after
    # every one of them (over 100 s)
    write(outdir, "hostile-blank-lines.msg",
          [daemon.format(id="blank"), "<alice@example.com>: 550 5.1.1 user unknown\n", "\n" * mib, after])
    # blank lines between lone addresses, under a signature every family is tried against
    write(outdir, "hostile-sparse-addresses.msg",
          [daemon.format(id="sparse"), "<alice@example.com>: 550 5.1.1 user unknown\n",
           ("\n" * 1000 + "contact x@example.net\n") * (mib // 1022), after])
    # a DSN whose every diagnostic holds U+017F (LONG S, which matches "s" caselessly): it
    # turned the rules' prefilter off, so that every rule ran on every diagnostic
    odd = ("smtp; 550 5.1.1 u\u017fer unknown, mailbox unavailable, \u017fpam blocked, quota exceeded, "
           "no \u017fuch domain, relay denied, listed at spamhaus " * 6)
    rcpts = 1000 // scale
    write(outdir, "hostile-odd-letters.msg",
          [dsn("odd", "\n".join("Final-Recipient: rfc822; user%d@example.com\nAction: failed\nStatus: 5.1.1\n"
                                "Diagnostic-Code: %s\n" % (i, odd) for i in range(rcpts)))])
    # 250,000 lines a recipient pattern matches but that hold no address: the PCRE2 work
    # budget (BP_EFFORT_REGEX_SEARCHES) runs out and the message is unrecognised, whatever the
    # scale (not scaled down: the point is to run out)
    write(outdir, "hostile-search-budget.msg",
          ["From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\nSubject: Returned mail\n\n"
           "----- The following addresses had permanent fatal errors -----\n<alice@example.com>\n"
           "    (reason: 550 5.1.1 user unknown)\n", "a@b\n" * 250000])

    # Issue 19 item 2: a DSN whose recipients cycle through hostile shapes (8-bit bytes,
    # ESC, a C1 CSI, bidi overrides, an address literal over three lines, a NO-BREAK SPACE) with
    # a valid one after each: the valid ones are found, the others rejected (no recipient), and
    # every output stays valid UTF-8 (not scaled down: 1,000 recipients is the limit anyway).
    shapes = [b"j\xf6rg%d@example.de", b"ops\x1b[8m%d@example.com", b"ops%d\xc2\x9b31m@example.com",
              b"moc.%d\xe2\x80\xaeevil@example.com", b"x%d@[\n victim@example.org\n ]", b"a\xc2\xa0%d@example.com"]
    groups = []
    for i in range(1000):
        rcpt = b"user%d@example.com" % i if i % 2 else shapes[(i // 2) % len(shapes)] % i
        groups.append(b"Final-Recipient: rfc822; " + rcpt + b"\nAction: failed\nStatus: 5.1.1\n"
                      b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n")
    write(outdir, "hostile-recipients-mixed.msg", [dsn("mixed", "", tail=""), b"\n".join(groups), b"\n--B--\n"])
    # Item 5: a directory whose symbolic links loop back (a link to itself, one to its parent
    # from a subdirectory): replay followed them 16 deep, 131,071 copies of each message.
    loop = os.path.join(outdir, "hostile-link-loop.d")
    os.makedirs(os.path.join(loop, "sub"), exist_ok=True)
    write(loop, "a.msg", [dsn("loop1", one)])
    write(os.path.join(loop, "sub"), "b.msg", [dsn("loop2", GROUP.format(rcpt="bob@example.com"))])
    for name, target in (("self", "."), (os.path.join("sub", "up"), "..")):
        if not os.path.islink(os.path.join(loop, name)):
            os.symlink(target, os.path.join(loop, name))

    if "--big-message" in args:
        # 50 MB: a DSN whose quoted original carries a 36 MB (base64: 49 MB) attachment
        chunk = ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n" * 1000)
        write(outdir, "big-50mb.msg",
              [dsn("big50", one, tail="--B\nContent-Type: message/rfc822\n\nFrom: news@example.org\nTo: alice@example.com\n"
                   "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"I\"\n\n--I\nContent-Type: text/plain\n\nsee attachment\n"
                   "--I\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n")] +
              [chunk] * (50 * 1024 * 1024 // len(chunk)) + ["--I--\n--B--\n"])
    if "--mbox-gb" in args:
        gb = float(args[args.index("--mbox-gb") + 1])
        msg = dsn("m", GROUP.format(rcpt="carol@example.com"), tail="--B\nContent-Type: text/plain\n\n" +
                  ("quoted original line of a returned message, padding it out to a realistic size\n" * 100) + "--B--\n")
        sep = "From MAILER-DAEMON Sun Nov 22 01:00:00 2026\n"
        count = int(gb * 1024 ** 3 / (len(msg) + len(sep) + 1))
        with open(os.path.join(outdir, "replay-1g.mbox"), "w") as f:
            block = (sep + msg + "\n") * 1000
            for _ in range(count // 1000):
                f.write(block)
        print("replay-1g.mbox: %d messages" % (count // 1000 * 1000))


if __name__ == "__main__":
    main()
