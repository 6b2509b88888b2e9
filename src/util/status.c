/*
 * status.c - names for bp_status values and the internal-error exit.
 *
 * bp_status_to_string(): a static string for every status, including unknown values.
 * bp_status_is_transient(): which failures may go away by themselves (status.h).
 * bp_internal_error(): a bug, not bad input; prints file:line and aborts.
 */
#include "bouncepipe/status.h"

#include <stdio.h>
#include <stdlib.h>

const char *bp_status_to_string(bp_status status)
{
    switch (status) {
    case BP_OK: return "success";
    case BP_ERR_NOMEM: return "out of memory";
    case BP_ERR_IO: return "input/output error";
    case BP_ERR_NOT_FOUND: return "not found";
    case BP_ERR_PARSE: return "malformed input";
    case BP_ERR_LIMIT: return "input exceeds a limit";
    case BP_ERR_CONFIG: return "invalid configuration";
    case BP_ERR_BUSY: return "database busy";
    case BP_ERR_STORE: return "database error";
    case BP_ERR_USAGE: return "usage error";
    case BP_ERR_UNSUPPORTED: return "not supported by this build";
    case BP_STATUS_LAST: break;
    }
    return "unknown status";
}

int bp_status_is_transient(bp_status status)
{
    return status == BP_ERR_IO || status == BP_ERR_BUSY || status == BP_ERR_NOMEM;
}

_Noreturn void bp_internal_error(const char *file, int line, const char *what)
{
    fprintf(stderr, "bouncepipe: internal error at %s:%d: %s\n", file, line, what);
    abort();
}
