#!/usr/bin/env bash
# acct_golden.sh - every fixtures/acct/<name>.csv through `bouncepipe acct --dry-run` against
# <name>.ndjson (the events, with the accounting fields) and <name>.stderr (the per-line
# reports and the summary counts: malformed lines, records without recipient, unknown types).
# Run from the project directory (ctest does).  Usage: tests/system/acct_golden.sh BIN [--update]
set -uo pipefail
BIN=${1:?usage: acct_golden.sh /path/to/bouncepipe [--update]}
UPDATE=${2:-}
fails=0 n=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for csv in fixtures/acct/*.csv; do
    name=${csv%.csv}
    n=$((n + 1))
    "$BIN" acct --dry-run --format ndjson "$csv" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$UPDATE" = --update ]; then
        cp "$tmp/out" "$name.ndjson"
        cp "$tmp/err" "$name.stderr"
        continue
    fi
    if [ $rc -ne 0 ]; then
        echo "FAIL $csv: exit status $rc (malformed input must not be fatal)"
        fails=$((fails + 1))
    fi
    for kind in ndjson stderr; do
        got=$tmp/out
        [ $kind = stderr ] && got=$tmp/err
        if ! diff -u "$name.$kind" "$got" >"$tmp/diff"; then
            echo "FAIL $csv ($kind):"
            head -n 40 "$tmp/diff"
            fails=$((fails + 1))
        fi
    done
done
[ "$n" -gt 0 ] || { echo "FAIL: no fixtures/acct/*.csv found (run from the project directory)"; exit 1; }
echo "acct_golden: $n fixtures, $fails failures"
[ $fails -eq 0 ]
