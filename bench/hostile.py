#!/usr/bin/env python3
"""bench/hostile.py - the worst messages found for issue 19 item 4, timed in pipe mode.

usage: python3 bench/hostile.py [--bin BOUNCEPIPE] [--build DIR] [--no-build] [--runs N]
                                [--all] [--only SUBSTRING] [--keep DIR] [--timeout S] [--json FILE]

Generates each hostile message (at most 1 MiB) in a temporary directory, runs `bouncepipe pipe`
on it --runs times (default 3) - a fresh process with stdin from the message, into a store on
disk created by a warm-up message outside the measurement, as `nobody` when run as root (pipe
mode refuses root) - and prints per message the median wall time from process start to exit,
what became of the message (recorded, or quarantined as unrecognised) and whether its effort
budget ran out (from `bouncepipe explain`), slowest first.  The bound it shows: no message of
at most 1 MiB costs more than 0.5 s in pipe mode on this 2-core machine.

The messages:
  issue-*      the three of issue 19 item 4: a 1 MB generic bounce of "x@[" repeated; a 300 KB
               qmail bounce whose line of "a@" pairs ran one pcre2_match for 1.4 s; a DSN of
               1,000 recipients whose diagnostics hold U+017F (it turned the rules' prefilter off)
  hostile-*    the members tests/system/broken_gen.py writes for the hostile corpus (fixtures/broken/)
  TEMPLATE--SHAPE
               a fixture of fixtures/text/ (so that its family is the one tried) with a shape
               that cost the most at 269d0b5 inserted after its first recipient line, filling
               the message to 1 MiB: the worst pairs found by trying every shape with every
               template (--all tries them all again: about 1,400 messages)

--bin times another binary (e.g. one built from 269d0b5, to see what it cost before; give it
--timeout, default 30 s, for the ones that hang).  Without --bin the script builds bouncepipe
in its own build directory (default build-bench, as bench/run.py does).  Nothing here is a
test: the hostile corpus is (tests/system/broken_run.sh); this measures.  Exit status 0 unless
something could not be run.
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__ left in the checkout
import run as benchrun  # noqa: E402  (spawn as nobody, writable_dir, build)

ROOT = benchrun.ROOT
MIB = 1024 * 1024
BOUND_S = 0.5
RCPT = "bounces@bounces.example.com"


def shapes(n):
    """Text of about n bytes that made some scan of 269d0b5 quadratic or run PCRE2 to its limit."""
    return {
        "blank": "\n" * n,
        "blank-sp": " \n" * (n // 2),
        "spaces": " " * n + "\n",
        "at-line": "<" + "a@" * (n // 2) + "\n",
        "at-lines": ("<" + "a@" * 150 + "\n") * (n // 302),
        "at-lines-long": ("<" + "a@" * 5000 + "\n") * (n // 10002),
        "lt-line": "<" * n + "\n",
        "xat": "x@[" * (n // 3) + "\n",
        "local-run": "a" * n + "@\n",
        "rcpts-distinct": "".join("<u%d@example.com>:\n" % i for i in range(n // 22)),
        "rcpts-dup": "<a@b.example>:\n" * (n // 15),
        "addr-line-one": " ".join("u%d@example.com" % i for i in range(n // 18)) + "\n",
        "dash": "-" * n + "\n",
        "quote": '"' * n + "\n",
        "code-runs": "5." * (n // 2) + "\n",
        "lt-ws": "<\n" * (n // 2),
        "ab-lines": "a@b\n" * (n // 4),
        "nl-at": ("\n" * 1000 + "a@b.c\n") * (n // 1006),
        "your-message": "Your message\n" * (n // 13),
        "recipients-json": '"recipients":["a@b"' * (n // 19),
        "crlf-blank": "\r\n" * (n // 2),
        "dot-lines": ".\n" * (n // 2),
        "rcpt-to": "RCPT TO: \n" * (n // 10),
        "unable-lt": "Unable to deliver message to: <a@b\n" * (n // 36),
    }


# The worst template and shape pairs of the full grid, at 269d0b5 and after (see --all).
WORST = [
    ("generic-quoted-original", "blank"), ("exchange2003", "blank"), ("domino", "blank"),
    ("dragonfly", "nl-at"), ("domino", "nl-at"), ("mailru-exim-russian", "dash"), ("domino", "dash"),
    ("exim-generated-from", "ab-lines"), ("sendmail-text", "ab-lines"), ("ezweb-rejected", "at-lines-long"),
    ("yahoo-text", "at-line"), ("courier", "at-line"), ("fml-loop", "rcpts-distinct"),
    ("exchange2003", "rcpts-distinct"), ("mailmarshal", "rcpts-distinct"), ("opensmtpd", "xat"),
    ("kddi-au", "xat"), ("kddi-au", "quote"), ("mcafee", "your-message"), ("verizon-vzwpix", "your-message"),
    ("barracuda", "dot-lines"), ("barracuda", "crlf-blank"), ("barracuda", "rcpt-to"),
    ("amazonses-delivery", "recipients-json"), ("mailfoundry", "local-run"), ("biglobe", "lt-ws"),
    ("generic-quoted-original", "addr-line-one"), ("mailfoundry", "unable-lt"), ("fml-loop", "lt-line"),
    ("gmx-german", "rcpts-dup"), ("mcafee", "code-runs"), ("groupwise", "blank-sp"), ("1und1", "spaces"),
]


def insert_after_first_recipient(template, payload):
    """The template with payload after its first body line holding an '@' (not a header)."""
    body = template.find("\n\n")
    i = template.find("@", body)
    while i != -1:
        ls = template.rfind("\n", 0, i) + 1
        le = template.find("\n", i)
        line = template[ls:le]
        head = line.split("@")[0]
        if not (":" in head and line.split(":")[0].replace("-", "").isalpha()):
            return template[:le + 1] + payload + template[le + 1:]
        i = template.find("@", le)
    return template[:body + 2] + payload + template[body + 2:]


def grid(outdir, pairs):
    """Write TEMPLATE--SHAPE.msg for pairs (None: every template with every shape)."""
    made = []
    for path in sorted(glob.glob(os.path.join(ROOT, "fixtures", "text", "*.eml"))):
        name = os.path.basename(path)[:-4]
        template = open(path, "rb").read().decode("latin-1")
        for shape, text in shapes(MIB - len(template) - 200).items():
            if pairs is not None and (name, shape) not in pairs:
                continue
            msg = insert_after_first_recipient(template, text[:MIB - len(template) - 200])
            out = os.path.join(outdir, f"{name}--{shape}.msg")
            with open(out, "wb") as f:
                f.write(msg.encode("latin-1"))
            made.append(out)
    return made


def issue_messages(outdir):
    """The three inputs of issue 19 item 4, as the issue describes them."""
    daemon = ("From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\nSubject: Undelivered Mail\n"
              "Message-ID: <{}@mx.example.net>\n\n")
    qmail = ("From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\nSubject: failure notice\n"
             "Message-ID: <qmail300k@mx.example.net>\n\nHi. This is the qmail-send program at mx.example.net.\n"
             "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
             "<alice@example.com>:\nRemote host said: 550 5.1.1 user unknown\n\n<")
    group = ("Final-Recipient: rfc822; user{}@example.com\nAction: failed\nStatus: 5.1.1\n"
             "Diagnostic-Code: smtp; " + "550 5.1.1 u\u017fer unknown, mailbox unavailable, \u017fpam blocked, " * 10 + "\n")
    dsn = ("From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\nSubject: Undelivered Mail\n"
           "Message-ID: <odd@mx.example.net>\nMIME-Version: 1.0\n"
           'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
           "--B\nContent-Type: text/plain\n\nDelivery failed.\n\n"
           "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n" +
           "\n".join(group.format(i) for i in range(1000)) + "\n--B--\n")
    msgs = {
        "issue-generic-x@[-1m.msg": daemon.format("xat") + "x@[" * ((MIB - 200) // 3) + "\n",
        "issue-qmail-a@-300k.msg": qmail + "a@" * (300 * 1024 // 2) + "\n\n<bob@example.com>:\nRemote host said: 550\n",
        "issue-dsn-long-s.msg": dsn,
    }
    made = []
    for name, text in msgs.items():
        path = os.path.join(outdir, name)
        with open(path, "wb") as f:
            f.write(text.encode("utf-8"))
        made.append(path)
    return made


def corpus_members(outdir):
    """The hostile-* members of the hostile corpus, written by tests/system/broken_gen.py."""
    gen = os.path.join(outdir, "broken-gen")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "broken_gen.py"), gen], check=True)
    made = []
    for path in sorted(glob.glob(os.path.join(gen, "hostile-*"))):
        dest = os.path.join(outdir, os.path.basename(path))
        shutil.move(path, dest)
        made.append(dest)
    shutil.rmtree(gen)
    return made


def pipe_once(bp, msg, warm, workdir, timeout):
    """One timed `bp pipe` of msg into a fresh store (created by a warm-up message first).
    Returns (seconds or None on timeout, exit status, quarantined?)."""
    d = os.path.join(workdir, "run")
    shutil.rmtree(d, ignore_errors=True)
    benchrun.writable_dir(d)
    env = dict(os.environ, BOUNCEPIPE_DB=os.path.join(d, "bouncepipe.db"), HOME=d)
    argv = [bp, "pipe", "--rcpt", RCPT]
    os.chdir(d)  # the quarantine is ./quarantine
    try:
        pid = benchrun.spawn(argv, warm, env)
        os.waitpid(pid, 0)
        before = count_quarantined(d)
        t0 = time.perf_counter()
        pid = benchrun.spawn(argv, msg, env)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.perf_counter() - t0 > timeout:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return None, -9, False
            time.sleep(0.0005)
        wall = time.perf_counter() - t0
        return wall, os.waitstatus_to_exitcode(status), count_quarantined(d) > before
    finally:
        os.chdir(ROOT)


def count_quarantined(d):
    q = os.path.join(d, "quarantine", "new")
    return len(os.listdir(q)) if os.path.isdir(q) else 0


def budget_note(bp, msg, timeout):
    """What explain says about the message's effort budget, '' when it lasted."""
    try:
        out = subprocess.run([bp, "explain", msg], capture_output=True, text=True, errors="replace",
                             timeout=timeout).stdout
    except subprocess.TimeoutExpired:
        return "(explain timed out)"
    for line in out.splitlines():
        if line.startswith("  effort:"):
            words = line.split()
            # "effort: the KIND budget ran out in the STAGE after N ms and M PCRE2 searches: ..."
            kind = " ".join(words[2:words.index("budget")])
            stage = " ".join(words[words.index("in") + 2:words.index("after")])
            return f"{kind} budget out in {stage}"
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", help="time this bouncepipe instead of building one")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"), help="build directory (default build-bench)")
    ap.add_argument("--no-build", action="store_true", help="use the build directory as it is")
    ap.add_argument("--runs", type=int, default=3, help="timed pipe runs per message (median; default 3)")
    ap.add_argument("--all", action="store_true", help="every template with every shape (about 1,400 messages)")
    ap.add_argument("--only", help="only messages whose name holds this")
    ap.add_argument("--keep", help="write the messages here and keep them")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a run counts as a hang (default 30)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    if args.bin:
        bp = os.path.abspath(args.bin)
    else:
        if not args.no_build:
            benchrun.build(args.build)
        bp = os.path.join(args.build, "bouncepipe")
    if not os.access(bp, os.X_OK):
        sys.exit(f"hostile: no bouncepipe at {bp}")
    tmp = tempfile.mkdtemp(prefix="bp-hostile-")
    os.chmod(tmp, 0o755)
    try:
        msgdir = args.keep or os.path.join(tmp, "msgs")
        os.makedirs(msgdir, exist_ok=True)
        msgs = issue_messages(msgdir) + corpus_members(msgdir) + grid(msgdir, None if args.all else set(WORST))
        if args.only:
            msgs = [m for m in msgs if args.only in os.path.basename(m)]
        for m in msgs:
            os.chmod(m, 0o644)
        warm = os.path.join(tmp, "warm.eml")
        shutil.copy(os.path.join(ROOT, "fixtures", "dsn", "amazonses-dsn.eml"), warm)
        os.chmod(warm, 0o644)
        benchrun.log(f"{len(msgs)} messages, {args.runs} pipe runs each, with {bp}")
        rows = []
        for n, m in enumerate(msgs, 1):
            times, outcome, code = [], "", 0
            for _ in range(args.runs):
                wall, code, quarantined = pipe_once(bp, m, warm, tmp, args.timeout)
                if wall is None:
                    times = None
                    break
                times.append(wall)
                outcome = "quarantined" if quarantined else "recorded"
            if times is None:
                rows.append((os.path.basename(m), os.path.getsize(m), None, "HANG", "", code))
                benchrun.log(f"  {n}/{len(msgs)} {os.path.basename(m)}: no exit within {args.timeout:.0f} s")
                continue
            note = budget_note(bp, m, args.timeout)
            rows.append((os.path.basename(m), os.path.getsize(m), statistics.median(times), outcome, note, code))
            if n % 10 == 0:
                benchrun.log(f"  {n}/{len(msgs)} done")
        rows.sort(key=lambda r: -(r[2] if r[2] is not None else 1e9))
        print(f"\npipe mode, one message per process, median of {args.runs} runs (start to exit, store on disk)")
        print(f"  {'message':<48} {'bytes':>8} {'ms':>8}  outcome      effort budget")
        over = 0
        for name, size, t, outcome, note, code in rows:
            ms = f"{t * 1000:8.1f}" if t is not None else "    hang"
            flag = " <-- over 0.5 s" if t is None or t > BOUND_S else ""
            over += flag != ""
            exit_note = f" exit {code}" if code not in (0, None) else ""
            print(f"  {name[:48]:<48} {size:>8} {ms}  {outcome:<12} {note}{exit_note}{flag}")
        worst = rows[0][2] if rows and rows[0][2] is not None else None
        verdict = "met" if over == 0 else f"MISSED by {over} message(s)"
        print(f"\n  slowest {worst * 1000:.1f} ms; bound: no message of at most 1 MiB over {BOUND_S} s: {verdict}"
              if worst is not None else f"\n  bound: {verdict}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump([{"message": r[0], "bytes": r[1], "seconds": r[2], "outcome": r[3], "effort": r[4]}
                           for r in rows], f, indent=1)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
