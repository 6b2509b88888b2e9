#!/usr/bin/env python3
"""secret_cli.py BIN - a database password never reaches standard error (nor syslog, which gets
the same lines): in a URL's user information, in its query string (password, sslpassword, keys
percent-encoded), in a key=value connection string, and in libpq's own errors, which echo a
malformed URI whole and quote a bad percent-escape or a stray query parameter.  Nothing listens
on 127.0.0.1 port 1, so every connection fails and says why.

A config file holding a database password is refused by pipe mode (exit 75) and warned about
by the other commands when its group or others may read or write it.
"""
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipe_common import NOBODY, Sandbox, check, dsn

# every secret below contains SECRET, so one test finds them all
LOCATIONS = [
    ("URL user information", "postgresql://bp:SECRET-1@127.0.0.1:1/bounces"),
    ("URL ?password", "postgresql://bp@127.0.0.1:1/bounces?password=SECRET-2"),
    ("URL ?sslpassword and ?password", "postgresql://bp@127.0.0.1:1/b?sslpassword=SECRET-3&password=SECRET-4"),
    ("URL key percent-encoded", "postgresql://bp@127.0.0.1:1/b?pass%77ord=SECRET-5"),
    ("libpq quotes a bad percent-escape", "postgresql://bp@127.0.0.1:1/bounces?password=SECRET-6%zz"),
    ("libpq quotes a bad escape in the user information", "postgresql://bp:SECRET-7%zz@127.0.0.1:1/bounces"),
    ("libpq echoes a malformed URI", "postgresql://bp:SECRET-8@[::1/bounces?password=SECRET-9"),
    ("libpq quotes a piece after an unencoded &", "postgresql://bp@127.0.0.1:1/b?password=ab&SECRET-10"),
    ("key=value connection string", "host=/nonexistent/dir password=SECRET-11 user=bp"),
    ("key=value, quoted", "host=/nonexistent/dir password='SECRET 12' user=bp"),
]


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="bp-secret-cli-")
    env = dict(os.environ)
    env.pop("BOUNCEPIPE_CONFIG", None)
    env.pop("BOUNCEPIPE_DB", None)
    env["PGCONNECT_TIMEOUT"] = "3"
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")

    def run(*args, stdin=None):
        p = subprocess.run([binary, *args], input=stdin, capture_output=True, env=env, cwd=tmp, timeout=60)
        return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")

    box = Sandbox(binary)
    try:
        for label, loc in LOCATIONS:
            for cmd in (["lookup", "--db", loc, "a@example.com"], ["stats", "--db", loc],
                        ["export", "--db", loc], ["remove", "--db", loc, "--reason", "x", "a@example.com"],
                        ["replay", "--db", loc, "-"], ["migrate", "--from", loc, "--to", os.path.join(tmp, "t.db")],
                        ["migrate", "--from", os.path.join(tmp, "none.db"), "--to", loc]):
                rc, out = run(*cmd, stdin=b"")
                check("SECRET" not in out, f"{label}: {cmd[0]} does not show it ({out.strip()})")
            rc, err = box.pipe(dsn(1, ["a@example.com"]), "--db", loc)
            check(rc == 75 and "SECRET" not in err and err.strip() != "",
                  f"{label}: pipe defers without showing it ({err.strip()})")
        rc, out = run("lookup", "--db", "postgresql://bp:SECRET-1@127.0.0.1:1/bounces", "a@example.com")
        check("bp:***@127.0.0.1:1/bounces" in out, f"the location is shown masked ({out.strip()})")

        # a config file that holds a password
        conf = os.path.join(tmp, "bouncepipe.conf")
        with open(conf, "w") as f:
            f.write("[store]\ndatabase = postgresql://bp:SECRET-20@127.0.0.1:1/bounces\n")
        os.chmod(conf, 0o644)
        rc, out = run("lookup", "--config", conf, "a@example.com")
        check("SECRET" not in out and "chmod 600" in out and "0644" in out,
              f"an exposed config file is warned about ({out.strip()})")
        box_conf = os.path.join(box.dir, "secret.conf")
        with open(box_conf, "w") as f:
            f.write(f"[store]\ndatabase = postgresql://bp:SECRET-21@127.0.0.1:1/bounces\n"
                    f"[quarantine]\ndirectory = {box.quarantine}\n")
        if box.as_root:  # the pipe runs as nobody: the file must be its own
            os.chown(box_conf, NOBODY, NOBODY)
        for mode in (0o640, 0o604, 0o620):
            os.chmod(box_conf, mode)
            rc, err = box.pipe(dsn(2, ["a@example.com"]), "--config", box_conf)
            check(rc == 75 and "refusing" in err and "SECRET" not in err,
                  f"pipe refuses a config file of mode {mode:04o} holding a password ({err.strip()})")
        os.chmod(box_conf, 0o600)
        rc, err = box.pipe(dsn(2, ["a@example.com"]), "--config", box_conf)
        check(rc == 75 and "refusing" not in err and "chmod" not in err and "SECRET" not in err,
              f"... and goes on with one of mode 0600 (then fails to connect: {err.strip()})")
        os.chmod(conf, 0o600)
        rc, out = run("lookup", "--config", conf, "a@example.com")
        check("chmod" not in out and "SECRET" not in out, "no warning for a file of mode 0600")
        with open(conf, "w") as f:
            f.write("[store]\ndatabase = postgresql://bp@127.0.0.1:1/bounces\n")
        os.chmod(conf, 0o644)
        rc, out = run("lookup", "--config", conf, "a@example.com")
        check("chmod" not in out, "no warning for a readable file without a password")
    finally:
        box.cleanup()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
