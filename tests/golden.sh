#!/bin/sh
# golden.sh BIN [--update] - replay every fixtures/<suite>/<name>.eml (and .mbox) with
# `BIN replay --dry-run --format ndjson` and compare with <name>.ndjson beside it.
# Run from the project root (paths in the expected files are relative to it).
# --update rewrites the expected files: review the diff before committing it.
set -u
bin=$1
update=${2:-}
fail=0
count=0
for input in fixtures/*/*.eml fixtures/*/*.mbox; do
    [ -e "$input" ] || continue
    case "$input" in fixtures/broken/*) ;; esac
    expected="${input%.*}.ndjson"
    actual=$("$bin" replay --dry-run --format ndjson "$input" 2>/dev/null)
    count=$((count + 1))
    if [ "$update" = "--update" ]; then
        printf '%s\n' "$actual" > "$expected"
        continue
    fi
    if [ ! -f "$expected" ]; then
        echo "MISSING $expected"
        fail=$((fail + 1))
        continue
    fi
    if [ "$actual" != "$(cat "$expected")" ]; then
        echo "FAIL $input"
        printf '%s\n' "$actual" | diff "$expected" - | head -20
        fail=$((fail + 1))
    fi
done
echo "golden: $((count - fail)) passed, $fail failed"
[ "$count" -gt 0 ] || { echo "golden: no fixtures found"; exit 1; }
[ "$fail" -eq 0 ]
