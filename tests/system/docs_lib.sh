# docs_lib.sh - run a set-up document's command blocks as written (sourced by tests/docs_*.sh),
# and the preamble of the scripts that install the package (docs_*.sh, package.sh).
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
#
# Sourced first thing by NAME.sh PATH/TO/bouncepipe_VERSION_ARCH.deb, it sets DOCS_NAME (NAME),
# DEB (the package, absolute) and SRC (the checkout), and defines
#   skip MESSAGE    exit 77 (skipped), except under CI, where it is a failure;
#   fail MESSAGE    exit 1;
#   docs_need_root [WHY]  skip unless root (by default: the READMEs are written for a root shell);
#   docs_need_no_package  fail when no package is at DEB or bouncepipe is installed already.

DOCS_NAME=$(basename "$0" .sh)
DEB=${1:?usage: $DOCS_NAME.sh PATH/TO/bouncepipe_VERSION_ARCH.deb}
DEB=$(readlink -f "$DEB")
SRC=$(cd "$(dirname "$0")/../.." && pwd)

skip() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL: $DOCS_NAME: cannot run in CI: $*" >&2
        exit 1
    fi
    echo "*** SKIPPED: $DOCS_NAME: $* ***" >&2
    exit 77
}
fail() {
    echo "FAIL: $DOCS_NAME: $*" >&2
    exit 1
}

docs_need_root() {
    [ "$(id -u)" = 0 ] || skip "needs root (${1:-the README is written for a root shell})"
}

docs_need_no_package() {
    [ -f "$DEB" ] || fail "no package at $DEB"
    if dpkg-query -W -f='${Status}' bouncepipe 2>/dev/null | grep -q installed; then
        fail "bouncepipe is already installed here; this test installs and purges it, so it will not run"
    fi
}

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
