#!/usr/bin/env python3
"""recipients.py BIN DIR... - how often bouncepipe's recipients are exactly the ones a message
states for itself.

For every message file under DIR (.eml), the recipients the message states in machine-readable
per-recipient blocks are read independently of bouncepipe, with Python's email package:
Final-Recipient (else Original-Recipient) of each group of a message/delivery-status part,
Original-Rcpt-To of a feedback report, X-Failed-Recipients.  Files that state none are not
counted (a text bounce names its recipients in prose).  The file is "exactly right" when the
set of recipients of `BIN replay --dry-run --format ndjson FILE` equals the stated set
(addresses compared case-insensitively in the domain, as bouncepipe normalises them).

    python3 bench/recipients.py build/bouncepipe ../shared/corpus/eml fixtures
    --list prints the files that differ.
"""
import email
import email.policy
import json
import os
import re
import subprocess
import sys

ADDR = re.compile(r"[^\s<>\"';:,]+@[^\s<>\"';:,]+")


def norm(a):
    a = a.strip().strip(".")
    if "@" not in a:
        return None
    local, _, domain = a.rpartition("@")
    return local + "@" + domain.lower()


def field_groups(body):
    groups, cur = [], {}
    for line in body.splitlines():
        if not line.strip():
            if cur:
                groups.append(cur)
            cur = {}
            continue
        if line[:1] in " \t" or ":" not in line:
            continue
        name, _, value = line.partition(":")
        cur.setdefault(name.strip().lower(), value.strip())
    if cur:
        groups.append(cur)
    return groups


def stated(path):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status", "message/feedback-report"):
            payload = part.get_payload()
            if isinstance(payload, list):  # the email package splits the groups into messages
                body = "\n\n".join(str(p) for p in payload)
            else:
                body = payload if isinstance(payload, str) else ""
            for g in field_groups(body):
                v = g.get("final-recipient") or g.get("original-recipient") or g.get("original-rcpt-to")
                m = ADDR.search(v or "")
                if m and norm(m.group(0)):
                    out.append(norm(m.group(0)))
    if not out and msg.get("X-Failed-Recipients"):
        out = [norm(m) for m in ADDR.findall(msg.get("X-Failed-Recipients")) if norm(m)]
    return set(out)


def ours(binary, path):
    r = subprocess.run([binary, "replay", "--dry-run", "--format", "ndjson", path],
                       capture_output=True, text=True, check=False)
    got = set()
    for line in r.stdout.splitlines():
        e = json.loads(line)
        if e.get("recipient") and e.get("type") != "unrecognized":
            got.add(norm(e["recipient"]))
    return got


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    listing = "--list" in sys.argv
    binary, dirs = args[0], args[1:]
    total = right = 0
    for d in dirs:
        for root, _, files in os.walk(d):
            for name in sorted(files):
                if not name.endswith(".eml"):
                    continue
                path = os.path.join(root, name)
                want = stated(path)
                if not want:
                    continue
                got = ours(binary, path)
                total += 1
                if got == want:
                    right += 1
                elif listing:
                    print(f"{path}: got {sorted(got)}, stated {sorted(want)}")
    pct = 100.0 * right / total if total else 0.0
    print(f"recipients exactly right: {pct:.1f}% ({right} of {total} files that state their recipients)")


if __name__ == "__main__":
    main()
