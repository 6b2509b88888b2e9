# acct_lib.sh - what the tests/acct_*.sh scripts share; sourced after NAME is set:
#   $T        a temporary directory, removed on exit;
#   pids      processes started in the background (append to it): killed on exit;
#   fail      say what failed (with NAME) and exit 1;
#   wait_for  SECONDS CMD...: until CMD succeeds, or return 1 after SECONDS.
# bash only (arrays).
T=$(mktemp -d)
pids=()
acct_cleanup() {
    local rc=$?
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$T"
    exit $rc
}
trap acct_cleanup EXIT
fail() {
    echo "FAIL: $NAME: $*" >&2
    exit 1
}
wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
