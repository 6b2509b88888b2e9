#!/bin/sh
# signals_bench_pg.sh [ARGS...] - bench/signals_bench.py on PostgreSQL: a private cluster
# (tests/system/pg_lib.sh: initdb in a temporary directory, the server on 127.0.0.1, fsync off - the
# figures are the queries', not the load's), the store built in it through psql's \copy, then
# the same commands timed.  ARGS go to signals_bench.py (--rows, --days, --runs, --bin).
# Needs the postgresql package (make deps); run from the repository root.
set -eu
. "$(dirname "$0")/../tests/system/pg_lib.sh"
pg_start
python3 "$(dirname "$0")/signals_bench.py" --db "$PG_TCP_URL" "$@"
