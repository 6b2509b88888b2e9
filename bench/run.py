#!/usr/bin/env python3
"""bench/run.py - how fast bouncepipe is, as ratios to floor programs measured in the same run.

usage: python3 bench/run.py [CORPUS ...] [--runs N] [--repeat K] [--pipe-messages N]
                            [--big N | --no-big] [--big-store] [--no-replay] [--no-pipe] [--no-sisimai]
                            [--callgrind]
                            [--db-dir DIR] [--build DIR] [--no-build] [--json FILE]

CORPUS is a message file, a directory of them, an mbox or a Maildir (several allowed);
the default is the checkout's fixtures (*.eml and *.mbox, without fixtures/broken/).  The script builds bouncepipe and the
floor programs of bench/ in its own build directory (default build-bench, option
BP_BUILD_BENCH=ON) and prints medians over --runs repetitions of:

  replay     messages/s of `bouncepipe replay --dry-run`, of replay writing a fresh store,
             of bench/gmime_floor (read + GMime parse + part walk, nothing else) and of Perl
             Sisimai (bench/sisimai.pl, when libsisimai-perl is installed), with peak RSS;
             each run reads the corpus --repeat times so that start-up does not dominate
  pipe       latency of `bouncepipe pipe` per message (process start to exit, rules and
             SQLite commit included), one process at a time and 8 at once, against
             bench/pipe_floor (start, GMime parse, one SQLite WAL commit) and, when it could
             be built, bouncepipe-static (what static linking saves), with peak RSS
  callgrind  (--callgrind) instruction counts of the floor and dry-run over the corpus and of
             one pipe message and its floor: ratios that do not depend on the machine's load
  big mbox   one replay --dry-run (and with --big-store one writing a store) of an mbox of
             --big messages (default 100,000) generated in the temporary directory from the
             corpus: throughput and peak RSS (memory must stay flat in corpus size)

Ratios, not absolute times, are what to compare: on a shared machine absolute times drift.
Nothing here is a test; the targets are printed next to the ratios.  Exit status 0 unless
something could not be run.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPE_RCPT = "bounces@bounces.example.com"

TARGETS = {
    "dry_vs_floor": 0.5,  # issue 8's target, restated to what GMime itself allows (docs/performance.md)
    "dry_vs_sisimai": 12.0,
    "store_vs_dry": 0.5,
    "pipe_vs_floor": 1.3,
    "big_rss_kb": 64 * 1024,
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


TIME = "/usr/bin/time"  # GNU time: forks from its own small process, so %M is the child's alone


def run_measured(argv, stdin_path=None, cwd=None, env=None, stdout_path=os.devnull):
    """Spawn argv, wait for it; return (wall seconds, peak RSS in KiB or 0, exit status).

    The peak RSS comes from GNU time wrapped around argv: a child spawned from this Python
    process would report Python's own RSS as its peak (Linux carries the pre-exec peak over
    exec).  time's own start-up adds well under a millisecond to the wall time."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    if stdin_path is not None:
        actions.append((os.POSIX_SPAWN_OPEN, 0, stdin_path, os.O_RDONLY, 0))
    rss_file = None
    if os.access(TIME, os.X_OK):
        fd, rss_file = tempfile.mkstemp(prefix="bench-rss-")
        os.close(fd)
        argv = [TIME, "-f", "%M", "-o", rss_file] + argv
    if cwd is not None:  # posix_spawn has no chdir before Python 3.13: go through env(1)
        argv = ["/usr/bin/env", "-C", cwd] + argv
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env if env is not None else os.environ, file_actions=actions)
    _, status, _ = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    peak = 0
    if rss_file is not None:
        with open(rss_file) as f:
            lines = [ln for ln in f.read().split() if ln.isdigit()]
        os.unlink(rss_file)
        peak = int(lines[-1]) if lines else 0
    return wall, peak, os.waitstatus_to_exitcode(status)


# `bouncepipe pipe` refuses to run as root (an MTA runs it as its own user); as root, every
# pipe-mode program (the floor too, so that both pay the same) runs as this user.
UNPRIVILEGED = 65534  # nobody / nogroup


def spawn(argv, stdin_path, env):
    """Start argv with stdin from stdin_path and stdout/stderr to /dev/null; as root, drop to
    UNPRIVILEGED between fork and exec (no extra exec in the measured path)."""
    if os.geteuid() != 0:
        actions = [
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 0, stdin_path, os.O_RDONLY, 0),
        ]
        return os.posix_spawn(argv[0], argv, env, file_actions=actions)
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work until exec
        try:
            fd_in = os.open(stdin_path, os.O_RDONLY)
            fd_null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd_in, 0)
            os.dup2(fd_null, 1)
            os.dup2(fd_null, 2)
            os.setgroups([])
            os.setgid(UNPRIVILEGED)
            os.setuid(UNPRIVILEGED)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid


def unprivileged_prefix():
    """argv prefix that runs a program as UNPRIVILEGED when we are root (for the RSS runs)."""
    if os.geteuid() != 0:
        return []
    return ["/usr/bin/setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups"]


def writable_dir(path):
    """Create path, writable by whoever runs the pipe-mode programs."""
    os.makedirs(path)
    if os.geteuid() == 0:
        os.chown(path, UNPRIVILEGED, UNPRIVILEGED)


def run_parallel(jobs, width):
    """Run jobs [(argv, stdin_path, env)] with at most width at once.
    Return per-job [(latency s, exit status)] in job order (no RSS: see run_measured)."""
    results = [None] * len(jobs)
    running = {}
    next_job = 0
    while next_job < len(jobs) or running:
        while next_job < len(jobs) and len(running) < width:
            argv, stdin_path, env = jobs[next_job]
            t0 = time.perf_counter()
            pid = spawn(argv, stdin_path, env)
            running[pid] = (next_job, t0)
            next_job += 1
        pid, status, _ = os.wait4(-1, 0)
        t1 = time.perf_counter()
        if pid not in running:
            continue
        index, t0 = running.pop(pid)
        results[index] = (t1 - t0, os.waitstatus_to_exitcode(status))
    return results


def build(build_dir):
    log(f"building in {build_dir} (BP_BUILD_BENCH=ON) ...")
    subprocess.run(
        ["cmake", "-S", ROOT, "-B", build_dir, "-DBP_BUILD_BENCH=ON", "-DBP_BUILD_TESTS=OFF"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(["cmake", "--build", build_dir, "-j2"], check=True, stdout=subprocess.DEVNULL)


def default_corpus(tmp):
    """A flat directory of links to the fixtures' messages (*.eml, *.mbox; fixtures also hold
    .ndjson), leaving out fixtures/broken/: hostile input for the tests, not a workload."""
    out = os.path.join(tmp, "fixtures")
    os.makedirs(out)
    n = 0
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "fixtures")):
        if os.path.relpath(dirpath, os.path.join(ROOT, "fixtures")) == ".":
            dirnames[:] = [d for d in dirnames if d != "broken"]
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".eml", ".mbox")):
                n += 1
                rel = os.path.relpath(os.path.join(dirpath, name), os.path.join(ROOT, "fixtures"))
                os.symlink(os.path.join(dirpath, name), os.path.join(out, f"{n:05d}-" + rel.replace("/", "-")))
    return out if n > 0 else None


STRICT_FROM = re.compile(rb"From [^ \n]+ +(Mon|Tue|Wed|Thu|Fri|Sat|Sun) .{4}")


def split_messages(paths, tmp, limit):
    """Individual message files (for pipe mode): files of directories and Maildirs as they
    are, mboxes split at their From_ lines into the directory tmp."""
    os.makedirs(tmp, exist_ok=True)
    files = []

    def add_file(path):
        with open(path, "rb") as f:
            head = f.read(5)
        if head != b"From ":
            files.append(path)
            return
        with open(path, "rb") as f:
            current = None
            prev_blank = True
            for line in f:
                # a message starts at a From_ line after a blank line, or at one in the full
                # RFC 4155 shape anywhere: as bouncepipe's mbox reader decides
                blank = line in (b"\n", b"\r\n")
                if line.startswith(b"From ") and (prev_blank or STRICT_FROM.match(line)):
                    prev_blank = blank
                    if current is not None:
                        current.close()
                        if len(files) >= limit:
                            return
                    name = os.path.join(tmp, f"split-{len(files):06d}.eml")
                    current = open(name, "wb")
                    files.append(name)
                    continue
                prev_blank = blank
                if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
                    line = line[1:]  # mboxrd unescape
                current.write(line)
            if current is not None:
                current.close()

    def add_dir(path, depth):
        if depth > 16:
            return
        if os.path.isdir(os.path.join(path, "new")) and os.path.isdir(os.path.join(path, "cur")):
            add_dir(os.path.join(path, "new"), depth + 1)
            add_dir(os.path.join(path, "cur"), depth + 1)
            return
        for name in sorted(os.listdir(path)):
            if name.startswith(".") or len(files) >= limit:
                continue
            full = os.path.join(path, name)
            if os.path.isdir(full):
                add_dir(full, depth + 1)
            else:
                add_file(full)

    for p in paths:
        if os.path.isdir(p):
            add_dir(p, 0)
        else:
            add_file(p)
    return files[:limit]


def unique_copy(data, copy):
    """data with its Message-ID made unique for copy > 0, so that the store's idempotency
    (fingerprint = Message-ID + body) does not skip repeated messages."""
    if copy == 0:
        return data
    end = re.search(rb"\r?\n\r?\n", data)
    head_len = end.start() if end else len(data)
    m = re.search(rb"(?im)^message-id:[ \t]*<?([^\r\n>]*)>?", data[:head_len])
    if m:
        return data[: m.start()] + b"Message-ID: <bench%d.%s>" % (copy, m.group(1)) + data[m.end() :]
    return b"Message-ID: <bench%d@bench.example.com>\n" % copy + data


def mbox_body(data):
    """data as an mboxrd entry body: LF line ends, From_ lines escaped, final newline."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    lines = [b">" + ln if ln.lstrip(b">").startswith(b"From ") else ln for ln in lines]
    body = b"\n".join(lines)
    return body if body.endswith(b"\n") else body + b"\n"


def make_mbox(messages, count, path):
    """An mboxrd of count messages cycling through messages, every one distinct."""
    datas = []
    for m in messages:
        with open(m, "rb") as f:
            datas.append(f.read())
    with open(path, "wb", buffering=1 << 20) as out:
        for i in range(count):
            out.write(b"From MAILER-DAEMON@example.com Sat Nov 21 00:00:00 2026\n")
            out.write(mbox_body(unique_copy(datas[i % len(datas)], i // len(datas))))
            out.write(b"\n")


def make_replay_corpus(paths, messages, repeat, tmp):
    """The corpus read repeat times, as one input every replay contender reads: the messages
    are copied repeat times with distinct Message-IDs (the store would skip exact repeats),
    into an mbox when the corpus is an mbox, else into a flat directory of files."""
    is_mbox = any(os.path.isfile(p) and open(p, "rb").read(5) == b"From " for p in paths)
    if is_mbox:
        out = os.path.join(tmp, "replay.mbox")
        make_mbox(messages, len(messages) * repeat, out)
        return [out]
    out = os.path.join(tmp, "replay")
    os.makedirs(out)
    for k in range(repeat):
        for i, m in enumerate(messages):
            with open(m, "rb") as f:
                data = f.read()
            with open(os.path.join(out, f"{k:03d}-{i:06d}.eml"), "wb") as f:
                f.write(unique_copy(data, k))
    return [out]


def floor_count(floor, paths):
    r = subprocess.run([floor] + paths, capture_output=True, text=True)
    for line in r.stderr.splitlines():
        if line.startswith("messages "):
            return int(line.split()[1])
    raise SystemExit(f"gmime_floor failed: {r.stderr.strip()}")


def store_supported(bp, tmp):
    """True when replay without --dry-run writes a store (the store may not be built yet)."""
    probe = os.path.join(tmp, "probe")
    os.makedirs(probe, exist_ok=True)
    env = dict(os.environ, BOUNCEPIPE_DB=os.path.join(probe, "bouncepipe.db"))
    r = subprocess.run([bp, "replay", os.devnull], capture_output=True, text=True, env=env, cwd=probe)
    return "not built" not in r.stderr and r.returncode in (0, 1) and os.path.exists(env["BOUNCEPIPE_DB"])


def pipe_supported(bp):
    r = subprocess.run([bp, "pipe", "--help"], capture_output=True, text=True)
    return r.returncode == 0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_rate(x):
    return f"{x:,.0f}"


def verdict(value, target, higher_is_better=True):
    ok = value >= target if higher_is_better else value <= target
    return "meets" if ok else "MISSES"


def bench_replay(args, tools, paths, messages, tmp, results):
    inputs = paths
    if args.repeat > 1:
        split = split_messages(paths, os.path.join(tmp, "split-replay"), 10**9)
        inputs = make_replay_corpus(paths, split, args.repeat, tmp)
    total = floor_count(tools["floor"], inputs)
    contenders = [("gmime floor", [tools["floor"]] + inputs, None)]
    contenders.append(("replay --dry-run", [tools["bp"], "replay", "--dry-run"] + inputs, None))
    if tools.get("store"):
        contenders.append(("replay (store)", [tools["bp"], "replay"] + inputs, "store"))
    if tools.get("sisimai"):
        contenders.append(("perl sisimai", ["/usr/bin/perl", tools["sisimai"]] + inputs, None))
    rates = {name: [] for name, _, _ in contenders}
    rss = {name: 0 for name, _, _ in contenders}
    for run in range(args.runs):
        for name, argv, kind in contenders:  # interleaved, so drift hits every contender alike
            env, cwd = None, None
            if kind == "store":
                cwd = os.path.join(tmp, f"store-{run}")
                os.makedirs(cwd)
                env = dict(os.environ, BOUNCEPIPE_DB=os.path.join(cwd, "bouncepipe.db"))
            wall, peak, code = run_measured(argv, cwd=cwd, env=env)
            if code not in (0, 1):  # 1: some input was not a readable message
                raise SystemExit(f"{name} exited {code}: {' '.join(argv[:4])} ...")
            rates[name].append(total / wall)
            rss[name] = max(rss[name], peak)
            if kind == "store":
                shutil.rmtree(cwd)
        log(f"  replay run {run + 1}/{args.runs} done")
    print(f"\nreplay: {messages} messages x {args.repeat} (distinct Message-IDs) = {total} per run, median of {args.runs} runs")
    print(f"  {'program':<20} {'msgs/s':>10} {'peak RSS':>10}")
    for name, _, _ in contenders:
        print(f"  {name:<20} {fmt_rate(median(rates[name])):>10} {rss[name] / 1024:>8.1f}MB")
    results["replay"] = {n: {"msgs_per_s": median(rates[n]), "rss_kb": rss[n], "runs": rates[n]} for n in rates}
    dry, floor = median(rates["replay --dry-run"]), median(rates["gmime floor"])
    r = dry / floor
    print(f"  dry-run / gmime floor   = {r:.2f}  (target >= {TARGETS['dry_vs_floor']}: {verdict(r, TARGETS['dry_vs_floor'])})")
    results["ratios"]["dry_vs_floor"] = r
    if "perl sisimai" in rates:
        r = dry / median(rates["perl sisimai"])
        print(f"  dry-run / perl sisimai  = {r:.1f}  (target >= {TARGETS['dry_vs_sisimai']}: {verdict(r, TARGETS['dry_vs_sisimai'])})")
        results["ratios"]["dry_vs_sisimai"] = r
    else:
        print("  perl sisimai: skipped")
    if "replay (store)" in rates:
        r = median(rates["replay (store)"]) / dry
        print(f"  store / dry-run         = {r:.2f}  (target >= {TARGETS['store_vs_dry']}: {verdict(r, TARGETS['store_vs_dry'])})")
        results["ratios"]["store_vs_dry"] = r
    else:
        print("  replay writing the store: skipped (this build's replay has no store yet)")


def bench_pipe(args, tools, tmp, msgs, results):
    contenders = [("pipe_floor", lambda db: [tools["pipe_floor"], db, args.synchronous])]
    if tools.get("pipe"):
        contenders.insert(0, ("bouncepipe pipe", lambda db: [tools["bp"], "pipe", "--rcpt", PIPE_RCPT]))
        if tools.get("bp_static"):
            contenders.append(("bouncepipe-static", lambda db: [tools["bp_static"], "pipe", "--rcpt", PIPE_RCPT]))
    lat = {(n, w): [] for n, _ in contenders for w in (1, 8)}
    rss = {n: 0 for n, _ in contenders}
    for run in range(args.runs):
        for width in (1, 8):
            for name, make_argv in contenders:
                d = os.path.join(args.db_dir or tmp, f"pipe-{os.getpid()}-{run}-{width}-{name.replace(' ', '_')}")
                writable_dir(d)
                db = os.path.join(d, "bouncepipe.db")
                env = dict(os.environ, BOUNCEPIPE_DB=db, HOME=d)
                argv = make_argv(db)
                os.chdir(d)  # the children's working directory: ./quarantine goes here
                # warm-up: creates the database and its schema, outside the measurement;
                # its peak RSS is the program's (measured through GNU time)
                _, peak, code = run_measured(unprivileged_prefix() + argv, stdin_path=msgs[0], env=env)
                if code != 0:
                    log(f"  warning: {name} warm-up exited {code}")
                rss[name] = max(rss[name], peak)
                out = run_parallel([(argv, m, env) for m in msgs[1:]], width)
                bad = [code for _, code in out if code != 0]
                if bad:
                    log(f"  warning: {name} exited non-zero {len(bad)} times (e.g. {bad[0]})")
                lat[(name, width)].append(median([t for t, _ in out]))
                os.chdir(ROOT)
                shutil.rmtree(d)
        log(f"  pipe run {run + 1}/{args.runs} done")
    print(f"\npipe: {len(msgs) - 1} distinct messages per series, median latency, median of {args.runs} runs")
    print(f"  {'program':<20} {'1 at once':>10} {'8 at once':>10} {'peak RSS':>10}")
    for name, _ in contenders:
        print(
            f"  {name:<20} {median(lat[(name, 1)]) * 1000:>8.2f}ms {median(lat[(name, 8)]) * 1000:>8.2f}ms"
            f" {rss[name] / 1024:>8.1f}MB"
        )
    results["pipe"] = {
        n: {"ms_1": median(lat[(n, 1)]) * 1000, "ms_8": median(lat[(n, 8)]) * 1000, "rss_kb": rss[n]}
        for n, _ in contenders
    }
    if not tools.get("pipe"):
        print("  bouncepipe pipe: skipped (this build has no pipe command yet); floor shown alone")
        return
    for width in (1, 8):
        r = median(lat[("bouncepipe pipe", width)]) / median(lat[("pipe_floor", width)])
        print(f"  pipe / floor, {width} at once = {r:.2f}  (target <= {TARGETS['pipe_vs_floor']}: {verdict(r, TARGETS['pipe_vs_floor'], False)})")
        results["ratios"][f"pipe_vs_floor_{width}"] = r
    if tools.get("bp_static"):
        saved = median(lat[("bouncepipe pipe", 1)]) - median(lat[("bouncepipe-static", 1)])
        print(f"  static linking saves {saved * 1000:.2f} ms per message (1 at once)")
        results["ratios"]["static_saves_ms"] = saved * 1000


def callgrind_ir(argv, stdin_path=None, env=None, cwd=None, unprivileged=False):
    """Instructions executed by argv under valgrind --tool=callgrind (None if it failed)."""
    prefix = unprivileged_prefix() if unprivileged else []
    cmd = prefix + ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        r = subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    finally:
        if stdin_path:
            stdin.close()
    m = re.search(r"refs:\s+([\d,]+)", r.stderr)
    return int(m.group(1).replace(",", "")) if m else None


def bench_callgrind(args, tools, paths, tmp, msgs, results):
    """Instruction counts: the load-independent version of the ratios (one run each)."""
    if shutil.which("valgrind") is None:
        print("\ncallgrind: valgrind is not installed: skipped")
        return
    log("  callgrind (slow: ~50x) ...")
    ir = {
        "gmime floor": callgrind_ir([tools["floor"]] + paths),
        "replay --dry-run": callgrind_ir([tools["bp"], "replay", "--dry-run"] + paths),
    }
    if tools.get("pipe"):
        d = os.path.join(args.db_dir or tmp, f"cg-{os.getpid()}")
        writable_dir(d)
        env = dict(os.environ, BOUNCEPIPE_DB=os.path.join(d, "bouncepipe.db"), HOME=d)
        pipe_argv = [tools["bp"], "pipe", "--rcpt", PIPE_RCPT]
        floor_argv = [tools["pipe_floor"], os.path.join(d, "floor.db"), args.synchronous]
        for argv in (pipe_argv, floor_argv):  # create the databases first
            run_measured(unprivileged_prefix() + argv, stdin_path=msgs[0], env=env, cwd=d)
        ir["bouncepipe pipe (1 message)"] = callgrind_ir(pipe_argv, msgs[1], env, d, True)
        ir["pipe_floor (1 message)"] = callgrind_ir(floor_argv, msgs[1], env, d, True)
        shutil.rmtree(d)
    print("\ncallgrind: instructions, corpus read once (independent of the machine's load)")
    for name, n in ir.items():
        print(f"  {name:<28} {n / 1e6 if n else float('nan'):>10,.1f} M")
    results["callgrind"] = ir
    if ir["gmime floor"] and ir["replay --dry-run"]:
        print(f"  floor / dry-run              = {ir['gmime floor'] / ir['replay --dry-run']:.2f}  (the throughput ratio, by instructions)")
    if ir.get("bouncepipe pipe (1 message)") and ir.get("pipe_floor (1 message)"):
        print(f"  pipe / pipe_floor            = {ir['bouncepipe pipe (1 message)'] / ir['pipe_floor (1 message)']:.2f}")


def bench_big(args, tools, tmp, msgs, results):
    path = os.path.join(tmp, "big.mbox")
    log(f"  generating a {args.big:,}-message mbox in {tmp} ...")
    make_mbox(msgs, args.big, path)
    size = os.path.getsize(path)
    print(f"\nbig mbox: {args.big:,} messages, {size / 1e6:,.0f} MB, one run each")
    print(f"  {'program':<20} {'msgs/s':>10} {'peak RSS':>10}")
    contenders = [("gmime floor", [tools["floor"], path], None), ("replay --dry-run", [tools["bp"], "replay", "--dry-run", path], None)]
    if tools.get("store") and args.big_store:
        contenders.append(("replay (store)", [tools["bp"], "replay", path], "store"))
    results["big"] = {"messages": args.big, "bytes": size}
    for name, argv, kind in contenders:
        env, cwd = None, None
        if kind == "store":
            cwd = os.path.join(tmp, "big-store")
            os.makedirs(cwd)
            env = dict(os.environ, BOUNCEPIPE_DB=os.path.join(cwd, "bouncepipe.db"))
        wall, peak, code = run_measured(argv, cwd=cwd, env=env)
        if cwd:
            shutil.rmtree(cwd)
        print(f"  {name:<20} {fmt_rate(args.big / wall):>10} {peak / 1024:>8.1f}MB  (exit {code})")
        results["big"][name] = {"msgs_per_s": args.big / wall, "rss_kb": peak, "exit": code}
        if name != "gmime floor":
            print(f"    peak RSS target < 64 MB: {verdict(peak, TARGETS['big_rss_kb'], False)}")
    os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="*", help="message file, directory, mbox or Maildir (default: fixtures)")
    ap.add_argument("--runs", type=int, default=5, help="repetitions; medians are printed (default 5)")
    ap.add_argument("--repeat", type=int, default=0, help="read the corpus K times per replay run (default: enough for ~1500 messages)")
    ap.add_argument("--pipe-messages", type=int, default=101, help="messages per pipe series (default 101)")
    ap.add_argument("--big", type=int, default=100000, help="messages in the generated mbox (default 100000)")
    ap.add_argument("--no-big", action="store_true", help="skip the big-mbox memory run")
    ap.add_argument("--big-store", action="store_true", help="also replay the big mbox into a store (slow: "
                    "its messages repeat the corpus' recipients, see docs/performance.md)")
    ap.add_argument("--no-replay", action="store_true", help="skip replay throughput")
    ap.add_argument("--no-pipe", action="store_true", help="skip pipe-mode latency")
    ap.add_argument("--no-sisimai", action="store_true", help="skip Perl Sisimai")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions with callgrind "
                    "(load-independent ratios; slow)")
    ap.add_argument("--synchronous", default="FULL", help="PRAGMA synchronous of pipe_floor (default FULL)")
    ap.add_argument("--db-dir", help="where pipe mode's databases go (default: the temporary directory; "
                    "/dev/shm leaves out the disk's fsync)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"), help="build directory (default build-bench)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already in --build")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    if not args.no_build:
        build(args.build)
    tools = {
        "bp": os.path.join(args.build, "bouncepipe"),
        "floor": os.path.join(args.build, "bench", "gmime_floor"),
        "pipe_floor": os.path.join(args.build, "bench", "pipe_floor"),
    }
    for t in tools.values():
        if not os.access(t, os.X_OK):
            raise SystemExit(f"missing {t}: build with -DBP_BUILD_BENCH=ON (or drop --no-build)")
    static = os.path.join(args.build, "bench", "bouncepipe-static")
    if os.access(static, os.X_OK):
        tools["bp_static"] = static
        # it lives in bench/, away from the DMARC reader module that bouncepipe finds beside
        # itself: without this, every aggregate report of the corpus answers 75 (the module
        # is missing) and the static program's figures leave those reports out
        module = os.path.join(args.build, "bouncepipe-dmarc.so")
        if os.path.exists(module) and "BOUNCEPIPE_DMARC_MODULE" not in os.environ:
            os.environ["BOUNCEPIPE_DMARC_MODULE"] = os.path.abspath(module)
    sisimai_ok = subprocess.run(["perl", "-MSisimai", "-e", "1"], capture_output=True).returncode == 0
    if sisimai_ok and not args.no_sisimai:
        tools["sisimai"] = os.path.join(ROOT, "bench", "sisimai.pl")

    tmp = tempfile.mkdtemp(prefix="bouncepipe-bench-")
    os.chmod(tmp, 0o711)  # pipe-mode programs may run as another user (see UNPRIVILEGED)
    try:
        paths = [os.path.abspath(p) for p in args.corpus]
        for p in paths:
            if not os.path.exists(p):
                raise SystemExit(f"{p}: no such file or directory")
        if not paths:
            fx = default_corpus(tmp)
            if fx is None:
                raise SystemExit("no fixtures in this checkout: name a corpus")
            paths = [fx]
        tools["store"] = store_supported(tools["bp"], tmp)
        tools["pipe"] = pipe_supported(tools["bp"])
        messages = floor_count(tools["floor"], paths)
        if messages == 0:
            raise SystemExit("the corpus holds no messages")
        if args.repeat <= 0:
            args.repeat = max(1, -(-1500 // messages))
        results = {"corpus": paths, "messages": messages, "ratios": {}, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        print(f"bouncepipe bench: {messages} messages in {' '.join(args.corpus) or 'fixtures (without broken/)'}; "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        if not tools["store"]:
            print("note: replay without --dry-run does not write a store in this build: store figures skipped")
        if not sisimai_ok:
            print("note: Perl Sisimai is not installed (apt-get install libsisimai-perl): skipped")

        if not args.no_replay:
            bench_replay(args, tools, paths, messages, tmp, results)
        msgs = None
        if not args.no_pipe or not args.no_big or args.callgrind:
            msgs = split_messages(paths, tmp, max(args.pipe_messages, 1000))
        if not args.no_pipe:
            if not tools["pipe"]:
                print("\nnote: this build has no `bouncepipe pipe` yet: only the pipe floor is measured")
            bench_pipe(args, tools, tmp, msgs[: max(args.pipe_messages, 2)], results)
        if args.callgrind:
            bench_callgrind(args, tools, paths, tmp, msgs, results)
        if not args.no_big:
            bench_big(args, tools, tmp, msgs, results)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
