#!/usr/bin/env bash
# docs_powermta.sh - contrib/powermta/README.md is a test: its command blocks run as written.
#
# Usage: tests/system/docs_powermta.sh build-package/bouncepipe_VERSION_ARCH.deb   (make docs-test)
#
# The README starts on a PowerMTA host with the package at hand.  PowerMTA is not installed
# here, so this script sets the machine up as its package would (the system user `pmta`, an
# /etc/pmta/config, /var/log/pmta) and puts STAND-INS on PATH for the two commands the README
# calls that do not exist here:
#   pmta       tests/system/pmta_standin.py: `pmta reload`/`restart` read /etc/pmta/config as
#              PowerMTA would (tests/system/pmta_e2e.py's PowerMTA: its parser, accounting writer and
#              pipe delivery), start an SMTP listener on 127.0.0.1:25 that pipes the bounce
#              domain's mail to the configured command, and "send a campaign" into the
#              accounting pipe and the file copies (see its header for the records);
#   systemctl  only when systemd is not PID 1 (a container): `systemctl enable --now UNIT`
#              runs the real `systemctl enable` (offline: it checks the installed unit and
#              links it) and then, for --now, what the timer would start: the ExecStart lines
#              of the unit's service, in order, as root.  Under systemd the real one runs.
# mta1.example.com, the README's PowerMTA host, is 127.0.0.1 in /etc/hosts for the run.
# Then it extracts every ```sh block of the README in order and runs each with `bash -e` as
# root, exactly as written (tests/system/docs_lib.sh: the docs-test modes an HTML comment before a
# block may set), and checks what the README promises: the accounting stream's records read
# by `bouncepipe acct` (pipe, catch-up of the file copy, history of the archive), the check
# DSN through PowerMTA's pipe into the store and removed again, the suppression list of step
# 8 and `bouncepipe export`, nothing in the store's directory of root's.  Afterwards it stops
# the stand-in, purges the package and puts back /etc/hosts, /etc/pmta, /var/log/pmta and the
# user pmta as they were (trap, on every exit path).
#
# Needs root, swaks, port 25 on loopback free and bouncepipe not installed; without root or
# swaks it exits 77 (skipped), except under CI, where that is a failure.
set -euo pipefail

# shellcheck source=tests/system/docs_lib.sh
. "$(dirname "$0")/docs_lib.sh" # DEB, SRC, skip, fail
README=$SRC/contrib/powermta/README.md

docs_need_root
command -v swaks >/dev/null || skip "swaks is not installed (make deps-test installs it)"
docs_need_no_package
[ ! -e /etc/pmta ] || fail "/etc/pmta exists: PowerMTA is installed here; this test plays it, so it will not run"
[ ! -e /var/lib/bouncepipe ] || fail "/var/lib/bouncepipe exists; this test creates and removes it"
if python3 -c 'import socket; socket.create_connection(("127.0.0.1", 25), timeout=2)' 2>/dev/null; then
    fail "something listens on 127.0.0.1:25; the PowerMTA stand-in needs it"
fi

T=$(mktemp -d /tmp/bp-docs-powermta.XXXXXX)
chmod 0755 "$T"
cp -a /etc/hosts "$T/hosts.orig"
had_pmta_user=0
getent passwd pmta >/dev/null && had_pmta_user=1
had_logdir=0
[ -e /var/log/pmta ] && had_logdir=1
cleanup() {
    local rc=$?
    python3 "$SRC/tests/system/pmta_standin.py" stop >/dev/null 2>&1 || true
    if [ $rc -ne 0 ] && [ -f /var/log/pmta/log ]; then
        echo "---- /var/log/pmta/log (the stand-in's, last 30 lines) ----" >&2
        tail -n 30 /var/log/pmta/log >&2 || true
    fi
    if dpkg-query -W -f='${Status}' bouncepipe 2>/dev/null | grep -q 'installed\|config-files'; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq bouncepipe >/dev/null 2>&1 || true
    fi
    systemctl disable bouncepipe-acct-catch-up.timer >/dev/null 2>&1 || true
    rm -f /etc/systemd/system/timers.target.wants/bouncepipe-acct-catch-up.timer
    rm -rf /var/lib/bouncepipe /etc/pmta
    [ "$had_logdir" = 1 ] || rm -rf /var/log/pmta
    [ "$had_pmta_user" = 1 ] || deluser --system --quiet pmta >/dev/null 2>&1 || true
    cat "$T/hosts.orig" >/etc/hosts
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

# A PowerMTA host, as PowerMTA's package leaves it: its user, configuration and log directory.
[ "$had_pmta_user" = 1 ] ||
    adduser --system --group --quiet --no-create-home --home /var/lib/pmta --shell /usr/sbin/nologin pmta
install -d -m 0755 /etc/pmta /var/log/pmta
cat >/etc/pmta/config <<'EOF'
# /etc/pmta/config of the PowerMTA stand-in (tests/system/docs_powermta.sh)
postmaster postmaster@example.com
smtp-listener 127.0.0.1:25
EOF
echo "127.0.0.1 mta1.example.com" >>/etc/hosts

mkdir "$T/bin" "$T/pkg"
cp "$DEB" "$T/pkg/"
ln -s "$SRC/tests/system/pmta_standin.py" "$T/bin/pmta"
if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ]; then
    cat >"$T/bin/systemctl" <<'EOF'
#!/bin/sh
# systemctl stand-in of tests/system/docs_powermta.sh (systemd is not PID 1 here): enable offline,
# then for --now run the ExecStart lines of the unit's service as root, in order.
set -e
[ "$1" = enable ] && [ "$2" = --now ] && [ $# = 3 ] || { echo "systemctl stand-in: only 'enable --now UNIT'" >&2; exit 1; }
/usr/bin/systemctl enable "$3"
unit=/lib/systemd/system/$3
case "$3" in *.timer) unit=${unit%.timer}.service ;; esac
[ -f "$unit" ] || { echo "systemctl stand-in: no $unit" >&2; exit 1; }
sed -n 's/^ExecStart=//p' "$unit" | while IFS= read -r cmd; do
    echo "systemctl stand-in: $cmd"
    eval "$cmd"
done
EOF
    chmod 0755 "$T/bin/systemctl"
fi
export PATH="$T/bin:$PATH"

docs_run_blocks "$README" "$T" "$T/pkg" 8
blocks=$DOCS_BLOCKS

# ---- what the README promises -----------------------------------------------------------------
want=$(printf '%s\n' ayumi@aol.example gone.user@example.org late.user@example.org old.history@example.org)
# step 8: PowerMTA's suppression list, written by pmta, holding the accounting stream's
# failures: the pipe's (gone.user; ayumi by the f record's VERP Return-Path), the file copy's
# read back by step 7's catch-up (late.user), the archive's (old.history)
list=/var/lib/bouncepipe/suppression-list.txt
[ -f "$list" ] || fail "step 8 wrote no $list"
[ "$(stat -c %U "$list")" = pmta ] || fail "$list belongs to $(stat -c %U "$list"), not pmta"
[ "$(sort "$list")" = "$want" ] || fail "step 8's suppression list is not the accounting stream's failures:
$(cat "$list")"
# the check: the DSN went through PowerMTA's pipe into the store, then was removed again
grep -q 'delivered bounces-check.user=example.net@bounces.example.com via pipe' /var/log/pmta/log ||
    fail "/var/log/pmta/log shows no pipe delivery of the check DSN"
lk=$(bouncepipe lookup --format json check.user@example.net || true)
echo "$lk" | grep -q '"kind": *"event"' || fail "the check DSN left no event in the store: $lk"
echo "$lk" | grep -q '"removal"' || fail "the check address was not removed as the README says: $lk"
# the list as it stands: the check address is gone again, the delivery suppressed nobody
got=$(bouncepipe export --format plain | sort)
[ "$got" = "$want" ] || fail "bouncepipe export --format plain is not the expected list:
$got"
bouncepipe stats --format json >"$T/stats.json"
python3 - "$T/stats.json" <<'PY' || fail "stats: $(cat "$T/stats.json")"
import json, sys
s = json.load(open(sys.argv[1]))
t = s.get("type", {})
# gone.user, late.user, old.history, check.user: four bounces; ayumi's complaint
assert t.get("bounce") == 4 and t.get("complaint") == 1, t
PY
# step 2: pmta's store, readable by group pmta ("the database is created mode 0640")
[ "$(stat -c '%U %G %a' /var/lib/bouncepipe/bouncepipe.db)" = "pmta pmta 640" ] ||
    fail "the store is $(stat -c '%U %G %a' /var/lib/bouncepipe/bouncepipe.db), not pmta pmta 640 as step 2 says"
root_owned=$(find /var/lib/bouncepipe -user root)
[ -z "$root_owned" ] || fail "files in the store's directory belong to root: $root_owned"
echo "docs_powermta: ok: $blocks command blocks of contrib/powermta/README.md ran as written on a package" \
    "install with the PowerMTA stand-in; the accounting stream, its file copies and the check DSN reached" \
    "the store, and the suppression list is the expected one"
