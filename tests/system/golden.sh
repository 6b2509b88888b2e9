#!/bin/sh
# golden.sh BIN [--update] [PATH...] - replay fixtures/<suite>/<name>.eml (and .mbox) with
# `BIN replay --dry-run --format ndjson` and compare with <name>.ndjson beside it.
# PATH limits the run to some fixture files or suite directories (default: every suite).
# Run from the project root (paths in the expected files are relative to it).
# --update rewrites the expected files of the fixtures selected: read every field of the
# new output against its message before committing it (git diff fixtures/).
# fixtures/broken/ (.msg files, not matched here) has its own runner.
set -u
bin=$1
shift
update=
if [ "${1:-}" = "--update" ]; then
    update=--update
    shift
fi

list_inputs() {
    if [ $# -eq 0 ]; then
        set -- fixtures/*/
    fi
    for p in "$@"; do
        if [ -d "$p" ]; then
            for f in "${p%/}"/*.eml "${p%/}"/*.mbox; do
                if [ -e "$f" ]; then printf '%s\n' "$f"; fi
            done
        elif [ -e "$p" ]; then
            printf '%s\n' "$p"
        else
            echo "golden: no such fixture: $p" >&2
            return 1
        fi
    done
    return 0
}

inputs=$(list_inputs "$@") || exit 1
fail=0
count=0
for input in $inputs; do
    expected="${input%.*}.ndjson"
    actual=$("$bin" replay --dry-run --format ndjson "$input" 2>/dev/null)
    count=$((count + 1))
    if [ "$update" = "--update" ]; then
        printf '%s\n' "$actual" >"$expected"
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
if [ "$update" = "--update" ]; then
    echo "golden: $count expected files written"
    exit 0
fi
echo "golden: $((count - fail)) passed, $fail failed"
[ "$count" -gt 0 ] || {
    echo "golden: no fixtures found"
    exit 1
}
[ "$fail" -eq 0 ]
