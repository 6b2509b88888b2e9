#!/usr/bin/env bash
# docs_postfix.sh - contrib/postfix/README.md is a test: its command blocks run as written.
#
# Usage: tests/system/docs_postfix.sh build-package/bouncepipe_VERSION_ARCH.deb   (make docs-test)
#
# The README starts from a fresh Debian 12 with Postfix installed as "No configuration" and
# the package at hand.  This script makes the machine look like that (it moves an existing
# /etc/postfix/main.cf aside), then extracts every ```sh block of the README in order and runs
# each with `bash -e` as root, exactly as written (tests/system/docs_lib.sh: the docs-test modes an
# HTML comment before a block may set).  Indented code (illustrations such as the sending
# side's sendmail -XV) is not run.
# Afterwards it checks what the README says the log shows, then stops Postfix, purges the
# package and puts /etc/postfix back as it was (trap, on every exit path).  The Postfix it
# starts listens on loopback only (the README's inet_interfaces = loopback-only).
#
# Needs root, Postfix not running and bouncepipe not installed; without root or Postfix it
# exits 77 (skipped), except under CI, where that is a failure.
set -euo pipefail

# shellcheck source=tests/system/docs_lib.sh
. "$(dirname "$0")/docs_lib.sh" # DEB, SRC, skip, fail
README=$SRC/contrib/postfix/README.md

docs_need_root
[ -x /usr/sbin/postfix ] || skip "postfix is not installed (make deps-test installs it)"
[ -f /usr/share/postfix/main.cf.debian ] || skip "no /usr/share/postfix/main.cf.debian"
docs_need_no_package
if /usr/sbin/postfix status >/dev/null 2>&1; then
    fail "a system Postfix is running; this test configures and starts /etc/postfix, so it will not run"
fi

T=$(mktemp -d /tmp/bp-docs-postfix.XXXXXX)
cp -a /etc/postfix "$T/etc-postfix.orig"
had_log=0
[ -e /var/log/postfix.log ] && had_log=1
cleanup() {
    local rc=$?
    /usr/sbin/postfix stop >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do /usr/sbin/postfix status >/dev/null 2>&1 || break; sleep 0.2; done
    if [ $rc -ne 0 ] && [ -f /var/log/postfix.log ]; then
        echo "---- /var/log/postfix.log (last 30 lines) ----" >&2
        tail -n 30 /var/log/postfix.log >&2 || true
    fi
    if dpkg-query -W -f='${Status}' bouncepipe 2>/dev/null | grep -q 'installed\|config-files'; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq bouncepipe >/dev/null 2>&1 || true
    fi
    rm -rf /etc/postfix
    cp -a "$T/etc-postfix.orig" /etc/postfix
    [ "$had_log" = 1 ] || rm -f /var/log/postfix.log
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

# "No configuration": no main.cf
rm -f /etc/postfix/main.cf

mkdir "$T/pkg"
cp "$DEB" "$T/pkg/"

docs_run_blocks "$README" "$T" "$T/pkg" 5
blocks=$DOCS_BLOCKS

# what the README says about the result
grep -q 'relay=bouncepipe.*status=sent' /var/log/postfix.log ||
    fail "the README says /var/log/postfix.log shows the delivery via bouncepipe; it does not"
grep -q 'inet_interfaces = loopback-only' /etc/postfix/main.cf || fail "main.cf is not loopback-only"
n=$(runuser -u bouncepipe -- bouncepipe lookup --format json check.user@example.net | grep -c '"removal"' || true)
[ "$n" -ge 1 ] || fail "the set-up check's address was not removed as the README's last step says"
echo "docs_postfix: ok: $blocks command blocks of contrib/postfix/README.md ran as written on a package" \
    "install; the check bounce went through Postfix's pipe(8) into the store"
