#!/bin/sh
# run_fuzzers.sh FUZZ_BUILD_DIR [SECONDS [NAME...]]
#
# For every libFuzzer harness built in FUZZ_BUILD_DIR/tests/fuzz (make fuzz builds them), or
# only those NAMEd (e.g. toml: a longer run of one harness):
# replay its whole seed corpus (tests/fuzz/corpus/<name>/), then fuzz it for SECONDS
# (default 25) on one core.  New inputs go to a scratch corpus, never into the repository;
# a crash, leak, sanitizer report, timeout (10 s per input) or RSS over 2 GB fails the run
# and leaves the reproducer in FUZZ_BUILD_DIR/fuzz-artifacts/.  Prints the exec count of
# each harness.  Run from the project root.
set -u
dir=$1
seconds=${2:-25}
[ $# -ge 2 ] && shift 2 || shift $#
only=" $* "
art="$dir/fuzz-artifacts"
mkdir -p "$art"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/bp-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
fail=0
found=0
for fuzzer in "$dir"/tests/fuzz/*_fuzzer; do
    [ -x "$fuzzer" ] || continue
    name=$(basename "$fuzzer" _fuzzer)
    [ "$only" = "  " ] || case "$only" in *" $name "*) ;; *) continue ;; esac
    found=$((found + 1))
    seeds=tests/fuzz/corpus/$name
    if [ ! -d "$seeds" ]; then
        echo "FAIL $name: no seed corpus $seeds"
        fail=1
        continue
    fi
    mkdir -p "$scratch/$name"
    if ! "$fuzzer" -runs=0 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$art/$name-" "$seeds" \
        > "$scratch/$name.replay.log" 2>&1; then
        echo "FAIL $name: a seed fails"
        tail -n 30 "$scratch/$name.replay.log"
        fail=1
        continue
    fi
    if ! "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$art/$name-" "$scratch/$name" "$seeds" \
        > "$scratch/$name.log" 2>&1; then
        echo "FAIL $name: finding after $(grep -o 'stat::number_of_executed_units: [0-9]*' "$scratch/$name.log" | cut -d' ' -f2) execs"
        grep -A 30 -m 1 -E "ERROR|SUMMARY|Timeout|out-of-memory" "$scratch/$name.log" | head -n 40
        fail=1
        continue
    fi
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$scratch/$name.log" | cut -d' ' -f2)
    echo "fuzz $name: seeds replayed, ${seconds}s clean, $execs execs"
done
[ "$found" -gt 0 ] || { echo "fuzz: no harness${only% } in $dir/tests/fuzz"; exit 1; }
[ "$fail" -eq 0 ]
