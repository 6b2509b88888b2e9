#!/usr/bin/env python3
"""hostile_cli.py BIN - issue 19 items 5 and 6 through the command line.

  - a rule file with an invalid rule: pipe defers (75) and says which; fixed, it accepts (0);
    other commands warn and go on;
  - the quarantine defaults beside the store, not in the working directory; a PostgreSQL store
    without [quarantine] directory defers (75);
  - a symbolic link in place of the quarantine or of its tmp/: pipe defers (75), says so, and
    writes nothing through it;
  - after quarantining, pipe sweeps: a tmp/ file a SIGKILL left 40 hours ago goes, a live one
    stays; with [quarantine] retention_days, messages past it go;
  - stats --output: a fresh file renamed over FILE, its mode 0666 narrowed by the umask, or
    --mode; nothing left beside it.
Pipe runs as an unprivileged user (it refuses root), as in the other pipe tests.
"""
import os
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import NOBODY, Sandbox, check, dsn, unrecognised


def write(path, text, owner=True):
    with open(path, "w") as f:
        f.write(text)
    if os.geteuid() == 0 and owner:
        os.chown(path, NOBODY, NOBODY)


def mkdir(path):
    os.makedirs(path, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)


def pipe(box, config, message, *args, cwd=None):
    cmd = box.command(*args)
    cmd[cmd.index("--config") + 1] = config
    p = subprocess.run(cmd, input=message, capture_output=True, env=box.env(), cwd=cwd, timeout=120)
    return p.returncode, p.stderr.decode(errors="replace")


def age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def main():
    box = Sandbox(sys.argv[1])
    binary = box.binary
    d = box.dir
    try:
        # --- a rule file with an invalid rule ------------------------------------------------
        rules = os.path.join(d, "local.rules")
        write(rules, "/mailbox (is )?full/ quota-issues\n/unclosed (group/ bad-mailbox\n")
        conf = os.path.join(d, "rules.conf")
        write(conf, f"[store]\ndatabase = {box.db}\n[quarantine]\ndirectory = {box.quarantine}\n"
                    f"[rules]\nfiles = {rules}\n")
        rc, err = pipe(box, conf, dsn(1, ["ann@example.org"]))
        check(rc == 75 and "1 invalid rule" in err and "local.rules:2" in err,
              f"a rule file with an invalid rule: pipe defers and says where ({rc}: {err.strip()[:300]})")
        rc, err = pipe(box, box.config, dsn(1, ["ann@example.org"]), "--patterns", rules)
        check(rc == 75 and "invalid rule" in err, f"--patterns with an invalid rule: pipe defers ({rc})")
        p = subprocess.run([binary, "replay", "--dry-run", "--config", conf, "-"], input=dsn(1, ["ann@example.org"]),
                           capture_output=True)
        check(p.returncode == 0 and b"local.rules:2" in p.stderr and b'"ann@example.org"' in p.stdout,
              "other commands warn and go on")
        write(rules, "/mailbox (is )?full/ quota-issues\n")
        rc, err = pipe(box, conf, dsn(1, ["ann@example.org"]))
        check(rc == 0, f"the rule file fixed: pipe accepts ({rc}: {err.strip()[:200]})")

        # --- the quarantine beside the store ----------------------------------------------------
        mkdir(os.path.join(d, "var"))
        mkdir(os.path.join(d, "cwd"))
        conf = os.path.join(d, "beside.conf")
        write(conf, f"[store]\ndatabase = {d}/var/bouncepipe.db\n")
        rc, err = pipe(box, conf, unrecognised(1), cwd=os.path.join(d, "cwd"))
        kept = os.path.join(d, "var", "quarantine", "new")
        check(rc == 0 and os.path.isdir(kept) and len(os.listdir(kept)) == 1,
              f"without [quarantine] directory the quarantine is beside the store ({rc}: {err.strip()[:200]})")
        check(os.listdir(os.path.join(d, "cwd")) == [], "... and nothing is written in the working directory")
        conf = os.path.join(d, "pg.conf")
        write(conf, "[store]\ndatabase = postgresql://bouncepipe@db.invalid/bounces\n")
        rc, err = pipe(box, conf, unrecognised(2))
        check(rc == 75 and "[quarantine] directory" in err,
              f"a PostgreSQL store without [quarantine] directory: pipe defers ({rc}: {err.strip()[:200]})")

        # --- symbolic links where the quarantine would be written ------------------------------
        target = os.path.join(d, "target")
        mkdir(target)
        link = os.path.join(d, "qlink")
        os.symlink(target, link)
        conf = os.path.join(d, "link.conf")
        write(conf, f"[store]\ndatabase = {box.db}\n[quarantine]\ndirectory = {link}\n")
        rc, err = pipe(box, conf, unrecognised(3))
        check(rc == 75 and "symbolic link" in err and os.listdir(target) == [],
              f"the quarantine as a symbolic link: defer, nothing written through it ({rc}: {err.strip()[:200]})")
        real = os.path.join(d, "real")
        mkdir(real)
        os.symlink(target, os.path.join(real, "tmp"))
        write(conf, f"[store]\ndatabase = {box.db}\n[quarantine]\ndirectory = {real}\n")
        rc, err = pipe(box, conf, unrecognised(3))
        check(rc == 75 and "symbolic link" in err and os.listdir(target) == [],
              f"its tmp/ as a symbolic link: defer, nothing written through it ({rc})")

        # --- the sweep after quarantining -------------------------------------------------------
        q = os.path.join(d, "swept")
        conf = os.path.join(d, "sweep.conf")
        write(conf, f"[store]\ndatabase = {box.db}\n[quarantine]\ndirectory = {q}\nretention_days = 30\n")
        rc, _ = pipe(box, conf, unrecognised(4))
        check(rc == 0, "a first unrecognised message is quarantined")
        os.unlink(os.path.join(q, ".bouncepipe-sweep"))  # as if the last sweep were long ago
        for sub, name, seconds in (("tmp", "killed.1", 40 * 3600), ("tmp", "live.2", 60),
                                   ("new", "old", 40 * 86400), ("cur", "old:2,S", 40 * 86400),
                                   ("cur", "recent:2,S", 10 * 86400)):
            path = os.path.join(q, sub, name)
            write(path, "x")
            age(path, seconds)
        rc, err = pipe(box, conf, unrecognised(5))
        left = {sub: sorted(os.listdir(os.path.join(q, sub))) for sub in ("tmp", "new", "cur")}
        check(rc == 0 and left["tmp"] == ["live.2"] and "old" not in left["new"] and len(left["new"]) == 2 and
              left["cur"] == ["recent:2,S"], f"pipe sweeps: old tmp/ leftovers and messages past 30 days go ({left})")

        # --- stats --output -------------------------------------------------------------------
        out_dir = os.path.join(d, "prom")
        mkdir(out_dir)  # started as root, stats becomes the store directory's owner to write
        prom = os.path.join(out_dir, "bouncepipe.prom")
        for umask, args, want in ((0o022, [], 0o644), (0o027, [], 0o640), (0o077, [], 0o600),
                                  (0o077, ["--mode", "0644"], 0o644), (0o022, ["--mode", "600"], 0o600)):
            p = subprocess.run([binary, "stats", "--db", box.db, "--format", "prometheus", "--output", prom] + args,
                               capture_output=True, preexec_fn=lambda u=umask: os.umask(u))
            mode = stat.S_IMODE(os.stat(prom).st_mode)
            check(p.returncode == 0 and mode == want and os.listdir(out_dir) == ["bouncepipe.prom"],
                  f"stats --output {' '.join(args)} under umask {umask:03o}: mode {mode:03o}, want {want:03o}")
        # every other file a command writes (dmarc and signals --output, report --html) is made as
        # a shell's redirection would make it, too: 0666 narrowed by the umask
        for cmd in (["dmarc", "--format", "prometheus", "--output"], ["signals", "--format", "prometheus", "--output"],
                    ["report", "--html"]):
            out = os.path.join(out_dir, cmd[0] + ".out")
            for umask, want in ((0o022, 0o644), (0o077, 0o600)):
                p = subprocess.run([binary] + cmd + [out, "--db", box.db], capture_output=True,
                                   preexec_fn=lambda u=umask: os.umask(u))
                mode = stat.S_IMODE(os.stat(out).st_mode) if os.path.exists(out) else None
                check(p.returncode == 0 and mode == want,
                      f"{cmd[0]} {cmd[-1]} under umask {umask:03o}: exit {p.returncode}, mode "
                      f"{'none' if mode is None else format(mode, '03o')}, want {want:03o} ({p.stderr[-200:]!r})")
            os.unlink(out)
        p = subprocess.run([binary, "stats", "--db", box.db, "--mode", "0644"], capture_output=True)
        check(p.returncode == 64, "--mode without --output is a usage error")
        p = subprocess.run([binary, "stats", "--db", box.db, "--output", prom, "--mode", "0999"], capture_output=True)
        check(p.returncode == 64, "a --mode that is not octal permission bits is a usage error")
    finally:
        box.cleanup()
    print("hostile_cli: all passed")


if __name__ == "__main__":
    main()
