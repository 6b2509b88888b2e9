#!/bin/sh
# dmarc_pipe_cost.sh BIN [MESSAGE...] - what one `bouncepipe pipe` of an ordinary bounce costs,
# in instructions (callgrind's Ir, the measure of docs/performance.md), so that the DMARC
# stage can be shown to cost an ordinary bounce nothing: run it with the binary before and
# after a change and compare.  Default messages: a DSN (fixtures/dsn/amazonses-dsn.eml), a text
# bounce (fixtures/text/1und1.eml), an ARF complaint (fixtures/arf/yahoo-abuse.eml): the DSN
# is recognised before the DMARC family is tried, the other two after (text) or before (ARF).
# Each is measured piped into an existing store (created by piping another DSN first, so that
# creating the schema is not counted), as docs/performance.md measures ("one pipe ... into an
# existing database"), on /dev/shm.  Run from the project root; as root the pipe runs as nobody
# (pipe mode refuses root).  Deterministic to within a few hundred instructions.
set -eu
bin=$(readlink -f "$1")
shift
[ $# -gt 0 ] || set -- fixtures/dsn/amazonses-dsn.eml fixtures/text/1und1.eml fixtures/arf/yahoo-abuse.eml
dir=$(mktemp -d /dev/shm/dmarc_pipe_cost.XXXXXX)
chmod 0777 "$dir"
trap 'rm -rf "$dir"' EXIT
as_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}
printf '[store]\ndatabase = %s/store.db\n[quarantine]\ndirectory = %s/quarantine\n' "$dir" "$dir" >"$dir/conf"
chmod 0644 "$dir/conf"
for msg in "$@"; do
    name=$(basename "$msg" .eml)
    cp "$msg" "$dir/$name.eml"
    chmod 0644 "$dir/$name.eml"
    # a store that exists, holding another message (the store's first-use cost is not measured)
    as_user env BOUNCEPIPE_DB="$dir/$name.db" BOUNCEPIPE_CONFIG="$dir/conf" "$bin" pipe <fixtures/dsn/exim-dsn.eml
    as_user env BOUNCEPIPE_DB="$dir/$name.db" BOUNCEPIPE_CONFIG="$dir/conf" valgrind --tool=callgrind \
        --callgrind-out-file="$dir/$name.cg" "$bin" pipe <"$dir/$name.eml" 2>"$dir/$name.log" || {
        cat "$dir/$name.log" >&2
        exit 1
    }
    ir=$(sed -n 's/^summary: *//p' "$dir/$name.cg")
    printf '%-40s %12s Ir\n' "$msg" "$ir"
done
