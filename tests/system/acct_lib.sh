# acct_lib.sh - what the system scripts share (the tests/system/acct_*.sh, postfix_e2e.sh and
# pg_hosts.sh); sourced after NAME is set, it only defines:
#   fail        say what failed (with NAME) and exit 1;
#   wait_for    SECONDS CMD...: until CMD succeeds (tried every WAIT_STEP seconds, 0.2 unless
#               set), or return 1 after SECONDS;
#   store_conf  FILE DATABASE BUSY_TIMEOUT_MS QUARANTINE_DIR: a bouncepipe.conf (mode 0644)
#               with that [store] and [quarantine]; append further sections to FILE;
#   acct_setup  (the acct_*.sh scripts) $T, a temporary directory removed on exit, and pids,
#               the processes started in the background (pids="$pids $!"), killed on exit.
# POSIX sh (pg_hosts.sh is a /bin/sh script).
fail() {
    echo "FAIL: $NAME: $*" >&2
    exit 1
}
wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep "${WAIT_STEP:-0.2}"
    done
}
store_conf() {
    cat >"$1" <<CONF
[store]
database = $2
busy_timeout_ms = $3

[quarantine]
directory = $4
CONF
    chmod 644 "$1"
}
acct_cleanup() {
    local rc=$?
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$T"
    exit $rc
}
acct_setup() {
    T=$(mktemp -d)
    pids=
    trap acct_cleanup EXIT
}
