#!/usr/bin/env python3
"""pmta_e2e.py - PowerMTA, played from its User's Guide, against bouncepipe (issue 14).

The script is the MTA.  It takes the set-up from contrib/powermta as written - the pipe
command of <domain bounces.example.com> and the <acct-file |...> command with its
record-fields from bouncepipe.pmta.conf, the store, quarantine, VERP prefix and [process]
user from bouncepipe.conf - and then does what PowerMTA does with them:

  * starts the accounting program once (as root when run as root: PowerMTA's run-as-root
    default) and streams records in the documented layout: one header naming the union of the
    record-fields of every record type, CRLF line ends, each record filling its own type's
    fields; after a reload the header again, with the columns in another order;
  * for each failure it saw itself, writes the b record AND mails its own DSN (RFC 3464, with
    the original's headers, X-Job kept by retain-x-job) to the VERP return path, which it
    delivers to `bouncepipe pipe` as an unprivileged user, $to lower-cased as PowerMTA does;
  * remote bounces (rb), a delivery that resets soft bounces (d), feedback-loop records (f):
    a redacted recipient with a VERP Return-Path, a Return-Path-only one, an xxxxxxxx one that
    names nobody, a dkim report; a receiver's ARF complaint by mail about an address the
    accounting stream spelt with capitals;
  * at the end, bouncepipe's export as its suppression-list, and the b records it then writes
    for those recipients ("recipient is in suppression list").

It ends with the suppression list and the ledger the issue expects: exactly the expected
addresses, one ledger event per failure however many channels reported it, nothing root's.

Assertions about the store pairing the two channels of one failure and comparing addresses
without case (issue 14 defects 1 and 3) are tagged "identity" in the output.

Usage: tests/system/pmta_e2e.py /path/to/bouncepipe   (run from the project directory)
"""
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/bouncepipe")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PMTA_CONF = os.path.join(ROOT, "contrib/powermta/bouncepipe.pmta.conf")
BP_CONF = os.path.join(ROOT, "contrib/powermta/bouncepipe.conf")
AS_ROOT = os.geteuid() == 0
USER = pwd.getpwnam("nobody") if AS_ROOT else pwd.getpwuid(os.geteuid())

failures = []


def check(cond, label, waits_on=None):
    """One assertion; waits_on tags the part of issue 14 it checks."""
    tag = f" [{waits_on}]" if waits_on else ""
    if cond:
        print(f"ok{tag}: {label}")
    else:
        print(f"FAIL{tag}: {label}")
        failures.append(label)


# ---- the set-up, from contrib/powermta as written ---------------------------------------------


def read_pmta_conf(path=PMTA_CONF):
    """The pipe command, the accounting command and its record-fields (of PATH: contrib's file,
    or a PowerMTA configuration it was pasted into, as tests/system/pmta_standin.py reads it)."""
    text = open(path).read()
    active = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    dom = re.search(r"<domain bounces\.example\.com>(.*?)</domain>", active, re.S)
    command = re.search(r'^\s*command\s+"((?:[^"\\]|\\.)*)"', dom.group(1), re.M).group(1).replace('\\"', '"')
    acct = re.search(r"<acct-file \|([^>]*)>(.*?)</acct-file>", active, re.S)
    fields = {}
    for m in re.finditer(r"^\s*record-fields\s+(\S+)\s+(\S+)", acct.group(2), re.M):
        fields[m.group(1)] = m.group(2).split(",")
    records = re.search(r"^\s*records\s+(.*)$", acct.group(2), re.M).group(1)
    return command, acct.group(1).strip(), fields, [r.strip() for r in records.split(",")]


def contrib_uses_documented_fields(fields):
    """Issue 14 defect 5: what contrib/powermta had invented or misused."""
    text = open(PMTA_CONF).read()
    active = "\n".join(line.split("#")[0] for line in text.splitlines())
    f = fields.get("f", [])
    check("reportedIp" not in active and "jobId" not in f, "f records name no reportedIp and no jobId")
    check(all(x in f for x in ("header_X-job", "header_Return-Path", "dlvSourceIp")),
          "f records carry header_X-job, header_Return-Path and dlvSourceIp")
    check("jobId" not in fields.get("rb", []) + fields.get("rs", []), "rb and rs records name no jobId")
    check("XVERP" not in text, "the SMTP extension is called VERP")
    check("max-rcpt-per-message" not in active, "max-rcpt-per-message is not used to split deliveries")
    check(re.search(r"^\s*retain-x-job\s+(yes|true)", active, re.M) is not None, "retain-x-job keeps header_X-job")
    for block in re.findall(r"<acct-file [^|][^>]*>(.*?)</acct-file>", active, re.S):
        if "move-interval" in block:
            check("move-to" in block, "the file copy's move-interval comes with move-to")
    check("suppress-local-dsn" in active and "run-as-root false" in text,
          "suppress-local-dsn is set and run-as-root false documented")


def write_bp_conf(data):
    """contrib's bouncepipe.conf with the paths of this run and [process] user nobody."""
    text = open(BP_CONF).read()
    text = text.replace("/var/lib/bouncepipe", data)
    user = USER.pw_name
    text = re.sub(r"^user = .*$", f"user = {user}", text, flags=re.M)
    path = os.path.join(os.path.dirname(data), "bouncepipe.conf")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def substitute(command, conf):
    return command.replace("/usr/bin/bouncepipe", BIN).replace("/etc/bouncepipe/bouncepipe.conf", conf)


def env():
    e = dict(os.environ)
    e.pop("BOUNCEPIPE_DB", None)
    e.pop("BOUNCEPIPE_CONFIG", None)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return e


# ---- what PowerMTA writes --------------------------------------------------------------------


class Accounting:
    """The <acct-file |...> program: started once, fed CSV as PowerMTA writes it."""

    def __init__(self, command, fields, types):
        self.fields = fields
        self.types = types
        self.columns = []
        for t in types:  # the union, in order of first appearance
            for c in fields[t]:
                if c not in self.columns:
                    self.columns.append(c)
        self.proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
        self.header()

    def write(self, line):
        self.proc.stdin.write((line + "\r\n").encode())
        self.proc.stdin.flush()

    def header(self):
        self.write(",".join(self.columns))

    def reload(self):
        """pmta reload: the header again; here with the columns in another order."""
        self.columns = [self.columns[0]] + list(reversed(self.columns[1:]))
        self.header()

    def record(self, rtype, **values):
        own = self.fields[rtype]
        for k in values:
            assert k in own, f"{k} is not a field of {rtype} records in bouncepipe.pmta.conf"
        cells = []
        for c in self.columns:
            v = str(values.get(c, "")) if c in own else ""
            if c == "type":
                v = rtype
            if any(ch in v for ch in ',"\r\n'):
                v = '"' + v.replace('"', '""') + '"'
            cells.append(v)
        self.write(",".join(cells))

    def close(self):
        self.proc.stdin.close()
        err = self.proc.stderr.read().decode(errors="replace")
        return self.proc.wait(timeout=120), err


def when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(t))


def rfc822_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))


def verp(addr):
    local, domain = addr.split("@")
    return f"bounces-{local}={domain}@bounces.example.com"


def dsn(rcpt, status, diag, mta, envid, job, t, n):
    """PowerMTA's own DSN for a failure (RFC 3464), with the original's headers."""
    return (
        f"From: Mail Delivery System <mailer-daemon@mta1.example.com>\r\n"
        f"To: {verp(rcpt)}\r\n"
        f"Subject: Delivery report\r\n"
        f"Date: {rfc822_date(t + 30)}\r\n"
        f"Message-ID: <dsn-{n}@mta1.example.com>\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="pmta-{n}"\r\n'
        f"\r\n--pmta-{n}\r\nContent-Type: text/plain\r\n\r\n"
        f"This is a delivery status notification from mta1.example.com.\r\n"
        f"The message to {rcpt} could not be delivered.\r\n"
        f"\r\n--pmta-{n}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mta1.example.com\r\n"
        f"Original-Envelope-Id: {envid}\r\n"
        f"Arrival-Date: {rfc822_date(t - 5)}\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\n"
        f"Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; {mta}\r\n"
        f"Diagnostic-Code: smtp; {diag}\r\n"
        f"\r\n--pmta-{n}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Return-Path: <{verp(rcpt)}>\r\n"
        f"From: News <news@example.com>\r\n"
        f"To: {rcpt}\r\n"
        f"Subject: November news\r\n"
        f"Message-ID: <orig-{n}@example.com>\r\n"
        f"X-Job: {job}\r\n"
        f"\r\n--pmta-{n}--\r\n"
    ).encode()


def arf(rcpt, t):
    """A receiver's ARF complaint (RFC 5965) sent to the bounce domain."""
    return (
        f"From: fbl@outlook.example\r\nTo: fbl@bounces.example.com\r\nSubject: complaint\r\n"
        f"Date: {rfc822_date(t)}\r\nMessage-ID: <arf-{t}@outlook.example>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="arf"\r\n'
        f"\r\n--arf\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        f"--arf\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: outlook-fbl/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {rcpt}\r\n"
        f"Source-IP: 192.0.2.10\r\n\r\n"
        f"--arf\r\nContent-Type: text/rfc822-headers\r\n\r\nReturn-Path: <{verp(rcpt)}>\r\n"
        f"From: News <news@example.com>\r\nTo: {rcpt}\r\nSubject: November news\r\nX-Job: news-1120\r\n"
        f"\r\n--arf--\r\n"
    ).encode()


def run_pipe(command, to, envid, message, as_root=False):
    """PowerMTA's pipe delivery of one message: $to lower-cased, as the unprivileged user (as
    root with as_root: PowerMTA's run-as-root default)."""
    cmd = shlex.split(command.replace("$to", to.lower()).replace("$envid", envid))
    if AS_ROOT and not as_root:
        cmd = ["setpriv", f"--reuid={USER.pw_uid}", f"--regid={USER.pw_gid}", "--clear-groups"] + cmd
    p = subprocess.run(cmd, input=message, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(), timeout=120)
    return p.returncode, p.stderr.decode(errors="replace")


def cli(conf, *args):
    p = subprocess.run([BIN, args[0], "--config", conf, *args[1:]], capture_output=True, env=env(), timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def main():
    if shutil.which("setpriv") is None and AS_ROOT:
        print("FAIL: setpriv is needed to run the pipe as an unprivileged user")
        return 1
    tmp = tempfile.mkdtemp(prefix="bp-pmta-e2e-")
    try:
        return scenario(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scenario(tmp):
    os.chmod(tmp, 0o755)
    data = os.path.join(tmp, "data")
    os.mkdir(data, 0o750)
    if AS_ROOT:
        os.chown(data, USER.pw_uid, USER.pw_gid)
    conf = write_bp_conf(data)
    pipe_command, acct_command, fields, types = read_pmta_conf()
    pipe_command, acct_command = substitute(pipe_command, conf), substitute(acct_command, conf)
    check("--config" in pipe_command and "--config" in acct_command, "contrib's commands name --config")
    contrib_uses_documented_fields(fields)
    for t in ("b", "f", "rb", "d"):
        check(t in types and t in fields, f"contrib's accounting pipe writes {t} records")

    acct = Accounting(acct_command, fields, types)
    t0 = 1795169000  # 2026-11-20 10:03:20 UTC
    n = 0
    pipe_results = []

    def failure(rcpt, status, diag, mta, cat, job, envid, t, dsn_too=True):
        """A failure PowerMTA saw itself: its b record, and (by default) its own DSN mail."""
        nonlocal n
        n += 1
        acct.record("b", timeLogged=when(t), timeQueued=when(t - 5), orig=verp(rcpt), rcpt=rcpt,
                    dsnAction="failed", dsnStatus=f"{status} (from the remote server)", dsnDiag=f"smtp;{diag}",
                    dsnMta=f"{mta} (192.0.2.25)", bounceCat=cat, vmta="vmta1", jobId=job, envId=envid)
        if dsn_too:
            pipe_results.append((rcpt, run_pipe(pipe_command, verp(rcpt), "", dsn(rcpt, status, diag, mta, envid,
                                                                                     job, t, n))))

    day = 86400
    # a dead mailbox, the recipient spelt with capitals (PowerMTA lower-cases $to)
    failure("Jane.Roe@outlook.example", "5.1.1", "550 5.1.1 Requested action not taken: mailbox unavailable",
            "outlook-com.olc.protection.outlook.example", "bad-mailbox", "news-1120", "env-0001", t0)
    # three soft bounces on three days, each reported on both channels: not yet suppressed
    for d in range(3):
        failure("full.box@example.com", "4.2.2", "452 4.2.2 The email account that you tried to reach is over quota",
                "mx.example.com", "quota-issues", "news-1120", f"env-01{d}", t0 + 100 + d * day)
    # a block-list rejection dressed as 5.1.1: says nothing about the recipient
    failure("kijitora@example.jp", "5.7.1",
            "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org", "mx.example.jp",
            "bad-mailbox", "news-1120", "env-0002", t0 + 200)
    acct.reload()
    # the same address in two spellings: the accounting record and the DSN of one failure
    failure("JDoe@Example.NET", "5.1.1", "550 5.1.1 <JDoe@example.net>: Recipient address rejected: User unknown",
            "mx.example.net", "bad-mailbox", "news-1121", "env-0003", t0 + 300)
    # a failure reported in the accounting stream only (PowerMTA's DSN suppressed)
    failure("Only.Acct@example.org", "5.1.1", "550 5.1.1 no such user", "mx.example.org", "bad-mailbox",
            "news-1121", "env-0004", t0 + 350, dsn_too=False)
    # a bounce PowerMTA's bounce processor parsed, and a delivery
    acct.record("rb", timeLogged=when(t0 + 400), orig=verp("Old.Box@example.org"), rcpt="Old.Box@example.org",
                dsnAction="failed", dsnStatus="5.2.1 (mailbox disabled)",
                dsnDiag="smtp;550 5.2.1 The email account that you tried to reach is disabled",
                dsnMta="mx.example.org", bounceCat="inactive-mailbox", envId="env-0005")
    acct.record("d", timeLogged=when(t0 + 500), orig=verp("ok.reader@example.org"), rcpt="ok.reader@example.org",
                dsnStatus="2.0.0 (success)", jobId="news-1121", envId="env-0006")
    # complaints from the feedback-loop processor
    acct.record("f", timeLogged=when(t0 + 600), rcpt="redacted@aol.example", feedbackType="abuse",
                userAgent="AOL SComp", reportingMta="dns;mail.aol.example", dlvSourceIp="192.0.2.10",
                **{"header_Return-Path": "<" + verp("Ayumi@aol.example") + ">", "header_X-job": "news-1120"})
    acct.record("f", timeLogged=when(t0 + 601), feedbackType="abuse", dlvSourceIp="192.0.2.10",
                **{"header_Return-Path": "<" + verp("rp.only@example.org") + ">", "header_X-job": "news-1120"})
    acct.record("f", timeLogged=when(t0 + 602), rcpt="xxxxxxxx@yahoo.example", feedbackType="abuse",
                userAgent="Yahoo!-Mail-Feedback/2.0", **{"header_Return-Path": "<news@example.com>"})
    acct.record("f", timeLogged=when(t0 + 603), rcpt="sam@isp.example", feedbackType="dkim",
                **{"header_X-job": "news-1120"})
    acct.reload()
    acct.record("f", timeLogged=when(t0 + 604), feedbackType="abuse", dlvSourceIp="192.0.2.11",
                **{"header_X-HmXmrOriginalRecipient": "Hm.User@Hotmail.example"})
    # a complaint by mail about Jane.Roe, whom the receiver spells in lower case
    pipe_results.append(("jane.roe@outlook.example (ARF)", run_pipe(pipe_command, "fbl@bounces.example.com", "", arf(
        "jane.roe@outlook.example", t0 + 700))))
    rc, err = acct.close()
    check(rc == 0, f"the accounting program ended cleanly (exit {rc}: {err.strip()[-300:]})")
    for rcpt, (prc, perr) in pipe_results:
        check(prc == 0, f"PowerMTA's DSN for {rcpt} was accepted by the pipe (exit {prc}: {perr.strip()[:200]})")

    # ---- the suppression list ---------------------------------------------------------------
    rc, out, err = cli(conf, "export", "--format", "plain")
    listed = [a for a in out.splitlines() if a]
    want = {"jane.roe@outlook.example", "jdoe@example.net", "only.acct@example.org", "old.box@example.org",
            "ayumi@aol.example", "rp.only@example.org", "hm.user@hotmail.example"}
    check({a.lower() for a in listed} == want,
          f"the suppression list is exactly the expected one: {sorted(a.lower() for a in listed)}",
          waits_on="identity")
    check(len(listed) == len({a.lower() for a in listed}),
          f"no address is listed twice in two spellings: {sorted(listed)}", waits_on="identity")
    for a in ("kijitora@example.jp", "sam@isp.example", "ok.reader@example.org"):
        check(a not in {x.lower() for x in listed}, f"{a} is not suppressed")
    check("full.box@example.com" not in {x.lower() for x in listed},
          "full.box@example.com is not suppressed: three soft bounces, not six", waits_on="identity")
    for a in ("JDOE@EXAMPLE.NET", "jane.roe@outlook.example"):
        rc, _, _ = cli(conf, "lookup", a)
        check(rc == 0, f"lookup {a}: suppressed (the address has other capitals in the store)", waits_on="identity")

    # ---- one ledger event per failure --------------------------------------------------------
    # both reports stay in the ledger (lookup shows them); the second names the row that counts
    # the failure (paired_with > 0) and counts for nothing
    def events(addr):
        rc, out, _ = cli(conf, "lookup", "--format", "json", addr)
        try:
            return [r for r in json.loads(out).get("evidence", [])
                    if r["kind"] == "event" and r.get("type") in ("bounce", "delay") and not (r.get("paired_with") or 0) > 0]
        except ValueError:
            return []

    for addr, count, how in (("Jane.Roe@outlook.example", 1, "b record and DSN"),
                             ("full.box@example.com", 3, "three soft bounces, each a b record and a DSN"),
                             ("kijitora@example.jp", 1, "b record and DSN"),
                             ("jdoe@example.net", 1, "b record and DSN, in two spellings")):
        got = events(addr)
        check(len(got) == count, f"{addr}: {count} ledger event(s) for {how}, got {len(got)}", waits_on="identity")
    check(len(events("Only.Acct@example.org")) == 1, "a failure on one channel is one event")
    check(len(events("Old.Box@example.org")) == 1, "the rb record is one event")
    rc, out, _ = cli(conf, "stats", "--format", "json")
    stats = json.loads(out) if rc == 0 else {}
    check(stats.get("type", {}).get("complaint") == 6,
          f"six complaints, the redacted one without a recipient among them: {stats.get('type')}")
    check(stats.get("category", {}).get("complaint:auth-failure") == 1, "the dkim report is auth-failure")
    check(stats.get("type", {}).get("bounce") == 8,
          f"eight bounce events, one per failure: jane, full.box three times, kijitora, jdoe, only.acct,"
          f" old.box (got {stats.get('type', {}).get('bounce')})", waits_on="identity")
    check(stats.get("suppressed", {}).get("complaint") == 3,
          f"three addresses suppressed by complaints (ayumi, rp.only, hm.user; jane.roe's bounce came first):"
          f" {stats.get('suppressed')}", waits_on="identity")

    # ---- the loop: the export as PowerMTA's suppression-list, fed back ---------------------
    before = stats
    acct = Accounting(acct_command, fields, types)
    for a in listed:
        acct.record("b", timeLogged=when(t0 + 3 * day), orig=verp(a), rcpt=a, dsnAction="failed",
                    dsnStatus="5.0.0 (undefined status)", dsnDiag="smtp;550 5.0.0 recipient is in suppression list",
                    bounceCat="bad-mailbox", jobId="news-1122", envId="env-0100")
    rc, err = acct.close()
    rc2, out, _ = cli(conf, "stats", "--format", "json")
    check(rc == 0 and json.loads(out) == before,
          "the suppression-list's own b records are ignored, not counted (stats unchanged)")

    # ---- nothing of root's beside the store -------------------------------------------------
    if AS_ROOT:
        owned = [os.path.join(d, f) for d, _, fs in os.walk(data) for f in fs + [""]
                 if os.stat(os.path.join(d, f)).st_uid == 0]
        check(not owned, f"no file in the store's directory belongs to root: {owned}")

    print(f"pmta_e2e: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
