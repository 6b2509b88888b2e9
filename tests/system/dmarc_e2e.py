#!/usr/bin/env python3
"""dmarc_e2e.py BOUNCEPIPE [--pg] - DMARC aggregate reports end to end (issue 17, docs/dmarc.md).

  pipe       every fixtures/dmarc/ message through `bouncepipe pipe` as an unprivileged user
             exits 0; what the store keeps of each is what its golden <name>.ndjson says
             (`replay` NDJSON): a dmarc-report row with its report stored once, or, for the
             hostile and malformed ones, a dmarc-refused placeholder with the same reason and
             the message in the quarantine; no suppression; piped again, nothing changes, and
             a replay of the same files finds them all recorded
  module     a pipe that cannot load bouncepipe-dmarc.so answers 75 for a report (naming the
             module) and 0 for an ordinary bounce
  month      bench/dmarc_gen.py's month (540 reports, its --truth) replayed into a store: the
             view's readiness and red flags are the truth's, in JSON, text, CSV and Prometheus;
             with no own_networks, the sending IPs of the accounting stream stand in
  failures   an auth-failure report is linked to its domain's view
  resolve    --resolve names 127.0.0.1 from /etc/hosts and caches it; the cache is used after
  readme     the README's five DMARC lines run as written (the paths theirs, our config)
  migrate    SQLite -> SQLite (and with --pg SQLite -> PostgreSQL -> SQLite): the view of the
             copy is the view of the original; migrating again adds nothing; with --pg, the
             pipe part runs against PostgreSQL too

--pg: the PostgreSQL URL is taken from $BP_TEST_PG_URL, the pipe user's password file from
$BP_TEST_PGPASS (tests/system/dmarc_pg.sh starts a server and sets both).
"""
import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1])
PG = os.environ.get("BP_TEST_PG_URL") if "--pg" in sys.argv[2:] else None
NOBODY = 65534
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(args, stdin=None, as_nobody=False, env=None):
    e = dict(os.environ)
    e.update(env or {})
    if as_nobody and os.geteuid() == 0:
        args = ["runuser", "-u", "nobody", "--"] + args
    return subprocess.run(args, input=stdin, capture_output=True, env=e)


def bp(*args, **kw):
    return run([BIN, *args], **kw)


class Box:
    """A directory the pipe user may write, a config file, a store (SQLite, or PostgreSQL)."""

    def __init__(self, own_networks=True, db=None):
        self.dir = tempfile.mkdtemp(prefix="bp-dmarc-e2e-")
        os.chmod(self.dir, 0o777)
        self.db = db or os.path.join(self.dir, "store.db")
        self.quarantine = os.path.join(self.dir, "quarantine")
        self.config = os.path.join(self.dir, "bouncepipe.conf")
        with open(self.config, "w") as f:
            f.write(f"[store]\ndatabase = {self.db}\n[quarantine]\ndirectory = {self.quarantine}\n")
            if own_networks:
                f.write("[dmarc]\nown_networks = 192.0.2.0/24; 2001:db8::/32\n")
        os.chmod(self.config, 0o600 if db and "postgres" in db else 0o644)
        if os.geteuid() == 0:
            os.chown(self.config, NOBODY, NOBODY)

    def pipe(self, data, env=None):
        e = dict(env or {})
        if self.db.startswith("postgres"):  # the pipe user's copy of the password file
            e["PGPASSFILE"] = os.environ.get("BP_TEST_PGPASS", os.environ.get("PGPASSFILE", ""))
        return run([BIN, "pipe", "--config", self.config], stdin=data, as_nobody=True, env=e)

    def dmarc(self, *args):
        r = bp("dmarc", "--config", self.config, *args)
        if r.returncode != 0:
            raise SystemExit(f"bouncepipe dmarc {' '.join(args)}: exit {r.returncode}: {r.stderr.decode()}")
        return r.stdout.decode()

    def sql(self, query):
        if self.db.startswith("postgres"):
            out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t", "-d", self.db, "-c", query],
                                 capture_output=True, text=True, check=True).stdout
            return [tuple(None if c == "" else c for c in line.split("\t")) for line in out.splitlines() if line]
        con = sqlite3.connect(self.db)
        rows = [tuple(None if c is None else str(c) for c in row) for row in con.execute(query)]
        con.close()
        return rows

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def golden(name):
    with open(os.path.join(ROOT, "fixtures", "dmarc", name + ".ndjson")) as f:
        return json.loads(f.readline())


def fixture_names():
    return sorted(n[:-4] for n in os.listdir(os.path.join(ROOT, "fixtures", "dmarc")) if n.endswith(".eml"))


def part_pipe(db=None):
    box = Box(db=db)
    label = "PostgreSQL" if db else "SQLite"
    names = fixture_names()
    data = {n: open(os.path.join(ROOT, "fixtures", "dmarc", n + ".eml"), "rb").read() for n in names}
    rcs = {n: box.pipe(data[n]).returncode for n in names}
    check(all(rc == 0 for rc in rcs.values()), f"pipe ({label}): every fixtures/dmarc message exits 0 ({rcs})")
    read, refused = [], []
    for n in names:
        g = golden(n)
        if g["type"] == "dmarc-report":
            read.append(n)
        elif g["rule"] == "dmarc-refused":
            refused.append(n)
    stored = {(org, rid) for org, rid in box.sql("SELECT org_name, report_id FROM dmarc_reports")}
    want = {(golden(n)["dmarc_org"], golden(n)["dmarc_report_id"]) for n in read}
    check(stored == want, f"pipe ({label}): the {len(want)} reports the golden files read are stored, once each")
    rows = box.sql("SELECT l.type, l.rule, coalesce(l.reporting_mta, p.reporting_mta), l.diagnostic, l.recipient "
                   "FROM ledger l LEFT JOIN processed p ON p.fingerprint = l.fingerprint WHERE l.kind = 'event'")
    by_rule = {}
    for t, rule, mta, diag, rcpt in rows:
        by_rule.setdefault(rule, []).append((t, mta, diag, rcpt))
    # the ledger keeps reporting_mta to BP_MAX_STORED_HOST_BYTES (the long-fields fixture's org)
    mtas = sorted(m for _t, m, _d, _r in by_rule.get("dmarc", []))
    wants = sorted(golden(n)["reporting_mta"] for n in read)
    check(len(mtas) == len(wants) and all(w.startswith(m) and len(m.encode()) <= 320 for m, w in zip(mtas, wants)) and
          all(t == "dmarc-report" for t, _m, _d, _r in by_rule.get("dmarc", [])),
          f"pipe ({label}): one dmarc-report ledger row per report read, as replay says")
    check(sorted(d for _t, _m, d, _r in by_rule.get("dmarc-refused", [])) ==
          sorted(golden(n)["diagnostic"] for n in refused),
          f"pipe ({label}): each hostile or malformed report kept as dmarc-refused with replay's reason")
    check(all(r is None for rule in ("dmarc", "dmarc-refused") for _t, _m, _d, r in by_rule.get(rule, [])),
          f"pipe ({label}): no DMARC row names a recipient")
    q = os.path.join(box.quarantine, "new")
    kept = len(os.listdir(q)) if os.path.isdir(q) else 0
    check(kept == len(refused), f"pipe ({label}): the {len(refused)} refused reports are in the quarantine ({kept})")
    check(box.sql("SELECT count(*) FROM suppressions") == [("0",)], f"pipe ({label}): nothing suppressed")
    before = (box.sql("SELECT count(*) FROM ledger"), box.sql("SELECT count(*) FROM dmarc_records"))
    again = {n: box.pipe(data[n]).returncode for n in names}
    after = (box.sql("SELECT count(*) FROM ledger"), box.sql("SELECT count(*) FROM dmarc_records"))
    check(all(rc == 0 for rc in again.values()) and before == after,
          f"pipe ({label}): piped again, every message exits 0 and nothing is added")
    # started as root, replay becomes the quarantine's owner (the pipe user): its password file
    r = bp("replay", "--config", box.config, *[os.path.join(ROOT, "fixtures", "dmarc", n + ".eml") for n in names],
           env={"PGPASSFILE": os.environ.get("BP_TEST_PGPASS", os.environ.get("PGPASSFILE", ""))} if db else None)
    check(re.search(rb"0 recorded, %d already recorded" % len(names), r.stderr) is not None,
          f"pipe ({label}): a replay of the same files finds every one recorded ({r.stderr.decode().strip()})")
    if db:  # an empty database again, for migrate
        subprocess.run(["psql", "-X", "-q", "-d", db, "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public"],
                       check=True, capture_output=True)
    box.close()


def part_module():
    box = Box()
    lone = os.path.join(box.dir, "bin")
    os.mkdir(lone)
    os.chmod(lone, 0o755)
    shutil.copy(BIN, lone)  # no module beside it
    installed = os.path.exists("/usr/local/lib/bouncepipe/bouncepipe-dmarc.so") or \
        os.path.exists("/usr/lib/bouncepipe/bouncepipe-dmarc.so")
    if installed:
        print("skip module: a bouncepipe-dmarc.so is installed")
        box.close()
        return
    env = {"BOUNCEPIPE_DMARC_MODULE": "/nonexistent/bouncepipe-dmarc.so"}
    cmd = [os.path.join(lone, "bouncepipe"), "pipe", "--config", box.config]
    report = open(os.path.join(ROOT, "fixtures", "dmarc", "google.eml"), "rb").read()
    r = run(cmd, stdin=report, as_nobody=True, env=env)
    check(r.returncode == 75 and b"bouncepipe-dmarc.so" in r.stderr,
          f"module: without bouncepipe-dmarc.so a report answers 75, naming the module (exit {r.returncode})")
    dsn = open(os.path.join(ROOT, "fixtures", "dsn", "amazonses-dsn.eml"), "rb").read()
    r = run(cmd, stdin=dsn, as_nobody=True, env=env)
    check(r.returncode == 0, f"module: an ordinary bounce needs no module (exit {r.returncode})")
    box.close()


def acct_csv(path):
    """PowerMTA `f` records naming our sending IPs (dlvSourceIp) in November 2023: the ledger keeps
    the dlvSourceIp of complaints only (acct_events.c), not of bounces or deliveries."""
    ips = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10", "192.0.2.13"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["type", "timeLogged", "orig", "rcpt", "feedbackType", "dlvSourceIp"])
        for i, ip in enumerate(ips):
            w.writerow(["f", f"2023-11-{10 + i:02d} 10:00:00+0000", "bounces@bounces.example.com",
                        f"angry{i}@example.net", "abuse", ip])


def view_checks(label, view, truth):
    by_domain = {d["domain"]: d for d in view["domains"]}
    check(set(by_domain) == set(truth["domains"]), f"month ({label}): the truth's domains {sorted(truth['domains'])}")
    for name, t in truth["domains"].items():
        d = by_domain.get(name)
        if d is None:
            continue
        r = d["readiness"]
        flags_unknown = sorted(f["ip"] for f in d["red_flags"] if f["kind"] == "unknown-source")
        flags_own = sorted(f["ip"] for f in d["red_flags"] if f["kind"] == "own-ip-failing")
        check(d["messages"] == t["messages"] and d["dmarc_pass"] == t["messages_pass"] and d["reports"] == t["reports"],
              f"month ({label}): {name}: {d['messages']} messages, {d['dmarc_pass']} passing, {d['reports']} reports")
        check(r["own_messages"] == t["own_messages"] and r["own_pass"] == t["own_pass"],
              f"month ({label}): {name}: our traffic {r['own_pass']} of {r['own_messages']} passing")
        check(r["ready"] == (t["own_pass_rate"] >= 0.98) and r["policy"] == "none" and r["next"] == "quarantine",
              f"month ({label}): {name}: ready for p=quarantine is {r['ready']} (own pass rate {t['own_pass_rate']})")
        check(flags_unknown == sorted(t["spoofing_ips"]) and flags_own == sorted(t["own_ips_failing_dkim"]),
              f"month ({label}): {name}: red flags unknown {flags_unknown}, own failing {flags_own}")
        fwd = [s for s in d["sources"] if s["ip"] in t["forwarders"]]
        check(fwd and all(not s["own"] for s in fwd) and not set(t["forwarders"]) & set(flags_unknown),
              f"month ({label}): {name}: the forwarder passing DMARC is not ours and raises no flag")
        spoof = [f for f in d["red_flags"] if f["kind"] == "unknown-source"]
        check(spoof and all(a["method"] == "spf" and a["domain"] == "spoofer.example.net" for a in spoof[0]["auth_results"]),
              f"month ({label}): {name}: the spoofer's auth results name its own SPF domain")


def part_month(tmp):
    mbox = os.path.join(tmp, "month.mbox")
    truth_path = os.path.join(tmp, "truth.json")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "dmarc_gen.py"), mbox, "--truth", truth_path],
                   check=True, capture_output=True)
    truth = json.load(open(truth_path))
    box = Box()
    r = bp("replay", "--config", box.config, mbox)
    check(r.returncode == 0, f"month: replay of {truth['reports']} reports ({r.stderr.decode().strip()})")
    view = json.loads(box.dmarc("--format", "json"))
    check(view["reports"] == truth["reports"] and view["own_ips_from"] == "config",
          f"month: {view['reports']} reports in the default window, our IPs from the configuration")
    view_checks("own_networks", view, truth)
    text = box.dmarc("--period", "month")
    for name, t in truth["domains"].items():
        word = "READY" if t["own_pass_rate"] >= 0.98 else "NOT READY"
        pct = f"{100 * t['own_pass'] / t['own_messages']:.2f} %"
        check(f"readiness {name}: p=none -> p=quarantine: {word}, our traffic passes DMARC {pct} "
              f"({t['own_pass']} of {t['own_messages']} messages from our IPs), bar 98 %" in text,
              f"month: text: the readiness line of {name} says {word} at {pct}")
        check(re.search(rf"red flag {re.escape(name)}: unknown source 203\.0\.113\.66 sent \d+ messages", text)
              is not None and f"red flag {name}: our IP 192.0.2.13 fails aligned DKIM" in text,
              f"month: text: the two red flags of {name}")
    rows = list(csv.DictReader(io.StringIO(box.dmarc("--format", "csv", "--table", "readiness"))))
    check(sorted((x["domain"], x["ready"]) for x in rows) ==
          sorted((d, "1" if t["own_pass_rate"] >= 0.98 else "0") for d, t in truth["domains"].items()),
          "month: CSV --table readiness")
    prom = box.dmarc("--format", "prometheus")
    check(all(re.fullmatch(r'(# (HELP|TYPE) .*|bouncepipe_dmarc_[a-z_]+\{[^}]*\} [0-9.e+-]+)', line)
              for line in prom.splitlines()) and
          'bouncepipe_dmarc_ready{domain="example.org",next="quarantine"} 0' in prom and
          'bouncepipe_dmarc_ready{domain="example.com",next="quarantine"} 1' in prom,
          "month: Prometheus text format, ready 1/0 per domain")
    # no own_networks: the accounting stream's sending IPs stand in
    acct_box = Box(own_networks=False)
    shutil.copy(box.db, acct_box.db)
    acct = os.path.join(tmp, "acct.csv")
    acct_csv(acct)
    r = bp("acct", "--config", acct_box.config, acct)
    check(r.returncode == 0, f"month: acct records of our sending IPs ({r.stderr.decode().strip()})")
    view2 = json.loads(acct_box.dmarc("--format", "json"))
    check(view2["own_ips_from"] == "acct", "month: without own_networks, our IPs are the accounting stream's")
    view_checks("acct", view2, truth)
    none_box = Box(own_networks=False)
    r = bp("replay", "--config", none_box.config, mbox)
    text = none_box.dmarc()
    check("our IPs: not known" in text and re.search(r"red flag example\.", text) is None,
          "month: without own networks or accounting records, no red flags, and the view says why")
    acct_box.close()
    none_box.close()
    return box, view


def part_readme(box, mbox, tmp):
    """The README's DMARC block as written, with its two paths pointed into the test and
    --config after each command's name (the block's first line is the config key, a comment)."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("**DMARC aggregate reports**", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.strip("\n").splitlines()
    check(len(lines) == 5 and lines[0].startswith("# ") and "own_networks" in lines[0],
          "readme: the DMARC workflow is five lines, the first the configuration")
    prom = os.path.join(tmp, "dmarc.prom")
    for line in lines[1:]:
        cmd = line.split("  #")[0].split()
        cmd = [mbox if a == "/var/mail/dmarc-reports.mbox" else prom if a == "/var/lib/node_exporter/dmarc.prom"
               else a for a in cmd]
        r = run([BIN, cmd[1], "--config", box.config, *cmd[2:]])
        check(r.returncode == 0, f"readme: {line.split('  #')[0].strip()} (exit {r.returncode})")
    check(os.path.exists(prom) and "bouncepipe_dmarc_ready" in open(prom).read(),
          "readme: the Prometheus file is written")


def part_failures():
    box = Box()
    ruf = open(os.path.join(ROOT, "fixtures", "arf", "auth-failure-dkim.eml"), "rb").read()
    check(box.pipe(ruf).returncode == 0, "failures: an auth-failure report is piped")
    google = open(os.path.join(ROOT, "fixtures", "dmarc", "google.eml"), "rb").read()
    box.pipe(google)
    view = json.loads(box.dmarc("--format", "json", "--since", "2023-01-01", "--until", "2027-01-01"))
    d = {x["domain"]: x for x in view["domains"]}.get("example.com")
    check(d is not None and [(f["source_ip"], f["time"]) for f in d["failure_reports"]] ==
          [("192.0.2.99", "2026-03-10T09:20:02Z")],
          "failures: the failure report is in example.com's view, with its source IP and date")
    box.close()


def part_resolve(tmp):
    xml = ("<?xml version=\"1.0\"?><feedback><report_metadata><org_name>resolver.example</org_name>"
           "<email>r@resolver.example</email><report_id>r-1</report_id><date_range><begin>1700006400</begin>"
           "<end>1700092799</end></date_range></report_metadata><policy_published><domain>resolve.example</domain>"
           "<p>none</p></policy_published><record><row><source_ip>127.0.0.1</source_ip><count>3</count>"
           "<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>"
           "</row><identifiers><header_from>resolve.example</header_from></identifiers><auth_results>"
           "<spf><domain>resolve.example</domain><result>pass</result></spf></auth_results></record></feedback>")
    msg = ("From: r@resolver.example\nTo: dmarc@example.com\nSubject: Report Domain: resolve.example Submitter: "
           "resolver.example Report-ID: r-1\nMessage-ID: <r-1@resolver.example>\nMIME-Version: 1.0\n"
           "Content-Type: application/xml; name=\"resolver.example!resolve.example!1700006400!1700092799.xml\"\n\n"
           + xml + "\n").encode()
    box = Box()
    check(box.pipe(msg).returncode == 0, "resolve: a report from 127.0.0.1")
    r = bp("dmarc", "--config", box.config, "--format", "json", "--domain", "resolve.example", "--resolve")
    view = json.loads(r.stdout) if r.returncode == 0 else {"domains": []}
    names = [s["reverse_dns"] for d in view["domains"] for s in d["sources"]]
    want = subprocess.run(["getent", "hosts", "127.0.0.1"], capture_output=True, text=True).stdout.split()
    check(r.returncode == 0 and len(names) == 1 and want and names[0] == want[1],
          f"resolve: --resolve names 127.0.0.1 {names} (getent: {want[1:2]})")
    cached = box.sql("SELECT ip, name FROM dmarc_rdns")
    check(cached == [("127.0.0.1", names[0] if names else None)], f"resolve: cached in the store {cached}")
    view = json.loads(box.dmarc("--format", "json", "--domain", "resolve.example"))
    check([s["reverse_dns"] for d in view["domains"] for s in d["sources"]] == names,
          "resolve: without --resolve the cached name is shown")
    box.close()


def part_migrate(box, view, pg=None):
    for target in ([pg] if pg else []) + [os.path.join(box.dir, "copy.db")]:
        r = bp("migrate", "--config", box.config, "--from", box.db, "--to", target)
        out = r.stdout.decode()
        n = view["reports"]
        check(r.returncode == 0 and f"DMARC reports: {n} new, 0 already there" in out,
              f"migrate -> {target.split('/')[0]}: {n} reports copied ({out.strip()[-80:]})")
        r = bp("migrate", "--config", box.config, "--from", box.db, "--to", target)
        check(f"DMARC reports: 0 new, {n} already there" in r.stdout.decode(),
              f"migrate -> {target.split('/')[0]}: again, nothing added")
        copy = json.loads(bp("dmarc", "--config", box.config, "--db", target, "--format", "json").stdout)
        check(copy == view, f"migrate -> {target.split('/')[0]}: the copy's view is the original's")
        if copy != view:
            a, b = json.dumps(copy, indent=1).splitlines(), json.dumps(view, indent=1).splitlines()
            import difflib
            print("\n".join(list(difflib.unified_diff(b, a, lineterm=""))[:40]))
        if pg and target == pg:
            back = os.path.join(box.dir, "back.db")
            bp("migrate", "--config", box.config, "--from", pg, "--to", back)
            again = json.loads(bp("dmarc", "--config", box.config, "--db", back, "--format", "json").stdout)
            check(again == view, "migrate: PostgreSQL -> SQLite, the view is the original's")


def main():
    tmp = tempfile.mkdtemp(prefix="bp-dmarc-month-")
    try:
        part_pipe()
        if PG:
            part_pipe(PG)
        part_module()
        box, view = part_month(tmp)
        readme_box = Box()
        part_readme(readme_box, os.path.join(tmp, "month.mbox"), tmp)
        readme_box.close()
        part_migrate(box, view, PG)
        box.close()
        part_failures()
        part_resolve(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"dmarc_e2e: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
