#!/bin/sh
# memory_bounds.sh BIN [GIGABYTES]
#
# Peak memory of whole runs, measured with /usr/bin/time (plain builds only: sanitizers
# inflate memory):
#   - a 50 MB message (a DSN quoting a 36 MB attachment) is processed under 64 MB RSS: the
#     MIME adapter reads the message in place, and attachments are never decoded;
#   - an mbox of GIGABYTES (default 0.25; the 1 GB run is `memory_bounds.sh BIN 1`) is
#     replayed under 64 MB RSS and yields one bounce per message: the source streams it.
# Inputs are generated in a temporary directory by tests/system/broken_gen.py.  Run from the
# project root.
set -u
bin=$1
gb=${2:-0.25}
bound_kb=$((64 * 1024))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bp-memory.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
python3 tests/system/broken_gen.py "$tmp" --scale 1000 --big-message --mbox-gb "$gb" > "$tmp/gen.out" ||
    { echo "memory: generator failed"; exit 1; }
fail=0

/usr/bin/time -f "%M %e" -o "$tmp/t1" "$bin" replay --dry-run --format ndjson "$tmp/big-50mb.msg" > "$tmp/o1" 2>&1
rc=$?
read -r kb secs < "$tmp/t1"
size=$(wc -c < "$tmp/big-50mb.msg")
echo "memory: 50 MB message ($size bytes): peak RSS $((kb / 1024)) MB in ${secs}s, exit $rc"
if [ "$rc" -ne 0 ] || [ "$kb" -ge "$bound_kb" ] || ! grep -q '"recipient":"alice@example.com"' "$tmp/o1"; then
    echo "FAIL 50 MB message: want exit 0, the bounce for alice, and peak RSS under 64 MB"
    fail=1
fi

want=$(sed -n 's/^replay-1g.mbox: \([0-9]*\) messages$/\1/p' "$tmp/gen.out")
/usr/bin/time -f "%M %e" -o "$tmp/t2" "$bin" replay --dry-run --format ndjson "$tmp/replay-1g.mbox" 2>&1 |
    grep -c '"type":"bounce"' > "$tmp/o2"
read -r kb secs < "$tmp/t2"
got=$(cat "$tmp/o2")
size=$(wc -c < "$tmp/replay-1g.mbox")
echo "memory: mbox of $size bytes, $want messages: $got bounces, peak RSS $((kb / 1024)) MB in ${secs}s"
if [ "$got" != "$want" ] || [ "$kb" -ge "$bound_kb" ]; then
    echo "FAIL mbox: want $want bounces and peak RSS under 64 MB"
    fail=1
fi
[ "$fail" -eq 0 ]
