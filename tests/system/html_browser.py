#!/usr/bin/env python3
"""html_browser.py - the HTML report in a real browser (Debian's chromium, headless).

Usage: html_browser.py /path/to/bouncepipe [--screenshots DIR]

Replays the bundled fixtures into a fresh store (with its own quarantine Maildir), writes
`bouncepipe report --html` with a hostile --title (markup, quotes, a control byte, invalid
UTF-8), loads the file in headless chromium with console logging on, and fails when:
  - the browser logged any console message (a script that ran, a resource the page's
    Content-Security-Policy refused, a parse problem) - the detector itself is checked first
    on a page that logs an error on purpose, so this check cannot pass by not looking;
  - the DOM has a <script>, or the hostile title is not shown as plain text;
  - a chart is missing or empty, or what it drew disagrees with the store: the marks of
    "events per day" add up to the events by type of `bouncepipe stats --format json`, those
    of "receivers" to its events by domain, those of "rules" to the ledger's events with a
    rule, those of "growth" to the rows of `export --all`; the tiles show the same totals;
    the quarantine shows the messages in the Maildir; streams and sending IPs say "no data".
With --screenshots DIR it also writes DIR/report-desktop.png and DIR/report-phone.png.
Without chromium it exits 77 (skipped), except under CI, where that is a failure.
"""
import html.parser
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(msg):
    print(f"FAIL: html_browser: {msg}", file=sys.stderr)
    sys.exit(1)


def chromium_cmd(profile):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            fail("chromium is not installed (make deps-test installs it)")
        print("*** SKIPPED: html_browser: chromium is not installed ***", file=sys.stderr)
        sys.exit(77)
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={profile}"]


def load(cmd, url, extra):
    """Run chromium on url; return (stdout, console lines)."""
    p = subprocess.run(cmd + ["--enable-logging=stderr", "--v=0"] + extra + [url], capture_output=True,
                       text=True, errors="replace", timeout=120)
    if p.returncode != 0:
        fail(f"chromium exited with {p.returncode}: {p.stderr[-2000:]}")
    console = [l for l in p.stderr.splitlines() if "CONSOLE" in l]
    return p.stdout, console


class Dom(html.parser.HTMLParser):
    """Collects charts (svg[data-chart]) with their marks' data-value, tiles, no-data notes."""

    def __init__(self):
        super().__init__()
        self.charts, self.tiles, self.nodata, self.scripts = {}, {}, 0, 0
        self.chart, self.tile, self.title, self.in_title, self.h1, self.in_h1 = None, None, "", False, "", False
        self.quarantine = None
        self.earlier, self.earlier_of = {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "svg" and "data-chart" in a:
            self.chart = a["data-chart"]
            self.charts[self.chart] = []
        if tag == "rect" and self.chart and "data-value" in a:
            self.charts[self.chart].append(int(a["data-value"]))
        if "data-tile" in a:
            self.tile = a["data-tile"]
        if "data-earlier" in a:
            self.earlier_of = a["data-earlier"]
        if "data-nodata" in a:
            self.nodata += 1
        if tag == "span" and a.get("class") == "num" and "data-value" in a:
            self.quarantine = int(a["data-value"])
        self.in_title = tag == "title" and self.chart is None
        self.in_h1 = tag == "h1"

    def handle_endtag(self, tag):
        if tag == "svg":
            self.chart = None
        self.in_title = self.in_h1 = False

    def handle_data(self, data):
        if self.earlier_of is not None:
            self.earlier[self.earlier_of] = int(data)
            self.earlier_of = None
        if self.tile is not None:
            self.tiles[self.tile] = int(data)
            self.tile = None
        if self.in_title:
            self.title += data
        if self.in_h1:
            self.h1 += data


def main():
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--screenshots"):
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    binary = os.path.abspath(sys.argv[1])
    shots = os.path.abspath(sys.argv[3]) if len(sys.argv) == 4 else None
    tmp = tempfile.mkdtemp(prefix="bp-html-")
    try:
        run(binary, tmp, shots)
    finally:
        if not os.environ.get("KEEP_HTML_TEST"):
            shutil.rmtree(tmp, ignore_errors=True)


def run(binary, tmp, shots):
    cmd = chromium_cmd(os.path.join(tmp, "profile"))
    db, quarantine, conf = os.path.join(tmp, "r.db"), os.path.join(tmp, "q"), os.path.join(tmp, "bp.conf")
    with open(conf, "w") as f:
        f.write(f"[store]\ndatabase = {db}\n[quarantine]\ndirectory = {quarantine}\n")
    env = dict(os.environ, BOUNCEPIPE_CONFIG=conf)
    env.pop("BOUNCEPIPE_DB", None)
    inputs = []
    for dirpath, dirnames, files in os.walk(os.path.join(ROOT, "fixtures")):
        if os.path.basename(dirpath) == "broken" or "/broken" in dirpath:
            continue
        inputs += [os.path.join(dirpath, n) for n in files if n.endswith((".eml", ".mbox"))]
    inputs.sort()
    p = subprocess.run([binary, "replay"] + inputs, env=env, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        fail(f"replay exited with {p.returncode}: {p.stderr[-500:]}")
    # the quarantine Maildir as pipe mode leaves it (pipe refuses to run as root, as tests may)
    for sub, names in (("new", ["1700000000.a1.host", "1700000001.b2.host"]), ("cur", ["1700000002.c3.host:2,S"]),
                       ("tmp", ["1700000003.d4.host"])):
        os.makedirs(os.path.join(quarantine, sub), exist_ok=True)
        for n in names:
            with open(os.path.join(quarantine, sub, n), "w") as f:
                f.write("From: someone@example.org\nSubject: hello\n\nnothing to see\n")

    title = "<script>alert(\"x\")</script> & 'quotes' \x01 \xff"
    out = os.path.join(tmp, "report.html")
    p = subprocess.run([binary, "report", "--html", out, "--title", title.encode("latin-1")], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"report exited with {p.returncode}: {p.stderr}")
    with open(out, "rb") as f:
        raw = f.read()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"the report is not valid UTF-8: {e}")
    if b"<script" in raw:
        fail("the report holds a <script> tag: the title was not escaped")

    # the detector must see a console error when there is one
    bad = os.path.join(tmp, "bad.html")
    with open(bad, "w") as f:
        f.write("<!DOCTYPE html><title>t</title><script>console.error('detector check')</script>")
    _, console = load(cmd, "file://" + bad, ["--dump-dom"])
    if not any("detector check" in l for l in console):
        fail("the console detector did not see a deliberate console.error: the check below would be blind")

    dom_text, console = load(cmd, "file://" + out, ["--dump-dom"])
    if console:
        fail("the browser logged console messages:\n  " + "\n  ".join(console))
    dom = Dom()
    dom.feed(dom_text)
    if dom.scripts:
        fail("the DOM has a <script> element")
    if "<script>alert(" not in dom.h1 or "'quotes'" not in dom.h1 or "?" not in dom.h1:
        fail(f"the hostile title is not shown as masked text: {dom.h1!r}")

    stats = json.loads(subprocess.run([binary, "stats", "--format", "json"], env=env, capture_output=True,
                                      text=True, check=True).stdout)
    events = sum(stats["type"].values())
    with_domain = sum(stats["domain"].values())
    c = sqlite3.connect(db)
    with_rule = c.execute("select count(*) from ledger where kind='event' and rule is not null").fetchone()[0]
    c.close()
    listed = subprocess.run([binary, "export", "--all", "--format", "plain"], env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    q = sum(len(os.listdir(os.path.join(quarantine, s))) for s in ("new", "cur")
            if os.path.isdir(os.path.join(quarantine, s)))
    if events < 50 or q < 1:
        fail(f"the test store is too small to test anything ({events} events, {q} quarantined)")

    def chart(name, want, what):
        marks = dom.charts.get(name)
        if not marks:
            fail(f"chart {name} is missing or empty")
        # days older than the drawn window are summed in a note (data-earlier) instead
        if sum(marks) + dom.earlier.get(name, 0) != want:
            fail(f"chart {name}: its marks add up to {sum(marks)} (+{dom.earlier.get(name, 0)} on earlier days), "
                 f"{what} says {want}")
        return len(marks)

    n_days = chart("events-per-day", events, "stats (events by type)")
    chart("receivers", with_domain, "stats (events by domain)")
    chart("rules", with_rule, "the ledger (events with a rule)")
    chart("growth", len(listed), "export --all")
    if dom.tiles.get("events") != events:
        fail(f"tile events shows {dom.tiles.get('events')}, stats says {events}")
    for action, n in stats["action"].items():
        if dom.tiles.get("action:" + action) != n:
            fail(f"tile action:{action} shows {dom.tiles.get('action:' + action)}, stats says {n}")
    if dom.tiles.get("quarantine") != q or dom.quarantine != q:
        fail(f"quarantine shows {dom.tiles.get('quarantine')}/{dom.quarantine}, the Maildir holds {q}")
    if dom.nodata < 2:
        fail("streams and sending IPs should say 'no data'")

    if shots:  # the same report with its ordinary title
        os.makedirs(shots, exist_ok=True)
        plain = os.path.join(tmp, "plain.html")
        subprocess.run([binary, "report", "--html", plain], env=env, check=True)
        for name, size in (("report-desktop.png", "1200,1600"), ("report-phone.png", "412,2300")):
            load(cmd, "file://" + plain, [f"--window-size={size}", f"--screenshot={os.path.join(shots, name)}"])
    print(f"html_browser: ok: {events} events over {n_days} marks per day, {with_domain} by receiver, "
          f"{with_rule} by rule, {len(listed)} suppressions, {q} quarantined; no console message, no script, "
          f"the hostile title shown as text")


if __name__ == "__main__":
    main()
