#!/usr/bin/env python3
"""store_cli.py BIN - the operator commands on a real store: replay (writing), lookup, remove,
import, export, stats, rescore.

A mailbox of our own DSNs is replayed into a temporary store; every command is then run as an
operator would and its output parsed (JSON, NDJSON, CSV, Prometheus text) and checked against
what the messages say.
"""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import check, dsn


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="bp-store-cli-")
    db = os.path.join(tmp, "s.db")
    env = dict(os.environ)
    env.pop("BOUNCEPIPE_CONFIG", None)
    env["BOUNCEPIPE_DB"] = db  # the environment names the store; --db is tested below
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")

    def run(*args, stdin=None):
        p = subprocess.run([binary, *args], input=stdin, capture_output=True, env=env, cwd=tmp, timeout=120)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    try:
        maildir = os.path.join(tmp, "mail")
        os.makedirs(maildir)
        for i in range(30):
            rcpt = f"user{i}@example.{'com' if i % 2 else 'org'}"
            if i % 3 == 0:
                body = dsn(i, [rcpt], "5.2.2", "552", "Mailbox full: quota exceeded")
            else:
                body = dsn(i, [rcpt])
            with open(os.path.join(maildir, f"{i:03d}.eml"), "wb") as f:
                f.write(body)
        rc, out, err = run("replay", maildir)
        check(rc == 0, f"replay writes the store ({err.strip()})")
        check("30 recorded" in err and "20 addresses newly suppressed" in err, f"replay summary: {err.strip()}")
        rc, out, err = run("replay", "--db", db, maildir)
        check(rc == 0 and "0 recorded, 30 already recorded" in err, "replaying again changes nothing")

        # lookup
        rc, out, _ = run("lookup", "user1@example.com")
        check(rc == 0 and "SUPPRESSED" in out and "bad-mailbox" in out and "5.1.1" in out,
              "lookup of a bad mailbox: suppressed, why, evidence")
        rc, out, _ = run("lookup", "--format", "json", "user3@example.com")
        j = json.loads(out)
        check(rc == 1 and j["suppressed"] is False and len(j["evidence"]) == 1
              and j["evidence"][0]["action"] == "soft", "lookup of a soft bounce: not suppressed, one soft event")
        rc, out, _ = run("lookup", "nobody@example.net")
        check(rc == 1 and "not suppressed" in out, "lookup of an unknown address: exit 1")
        rc, _, _ = run("lookup", "not an address")
        check(rc == 64, "lookup of a non-address: usage error")

        # remove
        rc, _, err = run("remove", "user1@example.com")
        check(rc == 64 and "--reason" in err, "remove without --reason is refused")
        rc, out, _ = run("remove", "--reason", "customer confirmed the address", "user1@example.com")
        check(rc == 0 and "lifted" in out, "remove lifts the suppression")
        rc, out, _ = run("lookup", "--format", "json", "user1@example.com")
        j = json.loads(out)
        check(rc == 1 and j["lifted"] is True and j["lift_reason"] == "customer confirmed the address"
              and any(e["kind"] == "removal" for e in j["evidence"]), "the removal is in the ledger")
        rc, _, err = run("remove", "--reason", "x", "user3@example.com")
        check(rc == 1 and "not suppressed" in err, "removing an address that is not suppressed: exit 1")
        os.unlink(db)  # a fresh store, the old mail replayed after a removal must not resurrect
        run("replay", maildir)
        run("remove", "--reason", "again", "user1@example.com")
        rc, _, err = run("replay", maildir)
        rc, _, _ = run("lookup", "user1@example.com")
        check(rc == 1, "replaying old mail does not resurrect a removed address")

        # import
        plain = os.path.join(tmp, "list.txt")
        with open(plain, "w") as f:
            f.write("# our old list\nold1@example.net\n\nOld2@Example.NET\nnot an address\n")
        rc, _, err = run("import", plain)
        check(rc == 1 and "2 added" in err and ":5: no address" in err, f"plain import: {err.strip()}")
        rc, _, err = run("import", plain)
        check("0 added" in err, "importing twice adds nothing")
        rc, out, _ = run("lookup", "Old2@example.net")
        check(rc == 0 and "(import)" in out, "an imported address is suppressed as import")
        csvfile = os.path.join(tmp, "list.csv")
        with open(csvfile, "w") as f:
            f.write('\ufeffEmail,Name,Reason\njdoe@example.net,"Doe, J",=HYPERLINK("http://x")\n'
                    'roe@example.net,Roe,\n')
        rc, _, err = run("import", "--kind", "manual", csvfile)
        check(rc == 0 and "2 added" in err, f"CSV import with a header (and a UTF-8 BOM): {err.strip()}")

        # export
        rc, out, _ = run("export", "--format", "csv")
        rows = list(csv.reader(io.StringIO(out)))
        check(rc == 0 and rows[0][:4] == ["address", "domain", "reason", "source_kind"], "CSV export has a header")
        by_addr = {r[0]: r for r in rows[1:]}
        check("user1@example.com" not in by_addr and "user2@example.org" in by_addr, "CSV: active rows only")
        check(by_addr["jdoe@example.net"][2].startswith("'="), "CSV cells starting with = are neutralised")
        rc, out, _ = run("export", "--format", "json", "--domain", "EXAMPLE.net")
        j = json.loads(out)
        check(sorted(r["address"] for r in j) == ["Old2@example.net", "jdoe@example.net", "old1@example.net",
                                                   "roe@example.net"], "JSON export filtered by domain")
        rc, out, _ = run("export", "--format", "ndjson", "--type", "manual")
        lines = [json.loads(l) for l in out.splitlines()]
        check(len(lines) == 2 and all(l["source_kind"] == "manual" for l in lines), "NDJSON export by type")
        rc, out, _ = run("export", "--format", "plain", "--category", "bad-mailbox", "--all")
        check("user1@example.com" in out.split() and len(out.split()) == 20, "plain export by category, with lifted")
        rc, out, _ = run("export", "--format", "plain", "--since", "2999-01-01")
        check(rc == 0 and out == "", "--since in the future: nothing")
        rc, _, _ = run("export", "--since", "yesterday")
        check(rc == 64, "a bad --since is a usage error")

        # stats
        rc, out, _ = run("stats", "--format", "json")
        j = json.loads(out)
        check(j["type"].get("bounce") == 30 and j["action"].get("suppress") == 20 and j["action"].get("soft") == 10,
              "stats by type and action")
        check(j["domain"].get("example.org") == 15 and j["category"].get("quota-issues") == 10, "stats by domain, category")
        check(j["day"] == {"2026-03-10": 30}, "stats by day")
        check(j["suppressed"].get("bounce") == 19 and j["suppressed"].get("import") == 2 and
              j["lifted"].get("bounce") == 1, "stats of the suppression list")
        rc, out, _ = run("stats", "--format", "prometheus")
        sample = re.compile(r'^bouncepipe_[a-z_]+\{[a-z_]+="[^"]*"\} \d+$')
        bad = [l for l in out.splitlines() if not l.startswith("#") and not sample.match(l)]
        check(rc == 0 and not bad and 'bouncepipe_events_total{type="bounce"} 30' in out,
              f"Prometheus text format ({bad[:1]})")
        prom = os.path.join(tmp, "bouncepipe.prom")
        rc, _, _ = run("stats", "--format", "prometheus", "--output", prom)
        check(rc == 0 and open(prom).read() == out and not os.path.exists(prom + ".tmp"), "stats --output file")
        rc, out, _ = run("stats")
        check(rc == 0 and "events by type (30)" in out, "stats text")

        # rescore: an operator rule now calls "User unknown" a policy rejection
        rules = os.path.join(tmp, "local.rules")
        with open(rules, "w") as f:
            f.write("/Recipient address rejected: User unknown/ policy-related id=local-not-really-unknown\n")
        rc, out, err = run("rescore", "--patterns", rules)
        changes = [l for l in out.splitlines() if "local-not-really-unknown" in l]
        check(rc == 0 and len(changes) == 20 and "suppress bad-mailbox -> ignore policy-related" in changes[0],
              f"rescore shows what would change ({err.strip()})")
        rc, out, _ = run("lookup", "user2@example.org")
        check(rc == 0, "... and changes nothing without --apply")
        rc, out, err = run("rescore", "--apply", "--patterns", rules)
        check(rc == 0 and "19 addresses changed suppression" in err, f"rescore --apply: {err.strip()}")
        rc, _, _ = run("lookup", "user2@example.org")
        check(rc == 1, "... and the address is no longer suppressed")
        rc, _, _ = run("lookup", "old1@example.net")
        check(rc == 0, "... imports are untouched")
        rc, out, err = run("rescore", "--patterns", rules)
        check(rc == 0 and out == "" and "0 would change" in err, "rescoring again: nothing to change")
        # a corrupt store is a failure to look into, not a reason to retry (exit 1, not 75)
        corrupt = os.path.join(tmp, "corrupt.db")
        with open(corrupt, "wb") as f:
            f.write(b"this is not an SQLite database\n" * 200)
        for args in (["lookup", "a@example.com"], ["stats"], ["export"], ["remove", "--reason", "x", "a@example.com"],
                     ["rescore"], ["import", "-"]):
            rc, _, err = run(args[0], "--db", corrupt, *args[1:], stdin=b"a@example.com\n")
            check(rc == 1, f"{args[0]} on a corrupt store exits 1 (got {rc}: {err.strip()})")
        # a password in a database URL never reaches an error message (nothing listens on port 1)
        rc, out, err = run("lookup", "--db", "postgresql://bp:s3cret-pw@127.0.0.1:1/bounces", "a@example.com")
        check(rc != 0 and "s3cret-pw" not in err + out and "bp:***@127.0.0.1" in err,
              f"database URL password masked in errors: {err.strip()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
