#!/bin/sh
# signals_golden.sh BIN [--update] - explain shows where each signal field came from: for
# every fixtures/signals/NAME.eml, the lines of `BIN explain` about the event's signal
# fields (blocklist, sending ip, vmta, stream, receiver, listed: the value and its source)
# against NAME.explain beside it.  The whole NDJSON of the same messages is the golden
# test's (tests/system/golden.sh); the accounting columns' (text view, "from:" lines) are checked
# against fixtures/acct/signals-columns.from, their NDJSON by tests/system/acct_golden.sh.
# --update rewrites the expected files: read them against the messages before committing.
# Run from the project root.
set -u
bin=$1
update=${2:-}
fail=0
count=0
for input in fixtures/signals/*.eml; do
    expected="${input%.eml}.explain"
    actual=$("$bin" explain "$input" 2>&1 | grep -E '^  (blocklist|sending ip|vmta|stream|receiver|listed):')
    count=$((count + 1))
    if [ "$update" = --update ]; then
        printf '%s\n' "$actual" >"$expected"
        continue
    fi
    if [ ! -f "$expected" ]; then
        echo "MISSING $expected"
        fail=$((fail + 1))
    elif [ "$actual" != "$(cat "$expected")" ]; then
        echo "FAIL $input"
        printf '%s\n' "$actual" | diff "$expected" - | head -20
        fail=$((fail + 1))
    fi
done
# the accounting columns (dlvSourceIp, vmta, header_X-Traffic-Type), their fallbacks and a
# hostile row: the text view's "from:" lines against fixtures/acct/signals-columns.from
acct=fixtures/acct/signals-columns
actual=$("$bin" acct --dry-run --format text "$acct.csv" 2>/dev/null | grep -E '^ +(from:|fixtures/)')
count=$((count + 1))
if [ "$update" = --update ]; then
    printf '%s\n' "$actual" >"$acct.from"
elif [ "$actual" != "$(cat "$acct.from")" ]; then
    echo "FAIL $acct.csv"
    printf '%s\n' "$actual" | diff "$acct.from" - | head -20
    fail=$((fail + 1))
fi
[ "$count" -gt 20 ] || {
    echo "signals_golden: only $count fixtures" >&2
    exit 1
}
if [ "$update" = --update ]; then
    echo "signals_golden: $count expected files written"
    exit 0
fi
echo "signals_golden: $count fixtures, $fail failures"
[ "$fail" -eq 0 ]
