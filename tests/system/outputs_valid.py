#!/usr/bin/env python3
"""outputs_valid.py BIN

Issue 19 item 2: every output of every command is valid and masked, whatever was piped in.

The hostile set - the committed members of fixtures/broken/, the hostile-* members that
tests/system/broken_gen.py generates, and what is made here: VERP envelope recipients of 8-bit bytes
and escapes, a file name with a line break and an escape in it, an accounting file whose
addresses and texts are hostile, a Latin-1 list to import, and a store written before
addresses were validated (rows injected with raw bytes) - goes through pipe, replay, acct,
import, remove, lookup, export, stats, dmarc, explain, rescore, patterns test and report.  Then:
  - every JSON and NDJSON output parses with a strict parser: valid UTF-8, no raw control
    character in a string, no duplicate key, no NaN or Infinity;
  - every other output (text, CSV, plain, Prometheus, HTML, explain, standard error) is valid
    UTF-8 with no control character but line ends (and tabs in CSV), no C1 control and no
    bidi override or line separator;
  - export --format plain holds exactly one valid address per line, each of which lookup
    explains; the address hidden in a three-line literal (victim@example.org) is nowhere;
  - the Prometheus output passes a strict check of the text exposition format (0.0.4): names,
    escapes, HELP and TYPE once and before the samples, no sample twice;
  - free text given as an address (remove, lookup, import) is an error, never rewritten into
    the address inside it.
Run from the project root.  Exit 0 when all hold.
"""
import ipaddress
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import unicodedata

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipe_common import Sandbox  # noqa: E402

BIN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)
failures = []
checked = 0

# characters no text output may carry: C0 controls but line ends, DEL, C1 controls, the bidi
# embeddings, overrides and isolates, the line and paragraph separators
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def fail(what):
    failures.append(what)
    print("FAIL: " + what)


def run(args, stdin=None, env=None):
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=300, env=env)
    return p.returncode, p.stdout, p.stderr


def check_text(label, data, tabs=False, carriage_returns=False):
    """Valid UTF-8, nothing a terminal would act on; returns the text."""
    global checked
    checked += 1
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("%s: not valid UTF-8: %s" % (label, e))
        return ""
    allowed = "\n" + ("\t" if tabs else "") + ("\r" if carriage_returns else "")
    for m in UNSAFE.finditer(text):
        if m.group() not in allowed:
            fail("%s: U+%04X at %d: %r" % (label, ord(m.group()), m.start(), text[max(0, m.start() - 30):m.end() + 30]))
            break
    return text


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in %s" % keys)
    return dict(pairs)


def refuse_constant(name):
    raise ValueError("%s is not JSON" % name)


def strict_json(label, text):
    return json.loads(text, strict=True, object_pairs_hook=no_duplicates, parse_constant=refuse_constant)


def check_json(label, data):
    text = check_text(label, data)
    try:
        return strict_json(label, text)
    except ValueError as e:
        fail("%s: not strict JSON: %s" % (label, e))


def check_ndjson(label, data):
    text = check_text(label, data)
    out = []
    for n, line in enumerate(text.split("\n")[:-1], 1):
        try:
            out.append(strict_json(label, line))
        except ValueError as e:
            fail("%s: line %d not strict JSON: %s" % (label, n, e))
            break
    if text and not text.endswith("\n"):
        fail("%s: the last line has no line end" % label)
    return out


ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")


def valid_address(a):
    """An address as RFC 5321/6531 reads it (independently of bouncepipe's own check)."""
    if a.count("@") < 1 or any(unicodedata.category(c)[0] in "CZ" for c in a):
        return False
    local, domain = a.rsplit("@", 1)
    if not local or local[0] == "." or any(c not in ATEXT and ord(c) < 0x80 for c in local):
        return False
    if domain.startswith("["):
        inner = domain[1:-1] if domain.endswith("]") else ""
        try:
            ipaddress.IPv6Address(inner[5:]) if inner.lower().startswith("ipv6:") else ipaddress.IPv4Address(inner)
            return True
        except ValueError:
            return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        try:
            ascii_label = label.encode("idna").decode("ascii") if any(ord(c) > 0x7f for c in label) else label
        except UnicodeError:
            return False
        if not re.fullmatch(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?", ascii_label):
            return False
    return True


METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def check_prometheus(label, data):
    """The text exposition format 0.0.4, strictly: what node_exporter's textfile collector and
    Prometheus's parser refuse is refused here."""
    text = check_text(label, data)
    if text and not text.endswith("\n"):
        fail("%s: no line end at the end" % label)
    helps, types, seen, sampled = set(), set(), set(), set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "%s:%d: %r" % (label, n, line[:120])
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC.fullmatch(name):
                    return fail(where + ": bad metric name")
                if name in sampled:
                    return fail(where + ": HELP or TYPE after the samples")
                book = helps if parts[1] == "HELP" else types
                if name in book:
                    return fail(where + ": a second " + parts[1])
                book.add(name)
                if parts[1] == "TYPE" and (len(parts) < 4 or parts[3] not in TYPES):
                    return fail(where + ": bad type")
                if parts[1] == "HELP" and len(parts) == 4 and re.search(r"\\[^\\n]", parts[3]):
                    return fail(where + ": bad escape in HELP")
            continue
        m = METRIC.match(line)
        if not m:
            return fail(where + ": no metric name")
        name, i, labels = m.group(), m.end(), []
        if i < len(line) and line[i] == "{":
            i += 1
            while line[i] != "}":
                lm = LABEL_NAME.match(line, i)
                if not lm or line[lm.end():lm.end() + 2] != '="':
                    return fail(where + ": bad label")
                j, value = lm.end() + 2, []
                while line[j] != '"':
                    if line[j] == "\\":
                        if line[j + 1] not in '\\"n':
                            return fail(where + ": bad escape in a label value")
                        value.append({"n": "\n"}.get(line[j + 1], line[j + 1]))
                        j += 2
                    else:
                        value.append(line[j])
                        j += 1
                    if j >= len(line):
                        return fail(where + ": unterminated label value")
                labels.append((lm.group(), "".join(value)))
                i = j + 1
                if line[i] == ",":
                    i += 1
            i += 1
        rest = line[i:].split(" ")
        if rest[0] != "" or len(rest) not in (2, 3):
            return fail(where + ": want NAME{LABELS} VALUE [TIMESTAMP]")
        try:
            float(rest[1])
            if len(rest) == 3:
                int(rest[2])
        except ValueError:
            return fail(where + ": bad value")
        names = [l for l, _ in labels]
        if len(names) != len(set(names)):
            return fail(where + ": a label twice")
        key = (name, tuple(sorted(labels)))
        if key in seen:
            return fail(where + ": the same series twice (node_exporter refuses the file)")
        seen.add(key)
        sampled.add(name)
    return seen


# ---- the hostile set --------------------------------------------------------------------------

def check_output(label, fmt, rc, out, err):
    """A command's exit status, its standard error, and its output by the format it was asked for."""
    if rc != 0:
        fail("%s: exit %d: %r" % (label, rc, err[-300:]))
        return
    check_text(label + ": stderr", err)
    if fmt == "json":
        check_json(label, out)
    elif fmt == "ndjson":
        check_ndjson(label, out)
    elif fmt == "prometheus":
        check_prometheus(label, out)
    else:
        check_text(label, out, tabs=fmt == "csv", carriage_returns=fmt == "csv")


def dsn(msg_id, rcpt, diag=b"smtp; 550 5.1.1 user unknown"):
    return (b"From: MAILER-DAEMON@mx.example.net\nTo: bounces@example.org\nSubject: Undelivered Mail\n"
            b"Message-ID: <" + msg_id + b"@mx.example.net>\nMIME-Version: 1.0\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
            b"--B\nContent-Type: text/plain\n\nfailed\n\n--B\nContent-Type: message/delivery-status\n\n"
            b"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; " + rcpt +
            b"\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: " + diag + b"\n\n--B--\n")


def hostile_set(tmp):
    d = os.path.join(tmp, "hostile")
    os.makedirs(d)
    for name in sorted(os.listdir("fixtures/broken")):
        if name.endswith(".msg"):
            shutil.copy(os.path.join("fixtures/broken", name), d)
    gen = os.path.join(tmp, "gen")
    subprocess.run([sys.executable, "tests/system/broken_gen.py", gen, "--scale", "20"], check=True)
    for name in sorted(os.listdir(gen)):
        if name.startswith("hostile-recipients") or name.startswith("hostile-literal"):
            shutil.copy(os.path.join(gen, name), d)
    # a file name with a line break and an escape in it: replay's source field
    with open(os.path.join(d.encode(), b"name\n\x1b[8mvictim@example.org\xe2\x80\xae.msg"), "wb") as f:
        f.write(dsn(b"name", b"carol@example.com"))
    # a DMARC aggregate report whose names carry what XML lets through: U+202E, a C1 control
    # (U+009B), a line break in a report id
    xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback><report_metadata>"
           "<org_name>evil&#x202E;moc&#x9B;31m</org_name><email>x@example.net&#x202E;</email>"
           "<report_id>r1&#10;victim@example.org&#x9B;</report_id>"
           "<date_range><begin>1700006400</begin><end>1700092799</end></date_range></report_metadata>"
           "<policy_published><domain>example.com</domain><p>none</p></policy_published>"
           "<record><row><source_ip>198.51.100.7</source_ip><count>3</count><policy_evaluated>"
           "<disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>"
           "<identifiers><header_from>example.com&#x202E;</header_from></identifiers><auth_results>"
           "<spf><domain>ev&#x9B;il.example</domain><result>fail</result></spf></auth_results></record></feedback>\n")
    with open(os.path.join(d, "dmarc-hostile.msg"), "wb") as f:
        f.write(b"From: noreply@evil.example\nTo: dmarc@bounces.example.com\n"
                b"Subject: Report Domain: example.com Submitter: evil.example Report-ID: r1\n"
                b"Message-ID: <r1@evil.example>\nMIME-Version: 1.0\nContent-Type: text/xml; charset=utf-8\n"
                b"Content-Disposition: attachment; filename=\"evil.example!example.com!1700006400!1700092799.xml\"\n\n"
                + xml.encode())
    # an unrecognised message (pipe quarantines it)
    with open(os.path.join(d, "unrecognised.msg"), "wb") as f:
        f.write(b"From: someone@example.net\nSubject: hello \x1b[8m\xc2\x9b\n\njust text \xff\n")
    return d


ACCT = (b"type,timeLogged,orig,rcpt,orcpt,dsnStatus,dsnDiag,bounceCat,header_X-HmXmrOriginalRecipient\n"
        b"b,1795169700,bounces@bounces.example.com,j\xf6rg@example.de,,5.1.1,smtp;550 5.1.1 unknown \x1b[8m,bad-mailbox,\n"
        b"b,1795169701,bounces@bounces.example.com,ops\xc2\x9b" b"31m@example.com,,5.1.1,smtp;550 \xe2\x80\xae,bad-mailbox,\n"
        b'b,1795169702,bounces@bounces.example.com,"x@[\nvictim@example.org\n]",,5.1.1,smtp;550 x,bad-mailbox,\n'
        b"b,1795169703,bounces-dave=example.com@bounces.example.com,,,5.1.1,smtp;550 5.1.1,bad-mailbox,\n"
        b"f,1795169704,bounces@bounces.example.com,,,,,,moc.\xe2\x80\xae" b"evil@example.com\n"
        b"b,1795169705,bounces@bounces.example.com,erin@example.com,,5.1.1,smtp;550 5.1.1 \xff\xfe,bad-mailbox,\n")


def inject_old_rows(db):
    """Rows a store written before addresses were validated may hold (raw bytes, a literal over
    three lines, escapes in a reason), as text, the way SQLite kept them."""
    con = sqlite3.connect(db)
    rows = [b"j\xf6rg@example.de", b"x@[\nvictim@example.org\n]", b"ops\x1b[8m@example.com",
            b"moc.\xe2\x80\xae" b"evil@example.com", b"user@ex\xe2\x80\xae" b"ample.com", b"user@ex\xc2\x9b" b"ample.com"]
    for i, a in enumerate(rows):
        domain = a.rsplit(b"@", 1)[1]
        con.execute("INSERT INTO ledger (kind, evidence_time, recorded_at, type, action, recipient, domain, "
                    "category, diagnostic, note) VALUES ('event', 1795169800, 1795169800, 'bounce', 'suppress', "
                    "CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), NULL)",
                    (a, domain, b"bad-mailbox\x1b[8m", b"550 \xc2\x9b" b"31m user unknown \xe2\x80\xae"))
        con.execute("INSERT OR REPLACE INTO suppressions (address, domain, reason, source_kind, first_seen, "
                    "last_seen, count, lifted) VALUES (CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), "
                    "'bounce', 1795169800, 1795169800, 1, 0)", (a, domain, b"bad\xffmailbox\x1b[8m"))
    con.commit()
    con.close()


def main():
    box = Sandbox(BIN)  # pipe runs as an unprivileged user (it refuses root)
    tmp = box.dir
    os.environ.pop("BOUNCEPIPE_DB", None)
    os.environ["BOUNCEPIPE_CONFIG"] = box.config  # the other commands: the same store
    db = box.db
    try:
        d = hostile_set(tmp)
        msgs = sorted(os.listdir(d.encode()))

        # pipe: every message, with hostile and good VERP envelope recipients
        rcpts = [b"bounces-j\xf6rg=example.de@bounces.example.com", b"bounces-ops\x1b[8m=example.com@b.example.com",
                 b"bounces-frank=example.com@bounces.example.com"]
        for i, name in enumerate(msgs):
            with open(os.path.join(d.encode(), name), "rb") as f:
                data = f.read()
            p = subprocess.run(box.command("--rcpt", rcpts[i % len(rcpts)]), input=data, capture_output=True,
                               env=box.env(), timeout=300)
            if p.returncode != 0:
                fail("pipe %r: exit %d: %s" % (name, p.returncode, p.stderr[-300:]))
            check_text("pipe %r: stderr" % name, p.stderr)
        if not os.listdir(os.path.join(box.quarantine, "new")):
            fail("pipe: the unrecognised message is not in the quarantine")

        # replay, into the store and dry-run in every format
        rc, out, err = run(["replay", d])
        check_text("replay: stdout", out)
        check_text("replay: stderr", err)
        for fmt in ("ndjson", "json", "csv", "text"):
            rc, out, err = run(["replay", "--dry-run", "--format", fmt, d])
            label = "replay --format " + fmt
            if fmt in ("ndjson", "json"):
                events = check_ndjson(label, out)
                if fmt == "ndjson" and len(events) < len(msgs):
                    fail("%s: %d events for %d messages" % (label, len(events), len(msgs)))
                for e in events if fmt == "ndjson" else []:
                    if e.get("recipient") is not None and not valid_address(e["recipient"]):
                        fail("%s: an event's recipient is not an address: %r" % (label, e["recipient"]))
            else:
                check_text(label, out, tabs=fmt == "csv", carriage_returns=fmt == "csv")
            check_text(label + ": stderr", err)

        # accounting records
        for fmt in ("ndjson", "json", "csv", "text"):
            rc, out, err = run(["acct", "--dry-run", "--format", fmt], stdin=ACCT)
            label = "acct --format " + fmt
            if fmt in ("ndjson", "json"):
                for e in check_ndjson(label, out):
                    if e.get("recipient") is not None and not valid_address(e["recipient"]):
                        fail("%s: a recipient is not an address: %r" % (label, e["recipient"]))
            else:
                check_text(label, out, tabs=fmt == "csv", carriage_returns=fmt == "csv")
            check_text(label + ": stderr", err)
        rc, out, err = run(["acct"], stdin=ACCT)
        check_text("acct: stderr", err)

        # import: a Latin-1 list is refused line by line, with why; free text is never rewritten
        latin1 = os.path.join(tmp, "latin1.txt")
        with open(latin1, "wb") as f:
            f.write(b"j\xf6rg@example.de\nfoo' OR 1=1 --@evil.example\nJane <jane@example.com> x\n"
                    b"gina@example.com\n")
        rc, out, err = run(["import", latin1])
        text = check_text("import: stderr", err)
        if rc != 1 or "3 lines skipped" not in text or "UTF-8" not in text:
            fail("import of a Latin-1 list: exit %d, %r" % (rc, text))

        # remove / lookup: free text is an error, nothing changes
        for cmd in (["remove", "--reason", "x\x1b[8m"], ["lookup"], ["lookup", "--format", "json"]):
            rc, out, err = run(cmd + ["foo' OR 1=1 --@evil.example"])
            check_text(" ".join(cmd) + ": stderr", err)
            if rc != 64:
                fail("%s of free text: exit %d, want 64 (usage)" % (cmd[0], rc))
        rc, out, _ = run(["lookup", "--format", "json", "--", "--@evil.example"])
        j = check_json("lookup --format json --@evil.example", out)
        if rc != 1 or j is None or j.get("evidence") != []:
            fail("free text was rewritten into --@evil.example somewhere (lookup: exit %d, %r)" % (rc, j))

        # a store written before addresses were validated
        inject_old_rows(db)
        rc, out, err = run(["remove", "--reason", "gone \x1b[8m\xc2\x9b", "gina@example.com"])
        check_text("remove: stdout", out)
        check_text("remove: stderr", err)

        # export: every format; plain is one valid address a line, each explained by lookup
        for fmt in ("json", "ndjson", "csv", "plain", "text"):
            for extra in ([], ["--all"]):
                check_output("export --format %s %s" % (fmt, " ".join(extra)), fmt,
                             *run(["export", "--format", fmt] + extra))
        rc, out, err = run(["export", "--format", "plain", "--all"])
        lines = out.decode("utf-8", "replace").split("\n")[:-1]
        if not lines:
            fail("export --format plain: empty")
        for n, line in enumerate(lines):
            if not valid_address(line):
                fail("export --format plain: %r is not one valid address" % line)
                continue
            rc, jout, _ = run(["lookup", "--format", "json", line])
            j = check_json("lookup --format json %r" % line, jout)
            if j is None or j.get("address") != line or not j.get("evidence"):
                fail("lookup cannot explain %r from export --format plain" % line)
            if n < 50:  # the text layout of the first ones (the same code for all)
                rc, tout, _ = run(["lookup", line])
                check_text("lookup %r" % line, tout)
        if any("victim@example.org" in l for l in lines):
            fail("export --format plain: the address of a three-line literal is a line of its own")
        rc, out, err = run(["export", "--format", "plain"])
        if b"left out" not in err:
            fail("export: the addresses an old store holds that are not valid are not said to be left out")
        for a in ("j\xf6rg@example.de", "ops\x1b[8m@example.com"):
            rc, out, err = run(["lookup", a])
            check_text("lookup %r: stderr" % a, err)

        # stats in every format, also written with --output
        rc, out, _ = run(["stats", "--format", "json"])
        check_json("stats --format json", out)
        rc, out, _ = run(["stats", "--format", "text"])
        check_text("stats --format text", out)
        rc, out, _ = run(["stats", "--format", "prometheus", "--top", "100"])
        series = check_prometheus("stats --format prometheus", out)
        if not series or not any(n == "bouncepipe_events_by_domain_total" for n, _ in series):
            fail("stats --format prometheus: no domain series")
        prom = os.path.join(tmp, "bouncepipe.prom")
        rc, _, err = run(["stats", "--format", "prometheus", "--output", prom])
        with open(prom, "rb") as f:
            check_prometheus("stats --output", f.read())

        # dmarc: every table in every format it has (the hostile report above is in the store)
        rc, out, err = run(["dmarc", "--table", "reports", "--format", "json"])
        if rc != 0 or b"evil" not in out:
            fail("dmarc: the hostile report is not in the store (exit %d: %r)" % (rc, err[-300:]))
        for table in ("summary", "domains", "sources", "flags", "readiness", "reports", "failures"):
            for fmt in ("text", "json", "csv", "prometheus") if table == "summary" else ("text", "json", "csv"):
                table_arg = [] if fmt == "prometheus" else ["--table", table]  # one layout, no tables
                check_output("dmarc --table %s --format %s" % (table, fmt), fmt,
                             *run(["dmarc", "--format", fmt, "--period", "all"] + table_arg))

        # the rest: explain, rescore, patterns test, the HTML report
        rc, out, err = run(["explain", d])
        check_text("explain", out)
        check_text("explain: stderr", err)
        if b"not an address" not in out:
            fail("explain does not say why a recipient was rejected")
        rc, out, err = run(["rescore"])
        check_text("rescore", out)
        rc, out, err = run(["patterns", "test", "550 5.1.1 \x1b[8muser\xc2\x9b unknown \u202e"])
        check_text("patterns test", out)
        html = os.path.join(tmp, "r.html")
        rc, _, err = run(["report", "--html", html])
        with open(html, "rb") as f:
            check_text("report --html", f.read(), tabs=True, carriage_returns=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("outputs valid: %d outputs checked, %d failures" % (checked, len(failures)))
    sys.exit(1 if failures or checked == 0 else 0)


if __name__ == "__main__":
    main()
