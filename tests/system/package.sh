#!/usr/bin/env bash
# package.sh - the Debian package as an operator meets it.
#
# Usage: tests/system/package.sh build-package/bouncepipe_VERSION_ARCH.deb   (make package-test)
#
# On this machine (root; CI is a fresh Debian 12): lintian must report no error; then
# `apt-get install ./THE.deb`, and check: `bouncepipe --version` is the package's version;
# `man bouncepipe` and `man 5 bouncepipe-patterns` render; /etc/bouncepipe/bouncepipe.conf is
# a conffile, root:bouncepipe 0640; the system user bouncepipe exists with no login shell;
# /var/lib/bouncepipe and its quarantine are bouncepipe:bouncepipe 0750; the modules and the
# systemd units are installed (and pass systemd-analyze verify when it can run); a DSN piped
# as the bouncepipe user with the package's configuration is recorded in
# /var/lib/bouncepipe/bouncepipe.db and `lookup` finds the address suppressed; `report --html`
# works as that user.  Then `apt-get purge` must leave no file of the package, no
# /etc/bouncepipe and no /var/lib/bouncepipe.
#
# Refuses to run when bouncepipe is already installed (it would purge an operator's data).
# Without root: exit 77 (skipped), except under CI, where it is a failure.
set -euo pipefail

# shellcheck source=tests/system/docs_lib.sh
. "$(dirname "$0")/docs_lib.sh" # DEB, SRC, skip, fail

docs_need_root "apt-get install, a system user"
for t in apt-get dpkg-deb lintian man runuser; do
    command -v "$t" >/dev/null || skip "$t is not installed (make deps-test installs it)"
done
docs_need_no_package

version=$(dpkg-deb -f "$DEB" Version)
T=$(mktemp -d /tmp/bp-package.XXXXXX)
installed=0
cleanup() {
    local rc=$?
    if [ "$installed" = 1 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq bouncepipe >/dev/null 2>&1 || true
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

# 1. lintian: no error (warnings are printed)
lintian --fail-on error "$DEB" >"$T/lintian" 2>&1 || { cat "$T/lintian" >&2; fail "lintian reports errors"; }
grep -v 'running with root privileges' "$T/lintian" || true

# 2. install as an operator would
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB" >"$T/apt.log" 2>&1 || {
    cat "$T/apt.log" >&2
    fail "apt-get install ./$(basename "$DEB") failed"
}
installed=1

got=$(bouncepipe --version)
[ "$got" = "bouncepipe $version" ] || fail "bouncepipe --version says '$got', want 'bouncepipe $version'"
[ "$(command -v bouncepipe)" = /usr/bin/bouncepipe ] || fail "bouncepipe is not /usr/bin/bouncepipe"
MANPAGER=cat MANWIDTH=80 man bouncepipe 2>/dev/null | grep -q 'turn bounces, complaints' || fail "man bouncepipe does not render"
MANPAGER=cat man 5 bouncepipe-patterns >/dev/null 2>&1 || fail "man 5 bouncepipe-patterns does not render"

dpkg-query -W -f='${Conffiles}\n' bouncepipe | grep -q '/etc/bouncepipe/bouncepipe.conf' ||
    fail "/etc/bouncepipe/bouncepipe.conf is not a conffile"
[ "$(stat -c '%U:%G %a' /etc/bouncepipe/bouncepipe.conf)" = "root:bouncepipe 640" ] ||
    fail "bouncepipe.conf is $(stat -c '%U:%G %a' /etc/bouncepipe/bouncepipe.conf), want root:bouncepipe 640"
getent passwd bouncepipe >/dev/null || fail "no system user bouncepipe"
uid=$(id -u bouncepipe)
[ "$uid" -lt 1000 ] || fail "bouncepipe is not a system user (uid $uid)"
case "$(getent passwd bouncepipe | cut -d: -f7)" in
*nologin | /bin/false) ;;
*) fail "bouncepipe has a login shell" ;;
esac
for d in /var/lib/bouncepipe /var/lib/bouncepipe/quarantine; do
    [ "$(stat -c '%U:%G %a' "$d")" = "bouncepipe:bouncepipe 750" ] ||
        fail "$d is $(stat -c '%U:%G %a' "$d" 2>/dev/null || echo missing), want bouncepipe:bouncepipe 750"
done
ls /usr/lib/*/bouncepipe/bouncepipe-http.so /usr/lib/*/bouncepipe/bouncepipe-postgres.so >/dev/null ||
    fail "the modules are not installed"
for u in bouncepipe-stats.service bouncepipe-stats.timer bouncepipe-report.service bouncepipe-report.timer; do
    [ -f "/lib/systemd/system/$u" ] || fail "unit $u is not installed"
done
if command -v systemd-analyze >/dev/null; then
    # needs no running systemd; it checks the units' syntax and that ExecStart exists
    systemd-analyze verify /lib/systemd/system/bouncepipe-*.{service,timer} >"$T/verify" 2>&1 ||
        { cat "$T/verify" >&2; fail "systemd-analyze verify rejects a unit"; }
fi

# 3. a pipe as the package's user, with the package's configuration (no --db, no --config)
cat >"$T/dsn.eml" <<'EOF'
From: MAILER-DAEMON@mx.example.net
To: bounces-pkg.user=example.net@bounces.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <pkg-dsn-1@mx.example.net>
Date: Sun, 22 Nov 2026 01:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; pkg.user@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <pkg.user@example.net>: Recipient address rejected: User unknown

--B--
EOF
chmod 644 "$T/dsn.eml"
chmod 755 "$T"
(cd / && runuser -u bouncepipe -- bouncepipe pipe --rcpt 'bounces-pkg.user=example.net@bounces.example.com' <"$T/dsn.eml") ||
    fail "the pipe as user bouncepipe exited $?"
[ -f /var/lib/bouncepipe/bouncepipe.db ] || fail "the pipe did not create /var/lib/bouncepipe/bouncepipe.db"
[ "$(stat -c '%U' /var/lib/bouncepipe/bouncepipe.db)" = bouncepipe ] || fail "the store is not owned by bouncepipe"
(cd / && runuser -u bouncepipe -- bouncepipe lookup pkg.user@example.net) >"$T/lookup" ||
    { cat "$T/lookup" >&2; fail "lookup does not find pkg.user@example.net suppressed"; }
(cd / && runuser -u bouncepipe -- bouncepipe report --html /var/lib/bouncepipe/report.html) ||
    fail "report --html as user bouncepipe failed"
grep -q 'data-chart="events-per-day"' /var/lib/bouncepipe/report.html || fail "the report has no chart"

# 4. purge: nothing of the package stays
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq bouncepipe >"$T/purge.log" 2>&1 || {
    cat "$T/purge.log" >&2
    fail "apt-get purge failed"
}
installed=0
if dpkg-query -W -f='${Status}' bouncepipe 2>/dev/null | grep -q 'installed\|config-files'; then
    fail "dpkg still knows bouncepipe after purge: $(dpkg-query -W -f='${Status}' bouncepipe)"
fi
for p in /usr/bin/bouncepipe /etc/bouncepipe /var/lib/bouncepipe /lib/systemd/system/bouncepipe-stats.timer \
    /usr/share/man/man1/bouncepipe.1.gz; do
    [ ! -e "$p" ] || fail "$p is still there after purge"
done
ls /usr/lib/*/bouncepipe 2>/dev/null && fail "the module directory is still there after purge"
echo "package: ok: $(basename "$DEB") lints without errors, installs with apt-get, runs as user bouncepipe" \
    "(pipe, lookup, report), has its conffile, units and modes, and purges clean"
