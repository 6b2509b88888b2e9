#!/bin/sh
# broken_run.sh BIN [--valgrind] [--rss] [--scale N]
#
# Replay every member of the broken corpus (fixtures/broken/*.msg|*.mbox, plus the large
# ones tests/system/broken_gen.py writes at run time) with `BIN replay --dry-run --format ndjson`
# and check each against its expected outcome in fixtures/broken/EXPECTED:
#   - never a crash, a sanitizer or valgrind error, or a hang (timeout): the exit status is
#     0, or 1 with "not a readable message" (replay's word for input GMime finds no message
#     in; it still prints the unrecognized event);
#   - the output is valid UTF-8, every line is an event (JSON) whose type is among the expected
#     ones, there are at most the expected number, and the expected recipient is among them
#     (a checker that fails for any other reason fails the member too);
#   - with --rss (plain builds only; sanitizers inflate memory), peak RSS under the bound;
#   - where the last column says "cut", `BIN explain` says the message's effort budget ran out.
# --valgrind runs each under valgrind (memcheck, definite leaks are errors; known false
# positives outside bouncepipe in tests/valgrind.supp) with the
# generated inputs scaled down 20 times: valgrind is for shapes, not megabytes.  --scale N
# scales them down N times otherwise (the sanitizer build uses 5, for the same reason).
# Run from the project root.  Exit 0 when every member passed.
set -u
bin=$1
shift
valgrind=0
rss=0
scale=1
while [ $# -gt 0 ]; do
    case "$1" in
    --valgrind) valgrind=1 ;;
    --rss) rss=1 ;;
    --scale) shift; scale=${1:-1} ;;
    *) echo "usage: $0 BIN [--valgrind] [--rss] [--scale N]" >&2; exit 2 ;;
    esac
    shift
done
expected=fixtures/broken/EXPECTED
[ -f "$expected" ] || { echo "broken: $expected missing (run from the project root)"; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bp-broken.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
limit=120
if [ "$valgrind" = 1 ]; then
    scale=20
    limit=600
fi
python3 tests/system/broken_gen.py "$tmp/gen" --scale "$scale" || { echo "broken: generator failed"; exit 1; }

fail=0
count=0
# every member must have an expectation: none is skipped silently
for f in fixtures/broken/*.msg fixtures/broken/*.mbox "$tmp"/gen/*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    if ! grep -q "^$name[[:space:]]" "$expected"; then
        echo "FAIL $name: no line in $expected"
        fail=$((fail + 1))
    fi
done

while read -r name types max_events recipient max_rss_mb effort; do
    case "$name" in ''|'#'*) continue ;; esac
    input=fixtures/broken/$name
    [ -e "$input" ] || input=$tmp/gen/$name
    if [ ! -e "$input" ]; then
        echo "FAIL $name: listed in $expected but neither committed nor generated"
        fail=$((fail + 1))
        continue
    fi
    count=$((count + 1))
    if [ "$valgrind" = 1 ]; then
        timeout "$limit" valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            --suppressions=tests/valgrind.supp \
            "$bin" replay --dry-run --format ndjson "$input" > "$tmp/out" 2> "$tmp/err"
        rc=$?
    elif [ "$rss" = 1 ]; then
        timeout "$limit" /usr/bin/time -f "%M" -o "$tmp/rss" \
            "$bin" replay --dry-run --format ndjson "$input" > "$tmp/out" 2> "$tmp/err"
        rc=$?
    else
        timeout "$limit" "$bin" replay --dry-run --format ndjson "$input" > "$tmp/out" 2> "$tmp/err"
        rc=$?
    fi
    why=""
    case "$rc" in
    0) ;;
    1) grep -q "not a readable message" "$tmp/err" || why="exit 1: $(head -c 300 "$tmp/err")" ;;
    124) why="hang: no result within ${limit}s" ;;
    99) why="valgrind: $(head -c 600 "$tmp/err")" ;;
    *) why="exit $rc: $(head -c 600 "$tmp/err")" ;;
    esac
    if [ -z "$why" ]; then
        why=$(python3 - "$tmp/out" "$types" "$max_events" "$recipient" <<'PY'
import json, sys
path, types, max_events, recipient = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
events = []
try:
    text = open(path, "rb").read().decode("utf-8")  # strict: the output is valid UTF-8
except UnicodeDecodeError as e:
    print("output is not valid UTF-8: %s" % e); sys.exit()
for n, line in enumerate(text.splitlines(), 1):
    try:
        events.append(json.loads(line))
    except ValueError as e:
        print("output line %d is not JSON: %s" % (n, e)); sys.exit()
if not events:
    print("no event at all (every message yields at least one)"); sys.exit()
if len(events) > max_events:
    print("%d events, expected at most %d" % (len(events), max_events)); sys.exit()
bad = sorted({e.get("type") for e in events} - set(types))
if bad:
    print("event types %s, expected only %s" % (bad, types)); sys.exit()
if recipient != "-" and recipient not in {e.get("recipient") for e in events}:
    print("recipient %s not among the events" % recipient)
PY
2>&1)
    fi
    if [ -z "$why" ] && [ "$rss" = 1 ] && [ "$max_rss_mb" != "-" ]; then
        got_kb=$(tail -n 1 "$tmp/rss")
        if [ "$got_kb" -gt $((max_rss_mb * 1024)) ]; then
            why="peak RSS $((got_kb / 1024)) MB, bound $max_rss_mb MB"
        fi
    fi
    if [ -z "$why" ] && [ "${effort:-}" = cut ]; then
        timeout "$limit" "$bin" explain "$input" > "$tmp/explain" 2>&1
        grep -q "^  effort: .* budget ran out" "$tmp/explain" || why="explain does not say the effort budget ran out"
    fi
    if [ -n "$why" ]; then
        echo "FAIL $name: $why"
        fail=$((fail + 1))
    fi
done < "$expected"
mode=plain
[ "$valgrind" = 1 ] && mode=valgrind
echo "broken ($mode): $((count - fail)) of $count passed"
[ "$count" -gt 0 ] && [ "$fail" -eq 0 ]
