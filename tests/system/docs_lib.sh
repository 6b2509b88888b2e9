# docs_lib.sh - run a set-up document's command blocks as written (sourced by tests/docs_*.sh).
#
# docs_run_blocks README WORKDIR PKGDIR MIN
#   Extracts every ```sh block of README, in order, and runs each with `bash -e` as the
#   calling user (root), exactly as written, from / .  An HTML comment before a block changes
#   how it is run:
#     <!-- docs-test: in-package-dir -->  run in PKGDIR (a directory holding only the .deb)
#     <!-- docs-test: retry N -->         run again until it succeeds, for at most N seconds
#     <!-- docs-test: expect TEXT -->     its output must contain TEXT
#   Indented code (illustrations) is not run.  Fails (via the caller's `fail`) on a block that
#   fails, on an unknown mode, and when README has fewer than MIN blocks.  Each block's text
#   stays in WORKDIR/blockNN.sh.
# The caller defines fail() (message, exit 1).

docs_run_blocks() {
    local readme=$1 work=$2 pkgdir=$3 min=$4 name b mode dir retry expect deadline blocks
    name=${readme#"$SRC"/}
    python3 - "$readme" "$work" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
mode = ""
n = 0
for m in re.finditer(r"<!-- docs-test: (.*?) -->|^```sh\n(.*?)^```$", text, re.S | re.M):
    if m.group(1) is not None:
        mode = m.group(1).strip()
        continue
    n += 1
    with open(f"{sys.argv[2]}/block{n:02d}.sh", "w") as f:
        f.write(m.group(2))
    with open(f"{sys.argv[2]}/block{n:02d}.mode", "w") as f:
        f.write(mode)
    mode = ""
PY
    blocks=$(ls "$work"/block*.sh 2>/dev/null | wc -l)
    [ "$blocks" -ge "$min" ] || fail "found only $blocks command blocks in $name"

    for b in "$work"/block*.sh; do
        mode=$(cat "${b%.sh}.mode")
        dir=/
        retry=0
        expect=
        case "$mode" in
        in-package-dir) dir=$pkgdir ;;
        retry\ *) retry=${mode#retry } ;;
        expect\ *) expect=${mode#expect } ;;
        "") ;;
        *) fail "unknown docs-test mode '$mode' in $name" ;;
        esac
        echo "== $(basename "$b") ${mode:+($mode)}: $(head -n 1 "$b")"
        deadline=$(($(date +%s) + retry))
        while :; do
            if (cd "$dir" && bash -e "$b") >"$work/out" 2>&1; then
                break
            fi
            if [ "$(date +%s)" -ge "$deadline" ]; then
                cat "$work/out" >&2
                fail "block $(basename "$b") of $name failed:
$(cat "$b")"
            fi
            sleep 2
        done
        cat "$work/out"
        if [ -n "$expect" ] && ! grep -qF -- "$expect" "$work/out"; then
            fail "block $(basename "$b") printed no '$expect' (the README says it does)"
        fi
    done
    DOCS_BLOCKS=$blocks
}
