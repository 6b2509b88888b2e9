#!/bin/sh
# alloc_hook.sh - every allocation of src/ goes through alloc.h (bp_malloc, bp_calloc,
# bp_realloc, bp_strdup, bp_strndup), so that the fault hook the OOM injection test
# (tests/unit/oom_inject.c) relies on sees all of them.  Lists each direct malloc(), calloc(),
# realloc(), strdup() or strndup() call of src/ (outside src/util/alloc.c) and fails if any.
# Run from the project root.
set -u
found=$(grep -rnE '(^|[^A-Za-z0-9_])(malloc|calloc|realloc|strdup|strndup)\(' src --include='*.c' --include='*.h' |
    grep -v '^src/util/alloc\.c:' |
    grep -vE '^[^:]+:[0-9]+:\s*(/?\*|//)')
if [ -n "$found" ]; then
    echo "alloc_hook: direct allocations in src/ (use alloc.h's bp_* instead, so that tests/unit/oom_inject.c can fail them):"
    echo "$found"
    exit 1
fi
echo "alloc_hook: every allocation of src/ goes through alloc.h"
